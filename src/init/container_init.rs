//! Init (I): pid 1 of the container. Waits for the runtime's `Proceed`,
//! builds the container's view of the world (mounts, /dev, pivot_root,
//! console, hooks, sysctls, hostnames, policy, user and capabilities,
//! seccomp), reports `Done`, then waits on exec.fifo for `start` and execs
//! the entrypoint. See `sync.rs` for the protocol.
//! Runs in: init.
use super::{ChildFds, console, exec, fail, policy, set_name, user};
use crate::procfs::proc_write;
use crate::spec::Plan;
use crate::sync::Msg;
use anyhow::{Context, Result, bail};
use nix::sched::CloneFlags;
use std::io::Write;
use std::os::fd::AsRawFd;

/// Init cloned by the runtime (`direct_clone`): pid 1 from the start.
pub fn direct(plan: &Plan, fds: &ChildFds) -> ! {
    run(plan, fds)
}

/// Init (I): pid 1 of the container.
pub(super) fn run(plan: &Plan, fds: &ChildFds) -> ! {
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
        Some(Msg::Proceed(s)) => s,
        Some(m) => bail!("sync: expected Proceed, got {m:?}"),
        None => bail!("runtime exited before the container was set up"),
    };
    // The state is for the createContainer and startContainer hooks alone:
    // without any, init neither parses nor prints it. Code init does not
    // run is text it does not fault in (its pages are init's own RSS, and
    // init's RSS before its execve is the peak of a `run`).
    let hooks = &plan.hooks;
    let mut state = match crate::hooks::any(&[hooks.create_container(), hooks.start_container()]) {
        true => serde_json::from_str::<serde_json::Value>(&state)?,
        false => serde_json::Value::Null,
    };
    // First, while /proc is still the host's, and before any seccomp filter
    // (which need not allow close_range or fcntl).
    exec::seal_fds(plan.preserve_fds)?;
    if fds.direct {
        super::stage1::direct_steps(plan, fds)?;
    }
    let process = &plan.process;
    crate::log::phase("init");
    nix::unistd::setsid().context("setsid")?;
    if plan.ns.new.contains(CloneFlags::CLONE_NEWNET) {
        crate::netdev::loopback_up()?;
    }
    if !plan.no_new_keyring {
        user::join_session_keyring(&plan.id)?;
    }
    crate::rootfs::setup(&plan.rootfs_plan, &fds.idmapped)?;
    if crate::hooks::any(&[hooks.prestart(), hooks.create_runtime()]) {
        fds.sync.send(&Msg::RunHooks)?;
        fds.sync.expect(Msg::HooksDone)?;
    }
    if crate::hooks::any(&[hooks.create_container()]) {
        let ctx = crate::hooks::Ctx {
            cwd: Some(plan.rootfs.as_path()),
            env: Some(&plan.env),
        };
        crate::hooks::run_all(hooks.create_container(), &state, "createContainer", ctx)?;
    }
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
        crate::sigpipe::restore_sigpipe();
    }
    if start_hooks.is_some() {
        state["status"] = "created".into();
    }
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
        crate::sigpipe::restore_sigpipe();
    }
    ready.exec.exec()
}

fn set_sysctls(plan: &Plan) -> Result<()> {
    for (k, v) in plan.sysctl.iter().flatten() {
        let rel = format!("sys/{}", k.replace('.', "/"));
        proc_write(&rel, v).with_context(|| format!("linux.sysctl: {k}"))?;
    }
    Ok(())
}

fn set_hostnames(plan: &Plan) -> Result<()> {
    if let Some(h) = plan.hostname.as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).with_context(|| format!("hostname: sethostname {h}"))?;
    }
    if let Some(d) = plan.domainname.as_deref().filter(|d| !d.is_empty()) {
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
