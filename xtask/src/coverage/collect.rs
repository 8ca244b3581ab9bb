//! A coverage run's host side (`run-scenarios --coverage`): before the
//! boot, the build's `.gcno` files against the host `gcov`; after the
//! run, the guest's counter stream (`hmmlab_proto::coverage`, saved by
//! QEMU as `coverage/counters.bin`) unpacked into one directory of `.gcda`
//! files per scenario instance (`coverage/gcda/<instance>/mm/…`), then
//! the report into `coverage/`.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use hmmlab_harness::report::write::write_atomic;
use hmmlab_proto::coverage::{decode, Frame};

use super::gcov::ReadOptions;
use super::read::{read_all, Instance};
use super::{table, version};
use crate::kernel::{cover, Kernel};

/// The run directory's coverage directory.
pub const DIR: &str = "coverage";
/// The guest's counter stream as QEMU wrote it, inside [`DIR`].
pub const STREAM: &str = "counters.bin";

/// Before the boot: the kernel counts every covered file, and the host
/// `gcov` reads its compiler's notes (else which gcov to install).
pub fn check_ready(k: &Kernel, gcov: &str) -> Result<()> {
    cover::check_built(&k.obj_dir, &k.cover)?;
    let host = version::host_gcov(gcov)?;
    for f in &k.cover {
        let gcno = k.obj_dir.join(cover::object(f)).with_extension("gcno");
        let notes = version::read_header(&gcno, b"gcno")?;
        version::check_compiler(&gcno, &notes, gcov, host)?;
    }
    Ok(())
}

/// What the guest sent: one directory of counters per instance, in the
/// order they came, and the problems it reported or the stream showed.
#[derive(Debug, Default)]
pub struct Unpacked {
    pub instances: Vec<Instance>,
    pub problems: Vec<String>,
}

/// Write each `.gcda` of `stream` to `<out>/<instance>/<gcda>`.
pub fn unpack(stream: &[u8], out: &Path) -> Result<Unpacked> {
    let (frames, tail) = decode(stream);
    let mut u = Unpacked::default();
    for frame in frames {
        match frame {
            Frame::Problem { instance, message } => {
                u.problems.push(format!("{instance}: {message}"))
            }
            Frame::Gcda {
                instance,
                gcda,
                data,
            } => {
                if !plain_name(&instance) || !relative(&gcda) {
                    u.problems.push(format!(
                        "counters with an unusable name dropped: instance {instance:?}, file {gcda:?}"
                    ));
                    continue;
                }
                let dir = out.join(&instance);
                let path = dir.join(&gcda);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                write_atomic(&path, &data)?;
                if !u.instances.iter().any(|i| i.name == instance) {
                    u.instances.push(Instance {
                        name: instance,
                        gcda_dir: dir,
                    });
                }
            }
        }
    }
    u.problems.extend(tail);
    Ok(u)
}

/// An instance name usable as one directory name.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains('/') && !name.contains('\0')
}

/// A relative path that stays below its directory.
fn relative(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// After the run: the report of every instance that sent counters, in
/// `<run_dir>/coverage/`; the table on stdout. An error when there is no
/// report to make (no counters at all, or gcov could not read them).
pub fn report(run_dir: &Path, k: &Kernel, gcov: &str) -> Result<PathBuf> {
    let dir = run_dir.join(DIR);
    let stream_path = dir.join(STREAM);
    let stream = std::fs::read(&stream_path)
        .with_context(|| format!("reading the guest's counters {}", stream_path.display()))?;
    let u = unpack(&stream, &dir.join("gcda"))?;
    if !u.problems.is_empty() {
        let text = u.problems.join("\n") + "\n";
        write_atomic(&dir.join("problems.txt"), text.as_bytes())?;
        eprintln!("coverage: the guest reported problems with the counters:");
        for p in &u.problems {
            eprintln!("  {p}");
        }
    }
    if u.instances.is_empty() {
        anyhow::bail!(
            "coverage: the guest sent no counters ({} bytes in {}){}; its console \
             (console.log, lines `hmmlab-guest: coverage:`) may say why",
            stream.len(),
            stream_path.display(),
            if u.problems.is_empty() {
                String::new()
            } else {
                format!(": {}", u.problems.join("; "))
            }
        );
    }
    let opts = ReadOptions {
        source: k.tree.clone(),
        gcov: gcov.to_string(),
        all_files: false,
    };
    let cov = read_all(&k.obj_dir, &u.instances, &opts)
        .context("coverage: reading the counters with gcov")?;
    super::write(&cov, &k.tree, &dir)?;
    print!("{}", table::render(&cov));
    eprintln!(
        "coverage of {} scenario instance(s) in {}: coverage.info, coverage.json, html/index.html",
        u.instances.len(),
        dir.display()
    );
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gcda(instance: &str, gcda: &str, data: &[u8]) -> Frame {
        Frame::Gcda {
            instance: instance.into(),
            gcda: gcda.into(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn each_instance_gets_a_tree_of_its_counters() {
        // A private parent, so the escape check below sees only this test.
        let outer = tempfile::tempdir().unwrap();
        let d = tempfile::tempdir_in(outer.path()).unwrap();
        let frames = [
            gcda("a@madvise", "mm/migrate_device.gcda", b"A1"),
            gcda("a@madvise", "lib/test_hmm.gcda", b"A2"),
            Frame::Problem {
                instance: "b@madvise".into(),
                message: "cannot zero the gcov counters".into(),
            },
            gcda("c@always", "mm/migrate_device.gcda", b"C1"),
            gcda("../x", "mm/migrate_device.gcda", b"X"),
            gcda("d@always", "../../etc/x.gcda", b"X"),
        ];
        let mut stream: Vec<u8> = frames.iter().flat_map(|f| f.encode()).collect();
        stream.extend(gcda("e@always", "mm/migrate_device.gcda", b"0123").encode());
        stream.truncate(stream.len() - 2);
        let u = unpack(&stream, d.path()).unwrap();
        let names: Vec<&str> = u.instances.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["a@madvise", "c@always"]);
        assert_eq!(u.instances[0].gcda_dir, d.path().join("a@madvise"));
        let read = |p: &str| std::fs::read(d.path().join(p)).unwrap();
        assert_eq!(read("a@madvise/mm/migrate_device.gcda"), b"A1");
        assert_eq!(read("a@madvise/lib/test_hmm.gcda"), b"A2");
        assert_eq!(read("c@always/mm/migrate_device.gcda"), b"C1");
        assert_eq!(u.problems.len(), 4, "{:?}", u.problems);
        assert_eq!(u.problems[0], "b@madvise: cannot zero the gcov counters");
        assert!(u.problems[1].contains("\"../x\""), "{:?}", u.problems);
        assert!(
            u.problems[2].contains("../../etc/x.gcda"),
            "{:?}",
            u.problems
        );
        assert!(u.problems[3].contains("e@always") && u.problems[3].contains("cut short"));
        assert!(!d.path().join("x").exists() && !d.path().parent().unwrap().join("x").exists());
    }

    #[test]
    fn no_counters_is_an_error_that_says_where_to_look() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(DIR)).unwrap();
        std::fs::write(d.path().join(DIR).join(STREAM), b"").unwrap();
        let k: Kernel = serde_json::from_value(serde_json::json!({
            "key": "k", "source": "debian:7.3", "identity": "i", "release": "7.3.4",
            "patches": [], "fragments": [], "config_hash": "c", "compiler": "gcc",
            "tree": "/t", "obj_dir": "/o", "bzimage": "/o/b", "hmm_tests": "/h",
            "build_log": "/l", "build_seconds": 1.0
        }))
        .unwrap();
        let e = format!("{:#}", report(d.path(), &k, "gcov").unwrap_err());
        assert!(
            e.contains("sent no counters") && e.contains("console.log"),
            "{e}"
        );
    }
}
