//! The runtime's side of `create` (and of `run`): plan, make the state dir,
//! fifo and cgroup, fork stage-1 (or clone init directly, see
//! `init::direct_clone`), answer the children's messages, and undo
//! everything if any step fails.
//! Runs in: the runtime process (P).
use crate::Globals;
use crate::cgroup::{Cgroup, Write, bus, systemd};
use crate::container::{Container, State, proc_start_time};
use crate::init::ChildFds;
use crate::init::attach::ExecPlan;
use crate::spec::Plan;
use crate::sync::{Msg, SyncSocket};
use anyhow::{Context, Result, bail};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::ForkResult;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Options shared by `create` and `run`.
#[derive(Debug, Clone)]
pub struct CreateOpts {
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    pub id: String,
}

impl Default for CreateOpts {
    fn default() -> Self {
        CreateOpts {
            bundle: ".".into(),
            console_socket: None,
            pid_file: None,
            no_pivot: false,
            no_new_keyring: false,
            preserve_fds: 0,
            id: String::new(),
        }
    }
}

/// Removes what a failed `create` made, and only that.
struct Cleanup {
    dir: PathBuf,
    /// The cgroup once `create` made some of it (what it made is ours to remove).
    cgroup: Option<Cgroup>,
    init_pid: Option<i32>,
    /// resctrl groups made for linux.intelRdt.
    rdt: Vec<PathBuf>,
    /// The process holding a new systemd scope open (`--systemd-cgroup`).
    holder: Option<bus::Holder>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(fd) = self.init_pid.and_then(|p| crate::pidfd::open(p).ok()) {
            let _ = crate::pidfd::send_signal(&fd, libc::SIGKILL);
            crate::pidfd::wait_exit(&fd, std::time::Duration::from_secs(5));
        }
        if let Some(h) = &mut self.holder {
            h.release();
        }
        // With systemd, this also stops (and resets) the unit.
        if let Some(cg) = &self.cgroup
            && let Err(e) = cg.destroy()
        {
            crate::log::warn(&format!("cleanup: {e:#}"));
        }
        if let Err(e) = crate::rdt::remove(&self.rdt) {
            crate::log::warn(&format!("cleanup: linux.intelRdt: {e:#}"));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates the container; returns the init's pid. With `run`, the caller
/// has made itself a subreaper, so init becomes its child.
/// What `create` leaves for `run`: the init's pid and, for a foreground
/// run with a terminal, the pty master to proxy.
pub struct Created {
    pub pid: i32,
    pub master: Option<OwnedFd>,
    /// Still locked: `run` starts it without loading it again.
    pub container: Container,
}

pub fn create(opts: &CreateOpts, g: &Globals, run: bool) -> Result<Created> {
    let bundle = std::fs::canonicalize(&opts.bundle)
        .with_context(|| format!("bundle {}", opts.bundle.display()))?;
    let spec = crate::spec::load(&bundle)?;
    let mut plan = crate::spec::plan(
        &opts.id,
        &bundle,
        spec,
        opts.no_pivot,
        opts.no_new_keyring,
        opts.preserve_fds,
    )?;
    if g.systemd_cgroup {
        systemd_plan(&mut plan, g)?;
    }
    socket_activation(&mut plan)?;
    crate::spec::check_terminal(plan.terminal, opts.console_socket.is_some(), run)?;
    crate::netdev::check(&plan.net_devices, &plan.ns.join)?;
    crate::log::phase("plan");
    // Resolve before any fork: the children may have another cwd.
    let pid_file = opts.pid_file.as_deref().map(absolute).transpose()?;
    let (dir, lock) = Container::create_dir(&g.root, &opts.id)?;
    let mut c = Container::new(dir.clone(), initial_state(&plan), lock);
    let mut guard = Cleanup {
        dir,
        cgroup: None,
        init_pid: None,
        rdt: Vec::new(),
        holder: None,
        armed: true,
    };
    let late = cgroup_after_init(&plan);
    if !late {
        // Recorded before it exists: a runtime killed from here on leaves a
        // state.json from which `delete --force` finds the cgroup.
        c.state.cgroup.created = plan.cgroup.pending();
        c.save()?;
        crate::log::phase("statedir");
        make_cgroup(&mut plan, g, &mut guard)?;
        // Saved again with the pid, once stage-1 reports it.
        c.state.cgroup = plan.cgroup.clone();
    }
    let fifo = exec_fifo(&c)?;
    // check_terminal allowed a terminal without a socket only for a
    // foreground run, which is then its own console socket.
    let (console, own_console) =
        crate::tty::console_socket(opts.console_socket.as_deref(), plan.terminal)?;
    let idmapped = crate::rootfs::prepare_idmapped(&plan.rootfs_plan)?;
    crate::log::phase("fifo");
    let pid = spawn(&mut plan, g, (fifo, console, idmapped), &mut guard, &mut c)?;
    let master = own_console
        .as_ref()
        .map(crate::tty::recv_master)
        .transpose()?;
    if let Some(p) = pid_file {
        write_pid_file(&p, pid)?;
    }
    // Init is in the scope now: the holder may go.
    if let Some(mut h) = guard.holder.take() {
        h.release();
    }
    guard.armed = false;
    crate::log::phase("done");
    Ok(Created {
        pid,
        master,
        container: c,
    })
}

/// systemd socket activation, as runc: with LISTEN_FDS=N set for this very
/// process (LISTEN_PID), fds 3..3+N go to the container before the
/// --preserve-fds ones, which follow them, and the container's process
/// gets LISTEN_FDS=N and LISTEN_PID=1.
fn socket_activation(plan: &mut Plan) -> Result<()> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let n = match std::env::var("LISTEN_FDS").ok().filter(|_| pid_ok) {
        Some(n) => n
            .parse::<i32>()
            .ok()
            .filter(|n| (0..=65536).contains(n))
            .with_context(|| format!("LISTEN_FDS: {n:?} is not a number of fds"))?,
        None => return Ok(()),
    };
    if n == 0 {
        return Ok(());
    }
    plan.preserve_fds += n;
    plan.env
        .push(std::ffi::CString::new(format!("LISTEN_FDS={n}"))?);
    plan.env.push(c"LISTEN_PID=1".to_owned());
    Ok(())
}

/// True when the cgroup can wait until init exists: init cloned directly
/// (it joins its v1 cgroups itself, once told to proceed) and no v2
/// directory to clone it into. Then one state.json write records the pid
/// and the cgroup (before it exists) together: a file fewer to create and
/// delete per container (on ext4 each costs an inode allocation, which
/// scans past every recently deleted inode).
fn cgroup_after_init(plan: &Plan) -> bool {
    crate::init::direct_clone(plan).is_some()
        && plan.cgroup.v2_dir().is_none()
        && plan.cgroup.systemd.is_none()
}

/// `--systemd-cgroup`: the cgroup becomes a systemd unit's, from the
/// cgroupsPath (`slice:prefix:name`) and the org.systemd.property.*
/// annotations (see cgroup/systemd.rs); checked before anything exists.
fn systemd_plan(plan: &mut Plan, g: &Globals) -> Result<()> {
    if !systemd::booted() {
        return Err(systemd::not_booted());
    }
    if g.rootless_cgroups {
        bail!(
            "--systemd-cgroup: rootless containers (through the user's systemd instance) are not supported by skiff yet"
        );
    }
    let linux = plan
        .spec
        .linux()
        .as_ref()
        .context("linux: missing in config.json")?;
    let path = linux
        .cgroups_path()
        .as_deref()
        .map(|p| p.to_str().context("linux.cgroupsPath: not UTF-8"))
        .transpose()?;
    let mut unit = systemd::parse_path(path, &plan.id)?;
    unit.extra = systemd::annotation_props(plan.spec.annotations().iter().flatten())?;
    plan.cgroup = Cgroup::resolve_systemd(unit)?;
    plan.cgroup_writes = plan.cgroup.plan(linux.resources().as_ref())?;
    Ok(())
}

/// Starts the container's transient scope (waiting for systemd's job),
/// with a holder process in it until init has joined, and the properties
/// systemd has for these writes; `make_cgroup` then writes the files.
/// The pids limit comes later, with its file (see `split_pids_max`).
fn start_unit(plan: &Plan, early: &[Write], guard: &mut Cleanup) -> Result<()> {
    let cg = &plan.cgroup;
    let Some(unit) = &cg.systemd else {
        return Ok(());
    };
    let holder = bus::Holder::spawn()?;
    let mut props = systemd::base_props(unit, holder.pid(), cg.version);
    guard.holder = Some(holder);
    let default = oci_spec::runtime::LinuxResources::default();
    let res = plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .unwrap_or(&default);
    let devices = crate::procfs::read_text("/proc/devices").unwrap_or_default();
    props.extend(systemd::device_props(
        &crate::cgroup::resources::device_rules(res)?,
        &devices,
    ));
    props.extend(systemd::props_from_writes(early, cg.version)?);
    props.extend(unit.extra.iter().cloned());
    bus::start(&unit.name, &props)?;
    // From here on a failure stops the unit (`Cgroup::destroy`).
    guard.cgroup = Some(cg.clone());
    crate::log::phase("systemd-unit");
    Ok(())
}

/// Makes the cgroup with every write but pids.max; what it made goes to
/// the guard (`create` undoes its own failures, not the guard's part).
fn make_cgroup(plan: &mut Plan, g: &Globals, guard: &mut Cleanup) -> Result<()> {
    // runc: rootless errors are forgiven only without an explicit cgroupsPath.
    let explicit = plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .is_some();
    // pids.max waits until our own helper processes have left the cgroup.
    let (early, _) = split_pids_max(&plan.cgroup_writes);
    start_unit(plan, &early, guard)?;
    let made = if g.rootless_cgroups && !explicit {
        plan.cgroup.create_rootless(&early, &plan.cgroup_writes)
    } else {
        plan.cgroup.create(&early)
    };
    if !plan.cgroup.created.is_empty() || plan.cgroup.systemd.is_some() {
        guard.cgroup = Some(plan.cgroup.clone());
    }
    made?;
    crate::log::phase("cgroup");
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// The state a new container starts with (create, and restore).
pub(crate) fn initial_state(plan: &Plan) -> State {
    State {
        id: plan.id.clone(),
        bundle: plan.bundle.clone(),
        rootfs: plan.rootfs.clone(),
        pid: None,
        pid_start: None,
        created: crate::log::now_rfc3339(),
        owner: String::new(),
        annotations: plan.spec.annotations().clone().unwrap_or_default(),
        cgroup: plan.cgroup.clone(),
        hooks: plan.spec.hooks().clone(),
        rdt: Vec::new(),
        rdt_groups: Vec::new(),
    }
}

/// The exec fifo: init blocks reading it until `start` writes.
fn exec_fifo(c: &Container) -> Result<OwnedFd> {
    let fifo = c.fifo();
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600))
        .with_context(|| format!("mkfifo {}", fifo.display()))?;
    let fd = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open exec fifo")?;
    Ok(fd)
}

/// Forks stage-1 (or clones init) and drives the protocol in `sync.rs` to the end.
fn spawn(
    plan: &mut Plan,
    g: &Globals,
    fds: (OwnedFd, Option<OwnedFd>, crate::rootfs::Prepared),
    guard: &mut Cleanup,
    c: &mut Container,
) -> Result<i32> {
    let (ours, pid) = fork_child(plan, fds, c)?;
    crate::log::phase("stage1-msgs");
    guard.init_pid = Some(pid);
    c.state.pid = Some(pid);
    c.state.pid_start = proc_start_time(pid);
    if c.state.pid_start.is_none() {
        bail!("container init exited during setup");
    }
    if cgroup_after_init(plan) {
        // Recorded before it exists, as in `create`, now with the pid.
        c.state.cgroup.created = plan.cgroup.pending();
        c.save()?;
        crate::log::phase("statedir");
        make_cgroup(plan, g, guard)?;
        // Rootless dropped a hierarchy, or a racing create made a directory.
        if plan.cgroup != c.state.cgroup {
            c.state.cgroup = plan.cgroup.clone();
            c.save()?;
        }
    }
    let (_, late) = split_pids_max(&plan.cgroup_writes);
    // With systemd, its TasksMax too.
    plan.cgroup.update(&late)?;
    if !cgroup_after_init(plan) {
        c.save()?;
    }
    crate::log::phase("pid-saved");
    if let Some(r) = &plan.rdt {
        let made = crate::rdt::apply(r, pid, &mut guard.rdt);
        // Recorded for delete, as the cgroup is, and for exec.
        c.state.rdt = guard.rdt.clone();
        c.state.rdt_groups = r.groups();
        c.save()?;
        made?;
    }
    // Init is in its network namespace and waits for Proceed.
    crate::netdev::move_all(&plan.net_devices, pid)?;
    let state = c.oci_state(crate::container::Status::Creating);
    ours.send(&Msg::Proceed(state.to_string()))?;
    init_messages(plan, &ours, &state, pid)?;
    crate::log::phase("init-setup");
    Ok(pid)
}

/// Forks stage-1 and learns init's pid from it, or clones init itself
/// (`init::direct_clone`). Returns our end of the sync socket and the pid.
fn fork_child(
    plan: &Plan,
    (fifo, console, idmapped): (OwnedFd, Option<OwnedFd>, crate::rootfs::Prepared),
    c: &Container,
) -> Result<(SyncSocket, i32)> {
    let (ours, theirs) = SyncSocket::pair()?;
    let direct = crate::init::direct_clone(plan);
    let mut fds = ChildFds {
        sync: theirs,
        fifo,
        console,
        idmapped,
        in_v2: false,
        direct: direct.is_some(),
    };
    let ns = direct.unwrap_or(CloneFlags::empty());
    let what = if direct.is_some() {
        "clone init"
    } else {
        "fork stage-1"
    };
    crate::fork::shed_dead_stack();
    // SAFETY: skiff is single-threaded; the child runs stage-1 (or init)
    // and ends in _exit or execve.
    let (forked, in_v2) =
        unsafe { crate::fork::fork_into(plan.cgroup.v2_dir(), ns) }.context(what)?;
    fds.in_v2 = in_v2;
    let child = match forked {
        ForkResult::Child => {
            // Closing, not unlocking: the flock belongs to the shared open file.
            // SAFETY: raw fds we own in this process; nothing uses them afterwards.
            unsafe {
                libc::close(c.lock_fd());
                libc::close(ours.0.as_raw_fd());
            }
            match direct {
                Some(_) => crate::init::direct(plan, &fds),
                None => crate::init::stage1(plan, &fds),
            }
        }
        ForkResult::Parent { child } => child,
    };
    drop(fds);
    crate::log::phase("fork");
    if direct.is_some() {
        // Our own child: init, already in its namespaces.
        return Ok((ours, child.as_raw()));
    }
    let pid = stage1_messages(plan, &ours, child.as_raw());
    let _ = nix::sys::wait::waitpid(child, None);
    Ok((ours, pid?))
}

/// Splits off `pids.max`, which is written only once stage-1 has exited:
/// until then stage-1 and init are both in the cgroup, so `pids.limit: 1`
/// (podman `--pids-limit 1`) would fail init's fork with EAGAIN. runc 1.1
/// likewise sets limits only after its bootstrap processes are gone. Init
/// runs nothing of the container's before `Proceed`, so the limit still
/// holds from the container's first instruction.
fn split_pids_max(writes: &[Write]) -> (Vec<Write>, Vec<Write>) {
    writes.iter().cloned().partition(|w| !w.is_pids_max())
}

fn stage1_messages(plan: &Plan, sock: &SyncSocket, stage1: i32) -> Result<i32> {
    loop {
        match sock.recv()? {
            Some(Msg::MapIds) => {
                write_id_maps(plan, stage1)?;
                sock.send(&Msg::IdsMapped)?;
            }
            Some(Msg::InitPid(p)) => return Ok(p),
            Some(Msg::Failed(e)) => bail!("{e}"),
            Some(m) => bail!("sync: unexpected {m:?} from stage-1"),
            None => bail!("container setup failed: stage-1 exited early"),
        }
    }
}

/// Mapping ids other than our own needs CAP_SETUID in the parent user
/// namespace, which the child no longer has: the runtime writes the maps.
fn write_id_maps(plan: &Plan, pid: i32) -> Result<()> {
    crate::uidmap::write(pid, &plan.ns.uid_map, &plan.ns.gid_map)
}

fn init_messages(
    plan: &Plan,
    sock: &SyncSocket,
    state: &serde_json::Value,
    pid: i32,
) -> Result<()> {
    let hooks = plan.spec.hooks().clone().unwrap_or_default();
    loop {
        let (msg, fd) = match sock.recv_fd()? {
            Some((m, fd)) => (Some(m), fd),
            None => (None, None),
        };
        match msg {
            Some(Msg::SeccompFd) => pass_listener(plan.seccomp.as_ref(), state, fd, sock)?,
            Some(Msg::RunHooks) => {
                let ctx = crate::hooks::Ctx {
                    cwd: Some(plan.bundle.as_path()),
                    env: None,
                };
                crate::hooks::run_all(hooks.prestart(), state, "prestart", ctx)?;
                crate::hooks::run_all(hooks.create_runtime(), state, "createRuntime", ctx)?;
                sock.send(&Msg::HooksDone)?;
            }
            Some(Msg::Done) => return Ok(()),
            Some(Msg::Failed(e)) => bail!("{e}"),
            Some(m) => bail!("sync: unexpected {m:?} from init"),
            None => return Err(init_died(plan, pid)),
        }
    }
}

/// Why init went away during setup without a word: its wait status (seen,
/// not reaped, when init is our child: a direct clone, or a subreaper's
/// orphan), else what /proc still shows of a zombie.
fn init_died(plan: &Plan, pid: i32) -> anyhow::Error {
    use nix::sys::signal::Signal;
    let status = init_status(pid);
    let seccomp = plan.seccomp.is_some();
    match status {
        Some(Ok(code)) => anyhow::anyhow!("container init exited during setup (status {code})"),
        Some(Err(sig)) if sig == Signal::SIGSYS as i32 && seccomp => anyhow::anyhow!(
            "container init was killed by its seccomp profile (linux.seccomp) during setup \
             (SIGSYS): the profile must allow the calls the runtime makes after loading it"
        ),
        Some(Err(sig)) if sig == Signal::SIGKILL as i32 && plan.cgroup.oom_kills() > 0 => {
            let limit = plan
                .spec
                .linux()
                .as_ref()
                .and_then(|l| l.resources().as_ref())
                .and_then(|r| r.memory().as_ref())
                .and_then(|m| m.limit());
            let limit = limit.map_or_else(String::new, |l| format!(" of {l} bytes"));
            anyhow::anyhow!(
                "container init was killed by the OOM killer during setup: the memory \
                 limit{limit} (linux.resources.memory.limit) is below what it needs to start \
                 ({} oom_kill: {})",
                plan.cgroup.oom_file(),
                plan.cgroup.oom_kills()
            )
        }
        Some(Err(sig)) => {
            let name = Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.to_string());
            anyhow::anyhow!("container init was killed by {name} during setup")
        }
        None => anyhow::anyhow!("container init exited during setup"),
    }
}

/// Init's end: Ok(exit code) or Err(signal), once it has exited (bounded
/// wait); None if it cannot be known.
fn init_status(pid: i32) -> Option<std::result::Result<i32, i32>> {
    use nix::sys::wait::{Id, WaitPidFlag as F, WaitStatus, waitid};
    let fd = crate::pidfd::open(pid).ok()?;
    crate::pidfd::wait_exit(&fd, std::time::Duration::from_secs(2));
    // WNOWAIT: the zombie stays for whoever reaps it (the cleanup waits on it).
    match waitid(
        Id::Pid(nix::unistd::Pid::from_raw(pid)),
        F::WEXITED | F::WNOWAIT | F::WNOHANG,
    ) {
        Ok(WaitStatus::Exited(_, code)) => return Some(Ok(code)),
        Ok(WaitStatus::Signaled(_, sig, _)) => return Some(Err(sig as i32)),
        _ => {}
    }
    // Not our child: a zombie's exit_code (field 52 of /proc/PID/stat).
    let stat = crate::procfs::read_text(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    if fields.first() != Some(&"Z") {
        return None;
    }
    let code: i32 = fields.get(49)?.trim().parse().ok()?;
    Some(match code & 0x7f {
        0 => Ok((code >> 8) & 0xff),
        sig => Err(sig),
    })
}

/// Passes a seccomp notify listener from init (or an exec'd process) on to
/// the agent at listenerPath, then lets the child go on.
fn pass_listener(
    filter: Option<&crate::seccomp::Filter>,
    state: &serde_json::Value,
    fd: Option<OwnedFd>,
    sock: &SyncSocket,
) -> Result<()> {
    let fd = fd.context("sync: SeccompFd without a file descriptor")?;
    let l = filter.and_then(|f| f.listener.as_ref());
    let l = l.context("sync: SeccompFd without a listenerPath")?;
    crate::seccomp::notify::send_to_agent(l, state, &fd)?;
    sock.send(&Msg::SeccompFdDone)
}

/// Written atomically: engines poll for this file and must never see it half-written.
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let name = path.file_name().context("--pid-file: no file name")?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("--pid-file: rename to {}", path.display()))
}

/// Runs the exec protocol: fork exec stage-1, learn the new process's pid,
/// then EOF (it exec'd) or `Failed`; or, without a user or time namespace
/// to join, clone the process itself in the container's pid namespace
/// (`attach::direct_exec`). Returns the pid.
pub fn exec(
    plan: &ExecPlan,
    console: Option<OwnedFd>,
    lock_fd: i32,
    state: &serde_json::Value,
) -> Result<i32> {
    let (ours, theirs) = SyncSocket::pair()?;
    if let Some(cpus) = &plan.policy.cpus_initial {
        // process.execCPUAffinity.initial: ours, inherited by stage-1, which
        // keeps it until it joins the container's cgroup (where the final
        // one, or the cgroup's cpuset, takes over), so that the setup work
        // does not run on a pinned container's CPUs.
        crate::init::policy::set_affinity(cpus, "process.execCPUAffinity.initial")?;
    }
    let v2 = plan.cgroup.v2_dir().filter(|_| plan.join_cgroup);
    let direct = crate::init::attach::direct_exec(plan);
    // Direct: the child is in the container's pid namespace from birth, so
    // the container's processes see it while it still holds our fds and
    // the host's root: it must be born non-dumpable (the flag is copied
    // at fork), or the container's root could open /proc/<pid>/root or
    // /proc/<pid>/fd/* (runc's CVE-2016-9962). Ours again right after.
    let dumpable = match direct {
        true => {
            let was = nix::sys::prctl::get_dumpable().context("prctl(PR_GET_DUMPABLE)")?;
            nix::sys::prctl::set_dumpable(false).context("prctl(PR_SET_DUMPABLE)")?;
            was
        }
        false => false,
    };
    // Direct: our children are born in the container's pid namespace
    // until we return to our own right after the clone.
    let pid_ns = plan
        .joins
        .iter()
        .find(|(f, _)| *f == CloneFlags::CLONE_NEWPID);
    let ours_ns = match pid_ns.filter(|_| direct) {
        Some((f, fd)) => {
            let own = crate::init::namespaces::open_ns(Path::new("/proc/self/ns/pid"))?;
            nix::sched::setns(fd, *f).context("setns CLONE_NEWPID")?;
            Some(own)
        }
        None => None,
    };
    // SAFETY: skiff is single-threaded; the child runs the exec spine and ends in _exit or execve.
    let forked = unsafe { crate::fork::fork_into(v2, CloneFlags::empty()) };
    let child_here = matches!(forked, Ok((ForkResult::Child, _)));
    if dumpable && !child_here {
        let _ = nix::sys::prctl::set_dumpable(true);
    }
    let back = match ours_ns.as_ref().filter(|_| !child_here) {
        Some(own) => nix::sched::setns(own, CloneFlags::CLONE_NEWPID)
            .context("setns back to our pid namespace"),
        None => Ok(()),
    };
    let what = if direct {
        "clone the exec'd process"
    } else {
        "fork exec stage-1"
    };
    let (forked, in_v2) = forked.context(what)?;
    let child = match forked {
        ForkResult::Child => {
            // SAFETY: raw fds we own in this process; nothing uses them afterwards.
            unsafe {
                libc::close(lock_fd);
                libc::close(ours.0.as_raw_fd());
            }
            drop(ours_ns);
            if direct {
                crate::init::attach::direct(plan, &theirs, console.as_ref(), in_v2)
            }
            crate::init::attach::stage1(plan, &theirs, console.as_ref(), in_v2)
        }
        ForkResult::Parent { child } => child,
    };
    drop(theirs);
    drop(console);
    // Our own child (direct), set up no further: it must not go on to exec.
    let kill_child = || {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(child, None);
    };
    if let Err(e) = back {
        kill_child();
        return Err(e);
    }
    crate::log::phase("exec-fork");
    let pid = if direct {
        child.as_raw()
    } else {
        let pid = match ours.recv() {
            Ok(Some(Msg::InitPid(p))) => Ok(p),
            Ok(Some(Msg::Failed(e))) => Err(anyhow::anyhow!("{e}")),
            Ok(Some(m)) => Err(anyhow::anyhow!("sync: unexpected {m:?} from exec stage-1")),
            Ok(None) => Err(anyhow::anyhow!("exec failed: stage-1 exited early")),
            Err(e) => Err(e),
        };
        let _ = nix::sys::wait::waitpid(child, None);
        pid?
    };
    crate::log::phase("exec-pid");
    let r = answer_exec(plan, state, &ours, pid);
    if direct && r.is_err() {
        // It reported its failure and exits, or is stopped here.
        kill_child();
    }
    r
}

/// The exec'd process's messages until it execs (EOF): a seccomp listener
/// to pass on, `Done` to be moved into a frozen cgroup, or `Failed`.
fn answer_exec(
    plan: &ExecPlan,
    state: &serde_json::Value,
    ours: &SyncSocket,
    pid: i32,
) -> Result<i32> {
    loop {
        match ours.recv_fd()? {
            None => return Ok(pid),
            Some((Msg::SeccompFd, fd)) => pass_listener(plan.seccomp.as_ref(), state, fd, ours)?,
            // Set up, about to exec, outside the frozen cgroup: moved in,
            // it freezes before its execve, which is why we cannot wait
            // for the EOF that would follow it.
            Some((Msg::Done, _)) if !plan.join_cgroup => {
                plan.cgroup.add_task(pid)?;
                ours.send(&Msg::Proceed(String::new()))?;
                return Ok(pid);
            }
            // It reports, then exits by itself.
            Some((Msg::Failed(e), _)) => bail!("{e}"),
            Some((m, _)) => bail!("sync: unexpected {m:?} from the exec'd process"),
        }
    }
}

/// Written atomically: engines poll for this file and must never see it half-written.
pub fn write_pid_file_at(path: &Path, pid: i32) -> Result<()> {
    write_pid_file(&absolute(path)?, pid)
}
