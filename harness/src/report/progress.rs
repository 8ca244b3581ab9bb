//! Live progress on stderr, one line per thing that happened.

use anyhow::Result;

use crate::events::RunEvent;

use super::model::RunReport;
use super::reporter::Reporter;

pub struct Progress;

impl Reporter for Progress {
    fn name(&self) -> &'static str {
        "progress"
    }

    fn on_event(&mut self, ev: &RunEvent, _run: &RunReport) -> Result<()> {
        if let Some(line) = line(ev) {
            crate::say::err(&format!("{line}\n"));
        }
        Ok(())
    }
}

/// The progress line of an event, if it has one.
fn line(ev: &RunEvent) -> Option<String> {
    let t = |at: &std::time::Duration| format!("[{:6.2}s]", at.as_secs_f64());
    Some(match ev {
        RunEvent::RunStarted(s) => format!("run {}: {}", s.run_id, s.run_dir.display()),
        RunEvent::KernelReady(k) => format!("kernel: {} {} (build {})", k.source, k.release, k.key),
        RunEvent::Planned { planned, skipped } => {
            let na = skipped.iter().filter(|s| s.not_applicable).count();
            format!(
                "plan: {} scenario instance(s) to run, {} skipped here, {na} not applicable",
                planned.len(),
                skipped.len() - na
            )
        }
        RunEvent::VmStarted(v) => format!(
            "accel: {} ({})\nRunning with: $ {}\n[  0.00s] QEMU started (pid {})",
            v.accel, v.accel_reason, v.qemu_command, v.pid
        ),
        RunEvent::BootFinished(b) => format!(
            "{} guest up: {}, guest uptime {:.2}s, THP {}, devices {}",
            t(&b.at),
            b.kernel_release,
            b.uptime_ns as f64 / 1e9,
            b.thp_modes,
            b.devices.join(",")
        ),
        RunEvent::ScenarioStarted { .. } | RunEvent::StepFinished { .. } => return None,
        RunEvent::ScenarioFinished { at, result: r } => format!(
            "{} {}: {} ({:.1} ms){}",
            t(at),
            r.name,
            r.outcome.as_str(),
            r.duration_ns as f64 / 1e6,
            r.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
        RunEvent::GuestFatal { at, message } => {
            format!("{} guest driver failed: {message}", t(at))
        }
        RunEvent::QmpEvent { at, name } => format!("{} QMP event {name}", t(at)),
        RunEvent::ConsoleFinding(f) => format!(
            "console:{}: {:?}{}{}",
            f.line,
            f.kind,
            f.scenario
                .as_ref()
                .map(|s| format!(" during {s}"))
                .unwrap_or_default(),
            // A WARNING's own message is the line before it.
            Some(f.before.trim())
                .filter(|b| f.kind == crate::console::FindingKind::Warning && !b.is_empty())
                .map(|b| format!(": {b}"))
                .unwrap_or_default()
        ),
        RunEvent::InfraError { message } => format!("infrastructure error: {message}"),
        RunEvent::RunFinished(end) => format!("run {}", end.status),
    })
}
