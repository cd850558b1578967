//! Runs in: the runtime process (P). Rootless cgroups, runc 1.1's rules
//! (libcontainer/cgroups/fs, "rootless" mode): a hierarchy the user may not
//! create a cgroup in is dropped instead of failing `create`; device rules
//! are best effort (an unprivileged user never owns the devices
//! controller); any other limit aimed at a dropped hierarchy is an error,
//! since silently running without it would be worse.

use super::{Cgroup, Controller, Write, resources};
use anyhow::{Result, bail};
use nix::errno::Errno;

/// The errors rootless mode forgives: EACCES, EPERM and EROFS (runc's isIgnorableError).
pub(super) fn is_permission(e: &anyhow::Error) -> bool {
    super::fs::has_errno(e, &[Errno::EACCES, Errno::EPERM, Errno::EROFS])
}

impl Cgroup {
    /// Fails, naming the field, if a limit needs a hierarchy a rootless
    /// container could not get (device rules excepted: they are best effort).
    fn check_targets(&self, writes: &[Write]) -> Result<()> {
        let missing = writes.iter().find(|w| {
            *w.controller() != Controller::Devices && self.target(w.controller()).is_none()
        });
        if let Some(w) = missing {
            bail!(
                "{}: cannot set {} limit: rootless container could not create or join a cgroup \
                 (delegate one to the user, or remove the limit)",
                resources::field(w.controller()),
                w.controller()
            );
        }
        Ok(())
    }

    /// `create` for a rootless container: see the module comment. Applies
    /// `writes`, after checking that every one of `all` (which adds the
    /// deferred pids.max: deferred, not optional) has a hierarchy.
    pub fn create_rootless(&mut self, writes: &[Write], all: &[Write]) -> Result<()> {
        self.rootless = true;
        let result = self.create_rootless_inner(writes, all);
        if result.is_err() {
            let _ = self.remove_created();
            self.created.clear();
        }
        result
    }

    fn create_rootless_inner(&mut self, writes: &[Write], all: &[Write]) -> Result<()> {
        for h in std::mem::take(&mut self.hierarchies) {
            match self.create_dir(&h, writes) {
                Ok(()) => self.hierarchies.push(h),
                Err(e) if is_permission(&e) => {
                    crate::log::debug(&format!("rootless: no cgroup here: {e:#}"))
                }
                Err(e) => return Err(e),
            }
        }
        self.check_not_frozen()?;
        self.warn_if_occupied();
        let (devices, limits): (Vec<Write>, Vec<Write>) = writes
            .iter()
            .cloned()
            .partition(|w| *w.controller() == Controller::Devices);
        self.check_targets(all)?;
        self.apply(&limits)?;
        if self.target(&Controller::Devices).is_some()
            && let Err(e) = self.apply(&devices)
        {
            crate::log::debug(&format!("rootless: device rules ignored: {e:#}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_are_recognised_through_context() {
        let e = anyhow::Error::from(Errno::EACCES).context("mkdir /sys/fs/cgroup/x");
        assert!(is_permission(&e));
        let io = std::io::Error::from_raw_os_error(libc::EROFS);
        assert!(is_permission(&anyhow::Error::from(io).context("open")));
        assert!(!is_permission(&anyhow::anyhow!(Errno::ENOENT)));
    }
}
