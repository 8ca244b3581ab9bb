//! The coverage of one or more scenario instances: per source file, its
//! functions and its lines, each with counts and the instances that ran it.
//! `merge` adds counts and unions the instance sets; it is associative and
//! commutative, so runs, THP modes and kernels can be merged in any order.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Scenario instance names (`empty-anon@madvise`), sorted.
pub type Scenarios = BTreeSet<String>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    /// Keyed by the source path relative to the source tree
    /// (`mm/migrate_device.c`), or as the compiler recorded it when it is
    /// outside the tree.
    pub files: BTreeMap<String, FileCoverage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCoverage {
    /// The SHA-256 of the source text the counters were read against: two
    /// reports merge only where it is the same (line 200 of one kernel's
    /// file is not line 200 of another's). Absent in reports made before it
    /// existed, and where the source could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha256: Option<String>,
    /// Keyed by name (a C translation unit has one function of each name).
    pub functions: BTreeMap<String, Function>,
    /// Keyed by line number; only lines with code.
    pub lines: BTreeMap<u32, Line>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Function {
    pub start_line: u32,
    pub end_line: u32,
    /// Times the function was entered.
    pub count: u64,
    pub scenarios: Scenarios,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Times the line ran.
    pub count: u64,
    /// The functions whose code is on this line (usually one; several when
    /// functions share their first line, e.g. ones a macro defines).
    pub functions: BTreeSet<String>,
    /// The conditional branches leaving this line, in gcov's order.
    pub branches: Vec<Branch>,
    pub scenarios: Scenarios,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// Times the branch was taken.
    pub taken: u64,
    pub scenarios: Scenarios,
}

/// Found/hit counts of one function or file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub lines: u32,
    pub lines_hit: u32,
    pub branches: u32,
    pub branches_taken: u32,
}

impl Coverage {
    /// Add `other` into `self`.
    pub fn merge(&mut self, other: &Coverage) {
        for (path, file) in &other.files {
            self.files.entry(path.clone()).or_default().merge(file);
        }
    }

    /// The first file whose source differs between `self` and `other`, when
    /// both know it: such reports must not be merged line by line.
    pub fn source_mismatch(&self, other: &Coverage) -> Option<String> {
        self.files.iter().find_map(|(path, mine)| {
            let theirs = other.files.get(path)?;
            match (&mine.source_sha256, &theirs.source_sha256) {
                (Some(a), Some(b)) if a != b => Some(path.clone()),
                _ => None,
            }
        })
    }

    /// The merge of all of `parts`.
    pub fn merged<'a>(parts: impl IntoIterator<Item = &'a Coverage>) -> Coverage {
        let mut all = Coverage::default();
        for p in parts {
            all.merge(p);
        }
        all
    }

    /// Every scenario instance named anywhere.
    pub fn scenarios(&self) -> Scenarios {
        let mut all = Scenarios::new();
        for f in self.files.values() {
            for l in f.lines.values() {
                all.extend(l.scenarios.iter().cloned());
            }
            for func in f.functions.values() {
                all.extend(func.scenarios.iter().cloned());
            }
        }
        all
    }
}

impl FileCoverage {
    pub fn merge(&mut self, other: &FileCoverage) {
        // Callers merge only files of one source (`Coverage::source_mismatch`);
        // the smaller digest keeps the merge order-free all the same.
        self.source_sha256 = match (self.source_sha256.take(), &other.source_sha256) {
            (Some(a), Some(b)) => Some(a.min(b.clone())),
            (a, b) => a.or_else(|| b.clone()),
        };
        for (name, f) in &other.functions {
            match self.functions.get_mut(name) {
                Some(mine) => mine.merge(f),
                None => {
                    self.functions.insert(name.clone(), f.clone());
                }
            }
        }
        for (n, l) in &other.lines {
            self.lines.entry(*n).or_default().merge(l);
        }
    }

    /// The lines of function `name`.
    pub fn lines_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (u32, &'a Line)> + 'a {
        self.lines
            .iter()
            .filter(move |(_, l)| l.functions.contains(name))
            .map(|(n, l)| (*n, l))
    }

    pub fn function_summary(&self, name: &str) -> Summary {
        Summary::of(self.lines_of(name).map(|(_, l)| l))
    }

    pub fn summary(&self) -> Summary {
        Summary::of(self.lines.values())
    }
}

impl Function {
    pub fn merge(&mut self, other: &Function) {
        // min/max rather than "keep mine", so the result does not depend on
        // the order of the merge.
        self.start_line = self.start_line.min(other.start_line);
        self.end_line = self.end_line.max(other.end_line);
        self.count += other.count;
        self.scenarios.extend(other.scenarios.iter().cloned());
    }
}

impl Line {
    pub fn merge(&mut self, other: &Line) {
        self.count += other.count;
        self.functions.extend(other.functions.iter().cloned());
        self.scenarios.extend(other.scenarios.iter().cloned());
        if self.branches.len() < other.branches.len() {
            self.branches
                .resize(other.branches.len(), Branch::default());
        }
        for (mine, theirs) in self.branches.iter_mut().zip(&other.branches) {
            mine.taken += theirs.taken;
            mine.scenarios.extend(theirs.scenarios.iter().cloned());
        }
    }

    pub fn untaken_branches(&self) -> usize {
        self.branches.iter().filter(|b| b.taken == 0).count()
    }
}

impl Summary {
    pub fn of<'a>(lines: impl IntoIterator<Item = &'a Line>) -> Summary {
        let mut s = Summary::default();
        for l in lines {
            s.lines += 1;
            s.lines_hit += u32::from(l.count > 0);
            s.branches += l.branches.len() as u32;
            s.branches_taken += l.branches.iter().filter(|b| b.taken > 0).count() as u32;
        }
        s
    }
}

/// `part` of `whole` in percent, for tables (100 when there is nothing to hit).
pub fn percent(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        100.0
    } else {
        f64::from(part) * 100.0 / f64::from(whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so the models differ in every way
    /// a merge must handle (files, functions and lines only on one side,
    /// branch lists of different lengths) without a random crate.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % below
        }
        fn names(&mut self) -> Scenarios {
            (0..self.next(3))
                .map(|_| format!("s{}@madvise", self.next(4)))
                .collect()
        }
        fn coverage(&mut self) -> Coverage {
            let mut cov = Coverage::default();
            for _ in 0..self.next(3) + 1 {
                let mut file = FileCoverage::default();
                for _ in 0..self.next(3) {
                    let start = self.next(20) as u32 + 1;
                    file.functions.insert(
                        format!("f{}", self.next(4)),
                        Function {
                            start_line: start,
                            end_line: start + self.next(5) as u32,
                            count: self.next(5),
                            scenarios: self.names(),
                        },
                    );
                }
                for _ in 0..self.next(6) {
                    let branches = (0..self.next(3))
                        .map(|_| Branch {
                            taken: self.next(3),
                            scenarios: self.names(),
                        })
                        .collect();
                    file.lines.insert(
                        self.next(30) as u32 + 1,
                        Line {
                            count: self.next(4),
                            functions: [format!("f{}", self.next(4))].into(),
                            branches,
                            scenarios: self.names(),
                        },
                    );
                }
                cov.files.insert(format!("mm/{}.c", self.next(3)), file);
            }
            cov
        }
    }

    #[test]
    fn merge_is_associative_and_commutative() {
        let mut g = Gen(23);
        for _ in 0..200 {
            let (a, b, c) = (g.coverage(), g.coverage(), g.coverage());
            let mut ab_c = Coverage::merged([&a, &b]);
            ab_c.merge(&c);
            let mut a_bc = a.clone();
            a_bc.merge(&Coverage::merged([&b, &c]));
            assert_eq!(ab_c, a_bc);
            assert_eq!(Coverage::merged([&a, &b]), Coverage::merged([&b, &a]));
            // The empty model changes nothing.
            assert_eq!(Coverage::merged([&a, &Coverage::default()]), a);
        }
    }

    #[test]
    fn merge_adds_counts_and_unions_names() {
        let line = |count, who: &str, taken: &[u64]| Line {
            count,
            functions: ["f".to_string()].into(),
            branches: taken
                .iter()
                .map(|&t| Branch {
                    taken: t,
                    scenarios: if t > 0 {
                        [who.to_string()].into()
                    } else {
                        Scenarios::new()
                    },
                })
                .collect(),
            scenarios: [who.to_string()].into(),
        };
        let mut a = line(2, "a", &[2, 0]);
        a.merge(&line(3, "b", &[0, 3]));
        assert_eq!(a.count, 5);
        assert_eq!(
            a.scenarios,
            Scenarios::from(["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            a.branches.iter().map(|b| b.taken).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(a.branches[1].scenarios, Scenarios::from(["b".to_string()]));
        assert_eq!(a.untaken_branches(), 0);
        let s = Summary::of([&a, &Line::default()]);
        assert_eq!(
            s,
            Summary {
                lines: 2,
                lines_hit: 1,
                branches: 2,
                branches_taken: 2
            }
        );
        assert_eq!(percent(1, 3), 100.0 / 3.0);
        assert_eq!(percent(0, 0), 100.0);
    }
}
