//! End to end: a coverage run on the default kernel (Debian 7.3, its
//! coverage build built once and cached), real QEMU, real gcov counters,
//! each scenario instance's lines attributed to it.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// The line numbers of `file` (in `tree`) whose text, trimmed, is `text`.
fn lines_reading(tree: &Path, file: &str, text: &str) -> Vec<u32> {
    let src = std::fs::read_to_string(tree.join(file)).unwrap();
    src.lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == text)
        .map(|(i, _)| i as u32 + 1)
        .collect()
}

fn scenarios_of(line: &Value) -> Vec<&str> {
    line["scenarios"]
        .as_array()
        .unwrap_or_else(|| panic!("no scenarios in {line}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn each_scenario_is_credited_with_the_lines_it_ran_and_only_those() {
    // empty-one-page migrates one never-touched page: no page table there,
    // so the walk takes migrate_vma_collect_hole()'s per-page path.
    // zero-page (THP never) migrates read-faulted zero pages: no THP
    // anywhere, so nothing of it splits one.
    let run = xtask(&[
        "run-scenarios",
        "--coverage",
        "-s",
        "empty-one-page",
        "-s",
        "zero-page",
        "--thp",
        "madvise",
    ]);
    assert_eq!(run.code, 0, "{}", run.explain());
    let j = run.json();
    assert_eq!(j["status"], "finished");
    assert_eq!(run.scenario("empty-one-page@madvise")["outcome"], "pass");
    assert_eq!(run.scenario("zero-page@never")["outcome"], "pass");
    assert_eq!(
        j["kernel"]["cover"],
        serde_json::json!(["mm/migrate_device.c"]),
        "{}",
        j["kernel"]
    );
    let tree = PathBuf::from(j["kernel"]["tree"].as_str().unwrap());
    let dir = run.run_dir.as_ref().unwrap().join("coverage");
    for f in [
        "coverage.info",
        "coverage.json",
        "html/index.html",
        "counters.bin",
        "gcda/empty-one-page@madvise/mm/migrate_device.gcda",
        "gcda/zero-page@never/mm/migrate_device.gcda",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing from {}", dir.display());
    }
    assert!(
        !dir.join("problems.txt").exists(),
        "{}",
        std::fs::read_to_string(dir.join("problems.txt")).unwrap_or_default()
    );
    // The table on stdout, migrate_vma_* first.
    assert!(
        run.stdout.contains("migrate_vma_collect_hole"),
        "{}",
        run.stdout
    );
    let cov: Value =
        serde_json::from_slice(&std::fs::read(dir.join("coverage.json")).unwrap()).unwrap();
    let file = &cov["files"]["mm/migrate_device.c"];
    let line = |n: u32| &file["lines"][n.to_string()];

    // The hole path: the per-page loop's first assignment (the compound
    // one reads `MIGRATE_PFN_MIGRATE |`).
    let hole = lines_reading(
        &tree,
        "mm/migrate_device.c",
        "migrate->src[migrate->npages] = MIGRATE_PFN_MIGRATE;",
    );
    let hole: Vec<u32> = hole
        .into_iter()
        .filter(|n| {
            line(*n)["functions"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == "migrate_vma_collect_hole"))
        })
        .collect();
    assert_eq!(
        hole.len(),
        1,
        "the hole loop's line in migrate_vma_collect_hole"
    );
    let l = line(hole[0]);
    assert!(l["count"].as_u64().unwrap() >= 1, "line {}: {l}", hole[0]);
    assert!(
        scenarios_of(l).contains(&"empty-one-page@madvise"),
        "line {}: {l}",
        hole[0]
    );

    // The counters are zeroed before each scenario: zero-page, which ran
    // after empty-one-page and has no hole in its range, is not credited
    // with empty-one-page's hole path.
    let hole_fn = &file["functions"]["migrate_vma_collect_hole"];
    assert_eq!(
        scenarios_of(hole_fn),
        ["empty-one-page@madvise"],
        "{hole_fn}"
    );

    // zero-page ran the code under test (it is not a vacuous "not hit")...
    let setup = &file["functions"]["migrate_vma_setup"];
    assert!(scenarios_of(setup).contains(&"zero-page@never"), "{setup}");
    // ...including the release after it, which evicts every device chunk
    // through migrate_device_range(): counted as the scenario's.
    let range = &file["functions"]["migrate_device_range"];
    assert_eq!(
        scenarios_of(range),
        ["empty-one-page@madvise", "zero-page@never"],
        "{range}"
    );
    // ...but no line that splits a THP: migrate_vma_split_unmapped_folio()
    // and the split_folio() calls (migrate_vma_split_folio(),
    // migrate_vma_collect_huge_pmd()).
    let mut split: Vec<u32> = file["lines"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, l)| {
            l["functions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "migrate_vma_split_unmapped_folio")
        })
        .map(|(n, _)| n.parse().unwrap())
        .collect();
    assert!(
        split.len() >= 5,
        "migrate_vma_split_unmapped_folio's lines: {split:?}"
    );
    split.extend(lines_reading(
        &tree,
        "mm/migrate_device.c",
        "ret = split_folio(folio);",
    ));
    for n in split {
        let l = line(n);
        assert!(l.is_object(), "line {n} has code");
        assert!(
            !scenarios_of(l).contains(&"zero-page@never"),
            "line {n} (a THP split) credited to zero-page@never: {l}"
        );
    }

    // The lcov tracefile names the file and has line records.
    let info = std::fs::read_to_string(dir.join("coverage.info")).unwrap();
    assert!(info.contains("SF:") && info.contains("migrate_device.c") && info.contains("\nDA:"));

    // The HTML view, one page, as a browser shows it: the file's section
    // has a row per line with code, marked missed or run as coverage.json
    // says, the marks in distinct colours, the hole line (its anchor named
    // after the file) listing the scenario that ran it; the files' table
    // links to the section.
    let (mut missed, mut ran) = (0, 0);
    for l in file["lines"].as_object().unwrap().values() {
        if l["count"].as_u64().unwrap() == 0 {
            missed += 1;
        } else {
            ran += 1;
        }
    }
    let page = browser_probe(
        &dir.join("html/index.html"),
        &format!(
            "const sec = document.getElementById('mm_migrate_device.c');
             const q = s => sec.querySelectorAll(s).length;
             const bg = s => getComputedStyle(sec.querySelector(s)).backgroundColor;
             const hole = document.getElementById('mm_migrate_device.c-L{}');
             probe = {{ miss: q('tr.miss'), ran: q('tr.hit') + q('tr.part'),
                       colours: [bg('tr.miss td.code'), bg('tr.hit td.code'), bg('tr.part td.code')],
                       hole_class: hole.className, hole_who: hole.querySelector('.who').textContent,
                       hole_in_section: sec.contains(hole),
                       links: [...document.querySelectorAll('#files a')].map(a =>
                         [a.getAttribute('href'), document.getElementById(decodeURIComponent(a.hash.slice(1))) === sec]) }};",
            hole[0]
        ),
    );
    assert_eq!(page["miss"], missed, "{page}");
    assert_eq!(page["ran"], ran, "{page}");
    let colours: Vec<&str> = page["colours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        !colours.contains(&"rgba(0, 0, 0, 0)")
            && colours[0] != colours[1]
            && colours[1] != colours[2]
            && colours[0] != colours[2],
        "missed, run and partly run lines look alike: {colours:?}"
    );
    assert_ne!(page["hole_class"], "miss", "{page}");
    assert_eq!(page["hole_in_section"], true, "{page}");
    assert!(
        page["hole_who"]
            .as_str()
            .unwrap()
            .contains("empty-one-page@madvise"),
        "{page}"
    );
    assert!(
        page["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l[0] == "#mm_migrate_device.c" && l[1] == true),
        "{page}"
    );
    assert_eq!(
        std::fs::read_dir(dir.join("html")).unwrap().count(),
        1,
        "html/ holds the one page"
    );
    assert!(no_qemu_left(&run));
}

#[test]
fn a_matrix_merges_the_cells_of_one_source_and_compares_kernels() {
    // Two cells of the default kernel (THP madvise and always), one
    // coverage build shared with the test above.
    let run = xtask(&[
        "matrix",
        "-f",
        "7.3-base",
        "--jobs",
        "1",
        "--coverage",
        "-s",
        "empty-one-page",
    ]);
    assert_eq!(run.code, 0, "{}", run.explain());
    let matrix_dir = run.run_dir.as_ref().unwrap();
    let cell = run_json(&first_run_dir(&matrix_dir.join("7.3-base-madvise")).unwrap());
    assert_eq!(
        cell["kernel"]["cover"],
        serde_json::json!(["mm/migrate_device.c"])
    );
    let release = cell["kernel"]["release"].as_str().unwrap();
    // Each cell made its own report...
    for c in ["7.3-base-madvise", "7.3-base-always"] {
        let r = first_run_dir(&matrix_dir.join(c)).unwrap();
        assert!(r.join("coverage/coverage.json").is_file(), "{c}");
    }
    // ...and the two, one source, are merged into the kernel's report.
    let merged = matrix_dir.join("coverage").join(release);
    let cov: Value =
        serde_json::from_slice(&std::fs::read(merged.join("coverage.json")).unwrap()).unwrap();
    let hole = &cov["files"]["mm/migrate_device.c"]["functions"]["migrate_vma_collect_hole"];
    assert_eq!(
        scenarios_of(hole),
        ["empty-one-page@always", "empty-one-page@madvise"],
        "{hole}"
    );
    for f in ["coverage.info", "html/index.html"] {
        assert!(merged.join(f).is_file(), "{f}");
    }
    assert!(!merged.join("html/mm_migrate_device.c.html").exists());
    let summary = std::fs::read_to_string(matrix_dir.join("coverage/summary.txt")).unwrap();
    assert!(
        summary.contains(&format!(
            "{release}: cells 7.3-base-madvise, 7.3-base-always"
        )),
        "{summary}"
    );
    let row = summary
        .lines()
        .find(|l| l.starts_with("migrate_vma_collect_hole"))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(!row.contains(" 0/"), "the hole path ran: {row}");
    assert!(run.stdout.contains(&summary), "{}", run.stdout);
    assert!(no_qemu_left(&run));
}

#[test]
fn a_file_to_cover_that_is_not_in_the_tree_is_refused_before_any_build() {
    let run = xtask(&[
        "run-scenarios",
        "--cover",
        "mm/no_such_file.c",
        "-s",
        "empty-one-page",
    ]);
    assert_eq!(run.code, 2, "{}", run.explain());
    assert!(
        run.stderr.contains("mm/no_such_file.c") && run.stderr.contains("no such file"),
        "{}",
        run.stderr
    );
    assert!(run.run_dir.is_none(), "no run directory for refused input");
    let run = xtask(&["coverage", "--cover", "migrate.c", "-s", "empty-one-page"]);
    assert_eq!(run.code, 2, "{}", run.explain());
    assert!(
        run.stderr.contains("--cover migrate.c") && run.stderr.contains("mm/migrate.c"),
        "{}",
        run.stderr
    );
}

/// The last line of `function` in `file` (of `tree`, per the report's
/// lines) whose text, trimmed, is `text`, with the line before it reading
/// `after` when given.
fn last_line_of(
    tree: &Path,
    report: &Value,
    function: &str,
    text: &str,
    after: Option<&str>,
) -> u32 {
    let src = std::fs::read_to_string(tree.join("mm/migrate_device.c")).unwrap();
    let lines: Vec<&str> = src.lines().map(str::trim).collect();
    let in_function = |n: u32| {
        report["lines"][n.to_string()]["functions"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == function))
    };
    (1..lines.len())
        .filter(|&i| lines[i] == text && after.is_none_or(|a| lines[i - 1] == a))
        .map(|i| i as u32 + 1)
        .rfind(|&n| in_function(n))
        .unwrap_or_else(|| panic!("no line `{text}` in {function}"))
}

/// One `(function, line text, after which text, scenario instances that
/// must have run it)` per line to check.
type Expected<'a> = (&'a str, &'a str, Option<&'a str>, &'a [&'a str]);

/// Run `scenarios` (THP madvise) with coverage; each must pass. The run,
/// the tree and mm/migrate_device.c's coverage.
fn covered_run(scenarios: [&str; 2]) -> (Run, PathBuf, Value) {
    let run = xtask(&[
        "run-scenarios",
        "--coverage",
        "-s",
        scenarios[0],
        "-s",
        scenarios[1],
        "--thp",
        "madvise",
    ]);
    assert_eq!(run.code, 0, "{}", run.explain());
    for s in scenarios {
        let s = format!("{s}@madvise");
        assert_eq!(run.scenario(&s)["outcome"], "pass", "{s}");
    }
    let j = run.json();
    let tree = PathBuf::from(j["kernel"]["tree"].as_str().unwrap());
    let dir = run.run_dir.as_ref().unwrap().join("coverage");
    let cov: Value =
        serde_json::from_slice(&std::fs::read(dir.join("coverage.json")).unwrap()).unwrap();
    let file = cov["files"]["mm/migrate_device.c"].clone();
    (run, tree, file)
}

/// Each expected line ran, and ran in each instance named for it.
fn assert_lines_run(tree: &Path, file: &Value, expected: &[Expected]) {
    for &(function, text, after, by) in expected {
        let n = last_line_of(tree, file, function, text, after);
        let l = &file["lines"][n.to_string()];
        assert!(
            l["count"].as_u64().unwrap_or(0) >= 1,
            "{function} line {n}: {l}"
        );
        let who = scenarios_of(l);
        for s in by {
            assert!(
                who.contains(s),
                "{function} line {n} `{text}` not run by {s}: {l}"
            );
        }
    }
}

#[test]
fn held_references_reach_the_lines_that_give_a_page_up() {
    // extra-ref-page holds two small pages, extra-ref-thp one page of a
    // THP, in a pipe (hold-refs) while they migrate. Without those
    // references every page would migrate, both scenarios would fail on
    // their `expect_errno = 2`, and none of the lines below would run.
    let (run, tree, file) = covered_run(["extra-ref-page", "extra-ref-thp"]);
    let page = "extra-ref-page@madvise";
    let thp = "extra-ref-thp@madvise";
    let split_failed = Some("if (ret)");
    let expected: [Expected; 7] = [
        // migrate_vma_check_page(): one reference too many.
        (
            "migrate_vma_check_page",
            "return false;",
            None,
            &[page, thp],
        ),
        // migrate_device_unmap(): the page goes back on the LRU, and the
        // restore loop maps it again.
        (
            "migrate_device_unmap",
            "folio_putback_lru(folio);",
            None,
            &[page, thp],
        ),
        (
            "migrate_device_unmap",
            "remove_migration_ptes(folio, folio, 0);",
            None,
            &[page, thp],
        ),
        ("migrate_device_unmap", "restore--;", None, &[page, thp]),
        // split_folio() of the held THP fails: pte-mapped...
        ("migrate_vma_split_folio", "return ret;", None, &[thp]),
        (
            "migrate_vma_collect_pmd",
            "return migrate_vma_collect_skip(addr, end, walk);",
            None,
            &[thp],
        ),
        // ...and PMD-mapped, for a range that is not the whole THP.
        (
            "migrate_vma_collect_huge_pmd",
            "return migrate_vma_collect_skip(start, end, walk);",
            split_failed,
            &[thp],
        ),
    ];
    assert_lines_run(&tree, &file, &expected);
    assert!(no_qemu_left(&run));
}

#[test]
fn pinned_pages_reach_the_lines_that_refuse_to_share_them() {
    // pinned-page pins two small pages, pinned-thp one page of a THP
    // (pin-pages: gup_test's PIN_LONGTERM_TEST_START) while they migrate.
    // Unpinned, every page would migrate, both scenarios would fail on
    // their `expect_errno = 2`, and none of the lines below would run.
    let (run, tree, file) = covered_run(["pinned-page", "pinned-thp"]);
    let page = "pinned-page@madvise";
    let thp = "pinned-thp@madvise";
    let share_refused = Some("if (folio_try_share_anon_rmap_pte(folio, page)) {");
    let expected: [Expected; 3] = [
        // folio_try_share_anon_rmap_pte() refuses a pinned small page: its
        // pte goes back.
        (
            "migrate_vma_collect_pmd",
            "set_pte_at(mm, addr, ptep, pte);",
            share_refused,
            &[page],
        ),
        // set_pmd_migration_entry() refuses a pinned THP (-EBUSY)...
        (
            "migrate_vma_collect_huge_pmd",
            "goto fallback;",
            None,
            &[thp],
        ),
        // ...and the fallback's split_folio() fails on the pin.
        (
            "migrate_vma_collect_huge_pmd",
            "return migrate_vma_collect_skip(start, end, walk);",
            Some("if (ret)"),
            &[thp],
        ),
    ];
    assert_lines_run(&tree, &file, &expected);
    assert!(no_qemu_left(&run));
}
