//! `skiff validate`: check a bundle's config.json the way `create` would,
//! without creating anything. Unknown fields, which `create` ignores (as
//! runtime-spec requires), are reported as warnings with their JSON paths,
//! so a typo is easy to find; every error `create` would give before its
//! first fork (the same `spec::plan`: no state dir, cgroup or process) is
//! an error here.
//! Runs in: the runtime process.
use crate::Globals;
use crate::cli::{Cmd, Opt, path};
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(Debug)]
pub struct Args {
    pub bundle: PathBuf,
}

pub static CLI: Cmd<Args> = Cmd {
    init: || Args { bundle: ".".into() },
    opts: &[Opt::value(
        "bundle",
        Some('b'),
        "DIR",
        "Path to the root of the bundle directory [default: .]",
        |a, v| path(v).map(|p| a.bundle = p),
    )],
    args: &[],
    set_args: |_, _| {},
};

/// Stands in for the container id: a valid one, used only to resolve the
/// default cgroup path, which is planned but never made.
const ID: &str = "skiff-validate";

/// One warning line per unknown field, as `validate` prints them.
pub fn warnings(unknown: &[String]) -> Vec<String> {
    unknown
        .iter()
        .map(|f| format!("warning: config.json: unknown field {f:?}"))
        .collect()
}

/// Exit 0 when `create` would accept the bundle (warnings or not); an
/// error (exit 1) otherwise.
#[inline(never)]
pub fn run(args: Args, _g: &Globals) -> Result<i32> {
    let bundle = std::fs::canonicalize(&args.bundle)
        .with_context(|| format!("bundle {}", args.bundle.display()))?;
    let (spec, unknown) = crate::spec::load_checked(&bundle)?;
    for line in warnings(&unknown) {
        eprintln!("{line}");
    }
    crate::spec::plan(ID, &bundle, spec, false, false, 0)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_name_the_json_path() {
        assert_eq!(
            warnings(&["linux.bogusField".into(), "mounts[2].flavour".into()]),
            [
                "warning: config.json: unknown field \"linux.bogusField\"",
                "warning: config.json: unknown field \"mounts[2].flavour\""
            ]
        );
    }
}
