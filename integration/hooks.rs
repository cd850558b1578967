//! OCI hooks: each writes the state it gets on stdin to a host file.
use crate::{Bundle, Rt, TempDir, poll, require_root};
use serde_json::{Value, json};
use std::fs;
use std::path::Path;

/// A hook that runs the host's /bin/sh and saves its stdin to `out`.
fn host_hook(out: &Path) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", "cat > \"$OUT\""], "env": [format!("OUT={}", out.display())]})
}

fn read_state(path: &Path) -> Value {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("hook did not write {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("hook stdin is not state JSON ({e}): {text}"))
}

#[test]
fn all_hooks_receive_state() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let out = TempDir::new("hooks");
    let p = |n: &str| out.path().join(n);
    b.mount(json!({"destination": "/out", "type": "bind", "source": out.path(), "options": ["rbind", "rw"]}));
    b.edit(|c| {
        c["hooks"] = json!({
            "prestart": [host_hook(&p("prestart"))],
            "createRuntime": [host_hook(&p("createRuntime"))],
            // createContainer runs in the container's namespaces before
            // pivot_root; its path resolves in the runtime namespace.
            "createContainer": [host_hook(&p("createContainer"))],
            // startContainer runs inside the container after pivot_root:
            // the path is busybox in the rootfs, the output the bind mount.
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /out/startContainer"]}],
            "poststart": [host_hook(&p("poststart"))],
            "poststop": [host_hook(&p("poststop"))],
        });
    });
    b.edit(|c| c["annotations"] = json!({"org.example.hook": "yes"}));
    b.args(&["sleep", "1000"]);
    let bundle = b.path().canonicalize().unwrap().display().to_string();
    let id = rt.id("hooks");
    rt.create(&b, &id, &[]).check("create with hooks");
    let pid = rt.pid(&id);
    for h in ["prestart", "createRuntime", "createContainer"] {
        let st = read_state(&p(h));
        assert_eq!(st["id"], id.as_str(), "{h}: {st}");
        // runc gives createContainer the pid as the container sees it (1):
        // the hook runs in the container's pid namespace.
        let want = if h == "createContainer" {
            [1, pid]
        } else {
            [pid, pid]
        };
        assert!(
            want.iter().any(|w| st["pid"] == *w),
            "{h}: pid is not {want:?}: {st}"
        );
        assert!(
            st["bundle"].as_str().is_some_and(|s| s.starts_with('/')),
            "{h}: {st}"
        );
        check_common(h, &st, "creating", &bundle);
    }
    assert!(
        !p("startContainer").exists(),
        "startContainer ran before start"
    );
    // runc 1.1.5 runs poststart hooks at `create` (fixed in runc 1.2); the
    // spec says after the user process starts, which skiff follows.
    if crate::is_skiff() {
        assert!(!p("poststart").exists(), "poststart ran before start");
    }

    rt.out(&["start", &id]).check("start");
    for h in ["startContainer", "poststart"] {
        assert!(
            poll(10, || p(h).exists()
                && fs::metadata(p(h)).unwrap().len() > 0),
            "{h} never ran"
        );
        let st = read_state(&p(h));
        assert_eq!(st["id"], id.as_str(), "{h}: {st}");
        let want = if h == "startContainer" {
            [1, pid]
        } else {
            [pid, pid]
        };
        assert!(
            want.iter().any(|w| st["pid"] == *w),
            "{h}: pid is not {want:?}: {st}"
        );
        let status = if h == "startContainer" {
            "created"
        } else {
            "running"
        };
        // runc 1.1.5 runs poststart at `create`, with status "created".
        if h == "startContainer" || crate::is_skiff() {
            check_common(h, &st, status, &bundle);
        }
    }
    assert!(!p("poststop").exists(), "poststop ran before delete");
    rt.out(&["delete", "--force", &id]).check("delete --force");
    let st = read_state(&p("poststop"));
    assert_eq!(st["id"], id.as_str(), "poststop: {st}");
    check_common("poststop", &st, "stopped", &bundle);
}

/// What every hook's state has: the status of its phase (runtime-spec
/// runtime.md and config.md), the bundle and the config's annotations.
fn check_common(h: &str, st: &Value, status: &str, bundle: &str) {
    assert_eq!(st["status"], status, "{h}: {st}");
    assert_eq!(st["bundle"], bundle, "{h}: {st}");
    assert_eq!(
        st["annotations"],
        json!({"org.example.hook": "yes"}),
        "{h}: {st}"
    );
    assert!(st["ociVersion"].is_string(), "{h}: {st}");
}

#[test]
fn hook_args_and_env() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let out = TempDir::new("hookenv");
    let f = out.path().join("h");
    b.edit(|c| {
        c["hooks"] = json!({"prestart": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", "echo \"$0 $1 $HOOKVAR\" > \"$2\"", "zero", "one", f],
            "env": ["HOOKVAR=from-env"],
        }]});
    });
    b.args(&["true"]);
    let id = rt.id("hookenv");
    rt.run(&b, &id, &[]).check("run");
    assert_eq!(fs::read_to_string(&f).unwrap(), "zero one from-env\n");
}

#[test]
fn failing_hook_fails_create() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 7"]}]})
    });
    b.args(&["sleep", "1000"]);
    let id = rt.id("hookfail");
    let o = rt.create(&b, &id, &[]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(rt.state(&id).is_none());
    assert!(
        !rt.root.path().join(&id).exists(),
        "state dir left after a failed hook"
    );
}

#[test]
fn hook_timeout_fails_create() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    // The hook itself sleeps (no child holding its stdio open, which a
    // runtime waiting for EOF on the hook's output would wait for).
    b.edit(|c| {
        c["hooks"] =
            json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]})
    });
    b.args(&["sleep", "1000"]);
    let id = rt.id("hooktimeout");
    let start = std::time::Instant::now();
    let o = rt.create(&b, &id, &[]);
    assert_eq!(
        o.code,
        Some(1),
        "a hook over its timeout must fail create: {o:?}"
    );
    assert!(
        start.elapsed().as_secs() < 5,
        "create waited for the hook past its timeout"
    );
    assert!(rt.state(&id).is_none());
    assert!(!rt.root.path().join(&id).exists());
}

/// The state JSON reaches init (and its createContainer hook) whatever its
/// size: engines put kilobytes in annotations (the sync protocol once cut
/// messages at 8 KiB).
#[test]
fn large_annotations_reach_state_and_hooks() {
    require_root!();
    for len in [9 * 1024, 1 << 20] {
        let rt = Rt::new();
        let b = Bundle::new();
        let out = TempDir::new("bigstate");
        let big: String = "x".repeat(len);
        b.edit(|c| {
            c["annotations"] = json!({"org.skiff.big": big, "small": "1"});
            c["hooks"] = json!({"createContainer": [host_hook(&out.path().join("cc"))]});
        });
        b.args(&["sh", "-c", "echo started"]);
        let id = rt.id("bigstate");
        rt.create(&b, &id, &[])
            .check("create with a large annotation");
        let st = rt.state(&id).expect("state");
        assert_eq!(
            st["annotations"]["org.skiff.big"].as_str().map(str::len),
            Some(len)
        );
        let hook = read_state(&out.path().join("cc"));
        assert_eq!(hook["id"], id.as_str());
        assert_eq!(
            hook["annotations"]["org.skiff.big"].as_str().map(str::len),
            Some(len)
        );
        assert_eq!(hook["annotations"]["small"], "1");
        rt.out(&["start", &id]).check("start");
        rt.wait_status(&id, "stopped");
    }
}

/// A prestart hook running `script` under the host's /bin/sh.
fn sh_hook(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

/// A hook's output is drained while it runs: one that writes more than a
/// pipe holds (64 KiB) to stderr or stdout must not hang the runtime (it
/// once read the output only after the hook exited).
#[test]
fn hook_with_large_output_does_not_hang() {
    require_root!();
    for (what, script) in [
        ("200 KB to stderr", "head -c 204800 /dev/zero >&2"),
        ("10 MB to stdout", "head -c 10485760 /dev/zero"),
    ] {
        let rt = Rt::new();
        let b = Bundle::new();
        b.edit(|c| c["hooks"] = json!({"prestart": [sh_hook(script)]}));
        b.args(&["sh", "-c", "echo container-ran"]);
        let id = rt.id("bighookout");
        // `run` is bounded (60 s) by the harness: a hang fails the test.
        let o = rt.run(&b, &id, &[]);
        assert!(o.ok(), "{what}: {o:?}");
        assert!(o.stdout.contains("container-ran"), "{what}: {o:?}");
    }
}

/// A failing hook's error carries the tail of its stderr, however much it
/// wrote before.
#[test]
fn failing_hook_error_has_stderr_tail() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["hooks"] = json!({"prestart": [sh_hook(
            "head -c 204800 /dev/zero | tr '\\0' x >&2; echo; echo the-last-words >&2; exit 3"
        )]})
    });
    b.args(&["true"]);
    let id = rt.id("hooktail");
    let o = rt.run(&b, &id, &[]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.contains("the-last-words"), "{o:?}");
    assert!(rt.state(&id).is_none());
    // skiff keeps a bounded tail of the output, not all 200 KB.
    if crate::is_skiff() {
        assert!(o.stderr.len() < 64 * 1024, "{} bytes", o.stderr.len());
    }
}

/// The timeout also bounds a hook that reads no stdin while the state it is
/// fed (1 MB of annotations) is more than a pipe holds; the error names the
/// hook and its timeout.
#[test]
fn hook_timeout_with_unread_large_state() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["annotations"] = json!({"org.skiff.big": "x".repeat(1 << 20)});
        c["hooks"] =
            json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]})
    });
    b.args(&["sleep", "1000"]);
    let id = rt.id("hooktimeoutbig");
    let start = std::time::Instant::now();
    let o = rt.create(&b, &id, &[]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(
        start.elapsed().as_secs() < 5,
        "create waited for the hook past its timeout: {o:?}"
    );
    assert!(rt.state(&id).is_none());
    assert!(!rt.root.path().join(&id).exists());
    // skiff's wording (runc: "timeout after 1s").
    if crate::is_skiff() {
        assert!(
            o.stderr.contains("prestart hook #0 (/bin/sleep)")
                && o.stderr.contains("timeout of 1 seconds"),
            "{o:?}"
        );
    }
}

/// runtime-spec: a hook's path MUST be absolute. A relative one ("true")
/// would run the host's program found through the runtime's $PATH.
#[test]
fn relative_hook_path_is_refused() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let out = TempDir::new("relhook");
    let marker = out.path().join("ran");
    b.edit(|c| {
        c["hooks"] = json!({
            "prestart": [{"path": "sh", "args": ["sh", "-c", format!("touch {}", marker.display())]}]
        })
    });
    b.args(&["sleep", "1000"]);
    let id = rt.id("relhook");
    let o = rt.create(&b, &id, &[]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(!marker.exists(), "the relative hook ran: {o:?}");
    assert!(rt.state(&id).is_none());
    assert!(!rt.root.path().join(&id).exists());
    if crate::is_skiff() {
        assert!(
            o.err()
                .contains(r#"hooks.prestart[0].path: "sh" is not an absolute path"#),
            "{o:?}"
        );
    }
}

/// Each hook kind's working directory as runc gives it (the bundle for
/// the runtime's hooks, the rootfs for createContainer), and no fd but
/// stdio, whatever the runtime's caller left open.
#[test]
fn hooks_get_runcs_cwd_and_only_stdio() {
    require_root!();
    use std::os::unix::process::CommandExt;
    let rt = Rt::new();
    let b = Bundle::new();
    let out = TempDir::new("hookcwd");
    let hook = |kind: &str| {
        let f = out.path().join(kind);
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            "{ pwd; ls /proc/self/fd | tr '\\n' ' '; } > \"$OUT\""],
            "env": [format!("OUT={}", f.display())]})
    };
    b.edit(|c| {
        c["hooks"] = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
    });
    b.args(&["true"]);
    let id = rt.id("hookcwd");
    let leak = fs::File::open("/proc/self/status").unwrap();
    let mut c = rt.cmd();
    c.current_dir("/")
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(&id);
    let raw = std::os::fd::AsRawFd::as_raw_fd(&leak);
    // SAFETY: dup2 in the forked child before exec; async-signal-safe.
    unsafe {
        c.pre_exec(move || {
            libc::dup2(raw, 7);
            libc::dup2(raw, 8);
            Ok(())
        });
    }
    crate::output(c).check("run with hooks");
    let bundle = fs::canonicalize(b.path()).unwrap();
    let rootfs = fs::canonicalize(b.rootfs()).unwrap();
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        let text = fs::read_to_string(out.path().join(kind))
            .unwrap_or_else(|e| panic!("{kind} did not run: {e}"));
        let (cwd, fds) = text.split_once('\n').unwrap();
        let want = if kind == "createContainer" {
            &rootfs
        } else {
            &bundle
        };
        assert_eq!(Path::new(cwd), want.as_path(), "{kind}'s cwd");
        // stdio, and ls's own directory fd.
        if kind != "createContainer" || crate::is_skiff() {
            // runc 1.1.5 leaks some of its own fds into createContainer hooks.
            assert_eq!(fds.split_whitespace().count(), 4, "{kind} got fds {fds}");
        }
    }
}

/// A startContainer hook killed by the container's seccomp filter: the
/// error names the hook and says SIGSYS, "bad system call" (it said
/// "signal: 31").
#[test]
fn start_container_hook_killed_by_seccomp_is_named() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]});
        c["hooks"] =
            json!({"startContainer": [{"path": "/bin/mkdir", "args": ["mkdir", "/tmp/x"]}]});
    });
    b.args(&["true"]);
    let id = rt.id("sigsys");
    rt.create(&b, &id, &[]).check("create");
    let _ = rt.out(&["start", &id]);
    // The hook runs in init, after `start` returned: init reports on the
    // stderr it got from create, and the process never runs.
    rt.wait_status(&id, "stopped");
    if crate::is_skiff() {
        let log = fs::read_to_string(rt.root.path().join(format!("create-{id}.err"))).unwrap();
        assert!(
            log.contains("startContainer hook #0 (/bin/mkdir)")
                && log.contains("SIGSYS")
                && log.contains("bad system call"),
            "init's error: {log}"
        );
    }
}

// Found by scripts/difftest.sh: a hook without `env` gets the environment
// of the process that runs it, as runc's (and crun's) do: the runtime's for
// prestart, createRuntime, poststart and poststop; the container's
// process.env for createContainer and startContainer (runc runs them from
// its init). An explicit `env`, even empty, is exactly the hook's env.
#[test]
fn hooks_without_env_inherit_the_env_of_their_runner() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let out = TempDir::new("hookinherit");
    let f = |n: &str| out.path().join(n);
    let hook = |path: &Path| {
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("echo \"${{CVAR:-}}|${{SKIFF_HOOKTEST:-}}\" > {}", path.display())]})
    };
    b.mount(json!({"destination": "/out", "type": "bind", "source": out.path(), "options": ["rbind", "rw"]}));
    b.edit(|c| {
        c["process"]["env"] = json!(["PATH=/bin", "CVAR=container"]);
        let mut empty = hook(&f("empty"));
        empty["env"] = json!([]);
        c["hooks"] = json!({
            "prestart": [hook(&f("prestart")), empty],
            "createRuntime": [hook(&f("createRuntime"))],
            "createContainer": [hook(&f("createContainer"))],
            "startContainer": [hook(Path::new("/out/startContainer"))],
            "poststart": [hook(&f("poststart"))],
            "poststop": [hook(&f("poststop"))],
        });
    });
    b.args(&["true"]);
    let id = rt.id("hookinherit");
    let mut c = rt.cmd();
    c.env("SKIFF_HOOKTEST", "runtime")
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(&id);
    crate::output(c).check("run");
    let read = |n: &str| fs::read_to_string(f(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    for n in ["prestart", "createRuntime", "poststart", "poststop"] {
        assert_eq!(read(n), "|runtime\n", "{n}");
    }
    for n in ["createContainer", "startContainer"] {
        assert_eq!(read(n), "container|\n", "{n}");
    }
    assert_eq!(read("empty"), "|\n");
}

// Found by scripts/difftest.sh: startContainer runs under the container's
// seccomp filter; a profile refusing clone3 with EPERM (allow-lists older
// than Linux 5.3 do, with their default errno) must not stop the hook
// from starting (runc and crun run it).
#[test]
fn start_container_hook_runs_under_a_profile_refusing_clone3() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let out = TempDir::new("hookclone3");
    b.mount(json!({"destination": "/out", "type": "bind", "source": out.path(), "options": ["rbind", "rw"]}));
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}]});
        c["hooks"] = json!({"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo ran > /out/start"]}]});
    });
    b.args(&["true"]);
    let id = rt.id("hookclone3");
    rt.run(&b, &id, &[]).check("run");
    assert_eq!(
        fs::read_to_string(out.path().join("start")).unwrap(),
        "ran\n"
    );
}

// Found by scripts/difftest.sh: a failing poststart or poststop hook is a
// warning; the remaining hooks and the lifecycle go on (runtime-spec
// lifecycle steps 8 and 12; crun agrees; runc 1.1.5 fails `start` on a
// poststart hook and stops at the first failing poststop hook).
#[test]
fn failing_poststart_and_poststop_hooks_warn_and_the_rest_run() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let out = TempDir::new("hookwarn");
    let fail = json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]});
    b.edit(|c| {
        c["hooks"] = json!({
            "poststart": [fail.clone(), host_hook(&out.path().join("poststart"))],
            "poststop": [fail, host_hook(&out.path().join("poststop"))],
        });
    });
    b.args(&["sh", "-c", "echo ran"]);
    let id = rt.id("hookwarn");
    let o = rt.run(&b, &id, &[]);
    if !crate::is_skiff() {
        // runc 1.1.5 breaks the spec here (see above).
        assert_ne!(o.code, Some(0), "{o:?}");
        return;
    }
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout, "ran\n");
    assert!(o.stderr.contains("poststart hook #0"), "{o:?}");
    assert!(o.stderr.contains("poststop hook #0"), "{o:?}");
    assert_eq!(
        read_state(&out.path().join("poststart"))["status"],
        "running"
    );
    assert_eq!(
        read_state(&out.path().join("poststop"))["status"],
        "stopped"
    );
}
