//! Idmapped bind mounts (`mounts[i].uidMappings/gidMappings`, `idmap`,
//! `ridmap`). Runs in: the runtime (`prepare`, before stage-1 is forked)
//! and init (the detached mounts are attached with move_mount in
//! `mount::mount_plain`).
//!
//! mount_setattr(MOUNT_ATTR_IDMAP) needs CAP_SYS_ADMIN in the user namespace
//! of the source's superblock, which a process inside the container's user
//! namespace lacks; so the runtime makes the mounts. For each one it forks a
//! helper that unshares a user namespace and waits, writes the mount's maps
//! for it, takes /proc/<helper>/ns/user as the idmap, and kills it (runc
//! does the same; skiff has no threads, so a child, not a goroutine). The
//! detached mount fds are inherited by init, like every other fd.
use super::Plan;
use super::mount::{Kind, Opts};
use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::unistd::ForkResult;
use oci_spec::runtime::Mount;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// What `compile` decided for one idmapped mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idmap {
    pub recursive: bool,
    pub uid_map: String,
    pub gid_map: String,
}

/// runtime-spec: uidMappings and gidMappings come together and ask for an
/// idmapped mount; "idmap"/"ridmap" alone use the container's user namespace maps.
pub fn compile(
    field: &str,
    m: &Mount,
    opts: &Opts,
    kind: Kind,
    userns: Option<(&str, &str)>,
) -> Result<Option<Idmap>> {
    use crate::uidmap::id_map_text;
    let (uids, gids) = (m.uid_mappings().as_deref(), m.gid_mappings().as_deref());
    if uids.is_none() && gids.is_none() && opts.idmap.is_none() {
        return Ok(None);
    }
    if kind != Kind::Bind {
        bail!("{field}: idmapped mounts are only supported for bind mounts");
    }
    let (uid_map, gid_map) = match (uids, gids) {
        (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => (id_map_text(u), id_map_text(g)),
        (None, None) => match userns {
            Some((u, g)) => (u.to_string(), g.to_string()),
            None => bail!("{field}: \"idmap\" without uidMappings needs a new user namespace"),
        },
        _ => bail!("{field}.uidMappings: must be given together with gidMappings"),
    };
    let recursive = opts.idmap.unwrap_or(opts.flags.contains(MsFlags::MS_REC));
    Ok(Some(Idmap {
        recursive,
        uid_map,
        gid_map,
    }))
}

/// Detached, idmapped mounts, by index in `spec.mounts`.
pub type Prepared = Vec<(usize, OwnedFd)>;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// Runtime: makes every idmapped mount of the plan, detached; and with
/// `clone_binds`, a detached copy of every other bind mount's source, taken
/// here on the host side: inside its user namespace the container's root
/// may be unable to search a 0700 host directory above the source (runc
/// opens bind sources before the user namespace too).
pub fn prepare(plan: &Plan) -> Result<Prepared> {
    let mut out = Vec::new();
    for m in &plan.mounts {
        let field = format!("mounts[{}]", m.index);
        let Some(idmap) = &m.idmap else {
            if plan.clone_binds && m.kind == Kind::Bind {
                let src = m.source.as_deref().context("bind mount without a source")?;
                let fd = open_tree(src, m.opts.flags.contains(MsFlags::MS_REC))
                    .with_context(|| format!("{field}: open_tree {}", src.display()))?;
                out.push((m.index, fd));
            }
            continue;
        };
        let src = m.source.as_deref().context("bind mount without a source")?;
        let userns =
            helper_userns(idmap).with_context(|| format!("{field}: idmap user namespace"))?;
        let fd = open_tree(src, idmap.recursive)
            .with_context(|| format!("{field}: open_tree {}", src.display()))?;
        set_idmap(&fd, &userns, idmap.recursive)
            .with_context(|| format!("{field}: mount_setattr(MOUNT_ATTR_IDMAP)"))?;
        out.push((m.index, fd));
    }
    Ok(out)
}

/// `skiff check`: whether an idmapped bind mount of `path` can be made
/// here, the way `prepare` makes one (mapping our own ids); the detached
/// mount is dropped unattached, so nothing is left.
pub fn probe(path: &std::path::Path) -> Result<()> {
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    let idmap = Idmap {
        recursive: false,
        uid_map: format!("0 {uid} 1"),
        gid_map: format!("0 {gid} 1"),
    };
    let userns = helper_userns(&idmap).context("idmap user namespace")?;
    let fd = open_tree(path, false).with_context(|| format!("open_tree {}", path.display()))?;
    set_idmap(&fd, &userns, false).context("mount_setattr(MOUNT_ATTR_IDMAP)")
}

fn open_tree(src: &std::path::Path, recursive: bool) -> Result<OwnedFd> {
    let path = CString::new(src.as_os_str().as_bytes())?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a NUL-terminated path; the kernel returns a new fd or -1.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    let fd = Errno::result(r)?;
    // SAFETY: open_tree returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn set_idmap(fd: &OwnedFd, userns: &OwnedFd, recursive: bool) -> Result<()> {
    let attr = super::mount::MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: valid fds, an empty NUL-terminated path and a live MountAttr
    // whose size is passed; the kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const super::mount::MountAttr,
            std::mem::size_of::<super::mount::MountAttr>(),
        )
    };
    Errno::result(r).map(drop).map_err(Into::into)
}

/// A user namespace with `idmap`'s maps, kept alive by the returned fd.
fn helper_userns(idmap: &Idmap) -> Result<OwnedFd> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: skiff is single-threaded; the child only unshares, reports and waits.
    let child = match unsafe { nix::unistd::fork() }.context("fork idmap helper")? {
        ForkResult::Child => {
            let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
            let ok = nix::sched::unshare(CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = nix::unistd::write(&wr, &[ok as u8]);
            loop {
                // Killed by the runtime once it holds the namespace.
                nix::unistd::pause();
            }
        }
        ForkResult::Parent { child } => child,
    };
    drop(wr);
    let result = (|| {
        let mut b = [0u8; 1];
        if nix::unistd::read(&rd, &mut b)? != 1 || b[0] != 1 {
            bail!("the helper could not unshare a user namespace");
        }
        let pid = child.as_raw();
        crate::uidmap::write(pid, &idmap.uid_map, &idmap.gid_map)?;
        let ns = format!("/proc/{pid}/ns/user");
        let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC;
        nix::fcntl::open(ns.as_str(), flags, nix::sys::stat::Mode::empty())
            .with_context(|| format!("open {ns}"))
    })();
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(child, None);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(v: serde_json::Value) -> Mount {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn compile_checks_the_mapping_rules() {
        let m = |o: &str| {
            mount(serde_json::json!({"destination": "/m", "type": "bind",
            "source": "/tmp", "options": ["rbind", o],
            "uidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}],
            "gidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}]}))
        };
        let opts =
            |o: &str| super::super::mount::parse_options(&["rbind".into(), o.into()]).unwrap();
        let got = compile("mounts[0]", &m("idmap"), &opts("idmap"), Kind::Bind, None).unwrap();
        assert_eq!(
            got,
            Some(Idmap {
                recursive: false,
                uid_map: "1000 0 1\n".into(),
                gid_map: "1000 0 1\n".into()
            })
        );
        let got = compile("mounts[0]", &m("ridmap"), &opts("ridmap"), Kind::Bind, None).unwrap();
        assert!(got.unwrap().recursive);
        let e = compile("mounts[0]", &m("idmap"), &opts("idmap"), Kind::Tmpfs, None).unwrap_err();
        assert!(e.to_string().contains("only supported for bind mounts"));
        let bare = mount(
            serde_json::json!({"destination": "/m", "type": "bind", "source": "/tmp", "options": ["idmap"]}),
        );
        let e = compile("mounts[1]", &bare, &opts("idmap"), Kind::Bind, None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("mounts[1]: \"idmap\" without uidMappings"),
            "{e}"
        );
        let got = compile(
            "mounts[1]",
            &bare,
            &opts("idmap"),
            Kind::Bind,
            Some(("0 1 2\n", "0 3 4\n")),
        );
        assert_eq!(got.unwrap().unwrap().gid_map, "0 3 4\n");
    }
}
