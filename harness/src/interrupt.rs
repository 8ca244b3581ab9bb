//! SIGINT and SIGTERM: a flag that every wait loop checks, so that a run or
//! a build stops its children (make, QEMU) itself, writes what finished and
//! marks the run `interrupted`. Children run in process groups of their own,
//! so a terminal's Ctrl-C reaches only hmmlab, which then stops them in order.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Route SIGINT and SIGTERM to the flag. Call once, early in main.
pub fn install() -> std::io::Result<()> {
    let flag = FLAG
        .get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(())
}

/// Has SIGINT or SIGTERM arrived?
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// The error a stage returns when it stopped because of a signal.
#[derive(Debug)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted by a signal; child processes were stopped")
    }
}

impl std::error::Error for Interrupted {}

/// Make a child the leader of a new process group (so a terminal's SIGINT
/// does not reach it directly) and have the kernel kill it if hmmlab itself
/// dies, even by SIGKILL.
pub fn isolate_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no
    // memory of the parent; it runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Send `sig` to the whole process group led by `pid`.
pub fn kill_group(pid: u32, sig: i32) {
    if pid > 1 {
        // SAFETY: kill(2) with a negative pid signals that process group only.
        unsafe { libc::kill(-(pid as i32), sig) };
    }
}
