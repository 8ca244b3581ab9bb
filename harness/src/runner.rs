//! One VM run: start QEMU, follow the guest's result records, QMP events and
//! the child, enforce the boot and scenario timeouts, stop the VM.
//! The harness never builds kernels or images: it is handed them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hmmlab_proto::Record;

use crate::vm::{indent, Vm};

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub argv: Vec<String>,
    /// The run directory: qemu.stderr, registers.txt are written here.
    pub run_dir: PathBuf,
    pub results_log: PathBuf,
    pub console_log: PathBuf,
    pub qmp_socket: PathBuf,
    pub boot_timeout: Duration,
    /// Host-side limit per scenario (the guest's own limit plus slack).
    pub scenario_timeouts: BTreeMap<String, Duration>,
    pub default_scenario_timeout: Duration,
    /// Limit for the whole VM run, from QEMU's start.
    pub run_timeout: Duration,
}

/// What the run loop tells its consumers as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    VmStarted { pid: u32 },
    Record { at: Duration, record: Record },
    QmpEvent { at: Duration, name: String },
}

/// How the VM run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// The guest reported `done` and powered off.
    Done,
    /// The guest powered off (or QEMU exited) without reporting `done`.
    PoweredOffEarly {
        reason: String,
    },
    /// GUEST_PANICKED, or a shutdown caused by a panic.
    Panicked,
    BootTimeout,
    ScenarioTimeout {
        name: String,
    },
    /// The console showed a panic, Oops, BUG, sanitizer report, lockup or
    /// stall, and the guest did not finish within the grace period after it.
    KernelCrash {
        line: String,
    },
    /// The whole run took longer than its limit.
    RunTimeout,
    /// SIGINT or SIGTERM arrived.
    Interrupted,
    /// QEMU died on its own (status, stderr).
    QemuDied {
        status: String,
        stderr: String,
    },
}

#[derive(Debug, Clone)]
pub struct VmRun {
    pub records: Vec<(Duration, Record)>,
    pub end: End,
    pub stop: String,
    pub registers: Option<String>,
    pub vm_time: Duration,
    /// When the first sign of a crash was seen (GUEST_PANICKED, or a fatal
    /// console line), from QEMU's start.
    pub crash_seen: Option<Duration>,
}

/// How long the guest may go on after a fatal console finding before the
/// VM is stopped: enough for the driver to report, far below any timeout.
const CRASH_GRACE: Duration = Duration::from_secs(2);

/// Follows a file that another process appends to, yielding whole lines.
struct Tail {
    file: Option<File>,
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    fn new(path: &Path) -> Tail {
        Tail {
            file: None,
            path: path.into(),
            offset: 0,
            partial: vec![],
        }
    }
    fn lines(&mut self) -> Vec<String> {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(f) = self.file.as_mut() else {
            return vec![];
        };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_err() || f.read_to_end(&mut buf).is_err() {
            return vec![];
        }
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let mut out = vec![];
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            let s = String::from_utf8_lossy(&line)
                .trim_matches(|c| c == '\r' || c == '\n')
                .to_string();
            if !s.is_empty() {
                out.push(s);
            }
        }
        out
    }
}

/// Start the VM and follow it to the end. `on_event` sees everything as it happens.
/// An `Err` is an infrastructure failure (QEMU would not start, QMP never answered).
pub fn run(cfg: &RunConfig, on_event: &mut dyn FnMut(&Event)) -> Result<VmRun> {
    let mut vm = Vm::spawn(&cfg.argv, &cfg.run_dir)?;
    on_event(&Event::VmStarted { pid: vm.pid });
    vm.connect_qmp(&cfg.qmp_socket, Duration::from_secs(10))
        .context("QEMU did not come up")?;
    vm.confirm_running()
        .context("asking QEMU whether the VM runs")?;
    let mut w = Watch::new(cfg);
    let end = loop {
        let at = vm.started.elapsed();
        w.read_records(at, Unreadable::Fatal, on_event);
        if w.poll_qmp(&mut vm, on_event) {
            break End::Panicked;
        }
        if let Some(status) = vm.exited() {
            // Last records may have landed between the read and the exit.
            w.read_records(vm.started.elapsed(), Unreadable::Dropped, on_event);
            break w.exit_end(status.to_string(), &vm);
        }
        if let Some(end) = w.console_crash(&vm).or_else(|| w.limits(&vm)) {
            break end;
        }
    };
    let registers = match end {
        End::BootTimeout
        | End::ScenarioTimeout { .. }
        | End::Panicked
        | End::KernelCrash { .. } => vm.registers(),
        _ => None,
    };
    if let Some(r) = &registers {
        let _ = std::fs::write(cfg.run_dir.join("registers.txt"), r);
    }
    let stop = vm.stop();
    let vm_time = vm.started.elapsed();
    // Whatever ended the loop, the guest may have written records it did
    // not get to read (a panic right after a scenario started): drain them.
    w.read_records(vm_time, Unreadable::Dropped, on_event);
    Ok(VmRun {
        records: w.records,
        end,
        stop,
        registers,
        vm_time,
        crash_seen: w.crash_seen,
    })
}

/// What to do with a result line that does not parse.
#[derive(Clone, Copy)]
enum Unreadable {
    /// Keep it as a `fatal` record: the guest's stream is broken.
    Fatal,
    /// Drop it: a line cut short by the VM's end.
    Dropped,
}

/// What the run loop has seen so far.
struct Watch<'a> {
    cfg: &'a RunConfig,
    results: Tail,
    console: Tail,
    /// The first fatal console line, and when it was seen.
    crash: Option<(String, Instant)>,
    crash_seen: Option<Duration>,
    records: Vec<(Duration, Record)>,
    hello_seen: bool,
    /// The scenario running, and since when.
    current: Option<(String, Instant)>,
    done: bool,
    shutdown: Option<String>,
}

impl<'a> Watch<'a> {
    fn new(cfg: &'a RunConfig) -> Watch<'a> {
        Watch {
            cfg,
            results: Tail::new(&cfg.results_log),
            console: Tail::new(&cfg.console_log),
            crash: None,
            crash_seen: None,
            records: vec![],
            hello_seen: false,
            current: None,
            done: false,
            shutdown: None,
        }
    }

    /// The new result lines, as records, each handed on and kept.
    fn read_records(&mut self, at: Duration, bad: Unreadable, on_event: &mut dyn FnMut(&Event)) {
        for line in self.results.lines() {
            let record = match (serde_json::from_str::<Record>(&line), bad) {
                (Ok(r), _) => r,
                (Err(e), Unreadable::Fatal) => Record::Fatal {
                    message: format!("unreadable result line ({e}): {line}"),
                },
                (Err(_), Unreadable::Dropped) => continue,
            };
            match &record {
                Record::Hello { .. } => self.hello_seen = true,
                Record::ScenarioStart { name, .. } => {
                    self.current = Some((name.clone(), Instant::now()))
                }
                Record::ScenarioEnd { .. } => self.current = None,
                Record::Done => self.done = true,
                _ => {}
            }
            on_event(&Event::Record {
                at,
                record: record.clone(),
            });
            self.records.push((at, record));
        }
    }

    /// QMP events since the last poll; true when the guest panicked.
    fn poll_qmp(&mut self, vm: &mut Vm, on_event: &mut dyn FnMut(&Event)) -> bool {
        let events = match vm.qmp.as_mut() {
            Some(q) => q.poll_events(Duration::from_millis(20)).unwrap_or_default(),
            None => {
                std::thread::sleep(Duration::from_millis(20));
                vec![]
            }
        };
        let mut panicked = false;
        for ev in events {
            on_event(&Event::QmpEvent {
                at: vm.started.elapsed(),
                name: ev.name.clone(),
            });
            match ev.name.as_str() {
                "GUEST_PANICKED" => {
                    panicked = true;
                    self.crash_seen.get_or_insert(vm.started.elapsed());
                }
                "SHUTDOWN" => {
                    let reason = ev.data.get("reason").and_then(|r| r.as_str());
                    panicked |= reason == Some("guest-panic");
                    self.shutdown = Some(reason.unwrap_or("").to_string());
                }
                _ => {}
            }
        }
        panicked
    }

    /// How the run ended when QEMU exited by itself.
    fn exit_end(&self, status: String, vm: &Vm) -> End {
        match (&self.shutdown, self.done) {
            (_, true) => End::Done,
            (Some(reason), false) => End::PoweredOffEarly {
                reason: reason.clone(),
            },
            (None, false) => End::QemuDied {
                status,
                stderr: indent(&vm.stderr()),
            },
        }
    }

    /// A fatal console line, once the guest has had its grace period to
    /// report after it.
    fn console_crash(&mut self, vm: &Vm) -> Option<End> {
        if self.crash.is_none() {
            self.crash = self
                .console
                .lines()
                .into_iter()
                .find(|l| crate::console::line_kind(l).is_some_and(|k| k.is_fatal()))
                .map(|l| (l, Instant::now()));
            if self.crash.is_some() {
                self.crash_seen.get_or_insert(vm.started.elapsed());
            }
        }
        match &self.crash {
            Some((line, at)) if at.elapsed() > CRASH_GRACE => {
                Some(End::KernelCrash { line: line.clone() })
            }
            _ => None,
        }
    }

    /// An interrupt, or a limit that expired: the run's, the boot's, the
    /// running scenario's.
    fn limits(&self, vm: &Vm) -> Option<End> {
        let cfg = self.cfg;
        if crate::interrupt::requested() {
            return Some(End::Interrupted);
        }
        if vm.started.elapsed() > cfg.run_timeout {
            return Some(End::RunTimeout);
        }
        if !self.hello_seen && vm.started.elapsed() > cfg.boot_timeout {
            return Some(End::BootTimeout);
        }
        let (name, since) = self.current.as_ref()?;
        let limit = cfg
            .scenario_timeouts
            .get(name)
            .copied()
            .unwrap_or(cfg.default_scenario_timeout);
        (since.elapsed() > limit).then(|| End::ScenarioTimeout { name: name.clone() })
    }
}
