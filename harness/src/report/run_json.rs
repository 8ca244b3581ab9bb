//! `run.json`: the whole report, rewritten (atomically) whenever it gains
//! something, so a run killed at any point leaves what it had finished.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::events::RunEvent;

use super::model::RunReport;
use super::reporter::Reporter;
use super::write::write_run_json;

pub struct RunJson {
    dir: PathBuf,
}

impl RunJson {
    pub fn new(dir: &Path) -> RunJson {
        RunJson { dir: dir.into() }
    }
}

impl Reporter for RunJson {
    fn name(&self) -> &'static str {
        "run.json"
    }

    fn on_event(&mut self, ev: &RunEvent, run: &RunReport) -> Result<()> {
        match ev {
            RunEvent::RunStarted(_)
            | RunEvent::KernelReady(_)
            | RunEvent::Planned { .. }
            | RunEvent::VmStarted(_)
            | RunEvent::BootFinished(_)
            | RunEvent::ScenarioFinished { .. }
            | RunEvent::InfraError { .. }
            | RunEvent::RunFinished(_) => write_run_json(&self.dir, run),
            RunEvent::ScenarioStarted { .. }
            | RunEvent::StepFinished { .. }
            | RunEvent::GuestFatal { .. }
            | RunEvent::QmpEvent { .. }
            | RunEvent::ConsoleFinding(_) => Ok(()),
        }
    }
}
