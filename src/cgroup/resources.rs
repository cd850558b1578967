//! Runs in: the runtime process (P), before the first fork (pure planning).
//!
//! The only place that knows controller semantics: `linux.resources` becomes a
//! list of `Write`s (file writes, and on v2 a device filter), with cgroup v1
//! and v2 side by side so the two cannot drift apart (crun keeps them
//! together for the same reason). `v1.rs` and `v2.rs` only decide *where* a
//! write goes.
//!
//! Zero values mean "leave unchanged", as in runc 1.1: docker's `update`
//! payload sends `"shares":0, "quota":0, "kernel":0` for fields it leaves alone.

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};
use serde::{Deserialize, Serialize};

/// Which cgroup filesystem the files belong to. A hybrid host counts as V1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    V1,
    V2,
}

/// A cgroup controller a write is for: it picks the v1 hierarchy (or the v2
/// controller to enable in `cgroup.subtree_control`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Controller {
    Cpu,
    Cpuset,
    Memory,
    Pids,
    Blkio,
    Io,
    Hugetlb,
    NetCls,
    NetPrio,
    Rdma,
    Devices,
    /// The prefix of a `linux.resources.unified` key naming no controller
    /// above (`misc`, `cgroup`, ...): v2 only, where every write goes to the
    /// one directory.
    Other(String),
}

impl Controller {
    const NAMED: [Controller; 11] = [
        Controller::Cpu,
        Controller::Cpuset,
        Controller::Memory,
        Controller::Pids,
        Controller::Blkio,
        Controller::Io,
        Controller::Hugetlb,
        Controller::NetCls,
        Controller::NetPrio,
        Controller::Rdma,
        Controller::Devices,
    ];

    /// The kernel's name: the v1 subsystem, the v2 controller, the file prefix.
    pub fn name(&self) -> &str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Blkio => "blkio",
            Controller::Io => "io",
            Controller::Hugetlb => "hugetlb",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
            Controller::Rdma => "rdma",
            Controller::Devices => "devices",
            Controller::Other(name) => name,
        }
    }

    /// The controller called `name` (`Other` for a name with no variant).
    pub fn from_name(name: &str) -> Controller {
        Self::NAMED
            .into_iter()
            .find(|c| c.name() == name)
            .unwrap_or_else(|| Controller::Other(name.to_string()))
    }
}

impl std::fmt::Display for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One step of a cgroup plan, pure data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// `value` written to the control file `file` in `controller`'s directory
    /// (v1 device rules too: one rule per write to devices.allow/deny).
    File {
        controller: Controller,
        file: String,
        value: String,
    },
    /// cgroup v2 device control, which has no devices.* files: v2.rs compiles
    /// the rules (config order, later rules win as on v1) into a
    /// BPF_PROG_TYPE_CGROUP_DEVICE program and attaches it to the directory.
    DeviceFilter { rules: Vec<DeviceRule> },
}

impl Write {
    /// The controller whose hierarchy (or v2 controller) this write needs.
    pub fn controller(&self) -> &Controller {
        match self {
            Write::File { controller, .. } => controller,
            Write::DeviceFilter { .. } => &Controller::Devices,
        }
    }

    /// The file and value of a file write; None for a device filter.
    pub fn file(&self) -> Option<(&str, &str)> {
        match self {
            Write::File { file, value, .. } => Some((file, value)),
            Write::DeviceFilter { .. } => None,
        }
    }

    /// The pids limit, which `create` writes last (see launch.rs).
    pub fn is_pids_max(&self) -> bool {
        matches!(self, Write::File { controller: Controller::Pids, file, .. } if file == "pids.max")
    }
}

fn w(controller: Controller, file: impl Into<String>, value: impl ToString) -> Write {
    Write::File {
        controller,
        file: file.into(),
        value: value.to_string(),
    }
}

/// Turn `linux.resources` into writes for one cgroup version. Device rules are
/// included (v1 only, see `devices`); hugetlb is produced by `hugetlb` so the
/// hybrid layout can ask for v2 names while everything else is v1.
pub fn writes(res: &LinuxResources, v: Version) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    memory(res, v, &mut out)?;
    cpu(res, v, &mut out)?;
    if let Some(pids) = res.pids() {
        // runtime-spec: 0 or a negative value means "no limit" (crun does the same).
        let limit = pids.limit();
        let value = if limit > 0 {
            limit.to_string()
        } else {
            "max".to_string()
        };
        out.push(w(Controller::Pids, "pids.max", value));
    }
    block_io(res, v, &mut out)?;
    out.extend(hugetlb(res, v)?);
    network(res, v, &mut out)?;
    rdma(res, &mut out)?;
    unified(res, v, &mut out)?;
    devices(res, v, &mut out)?;
    Ok(out)
}

/// The v1 file of `linux.resources.memory.kernelTCP`.
pub const KMEM_TCP: &str = "memory.kmem.tcp.limit_in_bytes";

fn memory(res: &LinuxResources, v: Version, out: &mut Vec<Write>) -> Result<()> {
    let Some(m) = res.memory() else { return Ok(()) };
    let limit = m.limit().filter(|&l| l != 0);
    let swap = m.swap().filter(|&s| s != 0);
    if let (Some(l), Some(s)) = (limit, swap)
        && l > 0
        && s > 0
        && s < l
    {
        bail!("linux.resources.memory.swap: must be >= memory.limit ({s} < {l})");
    }
    // Always hierarchical: cgroup v2 by design, v1 since Linux 5.16
    // (memory.use_hierarchy reads 1 and refuses 0).
    if m.use_hierarchy() == Some(false) {
        bail!(
            "linux.resources.memory.useHierarchy: false is not supported (accounting is always hierarchical)"
        );
    }
    // memory.kernel: runc 1.1 ignores it ("Kernel memory settings are
    // ignored and will be removed"), and Linux >= 5.16 accepts
    // memory.kmem.limit_in_bytes but enforces nothing: warn, naming it.
    #[allow(deprecated)] // as the spec, oci-spec deprecates `kernel`
    if m.kernel().is_some_and(|k| k != 0) {
        crate::log::warn(
            "linux.resources.memory.kernel: ignored, the kernel no longer enforces kernel memory limits",
        );
    }
    // kernelTCP: applied on v1 (memory.kmem.tcp.limit_in_bytes still works,
    // and crun sets it); v2 has no such file, so a warning (runc 1.1
    // ignores both kernel fields with a warning on every host).
    // `Cgroup::plan` drops the write, with a warning, on a v1 kernel
    // without the file.
    if let Some(t) = m.kernel_tcp().filter(|&t| t != 0) {
        match v {
            Version::V1 => out.push(w(Controller::Memory, KMEM_TCP, t)),
            Version::V2 => crate::log::warn(
                "linux.resources.memory.kernelTCP: ignored, cgroup v2 has no TCP kernel memory limit",
            ),
        }
    }
    match v {
        Version::V1 => {
            if let Some(l) = limit {
                out.push(w(Controller::Memory, "memory.limit_in_bytes", l));
            }
            // memsw is memory+swap, exactly the OCI meaning of `swap` on v1.
            if let Some(s) = swap {
                out.push(w(Controller::Memory, "memory.memsw.limit_in_bytes", s));
            }
            if let Some(r) = m.reservation().filter(|&r| r != 0) {
                out.push(w(Controller::Memory, "memory.soft_limit_in_bytes", r));
            }
            if let Some(s) = m.swappiness() {
                if s > 100 {
                    bail!("linux.resources.memory.swappiness: {s} is not in 0..=100");
                }
                out.push(w(Controller::Memory, "memory.swappiness", s));
            }
            if m.disable_oom_killer() == Some(true) {
                out.push(w(Controller::Memory, "memory.oom_control", 1));
            }
        }
        Version::V2 => {
            if let Some(l) = limit {
                out.push(w(Controller::Memory, "memory.max", max_or(l)));
            }
            if let Some(s) = swap {
                out.push(w(Controller::Memory, "memory.swap.max", v2_swap(s, limit)?));
            }
            if let Some(r) = m.reservation().filter(|&r| r != 0) {
                out.push(w(Controller::Memory, "memory.low", max_or(r)));
            }
            // swappiness and disableOOMKiller have no v2 file; runc ignores them too.
        }
    }
    Ok(())
}

/// v2 `memory.swap.max` is swap only, while OCI `swap` is memory+swap (runc's
/// ConvertMemorySwapToCgroupV2Value).
fn v2_swap(swap: i64, limit: Option<i64>) -> Result<String> {
    if swap < 0 {
        return Ok("max".into());
    }
    match limit {
        Some(l) if l > 0 => Ok((swap - l).to_string()),
        _ => bail!("linux.resources.memory.swap: cannot set a swap limit without memory.limit"),
    }
}

fn max_or(n: i64) -> String {
    if n < 0 { "max".into() } else { n.to_string() }
}

/// cgroup v1 cpu.shares [2, 262144] → v2 cpu.weight [1, 10000] (runc and crun).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// cgroup v1 blkio.weight [10, 1000] → v2 io.weight [1, 10000] (runc and crun).
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

fn cpu(res: &LinuxResources, v: Version, out: &mut Vec<Write>) -> Result<()> {
    let Some(c) = res.cpu() else { return Ok(()) };
    let shares = c.shares().filter(|&s| s != 0);
    let quota = c.quota().filter(|&q| q != 0);
    let period = c.period().filter(|&p| p != 0);
    match v {
        Version::V1 => {
            if let Some(s) = shares {
                out.push(w(Controller::Cpu, "cpu.shares", s));
            }
            // Period first: the kernel checks quota against the current period.
            if let Some(p) = period {
                out.push(w(Controller::Cpu, "cpu.cfs_period_us", p));
            }
            if let Some(q) = quota {
                out.push(w(Controller::Cpu, "cpu.cfs_quota_us", q));
            }
            if let Some(b) = c.burst() {
                out.push(w(Controller::Cpu, "cpu.cfs_burst_us", b));
            }
            if let Some(p) = c.realtime_period().filter(|&p| p != 0) {
                out.push(w(Controller::Cpu, "cpu.rt_period_us", p));
            }
            if let Some(r) = c.realtime_runtime().filter(|&r| r != 0) {
                out.push(w(Controller::Cpu, "cpu.rt_runtime_us", r));
            }
        }
        Version::V2 => {
            if let Some(s) = shares {
                if !(2..=262144).contains(&s) {
                    bail!("linux.resources.cpu.shares: {s} is not in 2..=262144");
                }
                out.push(w(Controller::Cpu, "cpu.weight", shares_to_weight(s)));
            }
            if quota.is_some() || period.is_some() {
                let mut v = match quota {
                    Some(q) if q > 0 => q.to_string(),
                    _ => "max".to_string(),
                };
                if let Some(p) = period {
                    v = format!("{v} {p}");
                }
                out.push(w(Controller::Cpu, "cpu.max", v));
            }
            if let Some(b) = c.burst() {
                out.push(w(Controller::Cpu, "cpu.max.burst", b));
            }
            if c.realtime_period().unwrap_or(0) != 0 || c.realtime_runtime().unwrap_or(0) != 0 {
                bail!(
                    "linux.resources.cpu.realtimeRuntime/realtimePeriod: not supported on cgroup v2"
                );
            }
        }
    }
    if let Some(i) = c.idle() {
        out.push(w(Controller::Cpu, "cpu.idle", i));
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        out.push(w(Controller::Cpuset, "cpuset.cpus", cpus));
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        out.push(w(Controller::Cpuset, "cpuset.mems", mems));
    }
    Ok(())
}

fn block_io(res: &LinuxResources, v: Version, out: &mut Vec<Write>) -> Result<()> {
    let Some(b) = res.block_io() else {
        return Ok(());
    };
    let v1 = v == Version::V1;
    if let Some(wt) = b.weight().filter(|&w| w != 0) {
        match v {
            // v1.rs falls back to blkio.bfq.weight when CFQ is gone (Linux >= 5.0).
            Version::V1 => out.push(w(Controller::Blkio, "blkio.weight", wt)),
            Version::V2 => out.push(w(Controller::Io, "io.weight", blkio_to_io_weight(wt))),
        }
    }
    if let Some(lw) = b.leaf_weight().filter(|&w| w != 0) {
        // leaf weights only existed in CFQ on v1; runc ignores them on v2.
        if v1 {
            out.push(w(Controller::Blkio, "blkio.leaf_weight", lw));
        }
    }
    for d in b.weight_device().iter().flatten() {
        let dev = format!("{}:{}", d.major(), d.minor());
        if let Some(wt) = d.weight() {
            match v {
                Version::V1 => out.push(w(
                    Controller::Blkio,
                    "blkio.weight_device",
                    format!("{dev} {wt}"),
                )),
                Version::V2 => out.push(w(
                    Controller::Io,
                    "io.weight",
                    format!("{dev} {}", blkio_to_io_weight(wt)),
                )),
            }
        }
        if let (Some(lw), true) = (d.leaf_weight(), v1) {
            out.push(w(
                Controller::Blkio,
                "blkio.leaf_weight_device",
                format!("{dev} {lw}"),
            ));
        }
    }
    let throttles = [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ];
    for (list, v1_file, v2_key) in throttles {
        for d in list.iter().flatten() {
            let dev = format!("{}:{}", d.major(), d.minor());
            // One device per write: both kernels parse a single line at a time.
            match v {
                Version::V1 => {
                    out.push(w(Controller::Blkio, v1_file, format!("{dev} {}", d.rate())))
                }
                Version::V2 => out.push(w(
                    Controller::Io,
                    "io.max",
                    format!("{dev} {v2_key}={}", d.rate()),
                )),
            }
        }
    }
    Ok(())
}

/// hugetlb writes, separate because a hybrid host keeps hugetlb in its unified
/// (v2) hierarchy while every other controller is v1.
pub fn hugetlb(res: &LinuxResources, v: Version) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    for h in res.hugepage_limits().iter().flatten() {
        let size = h.page_size();
        if size.is_empty() || !size.bytes().all(|c| c.is_ascii_alphanumeric()) {
            bail!("linux.resources.hugepageLimits: invalid pageSize {size:?}");
        }
        let (file, value) = match v {
            Version::V1 => (
                format!("hugetlb.{size}.limit_in_bytes"),
                h.limit().to_string(),
            ),
            Version::V2 => (format!("hugetlb.{size}.max"), max_or(h.limit())),
        };
        out.push(w(Controller::Hugetlb, file, value));
    }
    Ok(out)
}

/// The page sizes the kernel supports, named as in the hugetlb cgroup
/// files (`2MB`, `1GB`: the kernel's mem_fmt), from the `hugepages-<N>kB`
/// entries of `dir` (/sys/kernel/mm/hugepages), smallest first. Empty when
/// the kernel has no huge pages.
pub fn hugepage_sizes(dir: &std::path::Path) -> Vec<String> {
    let mut kb: Vec<u64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name
                .to_str()?
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?;
            n.parse().ok()
        })
        .collect();
    kb.sort_unstable();
    kb.into_iter()
        .map(|k| match k {
            k if k >= 1 << 20 => format!("{}GB", k >> 20),
            k if k >= 1 << 10 => format!("{}MB", k >> 10),
            k => format!("{k}KB"),
        })
        .collect()
}

fn network(res: &LinuxResources, v: Version, out: &mut Vec<Write>) -> Result<()> {
    let Some(n) = res.network() else {
        return Ok(());
    };
    if v == Version::V2 && (n.class_id().is_some() || n.priorities().is_some()) {
        // v2 has no net_cls/net_prio; classification moved to eBPF programs.
        bail!("linux.resources.network: net_cls/net_prio do not exist on cgroup v2");
    }
    if let Some(id) = n.class_id() {
        out.push(w(Controller::NetCls, "net_cls.classid", id));
    }
    for p in n.priorities().iter().flatten() {
        out.push(w(
            Controller::NetPrio,
            "net_prio.ifpriomap",
            format!("{} {}", p.name(), p.priority()),
        ));
    }
    Ok(())
}

fn rdma(res: &LinuxResources, out: &mut Vec<Write>) -> Result<()> {
    let mut devs: Vec<_> = res.rdma().iter().flatten().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0)); // HashMap order is random; keep plans stable
    for (dev, r) in devs {
        let mut line = dev.clone();
        if let Some(h) = r.hca_handles() {
            line += &format!(" hca_handle={h}");
        }
        if let Some(o) = r.hca_objects() {
            line += &format!(" hca_object={o}");
        }
        if line != *dev {
            out.push(w(Controller::Rdma, "rdma.max", line));
        }
    }
    Ok(())
}

fn unified(res: &LinuxResources, v: Version, out: &mut Vec<Write>) -> Result<()> {
    let Some(map) = res.unified().as_ref().filter(|m| !m.is_empty()) else {
        return Ok(());
    };
    if v == Version::V1 {
        bail!(
            "linux.resources.unified: invalid configuration: cannot use unified on cgroup v1 (this host's layout)"
        );
    }
    let mut keys: Vec<_> = map.iter().collect();
    keys.sort();
    for (key, value) in keys {
        // A key is a file name in the container's own directory, nothing else.
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            bail!("linux.resources.unified: invalid key {key:?}");
        }
        let controller = Controller::from_name(key.split('.').next().unwrap_or_default());
        out.push(w(controller, key.clone(), value));
    }
    Ok(())
}

/// The runtime-spec field a controller's writes come from, for error messages.
pub fn field(controller: &Controller) -> &'static str {
    match controller {
        Controller::Memory => "linux.resources.memory",
        Controller::Cpu | Controller::Cpuset => "linux.resources.cpu",
        Controller::Pids => "linux.resources.pids",
        Controller::Blkio | Controller::Io => "linux.resources.blockIO",
        Controller::Hugetlb => "linux.resources.hugepageLimits",
        Controller::NetCls | Controller::NetPrio => "linux.resources.network",
        Controller::Rdma => "linux.resources.rdma",
        Controller::Devices => "linux.resources.devices",
        Controller::Other(_) => "linux.resources",
    }
}

/// A normalized device rule: `None` major/minor is the wildcard `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: char, // 'a', 'b' or 'c'
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: &'static str, // subset of "rwm", in that order
}

impl std::fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
        write!(
            f,
            "{} {}:{} {}",
            self.kind,
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

const fn allow(
    kind: char,
    major: Option<i64>,
    minor: Option<i64>,
    access: &'static str,
) -> DeviceRule {
    DeviceRule {
        allow: true,
        kind,
        major,
        minor,
        access,
    }
}

/// runc 1.1 specconv `AllowedDevices`: appended after the config's rules, always,
/// so a spec that starts with deny-all still has /dev/null and friends. runc's
/// own comment calls this questionable; engines depend on it, so we match it.
pub const DEFAULT_ALLOWED: [DeviceRule; 11] = [
    allow('c', None, None, "m"),
    allow('b', None, None, "m"),
    allow('c', Some(1), Some(3), "rwm"),    // null
    allow('c', Some(1), Some(8), "rwm"),    // random
    allow('c', Some(1), Some(7), "rwm"),    // full
    allow('c', Some(5), Some(0), "rwm"),    // tty
    allow('c', Some(1), Some(5), "rwm"),    // zero
    allow('c', Some(1), Some(9), "rwm"),    // urandom
    allow('c', Some(136), None, "rwm"),     // pts/*
    allow('c', Some(5), Some(2), "rwm"),    // ptmx
    allow('c', Some(10), Some(200), "rwm"), // net/tun
];

/// The config's device rules, validated, followed by runc's defaults.
pub fn device_rules(res: &LinuxResources) -> Result<Vec<DeviceRule>> {
    let mut out = Vec::new();
    for (i, d) in res.devices().iter().flatten().enumerate() {
        out.push(device_rule(i, d)?);
    }
    out.extend(DEFAULT_ALLOWED);
    Ok(out)
}

fn device_rule(i: usize, d: &LinuxDeviceCgroup) -> Result<DeviceRule> {
    let field = format!("linux.resources.devices[{i}]");
    let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C => 'c',
        t => bail!("{field}.type: {:?} is not one of a, b, c", t.as_str()),
    };
    let num = |n: Option<i64>, what: &str| -> Result<Option<i64>> {
        match n {
            None | Some(-1) => Ok(None),
            Some(n) if n >= 0 => Ok(Some(n)),
            Some(n) => bail!("{field}.{what}: {n} is invalid"),
        }
    };
    // runc's reading: r, w and m in any order, repeated or not; any other
    // letter is ignored (with a warning here), but one of the three must be there.
    let given = d.access().as_deref().unwrap_or("");
    if given.is_empty() {
        bail!("{field}.access: must not be empty");
    }
    let access = ["rwm", "rw", "rm", "r", "wm", "w", "m"]
        .into_iter()
        .find(|a| {
            let has = |c| given.contains(c);
            a.chars().all(has) && "rwm".chars().filter(|&c| has(c)).count() == a.len()
        })
        .with_context(|| format!("{field}.access: {given:?} has none of r, w, m"))?;
    if !given.chars().all(|c| "rwm".contains(c)) {
        crate::log::warn(&format!(
            "{field}.access: {given:?}: only r, w and m mean anything; read as {access:?}"
        ));
    }
    Ok(DeviceRule {
        allow: d.allow(),
        kind,
        major: num(d.major(), "major")?,
        minor: num(d.minor(), "minor")?,
        access,
    })
}

fn devices(res: &LinuxResources, v: Version, out: &mut Vec<Write>) -> Result<()> {
    let rules = device_rules(res)?;
    match v {
        Version::V1 => {
            for r in rules {
                let file = if r.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                // "a" alone resets the whole list (kernel devcgroup_update_access).
                let line = if r.kind == 'a' {
                    "a".to_string()
                } else {
                    r.to_string()
                };
                out.push(w(Controller::Devices, file, line));
            }
        }
        Version::V2 => out.push(Write::DeviceFilter { rules }),
    }
    Ok(())
}

#[cfg(test)]
#[path = "resources_tests.rs"]
mod tests;
