//! Joining the container's cgroup cheaply, and recording what `create` will
//! make before it makes it (so a runtime killed half-way leaves nothing
//! that `delete --force` cannot find).
//! Runs in: stage-1 (`join_self`) and the runtime (`v2_dir`, `pending`).
use super::{Cgroup, Version, write_file};
use anyhow::Result;
use std::path::{Path, PathBuf};

impl Cgroup {
    /// Moves the calling (single-threaded) process into the cgroup. v1:
    /// "0" into `tasks` moves only the caller, which the kernel does without
    /// the global threadgroup lock (and its RCU grace period); the same
    /// through `cgroup.procs` costs 10-20 ms. v2 has no such path:
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
    pub fn pending(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for h in &self.hierarchies {
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
