//! Trees other than Debian's 6.1 and 6.12: what a mainline or driver tree
//! brings that those do not. Each patched kernel is a real build (the
//! kernel's objects come from ccache: only tools/ differs) and a real boot.

mod common;
use common::*;

/// The kselftest scenario that runs one hmm-tests case, open_close.
fn open_close_scenario(dir: &std::path::Path) -> std::path::PathBuf {
    scenario_file(
        dir,
        "kselftest-open-close",
        "description = \"hmm-tests open_close case, built from the same tree\"\n\
         kind = \"kselftest\"\n\n[kselftest]\nbinary = \"hmm-tests\"\n\
         args = [\"-r\", \"hmm.hmm_device_private.open_close\"]\n",
    )
}

fn output_lines(s: &serde_json::Value) -> Vec<String> {
    s["output"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| l.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The kernel build's hmm-tests.log (beside its build.log).
fn hmm_tests_log(run: &Run) -> String {
    let build_log = run.json()["kernel"]["build_log"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::read_to_string(std::path::Path::new(&build_log).with_file_name("hmm-tests.log"))
        .expect("hmm-tests.log")
}

/// Mainline's hmm-tests.c includes <mm/vm_util.h> and calls its helpers, so
/// it links only with vm_util.c, as the selftests Makefile says. hmmlab
/// builds it the same way and the case runs (and can fail: it asserts the
/// PMD size that vm_util reads from the guest).
#[test]
fn an_hmm_tests_that_needs_the_mm_selftest_helpers_is_built_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let f = open_close_scenario(dir.path());
    let run = xtask(&[
        "run-scenarios",
        "--kernel",
        "debian:6.12",
        "--patch",
        "xtask/tests/fixtures/hmm-tests-uses-vm-util.patch",
        "--scenario-file",
        f.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.explain());
    let s = run.scenario("kselftest-open-close@madvise");
    assert_eq!(s["outcome"], "pass", "{s}");
    let out = output_lines(&s);
    assert!(
        out.iter()
            .any(|l| l.starts_with("ok 1 hmm.hmm_device_private.open_close")),
        "{out:?}"
    );
    // The build tried hmm-tests.c alone first, and it did not link.
    let log = hmm_tests_log(&run);
    assert!(log.contains("read_pmd_pagesize"), "{log}");
    assert!(log.contains("vm_util.c"), "{log}");
}

/// A tree whose hmm-tests does not build at all still boots and runs every
/// other scenario; the kselftest scenario is skipped, saying why and where
/// the log is, and is never counted as a pass.
#[test]
fn a_tree_whose_hmm_tests_does_not_build_skips_only_the_kselftest() {
    let dir = tempfile::tempdir().unwrap();
    let f = open_close_scenario(dir.path());
    let run = xtask(&[
        "run-scenarios",
        "--kernel",
        "debian:6.12",
        "--patch",
        "xtask/tests/fixtures/hmm-tests-does-not-build.patch",
        "--scenario-file",
        f.to_str().unwrap(),
        "-s",
        "empty-anon",
    ]);
    assert_eq!(run.code, 0, "{}", run.explain());
    let s = run.scenario("kselftest-open-close@madvise");
    assert_eq!(s["outcome"], "skip", "{s}");
    let msg = s["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("hmm-tests did not build") && msg.contains("hmm-tests.log"),
        "{msg}"
    );
    assert_eq!(run.scenario("empty-anon@madvise")["outcome"], "pass");
    // Said on every run, the kernel built now or cached; the log keeps the
    // compiler's error.
    assert!(
        run.stderr.contains("hmm-tests did not build")
            && run.stderr.contains("kselftest scenario will be skipped"),
        "{}",
        run.stderr
    );
    let log = hmm_tests_log(&run);
    assert!(log.contains("no_such_helper.h"), "{log}");
    let junit = std::fs::read_to_string(run.run_dir.as_ref().unwrap().join("junit.xml")).unwrap();
    assert!(junit.contains("<skipped"), "{junit}");
}

/// A developer's tree that was configured in place cannot be built out of
/// tree: refused before anything runs, naming the file and what to do.
#[test]
fn a_tree_configured_in_place_is_refused_before_any_build() {
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("Makefile"), "").unwrap();
    std::fs::create_dir(tree.path().join("mm")).unwrap();
    std::fs::write(tree.path().join(".config"), "CONFIG_MMU=y\n").unwrap();
    let spec = format!("path:{}", tree.path().display());
    let run = xtask(&["run-scenarios", "--kernel", &spec]);
    assert_eq!(run.code, 2, "bad input\n{}", run.explain());
    let config = tree.path().join(".config").display().to_string();
    assert!(
        run.stderr.contains(&config)
            && run.stderr.contains("mrproper")
            && run.stderr.contains("worktree add"),
        "{}",
        run.stderr
    );
    assert!(run.run_dir.is_none(), "no run directory for bad input");
}
