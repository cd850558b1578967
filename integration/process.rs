//! The process: args, env, cwd, user, umask, capabilities, rlimits, NNP, OOM.
use crate::{Bundle, Rt, is_skiff, require_root, skip};
use serde_json::json;
use std::os::unix::process::CommandExt;

fn status_field(status: &str, key: &str) -> String {
    let pfx = format!("{key}:");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&pfx))
        .unwrap_or_else(|| panic!("no {key} in {status}"))
        .trim()
        .to_string()
}

fn cap_bits(names: &[&str]) -> u64 {
    names.iter().fold(0, |acc, n| {
        let bit = match *n {
            "CAP_CHOWN" => 0,
            "CAP_KILL" => 5,
            "CAP_SETUID" => 7,
            "CAP_NET_BIND_SERVICE" => 10,
            "CAP_NET_RAW" => 13,
            "CAP_SYS_ADMIN" => 21,
            "CAP_AUDIT_WRITE" => 29,
            other => panic!("add {other} to cap_bits"),
        };
        acc | 1 << bit
    })
}

fn caps_of(status: &str, key: &str) -> u64 {
    u64::from_str_radix(&status_field(status, key), 16).unwrap()
}

#[test]
fn args_are_passed_verbatim() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&[
        "sh",
        "-c",
        "for a in \"$@\"; do echo \"[$a]\"; done",
        "argv0",
        "one",
        "two words",
        "",
        "*",
    ]);
    let id = rt.id("args");
    let o = rt.run(&b, &id, &[]).check("run");
    assert_eq!(o.stdout, "[one]\n[two words]\n[]\n[*]\n");
}

#[test]
fn path_lookup_of_args0() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["echo", "found-by-PATH"]);
    b.edit(|c| c["process"]["env"] = json!(["PATH=/nowhere:/bin"]));
    let id = rt.id("path");
    assert_eq!(rt.run(&b, &id, &[]).check("run").stdout, "found-by-PATH\n");
}

#[test]
fn env_is_exact() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["env"]);
    b.edit(|c| c["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz", "EMPTY=", "TERM=dumb"]));
    let id = rt.id("env");
    let o = rt.run(&b, &id, &[]).check("run env");
    let mut got: Vec<&str> = o.stdout.lines().collect();
    got.sort();
    // HOME is added by runc when the config has none (runc and skiff both).
    got.retain(|l| !l.starts_with("HOME="));
    assert_eq!(got, ["EMPTY=", "FOO=bar baz", "PATH=/bin", "TERM=dumb"]);
}

#[test]
fn home_defaults_from_passwd() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let o = rt.sh(&b, "echo $HOME").check("run");
    assert_eq!(o.stdout, "/root\n");
}

#[test]
fn cwd_is_set_and_created() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["process"]["cwd"] = json!("/work/dir"));
    let o = rt.sh(&b, "pwd").check("run");
    assert_eq!(o.stdout, "/work/dir\n");
}

#[test]
fn user_ids_and_groups() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [2000, 2001]})
    });
    let o = rt
        .sh(
            &b,
            "id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status",
        )
        .check("run");
    let l: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1001");
    let mut groups: Vec<&str> = l[2].split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["1001", "2000", "2001"]);
    assert_eq!(
        l[3].split_whitespace().collect::<Vec<_>>(),
        ["Uid:", "1000", "1000", "1000", "1000"]
    );
    assert_eq!(
        l[4].split_whitespace().collect::<Vec<_>>(),
        ["Gid:", "1001", "1001", "1001", "1001"]
    );
    assert_eq!(
        l[5].split_whitespace().collect::<Vec<_>>(),
        ["Groups:", "2000", "2001"]
    );
}

// Found by scripts/difftest.sh: a repeated variable keeps its last value
// (runc and crun), and an entry without '=' fails create, naming the field.
#[test]
fn env_duplicates_keep_the_last_value_and_bad_entries_fail() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["process"]["env"] = json!(["PATH=/bin", "DUP=1", "OTHER=x", "DUP=2"]);
    });
    let o = rt.sh(&b, "echo $DUP; env | grep -c ^DUP=").check("run");
    assert_eq!(o.stdout, "2\n1\n", "{o:?}");
    b.edit(|c| c["process"]["env"] = json!(["PATH=/bin", "NOEQUALS"]));
    let o = rt.sh(&b, "echo ran");
    assert_ne!(o.code, Some(0), "{o:?}");
    assert!(!o.stdout.contains("ran"), "{o:?}");
    if is_skiff() {
        assert!(o.stderr.contains("process.env"), "{o:?}");
    }
}

#[test]
fn umask() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["process"]["user"]["umask"] = json!(0o027));
    assert_eq!(rt.sh(&b, "umask").check("run").stdout, "0027\n");
    // Without umask in the config, runc uses 0022.
    b.edit(|c| {
        c["process"]["user"]
            .as_object_mut()
            .unwrap()
            .remove("umask");
    });
    assert_eq!(rt.sh(&b, "umask").check("run").stdout, "0022\n");
}

#[test]
fn default_capabilities() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let o = rt.sh(&b, "cat /proc/self/status").check("run");
    let def = cap_bits(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(caps_of(&o.stdout, "CapBnd"), def);
    assert_eq!(caps_of(&o.stdout, "CapEff"), def);
    assert_eq!(caps_of(&o.stdout, "CapPrm"), def);
    assert_eq!(
        caps_of(&o.stdout, "CapInh"),
        0,
        "the default spec grants no inheritable caps"
    );
    // Ambient caps need the inheritable bit, which the default spec lacks.
    assert_eq!(caps_of(&o.stdout, "CapAmb"), 0);
}

// Found by scripts/difftest.sh: without process.capabilities the process
// has no capability at all (runc and crun), not the default spec's three.
#[test]
fn absent_capabilities_grant_none() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["process"].as_object_mut().unwrap().remove("capabilities");
    });
    let o = rt.sh(&b, "cat /proc/self/status").check("run");
    for set in ["CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(caps_of(&o.stdout, set), 0, "{set}: {}", o.stdout);
    }
}

#[test]
fn capability_sets_for_non_root() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let bnd = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
    ];
    let set = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] =
            json!({"bounding": bnd, "effective": set, "permitted": set, "inheritable": set, "ambient": ["CAP_KILL"]});
    });
    let o = rt.sh(&b, "cat /proc/self/status").check("run");
    // A non-root exec keeps only the ambient set in P and E (capabilities(7)).
    assert_eq!(caps_of(&o.stdout, "CapBnd"), cap_bits(&bnd));
    assert_eq!(caps_of(&o.stdout, "CapInh"), cap_bits(&set));
    assert_eq!(caps_of(&o.stdout, "CapAmb"), cap_bits(&["CAP_KILL"]));
    assert_eq!(caps_of(&o.stdout, "CapPrm"), cap_bits(&["CAP_KILL"]));
    assert_eq!(caps_of(&o.stdout, "CapEff"), cap_bits(&["CAP_KILL"]));
}

#[test]
fn capability_bounding_for_root() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let set = ["CAP_CHOWN", "CAP_SYS_ADMIN"];
    b.edit(|c| {
        c["process"]["capabilities"] = json!({"bounding": set, "effective": set, "permitted": set});
    });
    let o = rt
        .sh(&b, "cat /proc/self/status; kill -0 1 && echo kill-ok")
        .check("run");
    assert_eq!(caps_of(&o.stdout, "CapBnd"), cap_bits(&set));
    assert_eq!(caps_of(&o.stdout, "CapEff"), cap_bits(&set));
    assert_eq!(caps_of(&o.stdout, "CapInh"), 0);
}

#[test]
fn rlimit_lowered() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        ]);
    });
    let o = rt
        .sh(
            &b,
            "ulimit -n; grep -E '^Max (open files|core file size)' /proc/self/limits",
        )
        .check("run");
    let l: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(l[0], "100");
    let core: Vec<&str> = l[1].split_whitespace().collect();
    assert_eq!(&core[4..6], ["0", "0"], "{}", l[1]);
    let nofile: Vec<&str> = l[2].split_whitespace().collect();
    assert_eq!(&nofile[3..5], ["100", "200"], "{}", l[2]);
}

/// True when this process may raise hard rlimits (CAP_SYS_RESOURCE).
fn have_sys_resource() -> bool {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    caps_of(&s, "CapEff") & (1 << 24) != 0
}

#[test]
fn rlimit_raised_above_host_hard_limit() {
    require_root!();
    if !have_sys_resource() {
        skip!("root lacks CAP_SYS_RESOURCE here, so no runtime can raise a hard rlimit");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap()
        .1;
    let want = hard.saturating_add(1000).min(1 << 20);
    b.edit(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": want, "hard": want}])
    });
    assert_eq!(
        rt.sh(&b, "ulimit -n").check("run").stdout.trim(),
        want.to_string()
    );
}

#[test]
fn no_new_privileges() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(true));
    let o = rt.sh(&b, "grep NoNewPrivs /proc/self/status").check("run");
    assert_eq!(o.stdout.split_whitespace().nth(1), Some("1"));
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    let o = rt.sh(&b, "grep NoNewPrivs /proc/self/status").check("run");
    assert_eq!(o.stdout.split_whitespace().nth(1), Some("0"));
}

/// The container gets the caller's signal dispositions and mask, nothing
/// more: an ignored signal survives execve (skiff once passed on the
/// SIGPIPE that Rust's runtime start-up ignores). The runtime is started
/// with every signal at SIG_DFL and none blocked, so init must see the same.
#[test]
fn signals_are_neither_ignored_nor_blocked() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]);
    let mut c = rt.cmd();
    c.arg("run").arg("--bundle").arg(b.path()).arg(rt.id("sig"));
    // SAFETY: between fork and exec only async-signal-safe calls (sigaction,
    // sigprocmask) on local data.
    unsafe {
        c.pre_exec(|| {
            // The raw call: glibc's sigaction refuses its own 32 and 33.
            // struct k_sigaction {handler = SIG_DFL, flags, restorer, mask}.
            let dfl = [0u64; 4];
            for sig in 1..=64 {
                libc::syscall(libc::SYS_rt_sigaction, sig, &dfl, 0usize, 8usize);
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
    let o = crate::output(c).check("run");
    assert_eq!(
        status_field(&o.stdout, "SigIgn"),
        "0000000000000000",
        "{o:?}"
    );
    assert_eq!(
        status_field(&o.stdout, "SigBlk"),
        "0000000000000000",
        "{o:?}"
    );
}

#[test]
fn oom_score_adj_positive() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["process"]["oomScoreAdj"] = json!(500));
    assert_eq!(
        rt.sh(&b, "cat /proc/self/oom_score_adj")
            .check("run")
            .stdout,
        "500\n"
    );
}

#[test]
fn oom_score_adj_negative() {
    require_root!();
    if !have_sys_resource() {
        skip!("root lacks CAP_SYS_RESOURCE here, so a negative oomScoreAdj cannot be set");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["process"]["oomScoreAdj"] = json!(-100));
    assert_eq!(
        rt.sh(&b, "cat /proc/self/oom_score_adj")
            .check("run")
            .stdout,
        "-100\n"
    );
}

/// Runs `script` with `edit` applied to the config; `None` when the
/// runtime under test is runc 1.1.5, which ignores the field (it predates
/// linux.personality, linux.memoryPolicy and process.ioPriority) and so
/// can only be checked to run.
fn run_with(edit: impl FnOnce(&mut serde_json::Value), script: &str) -> Option<String> {
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(edit);
    let o = rt.sh(&b, script).check("run");
    crate::is_skiff().then_some(o.stdout)
}

#[test]
fn personality_linux32() {
    require_root!();
    let out = run_with(
        |c| c["linux"]["personality"] = json!({"domain": "LINUX32"}),
        "uname -m; cat /proc/self/personality",
    );
    if let Some(out) = out {
        assert_eq!(out, "i686\n00000008\n");
    }
    let out = run_with(
        |c| c["linux"]["personality"] = json!({"domain": "LINUX"}),
        "uname -m; cat /proc/self/personality",
    );
    if let Some(out) = out {
        assert_eq!(out, "x86_64\n00000000\n");
    }
}

#[test]
fn personality_applies_to_exec() {
    require_root!();
    if !crate::is_skiff() {
        skip!("runc 1.1.5 ignores linux.personality");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["linux"]["personality"] = json!({"domain": "LINUX32"}));
    let id = rt.sleeper(&b);
    let o = rt.out(&["exec", &id, "uname", "-m"]).check("exec");
    assert_eq!(o.stdout, "i686\n");
}

#[test]
fn memory_policy_modes() {
    require_root!();
    // The task policy as /proc/self/numa_maps prints it (mm/mempolicy.c
    // mpol_to_str); the host has node 0.
    for (policy, want) in [
        (json!({"mode": "MPOL_BIND", "nodes": "0"}), "bind:0"),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
            "interleave:0",
        ),
        (
            json!({"mode": "MPOL_WEIGHTED_INTERLEAVE", "nodes": "0"}),
            "weighted interleave:0",
        ),
        (json!({"mode": "MPOL_PREFERRED", "nodes": "0"}), "prefer:0"),
        (
            json!({"mode": "MPOL_PREFERRED_MANY", "nodes": "0"}),
            "prefer (many):0",
        ),
        (json!({"mode": "MPOL_LOCAL"}), "local"),
        (json!({"mode": "MPOL_DEFAULT"}), "default"),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            "bind=static:0",
        ),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]}),
            "interleave=relative:0",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]}),
            "bind=balancing:0",
        ),
    ] {
        let p = policy.clone();
        let out = run_with(
            |c| c["linux"]["memoryPolicy"] = p,
            "head -n 1 /proc/self/numa_maps",
        );
        if let Some(out) = out {
            let got = out.split_once(' ').map(|x| x.1).unwrap_or("");
            assert!(got.starts_with(&format!("{want} ")), "{policy}: {out}");
        }
    }
}

#[test]
fn io_priority_classes() {
    require_root!();
    // busybox ionice prints "<class>: prio <level>".
    for (class, prio, want) in [
        ("IOPRIO_CLASS_RT", 2, "realtime: prio 2"),
        ("IOPRIO_CLASS_BE", 6, "best-effort: prio 6"),
        ("IOPRIO_CLASS_IDLE", 0, "idle"),
    ] {
        let out = run_with(
            |c| c["process"]["ioPriority"] = json!({"class": class, "priority": prio}),
            "ionice -p $$",
        );
        if let Some(out) = out {
            assert_eq!(out.trim(), want, "{class}");
        }
    }
}

#[test]
fn io_priority_applies_to_exec() {
    require_root!();
    if !crate::is_skiff() {
        skip!("runc 1.1.5 ignores process.ioPriority");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 1}));
    let id = rt.sleeper(&b);
    let o = rt.out(&["exec", &id, "ionice", "-p", "1"]).check("exec");
    assert_eq!(o.stdout.trim(), "best-effort: prio 1");
    let o = rt
        .out(&["exec", &id, "sh", "-c", "ionice -p $$"])
        .check("exec");
    assert_eq!(o.stdout.trim(), "best-effort: prio 1");
}

#[test]
fn bad_personality_memory_policy_and_io_priority_fail_create() {
    require_root!();
    if !crate::is_skiff() {
        skip!("runc 1.1.5 ignores these fields");
    }
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 6] = [
        ("linux.personality.domain", |c| {
            c["linux"]["personality"] = json!({"domain": "LINUX64"})
        }),
        (
            "linux.personality.flags",
            |c| {
                c["linux"]["personality"] =
                    json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]})
            },
        ),
        ("linux.memoryPolicy.nodes", |c| {
            c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0-"})
        }),
        // Node 1000 is not online: the kernel refuses it, init reports it.
        ("linux.memoryPolicy", |c| {
            c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "1000"})
        }),
        ("process.ioPriority.priority", |c| {
            c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 8})
        }),
        ("process.ioPriority.class", |c| {
            c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_NONE", "priority": 0})
        }),
    ];
    let rt = Rt::new();
    for (field, edit) in cases {
        let b = Bundle::new();
        b.edit(edit);
        b.args(&["sleep", "1000"]);
        let id = rt.id("badpolicy");
        let o = rt.create(&b, &id, &[]);
        assert_eq!(o.code, Some(1), "{field}: {o:?}");
        assert!(o.stderr.contains(&format!("{field}: ")), "{field}: {o:?}");
        assert_eq!(o.stderr.trim().lines().count(), 1, "{field}: {o:?}");
        assert!(rt.state(&id).is_none(), "{field}: state left behind");
        assert!(
            !rt.root.path().join(&id).exists(),
            "{field}: state dir left"
        );
    }
}

/// A name twice in process.env: the process sees it once, at its first
/// place, with its last value (runc's init sets each entry in turn).
#[test]
fn duplicate_env_names_keep_the_last_value() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["process"]["env"] = json!(["PATH=/bin:/sbin", "DUP=first", "OTHER=x", "DUP=second"])
    });
    // The environment pid 1's execve got, not the shell's view of it.
    let o = rt
        .sh(&b, "cat /proc/1/environ | tr '\\000' '\\n' | grep '^DUP='")
        .check("run");
    assert_eq!(o.stdout, "DUP=second\n", "{o:?}");
}
