//! A coverage run's counters: before each scenario the guest zeroes the
//! kernel's gcov counters (they are global), after it sends each covered
//! object's `.gcda` file, as debugfs shows it, to the host.
//!
//! They go on a serial port of their own ([`COVERAGE_TTY`]), never on the
//! results channel: a `.gcda` is binary and tens of kilobytes, the results
//! channel is JSON lines the host reads while the VM runs. The stream is a
//! sequence of frames, each one JSON header line ([`Header`]) followed, for
//! a file, by exactly `len` raw bytes. A stream cut short (the VM ended
//! mid-file) loses only its last frame, and says so.

use serde::{Deserialize, Serialize};

/// The guest's coverage channel: the third serial port.
pub const COVERAGE_TTY: &str = "/dev/ttyS2";
/// Where the kernel shows its gcov counters (`CONFIG_GCOV_KERNEL`), under
/// the build's object tree path: `<GCOV_DIR>/<objtree>/mm/migrate_device.gcda`.
pub const GCOV_DIR: &str = "/sys/kernel/debug/gcov";
/// Writing anything here zeroes every counter (kernel/gcov/fs.c, reset_write()).
pub const GCOV_RESET: &str = "/sys/kernel/debug/gcov/reset";

/// What the guest sends in a coverage run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CoveragePlan {
    /// The kernel's object tree, as the build saw it: debugfs shows the
    /// counters under `GCOV_DIR` + this path.
    pub objtree: String,
    /// The counters to send, relative to the object tree
    /// (`mm/migrate_device.gcda`).
    pub gcda: Vec<String>,
}

impl CoveragePlan {
    /// Where debugfs shows `gcda` (one of `self.gcda`).
    pub fn debugfs_path(&self, gcda: &str) -> String {
        format!(
            "{GCOV_DIR}/{}/{gcda}",
            self.objtree.trim_start_matches('/').trim_end_matches('/')
        )
    }
}

/// One frame's header line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "t", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Header {
    /// `len` bytes follow: the counters of object `gcda` after `instance`.
    Gcda {
        instance: String,
        gcda: String,
        len: u64,
    },
    /// The counters of `instance` could not be reset or read.
    Problem { instance: String, message: String },
}

/// One frame, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Gcda {
        instance: String,
        gcda: String,
        data: Vec<u8>,
    },
    Problem {
        instance: String,
        message: String,
    },
}

impl Frame {
    /// The frame's bytes: header line, then the file.
    pub fn encode(&self) -> Vec<u8> {
        let (header, data): (Header, &[u8]) = match self {
            Frame::Gcda {
                instance,
                gcda,
                data,
            } => (
                Header::Gcda {
                    instance: instance.clone(),
                    gcda: gcda.clone(),
                    len: data.len() as u64,
                },
                data,
            ),
            Frame::Problem { instance, message } => (
                Header::Problem {
                    instance: instance.clone(),
                    message: message.clone(),
                },
                &[],
            ),
        };
        let mut out = serde_json::to_vec(&header).expect("a header always serializes");
        out.push(b'\n');
        out.extend_from_slice(data);
        out
    }
}

/// A coverage stream, decoded: every whole frame, and what was wrong with
/// the rest (a header that does not parse, a file cut short), if anything.
/// Decoding stops at the first such problem: what follows cannot be framed.
pub fn decode(mut bytes: &[u8]) -> (Vec<Frame>, Option<String>) {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
            let why = cut_short(&frames, "a header line");
            return (frames, Some(why));
        };
        let line = &bytes[..nl];
        bytes = &bytes[nl + 1..];
        let header: Header = match serde_json::from_slice(line) {
            Ok(h) => h,
            Err(e) => {
                let shown = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
                return (
                    frames,
                    Some(format!("unreadable coverage frame header ({e}): {shown}")),
                );
            }
        };
        match header {
            Header::Problem { instance, message } => {
                frames.push(Frame::Problem { instance, message })
            }
            Header::Gcda {
                instance,
                gcda,
                len,
            } => {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if bytes.len() < len {
                    return (
                        frames,
                        Some(format!(
                            "the counters {gcda} of {instance} were cut short: {} of {len} bytes \
                             (the VM ended while sending them)",
                            bytes.len()
                        )),
                    );
                }
                frames.push(Frame::Gcda {
                    instance,
                    gcda,
                    data: bytes[..len].to_vec(),
                });
                bytes = &bytes[len..];
            }
        }
    }
    (frames, None)
}

fn cut_short(frames: &[Frame], what: &str) -> String {
    let after = match frames.last() {
        Some(Frame::Gcda { instance, gcda, .. }) => format!(" after {gcda} of {instance}"),
        Some(Frame::Problem { instance, .. }) => format!(" after a problem of {instance}"),
        None => String::new(),
    };
    format!("the coverage stream ends in the middle of {what}{after}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gcda(instance: &str, data: &[u8]) -> Frame {
        Frame::Gcda {
            instance: instance.into(),
            gcda: "mm/migrate_device.gcda".into(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn frames_round_trip_binary_data() {
        // Newlines and bytes that are not UTF-8 inside a file.
        let frames = vec![
            gcda("a@madvise", b"adcg\n\x00\xff\n"),
            Frame::Problem {
                instance: "b@madvise".into(),
                message: "cannot read\nx".into(),
            },
            gcda("b@always", b""),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(|f| f.encode()).collect();
        assert_eq!(decode(&bytes), (frames, None));
        assert_eq!(decode(b""), (vec![], None));
    }

    #[test]
    fn a_stream_cut_short_keeps_the_whole_frames_and_says_where() {
        let mut bytes = gcda("a@madvise", b"0123456789").encode();
        let whole = bytes.len();
        bytes.extend(gcda("b@madvise", b"0123456789").encode());
        let (frames, problem) = decode(&bytes[..bytes.len() - 3]);
        assert_eq!(frames, vec![gcda("a@madvise", b"0123456789")]);
        let p = problem.unwrap();
        assert!(
            p.contains("b@madvise") && p.contains("7 of 10 bytes"),
            "{p}"
        );
        let (frames, problem) = decode(&bytes[..whole + 5]);
        assert_eq!(frames.len(), 1);
        assert!(
            problem.unwrap().contains("middle of a header line after"),
            "cut in the header"
        );
        let (frames, problem) = decode(b"{\"t\":\"what\"}\n");
        assert!(frames.is_empty());
        assert!(problem
            .unwrap()
            .contains("unreadable coverage frame header"));
    }

    #[test]
    fn debugfs_paths_follow_the_object_tree() {
        let p = CoveragePlan {
            objtree: "/root/.cache/hmmlab/src/x/obj/k/".into(),
            gcda: vec!["mm/migrate_device.gcda".into()],
        };
        assert_eq!(
            p.debugfs_path(&p.gcda[0]),
            "/sys/kernel/debug/gcov/root/.cache/hmmlab/src/x/obj/k/mm/migrate_device.gcda"
        );
    }
}
