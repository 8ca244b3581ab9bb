//! `memcg_max_kib`: its range, its kind of scenario, and the [requires] it
//! needs.

use std::path::Path;

use super::{assert_at, errs, one, render, OK};
use crate::scenario::parse_str;

const REQUIRES: &str = "[requires]\nconfig = \"CONFIG_MEMCG\"\n";

/// OK with `memcg_max_kib = {kib}` on line 2 (the mapping from line 4,
/// its cpu-read step on lines 7-8), then `requires` from line 9.
fn with(kib: &str, requires: &str) -> String {
    let rest = OK.strip_prefix("description = \"d\"\n").unwrap();
    format!("description = \"d\"\nmemcg_max_kib = {kib}\n{rest}{requires}")
}

#[test]
fn a_steps_scenario_may_run_under_a_memory_limit() {
    let text = with("1024", REQUIRES);
    let s = match parse_str(Path::new("t.toml"), &text) {
        Ok(s) => s,
        Err(ds) => panic!("expected no problems, got:\n{}", render(&ds)),
    };
    assert_eq!(s.memcg_max_kib, Some(1024));
    let text = with(
        "1024",
        "[requires]\nkernel = \">=7.2\"\nconfig = \"CONFIG_MEMCG\"\n",
    );
    if let Err(ds) = parse_str(Path::new("t.toml"), &text) {
        panic!("expected no problems, got:\n{}", render(&ds));
    }
    // Absent: no cgroup, no condition needed.
    parse_str(Path::new("t.toml"), OK).unwrap();
}

#[test]
fn the_limit_must_be_in_range() {
    for kib in ["0", "255", "1048577"] {
        let d = one(&with(kib, REQUIRES));
        assert_at(
            &d,
            2,
            17,
            &format!("`memcg_max_kib = {kib}` is out of range"),
        );
        let hint = d.hint.as_deref().unwrap();
        assert!(hint.contains("256 to 1048576 KiB"), "{hint}");
    }
    for kib in ["256", "1048576"] {
        parse_str(Path::new("t.toml"), &with(kib, REQUIRES)).unwrap();
    }
    // Not a count at all: the parser says so, at the value.
    let ds = errs(&with("-1", REQUIRES));
    assert_eq!(ds[0].line, 2, "{}", render(&ds));
}

#[test]
fn it_needs_the_memory_controller_required() {
    let d = one(&with("1024", ""));
    assert_at(
        &d,
        2,
        1,
        "`memcg_max_kib` needs a config condition in [requires]",
    );
    let hint = d.hint.as_deref().unwrap();
    assert!(
        hint.contains("config = \"CONFIG_MEMCG\"")
            && hint.contains("images/configs/variants/memcg.config"),
        "{hint}"
    );
    let d = one(&with("1024", "[requires]\nconfig = \"CONFIG_SWAP\"\n"));
    assert_at(
        &d,
        2,
        1,
        "`memcg_max_kib` needs CONFIG_MEMCG, but [requires] `config = \"CONFIG_SWAP\"`",
    );
}

#[test]
fn only_steps_scenarios_take_it() {
    let text = "description = \"d\"\nkind = \"kselftest\"\nmemcg_max_kib = 1024\n\
                [kselftest]\nbinary = \"hmm-tests\"\n[requires]\nconfig = \"CONFIG_MEMCG\"\n";
    let ds = errs(text);
    let d = ds
        .iter()
        .find(|d| d.message.contains("memcg_max_kib"))
        .unwrap_or_else(|| panic!("no memcg problem in:\n{}", render(&ds)));
    assert_at(
        d,
        3,
        1,
        "`memcg_max_kib` in a `kind = \"kselftest\"` scenario",
    );
}
