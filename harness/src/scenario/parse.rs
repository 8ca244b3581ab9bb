//! One scenario file: TOML syntax, deserialization into
//! [`hmmlab_proto::Scenario`] and semantic checks, every problem located.

use std::ops::Range;
use std::path::Path;

use hmmlab_proto::Scenario;
use serde::Deserialize;

use super::diagnostic::{backticked, did_you_mean, Diagnostic, Problem};
use super::span::{header, Doc, Seg};
use super::validate::validate;

/// More deserialization errors than this in one file are not worth chasing.
const MAX_DESERIALIZE_ERRORS: usize = 32;

/// Parse and check one scenario file's text; `path` is only used in the
/// diagnostics. Every problem found is returned, in file order.
pub fn parse_str(path: &Path, text: &str) -> Result<Scenario, Vec<Diagnostic>> {
    let doc = match Doc::parse(text) {
        Ok(doc) => doc,
        Err(errors) => {
            let mut problems: Vec<Problem> =
                errors.iter().map(|e| syntax_problem(text, e)).collect();
            problems.sort_by_key(|p| (p.span.start, p.span.end));
            return Err(problems
                .into_iter()
                .map(|p| p.into_diagnostic(path, text))
                .collect());
        }
    };
    let (scenario, mut problems, sound) = deserialize(&doc);
    if let (Some(s), true) = (&scenario, sound) {
        problems.extend(validate(s, &doc, text));
    }
    match scenario {
        Some(s) if problems.is_empty() => Ok(s),
        _ => {
            if problems.is_empty() {
                problems.push(Problem::new(
                    0..0,
                    "this file does not describe a scenario",
                    None,
                ));
            }
            problems.sort_by_key(|p| (p.span.start, p.span.end));
            Err(problems
                .into_iter()
                .map(|p| p.into_diagnostic(path, text))
                .collect())
        }
    }
}

fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    let span = e.span().unwrap_or(0..0);
    if e.message() == "duplicate key" {
        let key = text.get(span.clone()).unwrap_or("").trim();
        return Problem::new(
            span,
            format!("duplicate key `{key}`"),
            Some("each key may appear only once in a table".into()),
        );
    }
    Problem::new(span, format!("invalid TOML: {}", e.message()), None)
}

/// Deserialize `doc`; on an error, note it, drop the offending entry and try
/// again, so that one pass reports every independent mistake. Returns the
/// scenario (if some version of the document deserialized), the problems,
/// and whether the scenario means what the file says (only unknown fields
/// were dropped), i.e. whether it is worth checking semantically.
fn deserialize(doc: &Doc<'_>) -> (Option<Scenario>, Vec<Problem>, bool) {
    let mut work = doc.clone();
    let mut problems = Vec::new();
    let mut sound = true;
    // (span of the table, key) of every entry dropped so far: a later
    // "missing field" for one of them is a consequence, not a new mistake.
    let mut dropped: Vec<(Range<usize>, String)> = Vec::new();
    for _ in 0..MAX_DESERIALIZE_ERRORS {
        let err = match Scenario::deserialize(toml::de::Deserializer::from(work.root.clone())) {
            Ok(s) => return (Some(s), problems, sound),
            Err(err) => err,
        };
        let span = err.span().unwrap_or(0..0);
        let missing = err.message().starts_with("missing field");
        sound &= err.message().starts_with("unknown field");
        let target = if missing {
            work.table_at(&span)
        } else {
            work.entry_at(&span).or_else(|| work.table_at(&span))
        };
        let problem = explain(&work, err.message(), span.clone(), target.as_deref());
        let field = ticked(err.message())
            .first()
            .map(|f| f.to_string())
            .unwrap_or_default();
        if !(missing && dropped.contains(&(span, field))) {
            problems.push(problem);
        }
        let Some(path) = target.filter(|p| !p.is_empty()) else {
            break;
        };
        if let Some((Seg::Key(key), table)) = path.split_last() {
            dropped.push((work.value_span(table), key.clone()));
        }
        if !work.remove(&path) {
            break;
        }
    }
    (None, problems, false)
}

/// Turn a serde message into a message naming the key and table, with a
/// hint listing what is allowed.
fn explain(doc: &Doc<'_>, msg: &str, span: Range<usize>, target: Option<&[Seg]>) -> Problem {
    let target = target.unwrap_or(&[]);
    let key = match target.last() {
        Some(Seg::Key(k)) => Some(k.as_str()),
        _ => None,
    };
    let (head, expected) = msg.split_once(", expected ").unwrap_or((msg, ""));
    let allowed = ticked(expected);
    let word = ticked(head).into_iter().next().unwrap_or("");
    let suggestion =
        did_you_mean(word, allowed.iter().copied()).map(|s| format!("did you mean `{s}`? "));
    let suggestion = suggestion.unwrap_or_default();
    let (message, hint) = if head.starts_with("unknown field") {
        let table = header(&target[..target.len().saturating_sub(1)]);
        let hint = if allowed.is_empty() {
            format!("{table} takes no fields")
        } else {
            format!(
                "{suggestion}valid fields in {table}: {}",
                backticked(allowed)
            )
        };
        (format!("unknown field `{word}` in {table}"), Some(hint))
    } else if head.starts_with("unknown variant") {
        // A table whose keys are names (`thp_stats = { split = 0 }`,
        // `smaps = { rss = 1 }`): the word is the key itself, and the table
        // is the field.
        const NAME_KEYED: [&str; 2] = ["thp_stats", "smaps"];
        let parent = match target {
            [.., Seg::Key(p), Seg::Key(k)] if k == word && NAME_KEYED.contains(&p.as_str()) => {
                Some(p.as_str())
            }
            _ => None,
        };
        let message = match (key, parent) {
            (_, Some(p)) => format!("invalid key `{word}` in `{p}`"),
            (Some(k), None) => format!("invalid value `{word}` for `{k}`"),
            (None, None) => format!("invalid value `{word}`"),
        };
        (
            message,
            Some(format!(
                "{suggestion}allowed values: {}",
                backticked(allowed)
            )),
        )
    } else if head.starts_with("missing field") {
        let table = doc
            .table_at(&span)
            .map(|p| header(&p))
            .unwrap_or_else(|| "this table".into());
        let hint = if table == "the top level" {
            format!("add `{word} = ...` near the top of the file, before any [table] header")
        } else {
            format!("add `{word} = ...` to this {table} table")
        };
        (format!("missing field `{word}` in {table}"), Some(hint))
    } else if let Some(found) = head.strip_prefix("invalid type: ") {
        let what = key.map(|k| format!(" for `{k}`")).unwrap_or_default();
        let message = format!("wrong type{what}: found {}", human_found(found));
        (
            message,
            Some(format!("expected {}", human_expected(expected))),
        )
    } else if let Some(found) = head.strip_prefix("invalid value: ") {
        let what = key.map(|k| format!(" for `{k}`")).unwrap_or_default();
        let message = format!("invalid value{what}: {}", human_found(found));
        (
            message,
            Some(format!("expected {}", human_expected(expected))),
        )
    } else if let Some(len) = head.strip_prefix("invalid length ") {
        let what = key
            .map(|k| format!("`{k}`"))
            .unwrap_or_else(|| "this array".into());
        let message = format!("{what} has {len} element(s)");
        (
            message,
            Some(format!("expected {}", human_expected(expected))),
        )
    } else {
        (msg.to_string(), None)
    };
    Problem::new(span, message, hint)
}

/// Every `quoted` word in `text`.
fn ticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn human_found(found: &str) -> String {
    match found {
        "map" => "a table".into(),
        "sequence" => "an array".into(),
        _ => found.to_string(),
    }
}

fn human_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".into(),
        "a sequence" => "an array".into(),
        e if e.starts_with("tuple struct PageRange") => {
            "a page range `[start, end]` (end exclusive)".into()
        }
        e if e.starts_with("struct ") => "a table".into(),
        e if e.starts_with("enum ") => "one of its allowed strings".into(),
        e => e.to_string(),
    }
}
