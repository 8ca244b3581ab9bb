//! A `/dev/hmm_dmirror<N>` file and the commands it takes.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};

use hmmlab_proto::scenario::DeviceKind;

use crate::abi::{Command, HmmDmirrorCmd};
use crate::sysnames::last_errno;
use crate::system::dmirror_path;

/// One open of the device: test_hmm keeps a separate device page table (the
/// "mirror") per open file, so each scenario starts with an empty mirror.
pub struct Dmirror {
    fd: OwnedFd,
}

impl Dmirror {
    /// The first of test_hmm's devices of `kind`.
    pub fn open(kind: DeviceKind) -> Result<Dmirror, String> {
        Dmirror::open_minor(kind.first_minor()).map_err(|e| match kind {
            DeviceKind::Coherent if e.contains("No such file") => format!(
                "{e}: test_hmm made no device-coherent devices (it needs \
                 test_hmm.spm_addr_dev0/1 and the memmap= ranges of the machine file; its \
                 `hmm_dmirror` lines in the console say why)"
            ),
            _ => e,
        })
    }

    /// `/dev/hmm_dmirror<minor>`.
    pub fn open_minor(minor: u32) -> Result<Dmirror, String> {
        let path = dmirror_path(minor);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {path}: {e}"))?;
        Ok(Dmirror { fd: file.into() })
    }

    /// A file that takes no dmirror command (every ioctl fails with
    /// ENOTTY), to run the executor's CPU-side steps on any machine.
    #[cfg(test)]
    pub fn not_a_dmirror() -> Dmirror {
        let file = std::fs::File::open("/dev/null").expect("/dev/null");
        Dmirror { fd: file.into() }
    }

    /// Issue `command` on `npages` pages at `addr`, with `ptr` as the data
    /// buffer. Returns the command as the driver filled it in, or the errno.
    /// test_hmm copies the command back only on success, so `cpages` and
    /// `faults` exist only then.
    pub fn call(
        &self,
        command: Command,
        addr: u64,
        ptr: u64,
        npages: u64,
    ) -> Result<HmmDmirrorCmd, i32> {
        let mut cmd = HmmDmirrorCmd {
            addr,
            ptr,
            npages,
            ..Default::default()
        };
        loop {
            // SAFETY: cmd is a valid hmm_dmirror_cmd (checked against the
            // header at build time); the caller guarantees ptr points to a
            // buffer large enough for the command.
            let rc = unsafe {
                libc::ioctl(
                    self.fd.as_raw_fd(),
                    command.request() as libc::Ioctl,
                    &mut cmd,
                )
            };
            if rc == 0 {
                return Ok(cmd);
            }
            let errno = last_errno();
            // Retried like the kernel's own hmm-tests does.
            if errno != libc::EINTR {
                return Err(errno);
            }
        }
    }
}
