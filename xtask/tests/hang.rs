//! Hangs, provoked for real: a scenario process that never returns (the
//! guest's own timeout fires), and a guest driver that stops answering (the
//! host's timeout fires, registers are saved, QEMU is stopped).

mod common;

use common::*;

const HANG: &str = "description = \"the scenario process blocks forever\"\ntimeout_ms = 2000\n[mapping]\nkind = \"anon-private\"\npages = 4\n[[step]]\nop = \"hang\"\n";
const HANG_GUEST: &str = "description = \"the guest driver stops answering\"\n[mapping]\nkind = \"anon-private\"\npages = 4\n[[step]]\nop = \"hang-guest\"\n";
const AFTER: &str = "description = \"runs after a hang\"\n[mapping]\nkind = \"anon-private\"\npages = 4\n[[step]]\nop = \"migrate-to-device\"\nexpect_cpages = 4\n";

#[test]
fn a_hung_scenario_times_out_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let a = scenario_file(dir.path(), "a-hang", HANG);
    let b = scenario_file(dir.path(), "b-after", AFTER);
    let run = xtask(&[
        "run-scenarios",
        "--thp",
        "madvise",
        "--scenario-file",
        a.to_str().unwrap(),
        "--scenario-file",
        b.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.explain());
    let s = run.scenario("a-hang@madvise");
    assert_eq!(s["outcome"], "timeout", "{s}");
    assert!(s["message"].as_str().unwrap().contains("2000 ms"), "{s}");
    assert_eq!(
        run.scenario("b-after@madvise")["outcome"],
        "pass",
        "the guest went on with the next scenario"
    );
    assert!(no_qemu_left(&run));
}

#[test]
fn a_hung_guest_is_stopped_by_the_host_and_the_next_run_starts_normally() {
    let dir = tempfile::tempdir().unwrap();
    let a = scenario_file(dir.path(), "a-hang-guest", HANG_GUEST);
    let b = scenario_file(dir.path(), "b-after", AFTER);
    let run = xtask(&[
        "run-scenarios",
        "--thp",
        "madvise",
        "--scenario-timeout",
        "3",
        "--scenario-file",
        a.to_str().unwrap(),
        "--scenario-file",
        b.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.explain());
    let s = run.scenario("a-hang-guest@madvise");
    assert_eq!(s["outcome"], "timeout", "{s}");
    assert!(s["message"].as_str().unwrap().contains("host-side"), "{s}");
    let b = run.scenario("b-after@madvise");
    assert_eq!(b["outcome"], "error", "{b}");
    assert!(b["message"].as_str().unwrap().starts_with("not run"), "{b}");
    let j = run.json();
    assert!(
        j["error"].as_str().unwrap().contains("timed out"),
        "{}",
        j["error"]
    );
    assert!(
        !j["console_tail"].as_array().unwrap().is_empty(),
        "console tail kept: {j}"
    );
    let regs =
        std::fs::read_to_string(run.run_dir.as_ref().unwrap().join("registers.txt")).unwrap();
    assert!(regs.contains("RIP="), "registers saved: {regs}");
    assert!(no_qemu_left(&run));

    // The next run is not disturbed.
    let again = xtask(&[
        "run-scenarios",
        "--thp",
        "madvise",
        "--scenario-file",
        scenario_file(dir.path(), "c-next", AFTER).to_str().unwrap(),
    ]);
    assert_eq!(again.code, 0, "{}", again.explain());
}
