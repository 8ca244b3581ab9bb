//! Loading files and directories, names, and selection.

use std::fs;
use std::path::{Path, PathBuf};

use super::{render, OK};
use crate::scenario::{is_valid_name, load_dir, load_files, select, LoadedScenario};

fn repo_scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn real_scenarios_load_cleanly() {
    let all = load_dir(&repo_scenarios()).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    assert!(names.len() >= 3, "{names:?}");
    for expected in ["empty-anon", "thp-split", "zero-page"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn names() {
    for good in ["a", "0", "thp-split", "zero_page.v2", "x..y"] {
        assert!(is_valid_name(good), "{good}");
    }
    for bad in [
        "", ".", "..", ".hidden", "-x", "_x", "Upper", "a b", "a/b", "ü", "a\\b",
    ] {
        assert!(!is_valid_name(bad), "{bad}");
    }
}

#[test]
fn every_file_problem_is_reported_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    let files = [
        a.join("same.toml"),
        b.join("same.toml"),
        a.join("Bad Name.toml"),
        a.join("...toml"),
        a.join("broken.toml"),
        a.join("missing.toml"),
    ];
    for f in &files[..4] {
        fs::write(f, OK).unwrap();
    }
    fs::write(&files[4], OK.replace("pages = 16", "pages = 0")).unwrap();
    let err = load_files(&files).unwrap_err();
    let ds = &err.0;
    assert_eq!(ds.len(), 5, "{}", render(ds));
    assert_eq!(ds[0].path, files[1]);
    assert!(
        ds[0].message.contains("`same`") && ds[0].message.contains(&files[0].display().to_string())
    );
    assert_eq!(
        (ds[1].line, ds[1].message.as_str()),
        (0, "invalid scenario name `Bad Name`")
    );
    assert_eq!(ds[2].message, "invalid scenario name `..`");
    assert_eq!(
        (ds[3].path.as_path(), ds[3].line, ds[3].column),
        (files[4].as_path(), 5, 9)
    );
    assert!(
        ds[4].message.starts_with("cannot read scenario file"),
        "{}",
        ds[4]
    );
    assert_eq!(err.file_count(), 5);
}

#[test]
fn load_dir_skips_other_files_and_sorts() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["b.toml", "a.toml", "c.txt", ".#a.toml"] {
        fs::write(tmp.path().join(name), OK).unwrap();
    }
    fs::create_dir(tmp.path().join("d.toml")).unwrap();
    let names: Vec<String> = load_dir(tmp.path())
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    let empty = tempfile::tempdir().unwrap();
    let err = load_dir(empty.path()).unwrap_err();
    assert!(err.0[0].message.contains("no scenario files"), "{err}");
}

fn loaded(names: &[&str]) -> Vec<LoadedScenario> {
    let scenario = crate::scenario::parse_str(Path::new("t.toml"), OK).unwrap();
    names
        .iter()
        .map(|n| LoadedScenario {
            name: n.to_string(),
            path: PathBuf::from(format!("{n}.toml")),
            scenario: scenario.clone(),
        })
        .collect()
}

#[test]
fn select_by_name() {
    let all = loaded(&["empty-anon", "thp-split", "zero-page"]);
    assert_eq!(select(all.clone(), &[]).unwrap().len(), 3);
    let picked = select(
        all.clone(),
        &["zero-page".into(), "empty-anon".into(), "zero-page".into()],
    )
    .unwrap();
    let names: Vec<&str> = picked.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["zero-page", "empty-anon"]);
    let err = select(all, &["thp-splt".into(), "nope".into()]).unwrap_err();
    assert_eq!(
        err,
        "unknown scenarios `thp-splt` (did you mean `thp-split`?), `nope`; \
         valid names: `empty-anon`, `thp-split`, `zero-page`"
    );
}
