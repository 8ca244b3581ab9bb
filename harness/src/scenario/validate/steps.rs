//! Checks on page ranges, populate entries and steps. A step's
//! `[[step.variant]]` tables follow the same rules as the step's own
//! `expect*` fields.

use hmmlab_proto::op::{Checks, Errno, Pages};
use hmmlab_proto::scenario::{
    MappingKind, Op, PageFlag, PageRange, Prot, Scenario, SmapsField, StateExpect, ThpStat, Touch,
};
use hmmlab_proto::state::{for_device, parse_expected, ANY};
use toml::de::DeValue;

use super::{Ctx, ITERATIONS};
use crate::scenario::span::{key_path, Seg};

/// An `expect_errno` that expects the ioctl to fail (0 expects success,
/// like no `expect_errno` at all).
fn fails(errno: Option<i32>) -> Option<i32> {
    errno.filter(|&e| e != 0)
}

/// The expectations written in one table: a step's own, or one variant's.
struct Expectations<'a> {
    step: usize,
    op: Op,
    /// `step[i]` or `step[i].variant[j]`.
    at: Vec<Seg>,
    variant: bool,
    cpages: Option<u64>,
    faults: Option<u64>,
    errno: Option<i32>,
    /// The state expectations, when this table gives `expect` at all.
    expect: Option<&'a [StateExpect]>,
    /// Whether this table is a variant that gives `smaps` (a step's own
    /// `smaps` is check_smaps's).
    smaps: bool,
}

impl Expectations<'_> {
    /// The key path of `rest` inside this table.
    fn path(&self, rest: Vec<Seg>) -> Vec<Seg> {
        let mut p = self.at.clone();
        p.extend(rest);
        p
    }
}

/// Every step's own expectations, each followed by its variants' (except
/// for ops that take no variants: those are reported as such instead).
fn expectations(s: &Scenario) -> Vec<Expectations<'_>> {
    let mut out = Vec::new();
    for (i, st) in s.step.iter().enumerate() {
        out.push(Expectations {
            step: i,
            op: st.op,
            at: key_path!["step", i],
            variant: false,
            cpages: st.expect_cpages,
            faults: st.expect_faults,
            errno: st.expect_errno,
            expect: Some(st.expect.as_slice()).filter(|e| !e.is_empty()),
            smaps: false,
        });
        if st.op.checks_itself() && !takes_variants(st.op) {
            continue;
        }
        for (j, v) in st.variant.iter().enumerate() {
            out.push(Expectations {
                step: i,
                op: st.op,
                at: key_path!["step", i, "variant", j],
                variant: true,
                cpages: v.expect_cpages,
                faults: v.expect_faults,
                errno: v.expect_errno,
                expect: v.expect.as_deref(),
                smaps: v.smaps.is_some(),
            });
        }
    }
    out
}

/// Every page range in the file with its key path.
fn page_ranges(s: &Scenario) -> Vec<(Vec<Seg>, PageRange)> {
    let mut out = Vec::new();
    for (i, p) in s.populate.iter().enumerate() {
        out.push((key_path!["populate", i, "pages"], p.pages));
    }
    for e in expectations(s) {
        if !e.variant {
            if let Some(r) = s.step[e.step].pages {
                out.push((key_path!["step", e.step, "pages"], r));
            }
        }
        for (j, x) in e.expect.unwrap_or_default().iter().enumerate() {
            out.push((e.path(key_path!["expect", j, "pages"]), x.pages));
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
    // A range past the end of the mapping is reported as that alone.
    let limit = cx.mapping_pages().unwrap_or(u64::MAX);
    for e in expectations(cx.s) {
        let Some(r) = cx.s.step[e.step].pages.filter(|r| !r.is_empty()) else {
            continue;
        };
        for (j, x) in e.expect.unwrap_or_default().iter().enumerate() {
            let (a, b) = (x.pages.start(), x.pages.end());
            if a < b && b <= limit && (a < r.start() || b > r.end()) {
                let hint = format!(
                    "this snapshot covers pages `[{}, {}]` only",
                    r.start(),
                    r.end()
                );
                let msg = format!("expected range `[{a}, {b}]` lies outside the step's pages");
                cx.at_value(e.path(key_path!["expect", j, "pages"]), msg, Some(hint));
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
        let hint = if st.op.cpu_writes() || st.op == Op::ChildWrite {
            format!(
                "{why}; {} writes from the CPU, and a CPU write would fault",
                st.op.as_str()
            )
        } else if st.op.device_writes() && st.expect_errno.is_none() {
            format!("{why}; a device write must fail, so give the errno in `expect_errno`")
        } else {
            continue;
        };
        let msg = format!("`op = \"{}\"` on a read-only mapping", st.op.as_str());
        cx.at_value(key_path!["step", i, "op"], msg, Some(hint));
    }
}

/// Why an op that checks its own result takes no `expect_errno`.
fn self_checking_hint(op: Op) -> Option<&'static str> {
    match op.rules().checks.errno {
        Errno::OwnCheck { why } => Some(why),
        Errno::Ioctl | Errno::NoIoctl => None,
    }
}

/// Ops that work on no pages of their own take no `pages`.
pub(super) fn check_step_pages(cx: &mut Ctx<'_, '_>) {
    for (i, st) in cx.s.step.iter().enumerate() {
        let Pages::None { why } = st.op.rules().pages else {
            continue;
        };
        if st.pages.is_some() {
            cx.at_key(
                key_path!["step", i, "pages"],
                format!("`pages` does not apply to `op = \"{}\"`", st.op.as_str()),
                Some(why.to_string()),
            );
        }
    }
}

/// Whether an op that checks its own result still takes variants: those
/// whose check is a table of expected numbers (`smaps`), which a variant
/// may replace.
fn takes_variants(op: Op) -> bool {
    op.rules().checks.smaps
}

/// Ops that check their own result take no `expect_errno` and no variants,
/// but those whose expected numbers a variant replaces (check-smaps): each
/// of their variants gives them.
pub(super) fn check_self_checking(cx: &mut Ctx<'_, '_>) {
    for (i, st) in cx.s.step.iter().enumerate() {
        let Some(why) = self_checking_hint(st.op) else {
            continue;
        };
        let op = st.op.as_str();
        if st.expect_errno.is_some() {
            cx.at_key(
                key_path!["step", i, "expect_errno"],
                format!("`expect_errno` does not apply to `op = \"{op}\"`"),
                Some(why.to_string()),
            );
        }
        if takes_variants(st.op) {
            for (j, v) in st.variant.iter().enumerate() {
                if v.expect_errno.is_some() {
                    cx.at_key(
                        key_path!["step", i, "variant", j, "expect_errno"],
                        format!("`expect_errno` does not apply to `op = \"{op}\"`"),
                        Some(why.to_string()),
                    );
                }
                if v.smaps.as_ref().is_none_or(|m| m.is_empty()) {
                    cx.at_value(
                        key_path!["step", i, "variant", j],
                        format!("a variant of `op = \"{op}\"` needs a field in `smaps`"),
                        Some(
                            "a variant replaces the step's `smaps` on the kernels its `when` \
                             picks: give the fields as they are there"
                                .to_string(),
                        ),
                    );
                }
            }
        } else if !st.variant.is_empty() {
            let hint = format!(
                "a variant replaces `expect*` fields, and `op = \"{op}\"` takes none; \
                 use [requires] to run the scenario on some kernels only"
            );
            cx.at_value(
                key_path!["step", i, "variant", 0],
                format!("`op = \"{op}\"` takes no [[step.variant]]"),
                Some(hint),
            );
        }
    }
}

/// `iterations` belongs to the ops that need it (migrate-race).
pub(super) fn check_iterations(cx: &mut Ctx<'_, '_>) {
    let (lo, hi) = (ITERATIONS.start(), ITERATIONS.end());
    for (i, st) in cx.s.step.iter().enumerate() {
        let op = st.op.as_str();
        match (st.op.rules().checks.iterations, st.iterations) {
            (true, None) => {
                let hint =
                    format!("add `iterations = N` ({lo} to {hi}): how many migrate/write rounds");
                cx.at_value(
                    key_path!["step", i, "op"],
                    format!("`op = \"{op}\"` needs `iterations`"),
                    Some(hint),
                );
            }
            (true, Some(n)) if !ITERATIONS.contains(&n) => {
                cx.at_value(
                    key_path!["step", i, "iterations"],
                    format!("`iterations = {n}` is out of range"),
                    Some(format!("use {lo} to {hi} rounds")),
                );
            }
            (true, Some(_)) | (false, None) => {}
            (false, Some(_)) => {
                let hint = format!(
                    "`iterations` is the number of rounds of {}",
                    ops_taking(|c| c.iterations)
                );
                cx.at_key(
                    key_path!["step", i, "iterations"],
                    format!("`iterations` does not apply to `op = \"{op}\"`"),
                    Some(hint),
                );
            }
        }
    }
}

/// `min_complete` belongs to the ops that need it (migrate-race): how many
/// rounds at least must migrate every page, 1 to `iterations`. A kernel
/// whose migrations never complete while the CPU writes would otherwise
/// pass on the data check alone.
pub(super) fn check_min_complete(cx: &mut Ctx<'_, '_>) {
    for (i, st) in cx.s.step.iter().enumerate() {
        let op = st.op.as_str();
        // The rounds, when `iterations` is valid (an invalid one is
        // reported by check_iterations).
        let rounds = st.iterations.filter(|n| ITERATIONS.contains(n));
        let most = rounds.unwrap_or(*ITERATIONS.end());
        match (st.op.rules().checks.min_complete, st.min_complete) {
            (true, None) => {
                let upto = match rounds {
                    Some(n) => format!("1 to {n}, the step's `iterations`"),
                    None => "1 to the step's `iterations`".to_string(),
                };
                let hint = format!(
                    "add `min_complete = N` ({upto}): how many rounds at least must migrate \
                     every page; fewer fail the step"
                );
                cx.at_value(
                    key_path!["step", i, "op"],
                    format!("`op = \"{op}\"` needs `min_complete`"),
                    Some(hint),
                );
            }
            (true, Some(n)) if n == 0 || n > most => {
                let hint = match rounds {
                    Some(r) => {
                        let line = cx.line_of(key_path!["step", i, "iterations"]);
                        format!(
                            "use 1 to {r}: the step runs {r} rounds (`iterations = {r}` on line \
                             {line})"
                        )
                    }
                    None => format!("use 1 to the step's `iterations` ({most} at most)"),
                };
                cx.at_value(
                    key_path!["step", i, "min_complete"],
                    format!("`min_complete = {n}` is out of range"),
                    Some(hint),
                );
            }
            (true, Some(_)) | (false, None) => {}
            (false, Some(_)) => {
                let hint = format!(
                    "`min_complete` is how many rounds of {} must migrate every page",
                    ops_taking(|c| c.min_complete)
                );
                cx.at_key(
                    key_path!["step", i, "min_complete"],
                    format!("`min_complete` does not apply to `op = \"{op}\"`"),
                    Some(hint),
                );
            }
        }
    }
}

/// A device read that succeeds states its faults: test_hmm's dmirror_read()
/// faults in whatever its mirror lacks and reads on, so without
/// `expect_faults` a read of pages that never reached the device passes
/// like a read of pages that did. Checked for the step's own fields and for
/// each variant that makes a read expected to fail succeed (a variant that
/// gives no `expect_faults` keeps the step's).
pub(super) fn check_faults_stated(cx: &mut Ctx<'_, '_>) {
    for (i, st) in cx.s.step.iter().enumerate() {
        if !st.op.needs_faults() || st.expect_faults.is_some() {
            continue;
        }
        let op = st.op.as_str();
        let Some(errno) = fails(st.expect_errno) else {
            let hint = "add `expect_faults = N`: how many times test_hmm had to fault pages in \
                        (0 when all of them are in the device's mirror already); or \
                        `expect_errno` when the read must fail"
                .to_string();
            cx.at_value(
                key_path!["step", i, "op"],
                format!("`op = \"{op}\"` needs `expect_faults`"),
                Some(hint),
            );
            continue;
        };
        let line = cx.line_of(key_path!["step", i, "expect_errno"]);
        for (j, v) in st.variant.iter().enumerate() {
            if v.expect_faults.is_some() || fails(v.expect_errno.or(st.expect_errno)).is_some() {
                continue;
            }
            let hint = format!(
                "the step's `expect_errno = {errno}` (line {line}) expects the read to fail, \
                 this variant expects it to succeed: add `expect_faults = N` to the variant"
            );
            cx.at_key(
                key_path!["step", i, "variant", j, "expect_errno"],
                format!("a variant in which `op = \"{op}\"` succeeds needs `expect_faults`"),
                Some(hint),
            );
        }
    }
}

/// The ops whose checks take a field, for hints: `op = "a"`, `op = "b"`
/// and `op = "c"`.
fn ops_taking(takes: fn(&Checks) -> bool) -> String {
    let names: Vec<String> = Op::ALL
        .into_iter()
        .filter(|op| takes(&op.rules().checks))
        .map(|op| format!("`op = \"{}\"`", op.as_str()))
        .collect();
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => "no op".to_string(),
    }
}

/// userfaultfd-idle needs a mapping registered with userfaultfd.
pub(super) fn check_userfaultfd_idle(cx: &mut Ctx<'_, '_>) {
    let Some(m) = &cx.s.mapping else { return };
    if m.userfaultfd {
        return;
    }
    for (i, st) in cx.s.step.iter().enumerate() {
        if st.op == Op::UserfaultfdIdle {
            let line = cx.line_of(key_path!["mapping"]);
            let hint = format!("add `userfaultfd = true` to the [mapping] table (line {line})");
            cx.at_value(
                key_path!["step", i, "op"],
                "`op = \"userfaultfd-idle\"` needs `userfaultfd = true` in [mapping]".to_string(),
                Some(hint),
            );
        }
    }
}

/// check-file reads the file behind a `file-private` mapping: an
/// anonymous mapping has none.
pub(super) fn check_file_ops(cx: &mut Ctx<'_, '_>) {
    let Some(m) = &cx.s.mapping else { return };
    if m.kind == MappingKind::FilePrivate {
        return;
    }
    for (i, st) in cx.s.step.iter().enumerate() {
        if st.op == Op::CheckFile {
            let line = cx.line_of(key_path!["mapping", "kind"]);
            let hint = format!(
                "check-file reads the file behind the mapping, and an anonymous mapping (kind on \
                 line {line}) has none: check the file in a `kind = \"file-private\"` scenario, \
                 or leave the step out"
            );
            cx.at_value(
                key_path!["step", i, "op"],
                "`op = \"check-file\"` needs `kind = \"file-private\"` in [mapping]".to_string(),
                Some(hint),
            );
        }
    }
}

/// The page flags a step may name, for hints: `locked`, `referenced`, …
fn flag_names() -> String {
    let names: Vec<String> = PageFlag::ALL
        .iter()
        .map(|f| format!("`{}`", f.as_str()))
        .collect();
    names.join(", ")
}

/// `set` and `clear` belong to the ops that check page flags
/// (check-page-flags), which need a flag in one of them; a flag is named
/// once, in one of the two lists. (A name that is no flag is refused when
/// the file is read, with the names allowed.)
pub(super) fn check_page_flags(cx: &mut Ctx<'_, '_>) {
    for (i, st) in cx.s.step.iter().enumerate() {
        let op = st.op.as_str();
        if !st.op.rules().checks.page_flags {
            for (field, given) in [("set", st.set.is_some()), ("clear", st.clear.is_some())] {
                if given {
                    let hint = format!(
                        "`set` and `clear` are the page flags {} checks",
                        ops_taking(|c| c.page_flags)
                    );
                    cx.at_key(
                        key_path!["step", i, field],
                        format!("`{field}` does not apply to `op = \"{op}\"`"),
                        Some(hint),
                    );
                }
            }
            continue;
        }
        let set = st.set.as_deref().unwrap_or_default();
        let clear = st.clear.as_deref().unwrap_or_default();
        if set.is_empty() && clear.is_empty() {
            let hint = format!(
                "give the flags every page of the range must have in `set = [...]`, and those \
                 none may have in `clear = [...]`, from: {}",
                flag_names()
            );
            cx.at_value(
                key_path!["step", i, "op"],
                format!("`op = \"{op}\"` needs a flag in `set` or `clear`"),
                Some(hint),
            );
            continue;
        }
        for (field, list) in [("set", set), ("clear", clear)] {
            for (j, f) in list.iter().enumerate() {
                if let Some(k) = list[..j].iter().position(|g| g == f) {
                    let line = cx.line_of(key_path!["step", i, field, k]);
                    cx.at_value(
                        key_path!["step", i, field, j],
                        format!("`{f}` is named twice in `{field}` (first on line {line})"),
                        Some("name each flag once".to_string()),
                    );
                }
            }
        }
        for (j, f) in clear.iter().enumerate() {
            let Some(k) = set.iter().position(|g| g == f) else {
                continue;
            };
            let line = cx.line_of(key_path!["step", i, "set", k]);
            let hint = format!(
                "a flag is either set or clear: `set` on line {line} names it too; leave it out \
                 of one of the two"
            );
            cx.at_value(
                key_path!["step", i, "clear", j],
                format!("`{f}` is in both `set` and `clear`"),
                Some(hint),
            );
        }
    }
}

/// `thp_stats` belongs to check-thp-stats, which needs a counter in it.
/// (A name that is no counter is refused when the file is read, with the
/// names allowed.)
pub(super) fn check_thp_stats(cx: &mut Ctx<'_, '_>) {
    let names: Vec<&str> = ThpStat::ALL.iter().map(|s| s.as_str()).collect();
    check_named_table(
        cx,
        NamedTable {
            field: "thp_stats",
            takes: |c| c.thp_stats,
            given: |st| st.thp_stats.as_ref().map(|m| m.len()),
            what: "the THP counters",
            a_name: "a counter",
            how: "give by how much each counter must have changed since the scenario began, \
                  e.g. `thp_stats = { anon_fault_alloc = 1 }`",
            names: &names,
        },
    );
}

/// `smaps` belongs to check-smaps, which needs a field in it.
pub(super) fn check_smaps(cx: &mut Ctx<'_, '_>) {
    let names: Vec<&str> = SmapsField::ALL.iter().map(|s| s.as_str()).collect();
    check_named_table(
        cx,
        NamedTable {
            field: "smaps",
            takes: |c| c.smaps,
            given: |st| st.smaps.as_ref().map(|m| m.len()),
            what: "the /proc/self/smaps fields",
            a_name: "a field",
            how: "give how many of the mapping's pages each field must count, \
                  e.g. `smaps = { rss = 16, referenced = 1 }`",
            names: &names,
        },
    );
}

/// A step field that is a table keyed by names (`thp_stats`, `smaps`).
struct NamedTable<'a> {
    field: &'static str,
    takes: fn(&Checks) -> bool,
    /// How many names the step gives, if it gives the field.
    given: fn(&hmmlab_proto::scenario::Step) -> Option<usize>,
    what: &'static str,
    a_name: &'static str,
    how: &'static str,
    names: &'a [&'static str],
}

/// The field only on the ops that take it; those need a name in it.
fn check_named_table(cx: &mut Ctx<'_, '_>, t: NamedTable<'_>) {
    for (i, st) in cx.s.step.iter().enumerate() {
        let op = st.op.as_str();
        let takes = (t.takes)(&st.op.rules().checks);
        match (t.given)(st) {
            Some(_) if !takes => {
                let hint = format!(
                    "`{}` names {} {} checks",
                    t.field,
                    t.what,
                    ops_taking(t.takes)
                );
                cx.at_key(
                    key_path!["step", i, t.field],
                    format!("`{}` does not apply to `op = \"{op}\"`", t.field),
                    Some(hint),
                );
            }
            Some(n) if n > 0 => {}
            _ if !takes => {}
            _ => {
                let names: Vec<String> = t.names.iter().map(|n| format!("`{n}`")).collect();
                let hint = format!("{}, from: {}", t.how, names.join(", "));
                cx.at_value(
                    key_path!["step", i, "op"],
                    format!("`op = \"{op}\"` needs {} in `{}`", t.a_name, t.field),
                    Some(hint),
                );
            }
        }
    }
}

/// Each `expect*` field only where the op reports it, in a step or a variant.
pub(super) fn check_step_fields(cx: &mut Ctx<'_, '_>) {
    for e in expectations(cx.s) {
        let op = e.op.as_str();
        let checks = e.op.rules().checks;
        if e.expect.is_some() && !checks.states {
            let hint = format!(
                "check page states in a separate {} step",
                ops_taking(|c| c.states)
            );
            cx.at_key(
                e.path(key_path!["expect"]),
                format!("`expect` does not apply to `op = \"{op}\"`"),
                Some(hint),
            );
        }
        // Self-checking ops are reported by check_self_checking.
        if e.errno.is_some() && checks.errno == Errno::NoIoctl {
            let hint = format!(
                "{op} issues no ioctl; `expect_errno` applies to {}",
                ops_taking(|c| c.errno == Errno::Ioctl)
            );
            cx.at_key(
                e.path(key_path!["expect_errno"]),
                format!("`expect_errno` does not apply to `op = \"{op}\"`"),
                Some(hint),
            );
        }
        if e.cpages.is_some() && !checks.cpages {
            let hint = format!("`expect_cpages` applies to {}", ops_taking(|c| c.cpages));
            cx.at_key(
                e.path(key_path!["expect_cpages"]),
                format!("`expect_cpages` does not apply to `op = \"{op}\"`"),
                Some(hint),
            );
        }
        if e.smaps && !checks.smaps {
            cx.at_key(
                e.path(key_path!["smaps"]),
                format!("`smaps` does not apply to `op = \"{op}\"`"),
                Some(format!(
                    "`smaps` names the /proc/self/smaps fields {} checks",
                    ops_taking(|c| c.smaps)
                )),
            );
        }
        if e.faults.is_some() && !checks.faults {
            let hint = format!("`expect_faults` applies to {}", ops_taking(|c| c.faults));
            cx.at_key(
                e.path(key_path!["expect_faults"]),
                format!("`expect_faults` does not apply to `op = \"{op}\"`"),
                Some(hint),
            );
        }
    }
}

pub(super) fn check_cpages_bound(cx: &mut Ctx<'_, '_>) {
    for e in expectations(cx.s) {
        let Some(c) = e.cpages else { continue };
        let count = match (cx.s.step[e.step].pages, cx.mapping_pages()) {
            (Some(r), _) if !r.is_empty() => r.len(),
            (None, Some(n)) => n,
            _ => continue,
        };
        if c > count {
            let hint = format!("the step works on {count} page(s)");
            let msg = format!("`expect_cpages = {c}` is more than the step's page count");
            cx.at_value(e.path(key_path!["expect_cpages"]), msg, Some(hint));
        }
    }
}

/// With an `expect_errno` other than 0 nothing else can be checked: test_hmm
/// returns no counts or page states from an ioctl that fails. Checked for
/// the step's own fields and for each variant applied over them (some
/// kernel may match any variant); a variant cannot remove a field the step
/// gives.
pub(super) fn check_errno_alone(cx: &mut Ctx<'_, '_>) {
    const WHY: &str = "test_hmm returns no counts or page states from an ioctl that fails";
    for (i, st) in cx.s.step.iter().enumerate() {
        // Other ops take no `expect_errno` at all (reported elsewhere).
        if !st.op.issues_ioctl() {
            continue;
        }
        let own = [
            ("expect_cpages", st.expect_cpages.is_some()),
            ("expect_faults", st.expect_faults.is_some()),
            ("expect", !st.expect.is_empty()),
        ];
        if let Some(errno) = fails(st.expect_errno) {
            let line = cx.line_of(key_path!["step", i, "expect_errno"]);
            for (field, _) in own.iter().filter(|(_, given)| *given) {
                let hint = format!(
                    "{WHY}: with `expect_errno = {errno}` (line {line}), leave `{field}` out"
                );
                cx.at_key(
                    key_path!["step", i, *field],
                    format!("`{field}` cannot be checked when the ioctl fails"),
                    Some(hint),
                );
            }
        }
        for (j, v) in st.variant.iter().enumerate() {
            let Some(errno) = fails(v.expect_errno.or(st.expect_errno)) else {
                continue;
            };
            let errno_path = if v.expect_errno.is_some() {
                key_path!["step", i, "variant", j, "expect_errno"]
            } else {
                key_path!["step", i, "expect_errno"]
            };
            let line = cx.line_of(errno_path);
            let in_variant = [
                v.expect_cpages.is_some(),
                v.expect_faults.is_some(),
                v.expect.is_some(),
            ];
            for ((field, in_step), in_variant) in own.iter().zip(in_variant) {
                if in_variant {
                    let hint = format!(
                        "{WHY}: with `expect_errno = {errno}` (line {line}), leave `{field}` \
                         out of this variant"
                    );
                    cx.at_key(
                        key_path!["step", i, "variant", j, *field],
                        format!("`{field}` cannot be checked when the ioctl fails"),
                        Some(hint),
                    );
                } else if *in_step && v.expect_errno.is_some() {
                    let step_line = cx.line_of(key_path!["step", i, *field]);
                    let hint = format!(
                        "{WHY}, and a variant cannot remove a field: give `{field}` in the \
                         variants for the kernels where the ioctl succeeds, not in the step"
                    );
                    cx.at_key(
                        key_path!["step", i, "variant", j, "expect_errno"],
                        format!(
                            "`expect_errno = {errno}` leaves the step's `{field}` (line \
                             {step_line}) in force"
                        ),
                        Some(hint),
                    );
                }
            }
        }
    }
}

pub(super) fn check_snapshot_asserts(cx: &mut Ctx<'_, '_>) {
    for e in expectations(cx.s) {
        // Ops that take page states must assert something.
        if !e.op.rules().checks.states {
            continue;
        }
        let st = &cx.s.step[e.step];
        // A snapshot expected to fail asserts its errno.
        if !e.variant && e.expect.is_none() && fails(e.errno).is_none() {
            let hint =
                "add [[step.expect]] tables with `pages` and `state` after this step".to_string();
            cx.at_value(
                e.at,
                "a snapshot step with no `expect` asserts nothing".into(),
                Some(hint),
            );
        } else if e.variant && e.expect.is_some_and(|x| x.is_empty()) {
            let hint = "give the states this kernel shows, or leave `expect` out of the variant \
                        to keep the step's own"
                .to_string();
            cx.at_value(
                e.path(key_path!["expect"]),
                "an empty `expect` in a variant asserts nothing".into(),
                Some(hint),
            );
        } else if e.variant
            && e.expect.is_none()
            && st.expect.is_empty()
            && fails(st.expect_errno).is_some()
            && fails(e.errno.or(st.expect_errno)).is_none()
        {
            let hint = "this variant expects the snapshot to succeed: give the states it must \
                        show in `expect`"
                .to_string();
            cx.at_value(
                e.at,
                "a snapshot variant with no `expect` asserts nothing".into(),
                Some(hint),
            );
        }
    }
}

pub(super) fn check_states(cx: &mut Ctx<'_, '_>) {
    for e in expectations(cx.s) {
        for (j, x) in e.expect.unwrap_or_default().iter().enumerate() {
            if let Err(why) = parse_expected(&for_device(&x.state, false)) {
                let msg = format!("invalid page state `{}`", x.state);
                cx.at_value(e.path(key_path!["expect", j, "state"]), msg, Some(why));
            }
        }
    }
}

/// A snapshot names every page of its range: a state, or `any` to leave a
/// page deliberately unchecked. A page no `expect` names would pass
/// whatever state it is in.
pub(super) fn check_snapshot_covers(cx: &mut Ctx<'_, '_>) {
    let limit = cx.mapping_pages();
    for e in expectations(cx.s) {
        // An empty `expect` is reported as asserting nothing.
        let Some(expect) = e.expect.filter(|x| e.op == Op::Snapshot && !x.is_empty()) else {
            continue;
        };
        let st = &cx.s.step[e.step];
        // A failing ioctl checks no states, and an `expect` outside the
        // step's pages is reported as that: one problem, one message.
        if fails(e.errno.or(st.expect_errno)).is_some() {
            continue;
        }
        let range = match (st.pages, limit) {
            (Some(r), _) => r,
            (None, Some(n)) => PageRange(0, n),
            (None, None) => continue,
        };
        if expect
            .iter()
            .any(|x| x.pages.start() < range.start() || x.pages.end() > range.end())
        {
            continue;
        }
        let unnamed = unnamed(range, expect);
        let Some(&(a, b)) = unnamed.first() else {
            continue;
        };
        let list: Vec<String> = unnamed.iter().map(|(a, b)| format!("[{a}, {b}]")).collect();
        let hint = format!(
            "add `[[step.expect]]` with `pages = [{a}, {b}]` and the state they must be in \
             (or `state = \"{ANY}\"` to leave them unchecked on purpose)"
        );
        cx.at_key(
            e.path(key_path!["expect"]),
            format!(
                "pages {} of the snapshot are named by no `expect`",
                list.join(", ")
            ),
            Some(hint),
        );
    }
}

/// The runs of pages of `range` that no expectation names.
fn unnamed(range: PageRange, expect: &[StateExpect]) -> Vec<(u64, u64)> {
    let mut named: Vec<(u64, u64)> = expect
        .iter()
        .map(|x| (x.pages.start(), x.pages.end()))
        .collect();
    named.sort();
    let mut out = vec![];
    let mut at = range.start();
    for (a, b) in named {
        if a > at && at < range.end() {
            out.push((at, a.min(range.end())));
        }
        at = at.max(b);
    }
    if at < range.end() {
        out.push((at, range.end()));
    }
    out
}
