//! `skiff state`: the container's OCI state as runc prints it.
//! Runs in: the runtime process.
use crate::Globals;
use crate::container::Container;

pub use crate::cli::{ID_ONLY as CLI, IdArgs as Args};

#[inline(never)]
pub fn run(args: Args, g: &Globals) -> anyhow::Result<()> {
    let c = Container::load(&g.root, &args.id)?;
    let v = c.oci_state(c.status());
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
