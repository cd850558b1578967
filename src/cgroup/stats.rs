//! Resource usage as runc's `events` prints it (cpu, memory, pids, blkio,
//! hugetlb), read from the v1 per-controller files or the v2 unified ones,
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
        let usage = |prefix: &str| {
            json!({
                "usage": num(&mem.join(format!("{prefix}usage_in_bytes"))),
                "max": num(&mem.join(format!("{prefix}max_usage_in_bytes"))),
                "failcnt": num(&mem.join(format!("{prefix}failcnt"))),
                "limit": num(&mem.join(format!("{prefix}limit_in_bytes"))),
            })
        };
        let raw = keyed(&mem.join("memory.stat"));
        let pids = self.dir_for("pids").unwrap_or_default();
        json!({
            "cpu": {
                "usage": {
                    "total": num(&cpu.join("cpuacct.usage")),
                    "percpu": list(&cpu.join("cpuacct.usage_percpu")),
                    "kernel": ticks("system"),
                    "user": ticks("user"),
                },
                "throttling": {
                    "periods": cpu_stat.get("nr_periods").cloned().unwrap_or(json!(0)),
                    "throttled_periods": cpu_stat.get("nr_throttled").cloned().unwrap_or(json!(0)),
                    "throttled_time": cpu_stat.get("throttled_time").cloned().unwrap_or(json!(0)),
                },
            },
            "memory": {
                "cache": raw.get("cache").cloned().unwrap_or(json!(0)),
                "usage": usage("memory."),
                "swap": usage("memory.memsw."),
                "kernel": usage("memory.kmem."),
                "kernelTCP": usage("memory.kmem.tcp."),
                "raw": raw,
            },
            "pids": {"current": num(&pids.join("pids.current")), "limit": num(&pids.join("pids.max"))},
            "blkio": {},
            "hugetlb": {},
        })
    }

    fn stats_v2(&self) -> Value {
        let d = self.dir_for("").unwrap_or_default();
        let cpu = keyed(&d.join("cpu.stat"));
        let us = |k: &str| cpu.get(k).and_then(Value::as_u64).unwrap_or(0) * 1000;
        let raw = keyed(&d.join("memory.stat"));
        json!({
            "cpu": {
                "usage": {"total": us("usage_usec"), "kernel": us("system_usec"), "user": us("user_usec")},
                "throttling": {
                    "periods": cpu.get("nr_periods").cloned().unwrap_or(json!(0)),
                    "throttled_periods": cpu.get("nr_throttled").cloned().unwrap_or(json!(0)),
                    "throttled_time": us("throttled_usec"),
                },
            },
            "memory": {
                "cache": raw.get("file").cloned().unwrap_or(json!(0)),
                "usage": {"usage": num(&d.join("memory.current")), "max": num(&d.join("memory.peak")),
                          "limit": num(&d.join("memory.max"))},
                "swap": {"usage": num(&d.join("memory.swap.current")), "limit": num(&d.join("memory.swap.max"))},
                "raw": raw,
            },
            "pids": {"current": num(&d.join("pids.current")), "limit": num(&d.join("pids.max"))},
            "blkio": {},
            "hugetlb": {},
        })
    }
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
        };
        let s = cg.stats();
        assert_eq!(s["cpu"]["usage"]["total"], 1_500_000);
        assert_eq!(s["cpu"]["throttling"]["throttled_time"], 7000);
        assert_eq!(s["memory"]["usage"]["usage"], 4096);
        assert_eq!(s["memory"]["usage"]["limit"], 0);
        assert_eq!(s["memory"]["cache"], 200);
        assert_eq!(s["pids"]["current"], 3);
        assert_eq!(cg.oom_kills(), 1);
        std::fs::remove_dir_all(&t).unwrap();
    }
}
