//! `cargo xtask bench`: run `run-scenarios` several times and report the
//! median, min and max of the timings that matter. The kernel is built (or
//! found) first, so the runs measure a cached kernel.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use hmmlab_harness::exit;

use crate::cli::BenchArgs;

pub fn bench(a: &BenchArgs) -> Result<i32> {
    if a.seed {
        return crate::bench_seed::seed(a);
    }
    if a.history {
        return crate::bench_seed::history(a);
    }
    if a.runs == 0 {
        return Err(crate::fail::bad_input("--runs must be at least 1"));
    }
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let results = tempfile::Builder::new().prefix("hmmlab-bench-").tempdir()?;
    let mut warm = vec!["run-scenarios".to_string()];
    warm.extend(a.run_args.iter().cloned());
    warm.extend([
        "--results-dir".into(),
        results.path().join("warm-up").to_string_lossy().into(),
    ]);
    eprintln!("bench: warm-up run (builds or finds the kernel and the guest)");
    let st = std::process::Command::new(&exe)
        .args(&warm)
        .stdout(std::process::Stdio::null())
        .status()?;
    if !matches!(st.code(), Some(0) | Some(1)) {
        bail!("the warm-up run failed ({st}); fix that first");
    }
    let (mut wall, mut boot, mut first, mut vm) = (vec![], vec![], vec![], vec![]);
    let (mut checks, mut without) = (vec![], vec![]);
    for i in 0..a.runs {
        let dir = results.path().join(format!("run-{i}"));
        let mut args = vec!["run-scenarios".to_string()];
        args.extend(a.run_args.iter().cloned());
        args.extend(["--results-dir".into(), dir.to_string_lossy().into()]);
        let t = Instant::now();
        let out = std::process::Command::new(&exe).args(&args).output()?;
        let secs = t.elapsed().as_secs_f64();
        let run_dir = std::fs::read_dir(&dir)?
            .flatten()
            .next()
            .context("no run directory")?
            .path();
        let report = hmmlab_harness::report::load(&run_dir)?;
        let timing = report.timing;
        let s = |v: Option<f64>| v.unwrap_or(f64::NAN) / 1e3;
        let checked = checks_s(&report.scenarios);
        eprintln!(
            "bench: run {}: exit {:?}, wall {secs:.2}s, guest up {:.2}s, first scenario {:.2}s, VM {:.2}s, checks {checked:.2}s",
            i + 1,
            out.status.code(),
            s(timing.boot_ms),
            s(timing.first_scenario_ms),
            s(timing.vm_ms)
        );
        checks.push(checked);
        without.push(secs - checked);
        wall.push(secs);
        boot.push(s(timing.boot_ms));
        first.push(s(timing.first_scenario_ms));
        vm.push(s(timing.vm_ms));
    }
    println!(
        "{} runs of: cargo xtask run-scenarios {}",
        a.runs,
        a.run_args.join(" ")
    );
    println!(
        "{:<34} {:>8} {:>8} {:>8}",
        "seconds", "median", "min", "max"
    );
    for (name, v) in [
        ("wall, whole command", &mut wall),
        ("QEMU start -> guest driver up", &mut boot),
        ("QEMU start -> first scenario", &mut first),
        ("QEMU start -> QEMU gone", &mut vm),
        ("checks after the scenarios", &mut checks),
        ("wall less those checks", &mut without),
    ] {
        let (med, min, max) = stats(v);
        println!("{name:<34} {med:>8.2} {min:>8.2} {max:>8.2}");
    }
    Ok(exit::OK)
}

/// Seconds PID 1 spent on the checks after the scenarios (device memory
/// released, counters compared): what a run without them would not spend.
pub fn checks_s(scenarios: &[hmmlab_harness::report::ScenarioResult]) -> f64 {
    scenarios.iter().map(|s| s.checks_ns as f64).sum::<f64>() / 1e9
}

/// (median, min, max); the median of an even count is the mean of the middle two.
pub fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (med, v[0], v[n - 1])
}

#[cfg(test)]
mod tests {
    #[test]
    fn stats() {
        assert_eq!(super::stats(&mut [3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(super::stats(&mut [4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
    }
}
