//! Mutant schemata: every pending mutant of a file woven into one source,
//! each behind a test of a number the kernel command line gives
//! (`hmmlab.mutant=N`), so that one link serves them all and a mutant
//! costs a boot, not a link.
//!
//! Each change becomes a choice made at run time, of the same shape as the
//! change:
//! - an expression (a condition, a constant, a `&&` or `<` and its operands):
//!   `(M(n) ? (mutated) : (original))`, nested for several mutants of one
//!   expression; a negated condition compares truth values (`!!(original)`);
//! - a statement (a deleted statement, an emptied `if` body):
//!   `{ if (M(n)) { mutated } else { original } }`;
//! - an inserted early exit: `if (M(n)) return …; ` before the statement.
//!
//! The original text keeps its line breaks and what is woven in adds none,
//! so every line keeps its number (the compiler's messages and the
//! kernel's `WARN_ON` lines say the same lines as the source). Mutants
//! inside others' text are woven into the original branch of the outer
//! one: only one number is ever active. A mutant whose change partly
//! overlaps another's, or which no longer compiles woven (a constant the
//! compiler must know), is left out and linked on its own as before.

use std::collections::BTreeSet;

use anyhow::Result;
use tree_sitter::Tree;

use super::gen::Mutant;
use super::ops::Operator;

/// The kernel parameter that picks the active mutant (0: none).
pub const PARAM: &str = "hmmlab.mutant";

/// What the kernel prints at boot when `PARAM` is given: the run checks
/// it, so a kernel that did not honour the number gives no verdict.
pub fn announcement(n: u32) -> String {
    format!("hmmlab: mutant {n} active")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// An expression: a choice by `?:`.
    Expr { truth: bool },
    /// A statement: a choice by `if`/`else`.
    Stmt,
    /// An early exit inserted before a statement.
    Insert,
}

#[derive(Debug, Clone)]
struct Item {
    start: usize,
    end: usize,
    shape: Shape,
    /// (number, replacement text of `start..end`).
    alts: Vec<(u32, String)>,
}

impl Item {
    fn contains(&self, o: &Item) -> bool {
        if self.shape == Shape::Insert {
            return false;
        }
        if o.shape == Shape::Insert {
            return self.start < o.start && o.start < self.end;
        }
        self.start <= o.start && o.end <= self.end
    }
}

/// The woven source and who is in it.
#[derive(Debug, Clone)]
pub struct Woven {
    /// The file's text with every woven mutant behind its number.
    pub text: String,
    /// (mutant id, its number), in the order given.
    pub numbers: Vec<(String, u32)>,
    /// Mutants left out, with why.
    pub left_out: Vec<(String, String)>,
    /// Each woven mutant's first and last line (1-based), by number.
    spans: Vec<(u32, usize, usize)>,
}

impl Woven {
    pub fn number(&self, id: &str) -> Option<u32> {
        self.numbers.iter().find(|(i, _)| i == id).map(|(_, n)| *n)
    }

    /// The numbers of the innermost woven changes over `line`: those to
    /// leave out when the compiler rejects that line.
    pub fn at_line(&self, line: usize) -> Vec<u32> {
        let over: Vec<&(u32, usize, usize)> = self
            .spans
            .iter()
            .filter(|(_, a, b)| *a <= line && line <= *b)
            .collect();
        let Some(least) = over.iter().map(|(_, a, b)| b - a).min() else {
            return vec![];
        };
        over.iter()
            .filter(|(_, a, b)| b - a == least)
            .map(|(n, _, _)| *n)
            .collect()
    }
}

/// How a test compares with the active number. `M(n)` for the kernel:
/// `__builtin_expect`, which needs no header.
pub fn test(n: u32) -> String {
    format!("__builtin_expect(hmmlab_mutant == {n}, 0)")
}

/// Weave `mutants` (of one file, `source`, parsed as `tree`) with the
/// numbers 1, 2, … in the order given; `skip` are ids never to weave.
pub fn weave(
    source: &str,
    tree: &Tree,
    mutants: &[&Mutant],
    skip: &BTreeSet<String>,
) -> Result<Woven> {
    let mut left_out = vec![];
    // Each mutant's change as a choice, in the order given; those that
    // overlap an earlier one without nesting are left out.
    let mut changes: Vec<(String, Item)> = vec![];
    for m in mutants {
        if skip.contains(&m.id) {
            left_out.push((m.id.clone(), "does not compile woven".to_string()));
            continue;
        }
        let (start, end, shape, alt) = match item_of(source, tree, m) {
            Ok(x) => x,
            Err(why) => {
                left_out.push((m.id.clone(), why));
                continue;
            }
        };
        let it = Item {
            start,
            end,
            shape,
            alts: vec![(0, alt)],
        };
        let clash = changes.iter().any(|(_, o)| {
            let overlap = it.start < o.end && o.start < it.end;
            let same = (o.start, o.end) == (it.start, it.end);
            overlap && !same && !o.contains(&it) && !it.contains(o)
        });
        if clash {
            left_out.push((m.id.clone(), "overlaps another mutant's change".into()));
            continue;
        }
        changes.push((m.id.clone(), it));
    }
    // Numbered 1, 2, …; the mutants of one range and shape share a choice.
    let mut items: Vec<Item> = vec![];
    let mut numbers = vec![];
    let mut owner: Vec<(u32, usize)> = vec![];
    for (k, (id, mut it)) in changes.into_iter().enumerate() {
        let n = k as u32 + 1;
        let alt = it.alts.pop().map(|(_, a)| a).unwrap_or_default();
        let at = items
            .iter()
            .position(|i| i.start == it.start && i.end == it.end && i.shape == it.shape);
        let idx = match at {
            Some(i) => {
                items[i].alts.push((n, alt));
                i
            }
            None => {
                it.alts = vec![(n, alt)];
                items.push(it);
                items.len() - 1
            }
        };
        owner.push((n, idx));
        numbers.push((id, n));
    }
    // Outer before inner; an insertion before the change that starts
    // where it is inserted.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| {
        let it = &items[i];
        (
            it.start,
            it.shape != Shape::Insert,
            std::cmp::Reverse(it.end),
            i,
        )
    });
    let mut text = String::with_capacity(source.len() * 2);
    let mut spans = vec![];
    render(
        source,
        &items,
        &order,
        0,
        source.len(),
        &mut text,
        &mut spans,
    );
    let spans = owner
        .iter()
        .filter_map(|(n, idx)| {
            spans
                .iter()
                .find(|(i, _, _)| i == idx)
                .map(|(_, a, b)| (*n, *a, *b))
        })
        .collect();
    Ok(Woven {
        text,
        numbers,
        left_out,
        spans,
    })
}

/// The range a mutant's choice covers, its shape, and that range's text
/// in the mutant.
fn item_of(
    source: &str,
    tree: &Tree,
    m: &Mutant,
) -> std::result::Result<(usize, usize, Shape, String), String> {
    match m.operator {
        Operator::NegateCond => Ok((
            m.start,
            m.end,
            Shape::Expr { truth: true },
            m.mutated.clone(),
        )),
        Operator::ZeroConst | Operator::ComplementConst => Ok((
            m.start,
            m.end,
            Shape::Expr { truth: false },
            m.mutated.clone(),
        )),
        Operator::SwapLogical | Operator::RelationalBoundary => {
            // The change is the operator's token: the choice is over the
            // whole binary expression.
            let tok = tree
                .root_node()
                .descendant_for_byte_range(m.start, m.end)
                .ok_or("no syntax node at the change")?;
            let bin = tok
                .parent()
                .filter(|p| {
                    p.kind() == "binary_expression"
                        && p.child_by_field_name("operator")
                            .is_some_and(|o| o.start_byte() == m.start && o.end_byte() == m.end)
                })
                .ok_or("the operator is not a binary expression's")?;
            // `&&` and `||` bind differently: the mutant's text parses
            // again, so `a && b && c` with its first `&&` swapped is
            // `a || (b && c)`, not `(a || b) && c`. The choice is over the
            // whole unparenthesised chain of `&&`/`||` around it, whose
            // neighbours bind more loosely or are parentheses.
            let mut top = bin;
            if m.operator == Operator::SwapLogical {
                while let Some(p) = top.parent() {
                    let logical = p.kind() == "binary_expression"
                        && p.child_by_field_name("operator")
                            .is_some_and(|o| matches!(o.kind(), "&&" | "||"));
                    if !logical {
                        break;
                    }
                    top = p;
                }
            }
            let (s, e) = (top.start_byte(), top.end_byte());
            let alt = format!("{}{}{}", &source[s..m.start], m.mutated, &source[m.end..e]);
            Ok((s, e, Shape::Expr { truth: false }, alt))
        }
        Operator::DeleteStmt | Operator::DeleteIfBody => {
            Ok((m.start, m.end, Shape::Stmt, m.mutated.clone()))
        }
        Operator::EarlyReturn => {
            if m.start != m.end {
                return Err("an early exit that replaces text".into());
            }
            Ok((m.start, m.end, Shape::Insert, m.mutated.trim().to_string()))
        }
    }
}

/// `source[lo..hi]` with the changes `tops` (indices of `items`, sorted,
/// not nested in each other) and those nested in them woven in. Records
/// (item, first line, last line) of each.
fn render(
    source: &str,
    items: &[Item],
    tops: &[usize],
    lo: usize,
    hi: usize,
    out: &mut String,
    spans: &mut Vec<(usize, usize, usize)>,
) {
    let mut at = lo;
    let mut k = 0;
    while k < tops.len() {
        let i = tops[k];
        let it = &items[i];
        // The changes inside this one, until the next top-level one.
        let mut inner = vec![];
        let mut j = k + 1;
        while j < tops.len() && it.contains(&items[tops[j]]) {
            inner.push(tops[j]);
            j += 1;
        }
        out.push_str(&source[at..it.start]);
        let first = line_at(source, it.start);
        let last = line_at(source, it.end.max(it.start + 1) - 1).max(first);
        spans.push((i, first, last));
        let mut orig = String::new();
        // Children of this item: the first level among `inner`.
        render(source, items, &inner, it.start, it.end, &mut orig, spans);
        match it.shape {
            Shape::Expr { truth } => {
                out.push('(');
                for (n, alt) in &it.alts {
                    out.push_str(&format!("{} ? ({alt}) : ", test(*n)));
                }
                if truth {
                    out.push_str(&format!("!!({orig}))"));
                } else {
                    out.push_str(&format!("({orig}))"));
                }
            }
            Shape::Stmt => {
                out.push_str("{ ");
                for (n, alt) in &it.alts {
                    out.push_str(&format!("if ({}) {{ {alt} }} else ", test(*n)));
                }
                out.push_str(&format!("{{ {orig} }} }}"));
            }
            Shape::Insert => {
                for (n, alt) in &it.alts {
                    out.push_str(&format!("if ({}) {{ {alt} }} ", test(*n)));
                }
            }
        }
        at = it.end;
        k = j;
    }
    out.push_str(&source[at..hi]);
}

/// The 1-based line of `byte`.
fn line_at(source: &str, byte: usize) -> usize {
    source.as_bytes()[..byte.min(source.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The woven text as a kernel file: the number, its parameter, and the
/// boot line saying which one is active. Lines keep their numbers: the
/// declaration shares the first line, the rest follows the last.
pub fn kernel_text(w: &Woven) -> String {
    let count = w.numbers.len();
    let mut s = String::with_capacity(w.text.len() + 1024);
    s.push_str("static int hmmlab_mutant; ");
    s.push_str(&w.text);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s.push_str(&format!(
        r#"
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/printk.h>
/* hmmlab: {count} mutants woven in; {param}=N picks one. */
static int __init hmmlab_mutant_setup(char *s)
{{
	if (kstrtoint(s, 10, &hmmlab_mutant))
		return -EINVAL;
	pr_warn("{announce} ({count} woven)\n", hmmlab_mutant);
	return 0;
}}
early_param("{param}", hmmlab_mutant_setup);
"#,
        param = PARAM,
        announce = announcement(0).replace(" 0 ", " %d "),
    ));
    s
}

/// The 1-based lines the compiler rejected in `file` (its `file:line:col:
/// error` lines and the notes that point into it).
pub fn rejected_lines(stderr: &str, file: &str) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for l in stderr.lines() {
        if !(l.contains(": error:") || l.contains(": note: in expansion of macro")) {
            continue;
        }
        let Some(at) = l.find(&format!("{file}:")) else {
            continue;
        };
        let rest = &l[at + file.len() + 1..];
        if let Some(n) = rest.split(':').next().and_then(|x| x.parse().ok()) {
            out.insert(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutate::gen;
    use std::process::Command;

    const C: &str = r#"// a test
#include <stdio.h>
#define FLAG 4
static int calls;
static void note(void) { calls++; }
static int f(int a, int b, int *p)
{
	int r = 0;

	if (!p)
		return -22;
	if (a < b && b > 0 && (a & 1 || b < 9)) {
		r = a | FLAG;
		note();
	} else {
		r = b >= 3 ? 7 : 1;
	}
	while (a-- > 0)
		r += 2;
	*p = r;
	return 0;
}
int main(int argc, char **argv)
{
	int out = 0, i, sum = 0;
	static int v[][2] = {{1, 2}, {0, 5}, {3, 1}, {-2, -1}, {4, 4}, {2, 10}};
	for (i = 0; i < 6; i++) {
		int e = f(v[i][0], v[i][1], &out);
		sum = sum * 31 + e * 7 + out;
		printf("%d %d %d\n", e, out, calls);
	}
	(void)sum;
	return 0;
}
"#;

    fn run(text: &str, arg: &str, dir: &std::path::Path, name: &str) -> String {
        let src = dir.join(format!("{name}.c"));
        let exe = dir.join(name);
        std::fs::write(&src, text).unwrap();
        let st = Command::new("cc")
            .args(["-O1", "-w", "-o"])
            .arg(&exe)
            .arg(&src)
            .status()
            .unwrap();
        assert!(st.success(), "{name} does not compile:\n{text}");
        let out = Command::new(&exe).arg(arg).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A user-space program: every mutant woven and picked by argv[1]
    /// prints what the same mutant applied alone prints.
    #[test]
    fn each_woven_mutant_behaves_as_the_mutant_alone_and_zero_as_the_original() {
        let fm = gen::mutants("t.c", C).unwrap();
        let f: Vec<&Mutant> = fm.mutants.iter().filter(|m| m.function == "f").collect();
        let ops: BTreeSet<Operator> = f.iter().map(|m| m.operator).collect();
        assert!(ops.len() >= 7, "the test covers too few operators: {ops:?}");
        let tree = gen::parse(C).unwrap();
        let w = weave(C, &tree, &f, &BTreeSet::new()).unwrap();
        assert!(w.left_out.is_empty(), "{:?}", w.left_out);
        assert_eq!(w.numbers.len(), f.len());
        assert_eq!(
            w.text.lines().count(),
            C.lines().count(),
            "weaving moved lines"
        );
        // The program reads the number from argv[1].
        let prog = format!("static int hmmlab_mutant; {}", w.text).replace(
            "int out = 0, i, sum = 0;",
            "int out = 0, i, sum = 0; hmmlab_mutant = argc > 1 ? atoi(argv[1]) : 0;",
        );
        let prog = format!("#include <stdlib.h>\n{prog}");
        let dir = tempfile::tempdir().unwrap();
        let original = run(C, "", dir.path(), "orig");
        assert_eq!(run(&prog, "0", dir.path(), "woven"), original);
        let woven_exe = dir.path().join("woven");
        let mut differ = 0;
        for (m, (id, n)) in f.iter().zip(&w.numbers) {
            assert_eq!(&m.id, id);
            let alone = run(&m.apply(C), "", dir.path(), "alone");
            let out = Command::new(&woven_exe)
                .arg(n.to_string())
                .output()
                .unwrap();
            let woven = String::from_utf8_lossy(&out.stdout);
            assert_eq!(woven, alone, "mutant {n} {id}: woven and alone differ");
            differ += usize::from(alone != original);
        }
        assert!(
            differ * 2 > f.len(),
            "most mutants should change the output"
        );
    }

    #[test]
    fn the_compiler_s_lines_pick_the_innermost_change() {
        let fm = gen::mutants("t.c", C).unwrap();
        let f: Vec<&Mutant> = fm.mutants.iter().filter(|m| m.function == "f").collect();
        let tree = gen::parse(C).unwrap();
        let w = weave(C, &tree, &f, &BTreeSet::new()).unwrap();
        // Line 13 is `r = a | FLAG;`: its constant and its statement.
        let at = w.at_line(13);
        assert!(!at.is_empty());
        for n in &at {
            let id = &w.numbers.iter().find(|(_, x)| x == n).unwrap().0;
            assert!(id.contains(":13:"), "{id}");
        }
        let stderr = "x/t.c:13:9: error: bad\nx/t.c:20:1: warning: w\n";
        assert_eq!(rejected_lines(stderr, "t.c"), BTreeSet::from([13]));
        let skip: BTreeSet<String> = at
            .iter()
            .map(|n| w.numbers.iter().find(|(_, x)| x == n).unwrap().0.clone())
            .collect();
        let w2 = weave(C, &tree, &f, &skip).unwrap();
        assert_eq!(w2.numbers.len(), f.len() - skip.len());
        assert_eq!(w2.left_out.len(), skip.len());
        let k = kernel_text(&w2);
        assert!(k.starts_with("static int hmmlab_mutant; // a test"));
        assert!(k.contains("early_param(\"hmmlab.mutant\""));
        assert!(k.contains("pr_warn(\"hmmlab: mutant %d active ("));
    }
}
