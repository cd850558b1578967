//! Rootless: the runtime run by an unprivileged user (created once, with
//! subordinate id ranges), on a `spec --rootless` bundle, through
//! `setpriv`. Checks what the container sees, the state dir, the cgroup
//! rules (skipped without permission unless limits are asked for) and
//! that nothing is left after delete.
use crate::{Bundle, Out, TempDir, is_skiff, output, poll, require_root, runtime, skip};
use serde_json::json;
use std::os::unix::fs::chown;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const USER: &str = "skiff-rootless";

/// (uid, gid, first subordinate uid) of the test user, made once.
pub(crate) fn user() -> Option<(u32, u32, u32)> {
    static U: OnceLock<Option<(u32, u32, u32)>> = OnceLock::new();
    *U.get_or_init(|| {
        let have = |c: &str| {
            Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .output()
        };
        if ["setpriv", "useradd", "newuidmap"]
            .iter()
            .any(|c| !have(c).is_ok_and(|o| o.status.success()))
        {
            return None;
        }
        // Exit 9: it exists already (a previous run); idempotent on purpose.
        let _ = Command::new("useradd")
            .args(["-M", "-s", "/usr/sbin/nologin", USER])
            .output();
        let id = |f: &str| -> Option<u32> {
            let o = Command::new("id").args([f, USER]).output().ok()?;
            String::from_utf8_lossy(&o.stdout).trim().parse().ok()
        };
        let (uid, gid) = (id("-u")?, id("-g")?);
        let sub = ensure_subids("/etc/subuid")?;
        ensure_subids("/etc/subgid")?;
        Some((uid, gid, sub))
    })
}

/// The user's first subordinate id in `file`, adding a range if it has none.
fn ensure_subids(file: &str) -> Option<u32> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let find = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix(&format!("{USER}:")))
            .and_then(|r| r.split(':').next()?.parse().ok())
    };
    if let Some(s) = find(&text) {
        return Some(s);
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .ok()?;
    std::io::Write::write_all(&mut f, format!("{USER}:300000:65536\n").as_bytes()).ok()?;
    Some(300000)
}

/// The runtime as the test user, with a clean environment.
pub(crate) fn as_user(args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", USER, "--regid", USER, "--init-groups", "--"])
        .arg(runtime())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null());
    c
}

/// A busybox bundle whose config.json comes from `spec --rootless` run as
/// the user, and a state dir the user owns.
pub(crate) fn rootless_bundle(uid: u32, gid: u32) -> (Bundle, TempDir) {
    let b = Bundle::new();
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    chown(b.path(), Some(uid), Some(gid)).unwrap();
    let p = b.path().to_str().unwrap();
    output(as_user(&["spec", "--rootless", "--bundle", p])).check("spec --rootless");
    b.edit(|c| c["process"]["terminal"] = json!(false));
    let root = TempDir::new("rootless-root");
    chown(root.path(), Some(uid), Some(gid)).unwrap();
    (b, root)
}

fn run_as_user(root: &Path, b: &Bundle, id: &str) -> Out {
    let (r, p) = (root.to_str().unwrap(), b.path().to_str().unwrap());
    output(as_user(&["--root", r, "run", "--bundle", p, id]))
}

#[test]
fn rootless_run_from_spec_rootless() {
    require_root!();
    let Some((uid, gid, _)) = user() else {
        skip!("setpriv, useradd or newuidmap missing")
    };
    let (b, root) = rootless_bundle(uid, gid);
    b.args(&[
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; hostname",
    ]);
    let o = run_as_user(root.path(), &b, "rl-run").check("rootless run");
    let l: Vec<Vec<&str>> = o
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!((l[0][0], l[1][0]), ("0", "0"));
    assert_eq!(l[2], ["0", &uid.to_string(), "1"]);
    assert_eq!(l[3], ["0", &gid.to_string(), "1"]);
    assert_eq!(l[4], [b.config()["hostname"].as_str().unwrap()]);
    let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    assert!(left.is_empty(), "run left state behind: {left:?}");
}

#[test]
fn rootless_detached_lifecycle_exec_and_delete() {
    require_root!();
    let Some((uid, gid, _)) = user() else {
        skip!("setpriv, useradd or newuidmap missing")
    };
    let (b, root) = rootless_bundle(uid, gid);
    b.args(&["sleep", "1000"]);
    let (r, p) = (root.path().to_str().unwrap(), b.path().to_str().unwrap());
    let mut c = as_user(&["--root", r, "run", "--detach", "--bundle", p, "rl-det"]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    assert!(c.status().unwrap().success(), "rootless run --detach");
    let state = || output(as_user(&["--root", r, "state", "rl-det"]));
    assert!(
        poll(10, || state().stdout.contains("\"running\"")),
        "{:?}",
        state()
    );
    let o = output(as_user(&[
        "--root",
        r,
        "exec",
        "rl-det",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]));
    let o = o.check("rootless exec");
    assert!(o.stdout.starts_with("0\n"), "{}", o.stdout);
    assert!(o.stdout.contains(&format!(" {uid} ")), "{}", o.stdout);
    output(as_user(&["--root", r, "delete", "--force", "rl-det"])).check("rootless delete");
    let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    assert!(left.is_empty(), "delete left state behind: {left:?}");
}

#[test]
fn rootless_default_root_is_under_xdg_runtime_dir() {
    require_root!();
    let Some((uid, gid, _)) = user() else {
        skip!("setpriv, useradd or newuidmap missing")
    };
    let (b, xdg) = rootless_bundle(uid, gid);
    b.args(&["true"]);
    let p = b.path().to_str().unwrap();
    let mut c = as_user(&["create", "--bundle", p, "rl-xdg"]);
    c.env("XDG_RUNTIME_DIR", xdg.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    assert!(
        c.status().unwrap().success(),
        "rootless create without --root"
    );
    // runc uses $XDG_RUNTIME_DIR/runc; skiff its own name.
    let name = if is_skiff() { "skiff" } else { "runc" };
    assert!(xdg.path().join(name).join("rl-xdg").is_dir());
    let mut d = as_user(&["delete", "--force", "rl-xdg"]);
    d.env("XDG_RUNTIME_DIR", xdg.path());
    output(d).check("delete");
}

#[test]
fn rootless_limits_without_a_delegated_cgroup_fail_clearly() {
    require_root!();
    let Some((uid, gid, _)) = user() else {
        skip!("setpriv, useradd or newuidmap missing")
    };
    let (b, root) = rootless_bundle(uid, gid);
    b.args(&["true"]);
    b.edit(|c| c["linux"]["resources"] = json!({"pids": {"limit": 10}}));
    let o = run_as_user(root.path(), &b, "rl-lim");
    assert!(!o.ok(), "limits were silently dropped: {o:?}");
    assert!(o.stderr.contains("cannot set pids limit"), "{o:?}");
    let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    assert!(left.is_empty(), "a failed run left state behind: {left:?}");
}

#[test]
fn rootless_subordinate_ranges_use_newuidmap() {
    require_root!();
    let Some((uid, gid, sub)) = user() else {
        skip!("setpriv, useradd or newuidmap missing")
    };
    let (b, root) = rootless_bundle(uid, gid);
    let map = |id: u32| {
        json!([{"containerID": 0, "hostID": id, "size": 1},
                              {"containerID": 1, "hostID": sub, "size": 1000}])
    };
    b.edit(|c| {
        c["linux"]["uidMappings"] = map(uid);
        c["linux"]["gidMappings"] = map(gid);
    });
    b.args(&["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map"]);
    let o = run_as_user(root.path(), &b, "rl-sub").check("rootless run with subordinate ids");
    let l: Vec<Vec<&str>> = o
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let sub = sub.to_string();
    assert_eq!(l[0], ["0", &uid.to_string(), "1"]);
    assert_eq!(l[1], ["1", sub.as_str(), "1000"]);
    assert_eq!(l[2], ["0", &gid.to_string(), "1"]);
    assert_eq!(l[3], ["1", sub.as_str(), "1000"]);
}
