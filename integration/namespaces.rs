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
    // Joining a uts namespace: the hostname must not be set again.
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
