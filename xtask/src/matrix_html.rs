//! `matrix.html`: a matrix run for people, next to its `table.txt`. At the
//! top the cells with their status, kernel and outcome counts, each linking
//! to its run's report.html and its log; then every scenario instance as a
//! row of squares, one per cell, coloured by outcome and linking to that
//! instance in the cell's report.html, with the instance's duration across
//! the cells as a small bar plot (inline SVG). One file on the shared page
//! chrome (`hmmlab_harness::report::page`): no network, no external script.
//! `cargo xtask matrix-html DIR` writes it again from the cells' run.json.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;
use hmmlab_harness::exit;
use hmmlab_harness::report::page::{self, chip, duration, outcome_class, Facet, OUTCOMES};
use hmmlab_harness::report::write::write_atomic;
use hmmlab_harness::report::{RunReport, RunStatus, ScenarioResult};
use hmmlab_proto::Outcome;
use maud::{html, Markup, PreEscaped};

use crate::cli::MatrixHtmlArgs;

/// The page's file name in the matrix directory.
pub const FILE: &str = "matrix.html";

/// One cell of the matrix and the run it left.
pub struct CellRun {
    pub name: String,
    /// The run: its directory relative to the matrix directory
    /// (`<cell>/<run-id>`) and its report; or why there is none.
    pub run: std::result::Result<(String, RunReport), String>,
}

impl CellRun {
    pub fn report(&self) -> Option<&RunReport> {
        self.run.as_ref().ok().map(|(_, r)| r)
    }
}

/// The id of the instances grid (the filters name it).
const GRID: &str = "grid";

/// Width of one cell's bar in a duration plot, and the plot's height
/// (SVG user units, pixels).
const PLOT_STEP: f64 = 9.0;
const PLOT_H: f64 = 22.0;

/// This page's own rules, over the shared style sheet: the squares take
/// their colours from the outcome classes (fill and, as `currentColor`,
/// border); a failing square is filled with its strong colour.
const CSS: &str = "
.scroll { overflow-x: auto; }
table.grid { width: auto; }
table.grid td, table.grid th { padding: 1px 2px; border-bottom: 1px solid #eef0f2; }
table.grid th.cell { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap;
  font-weight: 500; padding: .4em 2px; vertical-align: bottom; }
table.grid td.name { white-space: nowrap; padding-right: .8em; }
.sq { display: block; width: 14px; height: 14px; margin: auto; border-radius: 2px;
  border: 1.5px solid currentColor; }
.sq.o-fail, .sq.o-crashed, .sq.o-timeout { background: var(--fail-fg); }
.sq.o-error { background: var(--error-fg); }
.sq.none { border: 1px dashed var(--line); }
svg.plot { background: var(--panel); vertical-align: middle; }
td.plot { white-space: nowrap; }
";

/// The cells of the matrix directory `dir`: each `<cell>.log` the matrix
/// wrote and each folder holding a run, by name.
pub fn cells_in(dir: &Path) -> Vec<String> {
    let mut names = BTreeSet::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let Some(name) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if p.is_dir() {
            if !hmmlab_harness::report::load::run_dirs(&p).is_empty() {
                names.insert(name);
            }
        } else if let Some(cell) = name.strip_suffix(".log") {
            names.insert(cell.to_string());
        }
    }
    names.into_iter().collect()
}

/// The run each of the cells `names` left in the matrix directory `dir`.
pub fn load(dir: &Path, names: &[String]) -> Vec<CellRun> {
    names
        .iter()
        .map(|name| CellRun {
            name: name.clone(),
            run: crate::matrix_run::cell_run(&dir.join(name))
                .map(|(run_dir, r)| {
                    let id = run_dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    (format!("{name}/{id}"), r)
                })
                .map_err(|e| format!("{e:#}")),
        })
        .collect()
}

/// Write `dir`'s matrix.html for `cells` (as [`load`]ed); returns its path.
pub fn write(dir: &Path, title: &str, cells: &[CellRun]) -> Result<std::path::PathBuf> {
    let out = dir.join(FILE);
    write_atomic(&out, render(title, cells).as_bytes())?;
    Ok(out)
}

/// The hidden `matrix-html` task: a matrix directory's page again, from
/// its cells' run.json, by the same render function.
pub fn task(a: &MatrixHtmlArgs) -> Result<i32> {
    let names = cells_in(&a.dir);
    if names.is_empty() {
        return Err(crate::fail::bad_input(format!(
            "{}: no cell in it (no <cell>.log, no <cell>/<run-id>/run.json); give a \
             results/matrix-<id> directory",
            a.dir.display()
        )));
    }
    let cells = load(&a.dir, &names);
    let page = render(&title_of(&a.dir), &cells);
    let out = a.out.clone().unwrap_or_else(|| a.dir.join(FILE));
    write_atomic(&out, page.as_bytes())?;
    println!("{}", out.display());
    Ok(exit::OK)
}

/// `hmmlab matrix matrix-<id>`: the page's title, from its directory.
pub fn title_of(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("hmmlab matrix {name}")
}

/// The whole page.
pub fn render(title: &str, cells: &[CellRun]) -> String {
    page::page(
        title,
        html! {
            style { (PreEscaped(CSS)) }
            h1 { (title) }
            (header(cells))
            (cell_table(cells))
            (grid(cells))
        },
    )
    .into_string()
}

/// The worst outcome of each instance over all cells, and the counts.
fn header(cells: &[CellRun]) -> Markup {
    let finished = cells
        .iter()
        .filter(|c| c.report().is_some_and(|r| r.status == RunStatus::Finished))
        .count();
    let unfinished = cells.len() - finished;
    let started = cells
        .iter()
        .filter_map(|c| c.report())
        .map(|r| r.started_unix)
        .min();
    let all: Vec<&ScenarioResult> = cells
        .iter()
        .filter_map(|c| c.report())
        .flat_map(|r| &r.scenarios)
        .collect();
    let failing_cells = cells
        .iter()
        .filter(|c| c.report().is_some_and(|r| r.failed().next().is_some()))
        .count();
    html! {
        @if let Some(t) = started { p class="muted" { "First cell started " (page::utc(t)) "." } }
        div class="counts" id="counts" {
            span class="chip" { (cells.len()) " cells" }
            (chip(Outcome::Pass, &format!("{finished} finished")))
            @if unfinished > 0 { (chip(Outcome::Error, &format!("{unfinished} did not finish"))) }
            @if failing_cells > 0 { (chip(Outcome::Fail, &format!("{failing_cells} with failures"))) }
        }
        div class="counts" id="instance-counts" {
            span class="chip" { (all.len()) " instances in all cells" }
            @for o in OUTCOMES {
                @let n = all.iter().filter(|s| s.outcome == o).count();
                @if n > 0 { (chip(o, &format!("{n} {}", o.as_str()))) }
            }
        }
    }
}

/// `a/b c` as a relative URL: every byte but unreserved ones and `/`
/// percent-encoded.
fn url_path(p: &str) -> String {
    let mut s = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// The link to a cell's report.html (with `#fragment` when not empty).
fn report_href(run_dir: &str, fragment: &str) -> String {
    let mut s = url_path(&format!("{run_dir}/report.html"));
    if !fragment.is_empty() {
        s.push('#');
        s.push_str(fragment);
    }
    s
}

/// The worst of a run's outcomes, for a row's colour.
fn worst(r: &RunReport) -> Outcome {
    r.scenarios
        .iter()
        .map(|s| s.outcome)
        .filter(|o| *o != Outcome::Skip)
        .max()
        .unwrap_or(Outcome::Skip)
}

/// One row per cell: status, kernel, counts, links.
fn cell_table(cells: &[CellRun]) -> Markup {
    html! {
        section {
            h2 { "Cells" }
            table id="cells" {
                thead { tr { th { "cell" } th { "status" } th { "kernel" } th { "instances" } th { "files" } } }
                tbody {
                    @for c in cells {
                        @match &c.run {
                            Ok((dir, r)) => {
                                @let bad = r.status != RunStatus::Finished;
                                tr class={ "row " (outcome_class(if bad { Outcome::Error } else { worst(r) })) }
                                    data-cell=(c.name) {
                                    td { a href=(report_href(dir, "")) { (c.name) } }
                                    td { @if bad { (chip(Outcome::Error, r.status.as_str())) } @else { (r.status) } }
                                    td { (r.kernel.release) " " span class="muted" { (r.kernel.source) } }
                                    td {
                                        @for o in OUTCOMES {
                                            @let n = r.count(o);
                                            @if n > 0 { (chip(o, &format!("{n} {}", o.as_str()))) " " }
                                        }
                                        @if let Some(e) = &r.error {
                                            div class="muted" { (e.lines().next().unwrap_or_default()) }
                                        }
                                    }
                                    td {
                                        a href=(report_href(dir, "")) { "report.html" } " "
                                        a href=(url_path(&format!("{}.log", c.name))) { "log" }
                                    }
                                }
                            }
                            Err(e) => {
                                tr class="row o-error" data-cell=(c.name) {
                                    td { (c.name) }
                                    td { (chip(Outcome::Error, "no run")) }
                                    td {}
                                    td class="muted" { (e) }
                                    td { a href=(url_path(&format!("{}.log", c.name))) { "log" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One instance in one cell: its index in the cell's run (the anchor of
/// its row in report.html) and its result.
type Square<'a> = Option<(usize, &'a ScenarioResult)>;

/// Every instance any cell ran, by name, with its square in each cell.
fn instances(cells: &[CellRun]) -> BTreeMap<&str, Vec<Square<'_>>> {
    let mut rows: BTreeMap<&str, Vec<Square>> = BTreeMap::new();
    for (j, c) in cells.iter().enumerate() {
        let Some(r) = c.report() else { continue };
        for (i, s) in r.scenarios.iter().enumerate() {
            let row = rows
                .entry(s.name.as_str())
                .or_insert_with(|| vec![None; cells.len()]);
            row[j] = Some((i, s));
        }
    }
    rows
}

/// The grid: one row per instance, one square per cell, the durations plot.
fn grid(cells: &[CellRun]) -> Markup {
    let rows = instances(cells);
    let present: BTreeSet<Outcome> = rows
        .values()
        .flatten()
        .flatten()
        .map(|(_, s)| s.outcome)
        .collect();
    let mut choices = vec![("failed".to_string(), "failed (any)".to_string())];
    choices.extend(
        OUTCOMES
            .iter()
            .filter(|o| present.contains(o))
            .map(|o| (o.as_str().to_string(), o.as_str().to_string())),
    );
    let facets = [Facet {
        name: "outcome",
        label: "rows with an outcome",
        choices,
    }];
    html! {
        section {
            h2 { "Scenario instances × cells" }
            p class="muted" {
                "Each square is one instance in one cell, coloured by its outcome; it links to the \
                 instance in that cell's report.html. A dashed square: the cell did not run it. \
                 The plot is the instance's duration in each cell, in the columns' order, \
                 scaled to its longest (red: failed)."
            }
            (page::filters(GRID, &facets, rows.len()))
            div class="scroll" {
                table id=(GRID) class="grid" {
                    thead { tr {
                        th { "instance" }
                        @for c in cells {
                            th class="cell" {
                                @match &c.run {
                                    Ok((dir, _)) => a href=(report_href(dir, "")) { (c.name) },
                                    Err(_) => (c.name),
                                }
                            }
                        }
                        th { "duration across cells" }
                    } }
                    tbody {
                        @for (name, squares) in &rows {
                            (grid_row(cells, name, squares))
                        }
                    }
                }
            }
        }
    }
}

/// One instance's row.
fn grid_row(cells: &[CellRun], name: &str, squares: &[Square]) -> Markup {
    let outcomes: BTreeSet<Outcome> = squares.iter().flatten().map(|(_, s)| s.outcome).collect();
    let mut words: Vec<&str> = outcomes.iter().map(|o| o.as_str()).collect();
    if outcomes.iter().any(|o| o.is_failure()) {
        words.push("failed");
    }
    html! {
        tr data-outcome=(words.join(" ")) data-instance=(name) {
            td class="name mono" { (name) }
            @for (c, sq) in cells.iter().zip(squares) {
                td {
                    @match (sq, &c.run) {
                        (Some((i, s)), Ok((dir, _))) => {
                            a class={ "sq " (outcome_class(s.outcome)) } data-outcome=(s.outcome.as_str())
                                href=(report_href(dir, &format!("i{i}")))
                                title={ (c.name) ": " (s.outcome.as_str()) (took(s)) } {}
                        }
                        _ => span class="sq none" title={ (c.name) ": not run" } {},
                    }
                }
            }
            td class="plot" { (plot(cells, squares)) }
        }
    }
}

/// `, 35.2 ms`, or nothing for an instance that did not run.
fn took(s: &ScenarioResult) -> String {
    if s.duration_ns > 0 {
        format!(", {}", duration(s.duration_ns))
    } else {
        String::new()
    }
}

/// The instance's duration in each cell: one bar per cell, scaled to the
/// longest, with the shortest and longest as text.
fn plot(cells: &[CellRun], squares: &[Square]) -> Markup {
    let times: Vec<u64> = squares
        .iter()
        .flatten()
        .map(|(_, s)| s.duration_ns)
        .filter(|d| *d > 0)
        .collect();
    let (Some(&lo), Some(&hi)) = (times.iter().min(), times.iter().max()) else {
        return html! { span class="muted" { "-" } };
    };
    let w = PLOT_STEP * cells.len() as f64;
    html! {
        svg class="plot" width=(w) height=(PLOT_H) viewBox={ "0 0 " (w) " " (PLOT_H) }
            role="img" aria-label="duration per cell" {
            @for (j, (c, sq)) in cells.iter().zip(squares).enumerate() {
                @if let Some((_, s)) = sq.filter(|(_, s)| s.duration_ns > 0) {
                    @let h = (s.duration_ns as f64 / hi as f64 * (PLOT_H - 2.0)).max(1.0);
                    rect x=(format!("{:.0}", j as f64 * PLOT_STEP + 1.0)) y=(format!("{:.1}", PLOT_H - h))
                        width=(PLOT_STEP - 2.0) height=(format!("{h:.1}"))
                        fill=(if s.outcome.is_failure() { "#c0392b" } else { "#6d8fb3" }) {
                        title { (c.name) ": " (duration(s.duration_ns)) " " (s.outcome.as_str()) }
                    }
                }
            }
        }
        " " span class="muted" { (duration(lo)) @if hi != lo { " – " (duration(hi)) } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::paths::fixture_run as fixture;

    fn cell(name: &str, run: &str) -> CellRun {
        let r = fixture(run);
        CellRun {
            name: name.into(),
            run: Ok((format!("{name}/{}", r.run_id), r)),
        }
    }

    #[test]
    fn every_instance_is_a_row_with_a_square_per_cell_linking_to_its_report() {
        let mut weird = cell("7.3-x<y>&\"z\" a", "failed");
        if let Ok((_, r)) = &mut weird.run {
            r.scenarios[0].name = "<script>alert(1)</script>@madvise".into();
        }
        let cells = vec![
            cell("a-failed", "failed"),
            cell("b-crashed", "crashed"),
            weird,
            CellRun {
                name: "c-broken".into(),
                run: Err("c-broken: no run.json <see the log>".into()),
            },
        ];
        let p = render("hmmlab matrix m<1>", &cells);
        assert!(p.contains("<title>hmmlab matrix m&lt;1&gt;</title>"), "{p}");
        assert!(!p.contains("<script>alert"), "{p}");
        assert!(
            p.contains("&lt;script&gt;alert(1)&lt;/script&gt;@madvise"),
            "{p}"
        );
        assert!(p.contains("no run.json &lt;see the log&gt;"), "{p}");
        // The cell name is escaped as text and percent-encoded in links.
        assert!(p.contains("7.3-x&lt;y&gt;&amp;&quot;z&quot; a"), "{p}");
        assert!(
            p.contains("href=\"7.3-x%3Cy%3E%26%22z%22%20a/20261205-010759-bfc2/report.html\""),
            "{p}"
        );
        let failed = fixture("failed");
        let i = failed
            .scenarios
            .iter()
            .position(|s| s.name == "fail-alloc-thp@madvise")
            .unwrap();
        assert!(
            p.contains(&format!(
                "<a class=\"sq o-fail\" data-outcome=\"fail\" href=\"a-failed/20261205-010759-bfc2/report.html#i{i}\""
            )),
            "{p}"
        );
        // A row per instance any cell ran; a square per cell in each.
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for c in &cells {
            if let Some(r) = c.report() {
                names.extend(r.scenarios.iter().map(|s| s.name.as_str()));
            }
        }
        assert_eq!(p.matches("<tr data-outcome=").count(), names.len(), "{p}");
        assert_eq!(
            p.matches("class=\"sq ").count(),
            names.len() * cells.len(),
            "{p}"
        );
        // Counts: 4 cells, 3 finished, 1 without a run; the instances by outcome.
        assert!(p.contains("4 cells") && p.contains("3 finished"), "{p}");
        assert!(p.contains("1 did not finish"), "{p}");
        let all = fixture("failed").scenarios.len() * 2 + fixture("crashed").scenarios.len();
        assert!(p.contains(&format!("{all} instances")), "{p}");
        assert!(p.contains("2 fail"), "{p}");
        assert!(!p.contains("http"), "nothing is fetched: {p}");
    }

    #[test]
    fn the_page_of_an_18_cell_matrix_is_well_under_two_megabytes() {
        let cells: Vec<CellRun> = (0..18)
            .map(|k| cell(&format!("7.{k}-debug-madvise"), "default-suite"))
            .collect();
        let p = render("hmmlab matrix big", &cells);
        let rows = cells[0].report().unwrap().scenarios.len();
        assert_eq!(p.matches("<rect ").count(), rows * 18);
        println!(
            "matrix.html of 18 cells × {rows} instances: {} bytes",
            p.len()
        );
        assert!(p.len() < 1 << 20, "{} bytes", p.len());
    }

    #[test]
    fn cells_are_found_by_log_and_by_run() {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("a-cell/20261205-000000-abcd");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::copy(
            crate::paths::repo_root().join("xtask/tests/fixtures/runs/failed/run.json"),
            run.join("run.json"),
        )
        .unwrap();
        std::fs::write(t.path().join("b-cell.log"), "no kernel").unwrap();
        std::fs::create_dir_all(t.path().join("coverage/7.3")).unwrap();
        std::fs::write(t.path().join("table.txt"), "").unwrap();
        let names = cells_in(t.path());
        assert_eq!(names, ["a-cell", "b-cell"]);
        let cells = load(t.path(), &names);
        assert_eq!(
            cells[0].run.as_ref().unwrap().0,
            "a-cell/20261205-000000-abcd"
        );
        assert!(cells[1].run.as_ref().unwrap_err().contains("no run.json"));
    }
}
