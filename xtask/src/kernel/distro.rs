//! The `debian` config base: Debian's own configuration of a kernel series
//! (`config.amd64_none_amd64` from its `linux-config-SERIES` package, of
//! the same version as the `linux-source-SERIES` the kernel is built from),
//! fetched through the private archive like the sources and never
//! installed, with modules turned off (`without_modules`).

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::archive::{self, Archive, Available};
use crate::fail::bad_input;

/// Debian's generic amd64 flavour (what `linux-image-amd64` is built from);
/// the package also has `cloud-amd64` and `rt-amd64`.
pub const FLAVOUR: &str = "config.amd64_none_amd64";

/// Debian's configuration of one kernel version, as the build starts from it.
#[derive(Debug, Clone)]
pub struct DebianConfig {
    /// `linux-config-7.3`.
    pub package: String,
    pub version: String,
    /// The package file it was read from (or the host's installed file).
    pub from: PathBuf,
    /// The configuration without modules.
    pub text: String,
}

impl DebianConfig {
    /// What the build record says about its base.
    pub fn describe(&self) -> String {
        format!(
            "debian: {FLAVOUR} of {} {}, modules off",
            self.package, self.version
        )
    }
}

/// Debian's configuration for the kernel a source identity names
/// (`debian:linux-source-7.3=7.3.4-1~bpo13+1`): the host's installed
/// linux-config-7.3 of that version if there is one, else the package from
/// whichever suite of the mirror carries that exact version. `spec` is the
/// `--kernel` the user gave, for messages.
pub fn for_identity(identity: &str, spec: &str) -> Result<DebianConfig> {
    let Some((series, version)) = identity
        .strip_prefix("debian:linux-source-")
        .and_then(|r| r.split_once('='))
    else {
        return Err(bad_input(format!(
            "--config-base debian: the kernel source {spec} is not a Debian package; \
             Debian's configuration is taken from linux-config-SERIES of the same version \
             as linux-source-SERIES, so give --kernel debian:SERIES (e.g. debian:7.3), \
             or build this source with --config-base tinyconfig"
        )));
    };
    let package = format!("linux-config-{series}");
    let member = format!("./usr/src/{package}/{FLAVOUR}.xz");
    let installed = PathBuf::from(member.trim_start_matches('.'));
    if super::source::host_installed(&package).as_deref() == Some(version) && installed.is_file() {
        let out = crate::shell::Cmd::new(&["xz", "-dc", &installed.to_string_lossy()])
            .output()
            .with_context(|| format!("reading {}", installed.display()))?;
        return Ok(DebianConfig {
            package,
            version: version.to_string(),
            from: installed,
            text: without_modules(&out),
        });
    }
    let archive = Archive::new(&crate::paths::cache_root());
    if let Err(avail) = archive.carries(&package, version)? {
        return Err(bad_input(not_carried(
            &package,
            version,
            series,
            &archive.suites(),
            &avail,
        )));
    }
    let deb = archive.fetch(&package, version)?;
    let bytes = archive::extract_deb_member(&deb, &member)?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{member} in {} is not text", deb.display()))?;
    Ok(DebianConfig {
        package,
        version: version.to_string(),
        from: deb,
        text: without_modules(&text),
    })
}

/// Why there is no configuration for this version, and what to do.
fn not_carried(
    package: &str,
    version: &str,
    series: &str,
    suites: &[String],
    avail: &[Available],
) -> String {
    let there = if avail.is_empty() {
        "none".to_string()
    } else {
        avail
            .iter()
            .map(|a| format!("{} ({})", a.version, a.suite))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "--config-base debian: no Debian suite carries {package} {version}, the version of \
         the kernel source linux-source-{series} {version}.\n  suites searched: {}\n  \
         {package} versions there: {there}\n\
         Pin the kernel to a version whose configuration is there too \
         (--kernel debian:{series}=VERSION, or `source = \"debian:{series}=VERSION\"` in \
         matrix.toml; `cargo xtask sources {series}` lists the source versions), or build \
         with --config-base tinyconfig",
        if suites.is_empty() {
            "none (no package lists yet: `cargo xtask sources --update`)".to_string()
        } else {
            suites.join(", ")
        }
    )
}

/// Debian's configuration for a build without modules: every `CONFIG_X=m`
/// becomes `# CONFIG_X is not set`, and CONFIG_MODULES is off.
///
/// Debian builds about 4000 drivers as modules. Compiling them is hours on
/// the 2 cores hmmlab's machines have, and the guest could not load them
/// anyway (its initramfs holds no modules). Leaving them as `m` with
/// modules off is no way out: kconfig turns a tristate's `m` into `y` when
/// CONFIG_MODULES is off (scripts/kconfig/symbol.c, sym_calc_value()), so
/// every one of them would be built into the kernel instead. What Debian
/// builds in (`y`) stays in.
pub fn without_modules(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut modules_seen = false;
    for line in text.lines() {
        match line.split_once('=') {
            Some((sym, "m")) if sym.starts_with("CONFIG_") => {
                out.push_str(&format!("# {sym} is not set"));
            }
            Some(("CONFIG_MODULES", _)) => {
                modules_seen = true;
                out.push_str("# CONFIG_MODULES is not set");
            }
            _ => {
                modules_seen |= line == "# CONFIG_MODULES is not set";
                out.push_str(line);
            }
        }
        out.push('\n');
    }
    if !modules_seen {
        out.push_str("# CONFIG_MODULES is not set\n");
    }
    out
}

/// What a final `.config` built from this base must show: modules off and
/// no `=m` left. An empty list when it does.
pub fn module_problems(final_config: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let mut out = vec![];
    if final_config.get("CONFIG_MODULES").is_some_and(|v| v != "n") {
        out.push("CONFIG_MODULES is on".to_string());
    }
    out.extend(
        final_config
            .iter()
            .filter(|(_, v)| *v == "m")
            .map(|(k, _)| format!("{k}=m")),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::config::parse_dotconfig;

    #[test]
    fn modules_become_not_set_and_modules_go_off() {
        let debian = "#\n# Linux/x86 7.3.4 Kernel Configuration\n#\n\
                      CONFIG_CC_VERSION_TEXT=\"gcc (Debian 14.2.0-19) 14.2.0\"\n\
                      CONFIG_MODULES=y\n\
                      CONFIG_MODULE_SIG=y\n\
                      CONFIG_EXT4_FS=y\n\
                      CONFIG_BTRFS_FS=m\n\
                      # CONFIG_TEST_HMM is not set\n\
                      CONFIG_LOCALVERSION=\"m\"\n\
                      CONFIG_NR_CPUS=8192\n\
                      CONFIG_DRM_AMDGPU=m\n";
        let out = without_modules(debian);
        let c = parse_dotconfig(&out);
        assert_eq!(c["CONFIG_MODULES"], "n");
        assert_eq!(c["CONFIG_BTRFS_FS"], "n");
        assert_eq!(c["CONFIG_DRM_AMDGPU"], "n");
        // Built in stays built in; values that only look like `m` stay.
        assert_eq!(c["CONFIG_EXT4_FS"], "y");
        assert_eq!(c["CONFIG_MODULE_SIG"], "y");
        assert_eq!(c["CONFIG_LOCALVERSION"], "\"m\"");
        assert_eq!(c["CONFIG_NR_CPUS"], "8192");
        assert_eq!(c["CONFIG_TEST_HMM"], "n");
        assert!(!out.lines().any(|l| l.ends_with("=m")), "{out}");
        assert_eq!(out.lines().count(), debian.lines().count());
        assert!(out.starts_with("#\n# Linux/x86 7.3.4 Kernel Configuration\n"));
        assert!(module_problems(&c).is_empty());
        // A configuration that does not mention modules gets them off too.
        let c = parse_dotconfig(&without_modules("CONFIG_A=m\n"));
        assert_eq!(c["CONFIG_MODULES"], "n");
        assert_eq!(c["CONFIG_A"], "n");
        // Once is enough.
        assert_eq!(
            without_modules("# CONFIG_MODULES is not set\n"),
            "# CONFIG_MODULES is not set\n"
        );
    }

    #[test]
    fn a_final_config_with_modules_is_refused() {
        let c = parse_dotconfig("CONFIG_MODULES=y\nCONFIG_A=m\nCONFIG_B=y\n");
        assert_eq!(module_problems(&c), ["CONFIG_MODULES is on", "CONFIG_A=m"]);
    }

    #[test]
    fn a_source_that_is_not_debian_is_refused_with_what_to_do() {
        let e = for_identity("path:/src/linux@0123+clean", "path:/src/linux")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("path:/src/linux is not a Debian package")
                && e.contains("--kernel debian:SERIES")
                && e.contains("--config-base tinyconfig"),
            "{e}"
        );
    }

    #[test]
    fn a_version_without_its_configuration_names_the_package_the_suites_and_what_to_do() {
        let avail = vec![Available {
            version: "6.12.118-1~deb12u1".into(),
            suite: "bookworm-security/main".into(),
        }];
        let e = not_carried(
            "linux-config-6.12",
            "6.12.117-1~deb12u1",
            "6.12",
            &["bookworm".into(), "bookworm-security".into()],
            &avail,
        );
        for want in [
            "no Debian suite carries linux-config-6.12 6.12.117-1~deb12u1",
            "linux-source-6.12 6.12.117-1~deb12u1",
            "suites searched: bookworm, bookworm-security",
            "6.12.118-1~deb12u1 (bookworm-security/main)",
            "--kernel debian:6.12=VERSION",
            "--config-base tinyconfig",
        ] {
            assert!(e.contains(want), "{want} not in {e}");
        }
        let e = not_carried("linux-config-9.9", "9.9-1", "9.9", &[], &[]);
        assert!(
            e.contains("versions there: none") && e.contains("sources --update"),
            "{e}"
        );
    }
}
