//! Checks on the scenario as a whole: its kind and sections, the
//! kselftest binary, and the mapping.

use hmmlab_proto::bench::{BenchCase, MAX_BENCH_PAGES, THP_PAGES};
use hmmlab_proto::scenario::{Kind, MappingKind, Op, ThpMode};

use super::{Ctx, MAX_PAGES, TIMEOUT_MS};
use crate::scenario::span::key_path;

pub(super) fn check_description(cx: &mut Ctx<'_, '_>) {
    if cx.s.description.trim().is_empty() {
        let hint = "say in one line what behaviour this scenario pins down".to_string();
        cx.at_value(
            key_path!["description"],
            "`description` is empty".into(),
            Some(hint),
        );
    }
}

pub(super) fn check_timeout(cx: &mut Ctx<'_, '_>) {
    if let Some(t) = cx.s.timeout_ms.filter(|t| !TIMEOUT_MS.contains(t)) {
        let hint = format!("use {} to {} ms", TIMEOUT_MS.start(), TIMEOUT_MS.end());
        cx.at_value(
            key_path!["timeout_ms"],
            format!("`timeout_ms = {t}` is out of range"),
            Some(hint),
        );
    }
}

/// `pin_cpu` keeps a steps scenario on one CPU: a selftest or a benchmark
/// has its own threads and placement, and migrate-race's threads race
/// only on CPUs of their own.
pub(super) fn check_pin_cpu(cx: &mut Ctx<'_, '_>) {
    if !cx.s.pin_cpu {
        return;
    }
    if cx.s.kind != Kind::Steps {
        let kind = cx.s.kind.as_str();
        cx.at_value(
            key_path!["pin_cpu"],
            format!("`pin_cpu` in a `kind = \"{kind}\"` scenario"),
            Some("`pin_cpu` is for steps scenarios; remove it".to_string()),
        );
        return;
    }
    let race = cx.s.step.iter().position(|st| st.op == Op::MigrateRace);
    if let Some(i) = race {
        let line = cx.line_of(key_path!["step", i, "op"]);
        cx.at_value(
            key_path!["pin_cpu"],
            format!("`pin_cpu` with `op = \"migrate-race\"` (line {line})"),
            Some(
                "migrate-race's threads race only when they run on different CPUs: \
                 remove `pin_cpu` or race in a scenario of its own"
                    .to_string(),
            ),
        );
    }
}

pub(super) fn check_kind_sections(cx: &mut Ctx<'_, '_>) {
    let s = cx.s;
    match s.kind {
        Kind::Steps => {
            let kind = if cx.doc.root.get_ref().contains_key("kind") {
                ""
            } else {
                " (the default)"
            };
            if s.mapping.is_none() {
                let hint = "add a [mapping] table with `kind` and `pages`".to_string();
                let msg = format!("`kind = \"steps\"`{kind} needs a [mapping] table");
                cx.at_key(key_path!["kind"], msg, Some(hint));
            }
            if s.step.is_empty() {
                let hint = "add at least one [[step]] with an `op`".to_string();
                let msg = format!("`kind = \"steps\"`{kind} needs at least one [[step]]");
                cx.at_key(key_path!["kind"], msg, Some(hint));
            }
            if s.kselftest.is_some() {
                let hint = "set `kind = \"kselftest\"` or remove the [kselftest] table".to_string();
                let msg = "[kselftest] is only used with `kind = \"kselftest\"`".to_string();
                cx.at_value(key_path!["kselftest"], msg, Some(hint));
            }
            no_bench_table(cx, "steps");
        }
        Kind::Kselftest => {
            if s.kselftest.is_none() {
                let hint = "add a [kselftest] table with `binary = \"hmm-tests\"`".to_string();
                let msg = "`kind = \"kselftest\"` needs a [kselftest] table".to_string();
                cx.at_key(key_path!["kind"], msg, Some(hint));
            }
            let hint = || Some("a kselftest scenario only runs the selftest binary".to_string());
            if s.mapping.is_some() {
                let msg = "a `kind = \"kselftest\"` scenario takes no [mapping]".to_string();
                cx.at_value(key_path!["mapping"], msg, hint());
            }
            if !s.populate.is_empty() {
                let msg = "a `kind = \"kselftest\"` scenario takes no [[populate]]".to_string();
                cx.at_value(key_path!["populate", 0], msg, hint());
            }
            if !s.step.is_empty() {
                let msg = "a `kind = \"kselftest\"` scenario takes no [[step]]".to_string();
                cx.at_value(key_path!["step", 0], msg, hint());
            }
            no_bench_table(cx, "kselftest");
            if !s.known_warning.is_empty() {
                let hint = "declare it as `[[kselftest.known_failure]]` with `console = \"...\"`"
                    .to_string();
                let msg = "[[known_warning]] is for `kind = \"steps\"` scenarios".to_string();
                cx.at_value(key_path!["known_warning", 0], msg, Some(hint));
            }
        }
        Kind::Bench => {
            if s.bench.is_none() {
                let hint = "add a [bench] table with `cases` and `sizes`".to_string();
                let msg = "`kind = \"bench\"` needs a [bench] table".to_string();
                cx.at_key(key_path!["kind"], msg, Some(hint));
            }
            let hint =
                || Some("a bench scenario maps its own ranges, one per case and size".to_string());
            for (key, what) in [
                ("mapping", "[mapping]"),
                ("populate", "[[populate]]"),
                ("step", "[[step]]"),
                ("kselftest", "[kselftest]"),
            ] {
                if cx.doc.root.get_ref().contains_key(key) {
                    let msg = format!("a `kind = \"bench\"` scenario takes no {what}");
                    cx.at_value(key_path![key], msg, hint());
                }
            }
        }
    }
}

fn no_bench_table(cx: &mut Ctx<'_, '_>, kind: &str) {
    if cx.s.bench.is_some() {
        let hint = "set `kind = \"bench\"` or remove the [bench] table".to_string();
        let msg = format!("[bench] is only used with `kind = \"bench\"`, not `{kind}`");
        cx.at_value(key_path!["bench"], msg, Some(hint));
    }
}

/// `[bench]`: something to measure, sizes a guest can map, rounds to
/// take a spread from, and a `split` case only where it means something.
pub(super) fn check_bench(cx: &mut Ctx<'_, '_>) {
    let Some(b) = cx.s.bench.clone() else { return };
    if b.cases.is_empty() {
        let hint = format!(
            "name one or more of {}",
            BenchCase::ALL.map(|c| format!("\"{c}\"")).join(", ")
        );
        cx.at_value(
            key_path!["bench", "cases"],
            "`cases` is empty".into(),
            Some(hint),
        );
    }
    for (i, c) in b.cases.iter().enumerate() {
        if b.cases[..i].contains(c) {
            let msg = format!("case \"{c}\" is named twice");
            cx.at_value(
                key_path!["bench", "cases", i],
                msg,
                Some("name it once".into()),
            );
        }
    }
    if b.sizes.is_empty() {
        let hint = "give sizes in pages, e.g. `sizes = [1, 64, 512, 16384]`".to_string();
        cx.at_value(
            key_path!["bench", "sizes"],
            "`sizes` is empty".into(),
            Some(hint),
        );
    }
    for (i, &n) in b.sizes.iter().enumerate() {
        if !(1..=MAX_BENCH_PAGES).contains(&n) {
            let hint = format!("use 1 to {MAX_BENCH_PAGES} pages");
            let msg = format!("size {n} is out of range");
            cx.at_value(key_path!["bench", "sizes", i], msg, Some(hint));
        }
    }
    if !(1..=1000).contains(&b.rounds) {
        let hint = "use 1 to 1000 rounds; 5 or more give a spread worth comparing".to_string();
        let msg = format!("`rounds = {}` is out of range", b.rounds);
        cx.at_value(key_path!["bench", "rounds"], msg, Some(hint));
    }
    if b.warmup > 100 {
        let hint = "use 0 to 100 warm-up rounds".to_string();
        let msg = format!("`warmup = {}` is out of range", b.warmup);
        cx.at_value(key_path!["bench", "warmup"], msg, Some(hint));
    }
    if let Some(i) = b.cases.iter().position(|c| *c == BenchCase::Split) {
        // test_hmm's HMM_DMIRROR_FLAG_FAIL_ALLOC fails one allocation, the
        // first of the next migration (dmirror_migrate_alloc_and_copy()
        // clears it): one THP per ioctl, and only a THP-sized empty range
        // in THP mode `always` is collected as a compound entry to fail.
        if b.sizes.iter().any(|&n| n != THP_PAGES) {
            let hint =
                format!("measure `split` in a scenario of its own with `sizes = [{THP_PAGES}]`");
            let msg = format!(
                "case \"split\" fails the allocation of one THP, so every size must be {THP_PAGES}"
            );
            cx.at_value(key_path!["bench", "cases", i], msg, Some(hint));
        }
        if cx.s.thp != Some(ThpMode::Always) {
            let hint = "set `thp = \"always\"`".to_string();
            let msg = "case \"split\" needs THP mode always: in other modes an empty range \
                       is not collected as one THP"
                .to_string();
            cx.at_value(key_path!["bench", "cases", i], msg, Some(hint));
        }
    }
}

/// Each `[[known_warning]]` names the WARNING's text and says why.
pub(super) fn check_known_warnings(cx: &mut Ctx<'_, '_>) {
    for (i, f) in cx.s.known_warning.iter().enumerate() {
        if f.console.trim().is_empty() {
            let hint =
                "give the text the WARNING prints, e.g. the message of its WARN()".to_string();
            let msg = "a known warning needs its `console` text".to_string();
            cx.at_value(key_path!["known_warning", i, "console"], msg, Some(hint));
        }
        if f.because.trim().is_empty() {
            let hint = "say why the scenario makes the kernel print it, citing the code that \
                        prints it (file and function)"
                .to_string();
            let msg = "a known warning needs a `because`".to_string();
            cx.at_value(key_path!["known_warning", i, "because"], msg, Some(hint));
        }
    }
}

pub(super) fn check_kselftest_binary(cx: &mut Ctx<'_, '_>) {
    let Some(k) = &cx.s.kselftest else { return };
    let b = k.binary.as_str();
    if b.is_empty() || b == "." || b == ".." || b.contains('/') || b.contains('\0') {
        let hint = "name a file in the image's /hmmlab/bin, e.g. `hmm-tests`".to_string();
        let msg = format!("`binary = {b:?}` is not a plain file name");
        cx.at_value(key_path!["kselftest", "binary"], msg, Some(hint));
    }
    for (i, f) in k.known_failure.iter().enumerate() {
        let blank = |t: &Option<String>| t.as_deref().is_none_or(|t| t.trim().is_empty());
        if blank(&f.case) && blank(&f.console) {
            let hint = "give `case = \"fixture.variant.test\"` (the name the selftest reports) \
                        and/or `console = \"text of the WARNING\"`"
                .to_string();
            let msg = "a known failure names neither a `case` nor a `console` text".to_string();
            cx.at_value(key_path!["kselftest", "known_failure", i], msg, Some(hint));
        }
        if f.because.trim().is_empty() {
            let hint = "say why it is not a regression, citing the kernel code \
                        (file and function)"
                .to_string();
            let msg = "a known failure needs a `because`".to_string();
            cx.at_value(
                key_path!["kselftest", "known_failure", i, "because"],
                msg,
                Some(hint),
            );
        }
    }
}

/// Each `[[kselftest.exclude]]` names one variant or one test, as a plain
/// name the harness matches, and says why.
pub(super) fn check_kselftest_exclusions(cx: &mut Ctx<'_, '_>) {
    let Some(k) = &cx.s.kselftest else { return };
    for (i, x) in k.exclude.iter().enumerate() {
        let names: Vec<&str> = [&x.variant, &x.test]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let plain =
            |n: &str| !n.is_empty() && !n.starts_with('-') && !n.chars().any(char::is_whitespace);
        if names.len() != 1 || !plain(names[0]) {
            let hint = "give one of `variant = \"hmm_device_coherent\"` (a fixture variant,                         the selftest's -V) or `test = \"exclusive\"` (a test of every fixture,                         its -T), as the selftest names them"
                .to_string();
            let msg =
                "an exclusion names exactly one `variant` or `test`, a plain name".to_string();
            cx.at_value(key_path!["kselftest", "exclude", i], msg, Some(hint));
        }
        if x.because.trim().is_empty() {
            let hint = "say why these cases cannot run, citing the kernel code \
                        (file and function)"
                .to_string();
            let msg = "an exclusion needs a `because`".to_string();
            cx.at_value(
                key_path!["kselftest", "exclude", i, "because"],
                msg,
                Some(hint),
            );
        }
    }
}

pub(super) fn check_mapping_size(cx: &mut Ctx<'_, '_>) {
    let Some(m) = &cx.s.mapping else { return };
    if m.pages == 0 || m.pages > MAX_PAGES {
        let hint = format!("use 1 to {MAX_PAGES} pages (4 KiB each, at most 1 GiB)");
        let msg = format!("mapping size `pages = {}` is out of range", m.pages);
        cx.at_value(key_path!["mapping", "pages"], msg, Some(hint));
    }
}

pub(super) fn check_alignment(cx: &mut Ctx<'_, '_>) {
    let Some(m) = &cx.s.mapping else { return };
    let a = m.align_pages;
    if a == 0 || !a.is_power_of_two() || a > MAX_PAGES {
        let hint = format!("use a power of two from 1 to {MAX_PAGES}, e.g. 512 for 2 MiB");
        let msg = format!("`align_pages = {a}` is not a valid alignment");
        cx.at_value(key_path!["mapping", "align_pages"], msg, Some(hint));
    }
}

fn mapping_kind_name(kind: MappingKind) -> &'static str {
    match kind {
        MappingKind::AnonPrivate => "anon-private",
        MappingKind::AnonShared => "anon-shared",
        MappingKind::FilePrivate => "file-private",
    }
}

pub(super) fn check_hugepage(cx: &mut Ctx<'_, '_>) {
    let Some(m) = &cx.s.mapping else { return };
    if m.hugepage && m.kind != MappingKind::AnonPrivate {
        let name = mapping_kind_name(m.kind);
        let hint = format!(
            "transparent huge pages only back private anonymous memory in these scenarios; \
             MADV_HUGEPAGE does not give an {name} mapping huge pages here"
        );
        let msg = format!("`hugepage = true` needs `kind = \"anon-private\"`, not `{name}`");
        cx.at_value(key_path!["mapping", "hugepage"], msg, Some(hint));
    }
}

pub(super) fn check_userfaultfd(cx: &mut Ctx<'_, '_>) {
    let Some(m) = &cx.s.mapping else { return };
    if m.userfaultfd && !matches!(m.kind, MappingKind::AnonPrivate | MappingKind::AnonShared) {
        let name = mapping_kind_name(m.kind);
        let hint = "userfaultfd scenarios register anonymous memory only: use \
                    `kind = \"anon-private\"` or `kind = \"anon-shared\"`"
            .to_string();
        let msg = format!("`userfaultfd = true` needs an anonymous mapping, not `{name}`");
        cx.at_value(key_path!["mapping", "userfaultfd"], msg, Some(hint));
    }
}
