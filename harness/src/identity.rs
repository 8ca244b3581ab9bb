//! The kernel that boots is the kernel that was built (used by xtask's
//! kernel stage before a boot and by its run after one).
//!
//! Before a boot: the bzImage's compressed payload (found through its setup
//! header) is byte for byte the build's own `vmlinux.bin.<comp>`, and
//! decompressed it carries the `linux_banner` of the build's `vmlinux`. The
//! banner holds the release, the build number and the build's timestamp, so
//! it differs between any two builds. After a boot: the guest's
//! `/proc/version` (and the console's `Linux version` line, when the log
//! level shows it) is that banner (`booted`). A mismatch is an
//! infrastructure error naming the build, never a test result.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What the pre-boot check established.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageCheck {
    /// The `linux_banner` of the build's vmlinux, without its newline.
    pub banner: String,
    /// `xz`, `gzip`, …: the payload's compression.
    pub compression: String,
    /// SHA-256 of the bzImage that was checked.
    pub bzimage_sha256: String,
}

/// The first `Linux version <release> (…` string in `bytes`, up to its
/// newline. (A vmlinux holds two: init/version.c's weak placeholder and
/// the real one; `vmlinux_banner` finds the real one by its symbol.)
pub fn banner_in(bytes: &[u8], release: &str) -> Option<String> {
    let needle = format!("Linux version {release} (");
    let at = find(bytes, needle.as_bytes())?;
    banner_at(bytes, at)
}

fn banner_at(bytes: &[u8], at: usize) -> Option<String> {
    let rest = bytes.get(at..)?;
    let end = rest.iter().position(|&b| b == b'\n' || b == 0)?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

/// The string at the `linux_banner` symbol of a vmlinux (ELF64,
/// little-endian), without its newline.
pub fn vmlinux_banner(elf: &[u8]) -> Result<String> {
    let at = elf_symbol_offset(elf, "linux_banner")?;
    let b = banner_at(elf, at).context("linux_banner is not a string")?;
    if !b.starts_with("Linux version ") {
        bail!("linux_banner does not start with `Linux version `: `{b}`");
    }
    Ok(b)
}

/// File offset of the data of the defined symbol `name` (a global one if
/// there are several) in an ELF64 little-endian file.
fn elf_symbol_offset(elf: &[u8], name: &str) -> Result<usize> {
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        bail!("not a 64-bit little-endian ELF file");
    }
    let short = || anyhow!("truncated ELF file");
    let shoff = u64_at(0x28).ok_or_else(short)? as usize;
    let shentsize = u16_at(0x3a).ok_or_else(short)?;
    let shnum = u16_at(0x3c).ok_or_else(short)?;
    let section = |i: usize| -> Option<(usize, u64, usize, usize, usize)> {
        let h = shoff + i * shentsize;
        // (type, addr, offset, size, link)
        Some((
            u32_at(h + 4)?,
            u64_at(h + 16)?,
            u64_at(h + 24)? as usize,
            u64_at(h + 32)? as usize,
            u32_at(h + 40)?,
        ))
    };
    const SHT_SYMTAB: usize = 2;
    let (_, _, symoff, symsize, link) = (0..shnum)
        .filter_map(section)
        .find(|s| s.0 == SHT_SYMTAB)
        .context("the ELF file has no symbol table")?;
    let (_, _, stroff, strsize, _) = section(link).ok_or_else(short)?;
    let strtab = elf.get(stroff..stroff + strsize).ok_or_else(short)?;
    let mut found: Option<(bool, usize, u64)> = None;
    for e in (symoff..symoff + symsize).step_by(24) {
        let (Some(n), Some(shndx), Some(value)) = (u32_at(e), u16_at(e + 6), u64_at(e + 8)) else {
            break;
        };
        let sym = strtab.get(n..).and_then(|t| t.split(|&b| b == 0).next());
        if sym != Some(name.as_bytes()) || shndx == 0 || shndx >= 0xff00 {
            continue;
        }
        let global = elf[e + 4] >> 4 == 1;
        if found.is_none_or(|f| !f.0 && global) {
            found = Some((global, shndx, value));
        }
    }
    let (_, shndx, value) = found.with_context(|| format!("no symbol `{name}`"))?;
    let (_, addr, off, size, _) = section(shndx).ok_or_else(short)?;
    let delta = value
        .checked_sub(addr)
        .filter(|d| (*d as usize) < size)
        .with_context(|| format!("`{name}` lies outside its section"))?;
    Ok(off + delta as usize)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The compressed kernel inside an x86 bzImage: the boot protocol (2.08+)
/// gives `payload_offset` and `payload_length` in the setup header, the
/// offset counted from the protected-mode code after the setup sectors.
pub fn bzimage_payload(img: &[u8]) -> Result<&[u8]> {
    let u32_at = |o: usize| -> Option<u32> {
        img.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if img.get(0x202..0x206) != Some(b"HdrS") {
        bail!("not a bzImage (no HdrS setup header at 0x202)");
    }
    let version = img
        .get(0x206..0x208)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .unwrap_or(0);
    if version < 0x208 {
        bail!("boot protocol {version:#x} has no payload fields (needs 2.08 or later)");
    }
    let setup_sects = match img[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let (Some(off), Some(len)) = (u32_at(0x248), u32_at(0x24c)) else {
        bail!("bzImage too short for its setup header");
    };
    let start = (setup_sects + 1) * 512 + off as usize;
    img.get(start..start + len as usize).ok_or_else(|| {
        anyhow!(
            "payload {start:#x}+{len:#x} lies outside the {}-byte bzImage",
            img.len()
        )
    })
}

/// Compression of a kernel payload by its magic bytes: (name, file suffix
/// kbuild gives `vmlinux.bin.<suffix>`, decompress command).
fn compression(payload: &[u8]) -> Option<(&'static str, &'static str, &'static [&'static str])> {
    const TABLE: &[(&[u8], &str, &str, &[&str])] = &[
        (
            b"\xfd7zXZ\x00",
            "xz",
            "xz",
            &["xz", "-dc", "--single-stream"],
        ),
        (b"\x1f\x8b", "gzip", "gz", &["gzip", "-dc"]),
        (b"\x28\xb5\x2f\xfd", "zstd", "zst", &["zstd", "-dc"]),
        (b"BZh", "bzip2", "bz2", &["bzip2", "-dc"]),
        (b"\x02\x21\x4c\x18", "lz4", "lz4", &["lz4", "-dc"]),
        (b"\x89LZO", "lzo", "lzo", &["lzop", "-dc"]),
        (
            b"\x5d\x00\x00",
            "lzma",
            "lzma",
            &["xz", "--format=lzma", "-dc", "--single-stream"],
        ),
    ];
    TABLE
        .iter()
        .find(|(magic, ..)| payload.starts_with(magic))
        .map(|(_, name, suffix, cmd)| (*name, *suffix, *cmd))
}

/// Run `argv` with `input` on stdin; its stdout. The kernel's compressed
/// files end with 4 bytes of size after the stream, which some tools call
/// trailing garbage: only an empty output counts as a failure.
fn decompress(argv: &[&str], input: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "running `{}` to check the kernel payload (install the package that has it)",
                argv.join(" ")
            )
        })?;
    let mut stdin = child.stdin.take().context("decompressor stdin")?;
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The tool may stop reading at the end of its stream.
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output()?;
    let _ = writer.join();
    if out.stdout.is_empty() {
        bail!(
            "`{}` gave nothing: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// Check that `bzimage` carries the kernel of the build in `obj` (release
/// `release`). The error names what differs; the caller names the build.
pub fn check_image(obj: &Path, bzimage: &Path, release: &str) -> Result<ImageCheck> {
    let vmlinux_path = obj.join("vmlinux");
    let vmlinux =
        fs::read(&vmlinux_path).with_context(|| format!("reading {}", vmlinux_path.display()))?;
    let banner = vmlinux_banner(&vmlinux)
        .with_context(|| format!("reading linux_banner from {}", vmlinux_path.display()))?;
    if !banner.starts_with(&format!("Linux version {release} (")) {
        bail!(
            "{}: the banner `{banner}` is not of release {release}",
            vmlinux_path.display()
        );
    }
    drop(vmlinux);
    let img = fs::read(bzimage).with_context(|| format!("reading {}", bzimage.display()))?;
    let payload =
        bzimage_payload(&img).with_context(|| format!("reading {}", bzimage.display()))?;
    let (name, suffix, argv) = compression(payload).ok_or_else(|| {
        anyhow!(
            "{}: unknown compression of the payload (first bytes {:02x?})",
            bzimage.display(),
            &payload[..payload.len().min(6)]
        )
    })?;
    let own = obj.join(format!("arch/x86/boot/compressed/vmlinux.bin.{suffix}"));
    let own_bytes = fs::read(&own).with_context(|| format!("reading {}", own.display()))?;
    if own_bytes != payload {
        bail!(
            "the bzImage's compressed kernel ({} bytes, sha256 {}) is not this build's {} ({} bytes, sha256 {}): \
             an object that includes it (arch/x86/boot/compressed/piggy.o) is stale",
            payload.len(),
            sha256_hex(payload),
            own.display(),
            own_bytes.len(),
            sha256_hex(&own_bytes)
        );
    }
    let kernel = decompress(argv, payload)?;
    if find(&kernel, format!("{banner}\n").as_bytes()).is_none() {
        let found = banner_in(&kernel, release)
            .or_else(|| banner_in(&kernel, ""))
            .unwrap_or_else(|| "no Linux version banner".into());
        bail!(
            "the bzImage's kernel is not this build's vmlinux: it says `{found}`, the vmlinux `{banner}`"
        );
    }
    Ok(ImageCheck {
        banner,
        compression: name.to_string(),
        bzimage_sha256: sha256_hex(&img),
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// After a boot: did the guest run the kernel whose banner is `banner`?
/// `proc_version` is what the guest read from /proc/version (None when it
/// never said hello); the console's `Linux version` line is compared when
/// the log level let it through. Err: what booted instead.
pub fn booted(banner: &str, proc_version: Option<&str>, console: &str) -> Result<(), String> {
    if let Some(line) = console
        .lines()
        .filter_map(|l| l.find("Linux version ").map(|at| &l[at..]))
        .next()
    {
        if line.trim_end() != banner {
            return Err(format!(
                "the console says `{}`, the build's vmlinux `{banner}`",
                line.trim_end()
            ));
        }
    }
    match proc_version {
        Some(v) if v.trim_end() != banner => Err(format!(
            "the guest's /proc/version says `{}`, the build's vmlinux `{banner}`",
            v.trim_end()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BANNER: &str = "Linux version 7.3.4 (root@host) (gcc (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Thu Dec  3 10:40:01 UTC 2026";

    #[test]
    fn banner_is_found_up_to_its_newline() {
        let mut bytes = b"\x00\x01%s version %s (\x00".to_vec();
        bytes.extend_from_slice(BANNER.as_bytes());
        bytes.extend_from_slice(b"\n\x00more");
        assert_eq!(banner_in(&bytes, "7.3.4").as_deref(), Some(BANNER));
        assert_eq!(banner_in(&bytes, "7.3.5"), None);
        assert_eq!(find(b"aab", b"ab"), Some(1));
        assert_eq!(find(b"ab", b"abc"), None);
    }

    #[test]
    fn the_banner_is_read_at_its_symbol_not_at_the_first_match() {
        // Like a vmlinux: a placeholder banner first, the real one at the
        // `linux_banner` symbol. Compiled by the real gcc.
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("v.c"),
            "const char placeholder[] = \"Linux version 7.3.4 (x) # SMP \\n\";\n\
             const char linux_banner[] = \"Linux version 7.3.4 (x) #7 SMP Thu Dec 3\\n\";\n",
        )
        .unwrap();
        let st = std::process::Command::new("gcc")
            .args(["-c", "-o", "v.o", "v.c"])
            .current_dir(d.path())
            .status()
            .expect("gcc");
        assert!(st.success());
        let elf = std::fs::read(d.path().join("v.o")).unwrap();
        assert_eq!(
            banner_in(&elf, "7.3.4").as_deref(),
            Some("Linux version 7.3.4 (x) # SMP ")
        );
        assert_eq!(
            vmlinux_banner(&elf).unwrap(),
            "Linux version 7.3.4 (x) #7 SMP Thu Dec 3"
        );
        assert!(vmlinux_banner(b"\x7fELF\x01\x01").is_err());
    }

    #[test]
    fn payload_comes_from_the_setup_header() {
        let mut img = vec![0u8; 5 * 512 + 64];
        img[0x1f1] = 4;
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        img[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        img[0x24c..0x250].copy_from_slice(&8u32.to_le_bytes());
        img[5 * 512 + 16..5 * 512 + 24].copy_from_slice(b"PAYLOAD!");
        assert_eq!(bzimage_payload(&img).unwrap(), b"PAYLOAD!");
        img[0x24c..0x250].copy_from_slice(&100u32.to_le_bytes());
        assert!(bzimage_payload(&img).is_err());
        img[0x202] = b'X';
        assert!(bzimage_payload(&img).is_err());
    }

    #[test]
    fn a_booted_kernel_must_say_the_builds_banner() {
        let console = format!("[    0.000000] {BANNER}\n[    0.000000] Command line: x\n");
        assert_eq!(
            booted(BANNER, Some(&format!("{BANNER}\n")), &console),
            Ok(())
        );
        // loglevel=5 hides the banner on the console: /proc/version decides.
        assert_eq!(booted(BANNER, Some(BANNER), "[    0.1] other\n"), Ok(()));
        let other = BANNER.replace("10:40:01", "10:38:12");
        let e = booted(BANNER, Some(&other), "").unwrap_err();
        assert!(
            e.contains("/proc/version says") && e.contains("10:38:12"),
            "{e}"
        );
        let e = booted(BANNER, Some(BANNER), &format!("[ 0.0] {other}\n")).unwrap_err();
        assert!(e.contains("console says"), "{e}");
    }
}
