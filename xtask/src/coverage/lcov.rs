//! The lcov tracefile (`coverage.info`), the format genhtml, IDEs and CI
//! coverage services read (geninfo(1), "TRACEFILE FORMAT").

use std::fmt::Write;
use std::path::Path;

use super::model::{Coverage, FileCoverage};

/// The tracefile of `cov`: one record per file, named `SF:` by its path
/// under `source` (absolute when `source` is). `test` becomes `TN:`, with
/// the characters lcov does not allow in a test name replaced by `_`.
pub fn render(cov: &Coverage, test: &str, source: &Path) -> String {
    let tn: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut out = String::new();
    for (key, file) in &cov.files {
        let sf = source.join(key);
        record(&mut out, &tn, &sf.to_string_lossy(), file);
    }
    out
}

fn record(out: &mut String, tn: &str, sf: &str, file: &FileCoverage) {
    let _ = writeln!(out, "TN:{tn}");
    let _ = writeln!(out, "SF:{sf}");
    let mut functions: Vec<_> = file.functions.iter().collect();
    functions.sort_by_key(|(name, f)| (f.start_line, *name));
    for (name, f) in &functions {
        let _ = writeln!(out, "FN:{},{name}", f.start_line);
    }
    for (name, f) in &functions {
        let _ = writeln!(out, "FNDA:{},{name}", f.count);
    }
    let _ = writeln!(out, "FNF:{}", functions.len());
    let hit = functions.iter().filter(|(_, f)| f.count > 0).count();
    let _ = writeln!(out, "FNH:{hit}");
    // gcov's JSON gives no block numbers: every branch of a line is in
    // block 0, numbered in gcov's order.
    for (n, line) in &file.lines {
        for (i, b) in line.branches.iter().enumerate() {
            if line.count == 0 {
                let _ = writeln!(out, "BRDA:{n},0,{i},-");
            } else {
                let _ = writeln!(out, "BRDA:{n},0,{i},{}", b.taken);
            }
        }
    }
    let s = file.summary();
    let _ = writeln!(out, "BRF:{}", s.branches);
    let _ = writeln!(out, "BRH:{}", s.branches_taken);
    for (n, line) in &file.lines {
        let _ = writeln!(out, "DA:{n},{}", line.count);
    }
    let _ = writeln!(out, "LF:{}", s.lines);
    let _ = writeln!(out, "LH:{}", s.lines_hit);
    let _ = writeln!(out, "end_of_record");
}

#[cfg(test)]
mod tests {
    use super::super::model::{Branch, Function, Line, Scenarios};
    use super::*;

    fn set(names: &[&str]) -> Scenarios {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_hand_built_file() {
        let mut file = FileCoverage::default();
        file.functions.insert(
            "migrate_vma_setup".into(),
            Function {
                start_line: 10,
                end_line: 14,
                count: 2,
                scenarios: set(&["a"]),
            },
        );
        file.functions.insert(
            "cold".into(),
            Function {
                start_line: 3,
                end_line: 5,
                count: 0,
                scenarios: set(&[]),
            },
        );
        let f = |n: &str| [n.to_string()].into();
        file.lines.insert(
            3,
            Line {
                functions: f("cold"),
                ..Default::default()
            },
        );
        file.lines.insert(
            4,
            Line {
                functions: f("cold"),
                branches: vec![Branch::default(), Branch::default()],
                ..Default::default()
            },
        );
        file.lines.insert(
            11,
            Line {
                count: 2,
                functions: f("migrate_vma_setup"),
                branches: vec![
                    Branch {
                        taken: 2,
                        scenarios: set(&["a"]),
                    },
                    Branch::default(),
                ],
                scenarios: set(&["a"]),
            },
        );
        let cov = Coverage {
            files: [("mm/x.c".to_string(), file)].into(),
        };
        let text = render(&cov, "empty-anon@madvise", Path::new("/src"));
        assert_eq!(
            text,
            "TN:empty_anon_madvise\n\
             SF:/src/mm/x.c\n\
             FN:3,cold\n\
             FN:10,migrate_vma_setup\n\
             FNDA:0,cold\n\
             FNDA:2,migrate_vma_setup\n\
             FNF:2\n\
             FNH:1\n\
             BRDA:4,0,0,-\n\
             BRDA:4,0,1,-\n\
             BRDA:11,0,0,2\n\
             BRDA:11,0,1,0\n\
             BRF:4\n\
             BRH:1\n\
             DA:3,0\n\
             DA:4,0\n\
             DA:11,2\n\
             LF:3\n\
             LH:1\n\
             end_of_record\n"
        );
    }
}
