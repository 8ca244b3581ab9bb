//! A swap device for kernels built with swap (the `swap` variant): a loop
//! device over a file on /tmp (tmpfs), set up by PID 1 before the first
//! scenario, so that `page-out` (MADV_PAGEOUT) swaps pages out and a read
//! fault brings them back through the swap cache. A loop device, not zram:
//! do_swap_page() frees the swap cache of a SWP_SYNCHRONOUS_IO device (zram)
//! at once (should_try_to_free_swap(), mm/memory.c), so a page read back
//! from zram is never a folio in the swap cache, which is what
//! __migrate_device_pages() has to deal with (`folio_free_swap()`).
//!
//! The file is written in full first: tmpfs then has every page it will
//! hold, so swapping changes no memory counter the leak checks watch.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;

use crate::mapping::PAGE_SIZE;
use crate::sysnames::{describe_errno, last_errno};

/// Where the kernel lists its active swap devices; absent without
/// CONFIG_SWAP.
pub const PROC_SWAPS: &str = "/proc/swaps";
const LOOP_CONTROL: &str = "/dev/loop-control";
const BACKING: &str = "/tmp/hmmlab-swap";
/// 4096 pages of swap (16 MiB): more than any scenario maps.
const SWAP_PAGES: u64 = 4096;
/// include/uapi/linux/loop.h
const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;

/// Whether this kernel has swap at all.
pub fn kernel_has_swap() -> bool {
    fs::metadata(PROC_SWAPS).is_ok()
}

/// How many swap devices are active (the lines of /proc/swaps after its
/// header); `None` without CONFIG_SWAP.
pub fn active_devices() -> Option<usize> {
    let text = fs::read_to_string(PROC_SWAPS).ok()?;
    Some(
        text.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count(),
    )
}

/// Whether `page-out` can swap here: a kernel without swap is fine (its
/// anonymous pages stay, as a scenario's `!CONFIG_SWAP` variant says), one
/// with swap but no active device is an error, not a failure.
pub fn ready() -> Result<(), String> {
    match active_devices() {
        Some(0) => Err(format!(
            "this kernel has swap but {PROC_SWAPS} lists no active device: the guest sets one up \
             on a loop device at boot (CONFIG_BLK_DEV_LOOP, images/configs/variants/swap.config); \
             its console says why it could not"
        )),
        _ => Ok(()),
    }
}

/// Set up the swap device, on a kernel with swap; `Ok(None)` on one
/// without (nothing to do), `Ok(Some(device))` once swapon(2) took it.
pub fn set_up() -> Result<Option<String>, String> {
    if !kernel_has_swap() {
        return Ok(None);
    }
    if active_devices().unwrap_or(0) > 0 {
        return Ok(Some("(already active)".into()));
    }
    let backing = write_backing_file()?;
    let device = attach_loop(&backing)?;
    let path = CString::new(device.clone()).map_err(|_| "NUL in a device path".to_string())?;
    // SAFETY: a NUL-terminated path that outlives the call.
    if unsafe { libc::swapon(path.as_ptr(), 0) } != 0 {
        return Err(format!(
            "swapon({device}): {}",
            describe_errno(last_errno())
        ));
    }
    Ok(Some(device))
}

/// The swap area: a header page (mkswap's format, include/linux/swap.h
/// `union swap_header`: version 1, the last page, no bad pages, and
/// "SWAPSPACE2" in the page's last 10 bytes), then zeros.
fn write_backing_file() -> Result<File, String> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(BACKING)
        .map_err(|e| format!("creating {BACKING}: {e}"))?;
    f.write_all(&swap_header(SWAP_PAGES))
        .map_err(|e| format!("writing {BACKING}: {e}"))?;
    let zeros = vec![0u8; PAGE_SIZE as usize];
    for _ in 1..SWAP_PAGES {
        f.write_all(&zeros)
            .map_err(|e| format!("writing {BACKING}: {e}"))?;
    }
    f.sync_all()
        .map_err(|e| format!("syncing {BACKING}: {e}"))?;
    Ok(f)
}

/// The first page of a swap area of `pages` pages.
fn swap_header(pages: u64) -> Vec<u8> {
    let page = PAGE_SIZE as usize;
    let mut header = vec![0u8; page];
    header[1024..1028].copy_from_slice(&1u32.to_ne_bytes());
    header[1028..1032].copy_from_slice(&((pages - 1) as u32).to_ne_bytes());
    header[page - 10..].copy_from_slice(b"SWAPSPACE2");
    header
}

/// A free loop device bound to `backing`, by its /dev path.
fn attach_loop(backing: &File) -> Result<String, String> {
    let control = File::open(LOOP_CONTROL).map_err(|e| {
        format!("opening {LOOP_CONTROL}: {e} (the kernel needs CONFIG_BLK_DEV_LOOP)")
    })?;
    // SAFETY: an ioctl without argument on a descriptor we own.
    let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
    if n < 0 {
        return Err(format!(
            "LOOP_CTL_GET_FREE: {}",
            describe_errno(last_errno())
        ));
    }
    let device = format!("/dev/loop{n}");
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&device)
        .map_err(|e| format!("opening {device}: {e}"))?;
    // SAFETY: LOOP_SET_FD takes a descriptor number as its argument; both
    // descriptors are ours and open.
    if unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_FD as _, backing.as_raw_fd()) } != 0 {
        return Err(format!(
            "LOOP_SET_FD {device} ← {BACKING}: {}",
            describe_errno(last_errno())
        ));
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_swap_header_is_mkswaps_version_1() {
        // union swap_header (include/linux/swap.h): char bootbits[1024],
        // then __u32 version, __u32 last_page, __u32 nr_badpages; the
        // magic in the page's last 10 bytes.
        let h = swap_header(4096);
        assert_eq!(h.len(), 4096);
        assert_eq!(u32::from_ne_bytes(h[1024..1028].try_into().unwrap()), 1);
        assert_eq!(u32::from_ne_bytes(h[1028..1032].try_into().unwrap()), 4095);
        assert_eq!(u32::from_ne_bytes(h[1032..1036].try_into().unwrap()), 0);
        assert_eq!(&h[4086..], b"SWAPSPACE2");
        assert!(h[..1024].iter().all(|&b| b == 0));
    }
}
