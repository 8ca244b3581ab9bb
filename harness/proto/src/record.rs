//! Result records the guest sends to the host: one JSON object per line on
//! the results serial port ([`crate::plan::RESULTS_TTY`]).

use serde::{Deserialize, Serialize};

use crate::op::Op;

/// How a scenario (or a step) ended. A scenario starts as `Crashed` on the
/// host and only becomes `Pass` when its pass is seen.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
    Timeout,
    Crashed,
    /// The scenario could not be set up (mmap failed, device missing, …).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
            Outcome::Timeout => "timeout",
            Outcome::Crashed => "crashed",
            Outcome::Error => "error",
        }
    }
    /// Does this outcome make the run fail?
    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Pass | Outcome::Skip)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "t", rename_all = "kebab-case")]
pub enum Record {
    /// First record: the guest driver is PID 1 and ready.
    Hello {
        kernel_release: String,
        /// Guest uptime (CLOCK_BOOTTIME) when the driver started.
        uptime_ns: u64,
        /// Contents of /sys/kernel/mm/transparent_hugepage/enabled.
        thp_modes: String,
        /// The `/dev/hmm_dmirror*` nodes found.
        devices: Vec<String>,
        /// Contents of /proc/version: the booted kernel's banner, which the
        /// host compares with the one of the vmlinux it built.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proc_version: Option<String>,
    },
    /// The scenarios the guest is about to run, in order.
    Plan { scenarios: Vec<String> },
    ScenarioStart {
        name: String,
        thp: crate::scenario::ThpMode,
    },
    Step {
        scenario: String,
        index: u32,
        /// Written as the op's name, as scenario files write it.
        op: Op,
        outcome: Outcome,
        duration_ns: u64,
        /// Pages the step covered.
        pages: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cpages: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        faults: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A line of output of a scenario's child program (kselftest).
    Output { scenario: String, line: String },
    ScenarioEnd {
        name: String,
        outcome: Outcome,
        duration_ns: u64,
        /// Of `duration_ns`, the checks after the scenario: the release of
        /// test_hmm's device memory and the counters (0 when none ran).
        #[serde(default, skip_serializing_if = "is_zero")]
        checks_ns: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A check of the whole run, after the last scenario (`end of run`):
    /// sent only when it found something, as a result of its own.
    RunCheck {
        name: String,
        outcome: Outcome,
        message: String,
    },
    /// One measurement of a `kind = "bench"` scenario: a freshly mapped
    /// range of `pages` pages prepared as `case` says, then migrated to
    /// the device by one `HMM_DMIRROR_MIGRATE_TO_DEV`, which moved every
    /// page (checked). Times are CLOCK_MONOTONIC inside the guest; the THP
    /// mode is the scenario's (its start record).
    Sample {
        scenario: String,
        case: crate::bench::BenchCase,
        pages: u64,
        /// 0-based, warm-up rounds not counted.
        round: u32,
        /// The CPU touch before the migration (0 when there is none).
        prepare_ns: u64,
        /// The migration ioctl.
        migrate_ns: u64,
    },
    /// Last record: every planned scenario has ended; the guest powers off.
    Done,
    /// The driver itself failed outside any scenario.
    Fatal { message: String },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_tagged() {
        let r = Record::ScenarioEnd {
            name: "a".into(),
            outcome: Outcome::Pass,
            duration_ns: 5,
            checks_ns: 0,
            message: None,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"t":"scenario-end","name":"a","outcome":"pass","duration_ns":5}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&s).unwrap(), r);
    }

    #[test]
    fn step_records_name_their_op() {
        // As guests before the op was typed wrote it.
        let line = r#"{"t":"step","scenario":"a","index":0,"op":"migrate-to-device","outcome":"pass","duration_ns":7,"pages":4,"cpages":4}"#;
        let r: Record = serde_json::from_str(line).unwrap();
        let Record::Step { op, cpages, .. } = &r else {
            panic!("{r:?}");
        };
        assert_eq!((*op, *cpages), (Op::MigrateToDevice, Some(4)));
        assert_eq!(serde_json::to_string(&r).unwrap(), line);
        for op in Op::ALL {
            let r = Record::Step {
                scenario: "a".into(),
                index: 1,
                op,
                outcome: Outcome::Fail,
                duration_ns: 0,
                pages: 1,
                cpages: None,
                faults: None,
                message: Some("m".into()),
            };
            let s = serde_json::to_string(&r).unwrap();
            assert!(s.contains(&format!(r#""op":"{}""#, op.as_str())), "{s}");
            assert_eq!(serde_json::from_str::<Record>(&s).unwrap(), r);
        }
    }

    #[test]
    fn a_scenario_start_names_its_thp_mode_as_before() {
        let line = r#"{"t":"scenario-start","name":"a@madvise","thp":"madvise"}"#;
        let r: Record = serde_json::from_str(line).unwrap();
        assert_eq!(
            r,
            Record::ScenarioStart {
                name: "a@madvise".into(),
                thp: crate::scenario::ThpMode::Madvise
            }
        );
        assert_eq!(serde_json::to_string(&r).unwrap(), line);
    }
}
