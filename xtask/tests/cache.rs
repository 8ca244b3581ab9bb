//! `cargo xtask cache` over a private cache (`HMMLAB_CACHE` in a temporary
//! directory) of fabricated builds laid out as `kernel::ensure` lays them
//! out, with its stamps (`fixtures/cache/stamp.json` is what a build writes:
//! a unit test checks that). No kernel is built, no VM booted.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

const ID_73: &str = "debian:linux-source-7.3=7.3.4-1~bpo13+1";
const ID_612: &str = "debian:linux-source-6.12=6.12.117-1~deb12u1";
const MIB: usize = 1 << 20;

fn xtask(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("HMMLAB_CACHE", cache)
        .env_remove("HMMLAB_CACHE_MAX")
        .output()
        .expect("running xtask")
}

fn explain(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `src/<hash>` of a source identity, as `Source::pristine_tree` names it.
fn src_dir(cache: &Path, identity: &str) -> PathBuf {
    let d = Sha256::digest(identity.as_bytes());
    let hash: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    cache.join("src").join(hash)
}

fn write(p: &Path, bytes: usize) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    // Not zeros: a file system may not give zeros blocks.
    fs::write(p, (0..bytes).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
}

/// A pristine tree, extracted: `src/<hash>/<name>`.
fn pristine(cache: &Path, identity: &str, name: &str, mib: usize) -> PathBuf {
    let tree = src_dir(cache, identity).join(name);
    write(&tree.join("Makefile"), 100);
    write(&tree.join("mm/migrate_device.c"), 64 << 10);
    write(&tree.join("drivers/big.c"), mib * MIB);
    tree
}

/// A finished build: the objects (a bzImage of `mib`), the build directory
/// with its logs and the stamp, last used `days` ago. A patched build gets
/// a hard-linked copy of the pristine tree with one file rewritten, as
/// `source::copy_tree` and `patch` leave it.
fn build(cache: &Path, key: &str, identity: &str, tree: &Path, patched: bool, days: u64) {
    let dir = cache.join("build").join(key);
    fs::create_dir_all(&dir).unwrap();
    let (tree, obj) = if patched {
        let copy = dir.join("src").join(tree.file_name().unwrap());
        fs::create_dir_all(&copy).unwrap();
        let ok = Command::new("cp")
            .arg("-al")
            .arg(format!("{}/.", tree.display()))
            .arg(&copy)
            .status()
            .unwrap();
        assert!(ok.success());
        let f = copy.join("mm/migrate_device.c");
        fs::remove_file(&f).unwrap();
        write(&f, 64 << 10);
        File::create(dir.join("src.ok")).unwrap();
        (copy, dir.join("src/obj").join(key))
    } else {
        let obj = tree.parent().unwrap().join("obj").join(key);
        (tree.to_path_buf(), obj)
    };
    let bzimage = obj.join("arch/x86/boot/bzImage");
    write(&bzimage, MIB);
    write(&dir.join("build.log"), 4096);
    write(&dir.join("hmm-tests"), 4096);
    let mut stamp: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cache/stamp.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let (source, release) = if identity == ID_73 {
        ("debian:7.3", "7.3.4")
    } else {
        ("debian:6.12", "6.12.117")
    };
    stamp["key"] = key.into();
    stamp["source"] = source.into();
    stamp["release"] = release.into();
    stamp["identity"] = identity.into();
    if !patched {
        stamp["patches"] = serde_json::json!([]);
        stamp["patched_files"] = serde_json::json!([]);
    }
    stamp["tree"] = tree.to_string_lossy().into();
    stamp["obj_dir"] = obj.to_string_lossy().into();
    stamp["bzimage"] = bzimage.to_string_lossy().into();
    stamp["hmm_tests"] = dir.join("hmm-tests").to_string_lossy().into();
    stamp["build_log"] = dir.join("build.log").to_string_lossy().into();
    fs::write(
        dir.join("stamp.json"),
        serde_json::to_vec_pretty(&stamp).unwrap(),
    )
    .unwrap();
    File::create(cache.join("build").join(format!("{key}.lock"))).unwrap();
    let used = File::create(dir.join("last-used")).unwrap();
    used.set_modified(SystemTime::now() - Duration::from_secs(days * 86400))
        .unwrap();
}

/// In use by a process: a shared lock on its `last-used`, as
/// `cache::mark_used` holds it (flock locks are per open file, so this
/// test's lock is another process's for xtask).
fn hold(cache: &Path, key: &str) -> File {
    let f = File::open(cache.join("build").join(key).join("last-used")).unwrap();
    f.lock_shared().unwrap();
    f
}

fn list(cache: &Path) -> serde_json::Value {
    let o = xtask(cache, &["cache", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn entry<'a>(l: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    l["builds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["key"] == key)
        .unwrap_or_else(|| panic!("no build {key} in {l:#}"))
}

/// Five builds: two of 7.3 patched, one of 7.3 pristine, one of 6.12
/// pristine, and the oldest-but-one (`patched-8d`) in use.
fn fabricate(cache: &Path) {
    let t73 = pristine(cache, ID_73, "linux-source-7.3", 4);
    let t612 = pristine(cache, ID_612, "linux-source-6.12", 2);
    build(cache, "e612pristine10d00000", ID_612, &t612, false, 10);
    build(cache, "b73patched8d00000000", ID_73, &t73, true, 8);
    build(cache, "c73patched6d00000000", ID_73, &t73, true, 6);
    build(cache, "a73pristine4d0000000", ID_73, &t73, false, 4);
    build(cache, "d73patched1d00000000", ID_73, &t73, true, 1);
    // Kernel packages and ccache, counted in their areas.
    write(&cache.join("debian/pool/linux-source-7.3.deb"), MIB);
    write(&cache.join("ccache/0/00/x.o"), MIB / 2);
}

#[test]
fn cache_lists_every_build_with_its_own_disk_use_and_the_areas() {
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    fabricate(&cache);
    let _held = hold(&cache, "b73patched8d00000000");

    let o = xtask(&cache, &["cache"]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for key in [
        "e612pristine10d00000",
        "b73patched8d00000000",
        "c73patched6d00000000",
        "a73pristine4d0000000",
        "d73patched1d00000000",
    ] {
        assert!(text.contains(key), "{key} not listed:\n{text}");
    }
    for s in [
        "debian:7.3 7.3.4",
        "debian:6.12 6.12.117",
        "patch skip-holes.patch",
        "tinyconfig hmm.config",
        "in use",
        "linux-source-7.3",
        "sources",
        "builds",
        "ccache",
        "packages",
        "other",
        "total",
        "of 30.0 GiB",
    ] {
        assert!(text.contains(s), "{s:?} missing:\n{text}");
    }
    // Most recently used first.
    let pos = |k: &str| text.find(k).unwrap();
    assert!(pos("d73patched1d00000000") < pos("a73pristine4d0000000"));
    assert!(pos("a73pristine4d0000000") < pos("e612pristine10d00000"));

    let l = list(&cache);
    // A patched build costs its objects, its directories and the rewritten
    // file, not the tree it links: the 4 MiB file is the source's.
    let patched = entry(&l, "c73patched6d00000000")["bytes"].as_u64().unwrap();
    let pristine = entry(&l, "a73pristine4d0000000")["bytes"].as_u64().unwrap();
    assert!(
        patched > pristine && patched < pristine + (MIB as u64),
        "patched {patched}, pristine {pristine}"
    );
    let src73 = l["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "linux-source-7.3")
        .unwrap();
    assert!(src73["bytes"].as_u64().unwrap() >= 4 * MIB as u64);
    assert_eq!(src73["builds"].as_array().unwrap().len(), 4, "{src73:#}");
    assert_eq!(entry(&l, "b73patched8d00000000")["in_use"], true);
    assert_eq!(entry(&l, "c73patched6d00000000")["in_use"], false);
    // The areas add up to what du says of the whole cache.
    let du = Command::new("du")
        .args(["-s", "-B1"])
        .arg(&cache)
        .output()
        .unwrap();
    let du: u64 = String::from_utf8_lossy(&du.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let total = l["total"].as_u64().unwrap();
    // du also counts the cache directory itself.
    assert!(
        total <= du && du - total <= 64 << 10,
        "du {du}, total {total}"
    );
    let a = &l["areas"];
    assert!(a["packages"].as_u64().unwrap() >= MIB as u64, "{a}");
    assert!(a["ccache"].as_u64().unwrap() >= (MIB / 2) as u64, "{a}");
}

#[test]
fn prune_removes_least_recently_used_first_and_never_one_in_use() {
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    fabricate(&cache);
    let _held = hold(&cache, "b73patched8d00000000");
    let l = list(&cache);
    let size = |k: &str| entry(&l, k)["bytes"].as_u64().unwrap();
    let total = l["total"].as_u64().unwrap();
    let src612 = l["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "linux-source-6.12")
        .unwrap()["bytes"]
        .as_u64()
        .unwrap();
    // One byte less than the cache without the least recently used build
    // and the tree only it used: those go (10 days), the build in use (8
    // days) stays, the next (6 days) goes, and the cache is under the limit.
    let max = total - size("e612pristine10d00000") - src612 - 1;
    let max_arg = max.to_string();

    let o = xtask(
        &cache,
        &["cache", "prune", "--max-size", &max_arg, "--dry-run"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("would remove build e612pristine10d00000")
            && err.contains("would remove build c73patched6d00000000"),
        "{}",
        explain(&o)
    );
    assert!(cache
        .join("build/e612pristine10d00000/stamp.json")
        .is_file());
    assert_eq!(list(&cache)["builds"].as_array().unwrap().len(), 5);

    let o = xtask(&cache, &["cache", "prune", "--max-size", &max_arg]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let removed: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("cache: removed build "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        removed,
        ["e612pristine10d00000", "c73patched6d00000000"],
        "{}",
        explain(&o)
    );
    assert!(
        err.contains("cache: removed source tree") && err.contains("linux-source-6.12"),
        "{}",
        explain(&o)
    );
    // 6.12's tree went with its last build; 7.3's is still used.
    assert!(!src_dir(&cache, ID_612).exists(), "{}", explain(&o));
    assert!(src_dir(&cache, ID_73)
        .join("linux-source-7.3/Makefile")
        .is_file());
    assert!(!src_dir(&cache, ID_612).join("obj").exists());
    assert!(!cache.join("build/c73patched6d00000000").exists());
    for kept in [
        "b73patched8d00000000",
        "a73pristine4d0000000",
        "d73patched1d00000000",
    ] {
        assert!(
            cache.join("build").join(kept).join("stamp.json").is_file(),
            "{kept} removed:\n{}",
            explain(&o)
        );
    }
    let l = list(&cache);
    assert!(l["total"].as_u64().unwrap() <= max, "{l:#}");
    assert!(cache
        .join("build/b73patched8d00000000/src/obj/b73patched8d00000000/arch/x86/boot/bzImage")
        .is_file());

    // Nothing is small enough: everything but the builds in use goes (one
    // used by a run, one being built: its build lock is held), and 7.3's
    // tree stays because they use it.
    let building = File::create(cache.join("build/d73patched1d00000000.lock")).unwrap();
    building.lock().unwrap();
    let o = xtask(&cache, &["cache", "prune", "--max-size", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("still over"),
        "{}",
        explain(&o)
    );
    let l = list(&cache);
    let keys: Vec<&str> = l["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["b73patched8d00000000", "d73patched1d00000000"],
        "{l:#}"
    );
    assert_eq!(entry(&l, "d73patched1d00000000")["in_use"], true);
    assert!(src_dir(&cache, ID_73).join("linux-source-7.3").is_dir());
}

#[test]
fn prune_by_age_and_remove_by_key() {
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    fabricate(&cache);
    let held = hold(&cache, "b73patched8d00000000");
    let o = xtask(&cache, &["cache", "prune", "--older-than", "5"]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert!(!cache.join("build/e612pristine10d00000").exists());
    assert!(!cache.join("build/c73patched6d00000000").exists());
    assert!(cache.join("build/b73patched8d00000000").exists());
    assert!(cache.join("build/a73pristine4d0000000").exists());

    // In use: refused, kept.
    let o = xtask(&cache, &["cache", "remove", "b73patched8d"]);
    assert_ne!(o.status.code(), Some(0), "{}", explain(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("in use"));
    assert!(cache
        .join("build/b73patched8d00000000/stamp.json")
        .is_file());
    drop(held);
    let o = xtask(&cache, &["cache", "remove", "b73patched8d"]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert!(!cache.join("build/b73patched8d00000000").exists());
    // A pristine build's objects live beside the tree: they go too.
    let o = xtask(&cache, &["cache", "remove", "a73pristine4d0000000"]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
    assert!(!src_dir(&cache, ID_73)
        .join("obj/a73pristine4d0000000")
        .exists());
    assert!(src_dir(&cache, ID_73).join("linux-source-7.3").is_dir());

    let o = xtask(&cache, &["cache", "remove", "nosuchkey"]);
    assert_eq!(o.status.code(), Some(2), "{}", explain(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no build nosuchkey"));
}

#[test]
fn a_size_that_is_not_one_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    fs::create_dir_all(&cache).unwrap();
    let o = xtask(&cache, &["cache", "prune", "--max-size", "30X"]);
    assert_eq!(o.status.code(), Some(2), "{}", explain(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--max-size 30X") && err.contains("is not a size"),
        "{err}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("cache")
        .env("HMMLAB_CACHE", &cache)
        .env("HMMLAB_CACHE_MAX", "lots")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", explain(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("HMMLAB_CACHE_MAX=lots"));
    // An empty cache lists as empty.
    let o = xtask(&cache, &["cache"]);
    assert_eq!(o.status.code(), Some(0), "{}", explain(&o));
}
