//! `cargo xtask mutate`: mutants of the code under test (by default every
//! function of mm/migrate_device.c), generated from its C syntax tree
//! (tree-sitter's C grammar), each a unified diff that `patch -p1` applies
//! to the kernel tree. `--list` lists them; nothing is built or booted.

pub mod boot;
pub mod check;
pub mod compare;
pub mod diff;
pub mod elements;
pub mod equivalent;
pub mod gen;
pub mod html;
pub mod ops;
pub mod schema;
pub mod shard;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use hmmlab_harness::exit;

use crate::cli::MutateArgs;
use crate::fail::bad_input;
use crate::kernel::source::Source;

pub use gen::{FileMutants, Mutant};
pub use ops::Operator;

/// The file mutated when no `--file` is given.
pub const DEFAULT_FILE: &str = "mm/migrate_device.c";

/// `--lines A-B`: 1-based, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lines {
    pub first: usize,
    pub last: usize,
}

impl Lines {
    pub fn parse(s: &str) -> Result<Lines> {
        let bad = || {
            bad_input(format!(
                "--lines {s}: not a line range; give FIRST-LAST, 1-based and inclusive, \
                 e.g. --lines 245-510 (or one line: --lines 312)"
            ))
        };
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let first: usize = a.trim().parse().map_err(|_| bad())?;
        let last: usize = b.trim().parse().map_err(|_| bad())?;
        if first == 0 || last < first {
            return Err(bad());
        }
        Ok(Lines { first, last })
    }

    fn contains(&self, line: usize) -> bool {
        (self.first..=self.last).contains(&line)
    }
}

/// What to mutate and which mutants to keep.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub files: Vec<String>,
    pub functions: Vec<String>,
    pub lines: Option<Lines>,
    /// `--id`: only these mutants.
    pub ids: Vec<String>,
    /// `--lines-of`: per file, the lines a patch adds or changes.
    pub changed: Option<BTreeMap<String, std::collections::BTreeSet<usize>>>,
    pub operators: Vec<Operator>,
}

/// A file given with `--file`: relative to the top of the tree, inside it.
fn checked_file(tree: &Path, file: &str) -> Result<String> {
    let p = Path::new(file);
    let inside = p
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if file.is_empty() || !inside {
        return Err(bad_input(format!(
            "--file {file}: give a path relative to the top of the kernel tree, \
             e.g. --file {DEFAULT_FILE}"
        )));
    }
    if !tree.join(p).is_file() {
        return Err(bad_input(format!(
            "--file {file}: no such file in {}; give a C file of that tree, relative to its \
             top, e.g. --file {DEFAULT_FILE}",
            tree.display()
        )));
    }
    if p.extension().and_then(|e| e.to_str()) != Some("c") {
        return Err(bad_input(format!(
            "--file {file}: not a C source file (.c); mutants are made from function \
             definitions, e.g. --file {DEFAULT_FILE}"
        )));
    }
    let norm: PathBuf = p
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    Ok(norm.to_string_lossy().into_owned())
}

/// Every mutant the selection keeps, file by file. Ids are made before
/// the filters apply, so a narrower selection gives the same ids.
pub fn generate(tree: &Path, sel: &Selection) -> Result<Vec<FileMutants>> {
    let files = if sel.files.is_empty() {
        vec![DEFAULT_FILE.to_string()]
    } else {
        sel.files.clone()
    };
    let mut out = vec![];
    let mut seen_files = vec![];
    for f in &files {
        let f = checked_file(tree, f)?;
        if seen_files.contains(&f) {
            continue;
        }
        seen_files.push(f.clone());
        let path = tree.join(&f);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let source = String::from_utf8(bytes)
            .map_err(|_| bad_input(format!("--file {f}: {} is not UTF-8 text", path.display())))?;
        out.push(gen::mutants(&f, &source)?);
    }
    for name in &sel.functions {
        if !out
            .iter()
            .any(|fm| fm.functions.iter().any(|f| &f.name == name))
        {
            let mut known: Vec<&str> = out
                .iter()
                .flat_map(|fm| fm.functions.iter().map(|f| f.name.as_str()))
                .collect();
            known.dedup();
            return Err(bad_input(format!(
                "--function {name}: no function of that name is defined in {}; give one of: {}",
                seen_files.join(", "),
                known.join(", ")
            )));
        }
    }
    if let Some(changed) = &sel.changed {
        if !out.iter().any(|fm| changed.contains_key(&fm.file)) {
            let touched: Vec<&str> = changed.keys().map(|k| k.as_str()).collect();
            return Err(bad_input(format!(
                "--lines-of: the patch changes none of {} (it changes {}); give --file for the \
                 files it changes",
                seen_files.join(", "),
                if touched.is_empty() {
                    "nothing".to_string()
                } else {
                    touched.join(", ")
                }
            )));
        }
    }
    for id in &sel.ids {
        if !out.iter().any(|fm| fm.mutants.iter().any(|m| &m.id == id)) {
            return Err(bad_input(format!(
                "--id {id}: no such mutant in {}; `cargo xtask mutate --list` prints the ids",
                seen_files.join(", ")
            )));
        }
    }
    for fm in &mut out {
        let changed = sel.changed.as_ref().map(|c| c.get(&fm.file));
        fm.mutants.retain(|m| {
            let last = m.line + m.original.matches('\n').count();
            (sel.functions.is_empty() || sel.functions.contains(&m.function))
                && (sel.ids.is_empty() || sel.ids.contains(&m.id))
                && sel.lines.is_none_or(|l| l.contains(m.line))
                && changed
                    .is_none_or(|c| c.is_some_and(|c| c.range(m.line..=last).next().is_some()))
                && (sel.operators.is_empty() || sel.operators.contains(&m.operator))
        });
    }
    if let Some(l) = sel.lines {
        let longest = out
            .iter()
            .flat_map(|fm| fm.functions.iter().map(|f| f.last_line))
            .max()
            .unwrap_or(0);
        if out.iter().all(|fm| {
            !fm.functions
                .iter()
                .any(|f| f.first_line <= l.last && l.first <= f.last_line)
        }) {
            return Err(bad_input(format!(
                "--lines {}-{}: no function of {} is on those lines (the last function ends at \
                 line {longest}); give a range that meets a function",
                l.first,
                l.last,
                seen_files.join(", ")
            )));
        }
    }
    Ok(out)
}

/// Per file (the `+++ b/` path), the lines of the new side that a unified
/// diff at `path` adds, and the line at which it deletes: what a patch
/// changes in the tree that has it applied.
pub fn patch_lines(
    path: &std::path::Path,
) -> Result<BTreeMap<String, std::collections::BTreeSet<usize>>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad_input(format!(
            "--lines-of {}: cannot read it ({e}); give a unified diff (git diff, git \
             format-patch)",
            path.display()
        ))
    })?;
    parse_patch_lines(&text).map_err(|(line, what)| {
        bad_input(format!(
            "--lines-of {}:{line}: {what}; give a unified diff (git diff, git format-patch)",
            path.display()
        ))
    })
}

fn parse_patch_lines(
    text: &str,
) -> std::result::Result<BTreeMap<String, std::collections::BTreeSet<usize>>, (usize, String)> {
    let mut out: BTreeMap<String, std::collections::BTreeSet<usize>> = BTreeMap::new();
    let mut file: Option<String> = None;
    // The next new-side line, and how many old and new lines the hunk has left.
    let (mut at, mut old_left, mut new_left) = (0usize, 0usize, 0usize);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if old_left > 0 || new_left > 0 {
            match line.as_bytes().first() {
                Some(b'+') => {
                    out.entry(file.clone().unwrap_or_default())
                        .or_default()
                        .insert(at);
                    at += 1;
                    new_left = new_left.saturating_sub(1);
                }
                Some(b'-') => {
                    out.entry(file.clone().unwrap_or_default())
                        .or_default()
                        .insert(at);
                    old_left = old_left.saturating_sub(1);
                }
                Some(b'\\') => {}
                _ => {
                    at += 1;
                    old_left = old_left.saturating_sub(1);
                    new_left = new_left.saturating_sub(1);
                }
            }
            continue;
        }
        if let Some(p) = line.strip_prefix("+++ ") {
            let p = p.split('\t').next().unwrap_or(p).trim();
            // A deleted file (`+++ /dev/null`) has no new side: its hunks
            // are read past under the empty name, dropped at the end.
            let name = if p == "/dev/null" {
                ""
            } else {
                p.strip_prefix("b/").unwrap_or(p)
            };
            file = Some(name.to_string());
        } else if let Some(h) = line.strip_prefix("@@ ") {
            if file.is_none() {
                return Err((n, "a hunk before any `+++` file line".into()));
            }
            let bad = || {
                (
                    n,
                    format!("`{line}` is not a hunk header (@@ -A,B +C,D @@)"),
                )
            };
            let mut parts = h.split_whitespace();
            let count = |s: &str| -> Option<(usize, usize)> {
                let (a, b) = s.split_once(',').unwrap_or((s, "1"));
                Some((a.parse().ok()?, b.parse().ok()?))
            };
            let old = parts
                .next()
                .and_then(|s| s.strip_prefix('-'))
                .and_then(count);
            let new = parts
                .next()
                .and_then(|s| s.strip_prefix('+'))
                .and_then(count);
            let (Some((_, ol)), Some((ns, nl))) = (old, new) else {
                return Err(bad());
            };
            (at, old_left, new_left) = (ns.max(1), ol, nl);
        }
    }
    out.remove("");
    if out.is_empty() {
        return Err((1, "no hunk that adds or changes a line in it".into()));
    }
    Ok(out)
}

/// The tree to mutate: `--tree DIR`, else the `--kernel` source's
/// extracted tree (fetched into the cache as a build would).
fn tree_of(a: &MutateArgs) -> Result<PathBuf> {
    if let Some(t) = &a.tree {
        let t = crate::paths::absolute(t);
        if !t.is_dir() {
            return Err(bad_input(format!(
                "--tree {}: not a directory; give the top of a kernel source tree",
                t.display()
            )));
        }
        return Ok(t);
    }
    let source = Source::parse_tree(&a.kernel)?;
    let identity = source.identity()?;
    eprintln!("mutate: source {identity}");
    source.pristine_tree(&crate::paths::cache_root(), &identity)
}

/// `cargo xtask mutate`.
pub fn mutate(a: &MutateArgs) -> Result<i32> {
    if a.emit.is_some() {
        let n = a.shards.unwrap_or(0);
        if n == 0 {
            return Err(bad_input(
                "--shards 0: give the number of parts, at least 1, e.g. --emit github --shards 4",
            ));
        }
        println!("{}", shard::github_matrix(n)?);
        return Ok(exit::OK);
    }
    if !a.merge.is_empty() {
        if a.shard.is_some() {
            return Err(bad_input(
                "mutate: --shard goes with --check or --run; --merge takes every shard's \
                 directory",
            ));
        }
        return shard::merge(a);
    }
    if !a.list && !a.check && !a.run {
        return Err(bad_input(
            "mutate: say what to do: --list lists the mutants (with --diff for their diffs, \
             --json for JSON records); --check compiles each one and gives the verdicts that \
             need no boot; --run checks, then boots every pending mutant; --merge joins the \
             results of --shard parts; --emit github --shards N prints their CI matrix",
        ));
    }
    let only_with = |given: bool, flag: &str, with: &str| {
        if given {
            Err(bad_input(format!("mutate: {flag} goes with {with}")))
        } else {
            Ok(())
        }
    };
    if !a.check && !a.run {
        only_with(
            a.coverage_from.is_some(),
            "--coverage-from",
            "--check or --run",
        )?;
        only_with(a.resume.is_some(), "--resume", "--check or --run")?;
        only_with(a.shard.is_some(), "--shard", "--check or --run")?;
        only_with(
            !a.mutant_patches.is_empty(),
            "--mutant-patch",
            "--check or --run",
        )?;
    }
    if !a.run {
        only_with(!a.scenarios.is_empty(), "--scenario", "--run")?;
        only_with(a.boot_uncovered, "--boot-uncovered", "--run")?;
        only_with(a.all_scenarios, "--all-scenarios", "--run")?;
    }
    only_with(
        !a.again.is_empty() && a.resume.is_none(),
        "--again",
        "--run --resume",
    )?;
    check::again_verdicts(&a.again)?;
    let sel = Selection {
        files: a.files.clone(),
        functions: a.functions.clone(),
        lines: a.lines.as_deref().map(Lines::parse).transpose()?,
        changed: a.lines_of.as_deref().map(patch_lines).transpose()?,
        ids: a.ids.clone(),
        operators: a.operators.clone(),
    };
    if let Some(s) = &a.shard {
        shard::Shard::parse(s)?;
    }
    if a.check || a.run {
        return check::run(a, &sel);
    }
    let tree = tree_of(a)?;
    eprintln!("mutate: tree {}", tree.display());
    let files = generate(&tree, &sel)?;
    let all: Vec<&Mutant> = files.iter().flat_map(|f| &f.mutants).collect();
    // Which of them the equivalent list names, for this tree's release.
    let list = equivalent::load_repo()?;
    let release = equivalent::release_of_tree(&tree).unwrap_or_default();
    let mut sources: BTreeMap<&str, String> = BTreeMap::new();
    for fm in &files {
        sources.insert(
            &fm.file,
            std::fs::read_to_string(tree.join(&fm.file)).unwrap_or_default(),
        );
    }
    let mut out = String::new();
    for m in &all {
        if a.json {
            out.push_str(&serde_json::to_string(m)?);
            out.push('\n');
            continue;
        }
        out.push_str(&format!("{}  {}", m.id, m.description));
        if !m.under.is_empty() {
            out.push_str(&format!("  [under {}]", m.under.join(", ")));
        }
        let line = equivalent::context_of(&sources[m.file.as_str()], m.line);
        let change = equivalent::Change {
            file: &m.file,
            function: &m.function,
            operator: m.operator.name(),
            original: &m.original,
            mutated: &m.mutated,
            line: &line,
            index: m.index,
        };
        if let Some(e) = equivalent::find(&list, &change, &release) {
            out.push_str(&format!("  [listed equivalent: {}]", e.at));
        }
        out.push('\n');
        if a.diff {
            out.push_str(&m.diff);
            out.push('\n');
        }
    }
    let ops = if sel.operators.is_empty() {
        Operator::ALL.to_vec()
    } else {
        sel.operators.clone()
    };
    // Every function the selection names or meets, a function without
    // mutants too.
    let mut functions = vec![];
    for fm in &files {
        for f in &fm.functions {
            let key = format!("{}:{}", fm.file, f.name);
            let named = sel.functions.is_empty() || sel.functions.contains(&f.name);
            let met = sel
                .lines
                .is_none_or(|l| f.first_line <= l.last && l.first <= f.last_line);
            if named && met && !functions.contains(&key) {
                functions.push(key);
            }
        }
    }
    let summary = summary(&all, &ops, &functions);
    if a.json {
        print!("{out}");
        eprint!("{summary}");
    } else {
        print!("{out}{summary}");
    }
    Ok(exit::OK)
}

/// Counts per operator (each of `ops`) and per function (each of
/// `functions`, `file:name`), none left out for having no mutant.
pub fn summary(all: &[&Mutant], ops: &[Operator], functions: &[String]) -> String {
    let mut by_op: BTreeMap<Operator, usize> = BTreeMap::new();
    let mut by_fn: BTreeMap<String, usize> = BTreeMap::new();
    for m in all {
        *by_op.entry(m.operator).or_default() += 1;
        *by_fn
            .entry(format!("{}:{}", m.file, m.function))
            .or_default() += 1;
    }
    let mut s = format!("\n{} mutants\n\nby operator:\n", all.len());
    for op in ops {
        let n = by_op.get(op).copied().unwrap_or(0);
        s.push_str(&format!("  {:<22}{n:>6}\n", op.name()));
    }
    s.push_str("\nby function:\n");
    let w = functions.iter().map(|k| k.len()).max().unwrap_or(0) + 2;
    for f in functions {
        let n = by_fn.get(f).copied().unwrap_or(0);
        s.push_str(&format!("  {f:<w$}{n:>6}\n"));
    }
    s
}
