//! Classify a kernel console log: panics, oopses, BUGs, WARNINGs, sanitizer
//! reports, lockups and RCU stalls. Findings are attributed to scenarios by
//! the markers the guest driver writes to /dev/kmsg around each scenario.

use serde::{Deserialize, Serialize};

/// Marker lines the guest writes into the kernel log (see guest/src/kmsg.rs).
pub const MARK_START: &str = "hmmlab: scenario-start ";
pub const MARK_END: &str = "hmmlab: scenario-end ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    Panic,
    Oops,
    Bug,
    Warning,
    Kasan,
    Kfence,
    Lockup,
    RcuStall,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// 1-based line in the console log.
    pub line: usize,
    /// The scenario running when it was printed, if the markers tell.
    pub scenario: Option<String>,
    /// Outside every scenario: `boot` (before the first), `between A and
    /// B`, or `shutdown` (after the last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside: Option<String>,
    /// The finding's line and the few after it.
    pub excerpt: String,
    /// The console line before it: for a WARNING, the message WARN() gave.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub before: String,
}

impl Finding {
    /// Does `text` appear in the finding's own line or in the line before
    /// it (never in the call trace that follows)?
    pub fn mentions(&self, text: &str) -> bool {
        let first = self.excerpt.lines().next().unwrap_or("");
        first.contains(text) || self.before.contains(text)
    }
}

const PATTERNS: &[(&str, FindingKind)] = &[
    ("Kernel panic - not syncing", FindingKind::Panic),
    ("Oops: ", FindingKind::Oops),
    ("general protection fault", FindingKind::Oops),
    ("BUG: KASAN:", FindingKind::Kasan),
    ("BUG: KFENCE:", FindingKind::Kfence),
    ("BUG: soft lockup", FindingKind::Lockup),
    ("Watchdog detected hard LOCKUP", FindingKind::Lockup),
    ("rcu: INFO:", FindingKind::RcuStall),
    ("detected stalls on CPUs", FindingKind::RcuStall),
    ("self-detected stall on CPU", FindingKind::RcuStall),
    ("kernel BUG at", FindingKind::Bug),
    ("BUG: ", FindingKind::Bug),
    ("WARNING: ", FindingKind::Warning),
];

/// Strip the `[    1.234567] ` timestamp prefix, if any.
fn body(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with('[') {
        if let Some(i) = t.find("] ") {
            return &t[i + 2..];
        }
    }
    t
}

impl FindingKind {
    /// Does this finding mean the kernel can no longer be trusted to finish the run?
    pub fn is_fatal(self) -> bool {
        self != FindingKind::Warning
    }
}

/// The kind of finding a single console line starts, if any.
pub fn line_kind(line: &str) -> Option<FindingKind> {
    let b = body(line);
    PATTERNS
        .iter()
        .find(|(p, _)| b.starts_with(p) || (p.len() > 12 && b.contains(p)))
        .map(|&(_, k)| k)
}

pub fn classify(log: &str) -> Vec<Finding> {
    let lines: Vec<&str> = log.lines().collect();
    let marks = markers(&lines);
    let mut current: Option<String> = None;
    let mut out = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let b = body(raw);
        if let Some(name) = b.strip_prefix(MARK_START) {
            current = Some(name.trim().to_string());
            continue;
        }
        if b.strip_prefix(MARK_END).is_some() {
            current = None;
            continue;
        }
        let Some(&(_, kind)) = PATTERNS
            .iter()
            .find(|(p, _)| b.starts_with(p) || (p.len() > 12 && b.contains(p)))
        else {
            continue;
        };
        let end = (i + 12).min(lines.len());
        out.push(Finding {
            kind,
            line: i + 1,
            outside: current.is_none().then(|| outside(&marks, i)),
            scenario: current.clone(),
            excerpt: lines[i..end].join("\n"),
            before: i
                .checked_sub(1)
                .map(|j| body(lines[j]).to_string())
                .unwrap_or_default(),
        });
    }
    out
}

/// A scenario marker: its line index, whether it starts the scenario, its name.
type Marker = (usize, bool, String);

fn markers(lines: &[&str]) -> Vec<Marker> {
    let mut v = vec![];
    for (i, raw) in lines.iter().enumerate() {
        let b = body(raw);
        if let Some(name) = b.strip_prefix(MARK_START) {
            v.push((i, true, name.trim().to_string()));
        } else if let Some(name) = b.strip_prefix(MARK_END) {
            v.push((i, false, name.trim().to_string()));
        }
    }
    v
}

/// Where line `i`, outside every scenario, falls: `boot`, `between A and
/// B`, or `shutdown`.
fn outside(marks: &[Marker], i: usize) -> String {
    let before = marks.iter().rev().find(|(at, start, _)| *at < i && !*start);
    let after = marks.iter().find(|(at, start, _)| *at > i && *start);
    match (before, after) {
        (None, _) => "boot".into(),
        (Some((_, _, a)), Some((_, _, b))) => format!("between {a} and {b}"),
        (Some(_), None) => "shutdown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/data/console/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn synthetic_lines() {
        let log = "[    0.1] hello\n[    1.0] hmmlab: scenario-start a\n[    1.1] WARNING: CPU: 0 PID: 1 at mm/migrate_device.c:100 x\n[    1.2] hmmlab: scenario-end a\n[    2.0] Kernel panic - not syncing: Attempted to kill init!\n";
        let f = classify(log);
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].kind, f[0].line, f[0].scenario.as_deref()),
            (FindingKind::Warning, 3, Some("a"))
        );
        assert_eq!(
            (f[1].kind, f[1].scenario.as_deref()),
            (FindingKind::Panic, None)
        );
        assert_eq!(f[0].outside, None);
        assert_eq!(f[1].outside.as_deref(), Some("shutdown"));
    }

    #[test]
    fn findings_outside_scenarios_say_where() {
        let log = "[0.1] WARNING: CPU: 0 PID: 1 at lib/test_hmm.c:1 init\n\
                   [1.0] hmmlab: scenario-start a@madvise\n\
                   [1.2] hmmlab: scenario-end a@madvise\n\
                   [1.3] BUG: sleeping function called from invalid context\n\
                   [1.4] hmmlab: scenario-start b@madvise\n\
                   [1.5] hmmlab: scenario-end b@madvise\n\
                   [2.0] WARNING: CPU: 0 PID: 1 at kernel/reboot.c:1 x\n";
        let f = classify(log);
        let at: Vec<Option<&str>> = f.iter().map(|f| f.outside.as_deref()).collect();
        assert_eq!(
            at,
            vec![
                Some("boot"),
                Some("between a@madvise and b@madvise"),
                Some("shutdown")
            ]
        );
    }

    #[test]
    fn captured_logs() {
        for (file, expect) in [
            // A clean run of the three shipped scenarios, with scenario markers.
            ("clean.log", vec![]),
            // rdinit=/nonexistent: no working init.
            ("panic.log", vec![FindingKind::Panic]),
            // A real Oops from test_hmm's device read of a stale mirror entry.
            ("oops.log", vec![FindingKind::Bug, FindingKind::Oops]),
            // The same log cut off in the middle of the Oops line.
            ("truncated.log", vec![FindingKind::Bug, FindingKind::Oops]),
        ] {
            let Ok(_) = std::fs::metadata(format!(
                "{}/tests/data/console/{file}",
                env!("CARGO_MANIFEST_DIR")
            )) else {
                panic!("missing captured log tests/data/console/{file}");
            };
            let kinds: Vec<FindingKind> = classify(&data(file)).iter().map(|f| f.kind).collect();
            assert_eq!(kinds, expect, "{file}");
        }
    }
}
