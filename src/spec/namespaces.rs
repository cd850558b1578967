//! Namespaces: the spec's list → flags to unshare plus paths to join, and
//! the id-map text (the `setns` calls are `init::namespaces`).
//! Runs in: the runtime (planning).
use crate::uidmap::id_map_text;
use anyhow::{Result, bail};
use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxNamespaceType};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Namespaces {
    /// Namespaces to create, without CLONE_NEWUSER (handled on its own).
    pub new: CloneFlags,
    pub new_user: bool,
    /// Namespaces to join, the user namespace first.
    pub join: Vec<(CloneFlags, PathBuf)>,
    /// `/proc/<pid>/uid_map` and `gid_map` text for a new user namespace.
    pub uid_map: String,
    pub gid_map: String,
}

impl Namespaces {
    /// A UTS namespace is listed: new, or joined by path.
    pub fn has_uts(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWUTS)
            || self
                .join
                .iter()
                .any(|(f, _)| *f == CloneFlags::CLONE_NEWUTS)
    }

    /// A network namespace is listed: new, or joined by path.
    pub fn has_net(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWNET)
            || self
                .join
                .iter()
                .any(|(f, _)| *f == CloneFlags::CLONE_NEWNET)
    }

    pub fn joins_user(&self) -> bool {
        self.join
            .iter()
            .any(|(f, _)| *f == CloneFlags::CLONE_NEWUSER)
    }
}

/// nix has no CLONE_NEWTIME constant; the kernel's value is kept as is.
pub const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

fn flag(t: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_retain(t as i32)
}

/// Every namespace type `plan` takes (all of oci-spec's, checked at build
/// time): `skiff features` lists their `name`s.
pub const ALL: [LinuxNamespaceType; 8] = crate::every::every!(LinuxNamespaceType:
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Time,
);

/// The spec's name of a namespace type (config-linux.md).
pub fn name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// Pure: validates `linux.namespaces` and the id mappings.
pub fn plan(linux: &Linux) -> Result<Namespaces> {
    let mut ns = Namespaces {
        new: CloneFlags::empty(),
        new_user: false,
        join: vec![],
        uid_map: String::new(),
        gid_map: String::new(),
    };
    let mut seen = CloneFlags::empty();
    for (i, n) in linux
        .namespaces()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let f = flag(n.typ());
        if seen.contains(f) {
            bail!(
                "linux.namespaces[{i}]: duplicate {} namespace",
                name(n.typ())
            );
        }
        seen |= f;
        match n.path() {
            Some(p) if !p.as_os_str().is_empty() => {
                if !p.is_absolute() {
                    bail!(
                        "linux.namespaces[{i}].path: {} is not absolute",
                        p.display()
                    );
                }
                ns.join.push((f, p.clone()));
            }
            _ if n.typ() == LinuxNamespaceType::User => ns.new_user = true,
            _ => ns.new |= f,
        }
    }
    ns.join
        .sort_by_key(|(f, _)| *f != CloneFlags::CLONE_NEWUSER);
    let uids = linux.uid_mappings().as_deref().unwrap_or_default();
    let gids = linux.gid_mappings().as_deref().unwrap_or_default();
    if ns.new_user {
        if uids.is_empty() || gids.is_empty() {
            bail!("linux.uidMappings: a new user namespace needs uidMappings and gidMappings");
        }
        ns.uid_map = id_map_text(uids);
        ns.gid_map = id_map_text(gids);
    } else if (!uids.is_empty() || !gids.is_empty()) && !ns.joins_user() {
        bail!("linux.uidMappings: mappings given without a new user namespace");
    }
    // Joining a user namespace by path: its maps are already written; runc
    // 1.1 insists on being given them anyway, so they are accepted.
    // A type not listed is inherited from the runtime (the spec's rule),
    // the mount namespace too: rootfs::plan then refuses anything that
    // would have to be mounted.
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn linux(v: serde_json::Value) -> Linux {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn splits_new_and_joined_user_first() {
        let l = linux(json!({"namespaces": [
            {"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"},
            {"type": "mount"}, {"type": "user", "path": "/proc/1/ns/user"}
        ]}));
        let ns = plan(&l).unwrap();
        assert_eq!(ns.new, CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS);
        assert_eq!(ns.join[0].0, CloneFlags::CLONE_NEWUSER);
        assert_eq!(ns.join[1].1, PathBuf::from("/proc/1/ns/net"));
        assert!(!ns.new_user);
    }

    #[test]
    fn rejects_duplicates_and_unmapped_userns() {
        let dup =
            linux(json!({"namespaces": [{"type": "pid"}, {"type": "pid"}, {"type": "mount"}]}));
        assert!(
            plan(&dup)
                .unwrap_err()
                .to_string()
                .contains("duplicate pid")
        );
        let nomnt = linux(json!({"namespaces": [{"type": "pid"}]}));
        assert_eq!(plan(&nomnt).unwrap().new, CloneFlags::CLONE_NEWPID);
        let user = linux(json!({"namespaces": [{"type": "user"}, {"type": "mount"}]}));
        assert!(
            plan(&user)
                .unwrap_err()
                .to_string()
                .starts_with("linux.uidMappings")
        );
    }

    #[test]
    fn id_maps_render_as_kernel_text() {
        let l = linux(json!({
            "namespaces": [{"type": "user"}, {"type": "mount"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 1},
                            {"containerID": 5, "hostID": 5, "size": 1}]
        }));
        let ns = plan(&l).unwrap();
        assert_eq!(ns.uid_map, "0 100000 65536\n");
        assert_eq!(ns.gid_map, "0 100000 1\n5 5 1\n");
    }
}
