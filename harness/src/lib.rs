
pub mod exit;
pub mod machine;
pub mod qemu;
pub mod qmp;
pub mod console;
pub mod report;
pub mod vm;
pub mod scenario;
pub mod runner;
pub mod assemble;
