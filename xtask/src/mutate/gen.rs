//! Mutants of one C file: parsed with tree-sitter's C grammar, every
//! function definition walked, every operator applied, each result a
//! mutant with a stable id and a unified diff.

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use serde::Serialize;
use tree_sitter::{Node, Parser, Tree};

use super::diff;
use super::ops::{squash, Ctx, EarlyExit, Edit, Operator};

/// One change of the code under test.
#[derive(Debug, Clone, Serialize)]
pub struct Mutant {
    /// `mm/migrate_device.c:migrate_vma_collect_pmd:312:negate-cond:0`.
    pub id: String,
    /// Relative to the top of the tree.
    pub file: String,
    pub function: String,
    /// 1-based line of the change.
    pub line: usize,
    pub operator: Operator,
    /// Among the mutants of this operator on this line of this function.
    pub index: usize,
    /// One line: before → after.
    pub description: String,
    /// Byte range of the original text that is replaced.
    pub start: usize,
    pub end: usize,
    pub original: String,
    /// The text that replaces it.
    pub mutated: String,
    /// `patch -p1` applies it at the top of the tree.
    pub diff: String,
    /// The preprocessor conditions the change is under, outermost first
    /// (`#ifdef CONFIG_ARCH_ENABLE_THP_MIGRATION`, `#else of #ifdef …`):
    /// a build whose configuration leaves them false does not compile it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub under: Vec<String>,
}

impl Mutant {
    /// The whole file with this mutant applied.
    pub fn apply(&self, source: &str) -> String {
        let mut s = String::with_capacity(source.len() + self.mutated.len());
        s.push_str(&source[..self.start]);
        s.push_str(&self.mutated);
        s.push_str(&source[self.end..]);
        s
    }
}

/// A function definition of the file.
#[derive(Debug, Clone, Serialize)]
pub struct Function {
    pub name: String,
    /// 1-based lines of its first and last line.
    pub first_line: usize,
    pub last_line: usize,
}

/// What one file yields.
#[derive(Debug)]
pub struct FileMutants {
    pub file: String,
    pub functions: Vec<Function>,
    pub mutants: Vec<Mutant>,
}

/// Parse C source with tree-sitter's C grammar.
pub fn parse(source: &str) -> Result<Tree> {
    let mut p = Parser::new();
    p.set_language(&tree_sitter_c::LANGUAGE.into())
        .map_err(|e| anyhow!("tree-sitter C grammar: {e}"))?;
    p.parse(source, None)
        .ok_or_else(|| anyhow!("tree-sitter gave no syntax tree"))
}

/// Parse errors in a syntax tree (ERROR and MISSING nodes).
#[cfg(test)]
pub fn error_count(tree: &Tree) -> usize {
    fn count(n: Node) -> usize {
        if !n.has_error() {
            return 0;
        }
        let own = usize::from(n.is_error() || n.is_missing());
        let mut c = n.walk();
        own + n.children(&mut c).map(count).sum::<usize>()
    }
    count(tree.root_node())
}

/// Every mutant of every function of `source` (the file `file`, relative
/// to the tree), in source order, with their ids.
pub fn mutants(file: &str, source: &str) -> Result<FileMutants> {
    let tree = parse(source)?;
    let src = source.as_bytes();
    let mut defs = vec![];
    definitions(tree.root_node(), &mut defs);
    let mut functions = vec![];
    let mut mutants = vec![];
    let mut seen: HashMap<(String, usize, Operator), usize> = HashMap::new();
    for def in defs {
        let Some(name) = function_name(def, src) else {
            continue;
        };
        let Some(body) = def.child_by_field_name("body") else {
            continue;
        };
        functions.push(Function {
            name: name.clone(),
            first_line: def.start_position().row + 1,
            last_line: def.end_position().row + 1,
        });
        let mut ctx = Ctx {
            src,
            exit: early_exit(def, body, src),
            returns_pointer: function_declarator(def).is_some_and(|(_, pointer)| pointer),
            out: vec![],
        };
        ctx.body(body);
        let mut edits = ctx.out;
        edits.sort_by_key(|e| (e.at, e.op, e.start, e.end));
        for e in edits {
            let line = line_of(src, e.at);
            let k = seen.entry((name.clone(), line, e.op)).or_insert(0);
            let index = *k;
            *k += 1;
            let under = conditions(tree.root_node(), e.at, src);
            let mut m = mutant(file, source, &name, line, index, e);
            m.under = under;
            mutants.push(m);
        }
    }
    Ok(FileMutants {
        file: file.to_string(),
        functions,
        mutants,
    })
}

fn mutant(file: &str, source: &str, function: &str, line: usize, index: usize, e: Edit) -> Mutant {
    let original = source[e.start..e.end].to_string();
    let mut m = Mutant {
        id: format!("{file}:{function}:{line}:{}:{index}", e.op),
        file: file.to_string(),
        function: function.to_string(),
        line,
        operator: e.op,
        index,
        description: String::new(),
        start: e.start,
        end: e.end,
        original,
        mutated: e.text,
        diff: String::new(),
        under: vec![],
    };
    let new = m.apply(source);
    m.description = e.what.unwrap_or_else(|| describe(source, &new, &m));
    m.diff = diff::unified(file, source, &new);
    m
}

/// The changed lines before and after, each squashed to one line.
fn describe(old: &str, new: &str, m: &Mutant) -> String {
    let ls = old[..m.start].rfind('\n').map_or(0, |i| i + 1);
    let le_old = old[m.end..].find('\n').map_or(old.len(), |i| m.end + i);
    let end_new = m.start + m.mutated.len();
    let le_new = new[end_new..].find('\n').map_or(new.len(), |i| end_new + i);
    format!(
        "{} → {}",
        squash(&old[ls..le_old], 100),
        squash(&new[ls..le_new], 100)
    )
}

/// The preprocessor conditions byte `at` is under, outermost first.
fn conditions(root: Node, at: usize, src: &[u8]) -> Vec<String> {
    let head = |n: Node| {
        let t = n.utf8_text(src).unwrap_or("");
        squash(t.lines().next().unwrap_or(""), 80)
    };
    let mut out = vec![];
    let Some(mut child) = root.descendant_for_byte_range(at, at) else {
        return out;
    };
    while let Some(p) = child.parent() {
        match p.kind() {
            "preproc_if" | "preproc_ifdef" | "preproc_elif" | "preproc_elifdef" => {
                let in_alternative = p.child_by_field_name("alternative") == Some(child);
                if !in_alternative {
                    out.push(head(p));
                } else if child.kind() == "preproc_else" {
                    out.push(format!("#else of {}", head(p)));
                } else {
                    // An #elif: it says its own condition; the ones before
                    // it are false.
                    out.push(format!("not {}", head(p)));
                }
            }
            _ => {}
        }
        child = p;
    }
    out.reverse();
    out
}

fn line_of(src: &[u8], byte: usize) -> usize {
    src[..byte].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Function definitions at the top level and inside preprocessor
/// conditionals (`#ifdef CONFIG_…` variants of one function), never inside
/// a parse error.
fn definitions<'t>(n: Node<'t>, out: &mut Vec<Node<'t>>) {
    let mut c = n.walk();
    for child in n.children(&mut c) {
        match child.kind() {
            "function_definition" => out.push(child),
            "preproc_if" | "preproc_ifdef" | "preproc_else" | "preproc_elif"
            | "preproc_elifdef" => definitions(child, out),
            _ => {}
        }
    }
}

/// The function's declarator: (its function_declarator, whether the return
/// type is a pointer).
fn function_declarator(def: Node) -> Option<(Node, bool)> {
    let mut d = def.child_by_field_name("declarator")?;
    let mut pointer = false;
    loop {
        match d.kind() {
            "function_declarator" => return Some((d, pointer)),
            "pointer_declarator" => {
                pointer = true;
                d = d.child_by_field_name("declarator")?;
            }
            "attributed_declarator" | "parenthesized_declarator" => d = d.named_child(0)?,
            _ => return None,
        }
    }
}

fn function_name(def: Node, src: &[u8]) -> Option<String> {
    let (f, _) = function_declarator(def)?;
    let name = f.child_by_field_name("declarator")?;
    let t = name.utf8_text(src).ok()?;
    (name.kind() == "identifier").then(|| t.to_string())
}

/// How this function exits early: `return;` if it returns void; the first
/// `-EXXX` it returns if it returns an int and negative errnos; else a
/// `goto` to its error or out label; else none.
fn early_exit(def: Node, body: Node, src: &[u8]) -> Option<EarlyExit> {
    let (_, pointer) = function_declarator(def)?;
    let ty = return_type(def, src)?;
    let ty = ty.as_str();
    if ty == "void" && !pointer {
        return Some(EarlyExit::Return);
    }
    let mut returned = vec![];
    let mut labels = vec![];
    scan(body, src, &mut returned, &mut labels);
    if !pointer && matches!(ty, "int" | "long") {
        if let Some(e) = returned.first() {
            return Some(EarlyExit::Errno(e.clone()));
        }
    }
    let rank = |l: &str| {
        let l = l.trim_start_matches('_');
        ["err", "fail", "abort", "bail"]
            .iter()
            .any(|p| l.starts_with(p))
            .then_some(0)
            .or_else(|| {
                [
                    "out", "unlock", "put", "free", "done", "exit", "cleanup", "restore",
                ]
                .iter()
                .any(|p| l.starts_with(p))
                .then_some(1)
            })
    };
    labels
        .into_iter()
        .filter_map(|(l, at)| rank(&l).map(|r| (r, at, l)))
        .min()
        .map(|(_, at, label)| EarlyExit::Goto { label, at })
}

/// The return type as written, without storage classes and attributes:
/// `static __always_inline int f(…)` (which tree-sitter reads as type
/// `__always_inline` and an ERROR) is `int`, `int __init f(void)` too.
fn return_type(def: Node, src: &[u8]) -> Option<String> {
    let d = def.child_by_field_name("declarator")?;
    let head = std::str::from_utf8(&src[def.start_byte()..d.start_byte()]).ok()?;
    let words: Vec<&str> = head
        .split_whitespace()
        .filter(|w| {
            !w.starts_with("__")
                && !matches!(
                    *w,
                    "static"
                        | "extern"
                        | "inline"
                        | "noinline"
                        | "notrace"
                        | "asmlinkage"
                        | "noinstr"
                )
        })
        .collect();
    Some(words.join(" "))
}

/// The `-EXXX` values returned (in order) and the labels, with their byte.
fn scan(n: Node, src: &[u8], returned: &mut Vec<String>, labels: &mut Vec<(String, usize)>) {
    if n.is_error() {
        return;
    }
    match n.kind() {
        "return_statement" => {
            if let Some(v) = n.named_child(0) {
                let t = v.utf8_text(src).unwrap_or("");
                if v.kind() == "unary_expression"
                    && t.starts_with('-')
                    && t[1..].trim_start().starts_with('E')
                    && super::ops::is_flag_name(t[1..].trim_start())
                {
                    returned.push(format!("-{}", t[1..].trim_start()));
                }
            }
        }
        "labeled_statement" => {
            if let Some(l) = n.child_by_field_name("label") {
                labels.push((l.utf8_text(src).unwrap_or("").to_string(), n.start_byte()));
            }
        }
        _ => {}
    }
    let mut c = n.walk();
    for child in n.children(&mut c) {
        scan(child, src, returned, labels);
    }
}
