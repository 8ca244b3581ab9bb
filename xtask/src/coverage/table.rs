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

/// Several reports side by side (kernels, or one suite against another):
/// per file, one row per function that any of them has, and per report
/// its lines and branches (`-` where that report's file has no such
/// function). Functions are matched by name, so reports of different
/// sources of a file compare well where their lines could not be merged.
pub fn side_by_side(columns: &[(String, &Coverage)]) -> String {
    let mut out = String::new();
    let mut keys: Vec<&String> = columns.iter().flat_map(|(_, c)| c.files.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let files: Vec<Option<&FileCoverage>> =
            columns.iter().map(|(_, c)| c.files.get(key)).collect();
        // Row order: the entry points first, each part in the first
        // report's order, then what only later ones have.
        let mut names: Vec<&str> = Vec::new();
        for file in files.iter().flatten() {
            for name in order(file) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names.sort_by_key(|name| !FIRST.iter().any(|p| name.starts_with(p)));
        let width = names
            .iter()
            .map(|n| n.len())
            .chain([key.len(), "total".len()])
            .max()
            .unwrap_or(0);
        let cell = |s: Option<Summary>| match s {
            Some(s) => format!(
                "{:>9} {:>5.1}%  {:>9}",
                format!("{}/{}", s.lines_hit, s.lines),
                percent(s.lines_hit, s.lines),
                format!("{}/{}", s.branches_taken, s.branches)
            ),
            None => format!("{:>9} {:>6}  {:>9}", "-", "", ""),
        };
        let cw = cell(Some(Summary::default())).len();
        let _ = write!(out, "{key:<width$}");
        for (name, _) in columns {
            let _ = write!(out, "  {:>cw$}", truncate(name, cw));
        }
        let _ = write!(out, "\n{:<width$}", "");
        for _ in columns {
            let _ = write!(out, "  {:>cw$}", "lines       branches");
        }
        out.push('\n');
        for name in names.iter().copied().chain(["total"]) {
            let _ = write!(out, "{name:<width$}");
            for f in &files {
                let s = f.and_then(|f| {
                    if name == "total" {
                        Some(f.summary())
                    } else {
                        f.functions
                            .contains_key(name)
                            .then(|| f.function_summary(name))
                    }
                });
                let _ = write!(out, "  {}", cell(s));
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// `s` cut to `n` characters from its end (column names are long run paths).
fn truncate(s: &str, n: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= n {
        s.to_string()
    } else {
        format!(
            "…{}",
            chars[chars.len() - n + 1..].iter().collect::<String>()
        )
    }
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

    fn file_with(functions: &[(&str, u32, &[u64])]) -> FileCoverage {
        let mut file = FileCoverage::default();
        let mut n = 0;
        for (name, start, counts) in functions {
            file.functions.insert(
                name.to_string(),
                Function {
                    start_line: *start,
                    end_line: start + counts.len() as u32,
                    count: counts.iter().sum(),
                    scenarios: Default::default(),
                },
            );
            for c in *counts {
                n += 1;
                file.lines.insert(
                    start + n,
                    super::super::model::Line {
                        count: *c,
                        functions: [name.to_string()].into(),
                        ..Default::default()
                    },
                );
            }
        }
        file
    }

    #[test]
    fn side_by_side_matches_functions_by_name() {
        // Two sources of one file: `migrate_vma_setup` starts on other lines,
        // `migrate_device_pfns` exists in the second only.
        let a = Coverage {
            files: [(
                "mm/x.c".to_string(),
                file_with(&[("migrate_vma_setup", 10, &[1, 0]), ("helper", 30, &[2])]),
            )]
            .into(),
        };
        let b = Coverage {
            files: [(
                "mm/x.c".to_string(),
                file_with(&[
                    ("migrate_vma_setup", 40, &[1, 1, 1]),
                    ("migrate_device_pfns", 50, &[0]),
                    ("helper", 5, &[0]),
                ]),
            )]
            .into(),
        };
        let text = side_by_side(&[("7.3.4".into(), &a), ("6.12.118".into(), &b)]);
        let row = |name: &str| -> Vec<String> {
            text.lines()
                .find(|l| l.split_whitespace().next() == Some(name))
                .unwrap_or_else(|| panic!("no row {name} in\n{text}"))
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        assert!(text.lines().next().unwrap().contains("7.3.4"), "{text}");
        assert!(text.lines().next().unwrap().contains("6.12.118"), "{text}");
        assert_eq!(
            row("migrate_vma_setup")[1..],
            ["1/2", "50.0%", "0/0", "3/3", "100.0%", "0/0"]
        );
        assert_eq!(row("migrate_device_pfns")[1..], ["-", "0/1", "0.0%", "0/0"]);
        assert_eq!(
            row("helper")[1..],
            ["1/1", "100.0%", "0/0", "0/1", "0.0%", "0/0"]
        );
        assert_eq!(
            row("total")[1..],
            ["2/3", "66.7%", "0/0", "3/5", "60.0%", "0/0"]
        );
        let names: Vec<&str> = text
            .lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(
            names,
            [
                "migrate_vma_setup",
                "migrate_device_pfns",
                "helper",
                "total"
            ]
        );
    }
}
