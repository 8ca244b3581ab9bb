//! End-to-end: the default kernel (Debian 7.3, built once and cached),
//! booted in real QEMU, running real scenario files.

mod common;

use common::*;

#[test]
fn shipped_scenarios_pass_on_the_default_kernel() {
    let run = xtask(&["run-scenarios"]);
    assert_eq!(run.code, 0, "{}", run.explain());
    let j = run.json();
    assert_eq!(j["status"], "finished");
    assert!(
        j["kernel"]["release"].as_str().unwrap().starts_with("7.3"),
        "{}",
        j["kernel"]
    );
    assert!(["tcg", "kvm"].contains(&j["accel"].as_str().unwrap()));
    assert!(j["qemu_command"].as_str().unwrap().contains("-nodefaults"));
    assert!(j["qemu_version"].as_str().unwrap().contains("QEMU"));
    assert!(j["timing"]["first_scenario_ms"].as_f64().unwrap() > 0.0);
    assert_ktap_reads_back(run.run_dir.as_ref().unwrap());

    let cpages = |name: &str, op: &str| -> Vec<u64> {
        run.scenario(name)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["op"] == op)
            .map(|s| s["cpages"].as_u64().unwrap())
            .collect()
    };
    for (name, pages) in [
        ("empty-anon@madvise", 256),
        ("empty-anon@always", 256),
        ("zero-page@never", 128),
        ("thp-split@madvise", 512),
    ] {
        let s = run.scenario(name);
        assert_eq!(s["outcome"], "pass", "{name}: {s}");
        assert_eq!(cpages(name, "migrate-to-device"), vec![pages], "{name}");
        for step in s["steps"].as_array().unwrap() {
            assert_eq!(step["outcome"], "pass", "{name}: {step}");
            assert!(step["duration_ns"].as_u64().unwrap() > 0, "{name}: {step}");
        }
        let rate = s["steps"][1]["pages_per_sec"].as_f64();
        assert!(
            rate.is_some_and(|r| r > 0.0),
            "{name} reports migrate throughput: {s}"
        );
    }
    assert_eq!(run.scenario("zero-page@never")["thp"], "never");
    assert_eq!(run.scenario("thp-split@madvise")["thp"], "madvise");
    assert_eq!(run.scenario("empty-anon@always")["thp"], "always");
    let dir = run.run_dir.as_ref().unwrap();
    for f in [
        "console.log",
        "results.jsonl",
        "junit.xml",
        "report.html",
        "qemu-command.sh",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing from {}", dir.display());
    }
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("failures=\"0\"") && junit.contains("errors=\"0\""),
        "{junit}"
    );
    // Every scenario passes on the stock kernel, in every THP mode it runs
    // in, but those whose `[requires]` leave 7.3 out: skips of the plan,
    // with the requirement (device-memory-full: 6.x's test_hmm, whose
    // device-coherent memory is one chunk of single pages).
    for s in j["scenarios"].as_array().unwrap() {
        if s["not_applicable"] == true {
            assert_eq!(s["outcome"], "skip", "{s}");
            assert_eq!(s["name"], "device-memory-full@never@coherent", "{s}");
            assert_eq!(s["message"], "requires kernel <7.2 (this is 7.3.4)", "{s}");
            continue;
        }
        assert_eq!(s["outcome"], "pass", "{s}");
    }
    let hmm = run.scenario("hmm-tests@madvise");
    // 7.3's hmm-tests: 39 tests, 78 cases with the fixture variants, less
    // benchmark_thp_migration's two (scenarios/hmm-tests.toml excludes it).
    assert_eq!(
        hmm["cases"].as_array().unwrap().len(),
        76,
        "every hmm-tests case is reported"
    );
    // Under THP always the device-coherent variants are excluded on 7.2+
    // (scenarios/hmm-tests.toml says why), and the result says so.
    let always = run.scenario("hmm-tests-thp-always@always");
    assert_eq!(always["cases"].as_array().unwrap().len(), 38, "{always}");
    let listed = always["known_failures"].to_string();
    assert!(
        listed.contains("variant hmm_device_coherent not run (-V hmm_device_coherent)")
            && listed.contains("variant hmm2_device_coherent not run"),
        "{always}"
    );
    assert!(no_qemu_left(&run));
}

#[test]
fn a_wrong_expectation_is_reported_as_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("scenarios/empty-anon.toml"))
        .unwrap()
        .replacen("expect_cpages = 256", "expect_cpages = 255", 1);
    let f = scenario_file(dir.path(), "broken-empty", &text);
    let run = xtask(&["run-scenarios", "--scenario-file", f.to_str().unwrap()]);
    assert_eq!(run.code, 1, "test failures exit with 1\n{}", run.explain());
    let s = run.scenario("broken-empty@madvise");
    assert_eq!(s["outcome"], "fail", "{s}");
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.contains("migrate-to-device") && msg.contains("255") && msg.contains("256"),
        "{msg}"
    );
    assert!(
        s["reproduce"].as_str().unwrap().contains("--scenario-file"),
        "{s}"
    );
    assert!(
        run.stdout.contains("reproduce: cargo xtask run-scenarios"),
        "{}",
        run.stdout
    );
    let junit = std::fs::read_to_string(run.run_dir.as_ref().unwrap().join("junit.xml")).unwrap();
    assert!(
        junit.contains("failures=\"2\""),
        "one failure per THP mode: {junit}"
    );
    assert_ktap_reads_back(run.run_dir.as_ref().unwrap());

    // The reproduce line, run as printed: the same kernel (pinned to the
    // installed package version, so the same cache key), just that
    // scenario in just that THP mode, failing the same way.
    let line = s["reproduce"].as_str().unwrap().to_string();
    let installed = run.json()["kernel"]["identity"]
        .as_str()
        .unwrap()
        .rsplit_once('=')
        .unwrap()
        .1
        .to_string();
    assert!(
        line.contains(&format!("--kernel 'debian:7.3={installed}'"))
            || line.contains(&format!("--kernel debian:7.3={installed}")),
        "{line}"
    );
    let shim = cargo_shim();
    let again = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{line} --results-dir {}", again.path().display()))
        .current_dir(repo())
        .env(
            "PATH",
            format!(
                "{}:{}",
                shim.path().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = run_json(&first_run_dir(again.path()).unwrap());
    assert_eq!(
        j["kernel"]["key"],
        run.json()["kernel"]["key"],
        "the same kernel"
    );
    let names: Vec<&str> = j["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["broken-empty@madvise"]);
    assert_eq!(j["scenarios"][0]["outcome"], "fail");
    assert_eq!(j["scenarios"][0]["message"], s["message"]);
}

#[test]
fn the_kernels_own_hmm_tests_runs_in_the_vm() {
    let dir = tempfile::tempdir().unwrap();
    let f = scenario_file(
        dir.path(),
        "kselftest-open-close",
        "description = \"hmm-tests open_close case, built from the same tree\"\nkind = \"kselftest\"\n\n[kselftest]\nbinary = \"hmm-tests\"\nargs = [\"-r\", \"hmm.hmm_device_private.open_close\"]\n",
    );
    let run = xtask(&["run-scenarios", "--scenario-file", f.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.explain());
    let s = run.scenario("kselftest-open-close@madvise");
    assert_eq!(s["outcome"], "pass", "{s}");
    let out: Vec<&str> = s["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        out.iter()
            .any(|l| l.starts_with("ok 1 hmm.hmm_device_private.open_close")),
        "{out:?}"
    );
    assert!(out.iter().any(|l| l.contains("1..1")), "{out:?}");
}

#[test]
fn a_bad_scenario_file_is_rejected_before_any_vm_starts() {
    let dir = tempfile::tempdir().unwrap();
    let f = scenario_file(
        dir.path(),
        "bad",
        "description = \"x\"\n[mapping]\nkind = \"anon-private\"\npages = 16\ncolour = \"blue\"\n[[step]]\nop = \"migrate-to-device\"\npages = [0, 17]\n",
    );
    let run = xtask(&["run-scenarios", "--scenario-file", f.to_str().unwrap()]);
    assert_eq!(run.code, 2, "bad input exits with 2\n{}", run.explain());
    assert!(
        run.stderr.contains("bad.toml:5:1") && run.stderr.contains("colour"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("no VM was started"), "{}", run.stderr);
    assert!(run.run_dir.is_none(), "no run directory for rejected input");
}

#[test]
fn repeat_runs_count_how_often_each_scenario_passed() {
    let run = xtask(&[
        "run-scenarios",
        "--repeat",
        "3",
        "-s",
        "empty-one-page",
        "--thp",
        "madvise",
    ]);
    assert_eq!(run.code, 0, "{}", run.explain());
    assert!(
        run.stdout.contains("empty-one-page@madvise") && run.stdout.contains("3/3  pass"),
        "{}",
        run.stdout
    );
    let runs = std::fs::read_dir(run.results.path()).unwrap().count();
    assert_eq!(runs, 3, "three boots, three run directories");
}

/// A selftest case the kernel skips (no DEVICE_COHERENT memory on the
/// machine without it) is counted with its reason; with --fail-on-skip it
/// fails the run.
#[test]
fn skipped_cases_are_counted_and_fail_with_fail_on_skip() {
    let dir = tempfile::tempdir().unwrap();
    let f = scenario_file(
        dir.path(),
        "kselftest-skip",
        "description = \"one case that runs, one the kernel skips\"\nkind = \"kselftest\"\nthp = \"madvise\"\n\n[kselftest]\nbinary = \"hmm-tests\"\nargs = [\"-r\", \"hmm.hmm_device_private.open_close\", \"-r\", \"hmm.hmm_device_coherent.open_close\"]\n",
    );
    let file = f.to_str().unwrap();
    let machine = ["--machine", "x86_64-private"];
    let run = xtask(&[&["run-scenarios", "--scenario-file", file][..], &machine].concat());
    assert_eq!(run.code, 0, "a skip alone passes\n{}", run.explain());
    assert!(
        run.stdout
            .contains("skipped selftest cases: 1 (1 DEVICE_COHERENT not available)"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.json()["skips"]["cases"]["DEVICE_COHERENT not available"],
        1,
        "{}",
        run.json()
    );

    let strict = xtask(
        &[
            &["run-scenarios", "--scenario-file", file, "--fail-on-skip"][..],
            &machine,
        ]
        .concat(),
    );
    assert_eq!(strict.code, 1, "{}", strict.explain());
    let s = strict.scenario("kselftest-skip@madvise");
    assert_eq!(s["outcome"], "fail", "{s}");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("1 of 2 cases skipped (--fail-on-skip): 1 (1 DEVICE_COHERENT"),
        "{s}"
    );
    assert!(
        s["reproduce"].as_str().unwrap().contains("--fail-on-skip"),
        "{s}"
    );
    let junit =
        std::fs::read_to_string(strict.run_dir.as_ref().unwrap().join("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"1\""), "{junit}");
}
