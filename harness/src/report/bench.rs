//! What a `kind = "bench"` scenario measured ([`hmmlab_proto::bench`]):
//! its samples, and the statistics every reporter shows the same way.
//!
//! A series is one case at one size in one scenario instance (THP mode,
//! device): min, median and max over the measured rounds of its time,
//! which for `touch-first` and `zero-page` is the CPU touch plus the
//! migration (what a driver that cannot migrate empty entries pays), and
//! pages per second of that time.
//!
//! A ratio pairs two cases of the same instance and size round by round
//! (round i of one with round i of the other, measured back to back), so
//! that what drifts during the run cancels: `direct / touch-first` below 1
//! means migrating a never-touched range directly is faster.

use std::collections::BTreeMap;

use hmmlab_proto::bench::BenchCase;
use hmmlab_proto::scenario::{DeviceKind, ThpMode};
use serde::{Deserialize, Serialize};

use super::ScenarioResult;
pub use crate::compare::Stats;

/// One measurement, as the guest reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub case: BenchCase,
    pub pages: u64,
    pub round: u32,
    /// The CPU touch before the migration (0 for `direct` and `split`).
    pub prepare_ns: u64,
    /// The `HMM_DMIRROR_MIGRATE_TO_DEV` ioctl.
    pub migrate_ns: u64,
}

impl Sample {
    /// What the case costs a driver: the touch and the migration.
    pub fn total_ns(&self) -> u64 {
        self.prepare_ns + self.migrate_ns
    }
}

/// Where a series was measured.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Where {
    /// The scenario (its file's stem), without the instance's mode suffixes.
    pub scenario: String,
    pub thp: ThpMode,
    pub device: DeviceKind,
}

impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} thp={} {}",
            self.scenario,
            self.thp,
            self.device.as_str()
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub at: Where,
    pub case: BenchCase,
    pub pages: u64,
    /// Touch plus migration, ms.
    pub total_ms: Stats,
    /// The migration alone, ms.
    pub migrate_ms: Stats,
    /// Pages per second of the total.
    pub pages_per_sec: Stats,
}

impl Series {
    /// The key `compare` and the history match series by.
    pub fn key(&self) -> String {
        format!("{} {} {}p", self.at, self.case, self.pages)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub at: Where,
    pub pages: u64,
    /// Numerator and denominator: `direct` / `touch-first`, say.
    pub of: BenchCase,
    pub to: BenchCase,
    /// Per round: total of `of` / total of `to`.
    pub ratio: Stats,
}

impl Ratio {
    pub fn key(&self) -> String {
        format!("{} {}/{} {}p", self.at, self.of, self.to, self.pages)
    }
}

/// The pairs worth a ratio, when both were measured: the seed's question
/// (direct vs touch-first), the zero page, and a THP whole vs split.
const PAIRS: [(BenchCase, BenchCase); 3] = [
    (BenchCase::Direct, BenchCase::TouchFirst),
    (BenchCase::Direct, BenchCase::ZeroPage),
    (BenchCase::Split, BenchCase::Direct),
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub series: Vec<Series>,
    pub ratios: Vec<Ratio>,
}

impl Summary {
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The statistics of every bench instance among `results`.
    pub fn of(results: &[ScenarioResult]) -> Summary {
        let mut out = Summary::default();
        for r in results.iter().filter(|r| !r.samples.is_empty()) {
            let (Some(thp), Some(device)) = (r.thp, r.device()) else {
                continue;
            };
            let at = Where {
                scenario: r.name.split('@').next().unwrap_or(&r.name).to_string(),
                thp,
                device,
            };
            let mut by: BTreeMap<(u64, BenchCase), Vec<&Sample>> = BTreeMap::new();
            for s in &r.samples {
                by.entry((s.pages, s.case)).or_default().push(s);
            }
            for (&(pages, case), samples) in &by {
                let ms = |f: fn(&Sample) -> u64| -> Vec<f64> {
                    samples.iter().map(|s| f(s) as f64 / 1e6).collect()
                };
                let rate: Vec<f64> = samples
                    .iter()
                    .filter(|s| s.total_ns() > 0)
                    .map(|s| pages as f64 * 1e9 / s.total_ns() as f64)
                    .collect();
                let (Some(total_ms), Some(migrate_ms), Some(pages_per_sec)) = (
                    Stats::of(&ms(Sample::total_ns)),
                    Stats::of(&ms(|s| s.migrate_ns)),
                    Stats::of(&rate),
                ) else {
                    continue;
                };
                out.series.push(Series {
                    at: at.clone(),
                    case,
                    pages,
                    total_ms,
                    migrate_ms,
                    pages_per_sec,
                });
            }
            let sizes: Vec<u64> = {
                let mut v: Vec<u64> = by.keys().map(|k| k.0).collect();
                v.dedup();
                v
            };
            for pages in sizes {
                for (of, to) in PAIRS {
                    let (Some(a), Some(b)) = (by.get(&(pages, of)), by.get(&(pages, to))) else {
                        continue;
                    };
                    let per_round: Vec<f64> = a
                        .iter()
                        .filter_map(|x| {
                            let y = b.iter().find(|y| y.round == x.round)?;
                            (y.total_ns() > 0).then(|| x.total_ns() as f64 / y.total_ns() as f64)
                        })
                        .collect();
                    if let Some(ratio) = Stats::of(&per_round) {
                        out.ratios.push(Ratio {
                            at: at.clone(),
                            pages,
                            of,
                            to,
                            ratio,
                        });
                    }
                }
            }
        }
        out
    }

    /// The terminal's tables: one line per series, then the ratios.
    pub fn text(&self) -> String {
        let mut s = String::new();
        if self.is_empty() {
            return s;
        }
        s.push_str(&format!(
            "{:<34} {:<11} {:>6} {:>27} {:>12}\n",
            "bench", "case", "pages", "ms: min / median / max", "pages/s"
        ));
        for x in &self.series {
            s.push_str(&format!(
                "{:<34} {:<11} {:>6} {:>27} {:>12.0}\n",
                x.at.to_string(),
                x.case.as_str(),
                x.pages,
                format!(
                    "{} / {} / {}",
                    ms(x.total_ms.min),
                    ms(x.total_ms.median),
                    ms(x.total_ms.max)
                ),
                x.pages_per_sec.median
            ));
        }
        if !self.ratios.is_empty() {
            s.push_str(&format!(
                "{:<34} {:<23} {:>6} {:>27}\n",
                "ratio of totals, round by round", "", "pages", "min / median / max"
            ));
            for r in &self.ratios {
                s.push_str(&format!(
                    "{:<34} {:<23} {:>6} {:>27}\n",
                    r.at.to_string(),
                    format!("{} / {}", r.of, r.to),
                    r.pages,
                    format!(
                        "{:.3} / {:.3} / {:.3}",
                        r.ratio.min, r.ratio.median, r.ratio.max
                    )
                ));
            }
        }
        s
    }
}

/// Milliseconds with the digits that matter.
pub fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmmlab_proto::Outcome;

    fn result(name: &str, thp: ThpMode, samples: Vec<Sample>) -> ScenarioResult {
        ScenarioResult {
            samples,
            ..ScenarioResult::new(name, Outcome::Pass, Some(thp), "")
        }
    }

    fn sample(case: BenchCase, pages: u64, round: u32, prepare: u64, migrate: u64) -> Sample {
        Sample {
            case,
            pages,
            round,
            prepare_ns: prepare,
            migrate_ns: migrate,
        }
    }

    #[test]
    fn series_and_round_by_round_ratios() {
        let r = result(
            "seed@never",
            ThpMode::Never,
            vec![
                sample(BenchCase::Direct, 64, 0, 0, 1_000_000),
                sample(BenchCase::TouchFirst, 64, 0, 1_000_000, 3_000_000),
                sample(BenchCase::Direct, 64, 1, 0, 2_000_000),
                sample(BenchCase::TouchFirst, 64, 1, 1_000_000, 3_000_000),
                sample(BenchCase::Direct, 64, 2, 0, 3_000_000),
                sample(BenchCase::TouchFirst, 64, 2, 2_000_000, 4_000_000),
            ],
        );
        let s = Summary::of(&[r]);
        assert_eq!(s.series.len(), 2);
        let direct = &s.series[0];
        assert_eq!(direct.case, BenchCase::Direct);
        assert_eq!(direct.at.scenario, "seed");
        assert_eq!(direct.at.device, DeviceKind::Private);
        assert_eq!((direct.total_ms.min, direct.total_ms.median), (1.0, 2.0));
        assert_eq!(direct.pages_per_sec.median, 64.0 / 0.002);
        let touch = &s.series[1];
        assert_eq!((touch.total_ms.min, touch.total_ms.max), (4.0, 6.0));
        assert_eq!(touch.migrate_ms.median, 3.0);
        // Round by round: 1/4, 2/4, 3/6.
        assert_eq!(s.ratios.len(), 1);
        let r = &s.ratios[0];
        assert_eq!((r.of, r.to), (BenchCase::Direct, BenchCase::TouchFirst));
        assert_eq!((r.ratio.min, r.ratio.median, r.ratio.max), (0.25, 0.5, 0.5));
        let text = s.text();
        assert!(text.contains("seed thp=never private"), "{text}");
        assert!(text.contains("direct / touch-first"), "{text}");
        assert!(text.contains("0.250 / 0.500 / 0.500"), "{text}");
    }
}
