//! Bad kernel-stage input gives a clear error and the bad-input exit code.

mod common;

use common::*;

#[test]
fn unknown_kernel_source_lists_the_known_ones() {
    let run = xtask(&["run-scenarios", "--kernel", "debian:5.4"]);
    assert_eq!(run.code, 2, "{}", run.explain());
    assert!(
        run.stderr.contains("debian:6.12") && run.stderr.contains("5.4"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_patch_file_is_named() {
    let run = xtask(&["run-scenarios", "--patch", "/nonexistent/fix.patch"]);
    assert_eq!(run.code, 2, "{}", run.explain());
    assert!(
        run.stderr.contains("/nonexistent/fix.patch"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_fragment_symbol_the_kernel_drops_stops_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let frag = dir.path().join("bogus.config");
    std::fs::write(&frag, "CONFIG_HMMLAB_NO_SUCH_SYMBOL=y\n").unwrap();
    let run = xtask(&["run-scenarios", "--config-fragment", frag.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.explain());
    assert!(
        run.stderr.contains("CONFIG_HMMLAB_NO_SUCH_SYMBOL=y (")
            && run.stderr.contains("bogus.config:1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("nothing was compiled"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_patch_that_does_not_apply_names_the_patch_and_the_hunk() {
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("stale.patch");
    std::fs::write(
        &patch,
        "--- a/mm/migrate_device.c\n+++ b/mm/migrate_device.c\n@@ -40,3 +40,3 @@\n \tstruct migrate_vma *migrate = walk->private;\n-\tthis line is not in any kernel;\n+\tneither is this one;\n \tunsigned long addr;\n",
    )
    .unwrap();
    let run = xtask(&["run-scenarios", "--patch", patch.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.explain());
    assert!(
        run.stderr.contains("stale.patch does not apply"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Hunk #1 FAILED"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("failing hunk #1 of mm/migrate_device.c")
            && run.stderr.contains("-\tthis line is not in any kernel;"),
        "{}",
        run.stderr
    );
}

/// `--kernel path:DIR` never writes into DIR: configure a build of the
/// cached Debian tree as if it were a developer's (a fragment symbol the
/// kernel drops stops it before compiling), then look for anything newer.
#[test]
fn a_path_source_tree_is_never_written() {
    let tree = cached_kernel_tree();
    let before = newest_mtime(&tree);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let dir = tempfile::tempdir().unwrap();
    let frag = dir.path().join("bogus.config");
    std::fs::write(&frag, "CONFIG_HMMLAB_NO_SUCH_SYMBOL=y\n").unwrap();
    let spec = format!("path:{}", tree.display());
    let run = xtask(&[
        "run-scenarios",
        "--kernel",
        &spec,
        "--config-fragment",
        frag.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "{}", run.explain());
    assert!(
        run.stderr.contains("CONFIG_HMMLAB_NO_SUCH_SYMBOL"),
        "{}",
        run.stderr
    );
    let after = newest_mtime(&tree);
    assert_eq!(
        before,
        after,
        "something under {} was written",
        tree.display()
    );
}

/// The newest modification time of anything under `dir`, directories included.
fn newest_mtime(dir: &std::path::Path) -> std::time::SystemTime {
    let mut newest = std::fs::metadata(dir).unwrap().modified().unwrap();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            newest = newest.max(m.modified().unwrap());
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    newest
}
