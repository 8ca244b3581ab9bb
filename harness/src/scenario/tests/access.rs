//! The ops that change the mapping (`munmap`, `mprotect`), the ops that
//! hold references or pins (`hold-refs`, `drop-refs`, `pin-pages`,
//! `unpin-pages`), the ops that need a newer test_hmm or gup_test
//! (`fail-alloc`, `device-read-unlocked`, `pin-pages`), the op that
//! needs the mapping's backing file (`check-file`), and `check-page-flags`
//! with its flags.

use std::path::Path;

use super::{assert_at, errs, one, render, OK};
use crate::scenario::parse_str;

fn loads(text: &str) {
    if let Err(ds) = parse_str(Path::new("t.toml"), text) {
        panic!("expected no problems, got:\n{}", render(&ds));
    }
}

/// OK (16 pages, a cpu-read step on lines 6-7) with `rest` after it.
fn with(rest: &str) -> String {
    format!("{OK}{rest}")
}

const REQUIRES_72: &str = "[requires]\nkernel = \">=7.2\"\n";

#[test]
fn munmap_and_mprotect_need_pages_and_prot() {
    let ds = errs(&with(
        "[[step]]\nop = \"munmap\"\n[[step]]\nop = \"mprotect\"\npages = [0, 4]\n\
         [[step]]\nop = \"cpu-read\"\npages = [0, 4]\nprot = \"read-only\"\n",
    ));
    assert_eq!(ds.len(), 3, "{}", render(&ds));
    assert_at(&ds[0], 9, 6, "`op = \"munmap\"` needs `pages`");
    assert_at(&ds[1], 11, 6, "`op = \"mprotect\"` needs `prot`");
    assert_at(
        &ds[2],
        16,
        1,
        "`prot` does not apply to `op = \"cpu-read\"`",
    );
    loads(&with(
        "[[step]]\nop = \"mprotect\"\npages = [0, 4]\nprot = \"read-only\"\n\
         [[step]]\nop = \"munmap\"\npages = [4, 8]\n[[step]]\nop = \"cpu-read\"\npages = [0, 4]\n\
         [[step]]\nop = \"snapshot\"\npages = [8, 16]\n[[step.expect]]\npages = [8, 16]\n\
         state = \"none\"\n",
    ));
}

#[test]
fn mapping_ops_take_no_expectations() {
    let ds = errs(&with(
        "[[step]]\nop = \"munmap\"\npages = [0, 1]\nexpect_errno = 22\n\
         [[step]]\nop = \"mprotect\"\npages = [1, 2]\nprot = \"read-write\"\nexpect_cpages = 1\n",
    ));
    assert_eq!(ds.len(), 2, "{}", render(&ds));
    assert_at(
        &ds[0],
        11,
        1,
        "`expect_errno` does not apply to `op = \"munmap\"`",
    );
    assert_at(
        &ds[1],
        16,
        1,
        "`expect_cpages` does not apply to `op = \"mprotect\"`",
    );
}

#[test]
fn steps_after_munmap_must_not_reach_unmapped_pages() {
    // Line 9: the munmap step; then a cpu-read and a snapshot of the whole
    // mapping, a migration with and without an errno, an mprotect.
    let ds = errs(&with(
        "[[step]]\nop = \"munmap\"\npages = [4, 8]\n\
         [[step]]\nop = \"cpu-read\"\n\
         [[step]]\nop = \"snapshot\"\nexpect = [{ pages = [0, 4], state = \"none\" },\n\
         { pages = [4, 16], state = \"any\" }]\n# every page named (three lines, as before)\n\
         [[step]]\nop = \"migrate-to-device\"\nexpect_errno = 22\n\
         [[step]]\nop = \"migrate-to-device\"\npages = [2, 6]\n\
         [[step]]\nop = \"mprotect\"\npages = [7, 9]\nprot = \"read-only\"\n",
    ));
    assert_eq!(ds.len(), 4, "{}", render(&ds));
    assert_at(
        &ds[0],
        12,
        6,
        "`op = \"cpu-read\"` reaches page 4, which step 1 (line 9) unmapped",
    );
    assert!(ds[0].hint.as_ref().unwrap().contains("SIGSEGV"));
    assert_at(&ds[1], 14, 6, "`op = \"snapshot\"` reaches page 4");
    assert!(ds[1].hint.as_ref().unwrap().contains("expect_errno"));
    assert_at(&ds[2], 22, 6, "`op = \"migrate-to-device\"` reaches page 4");
    assert_at(&ds[3], 25, 6, "`op = \"mprotect\"` reaches page 7");
    assert!(ds[3].hint.as_ref().unwrap().contains("ENOMEM"));
}

#[test]
fn writes_after_mprotect_read_only() {
    let ds = errs(&with(
        "[[step]]\nop = \"mprotect\"\npages = [0, 8]\nprot = \"read-only\"\n\
         [[step]]\nop = \"cpu-write\"\npages = [6, 10]\n\
         [[step]]\nop = \"device-write\"\npages = [7, 8]\n\
         [[step]]\nop = \"mprotect\"\npages = [0, 8]\nprot = \"read-write\"\n\
         [[step]]\nop = \"cpu-write\"\n",
    ));
    assert_eq!(ds.len(), 2, "{}", render(&ds));
    assert_at(
        &ds[0],
        13,
        6,
        "`op = \"cpu-write\"` writes page 6, which step 1 (line 9) made read-only",
    );
    assert_at(&ds[1], 16, 6, "`op = \"device-write\"` writes page 7");
    assert!(ds[1].hint.as_ref().unwrap().contains("expect_errno"));
}

#[test]
fn newer_commands_need_a_kernel_condition() {
    let fail_alloc = "[[step]]\nop = \"fail-alloc\"\n";
    let d = one(&with(fail_alloc));
    assert_at(
        &d,
        9,
        6,
        "`op = \"fail-alloc\"` needs a kernel condition in [requires]",
    );
    let hint = d.hint.unwrap();
    assert!(
        hint.contains("HMM_DMIRROR_FLAGS") && hint.contains(">=7.2"),
        "{hint}"
    );
    loads(&format!("{}{REQUIRES_72}", with(fail_alloc)));
    loads(&format!(
        "{}[requires]\nkernel = \">=6.13\"\n",
        with(fail_alloc)
    ));
    let d = one(&format!(
        "{}[requires]\nkernel = \"<7.5\"\n",
        with(fail_alloc)
    ));
    assert_at(&d, 9, 6, "[requires] `kernel = \"<7.5\"` also admits 6.12");
    // READ_UNLOCKED is 7.3's: >=7.2 is not enough.
    let unlocked = "[[step]]\nop = \"device-read-unlocked\"\nexpect_faults = 1\n";
    let d = one(&format!("{}{REQUIRES_72}", with(unlocked)));
    assert_at(&d, 9, 6, "needs HMM_DMIRROR_READ_UNLOCKED");
    loads(&format!(
        "{}[requires]\nkernel = \">=7.3\"\n",
        with(unlocked)
    ));
    // An invalid condition is reported once, as that.
    let d = one(&format!(
        "{}[requires]\nkernel = \"new\"\n",
        with(fail_alloc)
    ));
    assert!(d.message.contains("invalid kernel condition"), "{d}");
}

#[test]
fn fail_alloc_takes_no_pages_or_variants() {
    let ds = errs(&format!(
        "{}{REQUIRES_72}",
        with(
            "[[step]]\nop = \"fail-alloc\"\npages = [0, 1]\n[[step.variant]]\n\
             when = { kernel = \">=7.3\" }\nexpect_errno = 0\n"
        )
    ));
    assert_eq!(ds.len(), 2, "{}", render(&ds));
    assert_at(
        &ds[0],
        10,
        1,
        "`pages` does not apply to `op = \"fail-alloc\"`",
    );
    assert_at(
        &ds[1],
        11,
        1,
        "`op = \"fail-alloc\"` takes no [[step.variant]]",
    );
}

#[test]
fn access_follows_overlapping_changes() {
    // Lines: 9 mprotect [0, 8) read-only, 13 mprotect [4, 6) read-write,
    // 17 cpu-write [4, 6) (fine), 20 cpu-write [5, 7) (page 6 still
    // read-only, from step 1), 23 munmap [2, 3), 26 cpu-read [0, 4).
    let ds = errs(&with(
        "[[step]]\nop = \"mprotect\"\npages = [0, 8]\nprot = \"read-only\"\n\
         [[step]]\nop = \"mprotect\"\npages = [4, 6]\nprot = \"read-write\"\n\
         [[step]]\nop = \"cpu-write\"\npages = [4, 6]\n\
         [[step]]\nop = \"cpu-write\"\npages = [5, 7]\n\
         [[step]]\nop = \"munmap\"\npages = [2, 3]\n\
         [[step]]\nop = \"cpu-read\"\npages = [0, 4]\n",
    ));
    assert_eq!(ds.len(), 2, "{}", render(&ds));
    assert_at(
        &ds[0],
        20,
        6,
        "`op = \"cpu-write\"` writes page 6, which step 1 (line 9) made read-only",
    );
    assert_at(
        &ds[1],
        26,
        6,
        "`op = \"cpu-read\"` reaches page 2, which step 5 (line 23) unmapped",
    );
}

#[test]
fn many_changes_over_the_largest_mapping_check_quickly() {
    // Per page this would be 262,144 pages times hundreds of steps.
    let mut text =
        "description = \"d\"\n[mapping]\nkind = \"anon-private\"\npages = 262144\n".to_string();
    for k in 0..200u64 {
        let a = k * 1000;
        text.push_str(&format!(
            "[[step]]\nop = \"munmap\"\npages = [{a}, {}]\n[[step]]\nop = \"cpu-read\"\npages = [{}, 262144]\n",
            a + 1,
            a + 1
        ));
    }
    text.push_str("[[step]]\nop = \"cpu-read\"\n");
    let ds = errs(&text);
    assert_eq!(ds.len(), 1, "{}", render(&ds));
    assert!(
        ds[0].message.contains("reaches page 0, which step 0"),
        "{}",
        ds[0]
    );
}

#[test]
fn release_takes_no_pages_or_cpages_but_an_errno() {
    let ds = errs(&with(
        "[[step]]\nop = \"release\"\npages = [0, 1]\nexpect_cpages = 0\n\
         [[step]]\nop = \"release\"\nexpect_errno = 0\n",
    ));
    assert_eq!(ds.len(), 2, "{}", render(&ds));
    assert_at(
        &ds[0],
        10,
        1,
        "`pages` does not apply to `op = \"release\"`",
    );
    assert!(ds[1].message.contains("expect_cpages"), "{}", render(&ds));
}

#[test]
fn hold_refs_needs_pages_that_stay_mapped() {
    // Line 9: a hold-refs without pages; line 11: a munmap; line 14: a
    // hold-refs reaching its pages; line 17: one over too many pages.
    let ds = errs(&with(
        "[[step]]\nop = \"hold-refs\"\n\
         [[step]]\nop = \"munmap\"\npages = [4, 8]\n\
         [[step]]\nop = \"hold-refs\"\npages = [2, 6]\n\
         [[step]]\nop = \"hold-refs\"\npages = [0, 4]\nexpect_errno = 14\n",
    ));
    assert_eq!(ds.len(), 3, "{}", render(&ds));
    assert_at(&ds[0], 9, 6, "`op = \"hold-refs\"` needs `pages`");
    assert!(ds[0].hint.as_ref().unwrap().contains("hold references on"));
    assert_at(
        &ds[1],
        14,
        6,
        "`op = \"hold-refs\"` reaches page 4, which step 2 (line 11) unmapped",
    );
    assert!(ds[1].hint.as_ref().unwrap().contains("EFAULT"));
    assert_at(
        &ds[2],
        19,
        1,
        "`expect_errno` does not apply to `op = \"hold-refs\"`",
    );
}

#[test]
fn hold_refs_holds_at_most_max_held_pages() {
    let text = "description = \"d\"\n[mapping]\nkind = \"anon-private\"\npages = 8192\n\
                [[step]]\nop = \"hold-refs\"\npages = [0, 4097]\n\
                [[step]]\nop = \"hold-refs\"\npages = [4097, 8192]\n";
    let d = one(text);
    assert_at(&d, 7, 9, "`op = \"hold-refs\"` over 4097 pages");
    assert!(d.hint.as_ref().unwrap().contains("at most 4096 pages"));
}

#[test]
fn drop_refs_needs_references_to_drop() {
    // Line 9: a drop-refs before any hold-refs; lines 11-16: hold, drop,
    // drop again (line 16).
    let ds = errs(&with(
        "[[step]]\nop = \"drop-refs\"\n\
         [[step]]\nop = \"hold-refs\"\npages = [0, 1]\n\
         [[step]]\nop = \"drop-refs\"\n\
         [[step]]\nop = \"drop-refs\"\npages = [0, 1]\n",
    ));
    assert_eq!(ds.len(), 3, "{}", render(&ds));
    assert_at(
        &ds[0],
        9,
        6,
        "`op = \"drop-refs\"` drops nothing: no hold-refs step before it",
    );
    assert_at(
        &ds[1],
        16,
        6,
        "`op = \"drop-refs\"` drops nothing: no hold-refs step since step 3 (line 14) \
         dropped them",
    );
    assert_at(
        &ds[2],
        17,
        1,
        "`pages` does not apply to `op = \"drop-refs\"`",
    );
    loads(&with(
        "[[step]]\nop = \"hold-refs\"\npages = [0, 16]\n\
         [[step]]\nop = \"migrate-to-device\"\nexpect_errno = 2\n\
         [[step]]\nop = \"drop-refs\"\n\
         [[step]]\nop = \"hold-refs\"\npages = [3, 4]\n",
    ));
}

#[test]
fn pin_pages_needs_a_gup_test_that_has_it() {
    let pin = "[[step]]\nop = \"pin-pages\"\npages = [0, 2]\n";
    let d = one(&with(pin));
    assert_at(
        &d,
        9,
        6,
        "`op = \"pin-pages\"` needs a kernel condition in [requires]",
    );
    let hint = d.hint.unwrap();
    assert!(
        hint.contains("PIN_LONGTERM_TEST_START exists in gup_test from 6.12")
            && hint.contains("6.1 lacks it"),
        "{hint}"
    );
    let d = one(&format!("{}[requires]\nkernel = \">=6.0\"\n", with(pin)));
    assert_at(&d, 9, 6, "[requires] `kernel = \">=6.0\"` also admits 6.1");
    loads(&format!(
        "{}[requires]\nkernel = \">=6.12\"\nconfig = \"CONFIG_GUP_TEST\"\n",
        with(pin)
    ));
}

#[test]
fn pin_pages_may_expect_the_pin_to_fail_but_counts_nothing() {
    let req = "[requires]\nkernel = \">=6.12\"\nconfig = \"CONFIG_GUP_TEST\"\n";
    let pin = "[[step]]\nop = \"pin-pages\"\npages = [0, 2]\nexpect_errno = 16\n";
    loads(&format!("{}{req}", with(pin)));
    let pin = "[[step]]\nop = \"pin-pages\"\npages = [0, 2]\nexpect_cpages = 2\n";
    let d = one(&format!("{}{req}", with(pin)));
    assert_at(
        &d,
        11,
        1,
        "`expect_cpages` does not apply to `op = \"pin-pages\"`",
    );
    // unpin-pages still issues nothing to expect.
    let unpin = "[[step]]\nop = \"pin-pages\"\npages = [0, 2]\n\
                 [[step]]\nop = \"unpin-pages\"\nexpect_errno = 16\n";
    let ds = errs(&format!("{}{req}", with(unpin)));
    assert!(
        ds.iter().any(|d| d
            .message
            .contains("`expect_errno` does not apply to `op = \"unpin-pages\"`")),
        "{}",
        render(&ds)
    );
}

#[test]
fn unpin_pages_and_drop_refs_each_drop_their_own() {
    // Line 9: pin-pages; line 12: drop-refs, which drops vmsplice
    // references, not pins; line 14: unpin-pages; line 16: unpin-pages
    // again, with nothing pinned.
    let ds = errs(&format!(
        "{}[requires]\nkernel = \">=6.12\"\n",
        with(
            "[[step]]\nop = \"pin-pages\"\npages = [0, 2]\n\
             [[step]]\nop = \"drop-refs\"\n\
             [[step]]\nop = \"unpin-pages\"\n\
             [[step]]\nop = \"unpin-pages\"\n"
        )
    ));
    assert_eq!(ds.len(), 2, "{}", render(&ds));
    assert_at(
        &ds[0],
        12,
        6,
        "`op = \"drop-refs\"` drops nothing: no hold-refs step before it",
    );
    assert_at(
        &ds[1],
        16,
        6,
        "`op = \"unpin-pages\"` drops nothing: no pin-pages step since step 3 (line 14) \
         dropped them",
    );
    let d = one(&format!(
        "{}[requires]\nkernel = \">=6.12\"\n",
        with("[[step]]\nop = \"munmap\"\npages = [0, 1]\n[[step]]\nop = \"pin-pages\"\npages = [0, 2]\n")
    ));
    assert_at(
        &d,
        12,
        6,
        "`op = \"pin-pages\"` reaches page 0, which step 1 (line 9) unmapped",
    );
    assert!(d.hint.as_ref().unwrap().contains("EFAULT"));
}

#[test]
fn discard_needs_pages_of_a_private_anonymous_mapping_that_are_mapped() {
    let ds = errs(&with(
        "[[step]]\nop = \"discard\"\n\
         [[step]]\nop = \"munmap\"\npages = [0, 2]\n\
         [[step]]\nop = \"discard\"\npages = [1, 4]\n",
    ));
    assert_eq!(ds.len(), 2, "{}", render(&ds));
    assert_at(&ds[0], 9, 6, "`op = \"discard\"` needs `pages`");
    assert_at(
        &ds[1],
        14,
        6,
        "`op = \"discard\"` reaches page 1, which step 2 (line 11) unmapped",
    );
    assert!(ds[1].hint.as_ref().unwrap().contains("ENOMEM"));
    let shared =
        with("[[step]]\nop = \"discard\"\npages = [0, 2]\n").replace("anon-private", "anon-shared");
    let d = one(&shared);
    assert_at(
        &d,
        9,
        6,
        "`op = \"discard\"` needs `kind = \"anon-private\"`",
    );
    loads(&with(
        "[[step]]\nop = \"discard\"\npages = [0, 2]\n[[step]]\nop = \"cpu-read\"\n",
    ));
}

#[test]
fn mirror_is_0_or_1_and_only_for_migrations_snapshots_and_device_access() {
    let ds = errs(&with(
        "[[step]]\nop = \"cpu-write\"\nmirror = 1\n\
         [[step]]\nop = \"migrate-to-system\"\nmirror = 2\n",
    ));
    assert_eq!(ds.len(), 2, "{}", render(&ds));
    assert_at(
        &ds[0],
        10,
        1,
        "`mirror` does not apply to `op = \"cpu-write\"`",
    );
    assert_at(
        &ds[1],
        13,
        10,
        "`mirror = 2`: test_hmm has two devices of each kind",
    );
    loads(&with(
        "[[step]]\nop = \"migrate-to-device\"\n[[step]]\nop = \"migrate-to-system\"\nmirror = 1\n\
         [[step]]\nop = \"device-read\"\nmirror = 0\nexpect_faults = 0\n",
    ));
}

#[test]
fn fork_once_before_its_child_steps_in_a_private_mapping() {
    // Line 9: child-read before any fork; 11: the fork; 13: a second
    // fork; 15: a VMA change after it.
    let ds = errs(&with(
        "[[step]]\nop = \"child-read\"\n\
         [[step]]\nop = \"fork\"\n\
         [[step]]\nop = \"fork\"\n\
         [[step]]\nop = \"munmap\"\npages = [0, 1]\n",
    ));
    assert_eq!(ds.len(), 3, "{}", render(&ds));
    assert_at(
        &ds[0],
        9,
        6,
        "`op = \"child-read\"` comes before the fork step (line 11)",
    );
    assert_at(
        &ds[1],
        13,
        6,
        "a second `op = \"fork\"` (the first is on line 11)",
    );
    assert_at(&ds[2], 15, 6, "`op = \"munmap\"` in a scenario that forks");
    let d = one(&with("[[step]]\nop = \"child-write\"\npages = [0, 2]\n"));
    assert_at(
        &d,
        9,
        6,
        "`op = \"child-write\"` needs a fork step before it",
    );
    let shared = with("[[step]]\nop = \"fork\"\n").replace("anon-private", "anon-shared");
    let d = one(&shared);
    assert_at(&d, 9, 6, "`op = \"fork\"` of a shared mapping");
    assert!(d.hint.as_ref().unwrap().contains("anon-private"));
    let ro = with("[[step]]\nop = \"fork\"\n[[step]]\nop = \"child-write\"\n")
        .replace("pages = 16\n", "pages = 16\nprot = \"read-only\"\n");
    let d = one(&ro);
    assert_at(&d, 12, 6, "`op = \"child-write\"` on a read-only mapping");
    loads(&with(
        "[[step]]\nop = \"fork\"\n[[step]]\nop = \"migrate-to-device\"\n\
         [[step]]\nop = \"child-read\"\npages = [0, 8]\n[[step]]\nop = \"cpu-write\"\n\
         [[step]]\nop = \"child-write\"\n[[step]]\nop = \"cpu-read\"\n",
    ));
}

#[test]
fn write_protect_then_no_writes_and_checks_of_protected_pages_only() {
    // Line 9: a check before any write-protect; 11-12: protect [0, 8);
    // 14: a CPU write after it; 16-17: a check reaching page 8.
    let ds = errs(&with(
        "[[step]]\nop = \"check-write-protected\"\n\
         [[step]]\nop = \"write-protect\"\npages = [0, 8]\n\
         [[step]]\nop = \"cpu-write\"\n\
         [[step]]\nop = \"check-write-protected\"\npages = [4, 9]\n",
    ));
    assert_eq!(ds.len(), 3, "{}", render(&ds));
    assert_at(
        &ds[0],
        9,
        6,
        "`op = \"check-write-protected\"` of page 0, which no write-protect step before it \
         protected",
    );
    assert_at(
        &ds[1],
        14,
        6,
        "`op = \"cpu-write\"` after the write-protect step on line 11",
    );
    assert_at(
        &ds[2],
        16,
        6,
        "`op = \"check-write-protected\"` of page 8, which no write-protect step before it \
         protected",
    );
    let shared = with("[[step]]\nop = \"write-protect\"\npages = [0, 1]\n")
        .replace("anon-private", "anon-shared");
    let d = one(&shared);
    assert_at(
        &d,
        9,
        6,
        "`op = \"write-protect\"` in a mapping that is not `kind = \"anon-private\"`",
    );
    loads(&with(
        "[[step]]\nop = \"cpu-write\"\n[[step]]\nop = \"write-protect\"\npages = [0, 16]\n\
         [[step]]\nop = \"migrate-to-device\"\n[[step]]\nop = \"check-write-protected\"\n\
         [[step]]\nop = \"write-protect\"\npages = [0, 2]\n",
    ));
}

#[test]
fn pin_cpu_in_steps_scenarios_without_a_race() {
    let pinned = |rest: &str| OK.replacen("\n", "\npin_cpu = true\n", 1) + rest;
    loads(&pinned(
        "[[step]]\nop = \"fork\"\n[[step]]\nop = \"child-read\"\n",
    ));
    // Line 2: pin_cpu; 10: the race.
    let d = one(&pinned(
        "[[step]]\nop = \"migrate-race\"\npages = [0, 4]\niterations = 2\nmin_complete = 1\n",
    ));
    assert_at(
        &d,
        2,
        11,
        "`pin_cpu` with `op = \"migrate-race\"` (line 10)",
    );
    assert!(d.hint.as_ref().unwrap().contains("different CPUs"));
    let selftest = "description = \"d\"\npin_cpu = true\nkind = \"kselftest\"\n\
                    [kselftest]\nbinary = \"hmm-tests\"\n";
    assert_at(
        &one(selftest),
        2,
        11,
        "`pin_cpu` in a `kind = \"kselftest\"` scenario",
    );
    let d = one(&OK.replacen("\n", "\npin_cpu = 1\n", 1));
    assert_eq!(d.line, 2, "{d}");
}

#[test]
fn check_file_only_in_a_file_private_mapping() {
    let step = "[[step]]\nop = \"check-file\"\n";
    let file = with(step).replace("anon-private", "file-private");
    loads(&file);
    // Parsed as the op, and back through the record format unchanged.
    let s = parse_str(Path::new("t.toml"), &file).unwrap();
    assert_eq!(s.step[1].op, hmmlab_proto::scenario::Op::CheckFile);
    assert_eq!(s.step[1].pages, None);
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains("\"op\":\"check-file\""), "{json}");
    assert_eq!(
        serde_json::from_str::<hmmlab_proto::scenario::Scenario>(&json).unwrap(),
        s
    );
    // Line 4: the mapping's kind; line 9: the step's op.
    for kind in ["anon-private", "anon-shared"] {
        let d = one(&with(step).replace("anon-private", kind));
        assert_at(
            &d,
            9,
            6,
            "`op = \"check-file\"` needs `kind = \"file-private\"` in [mapping]",
        );
        let hint = d.hint.as_ref().unwrap();
        assert!(
            hint.contains("line 4") && hint.contains("file-private"),
            "{hint}"
        );
    }
    // The whole file, checked by the op itself: no pages, no expect*
    // fields, no variants.
    let d = one(&format!("{file}pages = [0, 1]\n"));
    assert_at(&d, 10, 1, "`pages` does not apply to `op = \"check-file\"`");
    let d = one(&format!("{file}expect_errno = 0\n"));
    assert_at(
        &d,
        10,
        1,
        "`expect_errno` does not apply to `op = \"check-file\"`",
    );
    let d = one(&format!(
        "{file}[[step.variant]]\nwhen = {{ kernel = \">=7.0\" }}\nexpect_errno = 0\n"
    ));
    assert!(
        d.message
            .contains("`op = \"check-file\"` takes no [[step.variant]]"),
        "{d}"
    );
}

#[test]
fn check_page_flags_names_known_flags_in_set_or_clear() {
    use hmmlab_proto::scenario::{Op, PageFlag, PageRange};
    // Line 9: the op; 10: set; 11: clear.
    let step = |rest: &str| with(&format!("[[step]]\nop = \"check-page-flags\"\n{rest}"));
    let file =
        step("set = [\"uptodate\", \"anon\"]\nclear = [\"locked\", \"thp\"]\npages = [0, 8]\n");
    loads(&file);
    // Parsed as the op and its flags, and back through the record format
    // unchanged.
    let s = parse_str(Path::new("t.toml"), &file).unwrap();
    let st = &s.step[1];
    assert_eq!(st.op, Op::CheckPageFlags);
    assert_eq!(st.pages, Some(PageRange(0, 8)));
    assert_eq!(st.set, Some(vec![PageFlag::Uptodate, PageFlag::Anon]));
    assert_eq!(st.clear, Some(vec![PageFlag::Locked, PageFlag::Thp]));
    let json = serde_json::to_string(&s).unwrap();
    assert!(
        json.contains(r#""op":"check-page-flags","pages":[0,8],"set":["uptodate","anon"],"clear":["locked","thp"]"#),
        "{json}"
    );
    assert_eq!(
        serde_json::from_str::<hmmlab_proto::scenario::Scenario>(&json).unwrap(),
        s
    );
    // One list is enough, the other may be empty; the whole mapping by
    // default; every flag name.
    loads(&step("clear = [\"dirty\"]\nset = []\n"));
    loads(&step(
        "set = [\"locked\", \"referenced\", \"uptodate\", \"dirty\", \"lru\", \"active\", \
         \"anon\", \"swapcache\", \"swapbacked\", \"thp\"]\n",
    ));

    // A name that is no flag: where it is, and the names to use.
    let d = one(&step("set = [\"uptodate\", \"mlocked\"]\n"));
    assert_at(&d, 10, 20, "invalid value `mlocked` for `set`");
    let hint = d.hint.as_deref().unwrap();
    assert!(
        hint.contains(
            "`locked`, `referenced`, `uptodate`, `dirty`, `lru`, `active`, `anon`, \
             `swapcache`, `swapbacked`, `thp`"
        ),
        "{hint}"
    );
    let d = one(&step("clear = [\"Dirty\"]\n"));
    assert_at(&d, 10, 10, "invalid value `Dirty` for `clear`");
    assert!(
        d.hint.as_deref().unwrap().contains("did you mean `dirty`?"),
        "{d}"
    );

    // No flag at all: at the op, with the names.
    for rest in ["", "set = []\n", "set = []\nclear = []\n"] {
        let d = one(&step(rest));
        assert_at(
            &d,
            9,
            6,
            "`op = \"check-page-flags\"` needs a flag in `set` or `clear`",
        );
        let hint = d.hint.as_deref().unwrap();
        assert!(hint.contains("`swapbacked`, `thp`"), "{hint}");
    }
    // A flag in both lists: at its place in `clear`, with the line of `set`.
    let d = one(&step(
        "set = [\"anon\", \"dirty\"]\nclear = [\"lru\",\n\"dirty\"]\n",
    ));
    assert_at(&d, 12, 1, "`dirty` is in both `set` and `clear`");
    assert!(d.hint.as_deref().unwrap().contains("line 10"), "{d}");
    // Twice in one list.
    let d = one(&step("set = [\"anon\", \"anon\"]\n"));
    assert_at(
        &d,
        10,
        16,
        "`anon` is named twice in `set` (first on line 10)",
    );

    // Pages inside the mapping, and still mapped.
    let d = one(&step("set = [\"anon\"]\npages = [8, 17]\n"));
    assert_at(
        &d,
        11,
        9,
        "page range `[8, 17]` ends past the end of the mapping",
    );
    let d = one(&with(
        "[[step]]\nop = \"munmap\"\npages = [4, 8]\n\
         [[step]]\nop = \"check-page-flags\"\nset = [\"anon\"]\npages = [0, 5]\n",
    ));
    assert_at(
        &d,
        12,
        6,
        "`op = \"check-page-flags\"` reaches page 4, which step 1 (line 9) unmapped",
    );
    assert!(
        d.hint
            .as_deref()
            .unwrap()
            .contains("no page in system memory"),
        "{d}"
    );

    // Checked by the op itself: no expect* fields, no variants.
    let d = one(&step("set = [\"anon\"]\nexpect_errno = 0\n"));
    assert_at(
        &d,
        11,
        1,
        "`expect_errno` does not apply to `op = \"check-page-flags\"`",
    );
    let d = one(&step("set = [\"anon\"]\nexpect_cpages = 1\n"));
    assert_at(
        &d,
        11,
        1,
        "`expect_cpages` does not apply to `op = \"check-page-flags\"`",
    );
    let d = one(&step(
        "set = [\"anon\"]\n[[step.variant]]\nwhen = { kernel = \">=7.0\" }\n",
    ));
    assert!(
        d.message
            .contains("`op = \"check-page-flags\"` takes no [[step.variant]]"),
        "{d}"
    );
    // The flags are this op's: no other takes them.
    let ds = errs(&with(
        "[[step]]\nop = \"check-write-protected\"\nset = [\"anon\"]\nclear = [\"thp\"]\n",
    ));
    assert_eq!(ds.len(), 3, "{}", render(&ds));
    assert_at(
        &ds[1],
        10,
        1,
        "`set` does not apply to `op = \"check-write-protected\"`",
    );
    assert!(
        ds[1]
            .hint
            .as_deref()
            .unwrap()
            .contains("`op = \"check-page-flags\"`"),
        "{}",
        ds[1]
    );
    assert_at(
        &ds[2],
        11,
        1,
        "`clear` does not apply to `op = \"check-write-protected\"`",
    );
}

#[test]
fn check_thp_stats_names_known_counters_and_no_pages() {
    use hmmlab_proto::scenario::{Op, ThpStat};
    // Line 9: the op; 10: thp_stats.
    let step = |rest: &str| with(&format!("[[step]]\nop = \"check-thp-stats\"\n{rest}"));
    let file = step("thp_stats = { anon_fault_alloc = 1, nr_anon = -1 }\n");
    loads(&file);
    let s = parse_str(Path::new("t.toml"), &file).unwrap();
    let st = &s.step[1];
    assert_eq!(st.op, Op::CheckThpStats);
    assert_eq!(
        st.thp_stats,
        Some([(ThpStat::AnonFaultAlloc, 1), (ThpStat::NrAnon, -1)].into())
    );
    let json = serde_json::to_string(&s).unwrap();
    assert!(
        json.contains(r#""op":"check-thp-stats","thp_stats":{"anon_fault_alloc":1,"nr_anon":-1}"#),
        "{json}"
    );
    // No counter: at the op, with the names.
    for rest in ["", "thp_stats = {}\n"] {
        let d = one(&step(rest));
        assert_at(
            &d,
            9,
            6,
            "`op = \"check-thp-stats\"` needs a counter in `thp_stats`",
        );
        let hint = d.hint.as_deref().unwrap();
        assert!(
            hint.contains("`anon_fault_alloc`, `anon_fault_fallback`"),
            "{hint}"
        );
    }
    // A name that is no counter.
    let d = one(&step("thp_stats = { split = 1, anon_fault_alloc_ = 1 }\n"));
    assert_at(&d, 10, 26, "invalid key `anon_fault_alloc_` in `thp_stats`");
    let hint = d.hint.as_deref().unwrap();
    assert!(
        hint.starts_with("did you mean `anon_fault_alloc`?"),
        "{hint}"
    );
    assert!(hint.contains("`split_deferred`, `nr_anon`"), "{hint}");
    // The counters are the system's: no pages.
    let d = one(&step("thp_stats = { split = 0 }\npages = [0, 1]\n"));
    assert_at(
        &d,
        11,
        1,
        "`pages` does not apply to `op = \"check-thp-stats\"`",
    );
    // Only this op takes them.
    let d = one(&with(
        "[[step]]\nop = \"snapshot\"\nthp_stats = { split = 0 }\n[[step.expect]]\npages = [0, 16]\nstate = \"none\"\n",
    ));
    assert_at(
        &d,
        10,
        1,
        "`thp_stats` does not apply to `op = \"snapshot\"`",
    );
    assert!(
        d.hint
            .as_deref()
            .unwrap()
            .contains("`op = \"check-thp-stats\"`"),
        "{d}"
    );
}

#[test]
fn check_smaps_names_known_fields_and_no_pages() {
    use hmmlab_proto::scenario::{Op, SmapsField};
    // Line 9: the op; 10: smaps.
    let step = |rest: &str| with(&format!("[[step]]\nop = \"check-smaps\"\n{rest}"));
    let file = step("smaps = { rss = 16, referenced = 1 }\n");
    loads(&file);
    let s = parse_str(Path::new("t.toml"), &file).unwrap();
    let st = &s.step[1];
    assert_eq!(st.op, Op::CheckSmaps);
    assert_eq!(
        st.smaps,
        Some([(SmapsField::Rss, 16), (SmapsField::Referenced, 1)].into())
    );
    let json = serde_json::to_string(&s).unwrap();
    assert!(
        json.contains(r#""op":"check-smaps","smaps":{"rss":16,"referenced":1}"#),
        "{json}"
    );
    // No field: at the op, with the names.
    for rest in ["", "smaps = {}\n"] {
        let d = one(&step(rest));
        assert_at(&d, 9, 6, "`op = \"check-smaps\"` needs a field in `smaps`");
        let hint = d.hint.as_deref().unwrap();
        assert!(hint.contains("`rss`, `referenced`, `anonymous`"), "{hint}");
    }
    // A name that is no field, and a count that is no number of pages.
    let d = one(&step("smaps = { rss = 1, refrenced = 1 }\n"));
    assert_at(&d, 10, 20, "invalid key `refrenced` in `smaps`");
    let hint = d.hint.as_deref().unwrap();
    assert!(hint.starts_with("did you mean `referenced`?"), "{hint}");
    assert_eq!(
        one(&step("smaps = { rss = -1 }\n")).line,
        10,
        "a negative number of pages"
    );
    // The fields are the whole mapping's: no pages.
    let d = one(&step("smaps = { rss = 0 }\npages = [0, 1]\n"));
    assert_at(
        &d,
        11,
        1,
        "`pages` does not apply to `op = \"check-smaps\"`",
    );
    // Only this op takes them.
    let d = one(&with(
        "[[step]]\nop = \"snapshot\"\nsmaps = { rss = 0 }\n[[step.expect]]\npages = [0, 16]\nstate = \"none\"\n",
    ));
    assert_at(&d, 10, 1, "`smaps` does not apply to `op = \"snapshot\"`");
    assert!(
        d.hint
            .as_deref()
            .unwrap()
            .contains("`op = \"check-smaps\"`"),
        "{d}"
    );
}

#[test]
fn a_check_smaps_variant_replaces_its_fields_and_gives_nothing_else() {
    use hmmlab_proto::scenario::SmapsField;
    // Line 9: the op; 10: smaps; 11: the variant; 12: when; 13: its fields.
    let step = |rest: &str| {
        with(&format!(
            "[[step]]\nop = \"check-smaps\"\nsmaps = {{ referenced = 1 }}\n[[step.variant]]\n\
             when = {{ config = \"!CONFIG_SWAP\" }}\n{rest}"
        ))
    };
    let file = step("smaps = { referenced = 0 }\n");
    loads(&file);
    let s = parse_str(Path::new("t.toml"), &file).unwrap();
    assert_eq!(
        s.step[1].variant[0].smaps,
        Some([(SmapsField::Referenced, 0)].into())
    );
    // A variant that gives no field asserts nothing.
    for rest in ["", "smaps = {}\n"] {
        let d = one(&step(rest));
        assert_eq!(
            d.message, "a variant of `op = \"check-smaps\"` needs a field in `smaps`",
            "{d}"
        );
        assert_eq!(d.line, 11, "{d}");
    }
    // Nothing but `smaps`: the op reports no count, no errno, no states.
    let d = one(&step("smaps = { rss = 1 }\nexpect_cpages = 1\n"));
    assert_at(
        &d,
        14,
        1,
        "`expect_cpages` does not apply to `op = \"check-smaps\"`",
    );
    let d = one(&step("smaps = { rss = 1 }\nexpect_errno = 2\n"));
    assert_at(
        &d,
        14,
        1,
        "`expect_errno` does not apply to `op = \"check-smaps\"`",
    );
    // Other ops' variants take no `smaps`.
    let d = one(&with(
        "[[step]]\nop = \"migrate-to-device\"\nexpect_cpages = 16\n[[step.variant]]\n\
         when = { kernel = \"<7.0\" }\nsmaps = { rss = 1 }\n",
    ));
    assert_at(
        &d,
        13,
        1,
        "`smaps` does not apply to `op = \"migrate-to-device\"`",
    );
}

#[test]
fn page_out_needs_pages_that_are_mapped() {
    let ds = errs(&with(
        "[[step]]\nop = \"page-out\"\n\
         [[step]]\nop = \"munmap\"\npages = [0, 2]\n\
         [[step]]\nop = \"page-out\"\npages = [1, 4]\n",
    ));
    assert_eq!(ds.len(), 2, "{}", render(&ds));
    assert_at(&ds[0], 9, 6, "`op = \"page-out\"` needs `pages`");
    assert_at(
        &ds[1],
        14,
        6,
        "`op = \"page-out\"` reaches page 1, which step 2 (line 11) unmapped",
    );
    assert!(ds[1].hint.as_ref().unwrap().contains("MADV_PAGEOUT"));
    // Advice, not a VMA change: allowed in a scenario that forks, before
    // the fork or after it.
    loads(&with(
        "[[step]]\nop = \"page-out\"\npages = [0, 2]\n[[step]]\nop = \"fork\"\n\
         [[step]]\nop = \"page-out\"\npages = [2, 4]\n[[step]]\nop = \"child-read\"\n",
    ));
    // Any kind of mapping, and no expectation of its own.
    loads(
        &with("[[step]]\nop = \"page-out\"\npages = [0, 2]\n")
            .replace("anon-private", "anon-shared"),
    );
    let d = one(&with(
        "[[step]]\nop = \"page-out\"\npages = [0, 2]\nexpect_cpages = 2\n",
    ));
    assert_eq!(
        d.message, "`expect_cpages` does not apply to `op = \"page-out\"`",
        "{d}"
    );
}
