//! Runs in: the runtime process (P). File and directory primitives on
//! cgroupfs: one write(2) per value, pid collection, removal with retries.

use super::POLL;
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Cgroup files want one write(2) per value; never create them (O_CREAT on
/// cgroupfs fails with a confusing error, and in fixtures it would hide typos).
pub(super) fn write_file(path: &Path, value: &str) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    write_value(f, path, value)
}

/// True when an error in `e`'s chain carries one of `set`, whether as nix's
/// Errno or as std's io::Error (the file helpers here return the latter).
pub(super) fn has_errno(e: &anyhow::Error, set: &[Errno]) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<Errno>().is_some_and(|e| set.contains(e))
            || c.downcast_ref::<std::io::Error>()
                .and_then(|e| e.raw_os_error())
                .is_some_and(|n| set.contains(&Errno::from_raw(n)))
    })
}

fn write_value(mut f: std::fs::File, path: &Path, value: &str) -> Result<()> {
    use std::io::Write as _;
    f.write_all(value.as_bytes()).map_err(|e| {
        let why = memory_limit_refused(path, value, &e);
        let e = anyhow::Error::new(e).context(format!("write {value:?} to {}", path.display()));
        match why {
            Some(why) => e.context(why),
            None => e,
        }
    })
}

/// A cgroup directory held open (O_DIRECTORY): its control files are opened
/// relative to the fd, as crun does, instead of walking the absolute
/// /sys/fs/cgroup/... path once per file. Those walks take the kernfs lock,
/// and were measured to contend with network namespace setup under
/// parallel load. The path is kept for messages.
pub(super) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    pub(super) fn open(path: &Path) -> Result<Dir> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(std::io::Error::from)
        .with_context(|| format!("open {}", path.display()))?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Open the control file `name` for writing (never created, never
    /// followed elsewhere: `name` is one file name from the plan).
    pub(super) fn open_file(&self, name: &str) -> Result<std::fs::File> {
        let fd = nix::fcntl::openat(
            self.fd.as_fd(),
            name,
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(std::io::Error::from)
        .with_context(|| format!("open {}", self.path.join(name).display()))?;
        Ok(std::fs::File::from(fd))
    }

    /// `write_file` on the file `name` of this directory.
    pub(super) fn write(&self, name: &str, value: &str) -> Result<()> {
        write_value(self.open_file(name)?, &self.path.join(name), value)
    }

    /// `read_trim` on the file `name` of this directory.
    pub(super) fn read(&self, name: &str) -> Result<String> {
        let path = || self.path.join(name);
        let fd = nix::fcntl::openat(
            self.fd.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(std::io::Error::from)
        .with_context(|| format!("read {}", path().display()))?;
        let s = std::io::read_to_string(std::fs::File::from(fd))
            .with_context(|| format!("read {}", path().display()))?;
        Ok(s.trim().to_string())
    }

    /// Whether this directory has an entry `name` (as `Path::exists`).
    pub(super) fn has(&self, name: &str) -> bool {
        nix::sys::stat::fstatat(self.fd.as_fd(), name, AtFlags::empty()).is_ok()
    }
}

/// A memory limit the kernel refuses (v1: EBUSY when it is below what the
/// cgroup uses and reclaim cannot get there) is said as runc says it, with
/// the usage that made it fail.
fn memory_limit_refused(path: &Path, value: &str, e: &std::io::Error) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let (usage, peak) = match name {
        "memory.limit_in_bytes" | "memory.soft_limit_in_bytes" => {
            ("memory.usage_in_bytes", "memory.max_usage_in_bytes")
        }
        "memory.memsw.limit_in_bytes" => (
            "memory.memsw.usage_in_bytes",
            "memory.memsw.max_usage_in_bytes",
        ),
        "memory.max" => ("memory.current", "memory.peak"),
        _ => return None,
    };
    if !matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EINVAL)) {
        return None;
    }
    let dir = path.parent()?;
    let read = |f: &str| read_trim(&dir.join(f)).unwrap_or_else(|_| "?".into());
    let what = if name.contains("memsw") {
        "memory+swap limit"
    } else {
        "memory limit"
    };
    Some(format!(
        "unable to set {what} to {value} (current usage: {}, peak usage: {})",
        read(usage),
        read(peak)
    ))
}

pub(super) fn read_trim(path: &Path) -> Result<String> {
    let s = crate::procfs::read_text(path).with_context(|| format!("read {}", path.display()))?;
    Ok(s.trim().to_string())
}

pub(super) fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = match crate::procfs::read_text(dir.join("cgroup.procs")) {
        Ok(s) => s,
        // The (sub-)cgroup was removed while we walked the tree.
        Err(e) if vanished(&e) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("read {}/cgroup.procs", dir.display())),
    };
    for line in procs.lines() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            line.trim()
                .parse()
                .with_context(|| format!("bad pid {line:?} in {}", dir.display()))?,
        );
    }
    if !may_have_subdirs(dir) {
        return Ok(());
    }
    for sub in subdirs(dir)? {
        collect_pids(&sub, out)?;
    }
    Ok(())
}

/// The errors of a cgroup file or directory that is gone (ENOENT) or being
/// removed (ENODEV: kernfs answers so for a node opened before its
/// removal): a cgroup may be removed while we use it, e.g. by systemd
/// stopping the unit a `delete` asked it to stop.
pub(super) const GONE: &[Errno] = &[Errno::ENOENT, Errno::ENODEV];

/// True for an io::Error in [`GONE`].
pub(super) fn vanished(e: &std::io::Error) -> bool {
    e.raw_os_error()
        .is_some_and(|n| GONE.contains(&Errno::from_raw(n)))
}

/// The subdirectories of `dir`, none when `dir` is gone or going
/// ([`vanished`]).
pub(super) fn subdirs(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if vanished(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("read dir {}", dir.display())),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = match e {
            Ok(e) => e,
            Err(e) if vanished(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("read dir {}", dir.display())),
        };
        if e.file_type()?.is_dir() {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// False only when `dir` surely has no subdirectory, known without listing
/// it: kernfs (cgroupfs, v1 and v2) keeps a directory's link count at 2 +
/// its subdirectories, and one stat costs less than listing the dozens of
/// control files of a v1 cgroup. Anything else (an error, another count, a
/// file system that counts otherwise) answers true: then the caller lists.
fn may_have_subdirs(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).map_or(true, |m| m.nlink() != 2)
}

/// rmdir, retrying EBUSY for a bounded time: the kernel may still be tearing
/// down the last exiting task (runc retries the same way).
pub(super) fn rmdir_retry(dir: &Path) -> std::result::Result<(), Errno> {
    let mut result = Ok(());
    for _ in 0..50 {
        result = std::fs::remove_dir(dir)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)));
        if result != Err(Errno::EBUSY) {
            break;
        }
        std::thread::sleep(POLL);
    }
    result
}

pub(super) fn remove_tree(dir: &Path) -> Result<()> {
    // The common case first, an empty leaf: one rmdir, nothing to look at.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if vanished(&e) => return Ok(()),
        Err(_) => {}
    }
    if may_have_subdirs(dir) {
        for sub in subdirs(dir)? {
            remove_tree(&sub)?;
        }
    }
    match rmdir_retry(dir) {
        Err(e) if !GONE.contains(&e) => Err(e).with_context(|| format!("rmdir {}", dir.display())),
        _ => Ok(()),
    }
}
