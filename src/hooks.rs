//! OCI hooks: run a program with the container state on stdin, its own env,
//! and an optional timeout; a failing hook fails the lifecycle step.
//! Runs in: the runtime (prestart, createRuntime, poststart, poststop) and
//! init (createContainer, startContainer).
use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Hook, Hooks};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn any(lists: &[&Option<Vec<Hook>>]) -> bool {
    lists
        .iter()
        .any(|l| l.as_ref().is_some_and(|v| !v.is_empty()))
}

/// The hook phases skiff runs, by their config.json names (`skiff features`
/// lists them), with the getter for each.
pub type Getter = fn(&Hooks) -> &Option<Vec<Hook>>;
pub const PHASES: [(&str, Getter); 6] = [
    ("prestart", Hooks::prestart),
    ("createRuntime", Hooks::create_runtime),
    ("createContainer", Hooks::create_container),
    ("startContainer", Hooks::start_container),
    ("poststart", Hooks::poststart),
    ("poststop", Hooks::poststop),
];

/// Every hook's `path` must be absolute (runtime-spec): a relative one would
/// be looked up in the runtime's `$PATH` and run a host program. Checked at
/// create, before anything exists.
pub fn check(hooks: Option<&Hooks>) -> Result<()> {
    let Some(h) = hooks else { return Ok(()) };
    for (phase, get) in PHASES {
        for (i, hook) in get(h).iter().flatten().enumerate() {
            if !hook.path().is_absolute() {
                bail!(
                    "hooks.{phase}[{i}].path: {:?} is not an absolute path",
                    hook.path()
                );
            }
        }
    }
    Ok(())
}

/// Where and with what environment a phase's hooks run, as runc runs them.
#[derive(Clone, Copy, Default)]
pub struct Ctx<'a> {
    /// The working directory: the bundle for the runtime's hooks, the
    /// rootfs for createContainer; None keeps ours (for startContainer,
    /// the process's cwd).
    pub cwd: Option<&'a Path>,
    /// For a hook without `env`: process.env for createContainer and
    /// startContainer (runc runs them from its init, after taking it on);
    /// None gives the runtime's own environment. A hook with `env`, even
    /// an empty one, gets exactly that.
    pub env: Option<&'a [std::ffi::CString]>,
}

/// Runs each hook in order; the first failure stops the phase.
pub fn run_all(
    hooks: &Option<Vec<Hook>>,
    state: &serde_json::Value,
    phase: &str,
    ctx: Ctx,
) -> Result<()> {
    let text = state.to_string();
    for (i, h) in hooks.iter().flatten().enumerate() {
        run_one(h, &text, ctx)
            .with_context(|| format!("error running {phase} hook #{i} ({})", h.path().display()))?;
    }
    Ok(())
}

/// Runs every hook of a phase whose failures are only warnings (poststart,
/// poststop: "the runtime MUST log a warning, but the remaining hooks and
/// lifecycle continue as if the hook had succeeded", runtime-spec
/// lifecycle; crun does so, runc 1.1.5 fails `start` for poststart and
/// stops at the first failing poststop hook).
pub fn run_all_warn(hooks: &Option<Vec<Hook>>, state: &serde_json::Value, phase: &str, ctx: Ctx) {
    let text = state.to_string();
    for (i, h) in hooks.iter().flatten().enumerate() {
        if let Err(e) = run_one(h, &text, ctx) {
            crate::log::warn(&format!(
                "error running {phase} hook #{i} ({}): {e:#}",
                h.path().display()
            ));
        }
    }
}

/// How much of each output stream a failing hook's error message carries.
const TAIL: usize = 4096;

/// The last `TAIL` bytes written to one stream.
#[derive(Default)]
struct Tail {
    buf: Vec<u8>,
    cut: bool,
}

impl Tail {
    fn push(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
        if self.buf.len() > 2 * TAIL {
            self.buf.drain(..self.buf.len() - TAIL);
            self.cut = true;
        }
    }
    fn text(&self) -> String {
        let from = self.buf.len().saturating_sub(TAIL);
        let s = String::from_utf8_lossy(&self.buf[from..]);
        let s = s.trim();
        if self.cut || from > 0 {
            format!("...{s}")
        } else {
            s.to_string()
        }
    }
}

/// Reads what is there now; Ok(false) at EOF.
fn drain(r: &mut impl Read, tail: &mut Tail) -> Result<bool> {
    let mut b = [0u8; 16384];
    // Bounded: a descendant of the hook that keeps writing cannot hold us.
    for _ in 0..1024 {
        match r.read(&mut b) {
            Ok(0) => return Ok(false),
            Ok(n) => tail.push(&b[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("read hook output"),
        }
    }
    Ok(true)
}

fn nonblocking(fd: impl AsFd) -> Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let fl = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(fl | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn run_one(h: &Hook, state: &str, ctx: Ctx) -> Result<()> {
    let cwd = ctx.cwd;
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    // A bundle removed before `delete` leaves the caller's cwd.
    if let Some(d) = cwd.filter(|d| d.is_dir()) {
        cmd.current_dir(d);
    }
    // Only stdio reaches a hook, not whatever the runtime's caller left
    // open (Go's exec, and so runc, passes nothing else either). A pre_exec
    // also makes std fork with plain clone rather than clone3/posix_spawn,
    // which a startContainer hook, under the container's seccomp filter,
    // may be refused (an allow-list older than clone3).
    // SAFETY: the closure runs in the forked child before exec; skiff is
    // single-threaded, so no lock (the allocator's included) can be held by
    // a thread that fork left behind.
    unsafe { cmd.pre_exec(cloexec_from_3) };
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    let own: Vec<String>;
    let env: Option<&[String]> = match (h.env(), ctx.env) {
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
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("{}", h.path().display()))?;
    let pidfd = crate::pidfd::open(child.id() as i32);
    let pidfd = match pidfd {
        Ok(p) => p,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let timeout = h.timeout().filter(|t| *t > 0);
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs(t as u64));
    let file = |fd: Option<OwnedFd>| fd.map(std::fs::File::from);
    let mut stdin = child.stdin.take();
    let mut stdout = file(child.stdout.take().map(OwnedFd::from));
    let mut stderr = file(child.stderr.take().map(OwnedFd::from));
    let fds = [
        stdin.as_ref().map(|f| f.as_fd()),
        stdout.as_ref().map(|f| f.as_fd()),
        stderr.as_ref().map(|f| f.as_fd()),
    ];
    for fd in fds.into_iter().flatten() {
        nonblocking(fd)?;
    }
    let mut input = state.as_bytes();
    let (mut out, mut err) = (Tail::default(), Tail::default());
    // Feed stdin and drain both outputs while the hook runs: a hook whose
    // output fills a pipe, or one that does not read its stdin, must
    // neither hang us nor escape its timeout.
    loop {
        let ms = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "killed after its timeout of {} seconds",
                        timeout.unwrap_or(0)
                    );
                }
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if let Some(s) = &stdin {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLOUT));
        }
        if let Some(s) = &stdout {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if let Some(s) = &stderr {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        match nix::poll::poll(&mut fds, ms) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll hook"),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut k = 1;
        if let Some(s) = stdin.as_mut() {
            if ready[k] {
                match s.write(input) {
                    Ok(n) => input = &input[n..],
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // A hook that does not read stdin must not fail us (EPIPE).
                    Err(_) => input = &[],
                }
                if input.is_empty() {
                    stdin = None;
                }
            }
            k += 1;
        }
        for (stream, tail) in [(&mut stdout, &mut out), (&mut stderr, &mut err)] {
            if let Some(s) = stream.as_mut() {
                if ready[k] && !drain(s, tail)? {
                    *stream = None;
                }
                k += 1;
            }
        }
        if ready[0] {
            // Exited: take what it wrote, but do not wait for EOF, which a
            // daemon it left behind could hold off forever.
            if let Some(s) = stdout.as_mut() {
                drain(s, &mut out)?;
            }
            if let Some(s) = stderr.as_mut() {
                drain(s, &mut err)?;
            }
            break;
        }
    }
    let status = child.wait()?;
    if !status.success() {
        let how = match status.signal() {
            Some(s) => killed_by(s),
            None => format!("exit status {}", status.code().unwrap_or(-1)),
        };
        bail!("{how}, stdout: {}, stderr: {}", out.text(), err.text());
    }
    Ok(())
}

/// Marks every fd from 3 up close-on-exec, in a hook's child before exec:
/// init's own sealing (close_range, else /proc/self/fd), which is safe
/// after fork because skiff never starts a thread.
fn cloexec_from_3() -> std::io::Result<()> {
    crate::init::exec::seal_fds(0).map_err(std::io::Error::other)
}

/// "killed by SIGSYS (bad system call)": a hook's death by a signal, named.
fn killed_by(sig: i32) -> String {
    let name = nix::sys::signal::Signal::try_from(sig)
        .map_or(format!("signal {sig}"), |s| s.as_str().to_string());
    let why = match sig {
        libc::SIGSYS => " (bad system call: refused by a seccomp filter)",
        libc::SIGKILL => " (killed)",
        libc::SIGSEGV => " (segmentation fault)",
        libc::SIGABRT => " (aborted)",
        libc::SIGTERM => " (terminated)",
        libc::SIGBUS => " (bus error)",
        _ => "",
    };
    format!("killed by {name}{why}")
}
