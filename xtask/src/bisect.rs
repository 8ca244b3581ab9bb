//! `cargo xtask bisect`: `git bisect run` over a private clone of the
//! developer's tree (`git clone --shared`: their checkout, refs and bisect
//! state are never touched). Each step builds the clone's HEAD (ccache keeps
//! steps fast: the clone's objects are laid out like every tree hmmlab owns)
//! and runs the scenario several times, to tell flaky from broken.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hmmlab_harness::exit;
use hmmlab_harness::report::{self, Verdict};
use hmmlab_proto::Outcome;

use crate::cli::{BisectArgs, BisectStepArgs, RunArgs, StepOptions};
use crate::fail::bad_input;
use crate::kernel::source::Source;
use crate::shell::Cmd;

/// git bisect run: 125 skips a commit, 128 or more aborts the bisection.
const SKIP: i32 = 125;
const ABORT: i32 = 128;

pub fn bisect(a: &BisectArgs) -> Result<i32> {
    let Source::Path(dir) = Source::parse_tree(&a.kernel)? else {
        return Err(bad_input(format!(
            "--kernel {}: bisect needs a git tree, given as path:DIR",
            a.kernel
        )));
    };
    let d = dir.to_string_lossy().to_string();
    // Resolved in the tree itself: a branch of the tree is only a remote
    // branch in the clone.
    let [good, bad] = [&a.good, &a.bad].map(|r| {
        crate::kernel::source::commit_of(&dir, r).ok_or_else(|| {
            bad_input(format!(
                "{r} is not a commit of {d}; give a commit, tag or branch of that tree"
            ))
        })
    });
    let (good, bad) = (good?, bad?);
    let all = hmmlab_harness::scenario::load_dir(&a.step.scenario_dir)?;
    hmmlab_harness::scenario::select(all, std::slice::from_ref(&a.scenario)).map_err(bad_input)?;

    let id = format!("bisect-{}", crate::run::new_run_id());
    let results = crate::paths::absolute(&a.step.results_dir);
    let out = hmmlab_harness::report::write::create_run_dir(&results, &id)?;
    // The clone keeps the source directory's name: compile commands (and so
    // ccache entries) match those of other builds of the same tree.
    let work = crate::paths::cache_root().join("bisect").join(&id);
    let name = dir.file_name().context("the tree has no directory name")?;
    let clone = work.join(name);
    std::fs::create_dir_all(&work)?;
    let log = out.join("bisect.log");
    let c = clone.to_string_lossy().to_string();
    eprintln!("bisect: private clone of {d} in {c}");
    let result = run_bisection(a, &dir, &good, &bad, &clone, &out, &log);
    let _ = std::fs::remove_dir_all(&work);
    // The steps' builds were of the clone, whose objects went with it.
    crate::cache::forget_builds_of(&crate::paths::cache_root(), &work);
    let (first, subject) =
        result.with_context(|| format!("bisecting {d}; log: {}", log.display()))?;
    let summary = serde_json::json!({
        "tree": d, "good": a.good, "bad": a.bad, "scenario": a.scenario, "runs_per_step": a.step.runs,
        "first_bad_commit": first, "subject": subject,
    });
    hmmlab_harness::report::write::write_atomic(
        &out.join("bisect.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    println!("first bad commit: {first} {subject}");
    println!("steps and logs: {}", out.display());
    Ok(exit::OK)
}

/// Clone `dir` at `bad` into `clone`, let `git bisect run` call
/// `bisect-step` on each commit; the first bad commit and its subject.
fn run_bisection(
    a: &BisectArgs,
    dir: &Path,
    good: &str,
    bad: &str,
    clone: &Path,
    out: &Path,
    log: &Path,
) -> Result<(String, String)> {
    let c = clone.to_string_lossy().to_string();
    crate::kernel::source::private_clone(dir, bad, clone, log)?;
    Cmd::new(&["git", "-C", &c, "bisect", "start", bad, good]).run_logged(
        log,
        "git bisect start",
        |_| None,
    )?;
    let exe = std::env::current_exe()?;
    let mut argv: Vec<String> = vec![
        "git".into(),
        "-C".into(),
        c.clone(),
        "bisect".into(),
        "run".into(),
        exe.to_string_lossy().into(),
        "bisect-step".into(),
        "--tree".into(),
        c.clone(),
        "-s".into(),
        a.scenario.clone(),
    ];
    argv.extend(step_argv(&a.step, out));
    Cmd::new(&argv).run_logged(log, "git bisect run", |l| {
        l.strip_prefix("bisect: ").map(str::to_string)
    })?;
    let text = std::fs::read_to_string(log)?;
    let first = text
        .lines()
        .find_map(|l| l.strip_suffix(" is the first bad commit"))
        .map(|s| s.trim().to_string())
        .context("git bisect did not name a first bad commit (see bisect.log)")?;
    let subject = Cmd::new(&["git", "-C", &c, "show", "-s", "--format=%s", &first])
        .output()?
        .trim()
        .to_string();
    Ok((first, subject))
}

fn step_argv(o: &StepOptions, out: &Path) -> Vec<String> {
    let mut v = vec![
        "--runs".into(),
        o.runs.to_string(),
        "--thp".into(),
        format!("{:?}", o.thp).to_lowercase(),
        "--device".into(),
        crate::plan::device(o.device).as_str().into(),
        "--scenario-dir".into(),
        crate::paths::absolute(&o.scenario_dir)
            .to_string_lossy()
            .into(),
        "--results-dir".into(),
        out.join("steps").to_string_lossy().into(),
    ];
    for f in &o.fragments {
        v.extend([
            "--config-fragment".into(),
            crate::paths::absolute(f).to_string_lossy().into(),
        ]);
    }
    v
}

/// One commit: build it, run the scenario `runs` times, tell git.
pub fn step(a: &BisectStepArgs) -> Result<i32> {
    let t = a.tree.to_string_lossy().to_string();
    let head = crate::kernel::source::commit_of(&a.tree, "HEAD")
        .with_context(|| format!("{t} has no HEAD commit"))?;
    let short = &head[..12.min(head.len())];
    let results = crate::paths::absolute(&a.step.results_dir).join(short);
    let args = RunArgs {
        kernel: crate::cli::KernelArgs {
            kernel: format!("path:{t}"),
            patches: vec![],
            series: None,
            fragments: a.step.fragments.clone(),
            config_base: Default::default(),
            jobs: None,
        },
        scenarios: vec![a.scenario.clone()],
        scenario_dir: a.step.scenario_dir.clone(),
        scenario_files: vec![],
        thp: vec![a.step.thp],
        device: vec![a.step.device],
        accel: crate::cli::AccelChoice::Auto,
        machine: "x86_64".into(),
        boot_timeout: None,
        scenario_timeout: None,
        results_dir: results.clone(),
        append: vec![],
        cell: None,
        matrix: PathBuf::from("matrix.toml"),
        repeat: a.step.runs,
        smp: None,
        run_timeout: 1800.0,
        panic_on_warn: false,
        fail_on_skip: false,
        stop_at_failure: false,
        instance_limits: Default::default(),
        coverage: Default::default(),
    };
    let code = match crate::run::run_scenarios(&args) {
        Ok(c) => c,
        Err(e) if crate::fail::exit_code(&e) == exit::INTERRUPTED => return Ok(ABORT),
        Err(e) => {
            eprintln!("bisect: {short}: cannot build or boot ({e:#}); skipping this commit");
            return Ok(SKIP);
        }
    };
    if code == exit::INTERRUPTED {
        return Ok(ABORT);
    }
    commit_verdict(short, &results, a.step.runs)
}

/// git bisect's answer for a commit from its runs under `results`.
fn commit_verdict(short: &str, results: &Path, runs: usize) -> Result<i32> {
    // Each scenario instance over the runs of this commit: any that failed
    // every time makes it bad; else any that passed and failed makes it
    // flaky (skipped); else good.
    let mut outcomes: BTreeMap<String, Vec<Outcome>> = BTreeMap::new();
    for dir in report::load::run_dirs(results) {
        let run = match report::load(&dir) {
            Ok(run) => run,
            Err(e) => {
                eprintln!("bisect: {short}: {e:#}; skipping this commit");
                return Ok(SKIP);
            }
        };
        for s in run.scenarios {
            outcomes.entry(s.name).or_default().push(s.outcome);
        }
    }
    if outcomes.is_empty() {
        bail!("{short}: no result was written under {}", results.display());
    }
    let verdicts: Vec<Verdict> = outcomes
        .values()
        .map(|o| Verdict::of(o.iter().copied()))
        .collect();
    let count = |v: Verdict| verdicts.iter().filter(|x| **x == v).count();
    let verdict = if count(Verdict::Fail) > 0 {
        1
    } else if count(Verdict::Flaky) > 0 {
        SKIP
    } else {
        0
    };
    eprintln!(
        "bisect: {short}: {} instance(s) over {} run(s): {} fail, {} flaky, {} pass or skip -> {}",
        verdicts.len(),
        runs,
        count(Verdict::Fail),
        count(Verdict::Flaky),
        count(Verdict::Pass) + count(Verdict::Skip),
        match verdict {
            0 => "good",
            1 => "bad",
            _ => "flaky, skipped",
        }
    );
    Ok(verdict)
}
