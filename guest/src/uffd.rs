//! userfaultfd(2), for mappings with `userfaultfd = true`: the ioctl ABI
//! mirrored from the kernel's `include/uapi/linux/userfaultfd.h`, written out
//! like [`crate::abi`] so it can be read and reviewed, and a registration in
//! `UFFDIO_REGISTER_MODE_MISSING` that nobody serves.
//!
//! The guest only arms the fd and looks at what is pending on it. With
//! MISSING mode armed and no handler, a CPU access to a missing page of the
//! mapping blocks in the kernel until the fd is closed; migrate_vma_*() must
//! instead back off from such pages without delivering an event.

use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::mapping::PAGE_SIZE;
use crate::sysnames::{describe_errno, last_errno};

/// The API version UFFDIO_API hands the kernel.
pub const UFFD_API: u64 = 0xAA;
/// The ioctl type of every userfaultfd command.
const UFFDIO: u32 = 0xAA;
/// `UFFD_FEATURE_WP_UNPOPULATED` (6.4+): UFFDIO_WRITEPROTECT of an
/// unpopulated anonymous page leaves a uffd-wp pte marker.
pub const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;

/// `struct uffdio_api`
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UffdioApi {
    /// (in) UFFD_API.
    pub api: u64,
    /// (in/out) requested and supported features.
    pub features: u64,
    /// (out) the ioctls the fd takes.
    pub ioctls: u64,
}

/// `struct uffdio_range`
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UffdioRange {
    pub start: u64,
    pub len: u64,
}

/// `struct uffdio_register`
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UffdioRegister {
    pub range: UffdioRange,
    /// UFFDIO_REGISTER_MODE_* bits.
    pub mode: u64,
    /// (out) the ioctls the registered range takes.
    pub ioctls: u64,
}

/// `_IOWR(ty, nr, size)` in the asm-generic layout x86 uses:
/// direction (read|write = 3) << 30 | size << 16 | type << 8 | nr.
const fn iowr(ty: u32, nr: u32, size: usize) -> u32 {
    const READ_WRITE: u32 = 3;
    (READ_WRITE << 30) | ((size as u32) << 16) | (ty << 8) | nr
}

/// `_IOWR(UFFDIO, _UFFDIO_API = 0x3F, struct uffdio_api)`
pub const UFFDIO_API: u32 = iowr(UFFDIO, 0x3F, size_of::<UffdioApi>());
/// `_IOWR(UFFDIO, _UFFDIO_REGISTER = 0x00, struct uffdio_register)`
pub const UFFDIO_REGISTER: u32 = iowr(UFFDIO, 0x00, size_of::<UffdioRegister>());

pub const UFFDIO_REGISTER_MODE_MISSING: u64 = 1 << 0;
pub const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;

/// `struct uffdio_writeprotect`
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UffdioWriteprotect {
    pub range: UffdioRange,
    /// UFFDIO_WRITEPROTECT_MODE_* bits.
    pub mode: u64,
}

/// `_IOWR(UFFDIO, _UFFDIO_WRITEPROTECT = 0x06, struct uffdio_writeprotect)`
pub const UFFDIO_WRITEPROTECT: u32 = iowr(UFFDIO, 0x06, size_of::<UffdioWriteprotect>());
pub const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;

pub const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
pub const UFFD_EVENT_FORK: u8 = 0x13;
pub const UFFD_EVENT_REMAP: u8 = 0x14;
pub const UFFD_EVENT_REMOVE: u8 = 0x15;
pub const UFFD_EVENT_UNMAP: u8 = 0x16;

pub const UFFD_PAGEFAULT_FLAG_WRITE: u64 = 1 << 0;
pub const UFFD_PAGEFAULT_FLAG_WP: u64 = 1 << 1;
pub const UFFD_PAGEFAULT_FLAG_MINOR: u64 = 1 << 2;

/// `struct uffd_msg`, which the kernel declares `__packed`: one byte of
/// event, seven reserved bytes, then a 24-byte union at offset 8. Every
/// union member's fields sit at multiples of 8 from there, so this
/// naturally aligned layout has the same offsets and size (32 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UffdMsg {
    pub event: u8,
    pub reserved: [u8; 7],
    /// `arg`; for UFFD_EVENT_PAGEFAULT: flags, address, then `feat.ptid` in
    /// the low 32 bits of the third word.
    pub arg: [u64; 3],
}

/// A userfaultfd with one range registered in MISSING mode. Closing it (on
/// drop) unregisters the range and wakes any thread blocked on it.
pub struct Userfaultfd {
    fd: OwnedFd,
}

impl Userfaultfd {
    /// Create a userfaultfd (O_CLOEXEC | O_NONBLOCK), do the UFFDIO_API
    /// handshake (no features) and register `len` bytes at `start` in
    /// `UFFDIO_REGISTER_MODE_MISSING`.
    pub fn register_missing(start: u64, len: u64) -> Result<Userfaultfd, String> {
        let uffd = Userfaultfd::open()?;
        uffd.register(start, len, UFFDIO_REGISTER_MODE_MISSING, "MISSING")?;
        Ok(uffd)
    }

    /// A userfaultfd with `len` bytes at `start` registered in
    /// `UFFDIO_REGISTER_MODE_WP`, for [`Userfaultfd::write_protect`].
    ///
    /// Where the kernel offers UFFD_FEATURE_WP_UNPOPULATED (6.4+), the
    /// handshake asks for it: write-protecting a page that is not
    /// populated then installs a uffd-wp pte marker
    /// (mm/mprotect.c, change_protection()) instead of leaving the pte
    /// empty, as shmem and hugetlb always do.
    pub fn register_wp(start: u64, len: u64) -> Result<Userfaultfd, String> {
        let offered = Userfaultfd::open_with(0)?.1.features;
        let (uffd, _) = Userfaultfd::open_with(offered & UFFD_FEATURE_WP_UNPOPULATED)?;
        uffd.register(start, len, UFFDIO_REGISTER_MODE_WP, "WP")?;
        Ok(uffd)
    }

    /// UFFDIO_WRITEPROTECT with `UFFDIO_WRITEPROTECT_MODE_WP` of `len`
    /// bytes at `start`, inside the range registered in WP mode.
    pub fn write_protect(&self, start: u64, len: u64) -> Result<(), String> {
        let mut wp = UffdioWriteprotect {
            range: UffdioRange { start, len },
            mode: UFFDIO_WRITEPROTECT_MODE_WP,
        };
        self.ioctl(UFFDIO_WRITEPROTECT, &mut wp).map_err(|e| {
            format!(
                "UFFDIO_WRITEPROTECT of {len} bytes at {start:#x} failed: {}",
                describe_errno(e)
            )
        })
    }

    /// Create a userfaultfd (O_CLOEXEC | O_NONBLOCK) and do the UFFDIO_API
    /// handshake (no features).
    fn open() -> Result<Userfaultfd, String> {
        Ok(Userfaultfd::open_with(0)?.0)
    }

    /// The same, asking for `features`; with the kernel's answer, whose
    /// `features` are all it offers.
    fn open_with(features: u64) -> Result<(Userfaultfd, UffdioApi), String> {
        // SAFETY: plain syscall taking flags only.
        let rc =
            unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if rc < 0 {
            return Err(format!(
                "userfaultfd(O_CLOEXEC | O_NONBLOCK) failed: {}",
                describe_errno(last_errno())
            ));
        }
        // SAFETY: the syscall just returned this descriptor, owned by no one else.
        let fd = unsafe { OwnedFd::from_raw_fd(rc as i32) };
        let uffd = Userfaultfd { fd };

        let mut api = UffdioApi {
            api: UFFD_API,
            features,
            ..Default::default()
        };
        uffd.ioctl(UFFDIO_API, &mut api).map_err(|e| {
            format!(
                "UFFDIO_API with features {features:#x} failed: {}",
                describe_errno(e)
            )
        })?;

        Ok((uffd, api))
    }

    fn register(&self, start: u64, len: u64, mode: u64, name: &str) -> Result<(), String> {
        let mut register = UffdioRegister {
            range: UffdioRange { start, len },
            mode,
            ioctls: 0,
        };
        self.ioctl(UFFDIO_REGISTER, &mut register).map_err(|e| {
            format!(
                "UFFDIO_REGISTER ({name}) of {len} bytes at {start:#x} failed: {}",
                describe_errno(e)
            )
        })
    }

    fn ioctl<T>(&self, request: u32, arg: &mut T) -> Result<(), i32> {
        loop {
            // SAFETY: `request` is one of the commands above and `arg` the
            // struct it takes, whose size is encoded in `request`.
            let rc =
                unsafe { libc::ioctl(self.fd.as_raw_fd(), request as libc::Ioctl, arg as *mut T) };
            if rc == 0 {
                return Ok(());
            }
            let errno = last_errno();
            if errno != libc::EINTR {
                return Err(errno);
            }
        }
    }

    /// Read one pending message without blocking: `None` when there is
    /// none (EAGAIN).
    pub fn read_event(&self) -> Result<Option<UffdMsg>, String> {
        let mut msg = UffdMsg::default();
        loop {
            // SAFETY: msg is a buffer of size_of::<UffdMsg>() bytes.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut msg as *mut UffdMsg).cast(),
                    size_of::<UffdMsg>(),
                )
            };
            if n == size_of::<UffdMsg>() as isize {
                return Ok(Some(msg));
            }
            if n >= 0 {
                return Err(format!(
                    "read of the userfaultfd returned {n} bytes, not one {}-byte uffd_msg",
                    size_of::<UffdMsg>()
                ));
            }
            match last_errno() {
                libc::EINTR => continue,
                libc::EAGAIN => return Ok(None),
                errno => {
                    return Err(format!(
                        "read of the userfaultfd failed: {}",
                        describe_errno(errno)
                    ))
                }
            }
        }
    }
}

/// What a message says, with a page fault's address as a page index of the
/// mapping of `pages` pages at `base`.
pub fn describe_msg(msg: &UffdMsg, base: u64, pages: u64) -> String {
    match msg.event {
        UFFD_EVENT_PAGEFAULT => {
            let [flags, address, feat] = msg.arg;
            let mut kind = vec![if flags & UFFD_PAGEFAULT_FLAG_WRITE != 0 {
                "write"
            } else {
                "read"
            }];
            if flags & UFFD_PAGEFAULT_FLAG_WP != 0 {
                kind.push("wp");
            }
            if flags & UFFD_PAGEFAULT_FLAG_MINOR != 0 {
                kind.push("minor");
            }
            let place = if address >= base && address < base + pages * PAGE_SIZE {
                format!("page {}", (address - base) / PAGE_SIZE)
            } else {
                format!("address {address:#x}, outside the mapping")
            };
            let thread = match feat as u32 {
                0 => String::new(),
                tid => format!(", thread {tid}"),
            };
            format!("pagefault event ({}) at {place}{thread}", kind.join(", "))
        }
        UFFD_EVENT_FORK => "fork event".into(),
        UFFD_EVENT_REMAP => "remap event".into(),
        UFFD_EVENT_REMOVE => "remove event".into(),
        UFFD_EVENT_UNMAP => "unmap event".into(),
        other => format!("event {other:#04x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn ioctl_numbers_match_the_header() {
        // _IOWR(0xAA, 0x3F, 24 bytes) and _IOWR(0xAA, 0x00, 32 bytes),
        // worked out by hand from include/uapi/linux/userfaultfd.h and
        // include/uapi/asm-generic/ioctl.h.
        assert_eq!(UFFDIO_API, 0xC018_AA3F);
        assert_eq!(UFFDIO_REGISTER, 0xC020_AA00);
        assert_eq!(UFFD_API, 0xAA);
        assert_eq!(UFFDIO_REGISTER_MODE_MISSING, 1);
        // _IOWR(0xAA, 0x06, 24 bytes).
        assert_eq!(UFFDIO_WRITEPROTECT, 0xC018_AA06);
        assert_eq!(UFFDIO_REGISTER_MODE_WP, 2);
        assert_eq!(UFFDIO_WRITEPROTECT_MODE_WP, 1);
    }

    #[test]
    fn struct_layouts_match_the_header() {
        assert_eq!(size_of::<UffdioApi>(), 24);
        assert_eq!(size_of::<UffdioRange>(), 16);
        assert_eq!(size_of::<UffdioRegister>(), 32);
        assert_eq!(offset_of!(UffdioRegister, mode), 16);
        assert_eq!(offset_of!(UffdioRegister, ioctls), 24);
        assert_eq!(size_of::<UffdioWriteprotect>(), 24);
        assert_eq!(offset_of!(UffdioWriteprotect, mode), 16);
        // uffd_msg is __packed: event at 0, arg at 8, 32 bytes in all.
        assert_eq!(size_of::<UffdMsg>(), 32);
        assert_eq!(offset_of!(UffdMsg, arg), 8);
    }

    #[test]
    fn messages() {
        let base = 0x7000_0000_0000;
        let fault = |flags, address| UffdMsg {
            event: UFFD_EVENT_PAGEFAULT,
            arg: [flags, address, 0],
            ..Default::default()
        };
        assert_eq!(
            describe_msg(&fault(0, base + 3 * PAGE_SIZE + 8), base, 64),
            "pagefault event (read) at page 3"
        );
        assert_eq!(
            describe_msg(
                &fault(UFFD_PAGEFAULT_FLAG_WRITE, base + 63 * PAGE_SIZE),
                base,
                64
            ),
            "pagefault event (write) at page 63"
        );
        assert_eq!(
            describe_msg(&fault(1, base + 64 * PAGE_SIZE), base, 64),
            "pagefault event (write) at address 0x700000040000, outside the mapping"
        );
        let mut with_tid = fault(0, base);
        with_tid.arg[2] = 42;
        assert_eq!(
            describe_msg(&with_tid, base, 1),
            "pagefault event (read) at page 0, thread 42"
        );
        let other = UffdMsg {
            event: UFFD_EVENT_UNMAP,
            ..Default::default()
        };
        assert_eq!(describe_msg(&other, base, 1), "unmap event");
        let unknown = UffdMsg {
            event: 0x42,
            ..Default::default()
        };
        assert_eq!(describe_msg(&unknown, base, 1), "event 0x42");
    }

    /// Where the host allows userfaultfd (root, or vm.unprivileged_userfaultfd
    /// = 1, and no seccomp filter): arm a mapping, see it idle, then see a
    /// read of a missing page reported as a pagefault event.
    #[test]
    fn register_and_read_events_where_allowed() {
        let pages = 8;
        let len = (pages * PAGE_SIZE) as usize;
        // SAFETY: a fresh anonymous mapping.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let base_addr = base as u64;
        let uffd = match Userfaultfd::register_missing(base_addr, len as u64) {
            Ok(uffd) => uffd,
            Err(e) => {
                eprintln!("skipped, userfaultfd not available here: {e}");
                // SAFETY: our mapping.
                unsafe { libc::munmap(base, len) };
                return;
            }
        };
        assert_eq!(uffd.read_event(), Ok(None));

        let toucher = std::thread::spawn(move || {
            // SAFETY: inside the mapping; blocks until the fd is closed.
            unsafe { std::ptr::read_volatile((base_addr + 5 * PAGE_SIZE) as *const u8) }
        });
        let mut event = None;
        for _ in 0..5000 {
            event = uffd.read_event().unwrap();
            if event.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Closing the fd lets the blocked read retry without userfaultfd.
        drop(uffd);
        assert_eq!(toucher.join().unwrap(), 0);
        let event = event.expect("no pagefault event within 5 s");
        let text = describe_msg(&event, base_addr, pages);
        assert!(
            text.starts_with("pagefault event (read) at page 5"),
            "{text}"
        );
        // SAFETY: our mapping.
        unsafe { libc::munmap(base, len) };
    }
}
