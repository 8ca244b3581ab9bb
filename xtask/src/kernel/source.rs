//! Where a kernel tree comes from: a Debian source package or a developer's
//! own tree. A tree is never modified in place: Debian tarballs are extracted
//! into the cache; a patched tree is a private copy.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::fail::bad_input;
use crate::shell::Cmd;

/// The Debian kernel source packages hmmlab knows.
pub const DEBIAN_VERSIONS: &[&str] = &["6.12", "6.1"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `debian:6.12` → package `linux-source-6.12`.
    Debian(String),
    /// `path:DIR` → a kernel tree the developer owns.
    Path(PathBuf),
}

impl Source {
    /// A source to build from: a `path:` tree must also be buildable out of
    /// tree (not configured in place).
    pub fn parse(spec: &str) -> Result<Source> {
        let s = Source::parse_tree(spec)?;
        if let Source::Path(dir) = &s {
            refuse_configured_in_place(spec, dir)?;
        }
        Ok(s)
    }

    /// A source as given, without the build check: bisect only clones the
    /// tree, so its own in-tree build does not matter there.
    pub fn parse_tree(spec: &str) -> Result<Source> {
        if let Some(v) = spec.strip_prefix("debian:") {
            if DEBIAN_VERSIONS.contains(&v) {
                return Ok(Source::Debian(v.to_string()));
            }
            return Err(bad_input(format!(
                "--kernel {spec}: no Debian source package is known for `{v}`; known: {}",
                DEBIAN_VERSIONS
                    .iter()
                    .map(|v| format!("debian:{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if let Some(p) = spec.strip_prefix("path:") {
            let dir = crate::paths::absolute(Path::new(p));
            if !dir.join("Makefile").is_file() || !dir.join("mm").is_dir() {
                return Err(bad_input(format!(
                    "--kernel {spec}: {} does not look like a kernel tree (no Makefile and mm/); \
                     give the top directory of a Linux source checkout",
                    dir.display()
                )));
            }
            return Ok(Source::Path(dir));
        }
        Err(bad_input(format!(
            "--kernel {spec}: unknown kernel source; use debian:6.12, debian:6.1 or path:DIR"
        )))
    }

    /// Debian package that provides this source, if any.
    pub fn package(&self) -> Option<String> {
        match self {
            Source::Debian(v) => Some(format!("linux-source-{v}")),
            Source::Path(_) => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Debian(v) => format!("debian:{v}"),
            Source::Path(p) => format!("path:{}", p.display()),
        }
    }

    /// A string that changes whenever the source's content may have changed.
    /// Debian: the installed package version. Path: the git HEAD and a hash of
    /// the uncommitted diff (a tree without git is always rebuilt by make).
    pub fn identity(&self) -> Result<String> {
        match self {
            Source::Debian(v) => {
                let pkg = format!("linux-source-{v}");
                let version = Cmd::new(&["dpkg-query", "-W", "-f=${Version}", &pkg])
                    .output()
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "Debian package {pkg} is not installed; install it with: apt-get install {pkg} \
                             (or run `cargo xtask deps` as root)"
                        )
                    })?;
                Ok(format!("debian:{pkg}={}", version.trim()))
            }
            Source::Path(dir) => {
                let d = dir.to_string_lossy().to_string();
                let head = Cmd::new(&["git", "-C", &d, "rev-parse", "HEAD"]).output();
                match head {
                    Ok(head) => {
                        let status =
                            Cmd::new(&["git", "-C", &d, "status", "--porcelain", "--ignored"])
                                .output()
                                .unwrap_or_else(|_| "?".into());
                        if status.trim().is_empty() {
                            // Nothing uncommitted, untracked or ignored: the
                            // commit alone says what the tree holds.
                            return Ok(format!("path:{d}@{}+clean", head.trim()));
                        }
                        let diff = Cmd::new(&["git", "-C", &d, "diff", "HEAD"])
                            .output()
                            .unwrap_or_default();
                        Ok(format!(
                            "path:{d}@{}+{}",
                            head.trim(),
                            super::key::short_hash(diff.as_bytes())
                        ))
                    }
                    Err(_) => Ok(format!("path:{d}")),
                }
            }
        }
    }

    /// The tarball of a Debian source package.
    fn tarball(v: &str) -> PathBuf {
        PathBuf::from(format!("/usr/src/linux-source-{v}.tar.xz"))
    }

    /// A pristine tree for this source: the developer's own directory, or the
    /// Debian tarball extracted once into the cache under `src/<identity>`.
    pub fn pristine_tree(&self, cache: &Path, identity: &str) -> Result<PathBuf> {
        match self {
            Source::Path(dir) => Ok(dir.clone()),
            Source::Debian(v) => {
                let dest = cache
                    .join("src")
                    .join(super::key::short_hash(identity.as_bytes()));
                let tree = dest.join(format!("linux-source-{v}"));
                if tree.join("Makefile").is_file() {
                    return Ok(tree);
                }
                extract(&Self::tarball(v), &dest)?;
                Ok(tree)
            }
        }
    }
}

/// kbuild refuses to build out of tree from a source tree that was
/// configured or built in place; say so before any build, with what to do.
fn refuse_configured_in_place(spec: &str, dir: &Path) -> Result<()> {
    let in_tree = [".config", "include/config", "arch/x86/include/generated"]
        .iter()
        .map(|p| dir.join(p))
        .find(|p| p.exists());
    let Some(found) = in_tree else {
        return Ok(());
    };
    Err(bad_input(format!(
        "--kernel {spec}: {} has been configured or built in place ({} exists), \
         and kbuild cannot build it out of tree then. hmmlab never writes to \
         your tree, so either clean it yourself (save your .config first: \
         `make -C {d} mrproper` deletes it and every in-tree object), or give \
         hmmlab a clean worktree of the same commit: \
         `git -C {d} worktree add ../linux-hmmlab HEAD` and \
         --kernel path:<that directory>",
        dir.display(),
        found.display(),
        d = dir.display()
    )))
}

/// Extract a tarball into `dest`, atomically: into a temporary sibling first,
/// renamed into place only when complete.
pub fn extract(tarball: &Path, dest: &Path) -> Result<()> {
    if !tarball.is_file() {
        anyhow::bail!(
            "kernel source tarball {} is missing; install its package (apt-get install {})",
            tarball.display(),
            tarball
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .trim_end_matches(".tar")
        );
    }
    let parent = dest.parent().context("cache path has no parent")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    eprintln!("  extracting {} …", tarball.display());
    Cmd::new(&[
        "tar",
        "-xf",
        &tarball.to_string_lossy(),
        "-C",
        &tmp.path().to_string_lossy(),
    ])
    .output()
    .with_context(|| format!("extracting {}", tarball.display()))?;
    let tmp = tmp.keep();
    if let Err(e) = fs::rename(&tmp, dest) {
        let _ = fs::remove_dir_all(&tmp);
        if !dest.is_dir() {
            return Err(e).with_context(|| format!("moving extracted tree to {}", dest.display()));
        }
    }
    Ok(())
}

/// Copy a tree (without its .git) for patching: the developer's tree is never touched.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let tar_out = duct::cmd!("tar", "-C", from, "--exclude=.git", "-cf", "-", ".");
    tar_out
        .pipe(duct::cmd!("tar", "-C", to, "-xf", "-"))
        .run()
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_sources() {
        assert_eq!(
            Source::parse("debian:6.12").unwrap(),
            Source::Debian("6.12".into())
        );
        let e = Source::parse("debian:5.10").unwrap_err().to_string();
        assert!(e.contains("debian:6.12") && e.contains("5.10"), "{e}");
        let e = Source::parse("git:foo").unwrap_err().to_string();
        assert!(e.contains("path:DIR"), "{e}");
        let e = Source::parse("path:/nonexistent/dir")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not look like a kernel tree"), "{e}");
    }

    #[test]
    fn a_tree_configured_in_place_is_refused_with_what_to_do() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Makefile"), "").unwrap();
        std::fs::create_dir(d.path().join("mm")).unwrap();
        let spec = format!("path:{}", d.path().display());
        assert_eq!(
            Source::parse(&spec).unwrap(),
            Source::Path(d.path().to_path_buf())
        );
        for leftover in [".config", "include/config"] {
            let p = d.path().join(leftover);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "").unwrap();
            let e = Source::parse(&spec).unwrap_err().to_string();
            assert!(
                e.contains(&p.display().to_string())
                    && e.contains("mrproper")
                    && e.contains("worktree add"),
                "{e}"
            );
            std::fs::remove_file(&p).unwrap();
        }
    }
}
