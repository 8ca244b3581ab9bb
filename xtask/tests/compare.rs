//! `cargo xtask compare A B` on real runs: repeated good runs of the default
//! kernel against runs of a scenario file with a wrong expectation under the
//! same instance name.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn explain(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("--json output is not JSON ({e})\n{}", self.explain()))
    }
}

fn xtask_raw(args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("running xtask");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `run-scenarios --thp madvise <args> --results-dir <dir>`, `n` times; each
/// must exit with `code`.
fn runs(dir: &Path, n: usize, args: &[&str], code: i32) {
    for _ in 0..n {
        let mut argv = vec!["run-scenarios", "--thp", "madvise"];
        argv.extend(args);
        argv.extend(["--results-dir", s(dir)]);
        let out = xtask_raw(&argv);
        assert_eq!(out.code, code, "{}", out.explain());
    }
}

fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn instance<'a>(j: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    j["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instance"] == name)
        .unwrap_or_else(|| panic!("{name} not in {j:#}"))
}

#[test]
fn compare_names_a_new_failure_and_passes_repeated_good_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, a2, b) = (
        tmp.path().join("a"),
        tmp.path().join("a2"),
        tmp.path().join("b"),
    );
    let good = ["-s", "empty-one-page", "-s", "zero-page"];
    runs(&a, 2, &good, 0);
    runs(&a2, 2, &good, 0);

    // The same instance name, zero-page@never, with a wrong expectation.
    let text = std::fs::read_to_string(repo().join("scenarios/zero-page.toml")).unwrap();
    let wrong = text.replacen("expect_cpages = 128", "expect_cpages = 127", 1);
    assert_ne!(
        wrong, text,
        "scenarios/zero-page.toml has no expect_cpages = 128"
    );
    let files = tmp.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let file = scenario_file(&files, "zero-page", &wrong);
    runs(
        &b,
        2,
        &["-s", "empty-one-page", "--scenario-file", s(&file)],
        1,
    );
    assert_eq!(run_dirs(&a).len(), 2);
    assert_eq!(run_dirs(&b).len(), 2);

    // A against B: a regression, and the table says which.
    let out = xtask_raw(&["compare", s(&a), s(&b)]);
    assert_eq!(out.code, 1, "{}", out.explain());
    let first = out
        .stdout
        .lines()
        .find(|l| l.starts_with("new failure"))
        .unwrap_or_else(|| panic!("no new failure row\n{}", out.explain()));
    assert!(first.contains("zero-page@never"), "{}", out.explain());
    assert!(first.contains("expected 127, got 128"), "{}", out.explain());
    assert!(out.stdout.contains("REGRESSION"), "{}", out.explain());
    let j = xtask_raw(&["compare", s(&a), s(&b), "--json"]);
    assert_eq!(j.code, 1, "{}", j.explain());
    let j = j.json();
    assert_eq!(j["regression"], true);
    assert_eq!(j["instances"][0]["instance"], "zero-page@never", "{j:#}");
    let z = instance(&j, "zero-page@never");
    assert_eq!(z["kind"], "new-failure", "{z:#}");
    assert_eq!(z["a"]["verdict"], "pass");
    assert_eq!(z["b"]["verdict"], "fail");
    assert_eq!(z["b"]["runs"], 2);
    assert_eq!(j["summary"]["new_failures"], 1);
    assert_eq!(
        instance(&j, "empty-one-page@madvise")["a"]["verdict"],
        "pass"
    );

    // The other way round it is a fix.
    let out = xtask_raw(&["compare", s(&b), s(&a), "--json"]);
    let j = out.json();
    assert_eq!(
        instance(&j, "zero-page@never")["kind"],
        "fixed",
        "{}",
        out.explain()
    );

    // One run per side: the outcome change is found, timing is not guessed.
    let (ra, rb) = (&run_dirs(&a)[0], &run_dirs(&b)[0]);
    let out = xtask_raw(&["compare", s(ra), s(rb)]);
    assert_eq!(out.code, 1, "{}", out.explain());
    assert!(
        out.stdout.contains("timing needs repeated runs"),
        "{}",
        out.explain()
    );
    let j = xtask_raw(&["compare", s(ra), s(rb), "--json"]).json();
    assert_eq!(j["timing_compared"], false);
    for i in j["instances"].as_array().unwrap() {
        for t in i["timing"].as_array().into_iter().flatten() {
            assert!(t.get("flagged").is_none(), "{t}");
        }
    }

    // A side against itself: nothing changed, no timing moved.
    let out = xtask_raw(&["compare", s(&a), s(&a)]);
    assert_eq!(out.code, 0, "{}", out.explain());
    assert!(out.stdout.contains("no regression"), "{}", out.explain());

    // Two sets of good runs: no outcome change. Timing flags over two runs
    // per side can happen by chance (the tool says so), so the exit code is
    // checked against the flags, and without timing flags it must be 0.
    let out = xtask_raw(&["compare", s(&a), s(&a2), "--json"]);
    let j = out.json();
    let mut slower = false;
    for i in j["instances"].as_array().unwrap() {
        let kind = i["kind"].as_str().unwrap();
        assert!(
            ["unchanged", "slower", "faster"].contains(&kind),
            "{i:#}\n{}",
            out.explain()
        );
        assert_eq!(i["a"]["verdict"], "pass");
        assert_eq!(i["b"]["verdict"], "pass");
        slower |= kind == "slower";
    }
    assert_eq!(out.code, i32::from(slower), "{}", out.explain());
    assert!(
        j["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("few runs")),
        "{j:#}"
    );
    let out = xtask_raw(&["compare", s(&a), s(&a2), "--min-change", "100000"]);
    assert_eq!(out.code, 0, "{}", out.explain());
    assert!(
        out.stdout.contains("no outcome changes"),
        "{}",
        out.explain()
    );

    let left = processes_mentioning(s(tmp.path()));
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn compare_rejects_bad_input_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir");
    let out = xtask_raw(&["compare", s(&missing), s(tmp.path())]);
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(out.stderr.contains("no-such-dir"), "{}", out.explain());
    assert!(
        out.stderr.contains("no such directory"),
        "{}",
        out.explain()
    );

    // A directory with no run in it.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(empty.join("not-a-run")).unwrap();
    let out = xtask_raw(&["compare", s(&empty), s(&empty)]);
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(out.stderr.contains("no run.json"), "{}", out.explain());

    // A run.json cut short: the file is named, and what to do.
    let bad = tmp.path().join("bad/20260101-000000-0000");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("run.json"), "{\"run_id\": \"x\", \"sta").unwrap();
    let out = xtask_raw(&["compare", s(&bad), s(&bad)]);
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(
        out.stderr
            .contains(&format!("{}", bad.join("run.json").display())),
        "{}",
        out.explain()
    );
    assert!(out.stderr.contains("rerun"), "{}", out.explain());
    let out = xtask_raw(&["compare", s(&tmp.path().join("bad")), s(&bad)]);
    assert_eq!(out.code, 2, "{}", out.explain());

    let out = xtask_raw(&["compare", s(&bad), s(&bad), "--min-change", "nan"]);
    assert_eq!(out.code, 2, "{}", out.explain());
}
