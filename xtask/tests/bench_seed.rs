//! `cargo xtask bench --seed` end to end, on the default kernel (7.3): one
//! boot measures every case, size and THP mode with complete records, the
//! history takes the run, and a planted slowdown on the seed's path
//! (`patches/examples/7.3/slow-empty-entry.patch`: 200 us per empty entry
//! in `migrate_vma_collect_hole()`) is flagged by `compare` as slower than
//! the unpatched run, beyond the spread of both runs' rounds.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const ROUNDS: u64 = 5;
const SIZES: [u64; 2] = [1, 64];

fn bench(results: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "bench",
        "--seed",
        "--sizes",
        "1,64",
        "--rounds",
        "5",
        "--results-dir",
        results.to_str().unwrap(),
    ];
    if !extra.is_empty() {
        args.push("--");
        args.extend(extra);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(&args)
        .current_dir(repo())
        .output()
        .expect("running xtask");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The run directories in `results`, oldest first (run ids sort by time).
fn runs(results: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(results)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("run.json").is_file())
        .collect();
    v.sort();
    v
}

/// Every instance has exactly ROUNDS samples per case and size, rounds
/// 0..ROUNDS, with times that make sense for the case.
fn assert_complete(run: &Path) {
    let j = run_json(run);
    let want: [(&str, &[&str], &[u64]); 3] = [
        (
            "seed@never",
            &["direct", "touch-first", "zero-page"],
            &SIZES,
        ),
        (
            "seed@always",
            &["direct", "touch-first", "zero-page"],
            &SIZES,
        ),
        ("seed-split@always", &["direct", "split"], &[512]),
    ];
    for (name, cases, sizes) in want {
        let s = j["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {}", run.display()));
        assert_eq!(s["outcome"], "pass", "{name}: {}", s["message"]);
        let samples = s["samples"].as_array().expect("samples");
        assert_eq!(
            samples.len() as u64,
            ROUNDS * (cases.len() * sizes.len()) as u64,
            "{name}: {samples:#?}"
        );
        for case in cases {
            for &pages in sizes {
                let mut rounds: Vec<u64> = samples
                    .iter()
                    .filter(|x| x["case"] == *case && x["pages"] == pages)
                    .map(|x| {
                        assert!(x["migrate_ns"].as_u64().unwrap() > 0, "{x}");
                        let prepared = x["prepare_ns"].as_u64().unwrap();
                        let touches = matches!(*case, "touch-first" | "zero-page");
                        assert_eq!(prepared > 0, touches, "{name} {x}");
                        x["round"].as_u64().unwrap()
                    })
                    .collect();
                rounds.sort();
                assert_eq!(
                    rounds,
                    (0..ROUNDS).collect::<Vec<_>>(),
                    "{name} {case} {pages}"
                );
            }
        }
    }
}

#[test]
fn seed_bench_is_complete_and_flags_a_planted_slowdown() {
    let results = tempfile::tempdir().unwrap();
    let (code, out, err) = bench(results.path(), &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("direct / touch-first"),
        "the ratios are printed\n{out}"
    );
    let plain = runs(results.path());
    assert_eq!(plain.len(), 1);
    assert_complete(&plain[0]);

    let (code, out, err) = bench(
        results.path(),
        &["--patch", "patches/examples/7.3/slow-empty-entry.patch"],
    );
    assert_eq!(code, 0, "the slowdown changes no behaviour\n{out}\n{err}");
    let both = runs(results.path());
    assert_eq!(both.len(), 2);
    let slow = both.iter().find(|r| !plain.contains(r)).unwrap();
    assert_complete(slow);
    let j = run_json(slow);
    assert!(
        j["kernel"]["patches"][0]
            .as_str()
            .unwrap()
            .ends_with("slow-empty-entry.patch"),
        "{}",
        j["kernel"]
    );
    assert_eq!(j["booted_kernel"], j["kernel"]["banner"]);

    let history = std::fs::read_to_string(results.path().join("bench-history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 2, "{history}");

    let cmp = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["compare", "--json"])
        .arg(&plain[0])
        .arg(slow)
        .current_dir(repo())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&cmp.stdout);
    assert_eq!(
        cmp.status.code(),
        Some(1),
        "a slowdown is a regression\n{text}"
    );
    let c: serde_json::Value = serde_json::from_str(&text).unwrap();
    for instance in ["seed@never", "seed@always"] {
        let i = c["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["instance"] == instance)
            .unwrap_or_else(|| panic!("{instance} not compared: {text}"));
        let t = i["timing"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["metric"] == "bench direct 64p")
            .unwrap_or_else(|| panic!("{instance}: no bench direct 64p: {i}"));
        assert_eq!(t["flagged"], "slower", "{instance}: {t}");
    }

    // The history shows both runs: a table, and a page of plots.
    let hist = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "--history", "--results-dir"])
        .arg(results.path())
        .current_dir(repo())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&hist.stdout);
    assert_eq!(hist.status.code(), Some(0), "{text}");
    assert!(text.contains("direct/touch-first 64p"), "{text}");
    let page = results.path().join("bench-history.html");
    let p = self_contained_page(
        &page,
        "probe = {plots: document.querySelectorAll('figure.plot').length, \
         runs: document.querySelectorAll('circle.run').length, \
         bands: document.querySelectorAll('polygon.band').length, \
         external: [...document.querySelectorAll(\"[src], link, a[href*=':']\")].map(e => e.outerHTML), \
         fetched: performance.getEntriesByType('resource').map(e => e.name)};",
    );
    // One kernel release: every plot has both runs, and a band between them.
    let plots = p["plots"].as_u64().unwrap();
    assert!(plots >= 20, "{p}");
    assert_eq!(p["runs"].as_u64().unwrap(), 2 * plots, "{p}");
    assert_eq!(p["bands"].as_u64().unwrap(), plots, "{p}");
}
