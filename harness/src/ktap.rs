//! Parsing the TAP 13 / KTAP output of kernel selftests into per-case results.
//!
//! The kselftest harness prints `TAP version 13`, a plan `1..N`, then for each
//! case a `#  RUN  name ...` line, any diagnostics, and a result line. The
//! rules, for what the format leaves open:
//!
//! * Only top-level lines count. Indented lines (nested KTAP subtests, each
//!   summarised by a top-level result line of its own) are ignored.
//! * `TAP version` / `KTAP version` headers are ignored. The first plan
//!   `1..N` wins, wherever it appears; `Bail out!` ends the stream.
//! * `ok` is a pass and `not ok` a failure, unless a directive follows a `#`:
//!   - `SKIP` (also `skipped`, any case), after `ok` or `not ok`: a skip,
//!     with the directive's text as the reason;
//!   - `TODO`: after `not ok` a skip ("TODO: …": a known gap, neither a pass
//!     nor a regression); after `ok` a pass;
//!   - `XFAIL` (kselftest: failed as expected): a pass, reason kept;
//!   - `XPASS` (kselftest: passed unexpectedly): a failure, since kselftest
//!     does not count it towards the plan and exits non-zero.
//! * A result line without a number takes the one after the previous case.
//!   A second result for a number already seen is ignored (the first wins).
//! * The reason of a failure is the diagnostics printed between the case's
//!   `RUN` line (or the previous result) and its result: `#` lines without
//!   the `#` and untagged lines (the test's stderr), without the harness's
//!   own `OK`/`FAIL <name>` line, at most [`MAX_REASON_LINES`] of them.
//! * Every case the plan promised but no result line reported is `Crashed`,
//!   named `#<number> (never reported)`, so a truncated log never looks
//!   like a pass. A result cut short on the last line still counts.

use std::collections::BTreeSet;

use hmmlab_proto::Outcome;

/// Diagnostic lines kept in a failure's reason.
pub const MAX_REASON_LINES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub number: u32,
    pub name: String,
    /// `Pass`, `Fail`, `Skip`, or `Crashed` (planned, never reported).
    pub outcome: Outcome,
    /// The skip reason, or the diagnostics printed for a failure.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ktap {
    /// `N` of the plan `1..N`.
    pub plan: Option<u32>,
    /// By number.
    pub cases: Vec<Case>,
    /// The `# Totals: …` line the program printed, without `# Totals: `.
    pub totals: Option<String>,
}

impl Ktap {
    pub fn count(&self, o: Outcome) -> usize {
        self.cases.iter().filter(|c| c.outcome == o).count()
    }
}

/// `N` of the first top-level plan line `1..N` in `lines`, if any.
pub fn find_plan(lines: &[String]) -> Option<u32> {
    lines.iter().find_map(|l| plan_of(l))
}

fn plan_of(line: &str) -> Option<u32> {
    let rest = line.trim_end().strip_prefix("1..")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let tail = &rest[digits..];
    if digits == 0 || !(tail.is_empty() || tail.starts_with([' ', '\t', '#'])) {
        return None;
    }
    rest[..digits].parse().ok()
}

pub fn parse(lines: &[String]) -> Ktap {
    let mut out = Ktap::default();
    let mut seen = BTreeSet::new();
    let mut last = 0u32;
    // Diagnostics since the current case's RUN line (or the last result).
    let mut diag: Vec<String> = Vec::new();
    // The case a `#  RUN` line announced and no result has ended yet.
    let mut running: Option<String> = None;
    let mut bail: Option<String> = None;
    for raw in lines {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim_end();
        if line.starts_with("TAP version") || line.starts_with("KTAP version") {
            continue;
        }
        if let Some(n) = plan_of(line) {
            out.plan.get_or_insert(n);
            continue;
        }
        if let Some(rest) = line.strip_prefix("Bail out!") {
            bail = Some(rest.trim().to_string());
            break;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let text = comment.trim();
            if let Some(t) = text.strip_prefix("Totals:") {
                out.totals = Some(t.trim().to_string());
            } else if let Some(name) = text.strip_prefix("RUN ") {
                diag.clear();
                running = Some(name.trim().trim_end_matches("...").trim_end().to_string());
            } else if !text.is_empty() {
                diag.push(text.to_string());
            }
            continue;
        }
        let Some(r) = result_line(line) else {
            if !line.is_empty() {
                diag.push(line.to_string());
            }
            continue;
        };
        let number = r.number.unwrap_or(last + 1);
        let taken = std::mem::take(&mut diag);
        running = None;
        if !seen.insert(number) {
            continue;
        }
        last = number;
        let name = if r.name.is_empty() {
            format!("#{number}")
        } else {
            r.name.to_string()
        };
        let (outcome, reason) = outcome_of(r.ok, r.directive, || reason_of(&taken, &name));
        out.cases.push(Case {
            number,
            name,
            outcome,
            reason,
        });
    }
    if let Some(plan) = out.plan {
        let end = End {
            last,
            running,
            bail,
            diag,
        };
        out.cases.extend(
            (1..=plan)
                .filter(|n| !seen.contains(n))
                .enumerate()
                .map(|(i, n)| end.never_reported(n, i == 0)),
        );
    }
    out.cases.sort_by_key(|c| c.number);
    out
}

/// A result line's outcome and reason, from `ok`/`not ok` and its
/// directive; `diagnostics` gives the lines printed before it.
fn outcome_of(
    ok: bool,
    directive: Option<(Directive, Option<String>)>,
    diagnostics: impl FnOnce() -> Option<String>,
) -> (Outcome, Option<String>) {
    match (ok, directive) {
        (_, Some((Directive::Skip, text))) => (Outcome::Skip, text.or_else(diagnostics)),
        (false, Some((Directive::Todo, text))) => (Outcome::Skip, labelled("TODO", text)),
        (true, Some((Directive::Todo, text))) => (Outcome::Pass, text),
        (_, Some((Directive::Xfail, text))) => (Outcome::Pass, labelled("expected failure", text)),
        (_, Some((Directive::Xpass, text))) => (Outcome::Fail, labelled("unexpected pass", text)),
        (true, None) => (Outcome::Pass, None),
        (false, None) => (Outcome::Fail, diagnostics()),
    }
}

/// How the output ended: the last case reported, the case a `RUN` line
/// announced and never ended, a bail-out, the diagnostics after the last
/// result.
struct End {
    last: u32,
    running: Option<String>,
    bail: Option<String>,
    diag: Vec<String>,
}

impl End {
    /// A planned case that never reported, with why; `first` is the first
    /// of them (the one a `RUN` line may name).
    fn never_reported(&self, number: u32, first: bool) -> Case {
        let in_flight = self.running.as_ref().filter(|_| first);
        let reason = match (&self.bail, in_flight) {
            (Some(b), _) if b.is_empty() => "the program bailed out".to_string(),
            (Some(b), _) => format!("the program bailed out: {b}"),
            (None, Some(name)) if number == self.last + 1 => {
                let mut r = format!("`{name}` started but never reported a result");
                if let Some(d) = reason_of(&self.diag, name) {
                    r.push('\n');
                    r.push_str(&d);
                }
                r
            }
            (None, _) if self.last == 0 => "never reported: the output has no results".into(),
            (None, _) => format!("never reported: the output ends after case {}", self.last),
        };
        Case {
            number,
            name: format!("#{number} (never reported)"),
            outcome: Outcome::Crashed,
            reason: Some(reason),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    Skip,
    Todo,
    Xfail,
    Xpass,
}

struct ResultLine<'a> {
    ok: bool,
    number: Option<u32>,
    name: &'a str,
    /// The directive and its text, if non-empty.
    directive: Option<(Directive, Option<String>)>,
}

/// `ok 3 name`, `not ok 4 - name # SKIP why`, `ok`, …
fn result_line(line: &str) -> Option<ResultLine<'_>> {
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok") {
        (false, r)
    } else {
        (true, line.strip_prefix("ok")?)
    };
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = rest.trim_start();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let number = rest[..digits].parse().ok();
    let rest = rest[digits..].trim_start();
    let (desc, directive) = split_directive(rest);
    let name = desc.trim();
    let name = name.strip_prefix("- ").unwrap_or(name).trim();
    Some(ResultLine {
        ok,
        number,
        name,
        directive,
    })
}

/// Split `name # DIRECTIVE text` at the first `#` that starts a directive.
fn split_directive(text: &str) -> (&str, Option<(Directive, Option<String>)>) {
    for (i, _) in text.match_indices('#') {
        let after = text[i + 1..].trim_start();
        let word_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let word = after[..word_len].to_ascii_uppercase();
        let directive = match word.as_str() {
            w if w.starts_with("SKIP") => Directive::Skip,
            "TODO" => Directive::Todo,
            "XFAIL" => Directive::Xfail,
            "XPASS" => Directive::Xpass,
            _ => continue,
        };
        let reason = after[word_len..].trim_start_matches(':').trim().to_string();
        let reason = (!reason.is_empty()).then_some(reason);
        return (&text[..i], Some((directive, reason)));
    }
    (text, None)
}

/// `label: text`, or the label alone.
fn labelled(label: &str, text: Option<String>) -> Option<String> {
    Some(match text {
        Some(t) => format!("{label}: {t}"),
        None => label.to_string(),
    })
}

/// The diagnostics of case `name`, capped, without the harness's own
/// closing `OK`/`FAIL <name>` line.
fn reason_of(diag: &[String], name: &str) -> Option<String> {
    let kept: Vec<&str> = diag
        .iter()
        .map(String::as_str)
        .filter(|l| {
            let mut words = l.split_whitespace();
            let closing = matches!(words.next(), Some("OK" | "FAIL" | "XFAIL" | "SKIP"))
                && words.next() == Some(name)
                && words.next().is_none();
            !closing
        })
        .collect();
    if kept.is_empty() {
        return None;
    }
    let mut out = kept
        .iter()
        .take(MAX_REASON_LINES)
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    if kept.len() > MAX_REASON_LINES {
        let more = kept.len() - MAX_REASON_LINES;
        out.push_str(&format!("\n… {more} more line(s)"));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> Vec<String> {
        let path = format!("{}/tests/data/ktap/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .lines()
            .map(String::from)
            .collect()
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    fn counts(k: &Ktap) -> [usize; 4] {
        [
            k.count(Outcome::Pass),
            k.count(Outcome::Fail),
            k.count(Outcome::Skip),
            k.count(Outcome::Crashed),
        ]
    }

    #[test]
    fn clean_madvise_run() {
        let k = parse(&data("hmm-tests-6.12-madvise.txt"));
        assert_eq!(k.plan, Some(58));
        assert_eq!(k.cases.len(), 58);
        assert_eq!(counts(&k), [26, 0, 32, 0]);
        assert_eq!(
            k.totals.as_deref(),
            Some("pass:26 fail:0 xfail:0 xpass:0 skip:32 error:0")
        );
        let numbers: Vec<u32> = k.cases.iter().map(|c| c.number).collect();
        assert_eq!(numbers, (1..=58).collect::<Vec<_>>());
        let c = &k.cases[8];
        assert_eq!(
            (c.name.as_str(), c.outcome, c.reason.as_deref()),
            (
                "hmm.hmm_device_private.anon_write_hugetlbfs",
                Outcome::Skip,
                Some("Huge page size could not be determined")
            )
        );
        assert_eq!(
            k.cases[26].reason.as_deref(),
            Some("DEVICE_COHERENT not available")
        );
        assert!(k
            .cases
            .iter()
            .filter(|c| c.outcome == Outcome::Pass)
            .all(|c| c.reason.is_none()));
    }

    #[test]
    fn always_run_with_failures() {
        let k = parse(&data("hmm-tests-6.12-always.txt"));
        assert_eq!(counts(&k), [23, 3, 32, 0]);
        let failed: Vec<&str> = k
            .cases
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "hmm.hmm_device_private.exclusive",
                "hmm.hmm_device_private.exclusive_mprotect",
                "hmm.hmm_device_private.exclusive_cow"
            ]
        );
        let exclusive = &k.cases[21];
        let reason = exclusive.reason.as_deref().unwrap();
        assert_eq!(
            reason,
            "/root/.cache/hmmlab/src/4ef3ae62fc1ffae5/linux-source-6.12/tools/testing/selftests/mm/hmm-tests.c:1817:exclusive:Expected ret (-16) == 0 (0)\n\
             exclusive: Test terminated by assertion"
        );
        assert_eq!(
            k.totals.as_deref(),
            Some("pass:23 fail:3 xfail:0 xpass:0 skip:32 error:0")
        );
    }

    #[test]
    fn truncated_run() {
        let k = parse(&data("hmm-tests-truncated.txt"));
        assert_eq!(k.plan, Some(58));
        assert_eq!(k.cases.len(), 58);
        // Case 18's result line is cut short but complete enough to count.
        assert_eq!(counts(&k), [17, 0, 1, 40]);
        assert_eq!(k.cases[17].name, "hmm.hmm_device_private.anon_read_multip");
        let c = &k.cases[18];
        assert_eq!(
            (c.number, c.name.as_str(), c.outcome),
            (19, "#19 (never reported)", Outcome::Crashed)
        );
        assert_eq!(
            c.reason.as_deref(),
            Some("never reported: the output ends after case 18")
        );
        assert_eq!(k.cases[57].name, "#58 (never reported)");
        assert_eq!(k.totals, None);
    }

    #[test]
    fn the_case_in_flight_is_named_in_its_reason() {
        let k = parse(&lines(
            "TAP version 13\n1..3\n#  RUN  t.a ...\n#  OK  t.a\nok 1 t.a\n#  RUN  t.b ...\n# step 1\nsome stderr\n",
        ));
        assert_eq!(counts(&k), [1, 0, 0, 2]);
        assert_eq!(
            k.cases[1].reason.as_deref(),
            Some("`t.b` started but never reported a result\nstep 1\nsome stderr")
        );
        assert_eq!(
            k.cases[2].reason.as_deref(),
            Some("never reported: the output ends after case 1")
        );
    }

    #[test]
    fn directives() {
        let k = parse(&lines(
            "1..8\nok 1 a # SKIP no device\nnot ok 2 b # skip\nnot ok 3 - c # TODO not yet\nok 4 d # TODO\n\
             ok 5 e # XFAIL known bug\nok 6 f # XPASS\nnot ok 7 g#h # comment only\nok 8 i # Skipped: later",
        ));
        let got: Vec<(&str, Outcome, Option<&str>)> = k
            .cases
            .iter()
            .map(|c| (c.name.as_str(), c.outcome, c.reason.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", Outcome::Skip, Some("no device")),
                ("b", Outcome::Skip, None),
                ("c", Outcome::Skip, Some("TODO: not yet")),
                ("d", Outcome::Pass, None),
                ("e", Outcome::Pass, Some("expected failure: known bug")),
                ("f", Outcome::Fail, Some("unexpected pass")),
                ("g#h # comment only", Outcome::Fail, None),
                ("i", Outcome::Skip, Some("later")),
            ]
        );
    }

    #[test]
    fn ktap_header_nested_subtests_and_odd_lines() {
        let k = parse(&lines(
            "KTAP version 1\n1..2\n    KTAP version 1\n    # Subtest: inner\n    1..2\n    ok 1 x\n    not ok 2 y\n\
             not ok 1 inner\nokay this is not a result\nok\nok 1 duplicate\n",
        ));
        assert_eq!(k.plan, Some(2));
        let got: Vec<(u32, &str, Outcome)> = k
            .cases
            .iter()
            .map(|c| (c.number, c.name.as_str(), c.outcome))
            .collect();
        assert_eq!(got, [(1, "inner", Outcome::Fail), (2, "#2", Outcome::Pass)]);
        assert_eq!(
            k.cases[0].reason.as_deref(),
            None,
            "indented lines are not diagnostics"
        );
    }

    #[test]
    fn bail_out_and_late_plan() {
        let k = parse(&lines("ok 1 a\nBail out! no memory\nok 2 b\n1..3\n"));
        assert_eq!(k.plan, None, "nothing after a bail out is read");
        assert_eq!(counts(&k), [1, 0, 0, 0]);
        let k = parse(&lines("ok 1 a\nBail out!\n"));
        assert_eq!(k.plan, None);
        let k = parse(&lines("1..3\nok 1 a\nBail out! no memory\n"));
        assert_eq!(counts(&k), [1, 0, 0, 2]);
        assert_eq!(
            k.cases[2].reason.as_deref(),
            Some("the program bailed out: no memory")
        );
        let k = parse(&lines("ok 1 a\nok 2 b\n1..2\n"));
        assert_eq!((k.plan, counts(&k)), (Some(2), [2, 0, 0, 0]));
        assert_eq!(parse(&lines("1..0 # SKIP nothing to do\n")).plan, Some(0));
        assert_eq!(find_plan(&lines("x\n  1..3\n1..4x\n1..5\n")), Some(5));
        assert_eq!(find_plan(&lines("no plan here")), None);
    }

    #[test]
    fn failure_reasons_are_capped() {
        let mut text = String::from("1..1\n#  RUN  t ...\n");
        for i in 0..30 {
            text.push_str(&format!("# line {i}\n"));
        }
        text.push_str("#  FAIL  t\nnot ok 1 t\n");
        let k = parse(&lines(&text));
        let reason = k.cases[0].reason.as_deref().unwrap();
        assert_eq!(reason.lines().count(), MAX_REASON_LINES + 1);
        assert!(reason.starts_with("line 0\n"));
        assert!(reason.ends_with("\n… 10 more line(s)"), "{reason}");
    }

    #[test]
    fn crlf_and_empty_input() {
        let k = parse(&lines("1..1\r\nnot ok 1 a\r\n"));
        assert_eq!(k.cases[0].name, "a");
        assert_eq!(parse(&[]), Ktap::default());
    }
}
