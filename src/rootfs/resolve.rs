//! Runs in: container init, wherever `paths::openat2` resolves a path and
//! the kernel's openat2 is unavailable (Linux < 5.6, valgrind, or a seccomp
//! profile around skiff that answers ENOSYS/EPERM; see `paths::openat2`).
//!
//! A userspace `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: the path is walked
//! one component at a time from the root fd with
//! `openat(O_PATH|O_NOFOLLOW)`, so the kernel never follows a symlink for us.
//! - A symlink's target (readlinkat) is spliced in front of the rest of the
//!   path; an absolute target restarts at the root. At most 40 links per
//!   lookup (the kernel's MAXSYMLINKS), then ELOOP.
//! - `..` pops a stack of the directory fds opened since the root, and is a
//!   no-op at the root. ".." is never opened: a directory moved outside the
//!   root while we hold it cannot lead us further out.
//! - Magic links are refused with ELOOP, as openat2 does. They only exist on
//!   procfs, and every ordinary procfs symlink (`self`, `thread-self`,
//!   `mounts`, `net`) sits in the procfs root directory, while all magic ones
//!   (`<pid>/fd/*`, `exe`, `cwd`, `root`, `ns/*`, `map_files/*`) sit below a
//!   pid directory. So a symlink on procfs is followed only when its parent
//!   is the procfs root (inode 1).
//! - The last component honours the caller's flags: O_NOFOLLOW opens a
//!   final symlink itself, O_DIRECTORY demands a directory, O_PATH returns
//!   the O_PATH fd; other access modes open the name with O_NOFOLLOW added.
//!   O_CREAT and O_TMPFILE are refused (EINVAL): no caller creates through
//!   this path, and creating through a dangling link is what `mkdir_all`
//!   handles explicitly.
//! - Finally, when /proc is there to ask, the result's path must lie under
//!   the root's path (`/proc/self/fd` readlinks, as securejoin verifies its
//!   walks); otherwise EXDEV. This catches a rename race the stack alone
//!   could not see (a directory we hold moved outside the root mid-walk).

use super::paths::kind_of;
use nix::errno::Errno;
use nix::fcntl::{OFlag, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};
use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The kernel's MAXSYMLINKS: links followed per lookup before ELOOP.
const MAX_SYMLINKS: u32 = 40;
/// PROC_ROOT_INO (fs/proc/internal.h): the inode of every procfs root.
const PROC_ROOT_INO: u64 = 1;

/// Opens `path` under `root` like openat2(RESOLVE_IN_ROOT |
/// RESOLVE_NO_MAGICLINKS), without openat2. O_CLOEXEC is always added.
pub fn open_in_root(root: BorrowedFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    if flags.contains(OFlag::O_CREAT) || flags.contains(OFlag::O_TMPFILE) {
        return Err(Errno::EINVAL);
    }
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err(Errno::ENOENT);
    }
    let mut walk = Walk {
        root,
        stack: Vec::new(),
        todo: Vec::new(),
        links: 0,
    };
    walk.push_path(bytes);
    let fd = walk.run(flags)?;
    verify_under_root(root, fd.as_fd())?;
    Ok(fd)
}

/// A lookup in progress.
struct Walk<'a> {
    root: BorrowedFd<'a>,
    /// The directories entered since the root, innermost last; empty at the root.
    stack: Vec<OwnedFd>,
    /// The components still to walk, in reverse: the next one is last.
    todo: Vec<OsString>,
    /// Symlinks followed so far.
    links: u32,
}

impl Walk<'_> {
    /// The directory the next component is looked up in.
    fn cur(&self) -> BorrowedFd<'_> {
        self.stack.last().map_or(self.root, |f| f.as_fd())
    }

    /// Puts the components of `path` in front of what is left to walk; a
    /// leading "/" goes back to the root. A trailing "/" becomes a final
    /// "." so the name before it must be a directory, and is followed.
    fn push_path(&mut self, path: &[u8]) {
        if path.starts_with(b"/") {
            self.stack.clear();
        }
        if path.ends_with(b"/") && path.iter().any(|&b| b != b'/') {
            self.todo.push(OsString::from("."));
        }
        let names = path.split(|&b| b == b'/').filter(|n| !n.is_empty());
        let names: Vec<_> = names.map(|n| OsString::from_vec(n.to_vec())).collect();
        self.todo.extend(names.into_iter().rev());
    }

    /// Walks every component; returns the fd of the last one, opened with `flags`.
    fn run(&mut self, flags: OFlag) -> nix::Result<OwnedFd> {
        while let Some(name) = self.todo.pop() {
            let last = self.todo.is_empty();
            match name.as_bytes() {
                b"." => {}
                b".." => {
                    // At the root there is nothing to pop: ".." stays there.
                    self.stack.pop();
                }
                _ => {
                    if let Some(fd) = self.step(&name, last, flags)? {
                        return Ok(fd);
                    }
                }
            }
        }
        // The path ended on the root, ".", ".." or a link to one of those.
        open_at(self.cur(), Path::new("."), flags)
    }

    /// One ordinary component. `Some(fd)` when it was the last one.
    fn step(&mut self, name: &OsString, last: bool, flags: OFlag) -> nix::Result<Option<OwnedFd>> {
        let fd = open_at(
            self.cur(),
            Path::new(name),
            OFlag::O_PATH | OFlag::O_NOFOLLOW,
        )?;
        let st = fstat(fd.as_fd())?;
        let kind = kind_of(st.st_mode);
        if kind == SFlag::S_IFLNK && !(last && flags.contains(OFlag::O_NOFOLLOW)) {
            self.follow(fd.as_fd())?;
            return Ok(None);
        }
        if !last {
            if kind != SFlag::S_IFDIR {
                return Err(Errno::ENOTDIR);
            }
            self.stack.push(fd);
            return Ok(None);
        }
        self.open_last(fd, name, &st, flags).map(Some)
    }

    /// Splices the target of the symlink `link` (in `cur()`) into the walk.
    fn follow(&mut self, link: BorrowedFd) -> nix::Result<()> {
        self.links += 1;
        if self.links > MAX_SYMLINKS {
            return Err(Errno::ELOOP);
        }
        refuse_magic(self.cur(), link)?;
        // An empty path reads the link behind an O_PATH fd (Linux >= 2.6.39).
        let target = readlinkat(link, "")?;
        self.push_path(target.as_bytes());
        Ok(())
    }

    /// The last component, `fd` being its O_PATH|O_NOFOLLOW handle.
    fn open_last(
        &self,
        fd: OwnedFd,
        name: &OsString,
        st: &FileStat,
        flags: OFlag,
    ) -> nix::Result<OwnedFd> {
        let is_dir = kind_of(st.st_mode) == SFlag::S_IFDIR;
        if flags.contains(OFlag::O_DIRECTORY) && !is_dir {
            return Err(Errno::ENOTDIR);
        }
        if flags.contains(OFlag::O_PATH) {
            // O_PATH ignores every other flag but O_DIRECTORY/O_NOFOLLOW,
            // both honoured above: the handle we hold is the answer.
            return Ok(fd);
        }
        // A real open. O_NOFOLLOW: if the name was swapped for a symlink
        // since, this fails with ELOOP rather than follow it.
        open_at(self.cur(), Path::new(name), flags | OFlag::O_NOFOLLOW)
    }
}

/// openat(2) with O_CLOEXEC, relative to `dir`.
fn open_at(dir: BorrowedFd, name: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(dir, name, flags | OFlag::O_CLOEXEC, Mode::empty())
}

/// ELOOP for a magic link: a symlink on procfs whose directory (`parent`)
/// is not the procfs root (see the module comment).
fn refuse_magic(parent: BorrowedFd, link: BorrowedFd) -> nix::Result<()> {
    if fstatfs(link)?.filesystem_type() != PROC_SUPER_MAGIC {
        return Ok(());
    }
    if fstat(parent)?.st_ino == PROC_ROOT_INO {
        return Ok(());
    }
    Err(Errno::ELOOP)
}

/// What `/proc/self/fd/<fd>` says about `fd`, if /proc can tell us.
fn fd_target(fd: BorrowedFd) -> Option<PathBuf> {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let path = readlinkat(nix::fcntl::AT_FDCWD, link.as_str()).ok()?;
    Some(PathBuf::from(path)).filter(|p| p.is_absolute())
}

/// EXDEV unless the kernel's name for `fd` lies under its name for `root`.
/// Skipped when there is no /proc to ask (the check is defence in depth:
/// the walk itself never leaves the root by `..` or by a symlink).
fn verify_under_root(root: BorrowedFd, fd: BorrowedFd) -> nix::Result<()> {
    match (fd_target(root), fd_target(fd)) {
        (Some(r), Some(p)) if !p.starts_with(&r) => Err(Errno::EXDEV),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
