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
//! Rootless: see rootless.rs. The systemd driver (`--systemd-cgroup`):
//! systemd.rs and bus.rs; a container's unit is recorded here (`systemd`),
//! and creating, updating and destroying go through systemd first, then
//! the files as without it. NOT DONE: runc's v1 device emulator (rules are
//! written in order instead).

pub mod bus;
mod dbus;
mod detect;
mod fs;
mod join;
pub mod resources;
mod rootless;
mod stats;
pub mod systemd;
mod v1;
mod v2;

use anyhow::{Context, Result, bail};
use detect::clean;
pub use detect::{HostMount, Layout, own_path, parse_self_cgroup, read_self_cgroup};
use fs::{collect_pids, read_trim, remove_tree, rmdir_retry, write_file};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
pub use resources::{Controller, Version, Write};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

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

impl Hierarchy {
    /// The hierarchy of host mount `m`, with the container's cgroup at `dir`.
    fn of(m: HostMount, dir: PathBuf) -> Hierarchy {
        Hierarchy {
            version: if m.subsystems.is_empty() {
                Version::V2
            } else {
                Version::V1
            },
            controllers: m.subsystems,
            mount: m.point,
            dir,
        }
    }
}

/// The container's cgroup, stored in state.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// V1 also for hybrid hosts.
    pub version: Version,
    pub hierarchies: Vec<Hierarchy>,
    /// Directories skiff made, in creation order; `destroy` removes only these.
    pub created: Vec<PathBuf>,
    /// Rootless mode (see rootless.rs): joining may fail with a permission error.
    #[serde(default)]
    pub rootless: bool,
    /// The systemd unit the cgroup belongs to (`--systemd-cgroup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::Unit>,
}

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

/// The hierarchies the container goes in: on v1 those with a controller we
/// know (only those controllers kept), then a hybrid host's cgroup2 (where
/// hugetlb may live). A v1 host with none of them falls back to its cgroup2.
fn managed(layout: Layout) -> Result<(Version, Vec<HostMount>)> {
    match layout {
        Layout::V2 { mount } => Ok((Version::V2, vec![mount])),
        Layout::V1 {
            hierarchies,
            unified,
        } => {
            let mut v1: Vec<HostMount> = hierarchies
                .into_iter()
                .map(|mut h| {
                    h.subsystems
                        .retain(|s| V1_CONTROLLERS.contains(&s.as_str()));
                    h
                })
                .filter(|h| !h.subsystems.is_empty())
                .collect();
            match (v1.is_empty(), unified) {
                (false, unified) => {
                    v1.extend(unified);
                    Ok((Version::V1, v1))
                }
                (true, Some(m)) => Ok((Version::V2, vec![m])),
                (true, None) => {
                    bail!("no cgroup filesystem is mounted (see /proc/self/mountinfo)")
                }
            }
        }
    }
}

/// Whether the cgroup at `dir` is frozen: v1's freezer.state (the
/// freezer hierarchy's directory) or v2's cgroup.freeze.
pub fn frozen_at(version: Version, dir: &Path) -> bool {
    match version {
        Version::V1 => v1::is_frozen(dir),
        Version::V2 => v2::is_frozen(dir),
    }
}

impl Cgroup {
    /// Detect the layout from this process's mountinfo and cgroup membership,
    /// and resolve `linux.cgroupsPath` with runc 1.1's cgroupfs semantics.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        let mountinfo = crate::mountinfo::host_text()?;
        Self::resolve_with(mountinfo, &read_self_cgroup()?, cgroups_path, id)
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
        let (version, mounts) = managed(Layout::detect(&crate::mountinfo::parse(mountinfo)))?;
        let own = parse_self_cgroup(self_cgroup);
        let mut hierarchies = Vec::new();
        for m in mounts {
            let base = if absolute {
                m.point.clone()
            } else {
                let key = &m.subsystems[..m.subsystems.len().min(1)];
                let path = own_path(&own, key).with_context(|| {
                    format!(
                        "no entry for {:?} in /proc/self/cgroup",
                        key.first().map_or("cgroup2", String::as_str)
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
            hierarchies.push(Hierarchy::of(m, base.join(&inner)));
        }
        Ok(Cgroup {
            version,
            hierarchies,
            created: Vec::new(),
            rootless: false,
            systemd: None,
        })
    }

    /// The cgroup of systemd unit `unit`: `<mount>/<expanded slice>/<unit>`
    /// in every hierarchy we manage (systemd makes the directories of the
    /// controllers it manages, `create` the others, as runc's systemd
    /// drivers do).
    pub fn resolve_systemd(unit: systemd::Unit) -> Result<Cgroup> {
        Self::resolve_systemd_with(crate::mountinfo::host_text()?, unit)
    }

    /// `resolve_systemd` on a given mountinfo text.
    pub fn resolve_systemd_with(mountinfo: &str, unit: systemd::Unit) -> Result<Cgroup> {
        let slice = systemd::expand_slice(&unit.slice)?;
        let rel = Path::new(slice.trim_start_matches('/')).join(&unit.name);
        let (version, mounts) = managed(Layout::detect(&crate::mountinfo::parse(mountinfo)))?;
        let hierarchies = mounts
            .into_iter()
            .map(|m| {
                let dir = m.point.join(&rel);
                Hierarchy::of(m, dir)
            })
            .collect();
        Ok(Cgroup {
            version,
            hierarchies,
            created: Vec::new(),
            rootless: false,
            systemd: Some(unit),
        })
    }

    /// Pure: the writes for `res` on this layout, checked against the mounted
    /// controllers so a missing one fails `create` before any fork.
    pub fn plan(&self, res: Option<&LinuxResources>) -> Result<Vec<Write>> {
        self.plan_in(res, Path::new(HUGEPAGES))
    }

    /// `plan`, with the kernel's huge page sizes read from `hugepages`
    /// (a tempdir in unit tests).
    fn plan_in(&self, res: Option<&LinuxResources>, hugepages: &Path) -> Result<Vec<Write>> {
        let default = LinuxResources::default();
        let res = res.unwrap_or(&default);
        let mut out = resources::writes(res, self.version)?;
        if self.version == Version::V1 && self.v1("hugetlb").is_none() && self.unified().is_some() {
            // Hybrid host: hugetlb is a v2 controller here (runc 1.1 fails instead).
            out.retain(|w| *w.controller() != Controller::Hugetlb);
            out.extend(resources::hugetlb(res, Version::V2)?);
        }
        if let Some(m) = self.v1("memory")
            && !m.mount.join(resources::KMEM_TCP).exists()
            && out.iter().any(is_kmem_tcp)
        {
            // A kernel built without kmem accounting (or one that dropped it).
            crate::log::warn(&format!(
                "linux.resources.memory.kernelTCP: ignored, this kernel has no {}",
                resources::KMEM_TCP
            ));
            out.retain(|w| !is_kmem_tcp(w));
        }
        for w in &out {
            if self.target(w.controller()).is_none() {
                bail!(
                    "{}: the {} cgroup controller is not mounted on this host",
                    resources::field(w.controller()),
                    w.controller()
                );
            }
        }
        if out.iter().any(|w| *w.controller() == Controller::Hugetlb) {
            self.check_hugetlb(res, hugepages)?;
        }
        Ok(out)
    }

    /// hugepageLimits must reach the kernel or fail `create` by name, as in
    /// runc and crun: the controller must be available where the writes go
    /// (a cgroup2 root lists it in cgroup.controllers), and each page size
    /// must be one the kernel has (else there is no hugetlb.<size>.* file).
    fn check_hugetlb(&self, res: &LinuxResources, hugepages: &Path) -> Result<()> {
        const FIELD: &str = "linux.resources.hugepageLimits";
        if let Some(h) = self.target(&Controller::Hugetlb).filter(|h| h.version == Version::V2)
            // Only fixture trees lack the file; the kernel always has it.
            && let Ok(text) = crate::procfs::read_text(h.mount.join("cgroup.controllers"))
            && !text.split_whitespace().any(|c| c == "hugetlb")
        {
            bail!(
                "{FIELD}: the hugetlb cgroup controller is not available in {}",
                h.mount.display()
            );
        }
        let sizes = resources::hugepage_sizes(hugepages);
        for l in res.hugepage_limits().iter().flatten() {
            if !sizes.iter().any(|s| s == l.page_size()) {
                bail!(
                    "{FIELD}: page size {:?} is not supported by this kernel (it has: {})",
                    l.page_size(),
                    if sizes.is_empty() {
                        "none".to_string()
                    } else {
                        sizes.join(", ")
                    }
                );
            }
        }
        Ok(())
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
            .filter(|w| *w.controller() != Controller::Devices)
            .collect())
    }

    /// mkdir -p in every hierarchy, recording what we made, then apply the
    /// writes. On error everything made here is removed again.
    pub fn create(&mut self, writes: &[Write]) -> Result<()> {
        let result = self
            .create_dirs(writes)
            .and_then(|_| self.check_not_frozen())
            .and_then(|_| self.apply(writes))
            .map(|_| self.warn_if_occupied());
        if let Err(e) = result {
            let _ = self.remove_created();
            self.created.clear();
            return Err(e);
        }
        Ok(())
    }

    fn create_dirs(&mut self, writes: &[Write]) -> Result<()> {
        for h in self.hierarchies.clone() {
            self.create_dir(&h, writes)?;
        }
        Ok(())
    }

    fn create_dir(&mut self, h: &Hierarchy, writes: &[Write]) -> Result<()> {
        {
            match (self.version, h.version) {
                (_, Version::V1) => v1::create(h, &mut self.created)?,
                // Pure v2: enable every available controller on the way down, as
                // runc does, so a later `update` can set any of them.
                (Version::V2, _) => v2::create(h, None, &mut self.created)?,
                // Hybrid unified dir: enable only what we write there (hugetlb),
                // so the host's unified tree is otherwise left as it was.
                (Version::V1, Version::V2) => {
                    let need: Vec<String> = writes
                        .iter()
                        .filter(|w| self.target(w.controller()) == Some(h))
                        .map(|w| w.controller().name().to_string())
                        .collect();
                    v2::create(h, Some(&need), &mut self.created)?
                }
            }
        }
        Ok(())
    }

    /// Move `pid` into the cgroup in every hierarchy.
    pub fn add_task(&self, pid: i32) -> Result<()> {
        for dir in self.dirs() {
            match write_file(&dir.join("cgroup.procs"), &pid.to_string()) {
                // Rootless: a cgroup we could make but not join (runc ignores it too).
                Err(e) if self.rootless && rootless::is_permission(&e) => {
                    crate::log::debug(&format!("rootless: {e:#}"))
                }
                r => r?,
            }
        }
        Ok(())
    }

    /// Apply writes to an existing cgroup (also used by `update`).
    pub fn apply(&self, writes: &[Write]) -> Result<()> {
        let mut rest = writes;
        while let Some(first) = rest.first() {
            let dir = &self
                .target(first.controller())
                .with_context(|| format!("{}: controller not mounted", first.controller()))?
                .dir;
            // Keep consecutive writes to one controller together: v1 memory needs
            // to see its limit and memsw writes as a group.
            let n = rest
                .iter()
                .take_while(|w| w.controller() == first.controller())
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
        let mut out = Vec::new();
        if let Some(dir) = self.primary().filter(|d| d.exists()) {
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
            Version::V2 => v2::freeze(&self.first()?.dir, frozen),
        }
    }

    /// A cgroup that is frozen (or freezing, or under a frozen parent)
    /// before the container exists would stop init in state D as it joins,
    /// and `create` would never return: refuse it, as runc does.
    pub fn check_not_frozen(&self) -> Result<()> {
        let frozen = match self.version {
            Version::V1 => self.freezer().ok().map(|h| h.dir.clone()).filter(|d| {
                read_trim(&d.join("freezer.state")).is_ok_and(|s| s == "FROZEN" || s == "FREEZING")
            }),
            Version::V2 => self.first().ok().map(|h| h.dir.clone()).filter(|d| {
                v2::is_frozen(d)
                    || crate::procfs::read_text(d.join("cgroup.events"))
                        .is_ok_and(|t| t.lines().any(|l| l == "frozen 1"))
            }),
        };
        match frozen {
            Some(d) => bail!("container's cgroup unexpectedly frozen: {}", d.display()),
            None => Ok(()),
        }
    }

    /// A cgroup the caller made may already hold processes: they would
    /// share the container's limits and die with it. runc warns; so do we.
    fn warn_if_occupied(&self) {
        // A systemd scope is new (systemd refuses an existing name) and
        // holds the process that keeps it open (bus::Holder).
        if self.systemd.is_some() {
            return;
        }
        let Some(dir) = self
            .primary()
            .filter(|d| !self.created.iter().any(|c| c == d))
        else {
            return;
        };
        let n = crate::procfs::read_text(dir.join("cgroup.procs"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if n > 0 {
            crate::log::warn(&format!(
                "container's cgroup is not empty: {n} process(es) found in {}",
                dir.display()
            ));
        }
    }

    pub fn is_frozen(&self) -> bool {
        let h = match self.version {
            Version::V1 => self.freezer(),
            Version::V2 => self.first(),
        };
        h.is_ok_and(|h| frozen_at(self.version, &h.dir))
    }

    /// SIGKILL everything inside, wait (bounded) for it to go, stop the
    /// systemd unit if any, and remove the directories skiff created,
    /// deepest first. Idempotent.
    pub fn destroy(&self) -> Result<()> {
        self.kill_all()?;
        if let Some(unit) = &self.systemd {
            bus::stop(&unit.name)?;
        }
        self.remove_created()
    }

    /// `update`: tell systemd what it has properties for (runtime, as
    /// runc's SetUnitProperties), then write the files, which stay
    /// authoritative.
    pub fn update(&self, writes: &[Write]) -> Result<()> {
        if let Some(unit) = &self.systemd {
            bus::set_properties(
                &unit.name,
                &systemd::props_from_writes(writes, self.version)?,
            )?;
        }
        self.apply(writes)
    }

    /// `delete`: `destroy`, and the container's own cgroup too where it
    /// existed before the container (a path the caller made): runc removes
    /// it as well. Never a parent skiff did not make.
    pub fn destroy_own(&self) -> Result<()> {
        self.destroy()?;
        for h in &self.hierarchies {
            if self.created.contains(&h.dir) {
                continue;
            }
            if let Err(e) = remove_tree(&h.dir) {
                // Still in use by something else: theirs to remove.
                crate::log::warn(&format!("delete: cgroup left in place: {e:#}"));
            }
        }
        Ok(())
    }

    fn kill_all(&self) -> Result<()> {
        let Some(primary) = self.primary().filter(|d| d.exists()) else {
            return Ok(());
        };
        if self.version == Version::V2 && v2::kill(primary)? {
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
            primary.display()
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
            "processes in cgroup {:?} did not exit after cgroup.kill",
            self.primary()
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
    fn target(&self, controller: &Controller) -> Option<&Hierarchy> {
        match self.version {
            Version::V2 => self.hierarchies.first(),
            Version::V1 if *controller == Controller::Hugetlb => {
                self.v1(controller.name()).or_else(|| self.unified())
            }
            Version::V1 => self.v1(controller.name()),
        }
    }

    fn freezer(&self) -> Result<&Hierarchy> {
        self.v1("freezer")
            .context("the freezer cgroup controller is not mounted on this host")
    }

    /// The directory whose cgroup.procs lists the container (runc reads the
    /// pids, devices or freezer hierarchy on v1).
    /// None only for a rootless container that got no cgroup at all.
    fn primary(&self) -> Option<&Path> {
        let h = ["pids", "devices", "freezer"]
            .iter()
            .find_map(|c| self.v1(c));
        h.or(self.hierarchies.first()).map(|h| h.dir.as_path())
    }

    fn first(&self) -> Result<&Hierarchy> {
        self.hierarchies
            .first()
            .context("the container has no cgroup (rootless, not permitted)")
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

fn is_kmem_tcp(w: &Write) -> bool {
    w.file().is_some_and(|(f, _)| f == resources::KMEM_TCP)
}

/// One `hugepages-<N>kB` directory per page size the kernel supports.
const HUGEPAGES: &str = "/sys/kernel/mm/hugepages";

const POLL: Duration = Duration::from_millis(10);
/// 200 rounds of 10ms: two seconds for SIGKILLed processes to leave.
const KILL_ROUNDS: usize = 200;

#[cfg(test)]
mod tests;
