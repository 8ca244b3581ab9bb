//! The table behind [`Op::rules`]: one entry per op, reached through an
//! exhaustive match, so that a new `Op` variant does not compile until it
//! has its rules here.

use super::{Checks, DmirrorCommand, Errno, Op, OpKind, OpRules, Pages, Since};

pub(super) const fn rules(op: Op) -> &'static OpRules {
    match op {
        Op::MigrateToDevice => &MIGRATE_TO_DEVICE,
        Op::MigrateToSystem => &MIGRATE_TO_SYSTEM,
        Op::Snapshot => &SNAPSHOT,
        Op::DeviceRead => &DEVICE_READ,
        Op::DeviceWrite => &DEVICE_WRITE,
        Op::CpuRead => &CPU_READ,
        Op::CpuWrite => &CPU_WRITE,
        Op::UnmapNeighbour => &UNMAP_NEIGHBOUR,
        Op::UserfaultfdIdle => &USERFAULTFD_IDLE,
        Op::Hang => &HANG,
        Op::HangGuest => &HANG_GUEST,
        Op::MigrateRace => &MIGRATE_RACE,
        Op::FailAlloc => &FAIL_ALLOC,
        Op::Munmap => &MUNMAP,
        Op::Discard => &DISCARD,
        Op::Mprotect => &MPROTECT,
        Op::DeviceReadUnlocked => &DEVICE_READ_UNLOCKED,
        Op::Release => &RELEASE,
        Op::HoldRefs => &HOLD_REFS,
        Op::DropRefs => &DROP_REFS,
        Op::PinPages => &PIN_PAGES,
        Op::UnpinPages => &UNPIN_PAGES,
        Op::Fork => &FORK,
        Op::ChildRead => &CHILD_READ,
        Op::ChildWrite => &CHILD_WRITE,
        Op::WriteProtect => &WRITE_PROTECT,
        Op::CheckWriteProtected => &CHECK_WRITE_PROTECTED,
        Op::MigrateVdso => &MIGRATE_VDSO,
        Op::CheckFile => &CHECK_FILE,
        Op::CheckPageFlags => &CHECK_PAGE_FLAGS,
        Op::CheckThpStats => &CHECK_THP_STATS,
        Op::CheckSmaps => &CHECK_SMAPS,
        Op::PageOut => &PAGE_OUT,
    }
}

/// Takes none of the optional fields.
const NOTHING: Checks = Checks {
    cpages: false,
    faults: false,
    faults_required: false,
    errno: Errno::NoIoctl,
    states: false,
    iterations: false,
    min_complete: false,
    prot: false,
    page_flags: false,
    thp_stats: false,
    smaps: false,
};

/// One dmirror ioctl, checked by `expect_errno` and `expect_cpages`.
const IOCTL: Checks = Checks {
    cpages: true,
    errno: Errno::Ioctl,
    ..NOTHING
};

/// A device read or write: also reports its faults.
const DEVICE_IO: Checks = Checks {
    faults: true,
    ..IOCTL
};

/// Checks its own result, for the reason given.
const fn own_check(why: &'static str) -> Checks {
    Checks {
        errno: Errno::OwnCheck { why },
        ..NOTHING
    }
}

/// A command every test_hmm checked has.
const fn command(name: &'static str) -> Option<DmirrorCommand> {
    Some(DmirrorCommand { name, newer: None })
}

/// A command from kernel `first_seen` on; `last_without` lacks it.
const fn newer(
    name: &'static str,
    first_seen: &'static str,
    last_without: [u32; 3],
) -> Option<DmirrorCommand> {
    Some(DmirrorCommand {
        name,
        newer: Some(Since {
            first_seen,
            last_without,
        }),
    })
}

const MIGRATE_TO_DEVICE: OpRules = OpRules {
    name: "migrate-to-device",
    kind: OpKind::MigrateToDevice,
    pages: Pages::WholeByDefault,
    checks: IOCTL,
    command: command("HMM_DMIRROR_MIGRATE_TO_DEV"),
};

const MIGRATE_TO_SYSTEM: OpRules = OpRules {
    name: "migrate-to-system",
    kind: OpKind::MigrateToSystem,
    pages: Pages::WholeByDefault,
    checks: IOCTL,
    command: command("HMM_DMIRROR_MIGRATE_TO_SYS"),
};

const SNAPSHOT: OpRules = OpRules {
    name: "snapshot",
    kind: OpKind::Snapshot,
    pages: Pages::WholeByDefault,
    checks: Checks {
        states: true,
        ..IOCTL
    },
    command: command("HMM_DMIRROR_SNAPSHOT"),
};

/// test_hmm's dmirror_read() copies the pages its mirror holds
/// (dmirror_do_read()); at the first page missing it faults in the rest of
/// the range (dmirror_fault()) and counts one in `faults`, then reads on.
/// The count says whether the pages were there, so a read that succeeds
/// must state it.
const DEVICE_READ: OpRules = OpRules {
    name: "device-read",
    kind: OpKind::DeviceAccess { writes: false },
    pages: Pages::WholeByDefault,
    checks: Checks {
        faults_required: true,
        ..DEVICE_IO
    },
    command: command("HMM_DMIRROR_READ"),
};

const DEVICE_WRITE: OpRules = OpRules {
    name: "device-write",
    kind: OpKind::DeviceAccess { writes: true },
    pages: Pages::WholeByDefault,
    checks: DEVICE_IO,
    command: command("HMM_DMIRROR_WRITE"),
};

const CPU_READ: OpRules = OpRules {
    name: "cpu-read",
    kind: OpKind::CpuAccess { writes: false },
    pages: Pages::WholeByDefault,
    checks: NOTHING,
    command: None,
};

const CPU_WRITE: OpRules = OpRules {
    name: "cpu-write",
    kind: OpKind::CpuAccess { writes: true },
    pages: Pages::WholeByDefault,
    checks: NOTHING,
    command: None,
};

const UNMAP_NEIGHBOUR: OpRules = OpRules {
    name: "unmap-neighbour",
    kind: OpKind::VmaChange,
    pages: Pages::None {
        why: "unmap-neighbour always works on the page just below the mapping",
    },
    checks: own_check("unmap-neighbour issues no ioctl"),
    command: None,
};

const USERFAULTFD_IDLE: OpRules = OpRules {
    name: "userfaultfd-idle",
    kind: OpKind::UserfaultfdCheck,
    pages: Pages::None {
        why: "userfaultfd-idle checks the userfaultfd of the whole mapping",
    },
    checks: own_check("userfaultfd-idle only checks that no userfaultfd event is pending"),
    command: None,
};

const HANG: OpRules = OpRules {
    name: "hang",
    kind: OpKind::HarnessOnly,
    pages: Pages::None {
        why: "hang touches no pages: it only blocks until the scenario's timeout",
    },
    checks: own_check("hang tests the harness: it blocks until the scenario's timeout kills it"),
    command: None,
};

const HANG_GUEST: OpRules = OpRules {
    name: "hang-guest",
    kind: OpKind::HarnessOnly,
    pages: Pages::None {
        why: "hang-guest touches no pages: it only makes the guest stop answering",
    },
    checks: own_check(
        "hang-guest tests the harness: the guest stops answering until the host's timeout",
    ),
    command: None,
};

const MIGRATE_RACE: OpRules = OpRules {
    name: "migrate-race",
    kind: OpKind::MigrateRace,
    pages: Pages::WholeByDefault,
    checks: Checks {
        iterations: true,
        min_complete: true,
        ..own_check(
            "migrate-race checks the data: afterwards the range must hold the last pattern \
             written, and at least `min_complete` rounds must have migrated every page",
        )
    },
    command: command("HMM_DMIRROR_MIGRATE_TO_DEV"),
};

const FAIL_ALLOC: OpRules = OpRules {
    name: "fail-alloc",
    kind: OpKind::DeviceFlag,
    pages: Pages::None {
        why: "fail-alloc sets a flag of the open device file: the first allocation of the next \
              migration fails, wherever it is",
    },
    checks: own_check(
        "fail-alloc must succeed: it only sets a flag; the migration after it shows the effect",
    ),
    command: newer("HMM_DMIRROR_FLAGS", "7.2", [6, 12, u32::MAX]),
};

/// Why munmap, mprotect and discard take no `expect_errno`.
const VMA_CHECKS: Checks = own_check(
    "munmap, mprotect and discard issue no dmirror ioctl and must succeed; check their effect \
     with a snapshot step",
);

/// mm/madvise.c, madvise_pageout(): the pages are isolated and reclaimed
/// at once (reclaim_pages()), referenced or not.
const PAGE_OUT: OpRules = OpRules {
    name: "page-out",
    kind: OpKind::PageAdvice,
    pages: Pages::Required { verb: "page out" },
    checks: own_check(
        "page-out issues no dmirror ioctl and must succeed; check what went to swap with a \
         check-smaps step (`swap`)",
    ),
    command: None,
};

const DISCARD: OpRules = OpRules {
    name: "discard",
    kind: OpKind::VmaChange,
    pages: Pages::Required { verb: "discard" },
    checks: VMA_CHECKS,
    command: None,
};

const MUNMAP: OpRules = OpRules {
    name: "munmap",
    kind: OpKind::VmaChange,
    pages: Pages::Required { verb: "unmap" },
    checks: VMA_CHECKS,
    command: None,
};

const MPROTECT: OpRules = OpRules {
    name: "mprotect",
    kind: OpKind::VmaChange,
    pages: Pages::Required { verb: "protect" },
    checks: Checks {
        prot: true,
        ..VMA_CHECKS
    },
    command: None,
};

const DEVICE_READ_UNLOCKED: OpRules = OpRules {
    name: "device-read-unlocked",
    kind: OpKind::DeviceAccess { writes: false },
    pages: Pages::WholeByDefault,
    checks: DEVICE_IO,
    command: newer("HMM_DMIRROR_READ_UNLOCKED", "7.3", [7, 2, u32::MAX]),
};

/// test_hmm's ioctl answers 0 and reports no pages (lib/test_hmm.c,
/// dmirror_fops_unlocked_ioctl(): `case HMM_DMIRROR_RELEASE`); what it did
/// shows in the states and data of later steps.
const RELEASE: OpRules = OpRules {
    name: "release",
    kind: OpKind::EvictDevice,
    pages: Pages::None {
        why: "release evicts all of the device's memory, whichever pages hold it",
    },
    checks: Checks {
        errno: Errno::Ioctl,
        ..NOTHING
    },
    command: command("HMM_DMIRROR_RELEASE"),
};

/// The pipe holds one reference per page: iter_to_pipe() (fs/splice.c)
/// takes them with iov_iter_get_pages2(), a plain get_user_pages (no
/// FOLL_PIN), and vmsplice_to_pipe() without SPLICE_F_GIFT leaves the pages
/// where they are. A page is faulted in as a CPU read would fault it (a hole
/// gets the zero page, a device-private page comes back to system memory).
const HOLD_REFS: OpRules = OpRules {
    name: "hold-refs",
    kind: OpKind::PageRefs { hold: true },
    pages: Pages::Required {
        verb: "hold references on",
    },
    checks: own_check(
        "hold-refs issues no dmirror ioctl and must succeed: vmsplice(2) must take every page; \
         check what the references change with the steps after it",
    ),
    command: None,
};

const DROP_REFS: OpRules = OpRules {
    name: "drop-refs",
    kind: OpKind::PageRefs { hold: false },
    pages: Pages::None {
        why: "drop-refs drops the references of every earlier hold-refs step, whichever pages \
              they are on",
    },
    checks: own_check(
        "drop-refs issues no dmirror ioctl and must succeed: each pipe must give back every byte \
         its hold-refs step put in",
    ),
    command: None,
};

/// gup_test (mm/gup_test.c, CONFIG_GUP_TEST, in debugfs):
/// pin_longterm_test_start() pins the pages with pin_user_pages() and
/// FOLL_LONGTERM (read-only: no FOLL_WRITE) and keeps them until
/// PIN_LONGTERM_TEST_STOP or the file's release. A small folio counts a pin
/// as GUP_PIN_COUNTING_BIAS references, a large one in `_pincount`: either
/// way folio_maybe_dma_pinned() says so.
const PIN_PAGES: OpRules = OpRules {
    name: "pin-pages",
    kind: OpKind::PageRefs { hold: true },
    pages: Pages::Required { verb: "pin" },
    // gup_test's PIN_LONGTERM_TEST_START: it pins every page or none
    // (pin_longterm_test_stop() on a failure), with pin_user_pages()'s
    // errno; no counts.
    checks: Checks {
        errno: Errno::Ioctl,
        ..NOTHING
    },
    command: None,
};

const UNPIN_PAGES: OpRules = OpRules {
    name: "unpin-pages",
    kind: OpKind::PageRefs { hold: false },
    pages: Pages::None {
        why: "unpin-pages drops the pins of every earlier pin-pages step, whichever pages they \
              are on",
    },
    checks: own_check(
        "unpin-pages issues no dmirror ioctl and must succeed: PIN_LONGTERM_TEST_STOP unpins \
         every page pinned",
    ),
    command: None,
};

/// fork(2) in the scenario's process (mm/memory.c: copy_page_range()): an
/// AnonExclusive page becomes shared (folio_try_dup_anon_rmap_pte()), both
/// ptes read-only in a copy-on-write mapping, and a writable
/// device-private entry is made readable in both (copy_nonpresent_pte()).
const FORK: OpRules = OpRules {
    name: "fork",
    kind: OpKind::Fork,
    pages: Pages::None {
        why: "fork copies the whole address space, the whole mapping with it",
    },
    checks: own_check(
        "fork issues no dmirror ioctl and must succeed; child-read checks what the child sees",
    ),
    command: None,
};

const CHILD_READ: OpRules = OpRules {
    name: "child-read",
    kind: OpKind::ChildAccess { writes: false },
    pages: Pages::WholeByDefault,
    checks: own_check(
        "child-read checks the data: the child must read what the pages held at the fork, or \
         what it wrote since, never the parent's later writes",
    ),
    command: None,
};

const CHILD_WRITE: OpRules = OpRules {
    name: "child-write",
    kind: OpKind::ChildAccess { writes: true },
    pages: Pages::WholeByDefault,
    checks: own_check(
        "child-write must succeed; the parent's later reads check that the child's data never \
         shows in its pages",
    ),
    command: None,
};

/// UFFDIO_WRITEPROTECT (fs/userfaultfd.c, mwriteprotect_range()): the
/// ptes get the uffd-wp bit (`_PAGE_UFFD` on x86) and lose write
/// permission. migrate_vma_collect_pmd() copies the bit into the migration
/// entry (pte_swp_mkuffd()), remove_migration_pte() (mm/migrate.c) into the
/// device-private entry and, on the way back, into the new pte.
const WRITE_PROTECT: OpRules = OpRules {
    name: "write-protect",
    kind: OpKind::WriteProtect,
    pages: Pages::Required {
        verb: "write-protect",
    },
    checks: own_check(
        "write-protect issues no dmirror ioctl and must succeed: userfaultfd must register the \
         mapping and protect every page",
    ),
    command: None,
};

/// /proc/self/pagemap (fs/proc/task_mmu.c, pte_to_pagemap_entry()):
/// PM_UFFD_WP for a present pte with the bit and for a swap-type entry
/// (migration, device-private) with it.
const CHECK_WRITE_PROTECTED: OpRules = OpRules {
    name: "check-write-protected",
    kind: OpKind::PagemapCheck,
    pages: Pages::WholeByDefault,
    checks: own_check(
        "check-write-protected checks /proc/self/pagemap itself: every page of the range must \
         show PM_UFFD_WP",
    ),
    command: None,
};

/// test_hmm's dmirror_migrate_to_device() asks only that the VMA be
/// readable (the vdso is) before migrate_vma_setup(), which refuses a
/// VM_SPECIAL one with EINVAL; the vdso's VMA has VM_DONTEXPAND from
/// __install_special_mapping(). A kernel that let it through would walk
/// it, collect nothing and leave test_hmm's mirror without the page, and
/// test_hmm's read-back would answer ENOENT instead.
const MIGRATE_VDSO: OpRules = OpRules {
    name: "migrate-vdso",
    kind: OpKind::MigrateOutside,
    pages: Pages::None {
        why: "migrate-vdso migrates the first page of the process's vdso, outside the mapping",
    },
    checks: Checks {
        errno: Errno::Ioctl,
        ..NOTHING
    },
    command: command("HMM_DMIRROR_MIGRATE_TO_DEV"),
};

/// A MAP_PRIVATE mapping never writes back to its file (the guest's is an
/// unlinked tmpfs file sized with set_len, all zeros): whatever the steps
/// did to the mapping, pread(2) of the file must read zeros. A page-cache
/// page that a migration to the device refused (__migrate_device_pages():
/// a page with a mapping that is not anonymous loses MIGRATE_PFN_MIGRATE)
/// must still be the file's own; a kernel that went on to
/// folio_migrate_mapping() would leave the device page in the page cache,
/// and reading the file would show it (wrong data or an oops).
const CHECK_FILE: OpRules = OpRules {
    name: "check-file",
    kind: OpKind::FileCheck,
    pages: Pages::None {
        why: "check-file reads the whole backing file, not pages of the mapping",
    },
    checks: own_check(
        "check-file issues no dmirror ioctl and checks the file itself: every byte must read \
         as zero",
    ),
    command: None,
};

/// /proc/self/pagemap gives each page's PFN (bit 63 present, bits 0-54 the
/// PFN, shown to CAP_SYS_ADMIN only: the guest runs as root), and
/// /proc/kpageflags (fs/proc/page.c, stable_page_flags()) that PFN's flags,
/// the folio's: every page of a THP reports its folio's. Only pages of
/// system memory have them: a device-private page is a swap-type entry
/// (PM_SWAP) without a PFN of its own, and device-coherent memory is
/// ZONE_DEVICE, not online (pfn_to_online_page() is NULL: KPF_NOPAGE, or 0
/// from 7.x on).
const CHECK_PAGE_FLAGS: OpRules = OpRules {
    name: "check-page-flags",
    kind: OpKind::PageFlagsCheck,
    pages: Pages::WholeByDefault,
    checks: Checks {
        page_flags: true,
        ..own_check(
            "check-page-flags checks /proc/kpageflags itself: every page of the range must be \
             a page of system memory with the flags `set` names and none of those `clear` names",
        )
    },
    command: None,
};

/// The counters are the system's, not the mapping's: no pages. Each named
/// counter is read from sysfs before the scenario's mapping is made and
/// again at the step (mm/huge_memory.c: the `stats` group of each mTHP
/// size's kobject, per-CPU counters summed when read).
const CHECK_THP_STATS: OpRules = OpRules {
    name: "check-thp-stats",
    kind: OpKind::ThpStatsCheck,
    pages: Pages::None {
        why: "check-thp-stats reads the THP counters of the whole system, not of pages",
    },
    checks: Checks {
        thp_stats: true,
        ..own_check(
            "check-thp-stats checks the THP counters itself: each counter `thp_stats` names must \
             have changed by the amount it gives since the scenario began",
        )
    },
    command: None,
};

/// The fields are sums over the mapping's VMAs (fs/proc/task_mmu.c,
/// show_smap(): one block per VMA; an mprotect of part of the mapping
/// splits it), so the step takes the whole mapping, no pages.
const CHECK_SMAPS: OpRules = OpRules {
    name: "check-smaps",
    kind: OpKind::SmapsCheck,
    pages: Pages::None {
        why: "check-smaps sums /proc/self/smaps over the whole mapping's VMAs",
    },
    checks: Checks {
        smaps: true,
        ..own_check(
            "check-smaps checks the mapping's /proc/self/smaps itself: each field `smaps` names \
             must be the number of pages it gives",
        )
    },
    command: None,
};
