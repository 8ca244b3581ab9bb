//! Today's kernels: Debian's 7.x source packages come from other suites of
//! the host's own mirror, through hmmlab's private apt state, and the whole
//! default suite passes on them (real build, real QEMU).

mod common;

use std::path::Path;
use std::time::SystemTime;

use common::*;

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Newest modification time of anything under /etc/apt.
fn etc_apt_newest() -> Option<SystemTime> {
    let mut newest = mtime(Path::new("/etc/apt"));
    let mut stack = vec![std::path::PathBuf::from("/etc/apt")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            newest = newest.max(mtime(&p));
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    newest
}

/// The default kernel is 7.3 (xtask/tests/vm.rs runs the suite on it); the
/// same suite passes on the 6.12 LTS, whose differing expectations are
/// declared in the scenario files.
#[test]
fn the_whole_default_suite_passes_on_the_6_12_lts() {
    let run = xtask(&["run-scenarios", "--kernel", "debian:6.12"]);
    assert_eq!(run.code, 0, "{}", run.explain());
    let j = run.json();
    assert!(
        j["kernel"]["release"]
            .as_str()
            .is_some_and(|r| r.starts_with("6.12")),
        "{}",
        j["kernel"]
    );
    let scenarios = j["scenarios"].as_array().expect("scenarios");
    assert!(scenarios.len() >= 27, "{}", run.explain());
    for s in scenarios {
        assert!(s["outcome"] == "pass" || s["outcome"] == "skip", "{s}");
    }
    // Every case of hmm-tests runs in both THP modes, none skipped; under
    // always the six exclusive* cases are known failures before 6.15.
    for name in ["hmm-tests@madvise", "hmm-tests-thp-always@always"] {
        let hmm = run.scenario(name);
        let cases = hmm["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), 58, "{hmm}");
        assert!(cases.iter().all(|c| c["outcome"] == "pass"), "{hmm}");
    }
    let always = run.scenario("hmm-tests-thp-always@always");
    assert_eq!(
        always["known_failures"].as_array().map(Vec::len),
        Some(6),
        "{always}"
    );
    assert!(no_qemu_left(&run));
}

#[test]
fn sources_lists_the_suites_versions_without_root_and_a_missing_version_lists_what_is_there() {
    // A private cache owned by an unprivileged user: apt runs as that user.
    let cache = tempfile::tempdir().unwrap();
    let user = "nobody";
    let chown = std::process::Command::new("chown")
        .args([user, cache.path().to_str().unwrap()])
        .status();
    let as_user = chown.is_ok_and(|s| s.success())
        && std::process::Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok();
    let run = |args: &[&str]| {
        let bin = env!("CARGO_BIN_EXE_xtask");
        let mut c = if as_user {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", bin]);
            c
        } else {
            eprintln!("SKIPPING the unprivileged part: cannot chown to {user} or no setpriv");
            std::process::Command::new(bin)
        };
        c.args(args)
            .env("HMMLAB_CACHE", cache.path())
            .env("HOME", cache.path())
            .current_dir(repo())
            .output()
            .unwrap()
    };
    let apt_before = etc_apt_newest();
    let dpkg_before = std::fs::read("/var/lib/dpkg/status").ok();
    let out = run(&["sources", "--update", "7.3", "7.2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.lines().any(|l| l.starts_with("debian:7.3 ")) && stdout.contains("debian:7.2 "),
        "{stdout}"
    );
    // The suite is looked up, not assumed; a backport names its codename.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("debian:7.3") && l.contains("/main")),
        "{stdout}"
    );
    let out = run(&["kernel", "--kernel", "debian:7.3=0.0-none"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no Debian suite carries linux-source-7.3 0.0-none")
            && stderr.contains("there are: 7.3"),
        "{stderr}"
    );
    // Nothing of the host's package setup changed: no file under /etc/apt,
    // nothing installed or removed; the private state is in the cache.
    assert_eq!(etc_apt_newest(), apt_before, "/etc/apt changed");
    assert!(
        dpkg_before == std::fs::read("/var/lib/dpkg/status").ok(),
        "the host's dpkg status changed"
    );
    assert!(cache.path().join("debian/sources.list").is_file());
}
