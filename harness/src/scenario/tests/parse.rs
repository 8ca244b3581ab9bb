//! Syntax and deserialization errors, and how diagnostics are rendered.

use std::path::PathBuf;

use super::{assert_at, errs, one, render, OK};
use crate::scenario::{Diagnostic, Diagnostics};

#[test]
fn unknown_field_names_field_and_valid_ones() {
    let d = one(&OK.replace("pages = 16\n", "pages = 16\npagez = 3\n"));
    assert_at(&d, 6, 1, "unknown field `pagez` in [mapping]");
    assert_eq!(d.width, 5);
    let hint = d.hint.unwrap();
    assert!(hint.starts_with("did you mean `pages`?"), "{hint}");
    assert!(
        hint.contains("`kind`, `pages`, `align_pages`, `prot`, `hugepage`"),
        "{hint}"
    );
}

#[test]
fn every_unknown_field_is_reported_and_checks_still_run() {
    let text =
        "descripton = \"d\"\ndescription = \"d\"\n[mapping]\nkind = \"anon-private\"\npages = 0\n\
                colour = 1\n[[step]]\nop = \"cpu-read\"\nexpect_cpage = 1\n";
    let ds = errs(text);
    assert_eq!(ds.len(), 4, "{}", render(&ds));
    assert_at(&ds[0], 1, 1, "unknown field `descripton` in the top level");
    assert_at(&ds[1], 5, 9, "mapping size");
    assert_at(&ds[2], 6, 1, "unknown field `colour` in [mapping]");
    assert_at(&ds[3], 9, 1, "unknown field `expect_cpage` in [[step]]");
    assert!(ds[3]
        .hint
        .as_ref()
        .unwrap()
        .contains("did you mean `expect_cpages`?"));
}

#[test]
fn bad_enum_value_lists_allowed_values() {
    let d = one(&OK.replace("\"anon-private\"", "\"anon-privat\""));
    assert_at(&d, 4, 8, "invalid value `anon-privat` for `kind`");
    let hint = d.hint.unwrap();
    assert!(hint.contains("did you mean `anon-private`?"), "{hint}");
    assert!(
        hint.contains("`anon-private`, `anon-shared`, `file-private`"),
        "{hint}"
    );
}

#[test]
fn several_value_errors_in_one_file() {
    let text = "description = \"d\"\nthp = \"sometimes\"\n[mapping]\nkind = \"anon-private\"\npages = \"16\"\n\
                [[step]]\nop = \"cpu-reed\"\n[[step]]\nop = \"snapshot\"\npages = [1, -2]\n";
    let ds = errs(text);
    assert_eq!(ds.len(), 4, "{}", render(&ds));
    assert_at(&ds[0], 2, 7, "invalid value `sometimes` for `thp`");
    assert_at(&ds[1], 5, 9, "wrong type for `pages`: found string \"16\"");
    assert_eq!(
        ds[1].hint.as_deref(),
        Some("expected a non-negative integer")
    );
    assert_at(&ds[2], 7, 6, "invalid value `cpu-reed` for `op`");
    assert_at(&ds[3], 10, 13, "invalid value for `pages`: integer `-2`");
}

#[test]
fn missing_fields() {
    let d = one(&OK.replace("pages = 16\n", ""));
    assert_at(&d, 3, 1, "missing field `pages` in [mapping]");
    let ds = errs("[[step]]\nop = \"cpu-read\"\n[[step]]\npages = [0, 1]\n");
    assert_eq!(ds.len(), 2, "{}", render(&ds));
    assert_at(&ds[0], 1, 1, "missing field `description` in the top level");
    assert_at(&ds[1], 3, 1, "missing field `op` in [[step]]");
}

#[test]
fn short_page_range() {
    let d = one(&OK.replace("op = \"cpu-read\"\n", "op = \"cpu-read\"\npages = [3]\n"));
    assert_at(&d, 8, 9, "`pages` has 1 element(s)");
    assert!(d.hint.unwrap().contains("page range `[start, end]`"));
}

#[test]
fn syntax_errors_are_all_reported() {
    let ds = errs("description = \"d\n[mapping\nkind = \"anon-private\"\n");
    assert!(ds.len() >= 2, "{}", render(&ds));
    assert_at(&ds[0], 1, 17, "invalid TOML");
    let d = one(&OK.replace("pages = 16\n", "pages = 16\npages = 17\n"));
    assert_at(&d, 6, 1, "duplicate key `pages`");
}

#[test]
fn crlf_and_tabs_render_cleanly() {
    let text = "description = \"d\"\r\n[mapping]\r\nkind = \"anon-private\"\r\n\tpages = 0\r\n[[step]]\r\nop = \"cpu-read\"\r\n";
    let d = one(text);
    assert_at(&d, 4, 10, "mapping size");
    assert_eq!(d.source_line.as_deref(), Some("\tpages = 0"));
    assert!(
        d.to_string().contains("4 | \tpages = 0\n  | \t        ^\n"),
        "{d}"
    );
}

#[test]
fn rendering() {
    let d = one(&OK.replace("pages = 16\n", "pages = 16\npagez = 3\n"));
    let mut d = Diagnostic {
        path: PathBuf::from("scenarios/x.toml"),
        ..d
    };
    assert_eq!(
        d.to_string(),
        "scenarios/x.toml:6:1: error: unknown field `pagez` in [mapping]\n  |\n6 | pagez = 3\n  | ^^^^^\n  \
         = help: did you mean `pages`? valid fields in [mapping]: `kind`, `pages`, `align_pages`, `prot`, `hugepage`, `userfaultfd`\n"
    );
    d.hint = None;
    let file = Diagnostic::file(
        &PathBuf::from("a/B.toml"),
        "invalid scenario name `B`",
        None,
    );
    let all = Diagnostics(vec![d.clone(), file.clone(), d]);
    let text = all.to_string();
    assert!(
        text.starts_with("scenarios/x.toml:6:1: error: unknown field"),
        "{text}"
    );
    assert!(
        text.contains("\na/B.toml: error: invalid scenario name `B`\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\n3 problems in 2 files; no VM was started"),
        "{text}"
    );
    assert_eq!(
        Diagnostics(vec![file]).to_string().lines().last(),
        Some("1 problem in 1 file; no VM was started")
    );
}
