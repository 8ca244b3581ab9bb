//! `cargo xtask mutate --run` on the three mutants of line 66 of 7.3.4's
//! `migrate_vma_collect_hole()` and one hand-written equivalent mutant,
//! with `empty-anon` (a range never touched, so every entry is a hole).
//! By default the three are woven into one kernel (mutant schemata), which
//! runs first with no mutant active, then once per mutant with
//! `hmmlab.mutant=N`; with `--no-schemata` the unmutated kernel and each
//! mutant are linked into kernels of their own. Both ways must agree.
//!
//! ```c
//!     for (addr = start; addr < end; addr += PAGE_SIZE) {      // 65
//!         migrate->src[migrate->npages] = MIGRATE_PFN_MIGRATE;   // 66
//!         migrate->dst[migrate->npages] = 0;
//! ```
//!
//! What the kernel's code says of each:
//! - `zero-const` (`src = 0`) and `delete-stmt` (no store: the entry keeps
//!   the 0 `migrate_vma_setup()` wrote with its `memset()` of `src`, line
//!   763): a hole is never selected for migration, so test_hmm migrates
//!   nothing and `empty-anon`'s pages are not device pages: killed.
//! - `complement-const` (`src = ~MIGRATE_PFN_MIGRATE`): MIGRATE_PFN_VALID
//!   and every pfn bit set, a page pointer far outside memory: detected
//!   (it kills or crashes; which one, the compiler's code decides).
//! - `addr += PAGE_SIZE` spelled `addr = addr + PAGE_SIZE`: the same code,
//!   `equivalent`, never booted.

mod common;

/// Read off a mutation run's report.html in the browser.
const MUTATION_PROBE: &str = r#"
const rows = [...document.querySelectorAll('#mutants > tbody > tr')];
const shown = () => rows.filter(r => getComputedStyle(r).display !== 'none');
const pick = v => {
  const s = document.querySelector('form.filters select[data-facet=verdict]');
  s.value = v; s.dispatchEvent(new Event('change', {bubbles: true}));
};
const id = r => r.querySelector('td code').textContent;
pick('equivalent');
const equivalent_only = shown().map(id);
const counter = document.querySelector('form.filters .shown').textContent;
pick('');
probe = {
  score: document.getElementById('score').textContent,
  rows: rows.length,
  equivalent_only, counter,
  all_again: shown().length,
  why: Object.fromEntries(rows.map(r => [id(r), r.cells[2].textContent.trim()])),
  marks: [...document.querySelectorAll('table.source .mark')].map(m => m.title),
  external: [...document.querySelectorAll("[src], link, a[href]:not([href^='#'])")].map(e => e.outerHTML),
};
"#;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const HOLE: &str = "mm/migrate_device.c:migrate_vma_collect_hole:66";

const EQUIVALENT: &str = "\
--- a/mm/migrate_device.c
+++ b/mm/migrate_device.c
@@ -62,7 +62,7 @@
 		return migrate_vma_collect_skip(start + PAGE_SIZE, end, walk);
 	}
 
-	for (addr = start; addr < end; addr += PAGE_SIZE) {
+	for (addr = start; addr < end; addr = addr + PAGE_SIZE) {
 		migrate->src[migrate->npages] = MIGRATE_PFN_MIGRATE;
 		migrate->dst[migrate->npages] = 0;
 		migrate->npages++;
";

fn records(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("mutants.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let map: BTreeMap<String, serde_json::Value> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_string(), v)
        })
        .collect();
    assert_eq!(
        map.len(),
        lines.len(),
        "one line per mutant at the end:\n{text}"
    );
    map
}

fn killers(r: &serde_json::Value) -> Vec<String> {
    r["killed_by"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|k| k["scenario"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn woven_mutants_boot_one_kernel_each_with_its_number_and_the_scenarios_score_them() {
    let d = tempfile::tempdir().unwrap();
    let patch = d.path().join("hole-step-spelled-out.diff");
    std::fs::write(&patch, EQUIVALENT).unwrap();
    let results = d.path().join("results");
    let patch_arg = patch.to_string_lossy().into_owned();
    let results_arg = results.to_string_lossy().into_owned();
    let mutate = |then: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args([
                "mutate",
                "--run",
                "--function",
                "migrate_vma_collect_hole",
                "--lines",
                "66-66",
                "-s",
                "empty-anon",
                "--mutant-patch",
                &patch_arg,
            ])
            .args(then)
            .current_dir(common::repo())
            .output()
            .unwrap()
    };
    let run = mutate(&["--results-dir", &results_arg]);
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{}\n{stdout}\n{stderr}", run.status);
    let dir = common::mutate_dir(&results);
    let r = records(&dir);
    assert_eq!(r.len(), 4, "{r:#?}");

    // The woven kernel ran first with no mutant active, and passed.
    let woven = common::first_run_dir(&dir.join("runs/woven-mm_migrate_device.c"))
        .expect("the woven kernel's unmutated run");
    let u = common::run_json(&woven);
    assert_eq!(u["status"], "finished", "{u}");
    let banner = u["kernel"]["banner"].as_str().unwrap().to_string();
    assert!(dir.join("woven/mm_migrate_device.c").is_file());

    let mut numbers = vec![];
    for (op, detected) in [
        ("zero-const", &["killed"][..]),
        ("delete-stmt", &["killed"][..]),
        ("complement-const", &["killed", "crashed"][..]),
    ] {
        let id = format!("{HOLE}:{op}:0");
        let m = &r[&id];
        let verdict = m["verdict"].as_str().unwrap();
        assert!(detected.contains(&verdict), "{id}: {m:#}");
        let n = m["schema"]
            .as_u64()
            .unwrap_or_else(|| panic!("{id} not woven: {m:#}"));
        numbers.push(n);
        assert_eq!(m["timings"]["link"].as_f64(), Some(0.0), "{m:#}");
        // The woven kernel booted, and said which mutant was active.
        let run_dir = Path::new(m["run_dir"].as_str().unwrap());
        let j = common::run_json(run_dir);
        assert_eq!(j["booted_kernel"].as_str(), Some(banner.as_str()), "{j}");
        let console = std::fs::read_to_string(run_dir.join("console.log")).unwrap();
        assert!(
            console.contains(&format!("hmmlab: mutant {n} active")),
            "{id}: {console}"
        );
        assert!(run_dir.parent().unwrap().join("mutant.diff").is_file());
        if verdict == "killed" {
            // One failure is enough: the run stopped there and says so.
            let by = killers(m);
            assert_eq!(by.len(), 1, "{id}: {m:#}");
            assert!(by[0].starts_with("empty-anon@"), "{id}: {m:#}");
            let rest: Vec<&serde_json::Value> = j["scenarios"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["name"] != by[0].as_str())
                .collect();
            for s in rest {
                assert_eq!(s["outcome"], "skip", "{s}");
                assert!(
                    s["message"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("not run: {} failed first", by[0])),
                    "{s}"
                );
            }
        }
    }
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 3, "each mutant its own number");
    let e = &r["mm/migrate_device.c:migrate_vma_collect_hole:65:patch:hole-step-spelled-out"];
    assert_eq!(e["verdict"], "equivalent", "{e:#}");
    assert!(
        e.get("run_dir").is_none(),
        "an equivalent mutant is never booted: {e:#}"
    );

    assert!(
        stdout.contains("mutation score: 100.0% (3 detected of 3"),
        "{stdout}"
    );
    // The scratch object tree is gone.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("work-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // The same verdicts in the mutation-testing-elements schema.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("mutation-report.json")).unwrap()).unwrap();
    assert_eq!(report["schemaVersion"], "2");
    let file = &report["files"]["mm/migrate_device.c"];
    assert_eq!(file["language"], "c");
    let by_id = |id: &str| {
        file["mutants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in the report"))
            .clone()
    };
    let z = by_id(&format!("{HOLE}:zero-const:0"));
    assert_eq!(z["status"], "Killed", "{z}");
    assert_eq!(z["replacement"], "0", "{z}");
    assert_eq!(z["location"]["start"]["line"], 66, "{z}");
    assert_eq!(
        z["killedBy"],
        serde_json::json!(killers(&r[&format!("{HOLE}:zero-const:0")])),
        "{z}"
    );
    let eq = by_id("mm/migrate_device.c:migrate_vma_collect_hole:65:patch:hole-step-spelled-out");
    assert_eq!(eq["status"], "Ignored", "{eq}");

    // The same run as a page, in a real browser: the score, each mutant's
    // row with its killer, the verdict filter, each verdict on its line.
    let page = dir.join("report.html");
    let (p, console) = common::browser_page(&page, MUTATION_PROBE);
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(
        p["score"]
            .as_str()
            .unwrap()
            .contains("mutation score 100.0 %"),
        "{p}"
    );
    assert_eq!(p["rows"], 4, "{p}");
    assert_eq!(p["equivalent_only"], serde_json::json!([eq["id"]]), "{p}");
    assert_eq!(p["counter"], "1", "{p}");
    assert_eq!(p["all_again"], 4, "{p}");
    let zero = format!("{HOLE}:zero-const:0");
    let why = p["why"][&zero].as_str().unwrap();
    assert!(why.starts_with("by empty-anon@"), "{p}");
    assert!(
        p["marks"].as_array().unwrap().iter().any(|m| m.as_str()
            == Some(&format!(
                "{zero}: {}",
                r[&zero]["verdict"].as_str().unwrap()
            ))),
        "the zero-const mutant on its line: {p}"
    );
    assert_eq!(p["external"], serde_json::json!([]), "{p}");
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mutation-report.png");
    common::browser_screenshot(&page, &png, 1200, 1600);
    println!(
        "screenshot of the mutation run's report.html: {}",
        png.display()
    );

    // Compared with itself: nothing changed. Compared with a copy in which
    // zero-const survived: B newly misses it, exit 1.
    let compare = |b: &Path| {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("compare")
            .arg(&dir)
            .arg(b)
            .current_dir(common::repo())
            .output()
            .unwrap()
    };
    let same = compare(&dir);
    let same_out = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "{same_out}");
    assert!(
        same_out.contains("no mutant changed its verdict"),
        "{same_out}"
    );
    let other = d.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let zero = format!("{HOLE}:zero-const:0");
    let text: String = std::fs::read_to_string(dir.join("mutants.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["id"] == zero.as_str() {
                v["verdict"] = "survived".into();
                v["killed_by"] = serde_json::json!([]);
            }
            format!("{v}\n")
        })
        .collect();
    std::fs::write(other.join("mutants.jsonl"), text).unwrap();
    let worse = compare(&other);
    let worse_out = String::from_utf8_lossy(&worse.stdout);
    assert_eq!(worse.status.code(), Some(1), "{worse_out}");
    assert!(
        worse_out.contains(&format!(
            "1 newly missed (detected in A, not in B):\n  {zero}  killed -> survived"
        )),
        "{worse_out}"
    );
    assert!(
        worse_out.contains("A 100.0% (3 of 3), B 66.7% (2 of 3)"),
        "{worse_out}"
    );

    // Resumed, nothing is booted again.
    let dir_arg = dir.to_string_lossy().into_owned();
    let again = mutate(&["--resume", &dir_arg]);
    let err2 = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{err2}");
    assert!(err2.contains("no mutant to boot"), "{err2}");
    assert_eq!(records(&dir), r);
}

/// `--no-schemata`: the unmutated kernel and each mutant are linked into
/// kernels of their own, each with its own banner; the verdicts are the
/// woven run's.
#[test]
fn mutants_linked_alone_boot_their_own_kernels_and_agree_with_the_woven_run() {
    let d = tempfile::tempdir().unwrap();
    let results = d.path().join("results");
    let run = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "mutate",
            "--run",
            "--no-schemata",
            "--function",
            "migrate_vma_collect_hole",
            "--lines",
            "66-66",
            "--operator",
            "zero-const",
            "--operator",
            "delete-stmt",
            "-s",
            "empty-anon",
            "--results-dir",
        ])
        .arg(&results)
        .current_dir(common::repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{}\n{stdout}\n{stderr}", run.status);
    let dir = common::mutate_dir(&results);
    assert!(!dir.join("woven").exists(), "nothing is woven");
    let r = records(&dir);
    assert_eq!(r.len(), 2, "{r:#?}");
    let unmutated = common::first_run_dir(&dir.join("runs/unmutated")).expect("the unmutated run");
    let u = common::run_json(&unmutated);
    assert_eq!(u["status"], "finished", "{u}");
    let mut banners = vec![u["kernel"]["banner"].as_str().unwrap().to_string()];
    for op in ["zero-const", "delete-stmt"] {
        let id = format!("{HOLE}:{op}:0");
        let m = &r[&id];
        assert_eq!(m["verdict"], "killed", "{id}: {m:#}");
        assert!(m.get("schema").is_none(), "{m:#}");
        assert!(m["timings"]["link"].as_f64().unwrap() > 0.0, "{m:#}");
        // Its own kernel booted: the run's identity check passed against
        // a banner no other kernel of this run has.
        let run_dir = Path::new(m["run_dir"].as_str().unwrap());
        let j = common::run_json(run_dir);
        let banner = j["kernel"]["banner"].as_str().unwrap().to_string();
        assert_eq!(j["booted_kernel"].as_str(), Some(banner.as_str()), "{j}");
        assert!(!banners.contains(&banner), "{banner} twice");
        banners.push(banner);
    }
    assert!(
        stdout.contains("mutation score: 100.0% (2 detected of 2"),
        "{stdout}"
    );
}
