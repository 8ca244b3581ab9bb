//! The run's report, built event by event: what run.json holds at any moment
//! is the fold of the events so far. Nothing is assembled twice.

use std::time::Duration;

use crate::events::{RunEvent, RunStart};
use crate::machine::Accel;

use super::model::{BuiltKernel, RunReport, RunStatus, Timing};

impl RunReport {
    /// A run that has just started: nothing known but its inputs.
    pub fn new(s: &RunStart) -> RunReport {
        RunReport {
            run_id: s.run_id.clone(),
            started_unix: s.started_unix,
            status: RunStatus::Running,
            kernel: BuiltKernel::default(),
            qemu_version: String::new(),
            accel: Accel::Tcg,
            accel_reason: String::new(),
            qemu_command: String::new(),
            default_thp: s.default_thp.clone(),
            host: s.host.clone(),
            timing: Timing::default(),
            scenarios: vec![],
            console_findings: vec![],
            console_tail: vec![],
            error: None,
            skips: Default::default(),
            fail_on_skip: s.fail_on_skip,
            booted_kernel: None,
        }
    }

    /// Fold one event into the report.
    pub fn apply(&mut self, ev: &RunEvent) {
        match ev {
            RunEvent::RunStarted(s) => *self = RunReport::new(s),
            RunEvent::KernelReady(k) => self.kernel = (**k).clone(),
            RunEvent::Planned { skipped, .. } => self.scenarios.extend(skipped.iter().cloned()),
            RunEvent::VmStarted(v) => {
                self.accel = v.accel;
                self.accel_reason = v.accel_reason.clone();
                self.qemu_command = v.qemu_command.clone();
                self.qemu_version = v.qemu_version.clone();
            }
            RunEvent::BootFinished(b) => {
                self.timing.boot_ms = Some(ms(b.at));
                self.timing.guest_uptime_at_init_ms = Some(b.uptime_ns as f64 / 1e6);
            }
            RunEvent::ScenarioStarted { at, .. } => {
                self.timing.first_scenario_ms.get_or_insert(ms(*at));
            }
            RunEvent::StepFinished { .. } | RunEvent::QmpEvent { .. } => {}
            RunEvent::ScenarioFinished { result, .. } => {
                match self.scenarios.iter_mut().find(|s| s.name == result.name) {
                    Some(s) => *s = result.clone(),
                    None => self.scenarios.push(result.clone()),
                }
            }
            RunEvent::GuestFatal { message, .. } => {
                self.error
                    .get_or_insert_with(|| format!("guest driver: {message}"));
            }
            RunEvent::ConsoleFinding(f) => {
                if f.scenario.is_none() {
                    self.console_findings.push(f.clone());
                }
            }
            RunEvent::InfraError { message } => {
                self.status = RunStatus::InfraError;
                self.error = Some(message.clone());
            }
            RunEvent::RunFinished(end) => {
                self.status = end.status;
                self.scenarios = end.scenarios.clone();
                self.skips = super::skips::Skips::of(&self.scenarios);
                self.error = end.error.clone();
                self.console_tail = end.console_tail.clone();
                self.timing.vm_ms = end.vm_time.map(ms);
                self.timing.crash_to_end_ms = end.crash_to_end.map(ms);
                self.booted_kernel = end.booted_kernel.clone();
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::RunEnd;
    use crate::report::model::HostFacts;
    use crate::report::ScenarioResult;
    use hmmlab_proto::Outcome;

    fn start() -> RunEvent {
        RunEvent::RunStarted(RunStart {
            run_id: "r1".into(),
            run_dir: "/nonexistent".into(),
            started_unix: 7,
            host: HostFacts::default(),
            default_thp: "madvise".into(),
            fail_on_skip: false,
        })
    }

    fn result(name: &str, outcome: Outcome) -> ScenarioResult {
        ScenarioResult::for_tests(name, outcome)
    }

    #[test]
    fn a_finished_scenario_shows_at_once_and_the_end_replaces_all() {
        let mut r = RunReport::new(&RunStart {
            run_id: String::new(),
            run_dir: "/".into(),
            started_unix: 0,
            host: HostFacts::default(),
            default_thp: String::new(),
            fail_on_skip: false,
        });
        r.apply(&start());
        assert_eq!((r.run_id.as_str(), r.status), ("r1", RunStatus::Running));
        r.apply(&RunEvent::ScenarioFinished {
            at: Duration::from_secs(2),
            result: result("a", Outcome::Pass),
        });
        assert_eq!(r.scenarios.len(), 1);
        r.apply(&RunEvent::ScenarioFinished {
            at: Duration::from_secs(3),
            result: result("a", Outcome::Fail),
        });
        assert_eq!(r.scenarios.len(), 1, "the same scenario is replaced");
        assert_eq!(r.scenarios[0].outcome, Outcome::Fail);
        let mut end = RunEnd::without_results(RunStatus::Finished, "e".into());
        end.scenarios = vec![result("a", Outcome::Crashed), result("b", Outcome::Skip)];
        r.apply(&RunEvent::RunFinished(end));
        assert_eq!(r.status, RunStatus::Finished);
        assert_eq!(r.scenarios.len(), 2);
        assert_eq!(r.error.as_deref(), Some("e"));
    }

    #[test]
    fn an_infra_error_is_the_status() {
        let mut r = RunReport::for_tests(vec![]);
        r.apply(&RunEvent::InfraError {
            message: "QEMU would not start".into(),
        });
        assert_eq!(r.status, RunStatus::InfraError);
        assert_eq!(r.error.as_deref(), Some("QEMU would not start"));
    }
}
