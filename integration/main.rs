//! End-to-end tests of the runtime binary.
//!
//! The binary under test is `$RUNTIME` if set, else the `skiff` built by
//! cargo. `RUNTIME=/usr/sbin/runc cargo test --test integration` runs the
//! very same tests against runc: that proves the expectations are right,
//! not merely that skiff agrees with itself.
//!
//! Every test gets its own `--root` tempdir, its own bundle and unique
//! container ids, so the tests run in parallel. A `Rt` guard deletes
//! (`delete --force`) every container it handed out an id for.
//! Nothing here sleeps to synchronise: waits are bounded polling loops.

mod cgroup;
mod cgroup_v1;
mod cgroup_v1_events;
mod cgroup_v1_ops;
mod cgroup_v1_pause;
mod cli;
mod cli_parity;
mod completion;
mod conformance;
mod criu;
mod exec;
mod failures;
mod faults;
mod fds_tty;
mod features;
mod hooks;
mod lifecycle;
mod man;
mod namespaces;
mod netdev;
mod no_openat2;
mod parity;
mod privilege;
mod process;
mod rdt;
mod rootfs;
mod rootless;
mod runtime_under_test;
mod sched;
mod seal;
mod seccomp;
mod security;
mod shared;
mod systemd;
mod terminal;
mod userns;

pub use runtime_under_test::{is_skiff, runtime};
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Skips the test (with a printed reason) when not root; with
/// `REQUIRE_ROOT_TESTS=1` a skip is a failure, so CI cannot hide skips.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            if std::env::var("REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
                panic!("this test needs root and REQUIRE_ROOT_TESTS=1");
            }
            eprintln!("SKIP: this test needs root");
            return;
        }
    };
}

/// Prints why a test is skipped and returns from it.
#[macro_export]
macro_rules! skip {
    ($($t:tt)*) => {{
        eprintln!("SKIP: {}", format!($($t)*));
        return;
    }};
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("{tag}-{}-{n}", std::process::id())
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("skiff-it-{}", unique(tag)));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The result of one runtime invocation.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                o.status.signal().map(|s| 128 + s)
            }),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    /// stderr with each logrus line (runc's format, and skiff's) reduced to
    /// its unquoted message: what a person reads, whatever the log format.
    pub fn err(&self) -> String {
        self.stderr
            .lines()
            .map(|l| logrus_text(l).map_or(l.to_string(), |(_, msg, _)| msg))
            .collect::<Vec<_>>()
            .join("\n")
    }
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
    /// Panics with the full output unless the exit code is 0.
    pub fn check(self, what: &str) -> Out {
        assert!(
            self.ok(),
            "{what}: exit {:?}\nstdout: {}\nstderr: {}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion, with a bound so a hung runtime fails the test
/// instead of hanging the suite. Only for commands whose stdio no container
/// keeps open after the runtime exits (foreground `run`, `state`, ...).
pub fn output(mut cmd: Command) -> Out {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn runtime");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(o) => Out::from(o.expect("wait runtime")),
        Err(_) => {
            // SAFETY: kill(2) on a pid we spawned and have not reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("runtime did not finish within 60s: {cmd:?}");
        }
    }
}

/// Polls `f` every 10ms until it is true or `secs` pass.
pub fn poll(secs: u64, f: impl FnMut() -> bool) -> bool {
    shared::poll_every(secs, Duration::from_millis(10), f)
}

/// One `--root` state directory plus the containers created under it.
pub struct Rt {
    pub root: TempDir,
    ids: Mutex<Vec<String>>,
}

impl Rt {
    pub fn new() -> Rt {
        Rt {
            root: TempDir::new("root"),
            ids: Mutex::new(Vec::new()),
        }
    }
    /// A fresh container id, deleted (forcibly) when the `Rt` drops.
    pub fn id(&self, name: &str) -> String {
        let id = unique(&format!("it-{name}"));
        self.ids.lock().unwrap().push(id.clone());
        id
    }
    /// `<runtime> --root <root>`, stdin from /dev/null.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(runtime());
        c.arg("--root").arg(self.root.path()).stdin(Stdio::null());
        c
    }
    /// Runs `<runtime> --root R args...` to completion.
    pub fn out(&self, args: &[&str]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        output(c)
    }
    /// `run --bundle B [extra] ID` in the foreground.
    pub fn run(&self, b: &Bundle, id: &str, extra: &[&str]) -> Out {
        let mut c = self.cmd();
        c.arg("run")
            .arg("--bundle")
            .arg(b.path())
            .args(extra)
            .arg(id);
        output(c)
    }
    /// Sets `args` to `sh -c script` and runs it with a fresh id.
    pub fn sh(&self, b: &Bundle, script: &str) -> Out {
        b.args(&["sh", "-c", script]);
        let id = self.id("sh");
        self.run(b, &id, &[])
    }
    /// A command whose stdio goes to files: the container (not only the
    /// runtime) holds it, so pipes would never see EOF.
    pub fn detached(&self, mut c: Command, tag: &str) -> Out {
        let o = self.root.path().join(format!("{tag}.out"));
        let e = self.root.path().join(format!("{tag}.err"));
        c.stdout(fs::File::create(&o).unwrap())
            .stderr(fs::File::create(&e).unwrap());
        let mut child = c.spawn().expect("spawn runtime");
        let mut status = None;
        if !poll(60, || {
            status = child.try_wait().unwrap();
            status.is_some()
        }) {
            let _ = child.kill();
            panic!("runtime did not finish within 60s: {c:?}");
        }
        let status = status.unwrap();
        Out::from(Output {
            status,
            stdout: fs::read(&o).unwrap(),
            stderr: fs::read(&e).unwrap(),
        })
    }
    /// `create --bundle B [extra] ID`.
    pub fn create(&self, b: &Bundle, id: &str, extra: &[&str]) -> Out {
        let mut c = self.cmd();
        c.arg("create")
            .arg("--bundle")
            .arg(b.path())
            .args(extra)
            .arg(id);
        self.detached(c, &format!("create-{id}"))
    }
    /// `run --detach --bundle B [extra] ID`.
    pub fn run_detached(&self, b: &Bundle, id: &str, extra: &[&str]) -> Out {
        let mut c = self.cmd();
        c.arg("run")
            .arg("--detach")
            .arg("--bundle")
            .arg(b.path())
            .args(extra)
            .arg(id);
        self.detached(c, &format!("run-{id}"))
    }
    /// The parsed `state` JSON, or None when `state` fails.
    pub fn state(&self, id: &str) -> Option<Value> {
        let o = self.out(&["state", id]);
        if !o.ok() {
            return None;
        }
        Some(
            serde_json::from_str(&o.stdout)
                .unwrap_or_else(|e| panic!("state is not JSON ({e}): {}", o.stdout)),
        )
    }
    pub fn status(&self, id: &str) -> Option<String> {
        self.state(id)
            .and_then(|s| s["status"].as_str().map(String::from))
    }
    pub fn pid(&self, id: &str) -> i32 {
        self.state(id).expect("state")["pid"].as_i64().expect("pid") as i32
    }
    /// Polls `state` until the status is `want` (10s bound).
    pub fn wait_status(&self, id: &str, want: &str) {
        let mut last = None;
        let ok = poll(10, || {
            last = self.status(id);
            last.as_deref() == Some(want)
        });
        assert!(
            ok,
            "container {id} never became {want}; last status {last:?}"
        );
    }
    /// Starts a long-running detached container from `b`; returns its id.
    pub fn sleeper(&self, b: &Bundle) -> String {
        b.args(&["sleep", "1000"]);
        let id = self.id("sleeper");
        self.run_detached(b, &id, &[]).check("run --detach sleeper");
        self.wait_status(&id, "running");
        id
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        for id in self.ids.lock().unwrap().iter() {
            let pid = self
                .state(id)
                .and_then(|s| s["pid"].as_i64())
                .filter(|p| *p > 0);
            let mut c = self.cmd();
            c.args(["delete", "--force", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let deleted = c.status().is_ok_and(|s| s.success());
            if let (false, Some(pid)) = (deleted, pid) {
                // A runtime that cannot delete yet must not leave sleepers.
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

/// The busybox applets, read once from `busybox --list`.
fn applets() -> &'static Vec<String> {
    static A: OnceLock<Vec<String>> = OnceLock::new();
    A.get_or_init(|| {
        let o = Command::new(busybox())
            .arg("--list")
            .output()
            .expect("busybox --list");
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(String::from)
            .collect()
    })
}

/// The static busybox on the host.
pub fn busybox() -> &'static str {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("static busybox is needed (apt-get install busybox-static)")
}

/// A bundle in a tempdir: a busybox rootfs and the runtime's own `spec`.
pub struct Bundle {
    pub dir: TempDir,
}

impl Bundle {
    pub fn new() -> Bundle {
        let dir = TempDir::new("bundle");
        let root = dir.path().join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::copy(busybox(), root.join("bin/busybox")).unwrap();
        for a in applets() {
            if a != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(a));
            }
        }
        fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
        let o = output({
            let mut c = Command::new(runtime());
            c.arg("spec").arg("--bundle").arg(dir.path());
            c
        });
        assert!(
            o.ok(),
            "`spec` failed; the tests build every bundle with it: {o:?}"
        );
        let b = Bundle { dir };
        b.edit(|c| c["process"]["terminal"] = json!(false));
        b
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }
    pub fn config(&self) -> Value {
        serde_json::from_slice(&fs::read(self.path().join("config.json")).unwrap()).unwrap()
    }
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut c = self.config();
        f(&mut c);
        fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&c).unwrap(),
        )
        .unwrap();
    }
    pub fn args(&self, args: &[&str]) {
        self.edit(|c| c["process"]["args"] = json!(args));
    }
    /// Appends to `linux.namespaces`, or replaces the entry of the same type.
    pub fn namespace(&self, ns: Value) {
        self.edit(|c| {
            let list = c["linux"]["namespaces"].as_array_mut().unwrap();
            list.retain(|n| n["type"] != ns["type"]);
            list.push(ns);
        });
    }
    pub fn mount(&self, m: Value) {
        self.edit(|c| c["mounts"].as_array_mut().unwrap().push(m));
    }
    /// Sets each of `sets` in `process.capabilities` to `names`.
    pub fn capabilities(&self, sets: &[&str], names: Value) {
        self.edit(|c| {
            for set in sets {
                c["process"]["capabilities"][*set] = names.clone();
            }
        });
    }
}

/// The five capability sets of `process.capabilities`.
pub const ALL_CAP_SETS: [&str; 5] = [
    "bounding",
    "effective",
    "permitted",
    "inheritable",
    "ambient",
];

/// Splits a logrus text line (`time="2026-12-02T05:44:23Z" level=debug
/// msg="…" k=v…`) into (level, msg, the rest); None if it is not one.
pub fn logrus_text(line: &str) -> Option<(String, String, String)> {
    let rest = line.strip_prefix("time=\"")?;
    let (time, rest) = rest.split_at_checked(20)?;
    let b = time.as_bytes();
    let shape = b.iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        10 => *c == b'T',
        13 | 16 => *c == b':',
        19 => *c == b'Z',
        _ => c.is_ascii_digit(),
    });
    let rest = rest.strip_prefix("\" level=").filter(|_| shape)?;
    let (level, rest) = rest.split_once(" msg=")?;
    // msg is bare or a Go-quoted string.
    let (msg, rest) = match rest.strip_prefix('"') {
        Some(q) => {
            let mut end = None;
            let mut esc = false;
            for (i, c) in q.char_indices() {
                match (esc, c) {
                    (true, _) => esc = false,
                    (false, '\\') => esc = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end?;
            (q[..end].replace("\\\"", "\""), q[end + 1..].to_string())
        }
        None => match rest.split_once(' ') {
            Some((m, r)) => (m.to_string(), format!(" {r}")),
            None => (rest.to_string(), String::new()),
        },
    };
    Some((level.to_string(), msg, rest))
}

/// `readlink /proc/<who>/ns/<ns>` on the host, e.g. "net:[4026531833]".
pub fn host_ns(who: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{who}/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The mountinfo lines (split into fields) whose mount point is `dst`.
pub fn mountinfo_at<'a>(mountinfo: &'a str, dst: &str) -> Vec<Vec<&'a str>> {
    mountinfo
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 5 && f[4] == dst)
        .collect()
}

impl Default for Rt {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}
