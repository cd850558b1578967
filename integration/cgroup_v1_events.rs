//! cgroup v1 (and hybrid) hosts: `events` (`--stats` and the OOM event)
//! end to end, against the container's cgroup files on the host.
//! (Split from cgroup_v1_ops.rs.)
use crate::cgroup_v1::{host, limited};
use crate::cgroup_v1_ops::MIB;
use crate::{Bundle, Rt, poll, require_v1};
use serde_json::{Value, json};
use std::fs;

#[test]
fn events_stats_report_limits_and_pids() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let (id, _cg) = limited(
        &rt,
        &b,
        "stats",
        json!({"memory": {"limit": 48 * MIB, "swap": 96 * MIB}, "pids": {"limit": 30}}),
    );
    rt.run_detached(&b, &id, &[]).check("run --detach");
    let o = rt.out(&["events", "--stats", &id]).check("events --stats");
    let v: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], id.as_str(), "{v}");
    assert_eq!(v["data"]["memory"]["usage"]["limit"], 48 * MIB, "{v}");
    assert!(
        v["data"]["memory"]["usage"]["usage"].as_u64() > Some(0),
        "{v}"
    );
    assert!(v["data"]["pids"]["current"].as_u64() >= Some(1), "{v}");
    assert_eq!(v["data"]["pids"]["limit"], 30, "{v}");
    // v1 "swap" is memsw: memory+swap, as runc reports it.
    assert_eq!(v["data"]["memory"]["swap"]["limit"], 96 * MIB, "{v}");
    assert!(v["data"]["cpu"]["usage"]["total"].as_u64() > Some(0), "{v}");
}

/// A 64M buffer under a 16M limit (swap = limit, so no swap to escape to).
fn oom_bundle(rt: &Rt, tag: &str) -> (Bundle, String, String) {
    let b = Bundle::new();
    b.args(&["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]);
    let (id, cg) = limited(
        rt,
        &b,
        tag,
        json!({"memory": {"limit": 16 * MIB, "swap": 16 * MIB}}),
    );
    (b, id, cg)
}

/// `events --interval 100ms ID` with its output in a file, once the OOM
/// watch is registered: a first line proves it, for both runtimes (skiff
/// prints stats only from its poll loop on the OOM fd, and runc's printing
/// loop starts only after NotifyOOM returned).
struct Events {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Events {
    fn watch(rt: &Rt, id: &str) -> Events {
        let out = rt.root.path().join(format!("events-{id}.out"));
        let err = rt.root.path().join(format!("events-{id}.err"));
        let mut ev = rt.cmd();
        ev.args(["events", "--interval", "100ms", id])
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap());
        let mut child = ev.spawn().unwrap();
        let registered = poll(10, || {
            fs::read_to_string(&out).is_ok_and(|s| s.contains('\n'))
        });
        if !registered {
            let _ = child.kill();
            panic!("events printed nothing: {:?}", fs::read_to_string(&err));
        }
        Events { child, out }
    }

    /// Polls (10s bound) for an "oom" event of `id`.
    fn saw_oom(&self, id: &str) -> bool {
        poll(10, || {
            fs::read_to_string(&self.out).unwrap().lines().any(|l| {
                serde_json::from_str::<Value>(l).is_ok_and(|v| v["type"] == "oom" && v["id"] == id)
            })
        })
    }

    fn text(&self) -> String {
        fs::read_to_string(&self.out).unwrap()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn oom_kill_exits_137_and_events_reports_it() {
    require_v1!();
    let rt = Rt::new();
    let (b, id, _) = oom_bundle(&rt, "oomrun");
    let o = rt.run(&b, &id, &[]);
    assert_eq!(o.code, Some(137), "run of an OOM-killed container: {o:?}");

    let (b, id, cg) = oom_bundle(&rt, "oomev");
    rt.create(&b, &id, &[]).check("create");
    let ev = Events::watch(&rt, &id);
    rt.out(&["start", &id]).check("start");
    assert!(ev.saw_oom(&id), "no oom event: {}", ev.text());
    drop(ev);
    rt.wait_status(&id, "stopped");
    let ctl = host("memory", &cg, "memory.oom_control");
    let kills: u64 = ctl
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(kills >= 1, "{ctl}");
}

/// A process other than init is OOM-killed and init lives on: `events`
/// reports the OOM while the container still runs (v1's eventfd fires
/// before the kill is counted in memory.oom_control; a reader that waited
/// for the count saw nothing until init exited).
#[test]
fn events_reports_an_oom_kill_of_a_child_while_init_lives() {
    require_v1!();
    let rt = Rt::new();
    let (b, id, _) = oom_bundle(&rt, "oomchild");
    b.args(&[
        "sh",
        "-c",
        "sh -c 'x=a; while :; do x=$x$x$x$x; done'; sleep 1000",
    ]);
    rt.create(&b, &id, &[]).check("create");
    let ev = Events::watch(&rt, &id);
    rt.out(&["start", &id]).check("start");
    let saw = ev.saw_oom(&id);
    let running = rt.status(&id);
    assert!(saw, "no oom event while init lives: {}", ev.text());
    assert_eq!(
        running.as_deref(),
        Some("running"),
        "init died: the test proves nothing"
    );
}

/// The ids in a kernel cpu/node list ("0-2,5").
fn id_list(s: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        out.extend(a.parse::<u64>().unwrap()..=b.parse::<u64>().unwrap());
    }
    out
}

/// `events --stats` has runc's shape field by field: cpuset (the cpus and
/// mems init may use), per-CPU kernel and user time, camelCase throttling
/// counters, blkio entries for the I/O the container did, zero fields left
/// out as Go's omitempty leaves them out, intel_rdt and network_interfaces.
#[test]
fn events_stats_have_runcs_fields() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    // Direct reads reach the block layer (page-cache hits would not), then
    // a busy loop under a tight quota gets throttled.
    b.args(&[
        "sh",
        "-c",
        "dd if=/bin/busybox of=/dev/null bs=4096 iflag=direct 2>/dev/null; while :; do :; done",
    ]);
    let (id, _cg) = limited(
        &rt,
        &b,
        "statsshape",
        json!({"cpu": {"quota": 5000, "period": 100000}}),
    );
    rt.run_detached(&b, &id, &[]).check("run --detach");
    let pid = rt.pid(&id);
    let mut v = Value::Null;
    let stats = |v: &mut Value| {
        let o = rt.out(&["events", "--stats", &id]).check("events --stats");
        *v = serde_json::from_str(o.stdout.trim()).unwrap();
    };
    // Whether / is on a block device at all (else no blkio entries).
    let devices = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| {
            l.split_whitespace()
                .nth(2)
                .is_some_and(|m| !m.starts_with("0:"))
        });
    let read = |v: &Value| {
        v["data"]["blkio"]["ioServiceBytesRecursive"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|e| e["op"] == "Read")
                    .and_then(|e| e["value"].as_u64())
            })
    };
    // Per-CPU user and kernel times count in ticks.
    let busy = |v: &Value| -> u64 {
        let u = &v["data"]["cpu"]["usage"];
        ["percpu_kernel", "percpu_user"]
            .iter()
            .filter_map(|k| u[*k].as_array())
            .flatten()
            .filter_map(Value::as_u64)
            .sum()
    };
    // dd runs under the quota too: wait for its reads, throttling and ticks.
    poll(20, || {
        stats(&mut v);
        v["data"]["cpu"]["throttling"]["throttledPeriods"].as_u64() > Some(0)
            && (!devices || read(&v) > Some(0))
            && busy(&v) > 0
    });
    assert!(
        v["data"]["cpu"]["throttling"]["throttledPeriods"].as_u64() > Some(0),
        "never throttled (camelCase throttledPeriods): {v}"
    );
    let d = &v["data"];
    let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "cpu",
        "cpuset",
        "memory",
        "pids",
        "blkio",
        "hugetlb",
        "intel_rdt",
        "network_interfaces",
    ] {
        assert!(keys.contains(&k), "no {k}: {d}");
    }
    let t = &d["cpu"]["throttling"];
    assert!(t["throttledTime"].as_u64() > Some(0), "{t}");
    assert!(t.get("throttled_periods").is_none(), "{t}");

    // What init may use, as the kernel tells it in /proc/PID/status.
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .trim()
            .to_string()
    };
    let cs = &d["cpuset"];
    let ids = |v: &Value| -> Vec<u64> {
        v.as_array()
            .unwrap_or_else(|| panic!("not a list: {cs}"))
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        ids(&cs["cpus"]),
        id_list(&field("Cpus_allowed_list:")),
        "{cs}"
    );
    assert_eq!(
        ids(&cs["mems"]),
        id_list(&field("Mems_allowed_list:")),
        "{cs}"
    );
    for k in [
        "cpu_exclusive",
        "mem_hardwall",
        "mem_exclusive",
        "memory_migrate",
        "memory_spread_page",
        "memory_spread_slab",
        "memory_pressure",
        "sched_load_balance",
    ] {
        assert!(cs[k].is_u64(), "cpuset.{k}: {cs}");
    }
    assert!(cs["sched_relax_domain_level"].is_i64(), "{cs}");

    let u = &d["cpu"]["usage"];
    let n = u["percpu"].as_array().map_or(0, Vec::len);
    assert!(n > 0, "{u}");
    for k in ["percpu_kernel", "percpu_user"] {
        assert_eq!(u[k].as_array().map(Vec::len), Some(n), "{k}: {u}");
    }
    assert!(busy(&v) > 0, "a busy loop used no CPU time: {u}");

    // omitempty: a zero usage or max is left out, limit and failcnt stay.
    for e in ["usage", "swap", "kernel", "kernelTCP"] {
        let m = &d["memory"][e];
        assert!(m["limit"].is_u64() && m["failcnt"].is_u64(), "{e}: {m}");
        for k in ["usage", "max"] {
            assert_ne!(m.get(k), Some(&json!(0)), "{e}.{k}: {m}");
        }
    }
    assert!(d["network_interfaces"].is_null(), "{d}");

    // The container's direct reads.
    if devices {
        let blk = &d["blkio"]["ioServiceBytesRecursive"];
        assert!(read(&v) > Some(0), "no blkio reads: {}", d["blkio"]);
        assert!(
            blk.as_array().unwrap().iter().all(|e| e["major"].is_u64()),
            "{blk}"
        );
    } else {
        eprintln!("NOTE: no block device mounted; blkio entries not checked");
    }
}
