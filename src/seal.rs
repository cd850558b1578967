//! Seal the runtime binary before any process of ours enters a container
//! (CVE-2019-5736): the container must never get a writable handle to the
//! host's skiff binary through /proc/<pid>/exe, or by making our init exec
//! `/proc/self/exe` (directly, or as a script's `#!` interpreter).
//! Runs in: the runtime process, first thing in `create`, `run` and `exec`.
//!
//! skiff forks its stages instead of re-executing itself, so every stage's
//! /proc/self/exe is whatever the runtime was started from. When that is a
//! file on a writable mount, we copy it once into a memfd, seal the memfd
//! against any change (F_SEAL_WRITE, SHRINK, GROW, then SEAL) and re-exec
//! from it: from then on /proc/self/exe is a sealed, anonymous copy. A
//! binary on a read-only mount needs no copy (a write through its path
//! fails with EROFS, and a container cannot remount a host mount). The cost
//! is one in-kernel copy of the binary and one exec: small because the
//! binary is small (see scripts/bench.sh, which reports it).
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
    let copy = sealed_copy(&exe)?;
    reexec(&copy)
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
