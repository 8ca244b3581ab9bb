//! The guest stage: build `hmmlab-guest` as a static x86_64 binary whose
//! ioctl ABI is checked at build time against the kernel tree's
//! `lib/test_hmm_uapi.h` (guest/build.rs).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::shell::Cmd;

pub const TARGET: &str = "x86_64-unknown-linux-gnu";

pub fn build(uapi_header: &Path) -> Result<PathBuf> {
    let repo = crate::paths::repo_root();
    // One target directory per header: builds for different kernels (matrix
    // cells running at once) never overwrite each other's binary.
    let header =
        std::fs::read(uapi_header).with_context(|| format!("reading {}", uapi_header.display()))?;
    let target_dir = repo
        .join("target/guest")
        .join(crate::kernel::key::short_hash(&header));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let log = target_dir.join("build.log");
    std::fs::create_dir_all(&target_dir)?;
    std::fs::write(&log, b"")?;
    Cmd::new(&[
        cargo.as_str(),
        "build",
        "--release",
        "--quiet",
        "--package",
        "hmmlab-guest",
        "--target",
        TARGET,
        "--target-dir",
        &target_dir.to_string_lossy(),
    ])
    .dir(&repo)
    .env("RUSTFLAGS", "-C target-feature=+crt-static")
    .env("HMMLAB_UAPI_HEADER", &uapi_header.to_string_lossy())
    .run_logged(&log, "cargo build hmmlab-guest", |_| None)
    .context("building the guest driver")?;
    let bin = target_dir.join(TARGET).join("release/hmmlab-guest");
    let bytes = std::fs::read(&bin).with_context(|| format!("reading {}", bin.display()))?;
    if let Some(interp) = elf_interpreter(&bytes)? {
        bail!(
            "{} is dynamically linked (interpreter {interp}); it must be static to run as /init",
            bin.display()
        );
    }
    Ok(bin)
}

/// The PT_INTERP of a 64-bit little-endian ELF, if any: a static binary has none.
pub fn elf_interpreter(b: &[u8]) -> Result<Option<String>> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        bail!("not a 64-bit little-endian ELF file");
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if ph + 56 > b.len() {
            bail!("truncated ELF program header table");
        }
        let p_type = u32::from_le_bytes(b[ph..ph + 4].try_into().unwrap());
        if p_type == 3 {
            let (off, size) = (u64_at(ph + 8), u64_at(ph + 32));
            let s = b
                .get(off..off + size)
                .context("PT_INTERP outside the file")?;
            return Ok(Some(
                String::from_utf8_lossy(s)
                    .trim_end_matches('\0')
                    .to_string(),
            ));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_tools_are_dynamic() {
        // Any dynamically linked binary on the host has an interpreter.
        let ls = std::fs::read("/bin/ls").unwrap();
        assert!(elf_interpreter(&ls).unwrap().unwrap().contains("ld-linux"));
        assert!(
            elf_interpreter(b"not an elf at all, but long enough to have a header......").is_err()
        );
    }
}
