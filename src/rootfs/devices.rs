//! Runs in: the runtime (compile, pure) and container init before pivot_root (/dev setup);
//! `mount_console` runs in init after pivot_root.
//!
//! Device nodes are made with mknod, or bind-mounted from the host when a
//! user namespace forbids mknod. Every node is created through a resolved
//! parent-directory fd, never through a joined path string.

use super::Plan;
use super::paths::{Leaf, fd_path, kind_of, mkdir_all, mkdir_below, open_root, openat2};
use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, fstat, makedev, mknodat, umask};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, symlinkat, unlinkat};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// One device node to create, decided before fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Absolute and clean, in container terms (also the host path when bound).
    pub path: PathBuf,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    /// Permission bits only.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// runc's default devices (specconv.AllowedDevices with a path).
pub fn defaults() -> Vec<Device> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Device {
        path: PathBuf::from("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// Pure: the defaults (minus those the spec redefines; the spec wins, as in
/// runc), then linux.devices in order.
pub fn compile(spec: &[LinuxDevice]) -> Result<Vec<Device>> {
    let mut out: Vec<Device> = defaults()
        .into_iter()
        .filter(|d| !spec.iter().any(|s| s.path() == &d.path))
        .collect();
    for (i, d) in spec.iter().enumerate() {
        let field = format!("linux.devices[{i}]");
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => bail!("{field}.type: invalid value \"a\""),
        };
        if !d.path().is_absolute() || super::paths::clean(d.path()) == Path::new("/") {
            bail!(
                "{field}.path: must be an absolute path below \"/\", got {:?}",
                d.path().display().to_string()
            );
        }
        let (Ok(major), Ok(minor)) = (u64::try_from(d.major()), u64::try_from(d.minor())) else {
            bail!("{field}: negative major or minor number");
        };
        out.push(Device {
            path: super::paths::clean(d.path()),
            kind,
            major,
            minor,
            mode: d.file_mode().map_or(0o666, |m| m & 0o7777),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    Ok(out)
}

/// The /dev symlinks runc makes; /dev/core only if the host has /proc/kcore.
pub fn symlinks(kcore: bool) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if kcore {
        v.push(("/proc/kcore", "core"));
    }
    v
}

/// Populates /dev: nodes, /dev/pts, the ptmx symlink, the fd symlinks, and
/// the /dev/console mountpoint when a terminal is wanted.
pub fn setup_dev(root: BorrowedFd, plan: &Plan) -> Result<()> {
    // Exact modes from the config: a umask would silently clear bits.
    let old = umask(Mode::empty());
    let r = create_all(root, plan);
    umask(old);
    r
}

fn create_all(root: BorrowedFd, plan: &Plan) -> Result<()> {
    // /dev is resolved once; nodes directly in it are made relative to it.
    let dev = mkdir_all(root, Path::new("/dev"), Leaf::Dir)?.fd;
    for d in &plan.devices {
        create_device(root, dev.as_fd(), d, plan.bind_devices, plan.mount_ns)
            .with_context(|| format!("create device {}", d.path.display()))?;
    }
    mkdir_below(root, dev.as_fd(), Path::new("/dev/pts"), Leaf::Dir)?;
    // The pty multiplexer must be the one of the container's devpts instance.
    match unlinkat(dev.as_fd(), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).context("remove /dev/ptmx"),
    }
    symlinkat("pts/ptmx", dev.as_fd(), "ptmx").context("symlink /dev/ptmx")?;
    for (target, name) in symlinks(Path::new("/proc/kcore").exists()) {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("symlink /dev/{name} -> {target}")),
        }
    }
    if plan.terminal {
        // The mountpoint mount_console binds the pty slave over: never
        // opened for I/O (an image's own node could be the host's console).
        console_target(dev.as_fd())?;
    }
    Ok(())
}

/// Makes one node; `dev` is the resolved /dev, the parent of most of them.
/// `may_bind`: there is a mount namespace of ours to bind host nodes in.
fn create_device(
    root: BorrowedFd,
    dev: BorrowedFd,
    d: &Device,
    bind: bool,
    may_bind: bool,
) -> Result<()> {
    let parent = match d.path.parent().unwrap_or(Path::new("/")) {
        p if p == Path::new("/dev") => dev.try_clone_to_owned().context("dup /dev fd")?,
        p => mkdir_all(root, p, Leaf::Dir)?.fd,
    };
    let name = d.path.file_name().context("device path has no name")?;
    if bind {
        return bind_device(parent.as_fd(), d);
    }
    let mode = Mode::from_bits_truncate(d.mode);
    let dev = makedev(d.major, d.minor);
    match mknodat(parent.as_fd(), name, d.kind, mode, dev) {
        // An existing node is kept, as runc does.
        Err(Errno::EEXIST) => return Ok(()),
        // Not allowed to mknod (e.g. we are in a user namespace): bind
        // instead, unless the bind would land in the host's mount namespace.
        Err(Errno::EPERM) if may_bind => return bind_device(parent.as_fd(), d),
        r => r.context("mknod")?,
    }
    let (uid, gid) = (Some(Uid::from_raw(d.uid)), Some(Gid::from_raw(d.gid)));
    fchownat(
        parent.as_fd(),
        name,
        uid,
        gid,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .context("chown")?;
    Ok(())
}

/// Binds the host node at the same path over an empty file, made and then
/// opened (never through a symlink) in the resolved `parent` directory.
fn bind_device(parent: BorrowedFd, d: &Device) -> Result<()> {
    let name = d.path.file_name().context("device path has no name")?;
    let flags = OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    nix::fcntl::openat(parent, name, flags, Mode::empty()).context("create bind target")?;
    let target = openat2(parent, Path::new(name), OFlag::O_PATH | OFlag::O_NOFOLLOW)?;
    mount(
        Some(&d.path),
        &fd_path(target.as_fd()),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind host {}", d.path.display()))
}

/// Binds the pty slave over /dev/console (after pivot_root). The slave must
/// come from the container's devpts (/dev/ptmx opened after pivot, as runc
/// does): a bind source outside our mount namespace fails with EINVAL.
pub fn mount_console(slave: BorrowedFd) -> Result<()> {
    let st = fstat(slave).context("fstat console slave")?;
    if kind_of(st.st_mode) != SFlag::S_IFCHR {
        bail!("console slave is not a character device");
    }
    let root = open_root(Path::new("/"))?;
    let dev = mkdir_all(root.as_fd(), Path::new("/dev"), Leaf::Dir)?.fd;
    let target = console_target(dev.as_fd())?;
    mount(
        Some(&fd_path(slave)),
        &fd_path(target.as_fd()),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    // EINVAL: the pty is not from a devpts in this mount namespace; open it
    // through the container's /dev/ptmx after pivot_root.
    .context("bind console onto /dev/console")
}

/// An O_PATH fd of `console` in `dev`, which is never followed if it is a
/// symlink (CVE-2025-52565: the pty must land on /dev/console, not on what
/// an image or a racing process points it at): a symlink is replaced by an
/// empty file we create, as is a missing name. A plain file or a device
/// node is used as it is; a directory or anything else is refused. The
/// mount then goes through this fd, so a later swap of the name is moot.
fn console_target(dev: BorrowedFd) -> Result<OwnedFd> {
    let name = Path::new("console");
    let open = || {
        nix::fcntl::openat(
            dev,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    for _ in 0..3 {
        match open() {
            Ok(fd) => {
                let t = fstat(fd.as_fd()).context("fstat /dev/console")?;
                let kind = kind_of(t.st_mode);
                if kind == SFlag::S_IFREG || kind == SFlag::S_IFCHR {
                    return Ok(fd);
                }
                if kind != SFlag::S_IFLNK {
                    bail!("/dev/console is neither a regular file nor a device");
                }
                unlinkat(dev, name, UnlinkatFlags::NoRemoveDir)
                    .context("remove the /dev/console symlink")?;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e).context("open /dev/console"),
        }
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(dev, name, flags, Mode::from_bits_truncate(0o600)) {
            Ok(_) | Err(Errno::EEXIST) => {} // ours, or a racer's: look again
            Err(e) => return Err(e).context("create /dev/console"),
        }
    }
    bail!("/dev/console keeps changing under us")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(json: &str) -> LinuxDevice {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_are_runcs_six() {
        let d = defaults();
        let names: Vec<_> = d.iter().map(|d| d.path.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
        );
        assert!(
            d.iter()
                .all(|d| d.mode == 0o666 && d.kind == SFlag::S_IFCHR)
        );
        assert_eq!((d[0].major, d[0].minor), (1, 3));
        assert_eq!((d[5].major, d[5].minor), (5, 0));
    }

    #[test]
    fn spec_devices_override_defaults_and_append() {
        let spec = [
            dev(r#"{"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":8630,"uid":5}"#),
            dev(r#"{"path":"/dev/fuse","type":"c","major":10,"minor":229}"#),
            dev(r#"{"path":"/dev/sda","type":"b","major":8,"minor":0,"fileMode":432,"gid":6}"#),
            dev(r#"{"path":"/dev/fifo","type":"p","major":0,"minor":0}"#),
        ];
        let d = compile(&spec).unwrap();
        assert_eq!(d.len(), 5 + 4);
        assert!(!d[..5].iter().any(|d| d.path == Path::new("/dev/null")));
        let null = &d[5];
        // 8630 = 0o20666: the type bits of fileMode are dropped.
        assert_eq!((null.mode, null.uid), (0o666, 5));
        assert_eq!((d[6].mode, d[6].kind), (0o666, SFlag::S_IFCHR));
        assert_eq!((d[7].kind, d[7].mode, d[7].gid), (SFlag::S_IFBLK, 0o660, 6));
        assert_eq!(d[8].kind, SFlag::S_IFIFO);
    }

    #[test]
    fn bad_devices_name_the_field() {
        let e = compile(&[dev(r#"{"path":"/dev/x","type":"a","major":1,"minor":1}"#)]).unwrap_err();
        assert_eq!(e.to_string(), "linux.devices[0].type: invalid value \"a\"");
        let e = compile(&[dev(r#"{"path":"dev/x","type":"c","major":1,"minor":1}"#)]).unwrap_err();
        assert!(e.to_string().starts_with("linux.devices[0].path: "));
    }

    #[test]
    fn kcore_link_only_when_present() {
        assert_eq!(symlinks(false).len(), 4);
        assert_eq!(symlinks(true).last(), Some(&("/proc/kcore", "core")));
    }
}
