//! Runs in: the runtime process (P). Where the hierarchies are: mountinfo
//! and /proc/self/cgroup parsing, and runc's lexical cleaning of cgroupsPath.

use super::Version;
use anyhow::{Result, bail};
use std::path::{Component, Path, PathBuf};

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

/// One mount from mountinfo that holds a hierarchy.
pub(super) struct Mount {
    pub root: String,
    pub point: PathBuf,
    pub controllers: Vec<String>, // empty for cgroup2
}

/// Find the hierarchies. Any v1 mount makes the layout V1 (hybrid included).
pub(super) fn detect(mountinfo: &str) -> Result<(Version, Vec<Mount>)> {
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
pub(super) fn unescape(s: &str) -> String {
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
pub(super) fn parse_self_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
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
