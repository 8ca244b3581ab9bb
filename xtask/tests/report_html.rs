//! report.html in a real browser, from real runs' run.json (no VM): the
//! hidden `report-html` task writes the page with the reporter's own render
//! function. Fixtures (`fixtures/runs/`): `failed`, a run that stopped at its
//! first failure (one failed instance, the rest skipped with a reason);
//! `crashed`, a kernel crash in one instance (console excerpts) and the
//! instances after it errors; `default-suite`, the 50 instances of the
//! default suite, all passing, with their step timings.

mod common;

use std::path::{Path, PathBuf};

use common::{browser_page, browser_screenshot, repo, run_json};

/// Copy the fixture run `name` into the test's output directory, write its
/// page with `cargo xtask report-html`, and return the page.
fn page_of(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-html")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        repo()
            .join("xtask/tests/fixtures/runs")
            .join(name)
            .join("run.json"),
        dir.join("run.json"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("report-html")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = dir.join("report.html");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        page.display().to_string()
    );
    page
}

/// What the page shows, read in the browser: the rows, how many are visible
/// with each outcome filter, and each failure's box.
const PROBE: &str = r#"
const rows = [...document.querySelectorAll('#instances > tbody > tr')];
const shown = () => rows.filter(r => getComputedStyle(r).display !== 'none');
const filter = v => {
  const s = document.querySelector('form.filters select[data-facet=outcome]');
  s.value = v; s.dispatchEvent(new Event('change', {bubbles: true}));
  return { shown: shown().map(r => r.querySelector('.name').textContent),
           passing_shown: shown().filter(r => r.classList.contains('o-pass')).length,
           counter: document.querySelector('form.filters .shown').textContent };
};
const bg = el => el ? getComputedStyle(el).backgroundColor : null;
const all = shown().length;
probe = {
  rows: rows.length,
  all,
  row_outcomes: Object.fromEntries(rows.map(r =>
    [r.querySelector('.name').textContent, r.querySelector('.chip').textContent])),
  failed: filter('failed'),
  pass: filter('pass'),
  everything: filter(''),
  failures: [...document.querySelectorAll('.failure')].map(f => ({
    name: f.querySelector('h3').firstChild.textContent.trim(),
    outcome: f.querySelector('h3 .chip').textContent,
    message: f.querySelector('pre.message').textContent,
    excerpts: [...f.querySelectorAll('pre.excerpt')].map(p => p.textContent),
    copy: f.querySelector('button.copy') && f.querySelector('button.copy').dataset.copy,
  })),
  colours: { pass: bg(document.querySelector('tr.o-pass .chip')),
             fail: bg(document.querySelector('tr.o-fail .chip, tr.o-crashed .chip')),
             skip: bg(document.querySelector('tr.o-skip .chip')) },
  skips: document.getElementById('skips').textContent,
  step_bars: document.querySelectorAll('svg.stack rect').length,
  external: [...document.querySelectorAll("[src], link, a[href]:not([href^='#'])")].map(e => e.outerHTML),
  fetched: performance.getEntriesByType('resource').map(e => e.name),
};
"#;

/// The failed instances of a run.json: name, outcome, message, reproduce,
/// console excerpts.
fn failed(run: &serde_json::Value) -> Vec<&serde_json::Value> {
    scenarios(run)
        .iter()
        .filter(|s| !matches!(s["outcome"].as_str(), Some("pass") | Some("skip")))
        .collect()
}

fn scenarios(run: &serde_json::Value) -> &Vec<serde_json::Value> {
    run["scenarios"].as_array().unwrap()
}

fn names_with(run: &serde_json::Value, outcome: &str) -> Vec<String> {
    scenarios(run)
        .iter()
        .filter(|s| s["outcome"] == outcome)
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

/// Load the fixture's page in Chromium and check it against its run.json:
/// no console message, one row per instance with its outcome, the outcome
/// filter, every failure with its message, excerpts and reproduce line.
/// Saves a screenshot next to the page.
fn check(name: &str) -> serde_json::Value {
    let page = page_of(name);
    let run = run_json(page.parent().unwrap());
    let (p, console) = browser_page(&page, PROBE);
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert_eq!(
        p["external"],
        serde_json::json!([]),
        "nothing outside the page"
    );
    assert_eq!(p["fetched"], serde_json::json!([]), "nothing fetched");
    let n = scenarios(&run).len();
    assert_eq!(p["rows"], n, "{p}");
    assert_eq!(p["all"], n, "every row is shown at first: {p}");
    for s in scenarios(&run) {
        assert_eq!(
            p["row_outcomes"][s["name"].as_str().unwrap()],
            s["outcome"],
            "{p}"
        );
    }
    let failed = failed(&run);
    let failed_names: Vec<&str> = failed.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(p["failed"]["shown"], serde_json::json!(failed_names), "{p}");
    assert_eq!(p["failed"]["passing_shown"], 0, "{p}");
    assert_eq!(p["failed"]["counter"], failed.len().to_string(), "{p}");
    assert_eq!(
        p["pass"]["shown"],
        serde_json::json!(names_with(&run, "pass")),
        "{p}"
    );
    assert_eq!(p["everything"]["shown"].as_array().unwrap().len(), n, "{p}");
    let boxes = p["failures"].as_array().unwrap();
    assert_eq!(boxes.len(), failed.len(), "{p}");
    for (b, s) in boxes.iter().zip(&failed) {
        assert_eq!(b["name"], s["name"], "{p}");
        assert_eq!(b["outcome"], s["outcome"], "{p}");
        assert_eq!(b["message"], s["message"], "{p}");
        assert_eq!(b["copy"], s["reproduce"], "{p}");
        let findings = s["console_findings"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            b["excerpts"].as_array().unwrap().len(),
            findings.len(),
            "{p}"
        );
        for (e, f) in b["excerpts"].as_array().unwrap().iter().zip(&findings) {
            assert!(
                e.as_str().unwrap().contains(f["excerpt"].as_str().unwrap()),
                "{e} lacks the excerpt of {f}"
            );
        }
    }
    for s in scenarios(&run).iter().filter(|s| s["outcome"] == "skip") {
        let why = s["message"].as_str().unwrap().lines().next().unwrap();
        assert!(p["skips"].as_str().unwrap().contains(why), "{p}");
        assert!(
            p["skips"]
                .as_str()
                .unwrap()
                .contains(s["name"].as_str().unwrap()),
            "{p}"
        );
    }
    let steps: usize = scenarios(&run)
        .iter()
        .map(|s| s["steps"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(p["step_bars"], steps, "one bar per step: {p}");
    let png = page.with_extension("png");
    browser_screenshot(&page, &png, 1280, 1600);
    println!("screenshot of {name}'s report.html: {}", png.display());
    p
}

#[test]
fn a_failed_instance_shows_its_message_and_the_filter_keeps_the_failures() {
    let p = check("failed");
    let c = &p["colours"];
    assert!(
        c["pass"] != c["fail"] && c["pass"] != c["skip"] && c["fail"] != c["skip"],
        "passing, failing and skipped rows look alike: {c}"
    );
}

#[test]
fn a_crash_shows_its_console_excerpts() {
    let p = check("crashed");
    assert!(
        p["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| !f["excerpts"].as_array().unwrap().is_empty()),
        "no failure shows a console excerpt: {p}"
    );
}

#[test]
fn the_page_of_the_default_suite_is_small() {
    check("default-suite");
    let page = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html/default-suite/report.html");
    let size = std::fs::metadata(&page).unwrap().len();
    println!("report.html of the 50-instance default suite: {size} bytes");
    assert!(size < 2 << 20, "{size} bytes");
}
