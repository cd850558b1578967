//! A small classic-BPF emitter for seccomp: labels instead of offsets,
//! resolved in one pass, and a code generator for a `Profile`.
//!
//! Why our own, rather than a library:
//! - libseccomp (what runc and crun use; the `libseccomp` crate binds it)
//!   is a C library: a build and runtime dependency, and for the static
//!   binary skiff ships (scripts/bench.sh, the VM) a static libseccomp.a
//!   to link, for a job of a few hundred lines here.
//! - seccompiler (Firecracker's, pure Rust) has no `SCMP_ACT_NOTIFY`
//!   (its actions stop at Allow, Errno, KillThread, KillProcess, Log,
//!   Trace, Trap), one target architecture per filter (no x32/i386
//!   sections for `architectures`), and no runc-style -ENOSYS stub for
//!   calls newer than the profile.
//!
//! The emitter is only what the OCI profile needs: the shape below, the
//! runc/libseccomp semantics in mod.rs, and tests (tests.rs) that run the
//! programs through a BPF interpreter and install one in the kernel.
//!
//! Program shape:
//! ```text
//!   ld arch; per ABI: jeq AUDIT_ARCH → section; ret BADARCH
//! section(x86_64): ld nr; jset X32_BIT → section(x32) or BADARCH
//!   [jgt highest-known-nr → ret ERRNO(ENOSYS)]      (runc's -ENOSYS stub)
//!   runs of unconditional calls: jeq nr → shared `ret ACTION`
//!   calls with argument rules: jeq nr → rule 1 … rule n, ret DEFAULT
//!   ret DEFAULT
//! ```
//! Conditional jumps only ever go forward over a bounded distance (one
//! rule, or one run of at most `RUN` calls); anything that may be farther
//! uses `ja`, whose offset is 32 bits.
//! Runs in: the runtime process (compile time).
use super::syscalls::{Abi, X32_BIT};
use anyhow::{Result, bail};

/// `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

pub const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const JGT: u16 = 0x25;
pub const JGE: u16 = 0x35;
pub const JSET: u16 = 0x45;
pub const JA: u16 = 0x05;
pub const RET: u16 = 0x06; // BPF_RET | BPF_K
pub const AND: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
fn arg_lo(i: u8) -> u32 {
    16 + 8 * i as u32
}
fn arg_hi(i: u8) -> u32 {
    20 + 8 * i as u32
}

/// Unconditional calls per shared `ret`: keeps every `jt` under 256.
const RUN: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// One argument comparison: `arg[index] OP value` (MaskedEq: `arg & mask == value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cond {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub mask: u64,
}

/// Conditions ANDed; the first rule of a call that matches decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub conds: Vec<Cond>,
    pub action: u32,
}

/// A call's name and its rules, in profile order.
pub type Call = (String, Vec<Rule>);

/// A profile ready for code generation; every choice is already made.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub default_action: u32,
    pub bad_arch_action: u32,
    /// ABIs in the filter; X86_64 is always present.
    pub abis: Vec<Abi>,
    /// (name, rules in profile order).
    pub calls: Vec<Call>,
    /// Per ABI, the highest number the profile names: above it, ENOSYS.
    pub enosys: Vec<(Abi, u32)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Label(usize);

#[derive(Clone, Copy, Debug)]
enum To {
    Next,
    L(Label),
}

enum Item {
    I(Insn),
    J(u16, u32, To, To),
    Ja(Label),
    Bind(Label),
}

#[derive(Default)]
struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }
    fn ins(&mut self, code: u16, k: u32) {
        let i = Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        };
        self.items.push(Item::I(i));
    }
    fn ld(&mut self, off: u32) {
        self.ins(LD_ABS, off);
    }
    fn ret(&mut self, k: u32) {
        self.ins(RET, k);
    }
    fn jmp(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.items.push(Item::J(code, k, jt, jf));
    }
    fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }

    /// Replaces labels by offsets; fails if a conditional jump is over 255.
    fn resolve(self) -> Result<Vec<Insn>> {
        let mut at = vec![usize::MAX; self.labels];
        let mut pc = 0;
        for it in &self.items {
            match it {
                Item::Bind(l) => at[l.0] = pc,
                _ => pc += 1,
            }
        }
        let mut out = Vec::with_capacity(pc);
        let off = |to: To, pc: usize| -> Result<u32> {
            match to {
                To::Next => Ok(0),
                To::L(l) if at[l.0] > pc => Ok((at[l.0] - pc - 1) as u32),
                To::L(_) => bail!("internal error: backward or unbound jump"),
            }
        };
        for it in self.items {
            let pc = out.len();
            let insn = match it {
                Item::Bind(_) => continue,
                Item::I(i) => i,
                Item::Ja(l) => Insn {
                    code: JA,
                    jt: 0,
                    jf: 0,
                    k: off(To::L(l), pc)?,
                },
                Item::J(code, k, jt, jf) => {
                    let (t, f) = (off(jt, pc)?, off(jf, pc)?);
                    if t > 255 || f > 255 {
                        bail!("a rule is too long for a conditional jump ({t}, {f})");
                    }
                    Insn {
                        code,
                        jt: t as u8,
                        jf: f as u8,
                        k,
                    }
                }
            };
            out.push(insn);
        }
        Ok(out)
    }
}

/// Generates the whole program.
pub fn emit(p: &Profile) -> Result<Vec<Insn>> {
    let mut a = Asm::default();
    let sections: Vec<(Abi, Label)> = p.abis.iter().map(|&abi| (abi, a.label())).collect();
    let find = |abi: Abi| sections.iter().find(|s| s.0 == abi).map(|s| s.1);
    a.ld(ARCH);
    for &(abi, l) in sections.iter().filter(|s| s.0 != Abi::X32) {
        let no = a.label();
        a.jmp(JEQ, abi.audit_arch(), To::Next, To::L(no));
        a.ja(l);
        a.bind(no);
    }
    a.ret(p.bad_arch_action);
    for &(abi, l) in &sections {
        a.bind(l);
        a.ld(NR);
        if abi == Abi::X86_64 {
            // x32 shares AUDIT_ARCH_X86_64; bit 30 tells the calls apart.
            let native = a.label();
            a.jmp(JSET, X32_BIT, To::Next, To::L(native));
            match find(Abi::X32) {
                Some(x32) => a.ja(x32),
                None => a.ret(p.bad_arch_action),
            }
            a.bind(native);
        }
        section(&mut a, p, abi);
    }
    a.resolve()
}

/// The calls of one ABI, after `ld nr`.
fn section(a: &mut Asm, p: &Profile, abi: Abi) {
    if let Some(&(_, max)) = p.enosys.iter().find(|e| e.0 == abi) {
        let known = a.label();
        a.jmp(JGT, max, To::Next, To::L(known));
        a.ret(RET_ERRNO | libc::ENOSYS as u32);
        a.bind(known);
    }
    // Unconditional calls, grouped by action so that runs share one `ret`.
    let mut simple: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut complex: Vec<(u32, &[Rule])> = Vec::new();
    for (name, rules) in &p.calls {
        let Some(nr) = abi.number(name) else { continue };
        match rules.first() {
            Some(r) if r.conds.is_empty() => match simple.iter_mut().find(|s| s.0 == r.action) {
                Some(s) => s.1.push(nr),
                None => simple.push((r.action, vec![nr])),
            },
            Some(_) => complex.push((nr, rules)),
            None => {}
        }
    }
    for (action, nrs) in &simple {
        for run in nrs.chunks(RUN) {
            let (ret, after) = (a.label(), a.label());
            for (i, nr) in run.iter().enumerate() {
                let jf = if i + 1 == run.len() {
                    To::L(after)
                } else {
                    To::Next
                };
                a.jmp(JEQ, *nr, To::L(ret), jf);
            }
            a.bind(ret);
            a.ret(*action);
            a.bind(after);
        }
    }
    for (nr, rules) in complex {
        let (body, end) = (a.label(), a.label());
        a.jmp(JEQ, nr, To::L(body), To::Next);
        a.ja(end);
        a.bind(body);
        for r in rules {
            let fail = a.label();
            for c in &r.conds {
                cond(a, c, fail, abi.is_32bit());
            }
            a.ret(r.action);
            a.bind(fail);
        }
        a.ret(p.default_action);
        a.bind(end);
    }
    a.ret(p.default_action);
}

/// One comparison: falls through when it holds, jumps to `fail` otherwise.
/// 64-bit values are compared as two unsigned 32-bit halves, high first.
fn cond(a: &mut Asm, c: &Cond, fail: Label, narrow: bool) {
    let (hi, lo) = ((c.value >> 32) as u32, c.value as u32);
    let (mhi, mlo) = ((c.mask >> 32) as u32, c.mask as u32);
    let f = To::L(fail);
    let ok = a.label();
    let o = To::L(ok);
    if !narrow {
        a.ld(arg_hi(c.index));
        match c.op {
            Op::Eq => a.jmp(JEQ, hi, To::Next, f),
            Op::MaskedEq => {
                a.ins(AND, mhi);
                a.jmp(JEQ, hi, To::Next, f);
            }
            Op::Ne => a.jmp(JEQ, hi, To::Next, o),
            Op::Gt | Op::Ge => {
                a.jmp(JGT, hi, o, To::Next);
                a.jmp(JEQ, hi, To::Next, f);
            }
            Op::Lt | Op::Le => {
                a.jmp(JGT, hi, f, To::Next);
                a.jmp(JEQ, hi, To::Next, o);
            }
        }
    }
    a.ld(arg_lo(c.index));
    match c.op {
        Op::Eq => a.jmp(JEQ, lo, To::Next, f),
        Op::MaskedEq => {
            a.ins(AND, mlo);
            a.jmp(JEQ, lo, To::Next, f);
        }
        Op::Ne => a.jmp(JEQ, lo, f, To::Next),
        Op::Gt => a.jmp(JGT, lo, To::Next, f),
        Op::Ge => a.jmp(JGE, lo, To::Next, f),
        Op::Lt => a.jmp(JGE, lo, f, To::Next),
        Op::Le => a.jmp(JGT, lo, f, To::Next),
    }
    a.bind(ok);
}
