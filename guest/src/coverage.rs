//! A coverage run (`plan.coverage`): the kernel's gcov counters are global,
//! so PID 1 zeroes them just before each scenario process starts and, once
//! the scenario is over (its processes gone, its device memory released,
//! its end reported), copies each covered object's `.gcda` from debugfs
//! with plain reads and sends it on the coverage channel
//! (`hmmlab_proto::coverage`). Nothing here changes a scenario's outcome: a
//! problem is a frame of its own, which the host reports.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use hmmlab_proto::coverage::{CoveragePlan, Frame};

pub struct Counters {
    /// debugfs's gcov directory (`GCOV_DIR`; another in tests).
    root: PathBuf,
    /// Each covered object's name (`mm/migrate_device.gcda`) and where its
    /// counters are, or why they cannot be found.
    files: Vec<(String, Result<PathBuf, String>)>,
    out: File,
}

impl Counters {
    /// Find every covered object's counters under `root` once (built-in
    /// objects are there from boot on).
    pub fn new(plan: &CoveragePlan, root: &Path, out: File) -> Counters {
        let files = plan
            .gcda
            .iter()
            .map(|g| (g.clone(), locate(plan, root, g)))
            .collect();
        Counters {
            root: root.to_path_buf(),
            files,
            out,
        }
    }

    /// Zero every counter before `instance` runs. False when they could not
    /// be zeroed: then they would count earlier scenarios too, so none are
    /// sent for it, only the problem.
    pub fn reset(&self, instance: &str) -> bool {
        let reset = self.root.join("reset");
        match fs::write(&reset, "1") {
            Ok(()) => true,
            Err(e) => {
                self.problem(
                    instance,
                    format!(
                        "cannot zero the gcov counters ({}: {e}); is the kernel built with \
                         CONFIG_GCOV_KERNEL and debugfs mounted?",
                        reset.display()
                    ),
                );
                false
            }
        }
    }

    /// Send the counters of every covered object, as they are after `instance`.
    pub fn send(&self, instance: &str) {
        for (gcda, path) in &self.files {
            let frame = match path.as_ref().map(|p| (p, fs::read(p))) {
                Ok((_, Ok(data))) => Frame::Gcda {
                    instance: instance.to_string(),
                    gcda: gcda.clone(),
                    data,
                },
                Ok((p, Err(e))) => Frame::Problem {
                    instance: instance.to_string(),
                    message: format!("cannot read {}: {e}", p.display()),
                },
                Err(why) => Frame::Problem {
                    instance: instance.to_string(),
                    message: why.clone(),
                },
            };
            self.write(&frame);
        }
    }

    /// Wait until everything has left the serial port (before power-off).
    pub fn drain(&self) {
        // SAFETY: the fd is open; tcdrain only fails (ENOTTY) on a non-tty.
        unsafe { libc::tcdrain(self.out.as_raw_fd()) };
    }

    fn problem(&self, instance: &str, message: String) {
        self.write(&Frame::Problem {
            instance: instance.to_string(),
            message,
        });
    }

    fn write(&self, frame: &Frame) {
        if let Err(e) = (&self.out).write_all(&frame.encode()) {
            eprintln!("hmmlab-guest: coverage: cannot send counters: {e}");
        }
    }
}

/// Where debugfs shows `gcda`: under the object tree's path as the plan
/// gives it, or, if the kernel recorded another spelling of that path
/// (a symlink resolved), the one file under `root` whose path ends in it.
fn locate(plan: &CoveragePlan, root: &Path, gcda: &str) -> Result<PathBuf, String> {
    let rel = plan.debugfs_path(gcda);
    let rel = rel
        .strip_prefix(hmmlab_proto::coverage::GCOV_DIR)
        .unwrap_or(&rel)
        .trim_start_matches('/');
    let exact = root.join(rel);
    if exact.is_file() {
        return Ok(exact);
    }
    let mut all = Vec::new();
    walk(root, &mut all);
    let suffix = format!("/{gcda}");
    let found: Vec<&PathBuf> = all
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(&suffix))
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(format!(
            "no counters for {gcda} at {} ({} has {}): is the object compiled with \
             GCOV_PROFILE and built into the kernel?",
            exact.display(),
            root.display(),
            if all.is_empty() {
                "no .gcda at all".to_string()
            } else {
                all.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )),
    }
}

/// Every `.gcda` under `dir` (debugfs also has `.gcno` symlinks).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out),
            Ok(t) if t.is_file() && path.extension().is_some_and(|x| x == "gcda") => out.push(path),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmmlab_proto::coverage::decode;
    use std::io::Read;

    /// A fake debugfs gcov directory: `reset` and one object's counters.
    fn fake_debugfs(name: &str, objtree: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("hmmlab-cov-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let mm = root.join(objtree.trim_start_matches('/')).join("mm");
        fs::create_dir_all(&mm).unwrap();
        fs::write(root.join("reset"), "").unwrap();
        fs::write(mm.join("migrate_device.gcda"), b"adcg\n\x00\x01").unwrap();
        root
    }

    fn plan(objtree: &str, gcda: &[&str]) -> CoveragePlan {
        CoveragePlan {
            objtree: objtree.into(),
            gcda: gcda.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn sent(root: &Path, plan: &CoveragePlan, run: impl FnOnce(&Counters)) -> Vec<Frame> {
        let (mut rx, tx) = std::io::pipe().unwrap();
        let c = Counters::new(plan, root, File::from(std::os::fd::OwnedFd::from(tx)));
        run(&c);
        drop(c);
        let mut bytes = vec![];
        rx.read_to_end(&mut bytes).unwrap();
        let (frames, problem) = decode(&bytes);
        assert_eq!(problem, None);
        frames
    }

    #[test]
    fn reset_then_send_each_object() {
        let root = fake_debugfs("send", "/obj/k");
        let p = plan("/obj/k", &["mm/migrate_device.gcda", "lib/test_hmm.gcda"]);
        let frames = sent(&root, &p, |c| {
            assert!(c.reset("a@madvise"));
            c.send("a@madvise");
        });
        assert_eq!(fs::read_to_string(root.join("reset")).unwrap(), "1");
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(
            frames[0],
            Frame::Gcda {
                instance: "a@madvise".into(),
                gcda: "mm/migrate_device.gcda".into(),
                data: b"adcg\n\x00\x01".to_vec()
            }
        );
        match &frames[1] {
            Frame::Problem { instance, message } => {
                assert_eq!(instance, "a@madvise");
                assert!(
                    message.contains("no counters for lib/test_hmm.gcda")
                        && message.contains("obj/k/mm/migrate_device.gcda"),
                    "{message}"
                );
            }
            f => panic!("{f:?}"),
        }
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn another_spelling_of_the_object_tree_is_found_by_its_end() {
        let root = fake_debugfs("spelling", "/real/obj/k");
        let p = plan("/link/obj/k", &["mm/migrate_device.gcda"]);
        let frames = sent(&root, &p, |c| c.send("a@always"));
        assert!(matches!(&frames[..], [Frame::Gcda { .. }]), "{frames:?}");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn counters_that_cannot_be_zeroed_are_a_problem_frame() {
        let root = std::env::temp_dir().join(format!("hmmlab-cov-none-{}", std::process::id()));
        let p = plan("/obj/k", &["mm/migrate_device.gcda"]);
        let frames = sent(&root, &p, |c| assert!(!c.reset("a@madvise")));
        match &frames[..] {
            [Frame::Problem { message, .. }] => {
                assert!(message.contains("CONFIG_GCOV_KERNEL"), "{message}")
            }
            f => panic!("{f:?}"),
        }
    }
}
