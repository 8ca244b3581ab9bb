//! A broken kernel gives a clear verdict, not a hang: real crashes in real QEMU.

mod common;

use common::*;

/// scenarios/findings/test-hmm-neighbour-unmap oopses 6.12's test_hmm.
#[test]
fn a_kernel_oops_marks_the_scenario_crashed_and_ends_the_run() {
    let run = xtask(&[
        "run-scenarios",
        "--kernel",
        "debian:6.12",
        "--scenario-dir",
        "scenarios/findings",
        "-s",
        "test-hmm-neighbour-unmap",
    ]);
    assert_eq!(run.code, 1, "{}", run.explain());
    let s = run.scenario("test-hmm-neighbour-unmap@madvise");
    assert_eq!(s["outcome"], "crashed", "{s}");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("unable to handle page fault"),
        "{s}"
    );
    // Attributed through the guest's kmsg markers, with the excerpt.
    let findings = s["console_findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["kind"] == "oops"), "{s}");
    assert!(
        findings
            .iter()
            .all(|f| f["scenario"] == "test-hmm-neighbour-unmap@madvise"),
        "{s}"
    );
    let j = run.json();
    let err = j["error"].as_str().unwrap();
    assert!(
        err.contains("kernel crash") && !err.contains("timed out"),
        "ended by the crash, not a timeout: {err}"
    );
    assert!(
        run.run_dir
            .as_ref()
            .unwrap()
            .join("registers.txt")
            .is_file(),
        "registers saved"
    );
    assert!(no_qemu_left(&run));
}

#[test]
fn a_boot_panic_is_seen_through_pvpanic_and_nothing_runs() {
    let run = xtask(&[
        "run-scenarios",
        "-s",
        "empty-anon",
        "--append",
        "rdinit=/nonexistent",
    ]);
    assert_eq!(run.code, 1, "{}", run.explain());
    let s = run.scenario("empty-anon@madvise");
    assert_eq!(s["outcome"], "error", "{s}");
    assert!(s["message"].as_str().unwrap().contains("panicked"), "{s}");
    let j = run.json();
    let boot = j["console_findings"].as_array().unwrap();
    assert!(boot.iter().any(|f| f["kind"] == "panic"), "{j}");
    assert!(no_qemu_left(&run));
}

/// scenarios/findings/test-hmm-readonly-device-write makes 6.12's test_hmm
/// WARN; with --panic-on-warn that WARN panics the guest, and pvpanic's
/// GUEST_PANICKED ends the run at once.
#[test]
fn panic_on_warn_turns_a_warning_into_a_panic_that_ends_the_run() {
    let run = xtask(&[
        "run-scenarios",
        "--kernel",
        "debian:6.12",
        "--scenario-dir",
        "scenarios/findings",
        "-s",
        "test-hmm-readonly-device-write",
        "--thp",
        "madvise",
        "--panic-on-warn",
    ]);
    assert_eq!(run.code, 1, "{}", run.explain());
    let j = run.json();
    assert!(
        j["qemu_command"]
            .as_str()
            .unwrap()
            .contains("panic_on_warn=1"),
        "{}",
        j["qemu_command"]
    );
    let s = run.scenario("test-hmm-readonly-device-write@madvise");
    assert_eq!(s["outcome"], "crashed", "{s}");
    assert!(s["message"].as_str().unwrap().contains("panicked"), "{s}");
    assert!(
        s["reproduce"].as_str().unwrap().contains("--panic-on-warn"),
        "{s}"
    );
    assert!(
        j["timing"]["crash_to_end_ms"].as_f64().is_some(),
        "{}",
        j["timing"]
    );
    let err = j["error"].as_str().unwrap();
    assert!(
        err.contains("panicked") && !err.contains("timed out"),
        "{err}"
    );
    assert!(!j["console_tail"].as_array().unwrap().is_empty(), "{j}");
    let kinds: Vec<&str> = s["console_findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["warning", "panic"], "{s}");
    assert!(no_qemu_left(&run));
}
