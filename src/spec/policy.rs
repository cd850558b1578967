//! The kernel's per-process knobs the spec names: `linux.personality`
//! (personality(2)), `linux.memoryPolicy` (set_mempolicy(2)) and
//! `process.ioPriority` (ioprio_set(2)). Compiled and checked in the
//! runtime, so a bad value fails `create` naming its field; applied by init
//! and exec's process (`init::policy`).
//! Runs in: the runtime (`compile`, `check_raw`).
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{
    IOPriorityClass, LinuxMemoryPolicy, LinuxPersonalityDomain, MemoryPolicyFlagType,
    MemoryPolicyModeType, Process, Spec,
};

/// Nodes a memory policy may name: the mask passed to the kernel has this many bits.
const MAX_NODES: usize = 1024;

/// What init applies, decided in the runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// personality(2)'s argument.
    pub personality: Option<libc::c_ulong>,
    pub mempolicy: Option<MemPolicy>,
    /// IOPRIO_PRIO_VALUE(class, level) for ioprio_set(2).
    pub ioprio: Option<libc::c_int>,
    /// process.scheduler, for sched_setattr(2).
    pub sched: Option<Sched>,
    /// process.execCPUAffinity.final: the CPUs exec's process runs on
    /// (the spec applies it to exec'd processes, not to the init).
    pub cpus_final: Option<CpuSet>,
    /// process.execCPUAffinity.initial: the CPUs `exec`'s own stage runs
    /// on until it joins the container's cgroup.
    pub cpus_initial: Option<CpuSet>,
}

/// A CPU list ("0-1,3") as sched_setaffinity(2)'s mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuSet {
    pub mask: Vec<libc::c_ulong>,
    pub text: String,
}

/// struct sched_attr (include/uapi/linux/sched/types.h), SCHED_ATTR_SIZE_VER1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sched {
    pub attr: SchedAttr,
    /// For error messages: the policy's name.
    pub name: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemPolicy {
    /// The mode ORed with the MPOL_F_* flags.
    pub mode: libc::c_int,
    /// None: a NULL nodemask (MPOL_DEFAULT, MPOL_LOCAL, MPOL_PREFERRED without nodes).
    pub nodes: Option<Vec<libc::c_ulong>>,
    /// For error messages: the spec's text.
    pub text: String,
}

// The kernel's values (include/uapi/linux/mempolicy.h, ioprio.h, personality.h).
const MPOL_DEFAULT: i32 = 0;
const MPOL_PREFERRED: i32 = 1;
const MPOL_BIND: i32 = 2;
const MPOL_INTERLEAVE: i32 = 3;
const MPOL_LOCAL: i32 = 4;
const MPOL_PREFERRED_MANY: i32 = 5;
const MPOL_WEIGHTED_INTERLEAVE: i32 = 6;
const MPOL_F_NUMA_BALANCING: i32 = 1 << 13;
const MPOL_F_RELATIVE_NODES: i32 = 1 << 14;
const MPOL_F_STATIC_NODES: i32 = 1 << 15;
const IOPRIO_CLASS_SHIFT: i32 = 13;
pub const IOPRIO_WHO_PROCESS: i32 = 1;
const PER_LINUX: libc::c_ulong = 0;
const SCHED_OTHER: u32 = 0;
pub const SCHED_FIFO: u32 = 1;
pub const SCHED_RR: u32 = 2;
const SCHED_BATCH: u32 = 3;
const SCHED_IDLE: u32 = 5;
pub const SCHED_DEADLINE: u32 = 6;
/// CPUs a CPU list may name (the mask passed to the kernel has this many bits).
pub const MAX_CPUS: usize = 8192;
const PER_LINUX32: libc::c_ulong = 8;

/// Pure: the three settings of `spec` (with `process`, which for exec is
/// the exec'd one), checked.
pub fn compile(spec: &Spec, process: Option<&Process>) -> Result<Policy> {
    let linux = spec.linux().as_ref();
    let personality = match linux.and_then(|l| l.personality().as_ref()) {
        None => None,
        Some(p) => {
            if let Some(f) = p.flags().as_ref().and_then(|f| f.first()) {
                bail!("linux.personality.flags: unsupported flag {f:?} (the spec defines none)");
            }
            Some(match p.domain() {
                LinuxPersonalityDomain::PerLinux => PER_LINUX,
                LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
            })
        }
    };
    let mempolicy = linux
        .and_then(|l| l.memory_policy().as_ref())
        .map(mem_policy)
        .transpose()?;
    let ioprio = match process.and_then(|p| *p.io_priority()) {
        None => None,
        Some(io) => {
            let level = io.priority();
            if !(0..=7).contains(&level) {
                bail!("process.ioPriority.priority: must be 0 to 7, got {level}");
            }
            let class = match io.class() {
                IOPriorityClass::IoprioClassRt => 1,
                IOPriorityClass::IoprioClassBe => 2,
                IOPriorityClass::IoprioClassIdle => 3,
            };
            Some((class << IOPRIO_CLASS_SHIFT) | level as i32)
        }
    };
    let sched = process
        .and_then(|p| p.scheduler().as_ref())
        .map(scheduler)
        .transpose()?;
    let affinity = process.and_then(|p| p.exec_cpu_affinity().as_ref());
    let list = |t: Option<&String>, field| match t {
        Some(t) => cpu_list(t, field),
        None => Ok(None),
    };
    let cpus_initial = list(
        affinity.and_then(|a| a.initial().as_ref()),
        "process.execCPUAffinity.initial",
    )?;
    let cpus_final = list(
        affinity.and_then(|a| a.cpu_affinity_final().as_ref()),
        "process.execCPUAffinity.final",
    )?;
    Ok(Policy {
        personality,
        mempolicy,
        ioprio,
        sched,
        cpus_final,
        cpus_initial,
    })
}

/// Pure: a CPU list ("0-3,7"), checked, naming `field`; None when empty
/// (the spec: leave the affinity alone).
pub fn cpu_list(text: &str, field: &str) -> Result<Option<CpuSet>> {
    let mask = parse_list(text, MAX_CPUS, "CPU")
        .with_context(|| format!("{field}: invalid CPU list {text:?}"))?;
    Ok(mask.map(|mask| CpuSet {
        mask,
        text: text.trim().to_string(),
    }))
}

/// process.scheduler as sched_setattr(2) takes it, with runc's checks:
/// nice in -20..19, a priority only for the realtime policies (1..99),
/// runtime/deadline/period only for SCHED_DEADLINE.
fn scheduler(s: &oci_spec::runtime::Scheduler) -> Result<Sched> {
    use oci_spec::runtime::{LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P};
    let (policy, name) = match s.policy() {
        P::SchedOther => (SCHED_OTHER, "SCHED_OTHER"),
        P::SchedFifo => (SCHED_FIFO, "SCHED_FIFO"),
        P::SchedRr => (SCHED_RR, "SCHED_RR"),
        P::SchedBatch => (SCHED_BATCH, "SCHED_BATCH"),
        P::SchedIdle => (SCHED_IDLE, "SCHED_IDLE"),
        P::SchedDeadline => (SCHED_DEADLINE, "SCHED_DEADLINE"),
        // Reserved (value 4) but never merged into Linux: the kernel refuses it.
        P::SchedIso => bail!("process.scheduler.policy: SCHED_ISO is not implemented by Linux"),
    };
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        bail!("process.scheduler.nice: must be -20 to 19, got {nice}");
    }
    let priority = s.priority().unwrap_or(0);
    let rt = matches!(policy, SCHED_FIFO | SCHED_RR);
    if rt && !(1..=99).contains(&priority) {
        bail!("process.scheduler.priority: must be 1 to 99 for {name}, got {priority}");
    }
    if !rt && priority != 0 {
        bail!("process.scheduler.priority: must be 0 for {name}, got {priority}");
    }
    let (runtime, deadline, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if policy == SCHED_DEADLINE {
        if runtime == 0 || deadline == 0 {
            bail!("process.scheduler: SCHED_DEADLINE needs runtime and deadline");
        }
    } else if runtime != 0 || deadline != 0 || period != 0 {
        bail!("process.scheduler: runtime, deadline and period are only for SCHED_DEADLINE");
    }
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    Ok(Sched {
        attr: SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy,
            flags,
            nice,
            priority: priority as u32,
            runtime,
            deadline,
            period,
            // The spec gives no clamp values: the widest range.
            util_min: 0,
            util_max: 1024,
        },
        name,
    })
}

/// The runtime-spec's names of the scheduler flags, as oci-spec 0.10's
/// serde derive spells them (it drops `FLAG_` from the first and splits
/// `DL`): applied to the raw JSON before the typed parse.
pub const SCHED_FLAG_NAMES: [(&str, &str); 2] = [
    ("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK"),
    ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN"),
];

/// Rewrites `process.scheduler.flags` (of a config, or of a process when
/// `v` is one) to oci-spec's spelling; true when something changed.
pub fn respell_sched_flags(v: &mut serde_json::Value) -> bool {
    let mut changed = false;
    for at in ["/process/scheduler/flags", "/scheduler/flags"] {
        if let Some(f) = v.pointer_mut(at) {
            changed |= respell(f);
        }
    }
    changed
}

fn respell(flags: &mut serde_json::Value) -> bool {
    let mut changed = false;
    for f in flags.as_array_mut().into_iter().flatten() {
        if let Some((_, to)) = SCHED_FLAG_NAMES.iter().find(|(from, _)| f == from) {
            *f = serde_json::Value::from(*to);
            changed = true;
        }
    }
    changed
}

fn mem_policy(m: &LinuxMemoryPolicy) -> Result<MemPolicy> {
    use MemoryPolicyModeType as M;
    let (mode, name) = match m.mode() {
        M::MpolDefault => (MPOL_DEFAULT, "MPOL_DEFAULT"),
        M::MpolPreferred => (MPOL_PREFERRED, "MPOL_PREFERRED"),
        M::MpolBind => (MPOL_BIND, "MPOL_BIND"),
        M::MpolInterleave => (MPOL_INTERLEAVE, "MPOL_INTERLEAVE"),
        M::MpolLocal => (MPOL_LOCAL, "MPOL_LOCAL"),
        M::MpolPreferredMany => (MPOL_PREFERRED_MANY, "MPOL_PREFERRED_MANY"),
        M::MpolWeightedInterleave => (MPOL_WEIGHTED_INTERLEAVE, "MPOL_WEIGHTED_INTERLEAVE"),
    };
    let text = m.nodes().clone().unwrap_or_default();
    let nodes = parse_list(&text, MAX_NODES, "node")
        .with_context(|| format!("linux.memoryPolicy.nodes: invalid node list {text:?}"))?;
    let mut flags = 0;
    for f in m.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => MPOL_F_NUMA_BALANCING,
            MemoryPolicyFlagType::MpolFRelativeNodes => MPOL_F_RELATIVE_NODES,
            MemoryPolicyFlagType::MpolFStaticNodes => MPOL_F_STATIC_NODES,
        };
    }
    let both = MPOL_F_RELATIVE_NODES | MPOL_F_STATIC_NODES;
    if flags & both == both {
        bail!(
            "linux.memoryPolicy.flags: MPOL_F_RELATIVE_NODES and MPOL_F_STATIC_NODES exclude each other"
        );
    }
    match mode {
        MPOL_DEFAULT | MPOL_LOCAL if nodes.is_some() => {
            bail!("linux.memoryPolicy.nodes: must be empty for {name}, got {text:?}")
        }
        MPOL_DEFAULT if flags != 0 => {
            bail!("linux.memoryPolicy.flags: none may be given with MPOL_DEFAULT")
        }
        MPOL_BIND | MPOL_INTERLEAVE | MPOL_PREFERRED_MANY | MPOL_WEIGHTED_INTERLEAVE
            if nodes.is_none() =>
        {
            bail!("linux.memoryPolicy.nodes: {name} needs at least one node")
        }
        _ => {}
    }
    Ok(MemPolicy {
        mode: mode | flags,
        nodes,
        text: format!("{name} nodes {text:?}"),
    })
}

/// Pure: "0-3,5" (the kernel's list format) as a nodemask; None when empty.
#[cfg(test)]
fn parse_nodes(text: &str) -> Result<Option<Vec<libc::c_ulong>>> {
    parse_list(text, MAX_NODES, "node")
}

/// Pure: a kernel list ("0-3,5") of numbers below `max` as a bit mask of
/// `max` bits; None when empty. `what` names a number in errors.
fn parse_list(text: &str, max: usize, what: &str) -> Result<Option<Vec<libc::c_ulong>>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bits = libc::c_ulong::BITS as usize;
    let mut mask = vec![0 as libc::c_ulong; max / bits];
    for part in text.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let num = |s: &str| -> Result<usize> {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                bail!("{s:?} is not a {what} number");
            }
            let n: usize = s.parse()?;
            if n >= max {
                bail!("{what} {n} is past the last {what} ({})", max - 1);
            }
            Ok(n)
        };
        let (a, b) = (num(a)?, num(b)?);
        if a > b {
            bail!("range {part:?} is reversed");
        }
        for n in a..=b {
            mask[n / bits] |= 1 << (n % bits);
        }
    }
    Ok(Some(mask))
}

/// For a config the typed parser refused: names the field when the cause
/// is a bad value of one of these settings' enumerations (serde's message
/// names only the value).
pub fn check_raw(v: &serde_json::Value) -> Result<()> {
    let enums: [(&str, &[&str], &[&str]); 4] = [
        (
            "process.scheduler.policy",
            &["process", "scheduler", "policy"],
            &[
                "SCHED_OTHER",
                "SCHED_FIFO",
                "SCHED_RR",
                "SCHED_BATCH",
                "SCHED_ISO",
                "SCHED_IDLE",
                "SCHED_DEADLINE",
            ],
        ),
        (
            "linux.personality.domain",
            &["linux", "personality", "domain"],
            &["LINUX", "LINUX32"],
        ),
        (
            "linux.memoryPolicy.mode",
            &["linux", "memoryPolicy", "mode"],
            &[
                "MPOL_DEFAULT",
                "MPOL_BIND",
                "MPOL_INTERLEAVE",
                "MPOL_WEIGHTED_INTERLEAVE",
                "MPOL_PREFERRED",
                "MPOL_PREFERRED_MANY",
                "MPOL_LOCAL",
            ],
        ),
        (
            "process.ioPriority.class",
            &["process", "ioPriority", "class"],
            &["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"],
        ),
    ];
    let at = |path: &[&str]| path.iter().try_fold(v, |v, k| v.get(k));
    for (field, path, allowed) in enums {
        if let Some(x) = at(path)
            && !x.as_str().is_some_and(|s| allowed.contains(&s))
        {
            bail!("{field}: invalid value {x}, expected one of {allowed:?}");
        }
    }
    let flags = [
        "MPOL_F_NUMA_BALANCING",
        "MPOL_F_RELATIVE_NODES",
        "MPOL_F_STATIC_NODES",
    ];
    if let Some(list) = at(&["linux", "memoryPolicy", "flags"]).and_then(|f| f.as_array()) {
        for (i, x) in list.iter().enumerate() {
            if !x.as_str().is_some_and(|s| flags.contains(&s)) {
                bail!(
                    "linux.memoryPolicy.flags[{i}]: invalid value {x}, expected one of {flags:?}"
                );
            }
        }
    }
    let sched_flags = [
        "SCHED_FLAG_RESET_ON_FORK",
        "SCHED_FLAG_RECLAIM",
        "SCHED_FLAG_DL_OVERRUN",
        "SCHED_FLAG_KEEP_POLICY",
        "SCHED_FLAG_KEEP_PARAMS",
        "SCHED_FLAG_UTIL_CLAMP_MIN",
        "SCHED_FLAG_UTIL_CLAMP_MAX",
    ];
    let known =
        |s: &str| sched_flags.contains(&s) || SCHED_FLAG_NAMES.iter().any(|(_, to)| *to == s);
    if let Some(list) = at(&["process", "scheduler", "flags"]).and_then(|f| f.as_array()) {
        for (i, x) in list.iter().enumerate() {
            if !x.as_str().is_some_and(known) {
                bail!(
                    "process.scheduler.flags[{i}]: invalid value {x}, expected one of {sched_flags:?}"
                );
            }
        }
    }
    for (field, key) in [
        ("process.execCPUAffinity.initial", "initial"),
        ("process.execCPUAffinity.final", "final"),
    ] {
        if let Some(x) = at(&["process", "execCPUAffinity", key]) {
            match x.as_str() {
                Some(t) => drop(cpu_list(t, field)?),
                None => bail!("{field}: invalid value {x}, expected a CPU list like \"0-3,7\""),
            }
        }
    }
    if let Some(x) = at(&["process", "ioPriority", "priority"])
        && !x.is_i64()
    {
        bail!("process.ioPriority.priority: invalid value {x}, expected 0 to 7");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn spec(v: Value) -> Spec {
        let mut base: Value =
            serde_json::from_str(include_str!("../cmd/spec-default.json")).unwrap();
        for (k, x) in v.as_object().unwrap() {
            for (k2, y) in x.as_object().unwrap() {
                base[k][k2] = y.clone();
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn err(v: Value) -> String {
        let s = spec(v);
        compile(&s, s.process().as_ref()).unwrap_err().to_string()
    }

    #[test]
    fn node_lists() {
        let m = parse_nodes("0-2,5").unwrap().unwrap();
        assert_eq!(m[0], 0b100111);
        assert_eq!(parse_nodes(" ").unwrap(), None);
        let m = parse_nodes("64").unwrap().unwrap();
        assert_eq!((m[0], m[1]), (0, 1));
        for bad in ["a", "1-", "3-1", "1,,2", "1024", "-1"] {
            assert!(parse_nodes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn compiles_each_setting() {
        let s = spec(json!({
            "linux": {"personality": {"domain": "LINUX32"},
                      "memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0",
                                       "flags": ["MPOL_F_STATIC_NODES"]}},
            "process": {"ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 3}}
        }));
        let p = compile(&s, s.process().as_ref()).unwrap();
        assert_eq!(p.personality, Some(PER_LINUX32));
        assert_eq!(p.ioprio, Some((3 << 13) | 3));
        let m = p.mempolicy.unwrap();
        assert_eq!(m.mode, MPOL_BIND | MPOL_F_STATIC_NODES);
        assert_eq!(m.nodes.unwrap()[0], 1);
        let s = spec(json!({"linux": {"memoryPolicy": {"mode": "MPOL_LOCAL"}}}));
        let p = compile(&s, None).unwrap();
        assert_eq!(p.mempolicy.unwrap().nodes, None);
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (
                json!({"linux": {"personality": {"domain": "LINUX", "flags": ["x"]}}}),
                "linux.personality.flags: ",
            ),
            (
                json!({"process": {"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 8}}}),
                "process.ioPriority.priority: ",
            ),
            (
                json!({"linux": {"memoryPolicy": {"mode": "MPOL_BIND"}}}),
                "linux.memoryPolicy.nodes: ",
            ),
            (
                json!({"linux": {"memoryPolicy": {"mode": "MPOL_DEFAULT", "nodes": "0"}}}),
                "linux.memoryPolicy.nodes: ",
            ),
            (
                json!({"linux": {"memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0-x"}}}),
                "linux.memoryPolicy.nodes: ",
            ),
            (
                json!({"linux": {"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0",
                    "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}}}),
                "linux.memoryPolicy.flags: ",
            ),
        ];
        for (v, want) in cases {
            let e = err(v.clone());
            assert!(e.starts_with(want), "{v}: {e}");
        }
    }

    #[test]
    fn raw_enum_values_name_their_field() {
        for (v, want) in [
            (
                json!({"linux": {"personality": {"domain": "LINUX64"}}}),
                "linux.personality.domain: ",
            ),
            (
                json!({"linux": {"memoryPolicy": {"mode": "MPOL_X"}}}),
                "linux.memoryPolicy.mode: ",
            ),
            (
                json!({"linux": {"memoryPolicy": {"mode": "MPOL_BIND", "flags": [1]}}}),
                "linux.memoryPolicy.flags[0]: ",
            ),
            (
                json!({"process": {"ioPriority": {"class": "RT"}}}),
                "process.ioPriority.class: ",
            ),
        ] {
            let e = check_raw(&v).unwrap_err().to_string();
            assert!(e.starts_with(want), "{v}: {e}");
        }
        assert!(check_raw(&json!({"linux": {"personality": {"domain": "LINUX"}}})).is_ok());
    }

    #[test]
    fn scheduler_and_cpu_lists() {
        let s = spec(
            json!({"process": {"scheduler": {"policy": "SCHED_FIFO", "priority": 9,
            "flags": ["SCHED_RESET_ON_FORK", "SCHED_FLAG_KEEP_PARAMS"]},
            "execCPUAffinity": {"initial": "0", "final": "1-2,64"}}}),
        );
        let p = compile(&s, s.process().as_ref()).unwrap();
        let a = p.sched.unwrap().attr;
        assert_eq!(
            (a.policy, a.priority, a.flags, a.size),
            (SCHED_FIFO, 9, 0x11, 56)
        );
        assert_eq!(p.cpus_initial.unwrap().mask[0], 1);
        let f = p.cpus_final.unwrap().mask;
        assert_eq!((f[0], f[1]), (0b110, 1));
        for (sched, want) in [
            (json!({"policy": "SCHED_ISO"}), "process.scheduler.policy: "),
            (
                json!({"policy": "SCHED_RR", "priority": 100}),
                "process.scheduler.priority: ",
            ),
            (
                json!({"policy": "SCHED_IDLE", "nice": -21}),
                "process.scheduler.nice: ",
            ),
            (
                json!({"policy": "SCHED_OTHER", "period": 5}),
                "process.scheduler: ",
            ),
        ] {
            let e = err(json!({"process": {"scheduler": sched.clone()}}));
            assert!(e.starts_with(want), "{sched}: {e}");
        }
    }

    #[test]
    fn scheduler_flags_in_the_spec_spelling() {
        let mut v = json!({"process": {"scheduler": {"policy": "SCHED_DEADLINE",
            "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_RECLAIM"]}}});
        assert!(respell_sched_flags(&mut v));
        let p: Process = serde_json::from_value(json!({"cwd": "/", "user": {"uid": 0, "gid": 0},
            "scheduler": v["process"]["scheduler"].clone()}))
        .unwrap();
        let s = scheduler(p.scheduler().as_ref().unwrap());
        assert!(s.unwrap_err().to_string().contains("runtime and deadline"));
        let mut v = json!({"scheduler": {"flags": ["SCHED_FLAG_RECLAIM"]}});
        assert!(!respell_sched_flags(&mut v));
    }
}
