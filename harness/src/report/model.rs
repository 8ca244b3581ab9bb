//! What a run produced, as written to `results/<run-id>/run.json`.

use hmmlab_proto::scenario::{DeviceKind, Op, ThpMode};
use hmmlab_proto::Outcome;
use serde::{Deserialize, Serialize};

use crate::console::Finding;
use crate::machine::Accel;

use super::skips::Skips;

/// Where a run is, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Still going (or killed without a chance to say more).
    Running,
    /// The VM ran to an end; each scenario has its outcome.
    Finished,
    /// SIGINT or SIGTERM; what finished is kept.
    Interrupted,
    /// The infrastructure failed (build, QEMU, the wrong kernel booted):
    /// no result of this run is counted.
    InfraError,
    /// An input was refused (a patch that does not apply, a bad fragment).
    BadInput,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Interrupted => "interrupted",
            RunStatus::InfraError => "infra-error",
            RunStatus::BadInput => "bad-input",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kernel stage's facts about the build that ran. The fields every
/// consumer reads are typed; the rest (paths, cache reuse, the image check)
/// is kept as it came, so run.json written by any version reads back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuiltKernel {
    #[serde(default)]
    pub key: String,
    /// `debian:7.3`, `tarball:…` or `path:…`.
    #[serde(default)]
    pub source: String,
    /// Package version or tree state the build key was made from.
    #[serde(default)]
    pub identity: String,
    /// `make kernelrelease`.
    #[serde(default)]
    pub release: String,
    #[serde(default)]
    pub patches: Vec<String>,
    #[serde(default)]
    pub fragments: Vec<String>,
    #[serde(default)]
    pub config_hash: String,
    /// The vmlinux's `linux_banner`; the guest must report the same.
    #[serde(default)]
    pub banner: String,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    pub status: RunStatus,
    /// Kernel source, release, config hash, patches (from the kernel stage).
    pub kernel: BuiltKernel,
    pub qemu_version: String,
    pub accel: Accel,
    /// Why that accelerator was chosen.
    pub accel_reason: String,
    /// The exact QEMU command line, shell-quoted.
    pub qemu_command: String,
    pub default_thp: String,
    pub host: HostFacts,
    pub timing: Timing,
    pub scenarios: Vec<ScenarioResult>,
    /// Console findings not inside any scenario (boot, shutdown).
    #[serde(default)]
    pub console_findings: Vec<Finding>,
    /// The last console lines, when the run did not end normally.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub console_tail: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Skipped instances and selftest cases, per reason (at the end).
    #[serde(default, skip_serializing_if = "Skips::is_none")]
    pub skips: Skips,
    /// `--fail-on-skip`: every skip was made a failure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail_on_skip: bool,
    /// The banner of the kernel that booted (the guest's /proc/version),
    /// checked against `kernel.banner`, the one that was built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booted_kernel: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostFacts {
    pub hostname: String,
    pub kernel: String,
    pub cpus: usize,
    pub memory_kib: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timing {
    /// QEMU spawned → guest driver's hello, host wall clock.
    pub boot_ms: Option<f64>,
    /// QEMU spawned → first scenario started.
    pub first_scenario_ms: Option<f64>,
    /// Guest uptime when the driver started (kernel boot inside the guest).
    pub guest_uptime_at_init_ms: Option<f64>,
    /// QEMU spawned → QEMU gone.
    pub vm_ms: Option<f64>,
    /// First sign of a crash (GUEST_PANICKED or a fatal console line) → QEMU gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_to_end_ms: Option<f64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub name: String,
    pub outcome: Outcome,
    /// None for a result of the run itself (a console finding outside
    /// every scenario: `boot`, `between A and B`, `shutdown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thp: Option<ThpMode>,
    /// Guest-measured duration.
    pub duration_ns: u64,
    /// Of `duration_ns`, the checks after the scenario (device memory
    /// released, counters compared).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub checks_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub steps: Vec<StepResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub console_findings: Vec<Finding>,
    /// Per-case results of a selftest, parsed from its TAP output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<CaseResult>,
    /// The known failures of a selftest that occurred (declared in its
    /// file, so they did not fail it), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_failures: Vec<String>,
    /// A skip because the scenario's `[requires] kernel` excludes this
    /// kernel's version: counted apart, never a failure of --fail-on-skip.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_applicable: bool,
    /// What a `kind = "bench"` scenario measured, in the order measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<super::bench::Sample>,
    /// One line that reruns just this scenario on the same kernel.
    pub reproduce: String,
}

/// One case of a selftest's TAP output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    pub name: String,
    /// `pass`, `fail`, `skip`, or `crashed`: planned but never reported.
    pub outcome: Outcome,
    /// Why it was skipped, or the diagnostics it printed when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ScenarioResult {
    /// A result with nothing run yet: no steps, output, findings or cases.
    pub fn new(
        name: &str,
        outcome: Outcome,
        thp: Option<ThpMode>,
        reproduce: &str,
    ) -> ScenarioResult {
        ScenarioResult {
            name: name.to_string(),
            outcome,
            thp,
            duration_ns: 0,
            checks_ns: 0,
            message: None,
            steps: vec![],
            output: vec![],
            console_findings: vec![],
            cases: vec![],
            known_failures: vec![],
            not_applicable: false,
            samples: vec![],
            reproduce: reproduce.to_string(),
        }
    }

    /// The instance's device memory, from its name: `<scenario>@<mode>@coherent`
    /// is coherent, every other instance private. None for a result of the
    /// run itself (no THP mode).
    pub fn device(&self) -> Option<DeviceKind> {
        self.thp?;
        Some(if self.name.ends_with("@coherent") {
            DeviceKind::Coherent
        } else {
            DeviceKind::Private
        })
    }

    /// How many of its cases ended with `o`.
    pub fn case_count(&self, o: Outcome) -> usize {
        self.cases.iter().filter(|c| c.outcome == o).count()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    pub index: u32,
    pub op: Op,
    pub outcome: Outcome,
    pub duration_ns: u64,
    pub pages: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpages: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<u64>,
    /// Pages per second for migrations (cpages / duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages_per_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RunReport {
    pub fn failed(&self) -> impl Iterator<Item = &ScenarioResult> {
        self.scenarios.iter().filter(|s| s.outcome.is_failure())
    }
    pub fn count(&self, o: Outcome) -> usize {
        self.scenarios.iter().filter(|s| s.outcome == o).count()
    }
}

#[cfg(test)]
impl RunReport {
    /// A finished run of `scenarios` with placeholder facts, for writer tests.
    pub(crate) fn for_tests(scenarios: Vec<ScenarioResult>) -> RunReport {
        RunReport {
            run_id: "r1".into(),
            started_unix: 0,
            status: RunStatus::Finished,
            kernel: BuiltKernel::default(),
            qemu_version: String::new(),
            accel: Accel::Tcg,
            accel_reason: String::new(),
            qemu_command: String::new(),
            default_thp: "madvise".into(),
            host: HostFacts::default(),
            timing: Timing::default(),
            scenarios,
            console_findings: vec![],
            console_tail: vec![],
            error: None,
            skips: Skips::default(),
            fail_on_skip: false,
            booted_kernel: None,
        }
    }
}

#[cfg(test)]
impl ScenarioResult {
    /// A result with nothing but its name and outcome, for writer tests.
    pub(crate) fn for_tests(name: &str, outcome: Outcome) -> ScenarioResult {
        ScenarioResult {
            duration_ns: 1,
            ..ScenarioResult::new(name, outcome, Some(ThpMode::Madvise), "")
        }
    }
}
