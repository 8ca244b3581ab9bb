//! `fork`, `child-read` and `child-write`: a child process that shares the
//! mapping's pages copy-on-write with the scenario's process.
//!
//! fork(2) copies the page tables (mm/memory.c: copy_page_range()): an
//! anonymous page the parent had to itself becomes shared, no longer
//! AnonExclusive (folio_try_dup_anon_rmap_pte()), its pte read-only in
//! both; a writable device-private entry becomes readable in both
//! (copy_nonpresent_pte()). A migration of such a page must leave both
//! processes their own data: whichever writes first gets a copy, and the
//! other never sees the write.
//!
//! The child is the scenario process as it was at the fork: the same
//! mapping at the same address, and its own copy of the content model,
//! which the parent's later writes do not change. It waits for commands on
//! a pipe, reads or writes the pages it is told to, checks what it reads
//! against its model, and answers on a second pipe. Its writes use
//! generations from [`CHILD_GENERATIONS`] on, which the parent never
//! reaches, so a child's write seen by the parent (or the other way round)
//! is told apart from the data it should have.
//!
//! Both pipes are made before the mapping exists (see steps.rs: nothing is
//! allocated next to the mapping during the steps). The child dies with
//! the scenario process (PR_SET_PDEATHSIG), and with its process group.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use hmmlab_proto::scenario::{Op, PageRange, Step};

use crate::mapping::{Mapped, WORDS_PER_PAGE};
use crate::model::Model;
use crate::sysnames::describe_errno;

/// The first generation of the child's writes. The parent's generations
/// count up from 1, one per write step; the pattern keeps 16 bits of it.
pub const CHILD_GENERATIONS: u64 = 0x8000;

/// The pipes for a scenario's `fork` step, and the child once forked.
pub struct Forks {
    /// Made when the scenario has a `fork` step.
    pipes: Option<[OwnedFd; 4]>,
    child: Option<Child>,
}

struct Child {
    pid: libc::pid_t,
    commands: File,
    answers: File,
}

/// What the parent asks of the child: an op byte and a page range.
const READ: u8 = b'r';
const WRITE: u8 = b'w';

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err(format!("fork: pipe2 failed: {}", describe_errno(errno)));
    }
    // SAFETY: both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl Forks {
    /// The pipes, if `steps` fork.
    pub fn prepare(steps: &[Step]) -> Result<Forks, String> {
        let pipes = if steps.iter().any(|s| s.op == Op::Fork) {
            let (cmd_rx, cmd_tx) = pipe()?;
            let (ans_rx, ans_tx) = pipe()?;
            Some([cmd_rx, cmd_tx, ans_rx, ans_tx])
        } else {
            None
        };
        Ok(Forks { pipes, child: None })
    }

    /// fork(2). The child serves commands until its command pipe closes,
    /// then exits; it never returns from here.
    pub fn fork(
        &mut self,
        map: &Mapped,
        model: &Model,
        words: &mut [u64],
    ) -> Result<String, String> {
        if self.child.is_some() {
            return Err("fork: this scenario has forked already".into());
        }
        let [cmd_rx, cmd_tx, ans_rx, ans_tx] = self
            .pipes
            .take()
            .ok_or("fork: no pipes were prepared for this step")?;
        // SAFETY: the scenario process has no other thread here (a scenario
        // with migrate-race threads cannot fork: the validator refuses it),
        // so the child may run anything.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return Err(format!("fork failed: {}", describe_errno(errno)));
        }
        if pid == 0 {
            drop((cmd_tx, ans_rx));
            // SAFETY: plain prctl; the child goes when its parent does.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            let code = serve(map, model, words, File::from(cmd_rx), File::from(ans_tx));
            // SAFETY: _exit skips the destructors: the mapping and the
            // buffers are the parent's to release (the child's copies go
            // with its address space).
            unsafe { libc::_exit(code) }
        }
        drop((cmd_rx, ans_tx));
        self.child = Some(Child {
            pid,
            commands: File::from(cmd_tx),
            answers: File::from(ans_rx),
        });
        Ok(format!("child {pid} forked"))
    }

    /// Ask the child to read (and check) or write `range`.
    pub fn ask(&mut self, writes: bool, range: PageRange) -> Result<String, ChildError> {
        let child = self.child.as_mut().ok_or(ChildError::Setup(
            "no child: a child-read or child-write step needs a fork step before it".into(),
        ))?;
        let mut msg = [0u8; 17];
        msg[0] = if writes { WRITE } else { READ };
        msg[1..9].copy_from_slice(&range.start().to_le_bytes());
        msg[9..17].copy_from_slice(&range.end().to_le_bytes());
        let sent = child.commands.write_all(&msg);
        let mut head = [0u8; 5];
        let answered = sent.and_then(|()| child.answers.read_exact(&mut head));
        if answered.is_err() {
            return Err(ChildError::Failed(self.died()));
        }
        let len = u32::from_le_bytes(head[1..5].try_into().unwrap()) as usize;
        let mut text = vec![0u8; len];
        if child.answers.read_exact(&mut text).is_err() {
            return Err(ChildError::Failed(self.died()));
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        match head[0] {
            0 => Ok(text),
            _ => Err(ChildError::Failed(format!("in the child: {text}"))),
        }
    }

    /// The child stopped answering: how it ended.
    fn died(&mut self) -> String {
        let Some(child) = self.child.take() else {
            return "no child".into();
        };
        drop(child.commands);
        format!("the child {}", describe_status(wait(child.pid)))
    }

    /// End the child (its command pipe closes) and check it exited 0.
    pub fn finish(&mut self) -> Result<(), String> {
        let Some(child) = self.child.take() else {
            return Ok(());
        };
        drop(child.commands);
        match wait(child.pid) {
            Ok(0) => Ok(()),
            status => Err(format!("the forked child {}", describe_status(status))),
        }
    }
}

impl Drop for Forks {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Why a child step did not pass.
pub enum ChildError {
    /// The step cannot be carried out as written.
    Setup(String),
    /// The child read other data than it should, or died.
    Failed(String),
}

fn wait(pid: libc::pid_t) -> Result<i32, String> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(status);
        }
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if errno != libc::EINTR {
            return Err(format!("waitpid failed: {}", describe_errno(errno)));
        }
    }
}

fn describe_status(status: Result<i32, String>) -> String {
    match status {
        Err(e) => e,
        Ok(s) if libc::WIFEXITED(s) => format!("exited with status {}", libc::WEXITSTATUS(s)),
        Ok(s) if libc::WIFSIGNALED(s) => {
            format!("was killed by signal {}", libc::WTERMSIG(s))
        }
        Ok(s) => format!("ended with wait status {s:#x}"),
    }
}

/// The child's loop: one command at a time until the pipe closes.
fn serve(map: &Mapped, model: &Model, words: &mut [u64], mut rx: File, mut tx: File) -> i32 {
    let mut model = model.fork_copy(CHILD_GENERATIONS);
    let mut msg = [0u8; 17];
    while rx.read_exact(&mut msg).is_ok() {
        let start = u64::from_le_bytes(msg[1..9].try_into().unwrap());
        let end = u64::from_le_bytes(msg[9..17].try_into().unwrap());
        let range = PageRange(start, end);
        let buf = &mut words[..range.len() as usize * WORDS_PER_PAGE];
        let result = match msg[0] {
            WRITE => {
                let generation = model.next_generation();
                Model::fill_pattern(generation, range, buf);
                map.write_words(range, buf);
                model.record_write(range, generation);
                Ok(format!("the child wrote generation {generation:#x}"))
            }
            READ => {
                map.read_words(range, buf);
                model.check(start, buf).map(|()| String::new())
            }
            other => Err(format!("unknown command {other:#x}")),
        };
        let (status, text) = match result {
            Ok(t) => (0u8, t),
            Err(t) => (1u8, t),
        };
        let mut out = vec![status];
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        if tx.write_all(&out).is_err() {
            return 2;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use hmmlab_proto::scenario::{Mapping, MappingKind, Prot};

    use super::*;

    fn steps_with_fork() -> Vec<Step> {
        vec![crate::steps::tests::step(Op::Fork)]
    }

    fn mapping(pages: u64) -> Mapped {
        Mapped::create(&Mapping {
            kind: MappingKind::AnonPrivate,
            pages,
            align_pages: 1,
            prot: Prot::ReadWrite,
            hugepage: false,
            userfaultfd: false,
        })
        .unwrap()
    }

    /// Copy-on-write both ways, checked by the child against the model as
    /// of the fork: the parent's later write never shows in the child, the
    /// child's never in the parent, and a page the child was told holds
    /// other data is reported with the word that differs.
    #[test]
    fn the_child_keeps_its_own_view() {
        let pages = 4;
        let map = mapping(pages);
        let mut model = Model::new(pages);
        let all = PageRange(0, pages);
        let g = model.next_generation();
        map.write_words(all, &Model::pattern(g, all));
        model.record_write(all, g);
        let mut words = vec![0u64; pages as usize * WORDS_PER_PAGE];
        let mut forks = Forks::prepare(&steps_with_fork()).unwrap();
        forks.fork(&map, &model, &mut words).unwrap();

        // The parent writes pages 0-1 after the fork.
        let g2 = model.next_generation();
        map.write_words(PageRange(0, 2), &Model::pattern(g2, PageRange(0, 2)));
        model.record_write(PageRange(0, 2), g2);
        assert!(
            forks.ask(false, all).is_ok(),
            "the child reads its own data"
        );

        // The child writes pages 2-3: the parent keeps its data.
        forks.ask(true, PageRange(2, 4)).ok().unwrap();
        let mut buf = vec![0u64; pages as usize * WORDS_PER_PAGE];
        map.read_words(all, &mut buf);
        model.check(0, &buf).unwrap();
        assert!(forks.ask(false, PageRange(2, 4)).is_ok());
        forks.finish().unwrap();
        assert!(forks.ask(false, all).is_err(), "no child after finish");
    }

    #[test]
    fn a_child_that_sees_other_data_fails_the_step() {
        let map = mapping(2);
        let model = Model::new(2);
        let mut words = vec![0u64; 2 * WORDS_PER_PAGE];
        // The parent writes before the fork but does not tell the model:
        // the child expects zeros and must say which word differs.
        map.write_words(PageRange(0, 1), &Model::pattern(7, PageRange(0, 1)));
        let mut forks = Forks::prepare(&steps_with_fork()).unwrap();
        forks.fork(&map, &model, &mut words).unwrap();
        match forks.ask(false, PageRange(0, 2)) {
            Err(ChildError::Failed(m)) => {
                assert!(
                    m.starts_with("in the child: data mismatch at page 0 word 0"),
                    "{m}"
                )
            }
            _ => panic!("the child did not report the mismatch"),
        }
        // One fork per scenario.
        assert!(forks.fork(&map, &model, &mut words).is_err());
        forks.finish().unwrap();
    }

    #[test]
    fn no_pipes_without_a_fork_step() {
        let mut forks = Forks::prepare(&[]).unwrap();
        let map = mapping(1);
        let mut words = vec![0u64; WORDS_PER_PAGE];
        let e = forks.fork(&map, &Model::new(1), &mut words).unwrap_err();
        assert!(e.contains("no pipes"), "{e}");
    }
}
