//! Turn what a VM run produced (records, how it ended, console findings) into
//! one result per planned scenario. A scenario starts as `crashed` and only
//! becomes `pass` when its pass is seen; one the plan promised but that never
//! reported is an error, never silently dropped.

use hmmlab_proto::{Outcome, Record};

use crate::console::{Finding, FindingKind};
use crate::report::{ScenarioResult, StepResult};
use crate::runner::End;

pub struct Planned {
    pub name: String,
    pub thp: String,
    pub reproduce: String,
}

pub fn assemble(
    planned: &[Planned],
    records: &[Record],
    end: &End,
    findings: &[Finding],
) -> Vec<ScenarioResult> {
    let mut out: Vec<ScenarioResult> = planned
        .iter()
        .map(|p| ScenarioResult {
            name: p.name.clone(),
            outcome: Outcome::Crashed,
            thp: p.thp.clone(),
            duration_ns: 0,
            message: None,
            steps: vec![],
            output: vec![],
            console_findings: vec![],
            reproduce: p.reproduce.clone(),
        })
        .collect();
    let idx = |name: &str| planned.iter().position(|p| p.name == name);
    let mut started = vec![false; planned.len()];
    let mut ended = vec![false; planned.len()];
    for r in records {
        match r {
            Record::ScenarioStart { name, thp } => {
                if let Some(i) = idx(name) {
                    started[i] = true;
                    out[i].thp = thp.clone();
                }
            }
            Record::Step {
                scenario,
                index,
                op,
                outcome,
                duration_ns,
                pages,
                cpages,
                faults,
                message,
            } => {
                if let Some(i) = idx(scenario) {
                    let pages_per_sec = match (op.starts_with("migrate"), cpages) {
                        (true, Some(c)) if *duration_ns > 0 => {
                            Some(*c as f64 * 1e9 / *duration_ns as f64)
                        }
                        _ => None,
                    };
                    out[i].steps.push(StepResult {
                        index: *index,
                        op: op.clone(),
                        outcome: *outcome,
                        duration_ns: *duration_ns,
                        pages: *pages,
                        cpages: *cpages,
                        faults: *faults,
                        pages_per_sec,
                        message: message.clone(),
                    });
                }
            }
            Record::Output { scenario, line } => {
                if let Some(i) = idx(scenario) {
                    out[i].output.push(line.clone());
                }
            }
            Record::ScenarioEnd {
                name,
                outcome,
                duration_ns,
                message,
            } => {
                if let Some(i) = idx(name) {
                    ended[i] = true;
                    out[i].outcome = *outcome;
                    out[i].duration_ns = *duration_ns;
                    out[i].message = message
                        .clone()
                        .or_else(|| first_step_failure(&out[i].steps));
                }
            }
            _ => {}
        }
    }
    for i in 0..planned.len() {
        if ended[i] {
            continue;
        }
        let (outcome, msg) = match (started[i], end) {
            (true, End::ScenarioTimeout { name }) if *name == planned[i].name => (
                Outcome::Timeout,
                "the guest stopped responding: host-side scenario timeout".to_string(),
            ),
            (true, End::Panicked) => (
                Outcome::Crashed,
                "the kernel panicked during this scenario".to_string(),
            ),
            (true, End::KernelCrash { line }) => (
                Outcome::Crashed,
                format!("kernel crash during this scenario: {line}"),
            ),
            (true, e) => (Outcome::Crashed, format!("never finished: {}", describe(e))),
            (false, End::Done) => (
                Outcome::Error,
                "planned but never reported by the guest".to_string(),
            ),
            (false, e) => (Outcome::Error, format!("not run: {}", describe(e))),
        };
        out[i].outcome = outcome;
        out[i].message = Some(msg);
    }
    for f in findings {
        let Some(i) = f.scenario.as_deref().and_then(idx) else {
            continue;
        };
        out[i].console_findings.push(f.clone());
        let verdict = if f.kind == FindingKind::Warning {
            Outcome::Fail
        } else {
            Outcome::Crashed
        };
        if matches!(
            out[i].outcome,
            Outcome::Pass | Outcome::Skip | Outcome::Fail
        ) && verdict > out[i].outcome
        {
            out[i].outcome = verdict;
            out[i].message = Some(format!(
                "kernel {:?} in the console at line {}: {}",
                f.kind,
                f.line,
                f.excerpt.lines().next().unwrap_or("")
            ));
        }
    }
    out
}

fn first_step_failure(steps: &[StepResult]) -> Option<String> {
    steps.iter().find(|s| s.outcome != Outcome::Pass).map(|s| {
        format!(
            "step {} ({}): {}",
            s.index,
            s.op,
            s.message.clone().unwrap_or_default()
        )
    })
}

pub fn describe(end: &End) -> String {
    match end {
        End::Done => "the guest finished".into(),
        End::PoweredOffEarly { reason } => format!("the VM shut down early ({reason})"),
        End::Panicked => "the kernel panicked".into(),
        End::BootTimeout => "the guest driver never started (boot timeout)".into(),
        End::ScenarioTimeout { name } => {
            format!("the VM was stopped after scenario {name} timed out")
        }
        End::KernelCrash { line } => format!("the VM was stopped after a kernel crash ({line})"),
        End::QemuDied { status, .. } => format!("QEMU died ({status})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(names: &[&str]) -> Vec<Planned> {
        names
            .iter()
            .map(|n| Planned {
                name: n.to_string(),
                thp: "madvise".into(),
                reproduce: format!("repro {n}"),
            })
            .collect()
    }
    fn start(n: &str) -> Record {
        Record::ScenarioStart {
            name: n.into(),
            thp: "madvise".into(),
        }
    }
    fn end(n: &str, o: Outcome) -> Record {
        Record::ScenarioEnd {
            name: n.into(),
            outcome: o,
            duration_ns: 10,
            message: None,
        }
    }

    #[test]
    fn pass_only_when_seen() {
        let r = assemble(
            &planned(&["a", "b"]),
            &[start("a"), end("a", Outcome::Pass), Record::Done],
            &End::Done,
            &[],
        );
        assert_eq!(r[0].outcome, Outcome::Pass);
        assert_eq!(r[1].outcome, Outcome::Error);
        assert!(r[1].message.as_ref().unwrap().contains("never reported"));
    }

    #[test]
    fn panic_crashes_the_running_scenario_and_skips_the_rest() {
        let r = assemble(
            &planned(&["a", "b", "c"]),
            &[start("a"), end("a", Outcome::Pass), start("b")],
            &End::Panicked,
            &[],
        );
        assert_eq!(
            r.iter().map(|s| s.outcome).collect::<Vec<_>>(),
            vec![Outcome::Pass, Outcome::Crashed, Outcome::Error]
        );
        assert!(r[2].message.as_ref().unwrap().starts_with("not run"));
    }

    #[test]
    fn a_console_crash_marks_the_running_scenario() {
        let e = End::KernelCrash {
            line: "BUG: unable to handle page fault".into(),
        };
        let r = assemble(&planned(&["a", "b"]), &[start("a")], &e, &[]);
        assert_eq!(
            (r[0].outcome, r[1].outcome),
            (Outcome::Crashed, Outcome::Error)
        );
        assert!(r[0]
            .message
            .as_ref()
            .unwrap()
            .contains("unable to handle page fault"));
    }

    #[test]
    fn host_timeout() {
        let e = End::ScenarioTimeout { name: "a".into() };
        let r = assemble(&planned(&["a"]), &[start("a")], &e, &[]);
        assert_eq!(r[0].outcome, Outcome::Timeout);
    }

    #[test]
    fn console_findings_override_a_pass() {
        let f = vec![
            Finding {
                kind: FindingKind::Warning,
                line: 7,
                scenario: Some("a".into()),
                excerpt: "WARNING: x".into(),
            },
            Finding {
                kind: FindingKind::Oops,
                line: 9,
                scenario: Some("b".into()),
                excerpt: "Oops: y".into(),
            },
        ];
        let recs = [
            start("a"),
            end("a", Outcome::Pass),
            start("b"),
            end("b", Outcome::Pass),
            Record::Done,
        ];
        let r = assemble(&planned(&["a", "b"]), &recs, &End::Done, &f);
        assert_eq!(
            (r[0].outcome, r[1].outcome),
            (Outcome::Fail, Outcome::Crashed)
        );
        assert!(r[0].message.as_ref().unwrap().contains("line 7"));
    }

    #[test]
    fn migrate_throughput() {
        let step = Record::Step {
            scenario: "a".into(),
            index: 0,
            op: "migrate-to-device".into(),
            outcome: Outcome::Pass,
            duration_ns: 1_000_000,
            pages: 256,
            cpages: Some(256),
            faults: None,
            message: None,
        };
        let r = assemble(
            &planned(&["a"]),
            &[start("a"), step, end("a", Outcome::Pass)],
            &End::Done,
            &[],
        );
        assert_eq!(r[0].steps[0].pages_per_sec, Some(256000.0));
    }
}
