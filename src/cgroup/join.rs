//! Joining the container's cgroup cheaply, and recording what `create` will
//! make before it makes it (so a runtime killed half-way leaves nothing
//! that `delete --force` cannot find).
//! Runs in: stage-1 (`join_self`) and the runtime (`v2_dir`, `pending`).
use super::{Cgroup, Version, write_file};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

impl Cgroup {
    /// Moves the calling (single-threaded) process into the cgroup. v1:
    /// "0" into `tasks` moves only the caller, which the kernel does without
    /// the global threadgroup lock (and its RCU grace period, README.md,
    /// Benchmark), which the same through `cgroup.procs` waits for. v2 has no such path:
    /// `in_v2` says `fork::fork_into` already placed us there.
    pub fn join_self(&self, in_v2: bool) -> Result<()> {
        let mut done: Vec<&Path> = Vec::new();
        for h in &self.hierarchies {
            if done.contains(&h.dir.as_path()) {
                continue;
            }
            done.push(&h.dir);
            match h.version {
                Version::V1 => write_file(&h.dir.join("tasks"), "0")?,
                Version::V2 if in_v2 => {}
                Version::V2 => write_file(&h.dir.join("cgroup.procs"), "0")?,
            }
        }
        Ok(())
    }

    /// The container's cgroup v2 directory (pure v2, or a hybrid's unified one).
    pub fn v2_dir(&self) -> Option<&Path> {
        self.hierarchies
            .iter()
            .find(|h| h.version == Version::V2)
            .map(|h| h.dir.as_path())
    }

    /// The directories `create` would make now (missing ones, parents
    /// first): saved in state.json *before* creating them, so a runtime
    /// killed in between still leaves a record for `delete --force`.
    /// With systemd, only hierarchies it does not manage: its own
    /// directories go with its unit.
    pub fn pending(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        let ours = |h: &&super::Hierarchy| {
            self.systemd.is_none() || !super::systemd::manages(h.version, &h.controllers)
        };
        for h in self.hierarchies.iter().filter(ours) {
            let mut missing = Vec::new();
            let mut d = h.dir.as_path();
            while d.starts_with(&h.mount) && d != h.mount && !d.exists() {
                missing.push(d.to_path_buf());
                d = d.parent().unwrap_or(Path::new("/"));
            }
            out.extend(
                missing
                    .into_iter()
                    .rev()
                    .filter(|m| !out.contains(m))
                    .collect::<Vec<_>>(),
            );
        }
        out
    }
}

/// `exec --cgroup` (runc 1.1): `PATH` (only as the one argument) or
/// `CONTROLLER[,CONTROLLER]:PATH` (repeatable). Pairs of controller and
/// path, "" standing for every hierarchy.
fn parse_sub_args(args: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for a in args {
        let parts: Vec<&str> = a.splitn(3, ':').collect();
        match parts[..] {
            [path] if args.len() == 1 => out.push((String::new(), path.to_string())),
            [_] => bail!(
                "--cgroup: {a:?}: missing the CONTROLLER: prefix (needed with several --cgroup)"
            ),
            [ctrls, path] => {
                for c in ctrls.split(',') {
                    out.push((c.to_string(), path.to_string()));
                }
            }
            _ => bail!("--cgroup: {a:?}: not PATH or CONTROLLER[,CONTROLLER]:PATH"),
        }
    }
    Ok(out)
}

/// `base/sub` with `sub` resolved lexically inside `base` (a leading "/"
/// is the container's own cgroup, as in runc); None if it climbs out.
fn sub_dir(base: &Path, sub: &str) -> Option<PathBuf> {
    use std::path::Component;
    let mut rel = PathBuf::new();
    for c in Path::new(sub).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !rel.pop() {
                    return None;
                }
            }
            Component::Normal(n) => rel.push(n),
            Component::Prefix(_) => return None,
        }
    }
    Some(base.join(rel))
}

impl Cgroup {
    /// The cgroup an `exec --cgroup ARG...` process joins: each hierarchy's
    /// directory moved to the (existing) sub-cgroup named for it (the last
    /// argument naming one of its controllers, or one for all).
    pub fn sub_cgroup(&self, args: &[String]) -> Result<Cgroup> {
        let subs = parse_sub_args(args)?;
        for (ctrl, _) in &subs {
            let known = ctrl.is_empty()
                || self
                    .hierarchies
                    .iter()
                    .any(|h| h.version == Version::V1 && h.controllers.iter().any(|c| c == ctrl));
            if !known {
                bail!(
                    "--cgroup: unknown controller {ctrl:?} (not a cgroup v1 hierarchy of the container)"
                );
            }
        }
        let mut cg = self.clone();
        cg.created.clear();
        for h in &mut cg.hierarchies {
            let sub = subs
                .iter()
                .rev()
                .find(|(c, _)| c.is_empty() || h.controllers.contains(c))
                .map(|(_, s)| s.as_str());
            let Some(sub) = sub else { continue };
            let dir = sub_dir(&h.dir, sub)
                .with_context(|| format!("--cgroup: {sub:?} is not a sub-cgroup path"))?;
            if !dir.join("cgroup.procs").exists() {
                let name = match h.controllers.join(",") {
                    n if n.is_empty() => "cgroup2".to_string(),
                    n => n,
                };
                bail!(
                    "--cgroup: {sub:?}: no such sub-cgroup {} ({name})",
                    dir.display()
                );
            }
            h.dir = dir;
        }
        Ok(cg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::Hierarchy;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sub_cgroup_arguments() {
        let p = |a: &[&str]| parse_sub_args(&args(a));
        assert_eq!(p(&["x"]).unwrap(), [(String::new(), "x".into())]);
        assert_eq!(
            p(&["memory,pids:a/b", "cpu:/"]).unwrap(),
            [
                ("memory".into(), "a/b".into()),
                ("pids".into(), "a/b".into()),
                ("cpu".into(), "/".into())
            ]
        );
        assert!(p(&["x", "memory:x"]).is_err());
        assert!(p(&["a:b:c"]).is_err());
        let base = Path::new("/cg/c1");
        assert_eq!(sub_dir(base, "a/./b/../c"), Some(base.join("a/c")));
        assert_eq!(sub_dir(base, "/"), Some(base.to_path_buf()));
        assert_eq!(sub_dir(base, ".."), None);
        assert_eq!(sub_dir(base, "a/../../x"), None);
    }

    #[test]
    fn sub_cgroup_moves_the_named_hierarchies() {
        let root = std::env::temp_dir().join(format!("skiff-subcg-{}", std::process::id()));
        let h = |ctrls: &[&str], name: &str| Hierarchy {
            version: if ctrls.is_empty() {
                Version::V2
            } else {
                Version::V1
            },
            controllers: ctrls.iter().map(|c| c.to_string()).collect(),
            mount: root.join(name),
            dir: root.join(name).join("c1"),
        };
        let cg = Cgroup {
            version: Version::V1,
            hierarchies: vec![
                h(&["cpu", "cpuacct"], "cpu"),
                h(&["memory"], "memory"),
                h(&[], "unified"),
            ],
            created: vec![],
            rootless: false,
            systemd: None,
        };
        for d in ["cpu/c1/s", "memory/c1/s"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
            std::fs::write(root.join(d).join("cgroup.procs"), "").unwrap();
        }
        let sub = cg.sub_cgroup(&args(&["cpuacct,memory:s"])).unwrap();
        let dirs: Vec<&Path> = sub.hierarchies.iter().map(|h| h.dir.as_path()).collect();
        assert_eq!(
            dirs,
            [
                root.join("cpu/c1/s"),
                root.join("memory/c1/s"),
                root.join("unified/c1")
            ]
        );
        let e = cg.sub_cgroup(&args(&["s"])).unwrap_err().to_string();
        assert!(e.contains("unified/c1/s") && e.contains("cgroup2"), "{e}");
        let e = cg.sub_cgroup(&args(&["pids:s"])).unwrap_err().to_string();
        assert!(e.contains("unknown controller \"pids\""), "{e}");
        let e = cg
            .sub_cgroup(&args(&["memory:../c2"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a sub-cgroup path"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
