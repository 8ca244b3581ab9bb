//! Results: the model of a run (built event by event, `apply.rs`) and its
//! reporters (`reporter.rs` lists them): progress, run.json, junit.xml,
//! results.ktap and the terminal summary.

pub mod apply;
pub mod junit;
pub mod ktap_out;
pub mod model;
pub mod progress;
pub mod reporter;
pub mod run_json;
pub mod table;
pub mod write;

pub use model::{BuiltKernel, CaseResult, RunReport, RunStatus, ScenarioResult, StepResult};
pub use reporter::Reporter;
