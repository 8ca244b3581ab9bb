//! Documented exit codes of `cargo xtask` (also in README.md).

/// Every scenario passed (or was skipped with a reason).
pub const OK: i32 = 0;
/// The run completed and at least one scenario failed, timed out or crashed.
pub const TEST_FAILURE: i32 = 1;
/// Bad input: a scenario file, a fragment, a patch path or a command-line value.
pub const BAD_INPUT: i32 = 2;
/// Infrastructure: a build failed, QEMU would not start or died, a package is missing.
pub const INFRA: i32 = 3;
/// Interrupted by SIGINT or SIGTERM; what finished is on disk.
pub const INTERRUPTED: i32 = 130;
