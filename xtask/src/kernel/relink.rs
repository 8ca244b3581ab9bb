//! Kernels made by relinking: a copy of a build's object directory in
//! which some objects are replaced and kbuild's own `make bzImage` finds
//! nothing else to do but archive, link and pack the image (about 7 s for
//! the default 7.3.4 kernel on 2 cores, against about a minute for a
//! patched tree built anew).
//!
//! Two users: `mutate --run` (a mutant's object) and a `--patch` build
//! whose patches change only C files the unpatched build compiled, each
//! into its own object, none included by another object (`patched`). Every
//! other patch set takes the full build.
//!
//! What makes such a kernel the one asked for:
//! - each changed object is compiled from the changed text with the exact
//!   command kbuild saved for it (`mutate::check::Recipe`), which gives the
//!   build's own object back for the unchanged text;
//! - after make, each replaced object is still the one written (make did
//!   not rebuild it from the unpatched source);
//! - the image's banner carries a tag of its own (`KBUILD_BUILD_TIMESTAMP`)
//!   and the bzImage must carry the vmlinux just linked; the guest must
//!   then report that banner, as in every run.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use hmmlab_harness::identity::{self as verify, sha256_hex, ImageCheck};

use super::build::{Kernel, Request};
use crate::mutate::check::Recipe;

/// The bzImage inside an object directory.
pub const BZIMAGE: &str = "arch/x86/boot/bzImage";

/// A private copy of a build's object directory in which kernels are linked.
pub struct Workspace {
    pub obj: PathBuf,
    tree: PathBuf,
    release: String,
    cc: Option<PathBuf>,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// The objects (relative to `obj`) that are not the build's own, and
    /// where the build's own is.
    changed: BTreeMap<PathBuf, PathBuf>,
}

/// A kernel linked in a workspace.
pub struct Linked {
    pub check: ImageCheck,
    pub seconds: f64,
}

impl Workspace {
    /// Copy `k`'s object directory to `obj` (which must not exist); make's
    /// output goes to `log` (and `log` with extension `err`).
    pub fn create(k: &Kernel, obj: &Path, log: &Path) -> Result<Workspace> {
        let t = Instant::now();
        let out = Command::new("cp")
            .arg("-a")
            .arg(&k.obj_dir)
            .arg(obj)
            .output()
            .context("running cp")?;
        if !out.status.success() {
            bail!(
                "copying {} to {}: {}",
                k.obj_dir.display(),
                obj.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        eprintln!(
            "kernel: objects of build {} copied to {} in {:.1}s",
            k.key,
            obj.display(),
            t.elapsed().as_secs_f64()
        );
        let cache = crate::paths::cache_root();
        let stats = log.with_extension("ccache-stats");
        // The same compiler command as the build's, or kbuild would see
        // every command changed and rebuild everything.
        let (cc, env) = if super::build::which("ccache") {
            (
                Some(super::cc::install(&cache)?),
                super::build::ccache_env(&cache, &stats),
            )
        } else {
            (None, vec![])
        };
        Ok(Workspace {
            obj: obj.to_path_buf(),
            tree: k.tree.clone(),
            release: k.release.clone(),
            cc,
            env,
            log: log.to_path_buf(),
            changed: BTreeMap::new(),
        })
    }

    /// Link a kernel whose objects are the build's own but `objects`
    /// (each recipe's object, compiled from other text), with `tag` ending
    /// its banner.
    pub fn link(&mut self, objects: &[(&Recipe, Vec<u8>)], tag: &str) -> Result<Linked> {
        let t = Instant::now();
        let mut now: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
        for (recipe, _) in objects {
            now.insert(relative(recipe)?, recipe.built_object.clone());
        }
        for (rel, own) in self.changed.clone() {
            if !now.contains_key(&rel) {
                let bytes = fs::read(&own).with_context(|| format!("reading {}", own.display()))?;
                self.put(&rel, &bytes)?;
                self.changed.remove(&rel);
            }
        }
        let mut placed = vec![];
        for (recipe, bytes) in objects {
            let rel = relative(recipe)?;
            placed.push((self.put(&rel, bytes)?, sha256_hex(bytes)));
            self.changed.insert(rel, recipe.built_object.clone());
        }
        let mut cmd = Command::new("make");
        cmd.arg("-C")
            .arg(&self.tree)
            .arg(format!("O={}", self.obj.display()))
            .arg("-j2")
            .arg(format!("KBUILD_BUILD_TIMESTAMP={tag}"));
        if let Some(cc) = &self.cc {
            cmd.arg(format!("CC={}", cc.display()));
        }
        let err_log = self.log.with_extension("err");
        cmd.arg("bzImage")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(File::create(&self.log)?)
            .stderr(File::create(&err_log)?);
        hmmlab_harness::interrupt::isolate_child(&mut cmd);
        let status = cmd.status().context("running make")?;
        if !status.success() {
            let err = fs::read_to_string(&err_log).unwrap_or_default();
            let tail: Vec<&str> = err.lines().rev().take(8).collect();
            bail!(
                "make bzImage in {} failed (log {}):\n{}",
                self.obj.display(),
                err_log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        for (path, sha) in &placed {
            let after = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            if sha256_hex(&after) != *sha {
                bail!(
                    "make rebuilt {} instead of linking the object it was given: this kernel \
                     would not be the one asked for",
                    path.display()
                );
            }
        }
        let check = verify::check_image(&self.obj, &self.obj.join(BZIMAGE), &self.release)?;
        if !check.banner.ends_with(tag) {
            bail!(
                "the linked kernel's banner `{}` does not end with its tag {tag}: it is not the \
                 kernel just linked",
                check.banner
            );
        }
        Ok(Linked {
            check,
            seconds: t.elapsed().as_secs_f64(),
        })
    }

    /// Replace the object `rel` by `bytes`: a new file, newer than
    /// everything, so make relinks.
    fn put(&self, rel: &Path, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.obj.join(rel);
        let tmp = path.with_extension("o.hmmlab-tmp");
        fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

fn relative(recipe: &Recipe) -> Result<PathBuf> {
    Ok(recipe
        .built_object
        .strip_prefix(&recipe.obj_dir)
        .context("an object outside its build")?
        .to_path_buf())
}

/// The banner tag of a kernel linked for `label` (at most 64 characters
/// with the `#N SMP PREEMPT ` before it: UTS_VERSION's limit).
pub fn tag(label: &str) -> String {
    format!("hmmlab-{}", short(label))
}

/// The first 12 hex digits of the SHA-256 of `s`.
pub fn short(s: &str) -> String {
    sha256_hex(s.as_bytes())[..12].to_string()
}

/// Why a patch set cannot be relinked, or None when it can: only C files
/// (no header, Makefile, Kconfig, tools or new and deleted files).
pub fn unrelinkable(files: &[String]) -> Option<String> {
    for f in files {
        let top = f.split('/').next().unwrap_or("");
        if !f.ends_with(".c") || matches!(top, "tools" | "scripts" | "usr") {
            return Some(format!("{f} is not a C file of the kernel proper"));
        }
    }
    None
}

/// The objects of `obj` other than `own` whose kbuild dependencies name
/// `source` (a C file `#include`d elsewhere): those would need a compile
/// too.
pub fn other_users(obj: &Path, source: &Path, own: &Path) -> Vec<PathBuf> {
    let needle = source.to_string_lossy().into_owned();
    let mut out = vec![];
    let mut stack = vec![obj.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if !(name.starts_with('.') && name.ends_with(".o.cmd")) || p == own {
                continue;
            }
            if fs::read_to_string(&p).is_ok_and(|t| t.contains(&needle)) {
                out.push(p);
            }
        }
    }
    out
}

/// A `--patch` build by relinking (see the module's comment), into
/// `build_dir/obj`, when the patches allow it; Ok(None) sends the request
/// to the full build. `key` is the patched build's key.
pub fn patched(req: &Request, key: &str, build_dir: &Path, log: &Path) -> Result<Option<Kernel>> {
    use super::source::Source;
    let started = Instant::now();
    let fixed = matches!(
        req.source,
        Source::Debian(_) | Source::DebianAt(..) | Source::Tarball(_)
    );
    if req.patches.is_empty() || !req.cover.is_empty() || !fixed {
        return Ok(None);
    }
    let mut files: Vec<String> = vec![];
    for p in &req.patches {
        let text = fs::read_to_string(&p.path)
            .with_context(|| format!("reading patch {}", p.path.display()))?;
        if text.contains("\n--- /dev/null") || text.contains("\n+++ /dev/null") {
            eprintln!("kernel: the patches add or delete a file: a full build");
            return Ok(None);
        }
        for f in super::patch::touched_files(&text, p.strip) {
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    if let Some(why) = unrelinkable(&files) {
        eprintln!("kernel: {why}: a full build");
        return Ok(None);
    }
    let cache = crate::paths::cache_root();
    let pristine = req.source.pristine_tree(&cache, &req.source.identity()?)?;
    super::patch::check_first(&pristine, &req.patches)?;
    let base_req = Request {
        patches: vec![],
        ..req.clone()
    };
    let base = super::build::ensure(&base_req)?;
    let mut recipes = vec![];
    for f in &files {
        let Ok(r) = Recipe::of_build(&base.obj_dir, &base.tree, f) else {
            eprintln!("kernel: {f} is not compiled into this kernel by itself: a full build");
            return Ok(None);
        };
        let own = r
            .built_object
            .parent()
            .unwrap_or(Path::new(""))
            .join(format!(
                ".{}.cmd",
                r.built_object
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
            ));
        let users = other_users(&base.obj_dir, &base.tree.join(f), &own);
        if let Some(u) = users.first() {
            eprintln!(
                "kernel: {f} is part of another object too ({}): a full build",
                u.display()
            );
            return Ok(None);
        }
        recipes.push(r);
    }

    // The patched files alone, in a scratch tree.
    let scratch = tempfile::Builder::new()
        .prefix("relink-")
        .tempdir_in(build_dir)
        .context("creating a scratch directory")?;
    let src = scratch.path().join("src");
    for f in &files {
        let to = src.join(f);
        fs::create_dir_all(to.parent().context("no directory")?)?;
        fs::copy(pristine.join(f), &to).with_context(|| format!("copying {f}"))?;
    }
    super::patch::apply_all(&src, &req.patches)?;
    let work = scratch.path().join("work");
    fs::create_dir_all(&work)?;
    let mut objects = vec![];
    for (f, r) in files.iter().zip(&recipes) {
        let text = fs::read_to_string(src.join(f))?;
        let c = r.compile(&text, &work)?;
        let bytes = c
            .object
            .map_err(|e| anyhow::anyhow!("the patched {f} does not compile:\n{}", e.join("\n")))?;
        objects.push((r, bytes));
    }
    let obj = build_dir.join("obj");
    if obj.exists() {
        fs::remove_dir_all(&obj).with_context(|| format!("removing stale {}", obj.display()))?;
    }
    let mut ws = Workspace::create(&base, &obj, log)?;
    let linked = ws.link(&objects, &tag(key))?;
    let hmm_tests = build_dir.join("hmm-tests");
    if base.hmm_tests.is_file() {
        fs::copy(&base.hmm_tests, &hmm_tests)?;
    }
    let mut k = base.clone();
    k.key = key.to_string();
    k.patches = req
        .patches
        .iter()
        .map(|p| p.path.display().to_string())
        .collect();
    k.obj_dir = obj.clone();
    k.bzimage = obj.join(BZIMAGE);
    k.hmm_tests = hmm_tests;
    k.build_log = log.to_path_buf();
    k.build_seconds = started.elapsed().as_secs_f64();
    k.reuse = None;
    k.cached = false;
    k.banner = linked.check.banner.clone();
    k.image_check = linked.check;
    k.relinked_from = Some(base.key.clone());
    k.patched_files = super::build::patched_files(&src, &req.patches, &[])?;
    eprintln!(
        "kernel: {} relinked from build {} with the patched {} in {:.1}s",
        k.key,
        base.key,
        files.join(", "),
        k.build_seconds
    );
    Ok(Some(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_c_files_of_the_kernel_proper_are_relinked() {
        let f = |v: &[&str]| unrelinkable(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(f(&["mm/migrate_device.c", "lib/test_hmm.c"]), None);
        assert!(f(&["mm/migrate_device.c", "mm/internal.h"])
            .unwrap()
            .contains("mm/internal.h"));
        assert!(f(&["tools/testing/selftests/mm/hmm-tests.c"]).is_some());
        assert!(f(&["scripts/mod/modpost.c"]).is_some());
        assert!(f(&["mm/Makefile"]).is_some());
    }

    #[test]
    fn a_c_file_included_by_another_object_is_found_in_its_dependencies() {
        let d = tempfile::tempdir().unwrap();
        let obj = d.path();
        std::fs::create_dir_all(obj.join("mm")).unwrap();
        std::fs::create_dir_all(obj.join("lib")).unwrap();
        let src = Path::new("/src/linux/mm/x.c");
        let own = obj.join("mm/.x.o.cmd");
        std::fs::write(&own, "deps_mm/x.o := \\\n  /src/linux/mm/x.c \\\n").unwrap();
        std::fs::write(
            obj.join("mm/.y.o.cmd"),
            "deps_mm/y.o := \\\n  /src/linux/mm/y.c \\\n",
        )
        .unwrap();
        assert!(other_users(obj, src, &own).is_empty());
        let user = obj.join("lib/.z.o.cmd");
        std::fs::write(&user, "deps_lib/z.o := \\\n  /src/linux/mm/x.c \\\n").unwrap();
        assert_eq!(other_users(obj, src, &own), vec![user]);
    }

    #[test]
    fn tags_are_short_and_differ() {
        assert_eq!(tag("a").len(), "hmmlab-".len() + 12);
        assert_ne!(tag("a"), tag("b"));
    }
}
