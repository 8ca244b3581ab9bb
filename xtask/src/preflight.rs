//! Checks before a long step that would otherwise fail late and obscurely.

use std::path::Path;

use anyhow::{bail, Result};

/// Free space a kernel build needs in the cache: an extracted tree (~1.5 GiB),
/// a patched copy of it, and objects.
const BUILD_NEEDS_GIB: f64 = 4.0;

/// Fail early, with what to do, when the cache's filesystem is too full to
/// build a kernel. `HMMLAB_MIN_FREE_GIB` overrides the threshold.
pub fn disk_space(cache: &Path) -> Result<()> {
    let need = std::env::var("HMMLAB_MIN_FREE_GIB")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(BUILD_NEEDS_GIB);
    std::fs::create_dir_all(cache)?;
    let free = free_gib(cache)?;
    if free < need {
        bail!(
            "only {free:.1} GiB free in {} (the kernel build cache); a kernel build needs about {need:.0} GiB. \
             Free some space (old builds are in {}/build), or point HMMLAB_CACHE at a larger filesystem",
            cache.display(),
            cache.display()
        );
    }
    Ok(())
}

fn free_gib(p: &Path) -> Result<f64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(st.f_bavail as f64 * st.f_frsize as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_free_space() {
        assert!(super::free_gib(std::path::Path::new("/")).unwrap() > 0.0);
    }
}
