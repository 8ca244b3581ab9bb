//! junit.xml for CI systems, via quick-junit (the writer nextest uses).

use std::time::Duration;

use anyhow::Result;
use hmmlab_proto::Outcome;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::model::{CaseResult, RunReport, RunStatus};

pub fn render(r: &RunReport) -> Result<String> {
    let mut report = Report::new(format!("hmmlab {}", r.run_id));
    let mut suite = TestSuite::new(format!("hmmlab.{}", r.default_thp));
    if matches!(r.status, RunStatus::InfraError | RunStatus::BadInput) {
        // No scenario result counts: the run itself is the error CI sees.
        let msg = r.error.clone().unwrap_or_else(|| r.status.to_string());
        let first = msg.lines().next().unwrap_or("").to_string();
        let mut tc = TestCase::new("hmmlab run", status(Outcome::Error, Some(first), Some(msg)));
        tc.set_classname(format!("hmmlab.{}", r.status));
        suite.add_test_case(tc);
    }
    for sc in &r.scenarios {
        let status = if sc.outcome.is_failure() {
            let mut desc = String::new();
            for f in &sc.console_findings {
                desc.push_str(&f.excerpt);
                desc.push('\n');
            }
            desc.push_str(&format!("reproduce: {}\n", sc.reproduce));
            status(sc.outcome, sc.message.clone(), Some(desc))
        } else if sc.not_applicable {
            let why = sc.message.as_deref().unwrap_or("no reason given");
            status(sc.outcome, Some(format!("not applicable: {why}")), None)
        } else {
            status(sc.outcome, sc.message.clone(), None)
        };
        let class = format!("hmmlab.{}", sc.thp.map_or("run", |t| t.as_str()));
        let mut tc = TestCase::new(sc.name.clone(), status);
        tc.set_classname(class.clone());
        tc.set_time(Duration::from_nanos(sc.duration_ns));
        suite.add_test_case(tc);
        for case in &sc.cases {
            let mut tc = TestCase::new(format!("{}/{}", sc.name, case.name), case_status(case));
            tc.set_classname(class.clone());
            suite.add_test_case(tc);
        }
    }
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}

/// A selftest case: skipped with its reason, or a failure (an error when it
/// never reported) with the first line of its reason as the message and all
/// of it as the description.
fn case_status(case: &CaseResult) -> TestCaseStatus {
    let first_line = case
        .reason
        .as_deref()
        .and_then(|r| r.lines().next())
        .map(str::to_string);
    match case.outcome {
        Outcome::Skip => status(case.outcome, case.reason.clone(), None),
        o => status(o, first_line, case.reason.clone()),
    }
}

/// The JUnit status of an outcome: a skip keeps its reason as the message;
/// `fail` is a failure, every other non-pass an error typed by its outcome.
fn status(
    outcome: Outcome,
    message: Option<String>,
    description: Option<String>,
) -> TestCaseStatus {
    match outcome {
        Outcome::Pass => TestCaseStatus::success(),
        Outcome::Skip => {
            let mut s = TestCaseStatus::skipped();
            if let Some(m) = message {
                s.set_message(m);
            }
            s
        }
        o => {
            let kind = if o == Outcome::Fail {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_type(o.as_str());
            s.set_message(message.unwrap_or_else(|| o.as_str().to_string()));
            if let Some(d) = description {
                s.set_description(d);
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ScenarioResult;

    fn case(name: &str, outcome: Outcome, reason: Option<&str>) -> CaseResult {
        CaseResult {
            name: name.into(),
            outcome,
            reason: reason.map(Into::into),
        }
    }

    fn selftest_result() -> ScenarioResult {
        ScenarioResult {
            duration_ns: 1_000_000,
            message: Some("1 of 4 cases failed: t.exclusive".into()),
            cases: vec![
                case("t.open_close", Outcome::Pass, None),
                case(
                    "t.hugetlbfs",
                    Outcome::Skip,
                    Some("Huge page size could not be determined"),
                ),
                case(
                    "t.exclusive",
                    Outcome::Fail,
                    Some(
                        "hmm-tests.c:1817:exclusive:Expected ret (-16) == 0 (0)
exclusive: Test terminated by assertion",
                    ),
                ),
                case(
                    "#4 (never reported)",
                    Outcome::Crashed,
                    Some("never reported: the output ends after case 3"),
                ),
            ],
            ..ScenarioResult::new(
                "hmm-tests@always",
                Outcome::Fail,
                Some(hmmlab_proto::scenario::ThpMode::Always),
                "cargo xtask run-scenarios",
            )
        }
    }

    #[test]
    fn one_test_case_per_selftest_case() {
        let xml = render(&RunReport::for_tests(vec![selftest_result()])).unwrap();
        assert!(xml.contains("tests=\"5\""), "{xml}");
        assert!(xml.contains("<testcase name=\"hmm-tests@always\""), "{xml}");
        assert!(
            xml.contains(
                "<testcase name=\"hmm-tests@always/t.open_close\" classname=\"hmmlab.always\""
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"Huge page size could not be determined\""),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<failure message=\"hmm-tests.c:1817:exclusive:Expected ret (-16) == 0 (0)\" type=\"fail\">"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("exclusive: Test terminated by assertion"),
            "{xml}"
        );
        assert!(
            xml.contains("<testcase name=\"hmm-tests@always/#4 (never reported)\""),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<error message=\"never reported: the output ends after case 3\" type=\"crashed\""
            ),
            "{xml}"
        );
    }

    #[test]
    fn a_run_that_never_ran_is_one_error() {
        let mut r = RunReport::for_tests(vec![]);
        r.status = RunStatus::InfraError;
        r.error = Some("QEMU would not start\nqemu: no such machine".into());
        let xml = render(&r).unwrap();
        assert!(
            xml.contains("tests=\"1\"") && xml.contains("errors=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("<error message=\"QEMU would not start\" type=\"error\">"),
            "{xml}"
        );
    }
}
