//! Running a `kind = "kselftest"` scenario: a selftest binary from the
//! kernel tree under test, its output forwarded line by line. Its KTAP is
//! parsed on the host; here only the exit status counts.

use std::io::{self, BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use hmmlab_proto::plan::BIN_DIR;
use hmmlab_proto::scenario::Kselftest;
use hmmlab_proto::{Outcome, Record};

use crate::child::Verdict;
use crate::results::Results;
use crate::sysnames::describe_signal;

/// The kselftest framework's "skipped" exit status.
const KSFT_SKIP: i32 = 4;

pub fn run(name: &str, spec: Option<&Kselftest>, results: &Results) -> Verdict {
    let Some(spec) = spec else {
        return Verdict::error("a kselftest scenario needs a [kselftest] table");
    };
    let path = Path::new(BIN_DIR).join(&spec.binary);
    match run_forwarding(&path, &spec.args, |line| {
        results.emit(&Record::Output {
            scenario: name.to_string(),
            line,
        })
    }) {
        Ok(status) => verdict_of(status),
        Err(e) => Verdict::error(format!("cannot run {}: {e}", path.display())),
    }
}

/// Run `path` with stdout and stderr on one pipe, handing each line to
/// `on_line` as it comes.
fn run_forwarding(
    path: &Path,
    args: &[String],
    mut on_line: impl FnMut(String),
) -> io::Result<ExitStatus> {
    let (reader, writer) = io::pipe()?;
    let mut command = Command::new(path);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    let mut child = command.spawn()?;
    // Our copies of the write end must go, or the reader never sees EOF.
    drop(command);

    for line in BufReader::new(reader).split(b'\n') {
        match line {
            Ok(mut bytes) => {
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
                on_line(String::from_utf8_lossy(&bytes).into_owned());
            }
            Err(e) => on_line(format!("hmmlab-guest: reading the output failed: {e}")),
        }
    }
    child.wait()
}

fn verdict_of(status: ExitStatus) -> Verdict {
    match (status.code(), status.signal()) {
        (Some(0), _) => Verdict::pass(),
        (Some(KSFT_SKIP), _) => Verdict::with(Outcome::Skip, "exit status 4 (KSFT_SKIP)"),
        (Some(code), _) => Verdict::with(Outcome::Fail, format!("exit status {code}")),
        (None, Some(signal)) => Verdict::with(
            Outcome::Fail,
            format!("killed by {}", describe_signal(signal)),
        ),
        (None, None) => Verdict::with(Outcome::Fail, format!("ended with {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_both_streams_and_maps_status() {
        let mut lines = Vec::new();
        let status = run_forwarding(
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                "echo one; echo two >&2; printf 'three\\r\\n'; exit 4".into(),
            ],
            |l| lines.push(l),
        )
        .unwrap();
        assert_eq!(lines, ["one", "two", "three"]);
        assert_eq!(verdict_of(status).outcome, Outcome::Skip);
    }

    #[test]
    fn statuses() {
        assert_eq!(verdict_of(ExitStatus::from_raw(0)), Verdict::pass());
        assert_eq!(
            verdict_of(ExitStatus::from_raw(1 << 8)).message.as_deref(),
            Some("exit status 1")
        );
        assert_eq!(
            verdict_of(ExitStatus::from_raw(libc::SIGSEGV))
                .message
                .as_deref(),
            Some("killed by signal 11 (SIGSEGV)")
        );
    }

    #[test]
    fn missing_binary_is_an_error() {
        let results = Results::stdio(io::stderr()).unwrap();
        let spec = Kselftest {
            binary: "no-such-selftest".into(),
            args: vec![],
            known_failure: vec![],
            exclude: vec![],
        };
        assert_eq!(run("x", Some(&spec), &results).outcome, Outcome::Error);
    }
}
