//! Parent side of create/run (to be written).
use crate::Globals;
use crate::cmd::create::CreateOpts;

pub fn create(opts: &CreateOpts, g: &Globals, run: bool) -> anyhow::Result<i32> {
    let _ = (opts, g, run);
    anyhow::bail!("create: not implemented yet")
}
