//! `cargo xtask <task>`: dispatch only. The CLI is declared in cli.rs; each
//! task lives in its own module.

mod accel;
mod bench;
mod bench_seed;
mod bisect;
mod cache;
mod cli;
mod compare;
mod compare_html;
mod coverage;
mod deps;
mod fail;
mod guest;
mod image;
mod kernel;
mod matrix;
mod matrix_html;
mod matrix_run;
mod mutate;
mod paths;
mod plan;
mod preflight;
mod progress;
mod run;
mod shell;
mod shell_task;
mod sources;
mod tasks;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = hmmlab_harness::interrupt::install() {
        eprintln!("warning: cannot catch SIGINT/SIGTERM ({e}); an interrupted run may leave children behind");
    }
    let code = match tasks::dispatch(cli.task) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            fail::exit_code(&e)
        }
    };
    std::process::exit(code);
}
