//! The runtime with openat2 really unavailable (DESIGN.md, security item 10:
//! "a no-openat2 fallback run"). A classic seccomp filter, installed in the
//! runtime's `pre_exec`, makes syscall 437 fail with ENOSYS, as on Linux
//! < 5.6, under valgrind, or behind a container-in-container seccomp profile
//! (or with EPERM, what Docker-style profiles answer for unknown syscalls).
//! The filter is inherited by everything the runtime starts, so every path
//! the runtime resolves under the rootfs goes through its userspace resolver.
//!
//! Checked failing: with the fallback disabled (`openat2` in
//! src/rootfs/paths.rs calling only the syscall), `run` failed with
//! `mounts[0]: mount proc on /proc: filesystem "proc" must be mounted on
//! ordinary directory`, so both `fallback_run_*` tests failed.
#![cfg(target_arch = "x86_64")]
use crate::*;
use serde_json::json;
use std::os::unix::process::CommandExt;

/// openat2 on x86_64 (asm/unistd_64.h).
const SYS_OPENAT2: u32 = 437;
/// AUDIT_ARCH_X86_64 (linux/audit.h): EM_X86_64 | __AUDIT_ARCH_64BIT | LE.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

/// Allows everything but openat2 on x86_64, which fails with `errno`.
/// Other architectures (x32/i386 entry points) are let through untouched.
fn no_openat2_filter(errno: i32) -> Vec<libc::sock_filter> {
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    vec![
        stmt(ld, 4), // seccomp_data.arch
        jump(AUDIT_ARCH_X86_64, 0, 3),
        stmt(ld, 0), // seccomp_data.nr
        jump(SYS_OPENAT2, 0, 1),
        stmt(ret, libc::SECCOMP_RET_ERRNO | errno as u32),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Installs `filter` on the calling thread. Async-signal-safe (one prctl),
/// so it may run between fork and exec. Root needs no no_new_privs.
fn install(filter: &[libc::sock_filter]) -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `filter`, which outlives the call; the
    // kernel copies the program.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `Rt::run`, with the no-openat2 filter installed in the runtime.
fn run_without_openat2(rt: &Rt, b: &Bundle, id: &str, errno: i32) -> Out {
    let mut c = rt.cmd();
    c.arg("run").arg("--bundle").arg(b.path()).arg(id);
    let filter = no_openat2_filter(errno);
    // SAFETY: the closure only calls prctl(2), which is async-signal-safe,
    // and reads `filter`, allocated before the fork.
    unsafe {
        c.pre_exec(move || install(&filter));
    }
    output(c)
}

/// The filter itself, in a forked child: openat2 fails with the chosen
/// errno while openat still works. Without this, a filter that matched
/// nothing would make the container tests pass vacuously.
#[test]
fn filter_makes_openat2_fail() {
    require_root!();
    for errno in [libc::ENOSYS, libc::EPERM] {
        assert_eq!(
            probe_in_child(errno),
            0,
            "errno {errno}: 1: install failed, 2: openat2 not failing so, 3: openat failed"
        );
    }
}

/// Forks a child that installs the filter and probes; its exit status.
fn probe_in_child(errno: i32) -> i32 {
    let filter = no_openat2_filter(errno);
    let how = [libc::O_PATH as u64 | libc::O_CLOEXEC as u64, 0, 0];
    // SAFETY: the child only makes raw syscalls and _exits (no allocation,
    // no locks), so forking a multi-threaded test process is sound.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = child_probe(&filter, &how, errno);
        // SAFETY: _exit ends the forked child without running the parent's atexit state.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waitpid on our own child, with a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "status {status:#x}");
    libc::WEXITSTATUS(status)
}

/// In the forked child: 0 when openat2 fails with `errno` and openat works.
fn child_probe(filter: &[libc::sock_filter], how: &[u64; 3], errno: i32) -> i32 {
    if install(filter).is_err() {
        return 1;
    }
    let root = c"/";
    // SAFETY: valid NUL-terminated path and a 24-byte open_how of the right size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            root.as_ptr(),
            how.as_ptr(),
            std::mem::size_of_val(how),
        )
    };
    // last_os_error only reads errno: no allocation after the fork.
    if r != -1 || std::io::Error::last_os_error().raw_os_error() != Some(errno) {
        return 2;
    }
    // SAFETY: valid NUL-terminated path; the fd is closed at _exit.
    if unsafe { libc::openat(libc::AT_FDCWD, root.as_ptr(), libc::O_PATH) } < 0 {
        return 3;
    }
    0
}

/// Sets up `b` for `fallback_run`: the CVE-2021-30465
/// setup (a mount destination symlinked to a host path), a destination
/// behind a link that climbs past the root, a masked file of our own (the
/// default masked paths depend on the kernel config) and a missing cwd.
fn hostile_bundle(b: &Bundle, host: &Path, src: &Path) {
    let root = b.rootfs();
    std::os::unix::fs::symlink(host, root.join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../..", root.join("etc/up")).unwrap();
    for dst in ["/evil", "/etc/up/clamped"] {
        b.mount(json!({"destination": dst, "type": "bind",
                       "source": src, "options": ["rbind"]}));
    }
    fs::write(root.join("etc/secret"), "secret\n").unwrap();
    b.edit(|c| {
        c["process"]["cwd"] = json!("/work/dir");
        c["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/etc/secret"));
    });
    let script = format!(
        "grep Seccomp: /proc/self/status; pwd; cat {}/marker /clamped/marker; \
         stat -c %t:%T /etc/secret; cat /proc/self/mountinfo",
        host.display()
    );
    b.args(&["sh", "-c", &script]);
}

/// The default mounts and a read-only /proc/sys, from the container's mountinfo.
fn check_default_mounts(o: &Out) {
    for (dst, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
        ("/proc/sys", "proc"),
    ] {
        let m = mountinfo_at(&o.stdout, dst);
        assert!(
            m.iter().any(|f| f.contains(&fstype)),
            "{dst} ({fstype}) missing: {o:?}"
        );
    }
    let sys = mountinfo_at(&o.stdout, "/proc/sys");
    assert!(
        sys.iter().any(|f| f[5].split(',').any(|x| x == "ro")),
        "{o:?}"
    );
}

/// A full `run` without openat2: the default mounts, a masked file and the
/// read-only paths are in place, process.cwd is created inside, and
/// symlinked mount destinations (absolute, and `..` past the root) are
/// clamped to the rootfs as openat2's RESOLVE_IN_ROOT would.
#[test]
fn fallback_run_mounts_and_clamps() {
    require_root!();
    if !is_skiff() {
        skip!("tests skiff's own no-openat2 path resolution");
    }
    fallback_run(libc::ENOSYS);
}

/// The same under a filter that answers EPERM, which skiff also takes for
/// "no openat2" (see `openat2_works` in src/rootfs/paths.rs).
#[test]
fn fallback_run_under_an_eperm_filter() {
    require_root!();
    if !is_skiff() {
        skip!("tests skiff's own no-openat2 path resolution");
    }
    fallback_run(libc::EPERM);
}

/// `run` of `hostile_bundle` with openat2 failing with `errno`, and its checks.
fn fallback_run(errno: i32) {
    let rt = Rt::new();
    let b = Bundle::new();
    let host = TempDir::new("no-openat2-target");
    let src = TempDir::new("no-openat2-src");
    fs::write(src.path().join("marker"), "inside\n").unwrap();
    hostile_bundle(&b, host.path(), src.path());
    let id = rt.id("no-openat2");
    let o = run_without_openat2(&rt, &b, &id, errno).check("run without openat2");
    let lines: Vec<&str> = o.stdout.lines().collect();
    // Our filter reached the container: the runtime really ran under it.
    assert_eq!(lines[0].split_whitespace().nth(1), Some("2"), "{o:?}");
    let want = ["/work/dir", "inside", "inside", "1:3"];
    assert_eq!(lines[1..5], want, "{o:?}");
    check_default_mounts(&o);
    // The links' targets were created under the rootfs; the host is untouched.
    let rel = host.path().strip_prefix("/").unwrap();
    assert!(b.rootfs().join(rel).is_dir());
    assert!(b.rootfs().join("clamped").is_dir());
    assert_eq!(fs::read_dir(host.path()).unwrap().count(), 0);
}
