//! The results channel: one JSON [`Record`] per line.
//!
//! In the VM this is the second serial port, in raw mode so the tty adds no
//! `\r`. Each record goes out in one write(2), so the records of a scenario
//! process and of PID 1, which share the descriptor across fork(), never
//! interleave within a line.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;

use hmmlab_proto::Record;

pub struct Results {
    out: File,
}

impl Results {
    /// Open a serial tty for writing and put it in raw mode.
    pub fn open_tty(path: &str) -> Result<Results, String> {
        Ok(Results {
            out: open_raw_tty(path).map_err(|e| format!("results tty: {e}"))?,
        })
    }

    /// Records on a standard stream (by-hand runs, or the console when the
    /// results tty is unusable).
    pub fn stdio(fd: impl AsFd) -> Result<Results, String> {
        let owned = fd
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| format!("dup: {e}"))?;
        Ok(Results {
            out: File::from(owned),
        })
    }

    pub fn try_clone(&self) -> Result<Results, String> {
        let out = self
            .out
            .try_clone()
            .map_err(|e| format!("dup results channel: {e}"))?;
        Ok(Results { out })
    }

    /// Send one record. A failure is reported on stderr (the console): there
    /// is no other place left to report it.
    pub fn emit(&self, record: &Record) {
        if let Err(e) = self.try_emit(record) {
            eprintln!("hmmlab-guest: cannot send a result record: {e}");
        }
    }

    /// Wait until everything written has left the serial port: a power-off
    /// right after the last write would otherwise cut the tail of the
    /// results. Nothing to do on a pipe or file.
    pub fn drain(&self) {
        // SAFETY: the fd is open; tcdrain only fails (ENOTTY) on a non-tty.
        unsafe { libc::tcdrain(self.out.as_raw_fd()) };
    }

    fn try_emit(&self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        (&self.out).write_all(&line)
    }
}

/// Open a serial tty for writing, in raw mode: no `\r` added, every byte
/// as written (the coverage channel sends binary files on it too).
pub fn open_raw_tty(path: &str) -> Result<File, String> {
    // O_NOCTTY: PID 1 must not acquire the port as its controlling
    // terminal. O_CLOEXEC (set by std): selftest binaries never write to
    // it directly.
    let out = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot open {path}: {e}"))?;
    make_raw(&out).map_err(|e| format!("cannot put {path} in raw mode: {e}"))?;
    Ok(out)
}

fn make_raw(tty: &File) -> io::Result<()> {
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it before it is read.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open for the duration of these calls; t is a valid termios.
    unsafe {
        if libc::tcgetattr(fd, &mut t) != 0 {
            return Err(io::Error::last_os_error());
        }
        // The speed is left alone: it does not pace an emulated UART.
        libc::cfmakeraw(&mut t);
        if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn one_line_per_record() {
        let (mut reader, writer) = io::pipe().unwrap();
        let results = Results::stdio(&writer).unwrap();
        drop(writer);
        results.emit(&Record::Done);
        results.emit(&Record::Fatal {
            message: "a\nb".into(),
        });
        drop(results);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(
            text,
            "{\"t\":\"done\"}\n{\"t\":\"fatal\",\"message\":\"a\\nb\"}\n"
        );
    }
}
