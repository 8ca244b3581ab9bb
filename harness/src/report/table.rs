//! The summary table printed at the end of a run.

use std::fmt::Write;

use super::model::RunReport;

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
        let _ = writeln!(
            s,
            "{:<w$}  {:<8}  {:<8}  {:>8.1}ms  {:>14}",
            sc.name,
            sc.outcome.as_str(),
            sc.thp,
            sc.duration_ns as f64 / 1e6,
            rate
        );
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
