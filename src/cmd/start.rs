//! `skiff start`: let a created container's init exec its entrypoint.
//! Runs in: the runtime process.
use crate::Globals;
use crate::container::{Container, Status};
use anyhow::{Context, Result, bail};

pub use crate::cli::{ID_ONLY as CLI, IdArgs as Args};

#[inline(never)]
pub fn run(args: Args, g: &Globals) -> Result<()> {
    start(&Container::load(&g.root, &args.id)?)
}

/// Writes one byte into the exec fifo that init is blocked reading.
pub fn start(c: &Container) -> Result<()> {
    match c.status() {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running | Status::Paused => bail!("cannot start an already running container"),
        Status::Creating => bail!("cannot start a container that is still being created"),
    }
    go(c)
}

/// Starts a container known to be created: releases init through the exec
/// fifo, then runs the poststart hooks.
pub fn go(c: &Container) -> Result<()> {
    let fifo = c.fifo();
    let fd = match nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        // No reader: the init that held the fifo is gone.
        Err(nix::errno::Errno::ENXIO) => bail!(
            "cannot start container {}: init process has exited",
            c.state.id
        ),
        Err(e) => return Err(e).with_context(|| format!("open {}", fifo.display())),
    };
    nix::unistd::write(&fd, &[0u8]).context("write exec fifo")?;
    std::fs::remove_file(&fifo).with_context(|| format!("remove {}", fifo.display()))?;
    let state = c.oci_state(Status::Running);
    let hooks = c.state.hooks.clone().unwrap_or_default();
    let ctx = crate::hooks::Ctx {
        cwd: Some(&c.state.bundle),
        env: None,
    };
    crate::hooks::run_all_warn(hooks.poststart(), &state, "poststart", ctx);
    Ok(())
}
