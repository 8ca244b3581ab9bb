//! Each semantic check fires on a small bad input, at the right place.

use std::path::Path;

use super::{assert_at, errs, one, render, OK};
use crate::scenario::parse_str;

#[test]
fn steps_kind_needs_mapping_and_steps() {
    let d = one("description = \"d\"\nkind = \"steps\"\n[[step]]\nop = \"cpu-read\"\n");
    assert_at(&d, 2, 1, "needs a [mapping] table");
    // Without an explicit `kind` the default applies; reported at line 1.
    let ds = errs("description = \"d\"\n");
    assert_eq!(ds.len(), 2, "{}", render(&ds));
    assert_at(&ds[0], 1, 1, "(the default) needs a [mapping]");
    assert_at(&ds[1], 1, 1, "needs at least one [[step]]");
}

#[test]
fn steps_kind_rejects_kselftest_table() {
    let d = one(&format!("{OK}[kselftest]\nbinary = \"hmm-tests\"\n"));
    assert_at(&d, 8, 1, "[kselftest] is only used with");
    assert_eq!(d.width, "[kselftest]".len());
}

#[test]
fn kselftest_kind_needs_table_and_no_steps() {
    let d = one("description = \"d\"\nkind = \"kselftest\"\n");
    assert_at(&d, 2, 1, "needs a [kselftest] table");
    let text = "description = \"d\"\nkind = \"kselftest\"\n[kselftest]\nbinary = \"hmm-tests\"\n\
                [mapping]\nkind = \"anon-private\"\npages = 1\n[[populate]]\npages = [0, 1]\nhow = \"read\"\n\
                [[step]]\nop = \"cpu-read\"\n";
    let ds = errs(text);
    assert_eq!(ds.len(), 3, "{}", render(&ds));
    assert_at(&ds[0], 5, 1, "takes no [mapping]");
    assert_at(&ds[1], 8, 1, "takes no [[populate]]");
    assert_at(&ds[2], 11, 1, "takes no [[step]]");
}

#[test]
fn kselftest_binary_is_plain_name() {
    for bad in ["../hmm-tests", "bin/hmm-tests", "..", ".", ""] {
        let text =
            format!("description = \"d\"\nkind = \"kselftest\"\n[kselftest]\nbinary = {bad:?}\n");
        assert_at(&one(&text), 4, 10, "not a plain file name");
    }
    let text = "description = \"d\"\nkind = \"kselftest\"\n[kselftest]\nbinary = \"hmm-tests\"\nargs = [\"-v\"]\n";
    super::super::parse_str(std::path::Path::new("t.toml"), text).unwrap();
}

#[test]
fn known_failures_name_something_say_why_and_have_valid_conditions() {
    let head = "description = \"d\"\nkind = \"kselftest\"\n[kselftest]\nbinary = \"hmm-tests\"\n";
    let d = one(&format!(
        "{head}[[kselftest.known_failure]]\nbecause = \"why\"\n"
    ));
    assert_at(&d, 5, 1, "names neither a `case` nor a `console`");
    let d = one(&format!(
        "{head}[[kselftest.known_failure]]\ncase = \"a.b.c\"\nbecause = \" \"\n"
    ));
    assert_at(&d, 7, 11, "needs a `because`");
    let d = one(&format!(
        "{head}[[kselftest.known_failure]]\ncase = \"a.b.c\"\nwhen = {{ kernel = \">=x\" }}\nbecause = \"y\"\n"
    ));
    assert!(d.message.contains("invalid kernel condition `>=x`"), "{d}");
    assert_eq!(d.line, 7, "{d}");
    let d = one(&format!(
        "{head}[[kselftest.known_failure]]\ncase = \"a.b.c\"\nwhen = {{ device = \"coherent\" }}\nbecause = \"y\"\n"
    ));
    assert!(d.message.contains("cannot name a device"), "{d}");
    let ok = format!(
        "{head}[[kselftest.known_failure]]\nconsole = \"Conflicting mapping\"\n\
         when = {{ kernel = \">=7.2\" }}\nbecause = \"lib/test_hmm.c\"\n"
    );
    super::super::parse_str(std::path::Path::new("t.toml"), &ok).unwrap();
}

#[test]
fn exclusions_name_one_variant_or_test_and_say_why() {
    let head = "description = \"d\"\nkind = \"kselftest\"\n[kselftest]\nbinary = \"hmm-tests\"\n";
    for body in [
        "because = \"why\"\n",
        "variant = \"a\"\ntest = \"b\"\nbecause = \"why\"\n",
        "variant = \"-x\"\nbecause = \"why\"\n",
        "test = \"two words\"\nbecause = \"why\"\n",
    ] {
        let d = one(&format!("{head}[[kselftest.exclude]]\n{body}"));
        assert_at(&d, 5, 1, "exactly one `variant` or `test`");
    }
    let d = one(&format!(
        "{head}[[kselftest.exclude]]\nvariant = \"hmm_device_coherent\"\nbecause = \"\"\n"
    ));
    assert_at(&d, 7, 11, "an exclusion needs a `because`");
    let d = one(&format!(
        "{head}[[kselftest.exclude]]\ntest = \"t\"\nwhen = {{ device = \"private\" }}\nbecause = \"y\"\n"
    ));
    assert!(d.message.contains("cannot name a device"), "{d}");
    let ok = format!(
        "{head}[[kselftest.exclude]]\nvariant = \"hmm_device_coherent\"\nthp = \"always\"\n\
         when = {{ kernel = \">=7.2\" }}\nbecause = \"lib/test_hmm.c\"\n"
    );
    super::super::parse_str(std::path::Path::new("t.toml"), &ok).unwrap();
}

#[test]
fn mapping_size_limits() {
    for bad in ["0", "262145"] {
        let text = OK.replace("pages = 16", &format!("pages = {bad}"));
        assert_at(&one(&text), 5, 9, "mapping size");
    }
    let text = OK.replace("pages = 16", "pages = 262144");
    super::super::parse_str(std::path::Path::new("t.toml"), &text).unwrap();
}

#[test]
fn alignment_limits() {
    for bad in ["0", "3", "524288"] {
        let text = OK.replace(
            "pages = 16\n",
            &format!("pages = 16\nalign_pages = {bad}\n"),
        );
        assert_at(&one(&text), 6, 15, "not a valid alignment");
    }
    let text = OK.replace("pages = 16\n", "pages = 16\nalign_pages = 512\n");
    super::super::parse_str(std::path::Path::new("t.toml"), &text).unwrap();
}

#[test]
fn page_ranges_inside_mapping() {
    let text = format!("{OK}[[populate]]\npages = [4, 4]\nhow = \"write\"\n");
    assert_at(&one(&text), 9, 9, "empty page range `[4, 4]`");
    let text = OK.replace(
        "op = \"cpu-read\"\n",
        "op = \"cpu-read\"\npages = [8, 17]\n",
    );
    let d = one(&text);
    assert_at(&d, 8, 9, "ends past the end of the mapping");
    assert!(d.hint.unwrap().contains("line 5"));
    let text = OK.replace(
        "op = \"cpu-read\"\n",
        "op = \"cpu-read\"\npages = [0, 2, 3]\n",
    );
    assert_at(&one(&text), 8, 9, "this one has 3");
    let text = format!(
        "{OK}[[step]]\nop = \"snapshot\"\n[[step.expect]]\npages = [0, 99]\nstate = \"none\"\n"
    );
    assert_at(&one(&text), 11, 9, "`[0, 99]` ends past");
}

#[test]
fn expect_inside_snapshot_range() {
    let text = format!("{OK}[[step]]\nop = \"snapshot\"\npages = [0, 4]\n[[step.expect]]\npages = [2, 6]\nstate = \"none\"\n");
    assert_at(&one(&text), 12, 9, "outside the step's pages");
}

#[test]
fn hugepage_only_on_private_anon() {
    let text = OK
        .replace("anon-private", "anon-shared")
        .replace("pages = 16\n", "pages = 16\nhugepage = true\n");
    let d = one(&text);
    assert_at(&d, 6, 12, "needs `kind = \"anon-private\"`");
    assert!(d.hint.unwrap().contains("private anonymous"));
}

#[test]
fn read_only_mapping_cannot_be_written() {
    let text = "description = \"d\"\n[mapping]\nkind = \"anon-private\"\npages = 4\nprot = \"read-only\"\n\
                [[populate]]\npages = [0, 4]\nhow = \"write\"\n\
                [[step]]\nop = \"cpu-write\"\n\
                [[step]]\nop = \"device-write\"\n\
                [[step]]\nop = \"device-write\"\nexpect_errno = 1\n";
    let ds = errs(text);
    assert_eq!(ds.len(), 3, "{}", render(&ds));
    assert_at(&ds[0], 8, 7, "cannot populate a read-only mapping");
    assert!(ds[0].hint.as_ref().unwrap().contains("line 5"));
    assert_at(&ds[1], 10, 6, "`op = \"cpu-write\"` on a read-only");
    assert_at(&ds[2], 12, 6, "`op = \"device-write\"` on a read-only");
}

#[test]
fn step_fields_match_op() {
    let text = format!(
        "{OK}expect_cpages = 1\nexpect_faults = 1\n[[step.expect]]\npages = [0, 1]\nstate = \"none\"\n\
         [[step]]\nop = \"migrate-to-device\"\nexpect_faults = 0\n"
    );
    let ds = errs(&text);
    assert_eq!(ds.len(), 4, "{}", render(&ds));
    assert_at(
        &ds[0],
        8,
        1,
        "`expect_cpages` does not apply to `op = \"cpu-read\"`",
    );
    assert_at(
        &ds[1],
        9,
        1,
        "`expect_faults` does not apply to `op = \"cpu-read\"`",
    );
    assert_at(
        &ds[2],
        10,
        8,
        "`expect` does not apply to `op = \"cpu-read\"`",
    );
    assert_at(
        &ds[3],
        15,
        1,
        "`expect_faults` does not apply to `op = \"migrate-to-device\"`",
    );
}

#[test]
fn device_read_states_its_faults() {
    let read = |fields: &str| format!("{OK}[[step]]\nop = \"device-read\"\n{fields}");
    let d = one(&read("expect_cpages = 16\n"));
    assert_at(&d, 9, 6, "`op = \"device-read\"` needs `expect_faults`");
    let hint = d.hint.unwrap();
    assert!(hint.contains("add `expect_faults = N`"), "{hint}");
    assert!(hint.contains("`expect_errno`"), "{hint}");
    // `expect_errno = 0` expects the read to succeed: it reports faults.
    assert_at(
        &one(&read("expect_errno = 0\n")),
        9,
        6,
        "needs `expect_faults`",
    );
    // A variant in which a failing read succeeds gives its own faults.
    let text = read(
        "expect_errno = 14\n\
         [[step.variant]]\nwhen = { kernel = \">=6.13\" }\nexpect_errno = 0\nexpect_cpages = 16\n\
         [[step.variant]]\nwhen = { kernel = \"<6.2\" }\nexpect_errno = 0\nexpect_faults = 1\n\
         [[step.variant]]\nwhen = { kernel = \"6.6\" }\nexpect_errno = 22\n",
    );
    let d = one(&text);
    assert_at(
        &d,
        13,
        1,
        "a variant in which `op = \"device-read\"` succeeds needs `expect_faults`",
    );
    assert!(d.hint.unwrap().contains("`expect_errno = 14` (line 10)"));
    // Faults given, or a read expected to fail: nothing to add; the step's
    // own `expect_faults` holds in a variant that does not give one.
    for ok in [
        "expect_faults = 0\n",
        "expect_errno = 14\n",
        "expect_faults = 2\n[[step.variant]]\nwhen = { kernel = \"6\" }\nexpect_cpages = 3\n",
    ] {
        super::super::parse_str(std::path::Path::new("t.toml"), &read(ok)).unwrap();
    }
    // Only device-read requires it.
    for op in ["device-write", "migrate-to-device"] {
        let text = format!("{OK}[[step]]\nop = \"{op}\"\nexpect_cpages = 16\n");
        super::super::parse_str(std::path::Path::new("t.toml"), &text).unwrap();
    }
}

#[test]
fn expect_cpages_at_most_step_pages() {
    let text = format!("{OK}[[step]]\nop = \"migrate-to-device\"\nexpect_cpages = 17\n");
    assert_at(&one(&text), 10, 17, "more than the step's page count");
    let text =
        format!("{OK}[[step]]\nop = \"migrate-to-device\"\npages = [0, 4]\nexpect_cpages = 5\n");
    let d = one(&text);
    assert_at(&d, 11, 17, "`expect_cpages = 5`");
    assert!(d.hint.unwrap().contains("4 page(s)"));
}

#[test]
fn snapshot_must_assert_something() {
    let text = format!("{OK}[[step]]\nop = \"snapshot\"\n");
    let d = one(&text);
    assert_at(&d, 8, 1, "asserts nothing");
    assert_eq!(d.width, "[[step]]".len());
}

#[test]
fn states_must_parse() {
    let text = format!("{OK}[[step]]\nop = \"snapshot\"\n[[step.expect]]\npages = [0, 16]\nstate = \"dev-private+write\"\n");
    let d = one(&text);
    assert_at(&d, 12, 9, "invalid page state `dev-private+write`");
    assert!(d.hint.unwrap().contains("known states"));
}

#[test]
fn timeout_range() {
    for bad in ["99", "600001"] {
        let text = OK.replace(
            "description = \"d\"\n",
            &format!("description = \"d\"\ntimeout_ms = {bad}\n"),
        );
        assert_at(&one(&text), 2, 14, "out of range");
    }
    let text = OK.replace(
        "description = \"d\"\n",
        "description = \"d\"\ntimeout_ms = 100\n",
    );
    super::super::parse_str(std::path::Path::new("t.toml"), &text).unwrap();
}

#[test]
fn description_not_empty() {
    assert_at(
        &one(&OK.replace("\"d\"", "\"  \"")),
        1,
        15,
        "`description` is empty",
    );
}

#[test]
fn all_problems_in_a_file_are_reported_in_line_order() {
    let text = "description = \"\"\ntimeout_ms = 5\n[mapping]\nkind = \"file-private\"\npages = 8\n\
                align_pages = 6\nhugepage = true\n[[step]]\nop = \"snapshot\"\n[[step]]\nop = \"cpu-read\"\n\
                pages = [4, 2]\n[[step]]\nop = \"snapshot\"\n[[step.expect]]\npages = [0, 8]\nstate = \"bogus\"\n";
    let ds = errs(text);
    let got: Vec<(usize, usize)> = ds.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        got,
        [(1, 15), (2, 14), (6, 15), (7, 12), (8, 1), (12, 9), (17, 9)],
        "{}",
        render(&ds)
    );
}

#[test]
fn a_snapshot_names_every_page_or_says_any() {
    let text = format!(
        "{OK}[[step]]\nop = \"snapshot\"\n[[step.expect]]\npages = [0, 4]\nstate = \"none\"\n\
         [[step.expect]]\npages = [6, 10]\nstate = \"none\"\n"
    );
    let d = one(&text);
    assert_at(
        &d,
        10,
        8,
        "pages [4, 6], [10, 16] of the snapshot are named by no `expect`",
    );
    assert!(d.hint.unwrap().contains("state = \"any\""));
    let named = format!(
        "{OK}[[step]]\nop = \"snapshot\"\n[[step.expect]]\npages = [0, 10]\nstate = \"none\"\n\
         [[step.expect]]\npages = [10, 16]\nstate = \"any\"\n"
    );
    let loaded = super::super::parse_str(std::path::Path::new("t.toml"), &named);
    assert!(loaded.is_ok(), "{:?}", loaded.err());
}

#[test]
fn bench_kind_needs_its_table_and_nothing_else() {
    let d = one("description = \"d\"\nkind = \"bench\"\n");
    assert_at(&d, 2, 1, "needs a [bench] table");
    let text =
        "description = \"d\"\nkind = \"bench\"\n[bench]\ncases = [\"direct\"]\nsizes = [1]\n\
                [mapping]\nkind = \"anon-private\"\npages = 1\n";
    assert_at(&one(text), 6, 1, "takes no [mapping]");
    let d = one(&format!("{OK}[bench]\ncases = [\"direct\"]\nsizes = [1]\n"));
    assert_at(
        &d,
        8,
        1,
        "[bench] is only used with `kind = \"bench\"`, not `steps`",
    );
    let text = "description = \"d\"\nkind = \"bench\"\n[bench]\ncases = [\"direct\", \"touch-first\", \"zero-page\"]\n\
                sizes = [1, 64, 512, 16384]\nrounds = 5\nwarmup = 1\n";
    super::super::parse_str(std::path::Path::new("t.toml"), text).unwrap();
}

#[test]
fn bench_table_is_checked() {
    let head = "description = \"d\"\nkind = \"bench\"\n[bench]\n";
    let d = one(&format!("{head}cases = []\nsizes = [1]\n"));
    assert_at(&d, 4, 9, "`cases` is empty");
    let d = one(&format!(
        "{head}cases = [\"direct\", \"direct\"]\nsizes = [1]\n"
    ));
    assert_at(&d, 4, 20, "named twice");
    let d = one(&format!("{head}cases = [\"direct\"]\nsizes = [1, 0]\n"));
    assert_at(&d, 5, 13, "size 0 is out of range");
    let d = one(&format!("{head}cases = [\"direct\"]\nsizes = [262145]\n"));
    assert_at(&d, 5, 10, "out of range");
    let d = one(&format!(
        "{head}cases = [\"direct\"]\nsizes = [1]\nrounds = 0\n"
    ));
    assert_at(&d, 6, 10, "`rounds = 0` is out of range");
    let d = one(&format!(
        "{head}cases = [\"direct\"]\nsizes = [1]\nwarmup = 101\n"
    ));
    assert_at(&d, 6, 10, "`warmup = 101` is out of range");
    let d = one(&format!("{head}cases = [\"sideways\"]\nsizes = [1]\n"));
    assert!(d.message.contains("sideways"), "{}", d.message);
}

#[test]
fn bench_split_needs_one_thp_in_mode_always() {
    let text = "description = \"d\"\nkind = \"bench\"\nthp = \"always\"\n[bench]\ncases = [\"direct\", \"split\"]\nsizes = [512]\n";
    super::super::parse_str(std::path::Path::new("t.toml"), text).unwrap();
    let ds = errs(
        &text
            .replace("[512]", "[1, 512]")
            .replace("\"always\"", "\"never\""),
    );
    assert_eq!(ds.len(), 2, "{}", render(&ds));
    assert_at(&ds[0], 5, 20, "every size must be 512");
    assert_at(&ds[1], 5, 20, "needs THP mode always");
}

#[test]
fn known_warnings_of_a_steps_scenario_name_their_text_and_why() {
    use hmmlab_proto::scenario::KnownWarning;
    // Lines 8-11: the entry.
    let text = format!(
        "{OK}[[known_warning]]\nconsole = \"Conflicting mapping in same section\"\nwhen = {{ kernel = \"<7.2\" }}\nbecause = \"lib/test_hmm.c\"\n"
    );
    let s = parse_str(Path::new("t.toml"), &text).unwrap();
    assert_eq!(s.known_warning.len(), 1);
    let k: &KnownWarning = &s.known_warning[0];
    assert_eq!(k.console, "Conflicting mapping in same section");
    let f = k.as_known_failure();
    assert_eq!(f.console.as_deref(), Some(k.console.as_str()));
    assert_eq!((f.case, f.when, f.thp), (None, None, None));
    assert_eq!(f.because, "lib/test_hmm.c");

    let d = one(&format!(
        "{OK}[[known_warning]]\nconsole = \" \"\nbecause = \"x\"\n"
    ));
    assert_at(&d, 9, 11, "a known warning needs its `console` text");
    let d = one(&format!(
        "{OK}[[known_warning]]\nconsole = \"w\"\nbecause = \"\"\n"
    ));
    assert_at(&d, 10, 11, "a known warning needs a `because`");
    let d = one(&format!("{OK}[[known_warning]]\nconsole = \"w\"\n"));
    assert!(d.message.contains("missing field `because`"), "{d}");
    let d = one(&format!(
        "{OK}[[known_warning]]\nconsole = \"w\"\nwhen = {{ kernel = \"<seven\" }}\nbecause = \"x\"\n"
    ));
    assert_eq!(d.line, 10, "{d}");
    // A kselftest declares its own.
    let d = one(
        "description = \"d\"\nkind = \"kselftest\"\n[kselftest]\nbinary = \"hmm-tests\"\n\
         [[known_warning]]\nconsole = \"w\"\nbecause = \"x\"\n",
    );
    assert!(
        d.message
            .contains("[[known_warning]] is for `kind = \"steps\"` scenarios"),
        "{d}"
    );
}
