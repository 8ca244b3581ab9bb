//! Give test_hmm's device memory back after a scenario: HMM_DMIRROR_RELEASE
//! on every `/dev/hmm_dmirror*`. test_hmm evicts every device page to
//! system memory and then waits in memunmap_pages() until every page of
//! its chunks is free (lib/test_hmm.c, dmirror_device_remove_chunks()).
//! A device page that is still referenced makes that wait last for good,
//! in a task no signal can stop, so each device's release runs in a
//! process of its own, all side by side, and PID 1 gives them
//! [`RELEASE_TIMEOUT_MS`].

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
    // One process per device: their waits in memunmap_pages() run side by
    // side on the guest's CPUs (each chunk's teardown costs tens of ms
    // under TCG), and a device that never gives its memory back is named.
    let mut children = vec![];
    for name in dmirror_devices() {
        let Some(device) = name
            .strip_prefix("hmm_dmirror")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let forked = fork_reporting(|tx| {
            let code = i32::from(release_in_child(tx, &name, device).is_err());
            // SAFETY: _exit is always safe; nothing of PID 1's state is ours.
            unsafe { libc::_exit(code) }
        });
        match forked {
            Ok(forked) => children.push(forked),
            Err(e) => {
                let outcome = wait_all(children);
                return match outcome {
                    Released::Stuck(why) => Released::Stuck(why),
                    _ => Released::Failed(e),
                };
            }
        }
    }
    wait_all(children)
}

/// Wait for every release process (one deadline for all): stuck first,
/// then failed, else done.
fn wait_all(children: Vec<(libc::pid_t, OwnedFd)>) -> Released {
    let deadline = monotonic_ns() + RELEASE_TIMEOUT_MS * 1_000_000;
    let mut stuck = None;
    let mut failed = None;
    for (pid, rx) in children {
        let waited = wait_until(pid, deadline);
        let said = read_report(rx).unwrap_or_default();
        let last = said.lines().last().unwrap_or("release").to_string();
        match waited {
            Ok(Some(0)) => {}
            Ok(Some(status)) if libc::WIFSIGNALED(status) => {
                failed.get_or_insert(format!(
                    "{last}: killed by {}",
                    describe_signal(libc::WTERMSIG(status))
                ));
            }
            Ok(Some(_)) => {
                failed.get_or_insert(last);
            }
            Ok(None) => {
                // Stuck in the kernel: SIGKILL waits with it, but try.
                // SAFETY: pid is our child, not yet reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                stuck.get_or_insert(format!(
                    "{last} did not return within {RELEASE_TIMEOUT_MS} ms: device memory is \
                     still referenced after the scenario (test_hmm waits in memunmap_pages() \
                     for every device page to be freed)"
                ));
            }
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    match (stuck, failed) {
        (Some(why), _) => Released::Stuck(why),
        (None, Some(why)) => Released::Failed(why),
        (None, None) => Released::Done,
    }
}

/// In the child: one line on the pipe before the command, so that PID 1
/// can name the one that hangs; the last line is the error, if any.
fn release_in_child(tx: OwnedFd, name: &str, device: u32) -> Result<(), ()> {
    let mut tx = File::from(tx);
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
    Ok(())
}
