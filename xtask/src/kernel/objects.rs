//! How many objects a kernel build compiled, kept in its build directory
//! (`objects.json`, beside `stamp.json`), so the next build of the same
//! configuration shows its own count against it, with an estimate.
//!
//! The objects a build compiles are decided by its final `.config`, which
//! also names the kernel version and the compiler: builds of one source
//! and configuration with other patches compile the same objects, give or
//! take a file a patch adds, while another configuration is another count
//! (tinyconfig compiles a few hundred, Debian's thousands). So a build
//! expects the count of the most recent build with the same `.config`
//! hash, and nothing without one. Only builds that start from an object
//! directory make never built in record a count or are shown against one:
//! in a directory that holds a build (a developer's tree built again
//! under its key, or a build stopped halfway) make compiles only what is
//! missing or changed, which says nothing of the next build.

use std::fs;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// The file in a build directory.
pub const FILE: &str = "objects.json";

/// Left in an object directory when make first starts in it, so a build
/// stopped halfway is not taken for one from the start next time.
const STARTED: &str = ".hmmlab-make-started";

/// One build's count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objects {
    /// Short hash of the final .config (the stamp's `config_hash`).
    pub config_hash: String,
    pub objects: u64,
}

/// Whether make is about to build `obj` from the start (no vmlinux, and
/// make never started in it); marks it as started either way.
pub fn from_scratch(obj: &Path) -> bool {
    let marker = obj.join(STARTED);
    let scratch = !obj.join("vmlinux").exists() && !marker.exists();
    let _ = fs::write(&marker, b"");
    scratch
}

/// Keep `objects`, the count of a build of `config_hash`, in `build_dir`.
pub fn record(build_dir: &Path, config_hash: &str, objects: u64) -> Result<()> {
    let o = Objects {
        config_hash: config_hash.to_string(),
        objects,
    };
    super::build::write_atomic(&build_dir.join(FILE), &serde_json::to_vec_pretty(&o)?)
}

/// The count of the most recent build of `config_hash` among the build
/// directories under `builds` (`<cache>/build`), if any recorded one.
pub fn expected(builds: &Path, config_hash: &str) -> Option<u64> {
    let mut best: Option<(SystemTime, u64)> = None;
    for e in fs::read_dir(builds).ok()?.flatten() {
        let path = e.path().join(FILE);
        let Some(o) = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Objects>(&b).ok())
        else {
            continue;
        };
        if o.config_hash != config_hash || o.objects == 0 {
            continue;
        }
        let when = fs::metadata(&path)
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if best.is_none_or(|(t, _)| when > t) {
            best = Some((when, o.objects));
        }
    }
    best.map(|(_, n)| n)
}

/// Whether a kbuild step (`CC mm/slub.o`, as `make_progress` picks it)
/// makes an object.
pub fn is_object(step: &str) -> bool {
    step.split_whitespace()
        .last()
        .is_some_and(|target| target.ends_with(".o"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn objects_are_the_steps_that_make_a_dot_o() {
        assert!(is_object("CC mm/migrate_device.o"));
        assert!(is_object("AS arch/x86/entry/entry_64.o"));
        assert!(is_object("LD vmlinux.o"));
        assert!(!is_object("AR mm/built-in.a"));
        assert!(!is_object("HOSTCC scripts/basic/fixdep"));
        assert!(!is_object("GEN Makefile"));
        assert!(!is_object(""));
    }

    #[test]
    fn the_count_of_the_latest_build_of_the_same_config_is_expected() {
        let d = tempfile::tempdir().unwrap();
        let build = |key: &str| {
            let b = d.path().join(key);
            fs::create_dir_all(&b).unwrap();
            b
        };
        assert_eq!(expected(d.path(), "c0ffee"), None);
        record(&build("a"), "c0ffee", 4200).unwrap();
        record(&build("b"), "other", 600).unwrap();
        assert_eq!(
            serde_json::from_slice::<Objects>(&fs::read(d.path().join("a").join(FILE)).unwrap())
                .unwrap(),
            Objects {
                config_hash: "c0ffee".into(),
                objects: 4200
            }
        );
        assert_eq!(expected(d.path(), "c0ffee"), Some(4200));
        assert_eq!(expected(d.path(), "other"), Some(600));
        assert_eq!(expected(d.path(), "none"), None);
        // A later build of the same config (another patch) is the one expected.
        record(&build("c"), "c0ffee", 4210).unwrap();
        let later = SystemTime::now() + Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(d.path().join("c").join(FILE))
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(expected(d.path(), "c0ffee"), Some(4210));
        // Lock files and directories without a count are passed over.
        fs::write(d.path().join("a.lock"), b"").unwrap();
        build("d");
        fs::write(d.path().join("d").join(FILE), b"not json").unwrap();
        assert_eq!(expected(d.path(), "c0ffee"), Some(4210));
    }

    #[test]
    fn only_a_directory_make_never_started_in_is_from_scratch() {
        let d = tempfile::tempdir().unwrap();
        assert!(from_scratch(d.path()));
        // Stopped halfway, then built again: not from the start.
        assert!(!from_scratch(d.path()));
        let built = tempfile::tempdir().unwrap();
        fs::write(built.path().join("vmlinux"), b"").unwrap();
        assert!(!from_scratch(built.path()));
    }
}
