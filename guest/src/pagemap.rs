//! /proc/self/pagemap (Documentation/admin-guide/mm/pagemap.rst): one
//! 64-bit entry per virtual page, read for `check-write-protected`.

use std::os::unix::fs::FileExt;

use crate::mapping::PAGE_SIZE;

/// PM_UFFD_WP (fs/proc/task_mmu.c): the pte, or the swap-type entry
/// (migration, device-private), has the userfaultfd write-protect bit.
pub const PM_UFFD_WP: u64 = 1 << 57;

/// The pagemap entries of `pages` pages from `addr`.
pub fn read(addr: u64, pages: u64) -> Result<Vec<u64>, String> {
    let f = std::fs::File::open("/proc/self/pagemap")
        .map_err(|e| format!("opening /proc/self/pagemap: {e}"))?;
    let mut bytes = vec![0u8; pages as usize * 8];
    f.read_exact_at(&mut bytes, addr / PAGE_SIZE * 8)
        .map_err(|e| format!("reading /proc/self/pagemap at {addr:#x}: {e}"))?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect())
}

/// Every entry has PM_UFFD_WP; the error names the first page without it
/// (mapping-relative, the range starting at `first`) and counts them.
pub fn all_write_protected(first: u64, entries: &[u64]) -> Result<(), String> {
    let without: Vec<u64> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| *e & PM_UFFD_WP == 0)
        .map(|(i, _)| first + i as u64)
        .collect();
    match without.first() {
        None => Ok(()),
        Some(p) => Err(format!(
            "page {p} is not write-protected (no PM_UFFD_WP in /proc/self/pagemap: {:#018x}); \
             {} of {} pages lost the bit",
            entries[(p - first) as usize],
            without.len(),
            entries.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_without_the_bit_is_named() {
        assert!(all_write_protected(4, &[PM_UFFD_WP | 1, PM_UFFD_WP]).is_ok());
        let e = all_write_protected(4, &[PM_UFFD_WP, 1 << 63, PM_UFFD_WP, 0]).unwrap_err();
        assert!(e.starts_with("page 5 is not write-protected"), "{e}");
        assert!(e.contains("2 of 4 pages"), "{e}");
    }

    /// On the machine the tests run on: a written anonymous page is
    /// present (bit 63) and not write-protected until userfaultfd says so,
    /// where userfaultfd is allowed to this process.
    #[test]
    fn pagemap_reads_this_process() {
        let mut page = vec![0u8; 2 * PAGE_SIZE as usize];
        page[0] = 1;
        page[PAGE_SIZE as usize] = 1;
        let addr = page.as_ptr() as u64;
        let e = read(addr, 1).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0] & PM_UFFD_WP, 0);
        assert!(all_write_protected(0, &e).is_err());
    }
}
