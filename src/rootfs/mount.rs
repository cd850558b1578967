//! Runs in: the runtime (compile, pure) and container init before pivot_root (mount).
//!
//! OCI mount options become `MsFlags` + a data string + propagation changes +
//! recursive attributes, with runc 1.1's tables (libcontainer/specconv).
//! Targets are always reached through an fd from `paths::mkdir_all`.

use super::Plan;
use super::idmap::Prepared;
use super::paths::{self, Leaf, NotPlainDir, Target, fd_path, mkdir_all};
use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::fstat;
use oci_spec::runtime::Mount;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// The kernel's mount_setattr(2) argument (linux/mount.h).
#[repr(C)]
pub(super) struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

// MOUNT_ATTR_* from linux/mount.h.
const ATTR_RDONLY: u64 = 0x1;
const ATTR_NOSUID: u64 = 0x2;
const ATTR_NODEV: u64 = 0x4;
const ATTR_NOEXEC: u64 = 0x8;
const ATTR_ATIME: u64 = 0x70;
const ATTR_RELATIME: u64 = 0x0;
const ATTR_NOATIME: u64 = 0x10;
const ATTR_STRICTATIME: u64 = 0x20;
const ATTR_NODIRATIME: u64 = 0x80;
const ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// MS_NOSYMFOLLOW (Linux 5.10), which nix's MsFlags does not name.
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// Parsed `options` of one mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opts {
    pub flags: MsFlags,
    pub data: String,
    pub propagation: Vec<MsFlags>,
    /// mount_setattr(AT_RECURSIVE) attributes to set and clear ("rro", ...).
    pub rec_set: u64,
    pub rec_clr: u64,
    /// "idmap" (false) or "ridmap" (true, recursive).
    pub idmap: Option<bool>,
    /// "tmpcopyup": a tmpfs starts with a copy of what it covers (copyup.rs).
    pub copy_up: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            flags: MsFlags::empty(),
            data: String::new(),
            propagation: Vec::new(),
            rec_set: 0,
            rec_clr: 0,
            idmap: None,
            copy_up: false,
        }
    }
}

/// (name, clear?, flag) for each flag option, as runc's table.
const FLAG_OPTIONS: &[(&str, bool, MsFlags)] = &[
    ("acl", false, MsFlags::MS_POSIXACL),
    ("noacl", true, MsFlags::MS_POSIXACL),
    ("async", true, MsFlags::MS_SYNCHRONOUS),
    ("sync", false, MsFlags::MS_SYNCHRONOUS),
    ("atime", true, MsFlags::MS_NOATIME),
    ("noatime", false, MsFlags::MS_NOATIME),
    ("bind", false, MsFlags::MS_BIND),
    ("rbind", false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("defaults", false, MsFlags::empty()),
    ("dev", true, MsFlags::MS_NODEV),
    ("nodev", false, MsFlags::MS_NODEV),
    ("diratime", true, MsFlags::MS_NODIRATIME),
    ("nodiratime", false, MsFlags::MS_NODIRATIME),
    ("dirsync", false, MsFlags::MS_DIRSYNC),
    ("exec", true, MsFlags::MS_NOEXEC),
    ("noexec", false, MsFlags::MS_NOEXEC),
    ("iversion", false, MsFlags::MS_I_VERSION),
    ("noiversion", true, MsFlags::MS_I_VERSION),
    ("lazytime", false, MsFlags::MS_LAZYTIME),
    ("nolazytime", true, MsFlags::MS_LAZYTIME),
    ("loud", true, MsFlags::MS_SILENT),
    ("silent", false, MsFlags::MS_SILENT),
    ("mand", false, MsFlags::MS_MANDLOCK),
    ("nomand", true, MsFlags::MS_MANDLOCK),
    ("relatime", false, MsFlags::MS_RELATIME),
    ("norelatime", true, MsFlags::MS_RELATIME),
    ("strictatime", false, MsFlags::MS_STRICTATIME),
    ("nostrictatime", true, MsFlags::MS_STRICTATIME),
    ("remount", false, MsFlags::MS_REMOUNT),
    ("ro", false, MsFlags::MS_RDONLY),
    ("rw", true, MsFlags::MS_RDONLY),
    ("suid", true, MsFlags::MS_NOSUID),
    ("nosuid", false, MsFlags::MS_NOSUID),
    ("nosymfollow", false, MS_NOSYMFOLLOW),
    ("symfollow", true, MS_NOSYMFOLLOW),
];

fn flag_option(o: &str) -> Option<(bool, MsFlags)> {
    (FLAG_OPTIONS.iter().find(|r| r.0 == o)).map(|r| (r.1, r.2))
}

/// Propagation options; also used for linux.rootfsPropagation.
const PROPAGATION_OPTIONS: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

pub fn propagation_option(o: &str) -> Option<MsFlags> {
    (PROPAGATION_OPTIONS.iter().find(|r| r.0 == o)).map(|r| r.1)
}

/// (name, clear?, MOUNT_ATTR_*) for the recursive variants (runc 1.1's recAttrFlags).
const REC_OPTIONS: &[(&str, bool, u64)] = &[
    ("rro", false, ATTR_RDONLY),
    ("rrw", true, ATTR_RDONLY),
    ("rnosuid", false, ATTR_NOSUID),
    ("rsuid", true, ATTR_NOSUID),
    ("rnodev", false, ATTR_NODEV),
    ("rdev", true, ATTR_NODEV),
    ("rnoexec", false, ATTR_NOEXEC),
    ("rexec", true, ATTR_NOEXEC),
    ("rnodiratime", false, ATTR_NODIRATIME),
    ("rdiratime", true, ATTR_NODIRATIME),
    ("rrelatime", false, ATTR_RELATIME),
    ("rnorelatime", true, ATTR_RELATIME),
    ("rnoatime", false, ATTR_NOATIME),
    ("ratime", true, ATTR_NOATIME),
    ("rstrictatime", false, ATTR_STRICTATIME),
    ("rnostrictatime", true, ATTR_STRICTATIME),
    ("rnosymfollow", false, ATTR_NOSYMFOLLOW),
    ("rsymfollow", true, ATTR_NOSYMFOLLOW),
];

fn rec_option(o: &str) -> Option<(bool, u64)> {
    (REC_OPTIONS.iter().find(|r| r.0 == o)).map(|r| (r.1, r.2))
}

/// Options handled by name in `parse_options`, outside the tables.
const TMPCOPYUP: &str = "tmpcopyup";
const IDMAP: &str = "idmap";
const RIDMAP: &str = "ridmap";

/// Every option `parse_options` recognizes (never passed on as filesystem
/// data), sorted: what `skiff features` lists as mountOptions.
pub fn known_options() -> Vec<&'static str> {
    let mut v: Vec<&str> = (FLAG_OPTIONS.iter().map(|r| r.0))
        .chain(PROPAGATION_OPTIONS.iter().map(|r| r.0))
        .chain(REC_OPTIONS.iter().map(|r| r.0))
        .chain([TMPCOPYUP, IDMAP, RIDMAP])
        .collect();
    v.sort_unstable();
    v
}

/// Adds one recursive attribute. The atime modes (relatime, noatime,
/// strictatime) are one field to mount_setattr(2): changing it needs all
/// of MOUNT_ATTR__ATIME in attr_clr, or EINVAL. So setting a mode clears
/// the others, and clearing one ("ratime", "rnostrictatime") goes back to
/// the default, relatime (runc 1.1 passes the single bit: EINVAL).
/// "rnorelatime" clears relatime, which is no bit: nothing changes.
fn rec_attr(o: &mut Opts, clear: bool, a: u64) {
    let atime = a & ATTR_ATIME == a;
    match (atime, clear) {
        (true, false) => {
            o.rec_clr |= ATTR_ATIME;
            o.rec_set = (o.rec_set & !ATTR_ATIME) | a;
        }
        (true, true) if a != ATTR_RELATIME => {
            o.rec_clr |= ATTR_ATIME;
            if o.rec_set & ATTR_ATIME == a {
                o.rec_set &= !ATTR_ATIME;
            }
        }
        (true, true) => {}
        (false, false) => o.rec_set |= a,
        (false, true) => o.rec_clr |= a,
    }
}

/// Pure: options → flags, data, propagation, recursive attributes. Anything
/// not in the tables is filesystem data (e.g. "mode=755"), as in runc.
/// Every option runtime-spec lists (config.md, "mounts") is in a table,
/// is "idmap"/"ridmap" or "tmpcopyup" (tmpfs only): none becomes data,
/// which the filesystem would either reject or silently ignore.
pub fn parse_options(options: &[String]) -> Result<Opts, String> {
    let mut o = Opts::default();
    let mut data = Vec::new();
    for opt in options {
        if let Some((clear, f)) = flag_option(opt) {
            o.flags = if clear { o.flags - f } else { o.flags | f };
        } else if let Some(p) = propagation_option(opt) {
            o.propagation.push(p);
        } else if let Some((clear, a)) = rec_option(opt) {
            rec_attr(&mut o, clear, a);
        } else if opt == TMPCOPYUP {
            o.copy_up = true;
        } else if opt == IDMAP || opt == RIDMAP {
            o.idmap = Some(opt == RIDMAP);
        } else if opt.is_empty() || opt.contains(',') {
            return Err(format!("invalid mount option {opt:?}"));
        } else {
            data.push(opt.as_str());
        }
    }
    o.data = data.join(",");
    Ok(o)
}

/// How a mount is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bind,
    Proc,
    Sysfs,
    Tmpfs,
    Cgroup,
    Other,
}

/// One compiled spec mount.
#[derive(Debug, Clone)]
pub struct MountStep {
    /// Index in spec.mounts, for error messages.
    pub index: usize,
    pub source: Option<PathBuf>,
    /// Absolute and lexically clean, in container terms.
    pub dest: PathBuf,
    pub fstype: String,
    pub kind: Kind,
    pub opts: Opts,
    /// Bind source is a directory (else a file is created as the mountpoint).
    pub src_is_dir: bool,
    /// An idmapped bind mount, made by the runtime (idmap.rs).
    pub idmap: Option<super::idmap::Idmap>,
}

/// Pure-ish (stats bind sources): validates and compiles `mounts[index]`.
/// Relative bind sources are relative to `cwd` (runc runs in the bundle).
/// `userns` is the container's (uid_map, gid_map) text, for a bare "idmap".
pub fn compile(
    index: usize,
    m: &Mount,
    cwd: &Path,
    userns: Option<(&str, &str)>,
) -> Result<MountStep> {
    let field = format!("mounts[{index}]");
    let mut opts = parse_options(m.options().as_deref().unwrap_or(&[]))
        .map_err(|e| anyhow!("{field}: {e}"))?;
    let fstype = m.typ().clone().unwrap_or_default();
    let bind = fstype == "bind" || opts.flags.contains(MsFlags::MS_BIND);
    if !m.destination().is_absolute() {
        // runc 1.1 warns and resolves it relative to "/"; so do we.
        let d = m.destination().display();
        crate::log::warn(&format!(
            "{field}.destination: {d:?} is not absolute, using \"/{d}\""
        ));
    }
    let dest = paths::clean(m.destination());
    if dest == Path::new("/") {
        bail!("{field}.destination: mounting over the container root \"/\" is not supported");
    }
    let kind = match fstype.as_str() {
        _ if bind => Kind::Bind,
        "proc" => Kind::Proc,
        "sysfs" => Kind::Sysfs,
        "tmpfs" => Kind::Tmpfs,
        "cgroup" => Kind::Cgroup,
        "" => bail!("{field}.type: required unless the mount is a bind mount"),
        _ => Kind::Other,
    };
    if opts.copy_up && kind != Kind::Tmpfs {
        bail!("{field}.options: \"tmpcopyup\" is only for tmpfs mounts");
    }
    let mut source = m.source().clone();
    let mut src_is_dir = true;
    if bind {
        opts.flags |= MsFlags::MS_BIND;
        let src = source.ok_or_else(|| anyhow!("{field}.source: a bind mount needs a source"))?;
        let src = if src.is_absolute() {
            src
        } else {
            cwd.join(src)
        };
        // Follows symlinks, like runc's os.Stat: the mountpoint must match what is mounted.
        let meta = std::fs::metadata(&src)
            .with_context(|| format!("{field}.source: stat {}", src.display()))?;
        src_is_dir = meta.is_dir();
        source = Some(src);
    }
    if matches!(kind, Kind::Bind | Kind::Other) {
        check_proc_mount(&dest, source.as_deref())
            .map_err(|e| anyhow!("{field}.destination: {e}"))?;
    }
    let idmap = super::idmap::compile(&field, m, &opts, kind, userns)?;
    Ok(MountStep {
        index,
        source,
        dest,
        fstype,
        kind,
        opts,
        src_is_dir,
        idmap,
    })
}

/// runc's checkProcMount: nothing may be mounted inside /proc (it would hide
/// or fake kernel interfaces), except the files lxcfs emulates; over /proc
/// itself only another procfs.
fn check_proc_mount(dest: &Path, source: Option<&Path>) -> Result<(), String> {
    const LXCFS: [&str; 10] = [
        "/proc/cpuinfo",
        "/proc/diskstats",
        "/proc/meminfo",
        "/proc/stat",
        "/proc/swaps",
        "/proc/uptime",
        "/proc/loadavg",
        "/proc/slabinfo",
        "/proc/net/dev",
        "/proc/sys/kernel/ns_last_pid",
    ];
    if !dest.starts_with("/proc") || LXCFS.iter().any(|p| dest == Path::new(p)) {
        return Ok(());
    }
    if dest == Path::new("/proc") {
        let is_proc = source
            .and_then(|s| nix::sys::statfs::statfs(s).ok())
            .is_some_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
        return if is_proc {
            Ok(())
        } else {
            Err("\"/proc\" cannot be mounted because it is not of type proc".into())
        };
    }
    Err(format!(
        "{:?} cannot be mounted because it is inside /proc",
        dest.display().to_string()
    ))
}

/// Carries out one spec mount (or the cgroup mounts it stands for).
pub fn mount_step(root: BorrowedFd, m: &MountStep, plan: &Plan, idmapped: &Prepared) -> Result<()> {
    let what = || {
        format!(
            "mounts[{}]: mount {} on {}",
            m.index,
            m.source
                .as_deref()
                .unwrap_or(Path::new(&m.fstype))
                .display(),
            m.dest.display()
        )
    };
    match m.kind {
        Kind::Cgroup => super::mount_cgroup(root, m, plan).with_context(what),
        Kind::Sysfs => match mount_plain(root, m) {
            // Without a network namespace of its own, a user namespace may
            // not mount sysfs; bind the host's /sys instead (runc does too).
            Err(e) if is_errno(&e, &[Errno::EPERM, Errno::EBUSY]) => {
                let mut flags = m.opts.flags | MsFlags::MS_BIND | MsFlags::MS_REC;
                flags.remove(MsFlags::MS_REMOUNT);
                let bind = MountStep {
                    kind: Kind::Bind,
                    source: Some("/sys".into()),
                    opts: Opts {
                        flags,
                        ..m.opts.clone()
                    },
                    ..m.clone()
                };
                mount_plain(root, &bind).map(drop).with_context(what)
            }
            r => r.map(drop).with_context(what),
        },
        // Made by the runtime (idmap.rs `prepare`): attached with move_mount.
        _ if m.idmap.is_some() || idmapped.iter().any(|(i, _)| *i == m.index) => {
            let fd = idmapped.iter().find(|(i, _)| *i == m.index);
            let fd = fd
                .context("idmapped mount was not prepared")
                .with_context(what)?;
            mount_any(root, m, Some(fd.1.as_fd()))
                .map(drop)
                .with_context(what)
        }
        _ => mount_plain(root, m).map(drop).with_context(what),
    }
}

pub fn is_errno(e: &anyhow::Error, set: &[Errno]) -> bool {
    e.chain()
        .any(|c| c.downcast_ref::<Errno>().is_some_and(|e| set.contains(e)))
}

/// Mounts one filesystem or bind mount on its fd-resolved target, then
/// applies propagation, the bind remount and recursive attributes. Returns
/// the target: its `reopen` reaches the new mount.
pub fn mount_plain(root: BorrowedFd, m: &MountStep) -> Result<Target> {
    mount_any(root, m, None)
}

/// `mount_plain`, or with `detached`, attaching that mount (move_mount) instead.
fn mount_any(root: BorrowedFd, m: &MountStep, detached: Option<BorrowedFd>) -> Result<Target> {
    let target = open_target(root, m)?;
    mount_on(root, m, target, detached)
}

/// `mount_plain` on a target the caller already resolved (`paths::mkdir_all`
/// or `paths::mkdir_below`).
pub fn mount_at(root: BorrowedFd, m: &MountStep, target: Target) -> Result<Target> {
    mount_on(root, m, target, None)
}

fn mount_on(
    root: BorrowedFd,
    m: &MountStep,
    target: Target,
    detached: Option<BorrowedFd>,
) -> Result<Target> {
    // A tmpfs over an existing directory keeps the image's mode (runc),
    // unless the options set one.
    let keep_mode =
        m.kind == Kind::Tmpfs && !m.opts.data.split(',').any(|d| d.starts_with("mode="));
    let old_mode = match keep_mode && !target.created {
        true => Some(nix::sys::stat::fstat(target.fd.as_fd())?.st_mode & 0o7777),
        false => None,
    };
    let mut flags = m.opts.flags;
    // tmpfs and /dev stay writable until finalize: we still create files in them.
    if m.kind == Kind::Tmpfs || m.dest == Path::new("/dev") {
        flags.remove(MsFlags::MS_RDONLY);
    }
    let data = (!m.opts.data.is_empty()).then_some(m.opts.data.as_str());
    let src = m.source.clone().unwrap_or_else(|| PathBuf::from(&m.fstype));
    let fstype = (m.kind != Kind::Bind).then_some(m.fstype.as_str());
    match detached {
        Some(fd) => move_mount(fd, target.fd.as_fd())?,
        None => mount(Some(&src), &fd_path(target.fd.as_fd()), fstype, flags, data)?,
    }
    let extra = flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    let remount = m.kind == Kind::Bind && !extra.is_empty();
    let rec = m.opts.rec_set != 0 || m.opts.rec_clr != 0;
    if m.opts.copy_up && !target.created {
        // The old fd still reaches the covered directory.
        let mounted = target.reopen(root)?;
        super::copyup::copy_dir(target.fd.as_fd(), mounted.as_fd())?;
    }
    if old_mode.is_some() || !m.opts.propagation.is_empty() || remount || rec {
        // The old fd is below the new mount; reopen to act on the mount itself.
        let mounted = target.reopen(root)?;
        after_mount(mounted.as_fd(), m, flags, old_mode, remount)?;
    }
    Ok(target)
}

/// The steps after the mount itself, on the new mount `at`: the kept mode,
/// propagation, the bind remount and recursive attributes.
fn after_mount(
    at: BorrowedFd,
    m: &MountStep,
    flags: MsFlags,
    old_mode: Option<u32>,
    remount: bool,
) -> Result<()> {
    let path = fd_path(at);
    if let Some(mode) = old_mode {
        let mode = nix::sys::stat::Mode::from_bits_truncate(mode);
        let follow = nix::sys::stat::FchmodatFlags::FollowSymlink;
        nix::sys::stat::fchmodat(nix::fcntl::AT_FDCWD, &path, mode, follow).context("chmod")?;
    }
    for p in &m.opts.propagation {
        mount(None::<&str>, &path, None::<&str>, *p, None::<&str>)
            .context("change mount propagation")?;
    }
    if remount {
        bind_remount(at, flags)?;
    }
    if m.opts.rec_set != 0 || m.opts.rec_clr != 0 {
        set_rec_attr(at, m.opts.rec_set, m.opts.rec_clr)?;
    }
    Ok(())
}

/// Resolves (creating if needed) the mount target: a file for a file bind
/// source; for procfs and sysfs, an ordinary directory reached without a
/// final symlink, which has been a "fun" attack in the past (runc's Lstat check).
fn open_target(root: BorrowedFd, m: &MountStep) -> Result<Target> {
    let leaf = match m.kind {
        Kind::Bind if !m.src_is_dir => Leaf::File,
        Kind::Proc | Kind::Sysfs => Leaf::PlainDir,
        _ => Leaf::Dir,
    };
    let target = match mkdir_all(root, &m.dest, leaf) {
        Err(e) if e.downcast_ref::<NotPlainDir>().is_some() => bail!(
            "filesystem {:?} must be mounted on ordinary directory",
            m.fstype
        ),
        r => r?,
    };
    // A destination that resolves (through a symlink in the image, such as
    // /mnt -> /) to the rootfs itself would hide the whole root under the
    // new mount; setup would then fail far away (open /dev/null: ENOENT).
    let (r, t) = (fstat(root)?, fstat(target.fd.as_fd())?);
    if (r.st_dev, r.st_ino) == (t.st_dev, t.st_ino) {
        bail!(
            "destination {:?} resolves to \"/\" in the rootfs (the container's root \
             directory, through a symlink): a mount there would hide the whole rootfs",
            m.dest.display().to_string()
        );
    }
    Ok(target)
}

/// A bind mount ignores most flags; a second MS_REMOUNT|MS_BIND applies them.
/// In a user namespace, flags inherited from a more privileged mount are
/// locked, so on EPERM retry keeping them (runc reads them with statfs).
fn bind_remount(target: BorrowedFd, flags: MsFlags) -> Result<()> {
    let flags = (flags - MsFlags::MS_REC) | MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    let at = fd_path(target);
    match mount(None::<&str>, &at, None::<&str>, flags, None::<&str>) {
        Err(Errno::EPERM) => {
            let flags = flags | paths::locked_flags(target)?;
            mount(None::<&str>, &at, None::<&str>, flags, None::<&str>)
                .context("remount bind mount")
        }
        r => r.context("remount bind mount"),
    }
}

/// Attaches a detached mount (open_tree) on the resolved target fd.
fn move_mount(from: BorrowedFd, to: BorrowedFd) -> Result<()> {
    const F_EMPTY_PATH: libc::c_uint = 0x4;
    const T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: two valid fds and empty NUL-terminated paths; the kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            F_EMPTY_PATH | T_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop).context("move_mount")
}

/// mount_setattr(AT_RECURSIVE) for the "rro"-style options.
fn set_rec_attr(target: BorrowedFd, set: u64, clr: u64) -> Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a valid fd, a NUL-terminated empty path and a live MountAttr
    // whose size is passed; the kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            target.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r)
        .map(drop)
        .context("mount_setattr (recursive mount options)")
}

#[cfg(test)]
#[path = "mount_tests.rs"]
mod tests;
