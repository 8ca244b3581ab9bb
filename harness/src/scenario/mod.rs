//! Scenario files: loading `scenarios/*.toml`, checking them, and reporting
//! every problem in every file at once, with file, line and column, before
//! any VM is started.

mod diagnostic;
mod load;
mod parse;
mod span;
mod validate;
pub mod when;

#[cfg(test)]
mod tests;

pub use diagnostic::{line_col, Diagnostic, Diagnostics};
pub use load::{is_valid_name, load_dir, load_files, scenario_name, select, LoadedScenario};
pub use parse::parse_str;
pub use validate::{ITERATIONS, MAX_PAGES, TIMEOUT_MS};
