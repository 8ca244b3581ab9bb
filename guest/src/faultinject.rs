//! `fail_kernel_alloc`: the kernel's fault injection
//! (Documentation/fault-injection/fault-injection.rst) armed around one
//! step. Every allocation of the chosen allocator that this thread makes
//! while the step runs, with the named function in its call stack, fails:
//! `task-filter` and /proc/thread-self/make-it-fail keep it to this thread,
//! `require-start` and `require-end` (CONFIG_FAULT_INJECTION_STACKTRACE_FILTER)
//! to the function's text as /proc/kallsyms places it, `probability` 100
//! and `interval` 1 make each such allocation fail, and `times` counts
//! them down, so that the step knows how many failed. Disarmed after the
//! step, whatever its result: `times` 0 fails nothing more.

use std::fs;

use hmmlab_proto::scenario::{Allocator, FailKernelAlloc, Step};

const KALLSYMS: &str = "/proc/kallsyms";
const MAKE_IT_FAIL: &str = "/proc/thread-self/make-it-fail";
/// `times` when armed: more failures than any step makes.
const TIMES: i64 = 1_000_000;
/// lib/fault-inject.c MAX_STACK_TRACE_DEPTH: the deepest it looks.
const STACK_DEPTH: u32 = 32;

/// The text of one kernel function: [start, end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    pub start: u64,
    pub end: u64,
}

/// Where /proc/kallsyms (its text) places `name`: from its address to the
/// next text symbol's.
pub fn find_text(kallsyms: &str, name: &str) -> Result<Text, String> {
    let mut starts = Vec::new();
    let mut found = None;
    for line in kallsyms.lines() {
        let mut fields = line.split_whitespace();
        let (Some(addr), Some(kind), Some(sym)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !matches!(kind, "t" | "T" | "w" | "W") {
            continue;
        }
        let Ok(addr) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        // A module's symbols carry `[module]`: built-in code only.
        if fields.next().is_some() {
            continue;
        }
        starts.push(addr);
        if sym == name && kind != "w" {
            if found.is_some_and(|a| a != addr) {
                return Err(format!(
                    "{KALLSYMS} has two functions named `{name}`: name one that is unique"
                ));
            }
            found = Some(addr);
        }
    }
    let Some(start) = found else {
        return Err(format!(
            "no function `{name}` in {KALLSYMS}: the kernel has no such function, or the compiler \
             inlined it (name the function it was inlined into: `nm` of its object lists them)"
        ));
    };
    if start == 0 {
        return Err(format!(
            "{KALLSYMS} shows addresses as 0 (kernel.kptr_restrict): the guest cannot place `{name}`"
        ));
    }
    let end = starts
        .into_iter()
        .filter(|&a| a > start)
        .min()
        .ok_or_else(|| {
            format!("`{name}` is the last text symbol in {KALLSYMS}: its end is unknown")
        })?;
    Ok(Text { start, end })
}

/// The fault-injection attributes that arm `allocator` for this thread
/// within `text`: (file, value), in the order written.
pub fn arming(
    allocator: Allocator,
    text: Text,
    spare_reclaiming: bool,
) -> Vec<(&'static str, String)> {
    let mut attrs = vec![
        // Nothing fails while the others are set.
        ("times", "0".to_string()),
        ("task-filter", "Y".to_string()),
        ("probability", "100".to_string()),
        ("interval", "1".to_string()),
        ("space", "0".to_string()),
        // No message and stack dump per failure on the console, where the
        // verdict would take it for a complaint.
        ("verbose", "0".to_string()),
        ("stacktrace-depth", STACK_DEPTH.to_string()),
        ("require-start", text.start.to_string()),
        ("require-end", text.end.to_string()),
        ("reject-start", "0".to_string()),
        ("reject-end", "0".to_string()),
        // GFP_KERNEL allocations may sleep: not ignored, unless the step
        // spares those that may reclaim (`ignore_gfp_reclaim`: an
        // allocation with __GFP_DIRECT_RECLAIM never fails).
        (
            "ignore-gfp-wait",
            if spare_reclaiming { "Y" } else { "N" }.to_string(),
        ),
    ];
    match allocator {
        Allocator::Page => {
            attrs.push(("ignore-gfp-highmem", "N".to_string()));
            attrs.push(("min-order", "0".to_string()));
        }
        Allocator::Slab => attrs.push(("cache-filter", "N".to_string())),
    }
    attrs.push(("times", TIMES.to_string()));
    attrs
}

/// Fault injection armed for this thread; [`Armed::disarm`] ends it.
pub struct Armed {
    allocator: Allocator,
}

fn write_attr(dir: &str, name: &str, value: &str) -> Result<(), String> {
    let path = format!("{dir}/{name}");
    fs::write(&path, format!("{value}\n")).map_err(|e| format!("writing {value} to {path}: {e}"))
}

fn set_make_it_fail(on: bool) -> Result<(), String> {
    fs::write(MAKE_IT_FAIL, if on { "1\n" } else { "0\n" }).map_err(|e| {
        format!("writing {MAKE_IT_FAIL}: {e} (the kernel needs CONFIG_FAULT_INJECTION)")
    })
}

/// Where each step's `under` is, looked up before the test mapping exists
/// (steps.rs): /proc/kallsyms is megabytes, and reading it during the steps
/// would map memory next to the mapping, which merges into its VMA (giving
/// it an anon_vma) and, unmapped, invalidates test_hmm's mirror entry of
/// the mapping's first page (its invalidation range is inclusive).
#[derive(Debug, Default)]
pub struct Places(Vec<Option<Text>>);

impl Places {
    pub fn prepare(steps: &[Step]) -> Result<Places, String> {
        if steps.iter().all(|s| s.fail_kernel_alloc.is_none()) {
            return Ok(Places::default());
        }
        let kallsyms = fs::read_to_string(KALLSYMS)
            .map_err(|e| format!("reading {KALLSYMS}: {e} (the kernel needs CONFIG_KALLSYMS)"))?;
        let mut places = vec![None; steps.len()];
        for (place, step) in places.iter_mut().zip(steps) {
            if let Some(f) = &step.fail_kernel_alloc {
                check_ready(f.allocator)?;
                *place = Some(find_text(&kallsyms, &f.under)?);
            }
        }
        Ok(Places(places))
    }

    /// Step `index`'s function.
    pub fn get(&self, index: usize) -> Option<Text> {
        self.0.get(index).copied().flatten()
    }
}

/// The allocator's fault injection with the stack-trace filter is there.
fn check_ready(allocator: Allocator) -> Result<(), String> {
    let dir = allocator.debugfs_dir();
    if fs::metadata(format!("{dir}/require-start")).is_err() {
        let why = if fs::metadata(dir).is_ok() {
            "no `require-start`: the kernel lacks CONFIG_FAULT_INJECTION_STACKTRACE_FILTER"
        } else {
            "it is missing: the kernel lacks it or CONFIG_FAULT_INJECTION_DEBUG_FS (or debugfs \
             is not mounted)"
        };
        return Err(format!(
            "cannot make {} allocations fail: {dir}: {why}; build with --config-fragment \
             images/configs/variants/fault.config ({})",
            allocator.as_str(),
            allocator.config()
        ));
    }
    Ok(())
}

/// Arm `f` for this thread, its function at `text` ([`Places`]).
pub fn arm(f: &FailKernelAlloc, text: Text) -> Result<Armed, String> {
    let dir = f.allocator.debugfs_dir();
    for (name, value) in arming(f.allocator, text, f.spare_reclaiming) {
        write_attr(dir, name, &value)?;
    }
    let armed = Armed {
        allocator: f.allocator,
    };
    if let Err(e) = set_make_it_fail(true) {
        let _ = armed.disarm();
        return Err(e);
    }
    Ok(armed)
}

impl Armed {
    /// Disarm; how many allocations failed while it was armed.
    pub fn disarm(self) -> Result<u64, String> {
        let dir = self.allocator.debugfs_dir();
        let off = set_make_it_fail(false);
        let path = format!("{dir}/times");
        let left = fs::read_to_string(&path)
            .map_err(|e| format!("reading {path}: {e}"))
            .and_then(|t| {
                t.trim()
                    .parse::<i64>()
                    .map_err(|e| format!("{path}: {t:?}: {e}"))
            });
        let zero = write_attr(dir, "times", "0");
        off?;
        zero?;
        let left = left?;
        u64::try_from(TIMES - left).map_err(|_| format!("{path} went up, to {left}"))
    }
}

/// Whether `failed` allocations are what the step asks: `expect_failed`
/// exactly, or at least one. The error says what was asked.
pub fn judge(f: &FailKernelAlloc, failed: u64) -> Result<(), String> {
    let kind = f.allocator.as_str();
    let which = if f.spare_reclaiming {
        " that cannot reclaim"
    } else {
        ""
    };
    match f.expect_failed {
        None if failed == 0 => Err(format!(
            "no {kind} allocation{which} under {} failed during the step: it never made one",
            f.under
        )),
        Some(n) if n != failed => Err(format!(
            "{failed} {kind} {}{which} under {} failed during the step, expected {n}",
            if failed == 1 {
                "allocation"
            } else {
                "allocations"
            },
            f.under
        )),
        _ => Ok(()),
    }
}

/// What a step's `fail_kernel_alloc` did: "2 slab allocations under F failed".
pub fn describe(f: &FailKernelAlloc, failed: u64) -> String {
    let noun = if failed == 1 {
        "allocation"
    } else {
        "allocations"
    };
    format!(
        "{failed} {} {noun} under {} failed",
        f.allocator.as_str(),
        f.under
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KALLSYMS_TEXT: &str = "\
ffffffff81000000 T _stext
ffffffff81234560 t migrate_vma_collect_skip.isra.0
ffffffff81234600 t __migrate_device_pages
ffffffff81234f00 d some_data
ffffffff81235400 T migrate_device_pages
ffffffff81235480 t dmirror_probe\t[test_hmm]
ffffffff81236000 W weak_one
";

    #[test]
    fn a_function_ends_where_the_next_text_symbol_begins() {
        let t = find_text(KALLSYMS_TEXT, "__migrate_device_pages").unwrap();
        assert_eq!(t.start, 0xffffffff81234600);
        // Data symbols and modules' symbols do not end it.
        assert_eq!(t.end, 0xffffffff81235400);
        let t = find_text(KALLSYMS_TEXT, "migrate_vma_collect_skip.isra.0").unwrap();
        assert_eq!((t.start, t.end), (0xffffffff81234560, 0xffffffff81234600));
        let t = find_text(KALLSYMS_TEXT, "migrate_device_pages").unwrap();
        assert_eq!(t.end, 0xffffffff81236000);
    }

    #[test]
    fn an_unknown_inlined_or_hidden_function_is_refused() {
        let e = find_text(KALLSYMS_TEXT, "migrate_vma_insert_page").unwrap_err();
        assert!(e.contains("inlined"), "{e}");
        // Only built-in code: a module's function is not looked up.
        assert!(find_text(KALLSYMS_TEXT, "dmirror_probe").is_err());
        assert!(find_text(KALLSYMS_TEXT, "some_data").is_err());
        // A weak function is one, but the last has no known end.
        let e = find_text(KALLSYMS_TEXT, "weak_one").unwrap_err();
        assert!(e.contains("last"), "{e}");
        let hidden = "0000000000000000 T _stext\n0000000000000000 t f\n";
        let e = find_text(hidden, "f").unwrap_err();
        assert!(e.contains("kptr_restrict"), "{e}");
        let last = "ffffffff81000000 T _stext\nffffffff81000100 t f\n";
        assert!(find_text(last, "f").unwrap_err().contains("last"));
        let twice = "ffffffff81000000 t f\nffffffff81000100 t f\nffffffff81000200 T g\n";
        assert!(find_text(twice, "f").unwrap_err().contains("two functions"));
    }

    #[test]
    fn arming_counts_down_only_once_everything_else_is_set() {
        let text = Text { start: 16, end: 32 };
        let page = arming(Allocator::Page, text, false);
        assert_eq!(page.first().unwrap(), &("times", "0".to_string()));
        assert_eq!(page.last().unwrap(), &("times", TIMES.to_string()));
        let get = |attrs: &[(&str, String)], name: &str| {
            attrs
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .next_back()
        };
        assert_eq!(get(&page, "require-start").as_deref(), Some("16"));
        assert_eq!(get(&page, "require-end").as_deref(), Some("32"));
        assert_eq!(get(&page, "min-order").as_deref(), Some("0"));
        assert_eq!(get(&page, "ignore-gfp-wait").as_deref(), Some("N"));
        assert_eq!(get(&page, "verbose").as_deref(), Some("0"));
        assert_eq!(get(&page, "cache-filter"), None);
        let slab = arming(Allocator::Slab, text, false);
        assert_eq!(get(&slab, "cache-filter").as_deref(), Some("N"));
        assert_eq!(get(&slab, "min-order"), None);
        // Sparing the allocations that may reclaim: ignore-gfp-wait.
        let spare = arming(Allocator::Page, text, true);
        assert_eq!(get(&spare, "ignore-gfp-wait").as_deref(), Some("Y"));
        assert_eq!(spare.last().unwrap(), &("times", TIMES.to_string()));
    }

    #[test]
    fn a_step_wants_at_least_one_failure_or_exactly_as_many_as_it_says() {
        let mut f = FailKernelAlloc {
            allocator: Allocator::Page,
            under: "migrate_device_coherent_folio".into(),
            spare_reclaiming: false,
            expect_failed: None,
        };
        assert_eq!(judge(&f, 3), Ok(()));
        let e = judge(&f, 0).unwrap_err();
        assert!(
            e.starts_with("no page allocation under migrate_device_coherent_folio failed"),
            "{e}"
        );
        f.expect_failed = Some(0);
        f.spare_reclaiming = true;
        assert_eq!(judge(&f, 0), Ok(()));
        assert_eq!(
            judge(&f, 1).unwrap_err(),
            "1 page allocation that cannot reclaim under migrate_device_coherent_folio failed \
             during the step, expected 0"
        );
        f.expect_failed = Some(2);
        assert!(judge(&f, 1).is_err() && judge(&f, 2).is_ok());
    }
}
