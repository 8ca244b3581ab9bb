//! The build cache's disk: what each kernel build, source tree and area
//! costs, when each build was last used, and least-recently-used eviction
//! under a size limit (`cargo xtask cache`, and after every new build).
//!
//! Disk use is what `du` says of the whole cache: `st_blocks` of every
//! inode, a hard-linked file counted once, where it is met first. Pristine
//! source trees are walked first, so a patched build's private copy (hard
//! links into its pristine tree) costs only its directories and the files
//! the patches rewrote.
//!
//! In use: every process that uses a build (`kernel::ensure`, cached or
//! built) writes `build/<key>/last-used` and holds a shared `flock` on it
//! until it exits; it takes that lock while it holds the build's own lock
//! (`build/<key>.lock`). Removal takes both locks exclusively, without
//! waiting, so it never removes a build a process is building or using, and
//! a process that wants the build after it was removed waits for the build
//! lock, finds no stamp and builds it again.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use hmmlab_harness::exit;

use crate::cli::{CacheAction, CacheArgs, PruneArgs};
use crate::fail::bad_input;
use crate::kernel::build::Kernel;

/// The cache's size limit when `HMMLAB_CACHE_MAX` does not set one. Measured
/// here: four extracted trees (6.1, 6.12, 7.2, 7.3) are 6.8 GB, the fetched
/// packages 1.0 GB, ccache at most `CCACHE_MAX`, and a tinyconfig build
/// about 170 MB (its objects 141 MB, a patched copy's directories 26 MB): 30
/// GiB leaves room for about 120 builds besides.
pub const DEFAULT_MAX: u64 = 30 << 30;
pub const MAX_ENV: &str = "HMMLAB_CACHE_MAX";
/// ccache's own limit (`CCACHE_MAXSIZE` of every kernel compile): twice what
/// this machine's ccache held after 35 builds (6.1, 6.12, 7.2 and 7.3
/// tinyconfig, a 7.3 distro build, 23 patched, 2 coverage and 5 bisect-step
/// builds): 0.91 GB. ccache drops its least recently used entries itself; a
/// dropped entry costs one compile.
pub const CCACHE_MAX: &str = "2G";
/// A build's last use: its modification time; a shared lock on it while used.
const LAST_USED: &str = "last-used";

/// The `last-used` files this process holds shared locks on, until it exits.
static IN_USE: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// `30G`, `500M`, `1.5T`, `4096`: bytes. Units are binary (K = 1024), an
/// optional `B` or `iB` after them; a bare number is bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(bad_size(s)),
    };
    let n: f64 = num.parse().map_err(|_| bad_size(s))?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad_size(s));
    }
    Ok((n * (1u64 << shift) as f64) as u64)
}

fn bad_size(s: &str) -> String {
    format!("`{s}` is not a size: give a number with K, M, G or T (binary units), e.g. 30G or 500M")
}

/// The limit: `HMMLAB_CACHE_MAX`, else [`DEFAULT_MAX`]; a value that is not
/// a size is bad input.
pub fn max_size() -> Result<u64> {
    match std::env::var(MAX_ENV) {
        Ok(v) if !v.trim().is_empty() => {
            parse_size(&v).map_err(|e| bad_input(format!("{MAX_ENV}={v}: {e}")))
        }
        _ => Ok(DEFAULT_MAX),
    }
}

/// Record a use of the build in `build_dir` and hold it in use until this
/// process exits. Call it while holding the build's lock.
pub fn mark_used(build_dir: &Path) -> Result<()> {
    let path = build_dir.join(LAST_USED);
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    writeln!(f, "{}", now.as_secs()).with_context(|| format!("writing {}", path.display()))?;
    f.lock_shared()
        .with_context(|| format!("locking {}", path.display()))?;
    IN_USE.lock().unwrap_or_else(|e| e.into_inner()).push(f);
    Ok(())
}

/// After a new build: remove least recently used builds (never `keep`, never
/// one in use) until the cache is under its limit. Problems are warnings:
/// the build itself succeeded.
pub fn after_build(keep: &str) {
    let cache = crate::paths::cache_root();
    let max = match max_size() {
        Ok(m) => m,
        Err(e) => return eprintln!("cache: warning: {e:#}"),
    };
    let t = std::time::Instant::now();
    let done = enforce(&cache, max, keep);
    match done {
        Ok(freed) if freed.removed > 0 => eprintln!(
            "cache: {} over its limit {}: removed {} (least recently used), freed {} in {:.1}s",
            cache.display(),
            human(max),
            freed.removed,
            human(freed.bytes),
            t.elapsed().as_secs_f64()
        ),
        Ok(freed) if freed.still_over => eprintln!(
            "cache: warning: {} is over its limit {} and nothing more can go (in use, or \
             sources, ccache and packages alone); raise {MAX_ENV} or see `cargo xtask cache`",
            cache.display(),
            human(max)
        ),
        Ok(_) => {}
        Err(e) => eprintln!("cache: warning: could not check the cache's size: {e:#}"),
    }
}

/// Remove least recently used builds (never `keep`, never one in use), then
/// unused source trees, until `cache` is at most `max`.
pub fn enforce(cache: &Path, max: u64, keep: &str) -> Result<Freed> {
    let scan = scan(cache)?;
    let plan = plan(&scan, Some(max), None, &[keep]);
    execute(cache, &scan, &plan, false)
}

/// Remove the builds of trees under `dir` (a finished bisection's clone,
/// removed with their objects): a run could never use them again. Only the
/// stamps are read, nothing is walked.
pub fn forget_builds_of(cache: &Path, dir: &Path) {
    for d in subdirs(&cache.join("build")) {
        let stamp: Option<Kernel> = fs::read(d.join("stamp.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(k) = stamp.filter(|k| k.tree.starts_with(dir)) else {
            continue;
        };
        let b = Build {
            key: name_of(&d),
            dir: d,
            objs: vec![],
            stamp: None,
            state: State::ObjectsGone,
            bytes: 0,
            last_used: UNIX_EPOCH,
            in_use: false,
        };
        if let Err(e) = remove_build(cache, &b) {
            eprintln!(
                "cache: warning: removing build {} of {}: {e:#}",
                k.key,
                dir.display()
            );
        }
    }
}

/// What a build directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A stamp and its bzImage: a run reuses it.
    Ready,
    /// A stamp whose bzImage is gone (a finished bisection's objects): a run
    /// builds it again.
    ObjectsGone,
    /// No stamp: being built, failed, interrupted, or configured only.
    Incomplete,
}

#[derive(Debug, Clone)]
pub struct Build {
    pub key: String,
    /// `build/<key>` (it may be missing when only objects are left).
    pub dir: PathBuf,
    /// Its object directories outside `dir`.
    pub objs: Vec<PathBuf>,
    pub stamp: Option<Kernel>,
    pub state: State,
    pub bytes: u64,
    pub last_used: SystemTime,
    pub in_use: bool,
}

impl Build {
    /// `debian:7.3 7.3.4`
    pub fn source(&self) -> String {
        let s = match &self.stamp {
            Some(k) => format!("{} {}", k.source, k.release),
            None => return "-".into(),
        };
        // A bisect step's clone path says little past its last components.
        let chars: Vec<char> = s.chars().collect();
        if chars.len() <= 30 {
            return s;
        }
        let tail: String = chars[chars.len() - 29..].iter().collect();
        format!("…{tail}")
    }

    /// Config base, fragments, patches, covered files, in few words.
    pub fn summary(&self) -> String {
        let Some(k) = &self.stamp else {
            return match self.state {
                _ if self.in_use => "(being built or checked)".into(),
                _ if self.dir.join("config-only").is_dir() => "(configured only)".into(),
                _ => "(no stamp: failed or interrupted)".into(),
            };
        };
        let name = |p: &String| {
            Path::new(p)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| p.clone())
        };
        let mut parts = vec![match &k.config_base {
            Some(_) => "debian config".to_string(),
            None => "tinyconfig".to_string(),
        }];
        parts.extend(k.fragments.iter().map(name));
        match k.patches.as_slice() {
            [] => {}
            [one] => parts.push(format!("patch {}", name(one))),
            [first, rest @ ..] => {
                parts.push(format!("patches {} +{}", name(first), rest.len()));
            }
        }
        if !k.cover.is_empty() {
            parts.push(format!("gcov {}", k.cover.join(",")));
        }
        if self.state == State::ObjectsGone {
            parts.push("(objects gone)".into());
        }
        parts.join(" ")
    }

    /// Worth keeping at all: a run would reuse it.
    fn useful(&self) -> bool {
        self.state == State::Ready || self.in_use
    }
}

/// A pristine source tree, `src/<hash>`.
#[derive(Debug, Clone)]
pub struct SourceTree {
    pub dir: PathBuf,
    /// The tree's directory name (`linux-source-7.3`).
    pub name: String,
    pub bytes: u64,
    /// Builds that use it: built from it, or hard-linked from it.
    pub builds: Vec<String>,
    /// The last use of its builds; without builds, when it was extracted.
    pub last_used: SystemTime,
}

/// Disk use per area.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Areas {
    pub sources: u64,
    pub builds: u64,
    pub ccache: u64,
    pub packages: u64,
    pub other: u64,
}

impl Areas {
    pub fn total(&self) -> u64 {
        self.sources + self.builds + self.ccache + self.packages + self.other
    }
}

#[derive(Debug, Clone)]
pub struct Scan {
    pub builds: Vec<Build>,
    pub sources: Vec<SourceTree>,
    pub areas: Areas,
}

/// Disk use of paths, each inode counted once across every call.
#[derive(Default)]
pub struct Du {
    seen: HashSet<(u64, u64)>,
}

impl Du {
    /// Bytes on disk (`st_blocks` × 512) of `path` and everything under
    /// it that was not counted before, leaving out paths `skip` names.
    pub fn add(&mut self, path: &Path, skip: &dyn Fn(&Path) -> bool) -> u64 {
        match fs::symlink_metadata(path) {
            Ok(m) => self.walk(path, &m, skip),
            Err(_) => 0,
        }
    }

    fn walk(&mut self, path: &Path, m: &fs::Metadata, skip: &dyn Fn(&Path) -> bool) -> u64 {
        // Directories and linked files are remembered; a file with one
        // link can only be met once.
        let id = (m.dev(), m.ino());
        if (m.is_dir() || m.nlink() > 1) && !self.seen.insert(id) {
            return 0;
        }
        let mut n = m.blocks() * 512;
        if m.is_dir() {
            for e in fs::read_dir(path).into_iter().flatten().flatten() {
                let p = e.path();
                // The entry's own metadata (fstatat in the directory, not
                // following a symlink): du's cost, not a path lookup each.
                if let (false, Ok(m)) = (skip(&p), e.metadata()) {
                    n += self.walk(&p, &m, skip);
                }
            }
        }
        n
    }
}

fn no_skip(_: &Path) -> bool {
    false
}

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| !name_of(p).starts_with('.'))
        .collect();
    v.sort();
    v
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// Is `path` locked by anyone (this process through another open file too)?
fn locked(path: &Path) -> bool {
    match File::open(path) {
        Ok(f) => f.try_lock().is_err(),
        Err(_) => false,
    }
}

/// `src/<hash>` that a build of this source identity is extracted or cloned
/// into (`Source::pristine_tree`).
fn source_dir_of(cache: &Path, identity: &str) -> PathBuf {
    cache
        .join("src")
        .join(crate::kernel::key::short_hash(identity.as_bytes()))
}

/// Look at the whole cache: every build and source tree, their disk use
/// and last use, and the areas.
pub fn scan(cache: &Path) -> Result<Scan> {
    let (src, build) = (cache.join("src"), cache.join("build"));
    let mut keys: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for d in subdirs(&build) {
        keys.entry(name_of(&d)).or_default();
    }
    let source_dirs = subdirs(&src);
    for s in &source_dirs {
        for o in subdirs(&s.join("obj")) {
            keys.entry(name_of(&o)).or_default().push(o);
        }
    }
    let mut du = Du::default();
    let mut areas = Areas::default();

    // Sources first: what a patched copy links is theirs.
    let mut sources = vec![];
    for s in &source_dirs {
        let obj = s.join("obj");
        let bytes = du.add(s, &|p: &Path| p.parent() == Some(obj.as_path()));
        areas.sources += bytes;
        let name = subdirs(s)
            .into_iter()
            .map(|p| name_of(&p))
            .find(|n| n != "obj")
            .unwrap_or_default();
        sources.push(SourceTree {
            dir: s.clone(),
            name,
            bytes,
            builds: vec![],
            last_used: mtime(s).unwrap_or(UNIX_EPOCH),
        });
    }

    let mut builds = vec![];
    for (key, mut objs) in keys {
        let dir = build.join(&key);
        let stamp: Option<Kernel> = fs::read(dir.join("stamp.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(k) = &stamp {
            if !k.obj_dir.starts_with(&dir) && k.obj_dir.is_dir() && !objs.contains(&k.obj_dir) {
                objs.push(k.obj_dir.clone());
            }
        }
        let state = match &stamp {
            None => State::Incomplete,
            Some(k) if k.bzimage.is_file() => State::Ready,
            Some(_) => State::ObjectsGone,
        };
        let mut bytes = du.add(&dir, &no_skip);
        for o in &objs {
            bytes += du.add(o, &no_skip);
        }
        areas.builds += bytes;
        let last_used = mtime(&dir.join(LAST_USED))
            .or_else(|| mtime(&dir.join("stamp.json")))
            .or_else(|| {
                std::iter::once(&dir)
                    .chain(objs.iter())
                    .filter_map(|p| mtime(p))
                    .max()
            })
            .unwrap_or(UNIX_EPOCH);
        let in_use = locked(&build.join(format!("{key}.lock"))) || locked(&dir.join(LAST_USED));
        builds.push(Build {
            key,
            dir,
            objs,
            stamp,
            state,
            bytes,
            last_used,
            in_use,
        });
    }

    for b in &builds {
        let mut refs: Vec<PathBuf> = b.objs.clone();
        if let Some(k) = &b.stamp {
            refs.push(k.tree.clone());
            refs.push(source_dir_of(cache, &k.identity));
        }
        for s in sources.iter_mut() {
            if refs.iter().any(|r| r.starts_with(&s.dir)) {
                // Its builds' last use, not when it was extracted.
                if s.builds.is_empty() {
                    s.last_used = b.last_used;
                }
                s.builds.push(b.key.clone());
                s.last_used = s.last_used.max(b.last_used);
            }
        }
    }

    areas.ccache = du.add(&cache.join("ccache"), &no_skip);
    areas.packages = du.add(&cache.join("debian"), &no_skip);
    // Everything not counted yet: bisect clones, locks, the compiler wrapper …
    areas.other = du.add(cache, &no_skip);
    // The cache directory itself and `src/`, `build/` are not an area's.
    Ok(Scan {
        builds,
        sources,
        areas,
    })
}

/// What to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub builds: Vec<String>,
    pub sources: Vec<PathBuf>,
    /// The cache's size once they are gone.
    pub after: u64,
    /// Still over the limit with everything removable removed.
    pub still_over: bool,
}

/// What to remove: every build unused since `older_than` (if given), and
/// the source trees that leaves unused; then, while the cache is over `max`
/// (if given), builds and unused source trees, least recently used first.
/// Builds a run would not reuse (objects gone, no stamp) go before anything
/// else. Never a build in use or in `keep`, never a source tree a remaining
/// build uses (built from it, or linked from it). A source tree's last use
/// is its builds' last.
pub fn plan(scan: &Scan, max: Option<u64>, older_than: Option<SystemTime>, keep: &[&str]) -> Plan {
    let mut total = scan.areas.total();
    let over = |total: u64| max.is_some_and(|m| total > m);
    let mut builds: Vec<&Build> = scan
        .builds
        .iter()
        .filter(|b| !b.in_use && !keep.contains(&b.key.as_str()))
        .collect();
    builds.sort_by_key(|b| (b.useful(), b.last_used, b.key.clone()));
    let mut sources: Vec<&SourceTree> = scan.sources.iter().collect();
    sources.sort_by_key(|s| (s.last_used, s.dir.clone()));
    let mut out = Plan::default();
    let unused = |s: &SourceTree, out: &Plan| {
        !out.sources.contains(&s.dir) && s.builds.iter().all(|k| out.builds.contains(k))
    };

    if let Some(t) = older_than {
        for b in builds.iter().filter(|b| b.last_used < t) {
            out.builds.push(b.key.clone());
            total -= b.bytes;
        }
        for s in &sources {
            if unused(s, &out) && s.last_used < t {
                out.sources.push(s.dir.clone());
                total -= s.bytes;
            }
        }
    }
    while over(total) {
        let build = builds.iter().find(|b| !out.builds.contains(&b.key));
        let source = sources.iter().find(|s| unused(s, &out));
        let take_build = match (build, source) {
            (Some(b), Some(s)) => !b.useful() || b.last_used <= s.last_used,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_build {
            let b = build.expect("chosen");
            out.builds.push(b.key.clone());
            total -= b.bytes;
        } else {
            let s = source.expect("chosen");
            out.sources.push(s.dir.clone());
            total -= s.bytes;
        }
    }
    out.after = total;
    out.still_over = over(total);
    out
}

/// What [`execute`] did.
#[derive(Debug, Default)]
pub struct Freed {
    pub removed: usize,
    pub bytes: u64,
    pub still_over: bool,
}

/// Remove what `plan` names (or only say so, `dry_run`), each line on
/// stderr. A build that came into use since the scan is left alone, and so
/// is every source tree while any build is being made or checked.
pub fn execute(cache: &Path, scan: &Scan, plan: &Plan, dry_run: bool) -> Result<Freed> {
    let mut freed = Freed {
        still_over: plan.still_over,
        ..Freed::default()
    };
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut kept: HashSet<String> = HashSet::new();
    for key in &plan.builds {
        let Some(b) = scan.builds.iter().find(|b| &b.key == key) else {
            continue;
        };
        if !dry_run && !remove_build(cache, b)? {
            eprintln!("cache: kept build {key}: a process started using it");
            kept.insert(key.clone());
            continue;
        }
        eprintln!(
            "cache: {verb} build {key} ({}, {}; {}, last used {})",
            b.source(),
            b.summary(),
            human(b.bytes),
            when(b.last_used)
        );
        freed.removed += 1;
        freed.bytes += b.bytes;
    }
    for dir in &plan.sources {
        let Some(s) = scan.sources.iter().find(|s| &s.dir == dir) else {
            continue;
        };
        if s.builds.iter().any(|k| kept.contains(k)) {
            continue;
        }
        if !dry_run {
            if let Some(k) = building(cache) {
                eprintln!(
                    "cache: kept source tree {}: build {k} is being made or checked",
                    dir.display()
                );
                continue;
            }
            fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        eprintln!(
            "cache: {verb} source tree {} ({}, {})",
            dir.display(),
            s.name,
            human(s.bytes)
        );
        freed.removed += 1;
        freed.bytes += s.bytes;
    }
    Ok(freed)
}

/// A build whose lock someone holds, if any.
fn building(cache: &Path) -> Option<String> {
    let rd = fs::read_dir(cache.join("build")).ok()?;
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "lock"))
        .find(|p| locked(p))
        .map(|p| name_of(&p.with_extension("")))
}

/// Remove one build: its stamp and `src.ok` first (a half-removed build is
/// never taken for a cached one, nor its half-removed copy for a whole
/// one), then its objects, then its directory. False when it
/// is in use. Its lock file stays: a process may be waiting on it.
fn remove_build(cache: &Path, b: &Build) -> Result<bool> {
    let lock_path = cache.join("build").join(format!("{}.lock", b.key));
    let lock =
        File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        return Ok(false);
    }
    let _in_use = match File::open(b.dir.join(LAST_USED)) {
        Ok(f) if f.try_lock().is_err() => return Ok(false),
        Ok(f) => Some(f),
        Err(_) => None,
    };
    let gone = |r: std::io::Result<()>, p: &Path| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", p.display()))
        }
        _ => Ok(()),
    };
    // First what says the rest is whole: the stamp, and a patched copy's
    // `src.ok`.
    for f in ["stamp.json", "src.ok"] {
        let p = b.dir.join(f);
        gone(fs::remove_file(&p), &p)?;
    }
    for o in &b.objs {
        gone(fs::remove_dir_all(o), o)?;
    }
    gone(fs::remove_dir_all(&b.dir), &b.dir)?;
    Ok(true)
}

/// `1.7 GiB`, `141 MiB`.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.0} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.0} KiB", b / 1024.0)
    }
}

/// `2026-12-04 17:02 UTC`; `-` for never.
pub fn when(t: SystemTime) -> String {
    let Ok(d) = t.duration_since(UNIX_EPOCH) else {
        return "-".into();
    };
    if d.is_zero() {
        return "-".into();
    }
    let (year, month, day, rem) = crate::run::civil_utc(d.as_secs());
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// `cargo xtask cache [list | prune … | remove KEY]`.
pub fn task(a: &CacheArgs) -> Result<i32> {
    let cache = crate::paths::cache_root();
    match &a.action {
        None | Some(CacheAction::List) => list(&cache, a.json),
        Some(CacheAction::Prune(p)) => prune(&cache, p),
        Some(CacheAction::Remove { key }) => remove(&cache, key),
    }
}

fn list(cache: &Path, json: bool) -> Result<i32> {
    let max = max_size()?;
    let scan = scan(cache)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&to_json(&scan, max))?);
        return Ok(exit::OK);
    }
    let mut builds: Vec<&Build> = scan.builds.iter().collect();
    builds.sort_by_key(|b| std::cmp::Reverse(b.last_used));
    println!(
        "kernel builds in {} (most recently used first):",
        cache.display()
    );
    println!(
        "{:<20}  {:<30}  {:>9}  {:<20}  {:<6}  config, patches",
        "key", "source", "disk", "last used", ""
    );
    for b in &builds {
        println!(
            "{:<20}  {:<30}  {:>9}  {:<20}  {:<6}  {}",
            b.key,
            b.source(),
            human(b.bytes),
            when(b.last_used),
            if b.in_use { "in use" } else { "" },
            b.summary()
        );
    }
    println!("\nsource trees:");
    for s in &scan.sources {
        println!(
            "{:<40}  {:<18}  {:>9}  used by {} build(s)",
            s.dir.display(),
            s.name,
            human(s.bytes),
            s.builds.len()
        );
    }
    let a = scan.areas;
    println!("\ndisk use (hard-linked files counted once):");
    for (name, n) in [
        ("sources", a.sources),
        ("builds", a.builds),
        ("ccache", a.ccache),
        ("packages", a.packages),
        ("other", a.other),
    ] {
        println!("  {name:<9} {:>9}", human(n));
    }
    println!(
        "  {:<9} {:>9}  of {} ({MAX_ENV}; ccache alone at most {CCACHE_MAX})",
        "total",
        human(a.total()),
        human(max)
    );
    Ok(exit::OK)
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn to_json(scan: &Scan, max: u64) -> serde_json::Value {
    let a = scan.areas;
    serde_json::json!({
        "builds": scan.builds.iter().map(|b| serde_json::json!({
            "key": b.key,
            "source": b.source(),
            "summary": b.summary(),
            "state": format!("{:?}", b.state),
            "bytes": b.bytes,
            "last_used": secs(b.last_used),
            "in_use": b.in_use,
            "dir": b.dir,
            "objs": b.objs,
        })).collect::<Vec<_>>(),
        "sources": scan.sources.iter().map(|s| serde_json::json!({
            "dir": s.dir,
            "name": s.name,
            "bytes": s.bytes,
            "builds": s.builds,
            "last_used": secs(s.last_used),
        })).collect::<Vec<_>>(),
        "areas": {
            "sources": a.sources,
            "builds": a.builds,
            "ccache": a.ccache,
            "packages": a.packages,
            "other": a.other,
        },
        "total": a.total(),
        "max": max,
    })
}

fn prune(cache: &Path, p: &PruneArgs) -> Result<i32> {
    let max = match &p.max_size {
        Some(s) => Some(parse_size(s).map_err(|e| bad_input(format!("--max-size {s}: {e}")))?),
        None if p.older_than.is_none() => Some(max_size()?),
        None => None,
    };
    let older_than = match p.older_than {
        Some(d) if !(d.is_finite() && d >= 0.0) => {
            return Err(bad_input(format!(
                "--older-than {d}: give a number of days, 0 or more"
            )))
        }
        Some(d) => Some(SystemTime::now() - Duration::from_secs_f64(d * 86400.0)),
        None => None,
    };
    let scan = scan(cache)?;
    let plan = plan(&scan, max, older_than, &[]);
    let freed = execute(cache, &scan, &plan, p.dry_run)?;
    println!(
        "{} {} build(s) and source tree(s), {}; the cache {} {} ({} before){}",
        if p.dry_run { "would remove" } else { "removed" },
        freed.removed,
        human(freed.bytes),
        if p.dry_run {
            "would be"
        } else {
            "is now about"
        },
        human(plan.after),
        human(scan.areas.total()),
        match max {
            Some(m) if plan.still_over => format!(
                "; still over {}: the rest is in use, sources in use, ccache or packages",
                human(m)
            ),
            _ => String::new(),
        }
    );
    Ok(exit::OK)
}

fn remove(cache: &Path, key: &str) -> Result<i32> {
    let scan = scan(cache)?;
    let found: Vec<&Build> = scan
        .builds
        .iter()
        .filter(|b| !key.is_empty() && b.key.starts_with(key))
        .collect();
    let b = match found.as_slice() {
        [one] => *one,
        [] => {
            return Err(bad_input(format!(
                "no build {key} in {}; `cargo xtask cache` lists them",
                cache.display()
            )))
        }
        more => {
            return Err(bad_input(format!(
                "{key} names {} builds ({}); give more of the key",
                more.len(),
                more.iter()
                    .map(|b| b.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    if b.in_use || !remove_build(cache, b)? {
        anyhow::bail!(
            "build {} is in use by a running hmmlab process; nothing was removed",
            b.key
        );
    }
    println!(
        "removed build {} ({}, {}; {})",
        b.key,
        b.source(),
        b.summary(),
        human(b.bytes)
    );
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units_and_bad_ones_say_what_to_give() {
        assert_eq!(parse_size("30G"), Ok(30 << 30));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("40g"), Ok(40 << 30));
        assert_eq!(parse_size("1.5T"), Ok(3 << 39));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("2GB"), Ok(2 << 30));
        assert_eq!(parse_size(" 64K "), Ok(64 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "G", "30X", "30 GBB", "-1G", "thirty", "1.2.3G", "30Gi"] {
            let e = parse_size(bad).unwrap_err();
            assert!(
                e.contains("is not a size") && e.contains("30G"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_hard_linked_file_is_counted_once_across_the_whole_cache() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        fs::write(a.join("big"), vec![1u8; 1 << 20]).unwrap();
        fs::hard_link(a.join("big"), b.join("big")).unwrap();
        fs::write(b.join("own"), vec![2u8; 64 << 10]).unwrap();
        let blocks = |p: &Path| fs::symlink_metadata(p).unwrap().blocks() * 512;
        let mut du = Du::default();
        let first = du.add(&a, &no_skip);
        assert_eq!(first, blocks(&a) + blocks(&a.join("big")));
        assert!(first >= 1 << 20, "{first}");
        // The linked file is a's; b costs its directory and its own file.
        let second = du.add(&b, &no_skip);
        assert_eq!(second, blocks(&b) + blocks(&b.join("own")));
        // Nothing is counted twice, whatever is walked again.
        assert_eq!(du.add(d.path(), &no_skip), blocks(d.path()));
        // The other way round, b pays for the linked file.
        let mut du = Du::default();
        assert_eq!(
            du.add(&b, &no_skip),
            blocks(&b) + blocks(&b.join("own")) + blocks(&b.join("big"))
        );
        assert_eq!(du.add(&a, &no_skip), blocks(&a));
    }

    fn build(key: &str, bytes: u64, age_days: u64, state: State, in_use: bool) -> Build {
        Build {
            key: key.into(),
            dir: PathBuf::from("/c/build").join(key),
            objs: vec![],
            stamp: None,
            state,
            bytes,
            last_used: SystemTime::now() - Duration::from_secs(age_days * 86400),
            in_use,
        }
    }

    fn scan_of(builds: Vec<Build>, sources: Vec<SourceTree>, other: u64) -> Scan {
        let areas = Areas {
            sources: sources.iter().map(|s| s.bytes).sum(),
            builds: builds.iter().map(|b| b.bytes).sum(),
            other,
            ..Areas::default()
        };
        Scan {
            builds,
            sources,
            areas,
        }
    }

    #[test]
    fn builds_go_least_recently_used_first_until_under_the_limit() {
        let s = scan_of(
            vec![
                build("new", 100, 1, State::Ready, false),
                build("old", 100, 9, State::Ready, false),
                build("oldest-in-use", 100, 20, State::Ready, true),
                build("mid", 100, 5, State::Ready, false),
                build("just-made", 100, 30, State::Ready, false),
            ],
            vec![],
            0,
        );
        let p = plan(&s, Some(300), None, &["just-made"]);
        assert_eq!(p.builds, ["old", "mid"]);
        assert_eq!((p.after, p.still_over), (300, false));
        // Under the limit: nothing.
        assert_eq!(plan(&s, Some(500), None, &[]).builds, Vec::<String>::new());
        // Nothing in use or kept ever goes, even if the limit stays exceeded.
        let p = plan(&s, Some(0), None, &["just-made"]);
        assert_eq!(p.builds, ["old", "mid", "new"]);
        assert!(p.still_over);
        // By age: everything older than 7 days but what is in use.
        let week = SystemTime::now() - Duration::from_secs(7 * 86400);
        assert_eq!(plan(&s, None, Some(week), &[]).builds, ["just-made", "old"]);
    }

    #[test]
    fn builds_a_run_cannot_reuse_go_before_any_that_it_can() {
        let s = scan_of(
            vec![
                build("old-ready", 100, 9, State::Ready, false),
                build("new-gone", 100, 1, State::ObjectsGone, false),
                build("new-failed", 100, 0, State::Incomplete, false),
                build("building", 100, 0, State::Incomplete, true),
            ],
            vec![],
            0,
        );
        assert_eq!(
            plan(&s, Some(200), None, &[]).builds,
            ["new-gone", "new-failed"]
        );
    }

    #[test]
    fn a_source_tree_goes_only_when_no_build_uses_it() {
        let tree = |dir: &str, bytes, builds: &[&str], age: u64| SourceTree {
            dir: PathBuf::from(dir),
            name: "linux-source-7.3".into(),
            bytes,
            builds: builds.iter().map(|s| s.to_string()).collect(),
            last_used: SystemTime::now() - Duration::from_secs(age * 86400),
        };
        let s = scan_of(
            vec![
                build("a", 100, 9, State::Ready, false),
                build("b", 100, 1, State::Ready, false),
            ],
            vec![
                tree("/c/src/used-by-a", 1000, &["a"], 9),
                tree("/c/src/used-by-b", 1000, &["b"], 1),
                tree("/c/src/unused-old", 1000, &[], 30),
                tree("/c/src/unused-new", 1000, &[], 2),
            ],
            0,
        );
        // Over by little: the least recently used thing, an unused tree.
        let p = plan(&s, Some(4150), None, &[]);
        assert_eq!(p.builds, Vec::<String>::new());
        assert_eq!(p.sources, [PathBuf::from("/c/src/unused-old")]);
        // More: a's tree is unused once a is gone, and older than the
        // other unused one; b's tree stays while b is kept.
        let p = plan(&s, Some(1000), None, &["b"]);
        assert_eq!(p.builds, ["a"]);
        assert_eq!(
            p.sources,
            [
                PathBuf::from("/c/src/unused-old"),
                PathBuf::from("/c/src/used-by-a"),
                PathBuf::from("/c/src/unused-new")
            ]
        );
        assert_eq!(p.after, 1100);
        assert!(p.still_over);
        // By age: the old build, the tree it leaves unused, the old unused
        // tree; not the recent unused one.
        let week = SystemTime::now() - Duration::from_secs(7 * 86400);
        let p = plan(&s, None, Some(week), &[]);
        assert_eq!(p.builds, ["a"]);
        assert_eq!(
            p.sources,
            [
                PathBuf::from("/c/src/unused-old"),
                PathBuf::from("/c/src/used-by-a")
            ]
        );
    }

    /// The stamp the integration test (tests/cache.rs) fabricates builds
    /// from is what `kernel::ensure` writes: a `Kernel`, serialized.
    #[test]
    fn the_cache_test_s_stamp_is_what_a_build_writes() {
        use crate::kernel::build::{PatchedFile, Reuse};
        let c = "/CACHE";
        let obj = format!("{c}/build/KEY/src/obj/KEY");
        let k = Kernel {
            key: "KEY".into(),
            source: "debian:7.3".into(),
            identity: "debian:linux-source-7.3=7.3.4-1~bpo13+1".into(),
            release: "7.3.4".into(),
            patches: vec!["/repo/patches/examples/7.3/skip-holes.patch".into()],
            fragments: vec!["/repo/images/configs/hmm.config".into()],
            config_base: None,
            cover: vec![],
            config_hash: "9cc8a448bb625a01".into(),
            compiler: "gcc (Debian 12.2.0-14+deb12u1) 12.2.0".into(),
            tree: format!("{c}/build/KEY/src/linux-source-7.3").into(),
            bzimage: format!("{obj}/arch/x86/boot/bzImage").into(),
            obj_dir: obj.into(),
            hmm_tests: format!("{c}/build/KEY/hmm-tests").into(),
            hmm_tests_error: None,
            build_log: format!("{c}/build/KEY/build.log").into(),
            build_seconds: 61.5,
            reuse: Some(Reuse {
                reused: 1116,
                compiled: 1,
            }),
            cached: false,
            banner: "Linux version 7.3.4 (root@vm) #1 SMP PREEMPT".into(),
            image_check: hmmlab_harness::identity::ImageCheck {
                banner: "Linux version 7.3.4 (root@vm) #1 SMP PREEMPT".into(),
                compression: "xz".into(),
                bzimage_sha256: "00".repeat(32),
            },
            patched_files: vec![PatchedFile {
                path: "mm/migrate_device.c".into(),
                sha256: Some("11".repeat(32)),
            }],
            relinked_from: None,
        };
        let fixture = crate::paths::repo_root().join("xtask/tests/fixtures/cache/stamp.json");
        let want = serde_json::to_string_pretty(&k).unwrap() + "\n";
        let have = fs::read_to_string(&fixture).unwrap_or_default();
        assert!(
            have == want,
            "{} is not what a build writes now; make it:\n{want}",
            fixture.display()
        );
    }

    /// A build directory as far as the cache cares: some bytes, last used
    /// `days` ago (no stamp: the LRU order is the same).
    fn fake_build(cache: &Path, key: &str, days: u64) -> PathBuf {
        let dir = cache.join("build").join(key);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("obj"), vec![7u8; 256 << 10]).unwrap();
        let f = File::create(dir.join(LAST_USED)).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(days * 86400))
            .unwrap();
        dir
    }

    #[test]
    fn a_build_this_process_uses_is_in_use_and_never_removed() {
        let d = tempfile::tempdir().unwrap();
        let used = fake_build(d.path(), "used", 9);
        fake_build(d.path(), "old", 5);
        fake_build(d.path(), "new", 1);
        mark_used(&used).unwrap();
        // mark_used is a use: now.
        let age = SystemTime::now()
            .duration_since(mtime(&used.join(LAST_USED)).unwrap())
            .unwrap_or_default();
        assert!(age < Duration::from_secs(60), "{age:?}");
        let s = scan(d.path()).unwrap();
        let in_use: Vec<(&str, bool)> = s
            .builds
            .iter()
            .map(|b| (b.key.as_str(), b.in_use))
            .collect();
        assert_eq!(in_use, [("new", false), ("old", false), ("used", true)]);
        let b = s.builds.iter().find(|b| b.key == "used").unwrap();
        assert!(!remove_build(d.path(), b).unwrap());
        assert!(used.is_dir());
        // The limit after a build: "new" was just made, "used" is in use,
        // so only "old" can go.
        let freed = enforce(d.path(), 0, "new").unwrap();
        assert_eq!(freed.removed, 1);
        assert!(freed.still_over);
        assert!(!d.path().join("build/old").exists());
        assert!(d.path().join("build/new").is_dir() && used.is_dir());
    }

    #[test]
    fn a_finished_bisection_s_builds_are_forgotten() {
        let d = tempfile::tempdir().unwrap();
        let work = d.path().join("bisect/bisect-1");
        for (key, tree) in [
            ("step1", work.join("linux")),
            ("step2", work.join("linux")),
            ("other", d.path().join("src/abc/linux-source-7.3")),
        ] {
            let dir = fake_build(d.path(), key, 1);
            let stamp = serde_json::json!({
                "key": key, "source": "path:x", "identity": "path:x@1+clean",
                "release": "6.12.0", "patches": [], "fragments": [],
                "config_hash": "", "compiler": "", "tree": tree,
                "obj_dir": tree.parent().unwrap().join("obj").join(key),
                "bzimage": "/nonexistent", "hmm_tests": "/nonexistent",
                "build_log": "/nonexistent", "build_seconds": 1.0,
            });
            fs::write(dir.join("stamp.json"), stamp.to_string()).unwrap();
        }
        forget_builds_of(d.path(), &work);
        assert!(!d.path().join("build/step1").exists());
        assert!(!d.path().join("build/step2").exists());
        assert!(d.path().join("build/other/stamp.json").is_file());
    }

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(when(UNIX_EPOCH), "-");
        assert_eq!(
            when(UNIX_EPOCH + Duration::from_secs(1_796_403_738)),
            "2026-12-04 17:02 UTC"
        );
        assert_eq!(
            when(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29 00:00 UTC"
        );
    }
}
