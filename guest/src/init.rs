//! What PID 1 does for itself: mount the pseudo filesystems, make sure it has
//! a console to complain on, and power the VM off.

use std::ffi::CString;
use std::fs::{self, DirBuilder};
use std::os::fd::IntoRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::ptr;

use crate::sysnames::{describe_errno, last_errno};

pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// (fstype, mount point). devtmpfs gives the dmirror and tty nodes; /tmp
/// holds the files file-backed mappings use; debugfs has gup_test, which
/// hmm-tests' hmm_gup_test drives.
const MOUNTS: &[(&str, &str)] = &[
    ("proc", "/proc"),
    ("sysfs", "/sys"),
    ("devtmpfs", "/dev"),
    ("tmpfs", "/tmp"),
    ("debugfs", "/sys/kernel/debug"),
];

/// Mounted when the kernel has them: debugfs has gup_test, which
/// hmm-tests' hmm_gup_test drives, and kmemleak; the cgroup v2 hierarchy
/// (sysfs has its mount point only with CONFIG_CGROUPS) holds the memory
/// cgroups of scenarios with `memcg_max_kib` (memcg.rs). A kernel without
/// them has none of that; what needs them says so.
const OPTIONAL_MOUNTS: &[(&str, &str)] = &[
    ("debugfs", "/sys/kernel/debug"),
    ("cgroup2", crate::memcg::ROOT),
];

pub fn mount_filesystems() -> Result<(), String> {
    for (fstype, target) in MOUNTS {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(target)
            .map_err(|e| format!("cannot create {target}: {e}"))?;
        mount(fstype, target)?;
    }
    for (fstype, target) in OPTIONAL_MOUNTS {
        let _ = mount(fstype, target);
    }
    Ok(())
}

fn mount(fstype: &str, target: &str) -> Result<(), String> {
    let c = |s: &str| CString::new(s).map_err(|_| format!("NUL in {s:?}"));
    let (source, dir) = (c(fstype)?, c(target)?);
    // SAFETY: all pointers are NUL-terminated strings that outlive the call;
    // no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            dir.as_ptr(),
            source.as_ptr(),
            0,
            ptr::null(),
        )
    };
    let errno = if rc == 0 { 0 } else { last_errno() };
    // EBUSY: already mounted (the kernel may have mounted devtmpfs itself).
    if errno != 0 && errno != libc::EBUSY {
        return Err(format!(
            "cannot mount {fstype} on {target}: {}",
            describe_errno(errno)
        ));
    }
    Ok(())
}

/// The kernel starts init with /dev/console as fds 0-2 only if the initramfs
/// has that node; otherwise open it from devtmpfs so stderr reaches the
/// console.
pub fn ensure_console_fds() {
    // SAFETY: F_GETFD on a possibly closed fd only reports EBADF.
    if unsafe { libc::fcntl(2, libc::F_GETFD) } != -1 {
        return;
    }
    let Ok(console) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    else {
        return;
    };
    let fd = console.into_raw_fd();
    for target in 0..3 {
        if fd != target {
            // SAFETY: fd is open; dup2 onto the standard descriptors.
            unsafe { libc::dup2(fd, target) };
        }
    }
    if fd > 2 {
        // SAFETY: fd is ours and now duplicated onto 0-2.
        unsafe { libc::close(fd) };
    }
}

/// sync, then power off. Never returns: if the kernel refuses, exiting makes
/// it panic with "Attempted to kill init", which at least shows on the
/// console.
pub fn power_off() -> ! {
    // SAFETY: plain syscalls without pointers.
    unsafe {
        libc::sync();
        libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF);
    }
    eprintln!(
        "hmmlab-guest: reboot(POWER_OFF) failed: {}",
        describe_errno(last_errno())
    );
    std::process::exit(1)
}
