//! Verdicts that must fire on a real kernel: a complaint the console shows
//! outside every scenario fails the run, as a case of its own.

mod common;

use common::*;

/// A patch that WARNs in test_hmm's init (at boot, before any scenario)
/// and in kernel_power_off() (after the last one): both fail the run, as
/// `boot` and `shutdown`, with the console excerpt; the scenario between
/// them still passes.
#[test]
fn warnings_outside_every_scenario_fail_the_run_as_boot_and_shutdown() {
    let patch = repo().join("xtask/tests/fixtures/warn-at-boot-and-power-off-7.3.patch");
    let run = xtask(&[
        "run-scenarios",
        "--patch",
        patch.to_str().unwrap(),
        "-s",
        "empty-one-page",
        "--thp",
        "madvise",
    ]);
    assert_eq!(run.code, 1, "a warning fails the run\n{}", run.explain());
    assert_eq!(run.scenario("empty-one-page@madvise")["outcome"], "pass");
    for (place, words) in [
        // The WARNING line names where the patch put each WARN.
        ("boot", "WARNING: lib/test_hmm.c:"),
        ("shutdown", "WARNING: kernel/reboot.c:"),
    ] {
        let s = run.scenario(place);
        assert_eq!(s["outcome"], "fail", "{s}");
        assert!(s["message"].as_str().unwrap().contains("Warning"), "{s}");
        let excerpts: Vec<&str> = s["console_findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["excerpt"].as_str().unwrap())
            .collect();
        assert!(excerpts.iter().any(|e| e.contains(words)), "{place}: {s}");
    }
    let junit = std::fs::read_to_string(run.run_dir.as_ref().unwrap().join("junit.xml")).unwrap();
    for place in ["boot", "shutdown"] {
        assert!(
            junit.contains(&format!(
                "<testcase name=\"{place}\" classname=\"hmmlab.run\""
            )),
            "{junit}"
        );
    }
    assert!(junit.contains("failures=\"2\""), "{junit}");
    assert!(run.stdout.contains("FAIL boot:"), "{}", run.stdout);
    assert!(no_qemu_left(&run));
}
