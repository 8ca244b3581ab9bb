//! matrix.html in a real browser (no VM): a matrix directory laid out as
//! `cargo xtask matrix` leaves it (`<cell>.log`, `<cell>/<run-id>/run.json`
//! and its report.html), made of the fixture runs (`fixtures/runs/`: one
//! failed instance, a kernel crash, the passing default suite) and a cell
//! that left no run; the hidden `matrix-html` task writes the page with the
//! matrix's own render function.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{browser_screenshot, repo, run_json, self_contained_page};

/// The matrix's cells: name and the fixture run it left (None: no run).
const CELLS: [(&str, Option<&str>); 4] = [
    ("7.3-base-madvise", Some("failed")),
    ("7.3-debug-madvise", Some("crashed")),
    ("7.3-base-always", Some("default-suite")),
    ("6.1-kasan-always", None),
];

/// The failed fixture's failing instance.
const FAILING: &str = "fail-alloc-thp@madvise";

fn xtask(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xtask {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The matrix directory, each cell's run with its report.html; the run
/// directory (relative) of each cell that has one.
fn matrix_dir() -> (PathBuf, BTreeMap<&'static str, String>) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("matrix-html")
        .join("matrix-20261205-000000-test");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut runs = BTreeMap::new();
    for (cell, fixture) in CELLS {
        std::fs::write(dir.join(format!("{cell}.log")), "cell log\n").unwrap();
        let Some(fixture) = fixture else { continue };
        let src = repo().join("xtask/tests/fixtures/runs").join(fixture);
        let id = run_json(&src)["run_id"].as_str().unwrap().to_string();
        let run = dir.join(cell).join(&id);
        std::fs::create_dir_all(&run).unwrap();
        std::fs::copy(src.join("run.json"), run.join("run.json")).unwrap();
        xtask(&["report-html", run.to_str().unwrap()]);
        runs.insert(cell, format!("{cell}/{id}"));
    }
    (dir, runs)
}

/// What the page shows, read in the browser.
const PROBE: &str = r#"
const cells = [...document.querySelectorAll('#grid th.cell')].map(th => th.textContent);
const rows = [...document.querySelectorAll('#grid > tbody > tr')];
const shown = () => rows.filter(r => getComputedStyle(r).display !== 'none').map(r => r.dataset.instance);
const filter = v => {
  const s = document.querySelector('form.filters select[data-facet=outcome]');
  s.value = v; s.dispatchEvent(new Event('change', {bubbles: true}));
  return shown();
};
probe = {
  cells,
  rows: rows.map(r => r.dataset.instance),
  squares: [...document.querySelectorAll('#grid .sq')].map(s => ({
    instance: s.closest('tr').dataset.instance,
    cell: cells[s.closest('td').cellIndex - 1],
    outcome: s.dataset.outcome || null,
    class: s.className,
    href: s.getAttribute('href'),
    background: getComputedStyle(s).backgroundColor,
  })),
  cell_links: Object.fromEntries([...document.querySelectorAll('#cells > tbody > tr')].map(r =>
    [r.dataset.cell, [...r.querySelectorAll('a')].map(a => a.getAttribute('href'))])),
  cell_rows: Object.fromEntries([...document.querySelectorAll('#cells > tbody > tr')].map(r =>
    [r.dataset.cell, r.textContent])),
  counts: document.getElementById('counts').textContent,
  instance_counts: document.getElementById('instance-counts').textContent,
  bars: document.querySelectorAll('svg.plot rect').length,
  failed: filter('failed'),
  all: filter(''),
  external: [...document.querySelectorAll("[src], link, a[href*=':']")].map(e => e.outerHTML),
  fetched: performance.getEntriesByType('resource').map(e => e.name),
};
"#;

#[test]
fn the_matrix_page_shows_each_cell_and_instance_and_links_to_the_cells_reports() {
    let (dir, runs) = matrix_dir();
    let out = xtask(&["matrix-html", dir.to_str().unwrap()]);
    let page = dir.join("matrix.html");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        page.display().to_string()
    );
    let size = std::fs::metadata(&page).unwrap().len();
    println!("matrix.html of {} cells: {size} bytes", CELLS.len());
    let p = self_contained_page(&page, PROBE);

    // The cells, by name, as columns; the cell without a run says so.
    let mut names: Vec<&str> = CELLS.iter().map(|(c, _)| *c).collect();
    names.sort();
    assert_eq!(p["cells"], serde_json::json!(names), "{p}");
    let counts = p["counts"].as_str().unwrap();
    assert!(
        counts.contains("4 cells")
            && counts.contains("3 finished")
            && counts.contains("1 did not finish"),
        "{counts}"
    );
    assert!(
        p["cell_rows"]["6.1-kasan-always"]
            .as_str()
            .unwrap()
            .contains("no run"),
        "{p}"
    );
    assert_eq!(
        p["cell_links"]["6.1-kasan-always"],
        serde_json::json!(["6.1-kasan-always.log"]),
        "{p}"
    );

    // Every instance of every run is a square with its outcome, linking to
    // its own row in its cell's report.html.
    let mut all_instances = BTreeSet::new();
    let mut failing = BTreeSet::new();
    let mut timed = 0;
    let squares = p["squares"].as_array().unwrap();
    for (cell, run_dir) in &runs {
        let report = dir.join(run_dir).join("report.html");
        let html = std::fs::read_to_string(&report).unwrap();
        assert_eq!(
            p["cell_links"][cell][0],
            format!("{run_dir}/report.html"),
            "{p}"
        );
        let run = run_json(&dir.join(run_dir));
        for (i, s) in run["scenarios"].as_array().unwrap().iter().enumerate() {
            let name = s["name"].as_str().unwrap();
            all_instances.insert(name.to_string());
            if !matches!(s["outcome"].as_str(), Some("pass" | "skip")) {
                failing.insert(name.to_string());
            }
            if s["duration_ns"].as_u64().unwrap() > 0 {
                timed += 1;
            }
            let sq: Vec<&serde_json::Value> = squares
                .iter()
                .filter(|q| q["cell"] == *cell && q["instance"] == name)
                .collect();
            assert_eq!(sq.len(), 1, "{cell} {name}: {sq:?}");
            assert_eq!(sq[0]["outcome"], s["outcome"], "{cell} {name}");
            let href = format!("{run_dir}/report.html#i{i}");
            assert_eq!(sq[0]["href"], href, "{cell} {name}");
            let row = &html[html
                .find(&format!("id=\"i{i}\""))
                .unwrap_or_else(|| panic!("{} has no row i{i}", report.display()))..];
            let row = &row[..row.find("</tr>").unwrap()];
            assert!(
                row.contains(&format!(">{name}<")),
                "{href} is not {name}'s row: {row}"
            );
        }
    }
    assert_eq!(
        p["rows"],
        serde_json::json!(all_instances.iter().collect::<Vec<_>>()),
        "{p}"
    );
    assert_eq!(squares.len(), all_instances.len() * CELLS.len(), "{p}");
    assert!(
        squares
            .iter()
            .filter(|q| q["cell"] == "6.1-kasan-always")
            .all(|q| q["outcome"].is_null() && q["href"].is_null()),
        "the cell without a run has no squares of its own: {p}"
    );
    assert_eq!(p["bars"], timed, "one bar per timed instance and cell: {p}");

    // The failing instance's square is shown failed, unlike a passing one.
    let square = |cell: &str, name: &str| {
        squares
            .iter()
            .find(|q| q["cell"] == cell && q["instance"] == name)
            .unwrap()
    };
    let fail = square("7.3-base-madvise", FAILING);
    let pass = square("7.3-base-madvise", "empty-anon@madvise");
    assert_eq!(fail["outcome"], "fail", "{p}");
    assert!(fail["class"].as_str().unwrap().contains("o-fail"), "{fail}");
    assert_ne!(fail["background"], pass["background"], "{fail} {pass}");
    assert_eq!(square("7.3-base-always", FAILING)["outcome"], "pass", "{p}");
    // The filter keeps the rows with a failure in any cell.
    assert_eq!(
        p["failed"],
        serde_json::json!(failing.iter().collect::<Vec<_>>()),
        "{p}"
    );
    assert!(p["failed"].as_array().unwrap().iter().any(|n| n == FAILING));
    assert_eq!(p["all"], p["rows"], "{p}");

    let png = page.with_extension("png");
    browser_screenshot(&page, &png, 1280, 1400);
    println!("screenshot of matrix.html: {}", png.display());
}
