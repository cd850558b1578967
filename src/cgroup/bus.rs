//! Talking to systemd over the system bus for the systemd cgroup driver:
//! StartTransientUnit (waiting for its job), SetUnitProperties, StopUnit,
//! ResetFailedUnit, and the process that holds a new scope open.
//! Runs in: the runtime process, over the small blocking client of
//! dbus.rs (no threads, no fork per exchange). Each exchange is one
//! connection with runc's 30s limit as its deadline: a bus or systemd
//! that does not answer in time fails the exchange. Only
//! `--systemd-cgroup` containers ever reach this file.
use super::dbus::{self, Body, Conn, Message};
use super::systemd::Prop;
use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{ForkResult, Pid};
use std::time::{Duration, Instant};

/// runc's limit for a unit's job to finish.
const TIMEOUT: Duration = Duration::from_secs(30);
const SD: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";

type Answer = std::result::Result<String, dbus::Error>;

/// Starts transient unit `unit` with `props` and waits for its job, as
/// runc: a unit of that name left over (failed) is reset and the start
/// retried once; still there, it is an error (runc 1.1.5 ignored it and
/// joined the other unit's cgroup, fixed in 1.1.6). A job that ends other
/// than "done", or not within 30s, resets the unit and fails.
pub fn start(unit: &str, props: &[Prop]) -> Result<()> {
    let mut retried = false;
    loop {
        match exchange(|c| start_on(c, unit, props)) {
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
    match exchange(|c| set_on(c, unit, props)) {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => bail!("unable to set unit properties of {unit}: {e}"),
        None => bail!("Timeout waiting for systemd to set the properties of {unit}"),
    }
}

/// StopUnit and wait for its job, then ResetFailedUnit (a failed unit,
/// e.g. OOM-killed, would otherwise stay). A unit already gone (systemd
/// stops an empty scope itself) is fine.
pub fn stop(unit: &str) -> Result<()> {
    match exchange(|c| stop_on(c, unit)) {
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
    if let Some(Err(e)) = exchange(|c| reset(c, unit))
        && e.name != NO_SUCH_UNIT
    {
        crate::log::warn(&format!("unable to reset failed unit {unit}: {e}"));
    }
}

/// Runs `f` on a new connection to the system bus, all within TIMEOUT;
/// None when that passed.
fn exchange(f: impl FnOnce(&mut Conn) -> Answer) -> Option<Answer> {
    match Conn::system(Instant::now() + TIMEOUT).and_then(|mut c| f(&mut c)) {
        Err(e) if e.timed_out => None,
        answer => Some(answer),
    }
}

fn call(conn: &mut Conn, method: &str, body: Body) -> dbus::Result<Message> {
    conn.call(SD, PATH, MANAGER, method, body)
}

fn reset(conn: &mut Conn, unit: &str) -> Answer {
    call(conn, "ResetFailedUnit", Body::default().str(unit))?;
    Ok(String::new())
}

/// systemd's version number ("252.38-1~deb12u1" → 252), as runc's
/// systemdVersion; 0 when unknown.
fn version(conn: &mut Conn) -> u32 {
    let body = Body::default().str(MANAGER).str("Version");
    let reply = conn.call(SD, PATH, "org.freedesktop.DBus.Properties", "Get", body);
    let text = reply.ok().and_then(|m| {
        let mut args = m.args();
        (m.signature == "v" && args.sig().ok()? == "s")
            .then(|| args.str().ok())
            .flatten()
    });
    parse_version(&text.unwrap_or_default())
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

/// A match on systemd's JobRemoved signals, queued from now on, so a job
/// that finishes before its method reply is read is not missed.
fn job_signals(conn: &mut Conn) -> dbus::Result<()> {
    let rule = format!(
        "type='signal',sender='{SD}',interface='{MANAGER}',member='JobRemoved',path='{PATH}'"
    );
    conn.call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "AddMatch",
        Body::default().str(&rule),
    )?;
    // Signals go to subscribers (and the job's requester): subscribe, as
    // go-systemd does for runc.
    call(conn, "Subscribe", Body::default())?;
    Ok(())
}

/// The job path of a StartTransientUnit or StopUnit reply (`o`).
fn job_of(reply: &Message) -> dbus::Result<String> {
    if reply.signature != "o" {
        return Err(dbus::Error::new(format!(
            "systemd answered with ({}), not a job",
            reply.signature
        )));
    }
    reply.args().str()
}

/// The result of job `job` ("done", "failed", "canceled", ...), from
/// JobRemoved(u id, o job, s unit, s result).
fn wait_job(conn: &mut Conn, job: &str) -> Answer {
    loop {
        let m = conn.next_signal(|m| {
            m.member == "JobRemoved"
                && m.interface == MANAGER
                && m.path == PATH
                && m.signature == "uoss"
        })?;
        let mut args = m.args();
        args.u32()?;
        let path = args.str()?;
        args.str()?;
        let result = args.str()?;
        if path == job {
            return Ok(result);
        }
    }
}

pub(super) fn start_on(conn: &mut Conn, unit: &str, props: &[Prop]) -> Answer {
    let props = for_version(props, version(conn));
    job_signals(conn)?;
    let body = Body::default()
        .str(unit)
        .str("replace")
        .props(&props)
        .no_aux();
    let reply = call(conn, "StartTransientUnit", body)?;
    let job = job_of(&reply)?;
    wait_job(conn, &job)
}

fn set_on(conn: &mut Conn, unit: &str, props: &[Prop]) -> Answer {
    let props = for_version(props, version(conn));
    if props.is_empty() {
        return Ok(String::new());
    }
    let body = Body::default().str(unit).bool(true).props(&props);
    call(conn, "SetUnitProperties", body)?;
    Ok(String::new())
}

fn stop_on(conn: &mut Conn, unit: &str) -> Answer {
    job_signals(conn)?;
    let result = match call(conn, "StopUnit", Body::default().str(unit).str("replace")) {
        Ok(reply) => {
            let job = job_of(&reply)?;
            wait_job(conn, &job)?
        }
        Err(e) if e.name == NO_SUCH_UNIT => String::new(),
        Err(e) => return Err(e),
    };
    // Not loaded (any more): nothing to reset.
    let _ = reset(conn, unit);
    Ok(result)
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
