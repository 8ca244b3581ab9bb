//! Where things live: the repository root and the build cache (outside the repo).

use std::path::{Path, PathBuf};

/// The workspace root (this crate lives in `<root>/xtask`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// `$HMMLAB_CACHE`, else `$XDG_CACHE_HOME/hmmlab`, else `~/.cache/hmmlab`.
pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("HMMLAB_CACHE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("hmmlab");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".cache").join("hmmlab")
}

/// Resolve a user-given path against the current directory, for messages and records.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// A run of `xtask/tests/fixtures/runs/` (its run.json), for unit tests of
/// the pages.
#[cfg(test)]
pub fn fixture_run(name: &str) -> hmmlab_harness::report::RunReport {
    hmmlab_harness::report::load(&repo_root().join("xtask/tests/fixtures/runs").join(name)).unwrap()
}
