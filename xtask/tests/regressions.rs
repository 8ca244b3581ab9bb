//! The suite catches regressions: each example patch under patches/examples/
//! is built into a real 6.12 kernel (ccache makes that about half a minute),
//! the whole suite runs on it, and exactly the scenarios that pin down the
//! broken behaviour fail, in every THP mode they run in, while all others pass.

mod common;

use std::collections::BTreeSet;

use common::*;

/// Scenarios (without `@mode`) that fail on the patched kernel, and whether
/// any instance of a failing scenario passed, per outcome.
fn failing(run: &Run) -> (BTreeSet<String>, Vec<String>) {
    let j = run.json();
    let mut fail = BTreeSet::new();
    let mut mixed = vec![];
    let scenarios = j["scenarios"].as_array().unwrap();
    for s in scenarios {
        let name = s["name"].as_str().unwrap();
        let base = name.split('@').next().unwrap().to_string();
        if s["outcome"] != "pass" {
            assert_eq!(
                s["outcome"], "fail",
                "{name} must fail cleanly, not {}: {}",
                s["outcome"], s["message"]
            );
            fail.insert(base);
        }
    }
    for s in scenarios {
        let name = s["name"].as_str().unwrap();
        if fail.contains(name.split('@').next().unwrap()) && s["outcome"] == "pass" {
            mixed.push(name.to_string());
        }
    }
    (fail, mixed)
}

fn check(patch: &str, expect: &[&str]) {
    let path = format!("patches/examples/{patch}.patch");
    let run = xtask(&["run-scenarios", "--patch", &path]);
    assert_eq!(
        run.code,
        1,
        "the patched kernel must fail the suite\n{}",
        run.explain()
    );
    assert!(run.json()["kernel"]["patches"][0]
        .as_str()
        .unwrap()
        .ends_with(&path));
    let (fail, mixed) = failing(&run);
    let want: BTreeSet<String> = expect.iter().map(|s| s.to_string()).collect();
    assert_eq!(fail, want, "{patch}: failing scenarios\n{}", run.stdout);
    assert!(
        mixed.is_empty(),
        "{patch}: these instances passed in one THP mode only: {mixed:?}"
    );
    assert!(no_qemu_left(&run));
}

#[test]
fn no_migrate_empty_pte() {
    check(
        "no-migrate-empty-pte",
        &[
            "empty-anon",
            "empty-multi-pmd",
            "empty-pte-between-populated",
            "hmm-tests",
            "mixed-populated-empty-zero",
            "read-only-anon",
        ],
    );
}

#[test]
fn no_migrate_zero_page() {
    check(
        "no-migrate-zero-page",
        &[
            "hmm-tests",
            "huge-zero-page",
            "mixed-populated-empty-zero",
            "read-only-anon",
            "zero-page",
        ],
    );
}

/// The kernel's own hmm-tests passes on this kernel.
#[test]
fn skip_holes() {
    check(
        "skip-holes",
        &["empty-anon", "empty-multi-pmd", "empty-one-page"],
    );
}

/// The kernel's own hmm-tests passes on this kernel.
#[test]
fn ignore_userfaultfd() {
    check("ignore-userfaultfd", &["userfaultfd-holes"]);
}
