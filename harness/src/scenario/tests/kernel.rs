//! The fields that depend on the kernel under test or on newer ops:
//! `[requires]`, `[[step.variant]]`, `iterations`, `userfaultfd`.

use std::path::Path;

use super::{assert_at, errs, one, render, OK};
use crate::scenario::parse_str;

fn loads(text: &str) {
    if let Err(ds) = parse_str(Path::new("t.toml"), text) {
        panic!("expected no problems, got:\n{}", render(&ds));
    }
}

/// `OK` with `lines` inserted after the description (line 1).
fn with_top(lines: &str) -> String {
    OK.replacen("\n", &format!("\n{lines}"), 1)
}

#[test]
fn requires_conditions_must_parse() {
    let text = with_top("[requires]\nkernel = \">=6.x\"\nconfig = \"config_hmm\"\n");
    let ds = errs(&text);
    assert_eq!(ds.len(), 2, "{}", render(&ds));
    assert_at(&ds[0], 3, 10, "invalid kernel condition `>=6.x`");
    assert!(ds[0].hint.as_ref().unwrap().contains("`>=6.3`"));
    assert_at(&ds[1], 4, 10, "invalid config condition `config_hmm`");
    assert!(ds[1].hint.as_ref().unwrap().contains("`!CONFIG_NAME`"));
    for bad in ["6.1.2.3", "=>6.1", "6.", ">=", "latest"] {
        let text = with_top(&format!("[requires]\nkernel = {bad:?}\n"));
        assert_at(&one(&text), 3, 10, "invalid kernel condition");
    }
    for bad in ["CONFIG_", "!CONFIG_X=y", "CONFIG_X=", "HMM", "CONFIG_x"] {
        let text = with_top(&format!("[requires]\nconfig = {bad:?}\n"));
        assert_at(&one(&text), 3, 10, "invalid config condition");
    }
    for good in [">=6.3", "<6.2", "6.12", "=6.1.192", "==6", "<= 6.12"] {
        loads(&with_top(&format!("[requires]\nkernel = {good:?}\n")));
    }
    for good in [
        "CONFIG_TEST_HMM",
        "!CONFIG_DEVICE_PRIVATE",
        "CONFIG_NR_CPUS=64",
    ] {
        loads(&with_top(&format!("[requires]\nconfig = {good:?}\n")));
    }
    loads(&with_top(
        "requires = { kernel = \">=6.1\", config = \"CONFIG_X\" }\n",
    ));
}

#[test]
fn empty_requires_is_an_error() {
    let d = one(&with_top("[requires]\n"));
    assert_at(&d, 2, 1, "[requires] has neither `kernel` nor `config`");
    assert_eq!(d.width, "[requires]".len());
    assert!(d.hint.unwrap().contains("always holds"));
    let d = one(&with_top("requires = {}\n"));
    assert_at(&d, 2, 12, "[requires] has neither");
}

#[test]
fn variant_fields_follow_the_step_rules() {
    let text = format!(
        "{OK}[[step]]\nop = \"snapshot\"\npages = [0, 8]\n[[step.expect]]\npages = [0, 8]\nstate = \"none\"\n\
         [[step.variant]]\nwhen = {{ kernel = \"6.12\" }}\nexpect_faults = 1\nexpect_cpages = 9\n\
         [[step.variant.expect]]\npages = [4, 12]\nstate = \"dev-private\"\n\
         [[step.variant]]\nwhen = {{}}\nexpect = []\n\
         [[step.variant]]\nwhen = {{ config = \"CONFIG_X=\" }}\nexpect = [{{ pages = [0, 17], state = \"none\" }}]\n"
    );
    let ds = errs(&text);
    let got: Vec<(usize, usize)> = ds.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        got,
        [
            (16, 1),
            (17, 17),
            (19, 9),
            (20, 9),
            (22, 8),
            (23, 10),
            (25, 19),
            (26, 21)
        ],
        "{}",
        render(&ds)
    );
    assert_at(
        &ds[0],
        16,
        1,
        "`expect_faults` does not apply to `op = \"snapshot\"`",
    );
    assert_at(
        &ds[1],
        17,
        17,
        "`expect_cpages = 9` is more than the step's page count",
    );
    assert!(ds[1].hint.as_ref().unwrap().contains("8 page(s)"));
    assert_at(&ds[2], 19, 9, "`[4, 12]` lies outside the step's pages");
    assert_at(&ds[3], 20, 9, "invalid page state `dev-private`");
    assert_at(
        &ds[4],
        22,
        8,
        "`when` has none of `kernel`, `config`, `device`",
    );
    assert!(ds[4].hint.as_ref().unwrap().contains("always applies"));
    assert_at(
        &ds[5],
        23,
        10,
        "an empty `expect` in a variant asserts nothing",
    );
    assert_at(&ds[6], 25, 19, "invalid config condition `CONFIG_X=`");
    assert_at(&ds[7], 26, 21, "`[0, 17]` ends past the end of the mapping");
}

#[test]
fn variant_fields_only_where_the_op_reports_them() {
    let text = format!(
        "{OK}[[step.variant]]\nwhen = {{ kernel = \"<6.2\" }}\nexpect_cpages = 1\nexpect_errno = 14\n\
         [[step.variant.expect]]\npages = [0, 1]\nstate = \"none\"\n\
         [[step]]\nop = \"device-read\"\nexpect_faults = 1\n[[step.variant]]\nwhen = {{ config = \"!CONFIG_X\" }}\nexpect_faults = 0\nexpect_cpages = 16\n"
    );
    let ds = errs(&text);
    assert_eq!(ds.len(), 3, "{}", render(&ds));
    assert_at(
        &ds[0],
        10,
        1,
        "`expect_cpages` does not apply to `op = \"cpu-read\"`",
    );
    assert_at(
        &ds[1],
        11,
        1,
        "`expect_errno` does not apply to `op = \"cpu-read\"`",
    );
    assert!(ds[1].hint.as_ref().unwrap().contains("issues no ioctl"));
    assert_at(
        &ds[2],
        12,
        16,
        "`expect` does not apply to `op = \"cpu-read\"`",
    );
    let d = one(&format!("{OK}[[step.variant]]\nexpect_errno = 1\n"));
    assert_at(&d, 8, 1, "missing field `when` in [[step.variant]]");
}

#[test]
fn variants_resolve_after_validation() {
    use crate::scenario::when::{resolve, KernelFacts};
    let text = format!(
        "{OK}[[step]]\nop = \"migrate-to-device\"\nexpect_cpages = 16\n\
         [[step.variant]]\nwhen = {{ kernel = \">=6.13\" }}\nexpect_cpages = 0\n\
         [[step.variant]]\nwhen = {{ kernel = \">=6.12\", config = \"CONFIG_TEST_HMM\" }}\nexpect_cpages = 8\nexpect_errno = 0\n"
    );
    let s = parse_str(Path::new("t.toml"), &text).unwrap();
    let k = KernelFacts::from_dotconfig("6.12.117", "CONFIG_TEST_HMM=m\n");
    let r = resolve(&s, &k, None).unwrap();
    assert_eq!(
        (r.step[1].expect_cpages, r.step[1].expect_errno),
        (Some(8), Some(0))
    );
    assert!(r.step[1].variant.is_empty());
}

#[test]
fn known_failures_resolve_to_those_of_the_kernel() {
    use crate::scenario::when::{resolve, KernelFacts};
    let text = "description = \"d\"\nkind = \"kselftest\"\n[kselftest]\nbinary = \"hmm-tests\"\n\
                [[kselftest.known_failure]]\ncase = \"a.new\"\nwhen = { kernel = \">=7.2\" }\nbecause = \"x\"\n\
                [[kselftest.known_failure]]\ncase = \"a.any\"\nbecause = \"y\"\n";
    let s = parse_str(Path::new("t.toml"), text).unwrap();
    let names = |release: &str| -> Vec<String> {
        let r = resolve(&s, &KernelFacts::from_dotconfig(release, ""), None).unwrap();
        let ks = r.kselftest.unwrap();
        assert!(ks.known_failure.iter().all(|f| f.when.is_none()));
        ks.known_failure
            .into_iter()
            .filter_map(|f| f.case)
            .collect()
    };
    assert_eq!(names("7.3.4"), vec!["a.new", "a.any"]);
    assert_eq!(names("6.12.117"), vec!["a.any"]);
}

#[test]
fn device_conditions_only_where_they_can_hold() {
    let d = one(&with_top("[requires]\ndevice = \"coherent\"\n"));
    assert!(d.message.contains("[requires] cannot name a device"), "{d}");
    let pinned = format!(
        "device = \"private\"\n{OK}[[step]]\nop = \"snapshot\"\n[[step.expect]]\npages = [0, 16]\nstate = \"none\"\n\
         [[step.variant]]\nwhen = {{ device = \"coherent\" }}\nexpect = [{{ pages = [0, 16], state = \"dev-local\" }}]\n"
    );
    let d = one(&pinned);
    assert!(d.message.contains("never applies"), "{d}");
    loads(&pinned.replace("device = \"private\"\n", ""));
}

#[test]
fn self_checking_ops() {
    let text = format!(
        "{OK}[[step]]\nop = \"migrate-race\"\nexpect_errno = 1\n\
         [[step]]\nop = \"migrate-race\"\niterations = 0\nexpect_cpages = 1\n\
         [[step]]\nop = \"migrate-race\"\niterations = 100000\n\
         [[step.variant]]\nwhen = {{ kernel = \"6\" }}\nexpect_cpages = 1\n\
         [[step]]\nop = \"cpu-write\"\niterations = 5\n\
         [[step]]\nop = \"userfaultfd-idle\"\npages = [0, 1]\n\
         [[step]]\nop = \"unmap-neighbour\"\npages = [0, 1]\nexpect = [{{ pages = [0, 1], state = \"none\" }}]\n"
    );
    let ds = errs(&text);
    assert_eq!(ds.len(), 13, "{}", render(&ds));
    assert_at(&ds[0], 9, 6, "`op = \"migrate-race\"` needs `iterations`");
    assert!(ds[0].hint.as_ref().unwrap().contains("1 to 100000"));
    assert_at(&ds[1], 9, 6, "`op = \"migrate-race\"` needs `min_complete`");
    assert!(ds[1]
        .hint
        .as_ref()
        .unwrap()
        .contains("1 to the step's `iterations`"));
    assert_at(
        &ds[2],
        10,
        1,
        "`expect_errno` does not apply to `op = \"migrate-race\"`",
    );
    assert_at(
        &ds[3],
        12,
        6,
        "`op = \"migrate-race\"` needs `min_complete`",
    );
    assert_at(&ds[4], 13, 14, "`iterations = 0` is out of range");
    assert_at(
        &ds[5],
        14,
        1,
        "`expect_cpages` does not apply to `op = \"migrate-race\"`",
    );
    assert_at(
        &ds[6],
        16,
        6,
        "`op = \"migrate-race\"` needs `min_complete`",
    );
    assert!(ds[6]
        .hint
        .as_ref()
        .unwrap()
        .contains("1 to 100000, the step's"));
    assert_at(
        &ds[7],
        18,
        1,
        "`op = \"migrate-race\"` takes no [[step.variant]]",
    );
    assert_at(
        &ds[8],
        23,
        1,
        "`iterations` does not apply to `op = \"cpu-write\"`",
    );
    assert_at(
        &ds[9],
        25,
        6,
        "`op = \"userfaultfd-idle\"` needs `userfaultfd = true` in [mapping]",
    );
    assert!(ds[9].hint.as_ref().unwrap().contains("line 3"));
    assert_at(
        &ds[10],
        26,
        1,
        "`pages` does not apply to `op = \"userfaultfd-idle\"`",
    );
    assert_at(
        &ds[11],
        29,
        1,
        "`pages` does not apply to `op = \"unmap-neighbour\"`",
    );
    assert_at(
        &ds[12],
        30,
        1,
        "`expect` does not apply to `op = \"unmap-neighbour\"`",
    );
    let text =
        format!("{OK}[[step]]\nop = \"migrate-race\"\niterations = 100001\nmin_complete = 1\n");
    assert_at(&one(&text), 10, 14, "out of range");
    loads(&format!(
        "{OK}[[step]]\nop = \"migrate-race\"\npages = [0, 8]\niterations = 1\nmin_complete = 1\n[[step]]\nop = \"unmap-neighbour\"\n"
    ));
}

#[test]
fn migrate_race_states_its_minimum_of_complete_rounds() {
    let race = |fields: &str| format!("{OK}[[step]]\nop = \"migrate-race\"\n{fields}");
    let d = one(&race("iterations = 200\n"));
    assert_at(&d, 9, 6, "`op = \"migrate-race\"` needs `min_complete`");
    let hint = d.hint.unwrap();
    assert!(hint.contains("add `min_complete = N` (1 to 200, the step's `iterations`)"));
    assert!(hint.contains("fewer fail the step"), "{hint}");
    for bad in [0, 201] {
        let d = one(&race(&format!("iterations = 200\nmin_complete = {bad}\n")));
        assert_at(
            &d,
            11,
            16,
            &format!("`min_complete = {bad}` is out of range"),
        );
        let hint = d.hint.unwrap();
        assert!(hint.contains("use 1 to 200"), "{hint}");
        assert!(hint.contains("`iterations = 200` on line 10"), "{hint}");
    }
    for good in [1, 20, 200] {
        loads(&race(&format!("min_complete = {good}\niterations = 200\n")));
    }
    // Other ops take none.
    let d = one(&format!("{OK}min_complete = 1\n"));
    assert_at(
        &d,
        8,
        1,
        "`min_complete` does not apply to `op = \"cpu-read\"`",
    );
    assert!(d
        .hint
        .unwrap()
        .contains("rounds of `op = \"migrate-race\"`"));
}

#[test]
fn hang_ops_take_no_pages_expectations_variants_or_iterations() {
    let text = format!(
        "{OK}[[step]]\nop = \"hang\"\npages = [0, 1]\nexpect_errno = 4\nexpect_cpages = 1\n\
         iterations = 2\n[[step.variant]]\nwhen = {{ kernel = \"6\" }}\n\
         [[step]]\nop = \"hang-guest\"\nexpect_faults = 0\n\
         expect = [{{ pages = [0, 1], state = \"none\" }}]\npages = [0, 16]\n"
    );
    let ds = errs(&text);
    assert_eq!(ds.len(), 8, "{}", render(&ds));
    assert_at(&ds[0], 10, 1, "`pages` does not apply to `op = \"hang\"`");
    assert_at(
        &ds[1],
        11,
        1,
        "`expect_errno` does not apply to `op = \"hang\"`",
    );
    assert_at(
        &ds[2],
        12,
        1,
        "`expect_cpages` does not apply to `op = \"hang\"`",
    );
    assert_at(
        &ds[3],
        13,
        1,
        "`iterations` does not apply to `op = \"hang\"`",
    );
    assert_at(&ds[4], 14, 1, "`op = \"hang\"` takes no [[step.variant]]");
    assert_at(
        &ds[5],
        18,
        1,
        "`expect_faults` does not apply to `op = \"hang-guest\"`",
    );
    assert_at(
        &ds[6],
        19,
        1,
        "`expect` does not apply to `op = \"hang-guest\"`",
    );
    assert_at(
        &ds[7],
        20,
        1,
        "`pages` does not apply to `op = \"hang-guest\"`",
    );
    for d in &ds {
        assert!(d.hint.is_some(), "no hint:\n{d}");
    }
    assert!(ds[0].hint.as_ref().unwrap().contains("scenario's timeout"));
    assert!(ds[1].hint.as_ref().unwrap().contains("tests the harness"));
    assert!(ds[7].hint.as_ref().unwrap().contains("stop answering"));
    loads(&format!(
        "{OK}[[step]]\nop = \"hang\"\n[[step]]\nop = \"hang-guest\"\n"
    ));
}

#[test]
fn an_expected_errno_is_checked_alone() {
    let text = format!(
        "{OK}[[step]]\nop = \"migrate-to-device\"\nexpect_errno = 2\nexpect_cpages = 0\n\
         [[step]]\nop = \"snapshot\"\nexpect_errno = 14\n[[step.expect]]\npages = [0, 1]\nstate = \"none\"\n\
         [[step]]\nop = \"device-read\"\nexpect_faults = 0\n\
         [[step.variant]]\nwhen = {{ kernel = \">=6.13\" }}\nexpect_errno = 14\n\
         [[step.variant]]\nwhen = {{ kernel = \"<6.2\" }}\nexpect_errno = 0\n\
         [[step]]\nop = \"device-write\"\nexpect_errno = 1\n\
         [[step.variant]]\nwhen = {{ config = \"CONFIG_X\" }}\nexpect_cpages = 4\n\
         [[step]]\nop = \"snapshot\"\nexpect_errno = 1\n\
         [[step.variant]]\nwhen = {{ config = \"!CONFIG_X\" }}\nexpect_errno = 0\n\
         [[step]]\nop = \"cpu-write\"\nexpect_errno = 0\n"
    );
    let ds = errs(&text);
    assert_eq!(ds.len(), 6, "{}", render(&ds));
    assert_at(
        &ds[0],
        11,
        1,
        "`expect_cpages` cannot be checked when the ioctl fails",
    );
    assert!(ds[0].hint.as_ref().unwrap().contains("(line 10)"));
    assert_at(
        &ds[1],
        15,
        8,
        "`expect` cannot be checked when the ioctl fails",
    );
    assert_at(
        &ds[2],
        23,
        1,
        "`expect_errno = 14` leaves the step's `expect_faults` (line 20) in force",
    );
    assert!(ds[2]
        .hint
        .as_ref()
        .unwrap()
        .contains("cannot remove a field"));
    assert_at(
        &ds[3],
        32,
        1,
        "`expect_cpages` cannot be checked when the ioctl fails",
    );
    assert!(ds[3].hint.as_ref().unwrap().contains("(line 29)"));
    assert_at(
        &ds[4],
        36,
        1,
        "a snapshot variant with no `expect` asserts nothing",
    );
    assert_at(
        &ds[5],
        41,
        1,
        "`expect_errno` does not apply to `op = \"cpu-write\"`",
    );
    // The errno alone is the assertion; a variant expecting success gives
    // its own counts and states.
    loads(&format!(
        "{OK}[[step]]\nop = \"snapshot\"\nexpect_errno = 14\n\
         [[step.variant]]\nwhen = {{ kernel = \">=6.13\" }}\nexpect_errno = 0\n\
         expect = [{{ pages = [0, 16], state = \"none\" }}]\n\
         [[step]]\nop = \"device-read\"\nexpect_errno = 14\n\
         [[step.variant]]\nwhen = {{ kernel = \">=6.13\" }}\nexpect_errno = 0\nexpect_cpages = 16\n\
         expect_faults = 0\n"
    ));
}

#[test]
fn userfaultfd_only_on_anonymous_mappings() {
    let uffd = |kind: &str| {
        OK.replace("anon-private", kind)
            .replace("pages = 16\n", "pages = 16\nuserfaultfd = true\n")
            + "[[step]]\nop = \"userfaultfd-idle\"\n"
    };
    let d = one(&uffd("file-private"));
    assert_at(
        &d,
        6,
        15,
        "`userfaultfd = true` needs an anonymous mapping, not `file-private`",
    );
    assert!(d.hint.unwrap().contains("`kind = \"anon-shared\"`"));
    loads(&uffd("anon-private"));
    loads(&uffd("anon-shared"));
}

#[test]
fn migrate_race_writes_so_not_on_read_only() {
    let text = OK.replace("pages = 16\n", "pages = 16\nprot = \"read-only\"\n")
        + "[[step]]\nop = \"migrate-race\"\niterations = 10\nmin_complete = 5\n";
    let d = one(&text);
    assert_at(&d, 10, 6, "`op = \"migrate-race\"` on a read-only mapping");
    assert!(d.hint.unwrap().contains("writes from the CPU"));
}
