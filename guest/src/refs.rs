//! `hold-refs` and `drop-refs`: references on the mapping's pages that
//! nothing maps. vmsplice(2) without SPLICE_F_GIFT puts each page into a
//! pipe buffer that holds a reference on it (fs/splice.c: iter_to_pipe()
//! takes them with iov_iter_get_pages2(), no FOLL_PIN); nobody reads the
//! pipe until `drop-refs`, so the references last. That is what
//! migrate_vma_check_page() and split_folio() count as "someone else holds
//! this page".
//!
//! `pin-pages` and `unpin-pages`: long-term pins (FOLL_PIN |
//! FOLL_LONGTERM) through gup_test, which folio_maybe_dma_pinned() sees:
//! what an RDMA or io_uring fixed buffer does to a page.
//!
//! Every pipe is made, and sized, and every gup_test file opened, before
//! the test mapping exists (see steps.rs: nothing is allocated next to the
//! mapping during the steps).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use hmmlab_proto::op::MAX_HELD_PAGES;
use hmmlab_proto::scenario::{Op, PageRange, Step};

use crate::mapping::PAGE_SIZE;
use crate::sysnames::describe_errno;

/// One pipe, made for one `hold-refs` step.
struct Pipe {
    read: OwnedFd,
    write: Option<OwnedFd>,
    /// The step's pages (for messages) and how many bytes it put in.
    pages: PageRange,
    bytes: u64,
}

/// The pipes of a scenario's `hold-refs` steps: those not used yet, in
/// step order, and those holding pages.
pub struct Pipes {
    ready: std::vec::IntoIter<Pipe>,
    holding: Vec<Pipe>,
}

impl Pipes {
    /// A pipe for each `hold-refs` step of `steps`, with room for its pages.
    pub fn prepare(steps: &[Step]) -> Result<Pipes, String> {
        let mut ready = Vec::new();
        for st in steps.iter().filter(|st| st.op == Op::HoldRefs) {
            let pages = st.pages.ok_or("hold-refs needs `pages`")?;
            if pages.is_empty() || pages.len() > MAX_HELD_PAGES {
                return Err(format!(
                    "hold-refs holds 1 to {MAX_HELD_PAGES} pages, not {}",
                    pages.len()
                ));
            }
            ready.push(Pipe::sized(pages)?);
        }
        let holding = Vec::with_capacity(ready.len());
        Ok(Pipes {
            ready: ready.into_iter(),
            holding,
        })
    }

    /// vmsplice the `pages.len()` pages at `addr` into the next pipe: each
    /// page gets one reference, held until [`Pipes::drop_all`].
    pub fn hold(&mut self, addr: u64, pages: PageRange) -> Result<String, String> {
        let mut pipe = self
            .ready
            .next()
            .ok_or("hold-refs: no pipe was prepared for this step")?;
        if pipe.pages != pages {
            return Err(format!(
                "hold-refs: the next pipe was prepared for pages [{}, {}), not [{}, {})",
                pipe.pages.start(),
                pipe.pages.end(),
                pages.start(),
                pages.end()
            ));
        }
        let want = pages.len() * PAGE_SIZE;
        let write = pipe.write.as_ref().ok_or("hold-refs: the pipe is closed")?;
        while pipe.bytes < want {
            let iov = libc::iovec {
                iov_base: (addr + pipe.bytes) as *mut libc::c_void,
                iov_len: (want - pipe.bytes) as usize,
            };
            // SPLICE_F_NONBLOCK: a full pipe is an error here, never a wait.
            // SAFETY: the iovec names mapped memory of this process, which
            // vmsplice only reads (it takes references on its pages).
            let n = unsafe { libc::vmsplice(write.as_raw_fd(), &iov, 1, libc::SPLICE_F_NONBLOCK) };
            if n < 0 {
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                if errno == libc::EINTR {
                    continue;
                }
                return Err(format!(
                    "vmsplice of pages [{}, {}) failed after {} of {want} bytes: {}",
                    pages.start(),
                    pages.end(),
                    pipe.bytes,
                    describe_errno(errno)
                ));
            }
            if n == 0 {
                return Err(format!(
                    "vmsplice of pages [{}, {}) took no bytes after {} of {want}",
                    pages.start(),
                    pages.end(),
                    pipe.bytes
                ));
            }
            pipe.bytes += n as u64;
        }
        self.holding.push(pipe);
        Ok(format!("{} pages held in a pipe", pages.len()))
    }

    /// Read every holding pipe to its end and close it: the pipe buffers,
    /// and with them the references, go. Each pipe must give back every
    /// byte its step put in. The data is not checked: the buffers refer to
    /// the pages themselves, which later steps may have written.
    pub fn drop_all(&mut self) -> Result<String, String> {
        let (mut pipes, mut total) = (0, 0);
        let mut buf = [0u8; 16384];
        for mut pipe in self.holding.drain(..) {
            pipe.write = None;
            let mut got = 0u64;
            loop {
                // SAFETY: `buf` is ours and writable for its whole length.
                let n = unsafe {
                    libc::read(pipe.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                };
                if n < 0 {
                    let err = std::io::Error::last_os_error();
                    if err.raw_os_error() == Some(libc::EINTR) {
                        continue;
                    }
                    return Err(format!("reading the pipe back: {err}"));
                }
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
            if got != pipe.bytes {
                return Err(format!(
                    "the pipe of pages [{}, {}) gave back {got} of the {} bytes put in",
                    pipe.pages.start(),
                    pipe.pages.end(),
                    pipe.bytes
                ));
            }
            pipes += 1;
            total += got;
        }
        if pipes == 0 {
            return Err("drop-refs: no hold-refs step holds pages".to_string());
        }
        Ok(format!(
            "{} pages released from {pipes} pipe(s)",
            total / PAGE_SIZE
        ))
    }
}

impl Pipe {
    /// A pipe with a slot for each of `pages` (a pipe buffer holds at most
    /// one page).
    fn sized(pages: PageRange) -> Result<Pipe, String> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: pipe2 just returned these descriptors; nothing else owns them.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let size = pages.len().next_power_of_two() * PAGE_SIZE;
        // SAFETY: F_SETPIPE_SZ takes an int and changes only the pipe.
        let got =
            unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
        if got < 0 || (got as u64) < pages.len() * PAGE_SIZE {
            return Err(format!(
                "F_SETPIPE_SZ {size} for a hold-refs step over {} pages: {}",
                pages.len(),
                if got < 0 {
                    std::io::Error::last_os_error().to_string()
                } else {
                    format!("the pipe has {got} bytes")
                }
            ));
        }
        Ok(Pipe {
            read,
            write: Some(write),
            pages,
            bytes: 0,
        })
    }
}

/// Where gup_test lives (mm/gup_test.c: debugfs, CONFIG_GUP_TEST).
pub const GUP_TEST: &str = "/sys/kernel/debug/gup_test";

/// One gup_test file, opened for one `pin-pages` step: each open file
/// holds at most one set of long-term pins (pin_longterm_test_start()
/// refuses a second with EINVAL).
struct Pin {
    file: std::fs::File,
    pages: PageRange,
}

/// Why a `pin-pages` step pinned nothing: gup_test's errno, or none when
/// the harness could not ask.
#[derive(Debug)]
pub struct PinError {
    pub errno: Option<i32>,
    pub message: String,
}

impl PinError {
    fn harness(message: impl Into<String>) -> PinError {
        PinError {
            errno: None,
            message: message.into(),
        }
    }
}

/// The gup_test files of a scenario's `pin-pages` steps: those not used
/// yet, in step order, and those holding pins.
pub struct Pins {
    ready: std::vec::IntoIter<Pin>,
    pinned: Vec<Pin>,
}

impl Pins {
    /// A gup_test file for each `pin-pages` step of `steps`, opened before
    /// the mapping exists.
    pub fn prepare(steps: &[Step]) -> Result<Pins, String> {
        let mut ready = Vec::new();
        for st in steps.iter().filter(|st| st.op == Op::PinPages) {
            let pages = st.pages.ok_or("pin-pages needs `pages`")?;
            if pages.is_empty() || pages.len() > MAX_HELD_PAGES {
                return Err(format!(
                    "pin-pages pins 1 to {MAX_HELD_PAGES} pages, not {}",
                    pages.len()
                ));
            }
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(GUP_TEST)
                .map_err(|e| {
                    format!(
                        "pin-pages needs {GUP_TEST} (CONFIG_GUP_TEST, debugfs mounted): {e}; \
                         give the scenario `config = \"CONFIG_GUP_TEST\"` in [requires]"
                    )
                })?;
            ready.push(Pin { file, pages });
        }
        let pinned = Vec::with_capacity(ready.len());
        Ok(Pins {
            ready: ready.into_iter(),
            pinned,
        })
    }

    /// PIN_LONGTERM_TEST_START over the `pages.len()` pages at `addr`:
    /// pin_user_pages() with FOLL_LONGTERM, read-only. gup_test unpins what
    /// it pinned when pin_user_pages() fails (pin_longterm_test_stop()), so
    /// a failed pin holds nothing.
    pub fn pin(&mut self, addr: u64, pages: PageRange) -> Result<String, PinError> {
        let pin = self.ready.next().ok_or_else(|| {
            PinError::harness("pin-pages: no gup_test file was opened for this step")
        })?;
        if pin.pages != pages {
            return Err(PinError::harness(format!(
                "pin-pages: the next gup_test file was opened for pages [{}, {}), not [{}, {})",
                pin.pages.start(),
                pin.pages.end(),
                pages.start(),
                pages.end()
            )));
        }
        let args = crate::abi::PinLongtermTest {
            addr,
            size: pages.len() * PAGE_SIZE,
            flags: 0,
        };
        // SAFETY: the request takes a pointer to a `struct
        // pin_longterm_test`, which `args` is (abi.rs).
        let rc = unsafe {
            libc::ioctl(
                pin.file.as_raw_fd(),
                crate::abi::PIN_LONGTERM_TEST_START as _,
                &args as *const crate::abi::PinLongtermTest,
            )
        };
        if rc != 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            let why = if errno == libc::EINVAL {
                "; gup_test answers so to a command it does not know (6.1 has no \
                 PIN_LONGTERM_TEST_START)"
            } else {
                ""
            };
            return Err(PinError {
                errno: Some(errno),
                message: format!(
                    "PIN_LONGTERM_TEST_START of pages [{}, {}) failed: {}{why}",
                    pages.start(),
                    pages.end(),
                    describe_errno(errno)
                ),
            });
        }
        self.pinned.push(pin);
        Ok(format!("{} pages pinned (FOLL_LONGTERM)", pages.len()))
    }

    /// PIN_LONGTERM_TEST_STOP on every file holding pins, then close it.
    pub fn unpin_all(&mut self) -> Result<String, String> {
        let (mut files, mut pages) = (0, 0);
        for pin in self.pinned.drain(..) {
            // SAFETY: PIN_LONGTERM_TEST_STOP takes no argument.
            let rc = unsafe {
                libc::ioctl(
                    pin.file.as_raw_fd(),
                    crate::abi::PIN_LONGTERM_TEST_STOP as _,
                    0,
                )
            };
            if rc != 0 {
                return Err(format!(
                    "PIN_LONGTERM_TEST_STOP of pages [{}, {}) failed: {}",
                    pin.pages.start(),
                    pin.pages.end(),
                    std::io::Error::last_os_error()
                ));
            }
            files += 1;
            pages += pin.pages.len();
        }
        if files == 0 {
            return Err("unpin-pages: no pin-pages step holds pins".to_string());
        }
        Ok(format!("{pages} pages unpinned ({files} gup_test file(s))"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(pages: PageRange) -> Step {
        Step {
            pages: Some(pages),
            ..crate::steps::tests::step(Op::HoldRefs)
        }
    }

    /// Our own memory: five pages, so that four whole ones start at
    /// [`aligned`].
    fn buffer() -> Vec<u8> {
        vec![7u8; 5 * PAGE_SIZE as usize]
    }

    fn aligned(buf: &[u8]) -> u64 {
        let p = buf.as_ptr() as u64;
        (p + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
    }

    #[test]
    fn held_pages_come_back_whole() {
        let buf = buffer();
        let addr = aligned(&buf);
        let steps = [hold(PageRange(0, 3)), hold(PageRange(3, 4))];
        let mut pipes = Pipes::prepare(&steps).unwrap();
        assert_eq!(
            pipes.hold(addr, PageRange(0, 3)).unwrap(),
            "3 pages held in a pipe"
        );
        assert_eq!(
            pipes.hold(addr + 3 * PAGE_SIZE, PageRange(3, 4)).unwrap(),
            "1 pages held in a pipe"
        );
        assert_eq!(pipes.drop_all().unwrap(), "4 pages released from 2 pipe(s)");
        // Nothing is held any more, and no pipe is left for a third step.
        assert!(pipes.drop_all().is_err());
        assert!(pipes.hold(addr, PageRange(0, 1)).is_err());
    }

    #[test]
    fn pipes_are_made_for_hold_refs_steps_only() {
        let buf = buffer();
        let pin = Step {
            op: Op::PinPages,
            ..hold(PageRange(0, 2))
        };
        let mut pipes = Pipes::prepare(&[pin, hold(PageRange(2, 3))]).unwrap();
        assert_eq!(
            pipes
                .hold(aligned(&buf) + 2 * PAGE_SIZE, PageRange(2, 3))
                .unwrap(),
            "1 pages held in a pipe"
        );
        assert!(pipes.hold(aligned(&buf), PageRange(0, 2)).is_err());
    }

    #[test]
    fn a_step_uses_the_pipe_made_for_it() {
        let buf = buffer();
        let mut pipes = Pipes::prepare(&[hold(PageRange(0, 2))]).unwrap();
        let err = pipes.hold(aligned(&buf), PageRange(0, 3)).unwrap_err();
        assert!(err.contains("prepared for pages [0, 2)"), "{err}");
    }

    #[test]
    fn unmapped_memory_is_an_error_not_a_crash() {
        let mut pipes = Pipes::prepare(&[hold(PageRange(0, 1))]).unwrap();
        // Page 0 of the address space is never mapped.
        let err = pipes.hold(0, PageRange(0, 1)).unwrap_err();
        assert!(err.contains("EFAULT"), "{err}");
    }

    #[test]
    fn pins_need_gup_test() {
        let mut none = Pins::prepare(&[hold(PageRange(0, 1))]).unwrap();
        assert_eq!(
            none.unpin_all().unwrap_err(),
            "unpin-pages: no pin-pages step holds pins"
        );
        let pin = Step {
            op: Op::PinPages,
            ..hold(PageRange(0, 1))
        };
        match Pins::prepare(std::slice::from_ref(&pin)) {
            // A host without gup_test (the usual case for unit tests).
            Err(e) => assert!(
                e.starts_with("pin-pages needs /sys/kernel/debug/gup_test (CONFIG_GUP_TEST"),
                "{e}"
            ),
            Ok(mut pins) => {
                let buf = buffer();
                let addr = aligned(&buf);
                assert_eq!(
                    pins.pin(addr, PageRange(0, 1)).unwrap(),
                    "1 pages pinned (FOLL_LONGTERM)"
                );
                assert_eq!(
                    pins.unpin_all().unwrap(),
                    "1 pages unpinned (1 gup_test file(s))"
                );
            }
        }
    }

    #[test]
    fn too_many_pages_are_refused() {
        let err = Pipes::prepare(&[hold(PageRange(0, MAX_HELD_PAGES + 1))])
            .err()
            .unwrap();
        assert!(err.contains("1 to 4096 pages"), "{err}");
    }
}
