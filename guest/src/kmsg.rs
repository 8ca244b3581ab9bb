//! Markers in the kernel log around each scenario, so the host can tell
//! which scenario was running when the console shows a WARN, Oops or panic.
//! The words must match hmmlab_harness::console::{MARK_START, MARK_END}.

use std::io::Write;

/// Write one line into the kernel log (best effort: a missing /dev/kmsg
/// only costs the attribution of console findings).
fn log(line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        // "<4>" (warning level) so the line reaches a console at loglevel=5.
        let _ = f.write_all(format!("<4>{line}\n").as_bytes());
    }
}

pub fn scenario_start(name: &str) {
    log(&format!("hmmlab: scenario-start {name}"));
}

pub fn scenario_end(name: &str) {
    log(&format!("hmmlab: scenario-end {name}"));
}

/// PID 1 is about to stop answering on purpose (`op = "hang-guest"`).
pub fn guest_hangs(name: &str) {
    log(&format!(
        "hmmlab: guest driver stops answering on purpose (hang-guest in {name})"
    ));
}
