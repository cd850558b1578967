//! `skiff run`: create, start and wait for a container, then delete it.
//! Runs in: the runtime process.
use super::create::CreateOpts;
use crate::Globals;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// Do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,
    /// Disable the use of the subreaper used to reap reparented processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    #[command(flatten)]
    pub opts: CreateOpts,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<i32> {
    let _ = (&args, g);
    anyhow::bail!("run: not implemented yet")
}
