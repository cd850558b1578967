//! User namespaces run by root: file ownership as the container sees it,
//! several mapping ranges, exec into a user-namespaced container and
//! joining an existing user namespace by path.
use crate::{Bundle, Rt, host_ns, require_root};
use serde_json::{Value, json};
use std::os::unix::fs::chown;

/// A user namespace with these maps (uid and gid alike), without the
/// cgroup mount (cgroupfs cannot be mounted from a user namespace
/// without a cgroup namespace of its own; the rootless tests cover it).
fn userns_bundle(maps: Value) -> Bundle {
    let b = Bundle::new();
    b.namespace(json!({"type": "user"}));
    b.edit(|c| {
        c["linux"]["uidMappings"] = maps.clone();
        c["linux"]["gidMappings"] = maps;
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["type"] != "cgroup");
    });
    b
}

#[test]
fn userns_file_ownership_as_the_container_sees_it() {
    require_root!();
    let rt = Rt::new();
    let b = userns_bundle(json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    b.edit(|c| c["root"]["readonly"] = json!(false));
    let owned = b.rootfs().join("etc/owned");
    std::fs::write(&owned, "x").unwrap();
    chown(&owned, Some(100000), Some(100005)).unwrap();
    let o = rt
        .sh(
            &b,
            "stat -c '%u %g' /etc/owned /bin/busybox; id -u; id -g; cat /proc/self/uid_map; \
             echo y > /etc/owned && cat /etc/owned",
        )
        .check("run");
    let l: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(l[0], "0 5", "host 100000:100005 is 0:5 inside");
    // Host root is not mapped: the kernel shows the overflow ids.
    assert_eq!(l[1], "65534 65534");
    assert_eq!((l[2], l[3]), ("0", "0"));
    assert_eq!(
        l[4].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_eq!(l[5], "y", "root inside owns the file and may write it");
}

#[test]
fn userns_with_several_mapping_ranges() {
    require_root!();
    let rt = Rt::new();
    let b = userns_bundle(json!([
        {"containerID": 0, "hostID": 100000, "size": 10},
        {"containerID": 10, "hostID": 200010, "size": 10}
    ]));
    let owned = b.rootfs().join("etc/owned");
    std::fs::write(&owned, "x").unwrap();
    chown(&owned, Some(200012), Some(100003)).unwrap();
    let o = rt
        .sh(
            &b,
            "stat -c '%u %g' /etc/owned; cat /proc/self/uid_map /proc/self/gid_map",
        )
        .check("run");
    let l: Vec<Vec<&str>> = o
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(l[0], ["12", "3"]);
    for map in [&l[1..3], &l[3..5]] {
        assert_eq!(map[0], ["0", "100000", "10"]);
        assert_eq!(map[1], ["10", "200010", "10"]);
    }
}

#[test]
fn exec_joins_the_user_namespace_first() {
    require_root!();
    let rt = Rt::new();
    let b = userns_bundle(json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    let id = rt.sleeper(&b);
    let pid = rt.pid(&id).to_string();
    let o = rt
        .out(&[
            "exec",
            &id,
            "sh",
            "-c",
            "id -u; readlink /proc/self/ns/user; readlink /proc/self/ns/mnt",
        ])
        .check("exec");
    let l: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(l[0], "0");
    assert_eq!(l[1], host_ns(&pid, "user"));
    assert_eq!(l[2], host_ns(&pid, "mnt"));
    // Seen from the host, the exec'd process runs as the mapped uid.
    let o = rt
        .out(&["exec", &id, "sh", "-c", "grep Uid /proc/self/status"])
        .check("exec");
    assert!(o.stdout.contains("0\t0\t0\t0"), "{}", o.stdout);
    let host = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(host.contains("Uid:\t100000\t100000"), "{host}");
}

#[test]
fn join_user_namespace_by_path() {
    require_root!();
    let rt = Rt::new();
    let first = userns_bundle(json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    let id = rt.sleeper(&first);
    let pid = rt.pid(&id).to_string();
    let second = Bundle::new();
    second.namespace(json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}));
    second.edit(|c| {
        // runc 1.1 wants the mappings even when joining; they describe the joined namespace.
        c["linux"]["uidMappings"] = first.config()["linux"]["uidMappings"].clone();
        c["linux"]["gidMappings"] = first.config()["linux"]["gidMappings"].clone();
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["type"] != "cgroup");
    });
    let o = rt
        .sh(
            &second,
            "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user",
        )
        .check("run joining a user namespace");
    let l: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(l[0], "0");
    assert_eq!(
        l[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_eq!(l[2], host_ns(&pid, "user"));
}
