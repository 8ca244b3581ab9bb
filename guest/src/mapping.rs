//! The scenario's memory: a mapping of the kind, size, alignment and
//! protection the scenario asks for, and CPU access to it that the compiler
//! may not elide or merge (volatile), because the accesses themselves are
//! what the scenario tests (faults, device page migration back to system).

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
        // The file stays alive through the mapping; only the name goes.
        drop(file);

        let mapped = Mapped {
            base,
            pages: spec.pages,
            writable,
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

    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Address of page `page` of the mapping, as the ioctls take it.
    pub fn addr(&self, page: u64) -> u64 {
        self.base as u64 + page * PAGE_SIZE
    }

    fn words(&self, range: PageRange) -> *mut u64 {
        assert!(range.end() <= self.pages, "page range outside the mapping");
        self.addr(range.start()) as *mut u64
    }

    /// Read every word of `range` from the CPU.
    pub fn read_words(&self, range: PageRange, out: &mut [u64]) {
        let src = self.words(range);
        assert_eq!(out.len(), range.len() as usize * WORDS_PER_PAGE);
        for (i, word) in out.iter_mut().enumerate() {
            // SAFETY: i < range.len() * WORDS_PER_PAGE, inside the mapping.
            *word = unsafe { ptr::read_volatile(src.add(i)) };
        }
    }

    /// Write `words` to `range` from the CPU. The mapping must be writable.
    pub fn write_words(&self, range: PageRange, words: &[u64]) {
        assert!(self.writable, "write to a read-only mapping");
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
        // SAFETY: base..base+len is the mapping create() made.
        unsafe { libc::munmap(self.base.cast(), (self.pages * PAGE_SIZE) as usize) };
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
    fn empty_mapping_is_refused() {
        assert!(Mapped::create(&spec(MappingKind::AnonPrivate, 0, 1)).is_err());
    }
}
