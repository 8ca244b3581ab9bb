//! `.github/workflows/matrix.yml`, read as GitHub reads it and its shell
//! steps run here as a runner would run them: the list job's step writes
//! `$GITHUB_OUTPUT`, the cell job's step runs one real cell (real kernel,
//! real QEMU) with `${{ matrix.* }}` filled in from that output. Only the
//! `uses:` actions (checkout, cache, JUnit, upload) are GitHub's own and are
//! not run; their inputs are checked against what the steps produce.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

fn workflow() -> Yaml {
    let path = repo().join(".github/workflows/matrix.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .remove(0)
}

fn job<'a>(w: &'a Yaml, name: &str) -> &'a Yaml {
    let j = &w["jobs"][name];
    assert!(!j.is_badvalue(), "job {name} missing");
    j
}

/// The step whose `id` or `name` is `key`.
fn step<'a>(job: &'a Yaml, key: &str) -> &'a Yaml {
    job["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["id"].as_str() == Some(key) || s["name"].as_str() == Some(key))
        .unwrap_or_else(|| panic!("no step {key}"))
}

/// `${{ matrix.X }}` → the cell's value; any other expression is an error
/// here, since the step would then depend on something this test cannot see.
fn substitute(text: &str, matrix: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in matrix {
        out = out.replace(&format!("${{{{ matrix.{k} }}}}"), v);
    }
    assert!(!out.contains("${{"), "unknown expression left in: {out}");
    out
}

fn bash(script: &str, cwd: &Path, shim: &Path, env: &[(&str, &Path)]) -> (i32, String) {
    let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap());
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["-e", "-c", script])
        .current_dir(cwd)
        .env("PATH", path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Run the list job's step; return the matrix it hands to the cell job.
fn list_cells(w: &Yaml, shim: &Path) -> serde_json::Value {
    let cells = job(w, "cells");
    assert_eq!(
        cells["outputs"]["matrix"].as_str(),
        Some("${{ steps.list.outputs.matrix }}")
    );
    let run = step(cells, "list")["run"].as_str().unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let (code, log) = bash(run, &repo(), shim, &[("GITHUB_OUTPUT", out.path())]);
    assert_eq!(code, 0, "{log}");
    let written = std::fs::read_to_string(out.path()).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one output line, as GitHub needs: {written}"
    );
    let json = lines[0].strip_prefix("matrix=").expect("matrix=…");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

#[test]
fn the_list_job_hands_every_cell_to_the_cell_job() {
    let w = workflow();
    let shim = cargo_shim();
    let m = list_cells(&w, shim.path());
    let cell = job(&w, "cell");
    assert_eq!(cell["needs"].as_str(), Some("cells"));
    assert_eq!(
        cell["strategy"]["matrix"].as_str(),
        Some("${{ fromJSON(needs.cells.outputs.matrix) }}")
    );
    // GitHub rejects an empty include, and every cell must be one job.
    let include = m["include"].as_array().unwrap();
    assert_eq!(include.len(), 18);
    // Every `${{ matrix.X }}` the job uses is in every cell.
    let text = std::fs::read_to_string(repo().join(".github/workflows/matrix.yml")).unwrap();
    for used in text.split("${{ matrix.").skip(1) {
        let key = used.split_whitespace().next().unwrap();
        for c in include {
            assert!(c[key].is_string(), "cell {c} has no `{key}`");
        }
    }
    // The Debian source packages are not on Ubuntu runners.
    let image = cell["container"].as_str().unwrap_or("");
    assert!(
        image.contains("bookworm"),
        "cell job runs in Debian 12: {image}"
    );
}

#[test]
fn the_cell_jobs_step_runs_a_cell_and_leaves_the_junit_the_report_step_reads() {
    let w = workflow();
    let shim = cargo_shim();
    let m = list_cells(&w, shim.path());
    // The default kernel's cell: its kernel is the one every test shares.
    let c = m["include"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cell"] == "6.12-base-madvise")
        .expect("6.12-base-madvise is listed");
    let matrix: BTreeMap<String, String> = c
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let cell = job(&w, "cell");
    let run = substitute(step(cell, "Run the cell")["run"].as_str().unwrap(), &matrix);
    assert!(
        run.contains("--fail-on-skip"),
        "CI fails on any skip: {run}"
    );

    // The step writes `results/` under the checkout; run it in the
    // repository and remove only what it made.
    let results = repo().join("results");
    let before: Vec<PathBuf> = entries(&results);
    let (code, log) = bash(&run, &repo(), shim.path(), &[]);
    let made: Vec<PathBuf> = entries(&results)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    let junit_glob = step(cell, "JUnit report")["with"]["report_paths"]
        .as_str()
        .unwrap()
        .to_string();
    let junits: Vec<String> = made
        .iter()
        .map(|d| d.join("junit.xml"))
        .filter(|j| j.is_file())
        .map(|j| std::fs::read_to_string(j).unwrap())
        .collect();
    for d in &made {
        let _ = std::fs::remove_dir_all(d);
    }
    assert_eq!(code, 0, "{log}");
    assert_eq!(junit_glob, "results/*/junit.xml");
    assert_eq!(
        junits.len(),
        1,
        "one run directory with junit.xml: {made:?}"
    );
    assert!(
        junits[0].contains("failures=\"0\"") && junits[0].contains("empty-anon@madvise"),
        "{}",
        junits[0]
    );
    // matrix.toml runs 6.12's cells on both kinds of device memory.
    assert!(
        junits[0].contains("empty-anon@madvise@coherent"),
        "{}",
        junits[0]
    );
    // 6.12 predates what some scenarios test: they are listed as not
    // applicable, and --fail-on-skip left them alone.
    assert!(
        junits[0].contains("not applicable: requires kernel ")
            && junits[0].contains("7.2 (this is 6.12."),
        "{}",
        junits[0]
    );
    // The cache step keys on the build the cell uses.
    let key = step(cell, "Compiler cache for this cell's kernel build")["with"]["key"]
        .as_str()
        .unwrap();
    assert!(key.contains("${{ matrix.build }}"), "{key}");
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}
