//! The scenario model: what one `scenarios/*.toml` file says.
//!
//! Deserialized with `deny_unknown_fields` everywhere; semantic checks (ranges
//! inside the mapping, valid state names, …) live in the host's validator
//! (`hmmlab_harness::scenario`), which reports them with file, line and column.
//! Page numbers are indexes into the mapping, in base pages; ranges are
//! half-open `[start, end)`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line saying what behaviour this scenario pins down.
    pub description: String,
    /// `steps` (default): map, populate, run the steps. `kselftest`: run a
    /// kernel selftest binary built from the same tree.
    #[serde(default)]
    pub kind: Kind,
    /// THP mode to set in /sys/kernel/mm/transparent_hugepage/enabled before
    /// the scenario; the run's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thp: Option<ThpMode>,
    /// Guest-side timeout for this scenario; the run's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Which device file to use: `/dev/hmm_dmirror<N>` (default 0).
    #[serde(default)]
    pub device: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<Mapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub populate: Vec<Populate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kselftest: Option<Kselftest>,
    /// Run only on kernels that match; otherwise the scenario is a skip with
    /// the reason. Resolved on the host, never sent to the guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<When>,
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
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    #[default]
    Steps,
    Kselftest,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ThpMode {
    Always,
    Madvise,
    Never,
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
    /// `mprotect`: the protection the step's pages get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prot: Option<Prot>,
    /// Expectations for kernels that differ: the first variant whose `when`
    /// matches replaces every `expect*` field it gives. Resolved on the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variant: Vec<Variant>,
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
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// HMM_DMIRROR_MIGRATE_TO_DEV; checks `cpages` and the data it returns.
    MigrateToDevice,
    /// HMM_DMIRROR_MIGRATE_TO_SYS; checks `cpages`.
    MigrateToSystem,
    /// HMM_DMIRROR_SNAPSHOT; checks each page's state against `expect`.
    Snapshot,
    /// HMM_DMIRROR_READ; checks the data the device sees.
    DeviceRead,
    /// HMM_DMIRROR_WRITE of a fresh data pattern through the device.
    DeviceWrite,
    /// Read every byte from the CPU (faulting device pages back) and check it.
    CpuRead,
    /// Write a fresh data pattern from the CPU.
    CpuWrite,
    /// Map one page directly below the mapping and unmap it again: an
    /// unrelated VMA change next to the range. Takes no pages or expectations.
    UnmapNeighbour,
    /// The mapping's userfaultfd (`userfaultfd = true`) has no pending event.
    UserfaultfdIdle,
    /// Test of the harness itself: the scenario process blocks forever, so the
    /// guest's per-scenario timeout must fire.
    Hang,
    /// Test of the harness itself: the guest driver (PID 1) stops answering
    /// for good, so the host's timeout must fire and stop the VM.
    HangGuest,
    /// `iterations` rounds of: one thread migrates the range to the device
    /// while another writes a fresh pattern over it from the CPU. Afterwards
    /// the range must hold the last pattern written.
    MigrateRace,
    /// HMM_DMIRROR_FLAGS with HMM_DMIRROR_FLAG_FAIL_ALLOC: in the next
    /// migration either way, test_hmm's allocation for the first page (or
    /// THP) that migrates fails, once (the flag is cleared when used). Takes
    /// no pages or expectations; needs a test_hmm that has the command (see
    /// [`Op::newer_command`]).
    FailAlloc,
    /// munmap(2) of the step's pages (required): a partial unmap of the
    /// mapping. Later steps must not touch those pages from the CPU.
    Munmap,
    /// mprotect(2) of the step's pages (required) to `prot` (required).
    Mprotect,
    /// HMM_DMIRROR_READ_UNLOCKED: a device read that faults pages in with
    /// the mmap lock dropped; checked like `device-read`.
    DeviceReadUnlocked,
}

/// A dmirror command that older test_hmm lacks: its ioctl number is unknown
/// there, so test_hmm answers EINVAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewerCommand {
    /// The header's name, e.g. `HMM_DMIRROR_FLAGS`.
    pub name: &'static str,
    /// The oldest kernel checked to have it.
    pub first_seen: &'static str,
    /// The newest kernel checked to lack it: a scenario using the op must
    /// not run there (`[requires] kernel` must exclude it).
    pub last_without: [u32; 3],
}

impl Op {
    pub const ALL: [Op; 16] = [
        Op::MigrateToDevice,
        Op::MigrateToSystem,
        Op::Snapshot,
        Op::DeviceRead,
        Op::DeviceWrite,
        Op::CpuRead,
        Op::CpuWrite,
        Op::UnmapNeighbour,
        Op::UserfaultfdIdle,
        Op::Hang,
        Op::HangGuest,
        Op::MigrateRace,
        Op::FailAlloc,
        Op::Munmap,
        Op::Mprotect,
        Op::DeviceReadUnlocked,
    ];

    /// Ops that issue one dmirror ioctl and check its result: the only ones
    /// with `expect_errno` and `expect_cpages`. (`migrate-race` issues many
    /// and checks them itself.)
    pub fn issues_ioctl(self) -> bool {
        matches!(
            self,
            Op::MigrateToDevice
                | Op::MigrateToSystem
                | Op::DeviceRead
                | Op::DeviceWrite
                | Op::Snapshot
                | Op::DeviceReadUnlocked
        )
    }

    /// Ops that report device faults (`expect_faults`).
    pub fn reports_faults(self) -> bool {
        matches!(
            self,
            Op::DeviceRead | Op::DeviceWrite | Op::DeviceReadUnlocked
        )
    }

    /// Ops that need `pages`, never defaulting to the whole mapping.
    pub fn needs_pages(self) -> bool {
        matches!(self, Op::Munmap | Op::Mprotect)
    }

    /// The dmirror command this op issues when only newer test_hmm has it.
    /// 6.12.117's lib/test_hmm_uapi.h ends at HMM_DMIRROR_RELEASE (0x07);
    /// 7.2.13's adds HMM_DMIRROR_FLAGS (0x08), 7.3.4's also
    /// HMM_DMIRROR_READ_UNLOCKED (0x09). Kernels between were not checked.
    pub fn newer_command(self) -> Option<NewerCommand> {
        match self {
            Op::FailAlloc => Some(NewerCommand {
                name: "HMM_DMIRROR_FLAGS",
                first_seen: "7.2",
                last_without: [6, 12, u32::MAX],
            }),
            Op::DeviceReadUnlocked => Some(NewerCommand {
                name: "HMM_DMIRROR_READ_UNLOCKED",
                first_seen: "7.3",
                last_without: [7, 2, u32::MAX],
            }),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::MigrateToDevice => "migrate-to-device",
            Op::MigrateToSystem => "migrate-to-system",
            Op::Snapshot => "snapshot",
            Op::DeviceRead => "device-read",
            Op::DeviceWrite => "device-write",
            Op::CpuRead => "cpu-read",
            Op::CpuWrite => "cpu-write",
            Op::UnmapNeighbour => "unmap-neighbour",
            Op::UserfaultfdIdle => "userfaultfd-idle",
            Op::MigrateRace => "migrate-race",
            Op::Hang => "hang",
            Op::HangGuest => "hang-guest",
            Op::FailAlloc => "fail-alloc",
            Op::Munmap => "munmap",
            Op::Mprotect => "mprotect",
            Op::DeviceReadUnlocked => "device-read-unlocked",
        }
    }
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
            device: 0,
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
                prot: None,
                variant: vec![],
            }],
            kselftest: None,
            requires: None,
        };
        let json = serde_json::to_string(&s).unwrap();
        let back: Scenario = serde_json::from_str(&json).unwrap();
        assert_eq!(s, back);
    }

    #[test]
    fn op_names_are_the_serde_names() {
        for op in Op::ALL {
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(json, format!("\"{}\"", op.as_str()));
            let back: Op = serde_json::from_str(&json).unwrap();
            assert_eq!(back, op);
        }
        for prot in [Prot::ReadWrite, Prot::ReadOnly] {
            let json = serde_json::to_string(&prot).unwrap();
            assert_eq!(json, format!("\"{}\"", prot.as_str()));
        }
    }

    #[test]
    fn newer_commands() {
        let flags = Op::FailAlloc.newer_command().unwrap();
        assert_eq!(flags.name, "HMM_DMIRROR_FLAGS");
        assert_eq!(flags.last_without[..2], [6, 12]);
        let unlocked = Op::DeviceReadUnlocked.newer_command().unwrap();
        assert_eq!(unlocked.name, "HMM_DMIRROR_READ_UNLOCKED");
        let with: Vec<Op> = Op::ALL
            .into_iter()
            .filter(|op| op.newer_command().is_some())
            .collect();
        assert_eq!(with, [Op::FailAlloc, Op::DeviceReadUnlocked]);
        assert!(Op::DeviceReadUnlocked.issues_ioctl() && Op::DeviceReadUnlocked.reports_faults());
        assert!(!Op::FailAlloc.issues_ioctl());
    }

    #[test]
    fn pattern_distinguishes_pages_and_generations() {
        assert_ne!(pattern_word(1, 0, 0), 0);
        assert_ne!(pattern_word(1, 1, 0), pattern_word(1, 0, 0));
        assert_ne!(pattern_word(2, 1, 0), pattern_word(1, 1, 0));
        assert_ne!(pattern_word(1, 1, 1), pattern_word(1, 1, 0));
    }
}
