//! `cargo xtask mutate --run`: every pending mutant boots its own kernel
//! and the scenarios say whether they notice it.
//!
//! A mutant costs a link, not a build: its object goes into a copy of the
//! cached build's objects and kbuild relinks the image there, checked to
//! be that mutant's kernel (`kernel::relink`); the guest must then report
//! its banner, as in every run.
//!
//! Before any mutant, the unmutated object is linked and run the same way:
//! every scenario must pass on it, or a failure would mean nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hmmlab_harness::report::{RunReport, RunStatus, ScenarioResult};
use hmmlab_proto::Outcome;
use serde::{Deserialize, Serialize};

use super::check::Verdict;
use crate::cli::ThpChoice;
use crate::kernel::relink::{Linked, Workspace, BZIMAGE};
use crate::kernel::Kernel;

/// The mutants' workspace: a copy of `k`'s objects in `work/obj`.
pub fn workspace(k: &Kernel, work: &Path) -> anyhow::Result<Workspace> {
    Workspace::create(k, &work.join("obj"), &work.join("link.log"))
}

/// The kernel as a run sees it: `k` with the workspace's image and the
/// banner just checked.
pub fn kernel(k: &Kernel, ws: &Workspace, label: &str, linked: &Linked) -> Kernel {
    let mut m = k.clone();
    m.key = format!("{}+{}", k.key, short(label));
    m.patches = vec![label.to_string()];
    m.obj_dir = ws.obj.clone();
    m.bzimage = ws.obj.join(BZIMAGE);
    m.banner = linked.check.banner.clone();
    m.image_check = linked.check.clone();
    m.cached = false;
    m
}

pub use crate::kernel::relink::{short, tag};

/// A scenario that failed on a mutant's kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kill {
    pub scenario: String,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where a booted mutant's time went, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Its object, compiled again.
    pub compile: f64,
    /// make: archive, link, image; and the image check.
    pub link: f64,
    /// Boot, scenarios and report (the run).
    pub run: f64,
    pub total: f64,
}

/// The verdict of a run on a mutant's kernel, and the failures that make
/// it. Err when the run says nothing about the mutant (it did not end:
/// interrupted, or the infrastructure failed, or nothing ran): the reason.
pub fn outcome(report: &RunReport) -> std::result::Result<(Verdict, Vec<Kill>), String> {
    verdict_of(report.status, report.error.as_deref(), &report.scenarios)
}

fn verdict_of(
    status: RunStatus,
    error: Option<&str>,
    scenarios: &[ScenarioResult],
) -> std::result::Result<(Verdict, Vec<Kill>), String> {
    match status {
        RunStatus::Finished => {}
        RunStatus::Interrupted => return Err("interrupted".into()),
        _ => {
            return Err(error
                .map(str::to_string)
                .unwrap_or_else(|| format!("the run ended {}", status.as_str())))
        }
    }
    let failed: Vec<Kill> = scenarios
        .iter()
        .filter(|s| s.outcome.is_failure())
        .map(|s| Kill {
            scenario: s.name.clone(),
            outcome: s.outcome.as_str().to_string(),
            message: s
                .message
                .as_deref()
                .map(|m| m.lines().next().unwrap_or("").to_string()),
        })
        .collect();
    let has = |o: Outcome| scenarios.iter().any(|s| s.outcome == o);
    if failed.is_empty() {
        if !has(Outcome::Pass) {
            return Err("no scenario ran".into());
        }
        // Stopped at a failure that is none here: what was not run
        // survived nothing.
        if let Some(s) = scenarios.iter().find(|s| {
            s.outcome == Outcome::Skip
                && s.message
                    .as_deref()
                    .is_some_and(|m| m.contains(hmmlab_proto::plan::STOPPED))
        }) {
            return Err(format!(
                "the guest stopped at a failure no scenario has ({}: {}): not every scenario ran",
                s.name,
                s.message.as_deref().unwrap_or("")
            ));
        }
        return Ok((Verdict::Survived, failed));
    }
    let verdict = if has(Outcome::Crashed) {
        Verdict::Crashed
    } else if has(Outcome::Timeout) {
        Verdict::Timeout
    } else {
        Verdict::Killed
    };
    Ok((verdict, failed))
}

/// The per-scenario limit for mutants: 3 times the slowest scenario of the
/// unmutated run, at least 10 s, at most the machine's own limit.
pub fn scenario_timeout(baseline: &RunReport, machine_limit: f64) -> f64 {
    limit_after(&baseline.scenarios, machine_limit)
}

/// Each instance's limit for mutants: 3 times its own time in the
/// unmutated run, at least 10 s (a scenario with a limit of its own, such
/// as hmm-tests' 120 s, gets this one instead: a mutant that makes it
/// three times slower is caught without waiting for the rest).
pub fn instance_limits(baseline: &[ScenarioResult]) -> std::collections::BTreeMap<String, f64> {
    baseline
        .iter()
        .map(|s| (s.name.clone(), (3.0 * s.duration_ns as f64 / 1e9).max(10.0)))
        .collect()
}

fn limit_after(scenarios: &[ScenarioResult], machine_limit: f64) -> f64 {
    let slowest = scenarios
        .iter()
        .map(|s| s.duration_ns as f64 / 1e9)
        .fold(0.0, f64::max);
    (3.0 * slowest).max(10.0).min(machine_limit)
}

/// What a mutant's kernel runs: scenario names (empty: all) and THP modes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub scenarios: Vec<String>,
    pub thp: Vec<ThpChoice>,
}

impl Selected {
    /// `-s` as given (every scenario when none), both THP modes.
    pub fn asked(a: &crate::cli::MutateArgs) -> Selected {
        Selected {
            scenarios: a.scenarios.clone(),
            thp: vec![ThpChoice::Madvise, ThpChoice::Always],
        }
    }

    /// Only the scenarios whose instances (`name@mode[@device]`) ran the
    /// mutant's lines, among `known` (the scenarios the run may use), in
    /// the THP modes those instances ran in. None when no instance did:
    /// then everything asked runs.
    pub fn covering(instances: &BTreeSet<String>, known: &[String]) -> Option<Selected> {
        let mut names = BTreeSet::new();
        let mut modes = BTreeSet::new();
        for i in instances {
            let mut parts = i.split('@');
            let name = parts.next().unwrap_or_default();
            if !known.iter().any(|k| k == name) {
                continue;
            }
            names.insert(name.to_string());
            if let Some(mode) = parts.next().and_then(thp_choice) {
                modes.insert(mode);
            }
        }
        if names.is_empty() {
            return None;
        }
        let thp = if modes.is_empty() {
            vec![ThpChoice::Madvise, ThpChoice::Always]
        } else {
            modes.into_iter().collect()
        };
        Some(Selected {
            scenarios: names.into_iter().collect(),
            thp,
        })
    }
}

impl Selected {
    /// Also the scenarios `more`, in both THP modes a mutant runs in.
    pub fn with(mut self, more: &[String]) -> Selected {
        if more.is_empty() {
            return self;
        }
        for m in more {
            if !self.scenarios.contains(m) {
                self.scenarios.push(m.clone());
            }
        }
        self.scenarios.sort();
        for t in [ThpChoice::Madvise, ThpChoice::Always] {
            if !self.thp.contains(&t) {
                self.thp.push(t);
            }
        }
        self
    }
}

/// The scenarios among `known` that no line of `cov` names: newer than the
/// coverage file, so nothing says which mutants they reach.
pub fn uncharted(cov: &crate::coverage::model::Coverage, known: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    for fc in cov.files.values() {
        for l in fc.lines.values() {
            for i in &l.scenarios {
                seen.insert(i.split('@').next().unwrap_or_default().to_string());
            }
        }
    }
    known
        .iter()
        .filter(|k| !seen.contains(k.as_str()))
        .cloned()
        .collect()
}

fn thp_choice(s: &str) -> Option<ThpChoice> {
    match s {
        "madvise" => Some(ThpChoice::Madvise),
        "always" => Some(ThpChoice::Always),
        "never" => Some(ThpChoice::Never),
        _ => None,
    }
}

/// The arguments of a run on mutants' kernels: `sel`'s scenarios and THP
/// modes, device-private memory.
pub fn run_args(
    a: &crate::cli::MutateArgs,
    scenario_dir: &Path,
    results: PathBuf,
    scenario_timeout: Option<f64>,
    sel: &Selected,
) -> crate::cli::RunArgs {
    crate::cli::RunArgs {
        kernel: crate::cli::KernelArgs {
            kernel: a.kernel.clone(),
            patches: vec![],
            series: None,
            fragments: a.fragments.clone(),
            config_base: Default::default(),
            jobs: None,
        },
        scenarios: sel.scenarios.clone(),
        scenario_dir: scenario_dir.to_path_buf(),
        scenario_files: vec![],
        thp: sel.thp.clone(),
        device: a.device.clone(),
        accel: crate::cli::AccelChoice::Auto,
        machine: "x86_64".into(),
        boot_timeout: None,
        scenario_timeout,
        instance_limits: Default::default(),
        results_dir: results,
        append: vec![],
        cell: None,
        matrix: PathBuf::from("matrix.toml"),
        repeat: 1,
        smp: None,
        run_timeout: 1800.0,
        panic_on_warn: false,
        fail_on_skip: false,
        // One failure kills a mutant; the rest would only cost time.
        stop_at_failure: true,
        coverage: Default::default(),
    }
}

/// A file name for a mutant id.
pub fn file_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Copy the scenario files (`*.toml` of `from`, not its subdirectories)
/// into `to`, emptied first: every boot of a `--run` reads this copy, so
/// the scenarios that pass unmutated are the ones that score each mutant,
/// whatever happens to the repository's meanwhile, and the results keep
/// the scenarios they were scored with.
pub fn snapshot_scenarios(from: &Path, to: &Path) -> anyhow::Result<usize> {
    use anyhow::Context;
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("emptying {}", to.display()))?;
    }
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut n = 0;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let p = e?.path();
        if p.is_file() && p.extension().is_some_and(|x| x == "toml") {
            std::fs::copy(&p, to.join(p.file_name().unwrap()))
                .with_context(|| format!("copying {}", p.display()))?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mutate_args(argv: &[&str]) -> crate::cli::MutateArgs {
        use clap::Parser;
        let mut all = vec!["cargo xtask", "mutate"];
        all.extend_from_slice(argv);
        match crate::cli::Cli::try_parse_from(all).unwrap().task {
            crate::cli::Task::Mutate(a) => *a,
            t => panic!("{t:?}"),
        }
    }

    /// Every boot runs the scenarios on the kinds of device memory asked
    /// for: device-private alone unless `--device` says otherwise.
    #[test]
    fn boots_run_on_the_device_kinds_asked_for() {
        use crate::cli::DeviceChoice::{Coherent, Private};
        let run = |argv: &[&str]| {
            let a = mutate_args(argv);
            let sel = Selected::asked(&a);
            run_args(&a, Path::new("s"), PathBuf::from("r"), None, &sel).device
        };
        assert_eq!(run(&["--run"]), [Private]);
        assert_eq!(run(&["--run", "--device", "coherent"]), [Coherent]);
        assert_eq!(
            run(&["--run", "--device", "private,coherent"]),
            [Private, Coherent]
        );
    }

    /// `--scenario-dir` names the directory whose top-level files a run
    /// copies and boots with (scenarios/ by default); the copy holds them
    /// alone, not its subdirectories, nor what an earlier copy held.
    #[test]
    fn a_run_copies_the_top_level_of_the_scenario_directory_it_is_given() {
        assert_eq!(mutate_args(&["--run"]).scenario_dir, Path::new("scenarios"));
        let a = mutate_args(&["--run", "--scenario-dir", "scenarios/fault"]);
        assert_eq!(a.scenario_dir, Path::new("scenarios/fault"));
        let tmp = tempfile::tempdir().unwrap();
        let (from, to) = (tmp.path().join("from"), tmp.path().join("to"));
        std::fs::create_dir_all(from.join("sub")).unwrap();
        for f in ["a.toml", "b.toml", "README.md", "sub/c.toml"] {
            std::fs::write(from.join(f), "x").unwrap();
        }
        std::fs::create_dir_all(&to).unwrap();
        std::fs::write(to.join("stale.toml"), "x").unwrap();
        assert_eq!(snapshot_scenarios(&from, &to).unwrap(), 2);
        let mut names: Vec<String> = std::fs::read_dir(&to)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a.toml", "b.toml"]);
        let missing = snapshot_scenarios(&tmp.path().join("nowhere"), &to).unwrap_err();
        assert!(format!("{missing:#}").contains("nowhere"), "{missing:#}");
    }

    fn result(name: &str, o: Outcome, secs: f64, message: Option<&str>) -> ScenarioResult {
        ScenarioResult {
            duration_ns: (secs * 1e9) as u64,
            message: message.map(str::to_string),
            ..ScenarioResult::new(name, o, None, "cargo xtask run-scenarios -s x")
        }
    }

    #[test]
    fn a_failure_kills_a_crash_or_timeout_says_so_and_a_run_without_end_is_no_verdict() {
        let pass = result("a@madvise", Outcome::Pass, 1.0, None);
        let fail = result(
            "b@madvise",
            Outcome::Fail,
            1.0,
            Some("step 2: 3 pages\nmore"),
        );
        let v = |s: &[ScenarioResult]| verdict_of(RunStatus::Finished, None, s);
        assert_eq!(
            v(std::slice::from_ref(&pass)).unwrap(),
            (Verdict::Survived, vec![])
        );
        let (verdict, kills) = v(&[pass.clone(), fail.clone()]).unwrap();
        assert_eq!(verdict, Verdict::Killed);
        assert_eq!(
            kills,
            vec![Kill {
                scenario: "b@madvise".into(),
                outcome: "fail".into(),
                message: Some("step 2: 3 pages".into()),
            }]
        );
        let timeout = result("c@always", Outcome::Timeout, 10.0, None);
        let crashed = result("d@always", Outcome::Crashed, 1.0, None);
        assert_eq!(
            v(&[fail.clone(), timeout.clone()]).unwrap().0,
            Verdict::Timeout
        );
        assert_eq!(v(&[timeout, crashed, fail]).unwrap().0, Verdict::Crashed);
        // Skips only: nothing said about the mutant.
        let skip = result("e@never", Outcome::Skip, 0.0, None);
        assert!(v(&[skip]).is_err());
        let e = verdict_of(
            RunStatus::InfraError,
            Some("the wrong kernel booted"),
            &[pass],
        );
        assert_eq!(e.unwrap_err(), "the wrong kernel booted");
        assert!(verdict_of(RunStatus::Interrupted, None, &[]).is_err());
    }

    /// The guest stopped after a scenario it thought failed, which the host
    /// then passed (a known failure of a selftest): the scenarios after it
    /// never ran, so the mutant did not survive them.
    #[test]
    fn a_run_stopped_at_a_failure_the_host_excused_is_no_verdict() {
        let pass = result("hmm-tests@madvise", Outcome::Pass, 7.0, None);
        let message = format!(
            "not run: hmm-tests@madvise failed first, {}",
            hmmlab_proto::plan::STOPPED
        );
        let stopped = result("zero-page@never", Outcome::Skip, 0.0, Some(&message));
        let e =
            verdict_of(RunStatus::Finished, None, &[pass.clone(), stopped.clone()]).unwrap_err();
        assert!(
            e.contains("not every scenario ran") && e.contains("zero-page@never"),
            "{e}"
        );
        // With a real failure first, the stop is what it says: killed.
        let fail = result("empty-anon@madvise", Outcome::Fail, 1.0, Some("step 1"));
        assert_eq!(
            verdict_of(RunStatus::Finished, None, &[pass, fail, stopped])
                .unwrap()
                .0,
            Verdict::Killed
        );
    }

    #[test]
    fn the_limit_is_three_times_the_slowest_unmutated_scenario_within_bounds() {
        let r = |s| result("a", Outcome::Pass, s, None);
        assert_eq!(limit_after(&[r(1.0), r(2.0)], 60.0), 10.0);
        assert_eq!(limit_after(&[r(1.0), r(7.0)], 60.0), 21.0);
        assert_eq!(limit_after(&[r(30.0)], 60.0), 60.0);
    }

    #[test]
    fn each_instance_gets_three_times_its_unmutated_time_and_ten_seconds_at_least() {
        let l = instance_limits(&[
            result("hmm-tests@madvise", Outcome::Pass, 12.0, None),
            result("empty-anon@always", Outcome::Pass, 0.2, None),
        ]);
        assert_eq!(l["hmm-tests@madvise"], 36.0);
        assert_eq!(l["empty-anon@always"], 10.0);
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn a_mutant_runs_the_scenarios_that_ran_its_lines_in_their_modes() {
        let known: Vec<String> = ["empty-anon", "thp-split", "zero-page"]
            .map(String::from)
            .to_vec();
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let s = Selected::covering(
            &set(&[
                "thp-split@madvise",
                "empty-anon@always@coherent",
                "empty-anon@madvise",
                "gone@madvise",
            ]),
            &known,
        )
        .unwrap();
        assert_eq!(s.scenarios, ["empty-anon", "thp-split"]);
        assert_eq!(s.thp, [ThpChoice::Always, ThpChoice::Madvise]);
        // Only unknown scenarios ran it: everything asked runs instead.
        assert_eq!(Selected::covering(&set(&["gone@never"]), &known), None);
        assert_eq!(Selected::covering(&set(&[]), &known), None);
    }

    #[test]
    fn scenarios_newer_than_the_coverage_file_run_on_every_mutant() {
        use crate::coverage::model::{Coverage, FileCoverage, Line};
        let mut line = Line::default();
        line.scenarios.extend([
            "thp-split@madvise".to_string(),
            "zero-page@always".to_string(),
        ]);
        let mut fc = FileCoverage::default();
        fc.lines.insert(12, line);
        let cov = Coverage {
            files: [("mm/m.c".to_string(), fc)].into(),
        };
        let known: Vec<String> = ["device-write-thp", "thp-split", "zero-page"]
            .map(String::from)
            .to_vec();
        let new = uncharted(&cov, &known);
        assert_eq!(new, ["device-write-thp"]);
        let s = Selected {
            scenarios: vec!["zero-page".into()],
            thp: vec![ThpChoice::Always],
        }
        .with(&new);
        assert_eq!(s.scenarios, ["device-write-thp", "zero-page"]);
        assert_eq!(s.thp, [ThpChoice::Always, ThpChoice::Madvise]);
        let same = Selected {
            scenarios: vec!["zero-page".into()],
            thp: vec![ThpChoice::Always],
        };
        assert_eq!(same.clone().with(&[]), same);
    }

    #[test]
    fn ids_become_file_names_and_tags_fit_the_banner() {
        assert_eq!(
            file_name("mm/migrate_device.c:f:66:zero-const:0"),
            "mm_migrate_device.c_f_66_zero-const_0"
        );
        let t = tag("mutant mm/migrate_device.c:f:66:zero-const:0");
        assert_eq!(t.len(), "hmmlab-".len() + 12);
        assert_ne!(t, tag("mutant mm/migrate_device.c:f:66:zero-const:1"));
    }
}
