//! PID 1's side of a run: for each planned scenario, set the THP mode, fork
//! the scenario process, wait for it within the timeout, and report how it
//! ended. A scenario that crashes, hangs or panics takes only its own process
//! down, never PID 1. The one exception is on purpose: `op = "hang-guest"`
//! makes PID 1 stop answering for good, to test the host's timeout.
//!
//! After each scenario PID 1 checks that it gave back what it took: it
//! releases test_hmm's device memory (release.rs) and compares the
//! kernel's counters with their values before the scenario (balance.rs).
//! A leak fails the scenario, naming the counter, its baseline and value.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::thread::sleep;
use std::time::Duration;

use hmmlab_proto::plan::PlannedScenario;
use hmmlab_proto::scenario::ThpMode;
use hmmlab_proto::{Outcome, Plan, Record};

use crate::balance::{self, Sample};
use crate::child::{self, Exit, Verdict};
use crate::coverage::Counters;
use crate::kmemleak;
use crate::release::{release_all, Released};
use crate::results::Results;
use crate::sysnames::{describe_errno, describe_signal, last_errno};
use crate::system::{monotonic_ns, set_thp};

/// How long a killed scenario process gets to die: one stuck in the kernel
/// may never, and the run goes on without it.
const KILL_GRACE_MS: u64 = 5_000;
/// Longest sleep between checks on the scenario process.
const MAX_NAP: Duration = Duration::from_millis(1);

pub fn run_plan(plan: &Plan, results: &Results, counters: Option<&Counters>) {
    let names = plan.scenarios.iter().map(|s| s.name.clone()).collect();
    results.emit(&Record::Plan { scenarios: names });
    balance::quiet_drop_caches();
    let locked = balance::lock_pid1();
    // test_hmm may take device memory at its initialisation: give it back
    // first, so that every scenario starts from none.
    let mut held = match release_all() {
        Released::Stuck(why) => Some(format!("before the first scenario: {why}")),
        Released::Done | Released::Failed(_) => None,
    };
    let first = locked.clone().and_then(|()| balance::sample());
    let kmemleak = kmemleak::start();
    // The counters a clean scenario came back to are the next one's
    // baseline: nothing but PID 1 (taken off) runs in between.
    let mut baseline = first.clone().ok();
    let mut failed: Option<String> = None;
    let mut passed_with_khugepaged = Vec::new();
    for planned in &plan.scenarios {
        match (&held, &failed) {
            (Some(why), _) => not_run(plan, planned, results, why),
            (None, Some(first)) => stopped(plan, planned, results, first),
            (None, None) => {
                let start = match baseline.take() {
                    Some(b) => Ok(b),
                    None => locked.clone().and_then(|()| balance::sample()),
                };
                let (outcome, khugepaged_ran);
                (held, baseline, outcome, khugepaged_ran) =
                    run_scenario(plan, planned, results, start, counters);
                if khugepaged_ran && !outcome.is_failure() {
                    passed_with_khugepaged.push(planned.name.clone());
                }
                if plan.stop_at_failure && outcome.is_failure() && stops_here(planned) {
                    failed = Some(planned.name.clone());
                }
            }
        }
    }
    if held.is_none() {
        if let Some(check) = end_of_run(first) {
            results.emit(&check);
        }
    }
    if let Some((name, message)) = crate::khugepaged::run_check(&passed_with_khugepaged) {
        results.emit(&Record::RunCheck {
            name,
            outcome: Outcome::Error,
            message,
        });
    }
    if let Some(check) = kmemleak_check(kmemleak) {
        results.emit(&check);
    }
    results.emit(&Record::Done);
}

/// Whether a failure of `planned` may stop a run that stops at the first
/// failure. Not a kernel selftest's: the host judges its cases against the
/// known failures of this kernel (`known_failures`), and one it excuses is
/// a pass, so a stop there would leave the rest of the run unrun for
/// nothing. (What the guest calls a pass the host may still fail, from the
/// console: that never stops the run.)
fn stops_here(planned: &PlannedScenario) -> bool {
    planned.scenario.kind != hmmlab_proto::scenario::Kind::Kselftest
}

/// The name of kmemleak's result, when it found something or could not run.
pub const KMEMLEAK: &str = "kmemleak";

/// kmemleak's scan after the last scenario, on kernels that have it.
fn kmemleak_check(started: Result<bool, String>) -> Option<Record> {
    let found = match started {
        Ok(false) => return None,
        Ok(true) => kmemleak::scan(monotonic_ns()),
        Err(e) => Err(e),
    };
    let (outcome, message) = match found {
        Ok(None) => return None,
        Ok(Some(report)) => (Outcome::Fail, report),
        Err(e) => (Outcome::Error, format!("kmemleak could not run: {e}")),
    };
    Some(Record::RunCheck {
        name: KMEMLEAK.to_string(),
        outcome,
        message,
    })
}

/// The name of the run's own result, when the checks after the last
/// scenario find something.
pub const END_OF_RUN: &str = "end of run";

/// After the last scenario, the counters against their values before the
/// first: what the scenarios' own checks cannot see, such as a page freed
/// late or taken between two scenarios. `None` when all is well (or when
/// no baseline could be read: every scenario already failed saying why).
fn end_of_run(first: Result<Sample, String>) -> Option<Record> {
    let leaks = match first.and_then(|b| balance::settle(&b)) {
        Ok((leaks, _)) => leaks,
        Err(_) => return None,
    };
    if leaks.is_empty() {
        return None;
    }
    let list: Vec<String> = leaks.iter().map(|l| l.to_string()).collect();
    Some(Record::RunCheck {
        name: END_OF_RUN.to_string(),
        outcome: Outcome::Fail,
        message: format!(
            "leak: after the last scenario, against before the first: {}",
            list.join("; ")
        ),
    })
}

/// Run one scenario from the counters `baseline` and report it; `Some(why)`
/// when device memory stayed held after it, so that no further scenario can
/// run, and the counters it came back to when it was clean.
///
/// In a coverage run the counters are zeroed just before the scenario
/// process starts and sent after its end is reported: what they count is
/// the scenario and the checks after it, the release of the device memory
/// it left behind included (that eviction runs `migrate_device_range()`
/// and the rest of the device-to-system path, and happens because the
/// scenario left pages there). Sending them after the end record keeps
/// the copy out of the scenario's duration and its host timeout; nothing
/// between the two runs code of the covered files.
fn run_scenario(
    plan: &Plan,
    planned: &PlannedScenario,
    results: &Results,
    baseline: Result<Sample, String>,
    counters: Option<&Counters>,
) -> (Option<String>, Option<Sample>, Outcome, bool) {
    let scenario = &planned.scenario;
    let thp = scenario.thp.unwrap_or(plan.default_thp);
    let timeout_ms = scenario.timeout_ms.unwrap_or(plan.scenario_timeout_ms);
    let was_never = crate::system::thp_modes().contains("[never]");
    let khugepaged_before = crate::khugepaged::counts();
    let thp_set = set_thp(thp).and_then(|()| {
        if was_never && thp != ThpMode::Never {
            crate::khugepaged::after_thread_start(khugepaged_before)
        } else {
            Ok(())
        }
    });
    let khugepaged_start = crate::khugepaged::counts();
    results.emit(&Record::ScenarioStart {
        name: planned.name.clone(),
        thp,
    });
    let marked = crate::kmsg::scenario_start(&planned.name);
    let start = monotonic_ns();
    let counting = counters.is_some_and(|c| c.reset(&planned.name));
    let mut verdict = match thp_set.and(marked) {
        Ok(()) => supervise(planned, results, timeout_ms),
        Err(e) => Verdict::error(e),
    };
    let khugepaged_ran = crate::khugepaged::ran(khugepaged_start, crate::khugepaged::counts());
    if let Some(why) = &khugepaged_ran {
        if verdict.outcome.is_failure() {
            verdict = with_problem(verdict, why.clone());
        }
    }
    let checks_start = monotonic_ns();
    let (after, held, clean) = after_scenario(baseline);
    let checks_ns = monotonic_ns() - checks_start;
    if let Some(problem) = after {
        verdict = with_problem(verdict, problem);
    }
    if let Err(e) = crate::kmsg::scenario_end(&planned.name) {
        if !verdict.outcome.is_failure() {
            verdict = Verdict::error(e);
        }
    }
    results.emit(&Record::ScenarioEnd {
        name: planned.name.clone(),
        outcome: verdict.outcome,
        duration_ns: monotonic_ns() - start,
        checks_ns,
        message: verdict.message,
    });
    if let Some(c) = counters.filter(|_| counting) {
        c.send(&planned.name);
    }
    (held, clean, verdict.outcome, khugepaged_ran.is_some())
}

/// The checks after a scenario: release the device memory, then compare
/// the counters with `baseline`. Returns what is wrong, if anything,
/// `Some(why)` when the device memory stayed held, and the counters it
/// came back to when nothing leaked.
fn after_scenario(
    baseline: Result<Sample, String>,
) -> (Option<String>, Option<String>, Option<Sample>) {
    match release_all() {
        Released::Done => {}
        Released::Failed(why) => return (Some(format!("after the scenario: {why}")), None, None),
        Released::Stuck(why) => return (Some(format!("leak: {why}")), Some(why), None),
    }
    let checked = baseline.and_then(|b| balance::settle(&b));
    match checked {
        Ok((leaks, now)) if leaks.is_empty() => (None, None, Some(now)),
        Ok((leaks, _)) => {
            let list: Vec<String> = leaks.iter().map(|l| l.to_string()).collect();
            (
                Some(format!(
                    "leak: after the scenario (its processes gone, device memory released) {}",
                    list.join("; ")
                )),
                None,
                None,
            )
        }
        Err(e) => (
            Some(format!("the checks after the scenario could not run: {e}")),
            None,
            None,
        ),
    }
}

/// A passing or skipped scenario with a problem after it fails; one that
/// already failed keeps its outcome and gets the problem added.
fn with_problem(verdict: Verdict, problem: String) -> Verdict {
    if verdict.outcome.is_failure() {
        let message = match verdict.message {
            Some(m) => format!("{m}; also {problem}"),
            None => problem,
        };
        Verdict::with(verdict.outcome, message)
    } else {
        Verdict::with(Outcome::Fail, problem)
    }
}

/// A scenario after the first failure of a run that stops there
/// (`Plan::stop_at_failure`): skipped, saying which failed.
fn stopped(plan: &Plan, planned: &PlannedScenario, results: &Results, first: &str) {
    unrun(
        plan,
        planned,
        results,
        Outcome::Skip,
        format!(
            "not run: {first} failed first, {}",
            hmmlab_proto::plan::STOPPED
        ),
    );
}

/// A scenario that cannot run: device memory stayed held after an earlier
/// one, and every use of the device would wait for it.
fn not_run(plan: &Plan, planned: &PlannedScenario, results: &Results, why: &str) {
    unrun(
        plan,
        planned,
        results,
        Outcome::Error,
        format!("not run: test_hmm's device memory is still held ({why})"),
    );
}

/// Report a scenario that was not run: its start and its end, at once.
fn unrun(
    plan: &Plan,
    planned: &PlannedScenario,
    results: &Results,
    outcome: Outcome,
    message: String,
) {
    let thp = planned.scenario.thp.unwrap_or(plan.default_thp);
    results.emit(&Record::ScenarioStart {
        name: planned.name.clone(),
        thp,
    });
    results.emit(&Record::ScenarioEnd {
        name: planned.name.clone(),
        outcome,
        duration_ns: 0,
        checks_ns: 0,
        message: Some(message),
    });
}

/// Fork a process that runs `child` with the write end of a report pipe
/// (report_pipe()); returns its pid and the read end. `child` ends the
/// process itself; if it returns, the process ends as an error.
pub(crate) fn fork_reporting(
    child: impl FnOnce(OwnedFd),
) -> Result<(libc::pid_t, OwnedFd), String> {
    let (rx, tx) = report_pipe()?;
    // SAFETY: PID 1 is single-threaded, so the child may run anything.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork failed: {}", describe_errno(last_errno())));
    }
    if pid == 0 {
        drop(rx);
        child(tx);
        // SAFETY: _exit is always safe; nothing of PID 1's state is ours.
        unsafe { libc::_exit(child::EXIT_ERROR) }
    }
    drop(tx);
    Ok((pid, rx))
}

fn supervise(planned: &PlannedScenario, results: &Results, timeout_ms: u64) -> Verdict {
    let forked = fork_reporting(|tx| child::run_child(planned, results, tx));
    let (pid, report_rx) = match forked {
        Ok(forked) => forked,
        Err(e) => return Verdict::error(e),
    };
    // Also set here, so the group exists before the child gets to it.
    // SAFETY: plain syscall.
    unsafe { libc::setpgid(pid, pid) };

    let deadline = monotonic_ns() + timeout_ms.saturating_mul(1_000_000);
    let waited = match wait_until(pid, deadline) {
        Ok(Some(status)) => Ok(status),
        Ok(None) => Err(kill_on_timeout(pid, timeout_ms)),
        Err(e) => Err(Verdict::error(e)),
    };
    // Whatever the scenario started and left behind goes with it.
    kill_group(pid);
    reap_orphans();
    let message = read_report(report_rx);
    match waited.map(|status| ending_of_status(status, message)) {
        Ok(Ending::Report(verdict)) | Err(verdict) => verdict,
        Ok(Ending::HangGuest) => hang_guest(&planned.name, results),
    }
}

/// `op = "hang-guest"`: stop answering for good. No scenario end, no further
/// records, no power-off: only the host's timeout ends the run. What was
/// sent so far is drained first, so the host sees the scenario start.
fn hang_guest(name: &str, results: &Results) -> ! {
    crate::kmsg::guest_hangs(name);
    results.drain();
    child::block_forever()
}

fn kill_on_timeout(pid: libc::pid_t, timeout_ms: u64) -> Verdict {
    kill_group(pid);
    // SAFETY: pid is our child, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let mut message = format!("timed out after {timeout_ms} ms");
    let grace = monotonic_ns() + KILL_GRACE_MS * 1_000_000;
    if !matches!(wait_until(pid, grace), Ok(Some(_))) {
        message.push_str(&format!(
            "; the scenario process did not die within {KILL_GRACE_MS} ms of SIGKILL \
             (stuck in the kernel?), continuing without it"
        ));
    }
    Verdict::with(Outcome::Timeout, message)
}

/// Wait for `pid` until `deadline` (CLOCK_MONOTONIC ns). `None`: still
/// running. Naps start short so that quick scenarios are not padded.
pub(crate) fn wait_until(pid: libc::pid_t, deadline: u64) -> Result<Option<libc::c_int>, String> {
    let mut nap = Duration::from_micros(20);
    loop {
        let mut status = 0;
        // SAFETY: status is a valid int to fill.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            return Ok(Some(status));
        }
        if rc < 0 && last_errno() != libc::EINTR {
            return Err(format!("waitpid failed: {}", describe_errno(last_errno())));
        }
        if monotonic_ns() >= deadline {
            return Ok(None);
        }
        sleep(nap);
        nap = (nap * 2).min(MAX_NAP);
    }
}

/// What PID 1 does after the scenario process ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// Report the scenario's end with this verdict and go on.
    Report(Verdict),
    /// Stop answering (`op = "hang-guest"`).
    HangGuest,
}

fn ending_of_status(status: libc::c_int, message: Option<String>) -> Ending {
    if libc::WIFEXITED(status)
        && child::exit_of_code(libc::WEXITSTATUS(status)) == Some(Exit::HangGuest)
    {
        return Ending::HangGuest;
    }
    Ending::Report(verdict_of_status(status, message))
}

fn verdict_of_status(status: libc::c_int, message: Option<String>) -> Verdict {
    if libc::WIFSIGNALED(status) {
        let core = if libc::WCOREDUMP(status) {
            " (core dumped)"
        } else {
            ""
        };
        let signal = describe_signal(libc::WTERMSIG(status));
        return Verdict::with(
            Outcome::Crashed,
            format!("scenario process killed by {signal}{core}"),
        );
    }
    if !libc::WIFEXITED(status) {
        return Verdict::error(format!(
            "scenario process ended with wait status {status:#x}"
        ));
    }
    let code = libc::WEXITSTATUS(status);
    match child::exit_of_code(code) {
        Some(Exit::Ended(Outcome::Pass)) => Verdict {
            outcome: Outcome::Pass,
            message,
        },
        Some(Exit::Ended(outcome)) => Verdict {
            outcome,
            message: message
                .or_else(|| Some(format!("{} without a reason given", outcome.as_str()))),
        },
        // ending_of_status handles it before coming here.
        Some(Exit::HangGuest) | None => Verdict::error(format!(
            "scenario process exited with unexpected status {code}{}",
            message.map(|m| format!(": {m}")).unwrap_or_default()
        )),
    }
}

/// The pipe the scenario process writes its message to. Close-on-exec, so
/// selftest binaries do not hold it open; the read end is non-blocking, so a
/// scenario process that never died cannot block PID 1 reading it.
fn report_pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2 failed: {}", describe_errno(last_errno())));
    }
    // SAFETY: pipe2 just returned these two descriptors, owned by no one else.
    let (rx, tx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fds[0] is open (owned by rx).
    unsafe { libc::fcntl(fds[0], libc::F_SETFL, libc::O_NONBLOCK) };
    Ok((rx, tx))
}

pub(crate) fn read_report(rx: OwnedFd) -> Option<String> {
    let mut bytes = Vec::new();
    // A non-blocking read ends with EAGAIN if a writer is left; what was read
    // before is kept either way.
    let _ = File::from(rx).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: plain syscall; ESRCH (group gone) is the usual, fine outcome.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// As PID 1 every orphan becomes our child: reap the ones that have ended.
fn reap_orphans() {
    let mut status = 0;
    // SAFETY: status is a valid int to fill.
    while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } > 0 {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let exited = |code: i32| code << 8;
        assert_eq!(verdict_of_status(exited(0), None), Verdict::pass());
        assert_eq!(
            verdict_of_status(exited(1), Some("step 2 (cpu-read): data mismatch".into())),
            Verdict::with(Outcome::Fail, "step 2 (cpu-read): data mismatch")
        );
        assert_eq!(verdict_of_status(exited(4), None).outcome, Outcome::Skip);
        assert_eq!(
            verdict_of_status(exited(9), None),
            Verdict::error("scenario process exited with unexpected status 9")
        );
        assert_eq!(
            verdict_of_status(libc::SIGSEGV, None),
            Verdict::with(
                Outcome::Crashed,
                "scenario process killed by signal 11 (SIGSEGV)"
            )
        );
    }

    #[test]
    fn hang_guest_status_stops_pid1() {
        let exited = |code: i32| code << 8;
        assert_eq!(
            ending_of_status(exited(child::EXIT_HANG_GUEST), None),
            Ending::HangGuest
        );
        assert_eq!(
            ending_of_status(exited(0), None),
            Ending::Report(Verdict::pass())
        );
        // Killed by signal 3 is a crash, not the hang-guest status.
        assert_eq!(
            ending_of_status(libc::SIGQUIT, None),
            Ending::Report(Verdict::with(
                Outcome::Crashed,
                "scenario process killed by signal 3 (SIGQUIT)"
            ))
        );
    }

    #[test]
    fn report_pipe_reads_without_blocking() {
        let (rx, tx) = report_pipe().unwrap();
        let mut tx = File::from(tx);
        std::io::Write::write_all(&mut tx, b"why\n").unwrap();
        // The write end is still open: a blocking read would hang here.
        assert_eq!(read_report(rx), Some("why".into()));
    }
}
