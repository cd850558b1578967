//! `skiff kill`: send a signal to the container's init (or every process).
//! Runs in: the runtime process.
use crate::Globals;
use crate::cli::{Cmd, ID, Opt, Pos};
use crate::container::{Container, Status};
use anyhow::{Context, Result, bail};
use std::str::FromStr;

#[derive(Debug)]
pub struct Args {
    pub all: bool,
    pub id: String,
    pub signal: String,
}

pub static CLI: Cmd<Args> = Cmd {
    init: || Args {
        all: false,
        id: String::new(),
        signal: "SIGTERM".into(),
    },
    opts: &[Opt::flag(
        "all",
        Some('a'),
        "Send the specified signal to all processes inside the container",
        |a| a.all = true,
    )],
    args: &[
        ID,
        Pos {
            name: "[SIGNAL]",
            help: "The signal: a name (KILL, SIGKILL) or a number (9); default SIGTERM [default: SIGTERM]",
        },
    ],
    set_args: |a, v| {
        let mut v = v.into_iter();
        a.id = v.next().unwrap_or_default();
        if let Some(s) = v.next() {
            a.signal = s;
        }
    },
};

/// "9", "KILL", "sigkill" and "SIGKILL" all name SIGKILL, as in runc.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        // 0 sends nothing but checks the process exists (a liveness probe).
        if n < 0 || n > libc::SIGRTMAX() {
            bail!("invalid signal number {n}");
        }
        return Ok(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    nix::sys::signal::Signal::from_str(&name)
        .map(|s| s as i32)
        .with_context(|| format!("unknown signal {s:?}"))
}

#[inline(never)]
pub fn run(args: Args, g: &Globals) -> Result<()> {
    let sig = parse_signal(&args.signal)?;
    let c = Container::load(&g.root, &args.id)?;
    let status = c.status();
    match status {
        // runc: `kill --all` still reaches what is left in the cgroup.
        Status::Stopped if !args.all => bail!("container not running"),
        Status::Creating => bail!("container {} is still being created", args.id),
        _ => {}
    }
    if !args.all {
        c.signal_init(sig)?;
        // A v1-frozen task acts on no signal, not even SIGKILL, until
        // thawed: as runc, thaw a paused container for SIGKILL (only), so
        // that it ends up stopped and `delete` works.
        if status == Status::Paused
            && sig == libc::SIGKILL
            && let Err(e) = c.state.cgroup.freeze(false)
        {
            crate::log::warn(&format!("{e:#}"));
        }
        return Ok(());
    }
    // As runc 1.1's signalAllProcesses: freeze so nothing forks past the
    // list, signal, then always thaw (a paused container resumes too). A
    // v1-frozen task never acts on a signal, and containerd sends
    // `kill --all 9` to paused containers. A failed freeze only warns.
    let cg = &c.state.cgroup;
    if let Err(e) = cg.freeze(true) {
        crate::log::warn(&format!("{e:#}"));
    }
    let signal = nix::sys::signal::Signal::try_from(sig).ok();
    let pids = cg.pids();
    for &pid in pids.iter().flatten() {
        // A process may exit between listing and signalling: not an error.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
    let thawed = cg.freeze(false);
    pids.and(thawed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_forms() {
        for s in ["9", "KILL", "SIGKILL", "kill", "sigkill"] {
            assert_eq!(parse_signal(s).unwrap(), libc::SIGKILL, "{s}");
        }
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("0").unwrap(), 0);
        assert!(parse_signal("-1").is_err());
        assert!(parse_signal("NOPE").is_err());
    }
}
