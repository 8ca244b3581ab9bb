//! The kernel stage: source → patches → config → build (cached) → hmm-tests.

pub mod archive;
pub mod build;
pub mod cc;
pub mod config;
pub mod cover;
pub mod distro;
pub mod key;
pub mod objects;
pub mod patch;
pub mod relink;
pub mod selftest;
pub mod source;

pub use build::{ensure, Kernel, Request};
