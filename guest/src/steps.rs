//! Running a `kind = "steps"` scenario: map, populate, then each step's ioctl
//! or CPU access, checked against the step's expectations and the content
//! model. One `step` record per step; the first step that does not pass ends
//! the scenario.

use std::thread;

use hmmlab_proto::op::{Checks, Errno, Pages};
use hmmlab_proto::scenario::{
    DeviceKind, Mapping, Op, PageRange, Populate, Scenario, StateExpect, Step, Touch,
};
use hmmlab_proto::state::{parse_expected, state_name};
use hmmlab_proto::{Outcome, Record};

use crate::abi::{Command, HmmDmirrorCmd};
use crate::child::{self, Verdict};
use crate::dmirror::Dmirror;
use crate::fork::{ChildError, Forks};
use crate::mapping::{Access, Mapped, PAGE_SIZE, WORDS_PER_PAGE};
use crate::model::Model;
use crate::race::{self, Crew};
use crate::refs::{Pins, Pipes};
use crate::results::Results;
use crate::sysnames::describe_errno;
use crate::system::monotonic_ns;
use crate::thpstats::ThpStats;
use crate::uffd::{describe_msg, Userfaultfd};

pub fn run(name: &str, scenario: &Scenario, results: &Results) -> Verdict {
    let kind = scenario.device.unwrap_or(DeviceKind::Private);
    let dev = match Dmirror::open(kind) {
        Ok(dev) => dev,
        Err(e) => return Verdict::error(e),
    };
    // test_hmm's other device of the kind, for steps with `mirror = 1`:
    // opened here, before the mapping, like every buffer (see run_on).
    let other = if scenario.step.iter().any(|s| s.mirror == Some(1)) {
        match Dmirror::open_minor(kind.first_minor() + 1) {
            Ok(d) => Some(d),
            Err(e) => return Verdict::error(format!("mirror = 1: {e}")),
        }
    } else {
        None
    };
    run_on(name, scenario, &dev, other.as_ref(), results)
}

fn run_on(
    name: &str,
    scenario: &Scenario,
    dev: &Dmirror,
    other: Option<&Dmirror>,
    results: &Results,
) -> Verdict {
    let Some(spec) = &scenario.mapping else {
        return Verdict::error("a steps scenario needs a [mapping]");
    };
    // Every buffer the steps use is allocated here, before the test mapping
    // exists, and freed only after the last step: an munmap next to the
    // mapping during the steps would invalidate test_hmm's mirror entries
    // for a neighbouring page (its invalidation range is inclusive), which
    // changes what later device reads do.
    // The pipes of the hold-refs steps and the gup_test files of the
    // pin-pages steps, too (refs.rs).
    let (pipes, pins) = match (
        Pipes::prepare(&scenario.step),
        Pins::prepare(&scenario.step),
    ) {
        (Ok(pipes), Ok(pins)) => (pipes, pins),
        (Err(e), _) | (_, Err(e)) => return Verdict::error(e),
    };
    let forks = match Forks::prepare(&scenario.step) {
        Ok(forks) => forks,
        Err(e) => return Verdict::error(e),
    };
    // The THP counters of the check-thp-stats steps, as they are before
    // anything is mapped.
    let thp_stats = match ThpStats::prepare(&scenario.step) {
        Ok(s) => s,
        Err(e) => return Verdict::error(format!("check-thp-stats: {e}")),
    };
    // Where the fail_kernel_alloc steps' functions are (/proc/kallsyms).
    let places = match crate::faultinject::Places::prepare(&scenario.step) {
        Ok(p) => p,
        Err(e) => return Verdict::error(format!("fail_kernel_alloc: {e}")),
    };
    let mut scratch = Scratch {
        places,
        words: vec![0u64; spec.pages as usize * WORDS_PER_PAGE],
        states: vec![0u8; spec.pages as usize],
        pipes,
        pins,
        forks,
        thp_stats,
    };
    // The same goes for threads, which map stacks: migrate-race's two
    // threads start here and end only after the mapping is gone (race.rs).
    let shared = race::Shared::new();
    let races = scenario.step.iter().any(|s| s.op == Op::MigrateRace);
    thread::scope(|scope| {
        let crew = if races {
            match Crew::start(scope, &shared, dev) {
                Ok(crew) => Some(crew),
                Err(e) => return Verdict::error(e),
            }
        } else {
            None
        };
        // `crew` is dropped (its threads end) after this has unmapped the
        // mapping.
        run_mapped(
            name,
            scenario,
            spec,
            dev,
            other,
            results,
            &mut scratch,
            crew.as_ref(),
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn run_mapped(
    name: &str,
    scenario: &Scenario,
    spec: &Mapping,
    dev: &Dmirror,
    other: Option<&Dmirror>,
    results: &Results,
    scratch: &mut Scratch,
    crew: Option<&Crew>,
) -> Verdict {
    let map = match Mapped::create(spec) {
        Ok(map) => map,
        Err(e) => return Verdict::error(e),
    };
    let mut model = Model::new(spec.pages);
    if let Err(e) = populate(&map, &mut model, &scenario.populate) {
        return Verdict::error(format!("populate: {e}"));
    }
    // Registered after populating, so that the populated pages exist and
    // the holes stay holes. Nobody serves the fd: from here on, a CPU access
    // to a hole blocks in the kernel for good, and only the scenario's
    // timeout ends it. Not touching holes from the CPU (cpu-read, cpu-write,
    // migrate-race over them) is up to the scenario. Dropped (closed) before
    // the mapping is unmapped.
    let uffd = if spec.userfaultfd {
        match Userfaultfd::register_missing(map.addr(0), map.pages() * PAGE_SIZE) {
            Ok(uffd) => Some(uffd),
            Err(e) => return Verdict::error(format!("userfaultfd: {e}")),
        }
    } else {
        None
    };

    let mut cx = Ctx {
        dev,
        other,
        map: &map,
        model: &mut model,
        scratch,
        uffd: uffd.as_ref(),
        crew,
        wp: None,
    };
    for (index, step) in scenario.step.iter().enumerate() {
        let range = step.pages.unwrap_or(PageRange(0, map.pages()));
        let mut m = Measured::default();
        let result = cx.run_step_failing(index, step, range, &mut m);
        results.emit(&Record::Step {
            scenario: name.to_string(),
            index: index as u32,
            op: step.op,
            outcome: result
                .as_ref()
                .map_or_else(|f| f.outcome, |()| Outcome::Pass),
            duration_ns: m.duration_ns,
            pages: range.len(),
            cpages: m.cpages,
            faults: m.faults,
            message: match &result {
                Err(f) => Some(f.message.clone()),
                Ok(()) => m.message.take(),
            },
        });
        if let Err(f) = result {
            return Verdict::with(
                f.outcome,
                format!("step {index} ({}): {}", step.op.as_str(), f.message),
            );
        }
    }
    // A forked child must end as it should: its pages and its checks were
    // fine up to its last step.
    if let Err(e) = cx.scratch.forks.finish() {
        return Verdict::with(Outcome::Fail, e);
    }
    Verdict::pass()
}

fn populate(map: &Mapped, model: &mut Model, list: &[Populate]) -> Result<(), String> {
    for p in list {
        check_range(p.pages, map.pages())?;
        match p.how {
            Touch::Write => {
                if !map.writable() {
                    return Err("cannot populate a read-only mapping by writing".into());
                }
                let generation = model.next_generation();
                map.write_words(p.pages, &Model::pattern(generation, p.pages));
                model.record_write(p.pages, generation);
            }
            Touch::Read => map.touch_read(p.pages),
        }
    }
    Ok(())
}

fn check_range(range: PageRange, pages: u64) -> Result<(), String> {
    if range.is_empty() || range.end() > pages {
        return Err(format!(
            "page range [{}, {}) is empty or outside the {pages}-page mapping",
            range.start(),
            range.end()
        ));
    }
    Ok(())
}

/// Why a step did not pass: `Fail` for behaviour that differs from the
/// expectation, `Error` for a step that cannot be carried out as written.
#[derive(Debug, PartialEq, Eq)]
struct Failure {
    outcome: Outcome,
    message: String,
}

impl Failure {
    fn fail(message: impl Into<String>) -> Failure {
        Failure {
            outcome: Outcome::Fail,
            message: message.into(),
        }
    }
    fn error(message: impl Into<String>) -> Failure {
        Failure {
            outcome: Outcome::Error,
            message: message.into(),
        }
    }
}

/// What a step's record reports besides its outcome. The duration covers the
/// ioctl or the CPU access only, not preparing buffers or checking them.
#[derive(Debug, Default)]
struct Measured {
    duration_ns: u64,
    cpages: Option<u64>,
    faults: Option<u64>,
    /// A note for a step that passed.
    message: Option<String>,
}

/// Buffers for the ioctls and CPU reads, sized for the whole mapping, the
/// pipes of the hold-refs steps and the gup_test files of the pin-pages
/// steps.
struct Scratch {
    /// The functions of the steps' `fail_kernel_alloc` (faultinject.rs).
    places: crate::faultinject::Places,
    words: Vec<u64>,
    states: Vec<u8>,
    pipes: Pipes,
    pins: Pins,
    /// The child of a `fork` step (fork.rs).
    forks: Forks,
    /// The THP counters when the scenario began (thpstats.rs).
    thp_stats: ThpStats,
}

struct Ctx<'a> {
    dev: &'a Dmirror,
    /// test_hmm's other device of the kind (`mirror = 1`), when a step uses it.
    other: Option<&'a Dmirror>,
    map: &'a Mapped,
    model: &'a mut Model,
    scratch: &'a mut Scratch,
    /// The mapping's userfaultfd, with `userfaultfd = true`.
    uffd: Option<&'a Userfaultfd>,
    /// migrate-race's threads, when the scenario has such a step.
    crew: Option<&'a Crew<'a>>,
    /// The userfaultfd of the `write-protect` steps, the whole mapping
    /// registered in WP mode at the first; closed (with `Ctx`) before the
    /// mapping is unmapped.
    wp: Option<Userfaultfd>,
}

impl Ctx<'_> {
    /// The step, with the allocations its `fail_kernel_alloc` names made
    /// to fail while it runs (faultinject.rs). A step during which none
    /// failed fails: what the scenario is about did not happen.
    fn run_step_failing(
        &mut self,
        index: usize,
        step: &Step,
        range: PageRange,
        m: &mut Measured,
    ) -> Result<(), Failure> {
        let Some(f) = &step.fail_kernel_alloc else {
            return self.run_step(step, range, m);
        };
        let Some(text) = self.scratch.places.get(index) else {
            return Err(Failure::error(
                "fail_kernel_alloc: the function was not looked up before the mapping",
            ));
        };
        let armed = crate::faultinject::arm(f, text).map_err(Failure::error)?;
        let result = self.run_step(step, range, m);
        let failed = armed.disarm().map_err(Failure::error)?;
        // Said whatever the step's result, so that a failure shows whether
        // the allocations failed at all.
        let said = crate::faultinject::describe(f, failed);
        if let Err(mut fail) = result {
            fail.message = format!("{}; {said}", fail.message);
            return Err(fail);
        }
        if let Err(e) = crate::faultinject::judge(f, failed) {
            return Err(Failure::fail(e));
        }
        m.message = Some(match m.message.take() {
            Some(msg) => format!("{msg}; {said}"),
            None => said,
        });
        Ok(())
    }

    fn run_step(&mut self, step: &Step, range: PageRange, m: &mut Measured) -> Result<(), Failure> {
        check_range(range, self.map.pages()).map_err(Failure::error)?;
        check_applicable(step)?;
        match step.op {
            Op::MigrateToDevice
            | Op::MigrateToSystem
            | Op::Snapshot
            | Op::DeviceRead
            | Op::DeviceReadUnlocked
            | Op::DeviceWrite
            | Op::FailAlloc
            | Op::Release
            | Op::MigrateVdso => self.device_step(step, range, m),
            Op::CpuRead | Op::CpuWrite => self.cpu_step(step, range, m),
            Op::MigrateRace => self.migrate_race(step, range, m),
            Op::Munmap | Op::Mprotect | Op::UnmapNeighbour | Op::Discard | Op::PageOut => {
                self.vma_step(step, range, m)
            }
            Op::UserfaultfdIdle => self.userfaultfd_idle(m),
            Op::HoldRefs | Op::DropRefs | Op::PinPages | Op::UnpinPages => {
                self.refs_step(step, range, m)
            }
            Op::Fork | Op::ChildRead | Op::ChildWrite => self.fork_step(step, range, m),
            Op::WriteProtect | Op::CheckWriteProtected => self.wp_step(step, range, m),
            Op::CheckFile => self.check_file(m),
            Op::CheckPageFlags => self.check_page_flags(step, range, m),
            Op::CheckThpStats => self.check_thp_stats(step, m),
            Op::CheckSmaps => self.check_smaps(step, m),
            // Tests of the harness itself. `hang` blocks until the
            // scenario's timeout kills this process, so its record is never
            // sent; `hang-guest` ends this process with the status that
            // makes PID 1 stop answering (child.rs).
            Op::Hang => child::block_forever(),
            Op::HangGuest => child::exit_hang_guest(),
        }
    }

    /// A step that issues the dmirror command the op table names.
    fn device_step(
        &mut self,
        step: &Step,
        range: PageRange,
        m: &mut Measured,
    ) -> Result<(), Failure> {
        let Some(command) = Command::of(step.op) else {
            let op = step.op.as_str();
            return Err(Failure::error(format!("{op} names no dmirror command")));
        };
        match step.op {
            Op::MigrateToDevice | Op::DeviceRead | Op::DeviceReadUnlocked => {
                let ptr = self.scratch.words.as_mut_ptr() as u64;
                if let Some(cmd) = self.ioctl(command, step, range, ptr, m)? {
                    self.check_data(range, cmd.cpages, &self.scratch.words[..words_in(range)])?;
                }
            }
            Op::MigrateToSystem | Op::Release => {
                // test_hmm does not use `ptr` for these commands; release
                // does not use `addr` and `npages` either, beyond checking
                // them (page-aligned, at least one page).
                self.ioctl(command, step, range, 0, m)?;
            }
            Op::Snapshot => {
                let ptr = self.scratch.states.as_mut_ptr() as u64;
                if self.ioctl(command, step, range, ptr, m)?.is_some() {
                    let states = &self.scratch.states[..range.len() as usize];
                    check_states(&step.expect, range, states)?;
                }
            }
            Op::DeviceWrite => {
                let generation = self.model.next_generation();
                Model::fill_pattern(generation, range, &mut self.scratch.words);
                let ptr = self.scratch.words.as_ptr() as u64;
                if self.ioctl(command, step, range, ptr, m)?.is_some() {
                    self.model.record_write(range, generation);
                }
            }
            Op::FailAlloc => {
                // test_hmm takes the flags in `npages`; `addr` only has to
                // be page-aligned, `ptr` is not used.
                let flags = crate::abi::HMM_DMIRROR_FLAG_FAIL_ALLOC;
                let t0 = monotonic_ns();
                let result = self.call_newer(command, self.map.addr(0), 0, flags);
                m.duration_ns = monotonic_ns() - t0;
                result?;
            }
            Op::MigrateVdso => {
                // One page, so the scratch buffer (a page at least) holds
                // whatever a kernel that let it through would read back.
                let addr = vdso_base().map_err(Failure::error)?;
                let ptr = self.scratch.words.as_mut_ptr() as u64;
                self.ioctl_at(command, step, addr, 1, ptr, m)?;
            }
            op => return Err(Failure::error(format!("{} is no device step", op.as_str()))),
        }
        Ok(())
    }

    /// cpu-read and cpu-write, checked against the content model.
    fn cpu_step(&mut self, step: &Step, range: PageRange, m: &mut Measured) -> Result<(), Failure> {
        let write = step.op.cpu_writes();
        if write && !self.map.writable() && self.map.refuses(range, true).is_some() {
            return Err(Failure::error(format!(
                "{} on a read-only mapping",
                step.op.as_str()
            )));
        }
        self.cpu_may(step.op, range, write)?;
        if write {
            let generation = self.model.next_generation();
            let buf = Model::pattern(generation, range);
            let t0 = monotonic_ns();
            self.map.write_words(range, &buf);
            m.duration_ns = monotonic_ns() - t0;
            self.model.record_write(range, generation);
        } else {
            let buf = &mut self.scratch.words[..words_in(range)];
            let t0 = monotonic_ns();
            self.map.read_words(range, buf);
            m.duration_ns = monotonic_ns() - t0;
            self.model
                .check(range.start(), buf)
                .map_err(Failure::fail)?;
        }
        Ok(())
    }

    fn migrate_race(
        &mut self,
        step: &Step,
        range: PageRange,
        m: &mut Measured,
    ) -> Result<(), Failure> {
        let rounds = match step.iterations {
            Some(n) if n > 0 => n,
            _ => return Err(Failure::error("migrate-race needs `iterations`, 1 or more")),
        };
        let min_complete = match step.min_complete {
            Some(n) if (1..=rounds).contains(&n) => n,
            _ => {
                return Err(Failure::error(format!(
                    "migrate-race needs `min_complete`, 1 to `iterations` ({rounds})"
                )))
            }
        };
        if !self.map.writable() {
            return Err(Failure::error("migrate-race on a read-only mapping"));
        }
        self.cpu_may(step.op, range, true)?;
        let Some(crew) = self.crew else {
            return Err(Failure::error(
                "migrate-race without its threads (not started for this scenario)",
            ));
        };
        let run = race::run(
            crew,
            self.map.addr(0),
            range,
            rounds,
            self.model,
            &mut self.scratch.words,
        );
        m.duration_ns = run.duration_ns;
        m.cpages = Some(run.tally.cpages);
        if let Some(failure) = run.failure {
            return Err(Failure::fail(failure));
        }
        run.tally
            .at_least_complete(min_complete)
            .map_err(Failure::fail)?;
        m.message = Some(run.tally.summary());
        Ok(())
    }

    /// munmap, mprotect, unmap-neighbour, discard and page-out: VMA changes
    /// (or advice) that must succeed.
    fn vma_step(&mut self, step: &Step, range: PageRange, m: &mut Measured) -> Result<(), Failure> {
        let t0 = monotonic_ns();
        match (step.op, step.prot) {
            (Op::Munmap, _) => self.map.unmap(range),
            (Op::Mprotect, Some(prot)) => self.map.protect(range, prot),
            (Op::Mprotect, None) => Err("mprotect needs `prot`".to_string()),
            (Op::UnmapNeighbour, _) => self.map.unmap_neighbour(),
            (Op::Discard, _) => self.map.discard(range).map(|()| self.model.forget(range)),
            (Op::PageOut, _) => crate::swap::ready().and_then(|()| self.map.page_out(range)),
            (op, _) => Err(format!("{} is no VMA change", op.as_str())),
        }
        .map_err(Failure::error)?;
        m.duration_ns = monotonic_ns() - t0;
        Ok(())
    }

    /// hold-refs, drop-refs, pin-pages and unpin-pages: references and
    /// pins on the pages that no mapping accounts for (refs.rs). vmsplice
    /// and pin_user_pages() read the pages as the CPU would, so an unmapped
    /// page is refused like a CPU read of it.
    fn refs_step(
        &mut self,
        step: &Step,
        range: PageRange,
        m: &mut Measured,
    ) -> Result<(), Failure> {
        if step.op.holds_refs() {
            self.cpu_may(step.op, range, false)?;
        }
        let addr = self.map.addr(range.start());
        let t0 = monotonic_ns();
        let note = match step.op {
            Op::HoldRefs => self.scratch.pipes.hold(addr, range).map_err(Failure::error),
            Op::DropRefs => self.scratch.pipes.drop_all().map_err(Failure::error),
            Op::PinPages => judge_pin(step, self.scratch.pins.pin(addr, range)),
            Op::UnpinPages => self.scratch.pins.unpin_all().map_err(Failure::error),
            op => Err(Failure::error(format!(
                "{} holds no references",
                op.as_str()
            ))),
        }?;
        m.duration_ns = monotonic_ns() - t0;
        m.message = Some(note);
        Ok(())
    }

    /// fork, child-read and child-write (fork.rs). The child reads and
    /// writes as the CPU would, so the pages must be mapped for it.
    fn fork_step(
        &mut self,
        step: &Step,
        range: PageRange,
        m: &mut Measured,
    ) -> Result<(), Failure> {
        let t0 = monotonic_ns();
        let note = match step.op {
            Op::Fork => self
                .scratch
                .forks
                .fork(self.map, self.model, &mut self.scratch.words)
                .map_err(Failure::error)?,
            op => {
                let writes = op == Op::ChildWrite;
                self.cpu_may(op, range, writes)?;
                self.scratch.forks.ask(writes, range).map_err(|e| match e {
                    ChildError::Setup(e) => Failure::error(e),
                    ChildError::Failed(e) => Failure::fail(e),
                })?
            }
        };
        m.duration_ns = monotonic_ns() - t0;
        if !note.is_empty() {
            m.message = Some(note);
        }
        Ok(())
    }

    /// write-protect (userfaultfd WP) and check-write-protected (pagemap).
    fn wp_step(&mut self, step: &Step, range: PageRange, m: &mut Measured) -> Result<(), Failure> {
        let t0 = monotonic_ns();
        if step.op == Op::WriteProtect {
            if self.wp.is_none() {
                let uffd = Userfaultfd::register_wp(self.map.addr(0), self.map.pages() * PAGE_SIZE)
                    .map_err(Failure::error)?;
                self.wp = Some(uffd);
            }
            let uffd = self.wp.as_ref().expect("registered above");
            uffd.write_protect(self.map.addr(range.start()), range.len() * PAGE_SIZE)
                .map_err(Failure::error)?;
        } else {
            let flags = crate::pagemap::read(self.map.addr(range.start()), range.len())
                .map_err(Failure::error)?;
            crate::pagemap::all_write_protected(range.start(), &flags).map_err(Failure::fail)?;
        }
        m.duration_ns = monotonic_ns() - t0;
        Ok(())
    }

    /// check-file: pread(2) the whole file behind a `file-private`
    /// mapping, into the scratch buffer (the mapping's size, allocated
    /// before the mapping like every buffer), and find every byte zero. It
    /// reads the file, not the mapping: the content model does not change,
    /// and unmapped pages do not matter.
    fn check_file(&mut self, m: &mut Measured) -> Result<(), Failure> {
        if !self.map.has_file() {
            return Err(Failure::error(
                "check-file needs a file-private mapping: an anonymous mapping has no file to read",
            ));
        }
        let buf = &mut self.scratch.words[..words_in(PageRange(0, self.map.pages()))];
        let t0 = monotonic_ns();
        let read = self.map.read_file(buf);
        m.duration_ns = monotonic_ns() - t0;
        read.map_err(Failure::fail)?;
        file_reads_zeros(buf).map_err(Failure::fail)
    }

    /// check-page-flags: each page's PFN from /proc/self/pagemap (the
    /// whole range in one read), then that PFN's flags in /proc/kpageflags
    /// (pagemap.rs), held against `set` and `clear`. Both go into the
    /// scratch buffer (the mapping's size in words, so room for two words
    /// per page), allocated before the mapping like every buffer. It reads
    /// /proc files, not the mapping: the content model does not change.
    /// An unmapped page is refused like a CPU read of it: it has no page.
    fn check_page_flags(
        &mut self,
        step: &Step,
        range: PageRange,
        m: &mut Measured,
    ) -> Result<(), Failure> {
        use crate::pagemap::{self, FlagsProblem, KpageFlags};
        self.cpu_may(step.op, range, false)?;
        let n = range.len() as usize;
        let (entries, rest) = self.scratch.words.split_at_mut(n);
        let flags = &mut rest[..n];
        let t0 = monotonic_ns();
        let kpf = KpageFlags::open().map_err(Failure::error)?;
        pagemap::read_into(self.map.addr(range.start()), entries).map_err(Failure::error)?;
        let result = pagemap::check_page_flags(
            range.start(),
            entries,
            flags,
            |pfn| kpf.read(pfn),
            step.set.as_deref().unwrap_or_default(),
            step.clear.as_deref().unwrap_or_default(),
        );
        m.duration_ns = monotonic_ns() - t0;
        result.map_err(|p| match p {
            FlagsProblem::Unreadable(e) => Failure::error(e),
            FlagsProblem::Differs(e) => Failure::fail(e),
        })
    }

    fn check_thp_stats(&mut self, step: &Step, m: &mut Measured) -> Result<(), Failure> {
        use crate::thpstats::{read, StatsProblem};
        let Some(want) = &step.thp_stats else {
            return Err(Failure::error("check-thp-stats needs `thp_stats`"));
        };
        let t0 = monotonic_ns();
        let result = self.scratch.thp_stats.check(want, read);
        m.duration_ns = monotonic_ns() - t0;
        result.map_err(|p| match p {
            StatsProblem::Unreadable(e) => Failure::error(e),
            StatsProblem::Differs(e) => Failure::fail(e),
        })
    }

    fn check_smaps(&mut self, step: &Step, m: &mut Measured) -> Result<(), Failure> {
        use crate::smaps::{read_and_check, SmapsProblem};
        let Some(want) = &step.smaps else {
            return Err(Failure::error("check-smaps needs `smaps`"));
        };
        let pages = self.map.pages();
        let t0 = monotonic_ns();
        let result = read_and_check(self.map.addr(0), self.map.addr(pages), want);
        m.duration_ns = monotonic_ns() - t0;
        result.map_err(|p| match p {
            SmapsProblem::Unreadable(e) => Failure::error(e),
            SmapsProblem::Differs(e) => Failure::fail(e),
        })
    }

    fn userfaultfd_idle(&mut self, m: &mut Measured) -> Result<(), Failure> {
        let Some(uffd) = self.uffd else {
            return Err(Failure::error(
                "userfaultfd-idle needs a mapping with `userfaultfd = true`",
            ));
        };
        let t0 = monotonic_ns();
        let event = uffd.read_event().map_err(Failure::error)?;
        m.duration_ns = monotonic_ns() - t0;
        if let Some(msg) = event {
            return Err(Failure::fail(format!(
                "the userfaultfd has a pending {}",
                describe_msg(&msg, self.map.addr(0), self.map.pages())
            )));
        }
        Ok(())
    }

    /// A CPU access to `range` must not touch a page a `munmap` step
    /// unmapped, nor write one an `mprotect` step made read-only: it would
    /// kill the scenario with SIGSEGV.
    fn cpu_may(&self, op: Op, range: PageRange, write: bool) -> Result<(), Failure> {
        match self.map.refuses(range, write) {
            None => Ok(()),
            Some((page, Access::Unmapped)) => Err(Failure::error(format!(
                "{} of page {page}, which a munmap step unmapped",
                op.as_str()
            ))),
            Some((page, _)) => Err(Failure::error(format!(
                "{} of page {page}, which an mprotect step made read-only",
                op.as_str()
            ))),
        }
    }

    /// A command only newer test_hmm has (HMM_DMIRROR_FLAGS, …): refused
    /// when the header the guest was built against lacks it, and an EINVAL
    /// (what older test_hmm answers to a command it does not know) is said
    /// to be that, not a migration failure.
    fn call_newer(
        &self,
        command: Command,
        addr: u64,
        ptr: u64,
        npages: u64,
    ) -> Result<HmmDmirrorCmd, Failure> {
        let header = Command::checked_header().unwrap_or("the kernel's lib/test_hmm_uapi.h");
        if command.defined() == Some(false) {
            return Err(Failure::error(format!(
                "{} is not defined in {header}: this kernel's test_hmm does not have it; \
                 give the scenario a [requires] kernel condition",
                command.name()
            )));
        }
        self.dev.call(command, addr, ptr, npages).map_err(|errno| {
            if errno == libc::EINVAL {
                Failure::error(format!(
                    "ioctl {} failed: {}; test_hmm answers so to a command it does not know \
                     (checked header: {header})",
                    command.name(),
                    describe_errno(errno)
                ))
            } else {
                Failure::fail(format!(
                    "ioctl {} failed: {}",
                    command.name(),
                    describe_errno(errno)
                ))
            }
        })
    }

    /// Issue the step's ioctl, timed, and judge the result. `Some(cmd)`: it
    /// succeeded as expected, check on; `None`: it failed as expected.
    fn ioctl(
        &self,
        command: Command,
        step: &Step,
        range: PageRange,
        ptr: u64,
        m: &mut Measured,
    ) -> Result<Option<HmmDmirrorCmd>, Failure> {
        let addr = self.map.addr(range.start());
        self.ioctl_at(command, step, addr, range.len(), ptr, m)
    }

    /// The same for `npages` pages at `addr`, which may lie outside the
    /// mapping (`migrate-vdso`).
    fn ioctl_at(
        &self,
        command: Command,
        step: &Step,
        addr: u64,
        npages: u64,
        ptr: u64,
        m: &mut Measured,
    ) -> Result<Option<HmmDmirrorCmd>, Failure> {
        if command.defined() == Some(false) {
            let header = Command::checked_header().unwrap_or("the kernel's lib/test_hmm_uapi.h");
            return Err(Failure::error(format!(
                "{} is not defined in {header}: this kernel's test_hmm does not have it; \
                 give the scenario a [requires] kernel condition",
                command.name()
            )));
        }
        let dev = match (step.mirror.unwrap_or(0), self.other) {
            (0, _) => self.dev,
            (1, Some(other)) => other,
            (n, _) => {
                return Err(Failure::error(format!(
                    "mirror = {n}: test_hmm's device {n} of the kind is not open (0 or 1)"
                )))
            }
        };
        let t0 = monotonic_ns();
        let result = dev.call(command, addr, ptr, npages);
        m.duration_ns = monotonic_ns() - t0;
        if let (Ok(cmd), true) = (&result, step.op.rules().checks.cpages) {
            m.cpages = Some(cmd.cpages);
            if step.op.reports_faults() {
                m.faults = Some(cmd.faults);
            }
        }
        judge(command, step, result)
    }

    /// The data a device command returned: its first `cpages` pages.
    fn check_data(&self, range: PageRange, cpages: u64, buf: &[u64]) -> Result<(), Failure> {
        if cpages > range.len() {
            return Err(Failure::fail(format!(
                "cpages {cpages} exceeds the {} pages asked for",
                range.len()
            )));
        }
        let words = &buf[..cpages as usize * WORDS_PER_PAGE];
        self.model
            .check(range.start(), words)
            .map_err(Failure::fail)
    }
}

/// Where the kernel mapped this process's vdso (its ELF header is the
/// mapping's first page).
fn vdso_base() -> Result<u64, String> {
    // SAFETY: getauxval reads the process's auxiliary vector.
    let base = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) };
    if base == 0 {
        return Err(
            "this process has no vdso (AT_SYSINFO_EHDR is 0): the kernel was booted \
                    with vdso=0 or built without one"
                .to_string(),
        );
    }
    Ok(base)
}

/// The backing file of a private mapping, read whole into `words`: every
/// byte zero, or the first that is not, by page and byte.
fn file_reads_zeros(words: &[u64]) -> Result<(), String> {
    let Some(at) = words.iter().position(|&w| w != 0) else {
        return Ok(());
    };
    // The bytes in file order: the buffer's memory order.
    let bytes = words[at].to_ne_bytes();
    let (i, byte) = bytes.iter().enumerate().find(|(_, b)| **b != 0).unwrap();
    let offset = at as u64 * 8 + i as u64;
    Err(format!(
        "the backing file's page {} reads {byte:#04x} at byte {}: a private mapping must leave \
         its file as it was (all zeros)",
        offset / PAGE_SIZE,
        offset % PAGE_SIZE
    ))
}

fn words_in(range: PageRange) -> usize {
    range.len() as usize * WORDS_PER_PAGE
}

/// Refuse fields a step cannot use or check, rather than ignore them: the
/// op table says which fields each op takes.
fn check_applicable(step: &Step) -> Result<(), Failure> {
    let op = step.op.as_str();
    let rules = step.op.rules();
    let checks = rules.checks;
    let refuse = |m: String| Err(Failure::error(m));
    match (rules.pages, step.pages) {
        (Pages::None { .. }, Some(_)) => {
            return refuse(format!("{op} works on no pages: `pages` does not apply"))
        }
        (Pages::Required { .. }, None) => return refuse(format!("{op} needs `pages`")),
        _ => {}
    }
    match (checks.prot, step.prot) {
        (true, None) => return refuse(format!("{op} needs `prot`")),
        (false, Some(_)) => {
            let with = ops_with(|c| c.prot);
            return refuse(format!("`prot` applies to {with} steps, not {op}"));
        }
        _ => {}
    }
    if checks.page_flags {
        let (set, clear) = (step.set.as_deref(), step.clear.as_deref());
        let (set, clear) = (set.unwrap_or_default(), clear.unwrap_or_default());
        if set.is_empty() && clear.is_empty() {
            return refuse(format!("{op} needs a flag in `set` or `clear`"));
        }
        if let Some(f) = set.iter().find(|f| clear.contains(f)) {
            return refuse(format!("{f} is in both `set` and `clear`"));
        }
    } else if step.set.is_some() || step.clear.is_some() {
        let with = ops_with(|c| c.page_flags);
        return refuse(format!("`set` and `clear` apply to {with} steps, not {op}"));
    }
    let thp_stats = step.thp_stats.as_ref().map(|m| m.len());
    named_table(
        op,
        &checks,
        "thp_stats",
        "a counter",
        |c| c.thp_stats,
        thp_stats,
    )
    .map_err(Failure::error)?;
    let smaps = step.smaps.as_ref().map(|m| m.len());
    named_table(op, &checks, "smaps", "a field", |c| c.smaps, smaps).map_err(Failure::error)?;
    if !step.expect.is_empty() && !checks.states {
        let with = ops_with(|c| c.states);
        return refuse(format!("`expect` applies to {with} steps, not {op}"));
    }
    if step.iterations.is_some() && !checks.iterations {
        let with = ops_with(|c| c.iterations);
        return refuse(format!("`iterations` applies to {with} steps, not {op}"));
    }
    if step.min_complete.is_some() && !checks.min_complete {
        let with = ops_with(|c| c.min_complete);
        return refuse(format!("`min_complete` applies to {with} steps, not {op}"));
    }
    let counts = step.expect_cpages.is_some() || step.expect_faults.is_some();
    let errno_or_counts = counts || step.expect_errno.is_some();
    const FIELDS: &str = "expect_errno, expect_cpages and expect_faults do not apply";
    match checks.errno {
        Errno::Ioctl => {}
        _ if !errno_or_counts => {}
        // migrate-race issues ioctls too, but judges them itself.
        Errno::OwnCheck { why } if rules.command.is_some() => {
            return refuse(format!("{why}; {FIELDS}"))
        }
        Errno::OwnCheck { .. } | Errno::NoIoctl => {
            return refuse(format!("{op} issues no ioctl: {FIELDS}"))
        }
    }
    if expected_errno(step).is_some() && (counts || !step.expect.is_empty()) {
        return Err(Failure::error(
            "with expect_errno, nothing else can be checked: test_hmm returns no counts or data \
             when an ioctl fails",
        ));
    }
    Ok(())
}

/// The ops whose checks take a field, for messages: `a, b and c`.
/// A field that is a table keyed by names (`thp_stats`, `smaps`, of which
/// `given` names this many): required, with `a_name` in it, by the ops that
/// take it, refused by the others.
fn named_table(
    op: &str,
    checks: &Checks,
    field: &str,
    a_name: &str,
    takes: fn(&Checks) -> bool,
    given: Option<usize>,
) -> Result<(), String> {
    match (takes(checks), given) {
        (true, None) => Err(format!("{op} needs `{field}`")),
        (true, Some(0)) => Err(format!("{op} needs {a_name} in `{field}`")),
        (false, Some(_)) => Err(format!(
            "`{field}` applies to {} steps, not {op}",
            ops_with(takes)
        )),
        _ => Ok(()),
    }
}

fn ops_with(takes: fn(&Checks) -> bool) -> String {
    let names: Vec<&str> = Op::ALL
        .into_iter()
        .filter(|op| takes(&op.rules().checks))
        .map(Op::as_str)
        .collect();
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => "no".to_string(),
    }
}

/// `expect_errno`, with 0 meaning success like its absence.
fn expected_errno(step: &Step) -> Option<i32> {
    step.expect_errno.filter(|&e| e != 0)
}

/// Hold a `pin-pages` step's result against its `expect_errno`. A pin
/// the kernel refuses is a failure (gup refuses to pin what it cannot
/// make pinnable: EBUSY when a device-coherent page cannot be moved out);
/// one the harness could not ask for is an error.
fn judge_pin(
    step: &Step,
    result: Result<String, crate::refs::PinError>,
) -> Result<String, Failure> {
    match (result, expected_errno(step)) {
        (Ok(note), None) => Ok(note),
        (Ok(note), Some(want)) => Err(Failure::fail(format!(
            "pin-pages succeeded ({note}), expected PIN_LONGTERM_TEST_START to fail with {}",
            describe_errno(want)
        ))),
        (Err(e), Some(want)) if e.errno == Some(want) => Ok(format!(
            "PIN_LONGTERM_TEST_START failed with {}, as expected: nothing pinned",
            describe_errno(want)
        )),
        (Err(e), Some(want)) if e.errno.is_some() => Err(Failure::fail(format!(
            "{}; expected {}",
            e.message,
            describe_errno(want)
        ))),
        (Err(e), None) if e.errno.is_some() => Err(Failure::fail(e.message)),
        (Err(e), _) => Err(Failure::error(e.message)),
    }
}

/// Hold an ioctl's result against `expect_errno`, `expect_cpages` and
/// `expect_faults`.
fn judge(
    command: Command,
    step: &Step,
    result: Result<HmmDmirrorCmd, i32>,
) -> Result<Option<HmmDmirrorCmd>, Failure> {
    let name = command.name();
    match (result, expected_errno(step)) {
        (Ok(cmd), None) => {
            if let Some(want) = step.expect_cpages.filter(|&w| w != cmd.cpages) {
                return Err(Failure::fail(format!(
                    "cpages: expected {want}, got {}",
                    cmd.cpages
                )));
            }
            if let Some(want) = step.expect_faults.filter(|&w| w != cmd.faults) {
                return Err(Failure::fail(format!(
                    "faults: expected {want}, got {}",
                    cmd.faults
                )));
            }
            Ok(Some(cmd))
        }
        (Ok(cmd), Some(want)) => Err(Failure::fail(format!(
            "ioctl {name} succeeded (cpages {}), expected it to fail with {}",
            cmd.cpages,
            describe_errno(want)
        ))),
        (Err(got), None) => Err(Failure::fail(format!(
            "ioctl {name} failed: {}",
            describe_errno(got)
        ))),
        (Err(got), Some(want)) if got == want => Ok(None),
        (Err(got), Some(want)) => Err(Failure::fail(format!(
            "ioctl {name} failed with {}, expected {}",
            describe_errno(got),
            describe_errno(want)
        ))),
    }
}

/// Compare snapshot bytes (`states[i]` is page `range.start() + i`) with the
/// step's expectations, whose page ranges are mapping-relative.
fn check_states(expect: &[StateExpect], range: PageRange, states: &[u8]) -> Result<(), Failure> {
    const SHOWN: usize = 4;
    let mut bad = Vec::new();
    let mut checked = 0;
    for e in expect {
        let want = parse_expected(&e.state).map_err(Failure::error)?;
        let (start, end) = (e.pages.start(), e.pages.end());
        if e.pages.is_empty() || start < range.start() || end > range.end() {
            return Err(Failure::error(format!(
                "expected states for pages [{start}, {end}) outside the snapshot's pages [{}, {})",
                range.start(),
                range.end()
            )));
        }
        let Some(want) = want else {
            // `any`: named, deliberately not checked.
            continue;
        };
        checked += e.pages.len();
        for page in start..end {
            let got = states[(page - range.start()) as usize];
            if got != want {
                bad.push(format!(
                    "page {page}: expected {} got {}",
                    state_name(want),
                    state_name(got)
                ));
            }
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    let more = match bad.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!(", and {n} more"),
    };
    Err(Failure::fail(format!(
        "{} of {checked} pages in an unexpected state: {}{more}",
        bad.len(),
        bad[..bad.len().min(SHOWN)].join(", ")
    )))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hmmlab_proto::scenario::{SmapsField, ThpStat};

    /// A step of `op` with nothing else set.
    pub(crate) fn step(op: Op) -> Step {
        Step {
            op,
            pages: None,
            expect_cpages: None,
            expect_faults: None,
            expect_errno: None,
            expect: vec![],
            iterations: None,
            min_complete: None,
            prot: None,
            mirror: None,
            set: None,
            clear: None,
            thp_stats: None,
            smaps: None,
            fail_kernel_alloc: None,
            variant: vec![],
        }
    }

    fn cmd(cpages: u64, faults: u64) -> HmmDmirrorCmd {
        HmmDmirrorCmd {
            cpages,
            faults,
            ..Default::default()
        }
    }

    #[test]
    fn judge_counts_and_errnos() {
        let to_dev = Command::MigrateToDev;
        let mut s = step(Op::MigrateToDevice);
        s.expect_cpages = Some(256);
        assert!(judge(to_dev, &s, Ok(cmd(256, 0))).unwrap().is_some());
        assert_eq!(
            judge(to_dev, &s, Ok(cmd(255, 0))).unwrap_err(),
            Failure::fail("cpages: expected 256, got 255")
        );
        assert_eq!(
            judge(to_dev, &s, Err(libc::ENOENT)).unwrap_err(),
            Failure::fail("ioctl HMM_DMIRROR_MIGRATE_TO_DEV failed: errno 2 (ENOENT)")
        );

        let mut s = step(Op::DeviceRead);
        s.expect_faults = Some(1);
        assert_eq!(
            judge(Command::Read, &s, Ok(cmd(4, 0))).unwrap_err().message,
            "faults: expected 1, got 0"
        );

        let mut s = step(Op::MigrateToSystem);
        s.expect_errno = Some(libc::EINVAL);
        assert_eq!(
            judge(Command::MigrateToSys, &s, Err(libc::EINVAL)),
            Ok(None)
        );
        assert_eq!(
            judge(Command::MigrateToSys, &s, Err(libc::ENOENT)).unwrap_err().message,
            "ioctl HMM_DMIRROR_MIGRATE_TO_SYS failed with errno 2 (ENOENT), expected errno 22 (EINVAL)"
        );
        assert_eq!(
            judge(Command::MigrateToSys, &s, Ok(cmd(3, 0))).unwrap_err().message,
            "ioctl HMM_DMIRROR_MIGRATE_TO_SYS succeeded (cpages 3), expected it to fail with errno 22 (EINVAL)"
        );
    }

    #[test]
    fn inapplicable_expectations_are_errors() {
        let mut s = step(Op::CpuRead);
        s.expect_cpages = Some(1);
        assert_eq!(check_applicable(&s).unwrap_err().outcome, Outcome::Error);
        let mut s = step(Op::DeviceRead);
        s.expect = vec![StateExpect {
            pages: PageRange(0, 1),
            state: "none".into(),
        }];
        assert_eq!(check_applicable(&s).unwrap_err().outcome, Outcome::Error);
        let mut s = step(Op::DeviceRead);
        s.expect_errno = Some(libc::EFAULT);
        s.expect_cpages = Some(0);
        assert_eq!(check_applicable(&s).unwrap_err().outcome, Outcome::Error);
        s.expect_cpages = None;
        assert_eq!(check_applicable(&s), Ok(()));
    }

    #[test]
    fn snapshot_states() {
        let expect = vec![
            StateExpect {
                pages: PageRange(2, 4),
                state: "zero+read".into(),
            },
            StateExpect {
                pages: PageRange(4, 10),
                state: "dev-private-local+write".into(),
            },
        ];
        let range = PageRange(2, 10);
        let mut states = vec![0x11, 0x11, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22];
        assert_eq!(check_states(&expect, range, &states), Ok(()));

        states[1] = 0x00;
        for s in &mut states[3..] {
            *s = 0x02;
        }
        assert_eq!(
            check_states(&expect, range, &states).unwrap_err(),
            Failure::fail(
                "6 of 8 pages in an unexpected state: page 3: expected zero+read got none, \
                 page 5: expected dev-private-local+write got write, page 6: expected \
                 dev-private-local+write got write, page 7: expected dev-private-local+write \
                 got write, and 2 more"
            )
        );
    }

    #[test]
    fn pages_named_any_are_not_checked() {
        let expect = vec![
            StateExpect {
                pages: PageRange(0, 2),
                state: "write".into(),
            },
            StateExpect {
                pages: PageRange(2, 4),
                state: "any".into(),
            },
        ];
        let range = PageRange(0, 4);
        assert_eq!(
            check_states(&expect, range, &[0x02, 0x02, 0x20, 0xFF]),
            Ok(())
        );
        assert!(check_states(&expect, range, &[0x02, 0x01, 0x20, 0xFF]).is_err());
    }

    #[test]
    fn snapshot_expectation_outside_the_range_is_an_error() {
        let expect = vec![StateExpect {
            pages: PageRange(0, 4),
            state: "none".into(),
        }];
        let err = check_states(&expect, PageRange(1, 4), &[0; 3]).unwrap_err();
        assert_eq!(err.outcome, Outcome::Error);
        let expect = vec![StateExpect {
            pages: PageRange(0, 1),
            state: "bogus".into(),
        }];
        assert_eq!(
            check_states(&expect, PageRange(0, 1), &[0])
                .unwrap_err()
                .outcome,
            Outcome::Error
        );
    }

    #[test]
    fn cpu_steps_run_against_the_model() {
        use std::io::Read;

        let scenario = Scenario {
            populate: vec![
                Populate {
                    pages: PageRange(0, 2),
                    how: Touch::Write,
                },
                Populate {
                    pages: PageRange(2, 4),
                    how: Touch::Read,
                },
            ],
            ..scenario(
                4,
                false,
                vec![
                    step(Op::CpuRead),
                    Step {
                        pages: Some(PageRange(1, 3)),
                        ..step(Op::CpuWrite)
                    },
                    step(Op::CpuRead),
                    // Not a dmirror device: the ioctl fails, and the scenario ends.
                    step(Op::DeviceRead),
                    step(Op::CpuRead),
                ],
            )
        };
        let (mut rx, tx) = std::io::pipe().unwrap();
        let results = Results::stdio(&tx).unwrap();
        drop(tx);
        let verdict = run_on("s", &scenario, &Dmirror::not_a_dmirror(), None, &results);
        drop(results);
        assert_eq!(
            verdict,
            Verdict::with(
                Outcome::Fail,
                "step 3 (device-read): ioctl HMM_DMIRROR_READ failed: errno 25 (ENOTTY)"
            )
        );
        let mut text = String::new();
        rx.read_to_string(&mut text).unwrap();
        let records: Vec<Record> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 4);
        let outcomes: Vec<Outcome> = records
            .iter()
            .map(|r| match r {
                Record::Step { outcome, .. } => *outcome,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            outcomes,
            [Outcome::Pass, Outcome::Pass, Outcome::Pass, Outcome::Fail]
        );
        let Record::Step {
            index,
            op,
            pages,
            cpages,
            ..
        } = &records[1]
        else {
            unreachable!()
        };
        assert_eq!(
            (*index, op.as_str(), *pages, *cpages),
            (1, "cpu-write", 2, None)
        );
    }

    #[test]
    fn new_ops_refuse_what_they_cannot_check() {
        let mut s = step(Op::MigrateRace);
        s.iterations = Some(10);
        assert_eq!(check_applicable(&s), Ok(()));
        s.expect_cpages = Some(64);
        assert_eq!(check_applicable(&s).unwrap_err().outcome, Outcome::Error);
        s.expect_cpages = None;
        s.expect_errno = Some(libc::ENOENT);
        assert_eq!(check_applicable(&s).unwrap_err().outcome, Outcome::Error);

        let mut s = step(Op::UserfaultfdIdle);
        assert_eq!(check_applicable(&s), Ok(()));
        s.expect_errno = Some(libc::EAGAIN);
        assert_eq!(check_applicable(&s).unwrap_err().outcome, Outcome::Error);

        let mut s = step(Op::CpuWrite);
        s.iterations = Some(2);
        assert_eq!(
            check_applicable(&s).unwrap_err(),
            Failure::error("`iterations` applies to migrate-race steps, not cpu-write")
        );
        let mut s = step(Op::CpuWrite);
        s.min_complete = Some(1);
        assert_eq!(
            check_applicable(&s).unwrap_err(),
            Failure::error("`min_complete` applies to migrate-race steps, not cpu-write")
        );
    }

    #[test]
    fn hang_ops_take_no_pages_or_expectations() {
        for op in [Op::Hang, Op::HangGuest] {
            let name = op.as_str();
            assert_eq!(check_applicable(&step(op)), Ok(()));
            let mut s = step(op);
            s.pages = Some(PageRange(0, 1));
            assert_eq!(
                check_applicable(&s).unwrap_err(),
                Failure::error(format!("{name} works on no pages: `pages` does not apply"))
            );
            for set in [
                |s: &mut Step| s.expect_cpages = Some(1),
                |s: &mut Step| s.expect_faults = Some(0),
                |s: &mut Step| s.expect_errno = Some(libc::EINTR),
            ] {
                let mut s = step(op);
                set(&mut s);
                assert_eq!(
                    check_applicable(&s).unwrap_err(),
                    Failure::error(format!(
                        "{name} issues no ioctl: expect_errno, expect_cpages and expect_faults \
                         do not apply"
                    ))
                );
            }
            let mut s = step(op);
            s.expect = vec![StateExpect {
                pages: PageRange(0, 1),
                state: "none".into(),
            }];
            assert_eq!(check_applicable(&s).unwrap_err().outcome, Outcome::Error);
            let mut s = step(op);
            s.iterations = Some(1);
            assert_eq!(check_applicable(&s).unwrap_err().outcome, Outcome::Error);
        }
    }

    fn scenario(pages: u64, userfaultfd: bool, steps: Vec<Step>) -> Scenario {
        use hmmlab_proto::scenario::MappingKind;
        Scenario {
            description: "d".into(),
            kind: Default::default(),
            thp: None,
            timeout_ms: None,
            device: None,
            pin_cpu: false,
            memcg_max_kib: None,
            mapping: Some(Mapping {
                kind: MappingKind::AnonPrivate,
                pages,
                align_pages: 1,
                prot: Default::default(),
                hugepage: false,
                userfaultfd,
            }),
            populate: vec![Populate {
                pages: PageRange(0, pages / 2),
                how: Touch::Write,
            }],
            step: steps,
            kselftest: None,
            bench: None,
            requires: None,
            known_warning: vec![],
        }
    }

    /// Run `scenario` against a file that takes no dmirror command: its
    /// verdict and records.
    fn run_without_device(scenario: &Scenario) -> (Verdict, Vec<Record>) {
        use std::io::Read;
        let (mut rx, tx) = std::io::pipe().unwrap();
        let results = Results::stdio(&tx).unwrap();
        drop(tx);
        let verdict = run_on("s", scenario, &Dmirror::not_a_dmirror(), None, &results);
        drop(results);
        let mut text = String::new();
        rx.read_to_string(&mut text).unwrap();
        let records = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (verdict, records)
    }

    #[test]
    fn a_step_through_the_other_device_needs_it_open() {
        let other = Step {
            mirror: Some(1),
            ..step(Op::MigrateToSystem)
        };
        let (verdict, _) = run_without_device(&scenario(4, false, vec![other]));
        assert_eq!(
            verdict,
            Verdict::error(
                "step 0 (migrate-to-system): mirror = 1: test_hmm's device 1 of the kind is not \
                 open (0 or 1)"
            )
        );
    }

    #[test]
    fn migrate_race_threads_run_and_end() {
        // The CPU writes of round 1 happen; the ioctl fails with ENOTTY,
        // which no race explains, and the threads are stopped cleanly.
        let race = Step {
            iterations: Some(3),
            min_complete: Some(1),
            ..step(Op::MigrateRace)
        };
        let (verdict, records) = run_without_device(&scenario(4, false, vec![race]));
        assert_eq!(
            verdict,
            Verdict::with(
                Outcome::Fail,
                "step 0 (migrate-race): round 1 of 3: ioctl HMM_DMIRROR_MIGRATE_TO_DEV failed: \
                 errno 25 (ENOTTY)"
            )
        );
        let [Record::Step {
            op,
            outcome,
            pages,
            cpages,
            message,
            ..
        }] = records.as_slice()
        else {
            panic!("unexpected {records:?}")
        };
        assert_eq!(
            (op.as_str(), *outcome, *pages, *cpages),
            ("migrate-race", Outcome::Fail, 4, Some(0))
        );
        assert!(message.as_deref().unwrap().starts_with("round 1 of 3"));

        let no_count = step(Op::MigrateRace);
        let (verdict, _) = run_without_device(&scenario(4, false, vec![no_count]));
        assert_eq!(
            verdict,
            Verdict::error("step 0 (migrate-race): migrate-race needs `iterations`, 1 or more")
        );
        for min_complete in [None, Some(0), Some(4)] {
            let race = Step {
                iterations: Some(3),
                min_complete,
                ..step(Op::MigrateRace)
            };
            let (verdict, _) = run_without_device(&scenario(4, false, vec![race]));
            assert_eq!(
                verdict,
                Verdict::error(
                    "step 0 (migrate-race): migrate-race needs `min_complete`, 1 to \
                     `iterations` (3)"
                )
            );
        }
    }

    #[test]
    fn userfaultfd_idle() {
        let (verdict, _) = run_without_device(&scenario(4, false, vec![step(Op::UserfaultfdIdle)]));
        assert_eq!(
            verdict,
            Verdict::error(
                "step 0 (userfaultfd-idle): userfaultfd-idle needs a mapping with \
                 `userfaultfd = true`"
            )
        );
        let steps = vec![step(Op::UserfaultfdIdle), step(Op::CpuRead)];
        let mut s = scenario(4, true, steps);
        // Reading only the populated pages: a hole would block.
        s.step[1].pages = Some(PageRange(0, 2));
        let (verdict, records) = run_without_device(&s);
        match verdict.message.as_deref() {
            // Not allowed on this host (no privilege, or filtered).
            Some(m) if m.starts_with("userfaultfd: ") => {
                assert_eq!(verdict.outcome, Outcome::Error);
                assert!(records.is_empty());
            }
            _ => {
                assert_eq!(verdict, Verdict::pass());
                assert_eq!(records.len(), 2);
            }
        }
    }

    #[test]
    fn a_pin_the_kernel_refuses_fails_unless_expected() {
        use crate::refs::PinError;
        let busy = || {
            Err(PinError {
                errno: Some(libc::EBUSY),
                message: "PIN_LONGTERM_TEST_START of pages [0, 2) failed: EBUSY".into(),
            })
        };
        let mut st = step(Op::PinPages);
        assert_eq!(
            judge_pin(&st, Ok("2 pages pinned".into())).unwrap(),
            "2 pages pinned"
        );
        let f = judge_pin(&st, busy()).unwrap_err();
        assert_eq!(f.outcome, Outcome::Fail, "{}", f.message);
        let harness = Err(PinError {
            errno: None,
            message: "no gup_test file".into(),
        });
        assert_eq!(judge_pin(&st, harness).unwrap_err().outcome, Outcome::Error);
        st.expect_errno = Some(libc::EBUSY);
        assert!(judge_pin(&st, busy()).unwrap().contains("as expected"));
        let f = judge_pin(&st, Ok("2 pages pinned".into())).unwrap_err();
        assert_eq!(f.outcome, Outcome::Fail);
        assert!(
            f.message
                .contains("expected PIN_LONGTERM_TEST_START to fail"),
            "{}",
            f.message
        );
        st.expect_errno = Some(libc::ENOMEM);
        let f = judge_pin(&st, busy()).unwrap_err();
        assert_eq!(f.outcome, Outcome::Fail);
        assert!(
            f.message.contains("EBUSY") && f.message.contains("ENOMEM"),
            "{}",
            f.message
        );
    }

    #[test]
    fn munmap_mprotect_and_fail_alloc_steps() {
        let pages = |a, b| Some(PageRange(a, b));
        let steps = vec![
            Step {
                pages: pages(0, 1),
                prot: Some(hmmlab_proto::scenario::Prot::ReadOnly),
                ..step(Op::Mprotect)
            },
            Step {
                pages: pages(0, 2),
                ..step(Op::CpuRead)
            },
            Step {
                pages: pages(3, 4),
                ..step(Op::Munmap)
            },
            Step {
                pages: pages(1, 3),
                ..step(Op::CpuWrite)
            },
            Step {
                pages: pages(0, 3),
                ..step(Op::CpuRead)
            },
            Step {
                pages: pages(2, 4),
                ..step(Op::CpuRead)
            },
        ];
        let (verdict, records) = run_without_device(&scenario(4, false, steps));
        assert_eq!(
            verdict,
            Verdict::error("step 5 (cpu-read): cpu-read of page 3, which a munmap step unmapped")
        );
        assert_eq!(records.len(), 6);

        let write_ro = vec![
            Step {
                pages: pages(1, 2),
                prot: Some(hmmlab_proto::scenario::Prot::ReadOnly),
                ..step(Op::Mprotect)
            },
            step(Op::CpuWrite),
        ];
        let (verdict, _) = run_without_device(&scenario(4, false, write_ro));
        assert_eq!(
            verdict,
            Verdict::error(
                "step 1 (cpu-write): cpu-write of page 1, which an mprotect step made read-only"
            )
        );

        // Not a dmirror: test_hmm's EINVAL is not what this file answers.
        let (verdict, _) = run_without_device(&scenario(4, false, vec![step(Op::FailAlloc)]));
        assert_eq!(
            verdict,
            Verdict::with(
                Outcome::Fail,
                "step 0 (fail-alloc): ioctl HMM_DMIRROR_FLAGS failed: errno 25 (ENOTTY)"
            )
        );
    }

    #[test]
    fn new_ops_check_their_fields() {
        let mut s = step(Op::Munmap);
        assert_eq!(
            check_applicable(&s),
            Err(Failure::error("munmap needs `pages`"))
        );
        s.pages = Some(PageRange(0, 1));
        assert_eq!(check_applicable(&s), Ok(()));
        s.expect_errno = Some(libc::EINVAL);
        assert_eq!(check_applicable(&s).unwrap_err().outcome, Outcome::Error);
        let mut s = step(Op::Mprotect);
        s.pages = Some(PageRange(0, 1));
        assert_eq!(
            check_applicable(&s),
            Err(Failure::error("mprotect needs `prot`"))
        );
        s.prot = Some(hmmlab_proto::scenario::Prot::ReadWrite);
        assert_eq!(check_applicable(&s), Ok(()));
        let mut s = step(Op::CpuRead);
        s.prot = Some(hmmlab_proto::scenario::Prot::ReadWrite);
        assert_eq!(
            check_applicable(&s),
            Err(Failure::error(
                "`prot` applies to mprotect steps, not cpu-read"
            ))
        );
        let mut s = step(Op::FailAlloc);
        assert_eq!(check_applicable(&s), Ok(()));
        s.pages = Some(PageRange(0, 1));
        assert_eq!(check_applicable(&s).unwrap_err().outcome, Outcome::Error);
        let mut s = step(Op::FailAlloc);
        s.expect_cpages = Some(0);
        assert_eq!(check_applicable(&s).unwrap_err().outcome, Outcome::Error);
        let mut s = step(Op::DeviceReadUnlocked);
        s.expect_faults = Some(1);
        assert_eq!(check_applicable(&s), Ok(()));
    }

    #[test]
    fn ops_without_pages_refuse_them() {
        // The validator refuses `pages` on every op that takes none; the
        // guest did so for hang, hang-guest and fail-alloc only and ignored
        // them on unmap-neighbour and userfaultfd-idle.
        for op in Op::ALL.into_iter().filter(|op| op.takes_no_pages()) {
            let step = |op| {
                let mut s = step(op);
                if op == Op::CheckThpStats {
                    s.thp_stats = Some([(ThpStat::Split, 0)].into());
                }
                if op == Op::CheckSmaps {
                    s.smaps = Some([(SmapsField::Rss, 0)].into());
                }
                s
            };
            assert_eq!(check_applicable(&step(op)), Ok(()), "{op:?}");
            let mut s = step(op);
            s.pages = Some(PageRange(0, 1));
            assert_eq!(
                check_applicable(&s).unwrap_err(),
                Failure::error(format!(
                    "{} works on no pages: `pages` does not apply",
                    op.as_str()
                ))
            );
        }
        let mut s = step(Op::MigrateRace);
        s.iterations = Some(1);
        s.expect_cpages = Some(1);
        let why = check_applicable(&s).unwrap_err().message;
        assert!(why.starts_with("migrate-race checks the data"), "{why}");
    }

    #[test]
    fn hold_refs_and_drop_refs_steps() {
        let pages = |a, b| Some(PageRange(a, b));
        let steps = vec![
            Step {
                pages: pages(0, 3),
                ..step(Op::HoldRefs)
            },
            Step {
                pages: pages(1, 2),
                ..step(Op::CpuWrite)
            },
            step(Op::CpuRead),
            step(Op::DropRefs),
            Step {
                pages: pages(3, 4),
                ..step(Op::Munmap)
            },
            Step {
                pages: pages(2, 4),
                ..step(Op::HoldRefs)
            },
        ];
        let (verdict, records) = run_without_device(&scenario(4, false, steps));
        assert_eq!(
            verdict,
            Verdict::error("step 5 (hold-refs): hold-refs of page 3, which a munmap step unmapped")
        );
        let notes: Vec<Option<String>> = records
            .iter()
            .map(|r| match r {
                Record::Step { message, .. } => message.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(notes[0].as_deref(), Some("3 pages held in a pipe"));
        assert_eq!(notes[3].as_deref(), Some("3 pages released from 1 pipe(s)"));

        // A drop-refs with nothing held is an error of the scenario.
        let (verdict, _) = run_without_device(&scenario(4, false, vec![step(Op::DropRefs)]));
        assert_eq!(
            verdict,
            Verdict::error("step 0 (drop-refs): drop-refs: no hold-refs step holds pages")
        );
    }

    #[test]
    fn check_file_reads_the_private_mappings_file_and_leaves_the_model() {
        use hmmlab_proto::scenario::MappingKind;
        let pages = |a, b| Some(PageRange(a, b));
        let steps = vec![
            step(Op::CheckFile),
            Step {
                pages: pages(1, 3),
                ..step(Op::CpuWrite)
            },
            Step {
                pages: pages(3, 4),
                ..step(Op::Munmap)
            },
            // The file, not the mapping: the unmapped page does not matter.
            step(Op::CheckFile),
            // The model is as the CPU steps left it.
            Step {
                pages: pages(0, 3),
                ..step(Op::CpuRead)
            },
        ];
        let mut s = scenario(4, false, steps);
        s.mapping.as_mut().unwrap().kind = MappingKind::FilePrivate;
        let (verdict, records) = run_without_device(&s);
        assert_eq!(verdict, Verdict::pass());
        assert_eq!(records.len(), 5);

        let (verdict, _) = run_without_device(&scenario(4, false, vec![step(Op::CheckFile)]));
        assert_eq!(
            verdict,
            Verdict::error(
                "step 0 (check-file): check-file needs a file-private mapping: an anonymous \
                 mapping has no file to read"
            )
        );
        let mut s = step(Op::CheckFile);
        assert_eq!(check_applicable(&s), Ok(()));
        s.expect_errno = Some(0);
        assert_eq!(
            check_applicable(&s).unwrap_err(),
            Failure::error(
                "check-file issues no ioctl: expect_errno, expect_cpages and expect_faults do \
                 not apply"
            )
        );
    }

    #[test]
    fn check_thp_stats_takes_its_counters_and_no_other_op_does() {
        let mut s = step(Op::CheckThpStats);
        assert_eq!(
            check_applicable(&s).unwrap_err(),
            Failure::error("check-thp-stats needs `thp_stats`")
        );
        s.thp_stats = Some(Default::default());
        assert_eq!(
            check_applicable(&s).unwrap_err(),
            Failure::error("check-thp-stats needs a counter in `thp_stats`")
        );
        s.thp_stats = Some([(ThpStat::AnonFaultAlloc, 1)].into());
        assert_eq!(check_applicable(&s), Ok(()));
        let mut s = step(Op::Snapshot);
        s.thp_stats = Some([(ThpStat::AnonFaultAlloc, 1)].into());
        assert_eq!(
            check_applicable(&s).unwrap_err(),
            Failure::error("`thp_stats` applies to check-thp-stats steps, not snapshot")
        );
    }

    #[test]
    fn check_smaps_takes_its_fields_and_no_other_op_does() {
        let mut s = step(Op::CheckSmaps);
        assert_eq!(
            check_applicable(&s).unwrap_err(),
            Failure::error("check-smaps needs `smaps`")
        );
        s.smaps = Some(Default::default());
        assert_eq!(
            check_applicable(&s).unwrap_err(),
            Failure::error("check-smaps needs a field in `smaps`")
        );
        s.smaps = Some([(SmapsField::Referenced, 1)].into());
        assert_eq!(check_applicable(&s), Ok(()));
        let mut s = step(Op::Snapshot);
        s.smaps = Some([(SmapsField::Referenced, 1)].into());
        assert_eq!(
            check_applicable(&s).unwrap_err(),
            Failure::error("`smaps` applies to check-smaps steps, not snapshot")
        );
    }

    #[test]
    fn check_page_flags_takes_its_flags_and_no_other_op_does() {
        use hmmlab_proto::scenario::PageFlag::*;
        let mut s = step(Op::CheckPageFlags);
        assert_eq!(
            check_applicable(&s).unwrap_err(),
            Failure::error("check-page-flags needs a flag in `set` or `clear`")
        );
        s.set = Some(vec![]);
        s.clear = Some(vec![]);
        assert!(check_applicable(&s).is_err());
        s.clear = Some(vec![Dirty]);
        assert_eq!(check_applicable(&s), Ok(()));
        s.set = Some(vec![Uptodate, Dirty]);
        assert_eq!(
            check_applicable(&s).unwrap_err(),
            Failure::error("dirty is in both `set` and `clear`")
        );
        s.expect_errno = Some(0);
        s.set = None;
        assert!(check_applicable(&s)
            .unwrap_err()
            .message
            .starts_with("check-page-flags issues no ioctl"));
        let mut s = step(Op::CheckWriteProtected);
        s.set = Some(vec![Anon]);
        assert_eq!(
            check_applicable(&s).unwrap_err(),
            Failure::error(
                "`set` and `clear` apply to check-page-flags steps, not check-write-protected"
            )
        );
    }

    /// Run through the scenario process's code as root on the machine the
    /// tests run on (skipped where /proc/kpageflags cannot be read): the
    /// written pages of an anonymous mapping are uptodate, anonymous and
    /// swap-backed, the holes are no pages, an unmapped page is refused, and
    /// the content model stays as it was.
    #[test]
    fn check_page_flags_reads_the_flags_of_written_pages() {
        use hmmlab_proto::scenario::PageFlag::*;
        if let Err(e) = crate::pagemap::KpageFlags::open() {
            println!("skipped: {e}");
            return;
        }
        let flags = |pages: (u64, u64), set, clear| Step {
            pages: Some(PageRange(pages.0, pages.1)),
            set: Some(set),
            clear: Some(clear),
            ..step(Op::CheckPageFlags)
        };
        // Pages 0 and 1 are written by populate, 2 and 3 are holes.
        let steps = vec![
            flags((0, 2), vec![Uptodate, Anon, Swapbacked], vec![Locked]),
            Step {
                pages: Some(PageRange(0, 2)),
                ..step(Op::CpuRead)
            },
        ];
        let (verdict, records) = run_without_device(&scenario(4, false, steps));
        assert_eq!(verdict, Verdict::pass());
        assert_eq!(records.len(), 2);

        let steps = vec![flags((0, 4), vec![Anon], vec![])];
        let (verdict, _) = run_without_device(&scenario(4, false, steps));
        assert_eq!(
            verdict,
            Verdict::with(
                Outcome::Fail,
                "step 0 (check-page-flags): page 2 is not a present page in system memory \
                 (pagemap entry 0x0000000000000000): check-page-flags reads the flags of system \
                 pages only"
            )
        );

        let steps = vec![flags((0, 2), vec![], vec![Anon])];
        let (verdict, _) = run_without_device(&scenario(4, false, steps));
        let Verdict { outcome, message } = verdict;
        assert_eq!(outcome, Outcome::Fail);
        let message = message.unwrap();
        assert!(
            message.starts_with("step 0 (check-page-flags): page 0: anon is set (kpageflags 0x"),
            "{message}"
        );
        assert!(
            message.ends_with("expected clear; 2 of 2 pages differ"),
            "{message}"
        );

        let steps = vec![
            Step {
                pages: Some(PageRange(1, 2)),
                ..step(Op::Munmap)
            },
            flags((0, 2), vec![Anon], vec![]),
        ];
        let (verdict, _) = run_without_device(&scenario(4, false, steps));
        assert_eq!(
            verdict,
            Verdict::error(
                "step 1 (check-page-flags): check-page-flags of page 1, which a munmap step \
                 unmapped"
            )
        );
    }

    #[test]
    fn file_reads_zeros_names_the_first_byte_that_is_not() {
        let mut words = vec![0u64; 3 * WORDS_PER_PAGE];
        assert_eq!(file_reads_zeros(&words), Ok(()));
        words[1] = u64::from_ne_bytes([0, 0, 0, 0, 0, 0x5a, 0, 0x01]);
        words[WORDS_PER_PAGE] = 7;
        assert_eq!(
            file_reads_zeros(&words).unwrap_err(),
            "the backing file's page 0 reads 0x5a at byte 13: a private mapping must leave its \
             file as it was (all zeros)"
        );
        words[1] = 0;
        assert!(file_reads_zeros(&words)
            .unwrap_err()
            .starts_with("the backing file's page 1 reads 0x07 at byte 0:"));
    }

    #[test]
    fn ranges() {
        assert!(check_range(PageRange(0, 4), 4).is_ok());
        assert!(check_range(PageRange(2, 5), 4).is_err());
        assert!(check_range(PageRange(2, 2), 4).is_err());
    }
}
