//! /proc/self/pagemap (Documentation/admin-guide/mm/pagemap.rst): one
//! 64-bit entry per virtual page, read for `check-write-protected`; and
//! /proc/kpageflags, one 64-bit entry of flags per PFN, read through the
//! PFNs pagemap gives for `check-page-flags`.

use std::fs::File;
use std::os::unix::fs::FileExt;

use hmmlab_proto::scenario::PageFlag;

use crate::mapping::PAGE_SIZE;

/// PM_UFFD_WP (fs/proc/task_mmu.c): the pte, or the swap-type entry
/// (migration, device-private), has the userfaultfd write-protect bit.
pub const PM_UFFD_WP: u64 = 1 << 57;

/// PM_PRESENT: the page is present in system memory (a pte or a PMD maps
/// it).
pub const PM_PRESENT: u64 = 1 << 63;

/// PM_SWAP: a swap-type entry (swapped out, a migration entry, a
/// device-private or device-exclusive entry): no page of system memory.
pub const PM_SWAP: u64 = 1 << 62;

/// PM_PFRAME_MASK, bits 0-54: a present page's PFN, shown only to a reader
/// with CAP_SYS_ADMIN (0 to others).
pub const PM_PFRAME_MASK: u64 = (1 << 55) - 1;

/// KPF_NOPAGE (20): /proc/kpageflags' pseudo flag for a PFN without an
/// online page (fs/proc/page.c, stable_page_flags() of NULL). From 7.x on
/// kpage_read() writes 0 for such a PFN instead.
pub const KPF_NOPAGE: u64 = 1 << 20;

/// The pagemap entries of `pages` pages from `addr`.
pub fn read(addr: u64, pages: u64) -> Result<Vec<u64>, String> {
    let mut entries = vec![0u64; pages as usize];
    read_into(addr, &mut entries)?;
    Ok(entries)
}

/// The pagemap entries of `out.len()` pages from `addr`, into `out`: one
/// pread(2), nothing allocated.
pub fn read_into(addr: u64, out: &mut [u64]) -> Result<(), String> {
    let f =
        File::open("/proc/self/pagemap").map_err(|e| format!("opening /proc/self/pagemap: {e}"))?;
    // SAFETY: `out` is `out.len() * 8` bytes of writable memory, and any
    // bytes are a valid u64.
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), out.len() * 8) };
    f.read_exact_at(bytes, addr / PAGE_SIZE * 8)
        .map_err(|e| format!("reading /proc/self/pagemap at {addr:#x}: {e}"))?;
    // The kernel writes each entry as a u64 of this machine (put_user()).
    Ok(())
}

/// /proc/kpageflags, open for reading (root only: the file is mode 0400
/// and wants CAP_SYS_ADMIN).
pub struct KpageFlags(File);

impl KpageFlags {
    pub fn open() -> Result<KpageFlags, String> {
        File::open("/proc/kpageflags").map(KpageFlags).map_err(|e| {
            format!(
                "opening /proc/kpageflags: {e} (it needs CONFIG_PROC_PAGE_MONITOR and \
                 CAP_SYS_ADMIN)"
            )
        })
    }

    /// The flags of `pfn`; `None` past the last PFN the file covers.
    pub fn read(&self, pfn: u64) -> Result<Option<u64>, String> {
        let mut b = [0u8; 8];
        match self.0.read_at(&mut b, pfn * 8) {
            Ok(8) => Ok(Some(u64::from_ne_bytes(b))),
            Ok(0) => Ok(None),
            Ok(n) => Err(format!(
                "reading /proc/kpageflags at pfn {pfn:#x}: {n} of 8 bytes"
            )),
            Err(e) => Err(format!("reading /proc/kpageflags at pfn {pfn:#x}: {e}")),
        }
    }
}

/// Why check-page-flags did not pass.
#[derive(Debug, PartialEq, Eq)]
pub enum FlagsProblem {
    /// A /proc file could not be read: the step cannot be carried out.
    Unreadable(String),
    /// A page is not a page of system memory, or its flags break the rule.
    Differs(String),
}

const SYSTEM_ONLY: &str = "check-page-flags reads the flags of system pages only";

/// check-page-flags of the pages from `first` (mapping-relative) whose
/// pagemap entries are `entries`: each must be a present page of system
/// memory (PM_PRESENT, not PM_SWAP, a PFN) whose flags, read by PFN with
/// `kpageflags` into `flags` (as long as `entries`), have every flag of
/// `set` and none of `clear`. The first page that is not, or that breaks
/// the rule, is named; for the rule, with how many pages break it.
pub fn check_page_flags(
    first: u64,
    entries: &[u64],
    flags: &mut [u64],
    mut kpageflags: impl FnMut(u64) -> Result<Option<u64>, String>,
    set: &[PageFlag],
    clear: &[PageFlag],
) -> Result<(), FlagsProblem> {
    assert_eq!(entries.len(), flags.len(), "one flags word per entry");
    let differs = |m: String| FlagsProblem::Differs(m);
    for (i, &e) in entries.iter().enumerate() {
        if e & PM_PRESENT == 0 || e & PM_SWAP != 0 || e & PM_PFRAME_MASK == 0 {
            return Err(differs(format!(
                "page {} is not a present page in system memory (pagemap entry {e:#018x}): \
                 {SYSTEM_ONLY}",
                first + i as u64
            )));
        }
    }
    for (i, (&e, f)) in entries.iter().zip(flags.iter_mut()).enumerate() {
        let page = first + i as u64;
        let pfn = e & PM_PFRAME_MASK;
        *f = match kpageflags(pfn).map_err(FlagsProblem::Unreadable)? {
            Some(f) => f,
            None => {
                return Err(differs(format!(
                    "page {page} (pfn {pfn:#x}) is past the end of /proc/kpageflags: \
                     {SYSTEM_ONLY}"
                )))
            }
        };
        if *f == 0 || *f & KPF_NOPAGE != 0 {
            return Err(differs(format!(
                "page {page} (pfn {pfn:#x}) is not a page of online system memory (kpageflags \
                 {f:#x}), as device-coherent memory is not: {SYSTEM_ONLY}",
                f = *f
            )));
        }
    }
    let breaks = |f: u64| -> Option<(PageFlag, bool)> {
        let unset = set.iter().find(|x| !x.is_set_in(f)).map(|x| (*x, true));
        unset.or_else(|| clear.iter().find(|x| x.is_set_in(f)).map(|x| (*x, false)))
    };
    let count = flags.iter().filter(|f| breaks(**f).is_some()).count();
    let Some((i, (flag, want_set))) = flags
        .iter()
        .enumerate()
        .find_map(|(i, f)| breaks(*f).map(|b| (i, b)))
    else {
        return Ok(());
    };
    let (is, want) = if want_set {
        ("clear", "set")
    } else {
        ("set", "clear")
    };
    Err(differs(format!(
        "page {}: {flag} is {is} (kpageflags {:#x}), expected {want}; {count} of {} pages differ",
        first + i as u64,
        flags[i],
        flags.len()
    )))
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

    const PRESENT: u64 = PM_PRESENT | 0x1234;
    const UPTODATE: u64 = 1 << 3;
    const LRU: u64 = 1 << 5;
    const ANON: u64 = 1 << 12;
    const THP: u64 = 1 << 22;

    /// check-page-flags of `entries` from page 4, the flags looked up by
    /// PFN in `table` (index: PFN - 0x1234).
    fn check(
        entries: &[u64],
        table: &[u64],
        set: &[PageFlag],
        clear: &[PageFlag],
    ) -> Result<(), FlagsProblem> {
        let mut flags = vec![0u64; entries.len()];
        let read = |pfn: u64| Ok(table.get((pfn - 0x1234) as usize).copied());
        check_page_flags(4, entries, &mut flags, read, set, clear)
    }

    fn differs(r: Result<(), FlagsProblem>) -> String {
        match r {
            Err(FlagsProblem::Differs(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pages_that_are_not_system_memory_fail() {
        use PageFlag::*;
        let ok = UPTODATE | ANON;
        // Present, with flags as asked.
        assert_eq!(
            check(&[PRESENT, PRESENT + 1], &[ok, ok], &[Uptodate], &[]),
            Ok(())
        );
        // Not present (a hole), a swap-type entry (a device-private page:
        // PM_SWAP and its offset), a present entry without a PFN.
        for (entry, shown) in [
            (0, "0x0000000000000000"),
            (PM_SWAP | 0x5_0000_0007, "0x4000000500000007"),
            (PM_PRESENT, "0x8000000000000000"),
            (PM_PRESENT | PM_SWAP | 9, "0xc000000000000009"),
        ] {
            let m = differs(check(&[PRESENT, entry, 0], &[ok, ok], &[Uptodate], &[]));
            assert_eq!(
                m,
                format!(
                    "page 5 is not a present page in system memory (pagemap entry {shown}): \
                     check-page-flags reads the flags of system pages only"
                )
            );
        }
        // A PFN /proc/kpageflags has no online page for (device-coherent
        // memory): KPF_NOPAGE before 7.x, 0 from then on; and one past its
        // end.
        for f in [KPF_NOPAGE, 0] {
            let m = differs(check(&[PRESENT, PRESENT + 1], &[ok, f], &[], &[Thp]));
            assert!(
                m.starts_with(&format!(
                    "page 5 (pfn 0x1235) is not a page of online system memory (kpageflags \
                     {f:#x})"
                )),
                "{m}"
            );
            assert!(m.ends_with("reads the flags of system pages only"), "{m}");
        }
        let m = differs(check(&[PRESENT + 2], &[ok], &[Anon], &[]));
        assert!(
            m.starts_with("page 4 (pfn 0x1236) is past the end of /proc/kpageflags"),
            "{m}"
        );
        // A read that fails is no finding about the page.
        let mut flags = [0u64];
        let e = check_page_flags(
            0,
            &[PRESENT],
            &mut flags,
            |_| Err("EIO".into()),
            &[Anon],
            &[],
        );
        assert_eq!(e, Err(FlagsProblem::Unreadable("EIO".into())));
    }

    #[test]
    fn the_first_page_that_breaks_the_rule_is_named_and_the_rest_counted() {
        use PageFlag::*;
        let entries: Vec<u64> = (0..6).map(|i| PRESENT + i).collect();
        let table = [
            UPTODATE | ANON | LRU,
            UPTODATE | ANON | LRU | THP,
            ANON | LRU,
            UPTODATE | LRU,
            UPTODATE | ANON | LRU,
            ANON | LRU | THP,
        ];
        assert_eq!(check(&entries, &table, &[Lru], &[Locked, Dirty]), Ok(()));
        // A flag that should be set is clear: page 2 (mapping page 6)
        // first; pages 2, 3 and 5 lack one of the two.
        assert_eq!(
            differs(check(&entries, &table, &[Uptodate, Anon], &[])),
            "page 6: uptodate is clear (kpageflags 0x1020), expected set; 3 of 6 pages differ"
        );
        // A flag that should be clear is set.
        assert_eq!(
            differs(check(&entries, &table, &[], &[Thp])),
            "page 5: thp is set (kpageflags 0x401028), expected clear; 2 of 6 pages differ"
        );
        // Both lists: a page counts once, named by the first flag it
        // breaks, `set` before `clear`.
        assert_eq!(
            differs(check(&entries, &table, &[Anon], &[Thp, Lru])),
            "page 4: lru is set (kpageflags 0x1028), expected clear; 6 of 6 pages differ"
        );
        assert_eq!(
            differs(check(&entries[3..], &table, &[Anon], &[Thp, Lru])),
            "page 4: anon is clear (kpageflags 0x28), expected set; 3 of 3 pages differ"
        );
    }

    /// On the machine the tests run on, as root: a written anonymous page
    /// of this process is a present page of system memory, uptodate,
    /// anonymous and swap-backed, and not locked. Skipped (with the reason)
    /// where /proc/kpageflags cannot be read or pagemap hides the PFNs.
    #[test]
    fn kpageflags_of_a_page_of_this_process() {
        let kpf = match KpageFlags::open() {
            Ok(k) => k,
            Err(e) => {
                println!("skipped: {e}");
                return;
            }
        };
        let mut page = vec![0u8; 3 * PAGE_SIZE as usize];
        // A page-aligned page inside the buffer, written.
        let at = page.as_ptr().align_offset(PAGE_SIZE as usize);
        page[at] = 1;
        let addr = page[at..].as_ptr() as u64;
        let mut entries = [0u64];
        read_into(addr, &mut entries).unwrap();
        assert_eq!(entries[0], read(addr, 1).unwrap()[0]);
        assert_ne!(entries[0] & PM_PRESENT, 0, "{:#x}", entries[0]);
        if entries[0] & PM_PFRAME_MASK == 0 {
            println!("skipped: /proc/self/pagemap hides PFNs from this process (no CAP_SYS_ADMIN)");
            return;
        }
        let mut flags = [0u64];
        let read = |pfn| kpf.read(pfn);
        use PageFlag::*;
        let r = check_page_flags(
            0,
            &entries,
            &mut flags,
            read,
            &[Uptodate, Anon, Swapbacked],
            &[Locked],
        );
        assert_eq!(r, Ok(()), "kpageflags {:#x}", flags[0]);
        // And the other way round: the first flag named is the one shown.
        let r = check_page_flags(0, &entries, &mut flags, |pfn| kpf.read(pfn), &[], &[Anon]);
        let m = differs(r);
        assert!(m.starts_with("page 0: anon is set (kpageflags 0x"), "{m}");
        assert!(m.ends_with("expected clear; 1 of 1 pages differ"), "{m}");
        // A PFN far past the end of memory.
        assert_eq!(kpf.read(PM_PFRAME_MASK), Ok(None));
    }
}
