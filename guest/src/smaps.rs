//! `check-smaps`: the fields of /proc/self/smaps (fs/proc/task_mmu.c,
//! show_smap()), summed over the VMAs of the scenario's mapping. The
//! kernel shows them in kB; a scenario gives pages.

use std::collections::BTreeMap;

use hmmlab_proto::scenario::SmapsField;

use crate::mapping::PAGE_SIZE;

const SMAPS: &str = "/proc/self/smaps";

/// Why a step's fields are not as it wants.
#[derive(Debug, PartialEq)]
pub enum SmapsProblem {
    /// The file could not be read or understood: an error, not a failure
    /// of the kernel.
    Unreadable(String),
    /// A field counts another number of pages than the step gives.
    Differs(String),
}

/// Check the fields `want` names against `text` (the contents of
/// /proc/self/smaps) for the mapping `[start, end)`: each field summed
/// over the VMAs inside it. A VMA that straddles either end, or no VMA at
/// all, is an error; so is a field the kernel does not show.
pub fn check(
    text: &str,
    start: u64,
    end: u64,
    want: &BTreeMap<SmapsField, u64>,
) -> Result<(), SmapsProblem> {
    let got = sum(text, start, end).map_err(SmapsProblem::Unreadable)?;
    let mut wrong = vec![];
    for (&field, &pages) in want {
        let Some(&kb) = got.get(field.smaps_name()) else {
            return Err(SmapsProblem::Unreadable(format!(
                "{SMAPS} shows no `{}` field for the mapping: this kernel does not count {field}",
                field.smaps_name()
            )));
        };
        let have = kb * 1024 / PAGE_SIZE;
        if kb * 1024 % PAGE_SIZE != 0 || have != pages {
            wrong.push(format!(
                "{field} counts {kb} kB ({have} pages) of the mapping, expected {pages} pages \
                 (`{}` in {SMAPS})",
                field.smaps_name()
            ));
        }
    }
    match crate::thpstats::differences(wrong) {
        None => Ok(()),
        Some(m) => Err(SmapsProblem::Differs(m)),
    }
}

/// Read /proc/self/smaps and check it (see `check`).
pub fn read_and_check(
    start: u64,
    end: u64,
    want: &BTreeMap<SmapsField, u64>,
) -> Result<(), SmapsProblem> {
    let text = std::fs::read_to_string(SMAPS)
        .map_err(|e| SmapsProblem::Unreadable(format!("reading {SMAPS}: {e}")))?;
    check(&text, start, end, want)
}

/// Every `Name:  N kB` field of the VMAs inside `[start, end)`, summed, in
/// kB.
fn sum(text: &str, start: u64, end: u64) -> Result<BTreeMap<&str, u64>, String> {
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    let mut inside = false;
    let mut vmas = 0;
    for line in text.lines() {
        if let Some((lo, hi)) = vma_range(line) {
            if hi <= start || lo >= end {
                inside = false;
                continue;
            }
            if lo < start || hi > end {
                return Err(format!(
                    "{SMAPS}: the VMA {lo:#x}-{hi:#x} reaches outside the mapping \
                     {start:#x}-{end:#x}"
                ));
            }
            inside = true;
            vmas += 1;
            continue;
        }
        if !inside {
            continue;
        }
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if let Some(kb) = rest.trim().strip_suffix(" kB") {
            let kb: u64 = kb
                .trim()
                .parse()
                .map_err(|_| format!("{SMAPS}: not a size in kB: {line:?}"))?;
            *sums.entry(name).or_default() += kb;
        }
    }
    if vmas == 0 {
        return Err(format!(
            "{SMAPS} shows no VMA in the mapping {start:#x}-{end:#x}"
        ));
    }
    Ok(sums)
}

/// The range of a VMA's first line, `start-end perms offset dev inode
/// [path]`; `None` for a field's line.
fn vma_range(line: &str) -> Option<(u64, u64)> {
    let (range, _) = line.split_once(' ')?;
    let (lo, hi) = range.split_once('-')?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    Some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
7f0000000000-7f0000004000 rw-p 00000000 00:00 0 
Size:                 16 kB
KernelPageSize:        4 kB
Rss:                   8 kB
Referenced:            4 kB
Anonymous:             8 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
VmFlags: rd wr mr mw me ac 
7f0000004000-7f0000008000 r--p 00000000 00:00 0 
Rss:                   4 kB
Referenced:            0 kB
Anonymous:             4 kB
VmFlags: rd mr mw me ac 
7f0000008000-7f0000009000 rw-p 00000000 00:00 0 
Rss:                   4 kB
Referenced:            4 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Rss:                  12 kB
";

    fn want(pairs: &[(SmapsField, u64)]) -> BTreeMap<SmapsField, u64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn the_fields_of_the_mappings_vmas_are_summed_in_pages() {
        let (a, b) = (0x7f00_0000_0000, 0x7f00_0000_8000);
        let w = want(&[
            (SmapsField::Rss, 3),
            (SmapsField::Referenced, 1),
            (SmapsField::Anonymous, 3),
        ]);
        assert_eq!(check(TEXT, a, b, &w), Ok(()));
        assert_eq!(
            check(TEXT, a, b, &want(&[(SmapsField::Referenced, 2)])),
            Err(SmapsProblem::Differs(
                "referenced counts 4 kB (1 pages) of the mapping, expected 2 pages \
                 (`Referenced` in /proc/self/smaps)"
                    .into()
            ))
        );
        let Err(SmapsProblem::Differs(m)) = check(
            TEXT,
            a,
            b,
            &want(&[(SmapsField::Rss, 0), (SmapsField::Referenced, 0)]),
        ) else {
            panic!("two fields differ")
        };
        assert!(m.starts_with("rss counts 12 kB (3 pages)"), "{m}");
        assert!(m.contains("; and 1 more: referenced counts 4 kB"), "{m}");
    }

    #[test]
    fn a_vma_across_the_mappings_end_a_missing_field_or_no_vma_is_an_error() {
        let w = want(&[(SmapsField::Rss, 1)]);
        assert!(matches!(
            check(TEXT, 0x7f00_0000_0000, 0x7f00_0000_2000, &w),
            Err(SmapsProblem::Unreadable(m)) if m.contains("reaches outside")
        ));
        assert!(matches!(
            check(TEXT, 0x1000, 0x2000, &w),
            Err(SmapsProblem::Unreadable(m)) if m.contains("no VMA")
        ));
        assert!(matches!(
            check(TEXT, 0x7f00_0000_8000, 0x7f00_0000_9000, &want(&[(SmapsField::Swap, 0)])),
            Err(SmapsProblem::Unreadable(m)) if m.contains("no `Swap` field")
        ));
    }

    #[test]
    fn a_vma_line_is_told_from_a_field_line() {
        assert_eq!(
            vma_range("7f0000000000-7f0000004000 rw-p 00000000 00:00 0 "),
            Some((0x7f00_0000_0000, 0x7f00_0000_4000))
        );
        assert_eq!(vma_range("Rss:                   8 kB"), None);
        assert_eq!(vma_range("VmFlags: rd wr mr mw me ac "), None);
    }
}
