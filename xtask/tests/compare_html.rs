//! compare.html in a real browser (no VM): `cargo xtask compare A B --html`
//! on two fixture runs (`fixtures/runs/`): A the passing default suite, B a
//! run that failed one instance and skipped the rest after it. The page is
//! checked against the comparison's own JSON, printed by the same command.

mod common;

use std::path::Path;
use std::process::Command;

use common::{browser_screenshot, repo, self_contained_page};

/// B's failing instance, which passes in A.
const NEW_FAILURE: &str = "fail-alloc-thp@madvise";

/// What the page shows, read in the browser.
const PROBE: &str = r#"
const text = el => el ? el.textContent.trim() : null;
const bg = el => el ? getComputedStyle(el).backgroundColor : null;
probe = {
  sides: ['A', 'B'].map(s => text(document.querySelector('#side-' + s + ' p.mono'))),
  counts: text(document.getElementById('counts')),
  changes: [...document.querySelectorAll('#changes tbody tr')].map(r => ({
    instance: r.dataset.instance,
    change: text(r.querySelector('td:nth-child(2) .chip')),
    a: text(r.querySelector('td:nth-child(3)')),
    b: text(r.querySelector('td:nth-child(4)')),
    why: text(r.querySelector('td.why')),
    colour: bg(r.querySelector('td:nth-child(2) .chip')),
  })),
  timings: [...document.querySelectorAll('#timings > tbody > tr')].map(r => ({
    instance: r.dataset.instance,
    a: text(r.querySelector('td:nth-child(4)')),
    b: text(r.querySelector('td:nth-child(5)')),
    sides: [...r.querySelectorAll('svg.range g')].map(g => g.dataset.side),
    width: r.querySelector('svg.range') ? r.querySelector('svg.range').getBoundingClientRect().width : 0,
  })),
  unchanged_colour: bg([...document.querySelectorAll('#counts .chip')].find(c => c.textContent.includes('unchanged'))),
  external: [...document.querySelectorAll("[src], link, a[href]:not([href^='#'])")].map(e => e.outerHTML),
  fetched: performance.getEntriesByType('resource').map(e => e.name),
};
"#;

#[test]
fn a_new_failure_is_listed_first_and_every_instance_shows_both_durations() {
    let runs = repo().join("xtask/tests/fixtures/runs");
    let (a, b) = (runs.join("default-suite"), runs.join("failed"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare-html");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("compare.html");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("compare")
        .args([&a, &b])
        .arg("--json")
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "B regressed: {stderr}");
    assert!(stderr.contains(&page.display().to_string()), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let size = std::fs::metadata(&page).unwrap().len();
    println!("compare.html: {size} bytes");

    let p = self_contained_page(&page, PROBE);
    assert_eq!(
        p["sides"],
        serde_json::json!([a.display().to_string(), b.display().to_string()]),
        "{p}"
    );
    assert!(p["counts"].as_str().unwrap().contains("B regressed"), "{p}");

    // The outcome changes: the new failure first, with B's message; then
    // the rest in the comparison's order.
    let changes = p["changes"].as_array().unwrap();
    let first = &changes[0];
    assert_eq!(first["instance"], NEW_FAILURE, "{p}");
    assert_eq!(first["change"], "new failure", "{p}");
    assert_eq!(first["a"], "pass", "{p}");
    assert_eq!(first["b"], "fail", "{p}");
    let failed = common::run_json(&b);
    let message = failed["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == NEW_FAILURE)
        .unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(
        first["why"]
            .as_str()
            .unwrap()
            .contains(message.lines().next().unwrap()),
        "{first} lacks {message}"
    );
    assert_ne!(first["colour"], p["unchanged_colour"], "{p}");
    let instances = json["instances"].as_array().unwrap();
    let changed: Vec<&serde_json::Value> = instances
        .iter()
        .filter(|i| !matches!(i["kind"].as_str(), Some("unchanged" | "slower" | "faster")))
        .map(|i| &i["instance"])
        .collect();
    let shown: Vec<&serde_json::Value> = changes.iter().map(|c| &c["instance"]).collect();
    assert_eq!(shown, changed, "{p}");
    assert!(
        changes.iter().any(|c| c["change"] == "newly skipped"),
        "{p}"
    );

    // Every instance has a durations row; where both sides passed, the
    // plot draws both, with each side's duration as text.
    let timings = p["timings"].as_array().unwrap();
    assert_eq!(timings.len(), instances.len(), "{p}");
    for (row, i) in timings.iter().zip(instances) {
        assert_eq!(row["instance"], i["instance"], "{p}");
        let duration = i["timing"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["metric"] == "duration"));
        let drawn: Vec<&str> = ["a", "b"]
            .into_iter()
            .filter(|s| duration.is_some_and(|d| d.get(*s).is_some()))
            .map(|s| if s == "a" { "A" } else { "B" })
            .collect();
        assert_eq!(row["sides"], serde_json::json!(drawn), "{row}");
        if !drawn.is_empty() {
            assert!(row["width"].as_f64().unwrap() > 100.0, "{row}");
        }
        for (side, key) in [("A", "a"), ("B", "b")] {
            let text = row[key].as_str().unwrap();
            assert_eq!(drawn.contains(&side), text != "-", "{side}: {row}");
            if let Some(ns) = duration.and_then(|d| d[key]["median"].as_f64()) {
                let want = if ns < 1e9 {
                    format!("{:.1} ms", ns / 1e6)
                } else {
                    format!("{:.2} s", ns / 1e9)
                };
                assert!(text.contains(&want), "{side} {want}: {row}");
            }
        }
    }
    assert!(
        timings
            .iter()
            .any(|r| r["sides"] == serde_json::json!(["A", "B"])),
        "{p}"
    );

    let png = page.with_extension("png");
    browser_screenshot(&page, &png, 1280, 1400);
    println!("screenshot of compare.html: {}", png.display());
}
