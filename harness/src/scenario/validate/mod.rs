//! Semantic checks on a deserialized scenario. Each check is a small function
//! that reports its problems at the offending key or value; all of them run.

mod access;
mod conditions;
mod faults;
mod layout;
mod memcg;
mod steps;

use hmmlab_proto::scenario::Scenario;

use super::diagnostic::{line_col, Problem};
use super::span::{Doc, Seg};
use access::*;
use conditions::*;
use faults::*;
use layout::*;
use memcg::*;
use steps::*;

/// Largest mapping and alignment: 1 GiB of 4 KiB pages.
pub const MAX_PAGES: u64 = 262_144;
/// Allowed `timeout_ms`, inclusive.
pub const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=600_000;
/// Allowed `iterations` of `op = "migrate-race"`, inclusive.
pub const ITERATIONS: std::ops::RangeInclusive<u32> = 1..=100_000;

type Check = fn(&mut Ctx<'_, '_>);

const CHECKS: &[Check] = &[
    check_description,
    check_timeout,
    check_kind_sections,
    check_pin_cpu,
    check_memcg,
    check_kselftest_binary,
    check_known_warnings,
    check_kselftest_exclusions,
    check_bench,
    check_mapping_size,
    check_alignment,
    check_hugepage,
    check_userfaultfd,
    check_conditions,
    check_page_ranges,
    check_expect_inside_step,
    check_read_only,
    check_step_pages,
    check_self_checking,
    check_iterations,
    check_min_complete,
    check_userfaultfd_idle,
    check_file_ops,
    check_page_flags,
    check_thp_stats,
    check_smaps,
    check_fail_kernel_alloc,
    check_step_fields,
    check_faults_stated,
    check_cpages_bound,
    check_errno_alone,
    check_snapshot_asserts,
    check_states,
    check_snapshot_covers,
    check_mapping_ops,
    check_newer_commands,
    check_page_access,
    check_held_refs,
    check_fork,
    check_write_protect,
];

/// Run every check on `s`; `doc` is the same file parsed with spans.
pub fn validate(s: &Scenario, doc: &Doc<'_>, text: &str) -> Vec<Problem> {
    let mut cx = Ctx {
        s,
        doc,
        text,
        out: Vec::new(),
    };
    for check in CHECKS {
        check(&mut cx);
    }
    cx.out
}

pub(super) struct Ctx<'a, 'i> {
    pub(super) s: &'a Scenario,
    pub(super) doc: &'a Doc<'i>,
    text: &'a str,
    out: Vec<Problem>,
}

impl Ctx<'_, '_> {
    /// Report at the value at `path` (or its nearest existing ancestor).
    pub(super) fn at_value(&mut self, path: Vec<Seg>, message: String, hint: Option<String>) {
        let span = self.doc.value_span(&path);
        self.out.push(Problem::new(span, message, hint));
    }

    /// Report at the key of `path` (or its nearest existing ancestor).
    pub(super) fn at_key(&mut self, path: Vec<Seg>, message: String, hint: Option<String>) {
        let span = self.doc.key_span(&path);
        self.out.push(Problem::new(span, message, hint));
    }

    /// The line `path` is written on, for hints pointing elsewhere.
    pub(super) fn line_of(&self, path: Vec<Seg>) -> usize {
        line_col(self.text, self.doc.value_span(&path).start).0
    }

    /// Pages in the mapping, when there is one.
    pub(super) fn mapping_pages(&self) -> Option<u64> {
        self.s.mapping.as_ref().map(|m| m.pages)
    }
}

/// A field that works only on kernels with `option`, which a variant's
/// fragment (images/configs/variants/<fragment>.config) gives.
pub(super) struct NeedsOption {
    pub(super) field: &'static str,
    pub(super) option: &'static str,
    /// What a kernel without the option lacks, for the hint.
    pub(super) lacking: &'static str,
    pub(super) fragment: &'static str,
}

/// Unless [requires] asks for the field's option, report at `at` that it
/// must, so that other kernels skip the scenario with the reason; whether
/// it reported.
pub(super) fn require_option(cx: &mut Ctx<'_, '_>, at: Vec<Seg>, n: NeedsOption) -> bool {
    let NeedsOption {
        field,
        option,
        lacking,
        fragment,
    } = n;
    let required = cx.s.requires.as_ref().and_then(|r| r.config.as_deref());
    if required == Some(option) {
        return false;
    }
    let msg = match required {
        None => format!("`{field}` needs a config condition in [requires]"),
        Some(c) => {
            format!("`{field}` needs {option}, but [requires] `config = {c:?}` does not ask for it")
        }
    };
    cx.at_key(
        at,
        msg,
        Some(format!(
            "add [requires] with `config = \"{option}\"` so that kernels without {lacking} skip \
             the scenario with the reason (build one with `--config-fragment \
             images/configs/variants/{fragment}.config`)"
        )),
    );
    true
}
