//! `skiff list`: the containers under --root.
//! Runs in: the runtime process.
use crate::Globals;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Select one of: table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Display only container IDs
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<()> {
    let _ = (&args, g);
    anyhow::bail!("list: not implemented yet")
}
