//! The scenario's memory: a mapping of the kind, size, alignment and
//! protection the scenario asks for, and CPU access to it that the compiler
//! may not elide or merge (volatile), because the accesses themselves are
//! what the scenario tests (faults, device page migration back to system).

use std::cell::RefCell;
use std::fs::{self, OpenOptions};
use std::os::fd::AsRawFd;
use std::ptr;

use hmmlab_proto::scenario::{pattern_word, Mapping, MappingKind, PageRange, Prot};

use crate::sysnames::{describe_errno, last_errno};

pub const PAGE_SIZE: u64 = 4096;
pub const WORDS_PER_PAGE: usize = (PAGE_SIZE / 8) as usize;

pub struct Mapped {
    base: *mut u8,
    pages: u64,
    writable: bool,
    kind: MappingKind,
    /// Per page, what a CPU access may do now: `munmap` and `mprotect`
    /// steps change it.
    access: RefCell<Vec<Access>>,
    /// The unlinked file behind a `file-private` mapping, open for the
    /// mapping's lifetime so that `check-file` can read it (closed after
    /// the unmap: fields drop after `Drop::drop`).
    file: Option<fs::File>,
}

/// What the CPU may do with one page of the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
    /// Unmapped by a `munmap` step: any CPU access would fault.
    Unmapped,
}

impl Mapped {
    pub fn create(spec: &Mapping) -> Result<Mapped, String> {
        if spec.pages == 0 {
            return Err("the mapping has 0 pages".into());
        }
        let len = spec.pages * PAGE_SIZE;
        let writable = spec.prot == Prot::ReadWrite;
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        let (flags, file) = match spec.kind {
            MappingKind::AnonPrivate => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, None),
            MappingKind::AnonShared => (libc::MAP_SHARED | libc::MAP_ANONYMOUS, None),
            MappingKind::FilePrivate => (libc::MAP_PRIVATE, Some(backing_file(len)?)),
        };
        let fd = file.as_ref().map_or(-1, |f| f.as_raw_fd());
        let align = spec.align_pages.max(1) * PAGE_SIZE;
        let base = map_aligned(len, align, prot, flags, fd)?;

        let access = if writable {
            Access::ReadWrite
        } else {
            Access::ReadOnly
        };
        let mapped = Mapped {
            base,
            pages: spec.pages,
            writable,
            kind: spec.kind,
            access: RefCell::new(vec![access; spec.pages as usize]),
            file,
        };
        if spec.hugepage {
            // SAFETY: base..base+len is our mapping.
            if unsafe { libc::madvise(base.cast(), len as usize, libc::MADV_HUGEPAGE) } != 0 {
                return Err(format!(
                    "madvise(MADV_HUGEPAGE) failed: {}",
                    describe_errno(last_errno())
                ));
            }
        }
        Ok(mapped)
    }

    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Was the mapping created writable (before any `mprotect` step)?
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Is there a file behind the mapping (`file-private`)?
    pub fn has_file(&self) -> bool {
        self.file.is_some()
    }

    /// pread(2) the whole backing file, `pages * PAGE_SIZE` bytes from
    /// offset 0, into `buf` (exactly that long): through the file's own
    /// descriptor, not the mapping, which may be unmapped in part or whole.
    pub fn read_file(&self, buf: &mut [u64]) -> Result<(), String> {
        let Some(file) = &self.file else {
            return Err(format!("a {:?} mapping has no backing file", self.kind));
        };
        let len = (self.pages * PAGE_SIZE) as usize;
        assert_eq!(buf.len() * 8, len, "buffer is not the file's size");
        // SAFETY: buf is `len` bytes of writable memory; the descriptor is
        // open while `self` lives.
        let n = unsafe { libc::pread(file.as_raw_fd(), buf.as_mut_ptr().cast(), len, 0) };
        if n < 0 {
            return Err(format!(
                "pread of the backing file ({len} bytes) failed: {}",
                describe_errno(last_errno())
            ));
        }
        if n as usize != len {
            return Err(format!(
                "pread of the backing file returned {n} of its {len} bytes"
            ));
        }
        Ok(())
    }

    /// The first page of `range` that does not allow `want`: an unmapped
    /// page for a read, also a read-only page for a write.
    pub fn refuses(&self, range: PageRange, write: bool) -> Option<(u64, Access)> {
        let access = self.access.borrow();
        (range.start()..range.end().min(self.pages)).find_map(|p| {
            let a = access[p as usize];
            let bad = a == Access::Unmapped || (write && a == Access::ReadOnly);
            bad.then_some((p, a))
        })
    }

    /// munmap(2) the pages of `range`.
    pub fn unmap(&self, range: PageRange) -> Result<(), String> {
        assert!(range.end() <= self.pages, "page range outside the mapping");
        // SAFETY: the range lies inside our mapping; pages already unmapped
        // are not in use by anything else (nothing is mapped while steps run).
        let rc = unsafe {
            libc::munmap(
                self.addr(range.start()) as *mut libc::c_void,
                (range.len() * PAGE_SIZE) as usize,
            )
        };
        if rc != 0 {
            return Err(format!(
                "munmap of pages [{}, {}) failed: {}",
                range.start(),
                range.end(),
                describe_errno(last_errno())
            ));
        }
        self.set_access(range, Access::Unmapped);
        Ok(())
    }

    /// madvise(MADV_DONTNEED) the pages of `range` of an anon-private
    /// mapping, which must all be mapped: they read as zeros afterwards.
    pub fn discard(&self, range: PageRange) -> Result<(), String> {
        if self.kind != MappingKind::AnonPrivate {
            return Err(format!(
                "discard needs an anon-private mapping, not {:?}: MADV_DONTNEED of a shared or \
                 file mapping keeps or reloads the data",
                self.kind
            ));
        }
        self.advise(range, "discard", libc::MADV_DONTNEED, "MADV_DONTNEED")
    }

    /// madvise(MADV_PAGEOUT) of `range`, which must all be mapped: the
    /// pages are reclaimed, to swap if there is any; their data stays.
    pub fn page_out(&self, range: PageRange) -> Result<(), String> {
        self.advise(range, "page-out", libc::MADV_PAGEOUT, "MADV_PAGEOUT")
    }

    /// madvise(2) `advice` (named `name`) over `range`, for the step `op`.
    fn advise(
        &self,
        range: PageRange,
        op: &str,
        advice: libc::c_int,
        name: &str,
    ) -> Result<(), String> {
        assert!(range.end() <= self.pages, "page range outside the mapping");
        if let Some((page, _)) = self.refuses(range, false) {
            return Err(format!("{op} of page {page}, which a munmap step unmapped"));
        }
        // SAFETY: the range is mapped and ours; nothing else uses its pages.
        let rc = unsafe {
            libc::madvise(
                self.addr(range.start()) as *mut libc::c_void,
                (range.len() * PAGE_SIZE) as usize,
                advice,
            )
        };
        if rc != 0 {
            return Err(format!(
                "madvise({name}) of pages [{}, {}) failed: {}",
                range.start(),
                range.end(),
                describe_errno(last_errno())
            ));
        }
        Ok(())
    }

    /// mprotect(2) the pages of `range`, which must all be mapped.
    pub fn protect(&self, range: PageRange, prot: Prot) -> Result<(), String> {
        assert!(range.end() <= self.pages, "page range outside the mapping");
        if let Some((page, _)) = self.refuses(range, false) {
            return Err(format!(
                "mprotect of page {page}, which a munmap step unmapped"
            ));
        }
        let (flags, access) = match prot {
            Prot::ReadWrite => (libc::PROT_READ | libc::PROT_WRITE, Access::ReadWrite),
            Prot::ReadOnly => (libc::PROT_READ, Access::ReadOnly),
        };
        // SAFETY: the range is mapped and ours.
        let rc = unsafe {
            libc::mprotect(
                self.addr(range.start()) as *mut libc::c_void,
                (range.len() * PAGE_SIZE) as usize,
                flags,
            )
        };
        if rc != 0 {
            return Err(format!(
                "mprotect of pages [{}, {}) to {} failed: {}",
                range.start(),
                range.end(),
                prot.as_str(),
                describe_errno(last_errno())
            ));
        }
        self.set_access(range, access);
        Ok(())
    }

    fn set_access(&self, range: PageRange, a: Access) {
        self.access.borrow_mut()[range.start() as usize..range.end() as usize].fill(a);
    }

    /// Address of page `page` of the mapping, as the ioctls take it.
    pub fn addr(&self, page: u64) -> u64 {
        self.base as u64 + page * PAGE_SIZE
    }

    fn words(&self, range: PageRange) -> *mut u64 {
        assert!(range.end() <= self.pages, "page range outside the mapping");
        self.addr(range.start()) as *mut u64
    }

    /// Read every word of `range` from the CPU. The pages must be mapped.
    pub fn read_words(&self, range: PageRange, out: &mut [u64]) {
        assert!(
            self.refuses(range, false).is_none(),
            "read of an unmapped page"
        );
        let src = self.words(range);
        assert_eq!(out.len(), range.len() as usize * WORDS_PER_PAGE);
        for (i, word) in out.iter_mut().enumerate() {
            // SAFETY: i < range.len() * WORDS_PER_PAGE, inside the mapping.
            *word = unsafe { ptr::read_volatile(src.add(i)) };
        }
    }

    /// Write `words` to `range` from the CPU. The mapping must be writable.
    pub fn write_words(&self, range: PageRange, words: &[u64]) {
        assert!(
            self.refuses(range, true).is_none(),
            "write to a read-only or unmapped page"
        );
        let dst = self.words(range);
        assert_eq!(words.len(), range.len() as usize * WORDS_PER_PAGE);
        for (i, word) in words.iter().enumerate() {
            // SAFETY: as in read_words, and the mapping is writable.
            unsafe { ptr::write_volatile(dst.add(i), *word) };
        }
    }

    /// Map one page directly below the mapping, touch it, and unmap it: the
    /// kernel sends an invalidation for exactly that page to every mmu
    /// notifier. Fails if the page below is already in use.
    pub fn unmap_neighbour(&self) -> Result<(), String> {
        let below = self.base as usize - PAGE_SIZE as usize;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
        let p = unsafe {
            libc::mmap(
                below as *mut libc::c_void,
                PAGE_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED || p as usize != below {
            return Err(format!(
                "cannot map the page below the mapping at {below:#x}: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: p is the page just mapped, writable.
        unsafe {
            ptr::write_volatile(p.cast::<u8>(), 1);
            libc::munmap(p, PAGE_SIZE as usize);
        }
        Ok(())
    }

    /// Write one byte of every page in `range`: a write fault per page,
    /// each allocating (and zeroing) the page.
    pub fn touch_write(&self, range: PageRange) {
        let dst = self.words(range).cast::<u8>();
        for page in 0..range.len() as usize {
            // SAFETY: page < range.len(), inside the mapping, which the
            // caller made writable.
            unsafe { ptr::write_volatile(dst.add(page * PAGE_SIZE as usize), 1) };
        }
    }

    /// Read one byte of every page in `range`: a read fault per page.
    pub fn touch_read(&self, range: PageRange) {
        let src = self.words(range).cast::<u8>();
        for page in 0..range.len() as usize {
            // SAFETY: page < range.len(), inside the mapping.
            unsafe { ptr::read_volatile(src.add(page * PAGE_SIZE as usize)) };
        }
    }
}

/// Write generation `generation`'s data pattern over `pages` pages starting
/// at `addr`, which is page `first_page` of the mapping: word by word from
/// the CPU, in order, each word computed as it is written, so that nothing is
/// allocated (for a thread that must not create a malloc arena).
///
/// # Safety
///
/// `addr..addr + pages * PAGE_SIZE` is writable memory of a live mapping,
/// and no other thread reads or writes it from the CPU meanwhile.
pub unsafe fn write_pattern_at(addr: u64, first_page: u64, pages: u64, generation: u64) {
    let dst = addr as *mut u64;
    for i in 0..pages {
        let page = first_page + i;
        for w in 0..WORDS_PER_PAGE as u64 {
            let offset = (i * WORDS_PER_PAGE as u64 + w) as usize;
            // SAFETY: inside the range the caller vouches for.
            unsafe { ptr::write_volatile(dst.add(offset), pattern_word(generation, page, w)) };
        }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // Only what is still mapped: a hole left by a munmap step may hold
        // someone else's mapping by now.
        let access = self.access.get_mut();
        let mut page = 0;
        while page < self.pages {
            if access[page as usize] == Access::Unmapped {
                page += 1;
                continue;
            }
            let start = page;
            while page < self.pages && access[page as usize] != Access::Unmapped {
                page += 1;
            }
            // SAFETY: pages [start, page) are still part of the mapping
            // create() made.
            unsafe {
                libc::munmap(
                    self.base.add((start * PAGE_SIZE) as usize).cast(),
                    ((page - start) * PAGE_SIZE) as usize,
                )
            };
        }
    }
}

/// A file of `len` bytes in the guest's tmpfs, already unlinked.
fn backing_file(len: u64) -> Result<fs::File, String> {
    let path = format!("/tmp/hmmlab-map-{}", std::process::id());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("cannot create {path}: {e}"))?;
    let _ = fs::remove_file(&path);
    file.set_len(len)
        .map_err(|e| format!("cannot size {path} to {len} bytes: {e}"))?;
    Ok(file)
}

/// mmap `len` bytes starting at a multiple of `align`: reserve `len + align`
/// of inaccessible address space, map the real thing over the aligned part
/// with MAP_FIXED, and give back the rest so no neighbour VMA is left over.
fn map_aligned(len: u64, align: u64, prot: i32, flags: i32, fd: i32) -> Result<*mut u8, String> {
    let mmap = |addr: *mut u8, len: u64, prot, flags, fd| {
        // SAFETY: either a fresh mapping (addr null) or MAP_FIXED over our own
        // reservation.
        let p = unsafe { libc::mmap(addr.cast(), len as usize, prot, flags, fd, 0) };
        if p == libc::MAP_FAILED {
            Err(format!(
                "mmap of {len} bytes failed: {}",
                describe_errno(last_errno())
            ))
        } else {
            Ok(p.cast::<u8>())
        }
    };
    if align <= PAGE_SIZE {
        return mmap(ptr::null_mut(), len, prot, flags, fd);
    }
    let reserve = len + align;
    let r = mmap(
        ptr::null_mut(),
        reserve,
        libc::PROT_NONE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
    )?;
    let start = (r as u64).div_ceil(align) * align;
    let head = start - r as u64;
    // start..start+len lies inside the reservation, so MAP_FIXED replaces
    // only address space we own.
    let base = match mmap(start as *mut u8, len, prot, flags | libc::MAP_FIXED, fd) {
        Ok(base) => base,
        Err(e) => {
            // SAFETY: r..r+reserve is our reservation.
            unsafe { libc::munmap(r.cast(), reserve as usize) };
            return Err(e);
        }
    };
    // SAFETY: head and tail are the unused ends of our reservation.
    unsafe {
        if head > 0 {
            libc::munmap(r.cast(), head as usize);
        }
        libc::munmap(
            base.add(len as usize).cast(),
            (reserve - head - len) as usize,
        );
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: MappingKind, pages: u64, align_pages: u64) -> Mapping {
        Mapping {
            kind,
            pages,
            align_pages,
            prot: Prot::ReadWrite,
            hugepage: false,
            userfaultfd: false,
        }
    }

    #[test]
    fn aligned_mappings_round_trip_words() {
        for kind in [
            MappingKind::AnonPrivate,
            MappingKind::AnonShared,
            MappingKind::FilePrivate,
        ] {
            let m = Mapped::create(&spec(kind, 3, 512)).unwrap();
            assert_eq!(m.addr(0) % (512 * PAGE_SIZE), 0);
            let range = PageRange(1, 3);
            let words: Vec<u64> = (0..2 * WORDS_PER_PAGE as u64).collect();
            m.write_words(range, &words);
            let mut back = vec![0; words.len()];
            m.read_words(range, &mut back);
            assert_eq!(back, words);
            let mut first = vec![1; WORDS_PER_PAGE];
            m.read_words(PageRange(0, 1), &mut first);
            assert!(first.iter().all(|&w| w == 0));
            m.touch_read(PageRange(0, 3));
        }
    }

    #[test]
    fn pattern_written_in_place_matches_the_model() {
        let m = Mapped::create(&spec(MappingKind::AnonPrivate, 4, 1)).unwrap();
        let range = PageRange(1, 3);
        // SAFETY: pages 1..3 of a writable mapping, this thread only.
        unsafe { write_pattern_at(m.addr(1), 1, 2, 7) };
        let mut back = vec![0; 2 * WORDS_PER_PAGE];
        m.read_words(range, &mut back);
        assert_eq!(back, crate::model::Model::pattern(7, range));
        let mut last = vec![1; WORDS_PER_PAGE];
        m.read_words(PageRange(3, 4), &mut last);
        assert!(last.iter().all(|&w| w == 0));
    }

    #[test]
    fn discarded_pages_read_as_zeros_and_only_anon_private_ones() {
        let m = Mapped::create(&spec(MappingKind::AnonPrivate, 4, 1)).unwrap();
        // SAFETY: pages 0..4 of a writable mapping, this thread only.
        unsafe { write_pattern_at(m.addr(0), 0, 4, 3) };
        m.discard(PageRange(1, 3)).unwrap();
        let mut back = vec![1; 4 * WORDS_PER_PAGE];
        m.read_words(PageRange(0, 4), &mut back);
        let mut model = crate::model::Model::new(4);
        model.record_write(PageRange(0, 4), 3);
        model.forget(PageRange(1, 3));
        model.check(0, &back).unwrap();
        assert!(back[WORDS_PER_PAGE..3 * WORDS_PER_PAGE]
            .iter()
            .all(|&w| w == 0));
        m.unmap(PageRange(3, 4)).unwrap();
        let e = m.discard(PageRange(2, 4)).unwrap_err();
        assert!(e.contains("page 3, which a munmap step unmapped"), "{e}");
        let shared = Mapped::create(&spec(MappingKind::AnonShared, 2, 1)).unwrap();
        let e = shared.discard(PageRange(0, 1)).unwrap_err();
        assert!(e.contains("needs an anon-private mapping"), "{e}");
    }

    #[test]
    fn munmap_and_mprotect_of_a_sub_range() {
        let m = Mapped::create(&spec(MappingKind::AnonPrivate, 8, 1)).unwrap();
        assert_eq!(m.refuses(PageRange(0, 8), true), None);
        m.protect(PageRange(2, 4), Prot::ReadOnly).unwrap();
        assert_eq!(m.refuses(PageRange(0, 8), false), None);
        assert_eq!(
            m.refuses(PageRange(0, 8), true),
            Some((2, Access::ReadOnly))
        );
        m.unmap(PageRange(5, 7)).unwrap();
        assert_eq!(
            m.refuses(PageRange(4, 8), false),
            Some((5, Access::Unmapped))
        );
        let mut words = vec![0; 2 * WORDS_PER_PAGE];
        m.read_words(PageRange(2, 4), &mut words);
        m.protect(PageRange(2, 4), Prot::ReadWrite).unwrap();
        m.write_words(PageRange(2, 4), &words);
        let err = m.protect(PageRange(4, 6), Prot::ReadOnly).unwrap_err();
        assert!(err.contains("page 5"), "{err}");
        // Drop unmaps [0, 5) and [7, 8) only.
    }

    #[test]
    fn the_backing_file_of_a_private_mapping_keeps_its_zeros() {
        use std::os::unix::fs::FileExt;
        let m = Mapped::create(&spec(MappingKind::FilePrivate, 4, 1)).unwrap();
        assert!(m.has_file());
        // SAFETY: pages 0..4 of a writable mapping, this thread only.
        unsafe { write_pattern_at(m.addr(0), 0, 4, 5) };
        m.unmap(PageRange(2, 3)).unwrap();
        let mut buf = vec![1u64; 4 * WORDS_PER_PAGE];
        m.read_file(&mut buf).unwrap();
        assert!(buf.iter().all(|&w| w == 0));
        // What the file holds, not what the mapping holds.
        let file = m.file.as_ref().unwrap();
        file.write_at(&[0x5a], 3 * PAGE_SIZE + 8).unwrap();
        m.read_file(&mut buf).unwrap();
        assert_eq!(buf[3 * WORDS_PER_PAGE + 1].to_ne_bytes()[0], 0x5a);
        // A file cut short reads short.
        file.set_len(PAGE_SIZE).unwrap();
        let e = m.read_file(&mut buf).unwrap_err();
        assert_eq!(
            e,
            "pread of the backing file returned 4096 of its 16384 bytes"
        );

        let anon = Mapped::create(&spec(MappingKind::AnonPrivate, 1, 1)).unwrap();
        assert!(!anon.has_file());
        let e = anon.read_file(&mut buf[..WORDS_PER_PAGE]).unwrap_err();
        assert!(e.contains("no backing file"), "{e}");
    }

    #[test]
    fn empty_mapping_is_refused() {
        assert!(Mapped::create(&spec(MappingKind::AnonPrivate, 0, 1)).is_err());
    }
}
