//! `skiff spec`: write a default config.json.
//! Runs in: the runtime process.
use crate::Globals;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Path to the root of the bundle directory
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Generate a configuration for a rootless container
    #[arg(long)]
    pub rootless: bool,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<()> {
    let _ = (&args, g);
    anyhow::bail!("spec: not implemented yet")
}
