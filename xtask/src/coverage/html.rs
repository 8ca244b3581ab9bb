//! A self-contained HTML page per source file (inline CSS, no scripts, no
//! external assets): hit, missed and partly taken lines, each branch, and
//! per line the scenario instances that ran it; plus an index page.

use std::fmt::Write;

use super::model::{percent, Coverage, FileCoverage, Line, Summary};

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 0 .6em; text-align: left; vertical-align: top; }
th { border-bottom: 1px solid #999; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.src td { font: 13px/1.35 ui-monospace, monospace; }
.src td.code { white-space: pre; tab-size: 8; }
.src tr.hit td.code { background: #dfd; }
.src tr.miss td.code { background: #fcc; }
.src tr.part td.code { background: #ffd; }
.src td.n a { color: #888; text-decoration: none; }
.br { display: inline-block; width: 1.1em; text-align: center; border-radius: 3px; }
.br.taken { background: #9d9; }
.br.untaken { background: #e77; color: #fff; }
.br.notrun { background: #ccc; }
details { display: inline; }
summary { cursor: pointer; color: #226; }
.who { font-size: 12px; white-space: normal; }
:target td { outline: 2px solid #88f; }
";

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's file name for source `key` (`mm/migrate_device.c.html`; a
/// key outside the tree is flattened).
pub fn page_name(key: &str) -> String {
    let safe: String = key
        .trim_start_matches('/')
        .replace("../", "")
        .chars()
        .map(|c| if c == '/' { '_' } else { c })
        .collect();
    format!("{safe}.html")
}

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(title)
    );
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

/// The index: every file with its figures, and the scenario instances.
pub fn index(cov: &Coverage) -> String {
    let mut out = String::new();
    head(&mut out, "coverage");
    out.push_str("<h1>Coverage</h1>\n<table><tr><th>file</th><th>lines</th><th class=num>%</th><th>branches</th><th class=num>%</th></tr>\n");
    for (key, file) in &cov.files {
        let s = file.summary();
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{}\">{}</a></td><td class=num>{}/{}</td><td class=num>{:.1}</td>\
             <td class=num>{}/{}</td><td class=num>{:.1}</td></tr>",
            escape(&page_name(key)),
            escape(key),
            s.lines_hit,
            s.lines,
            percent(s.lines_hit, s.lines),
            s.branches_taken,
            s.branches,
            percent(s.branches_taken, s.branches)
        );
    }
    out.push_str("</table>\n<h2>Scenario instances</h2>\n<ul>\n");
    for s in cov.scenarios() {
        let _ = writeln!(out, "<li>{}</li>", escape(&s));
    }
    out.push_str("</ul>\n</body></html>\n");
    out
}

/// The page of one file. `source` is its text, when it was found.
pub fn file_page(key: &str, file: &FileCoverage, source: Option<&str>) -> String {
    let mut out = String::new();
    head(&mut out, key);
    let _ = writeln!(
        out,
        "<p><a href=\"index.html\">index</a></p>\n<h1>{}</h1>\n<p>{}</p>",
        escape(key),
        figures(&file.summary())
    );
    functions(&mut out, file);
    out.push_str(
        "<table class=src><tr><th class=num>line</th><th class=num>count</th>\
         <th>branches</th><th>scenarios</th><th>source</th></tr>\n",
    );
    match source {
        Some(text) => {
            for (i, text) in text.lines().enumerate() {
                let n = i as u32 + 1;
                row(&mut out, n, file.lines.get(&n), text);
            }
        }
        None => {
            for (n, line) in &file.lines {
                row(&mut out, *n, Some(line), "(source not found)");
            }
        }
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

fn functions(out: &mut String, file: &FileCoverage) {
    let mut funcs: Vec<_> = file.functions.iter().collect();
    funcs.sort_by_key(|(name, f)| (f.start_line, *name));
    out.push_str(
        "<table><tr><th>function</th><th class=num>calls</th><th>lines</th>\
         <th>branches</th><th>scenarios</th></tr>\n",
    );
    for (name, f) in funcs {
        let s = file.function_summary(name);
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#L{}\">{}</a></td><td class=num>{}</td><td class=num>{}/{}</td>\
             <td class=num>{}/{}</td><td class=num>{}</td></tr>",
            f.start_line,
            escape(name),
            f.count,
            s.lines_hit,
            s.lines,
            s.branches_taken,
            s.branches,
            f.scenarios.len()
        );
    }
    out.push_str("</table>\n");
}

fn row(out: &mut String, n: u32, line: Option<&Line>, text: &str) {
    let Some(line) = line else {
        let _ = writeln!(
            out,
            "<tr id=L{n}><td class=\"n num\"><a href=\"#L{n}\">{n}</a></td><td></td><td></td>\
             <td></td><td class=code>{}</td></tr>",
            escape(text)
        );
        return;
    };
    let class = if line.count == 0 {
        "miss"
    } else if line.untaken_branches() > 0 {
        "part"
    } else {
        "hit"
    };
    let mut branches = String::new();
    for (i, b) in line.branches.iter().enumerate() {
        let (class, mark, title) = if line.count == 0 {
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
        };
        let _ = write!(
            branches,
            "<span class=\"br {class}\" title=\"{}\">{mark}</span>",
            escape(&title)
        );
    }
    let who = if line.scenarios.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = line.scenarios.iter().map(|s| escape(s)).collect();
        format!(
            "<details><summary>{}</summary><div class=who>{}</div></details>",
            names.len(),
            names.join("<br>")
        )
    };
    let _ = writeln!(
        out,
        "<tr id=L{n} class={class}><td class=\"n num\"><a href=\"#L{n}\">{n}</a></td>\
         <td class=num>{}</td><td>{branches}</td><td>{who}</td><td class=code>{}</td></tr>",
        line.count,
        escape(text)
    );
}

#[cfg(test)]
mod tests {
    use super::super::model::Branch;
    use super::*;

    #[test]
    fn escapes_and_marks() {
        assert_eq!(
            escape("a<b && c>\"d'"),
            "a&lt;b &amp;&amp; c&gt;&quot;d&#39;"
        );
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
        let page = file_page("a.c", &file, Some("int a;\nif (i < n)\nreturn;\n"));
        assert!(page.contains("<td class=code>if (i &lt; n)</td>"), "{page}");
        assert!(page.contains("id=L2 class=part"), "{page}");
        assert!(page.contains("id=L3 class=miss"), "{page}");
        assert!(page.contains("title=\"branch 1: never taken\""), "{page}");
        assert!(page.contains("by x&lt;y"), "{page}");
        assert!(!page.contains("x<y"), "{page}");
        assert!(
            !page.contains("<link") && !page.contains("<script"),
            "{page}"
        );
    }

    #[test]
    fn page_names() {
        assert_eq!(page_name("mm/migrate_device.c"), "mm_migrate_device.c.html");
        assert_eq!(page_name("/usr/include/x.h"), "usr_include_x.h.html");
    }
}
