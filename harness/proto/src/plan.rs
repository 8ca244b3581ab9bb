//! The plan the host writes into the initramfs as `/hmmlab/plan.json`.

use serde::{Deserialize, Serialize};

use crate::scenario::{Scenario, ThpMode};

/// Path of the plan inside the initramfs.
pub const PLAN_PATH: &str = "/hmmlab/plan.json";
/// Directory of helper binaries (the kernel's own selftests) inside the initramfs.
pub const BIN_DIR: &str = "/hmmlab/bin";
/// The guest's results channel: the second serial port.
pub const RESULTS_TTY: &str = "/dev/ttyS1";
/// After each scenario the guest gives test_hmm's device memory back
/// (HMM_DMIRROR_RELEASE), which waits for every device page to be freed:
/// a page still referenced makes it wait for good, so it gets this long.
/// A healthy release of a chunk takes well under a second.
pub const RELEASE_TIMEOUT_MS: u64 = 10_000;
/// How long the guest waits for the kernel's counters to come back to
/// their baseline after a scenario before it calls the difference a leak.
pub const SETTLE_MS: u64 = 2_000;
/// What the checks after a scenario may add to its own timeout.
pub const AFTER_SCENARIO_MS: u64 = RELEASE_TIMEOUT_MS + SETTLE_MS;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// THP mode for scenarios that do not name one.
    pub default_thp: ThpMode,
    /// Per-scenario timeout, enforced by the guest (the host adds slack).
    pub scenario_timeout_ms: u64,
    /// What the guest does: run the scenarios, or only say hello (accel probe).
    #[serde(default)]
    pub mode: Mode,
    /// The `/dev` nodes the guest must find before it runs anything (the
    /// machine file's `devices`): one missing is the run's error, never a
    /// scenario skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// A coverage run: which gcov counters to send after each scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<crate::coverage::CoveragePlan>,
    /// Stop at the first scenario that fails: the rest are reported
    /// skipped, saying so ([`STOPPED`]; a mutant's run needs one failure,
    /// not all).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stop_at_failure: bool,
    pub scenarios: Vec<PlannedScenario>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    Run,
    /// Report `hello`, then power off: used to probe whether an accelerator boots.
    Probe,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlannedScenario {
    /// Unique name (the scenario file's stem).
    pub name: String,
    pub scenario: Scenario,
}

/// How the message of a scenario skipped after a run's first failure
/// (`Plan::stop_at_failure`) ends: a run whose scenarios all passed but
/// which says this stopped for a failure the host does not see, and did
/// not run everything.
pub const STOPPED: &str = "and this run stops at the first failure";
