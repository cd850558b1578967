//! `skiff features`: the runtime-spec features document (features.md,
//! features-linux.md), in runc's shape: the Go struct's key order, lists
//! sorted as runc sorts them, 4-space indent.
//!
//! Every list comes from the table the code itself parses or applies with
//! (mount options: rootfs::mount; namespaces: spec::namespaces; seccomp
//! actions, operators, architectures and flags: seccomp; capabilities:
//! capnames; hook phases: hooks), so the document cannot claim what
//! `create` would refuse. Only `seccomp.supportedFlags` asks the kernel.
//! Runs in: the runtime process, for this subcommand only.
use crate::Globals;
use crate::cli::{Cmd, SUBS, VERSION};
use anyhow::Result;
use serde_json::{Map, Value, json};

#[derive(Debug, Default)]
pub struct Args {}

pub static CLI: Cmd<Args> = Cmd {
    init: Args::default,
    opts: &[],
    args: &[],
    set_args: |_, _| {},
};

/// The oldest config.json version skiff reads (runc's).
const OCI_VERSION_MIN: &str = "1.0.0";

/// The systemd cgroup driver (`--systemd-cgroup`) for the system bus. The
/// user bus (`systemdUser`, rootless systemd) is not supported.
const SYSTEMD: bool = true;
const SYSTEMD_USER: bool = false;

/// SELinux: process.selinuxLabel is applied, but linux.mountLabel is
/// refused on a host with SELinux on (spec::check_mount_label), so a
/// labelled container (what engines ask for there) cannot run: not claimed.
const SELINUX: bool = false;

/// config.json annotations that change what skiff does, and so need
/// screening by an engine that passes untrusted annotations on: none.
/// skiff reads no annotation; it only hands them to hooks in the state.
const UNSAFE_ANNOTATIONS: [&str; 0] = [];

#[inline(never)]
pub fn run(_args: Args, _g: &Globals) -> Result<()> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    serde::Serialize::serialize(&document(), &mut ser)?;
    out.push(b'\n');
    use std::io::Write;
    std::io::stdout().write_all(&out)?;
    Ok(())
}

/// The spec version skiff implements: the one `--version` prints.
fn oci_version_max() -> &'static str {
    VERSION
        .lines()
        .find_map(|l| l.strip_prefix("spec: "))
        .unwrap_or(OCI_VERSION_MIN)
}

/// Serialized names of oci-spec enum values, sorted (runc sorts them).
fn names<T: serde::Serialize>(items: &[T]) -> Vec<String> {
    let mut v: Vec<String> = items
        .iter()
        .filter_map(|i| serde_json::to_value(i).ok()?.as_str().map(String::from))
        .collect();
    v.sort();
    v
}

/// The whole document, keys in the order of runtime-spec's Go structs.
pub fn document() -> Value {
    use crate::seccomp;
    let mut namespaces: Vec<&str> = (crate::spec::namespaces::ALL.iter())
        .map(|t| crate::spec::namespaces::name(*t))
        .collect();
    namespaces.sort_unstable();
    let supported: Vec<_> = (seccomp::FLAGS.iter().copied())
        .filter(|f| seccomp::flag_supported(*f))
        .collect();
    let hooks: Vec<&str> = crate::hooks::PHASES.iter().map(|p| p.0).collect();
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": oci_version_max(),
        "hooks": hooks,
        "mountOptions": crate::rootfs::mount::known_options(),
        "linux": {
            "namespaces": namespaces,
            "capabilities": crate::capnames::known(),
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": SYSTEMD,
                "systemdUser": SYSTEMD_USER,
                // linux.resources.rdma is written to rdma.max (cgroup::resources).
                "rdma": true,
            },
            "seccomp": {
                "enabled": true,
                "actions": names(&seccomp::ACTIONS),
                "operators": names(&seccomp::OPERATORS),
                "archs": names(&seccomp::ARCHS),
                // Unsorted, in runc's order (seccomp::FLAGS).
                "knownFlags": unsorted_names(&seccomp::FLAGS),
                "supportedFlags": unsorted_names(&supported),
            },
            // process.apparmorProfile is applied at exec (init::user).
            "apparmor": {"enabled": true},
            "selinux": {"enabled": SELINUX},
            // linux.intelRdt, with the 1.3 `schemata` field (rdt.rs).
            "intelRdt": {"enabled": true, "schemata": true},
            "mountExtensions": {"idmap": {"enabled": true}},
            // linux.netDevices (netdev.rs).
            "netDevices": {"enabled": true},
        },
        "annotations": annotations(),
        "potentiallyUnsafeConfigAnnotations": UNSAFE_ANNOTATIONS,
    })
}

fn unsorted_names<T: serde::Serialize>(items: &[T]) -> Vec<String> {
    (items.iter())
        .filter_map(|i| serde_json::to_value(i).ok()?.as_str().map(String::from))
        .collect()
}

/// skiff's own facts, keys sorted (as Go prints a map). There is no
/// libseccomp to give a version of: profiles are compiled by skiff's own
/// BPF emitter (seccomp::bpf).
fn annotations() -> Value {
    let checkpoint = SUBS.iter().any(|s| s.name == "checkpoint");
    let mut a: Vec<(&str, String)> = vec![
        (
            "org.opencontainers.skiff.checkpoint.enabled",
            checkpoint.to_string(),
        ),
        (
            "org.opencontainers.skiff.seccomp",
            "built-in BPF emitter (no libseccomp)".into(),
        ),
        (
            "org.opencontainers.skiff.version",
            env!("CARGO_PKG_VERSION").into(),
        ),
    ];
    if let Some(c) = option_env!("SKIFF_COMMIT").filter(|c| !c.is_empty()) {
        a.push(("org.opencontainers.skiff.commit", c.into()));
    }
    a.sort();
    Value::Object(
        a.into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .collect::<Map<_, _>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_order_follow_runtime_spec() {
        let d = document();
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        assert_eq!(
            keys(&d),
            [
                "ociVersionMin",
                "ociVersionMax",
                "hooks",
                "mountOptions",
                "linux",
                "annotations",
                "potentiallyUnsafeConfigAnnotations"
            ]
        );
        assert_eq!(
            keys(&d["linux"]),
            [
                "namespaces",
                "capabilities",
                "cgroup",
                "seccomp",
                "apparmor",
                "selinux",
                "intelRdt",
                "mountExtensions",
                "netDevices"
            ]
        );
        assert_eq!(d["ociVersionMax"], "1.3.0");
        let annotations = keys(&d["annotations"]);
        let mut sorted = annotations.clone();
        sorted.sort();
        assert_eq!(annotations, sorted);
    }

    #[test]
    fn lists_are_the_code_tables() {
        let d = document();
        let l = &d["linux"];
        assert_eq!(
            l["namespaces"],
            json!([
                "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"
            ])
        );
        // Every name listed parses as the config's enum does.
        for a in l["seccomp"]["actions"].as_array().unwrap() {
            serde_json::from_value::<oci_spec::runtime::LinuxSeccompAction>(a.clone()).unwrap();
        }
        for a in l["seccomp"]["archs"].as_array().unwrap() {
            serde_json::from_value::<oci_spec::runtime::Arch>(a.clone()).unwrap();
        }
        assert_eq!(l["seccomp"]["actions"].as_array().unwrap().len(), 9);
        assert_eq!(l["seccomp"]["operators"].as_array().unwrap().len(), 7);
        let known = l["seccomp"]["knownFlags"].as_array().unwrap();
        for f in l["seccomp"]["supportedFlags"].as_array().unwrap() {
            assert!(known.contains(f), "{f}");
        }
        let opts = d["mountOptions"].as_array().unwrap();
        for o in opts {
            let o = o.as_str().unwrap();
            let parsed = crate::rootfs::mount::parse_options(&[o.into()]).unwrap();
            assert!(parsed.data.is_empty(), "{o}");
        }
        assert_eq!(l["capabilities"][0], "CAP_CHOWN");
    }
}
