//! `skiff features` checked field by field, its key structure against
//! `runc features`, and each claim tried in a real container where this
//! host allows (namespaces, capabilities, mount options, seccomp actions,
//! operators, architectures and flags, hooks, idmapped mounts). Then
//! `skiff check` against the host facts, read here independently.
//!
//! The document is always skiff's (whatever `$RUNTIME` is); the containers
//! that try its claims are skiff's too, since the claims are.
use crate::{
    ALL_CAP_SETS, Bundle, Out, Rt, TempDir, host_ns, is_skiff, output, require_root, skip,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;

fn skiff(args: &[&str]) -> Out {
    let mut c = Command::new(env!("CARGO_BIN_EXE_skiff"));
    c.args(args);
    output(c)
}

/// `skiff features`, parsed, after checking runc's layout of the text.
fn features() -> Value {
    let o = skiff(&["features"]).check("features");
    assert!(o.stdout.ends_with("}\n"), "one document, one newline");
    // json.Encoder with SetIndent("", "    "), as runc prints it.
    assert!(
        o.stdout.starts_with("{\n    \"ociVersionMin\": "),
        "{}",
        o.stdout
    );
    serde_json::from_str(&o.stdout).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// features.md's list of mount options (all of runc's), plus skiff's
/// idmap and ridmap (runtime-spec config.md "mounts").
const MOUNT_OPTIONS: [&str; 64] = [
    "acl",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noacl",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// features-linux.md's list: every capability up to CAP_CHECKPOINT_RESTORE.
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const ARCHS: [&str; 24] = [
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// runc's order (TSYNC, SPEC_ALLOW, LOG), then the one runc 1.2 lacks.
const KNOWN_FLAGS: [&str; 4] = [
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// The kernel's answer for one filter flag, asked here on our own the way
/// libseccomp asks (no program: EFAULT once the flags are accepted).
fn kernel_takes_flag(name: &str) -> bool {
    let bits: libc::c_ulong = match name {
        "SECCOMP_FILTER_FLAG_TSYNC" => 1,
        "SECCOMP_FILTER_FLAG_LOG" => 2,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => 4,
        // With NEW_LISTENER, which it needs.
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => 32 | 8,
        _ => panic!("{name}"),
    };
    // SAFETY: a null program: the kernel checks the flags, then fails to
    // read the program (EFAULT); nothing is installed.
    let r = unsafe { libc::syscall(libc::SYS_seccomp, 1, bits, std::ptr::null::<u8>()) };
    r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

#[test]
fn features_document_field_by_field() {
    let d = features();
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
    assert_eq!(d["ociVersionMin"], "1.0.0");
    let version = skiff(&["--version"]).check("--version").stdout;
    let spec = version.lines().find_map(|l| l.strip_prefix("spec: "));
    assert_eq!(d["ociVersionMax"].as_str(), spec, "{version}");
    assert_eq!(
        d["hooks"],
        json!([
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ])
    );
    assert_eq!(strings(&d["mountOptions"]), MOUNT_OPTIONS);
    let l = &d["linux"];
    assert_eq!(
        keys(l),
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
    assert_eq!(
        l["namespaces"],
        json!([
            "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"
        ])
    );
    assert_eq!(strings(&l["capabilities"]), CAPABILITIES);
    // rdma: linux.resources.rdma → rdma.max is checked by the cgroup unit
    // tests (no RDMA device or controller on a test host).
    assert_eq!(
        l["cgroup"],
        json!({"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true})
    );
    let s = &l["seccomp"];
    assert_eq!(
        keys(s),
        [
            "enabled",
            "actions",
            "operators",
            "archs",
            "knownFlags",
            "supportedFlags"
        ]
    );
    assert_eq!(s["enabled"], true);
    assert_eq!(
        s["actions"],
        json!([
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_LOG",
            "SCMP_ACT_NOTIFY",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP"
        ])
    );
    assert_eq!(
        s["operators"],
        json!([
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_LE",
            "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ",
            "SCMP_CMP_NE"
        ])
    );
    assert_eq!(strings(&s["archs"]), ARCHS);
    assert_eq!(strings(&s["knownFlags"]), KNOWN_FLAGS);
    let supported: Vec<&str> = KNOWN_FLAGS
        .into_iter()
        .filter(|f| kernel_takes_flag(f))
        .collect();
    assert_eq!(strings(&s["supportedFlags"]), supported);
    assert_eq!(l["apparmor"], json!({"enabled": true}));
    assert_eq!(l["selinux"], json!({"enabled": false}));
    assert_eq!(l["intelRdt"], json!({"enabled": true, "schemata": true}));
    assert_eq!(l["mountExtensions"], json!({"idmap": {"enabled": true}}));
    assert_eq!(l["netDevices"], json!({"enabled": true}));
    let checkpoint = skiff(&["checkpoint", "--help"]).ok();
    let mut want = json!({
        "org.opencontainers.skiff.checkpoint.enabled": checkpoint.to_string(),
        "org.opencontainers.skiff.seccomp": "built-in BPF emitter (no libseccomp)",
        "org.opencontainers.skiff.version": env!("CARGO_PKG_VERSION"),
    });
    if let Some(c) = option_env!("SKIFF_COMMIT").filter(|c| !c.is_empty()) {
        want["org.opencontainers.skiff.commit"] = json!(c);
    }
    assert_eq!(d["annotations"], want);
    let mut sorted = keys(&d["annotations"]);
    sorted.sort_unstable();
    assert_eq!(keys(&d["annotations"]), sorted, "Go prints maps sorted");
    assert_eq!(d["potentiallyUnsafeConfigAnnotations"], json!([]));
}

/// `--systemd-cgroup` is claimed: it must not be refused as unsupported.
/// Here (no systemd) it fails, saying systemd is not running.
#[test]
fn systemd_claim_is_not_refused_as_unsupported() {
    require_root!();
    if Path::new("/run/systemd/system").is_dir() {
        skip!("systemd runs here: the systemd driver tests cover it");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["linux"]["cgroupsPath"] = json!("system.slice:skiff-it:features"));
    let id = rt.id("systemd");
    let mut c = Command::new(env!("CARGO_BIN_EXE_skiff"));
    c.arg("--systemd-cgroup")
        .arg("--root")
        .arg(rt.root.path())
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(&id);
    let o = output(c);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(!o.err().contains("not supported"), "{o:?}");
    assert!(o.err().contains("systemd"), "{o:?}");
}

/// Every key path of a document, objects only; annotation keys are the
/// runtime's own, so only `annotations` itself counts.
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let Some(o) = v.as_object() else { return };
    for (k, v) in o {
        let p = match prefix.is_empty() {
            true => k.clone(),
            false => format!("{prefix}.{k}"),
        };
        out.insert(p.clone());
        if p != "annotations" {
            key_paths(v, &p, out);
        }
    }
}

/// Every key runc prints, skiff prints; skiff's extra keys are runtime-spec
/// fields newer than runc 1.1.5; its lists include runc's; the booleans
/// agree except where skiff must differ.
#[test]
fn features_keys_match_runc() {
    let Ok(r) = Command::new("runc").arg("features").output() else {
        skip!("runc is not installed (scripts/test.sh installs it)");
    };
    assert!(r.status.success(), "runc features failed");
    let runc: Value = serde_json::from_slice(&r.stdout).unwrap();
    let ours = features();
    let (mut rk, mut sk) = (BTreeSet::new(), BTreeSet::new());
    key_paths(&runc, "", &mut rk);
    key_paths(&ours, "", &mut sk);
    let missing: Vec<_> = rk.difference(&sk).collect();
    assert!(missing.is_empty(), "runc has, skiff lacks: {missing:?}");
    let newer = [
        "linux.cgroup.rdma",
        "linux.seccomp.knownFlags",
        "linux.seccomp.supportedFlags",
        "linux.intelRdt",
        "linux.intelRdt.enabled",
        "linux.intelRdt.schemata",
        "linux.mountExtensions",
        "linux.mountExtensions.idmap",
        "linux.mountExtensions.idmap.enabled",
        "linux.netDevices",
        "linux.netDevices.enabled",
        "potentiallyUnsafeConfigAnnotations",
    ];
    for k in sk.difference(&rk) {
        assert!(newer.contains(&k.as_str()), "skiff's extra key {k}");
    }
    for list in [
        "/mountOptions",
        "/linux/namespaces",
        "/linux/capabilities",
        "/linux/seccomp/actions",
        "/linux/seccomp/operators",
        "/linux/seccomp/archs",
    ] {
        let ours: BTreeSet<String> = strings(ours.pointer(list).unwrap()).into_iter().collect();
        for name in strings(runc.pointer(list).unwrap()) {
            assert!(ours.contains(&name), "{list}: runc lists {name}, skiff not");
        }
    }
    // Where skiff says less than runc, on purpose: no user-bus systemd
    // driver, and no linux.mountLabel (so no SELinux) yet.
    let differ = ["/linux/cgroup/systemdUser", "/linux/selinux/enabled"];
    for at in [
        "/linux/cgroup/v1",
        "/linux/cgroup/v2",
        "/linux/cgroup/systemd",
        "/linux/cgroup/systemdUser",
        "/linux/seccomp/enabled",
        "/linux/apparmor/enabled",
        "/linux/selinux/enabled",
    ] {
        let (a, b) = (runc.pointer(at), ours.pointer(at));
        match differ.contains(&at) {
            true => assert_eq!(b, Some(&json!(false)), "{at}"),
            false => assert_eq!(a, b, "{at}"),
        }
    }
    assert_eq!(runc["ociVersionMin"], ours["ociVersionMin"]);
}

fn features_claims() -> Option<Value> {
    if !is_skiff() {
        eprintln!("SKIP: the claims are skiff's; $RUNTIME is another runtime");
        return None;
    }
    Some(features())
}

/// The /proc/<pid>/ns file of a spec namespace name.
fn proc_ns(spec: &str) -> &str {
    match spec {
        "mount" => "mnt",
        "network" => "net",
        n => n,
    }
}

#[test]
fn every_listed_namespace_is_made() {
    require_root!();
    let Some(d) = features_claims() else { return };
    let names = strings(&d["linux"]["namespaces"]);
    let b =
        crate::userns::userns_bundle(json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    let files: Vec<&str> = names.iter().map(|n| proc_ns(n)).collect();
    for n in &names {
        b.namespace(json!({"type": n}));
    }
    let rt = Rt::new();
    let script = format!(
        "for n in {}; do echo $n $(readlink /proc/self/ns/$n); done",
        files.join(" ")
    );
    let o = rt.sh(&b, &script).check("run with every namespace");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), names.len(), "{o:?}");
    for (line, file) in lines.iter().zip(&files) {
        let (n, inside) = line.split_once(' ').unwrap();
        assert_eq!(n, *file);
        assert!(inside.starts_with(&format!("{file}:[")), "{line}");
        assert_ne!(inside, host_ns("self", file), "{file}: not a new namespace");
    }
}

/// A capability mask from /proc/<pid>/status ("CapEff:\t000001ffffffffff").
fn cap_mask(status: &str, field: &str) -> u64 {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(hex.trim(), 16).unwrap()
}

#[test]
fn every_listed_capability_is_granted() {
    require_root!();
    let Some(d) = features_claims() else { return };
    let names = strings(&d["linux"]["capabilities"]);
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = cap_mask(&own, "CapBnd");
    let mut want = 0u64;
    let mut host_lacks = Vec::new();
    let mut granted = Vec::new();
    for n in &names {
        let bit = 1u64 << caps::Capability::from_str(n).unwrap().index();
        match bounding & bit {
            0 => host_lacks.push(n.as_str()),
            _ => {
                want |= bit;
                granted.push(n.as_str());
            }
        }
    }
    // This host's root may lack some (CAP_SYS_RESOURCE here): a runtime
    // cannot grant what it does not hold itself.
    if !host_lacks.is_empty() {
        eprintln!("not in this host's bounding set, so not asked for: {host_lacks:?}");
    }
    assert!(granted.len() >= 38, "too few to say much: {granted:?}");
    let b = Bundle::new();
    b.capabilities(&ALL_CAP_SETS, json!(granted));
    let rt = Rt::new();
    let o = rt
        .sh(&b, "cat /proc/self/status")
        .check("run with every capability");
    for field in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert_eq!(
            cap_mask(&o.stdout, field),
            want,
            "{field}: {:x} vs {want:x}",
            cap_mask(&o.stdout, field)
        );
    }
}

/// Per-mount flags mountinfo shows for an option (field 6), and markers in
/// its optional fields (propagation).
fn mount_effect(opt: &str) -> Option<(&'static str, bool)> {
    Some(match opt {
        "ro" | "rro" | "remount" => ("ro", true),
        "rw" | "rrw" => ("rw", true),
        "nodev" | "rnodev" => ("nodev", true),
        "nosuid" | "rnosuid" => ("nosuid", true),
        "noexec" | "rnoexec" => ("noexec", true),
        "noatime" | "rnoatime" => ("noatime", true),
        "nodiratime" | "rnodiratime" => ("nodiratime", true),
        "nosymfollow" | "rnosymfollow" => ("nosymfollow", true),
        "relatime" | "rrelatime" | "rnostrictatime" => ("relatime", true),
        "strictatime" | "rstrictatime" => ("relatime", false),
        "ratime" => ("noatime", false),
        "dev" | "rdev" => ("nodev", false),
        "suid" | "rsuid" => ("nosuid", false),
        "exec" | "rexec" => ("noexec", false),
        "shared" | "rshared" => ("shared:", true),
        "unbindable" | "runbindable" => ("unbindable", true),
        "private" | "rprivate" => ("shared:", false),
        _ => return None,
    })
}

/// Each listed option on its own mount (a bind mount of a host dir and,
/// where the option is not bind-only, a tmpfs), all in one container:
/// create accepts them all, and the options mountinfo can show are there.
#[test]
fn every_listed_mount_option_is_accepted() {
    require_root!();
    let Some(d) = features_claims() else { return };
    let opts = strings(&d["mountOptions"]);
    let b = Bundle::new();
    let src = TempDir::new("mountopt-src");
    let map = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    let mut mounts = Vec::new();
    for (i, o) in opts.iter().enumerate() {
        let bind = format!("/m/b{i}");
        let tmpfs = format!("/m/t{i}");
        match o.as_str() {
            "tmpcopyup" => mounts.push((
                o,
                tmpfs,
                json!({"type": "tmpfs", "source": "tmpfs", "options": [o]}),
            )),
            "idmap" | "ridmap" => mounts.push((
                o,
                bind,
                json!({"type": "bind", "source": src.path(),
                "options": ["rbind", o], "uidMappings": map, "gidMappings": map}),
            )),
            "bind" | "rbind" => mounts.push((
                o,
                bind,
                json!({"type": "bind", "source": src.path(), "options": [o]}),
            )),
            // A remount changes what an earlier entry mounted (the kernel
            // refuses it on a path where nothing is mounted yet).
            "remount" => {
                let first = json!({"type": "tmpfs", "source": "tmpfs", "options": ["rw"]});
                let again = json!({"type": "tmpfs", "source": "tmpfs", "options": [o, "ro"]});
                mounts.push((o, tmpfs.clone(), first));
                mounts.push((o, tmpfs, again));
            }
            _ => {
                mounts.push((
                    o,
                    bind,
                    json!({"type": "bind", "source": src.path(), "options": ["rbind", o]}),
                ));
                mounts.push((
                    o,
                    tmpfs,
                    json!({"type": "tmpfs", "source": "tmpfs", "options": [o]}),
                ));
            }
        }
    }
    b.edit(|c| {
        let list = c["mounts"].as_array_mut().unwrap();
        for (_, dest, m) in &mounts {
            let mut m = m.clone();
            m["destination"] = json!(dest);
            list.push(m);
        }
    });
    let rt = Rt::new();
    let o = rt
        .sh(&b, "cat /proc/self/mountinfo")
        .check("run with every mount option");
    let mut checked = 0;
    for (opt, dest, _) in &mounts {
        let lines = crate::mountinfo_at(&o.stdout, dest);
        let f = lines
            .last()
            .unwrap_or_else(|| panic!("{opt}: nothing mounted on {dest}"));
        let Some((flag, present)) = mount_effect(opt) else {
            continue;
        };
        // Field 6: per-mount options; then optional fields up to "-".
        let mut words: Vec<&str> = f[5].split(',').collect();
        words.extend(f[6..].iter().take_while(|w| **w != "-"));
        let has = words
            .iter()
            .any(|w| w.starts_with(flag) && (flag.ends_with(':') || *w == flag));
        assert_eq!(has, present, "{opt} on {dest}: {f:?}");
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} effects checked");
}

/// A profile allowing everything but `rule` on mkdir.
fn deny_mkdir(action: &str) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action, "errnoRet": libc::ENAMETOOLONG}]})
}

fn seccomp_bundle(profile: Value, args: &[&str]) -> Bundle {
    let b = Bundle::new();
    b.edit(|c| {
        c["linux"]["seccomp"] = profile;
        c["root"]["readonly"] = json!(false);
    });
    b.args(args);
    b
}

/// Each listed action in a rule on mkdir, with its effect on the call.
#[test]
fn every_listed_seccomp_action_has_its_effect() {
    require_root!();
    let Some(d) = features_claims() else { return };
    let rt = Rt::new();
    let sigsys = Some(128 + libc::SIGSYS);
    for act in strings(&d["linux"]["seccomp"]["actions"]) {
        let mut profile = deny_mkdir(&act);
        let mut agent = None;
        let dir = TempDir::new("features-agent");
        if act == "SCMP_ACT_NOTIFY" {
            let path = dir.path().join("agent.sock");
            let sock = std::os::unix::net::UnixListener::bind(&path).unwrap();
            agent = Some(crate::seccomp::agent(sock, 1));
            profile["listenerPath"] = json!(path);
        }
        let b = seccomp_bundle(profile, &["mkdir", "/tmp/x"]);
        let id = rt.id("action");
        let o = rt.run(&b, &id, &[]);
        match act.as_str() {
            "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" => assert!(o.ok(), "{act}: {o:?}"),
            // The agent answers mkdir with ENAMETOOLONG, as errnoRet does.
            "SCMP_ACT_ERRNO" | "SCMP_ACT_NOTIFY" => {
                assert_eq!(o.code, Some(1), "{act}: {o:?}");
                assert!(o.stderr.contains("File name too long"), "{act}: {o:?}");
            }
            // No tracer: the call is skipped and fails with ENOSYS.
            "SCMP_ACT_TRACE" => {
                assert_eq!(o.code, Some(1), "{act}: {o:?}");
                assert!(
                    o.stderr.contains("Function not implemented"),
                    "{act}: {o:?}"
                );
            }
            "SCMP_ACT_KILL"
            | "SCMP_ACT_KILL_THREAD"
            | "SCMP_ACT_KILL_PROCESS"
            | "SCMP_ACT_TRAP" => {
                assert_eq!(o.code, sigsys, "{act}: {o:?}")
            }
            other => panic!("{other} is listed but has no test here"),
        }
        if let Some(a) = agent {
            let log = a.join().unwrap();
            assert_eq!(log[0].1, [libc::SYS_mkdir as i32], "the agent saw mkdir");
        }
    }
}

/// Each listed operator on personality(2)'s argument (busybox linux32
/// calls personality(PER_LINUX32 = 8)): a rule that matches refuses the
/// call, one that does not lets it through.
#[test]
fn every_listed_seccomp_operator_matches_as_named() {
    require_root!();
    let Some(d) = features_claims() else { return };
    let rt = Rt::new();
    for op in strings(&d["linux"]["seccomp"]["operators"]) {
        // (value, valueTwo) that match 8, then that do not.
        let (hit, miss) = match op.as_str() {
            "SCMP_CMP_EQ" => ((8, 0), (9, 0)),
            "SCMP_CMP_NE" => ((9, 0), (8, 0)),
            "SCMP_CMP_GT" => ((7, 0), (8, 0)),
            "SCMP_CMP_GE" => ((8, 0), (9, 0)),
            "SCMP_CMP_LT" => ((9, 0), (8, 0)),
            "SCMP_CMP_LE" => ((8, 0), (7, 0)),
            // value is the mask, valueTwo the datum (libseccomp's order).
            "SCMP_CMP_MASKED_EQ" => ((0xff, 8), (0xff, 9)),
            other => panic!("{other} is listed but has no test here"),
        };
        for ((value, two), matches) in [(hit, true), (miss, false)] {
            let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": value, "valueTwo": two, "op": op}]}]});
            let b = seccomp_bundle(profile, &["linux32", "uname", "-m"]);
            let id = rt.id("op");
            let o = rt.run(&b, &id, &[]);
            match matches {
                true => assert!(
                    !o.ok() && o.stderr.contains("Operation not permitted"),
                    "{op} {value}/{two} should refuse personality(8): {o:?}"
                ),
                false => assert_eq!(o.check(&op).stdout, "i686\n"),
            }
        }
    }
}

/// All listed architectures in one profile, and each supported flag on
/// its own: create takes them and the filter still works.
#[test]
fn every_listed_seccomp_arch_and_supported_flag_is_accepted() {
    require_root!();
    let Some(d) = features_claims() else { return };
    let s = &d["linux"]["seccomp"];
    let rt = Rt::new();
    let mut profiles = Vec::new();
    let mut all = deny_mkdir("SCMP_ACT_ERRNO");
    all["architectures"] = s["archs"].clone();
    profiles.push(("every arch".to_string(), all));
    for f in strings(&s["supportedFlags"]) {
        let mut p = deny_mkdir("SCMP_ACT_ERRNO");
        p["flags"] = json!([f]);
        profiles.push((f, p));
    }
    for (what, p) in profiles {
        let b = seccomp_bundle(p, &["sh", "-c", "mkdir /tmp/x; echo $?"]);
        let id = rt.id("flags");
        let o = rt.run(&b, &id, &[]).check(&what);
        assert_eq!(o.stdout, "1\n", "{what}: {o:?}");
        assert!(o.stderr.contains("File name too long"), "{what}: {o:?}");
    }
}

/// Every listed hook kind runs during one `run`.
#[test]
fn every_listed_hook_kind_runs() {
    require_root!();
    let Some(d) = features_claims() else { return };
    let out = TempDir::new("features-hooks");
    let b = Bundle::new();
    b.mount(json!({"destination": "/out", "type": "bind", "source": out.path(), "options": ["rbind", "rw"]}));
    let mut hooks = json!({});
    for kind in strings(&d["hooks"]) {
        let hook = match kind.as_str() {
            // Inside the container after pivot_root: busybox's sh, the bind mount.
            "startContainer" => json!({"path": "/bin/sh",
                "args": ["sh", "-c", "echo startContainer > /out/startContainer"]}),
            "prestart" | "createRuntime" | "createContainer" | "poststart" | "poststop" => {
                let file = out.path().join(&kind);
                json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {kind} > {}", file.display())]})
            }
            other => panic!("{other} is listed but has no test here"),
        };
        hooks[&kind] = json!([hook]);
    }
    b.edit(|c| c["hooks"] = hooks);
    b.args(&["true"]);
    let rt = Rt::new();
    let id = rt.id("hooks");
    rt.run(&b, &id, &[]).check("run with every hook");
    for kind in strings(&d["hooks"]) {
        let text = std::fs::read_to_string(out.path().join(&kind))
            .unwrap_or_else(|e| panic!("{kind} did not run: {e}"));
        assert_eq!(text, format!("{kind}\n"));
    }
}

/// mountExtensions.idmap: an idmapped bind mount shows a file owned by
/// 1000 on disk as the mapped id.
#[test]
fn idmap_claim_holds() {
    require_root!();
    let Some(d) = features_claims() else { return };
    assert_eq!(d["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    let rt = Rt::new();
    let b = Bundle::new();
    let _src = crate::userns::idmapped_source(&b, 0, "ridmap");
    let o = rt.sh(&b, "stat -c '%u %g' /mnt/f").check("run");
    assert_eq!(o.stdout.trim(), "0 0");
}

/// apparmor: true. Only a host with AppArmor can show the profile applied.
#[test]
fn apparmor_claim_holds() {
    require_root!();
    let Some(d) = features_claims() else { return };
    assert_eq!(d["linux"]["apparmor"]["enabled"], true);
    let on = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    if !on {
        skip!("AppArmor is not enabled on this host");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["process"]["apparmorProfile"] = json!("unconfined"));
    let o = rt.sh(&b, "cat /proc/self/attr/current").check("run");
    assert_eq!(o.stdout.trim(), "unconfined");
}

// ---- skiff check ----

fn check_json(extra: &[&str]) -> Value {
    let mut args = extra.to_vec();
    args.extend(["check", "--format", "json"]);
    let o = skiff(&args).check("check --format json");
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.stdout))
}

/// The host's cgroup layout from mountinfo, read here: v2 when cgroup2 is
/// on /sys/fs/cgroup, hybrid with v1 hierarchies and a cgroup2 elsewhere.
fn host_layout() -> &'static str {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let (mut v1, mut v2, mut v2_root) = (false, false, false);
    for l in mi.lines() {
        let (pre, post) = l.split_once(" - ").unwrap();
        let point = pre.split(' ').nth(4).unwrap();
        match post.split(' ').next() {
            Some("cgroup") => v1 = true,
            Some("cgroup2") => {
                v2 = true;
                v2_root |= point == "/sys/fs/cgroup";
            }
            _ => {}
        }
    }
    match (v2_root, v1, v2) {
        (true, _, _) => "v2",
        (_, true, true) => "hybrid",
        (_, true, false) => "v1",
        (_, false, true) => "v2",
        _ => "none",
    }
}

fn openat2_works() -> bool {
    #[repr(C)]
    struct How {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = How {
        flags: libc::O_PATH as u64,
        mode: 0,
        resolve: 0,
    };
    // SAFETY: a NUL-terminated path and a live open_how of the size given.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            &how as *const How,
            std::mem::size_of::<How>(),
        )
    };
    if fd >= 0 {
        // SAFETY: our own fd.
        unsafe { libc::close(fd as i32) };
    }
    fd >= 0
}

fn criu_version() -> Option<String> {
    let o = Command::new("criu").arg("--version").output().ok()?;
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(|v| v.trim().to_string())
}

#[test]
fn check_json_agrees_with_the_host() {
    let c = check_json(&[]);
    assert_eq!(
        keys(&c),
        [
            "kernel",
            "cgroup",
            "systemd",
            "openat2",
            "user_namespaces",
            "idmapped_mounts",
            "seccomp_notify",
            "pidfd",
            "time_namespace",
            "criu",
            "apparmor",
            "selinux"
        ]
    );
    for (k, v) in c.as_object().unwrap() {
        assert!(v["state"].is_string() && v["skiff"].is_string(), "{k}: {v}");
    }
    let uname = Command::new("uname").arg("-r").output().unwrap();
    assert_eq!(
        c["kernel"]["release"],
        String::from_utf8_lossy(&uname.stdout).trim()
    );
    assert_eq!(c["cgroup"]["layout"], host_layout());
    if host_layout() == "hybrid" {
        let unified = c["cgroup"]["unified"].as_str().unwrap();
        let listed =
            std::fs::read_to_string(Path::new(unified).join("cgroup.controllers")).unwrap();
        assert_eq!(
            strings(&c["cgroup"]["unified_controllers"]).join(" "),
            listed.trim()
        );
    }
    let systemd = Path::new("/run/systemd/system").is_dir();
    assert_eq!(c["systemd"]["running"], systemd);
    assert_eq!(c["openat2"]["available"], openat2_works());
    let max: u64 = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(c["user_namespaces"]["max_user_namespaces"], max);
    // SAFETY: pidfd_open of our own pid; the fd is closed at once.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if pidfd >= 0 {
        // SAFETY: our own fd.
        unsafe { libc::close(pidfd as i32) };
    }
    assert_eq!(c["pidfd"]["available"], pidfd >= 0);
    assert_eq!(
        c["time_namespace"]["available"],
        Path::new("/proc/self/ns/time").exists()
    );
    let avail = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail").unwrap();
    assert_eq!(
        strings(&c["seccomp_notify"]["actions_avail"]).join(" "),
        avail.trim()
    );
    assert_eq!(
        c["seccomp_notify"]["available"],
        avail.split_whitespace().any(|a| a == "user_notif")
    );
    assert_eq!(c["criu"]["version"], json!(criu_version()));
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    assert_eq!(c["apparmor"]["enabled"], apparmor);
    assert_eq!(
        c["selinux"]["enabled"],
        Path::new("/sys/fs/selinux/enforce").exists()
    );
    if crate::is_root() {
        // This kernel (≥ 5.12) and root: the probe must succeed, as the
        // idmapped mount tests do.
        assert_eq!(
            c["idmapped_mounts"]["available"], true,
            "{}",
            c["idmapped_mounts"]
        );
    }
}

#[test]
fn check_text_is_one_screen_with_every_item() {
    let o = skiff(&["check"]).check("check");
    for label in [
        "kernel",
        "cgroup",
        "systemd",
        "openat2",
        "user namespaces",
        "idmapped mounts",
        "seccomp notify",
        "pidfd",
        "time namespace",
        "criu",
        "apparmor",
        "selinux",
    ] {
        assert!(
            o.stdout.lines().any(|l| l.starts_with(label)),
            "no {label} line: {}",
            o.stdout
        );
    }
    assert!(o.stdout.lines().count() <= 24, "{}", o.stdout);
    assert!(o.stderr.is_empty(), "{o:?}");
}

/// The global --criu names the binary `check` reports on, before or after
/// the subcommand.
#[test]
fn check_reports_the_criu_given() {
    let dir = TempDir::new("fake-criu");
    let fake = dir.path().join("criu");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase $1 in --version) echo 'Version: 9.8.7';; check) echo 'Looks good.';; esac\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let f = fake.to_str().unwrap();
    let c = check_json(&["--criu", f]);
    assert_eq!(c["criu"]["path"], f);
    assert_eq!(c["criu"]["version"], "9.8.7");
    assert_eq!(c["criu"]["check"], "ok");
    let o = skiff(&["check", "--criu", "/nonexistent/criu", "--format", "json"]).check("check");
    let c: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(c["criu"]["path"], Value::Null);
    assert!(
        c["criu"]["state"]
            .as_str()
            .unwrap()
            .starts_with("not found")
    );
}

#[test]
fn check_rejects_an_unknown_format() {
    let o = skiff(&["check", "--format", "yaml"]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert_eq!(o.stderr.trim().lines().count(), 1, "{o:?}");
    assert!(o.stdout.is_empty());
}
