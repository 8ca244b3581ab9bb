//! `mutation-report.json`: a mutation run in the mutation-testing-elements
//! report schema (version 2, <https://github.com/stryker-mutator/mutation-testing-elements>),
//! which its HTML viewer and other tools read: per file the source and
//! each mutant with its location, replacement and status.
//!
//! Status mapping (the schema's statuses are those of user-space tools):
//! killed → Killed; crashed → Killed, with "the kernel crashed" as its
//! reason (a kernel oops or panic is the suite noticing the mutant: the
//! schema's RuntimeError would leave it out of the score); timeout →
//! Timeout; survived → Survived; uncovered → NoCoverage; unviable →
//! CompileError; equivalent and duplicate → Ignored, with the reason;
//! pending and error → Pending. The schema's score (detected over valid,
//! ignored and compile errors left out) is then hmmlab's.

use std::collections::BTreeMap;

use serde::Serialize;

use super::check::{Record, Verdict};

#[derive(Debug, Serialize, PartialEq)]
pub struct Report {
    #[serde(rename = "schemaVersion")]
    pub schema_version: &'static str,
    pub thresholds: Thresholds,
    pub files: BTreeMap<String, FileResult>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Thresholds {
    pub high: u32,
    pub low: u32,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct FileResult {
    pub language: &'static str,
    pub source: String,
    pub mutants: Vec<MutantResult>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct MutantResult {
    pub id: String,
    #[serde(rename = "mutatorName")]
    pub mutator_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    pub location: Location,
    pub status: &'static str,
    #[serde(rename = "statusReason", skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(rename = "killedBy", skip_serializing_if = "Vec::is_empty")]
    pub killed_by: Vec<String>,
    #[serde(rename = "coveredBy", skip_serializing_if = "Vec::is_empty")]
    pub covered_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Location {
    pub start: Position,
    pub end: Position,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Line and column (1-based, columns in characters) of byte `at` of `text`.
pub fn position(text: &str, at: usize) -> Position {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    Position {
        line,
        column: before[line_start..].chars().count() + 1,
    }
}

/// The schema's status of a verdict, and a reason when ours says more.
pub fn status(r: &Record) -> (&'static str, Option<String>) {
    match r.verdict {
        Verdict::Killed => ("Killed", None),
        Verdict::Crashed => ("Killed", Some("the kernel crashed".into())),
        Verdict::Timeout => ("Timeout", None),
        Verdict::Survived => ("Survived", None),
        Verdict::Uncovered => ("NoCoverage", None),
        Verdict::Unviable => ("CompileError", Some(r.error.join("\n"))),
        Verdict::Equivalent => (
            "Ignored",
            Some("equivalent: the same object code as the original".into()),
        ),
        Verdict::Duplicate => (
            "Ignored",
            Some(format!(
                "duplicate: the same object code as {}",
                r.duplicate_of.as_deref().unwrap_or("an earlier mutant")
            )),
        ),
        Verdict::Pending => ("Pending", None),
        Verdict::Error => ("Pending", r.reason.clone()),
    }
}

/// Where a mutant is and what replaces it: its byte range in the file and
/// the new text, or only its line (a hand-written mutant).
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub replacement: Option<String>,
    pub description: Option<String>,
}

/// The report of `records`, with each file's source and each mutant's span.
pub fn report(
    records: &[Record],
    sources: &BTreeMap<String, String>,
    spans: &BTreeMap<String, Span>,
) -> Report {
    let mut files: BTreeMap<String, FileResult> = BTreeMap::new();
    for r in records {
        let Some(source) = sources.get(&r.file) else {
            continue;
        };
        let location = match spans.get(&r.id) {
            Some(s) if s.replacement.is_some() => Location {
                start: position(source, s.start),
                end: position(source, s.end),
            },
            _ => {
                let line_len = source
                    .lines()
                    .nth(r.line.saturating_sub(1))
                    .map(|l| l.chars().count())
                    .unwrap_or(0);
                Location {
                    start: Position {
                        line: r.line,
                        column: 1,
                    },
                    end: Position {
                        line: r.line,
                        column: line_len + 1,
                    },
                }
            }
        };
        let (status, status_reason) = status(r);
        let span = spans.get(&r.id);
        let mut killed_by: Vec<String> = r.killed_by.iter().map(|k| k.scenario.clone()).collect();
        killed_by.sort();
        files
            .entry(r.file.clone())
            .or_insert_with(|| FileResult {
                language: "c",
                source: source.clone(),
                mutants: vec![],
            })
            .mutants
            .push(MutantResult {
                id: r.id.clone(),
                mutator_name: r.operator.clone(),
                replacement: span.and_then(|s| s.replacement.clone()),
                location,
                status,
                status_reason,
                killed_by,
                covered_by: r.scenarios.clone(),
                description: span.and_then(|s| s.description.clone()),
            });
    }
    Report {
        schema_version: "2",
        thresholds: Thresholds { high: 90, low: 70 },
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutate::check::test_record;

    fn rec(id: &str, line: usize, v: Verdict) -> Record {
        test_record(id, line, v)
    }

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        let t = "ab\n\tif (x)\n";
        assert_eq!(position(t, 0), Position { line: 1, column: 1 });
        assert_eq!(position(t, 3), Position { line: 2, column: 1 });
        assert_eq!(position(t, 5), Position { line: 2, column: 3 });
    }

    #[test]
    fn each_verdict_gets_the_schemas_status_and_a_crash_counts_as_killed() {
        let source = "int f(int x)\n{\n\tif (x)\n\t\treturn 1;\n\treturn 0;\n}\n".to_string();
        let sources = BTreeMap::from([("mm/m.c".to_string(), source.clone())]);
        let at = source.find("if (x)").unwrap() + 4;
        let spans = BTreeMap::from([(
            "a".to_string(),
            Span {
                start: at,
                end: at + 1,
                replacement: Some("!x".into()),
                description: Some("if (x) → if (!x)".into()),
            },
        )]);
        let mut killed = rec("a", 3, Verdict::Killed);
        killed.killed_by = vec![crate::mutate::boot::Kill {
            scenario: "z@madvise".into(),
            outcome: "fail".into(),
            message: None,
        }];
        let mut dup = rec("d", 4, Verdict::Duplicate);
        dup.duplicate_of = Some("a".into());
        let records = vec![
            killed,
            rec("c", 4, Verdict::Crashed),
            dup,
            rec("u", 5, Verdict::Uncovered),
            rec("s", 5, Verdict::Survived),
        ];
        let r = report(&records, &sources, &spans);
        let f = &r.files["mm/m.c"];
        assert_eq!(f.language, "c");
        let m = &f.mutants;
        assert_eq!(m[0].status, "Killed");
        assert_eq!(m[0].killed_by, ["z@madvise"]);
        assert_eq!(m[0].replacement.as_deref(), Some("!x"));
        assert_eq!(
            m[0].location,
            Location {
                start: Position { line: 3, column: 6 },
                end: Position { line: 3, column: 7 }
            }
        );
        assert_eq!(
            (m[1].status, m[1].status_reason.as_deref()),
            ("Killed", Some("the kernel crashed"))
        );
        assert_eq!(m[2].status, "Ignored");
        assert!(m[2]
            .status_reason
            .as_deref()
            .unwrap()
            .contains("same object code as a"));
        // No span: the whole line.
        assert_eq!(m[2].location.start, Position { line: 4, column: 1 });
        assert_eq!(
            m[2].location.end,
            Position {
                line: 4,
                column: 12
            }
        );
        assert_eq!(m[3].status, "NoCoverage");
        assert_eq!(m[4].status, "Survived");
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["schemaVersion"], "2");
        assert_eq!(
            j["files"]["mm/m.c"]["mutants"][0]["mutatorName"],
            "negate-cond"
        );
    }
}
