//! `cargo xtask sources`: which Debian kernel source packages the suites of
//! the host's mirror carry, and which are already in the cache.

use anyhow::Result;
use hmmlab_harness::exit;

use crate::cli::SourcesArgs;
use crate::kernel::archive::Archive;

pub fn sources(a: &SourcesArgs) -> Result<i32> {
    let archive = Archive::new(&crate::paths::cache_root());
    if a.update || !archive.has_lists() {
        archive.update()?;
    }
    let packages: Vec<String> = if a.series.is_empty() {
        archive.source_packages()
    } else {
        a.series
            .iter()
            .map(|s| format!("linux-source-{s}"))
            .collect()
    };
    println!(
        "{:<12} {:<24} {:<28} fetched",
        "--kernel", "version", "suite"
    );
    for pkg in packages {
        let series = pkg.trim_start_matches("linux-source-");
        let fetched = archive.fetched(&pkg);
        let avail = archive.available(&pkg)?;
        if avail.is_empty() {
            println!("debian:{series:<5} (no suite carries {pkg})");
        }
        for v in avail {
            println!(
                "debian:{series:<5} {:<24} {:<28} {}",
                v.version,
                v.suite,
                if fetched.contains(&v.version) {
                    "yes"
                } else {
                    ""
                }
            );
        }
    }
    println!(
        "\n`--kernel debian:SERIES` uses the version installed on the host, else the newest \
         fetched, else the newest listed; pin one with debian:SERIES=VERSION."
    );
    Ok(exit::OK)
}
