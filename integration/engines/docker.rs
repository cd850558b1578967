//! dockerd 20.10 (apt `docker.io`) started by hand with the README's
//! daemon.json (runtime `skiff` = the binary under test, and the default
//! runtime), driven with the apt `docker` client.
//!
//! dockerd runs with data-root, exec-root, pidfile and socket in a tempdir,
//! no bridge, no iptables, a unique `--cgroup-parent`; it starts its own
//! containerd under the exec-root. The busybox image is a docker-archive
//! written by hand (images.rs) and loaded with `docker load`.
//!
//! docker always sends a prestart hook (libnetwork's setkey) and its default
//! seccomp profile; the lifecycle test checks that both were in the config
//! skiff ran and that the filter is on in the container.
//!
//! `docker build` with the classic builder (`DOCKER_BUILDKIT=0`) runs each
//! `RUN` step in a container of dockerd's default runtime: the build tests
//! keep those containers (`--rm=false`) to check that they were skiff's.

use crate::{Ctx, Daemon, Out, TempDir, poll, readme, run_env, run_tty, runtime};
use std::fs;
use std::process::Command;

/// The docker.io client: /usr/local/bin may hold a newer one.
const CLIENT: &str = "/usr/bin/docker";

pub struct Docker {
    daemon: Daemon,
    dir: TempDir,
    host: String,
    cgroup_parent: String,
    name: &'static str,
}

pub fn tests() -> Vec<(&'static str, crate::TestFn)> {
    vec![
        ("docker_run_output_and_exit_code", run_output_and_exit_code),
        ("docker_lifecycle", lifecycle),
        ("docker_host_network", host_network),
        ("docker_failing_entrypoint", failing_entrypoint),
        ("docker_tty", tty),
        ("docker_build_run_steps", build_run_steps),
        ("docker_build_failing_run", build_failing_run),
    ]
}

impl Docker {
    fn start(ctx: &mut Ctx) -> Docker {
        if !crate::have("dockerd") || !std::path::Path::new(CLIENT).exists() {
            crate::skip!("dockerd/docker not installed (apt docker.io)");
        }
        let dir = TempDir::new("docker");
        let host = format!("unix://{}", dir.join("d.sock").display());
        let cgroup_parent = format!("/{}", crate::unique("docker"));
        // The README's runtime name, whichever binary is under test.
        let name = "skiff";
        let exec_root = dir.join("exec");
        let mut cmd = Command::new("dockerd");
        cmd.arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .args(["-H", &host, "--bridge", "none", "--iptables=false"])
            .args(["--ip-masq=false", "--storage-driver", "overlay2"])
            .arg(format!("--cgroup-parent={cgroup_parent}"));
        fs::write(dir.join("daemon.json"), readme::snippet("dockerd")).unwrap();
        let mut daemon = Daemon::spawn("dockerd", cmd, dir.join("dockerd.log"));
        let (e, cg) = (exec_root.display().to_string(), cgroup_parent.clone());
        let run_existed = std::path::Path::new("/run/containerd").exists();
        let docker_run_existed = std::path::Path::new("/run/docker").exists();
        daemon.on_drop(move || {
            // docker's containerd and its shims carry the exec-root.
            crate::kill_procs_matching(&e);
            crate::remove_cgroup(&cg);
            if !run_existed {
                let _ = fs::remove_dir("/run/containerd/s");
                let _ = fs::remove_dir("/run/containerd");
            }
            if !docker_run_existed {
                // dockerd makes /run/docker/plugins whatever its exec-root.
                let _ = fs::remove_dir("/run/docker/plugins");
                let _ = fs::remove_dir("/run/docker");
            }
        });
        let mut d = Docker {
            daemon,
            dir,
            host,
            cgroup_parent,
            name,
        };
        let h = d.host.clone();
        let conf = d.dir.join("client").display().to_string();
        d.daemon.wait_ready(|| {
            run_env(CLIENT, &["-H", &h, "version"], &[("DOCKER_CONFIG", &conf)]).ok()
        });
        let tar = ctx.images().docker_tar.clone();
        d.docker(&["load", "-i", tar.to_str().unwrap()])
            .check("docker load");
        d
    }

    fn docker(&self, args: &[&str]) -> Out {
        let mut a = vec!["-H", &self.host];
        a.extend_from_slice(args);
        let conf = self.dir.join("client").display().to_string();
        run_env(CLIENT, &a, &[("DOCKER_CONFIG", &conf)])
    }

    /// `docker run --runtime <ours> --network none` plus `args`.
    fn run(&self, args: &[&str]) -> Out {
        let mut a = vec!["run", "--runtime", self.name, "--network", "none"];
        a.extend_from_slice(args);
        self.docker(&a)
    }

    fn inspect(&self, name: &str, fmt: &str) -> String {
        self.docker(&["inspect", "-f", fmt, name])
            .stdout
            .trim()
            .to_owned()
    }

    /// The runtime's own state of a container docker made.
    fn runtime_status(&self, id: &str) -> Option<String> {
        // docker 20.10 uses this root for every runc-type runtime.
        let root = self.dir.join("exec/runtime-runc/moby");
        let v = crate::runtime_state(Some(&root), id)?;
        Some(v["status"].as_str()?.to_owned())
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
    }
}

fn docker(ctx: &mut Ctx) -> &Docker {
    if ctx.docker.is_none() {
        ctx.docker = Some(Docker::start(ctx));
    }
    ctx.docker.as_ref().unwrap()
}

/// Removes a docker container when dropped.
struct Rm<'a>(&'a Docker, String);

impl Drop for Rm<'_> {
    fn drop(&mut self) {
        let _ = self.0.docker(&["rm", "-f", &self.1]);
    }
}

/// Output, pid 1, exit code, cgroup under our `--cgroup-parent`.
fn run_output_and_exit_code(ctx: &mut Ctx) {
    let d = docker(ctx);
    let script = "echo hello; echo pid=$$; grep memory /proc/self/cgroup; exit 3";
    let o = d.run(&["--rm", "localhost/busybox", "sh", "-c", script]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(o.stdout.starts_with("hello\npid=1\n"), "{o:?}");
    assert!(o.stdout.contains(&d.cgroup_parent), "{o:?}");
}

/// run -d (prestart hook and seccomp in the config, the filter on inside),
/// exec, top, pause/unpause, update, restart, kill, start, stop, rm.
fn lifecycle(ctx: &mut Ctx) {
    let d = docker(ctx);
    let name = crate::unique("dk");
    let _g = Rm(d, name.clone());
    let o = d.run(&["-d", "--name", &name, "localhost/busybox", "sleep", "1000"]);
    let id = o.check("run -d").stdout.trim().to_owned();
    assert_eq!(d.runtime_status(&id).as_deref(), Some("running"));
    let bundle = d.dir.join(&format!(
        "exec/containerd/daemon/io.containerd.runtime.v2.task/moby/{id}/config.json"
    ));
    let cfg: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&bundle).unwrap()).unwrap();
    assert!(
        cfg["hooks"]["prestart"]
            .as_array()
            .is_some_and(|h| !h.is_empty()),
        "{cfg}"
    );
    assert!(cfg["linux"]["seccomp"].is_object(), "no seccomp in {cfg}");
    let o = d.docker(&["exec", &name, "grep", "^Seccomp:", "/proc/self/status"]);
    assert_eq!(
        o.check("exec grep").stdout.split_whitespace().nth(1),
        Some("2")
    );

    let o = d.docker(&["exec", &name, "sh", "-c", "echo in-exec; exit 7"]);
    assert_eq!((o.code, o.stdout.as_str()), (7, "in-exec\n"), "{o:?}");
    let o = d.docker(&["top", &name]).check("top");
    assert!(o.stdout.contains("sleep 1000"), "{o:?}");

    d.docker(&["pause", &name]).check("pause");
    assert_eq!(d.inspect(&name, "{{.State.Status}}"), "paused");
    assert_eq!(d.runtime_status(&id).as_deref(), Some("paused"));
    d.docker(&["unpause", &name]).check("unpause");

    d.docker(&["update", "--memory", "64m", "--memory-swap", "128m", &name])
        .check("update");
    let o = d.docker(&[
        "exec",
        &name,
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(o.check("read limit").stdout.trim(), "67108864");

    let pid = d.inspect(&name, "{{.State.Pid}}");
    d.docker(&["restart", "-t", "1", &name]).check("restart");
    assert_eq!(d.inspect(&name, "{{.State.Status}}"), "running");
    assert_ne!(
        d.inspect(&name, "{{.State.Pid}}"),
        pid,
        "restart kept the pid"
    );

    d.docker(&["kill", &name]).check("kill");
    assert!(poll(10, || d.inspect(&name, "{{.State.Status}}") == "exited"));
    assert_eq!(d.inspect(&name, "{{.State.ExitCode}}"), "137");
    d.docker(&["start", &name]).check("start");
    d.docker(&["stop", "-t", "1", &name]).check("stop");
    assert_eq!(d.inspect(&name, "{{.State.Status}}"), "exited");
    d.docker(&["rm", &name]).check("rm");
    assert_eq!(d.runtime_status(&id), None, "the runtime still knows {id}");
}

/// `--network host`: the container sees the host's interfaces.
fn host_network(ctx: &mut Ctx) {
    let d = docker(ctx);
    let a = ["run", "--rm", "--runtime", d.name, "--network", "host"];
    let o = d.docker(&[&a[..], &["localhost/busybox", "ls", "/sys/class/net"]].concat());
    let mut host: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    let mut inside: Vec<String> = o
        .check("run")
        .stdout
        .split_whitespace()
        .map(String::from)
        .collect();
    inside.sort();
    assert_eq!(inside, host);
}

/// A missing and a non-executable entrypoint: docker shows the runtime's
/// message (from log.json) and exits 127 / 126.
fn failing_entrypoint(ctx: &mut Ctx) {
    let d = docker(ctx);
    for (arg, code, want) in [
        (
            "/nonexistent",
            127,
            r#"exec: "/nonexistent": stat /nonexistent: no such file or directory"#,
        ),
        (
            "/etc/passwd",
            126,
            r#"exec: "/etc/passwd": permission denied"#,
        ),
    ] {
        let o = d.run(&["--rm", "localhost/busybox", arg]);
        assert_eq!(o.code, code, "{o:?}");
        assert!(o.stderr.contains("OCI runtime create failed"), "{o:?}");
        assert!(o.stderr.contains(want), "want {want:?}: {o:?}");
    }
}

/// run -t: a pty on stdin, output and exit code back.
fn tty(ctx: &mut Ctx) {
    let d = docker(ctx);
    let line = format!(
        "DOCKER_CONFIG={} {CLIENT} -H {} run -t --rm --runtime {} --network none localhost/busybox sh -c 'tty; [ -t 0 ] && echo isatty; exit 4'",
        d.dir.join("client").display(),
        d.host,
        d.name
    );
    let o = run_tty(&line);
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stdout.contains("/dev/pts/0\nisatty\n"), "{o:?}");
}

/// `DOCKER_BUILDKIT=0 docker build --network none --rm=false args`: the
/// classic builder, keeping each step's container.
fn build(d: &Docker, args: &[&str]) -> Out {
    let mut a = vec!["-H", &d.host, "build", "--network", "none", "--rm=false"];
    a.extend_from_slice(args);
    let conf = d.dir.join("client").display().to_string();
    run_env(
        CLIENT,
        &a,
        &[("DOCKER_CONFIG", &conf), ("DOCKER_BUILDKIT", "0")],
    )
}

/// The containers the classic builder ran the steps in ("Running in ID"
/// lines): each was created with dockerd's default runtime, ours, whose
/// path is the binary under test; then they are removed.
fn check_step_containers(d: &Docker, out: &str, steps: usize) {
    let info = d.docker(&["info", "-f", "{{.DefaultRuntime}} {{json .Runtimes}}"]);
    let info = info.check("info").stdout;
    let (default, runtimes) = info.trim().split_once(' ').unwrap();
    assert_eq!(default, d.name);
    let runtimes: serde_json::Value = serde_json::from_str(runtimes).unwrap();
    assert_eq!(
        runtimes[d.name]["path"],
        runtime().display().to_string(),
        "{runtimes}"
    );
    let ids: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("---> Running in "))
        .collect();
    assert_eq!(ids.len(), steps, "{out}");
    for id in ids {
        let _g = Rm(d, id.to_owned());
        assert_eq!(d.inspect(id, "{{.HostConfig.Runtime}}"), d.name);
    }
}

/// RUN steps with a shell write files, under skiff as dockerd's default
/// runtime; the image has them (`docker run` with no `--runtime`, so
/// under skiff again).
fn build_run_steps(ctx: &mut Ctx) {
    let d = docker(ctx);
    let dir = d.dir.join(&crate::unique("build"));
    fs::create_dir_all(&dir).unwrap();
    let file = r#"FROM localhost/busybox
ENV GREETING=hi
RUN echo hello > /built && n=2; n=$((n * 21)); echo "n=$n" | tr n N >> /built
RUN echo "$GREETING from $(head -n 1 /built), pid $$" > /greeting
"#;
    fs::write(dir.join("Dockerfile"), file).unwrap();
    let tag = format!("localhost/{}", crate::unique("img"));
    let o = build(d, &["-t", &tag, dir.to_str().unwrap()]).check("docker build");
    // ENV makes a container too (committed, never started).
    check_step_containers(d, &o.stdout, 3);
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &tag,
        "cat",
        "/built",
        "/greeting",
    ]);
    assert_eq!(o.check("run").stdout, "hello\nN=42\nhi from hello, pid 1\n");
    d.docker(&["rmi", &tag]).check("rmi");
}

/// A RUN that exits 7 fails the build with docker's message naming the
/// command and the status.
fn build_failing_run(ctx: &mut Ctx) {
    let d = docker(ctx);
    let dir = d.dir.join(&crate::unique("build"));
    fs::create_dir_all(&dir).unwrap();
    let file = "FROM localhost/busybox\nRUN echo failing; exit 7\n";
    fs::write(dir.join("Dockerfile"), file).unwrap();
    let o = build(d, &[dir.to_str().unwrap()]);
    assert_ne!(o.code, 0, "{o:?}");
    let want = "The command '/bin/sh -c echo failing; exit 7' returned a non-zero code: 7";
    assert!(o.stderr.contains(want), "want {want:?}: {o:?}");
    assert!(o.stdout.contains("failing\n"), "{o:?}");
    check_step_containers(d, &o.stdout, 1);
}
