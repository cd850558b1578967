//! How a container is described to CRIU, as runc does it, so that a
//! restore rebuilds the same container: the spec's bind mounts (and v1
//! cgroup binds, masked paths, device nodes) as external mounts, namespaces
//! joined by path as external namespaces, the cgroup it goes back into.
//! External mounts: at dump, `mountpoint -> id` (the id is the container
//! path; `/dev/null` for masked files); at restore, `id -> host source`.
//! Runs in: the runtime process (checkpoint, restore).
use super::rpc::{CgroupRoot, CriuCgMode, ExtMountMap, InheritFd};
use crate::cgroup::{Cgroup, Layout, Version};
use crate::spec::Plan;
use anyhow::{Context, Result, bail};
use nix::sched::CloneFlags;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn ext(key: impl AsRef<Path>, val: impl AsRef<Path>) -> ExtMountMap {
    ExtMountMap {
        key: key.as_ref().to_string_lossy().into_owned(),
        val: val.as_ref().to_string_lossy().into_owned(),
    }
}

/// The external mounts of a dump: bind mounts, v1 cgroup binds, masked
/// files (bound from /dev/null; looked at through init's root, as runc
/// does, so a path the container never had is left out) and device nodes.
pub fn dump_mounts(plan: &Plan, pid: i32) -> Vec<ExtMountMap> {
    let mut out: Vec<ExtMountMap> = binds(plan).map(|(dest, _)| ext(&dest, &dest)).collect();
    for p in &plan.rootfs_plan.masked {
        let inside = format!("/proc/{pid}/root{}", p.display());
        match std::fs::metadata(&inside) {
            Ok(md) if !md.is_dir() => out.push(ext(p, "/dev/null")),
            _ => {}
        }
    }
    for d in &plan.rootfs_plan.devices {
        out.push(ext(&d.path, &d.path));
    }
    out
}

/// The external mounts of a restore: each id back to its host source.
pub fn restore_mounts(plan: &Plan) -> Vec<ExtMountMap> {
    let mut out: Vec<ExtMountMap> = binds(plan).map(|(dest, src)| ext(&dest, &src)).collect();
    if !plan.rootfs_plan.masked.is_empty() {
        out.push(ext("/dev/null", "/dev/null"));
    }
    for d in &plan.rootfs_plan.devices {
        out.push(ext(&d.path, &d.path));
    }
    out
}

/// (container path, host source) of every mount CRIU must treat as
/// external: the spec's binds, and on cgroup v1 without a cgroup namespace
/// the per-hierarchy binds under a "cgroup" mount (the container's own
/// cgroup directory, as create binds it).
fn binds(plan: &Plan) -> impl Iterator<Item = (PathBuf, PathBuf)> + '_ {
    use crate::rootfs::MountKind;
    let spec_binds = (plan.rootfs_plan.mounts.iter())
        .filter(|m| m.kind == MountKind::Bind)
        .map(|m| (m.dest.clone(), m.source.clone().unwrap_or_default()));
    let cgroup_binds = plan
        .rootfs_plan
        .mounts
        .iter()
        .filter(|m| m.kind == MountKind::Cgroup && !plan.rootfs_plan.cgroupns)
        .flat_map(move |m| match &plan.rootfs_plan.cgroup {
            Layout::V1 { hierarchies, .. } => hierarchies
                .iter()
                .map(|h| {
                    let name = h.point.file_name().unwrap_or_default();
                    let dir = (plan.cgroup.hierarchies.iter())
                        .find(|c| c.mount == h.point)
                        .map_or_else(|| h.point.clone(), |c| c.dir.clone());
                    (m.dest.join(name), dir)
                })
                .collect::<Vec<_>>(),
            Layout::V2 { .. } => Vec::new(),
        });
    spec_binds.chain(cgroup_binds)
}

/// The namespaces joined by path that CRIU treats as external (runc: net,
/// and pid since CRIU 3.15), with their keys.
fn external_ns(plan: &Plan) -> impl Iterator<Item = (&'static str, &'static str, &Path)> {
    plan.ns.join.iter().filter_map(|(f, p)| match *f {
        CloneFlags::CLONE_NEWNET => Some(("net", "extRootNetNS", p.as_path())),
        CloneFlags::CLONE_NEWPID => Some(("pid", "extRootPidNS", p.as_path())),
        _ => None,
    })
}

/// `--external` entries of a dump: "net[<inode>]:extRootNetNS".
pub fn dump_externals(plan: &Plan) -> Result<Vec<String>> {
    external_ns(plan)
        .map(|(name, key, path)| {
            let md = std::fs::metadata(path)
                .with_context(|| format!("linux.namespaces: {name} path {}", path.display()))?;
            Ok(format!("{name}[{}]:{key}", md.ino()))
        })
        .collect()
}

/// The joined namespaces a restore hands to CRIU: the opened files (the
/// caller passes them at fds `first_fd`, `first_fd + 1`, ...) and the
/// inherit-fd entries naming them.
pub fn restore_inherit(plan: &Plan, first_fd: i32) -> Result<(Vec<OwnedFd>, Vec<InheritFd>)> {
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for (name, key, path) in external_ns(plan) {
        let f = std::fs::File::open(path)
            .with_context(|| format!("linux.namespaces: {name} path {}", path.display()))?;
        entries.push(InheritFd {
            key: key.into(),
            fd: first_fd + files.len() as i32,
        });
        files.push(OwnedFd::from(f));
    }
    Ok((files, entries))
}

/// The lowest CRIU (runc's number) that handles the container's joined
/// namespaces: 3.11 for net, 3.15 for pid.
pub fn min_version(plan: &Plan) -> i32 {
    external_ns(plan)
        .map(|(n, ..)| if n == "pid" { 31500 } else { 31100 })
        .max()
        .unwrap_or(30000)
}

/// The cgroup CRIU freezes the tree with: v1's freezer directory, or the
/// v2 directory (CRIU 3.14+). Without one CRIU stops tasks with ptrace.
pub fn freeze_dir(cg: &Cgroup) -> Option<PathBuf> {
    cg.hierarchies
        .iter()
        .find(|h| match cg.version {
            Version::V1 => h.controllers.iter().any(|c| c == "freezer"),
            Version::V2 => true,
        })
        .map(|h| h.dir.clone())
}

/// `--cgroup-root` entries: where `pid` (criu, already moved into the
/// container's cgroup) is, per controller, from /proc/PID/cgroup (runc's
/// criuApplyCgroups).
pub fn cgroup_roots(pid: i32) -> Result<Vec<CgroupRoot>> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    Ok(parse_cgroup_roots(&text))
}

fn parse_cgroup_roots(text: &str) -> Vec<CgroupRoot> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        for c in ctrls.split(',') {
            out.push(CgroupRoot {
                ctrl: Some(c.to_string()),
                path: path.to_string(),
            });
        }
    }
    out
}

/// `--manage-cgroups-mode`: runc's values.
pub fn cg_mode(s: &str) -> Result<CriuCgMode> {
    Ok(match s {
        "soft" => CriuCgMode::Soft,
        "full" => CriuCgMode::Full,
        "strict" => CriuCgMode::Strict,
        "ignore" => CriuCgMode::Ignore,
        _ => bail!("Invalid manage-cgroups-mode value {s:?}: soft, full, strict or ignore"),
    })
}

/// `--empty-ns`: the namespaces CRIU makes empty. The network namespace
/// always is, as in runc (the runtime, not CRIU, owns its configuration:
/// `restore` brings `lo` up in it as `create` does); "network" is the
/// only name runc accepts.
pub fn empty_ns_mask(names: &[String]) -> Result<u32> {
    for n in names {
        if n != "network" {
            bail!("--empty-ns: namespace {n:?} is not supported (only \"network\")");
        }
    }
    Ok(libc::CLONE_NEWNET as u32)
}

/// Creates the mountpoints a restore needs in the rootfs (CRIU mounts on
/// them; a checkpoint moved elsewhere may lack them), except below a
/// tmpfs, whose content CRIU restores whole. Made inside the rootfs only.
pub fn make_mountpoints(plan: &Plan) -> Result<()> {
    use crate::rootfs::MountKind;
    let mounts = &plan.rootfs_plan.mounts;
    let tmpfs: Vec<&Path> = (mounts.iter())
        .filter(|m| m.kind == MountKind::Tmpfs)
        .map(|m| m.dest.as_path())
        .collect();
    for m in mounts {
        if m.kind == MountKind::Cgroup
            || tmpfs.iter().any(|t| m.dest.starts_with(t) && m.dest != *t)
        {
            continue;
        }
        let file = m.kind == MountKind::Bind && !m.src_is_dir;
        crate::rootfs::make_mountpoint(&plan.rootfs, &m.dest, file)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_roots_split_co_mounted_controllers() {
        let r = parse_cgroup_roots("4:cpu,cpuacct:/c1\n0::/c1\n");
        let got: Vec<(String, String)> = r
            .into_iter()
            .map(|c| (c.ctrl.unwrap_or_default(), c.path))
            .collect();
        assert_eq!(
            got,
            [("cpu", "/c1"), ("cpuacct", "/c1"), ("", "/c1")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn modes_and_empty_ns_follow_runc() {
        assert_eq!(cg_mode("soft").unwrap(), CriuCgMode::Soft);
        assert!(cg_mode("props").is_err());
        let net = libc::CLONE_NEWNET as u32;
        assert_eq!(empty_ns_mask(&[]).unwrap(), net);
        assert_eq!(empty_ns_mask(&["network".into()]).unwrap(), net);
        assert!(empty_ns_mask(&["ipc".into()]).is_err());
    }
}
