//! The images stage: a newc cpio initramfs holding the guest driver as
//! `/init`, the plan, and the selftest binaries. Written in-process: no host
//! `cpio` or busybox is needed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use cpio::newc::{trailer, Builder};

/// One file of the image.
pub struct Entry<'a> {
    /// Path inside the image, without the leading `/`.
    pub path: &'a str,
    pub mode: u32,
    pub data: Vec<u8>,
}

const DIR: u32 = 0o040_000;
const REG: u32 = 0o100_000;
const CHR: u32 = 0o020_000;

/// Write the initramfs: the directories the guest mounts on, a console node,
/// then `files`. Parent directories of every file are created first.
pub fn write_initramfs(out: &Path, files: &[Entry]) -> Result<()> {
    let f = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = BufWriter::new(f);
    let mut ino = 1u32;
    let mut dirs: Vec<String> = ["dev", "proc", "sys", "tmp", "hmmlab", "hmmlab/bin"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for e in files {
        let mut parent = Path::new(e.path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            let s = p.to_string_lossy().to_string();
            if !dirs.contains(&s) {
                dirs.push(s);
            }
            parent = p.parent();
        }
    }
    dirs.sort();
    for d in &dirs {
        w = Builder::new(d)
            .ino(next(&mut ino))
            .mode(DIR | 0o755)
            .nlink(2)
            .write(w, 0)
            .finish()?;
    }
    // The kernel opens /dev/console for PID 1's stdio before anything is mounted.
    w = Builder::new("dev/console")
        .ino(next(&mut ino))
        .mode(CHR | 0o600)
        .nlink(1)
        .rdev_major(5)
        .rdev_minor(1)
        .write(w, 0)
        .finish()?;
    for e in files {
        let size = u32::try_from(e.data.len())
            .with_context(|| format!("{} is too large for cpio", e.path))?;
        let mut fw = Builder::new(e.path)
            .ino(next(&mut ino))
            .mode(REG | e.mode)
            .nlink(1)
            .write(w, size);
        fw.write_all(&e.data)?;
        w = fw.finish()?;
    }
    let mut w = trailer(w)?;
    w.flush()?;
    Ok(())
}

fn next(ino: &mut u32) -> u32 {
    *ino += 1;
    *ino
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_round_trips_through_a_reader() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("i.cpio");
        write_initramfs(
            &out,
            &[
                Entry {
                    path: "init",
                    mode: 0o755,
                    data: b"#!x".to_vec(),
                },
                Entry {
                    path: "hmmlab/plan.json",
                    mode: 0o644,
                    data: b"{}".to_vec(),
                },
                Entry {
                    path: "a/b/c",
                    mode: 0o644,
                    data: vec![7; 10],
                },
            ],
        )
        .unwrap();
        let mut r = std::fs::File::open(&out).unwrap();
        let mut names = vec![];
        loop {
            let rd = cpio::newc::Reader::new(&mut r).unwrap();
            if rd.entry().is_trailer() {
                break;
            }
            names.push((
                rd.entry().name().to_string(),
                rd.entry().mode(),
                rd.entry().file_size(),
            ));
            rd.finish().unwrap();
        }
        let find = |n: &str| names.iter().find(|e| e.0 == n).cloned();
        assert_eq!(find("init"), Some(("init".into(), REG | 0o755, 3)));
        assert_eq!(find("dev/console").map(|e| e.1), Some(CHR | 0o600));
        let pos = |n: &str| names.iter().position(|e| e.0 == n).unwrap();
        assert!(pos("a") < pos("a/b") && pos("a/b") < pos("a/b/c"));
        assert!(pos("hmmlab") < pos("hmmlab/plan.json"));
    }
}
