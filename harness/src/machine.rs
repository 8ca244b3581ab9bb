//! Per-machine settings are data (`images/machines/<name>.toml`), not code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    pub qemu: String,
    pub machine: String,
    pub memory_mib: u32,
    pub smp: u32,
    pub kernel_image: PathBuf,
    pub append: Vec<String>,
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// Settings per accelerator (`tcg`, `kvm`).
    pub accel: BTreeMap<String, AccelSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccelSettings {
    pub cpu: String,
    pub boot_timeout_s: f64,
    pub scenario_timeout_s: f64,
}

impl Machine {
    /// Load `<dir>/<name>.toml`, or the file `name` itself when it ends in
    /// `.toml`; an unknown name lists the valid ones.
    pub fn load(dir: &Path, name: &str) -> Result<Machine> {
        let path = if name.ends_with(".toml") {
            PathBuf::from(name)
        } else {
            dir.join(format!("{name}.toml"))
        };
        if !path.is_file() || (!name.ends_with(".toml") && name.contains('/')) {
            bail!(
                "unknown machine `{name}`; known machines: {} (or give the path of a machine .toml file)",
                Self::names(dir).join(", ")
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let m: Machine = toml::from_str(&text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
            anyhow::anyhow!("{}:{line}:{col}: {}", path.display(), e.message())
        })?;
        for a in ["tcg", "kvm"] {
            if !m.accel.contains_key(a) {
                bail!("{}: missing [accel.{a}] settings", path.display());
            }
        }
        Ok(m)
    }

    pub fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        e.path()
                            .file_stem()
                            .map(|s| s.to_string_lossy().to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn accel(&self, accel: &str) -> &AccelSettings {
        &self.accel[accel]
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/machines")
    }

    #[test]
    fn shipped_machine_loads() {
        let m = Machine::load(&dir(), "x86_64").unwrap();
        assert_eq!(m.qemu, "qemu-system-x86_64");
        assert!(m.accel("tcg").boot_timeout_s > 0.0);
    }

    #[test]
    fn unknown_machine_lists_valid_ones() {
        let e = Machine::load(&dir(), "riscv").unwrap_err().to_string();
        assert!(
            e.contains("unknown machine `riscv`") && e.contains("x86_64"),
            "{e}"
        );
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
