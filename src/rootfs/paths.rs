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
use std::ffi::{CString, OsStr, OsString};
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
pub fn openat2_works() -> bool {
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
    /// A directory that must not be a symlink, not even one inside the
    /// root (procfs and sysfs mountpoints, runc's Lstat check); a symlink
    /// or non-directory there is an error (`NotPlainDir`).
    PlainDir,
}

/// A resolved (and possibly just created) path under the root.
#[derive(Debug)]
pub struct Target {
    /// O_PATH fd of the inode at the path.
    pub fd: OwnedFd,
    /// The directory holding the inode and its name there, when the last
    /// component was reached without following a symlink: after a mount on
    /// `fd`, one single-component lookup there (`reopen`) reaches the new mount.
    pub at: Option<(OwnedFd, OsString)>,
    /// The clean container path, for a full re-resolution and for messages.
    pub path: PathBuf,
    /// True if the last component did not exist and was created.
    pub created: bool,
}

impl Target {
    /// Opens the path again, e.g. to reach a mount just made on `fd` (which
    /// is below it). The last component is looked up in the parent fd with
    /// symlinks refused; when a symlink led here, the path is re-resolved
    /// from `root` instead.
    pub fn reopen(&self, root: BorrowedFd) -> Result<OwnedFd> {
        let r = match &self.at {
            Some((dir, name)) => openat2(dir.as_fd(), Path::new(name), NOFOLLOW),
            None => openat2(root, rel(&self.path), OFlag::O_PATH),
        };
        r.with_context(|| format!("open {}", self.path.display()))
    }
}

impl AsFd for Target {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The flags of a single-component open below a resolved directory fd.
const NOFOLLOW: OFlag = OFlag::O_PATH.union(OFlag::O_NOFOLLOW);

/// `path` (absolute and clean) relative to the root, "." for the root itself.
pub fn rel(path: &Path) -> &Path {
    match path.strip_prefix("/") {
        Ok(p) if p.as_os_str().is_empty() => Path::new("."),
        Ok(p) => p,
        Err(_) => path,
    }
}

/// Opens `path` (absolute, in container terms) under `root` as O_PATH,
/// creating missing directories, and the leaf as `leaf`. One resolution from
/// the root finds the deepest existing directory (the parent, usually); each
/// missing component is then made with mkdirat and opened, without following
/// symlinks, relative to the directory before it.
pub fn mkdir_all(root: BorrowedFd, path: &Path, leaf: Leaf) -> Result<Target> {
    mkdir_all_depth(root, &clean(path), leaf, 0)
}

/// A dangling symlink on the way is followed *inside* the root (as runc's
/// securejoin.MkdirAll does): its target is created under the rootfs, so a
/// link to a host path can never place a mount outside.
fn mkdir_all_depth(root: BorrowedFd, path: &Path, leaf: Leaf, depth: u32) -> Result<Target> {
    if depth > 40 {
        bail!("{}: too many levels of symbolic links", path.display());
    }
    let Some(parent) = path.parent() else {
        let fd = root.try_clone_to_owned().context("dup root fd")?;
        let path = path.to_path_buf();
        let (at, created) = (None, false);
        return Ok(Target {
            fd,
            at,
            path,
            created,
        });
    };
    let dir = dir_all(root, parent, depth)?;
    mkdir_in(root, dir, path, leaf, depth)
}

/// Opens the directory `path` (clean) under `root`, creating what is missing.
fn dir_all(root: BorrowedFd, path: &Path, depth: u32) -> Result<OwnedFd> {
    if path.parent().is_none() {
        return root.try_clone_to_owned().context("dup root fd");
    }
    let fd = match openat2(root, rel(path), OFlag::O_PATH) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => mkdir_all_depth(root, path, Leaf::Dir, depth)?.fd,
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    };
    if !is_dir(fd.as_fd())? {
        bail!("{} is not a directory", path.display());
    }
    Ok(fd)
}

/// Like `mkdir_all` for `path` (absolute and clean) whose parent directory
/// is already resolved as `dir`: only the last component is looked up.
pub fn mkdir_below(root: BorrowedFd, dir: BorrowedFd, path: &Path, leaf: Leaf) -> Result<Target> {
    let dir = dir.try_clone_to_owned().context("dup directory fd")?;
    mkdir_in(root, dir, path, leaf, 0)
}

/// Opens, creating it if missing, the last component of `path` (clean) in
/// its resolved parent directory `dir`, without following a symlink. A
/// symlink there is resolved from the root again (so it stays inside), or,
/// dangling, has its target created inside the root.
fn mkdir_in(root: BorrowedFd, dir: OwnedFd, path: &Path, leaf: Leaf, depth: u32) -> Result<Target> {
    let name = path.file_name().context("no last component")?;
    // Create first: an existing entry costs an EEXIST, a missing one no
    // failed lookup. Then open what is there, never through a symlink.
    let created =
        create_at(dir.as_fd(), name, leaf).with_context(|| format!("create {}", path.display()))?;
    let fd = openat2(dir.as_fd(), Path::new(name), NOFOLLOW)
        .with_context(|| format!("open {}", path.display()))?;
    let plain = !is_symlink(fd.as_fd())?;
    if leaf == Leaf::PlainDir && !(plain && is_dir(fd.as_fd())?) {
        return Err(NotPlainDir(path.to_path_buf()).into());
    }
    if plain {
        let (at, path) = (Some((dir, name.to_owned())), path.to_path_buf());
        return Ok(Target {
            fd,
            at,
            path,
            created,
        });
    }
    match openat2(root, rel(path), OFlag::O_PATH) {
        Ok(fd) => {
            let (at, path) = (None, path.to_path_buf());
            Ok(Target {
                fd,
                at,
                path,
                created,
            })
        }
        // A dangling symlink: create its target in the root.
        Err(Errno::ENOENT) => {
            let link = nix::fcntl::readlinkat(dir.as_fd(), name)
                .with_context(|| format!("readlink {}", path.display()))?;
            let next = clean(&path.parent().unwrap_or(Path::new("/")).join(link));
            mkdir_all_depth(root, &next, leaf, depth + 1)
        }
        Err(e) => Err(e).with_context(|| format!("open {}", path.display())),
    }
}

/// `Leaf::PlainDir` found a symlink or a non-directory.
#[derive(Debug)]
pub struct NotPlainDir(pub PathBuf);

impl std::fmt::Display for NotPlainDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is a symlink or not a directory", self.0.display())
    }
}

impl std::error::Error for NotPlainDir {}

/// Creates one component in the (already resolved) parent directory fd;
/// false if something (maybe a symlink) already has that name.
fn create_at(parent: BorrowedFd, name: &OsStr, leaf: Leaf) -> Result<bool> {
    let r = if leaf == Leaf::File {
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
        Ok(()) => Ok(true),
        // Already there, or a dangling symlink: the open after decides.
        Err(Errno::EEXIST) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub fn is_dir(fd: BorrowedFd) -> Result<bool> {
    Ok(file_type(fd)? == SFlag::S_IFDIR)
}

fn is_symlink(fd: BorrowedFd) -> Result<bool> {
    Ok(file_type(fd)? == SFlag::S_IFLNK)
}

fn file_type(fd: BorrowedFd) -> Result<SFlag> {
    let st = fstat(fd).context("fstat")?;
    Ok(kind_of(st.st_mode))
}

/// The file type bits of an `st_mode` (S_IFREG, S_IFDIR, S_IFLNK, ...).
pub fn kind_of(st_mode: u32) -> SFlag {
    SFlag::from_bits_truncate(st_mode) & SFlag::S_IFMT
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
    if kind_of(st_mode) == SFlag::S_IFDIR {
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
    let chr = kind_of(st.st_mode) == SFlag::S_IFCHR;
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
#[path = "paths_tests.rs"]
mod tests;
