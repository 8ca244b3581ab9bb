//! Reporters: independent consumers of a run's events. Each one matches
//! every [`RunEvent`] variant; [`standard`] is the one list of them, so a new
//! output format is one new file here plus one line there.

use std::path::Path;

use anyhow::Result;

use crate::events::RunEvent;

use super::model::RunReport;
use super::write::write_atomic;
use super::{html, junit, ktap_out, progress, run_json, table};

pub trait Reporter {
    /// Its name, for the message when it fails.
    fn name(&self) -> &'static str;
    /// One event, with the run's report as it stands after the event.
    fn on_event(&mut self, ev: &RunEvent, run: &RunReport) -> Result<()>;
}

/// Every reporter of a run writing into `run_dir`, in the order each
/// event reaches them.
pub fn standard(run_dir: &Path) -> Vec<Box<dyn Reporter>> {
    vec![
        Box::new(progress::Progress),
        Box::new(run_json::RunJson::new(run_dir)),
        Box::new(AtEnd::file(run_dir, "junit.xml", junit::render)),
        Box::new(AtEnd::file(run_dir, "results.ktap", ktap_out::render)),
        Box::new(AtEnd::file(run_dir, "report.html", html::render)),
        Box::new(AtEnd::new("summary", table::printer(run_dir))),
    ]
}

/// A reporter that acts once, when the run ends (however it ends), on the
/// final report: writing a file, printing the summary.
/// What an [`AtEnd`] reporter does with the final report.
type Act = Box<dyn FnMut(&RunReport) -> Result<()>>;

pub struct AtEnd {
    name: &'static str,
    act: Act,
}

impl AtEnd {
    pub fn new(name: &'static str, act: impl FnMut(&RunReport) -> Result<()> + 'static) -> AtEnd {
        AtEnd {
            name,
            act: Box::new(act),
        }
    }

    /// `dir/name`, written atomically from `render`: a new file format is
    /// just its render function.
    pub fn file(dir: &Path, name: &'static str, render: fn(&RunReport) -> Result<String>) -> AtEnd {
        let path = dir.join(name);
        AtEnd::new(name, move |run| {
            write_atomic(&path, render(run)?.as_bytes())
        })
    }
}

impl Reporter for AtEnd {
    fn name(&self) -> &'static str {
        self.name
    }

    fn on_event(&mut self, ev: &RunEvent, run: &RunReport) -> Result<()> {
        match ev {
            RunEvent::RunFinished(_) => (self.act)(run),
            RunEvent::RunStarted(_)
            | RunEvent::KernelReady(_)
            | RunEvent::Planned { .. }
            | RunEvent::VmStarted(_)
            | RunEvent::BootFinished(_)
            | RunEvent::ScenarioStarted { .. }
            | RunEvent::StepFinished { .. }
            | RunEvent::ScenarioFinished { .. }
            | RunEvent::GuestFatal { .. }
            | RunEvent::QmpEvent { .. }
            | RunEvent::ConsoleFinding(_)
            | RunEvent::InfraError { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::RunEnd;
    use crate::report::{html, load, RunStatus, ScenarioResult};
    use hmmlab_proto::Outcome;

    /// The end of a run writes every file, and report.html is the page
    /// `report-html` makes again from run.json.
    #[test]
    fn the_end_of_a_run_writes_every_file() {
        let t = tempfile::tempdir().unwrap();
        let run = RunReport::for_tests(vec![
            ScenarioResult::for_tests("a@madvise", Outcome::Pass),
            ScenarioResult::for_tests("b@madvise", Outcome::Fail),
        ]);
        let end =
            RunEvent::RunFinished(RunEnd::without_results(RunStatus::Finished, String::new()));
        for mut r in standard(t.path()) {
            r.on_event(&end, &run).unwrap();
        }
        for f in ["run.json", "junit.xml", "results.ktap", "report.html"] {
            assert!(t.path().join(f).is_file(), "{f}");
        }
        let page = std::fs::read_to_string(t.path().join("report.html")).unwrap();
        assert_eq!(page, html::render(&load(t.path()).unwrap()).unwrap());
    }
}
