//! Per-machine settings are data (`images/machines/<name>.toml`), not code.

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
    /// An ELF image to boot instead, through QEMU's PVH entry, when the
    /// kernel's `.config` has `CONFIG_PVH=y`: no decompressor, no
    /// real-mode setup (relative to the build directory, like
    /// `kernel_image`).
    #[serde(default)]
    pub pvh_image: Option<PathBuf>,
    pub append: Vec<String>,
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// The `/dev` nodes the guest must find at boot; one missing is an
    /// infrastructure error of the run.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Settings per accelerator: `[accel.tcg]` and `[accel.kvm]`.
    pub accel: AccelTable,
}

/// The accelerators QEMU is run with.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Tcg,
    Kvm,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One settings table per [`Accel`]; both are required.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccelTable {
    pub tcg: AccelSettings,
    pub kvm: AccelSettings,
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

    pub fn accel(&self, accel: Accel) -> &AccelSettings {
        match accel {
            Accel::Tcg => &self.accel.tcg,
            Accel::Kvm => &self.accel.kvm,
        }
    }

    /// The image QEMU boots from a build directory whose `.config` is
    /// `dotconfig`: `pvh_image` when the machine names one and the kernel
    /// has `CONFIG_PVH=y` without `CONFIG_KASAN=y`, else `kernel_image`.
    /// Relative to the build directory, with the machine file's key that
    /// names it.
    ///
    /// A KASAN kernel entered through PVH resets before its first console
    /// line (measured with the `kasan` variant of 7.3.4, 6.12.118 and
    /// 6.1.192 under TCG: the VM ends with guest-reset after 0.1 s), while
    /// its bzImage boots with the same command line and passes. Where in
    /// the PVH entry (arch/x86/platform/pvh/) it goes wrong was not pinned
    /// down, so a KASAN kernel boots its bzImage.
    pub fn boot_image(&self, dotconfig: &str) -> (&Path, &'static str) {
        let set = |sym: &str| dotconfig.lines().any(|l| l.trim() == format!("{sym}=y"));
        let pvh = set("CONFIG_PVH") && !set("CONFIG_KASAN");
        match &self.pvh_image {
            Some(p) if pvh => (p, "pvh_image"),
            _ => (&self.kernel_image, "kernel_image"),
        }
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
        assert!(m.accel(Accel::Tcg).boot_timeout_s > 0.0);
    }

    #[test]
    fn a_pvh_kernel_boots_its_elf_image_and_any_other_the_bzimage() {
        let m = Machine::load(&dir(), "x86_64").unwrap();
        let with = "CONFIG_X86_64=y\nCONFIG_PVH=y\n";
        assert_eq!(m.boot_image(with), (Path::new("vmlinux"), "pvh_image"));
        for without in ["CONFIG_X86_64=y\n# CONFIG_PVH is not set\n", ""] {
            assert_eq!(
                m.boot_image(without),
                (Path::new("arch/x86/boot/bzImage"), "kernel_image")
            );
        }
        let kasan = "CONFIG_X86_64=y\nCONFIG_PVH=y\nCONFIG_KASAN=y\n";
        assert_eq!(
            m.boot_image(kasan),
            (Path::new("arch/x86/boot/bzImage"), "kernel_image")
        );
        let bare = Machine {
            pvh_image: None,
            ..m
        };
        assert_eq!(bare.boot_image(with).1, "kernel_image");
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
    fn a_machine_without_kvm_settings_is_refused_with_its_file() {
        let t = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(dir().join("x86_64.toml")).unwrap();
        let cut = text
            .find("[accel.kvm]")
            .expect("x86_64.toml has [accel.kvm]");
        let path = t.path().join("m.toml");
        std::fs::write(&path, &text[..cut]).unwrap();
        let e = Machine::load(t.path(), path.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.toml") && e.contains("kvm"), "{e}");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
