//! The QEMU child in a guard: Drop asks QMP to quit, then kills, then waits.
//! Every wait also watches the child, and fails with QEMU's stderr when it died.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::qmp::Qmp;

pub struct Vm {
    handle: Option<duct::Handle>,
    pub qmp: Option<Qmp>,
    pub stderr_path: PathBuf,
    pub started: Instant,
    pub pid: u32,
}

impl Vm {
    /// Start QEMU with `argv`; its stdout and stderr go to `<dir>/qemu.stderr`.
    pub fn spawn(argv: &[String], dir: &Path) -> Result<Vm> {
        let stderr_path = dir.join("qemu.stderr");
        let f = std::fs::File::create(&stderr_path)
            .with_context(|| format!("creating {}", stderr_path.display()))?;
        let started = Instant::now();
        let handle = duct::cmd(&argv[0], &argv[1..])
            .stdin_null()
            .stdout_file(f.try_clone()?)
            .stderr_file(f)
            .unchecked()
            .before_spawn(|cmd| {
                crate::interrupt::isolate_child(cmd);
                Ok(())
            })
            .start()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    anyhow::anyhow!(
                        "{} not found: install QEMU (apt-get install qemu-system-x86, or `cargo xtask deps` as root)",
                        argv[0]
                    )
                } else {
                    anyhow::Error::new(e).context(format!("starting {}", argv[0]))
                }
            })?;
        let pid = handle.pids().first().copied().unwrap_or(0);
        Ok(Vm {
            handle: Some(handle),
            qmp: None,
            stderr_path,
            started,
            pid,
        })
    }

    /// QEMU's stderr so far (for error messages).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path)
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Exit status if QEMU has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let h = self.handle.as_ref()?;
        match h.try_wait() {
            Ok(Some(out)) => Some(out.status),
            _ => None,
        }
    }

    /// Connect to QMP, retrying while the socket appears; fail early if QEMU dies.
    pub fn connect_qmp(&mut self, socket: &Path, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.exited() {
                bail!(
                    "QEMU exited at start ({st}). Its stderr:\n{}",
                    indent(&self.stderr())
                );
            }
            if socket.exists() {
                if let Ok(q) = Qmp::connect(socket, Duration::from_secs(5)) {
                    self.qmp = Some(q);
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "QMP socket {} did not answer within {timeout:?}; QEMU stderr:\n{}",
                    socket.display(),
                    indent(&self.stderr())
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Confirm the VM runs.
    pub fn confirm_running(&mut self) -> Result<String> {
        let q = self.qmp.as_mut().context("no QMP connection")?;
        let st = q.execute(&qapi::qmp::query_status {}, Duration::from_secs(5))?;
        Ok(format!("{:?}", st.status).to_lowercase())
    }

    /// `info registers` through the human monitor, for post-mortems.
    pub fn registers(&mut self) -> Option<String> {
        let q = self.qmp.as_mut()?;
        q.execute(
            &qapi::qmp::human_monitor_command {
                command_line: "info registers -a".into(),
                cpu_index: None,
            },
            Duration::from_secs(3),
        )
        .ok()
    }

    /// Stop: QMP `quit`, wait up to 3 s, then kill. Returns how it went.
    pub fn stop(&mut self) -> String {
        if self.handle.is_none() {
            return "already stopped".into();
        }
        if self.exited().is_some() {
            self.handle = None;
            return "exited by itself".into();
        }
        let mut how = "killed (QMP did not answer)".to_string();
        if let Some(q) = self.qmp.as_mut() {
            // QEMU may exit before it replies to `quit`: the reply is not awaited for long.
            let _ = q.execute(&qapi::qmp::quit {}, Duration::from_millis(500));
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if self.exited().is_some() {
                    self.handle = None;
                    return "stopped with QMP quit".into();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            how = "killed (did not exit after QMP quit)".into();
        }
        if let Some(h) = self.handle.take() {
            crate::interrupt::kill_group(self.pid, libc::SIGKILL);
            let _ = h.kill();
        }
        how
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn indent(s: &str) -> String {
    if s.is_empty() {
        return "    (empty)".into();
    }
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
