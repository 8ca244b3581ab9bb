//! Did the scenario give back what it took? The kernel's own counters in
//! /proc/vmstat, read before the scenario and after it (its processes gone,
//! test_hmm's device memory released), must come back to where they were.
//!
//! The counters are per-CPU deltas folded into the global values now and
//! then; writing /proc/sys/vm/stat_refresh folds them all
//! (mm/vmstat.c, vmstat_refresh()), so that a read is exact.

use std::fmt;
use std::fs;
use std::thread::sleep;
use std::time::Duration;

use hmmlab_proto::plan::SETTLE_MS;

use crate::system::monotonic_ns;

const VMSTAT: &str = "/proc/vmstat";
/// PID 1's own anonymous pages, counted by walking its page tables
/// (fs/proc/task_mmu.c, show_smaps_rollup()): exact on every kernel, unlike
/// /proc/self/status's RssAnon, which 6.1 takes from per-task counters
/// folded into the mm only every 64 faults (SPLIT_RSS_COUNTING,
/// TASK_RSS_EVENTS_THRESH) and 6.2+ from per-CPU counters read without
/// folding (get_mm_counter()), so a few pages off either way.
const SELF_STATUS: &str = "/proc/self/smaps_rollup";
const STAT_REFRESH: &str = "/proc/sys/vm/stat_refresh";
const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

/// Lock PID 1's memory, now and to come, so that its pages sit on the
/// unevictable LRU list and not on the anonymous ones the checks watch: a
/// page PID 1 faults in while the counters are read would otherwise wait
/// in a CPU's LRU batch, counted by nr_anon_pages and on no list yet. A forked
/// scenario process does not inherit the lock (mlockall(2)).
pub fn lock_pid1() -> Result<(), String> {
    // SAFETY: plain syscall.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
        return Err(format!(
            "mlockall failed: {}",
            crate::sysnames::describe_errno(crate::sysnames::last_errno())
        ));
    }
    Ok(())
}

/// Say once, in the kernel log, that the guest drops caches (drop_caches
/// then stays quiet: fs/drop_caches.c, `stfu`).
pub fn quiet_drop_caches() {
    let _ = fs::write(DROP_CACHES, "4");
}

/// A quantity that must come back to its baseline, and by how much it may
/// miss it.
pub struct Counter {
    /// As reported: the /proc/vmstat name, or the sum's description.
    pub name: &'static str,
    /// The /proc/vmstat counters added up.
    parts: &'static [&'static str],
    /// The field of PID 1's own /proc/self/smaps_rollup (in kB) taken off:
    /// PID 1 keeps running, and its own memory is no scenario's.
    minus_pid1: Option<&'static str>,
    tolerance: i64,
}

/// Chosen from mm/: each goes up when a scenario maps, isolates or takes a
/// page and down when the page is unmapped, put back or freed, so a page the
/// kernel forgot shows as a difference. Tolerance 0: once the scenario's
/// processes are gone, only PID 1 (taken off) and kernel threads run.
/// Free pages are not among them: per-CPU lists, slab caches and freshly
/// allocated device-chunk memmaps move them by thousands of pages.
pub const COUNTERS: &[Counter] = &[
    // Anonymous pages mapped by a process (folio_add_*_rmap /
    // folio_remove_rmap_*, NR_ANON_MAPPED).
    Counter {
        name: "nr_anon_pages",
        parts: &["nr_anon_pages"],
        minus_pid1: Some("Anonymous"),
        tolerance: 0,
    },
    Counter {
        name: "nr_anon_transparent_hugepages",
        parts: &["nr_anon_transparent_hugepages"],
        minus_pid1: None,
        tolerance: 0,
    },
    // Anonymous pages on an LRU list, mapped or not: a system page whose
    // last reference is never put stays here after its process is gone.
    // Active and inactive are added up: pages move between the two.
    Counter {
        name: "anon LRU (nr_inactive_anon + nr_active_anon)",
        parts: &["nr_inactive_anon", "nr_active_anon"],
        // PID 1's pages are mlocked (lock_pid1): on the unevictable list.
        minus_pid1: None,
        tolerance: 0,
    },
    // Pages taken off the LRU for migration and not yet put back.
    Counter {
        name: "nr_isolated_anon",
        parts: &["nr_isolated_anon"],
        minus_pid1: None,
        tolerance: 0,
    },
    Counter {
        name: "nr_isolated_file",
        parts: &["nr_isolated_file"],
        minus_pid1: None,
        tolerance: 0,
    },
];

/// The counters at one moment, in the order of [`COUNTERS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    values: Vec<i64>,
}

/// A counter that did not come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    pub counter: &'static str,
    pub baseline: i64,
    pub value: i64,
    pub tolerance: i64,
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is {}, baseline {} ({:+}, tolerance {})",
            self.counter,
            self.value,
            self.baseline,
            self.value - self.baseline,
            self.tolerance
        )
    }
}

pub fn sample() -> Result<Sample, String> {
    // Pages still in a CPU's LRU batch are on no list yet; drop_caches
    // drains every CPU's batches first (fs/drop_caches.c,
    // lru_add_drain_all()). The clean page cache it also drops is no
    // counter's here.
    fs::write(DROP_CACHES, "1").map_err(|e| format!("cannot write {DROP_CACHES}: {e}"))?;
    // PID 1's own pages are read before and after the counters: reading may
    // grow PID 1's heap by a page, and a page seen on one side only would
    // look like a leak. Until both agree.
    for _ in 0..SAMPLE_TRIES {
        let status = read(SELF_STATUS)?;
        fs::write(STAT_REFRESH, "1").map_err(|e| format!("cannot write {STAT_REFRESH}: {e}"))?;
        let raw = parse_vmstat(&read(VMSTAT)?);
        let again = read(SELF_STATUS)?;
        if own_pages(&status) != own_pages(&again) {
            continue;
        }
        let values = COUNTERS
            .iter()
            .map(|c| value(&raw, &status, c))
            .collect::<Result<_, _>>()?;
        return Ok(Sample { values });
    }
    Err(format!(
        "PID 1's own memory changed while the counters were read, {SAMPLE_TRIES} times"
    ))
}

const SAMPLE_TRIES: usize = 5;

fn read(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// What PID 1's own memory adds to the counters.
fn own_pages(status: &str) -> Vec<Result<i64, String>> {
    COUNTERS
        .iter()
        .filter_map(|c| c.minus_pid1)
        .map(|field| status_pages(status, field))
        .collect()
}

fn value(raw: &[(String, i64)], status: &str, c: &Counter) -> Result<i64, String> {
    let own = match c.minus_pid1 {
        Some(field) => status_pages(status, field)?,
        None => 0,
    };
    Ok(sum(raw, c)? - own)
}

/// A `Field:   1234 kB` line of /proc/self/smaps_rollup, in pages.
fn status_pages(status: &str, field: &str) -> Result<i64, String> {
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse::<i64>().ok())
        .ok_or_else(|| format!("{SELF_STATUS} has no {field} in kB"))?;
    Ok(kb / 4)
}

fn parse_vmstat(text: &str) -> Vec<(String, i64)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn sum(raw: &[(String, i64)], c: &Counter) -> Result<i64, String> {
    c.parts.iter().try_fold(0, |acc, part| {
        raw.iter()
            .find(|(k, _)| k == part)
            .map(|(_, v)| acc + v)
            .ok_or_else(|| format!("{VMSTAT} has no {part}"))
    })
}

/// The counters of `now` that miss their `baseline` by more than their
/// tolerance.
pub fn leaks(baseline: &Sample, now: &Sample) -> Vec<Leak> {
    COUNTERS
        .iter()
        .zip(baseline.values.iter().zip(&now.values))
        .filter(|(c, (b, v))| (*v - *b).abs() > c.tolerance)
        .map(|(c, (b, v))| Leak {
            counter: c.name,
            baseline: *b,
            value: *v,
            tolerance: c.tolerance,
        })
        .collect()
}

/// Compare with `baseline` until nothing leaks or [`SETTLE_MS`] passed:
/// pages freed through RCU or a per-CPU batch come back a little later.
/// Returns the leaks and the last sample.
pub fn settle(baseline: &Sample) -> Result<(Vec<Leak>, Sample), String> {
    let deadline = monotonic_ns() + SETTLE_MS * 1_000_000;
    let mut nap = Duration::from_millis(1);
    loop {
        let now = sample()?;
        let leaks = leaks(baseline, &now);
        if leaks.is_empty() || monotonic_ns() >= deadline {
            return Ok((leaks, now));
        }

        sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "00400000-7ffff000 ---p 00000000 00:00 0    [rollup]\nRss:       40 kB\nAnonymous:         8 kB\nSwap:    0 kB\n";

    fn sample_of(text: &str) -> Sample {
        let raw = parse_vmstat(text);
        let values = COUNTERS
            .iter()
            .map(|c| value(&raw, STATUS, c).unwrap())
            .collect();
        Sample { values }
    }

    const BASE: &str = "nr_free_pages 100\nnr_inactive_anon 10\nnr_active_anon 5\n\
        nr_anon_pages 12\nnr_anon_transparent_hugepages 0\nnr_page_table_pages 3\n\
        nr_isolated_anon 0\nnr_isolated_file 0\n";

    #[test]
    fn a_counter_off_its_baseline_is_a_leak_with_both_values() {
        let base = sample_of(BASE);
        assert!(leaks(&base, &base).is_empty());
        // Pages moving between the active and inactive lists are no leak;
        // free pages are not watched.
        let moved = sample_of(
            &BASE
                .replace("inactive_anon 10", "inactive_anon 7")
                .replace("active_anon 5", "active_anon 8")
                .replace("free_pages 100", "free_pages 7"),
        );
        assert!(leaks(&base, &moved).is_empty());
        let leaked = sample_of(&BASE.replace("nr_active_anon 5", "nr_active_anon 517"));
        let l = leaks(&base, &leaked);
        assert_eq!(l.len(), 1, "{l:?}");
        assert_eq!(
            l[0].to_string(),
            "anon LRU (nr_inactive_anon + nr_active_anon) is 527, baseline 15 (+512, tolerance 0)"
        );
    }

    #[test]
    fn pid1s_own_pages_are_taken_off() {
        let raw = parse_vmstat(BASE);
        // 12 anon pages mapped, 2 of them PID 1's (8 kB); PID 1's are
        // on no anonymous LRU list (mlocked), so the 15 stay.
        assert_eq!(value(&raw, STATUS, &COUNTERS[0]), Ok(10));
        assert_eq!(value(&raw, STATUS, &COUNTERS[2]), Ok(15));
        let e = value(&raw, "Name: x\n", &COUNTERS[0]).unwrap_err();
        assert!(e.contains("no Anonymous"), "{e}");
    }

    #[test]
    fn a_missing_counter_is_an_error() {
        let raw = parse_vmstat("nr_anon_pages 1\n");
        let e = sum(&raw, &COUNTERS[2]).unwrap_err();
        assert!(e.contains("no nr_inactive_anon"), "{e}");
    }
}
