//! Mutants no program can tell from the original through the test
//! driver, listed by hand with the reason from the kernel's code
//! (`scenarios/mutants/equivalent.toml`).
//!
//! An entry names a mutant by what it changes, not by its line, so it
//! holds in every kernel whose function has that code: file, function,
//! operator, the original text and (optionally) what replaces it, and the
//! releases it was reasoned for. A listed mutant is still booted: one that
//! survives counts as equivalent (out of the score) with the entry's place
//! named; one that a scenario detects stays detected, and the summary says
//! the entry is wrong.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;
use toml::Spanned;

use super::ops::Operator;
use crate::fail::bad_input;

/// The list, relative to the repository.
pub const LIST: &str = "scenarios/mutants/equivalent.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFile {
    #[serde(default)]
    equivalent: Vec<Spanned<Raw>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    file: String,
    function: String,
    #[serde(default)]
    operator: Option<String>,
    #[serde(default)]
    original: Option<String>,
    /// Every mutant of the function: one that the driver under test never
    /// calls.
    #[serde(default)]
    every: bool,
    #[serde(default)]
    mutated: Option<String>,
    #[serde(default)]
    releases: Vec<String>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    index: Option<usize>,
    reason: String,
}

/// One entry of the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub file: String,
    pub function: String,
    pub operator: String,
    /// Whitespace runs made one space.
    pub original: String,
    pub mutated: Option<String>,
    /// Release prefixes (`7.3`, `6.12`) it holds for; empty: every one.
    pub releases: Vec<String>,
    /// Text that the mutant's source line, with up to [`CONTEXT_LINES`]
    /// lines before it, must end with (whitespace runs made one space):
    /// tells apart mutants of a short original such as `0` or `goto next;`
    /// in one function.
    pub context: Option<String>,
    /// The mutant's number among those of its operator on its line (the
    /// last field of its id): tells apart two mutants that change the same
    /// text on one line, such as the two `||` of `a || b || c`.
    pub index: Option<usize>,
    /// Every mutant of the function (operator and original unused).
    pub every: bool,
    pub reason: String,
    /// `scenarios/mutants/equivalent.toml:12`.
    pub at: String,
}

/// Whitespace runs made one space, ends trimmed: the list's texts and the
/// source's compare this way.
pub fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Read the list at `path` (shown as `shown`); no file is an empty list.
pub fn load(path: &Path, shown: &str) -> Result<Vec<Entry>> {
    let Ok(text) = fs::read_to_string(path) else {
        return Ok(vec![]);
    };
    parse(&text, shown)
}

/// The list at its usual place in the repository.
pub fn load_repo() -> Result<Vec<Entry>> {
    let path: PathBuf = crate::paths::repo_root().join(LIST);
    load(&path, LIST)
}

pub fn parse(text: &str, shown: &str) -> Result<Vec<Entry>> {
    let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    let file: ListFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(s.start)).unwrap_or(1);
        bad_input(format!(
            "{shown}:{line}: {}; each [[equivalent]] has file, function, operator, original, \
             reason, and may have mutated, releases, context and index",
            e.message()
        ))
    })?;
    let known: Vec<&str> = Operator::ALL.iter().map(|o| o.name()).collect();
    let mut out = vec![];
    for sp in file.equivalent {
        let at = format!("{shown}:{}", line_of(sp.span().start));
        let r = sp.into_inner();
        if r.every {
            if r.operator.is_some()
                || r.original.is_some()
                || r.mutated.is_some()
                || r.context.is_some()
                || r.index.is_some()
            {
                return Err(bad_input(format!(
                    "{at}: `every = true` names every mutant of the function: drop operator, \
                     original, mutated, context and index, or drop `every`"
                )));
            }
            if r.reason.trim().len() < 20 {
                return Err(bad_input(format!(
                    "{at}: the reason is missing or too short; say from the kernel's code why \
                     the function is out of test_hmm's reach and which driver calls it"
                )));
            }
            out.push(Entry {
                file: r.file,
                function: r.function,
                operator: String::new(),
                original: String::new(),
                mutated: None,
                releases: r.releases,
                context: None,
                index: None,
                every: true,
                reason: r.reason.trim().to_string(),
                at,
            });
            continue;
        }
        let (Some(operator), Some(original)) = (r.operator, r.original) else {
            return Err(bad_input(format!(
                "{at}: an entry needs operator and original (or `every = true` for every \
                 mutant of a function test_hmm never reaches)"
            )));
        };
        let r = Named {
            operator,
            original,
            mutated: r.mutated,
            context: r.context,
            index: r.index,
            reason: r.reason,
            file: r.file,
            function: r.function,
            releases: r.releases,
        };
        if !known.contains(&r.operator.as_str()) {
            return Err(bad_input(format!(
                "{at}: operator \"{}\" is not one of {}; give the operator of the mutant's id",
                r.operator,
                known.join(", ")
            )));
        }
        // An early return replaces nothing: where it goes is the context.
        let inserts = r.operator == Operator::EarlyReturn.name();
        if squash(&r.original).is_empty() && !inserts {
            return Err(bad_input(format!(
                "{at}: original is empty; give the source text the mutant replaces"
            )));
        }
        if inserts && r.context.as_deref().is_none_or(|c| squash(c).is_empty()) {
            return Err(bad_input(format!(
                "{at}: an early-return entry needs `context`, the text its line (and the lines \
                 before it) end with: the return replaces nothing, so the context says where it \
                 goes"
            )));
        }
        if r.reason.trim().len() < 20 {
            return Err(bad_input(format!(
                "{at}: the reason is missing or too short; say from the kernel's code why no \
                 program can tell this mutant from the original"
            )));
        }
        out.push(Entry {
            file: r.file,
            function: r.function,
            operator: r.operator,
            original: squash(&r.original),
            mutated: r.mutated.as_deref().map(squash),
            releases: r.releases,
            context: r.context.as_deref().map(squash).filter(|l| !l.is_empty()),
            index: r.index,
            every: false,
            reason: r.reason.trim().to_string(),
            at,
        });
    }
    Ok(out)
}

/// An entry that names its mutants by their code.
struct Named {
    file: String,
    function: String,
    operator: String,
    original: String,
    mutated: Option<String>,
    releases: Vec<String>,
    context: Option<String>,
    index: Option<usize>,
    reason: String,
}

/// What an entry is matched against.
pub struct Change<'a> {
    pub file: &'a str,
    pub function: &'a str,
    pub operator: &'a str,
    pub original: &'a str,
    pub mutated: &'a str,
    /// The source line the mutant changes, with the lines before it
    /// ([`context_of`]).
    pub line: &'a str,
    /// Its number among the mutants of its operator on its line.
    pub index: usize,
}

impl Entry {
    pub fn matches(&self, c: &Change, release: &str) -> bool {
        if self.every {
            return self.file == c.file && self.function == c.function && self.holds_for(release);
        }
        self.file == c.file
            && self.function == c.function
            && self.operator == c.operator
            && self.original == squash(c.original)
            && self
                .mutated
                .as_ref()
                .is_none_or(|m| *m == squash(c.mutated))
            && self
                .context
                .as_ref()
                .is_none_or(|l| squash(c.line).ends_with(l.as_str()))
            && self.index.is_none_or(|i| i == c.index)
            && self.holds_for(release)
    }
}

/// Lines before a mutant's own that an entry's `context` may reach back
/// over.
pub const CONTEXT_LINES: usize = 12;

/// Line `line` (1-based) of `text` with the [`CONTEXT_LINES`] lines before
/// it, as an entry's `context` is matched against: the window must end
/// with it.
pub fn context_of(text: &str, line: usize) -> String {
    let first = line.saturating_sub(CONTEXT_LINES + 1);
    text.lines()
        .skip(first)
        .take(line - first)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The release of the kernel tree at `tree` (`7.3.4`), from its Makefile's
/// VERSION, PATCHLEVEL and SUBLEVEL; None when it has none.
pub fn release_of_tree(tree: &Path) -> Option<String> {
    let text = fs::read_to_string(tree.join("Makefile")).ok()?;
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    Some(format!(
        "{}.{}.{}",
        field("VERSION")?,
        field("PATCHLEVEL")?,
        field("SUBLEVEL")?
    ))
}

impl Entry {
    /// Does the entry hold for `release` (its `releases` are prefixes)?
    fn holds_for(&self, release: &str) -> bool {
        self.releases.is_empty()
            || self.releases.iter().any(|r| {
                release == r
                    || release.strip_prefix(r.as_str()).is_some_and(|rest| {
                        rest.starts_with('.') || rest.starts_with('-') || rest.starts_with('+')
                    })
            })
    }
}

/// The first entry of `list` that matches `c` on `release`.
pub fn find<'a>(list: &'a [Entry], c: &Change, release: &str) -> Option<&'a Entry> {
    list.iter().find(|e| e.matches(c, release))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST_TEXT: &str = r#"
# comment
[[equivalent]]
file = "mm/m.c"
function = "f"
operator = "delete-stmt"
original = """
x =
  1;"""
releases = ["7.3"]
reason = "x is written again before any read: line 12 sets it whatever the path"

[[equivalent]]
file = "mm/m.c"
function = "g"
operator = "negate-cond"
original = "a < b"
mutated = "!(a < b)"
reason = "both arms do the same thing on every path of g, so no caller sees it"
"#;

    fn change<'a>(
        function: &'a str,
        operator: &'a str,
        original: &'a str,
        mutated: &'a str,
    ) -> Change<'a> {
        Change {
            file: "mm/m.c",
            function,
            operator,
            original,
            mutated,
            line: original,
            index: 0,
        }
    }

    #[test]
    fn index_tells_apart_two_mutants_of_one_text_on_one_line() {
        let l = parse(
            "[[equivalent]]\nfile = \"mm/m.c\"\nfunction = \"f\"\noperator = \"swap-logical\"\n\
             original = \"||\"\nmutated = \"&&\"\nindex = 0\n\
             reason = \"the first operand is never true where f is called\"\n",
            "l.toml",
        )
        .unwrap();
        let nth = |index| Change {
            index,
            ..change("f", "swap-logical", "||", "&&")
        };
        assert!(l[0].matches(&nth(0), "7.3"));
        assert!(!l[0].matches(&nth(1), "7.3"));
        let every = parse(
            "[[equivalent]]\nfile = \"mm/m.c\"\nfunction = \"f\"\nevery = true\nindex = 1\n\
             reason = \"no driver under test calls f at all\"\n",
            "l.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            every.contains("drop operator, original, mutated, context and index"),
            "{every}"
        );
    }

    #[test]
    fn context_tells_apart_one_constant_on_two_lines() {
        let l = parse(
            "[[equivalent]]\nfile = \"mm/m.c\"\nfunction = \"f\"\noperator = \"complement-const\"\n\
             original = \"0\"\ncontext = \"src[n]  = 0;\"\n\
             reason = \"src[n] is written again on every path before it is read\"\n",
            "l.toml",
        )
        .unwrap();
        let at = |line| Change {
            line,
            ..change("f", "complement-const", "0", "~0")
        };
        assert!(l[0].matches(&at("\t}\n\t\tm->src[n] = 0;"), "7.3"));
        assert!(!l[0].matches(&at("\t\tm->dst[n] = 0;"), "7.3"));
        // The window must end with it: the line after does not match.
        assert!(!l[0].matches(&at("\t\tm->src[n] = 0;\n\t\tn++;"), "7.3"));
    }

    #[test]
    fn an_entry_matches_by_code_and_release_and_says_where_it_is() {
        let l = parse(LIST_TEXT, "list.toml").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].at, "list.toml:3");
        assert_eq!(l[1].at, "list.toml:13");
        assert_eq!(l[0].original, "x = 1;");
        let c = change("f", "delete-stmt", "x  =\n\t1;", "");
        assert!(l[0].matches(&c, "7.3.0"));
        assert!(l[0].matches(&c, "7.3"));
        assert!(!l[0].matches(&c, "7.30.1"), "7.3 is not a prefix of 7.30");
        assert!(!l[0].matches(&c, "6.12.48"));
        assert!(!l[0].matches(&change("g", "delete-stmt", "x = 1;", ""), "7.3"));
        assert!(!l[0].matches(&change("f", "negate-cond", "x = 1;", ""), "7.3"));
        assert!(l[1].matches(&change("g", "negate-cond", "a < b", "!(a < b)"), "6.1"));
        assert!(!l[1].matches(&change("g", "negate-cond", "a < b", "!(a <= b)"), "6.1"));
        assert_eq!(
            find(
                &l,
                &change("g", "negate-cond", "a  <  b", "!(a < b)"),
                "7.3"
            )
            .map(|e| &e.at),
            Some(&"list.toml:13".to_string())
        );
    }

    #[test]
    fn a_tree_says_its_release_and_a_line_its_context() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(release_of_tree(t.path()), None);
        std::fs::write(
            t.path().join("Makefile"),
            "# SPDX\nVERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\nEXTRAVERSION =\n",
        )
        .unwrap();
        assert_eq!(release_of_tree(t.path()).as_deref(), Some("7.3.4"));
        let text: String = (1..=20).map(|n| format!("l{n}\n")).collect();
        let window = context_of(&text, 15);
        assert!(
            window.starts_with("l3\n") && window.ends_with("\nl15"),
            "{window}"
        );
        assert_eq!(context_of(&text, 2), "l1\nl2");
    }

    #[test]
    fn an_every_entry_names_each_mutant_of_its_function_and_nothing_more() {
        let l = parse(
            "[[equivalent]]\nfile = \"mm/m.c\"\nfunction = \"f\"\nevery = true\n\
             releases = [\"7.3\"]\nreason = \"only drm_pagemap calls f; test_hmm never does\"\n",
            "l.toml",
        )
        .unwrap();
        assert!(l[0].matches(&change("f", "negate-cond", "a", "!a"), "7.3.4"));
        assert!(l[0].matches(&change("f", "zero-const", "1", "0"), "7.3.4"));
        assert!(!l[0].matches(&change("g", "zero-const", "1", "0"), "7.3.4"));
        assert!(!l[0].matches(&change("f", "zero-const", "1", "0"), "6.12.1"));
        let e = parse(
            "[[equivalent]]\nfile = \"m.c\"\nfunction = \"f\"\nevery = true\noperator = \"zero-const\"\n\
             reason = \"a reason long enough to pass the check\"\n",
            "l.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("l.toml:1: `every = true`"), "{e}");
        let e = parse(
            "[[equivalent]]\nfile = \"m.c\"\nfunction = \"f\"\n\
             reason = \"a reason long enough to pass the check\"\n",
            "l.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs operator and original"), "{e}");
    }

    #[test]
    fn the_shipped_list_reads() {
        let l = load_repo().unwrap();
        assert!(!l.is_empty());
        for e in &l {
            assert!(e.at.starts_with(LIST), "{}", e.at);
            assert!(e.reason.len() > 100, "{}: say why, from the code", e.at);
        }
    }

    #[test]
    fn a_bad_list_is_refused_with_its_line_and_what_to_do() {
        let e = parse("[[equivalent]]\nfile = \"a\"\nfunction = \"f\"\noperator = \"flip\"\noriginal = \"x\"\nreason = \"a reason long enough to pass\"\n", "l.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("l.toml:1: operator \"flip\""), "{e}");
        assert!(e.contains("negate-cond"), "{e}");
        let e = parse("[[equivalent]]\nfile = \"a\"\nfunction = \"f\"\noperator = \"negate-cond\"\noriginal = \"x\"\nreason = \"short\"\n", "l.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("l.toml:1: the reason is missing"), "{e}");
        let e = parse("[[equivalent]]\nfile = \"a\"\nfunctoin = \"f\"\n", "l.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("l.toml:3: unknown field"), "{e}");
    }
}
