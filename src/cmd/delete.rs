//! `skiff delete`: remove a container's processes, cgroup and state.
//! Runs in: the runtime process.
use crate::Globals;
use crate::cli::{Cmd, ID, Opt};
use crate::container::{Container, Status};
use anyhow::{Result, bail};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Args {
    pub force: bool,
    pub id: String,
}

pub static CLI: Cmd<Args> = Cmd {
    init: Args::default,
    opts: &[Opt::flag(
        "force",
        Some('f'),
        "Forcibly delete the container if it is still running (uses SIGKILL)",
        |a| a.force = true,
    )],
    args: &[ID],
    set_args: |a, mut v| a.id = v.swap_remove(0),
};

pub fn run(args: Args, g: &Globals) -> Result<()> {
    let c = match Container::load(&g.root, &args.id) {
        Ok(c) => c,
        // The shim's second `delete --force` finds nothing left: not an error (runc agrees).
        Err(_)
            if args.force
                && !g
                    .root
                    .join(&args.id)
                    .join(crate::container::STATE_FILE)
                    .exists() =>
        {
            crate::container::validate_id(&args.id)?;
            let _ = std::fs::remove_dir_all(g.root.join(&args.id));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    delete(c, args.force)
}

/// Kills what is left (created containers always, running ones with force),
/// runs poststop hooks, removes cgroup and state.
pub fn delete(c: Container, force: bool) -> Result<()> {
    let status = c.status();
    match status {
        Status::Stopped => {}
        Status::Created | Status::Creating => kill_init(&c),
        Status::Running | Status::Paused if force => {
            let _ = c.state.cgroup.freeze(false);
            kill_init(&c);
        }
        _ => bail!(
            "cannot delete container {} that is not stopped: {}",
            c.state.id,
            status.as_str()
        ),
    }
    crate::log::phase("delete-killed");
    let hooks = c.state.hooks.clone().unwrap_or_default();
    let state = c.oci_state(Status::Stopped);
    crate::hooks::run_all_warn(hooks.poststop(), &state, "poststop");
    c.destroy()
}

/// SIGKILL the init (pinned by a pidfd) and wait until it is gone.
fn kill_init(c: &Container) {
    let Some(pid) = c.state.pid else { return };
    if let Ok(fd) = crate::pidfd::open(pid)
        && crate::container::proc_start_time(pid) == c.state.pid_start
        && crate::pidfd::send_signal(&fd, libc::SIGKILL).is_ok()
    {
        crate::pidfd::wait_exit(&fd, Duration::from_secs(10));
    }
}
