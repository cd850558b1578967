//! Compile tests run the programs in a small cBPF interpreter; one test
//! installs a filter for real in a forked child with no_new_privs.
use super::bpf::*;
use super::syscalls::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, Abi, X32_BIT};
use super::*;
use serde_json::{Value, json};

const ALLOW: u32 = 0x7fff_0000;
const EPERM: u32 = RET_ERRNO | 1;

/// Runs `prog` on a `seccomp_data` the way the kernel does.
fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            0 => nr,
            4 => arch,
            o if (16..64).contains(&o) => {
                let a = args[((o - 16) / 8) as usize];
                if o % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            o => panic!("load at {o}"),
        }
    };
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        let jump = |c: bool| if c { i.jt as usize } else { i.jf as usize };
        match i.code {
            LD_ABS => acc = word(i.k),
            AND => acc &= i.k,
            RET => return i.k,
            JA => pc += i.k as usize,
            JEQ => pc += jump(acc == i.k),
            JGT => pc += jump(acc > i.k),
            JGE => pc += jump(acc >= i.k),
            JSET => pc += jump(acc & i.k != 0),
            c => panic!("unknown opcode {c:#x}"),
        }
    }
}

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

fn nr(name: &str) -> u32 {
    Abi::X86_64.number(name).unwrap()
}

fn x86_64(f: &Filter, name: &str, args: [u64; 6]) -> u32 {
    run(&f.program, AUDIT_ARCH_X86_64, nr(name), args)
}

fn docker() -> LinuxSeccomp {
    let text = include_str!("../../integration/fixtures/docker-default-seccomp.json");
    serde_json::from_str(text).unwrap()
}

#[test]
fn actions_and_errno() {
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["mkdir", "rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["kill"], "action": "SCMP_ACT_KILL"},
            {"names": ["tkill"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["uname"], "action": "SCMP_ACT_TRAP"},
            {"names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            {"names": ["getuid"], "action": "SCMP_ACT_LOG"},
            {"names": ["getcwd"], "action": "SCMP_ACT_ALLOW"}
        ]
    })))
    .unwrap();
    let z = [0; 6];
    assert_eq!(x86_64(&f, "getppid", z), EPERM);
    assert_eq!(x86_64(&f, "mkdir", z), RET_ERRNO | 38);
    assert_eq!(x86_64(&f, "rmdir", z), RET_ERRNO | 38);
    assert_eq!(x86_64(&f, "kill", z), 0);
    assert_eq!(x86_64(&f, "tkill", z), RET_KILL_PROCESS);
    assert_eq!(x86_64(&f, "uname", z), 0x0003_0000);
    assert_eq!(x86_64(&f, "getpid", z), 0x7ff0_0007);
    assert_eq!(x86_64(&f, "getuid", z), 0x7ffc_0000);
    assert_eq!(x86_64(&f, "read", z), ALLOW);
    assert_eq!(f.flags, 0);
    assert!(f.listener.is_none());
    // Default ALLOW: no -ENOSYS stub, a new call is allowed.
    assert_eq!(run(&f.program, AUDIT_ARCH_X86_64, 999, z), ALLOW);
}

#[test]
fn every_operator_on_64_bit_values() {
    let big: u64 = 0x1_0000_0005;
    let ops = [
        ("SCMP_CMP_EQ", [big, 5, big + 1], [true, false, false]),
        ("SCMP_CMP_NE", [big, 5, big + 1], [false, true, true]),
        ("SCMP_CMP_LT", [big - 1, big, 5], [true, false, true]),
        (
            "SCMP_CMP_LE",
            [big, big + 1, 0x2_0000_0000],
            [true, false, false],
        ),
        (
            "SCMP_CMP_GT",
            [big + 1, big, 0x2_0000_0000],
            [true, false, true],
        ),
        ("SCMP_CMP_GE", [big, big - 1, u64::MAX], [true, false, true]),
    ];
    for (op, vals, want) in ops {
        let f = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 2, "value": big, "op": op}]}]
        })))
        .unwrap();
        for (v, w) in vals.iter().zip(want) {
            let got = x86_64(&f, "personality", [0, 0, *v, 0, 0, 0]);
            assert_eq!(got == EPERM, w, "{op} {v:#x}");
        }
    }
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    })))
    .unwrap();
    assert_eq!(x86_64(&f, "clone", [0x0110_0011, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(x86_64(&f, "clone", [0x1000_0000, 0, 0, 0, 0, 0]), EPERM);
}

#[test]
fn args_are_anded_and_rules_are_tried_in_order() {
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 10,
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 20,
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30}
        ]
    })))
    .unwrap();
    assert_eq!(x86_64(&f, "kill", [1, 9, 0, 0, 0, 0]), RET_ERRNO | 10);
    assert_eq!(x86_64(&f, "kill", [2, 9, 0, 0, 0, 0]), RET_ERRNO | 20);
    assert_eq!(x86_64(&f, "kill", [1, 15, 0, 0, 0, 0]), RET_ERRNO | 30);
}

#[test]
fn architectures_and_the_enosys_stub() {
    let f = compile(&docker()).unwrap();
    let z = [0; 6];
    // Known calls on every ABI; an unknown ABI is killed.
    assert_eq!(x86_64(&f, "read", z), ALLOW);
    assert_eq!(x86_64(&f, "mount", z), EPERM);
    assert_eq!(x86_64(&f, "clone3", z), RET_ERRNO | 38);
    let i386 = |n: &str| run(&f.program, AUDIT_ARCH_I386, Abi::I386.number(n).unwrap(), z);
    assert_eq!(i386("socketcall"), ALLOW);
    assert_eq!(i386("mount"), EPERM);
    let x32 = |n: &str| {
        run(
            &f.program,
            AUDIT_ARCH_X86_64,
            Abi::X32.number(n).unwrap(),
            z,
        )
    };
    assert_eq!(x32("rt_sigaction"), ALLOW);
    assert_eq!(x32("unshare"), EPERM);
    assert_eq!(run(&f.program, 0xc000_00b7, 63, z), RET_KILL_PROCESS);
    // Numbers above the last one the profile names: ENOSYS, per ABI.
    let enosys = RET_ERRNO | libc::ENOSYS as u32;
    assert_eq!(run(&f.program, AUDIT_ARCH_X86_64, 1000, z), enosys);
    assert_eq!(
        run(&f.program, AUDIT_ARCH_X86_64, X32_BIT | 1000, z),
        enosys
    );
    assert_eq!(run(&f.program, AUDIT_ARCH_I386, 1000, z), enosys);
    // personality: only the listed values.
    assert_eq!(
        x86_64(&f, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(
        x86_64(&f, "personality", [0x0040_0000, 0, 0, 0, 0, 0]),
        EPERM
    );
    // Without x32 in the list, x32 numbers count as a bad architecture.
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})))
    .unwrap();
    assert_eq!(
        run(&f.program, AUDIT_ARCH_X86_64, X32_BIT, z),
        RET_KILL_PROCESS
    );
    assert_eq!(run(&f.program, AUDIT_ARCH_X86_64, 0, z), ALLOW);
    assert_eq!(run(&f.program, AUDIT_ARCH_X86_64, 1, z), enosys);
}

#[test]
fn no_stub_when_the_default_is_enosys_or_no_arch_is_listed() {
    let base = json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]});
    let f = compile(&profile(base.clone())).unwrap();
    assert_eq!(run(&f.program, AUDIT_ARCH_X86_64, 1, [0; 6]), EPERM);
    let mut v = base;
    v["architectures"] = json!(["SCMP_ARCH_X86_64"]);
    v["defaultErrnoRet"] = json!(38);
    let f = compile(&profile(v)).unwrap();
    assert_eq!(
        run(&f.program, AUDIT_ARCH_X86_64, 1, [0; 6]),
        RET_ERRNO | 38
    );
}

#[test]
fn unknown_names_are_skipped_and_errors_name_the_field() {
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_call", "mkdir"], "action": "SCMP_ACT_ERRNO"}]})))
    .unwrap();
    assert_eq!(x86_64(&f, "mkdir", [0; 6]), EPERM);
    let err = |v: Value| format!("{:#}", compile(&profile(v)).unwrap_err());
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                  {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
    assert_eq!(
        e,
        "linux.seccomp.syscalls[1].args[1].index: 6 is not an argument (0-5)"
    );
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert_eq!(e, "linux.seccomp.listenerPath: required by SCMP_ACT_NOTIFY");
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
        "syscalls": [{"names": ["mkdir", "sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert!(e.starts_with("linux.seccomp.syscalls[0].names[1]: "), "{e}");
    let e = err(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}));
    assert!(e.starts_with("linux.seccomp.defaultErrnoRet: "), "{e}");
}

#[test]
fn flags_and_notify() {
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
        "listenerPath": "/run/agent.sock", "listenerMetadata": "meta",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})))
    .unwrap();
    let want = FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_TSYNC | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH;
    assert_eq!(f.flags, want);
    let l = f.listener.unwrap();
    assert_eq!(l.path, std::path::Path::new("/run/agent.sock"));
    assert_eq!(l.metadata.as_deref(), Some("meta"));
    assert_eq!(x86_64(&compile(&docker()).unwrap(), "mkdir", [0; 6]), ALLOW);
    let state = json!({"ociVersion": "1.0.2", "pid": 42, "status": "creating"});
    let m = notify::process_state(&state, Some("meta"));
    assert_eq!(m["fds"], json!(["seccompFd"]));
    assert_eq!(m["pid"], 42);
    assert_eq!(m["metadata"], "meta");
    assert_eq!(m["state"]["status"], "creating");
}

/// WAIT_KILLABLE_RECV only goes with a listener: alone the kernel
/// refuses it with EINVAL.
#[test]
fn wait_killable_recv_only_with_a_listener() {
    let flag = json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]);
    let plain = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": flag,
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
    ))
    .unwrap();
    assert_eq!(plain.flags, 0);
    let notify = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": flag,
        "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    ))
    .unwrap();
    assert_eq!(notify.flags, FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV);
}

/// The features tables are every name the profile parser accepts, each
/// compiling.
#[test]
fn feature_tables_compile() {
    for a in ACTIONS {
        if a == Act::ScmpActNotify {
            continue;
        }
        compile(&profile(json!({"defaultAction": a}))).unwrap();
    }
    for op in OPERATORS {
        compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 1, "value": 1, "valueTwo": 1, "op": op}]}]})))
        .unwrap();
    }
    for arch in ARCHS {
        compile(&profile(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": [arch]}),
        ))
        .unwrap();
    }
    for f in FLAGS {
        compile(&profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [f]}),
        ))
        .unwrap();
    }
}

#[test]
fn docker_profile_fits_one_filter() {
    let f = compile(&docker()).unwrap();
    assert!(f.program.len() < MAX_INSNS, "{}", f.program.len());
    // Mostly one `jeq` per call and ABI: catch accidental blow-ups.
    assert!(f.program.len() < 1300, "{}", f.program.len());
}

/// For scripts/bench.sh: compile time and size of Docker's profile.
#[test]
#[ignore]
fn bench_docker_profile() {
    let s = docker();
    let n = 200;
    let t = std::time::Instant::now();
    let mut len = 0;
    for _ in 0..n {
        len = compile(&s).unwrap().program.len();
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("seccomp docker-default: {len} instructions, compile {us:.0} us ({build} build)");
}

/// Installs a filter in a forked child (no root needed with NNP) and
/// reports through the exit code what the calls returned.
#[test]
fn install_in_a_forked_child() {
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})))
    .unwrap();
    // SAFETY: the child only makes raw syscalls and ends in _exit.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let code = child_checks(&f);
            // SAFETY: leaves the forked copy of the test harness at once.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let st = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
        }
    }
}

fn child_checks(f: &Filter) -> i32 {
    if nix::sys::prctl::set_no_new_privs().is_err() || install(f).is_err() {
        return 10;
    }
    let errno = || std::io::Error::last_os_error().raw_os_error();
    // SAFETY: plain syscalls with valid arguments.
    let r = unsafe { libc::syscall(libc::SYS_getppid) };
    if r != -1 || errno() != Some(libc::EPERM) {
        return 11;
    }
    // SAFETY: as above; the path is NUL-terminated.
    let r = unsafe { libc::syscall(libc::SYS_mkdir, c"/nonexistent/x".as_ptr(), 0o755) };
    if r != -1 || errno() != Some(libc::ENOSYS) {
        return 12;
    }
    // SAFETY: as above.
    if unsafe { libc::syscall(libc::SYS_getpid) } <= 0 {
        return 13;
    }
    0
}
