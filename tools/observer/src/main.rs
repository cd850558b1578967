//! difftest's observer: the container process of every generated config.
//!
//! `obs` prints one view of what the process sees, as `key=value` lines
//! sorted by key, then runs the seccomp probes one at a time (each line
//! flushed before the next call, so a killed probe still leaves the lines
//! before it), then `end=1`. Things that legitimately vary between runs
//! (pids, mount ids, device numbers) are left out here; host paths of the
//! bundle and namespace inodes are normalised by the runner
//! (scripts/difftest/compare.py), which knows them.
//!
//! `obs hook KIND FILE`: the hook mode. Appends one line to FILE: KIND, the
//! hook's arguments, its environment and the state JSON read on stdin,
//! separated by tabs.
//!
//! No dependencies: a handful of libc calls are declared here, and the
//! binary is linked static so its own behaviour does not vary with the
//! rootfs.
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

extern "C" {
    fn fcntl(fd: i32, cmd: i32, ...) -> i32;
    fn syscall(num: i64, ...) -> i64;
    fn __errno_location() -> *mut i32;
    fn getcwd(buf: *mut u8, size: usize) -> *mut u8;
}

const F_GETFD: i32 = 1;
const F_GETFL: i32 = 3;

/// The calls a generated seccomp rule may target, as (label, nr, args).
/// None of them is made anywhere else by this program.
const PROBES: &[(&str, i64, [i64; 2])] = &[
    ("getppid", 110, [0, 0]),
    ("getpgrp", 111, [0, 0]),
    ("getpriority.0", 140, [0, 0]),
    ("getpriority.1", 140, [1, 0]),
    ("getsid.0", 124, [0, 0]),
    ("sched_yield", 24, [0, 0]),
    ("sysinfo", 99, [0, 0]),
    ("times", 100, [0, 0]),
    ("getitimer", 36, [0, 0]),
    ("alarm", 37, [0, 0]),
];

/// The sysctls a generated config may set (scripts/difftest/gen.py).
const SYSCTLS: &[&str] = &[
    "kernel/shmmax",
    "kernel/shmall",
    "kernel/msgmax",
    "kernel/msgmnb",
    "kernel/sem",
    "fs/mqueue/msg_max",
    "fs/mqueue/queues_max",
    "net/ipv4/ip_forward",
    "net/ipv4/ping_group_range",
    "net/core/somaxconn",
    "net/ipv4/tcp_syncookies",
];

/// Cgroup files read through /sys/fs/cgroup (v1 and v2 names).
const CGROUP_FILES: &[&str] = &[
    "memory/memory.limit_in_bytes",
    "memory/memory.soft_limit_in_bytes",
    "memory/memory.memsw.limit_in_bytes",
    "memory/memory.swappiness",
    "memory/memory.oom_control",
    "memory/memory.kmem.tcp.limit_in_bytes",
    "cpu/cpu.shares",
    "cpu/cpu.cfs_quota_us",
    "cpu/cpu.cfs_period_us",
    "cpu,cpuacct/cpu.shares",
    "cpuset/cpuset.cpus",
    "cpuset/cpuset.mems",
    "pids/pids.max",
    "blkio/blkio.weight",
    "blkio/blkio.bfq.weight",
    "devices/devices.list",
    "memory.max",
    "memory.low",
    "memory.high",
    "memory.swap.max",
    "cpu.weight",
    "cpu.max",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "io.weight",
    "cgroup.controllers",
];

const NAMESPACES: &[&str] = &[
    "cgroup",
    "ipc",
    "mnt",
    "net",
    "pid",
    "pid_for_children",
    "time",
    "time_for_children",
    "user",
    "uts",
];

fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *__errno_location() }
}

fn read(path: &str) -> Option<String> {
    fs::read(path).ok().map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn read_or_err(path: &str) -> String {
    match fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).trim_end().replace('\n', "\\n"),
        Err(e) => format!("<error {}>", e.raw_os_error().unwrap_or(0)),
    }
}

/// Octal escapes of mountinfo (\040 for a space) stay as they are: the
/// view only needs to be stable, not pretty.
fn mountinfo(out: &mut BTreeMap<String, String>) {
    let Some(text) = read("/proc/self/mountinfo") else {
        out.insert("mountinfo".into(), "<unreadable>".into());
        return;
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let f: Vec<&str> = left.split(' ').collect();
        if f.len() < 6 {
            continue;
        }
        let (root, mp, opts) = (f[3], f[4], f[5]);
        let mut prop: Vec<&str> = f[6..]
            .iter()
            .map(|t| t.split(':').next().unwrap_or(""))
            .collect();
        prop.sort();
        let prop = if prop.is_empty() { "private".to_string() } else { prop.join("+") };
        let r: Vec<&str> = right.splitn(3, ' ').collect();
        let fstype = r.first().copied().unwrap_or("");
        let source = r.get(1).copied().unwrap_or("");
        let superopts = r.get(2).copied().unwrap_or("");
        let n = seen.entry(mp.to_string()).or_insert(0);
        *n += 1;
        let key = if *n == 1 { format!("mount.{mp}") } else { format!("mount.{mp}#{n}") };
        // The mount's root as the process sees it (a tmpfs's mode= can be
        // undone by a chmod after the mount; mountinfo would not show it).
        let st = match fs::metadata(mp.replace("\\040", " ")) {
            Ok(m) => format!("{:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid()),
            Err(e) => format!("<error {}>", e.raw_os_error().unwrap_or(0)),
        };
        out.insert(key, format!("{fstype} {source} root={root} {opts} [{superopts}] {prop} {st}"));
    }
}

fn status(out: &mut BTreeMap<String, String>) {
    let text = read("/proc/self/status").unwrap_or_default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        let keep = matches!(
            k,
            "Uid" | "Gid" | "Groups" | "CapInh" | "CapPrm" | "CapEff" | "CapBnd" | "CapAmb"
                | "NoNewPrivs" | "Seccomp" | "Seccomp_filters" | "Umask"
        );
        if keep {
            let v: Vec<&str> = v.split_whitespace().collect();
            out.insert(format!("status.{k}"), v.join(" "));
        }
    }
}

fn limits(out: &mut BTreeMap<String, String>) {
    let text = read("/proc/self/limits").unwrap_or_default();
    for line in text.lines().skip(1) {
        // "Max open files            1024                 4096                 files"
        let name = line.get(..26).unwrap_or("").trim().replace(' ', "_");
        let rest: Vec<&str> = line.get(26..).unwrap_or("").split_whitespace().collect();
        if !name.is_empty() && rest.len() >= 2 {
            out.insert(format!("rlimit.{name}"), format!("{} {}", rest[0], rest[1]));
        }
    }
}

fn fds(out: &mut BTreeMap<String, String>) {
    for fd in 0..1024 {
        // SAFETY: F_GETFD on any number only queries the fd table.
        if unsafe { fcntl(fd, F_GETFD) } < 0 {
            continue;
        }
        // SAFETY: as above.
        let fl = unsafe { fcntl(fd, F_GETFL) };
        let target = fs::read_link(format!("/proc/self/fd/{fd}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "?".into());
        // pipe:[1234] -> pipe
        let target = match target.find(":[") {
            Some(i) => target[..i].to_string(),
            None => target,
        };
        out.insert(format!("fd.{fd}"), format!("{target} acc={}", fl & 3));
    }
}

fn namespaces(out: &mut BTreeMap<String, String>) {
    for ns in NAMESPACES {
        let v = fs::read_link(format!("/proc/self/ns/{ns}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|e| format!("<error {}>", e.raw_os_error().unwrap_or(0)));
        out.insert(format!("ns.{ns}"), v);
    }
    for f in ["uid_map", "gid_map", "setgroups", "timens_offsets"] {
        let v = read_or_err(&format!("/proc/self/{f}"));
        let v: Vec<&str> = v.split_whitespace().collect();
        out.insert(format!("proc.{f}"), v.join(" "));
    }
}

fn devs(out: &mut BTreeMap<String, String>) {
    let Ok(rd) = fs::read_dir("/dev") else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(m) = fs::symlink_metadata(e.path()) else { continue };
        let ft = m.file_type();
        let kind = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else if ft.is_dir() {
            "d"
        } else if ft.is_symlink() {
            "l"
        } else if ft.is_file() {
            "f"
        } else {
            "o"
        };
        let mut v = format!("{kind} {:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid());
        if kind == "c" || kind == "b" {
            let r = m.rdev();
            let (maj, min) = (((r >> 8) & 0xfff) | ((r >> 32) & !0xfff), (r & 0xff) | ((r >> 12) & !0xff));
            v.push_str(&format!(" {maj}:{min}"));
        }
        if kind == "l" {
            let t = fs::read_link(e.path()).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            v.push_str(&format!(" -> {t}"));
        }
        out.insert(format!("dev.{name}"), v);
    }
}

fn cwd() -> String {
    let mut buf = vec![0u8; 4096];
    // SAFETY: buf is writable for its length.
    let p = unsafe { getcwd(buf.as_mut_ptr(), buf.len()) };
    if p.is_null() {
        return format!("<error {}>", errno());
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn view() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    status(&mut out);
    limits(&mut out);
    mountinfo(&mut out);
    fds(&mut out);
    namespaces(&mut out);
    devs(&mut out);
    out.insert("pid1".into(), (std::process::id() == 1).to_string());
    out.insert("cwd".into(), cwd());
    out.insert("hostname".into(), read_or_err("/proc/sys/kernel/hostname"));
    out.insert("domainname".into(), read_or_err("/proc/sys/kernel/domainname"));
    out.insert("oom_score_adj".into(), read_or_err("/proc/self/oom_score_adj"));
    out.insert("attr.current".into(), read_or_err("/proc/self/attr/current"));
    out.insert("cgroup".into(), read_or_err("/proc/self/cgroup"));
    for s in SYSCTLS {
        out.insert(format!("sysctl.{}", s.replace('/', ".")), read_or_err(&format!("/proc/sys/{s}")));
    }
    for f in CGROUP_FILES {
        let v = read_or_err(&format!("/sys/fs/cgroup/{f}"));
        if !v.starts_with("<error 2>") {
            out.insert(format!("cg.{f}"), v);
        }
    }
    // SAFETY: personality(0xffffffff) only queries.
    let pers = unsafe { syscall(135, 0xffff_ffffi64) };
    out.insert("personality".into(), format!("{pers:#x}"));
    // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, 0) only queries.
    let io = unsafe { syscall(252, 1i64, 0i64) };
    out.insert("ioprio".into(), if io < 0 { format!("errno={}", errno()) } else { format!("{io:#x}") });
    let mut mode: i32 = -1;
    // SAFETY: get_mempolicy writes one int to mode; no nodemask asked.
    let r = unsafe { syscall(239, &mut mode as *mut i32, 0i64, 0i64, 0i64, 0i64) };
    out.insert("mempolicy".into(), if r < 0 { format!("errno={}", errno()) } else { mode.to_string() });
    let mut env: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
        .collect();
    env.sort();
    for (k, v) in env {
        let mut key = format!("env.{k}");
        while out.contains_key(&key) {
            key.push('+');
        }
        out.insert(key, v);
    }
    // What the hooks that run in the container (startContainer) wrote.
    let mut i = 0;
    for j in 0..4 {
        if let Some(log) = read(&format!("/difftest/hooks.{j}.log")) {
            for line in log.lines() {
                out.insert(format!("hooklog.{i:02}"), line.to_string());
                i += 1;
            }
        }
    }
    out
}

fn probe(label: &str, nr: i64, args: [i64; 2]) -> String {
    let mut buf = [0u8; 256];
    let r = match label {
        // These write through a pointer in arg 0 or 1.
        "sysinfo" | "times" => {
            // SAFETY: buf is large enough for struct sysinfo / struct tms.
            unsafe { syscall(nr, buf.as_mut_ptr()) }
        }
        "getitimer" => {
            // SAFETY: buf is large enough for struct itimerval.
            unsafe { syscall(nr, 0i64, buf.as_mut_ptr()) }
        }
        // SAFETY: the remaining probes take integers only.
        _ => unsafe { syscall(nr, args[0], args[1]) },
    };
    if r < 0 {
        format!("errno={}", errno())
    } else {
        "ok".into()
    }
}

fn hook(args: &[String]) -> i32 {
    let kind = args.get(2).cloned().unwrap_or_default();
    let file = args.get(3).cloned().unwrap_or_default();
    let mut state = String::new();
    let _ = std::io::stdin().read_to_string(&mut state);
    let mut env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    env.sort();
    let line = format!(
        "{kind}\t{}\t{}\t{}\n",
        args[1..].join(" "),
        env.join("\x1f"),
        state.trim().replace(['\n', '\t'], " ")
    );
    match fs::OpenOptions::new().create(true).append(true).open(&file) {
        Ok(mut f) => {
            let _ = f.write_all(line.as_bytes());
        }
        Err(e) => {
            eprintln!("obs hook: {file}: {e}");
            return 1;
        }
    }
    // A hook told to fail (gen.py's failing hooks) exits 3.
    if args.iter().any(|a| a == "fail") {
        return 3;
    }
    0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("hook") {
        std::process::exit(hook(&args));
    }
    let v = view();
    let mut text = String::new();
    for (k, val) in &v {
        text.push_str(k);
        text.push('=');
        text.push_str(&val.replace('\n', "\\n"));
        text.push('\n');
    }
    let mut so = std::io::stdout();
    let _ = so.write_all(text.as_bytes());
    let _ = so.flush();
    for (label, nr, a) in PROBES {
        let r = probe(label, *nr, *a);
        let _ = so.write_all(format!("probe.{label}={r}\n").as_bytes());
        let _ = so.flush();
    }
    let _ = so.write_all(b"end=1\n");
    let _ = so.flush();
}
