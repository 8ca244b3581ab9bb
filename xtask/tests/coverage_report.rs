//! `cargo xtask coverage-report` end to end: a C file built with the host
//! gcc's `--coverage`, run as two scenario instances, reported.

use std::path::Path;
use std::process::{Command, Output};

const PROGRAM: &str = r#"#include <stdlib.h>

int migrate_vma_pages(int n)
{
	if (n < 3) /* cond */
		return 0;
	return n * 2; /* big */
}

int main(int argc, char **argv)
{
	return migrate_vma_pages(argc > 1 ? atoi(argv[1]) : 0) < 0;
}
"#;

fn line_of(marker: &str) -> usize {
    PROGRAM.lines().position(|l| l.contains(marker)).unwrap() + 1
}

fn must(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {what} ({e}): this test needs gcc and gcov (Debian package gcc)")
    });
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn xtask(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running xtask")
}

#[test]
fn counters_to_every_format() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir_all(d.join("src")).unwrap();
    std::fs::create_dir_all(d.join("obj")).unwrap();
    std::fs::write(d.join("src/prog.c"), PROGRAM).unwrap();
    must(
        Command::new("gcc")
            .args(["--coverage", "-O0", "../src/prog.c", "-o", "prog"])
            .current_dir(d.join("obj")),
        "gcc --coverage",
    );
    // gcc names the notes of a one-step compile and link after the program.
    let gcno = std::fs::read_dir(d.join("obj"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "gcno"))
        .expect("gcc wrote a .gcno");
    let stem = gcno.file_stem().unwrap().to_string_lossy().into_owned();
    for (name, arg) in [("small@madvise", "1"), ("big@madvise", "7")] {
        must(Command::new(d.join("obj/prog")).arg(arg), name);
        let keep = d.join("gcda").join(name);
        std::fs::create_dir_all(&keep).unwrap();
        let gcda = d.join("obj").join(format!("{stem}.gcda"));
        std::fs::rename(&gcda, keep.join(format!("{stem}.gcda"))).unwrap();
    }

    let out = xtask(
        &[
            "coverage-report",
            "--build",
            "obj",
            "--source",
            "src",
            "--gcda",
            "small@madvise=gcda/small@madvise",
            "--gcda",
            "big@madvise=gcda/big@madvise",
            "--out",
            "report",
        ],
        d,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The table: the migrate_vma_ function first, then main.
    let rows: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        rows,
        ["prog.c", "migrate_vma_pages", "main", "total"],
        "{stdout}"
    );
    assert!(stdout.lines().nth(1).unwrap().contains("4/4"), "{stdout}");

    let report = d.join("report");
    let info = std::fs::read_to_string(report.join("coverage.info")).unwrap();
    let big = line_of("/* big */");
    let cond = line_of("/* cond */");
    assert!(info.contains(&format!("\nDA:{big},1\n")), "{info}");
    assert!(info.contains(&format!("\nBRDA:{cond},0,0,1\n")), "{info}");
    assert!(info.contains(&format!("\nBRDA:{cond},0,1,1\n")), "{info}");
    assert!(info.contains("\nFNDA:2,migrate_vma_pages\n"), "{info}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("coverage.json")).unwrap())
            .unwrap();
    let line = &json["files"]["prog.c"]["lines"][big.to_string()];
    assert_eq!(line["count"], 1);
    assert_eq!(line["scenarios"], serde_json::json!(["big@madvise"]));
    assert_eq!(
        json["files"]["prog.c"]["functions"]["migrate_vma_pages"]["scenarios"],
        serde_json::json!(["big@madvise", "small@madvise"])
    );

    // One page: the files' table links to the file's section on it, which
    // holds the source, each line with its own anchor.
    let page = std::fs::read_to_string(report.join("html/index.html")).unwrap();
    assert!(page.contains("href=\"#prog.c\""), "{page}");
    assert!(page.contains("<section id=\"prog.c\">"), "{page}");
    assert!(page.contains("if (n &lt; 3) /* cond */"), "{page}");
    assert!(
        page.contains(&format!("<tr id=\"prog.c-L{big}\" class=\"hit\">")),
        "{page}"
    );
    let html: Vec<_> = std::fs::read_dir(report.join("html"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(html, ["index.html"]);

    // An earlier report merged in: counts add up. A page per file that an
    // older report left in the directory written is removed.
    std::fs::create_dir_all(d.join("twice/html")).unwrap();
    std::fs::write(d.join("twice/html/prog.c.html"), "stale").unwrap();
    let again = xtask(
        &[
            "coverage-report",
            "--source",
            "src",
            "--add",
            "report/coverage.json",
            "--add",
            "report/coverage.json",
            "--out",
            "twice",
        ],
        d,
    );
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let info = std::fs::read_to_string(d.join("twice/coverage.info")).unwrap();
    assert!(info.contains(&format!("\nDA:{big},2\n")), "{info}");
    assert!(d.join("twice/html/index.html").is_file());
    assert!(!d.join("twice/html/prog.c.html").exists());

    // The report names the source it counted, by its SHA-256.
    let sum = must(
        Command::new("sha256sum").arg(d.join("src/prog.c")),
        "sha256sum",
    );
    let sum = String::from_utf8_lossy(&sum.stdout);
    assert_eq!(
        json["files"]["prog.c"]["source_sha256"],
        sum.split_whitespace().next().unwrap()
    );

    // The same counters read against another source of the file (another
    // kernel's, say): its lines are not these lines, so the two reports do
    // not merge, and they compare function by function instead.
    std::fs::create_dir_all(d.join("src2")).unwrap();
    std::fs::write(d.join("src2/prog.c"), format!("{PROGRAM}/* changed */\n")).unwrap();
    let other = xtask(
        &[
            "coverage-report",
            "--build",
            "obj",
            "--source",
            "src2",
            "--gcda",
            "small@madvise=gcda/small@madvise",
            "--out",
            "other",
        ],
        d,
    );
    assert!(
        other.status.success(),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    let refused = xtask(
        &[
            "coverage-report",
            "--source",
            "src",
            "--add",
            "report/coverage.json",
            "--add",
            "other/coverage.json",
            "--out",
            "mixed",
        ],
        d,
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("different sources of prog.c") && stderr.contains("--compare"),
        "{stderr}"
    );
    assert!(!d.join("mixed/coverage.json").exists());
    let compared = xtask(
        &[
            "coverage-report",
            "--compare",
            "both=report/coverage.json",
            "--compare",
            "small=other/coverage.json",
        ],
        d,
    );
    let text = String::from_utf8_lossy(&compared.stdout);
    assert!(
        compared.status.success(),
        "{}",
        String::from_utf8_lossy(&compared.stderr)
    );
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("migrate_vma_pages"))
        .unwrap_or_else(|| panic!("{text}"))
        .split_whitespace()
        .collect();
    // Both instances ran all four lines; the small one missed `return n * 2`.
    assert_eq!(
        row[1..],
        ["4/4", "100.0%", "2/2", "3/4", "75.0%", "1/2"],
        "{text}"
    );
}

#[test]
fn a_malformed_instance_is_bad_input() {
    let t = tempfile::tempdir().unwrap();
    let out = xtask(
        &[
            "coverage-report",
            "--source",
            ".",
            "--gcda",
            "no-directory",
            "--out",
            "r",
        ],
        t.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected NAME=DIR"));
}
