//! Reading run.json back: one function for every consumer (`--repeat`,
//! bisect, compare, bench, matrix), typed, with an error that says which
//! file and what to do.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::model::RunReport;

/// The report of the run directory `dir` (or of the run.json file `dir`).
pub fn load(dir: &Path) -> Result<RunReport> {
    let file = if dir.is_dir() {
        dir.join("run.json")
    } else {
        dir.to_path_buf()
    };
    let text = std::fs::read(&file).with_context(|| format!("{}: cannot read", file.display()))?;
    serde_json::from_slice(&text).with_context(|| {
        format!(
            "{}: not a readable run report. It may be cut short or from another hmmlab \
             version: rerun `cargo xtask run-scenarios` to make a new run, or move that \
             run directory away",
            file.display()
        )
    })
}

/// The run directories directly below `dir` that hold a run.json, sorted.
pub fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.join("run.json").is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reads_back_and_a_bad_one_is_named() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("r1");
        std::fs::create_dir(&d).unwrap();
        crate::report::write::write_run_json(&d, &RunReport::for_tests(vec![])).unwrap();
        assert_eq!(load(&d).unwrap().run_id, "r1");
        assert_eq!(run_dirs(t.path()), vec![d.clone()]);
        std::fs::write(d.join("run.json"), "{").unwrap();
        let e = format!("{:#}", load(&d).unwrap_err());
        assert!(e.contains("r1/run.json") && e.contains("rerun"), "{e}");
    }

    /// A run.json written before the run engine typed its fields.
    #[test]
    fn an_older_run_json_reads_back() {
        let old = r#"{"run_id":"20261124-143501-abcd","started_unix":1,"status":"finished",
            "kernel":{"key":"k1","source":"debian:6.12","identity":"i","release":"6.12.57",
            "patches":[],"fragments":[],"config_hash":"c","compiler":"gcc","tree":"/t",
            "obj_dir":"/o","bzimage":"/b","hmm_tests":"/h","build_log":"/l","build_seconds":1.0},
            "qemu_version":"QEMU 7.2","accel":"tcg","accel_reason":"--accel tcg",
            "qemu_command":"q","default_thp":"madvise","host":{"hostname":"h","kernel":"k",
            "cpus":2,"memory_kib":1},"timing":{"boot_ms":1.0,"first_scenario_ms":2.0,
            "guest_uptime_at_init_ms":1.0,"vm_ms":3.0},"scenarios":[{"name":"a@madvise",
            "outcome":"pass","thp":"madvise","duration_ns":5,"steps":[{"index":0,
            "op":"migrate-to-device","outcome":"pass","duration_ns":5,"pages":1,"cpages":1}],
            "reproduce":"r"}],"console_findings":[]}"#;
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("run.json"), old).unwrap();
        let r = load(t.path()).unwrap();
        assert_eq!(r.kernel.release, "6.12.57");
        assert_eq!(r.kernel.other["compiler"], "gcc");
        assert_eq!(r.status, crate::report::RunStatus::Finished);
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(
            back["kernel"]["obj_dir"], "/o",
            "unknown kernel facts are kept"
        );
    }
}
