//! The `distro` config variant: Debian's own configuration of 7.3 (its
//! linux-config-7.3 package, of the same version as the source, fetched
//! from the host's Debian mirror through hmmlab's private apt state, as the
//! kernel sources are), merged with hmmlab's fragments and run through
//! `make olddefconfig` on the real 7.3 tree. Nothing is compiled or booted.

mod common;

use std::collections::BTreeMap;

use common::*;

/// `xtask kernel ARGS --config-only`: its JSON answer.
fn configure(args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("kernel")
        .args(args)
        .arg("--config-only")
        .current_dir(repo())
        .output()
        .expect("running xtask");
    assert!(
        out.status.success(),
        "`xtask kernel {} --config-only` failed (exit {:?}). The Debian config base \
         needs the host's Debian mirror (for linux-config-7.3 and, if not cached yet, \
         linux-source-7.3), as the default kernel does:\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--config-only prints JSON")
}

fn dotconfig(j: &serde_json::Value) -> BTreeMap<String, String> {
    let path = j["config"].as_str().expect("the .config's path");
    let text = std::fs::read_to_string(path).expect("the .config");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(sym) = line
            .strip_prefix("# ")
            .and_then(|r| r.strip_suffix(" is not set"))
        {
            out.insert(sym.to_string(), "n".to_string());
        } else if let Some((sym, val)) = line.split_once('=') {
            out.insert(sym.to_string(), val.to_string());
        }
    }
    out
}

fn built_in(c: &BTreeMap<String, String>) -> usize {
    c.values().filter(|v| *v == "y").count()
}

#[test]
fn debians_7_3_configuration_without_modules_keeps_test_hmm_and_device_private() {
    let distro = configure(&[
        "--kernel",
        "debian:7.3",
        "--config-base",
        "debian",
        "--config-fragment",
        "images/configs/variants/distro.config",
    ]);
    let base = distro["config_base"].as_str().unwrap_or_default();
    assert!(
        base.contains("config.amd64_none_amd64 of linux-config-7.3 7.3."),
        "{distro}"
    );
    let c = dotconfig(&distro);
    for (sym, want) in [
        ("CONFIG_TEST_HMM", "y"),
        ("CONFIG_DEVICE_PRIVATE", "y"),
        ("CONFIG_MODULES", "n"),
        ("CONFIG_DEBUG_INFO_NONE", "y"),
        // Built in by Debian, not by hmmlab's fragments.
        ("CONFIG_INET", "y"),
        ("CONFIG_SECURITY_APPARMOR", "y"),
        // A module in Debian's: off, not built in.
        ("CONFIG_EXT4_FS", "n"),
    ] {
        assert_eq!(
            c.get(sym).map(String::as_str),
            Some(want),
            "{sym} in {}",
            distro["config"]
        );
    }
    let modules: Vec<&String> = c
        .iter()
        .filter(|(_, v)| *v == "m")
        .map(|(k, _)| k)
        .collect();
    assert!(modules.is_empty(), "left as modules: {modules:?}");

    // The same kernel over tinyconfig is another build, and far smaller.
    let tiny = configure(&["--kernel", "debian:7.3"]);
    assert_ne!(tiny["key"], distro["key"]);
    assert!(tiny.get("config_base").is_none(), "{tiny}");
    let (d, t) = (built_in(&c), built_in(&dotconfig(&tiny)));
    assert!(d > 2 * t, "distro: {d} symbols =y, tinyconfig: {t}");
}
