//! `skiff state`: the container's OCI state as runc prints it.
//! Runs in: the runtime process.
use crate::Globals;
use crate::cli::{Cmd, ID};
use crate::container::Container;

#[derive(Debug, Default)]
pub struct Args {
    pub id: String,
}

pub static CLI: Cmd<Args> = Cmd {
    init: Args::default,
    opts: &[],
    args: &[ID],
    set_args: |a, mut v| a.id = v.swap_remove(0),
};

pub fn run(args: Args, g: &Globals) -> anyhow::Result<()> {
    let c = Container::load(&g.root, &args.id)?;
    let v = c.oci_state(c.status());
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
