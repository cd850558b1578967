//! The child spine of `skiff exec`: stage-1 joins the running container's
//! cgroup and namespaces and forks the new process, which sets up its
//! terminal, cwd, identity and privileges and execs. The sync socket is
//! close-on-exec, so a successful execve shows up in the runtime as EOF
//! after `InitPid`; any earlier failure is sent as `Failed`.
//! Without a user or time namespace to join (`direct_exec`), the runtime
//! itself joins the pid namespace for its children and clones the process,
//! which does stage-1's steps itself (`direct`): one process fewer, and no
//! `InitPid`, since the runtime has the pid from the clone.
//! Runs in: exec stage-1 and the exec'd process.
use super::{console, exec, fail, set_name, user};
use crate::cgroup::Cgroup;
use crate::sync::{Msg, SyncSocket};
use anyhow::{Context, Result};
use nix::sched::CloneFlags;
use nix::unistd::ForkResult;
use oci_spec::runtime::Process;
use std::ffi::CString;
use std::os::fd::OwnedFd;

/// Everything decided by the runtime before it forks.
pub struct ExecPlan {
    pub process: Process,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    /// The init's namespaces, opened (and so pinned) by the runtime, user first.
    pub joins: Vec<(CloneFlags, OwnedFd)>,
    /// The init's root (`/proc/<pid>/root`) when the container has no
    /// mount namespace of its own: then init only chrooted, and so do we.
    pub chroot: Option<OwnedFd>,
    pub cgroup: Cgroup,
    /// False for `--ignore-paused` on a frozen container: a child joining it
    /// would freeze during setup, so the runtime moves the process in once
    /// it is set up, just before its execve (it then freezes there).
    pub join_cgroup: bool,
    pub preserve_fds: i32,
    /// The container's personality and memory policy, the process's I/O priority.
    pub policy: crate::spec::policy::Policy,
    /// The container's seccomp profile, compiled by the runtime.
    pub seccomp: Option<crate::seccomp::Filter>,
    /// The container's resctrl groups (linux.intelRdt), joined with the cgroup.
    pub rdt_groups: Vec<std::path::PathBuf>,
}

pub fn stage1(plan: &ExecPlan, sync: &SyncSocket, console: Option<&OwnedFd>, in_v2: bool) -> ! {
    match stage1_steps(plan, sync, console, in_v2) {
        // SAFETY: _exit ends the process without running the parent's destructors.
        Ok(()) => unsafe { libc::_exit(0) },
        Err(e) => fail(sync, e),
    }
}

fn stage1_steps(
    plan: &ExecPlan,
    sync: &SyncSocket,
    console: Option<&OwnedFd>,
    in_v2: bool,
) -> Result<()> {
    set_name("skiff:[1:EXEC]");
    enter(plan, in_v2, CloneFlags::empty())?;
    // SAFETY: single-threaded; the child ends in execve or _exit.
    match unsafe { nix::unistd::fork() }.context("fork exec process")? {
        ForkResult::Child => {
            set_name("skiff:[2:EXEC]");
            if let Err(e) = process_steps(plan, sync, console) {
                fail(sync, e);
            }
            unreachable!("execve returned without error")
        }
        ForkResult::Parent { child } => sync.send(&Msg::InitPid(child.as_raw())),
    }
}

/// True when the runtime can clone the exec'd process itself (`direct`):
/// no user namespace to join (setns into it would change the runtime's own
/// credentials) and no time namespace (only the children of the process
/// that joins one live in it, as for a pid namespace, but the runtime
/// would also have to undo it).
pub fn direct_exec(plan: &ExecPlan) -> bool {
    let staged = CloneFlags::CLONE_NEWUSER | crate::spec::namespaces::CLONE_NEWTIME;
    plan.joins.iter().all(|(f, _)| !f.intersects(staged))
}

/// The exec'd process cloned by the runtime (`direct_exec`), already in
/// the container's pid namespace: stage-1's steps, then its own.
pub fn direct(plan: &ExecPlan, sync: &SyncSocket, console: Option<&OwnedFd>, in_v2: bool) -> ! {
    set_name("skiff:[2:EXEC]");
    let steps = || -> Result<()> {
        enter(plan, in_v2, CloneFlags::CLONE_NEWPID)?;
        // The runtime's death no longer concerns us, as for a process
        // forked by stage-1; and the filters below need not allow prctl.
        nix::sys::prctl::set_pdeathsig(None).context("prctl(PR_SET_PDEATHSIG)")?;
        process_steps(plan, sync, console)
    };
    if let Err(e) = steps() {
        fail(sync, e);
    }
    unreachable!("execve returned without error")
}

/// Stage-1's steps: fds, cgroup, resctrl, rlimits, then the namespaces
/// (but those in `joined`, which the runtime joined for its children).
fn enter(plan: &ExecPlan, in_v2: bool, joined: CloneFlags) -> Result<()> {
    // Before joining the container's mount namespace (its /proc is not
    // ours to trust) and before any seccomp filter (see container_init::init_steps).
    exec::seal_fds(plan.preserve_fds)?;
    // Invisible to the container's processes until execve (see container_init::init_steps).
    // Our uid is still the host's, so /proc/self stays writable for us.
    nix::sys::prctl::set_dumpable(false).context("prctl(PR_SET_DUMPABLE)")?;
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    if plan.policy.cpus_initial.is_some() {
        // Set by the runtime before the fork (launch::exec); read back.
        let cpus = super::policy::affinity_text();
        crate::log::debug(&format!("exec: stage-1 CPU affinity {cpus}"));
    }
    if plan.join_cgroup {
        plan.cgroup.join_self(in_v2)?;
    }
    // On the host's resctrl mount, before joining the mount namespace.
    crate::rdt::join_self(&plan.rdt_groups)?;
    user::set_rlimits(&plan.process)?;
    super::namespaces::join(plan.joins.iter().filter(|(f, _)| !joined.contains(*f)))?;
    if let Some(root) = &plan.chroot {
        nix::unistd::fchdir(root).context("fchdir to the container's root")?;
        nix::unistd::chroot(".").context("chroot into the container's root")?;
    }
    Ok(())
}

fn process_steps(plan: &ExecPlan, sync: &SyncSocket, console_sock: Option<&OwnedFd>) -> Result<()> {
    let p = &plan.process;
    if p.terminal().unwrap_or(false) {
        nix::unistd::setsid().context("setsid")?;
        let sock = console_sock.context("process.terminal: no console socket")?;
        console::setup(
            sock,
            p.console_size().map(|b| (b.height(), b.width())),
            false,
            p.user().uid(),
        )?;
    }
    crate::rootfs::enter_cwd(p.cwd()).context("cwd")?;
    user::set_oom_score_adj(p)?;
    super::policy::apply_early(&plan.policy)?;
    // In the container's cgroup now (stage-1 joined it), and before any
    // seccomp filter, which need not allow sched_setaffinity; execve keeps it.
    if let Some(cpus) = &plan.policy.cpus_final {
        super::policy::set_affinity(cpus, "process.execCPUAffinity.final")?;
    }
    // The same two install points as init (see container_init::init_steps).
    let nnp = p.no_new_privileges().unwrap_or(false);
    if let Some(f) = plan.seccomp.as_ref().filter(|_| !nnp) {
        crate::seccomp::install_and_hand_over(f, sync)?;
    }
    user::set_lsm_labels(p)?;
    user::switch_user_and_caps(p)?;
    user::set_no_new_privs(p)?;
    let env = exec::with_home(&plan.env, p.user().uid());
    let prog = exec::find_program(&plan.args[0], &env)?;
    let exec = exec::Prepared::new(prog, plan.args.clone(), env);
    crate::sigpipe::restore_sigpipe();
    crate::log::debug("setns_init: about to exec");
    // Before the filter, which need not allow it (see container_init::init_steps).
    super::policy::apply_personality(&plan.policy)?;
    // After the filter: nothing but execve (the sync socket is CLOEXEC).
    if let Some(f) = plan.seccomp.as_ref().filter(|_| nnp) {
        crate::seccomp::install_and_hand_over(f, sync)?;
    }
    if !plan.join_cgroup {
        // `--ignore-paused` on a frozen container: nothing of the program
        // may run outside the container's cgroup. The runtime moves us in
        // while we wait here, where we freeze until the container resumes.
        sync.send_plain(&Msg::Done)?;
        sync.expect_go_plain()?;
    }
    exec.exec()
}
