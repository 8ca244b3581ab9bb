//! The coverage report as one page, `html/index.html`: the figures of every
//! file, the scenario instances, then each file's section with its
//! functions and its source, hit, missed and partly taken lines, each
//! branch, and per line the scenario instances that ran it. Built with
//! maud on the shared page (`hmmlab_harness::report::page`), which escapes
//! every value: one file, inline CSS, nothing to fetch, no script needed
//! to read it.

use std::collections::{BTreeMap, BTreeSet};

use hmmlab_harness::report::page;
use maud::{html, Markup, PreEscaped};

use super::model::{percent, Coverage, FileCoverage, Line, Summary};

/// This page's own rules, over the shared style sheet: compact source
/// lines coloured hit, missed or partly taken, and the branch marks.
const CSS: &str = "
table.figures, table.src { width: auto; }
th.num { text-align: right; }
ul.instances { columns: 18em; padding-left: 1.2em; }
table.src td { padding: 0 .4em; border: none; font: 12.5px/1.35 ui-monospace, \"DejaVu Sans Mono\", Menlo, monospace; }
table.src td.n { text-align: right; }
table.src td.n a { color: var(--muted); text-decoration: none; }
table.src td.code { white-space: pre; tab-size: 8; }
.hit td.code, .key.hit { background: var(--pass); }
.miss td.code, .key.miss { background: var(--fail); }
.part td.code, .key.part { background: #fff1b8; }
.key { padding: 0 .4em; }
.br { display: inline-block; width: 1.1em; text-align: center; border-radius: 3px; }
.br.taken { background: #8fd19e; }
.br.untaken { background: var(--fail-fg); color: #fff; }
.br.notrun { background: #ccc; }
table.src details { display: inline; }
.who { font: 12px/1.4 system-ui, sans-serif; white-space: nowrap; }
tr:target td { outline: 2px solid #88f; }
";

/// The page's own ids: no file's section gets one of them.
const RESERVED: [&str; 2] = ["files", "scenarios"];

/// The id of each file's section: its key with every character but ASCII
/// letters, digits, `.` and `_` made `_` (`mm/migrate_device.c` ->
/// `mm_migrate_device.c`), `-2`, `-3`, … added where two keys would
/// share one. Its lines are `<id>-L<n>`; a file's id never holds `-L`, so
/// no line's id is another's, nor a file's.
pub fn file_ids(cov: &Coverage) -> BTreeMap<&str, String> {
    let mut taken: BTreeSet<String> = RESERVED.iter().map(|s| s.to_string()).collect();
    let mut ids = BTreeMap::new();
    for key in cov.files.keys() {
        let mut base: String = key
            .trim_start_matches('/')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if base.is_empty() {
            base = "file".into();
        }
        let mut id = base.clone();
        let mut n = 2;
        while taken.contains(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        taken.insert(id.clone());
        ids.insert(key.as_str(), id);
    }
    ids
}

fn figures(s: &Summary) -> String {
    format!(
        "lines {}/{} ({:.1} %), branches {}/{} ({:.1} %)",
        s.lines_hit,
        s.lines,
        percent(s.lines_hit, s.lines),
        s.branches_taken,
        s.branches,
        percent(s.branches_taken, s.branches)
    )
}

/// The page. `sources` holds the text of each file (by key) that was
/// found; a file without it lists its lines with code only.
pub fn render(cov: &Coverage, sources: &BTreeMap<String, String>) -> String {
    let ids = file_ids(cov);
    let scenarios = cov.scenarios();
    let body = html! {
        style { (PreEscaped(CSS)) }
        h1 { "Coverage" }
        p class="muted" {
            (scenarios.len()) " scenario instance(s), " (cov.files.len()) " file(s). Lines: "
            span class="key hit" { "run" } " "
            span class="key part" { "run, a branch never taken" } " "
            span class="key miss" { "never run" }
            ". Branches: "
            span class="br taken" { "+" } " taken (hover for by whom), "
            span class="br untaken" { "-" } " never taken, "
            span class="br notrun" { "#" } " on a line never run."
        }
        h2 { "Files" }
        table id="files" class="figures" {
            thead { tr {
                th { "file" } th class="num" { "lines" } th class="num" { "%" } th {}
                th class="num" { "branches" } th class="num" { "%" }
            } }
            tbody {
                @for (key, file) in &cov.files {
                    @let s = file.summary();
                    tr {
                        td { a href={ "#" (ids[key.as_str()]) } { code { (key) } } }
                        td class="num" { (s.lines_hit) "/" (s.lines) }
                        td class="num" { (format!("{:.1}", percent(s.lines_hit, s.lines))) }
                        td class="barcell" {
                            (page::bar(percent(s.lines_hit, s.lines) / 100.0, &figures(&s)))
                        }
                        td class="num" { (s.branches_taken) "/" (s.branches) }
                        td class="num" { (format!("{:.1}", percent(s.branches_taken, s.branches))) }
                    }
                }
            }
        }
        h2 { "Scenario instances" }
        ul id="scenarios" class="instances" {
            @for s in &scenarios { li { (s) } }
        }
        @for (key, file) in &cov.files {
            (section(key, &ids[key.as_str()], file, sources.get(key).map(String::as_str)))
        }
    };
    page::page("coverage", body).into_string()
}

/// One file: its figures, its functions, its source.
fn section(key: &str, id: &str, file: &FileCoverage, source: Option<&str>) -> Markup {
    html! {
        section id=(id) {
            h2 { (key) }
            p { (figures(&file.summary())) " · " a href="#files" { "all files" } }
            h3 { "Functions" }
            (functions(id, file))
            h3 { "Source" }
            table class="src" {
                thead { tr {
                    th class="num" { "line" } th class="num" { "count" }
                    th { "branches" } th { "scenarios" } th { "source" }
                } }
                tbody {
                    @match source {
                        Some(text) => {
                            @for (i, text) in text.lines().enumerate() {
                                @let n = i as u32 + 1;
                                (row(id, n, file.lines.get(&n), text))
                            }
                        }
                        None => {
                            @for (n, line) in &file.lines {
                                (row(id, *n, Some(line), "(source not found)"))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn functions(id: &str, file: &FileCoverage) -> Markup {
    let mut funcs: Vec<_> = file.functions.iter().collect();
    funcs.sort_by_key(|(name, f)| (f.start_line, *name));
    html! {
        table class="figures" {
            thead { tr {
                th { "function" } th class="num" { "calls" } th class="num" { "lines" }
                th class="num" { "branches" } th class="num" { "scenarios" }
            } }
            tbody {
                @for (name, f) in funcs {
                    @let s = file.function_summary(name);
                    tr {
                        td { a href={ "#" (id) "-L" (f.start_line) } { code { (name) } } }
                        td class="num" { (f.count) }
                        td class="num" { (s.lines_hit) "/" (s.lines) }
                        td class="num" { (s.branches_taken) "/" (s.branches) }
                        td class="num" { (f.scenarios.len()) }
                    }
                }
            }
        }
    }
}

/// A line's class: never run, run with a branch never taken, or run.
fn class(line: &Line) -> &'static str {
    if line.count == 0 {
        "miss"
    } else if line.untaken_branches() > 0 {
        "part"
    } else {
        "hit"
    }
}

/// A branch's mark: its class, its sign and what hovering it says.
fn mark(line: &Line, i: usize) -> (&'static str, &'static str, String) {
    let b = &line.branches[i];
    if line.count == 0 {
        ("notrun", "#", format!("branch {i}: line never ran"))
    } else if b.taken == 0 {
        ("untaken", "-", format!("branch {i}: never taken"))
    } else {
        let who: Vec<&str> = b.scenarios.iter().map(String::as_str).collect();
        (
            "taken",
            "+",
            format!(
                "branch {i}: taken {} time{}, by {}",
                b.taken,
                if b.taken == 1 { "" } else { "s" },
                who.join(", ")
            ),
        )
    }
}

/// One line of the source; `line` when it has code.
fn row(id: &str, n: u32, line: Option<&Line>, text: &str) -> Markup {
    html! {
        tr id={ (id) "-L" (n) } class=[line.map(class)] {
            td class="n" { a href={ "#" (id) "-L" (n) } { (n) } }
            @if let Some(line) = line {
                td class="num" { (line.count) }
                td {
                    @for i in 0..line.branches.len() {
                        @let (class, sign, title) = mark(line, i);
                        span class={ "br " (class) } title=(title) { (sign) }
                    }
                }
                td {
                    @if !line.scenarios.is_empty() {
                        details {
                            summary { (line.scenarios.len()) }
                            div class="who" {
                                @for (i, s) in line.scenarios.iter().enumerate() {
                                    @if i > 0 { br; }
                                    (s)
                                }
                            }
                        }
                    }
                }
            } @else {
                td {} td {} td {}
            }
            td class="code" { (text) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{Branch, Function};
    use super::*;

    fn one_file(key: &str, file: FileCoverage, source: &str) -> String {
        let cov = Coverage {
            files: [(key.to_string(), file)].into(),
        };
        render(&cov, &[(key.to_string(), source.to_string())].into())
    }

    #[test]
    fn marks_lines_and_branches() {
        let mut file = FileCoverage::default();
        file.lines.insert(
            2,
            Line {
                count: 1,
                branches: vec![
                    Branch {
                        taken: 1,
                        scenarios: ["x<y".to_string()].into(),
                    },
                    Branch::default(),
                ],
                scenarios: ["x<y".to_string()].into(),
                ..Default::default()
            },
        );
        file.lines.insert(3, Line::default());
        file.functions.insert(
            "f".into(),
            Function {
                start_line: 2,
                end_line: 3,
                count: 1,
                scenarios: ["x<y".to_string()].into(),
            },
        );
        let page = one_file("dir/a.c", file, "int a;\nif (i < n)\nreturn;\n");
        assert!(
            page.contains("<td class=\"code\">if (i &lt; n)</td>"),
            "{page}"
        );
        assert!(page.contains("<tr id=\"dir_a.c-L1\"><td"), "{page}");
        assert!(
            page.contains("<tr id=\"dir_a.c-L2\" class=\"part\">"),
            "{page}"
        );
        assert!(
            page.contains("<tr id=\"dir_a.c-L3\" class=\"miss\">"),
            "{page}"
        );
        assert!(
            page.contains("<span class=\"br untaken\" title=\"branch 1: never taken\">-</span>"),
            "{page}"
        );
        assert!(page.contains("by x&lt;y"), "{page}");
        assert!(
            page.contains("<summary>1</summary><div class=\"who\">x&lt;y</div>"),
            "{page}"
        );
        assert!(!page.contains("x<y"), "{page}");
        // The file's section, linked from the files' table; its function
        // links to its first line.
        assert!(page.contains("<section id=\"dir_a.c\">"), "{page}");
        assert!(
            page.contains("<a href=\"#dir_a.c\"><code>dir/a.c</code>"),
            "{page}"
        );
        assert!(
            page.contains("<a href=\"#dir_a.c-L2\"><code>f</code>"),
            "{page}"
        );
        // One file: nothing fetched, no script of its own.
        assert!(
            !page.contains("<link")
                && !page.contains(" src=")
                && page.matches("<script").count() == 1,
            "{page}"
        );
    }

    #[test]
    fn names_and_source_are_escaped() {
        let mut file = FileCoverage::default();
        file.lines.insert(
            1,
            Line {
                count: 2,
                scenarios: ["a&b@madvise".to_string()].into(),
                ..Default::default()
            },
        );
        let page = one_file(
            "x/<script>&.c",
            file,
            "char *s = \"<script>alert(1)</script>\" && 1;\n",
        );
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("x/<script>"), "{page}");
        assert!(
            page.contains(
                "char *s = &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot; &amp;&amp; 1;"
            ),
            "{page}"
        );
        assert!(
            page.contains("<code>x/&lt;script&gt;&amp;.c</code>"),
            "{page}"
        );
        assert!(page.contains("<li>a&amp;b@madvise</li>"), "{page}");
        // The id is made of safe characters only.
        assert!(page.contains("<section id=\"x__script__.c\">"), "{page}");
        assert!(page.contains("id=\"x__script__.c-L1\""), "{page}");
        assert_eq!(page.matches("<script").count(), 1, "{page}");
    }

    #[test]
    fn ids_are_unique_and_avoid_the_pages_own() {
        let mut cov = Coverage::default();
        for key in [
            "mm/migrate_device.c",
            "mm_migrate_device.c",
            "/usr/include/x.h",
            "files",
            "a-L1",
            "",
        ] {
            cov.files.insert(key.into(), FileCoverage::default());
        }
        let ids = file_ids(&cov);
        assert_eq!(ids["mm/migrate_device.c"], "mm_migrate_device.c");
        assert_eq!(ids["mm_migrate_device.c"], "mm_migrate_device.c-2");
        assert_eq!(ids["/usr/include/x.h"], "usr_include_x.h");
        assert_eq!(ids["files"], "files-2");
        assert_eq!(ids["a-L1"], "a_L1");
        assert_eq!(ids[""], "file");
    }
}
