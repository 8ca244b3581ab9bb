//! What changed between two result sets, scenario instance by scenario
//! instance: outcome changes, and timing changes beyond run-to-run noise.
//!
//! Each side is one or more runs of the same thing. An instance's outcome on
//! a side is `pass` only if it passed in every run that has it, `flaky` if it
//! both passed and failed. A timing (a scenario's duration, a
//! `migrate-to-device` step's pages per second, matched by step index) is
//! flagged only when the medians differ by more than the larger spread
//! (max - min) of the two sides *and* by more than a relative threshold. With
//! fewer than two passing runs on a side there is no measured spread, so
//! nothing is flagged.
//!
//! Pure: takes parsed [`RunReport`]s, returns a [`Comparison`]; the caller
//! loads the files and prints [`render`]'s table or the JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use hmmlab_proto::scenario::Op;
use hmmlab_proto::Outcome;
use serde::Serialize;

pub use crate::report::Verdict;
use crate::report::{BuiltKernel, RunReport, RunStatus, ScenarioResult};

/// Default for `--min-change`: a timing must move by more than this many
/// percent (and by more than the spread) to be flagged.
pub const DEFAULT_MIN_CHANGE_PCT: f64 = 10.0;

/// The op whose throughput is compared, by the name step results carry.
pub const MIGRATE_OP: &str = Op::MigrateToDevice.as_str();

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Relative change (percent of side A's median) a timing must exceed.
    pub min_change_pct: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            min_change_pct: DEFAULT_MIN_CHANGE_PCT,
        }
    }
}

/// One side of the comparison: a label (the path given) and its runs.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub label: &'a str,
    pub runs: &'a [RunReport],
}

/// An instance's outcome on one side, over all of that side's runs.
/// An instance on one side.
#[derive(Debug, Clone, Serialize)]
pub struct SideOutcome {
    pub verdict: Verdict,
    /// How many of this side's runs have the instance.
    pub runs: usize,
    /// How many runs the side has.
    pub of: usize,
    pub passed: usize,
    /// Runs that ended in fail, timeout, crashed or error.
    pub failed: usize,
    pub skipped: usize,
    /// Every outcome seen, with how many runs ended with it.
    pub outcomes: BTreeMap<String, usize>,
    /// The first failure message on this side (or skip reason when skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl SideOutcome {
    fn of(results: &[&ScenarioResult], of: usize) -> SideOutcome {
        let mut outcomes = BTreeMap::new();
        let (mut passed, mut failed, mut skipped) = (0, 0, 0);
        for r in results {
            *outcomes.entry(r.outcome.as_str().to_string()).or_insert(0) += 1;
            match r.outcome {
                Outcome::Pass => passed += 1,
                Outcome::Skip => skipped += 1,
                _ => failed += 1,
            }
        }
        let verdict = Verdict::of(results.iter().map(|r| r.outcome));
        let message = results
            .iter()
            .find(|r| r.outcome.is_failure())
            .or_else(|| results.iter().find(|r| r.outcome == Outcome::Skip))
            .and_then(|r| r.message.clone());
        SideOutcome {
            verdict,
            runs: results.len(),
            of,
            passed,
            failed,
            skipped,
            outcomes,
            message,
        }
    }

    /// `pass`, `fail`, `timeout`; with several runs `pass 3/3`,
    /// `flaky: failed 1 of 3`, `fail 2, timeout 1`.
    pub fn describe(&self) -> String {
        let mut s = if self.verdict == Verdict::Flaky {
            format!("flaky: failed {} of {}", self.failed, self.runs)
        } else if self.runs == 1 {
            self.outcomes.keys().next().cloned().unwrap_or_default()
        } else if self.outcomes.len() == 1 {
            let (o, n) = self.outcomes.iter().next().unwrap();
            format!("{o} {n}/{}", self.runs)
        } else {
            self.outcomes
                .iter()
                .map(|(o, n)| format!("{o} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.runs < self.of {
            let _ = write!(s, " (in {} of {} runs)", self.runs, self.of);
        }
        s
    }
}

/// What happened to an instance's outcome from A to B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Pass or skip in A (or flaky) → failing in every run of B. A regression.
    NewFailure,
    /// Pass or skip in A → flaky in B. A regression.
    NewlyFlaky,
    /// No outcome change, but a timing got worse beyond noise. A regression.
    Slower,
    /// Failing or flaky in A → passing in every run of B.
    Fixed,
    /// Failing in A → flaky in B.
    Improved,
    /// Not skipped in A → skipped in B.
    NewlySkipped,
    /// Skipped in A → passing in B.
    Unskipped,
    /// Only in B.
    Added,
    /// Only in A.
    Missing,
    /// Failing in both.
    StillFailing,
    /// Flaky in both.
    StillFlaky,
    /// No outcome change, and a timing got better beyond noise.
    Faster,
    Unchanged,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::NewFailure => "new failure",
            ChangeKind::NewlyFlaky => "newly flaky",
            ChangeKind::Slower => "slower",
            ChangeKind::Fixed => "fixed",
            ChangeKind::Improved => "improved",
            ChangeKind::NewlySkipped => "newly skipped",
            ChangeKind::Unskipped => "unskipped",
            ChangeKind::Added => "only in B",
            ChangeKind::Missing => "only in A",
            ChangeKind::StillFailing => "still failing",
            ChangeKind::StillFlaky => "still flaky",
            ChangeKind::Faster => "faster",
            ChangeKind::Unchanged => "unchanged",
        }
    }

    fn of(a: Option<Verdict>, b: Option<Verdict>) -> ChangeKind {
        use Verdict::*;
        match (a, b) {
            (None, _) => ChangeKind::Added,
            (_, None) => ChangeKind::Missing,
            (Some(a), Some(b)) => match (a, b) {
                (Pass, Pass) | (Skip, Skip) => ChangeKind::Unchanged,
                (_, Skip) => ChangeKind::NewlySkipped,
                (Skip, Pass) => ChangeKind::Unskipped,
                (Pass | Skip | Flaky, Fail) => ChangeKind::NewFailure,
                (Pass | Skip, Flaky) => ChangeKind::NewlyFlaky,
                (Fail | Flaky, Pass) => ChangeKind::Fixed,
                (Fail, Flaky) => ChangeKind::Improved,
                (Fail, Fail) => ChangeKind::StillFailing,
                (Flaky, Flaky) => ChangeKind::StillFlaky,
            },
        }
    }
}

/// Median, min, max and spread (max - min) of one timing on one side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Stats {
    /// Samples: passing runs that have this timing.
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub spread: f64,
}

impl Stats {
    /// None for no samples. The median of an even count is the mean of the
    /// middle two.
    pub fn of(samples: &[f64]) -> Option<Stats> {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stats {
            n,
            median,
            min: v[0],
            max: v[n - 1],
            spread: v[n - 1] - v[0],
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Slower,
    Faster,
}

/// One timing of one instance, A against B.
#[derive(Debug, Clone, Serialize)]
pub struct TimingChange {
    /// `duration`, or `step N migrate-to-device`.
    pub metric: String,
    /// The step index, for a step's throughput.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// `ns` (lower is better) or `pages/s` (higher is better).
    pub unit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<Stats>,
    /// (median B - median A) / median A, in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_pct: Option<f64>,
    /// Both sides have at least two samples, so there is a measured spread.
    pub compared: bool,
    /// Set when the change is beyond the spread and the threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged: Option<Direction>,
}

impl TimingChange {
    fn new(
        metric: String,
        step: Option<u32>,
        unit: &'static str,
        a: &[f64],
        b: &[f64],
        opts: &Options,
    ) -> TimingChange {
        let (sa, sb) = (Stats::of(a), Stats::of(b));
        let mut t = TimingChange {
            metric,
            step,
            unit,
            a: sa,
            b: sb,
            change_pct: None,
            compared: false,
            flagged: None,
        };
        let (Some(sa), Some(sb)) = (sa, sb) else {
            return t;
        };
        let diff = sb.median - sa.median;
        if sa.median > 0.0 {
            t.change_pct = Some(diff / sa.median * 100.0);
        }
        // A spread needs repeated runs, and with fewer than CONFIDENT_RUNS
        // per side identical runs land apart too often to call it a change.
        t.compared = sa.n >= CONFIDENT_RUNS && sb.n >= CONFIDENT_RUNS;
        // Beyond noise: the two sides' runs land wholly apart (which
        // identical sides do less than once in a hundred from
        // CONFIDENT_RUNS on, see `chance_apart`), or the medians differ by
        // more than either side's spread. The first catches a change whose
        // new side is itself noisy (a slowdown that varies), which the
        // second alone would excuse.
        let apart = sa.max < sb.min || sb.max < sa.min;
        let beyond_noise = apart || diff.abs() > sa.spread.max(sb.spread);
        let beyond_threshold = t.change_pct.is_some_and(|p| p.abs() > opts.min_change_pct);
        if t.compared && beyond_noise && beyond_threshold {
            let higher_is_better = unit != "ns";
            t.flagged = Some(if (diff > 0.0) == higher_is_better {
                Direction::Faster
            } else {
                Direction::Slower
            });
        }
        t
    }

    fn fmt_value(&self, v: f64) -> String {
        if self.unit == "ns" {
            format!("{:.1} ms", v / 1e6)
        } else {
            format!("{v:.0} pg/s")
        }
    }
}

/// One instance, A against B.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceChange {
    /// `<scenario>@<thp>`.
    pub instance: String,
    pub kind: ChangeKind,
    /// A new failure, newly flaky, or a flagged slowdown.
    pub regression: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<SideOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<SideOutcome>,
    /// Every timing compared (flagged or not), when the instance is on both sides.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timing: Vec<TimingChange>,
}

impl InstanceChange {
    pub fn flagged(&self) -> impl Iterator<Item = &TimingChange> {
        self.timing.iter().filter(|t| t.flagged.is_some())
    }
}

/// What a side is: its runs, kernels and accelerators.
#[derive(Debug, Clone, Serialize)]
pub struct SideInfo {
    pub label: String,
    pub runs: usize,
    pub run_ids: Vec<String>,
    /// Distinct kernels, as `source release (key K)`.
    pub kernels: Vec<String>,
    /// Distinct accelerators (`tcg`, `kvm`).
    pub accels: Vec<String>,
}

impl SideInfo {
    fn of(s: &Side) -> SideInfo {
        let distinct = |f: &dyn Fn(&RunReport) -> String| -> Vec<String> {
            let set: BTreeSet<String> = s.runs.iter().map(f).collect();
            set.into_iter().collect()
        };
        SideInfo {
            label: s.label.to_string(),
            runs: s.runs.len(),
            run_ids: s.runs.iter().map(|r| r.run_id.clone()).collect(),
            kernels: distinct(&|r| describe_kernel(&r.kernel)),
            accels: distinct(&|r| r.accel.to_string()),
        }
    }
}

fn describe_kernel(k: &BuiltKernel) -> String {
    let mut s = [k.source.as_str(), k.release.as_str()]
        .into_iter()
        .filter(|x| !x.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if s.is_empty() {
        s = "unknown kernel".into();
    }
    let patches = k.patches.len();
    if patches > 0 {
        let _ = write!(
            s,
            " + {patches} patch{}",
            if patches == 1 { "" } else { "es" }
        );
    }
    if !k.key.is_empty() {
        let _ = write!(s, " (key {})", k.key);
    }
    s
}

/// Counts per kind, for the summary line and scripts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub new_failures: usize,
    pub newly_flaky: usize,
    pub slower: usize,
    pub fixed: usize,
    pub improved: usize,
    pub newly_skipped: usize,
    pub unskipped: usize,
    pub only_in_b: usize,
    pub only_in_a: usize,
    pub still_failing: usize,
    pub still_flaky: usize,
    pub faster: usize,
    pub unchanged: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a: SideInfo,
    pub b: SideInfo,
    pub min_change_pct: f64,
    /// Both sides have at least two runs; timing can be flagged.
    pub timing_compared: bool,
    /// Caveats: timing not compared, different accelerators, unfinished runs.
    pub notes: Vec<String>,
    /// Any new failure, newly flaky instance or flagged slowdown.
    pub regression: bool,
    pub summary: Summary,
    /// Every instance, regressions first, then by kind and name.
    pub instances: Vec<InstanceChange>,
}

/// Instance name → that instance's result in each run that has it.
fn by_instance(runs: &[RunReport]) -> BTreeMap<&str, Vec<&ScenarioResult>> {
    let mut m: BTreeMap<&str, Vec<&ScenarioResult>> = BTreeMap::new();
    for r in runs {
        for s in &r.scenarios {
            m.entry(s.name.as_str()).or_default().push(s);
        }
    }
    m
}

/// The timings of one instance: its duration, then each `migrate-to-device`
/// step's pages per second, matched by step index. Only passing runs count:
/// a failed run stops early and its timings mean nothing.
fn timings<'a>(
    a: &[&'a ScenarioResult],
    b: &[&'a ScenarioResult],
    opts: &Options,
) -> Vec<TimingChange> {
    let passing = |v: &[&'a ScenarioResult]| -> Vec<&'a ScenarioResult> {
        v.iter()
            .copied()
            .filter(|s| s.outcome == Outcome::Pass)
            .collect()
    };
    let (pa, pb) = (passing(a), passing(b));
    let durations =
        |v: &[&ScenarioResult]| v.iter().map(|s| s.duration_ns as f64).collect::<Vec<_>>();
    let mut out = vec![TimingChange::new(
        "duration".into(),
        None,
        "ns",
        &durations(&pa),
        &durations(&pb),
        opts,
    )];
    let rates = |v: &[&ScenarioResult], index: u32| -> Vec<f64> {
        v.iter()
            .filter_map(|s| {
                s.steps
                    .iter()
                    .find(|st| st.index == index && st.op == Op::MigrateToDevice)
                    .and_then(|st| st.pages_per_sec)
            })
            .collect()
    };
    out.extend(bench_timings(&pa, &pb, opts));
    let steps: BTreeSet<u32> = pa
        .iter()
        .chain(&pb)
        .flat_map(|s| s.steps.iter())
        .filter(|st| st.op == Op::MigrateToDevice && st.pages_per_sec.is_some())
        .map(|st| st.index)
        .collect();
    for i in steps {
        let (ra, rb) = (rates(&pa, i), rates(&pb, i));
        if ra.is_empty() || rb.is_empty() {
            continue;
        }
        out.push(TimingChange::new(
            format!("step {i} {MIGRATE_OP}"),
            Some(i),
            "pages/s",
            &ra,
            &rb,
            opts,
        ));
    }
    out
}

/// A bench instance's series (`kind = "bench"`): each case and size, its
/// measured rounds of every passing run of a side (touch plus migration).
/// Rounds are repeated measurements like runs are, so five rounds of one
/// run already give a spread.
fn bench_timings(
    pa: &[&ScenarioResult],
    pb: &[&ScenarioResult],
    opts: &Options,
) -> Vec<TimingChange> {
    let totals = |v: &[&ScenarioResult], case, pages| -> Vec<f64> {
        v.iter()
            .flat_map(|s| s.samples.iter())
            .filter(|x| x.case == case && x.pages == pages)
            .map(|x| x.total_ns() as f64)
            .collect()
    };
    let series: BTreeSet<(u64, hmmlab_proto::bench::BenchCase)> = pa
        .iter()
        .chain(pb)
        .flat_map(|s| s.samples.iter())
        .map(|x| (x.pages, x.case))
        .collect();
    series
        .into_iter()
        .filter_map(|(pages, case)| {
            let (a, b) = (totals(pa, case, pages), totals(pb, case, pages));
            (!a.is_empty() && !b.is_empty()).then(|| {
                TimingChange::new(format!("bench {case} {pages}p"), None, "ns", &a, &b, opts)
            })
        })
        .collect()
}

/// From this many runs per side on, the runs of two identical sides land
/// entirely apart by chance less than once in a hundred (see [`chance_apart`]).
pub const CONFIDENT_RUNS: usize = 5;

/// With `m` and `n` runs of the same thing, every ordering of the `m + n`
/// values is equally likely; in 2 of the C(m+n, m) splits one side is wholly
/// above the other. Returns that "1 in k" as k (e.g. 3 for 2 and 2 runs).
pub fn chance_apart(m: usize, n: usize) -> u64 {
    let (k, rest) = (m.min(n) as u128, m.max(n) as u128);
    // C(rest + k, k), exactly: each partial product is itself a binomial.
    let mut c: u128 = 1;
    for i in 1..=k {
        c = match c.checked_mul(rest + i) {
            Some(x) if x / i <= 2 * u64::MAX as u128 => x / i,
            _ => return u64::MAX,
        };
    }
    (c / 2) as u64
}

/// Compare side A (the baseline) with side B.
pub fn compare(a: Side, b: Side, opts: &Options) -> Comparison {
    let (ma, mb) = (by_instance(a.runs), by_instance(b.runs));
    let names: BTreeSet<&str> = ma.keys().chain(mb.keys()).copied().collect();
    let mut instances: Vec<InstanceChange> = names
        .into_iter()
        .map(|name| {
            let (ra, rb) = (ma.get(name), mb.get(name));
            instance_change(
                name,
                ra.map(|v| v.as_slice()),
                rb.map(|v| v.as_slice()),
                (a.runs.len(), b.runs.len()),
                opts,
            )
        })
        .collect();
    instances.sort_by(|x, y| {
        (!x.regression, x.kind, &x.instance).cmp(&(!y.regression, y.kind, &y.instance))
    });
    let mut summary = Summary::default();
    for i in &instances {
        *summary.slot(i.kind) += 1;
    }
    let (ia, ib) = (SideInfo::of(&a), SideInfo::of(&b));
    let runs_compared = ia.runs >= 2 && ib.runs >= 2;
    let mut notes = notes(&a, &b, &ia, &ib, runs_compared);
    // A bench's rounds are repeated measurements of their own: one run
    // per side already has a spread for its series.
    let has_bench = |side: &Side| {
        side.runs
            .iter()
            .any(|r| r.scenarios.iter().any(|s| !s.samples.is_empty()))
    };
    let bench = has_bench(&a) && has_bench(&b);
    if bench && !runs_compared {
        if let Some(n) = notes
            .iter_mut()
            .find(|n| n.starts_with("timing not compared"))
        {
            *n = format!(
                "{n}; the bench series are compared all the same, each from its rounds \
                 ({CONFIDENT_RUNS} or more per side)"
            );
        }
    }
    let timing_compared = runs_compared || bench;
    let regression = instances.iter().any(|i| i.regression);
    Comparison {
        a: ia,
        b: ib,
        min_change_pct: opts.min_change_pct,
        timing_compared,
        notes,
        regression,
        summary,
        instances,
    }
}

/// One instance: its outcome on each side (of `runs` runs each), what
/// changed, and its timings when both sides have it.
fn instance_change(
    name: &str,
    ra: Option<&[&ScenarioResult]>,
    rb: Option<&[&ScenarioResult]>,
    runs: (usize, usize),
    opts: &Options,
) -> InstanceChange {
    let sa = ra.map(|v| SideOutcome::of(v, runs.0));
    let sb = rb.map(|v| SideOutcome::of(v, runs.1));
    // A result of the run itself (a console finding at boot, between
    // scenarios, at shutdown) exists only where the kernel complained: a
    // side without it had no complaint there, which is a pass.
    let of_run = ra.or(rb).is_some_and(|v| v.iter().all(|r| r.thp.is_none()));
    let verdict = |s: &Option<SideOutcome>| {
        s.as_ref()
            .map(|s| s.verdict)
            .or(of_run.then_some(Verdict::Pass))
    };
    let mut kind = ChangeKind::of(verdict(&sa), verdict(&sb));
    let timing = match (ra, rb) {
        (Some(ra), Some(rb)) => timings(ra, rb, opts),
        _ => vec![],
    };
    let slower = timing.iter().any(|t| t.flagged == Some(Direction::Slower));
    let faster = timing.iter().any(|t| t.flagged == Some(Direction::Faster));
    if kind == ChangeKind::Unchanged {
        if slower {
            kind = ChangeKind::Slower;
        } else if faster {
            kind = ChangeKind::Faster;
        }
    }
    InstanceChange {
        instance: name.to_string(),
        kind,
        regression: matches!(kind, ChangeKind::NewFailure | ChangeKind::NewlyFlaky) || slower,
        a: sa,
        b: sb,
        timing,
    }
}

impl Summary {
    /// The counter of a kind of change.
    fn slot(&mut self, kind: ChangeKind) -> &mut usize {
        match kind {
            ChangeKind::NewFailure => &mut self.new_failures,
            ChangeKind::NewlyFlaky => &mut self.newly_flaky,
            ChangeKind::Slower => &mut self.slower,
            ChangeKind::Fixed => &mut self.fixed,
            ChangeKind::Improved => &mut self.improved,
            ChangeKind::NewlySkipped => &mut self.newly_skipped,
            ChangeKind::Unskipped => &mut self.unskipped,
            ChangeKind::Added => &mut self.only_in_b,
            ChangeKind::Missing => &mut self.only_in_a,
            ChangeKind::StillFailing => &mut self.still_failing,
            ChangeKind::StillFlaky => &mut self.still_flaky,
            ChangeKind::Faster => &mut self.faster,
            ChangeKind::Unchanged => &mut self.unchanged,
        }
    }
}

/// What the reader must know to trust the comparison: timing not compared
/// or from few runs, different accelerators, runs that did not finish.
fn notes(a: &Side, b: &Side, ia: &SideInfo, ib: &SideInfo, timing_compared: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if !timing_compared {
        let single: Vec<&str> = [(ia, "A"), (ib, "B")]
            .into_iter()
            .filter(|(s, _)| s.runs < 2)
            .map(|(_, n)| n)
            .collect();
        notes.push(format!(
            "timing not compared: {} {} only one run, so there is no measured spread; \
             timing needs repeated runs on both sides: run `cargo xtask run-scenarios \
             --results-dir DIR` several times (5 or more for confident flags) per side and \
             compare the DIRs",
            single.join(" and "),
            if single.len() == 1 { "has" } else { "have" }
        ));
    }
    if ia.runs.min(ib.runs) > 1 && ia.runs.min(ib.runs) < CONFIDENT_RUNS {
        notes.push(format!(
            "few runs ({} and {}): two sets of identical runs land entirely apart in a \
             timing by chance 1 time in {}, so timing is flagged only with {CONFIDENT_RUNS} \
             or more runs per side",
            ia.runs,
            ib.runs,
            chance_apart(ia.runs, ib.runs)
        ));
    }
    if ia.accels != ib.accels {
        notes.push(format!(
            "A ran under {}, B under {}: timings are not comparable across accelerators",
            ia.accels.join("+"),
            ib.accels.join("+")
        ));
    }
    for (side, s) in [("A", a), ("B", b)] {
        for r in s.runs.iter().filter(|r| r.status != RunStatus::Finished) {
            notes.push(format!(
                "{side}: run {} ended as `{}`{}; its scenarios that never ran count as failures",
                r.run_id,
                r.status,
                r.error
                    .as_ref()
                    .map(|e| format!(" ({})", one_line(e)))
                    .unwrap_or_default()
            ));
        }
    }
    notes
}

/// The table printed on stdout: changed instances (regressions first), the
/// notes, a summary line.
pub fn render(c: &Comparison) -> String {
    let mut s = String::new();
    for (n, side) in [("A", &c.a), ("B", &c.b)] {
        let _ = writeln!(
            s,
            "{n}: {} ({} run{}; {}; {})",
            side.label,
            side.runs,
            if side.runs == 1 { "" } else { "s" },
            side.kernels.join(", "),
            side.accels.join("+")
        );
    }
    let _ = writeln!(s);
    s.push_str(&changes_table(c));
    let _ = writeln!(s);
    for n in &c.notes {
        let _ = writeln!(s, "note: {n}");
    }
    if c.timing_compared {
        let _ = writeln!(
            s,
            "timing: flagged when A's and B's values do not overlap or |median B - median A| > \
             max(spread A, spread B), and the change is > {}% \
             (duration of passing runs; migrate-to-device pages/s by step; a bench's \
             touch plus migration per case and size, over its rounds)",
            c.min_change_pct
        );
    }
    s.push_str(&summary_line(c));
    s
}

/// The changed instances as an aligned table, or that nothing changed.
fn changes_table(c: &Comparison) -> String {
    let mut s = String::new();
    let rows: Vec<[String; 5]> = c
        .instances
        .iter()
        .filter(|i| i.kind != ChangeKind::Unchanged)
        .flat_map(rows_of)
        .collect();
    if rows.is_empty() {
        let _ = writeln!(
            s,
            "no outcome changes{}",
            if c.timing_compared {
                " and no timing changes beyond noise"
            } else {
                ""
            }
        );
        return s;
    }
    let head = ["change", "instance", "A", "B", "detail"].map(String::from);
    let mut w = [0; 4];
    for r in std::iter::once(&head).chain(&rows) {
        for (k, cell) in r.iter().take(4).enumerate() {
            w[k] = w[k].max(cell.chars().count());
        }
    }
    for r in std::iter::once(&head).chain(&rows) {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        );
        let _ = writeln!(s, "{}", line.trim_end());
    }
    s
}

/// `REGRESSION: 1 new failure, 3 unchanged` or `no regression: …`.
fn summary_line(c: &Comparison) -> String {
    let m = &c.summary;
    let parts: Vec<String> = [
        (m.new_failures, "new failure"),
        (m.newly_flaky, "newly flaky"),
        (m.slower, "slower"),
        (m.fixed, "fixed"),
        (m.improved, "improved"),
        (m.newly_skipped, "newly skipped"),
        (m.unskipped, "unskipped"),
        (m.only_in_b, "only in B"),
        (m.only_in_a, "only in A"),
        (m.still_failing, "still failing"),
        (m.still_flaky, "still flaky"),
        (m.faster, "faster"),
        (m.unchanged, "unchanged"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    format!(
        "{}: {}\n",
        if c.regression {
            "REGRESSION"
        } else {
            "no regression"
        },
        if parts.is_empty() {
            "no scenarios".to_string()
        } else {
            parts.join(", ")
        }
    )
}

/// Table rows of one changed instance: its outcome change (with B's failure
/// message, or A's for a fix), then one row per flagged timing.
fn rows_of(i: &InstanceChange) -> Vec<[String; 5]> {
    let side = |o: &Option<SideOutcome>| o.as_ref().map_or("-".to_string(), |o| o.describe());
    let outcome_changed = !matches!(i.kind, ChangeKind::Slower | ChangeKind::Faster);
    let mut rows = Vec::new();
    if outcome_changed {
        let detail = match i.kind {
            ChangeKind::Fixed | ChangeKind::Improved => i.a.as_ref(),
            _ => i.b.as_ref().or(i.a.as_ref()),
        }
        .and_then(|o| o.message.clone())
        .unwrap_or_default();
        rows.push([
            i.kind.as_str().to_string(),
            i.instance.clone(),
            side(&i.a),
            side(&i.b),
            one_line(&detail),
        ]);
    }
    for t in i.flagged() {
        let (Some(a), Some(b)) = (t.a, t.b) else {
            continue;
        };
        let label = if outcome_changed {
            match t.flagged {
                Some(Direction::Slower) => "  and slower",
                _ => "  and faster",
            }
        } else {
            i.kind.as_str()
        };
        rows.push([
            label.to_string(),
            i.instance.clone(),
            t.fmt_value(a.median),
            t.fmt_value(b.median),
            format!(
                "{}: {:+.1}% (spread A {}, B {}; {} vs {} runs)",
                t.metric,
                t.change_pct.unwrap_or(0.0),
                t.fmt_value(a.spread),
                t.fmt_value(b.spread),
                a.n,
                b.n
            ),
        ]);
    }
    rows
}

fn one_line(s: &str) -> String {
    let s = s.lines().next().unwrap_or("");
    if s.chars().count() > 100 {
        format!("{}…", s.chars().take(99).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::StepResult;

    /// A scenario result with one snapshot step and one migrate step.
    fn sc(name: &str, outcome: Outcome, duration_ms: f64, rate: f64) -> ScenarioResult {
        let step = |index, op: &str, rate| StepResult {
            index,
            op: Op::from_name(op).expect("an op name"),
            outcome: Outcome::Pass,
            duration_ns: 1000,
            pages: 128,
            cpages: Some(128),
            faults: None,
            pages_per_sec: rate,
            message: None,
        };
        let thp =
            serde_json::from_value(serde_json::json!(name.rsplit('@').next().unwrap())).unwrap();
        ScenarioResult {
            duration_ns: (duration_ms * 1e6) as u64,
            message: outcome
                .is_failure()
                .then(|| "step 1 (migrate-to-device): cpages: expected 127, got 128".into()),
            steps: vec![step(0, "snapshot", None), step(1, MIGRATE_OP, Some(rate))],
            ..ScenarioResult::new(name, outcome, thp, "")
        }
    }

    fn run(scenarios: Vec<ScenarioResult>) -> RunReport {
        RunReport::for_tests(scenarios)
    }

    fn cmp(a: &[RunReport], b: &[RunReport]) -> Comparison {
        compare(
            Side {
                label: "a",
                runs: a,
            },
            Side {
                label: "b",
                runs: b,
            },
            &Options::default(),
        )
    }

    fn get<'a>(c: &'a Comparison, name: &str) -> &'a InstanceChange {
        c.instances
            .iter()
            .find(|i| i.instance == name)
            .unwrap_or_else(|| panic!("{name} not in {c:#?}"))
    }

    /// A bench instance of one run: `direct` at 64 pages, these totals.
    fn bench(totals_ms: &[f64]) -> ScenarioResult {
        let mut r = sc("seed@never", Outcome::Pass, 100.0, 1.0);
        r.steps.clear();
        r.samples = totals_ms
            .iter()
            .enumerate()
            .map(|(i, ms)| crate::report::bench::Sample {
                case: hmmlab_proto::bench::BenchCase::Direct,
                pages: 64,
                round: i as u32,
                prepare_ns: 0,
                migrate_ns: (ms * 1e6) as u64,
            })
            .collect();
        r
    }

    #[test]
    fn a_bench_is_compared_from_its_rounds_in_one_run_per_side() {
        let a = [run(vec![bench(&[1.0, 1.1, 1.05, 0.95, 1.0])])];
        let same = [run(vec![bench(&[1.02, 1.08, 0.97, 1.0, 1.04])])];
        let c = cmp(&a, &same);
        assert!(c.timing_compared && !c.regression, "{}", render(&c));
        let t = get(&c, "seed@never")
            .timing
            .iter()
            .find(|t| t.metric == "bench direct 64p")
            .expect("the bench series is compared");
        assert!(t.compared && t.flagged.is_none());
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("bench series are compared all the same")),
            "{:?}",
            c.notes
        );
        // Planted: every round 40 % slower.
        let slow = [run(vec![bench(&[1.4, 1.5, 1.45, 1.4, 1.42])])];
        let c = cmp(&a, &slow);
        assert!(c.regression, "{}", render(&c));
        let i = get(&c, "seed@never");
        assert_eq!(i.kind, ChangeKind::Slower);
        assert!(render(&c).contains("bench direct 64p"), "{}", render(&c));
        // A noisy slowdown: B's own spread (14..37 ms) exceeds the change
        // of the medians, but no round of B comes near any of A.
        let noisy = [run(vec![bench(&[14.3, 18.8, 36.9, 15.0, 20.0])])];
        let c = cmp(&[run(vec![bench(&[0.52, 0.58, 1.17, 0.55, 0.6])])], &noisy);
        assert!(c.regression, "{}", render(&c));
        // Fewer than five rounds a side: shown, never flagged.
        let c = cmp(
            &[run(vec![bench(&[1.0, 1.1])])],
            &[run(vec![bench(&[2.0, 2.1])])],
        );
        assert!(!c.regression, "{}", render(&c));
    }

    const Z: &str = "zero-page@never";
    const E: &str = "empty-one-page@madvise";

    #[test]
    fn pass_to_fail_is_a_new_failure_listed_first() {
        let a = [run(vec![
            sc(E, Outcome::Pass, 50.0, 500.0),
            sc(Z, Outcome::Pass, 30.0, 8e4),
        ])];
        let b = [run(vec![
            sc(E, Outcome::Pass, 50.0, 500.0),
            sc(Z, Outcome::Fail, 30.0, 8e4),
        ])];
        let c = cmp(&a, &b);
        assert!(c.regression);
        assert_eq!(c.instances[0].instance, Z);
        assert_eq!(c.instances[0].kind, ChangeKind::NewFailure);
        assert_eq!(get(&c, E).kind, ChangeKind::Unchanged);
        assert_eq!(c.summary.new_failures, 1);
        let table = render(&c);
        assert!(table.contains("new failure"), "{table}");
        assert!(table.contains("expected 127, got 128"), "{table}");
        assert!(table.contains("REGRESSION"), "{table}");
        // The reverse is a fix, not a regression.
        let c = cmp(&b, &a);
        assert!(!c.regression);
        assert_eq!(get(&c, Z).kind, ChangeKind::Fixed);
        assert!(render(&c).contains("no regression"));
    }

    #[test]
    fn every_failing_outcome_counts_and_skips_are_not_failures() {
        for o in [Outcome::Timeout, Outcome::Crashed, Outcome::Error] {
            let c = cmp(
                &[run(vec![sc(Z, Outcome::Skip, 1.0, 1.0)])],
                &[run(vec![sc(Z, o, 1.0, 1.0)])],
            );
            assert_eq!(get(&c, Z).kind, ChangeKind::NewFailure, "{o:?}");
        }
        let c = cmp(
            &[run(vec![sc(Z, Outcome::Pass, 1.0, 1.0)])],
            &[run(vec![sc(Z, Outcome::Skip, 1.0, 1.0)])],
        );
        assert_eq!(get(&c, Z).kind, ChangeKind::NewlySkipped);
        assert!(!c.regression);
    }

    #[test]
    fn flaky_says_how_many_of_n() {
        let a = [
            run(vec![sc(Z, Outcome::Pass, 30.0, 8e4)]),
            run(vec![sc(Z, Outcome::Pass, 30.0, 8e4)]),
            run(vec![sc(Z, Outcome::Pass, 30.0, 8e4)]),
        ];
        let b = [
            run(vec![sc(Z, Outcome::Pass, 30.0, 8e4)]),
            run(vec![sc(Z, Outcome::Timeout, 30.0, 8e4)]),
            run(vec![sc(Z, Outcome::Pass, 30.0, 8e4)]),
        ];
        let c = cmp(&a, &b);
        let i = get(&c, Z);
        assert_eq!(i.kind, ChangeKind::NewlyFlaky);
        assert!(i.regression);
        let sb = i.b.as_ref().unwrap();
        assert_eq!((sb.verdict, sb.failed, sb.runs), (Verdict::Flaky, 1, 3));
        assert_eq!(sb.describe(), "flaky: failed 1 of 3");
        assert_eq!(i.a.as_ref().unwrap().describe(), "pass 3/3");
        // Flaky on both sides is reported, not a regression.
        let c = cmp(&b, &b);
        assert_eq!(get(&c, Z).kind, ChangeKind::StillFlaky);
        assert!(!c.regression);
        // Flaky to always failing is a new failure; flaky to always passing a fix.
        let fail = [
            run(vec![sc(Z, Outcome::Fail, 30.0, 8e4)]),
            run(vec![sc(Z, Outcome::Fail, 30.0, 8e4)]),
        ];
        assert_eq!(get(&cmp(&b, &fail), Z).kind, ChangeKind::NewFailure);
        assert_eq!(get(&cmp(&b, &a), Z).kind, ChangeKind::Fixed);
        assert_eq!(get(&cmp(&fail, &b), Z).kind, ChangeKind::Improved);
    }

    #[test]
    fn missing_and_new_instances() {
        let a = [run(vec![
            sc(E, Outcome::Pass, 1.0, 1.0),
            sc(Z, Outcome::Pass, 1.0, 1.0),
        ])];
        let b = [run(vec![
            sc(E, Outcome::Pass, 1.0, 1.0),
            sc("thp-split@madvise", Outcome::Fail, 1.0, 1.0),
        ])];
        let c = cmp(&a, &b);
        assert_eq!(get(&c, Z).kind, ChangeKind::Missing);
        assert!(get(&c, Z).b.is_none());
        assert_eq!(get(&c, "thp-split@madvise").kind, ChangeKind::Added);
        assert!(
            !c.regression,
            "a changed scenario set is reported, not a regression"
        );
        assert_eq!((c.summary.only_in_a, c.summary.only_in_b), (1, 1));
        let table = render(&c);
        assert!(
            table.contains("only in A") && table.contains("only in B"),
            "{table}"
        );
        // In only some runs of a side: said so.
        let b2 = [
            run(vec![
                sc(E, Outcome::Pass, 1.0, 1.0),
                sc(Z, Outcome::Pass, 1.0, 1.0),
            ]),
            run(vec![sc(E, Outcome::Pass, 1.0, 1.0)]),
        ];
        let c = cmp(&a, &b2);
        assert_eq!(
            get(&c, Z).b.as_ref().unwrap().describe(),
            "pass (in 1 of 2 runs)"
        );
    }

    fn runs_with(durations_ms: &[f64], rates: &[f64]) -> Vec<RunReport> {
        durations_ms
            .iter()
            .zip(rates)
            .map(|(&d, &r)| run(vec![sc(Z, Outcome::Pass, d, r)]))
            .collect()
    }

    #[test]
    fn a_change_within_the_spread_is_not_flagged() {
        // Medians 30 → 40 ms (+33%), but A's runs spread over 20 ms.
        let a = runs_with(&[20.0, 25.0, 30.0, 35.0, 40.0], &[8e4; 5]);
        let b = runs_with(&[39.0, 39.5, 40.0, 40.5, 41.0], &[8e4; 5]);
        let c = cmp(&a, &b);
        let t = &get(&c, Z).timing[0];
        assert_eq!(t.metric, "duration");
        assert!(t.compared);
        assert!(t.change_pct.unwrap() > 30.0);
        assert_eq!(t.flagged, None);
        assert!(!c.regression);
        assert_eq!(get(&c, Z).kind, ChangeKind::Unchanged);
    }

    #[test]
    fn a_change_beyond_the_spread_and_threshold_is_flagged() {
        let a = runs_with(
            &[29.0, 29.5, 30.0, 30.5, 31.0],
            &[7.9e4, 7.95e4, 8e4, 8.05e4, 8.1e4],
        );
        let b = runs_with(
            &[39.0, 39.5, 40.0, 40.5, 41.0],
            &[3.9e4, 3.95e4, 4e4, 4.05e4, 4.1e4],
        );
        let c = cmp(&a, &b);
        let i = get(&c, Z);
        assert_eq!(i.kind, ChangeKind::Slower);
        assert!(i.regression && c.regression);
        assert_eq!(i.timing[0].flagged, Some(Direction::Slower));
        // The migrate step's throughput halved: slower too (lower pages/s).
        let step = i.timing.iter().find(|t| t.step == Some(1)).unwrap();
        assert_eq!(step.metric, "step 1 migrate-to-device");
        assert_eq!(step.flagged, Some(Direction::Slower));
        assert!((step.change_pct.unwrap() + 50.0).abs() < 1e-9);
        let table = render(&c);
        assert!(
            table.contains("slower") && table.contains("+33.3%"),
            "{table}"
        );
        // The other way round it is faster, and not a regression.
        let c = cmp(&b, &a);
        assert_eq!(get(&c, Z).kind, ChangeKind::Faster);
        assert!(!c.regression);
    }

    #[test]
    fn a_change_beyond_the_spread_but_under_the_threshold_is_not_flagged() {
        // +5%, spread 0.2 ms: beyond noise, under the default 10%.
        let a = runs_with(&[40.0, 40.05, 40.1, 40.15, 40.2], &[8e4; 5]);
        let b = runs_with(&[42.0, 42.05, 42.1, 42.15, 42.2], &[8e4; 5]);
        let c = cmp(&a, &b);
        assert_eq!(get(&c, Z).timing[0].flagged, None);
        let c = compare(
            Side {
                label: "a",
                runs: &a,
            },
            Side {
                label: "b",
                runs: &b,
            },
            &Options {
                min_change_pct: 2.0,
            },
        );
        assert_eq!(get(&c, Z).timing[0].flagged, Some(Direction::Slower));
    }

    #[test]
    fn fewer_than_five_runs_per_side_never_flag_timing() {
        // Wholly apart and +33%, but 3 runs per side: identical runs land
        // apart like this 1 time in 10.
        let a = runs_with(&[29.0, 30.0, 31.0], &[8e4; 3]);
        let b = runs_with(&[39.0, 40.0, 41.0], &[8e4; 3]);
        let c = cmp(&a, &b);
        assert_eq!(get(&c, Z).timing[0].flagged, None);
        assert!(!c.regression);
    }

    #[test]
    fn one_run_per_side_never_flags_timing() {
        let a = runs_with(&[10.0], &[8e4]);
        let b = runs_with(&[100.0], &[1e3]);
        let c = cmp(&a, &b);
        assert!(!c.timing_compared);
        assert!(!c.regression);
        assert!(get(&c, Z)
            .timing
            .iter()
            .all(|t| !t.compared && t.flagged.is_none()));
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("timing needs repeated runs")),
            "{:?}",
            c.notes
        );
        let table = render(&c);
        assert!(table.contains("timing needs repeated runs"), "{table}");
        // One side with several runs is not enough either.
        let a = runs_with(&[10.0, 10.0, 10.0], &[8e4, 8e4, 8e4]);
        let c = cmp(&a, &b);
        assert!(!c.timing_compared && !c.regression);
        assert!(c.notes[0].contains("B has only one run"), "{:?}", c.notes);
    }

    #[test]
    fn failed_runs_do_not_count_as_timing_samples() {
        // B's third run failed fast; its duration is not a sample.
        let a = runs_with(&[30.0, 30.5], &[8e4, 8e4]);
        let mut b = runs_with(&[30.0, 30.5], &[8e4, 8e4]);
        b.push(run(vec![sc(Z, Outcome::Fail, 1.0, 1.0)]));
        let c = cmp(&a, &b);
        let i = get(&c, Z);
        assert_eq!(i.kind, ChangeKind::NewlyFlaky);
        assert_eq!(i.timing[0].b.unwrap().n, 2);
        assert_eq!(i.timing[0].flagged, None);
    }

    #[test]
    fn chance_apart_is_half_the_binomial() {
        assert_eq!(chance_apart(2, 2), 3);
        assert_eq!(chance_apart(3, 3), 10);
        assert_eq!(chance_apart(5, 5), 126);
        assert_eq!(chance_apart(2, 5), 10);
        assert_eq!(chance_apart(5, 2), 10);
        assert_eq!(chance_apart(200, 200), u64::MAX);
    }

    #[test]
    fn few_runs_get_a_note_many_do_not() {
        let two = runs_with(&[30.0, 31.0], &[8e4, 8e4]);
        let c = cmp(&two, &two);
        assert!(
            c.notes.iter().any(|n| n.contains("1 time in 3")),
            "{:?}",
            c.notes
        );
        let five = runs_with(&[30.0; 5], &[8e4; 5]);
        assert!(cmp(&five, &five).notes.is_empty());
    }

    #[test]
    fn stats_median_and_spread() {
        assert_eq!(
            Stats::of(&[3.0, 1.0, 2.0]),
            Some(Stats {
                n: 3,
                median: 2.0,
                min: 1.0,
                max: 3.0,
                spread: 2.0
            })
        );
        assert_eq!(Stats::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(Stats::of(&[]), None);
    }

    #[test]
    fn notes_on_accelerators_and_unfinished_runs() {
        let a = [run(vec![sc(Z, Outcome::Pass, 1.0, 1.0)])];
        let mut b = [run(vec![sc(Z, Outcome::Crashed, 1.0, 1.0)])];
        b[0].accel = crate::machine::Accel::Kvm;
        b[0].status = RunStatus::Interrupted;
        let c = cmp(&a, &b);
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("tcg") && n.contains("kvm")),
            "{:?}",
            c.notes
        );
        assert!(
            c.notes.iter().any(|n| n.contains("interrupted")),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn json_names_kinds_in_kebab_case() {
        let a = [run(vec![sc(Z, Outcome::Pass, 1.0, 1.0)])];
        let b = [run(vec![sc(Z, Outcome::Fail, 1.0, 1.0)])];
        let j = serde_json::to_value(cmp(&a, &b)).unwrap();
        assert_eq!(j["regression"], true);
        assert_eq!(j["instances"][0]["kind"], "new-failure");
        assert_eq!(j["instances"][0]["b"]["verdict"], "fail");
        assert_eq!(j["summary"]["new_failures"], 1);
    }

    #[test]
    fn a_new_complaint_at_boot_is_a_new_failure() {
        let mut boot = ScenarioResult::for_tests("boot", Outcome::Fail);
        boot.thp = None;
        let a = [run(vec![sc(Z, Outcome::Pass, 1.0, 1.0)])];
        let b = [run(vec![sc(Z, Outcome::Pass, 1.0, 1.0), boot])];
        let c = cmp(&a, &b);
        assert_eq!(get(&c, "boot").kind, ChangeKind::NewFailure);
        assert!(c.regression);
        let back = cmp(&b, &a);
        assert_eq!(get(&back, "boot").kind, ChangeKind::Fixed);
    }
}
