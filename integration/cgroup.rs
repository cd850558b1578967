//! Cgroups (v1 and hybrid hosts, and v2): placement, limits, removal.
use crate::{Bundle, Rt, poll, require_root};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};

/// Where `controller`'s hierarchy is mounted: v1 `/sys/fs/cgroup/<c>`, or
/// the v2 unified root.
pub fn hierarchy(controller: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup").join(controller);
    if v1.join("cgroup.procs").exists() {
        v1
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

/// The cgroup path of `pid` for `controller` (v1 line naming it, else v2 `0::`).
pub fn cgroup_of(pid: i32, controller: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let v1 = text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        ctrls
            .split(',')
            .any(|c| c == controller)
            .then(|| path.to_string())
    });
    v1.or_else(|| {
        text.lines()
            .find_map(|l| l.strip_prefix("0::").map(String::from))
    })
}

/// A cgroupsPath unique to this test run, one level below the root.
pub fn unique_cgroup(id: &str) -> String {
    format!("/{id}-cg")
}

/// True when any controller still has a directory for `cg`.
pub fn cgroup_dirs_left(cg: &str) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for e in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let d = e.path().join(cg.trim_start_matches('/'));
        if d.exists() {
            left.push(d);
        }
    }
    let v2 = Path::new("/sys/fs/cgroup").join(cg.trim_start_matches('/'));
    if v2.exists() && !left.contains(&v2) {
        left.push(v2);
    }
    left
}

#[test]
fn init_is_in_cgroups_path_and_removed_on_delete() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = rt.id("cg");
    let cg = unique_cgroup(&id);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(cg));
    rt.create(&b, &id, &[]).check("create");
    let pid = rt.pid(&id);
    for ctrl in ["memory", "pids", "cpu", "devices", "freezer"] {
        assert_eq!(
            cgroup_of(pid, ctrl).as_deref(),
            Some(cg.as_str()),
            "{ctrl}: {}",
            fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap()
        );
    }
    let procs = fs::read_to_string(
        hierarchy("pids")
            .join(cg.trim_start_matches('/'))
            .join("cgroup.procs"),
    )
    .unwrap();
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "init {pid} not in cgroup.procs: {procs}"
    );
    rt.out(&["start", &id]).check("start");
    rt.out(&["delete", "--force", &id]).check("delete --force");
    assert!(
        poll(10, || cgroup_dirs_left(&cg).is_empty()),
        "cgroup dirs left: {:?}",
        cgroup_dirs_left(&cg)
    );
}

#[test]
fn run_removes_its_cgroup() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.id("cgrun");
    let cg = unique_cgroup(&id);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(cg));
    b.args(&["sh", "-c", "cat /proc/self/cgroup"]);
    let o = rt.run(&b, &id, &[]).check("run");
    // The default spec has no cgroup namespace, so the full path shows.
    assert!(
        o.stdout.lines().any(|l| l.ends_with(&format!(":{cg}"))),
        "{}",
        o.stdout
    );
    assert!(
        cgroup_dirs_left(&cg).is_empty(),
        "cgroup dirs left: {:?}",
        cgroup_dirs_left(&cg)
    );
}

#[test]
fn resource_limits_are_written() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = rt.id("limits");
    let cg = unique_cgroup(&id);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(cg);
        c["linux"]["resources"]["pids"] = json!({"limit": 42});
        c["linux"]["resources"]["memory"] = json!({"limit": 64 * 1024 * 1024});
        c["linux"]["resources"]["cpu"] = json!({"shares": 512});
    });
    rt.create(&b, &id, &[]).check("create");
    let rel = cg.trim_start_matches('/');
    let read = |ctrl: &str, file: &str| {
        fs::read_to_string(hierarchy(ctrl).join(rel).join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("pids", "pids.max"), "42");
    if hierarchy("memory").ends_with("memory") {
        assert_eq!(
            read("memory", "memory.limit_in_bytes"),
            (64 * 1024 * 1024).to_string()
        );
        assert_eq!(read("cpu", "cpu.shares"), "512");
    } else {
        assert_eq!(read("memory", "memory.max"), (64 * 1024 * 1024).to_string());
    }
}

#[test]
fn pids_limit_is_enforced() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.id("pidslimit");
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(unique_cgroup(&id));
        c["linux"]["resources"]["pids"] = json!({"limit": 3});
    });
    // sh + 2 sleeps fill the limit; the third fork must fail.
    b.args(&["sh", "-c", "sleep 100 & sleep 100 & sleep 100; echo rc=$?"]);
    let o = rt.run(&b, &id, &[]);
    assert!(
        o.stderr.contains("fork") || o.stderr.contains("esource"),
        "third fork was not refused: {o:?}"
    );
}

#[test]
fn cgroup_namespace_hides_path() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.id("cgns");
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(unique_cgroup(&id)));
    b.namespace(json!({"type": "cgroup"}));
    b.args(&["sh", "-c", "grep -E ':(pids|memory):' /proc/self/cgroup"]);
    let o = rt.run(&b, &id, &[]).check("run");
    for l in o.stdout.lines() {
        assert!(
            l.ends_with(":/"),
            "cgroup namespace root is not the container's cgroup: {l}"
        );
    }
}
