//! `results.ktap`: the run's own results in KTAP (Documentation/dev-tools/
//! ktap.rst), so kernel CI tooling that reads KUnit and kselftest output
//! (`tools/testing/kunit/kunit.py parse`, KernelCI, LAVA) reads hmmlab's runs.
//! One test per scenario instance; a selftest's cases are its subtests.

use std::fmt::Write;

use anyhow::Result;
use hmmlab_proto::Outcome;

use super::model::{RunReport, RunStatus, ScenarioResult};

pub fn render(r: &RunReport) -> Result<String> {
    let mut s = String::from("KTAP version 1\n");
    let _ = writeln!(
        s,
        "# hmmlab run {}: {} {}, accel {}, status {}",
        r.run_id, r.kernel.source, r.kernel.release, r.accel, r.status
    );
    if matches!(r.status, RunStatus::InfraError | RunStatus::BadInput) {
        // No scenario result counts: one failed test says why.
        s.push_str("1..1\n");
        diagnostics(&mut s, "", r.error.as_deref().unwrap_or(""));
        s.push_str("not ok 1 hmmlab-run\n");
        return Ok(s);
    }
    let _ = writeln!(s, "1..{}", r.scenarios.len());
    for (i, sc) in r.scenarios.iter().enumerate() {
        scenario(&mut s, i + 1, sc);
    }
    Ok(s)
}

fn scenario(s: &mut String, n: usize, sc: &ScenarioResult) {
    if !sc.cases.is_empty() {
        let _ = writeln!(s, "  KTAP version 1\n  # Subtest: {}", name(&sc.name));
        let _ = writeln!(s, "  1..{}", sc.cases.len());
        for (j, c) in sc.cases.iter().enumerate() {
            if c.outcome.is_failure() {
                diagnostics(s, "  ", c.reason.as_deref().unwrap_or(""));
            }
            result(s, "  ", j + 1, &c.name, c.outcome, c.reason.as_deref());
        }
    }
    if sc.outcome.is_failure() {
        let why = format!(
            "{}: {}\nreproduce: {}",
            sc.outcome.as_str(),
            sc.message.as_deref().unwrap_or(""),
            sc.reproduce
        );
        diagnostics(s, "", &why);
        for f in &sc.console_findings {
            diagnostics(s, "", &f.excerpt);
        }
    }
    result(s, "", n, &sc.name, sc.outcome, sc.message.as_deref());
}

/// `ok N name`, `not ok N name`, or `ok N name # SKIP reason`.
fn result(s: &mut String, indent: &str, n: usize, test: &str, o: Outcome, why: Option<&str>) {
    let verdict = if o.is_failure() { "not ok" } else { "ok" };
    let _ = write!(s, "{indent}{verdict} {n} {}", name(test));
    if o == Outcome::Skip {
        let reason = why.and_then(|w| w.lines().next()).unwrap_or("");
        let _ = write!(s, " # SKIP {}", reason.replace('#', "no."));
    }
    s.push('\n');
}

/// Every line of `text` as a `# ` diagnostic line.
fn diagnostics(s: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        let _ = writeln!(s, "{indent}# {line}");
    }
}

/// A test name KTAP reads back whole: no `#` (it starts a directive).
fn name(n: &str) -> String {
    n.replace('#', "no.").replace(char::is_whitespace, "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CaseResult;

    fn sc(name: &str, outcome: Outcome, cases: Vec<CaseResult>) -> ScenarioResult {
        ScenarioResult {
            message: Some("why it ended so".into()),
            cases,
            reproduce: format!("cargo xtask run-scenarios --scenario {name}"),
            ..ScenarioResult::for_tests(name, outcome)
        }
    }

    fn case(name: &str, outcome: Outcome, reason: Option<&str>) -> CaseResult {
        CaseResult {
            name: name.into(),
            outcome,
            reason: reason.map(Into::into),
        }
    }

    #[test]
    fn scenarios_and_cases_read_back_with_the_same_outcomes() {
        let cases = vec![
            case("t.open_close", Outcome::Pass, None),
            case("t.hugetlbfs", Outcome::Skip, Some("no huge pages")),
            case(
                "#3 (never reported)",
                Outcome::Crashed,
                Some("never reported"),
            ),
        ];
        let r = RunReport::for_tests(vec![
            sc("empty@madvise", Outcome::Pass, vec![]),
            sc("zero@never", Outcome::Fail, vec![]),
            sc("dc@madvise", Outcome::Skip, vec![]),
            sc("hmm-tests@madvise", Outcome::Crashed, cases),
        ]);
        let text = render(&r).unwrap();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        let top = crate::ktap::parse(&lines);
        let got: Vec<(String, Outcome)> = top
            .cases
            .iter()
            .map(|c| (c.name.clone(), c.outcome))
            .collect();
        assert_eq!(
            got,
            vec![
                ("empty@madvise".into(), Outcome::Pass),
                ("zero@never".into(), Outcome::Fail),
                ("dc@madvise".into(), Outcome::Skip),
                ("hmm-tests@madvise".into(), Outcome::Fail),
            ],
            "{text}"
        );
        assert!(
            text.contains("  ok 2 t.hugetlbfs # SKIP no huge pages\n"),
            "{text}"
        );
        assert!(
            text.contains("  not ok 3 no.3_(never_reported)\n"),
            "{text}"
        );
        assert!(text.contains("# reproduce: cargo xtask run-scenarios --scenario zero@never\nnot ok 2 zero@never\n"), "{text}");
    }

    #[test]
    fn a_run_without_results_is_one_failed_test() {
        let mut r = RunReport::for_tests(vec![]);
        r.status = RunStatus::InfraError;
        r.error = Some("the guest did not boot the kernel that was built".into());
        let text = render(&r).unwrap();
        assert!(
            text.ends_with(
                "1..1\n# the guest did not boot the kernel that was built\nnot ok 1 hmmlab-run\n"
            ),
            "{text}"
        );
    }
}
