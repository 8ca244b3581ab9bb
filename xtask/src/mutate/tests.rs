//! The operators on small C snippets: exact mutated text.

use super::gen::{error_count, mutants, parse};
use super::ops::Operator;

/// The whole file after each mutant of `op`, in id order.
fn mutated(src: &str, op: Operator) -> Vec<String> {
    mutants("t.c", src)
        .unwrap()
        .mutants
        .iter()
        .filter(|m| m.operator == op)
        .map(|m| m.apply(src))
        .collect()
}

/// `src` with the first `from` replaced by `to`.
fn with(src: &str, from: &str, to: &str) -> String {
    assert!(src.contains(from), "{from:?} not in the snippet");
    src.replacen(from, to, 1)
}

const LOOP: &str = "\
void f(struct s *p, int n)
{
	int i = 0;

	if (!g(p))
		h(p);
	while (n > 0 && p->x)
		n--;
}
";

#[test]
fn mutate_negate_cond_flips_a_negation_and_each_operand_of_a_chain() {
    assert_eq!(
        mutated(LOOP, Operator::NegateCond),
        vec![
            with(LOOP, "if (!g(p))", "if (g(p))"),
            with(LOOP, "while (n > 0 && p->x)", "while (!(n > 0) && p->x)"),
            with(LOOP, "while (n > 0 && p->x)", "while (!(n > 0 && p->x))"),
            with(LOOP, "while (n > 0 && p->x)", "while (n > 0 && !p->x)"),
        ]
    );
}

#[test]
fn mutate_negate_cond_in_for_and_conditional_expressions() {
    let src = "\
int f(int a, int b)
{
	for (a = 0; a < b; a++)
		g(a ? b : 1);
	if (!(a & b))
		return 1;
	return 0;
}
";
    assert_eq!(
        mutated(src, Operator::NegateCond),
        vec![
            with(src, "a < b;", "!(a < b);"),
            with(src, "g(a ? b", "g(!a ? b"),
            with(src, "if (!(a & b))", "if (a & b)"),
        ]
    );
}

#[test]
fn mutate_swap_logical_and_relational_boundary() {
    assert_eq!(
        mutated(LOOP, Operator::SwapLogical),
        vec![with(LOOP, "n > 0 && p->x", "n > 0 || p->x")]
    );
    assert_eq!(
        mutated(LOOP, Operator::RelationalBoundary),
        vec![with(LOOP, "n > 0", "n >= 0")]
    );
    let src = "int f(int a, int b)\n{\n\treturn a <= b || a >= 2 * b || a < 1;\n}\n";
    assert_eq!(
        mutated(src, Operator::RelationalBoundary),
        vec![
            with(src, "a <= b", "a < b"),
            with(src, "a >= 2", "a > 2"),
            with(src, "a < 1", "a <= 1"),
        ]
    );
    assert_eq!(
        mutated(src, Operator::SwapLogical),
        vec![
            with(src, "a <= b || a >= 2 * b", "a <= b && a >= 2 * b"),
            with(
                src,
                "a <= b || a >= 2 * b || a < 1",
                "a <= b || a >= 2 * b && a < 1"
            ),
        ]
    );
}

#[test]
fn mutate_delete_stmt_keeps_declarations_and_if_bodies_go_to_their_own_operator() {
    let src = "\
void f(struct s *p, int n)
{
	int ret = lock(p);

	spin_lock(&p->lock);
	p->count++;
	if (ret)
		goto out;
	for (;;)
		break;
	put(p);
	if (n)
		;
	else
		return;
	while (n--) {
		return;
	}
out:
	spin_unlock(&p->lock);
}
";
    assert_eq!(
        mutated(src, Operator::DeleteStmt),
        vec![
            with(src, "spin_lock(&p->lock);", ";"),
            with(src, "p->count++;", ";"),
            with(src, "\t\tbreak;", "\t\t;"),
            with(src, "put(p);", ";"),
            with(src, "{\n\t\treturn;", "{\n\t\t;"),
            with(src, "out:\n\tspin_unlock(&p->lock);", "out:\n\t;"),
        ]
    );
    assert_eq!(
        mutated(src, Operator::DeleteIfBody),
        vec![
            with(src, "\t\tgoto out;", "\t\t{}"),
            with(src, "else\n\t\treturn;", "else\n\t\t{}"),
        ]
    );
}

#[test]
fn mutate_delete_if_body_of_then_and_else_but_not_else_if() {
    let src = "\
void f(int a)
{
	if (a) {
		g(1);
		g(2);
	} else if (a > 1) {
		g(3);
	} else {
		g(4);
	}
}
";
    assert_eq!(
        mutated(src, Operator::DeleteIfBody),
        vec![
            with(src, "{\n\t\tg(1);\n\t\tg(2);\n\t}", "{}"),
            with(src, "{\n\t\tg(3);\n\t}", "{}"),
            with(src, "{\n\t\tg(4);\n\t}", "{}"),
        ]
    );
}

#[test]
fn mutate_constants_literals_and_flags_in_arguments_bitwise_ops_and_assignments() {
    let src = "\
void f(struct s *p, unsigned long x)
{
	unsigned long y = FLAG_E | 4;

	/* FLAG_F 7 */
	p->x = FLAG_A | FLAG_B;
	g(FLAG_C, \"STR 5\");
	x &= ~FLAG_D;
	x += PAGE_SIZE;
	switch (x) {
	case 1:
		p->y = 0;
		break;
	}
	h(NULL, CONFIG_X);
}
";
    assert_eq!(
        mutated(src, Operator::ZeroConst),
        vec![
            with(src, "FLAG_A | FLAG_B", "0 | FLAG_B"),
            with(src, "FLAG_A | FLAG_B", "FLAG_A | 0"),
            with(src, "g(FLAG_C", "g(0"),
            with(src, "~FLAG_D", "~0"),
        ]
    );
    assert_eq!(
        mutated(src, Operator::ComplementConst),
        vec![
            with(src, "FLAG_A | FLAG_B", "~FLAG_A | FLAG_B"),
            with(src, "FLAG_A | FLAG_B", "FLAG_A | ~FLAG_B"),
            with(src, "g(FLAG_C", "g(~FLAG_C"),
            with(src, "~FLAG_D", "FLAG_D"),
            with(src, "p->y = 0", "p->y = ~0"),
        ]
    );
}

#[test]
fn mutate_early_return_in_a_void_function_is_return_at_the_start_of_each_block() {
    let src = "\
void f(int a)
{
	int b;

	b = g(a);
	if (b) {
		int c = b;

		h(c);
	}
}
";
    assert_eq!(
        mutated(src, Operator::EarlyReturn),
        vec![
            with(src, "\tb = g(a);", "\treturn;\n\tb = g(a);"),
            with(src, "\t\th(c);", "\t\treturn;\n\t\th(c);"),
        ]
    );
}

#[test]
fn mutate_early_return_returns_the_functions_own_errno_else_jumps_to_its_error_label() {
    let errno = "\
int f(int a)
{
	if (a)
		return -ENOMEM;
	return g(a);
}
";
    assert_eq!(
        mutated(errno, Operator::EarlyReturn),
        vec![with(errno, "\tif (a)", "\treturn -ENOMEM;\n\tif (a)")]
    );
    // No errno returned: the error label, and only before it.
    let label = "\
unsigned long f(int a)
{
	if (a)
		goto out;
	g(a);
again:
	a--;
out_unlock:
	{
		h(a);
	}
	return 0;
}
";
    assert_eq!(
        mutated(label, Operator::EarlyReturn),
        vec![with(label, "\tif (a)", "\tgoto out_unlock;\n\tif (a)")]
    );
    // An int function with neither: no early return.
    let neither = "int f(int a)\n{\n\tg(a);\n\treturn 0;\n}\n";
    assert!(mutated(neither, Operator::EarlyReturn).is_empty());
}

#[test]
fn mutate_ids_are_file_function_line_operator_index() {
    let fm = mutants("mm/x.c", LOOP).unwrap();
    let ids: Vec<&str> = fm
        .mutants
        .iter()
        .filter(|m| m.operator == Operator::NegateCond)
        .map(|m| m.id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "mm/x.c:f:5:negate-cond:0",
            "mm/x.c:f:7:negate-cond:0",
            "mm/x.c:f:7:negate-cond:1",
            "mm/x.c:f:7:negate-cond:2",
        ]
    );
    let m = fm
        .mutants
        .iter()
        .find(|m| m.id == "mm/x.c:f:5:negate-cond:0")
        .unwrap();
    assert_eq!(m.description, "if (!g(p)) → if (g(p))");
    assert_eq!(
        m.diff,
        "--- a/mm/x.c\n+++ b/mm/x.c\n@@ -2,7 +2,7 @@\n {\n \tint i = 0;\n \n-\tif (!g(p))\n+\tif (g(p))\n \t\th(p);\n \twhile (n > 0 && p->x)\n \t\tn--;\n"
    );
}

#[test]
fn mutate_nothing_inside_macro_definitions_comments_or_strings_and_every_mutant_parses() {
    let src = "\
#define LOOP(x) do { if (x > 1) g(x); } while (0)
static int f(struct s *p)
{
	const char *s = \"a < b && c\";
#define INNER(y) ((y) && FLAG_Z)
	/* if (a < b) FLAG_Y */
	if (p->a < p->b && FLAG_X & p->c)
		return -EBUSY;
	list_for_each_entry(p, &head, list) {
		g(p);
	}
#if defined(A) && B > 2
	g(p);
#endif
	return 0;
}
";
    let fm = mutants("t.c", src).unwrap();
    assert_eq!(fm.functions.len(), 1);
    let before = error_count(&parse(src).unwrap());
    for m in &fm.mutants {
        let line = src.lines().nth(m.line - 1).unwrap();
        assert!(
            !line.contains('#') && !line.contains("/*") && !line.contains('"'),
            "{}: {}",
            m.id,
            m.description
        );
        let after = error_count(&parse(&m.apply(src)).unwrap());
        assert!(after <= before, "{} adds parse errors: {}", m.id, m.diff);
    }
    for op in Operator::ALL {
        assert!(
            fm.mutants.iter().any(|m| m.operator == op),
            "no {op} mutant"
        );
    }
}

#[test]
fn mutate_line_ranges_parse_and_bad_ones_are_refused() {
    use super::Lines;
    assert_eq!(Lines::parse("3-9").unwrap(), Lines { first: 3, last: 9 });
    assert_eq!(
        Lines::parse("12").unwrap(),
        Lines {
            first: 12,
            last: 12
        }
    );
    for bad in ["", "9-3", "0-4", "a-b", "3-", "-3"] {
        let e = Lines::parse(bad).unwrap_err();
        assert_eq!(crate::fail::exit_code(&e), 2, "{bad}");
    }
}

#[test]
fn mutate_skips_constant_loop_conditions_switch_bodies_and_statement_expressions() {
    let src = "\
void f(int a)
{
	do {
		g(a);
	} while (0);
	switch (a) {
	case 1:
		g(1);
		break;
	}
	a = ({ int t = h(); t; });
}
";
    assert!(mutated(src, Operator::NegateCond).is_empty());
    assert_eq!(
        mutated(src, Operator::EarlyReturn),
        vec![
            with(src, "\tdo {", "\treturn;\n\tdo {"),
            with(src, "\t\tg(a);", "\t\treturn;\n\t\tg(a);"),
        ]
    );
    assert_eq!(
        mutated(src, Operator::DeleteStmt),
        vec![
            with(src, "\t\tg(a);", "\t\t;"),
            with(src, "\t\tg(1);", "\t\t;"),
            with(src, "\t\tbreak;", "\t\t;"),
            with(src, "a = ({ int t = h(); t; });", ";"),
        ]
    );
}

#[test]
fn mutate_flag_names_may_start_with_underscores_but_not_be_compiler_names() {
    use super::ops::is_flag_name;
    for yes in [
        "MIGRATE_PFN_MIGRATE",
        "HPAGE_PMD_NR",
        "__GFP_NOWARN",
        "VM_WRITE",
        "E2BIG",
    ] {
        assert!(is_flag_name(yes), "{yes}");
    }
    for no in [
        "NULL",
        "__LINE__",
        "CONFIG_TRANSPARENT_HUGEPAGE",
        "X",
        "__",
        "folio",
        "Foo",
    ] {
        assert!(!is_flag_name(no), "{no}");
    }
}

#[test]
fn mutate_kernel_function_shapes_attributes_and_iterator_macros() {
    let src = "\
static __always_inline int a_fn(int a)
{
	if (a)
		return -EINVAL;
	return 0;
}

int __init b_fn(void)
{
	return h(-ENOMEM);
}

static noinline void c_fn(struct list_head *head)
{
	struct page *p;

	list_for_each_entry(p, head, LRU) {
		put_page(p);
	}
}

static void d_fn(spinlock_t *ptl) __releases(ptl)
{
	spin_unlock(ptl);
}
";
    let fm = mutants("mm/t.c", src).unwrap();
    let names: Vec<&str> = fm.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a_fn", "b_fn", "c_fn", "d_fn"]);
    assert_eq!(
        mutated(src, Operator::EarlyReturn),
        vec![
            with(src, "\tif (a)", "\treturn -EINVAL;\n\tif (a)"),
            with(src, "\tlist_for", "\treturn;\n\tlist_for"),
            with(src, "\t\tput_page(p);", "\t\treturn;\n\t\tput_page(p);"),
            with(src, "\tspin_unlock(ptl);", "\treturn;\n\tspin_unlock(ptl);"),
        ]
    );
    // The iterator macro's own arguments are not touched; its body is.
    assert!(fm.mutants.iter().all(|m| !m.original.contains("LRU")));
    assert_eq!(
        mutated(src, Operator::DeleteStmt),
        vec![
            with(src, "put_page(p);", ";"),
            with(src, "spin_unlock(ptl);", ";"),
        ]
    );
}

#[test]
fn mutate_records_the_preprocessor_conditions_a_mutant_is_under() {
    let src = "\
#ifdef CONFIG_A
static void f(int a)
{
	g(a);
#if B > 1
	g(1);
#elif C
	g(2);
#else
	g(3);
#endif
}
#else
static void f(int a)
{
	h(a);
}
#endif
void k(void)
{
	g(0);
}
";
    let fm = mutants("t.c", src).unwrap();
    let under = |needle: &str| -> Vec<String> {
        fm.mutants
            .iter()
            .find(|m| m.operator == Operator::DeleteStmt && m.original == needle)
            .unwrap_or_else(|| panic!("no deletion of {needle}"))
            .under
            .clone()
    };
    assert_eq!(under("g(a);"), ["#ifdef CONFIG_A"]);
    assert_eq!(under("g(1);"), ["#ifdef CONFIG_A", "#if B > 1"]);
    assert_eq!(
        under("g(2);"),
        ["#ifdef CONFIG_A", "not #if B > 1", "#elif C"]
    );
    assert_eq!(
        under("g(3);"),
        ["#ifdef CONFIG_A", "not #if B > 1", "#else of #elif C"]
    );
    assert_eq!(under("h(a);"), ["#else of #ifdef CONFIG_A"]);
    assert!(under("g(0);").is_empty());
}

#[test]
fn mutate_leaves_compile_time_assertions_alone() {
    let src = "\
void f(struct s *p)
{
	BUILD_BUG_ON(FLAG_W > 4 && 1);
	BUILD_BUG_ON_MSG(!FLAG_V, \"v\");
	static_assert(sizeof(*p) < 64);
	g(FLAG_U);
}
";
    let fm = mutants("t.c", src).unwrap();
    assert!(!fm.mutants.is_empty());
    for m in &fm.mutants {
        assert!(
            m.line == 6 || m.operator == Operator::EarlyReturn,
            "{}",
            m.id
        );
    }
}

#[test]
fn mutate_a_pointer_functions_return_0_is_a_null_pointer_and_stays() {
    let src = "struct page *f(int a)\n{\n\tif (a)\n\t\treturn 0;\n\treturn g(1);\n}\n";
    assert_eq!(
        mutated(src, Operator::ComplementConst),
        vec![with(src, "g(1)", "g(~1)")]
    );
}

#[test]
fn a_patch_selects_the_lines_it_adds_and_where_it_deletes() {
    let patch = "From 1 Mon Sep 17 00:00:00 2001\n\
                 --- a/mm/m.c\n+++ b/mm/m.c\n\
                 @@ -10,3 +10,4 @@ static int f(void)\n \tkeep;\n-\told;\n+\tnew1;\n+\tnew2;\n \tkeep;\n\
                 \\ No newline at end of file\n\
                 @@ -40 +41 @@\n-x\n+y\n\
                 --- a/lib/other.c\n+++ b/lib/other.c\n@@ -1,0 +2,1 @@\n+z\n\
                 --- a/gone.c\n+++ /dev/null\n@@ -1 +0,0 @@\n-w\n";
    let m = super::parse_patch_lines(patch).unwrap();
    let lines = |f: &str| m[f].iter().copied().collect::<Vec<_>>();
    // Line 10 kept; `old` was line 11, deleted where new1 (11) and new2 (12)
    // go in.
    assert_eq!(lines("mm/m.c"), [11, 12, 41]);
    assert_eq!(lines("lib/other.c"), [2]);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(super::parse_patch_lines("just text\n").is_err());
    let e = super::parse_patch_lines("+++ b/a.c\n@@ nonsense @@\n").unwrap_err();
    assert_eq!(e.0, 2);
    let e = super::parse_patch_lines("@@ -1 +1 @@\n").unwrap_err();
    assert!(e.1.contains("before any `+++`"), "{e:?}");
}

#[test]
fn ids_select_those_mutants_and_an_unknown_one_is_named() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("mm")).unwrap();
    std::fs::write(
        t.path().join("mm/m.c"),
        "int f(int a)\n{\n\tif (a)\n\t\treturn 1;\n\treturn 2;\n}\n",
    )
    .unwrap();
    let sel = |ids: &[&str]| super::Selection {
        files: vec!["mm/m.c".into()],
        ids: ids.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let all = super::generate(t.path(), &sel(&[])).unwrap();
    let ids: Vec<String> = all[0].mutants.iter().map(|m| m.id.clone()).collect();
    assert!(ids.len() > 2, "{ids:?}");
    let two = super::generate(t.path(), &sel(&[&ids[2], &ids[0]])).unwrap();
    let got: Vec<&str> = two[0].mutants.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(got, [ids[0].as_str(), ids[2].as_str()]);
    let e = super::generate(t.path(), &sel(&["mm/m.c:f:9:zero-const:0"]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--id mm/m.c:f:9:zero-const:0: no such mutant"),
        "{e}"
    );
}
