//! Runs in: unit tests, as root: real cgroups on this host and the kernel's
//! BPF verifier (each test skips without root).

use super::*;
use crate::cgroup::resources::DeviceRule;

/// Root only: a real cgroup on this host.
#[test]
fn root_real_cgroup_on_host() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped root_real_cgroup_on_host: needs root");
        return;
    }
    let path = PathBuf::from(format!("/skiff-unit-{}", std::process::id()));
    let mut cg = Cgroup::resolve(Some(&path), "unit").unwrap();
    let ws = cg
        .plan(Some(&res(
            r#"{"memory":{"limit":67108864},"pids":{"limit":10}}"#,
        )))
        .unwrap();
    cg.create(&ws).unwrap();
    let read = |ctrl: &str, file: &str| {
        fs::read_to_string(
            cg.target(&Controller::from_name(ctrl))
                .unwrap()
                .dir
                .join(file),
        )
        .unwrap()
    };
    match cg.version {
        Version::V1 => assert_eq!(read("memory", "memory.limit_in_bytes").trim(), "67108864"),
        Version::V2 => assert_eq!(read("memory", "memory.max").trim(), "67108864"),
    }
    assert_eq!(read("pids", "pids.max").trim(), "10");

    // SAFETY: the child only calls pause(2) and _exit(2), both async-signal-safe,
    // so forking from the multi-threaded test harness is sound.
    let child = match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            nix::unistd::pause();
            // SAFETY: _exit never returns and runs no destructors.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    cg.add_task(child.as_raw()).unwrap();
    assert_eq!(cg.pids().unwrap(), [child.as_raw()]);
    cg.freeze(true).unwrap();
    assert!(cg.is_frozen());
    eprintln!(
        "root test: cgroup {:?} pids {:?} frozen {}",
        cg.primary(),
        cg.pids().unwrap(),
        cg.is_frozen()
    );

    // destroy SIGKILLs the (frozen) child itself, then removes the directories.
    cg.destroy().unwrap();
    let status = nix::sys::wait::waitpid(child, None).unwrap();
    assert_eq!(
        status,
        nix::sys::wait::WaitStatus::Signaled(child, nix::sys::signal::Signal::SIGKILL, false)
    );
    for h in &cg.hierarchies {
        assert!(!h.dir.exists(), "{} still exists", h.dir.display());
    }
}

#[test]
fn v2_device_program_shape() {
    let rule = |allow, kind, major, minor, access| DeviceRule {
        allow,
        kind,
        major,
        minor,
        access,
    };
    let rules = v2::compile(&[
        rule(false, 'a', None, None, "rwm"),
        rule(true, 'c', Some(1), Some(3), "rwm"),
        rule(true, 'b', Some(8), None, "r"),
    ])
    .unwrap();
    let p = v2::assemble(&rules);
    // 6 prologue + "b 8:* r" (type, 3 access, major, verdict: 7) + "c 1:3 rwm" (type, major,
    // minor, verdict: 5) + the deny-all "a" rule ending the program (2).
    assert_eq!(p.len(), 6 + 7 + 5 + 2);
    assert_eq!(p[6].off, 6); // type mismatch skips the rest of its block
    assert_eq!((p[18].imm, p[19].code), (0, 0x95)); // default from the "a" rule: deny
    let allow_all = v2::assemble(&v2::compile(&[rule(true, 'a', None, None, "rwm")]).unwrap());
    assert_eq!(allow_all[6].imm, 1);
}

/// Root only: the kernel verifier accepts our program and it attaches to a
/// real cgroup2 directory (on a hybrid host: the unified hierarchy).
#[test]
fn root_device_program_loads_and_attaches() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped root_device_program_loads_and_attaches: needs root");
        return;
    }
    let mounts = match Layout::read().unwrap() {
        Layout::V1 { unified, .. } => unified,
        Layout::V2 { mount } => Some(mount),
    };
    let Some(m) = mounts else {
        eprintln!("skipped root_device_program_loads_and_attaches: no cgroup2 mount");
        return;
    };
    let dir = m.point.join(format!("skiff-bpf-{}", std::process::id()));
    fs::create_dir(&dir).unwrap();
    let rules = resources::writes(
        &res(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#),
        Version::V2,
    )
    .unwrap();
    v2::apply(&dir, &rules).unwrap();
    // A narrower filter on a child cgroup: /dev/null only. Filters of all
    // ancestors apply, so this one decides for a task placed in `leaf`.
    let leaf = dir.join("leaf");
    fs::create_dir(&leaf).unwrap();
    let only_null = [Write::DeviceFilter {
        rules: vec![
            DeviceRule {
                allow: false,
                kind: 'a',
                major: None,
                minor: None,
                access: "rwm",
            },
            DeviceRule {
                allow: true,
                kind: 'c',
                major: Some(1),
                minor: Some(3),
                access: "rw",
            },
        ],
    }];
    v2::apply(&leaf, &only_null).unwrap();
    let procs = std::ffi::CString::new(
        leaf.join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: the child uses only open/write/_exit (async-signal-safe) on
    // buffers prepared before the fork.
    let child = match unsafe { nix::unistd::fork() }.unwrap() {
        // SAFETY: as above; raw libc calls on NUL-terminated CStrings owned here.
        nix::unistd::ForkResult::Child => unsafe {
            // Writing "0" moves the writer itself into the cgroup.
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            let moved = fd >= 0 && libc::write(fd, c"0".as_ptr().cast(), 1) == 1;
            let zero = libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY) >= 0;
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) >= 0;
            libc::_exit(i32::from(!moved) | i32::from(zero) << 1 | i32::from(!null) << 2)
        },
        nix::unistd::ForkResult::Parent { child } => child,
    };
    let status = nix::sys::wait::waitpid(child, None).unwrap();
    fs::remove_dir(&leaf).unwrap();
    fs::remove_dir(&dir).unwrap();
    // 0: moved, /dev/zero refused, /dev/null allowed
    assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
}
