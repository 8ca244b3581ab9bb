//! Coverage reports from gcov counters: read each scenario instance's
//! `.gcda` files with the host `gcov` (`read`, `gcov`, `version`,
//! `sources`), merge them (`model`), write lcov, JSON, HTML and the table
//! (`lcov`, `html`, `table`, `report`).

mod gcov;
mod html;
mod lcov;
mod model;
mod read;
mod report;
mod sources;
mod table;
mod version;

#[cfg(test)]
mod tests;

pub use report::coverage_report;

// The layer's interface for the tasks that collect counters
// (`run-scenarios --coverage`): read, merge, write.
#[allow(unused_imports)]
pub use {
    gcov::ReadOptions,
    model::{Branch, Coverage, FileCoverage, Function, Line, Scenarios, Summary},
    read::{read_all, Instance},
    report::write,
};
