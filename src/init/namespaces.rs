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
pub fn join(fds: &[(CloneFlags, OwnedFd)]) -> Result<()> {
    for (f, fd) in fds {
        nix::sched::setns(fd, *f).with_context(|| format!("setns {f:?}"))?;
    }
    Ok(())
}

/// A new network namespace starts with `lo` down; runc and crun bring it
/// up, and programs count on 127.0.0.1 working. Two ioctls on a throwaway
/// socket: no netlink needed for one flag.
pub fn loopback_up() -> Result<()> {
    // SAFETY: socket(2) returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("bring lo up: socket");
    }
    // SAFETY: the fd was just created and is owned here.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    use std::os::fd::AsRawFd;
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error()).context("bring lo up: SIOCGIFFLAGS");
    }
    // SAFETY: ifru_flags is the union member SIOCGIFFLAGS filled.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error()).context("bring lo up: SIOCSIFFLAGS");
    }
    Ok(())
}
