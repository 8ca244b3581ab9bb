//! The Debian packages hmmlab needs. As root they are installed (saying
//! what); otherwise the exact `apt-get install` line is printed and we stop.

use anyhow::{bail, Result};

use crate::shell::{quote_argv, Cmd};

/// Packages every run needs, with why.
pub const BASE: &[(&str, &str)] = &[
    ("qemu-system-x86", "boots the test kernel"),
    ("make", "kernel build"),
    ("gcc", "kernel build, hmm-tests"),
    (
        "libc6-dev",
        "static glibc for the guest driver and hmm-tests",
    ),
    ("flex", "kernel build"),
    ("bison", "kernel build"),
    ("bc", "kernel build"),
    ("libelf-dev", "kernel build"),
    ("libssl-dev", "kernel build"),
    ("xz-utils", "extracting Debian kernel sources"),
    ("patch", "applying --patch files"),
    ("ccache", "fast rebuilds of patched or reconfigured kernels"),
    (
        "git",
        "identity of path: trees, path:DIR@REV clones, bisect",
    ),
];

fn missing(pkgs: &[String]) -> Vec<String> {
    pkgs.iter()
        .filter(|p| {
            Cmd::new(&["dpkg-query", "-W", "-f=${db:Status-Abbrev}", p.as_str()])
                .output()
                .map(|s| !s.starts_with("ii"))
                .unwrap_or(true)
        })
        .cloned()
        .collect()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Make sure `extra` (e.g. linux-source-6.12) and the base packages are installed.
pub fn ensure(extra: &[String], check_only: bool) -> Result<()> {
    if Cmd::new(&["dpkg-query", "--version"]).output().is_err() {
        eprintln!(
            "deps: dpkg-query not found: not a Debian system; make sure these are installed: {}",
            names(extra).join(" ")
        );
        return Ok(());
    }
    let all = names(extra);
    let need = missing(&all);
    if need.is_empty() {
        return Ok(());
    }
    let mut install = vec!["apt-get", "install", "-y", "--no-install-recommends"];
    install.extend(need.iter().map(String::as_str));
    if check_only || !is_root() {
        bail!(
            "missing Debian packages: {}\ninstall them with:\n    sudo apt-get update && sudo {}",
            need.join(" "),
            quote_argv(&install)
        );
    }
    eprintln!(
        "deps: installing {} (as root): {}",
        need.len(),
        need.join(" ")
    );
    for (p, why) in BASE {
        if need.iter().any(|n| n == p) {
            eprintln!("  {p}: {why}");
        }
    }
    let log = crate::paths::cache_root().join("apt.log");
    std::fs::create_dir_all(log.parent().unwrap())?;
    std::fs::write(&log, b"")?;
    Cmd::new(&["apt-get", "update"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run_logged(&log, "apt-get update", |_| None)?;
    Cmd::new(&install)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run_logged(&log, "apt-get install", |l| {
            l.strip_prefix("Setting up ").map(|s| s.to_string())
        })?;
    let still = missing(&all);
    if !still.is_empty() {
        bail!(
            "apt-get finished but these are still missing: {}; see {}",
            still.join(" "),
            log.display()
        );
    }
    Ok(())
}

fn names(extra: &[String]) -> Vec<String> {
    BASE.iter()
        .map(|(p, _)| p.to_string())
        .chain(extra.iter().cloned())
        .collect()
}
