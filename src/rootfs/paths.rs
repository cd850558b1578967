//! Runs in: container init (resolution before and after pivot_root; masks after it).
//!
//! Everything under the rootfs is hostile: an image can ship `/proc` as a
//! symlink to `/`, or race a rename while we mount (CVE-2021-30465). So no
//! path string under the rootfs is ever handed to `mount(2)`. We resolve with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` from an fd of the root,
//! which clamps `..` and absolute symlinks to the root, and mount onto
//! `/proc/self/fd/<fd>` of the resulting O_PATH fd. Where openat2 is missing,
//! `resolve.rs` does the same walk in userspace (see `openat2` below).

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::sys::statvfs::{FsFlags, fstatvfs};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use super::resolve;

/// `struct open_how` from linux/openat2.h (libc's copy is non_exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Whether this process can use openat2; probed once (`openat2_works`).
static OPENAT2: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const WORKS: u8 = 1;
const MISSING: u8 = 2;

/// Our openat2: resolution never leaves `dir` and never follows /proc magic
/// links. Without openat2 (see `openat2_works`), the same semantics come from
/// the userspace walk in `resolve.rs`. A filter installed after the probe
/// (ENOSYS from a real call) also switches to the walk, for good.
pub fn openat2(dir: BorrowedFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    if !openat2_works() {
        return resolve::open_in_root(dir, path, flags);
    }
    // EAGAIN: with RESOLVE_IN_ROOT the kernel refuses a walk through ".."
    // that raced a rename or mount anywhere on the system; a retry is what
    // it asks for (filepath-securejoin retries too).
    let mut tries = 0;
    loop {
        match sys_openat2(dir, path, flags) {
            Err(Errno::ENOSYS) => {
                OPENAT2.store(MISSING, Ordering::Relaxed);
                return resolve::open_in_root(dir, path, flags);
            }
            Err(Errno::EAGAIN) if tries < 32 => tries += 1,
            r => return r,
        }
    }
}

/// Probes openat2 once per process (a fork inherits the answer) with a call
/// that cannot fail on a kernel that has it: "/" as O_PATH. ENOSYS means an
/// old kernel, valgrind, or a seccomp filter; EPERM is what Docker's and
/// most other seccomp profiles return for syscalls they do not know, so it
/// counts as missing too (filepath-securejoin, runc's resolver, falls back
/// on any probe failure). Other errors (EMFILE, ENOMEM) say nothing about openat2:
/// they are not cached, and the caller's real call reports its own error.
fn openat2_works() -> bool {
    #[cfg(test)]
    if FORCE_FALLBACK.get() {
        return false;
    }
    match OPENAT2.load(Ordering::Relaxed) {
        WORKS => return true,
        MISSING => return false,
        _ => {}
    }
    match sys_openat2(nix::fcntl::AT_FDCWD, Path::new("/"), OFlag::O_PATH) {
        Ok(_) => OPENAT2.store(WORKS, Ordering::Relaxed),
        Err(Errno::ENOSYS | Errno::EPERM) => {
            OPENAT2.store(MISSING, Ordering::Relaxed);
            return false;
        }
        Err(_) => {}
    }
    true
}

#[cfg(test)]
thread_local! {
    /// Unit tests: this thread resolves as if openat2 were missing.
    pub static FORCE_FALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The openat2(2) syscall with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS.
pub fn sys_openat2(dir: BorrowedFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let how = OpenHow {
        flags: (flags | OFlag::O_CLOEXEC).bits() as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: `c` is a valid NUL-terminated string and `how` a valid open_how
    // that both outlive the call; the size passed matches the struct.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    let fd = Errno::result(fd)? as i32;
    // SAFETY: the kernel just returned this fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Lexically cleans an absolute container path into its components: "." is
/// dropped and ".." pops but never above "/" (as runc's SecureJoin does).
/// A relative destination is taken relative to "/", as runc 1.1 does.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The magic-link path through which a syscall reaches the inode behind `fd`.
pub fn fd_path(fd: BorrowedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens the directory that resolution is confined to (the rootfs, or "/").
pub fn open_root(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", path.display()))?;
    Ok(fd)
}

/// What to create when the last component of a mount target is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    Dir,
    File,
}

/// Opens `path` (absolute, in container terms) under `root` as O_PATH,
/// creating missing directories component by component, and the leaf as `leaf`.
pub fn mkdir_all(root: BorrowedFd, path: &Path, leaf: Leaf) -> Result<OwnedFd> {
    mkdir_all_depth(root, path, leaf, 0)
}

/// A dangling symlink on the way is followed *inside* the root (as runc's
/// securejoin.MkdirAll does): its target is created under the rootfs, so a
/// link to a host path can never place a mount outside.
fn mkdir_all_depth(root: BorrowedFd, path: &Path, leaf: Leaf, depth: u32) -> Result<OwnedFd> {
    if depth > 40 {
        bail!("{}: too many levels of symbolic links", path.display());
    }
    let path = clean(path);
    let rel = path.strip_prefix("/").unwrap_or(&path).to_path_buf();
    let mut prefix = PathBuf::new();
    let mut names = rel.components().peekable();
    let mut fd = openat2(root, Path::new("."), OFlag::O_PATH)?;
    while let Some(name) = names.next() {
        let last = names.peek().is_none();
        let parent = fd;
        prefix.push(name);
        fd = match openat2(root, &prefix, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                create_at(parent.as_fd(), name.as_os_str(), last, leaf)
                    .with_context(|| format!("create {}", prefix.display()))?;
                match openat2(root, &prefix, OFlag::O_PATH) {
                    Ok(fd) => fd,
                    // ENOENT now means a dangling symlink: create its target in the root.
                    Err(Errno::ENOENT) => {
                        let link = nix::fcntl::readlinkat(parent.as_fd(), name.as_os_str())
                            .with_context(|| format!("readlink {}", prefix.display()))?;
                        let mut next =
                            Path::new("/").join(prefix.parent().unwrap_or(Path::new("")));
                        next.push(link);
                        next.extend(names);
                        return mkdir_all_depth(root, &next, leaf, depth + 1);
                    }
                    Err(e) => return Err(e).with_context(|| format!("open {}", prefix.display())),
                }
            }
            Err(e) => return Err(e).with_context(|| format!("open {}", prefix.display())),
        };
        if !last && !is_dir(fd.as_fd())? {
            bail!("{} is not a directory", prefix.display());
        }
    }
    Ok(fd)
}

/// Creates one component in the (already resolved) parent directory fd.
fn create_at(parent: BorrowedFd, name: &std::ffi::OsStr, last: bool, leaf: Leaf) -> Result<()> {
    let r = if last && leaf == Leaf::File {
        // A non-directory bind source needs a file to mount over (runc's
        // createIfNotExists). O_NOFOLLOW|O_EXCL: never open through a symlink.
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY;
        nix::fcntl::openat(
            parent,
            name,
            flags | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o755),
        )
        .map(drop)
    } else {
        nix::sys::stat::mkdirat(parent, name, Mode::from_bits_truncate(0o755))
    };
    match r {
        // Lost a race with another creator, or a dangling symlink: the reopen decides.
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub fn is_dir(fd: BorrowedFd) -> Result<bool> {
    let st = fstat(fd).context("fstat")?;
    Ok(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

/// What a masked path turns into (runc's maskPath).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// A directory gets an empty read-only tmpfs.
    Tmpfs,
    /// Anything else gets /dev/null bound over it.
    DevNull,
}

/// Pure: decides how to mask an inode of the given `st_mode`.
pub fn classify_mask(st_mode: u32) -> Mask {
    if SFlag::from_bits_truncate(st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        Mask::Tmpfs
    } else {
        Mask::DevNull
    }
}

/// Opens a path after pivot_root; `Ok(None)` when it does not exist, as the
/// spec lets masked and read-only paths name files the image lacks.
fn open_optional(root: BorrowedFd, path: &Path) -> Result<Option<OwnedFd>> {
    match openat2(root, &clean(path), OFlag::O_PATH) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("open {}", path.display())),
    }
}

/// Opens the container's /dev/null and proves it is the real char device 1:3,
/// so a planted file or symlink cannot be bound over a masked path
/// (CVE-2025-31133 class).
fn open_dev_null(root: BorrowedFd) -> Result<OwnedFd> {
    let fd = openat2(
        root,
        Path::new("dev/null"),
        OFlag::O_PATH | OFlag::O_NOFOLLOW,
    )
    .context("open /dev/null")?;
    let st = fstat(fd.as_fd()).context("fstat /dev/null")?;
    let chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !chr || st.st_rdev != nix::sys::stat::makedev(1, 3) {
        bail!("/dev/null is not the null device (char 1:3)");
    }
    Ok(fd)
}

/// Masks each path: /dev/null over files, an empty ro tmpfs over directories.
pub fn mask_paths(paths: &[PathBuf]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let root = open_root(Path::new("/"))?;
    let null = open_dev_null(root.as_fd())?;
    for p in paths {
        let Some(fd) = open_optional(root.as_fd(), p)? else {
            continue;
        };
        let st = fstat(fd.as_fd()).with_context(|| format!("fstat {}", p.display()))?;
        let target = fd_path(fd.as_fd());
        let r = match classify_mask(st.st_mode) {
            Mask::Tmpfs => mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            ),
            Mask::DevNull => mount(
                Some(&fd_path(null.as_fd())),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            ),
        };
        r.with_context(|| format!("mask {}", p.display()))?;
    }
    Ok(())
}

/// Creates process.cwd (runc does) inside the current root, never through
/// a symlink or magic link leading out of it.
pub fn make_cwd(cwd: &Path) -> Result<()> {
    let root = open_root(Path::new("/"))?;
    mkdir_all(root.as_fd(), cwd, Leaf::Dir).map(drop)
}

/// Enters process.cwd resolved inside the current root with magic links
/// refused, then proves the kernel agrees the cwd is under the root: a
/// leaked host fd reached through `/proc/self/fd/N` can never become the
/// process's cwd (CVE-2024-21626).
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    let root = open_root(Path::new("/"))?;
    let fd = openat2(
        root.as_fd(),
        &clean(cwd),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
    )
    .with_context(|| format!("open {}", cwd.display()))?;
    nix::unistd::fchdir(&fd).with_context(|| format!("chdir {}", cwd.display()))?;
    // getcwd(2) fails (or says "(unreachable)") for a cwd outside the root.
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        Ok(p) => bail!(
            "cwd {} is outside the container ({})",
            cwd.display(),
            p.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cwd {} is outside the container", cwd.display())),
    }
}

/// Makes each path read-only: a recursive self-bind, then a remount that adds
/// ro and keeps nosuid/nodev/noexec from the underlying mount (runc's readonlyPath;
/// dropping a locked flag would fail with EPERM in a user namespace).
pub fn readonly_paths(paths: &[PathBuf]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let root = open_root(Path::new("/"))?;
    for p in paths {
        let Some(fd) = open_optional(root.as_fd(), p)? else {
            continue;
        };
        let src = fd_path(fd.as_fd());
        mount(
            Some(&src),
            &src,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("bind {} onto itself", p.display()))?;
        // The old fd still points below the new mount; reopen to reach it.
        let fd = openat2(root.as_fd(), &clean(p), OFlag::O_PATH)?;
        let locked = locked_flags(fd.as_fd())?;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked;
        mount(
            None::<&str>,
            &fd_path(fd.as_fd()),
            None::<&str>,
            flags,
            None::<&str>,
        )
        .with_context(|| format!("remount {} read-only", p.display()))?;
    }
    Ok(())
}

/// The nosuid/nodev/noexec (and ro) flags of the mount behind `fd`; in a user
/// namespace these are locked and a bind remount must repeat them.
pub fn locked_flags(fd: BorrowedFd) -> Result<MsFlags> {
    let f = fstatvfs(fd).context("statvfs")?.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    Ok(out)
}

/// Remounts "/" read-only (root.readonly). If the plain remount is refused
/// (locked flags in a user namespace), retry keeping the current flags (runc).
pub fn readonly_root() -> Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    match mount(None::<&str>, "/", None::<&str>, flags, None::<&str>) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) => {
            let root = open_root(Path::new("/"))?;
            let flags = flags | locked_flags(root.as_fd())?;
            mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
                .context("remount / read-only")
        }
        Err(e) => Err(e).context("remount / read-only"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_clamps_dotdot_and_makes_absolute() {
        assert_eq!(clean(Path::new("/a/../../b/./c")), PathBuf::from("/b/c"));
        assert_eq!(clean(Path::new("rel/x")), PathBuf::from("/rel/x"));
        assert_eq!(clean(Path::new("/")), PathBuf::from("/"));
    }

    #[test]
    fn masks_directories_with_tmpfs_and_files_with_null() {
        assert_eq!(classify_mask(libc::S_IFDIR | 0o755), Mask::Tmpfs);
        assert_eq!(classify_mask(libc::S_IFREG | 0o644), Mask::DevNull);
        assert_eq!(classify_mask(libc::S_IFCHR | 0o666), Mask::DevNull);
        assert_eq!(classify_mask(libc::S_IFLNK | 0o777), Mask::DevNull);
    }

    #[test]
    fn mkdir_all_stays_inside_root() {
        let dir = std::env::temp_dir().join(format!("skiff-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("r")).unwrap();
        // An absolute symlink must resolve inside the root, not on the host.
        std::fs::create_dir(dir.join("r/escape")).unwrap();
        std::os::unix::fs::symlink("/escape", dir.join("r/link")).unwrap();
        let root = open_root(&dir.join("r")).unwrap();
        mkdir_all(root.as_fd(), Path::new("/link/sub"), Leaf::Dir).unwrap();
        assert!(dir.join("r/escape/sub").is_dir());
        mkdir_all(root.as_fd(), Path::new("/../f/file"), Leaf::File).unwrap();
        assert!(dir.join("r/f/file").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
