//! The table on stdout: per file, one row per function with its lines and
//! branches, the device-migration entry points (`migrate_vma_*`,
//! `migrate_device_*`) first, then the rest, each part in line order.

use std::fmt::Write;

use super::model::{percent, Coverage, FileCoverage, Summary};

/// The prefixes of the functions listed first.
pub const FIRST: &[&str] = &["migrate_vma_", "migrate_device_"];

/// The functions of `file` in table order.
pub fn order(file: &FileCoverage) -> Vec<&str> {
    let mut names: Vec<&str> = file.functions.keys().map(String::as_str).collect();
    names.sort_by_key(|name| {
        let first = FIRST.iter().any(|p| name.starts_with(p));
        (!first, file.functions[*name].start_line, *name)
    });
    names
}

pub fn render(cov: &Coverage) -> String {
    let mut out = String::new();
    for (key, file) in &cov.files {
        let width = file
            .functions
            .keys()
            .map(|n| n.len())
            .max()
            .unwrap_or(0)
            .max(key.len());
        let _ = writeln!(
            out,
            "{key:<width$}  {:>6}  {:>13} {:>6}  {:>13} {:>6}",
            "line", "lines", "%", "branches", "%"
        );
        let mut rows: Vec<(String, String, Summary)> = order(file)
            .into_iter()
            .map(|name| {
                let line = file.functions[name].start_line.to_string();
                (name.to_string(), line, file.function_summary(name))
            })
            .collect();
        rows.push(("total".into(), String::new(), file.summary()));
        for (name, line, s) in rows {
            let _ = writeln!(
                out,
                "{name:<width$}  {line:>6}  {:>13} {:>6.1}  {:>13} {:>6.1}",
                format!("{}/{}", s.lines_hit, s.lines),
                percent(s.lines_hit, s.lines),
                format!("{}/{}", s.branches_taken, s.branches),
                percent(s.branches_taken, s.branches),
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::model::Function;
    use super::*;

    #[test]
    fn entry_points_first_then_by_line() {
        let mut file = FileCoverage::default();
        for (name, line) in [
            ("collect_one", 5),
            ("migrate_device_pages", 40),
            ("migrate_vma_setup", 30),
            ("another", 2),
        ] {
            file.functions.insert(
                name.into(),
                Function {
                    start_line: line,
                    end_line: line + 1,
                    count: 0,
                    scenarios: Default::default(),
                },
            );
        }
        assert_eq!(
            order(&file),
            [
                "migrate_vma_setup",
                "migrate_device_pages",
                "another",
                "collect_one"
            ]
        );
        let cov = Coverage {
            files: [("mm/x.c".to_string(), file)].into(),
        };
        let text = render(&cov);
        let rows: Vec<&str> = text
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or(""))
            .collect();
        assert_eq!(
            rows,
            [
                "mm/x.c",
                "migrate_vma_setup",
                "migrate_device_pages",
                "another",
                "collect_one",
                "total",
                ""
            ]
        );
    }
}
