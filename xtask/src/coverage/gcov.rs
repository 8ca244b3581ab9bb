//! Running the host `gcov` on one scenario instance's counters and turning
//! its JSON (`gcov --json-format --stdout`) into a [`Coverage`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::model::{Branch, Coverage, FileCoverage, Function, Line, Scenarios};
use super::sources;
use crate::shell::Cmd;

/// One object's counters: its notes (`.gcno`, from the build) and data
/// (`.gcda`, from the guest).
#[derive(Debug, Clone)]
pub struct Object {
    /// The object's path in the build tree, without extension (`mm/migrate_device`).
    pub name: PathBuf,
    pub gcno: PathBuf,
    pub gcda: PathBuf,
}

/// How to read: the source tree, which gcov, which files to keep.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub source: PathBuf,
    pub gcov: String,
    /// Keep the headers whose inline functions were compiled into an
    /// object, not only its own source file.
    pub all_files: bool,
}

/// One document of gcov's JSON output (format_version 1 in GCC 12; later
/// versions add fields, which are ignored).
#[derive(Debug, Deserialize)]
struct Doc {
    gcc_version: String,
    current_working_directory: PathBuf,
    data_file: String,
    files: Vec<DocFile>,
}

#[derive(Debug, Deserialize)]
struct DocFile {
    file: String,
    functions: Vec<DocFunction>,
    lines: Vec<DocLine>,
}

#[derive(Debug, Deserialize)]
struct DocFunction {
    name: String,
    start_line: u32,
    end_line: u32,
    execution_count: u64,
}

#[derive(Debug, Deserialize)]
struct DocLine {
    line_number: u32,
    count: u64,
    function_name: Option<String>,
    branches: Vec<DocBranch>,
}

#[derive(Debug, Deserialize)]
struct DocBranch {
    count: u64,
}

/// The coverage of scenario instance `scenario` from its `objects`: one
/// `gcov` over all of them, in a private directory where each object's
/// notes and data sit side by side as `<i>.gcno`/`<i>.gcda`.
pub fn read(scenario: &str, objects: &[Object], opts: &ReadOptions) -> Result<Coverage> {
    let dir = tempfile::Builder::new()
        .prefix("hmmlab-gcov.")
        .tempdir()
        .context("creating a directory for gcov")?;
    let mut argv = vec![
        opts.gcov.clone(),
        "--json-format".into(),
        "--stdout".into(),
        "--branch-probabilities".into(),
    ];
    for (i, o) in objects.iter().enumerate() {
        for (from, ext) in [(&o.gcno, "gcno"), (&o.gcda, "gcda")] {
            let to = dir.path().join(format!("{i}.{ext}"));
            std::fs::copy(from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        }
        argv.push(format!("{i}.gcda"));
    }
    let out = Cmd::new(&argv)
        .dir(dir.path())
        .output()
        .with_context(|| format!("reading the counters of {scenario}"))?;
    let mut cov = Coverage::default();
    for doc in serde_json::Deserializer::from_str(&out).into_iter::<Doc>() {
        let doc = doc.with_context(|| {
            format!("parsing the JSON of `{}` (for {scenario})", argv.join(" "))
        })?;
        let object = doc
            .data_file
            .strip_suffix(".gcda")
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| objects.get(i))
            .with_context(|| {
                format!(
                    "gcov {} reported data file {:?}, which it was not given",
                    doc.gcc_version, doc.data_file
                )
            })?;
        cov.merge(&from_doc(scenario, &object.name, doc, opts));
    }
    Ok(cov)
}

fn from_doc(scenario: &str, object: &Path, doc: Doc, opts: &ReadOptions) -> Coverage {
    let mut files: Vec<(sources::Source, DocFile)> = doc
        .files
        .into_iter()
        .map(|f| {
            let s = sources::resolve(&f.file, &doc.current_working_directory, &opts.source);
            (s, f)
        })
        .collect();
    if !opts.all_files
        && files
            .iter()
            .any(|(s, _)| sources::is_main_source(&s.key, object))
    {
        files.retain(|(s, _)| sources::is_main_source(&s.key, object));
    }
    let mut cov = Coverage::default();
    for (source, f) in files {
        cov.files
            .entry(source.key)
            .or_default()
            .merge(&file_coverage(scenario, f));
    }
    cov
}

fn file_coverage(scenario: &str, f: DocFile) -> FileCoverage {
    let ran = |count: u64| -> Scenarios {
        if count > 0 {
            Scenarios::from([scenario.to_string()])
        } else {
            Scenarios::new()
        }
    };
    let mut out = FileCoverage::default();
    for func in f.functions {
        out.merge(&FileCoverage {
            functions: [(
                func.name,
                Function {
                    start_line: func.start_line,
                    end_line: func.end_line,
                    count: func.execution_count,
                    scenarios: ran(func.execution_count),
                },
            )]
            .into(),
            lines: Default::default(),
            source_sha256: None,
        });
    }
    // A line can come more than once: once per function when several
    // functions begin on the same line (gcov's "group" functions). Its
    // counts add up and its branches are each function's, one after the
    // other (the same order for every run of the same object).
    for l in f.lines {
        let line = Line {
            count: l.count,
            functions: l.function_name.into_iter().collect(),
            branches: l
                .branches
                .iter()
                .map(|b| Branch {
                    taken: b.count,
                    scenarios: ran(b.count),
                })
                .collect(),
            scenarios: ran(l.count),
        };
        match out.lines.get_mut(&l.line_number) {
            Some(seen) => {
                seen.count += line.count;
                seen.functions.extend(line.functions);
                seen.branches.extend(line.branches);
                seen.scenarios.extend(line.scenarios);
            }
            None => {
                out.lines.insert(l.line_number, line);
            }
        }
    }
    out
}
