//! `matrix.toml`: named kernels (source + patches) × named config variants
//! (fragments) × THP modes. A cell is `<kernel>-<config>-<thp>`. Cells with
//! the same kernel and config share one build (the kernel cache is keyed by
//! content); the THP mode only changes the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::cli::{ConfigBase, DeviceChoice, KernelArgs, ThpChoice};
use crate::fail::bad_input;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    pub kernel: BTreeMap<String, KernelEntry>,
    pub config: BTreeMap<String, ConfigEntry>,
    pub cells: Cells,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelEntry {
    pub source: String,
    #[serde(default)]
    pub patches: Vec<PathBuf>,
    /// The kinds of device memory its cells run on (`--device`); empty:
    /// run-scenarios' default.
    #[serde(default)]
    pub devices: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigEntry {
    /// What the fragments are merged over: `tinyconfig` (the default) or `debian`.
    #[serde(default)]
    pub base: ConfigBase,
    #[serde(default)]
    pub fragments: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cells {
    pub kernels: Vec<String>,
    pub configs: Vec<String>,
    pub thp: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Cell {
    pub name: String,
    pub kernel: String,
    pub config: String,
    pub thp: ThpChoice,
    /// What `--device` would say (empty: its default).
    pub devices: Vec<DeviceChoice>,
    /// What `--kernel`, `--patch` and `--config-fragment` would say.
    pub kernel_args: KernelArgs,
}

impl Cell {
    /// Cells with the same build key share a kernel.
    pub fn build_name(&self) -> String {
        format!("{}-{}", self.kernel, self.config)
    }
}

#[cfg(test)]
pub fn default_path() -> PathBuf {
    crate::paths::repo_root().join("matrix.toml")
}

/// Load and expand a matrix file; paths in it are relative to its directory.
pub fn load(path: &Path) -> Result<Vec<Cell>> {
    load_with(path, false)
}

/// Every kernel × config × THP mode the file defines, whether or not
/// `[cells]` lists it: `--cell 7.2-debug-always` works for a kernel the
/// default matrix leaves out.
fn load_all(path: &Path) -> Result<Vec<Cell>> {
    load_with(path, true)
}

fn load_with(path: &Path, all: bool) -> Result<Vec<Cell>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    let mut m: MatrixFile = toml::from_str(&text).map_err(|e| {
        let (line, col) = e
            .span()
            .map(|s| hmmlab_harness::machine::line_col(&text, s.start))
            .unwrap_or((1, 1));
        bad_input(format!("{}:{line}:{col}: {}", path.display(), e.message()))
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if all {
        let mut ks: Vec<String> = m.cells.kernels.clone();
        ks.extend(
            m.kernel
                .keys()
                .filter(|k| !m.cells.kernels.contains(k))
                .cloned(),
        );
        let mut cs: Vec<String> = m.cells.configs.clone();
        cs.extend(
            m.config
                .keys()
                .filter(|c| !m.cells.configs.contains(c))
                .cloned(),
        );
        m.cells.kernels = ks;
        m.cells.configs = cs;
    }
    expand(&m, &base).map_err(|e| bad_input(format!("{}: {e}", path.display())))
}

pub fn expand(m: &MatrixFile, base: &Path) -> std::result::Result<Vec<Cell>, String> {
    let mut out = Vec::new();
    for k in &m.cells.kernels {
        let ke = m.kernel.get(k).ok_or_else(|| {
            format!(
                "cells.kernels names `{k}`, but there is no [kernel.\"{k}\"]; known: {}",
                keys(&m.kernel)
            )
        })?;
        let devices = ke
            .devices
            .iter()
            .map(|d| match d.as_str() {
                "private" => Ok(DeviceChoice::Private),
                "coherent" => Ok(DeviceChoice::Coherent),
                _ => Err(format!(
                    "kernel.\"{k}\".devices: unknown kind of device memory `{d}`; use private or coherent"
                )),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for c in &m.cells.configs {
            let ce = m.config.get(c).ok_or_else(|| {
                format!(
                    "cells.configs names `{c}`, but there is no [config.{c}]; known: {}",
                    keys(&m.config)
                )
            })?;
            for t in &m.cells.thp {
                let thp = match t.as_str() {
                    "always" => ThpChoice::Always,
                    "madvise" => ThpChoice::Madvise,
                    "never" => ThpChoice::Never,
                    _ => {
                        return Err(format!(
                            "cells.thp: unknown THP mode `{t}`; use always, madvise or never"
                        ))
                    }
                };
                out.push(Cell {
                    name: format!("{k}-{c}-{t}"),
                    kernel: k.clone(),
                    config: c.clone(),
                    thp,
                    devices: devices.clone(),
                    kernel_args: KernelArgs {
                        kernel: ke.source.clone(),
                        patches: ke.patches.iter().map(|p| base.join(p)).collect(),
                        series: None,
                        fragments: ce.fragments.iter().map(|p| base.join(p)).collect(),
                        config_base: ce.base,
                        jobs: None,
                    },
                });
            }
        }
    }
    Ok(out)
}

fn keys<V>(m: &BTreeMap<String, V>) -> String {
    m.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// The cell called `name`; an unknown name lists the valid ones.
pub fn find(path: &Path, name: &str) -> Result<Cell> {
    let cells = load_all(path)?;
    cells
        .iter()
        .find(|c| c.name == name)
        .cloned()
        .ok_or_else(|| {
            bad_input(format!(
                "no cell `{name}` in {}; cells: {}",
                path.display(),
                cells
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// `{"include": [{"cell": "…"}, …]}` for a GitHub Actions `strategy.matrix`.
pub fn github_matrix(cells: &[Cell]) -> Result<String> {
    let include: Vec<_> = cells
        .iter()
        // `build` names the kernel build a cell uses, for CI caches.
        .map(|c| serde_json::json!({ "cell": c.name, "build": c.build_name() }))
        .collect();
    serde_json::to_string(&serde_json::json!({ "include": include }))
        .context("writing the matrix JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_matrix_expands_to_named_cells() {
        let cells = load(&default_path()).unwrap();
        assert_eq!(cells.len(), 18);
        assert_eq!(cells[0].name, "7.3-base-madvise");
        let kasan = cells.iter().find(|c| c.name == "6.1-kasan-always").unwrap();
        assert_eq!(kasan.kernel_args.kernel, "debian:6.1");
        assert!(kasan.kernel_args.fragments[0].ends_with("images/configs/variants/kasan.config"));
        assert!(kasan.kernel_args.fragments[0].is_file());
        // Two THP modes of one kernel and config share a build.
        let builds: std::collections::BTreeSet<String> =
            cells.iter().map(Cell::build_name).collect();
        assert_eq!(builds.len(), 9);
        let gh: serde_json::Value = serde_json::from_str(&github_matrix(&cells).unwrap()).unwrap();
        assert_eq!(gh["include"][3]["cell"], "7.3-debug-always");
        // A kernel the file defines but [cells] leaves out is still a cell.
        let c = find(&default_path(), "7.2-debug-always").unwrap();
        assert_eq!(c.kernel_args.kernel, "debian:7.2");
    }

    #[test]
    fn every_variant_fragment_is_a_config_of_the_default_matrix() {
        // A fragment under images/configs/variants/ is run as the cell of
        // its name; coverage.config is the coverage stage's own.
        let dir = default_path()
            .parent()
            .unwrap()
            .join("images/configs/variants");
        let mut names = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
            if stem == "coverage" {
                continue;
            }
            let c = find(&default_path(), &format!("7.3-{stem}-madvise"))
                .unwrap_or_else(|e| panic!("{}: no config of that name: {e:#}", path.display()));
            let fragment = c.kernel_args.fragments.last().unwrap();
            assert!(
                fragment.ends_with(format!("variants/{stem}.config")),
                "{fragment:?}"
            );
            assert!(fragment.is_file(), "{fragment:?}");
            names.push(stem);
        }
        assert!(names.iter().any(|n| n == "fault"), "{names:?}");
    }

    #[test]
    fn the_distro_config_is_a_cell_by_name_but_not_in_the_default_matrix() {
        let cells = load(&default_path()).unwrap();
        assert!(cells.iter().all(|c| c.config != "distro"));
        assert!(cells
            .iter()
            .all(|c| c.kernel_args.config_base == ConfigBase::Tinyconfig));
        let c = find(&default_path(), "7.3-distro-madvise").unwrap();
        assert_eq!(c.kernel_args.kernel, "debian:7.3");
        assert_eq!(c.kernel_args.config_base, ConfigBase::Debian);
        assert_eq!(c.thp, ThpChoice::Madvise);
        assert_eq!(c.build_name(), "7.3-distro");
        assert_eq!(c.kernel_args.fragments.len(), 1);
        assert!(c.kernel_args.fragments[0].ends_with("images/configs/variants/distro.config"));
        assert!(c.kernel_args.fragments[0].is_file());
        let e = find(&default_path(), "7.3-distro-sometimes")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("7.3-distro-madvise") && e.contains("6.12-base-always"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_config_base_names_the_line_and_the_choices() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("matrix.toml");
        std::fs::write(
            &p,
            "[kernel.\"7.3\"]\nsource = \"debian:7.3\"\n\n[config.distro]\nbase = \"fedora\"\n\
             [cells]\nkernels = [\"7.3\"]\nconfigs = [\"distro\"]\nthp = [\"always\"]\n",
        )
        .unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{}:5:8", p.display()))
                && e.contains("fedora")
                && e.contains("tinyconfig")
                && e.contains("debian"),
            "{e}"
        );
        std::fs::write(
            &p,
            "[kernel.\"7.3\"]\nsource = \"debian:7.3\"\n\n[config.distro]\nbase = \"debian\"\n\
             [cells]\nkernels = [\"7.3\"]\nconfigs = [\"distro\"]\nthp = [\"always\"]\n",
        )
        .unwrap();
        let cells = load(&p).unwrap();
        assert_eq!(cells[0].name, "7.3-distro-always");
        assert_eq!(cells[0].kernel_args.config_base, ConfigBase::Debian);
    }

    #[test]
    fn unknown_names_are_explained() {
        let m: MatrixFile = toml::from_str(
            "[kernel.a]\nsource = \"debian:6.12\"\n[config.base]\n[cells]\nkernels = [\"b\"]\nconfigs = [\"base\"]\nthp = [\"always\"]\n",
        )
        .unwrap();
        let e = expand(&m, Path::new(".")).unwrap_err();
        assert!(e.contains("`b`") && e.contains("known: a"), "{e}");
        let e = find(&default_path(), "6.12-nope-always")
            .unwrap_err()
            .to_string();
        assert!(e.contains("6.12-base-madvise"), "{e}");
    }

    #[test]
    fn a_kernel_names_the_device_memory_its_cells_run_on() {
        let text = |devices: &str| {
            format!(
                "[kernel.a]\nsource = \"debian:6.12\"\n{devices}\n[config.base]\n[cells]\nkernels = [\"a\"]\nconfigs = [\"base\"]\nthp = [\"always\"]\n"
            )
        };
        let m: MatrixFile = toml::from_str(&text("devices = [\"private\", \"coherent\"]")).unwrap();
        let cells = expand(&m, Path::new(".")).unwrap();
        assert_eq!(
            cells[0].devices,
            [DeviceChoice::Private, DeviceChoice::Coherent]
        );
        let m: MatrixFile = toml::from_str(&text("")).unwrap();
        assert!(expand(&m, Path::new(".")).unwrap()[0].devices.is_empty());
        let m: MatrixFile = toml::from_str(&text("devices = [\"cxl\"]")).unwrap();
        let e = expand(&m, Path::new(".")).unwrap_err();
        assert!(
            e.contains("kernel.\"a\".devices") && e.contains("`cxl`"),
            "{e}"
        );
    }
}
