//! `cargo xtask shell`: the same kernel and image as a run, but PID 1 is a
//! busybox shell on the console, for poking around by hand. The guest
//! driver, the plan of every scenario and hmm-tests are in /hmmlab:
//! `/hmmlab/driver --not-init /hmmlab/plan.json` runs the scenarios.

use anyhow::{Context, Result};
use hmmlab_harness::exit;
use hmmlab_harness::machine::{Accel, Machine};
use hmmlab_harness::qemu::{self, Boot};
use std::path::Path;

use hmmlab_proto::scenario::{DeviceKind, ThpMode};
use hmmlab_proto::Plan;

use crate::cli::{AccelChoice, ShellArgs};
use crate::image::{self, Entry};
use crate::kernel::Kernel;
use crate::run::{self, Inputs};

/// The guest's per-scenario limit when scenarios are run by hand.
const SHELL_SCENARIO_TIMEOUT_MS: u64 = 60_000;

// The minimal kernel has no BINFMT_SCRIPT, so /init is busybox itself (its
// `init` applet, by name) and scripts run through `busybox sh`.
const INITTAB: &str = "::sysinit:/bin/busybox sh /etc/rc\n::respawn:/bin/busybox setsid /bin/busybox cttyhack /bin/busybox sh\n";

const RC: &str = r#"/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo madvise > /sys/kernel/mm/transparent_hugepage/enabled
echo "hmmlab shell: $(uname -r); devices: $(ls /dev | grep hmm_dmirror | tr '\n' ' ')"
echo "  /hmmlab/driver --not-init /hmmlab/plan.json   runs every scenario"
echo "  /hmmlab/bin/hmm-tests                         the kernel's selftest"
echo "  poweroff -f                                   ends the VM"
"#;

/// The run's own stages (inputs, kernel and guest, plan with `requires`
/// and `variant` resolved for this kernel), then a busybox image instead
/// of the driver as PID 1, and QEMU on the terminal.
pub fn shell(a: &ShellArgs) -> Result<i32> {
    let repo = crate::paths::repo_root();
    crate::deps::ensure(&["busybox-static".to_string()], false)?;
    let inputs = Inputs {
        scenarios: hmmlab_harness::scenario::load_dir(&repo.join("scenarios"))?,
        machine: Machine::load(&repo.join("images/machines"), &a.machine)
            .map_err(|e| crate::fail::bad_input(e.to_string()))?,
        machine_name: a.machine.clone(),
        kernel: crate::kernel::Request::from_args(&a.kernel)?,
    };
    let (k, guest) = run::prepare(&inputs)?;
    // Every kind of device memory the machine has.
    let kinds: Vec<DeviceKind> = DeviceKind::ALL
        .into_iter()
        .filter(|d| crate::plan::machine_has(&inputs.machine.devices, *d))
        .collect();
    let plan = run::plan_stage(vec![ThpMode::Madvise], &kinds, &inputs, &k)?;
    let dir = tempfile::Builder::new().prefix("hmmlab-shell-").tempdir()?;
    let initrd = dir.path().join("initramfs.cpio");
    image::write_initramfs(
        &initrd,
        &entries(
            &guest,
            &k,
            &run::guest_plan(&plan, SHELL_SCENARIO_TIMEOUT_MS, &inputs.machine),
        )?,
    )?;
    let boot = Boot {
        accel: if a.accel == AccelChoice::Kvm {
            Accel::Kvm
        } else {
            Accel::Tcg
        },
        kernel: run::boot_image(&k, &inputs.machine)?,
        initrd,
        console_log: dir.path().join("console.log"),
        results_log: dir.path().join("results.jsonl"),
        coverage_log: None,
        qmp_socket: dir.path().join("qmp.sock"),
        append: a.append.clone(),
        interactive: true,
    };
    let argv = qemu::argv(&inputs.machine, &boot);
    eprintln!("Running with: $ {}", crate::shell::quote_argv(&argv));
    let status = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .with_context(|| format!("starting {}", argv[0]))?;
    Ok(if status.success() {
        exit::OK
    } else {
        exit::INFRA
    })
}

/// The shell image: busybox as init, then what a run's image holds, with
/// the driver at /hmmlab/driver.
fn entries(guest: &Path, k: &Kernel, plan: &Plan) -> Result<Vec<Entry<'static>>> {
    let busybox =
        std::fs::read("/bin/busybox").context("reading /bin/busybox (package busybox-static)")?;
    let mut v = vec![
        Entry {
            path: "init",
            mode: 0o755,
            data: busybox.clone(),
        },
        Entry {
            path: "bin/busybox",
            mode: 0o755,
            data: busybox,
        },
        Entry {
            path: "etc/inittab",
            mode: 0o644,
            data: INITTAB.as_bytes().to_vec(),
        },
        Entry {
            path: "etc/rc",
            mode: 0o644,
            data: RC.as_bytes().to_vec(),
        },
    ];
    v.extend(run::guest_entries("hmmlab/driver", guest, k, plan)?);
    Ok(v)
}
