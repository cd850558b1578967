//! linux.seccomp: Docker's default profile, actions, errno values,
//! argument rules, the notify agent hand-over, profile errors.
use crate::{Bundle, Rt, TempDir, is_skiff, require_root, skip};
use serde_json::{Value, json};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

fn docker_profile() -> Value {
    serde_json::from_str(include_str!("fixtures/docker-default-seccomp.json")).unwrap()
}

/// A bundle with `profile` as linux.seccomp, CAP_SYS_ADMIN in every set (so
/// that only the filter can refuse mount and unshare) and the given NNP.
fn bundle(profile: Value, nnp: bool) -> Bundle {
    let b = Bundle::new();
    b.edit(|c| {
        c["linux"]["seccomp"] = profile;
        c["process"]["noNewPrivileges"] = json!(nnp);
        c["root"]["readonly"] = json!(false);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
        }
    });
    b
}

fn allow_all_but(rules: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
}

#[test]
fn docker_profile_runs_busybox_with_and_without_nnp() {
    require_root!();
    let rt = Rt::new();
    for nnp in [true, false] {
        let b = bundle(docker_profile(), nnp);
        let o = rt
            .sh(&b, "echo ok; ls /")
            .check("run under docker's profile");
        assert!(o.stdout.starts_with("ok\n"), "{o:?}");
        assert!(o.stdout.contains("proc"), "{o:?}");
    }
}

#[test]
fn docker_profile_denies_mount_and_unshare() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(docker_profile(), true);
    let o = rt.sh(&b, "mount -t tmpfs t /tmp; unshare -m true; echo end");
    assert!(o.ok(), "{o:?}");
    assert_eq!(o.stdout, "end\n");
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{o:?}");
    // busybox mount words EPERM as "permission denied (are you root?)".
    assert!(lines[0].starts_with("mount: permission denied"), "{o:?}");
    assert!(lines[1].ends_with("Operation not permitted"), "{o:?}");
    // The same script without a profile: both calls work (CAP_SYS_ADMIN).
    b.edit(|c| {
        c["linux"]
            .as_object_mut()
            .unwrap()
            .remove("seccomp")
            .map(|_| ())
            .unwrap()
    });
    let o = rt.sh(&b, "mount -t tmpfs t /tmp && unshare -m true && echo end");
    assert_eq!(o.check("run without seccomp").stdout, "end\n");
}

/// With noNewPrivileges the filter goes in last: after it, init only
/// writes Done, closes the sync socket, reads the exec fifo and execs (fds
/// are marked CLOEXEC before the filter). A deny-by-default profile needs nothing else beyond
/// what the program itself (static busybox `echo`) calls.
#[test]
fn nnp_filter_needs_only_the_last_setup_calls() {
    require_root!();
    if !is_skiff() {
        skip!("runc's Go init makes many more calls after loading the filter");
    }
    let rt = Rt::new();
    // write: the Done message; close: the sync socket (failure ignored).
    let init = ["close", "read", "execve"];
    let echo = [
        "arch_prctl",
        "brk",
        "exit_group",
        "getrandom",
        "getuid",
        "mprotect",
        "prctl",
        "prlimit64",
        "readlink",
        "rseq",
        "set_robust_list",
        "set_tid_address",
        "write",
        "mmap",
        "munmap",
    ];
    let names: Vec<&str> = init.iter().chain(echo.iter()).copied().collect();
    let b = bundle(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}),
        true,
    );
    b.args(&["echo", "minimal"]);
    let id = rt.id("minimal");
    assert_eq!(rt.run(&b, &id, &[]).check("run").stdout, "minimal\n");
}

/// A deny-by-default profile allowing every call of Docker's list but
/// those in `without`.
fn allow_list_without(without: &[&str]) -> Value {
    let names: Vec<Value> = docker_profile()["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["names"].as_array().unwrap().clone())
        .filter(|n| !without.contains(&n.as_str().unwrap()))
        .collect();
    json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]})
}

/// Profiles written before close_range (Linux 5.9) do not list it: the
/// runtime may not need it (nor fcntl, nor any other way of closing fds)
/// once the filter is in. Checked for init, with and without NNP (the
/// filter goes in at two points) and for exec.
#[test]
fn allow_list_without_close_range_runs_the_entrypoint() {
    require_root!();
    let rt = Rt::new();
    let mut profiles = vec![("no close_range", allow_list_without(&["close_range"]))];
    if is_skiff() {
        // runc 1.1.5 walks /proc/self/fd with fcntl after the filter
        // (without NNP) and opens the exec fifo after it (with NNP).
        let fallbacks = [
            "close_range",
            "fcntl",
            "close",
            "getdents64",
            "getdents",
            "openat",
            "open",
        ];
        profiles.push(("no fd calls", allow_list_without(&fallbacks)));
    }
    for (what, profile) in profiles {
        for nnp in [true, false] {
            let b = bundle(profile.clone(), nnp);
            b.args(&["echo", "entrypoint-ran"]);
            let id = rt.id("noclose");
            let o = rt.run(&b, &id, &[]);
            assert_eq!(o.stdout, "entrypoint-ran\n", "{what}, nnp={nnp}: {o:?}");
            assert!(o.ok(), "{what}, nnp={nnp}: {o:?}");
            // exec into a running container under the same profile.
            let id = rt.sleeper(&b);
            let o = rt.out(&["exec", &id, "echo", "exec-ran"]);
            assert_eq!(o.stdout, "exec-ran\n", "exec, {what}, nnp={nnp}: {o:?}");
            assert!(o.ok(), "exec, {what}, nnp={nnp}: {o:?}");
            rt.out(&["delete", "--force", &id]).check("delete --force");
        }
    }
    if is_skiff() {
        // Nor read or write: init falls back to readv/sendto for the
        // exec fifo and its last message. The exit status is the proof
        // that the entrypoint ran.
        let profile = allow_list_without(&["close_range", "fcntl", "close", "read", "write"]);
        for nnp in [true, false] {
            let b = bundle(profile.clone(), nnp);
            b.args(&["sh", "-c", "exit 42"]);
            let id = rt.id("noread");
            let o = rt.run(&b, &id, &[]);
            assert_eq!(o.code, Some(42), "no read/write, nnp={nnp}: {o:?}");
            let id = rt.id("noread");
            rt.create(&b, &id, &[]).check("create");
            rt.out(&["start", &id]).check("start");
            rt.wait_status(&id, "stopped");
            let id = rt.sleeper(&b);
            let o = rt.out(&["exec", &id, "sh", "-c", "exit 42"]);
            assert_eq!(o.code, Some(42), "exec, no read/write, nnp={nnp}: {o:?}");
            rt.out(&["delete", "--force", &id]).check("delete --force");
        }
    }
}

#[test]
fn kill_actions_end_the_process_with_sigsys() {
    require_root!();
    let rt = Rt::new();
    for act in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
    ] {
        let b = bundle(
            allow_all_but(json!([{"names": ["mkdir"], "action": act}])),
            true,
        );
        b.args(&["mkdir", "/tmp/x"]);
        let id = rt.id("kill");
        let o = rt.run(&b, &id, &[]);
        assert_eq!(o.code, Some(128 + libc::SIGSYS), "{act}: {o:?}");
    }
}

#[test]
fn errno_actions_return_the_chosen_errno() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(
        allow_all_but(json!([
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENAMETOOLONG},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}
        ])),
        false,
    );
    let o = rt.sh(&b, "mkdir /tmp/x; rmdir /tmp; echo end").check("run");
    assert_eq!(o.stdout, "end\n");
    assert!(o.stderr.contains("File name too long"), "{o:?}");
    assert!(o.stderr.contains("Operation not permitted"), "{o:?}");
}

// Found by scripts/difftest.sh: an allow-list older than close_range
// (Linux 5.9) refuses it with its default errno; runc and crun run such
// profiles, and the runtime's own fds must still not reach the process.
#[test]
fn a_profile_refusing_close_range_still_runs_with_only_stdio() {
    require_root!();
    let rt = Rt::new();
    // A kill action too: init must not make the call at all (it used to die
    // of SIGSYS before the exec, with no message).
    let errno =
        |e: i32| json!({"names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": e});
    let kill = json!({"names": ["close_range"], "action": "SCMP_ACT_KILL_PROCESS"});
    for (nnp, rule) in [
        (false, errno(libc::ENOSYS)),
        (true, errno(libc::EPERM)),
        (false, kill.clone()),
        (true, kill),
    ] {
        let b = bundle(allow_all_but(json!([rule])), nnp);
        let o = rt.sh(&b, "ls /proc/self/fd").check("run");
        // 3 is ls's own directory fd.
        assert_eq!(o.stdout, "0\n1\n2\n3\n", "nnp={nnp} {rule}: {o:?}");
    }
}

#[test]
fn log_action_lets_the_call_through() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(
        allow_all_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}])),
        true,
    );
    if is_skiff() {
        // runc 1.1.5 refuses any seccomp flags ("not yet supported").
        b.edit(|c| c["linux"]["seccomp"]["flags"] = json!(["SECCOMP_FILTER_FLAG_LOG"]));
    }
    let o = rt.sh(&b, "mkdir /tmp/logged && echo made");
    // The audit record (type=1326) goes to the kernel log or auditd, which
    // a test cannot rely on reading; the call itself must succeed.
    assert_eq!(o.check("run").stdout, "made\n");
}

#[test]
fn argument_rules_match_only_their_values() {
    require_root!();
    let rt = Rt::new();
    // busybox linux32 calls personality(PER_LINUX32 = 8).
    let deny = |v: u64| {
        allow_all_but(
            json!([{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]}]),
        )
    };
    let b = bundle(deny(8), true);
    let o = rt.sh(&b, "linux32 uname -m; echo end");
    assert_eq!(o.stdout, "end\n", "{o:?}");
    assert!(o.stderr.contains("Operation not permitted"), "{o:?}");
    let b = bundle(deny(0xffff_ffff), true);
    let o = rt.sh(&b, "linux32 uname -m").check("run");
    assert_eq!(o.stdout, "i686\n");
}

#[test]
fn profile_errors_fail_create() {
    require_root!();
    let rt = Rt::new();
    let b = bundle(
        allow_all_but(json!([{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}])),
        true,
    );
    let id = rt.id("bad-profile");
    let o = rt.create(&b, &id, &[]);
    assert_eq!(o.code, Some(1), "{o:?}");
    if is_skiff() {
        // runc words it differently; skiff names the field.
        assert!(
            o.stderr.contains("linux.seccomp.syscalls[0].args[0].index"),
            "{o:?}"
        );
    }
}

/// What the test agent saw: the state message and the calls it answered.
pub type AgentLog = (Value, Vec<i32>);

/// A seccomp agent: receives the listener from the runtime, then answers
/// every notification (mkdir → ENAMETOOLONG, anything else → success
/// without running it) until the container is gone.
pub fn agent(sock: UnixListener, containers: usize) -> std::thread::JoinHandle<Vec<AgentLog>> {
    std::thread::spawn(move || (0..containers).map(|_| serve(&sock)).collect())
}

fn serve(sock: &UnixListener) -> AgentLog {
    {
        let (conn, _) = sock.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(v) = c {
                // SAFETY: SCM_RIGHTS gave us this fd.
                fd = Some(unsafe { OwnedFd::from_raw_fd(v[0]) });
            }
        }
        let n = msg.bytes;
        let state: Value = serde_json::from_slice(&buf[..n]).unwrap();
        let fd = fd.expect("no listener fd");
        (state, answer(&fd))
    }
}

#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct Resp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const NOTIF_RECV: libc::c_ulong = 0xc050_2100; // _IOWR('!', 0, struct seccomp_notif)
const NOTIF_SEND: libc::c_ulong = 0xc018_2101; // _IOWR('!', 1, struct seccomp_notif_resp)

fn answer(fd: &OwnedFd) -> Vec<i32> {
    let mut seen = Vec::new();
    loop {
        let mut n = Notif::default();
        // SAFETY: NOTIF_RECV fills a zeroed struct seccomp_notif of this layout.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV as _, &mut n as *mut Notif) } != 0 {
            // ENOENT: no task is left under the filter.
            return seen;
        }
        seen.push(n.nr);
        let error = if n.nr == libc::SYS_mkdir as i32 {
            -libc::ENAMETOOLONG
        } else {
            0
        };
        let mut r = Resp {
            id: n.id,
            val: 0,
            error,
            flags: 0,
        };
        // SAFETY: NOTIF_SEND reads a struct seccomp_notif_resp of this layout.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND as _, &mut r as *mut Resp) };
    }
}

#[test]
fn notify_hands_the_listener_to_the_agent() {
    require_root!();
    let rt = Rt::new();
    let dir = TempDir::new("agent");
    let path = dir.path().join("agent.sock");
    let handle = agent(UnixListener::bind(&path).unwrap(), 2);
    let mut profile = allow_all_but(json!([
        {"names": ["mkdir", "rmdir"], "action": "SCMP_ACT_NOTIFY"}
    ]));
    profile["listenerPath"] = json!(path);
    profile["listenerMetadata"] = json!("test-metadata");
    // Without NNP the filter (and the hand-over) come before the caps switch.
    for nnp in [true, false] {
        let b = bundle(profile.clone(), nnp);
        let o = rt.sh(&b, "mkdir /tmp/x; rmdir /no/such/dir && echo rmdir-ok");
        let o = o.check("run with an agent");
        assert_eq!(o.stdout, "rmdir-ok\n");
        assert!(o.stderr.contains("File name too long"), "{o:?}");
    }
    for (state, seen) in handle.join().unwrap() {
        check_agent_log(&state, &seen);
    }
}

fn check_agent_log(state: &Value, seen: &[i32]) {
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "test-metadata", "{state}");
    assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
    assert_eq!(state["pid"], state["state"]["pid"], "{state}");
    assert_eq!(seen, [libc::SYS_mkdir as i32, libc::SYS_rmdir as i32]);
}

/// NOTIFY on `write` is refused before anything exists (runc too: the
/// runtime's own code may write once the filter is in place); with no
/// agent at listenerPath, the error says so and names the path.
#[test]
fn notify_on_write_and_a_missing_agent_are_clear_errors() {
    require_root!();
    let rt = Rt::new();
    let dir = TempDir::new("noagent");
    let path = dir.path().join("nobody.sock");
    let mut profile = allow_all_but(json!([
        {"names": ["write"], "action": "SCMP_ACT_NOTIFY"}
    ]));
    profile["listenerPath"] = json!(path);
    let b = bundle(profile, true);
    b.args(&["true"]);
    let o = crate::failures::failed_create(&rt, &b, "notifywrite");
    assert!(
        o.stderr.contains("write") && o.stderr.to_lowercase().contains("notify"),
        "{o:?}"
    );
    let mut profile = allow_all_but(json!([
        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}
    ]));
    profile["listenerPath"] = json!(path);
    let b = bundle(profile, true);
    b.args(&["true"]);
    let o = crate::failures::failed_create(&rt, &b, "noagent");
    assert!(
        o.stderr.contains("failed to connect with seccomp agent"),
        "{o:?}"
    );
    assert!(o.stderr.contains(path.to_str().unwrap()), "{o:?}");
}

/// A defaultAction that kills init as soon as its filter is loaded fails
/// create, with an error that says the seccomp profile killed init (it said
/// only "container init exited during setup"), and leaves nothing behind.
#[test]
fn profile_that_kills_init_is_named() {
    require_root!();
    let rt = Rt::new();
    for (action, stage1) in [
        ("SCMP_ACT_KILL_PROCESS", false),
        ("SCMP_ACT_KILL", false),
        // Joining a namespace makes init a grandchild (stage-1 forks it).
        ("SCMP_ACT_KILL_PROCESS", true),
    ] {
        // runc 1.1.5 hangs when SCMP_ACT_KILL kills one thread of its
        // multi-threaded (Go) init; skiff's init is single-threaded.
        if action == "SCMP_ACT_KILL" && !is_skiff() {
            continue;
        }
        let b = bundle(json!({"defaultAction": action}), false);
        b.args(&["true"]);
        if stage1 {
            let net = format!("/proc/{}/ns/net", std::process::id());
            b.namespace(json!({"type": "network", "path": net}));
        }
        let id = rt.id("seckill");
        // Foreground run: the runtime is a subreaper, init ends as its child.
        let o = rt.run(&b, &id, &[]);
        assert_eq!(o.code, Some(1), "{action} stage1={stage1}: {o:?}");
        assert!(rt.state(&id).is_none(), "{action}: state left");
        assert!(!rt.root.path().join(&id).exists(), "{action}: dir left");
        if is_skiff() {
            assert!(
                o.stderr
                    .contains("killed by its seccomp profile (linux.seccomp)"),
                "{action} stage1={stage1}: {o:?}"
            );
        }
    }
    // create (not a subreaper), direct clone: init is the runtime's child.
    // runc 1.1.5 loads the filter only once `start` opened the exec fifo,
    // so its create succeeds; skiff loads it during create, as it may.
    if !is_skiff() {
        return;
    }
    let b = bundle(json!({"defaultAction": "SCMP_ACT_KILL_PROCESS"}), false);
    b.args(&["true"]);
    let id = rt.id("seckill");
    let o = rt.create(&b, &id, &[]);
    assert_eq!(o.code, Some(1), "create: {o:?}");
    assert!(!rt.root.path().join(&id).exists(), "create: dir left");
    if is_skiff() {
        assert!(o.stderr.contains("seccomp profile"), "create: {o:?}");
    }
}
