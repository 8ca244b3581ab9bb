//! Helpers for tests that run the real `cargo xtask` binary: real kernel
//! build (cached, shared by every test), real QEMU.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The single run directory the command created under the results dir, if any.
    pub run_dir: Option<PathBuf>,
    pub results: tempfile::TempDir,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        let dir = self
            .run_dir
            .as_ref()
            .unwrap_or_else(|| panic!("no run directory was created\n{}", self.stderr));
        run_json(dir)
    }
    pub fn scenario(&self, name: &str) -> serde_json::Value {
        self.json()["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("scenario {name} missing from run.json"))
    }
    pub fn explain(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Run `xtask <args>` with a private results directory.
pub fn xtask(args: &[&str]) -> Run {
    let results = tempfile::tempdir().unwrap();
    let out: Output = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .arg("--results-dir")
        .arg(results.path())
        .current_dir(repo())
        .output()
        .expect("running xtask");
    let run_dir = first_run_dir(results.path());
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        run_dir,
        results,
    }
}

/// The (first) run directory a command made under `results`, if any.
pub fn first_run_dir(results: &Path) -> Option<PathBuf> {
    std::fs::read_dir(results)
        .ok()?
        .flatten()
        .next()
        .map(|e| e.path())
}

/// A run directory's run.json.
pub fn run_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("run.json")).expect("run.json");
    serde_json::from_str(&text).expect("run.json is valid JSON")
}

/// Write a scenario file into a fresh directory and return its path.
pub fn scenario_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// Command lines of running processes that mention `needle` (read from /proc,
/// so no procps is needed).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().to_string();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        if let Ok(raw) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(format!("{pid}: {cmd}"));
            }
        }
    }
    out
}

/// True when no QEMU this test might have started is still running.
pub fn no_qemu_left(run: &Run) -> bool {
    let left = processes_mentioning(&run.results.path().to_string_lossy());
    assert!(left.is_empty(), "left running: {left:?}");
    true
}

/// `xtask kernel <args>` (built or found in the cache): its JSON description.
pub fn kernel_json(args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("kernel")
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The source tree of Debian's 6.12 kernel, as `xtask kernel` reports it
/// (built or found in the cache); the bisect and tree tests plant 6.12
/// patches in it.
pub fn cached_kernel_tree() -> PathBuf {
    PathBuf::from(
        kernel_json(&["--kernel", "debian:6.12"])["tree"]
            .as_str()
            .unwrap(),
    )
}

/// A directory with a `cargo` that runs this build's xtask for `cargo xtask …`
/// (what the alias in .cargo/config.toml does), so printed commands and CI
/// steps run the binary
/// under test, not whatever cargo would build.
pub fn cargo_shim() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let shim = d.path().join("cargo");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\n[ \"$1\" = xtask ] || {{ echo \"shim: only cargo xtask\" >&2; exit 99; }}\n\
             shift\nexec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_xtask")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// The run's results.ktap as the kernel's own KTAP parser reads it
/// (`tools/testing/kunit/kunit.py parse --json` of the tree the run built),
/// checked against run.json: every scenario there, with the same verdict;
/// a selftest's cases as its subtests, counted the same.
pub fn assert_ktap_reads_back(run_dir: &Path) {
    let j = run_json(run_dir);
    let tree = PathBuf::from(
        j["kernel"]["tree"]
            .as_str()
            .expect("kernel.tree in run.json"),
    );
    let out_json = tempfile::NamedTempFile::new().unwrap();
    let out = std::process::Command::new("python3")
        .arg(tree.join("tools/testing/kunit/kunit.py"))
        .arg("parse")
        .arg(format!("--json={}", out_json.path().display()))
        .arg(run_dir.join("results.ktap"))
        .output()
        .expect("python3 (installed by `cargo xtask test`) runs kunit.py");
    let parsed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_json.path()).unwrap()).unwrap_or_else(|e| {
            panic!(
                "kunit.py parse wrote no JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
    for s in j["scenarios"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        if let Some(cases) = s["cases"].as_array() {
            let group = parsed["sub_groups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["name"] == name)
                .unwrap_or_else(|| panic!("{name}: no subtest group in KTAP: {parsed}"));
            let skipped = cases.iter().filter(|c| c["outcome"] == "skip").count();
            assert_eq!(group["misc"]["tests"], cases.len(), "{name}: {group}");
            assert_eq!(group["misc"]["skipped"], skipped, "{name}: {group}");
            continue;
        }
        let verdict = match s["outcome"].as_str().unwrap() {
            "pass" => "PASS",
            "skip" => "SKIP",
            _ => "FAIL",
        };
        let case = parsed["test_cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name}: not in KTAP: {parsed}"));
        assert_eq!(case["status"], verdict, "{name}: {case}");
    }
}

/// Open `page` in headless Chromium with `script` appended (it runs after
/// the page is parsed and styled) and return what the script left in
/// `probe` (a global it sets to a JSON-serialisable value). The page is
/// copied next to itself so its relative links still work. Chromium is
/// Debian's `chromium` package, which `cargo xtask test` installs.
pub fn browser_probe(page: &Path, script: &str) -> serde_json::Value {
    browser_page(page, script).0
}

/// [`browser_probe`], and every message the page wrote to the browser's
/// console (errors it threw included), one line each.
pub fn browser_page(page: &Path, script: &str) -> (serde_json::Value, Vec<String>) {
    let copy = page.with_extension("probe.html");
    let mut html = std::fs::read_to_string(page).unwrap();
    html.push_str(&format!(
        "\n<script>\nlet probe = null;\ntry {{\n{script}\n}} catch (e) {{ probe = {{error: String(e)}}; }}\n\
         const out = document.createElement('pre'); out.id = 'hmmlab-probe';\n\
         out.textContent = JSON.stringify(probe); document.body.appendChild(out);\n</script>\n"
    ));
    std::fs::write(&copy, html).unwrap();
    let out = chromium(&["--enable-logging=stderr", "--v=0", "--dump-dom"], &copy);
    let _ = std::fs::remove_file(&copy);
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("<pre id=\"hmmlab-probe\">").unwrap_or_else(|| {
        panic!(
            "chromium ({}) returned no probe for {}:\n{}",
            out.status,
            page.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    }) + "<pre id=\"hmmlab-probe\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        v.get("error").is_none(),
        "the probe failed in the page: {v}"
    );
    // Chromium logs each console message as `…:CONSOLE:<line>] "text", source: …`.
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    (v, console)
}

/// A screenshot of `page` (`width`×`height` pixels of it) into `png`.
pub fn browser_screenshot(page: &Path, png: &Path, width: u32, height: u32) {
    let _ = std::fs::remove_file(png);
    let out = chromium(
        &[
            &format!("--screenshot={}", png.display()),
            &format!("--window-size={width},{height}"),
            "--hide-scrollbars",
        ],
        page,
    );
    let bytes = std::fs::read(png).unwrap_or_else(|e| {
        panic!(
            "chromium ({}) wrote no screenshot {} ({e}):\n{}",
            out.status,
            png.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        bytes.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        png.display()
    );
}

/// Headless Chromium with a private profile and no network of its own,
/// on the file `page`; killed if it takes more than a minute.
fn chromium(args: &[&str], page: &Path) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let child = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start chromium ({e}): this test needs Debian's chromium package (cargo xtask test installs it)")
        });
    let pid = child.id();
    // A page that hangs the browser fails the test instead of hanging it.
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .is_err()
        {
            // SAFETY: kill(2) on the child this test spawned; it is not
            // reaped until wait_with_output below returns, which is after.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    let _ = watchdog.join();
    out
}

/// The `mutate-<id>` directory `cargo xtask mutate` made under `results`.
pub fn mutate_dir(results: &Path) -> PathBuf {
    std::fs::read_dir(results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("mutate-")
        })
        .expect("a results/mutate-<id> directory")
}

/// Open a page that must stand alone in the browser with `probe` (which
/// reports `external`, the scripts, styles and links it would load, and
/// `fetched`, what it did load): no console message, nothing external,
/// nothing fetched. Prints how long loading and probing took; returns the
/// probe's result.
pub fn self_contained_page(page: &Path, probe: &str) -> serde_json::Value {
    let t = std::time::Instant::now();
    let (p, console) = browser_page(page, probe);
    println!("chromium loaded and probed it in {:.2?}", t.elapsed());
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert_eq!(p["external"], serde_json::json!([]), "{p}");
    assert_eq!(p["fetched"], serde_json::json!([]), "nothing fetched");
    p
}
