//! The kernel that boots is the kernel that was built.
//!
//! ccache hashes a compile's source and the headers the compiler names, not
//! what an assembler `.incbin` pulls in; the bzImage's `piggy.S` includes the
//! compressed kernel that way, so a build whose compressed kernel had the
//! size of an earlier one used to get the earlier `piggy.o`, and booted the
//! earlier kernel. These tests show the hazard with the real ccache, that
//! hmmlab's compiler wrapper never lets it happen, and that a series of
//! patched builds in one cache each boots its own kernel, checked before
//! the boot (payload and banner) and after it (the guest's /proc/version).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use hmmlab_harness::identity;

const WRAPPER: &str = include_str!("../src/kernel/hmmlab-cc.sh");

/// Compile `src` (in `dir`) to `out.o` the way kbuild does, with ccache
/// set up as hmmlab sets it up for kernel builds; `cc` is the wrapper
/// (`Some`) or plain `ccache gcc` (`None`).
fn compile(dir: &Path, src: &str, wrapper: Option<&Path>) -> Vec<u8> {
    let mut argv: Vec<String> = match wrapper {
        Some(w) => vec![w.display().to_string()],
        None => vec!["ccache".into(), "gcc".into()],
    };
    argv.extend(
        ["-Wp,-MMD,.out.o.d", "-O2", "-c", "-o", "out.o", src]
            .iter()
            .map(|s| s.to_string()),
    );
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .env("CCACHE_DIR", dir.join("ccache"))
        .env("CCACHE_BASEDIR", dir)
        .env("CCACHE_NOHASHDIR", "1")
        .env("CCACHE_DEPEND", "1")
        .env("CCACHE_INODECACHE", "1")
        .env("CCACHE_NOCOMPRESS", "1")
        .env("HMMLAB_REAL_CC", "gcc")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {argv:?}: {e}; `cargo xtask test` installs ccache and gcc, \
                 which this test needs"
            )
        });
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join("out.o")).unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Compile a source that `.incbin`s `payload.bin` twice, with two payloads
/// of the same size: does the second object carry the second payload?
fn second_object_is_fresh(src_name: &str, src: &str, wrapper: Option<&Path>) -> bool {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(src_name), src).unwrap();
    let a = [b'A'; 4096];
    let b = [b'B'; 4096];
    std::fs::write(d.path().join("payload.bin"), a).unwrap();
    let first = compile(d.path(), src_name, wrapper);
    assert!(
        contains(&first, &a[..64]),
        "the first object lacks payload A"
    );
    std::fs::write(d.path().join("payload.bin"), b).unwrap();
    let second = compile(d.path(), src_name, wrapper);
    contains(&second, &b[..64])
}

const PIGGY_S: &str = "\
# piggy.S as arch/x86/boot/compressed/mkpiggy writes it: sizes, then .incbin
.section \".rodata..compressed\",\"a\",@progbits
.globl z_input_len
z_input_len = 4096
.globl input_data
input_data:
.incbin \"payload.bin\"
";

const CONFIGS_C: &str = "\
/* kernel/configs.c's way: .incbin inside asm() */
asm(\".section .rodata, \\\"a\\\"\\n.globl data\\ndata:\\n.incbin \\\"payload.bin\\\"\\n\");
";

#[test]
fn ccache_never_serves_an_object_that_incbins_a_file() {
    let d = tempfile::tempdir().unwrap();
    let wrapper = d.path().join("hmmlab-cc");
    std::fs::write(&wrapper, WRAPPER).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    // The hazard is real with this machine's ccache in hmmlab's settings:
    // plain ccache returns the first object for the second payload.
    assert!(
        !second_object_is_fresh("piggy.S", PIGGY_S, None),
        "plain ccache served a fresh piggy.o: this ccache no longer has the hazard \
         the wrapper works around (see xtask/src/kernel/cc.rs)"
    );
    assert!(
        !second_object_is_fresh("configs.c", CONFIGS_C, None),
        "plain ccache served a fresh configs.o"
    );
    // Through the wrapper, both always compile.
    assert!(
        second_object_is_fresh("piggy.S", PIGGY_S, Some(&wrapper)),
        "the wrapper let ccache serve a stale piggy.o"
    );
    assert!(
        second_object_is_fresh("configs.c", CONFIGS_C, Some(&wrapper)),
        "the wrapper let ccache serve a stale configs.o"
    );
}

fn path(v: &serde_json::Value) -> PathBuf {
    PathBuf::from(v.as_str().unwrap())
}

/// The bzImage check refuses an image whose compressed kernel is not the
/// build's own, even by one byte.
#[test]
fn a_bzimage_that_does_not_carry_its_vmlinux_is_refused() {
    let k = kernel_json(&[]);
    let (obj, bz, release) = (
        path(&k["obj_dir"]),
        path(&k["bzimage"]),
        k["release"].as_str().unwrap().to_string(),
    );
    let ok = identity::check_image(&obj, &bz, &release).unwrap();
    assert_eq!(ok.banner, k["banner"].as_str().unwrap());
    assert!(ok.banner.starts_with(&format!("Linux version {release} (")));

    let mut img = std::fs::read(&bz).unwrap();
    let start = {
        let payload = identity::bzimage_payload(&img).unwrap();
        payload.as_ptr() as usize - img.as_ptr() as usize
    };
    img[start + 1000] ^= 0x01;
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bzImage");
    std::fs::write(&bad, &img).unwrap();
    let e = format!(
        "{:#}",
        identity::check_image(&obj, &bad, &release).unwrap_err()
    );
    assert!(
        e.contains("is not this build's") && e.contains("piggy.o) is stale"),
        "{e}"
    );
}

/// A one-line patch to mm/migrate_device.c that adds a string of fixed
/// length: every build's vmlinux has the same size and differs in a few
/// bytes (the string, the build time), so their compressed kernels often
/// have the same size too, which is when a stale piggy.o used to be served.
fn write_patch(tree: &Path, dir: &Path, tag: &str) -> (PathBuf, String) {
    let file = "mm/migrate_device.c";
    let orig = std::fs::read_to_string(tree.join(file)).unwrap();
    let mut lines: Vec<&str> = orig.lines().collect();
    let last_include = lines
        .iter()
        .rposition(|l| l.starts_with("#include"))
        .expect("an #include line");
    let added = format!("static const char hmmlab_build_tag[] __used = \"{tag}\";");
    lines.insert(last_include + 1, &added);
    let new = lines.join("\n") + "\n";
    let (a, b) = (dir.join("a.c"), dir.join("b.c"));
    std::fs::write(&a, &orig).unwrap();
    std::fs::write(&b, &new).unwrap();
    let out = Command::new("diff")
        .args([
            "-u",
            "--label",
            &format!("a/{file}"),
            "--label",
            &format!("b/{file}"),
        ])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "diff found no change");
    let p = dir.join(format!("{tag}.patch"));
    std::fs::write(&p, &out.stdout).unwrap();
    (p, identity::sha256_hex(new.as_bytes()))
}

/// Removes the cache entries of the builds this test made (key directory,
/// objects, patched tree) when the test ends, passed or not: every run of
/// the series builds anew, and must not fill the disk.
#[derive(Default)]
struct Builds(Vec<serde_json::Value>);

impl Drop for Builds {
    fn drop(&mut self) {
        for k in &self.0 {
            let log = path(&k["build_log"]);
            let build_dir = log.parent().unwrap();
            for d in [path(&k["obj_dir"]), build_dir.to_path_buf()] {
                let _ = std::fs::remove_dir_all(&d);
            }
            let _ = std::fs::remove_file(build_dir.with_extension("lock"));
        }
    }
}

const SERIES: usize = 4;

/// A series of patched builds of one file in one cache, as bisect,
/// `--patch` users and the regression tests make: each must boot its own
/// kernel. Every build is fresh (the patches carry this run's nonce), so the
/// series exercises ccache every time it runs.
#[test]
fn a_series_of_patched_builds_each_boots_its_own_kernel() {
    let tree = path(&kernel_json(&[])["tree"]);
    let dir = tempfile::tempdir().unwrap();
    let nonce = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            & 0xffffff
    );
    let mut made = Builds::default();
    let mut banners = BTreeSet::new();
    for i in 0..SERIES {
        let (patch, sha) = write_patch(&tree, dir.path(), &format!("series-{nonce}-{i}"));
        let p = patch.to_string_lossy().to_string();
        let run = xtask(&[
            "run-scenarios",
            "--patch",
            &p,
            "-s",
            "empty-one-page",
            "--thp",
            "madvise",
        ]);
        assert_eq!(run.code, 0, "build {i}\n{}", run.explain());
        let j = run.json();
        let k = j["kernel"].clone();
        made.0.push(k.clone());
        assert_eq!(k["cached"], false, "build {i} must be a fresh build");
        // A patch of one C file: relinked from the unpatched build, whose
        // objects are the patched build's own copy.
        assert!(k["relinked_from"].is_string(), "build {i}: {k}");
        let banner = k["banner"].as_str().unwrap().to_string();
        assert!(banner.starts_with("Linux version "), "{banner}");
        assert_eq!(
            j["booted_kernel"].as_str(),
            Some(banner.as_str()),
            "build {i}: the guest's /proc/version"
        );
        assert!(banners.insert(banner.clone()), "build {i} repeats a banner");
        assert_eq!(
            k["patched_files"],
            serde_json::json!([{ "path": "mm/migrate_device.c", "sha256": sha }]),
            "build {i}"
        );
        // piggy.o went through the wrapper, and the wrapper compiled it.
        let obj = path(&k["obj_dir"]);
        let cmd = std::fs::read_to_string(obj.join("arch/x86/boot/compressed/.piggy.o.cmd"))
            .unwrap_or_default();
        assert!(
            cmd.contains("hmmlab-cc"),
            "piggy.o was not built through the wrapper: {cmd}"
        );
        assert!(no_qemu_left(&run));
    }
    let builds = &made.0;

    // No build's bzImage passes as another's, and how often the series met
    // the case that used to go wrong: two compressed kernels of one size.
    let mut same_size = 0;
    for (i, a) in builds.iter().enumerate() {
        for (j, b) in builds.iter().enumerate() {
            if i == j {
                continue;
            }
            let release = a["release"].as_str().unwrap();
            let err = identity::check_image(&path(&a["obj_dir"]), &path(&b["bzimage"]), release);
            assert!(err.is_err(), "build {j}'s bzImage passed as build {i}'s");
            let len = |k: &serde_json::Value| {
                let img = std::fs::read(path(&k["bzimage"])).unwrap();
                identity::bzimage_payload(&img).unwrap().len()
            };
            if i < j && len(a) == len(b) {
                same_size += 1;
            }
        }
    }
    eprintln!(
        "{SERIES} patched builds, each booted its own kernel; pairs with compressed kernels \
         of the same size: {same_size}"
    );

    // A cached build whose bzImage was swapped for another's is refused
    // before anything boots, naming the build.
    let (last, prev) = (&builds[SERIES - 1], &builds[SERIES - 2]);
    std::fs::copy(path(&prev["bzimage"]), path(&last["bzimage"])).unwrap();
    let patch = dir
        .path()
        .join(format!("series-{nonce}-{}.patch", SERIES - 1));
    let run = xtask(&[
        "run-scenarios",
        "--patch",
        &patch.to_string_lossy(),
        "-s",
        "empty-one-page",
    ]);
    assert_eq!(run.code, 3, "an infrastructure error\n{}", run.explain());
    let key = last["key"].as_str().unwrap();
    assert!(
        run.stderr
            .contains("the bzImage is not the kernel that was built")
            && run.stderr.contains(key),
        "{}",
        run.explain()
    );
    assert!(run.run_dir.is_none(), "nothing may run: {:?}", run.run_dir);
    assert!(no_qemu_left(&run));
}
