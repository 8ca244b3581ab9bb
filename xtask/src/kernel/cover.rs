//! A coverage build: `CONFIG_GCOV_KERNEL` (the `coverage` config variant)
//! and gcov instrumentation of the covered source files only, the kernel's
//! way (Documentation/dev-tools/gcov.rst): a line
//! `GCOV_PROFILE_<object>.o := y` in the Makefile of the file's directory.
//! The lines go into the build's private copy of the tree, like patches
//! (the pristine tree is never written), and the covered files are part
//! of the build key. The `.gcno` files stay in the object tree, where the
//! report reads them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::config;
use crate::fail::bad_input;

/// What every coverage build covers.
pub const DEFAULT_COVER: &str = "mm/migrate_device.c";
/// The config variant that turns gcov on, relative to the repository.
pub const FRAGMENT: &str = "images/configs/variants/coverage.config";
/// The build key's part for the covered files; a new name when the way
/// the Makefile lines are written changes.
pub const KEY_PART: &str = "cover-1";
/// Marks the lines this module adds to a Makefile.
const MARK: &str = "# hmmlab: coverage build, gcov counters for";

/// The covered files: the default, then `extra` (`--cover`), each once,
/// sorted (the list is part of the build key). Only the form is checked
/// here; whether each file exists is checked against the tree
/// (`check_sources`).
pub fn files(extra: &[String]) -> Result<Vec<String>> {
    let mut out = vec![DEFAULT_COVER.to_string()];
    let mut problems = Vec::new();
    for f in extra {
        let f = f.trim().trim_start_matches("./");
        let path = Path::new(f);
        let plain = path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain || !f.ends_with(".c") || path.parent().is_none_or(|p| p.as_os_str().is_empty()) {
            problems.push(format!(
                "--cover {f}: name a C file of the kernel tree by its path from the top of the \
                 tree, e.g. mm/migrate.c or lib/test_hmm.c"
            ));
            continue;
        }
        out.push(f.to_string());
    }
    if !problems.is_empty() {
        return Err(bad_input(problems.join("\n")));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The object a covered source compiles to, relative to the object tree,
/// without extension (`mm/migrate_device`).
pub fn object(file: &str) -> PathBuf {
    Path::new(file).with_extension("")
}

/// The counters' names the guest sends (`mm/migrate_device.gcda`).
pub fn gcda_names(cover: &[String]) -> Vec<String> {
    cover
        .iter()
        .map(|f| object(f).with_extension("gcda").display().to_string())
        .collect()
}

/// Every covered file is a file of `tree`.
pub fn check_sources(tree: &Path, cover: &[String]) -> Result<()> {
    let missing: Vec<String> = cover
        .iter()
        .filter(|f| !tree.join(f).is_file())
        .map(|f| format!("  {f}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(bad_input(format!(
        "--cover: no such file in the kernel tree {}:\n{}\nname C files of that tree by their \
         path from its top (e.g. mm/migrate.c, lib/test_hmm.c)",
        tree.display(),
        missing.join("\n")
    )))
}

/// The Makefile lines per directory: `mm` → `GCOV_PROFILE_migrate_device.o := y`.
pub fn makefile_lines(cover: &[String]) -> BTreeMap<PathBuf, Vec<String>> {
    let mut by_dir: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for f in cover {
        let obj = object(f);
        let dir = obj.parent().unwrap_or(Path::new("")).to_path_buf();
        let stem = obj.file_name().unwrap_or_default().to_string_lossy();
        by_dir
            .entry(dir)
            .or_default()
            .push(format!("GCOV_PROFILE_{stem}.o := y"));
    }
    by_dir
}

/// Add the lines to each directory's kbuild file in `tree`, a private copy
/// whose files may be hard links to the pristine tree: each changed file
/// is written anew and renamed over the link, never written through it.
/// Returns the files changed (relative to the tree).
pub fn instrument(tree: &Path, cover: &[String]) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for (dir, lines) in makefile_lines(cover) {
        // kbuild reads `Kbuild` in preference to `Makefile`.
        let file = ["Kbuild", "Makefile"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| tree.join(p).is_file())
            .ok_or_else(|| {
                bad_input(format!(
                    "--cover: {} has no Makefile or Kbuild in {}: the file is not built by kbuild",
                    dir.display(),
                    tree.display()
                ))
            })?;
        let path = tree.join(&file);
        let mut text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "\n{MARK} {}\n{}\n",
            dir.display(),
            lines.join("\n")
        ));
        let tmp = path.with_extension("hmmlab-tmp");
        fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("renaming {}", tmp.display()))?;
        changed.push(file.display().to_string());
    }
    Ok(changed)
}

/// A built kernel can count the covered files: gcov is on in its .config
/// and each covered object has its `.gcno` (so it was compiled with the
/// counters and into this kernel).
pub fn check_built(obj_dir: &Path, cover: &[String]) -> Result<()> {
    let dotconfig = fs::read_to_string(obj_dir.join(".config"))
        .with_context(|| format!("reading {}/.config", obj_dir.display()))?;
    let values = config::parse_dotconfig(&dotconfig);
    for sym in ["CONFIG_GCOV_KERNEL", "CONFIG_DEBUG_FS"] {
        if values.get(sym).map(String::as_str) != Some("y") {
            return Err(bad_input(format!(
                "this kernel ({}) has no {sym}=y, so it cannot count coverage: a coverage run \
                 builds with {FRAGMENT}; a kernel whose Kconfig lacks gcov support \
                 (kernel/gcov/Kconfig) cannot be used with --coverage",
                obj_dir.display()
            )));
        }
    }
    let missing: Vec<String> = cover
        .iter()
        .filter(|f| !obj_dir.join(object(f)).with_extension("gcno").is_file())
        .map(|f| {
            format!(
                "  {f}: no {} (is it compiled into this kernel? its Makefile line \
                 `obj-$(CONFIG_…) += {}.o` needs that symbol =y in the config)",
                object(f).with_extension("gcno").display(),
                object(f).file_name().unwrap_or_default().to_string_lossy()
            )
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(bad_input(format!(
        "the coverage build in {} has no counters for:\n{}\ncover only files built into the \
         kernel (not modules), or add the config symbol with --config-fragment",
        obj_dir.display(),
        missing.join("\n")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_default_is_always_covered_and_the_list_is_canonical() {
        assert_eq!(files(&[]).unwrap(), s(&["mm/migrate_device.c"]));
        assert_eq!(
            files(&s(&[
                "lib/test_hmm.c",
                "./mm/migrate.c",
                "mm/migrate_device.c"
            ]))
            .unwrap(),
            s(&["lib/test_hmm.c", "mm/migrate.c", "mm/migrate_device.c"])
        );
        let e = files(&s(&["migrate.c", "/abs/x.c", "mm/../x.c", "mm/x.h"])).unwrap_err();
        assert_eq!(crate::fail::exit_code(&e), hmmlab_harness::exit::BAD_INPUT);
        let e = e.to_string();
        for bad in [
            "--cover migrate.c",
            "--cover /abs/x.c",
            "mm/../x.c",
            "mm/x.h",
        ] {
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn one_makefile_line_per_object_in_its_directory() {
        let cover = s(&["lib/test_hmm.c", "mm/migrate.c", "mm/migrate_device.c"]);
        let lines = makefile_lines(&cover);
        assert_eq!(
            lines[Path::new("mm")],
            s(&[
                "GCOV_PROFILE_migrate.o := y",
                "GCOV_PROFILE_migrate_device.o := y"
            ])
        );
        assert_eq!(
            lines[Path::new("lib")],
            s(&["GCOV_PROFILE_test_hmm.o := y"])
        );
        assert_eq!(
            gcda_names(&cover),
            s(&[
                "lib/test_hmm.gcda",
                "mm/migrate.gcda",
                "mm/migrate_device.gcda"
            ])
        );
    }

    #[test]
    fn instrumenting_a_linked_copy_leaves_the_pristine_tree_alone() {
        let d = tempfile::tempdir().unwrap();
        let pristine = d.path().join("pristine");
        let copy = d.path().join("copy");
        {
            let t = &pristine;
            fs::create_dir_all(t.join("mm")).unwrap();
            fs::create_dir_all(t.join("lib")).unwrap();
            fs::write(t.join("mm/Makefile"), "obj-y += migrate_device.o").unwrap();
            fs::write(t.join("mm/migrate_device.c"), "").unwrap();
            fs::write(t.join("lib/Kbuild"), "obj-y += test_hmm.o\n").unwrap();
            fs::write(t.join("lib/Makefile"), "# not read\n").unwrap();
            fs::write(t.join("lib/test_hmm.c"), "").unwrap();
        }
        crate::kernel::source::copy_tree(&pristine, &copy, true).unwrap();
        let cover = s(&["lib/test_hmm.c", "mm/migrate_device.c"]);
        check_sources(&copy, &cover).unwrap();
        let e = check_sources(&copy, &s(&["mm/nope.c"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mm/nope.c") && e.contains("no such file"), "{e}");

        let changed = instrument(&copy, &cover).unwrap();
        assert_eq!(changed, s(&["lib/Kbuild", "mm/Makefile"]));
        let mm = fs::read_to_string(copy.join("mm/Makefile")).unwrap();
        assert!(
            mm.starts_with("obj-y += migrate_device.o\n")
                && mm.ends_with("\nGCOV_PROFILE_migrate_device.o := y\n"),
            "{mm}"
        );
        assert!(fs::read_to_string(copy.join("lib/Kbuild"))
            .unwrap()
            .contains("GCOV_PROFILE_test_hmm.o := y"));
        assert_eq!(
            fs::read_to_string(pristine.join("mm/Makefile")).unwrap(),
            "obj-y += migrate_device.o"
        );
        assert_eq!(
            fs::read_to_string(copy.join("lib/Makefile")).unwrap(),
            "# not read\n"
        );
        let ino = |p: &Path| fs::metadata(p).unwrap().ino();
        assert_ne!(
            ino(&pristine.join("mm/Makefile")),
            ino(&copy.join("mm/Makefile"))
        );
    }

    #[test]
    fn a_built_kernel_must_count_every_covered_file() {
        let d = tempfile::tempdir().unwrap();
        let obj = d.path();
        fs::create_dir_all(obj.join("mm")).unwrap();
        fs::write(
            obj.join(".config"),
            "CONFIG_DEBUG_FS=y\n# CONFIG_GCOV_KERNEL is not set\n",
        )
        .unwrap();
        let cover = s(&["mm/migrate.c", "mm/migrate_device.c"]);
        let e = check_built(obj, &cover).unwrap_err().to_string();
        assert!(e.contains("no CONFIG_GCOV_KERNEL=y"), "{e}");
        fs::write(
            obj.join(".config"),
            "CONFIG_DEBUG_FS=y\nCONFIG_GCOV_KERNEL=y\n",
        )
        .unwrap();
        fs::write(obj.join("mm/migrate_device.gcno"), "").unwrap();
        let e = check_built(obj, &cover).unwrap_err().to_string();
        assert!(
            e.contains("mm/migrate.c: no mm/migrate.gcno") && !e.contains("migrate_device.c:"),
            "{e}"
        );
        fs::write(obj.join("mm/migrate.gcno"), "").unwrap();
        check_built(obj, &cover).unwrap();
    }
}
