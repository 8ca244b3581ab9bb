//! Where a kernel tree comes from: a Debian source package (installed on the
//! host, or fetched from any suite of the host's mirror into the cache), a
//! source tarball, or a developer's own tree. A tree is never modified in
//! place: tarballs are extracted into the cache; a patched tree is a private
//! copy.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::fail::bad_input;
use crate::shell::Cmd;

use super::archive::{self, Archive};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `debian:7.3` → package `linux-source-7.3`: the version installed on
    /// the host if there is one, else the newest one fetched into the cache,
    /// else the newest any suite of the host's Debian mirror carries.
    Debian(String),
    /// `debian:7.3=7.3.4-1~bpo13+1` → that package at exactly that version,
    /// from whichever suite carries it (reproduce lines pin it).
    DebianAt(String, String),
    /// `tarball:FILE` → a kernel source tarball (a kernel.org release, say),
    /// known by the hash of its content.
    Tarball(PathBuf),
    /// `path:DIR` → a kernel tree the developer owns, as it is now.
    Path(PathBuf),
    /// `path:DIR@REV` → that tree's commit REV (resolved to its sha when
    /// parsed), checked out in a private clone (reproduce lines pin the
    /// commit of a clean tree).
    PathAt(PathBuf, String),
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
            let (v, pin) = match v.split_once('=') {
                Some((v, pin)) => (v, Some(pin)),
                None => (v, None),
            };
            if !is_series(v) {
                return Err(bad_input(format!(
                    "--kernel {spec}: `{v}` is not a kernel series; give the one of the Debian \
                     package linux-source-SERIES, e.g. debian:6.12, debian:7.3, optionally \
                     pinned to a package version (debian:7.3=7.3.4-1~bpo13+1); \
                     `cargo xtask sources` lists what Debian's suites carry"
                )));
            }
            return Ok(match pin {
                Some(pin) if !pin.is_empty() => Source::DebianAt(v.to_string(), pin.to_string()),
                Some(_) => {
                    return Err(bad_input(format!(
                        "--kernel {spec}: no package version after `=`; give one, e.g. \
                         debian:{v}=6.12.117-1~deb12u1, or none for the newest"
                    )))
                }
                None => Source::Debian(v.to_string()),
            });
        }
        if let Some(f) = spec.strip_prefix("tarball:") {
            let file = crate::paths::absolute(Path::new(f));
            if !file.is_file() {
                return Err(bad_input(format!(
                    "--kernel {spec}: {} is not a file; give a kernel source tarball \
                     (.tar.xz, .tar.gz, .tar.bz2 or .tar), e.g. a kernel.org release",
                    file.display()
                )));
            }
            return Ok(Source::Tarball(file));
        }
        if let Some(p) = spec.strip_prefix("path:") {
            // `path:DIR@REV`, unless DIR itself has an `@` in its name.
            let (p, rev) = match p.rsplit_once('@') {
                Some((d, r)) if !Path::new(p).is_dir() && !r.is_empty() => (d, Some(r)),
                _ => (p, None),
            };
            let dir = crate::paths::absolute(Path::new(p));
            if !dir.join("Makefile").is_file() || !dir.join("mm").is_dir() {
                return Err(bad_input(format!(
                    "--kernel {spec}: {} does not look like a kernel tree (no Makefile and mm/); \
                     give the top directory of a Linux source checkout",
                    dir.display()
                )));
            }
            if let Some(rev) = rev {
                let sha = commit_of(&dir, rev).ok_or_else(|| {
                    bad_input(format!(
                        "--kernel {spec}: {rev} is not a commit of {}; give a commit, tag or \
                         branch of that git tree",
                        dir.display()
                    ))
                })?;
                return Ok(Source::PathAt(dir, sha));
            }
            return Ok(Source::Path(dir));
        }
        Err(bad_input(format!(
            "--kernel {spec}: unknown kernel source; use debian:SERIES (e.g. debian:7.3, \
             debian:6.12), tarball:FILE or path:DIR"
        )))
    }

    /// True when hmmlab owns the tree it builds (extracted or cloned into
    /// the cache), false for the developer's own directory.
    pub fn owned(&self) -> bool {
        !matches!(self, Source::Path(_))
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Debian(v) => format!("debian:{v}"),
            Source::DebianAt(v, pin) => format!("debian:{v}={pin}"),
            Source::Path(p) => format!("path:{}", p.display()),
            Source::PathAt(p, rev) => format!("path:{}@{rev}", p.display()),
            Source::Tarball(f) => format!("tarball:{}", f.display()),
        }
    }

    /// The `--kernel` spec that names exactly the source an identity was
    /// made from: the Debian package version, or the commit of a tree that
    /// was clean. None for a tree with uncommitted changes or without git,
    /// which no spec can bring back.
    pub fn pinned_spec(identity: &str) -> Option<String> {
        if let Some(rest) = identity.strip_prefix("debian:linux-source-") {
            let (v, pin) = rest.split_once('=')?;
            return Some(format!("debian:{v}={pin}"));
        }
        let rest = identity.strip_prefix("path:")?.strip_suffix("+clean")?;
        let (dir, sha) = rest.rsplit_once('@')?;
        Some(format!("path:{dir}@{sha}"))
    }

    /// A string that changes whenever the source's content may have changed.
    /// Debian: the installed package version. Path: the git HEAD and a hash of
    /// the uncommitted diff (a tree without git is always rebuilt by make).
    pub fn identity(&self) -> Result<String> {
        match self {
            Source::Debian(v) | Source::DebianAt(v, _) => {
                let pkg = format!("linux-source-{v}");
                let pin = match self {
                    Source::DebianAt(_, pin) => Some(pin.as_str()),
                    _ => None,
                };
                let version = match host_installed(&pkg) {
                    Some(installed) if pin.is_none_or(|p| p == installed) => installed,
                    _ => Archive::new(&crate::paths::cache_root()).resolve(
                        &self.describe(),
                        &pkg,
                        pin,
                    )?,
                };
                Ok(format!("debian:{pkg}={version}"))
            }
            Source::Tarball(f) => Ok(format!("tarball:sha256={}", file_hash(f)?)),
            // The same identity as a clean checkout of that commit.
            Source::PathAt(dir, sha) => Ok(format!("path:{}@{sha}+clean", dir.display())),
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

    /// A pristine tree for this source: the developer's own directory, or the
    /// Debian tarball extracted once into the cache under `src/<identity>`.
    pub fn pristine_tree(&self, cache: &Path, identity: &str) -> Result<PathBuf> {
        match self {
            Source::Path(dir) => Ok(dir.clone()),
            Source::PathAt(dir, sha) => {
                let dest = cache
                    .join("src")
                    .join(super::key::short_hash(identity.as_bytes()));
                // The clone keeps the tree's directory name, so compile
                // commands (and ccache entries) match the tree's own builds.
                let name = dir.file_name().context("the tree has no directory name")?;
                let tree = dest.join(name);
                if tree.join("Makefile").is_file() {
                    return Ok(tree);
                }
                fs::create_dir_all(&dest)?;
                // Into a temporary sibling first, so a half clone is never used.
                let tmp = dest.join(".cloning");
                let _ = fs::remove_dir_all(&tmp);
                private_clone(dir, sha, &tmp, &dest.join("clone.log"))?;
                fs::rename(&tmp, &tree)
                    .with_context(|| format!("renaming {} to {}", tmp.display(), tree.display()))?;
                Ok(tree)
            }
            Source::Debian(v) | Source::DebianAt(v, _) => {
                let dest = cache
                    .join("src")
                    .join(super::key::short_hash(identity.as_bytes()));
                let tree = dest.join(format!("linux-source-{v}"));
                if tree.join("Makefile").is_file() {
                    return Ok(tree);
                }
                let pkg = format!("linux-source-{v}");
                let version = identity
                    .rsplit_once('=')
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                let host_tarball = PathBuf::from(format!("/usr/src/{pkg}.tar.xz"));
                if host_installed(&pkg).as_deref() == Some(version) && host_tarball.is_file() {
                    extract(&host_tarball, &dest)?;
                } else {
                    let deb = Archive::new(cache).fetch(&pkg, version)?;
                    extract_with(&dest, |tmp| archive::extract_deb_tarball(&deb, &pkg, tmp))?;
                }
                Ok(tree)
            }
            Source::Tarball(f) => {
                let dest = cache
                    .join("src")
                    .join(super::key::short_hash(identity.as_bytes()));
                if !dest.is_dir() {
                    extract(f, &dest)?;
                }
                single_top_dir(&dest).with_context(|| {
                    format!(
                        "{} should hold one kernel tree (one top directory with a Makefile and mm/)",
                        f.display()
                    )
                })
            }
        }
    }
}

/// `6.12`, `7.3`: the series part of a `linux-source-SERIES` package name.
fn is_series(v: &str) -> bool {
    let mut parts = v.split('.');
    let num =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    num(parts.next()) && num(parts.next()) && parts.next().is_none()
}

/// The version of `pkg` installed on the host, if it is.
pub(crate) fn host_installed(pkg: &str) -> Option<String> {
    let out = Cmd::new(&["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", pkg])
        .output()
        .ok()?;
    // `${db:Status-Abbrev}` is three characters, "ii " when installed.
    let (status, version) = out.split_once(' ')?;
    let version = version.trim();
    (status.starts_with("ii") && !version.is_empty()).then(|| version.to_string())
}

/// SHA-256 (first 16 hex digits) of a file's content. A tarball is large
/// and read on every run, so the hash is remembered in the cache under the
/// file's path, size and modification time, and read again only when one
/// of them changes.
fn file_hash(f: &Path) -> Result<String> {
    let meta = fs::metadata(f).with_context(|| format!("reading {}", f.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let memo = crate::paths::cache_root()
        .join("tarball-hashes")
        .join(super::key::short_hash(
            format!("{}\0{}\0{mtime}", f.display(), meta.len()).as_bytes(),
        ));
    if let Ok(h) = fs::read_to_string(&memo) {
        return Ok(h);
    }
    let h = hash_content(f)?;
    if let Some(dir) = memo.parent() {
        let _ = fs::create_dir_all(dir).and_then(|_| fs::write(&memo, &h));
    }
    Ok(h)
}

fn hash_content(f: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = fs::File::open(f).with_context(|| format!("reading {}", f.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", f.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The one directory in `dir` that is a kernel tree.
fn single_top_dir(dir: &Path) -> Result<PathBuf> {
    let dirs: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Makefile").is_file() && p.join("mm").is_dir())
        .collect();
    match dirs.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no kernel tree in {}", dir.display()),
        _ => bail!("{} kernel trees in {}", dirs.len(), dir.display()),
    }
}

/// The commit `rev` names in the git tree `dir`, or None.
pub fn commit_of(dir: &Path, rev: &str) -> Option<String> {
    Cmd::new(&[
        "git",
        "-C",
        &dir.to_string_lossy(),
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{rev}^{{commit}}"),
    ])
    .output()
    .ok()
    .map(|sha| sha.trim().to_string())
}

/// A `git clone --shared` of `dir` into `into`, with commit `sha` checked
/// out detached: the developer's checkout, refs and state are never touched.
pub fn private_clone(dir: &Path, sha: &str, into: &Path, log: &Path) -> Result<()> {
    let (d, c) = (dir.to_string_lossy(), into.to_string_lossy());
    Cmd::new(&[
        "git",
        "clone",
        "--quiet",
        "--shared",
        "--no-checkout",
        &d,
        &c,
    ])
    .run_logged(log, "git clone", |_| None)?;
    Cmd::new(&["git", "-C", &c, "checkout", "--quiet", "--detach", sha]).run_logged(
        log,
        "git checkout",
        |_| None,
    )
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
        anyhow::bail!("kernel source tarball {} is missing", tarball.display());
    }
    eprintln!("  extracting {} …", tarball.display());
    extract_with(dest, |tmp| {
        Cmd::new(&[
            "tar",
            "-xf",
            &tarball.to_string_lossy(),
            "-C",
            &tmp.to_string_lossy(),
        ])
        .output()
        .map(|_| ())
        .with_context(|| format!("extracting {}", tarball.display()))
    })
}

/// Fill `dest` atomically: `fill` writes into a temporary sibling, which is
/// renamed into place only when it succeeded.
fn extract_with(dest: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = dest.parent().context("cache path has no parent")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    fill(tmp.path())?;
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
///
/// A tree hmmlab owns and never changes (an extracted tarball, with no
/// .git) is copied as hard links: a second or so and no disk instead of
/// seconds and a whole tree. That is safe because nothing writes into a
/// source tree in place: `patch` writes each file it changes anew (a new
/// inode) and the build writes only into its object directory. Where links
/// cannot be made (another file system), it falls back to a real copy.
pub fn copy_tree(from: &Path, to: &Path, owned: bool) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    if owned && !from.join(".git").exists() {
        let linked = duct::cmd!("cp", "-al", format!("{}/.", from.display()), to)
            .stderr_capture()
            .unchecked()
            .run()
            .is_ok_and(|o| o.status.success());
        if linked {
            return Ok(());
        }
        fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
        fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    }
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
        assert_eq!(
            Source::parse("debian:7.3").unwrap(),
            Source::Debian("7.3".into())
        );
        for bad in ["debian:linux-7", "debian:7", "debian:7.3.4", "debian:"] {
            let e = Source::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("not a kernel series") && e.contains("debian:7.3"),
                "{e}"
            );
        }
        let e = Source::parse("git:foo").unwrap_err().to_string();
        assert!(e.contains("path:DIR"), "{e}");
        let e = Source::parse("path:/nonexistent/dir")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not look like a kernel tree"), "{e}");
    }

    #[test]
    fn pinned_specs_name_exactly_the_source_of_an_identity() {
        assert_eq!(
            Source::pinned_spec("debian:linux-source-6.12=6.12.117-1~deb12u1").as_deref(),
            Some("debian:6.12=6.12.117-1~deb12u1")
        );
        assert_eq!(
            Source::pinned_spec("path:/src/li@nux@0123abcd+clean").as_deref(),
            Some("path:/src/li@nux@0123abcd")
        );
        // Uncommitted changes or no git: nothing can pin them.
        assert_eq!(Source::pinned_spec("path:/src/linux@0123abcd+5f5f"), None);
        assert_eq!(Source::pinned_spec("path:/src/linux"), None);
        assert_eq!(
            Source::parse("debian:6.1=6.1.192-2").unwrap(),
            Source::DebianAt("6.1".into(), "6.1.192-2".into())
        );
        let e = Source::parse("debian:6.1=").unwrap_err().to_string();
        assert!(e.contains("no package version"), "{e}");
        assert_eq!(
            Source::parse("debian:7.3=7.3~rc7-1~exp1").unwrap(),
            Source::DebianAt("7.3".into(), "7.3~rc7-1~exp1".into())
        );
    }

    #[test]
    fn the_host_installed_version_has_no_stray_space() {
        // CI installs no linux-source; dpkg itself always is.
        let v = host_installed("dpkg").expect("dpkg is installed");
        assert!(!v.is_empty() && v.trim() == v, "{v:?}");
        assert_eq!(host_installed("hmmlab-no-such-package"), None);
    }

    #[test]
    fn a_pinned_debian_version_that_no_suite_carries_lists_what_is_there() {
        // Asks the host's Debian mirror (through hmmlab's private apt state).
        let s = Source::parse("debian:6.12=0.0-not-a-version").unwrap();
        let e = s.identity().unwrap_err().to_string();
        assert!(
            e.contains("no Debian suite carries linux-source-6.12 0.0-not-a-version")
                && e.contains("there are: 6.12."),
            "{e}"
        );
        let e = Source::parse("debian:1.0")
            .unwrap()
            .identity()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no Debian suite carries linux-source-1.0") && e.contains("debian:6.12"),
            "{e}"
        );
    }

    #[test]
    fn a_patched_copy_of_an_owned_tree_never_changes_the_pristine_one() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(a.join("mm")).unwrap();
        std::fs::write(a.join("mm/f.c"), "one\ntwo\nthree\n").unwrap();
        copy_tree(&a, &b, true).unwrap();
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&a.join("mm/f.c")), ino(&b.join("mm/f.c")), "linked");
        let p = d.path().join("x.patch");
        std::fs::write(
            &p,
            "--- a/mm/f.c\n+++ b/mm/f.c\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n",
        )
        .unwrap();
        let out = std::process::Command::new("patch")
            .args(["-p1", "-d", b.to_str().unwrap(), "-i", p.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::read_to_string(b.join("mm/f.c")).unwrap(),
            "one\nTWO\nthree\n"
        );
        assert_eq!(
            std::fs::read_to_string(a.join("mm/f.c")).unwrap(),
            "one\ntwo\nthree\n"
        );
        // A developer's tree is really copied.
        let c = d.path().join("c");
        copy_tree(&a, &c, false).unwrap();
        assert_ne!(ino(&a.join("mm/f.c")), ino(&c.join("mm/f.c")));
    }

    #[test]
    fn a_tarball_is_known_by_its_content() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("linux-9.9");
        std::fs::create_dir_all(tree.join("mm")).unwrap();
        std::fs::write(tree.join("Makefile"), "x\n").unwrap();
        let tar = d.path().join("linux-9.9.tar.gz");
        Cmd::new(&[
            "tar",
            "-czf",
            tar.to_str().unwrap(),
            "-C",
            d.path().to_str().unwrap(),
            "linux-9.9",
        ])
        .output()
        .unwrap();
        let s = Source::parse(&format!("tarball:{}", tar.display())).unwrap();
        let id = s.identity().unwrap();
        assert!(id.starts_with("tarball:sha256="), "{id}");
        let cache = d.path().join("cache");
        let t = s.pristine_tree(&cache, &id).unwrap();
        assert!(
            t.starts_with(&cache) && t.ends_with("linux-9.9"),
            "{}",
            t.display()
        );
        // Same name, other content: another identity.
        std::fs::copy(&tar, d.path().join("copy.tar.gz")).unwrap();
        std::fs::write(&tar, b"not a tarball").unwrap();
        assert_ne!(s.identity().unwrap(), id);
        let e = Source::parse("tarball:/nonexistent.tar.xz")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a file"), "{e}");
    }

    #[test]
    fn a_path_at_a_commit_is_cloned_privately_at_that_commit() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("linux");
        std::fs::create_dir_all(tree.join("mm")).unwrap();
        let git = |args: &[&str]| {
            let mut v = vec![
                "git",
                "-C",
                tree.to_str().unwrap(),
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
            ];
            v.extend_from_slice(args);
            Cmd::new(&v).output().unwrap()
        };
        git(&["init", "-q"]);
        std::fs::write(tree.join("Makefile"), "one\n").unwrap();
        std::fs::write(tree.join("mm/a.c"), "").unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-qm", "one"]);
        let first = git(&["rev-parse", "HEAD"]).trim().to_string();
        std::fs::write(tree.join("Makefile"), "two\n").unwrap();
        git(&["commit", "-qam", "two"]);
        // The developer's checkout is configured in place and has moved on;
        // a pinned spec does not mind, and never touches it.
        std::fs::write(tree.join(".config"), "").unwrap();
        let s = Source::parse(&format!("path:{}@{first}", tree.display())).unwrap();
        let id = s.identity().unwrap();
        assert_eq!(id, format!("path:{}@{first}+clean", tree.display()));
        assert_eq!(Source::pinned_spec(&id), Some(s.describe()));
        let cache = d.path().join("cache");
        let t = s.pristine_tree(&cache, &id).unwrap();
        assert!(
            t.starts_with(&cache) && t.ends_with("linux"),
            "{}",
            t.display()
        );
        assert_eq!(
            std::fs::read_to_string(t.join("Makefile")).unwrap(),
            "one\n"
        );
        assert_eq!(
            std::fs::read_to_string(tree.join("Makefile")).unwrap(),
            "two\n"
        );
        let e = Source::parse(&format!("path:{}@nosuchrev", tree.display()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nosuchrev is not a commit"), "{e}");
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
