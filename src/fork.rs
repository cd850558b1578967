//! Forking a child straight into the container's cgroup v2 directory with
//! `clone3(CLONE_INTO_CGROUP)`, as crun does, and into new namespaces.
//! Runs in: the runtime process (forking stage-1, or init directly).
//!
//! Why: moving a process by writing `cgroup.procs` takes the kernel's
//! global `cgroup_threadgroup_rwsem` for writing, which waits for an RCU
//! grace period, the largest single cost of `create` (README.md, Benchmark).
//! `CLONE_INTO_CGROUP` only takes it for reading. For cgroup v1 the child
//! moves itself by writing "0" to `tasks` (see `Cgroup::join_self`), which
//! the kernel also does without the global lock for a single thread.
use anyhow::{Context, Result};
use nix::fcntl::{OFlag, open};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Pid};
use std::os::fd::AsRawFd;
use std::path::Path;

/// `struct clone_args` from linux/sched.h (v2 layout, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks; the child starts in the cgroup v2 directory `cgroup` when given
/// and the kernel allows it, and in new namespaces `ns` (clone flags; none
/// for a plain fork). Returns whether the child is already in the cgroup,
/// so it knows not to move itself. Falls back to a fork without the
/// cgroup otherwise; a failure to make the namespaces is an error.
///
/// # Safety
/// As for fork(2): the caller is single-threaded, and the child only runs
/// code that does not depend on glibc's cached thread id (the raw clone
/// does not update it; raise(3) and fork(3) query the kernel instead).
pub unsafe fn fork_into(cgroup: Option<&Path>, ns: CloneFlags) -> Result<(ForkResult, bool)> {
    if let Some(dir) = cgroup {
        let fd = open(
            dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("open {}", dir.display()))?;
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP | ns.bits() as u64,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: fd.as_raw_fd() as u64,
            ..Default::default()
        };
        // SAFETY: clone3 with no stack and no CLONE_VM behaves like fork(2):
        // the child gets a copy of our memory and returns 0 here. `args`
        // is valid for the call and its size is passed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        match r {
            0 => return Ok((ForkResult::Child, true)),
            p if p > 0 => {
                let child = Pid::from_raw(p as i32);
                return Ok((ForkResult::Parent { child }, true));
            }
            // Old kernel, or a cgroup the kernel refuses to clone into:
            // fork and let the child write cgroup.procs, which reports
            // any real error with the file's name.
            _ => crate::log::debug(&format!(
                "clone3 into {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            )),
        }
    }
    if ns.is_empty() {
        // SAFETY: the caller's contract is fork(2)'s.
        let r = unsafe { nix::unistd::fork() }.context("fork")?;
        return Ok((r, false));
    }
    // SAFETY: clone(2) with no stack and no CLONE_VM behaves like fork(2),
    // in new namespaces; the pointer arguments are unused (null).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            ns.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match r {
        0 => Ok((ForkResult::Child, false)),
        p if p > 0 => Ok((
            ForkResult::Parent {
                child: Pid::from_raw(p as i32),
            },
            false,
        )),
        _ => Err(std::io::Error::last_os_error()).with_context(|| format!("clone {ns:?}")),
    }
}

/// Gives back the stack pages below the caller's frame; `create` calls it
/// right before it forks the container's init (or stage-1). Parsing
/// config.json runs deep (serde's frames for oci-spec's types: about 80 KiB
/// of stack), and a child inherits, and counts in its RSS, every page its
/// parent has touched: for the container's init that was the largest part
/// of the peak RSS of `run` after its code. The pages are below the stack
/// pointer, so nothing live is in them; MADV_DONTNEED gives them back and a
/// later touch gets a zeroed page. The stack's lowest address comes from
/// /proc/self/maps, so the call stays inside the stack mapping.
#[inline(never)]
pub fn shed_dead_stack() {
    const PAGE: usize = 4096;
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    // Two pages of margin: this frame, the red zone, madvise's own frame.
    let top = (sp & !(PAGE - 1)).saturating_sub(2 * PAGE);
    let Some((low, high)) = crate::procfs::read_text("/proc/self/maps")
        .ok()
        .and_then(|m| stack_range(&m))
    else {
        return;
    };
    // Only on the main thread's stack (a test's thread has its own).
    if low < top && sp < high {
        // SAFETY: [low, top) lies inside our own stack mapping and below
        // the stack pointer: no live data (see above).
        unsafe { libc::madvise(low as *mut libc::c_void, top - low, libc::MADV_DONTNEED) };
    }
}

/// The address range of the `[stack]` line of /proc/self/maps.
fn stack_range(maps: &str) -> Option<(usize, usize)> {
    let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
    let (start, rest) = line.split_once('-')?;
    let end = rest.split(' ').next()?;
    Some((
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn stack_range_reads_the_stack_line() {
        let maps = "555555554000-555555556000 r--p 00000000 fe:00 1 /bin/x\n\
                    7ffd1000a000-7ffd1002c000 rw-p 00000000 00:00 0                          [stack]\n\
                    7ffd1017f000-7ffd10183000 r--p 00000000 00:00 0                          [vvar]\n";
        assert_eq!(
            super::stack_range(maps),
            Some((0x7ffd1000a000, 0x7ffd1002c000))
        );
        assert_eq!(
            super::stack_range("1000-2000 rw-p 0 00:00 0 [heap]\n"),
            None
        );
    }
}
