//! Foreground `run` and `exec` with `terminal: true` and no console socket:
//! the runtime attaches the caller's terminal (here a pty the test owns)
//! to the container's pty, in raw mode, with the caller's window size.
use crate::*;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::time::Duration;

/// Runs `cmd` with a fresh pty as its controlling terminal and stdio,
/// types `input`, and returns (exit code, everything it printed).
fn on_pty(mut cmd: Command, input: &str) -> (Option<i32>, String) {
    let ws = libc::winsize {
        ws_row: 33,
        ws_col: 101,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).unwrap();
    let slave: OwnedFd = pty.slave;
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    // SAFETY: setsid and TIOCSCTTY are async-signal-safe; they make the pty
    // the child's controlling terminal, as a login shell would have it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn runtime on a pty");
    // The Command holds copies of the slave too: all must go for EIO to come.
    drop(cmd);
    drop(slave);
    let mut master = std::fs::File::from(pty.master);
    master.write_all(input.as_bytes()).unwrap();
    let reader = master.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = reader;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the runtime (the last slave holder) has exited.
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(String::from_utf8_lossy(&out).into_owned());
    });
    let mut status = None;
    assert!(
        poll(30, || {
            status = child.try_wait().unwrap();
            status.is_some()
        }),
        "runtime on a pty did not finish"
    );
    let text = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    (status.unwrap().code(), text)
}

#[test]
fn foreground_run_attaches_the_callers_terminal() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["process"]["terminal"] = serde_json::json!(true));
    b.args(&["sh"]);
    let id = rt.id("fgtty");
    let mut c = rt.cmd();
    c.args(["run", "--bundle", b.path().to_str().unwrap(), &id]);
    let (code, text) = on_pty(c, "stty size; tty; echo hello-$((40+2)); exit 5\n");
    assert_eq!(code, Some(5), "{text:?}");
    assert!(
        text.contains("33 101"),
        "window size not passed on: {text:?}"
    );
    assert!(
        text.contains("/dev/pts/0"),
        "container stdin is not its own pty: {text:?}"
    );
    assert!(text.contains("hello-42"), "{text:?}");
    assert!(
        !rt.root.path().join(&id).exists(),
        "run left its state behind"
    );
}

#[test]
fn foreground_exec_with_tty() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.sleeper(&b);
    let mut c = rt.cmd();
    c.args(["exec", "-t", &id, "sh"]);
    let (code, text) = on_pty(c, "test -t 0 && echo stdin-is-tty; stty size; exit 3\n");
    assert_eq!(code, Some(3), "{text:?}");
    assert!(text.contains("stdin-is-tty"), "{text:?}");
    assert!(text.contains("33 101"), "{text:?}");
}
