//! The plan the host writes into the initramfs as `/hmmlab/plan.json`.

use serde::{Deserialize, Serialize};

use crate::scenario::{Scenario, ThpMode};

/// Path of the plan inside the initramfs.
pub const PLAN_PATH: &str = "/hmmlab/plan.json";
/// Directory of helper binaries (the kernel's own selftests) inside the initramfs.
pub const BIN_DIR: &str = "/hmmlab/bin";
/// The guest's results channel: the second serial port.
pub const RESULTS_TTY: &str = "/dev/ttyS1";

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
