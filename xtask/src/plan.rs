//! From loaded scenario files to the instances one VM boot runs: each
//! scenario is resolved against the kernel under test (`requires`, per-step
//! `variant`s) and run once per THP mode of the run, unless it pins a mode,
//! and once per kind of device memory of the run, unless it pins one: a
//! scenario that pins its kind runs on that kind in every run, whatever
//! kinds the run asks for (its subject exists only there; leaving it out
//! of a default run would hide it), or is skipped, with the reason, on a
//! machine without that kind of memory (`plan_stage()` in run.rs).
//! An instance is named `<scenario>@<thp mode>` on device-private memory
//! (the names runs had before the device axis, so `compare` still pairs
//! them) and `<scenario>@<thp mode>@coherent` on device-coherent memory.
//! A kselftest is not on the device axis: the binary picks its devices.

use std::path::{Path, PathBuf};

use hmmlab_harness::scenario::when::{resolve, version_excludes, KernelFacts};
use hmmlab_harness::scenario::LoadedScenario;
use hmmlab_proto::scenario::{DeviceKind, ThpMode};
use hmmlab_proto::Scenario;

use crate::cli::{ConfigBase, DeviceChoice, RunArgs, ThpChoice};
use crate::shell::quote_argv;

pub struct Instance {
    pub name: String,
    pub base: String,
    pub path: PathBuf,
    pub thp: ThpMode,
    /// `None` for a kselftest.
    pub device: Option<DeviceKind>,
    /// Resolved for this kernel, `thp` set: what the guest runs.
    pub scenario: Scenario,
}

pub struct Skipped {
    pub name: String,
    pub base: String,
    pub path: PathBuf,
    pub thp: ThpMode,
    pub device: Option<DeviceKind>,
    pub reason: String,
    /// The scenario's `[requires] kernel` excludes this kernel's version:
    /// it does not apply here (`when::version_excludes`), which is not a skip.
    pub not_applicable: bool,
}

pub fn thp(c: ThpChoice) -> ThpMode {
    match c {
        ThpChoice::Always => ThpMode::Always,
        ThpChoice::Madvise => ThpMode::Madvise,
        ThpChoice::Never => ThpMode::Never,
    }
}

/// The run's THP modes, in the order given, without repeats.
pub fn modes(choices: &[ThpChoice]) -> Vec<ThpMode> {
    first_of_each(choices.iter().copied().map(thp))
}

pub fn device(c: DeviceChoice) -> DeviceKind {
    match c {
        DeviceChoice::Private => DeviceKind::Private,
        DeviceChoice::Coherent => DeviceKind::Coherent,
    }
}

/// The run's kinds of device memory, in the order given, without repeats.
pub fn devices(choices: &[DeviceChoice]) -> Vec<DeviceKind> {
    first_of_each(choices.iter().copied().map(device))
}

/// The items in order, each only the first time it comes.
fn first_of_each<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for x in items {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// An instance's name: see the module comment.
pub fn instance_name(base: &str, thp: ThpMode, device: Option<DeviceKind>) -> String {
    match device {
        Some(DeviceKind::Coherent) => format!("{base}@{}@coherent", thp.as_str()),
        _ => format!("{base}@{}", thp.as_str()),
    }
}

/// A scenario that pins a device runs on it alone, whether the run's
/// `devices` include it or not; the others run on each of `devices`.
pub fn expand(
    scenarios: &[LoadedScenario],
    modes: &[ThpMode],
    devices: &[DeviceKind],
    facts: &KernelFacts,
) -> (Vec<Instance>, Vec<Skipped>) {
    let mut run = Vec::new();
    let mut skipped = Vec::new();
    for s in scenarios {
        let pinned = s.scenario.thp.map(|m| vec![m]);
        let kinds: Vec<Option<DeviceKind>> = if s.scenario.kselftest.is_some() {
            vec![None]
        } else if let Some(pinned) = s.scenario.device {
            vec![Some(pinned)]
        } else {
            devices.iter().copied().map(Some).collect()
        };
        for &m in pinned.as_deref().unwrap_or(modes) {
            for &d in &kinds {
                let name = instance_name(&s.name, m, d);
                match resolve(&s.scenario, facts, d) {
                    Ok(r) => run.push(Instance {
                        name,
                        base: s.name.clone(),
                        path: s.path.clone(),
                        thp: m,
                        device: d,
                        scenario: in_mode(r, m),
                    }),
                    Err(reason) => skipped.push(Skipped {
                        name,
                        base: s.name.clone(),
                        path: s.path.clone(),
                        thp: m,
                        device: d,
                        reason,
                        not_applicable: s
                            .scenario
                            .requires
                            .as_ref()
                            .is_some_and(|r| version_excludes(r, facts)),
                    }),
                }
            }
        }
    }
    (run, skipped)
}

/// A resolved scenario as it runs in THP mode `m`: the mode set, only the
/// known failures and exclusions of that mode, and the exclusions passed
/// to the selftest as its arguments.
fn in_mode(mut s: Scenario, m: ThpMode) -> Scenario {
    s.thp = Some(m);
    if let Some(ks) = &mut s.kselftest {
        ks.known_failure.retain(|f| f.thp.is_none_or(|t| t == m));
        for f in &mut ks.known_failure {
            f.thp = None;
        }
        ks.exclude.retain(|x| x.thp.is_none_or(|t| t == m));
        for x in &mut ks.exclude {
            x.thp = None;
            ks.args.extend(x.args());
        }
        // A known failure of a case that is not run cannot occur.
        let excluded = ks.exclude.clone();
        ks.known_failure.retain(|f| {
            f.case
                .as_deref()
                .is_none_or(|c| !excluded.iter().any(|x| x.covers(c)))
        });
    }
    s
}

/// Move the kselftest instances that run `binary` to the skipped ones,
/// with `why`: the binary could not be built for this kernel.
pub fn skip_unbuilt(run: &mut Vec<Instance>, skipped: &mut Vec<Skipped>, binary: &str, why: &str) {
    let (gone, kept): (Vec<Instance>, Vec<Instance>) =
        std::mem::take(run).into_iter().partition(|i| {
            i.scenario
                .kselftest
                .as_ref()
                .is_some_and(|k| k.binary == binary)
        });
    *run = kept;
    skipped.extend(gone.into_iter().map(|i| Skipped {
        name: i.name,
        base: i.base,
        path: i.path,
        thp: i.thp,
        device: i.device,
        reason: why.to_string(),
        not_applicable: false,
    }));
}

/// Whether the machine file's devices include test_hmm's first device of
/// kind `d` (`/dev/hmm_dmirror<first_minor>`).
pub fn machine_has(devices: &[String], d: DeviceKind) -> bool {
    let name = format!("hmm_dmirror{}", d.first_minor());
    devices.contains(&name)
}

/// Move the instances on a kind of device memory the machine lacks to the
/// skipped ones, with the reason: they can only be scenarios that pin that
/// kind (a run cannot ask for a kind its machine lacks: `plan_stage()`).
pub fn skip_missing_devices(
    run: &mut Vec<Instance>,
    skipped: &mut Vec<Skipped>,
    devices: &[String],
    machine: &str,
) {
    let (gone, kept): (Vec<Instance>, Vec<Instance>) = std::mem::take(run)
        .into_iter()
        .partition(|i| i.device.is_some_and(|d| !machine_has(devices, d)));
    *run = kept;
    skipped.extend(gone.into_iter().map(|i| {
        let d = i.device.expect("partitioned on a device");
        Skipped {
            reason: format!(
                "pinned to device-{} memory (`device = \"{}\"`), which machine `{machine}` \
                 does not have (its devices: {}); use a machine file with \
                 /dev/hmm_dmirror{}",
                d.as_str(),
                d.as_str(),
                devices.join(", "),
                d.first_minor()
            ),
            name: i.name,
            base: i.base,
            path: i.path,
            thp: i.thp,
            device: i.device,
            not_applicable: false,
        }
    }));
}

/// A one-line command that rebuilds the same kernel and reruns one scenario
/// in one THP mode on one kind of device memory. `identity` is the built kernel's source identity: the
/// command pins the Debian package version or the clean tree's commit, so
/// it rebuilds exactly this kernel after an upgrade or a new commit too.
pub fn reproduce(
    args: &RunArgs,
    identity: &str,
    base: &str,
    path: &Path,
    thp: ThpMode,
    device: Option<DeviceKind>,
    accel: hmmlab_harness::machine::Accel,
) -> String {
    let abs = |p: &Path| crate::paths::absolute(p).display().to_string();
    let kernel = crate::kernel::source::Source::pinned_spec(identity)
        .unwrap_or_else(|| args.kernel.kernel.clone());
    let mut v: Vec<String> = vec![
        "cargo".into(),
        "xtask".into(),
        "run-scenarios".into(),
        "--kernel".into(),
        kernel,
    ];
    if let Some(s) = &args.kernel.series {
        v.extend(["--patches".into(), abs(s)]);
    }
    for p in &args.kernel.patches {
        v.extend(["--patch".into(), abs(p)]);
    }
    for f in &args.kernel.fragments {
        v.extend(["--config-fragment".into(), abs(f)]);
    }
    // tinyconfig is the default (`--config-base`).
    if args.kernel.config_base == ConfigBase::Debian {
        v.extend(["--config-base".into(), "debian".into()]);
    }
    v.extend(["--thp".into(), thp.as_str().into()]);
    // Device-private memory is the default (`--device`).
    if let Some(d @ DeviceKind::Coherent) = device {
        v.extend(["--device".into(), d.as_str().into()]);
    }
    v.extend(["--accel".into(), accel.as_str().into()]);
    for a in &args.append {
        v.extend(["--append".into(), a.clone()]);
    }
    if args.panic_on_warn {
        v.push("--panic-on-warn".into());
    }
    if args.fail_on_skip {
        v.push("--fail-on-skip".into());
    }
    // A coverage build is another kernel: the line rebuilds that one.
    if !args.coverage.cover.is_empty() {
        v.extend(["--cover".into(), args.coverage.cover.join(",")]);
    } else if args.coverage.coverage {
        v.push("--coverage".into());
    }
    if args.coverage.on() && args.coverage.gcov != "gcov" {
        v.extend(["--gcov".into(), args.coverage.gcov.clone()]);
    }
    if args.scenario_files.iter().any(|f| abs(f) == abs(path)) {
        v.extend(["--scenario-file".into(), abs(path)]);
    } else {
        v.extend([
            "--scenario-dir".into(),
            abs(&args.scenario_dir),
            "-s".into(),
            base.into(),
        ]);
    }
    quote_argv(&v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmmlab_harness::scenario::parse_str;

    fn run_args(argv: &[&str]) -> RunArgs {
        use clap::Parser;
        let mut all = vec!["cargo xtask", "run-scenarios"];
        all.extend_from_slice(argv);
        match crate::cli::Cli::try_parse_from(all).unwrap().task {
            crate::cli::Task::RunScenarios(a) => *a,
            t => panic!("{t:?}"),
        }
    }

    /// The reproduce line of empty-anon@madvise on 7.3.4, run with `argv`.
    fn line(argv: &[&str]) -> String {
        reproduce(
            &run_args(argv),
            "debian:linux-source-7.3=7.3.4-1~bpo13+1",
            "empty-anon",
            Path::new("scenarios/empty-anon.toml"),
            ThpMode::Madvise,
            None,
            hmmlab_harness::machine::Accel::Tcg,
        )
    }

    #[test]
    fn a_reproduce_line_keeps_a_debian_config_base() {
        let distro = line(&["--config-base", "debian"]);
        assert!(
            distro.contains("--kernel 'debian:7.3=7.3.4-1~bpo13+1'")
                && distro.contains("--config-base debian --thp madvise"),
            "{distro}"
        );
        // tinyconfig is the default, and the lines made before say nothing.
        assert!(!line(&[]).contains("--config-base"));
    }

    #[test]
    fn a_reproduce_line_rebuilds_a_coverage_kernel() {
        assert!(line(&["--coverage"]).contains(" --coverage "));
        let more = line(&[
            "--cover",
            "mm/migrate.c,lib/test_hmm.c",
            "--gcov",
            "gcov-12",
        ]);
        assert!(
            more.contains(" --cover mm/migrate.c,lib/test_hmm.c --gcov gcov-12 ")
                && !more.contains("--coverage"),
            "{more}"
        );
        let plain = line(&[]);
        assert!(
            !plain.contains("--cover") && !plain.contains("--gcov"),
            "{plain}"
        );
    }

    fn loaded(name: &str, text: &str) -> LoadedScenario {
        let path = PathBuf::from(format!("/s/{name}.toml"));
        LoadedScenario {
            name: name.into(),
            scenario: parse_str(&path, text).unwrap(),
            path,
        }
    }

    const BODY: &str =
        "[mapping]\nkind = \"anon-private\"\npages = 4\n[[step]]\nop = \"cpu-read\"\n";

    #[test]
    fn expands_per_mode_unless_pinned_and_skips_unmet_requirements() {
        let facts = KernelFacts::from_dotconfig("6.12.117", "CONFIG_A=y\n");
        let s = vec![
            loaded("free", &format!("description = \"d\"\n{BODY}")),
            loaded(
                "pinned",
                &format!("description = \"d\"\nthp = \"never\"\n{BODY}"),
            ),
            loaded(
                "later",
                &format!("description = \"d\"\n[requires]\nkernel = \">=6.13\"\n{BODY}"),
            ),
            loaded(
                "needs-b",
                &format!("description = \"d\"\n[requires]\nconfig = \"CONFIG_B\"\n{BODY}"),
            ),
        ];
        let (run, skipped) = expand(
            &s,
            &[ThpMode::Madvise, ThpMode::Always],
            &[DeviceKind::Private],
            &facts,
        );
        let names: Vec<&str> = run.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, vec!["free@madvise", "free@always", "pinned@never"]);
        assert!(run.iter().all(|i| i.scenario.thp == Some(i.thp)));
        let sk: Vec<&str> = skipped.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            sk,
            vec![
                "later@madvise",
                "later@always",
                "needs-b@madvise",
                "needs-b@always"
            ]
        );
        assert!(skipped[0].reason.contains("6.13"), "{}", skipped[0].reason);
        // A kernel that is too old: not applicable; a config not set: a skip.
        let na: Vec<bool> = skipped.iter().map(|i| i.not_applicable).collect();
        assert_eq!(na, vec![true, true, false, false]);
    }

    /// A scenario on the device axis and one pinned to coherent memory.
    fn free_and_coherent() -> Vec<LoadedScenario> {
        vec![
            loaded("free", &format!("description = \"d\"\n{BODY}")),
            loaded(
                "coh",
                &format!("description = \"d\"\ndevice = \"coherent\"\n{BODY}"),
            ),
        ]
    }

    #[test]
    fn expands_per_device_unless_pinned() {
        let facts = KernelFacts::from_dotconfig("7.3.4", "");
        let s = free_and_coherent();
        let names = |devices: &[DeviceKind]| -> Vec<(String, Option<DeviceKind>)> {
            let (run, _) = expand(&s, &[ThpMode::Madvise], devices, &facts);
            assert!(run.iter().all(|i| i.scenario.device == i.device));
            run.into_iter().map(|i| (i.name, i.device)).collect()
        };
        use DeviceKind::*;
        assert_eq!(
            names(&DeviceKind::ALL),
            vec![
                ("free@madvise".to_string(), Some(Private)),
                ("free@madvise@coherent".to_string(), Some(Coherent)),
                ("coh@madvise@coherent".to_string(), Some(Coherent)),
            ]
        );
        // A scenario pinned to a device the run does not ask for runs on it
        // all the same.
        assert_eq!(
            names(&[Private]),
            vec![
                ("free@madvise".to_string(), Some(Private)),
                ("coh@madvise@coherent".to_string(), Some(Coherent)),
            ]
        );
        assert_eq!(
            names(&[Coherent]),
            vec![
                ("free@madvise@coherent".to_string(), Some(Coherent)),
                ("coh@madvise@coherent".to_string(), Some(Coherent)),
            ]
        );
    }

    #[test]
    fn pinned_kinds_the_machine_lacks_are_skipped_with_the_reason() {
        let facts = KernelFacts::from_dotconfig("7.3.4", "");
        let s = free_and_coherent();
        let (mut run, mut skipped) =
            expand(&s, &[ThpMode::Madvise], &[DeviceKind::Private], &facts);
        let private_only = vec!["hmm_dmirror0".to_string(), "hmm_dmirror1".to_string()];
        assert!(machine_has(&private_only, DeviceKind::Private));
        assert!(!machine_has(&private_only, DeviceKind::Coherent));
        skip_missing_devices(&mut run, &mut skipped, &private_only, "x86_64-private");
        assert_eq!(
            run.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
            vec!["free@madvise"]
        );
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].name, "coh@madvise@coherent");
        assert!(!skipped[0].not_applicable);
        assert!(
            skipped[0].reason.starts_with(
                "pinned to device-coherent memory (`device = \"coherent\"`), which machine \
                 `x86_64-private` does not have (its devices: hmm_dmirror0, hmm_dmirror1)"
            ),
            "{}",
            skipped[0].reason
        );
        // A machine with both kinds keeps it.
        let (mut run, mut skipped) =
            expand(&s, &[ThpMode::Madvise], &[DeviceKind::Private], &facts);
        let both: Vec<String> = (0..4).map(|n| format!("hmm_dmirror{n}")).collect();
        skip_missing_devices(&mut run, &mut skipped, &both, "x86_64");
        assert_eq!(run.len(), 2);
        assert!(skipped.is_empty());
    }

    #[test]
    fn exclusions_of_the_kernel_and_mode_become_the_selftests_arguments() {
        let s = vec![loaded(
            "kst",
            "description = \"d\"\nkind = \"kselftest\"\n[kselftest]\nbinary = \"hmm-tests\"\n\
             args = [\"-T\", \"bench\"]\n\
             [[kselftest.exclude]]\nvariant = \"coh\"\nthp = \"always\"\nwhen = { kernel = \">=7.2\" }\nbecause = \"x\"\n\
             [[kselftest.exclude]]\ntest = \"excl\"\nbecause = \"y\"\n",
        )];
        let args = |release: &str| -> Vec<(String, Vec<String>)> {
            let facts = KernelFacts::from_dotconfig(release, "");
            let modes = [ThpMode::Madvise, ThpMode::Always];
            let (run, _) = expand(&s, &modes, &[DeviceKind::Private], &facts);
            run.iter()
                .map(|i| {
                    let ks = i.scenario.kselftest.as_ref().unwrap();
                    assert!(ks
                        .exclude
                        .iter()
                        .all(|x| x.thp.is_none() && x.when.is_none()));
                    (i.name.clone(), ks.args.clone())
                })
                .collect()
        };
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            args("7.3.4"),
            vec![
                ("kst@madvise".into(), v(&["-T", "bench", "-T", "excl"])),
                (
                    "kst@always".into(),
                    v(&["-T", "bench", "-V", "coh", "-T", "excl"])
                ),
            ]
        );
        assert_eq!(args("6.12.118")[1].1, v(&["-T", "bench", "-T", "excl"]));
    }

    #[test]
    fn a_known_failure_of_an_excluded_case_is_dropped() {
        let s = vec![loaded(
            "kst",
            "description = \"d\"\nkind = \"kselftest\"\n[kselftest]\nbinary = \"hmm-tests\"\n\
             [[kselftest.exclude]]\ntest = \"excl\"\nwhen = { kernel = \"6.1\" }\nbecause = \"x\"\n\
             [[kselftest.known_failure]]\ncase = \"f.v.excl\"\nbecause = \"y\"\n\
             [[kselftest.known_failure]]\ncase = \"f.v.other\"\nbecause = \"z\"\n",
        )];
        let known = |release: &str| -> Vec<String> {
            let facts = KernelFacts::from_dotconfig(release, "");
            let (run, _) = expand(&s, &[ThpMode::Madvise], &[DeviceKind::Private], &facts);
            let ks = run[0].scenario.kselftest.as_ref().unwrap();
            ks.known_failure
                .iter()
                .filter_map(|f| f.case.clone())
                .collect()
        };
        assert_eq!(known("6.1.192"), vec!["f.v.other"]);
        assert_eq!(known("6.12.118"), vec!["f.v.excl", "f.v.other"]);
    }

    #[test]
    fn a_known_failure_of_one_thp_mode_goes_only_to_that_instance() {
        let facts = KernelFacts::from_dotconfig("6.12.117", "");
        let s = vec![loaded(
            "kst",
            "description = \"d\"\nkind = \"kselftest\"\n[kselftest]\nbinary = \"hmm-tests\"\n\
             [[kselftest.known_failure]]\ncase = \"a.always\"\nthp = \"always\"\nbecause = \"x\"\n\
             [[kselftest.known_failure]]\ncase = \"a.any\"\nbecause = \"y\"\n",
        )];
        let (run, _) = expand(
            &s,
            &[ThpMode::Madvise, ThpMode::Always],
            &[DeviceKind::Private],
            &facts,
        );
        let cases: Vec<(String, Vec<String>)> = run
            .iter()
            .map(|i| {
                let ks = i.scenario.kselftest.as_ref().unwrap();
                assert!(ks.known_failure.iter().all(|f| f.thp.is_none()));
                let names = ks.known_failure.iter().filter_map(|f| f.case.clone());
                (i.name.clone(), names.collect())
            })
            .collect();
        assert_eq!(
            cases,
            vec![
                ("kst@madvise".to_string(), vec!["a.any".to_string()]),
                (
                    "kst@always".to_string(),
                    vec!["a.always".to_string(), "a.any".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn an_unbuilt_binary_skips_only_its_kselftest_instances() {
        let facts = KernelFacts::from_dotconfig("6.12.117", "");
        let s = vec![
            loaded("steps", &format!("description = \"d\"\n{BODY}")),
            loaded(
                "kst",
                "description = \"d\"\nkind = \"kselftest\"\n[kselftest]\nbinary = \"hmm-tests\"\n",
            ),
        ];
        let (mut run, mut skipped) = expand(
            &s,
            &[ThpMode::Madvise, ThpMode::Always],
            &DeviceKind::ALL,
            &facts,
        );
        assert_eq!(run.len(), 6, "a kselftest is not on the device axis");
        skip_unbuilt(&mut run, &mut skipped, "other", "x");
        assert_eq!(run.len(), 6);
        skip_unbuilt(
            &mut run,
            &mut skipped,
            "hmm-tests",
            "hmm-tests did not build",
        );
        let names: Vec<&str> = run.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "steps@madvise",
                "steps@madvise@coherent",
                "steps@always",
                "steps@always@coherent"
            ]
        );
        let sk: Vec<(&str, &str)> = skipped
            .iter()
            .map(|i| (i.name.as_str(), i.reason.as_str()))
            .collect();
        assert_eq!(
            sk,
            vec![
                ("kst@madvise", "hmm-tests did not build"),
                ("kst@always", "hmm-tests did not build")
            ]
        );
    }

    #[test]
    fn modes_keep_order_without_repeats() {
        use ThpChoice::*;
        assert_eq!(
            modes(&[Always, Madvise, Always]),
            vec![ThpMode::Always, ThpMode::Madvise]
        );
    }
}
