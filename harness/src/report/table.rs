//! The summary table printed at the end of a run.

use std::fmt::Write;

use hmmlab_proto::Outcome;

use super::model::{RunReport, ScenarioResult};

pub fn render(r: &RunReport) -> String {
    let mut s = String::new();
    let w = r
        .scenarios
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        s,
        "{:<w$}  {:<8}  {:<8}  {:>10}  {:>14}",
        "scenario", "outcome", "thp", "time", "migrate pg/s"
    );
    for sc in &r.scenarios {
        let rate = sc
            .steps
            .iter()
            .filter(|st| st.op == "migrate-to-device")
            .filter_map(|st| st.pages_per_sec)
            .next()
            .map(|r| format!("{r:.0}"))
            .unwrap_or_else(|| "-".into());
        let line = format!(
            "{:<w$}  {:<8}  {:<8}  {:>8.1}ms  {:>14}{}",
            sc.name,
            sc.outcome.as_str(),
            sc.thp,
            sc.duration_ns as f64 / 1e6,
            rate,
            case_counts(sc)
                .map(|c| format!("  {c}"))
                .unwrap_or_default()
        );
        let _ = writeln!(s, "{}", line.trim_end());
    }
    use hmmlab_proto::Outcome::*;
    let _ = writeln!(
        s,
        "{} passed, {} failed ({} fail, {} timeout, {} crashed, {} error), {} skipped",
        r.count(Pass),
        r.failed().count(),
        r.count(Fail),
        r.count(Timeout),
        r.count(Crashed),
        r.count(Error),
        r.count(Skip)
    );
    s
}

/// `26 pass, 32 skip`: a selftest's cases by outcome, when it has any.
fn case_counts(sc: &ScenarioResult) -> Option<String> {
    if sc.cases.is_empty() {
        return None;
    }
    let counts: Vec<String> = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Skip,
        Outcome::Crashed,
    ]
    .into_iter()
    .map(|o| (sc.case_count(o), o))
    .filter(|(n, _)| *n > 0)
    .map(|(n, o)| format!("{n} {}", o.as_str()))
    .collect();
    Some(counts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CaseResult;

    #[test]
    fn selftest_lines_end_with_case_counts() {
        let mut sc = ScenarioResult {
            name: "hmm-tests@madvise".into(),
            outcome: Outcome::Pass,
            thp: "madvise".into(),
            duration_ns: 2_500_000,
            message: None,
            steps: vec![],
            output: vec![],
            console_findings: vec![],
            cases: vec![],
            reproduce: String::new(),
        };
        let plain = sc.clone();
        for (n, o) in [(26, Outcome::Pass), (32, Outcome::Skip)] {
            for i in 0..n {
                sc.cases.push(CaseResult {
                    name: format!("c{i}"),
                    outcome: o,
                    reason: None,
                });
            }
        }
        let r = RunReport::for_tests(vec![sc, plain]);
        let text = render(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("hmm-tests@madvise  pass"), "{text}");
        assert!(
            lines[1].ends_with("2.5ms               -  26 pass, 32 skip"),
            "{text}"
        );
        assert!(lines[2].ends_with("2.5ms               -"), "{text}");
    }
}
