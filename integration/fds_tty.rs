//! File descriptors reaching the container, and the console socket.
use crate::{Bundle, Rt, TempDir, output, require_root};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::time::Duration;

/// `run` with the file `leak` dup2'ed onto `fd` (not CLOEXEC) in the
/// runtime's process only, so parallel tests do not inherit it.
fn run_with_fd(rt: &Rt, b: &Bundle, fd: RawFd, extra: &[&str]) -> crate::Out {
    let path = rt.root.path().join(format!("leak-{fd}"));
    std::fs::write(&path, "the-inherited-file\n").unwrap();
    let leak = std::fs::File::open(&path).unwrap();
    let src = leak.as_raw_fd();
    let id = rt.id("fds");
    let mut c = rt.cmd();
    c.arg("run")
        .arg("--bundle")
        .arg(b.path())
        .args(extra)
        .arg(&id);
    // SAFETY: only dup2/fcntl, which are async-signal-safe, runs between fork and exec.
    unsafe {
        c.pre_exec(move || {
            // dup2(fd, fd) is a no-op that keeps FD_CLOEXEC: clear it.
            let r = if src == fd {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(src, fd)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = output(c);
    drop(leak);
    o
}

fn fds(out: &str) -> Vec<u32> {
    let mut v: Vec<u32> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn only_stdio_reaches_the_container() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    // `ls /proc/$$/fd` lists the shell's fds, not those of `ls` itself
    // (the `; true` keeps ash from exec'ing `ls` in place of itself).
    b.args(&["sh", "-c", "ls /proc/$$/fd; true"]);
    let o = run_with_fd(&rt, &b, 5, &[]).check("run with an inherited fd 5");
    assert_eq!(fds(&o.stdout), [0, 1, 2], "inherited fds leaked: {o:?}");
    let o = run_with_fd(&rt, &b, 3, &[]).check("run with an inherited fd 3");
    assert_eq!(
        fds(&o.stdout),
        [0, 1, 2],
        "fd 3 leaked without --preserve-fds: {o:?}"
    );
}

#[test]
fn preserve_fds() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["sh", "-c", "ls /proc/$$/fd; head -n 1 <&3"]);
    let o = run_with_fd(&rt, &b, 3, &["--preserve-fds", "1"]).check("run --preserve-fds 1");
    let mut lines = o.stdout.lines().collect::<Vec<_>>();
    let name = lines.pop().unwrap();
    assert_eq!(
        name, "the-inherited-file",
        "fd 3 is not the caller's file: {o:?}"
    );
    assert_eq!(fds(&lines.join(" ")), [0, 1, 2, 3]);
}

/// Gives the runtime's process (only: parallel tests must not inherit
/// them) the files `files[i]` as fds 3, 4, ... (not CLOEXEC).
fn pass_fds(c: &mut std::process::Command, files: &[std::fs::File]) {
    let srcs: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: only fcntl/dup2, which are async-signal-safe, run between
    // fork and exec; `srcs` was allocated before the fork.
    unsafe {
        c.pre_exec(move || {
            // First out of the way of the targets, then onto them.
            let mut high = [0; 8];
            for (i, src) in srcs.iter().enumerate() {
                high[i] = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, 100);
                if high[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, h) in high.iter().take(srcs.len()).enumerate() {
                if libc::dup2(*h, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// `ls -l /proc/$$/fd` output as (fd, link target) pairs, sorted.
fn fd_links(out: &str) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = out
        .lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let fd = left.split_whitespace().last()?.parse().ok()?;
            Some((fd, target.to_string()))
        })
        .collect();
    v.sort();
    v
}

/// The fds a container process may have: stdio and, of 3..3+n, the ones
/// the caller really passed (`passed`), each its own file.
fn check_fds(what: &str, out: &crate::Out, n: usize, passed: bool) {
    let links = fd_links(&out.stdout);
    let fds: Vec<u32> = links.iter().map(|l| l.0).collect();
    let mut want = vec![0, 1, 2];
    if passed {
        want.extend((0..n as u32).map(|i| 3 + i));
    }
    assert_eq!(
        fds, want,
        "{what}: the process's fds are not stdio + the preserved ones: {out:?}"
    );
    for (fd, target) in links.iter().filter(|l| l.0 >= 3) {
        assert!(
            target.ends_with(&format!("/preserved-{fd}")),
            "{what}: fd {fd} is {target}, not the caller's file: {out:?}"
        );
    }
}

/// `--preserve-fds` 0..4 on create, run and exec, with the caller passing
/// fds 3.. (real files) and without: the process has exactly stdio and the
/// passed files, at their numbers; no fd of the runtime's (exec fifo, sync
/// socket, ...) ever reaches it (CVE-2024-21626 class).
#[test]
fn preserve_fds_pass_only_the_callers_fds() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    // ls runs as the shell's child and lists the shell's fds.
    let script = "ls -l /proc/$$/fd; true";
    let files = |n: usize| -> Vec<std::fs::File> {
        (0..n)
            .map(|i| {
                let p = rt.root.path().join(format!("preserved-{}", 3 + i));
                std::fs::write(&p, "x").unwrap();
                std::fs::File::open(&p).unwrap()
            })
            .collect()
    };
    b.args(&["sh", "-c", script]);
    for n in 0..=4usize {
        for passed in [true, false] {
            // runc 1.1.5 hands on whatever its own process has at 3.. (or
            // fails when nothing is there): only skiff gets this case right.
            if !passed && n > 0 && !crate::is_skiff() {
                continue;
            }
            let given = if passed { files(n) } else { vec![] };
            let nn = n.to_string();
            let what = format!("--preserve-fds {n}, caller passes them: {passed}");
            // run
            let id = rt.id("pfds");
            let mut c = rt.cmd();
            c.args(["run", "--preserve-fds", &nn, "--bundle"])
                .arg(b.path())
                .arg(&id);
            pass_fds(&mut c, &given);
            let o = output(c);
            assert!(o.ok(), "run {what}: {o:?}");
            check_fds(&format!("run {what}"), &o, n, passed);
            // create + start: the output goes to create's stdout file.
            let id = rt.id("pfds");
            let mut c = rt.cmd();
            c.args(["create", "--preserve-fds", &nn, "--bundle"])
                .arg(b.path())
                .arg(&id);
            pass_fds(&mut c, &given);
            rt.detached(c, &format!("create-{id}")).check("create");
            rt.out(&["start", &id]).check("start");
            rt.wait_status(&id, "stopped");
            let out = crate::Out {
                code: Some(0),
                stdout: std::fs::read_to_string(rt.root.path().join(format!("create-{id}.out")))
                    .unwrap(),
                stderr: String::new(),
            };
            check_fds(&format!("create {what}"), &out, n, passed);
        }
    }
    // exec into a running container.
    let id = rt.sleeper(&b);
    for n in 0..=4usize {
        for passed in [true, false] {
            if !passed && n > 0 && !crate::is_skiff() {
                continue;
            }
            let given = if passed { files(n) } else { vec![] };
            let mut c = rt.cmd();
            c.args([
                "exec",
                "--preserve-fds",
                &n.to_string(),
                &id,
                "sh",
                "-c",
                script,
            ]);
            pass_fds(&mut c, &given);
            let o = output(c);
            let what = format!("exec --preserve-fds {n}, caller passes them: {passed}");
            assert!(o.ok(), "{what}: {o:?}");
            check_fds(&what, &o, n, passed);
        }
    }
}

/// Receives one fd sent with SCM_RIGHTS over a connection to `listener`.
fn receive_fd(listener: &UnixListener) -> RawFd {
    let (stream, _) = listener.accept().unwrap();
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            return fds[0];
        }
    }
    panic!("no fd in the console socket message");
}

/// A console socket in a tempdir: a thread takes the pty master the runtime
/// sends over it and reads it until the container's side is gone.
pub struct ConsoleSocket {
    _dir: TempDir,
    path: std::path::PathBuf,
    rx: std::sync::mpsc::Receiver<String>,
}

impl ConsoleSocket {
    pub fn new(tag: &str) -> ConsoleSocket {
        let dir = TempDir::new(tag);
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let fd = receive_fd(&listener);
            let _ = tx.send(read_master(fd));
        });
        ConsoleSocket {
            _dir: dir,
            path,
            rx,
        }
    }
    /// The value for `--console-socket`.
    pub fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
    /// Everything the container wrote to its terminal.
    pub fn output(&self) -> String {
        self.rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no pty output")
    }
}

/// Reads a pty master until the slave side is gone (EIO) or EOF.
fn read_master(fd: RawFd) -> String {
    // SAFETY: we own the received fd.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn terminal_via_console_socket() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let console = ConsoleSocket::new("console");
    b.edit(|c| c["process"]["terminal"] = serde_json::json!(true));
    b.args(&[
        "sh",
        "-c",
        "tty; test -t 0 && test -t 1 && test -t 2 && echo all-tty; ls -l /dev/console | cut -c1",
    ]);
    let id = rt.id("tty");
    rt.run_detached(&b, &id, &["--console-socket", console.arg()])
        .check("run -d --console-socket");
    let text = console.output();
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines, ["/dev/pts/0", "all-tty", "c"], "{text:?}");
    assert!(
        text.contains("\r\n"),
        "output did not go through a tty line discipline: {text:?}"
    );
}

#[test]
fn terminal_without_console_socket_fails_for_create() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["process"]["terminal"] = serde_json::json!(true));
    let id = rt.id("notty");
    let o = rt.create(&b, &id, &[]);
    assert_eq!(
        o.code,
        Some(1),
        "create with terminal=true needs --console-socket: {o:?}"
    );
    assert!(!rt.root.path().join(&id).exists());
}

#[test]
fn console_socket_without_terminal_fails() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let dir = TempDir::new("console2");
    let sock = dir.path().join("console.sock");
    let _listener = UnixListener::bind(&sock).unwrap();
    b.args(&["true"]);
    let id = rt.id("sockonly");
    let o = rt.run_detached(&b, &id, &["--console-socket", sock.to_str().unwrap()]);
    assert_eq!(
        o.code,
        Some(1),
        "--console-socket with terminal=false must fail: {o:?}"
    );
}

/// systemd socket activation, as runc does it: LISTEN_FDS=N set for the
/// runtime's own pid passes fds 3..3+N (before the --preserve-fds ones)
/// and tells the container LISTEN_FDS=N, LISTEN_PID=1.
#[test]
fn listen_fds_are_passed_with_their_env() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let marker = rt.root.path().join("listen-marker");
    let extra = rt.root.path().join("extra-marker");
    std::fs::write(&marker, "").unwrap();
    std::fs::write(&extra, "").unwrap();
    b.args(&[
        "sh",
        "-c",
        "readlink /proc/self/fd/3; readlink /proc/self/fd/4; echo \"$LISTEN_FDS $LISTEN_PID\"",
    ]);
    let id = rt.id("listen");
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg("exec 3<\"$1\" 4<\"$2\"; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$3\" --root \"$4\" run --preserve-fds 1 --bundle \"$5\" \"$6\"")
        .arg("sh")
        .args([&marker, &extra])
        .arg(crate::runtime())
        .arg(rt.root.path())
        .arg(b.path())
        .arg(&id)
        .stdin(std::process::Stdio::null());
    let o = crate::output(c).check("run with LISTEN_FDS");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{o:?}");
    assert!(lines[0].ends_with("listen-marker"), "fd 3: {o:?}");
    assert!(
        lines[1].ends_with("extra-marker"),
        "fd 4 (--preserve-fds 1): {o:?}"
    );
    assert_eq!(lines[2], "1 1", "LISTEN_FDS LISTEN_PID: {o:?}");
}
