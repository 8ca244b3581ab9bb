//! The compiler the kernel build calls: ccache, except for the compiles
//! whose output depends on a file ccache does not hash.
//!
//! ccache keys a compile on its arguments, the source and the headers the
//! compiler reports; in depend mode (which hmmlab uses, for speed) it never
//! reads the preprocessed text. An assembler `.incbin "FILE"` pulls FILE's
//! bytes into the object without any of that seeing them:
//! `arch/x86/boot/compressed/piggy.S` includes the compressed kernel and
//! holds nothing but its sizes. When a new build's compressed kernel has the
//! size of one cached earlier, ccache returns the old `piggy.o`, and the
//! bzImage boots another build's kernel (seen in about 1 of 12 patched
//! builds). `usr/initramfs_data.S`, `arch/x86/realmode/rmpiggy.S` and
//! `certs/*.S` work the same way; C files reach `.incbin` through `asm()`
//! (`kernel/configs.c`, `kernel/kheaders.c`).
//!
//! So the wrapper sends every assembler source, and every C source that
//! mentions `incbin`, straight to the compiler. Assembler files are few and
//! quick to build (49 of the 1,133 compiles of hmmlab's 7.3 kernel);
//! the C check is one `grep` of the source. `hmmlab_harness::identity` then checks
//! every bzImage against the `vmlinux` it must carry, whatever the cause.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The wrapper, a POSIX shell script (`hmmlab-cc.sh`): it runs for each of
/// about 1,200 compiles, so it starts no process beyond one `grep` for a C
/// source. `$HMMLAB_REAL_CC` is the compiler (gcc).
pub const SCRIPT: &str = include_str!("hmmlab-cc.sh");

/// Write the wrapper into `<cache>/bin/` (again when its text changed) and
/// return its path.
pub fn install(cache: &Path) -> Result<PathBuf> {
    let dir = cache.join("bin");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("hmmlab-cc");
    if fs::read_to_string(&path).ok().as_deref() != Some(SCRIPT) {
        let tmp = dir.join(format!("hmmlab-cc.{}.tmp", std::process::id()));
        fs::write(&tmp, SCRIPT).with_context(|| format!("writing {}", tmp.display()))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
        fs::rename(&tmp, &path).with_context(|| format!("installing {}", path.display()))?;
    }
    Ok(path)
}
