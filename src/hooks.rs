//! OCI hooks: run a program with the container state on stdin, its own env,
//! and an optional timeout; a failing hook fails the lifecycle step.
//! Runs in: the runtime (prestart, createRuntime, poststart, poststop) and
//! init (createContainer, startContainer).
use anyhow::{Context, Result, bail};
use oci_spec::runtime::Hook;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::Duration;

pub fn any(lists: &[&Option<Vec<Hook>>]) -> bool {
    lists
        .iter()
        .any(|l| l.as_ref().is_some_and(|v| !v.is_empty()))
}

/// Runs each hook in order; the first failure stops the phase.
///
/// A hook without `env` gets the environment of the process that runs it,
/// as runc's hooks do (and crun's): the runtime's own for the hooks run by
/// the runtime, `container_env` for createContainer and startContainer,
/// which runc runs from its init after taking on process.env. A hook with
/// `env` (even an empty one) gets exactly that.
pub fn run_all(
    hooks: &Option<Vec<Hook>>,
    state: &serde_json::Value,
    phase: &str,
    container_env: Option<&[std::ffi::CString]>,
) -> Result<()> {
    let text = state.to_string();
    for (i, h) in hooks.iter().flatten().enumerate() {
        run_one(h, &text, container_env)
            .with_context(|| format!("error running {phase} hook #{i}"))?;
    }
    Ok(())
}

/// Runs every hook of a phase whose failures are only warnings (poststart,
/// poststop: "the runtime MUST log a warning, but the remaining hooks and
/// lifecycle continue as if the hook had succeeded", runtime-spec
/// lifecycle; crun does so, runc 1.1.5 fails `start` for poststart and
/// stops at the first failing poststop hook).
pub fn run_all_warn(hooks: &Option<Vec<Hook>>, state: &serde_json::Value, phase: &str) {
    let text = state.to_string();
    for (i, h) in hooks.iter().flatten().enumerate() {
        if let Err(e) = run_one(h, &text, None) {
            crate::log::warn(&format!("error running {phase} hook #{i}: {e:#}"));
        }
    }
}

fn run_one(h: &Hook, state: &str, container_env: Option<&[std::ffi::CString]>) -> Result<()> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    let own: Vec<String>;
    let env: Option<&[String]> = match (h.env(), container_env) {
        (Some(e), _) => Some(e),
        (None, Some(c)) => {
            own = c.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            Some(&own)
        }
        (None, None) => None,
    };
    if let Some(env) = env {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    if container_env.is_some() {
        // startContainer runs under the container's seccomp filter. An
        // allow-list older than clone3 refuses it with its default errno
        // (often EPERM), and posix_spawn falls back to clone only on ENOSYS:
        // a pre_exec makes std fork with plain clone, as runc's Go does.
        // SAFETY: the closure does nothing, so it is async-signal-safe.
        unsafe { cmd.pre_exec(|| Ok(())) };
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("{}", h.path().display()))?;
    // A hook that does not read stdin must not fail us with EPIPE.
    let _ = child
        .stdin
        .take()
        .map(|mut s| s.write_all(state.as_bytes()));
    let timeout = h.timeout().filter(|t| *t > 0);
    if let Some(t) = timeout {
        let pidfd = crate::pidfd::open(child.id() as i32)?;
        if !crate::pidfd::wait_exit(&pidfd, Duration::from_secs(t as u64)) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timeout after {t} seconds");
        }
    }
    let mut out = String::new();
    let mut err = String::new();
    let _ = child.stdout.take().map(|mut s| s.read_to_string(&mut out));
    let _ = child.stderr.take().map(|mut s| s.read_to_string(&mut err));
    let status = child.wait()?;
    if !status.success() {
        let how = match status.signal() {
            Some(s) => format!("signal: {s}"),
            None => format!("exit status {}", status.code().unwrap_or(-1)),
        };
        bail!("{how}, stdout: {}, stderr: {}", out.trim(), err.trim());
    }
    Ok(())
}
