//! `fail_kernel_alloc`: only on the ops that enter the kernel for their
//! pages, naming a function of the kernel's text, in a scenario that
//! requires the kernel's fault injection with its stack-trace filter.

use hmmlab_proto::scenario::Op;

use super::{require_option, Ctx, NeedsOption};
use crate::scenario::span::key_path;

/// The option a scenario that makes allocations fail requires: it needs
/// CONFIG_FAULT_INJECTION and the debugfs interface that takes
/// `require-start` and `require-end` (lib/Kconfig.debug).
pub const STACKTRACE_FILTER: &str = "CONFIG_FAULT_INJECTION_STACKTRACE_FILTER";

/// A name as /proc/kallsyms prints one of the kernel's functions
/// (`migrate_vma_collect_skip.isra.0` included).
fn is_symbol(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn ops_that_may_fail() -> String {
    let names: Vec<String> = Op::ALL
        .into_iter()
        .filter(|op| op.may_fail_kernel_alloc())
        .map(|op| format!("`{}`", op.as_str()))
        .collect();
    names.join(", ")
}

pub(super) fn check_fail_kernel_alloc(cx: &mut Ctx<'_, '_>) {
    let mut told_requires = false;
    for (i, st) in cx.s.step.iter().enumerate() {
        let Some(f) = &st.fail_kernel_alloc else {
            continue;
        };
        let op = st.op.as_str();
        if !st.op.may_fail_kernel_alloc() {
            cx.at_key(
                key_path!["step", i, "fail_kernel_alloc"],
                format!("`fail_kernel_alloc` does not apply to `op = \"{op}\"`"),
                Some(format!(
                    "allocations can be made to fail in the steps that enter the kernel for \
                     their pages: {}",
                    ops_that_may_fail()
                )),
            );
            continue;
        }
        if !is_symbol(&f.under) {
            cx.at_value(
                key_path!["step", i, "fail_kernel_alloc", "under"],
                format!("`under = {:?}` is no name of a kernel function", f.under),
                Some(
                    "name a function of the kernel's text as /proc/kallsyms lists it, e.g. \
                     `under = \"__migrate_device_pages\"` (a static function the compiler \
                     inlined has no name there: name its caller; `nm mm/migrate_device.o` \
                     lists them)"
                        .to_string(),
                ),
            );
        }
        if !told_requires {
            told_requires = require_option(
                cx,
                key_path!["step", i, "fail_kernel_alloc"],
                NeedsOption {
                    field: "fail_kernel_alloc",
                    option: STACKTRACE_FILTER,
                    lacking: "fault injection",
                    fragment: "fault",
                },
            );
        }
    }
}
