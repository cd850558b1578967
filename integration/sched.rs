//! runtime-spec 1.2/1.3 process fields: `process.scheduler`
//! (sched_setattr(2)) and `process.execCPUAffinity`, read back from inside
//! the container (/proc/self/stat, /proc/self/status).
//! runc 1.1.5 predates both and ignores them: its runs are only checked to
//! work, the effects are asserted for skiff (`is_skiff()`).
use crate::{Bundle, Rt, is_skiff, require_root, skip};
use serde_json::{Value, json};

/// /proc/self/stat fields 19 (nice), 40 (rt_priority) and 41 (policy) of
/// `cut` itself, exec'd as the container's process (no fork: a
/// SCHED_DEADLINE task may not fork).
const STAT: [&str; 5] = ["cut", "-d", " ", "-f19,40,41", "/proc/self/stat"];

#[test]
fn scheduler_policies_seen_inside() {
    require_root!();
    // (scheduler, cpu resources, "nice rt_priority policy")
    let cases: [(Value, Value, &str); 6] = [
        (
            json!({"policy": "SCHED_BATCH", "nice": 5}),
            json!(null),
            "5 0 3",
        ),
        (
            json!({"policy": "SCHED_OTHER", "nice": -20}),
            json!(null),
            "-20 0 0",
        ),
        (
            json!({"policy": "SCHED_IDLE", "flags": ["SCHED_FLAG_RESET_ON_FORK"]}),
            json!(null),
            "0 0 5",
        ),
        // With RT group scheduling (this host's cgroup v1 cpu controller) a
        // new cgroup has no realtime budget: the config gives it one.
        (
            json!({"policy": "SCHED_FIFO", "priority": 10}),
            json!({"realtimeRuntime": 10000, "realtimePeriod": 1000000}),
            "0 10 1",
        ),
        (
            json!({"policy": "SCHED_RR", "priority": 3}),
            json!({"realtimeRuntime": 10000}),
            "0 3 2",
        ),
        (
            json!({"policy": "SCHED_DEADLINE", "runtime": 10_000_000u64,
                   "deadline": 30_000_000u64, "period": 30_000_000u64}),
            json!(null),
            "0 0 6",
        ),
    ];
    let rt = Rt::new();
    for (sched, cpu, want) in cases {
        let b = Bundle::new();
        b.edit(|c| {
            c["process"]["scheduler"] = sched.clone();
            if !cpu.is_null() {
                c["linux"]["resources"]["cpu"] = cpu.clone();
            }
        });
        b.args(&STAT);
        let o = rt.run(&b, &rt.id("sched"), &[]).check("run");
        if is_skiff() {
            assert_eq!(o.stdout.trim(), want, "{sched}");
        }
    }
}

#[test]
fn scheduler_applies_to_exec() {
    require_root!();
    if !is_skiff() {
        skip!("runc 1.1.5 ignores process.scheduler");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7}));
    let id = rt.sleeper(&b);
    // The init, and exec's process from config.json's process.
    let o = rt
        .out(&["exec", &id, "cut", "-d", " ", "-f19,40,41", "/proc/1/stat"])
        .check("exec");
    assert_eq!(o.stdout.trim(), "7 0 3");
    let mut args = vec!["exec", &id];
    args.extend(STAT);
    let o = rt.out(&args).check("exec");
    assert_eq!(o.stdout.trim(), "7 0 3");
    // A --process file's own scheduler, flags in the spec's spelling.
    let p = rt.root.path().join("process.json");
    std::fs::write(
        &p,
        json!({"args": STAT, "cwd": "/", "scheduler": {"policy": "SCHED_IDLE",
               "flags": ["SCHED_FLAG_RESET_ON_FORK"]}})
        .to_string(),
    )
    .unwrap();
    let o = rt
        .out(&["exec", "--process", p.to_str().unwrap(), &id])
        .check("exec -p");
    assert_eq!(o.stdout.trim(), "0 0 5");
}

#[test]
fn bad_scheduler_fails_create() {
    require_root!();
    if !is_skiff() {
        skip!("runc 1.1.5 ignores process.scheduler");
    }
    let cases: [(&str, Value, Value); 8] = [
        (
            "process.scheduler.policy",
            json!({"policy": "SCHED_ISO"}),
            json!(null),
        ),
        (
            "process.scheduler.policy",
            json!({"policy": "SCHED_X"}),
            json!(null),
        ),
        (
            "process.scheduler.nice",
            json!({"policy": "SCHED_OTHER", "nice": 20}),
            json!(null),
        ),
        (
            "process.scheduler.priority",
            json!({"policy": "SCHED_FIFO"}),
            json!(null),
        ),
        (
            "process.scheduler.priority",
            json!({"policy": "SCHED_BATCH", "priority": 3}),
            json!(null),
        ),
        (
            "process.scheduler",
            json!({"policy": "SCHED_DEADLINE", "deadline": 1000000}),
            json!(null),
        ),
        (
            "process.scheduler.flags[0]",
            json!({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_X"]}),
            json!(null),
        ),
        // The kernel's refusal, reported by init: no realtime budget in the
        // container's cgroup (RT group scheduling on this host).
        (
            "process.scheduler",
            json!({"policy": "SCHED_FIFO", "priority": 5}),
            json!({"shares": 1024}),
        ),
    ];
    let rt = Rt::new();
    for (field, sched, cpu) in cases {
        let b = Bundle::new();
        b.edit(|c| {
            c["process"]["scheduler"] = sched.clone();
            if !cpu.is_null() {
                c["linux"]["resources"]["cpu"] = cpu.clone();
            }
        });
        b.args(&["sleep", "1000"]);
        let id = rt.id("badsched");
        let o = rt.create(&b, &id, &[]);
        assert_eq!(o.code, Some(1), "{sched}: {o:?}");
        assert!(o.stderr.contains(&format!("{field}: ")), "{sched}: {o:?}");
        assert_eq!(o.stderr.trim().lines().count(), 1, "{sched}: {o:?}");
        assert!(rt.state(&id).is_none(), "{sched}: state left behind");
        assert!(
            !rt.root.path().join(&id).exists(),
            "{sched}: state dir left"
        );
    }
}

fn cpus_allowed(status: &str) -> &str {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_else(|| panic!("no Cpus_allowed_list in {status}"))
        .trim()
}

#[test]
fn exec_cpu_affinity_initial_and_final() {
    require_root!();
    if !is_skiff() {
        skip!("runc 1.1.5 ignores process.execCPUAffinity");
    }
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    if online.trim() != "0-1" && !online.trim().starts_with("0-") {
        skip!("needs CPUs 0 and 1 online, have {online}");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "1"}));
    let id = rt.sleeper(&b);
    // Not applicable to the init (runtime-spec): it keeps every CPU.
    let o = rt
        .out(&["exec", &id, "cat", "/proc/1/status"])
        .check("exec");
    assert_eq!(cpus_allowed(&o.stdout), "0-1", "init");
    // exec's process: config.json's final; stage-1 ran on the initial one
    // (read back from the kernel into the debug log).
    let log = rt.root.path().join("exec.log");
    let o = rt
        .out(&[
            "--debug",
            "--log",
            log.to_str().unwrap(),
            "exec",
            &id,
            "cat",
            "/proc/self/status",
        ])
        .check("exec");
    assert_eq!(cpus_allowed(&o.stdout), "1");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("exec: stage-1 CPU affinity 0\""), "{log}");
    // A --process file's own: final "0".
    let p = rt.root.path().join("process.json");
    std::fs::write(
        &p,
        json!({"args": ["cat", "/proc/self/status"], "cwd": "/",
               "execCPUAffinity": {"final": "0"}})
        .to_string(),
    )
    .unwrap();
    let o = rt
        .out(&["exec", "--process", p.to_str().unwrap(), &id])
        .check("exec -p");
    assert_eq!(cpus_allowed(&o.stdout), "0");
    // A CPU the kernel does not have: exec fails naming the field.
    std::fs::write(
        &p,
        json!({"args": ["true"], "cwd": "/", "execCPUAffinity": {"final": "4000"}}).to_string(),
    )
    .unwrap();
    let o = rt.out(&["exec", "--process", p.to_str().unwrap(), &id]);
    // runc's status for a failed exec setup.
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(
        o.stderr.contains("process.execCPUAffinity.final: "),
        "{o:?}"
    );
}

/// The final affinity goes in before any seccomp filter: a profile that
/// denies sched_setaffinity (loaded early, without noNewPrivileges) does
/// not stop it.
#[test]
fn exec_cpu_affinity_final_before_seccomp() {
    require_root!();
    if !is_skiff() {
        skip!("runc 1.1.5 ignores process.execCPUAffinity");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["execCPUAffinity"] = json!({"final": "0"});
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["sched_setaffinity"], "action": "SCMP_ACT_ERRNO"}]});
    });
    let id = rt.sleeper(&b);
    let o = rt
        .out(&["exec", &id, "cat", "/proc/self/status"])
        .check("exec");
    assert_eq!(cpus_allowed(&o.stdout), "0");
    // The profile does hold for the process itself.
    let o = rt.out(&["exec", &id, "taskset", "-p", "3", "1"]);
    assert!(!o.ok(), "{o:?}");
}

#[test]
fn bad_exec_cpu_affinity_fails_create() {
    require_root!();
    if !is_skiff() {
        skip!("runc 1.1.5 ignores process.execCPUAffinity");
    }
    let rt = Rt::new();
    for (field, aff) in [
        ("process.execCPUAffinity.initial", json!({"initial": "0-x"})),
        ("process.execCPUAffinity.final", json!({"final": "1-0"})),
    ] {
        let b = Bundle::new();
        b.edit(|c| c["process"]["execCPUAffinity"] = aff.clone());
        let id = rt.id("badaff");
        let o = rt.create(&b, &id, &[]);
        assert_eq!(o.code, Some(1), "{aff}: {o:?}");
        assert!(o.stderr.contains(&format!("{field}: ")), "{aff}: {o:?}");
        assert!(!rt.root.path().join(&id).exists(), "{aff}: state dir left");
    }
}
