//! Runs in: the runtime process (P): `create` builds and fills the cgroup before
//! the first fork; `delete`, `kill --all`, `pause`, `update` find it again
//! through the copy stored in state.json.
//!
//! Layouts: pure cgroup v2 (one directory), or v1 with one directory per
//! mounted hierarchy. A *hybrid* host is v1 plus a cgroup2 mount (usually
//! /sys/fs/cgroup/unified) that runc 1.1 also creates and joins; on such hosts
//! hugetlb may live only there, and we route hugetlb writes to it.
//!
//! Every filesystem access goes through paths taken from the mountinfo text
//! given to `resolve_with`, so unit tests run against tempdir fixture trees.
//!
//! NOT DONE: the systemd driver; rootless (permission errors are fatal);
//! runc's v1 device emulator (rules are written in order instead); hugetlb
//! page sizes are not checked against /sys/kernel/mm/hugepages.

mod join;
pub mod resources;
mod stats;
mod v1;
mod v2;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
pub use resources::{Version, Write};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// v1 controllers we place the container in (the kernel's list, minus the
/// debug ones). Named hierarchies other than name=systemd are left alone.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "name=systemd",
];

/// One hierarchy the container lives in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// V2 for a pure v2 host and for the unified directory of a hybrid host.
    pub version: Version,
    /// v1: controllers of this mount (`cpu`, `cpuacct`, `name=systemd`); v2: empty.
    pub controllers: Vec<String>,
    pub mount: PathBuf,
    /// The container's cgroup directory under `mount`.
    pub dir: PathBuf,
}

/// The container's cgroup, stored in state.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// V1 also for hybrid hosts.
    pub version: Version,
    pub hierarchies: Vec<Hierarchy>,
    /// Directories skiff made, in creation order; `destroy` removes only these.
    pub created: Vec<PathBuf>,
}

impl Cgroup {
    /// Detect the layout from this process's mountinfo and cgroup membership,
    /// and resolve `linux.cgroupsPath` with runc 1.1's cgroupfs semantics.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
        let own = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
        Self::resolve_with(&mountinfo, &own, cgroups_path, id)
    }

    /// `resolve` on given texts. Absolute paths go under each hierarchy's mount;
    /// relative ones, and the default (`<id>`, relative, exactly as runc 1.1's
    /// fs driver does), go under the runtime's own cgroup (v2: its parent, since
    /// a cgroup holding processes cannot enable controllers for children).
    pub fn resolve_with(
        mountinfo: &str,
        self_cgroup: &str,
        cgroups_path: Option<&Path>,
        id: &str,
    ) -> Result<Cgroup> {
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            bail!("invalid container id {id:?} for a cgroup name");
        }
        let (absolute, inner) = match cgroups_path.filter(|p| !p.as_os_str().is_empty()) {
            Some(p) => clean(p),
            None => (false, PathBuf::from(id)),
        };
        if inner.as_os_str().is_empty() {
            bail!(
                "linux.cgroupsPath: {:?} is a hierarchy root, refusing to manage it",
                cgroups_path.unwrap_or(Path::new(""))
            );
        }
        let (version, mounts) = detect(mountinfo)?;
        let own = parse_self_cgroup(self_cgroup);
        let mut hierarchies = Vec::new();
        for m in mounts {
            let base = if absolute {
                m.point.clone()
            } else {
                let key = m.controllers.first().map(String::as_str).unwrap_or("");
                let path = own
                    .iter()
                    .find(|(ctrls, _)| ctrls.iter().any(|c| c == key))
                    .map(|(_, p)| p.as_str())
                    .with_context(|| {
                        format!(
                            "no entry for {:?} in /proc/self/cgroup",
                            if key.is_empty() { "cgroup2" } else { key }
                        )
                    })?;
                // Inside a cgroup namespace the mount root may be a subtree.
                let rel = path
                    .strip_prefix(m.root.as_str())
                    .filter(|_| m.root != "/")
                    .unwrap_or(path);
                let mut own_dir = m.point.join(rel.trim_start_matches('/'));
                if version == Version::V2 && own_dir != m.point {
                    own_dir.pop();
                }
                own_dir
            };
            let version = if m.controllers.is_empty() {
                Version::V2
            } else {
                Version::V1
            };
            hierarchies.push(Hierarchy {
                version,
                controllers: m.controllers,
                mount: m.point,
                dir: base.join(&inner),
            });
        }
        Ok(Cgroup {
            version,
            hierarchies,
            created: Vec::new(),
        })
    }

    /// Pure: the writes for `res` on this layout, checked against the mounted
    /// controllers so a missing one fails `create` before any fork.
    pub fn plan(&self, res: Option<&LinuxResources>) -> Result<Vec<Write>> {
        let default = LinuxResources::default();
        let res = res.unwrap_or(&default);
        let mut out = resources::writes(res, self.version)?;
        if self.version == Version::V1 && self.v1("hugetlb").is_none() && self.unified().is_some() {
            // Hybrid host: hugetlb is a v2 controller here (runc 1.1 fails instead).
            out.retain(|w| w.controller != "hugetlb");
            out.extend(resources::hugetlb(res, Version::V2)?);
        }
        for w in &out {
            if self.target(&w.controller).is_none() {
                bail!(
                    "{}: the {} cgroup controller is not mounted on this host",
                    resources::field(&w.controller),
                    w.controller
                );
            }
        }
        Ok(out)
    }

    /// For `update`: `plan` without device rules. runc 1.1's update leaves them
    /// alone, and CRI sends a bare deny-all that would otherwise cut the
    /// container off from /dev/null.
    pub fn plan_update(&self, res: &LinuxResources) -> Result<Vec<Write>> {
        let mut res = res.clone();
        res.set_devices(None);
        let writes = self.plan(Some(&res))?;
        Ok(writes
            .into_iter()
            .filter(|w| w.controller != "devices")
            .collect())
    }

    /// mkdir -p in every hierarchy, recording what we made, then apply the
    /// writes. On error everything made here is removed again.
    pub fn create(&mut self, writes: &[Write]) -> Result<()> {
        let result = self.create_dirs(writes).and_then(|_| self.apply(writes));
        if let Err(e) = result {
            let _ = self.remove_created();
            self.created.clear();
            return Err(e);
        }
        Ok(())
    }

    fn create_dirs(&mut self, writes: &[Write]) -> Result<()> {
        for i in 0..self.hierarchies.len() {
            let h = self.hierarchies[i].clone();
            match (self.version, h.version) {
                (_, Version::V1) => v1::create(&h, &mut self.created)?,
                // Pure v2: enable every available controller on the way down, as
                // runc does, so a later `update` can set any of them.
                (Version::V2, _) => v2::create(&h, None, &mut self.created)?,
                // Hybrid unified dir: enable only what we write there (hugetlb),
                // so the host's unified tree is otherwise left as it was.
                (Version::V1, Version::V2) => {
                    let need: Vec<String> = writes
                        .iter()
                        .filter(|w| self.target(&w.controller) == Some(&h))
                        .map(|w| w.controller.clone())
                        .collect();
                    v2::create(&h, Some(&need), &mut self.created)?
                }
            }
        }
        Ok(())
    }

    /// Move `pid` into the cgroup in every hierarchy.
    pub fn add_task(&self, pid: i32) -> Result<()> {
        for dir in self.dirs() {
            write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Apply writes to an existing cgroup (also used by `update`).
    pub fn apply(&self, writes: &[Write]) -> Result<()> {
        let mut rest = writes;
        while let Some(first) = rest.first() {
            let dir = &self
                .target(&first.controller)
                .with_context(|| format!("{}: controller not mounted", first.controller))?
                .dir;
            // Keep consecutive writes to one controller together: v1 memory needs
            // to see its limit and memsw writes as a group.
            let n = rest
                .iter()
                .take_while(|w| w.controller == first.controller)
                .count();
            match self.version {
                Version::V1 => v1::apply(dir, &rest[..n])?,
                Version::V2 => v2::apply(dir, &rest[..n])?,
            }
            rest = &rest[n..];
        }
        Ok(())
    }

    /// All host pids in the cgroup, including its sub-cgroups.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let dir = self.primary();
        let mut out = Vec::new();
        if dir.exists() {
            collect_pids(dir, &mut out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Freeze or thaw, waiting (bounded) until the kernel reports the state.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        match self.version {
            Version::V1 => v1::freeze(&self.freezer()?.dir, frozen),
            Version::V2 => v2::freeze(&self.hierarchies[0].dir, frozen),
        }
    }

    pub fn is_frozen(&self) -> bool {
        match self.version {
            Version::V1 => self.freezer().is_ok_and(|h| v1::is_frozen(&h.dir)),
            Version::V2 => v2::is_frozen(&self.hierarchies[0].dir),
        }
    }

    /// SIGKILL everything inside, wait (bounded) for it to go, and remove the
    /// directories skiff created, deepest first. Idempotent.
    pub fn destroy(&self) -> Result<()> {
        self.kill_all()?;
        self.remove_created()
    }

    fn kill_all(&self) -> Result<()> {
        if !self.primary().exists() {
            return Ok(());
        }
        if self.version == Version::V2 && v2::kill(&self.hierarchies[0].dir)? {
            return self.wait_empty();
        }
        let me = std::process::id() as i32;
        for _ in 0..KILL_ROUNDS {
            let pids = self.pids()?;
            if pids.is_empty() {
                return Ok(());
            }
            for pid in pids.into_iter().filter(|&p| p != me) {
                // ESRCH: it exited between the read and the kill.
                match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => return Err(e).with_context(|| format!("kill {pid}")),
                }
            }
            // A v1-frozen task cannot act on SIGKILL until thawed.
            if self.version == Version::V1 && self.is_frozen() {
                self.freeze(false)?;
            }
            std::thread::sleep(POLL);
        }
        bail!(
            "processes in cgroup {} did not exit after SIGKILL",
            self.primary().display()
        )
    }

    fn wait_empty(&self) -> Result<()> {
        for _ in 0..KILL_ROUNDS {
            if self.pids()?.is_empty() {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
        bail!(
            "processes in cgroup {} did not exit after cgroup.kill",
            self.primary().display()
        )
    }

    fn remove_created(&self) -> Result<()> {
        let leaves: Vec<&PathBuf> = self.hierarchies.iter().map(|h| &h.dir).collect();
        let mut dirs = self.created.clone();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        dirs.dedup();
        for dir in dirs {
            if leaves.contains(&&dir) {
                // Sub-cgroups the container made inside its own cgroup go too.
                remove_tree(&dir)?;
            } else {
                // A parent we made may since hold other containers: keep it then.
                match rmdir_retry(&dir) {
                    Ok(()) | Err(Errno::ENOENT | Errno::ENOTEMPTY | Errno::EBUSY) => {}
                    Err(e) => return Err(e).with_context(|| format!("rmdir {}", dir.display())),
                }
            }
        }
        Ok(())
    }

    fn v1(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.version == Version::V1 && h.controllers.iter().any(|c| c == controller))
    }

    fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.version == Version::V2)
    }

    /// Where a write for `controller` goes.
    fn target(&self, controller: &str) -> Option<&Hierarchy> {
        match self.version {
            Version::V2 => self.hierarchies.first(),
            Version::V1 if controller == "hugetlb" => {
                self.v1(controller).or_else(|| self.unified())
            }
            Version::V1 => self.v1(controller),
        }
    }

    fn freezer(&self) -> Result<&Hierarchy> {
        self.v1("freezer")
            .context("the freezer cgroup controller is not mounted on this host")
    }

    /// The directory whose cgroup.procs lists the container (runc reads the
    /// pids, devices or freezer hierarchy on v1).
    fn primary(&self) -> &Path {
        let h = ["pids", "devices", "freezer"]
            .iter()
            .find_map(|c| self.v1(c));
        &h.or(self.hierarchies.first())
            .expect("resolve always finds a hierarchy")
            .dir
    }

    /// Unique directories (co-mounted v1 controllers share one).
    fn dirs(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        for h in &self.hierarchies {
            if !out.contains(&h.dir.as_path()) {
                out.push(&h.dir);
            }
        }
        out
    }
}

const POLL: Duration = Duration::from_millis(10);
/// 200 rounds of 10ms: two seconds for SIGKILLed processes to leave.
const KILL_ROUNDS: usize = 200;

/// One mount from mountinfo that holds a hierarchy.
struct Mount {
    root: String,
    point: PathBuf,
    controllers: Vec<String>, // empty for cgroup2
}

/// Find the hierarchies. Any v1 mount makes the layout V1 (hybrid included).
fn detect(mountinfo: &str) -> Result<(Version, Vec<Mount>)> {
    let mut v1: Vec<Mount> = Vec::new();
    let mut v2: Option<Mount> = None;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let (root, point) = (unescape(pre[3]), PathBuf::from(unescape(pre[4])));
        match post[0] {
            "cgroup" => {
                let controllers: Vec<String> = post[2]
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o))
                    .map(String::from)
                    .collect();
                // The same hierarchy may be mounted twice (bind mounts): keep the first.
                if !controllers.is_empty() && !v1.iter().any(|m| m.controllers == controllers) {
                    v1.push(Mount {
                        root,
                        point,
                        controllers,
                    });
                }
            }
            "cgroup2" if v2.is_none() => {
                v2 = Some(Mount {
                    root,
                    point,
                    controllers: Vec::new(),
                })
            }
            _ => {}
        }
    }
    if !v1.is_empty() {
        v1.extend(v2);
        return Ok((Version::V1, v1));
    }
    match v2 {
        Some(m) => Ok((Version::V2, vec![m])),
        None => bail!("no cgroup filesystem is mounted (see /proc/self/mountinfo)"),
    }
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/proc/self/cgroup` → (controllers, path); the v2 line has no controllers.
fn parse_self_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            let ctrls = if ctrls.is_empty() {
                vec![String::new()]
            } else {
                ctrls.split(',').map(String::from).collect()
            };
            Some((ctrls, path.to_string()))
        })
        .collect()
}

/// runc's CleanPath: lexical cleaning where ".." never climbs above the start,
/// so a config cannot name a directory outside the hierarchy.
fn clean(p: &Path) -> (bool, PathBuf) {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    (p.is_absolute(), out)
}

/// Cgroup files want one write(2) per value; never create them (O_CREAT on
/// cgroupfs fails with a confusing error, and in fixtures it would hide typos).
pub(super) fn write_file(path: &Path, value: &str) -> Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    f.write_all(value.as_bytes())
        .with_context(|| format!("write {value:?} to {}", path.display()))
}

fn read_trim(path: &Path) -> Result<String> {
    let s = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    Ok(s.trim().to_string())
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(s) => s,
        // The (sub-)cgroup was removed while we walked the tree.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("read {}/cgroup.procs", dir.display())),
    };
    for line in procs.lines() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            line.trim()
                .parse()
                .with_context(|| format!("bad pid {line:?} in {}", dir.display()))?,
        );
    }
    for e in std::fs::read_dir(dir).with_context(|| format!("read dir {}", dir.display()))? {
        let e = e?;
        if e.file_type()?.is_dir() {
            collect_pids(&e.path(), out)?;
        }
    }
    Ok(())
}

/// rmdir, retrying EBUSY for a bounded time: the kernel may still be tearing
/// down the last exiting task (runc retries the same way).
fn rmdir_retry(dir: &Path) -> std::result::Result<(), Errno> {
    let mut result = Ok(());
    for _ in 0..50 {
        result = std::fs::remove_dir(dir)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)));
        if result != Err(Errno::EBUSY) {
            break;
        }
        std::thread::sleep(POLL);
    }
    result
}

fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("read dir {}", dir.display())),
    };
    for e in entries {
        let e = e?;
        if e.file_type()?.is_dir() {
            remove_tree(&e.path())?;
        }
    }
    match rmdir_retry(dir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("rmdir {}", dir.display())),
    }
}

#[cfg(test)]
mod tests;
