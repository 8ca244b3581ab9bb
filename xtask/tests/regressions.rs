//! The suite catches regressions: each example patch under patches/examples/
//! (against 6.12) and patches/examples/7.3/ (against 7.3) is built into a
//! real kernel of that version (ccache makes that about a minute), the whole
//! suite runs on it, and exactly the scenarios that pin down the broken
//! behaviour fail, in every THP mode they run in, while all others pass or
//! are not applicable (the 7.x-only scenarios on 6.12). Both hmm-tests
//! scenarios (THP madvise and always) fail wherever one does, but for
//! `7.3/device-pmd-ignores-select-private`: only hmm-tests under THP always
//! migrates to the device over a device THP. A few examples break the
//! kernel's own bookkeeping, and the first scenario to reach the breakage
//! crashes it (`check_crash`): every scenario before it passed.

mod common;

use std::collections::BTreeSet;

use common::*;

/// Scenarios (without `@mode`) that fail on the patched kernel, and the
/// instances of a failing scenario that passed anyway. A skip (a scenario
/// whose `[requires]` this kernel does not meet) is neither.
fn failing(run: &Run) -> (BTreeSet<String>, Vec<String>) {
    let j = run.json();
    let mut fail = BTreeSet::new();
    let mut mixed = vec![];
    let scenarios = j["scenarios"].as_array().unwrap();
    for s in scenarios {
        let name = s["name"].as_str().unwrap();
        let base = name.split('@').next().unwrap().to_string();
        if s["outcome"] != "pass" && s["outcome"] != "skip" {
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

/// Run the suite on `kernel` with `patches/examples/{patch}.patch`: it
/// fails (exit 1), on the kernel built from the patch.
fn patched_run(kernel: &str, patch: &str) -> Run {
    patched_runs(kernel, &[patch])
}

/// As [`patched_run`], with several patches applied in order.
fn patched_runs(kernel: &str, patches: &[&str]) -> Run {
    let paths: Vec<String> = patches
        .iter()
        .map(|p| format!("patches/examples/{p}.patch"))
        .collect();
    let mut args = vec!["run-scenarios", "--kernel", kernel];
    for p in &paths {
        args.extend(["--patch", p.as_str()]);
    }
    let run = xtask(&args);
    let patch = patches.join(" + ");
    assert_eq!(
        run.code,
        1,
        "the patched kernel must fail the suite\n{}",
        run.explain()
    );
    let j = run.json();
    for (i, path) in paths.iter().enumerate() {
        let applied = j["kernel"]["patches"][i].as_str().unwrap_or("");
        assert!(applied.ends_with(path.as_str()), "{patch}: {applied}");
    }
    // The failures are this patch's: the guest ran the kernel built from it.
    assert_eq!(
        j["booted_kernel"], j["kernel"]["banner"],
        "{patch}: the kernel that booted"
    );
    assert!(
        j["kernel"]["patched_files"][0]["sha256"].is_string(),
        "{patch}"
    );
    run
}

/// Run the suite on `kernel` with `patches/examples/{patch}.patch`:
/// exactly the `expect` scenarios fail, in every mode they run in.
fn check(kernel: &str, patch: &str, expect: &[&str]) {
    let run = patched_run(kernel, patch);
    let (fail, mixed) = failing(&run);
    let want: BTreeSet<String> = expect.iter().map(|s| s.to_string()).collect();
    assert_eq!(fail, want, "{patch}: failing scenarios\n{}", run.stdout);
    assert!(
        mixed.is_empty(),
        "{patch}: these instances passed in one THP mode only: {mixed:?}"
    );
    assert!(no_qemu_left(&run));
}

/// Run the suite on `kernel` with `patches/examples/{patch}.patch`: the
/// kernel must crash in `scenario` (its first instance), with `bug` on the
/// console, and every scenario run before it must pass: no earlier one
/// noticed. The crash ends the run: the rest are errors, not run (or
/// skips the plan made).
fn check_crash(kernel: &str, patch: &str, scenario: &str, bug: &str) {
    check_stop(kernel, patch, "crashed", scenario, bug, true, &[]);
}

/// As [`check_crash`], but the scenarios `may_fail` (kernel selftests,
/// whose failures never stop a run) may fail before the crash: for a
/// mistake whose damage an earlier scenario can leave behind unnoticed,
/// for a later one to meet, depending on what lies in memory.
fn check_crash_allowing(kernel: &str, patch: &str, scenario: &str, bug: &str, may_fail: &[&str]) {
    check_stop(kernel, patch, "crashed", scenario, bug, true, may_fail);
}

/// The run stops being trustworthy at the first instance of `scenario`,
/// whose outcome is `outcome` with `text` (or, for a timeout, the host's
/// "timeout") in its message; every scenario before it passed, and with
/// `rest_errors` every one after it is an error (not run).
fn check_stop(
    kernel: &str,
    patch: &str,
    outcome: &str,
    scenario: &str,
    text: &str,
    rest_errors: bool,
    may_fail: &[&str],
) {
    let run = patched_run(kernel, patch);
    let j = run.json();
    let scenarios = j["scenarios"].as_array().unwrap();
    let at = scenarios
        .iter()
        .position(|s| s["outcome"] == outcome)
        .unwrap_or_else(|| panic!("{patch}: no scenario {outcome}\n{}", run.stdout));
    let stopped = &scenarios[at];
    assert_eq!(
        stopped["name"].as_str().unwrap().split('@').next().unwrap(),
        scenario,
        "{patch}: the scenario that stopped the run\n{}",
        run.stdout
    );
    let message = stopped["message"].as_str().unwrap_or("");
    let host_timeout = outcome == "timeout" && message.contains("host-side scenario timeout");
    assert!(
        message.contains(text) || host_timeout,
        "{patch}: {}",
        stopped["message"]
    );
    for s in &scenarios[..at] {
        let base = s["name"].as_str().unwrap_or("").split('@').next().unwrap();
        assert!(
            s["outcome"] == "pass" || s["outcome"] == "skip" || may_fail.contains(&base),
            "{patch}: {} ran before the stop and was {}",
            s["name"],
            s["outcome"]
        );
    }
    // After the stop: errors (never run), and the skips of the plan (a
    // scenario whose `[requires]` this kernel does not meet, listed after
    // the ones that ran).
    for s in scenarios[at + 1..]
        .iter()
        .filter(|_| rest_errors || host_timeout)
    {
        assert!(
            s["outcome"] == "error" || s["outcome"] == "skip",
            "{patch}: {} after the stop was {}",
            s["name"],
            s["outcome"]
        );
    }
    assert!(no_qemu_left(&run));
}

const K612: &str = "debian:6.12";
const K73: &str = "debian:7.3";

/// What not collecting zero-page entries fails, on 6.12 and 7.3 alike.
const ZERO_PAGE: &[&str] = &[
    "hmm-tests",
    "hmm-tests-thp-always",
    "huge-zero-page",
    "mirror-kept-for-refused-page",
    "mixed-populated-empty-zero",
    "read-only-anon",
    "read-only-anon-coherent",
    "zero-page",
    "zero-page-stale-tlb",
];

// 6.12 (test_hmm migrates in batches of 64 pages there).

#[test]
fn no_migrate_empty_pte() {
    check(
        K612,
        "no-migrate-empty-pte",
        &[
            "empty-anon",
            "empty-multi-pmd",
            "empty-pte-between-populated",
            "hmm-tests",
            "hmm-tests-thp-always",
            "mixed-populated-empty-zero",
            "page-flags-round-trip",
            "page-flags-round-trip-thp",
            "read-only-anon",
            "read-only-anon-coherent",
            "read-only-thp-hole",
            "thp-discard-head",
            "thp-empty-device",
            "thp-empty-device-thp-never",
            "thp-empty-unaligned",
            "zero-filled-page-refused",
        ],
    );
}

#[test]
fn no_migrate_zero_page() {
    check(K612, "no-migrate-zero-page", ZERO_PAGE);
}

/// The kernel's own hmm-tests passes on this kernel.
#[test]
fn skip_holes() {
    check(
        K612,
        "skip-holes",
        &[
            "empty-anon",
            "empty-multi-pmd",
            "empty-one-page",
            "hole-pmd-before-pages",
            "page-flags-round-trip-thp",
            "read-only-return-exclusive",
            "read-only-thp-hole",
            "thp-empty-device",
            "thp-empty-device-thp-never",
            "thp-empty-unaligned",
        ],
    );
}

/// The kernel's own hmm-tests passes on this kernel. 6.12 fills an empty
/// 2 MiB range page by page too, so both userfaultfd scenarios fail.
#[test]
fn ignore_userfaultfd() {
    check(
        K612,
        "ignore-userfaultfd",
        &["userfaultfd-holes", "userfaultfd-holes-thp"],
    );
}

// The same four behaviours on 7.3's code (batches of 512 pages, so a
// never-touched range of up to 512 pages meets no empty pte), and four
// mistakes on its device-THP paths.

#[test]
fn no_migrate_empty_pte_7_3() {
    check(
        K73,
        "7.3/no-migrate-empty-pte",
        &[
            "empty-multi-pmd",
            "empty-pte-between-populated",
            "fail-alloc-pages",
            "hmm-tests",
            "hmm-tests-thp-always",
            "mixed-populated-empty-zero",
            "page-flags-round-trip",
            "read-only-anon",
            "read-only-anon-coherent",
            "thp-discard-head",
            "zero-filled-page-refused",
        ],
    );
}

#[test]
fn no_migrate_zero_page_7_3() {
    check(K73, "7.3/no-migrate-zero-page", ZERO_PAGE);
}

#[test]
fn skip_holes_7_3() {
    check(
        K73,
        "7.3/skip-holes",
        &[
            "empty-anon",
            "empty-multi-pmd",
            "empty-one-page",
            "fail-alloc-thp",
            "hmm-tests",
            "hmm-tests-thp-always",
            "hole-pmd-before-pages",
            "huge-zero-page",
            "page-flags-round-trip-thp",
            "read-only-return-exclusive",
            "read-only-return-exclusive-thp",
            "read-only-thp-hole",
            "thp-empty-device",
            "thp-empty-device-thp-never",
            "thp-empty-unaligned",
            "thp-hole-counted",
        ],
    );
}

/// 7.3 fills an empty 2 MiB-aligned range with a device THP, whose
/// userfaultfd check this patch keeps: only the base-page scenario fails.
#[test]
fn ignore_userfaultfd_7_3() {
    check(K73, "7.3/ignore-userfaultfd", &["userfaultfd-holes"]);
}

#[test]
fn ignore_userfaultfd_thp_7_3() {
    check(
        K73,
        "7.3/ignore-userfaultfd-thp",
        &["userfaultfd-holes-thp"],
    );
}

#[test]
fn thp_hole_not_compound_7_3() {
    check(
        K73,
        "7.3/thp-hole-not-compound",
        &[
            "fail-alloc-thp",
            "hmm-tests",
            "hmm-tests-thp-always",
            "huge-zero-page",
            "page-flags-round-trip-thp",
            "read-only-return-exclusive-thp",
            "read-only-thp-hole",
            "thp-empty-device",
            "thp-empty-device-thp-never",
            "thp-hole-counted",
        ],
    );
}

#[test]
fn huge_pmd_read_only_7_3() {
    check(
        K73,
        "7.3/huge-pmd-read-only",
        &[
            "fail-alloc-thp",
            "huge-zero-page",
            "page-flags-round-trip-thp",
            "thp-empty-device",
            "thp-empty-device-thp-never",
            "thp-hole-counted",
        ],
    );
}

#[test]
fn huge_zero_pmd_not_replaced_7_3() {
    check(
        K73,
        "7.3/huge-zero-pmd-not-replaced",
        &["hmm-tests", "hmm-tests-thp-always", "huge-zero-page"],
    );
}

#[test]
fn no_split_fallback_7_3() {
    check(
        K73,
        "7.3/no-split-fallback",
        &[
            "fail-alloc-thp",
            "hmm-tests",
            "hmm-tests-thp-always",
            "thp-split-then-whole-to-system",
        ],
    );
}

#[test]
fn huge_pmd_ignores_select_system_7_3() {
    check(
        K73,
        "7.3/huge-pmd-ignores-select-system",
        &["system-pages-to-system"],
    );
}

#[test]
fn device_pmd_ignores_select_private_7_3() {
    check(
        K73,
        "7.3/device-pmd-ignores-select-private",
        &[
            "hmm-tests-thp-always",
            "skipped-then-collected-one-batch",
            "thp-device-migrate-again",
            "thp-device-second-batch",
        ],
    );
}

/// Survivors of `cargo xtask mutate` until the *-second-batch scenarios: an
/// entry the collection skips, or a hole test_hmm leaves alone, keeps the
/// dst of test_hmm's previous batch. Nothing before those scenarios
/// notices; they crash the kernel.
#[test]
fn skip_stale_dst_7_3() {
    check_crash(
        K73,
        "7.3/skip-stale-dst",
        "file-private-holes-second-batch",
        "Bad rss-counter state",
    );
}

/// A hole's stale dst maps a page of test_hmm's previous batch a second
/// time; which scenario meets the damage depends on what the previous
/// batch left. hmm-tests, run after the scenarios that migrate in several
/// batches, failed in one run of several (alone it passed 6 runs of 6).
#[test]
fn hole_stale_dst_7_3() {
    check_crash_allowing(
        K73,
        "7.3/hole-stale-dst",
        "holes-to-system-second-batch",
        "Bad page map",
        &["hmm-tests", "hmm-tests-thp-always"],
    );
}

/// Seven survivors of `cargo xtask mutate` until the scenarios written
/// from them, in one kernel (one build instead of seven): the walk resumes
/// at the wrong pte after a split (thp-discard-head fails), a device PMD
/// of another owner is collected (thp-device-other-owner fails), a page
/// shared after fork is collected as AnonExclusive (fork-shared-anon and
/// fork-device-pages fail: the child sees the parent's write), a page with
/// an extra reference passes migrate_vma_check_page()
/// (fail-alloc-after-extra-ref fails: the failed allocation is spent on
/// it), the notifier around hole insertion is a plain clear
/// (mirror-kept-for-refused-page fails: test_hmm's mirror loses the page
/// that stayed), folio flags are not carried over (page-flags-round-trip
/// and page-flags-round-trip-thp fail: not uptodate after a round trip),
/// and a fault-path split leaves the old head locked
/// (thp-fault-tail-then-head, which runs after all of them, hangs: the
/// next fault on the head waits for good). Everything else before the
/// hang passes.
#[test]
fn survivors_killed_by_their_scenarios_7_3() {
    let patches = [
        "7.3/pte-walk-resume",
        "7.3/device-pmd-ignores-owner",
        "7.3/shared-page-taken-as-exclusive",
        "7.3/extra-ref-let-through",
        "7.3/hole-notifier-clear",
        "7.3/migrate-flags-dropped",
        "7.3/fault-split-head-locked",
    ];
    let run = patched_runs(K73, &patches);
    let j = run.json();
    let scenarios = j["scenarios"].as_array().unwrap();
    let base = |s: &serde_json::Value| {
        s["name"]
            .as_str()
            .unwrap()
            .split('@')
            .next()
            .unwrap()
            .to_string()
    };
    let at = scenarios
        .iter()
        .position(|s| s["outcome"] == "timeout")
        .unwrap_or_else(|| panic!("no scenario hung\n{}", run.stdout));
    assert_eq!(
        base(&scenarios[at]),
        "thp-fault-tail-then-head",
        "{}",
        run.stdout
    );
    let fails = [
        "thp-device-other-owner",
        "thp-discard-head",
        "fork-shared-anon",
        "fork-device-pages",
        "fail-alloc-after-extra-ref",
        "mirror-kept-for-refused-page",
        "page-flags-round-trip",
        "page-flags-round-trip-thp",
    ];
    for s in &scenarios[..at] {
        let want: &[&str] = if fails.contains(&base(s).as_str()) {
            &["fail"]
        } else {
            &["pass", "skip"]
        };
        assert!(
            want.iter().any(|w| s["outcome"] == *w),
            "{} ran before the hang and was {}: {}",
            s["name"],
            s["outcome"],
            s["message"]
        );
    }
    for f in fails {
        assert!(
            scenarios[..at].iter().any(|s| base(s) == f),
            "{f} runs before the hang"
        );
    }
    assert!(no_qemu_left(&run));
}
