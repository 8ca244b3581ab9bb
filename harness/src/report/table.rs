//! The summary table printed at the end of a run.

use std::fmt::Write;

use hmmlab_proto::Outcome;

use std::path::Path;

use anyhow::Result;

use super::model::{RunReport, RunStatus, ScenarioResult};
use super::skips::Skips;

/// The end of a run on the terminal: the table, what went wrong, how to
/// reproduce each failure (stdout), problems of the run itself (stderr).
pub fn printer(dir: &Path) -> impl FnMut(&RunReport) -> Result<()> {
    let dir = dir.to_path_buf();
    move |run| {
        crate::say::out(&summary(run, &dir));
        crate::say::err(&problems(run, &dir));
        Ok(())
    }
}

/// The table, then each failure with its reproduce line, then the timing.
/// A run that never produced results says only that, and where it is.
pub fn summary(r: &RunReport, dir: &Path) -> String {
    let mut s = String::new();
    if matches!(r.status, RunStatus::InfraError | RunStatus::BadInput) {
        let _ = writeln!(
            s,
            "\nrun {}: {}; no result counts: {}",
            r.run_id,
            r.status,
            dir.display()
        );
        return s;
    }
    s.push_str(&render(r));
    let bench = super::bench::Summary::of(&r.scenarios);
    if !bench.is_empty() {
        s.push('\n');
        s.push_str(&bench.text());
    }
    for f in r.failed() {
        let _ = writeln!(
            s,
            "\n{} {}: {}",
            f.outcome.as_str().to_uppercase(),
            f.name,
            f.message.as_deref().unwrap_or("")
        );
        if !f.reproduce.is_empty() {
            let _ = writeln!(
                s,
                "  reproduce: {}  (add --repeat 10 to measure flakiness)",
                f.reproduce
            );
        }
    }
    let secs = |v: Option<f64>| {
        v.map(|ms| format!("{:.2}s", ms / 1e3))
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(
        s,
        "\nresults: {}  (boot {}, first scenario at {}, VM {}, accel {})",
        dir.display(),
        secs(r.timing.boot_ms),
        secs(r.timing.first_scenario_ms),
        secs(r.timing.vm_ms),
        r.accel
    );
    s
}

/// What went wrong with the run itself, for stderr.
pub fn problems(r: &RunReport, dir: &Path) -> String {
    let mut s = String::new();
    if let Some(e) = r
        .error
        .as_ref()
        .filter(|_| r.status == RunStatus::Finished || r.status == RunStatus::Interrupted)
    {
        let _ = writeln!(s, "\nrun problem: {e}");
    }
    if r.status == RunStatus::Interrupted {
        let _ = writeln!(s, "interrupted: what finished is in {}", dir.display());
    }
    s
}

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
            .filter(|st| st.op == hmmlab_proto::scenario::Op::MigrateToDevice)
            .filter_map(|st| st.pages_per_sec)
            .next()
            .map(|r| format!("{r:.0}"))
            .unwrap_or_else(|| "-".into());
        let line = format!(
            "{:<w$}  {:<8}  {:<8}  {:>8.1}ms  {:>14}{}",
            sc.name,
            sc.outcome.as_str(),
            sc.thp.map_or("-", |t| t.as_str()),
            sc.duration_ns as f64 / 1e6,
            rate,
            case_counts(sc)
                .map(|c| format!("  {c}"))
                .unwrap_or_default()
        );
        let _ = writeln!(s, "{}", line.trim_end());
    }
    use hmmlab_proto::Outcome::*;
    let skips = Skips::of(&r.scenarios);
    let not_applicable: usize = skips.not_applicable.values().sum();
    let _ = write!(
        s,
        "{} passed, {} failed ({} fail, {} timeout, {} crashed, {} error), {} skipped",
        r.count(Pass),
        r.failed().count(),
        r.count(Fail),
        r.count(Timeout),
        r.count(Crashed),
        r.count(Error),
        r.count(Skip) - not_applicable
    );
    let _ = if not_applicable > 0 {
        writeln!(s, ", {not_applicable} not applicable to this kernel")
    } else {
        writeln!(s)
    };
    if !skips.instances.is_empty() {
        let _ = writeln!(
            s,
            "skipped instances: {}",
            Skips::describe(&skips.instances)
        );
    }
    if !skips.cases.is_empty() {
        let _ = writeln!(
            s,
            "skipped selftest cases: {}",
            Skips::describe(&skips.cases)
        );
    }
    if !skips.not_applicable.is_empty() {
        let _ = writeln!(
            s,
            "not applicable (the scenario needs a newer or older kernel; not a skip): {}",
            Skips::describe(&skips.not_applicable)
        );
    }
    let known: Vec<String> = r
        .scenarios
        .iter()
        .flat_map(|sc| {
            sc.known_failures
                .iter()
                .map(move |k| format!("  {}: {k}", sc.name))
        })
        .collect();
    if !known.is_empty() {
        let _ = writeln!(
            s,
            "known failures, declared with their reason in the scenario files (not counted as \
             failures; an entry that stops occurring fails its scenario):\n{}",
            known.join("\n")
        );
    }
    if !skips.is_empty() && !r.fail_on_skip {
        let _ = writeln!(
            s,
            "(a skip is a check that did not run; --fail-on-skip makes it a failure; README: Skips)"
        );
    }
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
            duration_ns: 2_500_000,
            ..ScenarioResult::new(
                "hmm-tests@madvise",
                Outcome::Pass,
                Some(hmmlab_proto::scenario::ThpMode::Madvise),
                "",
            )
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

    #[test]
    fn instances_that_do_not_apply_are_not_counted_as_skips() {
        let mut na = ScenarioResult::for_tests("fail-alloc-pages@madvise", Outcome::Skip);
        na.message = Some("requires kernel >=7.2 (this is 6.12.117)".into());
        na.not_applicable = true;
        let mut sk = ScenarioResult::for_tests("uffd@madvise", Outcome::Skip);
        sk.message = Some("requires CONFIG_USERFAULTFD (not set in this kernel)".into());
        let text = render(&RunReport::for_tests(vec![na, sk]));
        assert!(
            text.contains("1 skipped, 1 not applicable to this kernel\n"),
            "{text}"
        );
        assert!(
            text.contains("not applicable (the scenario needs a newer or older kernel; not a skip): 1 (1 requires kernel >=7.2 (this is 6.12.117))"),
            "{text}"
        );
        assert!(
            text.contains("skipped instances: 1 (1 requires CONFIG_USERFAULTFD"),
            "{text}"
        );
    }
}
