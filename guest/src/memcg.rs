//! `memcg_max_kib`: the scenario process moves into a memory cgroup of its
//! own (cgroup v2, mounted by PID 1 at /sys/fs/cgroup when the kernel has
//! cgroups) whose `memory.max` the scenario gives, before it maps anything.
//! What it maps and migrates from then on is charged there
//! (mem_cgroup_charge() charges a folio to its mm's cgroup), so a charge
//! that would go over fails: a THP's at once (mm/memcontrol.c,
//! try_charge_memcg(): no retry and no OOM killer for a costly order). What
//! the process had before stays charged to the root cgroup. At the end it
//! moves back to the root cgroup and removes its own.

use std::fs;
use std::path::{Path, PathBuf};

/// Where PID 1 mounts the cgroup v2 hierarchy.
pub const ROOT: &str = "/sys/fs/cgroup";

/// The cgroup the scenario process is in until it is dropped.
#[derive(Debug)]
pub struct Memcg {
    dir: PathBuf,
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    fs::write(path, value).map_err(|e| format!("cannot write {value:?} to {}: {e}", path.display()))
}

/// Move this process into a new memory cgroup limited to `max_kib` KiB.
pub fn enter(max_kib: u64) -> Result<Memcg, String> {
    let root = Path::new(ROOT);
    let controllers = fs::read_to_string(root.join("cgroup.controllers")).map_err(|e| {
        format!(
            "{ROOT}/cgroup.controllers: {e}: no cgroup v2 hierarchy (this kernel has no \
             CONFIG_CGROUPS; images/configs/variants/memcg.config has it)"
        )
    })?;
    if !controllers.split_whitespace().any(|c| c == "memory") {
        return Err(format!(
            "{ROOT}/cgroup.controllers lists no `memory` ({:?}): this kernel has no \
             CONFIG_MEMCG (images/configs/variants/memcg.config has it)",
            controllers.trim()
        ));
    }
    write(&root.join("cgroup.subtree_control"), "+memory")?;
    let dir = root.join(format!("hmmlab-{}", std::process::id()));
    // A cgroup of an earlier process of the same pid that ended before it
    // could remove it: empty, so it goes.
    let _ = fs::remove_dir(&dir);
    fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let memcg = Memcg { dir };
    write(&memcg.dir.join("memory.max"), &(max_kib * 1024).to_string())?;
    write(&memcg.dir.join("cgroup.procs"), "0")?;
    Ok(memcg)
}

impl Drop for Memcg {
    fn drop(&mut self) {
        // Best effort: a process it forked and left running keeps the
        // cgroup in use; it is empty once that process is gone.
        let _ = fs::write(Path::new(ROOT).join("cgroup.procs"), "0");
        let _ = fs::remove_dir(&self.dir);
    }
}
