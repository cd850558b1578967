//! Collecting exited children in a foreground `run` or `exec` (the
//! signal-forwarding wait in `cmd::run` and the tty proxy in `tty.rs`).
//! Runs in: the runtime process.
use anyhow::{Context, Result};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// runc's debug line when the process it waits for is gone.
fn exited(pid: Pid, status: i32) -> i32 {
    let (pid, code) = (pid.to_string(), status.to_string());
    crate::log::debug_fields("process exited", &[("pid", &pid), ("status", &code)]);
    status
}

/// Collects every exited child; returns init's exit code once it is among them.
pub fn reap(init: Pid) -> Result<Option<i32>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == init => return Ok(Some(exited(p, code))),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == init => {
                return Ok(Some(exited(p, 128 + sig as i32)));
            }
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return Ok(None),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waitpid"),
        }
    }
}
