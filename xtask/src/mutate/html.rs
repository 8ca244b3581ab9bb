//! `report.html` of a mutation run, next to its `mutants.jsonl`: the score
//! and the count per verdict, the score per function, the survivors and
//! the uncovered mutants with their diffs, the source of every mutated
//! function with each mutant's verdict on its line, and every mutant in a
//! table with filters. One file, built with maud on the shared page
//! (`hmmlab_harness::report::page`): no network, no external script.

use std::collections::BTreeMap;

use hmmlab_harness::report::page::{self, Facet};
use hmmlab_proto::Outcome;
use maud::{html, Markup};

use super::check::{score, Record, Verdict};
use super::Mutant;

/// This page's own rules, over the shared style sheet: compact source lines.
const CSS: &str = "table.source { width: auto; }
table.source td { padding: 0 .4em; border: none; }
table.source pre.line { margin: 0; padding: 0; border: none; background: none; white-space: pre; }
table.source tr.mutated { background: #fafbfc; }
td.marks { white-space: nowrap; width: 1%; }
.chip.mark { font-size: 11px; font-weight: 500; padding: 0 .4em; margin-right: .2em; }
details.function { margin: .4em 0; }";

/// The colour of a verdict, as an outcome class: green when the suite
/// caught the mutant, red when it survived, orange when no scenario ran
/// its lines, grey when it is out of the score or has no verdict yet.
fn colour(v: Verdict) -> Outcome {
    match v {
        Verdict::Killed | Verdict::Timeout | Verdict::Crashed => Outcome::Pass,
        Verdict::Survived => Outcome::Fail,
        Verdict::Uncovered => Outcome::Error,
        _ => Outcome::Skip,
    }
}

fn percent(d: usize, c: usize) -> f64 {
    if c == 0 {
        0.0
    } else {
        100.0 * d as f64 / c as f64
    }
}

/// The page: `facts` (kernel, source, …) at the top, then the rest from
/// the records, each file's source and the generated mutants (for the
/// diffs and the spans).
pub fn render(
    title: &str,
    facts: &[(String, String)],
    records: &[Record],
    sources: &BTreeMap<String, String>,
    generated: &[&Mutant],
) -> String {
    let mutant: BTreeMap<&str, &Mutant> = generated.iter().map(|m| (m.id.as_str(), *m)).collect();
    let all: Vec<&Record> = records.iter().collect();
    let body = html! {
        style { (maud::PreEscaped(CSS)) }
        h1 { (title) }
        dl class="facts" {
            @for (k, v) in facts { dt { (k) } dd { (v) } }
        }
        (headline(&all))
        (by_function(records))
        (survivors(records, &mutant))
        (source(records, sources))
        (table(records))
    };
    page::page(title, body).into_string()
}

fn headline(all: &[&Record]) -> Markup {
    let mut by: BTreeMap<Verdict, usize> = BTreeMap::new();
    for r in all {
        *by.entry(r.verdict).or_default() += 1;
    }
    let listed = all
        .iter()
        .filter(|r| r.verdict == Verdict::Equivalent && r.listed.is_some())
        .count();
    html! {
        @match score(all) {
            Some((d, c)) => p id="score" {
                strong { "mutation score " (format!("{:.1}", percent(d, c))) " %" }
                " — " (d) " detected (killed, timed out or crashed) of " (c)
                " (all " (all.len()) " but the unviable, equivalent and duplicate)"
            },
            None => p id="score" { "no mutant counts yet" },
        }
        div class="counts" id="verdicts" {
            @for v in Verdict::ALL {
                @if let Some(n) = by.get(&v) {
                    span class={ "chip " (page::outcome_class(colour(v))) } data-verdict=(v.name()) {
                        (n) " " (v.name())
                    }
                }
            }
        }
        @if listed > 0 {
            p class="muted" {
                "Of the equivalent, " (listed) " survived and are listed in "
                code { (super::equivalent::LIST) } " with the reason from the kernel's code."
            }
        }
        @for r in all.iter().filter(|r| r.verdict.detected() && r.listed.is_some()) {
            p class="failure o-fail" {
                "Wrong entry: " code { (r.id) } " is listed as equivalent ("
                (r.listed.as_deref().unwrap_or("")) ") but was " (r.verdict.name()) "."
            }
        }
    }
}

fn by_function(records: &[Record]) -> Markup {
    let mut by: BTreeMap<(&str, &str), Vec<&Record>> = BTreeMap::new();
    for r in records {
        by.entry((r.file.as_str(), r.function.as_str()))
            .or_default()
            .push(r);
    }
    let count =
        |rs: &[&Record], f: &dyn Fn(Verdict) -> bool| rs.iter().filter(|r| f(r.verdict)).count();
    html! {
        h2 { "By function" }
        table id="functions" {
            thead { tr {
                th { "function" } th { "mutants" } th { "detected" } th { "survived" }
                th { "uncovered" } th { "out of the score" } th { "not booted" } th colspan="2" { "score" }
            } }
            tbody {
                @for ((file, function), rs) in &by {
                    @let s = score(rs);
                    tr class="row" data-function=(function) {
                        td { code { (function) } " " span class="muted" { (file) } }
                        td class="num" { (rs.len()) }
                        td class="num" { (count(rs, &|v| v.detected())) }
                        td class="num" { (count(rs, &|v| v == Verdict::Survived)) }
                        td class="num" { (count(rs, &|v| v == Verdict::Uncovered)) }
                        td class="num" { (count(rs, &|v| v.excluded())) }
                        td class="num" { (count(rs, &|v| matches!(v, Verdict::Pending | Verdict::Error))) }
                        @match s {
                            Some((d, c)) => {
                                td class="num score" { (format!("{:.1}", percent(d, c))) " %" }
                                td class="barcell" { (page::bar(d as f64 / c as f64, &format!("{d} of {c}"))) }
                            }
                            None => { td class="num score" { "-" } td {} }
                        }
                    }
                }
            }
        }
    }
}

fn survivors(records: &[Record], mutant: &BTreeMap<&str, &Mutant>) -> Markup {
    let section = |v: Verdict, title: &str, id: &str| {
        let these: Vec<&Record> = records.iter().filter(|r| r.verdict == v).collect();
        html! {
            @if !these.is_empty() {
                h2 { (these.len()) " " (title) }
                div id=(id) {
                    @for r in these {
                        div class={ "failure " (page::outcome_class(colour(v))) } data-id=(r.id) {
                            h3 { code { (r.id) } }
                            @if let Some(m) = mutant.get(r.id.as_str()) {
                                p class="muted" { (m.description) }
                                pre { (m.diff) }
                            }
                        }
                    }
                }
            }
        }
    };
    html! {
        (section(Verdict::Survived, "survived: no scenario failed", "survivors"))
        (section(Verdict::Uncovered, "uncovered: no scenario ran the line", "uncovered"))
    }
}

/// Each mutated function's lines, each with its mutants' verdicts.
fn source(records: &[Record], sources: &BTreeMap<String, String>) -> Markup {
    let mut on: BTreeMap<(&str, usize), Vec<&Record>> = BTreeMap::new();
    for r in records {
        on.entry((r.file.as_str(), r.line)).or_default().push(r);
    }
    let mut shown: Vec<(&str, String, usize, usize)> = vec![];
    for (file, text) in sources {
        let Ok(fm) = super::gen::mutants(file, text) else {
            continue;
        };
        for f in fm.functions {
            if records
                .iter()
                .any(|r| r.file == *file && r.function == f.name)
            {
                shown.push((file.as_str(), f.name, f.first_line, f.last_line));
            }
        }
    }
    html! {
        h2 { "Source" }
        p class="muted" {
            "Each line with the verdicts of its mutants: "
            span class="chip o-pass" { "detected" } " "
            span class="chip o-fail" { "survived" } " "
            span class="chip o-error" { "uncovered" } " "
            span class="chip o-skip" { "out of the score, or not booted" }
            " (hover for the mutant)."
        }
        @for (file, function, first, last) in &shown {
            @let lines: Vec<&str> = sources[*file].lines().collect();
            details class="function" open[records.iter().any(|r| r.function == *function && r.verdict == Verdict::Survived)] {
                summary { code { (function) } " " span class="muted" { (file) ":" (first) "-" (last) } }
                table class="source" {
                    tbody {
                        @for n in *first..=(*last).min(lines.len()) {
                            @let here = on.get(&(*file, n));
                            tr id=(anchor(file, n)) class=[here.map(|_| "mutated")] {
                                td class="num muted" { (n) }
                                td class="marks" {
                                    @for r in here.into_iter().flatten() {
                                        span class={ "chip mark " (page::outcome_class(colour(r.verdict))) }
                                            title={ (r.id) ": " (r.verdict.name()) } { (r.operator) }
                                    }
                                }
                                td { pre class="line" { (lines[n - 1]) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn table(records: &[Record]) -> Markup {
    let mut functions: Vec<&str> = records.iter().map(|r| r.function.as_str()).collect();
    functions.sort();
    functions.dedup();
    let mut operators: Vec<&str> = records.iter().map(|r| r.operator.as_str()).collect();
    operators.sort();
    operators.dedup();
    let facets = [
        Facet {
            name: "verdict",
            label: "verdict",
            choices: Verdict::ALL
                .iter()
                .filter(|v| records.iter().any(|r| r.verdict == **v))
                .map(|v| (v.name().to_string(), v.name().to_string()))
                .collect(),
        },
        Facet {
            name: "function",
            label: "function",
            choices: functions
                .iter()
                .map(|f| (f.to_string(), f.to_string()))
                .collect(),
        },
        Facet {
            name: "operator",
            label: "operator",
            choices: operators
                .iter()
                .map(|o| (o.to_string(), o.to_string()))
                .collect(),
        },
    ];
    html! {
        h2 { "Every mutant" }
        (page::filters("mutants", &facets, records.len()))
        table id="mutants" {
            thead { tr { th { "mutant" } th { "verdict" } th { "why" } } }
            tbody {
                @for r in records {
                    tr class={ "row " (page::outcome_class(colour(r.verdict))) }
                        data-verdict=(r.verdict.name()) data-function=(r.function) data-operator=(r.operator) {
                        td { a href={ "#" (anchor(&r.file, r.line)) } { code { (r.id) } } }
                        td { span class={ "chip " (page::outcome_class(colour(r.verdict))) } { (r.verdict.name()) } }
                        td { (why(r)) }
                    }
                }
            }
        }
    }
}

/// The id of a line of the source: `mm_migrate_device.c-L312`.
fn anchor(file: &str, line: usize) -> String {
    format!("{}-L{line}", file.replace(['/', '.'], "_"))
}

fn why(r: &Record) -> Markup {
    html! {
        @if !r.killed_by.is_empty() {
            @let first = &r.killed_by[0];
            "by " code { (first.scenario) } " (" (first.outcome) ")"
            @if let Some(m) = &first.message { ": " (m) }
            @if r.killed_by.len() > 1 { span class="muted" { " and " (r.killed_by.len() - 1) " more" } }
        } @else if let Some(at) = &r.listed {
            "listed as equivalent: " code { (at) }
        } @else if r.verdict == Verdict::Equivalent {
            "its object is the unmutated one's"
        } @else if let Some(d) = &r.duplicate_of {
            "same code as " code { (d) }
        } @else if let Some(e) = r.error.first() {
            "does not compile: " code { (e) }
        } @else if let Some(why) = &r.reason {
            (why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutate::check::test_record;

    #[test]
    fn the_page_has_the_score_each_verdict_on_its_line_and_the_survivors_diff() {
        let source = "int f(void)\n{\n\tx = 1;\n\ty = 2;\n\treturn 0;\n}\n";
        let mut killed = test_record("mm/m.c:f:3:delete-stmt:0", 3, Verdict::Killed);
        killed.killed_by = vec![crate::mutate::boot::Kill {
            scenario: "empty-anon@madvise".into(),
            outcome: "fail".into(),
            message: Some("step 1: <cpages> 0".into()),
        }];
        let survived = test_record("mm/m.c:f:4:delete-stmt:0", 4, Verdict::Survived);
        let m = Mutant {
            id: survived.id.clone(),
            file: "mm/m.c".into(),
            function: "f".into(),
            line: 4,
            operator: crate::mutate::Operator::DeleteStmt,
            index: 0,
            description: "y = 2; → ;".into(),
            start: 0,
            end: 0,
            original: "y = 2;".into(),
            mutated: ";".into(),
            diff: "--- a/mm/m.c\n+++ b/mm/m.c\n-\ty = 2;\n+\t;\n".into(),
            under: vec![],
        };
        let records = [killed, survived];
        let sources = BTreeMap::from([("mm/m.c".to_string(), source.to_string())]);
        let html = render(
            "t",
            &[("kernel".into(), "k".into())],
            &records,
            &sources,
            &[&m],
        );
        assert!(html.contains("mutation score 50.0 %"), "{html}");
        assert!(
            html.contains("<tr id=\"mm_m_c-L4\" class=\"mutated\">"),
            "{html}"
        );
        assert!(html.contains("href=\"#mm_m_c-L4\""), "{html}");
        assert!(
            html.contains("title=\"mm/m.c:f:4:delete-stmt:0: survived\""),
            "{html}"
        );
        assert!(html.contains("+\t;"), "the survivor's diff: {html}");
        // Escaped by construction.
        assert!(html.contains("step 1: &lt;cpages&gt; 0"), "{html}");
        assert!(!html.contains("<cpages>"));
    }
}
