//! `check-thp-stats`: the PMD-size THP counters of sysfs
//! (`/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/stats/`), read
//! once before the scenario's mapping is made and again at each such step;
//! the step wants each named counter to have changed by the amount it gives.
//! Nothing else runs in the guest during a scenario (khugepaged is held
//! off: khugepaged.rs), so the changes are the scenario's own.

use std::collections::BTreeMap;

use hmmlab_proto::scenario::{Op, Step, ThpStat};

/// The counters the scenario's `check-thp-stats` steps name, as they were
/// when it began.
#[derive(Debug, Default)]
pub struct ThpStats {
    base: BTreeMap<ThpStat, u64>,
}

/// Why a step's counters are not as it wants.
#[derive(Debug, PartialEq)]
pub enum StatsProblem {
    /// A counter could not be read: an error, not a failure of the kernel.
    Unreadable(String),
    /// A counter changed by another amount than the step gives.
    Differs(String),
}

impl ThpStats {
    /// Read the counters the steps name. A kernel without them is an error
    /// the scenario reports, before anything is mapped.
    pub fn prepare(steps: &[Step]) -> Result<ThpStats, String> {
        let mut base = BTreeMap::new();
        for st in steps.iter().filter(|s| s.op == Op::CheckThpStats) {
            for &stat in st.thp_stats.iter().flat_map(|m| m.keys()) {
                if let std::collections::btree_map::Entry::Vacant(e) = base.entry(stat) {
                    e.insert(read(stat)?);
                }
            }
        }
        Ok(ThpStats { base })
    }

    /// Compare each counter `want` names, as it is now (`now`), with its
    /// value when the scenario began. The first that differs is named with
    /// both values, and how many others differ.
    pub fn check(
        &self,
        want: &BTreeMap<ThpStat, i64>,
        mut now: impl FnMut(ThpStat) -> Result<u64, String>,
    ) -> Result<(), StatsProblem> {
        let mut wrong: Vec<String> = vec![];
        for (&stat, &delta) in want {
            let Some(&before) = self.base.get(&stat) else {
                return Err(StatsProblem::Unreadable(format!(
                    "{stat} was not read when the scenario began"
                )));
            };
            let after = now(stat).map_err(StatsProblem::Unreadable)?;
            let changed = after as i128 - before as i128;
            if changed != delta as i128 {
                wrong.push(format!(
                    "{stat} changed by {changed} ({before} → {after}) since the scenario began, \
                     expected {delta}"
                ));
            }
        }
        match differences(wrong) {
            None => Ok(()),
            Some(m) => Err(StatsProblem::Differs(m)),
        }
    }
}

/// What a check that compares several numbers found wrong, in one
/// message: the first difference, then how many more and which; `None`
/// when nothing differs.
pub fn differences(wrong: Vec<String>) -> Option<String> {
    match wrong.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        [first, rest @ ..] => Some(format!(
            "{first}; and {} more: {}",
            rest.len(),
            rest.join("; ")
        )),
    }
}

/// One counter's value now.
pub fn read(stat: ThpStat) -> Result<u64, String> {
    let path = stat.path();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{path}: {e}: this kernel does not count {stat} (6.12.118 and 7.3.4 have every \
             counter check-thp-stats names, 6.1.192 has no such directory; \
             CONFIG_TRANSPARENT_HUGEPAGE and CONFIG_SYSFS are needed)"
        )
    })?;
    if stat.in_vmstat() {
        let value = vmstat_line(&text, stat.as_str()).ok_or_else(|| {
            format!(
                "{path} has no {stat}: this kernel does not count THP events \
                 (CONFIG_VM_EVENT_COUNTERS and CONFIG_TRANSPARENT_HUGEPAGE are needed; \
                 images/configs/variants/memcg.config has them)"
            )
        })?;
        return parse(value).ok_or_else(|| format!("{path}: {stat} is not a count: {value:?}"));
    }
    parse(&text).ok_or_else(|| format!("{path}: not a count: {:?}", text.trim()))
}

/// The value of /proc/vmstat's line `name value`.
fn vmstat_line<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then_some(v)
    })
}

fn parse(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vmstat_event_is_its_own_line_only() {
        let text = "thp_fault_alloc 3\nthp_fault_fallback 17\nthp_fault_fallback_charge 2\n";
        assert_eq!(vmstat_line(text, "thp_fault_fallback"), Some("17"));
        assert_eq!(vmstat_line(text, "thp_fault_fallback_charge"), Some("2"));
        assert_eq!(vmstat_line(text, "thp_fault"), None);
        assert_eq!(vmstat_line("", "thp_fault_alloc"), None);
        assert!(ThpStat::ThpFaultFallback.in_vmstat() && !ThpStat::AnonFaultFallback.in_vmstat());
        assert_eq!(ThpStat::ThpFaultFallback.path(), "/proc/vmstat");
    }

    fn stats(base: &[(ThpStat, u64)]) -> ThpStats {
        ThpStats {
            base: base.iter().copied().collect(),
        }
    }

    #[test]
    fn a_counter_that_rose_by_the_amount_passes_and_any_other_fails() {
        let s = stats(&[(ThpStat::AnonFaultAlloc, 7), (ThpStat::NrAnon, 3)]);
        let want: BTreeMap<_, _> = [(ThpStat::AnonFaultAlloc, 1), (ThpStat::NrAnon, -1)].into();
        let now = |v: [u64; 2]| {
            move |st: ThpStat| {
                Ok(match st {
                    ThpStat::AnonFaultAlloc => v[0],
                    _ => v[1],
                })
            }
        };
        assert_eq!(s.check(&want, now([8, 2])), Ok(()));
        assert_eq!(
            s.check(&want, now([7, 2])),
            Err(StatsProblem::Differs(
                "anon_fault_alloc changed by 0 (7 → 7) since the scenario began, expected 1".into()
            ))
        );
        let Err(StatsProblem::Differs(m)) = s.check(&want, now([9, 3])) else {
            panic!("two counters differ")
        };
        assert!(
            m.starts_with("anon_fault_alloc changed by 2 (7 → 9)"),
            "{m}"
        );
        assert!(
            m.ends_with(
                "and 1 more: nr_anon changed by 0 (3 → 3) since the scenario began, expected -1"
            ),
            "{m}"
        );
    }

    #[test]
    fn a_counter_not_read_at_the_start_or_unreadable_is_an_error() {
        let s = stats(&[]);
        let want: BTreeMap<_, _> = [(ThpStat::Split, 1)].into();
        assert!(matches!(
            s.check(&want, |_| Ok(1)),
            Err(StatsProblem::Unreadable(_))
        ));
        let s = stats(&[(ThpStat::Split, 0)]);
        assert_eq!(
            s.check(&want, |_| Err("gone".into())),
            Err(StatsProblem::Unreadable("gone".into()))
        );
        assert_eq!(parse("12\n"), Some(12));
        assert_eq!(parse("x"), None);
    }
}
