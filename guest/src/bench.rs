//! `kind = "bench"`: time migrations to device memory (see
//! [`hmmlab_proto::bench`]). Every measurement maps a fresh range, prepares
//! it as its case says, migrates it with one `HMM_DMIRROR_MIGRATE_TO_DEV`
//! and unmaps it (which frees the device pages). A migration that did not
//! move every page is the scenario's failure, never a fast sample.

use hmmlab_proto::bench::{Bench, BenchCase, THP_PAGES};
use hmmlab_proto::scenario::{DeviceKind, Mapping, MappingKind, PageRange, Prot, Scenario};
use hmmlab_proto::{Outcome, Record};

use crate::abi::{Command, HMM_DMIRROR_FLAG_FAIL_ALLOC};
use crate::child::Verdict;
use crate::dmirror::Dmirror;
use crate::mapping::{Mapped, PAGE_SIZE};
use crate::results::Results;
use crate::sysnames::describe_errno;
use crate::system::monotonic_ns;

pub fn run(name: &str, scenario: &Scenario, results: &Results) -> Verdict {
    let Some(bench) = &scenario.bench else {
        return Verdict::error("a bench scenario needs a [bench] table");
    };
    let kind = scenario.device.unwrap_or(DeviceKind::Private);
    let dev = match Dmirror::open(kind) {
        Ok(dev) => dev,
        Err(e) => return Verdict::error(e),
    };
    match measure(name, bench, &dev, results) {
        Ok(()) => Verdict::pass(),
        Err((outcome, message)) => Verdict::with(outcome, message),
    }
}

type Failed = (Outcome, String);

fn measure(name: &str, bench: &Bench, dev: &Dmirror, results: &Results) -> Result<(), Failed> {
    let largest = bench.sizes.iter().copied().max().unwrap_or(1);
    // test_hmm copies what it migrated back into this buffer (the data the
    // device now holds: dmirror_migrate_to_device() ends with a read of the
    // mirror). Allocated and written once, before any measured range, so
    // that its own faults are not measured.
    let mut back = vec![1u8; (largest * PAGE_SIZE) as usize];
    // Rounds outermost: whatever drifts during the run (caches, the host)
    // drifts for every case and size alike.
    for round in 0..bench.warmup + bench.rounds {
        for &pages in &bench.sizes {
            for &case in &bench.cases {
                let (prepare_ns, migrate_ns) = once(dev, case, pages, &mut back)
                    .map_err(|(o, m)| (o, format!("{case}, {pages} pages, round {round}: {m}")))?;
                if round >= bench.warmup {
                    results.emit(&Record::Sample {
                        scenario: name.to_string(),
                        case,
                        pages,
                        round: round - bench.warmup,
                        prepare_ns,
                        migrate_ns,
                    });
                }
            }
        }
    }
    Ok(())
}

/// One measurement: (CPU touch, migration) in ns.
fn once(dev: &Dmirror, case: BenchCase, pages: u64, back: &mut [u8]) -> Result<(u64, u64), Failed> {
    let spec = Mapping {
        kind: MappingKind::AnonPrivate,
        pages,
        align_pages: THP_PAGES,
        prot: Prot::ReadWrite,
        hugepage: false,
        userfaultfd: false,
    };
    let map = Mapped::create(&spec).map_err(|e| (Outcome::Error, e))?;
    let all = PageRange(0, pages);
    let t0 = monotonic_ns();
    match case {
        BenchCase::TouchFirst => map.touch_write(all),
        BenchCase::ZeroPage => map.touch_read(all),
        BenchCase::Direct | BenchCase::Split => {}
    }
    let prepare_ns = match case {
        BenchCase::TouchFirst | BenchCase::ZeroPage => monotonic_ns() - t0,
        BenchCase::Direct | BenchCase::Split => 0,
    };
    if case == BenchCase::Split {
        // test_hmm takes the flags in `npages`.
        dev.call(Command::Flags, map.addr(0), 0, HMM_DMIRROR_FLAG_FAIL_ALLOC)
            .map_err(|errno| {
                (
                    Outcome::Error,
                    format!(
                        "ioctl {} failed: {} (this kernel's test_hmm may not have it)",
                        Command::Flags.name(),
                        describe_errno(errno)
                    ),
                )
            })?;
    }
    let ptr = back.as_mut_ptr() as u64;
    let t1 = monotonic_ns();
    let cmd = dev.call(Command::MigrateToDev, map.addr(0), ptr, pages);
    let migrate_ns = monotonic_ns() - t1;
    let cmd = cmd.map_err(|errno| {
        (
            Outcome::Fail,
            format!(
                "ioctl {} failed: {}",
                Command::MigrateToDev.name(),
                describe_errno(errno)
            ),
        )
    })?;
    if cmd.cpages != pages {
        return Err((
            Outcome::Fail,
            format!(
                "the migration moved {} of {pages} pages (cpages): a partial migration is no \
                 measurement of a whole one",
                cmd.cpages
            ),
        ));
    }
    drop(map);
    Ok((prepare_ns, migrate_ns))
}
