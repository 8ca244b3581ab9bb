//! Checks on the ops that change the mapping itself (`munmap`, `mprotect`),
//! on the ops that hold references or pins on its pages (`hold-refs`,
//! `drop-refs`, `pin-pages`, `unpin-pages`) and on the ops that need a newer
//! test_hmm or gup_test (`fail-alloc`, `device-read-unlocked`, `pin-pages`). Steps run in order, so what a page allows at a
//! step depends on the `munmap` and `mprotect` steps before it.

use hmmlab_proto::op::{OpKind, Pages, MAX_HELD_PAGES};
use hmmlab_proto::scenario::{MappingKind, Op, PageRange, Prot, Step};

use super::Ctx;
use crate::scenario::span::key_path;
use crate::scenario::when::parse_kernel;

/// `pages` is required by the ops that change the mapping (`munmap`,
/// `mprotect`); `prot` belongs to the ops that need it (`mprotect`).
pub(super) fn check_mapping_ops(cx: &mut Ctx<'_, '_>) {
    for (i, st) in cx.s.step.iter().enumerate() {
        let op = st.op.as_str();
        let rules = st.op.rules();
        if let (Pages::Required { verb }, None) = (rules.pages, st.pages) {
            let hint = format!(
                "give the pages to {verb} with `pages = [start, end]`; it never defaults to the \
                 whole mapping"
            );
            cx.at_value(
                key_path!["step", i, "op"],
                format!("`op = \"{op}\"` needs `pages`"),
                Some(hint),
            );
        }
        if let Some(n) = st.mirror {
            let applies = matches!(
                rules.kind,
                OpKind::MigrateToDevice
                    | OpKind::MigrateToSystem
                    | OpKind::Snapshot
                    | OpKind::DeviceAccess { .. }
            );
            if !applies {
                cx.at_key(
                    key_path!["step", i, "mirror"],
                    format!("`mirror` does not apply to `op = \"{op}\"`"),
                    Some(
                        "`mirror` picks the device of a migration, a snapshot or a device read \
                         or write"
                            .to_string(),
                    ),
                );
            } else if n > 1 {
                cx.at_value(
                    key_path!["step", i, "mirror"],
                    format!("`mirror = {n}`: test_hmm has two devices of each kind"),
                    Some(
                        "give 0 (the scenario's own device, the default) or 1 (the other one)"
                            .to_string(),
                    ),
                );
            }
        }
        let kind = cx.s.mapping.as_ref().map(|m| m.kind);
        if st.op == Op::Discard && kind.is_some_and(|k| k != MappingKind::AnonPrivate) {
            cx.at_value(
                key_path!["step", i, "op"],
                "`op = \"discard\"` needs `kind = \"anon-private\"`".to_string(),
                Some(
                    "MADV_DONTNEED of a shared or file mapping keeps or reloads the data: \
                     discard pages of an anon-private mapping"
                        .to_string(),
                ),
            );
        }
        match (rules.checks.prot, st.prot) {
            (true, None) => cx.at_value(
                key_path!["step", i, "op"],
                format!("`op = \"{op}\"` needs `prot`"),
                Some("add `prot = \"read-only\"` or `prot = \"read-write\"`".to_string()),
            ),
            (true, Some(_)) | (false, None) => {}
            (false, Some(_)) => cx.at_key(
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
        let Some(cmd) = st.op.newer_interface() else {
            continue;
        };
        let [major, minor, _] = cmd.last_without;
        let excluded = req.as_ref().is_some_and(|r| !r.holds_for(cmd.last_without));
        // An invalid condition is reported as that alone.
        if excluded || (requires.is_some() && req.is_none()) {
            continue;
        }
        let hint = format!(
            "{} exists in {} from {} on (checked: {major}.{minor} lacks it, and answers \
             EINVAL); add [requires] with `kernel = \">={}\"` so that older kernels skip this \
             scenario with the reason",
            cmd.name, cmd.module, cmd.first_seen, cmd.first_seen
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

/// `hold-refs` and `pin-pages` hold at most [`MAX_HELD_PAGES`]; a
/// `drop-refs` (`unpin-pages`) step needs a `hold-refs` (`pin-pages`) step
/// since the scenario's start or the last `drop-refs` (`unpin-pages`), or it
/// would drop nothing.
pub(super) fn check_held_refs(cx: &mut Ctx<'_, '_>) {
    // Per holding op: whether it holds pages now, and the step that last
    // dropped them.
    let mut holding: Vec<(Op, bool, Option<usize>)> = vec![];
    for (i, st) in cx.s.step.iter().enumerate() {
        let Some(partner) = st.op.ref_partner() else {
            continue;
        };
        let op = st.op.as_str();
        let hold_op = if st.op.holds_refs() { st.op } else { partner };
        let at = match holding.iter().position(|(o, _, _)| *o == hold_op) {
            Some(at) => at,
            None => {
                holding.push((hold_op, false, None));
                holding.len() - 1
            }
        };
        if st.op.holds_refs() {
            holding[at].1 = true;
            if let Some(r) = st.pages.filter(|r| r.len() > MAX_HELD_PAGES) {
                let hint = format!(
                    "one {op} step holds at most {MAX_HELD_PAGES} pages (a pipe slot or a \
                     gup_test page pointer each); one page of a THP is enough to hold the \
                     whole folio"
                );
                cx.at_value(
                    key_path!["step", i, "pages"],
                    format!("`op = \"{op}\"` over {} pages", r.len()),
                    Some(hint),
                );
            }
            continue;
        }
        let (_, held, last_drop) = holding[at];
        if !held {
            let since = match last_drop {
                Some(j) => {
                    let line = cx.line_of(key_path!["step", j, "op"]);
                    format!("since step {j} (line {line}) dropped them")
                }
                None => "before it".to_string(),
            };
            let hold = partner.as_str();
            cx.at_value(
                key_path!["step", i, "op"],
                format!("`op = \"{op}\"` drops nothing: no {hold} step {since}"),
                Some(format!(
                    "add an `op = \"{hold}\"` step with the pages before it, or leave it out"
                )),
            );
        }
        holding[at] = (hold_op, false, Some(i));
    }
}

/// `fork` once, in a scenario whose mapping a child can share and check:
/// private (a shared mapping's pages are the same for both, so the child
/// would see the parent's writes by design), without userfaultfd (a child
/// reading a hole would block for good), without migrate-race threads (a
/// fork copies only the calling thread) and without VMA changes (they
/// change the parent's mapping only, which the child's view does not
/// follow). `child-read` and `child-write` need the fork before them.
pub(super) fn check_fork(cx: &mut Ctx<'_, '_>) {
    let Some(first) = cx.s.step.iter().position(|st| st.op == Op::Fork) else {
        for (i, st) in cx.s.step.iter().enumerate() {
            if st.op.is_child_access() {
                cx.at_value(
                    key_path!["step", i, "op"],
                    format!("`op = \"{}\"` needs a fork step before it", st.op.as_str()),
                    Some("add an `op = \"fork\"` step before it".to_string()),
                );
            }
        }
        return;
    };
    let fork_line = cx.line_of(key_path!["step", first, "op"]);
    for (i, st) in cx.s.step.iter().enumerate() {
        let op = st.op.as_str();
        let (message, hint) = if st.op.is_child_access() && i < first {
            (
                format!("`op = \"{op}\"` comes before the fork step (line {fork_line})"),
                "move it after the fork step".to_string(),
            )
        } else if st.op == Op::Fork && i != first {
            (
                format!("a second `op = \"fork\"` (the first is on line {fork_line})"),
                "a scenario forks one child; leave this one out".to_string(),
            )
        } else if st.op == Op::MigrateRace {
            (
                "`op = \"migrate-race\"` in a scenario that forks".to_string(),
                "fork(2) copies only the calling thread, and migrate-race's threads run \
                 through the whole scenario: race in a scenario of its own"
                    .to_string(),
            )
        } else if st.op.rules().kind == OpKind::VmaChange {
            (
                format!("`op = \"{op}\"` in a scenario that forks"),
                "a VMA change changes the parent's mapping only, and the child's view of it \
                 does not follow: change the mapping in a scenario without fork"
                    .to_string(),
            )
        } else {
            continue;
        };
        cx.at_value(key_path!["step", i, "op"], message, Some(hint));
    }
    let Some(m) = &cx.s.mapping else { return };
    let why = if m.kind == MappingKind::AnonShared {
        Some((
            "a shared mapping",
            "its pages are the same in both processes by design, so the child sees the \
             parent's writes: fork with `kind = \"anon-private\"` or `\"file-private\"`",
        ))
    } else if m.userfaultfd {
        Some((
            "a userfaultfd mapping",
            "nobody serves the userfaultfd, so a child reading a hole would block for good: \
             fork without `userfaultfd = true`",
        ))
    } else {
        None
    };
    if let Some((what, hint)) = why {
        cx.at_value(
            key_path!["step", first, "op"],
            format!("`op = \"fork\"` of {what}"),
            Some(hint.to_string()),
        );
    }
}

/// `write-protect` in an anon-private mapping without `userfaultfd` (the
/// guest registers the whole mapping in WP mode), and no write after it:
/// nobody serves the userfaultfd, so a CPU write (cpu-write, migrate-race,
/// child-write) or a device write (test_hmm faults the page in for
/// writing) would block for good. `check-write-protected` checks only
/// pages a `write-protect` step before it protected.
pub(super) fn check_write_protect(cx: &mut Ctx<'_, '_>) {
    let first = cx.s.step.iter().position(|st| st.op == Op::WriteProtect);
    let pages = cx.s.mapping.as_ref().map_or(0, |m| m.pages);
    let mut protected = vec![false; pages.min(1 << 24) as usize];
    for (i, st) in cx.s.step.iter().enumerate() {
        let op = st.op.as_str();
        let range = st.pages.unwrap_or(PageRange(0, pages));
        let inside = |r: PageRange| r.start() < r.end() && r.end() <= protected.len() as u64;
        if st.op == Op::WriteProtect {
            if inside(range) {
                protected[range.start() as usize..range.end() as usize].fill(true);
            }
            continue;
        }
        let writes = st.op.cpu_writes() || st.op.device_writes() || st.op == Op::ChildWrite;
        if let (true, Some(f)) = (writes, first.filter(|f| *f < i)) {
            let line = cx.line_of(key_path!["step", f, "op"]);
            cx.at_value(
                key_path!["step", i, "op"],
                format!("`op = \"{op}\"` after the write-protect step on line {line}"),
                Some(
                    "nobody serves the userfaultfd, so a write to a write-protected page would \
                     block for good: write before the write-protect step, or in another scenario"
                        .to_string(),
                ),
            );
        }
        if st.op == Op::CheckWriteProtected && inside(range) {
            let missing = (range.start()..range.end()).find(|p| !protected[*p as usize]);
            if let Some(p) = missing {
                cx.at_value(
                    key_path!["step", i, "op"],
                    format!(
                        "`op = \"{op}\"` of page {p}, which no write-protect step before it \
                         protected"
                    ),
                    Some("check pages an earlier `op = \"write-protect\"` step names".to_string()),
                );
            }
        }
    }
    let (Some(f), Some(m)) = (first, &cx.s.mapping) else {
        return;
    };
    let why = if m.kind != MappingKind::AnonPrivate {
        Some("a mapping that is not `kind = \"anon-private\"`")
    } else if m.userfaultfd {
        Some("a `userfaultfd = true` mapping")
    } else {
        None
    };
    if let Some(what) = why {
        cx.at_value(
            key_path!["step", f, "op"],
            format!("`op = \"write-protect\"` in {what}"),
            Some(
                "the guest registers the mapping in userfaultfd's WP mode itself: write-protect \
                 pages of an anon-private mapping without `userfaultfd = true`"
                    .to_string(),
            ),
        );
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
        let range = match (st.pages, st.op.rules().pages) {
            (Some(r), _) if !r.is_empty() && r.end() <= n => r,
            (Some(_), _) => continue, // reported by check_page_ranges
            (None, Pages::WholeByDefault) => PageRange(0, n),
            // No pages of its own, or none given (reported by check_mapping_ops).
            (None, Pages::None { .. } | Pages::Required { .. }) => continue,
        };
        if let Some((msg, hint)) = access_problem(cx, &segs, st, range) {
            problems.push((i, msg, hint));
            continue;
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

/// What is wrong with step `st` reaching `range` while the pages allow
/// what `segs` says: its message and hint.
fn access_problem(
    cx: &Ctx<'_, '_>,
    segs: &[Seg],
    st: &Step,
    range: PageRange,
) -> Option<(String, String)> {
    let op = st.op.as_str();
    let fails = st.expect_errno.is_some_and(|e| e != 0);
    if let Some((page, Some(by))) = first_in(segs, range, |g| g.access == Access::Unmapped) {
        let why = if st.op.is_cpu_access() {
            "a CPU access there would kill the scenario with SIGSEGV"
        } else if st.op == Op::Mprotect {
            "mprotect of an unmapped page fails with ENOMEM"
        } else if st.op == Op::Discard {
            "madvise(MADV_DONTNEED) of an unmapped page fails with ENOMEM"
        } else if st.op == Op::PageOut {
            "madvise(MADV_PAGEOUT) of an unmapped page fails with ENOMEM"
        } else if st.op == Op::HoldRefs {
            "vmsplice(2) of an unmapped page fails with EFAULT: hold references on pages that \
             stay mapped"
        } else if st.op == Op::PinPages {
            "pinning an unmapped page fails with EFAULT: pin pages that stay mapped"
        } else if st.op == Op::CheckPageFlags {
            "an unmapped page has no page in system memory, so it has no flags to check: check \
             pages that stay mapped"
        } else if st.op.issues_ioctl() && !fails {
            "test_hmm fails an ioctl over an unmapped page (EINVAL, or EFAULT for a snapshot): \
             give `pages` that stay mapped, or the errno in `expect_errno`"
        } else {
            ""
        };
        if !why.is_empty() {
            let line = cx.line_of(key_path!["step", by, "op"]);
            let msg = format!(
                "`op = \"{op}\"` reaches page {page}, which step {by} (line {line}) unmapped"
            );
            return Some((msg, why.to_string()));
        }
    }
    let device_write = st.op.device_writes() && !fails;
    if !(st.op.cpu_writes() || device_write) {
        return None;
    }
    let read_only = |g: &Seg| g.access == Access::ReadOnly && g.by.is_some();
    let (page, Some(by)) = first_in(segs, range, read_only)? else {
        return None;
    };
    let line = cx.line_of(key_path!["step", by, "op"]);
    let msg =
        format!("`op = \"{op}\"` writes page {page}, which step {by} (line {line}) made read-only");
    let hint = if device_write {
        "a device write to read-only pages fails: give the errno in `expect_errno`"
    } else {
        "a CPU write there would kill the scenario with SIGSEGV"
    };
    Some((msg, hint.to_string()))
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
