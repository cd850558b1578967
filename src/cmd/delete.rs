//! `skiff delete`: remove a container's state, cgroup and processes.
//! Runs in: the runtime process.
use crate::Globals;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Forcibly delete the container if it is still running (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// The container id
    pub id: String,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<()> {
    let _ = (&args, g);
    anyhow::bail!("delete: not implemented yet")
}
