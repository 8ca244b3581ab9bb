//! The kernel's own `hmm-tests` selftest, built statically from the same tree.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::shell::Cmd;

/// Where the selftest lives: selftests/mm since 6.3, selftests/vm before.
pub fn hmm_tests_source(tree: &Path) -> Option<PathBuf> {
    [
        "tools/testing/selftests/mm/hmm-tests.c",
        "tools/testing/selftests/vm/hmm-tests.c",
    ]
    .iter()
    .map(|p| tree.join(p))
    .find(|p| p.is_file())
}

pub fn build_hmm_tests(tree: &Path, out_dir: &Path, log: &Path) -> Result<PathBuf> {
    let Some(src) = hmm_tests_source(tree) else {
        bail!(
            "no hmm-tests.c under {}/tools/testing/selftests/{{mm,vm}}",
            tree.display()
        );
    };
    let out = out_dir.join("hmm-tests");
    let t = tree.to_string_lossy().to_string();
    Cmd::new(&[
        "gcc".to_string(),
        "-static".into(),
        "-O2".into(),
        "-I".into(),
        t.clone(),
        "-I".into(),
        format!("{t}/tools/testing/selftests"),
        "-I".into(),
        format!("{t}/tools/include/uapi"),
        src.to_string_lossy().into(),
        "-lpthread".into(),
        "-o".into(),
        out.to_string_lossy().into(),
    ])
    .run_logged(log, "gcc hmm-tests", |_| None)?;
    Ok(out)
}
