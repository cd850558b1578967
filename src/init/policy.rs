//! The kernel's per-process knobs the spec names: `linux.personality`
//! (personality(2)), `linux.memoryPolicy` (set_mempolicy(2)) and
//! `process.ioPriority` (ioprio_set(2)). Compiled and checked in the
//! runtime, so a bad value fails `create` naming its field; applied by init
//! (and exec's process): I/O priority and memory policy before the
//! capabilities go, the personality last, just before execve (runc's order).
//! Runs in: the runtime (`compile`, `check_raw`), init and exec (`apply_*`).
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
const IOPRIO_WHO_PROCESS: i32 = 1;
const PER_LINUX: libc::c_ulong = 0;
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
    Ok(Policy {
        personality,
        mempolicy,
        ioprio,
    })
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
    let nodes = parse_nodes(&text)
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
fn parse_nodes(text: &str) -> Result<Option<Vec<libc::c_ulong>>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bits = libc::c_ulong::BITS as usize;
    let mut mask = vec![0 as libc::c_ulong; MAX_NODES / bits];
    for part in text.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let num = |s: &str| -> Result<usize> {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                bail!("{s:?} is not a node number");
            }
            let n: usize = s.parse()?;
            if n >= MAX_NODES {
                bail!("node {n} is past the last node ({})", MAX_NODES - 1);
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
    let enums: [(&str, &[&str], &[&str]); 3] = [
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
    if let Some(x) = at(&["process", "ioPriority", "priority"])
        && !x.is_i64()
    {
        bail!("process.ioPriority.priority: invalid value {x}, expected 0 to 7");
    }
    Ok(())
}

/// I/O priority and memory policy, while init still has its capabilities
/// (the realtime I/O class needs CAP_SYS_ADMIN or CAP_SYS_NICE).
pub fn apply_early(p: &Policy) -> Result<()> {
    if let Some(v) = p.ioprio {
        // SAFETY: ioprio_set takes plain integers and changes only our own priority.
        let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, v) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            bail!("process.ioPriority: ioprio_set: {e}");
        }
    }
    if let Some(m) = &p.mempolicy {
        let (ptr, maxnode) = match &m.nodes {
            // maxnode counts one past the last bit, as numactl passes it.
            Some(mask) => (
                mask.as_ptr(),
                (mask.len() * libc::c_ulong::BITS as usize + 1),
            ),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: the kernel reads at most maxnode-1 bits from `ptr`, which
        // points to a live mask of exactly that many bits (or is NULL with 0).
        let r = unsafe {
            libc::syscall(
                libc::SYS_set_mempolicy,
                m.mode,
                ptr,
                maxnode as libc::c_ulong,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            bail!("linux.memoryPolicy: set_mempolicy {}: {e}", m.text);
        }
    }
    Ok(())
}

/// The personality, the last thing before execve.
pub fn apply_personality(p: &Policy) -> Result<()> {
    if let Some(v) = p.personality {
        // SAFETY: personality(2) takes an integer and changes only our execution domain.
        if unsafe { libc::personality(v) } < 0 {
            let e = std::io::Error::last_os_error();
            bail!("linux.personality: personality({v:#x}): {e}");
        }
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
}
