//! Stage-1 (S): joins the cgroup, sets rlimits, enters or creates the
//! namespaces (with the runtime's help for a new user namespace's id
//! maps), forks init and reports its pid. `direct_clone` decides when the
//! runtime can clone init itself and skip S; `direct_steps` is then what
//! init does in S's place. See `sync.rs` for the protocol.
//! Runs in: stage-1 (and init, for `direct_steps`).
use super::{ChildFds, fail, namespaces, set_name, user};
use crate::procfs::proc_write;
use crate::spec::Plan;
use crate::sync::Msg;
use anyhow::{Context, Result};
use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Gid, Uid};

/// Stage-1 (S): cgroup, rlimits, join namespaces, user namespace mapping,
/// unshare the rest, fork init, report its pid, exit.
pub fn stage1(plan: &Plan, fds: &ChildFds) -> ! {
    match stage1_steps(plan, fds) {
        // SAFETY: as in `fail`.
        Ok(()) => unsafe { libc::_exit(0) },
        Err(e) => fail(&fds.sync, e),
    }
}

fn stage1_steps(plan: &Plan, fds: &ChildFds) -> Result<()> {
    set_name("skiff:[1:STAGE1]");
    crate::log::phase("stage1");
    // If the runtime dies now, nobody is left to finish or clean up.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    // Join the cgroup first: init starts inside the limits, before cgroupns.
    plan.cgroup.join_self(fds.in_v2)?;
    let process = &plan.process;
    user::set_rlimits(process)?;
    // Here, with host credentials and the host's /proc, as runc does: in a
    // new user namespace, the switch to its root below makes us
    // non-dumpable, and /proc/self/oom_score_adj is then owned by the
    // host's root, out of reach (EACCES). Inherited by init and the process.
    user::set_oom_score_adj(process)?;
    namespaces::join(&namespaces::open_joins(&plan.ns)?)?;
    if plan.ns.new_user {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER).context("unshare user namespace")?;
        fds.sync.send(&Msg::MapIds)?;
        fds.sync.expect(Msg::IdsMapped)?;
    }
    if plan.ns.new_user || plan.ns.joins_user() {
        // Our host ids mean nothing in there (files we made would fail
        // with EOVERFLOW): become the namespace's root.
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .context("setresgid to root of the user namespace")?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .context("setresuid to root of the user namespace")?;
    }
    nix::sched::unshare(plan.ns.new).with_context(|| format!("unshare {:?}", plan.ns.new))?;
    crate::log::phase("stage1-unshare");
    if plan.ns.new.contains(crate::spec::namespaces::CLONE_NEWTIME) {
        write_time_offsets(plan)?;
    }
    // SAFETY: single-threaded; the child only runs init's steps and ends in execve or _exit.
    match unsafe { nix::unistd::fork() }.context("fork init")? {
        ForkResult::Child => super::container_init::run(plan, fds),
        ForkResult::Parent { child } => fds.sync.send(&Msg::InitPid(child.as_raw())),
    }
}

/// The namespaces to clone init into, straight from the runtime, when
/// stage-1 has nothing to do that init cannot do itself (as crun does):
/// no user namespace (its id maps come between unshare and the rest), no
/// namespace to join (a pid namespace joined takes a fork), no time
/// namespace (offsets go in before anything enters it). Saves a process
/// (a fork of the runtime, its page faults and exit) per container. The cgroup namespace is left out: init unshares it
/// once in its cgroup, so that it is the namespace's root.
pub fn direct_clone(plan: &Plan) -> Option<CloneFlags> {
    let ns = &plan.ns;
    if ns.new_user || !ns.join.is_empty() || ns.new.contains(crate::spec::namespaces::CLONE_NEWTIME)
    {
        return None;
    }
    Some(ns.new - CloneFlags::CLONE_NEWCGROUP)
}

/// What stage-1 would have done before forking init, for a `direct` init:
/// run once the runtime has said `Proceed`, before any setup.
pub(super) fn direct_steps(plan: &Plan, fds: &ChildFds) -> Result<()> {
    crate::log::phase("stage1");
    plan.cgroup.join_self(fds.in_v2)?;
    let process = &plan.process;
    user::set_rlimits(process)?;
    user::set_oom_score_adj(process)?;
    if plan.ns.new.contains(CloneFlags::CLONE_NEWCGROUP) {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).context("unshare cgroup namespace")?;
    }
    crate::log::phase("stage1-unshare");
    Ok(())
}

/// Offsets apply to the time namespace our children will enter.
fn write_time_offsets(plan: &Plan) -> Result<()> {
    if !plan.time_offsets.is_empty() {
        proc_write("self/timens_offsets", &plan.time_offsets).context("linux.timeOffsets")?;
    }
    Ok(())
}
