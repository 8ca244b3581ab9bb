//! The inputs of a report: the build tree's `.gcno` files and, per scenario
//! instance, a directory of `.gcda` files laid out like the build tree
//! (`<dir>/mm/migrate_device.gcda`, or the guest's whole
//! `/sys/kernel/debug/gcov/<objtree>/…` copied as it is).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::gcov::{self, Object, ReadOptions};
use super::model::Coverage;
use super::version;

/// One scenario instance's counters.
#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    pub gcda_dir: PathBuf,
}

/// Read every instance and merge them (an instance named twice, e.g. two
/// runs, adds up).
pub fn read_all(build: &Path, instances: &[Instance], opts: &ReadOptions) -> Result<Coverage> {
    let host = version::host_gcov(&opts.gcov)?;
    let mut checked = BTreeMap::new();
    let mut all = Coverage::default();
    for inst in instances {
        let mut objects = Vec::new();
        for gcda in find_gcda(&inst.gcda_dir)? {
            let rel = gcda
                .strip_prefix(&inst.gcda_dir)
                .expect("found under the directory");
            let name = object_name(build, rel)
                .with_context(|| format!("{} (scenario {})", gcda.display(), inst.name))?;
            let gcno = build.join(&name).with_extension("gcno");
            let notes = match checked.get(&gcno) {
                Some(h) => *h,
                None => {
                    let h = version::read_header(&gcno, b"gcno")?;
                    version::check_compiler(&gcno, &h, &opts.gcov, host)?;
                    checked.insert(gcno.clone(), h);
                    h
                }
            };
            let data = version::read_header(&gcda, b"gcda")?;
            version::check_pair(&gcno, &notes, &gcda, &data)?;
            objects.push(Object { name, gcno, gcda });
        }
        if objects.is_empty() {
            bail!(
                "no .gcda files under {} (scenario {})",
                inst.gcda_dir.display(),
                inst.name
            );
        }
        all.merge(&gcov::read(&inst.name, &objects, opts)?);
    }
    for (key, file) in &mut all.files {
        file.source_sha256 = std::fs::read(opts.source.join(key))
            .ok()
            .map(|text| hmmlab_harness::identity::sha256_hex(&text));
    }
    Ok(all)
}

/// The object (`mm/migrate_device`) that `rel` (`mm/migrate_device.gcda`,
/// or debugfs's `<objtree>/mm/migrate_device.gcda`) holds the counters of.
fn object_name(build: &Path, rel: &Path) -> Result<PathBuf> {
    let name = rel.with_extension("");
    if build.join(&name).with_extension("gcno").is_file() {
        return Ok(name);
    }
    let abs = crate::paths::absolute(build);
    if let Ok(inner) = name.strip_prefix(abs.strip_prefix("/").unwrap_or(&abs)) {
        if build.join(inner).with_extension("gcno").is_file() {
            return Ok(inner.to_path_buf());
        }
    }
    bail!(
        "no {} in the build tree {}: is it the tree the counters' kernel was built in?",
        name.with_extension("gcno").display(),
        build.display()
    )
}

/// Every `*.gcda` under `dir`, sorted.
fn find_gcda(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "gcda") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
