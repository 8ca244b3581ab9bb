//! Turn what a VM run produced (records, how it ended, console findings) into
//! one result per planned scenario. A scenario starts as `crashed` and only
//! becomes `pass` when its pass is seen; one the plan promised but that never
//! reported is an error, never silently dropped. A selftest's output (a
//! TAP plan `1..N` in it) is parsed into per-case results, which decide the
//! outcome together with what the guest reported (see [`apply_cases`]).

use hmmlab_proto::scenario::{KnownFailure, ThpMode};
use hmmlab_proto::{Outcome, Record};

use crate::console::{Finding, FindingKind};
use crate::ktap;
use crate::report::{CaseResult, ScenarioResult, StepResult};
use crate::runner::End;

/// Failed cases named in a scenario's message; the rest are counted.
const NAMED_FAILURES: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub name: String,
    pub thp: ThpMode,
    pub reproduce: String,
    /// The selftest's known failures that apply to this kernel.
    pub known: Vec<KnownFailure>,
    /// What the selftest was told not to run, one line each with why.
    pub excluded: Vec<String>,
}

/// Builds the results record by record, as the guest reports them: a
/// scenario's result is known when its end arrives ([`Assembler::record`]),
/// and [`Assembler::finish`] decides what never ended and adds the console's
/// findings.
pub struct Assembler {
    planned: Vec<Planned>,
    out: Vec<ScenarioResult>,
    /// Results of the guest's checks of the whole run (`Record::RunCheck`).
    run_checks: Vec<ScenarioResult>,
    started: Vec<bool>,
    ended: Vec<bool>,
}

impl Assembler {
    pub fn new(planned: &[Planned]) -> Assembler {
        Assembler {
            planned: planned.to_vec(),
            out: planned.iter().map(crashed).collect(),
            run_checks: vec![],
            started: vec![false; planned.len()],
            ended: vec![false; planned.len()],
        }
    }

    fn idx(&self, name: &str) -> Option<usize> {
        self.planned.iter().position(|p| p.name == name)
    }

    /// Take one record; returns the scenario's result when it ended.
    pub fn record(&mut self, r: &Record) -> Option<&ScenarioResult> {
        match r {
            Record::ScenarioStart { name, thp } => {
                let i = self.idx(name)?;
                self.started[i] = true;
                self.out[i].thp = Some(*thp);
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
                let i = self.idx(scenario)?;
                let pages_per_sec = match (op.is_migration(), cpages) {
                    (true, Some(c)) if *duration_ns > 0 => {
                        Some(*c as f64 * 1e9 / *duration_ns as f64)
                    }
                    _ => None,
                };
                self.out[i].steps.push(StepResult {
                    index: *index,
                    op: *op,
                    outcome: *outcome,
                    duration_ns: *duration_ns,
                    pages: *pages,
                    cpages: *cpages,
                    faults: *faults,
                    pages_per_sec,
                    message: message.clone(),
                });
            }
            Record::Sample {
                scenario,
                case,
                pages,
                round,
                prepare_ns,
                migrate_ns,
            } => {
                let i = self.idx(scenario)?;
                self.out[i].samples.push(crate::report::bench::Sample {
                    case: *case,
                    pages: *pages,
                    round: *round,
                    prepare_ns: *prepare_ns,
                    migrate_ns: *migrate_ns,
                });
            }
            Record::Output { scenario, line } => {
                let i = self.idx(scenario)?;
                self.out[i].output.push(line.clone());
            }
            Record::ScenarioEnd {
                name,
                outcome,
                duration_ns,
                checks_ns,
                message,
            } => {
                let i = self.idx(name)?;
                self.ended[i] = true;
                let r = &mut self.out[i];
                r.outcome = *outcome;
                r.duration_ns = *duration_ns;
                r.checks_ns = *checks_ns;
                r.message = message.clone().or_else(|| first_step_failure(&r.steps));
                apply_cases(r, &self.planned[i].known);
                return Some(&self.out[i]);
            }
            Record::RunCheck {
                name,
                outcome,
                message,
            } => {
                let mut r = ScenarioResult::new(name, *outcome, None, "");
                r.message = Some(message.clone());
                self.run_checks.push(r);
                return self.run_checks.last();
            }
            _ => {}
        }
        None
    }

    /// The last step a scenario reported, when `r` is a step record.
    pub fn last_step(&self, scenario: &str) -> Option<&StepResult> {
        self.out[self.idx(scenario)?].steps.last()
    }

    /// One result per planned scenario: those that never ended get their
    /// outcome from how the VM run ended; console findings are attributed.
    pub fn finish(mut self, end: &End, findings: &[Finding]) -> Vec<ScenarioResult> {
        for i in 0..self.planned.len() {
            if !self.ended[i] {
                let (outcome, msg) = unfinished(self.started[i], &self.planned[i].name, end);
                self.out[i].outcome = outcome;
                self.out[i].message = Some(msg);
                apply_cases(&mut self.out[i], &self.planned[i].known);
            }
        }
        let mut known_seen: Vec<Vec<usize>> = self
            .planned
            .iter()
            .map(|p| vec![0; p.known.len()])
            .collect();
        for f in findings {
            if let Some(i) = f.scenario.as_deref().and_then(|n| self.idx(n)) {
                match known_warning(&self.planned[i].known, f) {
                    Some(k) => known_seen[i][k] += 1,
                    None => add_finding(&mut self.out[i], f),
                }
            }
        }
        for (i, seen) in known_seen.iter().enumerate() {
            known_console(&mut self.out[i], &self.planned[i].known, seen);
        }
        self.out.extend(self.run_checks);
        self.out
    }
}

/// All at once: every record, then how the run ended.
pub fn assemble(
    planned: &[Planned],
    records: &[Record],
    end: &End,
    findings: &[Finding],
) -> Vec<ScenarioResult> {
    let mut a = Assembler::new(planned);
    for r in records {
        a.record(r);
    }
    a.finish(end, findings)
}

/// One result per place outside every scenario where the console showed a
/// finding (`boot`, `between A and B`, `shutdown`): a WARNING fails it,
/// anything worse makes it crashed. Nothing the kernel complains about
/// goes uncounted because no scenario was running.
pub fn outside_results(findings: &[Finding]) -> Vec<ScenarioResult> {
    let mut out: Vec<ScenarioResult> = vec![];
    for f in findings {
        let Some(place) = f.outside.as_deref() else {
            continue;
        };
        let i = match out.iter().position(|r| r.name == place) {
            Some(i) => i,
            None => {
                out.push(ScenarioResult::new(place, Outcome::Pass, None, ""));
                out.len() - 1
            }
        };
        add_finding(&mut out[i], f);
    }
    out
}

/// A planned scenario before anything is heard of it.
fn crashed(p: &Planned) -> ScenarioResult {
    ScenarioResult {
        known_failures: p.excluded.clone(),
        ..ScenarioResult::new(&p.name, Outcome::Crashed, Some(p.thp), &p.reproduce)
    }
}

/// The outcome of a scenario that never reported its end.
fn unfinished(started: bool, name: &str, end: &End) -> (Outcome, String) {
    match (started, end) {
        (true, End::ScenarioTimeout { name: n }) if n == name => (
            Outcome::Timeout,
            "the guest stopped responding: host-side scenario timeout".to_string(),
        ),
        (true, End::Panicked) => (
            Outcome::Crashed,
            "the kernel panicked during this scenario".to_string(),
        ),
        (true, End::Interrupted) => (
            Outcome::Error,
            "interrupted during this scenario".to_string(),
        ),
        (true, End::RunTimeout) => (
            Outcome::Timeout,
            "the run timeout expired during this scenario".to_string(),
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
    }
}

/// A console finding inside the scenario: a WARNING fails it, anything
/// worse makes it crashed, unless it already ended worse.
fn add_finding(r: &mut ScenarioResult, f: &Finding) {
    r.console_findings.push(f.clone());
    let verdict = if f.kind == FindingKind::Warning {
        Outcome::Fail
    } else {
        Outcome::Crashed
    };
    if matches!(r.outcome, Outcome::Pass | Outcome::Skip | Outcome::Fail) && verdict > r.outcome {
        r.outcome = verdict;
        r.message = Some(format!(
            "kernel {:?} in the console at line {}: {}",
            f.kind,
            f.line,
            f.excerpt.lines().next().unwrap_or("")
        ));
    }
}

/// The known failure (by index) whose `console` text a WARNING mentions;
/// anything worse than a WARNING is never a known failure.
fn known_warning(known: &[KnownFailure], f: &Finding) -> Option<usize> {
    if f.kind != FindingKind::Warning {
        return None;
    }
    known
        .iter()
        .position(|k| k.console.as_deref().is_some_and(|t| f.mentions(t)))
}

/// After the console findings: record the known WARNINGs seen (`seen[k]`
/// per entry), and fail a scenario that ran to its end without one it
/// declares: the entry is stale.
fn known_console(r: &mut ScenarioResult, known: &[KnownFailure], seen: &[usize]) {
    for (k, n) in known.iter().zip(seen) {
        let Some(text) = &k.console else { continue };
        if *n > 0 {
            let s = if *n == 1 { "" } else { "s" };
            r.known_failures.push(format!(
                "{n} console WARNING{s} mentioning `{text}`: {}",
                first_line(&k.because)
            ));
        } else if r.outcome == Outcome::Pass {
            r.outcome = Outcome::Fail;
            r.message = Some(format!(
                "a declared known failure did not occur: no console WARNING mentioned `{text}`; \
                 if the kernel no longer has this problem, remove the entry from the scenario file"
            ));
        }
    }
}

/// Apply the known failures that name a case: a failed case they name
/// passes as a known failure; one that passed fails as an unexpected pass;
/// one the output does not have fails the scenario once it ran to its end.
fn known_cases(r: &mut ScenarioResult, known: &[KnownFailure]) -> usize {
    let mut excused = 0;
    let finished = !matches!(
        r.outcome,
        Outcome::Timeout | Outcome::Crashed | Outcome::Error
    );
    let any_cases = !r.cases.is_empty();
    for k in known {
        let Some(name) = &k.case else { continue };
        match r.cases.iter_mut().find(|c| &c.name == name) {
            Some(c) if c.outcome == Outcome::Fail => {
                c.outcome = Outcome::Pass;
                let diag = c.reason.take().unwrap_or_default();
                c.reason = Some(
                    format!("known failure: {}\n{diag}", k.because)
                        .trim_end()
                        .into(),
                );
                r.known_failures
                    .push(format!("case {name} failed: {}", first_line(&k.because)));
                excused += 1;
            }
            Some(c) if c.outcome == Outcome::Pass => {
                c.outcome = Outcome::Fail;
                c.reason = Some(format!(
                    "unexpected pass: declared a known failure ({}); if the kernel no longer has \
                     this problem, remove the entry from the scenario file",
                    first_line(&k.because)
                ));
            }
            Some(_) => {}
            None if finished && any_cases => {
                r.cases.push(CaseResult {
                    name: name.clone(),
                    outcome: Outcome::Fail,
                    reason: Some(format!(
                        "declared a known failure, but the selftest has no case of this name; \
                         correct or remove the entry ({})",
                        first_line(&k.because)
                    )),
                });
            }
            None => {}
        }
    }
    excused
}

fn first_line(t: &str) -> &str {
    t.lines().next().unwrap_or("").trim()
}

/// For a scenario whose output holds a TAP plan: fill in its cases, apply
/// its known failures ([`known_cases`]), and combine them with the
/// outcome so far. A timeout, crash or error stays as
/// it is. Otherwise any failed case makes it `fail`, else any case never
/// reported makes it `crashed`, else all cases skipped make it `skip`; with
/// none of these the guest's outcome (from the exit status) stands.
fn apply_cases(r: &mut ScenarioResult, known: &[KnownFailure]) {
    if ktap::find_plan(&r.output).is_none() {
        return;
    }
    r.cases = ktap::parse(&r.output)
        .cases
        .into_iter()
        .map(|c| CaseResult {
            name: c.name,
            outcome: c.outcome,
            reason: c.reason,
        })
        .collect();
    let excused = known_cases(r, known);
    if matches!(
        r.outcome,
        Outcome::Timeout | Outcome::Crashed | Outcome::Error
    ) {
        return;
    }
    let total = r.cases.len();
    let failed: Vec<&str> = r
        .cases
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .map(|c| c.name.as_str())
        .collect();
    let missing = r.case_count(Outcome::Crashed);
    if !failed.is_empty() {
        let mut names = failed[..failed.len().min(NAMED_FAILURES)].join(", ");
        if failed.len() > NAMED_FAILURES {
            names.push_str(&format!(" and {} more", failed.len() - NAMED_FAILURES));
        }
        let mut msg = format!("{} of {total} cases failed: {names}", failed.len());
        if missing > 0 {
            msg.push_str(&format!("; {missing} never reported"));
        }
        r.outcome = Outcome::Fail;
        r.message = Some(msg);
    } else if missing > 0 {
        // Why the first of them is missing: where the output ends, which
        // case was running, or the program's bail-out.
        let why = r
            .cases
            .iter()
            .find(|c| c.outcome == Outcome::Crashed)
            .and_then(|c| c.reason.as_deref())
            .and_then(|w| w.lines().next())
            .map(|w| w.strip_prefix("never reported: ").unwrap_or(w))
            .unwrap_or("no result lines");
        let mut msg = format!("{missing} of {total} cases never reported ({why})");
        if let Some(m) = &r.message {
            msg.push_str(&format!("; {m}"));
        }
        r.outcome = Outcome::Crashed;
        r.message = Some(msg);
    } else if total > 0 && r.case_count(Outcome::Skip) == total {
        r.outcome = Outcome::Skip;
        r.message = Some(
            r.cases
                .iter()
                .find_map(|c| c.reason.clone())
                .unwrap_or_else(|| format!("all {total} cases skipped")),
        );
    } else if excused > 0
        && r.outcome == Outcome::Fail
        && r.message.as_deref() == Some(KSFT_FAIL_EXIT)
    {
        // The kselftest harness exits with KSFT_FAIL when any case failed;
        // every failed case was a known failure, so the exit says no more.
        r.outcome = Outcome::Pass;
        r.message = None;
    }
}

/// The guest's message for a selftest that exited with KSFT_FAIL (1).
const KSFT_FAIL_EXIT: &str = "exit status 1";

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
        End::RunTimeout => "the VM was stopped when the run timeout expired".into(),
        End::Interrupted => "the run was interrupted by a signal".into(),
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
                thp: ThpMode::Madvise,
                reproduce: format!("repro {n}"),
                known: vec![],
                excluded: vec![],
            })
            .collect()
    }
    fn start(n: &str) -> Record {
        Record::ScenarioStart {
            name: n.into(),
            thp: ThpMode::Madvise,
        }
    }
    fn end(n: &str, o: Outcome) -> Record {
        Record::ScenarioEnd {
            name: n.into(),
            outcome: o,
            duration_ns: 10,
            checks_ns: 0,
            message: None,
        }
    }

    #[test]
    fn a_check_of_the_whole_run_is_a_result_of_its_own() {
        let check = Record::RunCheck {
            name: "end of run".into(),
            outcome: Outcome::Fail,
            message: "leak: nr_anon_pages is 3, baseline 2 (+1, tolerance 0)".into(),
        };
        let mut a = Assembler::new(&planned(&["a"]));
        a.record(&start("a"));
        a.record(&end("a", Outcome::Pass));
        let got = a.record(&check).cloned().unwrap();
        assert_eq!(
            (got.name.as_str(), got.outcome, got.thp),
            ("end of run", Outcome::Fail, None)
        );
        let r = a.finish(&End::Done, &[]);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].name, "end of run");
        assert!(r[1].message.as_deref().unwrap().contains("+1, tolerance 0"));
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
    fn interrupted_and_run_timeout() {
        let r = assemble(&planned(&["a", "b"]), &[start("a")], &End::Interrupted, &[]);
        assert_eq!(
            (r[0].outcome, r[1].outcome),
            (Outcome::Error, Outcome::Error)
        );
        assert!(r[0]
            .message
            .as_ref()
            .unwrap()
            .contains("interrupted during"));
        assert!(r[1]
            .message
            .as_ref()
            .unwrap()
            .contains("not run: the run was interrupted"));
        let r = assemble(&planned(&["a"]), &[start("a")], &End::RunTimeout, &[]);
        assert_eq!(r[0].outcome, Outcome::Timeout);
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
                outside: None,
                excerpt: "WARNING: x".into(),
                before: String::new(),
            },
            Finding {
                kind: FindingKind::Oops,
                line: 9,
                scenario: Some("b".into()),
                outside: None,
                excerpt: "Oops: y".into(),
                before: String::new(),
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

    fn ktap_records(name: &str, file: &str) -> Vec<Record> {
        let path = format!("{}/tests/data/ktap/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| Record::Output {
                scenario: name.into(),
                line: l.into(),
            })
            .collect()
    }

    fn selftest(file: &str, guest: Option<(Outcome, &str)>, e: &End) -> ScenarioResult {
        let mut recs = vec![start("k")];
        recs.extend(ktap_records("k", file));
        if let Some((o, m)) = guest {
            recs.push(Record::ScenarioEnd {
                name: "k".into(),
                outcome: o,
                duration_ns: 10,
                checks_ns: 0,
                message: Some(m.to_string()).filter(|m| !m.is_empty()),
            });
        }
        assemble(&planned(&["k"]), &recs, e, &[]).remove(0)
    }

    fn text_records(name: &str, text: &str) -> Vec<Record> {
        text.lines()
            .map(|l| Record::Output {
                scenario: name.into(),
                line: l.into(),
            })
            .collect()
    }

    #[test]
    fn selftest_clean_run_passes_with_cases() {
        let r = selftest(
            "hmm-tests-6.12-madvise.txt",
            Some((Outcome::Pass, "")),
            &End::Done,
        );
        assert_eq!(r.outcome, Outcome::Pass);
        assert_eq!(r.message, None);
        assert_eq!(r.cases.len(), 58);
        assert_eq!(
            (r.case_count(Outcome::Pass), r.case_count(Outcome::Skip)),
            (26, 32)
        );
        assert_eq!(r.cases[0].name, "hmm.hmm_device_private.open_close");
        assert_eq!(r.output.len(), 240, "the raw output is kept");
    }

    #[test]
    fn selftest_failed_cases_are_named() {
        let guest = Some((Outcome::Fail, "exit status 1"));
        let r = selftest("hmm-tests-6.12-always.txt", guest, &End::Done);
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(
            r.message.as_deref(),
            Some(
                "3 of 58 cases failed: hmm.hmm_device_private.exclusive, \
                 hmm.hmm_device_private.exclusive_mprotect, hmm.hmm_device_private.exclusive_cow"
            )
        );
        let c = &r.cases[21];
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c
            .reason
            .as_deref()
            .unwrap()
            .contains("exclusive:Expected ret (-16) == 0 (0)"));
        // Even if the exit status said otherwise, a failed case fails it.
        let r = selftest(
            "hmm-tests-6.12-always.txt",
            Some((Outcome::Pass, "")),
            &End::Done,
        );
        assert_eq!(r.outcome, Outcome::Fail);
    }

    #[test]
    fn selftest_truncated_output_is_a_crash() {
        let guest = Some((Outcome::Fail, "killed by SIGKILL"));
        let r = selftest("hmm-tests-truncated.txt", guest, &End::Done);
        assert_eq!(r.outcome, Outcome::Crashed);
        assert_eq!(
            r.message.as_deref(),
            Some(
                "40 of 58 cases never reported (the output ends after case 18); killed by SIGKILL"
            )
        );
        assert_eq!(
            (
                r.case_count(Outcome::Pass),
                r.case_count(Outcome::Skip),
                r.case_count(Outcome::Crashed)
            ),
            (17, 1, 40)
        );
        // The guest exiting 0 does not make a truncated log a pass.
        let r = selftest(
            "hmm-tests-truncated.txt",
            Some((Outcome::Pass, "")),
            &End::Done,
        );
        assert_eq!(r.outcome, Outcome::Crashed);
    }

    #[test]
    fn selftest_keeps_the_hosts_verdict() {
        let e = End::KernelCrash {
            line: "BUG: kernel NULL pointer dereference".into(),
        };
        let r = selftest("hmm-tests-truncated.txt", None, &e);
        assert_eq!(r.outcome, Outcome::Crashed);
        assert!(r.message.as_deref().unwrap().contains("NULL pointer"));
        assert_eq!(r.cases.len(), 58);
        let e = End::ScenarioTimeout { name: "k".into() };
        let r = selftest("hmm-tests-6.12-always.txt", None, &e);
        assert_eq!(r.outcome, Outcome::Timeout, "not downgraded to fail");
        assert_eq!(r.case_count(Outcome::Fail), 3);
    }

    #[test]
    fn selftest_skips_failures_with_missing_cases_and_plain_output() {
        let run = |text: &str, o: Outcome| {
            let mut recs = vec![start("k")];
            recs.extend(text_records("k", text));
            recs.push(end("k", o));
            assemble(&planned(&["k"]), &recs, &End::Done, &[]).remove(0)
        };
        let r = run(
            "1..2\nok 1 a # SKIP no device\nok 2 b # SKIP other",
            Outcome::Pass,
        );
        assert_eq!(
            (r.outcome, r.message.as_deref()),
            (Outcome::Skip, Some("no device"))
        );
        let r = run("1..2\nok 1 a # SKIP\nok 2 b # SKIP", Outcome::Pass);
        assert_eq!(r.message.as_deref(), Some("all 2 cases skipped"));
        let r = run("1..3\nnot ok 1 a\nok 2 b", Outcome::Fail);
        assert_eq!(
            (r.outcome, r.message.as_deref()),
            (
                Outcome::Fail,
                Some("1 of 3 cases failed: a; 1 never reported")
            )
        );
        // Passes and skips: the guest's outcome stands.
        let r = run("1..2\nok 1 a\nok 2 b # SKIP x", Outcome::Fail);
        assert_eq!(r.outcome, Outcome::Fail);
        // No plan: not a selftest's output, no cases.
        let r = run("ok 1 looks like TAP", Outcome::Pass);
        assert_eq!((r.outcome, r.cases.len()), (Outcome::Pass, 0));
        let names: Vec<String> = (1..=12).map(|i| format!("not ok {i} t{i}")).collect();
        let r = run(&format!("1..12\n{}", names.join("\n")), Outcome::Fail);
        assert!(
            r.message
                .as_deref()
                .unwrap()
                .ends_with("t9, t10 and 2 more"),
            "{:?}",
            r.message
        );
    }

    #[test]
    fn migrate_throughput() {
        let step = Record::Step {
            scenario: "a".into(),
            index: 0,
            op: hmmlab_proto::scenario::Op::MigrateToDevice,
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

    #[test]
    fn findings_outside_scenarios_are_results_of_their_own() {
        let f = |kind, line, outside: &str| Finding {
            kind,
            line,
            scenario: None,
            outside: Some(outside.into()),
            excerpt: format!("{kind:?} at {line}"),
            before: String::new(),
        };
        let r = outside_results(&[
            f(FindingKind::Warning, 3, "boot"),
            f(FindingKind::Warning, 9, "between a and b"),
            f(FindingKind::Oops, 12, "between a and b"),
            f(FindingKind::Warning, 40, "shutdown"),
        ]);
        let got: Vec<(&str, Outcome, usize)> = r
            .iter()
            .map(|r| (r.name.as_str(), r.outcome, r.console_findings.len()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("boot", Outcome::Fail, 1),
                ("between a and b", Outcome::Crashed, 2),
                ("shutdown", Outcome::Fail, 1)
            ]
        );
        assert!(
            r[0].message.as_deref().unwrap().contains("line 3"),
            "{:?}",
            r[0]
        );
        assert_eq!(r[0].thp, None);
    }

    fn known(case: Option<&str>, console: Option<&str>) -> KnownFailure {
        KnownFailure {
            case: case.map(Into::into),
            console: console.map(Into::into),
            when: None,
            thp: None,
            because: "lib/test_hmm.c: one chunk\nmore".into(),
        }
    }

    /// A selftest run `k` with `text` as its output, the guest's end, and
    /// the console findings, against the known failures `kf`.
    fn known_run(
        text: &str,
        guest: (Outcome, &str),
        kf: Vec<KnownFailure>,
        findings: &[Finding],
    ) -> ScenarioResult {
        let mut p = planned(&["k"]);
        p[0].known = kf;
        let mut recs = vec![start("k")];
        recs.extend(text_records("k", text));
        recs.push(Record::ScenarioEnd {
            name: "k".into(),
            outcome: guest.0,
            duration_ns: 10,
            checks_ns: 0,
            message: Some(guest.1.to_string()).filter(|m| !m.is_empty()),
        });
        assemble(&p, &recs, &End::Done, findings).remove(0)
    }

    #[test]
    fn the_time_of_the_checks_after_a_scenario_is_kept() {
        let recs = vec![
            start("a"),
            Record::ScenarioEnd {
                name: "a".into(),
                outcome: Outcome::Pass,
                duration_ns: 10,
                checks_ns: 7,
                message: None,
            },
        ];
        let r = assemble(&planned(&["a"]), &recs, &End::Done, &[]).remove(0);
        assert_eq!((r.duration_ns, r.checks_ns), (10, 7));
    }

    #[test]
    fn exclusions_are_listed_with_the_result_whatever_its_outcome() {
        for (outcome, end) in [(Outcome::Pass, true), (Outcome::Crashed, false)] {
            let mut p = planned(&["k"]);
            p[0].excluded = vec!["variant v not run (-V v): why".into()];
            let mut recs = vec![start("k")];
            if end {
                recs.push(Record::ScenarioEnd {
                    name: "k".into(),
                    outcome,
                    duration_ns: 10,
                    checks_ns: 0,
                    message: None,
                });
            }
            let r = assemble(&p, &recs, &End::Done, &[]).remove(0);
            assert_eq!(r.known_failures, vec!["variant v not run (-V v): why"]);
        }
    }

    fn warning(before: &str, first: &str) -> Finding {
        Finding {
            kind: FindingKind::Warning,
            line: 3,
            scenario: Some("k".into()),
            outside: None,
            excerpt: format!("{first}\nCall Trace:\n pagemap_range"),
            before: before.into(),
        }
    }

    #[test]
    fn a_known_failed_case_passes_and_is_listed() {
        let out = "1..2\nok 1 a\n# t.c:9:b:Expected ret (-12) == 0 (0)\nnot ok 2 b";
        let r = known_run(
            out,
            (Outcome::Fail, "exit status 1"),
            vec![known(Some("b"), None)],
            &[],
        );
        assert_eq!((r.outcome, r.message.as_deref()), (Outcome::Pass, None));
        let reason = r.cases[1].reason.as_deref().unwrap();
        assert!(
            reason.starts_with("known failure: lib/test_hmm.c: one chunk"),
            "{reason}"
        );
        assert!(
            reason.contains("Expected ret (-12)"),
            "the diagnostics are kept: {reason}"
        );
        assert_eq!(
            r.known_failures,
            vec!["case b failed: lib/test_hmm.c: one chunk"]
        );
        // Another failure next to it still fails the scenario.
        let out = "1..2\nnot ok 1 a\nnot ok 2 b";
        let r = known_run(
            out,
            (Outcome::Fail, "exit status 1"),
            vec![known(Some("b"), None)],
            &[],
        );
        assert_eq!(
            (r.outcome, r.message.as_deref()),
            (Outcome::Fail, Some("1 of 2 cases failed: a"))
        );
        // An exit status other than KSFT_FAIL is not explained by it.
        let out = "1..2\nok 1 a\nnot ok 2 b";
        let r = known_run(
            out,
            (Outcome::Fail, "ended with signal 11"),
            vec![known(Some("b"), None)],
            &[],
        );
        assert_eq!(r.outcome, Outcome::Fail);
    }

    #[test]
    fn a_known_failure_that_does_not_occur_fails() {
        let r = known_run(
            "1..2\nok 1 a\nok 2 b",
            (Outcome::Pass, ""),
            vec![known(Some("b"), None)],
            &[],
        );
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.cases[1]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("unexpected pass"));
        // A case the selftest does not have.
        let r = known_run(
            "1..1\nok 1 a",
            (Outcome::Pass, ""),
            vec![known(Some("zz"), None)],
            &[],
        );
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.message.as_deref().unwrap().contains("zz"),
            "{:?}",
            r.message
        );
        // A console text no WARNING mentioned.
        let kf = vec![known(None, Some("Conflicting mapping"))];
        let r = known_run("1..1\nok 1 a", (Outcome::Pass, ""), kf, &[]);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.message.as_deref().unwrap().contains("did not occur"));
        assert!(r.known_failures.is_empty());
    }

    #[test]
    fn a_known_warning_is_listed_and_others_still_fail() {
        let kf = vec![known(None, Some("Conflicting mapping in same section"))];
        let ours = warning(
            "Conflicting mapping in same section",
            "WARNING: mm/memremap.c:158 at 0xffffffff8113169d, CPU#0: hmm-tests/138",
        );
        let r = known_run(
            "1..1\nok 1 a",
            (Outcome::Pass, ""),
            kf.clone(),
            &[ours.clone(), ours.clone()],
        );
        assert_eq!(r.outcome, Outcome::Pass);
        assert!(r.console_findings.is_empty());
        assert_eq!(
            r.known_failures,
            vec!["2 console WARNINGs mentioning `Conflicting mapping in same section`: lib/test_hmm.c: one chunk"]
        );
        // The text in the call trace is not enough; another WARNING fails.
        let other = Finding {
            excerpt: "WARNING: mm/migrate.c:1 at x\nConflicting mapping in same section".into(),
            ..warning("", "")
        };
        let r = known_run(
            "1..1\nok 1 a",
            (Outcome::Pass, ""),
            kf.clone(),
            &[ours.clone(), other],
        );
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(r.console_findings.len(), 1);
        // Never anything worse than a WARNING.
        let oops = Finding {
            kind: FindingKind::Oops,
            ..ours.clone()
        };
        let r = known_run("1..1\nok 1 a", (Outcome::Pass, ""), kf, &[ours, oops]);
        assert_eq!(r.outcome, Outcome::Crashed);
    }
}
