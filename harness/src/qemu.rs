//! QEMU's command line, built by a pure function so it can be tested and
//! recorded without starting QEMU.

use std::path::PathBuf;

use crate::machine::Machine;

/// Everything that varies from one boot to the next.
#[derive(Debug, Clone)]
pub struct Boot {
    pub accel: crate::machine::Accel,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub console_log: PathBuf,
    pub results_log: PathBuf,
    /// A coverage run: the guest's gcov counters, on a third serial port
    /// (`hmmlab_proto::coverage`).
    pub coverage_log: Option<PathBuf>,
    pub qmp_socket: PathBuf,
    /// Extra kernel command-line words.
    pub append: Vec<String>,
    /// The console on QEMU's own stdin/stdout (`cargo xtask shell`) instead
    /// of `console_log`.
    pub interactive: bool,
}

pub fn argv(m: &Machine, b: &Boot) -> Vec<String> {
    let s = |p: &PathBuf| p.to_string_lossy().to_string();
    let mut append = m.append.clone();
    append.extend(b.append.iter().cloned());
    let mut v: Vec<String> = vec![
        m.qemu.clone(),
        "-nodefaults".into(),
        "-no-user-config".into(),
        "-display".into(),
        "none".into(),
        "-machine".into(),
        m.machine.clone(),
        "-accel".into(),
        b.accel.as_str().into(),
        "-cpu".into(),
        m.accel(b.accel).cpu.clone(),
        "-m".into(),
        m.memory_mib.to_string(),
        "-smp".into(),
        m.smp.to_string(),
        // No network device at all.
        "-nic".into(),
        "none".into(),
        "-no-reboot".into(),
        "-kernel".into(),
        s(&b.kernel),
        "-initrd".into(),
        s(&b.initrd),
        "-append".into(),
        append.join(" "),
        // First serial port: the kernel console, to a file.
        "-chardev".into(),
        if b.interactive {
            // signal=off: Ctrl-C goes to the guest's shell, not to QEMU.
            "stdio,id=console,signal=off".to_string()
        } else {
            format!("file,id=console,path={}", s(&b.console_log))
        },
        "-serial".into(),
        "chardev:console".into(),
        // Second serial port: the guest driver's results, never mixed with the console.
        "-chardev".into(),
        format!("file,id=results,path={}", s(&b.results_log)),
        "-serial".into(),
        "chardev:results".into(),
    ];
    if let Some(log) = &b.coverage_log {
        // Third serial port: a coverage run's counters, binary frames.
        v.extend([
            "-chardev".into(),
            format!("file,id=coverage,path={}", s(log)),
            "-serial".into(),
            "chardev:coverage".into(),
        ]);
    }
    v.extend([
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", s(&b.qmp_socket)),
    ]);
    v.extend(m.extra_args.iter().cloned());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn argv_has_no_network_and_separate_channels() {
        let m = Machine::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/machines"),
            "x86_64",
        )
        .unwrap();
        let b = Boot {
            accel: crate::machine::Accel::Tcg,
            kernel: "/k/bzImage".into(),
            initrd: "/r/initramfs.cpio".into(),
            console_log: "/r/console.log".into(),
            results_log: "/r/results.jsonl".into(),
            coverage_log: None,
            qmp_socket: "/s/qmp.sock".into(),
            append: vec!["panic_on_warn=1".into()],
            interactive: false,
        };
        let a = argv(&m, &b);
        let joined = a.join(" ");
        assert_eq!(a[0], "qemu-system-x86_64");
        assert!(joined.contains("-nodefaults") && joined.contains("-nic none"));
        assert!(joined.contains("-accel tcg") && joined.contains("-cpu qemu64"));
        assert!(joined.contains("path=/r/console.log") && joined.contains("path=/r/results.jsonl"));
        assert!(joined.contains("unix:/s/qmp.sock,server=on,wait=off"));
        assert!(joined.contains("-device pvpanic"));
        let i = a.iter().position(|w| w == "-append").unwrap();
        assert!(a[i + 1].starts_with("console=ttyS0") && a[i + 1].ends_with("panic_on_warn=1"));
        // Two serial ports, console first.
        let serials: Vec<&String> = a
            .windows(2)
            .filter(|w| w[0] == "-serial")
            .map(|w| &w[1])
            .collect();
        assert_eq!(serials, vec!["chardev:console", "chardev:results"]);

        // A coverage run: the counters on a third port (the guest's ttyS2).
        let b = Boot {
            coverage_log: Some("/r/coverage.bin".into()),
            ..b
        };
        let a = argv(&m, &b);
        let serials: Vec<&String> = a
            .windows(2)
            .filter(|w| w[0] == "-serial")
            .map(|w| &w[1])
            .collect();
        assert_eq!(
            serials,
            vec!["chardev:console", "chardev:results", "chardev:coverage"]
        );
        assert!(a
            .join(" ")
            .contains("file,id=coverage,path=/r/coverage.bin"));
        assert_eq!(
            hmmlab_proto::coverage::COVERAGE_TTY,
            "/dev/ttyS2",
            "the third -serial is the guest's ttyS2"
        );
    }
}
