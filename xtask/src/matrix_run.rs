//! `cargo xtask matrix`: build each distinct kernel of the selected cells
//! once, then run the cells, up to N at once, each as its own
//! `run-scenarios --cell NAME` process, and print a cells × scenarios table
//! (`table.txt`) and write the page of the matrix (`matrix.html`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hmmlab_harness::{exit, interrupt};

use crate::cli::{Emit, MatrixArgs};
use crate::matrix::{self, Cell};
use crate::matrix_html::{self, CellRun};
use crate::progress::Progress;

pub fn matrix(a: &MatrixArgs) -> Result<i32> {
    let path = crate::paths::absolute(&a.matrix);
    let cells: Vec<Cell> = matrix::load(&path)?
        .into_iter()
        .filter(|c| a.filters.is_empty() || a.filters.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    if cells.is_empty() {
        return Err(crate::fail::bad_input(format!(
            "no cell of {} matches {:?}",
            path.display(),
            a.filters
        )));
    }
    if a.emit == Some(Emit::Github) {
        println!("{}", matrix::github_matrix(&cells)?);
        return Ok(exit::OK);
    }
    let started = Instant::now();
    let (builds, kernels) = build_kernels(&cells, a)?;
    let build_time = started.elapsed();

    let results = crate::paths::absolute(&a.results_dir);
    let dir = hmmlab_harness::report::write::create_run_dir(
        &results,
        &format!("matrix-{}", crate::run::new_run_id()),
    )?;
    let jobs = a.jobs.unwrap_or_else(default_jobs).max(1);
    let run_started = Instant::now();
    let codes = run_cells(a, &path, &cells, &dir, jobs)?;
    let run_time = run_started.elapsed();

    std::fs::write(dir.join("builds.txt"), &builds)?;
    print!("kernels:\n{builds}\n");
    let names: Vec<String> = cells.iter().map(|c| c.name.clone()).collect();
    let runs = matrix_html::load(&dir, &names);
    let table = table(&runs);
    print!("{table}");
    std::fs::write(dir.join("table.txt"), &table)?;
    let page = matrix_html::write(&dir, &matrix_html::title_of(&dir), &runs)?;
    println!("matrix: {}", page.display());
    let mut coverage_failed = false;
    if a.coverage.on() && !interrupt::requested() {
        if let Err(e) = crate::coverage::merge_cells(&cells, &kernels, &dir) {
            eprintln!("matrix: coverage: {e:#}");
            coverage_failed = true;
        }
    }
    println!(
        "\nmatrix: {} cells; kernels ready in {:.1}s, runs took {:.1}s with {jobs} at once; results in {}",
        cells.len(),
        build_time.as_secs_f64(),
        run_time.as_secs_f64(),
        dir.display()
    );
    if interrupt::requested() {
        return Ok(exit::INTERRUPTED);
    }
    let worst = codes
        .values()
        .map(|c| c.unwrap_or(exit::INFRA))
        .chain(coverage_failed.then_some(exit::INFRA))
        .max()
        .unwrap_or(exit::OK);
    Ok(match worst {
        0 => exit::OK,
        1 => exit::TEST_FAILURE,
        _ => exit::INFRA,
    })
}

/// Each distinct kernel and config of the cells, built once with all cores
/// (or found in the cache); one line per build, and each build by name.
fn build_kernels(
    cells: &[Cell],
    a: &MatrixArgs,
) -> Result<(String, BTreeMap<String, crate::kernel::Kernel>)> {
    crate::deps::ensure(&[], false)?;
    let mut kernels = BTreeMap::new();
    let mut builds = String::new();
    for c in cells {
        if let std::collections::btree_map::Entry::Vacant(slot) = kernels.entry(c.build_name()) {
            eprintln!("matrix: kernel for {} …", c.build_name());
            let mut req = crate::kernel::Request::from_args(&c.kernel_args)?;
            if a.coverage.on() {
                req = req.with_coverage(&a.coverage.cover)?;
            }
            let k = crate::kernel::ensure(&req)?;
            builds.push_str(&build_line(&c.build_name(), &k));
            slot.insert(k);
        }
    }
    Ok((builds, kernels))
}

/// Run the cells as `run-scenarios --cell` processes, `jobs` at once, into
/// `dir`; each cell's exit code (None when it died by a signal). An
/// interrupt is passed on to the running cells, which stop their own QEMU.
fn run_cells(
    a: &MatrixArgs,
    path: &Path,
    cells: &[Cell],
    dir: &Path,
    jobs: usize,
) -> Result<BTreeMap<String, Option<i32>>> {
    // Under TCG every vCPU is a busy host thread: cells running side by side
    // share the cores instead of oversubscribing them.
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let smp = (jobs > 1).then(|| (cores / jobs).max(1) as u32);
    eprintln!(
        "matrix: {} cells, {jobs} at once{}; results in {}",
        cells.len(),
        smp.map(|n| format!(" with {n} vCPU each"))
            .unwrap_or_default(),
        dir.display()
    );
    let exe = self_exe()?;
    let mut pending: Vec<&Cell> = cells.iter().rev().collect();
    let mut running: Vec<(&Cell, Child, Instant)> = Vec::new();
    let mut codes: BTreeMap<String, Option<i32>> = BTreeMap::new();
    let mut shown = Progress::counted("matrix", "cells", Some(cells.len() as u64));
    let mut took: Vec<Duration> = Vec::new();
    let mut last_finish = Instant::now();
    while !pending.is_empty() || !running.is_empty() {
        if interrupt::requested() {
            for (_, child, _) in &mut running {
                // SAFETY: kill(2) on the pid of a child this process spawned
                // and has not reaped yet.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            }
            for (c, mut child, _) in running.drain(..) {
                codes.insert(c.name.clone(), child.wait().ok().and_then(|s| s.code()));
            }
            break;
        }
        while running.len() < jobs {
            let Some(c) = pending.pop() else { break };
            let child = spawn_cell(&exe, path, c, dir, a, smp)?;
            running.push((c, child, Instant::now()));
        }
        let mut i = 0;
        while i < running.len() {
            if let Some(st) = running[i].1.try_wait()? {
                let (c, _, t) = running.remove(i);
                shown.println(&format!(
                    "matrix: {} finished (exit {:?}) in {:.1}s",
                    c.name,
                    st.code(),
                    t.elapsed().as_secs_f64()
                ));
                codes.insert(c.name.clone(), st.code());
                took.push(t.elapsed());
                last_finish = Instant::now();
                cells_progress(&mut shown, &took, cells.len(), jobs, last_finish, &running);
                shown.line_now();
            } else {
                i += 1;
            }
        }
        cells_progress(&mut shown, &took, cells.len(), jobs, last_finish, &running);
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(codes)
}

/// The matrix's progress: cells finished of all, and the time left at the
/// mean time of the finished cells, `jobs` at once (fewer when fewer are
/// left), counted down from the last finish; what runs now.
fn cells_progress(
    shown: &mut Progress,
    took: &[Duration],
    cells: usize,
    jobs: usize,
    last_finish: Instant,
    running: &[(&Cell, Child, Instant)],
) {
    let left = (cells - took.len()) as u64;
    let eta = (!took.is_empty()).then(|| {
        let mean = took.iter().sum::<Duration>() / took.len() as u32;
        let at_once = jobs.min(left as usize);
        crate::progress::items_eta(mean, left, at_once, last_finish.elapsed())
    });
    let now: Vec<&str> = running.iter().map(|(c, _, _)| c.name.as_str()).collect();
    let what = if now.is_empty() {
        String::new()
    } else {
        format!("running {}", now.join(", "))
    };
    shown.update(took.len() as u64, eta, &what);
}

/// One line per kernel build of the matrix: cached, or built in how long
/// and how much of it was reused from the other builds.
fn build_line(name: &str, k: &crate::kernel::Kernel) -> String {
    let how = if k.cached {
        "cached".to_string()
    } else {
        let mut s = format!("built in {:.0}s", k.build_seconds);
        if let Some(r) = &k.reuse {
            s.push_str("; ");
            s.push_str(&r.describe());
        }
        s
    };
    format!("  {name:<16} {} {:<12} {how}\n", k.key, k.release)
}

/// This binary, even if it was rebuilt (replaced) while the matrix runs:
/// the cells then start the new one at the same path.
fn self_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let s = exe.to_string_lossy();
    Ok(match s.strip_suffix(" (deleted)") {
        Some(p) => PathBuf::from(p),
        None => exe,
    })
}

fn spawn_cell(
    exe: &Path,
    matrix: &Path,
    c: &Cell,
    dir: &Path,
    a: &MatrixArgs,
    smp: Option<u32>,
) -> Result<Child> {
    let log = std::fs::File::create(dir.join(format!("{}.log", c.name)))?;
    let mut cmd = Command::new(exe);
    cmd.args(["run-scenarios", "--cell", &c.name, "--matrix"])
        .arg(matrix)
        .arg("--results-dir")
        .arg(dir.join(&c.name));
    for s in &a.scenarios {
        cmd.args(["-s", s]);
    }
    if a.fail_on_skip {
        cmd.arg("--fail-on-skip");
    }
    if let Some(n) = smp {
        cmd.args(["--smp", &n.to_string()]);
    }
    if a.coverage.on() {
        cmd.args(["--coverage", "--gcov", &a.coverage.gcov]);
        if !a.coverage.cover.is_empty() {
            cmd.args(["--cover", &a.coverage.cover.join(",")]);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    interrupt::isolate_child(&mut cmd);
    cmd.spawn()
        .with_context(|| format!("starting cell {}", c.name))
}

/// What the cores and memory allow: a cell is one TCG VM of 1 GiB that keeps
/// about one core busy.
fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let avail_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kib| kib / (1 << 20))
        .unwrap_or(2) as usize;
    cores.min(avail_gib.saturating_sub(1) / 2).max(1)
}

/// Rows: scenarios; columns: cells; each entry the worst outcome of that
/// scenario's instances in the cell.
fn table(cells: &[CellRun]) -> String {
    let mut grid: BTreeMap<String, BTreeMap<String, hmmlab_proto::Outcome>> = BTreeMap::new();
    let mut status: BTreeMap<String, String> = BTreeMap::new();
    for c in cells {
        let run = match &c.run {
            Ok((_, run)) => run,
            Err(e) => {
                status.insert(c.name.clone(), format!("{e} (see the cell's .log)"));
                continue;
            }
        };
        status.insert(c.name.clone(), run.status.to_string());
        for s in &run.scenarios {
            let base = s.name.split('@').next().unwrap_or("?").to_string();
            let o = s.outcome;
            let e = grid
                .entry(base)
                .or_default()
                .entry(c.name.clone())
                .or_insert(o);
            if o > *e {
                *e = o;
            }
        }
    }
    let w = grid.keys().map(|k| k.len()).max().unwrap_or(8).max(8);
    let mut out = format!("{:<w$}", "scenario");
    for c in cells {
        out.push_str(&format!(
            "  {:>width$}",
            c.name,
            width = c.name.len().max(7)
        ));
    }
    out.push('\n');
    for (scenario, row) in &grid {
        out.push_str(&format!("{scenario:<w$}"));
        for c in cells {
            let v = row.get(&c.name).map(|o| o.as_str()).unwrap_or("-");
            out.push_str(&format!("  {:>width$}", v, width = c.name.len().max(7)));
        }
        out.push('\n');
    }
    for c in cells {
        if status.get(&c.name).map(String::as_str) != Some("finished") {
            out.push_str(&format!(
                "cell {}: {}\n",
                c.name,
                status.get(&c.name).cloned().unwrap_or_default()
            ));
        }
    }
    out
}

/// The run a cell made: the one run directory in its folder, and its report.
pub fn cell_run(cell_dir: &Path) -> Result<(PathBuf, hmmlab_harness::report::RunReport)> {
    let runs = hmmlab_harness::report::load::run_dirs(cell_dir);
    let run = runs
        .first()
        .with_context(|| format!("{}: no run.json", cell_dir.display()))?;
    Ok((run.clone(), hmmlab_harness::report::load(run)?))
}
