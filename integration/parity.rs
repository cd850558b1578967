//! runc parity: behaviour that scripts and engines depend on (issue
//! "runc parity"). Each test passes against runc 1.1.5 too, except where
//! gated on `is_skiff()` with the reason.
use crate::cgroup::cgroup_dirs_left;
use crate::*;

/// A cgroupsPath naming a cgroup that is already frozen: init would
/// block in state D as it joins and create would never return. Refused
/// at once, and nothing of ours is left (the frozen cgroup, made by the
/// caller, stays).
#[test]
fn frozen_cgroup_is_refused() {
    require_root!();
    let freezer = Path::new("/sys/fs/cgroup/freezer");
    if !freezer.join("cgroup.procs").exists() {
        skip!("no v1 freezer hierarchy on this host (the v2 case runs in scripts/vm)");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.id("frozen");
    let cg = format!("/{id}-cg");
    let dir = freezer.join(cg.trim_start_matches('/'));
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("freezer.state"), "FROZEN").unwrap();
    b.args(&["true"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(cg));
    let o = rt.create(&b, &id, &[]);
    let state_left = rt.root.path().join(&id).exists();
    let left: Vec<_> = cgroup_dirs_left(&cg)
        .into_iter()
        .filter(|d| *d != dir)
        .collect();
    fs::write(dir.join("freezer.state"), "THAWED").unwrap();
    let _ = rt.out(&["delete", "--force", &id]);
    let _ = fs::remove_dir(&dir);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.contains("unexpectedly frozen"), "{o:?}");
    assert!(!state_left, "state dir left");
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

/// Device access letters in any order, repeated, or with letters other
/// than r, w, m (ignored): runc accepts them all.
#[test]
fn device_access_in_any_order() {
    require_root!();
    if !Path::new("/sys/fs/cgroup/devices/devices.list").exists() {
        skip!(
            "no v1 devices hierarchy on this host (v2 device rules are eBPF, checked in scripts/vm)"
        );
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        let d = c["linux"]["resources"]["devices"].as_array_mut().unwrap();
        d.push(json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwa"}));
        d.push(json!({"allow": true, "type": "c", "major": 1, "minor": 12, "access": "mrrw"}));
    });
    let o = rt
        .sh(&b, "cat /sys/fs/cgroup/devices/devices.list")
        .check("run");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert!(lines.contains(&"c 1:11 rw"), "{o:?}");
    assert!(lines.contains(&"c 1:12 rwm"), "{o:?}");
}
