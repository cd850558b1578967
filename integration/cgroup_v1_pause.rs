//! cgroup v1 (and hybrid) hosts: `pause`/`resume` through the freezer, and
//! what `delete --force`, `kill`, `kill --all` and `exec --ignore-paused`
//! do to a paused container, checked by a counter the container writes.
//! (Split from cgroup_v1_ops.rs.)
use crate::cgroup_v1::{host, limited};
use crate::{Bundle, Rt, TempDir, poll, require_v1};
use serde_json::json;
use std::fs;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Waits up to `secs` for the counter file to change from `from`.
fn changes(counter: &PathBuf, from: &str, secs: f64) -> bool {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        if fs::read_to_string(counter).is_ok_and(|s| s != from) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn counter_container(rt: &Rt, b: &Bundle, tag: &str) -> (String, String, TempDir) {
    let dir = TempDir::new("counter");
    b.mount(json!({"destination": "/x", "type": "bind", "source": dir.path(), "options": ["rbind", "rw"]}));
    b.args(&[
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i >/x/n.tmp; mv /x/n.tmp /x/n; usleep 20000; done",
    ]);
    let (id, cg) = limited(rt, b, tag, json!({}));
    rt.run_detached(b, &id, &[]).check("run --detach counter");
    let n = dir.path().join("n");
    assert!(poll(10, || n.exists()), "counter never started");
    (id, cg, dir)
}

#[test]
fn pause_stops_progress_and_resume_restarts_it() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let (id, cg, dir) = counter_container(&rt, &b, "pause");
    let n = dir.path().join("n");
    rt.out(&["pause", &id]).check("pause");
    assert_eq!(rt.status(&id).as_deref(), Some("paused"));
    assert_eq!(host("freezer", &cg, "freezer.state"), "FROZEN");
    let frozen = fs::read_to_string(&n).unwrap();
    // The counter ticks every 20ms: half a second without change is a stop.
    assert!(!changes(&n, &frozen, 0.5), "counter moved while paused");
    assert!(!rt.out(&["pause", &id]).ok(), "second pause must fail");
    // Limits can change while paused (runc allows it).
    rt.out(&["update", "--pids-limit", "33", &id])
        .check("update while paused");
    assert_eq!(host("pids", &cg, "pids.max"), "33");
    assert_eq!(rt.status(&id).as_deref(), Some("paused"));
    rt.out(&["resume", &id]).check("resume");
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    assert_eq!(host("freezer", &cg, "freezer.state"), "THAWED");
    assert!(
        changes(&n, &frozen, 10.0),
        "counter did not move after resume"
    );
    assert!(
        !rt.out(&["resume", &id]).ok(),
        "resume of a running container"
    );
}

#[test]
fn delete_force_of_a_paused_container() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let (id, cg, _dir) = counter_container(&rt, &b, "delpaused");
    let pid = rt.pid(&id);
    rt.out(&["pause", &id]).check("pause");
    let o = rt.out(&["delete", &id]);
    assert!(
        !o.ok(),
        "delete without --force of a paused container: {o:?}"
    );
    assert_eq!(rt.status(&id).as_deref(), Some("paused"));
    let o = rt
        .out(&["ps", "--format", "json", &id])
        .check("ps of a paused container");
    let pids: Vec<i64> = serde_json::from_str(o.stdout.trim()).unwrap();
    assert!(pids.contains(&(pid as i64)), "{pids:?} lacks init {pid}");
    rt.out(&["delete", "--force", &id])
        .check("delete --force paused");
    assert!(rt.state(&id).is_none());
    assert!(
        poll(10, || !PathBuf::from(format!("/proc/{pid}")).exists()),
        "init survived"
    );
    let left = crate::cgroup::cgroup_dirs_left(&cg);
    assert!(left.is_empty(), "cgroup dirs left: {left:?}");
    let o = rt.out(&["pause", &id]);
    assert!(!o.ok(), "pause of a deleted container: {o:?}");
}

/// `kill ID KILL` of a paused container: the signal lands (runc thaws for
/// SIGKILL; a v1-frozen task acts on no signal), the container ends up
/// stopped, and a plain `delete` removes it, its cgroup and its processes.
#[test]
fn kill_of_a_paused_container_stops_it() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let (id, cg, _dir) = counter_container(&rt, &b, "killinit");
    let pid = rt.pid(&id);
    rt.out(&["pause", &id]).check("pause");
    rt.out(&["kill", &id, "KILL"])
        .check("kill KILL of a paused container");
    rt.wait_status(&id, "stopped");
    assert!(
        poll(10, || !PathBuf::from(format!("/proc/{pid}")).exists()),
        "init survived SIGKILL"
    );
    assert_eq!(host("freezer", &cg, "freezer.state"), "THAWED");
    assert!(
        poll(10, || host("pids", &cg, "cgroup.procs").is_empty()),
        "processes left after kill KILL"
    );
    rt.out(&["delete", &id]).check("delete after kill KILL");
    assert!(rt.state(&id).is_none());
    let left = crate::cgroup::cgroup_dirs_left(&cg);
    assert!(left.is_empty(), "cgroup dirs left: {left:?}");
}

/// True if `f` becomes true within `secs`.
fn within(secs: f64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// `exec` into a paused container is refused unless `--ignore-paused`;
/// with it the process joins the container's (frozen) cgroup and runs once
/// the container is resumed, as with runc.
#[test]
fn exec_ignore_paused_runs_once_resumed() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let (id, cg, dir) = counter_container(&rt, &b, "ignpaused");
    rt.out(&["pause", &id]).check("pause");
    let o = rt.out(&["exec", &id, "true"]);
    assert!(
        o.code == Some(255) && o.stderr.contains("--ignore-paused"),
        "exec into a paused container without --ignore-paused: {o:?}"
    );
    let marker = dir.path().join("ignored");
    let mut c = rt.cmd();
    c.args(["exec", "--ignore-paused", "-d", &id, "sh", "-c"])
        .arg("cat /proc/self/cgroup > /x/cg; echo ran > /x/ignored")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    if crate::is_skiff() {
        // skiff returns at once: the process starts frozen. runc 1.1.5
        // blocks (its `runc init` froze in the cgroup) until resume.
        assert!(
            poll(10, || child.try_wait().unwrap().is_some()),
            "exec --ignore-paused -d did not return"
        );
    }
    assert!(
        !within(0.5, || marker.exists()),
        "the process ran while paused"
    );
    assert_eq!(rt.status(&id).as_deref(), Some("paused"));
    rt.out(&["resume", &id]).check("resume");
    let mut status = None;
    assert!(poll(20, || {
        status = child.try_wait().unwrap();
        status.is_some()
    }));
    assert!(status.unwrap().success(), "exec --ignore-paused failed");
    assert!(
        poll(10, || fs::read_to_string(&marker)
            .is_ok_and(|s| s == "ran\n")),
        "the exec'd process never ran"
    );
    let seen = fs::read_to_string(dir.path().join("cg")).unwrap();
    let freezer = seen.lines().find(|l| l.contains(":freezer:")).unwrap();
    assert!(
        freezer.ends_with(&cg) || freezer.ends_with(":/"),
        "exec'd process not in the container's freezer cgroup: {seen}"
    );
}

#[test]
fn kill_all_of_a_paused_container_and_pause_when_stopped() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let (id, cg, _dir) = counter_container(&rt, &b, "killpaused");
    rt.out(&["pause", &id]).check("pause");
    rt.out(&["kill", "--all", &id, "9"])
        .check("kill --all 9 of a paused container");
    rt.wait_status(&id, "stopped");
    let procs = host("pids", &cg, "cgroup.procs");
    assert!(
        poll(10, || host("pids", &cg, "cgroup.procs").is_empty()),
        "{procs}"
    );
    let o = rt.out(&["pause", &id]);
    assert!(!o.ok(), "pause of a stopped container must fail: {o:?}");
    assert_eq!(host("freezer", &cg, "freezer.state"), "THAWED");
}

/// A created (not yet started) container can be paused; resume returns it
/// to "created" (the exec fifo still exists), as runc reports it.
#[test]
fn pause_and_resume_a_created_container() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["true"]);
    let (id, cg) = limited(&rt, &b, "pausecreated", json!({}));
    rt.create(&b, &id, &[]).check("create");
    rt.out(&["pause", &id]).check("pause created");
    assert_eq!(rt.status(&id).as_deref(), Some("paused"));
    assert_eq!(host("freezer", &cg, "freezer.state"), "FROZEN");
    rt.out(&["resume", &id]).check("resume");
    assert_eq!(rt.status(&id).as_deref(), Some("created"));
    assert_eq!(host("freezer", &cg, "freezer.state"), "THAWED");
    rt.out(&["start", &id]).check("start after resume");
    rt.wait_status(&id, "stopped");
}
