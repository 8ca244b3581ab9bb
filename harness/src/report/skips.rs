//! Skips are results too: counted per reason, for scenario instances and
//! for the cases of a selftest, and, with `--fail-on-skip`, failures.

use std::collections::BTreeMap;

use hmmlab_proto::Outcome;
use serde::{Deserialize, Serialize};

use super::model::ScenarioResult;

/// How many scenario instances and selftest cases were skipped, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skips {
    /// Skipped scenario instances: reason → count.
    pub instances: BTreeMap<String, usize>,
    /// Skipped cases of selftests (hmm-tests) that ran: reason → count.
    pub cases: BTreeMap<String, usize>,
    /// Instances whose `[requires] kernel` excludes this kernel: reason →
    /// count. Not skips: what they test is not in this kernel.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_applicable: BTreeMap<String, usize>,
}

impl Skips {
    pub fn of(scenarios: &[ScenarioResult]) -> Skips {
        let mut s = Skips::default();
        for sc in scenarios {
            if sc.outcome == Outcome::Skip {
                let to = if sc.not_applicable {
                    &mut s.not_applicable
                } else {
                    &mut s.instances
                };
                *to.entry(reason(sc.message.as_deref())).or_default() += 1;
            }
            for c in sc.cases.iter().filter(|c| c.outcome == Outcome::Skip) {
                *s.cases.entry(reason(c.reason.as_deref())).or_default() += 1;
            }
        }
        s
    }

    /// No skip (instances that do not apply are not skips).
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty() && self.cases.is_empty()
    }

    /// Nothing to say: no skip and nothing that did not apply.
    pub fn is_none(&self) -> bool {
        self.is_empty() && self.not_applicable.is_empty()
    }

    /// `41 (38 DEVICE_COHERENT not available; 2 Not enough huge pages; …)`,
    /// most frequent first.
    pub fn describe(counts: &BTreeMap<String, usize>) -> String {
        let total: usize = counts.values().sum();
        let mut v: Vec<(&String, &usize)> = counts.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let parts: Vec<String> = v.iter().map(|(r, n)| format!("{n} {r}")).collect();
        format!("{total} ({})", parts.join("; "))
    }
}

/// The first line of a skip's reason, or that it gave none.
pub fn reason(text: Option<&str>) -> String {
    text.and_then(|t| t.lines().next())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("no reason given")
        .to_string()
}

/// `--fail-on-skip`: every skipped instance fails, and so does every
/// selftest that skipped a case, with what was skipped and why. An instance
/// that does not apply to this kernel's version stays as it is.
pub fn fail_skips(scenarios: &mut [ScenarioResult]) {
    for sc in scenarios {
        let skipped_cases = Skips::of(std::slice::from_ref(sc)).cases;
        if sc.outcome == Outcome::Skip && sc.not_applicable {
            continue;
        }
        if sc.outcome == Outcome::Skip {
            sc.outcome = Outcome::Fail;
            sc.message = Some(format!(
                "skipped (--fail-on-skip): {}",
                sc.message.as_deref().unwrap_or("no reason given")
            ));
        } else if !skipped_cases.is_empty() && !sc.outcome.is_failure() {
            sc.outcome = Outcome::Fail;
            sc.message = Some(format!(
                "{} of {} cases skipped (--fail-on-skip): {}",
                skipped_cases.values().sum::<usize>(),
                sc.cases.len(),
                Skips::describe(&skipped_cases)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CaseResult;

    fn case(outcome: Outcome, reason: Option<&str>) -> CaseResult {
        CaseResult {
            name: "c".into(),
            outcome,
            reason: reason.map(Into::into),
        }
    }

    fn selftest() -> ScenarioResult {
        let mut sc = ScenarioResult::for_tests("hmm-tests@madvise", Outcome::Pass);
        sc.cases = vec![
            case(Outcome::Pass, None),
            case(Outcome::Skip, Some("DEVICE_COHERENT not available")),
            case(Outcome::Skip, Some("DEVICE_COHERENT not available")),
            case(Outcome::Skip, Some("Not enough huge pages\nmore")),
        ];
        sc
    }

    #[test]
    fn skips_are_counted_per_reason() {
        let mut skipped = ScenarioResult::for_tests("fail-alloc@madvise", Outcome::Skip);
        skipped.message = Some("requires kernel >=7.2 (this is 6.12.117)".into());
        let s = Skips::of(&[selftest(), skipped]);
        assert_eq!(s.instances["requires kernel >=7.2 (this is 6.12.117)"], 1);
        assert_eq!(s.cases["DEVICE_COHERENT not available"], 2);
        assert_eq!(
            Skips::describe(&s.cases),
            "3 (2 DEVICE_COHERENT not available; 1 Not enough huge pages)"
        );
    }

    #[test]
    fn fail_on_skip_fails_every_skip_and_every_selftest_that_skipped() {
        let mut v = vec![
            selftest(),
            ScenarioResult::for_tests("a@madvise", Outcome::Skip),
            ScenarioResult::for_tests("b@madvise", Outcome::Pass),
        ];
        fail_skips(&mut v);
        assert_eq!(v[0].outcome, Outcome::Fail);
        assert!(
            v[0].message
                .as_deref()
                .unwrap()
                .starts_with("3 of 4 cases skipped"),
            "{:?}",
            v[0].message
        );
        assert_eq!(v[1].outcome, Outcome::Fail);
        assert_eq!(v[2].outcome, Outcome::Pass);
    }

    #[test]
    fn an_instance_that_does_not_apply_is_counted_apart_and_never_failed() {
        let mut na = ScenarioResult::for_tests("fail-alloc@madvise", Outcome::Skip);
        na.message = Some("requires kernel >=7.2 (this is 6.12.117)".into());
        na.not_applicable = true;
        let s = Skips::of(std::slice::from_ref(&na));
        assert!(s.is_empty() && !s.is_none(), "{s:?}");
        assert_eq!(
            s.not_applicable["requires kernel >=7.2 (this is 6.12.117)"],
            1
        );
        let mut v = vec![na, ScenarioResult::for_tests("a@madvise", Outcome::Skip)];
        fail_skips(&mut v);
        assert_eq!(v[0].outcome, Outcome::Skip);
        assert_eq!(v[1].outcome, Outcome::Fail);
    }
}
