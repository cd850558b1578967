//! Seal the runtime binary before any process of ours enters a container
//! (CVE-2019-5736): the container must never get a writable handle to the
//! host's skiff binary through /proc/<pid>/exe, or by making our init exec
//! `/proc/self/exe` (directly, or as a script's `#!` interpreter).
//! Runs in: the runtime process, first thing in `create`, `run` and `exec`.
//!
//! skiff forks its stages instead of re-executing itself, so every stage's
//! /proc/self/exe is whatever the runtime was started from. A binary on a
//! read-only mount is safe as it is: a write through /proc/<pid>/exe goes
//! through that mount and fails with EROFS. Otherwise we re-exec once:
//! - as root, from a *detached read-only bind mount* of the binary
//!   (open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_RDONLY), then
//!   execveat on it; the cheap variant of runc 1.2's overlay sealing). The
//!   mount belongs to no namespace, so nothing in a container can reach it
//!   by path to remount it; it goes away with our last process. Cost: one
//!   exec (`scripts/bench.sh` measures it: "seal, root").
//! - otherwise (rootless, old kernel), from a memfd copy sealed against any
//!   change (F_SEAL_WRITE, SHRINK, GROW, then SEAL), as runc 1.1 does.
//!   Cost: one in-kernel copy of the binary plus the exec (bench.sh: "seal,
//!   unprivileged").
//!
//! Either way the re-exec'd process finds its exe on a read-only mount or
//! sealed, and goes on.
//!
//! The read-only bind re-exec is done first by `skiff_entry` (below), the
//! binary's entry point, before the C library starts: the copy that only
//! re-executes then costs no C library start-up (in a VM, glibc's dozens
//! of `cpuid`s each exit to the hypervisor; figures in README.md, Benchmark).
//! `ensure_sealed` stays the one check that counts: it runs in the
//! re-exec'd process, finds the exe read-only and returns, or does the
//! whole job itself when the entry could not (rootless: the memfd copy).
use anyhow::{Context, Result, bail};
use std::ffi::{CString, c_char};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Returns when /proc/self/exe is safe; otherwise re-executes from a sealed
/// copy (and so does not return).
pub fn ensure_sealed() -> Result<()> {
    let exe = std::fs::File::open("/proc/self/exe").context("open /proc/self/exe")?;
    // SAFETY: fcntl(F_GET_SEALS) on a valid fd; EINVAL for non-memfd files.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return Ok(());
    }
    let vfs = nix::sys::statvfs::fstatvfs(&exe).context("statvfs /proc/self/exe")?;
    if vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(());
    }
    let sealed = match ro_clone() {
        Ok(fd) => fd,
        Err(e) => {
            crate::log::debug(&format!("read-only bind of the binary: {e:#}; copying it"));
            sealed_copy(&exe)?
        }
    };
    reexec(&sealed)
}

/// A detached, read-only bind mount of our own binary, opened as an fd.
fn ro_clone() -> Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const MOUNT_ATTR_RDONLY: u64 = 1;
    // SAFETY: open_tree reads a NUL-terminated path; returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("open_tree");
    }
    // SAFETY: the kernel just returned this fd to us alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // struct mount_attr { attr_set, attr_clr, propagation, userns_fd }
    let attr: [u64; 4] = [MOUNT_ATTR_RDONLY, 0, 0, 0];
    // SAFETY: mount_setattr reads `attr` (valid, size passed) and an empty path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("mount_setattr");
    }
    Ok(fd)
}

fn memfd() -> Result<OwnedFd> {
    const MFD_EXEC: libc::c_uint = 0x10;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3+) keeps vm.memfd_noexec=1 from refusing the
    // exec; older kernels reject the unknown flag, so retry without it.
    for f in [flags | MFD_EXEC, flags] {
        // SAFETY: memfd_create reads a NUL-terminated name; returns a new fd or -1.
        let fd = unsafe { libc::memfd_create(c"skiff".as_ptr(), f) };
        if fd >= 0 {
            // SAFETY: the kernel just returned this fd to us alone.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(std::io::Error::last_os_error()).context("memfd_create")
}

/// Copies `exe` into a memfd in the kernel (sendfile) and seals it.
fn sealed_copy(exe: &std::fs::File) -> Result<OwnedFd> {
    let len = exe.metadata().context("stat /proc/self/exe")?.len() as usize;
    let fd = memfd()?;
    let mut done = 0usize;
    while done < len {
        // SAFETY: sendfile between two valid fds; a null offset uses the file position.
        let n = unsafe {
            libc::sendfile(
                fd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                len - done,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).context("copy the binary to a memfd");
        }
        if n == 0 {
            bail!("copy the binary to a memfd: short copy");
        }
        done += n as usize;
    }
    // SAFETY: fcntl(F_ADD_SEALS) on our memfd.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(std::io::Error::last_os_error()).context("seal the memfd");
    }
    Ok(fd)
}

unsafe extern "C" {
    static environ: *const *const c_char;
}

/// execveat(fd, "", argv, environ, AT_EMPTY_PATH) with our own argv.
fn reexec(fd: &OwnedFd) -> Result<()> {
    let args: Vec<CString> = crate::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .context("argv")?;
    let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: argv is a NULL-terminated array of valid C strings that outlive
    // the call; environ is the C library's environment; on success the call
    // does not return.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            environ,
            libc::AT_EMPTY_PATH,
        )
    };
    Err(std::io::Error::last_os_error()).context("re-exec from the sealed copy")
}

// The process entry point (build.rs links with `--entry=skiff_entry`): the
// seal's fast path, before the C library starts. A static glibc's start-up
// is not free (dozens of `cpuid`s, each a VM exit under a hypervisor, and
// the static-pie relocations; README.md, Benchmark): paid twice per `create`
// when the copy that only re-executes starts the C library too. This code
// runs before relocation, so it is position independent and touches no
// data but its own rodata, through rip-relative addresses. It does what
// `ensure_sealed` does on its main path, with raw syscalls:
//   if argv[1..] has "create", "run" or "exec" (main's scan), and
//   /proc/self/exe is neither fully sealed nor on a read-only mount:
//     fd = open_tree("/proc/self/exe", OPEN_TREE_CLONE|O_CLOEXEC)
//     mount_setattr(fd, "", AT_EMPTY_PATH, {attr_set: MOUNT_ATTR_RDONLY})
//     execveat(fd, "", argv, envp, AT_EMPTY_PATH)
// and otherwise, or on any error, jumps to the C library's `_start` with
// the stack and %rdx (its `rtld_fini`) as the kernel left them. Then
// `main` calls `ensure_sealed`, which finds the exe read-only and goes on,
// or takes the slow path itself (the memfd copy, the error report).
#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".pushsection .text.skiff_entry,\"ax\",@progbits",
    ".globl skiff_entry",
    ".type skiff_entry,@function",
    "skiff_entry:",
    "mov r15, rdx", // rtld_fini, for _start
    "mov r14, rsp", // argc, argv..., NULL, envp..., NULL, auxv
    "mov r12, [rsp]", // argc
    "lea rbx, [rsp + 8]", // argv
    "mov r8, 1",
    "2:",
    "cmp r8, r12",
    "jae 9f", // no subcommand that enters a container: nothing to seal
    "mov rsi, [rbx + r8*8]",
    "inc r8",
    "lea rdi, [rip + {create}]",
    "call 30f",
    "je 3f",
    "lea rdi, [rip + {run}]",
    "call 30f",
    "je 3f",
    "lea rdi, [rip + {exec}]",
    "call 30f",
    "jne 2b",
    // fd = open("/proc/self/exe", O_RDONLY|O_CLOEXEC)
    "3:",
    "mov eax, 2",
    "lea rdi, [rip + {exe}]",
    "mov esi, 0x80000",
    "xor edx, edx",
    "syscall",
    "test rax, rax",
    "js 9f",
    "mov r13, rax",
    // Already a sealed memfd (F_GET_SEALS): keep it.
    "mov eax, 72",
    "mov rdi, r13",
    "mov esi, 1034",
    "syscall",
    "test rax, rax",
    "js 4f",
    "and eax, {seals}",
    "cmp eax, {seals}",
    "je 8f",
    // Already on a read-only mount: f_flags (offset 80 of struct statfs) has ST_RDONLY.
    "4:",
    "sub rsp, 128",
    "mov eax, 138",
    "mov rdi, r13",
    "mov rsi, rsp",
    "syscall",
    "mov rcx, [rsp + 80]",
    "add rsp, 128",
    "test rax, rax",
    "js 8f",
    "test ecx, 1",
    "jnz 8f",
    "mov eax, 3",
    "mov rdi, r13",
    "syscall",
    // fd = open_tree(AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE|O_CLOEXEC)
    "mov eax, 428",
    "mov rdi, -100",
    "lea rsi, [rip + {exe}]",
    "mov edx, 0x80001",
    "syscall",
    "test rax, rax",
    "js 9f",
    "mov r13, rax",
    // mount_setattr(fd, "", AT_EMPTY_PATH, &{MOUNT_ATTR_RDONLY, 0, 0, 0}, 32)
    "push 0",
    "push 0",
    "push 0",
    "push 1",
    "mov eax, 442",
    "mov rdi, r13",
    "lea rsi, [rip + {empty}]",
    "mov edx, 0x1000",
    "mov r10, rsp",
    "mov r8d, 32",
    "syscall",
    "add rsp, 32",
    "test rax, rax",
    "js 8f",
    // execveat(fd, "", argv, envp, AT_EMPTY_PATH); returns only on failure.
    "mov eax, 322",
    "mov rdi, r13",
    "lea rsi, [rip + {empty}]",
    "mov rdx, rbx",
    "lea r10, [rbx + r12*8 + 8]",
    "mov r8d, 0x1000",
    "syscall",
    // close(fd), then the C library's start.
    "8:",
    "mov eax, 3",
    "mov rdi, r13",
    "syscall",
    "9:",
    "mov rsp, r14",
    "mov rdx, r15",
    "jmp _start",
    // ZF set when the C strings at rsi and rdi are equal; clobbers eax, ecx, r9.
    "30:",
    "xor ecx, ecx",
    "31:",
    "movzx eax, byte ptr [rsi + rcx]",
    "movzx r9d, byte ptr [rdi + rcx]",
    "cmp eax, r9d",
    "jne 32f",
    "inc rcx",
    "test eax, eax",
    "jnz 31b",
    "32:",
    "ret",
    ".size skiff_entry, . - skiff_entry",
    ".popsection",
    create = sym ENTRY_CREATE,
    run = sym ENTRY_RUN,
    exec = sym ENTRY_EXEC,
    exe = sym ENTRY_EXE,
    empty = sym ENTRY_EMPTY,
    seals = const SEALS,
);

#[cfg(target_arch = "x86_64")]
static ENTRY_CREATE: [u8; 7] = *b"create\0";
#[cfg(target_arch = "x86_64")]
static ENTRY_RUN: [u8; 4] = *b"run\0";
#[cfg(target_arch = "x86_64")]
static ENTRY_EXEC: [u8; 5] = *b"exec\0";
#[cfg(target_arch = "x86_64")]
static ENTRY_EXE: [u8; 15] = *b"/proc/self/exe\0";
#[cfg(target_arch = "x86_64")]
static ENTRY_EMPTY: [u8; 1] = [0];
