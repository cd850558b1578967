//! Runs in: container init, inside its new mount namespace (prepare before
//! the spec mounts, pivot after them).

use super::Plan;
use anyhow::{Context, Result};
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use std::path::Path;

/// Makes "/" rslave (or the asked propagation) so nothing we mount leaks to
/// the host, makes the rootfs' parent mount private, and binds the rootfs
/// onto itself so it is a mount point pivot_root(2) accepts.
/// An unbindable "/" (rootfsPropagation "unbindable"/"runbindable") would
/// make the self-bind fail with EINVAL: "/" is private until finalize
/// applies the asked propagation on the new root, after the pivot (crun's order).
pub fn prepare_root(plan: &Plan) -> Result<()> {
    let mut flags = plan
        .root_propagation
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    if flags.contains(MsFlags::MS_UNBINDABLE) {
        flags = (flags - MsFlags::MS_UNBINDABLE) | MsFlags::MS_PRIVATE;
    }
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).context("set propagation of /")?;
    // rslave or rprivate on "/" leaves no mount of ours shared: nothing to
    // look up in mountinfo (whose text the kernel builds for every mount).
    let none_shared = [MsFlags::MS_SLAVE, MsFlags::MS_PRIVATE].map(|p| p | MsFlags::MS_REC);
    if !none_shared.contains(&flags) {
        make_parent_private(&plan.rootfs)?;
    }
    let r = &plan.rootfs;
    mount(
        Some(r),
        r,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind {} onto itself", r.display()))
}

/// pivot_root(2) fails with EINVAL if the new root's parent mount is shared
/// (rootfsPropagation "shared" asks for exactly that); make it private.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let parent = crate::mountinfo::read()?
        .into_iter()
        .filter(|m| rootfs.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len());
    match parent {
        Some(m) if m.optional.iter().any(|o| o.starts_with("shared:")) => mount(
            None::<&str>,
            &m.mount_point,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .with_context(|| format!("make {} private", m.mount_point.display())),
        _ => Ok(()),
    }
}

/// Enters the rootfs: pivot_root, or MS_MOVE + chroot with --no-pivot, or
/// only chroot without a mount namespace (the host's mounts are not ours to move).
pub fn pivot(plan: &Plan) -> Result<()> {
    if !plan.mount_ns {
        chdir(&plan.rootfs).with_context(|| format!("chdir {}", plan.rootfs.display()))?;
        chroot(".").context("chroot")?;
        chdir("/").context("chdir /")
    } else if plan.no_pivot {
        move_root(&plan.rootfs)
    } else {
        pivot_into(&plan.rootfs)
    }
}

/// pivot_root(".", ".") stacks the old root on top of the new one at "/";
/// detaching it leaves the new root alone, without a put_old directory.
fn pivot_into(rootfs: &Path) -> Result<()> {
    let dir = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", dir, Mode::empty()).context("open /")?;
    let new =
        open(rootfs, dir, Mode::empty()).with_context(|| format!("open {}", rootfs.display()))?;
    fchdir(&new).context("fchdir to rootfs")?;
    pivot_root(".", ".").with_context(|| format!("pivot_root into {}", rootfs.display()))?;
    // The kernel does not promise where "." is now; go to the old root explicitly.
    fchdir(&old).context("fchdir to old root")?;
    // rslave, not rprivate: our unmount must not propagate to the host, yet
    // host unmounts still reach the old tree while we hold it (runc's reasoning).
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("make old root rslave")?;
    umount2(".", MntFlags::MNT_DETACH).context("detach old root")?;
    chdir("/").context("chdir /")
}

/// For --no-pivot (e.g. a ramfs root where pivot_root is impossible): move
/// the rootfs mount over "/" and chroot. Weaker: the old root stays reachable
/// to anyone who can escape the chroot.
///
/// The host's full procfs and sysfs mounts would stay reachable in this
/// mount namespace, and the kernel lets a new user namespace mount a fresh,
/// unmasked procfs wherever a full one is visible: detach them first (or,
/// where that is refused, cover them with a tmpfs), as runc does.
fn move_root(rootfs: &Path) -> Result<()> {
    for m in crate::mountinfo::read()? {
        let full_pseudo = m.root == "/" && (m.fstype == "proc" || m.fstype == "sysfs");
        if !full_pseudo || m.mount_point.starts_with(rootfs) {
            continue;
        }
        let p = &m.mount_point;
        // Our unmount must not propagate to the host.
        match mount(
            None::<&str>,
            p,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            // A parent already went: so did this one.
            Err(nix::errno::Errno::ENOENT) => continue,
            r => r.with_context(|| format!("--no-pivot: make {} rslave", p.display()))?,
        }
        match umount2(p, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => mount(
                Some("tmpfs"),
                p,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .with_context(|| format!("--no-pivot: cover {} with a tmpfs", p.display()))?,
            Err(e) => {
                return Err(e).with_context(|| format!("--no-pivot: detach {}", p.display()));
            }
        }
    }
    chdir(rootfs).with_context(|| format!("chdir {}", rootfs.display()))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .context("move rootfs to /")?;
    chroot(".").context("chroot")?;
    chdir("/").context("chdir /")
}

#[cfg(test)]
mod tests {
    //! Root-only smoke tests: a forked child (single-threaded, so unshare
    //! works) does the real thing and reports through its exit code.
    use super::super::{Plan, finalize, mount_console, plan, setup};
    use nix::sched::CloneFlags;
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::fs::FileTypeExt;
    use std::path::{Path, PathBuf};

    const CONFIG: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},
      "process":{"terminal":true,"user":{"uid":0,"gid":0},"cwd":"/","args":["sh"]},
      "mounts":[
        {"destination":"/proc","type":"proc","source":"proc"},
        {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},
        {"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]},
        {"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]},
        {"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]},
        {"destination":"/tmp","type":"tmpfs","source":"tmpfs","options":["mode=1777"]},
        {"destination":"/mnt/host","type":"bind","source":"/etc/hostname","options":["rbind","ro"]}],
      "linux":{"namespaces":[{"type":"mount"}],
        "maskedPaths":["/proc/version","/proc/fs","/proc/nonexistent"],
        "readonlyPaths":["/proc/sys"]}}"#;

    fn ro(p: &str) -> bool {
        nix::sys::statvfs::statvfs(p)
            .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    }

    fn is_chr(p: &str) -> bool {
        std::fs::metadata(p).is_ok_and(|m| m.file_type().is_char_device())
    }

    /// Checks inside the finished container; returns the failed check's number.
    fn check_common() -> Result<(), i32> {
        let checks = [
            (10, std::fs::metadata("/bin/busybox").is_ok()),
            (11, is_chr("/dev/null") && is_chr("/dev/tty")),
            (
                12,
                std::fs::read_link("/dev/ptmx").is_ok_and(|l| l == Path::new("pts/ptmx")),
            ),
            (13, ro("/") && !ro("/tmp")),
            (14, ro("/proc/sys") && ro("/sys")),
            (
                15,
                std::fs::read_to_string("/proc/version").is_ok_and(|s| s.is_empty()),
            ),
            (
                16,
                std::fs::read_dir("/proc/fs").is_ok_and(|d| d.count() == 0) && ro("/proc/fs"),
            ),
            (17, ro("/mnt/host") && std::fs::read_link("/dev/fd").is_ok()),
            (
                18,
                std::fs::read_dir("/sys/fs/cgroup").is_ok_and(|d| d.count() > 0)
                    && ro("/sys/fs/cgroup"),
            ),
        ];
        checks.iter().find(|c| !c.1).map_or(Ok(()), |c| Err(c.0))
    }

    /// With a cgroupns, v1 hierarchies are fresh cgroup mounts rooted at "/".
    fn check_cgroupns() -> Result<(), i32> {
        let mi = crate::procfs::read_text("/proc/self/mountinfo").map_err(|_| 20)?;
        let ok = mi
            .lines()
            .filter(|l| l.contains(" - cgroup "))
            .all(|l| l.split(' ').nth(3) == Some("/"));
        if ok { Ok(()) } else { Err(21) }
    }

    fn make_bundle(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("skiff-smoke-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs/bin")).unwrap();
        std::fs::copy("/bin/busybox", dir.join("rootfs/bin/busybox")).unwrap();
        dir
    }

    /// A pty slave fd from /dev/ptmx, standing in for the lead's console code.
    fn open_pty_slave() -> nix::Result<OwnedFd> {
        use nix::fcntl::OFlag;
        let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
        nix::pty::grantpt(&master)?;
        nix::pty::unlockpt(&master)?;
        let name = nix::pty::ptsname_r(&master)?;
        let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let slave = nix::fcntl::open(name.as_str(), flags, nix::sys::stat::Mode::empty())?;
        std::mem::forget(master); // keep the pty alive until _exit
        Ok(slave)
    }

    /// The child's whole life: namespaces, then the init call order.
    fn child(p: &Plan, ns: CloneFlags, check: fn() -> Result<(), i32>) -> i32 {
        let r = (|| {
            nix::sched::unshare(ns).map_err(|_| 2)?;
            setup(p, &Vec::new()).map_err(|e| report(3, e))?;
            super::pivot(p).map_err(|e| report(4, e))?;
            // As runc does: the pty comes from the container's own devpts.
            let slave = p.terminal.then(open_pty_slave).transpose().map_err(|_| 6)?;
            if let Some(s) = &slave {
                mount_console(s.as_fd()).map_err(|e| report(7, e))?;
                if !is_chr("/dev/console") {
                    return Err(8);
                }
            }
            finalize(p).map_err(|e| report(5, e))?;
            check_common()?;
            check()
        })();
        r.err().unwrap_or(0)
    }

    fn run(
        tag: &str,
        no_pivot: bool,
        ns: CloneFlags,
        edit: fn(&mut Plan),
        check: fn() -> Result<(), i32>,
    ) {
        if !nix::unistd::geteuid().is_root() || !Path::new("/bin/busybox").exists() {
            println!("skipped: needs root and /bin/busybox");
            return;
        }
        let dir = make_bundle(tag);
        let spec: oci_spec::runtime::Spec = serde_json::from_str(CONFIG).unwrap();
        let rootfs = dir.join("rootfs").canonicalize().unwrap();
        let mut p = plan(&spec, &rootfs, no_pivot).unwrap();
        edit(&mut p);
        // SAFETY: the child only makes syscalls on data prepared above and
        // then _exits; it never returns into libtest.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let code = child(&p, ns, check);
                // SAFETY: _exit skips libtest's state; always safe to call.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                let st = waitpid(child, None).unwrap();
                std::fs::remove_dir_all(&dir).unwrap();
                assert_eq!(
                    st,
                    WaitStatus::Exited(child, 0),
                    "exit code = failed step or check"
                );
            }
        }
    }

    #[test]
    fn smoke_pivot_console_mknod() {
        run("pivot", false, CloneFlags::CLONE_NEWNS, |_| {}, || Ok(()));
    }

    #[test]
    fn smoke_no_pivot_cgroupns_bound_devices() {
        let edit = |p: &mut Plan| {
            p.cgroupns = true;
            p.bind_devices = true;
            p.terminal = false;
        };
        run(
            "nopivot",
            true,
            CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWCGROUP,
            edit,
            check_cgroupns,
        );
    }

    fn report(code: i32, e: anyhow::Error) -> i32 {
        let msg = format!("smoke child: {e:#}\n");
        // SAFETY: writing a live buffer to fd 2; no locks involved.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
        code
    }
}
