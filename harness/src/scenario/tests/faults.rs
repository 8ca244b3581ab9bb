//! `fail_kernel_alloc`: where it applies, what it names, and the
//! [requires] it needs.

use std::path::Path;

use super::{assert_at, errs, one, render, OK};
use crate::scenario::parse_str;

const REQUIRES: &str = "[requires]\nconfig = \"CONFIG_FAULT_INJECTION_STACKTRACE_FILTER\"\n";

/// OK (16 pages, a cpu-read step on lines 6-7), `steps` after it (from
/// line 8), then `requires`.
fn with(steps: &str, requires: &str) -> String {
    format!("{OK}{steps}{requires}")
}

const MIGRATE_FAILING: &str = "[[step]]\nop = \"migrate-to-device\"\nexpect_errno = 2\n\
     fail_kernel_alloc = { allocator = \"slab\", under = \"__migrate_device_pages\" }\n";

#[test]
fn a_migration_may_have_its_allocations_fail() {
    let text = with(MIGRATE_FAILING, REQUIRES);
    let s = match parse_str(Path::new("t.toml"), &text) {
        Ok(s) => s,
        Err(ds) => panic!("expected no problems, got:\n{}", render(&ds)),
    };
    let f = s.step[1].fail_kernel_alloc.as_ref().unwrap();
    assert_eq!(f.allocator.as_str(), "slab");
    assert_eq!(f.under, "__migrate_device_pages");
    // Page allocations, a CPU access, a pin, with a kernel condition too.
    let text = with(
        "[[step]]\nop = \"cpu-write\"\n\
         fail_kernel_alloc = { allocator = \"page\", under = \"do_anonymous_page\" }\n",
        "[requires]\nkernel = \">=6.12\"\nconfig = \"CONFIG_FAULT_INJECTION_STACKTRACE_FILTER\"\n",
    );
    if let Err(ds) = parse_str(Path::new("t.toml"), &text) {
        panic!("expected no problems, got:\n{}", render(&ds));
    }
}

#[test]
fn only_steps_that_enter_the_kernel_for_their_pages_take_it() {
    let d = one(&with(
        "[[step]]\nop = \"page-out\"\npages = [0, 2]\n\
         fail_kernel_alloc = { allocator = \"page\", under = \"f\" }\n",
        REQUIRES,
    ));
    assert_at(
        &d,
        11,
        1,
        "`fail_kernel_alloc` does not apply to `op = \"page-out\"`",
    );
    let hint = d.hint.as_deref().unwrap();
    assert!(
        hint.contains("`migrate-to-device`") && hint.contains("`pin-pages`"),
        "{hint}"
    );
    assert!(
        !hint.contains("`snapshot`") && !hint.contains("`page-out`"),
        "{hint}"
    );
}

#[test]
fn it_names_a_kernel_function() {
    for bad in ["", "two words", "0day", "f()", "mm/migrate_device.c"] {
        let text = with(
            &format!(
                "[[step]]\nop = \"migrate-to-system\"\n\
                 fail_kernel_alloc = {{ allocator = \"page\", under = {bad:?} }}\n"
            ),
            REQUIRES,
        );
        let d = one(&text);
        assert_eq!(d.line, 10, "{d}");
        assert!(d.message.contains("is no name of a kernel function"), "{d}");
        assert!(d.hint.as_deref().unwrap().contains("/proc/kallsyms"), "{d}");
    }
    // A name the compiler gave a clone is one.
    let text = with(
        "[[step]]\nop = \"migrate-to-system\"\n\
         fail_kernel_alloc = { allocator = \"page\", under = \"migrate_vma_collect_skip.isra.0\" }\n",
        REQUIRES,
    );
    assert!(parse_str(Path::new("t.toml"), &text).is_ok());
}

#[test]
fn it_needs_the_stacktrace_filter_in_requires_once() {
    let twice = format!("{MIGRATE_FAILING}{MIGRATE_FAILING}");
    let d = one(&with(&twice, ""));
    assert_at(
        &d,
        11,
        1,
        "`fail_kernel_alloc` needs a config condition in [requires]",
    );
    let hint = d.hint.as_deref().unwrap();
    assert!(
        hint.contains("CONFIG_FAULT_INJECTION_STACKTRACE_FILTER")
            && hint.contains("images/configs/variants/fault.config"),
        "{hint}"
    );
    let d = one(&with(
        MIGRATE_FAILING,
        "[requires]\nconfig = \"CONFIG_FAILSLAB\"\n",
    ));
    assert!(
        d.message
            .contains("but [requires] `config = \"CONFIG_FAILSLAB\"` does not ask for it"),
        "{d}"
    );
}

#[test]
fn an_unknown_allocator_or_key_is_refused() {
    let ds = errs(&with(
        "[[step]]\nop = \"migrate-to-device\"\n\
         fail_kernel_alloc = { allocator = \"vmalloc\", under = \"f\" }\n",
        REQUIRES,
    ));
    assert!(!ds.is_empty());
    assert_eq!(ds[0].line, 10, "{}", render(&ds));
    assert!(ds[0].message.contains("vmalloc"), "{}", render(&ds));
    let ds = errs(&with(
        "[[step]]\nop = \"migrate-to-device\"\n\
         fail_kernel_alloc = { allocator = \"page\", under = \"f\", times = 2 }\n",
        REQUIRES,
    ));
    assert!(!ds.is_empty());
    assert!(ds[0].message.contains("times"), "{}", render(&ds));
}

#[test]
fn a_step_may_spare_the_allocations_that_reclaim_and_say_how_many_fail() {
    let text = with(
        "[[step]]\nop = \"pin-pages\"\npages = [0, 2]\n\
         fail_kernel_alloc = { allocator = \"page\", under = \"migrate_device_coherent_folio\", \
         spare_reclaiming = true, expect_failed = 0 }\n",
        "[requires]\nkernel = \">=6.12\"\nconfig = \"CONFIG_FAULT_INJECTION_STACKTRACE_FILTER\"\n",
    );
    let s = match parse_str(Path::new("t.toml"), &text) {
        Ok(s) => s,
        Err(ds) => panic!("expected no problems, got:\n{}", render(&ds)),
    };
    let f = s.step[1].fail_kernel_alloc.as_ref().unwrap();
    assert!(f.spare_reclaiming);
    assert_eq!(f.expect_failed, Some(0));
    // Both default: every allocation fails, at least one must.
    let s = parse_str(Path::new("t.toml"), &with(MIGRATE_FAILING, REQUIRES)).unwrap();
    let f = s.step[1].fail_kernel_alloc.as_ref().unwrap();
    assert!(!f.spare_reclaiming);
    assert_eq!(f.expect_failed, None);
    // Not a count: the parser says so, on the step's line.
    let ds = errs(&with(
        "[[step]]\nop = \"cpu-read\"\n\
         fail_kernel_alloc = { allocator = \"page\", under = \"f\", expect_failed = -1 }\n",
        REQUIRES,
    ));
    assert_eq!(ds[0].line, 10, "{}", render(&ds));
}
