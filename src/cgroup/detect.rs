//! Runs in: the runtime process (P). The one place that decides the host's
//! cgroup layout (from mountinfo) and reads /proc/self/cgroup; the cgroup
//! manager and the rootfs's "cgroup" mount both ask here. Also runc's
//! lexical cleaning of cgroupsPath.
//!
//! The rules, and where they come from:
//! - Version: pure v2 when the mount visible on /sys/fs/cgroup is cgroup2
//!   (runc's IsCgroup2UnifiedMode, a statfs of that path); else v1 if any v1
//!   hierarchy is mounted (a hybrid host, its cgroup2 kept as `unified`);
//!   else v2 on the first cgroup2 mount wherever it is (fixture trees, hosts
//!   without /sys/fs/cgroup).
//! - A hierarchy's subsystems are its super options minus the mount options
//!   (`rw`, `xattr`, `release_agent=...`): controllers and `name=...`. Which
//!   of them a caller uses is the caller's business (the manager places the
//!   container only in the controllers it knows, rootfs mounts them all).
//! - A mount hidden by a later mount on the same path is not there; the
//!   same hierarchy mounted twice (a bind) counts once, first mount first
//!   (runc's getCgroupMountsHelper).

use crate::mountinfo::MountInfo;
use anyhow::{Context, Result};
use std::path::{Component, Path, PathBuf};

/// One mount of a cgroup hierarchy on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMount {
    /// The hierarchy path that is mounted there ("/" unless in a cgroupns).
    pub root: String,
    pub point: PathBuf,
    /// v1: controllers and "name=..." of named hierarchies; cgroup2: empty.
    pub subsystems: Vec<String>,
}

/// The host's cgroup layout; a hybrid host (v1 controllers plus cgroup2 on
/// /sys/fs/cgroup/unified) counts as V1, as in runc 1.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    V1 {
        hierarchies: Vec<HostMount>,
        /// A hybrid host's cgroup2 mount.
        unified: Option<HostMount>,
    },
    V2 {
        mount: HostMount,
    },
}

/// cgroup v1 super options that are not controllers.
const V1_MOUNT_OPTS: [&str; 7] = [
    "rw",
    "ro",
    "clone_children",
    "noprefix",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
];

impl Layout {
    /// Nothing mounted: no hierarchy to use or to show.
    pub const NONE: Layout = Layout::V1 {
        hierarchies: Vec::new(),
        unified: None,
    };

    /// This process's layout, from /proc/self/mountinfo.
    pub fn read() -> Result<Layout> {
        Ok(Layout::detect(&crate::mountinfo::parse(
            crate::mountinfo::host_text()?,
        )))
    }

    /// Pure: the layout these mounts make (see the module comment);
    /// `Layout::NONE` when no cgroup filesystem is mounted.
    pub fn detect(mounts: &[MountInfo]) -> Layout {
        // Only the last mount on a path is visible. The kernel writes each
        // path one way, so comparing bytes is enough (Path's == compares
        // component by component: most of this function's instructions,
        // run twice per create, when it ran for every mount).
        let cgroupfs = |m: &&MountInfo| matches!(m.fstype.as_str(), "cgroup" | "cgroup2");
        let visible = mounts.iter().enumerate().filter(|(i, m)| {
            cgroupfs(m)
                && !mounts[i + 1..]
                    .iter()
                    .any(|n| n.mount_point.as_os_str() == m.mount_point.as_os_str())
        });
        let mut v1: Vec<HostMount> = Vec::new();
        let mut v2: Vec<HostMount> = Vec::new();
        for (_, m) in visible {
            let mut h = HostMount {
                root: m.root.clone(),
                point: m.mount_point.clone(),
                subsystems: Vec::new(),
            };
            match m.fstype.as_str() {
                "cgroup" => {
                    h.subsystems = m
                        .super_opts
                        .split(',')
                        .filter(|o| {
                            o.starts_with("name=")
                                || !(o.contains('=') || V1_MOUNT_OPTS.contains(o))
                        })
                        .map(String::from)
                        .collect();
                    if !v1.iter().any(|x| x.subsystems == h.subsystems) {
                        v1.push(h);
                    }
                }
                "cgroup2" => v2.push(h),
                _ => {}
            }
        }
        if let Some(m) = v2.iter().find(|m| m.point == Path::new("/sys/fs/cgroup")) {
            return Layout::V2 { mount: m.clone() };
        }
        let mut v2 = v2.into_iter();
        match v1.is_empty() {
            false => Layout::V1 {
                hierarchies: v1,
                unified: v2.next(),
            },
            true => match v2.next() {
                Some(mount) => Layout::V2 { mount },
                None => Layout::NONE,
            },
        }
    }
}

/// This process's /proc/self/cgroup.
pub fn read_self_cgroup() -> Result<String> {
    crate::procfs::read_text("/proc/self/cgroup").context("read /proc/self/cgroup")
}

/// Pure: `/proc/self/cgroup` → (controllers, path); the v2 "0::" line has
/// no controllers.
pub fn parse_self_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            let ctrls = ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect();
            Some((ctrls, path.to_string()))
        })
        .collect()
}

/// Pure: our cgroup path in the hierarchy of these subsystems (the cgroup2
/// line for none), from parsed /proc/self/cgroup `own`.
pub fn own_path<'a>(own: &'a [(Vec<String>, String)], subsystems: &[String]) -> Option<&'a str> {
    own.iter()
        .find(|(c, _)| match subsystems {
            [] => c.is_empty(),
            s => c.iter().any(|c| s.contains(c)),
        })
        .map(|(_, p)| p.as_str())
}

/// runc's CleanPath: lexical cleaning where ".." never climbs above the start,
/// so a config cannot name a directory outside the hierarchy.
pub(super) fn clean(p: &Path) -> (bool, PathBuf) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountinfo::parse;

    /// This host: v1 controllers, name=systemd, cgroup2 on .../unified.
    const HYBRID: &str = "22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd,release_agent=/x
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 27 0:40 /sub /mnt/with\\040space rw master:3 shared:4 - ext4 /dev/x rw";

    const V2: &str = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot";

    fn points(hs: &[HostMount]) -> Vec<&str> {
        hs.iter().map(|h| h.point.to_str().unwrap()).collect()
    }

    fn subs(hs: &[HostMount]) -> Vec<String> {
        hs.iter().map(|h| h.subsystems.join(",")).collect()
    }

    #[test]
    fn hybrid_is_v1_with_named_hierarchies_and_unified() {
        let l = Layout::detect(&parse(HYBRID));
        let Layout::V1 {
            hierarchies,
            unified,
        } = &l
        else {
            panic!("not v1: {l:?}")
        };
        assert_eq!(subs(hierarchies), ["cpu,cpuacct", "memory", "name=systemd"]);
        assert_eq!(
            hierarchies[0].point,
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        let unified = unified.as_ref().unwrap();
        assert_eq!(unified.point, Path::new("/sys/fs/cgroup/unified"));
        assert!(unified.subsystems.is_empty());
        // The manager's view: the same mounts, then the unified one as V2.
        let (v, m) = super::super::managed(l).unwrap();
        assert_eq!(v, super::super::Version::V1);
        assert_eq!(subs(&m), ["cpu,cpuacct", "memory", "name=systemd", ""]);
    }

    #[test]
    fn pure_v2() {
        let l = Layout::detect(&parse(V2));
        let Layout::V2 { mount } = &l else {
            panic!("not v2: {l:?}")
        };
        assert_eq!(mount.point, Path::new("/sys/fs/cgroup"));
        let (v, m) = super::super::managed(l).unwrap();
        assert_eq!(
            (v, points(&m)),
            (super::super::Version::V2, vec!["/sys/fs/cgroup"])
        );
    }

    #[test]
    fn manager_keeps_known_controllers_first_mount_of_each() {
        let mi = "1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                  2 0 0:1 / /mnt/bind rw - cgroup cgroup rw,cpu,cpuacct\n\
                  3 0 0:2 / /sys/fs/cgroup/my\\040dir rw - cgroup cgroup rw,memory\n\
                  4 0 0:3 / /x rw - cgroup cgroup rw,name=other\n";
        let l = Layout::detect(&parse(mi));
        // rootfs shows every hierarchy once, named ones too.
        let Layout::V1 { hierarchies, .. } = &l else {
            panic!("not v1")
        };
        assert_eq!(
            points(hierarchies),
            ["/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/my dir", "/x"]
        );
        let (v, mounts) = super::super::managed(l).unwrap();
        assert_eq!(v, super::super::Version::V1);
        assert_eq!(subs(&mounts), ["cpu,cpuacct", "memory"]);
        assert!(
            super::super::managed(Layout::detect(&parse(
                "1 0 0:1 / / rw - ext4 /dev/sda rw\n"
            )))
            .is_err()
        );
        assert_eq!(
            Layout::detect(&parse("1 0 0:1 / / rw - ext4 /dev/sda rw\n")),
            Layout::NONE
        );
    }

    // Fixtures where the two old detectors (cgroup/detect.rs and
    // rootfs/mod.rs) disagreed, and which rule won.

    /// cgroup2 on /sys/fs/cgroup plus a stray v1 mount: the manager said V1
    /// (any v1 mount), rootfs said V2. V2 won: it is runc's test
    /// (IsCgroup2UnifiedMode statfs's /sys/fs/cgroup), and placing the
    /// container only in a name=systemd hierarchy on a v2 host was wrong.
    #[test]
    fn cgroup2_on_sys_fs_cgroup_wins_over_stray_v1() {
        let mi = format!(
            "{V2}\n40 31 0:37 / /run/systemd-compat rw - cgroup cgroup rw,xattr,name=systemd\n"
        );
        let l = Layout::detect(&parse(&mi));
        assert!(matches!(&l, Layout::V2 { mount } if mount.point == Path::new("/sys/fs/cgroup")));
    }

    /// cgroup2 elsewhere, no v1 (the manager's tempdir fixtures, a host
    /// without /sys/fs/cgroup): the manager said V2 there, rootfs said
    /// "nothing" and mounted an empty tmpfs. V2 won: the container's cgroup
    /// is made there, so that is the hierarchy to show it.
    #[test]
    fn lone_cgroup2_elsewhere_is_v2() {
        let mi = "29 25 0:26 / /tmp/fixture rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = Layout::detect(&parse(mi));
        assert!(matches!(&l, Layout::V2 { mount } if mount.point == Path::new("/tmp/fixture")));
    }

    /// v1 subsystems: the manager took an allow-list, rootfs a block-list of
    /// mount options. The detector keeps the block-list (every controller
    /// and named hierarchy, which rootfs mounts, as runc's rootfs does); the
    /// manager filters with its allow-list (runc's fs subsystems).
    #[test]
    fn unknown_controllers_are_shown_not_managed() {
        let mi = "1 0 0:1 / /sys/fs/cgroup/debug rw - cgroup cgroup rw,noprefix,debug,release_agent=/x\n\
                  2 0 0:2 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let l = Layout::detect(&parse(mi));
        let Layout::V1 { hierarchies, .. } = &l else {
            panic!("not v1")
        };
        assert_eq!(subs(hierarchies), ["debug", "pids"]);
        let (_, m) = super::super::managed(l).unwrap();
        assert_eq!(subs(&m), ["pids"]);
    }

    /// Duplicates: the manager kept the first mount of a hierarchy, rootfs
    /// the last mount on a path. Both facts hold now: a mount hidden by a
    /// later one on the same path is not there, and of the visible mounts of
    /// one hierarchy (binds elsewhere) the first counts, as in runc's
    /// getCgroupMountsHelper. rootfs no longer binds a hierarchy twice.
    #[test]
    fn hidden_mounts_and_binds() {
        let mi = "1 0 0:1 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  2 0 0:2 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,cpu\n\
                  3 0 0:1 /sub /mnt/memory rw - cgroup cgroup rw,memory\n\
                  4 0 0:3 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
                  5 0 0:3 / /mnt/pids rw - cgroup cgroup rw,pids\n";
        let Layout::V1 { hierarchies, .. } = Layout::detect(&parse(mi)) else {
            panic!("not v1")
        };
        assert_eq!(subs(&hierarchies), ["cpu", "memory", "pids"]);
        assert_eq!(
            points(&hierarchies),
            [
                "/sys/fs/cgroup/memory",
                "/mnt/memory",
                "/sys/fs/cgroup/pids"
            ]
        );
    }

    #[test]
    fn proc_self_cgroup_lines() {
        let v = parse_self_cgroup("4:cpu,cpuacct:/a\n1:name=systemd:/b\n0::/c\n");
        assert_eq!(
            v[0],
            (
                vec!["cpu".to_string(), "cpuacct".to_string()],
                "/a".to_string()
            )
        );
        assert_eq!(v[1].0, vec!["name=systemd".to_string()]);
        assert_eq!(v[2], (vec![], "/c".to_string()));
        assert_eq!(own_path(&v, &["cpuacct".to_string()]), Some("/a"));
        assert_eq!(own_path(&v, &[]), Some("/c"));
        assert_eq!(own_path(&v, &["pids".to_string()]), None);
    }
}
