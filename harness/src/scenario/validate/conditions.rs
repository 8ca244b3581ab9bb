//! Checks on conditions on the kernel under test: `[requires]` and the
//! `when` of every `[[step.variant]]`.

use hmmlab_proto::scenario::When;

use super::Ctx;
use crate::scenario::span::{key_path, Seg};
use crate::scenario::when::{parse_config, parse_kernel};

const KERNEL_SYNTAX: &str = "write an optional operator (`>=`, `<=`, `>`, `<`, `=`, `==`) and a \
                             version of one to three numbers, e.g. `>=6.3`, `<6.2` or `6.12`";
const CONFIG_SYNTAX: &str = "write `CONFIG_NAME` (set to y or m), `!CONFIG_NAME` (not set) or \
                             `CONFIG_NAME=value`";

/// Every condition in the file with the key path of its table.
fn conditions(cx: &Ctx<'_, '_>) -> Vec<(Vec<Seg>, &'static str, When)> {
    let mut out = Vec::new();
    if let Some(w) = &cx.s.requires {
        out.push((key_path!["requires"], "[requires]", w.clone()));
    }
    for (i, st) in cx.s.step.iter().enumerate() {
        for (j, v) in st.variant.iter().enumerate() {
            out.push((
                key_path!["step", i, "variant", j, "when"],
                "`when`",
                v.when.clone(),
            ));
        }
    }
    for (i, f) in cx.s.known_warning.iter().enumerate() {
        if let Some(w) = &f.when {
            out.push((key_path!["known_warning", i, "when"], "`when`", w.clone()));
        }
    }
    if let Some(ks) = &cx.s.kselftest {
        for (i, f) in ks.known_failure.iter().enumerate() {
            if let Some(w) = &f.when {
                out.push((
                    key_path!["kselftest", "known_failure", i, "when"],
                    "`when`",
                    w.clone(),
                ));
            }
        }
        for (i, x) in ks.exclude.iter().enumerate() {
            if let Some(w) = &x.when {
                out.push((
                    key_path!["kselftest", "exclude", i, "when"],
                    "`when`",
                    w.clone(),
                ));
            }
        }
    }
    out
}

pub(super) fn check_conditions(cx: &mut Ctx<'_, '_>) {
    for (at, what, w) in conditions(cx) {
        let known = matches!(&at[0], Seg::Key(k) if k == "kselftest");
        if known && w.device.is_some() {
            let mut p = at.clone();
            p.push(Seg::from("device"));
            cx.at_value(
                p,
                "a selftest's `when` cannot name a device: a selftest is not on the \
                 device axis, it picks its devices itself"
                    .to_string(),
                Some(
                    "name the device's fixture variant (`case`, or `variant` of an exclusion)"
                        .into(),
                ),
            );
            continue;
        }
        if at.len() == 1 && w.device.is_some() {
            let mut p = at.clone();
            p.push(Seg::from("device"));
            cx.at_value(
                p,
                "[requires] cannot name a device: a scenario that applies to one kind of \
                 device memory would be a skip on the other"
                    .to_string(),
                Some("pin it instead: `device = \"private\"` at the top of the file".into()),
            );
            continue;
        }
        if let (Some(pinned), Some(d)) = (cx.s.device, w.device) {
            if pinned != d {
                let mut p = at.clone();
                p.push(Seg::from("device"));
                cx.at_value(
                    p,
                    format!(
                        "this variant never applies: the scenario runs only on `device = \"{}\"`",
                        pinned.as_str()
                    ),
                    Some("remove the variant, or the scenario's `device`".into()),
                );
            }
        }
        if w.kernel.is_none() && w.config.is_none() && w.device.is_none() {
            let top = at.len() == 1;
            let hint = if top {
                "a condition with no fields always holds; give `kernel = \">=6.13\"` and/or \
                 `config = \"CONFIG_X\"`, or remove [requires]"
            } else if known {
                "a `when` with no fields always holds; give `kernel` and/or `config`, or \
                 remove `when` to mean every kernel"
            } else {
                "a variant whose `when` has no fields always applies; give `kernel`, \
                 `config` and/or `device`, or move its fields into the step"
            };
            cx.at_value(
                at,
                if top {
                    format!("{what} has neither `kernel` nor `config`")
                } else {
                    format!("{what} has none of `kernel`, `config`, `device`")
                },
                Some(hint.to_string()),
            );
            continue;
        }
        if let Some(k) = &w.kernel {
            if let Err(e) = parse_kernel(k) {
                let mut p = at.clone();
                p.push(Seg::from("kernel"));
                let msg = format!("invalid kernel condition `{k}`: {e}");
                cx.at_value(p, msg, Some(KERNEL_SYNTAX.to_string()));
            }
        }
        if let Some(c) = &w.config {
            if let Err(e) = parse_config(c) {
                let mut p = at.clone();
                p.push(Seg::from("config"));
                let msg = format!("invalid config condition `{c}`: {e}");
                cx.at_value(p, msg, Some(CONFIG_SYNTAX.to_string()));
            }
        }
    }
}
