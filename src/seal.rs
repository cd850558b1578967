//! Seal the runtime binary before any process of ours enters a container
//! (CVE-2019-5736): the container must never get a writable handle to the
//! host's skiff binary through /proc/<pid>/exe, or by making our init exec
//! `/proc/self/exe` (directly, or as a script's `#!` interpreter).
//! Runs in: the runtime process, first thing in `create`, `run` and `exec`.
//!
//! skiff forks its stages instead of re-executing itself, so every stage's
//! /proc/self/exe is whatever the runtime was started from. A binary on a
//! read-only mount is safe as it is: a write through /proc/<pid>/exe goes
//! through that mount and fails with EROFS. Otherwise we re-exec once:
//! - as root, from a *detached read-only bind mount* of the binary
//!   (open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_RDONLY), then
//!   execveat on it; the cheap variant of runc 1.2's overlay sealing). The
//!   mount belongs to no namespace, so nothing in a container can reach it
//!   by path to remount it; it goes away with our last process. Cost: one
//!   exec (about 0.5 ms here).
//! - otherwise (rootless, old kernel), from a memfd copy sealed against any
//!   change (F_SEAL_WRITE, SHRINK, GROW, then SEAL), as runc 1.1 does.
//!   Cost: one in-kernel copy of the binary (1.5-2 ms for 3.9 MB) plus the exec.
//!
//! Either way the re-exec'd process finds its exe on a read-only mount or
//! sealed, and goes on.
use anyhow::{Context, Result, bail};
use std::ffi::{CString, c_char};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Returns when /proc/self/exe is safe; otherwise re-executes from a sealed
/// copy (and so does not return).
pub fn ensure_sealed() -> Result<()> {
    let exe = std::fs::File::open("/proc/self/exe").context("open /proc/self/exe")?;
    // SAFETY: fcntl(F_GET_SEALS) on a valid fd; EINVAL for non-memfd files.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return Ok(());
    }
    let vfs = nix::sys::statvfs::fstatvfs(&exe).context("statvfs /proc/self/exe")?;
    if vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(());
    }
    let sealed = match ro_clone() {
        Ok(fd) => fd,
        Err(e) => {
            crate::log::debug(&format!("read-only bind of the binary: {e:#}; copying it"));
            sealed_copy(&exe)?
        }
    };
    reexec(&sealed)
}

/// A detached, read-only bind mount of our own binary, opened as an fd.
fn ro_clone() -> Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const MOUNT_ATTR_RDONLY: u64 = 1;
    // SAFETY: open_tree reads a NUL-terminated path; returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("open_tree");
    }
    // SAFETY: the kernel just returned this fd to us alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // struct mount_attr { attr_set, attr_clr, propagation, userns_fd }
    let attr: [u64; 4] = [MOUNT_ATTR_RDONLY, 0, 0, 0];
    // SAFETY: mount_setattr reads `attr` (valid, size passed) and an empty path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("mount_setattr");
    }
    Ok(fd)
}

fn memfd() -> Result<OwnedFd> {
    const MFD_EXEC: libc::c_uint = 0x10;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3+) keeps vm.memfd_noexec=1 from refusing the
    // exec; older kernels reject the unknown flag, so retry without it.
    for f in [flags | MFD_EXEC, flags] {
        // SAFETY: memfd_create reads a NUL-terminated name; returns a new fd or -1.
        let fd = unsafe { libc::memfd_create(c"skiff".as_ptr(), f) };
        if fd >= 0 {
            // SAFETY: the kernel just returned this fd to us alone.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(std::io::Error::last_os_error()).context("memfd_create")
}

/// Copies `exe` into a memfd in the kernel (sendfile) and seals it.
fn sealed_copy(exe: &std::fs::File) -> Result<OwnedFd> {
    let len = exe.metadata().context("stat /proc/self/exe")?.len() as usize;
    let fd = memfd()?;
    let mut done = 0usize;
    while done < len {
        // SAFETY: sendfile between two valid fds; a null offset uses the file position.
        let n = unsafe {
            libc::sendfile(
                fd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                len - done,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).context("copy the binary to a memfd");
        }
        if n == 0 {
            bail!("copy the binary to a memfd: short copy");
        }
        done += n as usize;
    }
    // SAFETY: fcntl(F_ADD_SEALS) on our memfd.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(std::io::Error::last_os_error()).context("seal the memfd");
    }
    Ok(fd)
}

unsafe extern "C" {
    static environ: *const *const c_char;
}

/// execveat(fd, "", argv, environ, AT_EMPTY_PATH) with our own argv.
fn reexec(fd: &OwnedFd) -> Result<()> {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .context("argv")?;
    let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: argv is a NULL-terminated array of valid C strings that outlive
    // the call; environ is the C library's environment; on success the call
    // does not return.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            environ,
            libc::AT_EMPTY_PATH,
        )
    };
    Err(std::io::Error::last_os_error()).context("re-exec from the sealed copy")
}
