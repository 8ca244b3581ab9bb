//! Writing results: every file is written to a temporary name and renamed,
//! so a reader (or a killed run) never sees half a file.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::model::RunReport;

/// Create `results/<run-id>/` (mode 0700); never reuse an existing one.
pub fn create_run_dir(results: &Path, run_id: &str) -> Result<PathBuf> {
    if run_id.is_empty() || run_id.contains('/') || run_id.starts_with('.') {
        bail!("invalid run id `{run_id}`");
    }
    fs::create_dir_all(results).with_context(|| format!("creating {}", results.display()))?;
    let dir = results.join(run_id);
    let mut b = fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(&dir).with_context(|| {
        format!(
            "creating run directory {} (it must not exist yet)",
            dir.display()
        )
    })?;
    Ok(dir)
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().context("no file name")?.to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))?;
    Ok(())
}

pub fn write_run_json(dir: &Path, report: &RunReport) -> Result<()> {
    write_atomic(&dir.join("run.json"), &serde_json::to_vec_pretty(report)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dirs_are_private_and_never_reused() {
        let t = tempfile::tempdir().unwrap();
        let d = create_run_dir(t.path(), "r1").unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(create_run_dir(t.path(), "r1").is_err());
        assert!(create_run_dir(t.path(), "../x").is_err());
        write_atomic(&d.join("a.json"), b"{}").unwrap();
        assert_eq!(fs::read(d.join("a.json")).unwrap(), b"{}");
        assert_eq!(
            fs::read_dir(&d).unwrap().count(),
            1,
            "no temporary file left behind"
        );
    }
}
