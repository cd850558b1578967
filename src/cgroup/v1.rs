//! Runs in: the runtime process (P). cgroup v1: where files go in the
//! per-controller hierarchies, and the v1 quirks (cpuset inheritance, memory
//! limit ordering, bfq weight, freezer polling). Semantics live in resources.rs.

use super::fs::Dir;
use super::{Hierarchy, POLL, read_trim, write_file};
use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::stat::Mode;
use std::path::{Path, PathBuf};

/// mkdir every missing level from the mount point down to the container's
/// directory, recording the ones we made.
pub(super) fn create(h: &Hierarchy, created: &mut Vec<PathBuf>) -> Result<()> {
    let rel = h
        .dir
        .strip_prefix(&h.mount)
        .with_context(|| format!("{} is not under {}", h.dir.display(), h.mount.display()))?;
    let cpuset = h.controllers.iter().any(|c| c == "cpuset");
    let mut cur = h.mount.clone();
    for c in rel.components() {
        let parent = cur.clone();
        cur.push(c);
        match nix::unistd::mkdir(&cur, Mode::from_bits_truncate(0o755)) {
            Ok(()) => created.push(cur.clone()),
            // Someone else's (or a racing create's) directory: use it, never remove it.
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("mkdir {}", cur.display())),
        }
        if cpuset {
            // A new v1 cpuset starts with empty cpus/mems, and attaching a task
            // to it fails with ENOSPC; inherit the parent's, as runc does.
            copy_cpuset(&parent, &cur)?;
        }
    }
    Ok(())
}

pub(super) fn copy_cpuset(parent: &Path, child: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let (p, c) = (parent.join(file), child.join(file));
        // Only fixture trees lack these files; the kernel always provides them.
        if !c.exists() {
            continue;
        }
        if read_trim(&c)?.is_empty() {
            write_file(&c, &read_trim(&p)?)?;
        }
    }
    Ok(())
}

/// Apply one controller's writes to `dir`, each file opened relative to
/// the open directory.
pub(super) fn apply(dir: &Path, writes: &[super::Write]) -> Result<()> {
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    const PERIOD: &str = "cpu.cfs_period_us";
    const QUOTA: &str = "cpu.cfs_quota_us";
    let writes = writes
        .iter()
        .map(|w| {
            w.file()
                .context("linux.resources.devices: a device filter needs cgroup v2")
        })
        .collect::<Result<Vec<(&str, &str)>>>()?;
    let memsw = writes.iter().find(|(f, _)| *f == MEMSW);
    let mut memsw_done = false;
    let quota = writes.iter().find(|(f, _)| *f == QUOTA);
    let mut quota_done = false;
    let dir = Dir::open(dir)?;
    let mut rules: Option<(&str, std::fs::File)> = None;
    for &(file, value) in &writes {
        match file {
            // The kernel wants limit <= memsw at every moment: raising both
            // (an `update`) must write memsw first, lowering must write the
            // limit first. Try limit first and swap the order if refused.
            LIMIT if memsw.is_some() => {
                if dir.write(file, value).is_err() {
                    let (_, s) = memsw.expect("checked above");
                    dir.write(MEMSW, s)?;
                    memsw_done = true;
                    dir.write(file, value)?;
                }
            }
            // Lifting the limit (-1) without a word about swap lifts
            // memsw too (runc's rule), or the kernel refuses a limit above
            // memsw: memsw first, so limit <= memsw holds throughout.
            LIMIT if value == "-1" && dir.has(MEMSW) => {
                dir.write(MEMSW, "-1")?;
                dir.write(file, value)?;
            }
            MEMSW if memsw_done => {}
            // Under a parent with its own quota, a new period can be refused
            // until the quota fits it (and the other way round): try the
            // period first, and on a refusal the quota first (runc's retry).
            PERIOD if quota.is_some() => {
                if dir.write(file, value).is_err() {
                    let (_, q) = quota.expect("checked above");
                    dir.write(QUOTA, q)?;
                    quota_done = true;
                    dir.write(file, value)?;
                }
            }
            QUOTA if quota_done => {}
            // CFQ (and blkio.weight with it) left the kernel in 5.0; BFQ has its own file.
            "blkio.weight" if !dir.has(file) && dir.has("blkio.bfq.weight") => {
                dir.write("blkio.bfq.weight", value)?
            }
            "blkio.weight_device" if !dir.has(file) && dir.has("blkio.bfq.weight_device") => {
                dir.write("blkio.bfq.weight_device", value)?
            }
            "devices.allow" | "devices.deny" => write_rule(&mut rules, &dir, file, value)?,
            _ => dir.write(file, value)?,
        }
    }
    Ok(())
}

/// One device rule: consecutive rules to one file share one open (each
/// write(2) is a rule of its own to the kernel), which saves a path walk
/// and an open per rule: a dozen for the default devices.
fn write_rule<'a>(
    open: &mut Option<(&'a str, std::fs::File)>,
    dir: &Dir,
    file: &'a str,
    value: &str,
) -> Result<()> {
    use std::io::Write as _;
    if open.as_ref().is_none_or(|(f, _)| *f != file) {
        *open = Some((file, dir.open_file(file)?));
    }
    let (_, f) = open.as_mut().expect("opened above");
    f.write_all(value.as_bytes())
        .with_context(|| format!("write {value:?} to {}", dir.path().join(file).display()))
}

/// 1000 rounds of 10ms: ten seconds, the order of runc's freeze retries.
const FREEZE_ROUNDS: usize = 1000;

pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    const STATE: &str = "freezer.state";
    // Polled below: opened once, its files relative to the fd.
    let dir = Dir::open(dir)?;
    for _ in 0..FREEZE_ROUNDS {
        // Re-writing FROZEN restarts a FREEZING cgroup that got stuck on a task
        // in an uninterruptible sleep (runc does the same).
        dir.write(STATE, want)?;
        if dir.read(STATE)? == want {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
    if frozen {
        // Do not leave the container half frozen.
        let _ = dir.write(STATE, "THAWED");
    }
    bail!("{} did not reach {want}", dir.path().join(STATE).display())
}

pub(super) fn is_frozen(dir: &Path) -> bool {
    crate::procfs::read_line(&dir.join("freezer.state")).is_ok_and(|s| s == "FROZEN")
}
