//! The scenario process: what runs after fork(), and how it tells PID 1 its
//! outcome (the exit status) and why (a message on a pipe).

use std::os::fd::{IntoRawFd, OwnedFd, RawFd};

use hmmlab_proto::plan::PlannedScenario;
use hmmlab_proto::scenario::Kind;
use hmmlab_proto::Outcome;

use crate::results::Results;
use crate::{kselftest, steps};

/// How a scenario ended, as seen from inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub message: Option<String>,
}

impl Verdict {
    pub fn pass() -> Verdict {
        Verdict {
            outcome: Outcome::Pass,
            message: None,
        }
    }
    pub fn with(outcome: Outcome, message: impl Into<String>) -> Verdict {
        Verdict {
            outcome,
            message: Some(message.into()),
        }
    }
    pub fn error(message: impl Into<String>) -> Verdict {
        Verdict::with(Outcome::Error, message)
    }
}

// Exit statuses of the scenario process: the one place they are defined.
// Skip is 4 like the kselftest convention (KSFT_SKIP). Timeout and Crashed are
// never exited with: PID 1 finds those out itself.
pub const EXIT_PASS: i32 = 0;
pub const EXIT_FAIL: i32 = 1;
pub const EXIT_ERROR: i32 = 2;
pub const EXIT_SKIP: i32 = 4;

pub fn exit_code(outcome: Outcome) -> i32 {
    match outcome {
        Outcome::Pass => EXIT_PASS,
        Outcome::Fail => EXIT_FAIL,
        Outcome::Skip => EXIT_SKIP,
        Outcome::Error | Outcome::Timeout | Outcome::Crashed => EXIT_ERROR,
    }
}

pub fn outcome_of_exit(code: i32) -> Option<Outcome> {
    match code {
        EXIT_PASS => Some(Outcome::Pass),
        EXIT_FAIL => Some(Outcome::Fail),
        EXIT_ERROR => Some(Outcome::Error),
        EXIT_SKIP => Some(Outcome::Skip),
        _ => None,
    }
}

/// Run the scenario and exit; never returns into PID 1's code.
pub fn run_child(planned: &PlannedScenario, results: &Results, report: OwnedFd) -> ! {
    // A process group of its own, so that a timeout also kills what this
    // process starts (selftest binaries and their children).
    // SAFETY: plain syscall.
    unsafe { libc::setpgid(0, 0) };

    let report = report.into_raw_fd();
    // PID 1's hook would power the VM off; here a panic is this scenario's
    // error, and must not reach the kernel as a dying init.
    std::panic::set_hook(Box::new(move |info| {
        write_all(
            report,
            format!("scenario process panicked: {info}").as_bytes(),
        );
        // SAFETY: _exit is always safe to call; skipping destructors is the point.
        unsafe { libc::_exit(EXIT_ERROR) }
    }));

    let scenario = &planned.scenario;
    let verdict = match scenario.kind {
        Kind::Steps => steps::run(&planned.name, scenario, results),
        Kind::Kselftest => kselftest::run(&planned.name, scenario.kselftest.as_ref(), results),
    };
    if let Some(message) = &verdict.message {
        write_all(report, message.as_bytes());
    }
    // _exit, not exit: nothing of PID 1's inherited state is ours to flush.
    // SAFETY: as above.
    unsafe { libc::_exit(exit_code(verdict.outcome)) }
}

/// Best effort: the pipe holds far more than a message, so this does not
/// block; on error the parent just sees no message.
fn write_all(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: bytes is a valid buffer of bytes.len() bytes.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_round_trip() {
        for o in [Outcome::Pass, Outcome::Fail, Outcome::Skip, Outcome::Error] {
            assert_eq!(outcome_of_exit(exit_code(o)), Some(o));
        }
        assert_eq!(
            outcome_of_exit(exit_code(Outcome::Timeout)),
            Some(Outcome::Error)
        );
        assert_eq!(outcome_of_exit(101), None);
    }
}
