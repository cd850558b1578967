//! Runs in: the runtime process (P). cgroup v2 (and the unified directory of a
//! hybrid host): directory creation with `cgroup.subtree_control` enabling,
//! freezing through cgroup.freeze/cgroup.events, and cgroup.kill.
//!
//!
//! Device control: v2 has no devices.* files. The rules become a small
//! BPF_PROG_TYPE_CGROUP_DEVICE program (assembled here, like runc's
//! devicefilter) attached with BPF_PROG_ATTACH to the directory fd.

use super::fs::{Dir, has_errno};
use super::resources::DeviceRule;
use super::{Hierarchy, POLL, Write, read_trim, write_file};
use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::stat::Mode;
use std::path::{Path, PathBuf};

/// mkdir the levels from the mount down to the container's directory,
/// enabling controllers in every level above the leaf. `enable: None` enables
/// all available controllers (runc's fs2 behaviour); `Some(list)` only those,
/// and missing ones are an error.
pub(super) fn create(
    h: &Hierarchy,
    enable: Option<&[String]>,
    created: &mut Vec<PathBuf>,
) -> Result<()> {
    let rel = h
        .dir
        .strip_prefix(&h.mount)
        .with_context(|| format!("{} is not under {}", h.dir.display(), h.mount.display()))?;
    let mut cur = h.mount.clone();
    for c in rel.components() {
        // "No internal processes": controllers must be enabled in a parent's
        // subtree_control before a child can use them.
        enable_controllers(&cur, enable)?;
        cur.push(c);
        match nix::unistd::mkdir(&cur, Mode::from_bits_truncate(0o755)) {
            Ok(()) => created.push(cur.clone()),
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("mkdir {}", cur.display())),
        }
    }
    Ok(())
}

fn enable_controllers(dir: &Path, enable: Option<&[String]>) -> Result<()> {
    if enable.is_some_and(|e| e.is_empty()) {
        return Ok(());
    }
    let available = read_optional(&dir.join("cgroup.controllers"))?;
    let enabled = read_optional(&dir.join("cgroup.subtree_control"))?;
    let available: Vec<&str> = available.split_whitespace().collect();
    let wanted: Vec<&str> = match enable {
        None => available.clone(),
        Some(list) => list.iter().map(String::as_str).collect(),
    };
    for c in wanted {
        if enabled.split_whitespace().any(|e| e == c) {
            continue;
        }
        if !available.contains(&c) {
            bail!(
                "the {c} cgroup controller is not available in {}",
                dir.display()
            );
        }
        let result = write_file(&dir.join("cgroup.subtree_control"), &format!("+{c}"));
        // Enabling "everything" is best effort, as in runc: a controller may be
        // refused (e.g. cpu with realtime tasks in the parent) without harm.
        if enable.is_some() {
            result?;
        }
    }
    Ok(())
}

/// A missing file reads as empty: newly made directories in fixture trees
/// have no files (the kernel always provides them).
fn read_optional(path: &Path) -> Result<String> {
    if path.exists() {
        read_trim(path)
    } else {
        Ok(String::new())
    }
}

/// 1000 rounds of 10ms: ten seconds for cgroup.events to report the state.
const FREEZE_ROUNDS: usize = 1000;

pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "1" } else { "0" };
    // Polled below: opened once, its files relative to the fd.
    let dir = Dir::open(dir)?;
    dir.write("cgroup.freeze", want)?;
    for _ in 0..FREEZE_ROUNDS {
        // cgroup.freeze is the request; "frozen" in cgroup.events says it is done.
        let text = dir.read("cgroup.events")?;
        if text
            .lines()
            .any(|l| l.split_whitespace().eq(["frozen", want]))
        {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
    if frozen {
        let _ = dir.write("cgroup.freeze", "0");
    }
    bail!(
        "{} did not report frozen {want}",
        dir.path().join("cgroup.events").display()
    )
}

pub(super) fn is_frozen(dir: &Path) -> bool {
    crate::procfs::read_line(&dir.join("cgroup.freeze")).is_ok_and(|s| s == "1")
}

/// SIGKILL the whole subtree at once (Linux 5.14+). Returns false when the
/// kernel has no cgroup.kill, so the caller falls back to signalling pids.
pub(super) fn kill(dir: &Path) -> Result<bool> {
    let file = dir.join("cgroup.kill");
    if !file.exists() {
        return Ok(false);
    }
    match write_file(&file, "1") {
        // Removed meanwhile (ENOENT), or being removed (ENODEV: systemd
        // stopping the unit, say): nothing is left in it to kill.
        Err(e) if cgroup_gone(&e) => Ok(true),
        r => r.map(|()| true),
    }
}

/// True for the errors of a control file whose cgroup is gone or going.
fn cgroup_gone(e: &anyhow::Error) -> bool {
    has_errno(e, super::fs::GONE)
}

#[cfg(test)]
#[test]
fn a_dying_cgroup_counts_as_gone() {
    use anyhow::Context;
    let err = |errno| {
        Err::<(), _>(std::io::Error::from_raw_os_error(errno))
            .context("write \"1\" to cgroup.kill")
            .unwrap_err()
    };
    assert!(cgroup_gone(&err(libc::ENODEV)));
    assert!(cgroup_gone(&err(libc::ENOENT)));
    assert!(!cgroup_gone(&err(libc::EACCES)));
}

/// Apply writes to a v2 directory, each file opened relative to the open
/// directory; the device filter loads a program and attaches it to it.
pub(super) fn apply(dir: &Path, writes: &[Write]) -> Result<()> {
    let dir = Dir::open(dir)?;
    for w in writes {
        match w {
            Write::DeviceFilter { rules } => {
                let prog = assemble(&compile(rules)?);
                attach_device_filter(&dir, &prog)
                    .context("linux.resources.devices: cgroup v2 device filter")?;
            }
            Write::File { file, value, .. } => dir.write(file, value)?,
        }
    }
    Ok(())
}

/// One rule as the program tests it.
#[derive(Debug, PartialEq)]
pub(super) struct Rule {
    allow: bool,
    kind: char,
    major: Option<u32>,
    minor: Option<u32>,
    access: i32, // BPF_DEVCG_ACC_* bits
}

pub(super) fn compile(rules: &[DeviceRule]) -> Result<Vec<Rule>> {
    let num = |n: Option<i64>| -> Result<Option<u32>> {
        n.map(|n| u32::try_from(n).with_context(|| format!("bad device number {n}")))
            .transpose()
    };
    rules
        .iter()
        .map(|r| {
            let bit = |c: char, b: i32| if r.access.contains(c) { b } else { 0 };
            Ok(Rule {
                allow: r.allow,
                kind: r.kind,
                major: num(r.major)?,
                minor: num(r.minor)?,
                access: bit('m', 1) | bit('r', 2) | bit('w', 4),
            })
        })
        .collect()
}

/// struct bpf_insn: code, dst:4|src:4, off, imm (little-endian bitfields).
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub(super) struct Insn {
    pub(super) code: u8,
    regs: u8,
    pub(super) off: i16,
    pub(super) imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95;

/// The program: r2 = device type, r3 = access, r4 = major, r5 = minor (from
/// struct bpf_cgroup_dev_ctx), then one block per rule, last rule first, since
/// a later rule overrides an earlier one (v1 semantics). An "a" rule resets
/// everything before it, so it ends the program with its verdict; without one
/// the default is deny.
pub(super) fn assemble(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        if r.kind == 'a' {
            p.push(insn(MOV32_K, 0, 0, 0, r.allow as i32));
            p.push(insn(EXIT, 0, 0, 0, 0));
            return p;
        }
        // Conditional jumps carry off = -1 for now: "skip to the next rule".
        let mut b = vec![insn(JNE_K, 2, 0, -1, if r.kind == 'b' { 1 } else { 2 })];
        if r.access != 7 {
            // The requested access must be a subset of the rule's.
            b.push(insn(MOV32_X, 1, 3, 0, 0));
            b.push(insn(AND32_K, 1, 0, 0, r.access));
            b.push(insn(JNE_X, 1, 3, -1, 0));
        }
        if let Some(m) = r.major {
            b.push(insn(JNE_K, 4, 0, -1, m as i32));
        }
        if let Some(m) = r.minor {
            b.push(insn(JNE_K, 5, 0, -1, m as i32));
        }
        b.push(insn(MOV32_K, 0, 0, 0, r.allow as i32));
        b.push(insn(EXIT, 0, 0, 0, 0));
        let len = b.len() as i16;
        for (i, x) in b.iter_mut().enumerate() {
            if x.off == -1 {
                x.off = len - i as i16 - 1;
            }
        }
        p.extend(b);
    }
    p.push(insn(MOV32_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The prefix of union bpf_attr used by BPF_PROG_LOAD; the kernel accepts a
/// shorter attr as long as the missing tail would be zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<i32> {
    // SAFETY: attr is a live, initialised #[repr(C)] prefix of union bpf_attr,
    // and its exact size is passed, so the kernel reads only that memory.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("bpf({cmd})"));
    }
    Ok(r as i32)
}

fn attach_device_filter(dir: &Dir, prog: &[Insn]) -> Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut load = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        ..Default::default()
    };
    let fd = bpf(BPF_PROG_LOAD, &mut load).with_context(|| {
        let end = log.iter().position(|&b| b == 0).unwrap_or(0);
        format!(
            "load program, verifier said: {}",
            String::from_utf8_lossy(&log[..end])
        )
    })?;
    // SAFETY: the kernel just returned this new fd and nothing else owns it.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // ALLOW_MULTI, as runc and systemd use, so nested cgroups can add their own.
    let mut attach = ProgAttachAttr {
        target_fd: dir.fd().as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attach)
        .with_context(|| format!("attach to {}", dir.path().display()))?;
    Ok(()) // the cgroup keeps its own reference to the program
}
