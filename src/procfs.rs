//! Checked writes to /proc files, for the runtime (a child's id maps,
//! `uidmap.rs`) and for init (its own attr, oom and sysctl files).
//! Runs in: the runtime process, stage-1 and init.
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// Writes a file under /proc after checking that the open fd really is on
/// procfs, so a container-controlled mount over /proc cannot redirect the
/// write (CVE-2025-52881 class).
pub fn proc_write(rel: &str, value: &str) -> Result<()> {
    let path = format!("/proc/{rel}");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .with_context(|| format!("open {path}"))?;
    let st = nix::sys::statfs::fstatfs(&f).with_context(|| format!("statfs {path}"))?;
    if st.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        bail!("{path} is not on procfs");
    }
    (&f).write_all(value.as_bytes())
        .with_context(|| format!("write {path}"))
}
