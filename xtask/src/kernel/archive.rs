//! Debian's kernel source packages from every suite the host's Debian mirror
//! carries (stable, backports, unstable, experimental…), fetched through a
//! private apt configuration under the cache (`<cache>/debian/`): its own
//! sources list, package lists, state and downloads. The host's `/etc/apt`
//! and its installed packages are never changed, nothing is installed, and
//! it works without root.
//!
//! The mirror is the host's own (read from its apt sources, never named
//! here); which suite holds which version is asked of apt (`apt-cache
//! madison`), never assumed.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::fail::bad_input;
use crate::shell::Cmd;

/// Suite names every Debian mirror carries as aliases, besides the host's
/// own suites. Each is looked up (its Release file's `Codename:`) and the
/// codename's own directory is used where there is one: a mirror may keep
/// an alias pointing at an older snapshot than the codename it names.
const EXTRA_SUITES: &[&str] = &[
    "oldstable",
    "oldstable-backports",
    "stable",
    "stable-backports",
    "testing",
    "unstable",
    "experimental",
];

/// Where the host keeps its apt sources.
const HOST_SOURCES: &[&str] = &["/etc/apt/sources.list", "/etc/apt/sources.list.d"];

/// One `deb` source of the host's apt configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub uri: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub signed_by: Option<String>,
}

/// One version of a package that some suite carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    pub version: String,
    /// e.g. `trixie-backports/main`.
    pub suite: String,
}

/// The private archive under `<cache>/debian`.
pub struct Archive {
    root: PathBuf,
}

impl Archive {
    pub fn new(cache: &Path) -> Archive {
        Archive {
            root: cache.join("debian"),
        }
    }

    /// Downloaded packages, `<name>_<version>_all.deb`.
    fn pool(&self) -> PathBuf {
        self.root.join("pool")
    }

    fn config(&self) -> PathBuf {
        self.root.join("apt.conf")
    }

    /// Write the private apt configuration and its directories.
    fn prepare(&self) -> Result<()> {
        for d in [
            "lists/partial",
            "cache/archives/partial",
            "state",
            "parts",
            "prefs",
            "pool",
        ] {
            let p = self.root.join(d);
            fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        }
        let status = self.root.join("state/status");
        if !status.exists() {
            fs::write(&status, "").with_context(|| format!("creating {}", status.display()))?;
        }
        write_if_changed(&self.config(), &apt_conf(&self.root, is_root()))?;
        Ok(())
    }

    fn apt(&self, argv: &[&str]) -> Cmd {
        Cmd::new(argv).env("APT_CONFIG", &self.config().to_string_lossy())
    }

    /// Hold the archive's lock: two hmmlab processes never run apt on the
    /// same private state at once.
    fn lock(&self) -> Result<fs::File> {
        fs::create_dir_all(&self.root)
            .with_context(|| format!("creating {}", self.root.display()))?;
        let path = self.root.join(".lock");
        let f = fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        f.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(f)
    }

    /// Refresh the package lists of every suite (`apt-get update`).
    pub fn update(&self) -> Result<()> {
        let _lock = self.lock()?;
        self.update_locked()
    }

    fn update_locked(&self) -> Result<()> {
        self.prepare()?;
        let entries = host_entries()?;
        if entries.is_empty() {
            bail!(
                "no Debian mirror found in the host's apt sources ({}); hmmlab fetches \
                 Debian's kernel source packages from the mirror the host uses. Give a \
                 kernel source tarball instead: --kernel tarball:FILE",
                HOST_SOURCES.join(", ")
            );
        }
        let probe = tempfile::tempdir_in(&self.root)?;
        let list = sources_list(&entries, &|uri, alias| codename(uri, alias, probe.path()));
        write_if_changed(&self.root.join("sources.list"), &list)?;
        eprintln!(
            "debian: refreshing the package lists of the host's mirror: {} (private apt state in {})",
            list.lines()
                .filter(|l| l.starts_with("deb "))
                .filter_map(|l| l.split_whitespace().rev().nth(1))
                .collect::<Vec<_>>()
                .join(", "),
            self.root.display()
        );
        let out = self
            .apt(&["apt-get", "-q", "update"])
            .output()
            .context("refreshing Debian's package lists")?;
        // apt exits 0 when some suites failed; a suite it could not read
        // only narrows what is found, so say so.
        for l in out
            .lines()
            .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        {
            eprintln!("debian: apt: {l}");
        }
        fs::write(self.root.join("lists/.updated"), "").ok();
        Ok(())
    }

    pub fn has_lists(&self) -> bool {
        self.root.join("lists/.updated").exists()
    }

    /// Every version of `pkg` that some suite carries, newest first.
    pub fn available(&self, pkg: &str) -> Result<Vec<Available>> {
        let out = self
            .apt(&["apt-cache", "madison", pkg])
            .output()
            .unwrap_or_default();
        let mut v = parse_madison(&out);
        sort_newest_first(&mut v, |a| &a.version);
        Ok(v)
    }

    /// Names of the kernel source packages the lists know (`linux-source-7.3`…).
    pub fn source_packages(&self) -> Vec<String> {
        let out = self
            .apt(&["apt-cache", "pkgnames", "linux-source-"])
            .output()
            .unwrap_or_default();
        let mut v: Vec<String> = out
            .lines()
            .map(str::trim)
            .filter(|l| l.len() > "linux-source-".len())
            .map(String::from)
            .collect();
        v.sort();
        v
    }

    /// The downloaded `pkg` at `version`, if it is in the pool: apt-get
    /// download names it `<pkg>_<version>_<arch>.deb` (`all` for the source
    /// packages, `amd64` for linux-config-*), an epoch's `:` as `%3a`.
    fn deb_path(&self, pkg: &str, version: &str) -> Option<PathBuf> {
        fs::read_dir(self.pool())
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(deb_name)
                    .is_some_and(|(n, v)| n == pkg && v == version)
            })
    }

    /// Versions of `pkg` already downloaded, newest first.
    pub fn fetched(&self, pkg: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.pool())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                let (name, ver) = deb_name(&n)?;
                (name == pkg).then_some(ver)
            })
            .collect();
        sort_newest_first(&mut v, |s| s);
        v
    }

    /// The suites the private sources list names (`trixie-backports`…),
    /// once each, in its order.
    pub fn suites(&self) -> Vec<String> {
        let list = fs::read_to_string(self.root.join("sources.list")).unwrap_or_default();
        let mut out: Vec<String> = vec![];
        for l in list.lines().filter(|l| l.starts_with("deb ")) {
            let words: Vec<&str> = l
                .split_whitespace()
                .filter(|w| !w.starts_with('['))
                .collect();
            // deb URI SUITE COMPONENT…
            if let Some(s) = words.get(2) {
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            }
        }
        out
    }

    /// Whether some suite carries `pkg` at exactly `version`: Ok(()) if so
    /// (or it is already downloaded), else the versions the suites do
    /// carry. The package lists are refreshed once when they are missing
    /// or do not have it.
    pub fn carries(&self, pkg: &str, version: &str) -> Result<Result<(), Vec<Available>>> {
        if self.deb_path(pkg, version).is_some() {
            return Ok(Ok(()));
        }
        self.find_refreshing(pkg, |avail| {
            avail.iter().any(|a| a.version == version).then_some(())
        })
    }

    /// `pick` from what the suites carry of `pkg`, with the package lists
    /// refreshed once when they are missing or `pick` finds nothing in
    /// them; else what they carry.
    fn find_refreshing<T>(
        &self,
        pkg: &str,
        pick: impl Fn(&[Available]) -> Option<T>,
    ) -> Result<Result<T, Vec<Available>>> {
        let _lock = self.lock()?;
        self.prepare()?;
        let mut refreshed = false;
        if !self.has_lists() {
            self.update_locked()?;
            refreshed = true;
        }
        loop {
            let avail = self.available(pkg)?;
            if let Some(found) = pick(&avail) {
                return Ok(Ok(found));
            }
            if refreshed {
                return Ok(Err(avail));
            }
            self.update_locked()?;
            refreshed = true;
        }
    }

    /// The version of `pkg` to use: `pin`, or the newest already downloaded,
    /// or else the newest any suite carries. The package lists are refreshed
    /// only when they are missing or do not have what is asked for, so once
    /// a package is downloaded no run touches the network again.
    pub fn resolve(&self, spec: &str, pkg: &str, pin: Option<&str>) -> Result<String> {
        if let Some(pin) = pin {
            if self.deb_path(pkg, pin).is_some() {
                return Ok(pin.to_string());
            }
        } else if let Some(v) = self.fetched(pkg).into_iter().next() {
            return Ok(v);
        }
        let found = self.find_refreshing(pkg, |avail| {
            match pin {
                Some(pin) => avail.iter().find(|a| a.version == pin),
                None => avail.first(),
            }
            .map(|a| a.version.clone())
        })?;
        found.map_err(|avail| bad_input(self.not_found(spec, pkg, pin, &avail)))
    }

    fn not_found(&self, spec: &str, pkg: &str, pin: Option<&str>, avail: &[Available]) -> String {
        if avail.is_empty() {
            let known = self.source_packages();
            let known: Vec<String> = known
                .iter()
                .filter_map(|p| p.strip_prefix("linux-source-"))
                .map(|v| format!("debian:{v}"))
                .collect();
            return format!(
                "--kernel {spec}: no Debian suite carries {pkg}; the suites carry: {}",
                if known.is_empty() {
                    "nothing (could the package lists be read? see `cargo xtask sources --update`)"
                        .to_string()
                } else {
                    known.join(", ")
                }
            );
        }
        format!(
            "--kernel {spec}: no Debian suite carries {pkg} {} any more; there are: {}",
            pin.unwrap_or(""),
            avail
                .iter()
                .map(|a| format!("{} ({})", a.version, a.suite))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// The downloaded package file, downloading it first when needed.
    pub fn fetch(&self, pkg: &str, version: &str) -> Result<PathBuf> {
        if let Some(deb) = self.deb_path(pkg, version) {
            return Ok(deb);
        }
        let _lock = self.lock()?;
        if let Some(deb) = self.deb_path(pkg, version) {
            return Ok(deb);
        }
        self.prepare()?;
        if !self.has_lists() {
            self.update_locked()?;
        }
        let tmp = tempfile::Builder::new()
            .prefix(".download-")
            .tempdir_in(self.pool())
            .with_context(|| {
                format!(
                    "creating a temporary directory in {}",
                    self.pool().display()
                )
            })?;
        let t = std::time::Instant::now();
        eprintln!("debian: downloading {pkg} {version} …");
        let target = format!("{pkg}={version}");
        self.apt(&["apt-get", "-q", "download", &target])
            .dir(tmp.path())
            .output()
            .with_context(|| format!("downloading {pkg} {version}"))?;
        let got = fs::read_dir(tmp.path())?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .with_context(|| format!("apt-get download {target} left no .deb"))?;
        let name = got
            .file_name()
            .context("a downloaded package has no name")?;
        let deb = self.pool().join(name);
        fs::rename(&got, &deb)
            .with_context(|| format!("moving {} to {}", got.display(), deb.display()))?;
        eprintln!(
            "debian: {} ({:.0} MB) in {:.1}s",
            deb.display(),
            fs::metadata(&deb).map(|m| m.len()).unwrap_or(0) as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        Ok(deb)
    }
}

/// Extract the source tarball that a `linux-source-X` package holds
/// (`usr/src/linux-source-X.tar.xz`) into `dest`, without unpacking the
/// package itself to disk.
pub fn extract_deb_tarball(deb: &Path, pkg: &str, dest: &Path) -> Result<()> {
    let member = format!("./usr/src/{pkg}.tar.xz");
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    eprintln!("  extracting {member} from {} …", deb.display());
    duct::cmd!("dpkg-deb", "--fsys-tarfile", deb)
        .pipe(duct::cmd!("tar", "-xO", &member))
        .pipe(duct::cmd!("tar", "-xJ", "-C", dest))
        .stderr_capture()
        .run()
        .with_context(|| format!("extracting {member} from {}", deb.display()))?;
    Ok(())
}

/// Extract one file of a package (`./usr/src/…`) to memory, decompressed
/// with `xz -dc` when its name ends in `.xz`, without unpacking the package
/// to disk. A member the package does not have is an error that lists the
/// files it does have under the same directory.
pub fn extract_deb_member(deb: &Path, member: &str) -> Result<Vec<u8>> {
    let files = duct::cmd!("dpkg-deb", "--fsys-tarfile", deb)
        .pipe(duct::cmd!("tar", "-t"))
        .stderr_capture()
        .read()
        .with_context(|| format!("listing {}", deb.display()))?;
    if !files.lines().any(|l| l == member) {
        let dir = member.rsplit_once('/').map(|(d, _)| d).unwrap_or(".");
        let there: Vec<&str> = files
            .lines()
            .filter(|l| l.starts_with(dir) && !l.ends_with('/'))
            .collect();
        bail!(
            "{} has no {member}; under {dir} it has: {}",
            deb.display(),
            if there.is_empty() {
                "nothing".to_string()
            } else {
                there.join(", ")
            }
        );
    }
    let mut cmd =
        duct::cmd!("dpkg-deb", "--fsys-tarfile", deb).pipe(duct::cmd!("tar", "-xO", member));
    if member.ends_with(".xz") {
        cmd = cmd.pipe(duct::cmd!("xz", "-dc"));
    }
    cmd.stderr_capture()
        .stdout_capture()
        .run()
        .map(|o| o.stdout)
        .with_context(|| format!("extracting {member} from {}", deb.display()))
}

/// `linux-config-7.3_7.3.4-1~bpo13+1_amd64.deb` → (package, version).
fn deb_name(file: &str) -> Option<(String, String)> {
    let stem = file.strip_suffix(".deb")?;
    let mut parts = stem.splitn(3, '_');
    let (name, version, arch) = (parts.next()?, parts.next()?, parts.next()?);
    (!name.is_empty() && !version.is_empty() && !arch.is_empty())
        .then(|| (name.to_string(), version.replace("%3a", ":")))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The private configuration: every directory apt reads or writes is under
/// `root`, and none of the host's apt.conf.d parts (hooks, pins, extra
/// index targets) applies.
fn apt_conf(root: &Path, root_user: bool) -> String {
    let r = root.display();
    let mut s = format!(
        "// hmmlab's private apt configuration: written by hmmlab, read only by\n\
         // its own apt-get/apt-cache calls (APT_CONFIG). The host's apt is untouched.\n\
         Dir::Etc::parts \"{r}/parts\";\n\
         Dir::Etc::sourcelist \"{r}/sources.list\";\n\
         Dir::Etc::sourceparts \"-\";\n\
         Dir::Etc::preferences \"{r}/preferences\";\n\
         Dir::Etc::preferencesparts \"{r}/prefs\";\n\
         Dir::State \"{r}/state\";\n\
         Dir::State::Lists \"{r}/lists\";\n\
         Dir::State::status \"{r}/state/status\";\n\
         Dir::Cache \"{r}/cache\";\n\
         Acquire::Languages \"none\";\n\
         // The packages are verified by the archive's signature and hashes; a\n\
         // mirror that serves a frozen snapshot has Release files past their\n\
         // Valid-Until, which says nothing about the source code they list.\n\
         Acquire::Check-Valid-Until \"false\";\n\
         APT::Get::List-Cleanup \"true\";\n"
    );
    if root_user {
        // The _apt sandbox user cannot enter a cache under /root.
        s.push_str("APT::Sandbox::User \"root\";\n");
    }
    s
}

/// The suite directory to use for `alias` on the mirror `uri`: the
/// codename its Release file names, when that directory exists, else the
/// alias itself; None when the mirror has neither.
fn codename(uri: &str, alias: &str, tmp: &Path) -> Option<String> {
    let get = |suite: &str| -> Option<String> {
        let f = tmp.join(format!("{suite}.Release"));
        let url = format!("{}/dists/{suite}/InRelease", uri.trim_end_matches('/'));
        Cmd::new(&[
            "/usr/lib/apt/apt-helper",
            "download-file",
            &url,
            &f.to_string_lossy(),
        ])
        .output()
        .ok()?;
        fs::read_to_string(&f).ok()
    };
    let release = get(alias)?;
    let code = release
        .lines()
        .find_map(|l| l.strip_prefix("Codename:"))
        .map(|c| c.trim().to_string());
    match code {
        Some(c) if c != alias && get(&c).is_some() => Some(c),
        _ => Some(alias.to_string()),
    }
}

/// The private sources list: the host's own `deb` sources as they are, and
/// for each that serves a release codename (its main archive), the same
/// mirror's other suites, as `resolve(uri, alias)` names them.
pub fn sources_list(entries: &[Entry], resolve: &dyn Fn(&str, &str) -> Option<String>) -> String {
    let mut lines: Vec<String> = vec![];
    let mut push = |uri: &str, suite: &str, comps: &[String], signed: &Option<String>| {
        let opt = signed
            .as_ref()
            .map(|k| format!("[signed-by={k}] "))
            .unwrap_or_default();
        let l = format!("deb {opt}{uri} {suite} {}", comps.join(" "));
        if !lines.contains(&l) {
            lines.push(l);
        }
    };
    for e in entries {
        for s in &e.suites {
            push(&e.uri, s, &e.components, &e.signed_by);
        }
        let main_archive = e
            .suites
            .iter()
            .any(|s| !s.contains('-') && !s.contains('/'));
        if main_archive {
            for alias in EXTRA_SUITES {
                if let Some(s) = resolve(&e.uri, alias) {
                    push(&e.uri, &s, &["main".to_string()], &e.signed_by);
                }
            }
        }
    }
    let mut s = "# written by hmmlab from the host's apt sources\n".to_string();
    for l in lines {
        s.push_str(&l);
        s.push('\n');
    }
    s
}

/// The host's `deb` sources that point at Debian's archive.
fn host_entries() -> Result<Vec<Entry>> {
    let mut files = vec![];
    for p in HOST_SOURCES {
        let p = Path::new(p);
        if p.is_file() {
            files.push(p.to_path_buf());
        } else if let Ok(rd) = fs::read_dir(p) {
            let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            v.sort();
            files.extend(v);
        }
    }
    let mut out = vec![];
    for f in files {
        let name = f.to_string_lossy();
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        // apt reads only these two kinds of file.
        if name.ends_with(".sources") {
            out.extend(parse_deb822(&text));
        } else if name.ends_with(".list") {
            out.extend(parse_one_line(&text));
        }
    }
    Ok(out.into_iter().filter(is_debian).collect())
}

/// Debian's own archive (or a mirror of it): signed with Debian's keyring,
/// or a `/debian` path, but not a security or third-party archive.
fn is_debian(e: &Entry) -> bool {
    let keyring = e
        .signed_by
        .as_deref()
        .is_some_and(|k| k.contains("debian-archive-keyring"));
    let path = e.uri.trim_end_matches('/');
    keyring || path.ends_with("/debian") || path.ends_with("/debian-security")
}

/// `deb [opts] URI SUITE COMPONENT…` lines.
pub fn parse_one_line(text: &str) -> Vec<Entry> {
    let mut out = vec![];
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        let mut rest = rest.trim();
        let mut signed_by = None;
        if let Some(o) = rest.strip_prefix('[') {
            let Some((opts, after)) = o.split_once(']') else {
                continue;
            };
            for opt in opts.split_whitespace() {
                if let Some(k) = opt.strip_prefix("signed-by=") {
                    signed_by = Some(k.to_string());
                }
            }
            rest = after.trim();
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.len() < 2 {
            continue;
        }
        out.push(Entry {
            uri: words[0].to_string(),
            suites: vec![words[1].to_string()],
            components: words[2..].iter().map(|s| s.to_string()).collect(),
            signed_by,
        });
    }
    out
}

/// deb822 `.sources` stanzas (`Types: deb`, `URIs:`, `Suites:`, …).
pub fn parse_deb822(text: &str) -> Vec<Entry> {
    let mut out = vec![];
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = vec![];
        for line in stanza.lines() {
            if line.trim_start().starts_with('#') {
                continue;
            }
            if line.starts_with(' ') || line.starts_with('\t') {
                // A continuation (an inline key); kept with its field.
                if let Some(last) = fields.last_mut() {
                    last.1.push('\n');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                fields.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |k: &str| {
            fields
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if !get("types").split_whitespace().any(|t| t == "deb")
            || get("enabled").eq_ignore_ascii_case("no")
        {
            continue;
        }
        let signed = get("signed-by");
        // An inline key (several lines) cannot be passed as a path.
        let signed_by = (!signed.is_empty() && !signed.contains('\n')).then_some(signed);
        let words =
            |k: &str| -> Vec<String> { get(k).split_whitespace().map(String::from).collect() };
        for uri in words("uris") {
            out.push(Entry {
                uri,
                suites: words("suites"),
                components: words("components"),
                signed_by: signed_by.clone(),
            });
        }
    }
    out
}

/// ` pkg | version | URI suite/component arch Packages` lines.
pub fn parse_madison(text: &str) -> Vec<Available> {
    text.lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split('|').map(str::trim).collect();
            if parts.len() < 3 {
                return None;
            }
            let suite = parts[2].split_whitespace().nth(1).unwrap_or("").to_string();
            Some(Available {
                version: parts[1].to_string(),
                suite,
            })
        })
        .collect()
}

/// Debian version order, asked of dpkg itself.
fn sort_newest_first<T>(v: &mut [T], version: impl Fn(&T) -> &str) {
    v.sort_by(|a, b| {
        let (a, b) = (version(a), version(b));
        if a == b {
            return std::cmp::Ordering::Equal;
        }
        let gt = Cmd::new(&["dpkg", "--compare-versions", a, "gt", b])
            .output()
            .is_ok();
        if gt {
            std::cmp::Ordering::Less
        } else {
            std::cmp::Ordering::Greater
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "Types: deb\n\
        # http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
        URIs: http://deb.debian.org/debian\n\
        Suites: bookworm bookworm-updates\n\
        Components: main\n\
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\
        \n\
        Types: deb\n\
        URIs: http://deb.debian.org/debian-security\n\
        Suites: bookworm-security\n\
        Components: main\n\
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\
        \n\
        Types: deb-src\n\
        URIs: http://deb.debian.org/debian\n\
        Suites: bookworm\n\
        Components: main\n";

    #[test]
    fn the_hosts_deb822_sources_give_the_mirror_and_its_other_suites() {
        let e = parse_deb822(DEB822);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].uri, "http://deb.debian.org/debian");
        assert_eq!(e[0].suites, ["bookworm", "bookworm-updates"]);
        let codenames = |_: &str, alias: &str| match alias {
            "stable-backports" => Some("trixie-backports".to_string()),
            "oldstable" => Some("bookworm".to_string()),
            "oldstable-backports" => None,
            a => Some(a.to_string()),
        };
        let list = sources_list(&e, &codenames);
        let k = "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]";
        for want in [
            format!("deb {k} http://deb.debian.org/debian bookworm main"),
            format!("deb {k} http://deb.debian.org/debian bookworm-updates main"),
            format!("deb {k} http://deb.debian.org/debian-security bookworm-security main"),
            format!("deb {k} http://deb.debian.org/debian experimental main"),
            format!("deb {k} http://deb.debian.org/debian trixie-backports main"),
        ] {
            assert!(list.lines().any(|l| l == want), "{want}\nnot in\n{list}");
        }
        // The host's own suite is listed once, whatever alias names it too.
        assert_eq!(list.matches("debian bookworm main").count(), 1, "{list}");
        assert!(!list.contains("oldstable"), "{list}");
        // The security archive has no backports or experimental.
        assert!(!list.contains("debian-security experimental"), "{list}");
    }

    #[test]
    fn one_line_sources_and_third_party_archives() {
        let e = parse_one_line(
            "deb http://ftp.de.debian.org/debian/ bookworm main contrib # comment\n\
             # deb http://old/debian sid main\n\
             deb [arch=amd64 signed-by=/k.gpg] https://packages.cloud.google.com/apt cloud-sdk main\n\
             deb-src http://ftp.de.debian.org/debian/ bookworm main\n",
        );
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].components, ["main", "contrib"]);
        assert_eq!(e[1].signed_by.as_deref(), Some("/k.gpg"));
        let debian: Vec<_> = e.into_iter().filter(is_debian).collect();
        assert_eq!(debian.len(), 1);
        let same = |_: &str, a: &str| Some(a.to_string());
        assert!(
            sources_list(&debian, &same).contains("http://ftp.de.debian.org/debian/ unstable main")
        );
    }

    #[test]
    fn madison_lines_and_version_order() {
        let mut v = parse_madison(
            " linux-source-7.3 | 7.3.4-1~bpo13+1 | http://deb.debian.org/debian trixie-backports/main amd64 Packages\n\
              linux-source-7.3 | 7.3~rc7-1~exp1 | http://deb.debian.org/debian experimental/main amd64 Packages\n\
              linux-source-7.3 | 7.3.10-1 | http://deb.debian.org/debian sid/main amd64 Packages\n",
        );
        assert_eq!(v[0].suite, "trixie-backports/main");
        sort_newest_first(&mut v, |a| &a.version);
        let order: Vec<&str> = v.iter().map(|a| a.version.as_str()).collect();
        assert_eq!(order, ["7.3.10-1", "7.3.4-1~bpo13+1", "7.3~rc7-1~exp1"]);
    }

    #[test]
    fn downloaded_package_names_of_any_architecture() {
        assert_eq!(
            deb_name("linux-config-7.3_7.3.4-1~bpo13+1_amd64.deb"),
            Some(("linux-config-7.3".into(), "7.3.4-1~bpo13+1".into()))
        );
        assert_eq!(
            deb_name("linux-source-6.12_1%3a6.12.117-1_all.deb"),
            Some(("linux-source-6.12".into(), "1:6.12.117-1".into()))
        );
        for bad in [
            "linux-source-6.12_6.12.117-1.deb",
            "x.deb",
            "a_b_c.tar",
            "_1_all.deb",
        ] {
            assert_eq!(deb_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_private_configuration_keeps_apt_out_of_the_host() {
        let c = apt_conf(Path::new("/c/debian"), false);
        for want in [
            "Dir::Etc::parts \"/c/debian/parts\"",
            "Dir::State::status \"/c/debian/state/status\"",
            "Dir::Etc::sourceparts \"-\"",
            "Dir::Cache \"/c/debian/cache\"",
        ] {
            assert!(c.contains(want), "{want} not in {c}");
        }
        assert!(!c.contains("Sandbox"));
    }
}
