//! The process's identity and privileges: rlimits, oom_score_adj, the
//! session keyring, uid/gid/groups, the five capability sets, umask and
//! no_new_privs.
//! Runs in: stage-1 (rlimits) and init, after pivot_root (the rest).
use crate::spec::process::label;
use anyhow::{Context, Result, bail};
use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities, PosixRlimitType, Process};
use std::str::FromStr;

/// setrlimit's resource type: glibc's own enum type, musl's int.
#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

fn rlimit_resource(t: PosixRlimitType) -> Resource {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Done in stage-1, before any user namespace: inside one, hard limits
/// could not be raised any more.
pub fn set_rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().as_deref().unwrap_or_default() {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads a valid, initialised rlimit struct.
        if unsafe { libc::setrlimit(rlimit_resource(r.typ()), &lim) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("process.rlimits: setrlimit {:?}", r.typ()));
        }
    }
    Ok(())
}

/// oom_score_adj is written by the process itself, before it drops
/// CAP_SYS_RESOURCE (a negative value needs it).
pub fn set_oom_score_adj(p: &Process) -> Result<()> {
    if let Some(v) = p.oom_score_adj() {
        crate::procfs::proc_write("self/oom_score_adj", &v.to_string())
            .context("process.oomScoreAdj")?;
    }
    Ok(())
}

/// A fresh session keyring, so containers do not share the host's keys
/// (runc does the same unless --no-new-keyring).
pub fn join_session_keyring(id: &str) -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = std::ffi::CString::new(format!("_ses.{id}"))?;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, name) only reads the NUL-terminated name.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // Kernels without keyrings, or seccomp'd callers: runc ignores these too.
        if !matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) {
            return Err(e).context("join session keyring");
        }
    }
    Ok(())
}

fn to_caps(set: &Option<Capabilities>) -> Result<CapsHashSet> {
    set.iter()
        .flatten()
        .map(|c| {
            let n = format!("CAP_{c}");
            caps::Capability::from_str(&n).with_context(|| format!("unknown capability {n}"))
        })
        .collect()
}

/// An absent process.capabilities: every set empty, as runc and crun do.
/// (oci-spec's `LinuxCapabilities::default()` is the default spec's three
/// caps in every set, ambient included: not what an absent field means.)
pub fn no_caps() -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(None);
    c.set_effective(None);
    c.set_inheritable(None);
    c.set_permitted(None);
    c.set_ambient(None);
    c
}

/// Bounding set first (needs CAP_SETPCAP), then the user switch with
/// KEEPCAPS so the permitted set survives setuid, then E/P/I and ambient.
pub fn switch_user_and_caps(p: &Process) -> Result<()> {
    // A rootless user namespace has setgroups denied: groups cannot change there.
    let userns_setgroups = crate::procfs::read_text("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    let c = p.capabilities().clone().unwrap_or_else(no_caps);
    let bounding = to_caps(c.bounding())?;
    for cap in caps::all() {
        if bounding.contains(&cap) {
            continue;
        }
        // Dropping a capability the set lacks succeeds too: the set is read
        // only when a drop fails (EINVAL: the kernel lacks it; EPERM: no
        // CAP_SETPCAP), and that is an error only for one it still has.
        if let Err(e) = caps::drop(None, CapSet::Bounding, cap)
            && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
        {
            return Err(e).with_context(|| format!("process.capabilities.bounding: drop {cap}"));
        }
    }
    nix::sys::prctl::set_keepcaps(true).context("prctl(PR_SET_KEEPCAPS)")?;
    let u = p.user();
    if userns_setgroups {
        let groups: Vec<nix::unistd::Gid> = u
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups).context("process.user.additionalGids: setgroups")?;
    } else if u.additional_gids().as_ref().is_some_and(|g| !g.is_empty()) {
        bail!("process.user.additionalGids: setgroups is denied in this user namespace");
    }
    let gid = nix::unistd::Gid::from_raw(u.gid());
    nix::unistd::setresgid(gid, gid, gid)
        .with_context(|| format!("process.user.gid: setresgid {gid}"))?;
    let uid = nix::unistd::Uid::from_raw(u.uid());
    nix::unistd::setresuid(uid, uid, uid)
        .with_context(|| format!("process.user.uid: setresuid {uid}"))?;
    nix::sys::prctl::set_keepcaps(false).context("prctl(PR_SET_KEEPCAPS, 0)")?;
    // Each capset must keep effective ⊆ permitted: shrink effective first,
    // permitted last (while it is still full, inheritable may be set).
    caps::set(None, CapSet::Effective, &to_caps(c.effective())?)
        .context("process.capabilities.effective")?;
    caps::set(None, CapSet::Inheritable, &to_caps(c.inheritable())?)
        .context("process.capabilities.inheritable")?;
    caps::set(None, CapSet::Permitted, &to_caps(c.permitted())?)
        .context("process.capabilities.permitted")?;
    caps::clear(None, CapSet::Ambient).context("clear ambient capabilities")?;
    // The kernel allows an ambient cap only if it is permitted and
    // inheritable; runc's default spec asks for ambient caps without
    // inheritable ones and runc skips them, so do the same, with a note.
    let allowed = &to_caps(c.inheritable())? & &to_caps(c.permitted())?;
    for cap in to_caps(c.ambient())? {
        if !allowed.contains(&cap) {
            crate::log::debug(&format!(
                "ambient {cap} skipped: not permitted and inheritable"
            ));
            continue;
        }
        caps::raise(None, CapSet::Ambient, cap)
            .with_context(|| format!("process.capabilities.ambient: raise {cap}"))?;
    }
    let mask = u.umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        mask as libc::mode_t,
    ));
    Ok(())
}

/// Asks the LSMs to switch labels at the coming execve (runc's order: before
/// the user switch), through procfs-checked writes to our own attr files.
pub fn set_lsm_labels(p: &Process) -> Result<()> {
    if let Some(profile) = label(p.apparmor_profile()) {
        let text = format!("exec {profile}");
        crate::procfs::proc_write("thread-self/attr/apparmor/exec", &text)
            .or_else(|_| crate::procfs::proc_write("thread-self/attr/exec", &text))
            .context("process.apparmorProfile")?;
    }
    if let Some(l) = label(p.selinux_label()) {
        crate::procfs::proc_write("thread-self/attr/exec", l).context("process.selinuxLabel")?;
    }
    Ok(())
}

pub fn set_no_new_privs(p: &Process) -> Result<()> {
    if p.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().context("prctl(PR_SET_NO_NEW_PRIVS)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_capability_names_map_to_caps() {
        let set: Capabilities =
            serde_json::from_str(r#"["CAP_CHOWN","CAP_NET_BIND_SERVICE","CAP_BPF"]"#).unwrap();
        let got = to_caps(&Some(set)).unwrap();
        assert!(got.contains(&caps::Capability::CAP_CHOWN));
        assert!(got.contains(&caps::Capability::CAP_NET_BIND_SERVICE));
        assert!(got.contains(&caps::Capability::CAP_BPF));
        assert_eq!(got.len(), 3);
        assert!(to_caps(&None).unwrap().is_empty());
    }
}
