//! `cargo xtask run-scenarios`: scenarios → kernel → guest → image → boot →
//! parse → report. Scenario files are validated before anything is built.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use hmmlab_harness::assemble::Planned;
use hmmlab_harness::engine::Engine;
use hmmlab_harness::events::{RunEnd, RunEvent, RunStart, VmStart};
use hmmlab_harness::exit;
use hmmlab_harness::machine::{Accel, AccelSettings, Machine};
use hmmlab_harness::qemu::{self, Boot};
use hmmlab_harness::report::{
    self, model::HostFacts, BuiltKernel, RunStatus, ScenarioResult, Verdict,
};
use hmmlab_harness::runner::RunConfig;
use hmmlab_harness::scenario::when::KernelFacts;
use hmmlab_harness::scenario::{self, LoadedScenario};
use hmmlab_proto::coverage::CoveragePlan;
use hmmlab_proto::plan::{Mode, PlannedScenario, PLAN_PATH};
use hmmlab_proto::scenario::{DeviceKind, ThpMode};
use hmmlab_proto::Outcome;
use hmmlab_proto::{Plan, Record};

use crate::cli::RunArgs;
use crate::image::{self, Entry};
use crate::kernel::{self, Kernel};
use crate::shell::quote_argv;

/// Slack the host adds to the guest's own per-scenario timeout: the
/// guest's checks after the scenario (release, counters) may take up to
/// AFTER_SCENARIO_MS, and 3 s more for the records to arrive.
const HOST_SLACK: Duration = Duration::from_millis(3_000 + hmmlab_proto::plan::AFTER_SCENARIO_MS);

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
    let before: BTreeSet<PathBuf> = report::load::run_dirs(&results).into_iter().collect();
    let mut worst = exit::OK;
    for i in 1..=args.repeat {
        eprintln!("repeat: run {i} of {}", args.repeat);
        let code = run_once(args)?;
        worst = worst.max(code);
        if code == exit::INTERRUPTED {
            return Ok(code);
        }
    }
    let mut tally: BTreeMap<String, Vec<Outcome>> = BTreeMap::new();
    for dir in report::load::run_dirs(&results) {
        if before.contains(&dir) {
            continue;
        }
        for s in report::load(&dir)?.scenarios {
            tally.entry(s.name).or_default().push(s.outcome);
        }
    }
    println!("\n{} runs: how often each scenario passed", args.repeat);
    for (name, outcomes) in &tally {
        let ok = outcomes.iter().filter(|o| !o.is_failure()).count();
        let verdict = match Verdict::of(outcomes.iter().copied()) {
            Verdict::Flaky => "FLAKY",
            v => v.as_str(),
        };
        println!("  {name:<40} {ok}/{}  {verdict}", outcomes.len());
    }
    println!(
        "results: {} (compare with `cargo xtask compare DIR OTHER_DIR`)",
        results.display()
    );
    Ok(worst)
}

/// One run, as stages: inputs (cell, scenarios, machine, kernel request:
/// refused before anything is made); the kernel and the guest (a build
/// that fails is not a run: it has no run directory); then the run
/// directory and its reporters; then plan, boot, the VM, the end. Once the
/// run directory exists, every way the run ends writes every format. A
/// coverage run then reports the counters; its scenarios pass or fail as
/// in any run, and a coverage report that cannot be made is an
/// infrastructure error only when nothing failed.
fn run_once(args: &RunArgs) -> Result<i32> {
    let args = &with_cell(args)?;
    let inputs = inputs(args)?;
    let (k, guest) = prepare(&inputs)?;
    if args.coverage.on() {
        crate::coverage::check_ready(&k, &args.coverage.gcov)?;
    }
    let (report, run_dir) = run_on(args, &inputs, &k, &guest)?;
    let counted = matches!(report.status, RunStatus::Finished);
    let code = run_code(&report, &run_dir);
    if args.coverage.on() && counted {
        if let Err(e) = crate::coverage::run_report(&run_dir, &k, &args.coverage.gcov) {
            if matches!(code, Ok(exit::OK)) {
                return Err(e);
            }
            eprintln!("error: {e:#}");
        }
    }
    code
}

/// One run of the selected scenarios on a kernel already built (and
/// checked) with the guest driver built for it: a new run directory, its
/// reporters, plan, boot, the VM. Once the directory exists, every way the
/// run ends writes every format; an error has been recorded there too.
pub fn run_on(
    args: &RunArgs,
    inputs: &Inputs,
    k: &Kernel,
    guest: &Path,
) -> Result<(report::RunReport, PathBuf)> {
    let (mut engine, run_dir) = open_run(args)?;
    engine.emit(RunEvent::KernelReady(Box::new(built_kernel(k)?)));
    let end = match execute(args, inputs, k, guest, &mut engine, &run_dir) {
        Ok(end) => end,
        Err(e) => {
            let status = match crate::fail::exit_code(&e) {
                exit::BAD_INPUT => RunStatus::BadInput,
                exit::INTERRUPTED => RunStatus::Interrupted,
                _ => RunStatus::InfraError,
            };
            engine.abort(status, format!("{e:#}"))?;
            return Err(e);
        }
    };
    Ok((engine.finish(end)?, run_dir))
}

/// The exit code of a run that ended: its status, then its results.
fn run_code(report: &report::RunReport, run_dir: &Path) -> Result<i32> {
    match report.status {
        RunStatus::InfraError => Err(anyhow::anyhow!(
            "{}\nrun {}: no result is counted; the guest's records are kept in {}",
            report.error.as_deref().unwrap_or("infrastructure error"),
            report.run_id,
            run_dir.join("results.jsonl").display()
        )),
        RunStatus::Interrupted => Ok(exit::INTERRUPTED),
        _ if report.failed().next().is_some() || report.scenarios.is_empty() => {
            Ok(exit::TEST_FAILURE)
        }
        _ => Ok(exit::OK),
    }
}

/// `--cell NAME`: the matrix cell's kernel and THP mode replace the
/// arguments', and its kernel's device memory kinds when it names any.
fn with_cell(args: &RunArgs) -> Result<RunArgs> {
    let Some(name) = &args.cell else {
        return Ok(args.clone());
    };
    let c = crate::matrix::find(&crate::paths::absolute(&args.matrix), name)?;
    Ok(RunArgs {
        kernel: c.kernel_args,
        thp: vec![c.thp],
        device: if c.devices.is_empty() {
            args.device.clone()
        } else {
            c.devices
        },
        ..args.clone()
    })
}

/// What a run is asked to do, checked before anything is built.
pub struct Inputs {
    pub scenarios: Vec<LoadedScenario>,
    pub machine: Machine,
    /// The machine as `--machine` named it, for messages.
    pub machine_name: String,
    pub kernel: kernel::Request,
}

pub fn inputs(args: &RunArgs) -> Result<Inputs> {
    let repo = crate::paths::repo_root();
    let scenarios = load_scenarios(args)?;
    let mut machine = Machine::load(&repo.join("images/machines"), &args.machine)
        .map_err(|e| crate::fail::bad_input(e.to_string()))?;
    if let Some(n) = args.smp {
        machine.smp = n.max(1);
    }
    let mut kernel = kernel::Request::from_args(&args.kernel)?;
    if args.coverage.on() {
        kernel = kernel.with_coverage(&args.coverage.cover)?;
    }
    Ok(Inputs {
        scenarios,
        machine,
        machine_name: args.machine.clone(),
        kernel,
    })
}

/// A new run directory under the results directory (never reused), with
/// the standard reporters listening.
fn open_run(args: &RunArgs) -> Result<(Engine, PathBuf)> {
    let results = crate::paths::absolute(&args.results_dir);
    // On the (unlikely) clash of two ids made in the same second, make another.
    let mut attempt = 0;
    let (run_id, run_dir) = loop {
        let id = new_run_id();
        match report::write::create_run_dir(&results, &id) {
            Ok(dir) => break (id, dir),
            Err(_) if attempt < 5 && results.join(&id).exists() => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let start = RunStart {
        run_id,
        run_dir: run_dir.clone(),
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        host: host_facts(),
        default_thp: crate::plan::modes(&args.thp)
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(","),
        fail_on_skip: args.fail_on_skip,
    };
    let reporters = report::reporter::standard(&run_dir);
    Ok((Engine::start(start, reporters), run_dir))
}

/// The image QEMU boots from `k`'s build directory (`Machine::boot_image`:
/// vmlinux through the PVH entry when the kernel has CONFIG_PVH=y); an
/// error names the machine file's key when it is missing.
pub fn boot_image(k: &Kernel, machine: &Machine) -> Result<PathBuf> {
    let dotconfig = std::fs::read_to_string(k.obj_dir.join(".config")).unwrap_or_default();
    let (rel, key) = machine.boot_image(&dotconfig);
    let image = k.obj_dir.join(rel);
    if !image.is_file() {
        anyhow::bail!(
            "kernel image {} is missing: the machine file says `{key} = \"{}\"`; check it, or \
             rebuild with `cargo xtask kernel`",
            image.display(),
            rel.display()
        );
    }
    Ok(image)
}

/// The kernel (built or cached, checked) and the guest driver built
/// against its header.
pub fn prepare(inputs: &Inputs) -> Result<(Kernel, PathBuf)> {
    crate::deps::ensure(&[], false)?;
    let k = kernel::ensure(&inputs.kernel)?;
    // The machine file says where the boot image is inside the build.
    boot_image(&k, &inputs.machine)?;
    let t = Instant::now();
    let guest = crate::guest::build(&k.uapi_header())?;
    eprintln!(
        "guest: static driver ready in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    Ok((k, guest))
}

/// Plan, boot, VM: the run's stages once its directory exists.
fn execute(
    args: &RunArgs,
    inputs: &Inputs,
    k: &Kernel,
    guest: &Path,
    engine: &mut Engine,
    run_dir: &Path,
) -> Result<RunEnd> {
    let mut plan = plan_stage(
        crate::plan::modes(&args.thp),
        &crate::plan::devices(&args.device),
        inputs,
        k,
    )?;
    for i in &mut plan.instances {
        if let Some(secs) = args.instance_limits.get(&i.name) {
            i.scenario.timeout_ms = Some((secs * 1000.0) as u64);
        }
    }
    let boot = boot_stage(args, &inputs.machine, k, guest, &plan, run_dir)?;
    engine.plan(
        boot.planned(args, k, &plan.instances),
        boot.skipped(args, k, &plan.skipped),
    );
    let vm = engine
        .run_vm(&boot.config(args, &plan), boot.vm_start(&inputs.machine))
        .with_context(|| {
            format!(
                "the VM could not boot; results so far in {}",
                run_dir.display()
            )
        })?;
    let console_text =
        String::from_utf8_lossy(&std::fs::read(&boot.boot.console_log).unwrap_or_default())
            .into_owned();
    let records: Vec<Record> = vm.records.iter().map(|(_, r)| r.clone()).collect();
    // The kernel that booted must be the one that was built; otherwise
    // nothing this run saw is a result.
    let (identity, booted) = booted_as_built(k, &records, &console_text);
    Ok(engine.conclude(&vm, &console_text, identity, booted))
}

/// The kernel stage's facts as run.json keeps them.
pub fn built_kernel(k: &Kernel) -> Result<BuiltKernel> {
    Ok(serde_json::from_value(serde_json::to_value(k)?)?)
}

/// The scenario instances to run on this kernel, those skipped here, and
/// the THP modes.
pub struct RunPlan {
    pub modes: Vec<ThpMode>,
    /// A coverage build's counters, which the guest sends after each instance.
    pub coverage: Option<CoveragePlan>,
    pub instances: Vec<crate::plan::Instance>,
    pub skipped: Vec<crate::plan::Skipped>,
}

pub fn plan_stage(
    modes: Vec<ThpMode>,
    devices: &[DeviceKind],
    inputs: &Inputs,
    k: &Kernel,
) -> Result<RunPlan> {
    let dotconfig = std::fs::read_to_string(k.obj_dir.join(".config"))
        .context("reading the kernel's .config")?;
    let facts = KernelFacts::from_dotconfig(&k.release, &dotconfig);
    let machine = &inputs.machine;
    if let Some(d) = devices
        .iter()
        .find(|d| !crate::plan::machine_has(&machine.devices, **d))
    {
        return Err(crate::fail::bad_input(format!(
            "--device {}: machine `{}` has no device-{} memory (its devices: {}); \
             drop `{}` from --device, or use a machine file that has /dev/hmm_dmirror{}",
            d.as_str(),
            inputs.machine_name,
            d.as_str(),
            machine.devices.join(", "),
            d.as_str(),
            d.first_minor()
        )));
    }
    let (mut instances, mut skipped) =
        crate::plan::expand(&inputs.scenarios, &modes, devices, &facts);
    crate::plan::skip_missing_devices(
        &mut instances,
        &mut skipped,
        &machine.devices,
        &inputs.machine_name,
    );
    if let Some(why) = &k.hmm_tests_error {
        crate::plan::skip_unbuilt(&mut instances, &mut skipped, "hmm-tests", why);
    }
    Ok(RunPlan {
        modes,
        coverage: (!k.cover.is_empty()).then(|| CoveragePlan {
            objtree: k.obj_dir.display().to_string(),
            gcda: kernel::cover::gcda_names(&k.cover),
        }),
        instances,
        skipped,
    })
}

/// What the guest driver reads: the instances, in order, and its own
/// per-scenario limit.
pub fn guest_plan(plan: &RunPlan, scenario_timeout_ms: u64, machine: &Machine) -> Plan {
    Plan {
        default_thp: plan.modes[0],
        scenario_timeout_ms,
        mode: Mode::Run,
        devices: machine.devices.clone(),
        coverage: plan.coverage.clone(),
        stop_at_failure: false,
        scenarios: plan
            .instances
            .iter()
            .map(|i| PlannedScenario {
                name: i.name.clone(),
                scenario: i.scenario.clone(),
            })
            .collect(),
    }
}

/// Everything the VM needs: the image with the guest's plan, the
/// accelerator and its settings, the QEMU command, a private directory for
/// its sockets (removed when this is dropped).
pub struct BootSetup {
    pub boot: Boot,
    pub argv: Vec<String>,
    pub accel: crate::accel::Choice,
    pub settings: AccelSettings,
    pub run_dir: PathBuf,
    _private: tempfile::TempDir,
}

pub fn boot_stage(
    args: &RunArgs,
    machine: &Machine,
    k: &Kernel,
    guest: &Path,
    plan: &RunPlan,
    run_dir: &Path,
) -> Result<BootSetup> {
    let guest_plan = |accel: Accel| {
        let secs = args
            .scenario_timeout
            .unwrap_or(machine.accel(accel).scenario_timeout_s);
        Plan {
            stop_at_failure: args.stop_at_failure,
            ..guest_plan(plan, (secs * 1000.0) as u64, machine)
        }
    };
    let initrd = run_dir.join("initramfs.cpio");
    write_image(&initrd, guest, k, &guest_plan(Accel::Tcg))?;
    let private = tempfile::Builder::new()
        .prefix("hmmlab-")
        .tempdir()
        .context("creating a private socket directory")?;
    let coverage_log = match &plan.coverage {
        Some(_) => {
            let dir = run_dir.join(crate::coverage::DIR);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            Some(dir.join(crate::coverage::STREAM))
        }
        None => None,
    };
    let mut boot = Boot {
        accel: Accel::Tcg,
        kernel: boot_image(k, machine)?,
        initrd: initrd.clone(),
        console_log: run_dir.join("console.log"),
        results_log: run_dir.join("results.jsonl"),
        coverage_log,
        qmp_socket: private.path().join("qmp.sock"),
        append: kernel_append(args),
        interactive: false,
    };
    let choice = crate::accel::choose(args.accel, machine, || {
        let probe = Plan {
            mode: Mode::Probe,
            scenarios: vec![],
            ..guest_plan(Accel::Tcg)
        };
        let probe_img = private.path().join("probe.cpio");
        write_image(&probe_img, guest, k, &probe)?;
        Ok(Boot {
            initrd: probe_img,
            coverage_log: None,
            ..boot.clone()
        })
    })?;
    boot.accel = choice.accel;
    if boot.accel != Accel::Tcg && args.scenario_timeout.is_none() {
        // The plan's guest-side timeout follows the accelerator actually used.
        write_image(&initrd, guest, k, &guest_plan(boot.accel))?;
    }
    let argv = qemu::argv(machine, &boot);
    std::fs::write(
        run_dir.join("qemu-command.sh"),
        format!("#!/bin/sh\n{}\n", quote_argv(&argv)),
    )?;
    Ok(BootSetup {
        settings: machine.accel(boot.accel).clone(),
        boot,
        argv,
        accel: choice,
        run_dir: run_dir.to_path_buf(),
        _private: private,
    })
}

impl BootSetup {
    /// The guest's instances as the assembler expects them.
    fn planned(
        &self,
        args: &RunArgs,
        k: &Kernel,
        instances: &[crate::plan::Instance],
    ) -> Vec<Planned> {
        instances
            .iter()
            .map(|i| Planned {
                name: i.name.clone(),
                thp: i.thp,
                reproduce: crate::plan::reproduce(
                    args,
                    &k.identity,
                    &i.base,
                    &i.path,
                    i.thp,
                    i.device,
                    self.boot.accel,
                ),
                known: i
                    .scenario
                    .kselftest
                    .as_ref()
                    .map(|k| k.known_failure.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .chain(
                        i.scenario
                            .known_warning
                            .iter()
                            .map(|w| w.as_known_failure()),
                    )
                    .collect(),
                excluded: i
                    .scenario
                    .kselftest
                    .iter()
                    .flat_map(|k| &k.exclude)
                    .map(|x| {
                        let because = x.because.lines().next().unwrap_or("").trim();
                        format!("{} not run ({}): {because}", x.what(), x.args().join(" "))
                    })
                    .collect(),
            })
            .collect()
    }

    /// The instances skipped on the host, as final results.
    fn skipped(
        &self,
        args: &RunArgs,
        k: &Kernel,
        skipped: &[crate::plan::Skipped],
    ) -> Vec<ScenarioResult> {
        skipped
            .iter()
            .map(|s| {
                let line = crate::plan::reproduce(
                    args,
                    &k.identity,
                    &s.base,
                    &s.path,
                    s.thp,
                    s.device,
                    self.boot.accel,
                );
                ScenarioResult {
                    message: Some(s.reason.clone()),
                    not_applicable: s.not_applicable,
                    ..ScenarioResult::new(&s.name, Outcome::Skip, Some(s.thp), &line)
                }
            })
            .collect()
    }

    /// The host's limits: boot, each scenario (the guest's own plus slack),
    /// the whole run.
    fn config(&self, args: &RunArgs, plan: &RunPlan) -> RunConfig {
        let scenario_timeout = Duration::from_secs_f64(
            args.scenario_timeout
                .unwrap_or(self.settings.scenario_timeout_s),
        );
        RunConfig {
            argv: self.argv.clone(),
            run_dir: self.run_dir.clone(),
            results_log: self.boot.results_log.clone(),
            console_log: self.boot.console_log.clone(),
            qmp_socket: self.boot.qmp_socket.clone(),
            boot_timeout: Duration::from_secs_f64(
                args.boot_timeout.unwrap_or(self.settings.boot_timeout_s),
            ),
            scenario_timeouts: plan
                .instances
                .iter()
                .map(|s| {
                    let own = s.scenario.timeout_ms.map(Duration::from_millis);
                    (s.name.clone(), own.unwrap_or(scenario_timeout) + HOST_SLACK)
                })
                .collect(),
            default_scenario_timeout: scenario_timeout + HOST_SLACK,
            run_timeout: Duration::from_secs_f64(args.run_timeout),
        }
    }

    fn vm_start(&self, machine: &Machine) -> VmStart {
        VmStart {
            pid: 0,
            accel: self.boot.accel,
            accel_reason: self.accel.reason.clone(),
            qemu_command: quote_argv(&self.argv),
            qemu_version: qemu_version(&machine.qemu),
        }
    }
}

/// Did the guest boot the kernel `k` that was built? The guest's
/// /proc/version (from its hello) and the console's banner line, when the
/// log level shows it, must both be `k.banner`. Also returns what booted.
fn booted_as_built(
    k: &Kernel,
    records: &[Record],
    console_text: &str,
) -> (Result<(), String>, Option<String>) {
    let hello = records.iter().find_map(|r| match r {
        Record::Hello { proc_version, .. } => Some(proc_version.clone()),
        _ => None,
    });
    let booted = hello.clone().flatten().map(|v| v.trim_end().to_string());
    let checked = match &hello {
        Some(None) => Err("the guest could not read /proc/version".to_string()),
        Some(Some(v)) => hmmlab_harness::identity::booted(&k.banner, Some(v), console_text),
        None => hmmlab_harness::identity::booted(&k.banner, None, console_text),
    };
    let checked = checked.map_err(|why| {
        format!(
            "kernel build {} ({} {}): the guest did not boot the kernel that was built: {why}",
            k.key, k.source, k.release
        )
    });
    (checked, booted)
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
    image::write_initramfs(out, &guest_entries("init", guest, k, plan)?)
}

/// hmm-tests inside the image (under `hmmlab_proto::plan::BIN_DIR`).
pub const HMM_TESTS_PATH: &str = "hmmlab/bin/hmm-tests";

/// What every image holds: the guest driver at `driver_path`, the plan,
/// and hmm-tests. A tree whose hmm-tests did not build has none; its
/// kselftest scenario is skipped (see `plan::skip_unbuilt`).
pub fn guest_entries(
    driver_path: &'static str,
    guest: &Path,
    k: &Kernel,
    plan: &Plan,
) -> Result<Vec<Entry<'static>>> {
    let mut files = vec![
        Entry {
            path: driver_path,
            mode: 0o755,
            data: std::fs::read(guest).with_context(|| format!("reading {}", guest.display()))?,
        },
        Entry {
            path: PLAN_PATH.trim_start_matches('/'),
            mode: 0o644,
            data: serde_json::to_vec(plan)?,
        },
    ];
    if k.hmm_tests_error.is_none() {
        files.push(Entry {
            path: HMM_TESTS_PATH,
            mode: 0o755,
            data: std::fs::read(&k.hmm_tests)
                .with_context(|| format!("reading {}", k.hmm_tests.display()))?,
        });
    }
    Ok(files)
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

pub use hmmlab_harness::report::page::civil_utc;

/// `YYYYmmdd-HHMMSS-<4 hex>` in UTC: sortable, unique per process.
pub fn new_run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (y, m, d, rem) = civil_utc(now.as_secs());
    let tag = (now.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xFFFF;
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{tag:04x}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmm_tests_sits_where_the_driver_looks() {
        let bin_dir = hmmlab_proto::plan::BIN_DIR.trim_start_matches('/');
        assert_eq!(HMM_TESTS_PATH, format!("{bin_dir}/hmm-tests"));
    }

    #[test]
    fn run_ids_sort_and_differ() {
        let a = new_run_id();
        assert_eq!(a.len(), "20261124-143501-abcd".len(), "{a}");
        assert!(a.starts_with("20"), "{a}");
    }
}
