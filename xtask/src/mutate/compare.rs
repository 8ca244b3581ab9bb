//! `cargo xtask compare A B` of two mutation runs (`results/mutate-<id>/`,
//! or their `mutants.jsonl`): the score of each, and mutant by mutant
//! what the suite newly misses (detected in A, not in B) and newly
//! catches. Mutants are matched by id (file, function, line, operator,
//! index): two runs of the same source, as before and after a change of
//! the scenarios.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::check::{read_records, score, Header, Record, Verdict};
use crate::fail::bad_input;

/// Is `path` a mutation run (a directory with mutants.jsonl, or that file)?
pub fn is_mutation_run(path: &Path) -> bool {
    path.join("mutants.jsonl").is_file()
        || path.file_name().is_some_and(|n| n == "mutants.jsonl") && path.is_file()
}

fn jsonl(path: &Path) -> PathBuf {
    if path.is_file() {
        path.to_path_buf()
    } else {
        path.join("mutants.jsonl")
    }
}

/// One mutant whose verdict differs between the sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub id: String,
    pub a: Verdict,
    pub b: Verdict,
    /// B's killers, when B detected it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub killed_by: Vec<String>,
}

/// What changed from A to B.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MutationDiff {
    pub a: String,
    pub b: String,
    /// (detected, counted) of each side.
    pub score_a: Option<(usize, usize)>,
    pub score_b: Option<(usize, usize)>,
    /// Detected in A, not in B (survived, uncovered, or not booted): the
    /// suite's power went down.
    pub newly_missed: Vec<Change>,
    /// Not detected in A, detected in B.
    pub newly_detected: Vec<Change>,
    /// Any other change of verdict (e.g. killed became crashed, pending
    /// became survived).
    pub other: Vec<Change>,
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
    /// Set when the two runs are of different sources: ids then name
    /// other lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

pub fn diff(a_label: &str, a: &[Record], b_label: &str, b: &[Record]) -> MutationDiff {
    let bm: BTreeMap<&str, &Record> = b.iter().map(|r| (r.id.as_str(), r)).collect();
    let am: BTreeMap<&str, &Record> = a.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut d = MutationDiff {
        a: a_label.to_string(),
        b: b_label.to_string(),
        score_a: score(&a.iter().collect::<Vec<_>>()),
        score_b: score(&b.iter().collect::<Vec<_>>()),
        newly_missed: vec![],
        newly_detected: vec![],
        other: vec![],
        only_a: vec![],
        only_b: vec![],
        warning: None,
    };
    for ra in a {
        let Some(rb) = bm.get(ra.id.as_str()) else {
            d.only_a.push(ra.id.clone());
            continue;
        };
        if ra.verdict == rb.verdict {
            continue;
        }
        let c = Change {
            id: ra.id.clone(),
            a: ra.verdict,
            b: rb.verdict,
            killed_by: rb.killed_by.iter().map(|k| k.scenario.clone()).collect(),
        };
        match (ra.verdict.detected(), rb.verdict.detected()) {
            (true, false) => d.newly_missed.push(c),
            (false, true) => d.newly_detected.push(c),
            _ => d.other.push(c),
        }
    }
    for rb in b {
        if !am.contains_key(rb.id.as_str()) {
            d.only_b.push(rb.id.clone());
        }
    }
    d
}

fn pct(s: Option<(usize, usize)>) -> String {
    match s {
        Some((n, of)) => format!("{:.1}% ({n} of {of})", 100.0 * n as f64 / of as f64),
        None => "-".into(),
    }
}

pub fn render(d: &MutationDiff) -> String {
    let mut s = format!(
        "mutation score: A {}, B {}\n  A: {}\n  B: {}\n",
        pct(d.score_a),
        pct(d.score_b),
        d.a,
        d.b
    );
    if let Some(w) = &d.warning {
        s.push_str(&format!("warning: {w}\n"));
    }
    let list = |s: &mut String, title: &str, v: &[Change]| {
        if v.is_empty() {
            return;
        }
        s.push_str(&format!("\n{} {title}:\n", v.len()));
        for c in v {
            s.push_str(&format!("  {}  {} -> {}", c.id, c.a.name(), c.b.name()));
            if !c.killed_by.is_empty() {
                s.push_str(&format!("  (by {})", c.killed_by.join(", ")));
            }
            s.push('\n');
        }
    };
    list(
        &mut s,
        "newly missed (detected in A, not in B)",
        &d.newly_missed,
    );
    list(&mut s, "newly detected", &d.newly_detected);
    list(&mut s, "other changes", &d.other);
    for (title, v) in [("only in A", &d.only_a), ("only in B", &d.only_b)] {
        if !v.is_empty() {
            s.push_str(&format!("\n{} {title}:\n", v.len()));
            for id in v.iter() {
                s.push_str(&format!("  {id}\n"));
            }
        }
    }
    if d.newly_missed.is_empty() && d.newly_detected.is_empty() && d.other.is_empty() {
        s.push_str("\nno mutant changed its verdict\n");
    }
    s
}

/// `cargo xtask compare A B` when both are mutation runs: exit 1 when B
/// misses a mutant A detected.
pub fn compare(a: &Path, b: &Path, json: bool) -> Result<i32> {
    let load = |side: &str, p: &Path| -> Result<(Vec<Record>, Option<Header>)> {
        let file = jsonl(p);
        let records = read_records(&file)?;
        if records.is_empty() {
            return Err(bad_input(format!(
                "{side} {}: no mutant records in {}; give a results/mutate-<id> directory",
                p.display(),
                file.display()
            )));
        }
        let header = file
            .parent()
            .map(|d| d.join("check.json"))
            .and_then(|h| std::fs::read(h).ok())
            .and_then(|b| serde_json::from_slice::<Header>(&b).ok());
        Ok((records, header))
    };
    let (ra, ha) = load("A", a)?;
    let (rb, hb) = load("B", b)?;
    let mut d = diff(&a.display().to_string(), &ra, &b.display().to_string(), &rb);
    if let (Some(ha), Some(hb)) = (&ha, &hb) {
        if ha.baseline != hb.baseline {
            d.warning = Some(format!(
                "the runs are of different code ({} {}, {} {}): a mutant id names a line of \
                 each side's own file",
                ha.source, ha.release, hb.source, hb.release
            ));
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print!("{}", render(&d));
    }
    Ok(if d.newly_missed.is_empty() {
        hmmlab_harness::exit::OK
    } else {
        hmmlab_harness::exit::TEST_FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutate::check::test_record;

    fn r(id: &str, v: Verdict) -> Record {
        test_record(id, 1, v)
    }

    #[test]
    fn what_b_newly_misses_and_newly_catches_mutant_by_mutant() {
        let a = [
            r("k", Verdict::Killed),
            r("s", Verdict::Survived),
            r("c", Verdict::Killed),
            r("e", Verdict::Equivalent),
            r("gone", Verdict::Killed),
        ];
        let mut caught = r("s", Verdict::Killed);
        caught.killed_by = vec![crate::mutate::boot::Kill {
            scenario: "empty-anon@madvise".into(),
            outcome: "fail".into(),
            message: None,
        }];
        let b = [
            r("k", Verdict::Survived),
            caught,
            r("c", Verdict::Crashed),
            r("e", Verdict::Equivalent),
            r("new", Verdict::Pending),
        ];
        let d = diff("A", &a, "B", &b);
        assert_eq!(d.score_a, Some((3, 4)));
        assert_eq!(d.score_b, Some((2, 4)));
        assert_eq!(d.newly_missed.len(), 1);
        assert_eq!(d.newly_missed[0].id, "k");
        assert_eq!(d.newly_detected[0].id, "s");
        assert_eq!(d.newly_detected[0].killed_by, ["empty-anon@madvise"]);
        assert_eq!(d.other[0].id, "c");
        assert_eq!(d.only_a, ["gone"]);
        assert_eq!(d.only_b, ["new"]);
        let text = render(&d);
        assert!(
            text.contains("mutation score: A 75.0% (3 of 4), B 50.0% (2 of 4)"),
            "{text}"
        );
        assert!(
            text.contains("1 newly missed (detected in A, not in B):\n  k  killed -> survived"),
            "{text}"
        );
        let same = diff("A", &a, "A", &a);
        assert!(render(&same).contains("no mutant changed its verdict"));
    }
}
