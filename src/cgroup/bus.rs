//! Talking to systemd over the system bus for the systemd cgroup driver:
//! StartTransientUnit (waiting for its job), SetUnitProperties, StopUnit,
//! ResetFailedUnit, and the process that holds a new scope open.
//! Runs in: a child forked by the runtime for each exchange (`in_child`),
//! never the runtime itself. zbus's blocking API runs its connection on
//! threads of its own (an executor and async-io's reactor), and skiff keeps
//! the runtime single-threaded (see main.rs): so each exchange forks, talks
//! D-Bus in the child, and sends back one line through a pipe. The parent
//! also enforces runc's 30s limit there: a child that does not answer in
//! time is killed. Only `--systemd-cgroup` containers ever reach this file.
use super::systemd::{Prop, Value};
use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{ForkResult, Pid};
use std::io::{Read, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};
use zbus::blocking::{Connection, MessageIterator};
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

/// runc's limit for a unit's job to finish.
const TIMEOUT: Duration = Duration::from_secs(30);
const SD: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";

/// A failed exchange: the D-Bus error name ("" when not a D-Bus error
/// reply) and its text.
#[derive(Debug)]
struct BusError {
    name: String,
    message: String,
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<zbus::Error> for BusError {
    fn from(e: zbus::Error) -> Self {
        let name = match &e {
            zbus::Error::MethodError(n, _, _) => n.to_string(),
            _ => String::new(),
        };
        let message = match &e {
            zbus::Error::MethodError(_, Some(text), _) => text.clone(),
            _ => e.to_string(),
        };
        BusError { name, message }
    }
}

type Answer = std::result::Result<String, BusError>;

/// Starts transient unit `unit` with `props` and waits for its job, as
/// runc: a unit of that name left over (failed) is reset and the start
/// retried once; still there, it is an error (runc 1.1.5 ignored it and
/// joined the other unit's cgroup, fixed in 1.1.6). A job that ends other
/// than "done", or not within 30s, resets the unit and fails.
pub fn start(unit: &str, props: &[Prop]) -> Result<()> {
    let mut retried = false;
    loop {
        match in_child(TIMEOUT, || child_start(unit, props)) {
            Some(Ok(result)) if result == "done" => return Ok(()),
            Some(Ok(result)) => {
                reset_failed(unit);
                bail!("error creating systemd unit `{unit}`: got `{result}`");
            }
            Some(Err(e)) if e.name == UNIT_EXISTS && !retried => {
                reset_failed(unit);
                retried = true;
            }
            Some(Err(e)) => bail!("unable to start unit {unit:?}: {e}"),
            None => {
                reset_failed(unit);
                bail!("Timeout waiting for systemd to create {unit}");
            }
        }
    }
}

/// SetUnitProperties(unit, runtime=true, props) (`update`, and the pids
/// limit at the end of `create`).
pub fn set_properties(unit: &str, props: &[Prop]) -> Result<()> {
    if props.is_empty() {
        return Ok(());
    }
    match in_child(TIMEOUT, || child_set(unit, props)) {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => bail!("unable to set unit properties of {unit}: {e}"),
        None => bail!("Timeout waiting for systemd to set the properties of {unit}"),
    }
}

/// StopUnit and wait for its job, then ResetFailedUnit (a failed unit,
/// e.g. OOM-killed, would otherwise stay). A unit already gone (systemd
/// stops an empty scope itself) is fine.
pub fn stop(unit: &str) -> Result<()> {
    match in_child(TIMEOUT, || child_stop(unit)) {
        Some(Ok(result)) if result == "done" || result.is_empty() => Ok(()),
        Some(Ok(result)) => {
            crate::log::warn(&format!(
                "error removing unit `{unit}`: got `{result}`. Continuing..."
            ));
            Ok(())
        }
        Some(Err(e)) => bail!("unable to stop unit {unit}: {e}"),
        None => bail!("Timed out while waiting for systemd to remove {unit}"),
    }
}

/// ResetFailedUnit, best effort (the unit may well not exist).
fn reset_failed(unit: &str) {
    if let Some(Err(e)) = in_child(TIMEOUT, || {
        let conn = Connection::system()?;
        reset(&conn, unit)
    }) && e.name != NO_SUCH_UNIT
    {
        crate::log::warn(&format!("unable to reset failed unit {unit}: {e}"));
    }
}

fn call<B>(conn: &Connection, method: &str, body: &B) -> zbus::Result<zbus::Message>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    conn.call_method(Some(SD), PATH, Some(MANAGER), method, body)
}

fn reset(conn: &Connection, unit: &str) -> Answer {
    call(conn, "ResetFailedUnit", &(unit,))?;
    Ok(String::new())
}

/// systemd's version number ("252.38-1~deb12u1" → 252), as runc's
/// systemdVersion; 0 when unknown.
fn version(conn: &Connection) -> u32 {
    let reply = conn.call_method(
        Some(SD),
        PATH,
        Some("org.freedesktop.DBus.Properties"),
        "Get",
        &(MANAGER, "Version"),
    );
    let text = reply
        .ok()
        .and_then(|m| m.body().deserialize::<OwnedValue>().ok())
        .and_then(|v| String::try_from(v).ok())
        .unwrap_or_default();
    parse_version(&text)
}

/// The leading number of a systemd version string (runc's systemdVersionAtoi).
pub(super) fn parse_version(text: &str) -> u32 {
    let t = text.trim_start_matches(['"', 'v']);
    let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

/// Drops what this systemd does not know (runc: CPUQuotaPeriodUSec since
/// v242, AllowedCPUs/AllowedMemoryNodes since v244; the files still get
/// the values).
pub(super) fn for_version(props: &[Prop], version: u32) -> Vec<&Prop> {
    props
        .iter()
        .filter(|p| match p.name.as_str() {
            "CPUQuotaPeriodUSec" => version >= 242,
            "AllowedCPUs" | "AllowedMemoryNodes" => version >= 244,
            _ => true,
        })
        .collect()
}

fn to_dbus(props: &[&Prop]) -> Vec<(String, zbus::zvariant::Value<'static>)> {
    use zbus::zvariant::Value as V;
    props
        .iter()
        .map(|p| {
            let v = match &p.value {
                Value::Bool(b) => V::from(*b),
                Value::Byte(n) => V::from(*n),
                Value::I16(n) => V::from(*n),
                Value::U16(n) => V::from(*n),
                Value::I32(n) => V::from(*n),
                Value::U32(n) => V::from(*n),
                Value::I64(n) => V::from(*n),
                Value::U64(n) => V::from(*n),
                Value::Double(bits) => V::from(f64::from_bits(*bits)),
                Value::Str(s) => V::from(s.clone()),
                Value::Strs(l) => V::from(l.clone()),
                Value::Bytes(b) => V::from(b.clone()),
                Value::U32s(l) => V::from(l.clone()),
                Value::Pairs(l) => V::from(l.clone()),
            };
            (p.name.clone(), v)
        })
        .collect()
}

/// A match on systemd's JobRemoved signals, queued from now on, so a job
/// that finishes before its method reply is read is not missed.
fn job_signals(conn: &Connection) -> zbus::Result<MessageIterator> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(SD)?
        .interface(MANAGER)?
        .member("JobRemoved")?
        .path(PATH)?
        .build();
    let iter = MessageIterator::for_match_rule(rule, conn, None)?;
    // Signals go to subscribers (and the job's requester): subscribe, as
    // go-systemd does for runc.
    call(conn, "Subscribe", &())?;
    Ok(iter)
}

/// The result of job `job` ("done", "failed", "canceled", ...).
fn wait_job(signals: &mut MessageIterator, job: &OwnedObjectPath) -> Answer {
    for msg in signals {
        let msg = msg?;
        let (_, path, _, result): (u32, OwnedObjectPath, String, String) =
            msg.body().deserialize()?;
        if path == *job {
            return Ok(result);
        }
    }
    Err(BusError {
        name: String::new(),
        message: "the system bus closed the connection".into(),
    })
}

fn child_start(unit: &str, props: &[Prop]) -> Answer {
    let conn = Connection::system()?;
    let props = for_version(props, version(&conn));
    let mut signals = job_signals(&conn)?;
    let aux: Vec<(String, Vec<(String, zbus::zvariant::Value<'static>)>)> = Vec::new();
    let reply = call(
        &conn,
        "StartTransientUnit",
        &(unit, "replace", to_dbus(&props), aux),
    )?;
    let job: OwnedObjectPath = reply.body().deserialize()?;
    wait_job(&mut signals, &job)
}

fn child_set(unit: &str, props: &[Prop]) -> Answer {
    let conn = Connection::system()?;
    let props = for_version(props, version(&conn));
    if props.is_empty() {
        return Ok(String::new());
    }
    call(&conn, "SetUnitProperties", &(unit, true, to_dbus(&props)))?;
    Ok(String::new())
}

fn child_stop(unit: &str) -> Answer {
    let conn = Connection::system()?;
    let mut signals = job_signals(&conn)?;
    let result = match call(&conn, "StopUnit", &(unit, "replace")) {
        Ok(reply) => {
            let job: OwnedObjectPath = reply.body().deserialize()?;
            wait_job(&mut signals, &job)?
        }
        Err(e) => {
            let e = BusError::from(e);
            if e.name != NO_SUCH_UNIT {
                return Err(e);
            }
            String::new()
        }
    };
    // Not loaded (any more): nothing to reset.
    let _ = reset(&conn, unit);
    Ok(result)
}

/// Runs `f` in a forked child and returns its answer, or None when the
/// child gave none within `timeout` (it is killed then).
fn in_child(timeout: Duration, f: impl FnOnce() -> Answer) -> Option<Answer> {
    let (r, w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return Some(Err(failure(format!("pipe: {e}")))),
    };
    // SAFETY: the runtime is single-threaded; the child only runs `f`,
    // writes to the pipe and _exits.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop(r);
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            let line = match f() {
                Ok(s) => format!("O{s}"),
                Err(e) => format!("E{}\n{}", e.name, e.message),
            };
            let _ = std::fs::File::from(w).write_all(line.as_bytes());
            // SAFETY: ends the child without running the runtime's exit path.
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Some(Err(failure(format!("fork: {e}")))),
    };
    drop(w);
    let text = read_until(r, Instant::now() + timeout);
    if text.is_none() {
        let _ = kill(child, Signal::SIGKILL);
    }
    let _ = nix::sys::wait::waitpid(child, None);
    let text = text?;
    Some(match text.strip_prefix('O') {
        Some(ok) => Ok(ok.to_string()),
        None => {
            let rest = text.strip_prefix('E').unwrap_or("\nthe D-Bus child died");
            let (name, message) = rest.split_once('\n').unwrap_or(("", rest));
            Err(BusError {
                name: name.to_string(),
                message: message.to_string(),
            })
        }
    })
}

fn failure(message: String) -> BusError {
    BusError {
        name: String::new(),
        message,
    }
}

/// Everything from `fd` up to EOF, or None at the deadline.
fn read_until(fd: OwnedFd, deadline: Instant) -> Option<String> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut out = Vec::new();
    let mut file = std::fs::File::from(fd);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32).ok()?;
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => return None,
        }
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// The process that holds a new scope open: systemd wants a pid to put
/// in a scope, and the container's own processes do not exist yet (they
/// are cloned straight into the scope's cgroup, or join it, as without
/// systemd). A forked child that only waits to be killed; it dies with
/// the runtime (PDEATHSIG) and is killed and reaped on `release`, once
/// the container's init is in the scope.
pub struct Holder {
    pid: Option<Pid>,
}

impl Holder {
    pub fn spawn() -> Result<Holder> {
        // SAFETY: single-threaded runtime; the child only waits for SIGKILL.
        match unsafe { nix::unistd::fork() }.context("fork the scope's holder process")? {
            ForkResult::Child => {
                let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
                crate::init::set_name("skiff:[SCOPE]");
                loop {
                    nix::unistd::pause();
                }
            }
            ForkResult::Parent { child } => Ok(Holder { pid: Some(child) }),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid.map_or(0, |p| p.as_raw() as u32)
    }

    pub fn release(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.release();
    }
}

impl std::fmt::Debug for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Holder({:?})", self.pid)
    }
}
