//! `exec`: a new process inside a running container sees the container's
//! namespaces, cgroup and process settings, with runc's flag overrides.
use crate::*;

fn exec(rt: &Rt, args: &[&str]) -> Out {
    let mut v = vec!["exec"];
    v.extend_from_slice(args);
    rt.out(&v)
}

#[test]
fn exec_joins_namespaces_and_forwards_exit_code() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["hostname"] = serde_json::json!("exec-host"));
    let id = rt.sleeper(&b);
    let init = rt.pid(&id);
    let o = exec(
        &rt,
        &[
            &id,
            "sh",
            "-c",
            "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo pid=$$; exit 7",
        ],
    );
    assert_eq!(o.code, Some(7), "{o:?}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "exec-host");
    assert_eq!(
        lines[1].trim(),
        "sleep 1000",
        "pid 1 in the exec'd process's view is the init"
    );
    assert_ne!(lines[2], "pid=1");
    for ns in ["mnt", "pid", "net", "ipc", "uts"] {
        let o = exec(&rt, &[&id, "readlink", &format!("/proc/self/ns/{ns}")]);
        assert_eq!(
            o.stdout.trim(),
            host_ns(&init.to_string(), ns),
            "{ns} namespace differs from the init's"
        );
    }
    let cg = exec(&rt, &[&id, "cat", "/proc/self/cgroup"])
        .check("cat cgroup")
        .stdout;
    let init_cg = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    let mem = |t: &str| t.lines().find(|l| l.contains(":memory:")).map(String::from);
    assert_eq!(
        mem(&cg),
        mem(&init_cg),
        "exec'd process is not in the init's cgroup"
    );
}

/// The processes in `init`'s pid namespace, but `init`, whose command line is `cmdline`.
fn in_pid_ns_of(init: i32, cmdline: &str) -> Vec<i32> {
    let ns = host_ns(&init.to_string(), "pid");
    let pids = std::fs::read_dir("/proc").unwrap().flatten();
    pids.filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| p != init)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == cmdline.as_bytes())
        })
        .filter(|p| {
            std::fs::read_link(format!("/proc/{p}/ns/pid")).is_ok_and(|l| l.to_string_lossy() == ns)
        })
        .collect()
}

/// A foreground exec waits for its process with the host's pid namespace
/// for its own children: skiff joins the container's to clone the process
/// there, and must come back right after.
#[test]
fn foreground_exec_keeps_the_runtimes_pid_namespace_for_children() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.sleeper(&b);
    let init = rt.pid(&id);
    let mut c = rt.cmd();
    c.args(["exec", &id, "sleep", "999"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut runtime = c.spawn().expect("spawn exec");
    let mut found = Vec::new();
    let seen = poll(10, || {
        found = in_pid_ns_of(init, "sleep\0999\0");
        !found.is_empty()
    });
    let host = host_ns("self", "pid");
    let mut theirs = String::new();
    let back = poll(10, || {
        theirs = host_ns(&runtime.id().to_string(), "pid_for_children");
        theirs == host
    });
    for p in &found {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let status = runtime.wait().unwrap();
    assert!(
        seen,
        "the exec'd sleep never showed up in the init's pid namespace"
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        back,
        "the waiting runtime's pid_for_children is {theirs}, not the host's {host}"
    );
    assert_eq!(status.code(), Some(137), "exec of a killed process: 128+9");
}

#[test]
fn exec_flags_override_env_cwd_user_caps() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.sleeper(&b);
    let o = exec(
        &rt,
        &[
            "-e",
            "FOO=bar",
            "--cwd",
            "/bin",
            "-u",
            "1000:1001",
            "-g",
            "5",
            "--cap",
            "CAP_NET_RAW",
            &id,
            "sh",
            "-c",
            "echo $FOO; pwd; id -u; id -g; id -G; grep CapEff /proc/self/status",
        ],
    )
    .check("exec with flags");
    let l: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(&l[..4], ["bar", "/bin", "1000", "1001"]);
    assert!(
        l[4].split_whitespace().any(|g| g == "5"),
        "additional gid missing: {}",
        l[4]
    );
    // A non-root user keeps no effective caps unless ambient: CapEff is 0 here,
    // so check the cap reached the bounding set through root instead.
    let o = exec(
        &rt,
        &[
            "--cap",
            "CAP_NET_RAW",
            &id,
            "grep",
            "CapBnd",
            "/proc/self/status",
        ],
    )
    .check("exec --cap");
    let bnd = u64::from_str_radix(o.stdout.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_ne!(
        bnd & (1 << 13),
        0,
        "CAP_NET_RAW (13) not in the bounding set: {}",
        o.stdout
    );
}

/// `--env NAME=x` replaces the spec's NAME (one entry, the flag's value,
/// at the spec's position), as runc's init leaves its environment; a
/// --process file's duplicate names likewise end as one, the last value.
#[test]
fn exec_env_flag_replaces_the_specs_variable() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["process"]["env"] = serde_json::json!(["PATH=/bin", "MY_VAR=spec", "B=2", "HOME=/root"])
    });
    let id = rt.sleeper(&b);
    let o = exec(&rt, &["--env", "MY_VAR=cli", "--env", "NEW=1", &id, "env"]).check("exec --env");
    let env: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(
        env,
        ["PATH=/bin", "MY_VAR=cli", "B=2", "HOME=/root", "NEW=1"],
        "{o:?}"
    );
    let dir = TempDir::new("exec-env");
    let proc_file = dir.path().join("process.json");
    let mut p = b.config()["process"].clone();
    p["args"] = serde_json::json!(["env"]);
    p["env"] = serde_json::json!(["PATH=/bin", "X=first", "HOME=/", "X=last"]);
    std::fs::write(&proc_file, p.to_string()).unwrap();
    let o = exec(&rt, &["--process", proc_file.to_str().unwrap(), &id]).check("exec --process");
    let env: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(env, ["PATH=/bin", "X=last", "HOME=/"], "{o:?}");
}

#[test]
fn exec_process_file_detach_and_pid_file() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["root"]["readonly"] = serde_json::json!(false));
    let id = rt.sleeper(&b);
    let dir = TempDir::new("exec");
    let proc_file = dir.path().join("process.json");
    let mut p = b.config()["process"].clone();
    p["args"] = serde_json::json!(["sh", "-c", "echo from-process-file > /marker; sleep 1000"]);
    std::fs::write(&proc_file, p.to_string()).unwrap();
    let pid_file = dir.path().join("exec.pid");
    let mut c = rt.cmd();
    c.args([
        "exec",
        "--process",
        proc_file.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    rt.detached(c, "exec-d").check("exec --detach --process");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ps = rt.out(&["ps", "--format", "json", &id]).check("ps");
    let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap();
    assert!(
        pids.contains(&pid),
        "exec pid {pid} not among the container's {pids:?}"
    );
    assert!(poll(10, || std::fs::read_to_string(
        b.rootfs().join("marker")
    )
    .is_ok_and(|s| s == "from-process-file\n")));
}

#[test]
fn exec_refuses_stopped_and_paused_containers() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.sleeper(&b);
    rt.out(&["pause", &id]).check("pause");
    let o = exec(&rt, &[&id, "true"]);
    // runc's status for a failed exec is 255 (1 may be the process's own).
    assert_eq!(
        o.code,
        Some(255),
        "exec into a paused container must fail: {o:?}"
    );
    assert!(o.stderr.contains("paused"), "{o:?}");
    rt.out(&["resume", &id]).check("resume");
    rt.out(&["kill", &id, "KILL"]).check("kill");
    rt.wait_status(&id, "stopped");
    let o = exec(&rt, &[&id, "true"]);
    assert_eq!(
        o.code,
        Some(255),
        "exec into a stopped container must fail: {o:?}"
    );
    let o = exec(&rt, &[&id, "/nope"]);
    assert_eq!(o.code, Some(255));
}

#[test]
fn exec_missing_program_fails_clearly() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.sleeper(&b);
    let o = exec(&rt, &[&id, "/no/such/program"]);
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(
        o.stderr.contains("/no/such/program"),
        "error does not name the program: {o:?}"
    );
    assert_eq!(o.stderr.trim().lines().count(), 1, "{o:?}");
}

#[test]
fn exec_tty_through_console_socket() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.sleeper(&b);
    let console = crate::fds_tty::ConsoleSocket::new("exec-tty");
    let mut c = rt.cmd();
    c.args([
        "exec",
        "-t",
        "-d",
        "--console-socket",
        console.arg(),
        &id,
        "sh",
        "-c",
        "test -t 0 && test -t 1 && echo all-tty",
    ]);
    rt.detached(c, "exec-tty")
        .check("exec -t -d --console-socket");
    let text = console.output();
    assert_eq!(text.trim_end(), "all-tty", "{text:?}");
    assert!(text.contains("\r\n"), "output did not pass a tty: {text:?}");
}

#[test]
fn exec_applies_the_container_seccomp_profile() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["root"]["readonly"] = serde_json::json!(false);
        c["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 36}]
        });
    });
    let id = rt.sleeper(&b);
    let o = exec(&rt, &[&id, "mkdir", "/exec-made-this"]);
    // mkdir's own failure: its status, not exec's 255.
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(
        o.stderr.contains("too long"),
        "mkdir did not fail with the profile's errno: {o:?}"
    );
    assert!(!b.rootfs().join("exec-made-this").exists());
}
