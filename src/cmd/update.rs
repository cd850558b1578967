//! `skiff update`: change a running container's cgroup limits, from a
//! LinuxResources JSON file (`-` for stdin) and/or runc's individual flags.
//! Zeros mean "leave unchanged" (docker sends them), and device rules are
//! not touched (the CRI sends a deny-all entry that runc 1.1 ignores too).
//! Runs in: the runtime process.
use crate::Globals;
use crate::cgroup::Version;
use crate::cli::{Cmd, ID, Opt, number, path, string};
use crate::container::{Container, Status};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, Default)]
pub struct Args {
    pub resources: Option<PathBuf>,
    pub blkio_weight: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_share: Option<u64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<i64>,
    pub pids_limit: Option<i64>,
    pub id: String,
}

pub static CLI: Cmd<Args> = Cmd {
    init: Args::default,
    opts: &[
        Opt::value(
            "resources",
            Some('r'),
            "FILE",
            "Path to a file containing the resources to update, or \"-\" to read from stdin",
            |a, v| path(v).map(|p| a.resources = Some(p)),
        ),
        Opt::value(
            "blkio-weight",
            None,
            "BLKIO_WEIGHT",
            "Specifies per cgroup weight, range is from 10 to 1000",
            |a, v| number(v).map(|n| a.blkio_weight = Some(n)),
        ),
        Opt::value(
            "cpu-period",
            None,
            "CPU_PERIOD",
            "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default",
            |a, v| number(v).map(|n| a.cpu_period = Some(n)),
        ),
        Opt::value(
            "cpu-quota",
            None,
            "CPU_QUOTA",
            "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period",
            |a, v| number(v).map(|n| a.cpu_quota = Some(n)),
        ),
        Opt::value(
            "cpu-share",
            None,
            "CPU_SHARE",
            "CPU shares (relative weight vs. other containers)",
            |a, v| number(v).map(|n| a.cpu_share = Some(n)),
        ),
        Opt::value(
            "cpu-rt-period",
            None,
            "CPU_RT_PERIOD",
            "CPU realtime period to be used for hardcapping (in usecs)",
            |a, v| number(v).map(|n| a.cpu_rt_period = Some(n)),
        ),
        Opt::value(
            "cpu-rt-runtime",
            None,
            "CPU_RT_RUNTIME",
            "CPU realtime hardcap limit (in usecs)",
            |a, v| number(v).map(|n| a.cpu_rt_runtime = Some(n)),
        ),
        Opt::value(
            "cpuset-cpus",
            None,
            "CPUSET_CPUS",
            "CPU(s) to use",
            |a, v| string(v).map(|s| a.cpuset_cpus = Some(s)),
        ),
        Opt::value(
            "cpuset-mems",
            None,
            "CPUSET_MEMS",
            "Memory node(s) to use",
            |a, v| string(v).map(|s| a.cpuset_mems = Some(s)),
        ),
        Opt::value(
            "memory",
            Some('m'),
            "MEMORY",
            "Memory limit (in bytes; suffixes k, m, g allowed)",
            |a, v| parse_bytes(&string(v)?).map(|n| a.memory = Some(n)),
        ),
        Opt::value(
            "memory-reservation",
            None,
            "MEMORY_RESERVATION",
            "Memory reservation or soft_limit (in bytes)",
            |a, v| parse_bytes(&string(v)?).map(|n| a.memory_reservation = Some(n)),
        ),
        Opt::value(
            "memory-swap",
            None,
            "MEMORY_SWAP",
            "Total memory usage (memory + swap); set '-1' to enable unlimited swap",
            |a, v| parse_bytes(&string(v)?).map(|n| a.memory_swap = Some(n)),
        ),
        Opt::value(
            "pids-limit",
            None,
            "PIDS_LIMIT",
            "Maximum number of pids allowed in the container",
            |a, v| number(v).map(|n| a.pids_limit = Some(n)),
        ),
    ],
    args: &[ID],
    set_args: |a, mut v| a.id = v.swap_remove(0),
};

/// docker's units.RAMInBytes: "512", "100m", "1.5g", "64KiB"; -1 is unlimited.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches("ib").trim_end_matches('b');
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1i64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        Some((i, 't')) => (&t[..i], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid size {s:?}"))?;
    if n < 0.0 {
        return Err(format!("invalid size {s:?}"));
    }
    Ok((n * mult as f64) as i64)
}

fn from_flags(a: &Args) -> Value {
    let mut v = json!({
        "memory": {"limit": a.memory, "reservation": a.memory_reservation, "swap": a.memory_swap},
        "cpu": {"shares": a.cpu_share, "quota": a.cpu_quota, "period": a.cpu_period,
                "realtimeRuntime": a.cpu_rt_runtime, "realtimePeriod": a.cpu_rt_period,
                "cpus": a.cpuset_cpus, "mems": a.cpuset_mems},
        "blockIO": {"weight": a.blkio_weight},
    });
    if let Some(p) = a.pids_limit {
        v["pids"] = json!({"limit": p});
    }
    v
}

/// Removes nulls, zeros and empty strings ("unchanged"), and device rules.
fn strip_unchanged(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("devices");
        for (_, x) in o.iter_mut() {
            strip_unchanged(x);
        }
        o.retain(|_, x| match x {
            Value::Null => false,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            Value::Object(m) => !m.is_empty(),
            _ => true,
        });
    }
}

/// File resources first, flags on top (runc's order).
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) if !o.is_null() => *b = o,
        _ => {}
    }
}

/// Known fields `update` cannot apply to a running container: an error
/// naming the field rather than a silent no-op. (Device rules are left
/// alone on purpose, see the module comment; everything else `create`
/// applies, `update` applies too, through the same `Cgroup::plan`.)
fn refuse_unsupported(res: &oci_spec::runtime::LinuxResources, v: Version) -> Result<()> {
    // v1: the kernel itself refuses a limit below the usage it cannot
    // reclaim (EBUSY), which is what checkBeforeUpdate asks for. v2 would
    // OOM-kill instead: refuse rather than pretend.
    if let Some(m) = res.memory()
        && m.check_before_update() == Some(true)
        && m.limit().is_some()
        && v == Version::V2
    {
        bail!("linux.resources.memory.checkBeforeUpdate: not supported by skiff on cgroup v2 yet");
    }
    #[allow(deprecated)] // oci-spec marks `kernel` deprecated, as the spec does
    if let Some(m) = res.memory()
        && m.kernel().is_some()
    {
        // runc 1.1 ignores it with a warning; Linux 6.x no longer enforces
        // memory.kmem.limit_in_bytes, so "updated" would be a lie.
        bail!("linux.resources.memory.kernel: kernel memory limits cannot be updated");
    }
    Ok(())
}

#[inline(never)]
pub fn run(args: Args, g: &Globals) -> Result<()> {
    let c = Container::load(&g.root, &args.id)?;
    if c.status() == Status::Stopped {
        bail!("container {} is not running", args.id);
    }
    let mut v = match &args.resources {
        Some(p) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            serde_json::from_str(&s).context("parse resources from stdin")?
        }
        Some(p) => serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("read {}", p.display()))?,
        )
        .with_context(|| format!("parse {}", p.display()))?,
        None => json!({}),
    };
    merge(&mut v, from_flags(&args));
    strip_unchanged(&mut v);
    let (res, unknown): (oci_spec::runtime::LinuxResources, _) =
        crate::spec::deserialize_checked(v).context("resources")?;
    crate::spec::log_unknown("resources", &unknown);
    refuse_unsupported(&res, c.state.cgroup.version)?;
    let writes = c.state.cgroup.plan_update(&res)?;
    c.state.cgroup.update(&writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert_eq!(parse_bytes("100m").unwrap(), 100 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn docker_and_cri_payloads_keep_only_real_changes() {
        let mut docker: Value = serde_json::from_str(r#"{"memory":{"limit":104857600,"reservation":0,"swap":209715200,"kernel":0},"cpu":{"shares":0,"quota":0,"period":0},"blockIO":{"weight":0}}"#).unwrap();
        strip_unchanged(&mut docker);
        assert_eq!(
            docker,
            json!({"memory": {"limit": 104857600, "swap": 209715200}})
        );
        let mut cri: Value = serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}],"memory":{"limit":104857600,"swap":104857600},"cpu":{"quota":50000,"period":100000}}"#).unwrap();
        strip_unchanged(&mut cri);
        assert!(cri.get("devices").is_none());
        assert_eq!(cri["cpu"], json!({"quota": 50000, "period": 100000}));
    }

    #[test]
    fn flags_override_file_values() {
        let mut base = json!({"memory": {"limit": 1, "swap": 5}});
        merge(&mut base, json!({"memory": {"limit": 7, "swap": null}}));
        assert_eq!(base, json!({"memory": {"limit": 7, "swap": 5}}));
    }
}
