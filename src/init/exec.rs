//! The last steps of init: find the program, close what must not leak, exec.
//! Runs in: init, after pivot_root and the user switch.
use anyhow::{Result, bail};
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
            Err(e) => bail!(
                "exec: {name:?}: stat {name}: {}",
                crate::init::errno_text(&e)
            ),
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

/// Marks every fd from 3 + preserve_fds upwards close-on-exec, and clears
/// the flag on the preserved ones: only stdio and those reach the program.
///
/// This runs under the container's seccomp filter (installed before start
/// when noNewPrivileges is off). So, like runc, it lists /proc/self/fd and
/// uses fcntl, calls every profile allows; close_range (Linux 5.9) only
/// when there is no /proc: an allow-list older than it may refuse it or,
/// with a kill default, kill init before the exec without a word.
pub fn seal_fds(preserve_fds: i32) -> Result<()> {
    let first = 3 + preserve_fds as u32;
    if let Err(e) = cloexec_each(first) {
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
            let err = std::io::Error::last_os_error();
            bail!("mark fds close-on-exec: /proc/self/fd: {e}; close_range: {err}");
        }
    }
    for fd in 3..first as i32 {
        // SAFETY: F_SETFD on an fd number; a closed fd just returns EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    Ok(())
}

/// Sets FD_CLOEXEC on every open fd from `first` up, listed in /proc/self/fd.
fn cloexec_each(first: u32) -> std::io::Result<()> {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd: &i32| fd >= first as i32)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on an fd number (the directory's own fd is closed
        // by now and just returns EBADF).
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Whether SIGPIPE was ignored when the runtime started (see `ignore_sigpipe`).
static SIGPIPE_WAS_IGNORED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The runtime ignores SIGPIPE, so that a hook or a reader that goes away
/// gives us EPIPE rather than killing us half-way through create. An
/// ignored signal survives execve, so `execve` below puts back what the
/// caller gave us. Called once, first thing (src/entry.rs).
#[cfg_attr(test, allow(dead_code))] // called by src/entry.rs, not built for tests
pub fn ignore_sigpipe() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: installs SIG_IGN, no handler code; single-threaded at start-up.
    if let Ok(old) = unsafe { sigaction(Signal::SIGPIPE, &ign) } {
        let was = matches!(old.handler(), SigHandler::SigIgn);
        SIGPIPE_WAS_IGNORED.store(was, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Puts SIGPIPE back as the caller of the runtime had it.
fn restore_sigpipe() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    if SIGPIPE_WAS_IGNORED.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installs SIG_DFL, no handler code.
    _ = unsafe { sigaction(Signal::SIGPIPE, &dfl) };
}

pub fn execve(prog: &CStr, args: &[CString], env: &[CString]) -> Result<()> {
    restore_sigpipe();
    let e = nix::unistd::execve(prog, args, env).unwrap_err();
    bail!("exec {}: {e}", prog.to_string_lossy())
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
