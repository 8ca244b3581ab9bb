//! The kernel's own `hmm-tests` selftest, built statically from the same tree.
//!
//! The selftest's needs change between kernels: 6.1 and 6.12 build it from
//! hmm-tests.c alone, newer trees link the mm selftests' helpers (vm_util.c
//! and the like, named in the selftests Makefile) and may want the tree's
//! own uapi headers rather than the host's. The build tries those in turn;
//! a tree where none works still boots and runs its scenarios, and the
//! kselftest scenario is skipped with the reason.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::shell::Cmd;

/// Where the selftest lives: selftests/mm since 6.3, selftests/vm before.
pub fn hmm_tests_source(tree: &Path) -> Option<PathBuf> {
    [
        "tools/testing/selftests/mm/hmm-tests.c",
        "tools/testing/selftests/vm/hmm-tests.c",
    ]
    .iter()
    .map(|p| tree.join(p))
    .find(|p| p.is_file())
}

/// Build `out_dir/hmm-tests`. Every attempt goes to `out_dir/hmm-tests.log`.
/// `obj` is the kernel's object directory, for `make headers` when needed.
pub fn build_hmm_tests(tree: &Path, obj: &Path, out_dir: &Path) -> Result<PathBuf> {
    let log = out_dir.join("hmm-tests.log");
    let _ = std::fs::remove_file(&log);
    let Some(src) = hmm_tests_source(tree) else {
        bail!(
            "no hmm-tests.c under {}/tools/testing/selftests/{{mm,vm}}",
            tree.display()
        );
    };
    let dir = src.parent().unwrap_or(tree).to_path_buf();
    let makefile = std::fs::read_to_string(dir.join("Makefile")).unwrap_or_default();
    let (helpers, libs) = helpers_from_makefile(&makefile);
    let helpers: Vec<PathBuf> = helpers
        .iter()
        .map(|h| dir.join(h))
        .filter(|p| p.is_file())
        .collect();
    let out = out_dir.join("hmm-tests");
    let t = tree.to_string_lossy().to_string();
    let compile = |with_helpers: bool, headers: Option<&Path>| {
        let mut argv: Vec<String> = vec!["gcc".into(), "-static".into(), "-O2".into()];
        if let Some(h) = headers {
            argv.push("-isystem".into());
            argv.push(h.to_string_lossy().into());
        }
        for inc in [
            t.clone(),
            format!("{t}/tools/testing/selftests"),
            format!("{t}/tools/include/uapi"),
        ] {
            argv.push("-I".into());
            argv.push(inc);
        }
        argv.push(src.to_string_lossy().into());
        if with_helpers {
            argv.extend(helpers.iter().map(|h| h.to_string_lossy().to_string()));
        }
        argv.push("-lpthread".into());
        argv.extend(libs.iter().cloned());
        argv.push("-o".into());
        argv.push(out.to_string_lossy().into());
        Cmd::new(&argv).run_logged(&log, "gcc hmm-tests", |_| None)
    };

    if compile(false, None).is_ok() {
        return Ok(out);
    }
    if !helpers.is_empty() && compile(true, None).is_ok() {
        return Ok(out);
    }
    // The tree's own uapi headers, as kselftest's KHDR_INCLUDES gives them.
    Cmd::new(&[
        "make",
        "-s",
        "-C",
        &t,
        &format!("O={}", obj.display()),
        "headers",
    ])
    .run_logged(&log, "make headers", |_| None)?;
    let headers = obj.join("usr/include");
    compile(!helpers.is_empty(), Some(&headers)).map(|_| out)
}

/// The helper sources and extra libraries the selftests Makefile gives
/// hmm-tests: prerequisites ending in `.c` of the rules for every program
/// (`$(TEST_GEN_FILES): vm_util.c …`) or for hmm-tests itself, and
/// `LDLIBS += …` of a rule for hmm-tests.
pub fn helpers_from_makefile(text: &str) -> (Vec<String>, Vec<String>) {
    let mut helpers: Vec<String> = Vec::new();
    let mut libs: Vec<String> = Vec::new();
    // Join continued lines first.
    let joined = text.replace("\\\n", " ");
    for line in joined.lines() {
        let Some((target, rest)) = line.split_once(':') else {
            continue;
        };
        let for_all = ["$(TEST_GEN_FILES)", "$(TEST_GEN_PROGS)"]
            .iter()
            .any(|t| target.split_whitespace().any(|w| w == *t));
        let for_us = target
            .split_whitespace()
            .any(|w| w == "$(OUTPUT)/hmm-tests" || w == "hmm-tests");
        if !(for_all || for_us) || rest.starts_with('=') {
            continue;
        }
        if let Some(l) = rest.trim().strip_prefix("LDLIBS") {
            if for_us {
                let l = l
                    .trim_start()
                    .trim_start_matches("+=")
                    .trim_start_matches(":=");
                libs.extend(l.split_whitespace().map(str::to_string));
            }
            continue;
        }
        for w in rest.split_whitespace() {
            if w.ends_with(".c") && !w.contains('$') && !helpers.iter().any(|h| h == w) {
                helpers.push(w.to_string());
            }
        }
    }
    (helpers, libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_of_the_6_12_makefile() {
        // As in 6.12's tools/testing/selftests/mm/Makefile.
        let mk = "TEST_GEN_FILES += hmm-tests\n\
                  $(TEST_GEN_PROGS): vm_util.c thp_settings.c\n\
                  $(TEST_GEN_FILES): vm_util.c thp_settings.c\n\
                  $(OUTPUT)/uffd-stress: uffd-common.c\n\
                  $(OUTPUT)/migration: LDLIBS += -lnuma\n";
        let (h, l) = helpers_from_makefile(mk);
        assert_eq!(h, vec!["vm_util.c", "thp_settings.c"]);
        assert!(l.is_empty());
    }

    #[test]
    fn helpers_of_the_6_1_makefile_are_none_for_hmm_tests() {
        let mk = "TEST_GEN_FILES += hmm-tests\n\
                  $(OUTPUT)/khugepaged: vm_util.c\n\
                  $(OUTPUT)/madv_populate: vm_util.c\n\
                  $(OUTPUT)/ksm_tests: LDLIBS += -lnuma\n";
        assert_eq!(helpers_from_makefile(mk), (vec![], vec![]));
    }

    #[test]
    fn continued_lines_own_rules_and_libraries() {
        let mk = "$(TEST_GEN_FILES): vm_util.c \\\n  hugepage_settings.c\n\
                  $(OUTPUT)/hmm-tests: LDLIBS += -lm -lrt\n\
                  $(OUTPUT)/hmm-tests: extra.c\n\
                  TEST_GEN_FILES := a b\n";
        let (h, l) = helpers_from_makefile(mk);
        assert_eq!(h, vec!["vm_util.c", "hugepage_settings.c", "extra.c"]);
        assert_eq!(l, vec!["-lm", "-lrt"]);
    }
}
