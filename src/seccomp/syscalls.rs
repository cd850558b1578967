//! Syscall name → number, per x86 ABI. x86_64 and i386 come from the
//! `syscalls` crate (generated from the kernel's syscall_64.tbl and
//! syscall_32.tbl); x32 is derived: the x86_64 number with bit 30 set,
//! except the calls whose x32 entry points are the compat ones at 512–547
//! (arch/x86/entry/syscalls/syscall_64.tbl, the "x32" lines).
//! Runs in: the runtime process (compile time).
use std::str::FromStr;

/// The x86 ABIs a filter can cover on an x86_64 kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Abi {
    X86_64,
    X32,
    I386,
}

/// AUDIT_ARCH_X86_64 (x32 uses it too, with bit 30 in the number).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// AUDIT_ARCH_I386.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// __X32_SYSCALL_BIT.
pub const X32_BIT: u32 = 0x4000_0000;

/// x32 entry points 512.. in table order.
const X32_COMPAT: [&str; 36] = [
    "rt_sigaction",
    "rt_sigreturn",
    "ioctl",
    "readv",
    "writev",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "execve",
    "ptrace",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "sigaltstack",
    "timer_create",
    "mq_notify",
    "kexec_load",
    "waitid",
    "set_robust_list",
    "get_robust_list",
    "vmsplice",
    "move_pages",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "recvmmsg",
    "sendmmsg",
    "process_vm_readv",
    "process_vm_writev",
    "setsockopt",
    "getsockopt",
    "io_setup",
    "io_submit",
    "execveat",
    "preadv2",
    "pwritev2",
];

impl Abi {
    /// The AUDIT_ARCH_* value the kernel puts in `seccomp_data.arch`.
    pub fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::I386 => AUDIT_ARCH_I386,
        }
    }

    /// Arguments are 32 bits wide: only the low half is compared (as libseccomp does).
    pub fn is_32bit(self) -> bool {
        self == Abi::I386
    }

    /// The number seen in `seccomp_data.nr`, or None if this ABI has no such call.
    pub fn number(self, name: &str) -> Option<u32> {
        match self {
            Abi::X86_64 => syscalls::x86_64::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Abi::I386 => syscalls::x86::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Abi::X32 => {
                if let Some(i) = X32_COMPAT.iter().position(|n| *n == name) {
                    return Some(X32_BIT | (512 + i as u32));
                }
                Abi::X86_64.number(name).map(|n| X32_BIT | n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_kernel_tables() {
        assert_eq!(Abi::X86_64.number("read"), Some(0));
        assert_eq!(Abi::X86_64.number("mkdir"), Some(83));
        assert_eq!(Abi::X86_64.number("getppid"), Some(110));
        assert_eq!(Abi::I386.number("mkdir"), Some(39));
        assert_eq!(Abi::I386.number("socketcall"), Some(102));
        assert_eq!(Abi::X86_64.number("socketcall"), None);
        assert_eq!(Abi::X32.number("mkdir"), Some(X32_BIT | 83));
        assert_eq!(Abi::X32.number("rt_sigaction"), Some(X32_BIT | 512));
        assert_eq!(Abi::X32.number("pwritev2"), Some(X32_BIT | 547));
        assert_eq!(Abi::X86_64.number("no_such_call"), None);
    }
}
