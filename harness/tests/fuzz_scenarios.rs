//! Property tests of the scenario loader: `parse_str` (syntax, deserializing
//! and every semantic check) and `load_files`, fed with
//!
//! - arbitrary bytes, arbitrary strings and TOML-like token soup;
//! - the real scenario files (`scenarios/*.toml`, `scenarios/findings/*.toml`)
//!   and generated valid ones, mutated line by line: lines deleted,
//!   duplicated, swapped, joined or copied from another file, numbers and
//!   strings replaced (by edge values, random text or other valid words),
//!   known keys and table headers inserted, single characters replaced, the
//!   text truncated;
//! - scenarios generated from the model, written out as TOML by hand in
//!   varying styles (key order, header, inline or dotted tables, integer
//!   notations, string kinds, comments, indentation, CRLF). Valid ones must
//!   load as exactly what was generated; for freely generated or perturbed
//!   ones, whether they load must agree with the rules of the file format,
//!   restated here (`rules_allow`): which op takes which field is the op
//!   table's (`Op::rules`), how the fields combine, what the `munmap`
//!   and `mprotect` steps leave the later steps, when a `drop-refs` step
//!   has references to drop and which flags a `check-page-flags` step may
//!   name is restated independently.
//!   Every op in `Op::ALL` is generated.
//!
//! What must hold for every input: no panic; an `Err` carries at least one
//! diagnostic, in file order, each on line 0 (the whole file) or on a line of
//! the text with a column and caret inside it, and each renders; blank lines
//! in front move every problem down by as many lines (and the lines hints
//! mention), CRLF line ends move none. An `Ok` scenario survives JSON and
//! TOML round trips (the TOML one through the checks again), follows every
//! rule, has every page range inside the mapping, resolves against a kernel,
//! and is one the guest driver would run: however its variants resolve, no
//! step is refused at run time (`guest_accepts`, restating guest/src/steps.rs).
//!
//! Each property runs 256 cases by default (64 for the one that writes
//! files), about a second in all, so that `cargo test` stays quick.
//! `PROPTEST_CASES` sets the count for every property; to fuzz for a while
//! (500000 cases take under two minutes):
//!
//! ```text
//! PROPTEST_CASES=200000 cargo test --release -p hmmlab-harness --test fuzz_scenarios
//! ```
//!
//! A failing case is shrunk and its seed saved in
//! `harness/tests/fuzz_scenarios.proptest-regressions`; keep that file; its
//! cases run first on every run. The seeds replay through the generators
//! below, so a change to a generator changes what an old seed means.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hmmlab_harness::scenario::when::{parse_config, parse_kernel, resolve, KernelFacts};
use hmmlab_harness::scenario::{
    line_col, load_files, parse_str, Diagnostic, Diagnostics, ITERATIONS, MAX_PAGES, TIMEOUT_MS,
};
use hmmlab_proto::op::{Pages as OpPages, MAX_HELD_PAGES};
use hmmlab_proto::scenario::{
    Allocator, DeviceKind, FailKernelAlloc, Kind, Kselftest, Mapping, MappingKind, Op, PageFlag,
    PageRange, Populate, Prot, Scenario, SmapsField, StateExpect, Step, ThpMode, ThpStat, Touch,
    Variant, When,
};
use hmmlab_proto::state::{for_device, parse_expected, ANY, STATE_NAMES};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------
// Configuration

/// `default` cases per property, unless `PROPTEST_CASES` says otherwise.
fn config(default: u32) -> ProptestConfig {
    // ProptestConfig::default() reads PROPTEST_CASES (and the other
    // PROPTEST_* variables); only the count's default is changed here.
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default;
    }
    c
}

const FILE: &str = "fuzz.toml";

// ---------------------------------------------------------------------------
// The properties every input must satisfy

/// Check everything that must hold for the result of parsing `text`, and
/// return that result.
fn check_text(text: &str) -> Result<Result<Scenario, Vec<Diagnostic>>, TestCaseError> {
    let result = parse_str(Path::new(FILE), text);
    match &result {
        Ok(s) => check_loaded(s, text)?,
        Err(ds) => check_diagnostics(text, ds, Path::new(FILE))?,
    }
    check_moved(text, &result)?;
    Ok(result)
}

/// The same file with blank lines in front, or with CRLF line ends, gives
/// the same result, with every problem (and every line a message or hint
/// points to) moved along. Only for text that is valid TOML, since a syntax
/// error may change with the line ends.
fn check_moved(
    text: &str,
    result: &Result<Scenario, Vec<Diagnostic>>,
) -> Result<(), TestCaseError> {
    if text.starts_with('\u{feff}') || text.contains('\r') || text.parse::<toml::Table>().is_err() {
        return Ok(());
    }
    const K: usize = 3;
    let moved = parse_str(Path::new(FILE), &format!("{}{text}", "\n".repeat(K)));
    let crlf = parse_str(Path::new(FILE), &text.replace('\n', "\r\n"));
    match (result, moved, crlf) {
        (Ok(s), Ok(m), Ok(_)) => prop_assert_eq!(s, &m),
        (Err(ds), Err(ms), Err(cs)) => {
            prop_assert_eq!(
                ds.len(),
                ms.len(),
                "blank lines in front change the problems"
            );
            prop_assert_eq!(ds.len(), cs.len(), "CRLF line ends change the problems");
            for ((d, m), c) in ds.iter().zip(&ms).zip(&cs) {
                // A problem with the document as a whole stays at its start.
                let at_start = d.line == 1 && d.column == 1 && m.line == 1 && m.column == 1;
                if !at_start {
                    prop_assert_eq!(
                        (m.line, m.column),
                        (d.line + K, d.column),
                        "moved:\n{}\nfrom:\n{}",
                        m,
                        d
                    );
                    prop_assert_eq!(&m.source_line, &d.source_line);
                }
                prop_assert_eq!(&m.message, &move_lines(&d.message, K));
                prop_assert_eq!(&m.hint, &d.hint.as_deref().map(|h| move_lines(h, K)));
                prop_assert_eq!(
                    (c.line, c.column, &c.source_line),
                    (d.line, d.column, &d.source_line),
                    "with CRLF:\n{}\nwith LF:\n{}",
                    c,
                    d
                );
                // (Messages may quote a multi-line string, whose line ends
                // are part of its value.)
            }
        }
        (_, m, c) => {
            return Err(TestCaseError::fail(format!(
                "loads: {}, with blank lines in front: {}, with CRLF: {}",
                result.is_ok(),
                m.is_ok(),
                c.is_ok()
            )))
        }
    }
    Ok(())
}

/// `text` with every `line N` turned into `line N+k`.
fn move_lines(text: &str, k: usize) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("line ") {
        out.push_str(&rest[..at + 5]);
        rest = &rest[at + 5..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let n: usize = rest[..digits].parse().unwrap();
            out.push_str(&(n + k).to_string());
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

fn check_diagnostics(text: &str, ds: &[Diagnostic], path: &Path) -> Result<(), TestCaseError> {
    prop_assert!(!ds.is_empty(), "an error without diagnostics");
    let lines: Vec<&str> = text.split('\n').collect();
    let mut last = (0, 0);
    for d in ds {
        prop_assert_eq!(&d.path, path);
        prop_assert!(!d.message.trim().is_empty(), "empty message: {:?}", d);
        if d.line == 0 {
            prop_assert_eq!(d.column, 0, "{:?}", d);
        } else {
            prop_assert!(
                d.line <= lines.len(),
                "line {} of a {}-line text: {:?}",
                d.line,
                lines.len(),
                d
            );
            let raw = lines[d.line - 1];
            let src = raw.strip_suffix('\r').unwrap_or(raw);
            prop_assert!(d.column >= 1, "{:?}", d);
            prop_assert!(
                d.column <= raw.chars().count() + 1,
                "column {} on a line of {} characters: {:?}",
                d.column,
                raw.chars().count(),
                d
            );
            prop_assert_eq!(d.source_line.as_deref(), Some(src));
            prop_assert!(d.width >= 1, "{:?}", d);
            prop_assert!(
                d.column - 1 + d.width <= src.chars().count().max(d.column),
                "caret past the end of the line: {:?}",
                d
            );
        }
        // File order (whole-file problems have no place and sort first).
        if d.line != 0 {
            prop_assert!(
                (d.line, d.column) >= last,
                "out of order: {:?} after line {}:{}",
                d,
                last.0,
                last.1
            );
            last = (d.line, d.column);
        }
        let shown = d.to_string();
        prop_assert!(shown.contains(&d.message));
    }
    let all = Diagnostics(ds.to_vec()).to_string();
    prop_assert!(all.ends_with("no VM was started"), "{}", all);
    Ok(())
}

fn check_loaded(s: &Scenario, text: &str) -> Result<(), TestCaseError> {
    // JSON, as the plan carries it to the guest.
    let json = serde_json::to_string(s).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: Scenario =
        serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, s, "JSON round trip");

    // TOML: written out again, it must pass every check again, unchanged.
    let toml_text = toml::to_string(s).map_err(|e| TestCaseError::fail(e.to_string()))?;
    match parse_str(Path::new(FILE), &toml_text) {
        Ok(again) => prop_assert_eq!(&again, s, "TOML round trip of:\n{}", toml_text),
        Err(ds) => {
            return Err(TestCaseError::fail(format!(
                "a loaded scenario, written back as TOML, does not load:\n--- original\n{text}\n\
                 --- written\n{toml_text}\n--- problems\n{}",
                Diagnostics(ds)
            )))
        }
    }

    check_invariants(s)?;
    prop_assert!(rules_allow(s), "loaded though it breaks a rule:\n{}", text);
    if let Err(why) = guest_accepts(s) {
        return Err(TestCaseError::fail(format!(
            "loaded, but the guest would refuse it ({why}):\n{text}"
        )));
    }

    // The plan stage resolves every loaded scenario against the kernel.
    for facts in kernels() {
        if let Ok(r) = resolve(s, facts, s.device) {
            prop_assert!(r.requires.is_none());
            prop_assert!(r.step.iter().all(|st| st.variant.is_empty()));
            prop_assert_eq!(r.step.len(), s.step.len());
            check_ranges(&r)?;
        }
    }
    Ok(())
}

/// What the checks guarantee about a loaded scenario.
fn check_invariants(s: &Scenario) -> Result<(), TestCaseError> {
    prop_assert!(!s.description.trim().is_empty());
    if let Some(t) = s.timeout_ms {
        prop_assert!(TIMEOUT_MS.contains(&t));
    }
    match s.kind {
        Kind::Steps => {
            prop_assert!(s.mapping.is_some() && !s.step.is_empty() && s.kselftest.is_none());
        }
        Kind::Kselftest => {
            prop_assert!(s.mapping.is_none() && s.populate.is_empty() && s.step.is_empty());
            let b = &s.kselftest.as_ref().unwrap().binary;
            prop_assert!(!b.is_empty() && !b.contains('/') && b != "." && b != "..");
        }
        Kind::Bench => {
            prop_assert!(s.bench.is_some() && s.mapping.is_none() && s.step.is_empty());
        }
    }
    if let Some(m) = &s.mapping {
        prop_assert!((1..=MAX_PAGES).contains(&m.pages));
        prop_assert!(m.align_pages.is_power_of_two() && m.align_pages <= MAX_PAGES);
        if m.prot == Prot::ReadOnly {
            prop_assert!(s.populate.iter().all(|p| p.how == Touch::Read));
        }
    }
    for st in &s.step {
        if st.op.rules().checks.iterations {
            prop_assert!(st.iterations.is_some_and(|n| ITERATIONS.contains(&n)));
        } else {
            prop_assert!(st.iterations.is_none());
        }
        if st.op.rules().checks.min_complete {
            let rounds = st.iterations.unwrap_or(0);
            prop_assert!(st.min_complete.is_some_and(|n| (1..=rounds).contains(&n)));
        } else {
            prop_assert!(st.min_complete.is_none());
        }
        if st.op.takes_no_pages() {
            prop_assert!(st.pages.is_none());
        }
        prop_assert_eq!(st.prot.is_some(), st.op.rules().checks.prot);
        if st.op.rules().checks.page_flags {
            prop_assert!(flags_allowed(st));
        } else {
            prop_assert!(st.set.is_none() && st.clear.is_none());
        }
        prop_assert_eq!(
            st.thp_stats.as_ref().is_some_and(|m| !m.is_empty()),
            st.op.rules().checks.thp_stats
        );
        if !st.op.rules().checks.thp_stats {
            prop_assert!(st.thp_stats.is_none());
        }
        prop_assert_eq!(
            st.smaps.as_ref().is_some_and(|m| !m.is_empty()),
            st.op.rules().checks.smaps
        );
        if !st.op.rules().checks.smaps {
            prop_assert!(st.smaps.is_none());
        }
        if st.op.checks_itself() {
            prop_assert!(st.expect_errno.is_none());
            if st.op.rules().checks.smaps {
                prop_assert!(st.variant.iter().all(smaps_variant_ok));
            } else {
                prop_assert!(st.variant.is_empty());
            }
        } else {
            prop_assert!(st.variant.iter().all(|v| v.smaps.is_none()));
        }
        for e in st
            .expect
            .iter()
            .chain(st.variant.iter().flat_map(|v| v.expect.iter().flatten()))
        {
            prop_assert!(parse_expected(&for_device(&e.state, false)).is_ok());
        }
    }
    check_ranges(s)
}

fn check_ranges(s: &Scenario) -> Result<(), TestCaseError> {
    let ranges = page_ranges(s);
    match &s.mapping {
        None => prop_assert!(ranges.is_empty(), "page ranges without a mapping"),
        Some(m) => {
            for r in ranges {
                prop_assert!(
                    r.start() < r.end() && r.end() <= m.pages,
                    "range [{}, {}) in a {}-page mapping",
                    r.start(),
                    r.end(),
                    m.pages
                );
            }
        }
    }
    Ok(())
}

fn page_ranges(s: &Scenario) -> Vec<PageRange> {
    let mut out: Vec<PageRange> = s.populate.iter().map(|p| p.pages).collect();
    for st in &s.step {
        out.extend(st.pages);
        out.extend(st.expect.iter().map(|e| e.pages));
        for v in &st.variant {
            out.extend(v.expect.iter().flatten().map(|e| e.pages));
        }
    }
    out
}

fn kernels() -> &'static [KernelFacts] {
    static K: OnceLock<Vec<KernelFacts>> = OnceLock::new();
    K.get_or_init(|| {
        vec![
            KernelFacts::from_dotconfig(
                "6.12.117",
                "CONFIG_TEST_HMM=m\nCONFIG_DEVICE_PRIVATE=y\n# CONFIG_X is not set\n",
            ),
            KernelFacts::from_dotconfig("6.13.0-rc2+", "CONFIG_TRANSPARENT_HUGEPAGE=y\n"),
            KernelFacts::from_dotconfig("garbage", ""),
        ]
    })
}

/// What the CPU or the device may do with a page, as the `munmap` and
/// `mprotect` steps so far left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageAccess {
    ReadWrite,
    ReadOnly,
    Unmapped,
}

/// The access of every page of a mapping: runs of pages keyed by their
/// first page, each with its access and whether a step set it (rather than
/// the mapping's own `prot`).
struct AccessMap {
    runs: std::collections::BTreeMap<u64, (PageAccess, bool)>,
    pages: u64,
}

impl AccessMap {
    fn new(m: &Mapping) -> AccessMap {
        let access = match m.prot {
            Prot::ReadWrite => PageAccess::ReadWrite,
            Prot::ReadOnly => PageAccess::ReadOnly,
        };
        AccessMap {
            runs: [(0, (access, false))].into(),
            pages: m.pages,
        }
    }

    /// Does a page of `r` have an access (and by-step flag) that `pred` picks?
    fn any(&self, r: PageRange, pred: impl Fn(PageAccess, bool) -> bool) -> bool {
        let first = self.runs.range(..=r.start()).next_back();
        let inner = self.runs.range(r.start() + 1..r.end());
        first
            .into_iter()
            .chain(inner)
            .any(|(_, &(a, by))| pred(a, by))
    }

    /// A step gives the pages of `r` `access`.
    fn set(&mut self, r: PageRange, access: PageAccess) {
        let after = self.runs.range(..=r.end()).next_back().map(|(_, v)| *v);
        let inside: Vec<u64> = self
            .runs
            .range(r.start()..=r.end())
            .map(|(k, _)| *k)
            .collect();
        for k in inside {
            self.runs.remove(&k);
        }
        if let (Some(v), true) = (after, r.end() < self.pages) {
            self.runs.insert(r.end(), v);
        }
        self.runs.insert(r.start(), (access, true));
    }
}

/// The pages step `st` works on in an `n`-page mapping, `None` when it
/// works on none (or on pages outside it, or the mapping has none).
fn step_range(st: &Step, n: u64) -> Option<PageRange> {
    match st.pages {
        Some(r) => (!r.is_empty() && r.end() <= n).then_some(r),
        None if matches!(st.op.rules().pages, OpPages::WholeByDefault) && n > 0 => {
            Some(PageRange(0, n))
        }
        None => None,
    }
}

/// Does step `st` reach its pages as `map` allows? A CPU access to an
/// unmapped page, an mprotect of one, or an ioctl over one that is not
/// expected to fail is refused; so is a write (from the CPU, or from the
/// device not expected to fail) to a page a step made read-only.
fn reaches_as_allowed(map: &AccessMap, st: &Step) -> bool {
    let Some(r) = step_range(st, map.pages) else {
        return true;
    };
    let fails = st.expect_errno.is_some_and(|e| e != 0);
    if map.any(r, |a, _| a == PageAccess::Unmapped)
        && (st.op.is_cpu_access()
            || st.op == Op::Mprotect
            || st.op == Op::Discard
            || st.op == Op::PageOut
            || st.op == Op::HoldRefs
            || st.op == Op::PinPages
            || st.op == Op::CheckPageFlags
            || (st.op.issues_ioctl() && !fails))
    {
        return false;
    }
    let writes = st.op.cpu_writes() || (st.op.device_writes() && !fails);
    !(writes && map.any(r, |a, by| a == PageAccess::ReadOnly && by))
}

/// Step `st`'s change of its pages' access, if it makes one.
fn change_access(map: &mut AccessMap, st: &Step) {
    let Some(r) = step_range(st, map.pages) else {
        return;
    };
    match (st.op, st.prot) {
        (Op::Munmap, _) => map.set(r, PageAccess::Unmapped),
        (Op::Mprotect, Some(Prot::ReadOnly)) => map.set(r, PageAccess::ReadOnly),
        (Op::Mprotect, Some(Prot::ReadWrite)) => map.set(r, PageAccess::ReadWrite),
        _ => {}
    }
}

/// What the guest driver refuses at run time as an error (guest/src/steps.rs:
/// `check_applicable`, `check_range`, `check_states`, `cpu_may`, populate,
/// the ops' own preconditions), restated. Every way a step can resolve is
/// tried: its own fields, and each variant applied over them, since some
/// kernel may match any of them. A scenario that loads must never get here.
fn guest_accepts(s: &Scenario) -> Result<(), String> {
    if s.kind == Kind::Kselftest {
        return Ok(());
    }
    let m = s.mapping.as_ref().ok_or("no mapping")?;
    let writable = m.prot == Prot::ReadWrite;
    let inside = |r: PageRange| !r.is_empty() && r.end() <= m.pages;
    for p in &s.populate {
        if !inside(p.pages) || (p.how == Touch::Write && !writable) {
            return Err("populate".into());
        }
    }
    let mut access = AccessMap::new(m);
    for (i, own) in s.step.iter().enumerate() {
        let mut views = vec![own.clone()];
        for v in &own.variant {
            let mut st = own.clone();
            st.expect_cpages = v.expect_cpages.or(st.expect_cpages);
            st.expect_faults = v.expect_faults.or(st.expect_faults);
            st.expect_errno = v.expect_errno.or(st.expect_errno);
            if let Some(e) = &v.expect {
                st.expect = e.clone();
            }
            if v.smaps.is_some() {
                st.smaps = v.smaps.clone();
            }
            views.push(st);
        }
        for (j, st) in views.iter().enumerate() {
            let at = format!("step {i}, resolution {j}");
            guest_accepts_step(m, st).map_err(|why| format!("{at}: {why}"))?;
        }
        // The guest refuses a CPU access to an unmapped page, a CPU write
        // to a read-only one, an mprotect, a hold-refs or a
        // check-page-flags of an unmapped page.
        if let Some(r) = step_range(own, m.pages) {
            let cpu_bad = (own.op.is_cpu_access()
                || own.op == Op::HoldRefs
                || own.op == Op::PinPages
                || own.op == Op::CheckPageFlags)
                && access.any(r, |a, _| {
                    a == PageAccess::Unmapped || (own.op.cpu_writes() && a == PageAccess::ReadOnly)
                });
            let protect_bad =
                own.op == Op::Mprotect && access.any(r, |a, _| a == PageAccess::Unmapped);
            if cpu_bad || protect_bad {
                return Err(format!(
                    "step {i}: {} of pages it may not reach",
                    own.op.as_str()
                ));
            }
        }
        change_access(&mut access, own);
    }
    // The pipes and pins: one per hold-refs or pin-pages step, each of 1
    // to MAX_HELD_PAGES pages; a drop-refs or unpin-pages with none
    // holding is an error.
    if !refs_allowed(&s.step) {
        return Err("hold-refs/pin-pages over too many pages, or a drop of nothing".into());
    }
    Ok(())
}

/// One resolution of a step, as the guest's `check_applicable` and the
/// ops' own preconditions judge it.
fn guest_accepts_step(m: &Mapping, st: &Step) -> Result<(), String> {
    let op = st.op.as_str();
    let rules = st.op.rules();
    let range = st.pages.unwrap_or(PageRange(0, m.pages));
    if range.is_empty() || range.end() > m.pages {
        return Err("range".into());
    }
    if st.pages.is_some() && st.op.takes_no_pages() {
        return Err(format!("pages on {op}"));
    }
    if st.pages.is_none() && st.op.needs_pages() {
        return Err(format!("no pages for {op}"));
    }
    if st.prot.is_some() != rules.checks.prot {
        return Err("prot".into());
    }
    // check-page-flags: a flag in one of the lists, none in both (a flag
    // named twice in one list does no harm there).
    if rules.checks.page_flags {
        let (set, clear) = (
            st.set.as_deref().unwrap_or_default(),
            st.clear.as_deref().unwrap_or_default(),
        );
        if (set.is_empty() && clear.is_empty()) || set.iter().any(|f| clear.contains(f)) {
            return Err("set/clear".into());
        }
    } else if st.set.is_some() || st.clear.is_some() {
        return Err(format!("set/clear on {op}"));
    }
    match (rules.checks.thp_stats, &st.thp_stats) {
        (true, Some(m)) if !m.is_empty() => {}
        (false, None) => {}
        _ => return Err(format!("thp_stats on {op}")),
    }
    match (rules.checks.smaps, &st.smaps) {
        (true, Some(m)) if !m.is_empty() => {}
        (false, None) => {}
        _ => return Err(format!("smaps on {op}")),
    }
    if !st.expect.is_empty() && !rules.checks.states {
        return Err(format!("expect on {op}"));
    }
    if st.iterations.is_some() != rules.checks.iterations || st.iterations == Some(0) {
        return Err("iterations".into());
    }
    if st.min_complete.is_some() != rules.checks.min_complete
        || st
            .min_complete
            .is_some_and(|n| n == 0 || n > st.iterations.unwrap_or(0))
    {
        return Err("min_complete".into());
    }
    let counts = st.expect_cpages.is_some() || st.expect_faults.is_some();
    if !st.op.issues_ioctl() && (counts || st.expect_errno.is_some()) {
        return Err(format!("expect_errno/cpages/faults on {op}"));
    }
    if st.expect_cpages.is_some() && !rules.checks.cpages {
        return Err(format!("expect_cpages on {op}"));
    }
    if st.expect_errno.is_some_and(|e| e != 0) && (counts || !st.expect.is_empty()) {
        return Err("expect_errno with counts or states".into());
    }
    for e in &st.expect {
        if e.pages.is_empty()
            || e.pages.start() < range.start()
            || e.pages.end() > range.end()
            || parse_expected(&for_device(&e.state, false)).is_err()
        {
            return Err("state expectation".into());
        }
    }
    let refused = match st.op {
        Op::UserfaultfdIdle => !m.userfaultfd,
        Op::CheckFile => m.kind != MappingKind::FilePrivate,
        _ => (st.op.cpu_writes() || st.op == Op::ChildWrite) && m.prot == Prot::ReadOnly,
    };
    if refused {
        return Err(format!("{op} on this mapping"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The rules of the file format, restated: does a scenario pass every check?
// Which op takes which field is the op table's (`Op::rules`); how the fields
// combine is restated here.

fn rules_allow(s: &Scenario) -> bool {
    let mut ok = !s.description.trim().is_empty();
    ok &= s.timeout_ms.is_none_or(|t| TIMEOUT_MS.contains(&t));
    ok &= match s.kind {
        Kind::Steps => {
            s.mapping.is_some() && !s.step.is_empty() && s.kselftest.is_none() && s.bench.is_none()
        }
        Kind::Kselftest => {
            s.kselftest.is_some()
                && s.mapping.is_none()
                && s.populate.is_empty()
                && s.step.is_empty()
                && s.bench.is_none()
        }
        // Never generated: bench scenarios have their own tests
        // (harness/src/scenario/tests).
        Kind::Bench => false,
    };
    if let Some(k) = &s.kselftest {
        let b = k.binary.as_str();
        ok &= !(b.is_empty() || b == "." || b == ".." || b.contains('/') || b.contains('\0'));
    }
    let limit = s.mapping.as_ref().map(|m| m.pages);
    if let Some(m) = &s.mapping {
        ok &= mapping_allowed(s, m);
    }
    ok &= s.requires.as_ref().is_none_or(when_ok);
    let range_ok = |r: &PageRange| r.start() < r.end() && limit.is_none_or(|n| r.end() <= n);
    ok &= s.populate.iter().all(|p| range_ok(&p.pages));
    for st in &s.step {
        ok &= step_allowed(s, st, limit);
    }
    ok &= pin_allowed(s);
    ok &= memcg_allowed(s);
    ok && refs_allowed(&s.step)
        && fork_allowed(s.mapping.as_ref(), &s.step)
        && wp_allowed(s.mapping.as_ref(), &s.step)
}

/// `pin_cpu` in a steps scenario without migrate-race (whose threads need
/// both CPUs).
fn pin_allowed(s: &Scenario) -> bool {
    !s.pin_cpu || (s.kind == Kind::Steps && s.step.iter().all(|st| st.op != Op::MigrateRace))
}

/// `memcg_max_kib` in a steps scenario, in range, that requires the
/// memory controller.
fn memcg_allowed(s: &Scenario) -> bool {
    s.memcg_max_kib.is_none_or(|kib| {
        s.kind == Kind::Steps
            && (256..=1_048_576).contains(&kib)
            && s.requires.as_ref().and_then(|r| r.config.as_deref()) == Some(MEMCG)
    })
}

/// `write-protect` in an anon-private mapping without userfaultfd, no
/// write after the first one, and `check-write-protected` only of pages an
/// earlier `write-protect` protected.
fn wp_allowed(mapping: Option<&Mapping>, steps: &[Step]) -> bool {
    let n = mapping.map_or(0, |m| m.pages);
    let first = steps.iter().position(|st| st.op == Op::WriteProtect);
    if let (Some(_), Some(m)) = (first, mapping) {
        if m.kind != MappingKind::AnonPrivate || m.userfaultfd {
            return false;
        }
    }
    let mut protected = vec![false; n.min(1 << 24) as usize];
    for (i, st) in steps.iter().enumerate() {
        let r = st.pages.unwrap_or(PageRange(0, n));
        let inside = r.start() < r.end() && r.end() <= protected.len() as u64;
        let span = r.start() as usize..r.end() as usize;
        match st.op {
            Op::WriteProtect if inside => protected[span].fill(true),
            Op::CheckWriteProtected if inside && protected[span].iter().any(|p| !p) => {
                return false
            }
            _ => {}
        }
        let writes = st.op.cpu_writes() || st.op.device_writes() || st.op == Op::ChildWrite;
        if writes && first.is_some_and(|f| f < i) {
            return false;
        }
    }
    true
}

/// `fork` once, before its `child-read` and `child-write` steps, in a
/// private mapping without userfaultfd, with no VMA change and no
/// migrate-race in the scenario.
fn fork_allowed(mapping: Option<&Mapping>, steps: &[Step]) -> bool {
    let forks = steps.iter().filter(|st| st.op == Op::Fork).count();
    let Some(first) = steps.iter().position(|st| st.op == Op::Fork) else {
        return steps.iter().all(|st| !st.op.is_child_access());
    };
    let mapping_ok = mapping.is_none_or(|m| m.kind != MappingKind::AnonShared && !m.userfaultfd);
    forks == 1
        && mapping_ok
        && steps[..first].iter().all(|st| !st.op.is_child_access())
        && steps.iter().all(|st| {
            st.op != Op::MigrateRace && st.op.rules().kind != hmmlab_proto::op::OpKind::VmaChange
        })
}

/// A hold-refs or pin-pages step holds at most MAX_HELD_PAGES pages; a
/// drop-refs (unpin-pages) step needs a hold-refs (pin-pages) step after
/// the last drop-refs (unpin-pages), or the start.
fn refs_allowed(steps: &[Step]) -> bool {
    let (mut refs, mut pins) = (false, false);
    for st in steps {
        let held = match st.op {
            Op::HoldRefs | Op::DropRefs => &mut refs,
            Op::PinPages | Op::UnpinPages => &mut pins,
            _ => continue,
        };
        if matches!(st.op, Op::HoldRefs | Op::PinPages) {
            if st.pages.is_some_and(|r| r.len() > MAX_HELD_PAGES) {
                return false;
            }
            *held = true;
        } else {
            if !*held {
                return false;
            }
            *held = false;
        }
    }
    true
}

/// `[requires]`: a kernel and/or config condition, never a device.
fn when_ok(w: &When) -> bool {
    w.device.is_none() && conditions_ok(w) && (w.kernel.is_some() || w.config.is_some())
}

/// A variant's `when`: any of the three, a device only one the scenario
/// can run on.
fn variant_when_ok(s: &Scenario, w: &When) -> bool {
    conditions_ok(w)
        && (w.kernel.is_some() || w.config.is_some() || w.device.is_some())
        && w.device.is_none_or(|d| s.device.is_none_or(|p| p == d))
}

fn conditions_ok(w: &When) -> bool {
    w.kernel.as_deref().is_none_or(|k| parse_kernel(k).is_ok())
        && w.config.as_deref().is_none_or(|c| parse_config(c).is_ok())
}

/// The mapping's own rules, and what the steps may do with it.
fn mapping_allowed(s: &Scenario, m: &Mapping) -> bool {
    let mut ok = (1..=MAX_PAGES).contains(&m.pages);
    ok &= m.align_pages.is_power_of_two() && m.align_pages <= MAX_PAGES;
    ok &= !m.hugepage || m.kind == MappingKind::AnonPrivate;
    ok &= !m.userfaultfd || m.kind != MappingKind::FilePrivate;
    if m.prot == Prot::ReadOnly {
        ok &= s.populate.iter().all(|p| p.how == Touch::Read);
        ok &= s.step.iter().all(|st| {
            !st.op.cpu_writes()
                && st.op != Op::ChildWrite
                && (!st.op.device_writes() || st.expect_errno.is_some())
        });
    }
    ok &= m.userfaultfd || s.step.iter().all(|st| st.op != Op::UserfaultfdIdle);
    ok &= m.kind == MappingKind::AnonPrivate || s.step.iter().all(|st| st.op != Op::Discard);
    ok &= m.kind == MappingKind::FilePrivate || s.step.iter().all(|st| st.op != Op::CheckFile);
    // Steps run in order: what a page allows depends on the munmap and
    // mprotect steps before.
    if (1..=MAX_PAGES).contains(&m.pages) {
        let mut access = AccessMap::new(m);
        for st in &s.step {
            ok &= reaches_as_allowed(&access, st);
            change_access(&mut access, st);
        }
    }
    ok
}

/// One step's rules: its fields, then its own expectations and each
/// variant's.
fn step_allowed(s: &Scenario, st: &Step, limit: Option<u64>) -> bool {
    let range_ok = |r: &PageRange| r.start() < r.end() && limit.is_none_or(|n| r.end() <= n);
    let checks = st.op.rules().checks;
    let mut ok = st.variant.iter().all(|v| variant_when_ok(s, &v.when));
    ok &= st.pages.as_ref().is_none_or(range_ok);
    ok &= !(st.op.takes_no_pages() && st.pages.is_some());
    ok &= !(st.op.needs_pages() && st.pages.is_none());
    ok &= st.prot.is_some() == checks.prot;
    ok &= if checks.page_flags {
        flags_allowed(st)
    } else {
        st.set.is_none() && st.clear.is_none()
    };
    ok &= match &st.thp_stats {
        Some(m) => checks.thp_stats && !m.is_empty(),
        None => !checks.thp_stats,
    };
    ok &= match &st.smaps {
        Some(m) => checks.smaps && !m.is_empty(),
        None => !checks.smaps,
    };
    // Allocations fail only in steps that enter the kernel for their
    // pages, under a function named as /proc/kallsyms names one, in a
    // scenario that requires the fault-injection stack-trace filter.
    if let Some(f) = &st.fail_kernel_alloc {
        ok &= st.op.may_fail_kernel_alloc() && kallsyms_name(&f.under);
        ok &= s.requires.as_ref().and_then(|r| r.config.as_deref()) == Some(STACKTRACE_FILTER);
    }
    if let Some(cmd) = st.op.newer_interface() {
        let req = s.requires.as_ref().and_then(|r| r.kernel.as_deref());
        ok &= req
            .and_then(|k| parse_kernel(k).ok())
            .is_some_and(|r| !r.holds_for(cmd.last_without));
    }
    ok &= match (checks.iterations, st.iterations) {
        (true, n) => n.is_some_and(|n| ITERATIONS.contains(&n)),
        (false, n) => n.is_none(),
    };
    // At least one round must complete, and no more than run.
    ok &= match (checks.min_complete, st.min_complete) {
        (true, n) => n.is_some_and(|n| n >= 1 && st.iterations.is_some_and(|r| n <= r)),
        (false, n) => n.is_none(),
    };
    if st.op.checks_itself() {
        ok &= st.expect_errno.is_none();
        ok &= if checks.smaps {
            st.variant.iter().all(smaps_variant_ok)
        } else {
            st.variant.is_empty()
        };
    } else {
        ok &= st.variant.iter().all(|v| v.smaps.is_none());
    }
    // The step's own expectations, then its variants'.
    let mut tables: Vec<Table> = vec![(
        st.expect_cpages,
        st.expect_faults,
        st.expect_errno,
        Some(st.expect.as_slice()).filter(|e| !e.is_empty()),
        false,
    )];
    if !st.op.checks_itself() {
        for v in &st.variant {
            tables.push((
                v.expect_cpages,
                v.expect_faults,
                v.expect_errno,
                v.expect.as_deref(),
                true,
            ));
        }
    }
    ok && tables
        .into_iter()
        .all(|t| expectations_allowed(st, t, limit, &range_ok))
}

/// The flags of a step that checks them (check-page-flags): at least one
/// between `set` and `clear`, each named once, none in both.
fn flags_allowed(st: &Step) -> bool {
    let set = st.set.as_deref().unwrap_or_default();
    let clear = st.clear.as_deref().unwrap_or_default();
    let all: Vec<PageFlag> = set.iter().chain(clear).copied().collect();
    !all.is_empty() && all.iter().enumerate().all(|(i, f)| !all[..i].contains(f))
}

/// One table of expectations: cpages, faults, errno, states, and whether
/// it is a variant's.
type Table<'a> = (
    Option<u64>,
    Option<u64>,
    Option<i32>,
    Option<&'a [StateExpect]>,
    bool,
);

fn expectations_allowed(
    st: &Step,
    (cpages, faults, errno, expect, variant): Table<'_>,
    limit: Option<u64>,
    range_ok: &dyn Fn(&PageRange) -> bool,
) -> bool {
    let checks = st.op.rules().checks;
    let count = match (st.pages, limit) {
        (Some(r), _) => r.len(),
        (None, Some(n)) => n,
        (None, None) => u64::MAX,
    };
    let fails = |e: Option<i32>| e.is_some_and(|e| e != 0);
    let mut ok = expect.is_none() || checks.states;
    ok &= cpages.is_none() || checks.cpages;
    ok &= faults.is_none() || checks.faults;
    // Only ops that issue an ioctl take an errno (the ones that check
    // themselves are refused it above).
    ok &= errno.is_none() || st.op.issues_ioctl() || st.op.checks_itself();
    ok &= cpages.is_none_or(|c| c <= count);
    // The step as this table resolves it: a failing ioctl reports
    // nothing else; a snapshot asserts an errno or states.
    let (r_cpages, r_faults, r_errno, r_expect) = if variant {
        (
            cpages.or(st.expect_cpages),
            faults.or(st.expect_faults),
            errno.or(st.expect_errno),
            expect.map_or(!st.expect.is_empty(), |e| !e.is_empty()),
        )
    } else {
        (cpages, faults, errno, expect.is_some())
    };
    // A device read that succeeds states its faults.
    if checks.faults_required && !fails(r_errno) {
        ok &= r_faults.is_some();
    }
    if fails(r_errno) {
        ok &= r_cpages.is_none() && r_faults.is_none() && !r_expect;
        // (A variant's `expect = []` is refused in any case.)
        ok &= !variant || expect.is_none();
    }
    if checks.states {
        ok &= expect.is_none_or(|e| !e.is_empty());
        ok &= fails(r_errno) || r_expect;
    }
    let mut inside = true;
    for e in expect.unwrap_or_default() {
        ok &= range_ok(&e.pages);
        ok &= parse_expected(&for_device(&e.state, false)).is_ok();
        if let Some(r) = st.pages {
            inside &= r.start() <= e.pages.start() && e.pages.end() <= r.end();
        }
    }
    ok &= inside;
    // A snapshot that succeeds names every page of its range (a state or
    // `any`); when an `expect` lies outside the range, that alone is said.
    let range = st.pages.or(limit.map(|n| PageRange(0, n)));
    if let (Op::Snapshot, false, true, Some(r), Some(e)) = (
        st.op,
        fails(r_errno),
        inside,
        range,
        expect.filter(|e| !e.is_empty()),
    ) {
        ok &= (r.start()..r.end())
            .all(|p| e.iter().any(|x| x.pages.start() <= p && p < x.pages.end()));
    }
    ok
}

// ---------------------------------------------------------------------------
// A small deterministic random source for the generators below: a proptest
// seed drives it, so every case can be replayed.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// True with probability `num / den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

const MAPPING_KINDS: [MappingKind; 3] = [
    MappingKind::AnonPrivate,
    MappingKind::AnonShared,
    MappingKind::FilePrivate,
];
const THP_MODES: [ThpMode; 3] = [ThpMode::Always, ThpMode::Madvise, ThpMode::Never];

/// Kernel conditions, valid and not.
const KERNEL_WORDS: &[&str] = &[
    ">=6.3",
    "<6.2",
    "6.12",
    "=6.1.192",
    "==6",
    "> 6.13",
    "<=7.0.0",
    " 6.12 ",
    ">=",
    "6.x",
    "1.2.3.4",
    "",
    ">=99999999999",
    "6..1",
    "-1",
    "=>6",
];
/// Config conditions, valid and not.
const CONFIG_WORDS: &[&str] = &[
    "CONFIG_TEST_HMM",
    "!CONFIG_DEVICE_PRIVATE",
    "CONFIG_NR_CPUS=64",
    "CONFIG_LOCALVERSION=\"-hmm\"",
    "CONFIG_X=n",
    " ! CONFIG_Y ",
    "config_lower",
    "CONFIG_",
    "!CONFIG_X=y",
    "CONFIG_X=",
    "CONFIG_X=\"\"",
    "",
    "!",
];

fn op_name(op: Op) -> &'static str {
    op.as_str()
}

fn mapping_kind_name(k: MappingKind) -> &'static str {
    match k {
        MappingKind::AnonPrivate => "anon-private",
        MappingKind::AnonShared => "anon-shared",
        MappingKind::FilePrivate => "file-private",
    }
}

/// A state expression: mostly valid, sometimes not.
fn gen_state(rng: &mut Rng, valid: bool) -> String {
    let names: Vec<&str> = STATE_NAMES.iter().map(|(n, _)| *n).collect();
    if !valid && rng.chance(1, 2) {
        return rng
            .pick(&[
                "",
                "+",
                "bogus",
                "read+",
                "dev-private",
                "READ",
                "none++write",
            ])
            .to_string();
    }
    let n = rng.between(1, 3);
    let parts: Vec<String> = (0..n)
        .map(|_| {
            let name = *rng.pick(&names);
            if rng.chance(1, 8) {
                format!(" {name} ")
            } else {
                name.to_string()
            }
        })
        .collect();
    parts.join("+")
}

/// Free text: printable ASCII with quotes, backslashes, tabs, control
/// characters and multi-byte characters mixed in.
fn gen_text(rng: &mut Rng, max: u64) -> String {
    const SPECIAL: &[char] = &[
        '"', '\\', '\t', '\'', '#', '=', '[', ']', '{', '}', '\u{7f}', '\u{1}', '\u{1b}', 'é',
        '中', '🦀', '\u{200b}', '\u{feff}', ' ', '\n',
    ];
    let len = rng.below(max + 1);
    (0..len)
        .map(|_| {
            if rng.chance(1, 5) {
                *rng.pick(SPECIAL)
            } else {
                (b' ' + rng.below(95) as u8) as char
            }
        })
        .collect()
}

fn gen_when(rng: &mut Rng, valid: bool) -> When {
    let pick = |rng: &mut Rng, words: &[&str], good: usize| -> String {
        if valid {
            rng.pick(&words[..good]).to_string()
        } else {
            rng.pick(words).to_string()
        }
    };
    let (kernel, config) = match rng.below(if valid { 3 } else { 4 }) {
        0 => (Some(pick(rng, KERNEL_WORDS, 7)), None),
        1 => (None, Some(pick(rng, CONFIG_WORDS, 6))),
        2 => (
            Some(pick(rng, KERNEL_WORDS, 7)),
            Some(pick(rng, CONFIG_WORDS, 6)),
        ),
        _ => (None, None),
    };
    When {
        kernel,
        config,
        device: None,
    }
}

/// A range inside `[lo, hi)` (`lo < hi`).
fn range_in(rng: &mut Rng, lo: u64, hi: u64) -> PageRange {
    let a = rng.between(lo, hi - 1);
    let b = rng.between(a + 1, hi);
    PageRange(a, b)
}

/// A mapping size: mostly small, sometimes large.
fn gen_pages(rng: &mut Rng) -> u64 {
    match rng.below(8) {
        0 => MAX_PAGES,
        1 => 512,
        2 => rng.between(1, MAX_PAGES),
        _ => rng.between(1, 64),
    }
}

/// A scenario that passes every check, by construction.
fn gen_valid(rng: &mut Rng) -> Scenario {
    let mut s = base_scenario(rng);
    if rng.chance(1, 10) {
        s.kind = Kind::Kselftest;
        s.pin_cpu = false;
        s.kselftest = Some(Kselftest {
            binary: rng.pick(&["hmm-tests", "a.b", "x y", "..."]).to_string(),
            args: (0..rng.below(3)).map(|_| gen_text(rng, 8)).collect(),
            known_failure: vec![],
            exclude: vec![],
        });
        return s;
    }
    let kind = *rng.pick(&MAPPING_KINDS);
    let prot = if rng.chance(1, 5) {
        Prot::ReadOnly
    } else {
        Prot::ReadWrite
    };
    let m = Mapping {
        kind,
        pages: gen_pages(rng),
        align_pages: 1 << rng.below(19),
        prot,
        hugepage: kind == MappingKind::AnonPrivate && rng.chance(1, 3),
        userfaultfd: kind != MappingKind::FilePrivate && rng.chance(1, 3),
    };
    let n = m.pages;
    for _ in 0..rng.below(4) {
        let how = if prot == Prot::ReadOnly || rng.chance(1, 3) {
            Touch::Read
        } else {
            Touch::Write
        };
        s.populate.push(Populate {
            pages: range_in(rng, 0, n),
            how,
        });
    }
    let allowed: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|op| !(op.cpu_writes() || *op == Op::ChildWrite) || prot == Prot::ReadWrite)
        .filter(|op| *op != Op::MigrateRace || !s.pin_cpu)
        .filter(|op| *op != Op::UserfaultfdIdle || m.userfaultfd)
        .filter(|op| *op != Op::Discard || m.kind == MappingKind::AnonPrivate)
        .filter(|op| *op != Op::CheckFile || m.kind == MappingKind::FilePrivate)
        .filter(|op| {
            *op != Op::WriteProtect || (m.kind == MappingKind::AnonPrivate && !m.userfaultfd)
        })
        .collect();
    let mut access = AccessMap::new(&m);
    let mut steps_so_far: Vec<Step> = vec![];
    for _ in 0..rng.between(1, 6) {
        // A step that reaches pages an earlier munmap or mprotect step
        // took from it, or a drop-refs with nothing held, is drawn again
        // (the first step fits unless it is a child's, drawn again until
        // it is not).
        let tries = if s.step.is_empty() { 64 } else { 4 };
        for _ in 0..tries {
            // A check that needs an earlier step comes up once in 30
            // draws or so: after its step, it is drawn more often.
            let follow = checks_after(&steps_so_far);
            let op = if !follow.is_empty() && rng.chance(1, 4) {
                *rng.pick(&follow)
            } else {
                *rng.pick(&allowed)
            };
            let mut st = gen_valid_step(rng, op, n, prot);
            if op == Op::CheckWriteProtected {
                // Mostly pages the last write-protect step protected,
                // which a range drawn over the whole mapping seldom is
                // (once in 3000 seeds before this).
                let last = steps_so_far
                    .iter()
                    .rev()
                    .find(|st| st.op == Op::WriteProtect)
                    .and_then(|st| st.pages);
                if let (Some(r), true) = (last, rng.chance(3, 4)) {
                    st.pages = Some(range_in(rng, r.start(), r.end()));
                }
            }
            steps_so_far.push(st.clone());
            let drops_ok = refs_allowed(&steps_so_far);
            let fork_ok =
                fork_allowed(Some(&m), &steps_so_far) && wp_allowed(Some(&m), &steps_so_far);
            steps_so_far.pop();
            if reaches_as_allowed(&access, &st) && drops_ok && fork_ok {
                change_access(&mut access, &st);
                steps_so_far.push(st.clone());
                s.step.push(st);
                break;
            }
        }
    }
    require_newer_commands(&mut s);
    require_fault_injection(&mut s);
    // A scenario requires one option: a memory limit only where no
    // allocation is made to fail.
    if s.step.iter().all(|st| st.fail_kernel_alloc.is_none()) && rng.chance(1, 8) {
        s.memcg_max_kib = Some(rng.between(256, 1_048_576));
        s.requires.get_or_insert_with(When::default).config = Some(MEMCG.into());
    }
    s.mapping = Some(m);
    s
}

/// The checks that need an earlier step which `steps` has: a
/// `write-protect` step for `check-write-protected`.
fn checks_after(steps: &[Step]) -> Vec<Op> {
    [(Op::WriteProtect, Op::CheckWriteProtected)]
        .into_iter()
        .filter(|(before, _)| steps.iter().any(|st| st.op == *before))
        .map(|(_, check)| check)
        .collect()
}

const STACKTRACE_FILTER: &str = "CONFIG_FAULT_INJECTION_STACKTRACE_FILTER";
const MEMCG: &str = "CONFIG_MEMCG";

/// A function's name in /proc/kallsyms: a C identifier, maybe with the
/// compiler's `.isra.0`-like suffixes.
fn kallsyms_name(name: &str) -> bool {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    first_ok
        && name
            .bytes()
            .all(|b| b == b'_' || b == b'.' || b.is_ascii_alphanumeric())
}

/// `fail_kernel_alloc` naming a valid function or, when `valid` is false,
/// maybe not.
fn gen_fail_kernel_alloc(rng: &mut Rng, valid: bool) -> FailKernelAlloc {
    const GOOD: &[&str] = &[
        "__migrate_device_pages",
        "migrate_device_coherent_folio",
        "migrate_vma_collect_skip.isra.0",
        "f",
        "_x9",
    ];
    const BAD: &[&str] = &["", "two words", "0day", "f()", "mm/migrate_device.c", "a-b"];
    let under = match (valid, rng.below(3)) {
        (true, _) | (false, 0) => rng.pick(GOOD).to_string(),
        (false, 1) => rng.pick(BAD).to_string(),
        (false, _) => gen_text(rng, 12),
    };
    FailKernelAlloc {
        allocator: *rng.pick(&Allocator::ALL),
        under,
        spare_reclaiming: rng.chance(1, 3),
        expect_failed: rng.chance(1, 3).then(|| rng.below(4)),
    }
}

/// A step whose allocations fail needs the stack-trace filter required.
fn require_fault_injection(s: &mut Scenario) {
    if s.step.iter().any(|st| st.fail_kernel_alloc.is_some()) {
        s.requires.get_or_insert_with(When::default).config = Some(STACKTRACE_FILTER.into());
    }
}

/// Ops only newer test_hmm has need `[requires] kernel` to exclude the
/// kernels without: `>=` the newest first kernel of the commands used.
fn require_newer_commands(s: &mut Scenario) {
    let version = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    let newest = s
        .step
        .iter()
        .filter_map(|st| st.op.newer_interface())
        .map(|c| c.first_seen)
        .max_by_key(|v| version(v));
    if let Some(v) = newest {
        s.requires.get_or_insert_with(When::default).kernel = Some(format!(">={v}"));
    }
}

fn base_scenario(rng: &mut Rng) -> Scenario {
    let mut description = gen_text(rng, 40);
    if description.trim().is_empty() {
        description.push('d');
    }
    Scenario {
        description,
        kind: Kind::Steps,
        thp: rng.chance(1, 2).then(|| *rng.pick(&THP_MODES)),
        timeout_ms: rng
            .chance(1, 3)
            .then(|| rng.between(*TIMEOUT_MS.start(), *TIMEOUT_MS.end())),
        device: rng.chance(1, 4).then(|| *rng.pick(&DeviceKind::ALL)),
        pin_cpu: rng.chance(1, 8),
        memcg_max_kib: None,
        mapping: None,
        populate: vec![],
        step: vec![],
        kselftest: None,
        bench: None,
        requires: rng.chance(1, 4).then(|| gen_when(rng, true)),
        known_warning: vec![],
    }
}

fn gen_valid_step(rng: &mut Rng, op: Op, n: u64, prot: Prot) -> Step {
    let checks = op.rules().checks;
    let pages = match op.rules().pages {
        OpPages::None { .. } => None,
        OpPages::Required { .. } if op.holds_refs() => {
            let r = range_in(rng, 0, n);
            Some(PageRange(
                r.start(),
                r.end().min(r.start() + MAX_HELD_PAGES),
            ))
        }
        OpPages::Required { .. } => Some(range_in(rng, 0, n)),
        OpPages::WholeByDefault => rng.chance(1, 2).then(|| range_in(rng, 0, n)),
    };
    let span = pages.unwrap_or(PageRange(0, n));
    let ioctl = op.issues_ioctl();
    let mut st = Step {
        op,
        pages,
        expect_cpages: None,
        expect_faults: None,
        expect_errno: None,
        expect: vec![],
        iterations: None,
        min_complete: None,
        prot: checks
            .prot
            .then(|| *rng.pick(&[Prot::ReadOnly, Prot::ReadWrite])),
        mirror: None,
        set: None,
        clear: None,
        thp_stats: None,
        smaps: None,
        fail_kernel_alloc: None,
        variant: vec![],
    };
    // An ioctl step either expects the ioctl to fail (an errno and nothing
    // else) or to succeed (counts and states, maybe `expect_errno = 0`).
    let fails = ioctl && (rng.chance(1, 4) || (op.device_writes() && prot == Prot::ReadOnly));
    if fails {
        st.expect_errno = Some(gen_errno(rng));
    } else if ioctl {
        if rng.chance(1, 8) {
            st.expect_errno = Some(0);
        }
        if checks.cpages && rng.chance(1, 2) {
            st.expect_cpages = Some(rng.between(0, span.len()));
        }
        if checks.faults && (rng.chance(1, 3) || checks.faults_required) {
            st.expect_faults = Some(rng.between(0, span.len()));
        }
        if checks.states {
            st.expect = gen_expects(rng, span);
        }
    }
    if checks.page_flags {
        (st.set, st.clear) = gen_valid_flags(rng);
    }
    if checks.thp_stats {
        st.thp_stats = Some(gen_thp_stats(rng, 1));
    }
    if checks.smaps {
        st.smaps = Some(gen_smaps(rng, 1, n));
    }
    if op.may_fail_kernel_alloc() && rng.chance(1, 6) {
        st.fail_kernel_alloc = Some(gen_fail_kernel_alloc(rng, true));
    }
    if checks.iterations {
        st.iterations =
            Some(rng.between(u64::from(*ITERATIONS.start()), u64::from(*ITERATIONS.end())) as u32);
    }
    if checks.min_complete {
        let rounds = u64::from(st.iterations.unwrap_or(1));
        st.min_complete = Some(match rng.below(4) {
            0 => 1,
            1 => rounds,
            _ => rng.between(1, rounds),
        } as u32);
    }
    if !op.checks_itself() {
        for _ in 0..rng.below(3) {
            let v = gen_valid_variant(rng, &st, span, fails);
            st.variant.push(v);
        }
    }
    st
}

/// `set` and `clear` of a check-page-flags step: distinct flags, at least
/// one, split between the two lists; an empty list written or left out.
fn gen_valid_flags(rng: &mut Rng) -> (Option<Vec<PageFlag>>, Option<Vec<PageFlag>>) {
    let mut all = PageFlag::ALL;
    rng.shuffle(&mut all);
    let n = rng.between(1, 4) as usize;
    let cut = rng.between(0, n as u64) as usize;
    let list = |rng: &mut Rng, flags: &[PageFlag]| {
        (!flags.is_empty() || rng.chance(1, 4)).then(|| flags.to_vec())
    };
    (list(rng, &all[..cut]), list(rng, &all[cut..n]))
}

/// `set` or `clear` chosen freely: empty, a flag twice, any flags.
fn gen_free_flags(rng: &mut Rng) -> Vec<PageFlag> {
    (0..rng.below(4))
        .map(|_| *rng.pick(&PageFlag::ALL))
        .collect()
}

fn gen_errno(rng: &mut Rng) -> i32 {
    rng.between(1, 133) as i32
}

/// Valid state expectations inside `span`.
/// Expectations that name every page of `span`: consecutive pieces, one
/// maybe `any`, and maybe one more overlapping the others.
fn gen_expects(rng: &mut Rng, span: PageRange) -> Vec<StateExpect> {
    let mut cuts: Vec<u64> = (0..rng.between(0, 2))
        .map(|_| rng.between(span.start(), span.end()))
        .collect();
    cuts.extend([span.start(), span.end()]);
    cuts.sort();
    cuts.dedup();
    let mut v: Vec<StateExpect> = cuts
        .windows(2)
        .map(|w| StateExpect {
            pages: PageRange(w[0], w[1]),
            state: if rng.chance(1, 8) {
                ANY.to_string()
            } else {
                gen_state(rng, true)
            },
        })
        .collect();
    if rng.chance(1, 4) {
        v.push(StateExpect {
            pages: range_in(rng, span.start(), span.end()),
            state: gen_state(rng, true),
        });
    }
    v
}

/// A variant of step `st`, whose own expectations expect the ioctl to
/// fail (`fails`) or not.
fn gen_valid_variant(rng: &mut Rng, st: &Step, span: PageRange, fails: bool) -> Variant {
    let checks = st.op.rules().checks;
    let ioctl = st.op.issues_ioctl();
    let reports_nothing =
        st.expect_cpages.is_none() && st.expect_faults.is_none() && st.expect.is_empty();
    let when = gen_when(rng, true);
    let mut v = Variant {
        when,
        expect_cpages: None,
        expect_faults: None,
        expect_errno: None,
        expect: None,
        smaps: None,
    };
    if ioctl && reports_nothing && rng.chance(1, 3) {
        // This kernel fails the ioctl (with another errno).
        v.expect_errno = Some(gen_errno(rng));
    } else if ioctl {
        // This kernel succeeds, with its own counts and states.
        if fails || rng.chance(1, 6) {
            v.expect_errno = Some(0);
        }
        v.expect_cpages = (checks.cpages && rng.chance(1, 2)).then(|| rng.between(0, span.len()));
        // Where the step's own read fails, a variant that succeeds states
        // its faults when the op requires them.
        let required = fails && checks.faults_required;
        v.expect_faults =
            (checks.faults && (rng.chance(1, 3) || required)).then(|| rng.between(0, span.len()));
        if checks.states && (fails || rng.chance(1, 2)) {
            v.expect = Some(gen_expects(rng, span));
        }
    }
    v
}

/// A number for a free field: in range, at an edge, or far off (all within
/// what TOML can write, i64).
fn gen_number(rng: &mut Rng, near: u64) -> u64 {
    match rng.below(10) {
        0 => 0,
        1 => i64::MAX as u64,
        2 => rng.below(i64::MAX as u64),
        3 => near + 1,
        4 => near,
        5 => u64::from(u32::MAX) + 1,
        _ => rng.below(near.saturating_add(2)),
    }
}

/// A scenario with every field chosen freely: most break some rule.
fn gen_free(rng: &mut Rng) -> Scenario {
    let mut s = base_scenario(rng);
    if rng.chance(1, 10) {
        s.description = rng.pick(&["", " ", "\t \u{3000}"]).to_string();
    }
    if rng.chance(1, 5) {
        s.timeout_ms = Some(gen_number(rng, 600_000));
    }
    if rng.chance(1, 8) {
        s.kind = Kind::Kselftest;
    }
    if rng.chance(1, 8) {
        s.kselftest = Some(Kselftest {
            binary: rng
                .pick(&["hmm-tests", "", ".", "..", "a/b", "/x", "a\0b", "é"])
                .to_string(),
            args: vec![],
            known_failure: vec![],
            exclude: vec![],
        });
    }
    if rng.chance(1, 8) {
        s.requires = Some(gen_when(rng, false));
    }
    if rng.chance(1, 8) {
        s.memcg_max_kib = Some(*rng.pick(&[0, 1, 255, 256, 1024, 1_048_576, 1_048_577]));
        if rng.chance(1, 2) {
            s.requires.get_or_insert_with(When::default).config =
                Some(rng.pick(&[MEMCG, STACKTRACE_FILTER]).to_string());
        }
    }
    let has_mapping = match s.kind {
        Kind::Steps => !rng.chance(1, 10),
        Kind::Kselftest | Kind::Bench => rng.chance(1, 4),
    };
    let n = if rng.chance(1, 6) {
        gen_number(rng, MAX_PAGES)
    } else {
        gen_pages(rng)
    };
    if has_mapping {
        s.mapping = Some(gen_free_mapping(rng, n));
    }
    let populates = if s.kind == Kind::Kselftest && !rng.chance(1, 4) {
        0
    } else {
        rng.below(3)
    };
    for _ in 0..populates {
        s.populate.push(Populate {
            pages: any_range(rng, n),
            how: if rng.chance(1, 2) {
                Touch::Read
            } else {
                Touch::Write
            },
        });
    }
    let steps = if s.kind == Kind::Kselftest && !rng.chance(1, 4) {
        0
    } else {
        rng.below(5)
    };
    for _ in 0..steps {
        let st = gen_free_step(rng, n);
        s.step.push(st);
    }
    s
}

fn gen_free_mapping(rng: &mut Rng, n: u64) -> Mapping {
    Mapping {
        kind: *rng.pick(&MAPPING_KINDS),
        pages: n,
        align_pages: match rng.below(6) {
            0 => gen_number(rng, MAX_PAGES),
            _ => 1 << rng.below(20),
        },
        prot: if rng.chance(1, 4) {
            Prot::ReadOnly
        } else {
            Prot::ReadWrite
        },
        hugepage: rng.chance(1, 4),
        userfaultfd: rng.chance(1, 4),
    }
}

/// True with probability `p` in 10.
fn maybe(rng: &mut Rng, p: u64) -> bool {
    rng.chance(p, 10)
}

/// A page range for an `n`-page mapping: mostly inside it, sometimes empty
/// or anywhere.
fn any_range(rng: &mut Rng, n: u64) -> PageRange {
    match rng.below(8) {
        0 => PageRange(gen_number(rng, n), gen_number(rng, n)),
        1 => {
            let a = rng.below(n.max(1) + 1);
            PageRange(a, a)
        }
        _ if n > 0 => range_in(rng, 0, n.min(1 << 20)),
        _ => PageRange(0, 1),
    }
}

/// State expectations, mostly inside the step's pages (`within`).
fn free_expects(rng: &mut Rng, n: u64, within: PageRange) -> Vec<StateExpect> {
    (0..rng.below(3))
        .map(|_| StateExpect {
            pages: if maybe(rng, 6) && within.start() < within.end() {
                let r = within;
                range_in(rng, r.start(), r.end().min(r.start() + (1 << 20)))
            } else {
                any_range(rng, n)
            },
            state: {
                let valid = !rng.chance(1, 5);
                gen_state(rng, valid)
            },
        })
        .collect()
}

/// A step of any op with every field chosen freely, each mostly where the
/// op table says it belongs.
fn gen_free_step(rng: &mut Rng, n: u64) -> Step {
    let op = *rng.pick(&Op::ALL);
    let checks = op.rules().checks;
    let pages = maybe(rng, 4).then(|| any_range(rng, n));
    let small = pages.map_or(n, |r| r.len());
    let within = pages.unwrap_or(PageRange(0, n));
    let mut st = Step {
        op,
        pages,
        expect_cpages: maybe(rng, 3).then(|| gen_number(rng, small)),
        expect_faults: maybe(rng, 2).then(|| gen_number(rng, small)),
        expect_errno: maybe(rng, 2).then(|| rng.between(0, 200) as i32 - 20),
        expect: if checks.states || maybe(rng, 1) {
            free_expects(rng, n, within)
        } else {
            vec![]
        },
        iterations: (checks.iterations || maybe(rng, 1)).then(|| match rng.below(4) {
            0 => 0,
            1 => u32::MAX,
            2 => *ITERATIONS.end() + 1,
            _ => rng.between(1, 100) as u32,
        }),
        min_complete: (checks.min_complete || maybe(rng, 1)).then(|| match rng.below(4) {
            0 => 0,
            1 => u32::MAX,
            2 => rng.between(1, 120) as u32,
            _ => rng.between(1, 10) as u32,
        }),
        prot: (checks.prot != maybe(rng, 1)).then(|| *rng.pick(&[Prot::ReadOnly, Prot::ReadWrite])),
        mirror: None,
        set: (checks.page_flags != maybe(rng, 1)).then(|| gen_free_flags(rng)),
        clear: (checks.page_flags != maybe(rng, 1)).then(|| gen_free_flags(rng)),
        thp_stats: (checks.thp_stats != maybe(rng, 1)).then(|| gen_thp_stats(rng, 0)),
        smaps: (checks.smaps != maybe(rng, 1)).then(|| gen_smaps(rng, 0, n)),
        fail_kernel_alloc: maybe(rng, 1).then(|| {
            let valid = !maybe(rng, 3);
            gen_fail_kernel_alloc(rng, valid)
        }),
        variant: vec![],
    };
    if checks.iterations && maybe(rng, 1) {
        st.iterations = None;
    }
    for _ in 0..(if maybe(rng, 3) { rng.between(1, 2) } else { 0 }) {
        let valid = !rng.chance(1, 4);
        st.variant.push(Variant {
            when: gen_when(rng, valid),
            expect_cpages: maybe(rng, 3).then(|| gen_number(rng, small)),
            expect_faults: maybe(rng, 2).then(|| gen_number(rng, small)),
            expect_errno: maybe(rng, 2).then(|| rng.between(0, 100) as i32),
            expect: maybe(rng, 4).then(|| free_expects(rng, n, within)),
            smaps: maybe(rng, 4).then(|| gen_smaps(rng, 0, n)),
        });
    }
    st
}

/// A valid scenario with up to three changes that may each break a rule:
/// mostly one problem at a time, so that each check is tried on its own.
fn gen_perturbed(rng: &mut Rng) -> Scenario {
    let mut s = gen_valid(rng);
    for _ in 0..rng.between(1, 3) {
        perturb(rng, &mut s);
    }
    s
}

fn perturb(rng: &mut Rng, s: &mut Scenario) {
    let n = s.mapping.as_ref().map_or(16, |m| m.pages);
    let steps = s.step.len() as u64;
    let i = if steps > 0 {
        rng.below(steps) as usize
    } else {
        0
    };
    let choice = rng.below(25);
    match choice {
        0 => s.description = rng.pick(&["", " ", "\t \u{3000}"]).to_string(),
        1 => s.timeout_ms = Some(gen_number(rng, *TIMEOUT_MS.end())),
        2 => {
            s.kind = match s.kind {
                Kind::Steps => Kind::Kselftest,
                Kind::Kselftest | Kind::Bench => Kind::Steps,
            }
        }
        3 => {
            s.kselftest = Some(Kselftest {
                binary: rng
                    .pick(&["hmm-tests", "", ".", "..", "a/b", "/x", "a\0b", "é"])
                    .to_string(),
                args: vec![],
                known_failure: vec![],
                exclude: vec![],
            })
        }
        4..=8 => {
            if let Some(m) = &mut s.mapping {
                perturb_mapping(rng, m, choice);
            }
        }
        9 => s.requires = Some(gen_when(rng, false)),
        10 => s.mapping = None,
        11 => s.step.clear(),
        12 => s.populate.push(Populate {
            pages: near_range(rng, n),
            how: Touch::Write,
        }),
        _ if steps == 0 => {}
        _ => perturb_step(rng, &mut s.step[i], choice, n),
    }
}

/// A page range near an `n`-page mapping: often inside, sometimes empty,
/// past the end or far off.
fn near_range(rng: &mut Rng, n: u64) -> PageRange {
    match rng.below(4) {
        0 => PageRange(gen_number(rng, n), gen_number(rng, n)),
        1 => {
            let a = rng.below(n + 1);
            PageRange(a, a)
        }
        _ => range_in(rng, 0, n.saturating_add(2).min(1 << 20)),
    }
}

fn perturb_mapping(rng: &mut Rng, m: &mut Mapping, choice: u64) {
    let n = m.pages;
    match choice {
        4 => m.pages = gen_number(rng, n),
        5 => m.align_pages = gen_number(rng, MAX_PAGES),
        6 => m.hugepage = true,
        7 => m.userfaultfd = !m.userfaultfd,
        _ => m.prot = Prot::ReadOnly,
    }
}

/// Change one field of a step (`choice` 13 to 24; 19 is `iterations` or
/// `min_complete`, 23 `prot` or the page flags).
fn perturb_step(rng: &mut Rng, st: &mut Step, choice: u64, n: u64) {
    match choice {
        13 | 14 => st.op = *rng.pick(&Op::ALL),
        15 => st.pages = Some(near_range(rng, n)),
        16 => st.expect_cpages = Some(gen_number(rng, n)),
        17 => st.expect_faults = Some(gen_number(rng, n)),
        18 => st.expect_errno = Some(rng.between(0, 40) as i32 - 5),
        19 if rng.chance(1, 2) => {
            st.iterations = match rng.below(4) {
                0 => None,
                1 => Some(0),
                2 => Some(*ITERATIONS.end() + 1),
                _ => Some(rng.between(1, 1000) as u32),
            }
        }
        19 => {
            st.min_complete = match rng.below(4) {
                0 => None,
                1 => Some(0),
                2 => st.iterations.map(|n| n.saturating_add(1)),
                _ => Some(rng.between(1, 1000) as u32),
            }
        }
        20 => {
            let valid = rng.chance(1, 2);
            let when = gen_when(rng, valid);
            st.variant.push(Variant {
                when,
                expect_cpages: rng.chance(1, 2).then(|| gen_number(rng, n)),
                expect_faults: rng.chance(1, 4).then(|| gen_number(rng, n)),
                expect_errno: rng.chance(1, 4).then(|| rng.between(1, 40) as i32),
                expect: rng.chance(1, 3).then(Vec::new),
                smaps: rng.chance(1, 4).then(|| gen_smaps(rng, 0, n)),
            })
        }
        21 => {
            let valid = rng.chance(1, 2);
            let state = gen_state(rng, valid);
            st.expect.push(StateExpect {
                pages: near_range(rng, n),
                state,
            })
        }
        22 => st.expect.clear(),
        23 if rng.chance(1, 2) => {
            st.prot = match rng.below(3) {
                0 => None,
                1 => Some(Prot::ReadOnly),
                _ => Some(Prot::ReadWrite),
            }
        }
        23 => {
            // A flag list dropped, emptied, or given a flag (maybe one the
            // other list or this one has already).
            let list = if rng.chance(1, 2) {
                &mut st.set
            } else {
                &mut st.clear
            };
            match rng.below(3) {
                0 => *list = None,
                1 => *list = Some(vec![]),
                _ => list
                    .get_or_insert_with(Vec::new)
                    .push(*rng.pick(&PageFlag::ALL)),
            }
        }
        _ => {
            let valid = rng.chance(1, 2);
            let state = gen_state(rng, valid);
            let pages = near_range(rng, n);
            match st.variant.first_mut() {
                Some(v) => v.expect = Some(vec![StateExpect { pages, state }]),
                None => st.expect = vec![StateExpect { pages, state }],
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Writing a scenario as TOML by hand, in varying styles

struct Style {
    rng: Rng,
    /// `[[step.expect]]` tables instead of `expect = [...]`.
    expect_tables: bool,
    /// `[[populate]]` tables instead of `populate = [...]`.
    populate_tables: bool,
    /// `[requires]` and `[step.variant.when]` tables instead of inline ones.
    when_tables: bool,
    /// Write fields that have their default value.
    defaults: bool,
    crlf: bool,
    /// How [mapping] and [kselftest] are written.
    tables: TableStyle,
    /// `step = [{ ... }]` instead of `[[step]]` tables.
    inline_steps: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum TableStyle {
    /// `[mapping]` and its keys.
    Header,
    /// `mapping = { kind = ..., pages = ... }`
    Inline,
    /// `mapping.kind = ...` at the top level.
    Dotted,
}

impl Style {
    fn new(seed: u64) -> Style {
        let mut rng = Rng(seed);
        Style {
            expect_tables: rng.chance(1, 2),
            populate_tables: rng.chance(2, 3),
            when_tables: rng.chance(1, 3),
            defaults: rng.chance(1, 3),
            crlf: rng.chance(1, 10),
            tables: *rng.pick(&[TableStyle::Header, TableStyle::Inline, TableStyle::Dotted]),
            inline_steps: rng.chance(1, 5),
            rng,
        }
    }

    fn int(&mut self, v: u64) -> String {
        match self.rng.below(12) {
            0 => format!("0x{v:x}"),
            1 => format!("0o{v:o}"),
            2 => format!("0b{v:b}"),
            3 => format!("+{v}"),
            4 => {
                // 1_000_000
                let digits = v.to_string();
                let mut out = String::new();
                for (i, c) in digits.chars().enumerate() {
                    if i > 0 && (digits.len() - i).is_multiple_of(3) {
                        out.push('_');
                    }
                    out.push(c);
                }
                out
            }
            _ => v.to_string(),
        }
    }

    fn signed(&mut self, v: i64) -> String {
        if v < 0 {
            v.to_string()
        } else {
            self.int(v as u64)
        }
    }

    fn string(&mut self, s: &str) -> String {
        let raw_ok = |allowed: &[char]| {
            !s.contains('\'') && !s.chars().any(|c| c.is_control() && !allowed.contains(&c))
        };
        if raw_ok(&['\t']) && self.rng.chance(1, 4) {
            return format!("'{s}'");
        }
        if raw_ok(&['\t', '\n']) && self.rng.chance(1, 8) {
            // A newline right after the opening quotes is not part of it.
            return format!("'''\n{s}'''");
        }
        if self.rng.chance(1, 8) {
            let mut out = String::from("\"\"\"");
            // A newline right after the opening quotes is dropped: written
            // when the text itself starts with one, so that it stays.
            if s.starts_with('\n') || self.rng.chance(1, 2) {
                out.push('\n');
            }
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' | '\t' => out.push(c),
                    c if c.is_control() => {
                        let _ = write!(out, "\\u{:04X}", c as u32);
                    }
                    c => out.push(c),
                }
            }
            out.push_str("\"\"\"");
            return out;
        }
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' if self.rng.chance(1, 2) => out.push_str("\\t"),
                c if c.is_control() && c != '\t' => {
                    let _ = write!(out, "\\u{:04X}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    fn range(&mut self, r: PageRange) -> String {
        let (a, b) = (self.int(r.start()), self.int(r.end()));
        match self.rng.below(4) {
            0 => format!("[ {a} , {b} ]"),
            1 => format!("[{a}, {b},]"),
            2 => format!("[\n  {a},\n  {b}\n]"),
            _ => format!("[{a}, {b}]"),
        }
    }

    fn when_inline(&mut self, w: &When) -> String {
        let mut parts = vec![];
        if let Some(k) = &w.kernel {
            parts.push(format!("kernel = {}", self.string(k)));
        }
        if let Some(c) = &w.config {
            parts.push(format!("config = {}", self.string(c)));
        }
        if let Some(d) = w.device {
            parts.push(format!("device = {}", self.string(d.as_str())));
        }
        self.rng.shuffle(&mut parts);
        if parts.is_empty() {
            "{}".into()
        } else {
            format!("{{ {} }}", parts.join(", "))
        }
    }

    fn when_lines(&mut self, w: &When) -> Vec<String> {
        let mut lines = vec![];
        if let Some(k) = &w.kernel {
            lines.push(format!("kernel = {}", self.string(k)));
        }
        if let Some(c) = &w.config {
            lines.push(format!("config = {}", self.string(c)));
        }
        if let Some(d) = w.device {
            lines.push(format!("device = {}", self.string(d.as_str())));
        }
        self.rng.shuffle(&mut lines);
        lines
    }

    fn expect_inline(&mut self, e: &StateExpect) -> String {
        let mut parts = vec![
            format!("pages = {}", self.range(e.pages).replace('\n', " ")),
            format!("state = {}", self.string(&e.state)),
        ];
        self.rng.shuffle(&mut parts);
        format!("{{ {} }}", parts.join(", "))
    }

    fn expects_inline(&mut self, list: &[StateExpect]) -> String {
        let items: Vec<String> = list.iter().map(|e| self.expect_inline(e)).collect();
        format!("[{}]", items.join(", "))
    }

    fn expect_table(&mut self, header: &str, e: &StateExpect, out: &mut Vec<String>) {
        out.push(header.to_string());
        let mut lines = vec![
            format!("pages = {}", self.range(e.pages)),
            format!("state = {}", self.string(&e.state)),
        ];
        self.rng.shuffle(&mut lines);
        out.extend(lines);
    }

    /// Blank lines and comments between the lines, and trailing comments.
    fn decorate(&mut self, lines: Vec<String>) -> String {
        let mut out = String::new();
        let nl = if self.crlf { "\r\n" } else { "\n" };
        for line in lines {
            match self.rng.below(16) {
                0 => out.push_str(nl),
                1 => {
                    let c = gen_text(&mut self.rng, 20).replace(['\n', '\r'], " ");
                    let c: String = c
                        .chars()
                        .filter(|c| !c.is_control() || *c == '\t')
                        .collect();
                    let _ = write!(out, "# {c}{nl}");
                }
                _ => {}
            }
            if self.rng.chance(1, 10) {
                let indent = *self.rng.pick(&[" ", "\t", "    "]);
                out.push_str(indent);
            }
            let bare_key = line
                .split_once(" = ")
                .filter(|(k, _)| {
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                })
                .map(|(k, v)| (k.to_string(), v.to_string()));
            match (bare_key, self.rng.below(10)) {
                (Some((k, v)), 0) => {
                    let _ = write!(out, "\"{k}\" = {v}");
                }
                (Some((k, v)), 1) => {
                    let _ = write!(out, "{k}={v}");
                }
                (Some((k, v)), 2) => {
                    let _ = write!(out, "{k}\t=\t{v}");
                }
                _ => out.push_str(&line),
            }
            // A trailing comment, except after a line that is part of a
            // multi-line array.
            if self.rng.chance(1, 12) && !line.ends_with('[') && !line.contains('\n') {
                out.push_str(" # note");
            }
            out.push_str(nl);
        }
        if self.rng.chance(1, 6) {
            // No newline at the end of the file.
            let cut = out.len() - nl.len();
            out.truncate(cut);
        }
        out
    }
}

fn to_toml(s: &Scenario, seed: u64) -> String {
    let mut st = Style::new(seed);
    let mut out: Vec<String> = vec![];

    // Top-level keys come before any table header.
    let mut top = vec![format!("description = {}", st.string(&s.description))];
    if s.kind == Kind::Kselftest || st.defaults {
        let kind = match s.kind {
            Kind::Steps => "steps",
            Kind::Kselftest => "kselftest",
            Kind::Bench => "bench",
        };
        top.push(format!("kind = {}", st.string(kind)));
    }
    if let Some(t) = s.thp {
        top.push(format!("thp = {}", st.string(t.as_str())));
    }
    if let Some(t) = s.timeout_ms {
        top.push(format!("timeout_ms = {}", st.int(t)));
    }
    if let Some(d) = s.device {
        top.push(format!("device = {}", st.string(d.as_str())));
    }
    if s.pin_cpu || st.defaults {
        top.push(format!("pin_cpu = {}", s.pin_cpu));
    }
    if let Some(kib) = s.memcg_max_kib {
        top.push(format!("memcg_max_kib = {}", st.int(kib)));
    }
    if let (Some(w), false) = (&s.requires, st.when_tables) {
        top.push(format!("requires = {}", st.when_inline(w)));
    }
    if !s.populate.is_empty() && !st.populate_tables {
        let items: Vec<String> = s
            .populate
            .iter()
            .map(|p| {
                let how = match p.how {
                    Touch::Write => "write",
                    Touch::Read => "read",
                };
                format!(
                    "{{ pages = {}, how = {} }}",
                    st.range(p.pages).replace('\n', " "),
                    st.string(how)
                )
            })
            .collect();
        top.push(format!("populate = [{}]", items.join(", ")));
    }
    // The tables, in an order that varies too.
    let mut tables: Vec<Vec<String>> = vec![];
    if let Some(m) = &s.mapping {
        let mut t = vec![
            format!("kind = {}", st.string(mapping_kind_name(m.kind))),
            format!("pages = {}", st.int(m.pages)),
        ];
        if m.align_pages != 1 || st.defaults {
            t.push(format!("align_pages = {}", st.int(m.align_pages)));
        }
        if m.prot == Prot::ReadOnly || st.defaults {
            let prot = match m.prot {
                Prot::ReadWrite => "read-write",
                Prot::ReadOnly => "read-only",
            };
            t.push(format!("prot = {}", st.string(prot)));
        }
        if m.hugepage || st.defaults {
            t.push(format!("hugepage = {}", m.hugepage));
        }
        if m.userfaultfd || st.defaults {
            t.push(format!("userfaultfd = {}", m.userfaultfd));
        }
        st.rng.shuffle(&mut t);
        place_table(&mut st, "mapping", t, &mut top, &mut tables);
    }
    if let (Some(w), true) = (&s.requires, st.when_tables) {
        let mut t = vec!["[requires]".to_string()];
        t.extend(st.when_lines(w));
        tables.push(t);
    }
    if let Some(k) = &s.kselftest {
        let mut t = vec![format!("binary = {}", st.string(&k.binary))];
        if !k.args.is_empty() || st.defaults {
            let args: Vec<String> = k.args.iter().map(|a| st.string(a)).collect();
            t.push(format!("args = [{}]", args.join(", ")));
        }
        st.rng.shuffle(&mut t);
        place_table(&mut st, "kselftest", t, &mut top, &mut tables);
    }
    st.rng.shuffle(&mut tables);
    if st.inline_steps && !s.step.is_empty() {
        let steps: Vec<String> = s.step.iter().map(|x| step_inline(&mut st, x)).collect();
        top.push(format!("step = [{}]", steps.join(", ")));
    }
    // Top-level keys before any table header.
    st.rng.shuffle(&mut top);
    out.extend(top);
    // Arrays of tables keep their order among themselves.
    if st.populate_tables {
        for p in &s.populate {
            let how = match p.how {
                Touch::Write => "write",
                Touch::Read => "read",
            };
            let mut t = vec![
                format!("pages = {}", st.range(p.pages)),
                format!("how = {}", st.string(how)),
            ];
            st.rng.shuffle(&mut t);
            t.insert(0, "[[populate]]".into());
            tables.push(t);
        }
    }
    if !st.inline_steps {
        for step in &s.step {
            tables.push(step_lines(&mut st, step));
        }
    }
    for t in tables {
        out.extend(t);
    }
    st.decorate(out)
}

/// A table's lines (`key = value`, each on one line) in the table style.
fn place_table(
    st: &mut Style,
    name: &str,
    lines: Vec<String>,
    top: &mut Vec<String>,
    tables: &mut Vec<Vec<String>>,
) {
    match st.tables {
        TableStyle::Header => {
            let mut t = vec![format!("[{name}]")];
            t.extend(lines);
            tables.push(t);
        }
        TableStyle::Inline => top.push(format!("{name} = {{ {} }}", lines.join(", "))),
        TableStyle::Dotted => top.extend(lines.iter().map(|l| format!("{name}.{l}"))),
    }
}

/// The `expect_cpages`, `expect_faults` and `expect_errno` keys a step or a
/// variant gives, in that order.
fn count_keys(
    st: &mut Style,
    cpages: Option<u64>,
    faults: Option<u64>,
    errno: Option<i32>,
) -> Vec<String> {
    let mut keys = vec![];
    if let Some(c) = cpages {
        keys.push(format!("expect_cpages = {}", st.int(c)));
    }
    if let Some(f) = faults {
        keys.push(format!("expect_faults = {}", st.int(f)));
    }
    if let Some(e) = errno {
        keys.push(format!("expect_errno = {}", st.signed(i64::from(e))));
    }
    keys
}

/// `set = [...]` and `clear = [...]`, `thp_stats = { ... }` and
/// `smaps = { ... }`, as the step gives them.
fn flag_keys(st: &mut Style, step: &Step) -> Vec<String> {
    let mut keys = vec![];
    for (key, list) in [("set", &step.set), ("clear", &step.clear)] {
        if let Some(list) = list {
            let names: Vec<String> = list.iter().map(|f| st.string(f.as_str())).collect();
            keys.push(format!("{key} = [{}]", names.join(", ")));
        }
    }
    if let Some(m) = &step.thp_stats {
        let pairs: Vec<String> = m
            .iter()
            .map(|(k, v)| format!("{k} = {}", st.signed(*v)))
            .collect();
        keys.push(format!("thp_stats = {{ {} }}", pairs.join(", ")));
    }
    keys.extend(smaps_key(&step.smaps));
    if let Some(f) = &step.fail_kernel_alloc {
        let mut fields = vec![
            format!("allocator = {}", st.string(f.allocator.as_str())),
            format!("under = {}", st.string(&f.under)),
        ];
        if f.spare_reclaiming {
            fields.push("spare_reclaiming = true".to_string());
        }
        if let Some(n) = f.expect_failed {
            fields.push(format!("expect_failed = {}", st.int(n)));
        }
        keys.push(format!("fail_kernel_alloc = {{ {} }}", fields.join(", ")));
    }
    keys
}

/// A step as one inline table.
fn step_inline(st: &mut Style, step: &Step) -> String {
    let mut keys = vec![format!("op = {}", st.string(op_name(step.op)))];
    if let Some(r) = step.pages {
        keys.push(format!("pages = {}", st.range(r).replace('\n', " ")));
    }
    keys.extend(count_keys(
        st,
        step.expect_cpages,
        step.expect_faults,
        step.expect_errno,
    ));
    if let Some(n) = step.iterations {
        keys.push(format!("iterations = {}", st.int(u64::from(n))));
    }
    if let Some(n) = step.min_complete {
        keys.push(format!("min_complete = {}", st.int(u64::from(n))));
    }
    if let Some(p) = step.prot {
        keys.push(format!("prot = {}", st.string(p.as_str())));
    }
    keys.extend(flag_keys(st, step));
    if !step.expect.is_empty() {
        keys.push(format!("expect = {}", st.expects_inline(&step.expect)));
    }
    if !step.variant.is_empty() {
        let variants: Vec<String> = step
            .variant
            .iter()
            .map(|v| {
                let mut keys = vec![format!("when = {}", st.when_inline(&v.when))];
                keys.extend(count_keys(
                    st,
                    v.expect_cpages,
                    v.expect_faults,
                    v.expect_errno,
                ));
                if let Some(list) = &v.expect {
                    keys.push(format!("expect = {}", st.expects_inline(list)));
                }
                keys.extend(smaps_key(&v.smaps));
                st.rng.shuffle(&mut keys);
                format!("{{ {} }}", keys.join(", "))
            })
            .collect();
        keys.push(format!("variant = [{}]", variants.join(", ")));
    }
    st.rng.shuffle(&mut keys);
    format!("{{ {} }}", keys.join(", "))
}

fn step_lines(st: &mut Style, step: &Step) -> Vec<String> {
    let mut keys = vec![format!("op = {}", st.string(op_name(step.op)))];
    if let Some(r) = step.pages {
        keys.push(format!("pages = {}", st.range(r)));
    }
    keys.extend(count_keys(
        st,
        step.expect_cpages,
        step.expect_faults,
        step.expect_errno,
    ));
    if let Some(n) = step.iterations {
        keys.push(format!("iterations = {}", st.int(u64::from(n))));
    }
    if let Some(n) = step.min_complete {
        keys.push(format!("min_complete = {}", st.int(u64::from(n))));
    }
    if let Some(p) = step.prot {
        keys.push(format!("prot = {}", st.string(p.as_str())));
    }
    keys.extend(flag_keys(st, step));
    let expect_tables = st.expect_tables;
    if !step.expect.is_empty() && !expect_tables {
        keys.push(format!("expect = {}", st.expects_inline(&step.expect)));
    }
    st.rng.shuffle(&mut keys);
    let mut out = vec!["[[step]]".to_string()];
    out.extend(keys);
    if expect_tables {
        for e in &step.expect {
            st.expect_table("[[step.expect]]", e, &mut out);
        }
    }
    for v in &step.variant {
        out.push("[[step.variant]]".into());
        let mut keys = vec![];
        let when_table = st.when_tables;
        if !when_table {
            keys.push(format!("when = {}", st.when_inline(&v.when)));
        }
        keys.extend(count_keys(
            st,
            v.expect_cpages,
            v.expect_faults,
            v.expect_errno,
        ));
        let expect_tables = st.expect_tables && v.expect.as_ref().is_some_and(|e| !e.is_empty());
        if let (Some(list), false) = (&v.expect, expect_tables) {
            keys.push(format!("expect = {}", st.expects_inline(list)));
        }
        keys.extend(smaps_key(&v.smaps));
        st.rng.shuffle(&mut keys);
        out.extend(keys);
        if when_table {
            out.push("[step.variant.when]".into());
            out.extend(st.when_lines(&v.when));
        }
        if expect_tables {
            for e in v.expect.as_deref().unwrap_or_default() {
                st.expect_table("[[step.variant.expect]]", e, &mut out);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Structured mutations of real and generated scenario files

fn corpus() -> &'static [String] {
    static C: OnceLock<Vec<String>> = OnceLock::new();
    C.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut paths: Vec<PathBuf> = vec![];
        for dir in [
            root.clone(),
            root.join("findings"),
            root.join("fault"),
            root.join("memcg"),
        ] {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "toml") {
                    paths.push(path);
                }
            }
        }
        paths.sort();
        let texts: Vec<String> = paths
            .iter()
            .map(|p| fs::read_to_string(p).unwrap())
            .collect();
        assert!(texts.len() >= 10, "scenario files not found under {root:?}");
        texts
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(Index),
    Duplicate(Index),
    Swap(Index, Index),
    /// Join a line with the next one.
    Join(Index),
    /// Replace the n-th number on a line.
    Number(Index, Index, String),
    /// Replace the contents of the n-th string on a line.
    Text(Index, Index, String),
    Insert(Index, String),
    /// Copy a line of another file (file, line) before a line.
    Splice(Index, Index, Index),
    /// Replace one character of the text.
    Char(Index, char),
    Truncate(Index),
}

/// Words the format knows: every enum value, state names, conditions.
fn known_words() -> Vec<String> {
    let mut w: Vec<String> = Op::ALL.iter().map(|o| o.as_str().to_string()).collect();
    w.extend(
        MAPPING_KINDS
            .iter()
            .map(|k| mapping_kind_name(*k).to_string()),
    );
    w.extend(THP_MODES.iter().map(|t| t.as_str().to_string()));
    w.extend(STATE_NAMES.iter().map(|(n, _)| n.to_string()));
    w.extend(PageFlag::ALL.iter().map(|f| f.as_str().to_string()));
    w.extend(
        [
            "steps",
            "kselftest",
            "read-write",
            "read-only",
            "read",
            "write",
            "write+pmd",
            "dev-private-local+write",
            "hmm-tests",
            "",
        ]
        .map(String::from),
    );
    w.extend(KERNEL_WORDS.iter().map(|s| s.to_string()));
    w.extend(CONFIG_WORDS.iter().map(|s| s.to_string()));
    w
}

const KEYS: &[&str] = &[
    "description",
    "kind",
    "thp",
    "timeout_ms",
    "device",
    "pin_cpu",
    "memcg_max_kib",
    "mapping",
    "populate",
    "step",
    "kselftest",
    "requires",
    "pages",
    "align_pages",
    "prot",
    "hugepage",
    "userfaultfd",
    "how",
    "op",
    "expect_cpages",
    "expect_faults",
    "expect_errno",
    "expect",
    "iterations",
    "min_complete",
    "set",
    "clear",
    "fail_kernel_alloc",
    "allocator",
    "under",
    "spare_reclaiming",
    "expect_failed",
    "variant",
    "when",
    "kernel",
    "config",
    "state",
    "binary",
    "args",
    "pagez",
    "\"quoted key\"",
    "a.b",
];

const HEADERS: &[&str] = &[
    "[[step]]",
    "[[step.variant]]",
    "[[step.expect]]",
    "[[step.variant.expect]]",
    "[step.variant.when]",
    "[[populate]]",
    "[mapping]",
    "[[mapping]]",
    "[requires]",
    "[kselftest]",
    "[step]",
    "[step.when]",
    "[]",
    "[[",
];

/// A number as written in TOML, or something in its place.
fn number_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop_oneof![
            Just("0"),
            Just("1"),
            Just("-1"),
            Just("2"),
            Just("511"),
            Just("512"),
            Just("513"),
            Just("262144"),
            Just("262145"),
            Just("600000"),
            Just("600001"),
            Just("100000"),
            Just("2147483647"),
            Just("2147483648"),
            Just("4294967295"),
            Just("4294967296"),
            Just("9223372036854775807"),
            Just("-9223372036854775808"),
            Just("9223372036854775808"),
            Just("18446744073709551615"),
            Just("18446744073709551616"),
            Just("99999999999999999999999999"),
            Just("0x200"),
            Just("0o777"),
            Just("0b101"),
            Just("1_000"),
            Just("+7"),
            Just("-0"),
            Just("00"),
            Just("1e3"),
            Just("3.5"),
            Just("inf"),
            Just("-nan"),
            Just("\"16\""),
            Just("true"),
            Just("[]"),
            Just("{}"),
            Just("1979-05-27"),
        ]
        .prop_map(String::from),
        2 => (0u64..1100).prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
    ]
}

/// The contents of a string: another valid word, or random text (escaped
/// or raw, which may break the syntax).
fn string_contents() -> impl Strategy<Value = String> {
    let words = known_words();
    prop_oneof![
        3 => proptest::sample::select(words),
        1 => any::<String>().prop_map(|s| escape(&s)),
        1 => "[ -~]{0,12}",
        1 => any::<String>(),
    ]
}

fn escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A line a scenario file could contain.
fn known_line() -> impl Strategy<Value = String> {
    let word = proptest::sample::select(known_words());
    prop_oneof![
        3 => (number_literal(), number_literal()).prop_map(|(a, b)| format!("pages = [{a}, {b}]")),
        1 => (0u64..600, 0u64..600).prop_map(|(a, b)| format!("pages = [{a}, {b}]")),
        1 => number_literal().prop_map(|n| format!("pages = [{n}]")),
        1 => number_literal().prop_map(|n| format!("align_pages = {n}")),
        2 => proptest::sample::select(Op::ALL.to_vec()).prop_map(|o| format!("op = \"{}\"", o.as_str())),
        3 => proptest::sample::select(HEADERS).prop_map(String::from),
        1 => proptest::sample::select(KERNEL_WORDS).prop_map(|k| format!("when = {{ kernel = \"{k}\" }}")),
        1 => proptest::sample::select(CONFIG_WORDS).prop_map(|c| format!("when = {{ config = {c:?} }}")),
        1 => Just("when = {}".to_string()),
        1 => proptest::sample::select(KERNEL_WORDS).prop_map(|k| format!("kernel = \"{k}\"")),
        1 => (number_literal(), number_literal(), word.clone())
            .prop_map(|(a, b, s)| format!("expect = [{{ pages = [{a}, {b}], state = \"{s}\" }}]")),
        1 => Just("expect = []".to_string()),
        2 => (
            proptest::sample::select(&[
                "expect_cpages",
                "expect_faults",
                "expect_errno",
                "iterations",
                "min_complete",
                "timeout_ms",
                "device",
                "pages",
            ][..]),
            number_literal()
        )
            .prop_map(|(k, n)| format!("{k} = {n}")),
        2 => (
            proptest::sample::select(&[
                "state", "how", "kind", "prot", "thp", "op", "description", "binary"
            ][..]),
            word
        )
            .prop_map(|(k, w)| format!("{k} = \"{w}\"")),
        1 => proptest::sample::select(&["hugepage = true", "userfaultfd = true", "args = [\"-v\"]", "populate = []", "step = []", "step = 1", "mapping = {}"][..]).prop_map(String::from),
        1 => (proptest::sample::select(KEYS), number_literal()).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => any::<String>(),
        1 => "[ -~]{0,30}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => any::<Index>().prop_map(Mutation::Delete),
        2 => any::<Index>().prop_map(Mutation::Duplicate),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        1 => any::<Index>().prop_map(Mutation::Join),
        4 => (any::<Index>(), any::<Index>(), number_literal())
            .prop_map(|(l, n, v)| Mutation::Number(l, n, v)),
        4 => (any::<Index>(), any::<Index>(), string_contents())
            .prop_map(|(l, n, v)| Mutation::Text(l, n, v)),
        4 => (any::<Index>(), known_line()).prop_map(|(i, l)| Mutation::Insert(i, l)),
        1 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(f, l, at)| Mutation::Splice(f, l, at)),
        1 => (any::<Index>(), any::<char>()).prop_map(|(i, c)| Mutation::Char(i, c)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// Byte ranges of the integers on a line (a run of digits, with a `-` or
/// `+` before it; not inside a word such as `CONFIG_X2`).
fn numbers(line: &str) -> Vec<(usize, usize)> {
    let b = line.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        let word_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if b[i].is_ascii_digit() && !word_before {
            let start = if i > 0 && (b[i - 1] == b'-' || b[i - 1] == b'+') {
                i - 1
            } else {
                i
            };
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((start, i));
        } else {
            i += 1;
        }
    }
    out
}

/// Byte ranges of the contents of the basic strings on a line.
fn strings(line: &str) -> Vec<(usize, usize)> {
    let b = line.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' {
            let start = i + 1;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            if i <= b.len() {
                out.push((start, i.min(b.len())));
            }
        }
        i += 1;
    }
    out
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.split('\n').map(String::from).collect();
    for m in mutations {
        let n = lines.len();
        match m {
            Mutation::Delete(i) if n > 0 => {
                lines.remove(i.index(n));
            }
            Mutation::Duplicate(i) if n > 0 => {
                let at = i.index(n);
                lines.insert(at, lines[at].clone());
            }
            Mutation::Swap(a, b) if n > 0 => lines.swap(a.index(n), b.index(n)),
            Mutation::Join(i) if n > 1 => {
                let at = i.index(n - 1);
                let next = lines.remove(at + 1);
                lines[at].push_str(&next);
            }
            Mutation::Number(l, k, v) if n > 0 => {
                let line = &mut lines[l.index(n)];
                let found = numbers(line);
                if !found.is_empty() {
                    let (a, b) = found[k.index(found.len())];
                    line.replace_range(a..b, v);
                }
            }
            Mutation::Text(l, k, v) if n > 0 => {
                let line = &mut lines[l.index(n)];
                let found = strings(line);
                if !found.is_empty() {
                    let (a, b) = found[k.index(found.len())];
                    if line.is_char_boundary(a) && line.is_char_boundary(b) {
                        line.replace_range(a..b, v);
                    }
                }
            }
            Mutation::Insert(i, l) => {
                let at = i.index(n + 1);
                lines.insert(at, l.clone());
            }
            Mutation::Splice(f, l, at) => {
                let files = corpus();
                let other: Vec<&str> = files[f.index(files.len())].split('\n').collect();
                let line = other[l.index(other.len())].to_string();
                lines.insert(at.index(n + 1), line);
            }
            Mutation::Char(i, c) => {
                let mut t = lines.join("\n");
                let chars: Vec<(usize, char)> = t.char_indices().collect();
                if !chars.is_empty() {
                    let (pos, old) = chars[i.index(chars.len())];
                    t.replace_range(pos..pos + old.len_utf8(), &c.to_string());
                }
                lines = t.split('\n').map(String::from).collect();
            }
            Mutation::Truncate(i) => {
                let mut t = lines.join("\n");
                let mut at = i.index(t.len() + 1);
                while !t.is_char_boundary(at) {
                    at -= 1;
                }
                t.truncate(at);
                lines = t.split('\n').map(String::from).collect();
            }
            _ => {}
        }
    }
    lines.join("\n")
}

/// The text to mutate: a real scenario file, or a generated valid one.
fn base_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<Index>().prop_map(|i| corpus()[i.index(corpus().len())].clone()),
        1 => (any::<u64>(), any::<u64>()).prop_map(|(a, b)| to_toml(&gen_valid(&mut Rng(a)), b)),
    ]
}

/// TOML-ish token soup.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        proptest::sample::select(KEYS).prop_map(String::from),
        proptest::sample::select(HEADERS).prop_map(String::from),
        proptest::sample::select(
            &[
                " = ", "=", "\n", "\r\n", "[", "]", "{", "}", ",", ".", "\"", "'", "\"\"\"", "'''",
                "#", " ", "\t", "\\", "\u{feff}", "\r",
            ][..]
        )
        .prop_map(String::from),
        number_literal(),
        proptest::sample::select(known_words()).prop_map(|w| format!("\"{w}\"")),
    ];
    proptest::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

// ---------------------------------------------------------------------------
// The property tests

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_strings(text in any::<String>()) {
        let _ = check_text(&text)?;
    }

    #[test]
    fn printable_ascii(text in "[ -~\n\t]{0,300}") {
        let _ = check_text(&text)?;
    }

    #[test]
    fn toml_token_soup(text in token_soup()) {
        let _ = check_text(&text)?;
    }

    #[test]
    fn mutated_scenario_files(
        base in base_text(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let text = apply(&base, &mutations);
        let _ = check_text(&text)?;
    }

    #[test]
    fn generated_valid_scenarios_load_as_generated(seed in any::<u64>(), style in any::<u64>()) {
        let s = gen_valid(&mut Rng(seed));
        prop_assert!(rules_allow(&s), "the generator made an invalid scenario: {:?}", s);
        let text = to_toml(&s, style);
        match check_text(&text)? {
            Ok(loaded) => prop_assert_eq!(loaded, s, "as written:\n{}", text),
            Err(ds) => {
                return Err(TestCaseError::fail(format!(
                    "a valid scenario was refused:\n{text}\n{}",
                    Diagnostics(ds)
                )));
            }
        }
    }

    #[test]
    fn generated_scenarios_follow_the_rules(seed in any::<u64>(), style in any::<u64>()) {
        let mut rng = Rng(seed);
        let s = if rng.chance(1, 4) {
            gen_free(&mut rng)
        } else {
            gen_perturbed(&mut rng)
        };
        let text = to_toml(&s, style);
        let expected = rules_allow(&s);
        match check_text(&text)? {
            Ok(loaded) => {
                prop_assert!(expected, "loaded though it breaks a rule:\n{}", text);
                prop_assert_eq!(loaded, s, "as written:\n{}", text);
            }
            Err(ds) => prop_assert!(
                !expected,
                "refused though it follows every rule:\n{}\n{}",
                text,
                Diagnostics(ds)
            ),
        }
    }
}

proptest! {
    // Each case writes and reads a file.
    #![proptest_config(config(64))]

    #[test]
    fn arbitrary_bytes_through_load_files(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        // Cargo's scratch directory for integration tests: one file,
        // rewritten for every case.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz_scenarios");
        fs::create_dir_all(&dir).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.join("fuzz.toml");
        fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        match load_files(std::slice::from_ref(&path)) {
            Ok(loaded) => {
                prop_assert_eq!(loaded.len(), 1);
                let text = std::str::from_utf8(&bytes).expect("loaded, so UTF-8");
                check_loaded(&loaded[0].scenario, text)?;
            }
            Err(Diagnostics(ds)) => match std::str::from_utf8(&bytes) {
                Ok(text) => check_diagnostics(text, &ds, &path)?,
                Err(_) => {
                    prop_assert_eq!(ds.len(), 1);
                    prop_assert_eq!(ds[0].line, 0);
                    let _ = ds[0].to_string();
                }
            },
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn conditions_and_kernel_facts(text in any::<String>(), release in "[0-9.a-z+-]{0,16}") {
        let _ = parse_kernel(&text);
        let _ = parse_config(&text);
        let facts = KernelFacts::from_dotconfig(&release, &text);
        let w = When { kernel: Some(text.clone()), config: Some(text.clone()), device: None };
        let _ = hmmlab_harness::scenario::when::unmet(&w, &facts);
        for k in kernels() {
            let _ = hmmlab_harness::scenario::when::unmet(&w, k);
        }
    }

    #[test]
    fn line_col_stays_in_the_text(text in any::<String>(), offset in any::<Index>()) {
        let at = offset.index(text.len() + 2);
        let (line, col) = line_col(&text, at);
        prop_assert!(line >= 1 && line <= text.split('\n').count());
        prop_assert!(col >= 1);
    }
}

// ---------------------------------------------------------------------------
// Checks of the test's own machinery

#[test]
fn every_real_scenario_loads_and_round_trips() {
    for text in corpus() {
        match check_text(text).unwrap() {
            Ok(s) => assert!(rules_allow(&s), "the rules here refuse:\n{text}"),
            Err(ds) => panic!("{}", Diagnostics(ds)),
        }
    }
}

#[test]
fn the_generators_emit_every_op() {
    let mut valid = std::collections::HashSet::new();
    let mut free = std::collections::HashSet::new();
    let mut perturbed = std::collections::HashSet::new();
    for seed in 0..3000 {
        let s = gen_valid(&mut Rng(seed));
        assert!(rules_allow(&s), "{s:?}");
        valid.extend(s.step.iter().map(|st| st.op));
        free.extend(gen_free(&mut Rng(seed)).step.iter().map(|st| st.op));
        perturbed.extend(gen_perturbed(&mut Rng(seed)).step.iter().map(|st| st.op));
    }
    for op in Op::ALL {
        assert!(valid.contains(&op), "gen_valid never made {}", op.as_str());
        assert!(free.contains(&op), "gen_free never made {}", op.as_str());
        assert!(
            perturbed.contains(&op),
            "gen_perturbed never made {}",
            op.as_str()
        );
    }
}

#[test]
fn generated_page_flags_break_each_rule_and_keep_them() {
    // Valid check-page-flags steps with flags in both lists, and free or
    // perturbed ones with none, with a flag twice or in both lists, and
    // flags on another op: each is made.
    let mut valid_both = 0;
    let (mut none, mut twice, mut other_op) = (0, 0, 0);
    for seed in 0..3000 {
        for st in gen_valid(&mut Rng(seed)).step {
            let given = |l: &Option<Vec<PageFlag>>| l.as_ref().is_some_and(|l| !l.is_empty());
            if st.op == Op::CheckPageFlags && given(&st.set) && given(&st.clear) {
                valid_both += 1;
            }
        }
        let mut rng = Rng(seed);
        let s = if rng.chance(1, 2) {
            gen_free(&mut rng)
        } else {
            gen_perturbed(&mut rng)
        };
        for st in &s.step {
            let all: Vec<PageFlag> = st.set.iter().chain(&st.clear).flatten().copied().collect();
            if st.op != Op::CheckPageFlags {
                other_op += usize::from(st.set.is_some() || st.clear.is_some());
            } else if all.is_empty() {
                none += 1;
            } else if !flags_allowed(st) {
                twice += 1;
            }
        }
    }
    assert!(valid_both > 20, "{valid_both}");
    assert!(
        none > 5 && twice > 5 && other_op > 5,
        "{none} {twice} {other_op}"
    );
}

#[test]
fn generated_memory_limits_are_checked() {
    // Valid scenarios under a memory limit, and free ones whose limit is
    // out of range or whose [requires] does not ask for the controller.
    let limited = (0..2000)
        .filter(|&seed| gen_valid(&mut Rng(seed)).memcg_max_kib.is_some())
        .count();
    assert!(limited > 20, "{limited}");
    let broken = (0..3000)
        .map(|seed| gen_free(&mut Rng(seed)))
        .filter(|s| s.memcg_max_kib.is_some() && !memcg_allowed(s))
        .count();
    assert!(broken > 20, "{broken}");
}

#[test]
fn generated_allocation_failures_are_checked() {
    // Valid steps whose allocations fail, and free ones on the wrong op or
    // naming no function: both are made.
    let failing = |s: &Scenario| s.step.iter().any(|st| st.fail_kernel_alloc.is_some());
    let valid = (0..2000)
        .filter(|&seed| failing(&gen_valid(&mut Rng(seed))))
        .count();
    assert!(valid > 20, "{valid}");
    let broken = (0..3000)
        .map(|seed| gen_free(&mut Rng(seed)))
        .filter(|s| {
            s.step.iter().any(|st| {
                st.fail_kernel_alloc
                    .as_ref()
                    .is_some_and(|f| !kallsyms_name(&f.under) || !st.op.may_fail_kernel_alloc())
            })
        })
        .count();
    assert!(broken > 20, "{broken}");
}

#[test]
fn generated_steps_after_munmap_and_mprotect_are_checked() {
    // Valid scenarios where a step follows a munmap or an mprotect of some
    // of its pages, and free ones that break the rule: both are made.
    let changes = |s: &Scenario| {
        s.step.iter().enumerate().any(|(i, st)| {
            let Some(a) = st.pages.filter(|_| st.op.needs_pages()) else {
                return false;
            };
            s.step[i + 1..].iter().any(|later| {
                let b = later.pages.unwrap_or(PageRange(0, u64::MAX));
                a.start() < b.end() && b.start() < a.end()
            })
        })
    };
    let valid = (0..3000)
        .filter(|&seed| changes(&gen_valid(&mut Rng(seed))))
        .count();
    assert!(valid > 20, "{valid}");
    let refused = (0..6000)
        .map(|seed| gen_free(&mut Rng(seed)))
        .filter(|s| s.mapping.is_some() && changes(s))
        .filter(|s| {
            let mut access = AccessMap::new(s.mapping.as_ref().unwrap());
            !s.step.iter().all(|st| {
                let ok = reaches_as_allowed(&access, st);
                change_access(&mut access, st);
                ok
            })
        })
        .count();
    assert!(refused > 5, "{refused}");
}

#[test]
fn mutations_do_what_they_say() {
    let text = "a = 1\nb = \"x\"\nc = [2, -3]";
    assert_eq!(numbers("c = [2, -3]"), [(5, 6), (8, 10)]);
    assert_eq!(numbers("CONFIG_X2 = 4"), [(12, 13)]);
    assert_eq!(strings("b = \"x\\\"y\", \"\""), [(5, 9), (13, 13)]);
    assert_eq!(apply(text, &[]), text);
}

#[test]
fn the_writer_round_trips_valid_scenarios() {
    for seed in 0..200 {
        let s = gen_valid(&mut Rng(seed));
        assert!(rules_allow(&s), "{s:?}");
        let text = to_toml(&s, seed);
        match parse_str(Path::new(FILE), &text) {
            Ok(loaded) => assert_eq!(loaded, s, "{text}"),
            Err(ds) => panic!("{text}\n{}", Diagnostics(ds)),
        }
    }
}

/// A `thp_stats` table of at least `least` counters, each with a change of
/// either sign.
fn gen_thp_stats(rng: &mut Rng, least: u64) -> BTreeMap<ThpStat, i64> {
    let n = rng.between(least, ThpStat::ALL.len() as u64);
    (0..n)
        .map(|_| (*rng.pick(&ThpStat::ALL), rng.between(0, 4) as i64 - 1))
        .collect()
}

/// A `smaps` table of at least `least` fields, each a number of pages up
/// to the mapping's `n`.
fn gen_smaps(rng: &mut Rng, least: u64, n: u64) -> BTreeMap<SmapsField, u64> {
    let k = rng.between(least, SmapsField::ALL.len() as u64);
    (0..k)
        .map(|_| (*rng.pick(&SmapsField::ALL), rng.between(0, n)))
        .collect()
}

/// A variant of a check-smaps step: `smaps` with a field, and nothing else
/// (the op takes no other expectation).
fn smaps_variant_ok(v: &Variant) -> bool {
    v.smaps.as_ref().is_some_and(|m| !m.is_empty())
        && v.expect_cpages.is_none()
        && v.expect_faults.is_none()
        && v.expect_errno.is_none()
        && v.expect.is_none()
}

/// `smaps = { ... }`, in a step or a variant, when given.
fn smaps_key(smaps: &Option<BTreeMap<SmapsField, u64>>) -> Option<String> {
    let m = smaps.as_ref()?;
    let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    Some(format!("smaps = {{ {} }}", pairs.join(", ")))
}
