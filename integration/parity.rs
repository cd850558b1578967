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

/// `delete` removes the container's cgroup even where the caller made it
/// before create (runc does), and never a parent.
#[test]
fn delete_removes_a_precreated_container_cgroup() {
    require_root!();
    let memory = Path::new("/sys/fs/cgroup/memory");
    let base = if memory.join("cgroup.procs").exists() {
        memory.to_path_buf()
    } else {
        PathBuf::from("/sys/fs/cgroup")
    };
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.id("precg");
    let parent = format!("{id}-parent");
    let cg = format!("/{parent}/c");
    let dir = base.join(cg.trim_start_matches('/'));
    fs::create_dir_all(&dir).unwrap();
    b.args(&["sleep", "1000"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(cg));
    rt.run_detached(&b, &id, &[]).check("run --detach");
    rt.out(&["delete", "--force", &id]).check("delete --force");
    let left = cgroup_dirs_left(&cg);
    let parent_kept = base.join(&parent).exists();
    for e in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = fs::remove_dir(e.path().join(cg.trim_start_matches('/')));
        let _ = fs::remove_dir(e.path().join(&parent));
    }
    let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(&parent));
    assert!(
        left.is_empty(),
        "container cgroup left after delete: {left:?}"
    );
    assert!(parent_kept, "delete removed a parent it did not make");
}

/// A cgroupsPath that already holds processes: create warns (they share
/// the container's limits), as runc does, and goes on.
#[test]
fn occupied_cgroup_gets_a_warning() {
    require_root!();
    if !is_skiff() {
        skip!("runc 1.1.5 warns only under the systemd driver (checked: no warning with cgroupfs)");
    }
    let pids = Path::new("/sys/fs/cgroup/pids");
    if !pids.join("cgroup.procs").exists() {
        skip!("no v1 pids hierarchy on this host");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.id("busy");
    let cg = format!("/{id}-cg");
    let dir = pids.join(cg.trim_start_matches('/'));
    fs::create_dir(&dir).unwrap();
    let mut sleeper = Command::new("sleep").arg("100").spawn().unwrap();
    fs::write(dir.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    b.args(&["sleep", "1000"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(cg));
    let o = rt.create(&b, &id, &[]);
    // Out again before delete, which kills what is in the cgroup.
    fs::write("/sys/fs/cgroup/pids/cgroup.procs", sleeper.id().to_string()).unwrap();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let _ = rt.out(&["delete", "--force", &id]);
    let _ = fs::remove_dir(&dir);
    let o = o.check("create in an occupied cgroup");
    assert!(
        o.stderr
            .contains("container's cgroup is not empty: 1 process(es) found"),
        "{o:?}"
    );
}

/// `unified` resources on a cgroup v1 host: refused as runc words it.
#[test]
fn unified_on_v1_is_an_invalid_configuration() {
    require_root!();
    if !Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists() {
        skip!("this host is not cgroup v1");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["unified"] = json!({"memory.max": "1000000"}));
    let o = crate::failures::failed_create(&rt, &b, "unified");
    assert!(
        o.stderr
            .contains("invalid configuration: cannot use unified on cgroup v1"),
        "{o:?}"
    );
}

/// --no-pivot: the host's full procfs must not stay reachable, or a new
/// user namespace inside may mount a fresh, unmasked procfs (the kernel
/// allows that only where a full one is visible). runc detaches them.
#[test]
fn no_pivot_leaves_no_full_procfs_to_remount() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    // Mapping uid 0 into a new user namespace takes CAP_SETFCAP (Linux 5.12).
    b.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SETFCAP"));
        }
    });
    b.args(&[
        "sh",
        "-c",
        "unshare -mrpf sh -c 'mount -t proc proc /proc && echo mounted || echo refused' 2>&1",
    ]);
    let id = rt.id("nopivot");
    let o = rt.run(&b, &id, &["--no-pivot"]).check("run --no-pivot");
    assert!(
        o.stdout.contains("refused"),
        "a fresh procfs could be mounted: {o:?}"
    );
    assert!(!o.stdout.contains("mounted"), "{o:?}");
}
