//! `skiff restore`: create a container from a CRIU checkpoint and the
//! bundle's config.json, flag for flag runc's: the state dir and cgroup
//! are made as `create` makes them, CRIU (put in the cgroup, with the
//! rootfs bound on `criu-root` in the state dir while it runs, as runc
//! does) rebuilds the process tree, the prestart and createRuntime hooks run when CRIU has
//! made the namespaces, and state.json gets the new init pid. Then, as
//! `run`: attached (signals forwarded, tty proxied, deleted at the end)
//! unless --detach.
//! Runs in: the runtime process.
use super::checkpoint::{Common, DESCRIPTORS, EXTERNAL_STDIO, criu_opt, open_dir};
use crate::Globals;
use crate::cgroup::Cgroup;
use crate::cli::{Cmd, ID, Opt, path, string};
use crate::container::{Container, Status, proc_start_time};
use crate::criu::rpc::{CriuOpts, CriuReq, CriuReqType, InheritFd};
use crate::criu::{Notify, Swrk, describe};
use crate::spec::Plan;
use anyhow::{Context, Result, bail};
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Args {
    pub c: Common,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub no_subreaper: bool,
    pub no_pivot: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
    pub id: String,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            c: Common::default(),
            bundle: ".".into(),
            console_socket: None,
            detach: false,
            pid_file: None,
            no_subreaper: false,
            no_pivot: false,
            lsm_profile: None,
            lsm_mount_context: None,
            id: String::new(),
        }
    }
}

pub static CLI: Cmd<Args> = Cmd {
    init: Args::default,
    opts: &[
        Opt::value(
            "console-socket",
            None,
            "PATH",
            "Path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal",
            |a, v| path(v).map(|p| a.console_socket = Some(p)),
        ),
        Opt::value(
            "image-path",
            None,
            "DIR",
            "Path to criu image files for restoring [default: ./checkpoint]",
            |a, v| path(v).map(|p| a.c.image_path = Some(p)),
        ),
        Opt::value(
            "work-path",
            None,
            "DIR",
            "Path for saving work files and logs [default: the image directory]",
            |a, v| path(v).map(|p| a.c.work_path = Some(p)),
        ),
        criu_opt!(tcp_established),
        criu_opt!(ext_unix_sk),
        criu_opt!(shell_job),
        criu_opt!(file_locks),
        criu_opt!(manage_cgroups_mode),
        Opt::value(
            "bundle",
            Some('b'),
            "DIR",
            "Path to the root of the bundle directory [default: .]",
            |a, v| path(v).map(|p| a.bundle = p),
        ),
        Opt::flag(
            "detach",
            Some('d'),
            "Detach from the container's process",
            |a| a.detach = true,
        ),
        Opt::value(
            "pid-file",
            None,
            "FILE",
            "Specify the file to write the process id to",
            |a, v| path(v).map(|p| a.pid_file = Some(p)),
        ),
        Opt::flag(
            "no-subreaper",
            None,
            "Disable the use of the subreaper used to reap reparented processes",
            |a| a.no_subreaper = true,
        ),
        Opt::flag(
            "no-pivot",
            None,
            "Do not use pivot root to jail process inside rootfs (accepted as runc does: CRIU restores the mount namespace itself)",
            |a| a.no_pivot = true,
        ),
        criu_opt!(empty_ns),
        criu_opt!(auto_dedup),
        criu_opt!(lazy_pages),
        Opt::value(
            "lsm-profile",
            None,
            "TYPE:NAME",
            "Specify an LSM profile to be used during restore in the form of TYPE:NAME",
            |a, v| string(v).map(|s| a.lsm_profile = Some(s)),
        ),
        Opt::value(
            "lsm-mount-context",
            None,
            "CONTEXT",
            "Specify an LSM mount context to be used during restore",
            |a, v| string(v).map(|s| a.lsm_mount_context = Some(s)),
        ),
    ],
    args: &[ID],
    set_args: |a, mut v| a.id = v.swap_remove(0),
};

/// Removes what a failed restore made: the restored tree, the cgroup, the
/// state dir (criu-root unmounted first, so that the removal can never
/// reach into the rootfs bound there).
struct Cleanup {
    dir: PathBuf,
    cgroup: Option<Cgroup>,
    pid: Option<i32>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(fd) = self.pid.and_then(|p| crate::pidfd::open(p).ok()) {
            let _ = crate::pidfd::send_signal(&fd, libc::SIGKILL);
            crate::pidfd::wait_exit(&fd, std::time::Duration::from_secs(5));
        }
        if let Some(cg) = &self.cgroup
            && let Err(e) = cg.destroy()
        {
            crate::log::warn(&format!("cleanup: {e:#}"));
        }
        let _ = nix::mount::umount2(&self.dir.join(CRIU_ROOT), nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The state dir's mount point for the rootfs during a restore.
const CRIU_ROOT: &str = "criu-root";

/// The rootfs bound on criu-root while CRIU restores; unmounted and
/// removed on drop (declared after `Cleanup`, so dropped before it).
struct Bound(PathBuf);

impl Bound {
    fn mount(rootfs: &Path, at: &Path) -> Result<Bound> {
        use nix::mount::{MsFlags, mount};
        std::fs::create_dir(at).with_context(|| format!("mkdir {}", at.display()))?;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
        if let Err(e) = mount(Some(rootfs), at, None::<&str>, flags, None::<&str>) {
            let _ = std::fs::remove_dir(at);
            return Err(e)
                .with_context(|| format!("bind {} on {}", rootfs.display(), at.display()));
        }
        Ok(Bound(at.to_path_buf()))
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH) {
            crate::log::warn(&format!("umount {}: {e}", self.0.display()));
            return;
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[inline(never)]
pub fn run(args: Args, g: &Globals) -> Result<i32> {
    let foreground = !args.detach;
    let mode = (args.c.manage_cgroups_mode.as_deref())
        .map(describe::cg_mode)
        .transpose()?;
    let empty_ns = describe::empty_ns_mask(&args.c.empty_ns)?;
    let images = match &args.c.image_path {
        Some(p) => std::path::absolute(p)?,
        None => std::env::current_dir()?.join("checkpoint"),
    };
    let images_fd = std::fs::File::open(&images)
        .map(OwnedFd::from)
        .with_context(|| format!("--image-path {}", images.display()))?;
    let descriptors = read_descriptors(&images)?;
    let bundle = std::fs::canonicalize(&args.bundle)
        .with_context(|| format!("bundle {}", args.bundle.display()))?;
    let spec = crate::spec::load(&bundle)?;
    let mut plan = crate::spec::plan(&args.id, &bundle, spec, args.no_pivot, false, 0)?;
    crate::spec::check_terminal(plan.terminal, args.console_socket.is_some(), foreground)?;
    let v = crate::criu::version(&g.criu)?;
    crate::criu::require(
        &v,
        describe::min_version(&plan),
        "restore of this container",
    )?;
    if args.lsm_profile.is_some() {
        crate::criu::require(&v, 31600, "--lsm-profile")?;
    }
    if args.lsm_mount_context.is_some() {
        crate::criu::require(&v, 31600, "--lsm-mount-context")?;
    }
    let pid_file = args
        .pid_file
        .as_deref()
        .map(std::path::absolute)
        .transpose()?;
    let work = args.c.work_path.clone().unwrap_or_else(|| images.clone());
    let work_fd = open_dir(&work, true)?;
    if foreground && !args.no_subreaper {
        nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    }
    let (dir, lock) = Container::create_dir(&g.root, &args.id)?;
    let mut c = Container::new(dir.clone(), crate::launch::initial_state(&plan), lock);
    let mut guard = Cleanup {
        dir,
        cgroup: None,
        pid: None,
        armed: true,
    };
    // Recorded before it exists, as create does, for `delete --force`.
    c.state.cgroup.created = plan.cgroup.pending();
    c.save()?;
    let made = plan.cgroup.create(&plan.cgroup_writes);
    if !plan.cgroup.created.is_empty() {
        guard.cgroup = Some(plan.cgroup.clone());
    }
    made?;
    c.state.cgroup = plan.cgroup.clone();
    c.save()?;
    describe::make_mountpoints(&plan)?;
    let criu_root = c.dir.join(CRIU_ROOT);
    // CRIU's fd 3 is the socket; the joined namespaces follow from 4.
    let (ns_files, mut inherit) = describe::restore_inherit(&plan, 4)?;
    inherit.extend(pipes(&descriptors));
    inherit.extend(external_stdio(&images)?);
    let (console, own_console) =
        crate::tty::console_socket(args.console_socket.as_deref(), plan.terminal)?;
    let extra: Vec<BorrowedFd> = ns_files.iter().map(|f| f.as_fd()).collect();
    // CRIU wants its root to be a mount point whose parent is not
    // overmounted: the rootfs bound there, as runc does, until CRIU is done
    // (unmounted before anything could remove the state dir).
    let bound = Bound::mount(&plan.rootfs, &criu_root)?;
    let mut w = Swrk::spawn(&g.criu, &extra, true)?;
    drop(ns_files);
    // runc's criuApplyCgroups: CRIU restores into the cgroup it is in.
    plan.cgroup.add_task(w.pid())?;
    let opts = CriuOpts {
        images_dir_fd: images_fd.as_raw_fd(),
        work_dir_fd: Some(work_fd.as_raw_fd()),
        evasive_devices: Some(true),
        log_level: Some(4),
        log_file: Some("restore.log".into()),
        rst_sibling: Some(true),
        root: Some(criu_root.to_string_lossy().into_owned()),
        manage_cgroups: Some(true),
        manage_cgroups_mode: mode.map(|m| m as i32),
        notify_scripts: Some(true),
        shell_job: Some(args.c.shell_job),
        ext_unix_sk: Some(args.c.ext_unix_sk),
        tcp_established: Some(args.c.tcp_established),
        file_locks: Some(args.c.file_locks),
        empty_ns: Some(empty_ns),
        orphan_pts_master: Some(true),
        auto_dedup: Some(args.c.auto_dedup),
        lazy_pages: Some(args.c.lazy_pages),
        lsm_profile: args.lsm_profile.clone(),
        lsm_mount_context: args.lsm_mount_context.clone(),
        ext_mnt: describe::restore_mounts(&plan),
        inherit_fd: inherit,
        cg_root: describe::cgroup_roots(w.pid())?,
        ..Default::default()
    };
    let req = CriuReq {
        r#type: CriuReqType::Restore as i32,
        opts: Some(opts),
        ..Default::default()
    };
    let log = work.join("restore.log");
    let mut restored = None;
    let mut master = None;
    let state = c.oci_state(Status::Creating);
    let resp = {
        let mut on_notify = |n: Notify| -> Result<()> {
            match n.script.as_str() {
                "setup-namespaces" => setup_namespaces(&plan, &state, n.pid),
                "post-restore" => {
                    restored = Some(n.pid);
                    Ok(())
                }
                "orphan-pts-master" => {
                    let fd = n.fd.context("criu: orphan-pts-master without an fd")?;
                    match (&own_console, &console) {
                        (Some(_), _) => master = Some(fd),
                        (None, Some(sock)) => send_master(sock, &fd)?,
                        (None, None) => {}
                    }
                    Ok(())
                }
                _ => Ok(()),
            }
        };
        w.call(&req, &mut on_notify, Some(&log))?
    };
    w.finish(false)?;
    drop(bound);
    let pid = restored
        .or(resp.restore.map(|r| r.pid))
        .context("criu restore: no pid of the restored init")?;
    guard.pid = Some(pid);
    c.state.pid = Some(pid);
    c.state.pid_start = proc_start_time(pid);
    c.state.created = crate::log::now_rfc3339();
    if c.state.pid_start.is_none() {
        bail!("restored container init {pid} exited at once");
    }
    c.save()?;
    if let Some(p) = pid_file {
        crate::launch::write_pid_file_at(&p, pid)?;
    }
    guard.armed = false;
    if !foreground {
        return Ok(0);
    }
    let set = super::run::block_signals()?;
    // Not locked while waiting: kill, state and ps must work meanwhile.
    drop(c);
    let code = match master {
        Some(m) => crate::tty::proxy(m, Pid::from_raw(pid), &set)?,
        None => super::run::wait_forwarding(Pid::from_raw(pid), &set)?,
    };
    match Container::load(&g.root, &args.id) {
        Ok(c) => super::delete::delete(c, true)?,
        Err(_) if !g.root.join(&args.id).exists() => {}
        Err(e) => return Err(e),
    }
    Ok(code)
}

/// runc's descriptors.json from the dump (see checkpoint.rs).
fn read_descriptors(images: &Path) -> Result<Vec<String>> {
    let path = images.join(DESCRIPTORS);
    let text = std::fs::read(&path).with_context(|| {
        format!(
            "{} holds no checkpoint of a container: {}",
            images.display(),
            path.display()
        )
    })?;
    serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))
}

/// Init's stdio pipes at dump time, replaced by ours (CRIU's 0-2).
fn pipes(descriptors: &[String]) -> Vec<InheritFd> {
    (descriptors.iter().enumerate())
        .filter(|(_, d)| d.contains("pipe:"))
        .map(|(i, d)| InheritFd {
            key: d.clone(),
            fd: i as i32,
        })
        .collect()
}

/// The stdio files a skiff checkpoint dumped as external (see
/// checkpoint.rs): each is given our own fd of the same number (CRIU's
/// 0-2 are ours). Absent in a runc checkpoint: nothing to add.
fn external_stdio(images: &Path) -> Result<Vec<InheritFd>> {
    let path = images.join(EXTERNAL_STDIO);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let list: Vec<(i32, String)> =
        serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))?;
    let mut out: Vec<InheritFd> = Vec::new();
    for (fd, key) in list {
        if (0..3).contains(&fd) && !out.iter().any(|i| i.key == key) {
            out.push(InheritFd { key, fd });
        }
    }
    Ok(out)
}

/// CRIU made the namespaces (the tree is not running yet): bring `lo` up
/// in a new network namespace, as create does (CRIU leaves the network
/// namespace empty, runc's rule), then run the prestart and createRuntime
/// hooks with the restored init's pid, as runc does.
fn setup_namespaces(plan: &Plan, state: &serde_json::Value, pid: i32) -> Result<()> {
    if plan.ns.new.contains(CloneFlags::CLONE_NEWNET) {
        loopback_up_in(pid)?;
    }
    let hooks = plan.spec.hooks().clone().unwrap_or_default();
    let mut state = state.clone();
    state["pid"] = pid.into();
    let ctx = crate::hooks::Ctx {
        cwd: Some(plan.bundle.as_path()),
        env: None,
    };
    crate::hooks::run_all(hooks.prestart(), &state, "prestart", ctx)?;
    crate::hooks::run_all(hooks.create_runtime(), &state, "createRuntime", ctx)
}

/// `lo` up in the network namespace of `pid`, from a forked child (the
/// runtime itself stays in its own namespace).
fn loopback_up_in(pid: i32) -> Result<()> {
    use nix::unistd::{ForkResult, fork};
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .with_context(|| format!("open /proc/{pid}/ns/net"))?;
    // SAFETY: skiff is single-threaded; the child only calls setns and
    // netlink, then _exit.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let ok = nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).is_ok()
                && crate::netdev::loopback_up().is_ok();
            // SAFETY: _exit ends the forked child without running our destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            other => bail!("restore: bring lo up in the container's network namespace: {other:?}"),
        },
    }
}

/// Passes the restored terminal's new pty master to --console-socket (the
/// orphan-pts-master notification), as init does at create.
fn send_master(sock: &OwnedFd, master: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(b"/dev/ptmx")],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .context("send pty master to --console-socket")?;
    Ok(())
}
