//! Checks on the ops that change the mapping itself (`munmap`, `mprotect`)
//! and on the ops that need a newer test_hmm (`fail-alloc`,
//! `device-read-unlocked`). Steps run in order, so what a page allows at a
//! step depends on the `munmap` and `mprotect` steps before it.

use hmmlab_proto::scenario::{Op, PageRange, Prot};

use super::Ctx;
use crate::scenario::span::key_path;
use crate::scenario::when::parse_kernel;

/// `pages` is required by `munmap` and `mprotect`, refused by `fail-alloc`;
/// `prot` belongs to `mprotect`, which needs it.
pub(super) fn check_mapping_ops(cx: &mut Ctx<'_, '_>) {
    for (i, st) in cx.s.step.iter().enumerate() {
        let op = st.op.as_str();
        if st.op.needs_pages() && st.pages.is_none() {
            let hint =
                format!(
                "give the pages to {} with `pages = [start, end]`; it never defaults to the whole \
                 mapping",
                if st.op == Op::Munmap { "unmap" } else { "protect" }
            );
            cx.at_value(
                key_path!["step", i, "op"],
                format!("`op = \"{op}\"` needs `pages`"),
                Some(hint),
            );
        }
        if st.op == Op::FailAlloc && st.pages.is_some() {
            let hint = "fail-alloc sets a flag of the open device file: the first allocation of \
                        the next migration fails, wherever it is";
            cx.at_key(
                key_path!["step", i, "pages"],
                "`pages` does not apply to `op = \"fail-alloc\"`".to_string(),
                Some(hint.to_string()),
            );
        }
        match (st.op, st.prot) {
            (Op::Mprotect, None) => cx.at_value(
                key_path!["step", i, "op"],
                "`op = \"mprotect\"` needs `prot`".to_string(),
                Some("add `prot = \"read-only\"` or `prot = \"read-write\"`".to_string()),
            ),
            (Op::Mprotect, Some(_)) | (_, None) => {}
            (_, Some(_)) => cx.at_key(
                key_path!["step", i, "prot"],
                format!("`prot` does not apply to `op = \"{op}\"`"),
                Some("`prot` is the protection an `op = \"mprotect\"` step sets".to_string()),
            ),
        }
    }
}

/// An op whose command older test_hmm lacks must not run there: the
/// scenario's `[requires]` needs a `kernel` condition that excludes the
/// newest kernel known to lack the command, so that kernel skips it with
/// the reason instead of failing on EINVAL.
pub(super) fn check_newer_commands(cx: &mut Ctx<'_, '_>) {
    let requires = cx.s.requires.as_ref().and_then(|r| r.kernel.as_deref());
    let req = requires.and_then(|k| parse_kernel(k).ok());
    for (i, st) in cx.s.step.iter().enumerate() {
        let Some(cmd) = st.op.newer_command() else {
            continue;
        };
        let [major, minor, _] = cmd.last_without;
        let excluded = req.as_ref().is_some_and(|r| !r.holds_for(cmd.last_without));
        // An invalid condition is reported as that alone.
        if excluded || (requires.is_some() && req.is_none()) {
            continue;
        }
        let hint = format!(
            "{} exists in test_hmm from {} on (checked: {major}.{minor} lacks it, and answers \
             EINVAL); add [requires] with `kernel = \">={}\"` so that older kernels skip this \
             scenario with the reason",
            cmd.name, cmd.first_seen, cmd.first_seen
        );
        let msg = match requires {
            None => format!(
                "`op = \"{}\"` needs a kernel condition in [requires]",
                st.op.as_str()
            ),
            Some(k) => format!(
                "`op = \"{}\"` needs {}, but [requires] `kernel = {k:?}` also admits \
                 {major}.{minor}",
                st.op.as_str(),
                cmd.name
            ),
        };
        cx.at_value(key_path!["step", i, "op"], msg, Some(hint));
    }
}

/// What the CPU may do with a page at some step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
    Unmapped,
}

/// Track each page through the `munmap` and `mprotect` steps: a CPU access
/// to an unmapped page, or a CPU write to a page made read-only, would kill
/// the scenario with SIGSEGV; an ioctl over unmapped pages fails (EINVAL or
/// EFAULT), so it must say which errno it expects.
pub(super) fn check_page_access(cx: &mut Ctx<'_, '_>) {
    let Some(m) = &cx.s.mapping else { return };
    if !cx.s.step.iter().any(|st| st.op.needs_pages()) {
        return;
    }
    let n = m.pages;
    let start = if m.prot == Prot::ReadOnly {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    // What each page allows now, as disjoint segments in page order, each
    // with the step that last changed it (none: as mapped). Segments, not
    // pages: a mapping may have 262,144 pages.
    let mut segs: Vec<Seg> = vec![Seg {
        start: 0,
        end: n,
        access: start,
        by: None,
    }];
    let mut problems = Vec::new();
    for (i, st) in cx.s.step.iter().enumerate() {
        let range = match st.pages {
            Some(r) if !r.is_empty() && r.end() <= n => r,
            Some(_) => continue, // reported by check_page_ranges
            None if st.op.needs_pages() || matches!(st.op, Op::FailAlloc) => continue,
            None => PageRange(0, n),
        };
        let unmapped = first_in(&segs, range, |g| g.access == Access::Unmapped);
        let read_only = first_in(&segs, range, |g| {
            g.access == Access::ReadOnly && g.by.is_some()
        });
        let cpu = matches!(st.op, Op::CpuRead | Op::CpuWrite | Op::MigrateRace);
        let fails = st.expect_errno.is_some_and(|e| e != 0);
        let device_write = st.op == Op::DeviceWrite && !fails;
        let writes = matches!(st.op, Op::CpuWrite | Op::MigrateRace) || device_write;
        if let Some((page, Some(by))) = unmapped {
            let why = if cpu {
                Some("a CPU access there would kill the scenario with SIGSEGV".to_string())
            } else if st.op == Op::Mprotect {
                Some("mprotect of an unmapped page fails with ENOMEM".to_string())
            } else if st.op.issues_ioctl() && !fails {
                Some(
                    "test_hmm fails an ioctl over an unmapped page (EINVAL, or EFAULT for a \
                     snapshot): give `pages` that stay mapped, or the errno in `expect_errno`"
                        .to_string(),
                )
            } else {
                None
            };
            if let Some(why) = why {
                let line = cx.line_of(key_path!["step", by, "op"]);
                problems.push((
                    i,
                    format!(
                        "`op = \"{}\"` reaches page {page}, which step {by} (line {line}) unmapped",
                        st.op.as_str()
                    ),
                    why,
                ));
                continue;
            }
        }
        if writes {
            if let Some((page, Some(by))) = read_only {
                let line = cx.line_of(key_path!["step", by, "op"]);
                problems.push((
                    i,
                    format!(
                        "`op = \"{}\"` writes page {page}, which step {by} (line {line}) made \
                         read-only",
                        st.op.as_str()
                    ),
                    if device_write {
                        "a device write to read-only pages fails: give the errno in \
                         `expect_errno`"
                            .to_string()
                    } else {
                        "a CPU write there would kill the scenario with SIGSEGV".to_string()
                    },
                ));
            }
        }
        let access = match (st.op, st.prot) {
            (Op::Munmap, _) => Access::Unmapped,
            (Op::Mprotect, Some(Prot::ReadOnly)) => Access::ReadOnly,
            (Op::Mprotect, Some(Prot::ReadWrite)) => Access::ReadWrite,
            _ => continue,
        };
        set(&mut segs, range, access, i);
    }
    for (i, msg, hint) in problems {
        cx.at_value(key_path!["step", i, "op"], msg, Some(hint));
    }
}

/// Pages `[start, end)` that allow the same, since step `by` (`None`: since
/// the mapping was made).
#[derive(Debug, Clone, Copy)]
struct Seg {
    start: u64,
    end: u64,
    access: Access,
    by: Option<usize>,
}

/// The first page of `range` whose segment matches, with that segment's step.
fn first_in(
    segs: &[Seg],
    range: PageRange,
    pred: impl Fn(&Seg) -> bool,
) -> Option<(u64, Option<usize>)> {
    segs.iter()
        .find(|g| g.start < range.end() && range.start() < g.end && pred(g))
        .map(|g| (g.start.max(range.start()), g.by))
}

/// Step `by` gives the pages of `range` `access`.
fn set(segs: &mut Vec<Seg>, range: PageRange, access: Access, by: usize) {
    let (a, b) = (range.start(), range.end());
    let mut out = Vec::with_capacity(segs.len() + 2);
    for g in segs.iter() {
        if g.end <= a || b <= g.start {
            out.push(*g);
            continue;
        }
        if g.start < a {
            out.push(Seg { end: a, ..*g });
        }
        if b < g.end {
            out.push(Seg { start: b, ..*g });
        }
    }
    // What is left lies wholly before `a` or from `b` on, in order.
    let at = out.iter().position(|g| g.start >= b).unwrap_or(out.len());
    out.insert(
        at,
        Seg {
            start: a,
            end: b,
            access,
            by: Some(by),
        },
    );
    *segs = out;
}
