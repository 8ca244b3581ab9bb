//! The whole command line, declared in one place. Doc comments are the help.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

/// The kernel `run-scenarios` and the tests use when none is named.
pub const DEFAULT_KERNEL: &str = "debian:7.3";

/// hmmlab: build a kernel, boot it under QEMU and run device-memory
/// migration scenarios against lib/test_hmm.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version)]
pub struct Cli {
    #[command(subcommand)]
    pub task: Task,
}

#[derive(Debug, Subcommand)]
pub enum Task {
    /// Build (or find in the cache) the kernel and its hmm-tests selftest.
    Kernel(KernelTaskArgs),
    /// Build the static guest driver against a kernel tree's uapi header.
    Guest(KernelArgs),
    /// Build everything and run scenarios in one VM boot; results go to results/<run-id>/.
    RunScenarios(Box<RunArgs>),
    /// `run-scenarios --coverage`: the default kernel and suite (unless
    /// told otherwise), built with gcov counters in mm/migrate_device.c
    /// (and --cover FILES); per scenario instance, the lines and branches
    /// it ran, in results/<run-id>/coverage/.
    Coverage(Box<RunArgs>),
    /// Parse a saved console log and classify it (no VM needed).
    Parse(ParseArgs),
    /// Check the scenario files and report every problem (no VM needed).
    Check(CheckArgs),
    /// Install what the tests need, build the default kernel, run the test suite (nextest).
    Test(TestArgs),
    /// Check (and as root, install) the Debian packages hmmlab needs.
    Deps(DepsArgs),
    /// List the kernel source packages Debian's suites carry (debian:SERIES),
    /// which versions and where, and which are already fetched into the cache.
    Sources(SourcesArgs),
    /// Find the first commit of a kernel git tree (`--kernel path:DIR`) where a
    /// scenario fails, in a private clone; DIR is never touched.
    Bisect(BisectArgs),
    /// One step of `bisect` (run by `git bisect run`): build the clone's HEAD,
    /// run the scenario several times; exit 0 good, 1 bad, 125 skip.
    #[command(hide = true)]
    BisectStep(BisectStepArgs),
    /// Boot the same kernel and image with an interactive busybox shell on
    /// the console (the guest driver, plan and hmm-tests are in /hmmlab).
    Shell(ShellArgs),
    /// Run every cell (or a filtered subset) of the matrix file: kernels ×
    /// config variants × THP modes, N cells at once, then a cells × scenarios table.
    Matrix(MatrixArgs),
    /// Time `run-scenarios` over several runs: median, min and max of the wall
    /// time, QEMU start → guest driver, and QEMU start → first scenario.
    Bench(BenchArgs),
    /// Compare two result sets scenario by scenario: new failures, fixes, skips,
    /// missing scenarios, and timing changes beyond run-to-run noise. Two
    /// mutation runs (results/mutate-<id>): both scores, and the mutants B
    /// newly misses or newly detects.
    Compare(CompareArgs),
    /// Coverage reports from gcov counters: coverage.info (lcov),
    /// coverage.json, an HTML page per file, a table per function on stdout.
    #[command(hide = true)]
    CoverageReport(CoverageReportArgs),
    /// Write a run directory's report.html again from its run.json, as the
    /// run itself writes it.
    #[command(hide = true)]
    ReportHtml(ReportHtmlArgs),
    /// Write a matrix directory's matrix.html again from its cells'
    /// run.json, as the matrix itself writes it.
    #[command(hide = true)]
    MatrixHtml(MatrixHtmlArgs),
    /// Mutants of the code under test: small plausible changes of
    /// mm/migrate_device.c (or --file), made from its C syntax tree, each a
    /// unified diff `patch -p1` applies. `--list` lists them; nothing is built.
    Mutate(Box<MutateArgs>),
    /// The kernel build cache: every build with its source, configuration,
    /// disk use and last use, and the disk use per area (`cache`); `cache
    /// prune` removes least recently used builds, `cache remove KEY` one.
    Cache(CacheArgs),
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    /// List as JSON (sizes in bytes, times in seconds since 1970).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<CacheAction>,
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// List the cache (the default).
    List,
    /// Remove builds, least recently used first, never one a running
    /// process uses; then the source trees no build refers to any more.
    Prune(PruneArgs),
    /// Remove one build (its key, or a unique prefix of it).
    Remove { key: String },
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove until the cache is at most this size (`30G`, `500M`; binary
    /// units). Without it and without --older-than: $HMMLAB_CACHE_MAX, else 30G.
    #[arg(long)]
    pub max_size: Option<String>,
    /// Remove every build not used for this many days.
    #[arg(long)]
    pub older_than: Option<f64>,
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct SourcesArgs {
    /// Refresh the package lists from the mirror first (otherwise the lists
    /// fetched last time are used, and fetched once if there are none).
    #[arg(long)]
    pub update: bool,
    /// Only these series (e.g. 7.3); default: every linux-source-* package.
    pub series: Vec<String>,
}

/// Which kernel to build and how.
#[derive(Debug, Args, Clone)]
pub struct KernelArgs {
    /// Kernel source: `debian:SERIES` (Debian's linux-source-SERIES from any
    /// suite, e.g. debian:7.3, debian:6.12; pin a version with
    /// `debian:7.3=7.3.4-1~bpo13+1`), `tarball:FILE` (a kernel source
    /// tarball), or `path:DIR` (your own tree; built out of tree, never modified).
    #[arg(long, default_value = DEFAULT_KERNEL, value_name = "SOURCE")]
    pub kernel: String,
    /// A patch to apply (repeatable; applied in the order given, after --patches).
    #[arg(long = "patch", value_name = "FILE")]
    pub patches: Vec<PathBuf>,
    /// A quilt-style directory: its `series` file lists the patches in order.
    #[arg(long = "patches", value_name = "DIR")]
    pub series: Option<PathBuf>,
    /// Extra config fragment merged after images/configs/*.config (repeatable).
    #[arg(long = "config-fragment", value_name = "FILE")]
    pub fragments: Vec<PathBuf>,
    /// The configuration the fragments are merged over: `tinyconfig` (the
    /// smallest kernel; images/configs/ adds what hmmlab needs) or `debian`
    /// (Debian's own configuration of the series, from its
    /// linux-config-SERIES package of the same version as the source, with
    /// modules off; needs a `debian:SERIES` kernel). The `distro` matrix
    /// cells add images/configs/variants/distro.config, which turns off
    /// debug info.
    #[arg(long, value_enum, default_value = "tinyconfig", value_name = "BASE")]
    pub config_base: ConfigBase,
    /// Parallel make jobs (default: number of CPUs).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

/// What a kernel build's configuration starts from, before the fragments.
#[derive(Debug, Clone, Copy, Default, ValueEnum, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigBase {
    /// `make tinyconfig`.
    #[default]
    Tinyconfig,
    /// Debian's config.amd64_none_amd64 of the kernel's series and version, modules off.
    Debian,
}

#[derive(Debug, Args)]
pub struct KernelTaskArgs {
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Only configure (base, fragments, olddefconfig and the check that every
    /// fragment symbol kept its value) and print where the .config is;
    /// nothing is compiled.
    #[arg(long)]
    pub config_only: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM when a probe boot shows it works, else TCG.
    Auto,
    Kvm,
    Tcg,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, PartialOrd, Ord)]
pub enum ThpChoice {
    Always,
    Madvise,
    Never,
}

/// lib/test_hmm's kinds of device memory (`private`: /dev/hmm_dmirror0/1,
/// `coherent`: /dev/hmm_dmirror2/3).
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DeviceChoice {
    Private,
    Coherent,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Run a cell of the matrix file: its kernel, patches, config fragments
    /// and THP mode replace --kernel, --patch, --config-fragment and --thp.
    #[arg(long, value_name = "NAME")]
    pub cell: Option<String>,
    /// The matrix file for --cell.
    #[arg(long, default_value = "matrix.toml", value_name = "FILE")]
    pub matrix: PathBuf,
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Scenario to run (repeatable; default: every file in the scenario directory).
    #[arg(long = "scenario", short = 's', value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Directory of scenario files.
    #[arg(long, default_value = "scenarios", value_name = "DIR")]
    pub scenario_dir: PathBuf,
    /// Extra scenario file to run (repeatable), in addition to --scenario.
    #[arg(long = "scenario-file", value_name = "FILE")]
    pub scenario_files: Vec<PathBuf>,
    /// THP modes: every scenario that does not pin one runs once per mode,
    /// as `<scenario>@<mode>` (comma-separated or repeated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "madvise,always"
    )]
    pub thp: Vec<ThpChoice>,
    /// Kinds of device memory: every scenario that does not pin one runs on
    /// each, `private` as `<scenario>@<mode>`, `coherent` as
    /// `<scenario>@<mode>@coherent` (comma-separated or repeated).
    /// Device-private only by default: 7.3's device-coherent THPs hit the
    /// kernel problems README.md's Findings lists.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "private")]
    pub device: Vec<DeviceChoice>,
    /// Accelerator.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: AccelChoice,
    /// Machine description: a name from images/machines/ or a path to a .toml file.
    #[arg(long, default_value = "x86_64", value_name = "NAME")]
    pub machine: String,
    /// Seconds from QEMU start until the guest driver says hello (default: machine file).
    #[arg(long, value_name = "SECS")]
    pub boot_timeout: Option<f64>,
    /// Seconds one scenario may take (default: machine file).
    #[arg(long, value_name = "SECS")]
    pub scenario_timeout: Option<f64>,
    /// Seconds per scenario instance (`name@mode`), over its own limit and
    /// --scenario-timeout: mutate's limits from the unmutated run.
    #[arg(skip)]
    pub instance_limits: BTreeMap<String, f64>,
    /// vCPUs of the VM (default: the machine file's `smp`).
    #[arg(long, value_name = "N")]
    pub smp: Option<u32>,
    /// Seconds the whole VM run may take before it is stopped.
    #[arg(long, value_name = "SECS", default_value_t = 1800.0)]
    pub run_timeout: f64,
    /// Run everything N times (N boots) and report how often each scenario
    /// passed: to tell a flaky failure from a broken one.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: usize,
    /// Make every skip a failure: a skipped scenario instance, and a
    /// selftest that skipped any of its cases (exit 1, in every format).
    #[arg(long)]
    pub fail_on_skip: bool,
    /// Stop at the first scenario instance that fails: the guest reports
    /// the rest skipped ("not run: … failed first") and powers off.
    #[arg(long)]
    pub stop_at_failure: bool,
    /// Boot with panic_on_warn=1: a kernel WARNING panics the guest at once.
    #[arg(long)]
    pub panic_on_warn: bool,
    /// Where run directories are created.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results_dir: PathBuf,
    /// Extra kernel command-line words (e.g. panic_on_warn=1).
    #[arg(long = "append", value_name = "WORDS")]
    pub append: Vec<String>,
    #[command(flatten)]
    pub coverage: CoverageArgs,
}

/// Coverage of the code under test, per scenario instance.
#[derive(Debug, Args, Clone)]
pub struct CoverageArgs {
    /// Build the kernel with gcov counters in mm/migrate_device.c (the
    /// `coverage` config variant, a build of its own) and write, per
    /// scenario instance, the lines and branches it ran to
    /// results/<run-id>/coverage/: coverage.info (lcov), coverage.json,
    /// html/index.html, and a table per function on stdout.
    #[arg(long)]
    pub coverage: bool,
    /// More source files to count, besides mm/migrate_device.c (paths from
    /// the top of the kernel tree, comma-separated or repeated, e.g.
    /// mm/migrate.c,lib/test_hmm.c). Implies --coverage.
    #[arg(long, value_delimiter = ',', value_name = "FILES")]
    pub cover: Vec<String>,
    /// The gcov of the compiler that builds the kernel (e.g. gcov-12).
    #[arg(long, default_value = "gcov", value_name = "PROGRAM")]
    pub gcov: String,
}

impl Default for CoverageArgs {
    fn default() -> CoverageArgs {
        CoverageArgs {
            coverage: false,
            cover: vec![],
            gcov: "gcov".into(),
        }
    }
}

impl CoverageArgs {
    pub fn on(&self) -> bool {
        self.coverage || !self.cover.is_empty()
    }
}

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// A console log (e.g. results/<run-id>/console.log).
    pub console_log: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Scenario files or directories (default: scenarios/).
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Extra arguments passed to `cargo nextest run`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub nextest_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DepsArgs {
    /// Only check; never install.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// How many runs (whole `run-scenarios` runs; not with --seed).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// The seed's own benchmark, in one boot: never-touched ranges migrated
    /// to the device directly, against touched first (CPU writes) and
    /// read-faulted (zero page) ones, per size, in THP modes never and
    /// always; on 7.2 and later also a THP migrated whole against split.
    /// Appends to <results-dir>/bench-history.jsonl.
    #[arg(long, conflicts_with = "history")]
    pub seed: bool,
    /// --seed: range sizes in pages.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,64,512,16384",
        value_name = "PAGES"
    )]
    pub sizes: Vec<u64>,
    /// --seed: measured rounds of each case and size.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub rounds: u32,
    /// --seed: rounds run first and not counted.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub warmup: u32,
    /// Show the --seed runs appended so far: a table of the ratios, and
    /// <results-dir>/bench-history.html with one plot per series (median
    /// line, min-max band).
    #[arg(long)]
    pub history: bool,
    /// Where --seed puts its run and its history.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results_dir: PathBuf,
    /// Arguments for `run-scenarios` (after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub run_args: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Emit {
    /// A GitHub Actions `strategy.matrix` (JSON) with one entry per cell
    /// (per shard for `mutate`).
    Github,
}

#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// The matrix file.
    #[arg(long, default_value = "matrix.toml", value_name = "FILE")]
    pub matrix: PathBuf,
    /// Only cells whose name contains this (repeatable: any of them).
    #[arg(long = "filter", short = 'f', value_name = "TEXT")]
    pub filters: Vec<String>,
    /// Cells running at once (default: what the cores and memory allow).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the selected cells for a CI system and stop.
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
    /// Scenario to run in every cell (repeatable; default: all).
    #[arg(long = "scenario", short = 's', value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Every cell runs with --fail-on-skip: any skip fails it.
    #[arg(long)]
    pub fail_on_skip: bool,
    /// Where the matrix directory is created.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results_dir: PathBuf,
    /// Every cell runs with --coverage (its own build of each kernel, with
    /// counters); then the cells of each source of the covered files are
    /// merged into coverage/<kernel>/, and the kernels compared function by
    /// function in coverage/summary.txt.
    #[command(flatten)]
    pub coverage: CoverageArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Side A (the baseline): a run directory (results/<run-id>/, with
    /// run.json) or a directory of repeated runs (e.g. one --results-dir used
    /// for several `run-scenarios`).
    #[arg(value_name = "A")]
    pub a: PathBuf,
    /// Side B, compared against A; the same forms as A.
    #[arg(value_name = "B")]
    pub b: PathBuf,
    /// Flag a timing only if its median moves by more than this many percent
    /// (and by more than the larger spread of the two sides' runs).
    #[arg(
        long,
        value_name = "PERCENT",
        default_value_t = hmmlab_harness::compare::DEFAULT_MIN_CHANGE_PCT
    )]
    pub min_change: f64,
    /// Print the comparison as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the comparison as one self-contained page to FILE
    /// (e.g. compare.html): A and B side by side, new failures and fixes
    /// first, then every instance's duration on both sides with its spread.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Machine description: a name from images/machines/ or a path to a .toml file.
    #[arg(long, default_value = "x86_64", value_name = "NAME")]
    pub machine: String,
    /// Accelerator.
    #[arg(long, value_enum, default_value = "tcg")]
    pub accel: AccelChoice,
    /// Extra kernel command-line words.
    #[arg(long = "append", value_name = "WORDS")]
    pub append: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BisectArgs {
    /// The kernel git tree: `path:DIR`.
    #[arg(long, value_name = "path:DIR")]
    pub kernel: String,
    /// A commit where the scenario passes.
    #[arg(long, value_name = "REF")]
    pub good: String,
    /// A commit where the scenario fails.
    #[arg(long, value_name = "REF")]
    pub bad: String,
    /// The scenario that tells good from bad.
    #[arg(long, short = 's', value_name = "NAME")]
    pub scenario: String,
    #[command(flatten)]
    pub step: StepOptions,
}

#[derive(Debug, Args, Clone)]
pub struct StepOptions {
    /// Runs of the scenario per commit: all pass is good, all fail is bad,
    /// anything else is flaky and the commit is skipped.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub runs: usize,
    /// THP mode.
    #[arg(long, value_enum, default_value = "madvise")]
    pub thp: ThpChoice,
    /// Kind of device memory.
    #[arg(long, value_enum, default_value = "private")]
    pub device: DeviceChoice,
    /// Extra config fragment (repeatable).
    #[arg(long = "config-fragment", value_name = "FILE")]
    pub fragments: Vec<PathBuf>,
    /// Directory of scenario files.
    #[arg(long, default_value = "scenarios", value_name = "DIR")]
    pub scenario_dir: PathBuf,
    /// Where the bisect directory is created.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct BisectStepArgs {
    /// The private clone being bisected.
    #[arg(long, value_name = "DIR")]
    pub tree: PathBuf,
    #[arg(long, short = 's', value_name = "NAME")]
    pub scenario: String,
    #[command(flatten)]
    pub step: StepOptions,
}

#[derive(Debug, Args)]
pub struct ReportHtmlArgs {
    /// The run directory (results/<run-id>), or its run.json.
    pub run: PathBuf,
    /// Where to write the page (default: report.html in the run directory).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MatrixHtmlArgs {
    /// The matrix directory (results/matrix-<id>).
    pub dir: PathBuf,
    /// Where to write the page (default: matrix.html in the matrix directory).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CoverageReportArgs {
    /// The build tree with the .gcno files (the kernel's objtree).
    #[arg(long, value_name = "DIR")]
    pub build: Option<PathBuf>,
    /// The source tree the objects were compiled from.
    #[arg(long, value_name = "DIR", required_unless_present = "compare")]
    pub source: Option<PathBuf>,
    /// One scenario instance's counters: DIR holds its .gcda files laid out
    /// like the build tree (repeatable; a NAME given twice adds up).
    #[arg(long = "gcda", value_name = "NAME=DIR")]
    pub gcda: Vec<String>,
    /// The coverage.json of an earlier report, merged in (repeatable).
    #[arg(long = "add", value_name = "FILE")]
    pub add: Vec<PathBuf>,
    /// Where coverage.info, coverage.json and html/ are written.
    #[arg(long, value_name = "DIR", required_unless_present = "compare")]
    pub out: Option<PathBuf>,
    /// Only print, side by side, the per-function table of several reports
    /// (NAME=coverage.json, repeatable; e.g. two kernels, or the default
    /// suite against hmm-tests alone). Functions are matched by name, so
    /// reports of different sources compare.
    #[arg(long, value_name = "NAME=FILE", conflicts_with_all = ["gcda", "add", "build"])]
    pub compare: Vec<String>,
    /// The gcov of the compiler that built the objects (e.g. gcov-14).
    #[arg(long, default_value = "gcov", value_name = "PROGRAM")]
    pub gcov: String,
    /// Also report the headers whose inline functions the objects contain.
    #[arg(long)]
    pub all_files: bool,
}

#[derive(Debug, Args)]
pub struct MutateArgs {
    /// List the mutants: one line each (id and description), then counts
    /// per operator and per function.
    #[arg(long, conflicts_with = "check")]
    pub list: bool,
    /// Cheap verdicts before any boot: compile only the mutated object of
    /// each selected mutant against the kernel's cached, configured build
    /// (--kernel, default config; built first if it is not cached) and
    /// classify it: unviable (does not compile), equivalent (its code is the
    /// original's), duplicate (its code is an earlier mutant's), uncovered
    /// (no scenario ran its line, from --coverage-from) or pending (to be
    /// booted). One JSON line per mutant in results/mutate-<id>/mutants.jsonl.
    #[arg(long)]
    pub check: bool,
    /// The check, then every pending mutant boots its own kernel and the
    /// scenarios run on it: killed (a scenario failed; which, and why),
    /// timeout, crashed, or survived. The mutants of a file are woven into
    /// one object (mutant schemata), linked once into a copy of the build's
    /// objects, the image checked, and each boots it with `hmmlab.mutant=N`;
    /// a mutant that does not weave is linked on its own. That kernel runs
    /// first with no mutant active and must pass. Then the mutation score,
    /// per function.
    #[arg(long, conflicts_with = "list")]
    pub run: bool,
    /// With --run: the scenarios run on each mutant (repeatable; default:
    /// every scenario of the scenarios directory).
    #[arg(long = "scenario", short = 's', value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// With --run: the directory of scenario files (its top level is copied
    /// into the run at each start, every boot reads that copy), e.g.
    /// scenarios/fault with the fault variant. Give the same one to
    /// --resume.
    #[arg(long, default_value = "scenarios", value_name = "DIR")]
    pub scenario_dir: PathBuf,
    /// With --run: boot the uncovered mutants too.
    #[arg(long)]
    pub boot_uncovered: bool,
    /// With --run --resume: boot again the mutants whose last verdict is
    /// this one (repeatable: survived, timeout, killed, crashed), e.g. the
    /// survivors after new scenarios were written, or the timeouts of a
    /// run that shared the machine.
    #[arg(long, value_name = "VERDICT")]
    pub again: Vec<String>,
    /// With --run and --coverage-from: every scenario on every mutant, not
    /// only those that ran its lines.
    #[arg(long)]
    pub all_scenarios: bool,
    /// With --run: link each mutant into a kernel of its own, as a check of
    /// the woven kernel, instead of weaving every mutant of a file into one
    /// kernel that `hmmlab.mutant=N` on the command line switches.
    #[arg(long)]
    pub no_schemata: bool,
    /// With --check: a coverage.json (`cargo xtask coverage`) of this
    /// kernel's source; mutants no scenario reached are `uncovered`.
    #[arg(long, value_name = "FILE")]
    pub coverage_from: Option<PathBuf>,
    /// With --check: continue the check in DIR (a results/mutate-<id>
    /// directory), skipping the mutants its mutants.jsonl already records.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// With --check: also check a hand-written mutant, a unified diff of one
    /// selected file (`patch -p1` at the top of the tree; repeatable). Its
    /// id is FILE:FUNCTION:LINE:patch:NAME, NAME the patch's file stem.
    #[arg(long = "mutant-patch", value_name = "FILE")]
    pub mutant_patches: Vec<PathBuf>,
    /// With --check or --run: take only the K-th of N parts of the
    /// selected mutants (1 <= K <= N), e.g. --shard 2/4. A mutant's part is
    /// a hash of its file and line, so all mutants of a line are in one
    /// part, and the parts of one selection never overlap. --merge joins
    /// the parts' results.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Print a CI matrix of the --shards N parts (`{"include":
    /// [{"shard": "1/N"}, …]}`) and stop.
    #[arg(long, value_enum, requires = "shards", conflicts_with_all = ["list", "check", "run", "merge"])]
    pub emit: Option<Emit>,
    /// With --emit: how many parts.
    #[arg(long, value_name = "N", requires = "emit")]
    pub shards: Option<u32>,
    /// Merge the results/mutate-<id> directories of the shards of one
    /// kernel build into a new one under --results-dir, as one run's:
    /// duplicates are found again across the shards.
    #[arg(long, value_name = "DIR", num_args = 1.., conflicts_with_all = ["list", "check", "run"])]
    pub merge: Vec<PathBuf>,
    /// With --check, --run or --merge: where the results/mutate-<id>
    /// directory is created.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results_dir: PathBuf,
    /// Kernel source whose tree is mutated (as for run-scenarios; a Debian
    /// package is fetched and extracted into the cache, nothing is built).
    #[arg(long, default_value = DEFAULT_KERNEL, value_name = "SOURCE", conflicts_with = "tree")]
    pub kernel: String,
    /// With --check or --run: an extra config fragment merged after
    /// images/configs/*.config (repeatable): another build of the same
    /// source, e.g. images/configs/variants/debug.config, whose VM_BUG_ON
    /// checks turn a mutant that breaks a lock or a reference into a crash.
    #[arg(long = "config-fragment", value_name = "FILE", conflicts_with = "tree")]
    pub fragments: Vec<PathBuf>,
    /// With --run: the kinds of device memory every boot runs the
    /// scenarios on, as for run-scenarios (comma-separated or repeated).
    /// `coherent` reaches the branches only device-coherent memory takes
    /// (e.g. migrate_vma_insert_huge_pmd_page()'s). Give a resumed run the
    /// same kinds as its start.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "private")]
    pub device: Vec<DeviceChoice>,
    /// An extracted kernel source tree to mutate instead of --kernel's
    /// (--list only: --check compiles against the kernel's own build).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["check", "run"])]
    pub tree: Option<PathBuf>,
    /// A C file of the tree, relative to its top (repeatable; default
    /// mm/migrate_device.c).
    #[arg(long = "file", value_name = "PATH")]
    pub files: Vec<String>,
    /// Only mutants in this function (repeatable).
    #[arg(long = "function", value_name = "NAME")]
    pub functions: Vec<String>,
    /// Only mutants on these lines of the file: FIRST-LAST, inclusive.
    #[arg(long, value_name = "A-B")]
    pub lines: Option<String>,
    /// Only mutants on the lines a unified diff adds or changes (its
    /// `+++` side: the tree mutated must have it applied), in the files it
    /// touches among those selected: one's own patch, mutated where it
    /// changes the code.
    #[arg(long, value_name = "PATCH")]
    pub lines_of: Option<PathBuf>,
    /// Only this mutant (its id, as `--list` prints it; repeatable).
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,
    /// Only mutants of this operator (repeatable).
    #[arg(long = "operator", value_enum, value_name = "NAME")]
    pub operators: Vec<crate::mutate::Operator>,
    /// Print each mutant's diff under its line.
    #[arg(long)]
    pub diff: bool,
    /// One JSON record per mutant on stdout (id, file, function, line,
    /// operator, index, description, original and mutated text, diff); the
    /// counts go to stderr.
    #[arg(long, conflicts_with = "diff")]
    pub json: bool,
}
