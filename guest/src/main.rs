//! hmmlab-guest: the test driver that runs as PID 1 (`/init`) of the hmmlab
//! VM.
//!
//! As PID 1 it mounts /proc, /sys, /dev and /tmp, reports on the results
//! serial port ([`hmmlab_proto::plan::RESULTS_TTY`]), runs the plan at
//! [`hmmlab_proto::plan::PLAN_PATH`] (each scenario in a process of its own)
//! and powers the VM off, whatever happens.
//!
//! Started any other way it refuses (exit status 2), unless given
//! `--not-init [PLAN]`: then it runs PLAN (default: the plan path above)
//! without mounting anything or powering off, with the records on stdout
//! (and a coverage plan's counters in `hmmlab-coverage.bin`).
//! That needs root and test_hmm loaded, and it leaves the machine's THP
//! mode (/sys/kernel/mm/transparent_hugepage/enabled) as the last scenario
//! set it. A `hang-guest` step stops it for good, as it would PID 1: end it
//! with a signal.

mod abi;
mod balance;
mod bench;
mod child;
mod coverage;
mod dmirror;
mod faultinject;
mod fork;
mod init;
mod khugepaged;
mod kmemleak;
mod kmsg;
mod kselftest;
mod mapping;
mod memcg;
mod model;
mod pagemap;
mod race;
mod refs;
mod release;
mod results;
mod runner;
mod smaps;
mod steps;
mod swap;
mod sysnames;
mod system;
mod thpstats;
#[cfg(test)]
#[allow(dead_code)]
mod uapi_header;
mod uffd;

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::process::exit;

use hmmlab_proto::coverage::{COVERAGE_TTY, GCOV_DIR};
use hmmlab_proto::plan::{Mode, PLAN_PATH, RESULTS_TTY};
use hmmlab_proto::{Plan, Record};

use crate::results::Results;

const USAGE: &str = "hmmlab-guest is the init of the hmmlab VM and does nothing when not PID 1.\n\
                     To run a plan here, with records on stdout: hmmlab-guest --not-init [PLAN]";

fn main() {
    // First thing: Hello reports how long the VM took to get here.
    let started_ns = system::boottime_ns();
    if init::is_pid1() {
        run_as_init(started_ns);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let plan = match args.as_slice() {
        [flag] if flag == "--not-init" => PLAN_PATH,
        [flag, plan] if flag == "--not-init" => plan.as_str(),
        _ => {
            eprintln!("{USAGE}");
            exit(2);
        }
    };
    exit(run_by_hand(started_ns, Path::new(plan)));
}

fn run_as_init(started_ns: u64) -> ! {
    let mounted = init::mount_filesystems();
    init::ensure_console_fds();
    let results = match Results::open_tty(RESULTS_TTY) {
        Ok(results) => results,
        Err(e) => {
            // No results channel: say it on the console, which the host logs.
            let after = mounted
                .err()
                .map(|m| format!(" (after: {m})"))
                .unwrap_or_default();
            let fatal = Record::Fatal {
                message: format!("{e}{after}"),
            };
            match Results::stdio(io::stderr()) {
                Ok(console) => finish(&console, &fatal),
                Err(_) => eprintln!("hmmlab-guest: {fatal:?}"),
            }
            init::power_off();
        }
    };
    install_fatal_panic_hook(&results);
    let coverage_tty = || results::open_raw_tty(COVERAGE_TTY);
    let driven =
        mounted.and_then(|()| drive(&results, started_ns, Path::new(PLAN_PATH), &coverage_tty));
    if let Err(message) = driven {
        finish(&results, &Record::Fatal { message });
    }
    results.drain();
    init::power_off()
}

/// Send the last record and power off.
fn finish(results: &Results, last: &Record) -> ! {
    results.emit(last);
    results.drain();
    init::power_off()
}

/// A panic in PID 1 would otherwise end as a dead init and a kernel panic:
/// report it and power off instead. (The release profile aborts on panic, so
/// the hook, which runs before the abort, is the only place to do it.)
fn install_fatal_panic_hook(results: &Results) {
    let Ok(channel) = results.try_clone() else {
        return;
    };
    std::panic::set_hook(Box::new(move |info| {
        finish(
            &channel,
            &Record::Fatal {
                message: format!("guest driver panicked: {info}"),
            },
        );
    }));
}

fn run_by_hand(started_ns: u64, plan: &Path) -> i32 {
    let results = match Results::stdio(io::stdout()) {
        Ok(results) => results,
        Err(e) => {
            eprintln!("hmmlab-guest: stdout: {e}");
            return 1;
        }
    };
    let coverage_file = || {
        File::create(BY_HAND_COVERAGE).map_err(|e| format!("cannot create {BY_HAND_COVERAGE}: {e}"))
    };
    match drive(&results, started_ns, plan, &coverage_file) {
        Ok(()) => 0,
        Err(message) => {
            results.emit(&Record::Fatal { message });
            1
        }
    }
}

/// Where a run by hand writes a coverage plan's counters (as frames).
const BY_HAND_COVERAGE: &str = "hmmlab-coverage.bin";

/// Hello, then the plan (unless only probing). A coverage plan's counters
/// go to what `coverage_out` opens; if it cannot, the scenarios run all
/// the same and the console says why the host gets no counters.
fn drive(
    results: &Results,
    started_ns: u64,
    plan_path: &Path,
    coverage_out: &dyn Fn() -> Result<File, String>,
) -> Result<(), String> {
    results.emit(&Record::Hello {
        kernel_release: system::kernel_release(),
        uptime_ns: started_ns,
        thp_modes: system::thp_modes(),
        devices: system::dmirror_devices(),
        proc_version: fs::read_to_string("/proc/version").ok(),
    });
    let plan = load_plan(plan_path)?;
    if plan.mode == Mode::Probe {
        return Ok(());
    }
    check_devices(&plan.devices, &system::dmirror_devices())?;
    // In the VM only: by hand, the machine's khugepaged is its owner's.
    if init::is_pid1() {
        if let Err(e) = khugepaged::hold_off() {
            eprintln!("hmmlab-guest: khugepaged is not held off, scenarios may see it: {e}");
        }
        // Before the leak checks take their baseline: the swap device's
        // memory is there for the whole run.
        match swap::set_up() {
            Ok(Some(device)) => eprintln!("hmmlab-guest: swap on {device}"),
            Ok(None) => {}
            Err(e) => eprintln!("hmmlab-guest: no swap device, page-out cannot swap: {e}"),
        }
    }
    let counters = plan.coverage.as_ref().and_then(|c| match coverage_out() {
        Ok(out) => Some(coverage::Counters::new(c, Path::new(GCOV_DIR), out)),
        Err(e) => {
            eprintln!("hmmlab-guest: coverage: no counters will be sent: {e}");
            None
        }
    });
    runner::run_plan(&plan, results, counters.as_ref());
    if let Some(c) = &counters {
        c.drain();
    }
    Ok(())
}

/// Every device the machine file names is there: a missing one means the
/// machine is not what the scenarios assume (say, test_hmm got no
/// device-coherent memory), which no scenario should report as its own.
fn check_devices(wanted: &[String], found: &[String]) -> Result<(), String> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|d| !found.contains(d))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "missing /dev/{} (found: {}); the machine file's `devices` names them: test_hmm's \
         lines in the console say why it did not create them",
        missing.join(", /dev/"),
        if found.is_empty() {
            "none".to_string()
        } else {
            found.join(", ")
        }
    ))
}

fn load_plan(path: &Path) -> Result<Plan, String> {
    let shown = path.display();
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read the plan {shown}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("cannot parse the plan {shown}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_the_machine_names_must_be_there() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let wanted = names(&["hmm_dmirror0", "hmm_dmirror2"]);
        assert_eq!(
            check_devices(
                &wanted,
                &names(&["hmm_dmirror0", "hmm_dmirror1", "hmm_dmirror2"])
            ),
            Ok(())
        );
        assert_eq!(check_devices(&[], &[]), Ok(()));
        let e = check_devices(&wanted, &names(&["hmm_dmirror0", "hmm_dmirror1"])).unwrap_err();
        assert!(
            e.starts_with("missing /dev/hmm_dmirror2 (found: hmm_dmirror0, hmm_dmirror1)"),
            "{e}"
        );
        let e = check_devices(&wanted, &[]).unwrap_err();
        assert!(
            e.starts_with("missing /dev/hmm_dmirror0, /dev/hmm_dmirror2 (found: none)"),
            "{e}"
        );
    }
}
