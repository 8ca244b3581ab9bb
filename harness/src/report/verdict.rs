//! One rule for an instance seen in several runs (`--repeat`, `bisect`,
//! `compare`): pass, skip, fail or flaky.

use hmmlab_proto::Outcome;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Passed in every run that has it.
    Pass,
    /// Skipped (in at least one run) and never failed.
    Skip,
    /// Failed, timed out, crashed or errored in every run that has it.
    Fail,
    /// Passed in some runs and failed in others.
    Flaky,
}

impl Verdict {
    /// The verdict over the outcomes of one instance's runs. A failure
    /// next to a pass is flaky; next to only skips it is a failure.
    pub fn of(outcomes: impl IntoIterator<Item = Outcome>) -> Verdict {
        let (mut passed, mut failed, mut skipped) = (0, 0, 0);
        for o in outcomes {
            match o {
                Outcome::Pass => passed += 1,
                Outcome::Skip => skipped += 1,
                _ => failed += 1,
            }
        }
        match (passed, failed, skipped) {
            (p, f, _) if f > 0 && p > 0 => Verdict::Flaky,
            (_, f, _) if f > 0 => Verdict::Fail,
            (_, _, s) if s > 0 => Verdict::Skip,
            _ => Verdict::Pass,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Skip => "skip",
            Verdict::Fail => "fail",
            Verdict::Flaky => "flaky",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;

    #[test]
    fn one_rule_for_repeated_outcomes() {
        assert_eq!(Verdict::of([Pass, Pass]), Verdict::Pass);
        assert_eq!(Verdict::of([Pass, Skip]), Verdict::Skip);
        assert_eq!(Verdict::of([Pass, Timeout, Pass]), Verdict::Flaky);
        assert_eq!(Verdict::of([Crashed, Fail]), Verdict::Fail);
        assert_eq!(Verdict::of([Skip, Error]), Verdict::Fail);
        assert_eq!(Verdict::of([]), Verdict::Pass);
    }
}
