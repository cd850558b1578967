//! `skiff delete`: remove a container's processes, cgroup and state.
//! Runs in: the runtime process.
use crate::Globals;
use crate::cli::{Cmd, ID, Opt};
use crate::container::{Container, Status};
use anyhow::{Context, Result, bail};
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

#[inline(never)]
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
        // A state file that exists but does not load (empty, garbage, `{}`).
        Err(e) if args.force => return remove_broken(g, &args.id, e),
        Err(e)
            if g.root
                .join(&args.id)
                .join(crate::container::STATE_FILE)
                .exists() =>
        {
            return Err(e.context(format!(
                "container {}: unreadable state; `delete --force` removes what is left of it",
                args.id
            )));
        }
        Err(e) => return Err(e),
    };
    delete(c, args.force)
}

/// `delete --force` of a container whose state.json does not load: remove
/// what can be found of it. Its cgroup is the one the state recorded, if that
/// part still parses, else the default path for the id (`<our cgroup>/<id>`,
/// as create makes it without linux.cgroupsPath). A guessed cgroup is only
/// emptied and removed when every process in it is in a mount namespace
/// other than ours, so a cgroup that merely shares the id's name (a host
/// service) is never touched.
fn remove_broken(g: &Globals, id: &str, err: anyhow::Error) -> Result<()> {
    use crate::cgroup::Cgroup;
    crate::container::validate_id(id)?;
    let dir = g.root.join(id);
    let text = std::fs::read(dir.join(crate::container::STATE_FILE)).unwrap_or_default();
    let recorded = serde_json::from_slice::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| serde_json::from_value::<Cgroup>(v.get("cgroup")?.clone()).ok());
    crate::log::warn(&format!(
        "container {id}: unreadable state ({err:#}); removing what is left of it"
    ));
    let cg = match recorded {
        Some(cg) => Some(cg),
        None => guess_cgroup(id)?,
    };
    if let Some(cg) = cg {
        cg.destroy()?;
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))
}

/// The default cgroup for `id`, if it exists and certainly holds only
/// container processes (see `remove_broken`).
fn guess_cgroup(id: &str) -> Result<Option<crate::cgroup::Cgroup>> {
    let mut cg = crate::cgroup::Cgroup::resolve(None, id)?;
    cg.created = cg
        .hierarchies
        .iter()
        .map(|h| h.dir.clone())
        .filter(|d| d.exists())
        .collect();
    if cg.created.is_empty() {
        return Ok(None);
    }
    let ours = std::fs::read_link("/proc/self/ns/mnt").context("readlink /proc/self/ns/mnt")?;
    for pid in cg.pids()? {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
        if theirs.is_some_and(|t| t == ours) {
            crate::log::warn(&format!(
                "not removing cgroup {}: process {pid} in it is not in a container's mount namespace",
                cg.created[0].display()
            ));
            return Ok(None);
        }
    }
    Ok(Some(cg))
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
    let ctx = crate::hooks::Ctx {
        cwd: Some(&c.state.bundle),
        env: None,
    };
    crate::hooks::run_all_warn(hooks.poststop(), &state, "poststop", ctx);
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
