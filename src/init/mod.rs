//! The two child spines: `stage1` (S, stage1.rs) enters or creates the
//! namespaces and forks `run` (I, container_init.rs), the container's pid 1,
//! which builds the container's view of the world and execs the entrypoint;
//! `attach` is exec's pair of them. See `sync.rs` for the
//! protocol with the runtime. Both end in `_exit` or `execve`: a child
//! never returns into the runtime's code.
//! Runs in: stage-1 and init.
pub mod attach;
pub mod console;
mod container_init;
pub mod exec;
pub mod namespaces;
pub mod policy;
mod stage1;
pub mod user;

pub use container_init::direct;
pub use stage1::{direct_clone, stage1};

use crate::sync::{Msg, SyncSocket};
use std::ffi::CString;
use std::os::fd::OwnedFd;

/// File descriptors the children inherit from the runtime (all CLOEXEC).
pub struct ChildFds {
    pub sync: SyncSocket,
    pub fifo: OwnedFd,
    pub console: Option<OwnedFd>,
    /// Detached idmapped mounts made by the runtime (rootfs/idmap.rs).
    pub idmapped: crate::rootfs::Prepared,
    /// Stage-1 was cloned straight into the cgroup v2 directory.
    pub in_v2: bool,
    /// Init was cloned by the runtime itself, in its new namespaces,
    /// without stage-1 (`direct_clone`): it does stage-1's other steps.
    pub direct: bool,
}

pub(crate) fn set_name(name: &str) {
    if let Ok(n) = CString::new(name) {
        let _ = nix::sys::prctl::set_name(&n);
    }
}

/// Reports a setup error to the runtime and exits: the one way out of a failed child.
pub(crate) fn fail(sync: &SyncSocket, e: anyhow::Error) -> ! {
    let _ = sync.send(&Msg::Failed(format!("{e:#}")));
    // SAFETY: _exit ends the process without running the parent's atexit or destructors.
    unsafe { libc::_exit(1) }
}
