//! Per-page states reported by `HMM_DMIRROR_SNAPSHOT` (lib/test_hmm_uapi.h),
//! written in scenario files as names joined by `+`, e.g. `dev-private-local+write`,
//! or with a device-neutral name, `dev-local+write`, that each instance
//! resolves to its own kind of device memory ([`for_device`]).
//!
//! The values are the same from 6.1 to 7.3: 7.x's device-private THP
//! (migrated whole, one PMD) is no new value but the old bits combined.
//! 7.3's dmirror_mkentry() sets the device kind, then READ or WRITE, then
//! PMD when hmm_range_fault() reports a PMD-order entry, which
//! hmm_vma_handle_absent_pmd() does for a device-private PMD: every page of
//! such a THP reads `dev-private-local+write+pmd` (0x26), or `+read+pmd`
//! (0x25) when it is mapped read-only.

/// (name, value) of every snapshot bit or value the header defines.
/// `error` (0xFF) is a whole value, never combined.
pub const STATE_NAMES: &[(&str, u8)] = &[
    ("none", 0x00),
    ("read", 0x01),
    ("write", 0x02),
    ("pmd", 0x04),
    ("pud", 0x08),
    ("zero", 0x10),
    ("dev-private-local", 0x20),
    ("dev-private-remote", 0x30),
    ("dev-coherent-local", 0x40),
    ("dev-coherent-remote", 0x50),
    ("error", 0xFF),
];

/// Device-neutral names for the memory of the instance's own kind of
/// device, which the host resolves per instance before the guest sees the
/// scenario (neutral, on device-private memory, on device-coherent memory).
pub const NEUTRAL_NAMES: &[(&str, &str, &str)] = &[
    ("dev-local", "dev-private-local", "dev-coherent-local"),
    ("dev-remote", "dev-private-remote", "dev-coherent-remote"),
];

/// `text` with its device-neutral names replaced by those of device-private
/// memory, or of device-coherent memory when `coherent`.
pub fn for_device(text: &str, coherent: bool) -> String {
    text.split('+')
        .map(|part| {
            let p = part.trim();
            match NEUTRAL_NAMES.iter().find(|(n, _, _)| *n == p) {
                Some((_, private, coh)) => if coherent { *coh } else { *private }.to_string(),
                None => part.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// The state a snapshot `expect` gives to pages it deliberately leaves
/// unchecked: every page of a snapshot is named, by a state or by this.
pub const ANY: &str = "any";

/// An expected state: `None` for [`ANY`], else the byte it stands for.
pub fn parse_expected(text: &str) -> Result<Option<u8>, String> {
    if text.trim() == ANY {
        return Ok(None);
    }
    parse_state(text).map(Some)
}

/// Parse `a+b+c` into the byte the snapshot reports.
pub fn parse_state(text: &str) -> Result<u8, String> {
    let mut value = 0u8;
    for part in text.split('+') {
        let part = part.trim();
        match STATE_NAMES.iter().find(|(n, _)| *n == part) {
            Some((_, v)) => value |= v,
            None => {
                let names: Vec<&str> = STATE_NAMES
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(NEUTRAL_NAMES.iter().map(|(n, _, _)| *n))
                    .collect();
                return Err(format!(
                    "unknown page state `{part}`; known states: {} (combine with `+`)",
                    names.join(", ")
                ));
            }
        }
    }
    Ok(value)
}

/// Render a snapshot byte back into the `a+b` form used in scenario files.
pub fn state_name(value: u8) -> String {
    if value == 0xFF {
        return "error".into();
    }
    let kind = match value & 0xF0 {
        0x00 => None,
        0x10 => Some("zero"),
        0x20 => Some("dev-private-local"),
        0x30 => Some("dev-private-remote"),
        0x40 => Some("dev-coherent-local"),
        0x50 => Some("dev-coherent-remote"),
        _ => None,
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(k) = kind {
        parts.push(k.into());
    } else if value & 0xF0 != 0 {
        parts.push(format!("0x{:02x}", value & 0xF0));
    }
    for (name, bit) in [
        ("read", 0x01u8),
        ("write", 0x02),
        ("pmd", 0x04),
        ("pud", 0x08),
    ] {
        if value & bit != 0 {
            parts.push(name.into());
        }
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join("+")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for v in [0x00u8, 0x02, 0x06, 0x11, 0x22, 0x21, 0x32, 0xFF] {
            assert_eq!(parse_state(&state_name(v)).unwrap(), v, "{v:#x}");
        }
        assert_eq!(parse_state("dev-private-local+write").unwrap(), 0x22);
        assert_eq!(parse_state("zero+read").unwrap(), 0x11);
        // A device-private THP (7.x).
        assert_eq!(parse_state("dev-private-local+write+pmd").unwrap(), 0x26);
        assert_eq!(state_name(0x26), "dev-private-local+write+pmd");
        assert_eq!(state_name(0x25), "dev-private-local+read+pmd");
        // Device-neutral names, resolved per instance.
        assert_eq!(
            for_device("dev-local+write+pmd", false),
            "dev-private-local+write+pmd"
        );
        assert_eq!(
            for_device("dev-local+read", true),
            "dev-coherent-local+read"
        );
        assert_eq!(for_device("write", true), "write");
        assert!(parse_state("dev-local").unwrap_err().contains("dev-local"));
        assert!(parse_state("dev-private+write")
            .unwrap_err()
            .contains("dev-private"));
    }
}
