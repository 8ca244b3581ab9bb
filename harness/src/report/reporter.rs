//! Reporters: independent consumers of a run's events. Each one matches
//! every [`RunEvent`] variant; [`standard`] is the one list of them, so a new
//! output format is one new file here plus one line there.

use std::path::Path;

use anyhow::Result;

use crate::events::RunEvent;

use super::model::RunReport;
use super::{junit, ktap_out, progress, run_json, table};

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
        Box::new(junit::Junit::new(run_dir)),
        Box::new(ktap_out::Ktap::new(run_dir)),
        Box::new(table::Summary::new(run_dir)),
    ]
}
