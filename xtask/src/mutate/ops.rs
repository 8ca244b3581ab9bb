//! The mutation operators: what each one changes in a function's syntax
//! tree, as byte-range edits of the source.

use clap::ValueEnum;
use serde::Serialize;
use tree_sitter::Node;

/// A way to change the code under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum Operator {
    /// The condition of an if, while, do, for or `?:`, or one operand of its
    /// `&&`/`||` chain, negated (`!x` becomes `x`).
    NegateCond,
    /// `&&` becomes `||` and the other way round.
    SwapLogical,
    /// `<` and `<=` swapped, `>` and `>=` swapped.
    RelationalBoundary,
    /// A statement replaced by `;`: a call (lock/unlock, put/get, flush …),
    /// an assignment, a counter update, a goto, a break, a continue or a
    /// `return;`.
    DeleteStmt,
    /// The body of an if (or of its else) replaced by `{}`.
    DeleteIfBody,
    /// An integer literal, or an ALL_CAPS constant or flag given as an
    /// argument, in a bitwise operation or assigned, replaced by `0`.
    ZeroConst,
    /// The same constants replaced by their complement (`~X`; `~X` becomes `X`).
    ComplementConst,
    /// An early exit at the start of a block: `return;` in a void function,
    /// `return -EXXX;` in one that returns negative errnos, else `goto` its
    /// error/out label.
    EarlyReturn,
}

impl Operator {
    pub const ALL: [Operator; 8] = [
        Operator::NegateCond,
        Operator::SwapLogical,
        Operator::RelationalBoundary,
        Operator::DeleteStmt,
        Operator::DeleteIfBody,
        Operator::ZeroConst,
        Operator::ComplementConst,
        Operator::EarlyReturn,
    ];

    /// The name in ids, `--operator` and the JSON records.
    pub fn name(self) -> &'static str {
        match self {
            Operator::NegateCond => "negate-cond",
            Operator::SwapLogical => "swap-logical",
            Operator::RelationalBoundary => "relational-boundary",
            Operator::DeleteStmt => "delete-stmt",
            Operator::DeleteIfBody => "delete-if-body",
            Operator::ZeroConst => "zero-const",
            Operator::ComplementConst => "complement-const",
            Operator::EarlyReturn => "early-return",
        }
    }
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One change of the source: bytes `start..end` become `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub op: Operator,
    pub start: usize,
    pub end: usize,
    pub text: String,
    /// The byte whose line the mutant is reported on.
    pub at: usize,
    /// A description when the changed lines alone would not say it well.
    pub what: Option<String>,
}

/// How a function ends early, decided once per function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EarlyExit {
    /// `return;` (a void function).
    Return,
    /// `return -EXXX;` (a function that already returns negative errnos).
    Errno(String),
    /// `goto LABEL;`, valid only before the label (a forward jump).
    Goto { label: String, at: usize },
}

impl EarlyExit {
    pub fn statement(&self) -> String {
        match self {
            EarlyExit::Return => "return;".into(),
            EarlyExit::Errno(e) => format!("return {e};"),
            EarlyExit::Goto { label, .. } => format!("goto {label};"),
        }
    }
}

/// The operators' view of one function.
pub struct Ctx<'a> {
    pub src: &'a [u8],
    pub exit: Option<EarlyExit>,
    /// The function returns a pointer: its `return 0;` is a null pointer,
    /// which no complement replaces.
    pub returns_pointer: bool,
    pub out: Vec<Edit>,
}

impl<'a> Ctx<'a> {
    fn text(&self, n: Node) -> &'a str {
        n.utf8_text(self.src).unwrap_or("")
    }

    fn push(&mut self, op: Operator, n: Node, text: String) {
        self.push_range(op, n.start_byte(), n.end_byte(), text, None);
    }

    fn push_range(
        &mut self,
        op: Operator,
        start: usize,
        end: usize,
        text: String,
        what: Option<String>,
    ) {
        if self.src.get(start..end) == Some(text.as_bytes()) {
            return; // the same text: no mutant
        }
        let e = Edit {
            op,
            start,
            end,
            text,
            at: start,
            what,
        };
        if !self.out.contains(&e) {
            self.out.push(e);
        }
    }

    /// Walk a function body: every operator at every node it applies to.
    pub fn body(&mut self, body: Node) {
        self.early_exits(body);
        self.walk(body);
    }

    fn walk(&mut self, n: Node) {
        // A statement tree-sitter could not read whole is most likely a
        // macro (`list_for_each_entry(pos, head, member) {`, whose
        // arguments may be names, not values): left alone.
        if skipped(n)
            || (n.kind() == "expression_statement" && n.has_error())
            || compile_time_assertion(n, self.src)
        {
            return;
        }
        self.node(n);
        // A preprocessor condition (`#if A && B`) chooses the configuration,
        // not the code's behaviour: only its branches are walked.
        let condition = match n.kind() {
            "preproc_if" | "preproc_elif" => n.child_by_field_name("condition"),
            _ => None,
        };
        let mut c = n.walk();
        for child in n.children(&mut c) {
            if Some(child) != condition {
                self.walk(child);
            }
        }
    }

    fn node(&mut self, n: Node) {
        match n.kind() {
            "if_statement" => {
                if let Some(c) = n.child_by_field_name("condition") {
                    self.negate_condition(c);
                }
                if let Some(body) = n.child_by_field_name("consequence") {
                    self.delete_if_body(body);
                }
                if let Some(alt) = n.child_by_field_name("alternative") {
                    if let Some(body) = alt.named_child(0) {
                        if body.kind() != "if_statement" {
                            self.delete_if_body(body);
                        }
                    }
                }
            }
            "while_statement" | "do_statement" | "for_statement" | "conditional_expression" => {
                if let Some(c) = n.child_by_field_name("condition") {
                    self.negate_condition(c);
                }
            }
            "binary_expression" => self.binary(n),
            "expression_statement"
            | "goto_statement"
            | "break_statement"
            | "continue_statement" => self.delete_statement(n),
            // `return;` (a void function's early exit), never a value's.
            "return_statement" if n.named_child_count() == 0 => self.delete_statement(n),
            "number_literal" => self.integer_literal(n),
            "identifier" => self.flag(n),
            _ => {}
        }
    }

    /// `cond` is the condition node of a statement (parenthesized for if,
    /// while and do) or of `?:`/for (bare).
    fn negate_condition(&mut self, cond: Node) {
        if cond.has_error() {
            return;
        }
        let (inner, in_parens) = if cond.kind() == "parenthesized_expression" {
            match cond.named_child(0) {
                Some(i) => (i, true),
                None => return,
            }
        } else {
            (cond, false)
        };
        // `while (0)`, `while (1)`: negated, a loop that never ends or never runs.
        if matches!(
            inner.kind(),
            "comma_expression" | "compound_statement" | "number_literal" | "true" | "false"
        ) {
            return;
        }
        let whole = self.negated(inner, in_parens);
        self.push(Operator::NegateCond, inner, whole);
        let mut leaves = vec![];
        logical_leaves(inner, self.src, &mut leaves);
        if leaves.len() > 1 {
            for leaf in leaves {
                let t = self.negated(leaf, false);
                self.push(Operator::NegateCond, leaf, t);
            }
        }
    }

    /// `!x` → `x`; `x` → `!x`, or `!(x)` when x is not a primary expression.
    /// `bare`: the text stands alone in parentheses, so `!(x)` becomes `x`.
    fn negated(&self, n: Node, bare: bool) -> String {
        if n.kind() == "unary_expression" && op_of(n, self.src) == Some("!") {
            if let Some(arg) = n.child_by_field_name("argument") {
                if bare && arg.kind() == "parenthesized_expression" {
                    if let Some(i) = arg.named_child(0) {
                        return self.text(i).to_string();
                    }
                }
                return self.text(arg).to_string();
            }
        }
        let t = self.text(n);
        match n.kind() {
            "identifier"
            | "call_expression"
            | "field_expression"
            | "subscript_expression"
            | "parenthesized_expression"
            | "pointer_expression" => format!("!{t}"),
            _ => format!("!({t})"),
        }
    }

    fn binary(&mut self, n: Node) {
        let Some(op) = n.child_by_field_name("operator") else {
            return;
        };
        let (kind, swapped) = match self.text(op) {
            "&&" => (Operator::SwapLogical, "||"),
            "||" => (Operator::SwapLogical, "&&"),
            "<" => (Operator::RelationalBoundary, "<="),
            "<=" => (Operator::RelationalBoundary, "<"),
            ">" => (Operator::RelationalBoundary, ">="),
            ">=" => (Operator::RelationalBoundary, ">"),
            _ => return,
        };
        if n.has_error() {
            return;
        }
        let what = format!(
            "`{}` → `{swapped}` in `{}`",
            self.text(op),
            squash(&code(n, self.src), 80)
        );
        self.push_range(
            kind,
            op.start_byte(),
            op.end_byte(),
            swapped.to_string(),
            Some(what),
        );
    }

    /// A statement of a block (or a loop's body) becomes `;`. An if's own
    /// body is `delete-if-body`'s.
    fn delete_statement(&mut self, n: Node) {
        if n.has_error() || self.text(n) == ";" {
            return;
        }
        let Some(parent) = n.parent() else { return };
        if in_statement_expression(parent) {
            return; // its last statement is its value
        }
        let in_block = matches!(
            parent.kind(),
            "compound_statement"
                | "case_statement"
                | "labeled_statement"
                | "preproc_if"
                | "preproc_ifdef"
                | "preproc_else"
                | "preproc_elif"
        ) || (matches!(
            parent.kind(),
            "while_statement" | "for_statement" | "do_statement"
        ) && parent.child_by_field_name("body") == Some(n));
        if in_block {
            self.push(Operator::DeleteStmt, n, ";".into());
        }
    }

    fn delete_if_body(&mut self, body: Node) {
        if body.has_error() || body.is_missing() {
            return;
        }
        if (body.kind() == "compound_statement" && body.named_child_count() == 0)
            || self.text(body) == ";"
        {
            return; // nothing to delete
        }
        // `if (cond) <body>` or `else <body>`, before → after.
        let head = body
            .parent()
            .map(|p| {
                let s = &self.src[p.start_byte()..body.start_byte()];
                squash(&String::from_utf8_lossy(s), 70)
            })
            .unwrap_or_default();
        let what = format!("{head} {} → {head} {{}}", squash(&code(body, self.src), 60));
        self.push_range(
            Operator::DeleteIfBody,
            body.start_byte(),
            body.end_byte(),
            "{}".into(),
            Some(what),
        );
    }

    fn integer_literal(&mut self, n: Node) {
        let t = self.text(n);
        let lower = t.to_ascii_lowercase();
        let hex = lower.starts_with("0x");
        if lower.contains('.') || (!hex && (lower.contains('e') || lower.contains('p'))) {
            return; // a floating constant
        }
        if in_constant_only_context(n)
            || (self.returns_pointer && n.parent().is_some_and(|p| p.kind() == "return_statement"))
        {
            return;
        }
        let digits = lower.trim_end_matches(['u', 'l']);
        let zero = digits
            .trim_start_matches("0x")
            .trim_start_matches("0b")
            .chars()
            .all(|c| c == '0');
        if !zero {
            self.push(Operator::ZeroConst, n, "0".into());
        }
        self.complement(n);
    }

    /// An ALL_CAPS identifier used as a constant or flag: an argument, an
    /// operand of `|`, `&`, `^` or `~`, or the value assigned.
    fn flag(&mut self, n: Node) {
        let t = self.text(n);
        if !is_flag_name(t) || in_constant_only_context(n) {
            return;
        }
        let Some(p) = n.parent() else { return };
        let used = match p.kind() {
            "argument_list" => true,
            "binary_expression" => matches!(op_of(p, self.src), Some("|" | "&" | "^")),
            "unary_expression" => op_of(p, self.src) == Some("~"),
            "assignment_expression" => {
                p.child_by_field_name("right") == Some(n)
                    && matches!(op_of(p, self.src), Some("=" | "|=" | "&=" | "^="))
            }
            _ => false,
        };
        if !used {
            return;
        }
        self.push(Operator::ZeroConst, n, "0".into());
        self.complement(n);
    }

    /// `X` → `~X`, and `~X` (the parent) → `X`.
    fn complement(&mut self, n: Node) {
        match n.parent() {
            Some(p) if p.kind() == "unary_expression" && op_of(p, self.src) == Some("~") => {
                let t = self.text(n).to_string();
                self.push(Operator::ComplementConst, p, t);
            }
            _ => {
                let t = format!("~{}", self.text(n));
                self.push(Operator::ComplementConst, n, t);
            }
        }
    }

    /// An early exit before the first statement (after the declarations)
    /// of every block of the body.
    fn early_exits(&mut self, body: Node) {
        let Some(exit) = self.exit.clone() else {
            return;
        };
        let stmt = exit.statement();
        let mut blocks = vec![];
        blocks_of(body, &mut blocks);
        for b in blocks {
            // A switch's body starts with a case label; a statement
            // expression's last statement is its value.
            if b.parent().is_some_and(|p| p.kind() == "switch_statement")
                || in_statement_expression(b)
            {
                continue;
            }
            let mut c = b.walk();
            let first = b.named_children(&mut c).find(|s| {
                !matches!(s.kind(), "declaration" | "comment" | "ERROR")
                    && !s.kind().starts_with("preproc_")
            });
            let Some(first) = first else { continue };
            if self.text(first) == stmt {
                continue;
            }
            if let EarlyExit::Goto { at, .. } = exit {
                if first.start_byte() >= at {
                    continue; // a goto backwards could loop for ever
                }
            }
            let start = first.start_byte();
            let line_start = self.src[..start]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let indent = &self.src[line_start..start];
            let what = Some(format!(
                "insert `{stmt}` before `{}`",
                squash(first_line(&code(first, self.src)), 70)
            ));
            let own_line = indent.iter().all(|b| *b == b' ' || *b == b'\t');
            // A statement tree-sitter could not read whole (a macro such as
            // `list_for_each_entry(…) {`) gets a line of its own before it,
            // never a change inside its line.
            if first.has_error() && !own_line {
                continue;
            }
            let (at, text) = if own_line {
                let indent = String::from_utf8_lossy(indent);
                (line_start, format!("{indent}{stmt}\n"))
            } else {
                (start, format!("{stmt} "))
            };
            let e = Edit {
                op: Operator::EarlyReturn,
                start: at,
                end: at,
                text,
                at: start,
                what,
            };
            if !self.out.contains(&e) {
                self.out.push(e);
            }
        }
    }
}

/// Subtrees no operator enters: parse errors, comments, strings,
/// preprocessor definitions and directives, declarations of locals.
fn skipped(n: Node) -> bool {
    n.is_error()
        || n.is_missing()
        || matches!(
            n.kind(),
            "comment"
                | "string_literal"
                | "concatenated_string"
                | "char_literal"
                | "system_lib_string"
                | "preproc_def"
                | "preproc_function_def"
                | "preproc_call"
                | "preproc_include"
                | "declaration"
                | "attribute_specifier"
                | "attribute_declaration"
                | "gnu_asm_expression"
                | "sizeof_expression"
                | "alignof_expression"
                | "offsetof_expression"
        )
}

/// `BUILD_BUG_ON(…)`, `static_assert(…)` (or its statement): checked by
/// the compiler, so changed it either stops the build or changes nothing.
fn compile_time_assertion(n: Node, src: &[u8]) -> bool {
    let call = match n.kind() {
        "expression_statement" => match n.named_child(0) {
            Some(c) => c,
            None => return false,
        },
        _ => n,
    };
    if call.kind() != "call_expression" {
        return false;
    }
    let name = call
        .child_by_field_name("function")
        .and_then(|f| f.utf8_text(src).ok())
        .unwrap_or("");
    name.starts_with("BUILD_BUG") || matches!(name, "static_assert" | "_Static_assert")
}

/// `block` is the body of a GNU statement expression `({ … })`.
fn in_statement_expression(block: Node) -> bool {
    block.kind() == "compound_statement"
        && block
            .parent()
            .is_some_and(|p| p.kind() == "parenthesized_expression")
}

/// Inside a `case` label's value, where a changed constant could repeat
/// another case's and stop the compile, or in a preprocessor condition.
fn in_constant_only_context(n: Node) -> bool {
    let mut cur = n;
    while let Some(p) = cur.parent() {
        match p.kind() {
            "case_statement" if p.child_by_field_name("value") == Some(cur) => return true,
            "preproc_if" | "preproc_elif" if p.child_by_field_name("condition") == Some(cur) => {
                return true
            }
            "field_declaration" | "enumerator" | "bitfield_clause" | "array_declarator" => {
                return true
            }
            "function_definition" => return false,
            _ => {}
        }
        cur = p;
    }
    false
}

/// `MIGRATE_PFN_MIGRATE`, `HPAGE_PMD_NR`, `__GFP_ZERO`: an ALL_CAPS name
/// with a letter, not NULL, not a compiler name (`__LINE__`) and not a
/// config symbol (IS_ENABLED() pastes it).
pub fn is_flag_name(t: &str) -> bool {
    let name = t.trim_start_matches('_');
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !(t.starts_with("__") && t.ends_with("__"))
        && t != "NULL"
        && !t.starts_with("CONFIG_")
}

fn op_of<'a>(n: Node, src: &'a [u8]) -> Option<&'a str> {
    n.child_by_field_name("operator")
        .and_then(|o| o.utf8_text(src).ok())
}

/// The operands of an `&&`/`||` chain, through parentheses; the node
/// itself when it is not one.
fn logical_leaves<'t>(n: Node<'t>, src: &[u8], out: &mut Vec<Node<'t>>) {
    match n.kind() {
        "binary_expression" if matches!(op_of(n, src), Some("&&" | "||")) => {
            for f in ["left", "right"] {
                if let Some(c) = n.child_by_field_name(f) {
                    logical_leaves(c, src, out);
                }
            }
        }
        "parenthesized_expression"
            if n.named_child(0).is_some_and(|i| {
                i.kind() == "binary_expression" && matches!(op_of(i, src), Some("&&" | "||"))
            }) =>
        {
            logical_leaves(n.named_child(0).unwrap(), src, out)
        }
        _ => out.push(n),
    }
}

/// Every compound statement of a body, the body first, in source order
/// (not inside errors, declarations or macro definitions).
fn blocks_of<'t>(n: Node<'t>, out: &mut Vec<Node<'t>>) {
    if skipped(n) {
        return;
    }
    if n.kind() == "compound_statement" {
        out.push(n);
    }
    let mut c = n.walk();
    for child in n.children(&mut c) {
        blocks_of(child, out);
    }
}

/// Whitespace runs collapsed to one space; cut to `max` characters.
pub fn squash(s: &str, max: usize) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= max {
        return one;
    }
    let head: String = one.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", head.trim_end())
}

/// The text of `n` without its comments.
fn code(n: Node, src: &[u8]) -> String {
    fn cut(n: Node, out: &mut Vec<(usize, usize)>) {
        if n.kind() == "comment" {
            out.push((n.start_byte(), n.end_byte()));
            return;
        }
        let mut c = n.walk();
        for child in n.children(&mut c) {
            cut(child, out);
        }
    }
    let mut comments = vec![];
    cut(n, &mut comments);
    let mut text = Vec::new();
    let mut at = n.start_byte();
    for (s, e) in comments {
        text.extend_from_slice(&src[at..s]);
        at = e;
    }
    text.extend_from_slice(&src[at..n.end_byte()]);
    String::from_utf8_lossy(&text).into_owned()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}
