//! Load `config.json`, reject what skiff cannot honour, and compile the
//! `Plan`: everything decided before the first fork, so that every config
//! error fails `create` before any process, directory or cgroup exists.
//! Runs in: the runtime process.
use crate::cgroup::{Cgroup, Write};
use crate::init::namespaces::{self, Namespaces};
use anyhow::{Context, Result, bail};
use oci_spec::runtime::Spec;
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// Everything the children need, decided in the parent.
pub struct Plan {
    pub id: String,
    pub spec: Spec,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub ns: Namespaces,
    pub rootfs_plan: crate::rootfs::Plan,
    pub cgroup: Cgroup,
    pub cgroup_writes: Vec<Write>,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub terminal: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// The compiled `linux.seccomp` filter, installed by init.
    pub seccomp: Option<crate::seccomp::Filter>,
}

/// Reads and parses `<bundle>/config.json`, failing on fields oci-spec does not know.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    parse(&text, &path)
}

/// Parses config.json text (`path` only names it in errors). Pure: the
/// fuzz target (fuzz/fuzz_targets/config.rs) calls it directly.
/// One pass: serde_ignored reports every key the typed spec does not take,
/// which would otherwise be dropped without a word.
pub fn parse(text: &[u8], path: &Path) -> Result<Spec> {
    let mut unknown: Option<String> = None;
    let mut de = serde_json::Deserializer::from_slice(text);
    let spec: Result<Spec, _> = serde_ignored::deserialize(&mut de, |p| {
        unknown.get_or_insert_with(|| field_path(&p));
    });
    let spec = spec
        .and_then(|s| de.end().map(|()| s))
        .with_context(|| format!("parse {}", path.display()))?;
    if let Some(field) = unknown {
        bail!("config.json: unknown field {field:?}");
    }
    Ok(spec)
}

/// `linux.bogusField`, `mounts[2].flavour`: the key path as the user wrote it.
fn field_path(p: &serde_ignored::Path) -> String {
    use serde_ignored::Path as P;
    match p {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        P::Map { parent, key } => match field_path(parent) {
            s if s.is_empty() => key.clone(),
            s => format!("{s}.{key}"),
        },
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            field_path(parent)
        }
    }
}

/// Fields oci-spec parses but skiff does not implement yet: refuse them by name.
fn reject_unsupported(spec: &Spec) -> Result<()> {
    let mut bad: Vec<&str> = Vec::new();
    let mut check = |present: bool, name: &'static str| {
        if present {
            bad.push(name)
        }
    };
    check(spec.solaris().is_some(), "solaris");
    check(spec.windows().is_some(), "windows");
    check(spec.vm().is_some(), "vm");
    check(spec.zos().is_some(), "zos");
    check(
        spec.uid_mappings().is_some() || spec.gid_mappings().is_some(),
        "uidMappings",
    );
    if let Some(l) = spec.linux() {
        check(l.intel_rdt().is_some(), "linux.intelRdt");
        check(l.memory_policy().is_some(), "linux.memoryPolicy");
        check(l.personality().is_some(), "linux.personality");
        check(l.net_devices().is_some(), "linux.netDevices");
        check(
            l.mount_label().as_ref().is_some_and(|s| !s.is_empty()),
            "linux.mountLabel",
        );
    }
    if let Some(p) = spec.process() {
        check(p.scheduler().is_some(), "process.scheduler");
        check(p.io_priority().is_some(), "process.ioPriority");
        check(p.exec_cpu_affinity().is_some(), "process.execCPUAffinity");
        check(p.command_line().is_some(), "process.commandLine");
    }
    if let Some(f) = bad.first() {
        bail!("{f}: not supported by skiff yet");
    }
    Ok(())
}

/// A sysctl may only be set for a namespace the container owns (runc's rule):
/// anything else would change the host.
fn check_sysctls(linux: &oci_spec::runtime::Linux, ns: &Namespaces) -> Result<()> {
    use nix::sched::CloneFlags as F;
    let has = |f: F| ns.new.contains(f) || ns.join.iter().any(|(j, _)| *j == f);
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    for k in linux.sysctl().iter().flatten().map(|(k, _)| k) {
        let ok = if IPC.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
            has(F::CLONE_NEWIPC)
        } else if k.starts_with("net.") {
            has(F::CLONE_NEWNET)
        } else if k == "kernel.hostname" || k == "kernel.domainname" {
            has(F::CLONE_NEWUTS)
        } else {
            false
        };
        if !ok {
            bail!("linux.sysctl: sysctl {k:?} is not in a separate kernel namespace");
        }
    }
    Ok(())
}

pub fn cstrings(v: &[String], what: &str) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).with_context(|| format!("{what}: NUL byte in {s:?}")))
        .collect()
}

/// Validates the spec and compiles the plan. Pure except for canonicalising the rootfs.
pub fn plan(
    id: &str,
    bundle: &Path,
    spec: Spec,
    no_pivot: bool,
    no_new_keyring: bool,
    preserve_fds: i32,
) -> Result<Plan> {
    let root = spec
        .root()
        .as_ref()
        .context("root: missing in config.json")?;
    let rootfs = bundle.join(root.path());
    let rootfs = std::fs::canonicalize(&rootfs)
        .with_context(|| format!("root.path: rootfs {}", rootfs.display()))?;
    if !rootfs.is_dir() {
        bail!("root.path: {} is not a directory", rootfs.display());
    }
    plan_at(
        id,
        bundle,
        spec,
        rootfs,
        no_pivot,
        no_new_keyring,
        preserve_fds,
    )
}

/// `plan` after the rootfs is resolved: pure but for reading this
/// process's mountinfo and cgroup files (fuzzed directly).
/// process: present, with args, an absolute cwd and honourable LSM labels.
fn check_process(
    spec: &Spec,
    preserve_fds: i32,
) -> Result<(&oci_spec::runtime::Process, Vec<String>)> {
    let process = spec
        .process()
        .as_ref()
        .context("process: missing in config.json")?;
    crate::init::user::check_lsm_labels(process)?;
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        bail!("process.args: must not be empty");
    }
    if !process.cwd().is_absolute() {
        bail!(
            "process.cwd: {} is not an absolute path",
            process.cwd().display()
        );
    }
    if preserve_fds < 0 {
        bail!("--preserve-fds: must not be negative");
    }
    Ok((process, args))
}

/// hostname and domainname need a UTS namespace of the container's own.
fn check_uts(spec: &Spec, ns: &Namespaces) -> Result<()> {
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !ns.new_uts() {
        bail!("hostname: unable to set hostname without a private UTS namespace");
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !ns.new_uts() {
        bail!("domainname: unable to set domainname without a private UTS namespace");
    }
    Ok(())
}

pub fn plan_at(
    id: &str,
    bundle: &Path,
    spec: Spec,
    rootfs: PathBuf,
    no_pivot: bool,
    no_new_keyring: bool,
    preserve_fds: i32,
) -> Result<Plan> {
    reject_unsupported(&spec)?;
    let (process, args) = check_process(&spec, preserve_fds)?;
    crate::hooks::check(spec.hooks().as_ref())?;
    let linux = spec
        .linux()
        .as_ref()
        .context("linux: missing in config.json")?;
    let ns = namespaces::plan(linux)?;
    check_uts(&spec, &ns)?;
    check_sysctls(linux, &ns)?;
    let rootfs_plan = crate::rootfs::plan(&spec, &rootfs, no_pivot)?;
    let cgroup = Cgroup::resolve(linux.cgroups_path().as_deref(), id)?;
    let cgroup_writes = cgroup.plan(linux.resources().as_ref())?;
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(crate::seccomp::compile)
        .transpose()?;
    Ok(Plan {
        id: id.to_string(),
        args: cstrings(&args, "process.args")?,
        env: cstrings(process.env().as_deref().unwrap_or_default(), "process.env")?,
        terminal: process.terminal().unwrap_or(false),
        bundle: bundle.to_path_buf(),
        rootfs,
        ns,
        rootfs_plan,
        cgroup,
        cgroup_writes,
        no_new_keyring,
        preserve_fds,
        seccomp,
        spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse_error(v: Value) -> Option<String> {
        let text = serde_json::to_vec(&v).unwrap();
        match parse(&text, Path::new("config.json")) {
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    #[test]
    fn default_spec_has_no_unknown_fields() {
        let v: Value = serde_json::from_str(include_str!("cmd/spec-default.json")).unwrap();
        assert_eq!(parse_error(v), None);
    }

    #[test]
    fn unknown_fields_are_named() {
        let mut v: Value = serde_json::from_str(include_str!("cmd/spec-default.json")).unwrap();
        v["linux"]["bogusField"] = json!(1);
        assert_eq!(
            parse_error(v.clone()),
            Some("config.json: unknown field \"linux.bogusField\"".into())
        );
        v["linux"].as_object_mut().unwrap().remove("bogusField");
        v["mounts"][2]["flavour"] = json!("x");
        assert_eq!(
            parse_error(v.clone()),
            Some("config.json: unknown field \"mounts[2].flavour\"".into())
        );
        v["mounts"][2].as_object_mut().unwrap().remove("flavour");
        v["hooks"] = Value::Null;
        assert_eq!(parse_error(v), None);
    }

    #[test]
    fn unknown_fields_are_found_at_every_depth() {
        let base: Value = serde_json::from_str(include_str!("cmd/spec-default.json")).unwrap();
        type Edit = fn(&mut Value);
        let cases: [(&str, Edit); 6] = [
            ("bogus", |v| v["bogus"] = json!(null)),
            ("root.bogus", |v| v["root"]["bogus"] = json!(true)),
            ("process.capabilities.bogus", |v| {
                v["process"]["capabilities"]["bogus"] = json!([])
            }),
            ("linux.resources.memory.bogus", |v| {
                v["linux"]["resources"] = json!({"memory": {"limit": 1, "bogus": 2}})
            }),
            ("hooks.prestart[0].bogus", |v| {
                v["hooks"] = json!({"prestart": [{"path": "/x", "bogus": 1}]})
            }),
            ("linux.seccomp.syscalls[0].bogus", |v| {
                v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "bogus": 1}]})
            }),
        ];
        for (want, edit) in cases {
            let mut v = base.clone();
            edit(&mut v);
            let got = parse_error(v).unwrap_or_default();
            assert!(got.ends_with(&format!("{want:?}")), "{want}: {got}");
        }
    }

    #[test]
    fn sysctls_need_their_namespace() {
        let linux = |v: Value| -> oci_spec::runtime::Linux { serde_json::from_value(v).unwrap() };
        let l = linux(
            json!({"namespaces": [{"type": "mount"}, {"type": "network"}],
                             "sysctl": {"net.ipv4.ip_forward": "1"}}),
        );
        assert!(check_sysctls(&l, &namespaces::plan(&l).unwrap()).is_ok());
        let l = linux(
            json!({"namespaces": [{"type": "mount"}], "sysctl": {"net.ipv4.ip_forward": "1"}}),
        );
        let e = check_sysctls(&l, &namespaces::plan(&l).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("net.ipv4.ip_forward"), "{e}");
        let l = linux(json!({"namespaces": [{"type": "mount"}, {"type": "ipc"}],
                             "sysctl": {"vm.swappiness": "1"}}));
        assert!(check_sysctls(&l, &namespaces::plan(&l).unwrap()).is_err());
    }

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        let mut v: Value = serde_json::from_str(include_str!("cmd/spec-default.json")).unwrap();
        v["linux"]["intelRdt"] = json!({"closID": "x"});
        let spec: Spec = serde_json::from_value(v).unwrap();
        let e = reject_unsupported(&spec).unwrap_err().to_string();
        assert_eq!(e, "linux.intelRdt: not supported by skiff yet");
    }
}
