//! The kernel's floor for `run` of scripts/bench.sh's bundle: the system
//! calls that bundle asks of any runtime, and nothing else. Not part of
//! skiff; `scripts/bench.sh` builds and times it beside `skiff run`, to
//! show how much of run's time is the kernel's (issue 17: "a target that
//! the kernel itself makes unreachable ... with the measurement that shows
//! why").
//!
//! It does, with plain paths and no checks beyond each call's result:
//! - the state a later `state`/`kill`/`delete` needs (a directory, a state
//!   file, the exec fifo);
//! - one cgroup per hierarchy this process is in (v1, and the v2 or
//!   unified one), with the default device rules that runc's spec implies;
//! - a clone into the bundle's namespaces (pid, mount, uts, ipc, net) and
//!   the cgroups (the cheapest ways in, as skiff: clone3 into the v2 one,
//!   `tasks` for each v1 one); in the child: rlimit, setsid, `lo` up, a
//!   session keyring named `_ses.ID`, the bundle's mounts (a v1 cgroup mount being a tmpfs
//!   with each hierarchy bound read-only on it), the default devices and
//!   /dev symlinks, pivot_root, hostname, the read-only root,
//!   readonlyPaths, maskedPaths, the capability bounding set, then exec of
//!   the program;
//! - wait for it, then remove the cgroups and the state.
//!
//! What it leaves out is the runtime's own work: reading and checking
//! config.json, resolving paths safely inside the rootfs (openat2), the
//! create/start handshake, sealing its binary, logging.
//!
//! Usage (as root): floor run ROOTFS STATE_ROOT ID PROGRAM [ARG...]
//! (`create` instead of `run` stops where init would wait for `start`, and
//! leaves it so: `floor delete STATE_ROOT ID` removes it).
use std::ffi::{CString, c_char};
use std::fs;
use std::io::Write;

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL in paths")
}

/// Panics with the call's errno when `r` is -1.
fn ok(r: libc::c_long, what: &str) -> libc::c_long {
    if r == -1 {
        panic!("{what}: {}", std::io::Error::last_os_error());
    }
    r
}

fn mount(src: &str, dst: &str, fstype: &str, flags: libc::c_ulong, data: &str) {
    let (s, d, t, o) = (c(src), c(dst), c(fstype), c(data));
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            d.as_ptr(),
            if fstype.is_empty() {
                std::ptr::null()
            } else {
                t.as_ptr()
            },
            flags,
            if data.is_empty() {
                std::ptr::null()
            } else {
                o.as_ptr().cast()
            },
        )
    };
    ok(r.into(), dst);
}

/// The cgroup directories for `id`: one under each hierarchy of
/// /proc/self/cgroup (the v1 `name=` ones by their name).
fn cgroups(id: &str) -> Vec<String> {
    let own = fs::read_to_string("/proc/self/cgroup").expect("/proc/self/cgroup");
    let mut dirs = Vec::new();
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
        let mnt = match ctrl {
            "" if std::path::Path::new("/sys/fs/cgroup/unified").exists() => "unified",
            "" => "",
            c => c.trim_start_matches("name="),
        };
        let base = format!("/sys/fs/cgroup/{mnt}{path}").replace("//", "/");
        dirs.push(format!("{}/{id}", base.trim_end_matches('/')));
    }
    dirs
}

/// A v1 hierarchy's directory (v2 has no `tasks` file).
fn is_v1(dir: &str) -> bool {
    std::path::Path::new(&format!("{dir}/tasks")).exists()
}

const DEVICE_RULES: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:8 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:5 rwm",
    "c 1:9 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if let [_, mode, root, id] = &a[..]
        && mode == "delete"
    {
        delete(root, id);
        return;
    }
    let [_, mode, rootfs, root, id, args @ ..] = &a[..] else {
        panic!(
            "usage: floor run|create ROOTFS STATE_ROOT ID PROGRAM [ARG...] | floor delete STATE_ROOT ID"
        );
    };
    // create: as `create` does, stop where init would wait for `start`.
    let create = mode == "create";
    // Init tells the parent it is set up (create only: run waits for it).
    let ready = create.then(|| {
        let mut p = [0i32; 2];
        // SAFETY: pipe2(2) into a local array.
        ok(
            unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }.into(),
            "pipe",
        );
        p
    });
    let dir = format!("{root}/{id}");
    let _ = fs::create_dir(root);
    fs::create_dir(&dir).expect("state dir");
    fs::write(format!("{dir}/state.json"), [b' '; 1600]).expect("state file");
    let fifo = c(&format!("{dir}/exec.fifo"));
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    ok(
        unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }.into(),
        "mkfifo",
    );

    let cgs = cgroups(id);
    for d in &cgs {
        fs::create_dir(d).unwrap_or_else(|e| panic!("mkdir {d}: {e}"));
        if let Some(parent) = d.strip_suffix(id).filter(|_| d.contains("/cpuset/")) {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = fs::read_to_string(format!("{parent}{f}")).expect("cpuset");
                fs::write(format!("{d}/{f}"), v.trim()).expect("cpuset");
            }
        }
        if d.contains("/devices/") {
            fs::write(format!("{d}/devices.deny"), "a").expect("devices.deny");
            let mut allow = fs::OpenOptions::new()
                .write(true)
                .open(format!("{d}/devices.allow"))
                .expect("devices.allow");
            for rule in DEVICE_RULES {
                allow.write_all(rule.as_bytes()).expect("devices.allow");
            }
        }
    }

    let flags = libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET;
    // The cheapest ways into the cgroups: clone3 straight into the v2 (or
    // unified) one, and the child writes "0" to each v1 hierarchy's `tasks`
    // (neither takes the kernel's global threadgroup lock for writing).
    let v2 = cgs
        .iter()
        .find(|d| !is_v1(d))
        .map(|d| fs::File::open(d).unwrap_or_else(|e| panic!("open {d}: {e}")));
    let mut ca = [0u64; 11]; // struct clone_args
    ca[0] = flags as u64;
    ca[4] = libc::SIGCHLD as u64;
    if let Some(f) = &v2 {
        ca[0] |= 0x2_0000_0000; // CLONE_INTO_CGROUP
        ca[10] = std::os::fd::AsRawFd::as_raw_fd(f) as u64;
    }
    // SAFETY: clone3(2) without CLONE_VM or a stack is a fork(2); this
    // program is single-threaded; `ca` outlives the call.
    let pid = ok(
        unsafe { libc::syscall(libc::SYS_clone3, ca.as_ptr(), std::mem::size_of_val(&ca)) },
        "clone3",
    );
    if pid == 0 {
        child(rootfs, args, &cgs, ready.map(|[_, w]| w), id);
    }
    if let Some([r, w]) = ready {
        // SAFETY: close(2) of our write end, read(2) into a local byte.
        unsafe {
            libc::close(w);
            let mut b = 0u8;
            ok(
                libc::read(r, (&mut b as *mut u8).cast(), 1) as libc::c_long,
                "ready",
            );
        }
        fs::write(format!("{dir}/pid"), pid.to_string()).expect("pid");
        return;
    }
    let mut status = 0;
    // SAFETY: waitpid(2) on our own child, into a local.
    ok(
        unsafe { libc::waitpid(pid as i32, &mut status, 0) }.into(),
        "waitpid",
    );
    for d in &cgs {
        fs::remove_dir(d).unwrap_or_else(|e| panic!("rmdir {d}: {e}"));
    }
    fs::remove_dir_all(&dir).expect("remove state");
    if libc::WIFSIGNALED(status) {
        std::process::exit(128 + libc::WTERMSIG(status));
    }
    std::process::exit(libc::WEXITSTATUS(status));
}

/// Kills a `create`d floor container and removes its cgroups and state.
fn delete(root: &str, id: &str) {
    let dir = format!("{root}/{id}");
    let pid: i32 = fs::read_to_string(format!("{dir}/pid"))
        .expect("pid")
        .parse()
        .expect("pid");
    // SAFETY: kill(2) of the pid we recorded.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let cgs = cgroups(id);
    for d in &cgs {
        // Its pid namespace's init: the cgroup empties once it is gone.
        while fs::read_to_string(format!("{d}/cgroup.procs")).is_ok_and(|p| !p.trim().is_empty()) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        fs::remove_dir(d).unwrap_or_else(|e| panic!("rmdir {d}: {e}"));
    }
    fs::remove_dir_all(&dir).expect("remove state");
}

fn child(rootfs: &str, args: &[String], cgs: &[String], ready: Option<i32>, id: &str) -> ! {
    for d in cgs.iter().filter(|d| is_v1(d)) {
        fs::write(format!("{d}/tasks"), "0").unwrap_or_else(|e| panic!("join {d}: {e}"));
    }
    let nofile = libc::rlimit {
        rlim_cur: 1024,
        rlim_max: 1024,
    };
    // SAFETY: plain system calls on locals and constants.
    unsafe {
        ok(
            libc::setrlimit(libc::RLIMIT_NOFILE, &nofile).into(),
            "setrlimit",
        );
        ok(libc::setsid().into(), "setsid");
        let s = ok(
            libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0).into(),
            "socket",
        ) as i32;
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[..2].copy_from_slice(&[b'l' as c_char, b'o' as c_char]);
        ifr.ifr_ifru.ifru_flags = libc::IFF_UP as i16;
        ok(
            libc::ioctl(s, libc::SIOCSIFFLAGS as _, &ifr).into(),
            "lo up",
        );
        libc::close(s);
        // Named per container, as runc and skiff name it: a new keyring
        // each time, whose name the kernel looks up among all of them first.
        let ring = c(&format!("_ses.{id}"));
        ok(
            libc::syscall(libc::SYS_keyctl, 1, ring.as_ptr()), // KEYCTL_JOIN_SESSION_KEYRING
            "keyring",
        );
    }
    let (nosuid, nodev, noexec, ro) = (
        libc::MS_NOSUID,
        libc::MS_NODEV,
        libc::MS_NOEXEC,
        libc::MS_RDONLY,
    );
    mount("", "/", "", libc::MS_REC | libc::MS_SLAVE, "");
    mount(rootfs, rootfs, "", libc::MS_BIND | libc::MS_REC, "");
    let at = |p: &str| format!("{rootfs}{p}");
    mount("proc", &at("/proc"), "proc", 0, "");
    mount(
        "tmpfs",
        &at("/dev"),
        "tmpfs",
        nosuid | libc::MS_STRICTATIME,
        "mode=755,size=65536k",
    );
    for d in ["/dev/pts", "/dev/shm", "/dev/mqueue"] {
        fs::create_dir(at(d)).expect("mkdir in /dev");
    }
    mount(
        "devpts",
        &at("/dev/pts"),
        "devpts",
        nosuid | noexec,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    );
    mount(
        "shm",
        &at("/dev/shm"),
        "tmpfs",
        nosuid | noexec | nodev,
        "mode=1777,size=65536k",
    );
    mount(
        "mqueue",
        &at("/dev/mqueue"),
        "mqueue",
        nosuid | noexec | nodev,
        "",
    );
    mount(
        "sysfs",
        &at("/sys"),
        "sysfs",
        nosuid | noexec | nodev | ro,
        "",
    );
    let cgroup = at("/sys/fs/cgroup");
    mount(
        "tmpfs",
        &cgroup,
        "tmpfs",
        nosuid | noexec | nodev,
        "mode=755",
    );
    for d in cgs.iter().filter(|d| is_v1(d)) {
        let name = d
            .trim_start_matches("/sys/fs/cgroup/")
            .split('/')
            .next()
            .unwrap_or("");
        let dst = format!("{cgroup}/{name}");
        fs::create_dir(&dst).expect("mkdir cgroup mountpoint");
        let f = nosuid | noexec | nodev | ro | libc::MS_RELATIME | libc::MS_BIND;
        mount(d, &dst, "", f | libc::MS_REC, "");
        mount("", &dst, "", f | libc::MS_REMOUNT, "");
    }
    mount(
        "",
        &cgroup,
        "",
        nosuid | noexec | nodev | ro | libc::MS_REMOUNT,
        "mode=755",
    );
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let p = c(&at(&format!("/dev/{name}")));
        // SAFETY: mknod(2) with a NUL-terminated path.
        ok(
            unsafe {
                libc::mknod(
                    p.as_ptr(),
                    libc::S_IFCHR | 0o666,
                    libc::makedev(major, minor),
                )
            }
            .into(),
            "mknod",
        );
    }
    for (target, link) in [
        ("pts/ptmx", "ptmx"),
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ] {
        std::os::unix::fs::symlink(target, at(&format!("/dev/{link}"))).expect("symlink");
    }
    let (dot, slash) = (c("."), c("/"));
    let root = c(rootfs);
    // SAFETY: chdir/pivot_root/umount2 with NUL-terminated paths.
    unsafe {
        ok(libc::chdir(root.as_ptr()).into(), "chdir");
        ok(
            libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()),
            "pivot_root",
        );
        mount("", ".", "", libc::MS_REC | libc::MS_SLAVE, "");
        ok(
            libc::umount2(dot.as_ptr(), libc::MNT_DETACH).into(),
            "umount old root",
        );
        ok(libc::chdir(slash.as_ptr()).into(), "chdir /");
        ok(libc::sethostname(c"runc".as_ptr(), 4).into(), "sethostname");
    }
    mount("", "/", "", ro | libc::MS_REMOUNT | libc::MS_BIND, "");
    for p in [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ] {
        if fs::symlink_metadata(p).is_ok() {
            mount(p, p, "", libc::MS_BIND | libc::MS_REC, "");
            mount("", p, "", ro | libc::MS_REMOUNT | libc::MS_BIND, "");
        }
    }
    for p in [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/scsi",
    ] {
        match fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => mount("tmpfs", p, "tmpfs", ro, ""),
            Ok(_) => mount("/dev/null", p, "", libc::MS_BIND, ""),
            Err(_) => {}
        }
    }
    // The bundle's bounding set: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE.
    let last: i32 = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    for cap in 0..=last {
        if ![29, 5, 10].contains(&cap) {
            // SAFETY: prctl(2) with integer arguments.
            unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        }
    }
    if let Some(fd) = ready {
        // SAFETY: write(2) of one byte from a local; pause(2).
        unsafe {
            libc::write(fd, b"1".as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    let cargs: Vec<CString> = args.iter().map(|a| c(a)).collect();
    let mut argv: Vec<*const c_char> = cargs.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let envp = [c"PATH=/bin".as_ptr(), std::ptr::null()];
    // SAFETY: execve(2) with NULL-terminated arrays of NUL-terminated strings.
    unsafe { libc::execve(argv[0], argv.as_ptr(), envp.as_ptr()) };
    panic!(
        "exec {:?}: {}",
        args.first(),
        std::io::Error::last_os_error()
    );
}
