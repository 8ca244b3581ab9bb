//! Tests for scenario loading and checking.

mod access;
mod checks;
mod faults;
mod kernel;
mod load;
mod memcg;
mod parse;

use std::path::Path;

use super::{parse_str, Diagnostic};

/// Every diagnostic for `text`, which must not load.
fn errs(text: &str) -> Vec<Diagnostic> {
    match parse_str(Path::new("t.toml"), text) {
        Ok(s) => panic!("expected problems, got {s:?}"),
        Err(ds) => ds,
    }
}

/// The single diagnostic for `text`.
fn one(text: &str) -> Diagnostic {
    let ds = errs(text);
    assert_eq!(ds.len(), 1, "expected one problem, got:\n{}", render(&ds));
    ds.into_iter().next().unwrap()
}

/// Assert `d` is at `line:col` and its message contains `needle`.
fn assert_at(d: &Diagnostic, line: usize, col: usize, needle: &str) {
    assert_eq!((d.line, d.column), (line, col), "wrong place for:\n{d}");
    assert!(d.message.contains(needle), "message lacks {needle:?}:\n{d}");
}

fn render(ds: &[Diagnostic]) -> String {
    ds.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A valid scenario: lines 3-5 are the [mapping] table, 6-7 a cpu-read step.
const OK: &str = r#"description = "d"

[mapping]
kind = "anon-private"
pages = 16
[[step]]
op = "cpu-read"
"#;

#[test]
fn base_is_valid() {
    parse_str(Path::new("t.toml"), OK).unwrap();
}
