//! Both seal paths (src/seal.rs) leave the runtime's /proc/self/exe
//! sealed: the entry's fast path (assembly, before the C library: a
//! detached read-only bind of the binary) and `ensure_sealed` (after it:
//! here its memfd copy). Which path runs is decided by privilege, no
//! switch needed: as root the entry's open_tree succeeds and `ensure_sealed`
//! finds the exe read-only; as an unprivileged user open_tree fails
//! (EPERM), the entry jumps to the C library, and `ensure_sealed` falls
//! back to the sealed memfd. (Its own read-only-bind branch runs only where
//! the entry does not, i.e. off x86_64.)
//!
//! The exe is looked at where it matters, the waiting init of a created
//! container, through /proc/<pid>/exe from the host (the same file the
//! container reaches; seals and mount flags are not readable with busybox),
//! and as root also from inside (with CAP_SYS_PTRACE, /proc/1/exe). A
//! rootless created init cannot be probed from inside: it is non-dumpable
//! and the user has no CAP_SYS_PTRACE over it, so `exec` into it is refused.
use crate::rootless::{as_user, rootless_bundle, user};
use crate::*;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// (seals, on a read-only mount) of /proc/<pid>/exe; seals -1 for a file
/// that is not a memfd.
fn exe_state(pid: i32) -> (libc::c_int, bool) {
    let f = fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    // SAFETY: fcntl(F_GET_SEALS) on a valid fd; -1 (EINVAL) for non-memfds.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    // SAFETY: struct statvfs is plain integers: all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatvfs writes one struct statvfs into `st`.
    assert_eq!(unsafe { libc::fstatvfs(f.as_raw_fd(), &mut st) }, 0);
    (seals, st.f_flag & libc::ST_RDONLY != 0)
}

/// The probe, run in the container with CAP_SYS_PTRACE: what /proc/1/exe
/// names, and whether it can be opened for writing (O_TRUNC: a read-only
/// mount or a seal refuses it before the busy-text check).
const PROBE: &str = "readlink /proc/1/exe; (: >/proc/1/exe) 2>&1 && echo written; true";

/// The syscalls of one runtime process (no children) that name
/// /proc/self/exe or re-execute, as strace prints them; None without strace.
fn strace_seal(rt: &Rt, args: &[&str]) -> Option<Vec<String>> {
    let dir = TempDir::new("strace");
    let log = dir.path().join("strace.log");
    let mut c = Command::new("strace");
    c.arg("-o")
        .arg(&log)
        .args(["-e", "trace=open,openat,execveat", "--"])
        .arg(runtime())
        .arg("--root")
        .arg(rt.root.path())
        .args(args)
        .stdin(Stdio::null());
    let o = c.output().ok()?;
    assert!(
        log.exists(),
        "strace failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = fs::read_to_string(&log).unwrap();
    Some(
        text.lines()
            .filter(|l| l.contains("/proc/self/exe") || l.starts_with("execveat("))
            .map(String::from)
            .collect(),
    )
}

/// The entry's assembly, not `ensure_sealed`, does the re-exec as root:
/// its raw open(2) with exactly O_RDONLY|O_CLOEXEC comes first (std's
/// look is an openat on glibc, an open with O_LARGEFILE added on musl),
/// then the only execveat; after it `ensure_sealed` finds the exe
/// read-only and does not re-exec. `state run` is enough: any "run"
/// argument makes both scans seal.
#[test]
fn seal_entry_fast_path_is_the_one_that_reexecs() {
    require_root!();
    if !is_skiff() {
        skip!("skiff's own entry point");
    }
    let rt = Rt::new();
    let Some(calls) = strace_seal(&rt, &["state", "run"]) else {
        skip!("strace is not installed")
    };
    let exec = calls.iter().position(|l| l.starts_with("execveat("));
    let exec = exec.unwrap_or_else(|| panic!("no re-exec: {calls:#?}"));
    let entrys = |l: &String| l.starts_with("open(\"/proc/self/exe\", O_RDONLY|O_CLOEXEC)");
    let stds = |l: &String| (l.starts_with("openat(") || l.starts_with("open(")) && !entrys(l);
    assert!(
        entrys(&calls[0]),
        "the first look at the exe is not the entry's: {calls:#?}"
    );
    assert!(
        !calls[..exec].iter().any(stds),
        "ensure_sealed ran before the re-exec: {calls:#?}"
    );
    assert_eq!(
        calls.iter().filter(|l| l.starts_with("execveat(")).count(),
        1,
        "{calls:#?}"
    );
    // After the re-exec: ensure_sealed's check, which finds it read-only.
    assert!(calls[exec + 1..].iter().any(stds), "{calls:#?}");
}

#[test]
fn seal_entry_fast_path_as_root_leaves_exe_read_only() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["true"]);
    let id = rt.id("seal-fast");
    rt.create(&b, &id, &[]).check("create");
    let (seals, rdonly) = exe_state(rt.pid(&id));
    let o = rt.out(&["exec", "--cap", "CAP_SYS_PTRACE", &id, "sh", "-c", PROBE]);
    let o = o.check("probe");
    assert!(!o.stdout.contains("written"), "{o:?}");
    if is_skiff() {
        // skiff as root: the detached read-only bind, which has no path
        // in any namespace ("/"), not a copy.
        assert!(
            rdonly,
            "init's exe is on a writable mount (seals {seals:#x})"
        );
        assert_eq!(o.stdout.lines().next(), Some("/"), "{o:?}");
        assert!(o.stdout.contains("Read-only file system"), "{o:?}");
    } else {
        // runc 1.1.5 always runs from a sealed memfd copy.
        assert!(
            rdonly || seals & SEALS == SEALS,
            "exe not sealed: {seals:#x}"
        );
    }
}

#[test]
fn seal_ensure_sealed_memfd_path_rootless_leaves_exe_sealed() {
    require_root!();
    let Some((uid, gid, _)) = user() else {
        skip!("setpriv, useradd or newuidmap missing")
    };
    let (b, root) = rootless_bundle(uid, gid);
    b.args(&["true"]);
    let (r, p) = (root.path().to_str().unwrap(), b.path().to_str().unwrap());
    let mut c = as_user(&["--root", r, "create", "--bundle", p, "seal-rl"]);
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    assert!(c.status().unwrap().success(), "rootless create");
    let state = output(as_user(&["--root", r, "state", "seal-rl"])).check("state");
    let pid = serde_json::from_str::<Value>(&state.stdout).unwrap()["pid"]
        .as_i64()
        .unwrap() as i32;
    let (seals, _) = exe_state(pid);
    let link = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let link = link.to_string_lossy();
    let written = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(format!("/proc/{pid}/exe"));
    output(as_user(&["--root", r, "delete", "--force", "seal-rl"])).check("delete");
    assert_eq!(
        seals & SEALS,
        SEALS,
        "init's exe is not a sealed memfd: {seals:#x}"
    );
    // skiff names its memfd "skiff", runc 1.1.5 "runc_cloned:/proc/self/exe".
    assert!(link.starts_with("/memfd:"), "{link:?}");
    assert!(written.is_err(), "root opened the sealed exe for writing");
}
