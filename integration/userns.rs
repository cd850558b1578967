//! User namespaces run by root: file ownership as the container sees it,
//! several mapping ranges, exec into a user-namespaced container and
//! joining an existing user namespace by path.
use crate::{Bundle, Rt, host_ns, require_root};
use serde_json::{Value, json};
use std::os::unix::fs::chown;

/// A user namespace with these maps (uid and gid alike), without the
/// cgroup mount (cgroupfs cannot be mounted from a user namespace
/// without a cgroup namespace of its own; the rootless tests cover it).
pub fn userns_bundle(maps: Value) -> Bundle {
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

// Found by scripts/difftest.sh: oomScoreAdj in a new user namespace
// (init's switch to the namespace's root makes it non-dumpable, and its
// /proc/self/oom_score_adj then belongs to the host's root).
#[test]
fn userns_with_oom_score_adj() {
    require_root!();
    let rt = Rt::new();
    let b = userns_bundle(json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    b.edit(|c| c["process"]["oomScoreAdj"] = json!(700));
    let o = rt.sh(&b, "cat /proc/self/oom_score_adj").check("run");
    assert_eq!(o.stdout, "700\n");
}

// Found by scripts/difftest.sh: domainname in a user namespace
// (/proc/sys/kernel/domainname belongs to the host's root there).
#[test]
fn userns_with_hostname_and_domainname() {
    require_root!();
    let rt = Rt::new();
    let b = userns_bundle(json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    b.namespace(json!({"type": "uts"}));
    b.edit(|c| {
        c["hostname"] = json!("usr-host");
        c["domainname"] = json!("usr.example");
    });
    let o = rt
        .sh(&b, "hostname; cat /proc/sys/kernel/domainname")
        .check("run");
    if crate::is_skiff() {
        assert_eq!(o.stdout, "usr-host\nusr.example\n");
    } else {
        // runc 1.1.5 ignores domainname.
        assert!(o.stdout.starts_with("usr-host\n"), "{o:?}");
    }
}

// Found by the scripts/difftest.sh soak: a user namespace without its own
// network namespace (sysfs falls back to a bind of the host's /sys), a
// shared rootfs propagation and a cgroup mount: the cgroup tmpfs
// propagated over the namespace's own /sys/fs/cgroup and hid the host
// hierarchies still to bind (ENOENT). crun runs it; runc 1.1.5 fails to
// mount sysfs there.
#[test]
fn userns_without_netns_mounts_cgroups_under_a_shared_rootfs() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.namespace(json!({"type": "user"}));
    b.edit(|c| {
        let maps = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["uidMappings"] = maps.clone();
        c["linux"]["gidMappings"] = maps;
        c["linux"]["rootfsPropagation"] = json!("rshared");
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "network");
    });
    let o = rt.sh(&b, "ls /sys/fs/cgroup/memory/memory.limit_in_bytes && grep -c ' /sys/fs/cgroup/' /proc/self/mountinfo");
    if !crate::is_skiff() {
        return; // runc 1.1.5: mount sysfs EPERM (see above)
    }
    let o = o.check("run");
    let l: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(l[0], "/sys/fs/cgroup/memory/memory.limit_in_bytes", "{o:?}");
    assert!(l[1].parse::<u32>().unwrap() >= 2, "{o:?}");
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

/// A host dir with a file owned on disk by 1000:1000, idmapped into `b`.
/// As in the kernel and runc 1.2, `containerID` is the id on disk and
/// `hostID` the id it shows as outside any user namespace.
pub fn idmapped_source(b: &Bundle, host_id: u32, opt: &str) -> crate::TempDir {
    // Made here: root of a user namespace may not create it in a rootfs host root owns.
    std::fs::create_dir_all(b.rootfs().join("mnt")).unwrap();
    let src = crate::TempDir::new("idmap-src");
    std::fs::write(src.path().join("f"), "x").unwrap();
    chown(src.path().join("f"), Some(1000), Some(1000)).unwrap();
    let map = json!([{"containerID": 1000, "hostID": host_id, "size": 1}]);
    b.mount(
        json!({"destination": "/mnt", "type": "bind", "source": src.path(),
                   "options": ["rbind", opt], "uidMappings": map, "gidMappings": map}),
    );
    src
}

#[test]
fn idmapped_mount_without_a_user_namespace() {
    require_root!();
    // runc 1.1.5 has no idmapped mounts (runc 1.2 added them).
    if !crate::is_skiff() {
        crate::skip!("runc 1.1.5 does not support idmapped mounts");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    let src = idmapped_source(&b, 0, "ridmap");
    let o = rt.sh(&b, "stat -c '%u %g' /mnt/f").check("run");
    assert_eq!(o.stdout.trim(), "0 0");
    // The host's view of the source is untouched.
    let host = std::fs::metadata(src.path().join("f")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&host), 1000);
}

#[test]
fn idmapped_mount_in_a_user_namespace() {
    require_root!();
    // runc 1.1.5 has no idmapped mounts (runc 1.2 added them).
    if !crate::is_skiff() {
        crate::skip!("runc 1.1.5 does not support idmapped mounts");
    }
    let rt = Rt::new();
    let b = userns_bundle(json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    let _src = idmapped_source(&b, 100000, "idmap");
    let o = rt
        .sh(&b, "stat -c '%u %g' /mnt/f; echo y > /mnt/f && cat /mnt/f")
        .check("run");
    assert_eq!(
        o.stdout, "0 0\ny\n",
        "container root owns the file through the idmap"
    );
}

/// A bind source below a 0700 host directory: the container's root (host
/// uid 100000) cannot search it, so the runtime opens the source on the
/// host side and mounts it by fd inside (runc does the same).
#[test]
fn userns_bind_source_below_a_private_host_dir() {
    require_root!();
    use std::os::unix::fs::PermissionsExt;
    let rt = Rt::new();
    let b = userns_bundle(json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    let private = crate::TempDir::new("private");
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let src = private.path().join("data");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), "secret-ok").unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(src.join("f"), std::fs::Permissions::from_mode(0o644)).unwrap();
    // Mountpoints made here: the rootfs is root's, not the container's.
    std::fs::create_dir(b.rootfs().join("data")).unwrap();
    std::fs::write(b.rootfs().join("file"), "").unwrap();
    b.mount(
        json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "ro"]}),
    );
    b.mount(json!({"destination": "/file", "type": "bind", "source": src.join("f"), "options": ["bind"]}));
    let o = rt.sh(&b, "cat /data/f; echo; cat /file").check("run");
    assert_eq!(o.stdout, "secret-ok\nsecret-ok", "{o:?}");
}
