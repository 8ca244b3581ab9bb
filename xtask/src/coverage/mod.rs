//! Coverage reports from gcov counters: read each scenario instance's
//! `.gcda` files with the host `gcov` (`read`, `gcov`, `version`,
//! `sources`), merge them (`model`), write lcov, JSON, HTML and the table
//! (`lcov`, `html`, `table`, `report`). `collect` is a coverage run's
//! side: the build checked before the boot, the guest's counters unpacked
//! per instance after it, then the report.

mod cells;
mod collect;
mod gcov;
mod html;
mod lcov;
pub mod model;
mod read;
mod report;
mod sources;
mod table;
mod version;

#[cfg(test)]
mod tests;

pub use cells::merge_cells;
pub use collect::{check_ready, report as run_report, DIR, STREAM};
pub use report::{coverage_report, load, write};
