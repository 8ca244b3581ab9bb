//! Patches: `--patch FILE` and quilt-style `series` directories, applied in
//! order to a private copy of the source. A patch that does not apply stops
//! the build with the patch's name and the hunk that failed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::fail::bad_input;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    pub path: PathBuf,
    /// `-pN` strip level (quilt's default is 1).
    pub strip: u32,
}

/// Collect the patches: first those of the series directory, then the single ones.
pub fn collect(series_dir: Option<&Path>, singles: &[PathBuf]) -> Result<Vec<Patch>> {
    let mut out = Vec::new();
    if let Some(dir) = series_dir {
        let series = dir.join("series");
        let text = std::fs::read_to_string(&series).map_err(|e| {
            bad_input(format!(
                "--patches {}: cannot read {}: {e}; a patch directory needs a `series` file listing one patch per line",
                dir.display(),
                series.display()
            ))
        })?;
        out.extend(parse_series(dir, &series, &text)?);
    }
    for p in singles {
        out.push(Patch {
            path: crate::paths::absolute(p),
            strip: 1,
        });
    }
    let mut missing = Vec::new();
    for p in &out {
        if !p.path.is_file() {
            missing.push(format!("  {}", p.path.display()));
        }
    }
    if !missing.is_empty() {
        return Err(bad_input(format!(
            "patch file(s) not found:\n{}\ncheck the path (relative paths are taken from the current directory; series entries from the series file's directory)",
            missing.join("\n")
        )));
    }
    Ok(out)
}

/// Parse a quilt `series` file: one patch per line, `#` comments, optional `-pN`.
pub fn parse_series(dir: &Path, series: &Path, text: &str) -> Result<Vec<Patch>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or_default();
        let mut strip = 1;
        for w in words {
            match w.strip_prefix("-p").and_then(|n| n.parse().ok()) {
                Some(n) => strip = n,
                None => {
                    return Err(bad_input(format!(
                        "{}:{}:{}: unknown option `{w}` after patch name; only -pN is understood",
                        series.display(),
                        i + 1,
                        raw.find(w).unwrap_or(0) + 1
                    )))
                }
            }
        }
        out.push(Patch {
            path: dir.join(name),
            strip,
        });
    }
    Ok(out)
}

/// Check that the first patch applies to a pristine tree without touching it,
/// before the tree is copied for patching.
pub fn check_first(tree: &Path, patches: &[Patch]) -> Result<()> {
    match patches.first() {
        Some(p) => run_patch(tree, p, &[true]),
        None => Ok(()),
    }
}

/// Apply every patch in order to `tree` (a private copy). A dry run first, so a
/// failing patch leaves no half-applied files behind it.
pub fn apply_all(tree: &Path, patches: &[Patch]) -> Result<()> {
    for (n, p) in patches.iter().enumerate() {
        eprintln!(
            "  applying patch {}/{}: {}",
            n + 1,
            patches.len(),
            p.path.display()
        );
        run_patch(tree, p, &[true, false])?;
    }
    Ok(())
}

fn run_patch(tree: &Path, p: &Patch, passes: &[bool]) -> Result<()> {
    let name = p.path.display().to_string();
    for &dry in passes {
        let mut argv = vec![
            "patch".to_string(),
            format!("-p{}", p.strip),
            "--batch".into(),
            "--forward".into(),
            "--no-backup-if-mismatch".into(),
            "-r".into(),
            "-".into(),
            "-d".into(),
            tree.to_string_lossy().into(),
            "-i".into(),
            name.clone(),
        ];
        if dry {
            argv.push("--dry-run".into());
        }
        let out = duct::cmd("patch", &argv[1..])
            .stderr_to_stdout()
            .stdout_capture()
            .unchecked()
            .run()
            .context("running `patch` (is the `patch` package installed?)")?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let patch_text = std::fs::read_to_string(&p.path).unwrap_or_default();
            return Err(bad_input(failure_report(&name, &text, &patch_text)));
        }
    }
    Ok(())
}

/// The files a unified diff changes, as paths in the tree after stripping
/// `strip` leading components (`patch -pN`); a deleted file by its old name.
pub fn touched_files(text: &str, strip: u32) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut old: Option<&str> = None;
    for line in text.lines() {
        let name = |rest: &str| rest.split('\t').next().unwrap_or("").trim().to_string();
        // A header is a `---` line directly followed by a `+++` line.
        let prev = old.take();
        if let Some(rest) = line.strip_prefix("--- ") {
            old = Some(rest);
        } else if let (Some(rest), Some(o)) = (line.strip_prefix("+++ "), prev) {
            let target = match name(rest) {
                t if t == "/dev/null" => name(o),
                t => t,
            };
            let parts: Vec<&str> = target.split('/').collect();
            if parts.len() > strip as usize {
                let path = parts[strip as usize..].join("/");
                if !out.contains(&path) {
                    out.push(path);
                }
            }
        }
    }
    out
}

/// Explain a failed patch: patch's own words plus the text of each failed hunk.
pub fn failure_report(name: &str, patch_output: &str, patch_text: &str) -> String {
    let mut msg = format!("patch {name} does not apply:\n");
    let mut file = String::new();
    for line in patch_output.lines() {
        msg.push_str(&format!("    {line}\n"));
    }
    for line in patch_output.lines() {
        // A dry run says "checking file", a real one "patching file".
        if let Some(f) = line
            .strip_prefix("patching file ")
            .or_else(|| line.strip_prefix("checking file "))
        {
            file = f.trim().trim_matches('\'').to_string();
        } else if let Some(rest) = line.strip_prefix("Hunk #") {
            if !line.contains("FAILED") {
                continue;
            }
            let num: usize = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if let Some(h) = hunk_text(patch_text, &file, num) {
                msg.push_str(&format!("failing hunk #{num} of {file}:\n{h}"));
            }
        }
    }
    msg.push_str(
        "rebase the patch onto this kernel source, or choose the kernel it was made for (--kernel)",
    );
    msg
}

/// The text of hunk `num` (1-based) of `file` in a unified diff.
pub fn hunk_text(patch: &str, file: &str, num: usize) -> Option<String> {
    let mut in_file = false;
    let mut count = 0;
    let mut out = String::new();
    let mut capturing = false;
    for line in patch.lines() {
        if line.starts_with("diff ") || line.starts_with("--- ") {
            if capturing {
                break;
            }
            in_file = false;
            continue;
        }
        if let Some(target) = line.strip_prefix("+++ ") {
            let t = target.split_whitespace().next().unwrap_or("");
            in_file = t == file || t.ends_with(&format!("/{file}"));
            continue;
        }
        if !in_file {
            continue;
        }
        if line.starts_with("@@") {
            if capturing {
                break;
            }
            count += 1;
            capturing = count == num;
        }
        if capturing {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "\
diff --git a/mm/a.c b/mm/a.c
--- a/mm/a.c
+++ b/mm/a.c
@@ -1,3 +1,3 @@
 one
-two
+TWO
@@ -10,2 +10,2 @@
 ten
-eleven
+ELEVEN
diff --git a/mm/b.c b/mm/b.c
--- a/mm/b.c
+++ b/mm/b.c
@@ -5,1 +5,1 @@
-x
+y
";

    #[test]
    fn touched_files_strip_and_follow_deletions() {
        assert_eq!(touched_files(DIFF, 1), vec!["mm/a.c", "mm/b.c"]);
        assert_eq!(touched_files(DIFF, 0), vec!["b/mm/a.c", "b/mm/b.c"]);
        let del = "--- a/lib/x.c\t2026-01-01\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n";
        assert_eq!(touched_files(del, 1), vec!["lib/x.c"]);
    }

    #[test]
    fn finds_hunks_by_file_and_number() {
        let h = hunk_text(DIFF, "mm/a.c", 2).unwrap();
        assert!(
            h.contains("-eleven") && !h.contains("-two") && !h.contains("-x"),
            "{h}"
        );
        assert!(hunk_text(DIFF, "mm/b.c", 1).unwrap().contains("+y"));
        assert!(hunk_text(DIFF, "mm/b.c", 2).is_none());
    }

    #[test]
    fn report_names_patch_and_hunk() {
        // A dry run says "checking file", a real one "patching file".
        for verb in ["patching", "checking"] {
            let out =
                format!("{verb} file mm/a.c\nHunk #2 FAILED at 10.\n1 out of 2 hunks FAILED\n");
            let r = failure_report("p.patch", &out, DIFF);
            assert!(
                r.contains("p.patch")
                    && r.contains("failing hunk #2 of mm/a.c")
                    && r.contains("-eleven"),
                "{verb}: {r}"
            );
        }
    }

    #[test]
    fn series_parsing() {
        let d = Path::new("/x");
        let s = parse_series(
            d,
            Path::new("/x/series"),
            "# c\n\na.patch\nb.patch -p0 # c\n",
        )
        .unwrap();
        assert_eq!(
            s,
            vec![
                Patch {
                    path: "/x/a.patch".into(),
                    strip: 1
                },
                Patch {
                    path: "/x/b.patch".into(),
                    strip: 0
                },
            ]
        );
        let e = parse_series(d, Path::new("/x/series"), "a.patch\nb.patch -R\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/x/series:2:9") && e.contains("-R"), "{e}");
    }
}
