//! `skiff pause` and `skiff resume`: freeze and thaw every process of the
//! container through its cgroup (freezer.state on v1, cgroup.freeze on v2).
//! Runs in: the runtime process.
use crate::Globals;
use crate::cli::{Cmd, ID};
use crate::container::{Container, Status};
use anyhow::{Result, bail};

#[derive(Debug, Default)]
pub struct Args {
    pub id: String,
}

/// For both `pause` and `resume`.
pub static CLI: Cmd<Args> = Cmd {
    init: Args::default,
    opts: &[],
    args: &[ID],
    set_args: |a, mut v| a.id = v.swap_remove(0),
};

pub fn pause(args: Args, g: &Globals) -> Result<()> {
    let c = Container::load(&g.root, &args.id)?;
    match c.status() {
        Status::Running | Status::Created => c.state.cgroup.freeze(true),
        s => bail!("container {} is not running: {}", args.id, s.as_str()),
    }
}

pub fn resume(args: Args, g: &Globals) -> Result<()> {
    let c = Container::load(&g.root, &args.id)?;
    match c.status() {
        Status::Paused => c.state.cgroup.freeze(false),
        s => bail!("container {} is not paused: {}", args.id, s.as_str()),
    }
}
