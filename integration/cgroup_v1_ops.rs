//! cgroup v1 (and hybrid) hosts: `update`, `pause`/`resume`, `ps`, `events`
//! and `kill --all` end to end, checked inside the container and on the host.
//!
//! There is no `exec` here: a *probe* container's init runs shell commands
//! it reads from a fifo in a bind-mounted host directory, and answers
//! through a file renamed into place, so every read is a real read by a
//! process inside the container.
use crate::cgroup_v1::{host, host_path, limited};
use crate::{Bundle, Rt, TempDir, poll, require_v1};
use serde_json::{Value, json};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

const MIB: i64 = 1024 * 1024;

/// A running container that answers commands (see the module doc).
struct Probe {
    dir: TempDir,
    err: PathBuf,
    id: String,
    cg: String,
}

impl Probe {
    fn start(rt: &Rt, b: &Bundle, tag: &str, res: Value) -> Probe {
        let dir = TempDir::new("probe");
        nix::unistd::mkfifo(&dir.path().join("req"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        b.mount(json!({"destination": "/x", "type": "bind", "source": dir.path(), "options": ["rbind", "rw"]}));
        b.args(&[
            "sh",
            "-c",
            // An EOF without a line is skipped, not fatal. It happened in
            // about 1 of 5 parallel runs against runc; most likely a thread
            // of the test binary forked while `ask` held the fifo open, so
            // its child kept a write end until exec, and this open found a
            // writer that then closed without writing.
            "while :; do read -r c </x/req && [ -n \"$c\" ] || continue; \
             sh -c \"$c\" >/x/resp.tmp 2>&1; mv /x/resp.tmp /x/resp; done",
        ]);
        let (id, cg) = limited(rt, b, tag, res);
        rt.run_detached(b, &id, &[]).check("run --detach probe");
        rt.wait_status(&id, "running");
        let err = rt.root.path().join(format!("run-{id}.err"));
        Probe { dir, err, id, cg }
    }

    /// Runs `cmd` inside; bounded: 10s to find the reader, 10s for the answer.
    fn ask(&self, cmd: &str) -> String {
        let req = self.dir.path().join("req");
        let resp = self.dir.path().join("resp");
        let mut f = None;
        // O_NONBLOCK: ENXIO until the container has the fifo open for reading.
        let found = poll(10, || {
            f = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&req)
                .ok();
            f.is_some()
        });
        assert!(
            found,
            "probe {} is not reading its fifo (asked {cmd:?}); host cgroup.procs: {:?}, oom_control: {:?}, stderr: {:?}",
            self.id,
            fs::read_to_string(host_path("pids", &self.cg, "cgroup.procs")),
            fs::read_to_string(host_path("memory", &self.cg, "memory.oom_control")),
            fs::read_to_string(&self.err),
        );
        writeln!(f.unwrap(), "{cmd}").unwrap();
        assert!(poll(10, || resp.exists()), "no answer to {cmd:?}");
        let out = fs::read_to_string(&resp).unwrap();
        fs::remove_file(&resp).unwrap();
        out.trim().to_string()
    }

    fn inside(&self, file: &str) -> String {
        self.ask(&format!("cat /sys/fs/cgroup/{file}"))
    }
}

/// Host and inside values of `ctrl/file` must both equal `want`.
fn both(p: &Probe, ctrl: &str, file: &str, want: &str) {
    assert_eq!(host(ctrl, &p.cg, file), want, "host {ctrl}/{file}");
    assert_eq!(
        p.inside(&format!("{ctrl}/{file}")),
        want,
        "inside {ctrl}/{file}"
    );
}

#[test]
fn update_with_flags() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let p = Probe::start(&rt, &b, "updflags", json!({"memory": {"limit": 64 * MIB}}));
    rt.out(&[
        "update",
        "--memory",
        "32m",
        "--pids-limit",
        "20",
        "--cpu-quota",
        "30000",
        "--cpu-period",
        "200000",
        "--cpu-share",
        "256",
        &p.id,
    ])
    .check("update with flags");
    both(
        &p,
        "memory",
        "memory.limit_in_bytes",
        &(32 * MIB).to_string(),
    );
    both(&p, "pids", "pids.max", "20");
    both(&p, "cpu", "cpu.cfs_quota_us", "30000");
    both(&p, "cpu", "cpu.cfs_period_us", "200000");
    both(&p, "cpu", "cpu.shares", "256");
}

/// v1 wants memory <= memory+swap at every moment: raising both must write
/// memsw first, lowering both the limit first. Also the other runc flags.
#[test]
fn update_memory_and_swap_both_ways_and_other_flags() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let res = json!({"memory": {"limit": 64 * MIB, "swap": 128 * MIB}, "pids": {"limit": 10}});
    let p = Probe::start(&rt, &b, "updswap", res);
    for (mem, swap) in [(256, 512), (32, 48)] {
        let (m, s) = (format!("{mem}m"), format!("{swap}m"));
        rt.out(&["update", "--memory", &m, "--memory-swap", &s, &p.id])
            .check(&format!("update --memory {m} --memory-swap {s}"));
        both(
            &p,
            "memory",
            "memory.limit_in_bytes",
            &(mem * MIB).to_string(),
        );
        both(
            &p,
            "memory",
            "memory.memsw.limit_in_bytes",
            &(swap * MIB).to_string(),
        );
    }
    let weight = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| host_path("blkio", &p.cg, f).exists())
        .unwrap();
    rt.out(&[
        "update",
        "--memory-reservation",
        "16m",
        "--blkio-weight",
        "200",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        "--pids-limit",
        "-1",
        &p.id,
    ])
    .check("update with more flags");
    both(
        &p,
        "memory",
        "memory.soft_limit_in_bytes",
        &(16 * MIB).to_string(),
    );
    both(
        &p,
        "memory",
        "memory.limit_in_bytes",
        &(32 * MIB).to_string(),
    );
    both(&p, "blkio", weight, "200");
    both(&p, "cpuset", "cpuset.cpus", "0");
    both(&p, "pids", "pids.max", "max");
    let o = rt.out(&["update", "--memory", "16m", "no-such-container"]);
    assert!(!o.ok(), "update of a missing container: {o:?}");
}

/// docker's payload (zeros mean unchanged), then the CRI payload with a
/// bare deny-all device rule that must not cut the container off /dev/null.
#[test]
fn update_with_resources_file_equals_and_stdin() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let p = Probe::start(
        &rt,
        &b,
        "updres",
        json!({"memory": {"limit": 64 * MIB}, "cpu": {"shares": 512}, "blockIO": {"weight": 300}}),
    );
    let weight = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| host_path("blkio", &p.cg, f).exists())
        .unwrap();
    let docker = r#"{"memory":{"limit":104857600,"reservation":0,"swap":209715200,"kernel":0},"cpu":{"shares":0,"quota":0,"period":0},"blockIO":{"weight":0}}"#;
    let file = p.dir.path().join("docker.json");
    fs::write(&file, docker).unwrap();
    rt.out(&["update", "--resources", file.to_str().unwrap(), &p.id])
        .check("update --resources FILE");
    both(&p, "memory", "memory.limit_in_bytes", "104857600");
    both(&p, "memory", "memory.memsw.limit_in_bytes", "209715200");
    both(&p, "cpu", "cpu.shares", "512");
    both(&p, "cpu", "cpu.cfs_quota_us", "-1");
    both(&p, "blkio", weight, "300");

    let pids = p.dir.path().join("pids.json");
    fs::write(&pids, r#"{"pids":{"limit":77}}"#).unwrap();
    rt.out(&["update", &format!("--resources={}", pids.display()), &p.id])
        .check("update --resources=FILE");
    both(&p, "pids", "pids.max", "77");

    let cri = r#"{"devices":[{"allow":false,"access":"rwm"}],"memory":{"limit":104857600,"swap":104857600},"cpu":{"quota":50000,"period":100000}}"#;
    let mut c = rt.cmd();
    c.args(["update", "--resources", "-", &p.id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cri.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "update --resources -: {o:?}");
    both(&p, "memory", "memory.memsw.limit_in_bytes", "104857600");
    both(&p, "cpu", "cpu.cfs_quota_us", "50000");
    both(&p, "cpu", "cpu.cfs_period_us", "100000");
    let list = host("devices", &p.cg, "devices.list");
    assert!(list.lines().any(|l| l == "c 1:3 rwm"), "{list}");
    assert_eq!(
        p.ask("echo x >/dev/null && echo ok"),
        "ok",
        "/dev/null after CRI update"
    );
}

/// Waits up to `secs` for the counter file to change from `from`.
fn changes(counter: &PathBuf, from: &str, secs: f64) -> bool {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        if fs::read_to_string(counter).is_ok_and(|s| s != from) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn counter_container(rt: &Rt, b: &Bundle, tag: &str) -> (String, String, TempDir) {
    let dir = TempDir::new("counter");
    b.mount(json!({"destination": "/x", "type": "bind", "source": dir.path(), "options": ["rbind", "rw"]}));
    b.args(&[
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i >/x/n.tmp; mv /x/n.tmp /x/n; usleep 20000; done",
    ]);
    let (id, cg) = limited(rt, b, tag, json!({}));
    rt.run_detached(b, &id, &[]).check("run --detach counter");
    let n = dir.path().join("n");
    assert!(poll(10, || n.exists()), "counter never started");
    (id, cg, dir)
}

#[test]
fn pause_stops_progress_and_resume_restarts_it() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let (id, cg, dir) = counter_container(&rt, &b, "pause");
    let n = dir.path().join("n");
    rt.out(&["pause", &id]).check("pause");
    assert_eq!(rt.status(&id).as_deref(), Some("paused"));
    assert_eq!(host("freezer", &cg, "freezer.state"), "FROZEN");
    let frozen = fs::read_to_string(&n).unwrap();
    // The counter ticks every 20ms: half a second without change is a stop.
    assert!(!changes(&n, &frozen, 0.5), "counter moved while paused");
    assert!(!rt.out(&["pause", &id]).ok(), "second pause must fail");
    // Limits can change while paused (runc allows it).
    rt.out(&["update", "--pids-limit", "33", &id])
        .check("update while paused");
    assert_eq!(host("pids", &cg, "pids.max"), "33");
    assert_eq!(rt.status(&id).as_deref(), Some("paused"));
    rt.out(&["resume", &id]).check("resume");
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    assert_eq!(host("freezer", &cg, "freezer.state"), "THAWED");
    assert!(
        changes(&n, &frozen, 10.0),
        "counter did not move after resume"
    );
    assert!(
        !rt.out(&["resume", &id]).ok(),
        "resume of a running container"
    );
}

#[test]
fn delete_force_of_a_paused_container() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let (id, cg, _dir) = counter_container(&rt, &b, "delpaused");
    let pid = rt.pid(&id);
    rt.out(&["pause", &id]).check("pause");
    let o = rt.out(&["delete", &id]);
    assert!(
        !o.ok(),
        "delete without --force of a paused container: {o:?}"
    );
    assert_eq!(rt.status(&id).as_deref(), Some("paused"));
    let o = rt
        .out(&["ps", "--format", "json", &id])
        .check("ps of a paused container");
    let pids: Vec<i64> = serde_json::from_str(o.stdout.trim()).unwrap();
    assert!(pids.contains(&(pid as i64)), "{pids:?} lacks init {pid}");
    rt.out(&["delete", "--force", &id])
        .check("delete --force paused");
    assert!(rt.state(&id).is_none());
    assert!(
        poll(10, || !PathBuf::from(format!("/proc/{pid}")).exists()),
        "init survived"
    );
    let left = crate::cgroup::cgroup_dirs_left(&cg);
    assert!(left.is_empty(), "cgroup dirs left: {left:?}");
    let o = rt.out(&["pause", &id]);
    assert!(!o.ok(), "pause of a deleted container: {o:?}");
}

#[test]
fn kill_all_of_a_paused_container_and_pause_when_stopped() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    let (id, cg, _dir) = counter_container(&rt, &b, "killpaused");
    rt.out(&["pause", &id]).check("pause");
    rt.out(&["kill", "--all", &id, "9"])
        .check("kill --all 9 of a paused container");
    rt.wait_status(&id, "stopped");
    let procs = host("pids", &cg, "cgroup.procs");
    assert!(
        poll(10, || host("pids", &cg, "cgroup.procs").is_empty()),
        "{procs}"
    );
    let o = rt.out(&["pause", &id]);
    assert!(!o.ok(), "pause of a stopped container must fail: {o:?}");
    assert_eq!(host("freezer", &cg, "freezer.state"), "THAWED");
}

#[test]
fn ps_lists_exactly_the_cgroup_pids() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    let (id, cg) = limited(&rt, &b, "ps", json!({}));
    rt.run_detached(&b, &id, &[]).check("run --detach");
    let init = rt.pid(&id);
    let procs = || -> Vec<i64> {
        let mut v: Vec<i64> = host("pids", &cg, "cgroup.procs")
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        v.sort();
        v
    };
    assert!(poll(10, || procs().len() == 3), "{:?}", procs());
    let o = rt
        .out(&["ps", "--format", "json", &id])
        .check("ps --format json");
    let mut got: Vec<i64> = serde_json::from_str(o.stdout.trim()).unwrap();
    got.sort();
    assert_eq!(got, procs());
    assert!(got.contains(&(init as i64)));
    for pid in got.iter().filter(|&&p| p != init as i64) {
        let st = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(
            st.contains(&format!("PPid:\t{init}\n")),
            "{pid} is not a child of init"
        );
    }
    let custom = rt
        .out(&["ps", &id, "-o", "pid,comm"])
        .check("ps -o pid,comm");
    let rows: Vec<&str> = custom.stdout.lines().collect();
    assert_eq!(rows.len(), 4, "{}", custom.stdout);
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.contains("sleep") || r.contains("sh")),
        "{}",
        custom.stdout
    );
    let t = rt.out(&["ps", &id]).check("ps");
    let header = t.stdout.lines().next().unwrap_or_default();
    assert!(
        header.split_whitespace().any(|h| h == "PID"),
        "{}",
        t.stdout
    );
    assert_eq!(t.stdout.lines().count(), 4, "{}", t.stdout);
}

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

#[test]
fn oom_kill_exits_137_and_events_reports_it() {
    require_v1!();
    let rt = Rt::new();
    let (b, id, _) = oom_bundle(&rt, "oomrun");
    let o = rt.run(&b, &id, &[]);
    assert_eq!(o.code, Some(137), "run of an OOM-killed container: {o:?}");

    let (b, id, cg) = oom_bundle(&rt, "oomev");
    rt.create(&b, &id, &[]).check("create");
    let out = rt.root.path().join("events.out");
    let mut ev = rt.cmd();
    ev.args(["events", "--interval", "100ms", &id])
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(rt.root.path().join("events.err")).unwrap());
    let mut ev = ev.spawn().unwrap();
    // A first line proves the OOM watch is registered, for both runtimes:
    // skiff prints stats only from its poll loop on the OOM fd, and runc's
    // printing loop starts only after NotifyOOM returned.
    let registered = poll(10, || {
        fs::read_to_string(&out).is_ok_and(|s| s.contains('\n'))
    });
    if !registered {
        let _ = ev.kill();
        panic!(
            "events printed nothing: {:?}",
            fs::read_to_string(rt.root.path().join("events.err"))
        );
    }
    rt.out(&["start", &id]).check("start");
    let saw = poll(10, || {
        fs::read_to_string(&out).unwrap().lines().any(|l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|v| v["type"] == "oom" && v["id"] == id.as_str())
        })
    });
    let _ = ev.kill();
    let _ = ev.wait();
    assert!(saw, "no oom event: {}", fs::read_to_string(&out).unwrap());
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

/// A created (not yet started) container can be paused; resume returns it
/// to "created" (the exec fifo still exists), as runc reports it.
#[test]
fn pause_and_resume_a_created_container() {
    require_v1!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["true"]);
    let (id, cg) = limited(&rt, &b, "pausecreated", json!({}));
    rt.create(&b, &id, &[]).check("create");
    rt.out(&["pause", &id]).check("pause created");
    assert_eq!(rt.status(&id).as_deref(), Some("paused"));
    assert_eq!(host("freezer", &cg, "freezer.state"), "FROZEN");
    rt.out(&["resume", &id]).check("resume");
    assert_eq!(rt.status(&id).as_deref(), Some("created"));
    assert_eq!(host("freezer", &cg, "freezer.state"), "THAWED");
    rt.out(&["start", &id]).check("start after resume");
    rt.wait_status(&id, "stopped");
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
