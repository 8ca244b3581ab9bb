//! Errors that carry their exit code. Anything else is an infrastructure error.

use std::fmt;

use hmmlab_harness::exit;

/// An error the user can fix in their input (exit code [`exit::BAD_INPUT`]).
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BadInput {}

/// Shorthand: `return Err(bad_input(format!(...)))`.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

/// The exit code an error maps to.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err
        .chain()
        .any(|e| e.is::<hmmlab_harness::interrupt::Interrupted>())
    {
        return exit::INTERRUPTED;
    }
    if err
        .chain()
        .any(|e| e.is::<BadInput>() || e.is::<hmmlab_harness::scenario::Diagnostics>())
    {
        exit::BAD_INPUT
    } else {
        exit::INFRA
    }
}
