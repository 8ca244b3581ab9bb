//! `cargo xtask compare A B`: load two result sets and print what changed
//! (the comparison itself is `hmmlab_harness::compare`); `--html FILE`
//! also writes it as a page (`compare_html`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hmmlab_harness::compare::{self, Options, Side};
use hmmlab_harness::exit;
use hmmlab_harness::report::RunReport;

use crate::cli::CompareArgs;
use crate::fail::bad_input;

/// How deep below a side's directory run directories are looked for
/// (`DIR/<run-id>/run.json`, `DIR/run-N/<run-id>/run.json`, …).
const MAX_DEPTH: usize = 3;

pub fn compare(a: &CompareArgs) -> Result<i32> {
    if !a.min_change.is_finite() || a.min_change < 0.0 {
        return Err(bad_input(format!(
            "--min-change {}: give a percentage of 0 or more (default {})",
            a.min_change,
            compare::DEFAULT_MIN_CHANGE_PCT
        )));
    }
    use crate::mutate::compare::{self as mutation, is_mutation_run};
    match (is_mutation_run(&a.a), is_mutation_run(&a.b)) {
        (true, true) if a.html.is_some() => {
            return Err(bad_input(
                "--html: two mutation runs have their pages already (report.html in each); \
                 --html is for scenario runs"
                    .to_string(),
            ))
        }
        (true, true) => return mutation::compare(&a.a, &a.b, a.json),
        (true, false) | (false, true) => {
            let (m, other) = if is_mutation_run(&a.a) {
                (&a.a, &a.b)
            } else {
                (&a.b, &a.a)
            };
            return Err(bad_input(format!(
                "{} is a mutation run (mutants.jsonl) and {} is not; compare two mutation runs                  (results/mutate-<id>) or two scenario runs",
                m.display(),
                other.display()
            )));
        }
        (false, false) => {}
    }
    let runs_a = load_side("A", &a.a)?;
    let runs_b = load_side("B", &a.b)?;
    let (label_a, label_b) = (a.a.display().to_string(), a.b.display().to_string());
    let c = compare::compare(
        Side {
            label: &label_a,
            runs: &runs_a,
        },
        Side {
            label: &label_b,
            runs: &runs_b,
        },
        &Options {
            min_change_pct: a.min_change,
        },
    );
    if let Some(out) = &a.html {
        hmmlab_harness::report::write::write_atomic(
            out,
            crate::compare_html::render(&c).as_bytes(),
        )
        .with_context(|| format!("--html {}", out.display()))?;
        eprintln!("compare: page in {}", out.display());
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        print!("{}", compare::render(&c));
    }
    Ok(if c.regression {
        exit::TEST_FAILURE
    } else {
        exit::OK
    })
}

/// Every run of one side: `path` itself when it holds run.json (or is a
/// run.json), else every run directory below it, in path order.
fn load_side(side: &str, path: &Path) -> Result<Vec<RunReport>> {
    const FORMS: &str = "give a run directory (results/<run-id>/, with run.json) or a \
                         directory of run directories (one --results-dir used for several \
                         `cargo xtask run-scenarios`)";
    let meta = std::fs::metadata(path).map_err(|e| {
        bad_input(format!(
            "{side}: {}: {}; {FORMS}",
            path.display(),
            if e.kind() == std::io::ErrorKind::NotFound {
                "no such directory".to_string()
            } else {
                e.to_string()
            }
        ))
    })?;
    let files = if meta.is_file() {
        vec![path.to_path_buf()]
    } else if path.join("run.json").is_file() {
        vec![path.join("run.json")]
    } else {
        let mut found = vec![];
        find_runs(path, MAX_DEPTH, &mut found)?;
        found.sort();
        found
    };
    if files.is_empty() {
        return Err(bad_input(format!(
            "{side}: {}: no run.json in it or in its subdirectories; {FORMS}",
            path.display()
        )));
    }
    files.iter().map(|f| load_run(side, f)).collect()
}

/// run.json files in the directories below `dir`; a directory that has one
/// is a run directory and is not searched further.
fn find_runs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    if depth == 0 {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| bad_input(format!("{}: cannot list: {e}", dir.display())))?;
    for e in entries.flatten() {
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        let run = p.join("run.json");
        if run.is_file() {
            out.push(run);
        } else {
            find_runs(&p, depth - 1, out)?;
        }
    }
    Ok(())
}

fn load_run(side: &str, file: &Path) -> Result<RunReport> {
    hmmlab_harness::report::load(file).map_err(|e| bad_input(format!("{side}: {e:#}")))
}
