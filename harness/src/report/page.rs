//! The chrome every hmmlab HTML page shares: the document around a body,
//! the style sheet, outcome colours, duration bars, the copy button and the
//! row filters. Pages are built with maud, which escapes every value it is
//! given; the only text put in unescaped is this module's own style sheet
//! and script. A page is one file: no network, no external script or font.

use hmmlab_proto::Outcome;
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// Every outcome, in the order the pages count and list them.
pub const OUTCOMES: [Outcome; 6] = [
    Outcome::Pass,
    Outcome::Fail,
    Outcome::Crashed,
    Outcome::Timeout,
    Outcome::Error,
    Outcome::Skip,
];

/// The style sheet of every page. Outcome colours are the classes
/// `o-pass`, `o-fail`, … ([`outcome_class`]).
const CSS: &str = r#"
:root { --fg: #1d2125; --muted: #5e6770; --line: #d8dde2; --bg: #fff; --panel: #f5f7f9;
  --pass: #dff3e3; --pass-fg: #17602a; --skip: #eef0f2; --skip-fg: #4c5660;
  --fail: #fbe0e0; --fail-fg: #9b1c1c; --error: #fde8cf; --error-fg: #8a4600;
  --bar: #6d8fb3; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); margin: 0 auto; padding: 1em 1.5em 3em; max-width: 1200px; }
h1 { font-size: 1.45em; margin: 0 0 .2em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .5em; border-bottom: 1px solid var(--line); padding-bottom: .2em; }
h3 { font-size: 1em; margin: 1.2em 0 .3em; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12.5px; }
pre { background: var(--panel); border: 1px solid var(--line); padding: .6em .8em; overflow-x: auto;
  white-space: pre-wrap; word-break: break-word; margin: .3em 0; }
.muted { color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; margin: .5em 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-word; }
.counts { display: flex; flex-wrap: wrap; gap: .4em; margin: .6em 0; }
.chip { padding: .15em .6em; border-radius: 1em; font-weight: 600; }
.o-pass { background: var(--pass); color: var(--pass-fg); }
.o-skip { background: var(--skip); color: var(--skip-fg); }
.o-fail, .o-crashed, .o-timeout { background: var(--fail); color: var(--fail-fg); }
.o-error { background: var(--error); color: var(--error-fg); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); position: sticky; top: 0; }
td.num { text-align: right; white-space: nowrap; }
tr.row td:first-child { border-left: 6px solid transparent; }
tr.row.o-pass td:first-child { border-left-color: var(--pass-fg); }
tr.row.o-skip td:first-child { border-left-color: #9aa3ab; }
tr.row.o-fail td:first-child, tr.row.o-crashed td:first-child, tr.row.o-timeout td:first-child
  { border-left-color: var(--fail-fg); }
tr.row.o-error td:first-child { border-left-color: var(--error-fg); }
tr.row.o-pass, tr.row.o-skip { background: none; color: inherit; }
.bar { display: inline-block; height: .7em; background: var(--bar); border-radius: 2px;
  vertical-align: middle; min-width: 1px; }
.barcell { width: 22%; }
details.steps > summary { white-space: nowrap; }
form.filters { display: flex; flex-wrap: wrap; gap: 1em; align-items: center; margin: .5em 0;
  padding: .4em .6em; background: var(--panel); border: 1px solid var(--line); }
form.filters label { display: inline-flex; gap: .3em; align-items: center; }
details > summary { cursor: pointer; }
table.steps { width: auto; margin: .3em 0; }
table.steps td, table.steps th { border: none; padding: .05em .5em; }
.failure { border: 1px solid var(--line); border-left: 6px solid var(--fail-fg); padding: .2em .9em .6em;
  margin: .8em 0; }
.failure.o-error { border-left-color: var(--error-fg); background: none; color: inherit; }
.failure.o-fail, .failure.o-crashed, .failure.o-timeout { background: none; color: inherit; }
.reproduce { display: flex; gap: .5em; align-items: flex-start; }
.reproduce code { flex: 1; background: var(--panel); border: 1px solid var(--line); padding: .3em .5em;
  word-break: break-all; }
button.copy { font: inherit; font-size: 12px; padding: .2em .7em; cursor: pointer; }
"#;

/// The script of every page: copy buttons (`button.copy[data-copy]`) and
/// row filters (`form.filters[data-table]`: each `select[data-facet]` keeps
/// the rows of that table whose `data-<facet>` words include its value;
/// the empty value keeps all).
const SCRIPT: &str = r#"
document.querySelectorAll('button.copy[data-copy]').forEach(b => b.addEventListener('click', () => {
  const text = b.dataset.copy;
  const say = s => { b.textContent = s; setTimeout(() => b.textContent = 'copy', 2000); };
  const fallback = () => {
    const t = document.createElement('textarea'); t.value = text; document.body.appendChild(t); t.select();
    let ok = false; try { ok = document.execCommand('copy'); } catch (e) {} t.remove();
    if (ok) { say('copied'); return; }
    // No clipboard here: select the line for the reader to copy.
    const code = b.parentElement.querySelector('code'), r = document.createRange();
    r.selectNodeContents(code); getSelection().removeAllRanges(); getSelection().addRange(r);
    say('selected');
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(() => say('copied'), fallback);
  } else { fallback(); }
}));
document.querySelectorAll('form.filters[data-table]').forEach(f => {
  const table = document.getElementById(f.dataset.table), shown = f.querySelector('.shown');
  const apply = () => {
    const want = [...f.querySelectorAll('select[data-facet]')].map(s => [s.dataset.facet, s.value]);
    let n = 0;
    [...table.tBodies].flatMap(b => [...b.rows]).forEach(tr => {
      const keep = want.every(([facet, v]) => v === '' || (tr.dataset[facet] || '').split(' ').includes(v));
      tr.hidden = !keep; if (keep) n++;
    });
    if (shown) shown.textContent = n;
  };
  f.addEventListener('change', apply); f.addEventListener('submit', e => e.preventDefault()); apply();
});
"#;

/// A whole page: `title`, the shared style sheet, `body`, the shared script.
pub fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                (body)
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

/// The class that colours an outcome (`o-pass`, `o-fail`, …).
pub fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "o-pass",
        Outcome::Fail => "o-fail",
        Outcome::Skip => "o-skip",
        Outcome::Timeout => "o-timeout",
        Outcome::Crashed => "o-crashed",
        Outcome::Error => "o-error",
    }
}

/// `n outcome` as a coloured chip.
pub fn chip(o: Outcome, text: &str) -> Markup {
    html! { span class={ "chip " (outcome_class(o)) } { (text) } }
}

/// A horizontal bar `fraction` (0..=1) of its cell wide.
pub fn bar(fraction: f64, title: &str) -> Markup {
    let pct = (fraction.clamp(0.0, 1.0) * 100.0).max(0.5);
    html! { span class="bar" style={ "width:" (format!("{pct:.1}")) "%" } title=(title) {} }
}

/// A duration for people: `812 µs`, `35.2 ms`, `2.41 s`.
pub fn duration(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e6 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// `text` in a code line with a button that copies it.
pub fn copy_line(text: &str) -> Markup {
    html! {
        div class="reproduce" {
            code { (text) }
            button type="button" class="copy" data-copy=(text) { "copy" }
        }
    }
}

/// One filter of a table's rows: the rows' `data-<name>` attribute (its
/// words), the label, and the choices (value, text) besides "all".
pub struct Facet<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub choices: Vec<(String, String)>,
}

/// Filters for the rows of the table with id `table`, one select per facet,
/// and how many of its `total` rows are shown.
pub fn filters(table: &str, facets: &[Facet], total: usize) -> Markup {
    html! {
        form class="filters" data-table=(table) {
            @for f in facets {
                label {
                    (f.label)
                    select data-facet=(f.name) name=(f.name) {
                        option value="" { "all" }
                        @for (value, text) in &f.choices {
                            option value=(value) { (text) }
                        }
                    }
                }
            }
            span class="muted" { "showing " span class="shown" { (total) } " of " (total) }
        }
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(unix: u64) -> String {
    let (y, m, d, secs) = civil_utc(unix);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Seconds since 1970-01-01 UTC as (year, month, day, seconds into the
/// day): Howard Hinnant's days-to-civil algorithm (the proleptic
/// Gregorian calendar).
pub fn civil_utc(secs: u64) -> (i64, i64, i64, u64) {
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day, rem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_times_read_as_dates() {
        let p = page("a <b>", html! { (copy_line("echo '<x>' \"&\"")) }).into_string();
        assert!(p.starts_with("<!DOCTYPE html>"), "{p}");
        assert!(p.contains("<title>a &lt;b&gt;</title>"), "{p}");
        assert!(
            p.contains("data-copy=\"echo '&lt;x&gt;' &quot;&amp;&quot;\""),
            "{p}"
        );
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_796_432_537), "2026-12-05 01:02:17 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(duration(812_000), "812 µs");
        assert_eq!(duration(35_240_000), "35.2 ms");
        assert_eq!(duration(2_414_000_000), "2.41 s");
    }
}
