//! `cargo xtask bench --seed`: the seed's own benchmark. One
//! `run-scenarios` boot runs two generated `kind = "bench"` scenarios
//! ([`hmmlab_proto::bench`]): `seed` (direct, touch-first, zero-page per
//! size, in THP modes never and always) and `seed-split` (one THP, direct
//! against split, THP mode always; test_hmm's HMM_DMIRROR_FLAGS exists from
//! 7.2 on, so older kernels report it not applicable). The run is an
//! ordinary run (its verdict, leaks and console checks included); a passing
//! one is appended to `<results-dir>/bench-history.jsonl`, which
//! `bench --history` shows as a table and a page of plots.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hmmlab_harness::exit;
use hmmlab_harness::report::bench::{Ratio, Series, Stats, Summary};
use hmmlab_proto::bench::{MAX_BENCH_PAGES, THP_PAGES};
use serde::{Deserialize, Serialize};

use crate::cli::BenchArgs;
use crate::fail::bad_input;

pub const HISTORY: &str = "bench-history.jsonl";
pub const HISTORY_PAGE: &str = "bench-history.html";

/// One passing `bench --seed` run, one line of the history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub run_id: String,
    pub started_unix: u64,
    /// The run directory (its run.json has every sample).
    pub run_dir: PathBuf,
    pub kernel_release: String,
    pub kernel_source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<String>,
    pub rounds: u32,
    pub series: Vec<Series>,
    pub ratios: Vec<Ratio>,
}

/// Options of `run-scenarios` that `bench --seed` sets itself.
const OWN_OPTIONS: [&str; 6] = [
    "--results-dir",
    "--scenario-dir",
    "--scenario-file",
    "--scenario",
    "-s",
    "--thp",
];

fn check_args(a: &BenchArgs) -> Result<()> {
    if a.sizes.is_empty() || a.sizes.iter().any(|n| !(1..=MAX_BENCH_PAGES).contains(n)) {
        return Err(bad_input(format!(
            "--sizes {:?}: give sizes in pages from 1 to {MAX_BENCH_PAGES}, comma-separated",
            a.sizes
        )));
    }
    if !(1..=1000).contains(&a.rounds) {
        return Err(bad_input(format!(
            "--rounds {}: give 1 to 1000 (5 or more give a spread `compare` can use)",
            a.rounds
        )));
    }
    if a.warmup > 100 {
        return Err(bad_input(format!("--warmup {}: give 0 to 100", a.warmup)));
    }
    if let Some(o) = a.run_args.iter().find_map(|x| {
        OWN_OPTIONS
            .into_iter()
            .find(|o| x == o || x.starts_with(&format!("{o}=")))
    }) {
        return Err(bad_input(format!(
            "bench --seed sets {o} of run-scenarios itself; give --results-dir before `--`, \
             and leave the scenarios and THP modes to it"
        )));
    }
    Ok(())
}

/// The two scenario files, as TOML.
fn scenario_files(a: &BenchArgs) -> [(&'static str, String); 2] {
    let sizes: Vec<String> = a.sizes.iter().map(u64::to_string).collect();
    let seed = format!(
        "description = \"The seed's benchmark: never-touched ranges migrated to the device \
         directly, against touched first and read-faulted (zero page)\"\n\
         kind = \"bench\"\n\
         timeout_ms = 600000\n\
         [bench]\n\
         cases = [\"direct\", \"touch-first\", \"zero-page\"]\n\
         sizes = [{}]\n\
         rounds = {}\n\
         warmup = {}\n",
        sizes.join(", "),
        a.rounds,
        a.warmup
    );
    let split = format!(
        "description = \"A never-touched THP migrated to the device whole, against split by \
         a failed device-THP allocation\"\n\
         kind = \"bench\"\n\
         thp = \"always\"\n\
         timeout_ms = 600000\n\
         # HMM_DMIRROR_FLAGS exists from 7.2 on (lib/test_hmm.c, dmirror_fops_unlocked_ioctl()).\n\
         [requires]\n\
         kernel = \">=7.2\"\n\
         [bench]\n\
         cases = [\"direct\", \"split\"]\n\
         sizes = [{THP_PAGES}]\n\
         rounds = {}\n\
         warmup = {}\n",
        a.rounds, a.warmup
    );
    [("seed.toml", seed), ("seed-split.toml", split)]
}

pub fn seed(a: &BenchArgs) -> Result<i32> {
    check_args(a)?;
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let dir = tempfile::Builder::new()
        .prefix("hmmlab-bench-seed-")
        .tempdir()?;
    for (name, text) in scenario_files(a) {
        std::fs::write(dir.path().join(name), text)?;
    }
    std::fs::create_dir_all(&a.results_dir)
        .with_context(|| format!("creating {}", a.results_dir.display()))?;
    let before = run_dirs(&a.results_dir)?;
    let mut args: Vec<String> = vec![
        "run-scenarios".into(),
        "--scenario-dir".into(),
        dir.path().to_string_lossy().into(),
        "--thp".into(),
        "never,always".into(),
        "--results-dir".into(),
        a.results_dir.to_string_lossy().into(),
    ];
    args.extend(a.run_args.iter().cloned());
    let status = std::process::Command::new(&exe).args(&args).status()?;
    let new: Vec<PathBuf> = run_dirs(&a.results_dir)?
        .difference(&before)
        .cloned()
        .collect();
    let [run_dir] = new.as_slice() else {
        eprintln!(
            "bench: the run left {} new run directories in {}: nothing appended to the history",
            new.len(),
            a.results_dir.display()
        );
        return Ok(status.code().unwrap_or(exit::INFRA).max(1));
    };
    let report = hmmlab_harness::report::load(run_dir)?;
    let code = status.code().unwrap_or(exit::INFRA);
    if code != exit::OK {
        eprintln!(
            "bench: the run did not pass (exit {code}): its times are not appended to the \
             history; see {}",
            run_dir.display()
        );
        return Ok(code);
    }
    let summary = Summary::of(&report.scenarios);
    if let Some(short) = summary
        .series
        .iter()
        .find(|s| s.total_ms.n != a.rounds as usize)
    {
        return Err(anyhow::anyhow!(
            "bench: {} has {} samples, not {} rounds: the run's records are incomplete ({})",
            short.key(),
            short.total_ms.n,
            a.rounds,
            run_dir.display()
        ));
    }
    let entry = Entry {
        run_id: report.run_id.clone(),
        started_unix: report.started_unix,
        run_dir: run_dir.clone(),
        kernel_release: report.kernel.release.clone(),
        kernel_source: report.kernel.source.clone(),
        patches: report.kernel.patches.clone(),
        rounds: a.rounds,
        series: summary.series,
        ratios: summary.ratios,
    };
    let file = a.results_dir.join(HISTORY);
    append(&file, &entry)?;
    let n = read_history(&file)?.len();
    println!(
        "bench: appended to {} ({n} run{}); `cargo xtask bench --history` plots them",
        file.display(),
        if n == 1 { "" } else { "s" }
    );
    Ok(exit::OK)
}

/// The run directories directly in `dir`.
fn run_dirs(dir: &Path) -> Result<BTreeSet<PathBuf>> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("run.json").is_file())
        .collect())
}

fn append(file: &Path, entry: &Entry) -> Result<()> {
    let mut line = serde_json::to_string(entry)?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("opening {}", file.display()))?;
    // One write of one line: a reader never sees half of it.
    f.write_all(line.as_bytes())
        .with_context(|| format!("appending to {}", file.display()))
}

pub fn read_history(file: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        bad_input(format!(
            "{}: {e}; `cargo xtask bench --seed` makes it (with the same --results-dir)",
            file.display()
        ))
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                bad_input(format!(
                    "{}:{}: not a bench record ({e}); remove that line or the file",
                    file.display(),
                    i + 1
                ))
            })
        })
        .collect()
}

pub fn history(a: &BenchArgs) -> Result<i32> {
    let file = a.results_dir.join(HISTORY);
    let entries = read_history(&file)?;
    if entries.is_empty() {
        return Err(bad_input(format!(
            "{}: no runs yet; `cargo xtask bench --seed` appends them",
            file.display()
        )));
    }
    let page = a.results_dir.join(HISTORY_PAGE);
    hmmlab_harness::report::write::write_atomic(&page, history_page(&entries).as_bytes())?;
    // Through `say`, which stops quietly when a pager or `head` goes away.
    hmmlab_harness::say::out(&history_text(&entries));
    hmmlab_harness::say::out(&format!("bench: plots in {}\n", page.display()));
    Ok(exit::OK)
}

/// Per kernel, per ratio: one line per run, oldest first.
pub fn history_text(entries: &[Entry]) -> String {
    let mut s = String::new();
    for (kernel, runs) in by_kernel(entries) {
        s.push_str(&format!("kernel {kernel}: {} runs\n", runs.len()));
        let keys = ordered(runs.iter().flat_map(|e| e.ratios.iter().map(Ratio::key)));
        for key in keys {
            s.push_str(&format!("  {key}\n"));
            for e in &runs {
                if let Some(r) = e.ratios.iter().find(|r| r.key() == key) {
                    s.push_str(&format!(
                        "    {:<28} {:.3}  ({:.3} .. {:.3})\n",
                        label(e),
                        r.ratio.median,
                        r.ratio.min,
                        r.ratio.max
                    ));
                }
            }
        }
    }
    s
}

/// Runs by kernel release, oldest first: a patched or locally changed
/// kernel of the same release is the same series (that is what a history
/// is for); its patches are named with its points.
fn by_kernel(entries: &[Entry]) -> BTreeMap<String, Vec<&Entry>> {
    let mut m: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for e in entries {
        m.entry(e.kernel_release.clone()).or_default().push(e);
    }
    for v in m.values_mut() {
        v.sort_by_key(|e| e.started_unix);
    }
    m
}

/// Distinct keys in reading order: by what precedes the size, then by the
/// size as a number (`… 1p`, `… 64p`, `… 512p`, `… 16384p`).
fn ordered(keys: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = keys.collect::<BTreeSet<_>>().into_iter().collect();
    let split = |k: &str| -> (String, u64) {
        match k.rsplit_once(' ') {
            Some((head, n)) => (
                head.to_string(),
                n.trim_end_matches('p').parse().unwrap_or(u64::MAX),
            ),
            None => (k.to_string(), 0),
        }
    };
    v.sort_by_key(|k| split(k));
    v
}

/// How a run is named on its points: its id, and its patches.
fn label(e: &Entry) -> String {
    if e.patches.is_empty() {
        e.run_id.clone()
    } else {
        let names: Vec<&str> = e
            .patches
            .iter()
            .map(|p| p.rsplit('/').next().unwrap_or(p))
            .collect();
        format!("{} + {}", e.run_id, names.join(", "))
    }
}

/// One plot: per run (x), the median (line and dots) and the min..max band.
fn plot(title: &str, unit: &str, points: &[(String, Stats)]) -> maud::Markup {
    use maud::html;
    const W: f64 = 320.0;
    const H: f64 = 110.0;
    const PAD: f64 = 26.0;
    let lo = points.iter().map(|p| p.1.min).fold(f64::INFINITY, f64::min);
    let hi = points
        .iter()
        .map(|p| p.1.max)
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    let n = points.len();
    let x = |i: usize| {
        if n == 1 {
            W / 2.0
        } else {
            PAD + i as f64 * (W - 2.0 * PAD) / (n - 1) as f64
        }
    };
    let y = |v: f64| H - 14.0 - (v - lo) / (hi - lo) * (H - 24.0);
    let pts = |f: fn(&Stats) -> f64| -> Vec<String> {
        points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(f(&p.1))))
            .collect()
    };
    let mut band = pts(|s| s.max);
    band.extend(pts(|s| s.min).into_iter().rev());
    html! {
        figure class="plot" {
            figcaption { (title) }
            svg width=(W) height=(H) role="img" aria-label=(format!("{title}: {n} runs")) {
                text x="2" y="10" font-size="9" { (format!("{hi:.3} {unit}")) }
                text x="2" y=(format!("{:.0}", H - 2.0)) font-size="9" { (format!("{lo:.3} {unit}")) }
                @if n > 1 {
                    polygon class="band" points=(band.join(" ")) fill="#cde" {}
                    polyline class="median" points=(pts(|s| s.median).join(" ")) fill="none" stroke="#234" stroke-width="1.5" {}
                }
                @for (i, p) in points.iter().enumerate() {
                    line x1=(format!("{:.1}", x(i))) x2=(format!("{:.1}", x(i)))
                        y1=(format!("{:.1}", y(p.1.min))) y2=(format!("{:.1}", y(p.1.max)))
                        stroke="#9ab" {}
                    circle class="run" cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(p.1.median))) r="2.5" fill="#234" {
                        title { (format!("{}: median {:.3}, {:.3} .. {:.3} {unit}", p.0, p.1.median, p.1.min, p.1.max)) }
                    }
                }
            }
        }
    }
}

/// The history page: per kernel, the ratios, then every series' time.
pub fn history_page(entries: &[Entry]) -> String {
    use maud::html;
    let body = html! {
        h1 { "hmmlab bench history" }
        p { "Each plot: one point per `cargo xtask bench --seed` run, oldest left; the line \
             joins the medians, the band spans each run's min to max over its rounds." }
        @for (kernel, runs) in by_kernel(entries) {
            section class="kernel" {
                h2 { "Kernel " (kernel) " (" (runs.len()) " runs)" }
                h3 { "Ratios of totals (touch plus migration), round by round" }
                div class="plots" {
                    @for key in ordered(runs.iter().flat_map(|e| e.ratios.iter().map(Ratio::key))) {
                        @let pts: Vec<(String, Stats)> = runs.iter().filter_map(|e| {
                            e.ratios.iter().find(|r| r.key() == key).map(|r| (label(e), r.ratio))
                        }).collect();
                        (plot(&key, "", &pts))
                    }
                }
                h3 { "Touch plus migration, ms" }
                div class="plots" {
                    @for key in ordered(runs.iter().flat_map(|e| e.series.iter().map(Series::key))) {
                        @let pts: Vec<(String, Stats)> = runs.iter().filter_map(|e| {
                            e.series.iter().find(|s| s.key() == key).map(|s| (label(e), s.total_ms))
                        }).collect();
                        (plot(&key, "ms", &pts))
                    }
                }
            }
        }
    };
    hmmlab_harness::report::page::page("hmmlab bench history", body).into_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmmlab_harness::report::bench::Where;
    use hmmlab_proto::bench::BenchCase;
    use hmmlab_proto::scenario::{DeviceKind, ThpMode};

    fn entry(run: &str, t: u64, ratio: f64) -> Entry {
        let at = Where {
            scenario: "seed".into(),
            thp: ThpMode::Never,
            device: DeviceKind::Private,
        };
        let st = |m: f64| Stats {
            n: 5,
            median: m,
            min: m * 0.9,
            max: m * 1.1,
            spread: m * 0.2,
        };
        Entry {
            run_id: run.into(),
            started_unix: t,
            run_dir: PathBuf::from("results").join(run),
            kernel_release: "7.3.4".into(),
            kernel_source: "debian:7.3".into(),
            patches: vec![],
            rounds: 5,
            series: vec![Series {
                at: at.clone(),
                case: BenchCase::Direct,
                pages: 64,
                total_ms: st(2.0),
                migrate_ms: st(2.0),
                pages_per_sec: st(32000.0),
            }],
            ratios: vec![Ratio {
                at,
                pages: 64,
                of: BenchCase::Direct,
                to: BenchCase::TouchFirst,
                ratio: st(ratio),
            }],
        }
    }

    #[test]
    fn history_round_trips_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(HISTORY);
        append(&f, &entry("b", 2, 0.5)).unwrap();
        append(&f, &entry("a", 1, 0.6)).unwrap();
        let back = read_history(&f).unwrap();
        assert_eq!(back.len(), 2);
        let text = history_text(&back);
        // Oldest first, whatever the file's order.
        let (ia, ib) = (text.find("    a ").unwrap(), text.find("    b ").unwrap());
        assert!(ia < ib, "{text}");
        assert!(
            text.contains("seed thp=never private direct/touch-first 64p"),
            "{text}"
        );
        assert!(text.contains("0.500  (0.450 .. 0.550)"), "{text}");
        let page = history_page(&back);
        assert_eq!(page.matches("<figure class=\"plot\"").count(), 2, "{page}");
        assert!(page.contains("class=\"band\""));
        std::fs::write(&f, "{\"run_id\": 3}\n").unwrap();
        let e = read_history(&f).unwrap_err().to_string();
        assert!(e.contains(":1: not a bench record"), "{e}");
    }

    #[test]
    fn the_generated_scenarios_load() {
        let a = BenchArgs {
            runs: 5,
            seed: true,
            sizes: vec![1, 64, 512, 16384],
            rounds: 5,
            warmup: 1,
            history: false,
            results_dir: "results".into(),
            run_args: vec![],
        };
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in scenario_files(&a) {
            let p = dir.path().join(name);
            std::fs::write(&p, &text).unwrap();
            hmmlab_harness::scenario::parse_str(&p, &text)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        let mut bad = a;
        bad.run_args = vec!["--thp=never".into()];
        let e = check_args(&bad).unwrap_err().to_string();
        assert!(e.contains("sets --thp of run-scenarios itself"), "{e}");
        bad.run_args.clear();
        bad.sizes = vec![0];
        assert!(check_args(&bad)
            .unwrap_err()
            .to_string()
            .contains("--sizes"));
    }
}
