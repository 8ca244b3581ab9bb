//! Types shared by the host (`hmmlab-harness`, `xtask`) and the guest driver.
//!
//! * [`scenario`]: what a scenario file says, deserialized from TOML on the host
//!   and handed to the guest as JSON inside the initramfs ([`plan::Plan`]).
//! * [`op`]: a step's op and its rules, in one table ([`op::Op::rules`]).
//! * [`record`]: what the guest reports back, one JSON object per line, on a
//!   serial port of its own (never mixed with the kernel console).
//! * [`state`]: names of the per-page states `HMM_DMIRROR_SNAPSHOT` reports.
//! * [`bench`]: what a `kind = "bench"` scenario measures.
//! * [`coverage`]: each scenario instance's gcov counters, framed on a
//!   serial port of their own (a coverage run only).

pub mod bench;
pub mod coverage;
pub mod op;
pub mod plan;
pub mod record;
pub mod scenario;
pub mod state;

pub use plan::Plan;
pub use record::{Outcome, Record};
pub use scenario::Scenario;
