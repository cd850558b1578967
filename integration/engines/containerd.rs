//! containerd 1.6 (apt `containerd`) driven with `ctr --runc-binary skiff`.
//!
//! One containerd for the whole target, with root, state, sockets and the
//! CRI plugin's config in a tempdir (the CRI test in cri.rs shares it). ctr
//! uses a unique namespace, so the containers' cgroups are `/<ns>/<id>`,
//! and its own `--runc-root` and `--fifo-dir` in the tempdir; the guard
//! removes all of that.
//!
//! Each test checks that skiff really ran the container: skiff's own
//! `state` under the shim's `--runc-root` must know it.

use crate::{Ctx, Daemon, Out, TempDir, poll, run, run_tty, runtime};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Containerd {
    pub daemon: Daemon,
    pub dir: TempDir,
    pub sock: String,
    /// The ctr namespace (and cgroup parent) of the ctr tests.
    pub ns: String,
    pub runc_root: PathBuf,
    fifo_dir: PathBuf,
}

pub fn tests() -> Vec<(&'static str, crate::TestFn)> {
    vec![
        ("ctr_run_output_and_exit_code", run_output_and_exit_code),
        ("ctr_run_stdin_and_rm", run_stdin_and_rm),
        ("ctr_task_lifecycle", task_lifecycle),
        ("ctr_kill_all", kill_all),
        ("ctr_tty", tty),
        ("ctr_failing_entrypoint", failing_entrypoint),
        ("ctr_readme_line", readme_line),
    ]
}

/// The containerd config: no CRI plugin settings other than ours, and a
/// CNI conf dir that stays empty (the CRI pod uses the host network). The
/// CRI test's runtime is the README's block (`runtimes.skiff`, BinaryName
/// the binary under test) with our `Root` added to its options.
fn config(dir: &Path, sock: &str) -> String {
    let d = dir.display();
    let bin = runtime().display().to_string();
    let skiff = crate::readme::snippet("containerd");
    let binary = format!("BinaryName = \"{bin}\"\n");
    assert!(skiff.contains(&binary), "no {binary} in {skiff}");
    let root = format!("{binary}Root = \"{d}/cri-runc-root\"\n");
    let skiff = skiff.replacen(&binary, &root, 1);
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{d}/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/busybox:pause"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Never below containerd's own oom_score_adj: lowering it (the pause
  # container asks for -998) needs CAP_SYS_RESOURCE, which this sandbox's
  # root lacks (runc fails the same way).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
{skiff}"#
    )
}

impl Containerd {
    fn start() -> Containerd {
        if !crate::have("containerd") || !crate::have("ctr") {
            crate::skip!("containerd/ctr not installed (apt containerd)");
        }
        let dir = TempDir::new("ctd");
        let sock = dir.join("c.sock").display().to_string();
        fs::create_dir_all(dir.join("cni")).unwrap();
        let cfg = dir.join("config.toml");
        fs::write(&cfg, config(dir.path(), &sock)).unwrap();
        let run_existed = Path::new("/run/containerd").exists();
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(&cfg);
        let mut daemon = Daemon::spawn("containerd", cmd, dir.join("containerd.log"));
        let ns = crate::unique("ctr");
        let (s, n) = (sock.clone(), ns.clone());
        daemon.on_drop(move || {
            // The shims outlive containerd; they carry our socket address.
            crate::kill_procs_matching(&s);
            crate::remove_cgroup(&n);
            crate::remove_cgroup("/skiff-eng-cri");
            if !run_existed {
                // The shims' sockets live in /run/containerd/s.
                let _ = fs::remove_dir("/run/containerd/s");
                let _ = fs::remove_dir("/run/containerd");
            }
        });
        let s = sock.clone();
        daemon.wait_ready(|| run("ctr", &["-a", &s, "version"]).ok());
        Containerd {
            runc_root: dir.join("runc-root"),
            fifo_dir: dir.join("fifo"),
            daemon,
            dir,
            sock,
            ns,
        }
    }

    /// `ctr -a <sock> -n <ns> args...`
    pub fn ctr(&self, args: &[&str]) -> Out {
        let mut a = vec!["-a", &self.sock, "-n", &self.ns];
        a.extend_from_slice(args);
        run("ctr", &a)
    }

    /// The same as a shell command line (for `script` and pipes).
    fn ctr_line(&self, args: &str) -> String {
        format!("ctr -a {} -n {} {args}", self.sock, self.ns)
    }

    /// `run` flags that point the shim at the runtime under test.
    fn run_flags(&self) -> String {
        format!(
            "--runc-binary {} --runc-root {} --fifo-dir {}",
            runtime().display(),
            self.runc_root.display(),
            self.fifo_dir.display()
        )
    }

    fn ctr_run(&self, extra: &[&str], id: &str, args: &[&str]) -> Out {
        let flags = self.run_flags();
        let mut a: Vec<&str> = vec!["run"];
        a.extend(flags.split(' '));
        a.extend_from_slice(extra);
        a.extend(["localhost/busybox:latest", id]);
        a.extend_from_slice(args);
        self.ctr(&a)
    }

    /// skiff's own view of a container the shim created.
    fn runtime_state(&self, id: &str) -> Option<serde_json::Value> {
        crate::runtime_state(Some(&self.runc_root.join(&self.ns)), id)
    }

    fn task_status(&self, id: &str) -> String {
        let o = self.ctr(&["task", "ls"]).check("task ls");
        o.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("")
            .to_owned()
    }

    /// Kills, deletes the task and removes the container, whatever state
    /// it is in (the end of every test, also on failure via `Cleanup`).
    fn remove(&self, id: &str) {
        let _ = self.ctr(&["task", "kill", "-a", "-s", "SIGKILL", id]);
        poll(10, || self.task_status(id) != "RUNNING");
        let _ = self.ctr(&["task", "delete", id]);
        let _ = self.ctr(&["container", "rm", id]);
    }
}

/// Removes a ctr container when dropped, so a failed assertion leaves no
/// task behind.
struct Cleanup<'a>(&'a Containerd, String);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.0.remove(&self.1);
    }
}

pub fn containerd(ctx: &mut Ctx) -> &Containerd {
    if ctx.containerd.is_none() {
        let c = Containerd::start();
        let tar = ctx.images().oci_tar.clone();
        let o = c.ctr(&[
            "images",
            "import",
            "--base-name",
            "localhost/busybox",
            tar.to_str().unwrap(),
        ]);
        o.check("ctr images import");
        ctx.containerd = Some(c);
    }
    ctx.containerd.as_ref().unwrap()
}

/// A foreground run: the container's stdout reaches ctr, its exit code is
/// ctr's, it is pid 1 in its own cgroup `/<ns>/<id>`.
fn run_output_and_exit_code(ctx: &mut Ctx) {
    let c = containerd(ctx);
    let id = crate::unique("run");
    let _g = Cleanup(c, id.clone());
    let script = "echo hello; echo pid=$$; grep memory /proc/self/cgroup; exit 3";
    let o = c.ctr_run(&["--rm"], &id, &["sh", "-c", script]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(o.stdout.contains("hello\npid=1\n"), "{o:?}");
    assert!(o.stdout.contains(&format!("/{}/{id}", c.ns)), "{o:?}");
}

/// stdin is passed through and `--rm` leaves neither the
/// container nor the runtime's state behind.
fn run_stdin_and_rm(ctx: &mut Ctx) {
    let c = containerd(ctx);
    let id = crate::unique("rm");
    let _g = Cleanup(c, id.clone());
    let line = format!(
        "printf 'piped\\n' | {} run --rm {} localhost/busybox:latest {id} sh -c 'read x; echo got=$x'",
        c.ctr_line(""),
        c.run_flags()
    );
    let o = run("sh", &["-c", &line]).check("ctr run -i --rm");
    assert_eq!(o.stdout, "got=piped\n");
    let ls = c.ctr(&["container", "ls", "-q"]).check("container ls");
    assert!(!ls.stdout.contains(&id), "container left: {ls:?}");
    assert!(
        !c.runc_root.join(&c.ns).join(&id).exists(),
        "state dir left"
    );
}

/// Detached task: skiff's state agrees with containerd's; exec output and
/// exit code; `task ps` lists init and the exec; pause/resume show in
/// ctr, skiff's state and the freezer; SIGKILL stops it with 137; delete
/// removes the runtime state and the cgroup.
fn task_lifecycle(ctx: &mut Ctx) {
    let c = containerd(ctx);
    let id = crate::unique("life");
    let _g = Cleanup(c, id.clone());
    c.ctr_run(&["-d"], &id, &["sleep", "1000"]).check("run -d");
    assert_eq!(c.task_status(&id), "RUNNING");
    let st = c.runtime_state(&id).expect("skiff state of the ctr task");
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap();

    let fifo = c.fifo_dir.to_str().unwrap();
    let script = "echo in-exec; echo ppid=$PPID; exit 5";
    let o = c.ctr(&[
        "task",
        "exec",
        "--fifo-dir",
        fifo,
        "--exec-id",
        "e1",
        &id,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(o.code, 5, "{o:?}");
    assert!(o.stdout.starts_with("in-exec\nppid=0\n"), "{o:?}");

    let o = c.ctr(&[
        "task",
        "exec",
        "--fifo-dir",
        fifo,
        "-d",
        "--exec-id",
        "e2",
        &id,
        "sleep",
        "500",
    ]);
    o.check("exec -d");
    assert!(
        poll(10, || {
            let ps = c.ctr(&["task", "ps", &id]).check("task ps");
            ps.stdout.contains(&pid.to_string()) && ps.stdout.lines().count() == 3
        }),
        "task ps: {:?}",
        c.ctr(&["task", "ps", &id])
    );

    c.ctr(&["task", "pause", &id]).check("pause");
    assert_eq!(c.task_status(&id), "PAUSED");
    assert_eq!(c.runtime_state(&id).unwrap()["status"], "paused");
    let freezer = format!("/sys/fs/cgroup/freezer/{}/{id}/freezer.state", c.ns);
    assert_eq!(fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    c.ctr(&["task", "resume", &id]).check("resume");
    assert_eq!(c.task_status(&id), "RUNNING");
    assert_eq!(fs::read_to_string(&freezer).unwrap().trim(), "THAWED");

    c.ctr(&["task", "kill", "-s", "SIGKILL", &id]).check("kill");
    assert!(poll(10, || c.task_status(&id) == "STOPPED"), "not stopped");
    let o = c.ctr(&["task", "delete", &id]).check("task delete");
    assert!(o.all().contains("exit code 137"), "{o:?}");
    assert!(c.runtime_state(&id).is_none(), "skiff still knows {id}");
    assert!(!Path::new(&freezer).exists(), "cgroup left: {freezer}");
}

/// `ctr task kill -a` kills every process of the container (`kill --all`).
fn kill_all(ctx: &mut Ctx) {
    let c = containerd(ctx);
    let id = crate::unique("all");
    let _g = Cleanup(c, id.clone());
    let script = "sleep 1000 & sleep 1000 & wait";
    c.ctr_run(&["-d"], &id, &["sh", "-c", script])
        .check("run -d");
    assert!(poll(10, || {
        c.ctr(&["task", "ps", &id]).stdout.lines().count() == 4
    }));
    // sh as pid 1 ignores SIGTERM: a plain kill changes nothing...
    c.ctr(&["task", "kill", "-s", "SIGTERM", &id]).check("kill");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(c.ctr(&["task", "ps", &id]).stdout.lines().count(), 4);
    // ...but `-a` reaches the sleeps too; then sh's wait returns and it exits.
    c.ctr(&["task", "kill", "-a", "-s", "SIGTERM", &id])
        .check("kill -a");
    assert!(poll(10, || c.task_status(&id) == "STOPPED"), "not stopped");
    let o = c.ctr(&["task", "delete", &id]).check("task delete");
    assert!(
        !o.all().contains("exit code"),
        "sh exits 0 after wait: {o:?}"
    );
}

/// A container and an exec with a terminal (`--console-socket`): the
/// process sees a pty on stdin, its output and exit code reach ctr.
fn tty(ctx: &mut Ctx) {
    let c = containerd(ctx);
    let id = crate::unique("tty");
    let _g = Cleanup(c, id.clone());
    let script = "'tty; [ -t 0 ] && echo isatty; exit 4'";
    let line = format!(
        "{} run -t --rm {} localhost/busybox:latest {id} sh -c {script}",
        c.ctr_line(""),
        c.run_flags()
    );
    let o = run_tty(&line);
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stdout.contains("/dev/pts/0\nisatty\n"), "{o:?}");

    c.ctr_run(&["-d"], &id, &["sleep", "1000"]).check("run -d");
    let line = format!(
        "{} task exec -t --fifo-dir {} --exec-id t1 {id} sh -c {script}",
        c.ctr_line(""),
        c.fifo_dir.display()
    );
    let o = run_tty(&line);
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stdout.contains("/dev/pts/"), "{o:?}");
    assert!(o.stdout.contains("isatty\n"), "{o:?}");
}

/// A missing and a non-executable entrypoint: ctr fails and shows the
/// runtime's error, which containerd read from the `log.json` skiff wrote;
/// nothing is left in the runtime's root.
fn failing_entrypoint(ctx: &mut Ctx) {
    let c = containerd(ctx);
    for (arg, want) in [
        (
            "/nonexistent",
            r#"exec: "/nonexistent": stat /nonexistent: no such file or directory"#,
        ),
        (
            "nonexistent",
            r#"exec: "nonexistent": executable file not found in $PATH"#,
        ),
        ("/etc/passwd", r#"exec: "/etc/passwd": permission denied"#),
    ] {
        let id = crate::unique("fail");
        let _g = Cleanup(c, id.clone());
        let o = c.ctr_run(&["--rm"], &id, &[arg]);
        assert_ne!(o.code, 0, "{o:?}");
        assert!(o.stderr.contains("OCI runtime create failed"), "{o:?}");
        assert!(o.stderr.contains(want), "want {want:?} in {o:?}");
        assert!(
            !o.stderr.contains("unable to retrieve OCI runtime error"),
            "{o:?}"
        );
        assert!(!c.runc_root.join(&c.ns).join(&id).exists(), "state left");
    }
}

/// The README's `ctr run --rm --runc-binary <skiff> IMAGE ID echo ...`
/// line, with our address, namespace, runtime root and fifo dir, the local
/// image and a unique id.
fn readme_line(ctx: &mut Ctx) {
    let c = containerd(ctx);
    let line = crate::readme::command("ctr", "ctr");
    assert_eq!(line[0], "run", "{line:?}");
    let image = line
        .iter()
        .position(|w| w.contains("busybox"))
        .expect("a busybox image");
    let id = crate::unique("readme");
    let _g = Cleanup(c, id.clone());
    let (root, fifo) = (c.runc_root.display(), c.fifo_dir.display());
    let (root, fifo) = (root.to_string(), fifo.to_string());
    let mut a = vec!["run", "--runc-root", &root, "--fifo-dir", &fifo];
    a.extend(line[1..image].iter().map(String::as_str));
    a.extend(["localhost/busybox:latest", &id]);
    a.extend(line[image + 2..].iter().map(String::as_str));
    let o = c.ctr(&a);
    let want = line[image + 3..].join(" ");
    assert_eq!(o.check("ctr run").stdout, format!("{want}\n"));
}
