//! The last steps of init: find the program, close what must not leak, exec.
//! Runs in: init, after pivot_root and the user switch.
use anyhow::{Context, Result, bail};
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Resolves args[0] the way runc (Go's exec.LookPath) does, with the
/// container's PATH, so a bad entrypoint fails `create`, not `start`.
pub fn find_program(arg0: &CStr, env: &[CString]) -> Result<CString> {
    let name = arg0.to_string_lossy();
    if name.contains('/') {
        let p = Path::new(name.as_ref());
        return match std::fs::metadata(p) {
            Err(e) => bail!("exec: {name:?}: stat {name}: {}", errno_text(&e)),
            Ok(_) if !is_executable(p) => bail!("exec: {name:?}: permission denied"),
            Ok(_) => Ok(arg0.to_owned()),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    for dir in path.split(':') {
        let cand: PathBuf = Path::new(if dir.is_empty() { "." } else { dir }).join(name.as_ref());
        if is_executable(&cand) {
            return Ok(CString::new(cand.as_os_str().as_bytes())?);
        }
    }
    bail!("exec: {name:?}: executable file not found in $PATH")
}

/// Adds HOME from the container's /etc/passwd when the spec has none
/// ("/" if the user is not listed), as runc does.
pub fn with_home(env: &[CString], uid: u32) -> Vec<CString> {
    let mut env = env.to_vec();
    if env.iter().any(|e| e.to_bytes().starts_with(b"HOME=")) {
        return env;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let home = home_of(&passwd, uid).unwrap_or("/");
    if let Ok(c) = CString::new(format!("HOME={home}")) {
        env.push(c);
    }
    env
}

/// The home field of `uid`'s line in passwd text.
fn home_of(passwd: &str, uid: u32) -> Option<&str> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then_some(f[5])
    })
}

/// Marks every fd from 3 + preserve_fds upwards close-on-exec: only stdio
/// and the preserved fds reach the program.
///
/// The preserved range is left as it is, never made inheritable: an fd
/// there that the runtime's caller passed is inheritable already (it came
/// through the caller's execve of the runtime), and one the runtime opened
/// itself because the caller had nothing there (the exec fifo, the sync
/// socket: every fd skiff opens is CLOEXEC) must stay close-on-exec, or it
/// would reach the container (CVE-2024-21626 class).
///
/// Called before the seccomp filter goes in, so that a profile need not
/// allow close_range or fcntl: after it, nothing changes fd flags.
pub fn seal_fds(preserve_fds: i32) -> Result<()> {
    let first = 3u32.saturating_add(preserve_fds.max(0) as u32);
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes fd flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            // Before Linux 5.11 (CLOSE_RANGE_CLOEXEC: EINVAL, the call
            // itself: ENOSYS), or refused by a filter we run under.
            Some(libc::ENOSYS | libc::EINVAL | libc::EPERM) => {
                cloexec_from_proc(i32::try_from(first).unwrap_or(i32::MAX))?
            }
            _ => bail!("close_range: {e}"),
        }
    }
    Ok(())
}

/// close_range's fallback: marks the fds listed in /proc/self/fd from
/// `first` up close-on-exec (after checking that it is procfs).
fn cloexec_from_proc(first: i32) -> Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let dir = nix::fcntl::open("/proc/self/fd", flags, nix::sys::stat::Mode::empty())
        .context("seal fds: open /proc/self/fd")?;
    let st = nix::sys::statfs::fstatfs(&dir).context("seal fds: statfs /proc/self/fd")?;
    if st.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        bail!("seal fds: /proc/self/fd is not on procfs");
    }
    let mut dir = nix::dir::Dir::from_fd(dir).context("seal fds: read /proc/self/fd")?;
    let own = std::os::fd::AsRawFd::as_raw_fd(&dir);
    let fds: Vec<i32> = dir
        .iter()
        .filter_map(|e| e.ok()?.file_name().to_str().ok()?.parse().ok())
        .filter(|fd| *fd >= first && *fd != own)
        .collect();
    for fd in fds {
        // SAFETY: an fd number listed as open; F_SETFD only changes its flags.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        match fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)) {
            Ok(_) | Err(nix::errno::Errno::EBADF) => {}
            Err(e) => return Err(e).context("seal fds: fcntl(F_SETFD)"),
        }
    }
    Ok(())
}

/// The entrypoint's execve, with everything it needs made beforehand: after
/// the seccomp filter goes in, `exec` makes no call but execve itself (no
/// allocation that could need brk or mmap).
pub struct Prepared {
    prog: CString,
    _args: Vec<CString>,
    _env: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl Prepared {
    /// The environment the program gets (startContainer hooks without an
    /// `env` of their own get it too, as with runc).
    pub fn env(&self) -> &[CString] {
        &self._env
    }

    pub fn new(prog: CString, args: Vec<CString>, env: Vec<CString>) -> Prepared {
        // The pointers are into the CStrings' heap buffers, which do not
        // move when the vectors (or `Prepared`) do.
        let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Prepared {
            argv: ptrs(&args),
            envp: ptrs(&env),
            prog,
            _args: args,
            _env: env,
        }
    }

    /// execve; returns only on failure.
    pub fn exec(&self) -> Result<()> {
        // SAFETY: `prog` is NUL-terminated; argv and envp are NULL-terminated
        // arrays of pointers to NUL-terminated strings owned by `self`.
        unsafe { libc::execve(self.prog.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
        let e = nix::errno::Errno::last();
        bail!("exec {}: {e}", self.prog.to_string_lossy())
    }
}

/// The C library's text for an io error, lower-case, as Go prints it.
pub fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_comes_from_passwd() {
        let pw = "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n";
        assert_eq!(home_of(pw, 1000), Some("/home/bob"));
        assert_eq!(home_of(pw, 0), Some("/root"));
        assert_eq!(home_of(pw, 5), None);
    }

    #[test]
    fn proc_fallback_marks_fds_cloexec() {
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open("/proc/self/status").unwrap();
        fcntl(&f, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
        let below = std::fs::File::open("/proc/self/status").unwrap();
        fcntl(&below, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
        let (lo, hi) = match below.as_raw_fd() < f.as_raw_fd() {
            true => (&below, &f),
            false => (&f, &below),
        };
        cloexec_from_proc(hi.as_raw_fd()).unwrap();
        let flags = |f| FdFlag::from_bits_truncate(fcntl(f, FcntlArg::F_GETFD).unwrap());
        assert!(flags(hi).contains(FdFlag::FD_CLOEXEC));
        assert!(
            !flags(lo).contains(FdFlag::FD_CLOEXEC),
            "below `first` is left alone"
        );
    }

    #[test]
    fn finds_programs_like_lookpath() {
        let env = [CString::new("PATH=/nonexistent:/bin:/usr/bin").unwrap()];
        assert_eq!(find_program(c"sh", &env).unwrap().as_bytes(), b"/bin/sh");
        assert_eq!(
            find_program(c"/bin/sh", &env).unwrap().as_bytes(),
            b"/bin/sh"
        );
        let e = find_program(c"no-such-prog", &env).unwrap_err().to_string();
        assert_eq!(
            e,
            "exec: \"no-such-prog\": executable file not found in $PATH"
        );
        let e = find_program(c"/nope", &env).unwrap_err().to_string();
        assert_eq!(e, "exec: \"/nope\": stat /nope: no such file or directory");
    }
}
