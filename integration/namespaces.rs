//! Namespaces, checked from inside the container.
use crate::{Bundle, Rt, host_ns, is_skiff, require_root, skip};
use serde_json::json;

/// `ns=link` lines for each namespace, printed from inside the container.
const NS_SCRIPT: &str =
    "for n in ipc mnt net pid uts cgroup time user; do echo $n=$(readlink /proc/self/ns/$n); done";

fn inside_ns(out: &str, ns: &str) -> String {
    let pfx = format!("{ns}=");
    out.lines()
        .find_map(|l| l.strip_prefix(&pfx))
        .unwrap_or_else(|| panic!("no {ns} in {out}"))
        .to_string()
}

#[test]
fn hostname_and_domainname() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["hostname"] = json!("skiff-host");
        c["domainname"] = json!("skiff.example");
    });
    let o = rt
        .sh(&b, "hostname; cat /proc/sys/kernel/domainname")
        .check("run");
    // runc 1.1.5 ignores `domainname` (support came in runc 1.2); skiff sets it.
    let domain = if is_skiff() {
        "skiff.example"
    } else {
        "(none)"
    };
    assert_eq!(o.stdout, format!("skiff-host\n{domain}\n"));
    assert_ne!(
        nix::unistd::gethostname().unwrap().to_string_lossy(),
        "skiff-host",
        "the host's name was changed"
    );
}

#[test]
fn pid_namespace_makes_init_pid_1() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let o = rt
        .sh(
            &b,
            "echo pid=$$; echo ppid=$PPID; ls /proc | grep -c '^[0-9]'",
        )
        .check("run");
    let l: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(l[0], "pid=1");
    assert_eq!(l[1], "ppid=0");
    // Only the shell and the `ls` (and the grep) are visible.
    assert!(
        l[2].parse::<u32>().unwrap() <= 3,
        "host processes are visible: {}",
        l[2]
    );
}

#[test]
fn network_namespace_has_only_lo() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let o = rt
        .sh(
            &b,
            "ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1",
        )
        .check("run");
    let names: Vec<&str> = o.stdout.split_whitespace().collect();
    assert_eq!(names, ["lo", "lo"], "{o:?}");
}

#[test]
fn namespaces_differ_from_host() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.namespace(json!({"type": "cgroup"}));
    // runc 1.1.5 does not know the time namespace (added in runc 1.2);
    // skiff must create it.
    if is_skiff() {
        b.namespace(json!({"type": "time"}));
    }
    let o = rt.sh(&b, NS_SCRIPT).check("run");
    let mut new = vec!["ipc", "mnt", "net", "pid", "uts", "cgroup"];
    if is_skiff() {
        new.push("time");
    }
    for ns in new {
        assert_ne!(
            inside_ns(&o.stdout, ns),
            host_ns("self", ns),
            "{ns} namespace is the host's"
        );
    }
    // Not asked for: shared with the host.
    assert_eq!(inside_ns(&o.stdout, "user"), host_ns("self", "user"));
    if !is_skiff() {
        assert_eq!(inside_ns(&o.stdout, "time"), host_ns("self", "time"));
    }
}

#[test]
fn without_namespaces_shares_host() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
        c.as_object_mut().unwrap().remove("hostname");
    });
    let o = rt.sh(&b, NS_SCRIPT).check("run");
    for ns in ["ipc", "net", "uts", "cgroup"] {
        assert_eq!(
            inside_ns(&o.stdout, ns),
            host_ns("self", ns),
            "{ns} namespace was not requested"
        );
    }
    assert_ne!(inside_ns(&o.stdout, "mnt"), host_ns("self", "mnt"));
}

#[test]
fn join_namespace_by_path() {
    require_root!();
    let rt = Rt::new();
    let first = Bundle::new();
    let id = rt.sleeper(&first);
    let pid = rt.pid(&id);
    let second = Bundle::new();
    for ns in ["network", "ipc", "uts"] {
        let file = if ns == "network" { "net" } else { ns };
        second.namespace(json!({"type": ns, "path": format!("/proc/{pid}/ns/{file}")}));
    }
    // Joining a uts namespace: a hostname would rename the first container.
    second.edit(|c| {
        c.as_object_mut().unwrap().remove("hostname");
    });
    let o = rt.sh(&second, NS_SCRIPT).check("run joining namespaces");
    for ns in ["net", "ipc", "uts"] {
        assert_eq!(
            inside_ns(&o.stdout, ns),
            host_ns(&pid.to_string(), ns),
            "did not join {ns}"
        );
    }
    assert_ne!(
        inside_ns(&o.stdout, "pid"),
        host_ns(&pid.to_string(), "pid"),
        "pid namespace should be new"
    );
}

#[test]
fn join_pid_namespace_by_path() {
    require_root!();
    let rt = Rt::new();
    let first = Bundle::new();
    let id = rt.sleeper(&first);
    let pid = rt.pid(&id);
    let second = Bundle::new();
    second.namespace(json!({"type": "pid", "path": format!("/proc/{pid}/ns/pid")}));
    let o = rt
        .sh(&second, "echo $$; readlink /proc/self/ns/pid")
        .check("run joining pid ns");
    let l: Vec<&str> = o.stdout.lines().collect();
    assert_ne!(l[0], "1", "a joined pid namespace already has an init");
    assert_eq!(l[1], host_ns(&pid.to_string(), "pid"));
}

#[test]
fn user_namespace_with_mappings() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    // The rootfs is owned by host root, which is unmapped: only files that
    // are world-readable/executable work, which busybox and its dirs are.
    b.namespace(json!({"type": "user"}));
    b.edit(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // sysfs and cgroup cannot be mounted from a user namespace without
        // a new network/cgroup namespace owned by it: keep the basics.
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["type"] != "cgroup");
    });
    let o = rt.sh(
        &b,
        "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user",
    );
    if !o.ok() && o.stderr.contains("ermission") {
        skip!(
            "user namespaces are not permitted here: {}",
            o.stderr.trim()
        );
    }
    let o = o.check("run with a user namespace");
    let l: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(l[0], "0");
    let map: Vec<&str> = l[1].split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"]);
    assert_ne!(l[2], host_ns("self", "user"));
}

/// The host's mountinfo lines whose mount point is under `dir`.
fn host_mounts_under(dir: &std::path::Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&d)))
        .map(String::from)
        .collect()
}

/// Detaches what another runtime left mounted on the host, deepest first.
fn unmount_leaked(before: &[String], after: &[String]) {
    let mut leaked: Vec<&str> = after
        .iter()
        .filter(|l| !before.contains(l))
        .filter_map(|l| l.split(' ').nth(4))
        .collect();
    leaked.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in leaked {
        let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A proc mounted on the host at `<rootfs>/proc` by the test itself, for a
/// container without a mount namespace (which may mount nothing); unmounted on drop.
struct HostProc(std::path::PathBuf);

impl HostProc {
    fn mount(b: &Bundle) -> HostProc {
        let at = b.rootfs().join("proc");
        nix::mount::mount(
            Some("proc"),
            &at,
            Some("proc"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        HostProc(at)
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A bundle without a mount namespace: no mounts, no masked or read-only
/// paths, a writable root, no hostname; `ns` are the namespaces it keeps.
fn bundle_without_mount_ns(ns: serde_json::Value) -> Bundle {
    let b = Bundle::new();
    b.edit(|c| {
        c["linux"]["namespaces"] = ns;
        c["mounts"] = json!([]);
        c["root"]["readonly"] = json!(false);
        for k in ["maskedPaths", "readonlyPaths"] {
            c["linux"].as_object_mut().unwrap().remove(k);
        }
        c.as_object_mut().unwrap().remove("hostname");
    });
    std::fs::write(b.rootfs().join("marker"), "in-rootfs\n").unwrap();
    b
}

#[test]
fn without_mount_namespace_chroots_in_host_mount_ns() {
    require_root!();
    // None listed (all inherited), then the runc spec's set minus mount.
    for ns in [
        json!([]),
        json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}]),
    ] {
        let rt = Rt::new();
        let b = bundle_without_mount_ns(ns.clone());
        let proc = HostProc::mount(&b);
        let before = host_mounts_under(b.path());
        let o = rt
            .sh(&b, &format!("cat /marker; ls -d /bin /tmp; {NS_SCRIPT}"))
            .check("run without a mount namespace");
        let l: Vec<&str> = o.stdout.lines().collect();
        assert_eq!(l[..3], ["in-rootfs", "/bin", "/tmp"], "{ns}: {o:?}");
        assert_eq!(inside_ns(&o.stdout, "mnt"), host_ns("self", "mnt"), "{ns}");
        let listed = |t: &str| ns.as_array().unwrap().iter().any(|n| n["type"] == t);
        for (t, file) in [
            ("ipc", "ipc"),
            ("network", "net"),
            ("uts", "uts"),
            ("cgroup", "cgroup"),
        ] {
            let same = inside_ns(&o.stdout, file) == host_ns("self", file);
            assert_eq!(same, !listed(t), "{ns}: {file}");
        }
        // runc 1.1.5 leaves a bind of the rootfs onto itself on the host
        // (and would mount any `mounts` there); skiff mounts nothing.
        let after = host_mounts_under(b.path());
        if is_skiff() {
            assert_eq!(after, before, "{ns}: host mounts changed");
        } else {
            unmount_leaked(&before, &after);
        }
        drop(proc);
    }
}

#[test]
fn without_mount_namespace_exec_sees_the_rootfs() {
    require_root!();
    let rt = Rt::new();
    let b = bundle_without_mount_ns(json!([{"type": "pid"}]));
    let _proc = HostProc::mount(&b);
    let before = host_mounts_under(b.path());
    let id = rt.sleeper(&b);
    let o = rt.out(&[
        "exec",
        &id,
        "sh",
        "-c",
        "readlink /proc/self/ns/mnt; cat /marker || :",
    ]);
    let after = host_mounts_under(b.path());
    unmount_leaked(&before, &after);
    // runc 1.1.5 leaves the exec'd process in the host's root, outside
    // the container's; skiff chroots it where init is.
    let want = if is_skiff() { "in-rootfs\n" } else { "" };
    assert_eq!(o.stdout, format!("{}\n{want}", host_ns("self", "mnt")));
}

#[test]
fn without_mount_namespace_mounts_are_refused() {
    require_root!();
    // runc 1.1.5 mounts them in the host's mount namespace.
    if !is_skiff() {
        skip!("runc mounts on the host without a mount namespace");
    }
    let rt = Rt::new();
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 5] = [
        (
            "mounts",
            |c| c["mounts"] = json!([{"destination": "/proc", "type": "proc", "source": "proc"}]),
        ),
        ("linux.maskedPaths", |c| {
            c["linux"]["maskedPaths"] = json!(["/proc/kcore"])
        }),
        ("linux.readonlyPaths", |c| {
            c["linux"]["readonlyPaths"] = json!(["/proc/sys"])
        }),
        ("linux.rootfsPropagation", |c| {
            c["linux"]["rootfsPropagation"] = json!("private")
        }),
        ("root.readonly", |c| c["root"]["readonly"] = json!(true)),
    ];
    for (field, edit) in cases {
        let b = bundle_without_mount_ns(json!([{"type": "pid"}]));
        b.edit(edit);
        let before = host_mounts_under(b.path());
        let id = rt.id("nomnt");
        let o = rt.create(&b, &id, &[]);
        assert_eq!(o.code, Some(1), "{field}: {o:?}");
        assert!(
            o.stderr.contains(&format!("{field}: ")) && o.stderr.contains("mount namespace"),
            "{field}: {o:?}"
        );
        assert_eq!(o.stderr.trim().lines().count(), 1, "{o:?}");
        assert!(rt.state(&id).is_none(), "{field}: state left behind");
        assert_eq!(host_mounts_under(b.path()), before, "{field}");
        assert!(!b.rootfs().join("dev/null").exists(), "{field}: /dev made");
    }
}

#[test]
fn only_mount_namespace_inherits_the_rest() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["linux"]["namespaces"] = json!([{"type": "mount"}]);
        c.as_object_mut().unwrap().remove("hostname");
    });
    let o = rt
        .sh(&b, &format!("echo self=$$; {NS_SCRIPT}"))
        .check("run");
    assert_ne!(o.stdout.lines().next(), Some("self=1"), "{o:?}");
    for ns in ["ipc", "net", "pid", "uts", "cgroup", "user", "time"] {
        assert_eq!(inside_ns(&o.stdout, ns), host_ns("self", ns), "{ns}");
    }
    assert_ne!(inside_ns(&o.stdout, "mnt"), host_ns("self", "mnt"));
}

/// `unshare --uts sleep`: a UTS namespace held by a process; killed on drop.
struct UtsHolder(std::process::Child);

impl UtsHolder {
    fn start() -> UtsHolder {
        let child = std::process::Command::new("unshare")
            .args(["--uts", "sleep", "1000"])
            .spawn()
            .expect("unshare");
        let h = UtsHolder(child);
        let pid = h.0.id().to_string();
        // unshare execs sleep once the namespace exists.
        let ok = crate::poll(10, || {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|e| e.to_string_lossy().ends_with("/sleep"))
        });
        assert!(ok, "unshare --uts never became sleep");
        assert_ne!(host_ns(&pid, "uts"), host_ns("self", "uts"));
        h
    }
    fn path(&self) -> String {
        format!("/proc/{}/ns/uts", self.0.id())
    }
    /// `hostname` and `domainname` as the holder sees them.
    fn names(&self) -> String {
        let o = std::process::Command::new("nsenter")
            .arg(format!("--uts={}", self.path()))
            .args(["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"])
            .output()
            .unwrap();
        assert!(o.status.success(), "nsenter: {o:?}");
        String::from_utf8(o.stdout).unwrap()
    }
}

impl Drop for UtsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn joined_uts_namespace_gets_hostname_and_domainname() {
    require_root!();
    let host = nix::unistd::gethostname().unwrap();
    let host_domain = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let holder = UtsHolder::start();
    let rt = Rt::new();
    let b = Bundle::new();
    b.namespace(json!({"type": "uts", "path": holder.path()}));
    b.edit(|c| {
        c["hostname"] = json!("joined-host");
        c["domainname"] = json!("joined.example");
    });
    let o = rt
        .sh(
            &b,
            "hostname; cat /proc/sys/kernel/domainname; readlink /proc/self/ns/uts",
        )
        .check("run joining a uts namespace with a hostname");
    // runc 1.1.5 ignores `domainname` (support came in runc 1.2).
    let domain = if is_skiff() {
        "joined.example"
    } else {
        "(none)"
    };
    let uts = host_ns(&holder.0.id().to_string(), "uts");
    assert_eq!(o.stdout, format!("joined-host\n{domain}\n{uts}\n"));
    assert_eq!(holder.names(), format!("joined-host\n{domain}\n"));
    assert_eq!(
        nix::unistd::gethostname().unwrap(),
        host,
        "host hostname changed"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host_domain,
        "host domainname changed"
    );
}

#[test]
fn without_mount_namespace_terminal_uses_the_rootfs_devpts() {
    require_root!();
    let rt = Rt::new();
    let b = bundle_without_mount_ns(json!([{"type": "pid"}]));
    let _proc = HostProc::mount(&b);
    let pts = b.rootfs().join("dev/pts");
    std::fs::create_dir_all(&pts).unwrap();
    nix::mount::mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        nix::mount::MsFlags::empty(),
        Some("newinstance,ptmxmode=0666"),
    )
    .unwrap();
    let _pts = HostProc(pts.clone());
    b.edit(|c| c["process"]["terminal"] = json!(true));
    b.args(&["sh", "-c", "tty; cat /marker"]);
    let console = crate::fds_tty::ConsoleSocket::new("nomnt-tty");
    let before = host_mounts_under(b.path());
    let id = rt.id("nomnt-tty");
    rt.run_detached(&b, &id, &["--console-socket", console.arg()])
        .check("run with a terminal without a mount namespace");
    let out = console.output();
    assert!(
        out.contains("/dev/pts/0") && out.contains("in-rootfs"),
        "{out:?}"
    );
    let after = host_mounts_under(b.path());
    if is_skiff() {
        assert_eq!(after, before, "host mounts changed");
    } else {
        unmount_leaked(&before, &after);
    }
}

#[test]
fn without_mount_namespace_mknod_refused_binds_nothing() {
    require_root!();
    // runc 1.1.5 falls back to bind-mounting the host's nodes, on the host.
    if !is_skiff() {
        skip!("runc binds device nodes on the host when mknod fails");
    }
    let rt = Rt::new();
    let b = bundle_without_mount_ns(json!([{"type": "pid"}]));
    let before = host_mounts_under(b.path());
    // Without CAP_MKNOD in the bounding set root's exec gets no CAP_MKNOD.
    let mut c = std::process::Command::new("setpriv");
    c.args(["--bounding-set", "-mknod", "--"])
        .arg(crate::runtime())
        .arg("--root")
        .arg(rt.root.path())
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(rt.id("nomknod"))
        .stdin(std::process::Stdio::null());
    let o = crate::output(c);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.contains("create device /dev/"), "{o:?}");
    assert_eq!(
        host_mounts_under(b.path()),
        before,
        "a node was bound on the host"
    );
}

/// A new network namespace gets `lo` up, as runc and crun do: programs
/// count on 127.0.0.1 (it was left down).
#[test]
fn new_network_namespace_has_loopback_up() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let o = rt.sh(&b, "cat /sys/class/net/lo/flags").check("run");
    let flags = o.stdout.lines().next().unwrap_or_default();
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is down: {o:?}");
}
