//! Conditions on the kernel under test (`[requires]` and `[[step.variant]]`
//! `when`), and resolving a scenario against one kernel.
//!
//! Kernel conditions: an optional operator (`>=`, `<=`, `>`, `<`, `=`, `==`)
//! and a version of one to three dot-separated numbers. The ordering
//! operators compare numerically with missing parts taken as 0 (`>=6.3` is
//! `>=6.3.0`). Without an operator, and with `=` or `==`, only the parts
//! given are compared: `6.12` and `=6.12` hold for every 6.12.y, `=6.1.192`
//! for that release only. The release's own suffixes (`-rc2`, `+`,
//! `-localversion`) are ignored, so 6.13-rc2 counts as 6.13.0.
//!
//! Config conditions: `CONFIG_X` (set: `y`, `m` or any other value but `n`),
//! `!CONFIG_X` (not set: absent or `n`) or `CONFIG_X=value` (that value,
//! compared without surrounding double quotes; `CONFIG_X=n` means not set).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use hmmlab_proto::scenario::{DeviceKind, Scenario, When};
use hmmlab_proto::state::for_device;

/// What is known about the kernel under test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelFacts {
    /// `make kernelrelease`, e.g. `6.12.117`.
    pub release: String,
    /// `CONFIG_X` → `y`, `m` or the value (string values without their
    /// quotes); `n` or absent means not set.
    pub config: BTreeMap<String, String>,
}

impl KernelFacts {
    /// Facts from the kernel's release and the text of its `.config`.
    pub fn from_dotconfig(release: &str, dotconfig_text: &str) -> KernelFacts {
        let mut config = BTreeMap::new();
        for line in dotconfig_text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("# ") {
                if let Some(name) = rest.strip_suffix(" is not set") {
                    if is_config_name(name) {
                        config.insert(name.to_string(), "n".to_string());
                    }
                }
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            if is_config_name(name) {
                config.insert(name.to_string(), unquote(value).to_string());
            }
        }
        KernelFacts {
            release: release.trim().to_string(),
            config,
        }
    }

    fn config_value(&self, name: &str) -> Option<&str> {
        self.config
            .get(name)
            .map(String::as_str)
            .filter(|v| *v != "n")
    }
}

/// How a kernel condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionOp {
    Ge,
    Le,
    Gt,
    Lt,
    /// `=`, `==` or no operator: equal in every part given.
    Eq,
}

/// A parsed kernel condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelReq {
    pub op: VersionOp,
    /// One to three numbers.
    pub version: Vec<u32>,
}

impl KernelReq {
    /// Does a kernel of version `v` (major, minor, patch) satisfy this?
    pub fn holds_for(&self, v: [u32; 3]) -> bool {
        let mut want = [0u32; 3];
        want[..self.version.len()].copy_from_slice(&self.version);
        let ord = v.cmp(&want);
        match self.op {
            VersionOp::Ge => ord != Ordering::Less,
            VersionOp::Le => ord != Ordering::Greater,
            VersionOp::Gt => ord == Ordering::Greater,
            VersionOp::Lt => ord == Ordering::Less,
            VersionOp::Eq => v[..self.version.len()] == self.version[..],
        }
    }
}

/// Parse a kernel condition such as `>=6.3`, `<6.2`, `6.12` or `=6.1.192`.
pub fn parse_kernel(text: &str) -> Result<KernelReq, String> {
    let t = text.trim();
    let (op, rest) = [
        (">=", VersionOp::Ge),
        ("<=", VersionOp::Le),
        ("==", VersionOp::Eq),
        (">", VersionOp::Gt),
        ("<", VersionOp::Lt),
        ("=", VersionOp::Eq),
    ]
    .iter()
    .find_map(|(p, op)| t.strip_prefix(p).map(|rest| (*op, rest.trim_start())))
    .unwrap_or((VersionOp::Eq, t));
    if rest.is_empty() {
        return Err("no version after the operator".into());
    }
    let parts: Vec<&str> = rest.split('.').collect();
    if parts.len() > 3 {
        return Err(format!(
            "`{rest}` has {} parts; a version has one to three",
            parts.len()
        ));
    }
    let mut version = Vec::with_capacity(parts.len());
    for p in parts {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "`{rest}` is not a version of dot-separated numbers"
            ));
        }
        version.push(
            p.parse::<u32>()
                .map_err(|_| format!("`{p}` is too large for a version number"))?,
        );
    }
    Ok(KernelReq { op, version })
}

/// A parsed config condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigCond {
    /// `CONFIG_X`: set to anything but `n`.
    Set(String),
    /// `!CONFIG_X`: absent or `n`.
    NotSet(String),
    /// `CONFIG_X=value`.
    Equals(String, String),
}

impl ConfigCond {
    pub fn holds_for(&self, k: &KernelFacts) -> bool {
        match self {
            ConfigCond::Set(name) => k.config_value(name).is_some(),
            ConfigCond::NotSet(name) => k.config_value(name).is_none(),
            ConfigCond::Equals(name, want) if want == "n" => k.config_value(name).is_none(),
            ConfigCond::Equals(name, want) => k.config_value(name) == Some(want.as_str()),
        }
    }

    fn name(&self) -> &str {
        match self {
            ConfigCond::Set(n) | ConfigCond::NotSet(n) | ConfigCond::Equals(n, _) => n,
        }
    }
}

/// Parse a config condition: `CONFIG_X`, `!CONFIG_X` or `CONFIG_X=value`.
pub fn parse_config(text: &str) -> Result<ConfigCond, String> {
    let t = text.trim();
    let (negated, body) = match t.strip_prefix('!') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, t),
    };
    let (name, value) = match body.split_once('=') {
        Some((n, v)) => (n.trim_end(), Some(v.trim_start())),
        None => (body, None),
    };
    if !is_config_name(name) {
        let what = if name.is_empty() { "nothing" } else { name };
        return Err(format!(
            "`{what}` is not a config option name (`CONFIG_` then capital letters, digits or `_`)"
        ));
    }
    match (negated, value) {
        (true, Some(_)) => {
            Err("`!` and `=value` do not combine; write `!CONFIG_X` or `CONFIG_X=value`".into())
        }
        (true, None) => Ok(ConfigCond::NotSet(name.into())),
        (false, None) => Ok(ConfigCond::Set(name.into())),
        (false, Some(v)) => {
            let v = unquote(v);
            if v.is_empty() {
                Err(format!(
                    "no value after `{name}=`; write `!{name}` for \"not set\""
                ))
            } else {
                Ok(ConfigCond::Equals(name.into(), v.into()))
            }
        }
    }
}

/// `CONFIG_[A-Z0-9_]+`
pub fn is_config_name(name: &str) -> bool {
    name.strip_prefix("CONFIG_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// (major, minor, patch) of a kernel release such as `6.12.117`,
/// `6.13.0-rc2+` or `6.13-rc2`; missing parts are 0.
pub fn release_version(release: &str) -> Option<[u32; 3]> {
    let mut out = [0u32; 3];
    let mut parts = release.trim().split('.');
    for (i, slot) in out.iter_mut().enumerate() {
        let Some(part) = parts.next() else { break };
        let digits: &str = &part[..part.bytes().take_while(u8::is_ascii_digit).count()];
        if digits.is_empty() {
            if i < 2 {
                return None;
            }
            break;
        }
        *slot = digits.parse().ok()?;
        if digits.len() != part.len() {
            break;
        }
    }
    Some(out)
}

/// Why `when` does not hold for `k`: one clause per failed condition, in the
/// form used for skip reasons (`requires kernel >=6.13 (this is 6.12.117)`).
/// Empty when it holds.
pub fn unmet(when: &When, k: &KernelFacts) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(text) = &when.kernel {
        let shown = text.trim();
        match (parse_kernel(text), release_version(&k.release)) {
            (Err(e), _) => out.push(format!("requires kernel {shown}, which is invalid: {e}")),
            (Ok(_), None) => out.push(format!(
                "requires kernel {shown} (cannot read the version of `{}`)",
                k.release
            )),
            (Ok(req), Some(v)) if !req.holds_for(v) => {
                out.push(format!("requires kernel {shown} (this is {})", k.release))
            }
            _ => {}
        }
    }
    if let Some(text) = &when.config {
        let shown = text.trim();
        match parse_config(text) {
            Err(e) => out.push(format!("requires {shown}, which is invalid: {e}")),
            Ok(c) if !c.holds_for(k) => {
                let name = c.name();
                let now = match k.config_value(name) {
                    Some(v) => format!("{name}={v} in this kernel"),
                    None => "not set in this kernel".to_string(),
                };
                out.push(format!("requires {shown} ({now})"));
            }
            Ok(_) => {}
        }
    }
    out
}

/// Is `when` unmet only because of the kernel's version? Then the scenario
/// tests something this kernel does not have (an ioctl, a code path that
/// came later): it does not apply here, which is not a skip. A config
/// condition that does not hold is a skip: the build could turn it on.
pub fn version_excludes(when: &When, k: &KernelFacts) -> bool {
    let version_unmet = match (
        when.kernel.as_deref().map(parse_kernel),
        release_version(&k.release),
    ) {
        (Some(Ok(req)), Some(v)) => !req.holds_for(v),
        _ => false,
    };
    let config_holds = when
        .config
        .as_deref()
        .is_none_or(|c| parse_config(c).is_ok_and(|c| c.holds_for(k)));
    version_unmet && config_holds
}

/// Do all the conditions `when` gives hold for `k` and an instance on
/// `device` (a `device` condition never holds without a device)?
pub fn matches(when: &When, k: &KernelFacts, device: Option<DeviceKind>) -> bool {
    unmet(when, k).is_empty() && when.device.is_none_or(|d| Some(d) == device)
}

/// `s` for kernel `k` and device memory `device`: `Err(reason)` when its
/// `requires` does not hold (the scenario is then a skip with that reason);
/// otherwise a copy with each step's first matching variant applied, no
/// variants left, no `requires`, and `device` set to the one given.
pub fn resolve(
    s: &Scenario,
    k: &KernelFacts,
    device: Option<DeviceKind>,
) -> Result<Scenario, String> {
    if let Some(req) = &s.requires {
        let why = unmet(req, k);
        if !why.is_empty() {
            return Err(why.join("; "));
        }
    }
    let mut out = s.clone();
    out.requires = None;
    if let Some(ks) = &mut out.kselftest {
        ks.known_failure
            .retain(|f| f.when.as_ref().is_none_or(|w| matches(w, k, None)));
        for f in &mut ks.known_failure {
            f.when = None;
        }
        ks.exclude
            .retain(|x| x.when.as_ref().is_none_or(|w| matches(w, k, None)));
        for x in &mut ks.exclude {
            x.when = None;
        }
    }
    out.known_warning
        .retain(|f| f.when.as_ref().is_none_or(|w| matches(w, k, None)));
    for f in &mut out.known_warning {
        f.when = None;
    }
    out.device = device;
    for step in &mut out.step {
        let variants = std::mem::take(&mut step.variant);
        if let Some(v) = variants.into_iter().find(|v| matches(&v.when, k, device)) {
            if v.expect_cpages.is_some() {
                step.expect_cpages = v.expect_cpages;
            }
            if v.expect_faults.is_some() {
                step.expect_faults = v.expect_faults;
            }
            if v.expect_errno.is_some() {
                step.expect_errno = v.expect_errno;
            }
            if let Some(e) = v.expect {
                step.expect = e;
            }
            if v.smaps.is_some() {
                step.smaps = v.smaps;
            }
        }
        let coherent = device == Some(DeviceKind::Coherent);
        for e in &mut step.expect {
            e.state = for_device(&e.state, coherent);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmmlab_proto::scenario::PageRange;
    use hmmlab_proto::scenario::{Op, StateExpect, Step, Variant};

    fn facts(release: &str) -> KernelFacts {
        KernelFacts::from_dotconfig(
            release,
            "#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_HMM_MIRROR=y\n\
             CONFIG_TEST_HMM=m\n# CONFIG_DEVICE_PRIVATE is not set\nCONFIG_LOCALVERSION=\"-hmm\"\n\
             CONFIG_NR_CPUS=64\nCONFIG_OFF=n\n",
        )
    }

    fn kernel(cond: &str, release: &str) -> bool {
        matches(
            &When {
                kernel: Some(cond.into()),
                config: None,
                device: None,
            },
            &facts(release),
            None,
        )
    }

    fn config(cond: &str) -> bool {
        matches(
            &When {
                kernel: None,
                config: Some(cond.into()),
                device: None,
            },
            &facts("6.12.117"),
            None,
        )
    }

    #[test]
    fn dotconfig() {
        let k = facts("6.12.117\n");
        assert_eq!(k.release, "6.12.117");
        assert_eq!(k.config["CONFIG_TEST_HMM"], "m");
        assert_eq!(k.config["CONFIG_DEVICE_PRIVATE"], "n");
        assert_eq!(k.config["CONFIG_LOCALVERSION"], "-hmm");
        assert_eq!(k.config.len(), 6);
    }

    #[test]
    fn kernel_syntax() {
        for good in [
            ">=6.3",
            "<6.2",
            "6.12",
            "=6.1.192",
            "==6",
            "> 6.12",
            " <=7.0.0 ",
        ] {
            parse_kernel(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            ">=",
            "6.",
            ".6",
            "6..1",
            "6.1.2.3",
            "v6.1",
            "6.1-rc1",
            "=>6",
            "~6.1",
            "6,1",
            "99999999999",
        ] {
            assert!(parse_kernel(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_kernel(">=6.3").unwrap(),
            KernelReq {
                op: VersionOp::Ge,
                version: vec![6, 3]
            }
        );
    }

    #[test]
    fn version_comparison_edges() {
        // Missing parts are 0.
        assert!(kernel(">=6.3", "6.3.0"));
        assert!(kernel(">=6.3", "6.3"));
        assert!(!kernel(">=6.3", "6.2.99"));
        assert!(kernel(">6.12", "6.12.1"));
        assert!(!kernel(">6.12", "6.12.0"));
        assert!(kernel("<6.2", "6.1.255"));
        assert!(!kernel("<6.2", "6.2.0"));
        assert!(kernel("<=6.2", "6.2.0"));
        assert!(!kernel("<=6.2", "6.2.1"));
        // Numeric, not lexical.
        assert!(kernel(">=6.9", "6.12.117"));
        assert!(kernel("<6.10", "6.9.12"));
        assert!(kernel(">=6", "10.0"));
        // Bare and `=` compare the parts given only.
        assert!(kernel("6.12", "6.12.117"));
        assert!(kernel("=6.12", "6.12.0"));
        assert!(kernel("==6", "6.19.3"));
        assert!(!kernel("6.12", "6.1.12"));
        assert!(!kernel("6.1", "6.12.0"));
        assert!(kernel("=6.1.192", "6.1.192"));
        assert!(!kernel("=6.1.192", "6.1.19"));
        // Release suffixes are ignored.
        assert!(kernel(">=6.13", "6.13.0-rc2+"));
        assert!(kernel("6.13", "6.13-rc2"));
        assert!(kernel("=6.12.117", "6.12.117-hmmlab-00001-gabcdef"));
        // An unreadable release matches nothing.
        assert!(!kernel("<100", "unknown"));
        assert!(!kernel(">=0", ""));
    }

    #[test]
    fn release_versions() {
        assert_eq!(release_version("6.12.117"), Some([6, 12, 117]));
        assert_eq!(release_version("6.13-rc2"), Some([6, 13, 0]));
        assert_eq!(release_version("6.13.0-rc2+"), Some([6, 13, 0]));
        assert_eq!(release_version("6"), Some([6, 0, 0]));
        assert_eq!(release_version("6.x"), None);
        assert_eq!(release_version("x"), None);
    }

    #[test]
    fn config_syntax() {
        for good in [
            "CONFIG_X",
            "!CONFIG_X",
            "CONFIG_X=y",
            "CONFIG_NR_CPUS=64",
            "CONFIG_A_1=\"s\"",
        ] {
            parse_config(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            "X",
            "CONFIG_",
            "config_x",
            "CONFIG_x",
            "CONFIG-X",
            "!",
            "!CONFIG_X=y",
            "CONFIG_X=",
            "CONFIG_X=\"\"",
            "CONFIG_X Y",
        ] {
            assert!(parse_config(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_conditions() {
        assert!(config("CONFIG_HMM_MIRROR"));
        assert!(config("CONFIG_TEST_HMM"), "m counts as set");
        assert!(config("CONFIG_NR_CPUS"));
        assert!(!config("CONFIG_DEVICE_PRIVATE"), "`is not set`");
        assert!(!config("CONFIG_OFF"), "=n");
        assert!(!config("CONFIG_ABSENT"));
        assert!(config("!CONFIG_DEVICE_PRIVATE"));
        assert!(config("!CONFIG_ABSENT"));
        assert!(!config("!CONFIG_TEST_HMM"));
        assert!(config("CONFIG_TEST_HMM=m"));
        assert!(!config("CONFIG_TEST_HMM=y"));
        assert!(config("CONFIG_NR_CPUS=64"));
        assert!(config("CONFIG_LOCALVERSION=-hmm"));
        assert!(config("CONFIG_LOCALVERSION=\"-hmm\""));
        assert!(config("CONFIG_ABSENT=n"));
        assert!(config("CONFIG_OFF=n"));
        assert!(!config("CONFIG_HMM_MIRROR=n"));
    }

    #[test]
    fn both_fields_must_hold() {
        let w = When {
            kernel: Some(">=6.10".into()),
            config: Some("CONFIG_TEST_HMM".into()),
            device: None,
        };
        assert!(matches(&w, &facts("6.12.117"), None));
        assert!(!matches(&w, &facts("6.9.1"), None));
        let w = When {
            config: Some("CONFIG_ABSENT".into()),
            ..w
        };
        assert!(!matches(&w, &facts("6.12.117"), None));
        assert!(matches(&When::default(), &facts("6.12.117"), None));
    }

    fn scenario(requires: Option<When>, variants: Vec<Variant>) -> Scenario {
        let text = "description = \"d\"\n[mapping]\nkind = \"anon-private\"\npages = 16\n\
                    [[step]]\nop = \"migrate-to-device\"\nexpect_cpages = 16\n\
                    [[step]]\nop = \"snapshot\"\n[[step.expect]]\npages = [0, 16]\nstate = \"none\"\n";
        let mut s = crate::scenario::parse_str(std::path::Path::new("t.toml"), text).unwrap();
        s.requires = requires;
        s.step[1].variant = variants;
        s
    }

    fn variant(kernel: &str) -> Variant {
        Variant {
            when: When {
                kernel: Some(kernel.into()),
                config: None,
                device: None,
            },
            expect_cpages: None,
            expect_faults: None,
            expect_errno: None,
            expect: None,
            smaps: None,
        }
    }

    fn expect(state: &str) -> Vec<StateExpect> {
        vec![StateExpect {
            pages: PageRange(0, 16),
            state: state.into(),
        }]
    }

    #[test]
    fn skip_reasons() {
        let k = facts("6.12.117");
        let req = |kernel: Option<&str>, config: Option<&str>| {
            resolve(
                &scenario(
                    Some(When {
                        kernel: kernel.map(Into::into),
                        config: config.map(Into::into),
                        device: None,
                    }),
                    vec![],
                ),
                &k,
                None,
            )
        };
        assert_eq!(
            req(Some(">=6.13"), None).unwrap_err(),
            "requires kernel >=6.13 (this is 6.12.117)"
        );
        assert_eq!(
            req(None, Some("CONFIG_X")).unwrap_err(),
            "requires CONFIG_X (not set in this kernel)"
        );
        assert_eq!(
            req(None, Some("!CONFIG_TEST_HMM")).unwrap_err(),
            "requires !CONFIG_TEST_HMM (CONFIG_TEST_HMM=m in this kernel)"
        );
        assert_eq!(
            req(None, Some("CONFIG_TEST_HMM=y")).unwrap_err(),
            "requires CONFIG_TEST_HMM=y (CONFIG_TEST_HMM=m in this kernel)"
        );
        assert_eq!(
            req(Some("<6.2"), Some("CONFIG_DEVICE_PRIVATE")).unwrap_err(),
            "requires kernel <6.2 (this is 6.12.117); \
             requires CONFIG_DEVICE_PRIVATE (not set in this kernel)"
        );
        let ok = req(Some("6.12"), Some("CONFIG_TEST_HMM")).unwrap();
        assert_eq!(ok.requires, None);
    }

    #[test]
    fn only_a_version_that_does_not_hold_makes_a_scenario_not_apply() {
        let k = facts("6.12.117");
        let w = |kernel: Option<&str>, config: Option<&str>| When {
            kernel: kernel.map(Into::into),
            config: config.map(Into::into),
            device: None,
        };
        assert!(version_excludes(&w(Some(">=7.2"), None), &k));
        assert!(version_excludes(
            &w(Some(">=7.2"), Some("CONFIG_TEST_HMM")),
            &k
        ));
        // Met, or unmet for a reason the build can change: not excluded.
        assert!(!version_excludes(&w(Some(">=6.12"), None), &k));
        assert!(!version_excludes(&w(None, Some("CONFIG_X")), &k));
        assert!(!version_excludes(&w(Some(">=7.2"), Some("CONFIG_X")), &k));
        // A version that cannot be read or a bad condition is not a reason.
        assert!(!version_excludes(&w(Some(">=7.2"), None), &facts("weird")));
        assert!(!version_excludes(&w(Some(">=x"), None), &k));
    }

    #[test]
    fn a_smaps_variant_replaces_the_steps_fields_where_it_matches() {
        use hmmlab_proto::scenario::SmapsField::*;
        let text = "description = \"d\"\n[mapping]\nkind = \"anon-private\"\npages = 16\n\
                    [[step]]\nop = \"check-smaps\"\nsmaps = { rss = 16, referenced = 1 }\n\
                    [[step.variant]]\nwhen = { config = \"!CONFIG_SWAP\" }\n\
                    smaps = { rss = 16, referenced = 0 }\n";
        let s = crate::scenario::parse_str(std::path::Path::new("t.toml"), text).unwrap();
        let without = resolve(&s, &facts("7.3.4"), None).unwrap();
        assert_eq!(
            without.step[0].smaps,
            Some([(Rss, 16), (Referenced, 0)].into())
        );
        assert!(without.step[0].variant.is_empty());
        let with = KernelFacts::from_dotconfig("7.3.4", "CONFIG_SWAP=y\n");
        let r = resolve(&s, &with, None).unwrap();
        assert_eq!(r.step[0].smaps, Some([(Rss, 16), (Referenced, 1)].into()));
    }

    #[test]
    fn first_matching_variant_wins() {
        let mut a = variant(">=6.13");
        a.expect = Some(expect("dev-private-local"));
        let mut b = variant(">=6.12");
        b.expect_cpages = Some(7);
        b.expect = Some(expect("write"));
        let mut c = variant(">=6.1");
        c.expect = Some(expect("read"));
        c.expect_errno = Some(22);
        let s = scenario(None, vec![a, b, c]);
        let r = resolve(&s, &facts("6.12.117"), None).unwrap();
        assert!(r.step.iter().all(|st| st.variant.is_empty()));
        assert_eq!(r.step[1].expect, expect("write"));
        assert_eq!(r.step[1].expect_cpages, Some(7));
        assert_eq!(r.step[1].expect_errno, None, "only the first match applies");
        // Fields a variant does not give keep the step's values.
        assert_eq!(r.step[0], s.step[0]);
        let r = resolve(&s, &facts("6.6.60"), None).unwrap();
        assert_eq!(r.step[1].expect, expect("read"));
        assert_eq!(r.step[1].expect_errno, Some(22));
        assert_eq!(r.step[1].expect_cpages, None);
        // No variant matches: the step as written.
        let r = resolve(&s, &facts("5.15.1"), None).unwrap();
        assert_eq!(r.step[1].expect, expect("none"));
        let base = Step {
            variant: vec![],
            ..s.step[1].clone()
        };
        assert_eq!(r.step[1], base);
        assert_eq!(base.op, Op::Snapshot);
    }

    #[test]
    fn device_variants_hold_only_for_their_device() {
        let mut a = variant(">=6.1");
        a.when.device = Some(DeviceKind::Coherent);
        a.expect = Some(expect("dev-coherent-local+write"));
        let s = scenario(None, vec![a]);
        let k = facts("6.12.117");
        let r = resolve(&s, &k, Some(DeviceKind::Coherent)).unwrap();
        assert_eq!(r.step[1].expect, expect("dev-coherent-local+write"));
        assert_eq!(r.device, Some(DeviceKind::Coherent));
        // Device-neutral state names resolve to the instance's device.
        let mut b = variant(">=6.1");
        b.expect = Some(expect("dev-local+write"));
        let s2 = scenario(None, vec![b]);
        let r = resolve(&s2, &k, Some(DeviceKind::Coherent)).unwrap();
        assert_eq!(r.step[1].expect, expect("dev-coherent-local+write"));
        let r = resolve(&s2, &k, None).unwrap();
        assert_eq!(r.step[1].expect, expect("dev-private-local+write"));
        for other in [Some(DeviceKind::Private), None] {
            let r = resolve(&s, &k, other).unwrap();
            assert_eq!(r.step[1].expect, expect("none"), "{other:?}");
            assert_eq!(r.device, other);
        }
    }
}
