//! The exec planner: `spec::plan`'s counterpart for `skiff exec`. Checks
//! the process (built by `cmd::exec` from config.json or `--process` and
//! the flags) and assembles the `ExecPlan`: the init's namespaces and root
//! opened (so pinned), the cgroup to join, args, env, policy and seccomp.
//! Runs in: the runtime process.
use crate::container::{Container, Status, proc_start_time};
use crate::init::attach::ExecPlan;
use anyhow::{Context, Result, bail};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use std::os::fd::OwnedFd;

/// What the exec flags decide beyond the process itself.
pub struct ExecOpts<'a> {
    /// The process came from a `--process` file (named so in errors).
    pub process_file: bool,
    pub console_socket: bool,
    pub detach: bool,
    /// `--cgroup`: a sub-cgroup of the container's to run in.
    pub cgroup: &'a [String],
    pub preserve_fds: i32,
}

/// Validates the process and compiles the plan for a container in `status`.
pub fn plan_exec(
    c: &Container,
    status: Status,
    spec: &Spec,
    process: Process,
    o: &ExecOpts,
) -> Result<ExecPlan> {
    crate::spec::process::check_lsm_labels(&process)?;
    let what = if o.process_file {
        "--process"
    } else {
        "process"
    };
    crate::spec::process::check_user_ids(&process, what)?;
    let terminal = process.terminal().unwrap_or(false);
    crate::spec::check_terminal(terminal, o.console_socket, !o.detach)?;
    let pid = c.state.pid.context("container has no init pid")?;
    let types: Vec<LinuxNamespaceType> = spec
        .linux()
        .iter()
        .flat_map(|l| l.namespaces().iter().flatten().map(|n| n.typ()))
        .collect();
    let joins = open_namespaces(pid, &types)?;
    let chroot = if types.contains(&LinuxNamespaceType::Mount) {
        None
    } else {
        Some(open_root(pid)?)
    };
    // The fds pin the namespaces; this check makes sure they were the init's.
    if proc_start_time(pid) != c.state.pid_start {
        bail!("container {} is not running", c.state.id);
    }
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        bail!("process.args: must not be empty");
    }
    let policy = crate::spec::policy::compile(spec, Some(&process))?;
    Ok(ExecPlan {
        policy,
        rdt_groups: c.state.rdt_groups.clone(),
        args: crate::spec::cstrings(&args, "process.args")?,
        env: crate::spec::env_list(process.env().as_deref().unwrap_or_default(), "process.env")?,
        process,
        joins,
        chroot,
        cgroup: match o.cgroup.is_empty() {
            true => c.state.cgroup.clone(),
            false => c.state.cgroup.sub_cgroup(o.cgroup)?,
        },
        join_cgroup: status != Status::Paused,
        preserve_fds: o.preserve_fds,
        seccomp: match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(crate::seccomp::compile(s).context("linux.seccomp")?),
            None => None,
        },
    })
}

/// The init's root, for a container without a mount namespace of its own.
fn open_root(pid: i32) -> Result<OwnedFd> {
    let root = format!("/proc/{pid}/root");
    let dir =
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC;
    nix::fcntl::open(root.as_str(), dir, nix::sys::stat::Mode::empty())
        .with_context(|| format!("open {root}"))
}

fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Opens the init's namespaces (user first), skipping any we already share.
fn open_namespaces(pid: i32, types: &[LinuxNamespaceType]) -> Result<Vec<(CloneFlags, OwnedFd)>> {
    use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
    use nix::sys::stat::{Mode, fstat, fstatat};
    // Each directory walked once (a /proc/<pid> lookup allocates inodes);
    // each namespace is then one openat and one fstat, and ours one fstatat.
    let dir = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let theirs_dir = format!("/proc/{pid}/ns");
    let theirs_fd = openat(AT_FDCWD, theirs_dir.as_str(), dir, Mode::empty())
        .with_context(|| format!("open {theirs_dir}"))?;
    let ours =
        openat(AT_FDCWD, "/proc/self/ns", dir, Mode::empty()).context("open /proc/self/ns")?;
    let mut out = Vec::new();
    let mut types = types.to_vec();
    types.sort_by_key(|t| *t != LinuxNamespaceType::User);
    for t in types {
        let name = ns_name(t);
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        let fd = openat(&theirs_fd, name, flags, Mode::empty())
            .with_context(|| format!("open namespace {theirs_dir}/{name}"))?;
        let theirs = fstat(&fd)
            .with_context(|| format!("stat {theirs_dir}/{name}"))?
            .st_ino;
        if fstatat(&ours, name, AtFlags::empty()).is_ok_and(|m| m.st_ino == theirs) {
            continue;
        }
        out.push((CloneFlags::from_bits_retain(t as i32), fd));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::spec::check_terminal;

    #[test]
    fn terminal_and_console_socket_rules_of_create_and_exec() {
        // (terminal, console socket, foreground) -> allowed
        assert!(check_terminal(true, true, false).is_ok());
        assert!(check_terminal(true, false, true).is_ok());
        assert!(check_terminal(false, false, false).is_ok());
        let e = check_terminal(true, false, false).unwrap_err().to_string();
        assert!(e.contains("cannot allocate tty"), "{e}");
        let e = check_terminal(false, true, true).unwrap_err().to_string();
        assert!(e.contains("cannot use console socket"), "{e}");
    }
}
