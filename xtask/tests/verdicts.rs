//! Verdicts that must fire on a real kernel: a complaint the console shows
//! outside every scenario fails the run, as a case of its own; a scenario
//! that does not give back what it took (a page, a device page) fails.

mod common;

use common::*;

/// `run-scenarios` on the default kernel with a fixture patch, the given
/// scenarios, THP madvise.
fn run_patched(fixture: &str, scenarios: &[&str]) -> Run {
    run_patched_with(fixture, scenarios, &[])
}

fn run_patched_with(fixture: &str, scenarios: &[&str], more: &[&str]) -> Run {
    let patch = repo().join("xtask/tests/fixtures").join(fixture);
    let mut args = vec!["run-scenarios", "--patch", patch.to_str().unwrap()];
    args.extend(more);
    for s in scenarios {
        args.extend(["-s", s]);
    }
    args.extend(["--thp", "madvise"]);
    xtask(&args)
}

/// A patch that WARNs in test_hmm's init (at boot, before any scenario)
/// and in kernel_power_off() (after the last one): both fail the run, as
/// `boot` and `shutdown`, with the console excerpt; the scenario between
/// them still passes.
#[test]
fn warnings_outside_every_scenario_fail_the_run_as_boot_and_shutdown() {
    let run = run_patched("warn-at-boot-and-power-off-7.3.patch", &["empty-one-page"]);
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

/// A patch that drops the reference of a system page whose migration to
/// the device was aborted (mm/migrate_device.c, migrate_device_finalize()):
/// fail-alloc-pages reaches that path with exactly one page (its
/// HMM_DMIRROR_FLAG_FAIL_ALLOC step), which stays on the anonymous LRU
/// after the scenario's process is gone. The scenario fails, naming the
/// counter, its baseline and its value; the scenario after it, which never
/// aborts a migration, passes.
#[test]
fn a_leaked_page_fails_the_scenario_that_leaked_it_with_the_counter() {
    let run = run_patched(
        "leak-aborted-system-page-7.3.patch",
        &["fail-alloc-pages", "empty-one-page"],
    );
    assert_eq!(run.code, 1, "a leak fails the run\n{}", run.explain());
    let leaked = run.scenario("fail-alloc-pages@madvise");
    assert_eq!(leaked["outcome"], "fail", "{leaked}");
    let message = leaked["message"].as_str().unwrap();
    assert!(
        message.starts_with("leak: after the scenario")
            && message.contains("anon LRU (nr_inactive_anon + nr_active_anon) is ")
            && message.contains("(+1, tolerance 0)"),
        "{message}"
    );
    assert_eq!(run.scenario("empty-one-page@madvise")["outcome"], "pass");
    assert!(no_qemu_left(&run));
}

/// A patch that keeps a reference to the first device page test_hmm hands
/// out: its chunk can never be freed, so HMM_DMIRROR_RELEASE after the
/// scenario waits for good. That scenario fails at the release, within its
/// timeout, and the scenarios after it are errors that say why they did
/// not run, instead of each waiting for the device.
#[test]
fn a_device_page_still_referenced_fails_at_release_and_stops_the_device() {
    let run = run_patched(
        "hold-device-page-7.3.patch",
        &["empty-one-page", "zero-page"],
    );
    assert_eq!(run.code, 1, "{}", run.explain());
    let held = run.scenario("empty-one-page@madvise");
    assert_eq!(held["outcome"], "fail", "{held}");
    let message = held["message"].as_str().unwrap();
    assert!(
        message.contains(
            "leak: HMM_DMIRROR_RELEASE on /dev/hmm_dmirror0 did not return within 10000 ms"
        ),
        "{message}"
    );
    let after = run.scenario("zero-page@never");
    assert_eq!(after["outcome"], "error", "{after}");
    assert!(
        after["message"]
            .as_str()
            .unwrap()
            .starts_with("not run: test_hmm's device memory is still held"),
        "{after}"
    );
    assert!(no_qemu_left(&run));
}

/// The debug variant scans with kmemleak after the last scenario. A patch
/// that never frees test_hmm's mirror when its file is closed
/// (dmirror_fops_release()) leaks one object per open: the run fails with a
/// `kmemleak` result of its own, with kmemleak's report; the scenario
/// itself passes (nothing it can see went wrong).
#[test]
fn kmemleak_in_the_debug_variant_reports_memory_nothing_refers_to() {
    let debug = repo().join("images/configs/variants/debug.config");
    let run = run_patched_with(
        "leak-kmalloc-on-open-7.3.patch",
        &["empty-one-page"],
        &["--config-fragment", debug.to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.explain());
    assert_eq!(run.scenario("empty-one-page@madvise")["outcome"], "pass");
    let leak = run.scenario("kmemleak");
    assert_eq!(leak["outcome"], "fail", "{leak}");
    let message = leak["message"].as_str().unwrap();
    assert!(
        message.contains("unreferenced objects in kernel memory, by kmemleak's scan")
            && message.contains("unreferenced object 0x")
            && message.contains("dmirror_fops_open"),
        "{message}"
    );
    assert!(run.stdout.contains("FAIL kmemleak:"), "{}", run.stdout);
    assert!(no_qemu_left(&run));
}
