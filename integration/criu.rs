//! `checkpoint` and `restore` on this host, where CRIU cannot dump (CRIU
//! 3.17 on kernel 6.x: `criu check` fails, "vdso: Unexpected rt vDSO area
//! bounds"): the failure must be one clear line quoting CRIU's own reason
//! and its log file, the container must go on untouched, and nothing must
//! be left behind. The real checkpoints run in the Debian VM
//! (scripts/vm/debian-checks/30-criu.sh). Also the refusals that need no
//! CRIU at all: a stopped or created container, an unknown id, a missing
//! image directory, bad flag values.
use crate::*;
use std::process::Command;

/// CRIU's first error on this host (from `criu check`), or None when CRIU
/// works here (then the failure path cannot be provoked: the VM checks
/// cover the working path).
fn criu_failure() -> Option<String> {
    let o = Command::new("criu")
        .arg("check")
        .output()
        .expect("criu is not installed (scripts/test.sh installs it: apt_need criu criu)");
    if o.status.success() {
        return None;
    }
    let text =
        String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    let line = text.lines().find(|l| l.contains("Error ("))?;
    let msg = line.find("): ").map_or(line, |i| &line[i + 3..]);
    Some(msg.trim().to_string())
}

/// Init's pid and start time: the same process must still be there when
/// a checkpoint fails (and `state` saying "running" means not frozen).
fn fingerprint(rt: &Rt, id: &str) -> (i32, String) {
    let pid = rt.pid(id);
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start = stat.rsplit(')').next().unwrap().split(' ').nth(20).unwrap();
    (pid, start.to_string())
}

#[test]
fn failed_checkpoint_quotes_criu_and_leaves_the_container_running() {
    require_root!();
    let Some(reason) = criu_failure() else {
        skip!("CRIU works on this host: the checkpoint paths are tested in the Debian VM");
    };
    let rt = Rt::new();
    let b = Bundle::new();
    // A counter (on /dev/shm: the rootfs is read-only): the container
    // must keep counting after the failure.
    b.args(&[
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/n; sleep 0.05; done",
    ]);
    let id = rt.id("ckpt");
    rt.run_detached(&b, &id, &[]).check("run -d");
    rt.wait_status(&id, "running");
    let before = fingerprint(&rt, &id);
    let images = rt.root.path().join("images");
    let work = rt.root.path().join("work");
    let o = rt.out(&[
        "checkpoint",
        "--image-path",
        images.to_str().unwrap(),
        "--work-path",
        work.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(o.code, Some(1), "{o:?}");
    let log = work.join("dump.log");
    assert!(log.exists(), "CRIU's log {} is missing", log.display());
    if is_skiff() {
        let err = o.err();
        assert_eq!(err.lines().count(), 1, "not one line: {o:?}");
        assert!(
            err.contains(&reason),
            "CRIU's reason {reason:?} not quoted: {err}"
        );
        assert!(
            err.contains(&format!("log: {}", log.display())),
            "log path not given: {err}"
        );
        // Nothing left behind: the image dir this checkpoint made is gone.
        assert!(!images.exists(), "{} left behind", images.display());
    }
    // Untouched: same init, not stopped, not frozen, still counting.
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    assert_eq!(fingerprint(&rt, &id).0, before.0);
    assert_eq!(fingerprint(&rt, &id).1, before.1);
    let pid = before.0;
    let count = || {
        fs::read_to_string(format!("/proc/{pid}/root/dev/shm/n"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    assert!(poll(10, || count().is_some()), "no counter file");
    let n0 = count().unwrap();
    assert!(
        poll(10, || count().is_some_and(|n| n > n0 + 2)),
        "the container stopped counting"
    );
}

/// A criu that dies before answering (here: at once, by SIGKILL) is a
/// clear error too, and changes nothing.
#[test]
fn criu_killed_is_a_clear_error() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.sleeper(&b);
    let before = fingerprint(&rt, &id);
    let fake = rt.root.path().join("criu-killed");
    fs::write(&fake, "#!/bin/sh\nkill -9 $$\n").unwrap();
    fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let images = rt.root.path().join("images");
    let o = rt.out(&[
        "--criu",
        fake.to_str().unwrap(),
        "checkpoint",
        "--image-path",
        images.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(o.code, Some(1), "{o:?}");
    if is_skiff() {
        let err = o.err();
        assert_eq!(err.lines().count(), 1, "{o:?}");
        assert!(err.contains("criu") && err.contains("SIGKILL"), "{err}");
        assert!(!images.exists(), "{} left behind", images.display());
    }
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    assert_eq!(fingerprint(&rt, &id).1, before.1);
}

#[test]
fn checkpoint_refuses_stopped_created_and_unknown_containers() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["true"]);
    let stopped = rt.id("stopped");
    rt.run_detached(&b, &stopped, &[]).check("run -d true");
    rt.wait_status(&stopped, "stopped");
    let images = rt.root.path().join("images");
    let img = images.to_str().unwrap();
    let o = rt.out(&["checkpoint", "--image-path", img, &stopped]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(
        o.err().contains("cannot be checkpointed in stopped state"),
        "{o:?}"
    );
    let created = rt.id("created");
    rt.create(&b, &created, &[]).check("create");
    let o = rt.out(&["checkpoint", "--image-path", img, &created]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(
        o.err().contains("cannot be checkpointed in created state"),
        "{o:?}"
    );
    // Refused before anything is made.
    assert_eq!(rt.status(&created).as_deref(), Some("created"));
    let o = rt.out(&["checkpoint", "--image-path", img, "no-such-ctr"]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.err().contains("does not exist"), "{o:?}");
    if is_skiff() {
        assert!(
            !images.exists(),
            "a refused checkpoint made {}",
            images.display()
        );
    }
}

#[test]
fn restore_of_a_missing_image_leaves_nothing() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.id("restore");
    let missing = rt.root.path().join("no-such-image");
    let mut c = rt.cmd();
    c.args(["restore", "--detach", "--bundle"])
        .arg(b.path())
        .arg("--image-path")
        .arg(&missing)
        .arg(&id);
    let o = rt.detached(c, "restore");
    assert_eq!(o.code, Some(1), "{o:?}");
    if is_skiff() {
        assert_eq!(o.err().lines().count(), 1, "{o:?}");
        assert!(o.err().contains(missing.to_str().unwrap()), "{o:?}");
    }
    assert_eq!(rt.state(&id), None, "restore left a container behind");
    assert!(!rt.root.path().join(&id).exists());
}

#[test]
fn bad_checkpoint_flags_are_refused() {
    if !is_skiff() {
        skip!("skiff's own messages");
    }
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.sleeper(&b);
    let images = rt.root.path().join("images");
    let img = images.to_str().unwrap();
    for (flags, want) in [
        (
            &["--manage-cgroups-mode", "props"][..],
            "manage-cgroups-mode",
        ),
        (&["--empty-ns", "ipc"][..], "--empty-ns"),
        (&["--status-fd", "1"][..], "--status-fd"),
        (&["--page-server", "nohost"][..], "--page-server"),
        (&["--parent-path", "/abs"][..], "--parent-path"),
    ] {
        let mut args = vec!["checkpoint", "--image-path", img];
        args.extend_from_slice(flags);
        args.push(&id);
        let o = rt.out(&args);
        assert_eq!(o.code, Some(1), "{flags:?}: {o:?}");
        assert!(o.err().contains(want), "{flags:?}: {o:?}");
        assert_eq!(rt.status(&id).as_deref(), Some("running"));
    }
    assert!(!images.exists() || fs::read_dir(&images).unwrap().next().is_none());
}
