//! The scenario process: what runs after fork(), and how it tells PID 1 its
//! outcome (the exit status) and why (a message on a pipe).

use std::os::fd::{IntoRawFd, OwnedFd, RawFd};

use hmmlab_proto::plan::PlannedScenario;
use hmmlab_proto::scenario::Kind;
use hmmlab_proto::Outcome;

use crate::results::Results;
use crate::{bench, kselftest, steps};

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
// never exited with: PID 1 finds those out itself. EXIT_HANG_GUEST is no
// outcome but an order to PID 1 (`op = "hang-guest"`): stop answering for
// good, so that the host's timeout has to end the run.
//
//   status  meaning
//   0       pass
//   1       fail
//   2       error (also a panic in the scenario process)
//   3       hang-guest: PID 1 blocks forever, reporting nothing more
//   4       skip
//   other   error ("unexpected status")
pub const EXIT_PASS: i32 = 0;
pub const EXIT_FAIL: i32 = 1;
pub const EXIT_ERROR: i32 = 2;
pub const EXIT_HANG_GUEST: i32 = 3;
pub const EXIT_SKIP: i32 = 4;

/// What PID 1 makes of the scenario process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The scenario ended with this outcome.
    Ended(Outcome),
    /// The scenario asks PID 1 to hang (`op = "hang-guest"`).
    HangGuest,
}

pub fn exit_code(outcome: Outcome) -> i32 {
    match outcome {
        Outcome::Pass => EXIT_PASS,
        Outcome::Fail => EXIT_FAIL,
        Outcome::Skip => EXIT_SKIP,
        Outcome::Error | Outcome::Timeout | Outcome::Crashed => EXIT_ERROR,
    }
}

/// The meaning of exit status `code`; `None` for a status this module never
/// exits with.
pub fn exit_of_code(code: i32) -> Option<Exit> {
    match code {
        EXIT_PASS => Some(Exit::Ended(Outcome::Pass)),
        EXIT_FAIL => Some(Exit::Ended(Outcome::Fail)),
        EXIT_ERROR => Some(Exit::Ended(Outcome::Error)),
        EXIT_HANG_GUEST => Some(Exit::HangGuest),
        EXIT_SKIP => Some(Exit::Ended(Outcome::Skip)),
        _ => None,
    }
}

/// `op = "hang-guest"`: end the scenario process with [`EXIT_HANG_GUEST`],
/// reporting nothing, so that PID 1 stops answering.
pub fn exit_hang_guest() -> ! {
    // SAFETY: as in run_child: nothing of PID 1's state is ours to flush.
    unsafe { libc::_exit(EXIT_HANG_GUEST) }
}

/// Block this process forever without using the CPU: `op = "hang"` in the
/// scenario process, and PID 1 after `op = "hang-guest"`. pause() only
/// returns after a signal handler ran; then it is called again.
pub fn block_forever() -> ! {
    loop {
        // SAFETY: plain syscall.
        unsafe { libc::pause() };
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
    let verdict = match pin_to_this_cpu(scenario.pin_cpu) {
        Err(e) => Verdict::error(format!("pin_cpu: {e}")),
        Ok(()) => under_memcg(scenario.memcg_max_kib, || run_kind(planned, results)),
    };
    if let Some(message) = &verdict.message {
        write_all(report, message.as_bytes());
    }
    // _exit, not exit: nothing of PID 1's inherited state is ours to flush.
    // SAFETY: as above.
    unsafe { libc::_exit(exit_code(verdict.outcome)) }
}

fn run_kind(planned: &PlannedScenario, results: &Results) -> Verdict {
    let scenario = &planned.scenario;
    match scenario.kind {
        Kind::Steps => steps::run(&planned.name, scenario, results),
        Kind::Kselftest => kselftest::run(&planned.name, scenario.kselftest.as_ref(), results),
        Kind::Bench => bench::run(&planned.name, scenario, results),
    }
}

/// `memcg_max_kib`: run `f` in a memory cgroup of its own with that limit,
/// and leave it after (before `_exit`, which runs no destructor).
fn under_memcg(max_kib: Option<u64>, f: impl FnOnce() -> Verdict) -> Verdict {
    let Some(kib) = max_kib else {
        return f();
    };
    match crate::memcg::enter(kib) {
        Err(e) => Verdict::error(format!("memcg_max_kib: {e}")),
        Ok(memcg) => {
            let verdict = f();
            drop(memcg);
            verdict
        }
    }
}

/// `pin_cpu = true`: this process (and what it forks later) runs only on
/// the CPU it runs on now.
fn pin_to_this_cpu(pin: bool) -> std::io::Result<()> {
    if !pin {
        return Ok(());
    }
    // SAFETY: plain syscall.
    let cpu = unsafe { libc::sched_getcpu() };
    if cpu < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size given.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
            assert_eq!(exit_of_code(exit_code(o)), Some(Exit::Ended(o)));
        }
        assert_eq!(
            exit_of_code(exit_code(Outcome::Timeout)),
            Some(Exit::Ended(Outcome::Error))
        );
        assert_eq!(
            exit_of_code(exit_code(Outcome::Crashed)),
            Some(Exit::Ended(Outcome::Error))
        );
        assert_eq!(exit_of_code(101), None);
    }

    #[test]
    fn hang_guest_has_a_status_of_its_own() {
        assert_eq!(exit_of_code(EXIT_HANG_GUEST), Some(Exit::HangGuest));
        for o in [
            Outcome::Pass,
            Outcome::Fail,
            Outcome::Skip,
            Outcome::Error,
            Outcome::Timeout,
            Outcome::Crashed,
        ] {
            assert_ne!(exit_code(o), EXIT_HANG_GUEST, "{o:?}");
        }
        // Not Rust's panic status either.
        assert_ne!(EXIT_HANG_GUEST, 101);
    }
}
