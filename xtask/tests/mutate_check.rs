//! `cargo xtask mutate --check` on real mutants of 7.3.4's
//! `migrate_vma_nr_pages()` (the default kernel, built or taken from the
//! cache) and one hand-written mutant of `migrate_vma_collect_skip()`:
//! about a dozen compiles of `mm/migrate_device.o`, seconds in all.
//!
//! ```c
//! static unsigned long migrate_vma_nr_pages(unsigned long *src)   // line 955
//! {
//!     unsigned long nr = 1;
//! #ifdef CONFIG_ARCH_HAS_PMD_SOFTLEAVES
//!     if (*src & MIGRATE_PFN_COMPOUND)                              // 959
//!         nr = HPAGE_PMD_NR;                                        // 960
//! #else
//!     if (*src & MIGRATE_PFN_COMPOUND)                              // 962
//!         VM_WARN_ON_ONCE(true);                                    // 963
//! #endif
//!     return nr;
//! }
//! ```

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NR_PAGES: &str = "mm/migrate_device.c:migrate_vma_nr_pages";

/// An uncompilable mutant no operator makes: a name that is declared
/// nowhere. (Every generated mutant of the file compiles; see README.)
const UNVIABLE: &str = "\
--- a/mm/migrate_device.c
+++ b/mm/migrate_device.c
@@ -26,7 +26,7 @@
 	unsigned long addr;
 
 	for (addr = start; addr < end; addr += PAGE_SIZE) {
-		migrate->dst[migrate->npages] = 0;
+		migrate->dst[migrate->npages] = no_such_value;
 		migrate->src[migrate->npages++] = 0;
 	}
 
";

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(common::repo())
        .output()
        .expect("running xtask")
}

fn records(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    std::fs::read_to_string(dir.join("mutants.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

fn verdict(r: &BTreeMap<String, serde_json::Value>, id: &str) -> String {
    r.get(id)
        .unwrap_or_else(|| panic!("no record of {id}: {r:#?}"))["verdict"]
        .as_str()
        .unwrap()
        .to_string()
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn real_mutants_get_their_verdicts_without_a_boot() {
    let d = tempfile::tempdir().unwrap();
    let patch = d.path().join("undeclared.diff");
    std::fs::write(&patch, UNVIABLE).unwrap();
    // Line 959 ran, line 960 did not (as when no scenario migrates a
    // compound entry).
    let line = |count: u64| {
        serde_json::json!({"count": count, "functions": ["migrate_vma_nr_pages"],
                           "branches": [], "scenarios": if count > 0 { vec!["s@never"] } else { vec![] }})
    };
    let cov = serde_json::json!({"files": {"mm/migrate_device.c": {
        "functions": {"migrate_vma_nr_pages": {"start_line": 955, "end_line": 967,
                       "count": 3, "scenarios": ["s@never"]}},
        "lines": {"957": line(3), "959": line(3), "960": line(0), "966": line(3)}}}});
    let cov_file = d.path().join("coverage.json");
    std::fs::write(&cov_file, cov.to_string()).unwrap();
    let results = d.path().join("results");
    let patch_arg = patch.to_string_lossy().into_owned();
    let cov_arg = cov_file.to_string_lossy().into_owned();
    let results_arg = results.to_string_lossy().into_owned();
    let args = [
        "mutate",
        "--check",
        "--function",
        "migrate_vma_nr_pages",
        "--mutant-patch",
        &patch_arg,
        "--coverage-from",
        &cov_arg,
        "--results-dir",
        &results_arg,
    ];
    let t = std::time::Instant::now();
    let out = xtask(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    eprintln!("checked in {:.1}s", t.elapsed().as_secs_f64());
    let obj = PathBuf::from(
        stderr
            .lines()
            .find_map(|l| {
                l.split_once("(objects ")
                    .map(|(_, o)| o.trim_end_matches(')'))
            })
            .unwrap_or_else(|| panic!("no objects directory in:\n{stderr}")),
    );
    let built = obj.join("mm/migrate_device.o");
    assert!(
        stderr.contains("compiled unmutated in"),
        "the recipe must rebuild the build's own object first:\n{stderr}"
    );

    let dir = common::mutate_dir(&results);
    let r = records(&dir);
    assert_eq!(r.len(), 11, "10 generated mutants and the patch: {r:#?}");

    // Unviable: the compiler's error is kept, with the tree's file name.
    let bad = "mm/migrate_device.c:migrate_vma_collect_skip:29:patch:undeclared";
    assert_eq!(verdict(&r, bad), "unviable");
    let error = r[bad]["error"].to_string();
    assert!(
        error.contains("mm/migrate_device.c:29") && error.contains("no_such_value"),
        "{error}"
    );

    // Equivalent: x86 selects CONFIG_ARCH_HAS_PMD_SOFTLEAVES, so the
    // `#else` branch (lines 962-963) is never compiled; each of its
    // mutants gives the original object byte for byte. (Were it compiled,
    // VM_WARN_ON_ONCE() without CONFIG_DEBUG_VM is no code either.)
    for id in [
        "962:negate-cond:0",
        "962:zero-const:0",
        "962:complement-const:0",
        "963:delete-if-body:0",
    ] {
        assert_eq!(
            verdict(&r, &format!("{NR_PAGES}:{id}")),
            "equivalent",
            "{id}"
        );
    }

    // Duplicate: `*src & 0` is never true, so the compiler drops the
    // assignment: the same code as deleting the if's body.
    let dup = format!("{NR_PAGES}:960:delete-if-body:0");
    assert_eq!(verdict(&r, &dup), "duplicate");
    assert_eq!(
        r[&dup]["duplicate_of"],
        format!("{NR_PAGES}:959:zero-const:0")
    );

    // Pending: a real change on a line that ran. `!(*src & COMPOUND)`
    // counts every single page as HPAGE_PMD_NR pages.
    for id in [
        "959:negate-cond:0",
        "959:zero-const:0",
        "959:complement-const:0",
    ] {
        let id = format!("{NR_PAGES}:{id}");
        assert_eq!(verdict(&r, &id), "pending", "{id}");
        assert_eq!(r[&id]["coverage"], "covered");
    }
    // Uncovered: a real change on line 960, which no scenario ran.
    let id = format!("{NR_PAGES}:960:zero-const:0");
    assert_eq!(verdict(&r, &id), "uncovered", "{id}");
    // Uncovered too, but scenarios/mutants/equivalent.toml lists it (`nr =
    // ~HPAGE_PMD_NR` stops at the end of the batch all the same): equivalent,
    // with the entry's place.
    let id = format!("{NR_PAGES}:960:complement-const:0");
    assert_eq!(verdict(&r, &id), "equivalent", "{id}");
    assert!(
        r[&id]["listed"]
            .as_str()
            .is_some_and(|l| l.starts_with("scenarios/mutants/equivalent.toml:")),
        "{}",
        r[&id]
    );
    for v in r.values() {
        assert!(v["compile_seconds"].as_f64().unwrap() > 0.0, "{v}");
    }
    assert!(stdout.contains("11 mutants checked"), "{stdout}");
    let row: Vec<&str> = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(NR_PAGES))
        .unwrap_or_else(|| panic!("no row for {NR_PAGES}:\n{stdout}"))
        .split_whitespace()
        .collect();
    // all, unviable, equivalent, duplicate, uncovered, pending
    assert_eq!(row[1..], ["10", "0", "5", "1", "1", "3"], "{stdout}");

    // The build's own object is untouched, and a resumed check compiles
    // nothing again.
    let before = sha256(&built);
    let mut again: Vec<&str> = args.to_vec();
    let dir_arg = dir.to_string_lossy().into_owned();
    again.extend(["--resume", &dir_arg]);
    let out = xtask(&again);
    let stderr2 = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr2}");
    assert!(
        stderr2.contains("11 mutants, 11 already checked"),
        "{stderr2}"
    );
    assert!(!stderr2.contains("[1/11]"), "{stderr2}");
    assert_eq!(records(&dir), r);
    assert_eq!(String::from_utf8_lossy(&out.stdout), stdout);
    assert_eq!(sha256(&built), before);
}

/// Each record's verdict and duplicate, by id.
fn verdicts(dir: &Path) -> BTreeMap<String, (String, serde_json::Value)> {
    records(dir)
        .into_iter()
        .map(|(id, v)| (id, (v["verdict"].to_string(), v["duplicate_of"].clone())))
        .collect()
}

/// `--shard 1/2` and `2/2` of one selection, merged, are the check of the
/// whole selection: the same mutants, verdicts and duplicates.
#[test]
fn shards_merged_are_one_check() {
    let d = tempfile::tempdir().unwrap();
    let check = |results: &Path, shard: Option<&str>| -> PathBuf {
        let results_arg = results.to_string_lossy().into_owned();
        let mut args = vec![
            "mutate",
            "--check",
            "--function",
            "migrate_vma_collect_hole",
            "--results-dir",
            &results_arg,
        ];
        if let Some(s) = shard {
            args.extend(["--shard", s]);
        }
        let out = xtask(&args);
        assert!(
            out.status.success(),
            "{shard:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        common::mutate_dir(results)
    };
    let whole = check(&d.path().join("whole"), None);
    let one = check(&d.path().join("one"), Some("1/2"));
    let two = check(&d.path().join("two"), Some("2/2"));
    let header: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(one.join("check.json")).unwrap()).unwrap();
    assert_eq!(header["shard"], "1/2");

    let (a, b) = (records(&one), records(&two));
    assert!(!a.is_empty() && !b.is_empty(), "{a:#?}\n{b:#?}");
    assert!(a.keys().all(|id| !b.contains_key(id)), "the shards overlap");

    let merged_results = d.path().join("merged");
    let merged_arg = merged_results.to_string_lossy().into_owned();
    let (one_arg, two_arg) = (
        one.to_string_lossy().into_owned(),
        two.to_string_lossy().into_owned(),
    );
    let out = xtask(&[
        "mutate",
        "--merge",
        &two_arg,
        &one_arg,
        "--results-dir",
        &merged_arg,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = common::mutate_dir(&merged_results);
    let want = verdicts(&whole);
    assert!(
        want.values().any(|(v, _)| v == "\"duplicate\""),
        "the selection should have a duplicate to find: {want:#?}"
    );
    // The mutants of lines 49 and 51 that make line 48's negated condition
    // again are in the other shard: only the merge sees them as
    // duplicates of line 48's (its shard has one pending, the other a
    // duplicate of it).
    let shard_of = |id: &str| {
        let r = a.get(id).or(b.get(id)).unwrap();
        (r["verdict"].to_string(), r["duplicate_of"].clone())
    };
    let across: Vec<&String> = want
        .iter()
        .filter(|(id, (v, of))| {
            v == "\"duplicate\""
                && of
                    .as_str()
                    .is_some_and(|of| a.contains_key(*id) != a.contains_key(of))
        })
        .map(|(id, _)| id)
        .collect();
    assert!(
        !across.is_empty(),
        "no duplicate across the shards: {want:#?}"
    );
    for id in &across {
        assert_ne!(shard_of(id), want[*id], "{id}");
    }
    assert_eq!(verdicts(&merged), want);
    let lines = std::fs::read_to_string(merged.join("mutants.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), want.len(), "one line per mutant");
    let header: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("check.json")).unwrap()).unwrap();
    assert!(header.get("shard").is_none(), "{header}");
    assert!(merged.join("mutation-report.json").is_file());
    assert!(
        stdout.contains(&format!("{} mutants checked", want.len())),
        "{stdout}"
    );

    // A shard resumed with another --shard is refused.
    let results_arg = d.path().join("one").to_string_lossy().into_owned();
    let out = xtask(&[
        "mutate",
        "--check",
        "--function",
        "migrate_vma_collect_hole",
        "--results-dir",
        &results_arg,
        "--resume",
        &one_arg,
        "--shard",
        "2/2",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--shard 1/2") && stderr.contains("--shard 2/2"),
        "{stderr}"
    );
}
