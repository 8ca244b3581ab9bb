//! `cargo xtask shell`: the same kernel with an interactive console. Typed
//! into for real: wait for the banner, run a few commands, power off.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

#[test]
fn the_shell_boots_the_same_kernel_and_runs_commands() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("shell")
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let wait_for = |needle: &str, seen: &mut Vec<String>| -> bool {
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    };
    assert!(
        wait_for("hmmlab shell: 7.3", &mut seen),
        "no banner: {seen:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all(b"echo MARK-$((6*7))\n").unwrap();
    assert!(
        wait_for("MARK-42", &mut seen),
        "the shell did not answer: {seen:?}"
    );
    stdin
        .write_all(b"/hmmlab/bin/hmm-tests -r hmm.hmm_device_private.open_close 2>&1 | tail -1\n")
        .unwrap();
    assert!(
        wait_for("pass:1 fail:0", &mut seen),
        "hmm-tests did not run: {seen:?}"
    );
    // The plan is the run's: instances named by THP mode, `requires` and
    // `variant` resolved for this kernel.
    stdin
        .write_all(
            b"grep -q '\"empty-one-page@madvise\"' /hmmlab/plan.json && echo PLAN-OK-$((40+2))\n",
        )
        .unwrap();
    assert!(
        wait_for("PLAN-OK-42", &mut seen),
        "the shell's plan is not the run's: {seen:?}"
    );
    stdin.write_all(b"poweroff -f\n").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {seen:?}");
}
