//! `skiff kill`: send a signal to the container's init (or every process).
//! Runs in: the runtime process.
use crate::Globals;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Send the specified signal to all processes inside the container
    #[arg(short, long)]
    pub all: bool,
    /// The container id
    pub id: String,
    /// The signal: a name (KILL, SIGKILL) or a number (9); default SIGTERM
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<()> {
    let _ = (&args, g);
    anyhow::bail!("kill: not implemented yet")
}
