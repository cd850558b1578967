//! Seccomp: `linux.seccomp` is compiled to classic BPF in the runtime,
//! before the first fork (so a bad profile fails `create` by field name),
//! and installed by init with its own seccomp(2) call.
//!
//! Semantics follow runc + libseccomp: per-call actions, errnoRet (default
//! EPERM), rules for one call tried in profile order (first match wins),
//! conditions in a rule ANDed, entries whose action equals the default
//! dropped, unknown names skipped with a debug log, the native ABI always
//! in the filter, and runc's -ENOSYS stub for calls newer than the profile.
//! Runs in: the runtime (compile, notify hand-over) and init (install).
pub mod bpf;
pub mod notify;
pub mod syscalls;
#[cfg(test)]
mod tests;

use crate::sync::{Msg, SyncSocket};
use anyhow::{Context, Result, bail};
use bpf::{Call, Cond, Op, Profile, Rule};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator as Cmp,
};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use syscalls::Abi;

/// The kernel's limit per filter (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
pub const FLAG_TSYNC: u32 = 1;
pub const FLAG_LOG: u32 = 2;
pub const FLAG_SPEC_ALLOW: u32 = 4;
pub const FLAG_NEW_LISTENER: u32 = 8;
pub const FLAG_TSYNC_ESRCH: u32 = 16;
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// Every action `action` maps, operator `cond` maps, architecture `abis`
/// takes (non-x86 ones are accepted and can never match on an x86_64
/// kernel, as with libseccomp) and flag `flags` maps: all of oci-spec's,
/// checked complete at build time (crate::every). `skiff features` lists
/// them.
pub const ACTIONS: [Act; 9] = crate::every::every!(Act:
    Act::ScmpActKill,
    Act::ScmpActKillThread,
    Act::ScmpActKillProcess,
    Act::ScmpActTrap,
    Act::ScmpActErrno,
    Act::ScmpActNotify,
    Act::ScmpActTrace,
    Act::ScmpActLog,
    Act::ScmpActAllow,
);
pub const OPERATORS: [Cmp; 7] = crate::every::every!(Cmp:
    Cmp::ScmpCmpNe,
    Cmp::ScmpCmpLt,
    Cmp::ScmpCmpLe,
    Cmp::ScmpCmpEq,
    Cmp::ScmpCmpGe,
    Cmp::ScmpCmpGt,
    Cmp::ScmpCmpMaskedEq,
);
pub const ARCHS: [Arch; 24] = crate::every::every!(Arch:
    Arch::ScmpArchNative,
    Arch::ScmpArchX86,
    Arch::ScmpArchX86_64,
    Arch::ScmpArchX32,
    Arch::ScmpArchArm,
    Arch::ScmpArchAarch64,
    Arch::ScmpArchMips,
    Arch::ScmpArchMips64,
    Arch::ScmpArchMips64n32,
    Arch::ScmpArchMipsel,
    Arch::ScmpArchMipsel64,
    Arch::ScmpArchMipsel64n32,
    Arch::ScmpArchPpc,
    Arch::ScmpArchPpc64,
    Arch::ScmpArchPpc64le,
    Arch::ScmpArchS390,
    Arch::ScmpArchS390x,
    Arch::ScmpArchParisc,
    Arch::ScmpArchParisc64,
    Arch::ScmpArchRiscv64,
    Arch::ScmpArchLoongarch64,
    Arch::ScmpArchM68k,
    Arch::ScmpArchSh,
    Arch::ScmpArchSheb,
);
/// In runc's order (its `flags` list), which `features` keeps.
pub const FLAGS: [LinuxSeccompFilterFlag; 4] = crate::every::every!(LinuxSeccompFilterFlag:
    LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
    LinuxSeccompFilterFlag::SeccompFilterFlagLog,
    LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
);

/// The kernel's bit for a filter flag.
pub fn flag_bit(f: LinuxSeccompFilterFlag) -> u32 {
    match f {
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
    }
}

/// Whether the running kernel takes filter flag `f`, asked as libseccomp
/// does: seccomp(SET_MODE_FILTER) with the flag and no program, which
/// fails with EFAULT (the program could not be read) once the flags are
/// accepted, and EINVAL before that if they are not. Nothing is installed.
/// Only `skiff features` asks.
pub fn flag_supported(f: LinuxSeccompFilterFlag) -> bool {
    let mut bits = flag_bit(f);
    if bits == FLAG_WAIT_KILLABLE_RECV {
        // Only valid with a listener (see `flags`).
        bits |= FLAG_NEW_LISTENER;
    }
    // SAFETY: a null program pointer: the kernel checks the flags, then
    // fails to copy the program (EFAULT) and changes nothing.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            bits as libc::c_ulong,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// A compiled filter: what init installs.
#[derive(Clone, Debug)]
pub struct Filter {
    pub program: Vec<bpf::Insn>,
    pub flags: u32,
    /// Where the notify listener fd goes (only with SCMP_ACT_NOTIFY rules).
    pub listener: Option<Listener>,
}

#[derive(Clone, Debug)]
pub struct Listener {
    pub path: PathBuf,
    pub metadata: Option<String>,
}

/// The kernel's return value for an OCI action.
fn action(a: Act, errno: Option<u32>, field: &str) -> Result<u32> {
    let data = |e: Option<u32>| -> Result<u32> {
        let e = e.unwrap_or(libc::EPERM as u32);
        if e > 0xffff {
            bail!("{field}: errnoRet {e} does not fit in 16 bits");
        }
        Ok(e)
    };
    Ok(match a {
        Act::ScmpActKill | Act::ScmpActKillThread => 0,
        Act::ScmpActKillProcess => bpf::RET_KILL_PROCESS,
        Act::ScmpActTrap => 0x0003_0000,
        Act::ScmpActErrno => bpf::RET_ERRNO | data(errno)?,
        // runc passes errnoRet as the tracer's data too.
        Act::ScmpActTrace => 0x7ff0_0000 | data(errno)?,
        Act::ScmpActNotify => 0x7fc0_0000,
        Act::ScmpActLog => 0x7ffc_0000,
        Act::ScmpActAllow => 0x7fff_0000,
    })
}

fn cond(arg: &LinuxSeccompArg, field: &str) -> Result<Cond> {
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|i| *i < 6)
        .with_context(|| format!("{field}.index: {} is not an argument (0-5)", arg.index()))?;
    let op = match arg.op() {
        Cmp::ScmpCmpNe => Op::Ne,
        Cmp::ScmpCmpLt => Op::Lt,
        Cmp::ScmpCmpLe => Op::Le,
        Cmp::ScmpCmpEq => Op::Eq,
        Cmp::ScmpCmpGe => Op::Ge,
        Cmp::ScmpCmpGt => Op::Gt,
        Cmp::ScmpCmpMaskedEq => Op::MaskedEq,
    };
    // MASKED_EQ: `value` is the mask and `valueTwo` the datum (libseccomp's order).
    let (value, mask) = match op {
        Op::MaskedEq => (arg.value_two().unwrap_or(0), arg.value()),
        _ => (arg.value(), u64::MAX),
    };
    Ok(Cond {
        index,
        op,
        value,
        mask,
    })
}

/// The ABIs in the filter: native always (libseccomp adds it), plus the
/// listed x86 ones. Other architectures can never run on an x86_64 kernel.
fn abis(s: &LinuxSeccomp) -> Vec<Abi> {
    let mut v = vec![Abi::X86_64];
    for a in s.architectures().iter().flatten() {
        let abi = match a {
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX86 => Abi::I386,
            Arch::ScmpArchX32 => Abi::X32,
            other => {
                crate::log::debug(&format!("seccomp: architecture {other} ignored on x86_64"));
                continue;
            }
        };
        if !v.contains(&abi) {
            v.push(abi);
        }
    }
    v
}

/// runc's -ENOSYS stub: unless the default already allows, or already is
/// ENOSYS, calls numbered above every call the profile names get ENOSYS,
/// so that glibc falls back from syscalls newer than the profile. Like
/// runc, only for the architectures the profile lists.
fn enosys(s: &LinuxSeccomp) -> Vec<(Abi, u32)> {
    let allows = matches!(
        s.default_action(),
        Act::ScmpActAllow | Act::ScmpActLog | Act::ScmpActTrace
    );
    let listed = s.architectures().as_ref().is_some_and(|l| !l.is_empty());
    if allows || !listed || s.default_errno_ret() == Some(libc::ENOSYS as u32) {
        return vec![];
    }
    let names: Vec<&String> = s
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|c| c.names())
        .collect();
    abis(s)
        .into_iter()
        .filter_map(|abi| Some((abi, names.iter().filter_map(|n| abi.number(n)).max()?)))
        .collect()
}

fn flags(s: &LinuxSeccomp, notify: bool) -> u32 {
    let mut f = 0;
    for flag in s.flags().iter().flatten() {
        f |= flag_bit(*flag);
    }
    if notify {
        f |= FLAG_NEW_LISTENER;
        // TSYNC and NEW_LISTENER together are EINVAL without TSYNC_ESRCH.
        if f & FLAG_TSYNC != 0 {
            f |= FLAG_TSYNC_ESRCH;
        }
    } else {
        // It is about waiting for the listener's answer: the kernel refuses
        // it (EINVAL) without NEW_LISTENER, and with no listener there is
        // nothing to wait for.
        f &= !FLAG_WAIT_KILLABLE_RECV;
    }
    f
}

/// Between the install and the agent holding the listener, init sends the
/// fd and waits for the runtime's answer: notifying those calls would hang.
/// `write` too, as runc refuses it: the runtime's own code may write (an
/// error to stderr) after the filter is in place.
const NOTIFY_FORBIDDEN: [&str; 5] = ["sendmsg", "recvfrom", "recvmsg", "sendto", "write"];

/// Rules per call name, in profile order; returns (calls, any NOTIFY).
fn rules(s: &LinuxSeccomp, default: u32) -> Result<(Vec<Call>, bool)> {
    let mut calls: Vec<Call> = Vec::new();
    let mut notify = false;
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(sc.action(), sc.errno_ret(), &field)?;
        let conds = (sc.args().iter().flatten().enumerate())
            .map(|(j, a)| cond(a, &format!("{field}.args[{j}]")))
            .collect::<Result<Vec<_>>>()?;
        if sc.names().is_empty() {
            bail!("{field}.names: must not be empty");
        }
        if act == default {
            // libseccomp refuses such rules; runc drops them.
            crate::log::debug(&format!("seccomp: {field} has the default action, ignored"));
            continue;
        }
        for (n, name) in sc.names().iter().enumerate() {
            if sc.action() == Act::ScmpActNotify && NOTIFY_FORBIDDEN.contains(&name.as_str()) {
                bail!("{field}.names[{n}]: SCMP_ACT_NOTIFY on {name} would block container setup");
            }
            if [Abi::X86_64, Abi::X32, Abi::I386]
                .iter()
                .all(|a| a.number(name).is_none())
            {
                crate::log::debug(&format!("seccomp: unknown syscall {name:?} ignored"));
                continue;
            }
            let rule = Rule {
                conds: conds.clone(),
                action: act,
            };
            match calls.iter_mut().find(|c| c.0 == *name) {
                Some(c) => c.1.push(rule),
                None => calls.push((name.clone(), vec![rule])),
            }
            notify |= sc.action() == Act::ScmpActNotify;
        }
    }
    Ok((calls, notify))
}

/// Compiles the profile. Pure.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter> {
    if s.default_action() == Act::ScmpActNotify {
        bail!("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
    }
    let default = action(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    let (calls, notify) = rules(s, default)?;
    let listener = match (notify, s.listener_path()) {
        (false, _) => None,
        (true, Some(p)) if !p.as_os_str().is_empty() => Some(Listener {
            path: p.clone(),
            metadata: s.listener_metadata().clone(),
        }),
        (true, _) => bail!("linux.seccomp.listenerPath: required by SCMP_ACT_NOTIFY"),
    };
    let profile = Profile {
        default_action: default,
        bad_arch_action: bpf::RET_KILL_PROCESS,
        abis: abis(s),
        calls,
        enosys: enosys(s),
    };
    let program = bpf::emit(&profile).context("linux.seccomp")?;
    if program.len() > MAX_INSNS {
        bail!(
            "linux.seccomp: the filter has {} instructions, the kernel allows {MAX_INSNS}",
            program.len()
        );
    }
    Ok(Filter {
        program,
        flags: flags(s, notify),
        listener,
    })
}

/// Loads the filter into the calling thread; returns the notify listener
/// fd (CLOEXEC, set by the kernel) if the filter has NOTIFY rules.
pub fn install(f: &Filter) -> Result<Option<OwnedFd>> {
    let prog = libc::sock_fprog {
        len: f.program.len() as u16,
        filter: f.program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `f.program`, which outlives the call; `Insn`
    // is `#[repr(C)]` with the layout of `struct sock_filter`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            f.flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("linux.seccomp: load filter");
    }
    if f.flags & FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER the kernel returns a new fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(r as i32) }))
}

/// Init's step: install, and hand a notify listener to the runtime, which
/// passes it on to the agent. Init keeps no copy: once the agent is gone,
/// notified calls fail with ENOSYS instead of hanging.
pub fn install_and_hand_over(f: &Filter, sync: &SyncSocket) -> Result<()> {
    if let Some(fd) = install(f)? {
        sync.send_fd(&Msg::SeccompFd, &fd)?;
        sync.expect(Msg::SeccompFdDone)?;
    }
    Ok(())
}
