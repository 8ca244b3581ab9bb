//! Give test_hmm's device memory back after a scenario: HMM_DMIRROR_RELEASE
//! on every `/dev/hmm_dmirror*`. test_hmm evicts every device page to
//! system memory and then waits in memunmap_pages() until every page of
//! its chunks is free (lib/test_hmm.c, dmirror_device_remove_chunks()).
//! A device page that is still referenced makes that wait last for good,
//! in a task no signal can stop, so the release runs in a process of its
//! own and PID 1 gives it [`RELEASE_TIMEOUT_MS`].

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;

use hmmlab_proto::plan::RELEASE_TIMEOUT_MS;

use crate::abi::Command;
use crate::dmirror::Dmirror;
use crate::runner::{fork_reporting, read_report, wait_until};
use crate::sysnames::{describe_errno, describe_signal};
use crate::system::{dmirror_devices, monotonic_ns};

/// How the release went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// Every device gave its memory back.
    Done,
    /// A command failed: the message says which and why.
    Failed(String),
    /// The release did not return within the timeout: device memory is
    /// still held, and the process that waits for it never ends. No
    /// further scenario can use the device.
    Stuck(String),
}

pub fn release_all() -> Released {
    let forked = fork_reporting(|tx| {
        let code = i32::from(release_in_child(tx).is_err());
        // SAFETY: _exit is always safe; nothing of PID 1's state is ours.
        unsafe { libc::_exit(code) }
    });
    let (pid, rx) = match forked {
        Ok(forked) => forked,
        Err(e) => return Released::Failed(e),
    };
    let deadline = monotonic_ns() + RELEASE_TIMEOUT_MS * 1_000_000;
    let waited = wait_until(pid, deadline);
    let said = read_report(rx).unwrap_or_default();
    let last = said.lines().last().unwrap_or("release").to_string();
    match waited {
        Ok(Some(0)) => Released::Done,
        Ok(Some(status)) if libc::WIFSIGNALED(status) => Released::Failed(format!(
            "{last}: killed by {}",
            describe_signal(libc::WTERMSIG(status))
        )),
        Ok(Some(_)) => Released::Failed(last),
        Ok(None) => {
            // Stuck in the kernel: SIGKILL waits with it, but try.
            // SAFETY: pid is our child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            Released::Stuck(format!(
                "{last} did not return within {RELEASE_TIMEOUT_MS} ms: device memory is still \
                 referenced after the scenario (test_hmm waits in memunmap_pages() for every \
                 device page to be freed)"
            ))
        }
        Err(e) => Released::Failed(e),
    }
}

/// In the child: one line on the pipe before each command, so that PID 1
/// can name the one that hangs; the last line is the error, if any.
fn release_in_child(tx: OwnedFd) -> Result<(), ()> {
    let mut tx = File::from(tx);
    for name in dmirror_devices() {
        let Some(device) = name
            .strip_prefix("hmm_dmirror")
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        let _ = writeln!(tx, "HMM_DMIRROR_RELEASE on /dev/{name}");
        let dmirror = Dmirror::open_minor(device).map_err(|e| {
            let _ = writeln!(tx, "release: {e}");
        })?;
        // test_hmm checks addr and npages of every command: one page at 0.
        dmirror.call(Command::Release, 0, 0, 1).map_err(|errno| {
            let _ = writeln!(
                tx,
                "HMM_DMIRROR_RELEASE on /dev/{name} failed: {}",
                describe_errno(errno)
            );
        })?;
    }
    Ok(())
}
