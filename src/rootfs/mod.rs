//! Runs in: the runtime (`plan`, pure) and container init (`setup`, `pivot`,
//! `mount_console`, `finalize`, in that order).
//!
//! The rootfs is compiled into a `Plan` before the first fork, so every
//! config error fails `create` early; init only executes it. The order of
//! operations follows runc 1.1's prepareRootfs/finalizeRootfs.

mod copyup;
mod devices;
mod idmap;
pub mod mount;
mod paths;
mod pivot;
mod resolve;

use crate::cgroup::{HostMount, Layout};
use anyhow::{Context, Result, bail};
use mount::{Kind, MountStep, Opts, is_errno, mount_at, mount_plain};
use nix::errno::Errno;
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use paths::{Leaf, fd_path, mkdir_below};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

pub use idmap::{Prepared, prepare as prepare_idmapped, probe as probe_idmapped};
pub use paths::openat2_works;

/// Everything decided up front about the rootfs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub rootfs: PathBuf,
    /// linux.namespaces has a mount namespace (new or joined). Without
    /// one, init only chroots: nothing is mounted in the host's namespace.
    pub mount_ns: bool,
    pub no_pivot: bool,
    /// linux.rootfsPropagation; None means rslave during setup and nothing after.
    pub root_propagation: Option<MsFlags>,
    pub readonly_root: bool,
    pub mounts: Vec<mount::MountStep>,
    /// False when /dev is a bind mount: then it is the host's, leave it alone.
    pub setup_dev: bool,
    pub devices: Vec<devices::Device>,
    /// mknod is refused in a user namespace: bind host nodes instead.
    pub bind_devices: bool,
    /// Root makes a new user namespace: bind sources are opened by the
    /// runtime on the host side (open_tree), since the container's root may
    /// not be able to search their host directories (idmap.rs `prepare`).
    pub clone_binds: bool,
    /// process.terminal with a mount namespace: /dev/console is prepared
    /// and the pty bound over it. The one place this is decided (init's
    /// console setup asks here).
    pub terminal: bool,
    pub masked: Vec<PathBuf>,
    pub readonly: Vec<PathBuf>,
    /// The host's cgroup layout, when a "cgroup" mount needs it.
    pub cgroup: Layout,
    pub cgroupns: bool,
}

/// Validates and compiles the spec's rootfs parts. Reads the host mountinfo
/// only when a "cgroup" mount needs the layout; stats bind sources.
pub fn plan(spec: &Spec, rootfs: &Path, no_pivot: bool) -> Result<Plan> {
    let linux = spec.linux().clone().unwrap_or_default();
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let has = |t: LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);
    let mount_ns = has(LinuxNamespaceType::Mount);
    if !mount_ns {
        check_without_mount_ns(spec, &linux)?;
    }
    let root_propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("") => None,
        Some(v) => Some(
            mount::propagation_option(v)
                .with_context(|| format!("linux.rootfsPropagation: invalid value {v:?}"))?,
        ),
    };
    let bind_devices = has(LinuxNamespaceType::User) || in_user_namespace();
    if !mount_ns && bind_devices {
        bail!(
            "linux.namespaces: without a mount namespace, device nodes cannot be made in a user namespace (they would be bind mounts on the host)"
        );
    }
    let cwd = std::env::current_dir().context("get current directory")?;
    let mounts = spec.mounts().clone().unwrap_or_default();
    let text = |m: &Option<Vec<_>>| crate::uidmap::id_map_text(m.as_deref().unwrap_or(&[]));
    let maps = (text(linux.uid_mappings()), text(linux.gid_mappings()));
    let userns =
        (has(LinuxNamespaceType::User) && !maps.0.is_empty()).then_some((&*maps.0, &*maps.1));
    let mounts = mounts
        .iter()
        .enumerate()
        .map(|(i, m)| mount::compile(i, m, &cwd, userns))
        .collect::<Result<Vec<_>>>()?;
    let cgroup = if mounts.iter().any(|m| m.kind == mount::Kind::Cgroup) {
        Layout::read()?
    } else {
        Layout::NONE
    };
    Ok(Plan {
        rootfs: rootfs.to_path_buf(),
        mount_ns,
        no_pivot,
        root_propagation,
        readonly_root: spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        setup_dev: !mounts
            .iter()
            .any(|m| m.dest == Path::new("/dev") && m.kind == mount::Kind::Bind),
        mounts,
        devices: devices::compile(linux.devices().as_deref().unwrap_or(&[]))?,
        bind_devices,
        clone_binds: mount_ns
            && has(LinuxNamespaceType::User)
            && nix::unistd::geteuid().is_root()
            && !in_user_namespace(),
        // Without a mount namespace /dev/console is not bound (as runc).
        terminal: mount_ns
            && spec
                .process()
                .as_ref()
                .and_then(|p| p.terminal())
                .unwrap_or(false),
        masked: abs_paths("linux.maskedPaths", linux.masked_paths().as_deref())?,
        readonly: abs_paths("linux.readonlyPaths", linux.readonly_paths().as_deref())?,
        cgroup,
        cgroupns: has(LinuxNamespaceType::Cgroup),
    })
}

/// Without a mount namespace every mount would land in the host's: refuse
/// what needs one, each by its field (runc 1.1.5 mounts them on the host,
/// rootfs self-bind included; it refuses only masked and read-only paths).
fn check_without_mount_ns(spec: &Spec, linux: &oci_spec::runtime::Linux) -> Result<()> {
    let why = "without a private mount namespace (linux.namespaces has no \"mount\")";
    if spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        bail!("mounts: unable to mount {why}");
    }
    let some = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if some(linux.masked_paths()) {
        bail!("linux.maskedPaths: unable to restrict sys entries {why}");
    }
    if some(linux.readonly_paths()) {
        bail!("linux.readonlyPaths: unable to restrict sys entries {why}");
    }
    if linux
        .rootfs_propagation()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        bail!("linux.rootfsPropagation: unable to set {why}");
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        bail!("root.readonly: unable to remount the root read-only {why}");
    }
    Ok(())
}

fn abs_paths(field: &str, paths: Option<&[String]>) -> Result<Vec<PathBuf>> {
    let paths = paths.unwrap_or(&[]);
    paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if !p.starts_with('/') {
                bail!("{field}[{i}]: path must be absolute, got {p:?}");
            }
            Ok(paths::clean(Path::new(p)))
        })
        .collect()
}

/// True if the runtime itself already runs in a user namespace (then mknod
/// fails even without one in the config); same test as runc's RunningInUserNS.
pub fn in_user_namespace() -> bool {
    let map = crate::procfs::read_text("/proc/self/uid_map").unwrap_or_default();
    let f: Vec<&str> = map.split_whitespace().collect();
    !(f.is_empty() || f == ["0", "0", "4294967295"])
}

/// Init, in its new mount namespace, before pivot: root propagation, the
/// rootfs self-bind, every spec mount in order, then /dev. Without a mount
/// namespace only the /dev nodes and symlinks are made, in the rootfs's
/// own /dev (as runc does): files, never mounts.
pub fn setup(plan: &Plan, idmapped: &Prepared) -> Result<()> {
    if !plan.mount_ns {
        if plan.setup_dev {
            let root = paths::open_root(&plan.rootfs)?;
            devices::setup_dev(root.as_fd(), plan).context("set up /dev")?;
        }
        return Ok(());
    }
    pivot::prepare_root(plan)?;
    // Opened after the self-bind so the fd is on the new mount.
    let root = paths::open_root(&plan.rootfs)?;
    for m in &plan.mounts {
        mount::mount_step(root.as_fd(), m, plan, idmapped)?;
    }
    if plan.setup_dev {
        devices::setup_dev(root.as_fd(), plan).context("set up /dev")?;
    }
    Ok(())
}

/// Init, after setup (and the createContainer hooks): enter the rootfs with
/// pivot_root, or MS_MOVE + chroot when `no_pivot`.
pub fn pivot(plan: &Plan) -> Result<()> {
    pivot::pivot(plan)
}

/// What a spec mount is (bind, tmpfs, ...), for `criu::describe`.
pub use mount::Kind as MountKind;
pub use paths::{enter_cwd, make_cwd};

/// Creates the mountpoint `dest` (a container path) below `rootfs` if it
/// is missing, resolved inside the rootfs: a file if `file`, else a
/// directory (a restore's mountpoints, see `criu::describe`).
pub fn make_mountpoint(rootfs: &Path, dest: &Path, file: bool) -> Result<()> {
    let root = paths::open_root(rootfs)?;
    let leaf = if file { Leaf::File } else { Leaf::Dir };
    paths::mkdir_all(root.as_fd(), dest, leaf)
        .map(drop)
        .with_context(|| format!("mountpoint {} in {}", dest.display(), rootfs.display()))
}

/// Init, after pivot, when process.terminal: bind the pty slave over /dev/console.
pub fn mount_console(slave: std::os::fd::BorrowedFd) -> Result<()> {
    devices::mount_console(slave)
}

/// Init, after pivot (and console): deferred read-only remounts of tmpfs and
/// /dev, read-only root, readonlyPaths, maskedPaths (runc's order), then
/// rootfsPropagation on "/".
pub fn finalize(plan: &Plan) -> Result<()> {
    let root = paths::open_root(Path::new("/"))?;
    for m in &plan.mounts {
        let deferred = m.kind == mount::Kind::Tmpfs || m.dest == Path::new("/dev");
        if deferred && m.opts.flags.contains(MsFlags::MS_RDONLY) {
            let rel = m.dest.strip_prefix("/").unwrap_or(&m.dest);
            let fd = paths::openat2(root.as_fd(), rel, nix::fcntl::OFlag::O_PATH)
                .with_context(|| format!("open {}", m.dest.display()))?;
            let flags = m.opts.flags | MsFlags::MS_REMOUNT;
            nix::mount::mount(
                None::<&str>,
                &paths::fd_path(fd.as_fd()),
                None::<&str>,
                flags,
                None::<&str>,
            )
            .with_context(|| format!("remount {} read-only", m.dest.display()))?;
        }
    }
    if plan.readonly_root {
        paths::readonly_root()?;
    }
    paths::readonly_paths(&plan.readonly)?;
    paths::mask_paths(&plan.masked)?;
    if let Some(p) = plan.root_propagation {
        nix::mount::mount(None::<&str>, "/", None::<&str>, p, None::<&str>)
            .context("set rootfsPropagation on /")?;
        if p.contains(MsFlags::MS_REC) {
            reapply_mount_propagation(root.as_fd(), &plan.mounts)?;
        }
    }
    Ok(())
}

/// A recursive rootfsPropagation (rprivate, rshared, ...) reaches every
/// mount below "/": a mount's own propagation option is put back on top,
/// as runc keeps it. Only the last mount on a destination is visible there.
fn reapply_mount_propagation(root: BorrowedFd, mounts: &[mount::MountStep]) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if m.opts.propagation.is_empty() || mounts[i + 1..].iter().any(|n| n.dest == m.dest) {
            continue;
        }
        let rel = m.dest.strip_prefix("/").unwrap_or(&m.dest);
        let fd = match paths::openat2(root, rel, nix::fcntl::OFlag::O_PATH) {
            // Covered since by a later mount or masked path on a parent
            // (a tmpfs there has no such path): nothing left to set.
            Err(Errno::ENOENT) => continue,
            r => r.with_context(|| format!("open {}", m.dest.display()))?,
        };
        let at = paths::fd_path(fd.as_fd());
        for p in &m.opts.propagation {
            match nix::mount::mount(None::<&str>, &at, None::<&str>, *p, None::<&str>) {
                // No longer a mount there: a readonly or masked path was
                // bound over a parent since, and a recursive bind skips
                // unbindable mounts. Nothing left to set.
                Err(Errno::EINVAL) => break,
                r => r.with_context(|| format!("mounts: propagation of {}", m.dest.display()))?,
            }
        }
    }
    Ok(())
}

/// The host path of our own cgroup in hierarchy `h`, from our parsed
/// /proc/self/cgroup `own` ("/" when it has no line for `h`).
fn own_cgroup(own: &[(Vec<String>, String)], h: &HostMount) -> PathBuf {
    let own = crate::cgroup::own_path(own, &h.subsystems).unwrap_or("/");
    let rel = Path::new(own)
        .strip_prefix(&h.root)
        .unwrap_or(Path::new(""));
    h.point.join(rel)
}

/// Our /proc/self/cgroup, read once for all the hierarchies.
fn self_cgroup() -> Result<Vec<(Vec<String>, String)>> {
    Ok(crate::cgroup::parse_self_cgroup(
        &crate::cgroup::read_self_cgroup()?,
    ))
}

/// type "cgroup": what runc 1.1 does on each layout.
fn mount_cgroup(root: BorrowedFd, m: &MountStep, plan: &Plan) -> Result<()> {
    match &plan.cgroup {
        Layout::V2 { mount: v2_mount } => {
            let v2 = MountStep {
                kind: Kind::Other,
                fstype: "cgroup2".into(),
                ..m.clone()
            };
            match mount_plain(root, &v2).map(drop) {
                // A user namespace without its own cgroupns may not mount
                // cgroup2 (runc #2158): bind the host hierarchy instead, or our
                // own cgroup when a cgroupns was asked for (emulating it).
                Err(e) if is_errno(&e, &[Errno::EPERM, Errno::EBUSY]) => {
                    let src = if plan.cgroupns {
                        // Relative to "/", not to the mount's root (as before).
                        let top = HostMount {
                            root: "/".into(),
                            ..v2_mount.clone()
                        };
                        own_cgroup(&self_cgroup()?, &top)
                    } else {
                        v2_mount.point.clone()
                    };
                    let opts = Opts {
                        flags: m.opts.flags | MsFlags::MS_BIND,
                        ..m.opts.clone()
                    };
                    let bind = MountStep {
                        kind: Kind::Bind,
                        source: Some(src),
                        opts,
                        ..m.clone()
                    };
                    mount_plain(root, &bind).map(drop)
                }
                r => r,
            }
        }
        // A hybrid host's cgroup2 is not bound into containers, as in runc 1.1.
        Layout::V1 { hierarchies, .. } => mount_cgroup_v1(root, m, plan, hierarchies),
    }
}

/// v1: a tmpfs at the destination, one mount per hierarchy (a bind of our
/// own cgroup, or a fresh cgroup fs inside a cgroupns), symlinks for
/// co-mounted controllers, then the tmpfs itself made ro if asked.
fn mount_cgroup_v1(root: BorrowedFd, m: &MountStep, plan: &Plan, hs: &[HostMount]) -> Result<()> {
    let tmpfs_opts = Opts {
        flags: CGROUP_FLAGS,
        data: "mode=755".into(),
        propagation: m.opts.propagation.clone(),
        ..Opts::default()
    };
    let tmpfs = MountStep {
        kind: Kind::Tmpfs,
        fstype: "tmpfs".into(),
        source: Some("tmpfs".into()),
        opts: tmpfs_opts,
        ..m.clone()
    };
    let own = if plan.cgroupns {
        None
    } else {
        Some(self_cgroup()?)
    };
    // The host directories to bind, opened before the tmpfs goes on: with
    // a shared rootfs propagation and the host's /sys bound in (a user
    // namespace without its own network namespace), the tmpfs propagates
    // over this namespace's /sys/fs/cgroup too and would hide them.
    let mut sources = Vec::new();
    for h in hs {
        let src = match own.as_deref() {
            Some(own) => {
                let path = own_cgroup(own, h);
                let flags = nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC;
                let fd = nix::fcntl::open(&path, flags, nix::sys::stat::Mode::empty())
                    .with_context(|| format!("open {}", path.display()))?;
                Some(fd)
            }
            None => None,
        };
        sources.push(src);
    }
    // Everything below is made relative to the fresh tmpfs: no hierarchy
    // walks the container's /sys again.
    let cg = mount_plain(root, &tmpfs)?.reopen(root)?;
    for (h, src) in hs.iter().zip(&sources) {
        let src = src.as_ref().map(|fd| fd_path(fd.as_fd()));
        mount_hierarchy(root, cg.as_fd(), m, src, h)?;
    }
    if m.opts.flags.contains(MsFlags::MS_RDONLY) {
        // GHSA-m8cg-xc2p-r3fc: a writable tmpfs here would let the container
        // plant files where tools expect the cgroup tree.
        let flags = CGROUP_FLAGS | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        let at = fd_path(cg.as_fd());
        nix::mount::mount(None::<&str>, &at, None::<&str>, flags, Some("mode=755"))
            .context("remount cgroup tmpfs read-only")?;
    }
    Ok(())
}

/// The flags runc gives cgroup mounts and their tmpfs.
const CGROUP_FLAGS: MsFlags = MsFlags::MS_NOEXEC
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV);

/// One v1 hierarchy: a fresh cgroup fs inside a cgroupns (it shows only our
/// subtree; `src` is None), else a bind of our own cgroup directory from the
/// host (`src`: its path, an fd opened beforehand). `cg` is the cgroup tmpfs
/// at `m.dest`.
fn mount_hierarchy(
    root: BorrowedFd,
    cg: BorrowedFd,
    m: &MountStep,
    src: Option<PathBuf>,
    h: &HostMount,
) -> Result<()> {
    let name = h.point.file_name().unwrap_or_default();
    let dest = m.dest.join(name);
    let subsystems = h.subsystems.join(",");
    let t = mkdir_below(root, cg, &dest, Leaf::Dir)?;
    if let Some(src) = src {
        let flags = m.opts.flags | MsFlags::MS_BIND | MsFlags::MS_REC;
        let bind = MountStep {
            kind: Kind::Bind,
            source: Some(src),
            dest: dest.clone(),
            opts: Opts {
                flags,
                ..m.opts.clone()
            },
            src_is_dir: true,
            ..m.clone()
        };
        mount_at(root, &bind, t).with_context(|| format!("bind cgroup on {}", dest.display()))?;
    } else {
        let flags = CGROUP_FLAGS | (m.opts.flags & MsFlags::MS_RDONLY);
        let at = fd_path(t.fd.as_fd());
        nix::mount::mount(
            Some("cgroup"),
            &at,
            Some("cgroup"),
            flags,
            Some(subsystems.as_str()),
        )
        .with_context(|| format!("mount cgroup {subsystems} on {}", dest.display()))?;
    }
    // Co-mounted controllers ("cpu,cpuacct") also get a link per controller,
    // where tools look for them.
    let name = name.to_string_lossy();
    if name.contains(',') {
        for ss in name.split(',') {
            match nix::unistd::symlinkat(name.as_ref(), cg, ss) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e).with_context(|| format!("symlink {ss} -> {name}")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn plan_without_mount_namespace_refuses_mounts_and_valid_propagation() {
        let p = plan(
            &spec(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"}]}}"#),
            Path::new("/r"),
            false,
        );
        assert!(!p.unwrap().mount_ns);
        for (extra, field) in [
            (
                r#""mounts":[{"destination":"/proc","type":"proc"}]"#,
                "mounts: ",
            ),
            (r#""maskedPaths":["/proc/kcore"]"#, "linux.maskedPaths: "),
            (r#""readonlyPaths":["/proc/sys"]"#, "linux.readonlyPaths: "),
            (
                r#""rootfsPropagation":"private""#,
                "linux.rootfsPropagation: ",
            ),
            (r#""root":{"path":"r","readonly":true}"#, "root.readonly: "),
        ] {
            let (top, linux) =
                match extra.starts_with(r#""mounts""#) || extra.starts_with(r#""root""#) {
                    true => (format!("{extra},"), String::new()),
                    false => (String::new(), format!(",{extra}")),
                };
            let json =
                format!(r#"{{"ociVersion":"1.0.2",{top}"linux":{{"namespaces":[]{linux}}}}}"#);
            let e = plan(&spec(&json), Path::new("/r"), false);
            let e = e.unwrap_err().to_string();
            assert!(e.starts_with(field) && e.contains("mount namespace"), "{e}");
        }
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"mount"}],"rootfsPropagation":"x"}}"#,
        );
        assert_eq!(
            plan(&s, Path::new("/r"), false).unwrap_err().to_string(),
            "linux.rootfsPropagation: invalid value \"x\""
        );
    }

    #[test]
    fn plan_compiles_everything() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},"process":{"terminal":true,"user":{"uid":0,"gid":0},"cwd":"/","args":["sh"]},
            "mounts":[{"destination":"/dev","type":"bind","source":"/dev","options":["rbind"]},
                      {"destination":"/tmp","type":"tmpfs","source":"tmpfs","options":["ro","nosuid","mode=1777"]}],
            "linux":{"namespaces":[{"type":"mount"},{"type":"user"}],"rootfsPropagation":"rshared",
                     "maskedPaths":["/proc/kcore"],"readonlyPaths":["/proc/sys"]}}"#,
        );
        let p = plan(&s, Path::new("/r"), true).unwrap();
        assert!(p.readonly_root && p.terminal && p.no_pivot && p.bind_devices);
        assert!(
            !p.setup_dev,
            "a bind mount at /dev means the host's /dev is used"
        );
        assert_eq!(
            p.root_propagation,
            Some(MsFlags::MS_SHARED | MsFlags::MS_REC)
        );
        assert_eq!(
            p.mounts[1].opts.flags,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID
        );
        assert_eq!(p.mounts[1].opts.data, "mode=1777");
        assert_eq!(
            (p.masked[0].to_str(), p.readonly[0].to_str()),
            (Some("/proc/kcore"), Some("/proc/sys"))
        );
        assert_eq!(p.devices.len(), 6);
        let bad = spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/x","type":"tmpfs","options":["idmap"]}],"linux":{"namespaces":[{"type":"mount"}]}}"#,
        );
        assert!(
            plan(&bad, Path::new("/r"), false)
                .unwrap_err()
                .to_string()
                .starts_with("mounts[0]: ")
        );
    }
}
