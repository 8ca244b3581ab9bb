//! Results: the model of a run (built event by event, `apply.rs`) and its
//! reporters (`reporter.rs` lists them): progress, run.json, junit.xml,
//! results.ktap, report.html and the terminal summary.

pub mod apply;
pub mod bench;
pub mod html;
pub mod junit;
pub mod ktap_out;
pub mod load;
pub mod model;
pub mod page;
pub mod progress;
pub mod reporter;
pub mod run_json;
pub mod skips;
pub mod table;
pub mod verdict;
pub mod write;

pub use load::load;
pub use model::{BuiltKernel, CaseResult, RunReport, RunStatus, ScenarioResult, StepResult};
pub use reporter::Reporter;
pub use verdict::Verdict;
