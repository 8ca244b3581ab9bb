//! `cargo xtask mutate --list` on the real mm/migrate_device.c of the
//! default kernel (Debian's 7.3, fetched into the cache if it is not
//! there; nothing is built): every function yields mutants, every
//! operator appears, ids are unique and stable, every diff applies with
//! `patch -p1` (a sample for real, giving exactly the mutant's text), and
//! every mutated file still parses without new errors.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FILE: &str = "mm/migrate_device.c";
const OPERATORS: [&str; 8] = [
    "negate-cond",
    "swap-logical",
    "relational-boundary",
    "delete-stmt",
    "delete-if-body",
    "zero-const",
    "complement-const",
    "early-return",
];

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(common::repo())
        .output()
        .expect("running xtask")
}

fn ok(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{}\n{stderr}", out.status);
    (stdout, stderr)
}

/// The tree the command mutated (its `mutate: tree DIR` line on stderr).
fn tree_of(stderr: &str) -> PathBuf {
    PathBuf::from(
        stderr
            .lines()
            .find_map(|l| l.strip_prefix("mutate: tree "))
            .unwrap_or_else(|| panic!("no `mutate: tree` line in:\n{stderr}")),
    )
}

/// Function definitions of a C file and its parse errors, by tree-sitter.
fn functions_and_errors(source: &str) -> (BTreeSet<String>, usize) {
    let mut p = tree_sitter::Parser::new();
    p.set_language(&tree_sitter_c::LANGUAGE.into()).unwrap();
    let tree = p.parse(source, None).unwrap();
    fn walk(n: tree_sitter::Node, src: &[u8], names: &mut BTreeSet<String>, errors: &mut usize) {
        if n.is_error() || n.is_missing() {
            *errors += 1;
        }
        // Function definitions are never inside a function body, and
        // only a subtree with an error holds one.
        if n.kind() != "function_definition"
            && !n.has_error()
            && n.parent()
                .is_some_and(|p| p.kind() == "function_definition")
        {
            return;
        }
        if n.kind() == "function_definition" {
            let mut d = n.child_by_field_name("declarator").unwrap();
            while d.kind() != "function_declarator" {
                d = d.child_by_field_name("declarator").unwrap();
            }
            let name = d.child_by_field_name("declarator").unwrap();
            names.insert(name.utf8_text(src).unwrap().to_string());
        }
        let mut c = n.walk();
        for child in n.children(&mut c) {
            walk(child, src, names, errors);
        }
    }
    let (mut names, mut errors) = (BTreeSet::new(), 0);
    walk(tree.root_node(), source.as_bytes(), &mut names, &mut errors);
    (names, errors)
}

/// `patch -p1` with `diff` in `dir` (extra arguments first).
fn patch(dir: &Path, args: &[&str], diff: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("patch")
        .args(["-p1", "--forward", "--fuzz=0", "--batch"])
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("patch (Debian package patch) runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(diff.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn mutate_list_of_the_default_kernels_migrate_device_c() {
    let kernel = "debian:7.3";
    let (json, stderr) = ok(&xtask(&["mutate", "--list", "--kernel", kernel, "--json"]));
    let tree = tree_of(&stderr);
    let source = std::fs::read_to_string(tree.join(FILE)).unwrap();
    let mutants: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(mutants.len() > 500, "only {} mutants", mutants.len());

    // Unique ids, made of file, function, line, operator and index.
    let ids: Vec<&str> = mutants.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "repeated ids");
    for m in &mutants {
        assert_eq!(
            m["id"],
            format!(
                "{}:{}:{}:{}:{}",
                m["file"].as_str().unwrap(),
                m["function"].as_str().unwrap(),
                m["line"],
                m["operator"].as_str().unwrap(),
                m["index"]
            )
        );
    }

    // Stable: the plain list of a second run has the same ids in the same
    // order, and a narrower selection keeps its mutants' ids.
    let (list, _) = ok(&xtask(&["mutate", "--list", "--kernel", kernel]));
    let listed: Vec<&str> = list
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| l.split("  ").next().unwrap())
        .collect();
    assert_eq!(listed, ids);
    assert!(
        list.contains(&format!("\n{} mutants\n", ids.len())),
        "{list}"
    );
    let (narrow, _) = ok(&xtask(&[
        "mutate",
        "--list",
        "--kernel",
        kernel,
        "--function",
        "migrate_vma_collect_pmd",
        "--operator",
        "negate-cond",
        "--json",
    ]));
    let narrow: Vec<String> = narrow
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let expected: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| id.contains(":migrate_vma_collect_pmd:") && id.contains(":negate-cond:"))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(narrow, expected);

    // Every function of the file yields mutants; every operator appears.
    let (functions, errors_before) = functions_and_errors(&source);
    let mut per_fn: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_op: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &mutants {
        *per_fn.entry(m["function"].as_str().unwrap()).or_default() += 1;
        *per_op.entry(m["operator"].as_str().unwrap()).or_default() += 1;
    }
    for f in &functions {
        assert!(per_fn.contains_key(f.as_str()), "no mutant of {f}");
    }
    assert!(functions.len() >= 20, "{functions:?}");
    for op in OPERATORS {
        assert!(per_op.contains_key(op), "no {op} mutant: {per_op:?}");
    }
    eprintln!("{} mutants; per operator {per_op:?}", mutants.len());

    // Every diff applies to a copy of the file, exactly (no fuzz, no offset).
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("mm")).unwrap();
    std::fs::write(tmp.path().join(FILE), &source).unwrap();
    for m in &mutants {
        let diff = m["diff"].as_str().unwrap();
        assert!(
            diff.starts_with(&format!("--- a/{FILE}\n+++ b/{FILE}\n@@ -")),
            "{diff}"
        );
        let out = patch(tmp.path(), &["--dry-run"], diff);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !said.contains("offset") && !said.contains("fuzz"),
            "{}: patch --dry-run: {said}{}\n{diff}",
            m["id"],
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read_to_string(tmp.path().join(FILE)).unwrap(),
        source
    );

    // Every mutated file parses without new errors.
    for m in &mutants {
        let (start, end) = (
            m["start"].as_u64().unwrap() as usize,
            m["end"].as_u64().unwrap() as usize,
        );
        let text = format!(
            "{}{}{}",
            &source[..start],
            m["mutated"].as_str().unwrap(),
            &source[end..]
        );
        let (_, errors) = functions_and_errors(&text);
        assert!(
            errors <= errors_before,
            "{}: {errors} parse errors, {errors_before} before\n{}",
            m["id"],
            m["diff"].as_str().unwrap()
        );
    }

    // A sample, three of each operator spread over the file: the patched
    // file is the mutant's text in place.
    for op in OPERATORS {
        let of_op: Vec<&serde_json::Value> =
            mutants.iter().filter(|m| m["operator"] == op).collect();
        for k in 0..3 {
            let m = of_op[k * (of_op.len() - 1) / 2];
            let out_file = tmp.path().join("mutated.c");
            let out = patch(
                tmp.path(),
                &["-o", out_file.to_str().unwrap()],
                m["diff"].as_str().unwrap(),
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
            let patched = std::fs::read_to_string(&out_file).unwrap();
            let (start, end) = (
                m["start"].as_u64().unwrap() as usize,
                m["end"].as_u64().unwrap() as usize,
            );
            assert_eq!(&source[start..end], m["original"].as_str().unwrap());
            let expected = format!(
                "{}{}{}",
                &source[..start],
                m["mutated"].as_str().unwrap(),
                &source[end..]
            );
            assert!(patched == expected, "{}: patch gave another text", m["id"]);
            std::fs::remove_file(&out_file).unwrap();
        }
    }
}

#[test]
fn mutate_list_refuses_bad_input_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("mm")).unwrap();
    std::fs::write(
        tmp.path().join(FILE),
        "static int f(int a)\n{\n\tif (a < 2)\n\t\treturn -EINVAL;\n\treturn 0;\n}\n",
    )
    .unwrap();
    let tree = tmp.path().to_str().unwrap();
    let (list, _) = ok(&xtask(&["mutate", "--list", "--tree", tree]));
    assert!(
        list.contains("mm/migrate_device.c:f:3:relational-boundary:0  "),
        "{list}"
    );
    for (args, says) in [
        (
            vec!["--file", "mm/nope.c"],
            "--file mm/nope.c: no such file",
        ),
        (
            vec!["--file", "../x.c"],
            "relative to the top of the kernel tree",
        ),
        (vec!["--function", "g"], "give one of: f"),
        (vec!["--lines", "9-3"], "--lines 9-3: not a line range"),
        (
            vec!["--lines", "40-50"],
            "no function of mm/migrate_device.c is on those lines",
        ),
        (vec!["--operator", "flip"], "invalid value 'flip'"),
    ] {
        let mut argv = vec!["mutate", "--list", "--tree", tree];
        argv.extend(&args);
        let out = xtask(&argv);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
