//! Bisect over a small real history: the Debian 6.12 source committed to a
//! fresh git repository, then three commits, one of which plants the
//! `skip-holes` regression. Bisect must name that commit, and leave the
//! repository exactly as it was.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=hmmlab",
            "-c",
            "user.email=hmmlab@localhost",
            "-c",
            "commit.gpgsign=false",
            // 80,000 loose objects would start `git gc --auto` in the
            // background, repacking for minutes beside the kernel builds.
            "-c",
            "gc.auto=0",
        ])
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn bisect_finds_the_planted_regression_and_leaves_the_tree_alone() {
    // The cached Debian tree, as the start of a history.
    let pristine_tree = cached_kernel_tree();
    let pristine = pristine_tree.as_path();
    let top = tempfile::tempdir().unwrap();
    let tree = top.path().join(pristine.file_name().unwrap());
    assert!(Command::new("cp")
        .arg("-a")
        .arg(pristine)
        .arg(&tree)
        .status()
        .unwrap()
        .success());
    git(&tree, &["init", "-q"]);
    git(&tree, &["add", "-A", "-f"]);
    git(&tree, &["commit", "-q", "-m", "base: Debian 6.12"]);
    let good = git(&tree, &["rev-parse", "HEAD"]);
    std::fs::write(
        tree.join("Documentation/hmmlab-note.txt"),
        "a harmless change\n",
    )
    .unwrap();
    git(&tree, &["add", "-A", "-f"]);
    git(&tree, &["commit", "-q", "-m", "docs: a harmless change"]);
    let patch = repo().join("patches/examples/skip-holes.patch");
    let st = Command::new("patch")
        .args(["-p1", "-s", "-i"])
        .arg(&patch)
        .current_dir(&tree)
        .status()
        .unwrap();
    assert!(st.success());
    git(
        &tree,
        &[
            "commit",
            "-q",
            "-a",
            "-m",
            "mm/migrate_device: skip never-populated regions",
        ],
    );
    let planted = git(&tree, &["rev-parse", "HEAD"]);
    std::fs::write(
        tree.join("Documentation/hmmlab-note.txt"),
        "another harmless change\n",
    )
    .unwrap();
    git(
        &tree,
        &["commit", "-q", "-a", "-m", "docs: another harmless change"],
    );
    let bad = git(&tree, &["rev-parse", "HEAD"]);

    let spec = format!("path:{}", tree.display());
    let run = xtask(&[
        "bisect",
        "--kernel",
        &spec,
        "--good",
        &good,
        "--bad",
        &bad,
        "-s",
        "empty-anon",
        "--runs",
        "2",
    ]);
    assert_eq!(run.code, 0, "{}", run.explain());
    assert!(
        run.stdout.contains(&format!(
            "first bad commit: {planted} mm/migrate_device: skip never-populated regions"
        )),
        "{}",
        run.stdout
    );
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(run.run_dir.as_ref().unwrap().join("bisect.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["first_bad_commit"], planted.as_str());

    // The developer's repository is as it was: same HEAD, clean, not bisecting.
    assert_eq!(git(&tree, &["rev-parse", "HEAD"]), bad);
    assert_eq!(git(&tree, &["status", "--porcelain"]), "");
    let bisecting = Command::new("git")
        .arg("-C")
        .arg(&tree)
        .args(["bisect", "log"])
        .output()
        .unwrap();
    assert!(
        !bisecting.status.success(),
        "the tree must not be left bisecting"
    );
    assert!(no_qemu_left(&run));
}
