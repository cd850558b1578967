//! Plan-time checks of `process` (ids, LSM labels) and of the id mappings,
//! shared by `spec::plan` and the exec planner.
//! Runs in: the runtime process.
use anyhow::{Result, bail};
use oci_spec::runtime::Process;

/// The largest uid or gid skiff accepts: beyond it, 4294967295 is
/// `(uid_t)-1`, which setresuid takes as "leave unchanged" (the process
/// would stay root), and runc refuses the whole upper half.
pub const MAX_ID: u32 = i32::MAX as u32;

fn check_id(id: u32, field: &str) -> Result<()> {
    if id > MAX_ID {
        bail!("{field}: {id} is out of range: uids and gids must be in range 0-{MAX_ID}");
    }
    Ok(())
}

/// process.user (`what` names the process: "process" or "--process").
pub fn check_user_ids(p: &Process, what: &str) -> Result<()> {
    let u = p.user();
    check_id(u.uid(), &format!("{what}.user.uid"))?;
    check_id(u.gid(), &format!("{what}.user.gid"))?;
    for (i, g) in u.additional_gids().iter().flatten().enumerate() {
        check_id(*g, &format!("{what}.user.additionalGids[{i}]"))?;
    }
    Ok(())
}

/// An id mapping must be non-empty and stay clear of (uid_t)-1 on both sides.
pub fn check_id_mappings(maps: &[oci_spec::runtime::LinuxIdMapping], field: &str) -> Result<()> {
    for (i, m) in maps.iter().enumerate() {
        let (c, h, n) = (m.container_id(), m.host_id(), m.size());
        if n == 0 {
            bail!("{field}[{i}].size: must not be 0");
        }
        let end = |start: u32| u64::from(start) + u64::from(n) - 1;
        if end(c) >= u64::from(u32::MAX) || end(h) >= u64::from(u32::MAX) {
            bail!("{field}[{i}]: {c} {h} {n} reaches past the largest id (4294967294)");
        }
    }
    Ok(())
}

pub fn label(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// SELinux is on when selinuxfs is mounted (its `enforce` file exists).
pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// Whether the host runs the LSM a label is for: a label for an LSM that is
/// not there cannot be honoured, so `create` fails naming the field.
pub fn check_lsm_labels(p: &Process) -> Result<()> {
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    if label(p.apparmor_profile()).is_some() && !apparmor {
        bail!("process.apparmorProfile: AppArmor is not enabled on this host");
    }
    if label(p.selinux_label()).is_some() && !selinux_enabled() {
        bail!("process.selinuxLabel: SELinux is not enabled on this host");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_range_checked() {
        let p = |v: serde_json::Value| -> Process { serde_json::from_value(v).unwrap() };
        let ok = p(serde_json::json!({"user": {"uid": 2147483647, "gid": 0,
            "additionalGids": [1, 2147483647]}, "cwd": "/"}));
        assert!(check_user_ids(&ok, "process").is_ok());
        for (user, field) in [
            (
                serde_json::json!({"uid": 4294967295u32, "gid": 0}),
                "process.user.uid",
            ),
            (
                serde_json::json!({"uid": 0, "gid": 2147483648u32}),
                "process.user.gid",
            ),
            (
                serde_json::json!({"uid": 0, "gid": 0, "additionalGids": [5, 4294967295u32]}),
                "process.user.additionalGids[1]",
            ),
        ] {
            let e = check_user_ids(&p(serde_json::json!({"user": user, "cwd": "/"})), "process")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(field) && e.contains("0-2147483647"), "{e}");
        }
        let m = |c: u32, h: u32, n: u32| -> oci_spec::runtime::LinuxIdMapping {
            serde_json::from_value(serde_json::json!({"containerID": c, "hostID": h, "size": n}))
                .unwrap()
        };
        assert!(check_id_mappings(&[m(0, 100000, 65536), m(0, 0, u32::MAX)], "m").is_ok());
        assert!(check_id_mappings(&[m(0, 1, 0)], "m").is_err());
        assert!(check_id_mappings(&[m(0, 1, 1), m(1, u32::MAX, 1)], "m").is_err());
        assert!(check_id_mappings(&[m(u32::MAX - 1, 0, 2)], "m").is_err());
    }
}
