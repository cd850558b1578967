//! Namespaces planned by `spec::namespaces`: opening the ones to join and
//! the `setns` calls themselves, and bringing up `lo` in a new net namespace.
//! Runs in: the runtime (opening) and stage-1 (joining).
use crate::spec::namespaces::Namespaces;
use anyhow::{Context, Result};
use nix::sched::CloneFlags;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Opens every namespace to join while host paths still resolve.
pub fn open_joins(ns: &Namespaces) -> Result<Vec<(CloneFlags, OwnedFd)>> {
    ns.join.iter().map(|(f, p)| Ok((*f, open_ns(p)?))).collect()
}

/// Opens a namespace file (`/proc/<pid>/ns/<name>` or a bind of one) for setns.
pub fn open_ns(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open namespace {}", path.display()))
}

/// Enters each namespace, in the order given (user first, by the callers).
pub fn join<'a>(fds: impl IntoIterator<Item = &'a (CloneFlags, OwnedFd)>) -> Result<()> {
    for (f, fd) in fds {
        nix::sched::setns(fd, *f).with_context(|| format!("setns {f:?}"))?;
    }
    Ok(())
}
