//! `migrate-race`: rounds in which one thread migrates a range to the device
//! (HMM_DMIRROR_MIGRATE_TO_DEV) while another writes a fresh data pattern
//! over it from the CPU, faulting back whatever the migration already moved.
//!
//! The two threads (the "crew") are started before the test mapping exists
//! and end after it is gone, rather than once per round: a thread's start-up
//! maps its stack, std's alternate signal stack for it (unmapped again when
//! the thread ends) and glibc's malloc arena for it. The kernel places such
//! mappings right below the most recent one, which would be the test
//! mapping, and an munmap ending exactly where the mapping begins makes
//! test_hmm drop the mirror entry of its first page (see steps.rs). Between
//! rounds the crew waits on a barrier, and in a round neither thread
//! allocates, so the process's mappings do not change while the steps run.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::sync::Barrier;
use std::thread::{self, Builder, Scope};

use hmmlab_proto::scenario::{pattern_word, PageRange};

use crate::abi::Command;
use crate::dmirror::Dmirror;
use crate::mapping::{write_pattern_at, WORDS_PER_PAGE};
use crate::model::{describe_word, Model};
use crate::sysnames::describe_errno;
use crate::system::monotonic_ns;

// Atomics are used only to share plain values between threads: every round
// is ordered by the barriers (whose mutex gives happens-before), so relaxed
// accesses are enough.
const RELAXED: Ordering = Ordering::Relaxed;

const GATE_CLOSED: u8 = 0;
const GATE_GO: u8 = 1;
const GATE_QUIT: u8 = 2;

/// What the main thread and the crew share. Lives outside the thread scope.
pub struct Shared {
    /// Both workers started: GATE_GO, or GATE_QUIT when one could not be.
    gate: AtomicU8,
    /// Main thread and both workers: a round starts.
    start: Barrier,
    /// Main thread and both workers: a round (or the start-up) is over.
    done: Barrier,
    quit: AtomicBool,
    // The round, set by the main thread before `start`.
    addr: AtomicU64,
    first_page: AtomicU64,
    npages: AtomicU64,
    buf: AtomicU64,
    generation: AtomicU64,
    // The migration's result, set by the migrator before `done`: errno 0
    // and `cpages`, or the errno.
    errno: AtomicI32,
    cpages: AtomicU64,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            gate: AtomicU8::new(GATE_CLOSED),
            start: Barrier::new(3),
            done: Barrier::new(3),
            quit: AtomicBool::new(false),
            addr: AtomicU64::new(0),
            first_page: AtomicU64::new(0),
            npages: AtomicU64::new(0),
            buf: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            errno: AtomicI32::new(0),
            cpages: AtomicU64::new(0),
        }
    }
}

/// The two worker threads, parked between rounds. Dropping it ends them.
pub struct Crew<'a> {
    shared: &'a Shared,
}

impl<'a> Crew<'a> {
    /// Start the migrator and the writer in `scope`, and wait until both are
    /// running (their start-up, which maps memory, is then over).
    pub fn start<'scope>(
        scope: &'scope Scope<'scope, '_>,
        shared: &'a Shared,
        dev: &'a Dmirror,
    ) -> Result<Crew<'a>, String>
    where
        'a: 'scope,
    {
        let migrator = Builder::new()
            .spawn_scoped(scope, move || {
                if wait_for_gate(shared) {
                    migrator_loop(shared, dev);
                }
            })
            .map_err(|e| format!("cannot start the migrating thread: {e}"))?;
        let writer = Builder::new().spawn_scoped(scope, move || {
            if wait_for_gate(shared) {
                writer_loop(shared);
            }
        });
        let writer = match writer {
            Ok(writer) => writer,
            Err(e) => {
                shared.gate.store(GATE_QUIT, Ordering::Release);
                migrator.thread().unpark();
                return Err(format!("cannot start the writing thread: {e}"));
            }
        };
        shared.gate.store(GATE_GO, Ordering::Release);
        migrator.thread().unpark();
        writer.thread().unpark();
        shared.done.wait();
        Ok(Crew { shared })
    }
}

impl Drop for Crew<'_> {
    fn drop(&mut self) {
        self.shared.quit.store(true, RELAXED);
        self.shared.start.wait();
    }
}

/// Park until the main thread opens the gate: true to go on, false to quit.
fn wait_for_gate(shared: &Shared) -> bool {
    loop {
        match shared.gate.load(Ordering::Acquire) {
            GATE_CLOSED => thread::park(),
            state => return state == GATE_GO,
        }
    }
}

fn migrator_loop(shared: &Shared, dev: &Dmirror) {
    shared.done.wait();
    loop {
        shared.start.wait();
        if shared.quit.load(RELAXED) {
            return;
        }
        let result = dev.call(
            Command::MigrateToDev,
            shared.addr.load(RELAXED),
            shared.buf.load(RELAXED),
            shared.npages.load(RELAXED),
        );
        let (errno, cpages) = match result {
            Ok(cmd) => (0, cmd.cpages),
            Err(errno) => (errno, 0),
        };
        shared.errno.store(errno, RELAXED);
        shared.cpages.store(cpages, RELAXED);
        shared.done.wait();
    }
}

fn writer_loop(shared: &Shared) {
    shared.done.wait();
    loop {
        shared.start.wait();
        if shared.quit.load(RELAXED) {
            return;
        }
        // SAFETY: the main thread set a range of the live, writable test
        // mapping, and waits on `done` without touching it until this
        // round's write is over; the migrator hands the range to the kernel
        // only.
        unsafe {
            write_pattern_at(
                shared.addr.load(RELAXED),
                shared.first_page.load(RELAXED),
                shared.npages.load(RELAXED),
                shared.generation.load(RELAXED),
            )
        };
        shared.done.wait();
    }
}

/// The outcome of a migrate-race step.
#[derive(Debug)]
pub struct RaceRun {
    pub tally: Tally,
    /// The whole loop, checks included.
    pub duration_ns: u64,
    /// Why the step fails, if it does.
    pub failure: Option<String>,
}

/// Run `rounds` rounds over `range` (of a writable mapping whose page 0 is at
/// `base`). `buf` receives the data each migration reads back; `model` ends
/// up holding the last generation for the whole range, unless a round fails.
pub fn run(
    crew: &Crew,
    base: u64,
    range: PageRange,
    rounds: u32,
    model: &mut Model,
    buf: &mut [u64],
) -> RaceRun {
    let shared = crew.shared;
    let words = range.len() as usize * WORDS_PER_PAGE;
    assert!(buf.len() >= words, "race buffer too small");
    shared
        .addr
        .store(base + range.start() * crate::mapping::PAGE_SIZE, RELAXED);
    shared.first_page.store(range.start(), RELAXED);
    shared.npages.store(range.len(), RELAXED);
    shared.buf.store(buf.as_mut_ptr() as u64, RELAXED);

    let mut tally = Tally::default();
    let t0 = monotonic_ns();
    let mut failure = None;
    for round in 1..=rounds {
        let generation = model.next_generation();
        shared.generation.store(generation, RELAXED);
        shared.start.wait();
        // The crew is at work: the migrator on `buf`, the writer on the range.
        shared.done.wait();
        let result = match shared.errno.load(RELAXED) {
            0 => Ok(shared.cpages.load(RELAXED)),
            errno => Err(errno),
        };
        let before = tally;
        let problem = match tally.count(result) {
            Err(errno) => Some(format!(
                "ioctl {} failed: {}",
                Command::MigrateToDev.name(),
                describe_errno(errno)
            )),
            Ok(()) => match result {
                Ok(cpages) => check_round_data(model, range, generation, cpages, &buf[..words])
                    .err()
                    .map(|e| format!("data the migration read back: {e}")),
                Err(_) => None,
            },
        };
        if let Some(problem) = problem {
            let earlier = match before.rounds {
                0 => String::new(),
                _ => format!("; the rounds before it: {}", before.counts()),
            };
            failure = Some(format!("round {round} of {rounds}: {problem}{earlier}"));
            break;
        }
        // The writer's whole write happens-before `done`.
        model.record_write(range, generation);
    }
    RaceRun {
        tally,
        duration_ns: monotonic_ns() - t0,
        failure,
    }
}

/// What the rounds' migrations did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub rounds: u32,
    /// The ioctl succeeded: every page was on the device when test_hmm read
    /// the range back.
    pub complete: u32,
    /// ENOENT: the writer had faulted some page back (or kept it from
    /// migrating) before test_hmm read the range back.
    pub partial: u32,
    /// EBUSY.
    pub busy: u32,
    /// Pages the successful ioctls reported (`cpages`).
    pub cpages: u64,
}

impl Tally {
    /// Count one round's ioctl result. `Err(errno)` for an errno that racing
    /// with CPU writes does not explain.
    pub fn count(&mut self, result: Result<u64, i32>) -> Result<(), i32> {
        self.rounds += 1;
        match result {
            Ok(cpages) => {
                self.complete += 1;
                self.cpages += cpages;
            }
            Err(libc::ENOENT) => self.partial += 1,
            Err(libc::EBUSY) => self.busy += 1,
            Err(errno) => return Err(errno),
        }
        Ok(())
    }

    /// `180 migrations complete, 20 partial (ENOENT)`, plus EBUSY if seen.
    pub fn counts(&self) -> String {
        let complete = match self.complete {
            1 => "1 migration complete".to_string(),
            n => format!("{n} migrations complete"),
        };
        let busy = match self.busy {
            0 => String::new(),
            n => format!(", {n} busy (EBUSY)"),
        };
        format!("{complete}, {} partial (ENOENT){busy}", self.partial)
    }

    /// At least `min` rounds migrated every page: a kernel whose migrations
    /// never complete while the CPU writes fails, even with the data intact.
    pub fn at_least_complete(&self, min: u32) -> Result<(), String> {
        if self.complete >= min {
            return Ok(());
        }
        let rounds = match self.rounds {
            1 => "round",
            _ => "rounds",
        };
        Err(format!(
            "only {} of {} {rounds} migrated every page; the scenario asks for at least {min} \
             ({})",
            self.complete,
            self.rounds,
            self.summary()
        ))
    }

    /// `200 rounds: 180 migrations complete, 20 partial (ENOENT)`
    pub fn summary(&self) -> String {
        let rounds = match self.rounds {
            1 => "1 round".to_string(),
            n => format!("{n} rounds"),
        };
        format!("{rounds}: {}", self.counts())
    }
}

/// Check the data a successful migration read back (every page of `range`)
/// against what the range held when the round began (`model`, not yet
/// updated) and what the round's writer was writing (`generation`). Each
/// page was copied to the device while the writer could not touch it, and
/// the writer fills a page from its first word to its last, so a page must
/// read as this round's words up to some word and the older words from
/// there on.
///
/// A migration that succeeds has read back the whole range: test_hmm's
/// dmirror_migrate_to_device() ends with dmirror_do_read() over all of it,
/// which fails with ENOENT at the first page not in the device's mirror, so
/// `cpages` must be the range's length.
pub fn check_round_data(
    model: &Model,
    range: PageRange,
    generation: u64,
    cpages: u64,
    words: &[u64],
) -> Result<(), String> {
    if cpages != range.len() {
        return Err(format!(
            "the ioctl succeeded with cpages {cpages}, not the {} pages of the range: test_hmm \
             reads the whole range back (dmirror_do_read()) and fails with ENOENT at any page \
             not on the device",
            range.len()
        ));
    }
    let mut first = None;
    let mut bad_pages = 0;
    for (i, page_words) in words
        .chunks(WORDS_PER_PAGE)
        .take(cpages as usize)
        .enumerate()
    {
        let page = range.start() + i as u64;
        if let Err(e) = check_page(model, page, generation, page_words) {
            bad_pages += 1;
            first.get_or_insert(e);
        }
    }
    match first {
        None => Ok(()),
        Some(e) => Err(format!("{e} ({bad_pages} of {cpages} pages differ)")),
    }
}

fn check_page(model: &Model, page: u64, generation: u64, words: &[u64]) -> Result<(), String> {
    // The first word that still holds the older data, once one does.
    let mut old_from: Option<u64> = None;
    for (w, &got) in words.iter().enumerate() {
        let w = w as u64;
        let old = model.expected(page, w);
        let new = pattern_word(generation, page, w);
        if got == old {
            old_from.get_or_insert(w);
        } else if got != new {
            return Err(format!(
                "page {page} word {w} is {}, neither the data before the round ({}) nor \
                 this round's ({})",
                describe_word(got),
                describe_word(old),
                describe_word(new)
            ));
        } else if let Some(from) = old_from {
            return Err(format!(
                "page {page} word {w} holds this round's data ({}) although word {from} \
                 before it holds the older data ({})",
                describe_word(got),
                describe_word(model.expected(page, from))
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_and_words() {
        let mut t = Tally::default();
        assert_eq!(t.count(Ok(64)), Ok(()));
        assert_eq!(t.count(Err(libc::ENOENT)), Ok(()));
        assert_eq!(t.count(Ok(64)), Ok(()));
        assert_eq!(
            t,
            Tally {
                rounds: 3,
                complete: 2,
                partial: 1,
                busy: 0,
                cpages: 128
            }
        );
        assert_eq!(
            t.summary(),
            "3 rounds: 2 migrations complete, 1 partial (ENOENT)"
        );
        assert_eq!(t.count(Err(libc::EBUSY)), Ok(()));
        assert_eq!(t.count(Err(libc::EINVAL)), Err(libc::EINVAL));
        assert_eq!(
            t.summary(),
            "5 rounds: 2 migrations complete, 1 partial (ENOENT), 1 busy (EBUSY)"
        );
        let mut one = Tally::default();
        one.count(Ok(1)).unwrap();
        assert_eq!(
            one.summary(),
            "1 round: 1 migration complete, 0 partial (ENOENT)"
        );
    }

    /// Page 0 was written with generation 1, page 1 never.
    fn model() -> Model {
        let mut m = Model::new(2);
        let g = m.next_generation();
        m.record_write(PageRange(0, 1), g);
        m
    }

    #[test]
    fn round_data_may_be_old_new_or_a_new_prefix() {
        let m = model();
        let range = PageRange(0, 2);
        let old = {
            let mut w = Model::pattern(1, PageRange(0, 1));
            w.extend(vec![0; WORDS_PER_PAGE]);
            w
        };
        let new = Model::pattern(2, range);
        assert_eq!(check_round_data(&m, range, 2, 2, &old), Ok(()));
        assert_eq!(check_round_data(&m, range, 2, 2, &new), Ok(()));
        // Migrated while the writer was half-way through each page.
        let mut mixed = new.clone();
        mixed[100..WORDS_PER_PAGE].copy_from_slice(&old[100..WORDS_PER_PAGE]);
        mixed[WORDS_PER_PAGE + 7..].fill(0);
        assert_eq!(check_round_data(&m, range, 2, 2, &mixed), Ok(()));
        // Only the range's pages are looked at.
        let mut junk_after = new.clone();
        junk_after.extend(vec![0xdead; WORDS_PER_PAGE]);
        assert_eq!(check_round_data(&m, range, 2, 2, &junk_after), Ok(()));
    }

    #[test]
    fn round_data_errors() {
        let m = model();
        let range = PageRange(0, 2);
        let mut data = Model::pattern(2, range);
        data[WORDS_PER_PAGE + 3] = 0xdead;
        assert_eq!(
            check_round_data(&m, range, 2, 2, &data).unwrap_err(),
            "page 1 word 3 is 0x000000000000dead, neither the data before the round (0x0 \
             (zero)) nor this round's (0x0002000000010003 (generation 2, page 1, word 3)) \
             (1 of 2 pages differ)"
        );
        // New data after old data in the same page: not a snapshot of one
        // moment of the writer's progress.
        let mut torn = Model::pattern(1, PageRange(0, 1));
        torn[5] = pattern_word(2, 0, 5);
        let err = check_round_data(&m, PageRange(0, 1), 2, 1, &torn).unwrap_err();
        assert!(
            err.starts_with(
                "page 0 word 5 holds this round's data (0x0002000000000005 (generation 2, \
                 page 0, word 5)) although word 0 before it holds the older data"
            ),
            "{err}"
        );
        // A successful migration read back every page of the range.
        let data = Model::pattern(2, range);
        for cpages in [0, 1, 3] {
            assert_eq!(
                check_round_data(&m, range, 2, cpages, &data).unwrap_err(),
                format!(
                    "the ioctl succeeded with cpages {cpages}, not the 2 pages of the range: \
                     test_hmm reads the whole range back (dmirror_do_read()) and fails with \
                     ENOENT at any page not on the device"
                )
            );
        }
        assert_eq!(check_round_data(&m, range, 2, 2, &data), Ok(()));
    }

    #[test]
    fn too_few_complete_rounds_fail() {
        let mut t = Tally::default();
        for _ in 0..12 {
            t.count(Ok(64)).unwrap();
        }
        for _ in 0..188 {
            t.count(Err(libc::ENOENT)).unwrap();
        }
        assert_eq!(t.at_least_complete(12), Ok(()));
        assert_eq!(t.at_least_complete(1), Ok(()));
        assert_eq!(
            t.at_least_complete(20).unwrap_err(),
            "only 12 of 200 rounds migrated every page; the scenario asks for at least 20 (200 \
             rounds: 12 migrations complete, 188 partial (ENOENT))"
        );
        let mut one = Tally::default();
        one.count(Err(libc::EBUSY)).unwrap();
        assert_eq!(
            one.at_least_complete(1).unwrap_err(),
            "only 0 of 1 round migrated every page; the scenario asks for at least 1 (1 round: 0 \
             migrations complete, 0 partial (ENOENT), 1 busy (EBUSY))"
        );
    }
}
