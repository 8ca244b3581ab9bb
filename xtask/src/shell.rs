//! Running host commands: every command is an argv (never a shell string),
//! echoed shell-quoted so a person can rerun it, with its output in a log.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use hmmlab_harness::interrupt;

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
        let mut ticker = Ticker::new(label);
        let mut lines = BufReader::new(&reader);
        let mut line = Vec::new();
        let mut last = String::new();
        let read = loop {
            line.clear();
            match lines.read_until(b'\n', &mut line) {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
            logf.write_all(&line)?;
            if let Some(p) = progress(String::from_utf8_lossy(&line).trim_end()) {
                last = p;
            }
            ticker.tick(start.elapsed(), &last);
        };
        ticker.finish();
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
        Ok(())
    }
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

/// Progress on stderr: a rewritten line on a terminal, a line every 20 s otherwise.
struct Ticker {
    label: String,
    tty: bool,
    last_draw: Option<Instant>,
    drew: bool,
}

impl Ticker {
    fn new(label: &str) -> Self {
        Ticker {
            label: label.into(),
            tty: std::io::stderr().is_terminal(),
            last_draw: None,
            drew: false,
        }
    }
    fn tick(&mut self, elapsed: Duration, what: &str) {
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(20)
        };
        if self.last_draw.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last_draw = Some(Instant::now());
        let mut what: String = what.chars().take(60).collect();
        if what.is_empty() {
            what = "…".into();
        }
        if self.tty {
            eprint!(
                "\r\x1b[2K  {} [{:>4}s] {}",
                self.label,
                elapsed.as_secs(),
                what
            );
            self.drew = true;
        } else if elapsed > Duration::from_secs(5) {
            eprintln!("  {} [{:>4}s] {}", self.label, elapsed.as_secs(), what);
        }
    }
    fn finish(&mut self) {
        if self.tty && self.drew {
            eprint!("\r\x1b[2K");
        }
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
