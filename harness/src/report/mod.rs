//! Results: the model of a run and its writers (run.json, junit.xml, the
//! terminal table). Each writer consumes the same [`model::RunReport`].

pub mod junit;
pub mod model;
pub mod table;
pub mod write;

pub use model::{CaseResult, RunReport, ScenarioResult, StepResult};
