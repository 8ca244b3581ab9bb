//! The run engine's core: what the VM run produces (records, QMP events, the
//! console) becomes typed [`RunEvent`]s; each is folded into the report
//! ([`RunReport::apply`]) and handed to every reporter. The stages that
//! prepare and boot a run live in the caller (xtask's `run` module); the
//! engine only turns what happens into events, and every run it started
//! ends with [`Engine::finish`], whatever happened.

use std::time::Duration;

use anyhow::Result;
use hmmlab_proto::Record;

use crate::assemble::{describe, outside_results, Assembler, Planned};
use crate::console;
use crate::events::{Boot, RunEnd, RunEvent, RunStart, VmStart};
use crate::report::skips::fail_skips;
use crate::report::{Reporter, RunReport, RunStatus, ScenarioResult};
use crate::runner::{self, End, RunConfig, VmRun};

/// Console lines kept in the report when the VM did not end normally.
const CONSOLE_TAIL: usize = 20;

pub struct Engine {
    report: RunReport,
    reporters: Vec<Box<dyn Reporter>>,
    assembler: Assembler,
    skipped: Vec<ScenarioResult>,
    /// Reporters that failed to write, with why.
    failed: Vec<String>,
}

impl Engine {
    /// A run begins: its directory exists, its reporters hear `RunStarted`.
    pub fn start(start: RunStart, reporters: Vec<Box<dyn Reporter>>) -> Engine {
        let mut e = Engine {
            report: RunReport::new(&start),
            reporters,
            assembler: Assembler::new(&[]),
            skipped: vec![],
            failed: vec![],
        };
        e.emit(RunEvent::RunStarted(start));
        e
    }

    /// The report as it stands.
    pub fn report(&self) -> &RunReport {
        &self.report
    }

    /// Fold `ev` into the report, then hand it to every reporter. A reporter
    /// that fails is named at once and again by [`Engine::finish`].
    pub fn emit(&mut self, ev: RunEvent) {
        self.report.apply(&ev);
        for r in &mut self.reporters {
            if let Err(e) = r.on_event(&ev, &self.report) {
                let why = format!("{}: {e:#}", r.name());
                crate::say::err(&format!("warning: reporter {why}\n"));
                self.failed.push(why);
            }
        }
    }

    /// The plan: the instances the VM runs, and those skipped on the host.
    pub fn plan(&mut self, planned: Vec<Planned>, skipped: Vec<ScenarioResult>) {
        self.assembler = Assembler::new(&planned);
        self.skipped = skipped.clone();
        self.emit(RunEvent::Planned { planned, skipped });
    }

    /// Run the VM, emitting what happens as it happens. `vm` is what is
    /// known of it before it starts (its pid is filled in).
    pub fn run_vm(&mut self, cfg: &RunConfig, vm: VmStart) -> Result<VmRun> {
        runner::run(cfg, &mut |ev| match ev {
            runner::Event::VmStarted { pid } => self.emit(RunEvent::VmStarted(VmStart {
                pid: *pid,
                ..vm.clone()
            })),
            runner::Event::QmpEvent { at, name } => self.emit(RunEvent::QmpEvent {
                at: *at,
                name: name.clone(),
            }),
            runner::Event::Record { at, record } => self.record(*at, record),
        })
    }

    fn record(&mut self, at: Duration, r: &Record) {
        let finished = self.assembler.record(r).cloned();
        let ev = match r {
            Record::Hello {
                kernel_release,
                uptime_ns,
                thp_modes,
                devices,
                proc_version,
            } => RunEvent::BootFinished(Boot {
                at,
                kernel_release: kernel_release.clone(),
                uptime_ns: *uptime_ns,
                thp_modes: thp_modes.clone(),
                devices: devices.clone(),
                proc_version: proc_version.clone(),
            }),
            Record::ScenarioStart { name, thp } => RunEvent::ScenarioStarted {
                at,
                name: name.clone(),
                thp: *thp,
            },
            Record::Step { scenario, .. } => match self.assembler.last_step(scenario) {
                Some(step) => RunEvent::StepFinished {
                    at,
                    scenario: scenario.clone(),
                    step: step.clone(),
                },
                None => return,
            },
            Record::ScenarioEnd { .. } | Record::RunCheck { .. } => match finished {
                Some(result) => RunEvent::ScenarioFinished { at, result },
                None => return,
            },
            Record::Fatal { message } => RunEvent::GuestFatal {
                at,
                message: message.clone(),
            },
            Record::Plan { .. } | Record::Output { .. } | Record::Sample { .. } | Record::Done => {
                return
            }
        };
        self.emit(ev);
    }

    /// How the VM run ended, as the run's end: console findings are
    /// emitted and attributed, scenarios that never ended get their outcome.
    /// `identity` is whether the kernel that booted is the one built; if
    /// not, no result counts.
    pub fn conclude(
        &mut self,
        vm: &VmRun,
        console_text: &str,
        identity: Result<(), String>,
        booted_kernel: Option<String>,
    ) -> RunEnd {
        let findings = console::classify(console_text);
        for f in &findings {
            self.emit(RunEvent::ConsoleFinding(f.clone()));
        }
        let timed = |end: RunEnd| RunEnd {
            vm_time: Some(vm.vm_time),
            crash_to_end: vm.crash_seen.map(|c| vm.vm_time.saturating_sub(c)),
            booted_kernel: booted_kernel.clone(),
            ..end
        };
        if let Err(why) = identity {
            self.emit(RunEvent::InfraError {
                message: why.clone(),
            });
            return timed(RunEnd::without_results(RunStatus::InfraError, why));
        }
        let assembler = std::mem::replace(&mut self.assembler, Assembler::new(&[]));
        let mut scenarios = assembler.finish(&vm.end, &findings);
        scenarios.extend(self.skipped.iter().cloned());
        scenarios.extend(outside_results(&findings));
        if self.report.fail_on_skip {
            fail_skips(&mut scenarios);
        }
        let mut end = RunEnd {
            status: match vm.end {
                End::Interrupted => RunStatus::Interrupted,
                _ => RunStatus::Finished,
            },
            scenarios,
            error: self.report.error.clone(),
            ..RunEnd::without_results(RunStatus::Finished, String::new())
        };
        if vm.end != End::Done {
            let lines: Vec<&str> = console_text.lines().collect();
            end.console_tail = lines[lines.len().saturating_sub(CONSOLE_TAIL)..]
                .iter()
                .map(|l| l.to_string())
                .collect();
            let why = format!(
                "{}; VM {}; console tail:\n{}",
                describe(&vm.end),
                vm.stop,
                end.console_tail.join("\n")
            );
            end.error = Some(end.error.map(|e| format!("{e}\n{why}")).unwrap_or(why));
        }
        timed(end)
    }

    /// A run that ends before the VM gave results: an infrastructure
    /// error, refused input, or an interrupt.
    pub fn abort(self, status: RunStatus, why: String) -> Result<RunReport> {
        let mut e = self;
        if status == RunStatus::InfraError {
            e.emit(RunEvent::InfraError {
                message: why.clone(),
            });
        }
        e.finish(RunEnd::without_results(status, why))
    }

    /// The last event: every reporter writes its final form. An error names
    /// each reporter that could not write.
    pub fn finish(mut self, end: RunEnd) -> Result<RunReport> {
        self.emit(RunEvent::RunFinished(end));
        if !self.failed.is_empty() {
            anyhow::bail!(
                "run {}: results could not all be written: {}",
                self.report.run_id,
                self.failed.join("; ")
            );
        }
        Ok(self.report)
    }
}
