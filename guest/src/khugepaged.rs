//! khugepaged kept out of the scenarios' way.
//!
//! khugepaged scans the mms on its list and collapses a PMD range of small
//! pages, or of a THP mapped by ptes, into a new THP mapped by a PMD; a
//! range with holes too (up to `max_ptes_none` of 511, by default). A
//! collapse moves the pages and invalidates the range, which also drops
//! test_hmm's mirror entries of it. At a moment no scenario chooses, that
//! turns a scenario's expectations into a matter of timing: a THP
//! discarded in part comes back whole before the migration
//! (`thp-discard-head`), a device read faults pages it should not, and the
//! kernel's own hmm-tests fail their `faults` counts. So, in the VM:
//!
//! * PID 1 puts its own mm on khugepaged's list, for good. A THP fault in
//!   a MADV_HUGEPAGE VMA registers the mm (do_huge_pmd_anonymous_page() →
//!   khugepaged_enter_vma()); the mapping is then unmapped, and the mm
//!   stays on the list until it exits (mm/khugepaged.c, collect_mm_slot()
//!   frees a slot only for an exiting mm). With the list never empty,
//!   khugepaged always "has work" and sleeps `scan_sleep_millisecs`
//!   between passes, deaf to the wake-ups of new mms
//!   (khugepaged_wait_work(): the wait ends only when that time is up);
//!   with an empty list, the next mm to register would wake it at once.
//! * `scan_sleep_millisecs` (and `alloc_sleep_millisecs`) is set to its
//!   largest value: after the pass the write itself starts, khugepaged
//!   sleeps for the whole run.
//! * A THP mode change away from `never` starts a new khugepaged thread,
//!   which makes one pass at once (khugepaged() calls khugepaged_do_scan()
//!   before it first sleeps): the scenario starts once that pass is over.
//!
//! Each scenario's [`Counts`] before and after tell whether khugepaged ran
//! all the same; a failure says so.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use hmmlab_proto::scenario::ThpMode;

const DIR: &str = "/sys/kernel/mm/transparent_hugepage/khugepaged";
/// The largest value the files take (kstrtouint()): about 49 days.
const FOREVER_MS: &str = "4294967295";
const PMD_SIZE: usize = 2 << 20;
/// How long a pass over PID 1's mm alone may take, at most.
const PASS_TIMEOUT: Duration = Duration::from_secs(5);

/// Set once [`hold_off`] has put PID 1's mm on the list: only then does a
/// new thread's first pass end (with an empty list it makes none).
static HELD_OFF: AtomicBool = AtomicBool::new(false);

/// khugepaged's own counters (Documentation/admin-guide/mm/transhuge.rst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Complete passes over its list of mms.
    pub full_scans: u64,
    /// Pages it collapsed into THPs.
    pub pages_collapsed: u64,
}

fn path(name: &str) -> String {
    format!("{DIR}/{name}")
}

/// The counters now; `None` on a kernel without THP (no khugepaged).
pub fn counts() -> Option<Counts> {
    let read = |name: &str| -> Option<u64> {
        fs::read_to_string(path(name))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    };
    Some(Counts {
        full_scans: read("full_scans")?,
        pages_collapsed: read("pages_collapsed")?,
    })
}

/// What khugepaged did between `before` and `after`, when it did anything.
pub fn ran(before: Option<Counts>, after: Option<Counts>) -> Option<String> {
    let (b, a) = (before?, after?);
    if a == b {
        return None;
    }
    Some(format!(
        "khugepaged ran during the scenario (full_scans {} → {}, pages_collapsed {} → {}): \
         a collapse moves the pages of a PMD range and drops test_hmm's mirror entries of it, \
         which no scenario expects; the guest holds khugepaged off (guest/src/khugepaged.rs), \
         so this is worth a report",
        b.full_scans, a.full_scans, b.pages_collapsed, a.pages_collapsed
    ))
}

/// Is khugepaged held off (so that any pass during a scenario is news)?
pub fn held_off() -> bool {
    HELD_OFF.load(Ordering::Relaxed)
}

/// The name of the run's own result when khugepaged ran during scenarios
/// that passed all the same.
pub const RUN_CHECK: &str = "khugepaged";

/// The run's own result for the scenarios khugepaged ran in while held off
/// (their failures already say so), when there were any.
pub fn run_check(passed_with_it: &[String]) -> Option<(String, String)> {
    if passed_with_it.is_empty() || !held_off() {
        return None;
    }
    Some((
        RUN_CHECK.to_string(),
        format!(
            "khugepaged ran, though held off, during {} scenario(s) that passed: {}; their \
             pages could have been collapsed at any moment (guest/src/khugepaged.rs says how \
             the guest holds it off and why)",
            passed_with_it.len(),
            passed_with_it.join(", ")
        ),
    ))
}

/// Put PID 1's mm on khugepaged's list and make it sleep for the run.
/// `Ok(false)` on a kernel without khugepaged.
pub fn hold_off() -> Result<bool, String> {
    if !Path::new(DIR).is_dir() {
        return Ok(false);
    }
    crate::system::set_thp(ThpMode::Madvise)?;
    let before = counts().ok_or_else(|| format!("cannot read the counters in {DIR}"))?;
    register_pid1()?;
    for name in ["alloc_sleep_millisecs", "scan_sleep_millisecs"] {
        fs::write(path(name), FOREVER_MS)
            .map_err(|e| format!("cannot write {FOREVER_MS} to {}: {e}", path(name)))?;
    }
    // The write wakes khugepaged for one pass (scan_sleep_millisecs_store());
    // a pass that gets to the end of the list shows PID 1's mm is on it.
    wait_for_pass(before.full_scans).map_err(|waited| {
        format!(
            "khugepaged made no pass over PID 1's mm in {waited:?} after {} was written \
             (full_scans stays {}): the mm may not be on its list",
            path("scan_sleep_millisecs"),
            before.full_scans
        )
    })?;
    HELD_OFF.store(true, Ordering::Relaxed);
    Ok(true)
}

/// After a THP mode change from `never`, which starts a new khugepaged
/// thread: wait for its first pass (over PID 1's mm alone) to end.
pub fn after_thread_start(before: Option<Counts>) -> Result<(), String> {
    let Some(before) = before.filter(|_| held_off()) else {
        return Ok(());
    };
    wait_for_pass(before.full_scans).map_err(|waited| {
        format!(
            "khugepaged's new thread made no pass in {waited:?} after the THP mode change \
             (full_scans stays {})",
            before.full_scans
        )
    })
}

fn wait_for_pass(full_scans: u64) -> Result<(), Duration> {
    let start = Instant::now();
    loop {
        if counts().is_some_and(|c| c.full_scans > full_scans) {
            return Ok(());
        }
        if start.elapsed() > PASS_TIMEOUT {
            return Err(PASS_TIMEOUT);
        }
        sleep(Duration::from_millis(1));
    }
}

/// A THP fault in a PMD-aligned MADV_HUGEPAGE range of PID 1, then unmap it.
/// The THP mode must not be `never` (the caller sets it).
fn register_pid1() -> Result<(), String> {
    let len = 2 * PMD_SIZE;
    // SAFETY: a fresh anonymous mapping; nothing else refers to it.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(format!(
            "cannot map {len} bytes for khugepaged: {}",
            crate::sysnames::describe_errno(crate::sysnames::last_errno())
        ));
    }
    let aligned = (base as usize).next_multiple_of(PMD_SIZE);
    // SAFETY: [aligned, aligned + PMD_SIZE) lies inside the mapping above,
    // which only this function uses and unmaps.
    let advised = unsafe { libc::madvise(aligned as *mut _, PMD_SIZE, libc::MADV_HUGEPAGE) };
    let errno = crate::sysnames::last_errno();
    if advised == 0 {
        // SAFETY: as above; a write fault in the aligned range.
        unsafe { std::ptr::write_volatile(aligned as *mut u8, 1) };
    }
    // SAFETY: the whole mapping above, no longer used.
    unsafe { libc::munmap(base, len) };
    if advised != 0 {
        return Err(format!(
            "madvise(MADV_HUGEPAGE) for khugepaged failed: {}",
            crate::sysnames::describe_errno(errno)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_change_in_the_counters_is_reported() {
        let c = |full_scans, pages_collapsed| {
            Some(Counts {
                full_scans,
                pages_collapsed,
            })
        };
        assert_eq!(ran(c(3, 0), c(3, 0)), None);
        assert_eq!(ran(None, c(3, 0)), None);
        assert_eq!(ran(c(3, 0), None), None);
        let said = ran(c(3, 0), c(4, 512)).unwrap();
        assert!(
            said.starts_with(
                "khugepaged ran during the scenario (full_scans 3 → 4, pages_collapsed 0 → 512)"
            ),
            "{said}"
        );
    }

    #[test]
    fn the_run_check_speaks_only_when_held_off_and_something_passed_with_it() {
        let names = vec!["a@madvise".to_string(), "b@always".to_string()];
        assert_eq!(run_check(&[]), None);
        assert_eq!(run_check(&names), None, "not held off: nothing to report");
        HELD_OFF.store(true, Ordering::Relaxed);
        assert_eq!(run_check(&[]), None);
        let (name, message) = run_check(&names).unwrap();
        HELD_OFF.store(false, Ordering::Relaxed);
        assert_eq!(name, RUN_CHECK);
        assert!(
            message.starts_with(
                "khugepaged ran, though held off, during 2 scenario(s) that passed: a@madvise, b@always;"
            ),
            "{message}"
        );
    }
}
