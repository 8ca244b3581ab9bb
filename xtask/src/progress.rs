//! Progress of long work on stderr, the same way for every task: a live
//! line redrawn in place (indicatif) when stderr is a terminal, else a
//! plain line every 20 s (a CI log, output piped to a file), both with the
//! same facts: how much is done of how much, what is left and about how
//! long it takes, and what is being done now.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmmlab_harness::say::{self, Printer};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// How often a plain line is printed (none for work shorter than this).
const PLAIN_EVERY: Duration = Duration::from_secs(20);
/// How much of what is being done a plain line shows.
const PLAIN_WHAT: usize = 60;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One line redrawn in place.
    Live,
    /// A line every `PLAIN_EVERY`, each kept.
    Plain,
}

impl Mode {
    /// Live only on a terminal that can redraw a line, and never under CI
    /// (`CI` set to anything but empty, `0` or `false`): a CI log may be a
    /// terminal, but it keeps every redraw.
    pub fn choose(terminal: bool, ci: Option<&str>, term: Option<&str>) -> Mode {
        let ci = ci.is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"));
        if terminal && !ci && term != Some("dumb") {
            Mode::Live
        } else {
            Mode::Plain
        }
    }

    /// The mode for this process's stderr and environment.
    pub fn here() -> Mode {
        Mode::choose(
            std::io::stderr().is_terminal(),
            std::env::var("CI").ok().as_deref(),
            std::env::var("TERM").ok().as_deref(),
        )
    }
}

/// The progress of one long piece of work. Dropping it clears its live line.
pub struct Progress {
    label: String,
    /// What is counted (`objects`, `cells`); None for work that is not
    /// counted, which shows only its time and what it is doing.
    unit: Option<&'static str>,
    total: Option<u64>,
    done: u64,
    eta: Option<Duration>,
    what: String,
    started: Instant,
    last_plain: Instant,
    bar: Option<ProgressBar>,
    /// The harness's printer before this live line's, set again on drop.
    before: Option<Printer>,
}

impl Progress {
    /// Work that is not counted: its time and the latest of what it does.
    pub fn command(label: &str) -> Progress {
        Progress::start(Mode::here(), label, None, None)
    }

    /// Work counted in `unit`, `total` of them when that is known (a bar
    /// and an estimate), else a spinner and the count.
    pub fn counted(label: &str, unit: &'static str, total: Option<u64>) -> Progress {
        Progress::start(Mode::here(), label, Some(unit), total)
    }

    fn start(mode: Mode, label: &str, unit: Option<&'static str>, total: Option<u64>) -> Progress {
        let now = Instant::now();
        let mut p = Progress {
            label: label.to_string(),
            unit,
            total,
            done: 0,
            eta: None,
            what: String::new(),
            started: now,
            last_plain: now,
            bar: None,
            before: None,
        };
        if mode == Mode::Live {
            let bar = live_bar(label, unit.and(total));
            // The run's own lines (a mutant's boot) go above the live line.
            let b = bar.clone();
            p.before = say::set_printer(Some(Arc::new(move |stream, text| {
                b.suspend(|| say::write(stream, text))
            })));
            p.bar = Some(bar);
            p.draw();
        }
        p
    }

    /// `done` so far, about `eta` to go (None: not known yet), now doing
    /// `what` (may be empty).
    pub fn update(&mut self, done: u64, eta: Option<Duration>, what: &str) {
        self.done = done;
        self.eta = eta;
        if self.what != what {
            self.what = what.to_string();
        }
        if self.bar.is_some() {
            self.draw();
        } else if self.last_plain.elapsed() >= PLAIN_EVERY {
            self.line_now();
        }
    }

    /// The plain line now (after an item finished), the next one
    /// `PLAIN_EVERY` later; nothing more on a live line.
    pub fn line_now(&mut self) {
        if self.bar.is_some() {
            return;
        }
        self.last_plain = Instant::now();
        let what: String = self.what.chars().take(PLAIN_WHAT).collect();
        eprintln!(
            "{}",
            plain_line(&self.label, self.started.elapsed(), &self.text(&what, ": "))
        );
    }

    /// Print `line` on stderr, above the live line when there is one.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// What is done and left, then what is being done, joined by `sep`.
    fn text(&self, what: &str, sep: &str) -> String {
        let count = self
            .unit
            .map(|u| summary(self.done, self.total, u, self.eta))
            .unwrap_or_default();
        match (count.is_empty(), what.is_empty()) {
            (true, true) => "…".to_string(),
            (false, true) => count,
            (true, false) => what.to_string(),
            (false, false) => format!("{count}{sep}{what}"),
        }
    }

    fn draw(&self) {
        if let Some(b) = &self.bar {
            if self.unit.is_some() {
                b.set_position(self.done);
            }
            b.set_message(self.text(&self.what, "  "));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
            say::set_printer(self.before.take());
        }
    }
}

/// The live line: `  make bzImage [  20s] [####>---] …` with a bar when
/// the total is known, else a spinner; redrawn four times a second even
/// when nothing happens, so its time and spinner show it is not stuck.
fn live_bar(label: &str, total: Option<u64>) -> ProgressBar {
    let (bar, template) = match total {
        Some(n) => (
            ProgressBar::new(n),
            "  {prefix} [{secs}] [{bar:24}] {wide_msg}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "  {prefix} [{secs}] {spinner} {wide_msg}",
        ),
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("secs", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:>4}s", s.elapsed().as_secs());
        })
        .progress_chars("#>-");
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// A plain progress line: `  make bzImage [  40s] 1200/4500 objects, …`.
pub fn plain_line(label: &str, elapsed: Duration, text: &str) -> String {
    format!("  {label} [{:>4}s] {text}", elapsed.as_secs())
}

/// What is done of how much: `12/40 mutants, 28 left, about 9m20s to go`;
/// without a total, the count alone (`1200 objects`). Past the total (a
/// build compiling more than the last one did) nothing is said to be left.
pub fn summary(done: u64, total: Option<u64>, unit: &str, eta: Option<Duration>) -> String {
    let Some(total) = total else {
        return format!("{done} {unit}");
    };
    let mut s = format!("{done}/{total} {unit}");
    let left = total.saturating_sub(done);
    if left > 0 {
        s.push_str(&format!(", {left} left"));
        if let Some(eta) = eta {
            s.push_str(&format!(", about {} to go", duration(eta)));
        }
    }
    s
}

/// A duration as a person reads an estimate: `45s`, `3m10s`, `1h05m`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    }
}

/// The time left at the rate so far: `elapsed` for `done` of `total`.
/// None before the first is done, and once all are.
pub fn rate_eta(elapsed: Duration, done: u64, total: u64) -> Option<Duration> {
    if done == 0 || done >= total {
        return None;
    }
    Some(elapsed.mul_f64((total - done) as f64 / done as f64))
}

/// The time left for `left` items of `per_item` each, `at_once` of them at
/// a time, counted down by `since` (the time since the estimate was made,
/// when the last item finished), so the estimate falls between items.
pub fn items_eta(per_item: Duration, left: u64, at_once: usize, since: Duration) -> Duration {
    let ahead = per_item.mul_f64(left as f64 / at_once.max(1) as f64);
    ahead.saturating_sub(since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_only_on_a_terminal_outside_ci() {
        assert_eq!(Mode::choose(true, None, Some("xterm")), Mode::Live);
        assert_eq!(Mode::choose(true, None, None), Mode::Live);
        assert_eq!(Mode::choose(false, None, Some("xterm")), Mode::Plain);
        assert_eq!(Mode::choose(true, Some("true"), Some("xterm")), Mode::Plain);
        assert_eq!(Mode::choose(true, Some("1"), None), Mode::Plain);
        // Set but saying no.
        assert_eq!(Mode::choose(true, Some(""), None), Mode::Live);
        assert_eq!(Mode::choose(true, Some("false"), None), Mode::Live);
        assert_eq!(Mode::choose(true, Some("0"), None), Mode::Live);
        assert_eq!(Mode::choose(true, None, Some("dumb")), Mode::Plain);
    }

    #[test]
    fn estimates_read_as_a_person_says_them() {
        assert_eq!(duration(Duration::from_secs(0)), "0s");
        assert_eq!(duration(Duration::from_secs(45)), "45s");
        assert_eq!(duration(Duration::from_secs(190)), "3m10s");
        assert_eq!(duration(Duration::from_secs(3600 + 5 * 60 + 59)), "1h05m");
    }

    #[test]
    fn the_summary_says_done_left_and_the_estimate() {
        let m = |s| Some(Duration::from_secs(s));
        assert_eq!(
            summary(12, Some(40), "mutants", m(560)),
            "12/40 mutants, 28 left, about 9m20s to go"
        );
        assert_eq!(summary(0, Some(8), "cells", None), "0/8 cells, 8 left");
        assert_eq!(summary(1200, None, "objects", m(5)), "1200 objects");
        assert_eq!(
            summary(4600, Some(4500), "objects", m(5)),
            "4600/4500 objects"
        );
        assert_eq!(
            plain_line(
                "make bzImage",
                Duration::from_millis(40_900),
                "1200 objects"
            ),
            "  make bzImage [  40s] 1200 objects"
        );
    }

    #[test]
    fn the_rate_so_far_gives_the_time_left() {
        let s = Duration::from_secs;
        assert_eq!(rate_eta(s(100), 1000, 4000), Some(s(300)));
        assert_eq!(rate_eta(s(100), 0, 4000), None);
        assert_eq!(rate_eta(s(100), 4000, 4000), None);
        assert_eq!(rate_eta(s(100), 4100, 4000), None);
    }

    #[test]
    fn items_left_share_the_slots_and_count_down() {
        let s = Duration::from_secs;
        assert_eq!(items_eta(s(60), 5, 1, s(0)), s(300));
        assert_eq!(items_eta(s(60), 5, 2, s(0)), s(150));
        assert_eq!(items_eta(s(60), 5, 2, s(50)), s(100));
        assert_eq!(items_eta(s(60), 1, 1, s(90)), s(0));
        assert_eq!(items_eta(s(60), 3, 0, s(0)), s(180));
    }

    #[test]
    fn the_text_joins_the_count_and_what_is_done_now() {
        let mut p = Progress::start(Mode::Plain, "make bzImage", Some("objects"), Some(10));
        p.done = 4;
        p.what = "CC mm/slub.o".into();
        assert_eq!(p.text(&p.what, ": "), "4/10 objects, 6 left: CC mm/slub.o");
        let c = Progress::start(Mode::Plain, "apt-get install", None, None);
        assert_eq!(c.text("", ": "), "…");
        assert_eq!(c.text("Unpacking gcc", ": "), "Unpacking gcc");
    }
}
