//! The scenario model: what one `scenarios/*.toml` file says.
//!
//! Deserialized with `deny_unknown_fields` everywhere; semantic checks (ranges
//! inside the mapping, valid state names, …) live in the host's validator
//! (`hmmlab_harness::scenario`), which reports them with file, line and column.
//! Page numbers are indexes into the mapping, in base pages; ranges are
//! half-open `[start, end)`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::op::{NewerCommand, Op};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line saying what behaviour this scenario pins down.
    pub description: String,
    /// `steps` (default): map, populate, run the steps. `kselftest`: run a
    /// kernel selftest binary built from the same tree. `bench`: time
    /// migrations to the device ([`crate::bench`]).
    #[serde(default)]
    pub kind: Kind,
    /// THP mode to set in /sys/kernel/mm/transparent_hugepage/enabled before
    /// the scenario; the run's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thp: Option<ThpMode>,
    /// Guest-side timeout for this scenario; the run's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The device memory the scenario migrates to. Absent: the scenario runs
    /// once per device kind of the run (`--device`), like the THP mode; the
    /// host pins it in every instance it sends the guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceKind>,
    /// Run the scenario process, and a child it forks, on one CPU only:
    /// the one it starts on. For what depends on one CPU's state between
    /// steps (its TLB, its per-CPU free page lists), which a move to the
    /// other CPU would leave behind.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pin_cpu: bool,
    /// Run the scenario process in a memory cgroup of its own (cgroup v2,
    /// CONFIG_MEMCG) whose `memory.max` is this many KiB: what it maps and
    /// migrates from then on is charged there, so a charge that would go
    /// over the limit fails (mm/memcontrol.c, try_charge_memcg(): a THP's
    /// charge fails without the OOM killer, which a costly order never
    /// calls). Its earlier memory stays with the root cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memcg_max_kib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<Mapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub populate: Vec<Populate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kselftest: Option<Kselftest>,
    /// `kind = "bench"`: what to time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench: Option<crate::bench::Bench>,
    /// Run only on kernels that match; otherwise the scenario is a skip with
    /// the reason. Resolved on the host, never sent to the guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<When>,
    /// Console WARNINGs a `steps` scenario makes the kernel print on
    /// purpose, outside the code under test (a test driver's own complaint
    /// about what the scenario asks of it), each with the code that prints
    /// it. They are listed, not failed; one that does not occur fails the
    /// scenario. (A kselftest's are `[[kselftest.known_failure]]`.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_warning: Vec<KnownWarning>,
}

/// One `[[known_warning]]` of a steps scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KnownWarning {
    /// Text of the WARNING: found in its `WARNING:` line or in the line
    /// before it (the message WARN() prints).
    pub console: String,
    /// The kernels it applies to; every kernel when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
    /// Why, citing the kernel code.
    pub because: String,
}

impl KnownWarning {
    /// As a known failure of the run's verdicts, which treat both alike.
    pub fn as_known_failure(&self) -> KnownFailure {
        KnownFailure {
            console: Some(self.console.clone()),
            because: self.because.clone(),
            ..KnownFailure::default()
        }
    }
}

/// A condition on the kernel under test. All given fields must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// A version constraint on `make kernelrelease`: `>=6.3`, `<6.2`, `=6.12`,
    /// or a bare `6.12` (same major.minor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// A config condition: `CONFIG_X` (set to y or m), `!CONFIG_X` (not set),
    /// or `CONFIG_X=value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// The instance's device memory (`private` or `coherent`); only in a
    /// step variant's `when` (a scenario for one kind pins `device`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceKind>,
}

/// lib/test_hmm's two kinds of device memory (`zone_device_type`), two
/// devices each: MEMORY_DEVICE_PRIVATE (`/dev/hmm_dmirror0`, `1`), which the
/// CPU cannot map, so a CPU access faults the page back to system memory;
/// MEMORY_DEVICE_COHERENT (`/dev/hmm_dmirror2`, `3`, only when test_hmm is
/// given `spm_addr_dev0/1`), which the CPU maps and reads in place.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    Private,
    Coherent,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 2] = [DeviceKind::Private, DeviceKind::Coherent];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Private => "private",
            DeviceKind::Coherent => "coherent",
        }
    }

    /// The minor of the first of test_hmm's two devices of this kind
    /// (lib/test_hmm.c, hmm_dmirror_init(): two private, then two coherent).
    pub fn first_minor(self) -> u32 {
        match self {
            DeviceKind::Private => 0,
            DeviceKind::Coherent => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    #[default]
    Steps,
    Kselftest,
    Bench,
}

impl Kind {
    /// The name scenario files write (`kind = "…"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Steps => "steps",
            Kind::Kselftest => "kselftest",
            Kind::Bench => "bench",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ThpMode {
    Always,
    Madvise,
    Never,
}

impl std::fmt::Display for ThpMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ThpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ThpMode::Always => "always",
            ThpMode::Madvise => "madvise",
            ThpMode::Never => "never",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub kind: MappingKind,
    /// Size of the mapping in base (4 KiB) pages.
    pub pages: u64,
    /// Start the mapping at a multiple of this many pages (e.g. 512 for 2 MiB).
    #[serde(default = "one")]
    pub align_pages: u64,
    #[serde(default)]
    pub prot: Prot,
    /// madvise(MADV_HUGEPAGE) the mapping before populating it.
    #[serde(default)]
    pub hugepage: bool,
    /// Register the whole mapping with userfaultfd
    /// (UFFDIO_REGISTER_MODE_MISSING) after the populate entries have run,
    /// so populated pages exist and holes stay holes. Nobody serves the fd:
    /// a CPU touch of a hole then blocks until the scenario timeout.
    #[serde(default)]
    pub userfaultfd: bool,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MappingKind {
    /// MAP_PRIVATE | MAP_ANONYMOUS
    AnonPrivate,
    /// MAP_SHARED | MAP_ANONYMOUS
    AnonShared,
    /// MAP_PRIVATE of a file in the guest's tmpfs
    FilePrivate,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Prot {
    #[default]
    ReadWrite,
    ReadOnly,
}

impl Prot {
    pub fn as_str(self) -> &'static str {
        match self {
            Prot::ReadWrite => "read-write",
            Prot::ReadOnly => "read-only",
        }
    }
}

/// A half-open page range `[start, end)`, written `[start, end]` in TOML.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct PageRange(pub u64, pub u64);

impl PageRange {
    pub fn start(&self) -> u64 {
        self.0
    }
    pub fn end(&self) -> u64 {
        self.1
    }
    pub fn len(&self) -> u64 {
        self.1.saturating_sub(self.0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How part of the mapping is touched before the steps run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Populate {
    pub pages: PageRange,
    pub how: Touch,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Touch {
    /// Write the page's data pattern: the page gets its own backing page.
    Write,
    /// Read one byte per page: a private anonymous page maps the zero page.
    Read,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub op: Op,
    /// Pages the step works on; the whole mapping when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<PageRange>,
    /// Pages the ioctl reports in `cpages` (migrate, device read/write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_cpages: Option<u64>,
    /// Device faults the ioctl reports in `faults` (device read/write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_faults: Option<u64>,
    /// errno the ioctl must fail with; success (0) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_errno: Option<i32>,
    /// Snapshot expectations: the state of each page in each listed range.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<StateExpect>,
    /// `migrate-race`: how many migrate/write rounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u32>,
    /// `migrate-race`: how many of the rounds at least must migrate every
    /// page (the ioctl succeeds), 1 to `iterations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_complete: Option<u32>,
    /// `mprotect`: the protection the step's pages get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prot: Option<Prot>,
    /// Which of test_hmm's two devices of the scenario's kind the step's
    /// ioctl goes to: 0, the scenario's own (default), or 1, the other
    /// (`/dev/hmm_dmirror1`, or 3 for device-coherent memory). test_hmm
    /// makes each its own `dmirror_device`, the pgmap owner of its memory,
    /// so to device 1 the pages on device 0 are another owner's. Migrations,
    /// snapshots and device reads and writes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<u32>,
    /// `check-page-flags`: the flags every page of the range must have in
    /// /proc/kpageflags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<Vec<PageFlag>>,
    /// `check-page-flags`: the flags no page of the range may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<Vec<PageFlag>>,
    /// `check-thp-stats`: by how much each named counter of the PMD-size
    /// THP stats must have changed since the scenario began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thp_stats: Option<BTreeMap<ThpStat, i64>>,
    /// `check-smaps`: how many pages each named field of /proc/self/smaps
    /// must count, summed over the mapping's VMAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smaps: Option<BTreeMap<SmapsField, u64>>,
    /// Allocations the kernel makes during this step that fail, by kernel
    /// fault injection (the `fault` variant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_kernel_alloc: Option<FailKernelAlloc>,
    /// Expectations for kernels that differ: the first variant whose `when`
    /// matches replaces every `expect*` field it gives. Resolved on the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variant: Vec<Variant>,
}

/// A page flag `check-page-flags` checks: one bit of a page's entry in
/// /proc/kpageflags (Documentation/admin-guide/mm/pagemap.rst), numbered as
/// include/uapi/linux/kernel-page-flags.h numbers it. The kernel reports
/// the flags of the page's folio: every page of a THP shows its folio's.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum PageFlag {
    /// KPF_LOCKED (0): PG_locked, the folio is locked (a migration holds
    /// the lock from collecting the page to its end).
    Locked,
    /// KPF_REFERENCED (2): PG_referenced.
    Referenced,
    /// KPF_UPTODATE (3): PG_uptodate, the folio's data is valid.
    Uptodate,
    /// KPF_DIRTY (4): PG_dirty.
    Dirty,
    /// KPF_LRU (5): PG_lru, the folio is on an LRU list.
    Lru,
    /// KPF_ACTIVE (6): PG_active, on the active LRU list.
    Active,
    /// KPF_ANON (12): an anonymous folio (folio_test_anon()).
    Anon,
    /// KPF_SWAPCACHE (13): the folio is in the swap cache
    /// (folio_test_swapcache(): PG_swapcache of a swap-backed folio).
    Swapcache,
    /// KPF_SWAPBACKED (14): PG_swapbacked, backed by swap (anonymous and
    /// shmem memory).
    Swapbacked,
    /// KPF_THP (22): the folio is a transparent huge page (on newer kernels
    /// any large anonymous or page-cache folio, not only a PMD-sized one;
    /// the huge zero page too).
    Thp,
}

impl PageFlag {
    pub const ALL: [PageFlag; 10] = [
        PageFlag::Locked,
        PageFlag::Referenced,
        PageFlag::Uptodate,
        PageFlag::Dirty,
        PageFlag::Lru,
        PageFlag::Active,
        PageFlag::Anon,
        PageFlag::Swapcache,
        PageFlag::Swapbacked,
        PageFlag::Thp,
    ];

    /// The name scenario files write.
    pub const fn as_str(self) -> &'static str {
        match self {
            PageFlag::Locked => "locked",
            PageFlag::Referenced => "referenced",
            PageFlag::Uptodate => "uptodate",
            PageFlag::Dirty => "dirty",
            PageFlag::Lru => "lru",
            PageFlag::Active => "active",
            PageFlag::Anon => "anon",
            PageFlag::Swapcache => "swapcache",
            PageFlag::Swapbacked => "swapbacked",
            PageFlag::Thp => "thp",
        }
    }

    /// The flag's bit number in /proc/kpageflags (`KPF_*`).
    pub const fn kpf_bit(self) -> u32 {
        match self {
            PageFlag::Locked => 0,
            PageFlag::Referenced => 2,
            PageFlag::Uptodate => 3,
            PageFlag::Dirty => 4,
            PageFlag::Lru => 5,
            PageFlag::Active => 6,
            PageFlag::Anon => 12,
            PageFlag::Swapcache => 13,
            PageFlag::Swapbacked => 14,
            PageFlag::Thp => 22,
        }
    }

    /// The header's name, e.g. `KPF_UPTODATE`.
    pub const fn kpf_name(self) -> &'static str {
        match self {
            PageFlag::Locked => "KPF_LOCKED",
            PageFlag::Referenced => "KPF_REFERENCED",
            PageFlag::Uptodate => "KPF_UPTODATE",
            PageFlag::Dirty => "KPF_DIRTY",
            PageFlag::Lru => "KPF_LRU",
            PageFlag::Active => "KPF_ACTIVE",
            PageFlag::Anon => "KPF_ANON",
            PageFlag::Swapcache => "KPF_SWAPCACHE",
            PageFlag::Swapbacked => "KPF_SWAPBACKED",
            PageFlag::Thp => "KPF_THP",
        }
    }

    /// Is the flag set in a /proc/kpageflags entry?
    pub const fn is_set_in(self, kpageflags: u64) -> bool {
        kpageflags & (1 << self.kpf_bit()) != 0
    }
}

impl std::fmt::Display for PageFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A counter `check-thp-stats` reads: a file of
/// /sys/kernel/mm/transparent_hugepage/hugepages-2048kB/stats/
/// (Documentation/admin-guide/mm/transhuge.rst, mm/huge_memory.c
/// `DEFINE_MTHP_STAT_ATTR`), the PMD size's share of the mTHP counters,
/// or one of the THP events of /proc/vmstat (`thp_*`, count_vm_event();
/// only with CONFIG_VM_EVENT_COUNTERS, which tinyconfig lacks).
/// Older kernels lack some (6.12.118 has all of these, 6.1 has no such
/// directory); a missing file or line is an error, not a failure.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ThpStat {
    /// MTHP_STAT_ANON_FAULT_ALLOC: an anonymous THP allocated and mapped
    /// at a fault, and (7.x) at a device THP's insertion into a hole
    /// (migrate_vma_insert_huge_pmd_page()).
    AnonFaultAlloc,
    /// MTHP_STAT_ANON_FAULT_FALLBACK: a THP fault that fell back to pages.
    AnonFaultFallback,
    /// MTHP_STAT_ANON_FAULT_FALLBACK_CHARGE: the same, for a failed
    /// memcg charge.
    AnonFaultFallbackCharge,
    /// MTHP_STAT_SPLIT: a THP split.
    Split,
    /// MTHP_STAT_SPLIT_FAILED: a split that failed.
    SplitFailed,
    /// MTHP_STAT_SPLIT_DEFERRED: a THP queued for a deferred split.
    SplitDeferred,
    /// MTHP_STAT_NR_ANON: anonymous THPs now (a gauge: it goes down too).
    NrAnon,
    /// MTHP_STAT_NR_ANON_PARTIALLY_MAPPED: of those, the partly mapped.
    NrAnonPartiallyMapped,
    /// /proc/vmstat `thp_fault_alloc` (THP_FAULT_ALLOC): every size's
    /// fault allocations, as one event each.
    ThpFaultAlloc,
    /// /proc/vmstat `thp_fault_fallback` (THP_FAULT_FALLBACK).
    ThpFaultFallback,
    /// /proc/vmstat `thp_fault_fallback_charge` (THP_FAULT_FALLBACK_CHARGE).
    ThpFaultFallbackCharge,
}

impl ThpStat {
    pub const ALL: [ThpStat; 11] = [
        ThpStat::AnonFaultAlloc,
        ThpStat::AnonFaultFallback,
        ThpStat::AnonFaultFallbackCharge,
        ThpStat::Split,
        ThpStat::SplitFailed,
        ThpStat::SplitDeferred,
        ThpStat::NrAnon,
        ThpStat::NrAnonPartiallyMapped,
        ThpStat::ThpFaultAlloc,
        ThpStat::ThpFaultFallback,
        ThpStat::ThpFaultFallbackCharge,
    ];

    /// The name scenario files write: the counter's file name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ThpStat::AnonFaultAlloc => "anon_fault_alloc",
            ThpStat::AnonFaultFallback => "anon_fault_fallback",
            ThpStat::AnonFaultFallbackCharge => "anon_fault_fallback_charge",
            ThpStat::Split => "split",
            ThpStat::SplitFailed => "split_failed",
            ThpStat::SplitDeferred => "split_deferred",
            ThpStat::NrAnon => "nr_anon",
            ThpStat::NrAnonPartiallyMapped => "nr_anon_partially_mapped",
            ThpStat::ThpFaultAlloc => "thp_fault_alloc",
            ThpStat::ThpFaultFallback => "thp_fault_fallback",
            ThpStat::ThpFaultFallbackCharge => "thp_fault_fallback_charge",
        }
    }

    /// A line of /proc/vmstat rather than a file of [`THP_STATS_DIR`].
    pub const fn in_vmstat(self) -> bool {
        matches!(
            self,
            ThpStat::ThpFaultAlloc | ThpStat::ThpFaultFallback | ThpStat::ThpFaultFallbackCharge
        )
    }

    /// Where the kernel shows it: its file, or /proc/vmstat.
    pub fn path(self) -> String {
        if self.in_vmstat() {
            "/proc/vmstat".to_string()
        } else {
            format!("{THP_STATS_DIR}/{}", self.as_str())
        }
    }
}

/// The PMD size's mTHP counters (x86-64: 2 MiB).
pub const THP_STATS_DIR: &str = "/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/stats";

impl std::fmt::Display for ThpStat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field of a VMA's block in /proc/self/smaps that `check-smaps` reads
/// (fs/proc/task_mmu.c, smaps_account() and __show_smap(); in kB there,
/// in pages in a scenario). Each counts the pages of the VMA that are:
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SmapsField {
    /// `Rss`: resident, device-private pages too (smaps_pte_entry() takes
    /// a device-private entry as present).
    Rss,
    /// `Referenced`: accessed: the pte or PMD is young, or the folio is
    /// marked referenced (PG_referenced) or young (idle page tracking).
    Referenced,
    /// `Anonymous`: of anonymous folios.
    Anonymous,
    /// `LazyFree`: anonymous, MADV_FREE'd and clean (neither the pte nor
    /// the folio dirty).
    LazyFree,
    /// `AnonHugePages`: anonymous and mapped by a PMD.
    AnonHugePages,
    /// `Private_Clean`: mapped once, neither the pte nor the folio dirty.
    PrivateClean,
    /// `Private_Dirty`: mapped once, the pte or the folio dirty.
    PrivateDirty,
    /// `Swap`: swapped out (a swap entry in the pte).
    Swap,
}

impl SmapsField {
    pub const ALL: [SmapsField; 8] = [
        SmapsField::Rss,
        SmapsField::Referenced,
        SmapsField::Anonymous,
        SmapsField::LazyFree,
        SmapsField::AnonHugePages,
        SmapsField::PrivateClean,
        SmapsField::PrivateDirty,
        SmapsField::Swap,
    ];

    /// The name scenario files write.
    pub const fn as_str(self) -> &'static str {
        match self {
            SmapsField::Rss => "rss",
            SmapsField::Referenced => "referenced",
            SmapsField::Anonymous => "anonymous",
            SmapsField::LazyFree => "lazy_free",
            SmapsField::AnonHugePages => "anon_huge_pages",
            SmapsField::PrivateClean => "private_clean",
            SmapsField::PrivateDirty => "private_dirty",
            SmapsField::Swap => "swap",
        }
    }

    /// The field's name in /proc/self/smaps, before its colon.
    pub const fn smaps_name(self) -> &'static str {
        match self {
            SmapsField::Rss => "Rss",
            SmapsField::Referenced => "Referenced",
            SmapsField::Anonymous => "Anonymous",
            SmapsField::LazyFree => "LazyFree",
            SmapsField::AnonHugePages => "AnonHugePages",
            SmapsField::PrivateClean => "Private_Clean",
            SmapsField::PrivateDirty => "Private_Dirty",
            SmapsField::Swap => "Swap",
        }
    }
}

impl std::fmt::Display for SmapsField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `fail_kernel_alloc`: while the step runs, every allocation of one of
/// the kernel's allocators that the step's own task makes with `under` in
/// its call stack fails, as the kernel's fault injection makes it
/// (Documentation/fault-injection/fault-injection.rst: `task-filter` with
/// /proc/self/make-it-fail, `require-start`/`require-end` the function's
/// text from /proc/kallsyms, `probability` 100). Needs CONFIG_KALLSYMS,
/// CONFIG_FAIL_PAGE_ALLOC or CONFIG_FAILSLAB and
/// CONFIG_FAULT_INJECTION_STACKTRACE_FILTER
/// (images/configs/variants/fault.config). A step during which none
/// failed fails (the failure the scenario is about never happened), unless
/// `expect_failed` says how many must.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FailKernelAlloc {
    pub allocator: Allocator,
    /// A function of the kernel's text, as /proc/kallsyms names it (a
    /// static function the compiler inlined has no name there: name the
    /// one it was inlined into).
    pub under: String,
    /// Spare the allocations that may enter direct reclaim
    /// (`__GFP_DIRECT_RECLAIM`; the fault injection's `ignore-gfp-wait`,
    /// mm/fail_page_alloc.c and mm/failslab.c): only those that cannot
    /// reclaim fail, as memory pressure fails them first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spare_reclaiming: bool,
    /// How many allocations must fail during the step (0: none may);
    /// absent, at least one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_failed: Option<u64>,
}

/// The allocator whose failures `fail_kernel_alloc` injects.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Allocator {
    /// The page allocator (`fail_page_alloc`: alloc_pages() and all built
    /// on it, page tables included), every order.
    Page,
    /// The slab allocator (`failslab`: kmalloc(), kmem_cache_alloc()).
    Slab,
}

impl Allocator {
    pub const ALL: [Allocator; 2] = [Allocator::Page, Allocator::Slab];

    pub const fn as_str(self) -> &'static str {
        match self {
            Allocator::Page => "page",
            Allocator::Slab => "slab",
        }
    }

    /// Its fault-injection directory in debugfs.
    pub const fn debugfs_dir(self) -> &'static str {
        match self {
            Allocator::Page => "/sys/kernel/debug/fail_page_alloc",
            Allocator::Slab => "/sys/kernel/debug/failslab",
        }
    }

    /// The kernel option that provides it.
    pub const fn config(self) -> &'static str {
        match self {
            Allocator::Page => "CONFIG_FAIL_PAGE_ALLOC",
            Allocator::Slab => "CONFIG_FAILSLAB",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub when: When,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_cpages: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_faults: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_errno: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Vec<StateExpect>>,
    /// `check-smaps`: the fields on the kernels `when` picks (a build
    /// without CONFIG_SWAP, say), in place of the step's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smaps: Option<BTreeMap<SmapsField, u64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StateExpect {
    pub pages: PageRange,
    /// Names joined by `+`, see [`crate::state`]: e.g. `dev-private-local+write`.
    pub state: String,
}

/// `kind = "kselftest"`: run a selftest binary from `/hmmlab/bin`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Kselftest {
    /// Binary name inside the image, e.g. `hmm-tests`.
    pub binary: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// How this selftest is known to fail on some kernels for a reason
    /// that is not a regression of the code under test (a defect of the
    /// test or of test_hmm), each citing the kernel code. Resolved on the
    /// host against the kernel; each one that applies must occur.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_failure: Vec<KnownFailure>,
    /// Cases the selftest is told not to run (its harness's `-V variant` or
    /// `-T test`) on the kernels and THP mode given, because they cannot
    /// complete for a reason outside the code under test (test_hmm
    /// crashing, say), each citing the kernel code. Listed with the result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<Exclusion>,
}

/// One `[[kselftest.exclude]]`: a fixture variant or a test not run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    /// A fixture variant, e.g. `hmm_device_coherent` (`-V`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// A test of every fixture, e.g. `benchmark_thp_migration` (`-T`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// The kernels it applies to; every kernel when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
    /// The THP mode it applies to; every mode when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thp: Option<ThpMode>,
    /// Why, citing the kernel code.
    pub because: String,
}

impl Exclusion {
    /// The selftest harness's arguments for it (kselftest_harness.h).
    pub fn args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(x) = &self.variant {
            v.extend(["-V".to_string(), x.clone()]);
        }
        if let Some(t) = &self.test {
            v.extend(["-T".to_string(), t.clone()]);
        }
        v
    }

    /// Does it keep case `fixture.variant.test` from running?
    pub fn covers(&self, case: &str) -> bool {
        let parts: Vec<&str> = case.split('.').collect();
        let (variant, test) = match parts.as_slice() {
            [_, v, t] => (Some(*v), *t),
            [_, t] => (None, *t),
            _ => return false,
        };
        self.variant.as_deref().is_some_and(|x| Some(x) == variant)
            || self.test.as_deref() == Some(test)
    }

    /// `variant hmm_device_coherent`, `test exclusive`.
    pub fn what(&self) -> String {
        match (&self.variant, &self.test) {
            (Some(v), _) => format!("variant {v}"),
            (None, Some(t)) => format!("test {t}"),
            (None, None) => "nothing".into(),
        }
    }
}

/// One `[[kselftest.known_failure]]`: a case that fails, or a console
/// complaint the kernel prints, on the kernels `when` names.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KnownFailure {
    /// The case's full name, e.g. `hmm.hmm_device_coherent.migrate_anon_huge_err`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// Text of a console WARNING: found in its `WARNING:` line or in the
    /// line before it (the message WARN() prints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<String>,
    /// The kernels it applies to; every kernel when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
    /// The THP mode it applies to; every mode when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thp: Option<ThpMode>,
    /// Why, citing the kernel code.
    pub because: String,
}

/// The data pattern: every 64-bit word of a written page holds
/// `generation << 48 | page << 16 | word`, so a page in the wrong place, a
/// stale page or a zeroed page are all told apart.
pub fn pattern_word(generation: u64, page: u64, word: u64) -> u64 {
    (generation << 48) | ((page & 0xFFFF_FFFF) << 16) | (word & 0xFFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_json_round_trip() {
        let s = Scenario {
            description: "d".into(),
            kind: Kind::Steps,
            thp: Some(ThpMode::Madvise),
            timeout_ms: None,
            device: Some(DeviceKind::Coherent),
            pin_cpu: true,
            memcg_max_kib: None,
            mapping: Some(Mapping {
                kind: MappingKind::AnonPrivate,
                pages: 16,
                align_pages: 1,
                prot: Prot::ReadWrite,
                hugepage: false,
                userfaultfd: false,
            }),
            populate: vec![Populate {
                pages: PageRange(0, 4),
                how: Touch::Write,
            }],
            step: vec![Step {
                op: Op::Snapshot,
                pages: None,
                expect_cpages: None,
                expect_faults: None,
                expect_errno: None,
                expect: vec![StateExpect {
                    pages: PageRange(0, 16),
                    state: "none".into(),
                }],
                iterations: None,
                min_complete: None,
                prot: None,
                mirror: None,
                set: Some(vec![PageFlag::Uptodate, PageFlag::Thp]),
                clear: Some(vec![]),
                thp_stats: Some([(ThpStat::NrAnon, -1)].into()),
                smaps: Some([(SmapsField::Referenced, 1)].into()),
                fail_kernel_alloc: Some(FailKernelAlloc {
                    allocator: Allocator::Slab,
                    under: "__migrate_device_pages".into(),
                    spare_reclaiming: true,
                    expect_failed: Some(0),
                }),
                variant: vec![],
            }],
            kselftest: None,
            bench: None,
            requires: None,
            known_warning: vec![],
        };
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.contains(
                r#""set":["uptodate","thp"],"clear":[],"thp_stats":{"nr_anon":-1},"smaps":{"referenced":1}"#
            ),
            "{json}"
        );
        let back: Scenario = serde_json::from_str(&json).unwrap();
        assert_eq!(s, back);
    }

    #[test]
    fn page_flags_are_named_and_numbered_as_the_kernel_does() {
        for (i, f) in PageFlag::ALL.into_iter().enumerate() {
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.as_str()));
            assert_eq!(serde_json::from_str::<PageFlag>(&json).unwrap(), f);
            assert_eq!(f.kpf_name(), format!("KPF_{}", f.as_str().to_uppercase()));
            assert!(f.is_set_in(1 << f.kpf_bit()) && !f.is_set_in(!(1 << f.kpf_bit())));
            // One bit each, in the header's order.
            for g in &PageFlag::ALL[i + 1..] {
                assert!(f.kpf_bit() < g.kpf_bit(), "{f} {g}");
            }
        }
        let bits: Vec<u32> = PageFlag::ALL.iter().map(|f| f.kpf_bit()).collect();
        assert_eq!(bits, [0, 2, 3, 4, 5, 6, 12, 13, 14, 22]);
        assert!(serde_json::from_str::<PageFlag>("\"mlocked\"").is_err());
    }

    #[test]
    fn thp_stats_are_the_files_of_the_pmd_size_stats_directory_or_vmstat_events() {
        for st in ThpStat::ALL {
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
            assert_eq!(serde_json::from_str::<ThpStat>(&json).unwrap(), st);
            let want = if st.as_str().starts_with("thp_") {
                "/proc/vmstat".to_string()
            } else {
                format!("/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/stats/{st}")
            };
            assert_eq!(st.path(), want);
            assert_eq!(st.in_vmstat(), st.as_str().starts_with("thp_"));
        }
        let m: BTreeMap<ThpStat, i64> = serde_json::from_str(
            r#"{"anon_fault_alloc": 1, "nr_anon": -2, "thp_fault_fallback": 1}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            [
                (ThpStat::AnonFaultAlloc, 1),
                (ThpStat::NrAnon, -2),
                (ThpStat::ThpFaultFallback, 1)
            ]
            .into()
        );
        // /proc/vmstat's other lines are not THP counters.
        assert!(serde_json::from_str::<BTreeMap<ThpStat, i64>>(r#"{"pgfault": 1}"#).is_err());
    }

    #[test]
    fn smaps_fields_are_named_in_snake_case_and_read_by_their_smaps_names() {
        for f in SmapsField::ALL {
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{f}\""));
            assert_eq!(serde_json::from_str::<SmapsField>(&json).unwrap(), f);
            assert_eq!(
                f.smaps_name().to_lowercase().replace('_', ""),
                f.as_str().replace('_', "")
            );
        }
        assert!(serde_json::from_str::<SmapsField>("\"Referenced\"").is_err());
    }

    #[test]
    fn pattern_distinguishes_pages_and_generations() {
        assert_ne!(pattern_word(1, 0, 0), 0);
        assert_ne!(pattern_word(1, 1, 0), pattern_word(1, 0, 0));
        assert_ne!(pattern_word(2, 1, 0), pattern_word(1, 1, 0));
        assert_ne!(pattern_word(1, 1, 1), pattern_word(1, 1, 0));
    }
}
