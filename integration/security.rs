//! One regression test per container-escape CVE class (issue 7). Each test
//! states the weakened build it was checked against: the defence was
//! temporarily reverted in src/, the test run and seen to fail, and the
//! defence restored.
use crate::*;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;

fn exec(rt: &Rt, args: &[&str]) -> Out {
    let mut v = vec!["exec"];
    v.extend_from_slice(args);
    rt.out(&v)
}

/// A created (not started) container: its init is the runtime's own code,
/// waiting in the container's pid namespace as pid 1.
fn created(rt: &Rt, b: &Bundle) -> String {
    b.args(&["true"]);
    let id = rt.id("created");
    rt.create(b, &id, &[]).check("create");
    id
}

/// CVE-2019-5736: a container must never reach the host's runtime binary
/// through /proc/<pid>/exe of a runtime process in its pid namespace.
/// Without CAP_SYS_PTRACE the waiting init is not even inspectable
/// (non-dumpable); with it, its exe is either another file (a sealed memfd
/// copy) or the host file behind a read-only mount: opening it with O_TRUNC
/// fails with EROFS, which the kernel checks before ETXTBSY (so the test
/// does not depend on the binary being busy).
/// Checked failing: (1) with `seal::ensure_sealed` returning at once, the
/// CAP_SYS_PTRACE probe saw the host binary's dev:ino and "Text file busy";
/// (2) without the `set_dumpable(false)` in init, the plain probe could
/// read /proc/1/fd/0.
#[test]
fn cve_2019_5736_runtime_binary_is_out_of_reach() {
    require_root!();
    if !is_skiff() {
        skip!(
            "runc 1.1.5 leaves its init dumpable (inspectable through /proc) while it waits for start: this test fails against it (checked), which shows it detects that"
        );
    }
    let rt = Rt::new();
    let b = Bundle::new();
    let id = created(&rt, &b);
    let o = exec(
        &rt,
        &[
            &id,
            "sh",
            "-c",
            "readlink /proc/1/fd/0 >/dev/null 2>&1 && echo visible; stat -L -c %d:%i /proc/1/exe 2>/dev/null || echo denied",
        ],
    );
    let o = o.check("exec probe");
    assert_eq!(o.stdout.trim(), "denied", "init is inspectable: {o:?}");
    let o = exec(
        &rt,
        &[
            "--cap",
            "CAP_SYS_PTRACE",
            &id,
            "sh",
            "-c",
            "stat -L -c %d:%i /proc/1/exe; (: >/proc/1/exe) 2>&1 && echo written; true",
        ],
    );
    let o = o.check("exec probe with CAP_SYS_PTRACE");
    let host = fs::metadata(runtime()).unwrap();
    let host_id = format!("{}:{}", host.dev(), host.ino());
    let got = o.stdout.lines().next().unwrap_or("");
    assert!(!got.is_empty(), "{o:?}");
    assert!(
        got != host_id || o.stdout.contains("Read-only file system"),
        "/proc/1/exe is the writable host binary {host_id}: {o:?}"
    );
    assert!(!o.stdout.contains("written"), "{o:?}");
}

/// CVE-2021-30465: a mount destination that is a symlink in the image to
/// an absolute host path lands inside the rootfs, never on the host path.
/// Checked failing: openat2 without RESOLVE_IN_ROOT (paths.rs) put the
/// bind on the host directory in the container's mount namespace, so the
/// container saw no marker.
#[test]
fn cve_2021_30465_symlinked_mount_destination_stays_in_rootfs() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let host = TempDir::new("escape-target");
    let src = TempDir::new("escape-src");
    fs::write(src.path().join("marker"), "inside\n").unwrap();
    std::os::unix::fs::symlink(host.path(), b.rootfs().join("evil")).unwrap();
    b.mount(json!({"destination": "/evil", "type": "bind",
                   "source": src.path(), "options": ["rbind"]}));
    let inside = host.path().join("marker");
    let o = rt.sh(&b, &format!("cat {}", inside.display())).check("run");
    assert_eq!(o.stdout.trim(), "inside", "{o:?}");
    // The link's target was created under the rootfs, and the host dir is untouched.
    let rel = host.path().strip_prefix("/").unwrap();
    assert!(b.rootfs().join(rel).is_dir());
    assert_eq!(fs::read_dir(host.path()).unwrap().count(), 0);
}

/// `run` with a host directory fd leaked into the runtime (not CLOEXEC) as fd 7.
fn run_with_dir_fd(rt: &Rt, b: &Bundle, dir: &Path) -> Out {
    let d = fs::File::open(dir).unwrap();
    let src = d.as_raw_fd();
    let id = rt.id("leak");
    let mut c = rt.cmd();
    c.arg("run").arg("--bundle").arg(b.path()).arg(&id);
    // SAFETY: only dup2, which is async-signal-safe, runs between fork and exec.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(src, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = output(c);
    drop(d);
    o
}

/// CVE-2024-21626: a leaked host directory fd must not become the cwd via
/// process.cwd = /proc/self/fd/7, and no runtime fd reaches the process.
/// Checked failing: with `enter_cwd` replaced by a plain chdir (and
/// `make_cwd` by create_dir_all), the run succeeded and `ls ..` listed the
/// host directory's parent.
#[test]
fn cve_2024_21626_no_leaked_fd_or_cwd_outside_rootfs() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let host = TempDir::new("leaked-dir");
    fs::write(host.path().join("host-secret"), "x").unwrap();
    b.edit(|c| c["process"]["cwd"] = json!("/proc/self/fd/7"));
    b.args(&["sh", "-c", "pwd; ls"]);
    let o = run_with_dir_fd(&rt, &b, host.path());
    assert!(
        !o.stdout.contains("host-secret"),
        "cwd escaped the rootfs: {o:?}"
    );
    // The normal case: cwd inside, only stdio open.
    b.edit(|c| c["process"]["cwd"] = json!("/tmp"));
    b.args(&["sh", "-c", "readlink /proc/self/cwd; ls /proc/$$/fd; true"]);
    let o = run_with_dir_fd(&rt, &b, host.path()).check("run");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"/tmp"), "{o:?}");
    let mut fds: Vec<u32> = lines[1..].iter().filter_map(|l| l.parse().ok()).collect();
    fds.sort();
    assert_eq!(fds, [0, 1, 2], "{o:?}");
}

/// CVE-2025-31133: maskedPaths are masked with the real null device only.
/// A /dev/null that is a plain file (here bound from the host by a config
/// mount) must make the runtime fail, not bind that file over /proc/kcore.
/// Checked failing: without the char-1:3 check in `open_dev_null`, the run
/// succeeded and the masked /proc/kcore showed the planted file.
#[test]
fn cve_2025_31133_masked_paths_need_the_real_dev_null() {
    require_root!();
    if !is_skiff() {
        skip!(
            "runc 1.1.5 predates the CVE-2025-31133 fix and binds whatever /dev/null is: this test fails against it (checked), which shows it detects that"
        );
    }
    let rt = Rt::new();
    let b = Bundle::new();
    let planted = TempDir::new("planted");
    let file = planted.path().join("not-null");
    fs::write(&file, "planted\n").unwrap();
    b.mount(json!({"destination": "/dev/null", "type": "bind",
                   "source": file, "options": ["bind"]}));
    let o = rt.sh(&b, "cat /proc/kcore 2>&1 | head -c 7");
    assert!(
        !o.stdout.contains("planted"),
        "masked with a planted file: {o:?}"
    );
    assert_ne!(o.code, Some(0), "a fake /dev/null must fail the run: {o:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "planted\n");
}

/// CVE-2025-52565: /dev/console is the container's own pty slave (opened
/// with TIOCGPTPEER, bound by fd), even over a host file the config binds
/// at /dev/console. Checked failing: with `mount_console` skipped, the
/// console's device numbers differed from the tty's (it was the host file).
#[test]
fn cve_2025_52565_console_is_the_containers_pty() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let planted = TempDir::new("console-planted");
    let file = planted.path().join("console");
    fs::write(&file, "").unwrap();
    b.mount(json!({"destination": "/dev/console", "type": "bind",
                   "source": file, "options": ["bind"]}));
    b.edit(|c| c["process"]["terminal"] = json!(true));
    b.args(&["sh", "-c", "stat -L -c %t:%T /dev/console $(tty)"]);
    let console = crate::fds_tty::ConsoleSocket::new("console-sock");
    let id = rt.id("console");
    rt.run_detached(&b, &id, &["--console-socket", console.arg()])
        .check("run -d --console-socket");
    let text = console.output();
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert_eq!(lines[0], lines[1], "/dev/console is not the pty: {text:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "");
}

/// CVE-2025-52565, the symlink and the race: with no /dev tmpfs, the image's
/// own /dev/console is a symlink to /proc/version, and then a host
/// thread keeps swapping it between that symlink and a plain file while
/// containers start with a terminal. The pty must land on /dev/console and
/// never on the symlink's target (or the run fails cleanly).
/// skiff replaces the symlink with a file of its own and binds the pty by
/// fd. Checked failing on the previous code: the first run failed with
/// "set up /dev: create /dev/console: ELOOP" (it refused a symlinked
/// console outright); and with only mount_console's lookup reverted to
/// `mkdir_all(.., Leaf::File)`, racing runs failed with "readlink
/// dev/console: ENOENT".
#[test]
fn cve_2025_52565_console_symlink_is_not_followed() {
    require_root!();
    if !is_skiff() {
        skip!("runc 1.1.5 binds the console through the symlink (the CVE)");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.retain(|m| m["destination"] != "/dev");
        c["process"]["terminal"] = json!(true);
    });
    b.args(&[
        "sh",
        "-c",
        "stat -L -c %t:%T /dev/console $(tty); stat -c %F /proc/version",
    ]);
    let console = b.rootfs().join("dev/console");
    fs::create_dir_all(console.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/proc/version", &console).unwrap();
    check_console_run(&rt, &b, "console-link", true);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = fs::remove_file(&console);
                let _ = std::os::unix::fs::symlink("/proc/version", &console);
                let _ = fs::remove_file(&console);
                let _ = fs::write(&console, "");
            }
        })
    };
    for i in 0..10 {
        check_console_run(&rt, &b, &format!("console-race{i}"), false);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().unwrap();
}

/// One detached run with a console socket: either a clean refusal naming
/// /dev/console, or /proc/version untouched and, when nothing races
/// (`settled`), the pty on /dev/console. While the flipper runs, the name
/// /dev/console may be swapped again after our mount (the container shares
/// the image's /dev), so only the first run checks it.
fn check_console_run(rt: &Rt, b: &Bundle, tag: &str, settled: bool) {
    let console = crate::fds_tty::ConsoleSocket::new("console-sock");
    let id = rt.id(tag);
    let o = rt.run_detached(b, &id, &["--console-socket", console.arg()]);
    if !o.ok() && !settled {
        assert!(o.stderr.contains("/dev/console"), "{tag}: {o:?}");
        return;
    }
    o.check(tag);
    let text = console.output();
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        !text.contains("character special file"),
        "{tag}: the pty landed on /proc/version: {text:?}"
    );
    if settled {
        assert_eq!(lines.len(), 3, "{tag}: {text:?}");
        assert_eq!(
            lines[0], lines[1],
            "{tag}: /dev/console is not the pty: {text:?}"
        );
        assert_eq!(lines[2], "regular empty file", "{tag}: {text:?}");
    }
}

/// CVE-2025-52881: init's /proc writes check that the fd is on procfs.
/// Config mounts inside /proc are refused up front, so the attack's mount
/// comes from elsewhere: a createContainer hook (in the container's mount
/// namespace, before pivot_root, like a racing container on a shared
/// mount) binds a host directory over /proc/sys. The sysctl write must
/// then fail instead of writing into the host file.
/// Checked failing: without the fstatfs check in `procfs::proc_write`, the
/// run succeeded and the host file contained "1".
#[test]
fn cve_2025_52881_proc_writes_are_not_redirected() {
    require_root!();
    if !is_skiff() {
        skip!(
            "runc 1.1.5 predates the CVE-2025-52881 fix and writes through a redirected /proc/sys: this test fails against it (checked), which shows it detects that"
        );
    }
    let rt = Rt::new();
    let b = Bundle::new();
    let fake = TempDir::new("fake-sys");
    let f = fake.path().join("net/ipv4/ip_forward");
    fs::create_dir_all(f.parent().unwrap()).unwrap();
    fs::write(&f, "0\n").unwrap();
    let script = format!(
        "mount --bind {} {}/proc/sys",
        fake.path().display(),
        b.rootfs().display()
    );
    b.edit(|c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        c["hooks"] = json!({"createContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    });
    let o = rt.sh(&b, "true");
    assert_ne!(
        o.code,
        Some(0),
        "the redirected sysctl write succeeded: {o:?}"
    );
    assert!(o.stderr.contains("not on procfs"), "{o:?}");
    assert_eq!(fs::read_to_string(&f).unwrap(), "0\n");
}

fn cap_inh(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapInh:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// CVE-2022-29162: no inheritable capabilities unless the config asks:
/// not in the default spec, not for init, not for `exec --cap`.
/// Checked failing: `add_caps` also adding to the inheritable set made the
/// exec probe report a non-zero CapInh.
#[test]
fn cve_2022_29162_no_inheritable_caps_by_default() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    assert!(b.config()["process"]["capabilities"]["inheritable"].is_null());
    let o = rt.sh(&b, "cat /proc/self/status").check("run");
    assert_eq!(cap_inh(&o.stdout), "0000000000000000", "{o:?}");
    let id = rt.sleeper(&b);
    let o = exec(
        &rt,
        &["--cap", "CAP_SYS_ADMIN", &id, "cat", "/proc/self/status"],
    );
    let o = o.check("exec --cap");
    assert_eq!(cap_inh(&o.stdout), "0000000000000000", "{o:?}");
}
