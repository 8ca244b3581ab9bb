//! A step's op and its rules, in one table: [`Op::rules`]. The validator,
//! the guest driver and the tests consult it instead of keeping their own
//! lists of which op takes which field.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
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
    /// the range must hold the last pattern written, and at least
    /// `min_complete` rounds must have migrated every page.
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
    /// HMM_DMIRROR_RELEASE: test_hmm evicts every page of the device's
    /// memory back to system memory (migrate_device_range(),
    /// migrate_device_pages(), migrate_device_finalize()) and frees its
    /// chunks. Takes no pages: it is the whole device, whoever's pages.
    Release,
    /// vmsplice(2) of the step's pages (required) into a pipe that nobody
    /// reads: each page gets one reference beyond its mappings (no
    /// SPLICE_F_GIFT), as a driver's or the kernel's own get_page() would
    /// hold it, until a `drop-refs` step or the scenario's end.
    HoldRefs,
    /// Read every pipe of the earlier `hold-refs` steps to its end and
    /// close it: the references go.
    DropRefs,
    /// A long-term pin (FOLL_PIN | FOLL_LONGTERM) on each of the step's
    /// pages (required), through gup_test's PIN_LONGTERM_TEST_START, as
    /// RDMA or io_uring's fixed buffers pin them, until an `unpin-pages`
    /// step or the scenario's end.
    PinPages,
    /// PIN_LONGTERM_TEST_STOP on every pin of the earlier `pin-pages`
    /// steps: the pins go.
    UnpinPages,
    /// madvise(MADV_DONTNEED) of the step's pages (required) of an
    /// anon-private mapping: their pages are dropped (a THP's PMD is split
    /// first, the rest of the THP stays mapped by ptes) and they read as
    /// zeros again, holes that keep their VMA.
    Discard,
    /// madvise(MADV_PAGEOUT) of the step's pages (required): reclaim them
    /// now. With a swap device (the guest sets one up on a kernel with
    /// swap) an anonymous page is written to swap and its pte becomes a
    /// swap entry; the data stays, and a read fault brings the page back
    /// through the swap cache. Without swap anonymous pages stay.
    PageOut,
    /// fork(2): a child process that shares the mapping's pages
    /// copy-on-write with this one until the scenario ends. The child
    /// keeps its own view of the data as of the fork; `child-read` and
    /// `child-write` act in it. Anonymous pages the parent had to itself
    /// become shared (no longer AnonExclusive), device-private entries are
    /// copied (mm/memory.c: copy_nonpresent_pte()).
    Fork,
    /// The forked child reads the step's pages from the CPU (faulting
    /// device pages back) and checks them against its own view: what they
    /// held at the fork, or what the child wrote since. The parent's writes
    /// after the fork must not show.
    ChildRead,
    /// The forked child writes a fresh data pattern over the step's pages,
    /// which the parent must never see.
    ChildWrite,
    /// userfaultfd write-protection (UFFDIO_WRITEPROTECT) of the step's
    /// pages (required), the mapping registered in
    /// UFFDIO_REGISTER_MODE_WP at the first such step: their ptes get the
    /// uffd-wp bit, which every migration must carry along (migration
    /// entries, device-private entries and back). Nobody serves the
    /// userfaultfd, so no step may write the pages afterwards.
    WriteProtect,
    /// Every page of the step's range shows uffd-wp in /proc/self/pagemap
    /// (PM_UFFD_WP, bit 57): the bit survived whatever happened to the page
    /// since its `write-protect` step.
    CheckWriteProtected,
    /// HMM_DMIRROR_MIGRATE_TO_DEV of the first page of the process's
    /// [vdso] mapping, outside the test mapping: a mapping the kernel
    /// installed with VM_DONTEXPAND (__install_special_mapping()), one of
    /// VM_SPECIAL, which migrate_vma_setup() refuses with EINVAL.
    MigrateVdso,
    /// pread(2) of the whole file behind a `file-private` mapping, through
    /// a descriptor kept open for the mapping's lifetime: a private mapping
    /// never writes back, so every byte must still be zero. Goes through
    /// the file, not the mapping: no CPU access to the mapping.
    CheckFile,
    /// Every page of the step's range is a page of system memory (present
    /// in /proc/self/pagemap, with a PFN) whose entry in /proc/kpageflags
    /// has the flags `set` names and none of those `clear` names. Reads
    /// /proc files only: no CPU access to the mapping.
    CheckPageFlags,
    /// The PMD-size THP counters of
    /// /sys/kernel/mm/transparent_hugepage/hugepages-2048kB/stats/ that
    /// `thp_stats` names changed by the amounts it gives since the scenario
    /// began (read before its mapping was made). The counters are the
    /// whole system's, and the scenario process is the only one running.
    CheckThpStats,
    /// The fields of /proc/self/smaps that `smaps` names, summed over the
    /// VMAs of the mapping, are the numbers of pages it gives. Reads a
    /// /proc file only: no CPU access to the mapping (a read would make
    /// its ptes young, which `referenced` counts).
    CheckSmaps,
}

/// Everything the rest of hmmlab needs to know about one op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpRules {
    /// The name scenario files and records use (serde's kebab-case name).
    pub name: &'static str,
    pub kind: OpKind,
    pub pages: Pages,
    pub checks: Checks,
    /// The dmirror command the op issues, if any.
    pub command: Option<DmirrorCommand>,
}

/// What an op does, in broad strokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Migrates the step's pages to device memory.
    MigrateToDevice,
    /// Migrates the step's pages back to system memory.
    MigrateToSystem,
    /// Migrations to the device raced against CPU writes.
    MigrateRace,
    /// Reads the device's view of the pages' states.
    Snapshot,
    /// The device reads or writes the pages' data through its mirror.
    DeviceAccess { writes: bool },
    /// The CPU reads or writes the pages' data.
    CpuAccess { writes: bool },
    /// Changes a VMA: the mapping's own or a neighbour.
    VmaChange,
    /// Advice about the pages (madvise(2)) that changes neither the VMA
    /// nor the data: where the pages are (in memory or swapped out).
    PageAdvice,
    /// Sets a flag of the open device file.
    DeviceFlag,
    /// Checks the mapping's userfaultfd.
    UserfaultfdCheck,
    /// Evicts all of the device's memory back to system memory.
    EvictDevice,
    /// Takes (`hold: true`) or drops references or pins on the pages from
    /// user space, outside every mapping.
    PageRefs { hold: bool },
    /// Tests the harness itself.
    HarnessOnly,
    /// Forks a child that shares the mapping copy-on-write.
    Fork,
    /// The forked child reads or writes the pages' data from the CPU.
    ChildAccess { writes: bool },
    /// Write-protects pages through userfaultfd.
    WriteProtect,
    /// Reads the pages' flags in /proc/self/pagemap.
    PagemapCheck,
    /// Migrates a page outside the mapping: the process's vdso.
    MigrateOutside,
    /// Reads the mapping's backing file through its own descriptor, not
    /// through the mapping.
    FileCheck,
    /// Reads the pages' flags in /proc/kpageflags, through their PFNs in
    /// /proc/self/pagemap.
    PageFlagsCheck,
    /// Reads the system's THP counters in sysfs.
    ThpStatsCheck,
    /// Reads the mapping's VMAs in /proc/self/smaps.
    SmapsCheck,
}

/// Which pages a step works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pages {
    /// None of its own: `pages` is refused, for the reason given.
    None { why: &'static str },
    /// The step's `pages`, the whole mapping when absent.
    WholeByDefault,
    /// The step's `pages`, required: never the whole mapping by default.
    /// `verb` says what the op does to them.
    Required { verb: &'static str },
}

/// How a step of the op is checked: which fields it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// `expect_cpages`.
    pub cpages: bool,
    /// `expect_faults`.
    pub faults: bool,
    /// `expect_faults` is required wherever the ioctl is expected to
    /// succeed (the step's own fields, and each variant applied over them):
    /// a read that faults pages in is no read of pages already there.
    pub faults_required: bool,
    pub errno: Errno,
    /// `expect` (page states); a step that takes it must assert something.
    pub states: bool,
    /// `iterations`, required.
    pub iterations: bool,
    /// `min_complete`, required: 1 to `iterations`.
    pub min_complete: bool,
    /// `prot`, required.
    pub prot: bool,
    /// `set` and `clear` (page flags), at least one flag between them.
    pub page_flags: bool,
    /// `thp_stats` (THP counters), required, at least one counter.
    pub thp_stats: bool,
    /// `smaps` (fields of /proc/self/smaps), required, at least one field.
    pub smaps: bool,
}

/// Whether a step takes `expect_errno` (and `[[step.variant]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    /// It issues one ioctl (test_hmm's; gup_test's for `pin-pages`) and
    /// checks its result: `expect_errno` and variants apply.
    Ioctl,
    /// It issues no ioctl: no `expect_errno`; variants apply (with no
    /// field to replace).
    NoIoctl,
    /// It checks its own result: no `expect_errno` and no variants, for
    /// the reason given.
    OwnCheck { why: &'static str },
}

/// A dmirror command (lib/test_hmm_uapi.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmirrorCommand {
    /// The header's name, e.g. `HMM_DMIRROR_MIGRATE_TO_DEV`.
    pub name: &'static str,
    /// When only newer test_hmm has it: the kernels checked.
    pub newer: Option<Since>,
}

/// The kernels checked for a dmirror command older test_hmm lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since {
    /// The oldest kernel checked to have it.
    pub first_seen: &'static str,
    /// The newest kernel checked to lack it.
    pub last_without: [u32; 3],
}

/// A dmirror command that older test_hmm lacks: its ioctl number is unknown
/// there, so test_hmm answers EINVAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewerCommand {
    /// The header's name, e.g. `HMM_DMIRROR_FLAGS`.
    pub name: &'static str,
    /// The kernel's test module that has it: `test_hmm`, `gup_test`.
    pub module: &'static str,
    /// The oldest kernel checked to have it.
    pub first_seen: &'static str,
    /// The newest kernel checked to lack it: a scenario using the op must
    /// not run there (`[requires] kernel` must exclude it).
    pub last_without: [u32; 3],
}

mod table;

/// Most pages one `hold-refs` step holds: its pipe is sized to hold them all
/// (F_SETPIPE_SZ, one slot per page), and the kernel allocates the pipe's
/// slot array in one piece (40 bytes a slot: 160 KiB here).
pub const MAX_HELD_PAGES: u64 = 4096;

impl Op {
    pub const ALL: [Op; 33] = [
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
        Op::Release,
        Op::HoldRefs,
        Op::DropRefs,
        Op::PinPages,
        Op::UnpinPages,
        Op::Discard,
        Op::Fork,
        Op::ChildRead,
        Op::ChildWrite,
        Op::WriteProtect,
        Op::CheckWriteProtected,
        Op::MigrateVdso,
        Op::CheckFile,
        Op::CheckPageFlags,
        Op::CheckThpStats,
        Op::CheckSmaps,
        Op::PageOut,
    ];

    /// This op's rules: the one place they are written.
    pub const fn rules(self) -> &'static OpRules {
        table::rules(self)
    }

    pub const fn as_str(self) -> &'static str {
        self.rules().name
    }

    /// The op with this name, as scenario files write it.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// Ops that issue one dmirror ioctl and check its result: the only ones
    /// with `expect_errno` and `expect_cpages`. (`migrate-race` issues many
    /// and checks them itself.)
    pub fn issues_ioctl(self) -> bool {
        self.rules().checks.errno == Errno::Ioctl
    }

    /// Ops that report device faults (`expect_faults`).
    pub fn reports_faults(self) -> bool {
        self.rules().checks.faults
    }

    /// Ops whose steps must state `expect_faults` unless the ioctl is
    /// expected to fail.
    pub fn needs_faults(self) -> bool {
        self.rules().checks.faults_required
    }

    /// Ops that need `pages`, never defaulting to the whole mapping.
    pub fn needs_pages(self) -> bool {
        matches!(self.rules().pages, Pages::Required { .. })
    }

    /// Ops that work on no pages of their own and refuse `pages`.
    pub fn takes_no_pages(self) -> bool {
        matches!(self.rules().pages, Pages::None { .. })
    }

    /// Ops that check their own result: no `expect_errno`, no variants.
    pub fn checks_itself(self) -> bool {
        matches!(self.rules().checks.errno, Errno::OwnCheck { .. })
    }

    /// A migration of the step's pages one way (not `migrate-race`, whose
    /// rounds the step's duration does not measure one by one).
    pub fn is_migration(self) -> bool {
        matches!(
            self.rules().kind,
            OpKind::MigrateToDevice | OpKind::MigrateToSystem
        )
    }

    /// The CPU touches the step's pages (`migrate-race` too: it writes).
    pub fn is_cpu_access(self) -> bool {
        matches!(
            self.rules().kind,
            OpKind::CpuAccess { .. } | OpKind::MigrateRace
        )
    }

    /// The CPU writes the step's pages.
    pub fn cpu_writes(self) -> bool {
        matches!(
            self.rules().kind,
            OpKind::CpuAccess { writes: true } | OpKind::MigrateRace
        )
    }

    /// The device writes the step's pages.
    pub fn device_writes(self) -> bool {
        self.rules().kind == OpKind::DeviceAccess { writes: true }
    }

    /// The step takes references or pins on its pages (`hold-refs`,
    /// `pin-pages`).
    pub fn holds_refs(self) -> bool {
        self.rules().kind == OpKind::PageRefs { hold: true }
    }

    /// The step drops the references or pins earlier steps took
    /// (`drop-refs`, `unpin-pages`).
    pub fn drops_refs(self) -> bool {
        self.rules().kind == OpKind::PageRefs { hold: false }
    }

    /// For a step that holds references or pins: the op that drops them;
    /// for one that drops them: the op that takes them.
    pub fn ref_partner(self) -> Option<Op> {
        match self {
            Op::HoldRefs => Some(Op::DropRefs),
            Op::DropRefs => Some(Op::HoldRefs),
            Op::PinPages => Some(Op::UnpinPages),
            Op::UnpinPages => Some(Op::PinPages),
            _ => None,
        }
    }

    /// The forked child reads or writes the step's pages (`child-read`,
    /// `child-write`).
    pub fn is_child_access(self) -> bool {
        matches!(self.rules().kind, OpKind::ChildAccess { .. })
    }

    /// The step enters the kernel for its pages, so that allocations made
    /// on its way can be made to fail (`fail_kernel_alloc`): migrations,
    /// device and CPU accesses, references and pins taken.
    pub fn may_fail_kernel_alloc(self) -> bool {
        matches!(
            self.rules().kind,
            OpKind::MigrateToDevice
                | OpKind::MigrateToSystem
                | OpKind::DeviceAccess { .. }
                | OpKind::CpuAccess { .. }
                | OpKind::PageRefs { hold: true }
                | OpKind::EvictDevice
        )
    }

    /// Tests of the harness itself, not of the kernel.
    pub fn is_harness_only(self) -> bool {
        self.rules().kind == OpKind::HarnessOnly
    }

    /// What this op needs that older kernels lack: its newer dmirror
    /// command ([`Op::newer_command`]), or for `pin-pages` gup_test's
    /// PIN_LONGTERM_TEST_START (mm/gup_test.h: 6.12.117 has it, 6.1.192
    /// does not; kernels between were not checked).
    pub fn newer_interface(self) -> Option<NewerCommand> {
        match self {
            Op::PinPages => Some(NewerCommand {
                name: "PIN_LONGTERM_TEST_START",
                module: "gup_test",
                first_seen: "6.12",
                last_without: [6, 1, u32::MAX],
            }),
            _ => self.newer_command(),
        }
    }

    /// The dmirror command this op issues when only newer test_hmm has it.
    /// 6.12.117's lib/test_hmm_uapi.h ends at HMM_DMIRROR_RELEASE (0x07);
    /// 7.2.13's adds HMM_DMIRROR_FLAGS (0x08), 7.3.4's also
    /// HMM_DMIRROR_READ_UNLOCKED (0x09). Kernels between were not checked.
    pub fn newer_command(self) -> Option<NewerCommand> {
        let cmd = self.rules().command?;
        let since = cmd.newer?;
        Some(NewerCommand {
            name: cmd.name,
            module: "test_hmm",
            first_seen: since.first_seen,
            last_without: since.last_without,
        })
    }
}

#[cfg(test)]
mod tests;

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
