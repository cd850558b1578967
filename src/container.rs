//! A container on disk: `<root>/<id>/state.json` (written atomically), the
//! exec fifo beside it, a per-container lock, and the status, which is always
//! derived from the kernel and never stored (runc's rule).
//! Runs in: the runtime process.
use crate::cgroup::Cgroup;
use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg, OFlag, open};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const FIFO: &str = "exec.fifo";
/// The runtime-spec version of the state skiff prints.
pub const OCI_VERSION: &str = "1.3.0";

/// What skiff remembers about a container. Status is not here: see `Status::derive`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct State {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub pid: Option<i32>,
    /// Field 22 of /proc/<pid>/stat when the init was started: tells a
    /// recycled pid apart from our init.
    pub pid_start: Option<u64>,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: Cgroup,
    /// Kept so poststop hooks run even if the bundle changed or went away.
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// resctrl groups made for linux.intelRdt, removed at delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdt: Vec<PathBuf>,
    /// The resctrl groups the container is in (linux.intelRdt), which
    /// `exec`'d processes join too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdt_groups: Vec<PathBuf>,
}

impl State {
    /// The state as runc prints it (`runc state`), also fed to hooks.
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": status.shown_pid(self.pid),
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::to_value(&self.annotations).unwrap_or_default();
        }
        v
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    /// The pid a container's state shows: its init's, but 0 once stopped
    /// (runc: a stopped container's pid may belong to another process).
    pub fn shown_pid(self, pid: Option<i32>) -> i32 {
        match self {
            Status::Stopped => 0,
            _ => pid.unwrap_or(0),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }

    /// Pure part of the derivation, so it can be tested with fake values.
    /// `proc_start` is the start time now found at /proc/<pid>/stat (None:
    /// no such process, or a zombie, which counts as stopped).
    pub fn from_facts(
        pid: Option<i32>,
        saved_start: Option<u64>,
        proc_start: Option<u64>,
        frozen: bool,
        fifo_exists: bool,
    ) -> Status {
        if pid.is_none() {
            return Status::Creating;
        }
        if proc_start.is_none() || proc_start != saved_start {
            return Status::Stopped;
        }
        if frozen {
            Status::Paused
        } else if fifo_exists {
            Status::Created
        } else {
            Status::Running
        }
    }
}

/// A loaded container, holding its lock for as long as it lives.
pub struct Container {
    pub dir: PathBuf,
    pub state: State,
    _lock: Flock<File>,
}

/// Reads the start time (field 22) of a live, non-zombie process.
/// One read into a stack buffer: the line is bounded (a 16-byte comm and
/// 50 numbers), and `list` does this once per container.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    use std::io::Read;
    let mut f = crate::procfs::open_read(format!("/proc/{pid}/stat").as_ref()).ok()?;
    let mut buf = [0u8; 1024];
    let n = f.read(&mut buf).ok()?;
    parse_stat(std::str::from_utf8(&buf[..n]).ok()?)
}

/// Parses /proc/<pid>/stat text; None for zombies (state Z or X).
fn parse_stat(s: &str) -> Option<u64> {
    // comm is in parentheses and may contain spaces or ')': split at the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    // rest starts at field 3 (state), so field 22 is index 19.
    fields.get(19)?.parse().ok()
}

pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'));
    if !ok {
        bail!("invalid container id {id:?}: only [A-Za-z0-9_+.-] allowed");
    }
    Ok(())
}

/// The state root is private: ids, hook arguments, environment and
/// annotations (where engines put secrets) are for its owner only. Made
/// 0700; an existing root of ours that others can read is made 0700 too.
fn private_root(root: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("mkdir {}", root.display()))?;
    let md = std::fs::metadata(root).with_context(|| format!("stat {}", root.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let ours = md.uid() == unsafe { libc::geteuid() };
    if ours && md.mode() & 0o077 != 0 {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", root.display()))?;
    }
    Ok(())
}

fn lock_dir(dir: &Path) -> Result<Flock<File>> {
    let fd = open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", dir.display()))?;
    Flock::lock(File::from(fd), FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("lock {}", dir.display()))
}

impl Container {
    /// Makes `<root>/<id>` atomically; EEXIST means the id is taken.
    pub fn create_dir(root: &Path, id: &str) -> Result<(PathBuf, Flock<File>)> {
        validate_id(id)?;
        private_root(root)?;
        let dir = root.join(id);
        match nix::unistd::mkdir(&dir, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(nix::errno::Errno::EEXIST) => bail!("container with id {id} already exists"),
            Err(e) => return Err(e).with_context(|| format!("mkdir {}", dir.display())),
        }
        let lock = lock_dir(&dir)?;
        Ok((dir, lock))
    }

    pub fn new(dir: PathBuf, state: State, lock: Flock<File>) -> Container {
        Container {
            dir,
            state,
            _lock: lock,
        }
    }

    /// Loads and locks an existing container.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = root.join(id);
        let lock = match lock_dir(&dir) {
            Ok(l) => l,
            Err(_)
                if std::fs::symlink_metadata(&dir)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
            {
                bail!("container {id} does not exist")
            }
            Err(e) => return Err(e),
        };
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container {id} does not exist")
            }
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        let state =
            serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))?;
        Ok(Container {
            dir,
            state,
            _lock: lock,
        })
    }

    /// temp + fsync-free rename: readers see the old or the new file, never half.
    pub fn save(&self) -> Result<()> {
        let tmp = self.dir.join(".state.json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("create {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec(&self.state)?)?;
        drop(f);
        let path = self.dir.join(STATE_FILE);
        // Replacing: exchange the two names, then drop the old file. A
        // rename over an existing file makes ext4 (auto_da_alloc) start
        // writing the new one out at once, within the call; an exchange
        // does not, and is as atomic for readers.
        if exchange(&tmp, &path).is_ok() {
            let _ = std::fs::remove_file(&tmp);
            return Ok(());
        }
        std::fs::rename(&tmp, path).context("rename state.json")?;
        Ok(())
    }

    /// The lock's fd, for children to close without unlocking.
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self._lock.as_raw_fd()
    }

    pub fn fifo(&self) -> PathBuf {
        self.dir.join(FIFO)
    }

    pub fn status(&self) -> Status {
        status_of(&self.state, &self.dir)
    }

    /// Sends `sig` to the init, refusing if the pid no longer belongs to it.
    /// A pidfd pins the process between the start-time check and the signal.
    pub fn signal_init(&self, sig: i32) -> Result<()> {
        let Some(pid) = self.state.pid else {
            bail!("container {} is not running", self.state.id)
        };
        let pidfd = crate::pidfd::open(pid);
        if pidfd.is_err() || proc_start_time(pid) != self.state.pid_start {
            bail!("container not running");
        }
        crate::pidfd::send_signal(&pidfd?, sig)
            .with_context(|| format!("signal {sig} to pid {pid}"))
    }

    /// Removes the container's cgroup and directory. Mounts died with init's
    /// mount namespace; processes with the cgroup.
    pub fn destroy(self) -> Result<()> {
        self.state.cgroup.destroy_own()?;
        crate::rdt::remove(&self.state.rdt).context("linux.intelRdt")?;
        crate::log::phase("delete-cgroup");
        std::fs::remove_dir_all(&self.dir).with_context(|| format!("remove {}", self.dir.display()))
    }

    /// The state as runc prints it (`runc state`), also fed to hooks.
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        self.state.oci_state(status)
    }
}

/// The status of the container saved in `dir`.
pub fn status_of(st: &State, dir: &Path) -> Status {
    live_status(
        st.pid,
        st.pid_start,
        || st.cgroup.is_frozen(),
        || dir.join(FIFO).exists(),
    )
}

/// The status of a container whose init was `pid`, started at `saved_start`:
/// the freezer and the exec fifo are looked at only for a live init (a
/// stopped container costs one failed open, which counts with a thousand
/// of them in `list`).
pub fn live_status(
    pid: Option<i32>,
    saved_start: Option<u64>,
    frozen: impl FnOnce() -> bool,
    fifo_exists: impl FnOnce() -> bool,
) -> Status {
    let start = pid.and_then(proc_start_time);
    let alive = start.is_some() && start == saved_start;
    let frozen = alive && frozen();
    let fifo = alive && !frozen && fifo_exists();
    Status::from_facts(pid, saved_start, start, frozen, fifo)
}

/// Swaps two existing paths atomically (renameat2 RENAME_EXCHANGE).
/// The raw system call: nix has `renameat2` only on glibc, and skiff also
/// builds on musl (scripts/lib.sh, static_target).
fn exchange(a: &Path, b: &Path) -> nix::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes()).map_err(|_| nix::Error::EINVAL)?;
    let b = std::ffi::CString::new(b.as_os_str().as_bytes()).map_err(|_| nix::Error::EINVAL)?;
    // SAFETY: renameat2 reads two NUL-terminated paths that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pid: Option<i32>, start: Option<u64>) -> State {
        State {
            id: "c".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            pid,
            pid_start: start,
            created: String::new(),
            owner: String::new(),
            annotations: HashMap::new(),
            cgroup: Cgroup {
                version: crate::cgroup::Version::V1,
                hierarchies: vec![],
                created: vec![],
                rootless: false,
                systemd: None,
            },
            hooks: None,
            rdt: Vec::new(),
            rdt_groups: Vec::new(),
        }
    }

    #[test]
    fn status_is_derived_from_facts() {
        let s = state(Some(10), Some(500));
        assert_eq!(
            Status::from_facts(None, None, None, false, true),
            Status::Creating
        );
        assert_eq!(
            Status::from_facts(s.pid, s.pid_start, None, false, true),
            Status::Stopped
        );
        // A recycled pid: same number, other start time.
        assert_eq!(
            Status::from_facts(s.pid, s.pid_start, Some(501), false, true),
            Status::Stopped
        );
        assert_eq!(
            Status::from_facts(s.pid, s.pid_start, Some(500), true, false),
            Status::Paused
        );
        assert_eq!(
            Status::from_facts(s.pid, s.pid_start, Some(500), false, true),
            Status::Created
        );
        assert_eq!(
            Status::from_facts(s.pid, s.pid_start, Some(500), false, false),
            Status::Running
        );
    }

    #[test]
    fn stat_parsing_handles_odd_comm_and_zombies() {
        let live = "42 (a) b) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0";
        assert_eq!(parse_stat(live), Some(98765));
        let zombie = "42 (sh) Z 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0";
        assert_eq!(parse_stat(zombie), None);
        let me = proc_start_time(std::process::id() as i32);
        assert!(me.is_some_and(|t| t > 0));
    }

    #[test]
    fn ids_are_validated() {
        assert!(validate_id("abc-1_2.3").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "../x"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }
}
