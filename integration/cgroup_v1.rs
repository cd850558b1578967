//! cgroup v1 (and hybrid) hosts, end to end: every `linux.resources` group
//! must reach the kernel, checked both inside the container (the default
//! spec binds the container's own cgroup at /sys/fs/cgroup/<ctrl>) and on the
//! host at /sys/fs/cgroup/<ctrl>/<cgroupsPath>. Also: invalid resources,
//! devices, the fork bomb, and cgroupsPath semantics. `update`, `pause`,
//! `ps` and `events` are in cgroup_v1_ops.rs.
//!
//! Every test skips (with a reason) on a host without v1 memory and pids
//! hierarchies; the pure v2 checks live in scripts/vm/.
use crate::cgroup::cgroup_dirs_left;
use crate::{Bundle, Rt, is_skiff, poll, skip};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// True on a v1 or hybrid host with the hierarchies these tests read.
pub fn v1_host() -> bool {
    [
        "memory", "pids", "cpu", "cpuset", "blkio", "devices", "freezer",
    ]
    .iter()
    .all(|c| {
        Path::new("/sys/fs/cgroup")
            .join(c)
            .join("cgroup.procs")
            .exists()
    })
}

/// Skips the test unless this is a v1 (or hybrid) host and we are root.
#[macro_export]
macro_rules! require_v1 {
    () => {
        $crate::require_root!();
        if !$crate::cgroup_v1::v1_host() {
            $crate::skip!("not a cgroup v1 host: these checks run in scripts/vm/ on v2");
        }
    };
}

/// `/sys/fs/cgroup/<ctrl>/<cg>/<file>` on the host.
pub fn host_path(ctrl: &str, cg: &str, file: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(ctrl)
        .join(cg.trim_start_matches('/'))
        .join(file)
}

/// The trimmed content of a host cgroup file (panics with the path).
pub fn host(ctrl: &str, cg: &str, file: &str) -> String {
    let p = host_path(ctrl, cg, file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A fresh id and a unique absolute cgroupsPath for it; `res` is merged into
/// `linux.resources` (the default deny-all device rule stays).
pub fn limited(rt: &Rt, b: &Bundle, tag: &str, res: Value) -> (String, String) {
    let id = rt.id(tag);
    let cg = format!("/{id}-cg");
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(cg);
        for (k, v) in res.as_object().unwrap() {
            c["linux"]["resources"][k] = v.clone();
        }
    });
    (id, cg)
}

/// create, run `host_checks` while the cgroup is configured and init is
/// waiting, then start and wait for the container to exit; returns what the
/// container printed (its stdout is create's stdout file).
pub fn create_check_start(rt: &Rt, b: &Bundle, id: &str, host_checks: impl FnOnce()) -> String {
    rt.create(b, id, &[]).check("create");
    host_checks();
    rt.out(&["start", id]).check("start");
    rt.wait_status(id, "stopped");
    fs::read_to_string(rt.root.path().join(format!("create-{id}.out"))).unwrap()
}

/// A script printing `file=value` for each cgroup file, read inside.
fn print_files(files: &[&str]) -> String {
    files
        .iter()
        .map(|f| format!("echo \"{f}=$(cat /sys/fs/cgroup/{f})\";"))
        .collect()
}

fn parse_kv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// major:minor of the block device holding the host's root filesystem, if it
/// is a real block device (mountinfo field 3; "0:x" is an anonymous device).
fn root_block_device() -> Option<String> {
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dev = mi
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 4 && f[4] == "/")?[2]
        .to_string();
    let major = dev.split(':').next()?;
    let real = major != "0" && Path::new(&format!("/sys/dev/block/{dev}")).exists();
    real.then_some(dev)
}

#[test]
fn every_resource_group_reaches_the_kernel() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let mib = 1024 * 1024;
    let dev = root_block_device();
    let mut block_io = json!({"weight": 300});
    if let Some(d) = &dev {
        let (maj, min) = d.split_once(':').unwrap();
        block_io["throttleReadBpsDevice"] = json!([{"major": maj.parse::<i64>().unwrap(),
            "minor": min.parse::<i64>().unwrap(), "rate": mib}]);
    } else {
        eprintln!("NOTE: / is not on a block device; blkio throttle not checked");
    }
    let (id, cg) = limited(
        &rt,
        &b,
        "allres",
        json!({
            "memory": {"limit": 64 * mib, "reservation": 32 * mib, "swap": 128 * mib,
                       "swappiness": 10, "disableOOMKiller": true},
            "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 50},
            "blockIO": block_io,
        }),
    );
    let weight_file = if host_path("blkio", "/", "blkio.weight").exists() {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    let mut want: Vec<(&str, &str, String)> = vec![
        ("memory", "memory.limit_in_bytes", (64 * mib).to_string()),
        (
            "memory",
            "memory.soft_limit_in_bytes",
            (32 * mib).to_string(),
        ),
        (
            "memory",
            "memory.memsw.limit_in_bytes",
            (128 * mib).to_string(),
        ),
        ("memory", "memory.swappiness", "10".into()),
        ("cpu", "cpu.shares", "512".into()),
        ("cpu", "cpu.cfs_quota_us", "20000".into()),
        ("cpu", "cpu.cfs_period_us", "100000".into()),
        ("cpuset", "cpuset.cpus", "0".into()),
        ("cpuset", "cpuset.mems", "0".into()),
        ("pids", "pids.max", "50".into()),
        ("blkio", weight_file, "300".into()),
    ];
    if let Some(d) = &dev {
        let v = format!("{d} {mib}");
        want.push(("blkio", "blkio.throttle.read_bps_device", v));
    }
    let files: Vec<String> = want.iter().map(|(c, f, _)| format!("{c}/{f}")).collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let script = print_files(&files)
        + "sed -n 's/^oom_kill_disable /oom_kill_disable=/p' /sys/fs/cgroup/memory/memory.oom_control";
    b.args(&["sh", "-c", &script]);
    let out = create_check_start(&rt, &b, &id, || {
        for (ctrl, file, value) in &want {
            assert_eq!(&host(ctrl, &cg, file), value, "host {ctrl}/{file}");
        }
        let oom = host("memory", &cg, "memory.oom_control");
        assert!(
            oom.contains("oom_kill_disable 1"),
            "host oom_control: {oom}"
        );
    });
    let inside = parse_kv(&out);
    for (ctrl, file, value) in &want {
        let got = inside.get(&format!("{ctrl}/{file}"));
        assert_eq!(got, Some(value), "inside {ctrl}/{file}; output:\n{out}");
    }
    assert_eq!(
        inside.get("oom_kill_disable").map(String::as_str),
        Some("1"),
        "{out}"
    );
}

#[test]
fn realtime_cpu_limits() {
    require_v1!();
    // Writable only with CONFIG_RT_GROUP_SCHED and runtime left in the parent.
    let probe = host_path("cpu", &format!("/rt-probe-{}", std::process::id()), "");
    let writable = fs::create_dir(&probe).is_ok()
        && fs::write(probe.join("cpu.rt_runtime_us"), "1000").is_ok();
    let _ = fs::remove_dir(&probe);
    if !writable {
        skip!("cpu.rt_runtime_us is not writable in a child cgroup on this host");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    let (id, cg) = limited(
        &rt,
        &b,
        "rt",
        json!({"cpu": {"realtimePeriod": 500000, "realtimeRuntime": 5000}}),
    );
    b.args(&[
        "sh",
        "-c",
        &print_files(&["cpu/cpu.rt_period_us", "cpu/cpu.rt_runtime_us"]),
    ]);
    let out = create_check_start(&rt, &b, &id, || {
        assert_eq!(host("cpu", &cg, "cpu.rt_period_us"), "500000");
        assert_eq!(host("cpu", &cg, "cpu.rt_runtime_us"), "5000");
    });
    let inside = parse_kv(&out);
    assert_eq!(inside["cpu/cpu.rt_period_us"], "500000", "{out}");
    assert_eq!(inside["cpu/cpu.rt_runtime_us"], "5000", "{out}");
}

/// The default spec denies every device, then runc's allow-list applies.
/// /dev/fuse (c 10:229) is harmless to open and not in that list.
#[test]
fn devices_deny_all_keeps_default_allow_list() {
    require_v1!();
    if !Path::new("/dev/fuse").exists() {
        skip!("/dev/fuse is missing on the host");
    }
    let fuse =
        json!({"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438});
    let script = "echo x >/dev/null && echo null=ok; head -c1 /dev/zero >/dev/null && echo zero=ok; \
                  if exec 3<>/dev/fuse; then echo fuse=ok; fi";
    for allowed in [false, true] {
        let rt = Rt::new();
        let b = Bundle::new();
        let extra = json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"});
        let (id, cg) = limited(&rt, &b, "dev", json!({}));
        b.edit(|c| {
            c["linux"]["devices"] = json!([fuse]);
            if allowed {
                c["linux"]["resources"]["devices"]
                    .as_array_mut()
                    .unwrap()
                    .push(extra.clone());
            }
        });
        b.args(&["sh", "-c", &format!("{script} 2>&1")]);
        let out = create_check_start(&rt, &b, &id, || {
            let list = host("devices", &cg, "devices.list");
            assert!(!list.contains("a *:* rwm"), "deny-all not applied: {list}");
            for rule in ["c 1:3 rwm", "c 1:5 rwm", "c 136:* rwm"] {
                assert!(list.lines().any(|l| l == rule), "{rule} missing: {list}");
            }
            let has_fuse = list.lines().any(|l| l == "c 10:229 rwm");
            assert_eq!(has_fuse, allowed, "devices.list: {list}");
        });
        assert!(out.contains("null=ok") && out.contains("zero=ok"), "{out}");
        if allowed {
            assert!(out.contains("fuse=ok"), "allowed device not usable: {out}");
        } else {
            assert!(!out.contains("fuse=ok"), "denied device opened: {out}");
            assert!(out.contains("Operation not permitted"), "not EPERM: {out}");
        }
    }
}

/// net_cls/net_prio are not always mounted: then create must fail naming
/// the controller, and leave no cgroup behind.
#[test]
fn network_classid_and_priorities() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let (id, cg) = limited(
        &rt,
        &b,
        "net",
        json!({"network": {"classID": 1048577, "priorities": [{"name": "lo", "priority": 5}]}}),
    );
    b.args(&["sh", "-c", &print_files(&["net_cls/net_cls.classid"])]);
    let mounted = ["net_cls", "net_prio"]
        .iter()
        .all(|c| host_path(c, "/", "cgroup.procs").exists());
    if !mounted {
        let o = rt.create(&b, &id, &[]);
        assert!(!o.ok(), "create must fail without net_cls: {o:?}");
        assert!(
            o.stderr.contains("net_cls"),
            "error does not name net_cls: {o:?}"
        );
        if is_skiff() {
            assert!(o.stderr.contains("linux.resources.network"), "{o:?}");
        }
        assert!(
            cgroup_dirs_left(&cg).is_empty(),
            "{:?}",
            cgroup_dirs_left(&cg)
        );
        return;
    }
    let out = create_check_start(&rt, &b, &id, || {
        assert_eq!(host("net_cls", &cg, "net_cls.classid"), "1048577");
        let map = host("net_prio", &cg, "net_prio.ifpriomap");
        assert!(map.lines().any(|l| l == "lo 5"), "{map}");
    });
    assert_eq!(
        parse_kv(&out)["net_cls/net_cls.classid"],
        "1048577",
        "{out}"
    );
}

/// Skiff-only: on a hybrid host hugetlb lives in the unified (v2) hierarchy;
/// runc 1.1.5 looks for a v1 hugetlb mount and fails create instead.
#[test]
fn hugetlb_goes_to_the_unified_hierarchy() {
    require_v1!();
    if !is_skiff() {
        skip!("runc 1.1.5 cannot set hugetlb on a hybrid host");
    }
    let unified = Path::new("/sys/fs/cgroup/unified");
    let ctrls = fs::read_to_string(unified.join("cgroup.controllers")).unwrap_or_default();
    if !ctrls.split_whitespace().any(|c| c == "hugetlb")
        || !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
    {
        skip!("no hugetlb in a hybrid unified hierarchy, or no 2MB pages");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    let limit = 4 * 2048 * 1024;
    let (id, cg) = limited(
        &rt,
        &b,
        "huge",
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": limit}]}),
    );
    b.args(&["sh", "-c", "grep '^0::' /proc/self/cgroup"]);
    let out = create_check_start(&rt, &b, &id, || {
        assert_eq!(host("unified", &cg, "hugetlb.2MB.max"), limit.to_string());
        let file = rt.root.path().join("huge.json");
        fs::write(
            &file,
            r#"{"hugepageLimits":[{"pageSize":"2MB","limit":8388608}]}"#,
        )
        .unwrap();
        rt.out(&["update", "--resources", file.to_str().unwrap(), &id])
            .check("update hugepageLimits");
        assert_eq!(host("unified", &cg, "hugetlb.2MB.max"), "8388608");
    });
    assert_eq!(
        out.trim(),
        format!("0::{cg}"),
        "init not in the unified cgroup"
    );
    rt.out(&["delete", &id]).check("delete");
    assert!(
        cgroup_dirs_left(&cg).is_empty(),
        "{:?}",
        cgroup_dirs_left(&cg)
    );
}

#[test]
fn invalid_resources_fail_create_and_leave_no_cgroup() {
    require_v1!();
    let mib = 1024 * 1024;
    let cases = [
        // memsw (memory+swap) below the memory limit.
        (
            json!({"memory": {"limit": 64 * mib, "swap": 32 * mib}}),
            "memory",
            "linux.resources.memory.swap",
        ),
        (
            json!({"memory": {"swappiness": 200}}),
            "swappiness",
            "linux.resources.memory.swappiness",
        ),
    ];
    for (res, word, field) in cases {
        let rt = Rt::new();
        let b = Bundle::new();
        b.args(&["true"]);
        let (id, cg) = limited(&rt, &b, "bad", res.clone());
        let o = rt.create(&b, &id, &[]);
        assert!(!o.ok(), "create with {res} must fail: {o:?}");
        assert!(o.stderr.contains(word), "error does not name {word}: {o:?}");
        if is_skiff() {
            assert!(
                o.stderr.contains(field),
                "error does not name {field}: {o:?}"
            );
        }
        assert!(rt.state(&id).is_none(), "state left after failed create");
        assert!(
            cgroup_dirs_left(&cg).is_empty(),
            "{:?}",
            cgroup_dirs_left(&cg)
        );
    }
}

/// busybox sh exits when a fork fails, so the bomb runs in a subshell with a
/// bounded depth; the outer shell reports with builtins only (no fork).
#[test]
fn fork_bomb_stops_at_pids_max() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let (id, cg) = limited(&rt, &b, "bomb", json!({"pids": {"limit": 16}}));
    let script = "(b() { [ $1 -gt 0 ] || exit 0; b $(($1-1)) & b $(($1-1)) & wait; }; b 7) 2>/dev/null; \
                  read max </sys/fs/cgroup/pids/pids.max; read peak </sys/fs/cgroup/pids/pids.peak; \
                  read ev </sys/fs/cgroup/pids/pids.events; echo max=$max; echo peak=$peak; echo \"ev=$ev\"";
    b.args(&["sh", "-c", script]);
    let out = create_check_start(&rt, &b, &id, || {
        assert_eq!(host("pids", &cg, "pids.max"), "16");
    });
    let inside = parse_kv(&out);
    assert_eq!(inside.get("max").map(String::as_str), Some("16"), "{out}");
    assert_eq!(inside.get("peak").map(String::as_str), Some("16"), "{out}");
    let refused: u64 = inside["ev"].trim_start_matches("max ").parse().unwrap();
    assert!(refused > 0, "no fork was refused: {out}");
    assert_eq!(host("pids", &cg, "pids.peak"), "16");
}

/// `pids.limit: 1` (podman `--pids-limit 1`): the container's one process
/// starts (the runtime's own helper processes must be gone before the limit
/// is set, as in runc). Builtins only: the one process cannot fork.
#[test]
fn pids_limit_one_starts_and_cannot_fork() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let (id, cg) = limited(&rt, &b, "pids1", json!({"pids": {"limit": 1}}));
    b.args(&[
        "sh",
        "-c",
        "read m </sys/fs/cgroup/pids/pids.max; echo started max=$m",
    ]);
    let out = create_check_start(&rt, &b, &id, || {
        assert_eq!(host("pids", &cg, "pids.max"), "1");
    });
    assert_eq!(out, "started max=1\n");
}

/// Our own cgroup path in a v1 hierarchy (the runtime inherits it).
fn own_cgroup(ctrl: &str) -> String {
    crate::cgroup::cgroup_of(std::process::id() as i32, ctrl).unwrap()
}

#[test]
fn cgroups_path_absolute_relative_and_default() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["sh", "-c", "cat /proc/self/cgroup"]);
    let join = |base: &str, rel: &str| format!("{}/{rel}", base.trim_end_matches('/'));
    for kind in ["absolute", "relative", "default"] {
        let id = rt.id(kind);
        let (path, rel) = match kind {
            "absolute" => (Some(format!("/{id}-abs")), None),
            "relative" => (Some(format!("{id}-rel")), Some(format!("{id}-rel"))),
            _ => (None, Some(id.clone())),
        };
        b.edit(|c| match &path {
            Some(p) => c["linux"]["cgroupsPath"] = json!(p),
            None => {
                c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
            }
        });
        let mut dirs = Vec::new();
        let out = create_check_start(&rt, &b, &id, || {
            for ctrl in ["memory", "pids", "cpu", "devices", "freezer"] {
                let want = match &rel {
                    Some(r) => join(&own_cgroup(ctrl), r),
                    None => path.clone().unwrap(),
                };
                let d = host_path(ctrl, &want, "");
                assert!(
                    d.join("cgroup.procs").exists(),
                    "{kind}: {} missing",
                    d.display()
                );
                let line = out_line(
                    &fs::read_to_string(format!("/proc/{}/cgroup", rt.pid(&id))).unwrap(),
                    ctrl,
                );
                assert_eq!(line, want, "{kind}: {ctrl}");
                dirs.push(d);
            }
        });
        assert!(!out.is_empty());
        rt.out(&["delete", &id]).check("delete");
        for d in dirs {
            assert!(poll(5, || !d.exists()), "{kind}: {} left", d.display());
        }
    }
}

fn out_line(proc_cgroup: &str, ctrl: &str) -> String {
    proc_cgroup
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            c.split(',').any(|c| c == ctrl).then(|| p.to_string())
        })
        .unwrap()
}

/// The container's own cgroup goes with the container even where the
/// caller made it beforehand (runc 1.1.5 removes every directory it
/// joined; issue "runc parity"). Parents are kept: parity.rs.
#[test]
fn run_removes_a_pre_existing_container_cgroup() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["true"]);
    let (id, cg) = limited(&rt, &b, "preexist", json!({"pids": {"limit": 20}}));
    let pre = [host_path("pids", &cg, ""), host_path("memory", &cg, "")];
    for d in &pre {
        fs::create_dir(d).unwrap();
    }
    let o = rt.run(&b, &id, &[]);
    let left = cgroup_dirs_left(&cg);
    for d in &pre {
        let _ = fs::remove_dir(d);
    }
    o.check("run");
    assert!(left.is_empty(), "container cgroup left after run: {left:?}");
}
