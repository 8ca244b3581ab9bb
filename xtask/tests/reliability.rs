//! Reliability, provoked for real: signals during runs and builds, a killed
//! harness, QEMU that will not start, missing prerequisites. Every test then
//! looks for leftover processes and unreadable results.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const LONG: &str = "description = \"a long race, to be interrupted\"\ntimeout_ms = 600000\n[mapping]\nkind = \"anon-private\"\npages = 64\n[[populate]]\npages = [0, 64]\nhow = \"write\"\n[[step]]\nop = \"migrate-race\"\niterations = 100000\nmin_complete = 1\n";

struct Spawned {
    child: Child,
    results: tempfile::TempDir,
    _scenarios: tempfile::TempDir,
}

/// Start `xtask run-scenarios` on the long scenario, without waiting.
fn spawn_long_run(extra: &[&str]) -> Spawned {
    let scenarios = tempfile::tempdir().unwrap();
    let f = scenario_file(scenarios.path(), "long", LONG);
    let results = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["run-scenarios", "--thp", "madvise", "--scenario-file"])
        .arg(&f)
        .arg("--results-dir")
        .arg(results.path())
        .args(extra)
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Spawned {
        child,
        results,
        _scenarios: scenarios,
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a child we started.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Wait until a file under `dir` contains `needle` (the guest reporting progress).
fn wait_for(dir: &Path, file: &str, needle: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(d) = std::fs::read_dir(dir)
            .ok()
            .and_then(|mut r| r.next())
            .and_then(|e| e.ok())
        {
            if std::fs::read_to_string(d.path().join(file)).is_ok_and(|t| t.contains(needle)) {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().or(Some(-1));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

fn leftovers(results: &Path) -> Vec<String> {
    processes_mentioning(&results.to_string_lossy())
}

#[test]
fn sigterm_during_a_run_stops_qemu_and_keeps_the_results() {
    let mut s = spawn_long_run(&[]);
    assert!(
        wait_for(
            s.results.path(),
            "results.jsonl",
            "scenario-start",
            Duration::from_secs(60)
        ),
        "the scenario never started"
    );
    signal(s.child.id(), libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut s.child, Duration::from_secs(20)),
        Some(130),
        "interrupted runs exit with 130"
    );
    assert!(
        leftovers(s.results.path()).is_empty(),
        "{:?}",
        leftovers(s.results.path())
    );
    let dir = first_run_dir(s.results.path()).unwrap();
    let j = run_json(&dir);
    assert_eq!(j["status"], "interrupted");
    assert_eq!(j["scenarios"][0]["outcome"], "error", "{j}");
    assert!(
        j["scenarios"][0]["message"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{j}"
    );
}

/// The harness is killed outright: the kernel's parent-death signal takes
/// QEMU down with it, and run.json (written atomically) is still readable.
#[test]
fn sigkill_of_the_harness_takes_qemu_with_it() {
    let mut s = spawn_long_run(&[]);
    assert!(wait_for(
        s.results.path(),
        "results.jsonl",
        "scenario-start",
        Duration::from_secs(60)
    ));
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let start = Instant::now();
    while !leftovers(s.results.path()).is_empty() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        leftovers(s.results.path()).is_empty(),
        "{:?}",
        leftovers(s.results.path())
    );
    let dir = first_run_dir(s.results.path()).unwrap();
    let j = run_json(&dir);
    assert_eq!(j["status"], "running", "the last complete write survives");
}

/// 20 runs interrupted at different moments (before boot, during boot, in the
/// scenario), alternating SIGINT and SIGTERM: nothing left running, every
/// results file readable, every run directory distinct.
#[test]
fn twenty_interrupted_runs_leave_nothing_behind() {
    let mut dirs = std::collections::BTreeSet::new();
    for i in 0..20u64 {
        let mut s = spawn_long_run(&[]);
        std::thread::sleep(Duration::from_millis(300 + (i * 397) % 3000));
        let sig = if i % 2 == 0 {
            libc::SIGINT
        } else {
            libc::SIGTERM
        };
        signal(s.child.id(), sig);
        let code = wait_exit(&mut s.child, Duration::from_secs(30));
        assert!(matches!(code, Some(130)), "run {i}: exit {code:?}");
        assert!(
            leftovers(s.results.path()).is_empty(),
            "run {i}: {:?}",
            leftovers(s.results.path())
        );
        if let Some(dir) = first_run_dir(s.results.path()) {
            for f in ["run.json", "junit.xml"] {
                if let Ok(bytes) = std::fs::read(dir.join(f)) {
                    if f == "run.json" {
                        let j: serde_json::Value = serde_json::from_slice(&bytes)
                            .unwrap_or_else(|e| panic!("run {i}: {f}: {e}"));
                        assert!(
                            ["running", "interrupted", "infra-error"]
                                .contains(&j["status"].as_str().unwrap()),
                            "run {i}: {}",
                            j["status"]
                        );
                    }
                }
            }
            assert!(
                dirs.insert(dir.file_name().unwrap().to_owned()),
                "run {i}: run id reused"
            );
        }
    }
}

#[test]
fn sigint_during_a_kernel_build_stops_make() {
    let dir = tempfile::tempdir().unwrap();
    let frag = dir.path().join("interrupt.config");
    std::fs::write(&frag, "CONFIG_PRINTK_TIME=y\n").unwrap();
    let log = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["kernel", "--config-fragment"])
        .arg(&frag)
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Wait for make to be compiling.
    let start = Instant::now();
    let mut key = None;
    while start.elapsed() < Duration::from_secs(120) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("cached") {
            break;
        }
        if let Some(k) = text.split("(key ").nth(1).and_then(|r| r.split(')').next()) {
            // make itself compiling, not the configuration steps before it.
            if processes_mentioning(&format!("obj/{k}"))
                .iter()
                .any(|p| p.contains("bzImage"))
            {
                key = Some(k.to_string());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let key = key.unwrap_or_else(|| {
        panic!(
            "no build started:\n{}",
            std::fs::read_to_string(&log).unwrap()
        )
    });
    std::thread::sleep(Duration::from_secs(3));
    signal(child.id(), libc::SIGINT);
    let code = wait_exit(&mut child, Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(130), "{text}");
    assert!(text.contains("interrupted"), "{text}");
    let left = processes_mentioning(&format!("obj/{key}"));
    // Drop this build so the test builds (and interrupts) again next time.
    let cache = std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cache/hmmlab"))
        .unwrap();
    let cache = std::env::var("HMMLAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or(cache);
    let _ = std::fs::remove_dir_all(cache.join("build").join(&key));
    if let Ok(srcs) = std::fs::read_dir(cache.join("src")) {
        for s in srcs.flatten() {
            let _ = std::fs::remove_dir_all(s.path().join("obj").join(&key));
        }
    }
    assert!(left.is_empty(), "left running: {left:?}");
}

fn machine_file(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("images/machines/x86_64.toml")).unwrap();
    let p = dir.join("m.toml");
    std::fs::write(&p, edit(text)).unwrap();
    p
}

/// Run one small scenario on the machine file with `from` replaced by `to`.
fn run_with_machine_edit(from: &str, to: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let m = machine_file(dir.path(), |t| {
        assert!(t.contains(from), "the machine file no longer has `{from}`");
        t.replace(from, to)
    });
    xtask(&[
        "run-scenarios",
        "-s",
        "empty-one-page",
        "--thp",
        "madvise",
        "--accel",
        "tcg",
        "--machine",
        m.to_str().unwrap(),
    ])
}

#[test]
fn qemu_that_will_not_start_is_an_infrastructure_error_with_its_stderr() {
    let run = run_with_machine_edit(
        "\"-device\", \"pvpanic\"",
        "\"-device\", \"no-such-device\"",
    );
    assert_eq!(run.code, 3, "{}", run.explain());
    assert!(
        run.stderr.contains("QEMU exited at start") && run.stderr.contains("no-such-device"),
        "{}",
        run.stderr
    );
    assert_eq!(run.json()["status"], "infra-error");
    // Every format says so: CI reading JUnit or KTAP sees an error, not
    // an empty green run.
    let dir = run.run_dir.as_ref().unwrap();
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("errors=\"1\"") && junit.contains("no-such-device"),
        "{junit}"
    );
    let ktap = std::fs::read_to_string(dir.join("results.ktap")).unwrap();
    assert!(
        ktap.contains("not ok 1 hmmlab-run") && ktap.contains("no-such-device"),
        "{ktap}"
    );
    assert!(no_qemu_left(&run));
}

#[test]
fn a_missing_qemu_binary_says_what_to_install() {
    let run = run_with_machine_edit(
        "qemu = \"qemu-system-x86_64\"",
        "qemu = \"qemu-system-hmmlab-missing\"",
    );
    assert_eq!(run.code, 3, "{}", run.explain());
    assert!(
        run.stderr.contains("qemu-system-hmmlab-missing not found")
            && run.stderr.contains("apt-get install qemu-system-x86"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_kernel_image_is_named() {
    // The image that boots: vmlinux through the PVH entry (the default
    // configuration has CONFIG_PVH=y), so that is the one taken away.
    let run = run_with_machine_edit("pvh_image = \"vmlinux\"", "pvh_image = \"no-such-image\"");
    assert_eq!(run.code, 3, "{}", run.explain());
    assert!(
        run.stderr.contains("no-such-image is missing"),
        "{}",
        run.stderr
    );
    assert!(run.run_dir.is_none());
}

#[test]
fn an_unknown_machine_lists_the_known_ones() {
    let run = xtask(&["run-scenarios", "--machine", "riscv"]);
    assert_eq!(run.code, 2, "{}", run.explain());
    assert!(
        run.stderr.contains("unknown machine `riscv`") && run.stderr.contains("x86_64"),
        "{}",
        run.stderr
    );
}

/// The threshold is raised above what any disk has, so the real statvfs
/// check refuses before building.
#[test]
fn too_little_disk_space_stops_before_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let frag = dir.path().join("x.config");
    std::fs::write(&frag, "CONFIG_PRINTK_TIME=y\n# disk space test\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["kernel", "--config-fragment"])
        .arg(&frag)
        .env("HMMLAB_MIN_FREE_GIB", "1000000")
        .current_dir(repo())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("GiB free in") && err.contains("HMMLAB_CACHE"),
        "{err}"
    );
}
