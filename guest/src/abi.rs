//! The `lib/test_hmm` ioctl ABI, mirrored from the kernel's
//! `lib/test_hmm_uapi.h`.
//!
//! Nothing here is derived from the header at build time, on purpose: the
//! values are written out so they can be read and reviewed, and `build.rs`
//! checks them against the header of the kernel under test (when
//! `HMMLAB_UAPI_HEADER` names it), turning any difference into a build error.

use std::mem::size_of;

use hmmlab_proto::scenario::Op;

/// `struct hmm_dmirror_cmd`: every command takes one.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HmmDmirrorCmd {
    /// (in) user address the device reads or writes.
    pub addr: u64,
    /// (in) user buffer the data is copied to or from.
    pub ptr: u64,
    /// (in) number of pages.
    pub npages: u64,
    /// (out) number of pages copied.
    pub cpages: u64,
    /// (out) number of device page faults seen.
    pub faults: u64,
}

/// `_IOWR('H', nr, struct hmm_dmirror_cmd)`, with the asm-generic layout
/// x86 uses: direction (read|write = 3) << 30 | size << 16 | type << 8 | nr.
pub const fn iowr(nr: u32) -> u32 {
    const READ_WRITE: u32 = 3;
    (READ_WRITE << 30) | ((size_of::<HmmDmirrorCmd>() as u32) << 16) | ((b'H' as u32) << 8) | nr
}

pub const HMM_DMIRROR_READ: u32 = iowr(0x00);
pub const HMM_DMIRROR_WRITE: u32 = iowr(0x01);
pub const HMM_DMIRROR_MIGRATE_TO_DEV: u32 = iowr(0x02);
pub const HMM_DMIRROR_MIGRATE_TO_SYS: u32 = iowr(0x03);
pub const HMM_DMIRROR_SNAPSHOT: u32 = iowr(0x04);
pub const HMM_DMIRROR_RELEASE: u32 = iowr(0x07);
// Newer headers only (7.2: FLAGS, 7.3: READ_UNLOCKED; 6.12 has neither).
pub const HMM_DMIRROR_FLAGS: u32 = iowr(0x08);
pub const HMM_DMIRROR_READ_UNLOCKED: u32 = iowr(0x09);

/// HMM_DMIRROR_FLAGS takes the flags in `npages`. 7.3's test_hmm clears
/// FAIL_ALLOC when it uses it: in dmirror_migrate_alloc_and_copy() (to the
/// device) and dmirror_devmem_fault_alloc_and_copy() (back to system).
pub const HMM_DMIRROR_FLAG_FAIL_ALLOC: u64 = 1 << 0;

/// gup_test's long-term pin (mm/gup_test.h; `pin-pages`): `struct
/// pin_longterm_test`. Not checked by `build.rs`, which reads only
/// lib/test_hmm_uapi.h; the values below were compiled from 7.3.4's and
/// 6.12.117's mm/gup_test.h (both: 0x40186707, 0x6708, 24 bytes). 6.1.192
/// has neither command.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct PinLongtermTest {
    pub addr: u64,
    pub size: u64,
    /// PIN_LONGTERM_TEST_FLAG_USE_WRITE (1), _USE_FAST (2); 0: a read-only
    /// pin through pin_user_pages().
    pub flags: u32,
}

/// `_IOW('g', 7, struct pin_longterm_test)`: direction write = 1.
pub const PIN_LONGTERM_TEST_START: u32 =
    (1 << 30) | ((size_of::<PinLongtermTest>() as u32) << 16) | ((b'g' as u32) << 8) | 7;
/// `_IO('g', 8)`.
pub const PIN_LONGTERM_TEST_STOP: u32 = ((b'g' as u32) << 8) | 8;

/// The commands the guest issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Read,
    Write,
    MigrateToDev,
    MigrateToSys,
    Snapshot,
    Release,
    Flags,
    ReadUnlocked,
}

impl Command {
    /// Every command the guest knows.
    pub const EVERY: [Command; 8] = [
        Command::Read,
        Command::Write,
        Command::MigrateToDev,
        Command::MigrateToSys,
        Command::Snapshot,
        Command::Release,
        Command::Flags,
        Command::ReadUnlocked,
    ];

    /// The command `op` issues, as the op table names it.
    pub fn of(op: Op) -> Option<Command> {
        let name = op.rules().command?.name;
        Command::EVERY.into_iter().find(|c| c.name() == name)
    }

    /// Only newer test_hmm has it, says the op table.
    pub fn is_newer(self) -> bool {
        Op::ALL
            .into_iter()
            .any(|op| op.newer_command().is_some_and(|c| c.name == self.name()))
    }

    /// Every command the header must define.
    #[cfg(test)]
    pub const ALL: [Command; 6] = [
        Command::Read,
        Command::Write,
        Command::MigrateToDev,
        Command::MigrateToSys,
        Command::Snapshot,
        Command::Release,
    ];

    /// The commands only newer headers define.
    #[cfg(test)]
    pub const OPTIONAL: [Command; 2] = [Command::Flags, Command::ReadUnlocked];

    pub const fn request(self) -> u32 {
        match self {
            Command::Read => HMM_DMIRROR_READ,
            Command::Write => HMM_DMIRROR_WRITE,
            Command::MigrateToDev => HMM_DMIRROR_MIGRATE_TO_DEV,
            Command::MigrateToSys => HMM_DMIRROR_MIGRATE_TO_SYS,
            Command::Snapshot => HMM_DMIRROR_SNAPSHOT,
            Command::Release => HMM_DMIRROR_RELEASE,
            Command::Flags => HMM_DMIRROR_FLAGS,
            Command::ReadUnlocked => HMM_DMIRROR_READ_UNLOCKED,
        }
    }

    /// The header's name, used in step messages.
    pub const fn name(self) -> &'static str {
        match self {
            Command::Read => "HMM_DMIRROR_READ",
            Command::Write => "HMM_DMIRROR_WRITE",
            Command::MigrateToDev => "HMM_DMIRROR_MIGRATE_TO_DEV",
            Command::MigrateToSys => "HMM_DMIRROR_MIGRATE_TO_SYS",
            Command::Snapshot => "HMM_DMIRROR_SNAPSHOT",
            Command::Release => "HMM_DMIRROR_RELEASE",
            Command::Flags => "HMM_DMIRROR_FLAGS",
            Command::ReadUnlocked => "HMM_DMIRROR_READ_UNLOCKED",
        }
    }

    /// Does the kernel the guest was built for define this command?
    /// `None` when the guest was built without a header (nothing known).
    pub fn defined(self) -> Option<bool> {
        let short = self.name().trim_start_matches("HMM_DMIRROR_");
        if self.is_newer() {
            OPTIONAL_COMMANDS.map(|defined| defined.contains(&short))
        } else {
            Some(true)
        }
    }

    /// The header the guest was built against, for messages.
    pub fn checked_header() -> Option<&'static str> {
        CHECKED_HEADER
    }
}

// Snapshot values (one byte per page in `ptr`). The guest interprets snapshot
// bytes through `hmmlab_proto::state`, which a test below ties to these; the
// constants exist so the build can tie both to the header.
#[allow(dead_code)]
mod prot {
    pub const HMM_DMIRROR_PROT_ERROR: u8 = 0xFF;
    pub const HMM_DMIRROR_PROT_NONE: u8 = 0x00;
    pub const HMM_DMIRROR_PROT_READ: u8 = 0x01;
    pub const HMM_DMIRROR_PROT_WRITE: u8 = 0x02;
    pub const HMM_DMIRROR_PROT_PMD: u8 = 0x04;
    pub const HMM_DMIRROR_PROT_PUD: u8 = 0x08;
    pub const HMM_DMIRROR_PROT_ZERO: u8 = 0x10;
    pub const HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL: u8 = 0x20;
    pub const HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE: u8 = 0x30;
    pub const HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL: u8 = 0x40;
    pub const HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE: u8 = 0x50;
}
#[allow(unused_imports)]
pub use prot::*;

/// (name, value) of every snapshot value, for the tests.
#[cfg(test)]
pub const PROTS: &[(&str, u8)] = &[
    ("HMM_DMIRROR_PROT_ERROR", HMM_DMIRROR_PROT_ERROR),
    ("HMM_DMIRROR_PROT_NONE", HMM_DMIRROR_PROT_NONE),
    ("HMM_DMIRROR_PROT_READ", HMM_DMIRROR_PROT_READ),
    ("HMM_DMIRROR_PROT_WRITE", HMM_DMIRROR_PROT_WRITE),
    ("HMM_DMIRROR_PROT_PMD", HMM_DMIRROR_PROT_PMD),
    ("HMM_DMIRROR_PROT_PUD", HMM_DMIRROR_PROT_PUD),
    ("HMM_DMIRROR_PROT_ZERO", HMM_DMIRROR_PROT_ZERO),
    (
        "HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL",
        HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
    ),
    (
        "HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE",
        HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE,
    ),
    (
        "HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL",
        HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL,
    ),
    (
        "HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE",
        HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE,
    ),
];

// Generated by build.rs: `const` items that fail to compile when a value above
// differs from the kernel header named by HMMLAB_UAPI_HEADER (empty if unset).
include!(concat!(env!("OUT_DIR"), "/uapi_check.rs"));

#[cfg(test)]
mod tests {
    #[test]
    fn gup_test_pin_commands() {
        // As compiled from mm/gup_test.h of 7.3.4 and 6.12.117.
        assert_eq!(super::PIN_LONGTERM_TEST_START, 0x4018_6707);
        assert_eq!(super::PIN_LONGTERM_TEST_STOP, 0x6708);
        assert_eq!(std::mem::size_of::<super::PinLongtermTest>(), 24);
    }

    use super::*;
    use crate::uapi_header::{ABI_COMMANDS, ABI_FLAGS, ABI_OPTIONAL_COMMANDS, ABI_PROTS};

    #[test]
    fn request_numbers() {
        assert_eq!(size_of::<HmmDmirrorCmd>(), 40);
        assert_eq!(HMM_DMIRROR_FLAGS, 0xc028_4808);
        assert_eq!(HMM_DMIRROR_READ_UNLOCKED, 0xc028_4809);
        assert_eq!(HMM_DMIRROR_READ, 0xc028_4800);
        assert_eq!(HMM_DMIRROR_MIGRATE_TO_DEV, 0xc028_4802);
        assert_eq!(HMM_DMIRROR_SNAPSHOT, 0xc028_4804);
    }

    #[test]
    fn build_check_covers_every_definition() {
        // build.rs only checks what uapi_header's lists name: keep them equal
        // to what this module defines.
        let commands: Vec<String> = Command::ALL
            .iter()
            .map(|c| c.name().trim_start_matches("HMM_DMIRROR_").into())
            .collect();
        assert_eq!(commands, ABI_COMMANDS);
        let optional: Vec<String> = Command::OPTIONAL
            .iter()
            .map(|c| c.name().trim_start_matches("HMM_DMIRROR_").into())
            .collect();
        assert_eq!(optional, ABI_OPTIONAL_COMMANDS);
        assert_eq!(ABI_FLAGS, ["FAIL_ALLOC"]);
        let prots: Vec<&str> = PROTS
            .iter()
            .map(|(n, _)| n.trim_start_matches("HMM_DMIRROR_PROT_"))
            .collect();
        assert_eq!(prots, ABI_PROTS);
    }

    #[test]
    fn the_op_table_names_the_commands() {
        // Every command an op issues is one the guest knows.
        for op in Op::ALL {
            if let Some(cmd) = op.rules().command {
                let known = Command::of(op).unwrap_or_else(|| panic!("{}", cmd.name));
                assert_eq!(known.name(), cmd.name);
            }
        }
        assert_eq!(
            Command::of(Op::DeviceReadUnlocked),
            Some(Command::ReadUnlocked)
        );
        assert_eq!(Command::of(Op::CpuRead), None);
        // The optional commands are the ones the table says only newer
        // test_hmm has, in the table's order; the build checks the header
        // for each (uapi_header::ABI_OPTIONAL_COMMANDS).
        let newer: Vec<&str> = Op::ALL
            .into_iter()
            .filter_map(|op| op.newer_command())
            .map(|c| c.name.trim_start_matches("HMM_DMIRROR_"))
            .collect();
        assert_eq!(newer, ABI_OPTIONAL_COMMANDS);
        let optional: Vec<Command> = Command::EVERY
            .into_iter()
            .filter(|c| c.is_newer())
            .collect();
        assert_eq!(optional, Command::OPTIONAL);
        for c in Command::ALL {
            assert!(!c.is_newer() && Command::EVERY.contains(&c));
        }
        assert_eq!(
            Command::ALL.len() + Command::OPTIONAL.len(),
            Command::EVERY.len()
        );
    }

    #[test]
    fn proto_state_names_match_prot_values() {
        // Scenario files name snapshot states through hmmlab_proto::state;
        // `dev-private-local` must mean HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL.
        for (name, value) in hmmlab_proto::state::STATE_NAMES {
            let abi_name = format!("HMM_DMIRROR_PROT_{}", name.to_uppercase().replace('-', "_"));
            let (_, abi_value) = PROTS
                .iter()
                .find(|(n, _)| *n == abi_name)
                .unwrap_or_else(|| panic!("{abi_name} not in abi"));
            assert_eq!(value, abi_value, "{name}");
        }
        assert_eq!(hmmlab_proto::state::STATE_NAMES.len(), PROTS.len());
    }
}
