//! Runs in: the runtime process (P). cgroup v2 (and the unified directory of a
//! hybrid host): directory creation with `cgroup.subtree_control` enabling,
//! freezing through cgroup.freeze/cgroup.events, and cgroup.kill.
//!
//! NOT DONE: device control. v2 has no devices.* files; it needs a
//! BPF_PROG_TYPE_CGROUP_DEVICE program attached to the directory. resources.rs
//! rejects rule sets that would need one (see `resources::devices`).

use super::{Hierarchy, POLL, read_trim, write_file};
use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::stat::Mode;
use std::path::{Path, PathBuf};

/// mkdir the levels from the mount down to the container's directory,
/// enabling controllers in every level above the leaf. `enable: None` enables
/// all available controllers (runc's fs2 behaviour); `Some(list)` only those,
/// and missing ones are an error.
pub(super) fn create(
    h: &Hierarchy,
    enable: Option<&[String]>,
    created: &mut Vec<PathBuf>,
) -> Result<()> {
    let rel = h
        .dir
        .strip_prefix(&h.mount)
        .with_context(|| format!("{} is not under {}", h.dir.display(), h.mount.display()))?;
    let mut cur = h.mount.clone();
    for c in rel.components() {
        // "No internal processes": controllers must be enabled in a parent's
        // subtree_control before a child can use them.
        enable_controllers(&cur, enable)?;
        cur.push(c);
        match nix::unistd::mkdir(&cur, Mode::from_bits_truncate(0o755)) {
            Ok(()) => created.push(cur.clone()),
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("mkdir {}", cur.display())),
        }
    }
    Ok(())
}

fn enable_controllers(dir: &Path, enable: Option<&[String]>) -> Result<()> {
    if enable.is_some_and(|e| e.is_empty()) {
        return Ok(());
    }
    let available = read_optional(&dir.join("cgroup.controllers"))?;
    let enabled = read_optional(&dir.join("cgroup.subtree_control"))?;
    let available: Vec<&str> = available.split_whitespace().collect();
    let wanted: Vec<&str> = match enable {
        None => available.clone(),
        Some(list) => list.iter().map(String::as_str).collect(),
    };
    for c in wanted {
        if enabled.split_whitespace().any(|e| e == c) {
            continue;
        }
        if !available.contains(&c) {
            bail!(
                "the {c} cgroup controller is not available in {}",
                dir.display()
            );
        }
        let result = write_file(&dir.join("cgroup.subtree_control"), &format!("+{c}"));
        // Enabling "everything" is best effort, as in runc: a controller may be
        // refused (e.g. cpu with realtime tasks in the parent) without harm.
        if enable.is_some() {
            result?;
        }
    }
    Ok(())
}

/// A missing file reads as empty: newly made directories in fixture trees
/// have no files (the kernel always provides them).
fn read_optional(path: &Path) -> Result<String> {
    if path.exists() {
        read_trim(path)
    } else {
        Ok(String::new())
    }
}

/// 1000 rounds of 10ms: ten seconds for cgroup.events to report the state.
const FREEZE_ROUNDS: usize = 1000;

pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "1" } else { "0" };
    write_file(&dir.join("cgroup.freeze"), want)?;
    let events = dir.join("cgroup.events");
    for _ in 0..FREEZE_ROUNDS {
        // cgroup.freeze is the request; "frozen" in cgroup.events says it is done.
        let text = read_trim(&events)?;
        if text
            .lines()
            .any(|l| l.split_whitespace().eq(["frozen", want]))
        {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
    if frozen {
        let _ = write_file(&dir.join("cgroup.freeze"), "0");
    }
    bail!("{} did not report frozen {want}", events.display())
}

pub(super) fn is_frozen(dir: &Path) -> bool {
    read_trim(&dir.join("cgroup.freeze")).is_ok_and(|s| s == "1")
}

/// SIGKILL the whole subtree at once (Linux 5.14+). Returns false when the
/// kernel has no cgroup.kill, so the caller falls back to signalling pids.
pub(super) fn kill(dir: &Path) -> Result<bool> {
    let file = dir.join("cgroup.kill");
    if !file.exists() {
        return Ok(false);
    }
    write_file(&file, "1")?;
    Ok(true)
}
