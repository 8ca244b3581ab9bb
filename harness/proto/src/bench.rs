//! `kind = "bench"`: time migrations to device memory inside the guest.
//!
//! The question is the one the seed patch ("mm/migrate: allow migrate_vma()
//! to alloc new page on empty entry") answers: a driver "would rather
//! allocate new memory than having to fault later on". So the same range is
//! migrated to the device in several states, each freshly mapped:
//!
//! * [`BenchCase::Direct`]: never touched; every entry is empty and
//!   `migrate_vma_collect_hole()` hands the driver holes to allocate;
//! * [`BenchCase::TouchFirst`]: written from the CPU first (the only way
//!   before the seed), then migrated; its time is the touch plus the
//!   migration;
//! * [`BenchCase::ZeroPage`]: read from the CPU first (the zero page, or
//!   the huge zero page), then migrated;
//! * [`BenchCase::Split`]: never touched, THP-sized, with the device's THP
//!   allocation made to fail (test_hmm's `HMM_DMIRROR_FLAG_FAIL_ALLOC`,
//!   7.2 on), so the range goes as base pages: compare with `Direct` in
//!   THP mode `always`, which goes as one device THP.
//!
//! The guest reports one [`crate::Record::Sample`] per case, size and
//! measured round.

use serde::{Deserialize, Serialize};

/// `[bench]` of a `kind = "bench"` scenario.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Bench {
    /// What is measured, each in every round and size.
    pub cases: Vec<BenchCase>,
    /// Range sizes in base (4 KiB) pages; each range is mapped aligned to
    /// 2 MiB.
    pub sizes: Vec<u64>,
    /// Measured rounds.
    #[serde(default = "default_rounds")]
    pub rounds: u32,
    /// Rounds run first and not reported (device memory allocated, caches
    /// warm).
    #[serde(default = "default_warmup")]
    pub warmup: u32,
}

fn default_rounds() -> u32 {
    5
}

fn default_warmup() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum BenchCase {
    Direct,
    TouchFirst,
    ZeroPage,
    Split,
}

impl BenchCase {
    pub const ALL: [BenchCase; 4] = [
        BenchCase::Direct,
        BenchCase::TouchFirst,
        BenchCase::ZeroPage,
        BenchCase::Split,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BenchCase::Direct => "direct",
            BenchCase::TouchFirst => "touch-first",
            BenchCase::ZeroPage => "zero-page",
            BenchCase::Split => "split",
        }
    }
}

impl std::fmt::Display for BenchCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Pages of one THP (x86-64: 2 MiB of 4 KiB pages): the size a `split`
/// case measures.
pub const THP_PAGES: u64 = 512;
/// The largest range a bench maps (1 GiB): test_hmm backs every device
/// page with a system page, so the guest needs twice that.
pub const MAX_BENCH_PAGES: u64 = 262_144;
