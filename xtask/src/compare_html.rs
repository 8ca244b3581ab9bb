//! The page of `cargo xtask compare A B --html FILE`: A and B side by side
//! (runs, kernels, accelerators), whether B regressed and the count of
//! each kind of change, the notes; then the outcome changes, new failures
//! first and fixes next, with both sides' outcomes and the message that
//! explains each; then every instance's duration on both sides, the
//! passing runs' min to max drawn as a range with the median as a tick on
//! one scale (inline SVG), so a timing change shows as B's range moving
//! away from A's. A pure function of the [`Comparison`] the table and the
//! JSON are printed from, on the shared page chrome
//! (`hmmlab_harness::report::page`): no network, no external script.

use std::collections::BTreeMap;

use hmmlab_harness::compare::{
    ChangeKind, Comparison, Direction, InstanceChange, SideInfo, SideOutcome, Stats, Verdict,
};
use hmmlab_harness::report::page::{self, chip, duration, outcome_class, Facet};
use hmmlab_proto::Outcome;
use maud::{html, Markup, PreEscaped};

/// The id of the durations table (the filters name it).
const TIMINGS: &str = "timings";

/// Width and height of a durations plot (SVG user units, pixels).
const PLOT_W: f64 = 220.0;
const PLOT_H: f64 = 24.0;

/// Side A's and side B's colours in the plots.
const A_COLOUR: &str = "#8a98a6";
const B_COLOUR: &str = "#3f6d9e";
const SLOWER_COLOUR: &str = "#c0392b";

/// This page's own rules, over the shared style sheet.
const CSS: &str = "
.sides { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
.side { border: 1px solid var(--line); padding: .3em .9em .6em; }
.side h2 { margin-top: .3em; }
.key { display: inline-block; width: .9em; height: .9em; vertical-align: middle; border-radius: 2px; }
svg.range { background: var(--panel); vertical-align: middle; }
td.plot { white-space: nowrap; }
td.why { max-width: 32em; }
";

/// The colour of a verdict, as an outcome class (flaky: the orange of errors).
fn verdict_colour(v: Verdict) -> Outcome {
    match v {
        Verdict::Pass => Outcome::Pass,
        Verdict::Skip => Outcome::Skip,
        Verdict::Fail => Outcome::Fail,
        Verdict::Flaky => Outcome::Error,
    }
}

/// The colour of a change: red for a regression, green for a fix, orange
/// for what stays broken, grey for the rest.
fn kind_colour(k: ChangeKind) -> Outcome {
    match k {
        ChangeKind::NewFailure | ChangeKind::NewlyFlaky | ChangeKind::Slower => Outcome::Fail,
        ChangeKind::Fixed | ChangeKind::Improved | ChangeKind::Unskipped | ChangeKind::Faster => {
            Outcome::Pass
        }
        ChangeKind::StillFailing | ChangeKind::StillFlaky => Outcome::Error,
        ChangeKind::NewlySkipped
        | ChangeKind::Added
        | ChangeKind::Missing
        | ChangeKind::Unchanged => Outcome::Skip,
    }
}

/// A change of outcome (not of timing, not none).
fn outcome_changed(k: ChangeKind) -> bool {
    !matches!(
        k,
        ChangeKind::Slower | ChangeKind::Faster | ChangeKind::Unchanged
    )
}

/// The whole page.
pub fn render(c: &Comparison) -> String {
    page::page(
        &format!("hmmlab compare {} → {}", c.a.label, c.b.label),
        html! {
            style { (PreEscaped(CSS)) }
            h1 { "hmmlab compare" }
            div class="sides" {
                (side("A", "baseline", &c.a, A_COLOUR))
                (side("B", "compared with A", &c.b, B_COLOUR))
            }
            (counts(c))
            @if !c.notes.is_empty() {
                ul id="notes" { @for n in &c.notes { li { (n) } } }
            }
            (changes(c))
            (timings(c))
        },
    )
    .into_string()
}

/// One side: its label, runs, kernels and accelerators.
fn side(name: &str, role: &str, s: &SideInfo, colour: &str) -> Markup {
    html! {
        div class="side" id={ "side-" (name) } {
            h2 {
                span class="key" style={ "background:" (colour) } {} " "
                (name) " " span class="muted" { "(" (role) ")" }
            }
            p class="mono" { (s.label) }
            dl class="facts" {
                dt { "runs" } dd { (s.runs) }
                dt { "kernel" } dd { (s.kernels.join(", ")) }
                dt { "accelerator" } dd { (s.accels.join(", ")) }
                dt { "run ids" } dd class="mono" { (s.run_ids.join(", ")) }
            }
        }
    }
}

/// Regression or not, and each kind of change that occurred with its count.
fn counts(c: &Comparison) -> Markup {
    let mut by_kind: BTreeMap<ChangeKind, usize> = BTreeMap::new();
    for i in &c.instances {
        *by_kind.entry(i.kind).or_default() += 1;
    }
    html! {
        div class="counts" id="counts" {
            @if c.regression {
                (chip(Outcome::Fail, "B regressed"))
            } @else {
                (chip(Outcome::Pass, "no regression"))
            }
            span class="chip" { (c.instances.len()) " instances" }
            @for (k, n) in &by_kind {
                (chip(kind_colour(*k), &format!("{n} {}", k.as_str())))
            }
        }
    }
}

/// An instance's outcome on one side: its chip, or a dash.
fn side_outcome(s: Option<&SideOutcome>) -> Markup {
    html! {
        @match s {
            Some(s) => (chip(verdict_colour(s.verdict), &s.describe())),
            None => span class="muted" { "-" },
        }
    }
}

/// The message that explains a change: B's when B fails or skips, else A's.
fn why(i: &InstanceChange) -> Option<&str> {
    fn fails(s: &Option<SideOutcome>) -> Option<&str> {
        s.as_ref()
            .filter(|s| s.verdict != Verdict::Pass)
            .and_then(|s| s.message.as_deref())
    }
    fails(&i.b).or_else(|| fails(&i.a))
}

/// The outcome changes, in the comparison's order: new failures and newly
/// flaky instances first, then fixes, then the rest.
fn changes(c: &Comparison) -> Markup {
    let changed: Vec<&InstanceChange> = c
        .instances
        .iter()
        .filter(|i| outcome_changed(i.kind))
        .collect();
    html! {
        section id="changes" {
            h2 { "Outcome changes (" (changed.len()) ")" }
            @if changed.is_empty() {
                p class="muted" { "None: every instance has the same outcome on both sides." }
            } @else {
                table {
                    thead { tr { th { "instance" } th { "change" } th { "A" } th { "B" } th { "why" } } }
                    tbody {
                        @for i in &changed {
                            tr class={ "row " (outcome_class(kind_colour(i.kind))) } data-instance=(i.instance)
                                data-kind=(slug(i.kind.as_str())) {
                                td class="mono name" { (i.instance) }
                                td { (chip(kind_colour(i.kind), i.kind.as_str())) }
                                td { (side_outcome(i.a.as_ref())) }
                                td { (side_outcome(i.b.as_ref())) }
                                td class="why" {
                                    @if let Some(m) = why(i) {
                                        @match m.split_once('\n') {
                                            Some((first, _)) => details {
                                                summary { (first) } pre { (m) }
                                            },
                                            None => (m),
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `35.2 ms`, and `(33.0 ms – 37.4 ms, 3 runs)` when there are several.
fn stats_text(s: Option<&Stats>) -> Markup {
    html! {
        @match s {
            Some(s) => {
                (duration(s.median as u64))
                @if s.n > 1 {
                    br;
                    span class="muted" {
                        (duration(s.min as u64)) " – " (duration(s.max as u64)) ", " (s.n) " runs"
                    }
                }
            }
            None => span class="muted" { "-" },
        }
    }
}

/// Every instance with its duration on both sides.
fn timings(c: &Comparison) -> Markup {
    let mut kinds: Vec<ChangeKind> = c.instances.iter().map(|i| i.kind).collect();
    kinds.sort();
    kinds.dedup();
    let facets = [Facet {
        name: "kind",
        label: "change",
        choices: kinds
            .iter()
            .map(|k| (slug(k.as_str()), k.as_str().to_string()))
            .collect(),
    }];
    html! {
        section {
            h2 { "Durations" }
            p class="muted" {
                "Each instance's duration over the passing runs of each side: the thin line runs "
                "from zero to the median (the tick), the bar spans the shortest to the longest "
                "run; both sides on one scale, from zero to the longer of the two. "
                span class="key" style={ "background:" (A_COLOUR) } {} " A "
                span class="key" style={ "background:" (B_COLOUR) } {} " B "
                span class="key" style={ "background:" (SLOWER_COLOUR) } {} " B flagged slower"
                @if c.timing_compared {
                    " A change is flagged when the medians differ by more than both spreads and by more than "
                    (c.min_change_pct) "%."
                }
            }
            (page::filters(TIMINGS, &facets, c.instances.len()))
            table id=(TIMINGS) {
                thead { tr {
                    th { "instance" } th { "A" } th { "B" } th class="num" { "A duration" }
                    th class="num" { "B duration" } th class="num" { "change" } th { "A and B" }
                } }
                tbody {
                    @for i in &c.instances {
                        (timing_row(i))
                    }
                }
            }
        }
    }
}

/// `new failure` → `new-failure`: a change kind as one word for the filters.
fn slug(s: &str) -> String {
    s.replace(' ', "-")
}

fn timing_row(i: &InstanceChange) -> Markup {
    let t = i.timing.iter().find(|t| t.step.is_none());
    let (a, b) = (t.and_then(|t| t.a.as_ref()), t.and_then(|t| t.b.as_ref()));
    let flagged = t.and_then(|t| t.flagged);
    html! {
        tr class={ "row " (outcome_class(kind_colour(i.kind))) } data-kind=(slug(i.kind.as_str()))
            data-instance=(i.instance) {
            td class="mono name" { (i.instance) }
            td { (side_outcome(i.a.as_ref())) }
            td { (side_outcome(i.b.as_ref())) }
            td class="num" { (stats_text(a)) }
            td class="num" { (stats_text(b)) }
            td class="num" {
                @if let Some(p) = t.and_then(|t| t.change_pct) { (format!("{p:+.1}%")) }
                @match flagged {
                    Some(Direction::Slower) => { br; (chip(Outcome::Fail, "slower")) }
                    Some(Direction::Faster) => { br; (chip(Outcome::Pass, "faster")) }
                    None => {}
                }
            }
            td class="plot" { @if a.is_some() || b.is_some() { (plot(a, b, flagged)) } }
        }
    }
}

/// A's and B's range and median on one scale from zero.
fn plot(a: Option<&Stats>, b: Option<&Stats>, flagged: Option<Direction>) -> Markup {
    let top = a.iter().chain(&b).map(|s| s.max).fold(0.0, f64::max);
    let x = |v: f64| {
        if top > 0.0 {
            1.0 + v / top * (PLOT_W - 3.0)
        } else {
            1.0
        }
    };
    let b_colour = if flagged == Some(Direction::Slower) {
        SLOWER_COLOUR
    } else {
        B_COLOUR
    };
    let bars = [("A", a, 3.0, A_COLOUR), ("B", b, 13.0, b_colour)];
    html! {
        svg class="range" width=(PLOT_W) height=(PLOT_H) viewBox={ "0 0 " (PLOT_W) " " (PLOT_H) }
            role="img" aria-label="durations of A and B" {
            @for (name, s, y, colour) in bars {
                @if let Some(s) = s {
                    @let (x0, x1) = (x(s.min), x(s.max));
                    g data-side=(name) {
                        title {
                            (name) ": median " (duration(s.median as u64)) ", "
                            (duration(s.min as u64)) " – " (duration(s.max as u64)) ", " (s.n) " runs"
                        }
                        rect x="1" y=(y + 3.0) width=(format!("{:.1}", x(s.median) - 1.0)) height="2"
                            fill=(colour) opacity="0.35" {}
                        rect class="spread" x=(format!("{x0:.1}")) y=(y) width=(format!("{:.1}", (x1 - x0).max(2.0)))
                            height="8" fill=(colour) opacity="0.55" {}
                        rect x=(format!("{:.1}", x(s.median) - 1.0)) y=(y - 1.0) width="2" height="10"
                            fill=(colour) {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmmlab_harness::compare::{compare, Options, Side};
    use hmmlab_harness::report::RunReport;

    use crate::paths::fixture_run as fixture;

    fn page(a: &[RunReport], b: &[RunReport]) -> String {
        let c = compare(
            Side {
                label: "results/a <1>",
                runs: a,
            },
            Side {
                label: "results/b&2",
                runs: b,
            },
            &Options::default(),
        );
        render(&c)
    }

    #[test]
    fn a_new_failure_comes_first_with_its_message_escaped() {
        let a = fixture("default-suite");
        let mut b = a.clone();
        let broken = b
            .scenarios
            .iter_mut()
            .find(|s| s.name == "release@madvise")
            .unwrap();
        broken.outcome = Outcome::Fail;
        broken.message = Some("step 3: expected <0x00> & got \"x\"".into());
        let mut a_failing = a.clone();
        a_failing
            .scenarios
            .iter_mut()
            .find(|s| s.name == "zero-page@never")
            .unwrap()
            .outcome = Outcome::Crashed;
        b.run_id = "b-run".into();
        let p = page(&[a_failing], &[b.clone()]);
        assert!(
            p.contains("results/a &lt;1&gt;") && p.contains("results/b&amp;2"),
            "{p}"
        );
        assert!(
            p.contains("expected &lt;0x00&gt; &amp; got &quot;x&quot;"),
            "{p}"
        );
        let changes = &p[p.find("id=\"changes\"").unwrap()..p.find("id=\"timings\"").unwrap()];
        let new = changes.find("data-instance=\"release@madvise\"").unwrap();
        let fixed = changes.find("data-instance=\"zero-page@never\"").unwrap();
        assert!(
            new < fixed,
            "the new failure is listed before the fix: {changes}"
        );
        assert!(changes.contains("data-kind=\"new-failure\""), "{changes}");
        assert!(changes.contains("data-kind=\"fixed\""), "{changes}");
        assert_eq!(changes.matches("<tr class=\"row ").count(), 2, "{changes}");
        assert!(p.contains("B regressed"), "{p}");
        assert!(p.contains("1 new failure") && p.contains("1 fixed"), "{p}");
        // One durations row per instance, with a plot where either side passed.
        let timings = &p[p.find("id=\"timings\"").unwrap()..];
        assert_eq!(
            timings.matches("<tr class=\"row ").count(),
            a.scenarios.len(),
            "{timings}"
        );
        assert_eq!(
            timings.matches("<svg class=\"range\"").count(),
            a.scenarios.len(),
            "{timings}"
        );
        assert!(!p.contains("http"), "nothing is fetched: {p}");
    }

    #[test]
    fn a_slower_instance_is_flagged_and_drawn_apart() {
        let a: Vec<RunReport> = (0..5u64)
            .map(|k| {
                let mut r = fixture("failed");
                for s in &mut r.scenarios {
                    s.duration_ns = 100_000_000 + k * 1_000_000;
                }
                r
            })
            .collect();
        let b: Vec<RunReport> = a
            .iter()
            .map(|r| {
                let mut r = r.clone();
                for s in r
                    .scenarios
                    .iter_mut()
                    .filter(|s| s.name == "empty-anon@never")
                {
                    s.duration_ns *= 2;
                }
                r
            })
            .collect();
        let p = page(&a, &b);
        let row = &p[p.rfind("data-instance=\"empty-anon@never\"").unwrap()..];
        let row = &row[..row.find("</tr>").unwrap()];
        assert!(row.contains("slower") && row.contains("+100.0%"), "{row}");
        assert!(row.contains(SLOWER_COLOUR), "{row}");
        assert!(row.contains("100.0 ms – 104.0 ms, 5 runs"), "{row}");
        assert!(row.contains("200.0 ms – 208.0 ms, 5 runs"), "{row}");
        // B's range starts right of where A's ends.
        let range = |side: &str| -> (f64, f64) {
            let g = &row[row.find(&format!("data-side=\"{side}\"")).unwrap()..];
            let g = &g[g.find("class=\"spread\"").unwrap()..];
            let num = |attr: &str| -> f64 {
                let at = g.find(&format!(" {attr}=\"")).unwrap() + attr.len() + 3;
                g[at..at + g[at..].find('"').unwrap()].parse().unwrap()
            };
            (num("x"), num("x") + num("width"))
        };
        let (a, b) = (range("A"), range("B"));
        assert!(a.1 < b.0, "A {a:?} and B {b:?} overlap: {row}");
        assert!(b.1 <= PLOT_W && a.0 > 0.0, "{row}");
    }
}
