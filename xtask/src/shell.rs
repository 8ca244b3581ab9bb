//! Running host commands: every command is an argv (never a shell string),
//! echoed shell-quoted so a person can rerun it, with its output in a log.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use hmmlab_harness::interrupt;

use crate::progress::Progress;

/// Quote one word for a POSIX shell, only when needed.
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// An argv as one copy-pasteable line.
pub fn quote_argv<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A command to run: program, args, working dir and extra environment.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub argv: Vec<String>,
    pub dir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
}

impl Cmd {
    pub fn new<S: AsRef<str>>(argv: &[S]) -> Self {
        Cmd {
            argv: argv.iter().map(|s| s.as_ref().to_string()).collect(),
            dir: None,
            env: vec![],
        }
    }
    pub fn dir(mut self, d: &Path) -> Self {
        self.dir = Some(d.to_path_buf());
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    /// The line a person can paste to rerun it.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.dir {
            s.push_str(&format!("cd {} && ", quote(&d.to_string_lossy())));
        }
        for (k, v) in &self.env {
            s.push_str(&format!("{}={} ", k, quote(v)));
        }
        s + &quote_argv(&self.argv)
    }
    fn expression(&self) -> duct::Expression {
        let args: Vec<OsString> = self.argv[1..].iter().map(OsString::from).collect();
        let mut e = duct::cmd(&self.argv[0], args);
        if let Some(d) = &self.dir {
            e = e.dir(d);
        }
        for (k, v) in &self.env {
            e = e.env(k, v);
        }
        e
    }

    /// Run, capturing stdout; stderr is captured too and shown on failure.
    pub fn output(&self) -> Result<String> {
        let out = self
            .expression()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .with_context(|| format!("could not start `{}`", self.argv[0]))?;
        if !out.status.success() {
            bail!(
                "`{}` failed ({}):\n{}{}",
                self.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Run with stdout+stderr appended to `log`, showing progress on stderr:
    /// `label`, elapsed time, and the latest line that `progress` picks out.
    /// On failure the error names the log and quotes its last error lines.
    pub fn run_logged(
        &self,
        log: &Path,
        label: &str,
        progress: fn(&str) -> Option<String>,
    ) -> Result<()> {
        self.run_watched(log, label, progress, None).map(|_| ())
    }

    /// `run_logged`, counting the picked lines that `count` says are one
    /// step of the work, shown against the steps expected; how many there
    /// were.
    pub fn run_counted(
        &self,
        log: &Path,
        label: &str,
        progress: fn(&str) -> Option<String>,
        count: Count,
    ) -> Result<u64> {
        self.run_watched(log, label, progress, Some(count))
    }

    fn run_watched(
        &self,
        log: &Path,
        label: &str,
        progress: fn(&str) -> Option<String>,
        count: Option<Count>,
    ) -> Result<u64> {
        let mut logf = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening log {}", log.display()))?;
        writeln!(logf, "$ {}", self.display())?;
        let reader = self
            .expression()
            .stderr_to_stdout()
            .unchecked()
            .before_spawn(|cmd| {
                interrupt::isolate_child(cmd);
                Ok(())
            })
            .reader()
            .with_context(|| format!("could not start `{}`", self.argv[0]))?;
        // A watcher stops the child's whole process group on SIGINT/SIGTERM;
        // the read loop then sees the end of the output.
        let pid = reader.pids().first().copied().unwrap_or(0);
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let done = done.clone();
            std::thread::spawn(move || stop_on_signal(pid, &done))
        };
        let start = Instant::now();
        let mut shown = match &count {
            Some(c) => Progress::counted(label, c.unit, c.expected),
            None => Progress::command(label),
        };
        let mut steps = 0u64;
        let mut last = String::new();
        let mut lines = BufReader::new(&reader);
        let mut line = Vec::new();
        let read = loop {
            line.clear();
            match lines.read_until(b'\n', &mut line) {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
            logf.write_all(&line)?;
            if let Some(p) = progress(String::from_utf8_lossy(&line).trim_end()) {
                if count.as_ref().is_some_and(|c| (c.counts)(&p)) {
                    steps += 1;
                }
                last = p;
            }
            let eta = count
                .as_ref()
                .and_then(|c| c.expected)
                .and_then(|n| crate::progress::rate_eta(start.elapsed(), steps, n));
            shown.update(steps, eta, &last);
        };
        drop(shown);
        done.store(true, Ordering::SeqCst);
        let _ = watcher.join();
        if interrupt::requested() {
            return Err(
                anyhow::Error::new(interrupt::Interrupted).context(format!("{label} stopped"))
            );
        }
        read.with_context(|| format!("reading output of {label}"))?;
        let status = reader
            .try_wait()
            .context("waiting for child")?
            .map(|o| o.status)
            .context("child did not finish")?;
        if !status.success() {
            drop(logf);
            bail!(
                "{label} failed ({status}) after {:.0?}. Last error lines:\n{}\nfull log: {}\nrerun: {}",
                start.elapsed(),
                error_excerpt(log),
                log.display(),
                self.display()
            );
        }
        Ok(steps)
    }
}

/// What a long command counts: the picked lines that are one step each
/// (`counts`), named `unit`, and how many are expected, when that is known.
pub struct Count {
    pub counts: fn(&str) -> bool,
    pub unit: &'static str,
    pub expected: Option<u64>,
}

/// Until `done`: on SIGINT/SIGTERM, SIGTERM the child's process group, then
/// SIGKILL it if it is still there 3 s later.
fn stop_on_signal(pid: u32, done: &AtomicBool) {
    while !done.load(Ordering::SeqCst) {
        if interrupt::requested() {
            interrupt::kill_group(pid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            interrupt::kill_group(pid, libc::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last lines of a log that look like errors (or just its tail).
pub fn error_excerpt(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let errors: Vec<&str> = lines.iter().copied().filter(|l| is_error_line(l)).collect();
    let pick: Vec<&str> = if errors.is_empty() { lines } else { errors };
    let tail = &pick[pick.len().saturating_sub(12)..];
    tail.iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A compiler, make or tool error line (not a file that merely has "error" in its name).
fn is_error_line(l: &str) -> bool {
    ["error:", "Error ", "FAILED", "***", "fatal:"]
        .iter()
        .any(|p| l.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines() {
        assert!(is_error_line("mm/a.c:20:58: error: unknown type name"));
        assert!(is_error_line("make[4]: *** [x] Error 1"));
        assert!(!is_error_line("  CC      tools/objtool/str_error_r.o"));
    }

    #[test]
    fn a_counted_command_counts_the_picked_lines_that_are_steps() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("make.log");
        let made = Cmd::new(&[
            "sh",
            "-c",
            "printf '  CC      a.o\\n  AR      b.a\\nnoise\\n  CC      c.o\\n'",
        ])
        .run_counted(
            &log,
            "make",
            |l| {
                l.trim()
                    .split_once(' ')
                    .map(|(v, t)| format!("{v} {}", t.trim()))
            },
            Count {
                counts: |s| s.ends_with(".o"),
                unit: "objects",
                expected: Some(10),
            },
        )
        .unwrap();
        assert_eq!(made, 2);
        assert!(std::fs::read_to_string(&log)
            .unwrap()
            .contains("  AR      b.a"));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("abc-1.2/x"), "abc-1.2/x");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(
            quote_argv(&["make", "CC=ccache gcc"]),
            "make 'CC=ccache gcc'"
        );
    }
}
