//! Load `config.json`, reject what skiff cannot honour, and compile the
//! `Plan`: everything decided before the first fork, so that every config
//! error fails `create` before any process, directory or cgroup exists.
//! Runs in: the runtime process.
use crate::cgroup::{Cgroup, Write};
use anyhow::{Context, Result, bail};
use namespaces::Namespaces;
use oci_spec::runtime::Spec;
use std::ffi::CString;
use std::path::{Path, PathBuf};

pub mod namespaces;
pub mod policy;
pub mod process;

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
    /// linux.personality, linux.memoryPolicy and process.ioPriority.
    pub policy: policy::Policy,
    /// linux.netDevices: host devices the runtime moves into the container.
    pub net_devices: Vec<crate::netdev::Move>,
    /// linux.intelRdt: the resctrl group the runtime puts init in.
    pub rdt: Option<crate::rdt::Rdt>,
    /// What the children read of the config, unwrapped once here so that
    /// stage-1 and init never go back to `spec`: the process (checked
    /// present), the hooks (empty if none), linux.sysctl, hostname and
    /// domainname, and linux.timeOffsets as /proc/self/timens_offsets text
    /// (empty if none).
    pub process: oci_spec::runtime::Process,
    pub hooks: oci_spec::runtime::Hooks,
    pub sysctl: Option<std::collections::HashMap<String, String>>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub time_offsets: String,
}

/// Reads and parses `<bundle>/config.json`. Unknown fields are ignored, as
/// runtime-spec's "Extensibility" requires, and named in the debug log.
pub fn load(bundle: &Path) -> Result<Spec> {
    let (text, path) = read_config(bundle)?;
    parse(&text, &path)
}

/// `load`, returning the unknown fields' JSON paths (for `skiff validate`).
pub fn load_checked(bundle: &Path) -> Result<(Spec, Vec<String>)> {
    let (text, path) = read_config(bundle)?;
    parse_checked(&text, &path)
}

/// The text of config.json, with capability names screened (src/capnames.rs).
fn read_config(bundle: &Path) -> Result<(Vec<u8>, PathBuf)> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    let screened = match crate::capnames::screen(&text, true) {
        std::borrow::Cow::Owned(v) => Some(v),
        std::borrow::Cow::Borrowed(_) => None,
    };
    let text = screened.unwrap_or(text);
    Ok((respell_sched_flags(text), path))
}

/// process.scheduler.flags in the spec's spelling, which oci-spec 0.10
/// would refuse (see policy::SCHED_FLAG_NAMES); other text as is.
fn respell_sched_flags(text: Vec<u8>) -> Vec<u8> {
    if !text.windows(11).any(|w| w == b"SCHED_FLAG_") {
        return text;
    }
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return text;
    };
    if !policy::respell_sched_flags(&mut v) {
        return text;
    }
    serde_json::to_vec(&v).unwrap_or(text)
}

/// Parses config.json text (`path` only names it in errors), ignoring
/// unknown fields (debug-logged). Pure but for the log: the fuzz target
/// (fuzz/fuzz_targets/config.rs) calls it directly.
pub fn parse(text: &[u8], path: &Path) -> Result<Spec> {
    let (spec, unknown) = parse_checked(text, path)?;
    log_unknown("config.json", &unknown);
    Ok(spec)
}

/// `parse`, returning every key the typed spec does not take (serde_ignored
/// reports them in the same pass), as JSON paths in document order.
pub fn parse_checked(text: &[u8], path: &Path) -> Result<(Spec, Vec<String>)> {
    let mut de = serde_json::Deserializer::from_slice(text);
    match deserialize_checked::<Spec, _>(&mut de).and_then(|r| de.end().map(|()| r)) {
        Ok((spec, mut unknown)) => {
            // Top-level uid/gidMappings never were runtime-spec fields
            // (oci-spec parses them all the same): unknown, so ignored
            // (and named), as "Extensibility" requires. linux.uidMappings
            // is the field.
            #[allow(deprecated)]
            let top = [
                ("uidMappings", spec.uid_mappings().is_some()),
                ("gidMappings", spec.gid_mappings().is_some()),
            ];
            for (name, present) in top {
                if present {
                    unknown.push(name.to_string());
                }
            }
            Ok((spec, unknown))
        }
        Err(e) => {
            // A bad enumeration value: serde names the value, not the field.
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(text) {
                policy::check_raw(&v)?;
            }
            Err(e).with_context(|| format!("parse {}", path.display()))
        }
    }
}

/// Deserializes any `T` from `de`, collecting the JSON paths of the keys
/// `T` does not know instead of dropping them without a word.
pub fn deserialize_checked<'de, T, D>(de: D) -> Result<(T, Vec<String>), D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    let mut unknown = Vec::new();
    let value = serde_ignored::deserialize(de, |p| unknown.push(field_path(&p)))?;
    Ok((value, unknown))
}

/// Unknown fields are not errors (runtime-spec: a runtime MUST ignore
/// them), but a typo should still be findable: `--debug` names each one.
pub fn log_unknown(what: &str, unknown: &[String]) {
    for f in unknown {
        crate::log::debug(&format!("{what}: ignoring unknown field {f:?}"));
    }
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

/// Fields for other platforms, which a Linux namespace runtime cannot
/// honour (every Linux and process field of runtime-spec 1.3 is
/// implemented): refused by name, with the reason.
fn reject_unsupported(spec: &Spec) -> Result<()> {
    let other: [(bool, &str, &str); 5] = [
        (spec.solaris().is_some(), "solaris", "Solaris containers"),
        (spec.windows().is_some(), "windows", "Windows containers"),
        (spec.zos().is_some(), "zos", "z/OS containers"),
        (spec.vm().is_some(), "vm", "virtual-machine-based runtimes"),
        (
            spec.process()
                .as_ref()
                .is_some_and(|p| p.command_line().is_some()),
            "process.commandLine",
            "Windows containers",
        ),
    ];
    if let Some((_, f, what)) = other.iter().find(|(present, _, _)| *present) {
        bail!("{f}: only for {what}, not supported by skiff (a Linux container runtime)");
    }
    Ok(())
}

/// linux.mountLabel: without SELinux there is nothing to label, so it is
/// accepted and ignored (crun's behaviour; runc 1.1.5 passes `context=` to
/// the kernel anyway and its mounts fail with EINVAL). With SELinux on,
/// skiff cannot apply it yet (runc's `context=` mount option), so refuse.
fn check_mount_label(spec: &Spec, selinux: bool) -> Result<()> {
    let label = spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref());
    match label.filter(|s| !s.is_empty()) {
        None => Ok(()),
        Some(_) if selinux => {
            bail!("linux.mountLabel: not supported by skiff yet (SELinux is enabled on this host)")
        }
        Some(l) => {
            crate::log::debug(&format!(
                "linux.mountLabel {l:?}: ignored, SELinux is not enabled on this host"
            ));
            Ok(())
        }
    }
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

/// One entry per name, as runc's init leaves it (Go's os.Setenv for each
/// entry in turn): a name keeps its first position and takes its last value.
pub fn dedup_env(env: &[String]) -> Vec<String> {
    let name = |e: &str| e.split_once('=').map_or(e, |(n, _)| n).to_string();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out: Vec<String> = Vec::with_capacity(env.len());
    for e in env {
        match at.get(&name(e)) {
            Some(&i) => out[i].clone_from(e),
            None => {
                at.insert(name(e), out.len());
                out.push(e.clone());
            }
        }
    }
    out
}

pub fn cstrings(v: &[String], what: &str) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).with_context(|| format!("{what}: NUL byte in {s:?}")))
        .collect()
}

/// process.env as execve gets it: each entry NAME=value with a non-empty
/// NAME, a repeated NAME keeping its first place and its last value (runc
/// and crun do the same; a duplicate would otherwise shadow the later
/// value, as getenv returns the first).
pub fn env_list(v: &[String], what: &str) -> Result<Vec<CString>> {
    for s in v {
        let Some((name, _)) = s.split_once('=') else {
            bail!("{what}: invalid environment variable {s:?}: no '='");
        };
        if name.is_empty() {
            bail!("{what}: invalid environment variable {s:?}: empty name");
        }
    }
    cstrings(&dedup_env(v), what)
}

/// process.terminal against --console-socket, as runc checks them for
/// create, run and exec: a terminal needs a console socket unless skiff
/// stays in the foreground (then it is its own), and a console socket
/// needs a terminal.
pub fn check_terminal(terminal: bool, console_socket: bool, foreground: bool) -> Result<()> {
    match (terminal, console_socket) {
        (true, false) if foreground => Ok(()),
        (true, false) => {
            bail!("cannot allocate tty if skiff will detach without setting console socket")
        }
        (false, true) => {
            bail!("cannot use console socket if skiff will not detach or allocate tty")
        }
        _ => Ok(()),
    }
}

/// linux.timeOffsets in the /proc/self/timens_offsets format, one
/// "clock secs nanos" line per clock.
fn time_offsets_text(linux: &oci_spec::runtime::Linux) -> String {
    let mut text = String::new();
    for (clock, off) in linux.time_offsets().iter().flatten() {
        let secs = off.secs().unwrap_or(0);
        let nanos = off.nanosecs().unwrap_or(0);
        text.push_str(&format!("{clock} {secs} {nanos}\n"));
    }
    text
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
    process::check_lsm_labels(process)?;
    process::check_user_ids(process, "process")?;
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

/// hostname and domainname need a UTS namespace listed, new or joined by
/// path (runc's and crun's rule; a joined one is set like a new one).
fn check_uts(spec: &Spec, ns: &Namespaces) -> Result<()> {
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !ns.has_uts() {
        bail!("hostname: unable to set hostname without a private UTS namespace");
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !ns.has_uts() {
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
    check_mount_label(&spec, process::selinux_enabled())?;
    let (process, args) = check_process(&spec, preserve_fds)?;
    crate::hooks::check(spec.hooks().as_ref())?;
    let linux = spec
        .linux()
        .as_ref()
        .context("linux: missing in config.json")?;
    let ns = namespaces::plan(linux)?;
    use process::check_id_mappings;
    check_id_mappings(
        linux.uid_mappings().as_deref().unwrap_or_default(),
        "linux.uidMappings",
    )?;
    check_id_mappings(
        linux.gid_mappings().as_deref().unwrap_or_default(),
        "linux.gidMappings",
    )?;
    check_uts(&spec, &ns)?;
    check_sysctls(linux, &ns)?;
    let net_devices = crate::netdev::plan(linux.net_devices().as_ref(), ns.has_net())?;
    let rdt_spec = linux.intel_rdt().as_ref();
    let resctrl = rdt_spec.and_then(|_| crate::rdt::host_mount());
    let rdt = crate::rdt::plan(rdt_spec, id, resctrl.as_deref())?;
    let rootfs_plan = crate::rootfs::plan(&spec, &rootfs, no_pivot)?;
    let cgroup = Cgroup::resolve(linux.cgroups_path().as_deref(), id)?;
    let cgroup_writes = cgroup.plan(linux.resources().as_ref())?;
    let policy = policy::compile(&spec, Some(process))?;
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(crate::seccomp::compile)
        .transpose()?;
    let time_offsets = time_offsets_text(linux);
    Ok(Plan {
        process: process.clone(),
        hooks: spec.hooks().clone().unwrap_or_default(),
        sysctl: linux.sysctl().clone(),
        hostname: spec.hostname().clone(),
        domainname: spec.domainname().clone(),
        time_offsets,
        id: id.to_string(),
        args: cstrings(&args, "process.args")?,
        env: env_list(process.env().as_deref().unwrap_or_default(), "process.env")?,
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
        policy,
        net_devices,
        rdt,
        spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn env_list_keeps_the_first_place_and_the_last_value() {
        let v: Vec<String> = ["A=1", "B=x", "A=2", "C=", "B=y=z"]
            .map(String::from)
            .into();
        let got: Vec<String> = env_list(&v, "process.env")
            .unwrap()
            .into_iter()
            .map(|c| c.into_string().unwrap())
            .collect();
        assert_eq!(got, ["A=2", "B=y=z", "C="]);
        let e = env_list(&["NOEQ".to_string()], "process.env").unwrap_err();
        assert!(e.to_string().starts_with("process.env: invalid"), "{e}");
        assert!(env_list(&["=v".to_string()], "process.env").is_err());
    }

    fn parse_error(v: Value) -> Option<String> {
        let text = serde_json::to_vec(&v).unwrap();
        match parse(&text, Path::new("config.json")) {
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// The unknown fields' paths; panics if the text does not parse.
    fn unknown(v: Value) -> Vec<String> {
        let text = serde_json::to_vec(&v).unwrap();
        parse_checked(&text, Path::new("config.json")).unwrap().1
    }

    #[test]
    fn default_spec_has_no_unknown_fields() {
        let v: Value = serde_json::from_str(include_str!("../cmd/spec-default.json")).unwrap();
        assert_eq!(parse_error(v.clone()), None);
        assert_eq!(unknown(v), Vec::<String>::new());
    }

    #[test]
    fn unknown_fields_are_ignored_and_named() {
        let mut v: Value = serde_json::from_str(include_str!("../cmd/spec-default.json")).unwrap();
        v["linux"]["bogusField"] = json!(1);
        v["mounts"][2]["flavour"] = json!("x");
        // runtime-spec "Extensibility": MUST NOT error on unknown properties.
        assert_eq!(parse_error(v.clone()), None);
        assert_eq!(
            unknown(v.clone()),
            ["mounts[2].flavour", "linux.bogusField"]
        );
        let text = serde_json::to_vec(&v).unwrap();
        let spec = parse(&text, Path::new("config.json")).unwrap();
        assert_eq!(spec.mounts().as_ref().unwrap().len(), 7);
        v["hooks"] = Value::Null;
        assert_eq!(parse_error(v), None);
    }

    #[test]
    fn malformed_known_fields_are_still_errors() {
        let mut v: Value = serde_json::from_str(include_str!("../cmd/spec-default.json")).unwrap();
        v["process"]["args"] = json!("sh");
        let e = parse_error(v).unwrap();
        assert!(e.starts_with("parse config.json"), "{e}");
    }

    #[test]
    fn unknown_fields_are_found_at_every_depth() {
        let base: Value = serde_json::from_str(include_str!("../cmd/spec-default.json")).unwrap();
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
            assert_eq!(unknown(v), [want], "{want}");
        }
    }

    #[test]
    fn env_names_are_unique_first_place_last_value() {
        let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            dedup_env(&e(&["A=1", "B=2", "A=3", "C", "C=4"])),
            e(&["A=3", "B=2", "C=4"])
        );
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
    fn mount_label_is_ignored_without_selinux_and_refused_with_it() {
        let mut v: Value = serde_json::from_str(include_str!("../cmd/spec-default.json")).unwrap();
        v["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0");
        let spec: Spec = serde_json::from_value(v.clone()).unwrap();
        assert!(reject_unsupported(&spec).is_ok());
        assert!(check_mount_label(&spec, false).is_ok());
        let e = check_mount_label(&spec, true).unwrap_err().to_string();
        assert!(e.starts_with("linux.mountLabel: "), "{e}");
        v["linux"]["mountLabel"] = json!("");
        let spec: Spec = serde_json::from_value(v).unwrap();
        assert!(check_mount_label(&spec, true).is_ok());
    }

    #[test]
    fn top_level_id_mappings_are_unknown_fields() {
        let mut v: Value = serde_json::from_str(include_str!("../cmd/spec-default.json")).unwrap();
        v["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        assert_eq!(parse_error(v.clone()), None);
        assert_eq!(unknown(v), ["uidMappings"]);
    }

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        let mut v: Value = serde_json::from_str(include_str!("../cmd/spec-default.json")).unwrap();
        v["vm"] = json!({"hypervisor": {"path": "/x"}, "kernel": {"path": "/k"}});
        let spec: Spec = serde_json::from_value(v).unwrap();
        let e = reject_unsupported(&spec).unwrap_err().to_string();
        assert_eq!(
            e,
            "vm: only for virtual-machine-based runtimes, not supported by skiff (a Linux container runtime)"
        );
    }
}
