//! `skiff run`: create and start a container, wait for it, forward
//! signals, exit with its status, then delete it.
//! Runs in: the runtime process.
use super::create::{CreateOpts, create_opts};
use crate::Globals;
use crate::cli::{Cmd, NEW_ID, Opt};
use crate::container::Container;
use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

#[derive(Debug, Default)]
pub struct Args {
    pub detach: bool,
    pub keep: bool,
    pub no_subreaper: bool,
    pub opts: CreateOpts,
}

pub static CLI: Cmd<Args> = Cmd {
    init: Args::default,
    opts: create_opts!(
        Opt::flag(
            "detach",
            Some('d'),
            "Detach from the container's process",
            |a| a.detach = true
        ),
        Opt::flag(
            "keep",
            None,
            "Do not delete the container after it exits",
            |a| a.keep = true
        ),
        Opt::flag(
            "no-subreaper",
            None,
            "Disable the use of the subreaper used to reap reparented processes",
            |a| a.no_subreaper = true
        ),
    ),
    args: &[NEW_ID],
    set_args: |a, mut v| a.opts.id = v.swap_remove(0),
};

#[inline(never)]
pub fn run(args: Args, g: &Globals) -> Result<i32> {
    let foreground = !args.detach;
    if foreground && !args.no_subreaper {
        // Init's parent (stage-1) exits by design; as subreaper we inherit init and can wait for it.
        nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    }
    let created = crate::launch::create(&args.opts, g, foreground)?;
    let pid = created.pid;
    // Held locked since create made it: nobody can have started, paused or
    // deleted it, so it is "created" unless init has died, which the exec
    // fifo tells (start's status check would read /proc and the freezer).
    let c = created.container;
    if !foreground {
        return super::start::go(&c).map(|_| 0);
    }
    // Blocked now, not earlier: init must not inherit a blocked mask.
    let set = block_signals()?;
    if let Err(e) = super::start::go(&c) {
        let _ = super::delete::delete(c, true);
        return Err(e);
    }
    // Not locked while waiting: kill, state and ps must work meanwhile.
    drop(c);
    let code = match created.master {
        Some(m) => crate::tty::proxy(m, Pid::from_raw(pid), &set)?,
        None => wait_forwarding(Pid::from_raw(pid), &set)?,
    };
    if !args.keep {
        match Container::load(&g.root, &args.opts.id) {
            Ok(c) => super::delete::delete(c, true)?,
            // Someone else deleted it while we waited: nothing left to do.
            Err(_) if !g.root.join(&args.opts.id).exists() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(code)
}

/// Blocks every signal we forward (all but SIGKILL/SIGSTOP), so they are
/// taken by sigwait or a signalfd instead of their default actions.
pub fn block_signals() -> Result<SigSet> {
    let mut set = SigSet::all();
    set.remove(Signal::SIGKILL);
    set.remove(Signal::SIGSTOP);
    set.thread_block()?;
    Ok(set)
}

/// Reaps children until init exits, passing every other signal on to init.
pub fn wait_forwarding(init: Pid, set: &SigSet) -> Result<i32> {
    loop {
        if let Some(code) = crate::reap::reap(init)? {
            return Ok(code);
        }
        match set.wait()? {
            Signal::SIGCHLD => {}
            sig => {
                crate::log::debug_fields("sending signal to process", &[("signal", sig.as_str())]);
                let _ = nix::sys::signal::kill(init, sig);
            }
        }
    }
}
