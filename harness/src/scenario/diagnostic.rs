//! Problems found in scenario files, rendered like compiler errors.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in one scenario file.
///
/// `line` and `column` are 1-based (the column counts characters); `line == 0`
/// means the problem concerns the file as a whole (its name, or reading it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
    /// The text of line `line`, shown under the message with a caret.
    pub source_line: Option<String>,
    /// How many characters the caret underlines (at least one is drawn).
    pub width: usize,
}

impl Diagnostic {
    /// A problem with the file as a whole.
    pub fn file(path: &Path, message: impl Into<String>, hint: Option<String>) -> Self {
        Diagnostic {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            hint,
            source_line: None,
            width: 0,
        }
    }

    /// A problem at byte range `span` of `text` (the whole file).
    pub fn at(
        path: &Path,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        let (line, column) = line_col(text, span.start);
        let source_line = text.split('\n').nth(line - 1).unwrap_or("");
        let source_line = source_line.strip_suffix('\r').unwrap_or(source_line);
        let end = span.end.clamp(span.start, text.len());
        let start = span.start.min(end);
        let underlined = text
            .get(start..end)
            .map(|s| s.split('\n').next().unwrap_or("").chars().count())
            .unwrap_or(1);
        let room = source_line.chars().count().saturating_sub(column - 1);
        Diagnostic {
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint,
            source_line: Some(source_line.to_string()),
            width: underlined.min(room).max(1),
        }
    }
}

/// 1-based (line, column) of byte `offset` in `text`; the column counts
/// characters. Offsets past the end land just after the last character.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        if self.line == 0 {
            writeln!(f, "{path}: error: {}", self.message)?;
        } else {
            writeln!(
                f,
                "{path}:{}:{}: error: {}",
                self.line, self.column, self.message
            )?;
        }
        let gutter = if self.line == 0 {
            1
        } else {
            self.line.to_string().len()
        };
        let pad = " ".repeat(gutter);
        if let Some(src) = &self.source_line {
            // Keep tabs in the caret line so the caret stays under its column.
            let lead: String = src
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{pad} |")?;
            writeln!(f, "{} | {src}", self.line)?;
            writeln!(f, "{pad} | {lead}{}", "^".repeat(self.width.max(1)))?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "{pad} = help: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found while loading a set of scenario files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// How many distinct files the problems are in.
    pub fn file_count(&self) -> usize {
        self.0
            .iter()
            .map(|d| &d.path)
            .collect::<BTreeSet<_>>()
            .len()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        let n = self.0.len();
        let m = self.file_count();
        write!(
            f,
            "{n} problem{} in {m} file{}; no VM was started",
            if n == 1 { "" } else { "s" },
            if m == 1 { "" } else { "s" },
        )
    }
}

impl std::error::Error for Diagnostics {}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `a`, `b`, `c`
pub fn backticked<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A problem located by byte range in the file being checked; becomes a
/// [`Diagnostic`] once the file's path and text are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub span: Range<usize>,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(span: Range<usize>, message: impl Into<String>, hint: Option<String>) -> Self {
        Problem {
            span,
            message: message.into(),
            hint,
        }
    }

    pub fn into_diagnostic(self, path: &Path, text: &str) -> Diagnostic {
        Diagnostic::at(path, text, self.span, self.message, self.hint)
    }
}
