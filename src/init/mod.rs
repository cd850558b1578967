//! The two child spines: `stage1` (S) enters or creates the namespaces and
//! forks `run` (I), the container's pid 1, which builds the container's
//! view of the world and execs the entrypoint. See `sync.rs` for the
//! protocol with the runtime. Both end in `_exit` or `execve`: a child
//! never returns into the runtime's code.
//! Runs in: stage-1 and init.
pub mod attach;
pub mod console;
pub mod exec;
pub mod namespaces;
pub mod policy;
pub mod user;

use crate::procfs::proc_write;
use crate::spec::Plan;
use crate::sync::{Msg, SyncSocket};
use anyhow::{Context, Result, bail};
use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Gid, Uid};
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

/// File descriptors the children inherit from the runtime (all CLOEXEC).
pub struct ChildFds {
    pub sync: SyncSocket,
    pub fifo: OwnedFd,
    pub console: Option<OwnedFd>,
    /// Detached idmapped mounts made by the runtime (rootfs/idmap.rs).
    pub idmapped: crate::rootfs::Prepared,
    /// Stage-1 was cloned straight into the cgroup v2 directory.
    pub in_v2: bool,
    /// Init was cloned by the runtime itself, in its new namespaces,
    /// without stage-1 (`direct_clone`): it does stage-1's other steps.
    pub direct: bool,
}

pub(crate) fn set_name(name: &str) {
    if let Ok(n) = CString::new(name) {
        let _ = nix::sys::prctl::set_name(&n);
    }
}

/// Reports a setup error to the runtime and exits: the one way out of a failed child.
pub(crate) fn fail(sync: &SyncSocket, e: anyhow::Error) -> ! {
    let _ = sync.send(&Msg::Failed(format!("{e:#}")));
    // SAFETY: _exit ends the process without running the parent's atexit or destructors.
    unsafe { libc::_exit(1) }
}

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
    let process = plan.spec.process().as_ref().context("process")?;
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
        ForkResult::Child => run(plan, fds),
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

/// Init cloned by the runtime (`direct_clone`): pid 1 from the start.
pub fn direct(plan: &Plan, fds: &ChildFds) -> ! {
    run(plan, fds)
}

/// What stage-1 would have done before forking init, for a `direct` init:
/// run once the runtime has said `Proceed`, before any setup.
fn direct_steps(plan: &Plan, fds: &ChildFds) -> Result<()> {
    crate::log::phase("stage1");
    plan.cgroup.join_self(fds.in_v2)?;
    let process = plan.spec.process().as_ref().context("process")?;
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
    let linux = plan.spec.linux().as_ref().context("linux")?;
    let mut text = String::new();
    for (clock, off) in linux.time_offsets().iter().flatten() {
        let secs = off.secs().unwrap_or(0);
        let nanos = off.nanosecs().unwrap_or(0);
        text.push_str(&format!("{clock} {secs} {nanos}\n"));
    }
    if !text.is_empty() {
        proc_write("self/timens_offsets", &text).context("linux.timeOffsets")?;
    }
    Ok(())
}

/// Init (I): pid 1 of the container.
fn run(plan: &Plan, fds: &ChildFds) -> ! {
    set_name("skiff:[2:INIT]");
    let ready = match init_steps(plan, fds) {
        Ok(r) => r,
        Err(e) => fail(&fds.sync, e),
    };
    // Closing our end tells the runtime that setup is over.
    // SAFETY: the fd is ours; nothing uses it after this point.
    unsafe { libc::close(fds.sync.0.as_raw_fd()) };
    if let Err(e) = wait_start_and_exec(fds, &ready) {
        let _ = writeln!(std::io::stderr(), "skiff init: {e:#}");
        // SAFETY: as in `fail`.
        unsafe { libc::_exit(1) }
    }
    unreachable!("execve returned without error")
}

fn init_steps(plan: &Plan, fds: &ChildFds) -> Result<Ready> {
    let state = match fds.sync.recv()? {
        Some(Msg::Proceed(s)) => serde_json::from_str::<serde_json::Value>(&s)?,
        Some(m) => bail!("sync: expected Proceed, got {m:?}"),
        None => bail!("runtime exited before the container was set up"),
    };
    // First, while /proc is still the host's, and before any seccomp filter
    // (which need not allow close_range or fcntl).
    exec::seal_fds(plan.preserve_fds)?;
    if fds.direct {
        direct_steps(plan, fds)?;
    }
    let process = plan.spec.process().as_ref().context("process")?;
    crate::log::phase("init");
    nix::unistd::setsid().context("setsid")?;
    if plan.ns.new.contains(CloneFlags::CLONE_NEWNET) {
        namespaces::loopback_up()?;
    }
    if !plan.no_new_keyring {
        user::join_session_keyring(&plan.id)?;
    }
    crate::rootfs::setup(&plan.rootfs_plan, &fds.idmapped)?;
    let hooks = plan.spec.hooks().clone().unwrap_or_default();
    if crate::hooks::any(&[hooks.prestart(), hooks.create_runtime()]) {
        fds.sync.send(&Msg::RunHooks)?;
        fds.sync.expect(Msg::HooksDone)?;
    }
    let ctx = crate::hooks::Ctx {
        cwd: Some(plan.rootfs.as_path()),
        env: Some(&plan.env),
    };
    crate::hooks::run_all(hooks.create_container(), &state, "createContainer", ctx)?;
    crate::log::phase("init-mounts");
    crate::rootfs::pivot(&plan.rootfs_plan)?;
    crate::log::phase("init-pivot");
    // runc creates a missing cwd, before the root may turn read-only.
    crate::rootfs::make_cwd(process.cwd())
        .with_context(|| format!("process.cwd: create {}", process.cwd().display()))?;
    if plan.terminal {
        let sock = fds
            .console
            .as_ref()
            .context("process.terminal: no --console-socket")?;
        let size = process.console_size().map(|b| (b.height(), b.width()));
        // rootfs::plan decided whether /dev/console is bound (never without
        // a mount namespace); if not, the pty comes from whatever devpts
        // the rootfs has at /dev/pts.
        let bind_console = plan.rootfs_plan.terminal;
        console::setup(sock, size, bind_console, process.user().uid()).with_context(|| {
            match bind_console {
                true => "process.terminal",
                false => {
                    "process.terminal: without a mount namespace, the rootfs needs its own devpts"
                }
            }
        })?;
    }
    // Before finalize: readonlyPaths makes /proc/sys read-only.
    set_sysctls(plan)?;
    set_hostnames(plan)?;
    crate::rootfs::finalize(&plan.rootfs_plan)?;
    policy::apply_early(&plan.policy)?;
    crate::rootfs::enter_cwd(process.cwd()).context("process.cwd")?;
    // Without NNP, loading a filter needs CAP_SYS_ADMIN: before the caps go (runc's order).
    let nnp = process.no_new_privileges().unwrap_or(false);
    if let Some(f) = plan.seccomp.as_ref().filter(|_| !nnp) {
        crate::seccomp::install_and_hand_over(f, &fds.sync)?;
    }
    user::set_lsm_labels(process)?;
    user::switch_user_and_caps(process)?;
    user::set_no_new_privs(process)?;
    let env = exec::with_home(&plan.env, process.user().uid());
    let prog = exec::find_program(&plan.args[0], &env)?;
    let start_hooks = hooks.start_container().clone().filter(|h| !h.is_empty());
    if start_hooks.is_none() {
        // Now, not after the filter (a hook's stdin must not SIGPIPE us).
        exec::restore_sigpipe();
    }
    let mut state = state;
    state["status"] = "created".into();
    let ready = Ready {
        exec: exec::Prepared::new(prog, plan.args.clone(), env),
        start_hooks,
        state,
    };
    // No container process may open /proc/1/{exe,fd,cwd} of ours while we
    // wait for `start` (CVE-2016-9962, 2019-5736): non-dumpable, after the
    // last /proc/self write (which non-dumpable would forbid in a user
    // namespace). execve makes the entrypoint dumpable again.
    nix::sys::prctl::set_dumpable(false).context("prctl(PR_SET_DUMPABLE)")?;
    crate::log::phase("init-ready");
    // personality(2) last of our own settings but before the filter, which
    // need not allow it (it takes effect for the exec'd program).
    policy::apply_personality(&plan.policy)?;
    // With NNP: as late as possible, so the profile needs to allow few calls
    // (runc's order): after it, init only writes Done, closes the sync
    // socket, reads the exec fifo and execs (`wait_start_and_exec`).
    if let Some(f) = plan.seccomp.as_ref().filter(|_| nnp) {
        crate::seccomp::install_and_hand_over(f, &fds.sync)?;
    }
    fds.sync.send_plain(&Msg::Done)?;
    Ok(ready)
}

/// What init needs after setup to exec the entrypoint.
struct Ready {
    exec: exec::Prepared,
    start_hooks: Option<Vec<oci_spec::runtime::Hook>>,
    state: serde_json::Value,
}

/// Blocks on the exec fifo until `start` writes a byte, then execs. Runs
/// under the seccomp filter: no call but read (or readv) and execve (and
/// the startContainer hooks, when there are any).
fn wait_start_and_exec(fds: &ChildFds, ready: &Ready) -> Result<()> {
    let mut b = [0u8; 1];
    crate::sync::read_filtered(&fds.fifo, &mut b).context("read exec fifo")?;
    if ready.start_hooks.is_some() {
        let ctx = crate::hooks::Ctx {
            cwd: None,
            env: Some(ready.exec.env()),
        };
        crate::hooks::run_all(&ready.start_hooks, &ready.state, "startContainer", ctx)?;
        exec::restore_sigpipe();
    }
    ready.exec.exec()
}

fn set_sysctls(plan: &Plan) -> Result<()> {
    let linux = plan.spec.linux().as_ref().context("linux")?;
    for (k, v) in linux.sysctl().iter().flatten() {
        let rel = format!("sys/{}", k.replace('.', "/"));
        proc_write(&rel, v).with_context(|| format!("linux.sysctl: {k}"))?;
    }
    Ok(())
}

fn set_hostnames(plan: &Plan) -> Result<()> {
    if let Some(h) = plan.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).with_context(|| format!("hostname: sethostname {h}"))?;
    }
    if let Some(d) = plan.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // setdomainname(2), not /proc/sys: in a user namespace that file
        // belongs to the host's root (EACCES), the call only needs
        // CAP_SYS_ADMIN over the UTS namespace (crun does the same).
        // SAFETY: the pointer and length describe `d`'s bytes, read only.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } < 0 {
            let e = std::io::Error::last_os_error();
            bail!("domainname: setdomainname {d}: {e}");
        }
    }
    Ok(())
}

/// The C library's text for an io error, lower-case, as Go prints it.
pub fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
}
