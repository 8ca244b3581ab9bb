//! `memcg_max_kib`: a steps scenario in a memory cgroup of its own, with a
//! limit in range, on kernels that have the memory controller.

use hmmlab_proto::scenario::Kind;

use super::{require_option, Ctx, NeedsOption};
use crate::scenario::span::key_path;

/// The option a scenario in a memory cgroup requires (init/Kconfig).
pub const MEMCG: &str = "CONFIG_MEMCG";

/// Allowed `memcg_max_kib`, inclusive: from a few pages (the scenario
/// process's own page tables and heap are charged too) to 1 GiB.
pub const MEMCG_MAX_KIB: std::ops::RangeInclusive<u64> = 256..=1_048_576;

pub(super) fn check_memcg(cx: &mut Ctx<'_, '_>) {
    let Some(kib) = cx.s.memcg_max_kib else {
        return;
    };
    if cx.s.kind != Kind::Steps {
        let kind = cx.s.kind.as_str();
        cx.at_key(
            key_path!["memcg_max_kib"],
            format!("`memcg_max_kib` in a `kind = \"{kind}\"` scenario"),
            Some("`memcg_max_kib` is for steps scenarios; remove it".to_string()),
        );
        return;
    }
    if !MEMCG_MAX_KIB.contains(&kib) {
        cx.at_value(
            key_path!["memcg_max_kib"],
            format!("`memcg_max_kib = {kib}` is out of range"),
            Some(format!(
                "use {} to {} KiB (the scenario process's own page tables and heap are \
                 charged to the cgroup too)",
                MEMCG_MAX_KIB.start(),
                MEMCG_MAX_KIB.end()
            )),
        );
    }
    require_option(
        cx,
        key_path!["memcg_max_kib"],
        NeedsOption {
            field: "memcg_max_kib",
            option: MEMCG,
            lacking: "the memory controller",
            fragment: "memcg",
        },
    );
}
