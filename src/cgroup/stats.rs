//! Resource usage as runc's `events` prints it (cpu, cpuset, memory, pids,
//! blkio, hugetlb: the fields and omissions of runc 1.1's types/events.go), read from the v1 per-controller files or the v2 unified ones,
//! and the OOM-kill counter `events` watches.
//! Runs in: the runtime process (`skiff events`).
use super::{Cgroup, Version};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

impl Cgroup {
    /// The directory holding `ctrl`'s files (v2: the one directory).
    pub fn dir_for(&self, ctrl: &str) -> Option<PathBuf> {
        match self.version {
            Version::V2 => self.hierarchies.first().map(|h| h.dir.clone()),
            Version::V1 => self
                .hierarchies
                .iter()
                .find(|h| h.controllers.iter().any(|c| c == ctrl))
                .map(|h| h.dir.clone()),
        }
    }

    /// The file holding the count of OOM kills (`oom_kill N`).
    pub fn oom_file(&self) -> &'static str {
        match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        }
    }

    /// The kernel's count of OOM kills in this cgroup (0 if unknown).
    pub fn oom_kills(&self) -> u64 {
        let (file, key) = (self.oom_file(), "oom_kill");
        self.dir_for("memory")
            .and_then(|d| keyed(&d.join(file)).get(key).cloned())
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
    }

    pub fn stats(&self) -> Value {
        match self.version {
            Version::V1 => self.stats_v1(),
            Version::V2 => self.stats_v2(),
        }
    }

    fn stats_v1(&self) -> Value {
        let cpu = self.dir_for("cpuacct").unwrap_or_default();
        let cpu_stat = keyed(&self.dir_for("cpu").unwrap_or_default().join("cpu.stat"));
        let acct = keyed(&cpu.join("cpuacct.stat"));
        // cpuacct.stat counts USER_HZ (100 on Linux) ticks; runc reports ns.
        let ticks = |k: &str| acct.get(k).and_then(Value::as_u64).unwrap_or(0) * 10_000_000;
        let mem = self.dir_for("memory").unwrap_or_default();
        let entry = |prefix: &str| {
            memory_entry(
                num(&mem.join(format!("{prefix}limit_in_bytes"))),
                num(&mem.join(format!("{prefix}usage_in_bytes"))),
                num(&mem.join(format!("{prefix}max_usage_in_bytes"))),
                num(&mem.join(format!("{prefix}failcnt"))),
            )
        };
        let raw = keyed(&mem.join("memory.stat"));
        let pids = self.dir_for("pids").unwrap_or_default();
        let cpu_usage = Obj::new()
            .nonzero("total", num(&cpu.join("cpuacct.usage")))
            .nonempty("percpu", list(&cpu.join("cpuacct.usage_percpu")))
            .nonempty("percpu_kernel", list(&cpu.join("cpuacct.usage_percpu_sys")))
            .nonempty("percpu_user", list(&cpu.join("cpuacct.usage_percpu_user")))
            .put("kernel", ticks("system"))
            .put("user", ticks("user"));
        let field = |k: &str| cpu_stat.get(k).and_then(Value::as_u64).unwrap_or(0);
        let throttling = Obj::new()
            .nonzero("periods", field("nr_periods"))
            .nonzero("throttledPeriods", field("nr_throttled"))
            .nonzero("throttledTime", field("throttled_time"));
        let memory = Obj::new()
            .nonzero(
                "cache",
                raw.get("cache").and_then(Value::as_u64).unwrap_or(0),
            )
            .put("usage", entry("memory."))
            .put("swap", entry("memory.memsw."))
            .put("kernel", entry("memory.kmem."))
            .put("kernelTCP", entry("memory.kmem.tcp."))
            .nonempty_map("raw", raw);
        json!({
            "cpu": {"usage": cpu_usage.0, "throttling": throttling.0},
            "cpuset": cpuset(&self.dir_for("cpuset").unwrap_or_default()),
            "memory": memory.0,
            "pids": pids_stats(&pids),
            "blkio": blkio(&self.dir_for("blkio").unwrap_or_default()),
            "hugetlb": {},
            "intel_rdt": {},
            "network_interfaces": null,
        })
    }

    fn stats_v2(&self) -> Value {
        let d = self.dir_for("").unwrap_or_default();
        let cpu = keyed(&d.join("cpu.stat"));
        let us = |k: &str| cpu.get(k).and_then(Value::as_u64).unwrap_or(0) * 1000;
        let field = |k: &str| cpu.get(k).and_then(Value::as_u64).unwrap_or(0);
        let raw = keyed(&d.join("memory.stat"));
        let cpu_usage = Obj::new()
            .nonzero("total", us("usage_usec"))
            .put("kernel", us("system_usec"))
            .put("user", us("user_usec"));
        let throttling = Obj::new()
            .nonzero("periods", field("nr_periods"))
            .nonzero("throttledPeriods", field("nr_throttled"))
            .nonzero("throttledTime", us("throttled_usec"));
        let memory = Obj::new()
            .nonzero(
                "cache",
                raw.get("file").and_then(Value::as_u64).unwrap_or(0),
            )
            .put(
                "usage",
                memory_entry(
                    num(&d.join("memory.max")),
                    num(&d.join("memory.current")),
                    num(&d.join("memory.peak")),
                    0,
                ),
            )
            .put(
                "swap",
                memory_entry(
                    num(&d.join("memory.swap.max")),
                    num(&d.join("memory.swap.current")),
                    0,
                    0,
                ),
            )
            .put("kernel", memory_entry(0, 0, 0, 0))
            .put("kernelTCP", memory_entry(0, 0, 0, 0))
            .nonempty_map("raw", raw);
        json!({
            "cpu": {"usage": cpu_usage.0, "throttling": throttling.0},
            "cpuset": cpuset(Path::new("")),
            "memory": memory.0,
            "pids": pids_stats(&d),
            "blkio": {},
            "hugetlb": {},
            "intel_rdt": {},
            "network_interfaces": null,
        })
    }
}

/// A JSON object built field by field, leaving out what Go's `omitempty`
/// leaves out of runc's (zero numbers, empty lists and maps).
struct Obj(Map<String, Value>);

impl Obj {
    fn new() -> Obj {
        Obj(Map::new())
    }
    fn put(mut self, k: &str, v: impl Into<Value>) -> Obj {
        self.0.insert(k.into(), v.into());
        self
    }
    fn nonzero(self, k: &str, v: u64) -> Obj {
        if v == 0 { self } else { self.put(k, v) }
    }
    fn nonempty(self, k: &str, v: Vec<u64>) -> Obj {
        if v.is_empty() { self } else { self.put(k, v) }
    }
    fn nonempty_map(self, k: &str, v: Map<String, Value>) -> Obj {
        if v.is_empty() {
            self
        } else {
            self.put(k, Value::Object(v))
        }
    }
}

/// runc's MemoryEntry: limit and failcnt always, usage and max when not 0.
fn memory_entry(limit: u64, usage: u64, max: u64, failcnt: u64) -> Value {
    Value::Object(
        Obj::new()
            .put("limit", limit)
            .nonzero("usage", usage)
            .nonzero("max", max)
            .put("failcnt", failcnt)
            .0,
    )
}

fn pids_stats(dir: &Path) -> Value {
    Value::Object(
        Obj::new()
            .nonzero("current", num(&dir.join("pids.current")))
            .nonzero("limit", num(&dir.join("pids.max")))
            .0,
    )
}

/// runc's CPUSetStats from a v1 cpuset directory (all 0 without one).
fn cpuset(dir: &Path) -> Value {
    let has = !dir.as_os_str().is_empty();
    let n = |f: &str| if has { num(&dir.join(f)) } else { 0 };
    let ids = |f: &str| {
        let text = match has {
            true => std::fs::read_to_string(dir.join(f)).unwrap_or_default(),
            false => String::new(),
        };
        id_list(&text)
    };
    let level = std::fs::read_to_string(dir.join("cpuset.sched_relax_domain_level"))
        .ok()
        .filter(|_| has)
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    Value::Object(
        Obj::new()
            .nonempty("cpus", ids("cpuset.cpus"))
            .put("cpu_exclusive", n("cpuset.cpu_exclusive"))
            .nonempty("mems", ids("cpuset.mems"))
            .put("mem_hardwall", n("cpuset.mem_hardwall"))
            .put("mem_exclusive", n("cpuset.mem_exclusive"))
            .put("memory_migrate", n("cpuset.memory_migrate"))
            .put("memory_spread_page", n("cpuset.memory_spread_page"))
            .put("memory_spread_slab", n("cpuset.memory_spread_slab"))
            .put("memory_pressure", n("cpuset.memory_pressure"))
            .put("sched_load_balance", n("cpuset.sched_load_balance"))
            .put("sched_relax_domain_level", level)
            .0,
    )
}

/// "0-2,5" as [0, 1, 2, 5] (a cpuset list).
fn id_list(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
            out.extend(a..=b.min(a + 65535));
        }
    }
    out
}

/// runc 1.1's v1 blkio stats: the first group of files (BFQ debug, BFQ,
/// CFQ, throttle recursive, throttle) whose first file has entries.
fn blkio(dir: &Path) -> Value {
    const GROUPS: &[&[(&str, &str)]] = &[
        &[
            ("blkio.bfq.sectors_recursive", "sectorsRecursive"),
            (
                "blkio.bfq.io_service_time_recursive",
                "ioServiceTimeRecursive",
            ),
            ("blkio.bfq.io_wait_time_recursive", "ioWaitTimeRecursive"),
            ("blkio.bfq.io_merged_recursive", "ioMergedRecursive"),
            ("blkio.bfq.io_queued_recursive", "ioQueueRecursive"),
            ("blkio.bfq.time_recursive", "ioTimeRecursive"),
            ("blkio.bfq.io_serviced_recursive", "ioServicedRecursive"),
            (
                "blkio.bfq.io_service_bytes_recursive",
                "ioServiceBytesRecursive",
            ),
        ],
        &[
            ("blkio.bfq.io_serviced_recursive", "ioServicedRecursive"),
            (
                "blkio.bfq.io_service_bytes_recursive",
                "ioServiceBytesRecursive",
            ),
        ],
        &[
            ("blkio.sectors_recursive", "sectorsRecursive"),
            ("blkio.io_service_time_recursive", "ioServiceTimeRecursive"),
            ("blkio.io_wait_time_recursive", "ioWaitTimeRecursive"),
            ("blkio.io_merged_recursive", "ioMergedRecursive"),
            ("blkio.io_queued_recursive", "ioQueueRecursive"),
            ("blkio.time_recursive", "ioTimeRecursive"),
            ("blkio.io_serviced_recursive", "ioServicedRecursive"),
            (
                "blkio.io_service_bytes_recursive",
                "ioServiceBytesRecursive",
            ),
        ],
        &[
            (
                "blkio.throttle.io_serviced_recursive",
                "ioServicedRecursive",
            ),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "ioServiceBytesRecursive",
            ),
        ],
        &[
            ("blkio.throttle.io_serviced", "ioServicedRecursive"),
            ("blkio.throttle.io_service_bytes", "ioServiceBytesRecursive"),
        ],
    ];
    // runc's field order in its JSON.
    const ORDER: [&str; 8] = [
        "ioServiceBytesRecursive",
        "ioServicedRecursive",
        "ioQueueRecursive",
        "ioServiceTimeRecursive",
        "ioWaitTimeRecursive",
        "ioMergedRecursive",
        "ioTimeRecursive",
        "sectorsRecursive",
    ];
    let mut got: Map<String, Value> = Map::new();
    if !dir.as_os_str().is_empty() {
        for group in GROUPS {
            let first = blkio_entries(&dir.join(group[0].0));
            if first.is_empty() {
                continue;
            }
            // As runc: the group ends at its first file without entries.
            for (file, key) in group.iter() {
                let e = blkio_entries(&dir.join(file));
                if e.is_empty() {
                    break;
                }
                got.insert((*key).into(), Value::Array(e));
            }
            break;
        }
    }
    let mut out = Map::new();
    for k in ORDER {
        if let Some(v) = got.remove(k) {
            out.insert(k.into(), v);
        }
    }
    Value::Object(out)
}

/// "MAJ:MIN [OP] VALUE" lines ("Total N" lines are skipped, as runc does),
/// each as runc's BlkioEntry (zero fields left out).
fn blkio_entries(p: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some((maj, min)) = f.first().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (op, value) = match f.len() {
            3 => (f[1], f[2]),
            2 => ("", f[1]),
            _ => continue,
        };
        let (Ok(maj), Ok(min), Ok(value)) =
            (maj.parse::<u64>(), min.parse::<u64>(), value.parse::<u64>())
        else {
            continue;
        };
        let mut e = Obj::new().nonzero("major", maj).nonzero("minor", min);
        if !op.is_empty() {
            e = e.put("op", op);
        }
        out.push(Value::Object(e.nonzero("value", value).0));
    }
    out
}

/// A single number; "max" (no limit) and missing files read as 0, as in runc.
fn num(p: &Path) -> u64 {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn list(p: &Path) -> Vec<u64> {
    std::fs::read_to_string(p)
        .map(|s| {
            s.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// "key value" lines (memory.stat, cpu.stat, memory.events) as a JSON object.
fn keyed(p: &Path) -> Map<String, Value> {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| {
            v.trim()
                .parse::<u64>()
                .ok()
                .map(|n| (k.to_string(), json!(n)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuset_lists_and_blkio_entries() {
        assert_eq!(id_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert_eq!(id_list(""), Vec::<u64>::new());
        let t = std::env::temp_dir().join(format!("skiff-blkio-{}", std::process::id()));
        std::fs::create_dir_all(&t).unwrap();
        let w = |f: &str, s: &str| std::fs::write(t.join(f), s).unwrap();
        // BFQ files with only a Total line: runc moves on to the throttle ones.
        w("blkio.bfq.io_serviced_recursive", "Total 0\n");
        w(
            "blkio.throttle.io_serviced_recursive",
            "8:0 Read 3\n8:0 Write 0\nTotal 3\n",
        );
        w(
            "blkio.throttle.io_service_bytes_recursive",
            "8:16 Read 4096\nTotal 4096\n",
        );
        let b = blkio(&t);
        assert_eq!(
            b,
            json!({
                "ioServiceBytesRecursive": [{"major": 8, "minor": 16, "op": "Read", "value": 4096}],
                "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 3}, {"major": 8, "op": "Write"}],
            })
        );
        std::fs::remove_dir_all(&t).unwrap();
    }
    use crate::cgroup::Hierarchy;

    #[test]
    fn v2_stats_and_oom_count_from_files() {
        let t = std::env::temp_dir().join(format!("skiff-stats-{}", std::process::id()));
        std::fs::create_dir_all(&t).unwrap();
        let w = |f: &str, s: &str| std::fs::write(t.join(f), s).unwrap();
        w(
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\nnr_throttled 1\nthrottled_usec 7\n",
        );
        w("memory.current", "4096\n");
        w("memory.max", "max\n");
        w("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n");
        w("memory.stat", "anon 100\nfile 200\n");
        w("pids.current", "3\n");
        let cg = Cgroup {
            version: Version::V2,
            hierarchies: vec![Hierarchy {
                version: Version::V2,
                controllers: vec![],
                mount: t.clone(),
                dir: t.clone(),
            }],
            created: vec![],
            rootless: false,
            systemd: None,
        };
        let s = cg.stats();
        assert_eq!(s["cpu"]["usage"]["total"], 1_500_000);
        assert_eq!(s["cpu"]["throttling"]["throttledTime"], 7000);
        assert_eq!(s["memory"]["usage"]["usage"], 4096);
        assert_eq!(s["memory"]["usage"]["limit"], 0);
        assert_eq!(s["memory"]["cache"], 200);
        assert_eq!(s["pids"]["current"], 3);
        assert_eq!(cg.oom_kills(), 1);
        std::fs::remove_dir_all(&t).unwrap();
    }
}
