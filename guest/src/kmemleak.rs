//! kmemleak (`CONFIG_DEBUG_KMEMLEAK`, the debug config variant): kernel
//! memory no pointer refers to any more. The guest forgets what was there
//! before the first scenario (`clear`), and after the last one asks for a
//! scan and reports what it found. Kernels without kmemleak have no
//! /sys/kernel/debug/kmemleak: nothing to do.

use std::fs;
use std::thread::sleep;
use std::time::Duration;

use crate::system::monotonic_ns;

const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";
/// kmemleak reports only objects older than this (mm/kmemleak.c,
/// MSECS_MIN_AGE): a leak of the last scenario needs this long to show.
const MIN_AGE_MS: u64 = 5_000;
/// Lines of the report kept in the message; the rest is counted.
const SHOWN_LINES: usize = 40;

/// Forget every object allocated so far (boot, test_hmm's
/// initialisation). `Ok(false)`: no kmemleak (init mounted debugfs if the
/// kernel has it).
pub fn start() -> Result<bool, String> {
    if fs::metadata(KMEMLEAK).is_err() {
        return Ok(false);
    }
    fs::write(KMEMLEAK, "clear").map_err(|e| format!("cannot write `clear` to {KMEMLEAK}: {e}"))?;
    Ok(true)
}

/// Scan, once every object of the last scenario is old enough to be
/// reported, and return the report: `None` when kmemleak found nothing.
pub fn scan(last_scenario_ended_ns: u64) -> Result<Option<String>, String> {
    let old_enough = last_scenario_ended_ns + (MIN_AGE_MS + 100) * 1_000_000;
    let now = monotonic_ns();
    if now < old_enough {
        sleep(Duration::from_nanos(old_enough - now));
    }
    // An object's first scan only records its checksum (mm/kmemleak.c,
    // kmemleak_scan(): update_checksum() paints a changed object gray
    // until the next scan); the second one reports it.
    for _ in 0..2 {
        fs::write(KMEMLEAK, "scan")
            .map_err(|e| format!("cannot write `scan` to {KMEMLEAK}: {e}"))?;
    }
    let report =
        fs::read_to_string(KMEMLEAK).map_err(|e| format!("cannot read {KMEMLEAK}: {e}"))?;
    Ok(summarise(&report))
}

/// `3 unreferenced objects` and the report's first lines.
fn summarise(report: &str) -> Option<String> {
    let objects = report
        .lines()
        .filter(|l| l.starts_with("unreferenced object"))
        .count();
    if objects == 0 {
        return None;
    }
    let lines: Vec<&str> = report.lines().collect();
    let mut text = lines[..lines.len().min(SHOWN_LINES)].join("\n");
    if lines.len() > SHOWN_LINES {
        text.push_str(&format!("\n… {} more lines", lines.len() - SHOWN_LINES));
    }
    let noun = if objects == 1 { "object" } else { "objects" };
    Some(format!(
        "{objects} unreferenced {noun} in kernel memory, by kmemleak's scan after the last \
         scenario:\n{text}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_its_objects() {
        assert_eq!(summarise(""), None);
        let report = "unreferenced object 0xffff888003a1c000 (size 64):\n  comm \"hmm-tests\", pid 90\n  backtrace (crc 0):\n    kmalloc_trace+0x1/0x2\n\
                      unreferenced object 0xffff888003a1d000 (size 32):\n  comm \"x\"\n";
        let s = summarise(report).unwrap();
        assert!(
            s.starts_with(
                "2 unreferenced objects in kernel memory, by kmemleak's scan after the last \
                 scenario:\nunreferenced object 0xffff888003a1c000 (size 64):"
            ),
            "{s}"
        );
        let long = "unreferenced object 0x1 (size 8):\n".to_string() + &"  x\n".repeat(50);
        assert!(summarise(&long).unwrap().ends_with("… 11 more lines"));
    }
}
