//! `matrix --coverage`: the cells' reports merged where their covered
//! files are the same source (configs, THP modes and devices of one
//! kernel; kernels whose files did not change), into
//! `<matrix>/coverage/<kernel>/`, and the sources compared function by
//! function in `<matrix>/coverage/summary.txt`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use hmmlab_harness::report::write::write_atomic;

use super::model::Coverage;
use super::{report, table, DIR};
use crate::kernel::Kernel;
use crate::matrix::Cell;

/// Cells whose covered files have one source.
struct Group {
    releases: Vec<String>,
    cells: Vec<String>,
    tree: std::path::PathBuf,
    cov: Coverage,
}

impl Group {
    fn name(&self) -> String {
        self.releases.join("+")
    }
}

pub fn merge_cells(cells: &[Cell], kernels: &BTreeMap<String, Kernel>, dir: &Path) -> Result<()> {
    let mut groups: Vec<Group> = Vec::new();
    let mut missing = Vec::new();
    for c in cells {
        let json = hmmlab_harness::report::load::run_dirs(&dir.join(&c.name))
            .first()
            .map(|run| run.join(DIR).join("coverage.json"))
            .filter(|j| j.is_file());
        let (Some(json), Some(k)) = (json, kernels.get(&c.build_name())) else {
            missing.push(c.name.clone());
            continue;
        };
        let cov = report::load(&json)?;
        match groups.iter_mut().find(|g| same_sources(&g.cov, &cov)) {
            Some(g) => {
                g.cov.merge(&cov);
                g.cells.push(c.name.clone());
                if !g.releases.contains(&k.release) {
                    g.releases.push(k.release.clone());
                }
            }
            None => groups.push(Group {
                releases: vec![k.release.clone()],
                cells: vec![c.name.clone()],
                tree: k.tree.clone(),
                cov,
            }),
        }
    }
    let out = dir.join(DIR);
    let mut summary = String::new();
    for g in &groups {
        let at = out.join(g.name());
        report::write(&g.cov, &g.tree, &at)?;
        let _ = writeln!(
            summary,
            "{}: cells {} -> {}",
            g.name(),
            g.cells.join(", "),
            at.display()
        );
    }
    if !missing.is_empty() {
        let _ = writeln!(
            summary,
            "no coverage from cells {} (see their .log)",
            missing.join(", ")
        );
    }
    summary.push('\n');
    let columns: Vec<(String, &Coverage)> = groups.iter().map(|g| (g.name(), &g.cov)).collect();
    summary.push_str(&table::side_by_side(&columns));
    std::fs::create_dir_all(&out)?;
    write_atomic(&out.join("summary.txt"), summary.as_bytes())?;
    print!("\ncoverage:\n{summary}");
    if groups.is_empty() {
        anyhow::bail!("no cell made a coverage report");
    }
    Ok(())
}

/// Every file the two reports share has the same known source, and they
/// share at least one file.
fn same_sources(a: &Coverage, b: &Coverage) -> bool {
    a.files.keys().any(|k| b.files.contains_key(k))
        && a.files.iter().all(|(k, f)| {
            b.files
                .get(k)
                .is_none_or(|g| f.source_sha256.is_some() && f.source_sha256 == g.source_sha256)
        })
}

#[cfg(test)]
mod tests {
    use super::super::model::FileCoverage;
    use super::*;

    fn cov(sha: Option<&str>) -> Coverage {
        Coverage {
            files: [(
                "mm/migrate_device.c".to_string(),
                FileCoverage {
                    source_sha256: sha.map(String::from),
                    ..Default::default()
                },
            )]
            .into(),
        }
    }

    #[test]
    fn only_known_equal_sources_group() {
        assert!(same_sources(&cov(Some("a")), &cov(Some("a"))));
        assert!(!same_sources(&cov(Some("a")), &cov(Some("b"))));
        // Unknown sources are never assumed equal.
        assert!(!same_sources(&cov(None), &cov(Some("a"))));
        assert!(!same_sources(&cov(None), &cov(None)));
        assert!(!same_sources(&cov(Some("a")), &Coverage::default()));
    }
}
