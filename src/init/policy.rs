//! Applies the compiled `spec::policy::Policy` (scheduler, I/O priority,
//! memory policy, CPU affinity, personality): I/O priority and memory policy
//! before the capabilities go, the personality last, just before execve
//! (runc's order).
//! Runs in: init and exec's process (`apply_*`), the runtime (`set_affinity`).
use crate::spec::policy::{
    CpuSet, IOPRIO_WHO_PROCESS, MAX_CPUS, Policy, SCHED_DEADLINE, SCHED_FIFO, SCHED_RR, SchedAttr,
};
use anyhow::{Result, bail};

/// Scheduler, I/O priority and memory policy, while init still has its capabilities
/// (the realtime I/O class needs CAP_SYS_ADMIN or CAP_SYS_NICE).
pub fn apply_early(p: &Policy) -> Result<()> {
    apply_sched(p)?;
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

/// process.scheduler, while the process still has CAP_SYS_NICE (a
/// realtime policy or a lower nice value needs it).
pub fn apply_sched(p: &Policy) -> Result<()> {
    let Some(s) = &p.sched else { return Ok(()) };
    // SAFETY: the kernel reads `size` bytes of a live, initialised sched_attr.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &s.attr as *const SchedAttr, 0) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        let hint = match (e.raw_os_error(), s.attr.policy) {
            (Some(libc::EPERM), SCHED_FIFO | SCHED_RR) => {
                " (a realtime policy needs CAP_SYS_NICE and, with RT group scheduling, \
                 a realtime budget: linux.resources.cpu.realtimeRuntime)"
            }
            (Some(libc::EBUSY), SCHED_DEADLINE) => " (no deadline bandwidth left)",
            _ => "",
        };
        bail!(
            "process.scheduler: sched_setattr {} nice {} priority {}: {e}{hint}",
            s.name,
            s.attr.nice,
            s.attr.priority
        );
    }
    Ok(())
}

/// Pins the calling process to `cpus` (process.execCPUAffinity; `field` names it).
pub fn set_affinity(cpus: &CpuSet, field: &str) -> Result<()> {
    let bytes = std::mem::size_of_val(cpus.mask.as_slice());
    // SAFETY: the kernel reads `bytes` bytes of the live mask.
    let r = unsafe { libc::syscall(libc::SYS_sched_setaffinity, 0, bytes, cpus.mask.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        bail!("{field}: sched_setaffinity {:?}: {e}", cpus.text);
    }
    Ok(())
}

/// The CPUs the calling process may run on, as a kernel list ("0-1,3").
pub fn affinity_text() -> String {
    let mut mask = vec![0 as libc::c_ulong; MAX_CPUS / libc::c_ulong::BITS as usize];
    let bytes = std::mem::size_of_val(mask.as_slice());
    // SAFETY: the kernel writes at most `bytes` bytes into the live mask.
    let r = unsafe { libc::syscall(libc::SYS_sched_getaffinity, 0, bytes, mask.as_mut_ptr()) };
    if r < 0 {
        return format!("? ({})", std::io::Error::last_os_error());
    }
    let bits = libc::c_ulong::BITS as usize;
    let on = |n: usize| mask[n / bits] & (1 << (n % bits)) != 0;
    let mut parts = Vec::new();
    let mut n = 0;
    while n < MAX_CPUS {
        if on(n) {
            let a = n;
            while n + 1 < MAX_CPUS && on(n + 1) {
                n += 1;
            }
            parts.push(if a == n {
                a.to_string()
            } else {
                format!("{a}-{n}")
            });
        }
        n += 1;
    }
    parts.join(",")
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
