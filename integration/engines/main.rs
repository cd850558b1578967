//! Real container engines drive skiff (issue 6): containerd 1.6 + ctr,
//! the containerd CRI plugin, podman 4.3 and dockerd 20.10, all installed
//! from apt and pointed at the skiff binary built by cargo; buildah 1.28
//! and `docker build` run Containerfile steps under it (issue 15).
//!
//! This is its own test target with its own harness (`harness = false`):
//! each daemon is started once for the whole target, with all of its state
//! (root, state, sockets, cgroup parent) in a tempdir or under a unique
//! name, and a guard that on drop kills it, kills the shims and containers
//! it left, unmounts what it mounted under the tempdir and removes the
//! cgroups it made, even when a test panicked. Tests run one after another
//! (2 cores are shared); a failing test does not stop the others.
//!
//! `cargo test --test engines -- ctr` runs the tests whose name contains
//! `ctr`. An engine whose binary is missing is skipped with the reason
//! (scripts/test.sh installs them with apt first); a skip is a failure when
//! `REQUIRE_ENGINES=1`.

mod buildah;
mod containerd;
mod cri;
mod docker;
mod images;
mod podman;
mod readme;
#[path = "../runtime_under_test.rs"]
mod runtime_under_test;
#[path = "../shared.rs"]
mod shared;

pub use runtime_under_test::{is_skiff, runtime};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A unique short name for this run (container ids, cgroup parents).
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("skiff-eng-{tag}-{}-{n}", std::process::id())
}

/// A directory under the system temp dir, removed on drop (after anything
/// mounted below it is unmounted).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(tag));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        unmount_under(&self.0);
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Lazily unmounts every mount at or below `dir`, deepest first (overlay
/// rootfs, shm, netns bind mounts the daemons left behind).
pub fn unmount_under(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix_umount(&p);
    }
}

fn nix_umount(p: &str) -> std::io::Result<()> {
    let c = std::ffi::CString::new(p).unwrap();
    // SAFETY: umount2 with a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Removes the cgroup directory `rel` (and everything below it) from every
/// v1 hierarchy and the unified one, deepest first. Only empty cgroups can
/// be removed; a busy one is reported, not hidden.
pub fn remove_cgroup(rel: &str) {
    let Ok(hiers) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hiers.flatten() {
        let top = h.path().join(rel.trim_start_matches('/'));
        if !top.is_dir() {
            continue;
        }
        let mut dirs = Vec::new();
        collect_dirs(&top, &mut dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.as_os_str().len()));
        for d in dirs {
            if let Err(e) = fs::remove_dir(&d) {
                eprintln!("warning: cannot remove cgroup {}: {e}", d.display());
            }
        }
    }
}

fn collect_dirs(d: &Path, out: &mut Vec<PathBuf>) {
    out.push(d.to_path_buf());
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// Kills (SIGKILL) every process whose command line contains `needle`
/// (the shims a daemon started for our socket or state dir) and that is
/// not this process.
pub fn kill_procs_matching(needle: &str) {
    let me = std::process::id().to_string();
    let Ok(rd) = fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmd).contains(needle) {
            // SAFETY: kill(2) on a pid read from /proc; at worst ESRCH.
            unsafe { libc::kill(name.parse().unwrap(), libc::SIGKILL) };
        }
    }
}

/// The result of one engine command.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
    /// Panics with the whole output unless the exit code is 0.
    pub fn check(self, what: &str) -> Out {
        assert!(self.ok(), "{what}: {self:?}");
        self
    }
    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `prog args` to completion under `timeout` (so a hung engine fails
/// the test instead of hanging the suite), stdin from /dev/null.
pub fn run(prog: &str, args: &[&str]) -> Out {
    run_env(prog, args, &[])
}

pub fn run_env(prog: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
    let o = Command::new("timeout")
        .args(["-k", "5", "90", prog])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {prog}: {e}"));
    use std::os::unix::process::ExitStatusExt;
    let code = o
        .status
        .code()
        .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0));
    if code == 124 {
        panic!("{prog} {args:?} timed out after 90s");
    }
    Out {
        code,
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Runs a shell command line under a pseudo-terminal (`script -qec`), for
/// engine commands that insist on a console (`ctr run -t`, `docker run -t`).
/// The output has the terminal's CRLF line ends turned into LF.
pub fn run_tty(cmdline: &str) -> Out {
    let mut o = run("script", &["-qec", cmdline, "/dev/null"]);
    o.stdout = o.stdout.replace("\r\n", "\n").replace('\r', "");
    o
}

/// Polls `f` every 50ms until it is true or `secs` pass.
pub fn poll(secs: u64, f: impl FnMut() -> bool) -> bool {
    shared::poll_every(secs, Duration::from_millis(50), f)
}

/// The runtime's own `state` of a container an engine made, under `root`
/// (None: the runtime's default root, as podman leaves it); None when the
/// runtime does not know it.
pub fn runtime_state(root: Option<&Path>, id: &str) -> Option<serde_json::Value> {
    let mut args = Vec::new();
    if let Some(r) = root {
        args.extend(["--root", r.to_str().unwrap()]);
    }
    args.extend(["state", id]);
    let o = run(runtime().to_str().unwrap(), &args);
    o.ok().then(|| serde_json::from_str(&o.stdout).unwrap())
}

/// True when `prog` is found in PATH (or is an existing path).
pub fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A daemon started by a test, with a log file; killed on drop (SIGTERM,
/// then SIGKILL after 10s), then its `cleanup` runs.
pub struct Daemon {
    pub name: &'static str,
    child: std::process::Child,
    pub log: PathBuf,
    cleanup: Vec<Box<dyn FnOnce()>>,
}

impl Daemon {
    pub fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Daemon {
        let f = fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Daemon {
            name,
            child,
            log,
            cleanup: Vec::new(),
        }
    }
    /// Adds a step to run after the daemon is gone (in order).
    pub fn on_drop(&mut self, f: impl FnOnce() + 'static) {
        self.cleanup.push(Box::new(f));
    }
    /// Panics with the tail of the log unless `ready` turns true in 30s.
    pub fn wait_ready(&mut self, ready: impl FnMut() -> bool) {
        if !poll(30, ready) {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!("{} did not start:\n{}", self.name, tail.join("\n"));
        }
    }
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let exited = poll(10, || matches!(self.child.try_wait(), Ok(Some(_))));
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for f in self.cleanup.drain(..) {
            f();
        }
    }
}

type TestFn = fn(&mut Ctx);

/// Shared state of one run: the images and the daemons, started on first
/// use and stopped when the run ends.
pub struct Ctx {
    pub work: TempDir,
    pub images: Option<images::Images>,
    pub containerd: Option<containerd::Containerd>,
    pub podman: Option<podman::Podman>,
    pub docker: Option<docker::Docker>,
    pub buildah: Option<buildah::Buildah>,
}

impl Ctx {
    pub fn images(&mut self) -> &images::Images {
        if self.images.is_none() {
            self.images = Some(images::Images::build(self.work.path()));
        }
        self.images.as_ref().unwrap()
    }
}

/// Outcome of one test, as raised by `skip!`.
pub struct Skip(pub String);

/// Skips the current test with a printed reason (a failure when
/// `REQUIRE_ENGINES=1`).
#[macro_export]
macro_rules! skip {
    ($($t:tt)*) => {
        std::panic::panic_any($crate::Skip(format!($($t)*)))
    };
}

fn tests() -> Vec<(&'static str, TestFn)> {
    let mut t = Vec::new();
    t.extend(containerd::tests());
    t.extend(cri::tests());
    t.extend(podman::tests());
    t.extend(docker::tests());
    t.extend(buildah::tests());
    t.extend(readme::tests());
    t
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let list = std::env::args().any(|a| a == "--list");
    let selected: Vec<_> = tests()
        .into_iter()
        .filter(|(n, _)| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())))
        .collect();
    if list {
        for (n, _) in &selected {
            println!("{n}: test");
        }
        return;
    }
    let require = std::env::var("REQUIRE_ENGINES").as_deref() == Ok("1");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIP: the engine tests need root");
        std::process::exit(if require { 1 } else { 0 });
    }
    println!(
        "running {} engine tests against {}",
        selected.len(),
        runtime().display()
    );
    let start = Instant::now();
    let (mut failed, mut skipped) = (Vec::new(), Vec::new());
    // Quiet the default hook: failures are reported once, below.
    std::panic::set_hook(Box::new(|_| {}));
    let mut ctx = Ctx {
        work: TempDir::new("work"),
        images: None,
        containerd: None,
        podman: None,
        docker: None,
        buildah: None,
    };
    for (name, f) in &selected {
        let t0 = Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut ctx)));
        let secs = t0.elapsed().as_secs_f32();
        match r {
            Ok(()) => println!("test {name} ... ok ({secs:.1}s)"),
            Err(e) => {
                if let Some(Skip(why)) = e.downcast_ref::<Skip>() {
                    println!("test {name} ... SKIP: {why}");
                    skipped.push(*name);
                } else {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    println!("test {name} ... FAILED ({secs:.1}s)\n{msg}\n");
                    failed.push(*name);
                }
            }
        }
    }
    // Daemons stop (and clean up) before the work dir goes.
    ctx.buildah = None;
    ctx.docker = None;
    ctx.podman = None;
    ctx.containerd = None;
    drop(ctx);
    // The closing line in the plain "N passed, N failed" form CI reads.
    println!("\nengine tests took {:.1}s", start.elapsed().as_secs_f32());
    println!(
        "engines: {} passed, {} failed, {} skipped",
        selected.len() - failed.len() - skipped.len(),
        failed.len(),
        skipped.len(),
    );
    if !failed.is_empty() {
        println!("failed: {failed:?}");
    }
    if !failed.is_empty() || (require && !skipped.is_empty()) {
        std::process::exit(1);
    }
}
