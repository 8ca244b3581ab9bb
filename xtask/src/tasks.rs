//! One function per task; `dispatch` maps the CLI onto them.

use anyhow::Result;
use hmmlab_harness::{console, exit, scenario};

use crate::cli::{
    CheckArgs, KernelArgs, KernelTaskArgs, ParseArgs, ReportHtmlArgs, Task, TestArgs,
};
use crate::kernel;
use crate::shell::Cmd;

pub fn dispatch(task: Task) -> Result<i32> {
    match task {
        Task::Kernel(a) => kernel_task(&a),
        Task::Guest(a) => guest_task(&a),
        Task::RunScenarios(a) => crate::run::run_scenarios(&a),
        Task::Coverage(mut a) => {
            a.coverage.coverage = true;
            crate::run::run_scenarios(&a)
        }
        Task::Parse(a) => parse_task(&a),
        Task::Check(a) => check_task(&a),
        Task::Test(a) => test_task(&a),
        Task::Bench(a) => crate::bench::bench(&a),
        Task::Compare(a) => crate::compare::compare(&a),
        Task::Matrix(a) => crate::matrix_run::matrix(&a),
        Task::Shell(a) => crate::shell_task::shell(&a),
        Task::Bisect(a) => crate::bisect::bisect(&a),
        Task::BisectStep(a) => crate::bisect::step(&a),
        Task::Deps(a) => crate::deps::ensure(&[], a.check).map(|_| exit::OK),
        Task::Sources(a) => crate::sources::sources(&a),
        Task::CoverageReport(a) => crate::coverage::coverage_report(&a),
        Task::ReportHtml(a) => report_html_task(&a),
        Task::MatrixHtml(a) => crate::matrix_html::task(&a),
        Task::Mutate(a) => crate::mutate::mutate(&a),
        Task::Cache(a) => crate::cache::task(&a),
    }
}

/// The run's report.html, from its run.json, by the reporter's own render
/// function; prints where it went.
fn report_html_task(a: &ReportHtmlArgs) -> Result<i32> {
    use hmmlab_harness::report::{html, load, write::write_atomic};
    let run = load(&a.run).map_err(|e| crate::fail::bad_input(format!("{e:#}")))?;
    let dir = if a.run.is_dir() {
        a.run.clone()
    } else {
        a.run.parent().map(Into::into).unwrap_or_default()
    };
    let out = a.out.clone().unwrap_or_else(|| dir.join("report.html"));
    write_atomic(&out, html::render(&run)?.as_bytes())?;
    println!("{}", out.display());
    Ok(exit::OK)
}

fn kernel_task(a: &KernelTaskArgs) -> Result<i32> {
    let req = kernel::Request::from_args(&a.kernel)?;
    crate::deps::ensure(&[], false)?;
    if a.config_only {
        let c = kernel::build::configure_only(&req)?;
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(exit::OK);
    }
    let k = kernel::ensure(&req)?;
    println!("{}", serde_json::to_string_pretty(&k)?);
    Ok(exit::OK)
}

fn guest_task(a: &KernelArgs) -> Result<i32> {
    let k = kernel::ensure(&kernel::Request::from_args(a)?)?;
    let bin = crate::guest::build(&k.uapi_header())?;
    println!("{}", bin.display());
    Ok(exit::OK)
}

fn parse_task(a: &ParseArgs) -> Result<i32> {
    let text = std::fs::read(&a.console_log)
        .map_err(|e| crate::fail::bad_input(format!("{}: {e}", a.console_log.display())))?;
    let findings = console::classify(&String::from_utf8_lossy(&text));
    if findings.is_empty() {
        println!(
            "{}: clean (no panic, oops, BUG, WARNING, sanitizer report, lockup or stall)",
            a.console_log.display()
        );
        return Ok(exit::OK);
    }
    for f in &findings {
        println!(
            "{}:{}: {:?}{}\n{}\n",
            a.console_log.display(),
            f.line,
            f.kind,
            f.scenario
                .as_ref()
                .map(|s| format!(" during scenario {s}"))
                .unwrap_or_default(),
            f.excerpt
        );
    }
    Ok(exit::TEST_FAILURE)
}

fn check_task(a: &CheckArgs) -> Result<i32> {
    let paths = if a.paths.is_empty() {
        vec![crate::paths::repo_root().join("scenarios")]
    } else {
        a.paths.clone()
    };
    let mut loaded = Vec::new();
    let mut files = Vec::new();
    for p in &paths {
        if p.is_dir() {
            loaded.extend(scenario::load_dir(p)?);
        } else {
            files.push(p.clone());
        }
    }
    if !files.is_empty() {
        loaded.extend(scenario::load_files(&files)?);
    }
    for s in &loaded {
        println!("ok  {:<24} {}", s.name, s.scenario.description);
    }
    Ok(exit::OK)
}

fn test_task(a: &TestArgs) -> Result<i32> {
    // Everything the tests use: `cargo xtask shell` needs busybox, the
    // KTAP check runs the kernel's own kunit.py parser, the coverage tests
    // have lcov's genhtml read the tracefile and check the HTML pages in a
    // headless Chromium.
    crate::deps::ensure(
        &[
            "busybox-static".to_string(),
            "python3".to_string(),
            "lcov".to_string(),
            "chromium".to_string(),
        ],
        false,
    )?;
    // Build the default kernel up front, with progress, so the tests share it.
    // (Tests of 6.12-specific facts build Debian's 6.12 on first use.)
    let defaults = KernelArgs {
        kernel: crate::cli::DEFAULT_KERNEL.into(),
        patches: vec![],
        series: None,
        fragments: vec![],
        config_base: Default::default(),
        jobs: None,
    };
    kernel::ensure(&kernel::Request::from_args(&defaults)?)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if Cmd::new(&[cargo.as_str(), "nextest", "--version"])
        .output()
        .is_err()
    {
        eprintln!("test: installing cargo-nextest from crates.io …");
        Cmd::new(&[cargo.as_str(), "install", "--locked", "cargo-nextest"]).output()?;
    }
    let mut argv = vec![cargo, "nextest".into(), "run".into(), "--workspace".into()];
    argv.extend(a.nextest_args.iter().cloned());
    eprintln!("Running tests with: $ {}", crate::shell::quote_argv(&argv));
    let status = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(crate::paths::repo_root())
        .status()?;
    Ok(if status.success() {
        exit::OK
    } else {
        exit::TEST_FAILURE
    })
}
