//! Choosing the accelerator. KVM is used only when a probe boot shows it
//! works: on some machines /dev/kvm exists but a KVM guest hangs or QEMU
//! aborts. The verdict is cached per host boot and QEMU version.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use hmmlab_harness::machine::{Accel, Machine};
use hmmlab_harness::qemu::{self, Boot};
use hmmlab_harness::runner::{self, RunConfig};
use hmmlab_proto::Record;

use crate::cli::AccelChoice;

/// How long a probe boot may take to say hello.
const PROBE_LIMIT: Duration = Duration::from_secs(8);

pub struct Choice {
    pub accel: Accel,
    pub reason: String,
}

/// `probe_boot` is the boot (kernel + a probe-mode initramfs) to try under KVM.
pub fn choose(
    choice: AccelChoice,
    m: &Machine,
    probe_boot: impl FnOnce() -> Result<Boot>,
) -> Result<Choice> {
    let fixed = |accel, reason: &str| Choice {
        accel,
        reason: reason.into(),
    };
    match choice {
        AccelChoice::Tcg => return Ok(fixed(Accel::Tcg, "--accel tcg")),
        AccelChoice::Kvm => return Ok(fixed(Accel::Kvm, "--accel kvm")),
        AccelChoice::Auto => {}
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return Ok(fixed(Accel::Tcg, &format!("/dev/kvm unusable ({e})")));
    }
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let cache = crate::paths::cache_root().join("accel-probe.json");
    let key = format!("{}|{}", boot_id.trim(), crate::run::qemu_version(&m.qemu));
    if let Some(c) = cached(&cache, &key) {
        return Ok(c);
    }
    eprintln!(
        "accel: /dev/kvm opens; probing whether a KVM guest really boots (once per host boot) …"
    );
    let verdict = probe(m, probe_boot()?)?;
    let _ = write_cache(&cache, &key, &verdict);
    Ok(verdict)
}

/// The verdict of an earlier probe on this host boot and QEMU version.
fn cached(cache: &Path, key: &str) -> Option<Choice> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cache).ok()?).ok()?;
    if v["key"] != key {
        return None;
    }
    Some(Choice {
        accel: serde_json::from_value(v["accel"].clone()).unwrap_or(Accel::Tcg),
        reason: format!(
            "{} (probe cached for this host boot)",
            v["reason"].as_str().unwrap_or("")
        ),
    })
}

/// Boot `boot` under KVM with short limits: KVM if the guest says hello.
fn probe(m: &Machine, mut boot: Boot) -> Result<Choice> {
    boot.accel = Accel::Kvm;
    let dir = tempfile::Builder::new()
        .prefix("hmmlab-kvm-probe-")
        .tempdir()?;
    boot.console_log = dir.path().join("console.log");
    boot.results_log = dir.path().join("results.jsonl");
    boot.qmp_socket = dir.path().join("qmp.sock");
    let cfg = RunConfig {
        argv: qemu::argv(m, &boot),
        run_dir: dir.path().to_path_buf(),
        results_log: boot.results_log.clone(),
        console_log: boot.console_log.clone(),
        qmp_socket: boot.qmp_socket.clone(),
        boot_timeout: PROBE_LIMIT,
        scenario_timeouts: Default::default(),
        default_scenario_timeout: PROBE_LIMIT,
        run_timeout: PROBE_LIMIT + Duration::from_secs(2),
    };
    let failed = |why: String| Choice {
        accel: Accel::Tcg,
        reason: format!("KVM probe boot failed: {why}"),
    };
    Ok(match runner::run(&cfg, &mut |_| {}) {
        Ok(r)
            if r.records
                .iter()
                .any(|(_, rec)| matches!(rec, Record::Hello { .. })) =>
        {
            Choice {
                accel: Accel::Kvm,
                reason: "KVM probe boot succeeded".into(),
            }
        }
        Ok(r) => failed(hmmlab_harness::assemble::describe(&r.end)),
        Err(e) => failed(summary(&e)),
    })
}

/// The error chain on one line, QEMU's own words included (e.g. "failed to set MSR").
fn summary(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let words: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut s = words.join(" | ");
    if s.len() > 400 {
        s.truncate(s.char_indices().nth(400).map(|(i, _)| i).unwrap_or(s.len()));
        s.push('…');
    }
    s
}

fn write_cache(path: &Path, key: &str, c: &Choice) -> Result<()> {
    std::fs::create_dir_all(path.parent().unwrap())?;
    let v = serde_json::json!({ "key": key, "accel": c.accel, "reason": c.reason });
    hmmlab_harness::report::write::write_atomic(path, &serde_json::to_vec_pretty(&v)?)
}
