//! The GCC version a `.gcno`/`.gcda` file was written for, read from its
//! header, against the host `gcov`'s: gcov reads only its own compiler's
//! files, and a `.gcda` only with the `.gcno` of the same compile.

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::shell::Cmd;

/// A GCC release as gcov files record it (major.minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GccVersion {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for GccVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The header of a gcov notes or data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: GccVersion,
    /// Identifies the compile: a `.gcda` belongs to the `.gcno` with its stamp.
    pub stamp: u32,
}

impl GccVersion {
    /// Decode the 4-byte version word (`B22*` is 12.2; GCC before 9 wrote
    /// `407*` for 4.7).
    pub fn from_word(w: [u8; 4]) -> Option<GccVersion> {
        let digit = |b: u8| b.is_ascii_digit().then(|| u32::from(b - b'0'));
        if w[0].is_ascii_uppercase() {
            Some(GccVersion {
                major: u32::from(w[0] - b'A') * 10 + digit(w[1])?,
                minor: digit(w[2])?,
            })
        } else {
            Some(GccVersion {
                major: digit(w[0])?,
                minor: digit(w[1])? * 10 + digit(w[2])?,
            })
        }
    }

    /// `12.2` from `gcov --version`'s first line (`gcov (Debian 12.2.0-14) 12.2.0`).
    pub fn from_version_line(line: &str) -> Option<GccVersion> {
        let last = line.split_whitespace().last()?;
        let mut parts = last.split('.');
        Some(GccVersion {
            major: parts.next()?.parse().ok()?,
            minor: parts.next()?.parse().ok()?,
        })
    }
}

/// Read the header of `path`, a file with magic `gcno` or `gcda` (either byte order).
pub fn read_header(path: &Path, magic: &[u8; 4]) -> Result<Header> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse_header(&bytes, magic).with_context(|| format!("{} is not a gcov file", path.display()))
}

pub fn parse_header(bytes: &[u8], magic: &[u8; 4]) -> Result<Header> {
    if bytes.len() < 12 {
        bail!("{} bytes, shorter than a gcov header", bytes.len());
    }
    let word = |i: usize| -> [u8; 4] { bytes[i..i + 4].try_into().expect("4 bytes") };
    let little = {
        let mut m = *magic;
        m.reverse();
        m
    };
    // Words are in the byte order of the machine that wrote them; the magic
    // says which.
    let swap = if word(0) == little {
        true
    } else if word(0) == *magic {
        false
    } else {
        bail!(
            "magic {:?}, expected {:?}",
            String::from_utf8_lossy(&word(0)),
            String::from_utf8_lossy(magic)
        );
    };
    let order = |mut w: [u8; 4]| {
        if swap {
            w.reverse();
        }
        w
    };
    let v = order(word(4));
    let version = GccVersion::from_word(v).with_context(|| {
        format!(
            "unknown version word {:?}",
            String::from_utf8_lossy(&v).into_owned()
        )
    })?;
    Ok(Header {
        version,
        stamp: u32::from_be_bytes(order(word(8))),
    })
}

/// The GCC version of the host's `gcov` program.
pub fn host_gcov(gcov: &str) -> Result<GccVersion> {
    let out = Cmd::new(&[gcov, "--version"]).output().with_context(|| {
        format!("running `{gcov} --version`: install gcc (Debian package gcc), which brings gcov")
    })?;
    let first = out.lines().next().unwrap_or_default();
    GccVersion::from_version_line(first)
        .with_context(|| format!("cannot read a version from `{gcov} --version`: {first:?}"))
}

/// Fail unless `gcno` was written by the GCC that `host` (gcov's version) is.
pub fn check_compiler(gcno: &Path, notes: &Header, gcov: &str, host: GccVersion) -> Result<()> {
    if notes.version != host {
        bail!(
            "{} was written by GCC {}, but `{gcov}` is GCC {host}: install the gcov of \
             the compiler that built it (Debian package gcc-{m}, which has gcov-{m}) and \
             pass --gcov gcov-{m}",
            gcno.display(),
            notes.version,
            m = notes.version.major,
        );
    }
    Ok(())
}

/// Fail unless `gcda` belongs to the compile that wrote `gcno`.
pub fn check_pair(gcno: &Path, notes: &Header, gcda: &Path, data: &Header) -> Result<()> {
    if data.version != notes.version || data.stamp != notes.stamp {
        bail!(
            "{} (GCC {}, stamp {:08x}) does not belong to {} (GCC {}, stamp {:08x}): \
             the counters come from another build of the object than --build holds",
            gcda.display(),
            data.version,
            data.stamp,
            gcno.display(),
            notes.version,
            notes.stamp
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_words() {
        let v = |s: &[u8; 4]| GccVersion::from_word(*s).unwrap().to_string();
        assert_eq!(v(b"B22*"), "12.2");
        assert_eq!(v(b"B40*"), "14.0");
        assert_eq!(v(b"A93*"), "9.3");
        assert_eq!(v(b"407*"), "4.7");
        assert_eq!(GccVersion::from_word(*b"B?2*"), None);
    }

    #[test]
    fn version_lines() {
        let v = GccVersion::from_version_line("gcov (Debian 12.2.0-14+deb12u1) 12.2.0").unwrap();
        assert_eq!(
            v,
            GccVersion {
                major: 12,
                minor: 2
            }
        );
    }

    #[test]
    fn headers_in_both_byte_orders() {
        // What GCC 12.2 on x86_64 writes: "oncg" "*22B" stamp.
        let le = b"oncg*22B\x7b\xc6\xf9\x41";
        let h = parse_header(le, b"gcno").unwrap();
        assert_eq!(
            h.version,
            GccVersion {
                major: 12,
                minor: 2
            }
        );
        assert_eq!(h.stamp, 0x41f9c67b);
        let be = b"gcnoB22*\x41\xf9\xc6\x7b";
        assert_eq!(parse_header(be, b"gcno").unwrap(), h);
        let err = parse_header(le, b"gcda").unwrap_err().to_string();
        assert!(err.contains("expected \"gcda\""), "{err}");
        assert!(parse_header(b"oncg", b"gcno").is_err());
    }

    #[test]
    fn mismatches_name_what_to_install() {
        let notes = Header {
            version: GccVersion {
                major: 14,
                minor: 2,
            },
            stamp: 1,
        };
        let host = GccVersion {
            major: 12,
            minor: 2,
        };
        let err = check_compiler(Path::new("mm/x.gcno"), &notes, "gcov", host)
            .unwrap_err()
            .to_string();
        assert!(err.contains("GCC 14.2") && err.contains("gcc-14"), "{err}");
        let data = Header { stamp: 2, ..notes };
        let err = check_pair(Path::new("a.gcno"), &notes, Path::new("a.gcda"), &data)
            .unwrap_err()
            .to_string();
        assert!(err.contains("another build"), "{err}");
        check_pair(Path::new("a.gcno"), &notes, Path::new("a.gcda"), &notes).unwrap();
    }
}
