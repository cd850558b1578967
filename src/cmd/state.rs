//! `skiff state`.
//! Runs in: the runtime process.
use crate::Globals;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The container id
    pub id: String,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<()> {
    let _ = (&args, g);
    anyhow::bail!("state: not implemented yet")
}
