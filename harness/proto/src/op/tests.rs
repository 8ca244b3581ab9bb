use super::*;
use crate::scenario::Prot;

/// Where each op stands in [`Op::ALL`]: an exhaustive match, so a new
/// variant must be given a place here, and the test below then fails
/// until `ALL` holds it there.
fn position(op: Op) -> usize {
    match op {
        Op::MigrateToDevice => 0,
        Op::MigrateToSystem => 1,
        Op::Snapshot => 2,
        Op::DeviceRead => 3,
        Op::DeviceWrite => 4,
        Op::CpuRead => 5,
        Op::CpuWrite => 6,
        Op::UnmapNeighbour => 7,
        Op::UserfaultfdIdle => 8,
        Op::Hang => 9,
        Op::HangGuest => 10,
        Op::MigrateRace => 11,
        Op::FailAlloc => 12,
        Op::Munmap => 13,
        Op::Mprotect => 14,
        Op::DeviceReadUnlocked => 15,
        Op::Release => 16,
        Op::HoldRefs => 17,
        Op::DropRefs => 18,
        Op::PinPages => 19,
        Op::UnpinPages => 20,
        Op::Discard => 21,
        Op::Fork => 22,
        Op::ChildRead => 23,
        Op::ChildWrite => 24,
        Op::WriteProtect => 25,
        Op::CheckWriteProtected => 26,
        Op::MigrateVdso => 27,
        Op::CheckFile => 28,
        Op::CheckPageFlags => 29,
        Op::CheckThpStats => 30,
        Op::CheckSmaps => 31,
        Op::PageOut => 32,
    }
}

#[test]
fn all_holds_every_variant_once() {
    for (i, op) in Op::ALL.into_iter().enumerate() {
        assert_eq!(position(op), i, "{op:?}");
    }
    let most = Op::ALL.into_iter().map(position).max().unwrap();
    assert_eq!(most + 1, Op::ALL.len());
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
fn names_find_their_op() {
    for op in Op::ALL {
        assert_eq!(Op::from_name(op.as_str()), Some(op));
    }
    assert_eq!(Op::from_name("migrate"), None);
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
fn every_ops_rules_are_consistent() {
    for op in Op::ALL {
        let r = op.rules();
        let c = r.checks;
        let name = r.name;
        // Fields that count or describe pages need pages to work on.
        if op.takes_no_pages() {
            assert!(!c.cpages && !c.faults && !c.states, "{name}");
        }
        // Counts, faults and states come from one checked ioctl.
        for given in [c.cpages, c.faults, c.states] {
            assert!(!given || c.errno == Errno::Ioctl, "{name}");
        }
        // A checked ioctl reports its pages, except release, which
        // reports none (test_hmm answers 0 pages for the whole device),
        // migrate-vdso, whose page is not the mapping's, and pin-pages
        // (gup_test pins all or none).
        // pin-pages' ioctl is gup_test's, no dmirror command.
        if c.errno == Errno::Ioctl {
            assert!(r.command.is_some() || op == Op::PinPages, "{name}");
            let own_pages = !matches!(
                r.kind,
                OpKind::EvictDevice | OpKind::MigrateOutside | OpKind::PageRefs { .. }
            );
            assert_eq!(c.cpages, own_pages, "{name}");
        }
        // Only migrate-race takes iterations, and with them min_complete;
        // only mprotect takes prot.
        assert_eq!(c.iterations, op == Op::MigrateRace, "{name}");
        assert_eq!(c.min_complete, c.iterations, "{name}");
        // A required `expect_faults` is one the op takes; only device-read
        // requires it.
        assert!(!c.faults_required || c.faults, "{name}");
        assert_eq!(c.faults_required, op == Op::DeviceRead, "{name}");
        assert_eq!(op.needs_faults(), c.faults_required, "{name}");
        assert_eq!(c.prot, op == Op::Mprotect, "{name}");
        // Only check-page-flags takes `set` and `clear`.
        assert_eq!(c.page_flags, op == Op::CheckPageFlags, "{name}");
        // Only check-thp-stats takes `thp_stats`.
        assert_eq!(c.thp_stats, op == Op::CheckThpStats, "{name}");
        // Only check-smaps takes `smaps`.
        assert_eq!(c.smaps, op == Op::CheckSmaps, "{name}");
        // Ops that need pages change the mapping, or hold references on
        // its pages, and must succeed.
        if op.needs_pages() {
            let kind_ok = matches!(
                r.kind,
                OpKind::VmaChange
                    | OpKind::PageAdvice
                    | OpKind::PageRefs { hold: true }
                    | OpKind::WriteProtect
            );
            // pin-pages may be expected to fail (`expect_errno`): the
            // kernel may refuse a pin.
            assert!(
                (op.checks_itself() || op == Op::PinPages) && kind_ok,
                "{name}"
            );
        }
        // Hints say which op they are about.
        if let Pages::None { why } = r.pages {
            assert!(why.starts_with(name), "{name}: {why}");
        }
        if let Errno::OwnCheck { why } = c.errno {
            assert!(why.starts_with(name) || why.contains(name), "{name}: {why}");
        }
        if let Some(cmd) = r.command {
            assert!(cmd.name.starts_with("HMM_DMIRROR_"), "{name}");
        }
        // The name is lower-case kebab, unique.
        assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
        assert_eq!(Op::ALL.iter().filter(|o| o.as_str() == name).count(), 1);
    }
}

#[test]
fn kinds() {
    let migrations: Vec<Op> = Op::ALL.into_iter().filter(|o| o.is_migration()).collect();
    assert_eq!(migrations, [Op::MigrateToDevice, Op::MigrateToSystem]);
    let cpu: Vec<Op> = Op::ALL.into_iter().filter(|o| o.is_cpu_access()).collect();
    assert_eq!(cpu, [Op::CpuRead, Op::CpuWrite, Op::MigrateRace]);
    let writes: Vec<Op> = Op::ALL.into_iter().filter(|o| o.cpu_writes()).collect();
    assert_eq!(writes, [Op::CpuWrite, Op::MigrateRace]);
    let harness: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|o| o.is_harness_only())
        .collect();
    assert_eq!(harness, [Op::Hang, Op::HangGuest]);
    assert!(Op::DeviceWrite.device_writes() && !Op::DeviceRead.device_writes());
    let no_pages: Vec<Op> = Op::ALL.into_iter().filter(|o| o.takes_no_pages()).collect();
    assert_eq!(
        no_pages,
        [
            Op::UnmapNeighbour,
            Op::UserfaultfdIdle,
            Op::Hang,
            Op::HangGuest,
            Op::FailAlloc,
            Op::Release,
            Op::DropRefs,
            Op::UnpinPages,
            Op::Fork,
            Op::MigrateVdso,
            Op::CheckFile,
            Op::CheckThpStats,
            Op::CheckSmaps
        ]
    );
    let child: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|o| o.is_child_access())
        .collect();
    assert_eq!(child, [Op::ChildRead, Op::ChildWrite]);
    let hold: Vec<Op> = Op::ALL.into_iter().filter(|o| o.holds_refs()).collect();
    let drop: Vec<Op> = Op::ALL.into_iter().filter(|o| o.drops_refs()).collect();
    assert_eq!(
        (hold.as_slice(), drop.as_slice()),
        (
            &[Op::HoldRefs, Op::PinPages][..],
            &[Op::DropRefs, Op::UnpinPages][..]
        )
    );
    // Each holding op has its dropping op, and the other way round.
    for op in hold.iter().chain(&drop) {
        let partner = op.ref_partner().unwrap();
        assert_eq!(partner.ref_partner(), Some(*op));
        assert_ne!(partner.holds_refs(), op.holds_refs());
    }
    assert_eq!(Op::Munmap.ref_partner(), None);
    // Neither is a CPU access: vmsplice or GUP of an unmapped page fails
    // with EFAULT, it does not kill the scenario.
    for op in hold {
        assert!(!op.is_cpu_access() && op.needs_pages());
    }
}

#[test]
fn pin_pages_needs_a_newer_gup_test() {
    let pin = Op::PinPages.newer_interface().unwrap();
    assert_eq!(
        (pin.name, pin.module, pin.last_without[..2].to_vec()),
        ("PIN_LONGTERM_TEST_START", "gup_test", vec![6, 1])
    );
    // The dmirror commands are the same through both.
    for op in Op::ALL.into_iter().filter(|op| *op != Op::PinPages) {
        assert_eq!(op.newer_interface(), op.newer_command(), "{op:?}");
    }
    assert_eq!(Op::FailAlloc.newer_interface().unwrap().module, "test_hmm");
}

#[test]
fn check_file_reads_the_file_not_the_mapping() {
    let op = Op::CheckFile;
    assert_eq!(Op::from_name("check-file"), Some(op));
    let back: Op = serde_json::from_str("\"check-file\"").unwrap();
    assert_eq!(back, op);
    assert_eq!(serde_json::to_string(&op).unwrap(), "\"check-file\"");
    // The whole file, checked by the op itself: no pages, no expect*
    // fields, no variants, no ioctl.
    assert!(op.takes_no_pages() && op.checks_itself() && !op.issues_ioctl());
    assert_eq!(op.rules().command, None);
    assert_eq!(op.rules().kind, OpKind::FileCheck);
    // Through the file: no CPU access to the mapping, so the content
    // model does not change.
    assert!(!op.is_cpu_access() && !op.cpu_writes() && !op.device_writes());
    assert!(!op.is_child_access() && !op.holds_refs() && !op.drops_refs());
}

#[test]
fn check_page_flags_reads_proc_files_not_the_mapping() {
    let op = Op::CheckPageFlags;
    assert_eq!(Op::from_name("check-page-flags"), Some(op));
    let back: Op = serde_json::from_str("\"check-page-flags\"").unwrap();
    assert_eq!(back, op);
    assert_eq!(serde_json::to_string(&op).unwrap(), "\"check-page-flags\"");
    // The whole mapping by default, like check-write-protected; checked
    // by the op itself: no expect* fields, no variants, no ioctl; the
    // flags in `set` and `clear`.
    let r = op.rules();
    assert_eq!(r.pages, Pages::WholeByDefault);
    assert!(op.checks_itself() && !op.issues_ioctl() && r.checks.page_flags);
    assert_eq!(r.command, None);
    assert_eq!(r.kind, OpKind::PageFlagsCheck);
    // /proc files only: no CPU access to the mapping, so the content
    // model does not change.
    assert!(!op.is_cpu_access() && !op.cpu_writes() && !op.device_writes());
    assert!(!op.is_child_access() && !op.holds_refs() && !op.drops_refs());
    assert!(!op.needs_pages() && !op.takes_no_pages());
}

#[test]
fn check_thp_stats_reads_sysfs_and_no_pages() {
    let op = Op::CheckThpStats;
    assert_eq!(Op::from_name("check-thp-stats"), Some(op));
    let r = op.rules();
    assert!(op.takes_no_pages() && !op.needs_pages());
    assert!(op.checks_itself() && !op.issues_ioctl() && r.checks.thp_stats);
    assert!(!r.checks.page_flags && !r.checks.states && !r.checks.cpages);
    assert_eq!(r.command, None);
    assert_eq!(r.kind, OpKind::ThpStatsCheck);
    assert!(!op.is_cpu_access() && !op.cpu_writes() && !op.device_writes());
    assert!(!op.is_child_access() && !op.holds_refs() && !op.drops_refs());
}

#[test]
fn check_smaps_reads_proc_and_no_pages() {
    let op = Op::CheckSmaps;
    assert_eq!(Op::from_name("check-smaps"), Some(op));
    let r = op.rules();
    assert!(op.takes_no_pages() && !op.needs_pages());
    assert!(op.checks_itself() && !op.issues_ioctl() && r.checks.smaps);
    assert!(!r.checks.thp_stats && !r.checks.page_flags && !r.checks.states);
    assert_eq!(r.command, None);
    assert_eq!(r.kind, OpKind::SmapsCheck);
    assert!(!op.is_cpu_access() && !op.cpu_writes() && !op.device_writes());
    assert!(!op.is_child_access() && !op.holds_refs() && !op.drops_refs());
}
