//! Writing a child's uid_map and gid_map from the runtime, the only process
//! that still has the privileges in the parent user namespace.
//! Runs in: the runtime process (P).
//!
//! Three ways, as runc and crun choose them:
//! - CAP_SETUID and CAP_SETGID: write both files directly;
//! - otherwise, a single mapping of the caller's own uid (gid): write
//!   "deny" to setgroups (the kernel requires it before an unprivileged
//!   gid_map), then the maps directly (user_namespaces(7));
//! - otherwise: the setuid helpers newuidmap/newgidmap (package uidmap),
//!   which check the ranges against /etc/subuid and /etc/subgid.
use anyhow::{Context, Result, bail};
use caps::{CapSet, Capability};

/// How the maps get written.
#[derive(Debug, PartialEq, Eq)]
pub enum Writer {
    Direct,
    SelfMap,
    Helpers,
}

/// Pure: true if `text` is one "inside outside 1" line mapping `id`.
pub fn is_self_map(text: &str, id: u32) -> bool {
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    matches!(lines.as_slice(), [f] if f.len() == 3 && f[1] == id.to_string() && f[2] == "1")
}

/// Pure: the choice above.
pub fn choose(privileged: bool, uid_map: &str, gid_map: &str, uid: u32, gid: u32) -> Writer {
    if privileged {
        Writer::Direct
    } else if is_self_map(uid_map, uid) && is_self_map(gid_map, gid) {
        Writer::SelfMap
    } else {
        Writer::Helpers
    }
}

fn privileged() -> bool {
    let has = |c| caps::has_cap(None, CapSet::Effective, c).unwrap_or(false);
    has(Capability::CAP_SETUID) && has(Capability::CAP_SETGID)
}

/// Writes the maps of `pid`, a process that has just unshared its user namespace.
pub fn write(pid: i32, uid_map: &str, gid_map: &str) -> Result<()> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    match choose(privileged(), uid_map, gid_map, uid, gid) {
        Writer::Direct => {}
        Writer::SelfMap => crate::procfs::proc_write(&format!("{pid}/setgroups"), "deny")
            .context("linux.gidMappings: deny setgroups")?,
        Writer::Helpers => {
            helper("newuidmap", pid, uid_map).context("linux.uidMappings")?;
            return helper("newgidmap", pid, gid_map).context("linux.gidMappings");
        }
    }
    crate::procfs::proc_write(&format!("{pid}/uid_map"), uid_map).context("linux.uidMappings")?;
    crate::procfs::proc_write(&format!("{pid}/gid_map"), gid_map).context("linux.gidMappings")
}

/// `newuidmap PID inside outside count ...`: a child process, not a thread.
fn helper(name: &str, pid: i32, map: &str) -> Result<()> {
    let out = std::process::Command::new(name)
        .arg(pid.to_string())
        .args(map.split_whitespace())
        .stdin(std::process::Stdio::null())
        .output();
    let out = match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "mapping ids other than your own needs {name} (package uidmap), which is not installed"
        ),
        r => r.with_context(|| format!("run {name}"))?,
    };
    if !out.status.success() {
        bail!(
            "{name} {pid} {}: {}",
            map.split_whitespace().collect::<Vec<_>>().join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The `uid_map` format: one "inside outside count" line per mapping.
pub fn id_map_text(maps: &[oci_spec::runtime::LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_follows_privilege_and_the_map() {
        assert_eq!(
            choose(true, "0 1 5\n", "0 1 5\n", 1000, 1000),
            Writer::Direct
        );
        assert_eq!(
            choose(false, "0 1000 1\n", "0 1001 1\n", 1000, 1001),
            Writer::SelfMap
        );
        assert_eq!(
            choose(
                false,
                "0 1000 1\n1 100000 65536\n",
                "0 1000 1\n",
                1000,
                1000
            ),
            Writer::Helpers
        );
        assert_eq!(
            choose(false, "0 1000 2\n", "0 1000 1\n", 1000, 1000),
            Writer::Helpers
        );
        assert!(!is_self_map("", 1000));
    }
}
