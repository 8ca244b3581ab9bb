//! Markers in the kernel log around each scenario, so the host can tell
//! which scenario was running when the console shows a WARN, Oops or panic.
//! The words must match hmmlab_harness::console::{MARK_START, MARK_END}.

use std::io::Write;

/// Write one line into the kernel log; why not, if it could not.
fn log(line: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .map_err(|e| format!("cannot open /dev/kmsg: {e}"))?;
    // "<4>" (warning level) so the line reaches a console at loglevel=5.
    f.write_all(format!("<4>{line}\n").as_bytes())
        .map_err(|e| format!("cannot write to /dev/kmsg: {e}"))
}

/// The markers tell the host which console findings belong to the
/// scenario: a scenario whose marker could not be written is an error,
/// never a finding silently attributed to no scenario or the wrong one.
pub fn scenario_start(name: &str) -> Result<(), String> {
    log(&format!("hmmlab: scenario-start {name}"))
        .map_err(|e| format!("scenario-start marker: {e}"))
}

pub fn scenario_end(name: &str) -> Result<(), String> {
    log(&format!("hmmlab: scenario-end {name}")).map_err(|e| format!("scenario-end marker: {e}"))
}

/// PID 1 is about to stop answering on purpose (`op = "hang-guest"`).
pub fn guest_hangs(name: &str) {
    // Best effort: the host's timeout tells the story either way.
    let _ = log(&format!(
        "hmmlab: guest driver stops answering on purpose (hang-guest in {name})"
    ));
}
