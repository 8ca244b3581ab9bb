//! Facts about the running kernel and the knobs the guest turns: clocks,
//! uname, the THP mode, the test_hmm device nodes.

use std::ffi::CStr;
use std::fs;

use hmmlab_proto::scenario::ThpMode;

pub const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";
const DEV_DIR: &str = "/dev";
const DMIRROR_PREFIX: &str = "hmm_dmirror";

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to fill; both clocks exist on Linux, so
    // the call cannot fail and ts stays zero at worst.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Time since boot, suspend included: how long the VM took to reach us.
pub fn boottime_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

pub fn kernel_release() -> String {
    // SAFETY: utsname is plain data that uname fills.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uts is a valid utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return "unknown".into();
    }
    // SAFETY: the kernel NUL-terminates release within the array.
    unsafe { CStr::from_ptr(uts.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The THP modes line, e.g. `always [madvise] never`.
pub fn thp_modes() -> String {
    match fs::read_to_string(THP_ENABLED) {
        Ok(text) => text.trim().to_string(),
        Err(e) => format!("unavailable ({THP_ENABLED}: {e})"),
    }
}

pub fn set_thp(mode: ThpMode) -> Result<(), String> {
    fs::write(THP_ENABLED, mode.as_str()).map_err(|e| {
        format!(
            "cannot set THP mode `{}` in {THP_ENABLED}: {e}",
            mode.as_str()
        )
    })
}

/// Names of the `/dev/hmm_dmirror*` nodes, sorted.
pub fn dmirror_devices() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(DEV_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with(DMIRROR_PREFIX))
        .collect();
    names.sort();
    names
}

pub fn dmirror_path(device: u32) -> String {
    format!("{DEV_DIR}/{DMIRROR_PREFIX}{device}")
}
