//! The layer on real counters: a C file compiled with the host gcc
//! (`--coverage -O0`), run three times with different arguments standing
//! in for scenario instances, each run's `.gcda` kept apart.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::gcov::ReadOptions;
use super::model::Coverage;
use super::read::{read_all, Instance};
use super::{html, lcov, table};

const HEADER: &str = "static inline int inline_twice(int x) { return 2 * x; }\n";

const PROGRAM: &str = r#"#include <stdlib.h>
#include "inline.h"

#define TWIN(name) int name(int x) { return x ? 1 : 2; }
TWIN(twin_a) TWIN(twin_b) /* twins */

static int collect_one(int x)
{
	if (x < 0) /* never-negative */
		return -x; /* never-run */
	return x;
}

int migrate_vma_collect(int n)
{
	int s = 0;
	for (int i = 0; i < n; i++)
		s += collect_one(i);
	if (n > 5) /* big-branch */
		s *= 2; /* only-second */
	return s;
}

int migrate_device_finalize(int n)
{
	return n;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 0;
	int r = migrate_vma_collect(n) + twin_a(n) + twin_b(0) + inline_twice(n);
	return migrate_device_finalize(r) < 0;
}
"#;

/// The runs: scenario instance name, argument.
const RUNS: &[(&str, Option<&str>)] = &[
    ("first@madvise", Some("2")),
    ("second@madvise", Some("9")),
    ("third@always", None),
];

/// The line of the program that carries `marker`.
fn line_of(marker: &str) -> u32 {
    PROGRAM
        .lines()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no {marker} in the program")) as u32
        + 1
}

struct Fixture {
    _dir: tempfile::TempDir,
    source: PathBuf,
    build: PathBuf,
    instances: Vec<Instance>,
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {what} ({e}): this test needs gcc and gcov (Debian package gcc)")
    });
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compile the program like a kernel with `O=`: sources in `src/`, objects
/// in `build/` (compiled there as `../src/prog.c`); run it once per entry of
/// RUNS, keeping each run's counters in `gcda/<name>/prog.gcda`.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("src");
    let build = dir.path().join("build");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::create_dir_all(&build).unwrap();
    std::fs::write(source.join("prog.c"), PROGRAM).unwrap();
    std::fs::write(source.join("inline.h"), HEADER).unwrap();
    run(
        Command::new("gcc")
            .args(["--coverage", "-O0", "-c", "../src/prog.c", "-o", "prog.o"])
            .current_dir(&build),
        "gcc --coverage -c",
    );
    run(
        Command::new("gcc")
            .args(["--coverage", "prog.o", "-o", "prog"])
            .current_dir(&build),
        "gcc --coverage (link)",
    );
    let mut instances = Vec::new();
    for (name, arg) in RUNS {
        let gcda = build.join("prog.gcda");
        let _ = std::fs::remove_file(&gcda);
        let mut cmd = Command::new(build.join("prog"));
        cmd.args(arg.iter());
        let status = cmd.status().expect("running the program");
        assert!(status.success(), "{name}: {status}");
        let keep = dir.path().join("gcda").join(name);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&gcda, keep.join("prog.gcda")).expect("the run wrote prog.gcda");
        std::fs::remove_file(&gcda).unwrap();
        instances.push(Instance {
            name: name.to_string(),
            gcda_dir: keep,
        });
    }
    Fixture {
        _dir: dir,
        source,
        build,
        instances,
    }
}

fn options(f: &Fixture) -> ReadOptions {
    ReadOptions {
        source: f.source.clone(),
        gcov: "gcov".into(),
        all_files: false,
    }
}

fn names(s: &super::model::Scenarios) -> Vec<&str> {
    s.iter().map(String::as_str).collect()
}

#[test]
fn lines_branches_and_who_ran_them() {
    let f = fixture();
    let cov = read_all(&f.build, &f.instances, &options(&f)).unwrap();
    assert_eq!(
        cov.files.keys().collect::<Vec<_>>(),
        ["prog.c"],
        "headers are left out"
    );
    let file = &cov.files["prog.c"];

    // A line only the second run executes.
    let only = &file.lines[&line_of("only-second")];
    assert_eq!(only.count, 1);
    assert_eq!(names(&only.scenarios), ["second@madvise"]);
    // A line no run executes.
    let never = &file.lines[&line_of("never-run")];
    assert_eq!(never.count, 0);
    assert!(never.scenarios.is_empty());
    // Its branch is never taken; the other is, by the runs that call collect_one().
    let neg = &file.lines[&line_of("never-negative")];
    assert_eq!(neg.count, 2 + 9);
    assert_eq!(neg.branches.len(), 2);
    assert_eq!(neg.untaken_branches(), 1);
    let taken = neg.branches.iter().find(|b| b.taken > 0).unwrap();
    assert_eq!(taken.taken, 11);
    assert_eq!(names(&taken.scenarios), ["first@madvise", "second@madvise"]);
    // Both ways of `n > 5`, each by the runs that went that way.
    let big = &file.lines[&line_of("big-branch")];
    let mut by: Vec<Vec<&str>> = big.branches.iter().map(|b| names(&b.scenarios)).collect();
    by.sort();
    assert_eq!(
        by,
        [
            vec!["first@madvise", "third@always"],
            vec!["second@madvise"]
        ]
    );

    // Functions: entered by every run, or only by those with n > 0.
    assert_eq!(file.functions["migrate_vma_collect"].count, 3);
    assert_eq!(file.functions["collect_one"].count, 11);
    assert_eq!(
        names(&file.functions["collect_one"].scenarios),
        ["first@madvise", "second@madvise"]
    );
    let collect_one = file.function_summary("collect_one");
    assert_eq!((collect_one.lines, collect_one.lines_hit), (4, 3));
    assert_eq!((collect_one.branches, collect_one.branches_taken), (2, 1));

    // Two functions on one line: the line is both's, counts and branches add up.
    let twins = &file.lines[&line_of("twins")];
    assert_eq!(
        twins.functions.iter().collect::<Vec<_>>(),
        ["twin_a", "twin_b"]
    );
    assert_eq!(
        twins.count,
        file.functions["twin_a"].count + file.functions["twin_b"].count
    );
    assert_eq!(twins.branches.len(), 4, "{twins:?}");
    assert_eq!(
        twins.untaken_branches(),
        1,
        "twin_b only ever sees 0: {twins:?}"
    );
}

#[test]
fn headers_on_request() {
    let f = fixture();
    let opts = ReadOptions {
        all_files: true,
        ..options(&f)
    };
    let cov = read_all(&f.build, &f.instances, &opts).unwrap();
    assert_eq!(cov.files.keys().collect::<Vec<_>>(), ["inline.h", "prog.c"]);
    assert_eq!(cov.files["inline.h"].functions["inline_twice"].count, 3);
}

#[test]
fn per_instance_reads_merge_to_the_whole() {
    let f = fixture();
    let opts = options(&f);
    let one = |i: usize| read_all(&f.build, &f.instances[i..=i], &opts).unwrap();
    let (a, b, c) = (one(0), one(1), one(2));
    let mut ab_c = Coverage::merged([&a, &b]);
    ab_c.merge(&c);
    let mut a_bc = a.clone();
    a_bc.merge(&Coverage::merged([&b, &c]));
    assert_eq!(ab_c, a_bc);
    assert_eq!(ab_c, Coverage::merged([&c, &a, &b]));
    assert_eq!(ab_c, read_all(&f.build, &f.instances, &opts).unwrap());
    // The same instance twice (two runs) doubles its counts, not its names.
    let twice = read_all(
        &f.build,
        &[f.instances[1].clone(), f.instances[1].clone()],
        &opts,
    )
    .unwrap();
    let only = &twice.files["prog.c"].lines[&line_of("only-second")];
    assert_eq!(
        (only.count, names(&only.scenarios)),
        (2, vec!["second@madvise"])
    );
}

#[test]
fn reports() {
    let f = fixture();
    let cov = read_all(&f.build, &f.instances, &options(&f)).unwrap();
    let info = lcov::render(&cov, "", &f.source);
    let lines: Vec<&str> = info.lines().collect();
    let has = |l: String| assert!(lines.contains(&l.as_str()), "no {l} in\n{info}");
    has(format!("SF:{}", f.source.join("prog.c").display()));
    has(format!("DA:{},1", line_of("only-second")));
    has(format!("DA:{},0", line_of("never-run")));
    has(format!("DA:{},11", line_of("never-negative")));
    has("FNDA:3,migrate_vma_collect".into());
    has("FNDA:11,collect_one".into());
    let neg = line_of("never-negative");
    let untaken = cov.files["prog.c"].lines[&neg]
        .branches
        .iter()
        .position(|b| b.taken == 0)
        .unwrap();
    has(format!("BRDA:{neg},0,{untaken},0"));
    has(format!("BRDA:{neg},0,{},11", 1 - untaken));
    assert_eq!(lines.first(), Some(&"TN:"));
    assert_eq!(lines.last(), Some(&"end_of_record"));

    let text = std::fs::read_to_string(f.source.join("prog.c")).unwrap();
    let page = html::render(&cov, &[("prog.c".to_string(), text)].into());
    assert!(
        page.contains("if (x &lt; 0) /* never-negative */"),
        "{page}"
    );
    assert!(!page.contains("x < 0"));
    assert!(page.contains(&format!(
        "id=\"prog.c-L{}\" class=\"miss\"",
        line_of("never-run")
    )));
    assert!(page.contains(&format!("id=\"prog.c-L{neg}\" class=\"part\"")));
    assert!(page.contains("<summary>1</summary><div class=\"who\">second@madvise</div>"));
    // One page: the file's figures link to its section, its functions to
    // their first lines.
    assert!(page.contains("<a href=\"#prog.c\"><code>prog.c</code></a>"));
    assert!(page.contains(&format!(
        "<a href=\"#prog.c-L{}\"><code>collect_one</code></a>",
        cov.files["prog.c"].functions["collect_one"].start_line
    )));

    let order = table::order(&cov.files["prog.c"]);
    assert_eq!(
        order,
        [
            "migrate_vma_collect",
            "migrate_device_finalize",
            "twin_a",
            "twin_b",
            "collect_one",
            "main"
        ]
    );
}

#[test]
fn counters_of_another_build_are_refused() {
    let f = fixture();
    // The same source compiled again: another stamp in the notes.
    run(
        Command::new("gcc")
            .args([
                "--coverage",
                "-O0",
                "-DAGAIN",
                "-c",
                "../src/prog.c",
                "-o",
                "prog.o",
            ])
            .current_dir(&f.build),
        "gcc --coverage -c (again)",
    );
    let err = read_all(&f.build, &f.instances, &options(&f)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("another build") && msg.contains("prog.gcno"),
        "{msg}"
    );
}

#[test]
fn a_wrong_build_tree_is_named() {
    let f = fixture();
    let empty = tempfile::tempdir().unwrap();
    let err = read_all(empty.path(), &f.instances, &options(&f)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("no prog.gcno in the build tree"), "{msg}");
}

#[test]
fn debugfs_layout_is_found() {
    // The guest's /sys/kernel/debug/gcov/<objtree>/prog.gcda, copied whole.
    let f = fixture();
    let copy = tempfile::tempdir().unwrap();
    let inner = copy.path().join(f.build.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inner).unwrap();
    std::fs::copy(
        f.instances[1].gcda_dir.join("prog.gcda"),
        inner.join("prog.gcda"),
    )
    .unwrap();
    let inst = Instance {
        name: "second@madvise".into(),
        gcda_dir: copy.path().to_path_buf(),
    };
    let cov = read_all(&f.build, &[inst], &options(&f)).unwrap();
    assert_eq!(cov.files["prog.c"].lines[&line_of("only-second")].count, 1);
}

#[test]
fn gcov_is_required() {
    let f = fixture();
    let opts = ReadOptions {
        gcov: "gcov-that-does-not-exist".into(),
        ..options(&f)
    };
    let msg = format!("{:#}", read_all(&f.build, &f.instances, &opts).unwrap_err());
    assert!(msg.contains("install gcc"), "{msg}");
}

/// genhtml (lcov's own reader) reads the tracefile. `cargo xtask test`
/// installs lcov; without it this fails, saying so.
#[test]
fn genhtml_reads_the_tracefile() {
    assert!(
        Command::new("genhtml").arg("--version").output().is_ok(),
        "genhtml is not installed: apt-get install lcov (cargo xtask test installs it)"
    );
    let f = fixture();
    let cov = read_all(&f.build, &f.instances, &options(&f)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let info = out.path().join("coverage.info");
    std::fs::write(&info, lcov::render(&cov, "", &f.source)).unwrap();
    run(
        Command::new("genhtml")
            .args(["--branch-coverage", "-q", "-o"])
            .arg(out.path().join("html"))
            .arg(&info),
        "genhtml",
    );
    assert!(Path::new(&out.path().join("html/index.html")).is_file());
}
