//! `--systemd-cgroup` on a host without systemd (this one, and most CI
//! containers): `create` and `run` fail with runc 1.1's message, exit 1,
//! and leave nothing (state, cgroup, process); other commands ignore the
//! flag, as in runc (a container's driver is in its state). The driver itself is tested for real in the
//! Debian VM (scripts/vm/debian-checks/20-systemd.sh) and by unit tests.
use crate::cgroup::cgroup_dirs_left;
use crate::{Bundle, Rt, require_root, skip};
use serde_json::json;
use std::path::Path;

const RUNC_WORDS: &str = "systemd not running on this host, cannot use systemd cgroups manager";

fn systemd_booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

#[test]
fn systemd_cgroup_fails_cleanly_without_systemd() {
    require_root!();
    if systemd_booted() {
        skip!("systemd runs on this host: the driver is tested in the Debian VM");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["sleep", "1000"]);
    for cmd in ["create", "run"] {
        let id = rt.id(&format!("sd-{cmd}"));
        b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("system.slice:skiff:{id}")));
        let mut c = rt.cmd();
        c.args(["--systemd-cgroup", cmd, "--bundle"])
            .arg(b.path())
            .arg(&id);
        if cmd == "run" {
            c.arg("--detach");
        }
        let o = rt.detached(c, &format!("sd-{cmd}"));
        assert_eq!(o.code, Some(1), "{cmd}: {o:?}");
        let err = o.stderr.trim();
        assert_eq!(err.lines().count(), 1, "{cmd}: one line: {err}");
        assert!(err.contains(RUNC_WORDS), "{cmd}: {err}");
        assert!(!rt.root.path().join(&id).exists(), "{cmd}: state dir left");
        assert!(rt.state(&id).is_none(), "{cmd}: state works");
        for cg in [
            format!("system.slice/skiff-{id}.scope"),
            format!("system.slice:skiff:{id}"),
            id.clone(),
        ] {
            let left = cgroup_dirs_left(&cg);
            assert!(left.is_empty(), "{cmd}: cgroup left: {left:?}");
        }
        let procs = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("cgroup")).is_ok_and(|t| t.contains(&id))
            })
            .count();
        assert_eq!(procs, 0, "{cmd}: processes left in a cgroup named for {id}");
    }
    // Other commands take the flag and go on (runc 1.1 does too).
    let o = rt.out(&["--systemd-cgroup", "list", "-q"]);
    assert!(o.ok() && o.stdout.trim().is_empty(), "list: {o:?}");
    let o = rt.out(&["--systemd-cgroup", "state", "nosuch"]);
    assert_eq!(o.code, Some(1), "state: {o:?}");
    assert!(!o.stderr.contains(RUNC_WORDS), "state: {o:?}");
    // The same bundle runs without the flag (the path is then a plain
    // relative cgroup path): the failure was the driver's, not the config's.
    let id = rt.id("sd-fs");
    b.args(&["true"]);
    let o = rt.run(&b, &id, &[]);
    assert!(o.ok(), "without the flag: {o:?}");
}
