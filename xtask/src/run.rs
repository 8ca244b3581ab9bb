//! `cargo xtask run-scenarios`: scenarios → kernel → guest → image → boot →
//! parse → report. Scenario files are validated before anything is built.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use hmmlab_harness::assemble::{self, Planned};
use hmmlab_harness::console;
use hmmlab_harness::exit;
use hmmlab_harness::machine::Machine;
use hmmlab_harness::qemu::{self, Boot};
use hmmlab_harness::report::ScenarioResult;
use hmmlab_harness::report::{self, model::HostFacts, model::Timing, RunReport};
use hmmlab_harness::runner::{self, Event, RunConfig};
use hmmlab_harness::scenario::when::KernelFacts;
use hmmlab_harness::scenario::{self, LoadedScenario};
use hmmlab_proto::plan::{Mode, PlannedScenario, BIN_DIR, PLAN_PATH};
use hmmlab_proto::Outcome;
use hmmlab_proto::{Plan, Record};

use crate::cli::RunArgs;
use crate::image::{self, Entry};
use crate::kernel::{self, Kernel};
use crate::shell::quote_argv;

/// Slack the host adds to the guest's own per-scenario timeout.
const HOST_SLACK: Duration = Duration::from_secs(3);

/// Load and validate the scenarios the arguments select. All problems at once.
pub fn load_scenarios(args: &RunArgs) -> Result<Vec<LoadedScenario>> {
    let mut selected = Vec::new();
    if args.scenario_files.is_empty() || !args.scenarios.is_empty() {
        let all = scenario::load_dir(&args.scenario_dir)?;
        selected = if args.scenarios.is_empty() {
            all
        } else {
            scenario::select(all, &args.scenarios).map_err(crate::fail::bad_input)?
        };
    }
    if !args.scenario_files.is_empty() {
        selected.extend(scenario::load_files(&args.scenario_files)?);
    }
    Ok(selected)
}

/// `--repeat N`: N runs (N boots) of the same thing, then how often each
/// scenario instance passed. The runs are siblings under the results
/// directory, so `cargo xtask compare` takes that directory as one side.
pub fn run_scenarios(args: &RunArgs) -> Result<i32> {
    if args.repeat <= 1 {
        return run_once(args);
    }
    let results = crate::paths::absolute(&args.results_dir);
    let before: std::collections::BTreeSet<_> = list_runs(&results);
    let mut worst = exit::OK;
    for i in 1..=args.repeat {
        eprintln!("repeat: run {i} of {}", args.repeat);
        let code = run_once(args)?;
        worst = worst.max(code);
        if code == exit::INTERRUPTED {
            return Ok(code);
        }
    }
    let mut tally: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for dir in list_runs(&results).difference(&before) {
        let Ok(bytes) = std::fs::read(dir.join("run.json")) else {
            continue;
        };
        let Ok(r) = serde_json::from_slice::<RunReport>(&bytes) else {
            continue;
        };
        for s in r.scenarios {
            let e = tally.entry(s.name).or_default();
            e.1 += 1;
            if !s.outcome.is_failure() {
                e.0 += 1;
            }
        }
    }
    println!("\n{} runs: how often each scenario passed", args.repeat);
    for (name, (ok, n)) in &tally {
        let verdict = match (*ok, *n) {
            (ok, n) if ok == n => "pass",
            (0, _) => "fail",
            _ => "FLAKY",
        };
        println!("  {name:<40} {ok}/{n}  {verdict}");
    }
    println!(
        "results: {} (compare with `cargo xtask compare DIR OTHER_DIR`)",
        results.display()
    );
    Ok(worst)
}

fn list_runs(results: &Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    std::fs::read_dir(results)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.join("run.json").is_file())
                .collect()
        })
        .unwrap_or_default()
}

fn run_once(args: &RunArgs) -> Result<i32> {
    let cell_args;
    let args = match &args.cell {
        Some(name) => {
            let c = crate::matrix::find(&crate::paths::absolute(&args.matrix), name)?;
            cell_args = RunArgs {
                kernel: c.kernel_args,
                thp: vec![c.thp],
                ..args.clone()
            };
            &cell_args
        }
        None => args,
    };
    let repo = crate::paths::repo_root();
    let scenarios = load_scenarios(args)?;
    let mut machine = Machine::load(&repo.join("images/machines"), &args.machine)
        .map_err(|e| crate::fail::bad_input(e.to_string()))?;
    if let Some(n) = args.smp {
        machine.smp = n.max(1);
    }
    let req = kernel::Request::from_args(&args.kernel)?;
    crate::deps::ensure(&[], false)?;
    let k = kernel::ensure(&req)?;
    let t = Instant::now();
    // The machine file says where the boot image is inside the build.
    let kernel_image = k.obj_dir.join(&machine.kernel_image);
    if !kernel_image.is_file() {
        anyhow::bail!(
            "kernel image {} is missing: the machine file says `kernel_image = \"{}\"`; check it, or rebuild with `cargo xtask kernel`",
            kernel_image.display(),
            machine.kernel_image.display()
        );
    }
    let guest = crate::guest::build(&k.uapi_header())?;
    eprintln!(
        "guest: static driver ready in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let results = crate::paths::absolute(&args.results_dir);
    // A run directory is never reused: on the (unlikely) clash of two ids
    // made in the same second, make another.
    let (run_id, run_dir) = {
        let mut attempt = 0;
        loop {
            let id = new_run_id();
            match report::write::create_run_dir(&results, &id) {
                Ok(dir) => break (id, dir),
                Err(e) if attempt < 5 && results.join(&id).exists() => {
                    attempt += 1;
                    let _ = e;
                }
                Err(e) => return Err(e),
            }
        }
    };
    let modes = crate::plan::modes(&args.thp);
    let dotconfig = std::fs::read_to_string(k.obj_dir.join(".config"))
        .context("reading the kernel's .config")?;
    let facts = KernelFacts::from_dotconfig(&k.release, &dotconfig);
    let (mut instances, mut skipped) = crate::plan::expand(&scenarios, &modes, &facts);
    if let Some(why) = &k.hmm_tests_error {
        crate::plan::skip_unbuilt(&mut instances, &mut skipped, "hmm-tests", why);
    }
    let accel_setting = |a: &str| machine.accel(a).clone();

    // The plan and its image.
    let tcg = accel_setting("tcg");
    let plan = Plan {
        default_thp: modes[0],
        scenario_timeout_ms: (args.scenario_timeout.unwrap_or(tcg.scenario_timeout_s) * 1000.0)
            as u64,
        mode: Mode::Run,
        scenarios: instances
            .iter()
            .map(|i| PlannedScenario {
                name: i.name.clone(),
                scenario: i.scenario.clone(),
            })
            .collect(),
    };
    let initrd = run_dir.join("initramfs.cpio");
    write_image(&initrd, &guest, &k, &plan)?;

    // Private directory for sockets (mode 0700), removed when the run ends.
    let private = tempfile::Builder::new()
        .prefix("hmmlab-")
        .tempdir()
        .context("creating a private socket directory")?;
    let mut boot = Boot {
        accel: "tcg".into(),
        kernel: kernel_image.clone(),
        initrd: initrd.clone(),
        console_log: run_dir.join("console.log"),
        results_log: run_dir.join("results.jsonl"),
        qmp_socket: private.path().join("qmp.sock"),
        append: kernel_append(args),
        interactive: false,
    };
    let choice = crate::accel::choose(args.accel, &machine, || {
        let probe = Plan {
            mode: Mode::Probe,
            scenarios: vec![],
            ..plan.clone()
        };
        let probe_img = private.path().join("probe.cpio");
        write_image(&probe_img, &guest, &k, &probe)?;
        Ok(Boot {
            initrd: probe_img,
            ..boot.clone()
        })
    })?;
    boot.accel = choice.accel.clone();
    let acc = accel_setting(&boot.accel);
    if boot.accel != "tcg" && args.scenario_timeout.is_none() {
        // The plan's guest-side timeout follows the accelerator actually used.
        let p = Plan {
            scenario_timeout_ms: (acc.scenario_timeout_s * 1000.0) as u64,
            ..plan.clone()
        };
        write_image(&initrd, &guest, &k, &p)?;
    }
    let argv = qemu::argv(&machine, &boot);
    let qemu_command = quote_argv(&argv);
    std::fs::write(
        run_dir.join("qemu-command.sh"),
        format!("#!/bin/sh\n{qemu_command}\n"),
    )?;
    eprintln!("accel: {} ({})", boot.accel, choice.reason);
    eprintln!("Running with: $ {qemu_command}");

    let planned: Vec<Planned> = instances
        .iter()
        .map(|i| Planned {
            name: i.name.clone(),
            thp: i.thp.as_str().into(),
            reproduce: crate::plan::reproduce(
                args,
                &k.identity,
                &i.base,
                &i.path,
                i.thp,
                &boot.accel,
            ),
        })
        .collect();
    let skip_results: Vec<ScenarioResult> = skipped
        .iter()
        .map(|s| ScenarioResult {
            name: s.name.clone(),
            outcome: Outcome::Skip,
            thp: s.thp.as_str().into(),
            duration_ns: 0,
            message: Some(s.reason.clone()),
            steps: vec![],
            output: vec![],
            console_findings: vec![],
            cases: vec![],
            reproduce: crate::plan::reproduce(
                args,
                &k.identity,
                &s.base,
                &s.path,
                s.thp,
                &boot.accel,
            ),
        })
        .collect();
    let scenario_timeout =
        Duration::from_secs_f64(args.scenario_timeout.unwrap_or(acc.scenario_timeout_s));
    let timeouts: BTreeMap<String, Duration> = instances
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.scenario
                    .timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(scenario_timeout)
                    + HOST_SLACK,
            )
        })
        .collect();
    let cfg = RunConfig {
        argv,
        run_dir: run_dir.clone(),
        results_log: boot.results_log.clone(),
        console_log: boot.console_log.clone(),
        qmp_socket: boot.qmp_socket.clone(),
        boot_timeout: Duration::from_secs_f64(args.boot_timeout.unwrap_or(acc.boot_timeout_s)),
        scenario_timeouts: timeouts,
        default_scenario_timeout: scenario_timeout + HOST_SLACK,
        run_timeout: Duration::from_secs_f64(args.run_timeout),
    };

    let mut report = RunReport {
        run_id: run_id.clone(),
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        status: "running".into(),
        kernel: serde_json::to_value(&k)?,
        qemu_version: qemu_version(&machine.qemu),
        accel: boot.accel.clone(),
        accel_reason: choice.reason,
        qemu_command,
        default_thp: modes
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(","),
        host: host_facts(),
        timing: Timing::default(),
        scenarios: vec![],
        console_findings: vec![],
        console_tail: vec![],
        error: None,
        booted_kernel: None,
    };
    report::write::write_run_json(&run_dir, &report)?;

    // Run, writing run.json again after every scenario so nothing finished is lost.
    let mut seen: Vec<Record> = vec![];
    let mut progress = Progress;
    let vm = runner::run(&cfg, &mut |ev| {
        progress.show(ev);
        if let Event::Record { at, record } = ev {
            seen.push(record.clone());
            match record {
                Record::Hello { uptime_ns, .. } => {
                    report.timing.boot_ms = Some(ms(*at));
                    report.timing.guest_uptime_at_init_ms = Some(*uptime_ns as f64 / 1e6);
                }
                Record::ScenarioStart { .. } if report.timing.first_scenario_ms.is_none() => {
                    report.timing.first_scenario_ms = Some(ms(*at));
                }
                Record::ScenarioEnd { .. } => {
                    report.scenarios = assemble::assemble(&planned, &seen, &runner::End::Done, &[])
                        .into_iter()
                        .filter(|s| seen.iter().any(|r| matches!(r, Record::ScenarioEnd { name, .. } if *name == s.name)))
                        .collect();
                    let _ = report::write::write_run_json(&run_dir, &report);
                }
                _ => {}
            }
        }
    });
    let vm = match vm {
        Ok(vm) => vm,
        Err(e) => {
            report.status = "infra-error".into();
            report.error = Some(format!("{e:#}"));
            report::write::write_run_json(&run_dir, &report)?;
            return Err(e.context(format!(
                "run {run_id} could not boot; results so far in {}",
                run_dir.display()
            )));
        }
    };
    report.timing.vm_ms = Some(ms(vm.vm_time));
    report.timing.crash_to_end_ms = vm.crash_seen.map(|c| ms(vm.vm_time.saturating_sub(c)));
    let console_text =
        String::from_utf8_lossy(&std::fs::read(&boot.console_log).unwrap_or_default()).into_owned();
    let findings = console::classify(&console_text);
    let records: Vec<Record> = vm.records.iter().map(|(_, r)| r.clone()).collect();
    // The kernel that booted must be the one that was built; otherwise
    // nothing this run saw is a result.
    if let Err(why) = booted_as_built(&k, &records, &console_text, &mut report) {
        report.status = "infra-error".into();
        report.scenarios.clear();
        report.error = Some(why.clone());
        report::write::write_run_json(&run_dir, &report)?;
        return Err(anyhow::anyhow!(
            "{why}\nrun {run_id}: no result is counted; the guest's records are kept in {}",
            boot.results_log.display()
        ));
    }
    report.scenarios = assemble::assemble(&planned, &records, &vm.end, &findings);
    report.scenarios.extend(skip_results.iter().cloned());
    report.console_findings = findings
        .into_iter()
        .filter(|f| f.scenario.is_none())
        .collect();
    report.status = if vm.end == runner::End::Interrupted {
        "interrupted"
    } else {
        "finished"
    }
    .into();
    if let Some(Record::Fatal { message }) =
        records.iter().find(|r| matches!(r, Record::Fatal { .. }))
    {
        report.error = Some(format!("guest driver: {message}"));
    }
    if vm.end != runner::End::Done {
        let lines: Vec<&str> = console_text.lines().collect();
        report.console_tail = lines[lines.len().saturating_sub(20)..]
            .iter()
            .map(|l| l.to_string())
            .collect();
        let why = format!(
            "{}; VM {}; console tail:\n{}",
            assemble::describe(&vm.end),
            vm.stop,
            report.console_tail.join("\n")
        );
        report.error = Some(report.error.map(|e| format!("{e}\n{why}")).unwrap_or(why));
    }
    report::write::write_run_json(&run_dir, &report)?;
    report::write::write_atomic(
        &run_dir.join("junit.xml"),
        report::junit::render(&report)?.as_bytes(),
    )?;

    print!("{}", report::table::render(&report));
    if let Some(e) = &report.error {
        eprintln!("\nrun problem: {e}");
    }
    for s in report.failed() {
        println!(
            "\n{} {}: {}",
            s.outcome.as_str().to_uppercase(),
            s.name,
            s.message.as_deref().unwrap_or("")
        );
        println!(
            "  reproduce: {}  (add --repeat 10 to measure flakiness)",
            s.reproduce
        );
    }
    let secs = |v: Option<f64>| {
        v.map(|ms| format!("{:.2}s", ms / 1e3))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "\nresults: {}  (boot {}, first scenario at {}, VM {}, accel {})",
        run_dir.display(),
        secs(report.timing.boot_ms),
        secs(report.timing.first_scenario_ms),
        secs(report.timing.vm_ms),
        report.accel
    );
    Ok(if vm.end == runner::End::Interrupted {
        eprintln!("interrupted: what finished is in {}", run_dir.display());
        exit::INTERRUPTED
    } else if report.failed().next().is_some() || report.scenarios.is_empty() {
        exit::TEST_FAILURE
    } else {
        exit::OK
    })
}

/// Did the guest boot the kernel `k` that was built? The guest's
/// /proc/version (from its hello) and the console's banner line, when the
/// log level shows it, must both be `k.banner`. Records what booted.
fn booted_as_built(
    k: &Kernel,
    records: &[Record],
    console_text: &str,
    report: &mut RunReport,
) -> Result<(), String> {
    let hello = records.iter().find_map(|r| match r {
        Record::Hello { proc_version, .. } => Some(proc_version.clone()),
        _ => None,
    });
    report.booted_kernel = hello.clone().flatten().map(|v| v.trim_end().to_string());
    let checked = match &hello {
        Some(None) => Err("the guest could not read /proc/version".to_string()),
        Some(Some(v)) => hmmlab_harness::identity::booted(&k.banner, Some(v), console_text),
        None => hmmlab_harness::identity::booted(&k.banner, None, console_text),
    };
    checked.map_err(|why| {
        format!(
            "kernel build {} ({} {}): the guest did not boot the kernel that was built: {why}",
            k.key, k.source, k.release
        )
    })
}

/// Extra kernel command-line words for this run.
fn kernel_append(args: &RunArgs) -> Vec<String> {
    let mut v = args.append.clone();
    if args.panic_on_warn {
        v.push("panic_on_warn=1".into());
    }
    v
}

pub fn write_image(out: &Path, guest: &Path, k: &Kernel, plan: &Plan) -> Result<()> {
    let bin_path = format!("{}/hmm-tests", BIN_DIR.trim_start_matches('/'));
    let mut files = vec![
        Entry {
            path: "init",
            mode: 0o755,
            data: std::fs::read(guest).with_context(|| format!("reading {}", guest.display()))?,
        },
        Entry {
            path: PLAN_PATH.trim_start_matches('/'),
            mode: 0o644,
            data: serde_json::to_vec(plan)?,
        },
    ];
    // A tree whose hmm-tests did not build has none; its kselftest
    // scenario is skipped (see `plan::skip_unbuilt`).
    if k.hmm_tests_error.is_none() {
        files.push(Entry {
            path: &bin_path,
            mode: 0o755,
            data: std::fs::read(&k.hmm_tests)
                .with_context(|| format!("reading {}", k.hmm_tests.display()))?,
        });
    }
    image::write_initramfs(out, &files)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn qemu_version(qemu: &str) -> String {
    crate::shell::Cmd::new(&[qemu, "--version"])
        .output()
        .map(|s| s.lines().next().unwrap_or("").to_string())
        .unwrap_or_else(|_| "unknown (could not run --version)".into())
}

fn host_facts() -> HostFacts {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let mem = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    HostFacts {
        hostname: read("/proc/sys/kernel/hostname"),
        kernel: read("/proc/sys/kernel/osrelease"),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        memory_kib: mem,
    }
}

/// `YYYYmmdd-HHMMSS-<4 hex>` in UTC: sortable, unique per process.
pub fn new_run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    let tag = (now.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xFFFF;
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{tag:04x}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Live progress on stderr.
#[derive(Default)]
struct Progress;

impl Progress {
    fn show(&mut self, ev: &Event) {
        match ev {
            Event::VmStarted { pid } => eprintln!("[  0.00s] QEMU started (pid {pid})"),
            Event::Record { at, record } => match record {
                Record::Hello { kernel_release, uptime_ns, thp_modes, devices, .. } => eprintln!(
                    "[{:6.2}s] guest up: {kernel_release}, guest uptime {:.2}s, THP {thp_modes}, devices {}",
                    at.as_secs_f64(),
                    *uptime_ns as f64 / 1e9,
                    devices.join(",")
                ),
                Record::ScenarioEnd { name, outcome, duration_ns, message } => eprintln!(
                    "[{:6.2}s] {name}: {} ({:.1} ms){}",
                    at.as_secs_f64(),
                    outcome.as_str(),
                    *duration_ns as f64 / 1e6,
                    message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
                ),
                Record::Fatal { message } => eprintln!("[{:6.2}s] guest driver failed: {message}", at.as_secs_f64()),
                _ => {}
            },
            Event::QmpEvent { at, name } => eprintln!("[{:6.2}s] QMP event {name}", at.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_and_differ() {
        let a = new_run_id();
        assert_eq!(a.len(), "20261124-143501-abcd".len(), "{a}");
        assert!(a.starts_with("20"), "{a}");
    }
}
