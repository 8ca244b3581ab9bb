//! Checks on page ranges, populate entries and steps.

use hmmlab_proto::scenario::{Op, PageRange, Prot, Scenario, Touch};
use hmmlab_proto::state::parse_state;
use toml::de::DeValue;

use super::Ctx;
use crate::scenario::span::{key_path, Seg};

/// Every page range in the file with its key path.
fn page_ranges(s: &Scenario) -> Vec<(Vec<Seg>, PageRange)> {
    let mut out = Vec::new();
    for (i, p) in s.populate.iter().enumerate() {
        out.push((key_path!["populate", i, "pages"], p.pages));
    }
    for (i, st) in s.step.iter().enumerate() {
        if let Some(r) = st.pages {
            out.push((key_path!["step", i, "pages"], r));
        }
        for (j, e) in st.expect.iter().enumerate() {
            out.push((key_path!["step", i, "expect", j, "pages"], e.pages));
        }
    }
    out
}

pub(super) fn check_page_ranges(cx: &mut Ctx<'_, '_>) {
    let limit = cx.mapping_pages();
    for (p, r) in page_ranges(cx.s) {
        let (a, b) = (r.start(), r.end());
        let written = match cx.doc.get(&p).map(|v| v.get_ref()) {
            Some(DeValue::Array(items)) => items.len(),
            _ => 2,
        };
        if written != 2 {
            let hint =
                "write a range as `[start, end]`: two page numbers, end exclusive".to_string();
            cx.at_value(
                p,
                format!("a page range has two numbers, this one has {written}"),
                Some(hint),
            );
        } else if a >= b {
            let hint = "ranges are half-open: `[0, 4]` is pages 0, 1, 2 and 3".to_string();
            cx.at_value(
                p,
                format!("empty page range `[{a}, {b}]`: start must be below end"),
                Some(hint),
            );
        } else if let Some(n) = limit.filter(|n| b > *n) {
            let line = cx.line_of(key_path!["mapping", "pages"]);
            let hint = format!("the mapping has {n} pages (`pages = {n}` on line {line}), so ranges end at {n} at most");
            cx.at_value(
                p,
                format!("page range `[{a}, {b}]` ends past the end of the mapping"),
                Some(hint),
            );
        }
    }
}

pub(super) fn check_expect_inside_step(cx: &mut Ctx<'_, '_>) {
    for (i, st) in cx.s.step.iter().enumerate() {
        let Some(r) = st.pages.filter(|r| !r.is_empty()) else {
            continue;
        };
        for (j, e) in st.expect.iter().enumerate() {
            let (a, b) = (e.pages.start(), e.pages.end());
            if a < b && (a < r.start() || b > r.end()) {
                let hint = format!(
                    "this snapshot covers pages `[{}, {}]` only",
                    r.start(),
                    r.end()
                );
                let msg = format!("expected range `[{a}, {b}]` lies outside the step's pages");
                cx.at_value(key_path!["step", i, "expect", j, "pages"], msg, Some(hint));
            }
        }
    }
}

pub(super) fn check_read_only(cx: &mut Ctx<'_, '_>) {
    let Some(m) = &cx.s.mapping else { return };
    if m.prot != Prot::ReadOnly {
        return;
    }
    let line = cx.line_of(key_path!["mapping", "prot"]);
    let why = format!("the mapping is `prot = \"read-only\"` (line {line})");
    for (i, p) in cx.s.populate.iter().enumerate() {
        if p.how == Touch::Write {
            let msg = "cannot populate a read-only mapping by writing".to_string();
            cx.at_value(
                key_path!["populate", i, "how"],
                msg,
                Some(format!("{why}; use `how = \"read\"`")),
            );
        }
    }
    for (i, st) in cx.s.step.iter().enumerate() {
        let hint = match st.op {
            Op::CpuWrite => format!("{why}; a CPU write would fault"),
            Op::DeviceWrite if st.expect_errno.is_none() => {
                format!("{why}; a device write must fail, so give the errno in `expect_errno`")
            }
            _ => continue,
        };
        let msg = format!("`op = \"{}\"` on a read-only mapping", st.op.as_str());
        cx.at_value(key_path!["step", i, "op"], msg, Some(hint));
    }
}

pub(super) fn check_step_fields(cx: &mut Ctx<'_, '_>) {
    use Op::*;
    for (i, st) in cx.s.step.iter().enumerate() {
        let op = st.op.as_str();
        if st.op == UnmapNeighbour {
            if st.pages.is_some() {
                let hint =
                    "unmap-neighbour always works on the page just below the mapping".to_string();
                cx.at_key(
                    key_path!["step", i, "pages"],
                    "`pages` does not apply to `op = \"unmap-neighbour\"`".to_string(),
                    Some(hint),
                );
            }
            if st.expect_errno.is_some() {
                let hint = "unmap-neighbour issues no ioctl".to_string();
                cx.at_key(
                    key_path!["step", i, "expect_errno"],
                    "`expect_errno` does not apply to `op = \"unmap-neighbour\"`".to_string(),
                    Some(hint),
                );
            }
        }
        if !st.expect.is_empty() && st.op != Snapshot {
            let hint = "check page states in a separate `op = \"snapshot\"` step".to_string();
            cx.at_key(
                key_path!["step", i, "expect"],
                format!("`expect` does not apply to `op = \"{op}\"`"),
                Some(hint),
            );
        }
        let cpages_ops = [
            MigrateToDevice,
            MigrateToSystem,
            DeviceRead,
            DeviceWrite,
            Snapshot,
        ];
        if st.expect_cpages.is_some() && !cpages_ops.contains(&st.op) {
            let hint = "`expect_cpages` applies to migrate-to-device, migrate-to-system, device-read, device-write and snapshot".to_string();
            cx.at_key(
                key_path!["step", i, "expect_cpages"],
                format!("`expect_cpages` does not apply to `op = \"{op}\"`"),
                Some(hint),
            );
        }
        if st.expect_faults.is_some() && !matches!(st.op, DeviceRead | DeviceWrite) {
            let hint = "`expect_faults` applies to device-read and device-write".to_string();
            cx.at_key(
                key_path!["step", i, "expect_faults"],
                format!("`expect_faults` does not apply to `op = \"{op}\"`"),
                Some(hint),
            );
        }
    }
}

pub(super) fn check_cpages_bound(cx: &mut Ctx<'_, '_>) {
    for (i, st) in cx.s.step.iter().enumerate() {
        let Some(c) = st.expect_cpages else { continue };
        let count = match (st.pages, cx.mapping_pages()) {
            (Some(r), _) if !r.is_empty() => r.len(),
            (None, Some(n)) => n,
            _ => continue,
        };
        if c > count {
            let hint = format!("the step works on {count} page(s)");
            let msg = format!("`expect_cpages = {c}` is more than the step's page count");
            cx.at_value(key_path!["step", i, "expect_cpages"], msg, Some(hint));
        }
    }
}

pub(super) fn check_snapshot_asserts(cx: &mut Ctx<'_, '_>) {
    for (i, st) in cx.s.step.iter().enumerate() {
        if st.op == Op::Snapshot && st.expect.is_empty() {
            let hint =
                "add [[step.expect]] tables with `pages` and `state` after this step".to_string();
            cx.at_value(
                key_path!["step", i],
                "a snapshot step with no `expect` asserts nothing".into(),
                Some(hint),
            );
        }
    }
}

pub(super) fn check_states(cx: &mut Ctx<'_, '_>) {
    for (i, st) in cx.s.step.iter().enumerate() {
        for (j, e) in st.expect.iter().enumerate() {
            if let Err(why) = parse_state(&e.state) {
                let msg = format!("invalid page state `{}`", e.state);
                cx.at_value(key_path!["step", i, "expect", j, "state"], msg, Some(why));
            }
        }
    }
}
