//! What a run tells its reporters, in the order it happens. The engine
//! ([`crate::engine`]) emits these; every reporter ([`crate::report::reporters`])
//! matches every variant, so a new event makes the compiler point at each.

use std::path::PathBuf;
use std::time::Duration;

use hmmlab_proto::scenario::ThpMode;

use crate::assemble::Planned;
use crate::console::Finding;
use crate::machine::Accel;
use crate::report::model::HostFacts;
use crate::report::{BuiltKernel, RunStatus, ScenarioResult, StepResult};

#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The run directory exists; what the run was asked to do.
    RunStarted(RunStart),
    /// The kernel stage is done: the build that will boot, checked.
    KernelReady(Box<BuiltKernel>),
    /// The plan: the instances the guest will run, and those skipped here
    /// with their reason (already final).
    Planned {
        planned: Vec<Planned>,
        skipped: Vec<ScenarioResult>,
    },
    /// QEMU was started with this accelerator and command.
    VmStarted(VmStart),
    /// The guest driver said hello: the kernel booted to userspace.
    BootFinished(Boot),
    ScenarioStarted {
        at: Duration,
        name: String,
        thp: ThpMode,
    },
    StepFinished {
        at: Duration,
        scenario: String,
        step: StepResult,
    },
    /// A scenario ended in the guest; its result as far as the guest tells
    /// (console findings are added when the run finishes).
    ScenarioFinished {
        at: Duration,
        result: ScenarioResult,
    },
    /// The guest driver itself failed.
    GuestFatal { at: Duration, message: String },
    /// A QMP event (SHUTDOWN, GUEST_PANICKED, …).
    QmpEvent { at: Duration, name: String },
    /// A panic, Oops, BUG, WARNING, sanitizer report, lockup or stall in the
    /// console, with the scenario it fell in if any.
    ConsoleFinding(Finding),
    /// The infrastructure failed; what it was doing and why.
    InfraError { message: String },
    /// The last event of every run, however it ended.
    RunFinished(RunEnd),
}

#[derive(Debug, Clone)]
pub struct RunStart {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub started_unix: u64,
    pub host: HostFacts,
    /// The THP modes asked for, comma-separated.
    pub default_thp: String,
    /// `--fail-on-skip`: every skip becomes a failure when the run ends.
    pub fail_on_skip: bool,
}

#[derive(Debug, Clone)]
pub struct VmStart {
    pub pid: u32,
    pub accel: Accel,
    pub accel_reason: String,
    pub qemu_command: String,
    pub qemu_version: String,
}

#[derive(Debug, Clone)]
pub struct Boot {
    /// QEMU's start → the guest's hello, host clock.
    pub at: Duration,
    pub kernel_release: String,
    pub uptime_ns: u64,
    pub thp_modes: String,
    pub devices: Vec<String>,
    pub proc_version: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RunEnd {
    pub status: RunStatus,
    /// Every scenario's final result, planned and skipped.
    pub scenarios: Vec<ScenarioResult>,
    pub error: Option<String>,
    /// The last console lines when the VM did not end normally.
    pub console_tail: Vec<String>,
    pub vm_time: Option<Duration>,
    pub crash_to_end: Option<Duration>,
    /// The banner the guest reported, if it did.
    pub booted_kernel: Option<String>,
}

impl RunEnd {
    /// A run that ended before any result: nothing of it counts.
    pub fn without_results(status: RunStatus, error: String) -> RunEnd {
        RunEnd {
            status,
            scenarios: vec![],
            error: Some(error),
            console_tail: vec![],
            vm_time: None,
            crash_to_end: None,
            booted_kernel: None,
        }
    }
}
