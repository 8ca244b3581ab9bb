//! `report.html`: one run for people, in one self-contained file (inline
//! style, inline SVG, a few lines of script for the filters and the copy
//! buttons; nothing is fetched). The kernel, its configuration and the
//! machine at the top, the outcome counts, then every scenario instance
//! coloured by outcome with filters by outcome, THP mode and device, each
//! with its steps' timings; then each failure with its message, the console
//! excerpts the report gives it and its reproduce line; then the skips with
//! their reasons. A pure function of the final report, like the other
//! files; the page chrome is [`super::page`]'s, for other pages to share.

use std::collections::BTreeMap;

use anyhow::Result;
use hmmlab_proto::Outcome;
use maud::{html, Markup};

use super::model::{RunReport, RunStatus, ScenarioResult, StepResult};
use super::page::{self, bar, chip, copy_line, duration, outcome_class, Facet, OUTCOMES};
use super::skips::{self, Skips};
use crate::console::Finding;

/// The id of the instances table (the filters name it).
const TABLE: &str = "instances";

pub fn render(r: &RunReport) -> Result<String> {
    Ok(markup(r).into_string())
}

/// The whole page of the run `r`.
pub fn markup(r: &RunReport) -> Markup {
    let no_results = matches!(r.status, RunStatus::InfraError | RunStatus::BadInput);
    page::page(
        &format!("hmmlab run {} ({})", r.run_id, r.status),
        html! {
            (header(r))
            @if no_results {
                section id="run-error" {
                    h2 { "No result counts: " (r.status) }
                    pre { (r.error.as_deref().unwrap_or("no reason was recorded")) }
                }
            } @else {
                @if let Some(e) = &r.error {
                    section id="run-problem" {
                        h2 { "Run problem" }
                        @match e.split_once('\n') {
                            Some((first, _)) => {
                                p { (first) }
                                details { summary { "all of it" } pre { (e) } }
                            }
                            None => pre { (e) },
                        }
                    }
                }
                (instances(r))
                (bench(r))
                (failures(r))
                (skipped(r))
                (known_failures(r))
            }
            (outside(r))
        },
    )
}

/// Kernel, configuration, QEMU and host facts, and the outcome counts.
fn header(r: &RunReport) -> Markup {
    let k = &r.kernel;
    let secs = |v: Option<f64>| v.map_or("-".to_string(), |ms| format!("{:.2} s", ms / 1e3));
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    html! {
        header {
            h1 { "hmmlab run " code { (r.run_id) } }
            p class="muted" {
                "Started " (page::utc(r.started_unix)) "; " b { (r.status) } "."
            }
            (counts(r))
            dl class="facts" {
                dt { "kernel" } dd { b { (k.release) } " " span class="muted" { (k.source) " " (k.identity) } }
                dt { "banner" } dd class="mono" { (k.banner) }
                @if let Some(b) = r.booted_kernel.as_ref().filter(|b| **b != k.banner) {
                    dt { "booted" } dd class="mono" { (b) }
                }
                dt { "config" } dd class="mono" { (k.config_hash) }
                dt { "fragments" } dd { (list(&k.fragments)) }
                dt { "patches" } dd { (list(&k.patches)) }
                dt { "THP modes" } dd { (r.default_thp) }
                dt { "QEMU" } dd { (r.qemu_version) }
                dt { "accelerator" } dd { b { (r.accel) } " " span class="muted" { (r.accel_reason) } }
                dt { "host" } dd {
                    (r.host.hostname) ", " (r.host.cpus) " CPUs, "
                    (r.host.memory_kib / 1024) " MiB, Linux " (r.host.kernel)
                }
                dt { "timing" } dd {
                    "boot " (secs(r.timing.boot_ms)) ", first scenario at "
                    (secs(r.timing.first_scenario_ms)) ", VM " (secs(r.timing.vm_ms))
                }
            }
            @if !r.qemu_command.is_empty() {
                details { summary { "QEMU command" } pre { (r.qemu_command) } }
            }
        }
    }
}

/// One chip per outcome that occurred, and the instances that do not apply.
fn counts(r: &RunReport) -> Markup {
    let not_applicable = r.scenarios.iter().filter(|s| s.not_applicable).count();
    html! {
        div class="counts" id="counts" {
            span class="chip" { (r.scenarios.len()) " instances" }
            @for o in OUTCOMES {
                @let n = r.count(o) - if o == Outcome::Skip { not_applicable } else { 0 };
                @if n > 0 {
                    (chip(o, &format!("{n} {}", o.as_str())))
                }
            }
            @if not_applicable > 0 {
                (chip(Outcome::Skip, &format!("{not_applicable} not applicable")))
            }
        }
    }
}

/// What the bench scenarios measured: per series a bar from min to max
/// with the median marked, on one scale per size, then the ratios.
fn bench(r: &RunReport) -> Markup {
    let b = super::bench::Summary::of(&r.scenarios);
    if b.is_empty() {
        return html! {};
    }
    let widest = |pages: u64| {
        b.series
            .iter()
            .filter(|s| s.pages == pages)
            .map(|s| s.total_ms.max)
            .fold(0.0_f64, f64::max)
    };
    let ms = super::bench::ms;
    html! {
        section id="bench" {
            h2 { "Bench" }
            p { "Time of touch plus migration, min to max over the rounds (bar), median (mark); \
                 bars of one size share a scale. Ratios pair the rounds of two cases." }
            table class="bench" {
                thead { tr { th { "instance" } th { "case" } th { "pages" } th { "ms min / median / max" } th { "pages/s" } th { "spread" } } }
                tbody {
                    @for s in &b.series {
                        @let w = widest(s.pages).max(f64::MIN_POSITIVE);
                        @let x = |v: f64| v / w * 200.0;
                        tr class="bench-series" {
                            td { (s.at.to_string()) }
                            td { (s.case.as_str()) }
                            td class="num" { (s.pages) }
                            td class="num" { (ms(s.total_ms.min)) " / " (ms(s.total_ms.median)) " / " (ms(s.total_ms.max)) }
                            td class="num" { (format!("{:.0}", s.pages_per_sec.median)) }
                            td {
                                svg width="204" height="12" role="img" aria-label=(format!("{} ms median", ms(s.total_ms.median))) {
                                    rect x=(format!("{:.1}", x(s.total_ms.min) + 2.0)) y="3" height="6"
                                        width=(format!("{:.1}", (x(s.total_ms.max) - x(s.total_ms.min)).max(1.0)))
                                        fill="#9ab" {}
                                    rect x=(format!("{:.1}", x(s.total_ms.median) + 1.0)) y="0" width="2" height="12" fill="#234" {}
                                }
                            }
                        }
                    }
                }
            }
            @if !b.ratios.is_empty() {
                table class="bench" {
                    thead { tr { th { "instance" } th { "ratio of totals" } th { "pages" } th { "min / median / max" } } }
                    tbody {
                        @for q in &b.ratios {
                            tr class="bench-ratio" {
                                td { (q.at.to_string()) }
                                td { (q.of.as_str()) " / " (q.to.as_str()) }
                                td class="num" { (q.pages) }
                                td class="num" { (format!("{:.3} / {:.3} / {:.3}", q.ratio.min, q.ratio.median, q.ratio.max)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The instances table with its filters.
fn instances(r: &RunReport) -> Markup {
    let longest = r.scenarios.iter().map(|s| s.duration_ns).max().unwrap_or(0);
    let mut thps: Vec<&str> = r
        .scenarios
        .iter()
        .filter_map(|s| s.thp.map(|t| t.as_str()))
        .collect();
    thps.sort();
    thps.dedup();
    let mut devices: Vec<&str> = r
        .scenarios
        .iter()
        .filter_map(|s| s.device().map(|d| d.as_str()))
        .collect();
    devices.sort();
    devices.dedup();
    let mut outcomes = vec![("failed".to_string(), "failed (any)".to_string())];
    outcomes.extend(
        OUTCOMES
            .iter()
            .filter(|o| r.count(**o) > 0)
            .map(|o| (o.as_str().to_string(), o.as_str().to_string())),
    );
    let pairs = |v: Vec<&str>| {
        v.into_iter()
            .map(|s| (s.to_string(), s.to_string()))
            .collect()
    };
    let facets = [
        Facet {
            name: "outcome",
            label: "outcome",
            choices: outcomes,
        },
        Facet {
            name: "thp",
            label: "THP mode",
            choices: pairs(thps),
        },
        Facet {
            name: "device",
            label: "device",
            choices: pairs(devices),
        },
    ];
    html! {
        section {
            h2 { "Scenario instances" }
            (page::filters(TABLE, &facets, r.scenarios.len()))
            table id=(TABLE) {
                thead { tr {
                    th { "instance" } th { "THP" } th { "device" } th { "outcome" }
                    th class="num" { "duration" } th class="barcell" {} th { "steps" }
                } }
                tbody {
                    @for (i, sc) in r.scenarios.iter().enumerate() {
                        (row(i, sc, longest))
                    }
                }
            }
        }
    }
}

/// One instance: its row, coloured and tagged for the filters.
fn row(i: usize, sc: &ScenarioResult, longest: u64) -> Markup {
    let failed = sc.outcome.is_failure();
    let outcome_words = if failed {
        format!("{} failed", sc.outcome.as_str())
    } else {
        sc.outcome.as_str().to_string()
    };
    let thp = sc.thp.map_or("-", |t| t.as_str());
    let device = sc.device().map_or("-", |d| d.as_str());
    html! {
        tr class={ "row " (outcome_class(sc.outcome)) } id={ "i" (i) }
            data-outcome=(outcome_words) data-thp=(thp) data-device=(device) {
            td {
                @if failed {
                    a class="name" href={ "#f" (i) } { (sc.name) }
                } @else {
                    span class="name" { (sc.name) }
                }
                @if let Some(c) = case_counts(sc) {
                    " " span class="muted" { "(" (c) ")" }
                }
                @if sc.outcome == Outcome::Skip {
                    div class="muted" {
                        @if sc.not_applicable { "not applicable: " }
                        (skips::reason(sc.message.as_deref()))
                    }
                }
            }
            td { (thp) }
            td { (device) }
            td { (chip(sc.outcome, sc.outcome.as_str())) }
            td class="num" { @if sc.duration_ns > 0 { (duration(sc.duration_ns)) } @else { "-" } }
            td class="barcell" {
                @if sc.duration_ns > 0 && longest > 0 {
                    (bar(sc.duration_ns as f64 / longest as f64, &duration(sc.duration_ns)))
                }
            }
            td { @if !sc.steps.is_empty() { (steps(sc)) } }
        }
    }
}

/// `26 pass, 32 skip`: a selftest's cases by outcome.
fn case_counts(sc: &ScenarioResult) -> Option<String> {
    if sc.cases.is_empty() {
        return None;
    }
    let parts: Vec<String> = OUTCOMES
        .iter()
        .map(|o| (sc.case_count(*o), o))
        .filter(|(n, _)| *n > 0)
        .map(|(n, o)| format!("{n} {}", o.as_str()))
        .collect();
    Some(format!("cases: {}", parts.join(", ")))
}

/// Width of the steps' stacked bar, in SVG user units (pixels).
const STACK_W: f64 = 120.0;

/// The steps of an instance: a stacked bar of their durations (inline
/// SVG), and in its details one bar per step.
fn steps(sc: &ScenarioResult) -> Markup {
    let total: u64 = sc.steps.iter().map(|s| s.duration_ns).sum();
    let longest = sc.steps.iter().map(|s| s.duration_ns).max().unwrap_or(0);
    let mut x = 0.0;
    let segments: Vec<(f64, f64, &StepResult)> = sc
        .steps
        .iter()
        .map(|s| {
            let w = if total > 0 {
                s.duration_ns as f64 / total as f64 * STACK_W
            } else {
                0.0
            };
            let seg = (x, w, s);
            x += w;
            seg
        })
        .collect();
    html! {
        details class="steps" {
            summary {
                (sc.steps.len()) " steps "
                svg class="stack" width=(STACK_W) height="10" viewBox={ "0 0 " (STACK_W) " 10" }
                    role="img" aria-label="step durations" {
                    @for (j, (x, w, s)) in segments.iter().enumerate() {
                        rect x=(format!("{x:.2}")) y="0" width=(format!("{w:.2}")) height="10"
                            fill=(step_colour(j, s.outcome)) {
                            title { (s.index) " " (op_name(s)) ": " (duration(s.duration_ns)) }
                        }
                    }
                }
            }
            table class="steps" {
                tr { th { "#" } th { "op" } th { "outcome" } th class="num" { "time" } th {} th class="num" { "pages" } th class="num" { "pages/s" } }
                @for s in &sc.steps {
                    tr {
                        td class="num" { (s.index) }
                        td class="mono" { (op_name(s)) }
                        td { (s.outcome.as_str()) }
                        td class="num" { (duration(s.duration_ns)) }
                        td style="width:10em" {
                            @if longest > 0 { (bar(s.duration_ns as f64 / longest as f64, &duration(s.duration_ns))) }
                        }
                        td class="num" {
                            (s.pages)
                            @if let Some(c) = s.cpages { " (" (c) " moved)" }
                        }
                        td class="num" { @if let Some(p) = s.pages_per_sec { (format!("{p:.0}")) } }
                    }
                    @if let Some(m) = &s.message {
                        tr { td {} td colspan="6" class="muted" { (m) } }
                    }
                }
            }
        }
    }
}

/// The step's op as scenario files spell it (`migrate-to-device`).
fn op_name(s: &StepResult) -> String {
    serde_name(&s.op)
}

/// A value's serde name (a kebab-case enum variant), or its debug form.
fn serde_name<T: serde::Serialize + std::fmt::Debug>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{v:?}"),
    }
}

/// Alternating blues for passing steps, red for the others.
fn step_colour(j: usize, o: Outcome) -> &'static str {
    match o {
        Outcome::Pass | Outcome::Skip if j.is_multiple_of(2) => "#6d8fb3",
        Outcome::Pass | Outcome::Skip => "#a9c0d8",
        _ => "#c0392b",
    }
}

/// Each failed instance: its message, failed cases, console excerpts and
/// reproduce line.
fn failures(r: &RunReport) -> Markup {
    let failed: Vec<(usize, &ScenarioResult)> = r
        .scenarios
        .iter()
        .enumerate()
        .filter(|(_, s)| s.outcome.is_failure())
        .collect();
    html! {
        section id="failures" {
            h2 { "Failures (" (failed.len()) ")" }
            @if failed.is_empty() { p class="muted" { "None." } }
            @for (i, sc) in failed {
                div class={ "failure " (outcome_class(sc.outcome)) } id={ "f" (i) } {
                    h3 { (sc.name) " " (chip(sc.outcome, sc.outcome.as_str())) }
                    pre class="message" { (sc.message.as_deref().unwrap_or("no message")) }
                    @for c in sc.cases.iter().filter(|c| c.outcome.is_failure()) {
                        p { "case " code { (c.name) } " " (c.outcome.as_str()) }
                        @if let Some(why) = &c.reason { pre { (why) } }
                    }
                    @for f in &sc.console_findings {
                        (finding(f))
                    }
                    @if !sc.reproduce.is_empty() {
                        p class="muted" { "Reproduce (add --repeat 10 to measure flakiness):" }
                        (copy_line(&sc.reproduce))
                    }
                }
            }
        }
    }
}

/// A console finding: what, where in console.log, and its excerpt.
fn finding(f: &Finding) -> Markup {
    html! {
        div class="finding" {
            p {
                b { (serde_name(&f.kind)) } " at console.log line " (f.line)
                @if let Some(o) = &f.outside { " (" (o) ")" }
            }
            pre class="excerpt" {
                @if !f.before.is_empty() { (f.before) "\n" }
                (f.excerpt)
            }
        }
    }
}

/// The skipped instances grouped by reason, those that do not apply to
/// this kernel apart, and the selftests' skipped cases.
fn skipped(r: &RunReport) -> Markup {
    let mut by_reason: BTreeMap<(bool, String), Vec<&str>> = BTreeMap::new();
    for sc in r.scenarios.iter().filter(|s| s.outcome == Outcome::Skip) {
        by_reason
            .entry((sc.not_applicable, skips::reason(sc.message.as_deref())))
            .or_default()
            .push(&sc.name);
    }
    let cases = Skips::of(&r.scenarios).cases;
    html! {
        section id="skips" {
            h2 { "Skipped (" (r.count(Outcome::Skip)) ")" }
            @if by_reason.is_empty() && cases.is_empty() { p class="muted" { "None." } }
            @for ((not_applicable, reason), names) in &by_reason {
                div class="skip-reason" {
                    p {
                        @if *not_applicable { b { "not applicable" } " (the scenario needs a newer or older kernel): " }
                        (reason) " " span class="muted" { "(" (names.len()) ")" }
                    }
                    p class="mono muted" { (names.join(", ")) }
                }
            }
            @if !cases.is_empty() {
                p { "Skipped selftest cases: " (Skips::describe(&cases)) }
            }
        }
    }
}

/// Declared known failures that occurred (not counted as failures).
fn known_failures(r: &RunReport) -> Markup {
    let known: Vec<(&str, &str)> = r
        .scenarios
        .iter()
        .flat_map(|sc| {
            sc.known_failures
                .iter()
                .map(move |k| (sc.name.as_str(), k.as_str()))
        })
        .collect();
    html! {
        @if !known.is_empty() {
            section id="known-failures" {
                h2 { "Known failures (" (known.len()) ")" }
                p class="muted" { "Declared with their reason in the scenario files; not counted as failures." }
                ul { @for (name, k) in &known { li { code { (name) } ": " (k) } } }
            }
        }
    }
}

/// Console findings outside every scenario, and the console's last lines
/// when the run did not end normally.
fn outside(r: &RunReport) -> Markup {
    html! {
        @if !r.console_findings.is_empty() {
            section id="outside" {
                h2 { "Console findings outside scenarios (" (r.console_findings.len()) ")" }
                @for f in &r.console_findings { (finding(f)) }
            }
        }
        @if !r.console_tail.is_empty() {
            section id="console-tail" {
                h2 { "Last console lines" }
                pre { (r.console_tail.join("\n")) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::FindingKind;

    #[test]
    fn every_instance_is_a_row_and_every_failure_shows_why() {
        let mut fail = ScenarioResult::for_tests("zero@never", Outcome::Fail);
        fail.message = Some("step 2: expected <0x00> got <0xff> & more".into());
        fail.reproduce = "cargo xtask run-scenarios -s 'zero'".into();
        fail.console_findings = vec![Finding {
            kind: FindingKind::Warning,
            line: 40,
            scenario: Some("zero@never".into()),
            outside: None,
            excerpt: "WARNING: CPU: 0 at mm/migrate_device.c:99".into(),
            before: "hmm: <bad> page".into(),
        }];
        let mut skip = ScenarioResult::for_tests("uffd@madvise@coherent", Outcome::Skip);
        skip.message = Some("requires CONFIG_USERFAULTFD".into());
        let pass = ScenarioResult::for_tests("empty@always", Outcome::Pass);
        let page = render(&RunReport::for_tests(vec![pass, fail, skip])).unwrap();
        assert_eq!(page.matches("<tr class=\"row ").count(), 3, "{page}");
        assert!(
            page.contains(
                "data-outcome=\"fail failed\" data-thp=\"madvise\" data-device=\"private\""
            ),
            "{page}"
        );
        assert!(page.contains("data-device=\"coherent\""), "{page}");
        assert!(
            page.contains("expected &lt;0x00&gt; got &lt;0xff&gt; &amp; more"),
            "{page}"
        );
        assert!(
            page.contains("hmm: &lt;bad&gt; page\nWARNING: CPU: 0 at mm/migrate_device.c:99"),
            "{page}"
        );
        assert!(
            page.contains("data-copy=\"cargo xtask run-scenarios -s 'zero'\""),
            "{page}"
        );
        assert!(page.contains("requires CONFIG_USERFAULTFD"), "{page}");
        assert!(!page.contains("http"), "nothing is fetched: {page}");
    }

    #[test]
    fn a_bench_shows_its_series_and_ratios() {
        use crate::report::bench::Sample;
        use hmmlab_proto::bench::BenchCase;
        let mut b = ScenarioResult::for_tests("seed@madvise", Outcome::Pass);
        for round in 0..3 {
            for (case, prepare) in [(BenchCase::Direct, 0), (BenchCase::TouchFirst, 500_000)] {
                b.samples.push(Sample {
                    case,
                    pages: 64,
                    round,
                    prepare_ns: prepare,
                    migrate_ns: 1_000_000 + u64::from(round) * 100_000,
                });
            }
        }
        let page = render(&RunReport::for_tests(vec![b])).unwrap();
        assert!(page.contains("<section id=\"bench\">"), "{page}");
        assert_eq!(page.matches("class=\"bench-series\"").count(), 2, "{page}");
        assert_eq!(page.matches("class=\"bench-ratio\"").count(), 1, "{page}");
        assert!(page.contains("direct / touch-first"), "{page}");
        // Direct: 1.0 / 1.1 / 1.2 ms.
        assert!(page.contains("1.000 / 1.100 / 1.200"), "{page}");
        let plain = render(&RunReport::for_tests(vec![ScenarioResult::for_tests(
            "zero@never",
            Outcome::Pass,
        )]))
        .unwrap();
        assert!(!plain.contains("id=\"bench\""), "{plain}");
    }

    #[test]
    fn a_run_without_results_says_why() {
        let mut r = RunReport::for_tests(vec![]);
        r.status = RunStatus::InfraError;
        r.error = Some("QEMU would not start".into());
        let page = render(&r).unwrap();
        assert!(page.contains("No result counts: infra-error"), "{page}");
        assert!(page.contains("QEMU would not start"), "{page}");
        assert!(!page.contains("id=\"instances\""), "{page}");
    }
}
