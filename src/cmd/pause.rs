//! `skiff pause` and `skiff resume`: freeze and thaw every process of the
//! container through its cgroup (freezer.state on v1, cgroup.freeze on v2).
//! Runs in: the runtime process.
use crate::Globals;
use crate::container::{Container, Status};
use anyhow::{Result, bail};

pub use crate::cli::{ID_ONLY as CLI, IdArgs as Args};

#[inline(never)]
pub fn pause(args: Args, g: &Globals) -> Result<()> {
    let c = Container::load(&g.root, &args.id)?;
    match c.status() {
        Status::Running | Status::Created => c.state.cgroup.freeze(true),
        s => bail!("container {} is not running: {}", args.id, s.as_str()),
    }
}

#[inline(never)]
pub fn resume(args: Args, g: &Globals) -> Result<()> {
    let c = Container::load(&g.root, &args.id)?;
    match c.status() {
        Status::Paused => c.state.cgroup.freeze(false),
        s => bail!("container {} is not paused: {}", args.id, s.as_str()),
    }
}
