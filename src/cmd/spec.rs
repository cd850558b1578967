//! `skiff spec`: write runc's default config.json (or its rootless variant).
//! Runs in: the runtime process.
use crate::Globals;
use crate::cli::{Cmd, Opt, path};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::PathBuf;

/// runc 1.1's default spec, byte for byte, so tools that diff it see no change.
const DEFAULT: &str = include_str!("spec-default.json");

#[derive(Debug)]
pub struct Args {
    pub bundle: PathBuf,
    pub rootless: bool,
}

pub static CLI: Cmd<Args> = Cmd {
    init: || Args {
        bundle: ".".into(),
        rootless: false,
    },
    opts: &[
        Opt::value(
            "bundle",
            Some('b'),
            "DIR",
            "Path to the root of the bundle directory [default: .]",
            |a, v| path(v).map(|p| a.bundle = p),
        ),
        Opt::flag(
            "rootless",
            None,
            "Generate a configuration for a rootless container",
            |a| a.rootless = true,
        ),
    ],
    args: &[],
    set_args: |_, _| {},
};

/// runc's rootless changes: no network namespace or device cgroup rules, a
/// user namespace mapping the caller to root, sysfs bound from the host,
/// and no gid= on devpts (the tty group is not mapped).
fn rootless(mut v: Value, uid: u32, gid: u32) -> Value {
    let map = |id| json!([{"containerID": 0, "hostID": id, "size": 1}]);
    let linux = &mut v["linux"];
    linux.as_object_mut().map(|l| l.remove("resources"));
    linux["uidMappings"] = map(uid);
    linux["gidMappings"] = map(gid);
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "user"}));
    }
    for m in v["mounts"].as_array_mut().into_iter().flatten() {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        }
        if let Some(o) = m["options"].as_array_mut() {
            o.retain(|o| o != "gid=5");
        }
    }
    v
}

#[inline(never)]
pub fn run(args: Args, _g: &Globals) -> Result<()> {
    let path = args.bundle.join("config.json");
    if path.exists() {
        bail!("file {} exists: remove it first", path.display());
    }
    let text = if args.rootless {
        let v: Value = serde_json::from_str(DEFAULT)?;
        let v = rootless(
            v,
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        serde_json::to_string_pretty(&v)?
    } else {
        DEFAULT.to_string()
    };
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootless_variant_matches_runc() {
        let v = rootless(serde_json::from_str(DEFAULT).unwrap(), 1000, 1001);
        let types: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(types.contains(&"user") && !types.contains(&"network"));
        assert_eq!(v["linux"]["uidMappings"][0]["hostID"], 1000);
        assert_eq!(v["linux"]["gidMappings"][0]["hostID"], 1001);
        assert!(v["linux"].get("resources").is_none());
        assert!(!v.to_string().contains("gid=5"));
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();
        assert!(
            crate::spec::namespaces::plan(spec.linux().as_ref().unwrap())
                .unwrap()
                .new_user
        );
    }
}
