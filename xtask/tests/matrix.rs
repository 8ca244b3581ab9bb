//! The matrix runs cells as separate processes, side by side, and tabulates
//! them; the cell names are the same ones `run-scenarios --cell` takes.

mod common;

use common::*;

#[test]
fn matrix_runs_cells_side_by_side_and_prints_a_table() {
    let run = xtask(&[
        "matrix",
        "-f",
        "6.12-base",
        "--jobs",
        "2",
        "-s",
        "empty-one-page",
        "-s",
        "thp-split",
    ]);
    assert_eq!(run.code, 0, "{}", run.explain());
    // One build for both cells, listed with how it was had.
    let builds: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| *l != "kernels:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(builds.len(), 1, "{}", run.stdout);
    assert!(
        builds[0].trim_start().starts_with("6.12-base ")
            && (builds[0].contains("cached") || builds[0].contains("built in")),
        "{}",
        run.stdout
    );
    let header = run
        .stdout
        .lines()
        .find(|l| l.starts_with("scenario"))
        .unwrap_or_else(|| panic!("no table\n{}", run.stdout));
    assert!(
        header.contains("6.12-base-madvise") && header.contains("6.12-base-always"),
        "{}",
        run.stdout
    );
    for scenario in ["empty-one-page", "thp-split"] {
        let row = run
            .stdout
            .lines()
            .find(|l| l.starts_with(scenario))
            .unwrap_or_else(|| panic!("{}", run.stdout));
        assert_eq!(row.matches("pass").count(), 2, "{row}");
    }
    // Each cell's own run directory, with the cell's THP mode.
    let matrix_dir = run.run_dir.as_ref().unwrap();
    for (cell, thp) in [
        ("6.12-base-madvise", "madvise"),
        ("6.12-base-always", "always"),
    ] {
        let cell_dir = matrix_dir.join(cell);
        let j = run_json(&first_run_dir(&cell_dir).unwrap());
        assert_eq!(j["default_thp"], thp, "{cell}");
        assert!(
            j["qemu_command"].as_str().unwrap().contains("-smp 1"),
            "side by side: one vCPU each"
        );
    }
    assert!(no_qemu_left(&run));
}

#[test]
fn github_matrix_lists_every_cell() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["matrix", "--emit", "github"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cells: Vec<&str> = j["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cell"].as_str().unwrap())
        .collect();
    assert_eq!(cells.len(), 18);
    assert!(
        cells.contains(&"6.1-kasan-always")
            && cells.contains(&"6.12-debug-madvise")
            && cells.contains(&"7.3-base-always")
    );
    let kasan = j["include"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cell"] == "6.1-kasan-always")
        .unwrap();
    assert_eq!(kasan["build"], "6.1-kasan", "{kasan}");
}
