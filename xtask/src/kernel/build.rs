//! Build a kernel out of tree in the cache, keyed by a content hash of
//! everything that decides its bytes. Same inputs again: no rebuild.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::config::{self, Setting};
use super::cover;
use super::distro::{self, DebianConfig};
use super::key::{short_hash, KeyBuilder};
use super::objects;
use super::patch::{self, Patch};
use super::selftest;
use super::source::{self, Source};
use crate::cli::{ConfigBase, KernelArgs};
use crate::shell::{Cmd, Count};
use hmmlab_harness::identity as verify;

/// Bump when the way kernels are built changes, so old cache entries are not reused.
const STAGE_VERSION: &str = "hmmlab-kernel-4";
const ARCH: &str = "x86_64";

/// What to build.
#[derive(Debug, Clone)]
pub struct Request {
    pub source: Source,
    pub patches: Vec<Patch>,
    pub fragments: Vec<PathBuf>,
    /// What the fragments are merged over.
    pub base: ConfigBase,
    /// A coverage build: the source files compiled with gcov counters
    /// (`cover`); empty for every other build.
    pub cover: Vec<String>,
    pub jobs: usize,
}

impl Request {
    pub fn from_args(a: &KernelArgs) -> Result<Request> {
        let repo = crate::paths::repo_root();
        Ok(Request {
            source: Source::parse(&a.kernel)?,
            patches: patch::collect(a.series.as_deref(), &a.patches)?,
            fragments: config::fragment_files(&repo, &a.fragments)?,
            base: a.config_base,
            cover: vec![],
            jobs: a.jobs.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            }),
        })
    }

    /// The coverage build of this request: the `coverage` config variant
    /// over its fragments, and gcov counters in `cover::DEFAULT_COVER`
    /// and each of `extra` (`--cover`).
    pub fn with_coverage(mut self, extra: &[String]) -> Result<Request> {
        self.cover = cover::files(extra)?;
        let fragment = crate::paths::repo_root().join(cover::FRAGMENT);
        if !self.fragments.contains(&fragment) {
            self.fragments.push(fragment);
        }
        Ok(self)
    }
}

/// A built kernel, as recorded in the cache's `stamp.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kernel {
    pub key: String,
    /// `debian:6.12` or `path:/…`.
    pub source: String,
    /// Package version or git state the key was made from.
    pub identity: String,
    /// `make kernelrelease`.
    pub release: String,
    pub patches: Vec<String>,
    pub fragments: Vec<String>,
    /// The configuration the fragments were merged over, when it is not
    /// tinyconfig (`debian: config.amd64_none_amd64 of linux-config-7.3 …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_base: Option<String>,
    /// A coverage build: the source files compiled with gcov counters,
    /// whose `.gcno` files are in `obj_dir`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cover: Vec<String>,
    /// Short hash of the final .config.
    pub config_hash: String,
    pub compiler: String,
    /// The (possibly patched) source tree the kernel was built from.
    pub tree: PathBuf,
    pub obj_dir: PathBuf,
    pub bzimage: PathBuf,
    pub hmm_tests: PathBuf,
    /// Why hmm-tests could not be built from this tree, if it could not;
    /// the kselftest scenario is then skipped with this reason.
    #[serde(default)]
    pub hmm_tests_error: Option<String>,
    pub build_log: PathBuf,
    pub build_seconds: f64,
    /// How many compiles of this build ccache answered from earlier builds
    /// (another config or patch set of the same source); None without ccache.
    #[serde(default)]
    pub reuse: Option<Reuse>,
    /// True when this request was answered from the cache.
    #[serde(default)]
    pub cached: bool,
    /// The `linux_banner` of the built vmlinux (release, build number,
    /// build time): the bzImage was checked to carry it before every boot,
    /// and the guest must report it (`verify`).
    #[serde(default)]
    pub banner: String,
    /// The bzImage check of this use of the build.
    #[serde(default)]
    pub image_check: verify::ImageCheck,
    /// Each file the patches change, with the SHA-256 of its content in the
    /// tree that was built.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patched_files: Vec<PatchedFile>,
    /// A patched kernel made by relinking this build (key) with the
    /// patched files' objects (`relink`), not built from a patched tree;
    /// `tree` is then the unpatched tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relinked_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchedFile {
    pub path: String,
    /// None: the patches delete it.
    pub sha256: Option<String>,
}

impl Kernel {
    pub fn uapi_header(&self) -> PathBuf {
        self.tree.join("lib/test_hmm_uapi.h")
    }
}

/// Build the kernel, or return the cached build for the same inputs.
pub fn ensure(req: &Request) -> Result<Kernel> {
    let started = Instant::now();
    let cache = crate::paths::cache_root();
    // A limit that is not a size is bad input before anything is built.
    crate::cache::max_size()?;
    let identity = req.source.identity()?;
    let compiler = compiler_version()?;
    let base = Base::resolve(req, &identity)?;
    let (key, settings) = build_key(req, &identity, &compiler, &base)?;
    if !req.cover.is_empty() {
        // Before anything is made for this key: a file that is not there is
        // the user's to fix.
        cover::check_sources(&req.source.pristine_tree(&cache, &identity)?, &req.cover)?;
    }

    let build_dir = cache.join("build").join(&key);
    fs::create_dir_all(&build_dir).with_context(|| format!("creating {}", build_dir.display()))?;
    let lock = lock_dir(&build_dir)?;
    // Again under the lock: the cache's limit may have removed the build
    // while this process waited for it (crate::cache).
    fs::create_dir_all(&build_dir).with_context(|| format!("creating {}", build_dir.display()))?;
    let stamp = build_dir.join("stamp.json");
    if let Some(k) = cached(req, &identity, &stamp, &build_dir, started)? {
        crate::cache::mark_used(&build_dir)?;
        return Ok(k);
    }

    crate::preflight::disk_space(&cache)?;
    let log = build_dir.join("build.log");
    File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    eprintln!(
        "kernel: building {} (key {key}); log: {}",
        req.source.describe(),
        log.display()
    );
    if let Some(k) = super::relink::patched(req, &key, &build_dir, &log)? {
        write_atomic(&stamp, &serde_json::to_vec_pretty(&k)?)?;
        crate::cache::mark_used(&build_dir)?;
        drop(lock);
        crate::cache::after_build(&key);
        return Ok(k);
    }
    let tree = prepare_tree(req, &cache, &identity, &build_dir)?;
    let obj = obj_dir(&req.source, &tree, &build_dir, &key);
    fs::create_dir_all(&obj)?;

    configure(&tree, &obj, &base, &req.fragments, &settings, &log)?;
    let config_text = fs::read(obj.join(".config")).context("reading the final .config")?;
    let config_hash = short_hash(&config_text);
    let reuse = make_bzimage(req, &tree, &obj, &cache, &build_dir, &config_hash, &log)?;
    let release = kernel_release(&tree, &obj)?;
    let hmm_tests_error = hmm_tests(&tree, &obj, &build_dir);

    let mut k = Kernel {
        key: key.clone(),
        source: req.source.describe(),
        identity,
        release,
        patches: req
            .patches
            .iter()
            .map(|p| p.path.display().to_string())
            .collect(),
        fragments: req
            .fragments
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        config_base: base.describe(),
        cover: req.cover.clone(),
        config_hash,
        compiler,
        tree,
        bzimage: obj.join("arch/x86/boot/bzImage"),
        obj_dir: obj,
        hmm_tests: build_dir.join("hmm-tests"),
        hmm_tests_error,
        build_log: log,
        build_seconds: started.elapsed().as_secs_f64(),
        reuse,
        cached: false,
        banner: String::new(),
        image_check: Default::default(),
        patched_files: vec![],
        relinked_from: None,
    };
    if !k.bzimage.is_file() {
        bail!(
            "make finished but {} is missing; see {}",
            k.bzimage.display(),
            k.build_log.display()
        );
    }
    k.patched_files = patched_files(&k.tree, &req.patches, &req.cover)?;
    check_image(&mut k, &build_dir)?;
    write_atomic(&stamp, &serde_json::to_vec_pretty(&k)?)?;
    crate::cache::mark_used(&build_dir)?;
    drop(lock);
    // In use by this process from here on, so never removed by this.
    crate::cache::after_build(&key);
    eprintln!(
        "kernel: {} {} ready in {:.0}s",
        k.source, k.release, k.build_seconds
    );
    Ok(k)
}

/// A configured kernel that was not built (`cargo xtask kernel --config-only`).
#[derive(Debug, Clone, Serialize)]
pub struct Configured {
    pub key: String,
    pub source: String,
    pub identity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_base: Option<String>,
    pub fragments: Vec<String>,
    /// The final .config.
    pub config: PathBuf,
    pub log: PathBuf,
}

/// Configure the kernel a build of `req` would compile and compile
/// nothing: the .config, checked as a build checks it. It is made in a
/// directory of its own (`<build>/config-only`), so a build's object
/// directory, and the timestamps make goes by, are never touched.
pub fn configure_only(req: &Request) -> Result<Configured> {
    let cache = crate::paths::cache_root();
    let identity = req.source.identity()?;
    let compiler = compiler_version()?;
    let base = Base::resolve(req, &identity)?;
    let (key, settings) = build_key(req, &identity, &compiler, &base)?;
    let build_dir = cache.join("build").join(&key);
    fs::create_dir_all(&build_dir).with_context(|| format!("creating {}", build_dir.display()))?;
    let _lock = lock_dir(&build_dir)?;
    fs::create_dir_all(&build_dir).with_context(|| format!("creating {}", build_dir.display()))?;
    let log = build_dir.join("config.log");
    File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let tree = prepare_tree(req, &cache, &identity, &build_dir)?;
    let obj = build_dir.join("config-only");
    fs::create_dir_all(&obj).with_context(|| format!("creating {}", obj.display()))?;
    configure(&tree, &obj, &base, &req.fragments, &settings, &log)?;
    Ok(Configured {
        key,
        source: req.source.describe(),
        identity,
        config_base: base.describe(),
        fragments: req
            .fragments
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        config: obj.join(".config"),
        log,
    })
}

/// What the fragments of a build are merged over, resolved.
enum Base {
    Tinyconfig,
    Debian(DebianConfig),
}

impl Base {
    fn resolve(req: &Request, identity: &str) -> Result<Base> {
        Ok(match req.base {
            ConfigBase::Tinyconfig => Base::Tinyconfig,
            ConfigBase::Debian => {
                Base::Debian(distro::for_identity(identity, &req.source.describe())?)
            }
        })
    }

    /// For the build record; None for tinyconfig, whose records never said.
    fn describe(&self) -> Option<String> {
        match self {
            Base::Tinyconfig => None,
            Base::Debian(d) => Some(d.describe()),
        }
    }
}

/// The cache key of a build (stage version, arch, source identity,
/// compiler, each patch, each fragment, a base other than tinyconfig,
/// the covered files of a coverage build) and the fragments' settings. A
/// tinyconfig build without covered files adds nothing for either, so its
/// key is the one it had before there was a choice.
fn build_key(
    req: &Request,
    identity: &str,
    compiler: &str,
    base: &Base,
) -> Result<(String, Vec<Setting>)> {
    let mut settings: Vec<Setting> = Vec::new();
    let mut key = KeyBuilder::default();
    key.add("stage", STAGE_VERSION.as_bytes());
    key.add("arch", ARCH.as_bytes());
    key.add("source", identity.as_bytes());
    key.add("compiler", compiler.as_bytes());
    for p in &req.patches {
        let text =
            fs::read(&p.path).with_context(|| format!("reading patch {}", p.path.display()))?;
        key.add(&format!("patch -p{}", p.strip), &text);
    }
    for f in &req.fragments {
        let text = fs::read_to_string(f)
            .with_context(|| format!("reading config fragment {}", f.display()))?;
        settings.extend(config::parse_fragment(f, &text)?);
        key.add("fragment", text.as_bytes());
    }
    match base {
        Base::Tinyconfig => {}
        // The configuration itself, as the build starts from it: another
        // Debian revision with the same settings shares the build.
        Base::Debian(d) => key.add("config-base debian", d.text.as_bytes()),
    }
    // Only a coverage build has this part: every other key stays as it was.
    if !req.cover.is_empty() {
        key.add(cover::KEY_PART, req.cover.join("\n").as_bytes());
    }
    Ok((key.finish(), settings))
}

/// The cached build of this key, checked, when it can be used as it is.
/// A developer's tree may change under the same key (edits outside git),
/// so it goes through make, which is incremental, unless git says the tree
/// is exactly its commit.
fn cached(
    req: &Request,
    identity: &str,
    stamp: &Path,
    build_dir: &Path,
    started: Instant,
) -> Result<Option<Kernel>> {
    let fixed = matches!(
        req.source,
        Source::Debian(_) | Source::DebianAt(..) | Source::Tarball(_)
    ) || identity.ends_with("+clean");
    let Some(mut k) = read_stamp(stamp).filter(|_| fixed) else {
        return Ok(None);
    };
    if !k.bzimage.is_file() || !(k.hmm_tests.is_file() || k.hmm_tests_error.is_some()) {
        return Ok(None);
    }
    k.cached = true;
    check_image(&mut k, build_dir)?;
    if let Some(why) = &k.hmm_tests_error {
        eprintln!("kernel: warning: {why}\n  the kselftest scenario will be skipped");
    }
    eprintln!(
        "kernel: {} {} (key {}) cached, decided in {:.2}s",
        k.source,
        k.release,
        k.key,
        started.elapsed().as_secs_f64()
    );
    Ok(Some(k))
}

/// `make bzImage` in `obj`, through ccache when there is one; how much
/// ccache reused. Its progress counts the objects made, against the count
/// of the last build of the same configuration (`objects`).
fn make_bzimage(
    req: &Request,
    tree: &Path,
    obj: &Path,
    cache: &Path,
    build_dir: &Path,
    config_hash: &str,
    log: &Path,
) -> Result<Option<Reuse>> {
    let mut make = vec![
        "make".to_string(),
        "-C".into(),
        tree.to_string_lossy().into(),
        format!("O={}", obj.display()),
        format!("-j{}", req.jobs.max(1)),
    ];
    let stats_log = build_dir.join("ccache-stats.log");
    let _ = fs::remove_file(&stats_log);
    let ccache = which("ccache");
    let mut cmd_env = vec![];
    if ccache {
        // ccache, except for compiles that `.incbin` a file it cannot
        // see (see cc.rs): those always compile.
        let wrapper = super::cc::install(cache)?;
        make.push(format!("CC={}", wrapper.display()));
        cmd_env = ccache_env(cache, &stats_log);
    }
    make.push("bzImage".into());
    let mut cmd = Cmd::new(&make);
    for (k, v) in &cmd_env {
        cmd = cmd.env(k, v);
    }
    let scratch = objects::from_scratch(obj);
    let count = Count {
        counts: objects::is_object,
        unit: "objects",
        expected: scratch
            .then(|| objects::expected(&cache.join("build"), config_hash))
            .flatten(),
    };
    let t = Instant::now();
    let made = cmd.run_counted(log, "make bzImage", make_progress, count)?;
    if scratch {
        if let Err(e) = objects::record(build_dir, config_hash, made) {
            eprintln!("kernel: warning: the count of objects was not kept: {e:#}");
        }
    }
    let reuse = ccache
        .then(|| fs::read_to_string(&stats_log).ok())
        .flatten()
        .map(|t| Reuse::from_stats_log(&t));
    match &reuse {
        Some(r) => eprintln!(
            "kernel: bzImage built in {:.0}s; {}",
            t.elapsed().as_secs_f64(),
            r.describe()
        ),
        None => eprintln!("kernel: bzImage built in {:.0}s", t.elapsed().as_secs_f64()),
    }
    Ok(reuse)
}

/// The environment of a kernel compile through `hmmlab-cc` and ccache.
pub(crate) fn ccache_env(cache: &Path, stats_log: &Path) -> Vec<(String, String)> {
    let path = |p: &Path| p.to_string_lossy().to_string();
    vec![
        ("HMMLAB_REAL_CC".into(), "gcc".into()),
        ("CCACHE_DIR".into(), path(&cache.join("ccache"))),
        // Paths inside the cache become relative, so builds of different keys
        // (another config, a patched copy) share compiled objects.
        ("CCACHE_BASEDIR".into(), path(cache)),
        ("CCACHE_NOHASHDIR".into(), "1".into()),
        // Depend mode takes the dependencies from the compiler's own -MMD
        // output instead of running the preprocessor a second time on a
        // miss; the inode cache remembers header hashes across compiles;
        // no compression. Measured on a cold 7.3 build (2 cores): make
        // 320 s with ccache's defaults, 261 s with these, 230 s without
        // ccache; patched rebuilds still reuse 99% of the compiles.
        ("CCACHE_DEPEND".into(), "1".into()),
        ("CCACHE_INODECACHE".into(), "1".into()),
        ("CCACHE_NOCOMPRESS".into(), "1".into()),
        // Its own limit, inside the cache's (see crate::cache::CCACHE_MAX).
        ("CCACHE_MAXSIZE".into(), crate::cache::CCACHE_MAX.into()),
        // Per-build counters, so a build says how much it reused.
        ("CCACHE_STATSLOG".into(), path(stats_log)),
    ]
}

/// `make kernelrelease` of the configured build.
fn kernel_release(tree: &Path, obj: &Path) -> Result<String> {
    Ok(Cmd::new(&[
        "make",
        "-s",
        "-C",
        &tree.to_string_lossy(),
        &format!("O={}", obj.display()),
        "kernelrelease",
    ])
    .output()
    .context("asking make for the kernel release")?
    .trim()
    .lines()
    .last()
    .unwrap_or("")
    .to_string())
}

/// Build hmm-tests into `build_dir`; why it did not build, if it did not.
fn hmm_tests(tree: &Path, obj: &Path, build_dir: &Path) -> Option<String> {
    let e = selftest::build_hmm_tests(tree, obj, build_dir).err()?;
    let full = format!("{e:#}");
    let why = format!(
        "hmm-tests did not build from this tree ({}); see {}",
        // The compiler's first error, else the first line.
        full.lines()
            .find(|l| l.contains("error:") || l.contains("undefined reference"))
            .or_else(|| full.lines().next())
            .unwrap_or("")
            .trim(),
        build_dir.join("hmm-tests.log").display()
    );
    eprintln!("kernel: warning: {why}\n{full}\n  the kselftest scenario will be skipped");
    Some(why)
}

/// Check that the bzImage carries this build's vmlinux (`verify`), and
/// record its banner; an error names the build and what to do.
fn check_image(k: &mut Kernel, build_dir: &Path) -> Result<()> {
    let t = Instant::now();
    match verify::check_image(&k.obj_dir, &k.bzimage, &k.release) {
        Ok(c) => {
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "kernel: bzImage checked in {secs:.2}s: it carries this build's vmlinux ({} payload)",
                c.compression
            );
            k.banner = c.banner.clone();
            k.image_check = c;
            Ok(())
        }
        Err(e) => Err(e.context(format!(
            "kernel build {} ({} {}): the bzImage is not the kernel that was built, so nothing \
             was booted; remove {} and {} and run again to rebuild it",
            k.key,
            k.source,
            k.release,
            build_dir.display(),
            k.obj_dir.display()
        ))),
    }
}

/// The SHA-256 of each file the patches (and a coverage build's Makefile
/// lines) change, in the tree that was built.
pub(crate) fn patched_files(
    tree: &Path,
    patches: &[Patch],
    covered: &[String],
) -> Result<Vec<PatchedFile>> {
    let mut out: Vec<PatchedFile> = Vec::new();
    for p in patches {
        let text = fs::read_to_string(&p.path)
            .with_context(|| format!("reading patch {}", p.path.display()))?;
        for path in patch::touched_files(&text, p.strip) {
            if out.iter().any(|f| f.path == path) {
                continue;
            }
            let sha256 = fs::read(tree.join(&path))
                .ok()
                .map(|b| verify::sha256_hex(&b));
            out.push(PatchedFile { path, sha256 });
        }
    }
    for dir in cover::makefile_lines(covered).into_keys() {
        for name in ["Kbuild", "Makefile"] {
            let path = dir.join(name);
            if let Ok(b) = fs::read(tree.join(&path)) {
                let path = path.display().to_string();
                if !out.iter().any(|f| f.path == path) {
                    out.push(PatchedFile {
                        path,
                        sha256: Some(verify::sha256_hex(&b)),
                    });
                }
                break;
            }
        }
    }
    Ok(out)
}

/// Compiles of one build: reused from ccache, or compiled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reuse {
    pub reused: u64,
    pub compiled: u64,
}

impl Reuse {
    /// Count ccache's per-call stats log (CCACHE_STATSLOG): one `# <file>`
    /// header per call, then its counters, one per line.
    pub fn from_stats_log(text: &str) -> Reuse {
        let mut r = Reuse::default();
        for line in text.lines() {
            match line.trim() {
                "direct_cache_hit" | "preprocessed_cache_hit" => r.reused += 1,
                "cache_miss" => r.compiled += 1,
                _ => {}
            }
        }
        r
    }

    pub fn describe(&self) -> String {
        let all = self.reused + self.compiled;
        if all == 0 {
            return "no C compiles needed".to_string();
        }
        format!(
            "{} of {} C compiles reused from earlier builds ({:.0}%), {} compiled",
            self.reused,
            all,
            100.0 * self.reused as f64 / all as f64,
            self.compiled
        )
    }
}

/// Where the objects go. For trees hmmlab owns: `<tree-parent>/obj/<key>`,
/// so that the source path relative to the objects is `../../<tree-name>`
/// for pristine and patched trees alike; with CCACHE_BASEDIR, compile
/// commands then match across keys and ccache shares what did not change.
fn obj_dir(source: &Source, tree: &Path, build_dir: &Path, key: &str) -> PathBuf {
    // A developer's own tree keeps nothing beside it; a tree hmmlab owns
    // (Debian's, a patched copy, a bisect clone) gets the shared layout.
    let owned = source.owned() || tree.starts_with(crate::paths::cache_root());
    match tree.parent() {
        Some(parent) if owned => parent.join("obj").join(key),
        _ => build_dir.join("obj"),
    }
}

/// The tree to build from: pristine when there are no patches and no
/// covered files, else a private copy (under the build directory) with the
/// patches applied, then a coverage build's Makefile lines added.
fn prepare_tree(req: &Request, cache: &Path, identity: &str, build_dir: &Path) -> Result<PathBuf> {
    let pristine = req.source.pristine_tree(cache, identity)?;
    if req.patches.is_empty() && req.cover.is_empty() {
        return Ok(pristine);
    }
    let name = pristine.file_name().context("source tree has no name")?;
    let src = build_dir.join("src").join(name);
    let ok = build_dir.join("src.ok");
    if ok.is_file() {
        return Ok(src);
    }
    patch::check_first(&pristine, &req.patches)?;
    if src.exists() {
        fs::remove_dir_all(&src).with_context(|| format!("removing stale {}", src.display()))?;
    }
    eprintln!("  copying the source for patching …");
    source::copy_tree(&pristine, &src, req.source.owned())?;
    let changed = patch::apply_all(&src, &req.patches).and_then(|()| {
        let files = cover::instrument(&src, &req.cover)?;
        if !files.is_empty() {
            eprintln!(
                "  gcov counters for {}: {}",
                req.cover.join(", "),
                files.join(", ")
            );
        }
        Ok(())
    });
    if let Err(e) = changed {
        let _ = fs::remove_dir_all(&src);
        return Err(e);
    }
    File::create(&ok)?;
    Ok(src)
}

/// The base configuration, the fragments merged over it, `olddefconfig`,
/// then the checks: every fragment symbol kept its value, and a Debian
/// base kept modules off.
fn configure(
    tree: &Path,
    obj: &Path,
    base: &Base,
    fragments: &[PathBuf],
    settings: &[Setting],
    log: &Path,
) -> Result<()> {
    let t = tree.to_string_lossy().to_string();
    let o = format!("O={}", obj.display());
    match base {
        Base::Tinyconfig => Cmd::new(&["make", "-C", &t, &o, "tinyconfig"]).run_logged(
            log,
            "make tinyconfig",
            |_| None,
        )?,
        Base::Debian(d) => {
            let dotconfig = obj.join(".config");
            fs::write(&dotconfig, &d.text)
                .with_context(|| format!("writing {}", dotconfig.display()))?;
            eprintln!(
                "kernel: config base: {} ({})",
                d.describe(),
                d.from.display()
            );
        }
    }
    let mut merge = vec![
        tree.join("scripts/kconfig/merge_config.sh")
            .to_string_lossy()
            .to_string(),
        "-m".into(),
        "-O".into(),
        obj.to_string_lossy().into(),
        obj.join(".config").to_string_lossy().into(),
    ];
    merge.extend(fragments.iter().map(|f| f.to_string_lossy().to_string()));
    // merge_config.sh makes its temporary files in the current directory:
    // run it in the object directory so the source tree is never written.
    Cmd::new(&merge)
        .dir(obj)
        .run_logged(log, "merge_config.sh", |_| None)?;
    Cmd::new(&["make", "-C", &t, &o, "olddefconfig"]).run_logged(
        log,
        "make olddefconfig",
        |_| None,
    )?;
    let final_config = config::parse_dotconfig(&fs::read_to_string(obj.join(".config"))?);
    let dropped = config::dropped(settings, &final_config);
    if !dropped.is_empty() {
        return Err(crate::fail::bad_input(format!(
            "{} config symbol(s) from the fragments did not survive `make olddefconfig`:\n{}\n\
             fix the fragment (or add the missing dependencies); nothing was compiled",
            dropped.len(),
            dropped.join("\n")
        )));
    }
    if let Base::Debian(d) = base {
        let left = distro::module_problems(&final_config);
        if !left.is_empty() {
            return Err(crate::fail::bad_input(format!(
                "the configuration from {} {} still has modules after `make olddefconfig` \
                 ({}); nothing was compiled. A fragment that sets CONFIG_MODULES=y or a \
                 symbol to `m` does this: set it to `y` or leave it out",
                d.package,
                d.version,
                left.join(", ")
            )));
        }
    }
    Ok(())
}

/// Pick the interesting part of a kbuild line: `  CC      mm/migrate.o` → `CC mm/migrate.o`.
fn make_progress(line: &str) -> Option<String> {
    let t = line.trim_start();
    let (verb, rest) = t.split_once(char::is_whitespace)?;
    if verb.len() <= 8
        && verb
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c == '[' || c == ']')
    {
        Some(format!("{verb} {}", rest.trim()))
    } else {
        None
    }
}

fn compiler_version() -> Result<String> {
    let out = Cmd::new(&["gcc", "--version"])
        .output()
        .context("gcc is needed to build the kernel: apt-get install gcc")?;
    Ok(out.lines().next().unwrap_or("").to_string())
}

pub fn which(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

fn read_stamp(path: &Path) -> Option<Kernel> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// Hold an exclusive lock on `<dir>.lock` so two runs never build the same key at once.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.with_extension("lock");
    let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    if f.try_lock().is_err() {
        eprintln!(
            "kernel: waiting for another hmmlab process building the same kernel ({})",
            path.display()
        );
        f.lock()
            .with_context(|| format!("locking {}", path.display()))?;
    }
    Ok(f)
}

/// Write a file so that readers see the old or the new content, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(fragment_text: &str, dir: &Path) -> Request {
        let frag = dir.join("hmm.config");
        fs::write(&frag, fragment_text).unwrap();
        Request {
            source: Source::Debian("7.3".into()),
            patches: vec![],
            fragments: vec![frag],
            base: ConfigBase::Tinyconfig,
            cover: vec![],
            jobs: 2,
        }
    }

    fn debian(text: &str, from: &str) -> Base {
        Base::Debian(DebianConfig {
            package: "linux-config-7.3".into(),
            version: "7.3.4-1~bpo13+1".into(),
            from: PathBuf::from(from),
            text: text.into(),
        })
    }

    const ID: &str = "debian:linux-source-7.3=7.3.4-1~bpo13+1";
    const CC: &str = "gcc (Debian 12.2.0-14+deb12u1) 12.2.0";

    #[test]
    fn a_tinyconfig_key_is_the_key_it_had_before_there_was_a_choice_of_base() {
        let d = tempfile::tempdir().unwrap();
        let req = request("CONFIG_TEST_HMM=y\n", d.path());
        let (tiny, settings) = build_key(&req, ID, CC, &Base::Tinyconfig).unwrap();
        assert_eq!(settings.len(), 1);
        // The parts, in order, that made every key before config bases:
        // cache entries built then are still found.
        let mut old = KeyBuilder::default();
        old.add("stage", STAGE_VERSION.as_bytes());
        old.add("arch", ARCH.as_bytes());
        old.add("source", ID.as_bytes());
        old.add("compiler", CC.as_bytes());
        old.add("fragment", b"CONFIG_TEST_HMM=y\n");
        assert_eq!(tiny, old.finish());
        // Pinned, so a change to how any part is hashed fails here too (the
        // same recipe gave a 7.3 build made before config bases its key).
        assert_eq!(tiny, "6dc249f25c9a145ad12e");
    }

    #[test]
    fn a_debian_base_is_another_build_and_its_content_is_in_the_key() {
        let d = tempfile::tempdir().unwrap();
        let req = request("CONFIG_TEST_HMM=y\n", d.path());
        let key = |base: &Base| build_key(&req, ID, CC, base).unwrap().0;
        let tiny = key(&Base::Tinyconfig);
        let a = key(&debian("# CONFIG_MODULES is not set\n", "/p/a.deb"));
        assert_ne!(a, tiny);
        // Another configuration is another build; the same one read from
        // elsewhere (the host's installed file, the pool) is the same build.
        assert_ne!(
            a,
            key(&debian(
                "# CONFIG_MODULES is not set\nCONFIG_X=y\n",
                "/p/a.deb"
            ))
        );
        assert_eq!(
            a,
            key(&debian("# CONFIG_MODULES is not set\n", "/usr/src/x.xz"))
        );
        assert_eq!(
            debian("", "/p/a.deb").describe().unwrap(),
            "debian: config.amd64_none_amd64 of linux-config-7.3 7.3.4-1~bpo13+1, modules off"
        );
        assert_eq!(Base::Tinyconfig.describe(), None);
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            make_progress("  CC      mm/migrate_device.o").as_deref(),
            Some("CC mm/migrate_device.o")
        );
        assert_eq!(
            make_progress("  LD [M]  foo.ko").as_deref(),
            Some("LD [M]  foo.ko")
        );
        assert_eq!(make_progress("make[1]: Entering directory"), None);
    }

    #[test]
    fn reuse_counts_hits_and_misses_from_a_real_stats_log() {
        // As written by ccache 4.7 for one miss then one hit of the same file.
        let log = "# a.c\ncache_miss\ndirect_cache_miss\nlocal_storage_miss\n\
                   local_storage_write\npreprocessed_cache_miss\n\
                   # a.c\ndirect_cache_hit\nlocal_storage_hit\nlocal_storage_read_hit\n\
                   # b.c\npreprocessed_cache_hit\n# c.S\nunsupported_compiler_option\n";
        let r = Reuse::from_stats_log(log);
        assert_eq!(
            r,
            Reuse {
                reused: 2,
                compiled: 1
            }
        );
        assert_eq!(
            r.describe(),
            "2 of 3 C compiles reused from earlier builds (67%), 1 compiled"
        );
        assert_eq!(Reuse::from_stats_log("").describe(), "no C compiles needed");
    }
}
