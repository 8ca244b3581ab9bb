//! The run's own lines for the terminal (progress, summary, warnings).
//! A caller that keeps a live line at the bottom of the terminal (xtask's
//! progress bar over a mutation run's boots) sets a printer here, so these
//! lines are printed above that line instead of through it.

use std::io::Write;
use std::sync::{Arc, RwLock};

/// Where a text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// Prints a text (with its own newlines) to a stream.
pub type Printer = Arc<dyn Fn(Stream, &str) + Send + Sync>;

static PRINTER: RwLock<Option<Printer>> = RwLock::new(None);

/// Print through `p` from now on (None: straight to the stream); the
/// printer that was set before, to be set again when `p`'s line is gone.
pub fn set_printer(p: Option<Printer>) -> Option<Printer> {
    let mut slot = PRINTER.write().unwrap_or_else(|e| e.into_inner());
    std::mem::replace(&mut *slot, p)
}

/// `text` on stderr, through the printer when one is set.
pub fn err(text: &str) {
    say(Stream::Err, text);
}

/// `text` on stdout, through the printer when one is set.
pub fn out(text: &str) {
    say(Stream::Out, text);
}

fn say(stream: Stream, text: &str) {
    if text.is_empty() {
        return;
    }
    let printer = PRINTER.read().unwrap_or_else(|e| e.into_inner()).clone();
    match printer {
        Some(p) => p(stream, text),
        None => write(stream, text),
    }
}

/// `text` straight to the stream, flushed.
pub fn write(stream: Stream, text: &str) {
    match stream {
        Stream::Out => {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(text.as_bytes());
            let _ = o.flush();
        }
        Stream::Err => {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }
}
