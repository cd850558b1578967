//! `skiff check`: what this host gives a container runtime, and what skiff
//! does about each thing. Read-only probes, none of which leaves anything
//! behind (a detached idmapped mount is dropped unattached, a helper
//! process is reaped); they run only here, never in create/run/exec.
//! Exit 0 whatever the host lacks: the report is the result; only an
//! internal failure (stdout closed) is an error.
//! Runs in: the runtime process, for this subcommand only.
use crate::Globals;
use crate::cgroup::{Layout, own_path, parse_self_cgroup, read_self_cgroup};
use crate::cli::{Cmd, Opt, one_of};
use anyhow::Result;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Args {
    pub format: String,
    /// The global --criu, filled in by main.
    pub criu: Option<PathBuf>,
}

pub static CLI: Cmd<Args> = Cmd {
    init: || Args {
        format: "text".into(),
        criu: None,
    },
    opts: &[Opt::value(
        "format",
        Some('f'),
        "FORMAT",
        "Select one of: text or json [default: text] [possible values: text, json]",
        |a, v| one_of(v, &["text", "json"]).map(|f| a.format = f),
    )],
    args: &[],
    set_args: |_, _| {},
};

/// One thing checked: its JSON key and label, a short state for people,
/// what skiff does about it, and the facts (the JSON object).
struct Item {
    key: &'static str,
    state: String,
    skiff: String,
    facts: Value,
}

#[inline(never)]
pub fn run(args: Args, _g: &Globals) -> Result<()> {
    let items = [
        kernel(),
        cgroup(),
        systemd(),
        openat2(),
        user_namespaces(),
        idmapped_mounts(),
        seccomp_notify(),
        pidfd(),
        time_namespace(),
        criu(args.criu.as_deref()),
        apparmor(),
        selinux(),
    ];
    let text = match args.format.as_str() {
        "json" => serde_json::to_string_pretty(&to_json(&items))? + "\n",
        _ => to_text(&items),
    };
    use std::io::Write;
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

/// `{key: {facts..., "state": ..., "skiff": ...}}`, keys in a fixed order.
fn to_json(items: &[Item]) -> Value {
    let mut top = Map::new();
    for i in items {
        let mut o = match &i.facts {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        o.insert("state".into(), i.state.clone().into());
        o.insert("skiff".into(), i.skiff.clone().into());
        top.insert(i.key.into(), Value::Object(o));
    }
    Value::Object(top)
}

const WIDTH: usize = 17;

fn to_text(items: &[Item]) -> String {
    let mut s = String::new();
    for i in items {
        let label = i.key.replace('_', " ");
        s += &format!("{label:<WIDTH$}{}\n", i.state);
        if !i.skiff.is_empty() {
            s += &format!("{:WIDTH$}→ {}\n", "", i.skiff);
        }
    }
    s
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_num(path: &str) -> Option<u64> {
    read(path)?.parse().ok()
}

fn kernel() -> Item {
    let u = nix::sys::utsname::uname().ok();
    let release = u
        .as_ref()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    Item {
        key: "kernel",
        state: release.clone(),
        skiff: String::new(),
        facts: json!({"release": release}),
    }
}

/// Controllers listed in a cgroup2 directory's `file`.
fn v2_list(dir: &Path, file: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn cgroup() -> Item {
    let layout = Layout::read().unwrap_or(Layout::NONE);
    match layout {
        Layout::V2 { mount } => {
            let own = read_self_cgroup().unwrap_or_default();
            let own = parse_self_cgroup(&own);
            let here = own_path(&own, &[]).unwrap_or("/");
            let dir = mount.point.join(here.trim_start_matches('/'));
            let available = v2_list(&dir, "cgroup.controllers");
            let delegated = v2_list(&dir, "cgroup.subtree_control");
            Item {
                key: "cgroup",
                state: format!(
                    "v2 at {}; controllers here ({here}): {}; enabled for children: {}",
                    mount.point.display(),
                    list_or_none(&available),
                    list_or_none(&delegated)
                ),
                skiff: "one cgroup2 directory per container; the controllers its \
                        limits need are enabled in cgroup.subtree_control on the way down"
                    .into(),
                facts: json!({
                    "layout": "v2",
                    "mount": mount.point,
                    "cgroup": here,
                    "controllers": available,
                    "subtree_control": delegated,
                }),
            }
        }
        Layout::V1 {
            hierarchies,
            unified,
        } if !hierarchies.is_empty() => {
            let mut v1: Vec<String> = hierarchies
                .iter()
                .flat_map(|h| h.subsystems.iter().cloned())
                .collect();
            v1.sort();
            let (layout, state, facts_unified, controllers) = match &unified {
                Some(u) => {
                    let c = v2_list(&u.point, "cgroup.controllers");
                    let state = format!(
                        "hybrid: v1 {}; cgroup2 at {} with {}",
                        v1.join(","),
                        u.point.display(),
                        list_or_none(&c)
                    );
                    ("hybrid", state, json!(u.point), c)
                }
                None => ("v1", format!("v1: {}", v1.join(",")), Value::Null, vec![]),
            };
            let skiff = match layout {
                "hybrid" => {
                    "one directory per v1 hierarchy, as runc 1.1; the container \
                     joins the cgroup2 hierarchy too, and hugetlb limits go there \
                     when v1 has no hugetlb"
                }
                _ => "one directory per v1 hierarchy, as runc 1.1",
            };
            Item {
                key: "cgroup",
                state,
                skiff: skiff.into(),
                facts: json!({
                    "layout": layout,
                    "v1_controllers": v1,
                    "unified": facts_unified,
                    "unified_controllers": controllers,
                }),
            }
        }
        Layout::V1 { .. } => Item {
            key: "cgroup",
            state: "none mounted".into(),
            skiff: "create fails: no cgroup filesystem is mounted".into(),
            facts: json!({"layout": "none"}),
        },
    }
}

fn list_or_none(v: &[String]) -> String {
    match v.is_empty() {
        true => "none".into(),
        false => v.join(","),
    }
}

const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

fn systemd() -> Item {
    // sd_booted(3): systemd is PID 1 when this directory exists.
    let running = Path::new("/run/systemd/system").is_dir();
    let bus = Path::new(SYSTEM_BUS).exists();
    let (state, skiff) = match (running, bus) {
        (true, true) => (
            "running, system bus up".to_string(),
            "--systemd-cgroup can work: containers go in transient scopes over D-Bus",
        ),
        (true, false) => (
            format!("running, but no system bus at {SYSTEM_BUS}"),
            "--systemd-cgroup cannot work without the system bus; cgroupfs is used without it",
        ),
        (false, _) => (
            "not running (no /run/systemd/system)".to_string(),
            "--systemd-cgroup fails (systemd is not running); cgroups are managed through the filesystem",
        ),
    };
    Item {
        key: "systemd",
        state,
        skiff: skiff.into(),
        facts: json!({"running": running, "system_bus": bus}),
    }
}

fn openat2() -> Item {
    let ok = crate::rootfs::openat2_works();
    let skiff = match ok {
        true => {
            "paths in the rootfs are resolved with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)"
        }
        false => "paths in the rootfs are resolved by a userspace walk with the same rules",
    };
    Item {
        key: "openat2",
        state: yes_no(ok).into(),
        skiff: skiff.into(),
        facts: json!({"available": ok}),
    }
}

/// `/etc/subuid`-style ranges of `name` (or of `uid` given by number).
fn sub_ranges(text: &str, name: &str, uid: u32) -> Vec<(u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            let who = *f.first()?;
            let mine = who == name || who.parse() == Ok(uid);
            (mine && f.len() == 3).then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?)))?
        })
        .collect()
}

/// The first of `names` found in $PATH.
fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn user_namespaces() -> Item {
    let max = read_num("/proc/sys/user/max_user_namespaces");
    let clone = read_num("/proc/sys/kernel/unprivileged_userns_clone");
    let restrict = read_num("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    let uid = nix::unistd::geteuid().as_raw();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let user = super::list::user_name(&passwd, uid).unwrap_or_else(|| uid.to_string());
    let ranges = |file: &str| -> Vec<Value> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        sub_ranges(&text, &user, uid)
            .into_iter()
            .map(|(start, count)| json!({"start": start, "count": count}))
            .collect()
    };
    let (subuid, subgid) = (ranges("/etc/subuid"), ranges("/etc/subgid"));
    let show = |r: &[Value]| -> String {
        let v: Vec<String> = r
            .iter()
            .map(|r| format!("{}+{}", r["start"], r["count"]))
            .collect();
        list_or_none(&v)
    };
    let mut state = match max {
        Some(0) => "off (max_user_namespaces is 0)".to_string(),
        Some(n) => format!("yes (max {n})"),
        None => "no (kernel without user namespaces)".to_string(),
    };
    if clone == Some(0) {
        state += ", unprivileged ones off (unprivileged_userns_clone=0)";
    }
    if restrict == Some(1) {
        state += ", unprivileged ones restricted by AppArmor";
    }
    state += &format!(
        "; subuid for {user}: {}, subgid: {}",
        show(&subuid),
        show(&subgid)
    );
    let helpers = in_path("newuidmap").is_some() && in_path("newgidmap").is_some();
    let skiff = format!(
        "a user namespace's maps are written directly with CAP_SETUID/CAP_SETGID or for \
         one's own id; other ranges go through newuidmap/newgidmap ({})",
        match helpers {
            true => "installed",
            false => "not installed: such maps fail without root",
        }
    );
    Item {
        key: "user_namespaces",
        state,
        skiff,
        facts: json!({
            "max_user_namespaces": max,
            "unprivileged_userns_clone": clone,
            "apparmor_restrict_unprivileged_userns": restrict,
            "user": user,
            "subuid": subuid,
            "subgid": subgid,
            "newuidmap": helpers,
        }),
    }
}

fn idmapped_mounts() -> Item {
    let at = Path::new("/");
    if !nix::unistd::geteuid().is_root() {
        return Item {
            key: "idmapped_mounts",
            state: "not probed (open_tree needs root)".into(),
            skiff: "idmapped bind mounts are made by the runtime, as root".into(),
            facts: json!({"available": null, "probed": null, "error": null}),
        };
    }
    let r = crate::rootfs::probe_idmapped(at);
    let (state, skiff) = match &r {
        Ok(()) => (
            format!("yes (probed on {})", at.display()),
            "mounts[].uidMappings/gidMappings and \"idmap\"/\"ridmap\" become idmapped bind mounts"
                .to_string(),
        ),
        Err(e) => (
            format!("no ({e:#})"),
            "a bind mount asking for an idmap fails at create, naming the mount; \
             support also depends on the source's filesystem"
                .to_string(),
        ),
    };
    Item {
        key: "idmapped_mounts",
        state,
        skiff,
        facts: json!({
            "available": r.is_ok(),
            "probed": at,
            "error": r.err().map(|e| format!("{e:#}")),
        }),
    }
}

/// SECCOMP_GET_NOTIF_SIZES: answered by any kernel with user notification (5.0).
fn notify_works() -> bool {
    let mut sizes = [0u16; 3];
    // SAFETY: the kernel writes three u16 (struct seccomp_notif_sizes) into `sizes`.
    let r = unsafe { libc::syscall(libc::SYS_seccomp, 3, 0, sizes.as_mut_ptr()) };
    r == 0
}

fn seccomp_notify() -> Item {
    let ok = notify_works();
    let actions: Vec<String> = read("/proc/sys/kernel/seccomp/actions_avail")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let skiff = match ok {
        true => "SCMP_ACT_NOTIFY rules get a listener fd, sent to linux.seccomp.listenerPath",
        false => "a profile with SCMP_ACT_NOTIFY fails at create",
    };
    Item {
        key: "seccomp_notify",
        state: format!(
            "{} (kernel actions: {})",
            yes_no(ok),
            list_or_none(&actions)
        ),
        skiff: skiff.into(),
        facts: json!({"available": ok, "actions_avail": actions}),
    }
}

fn pidfd() -> Item {
    let ok = crate::pidfd::open(std::process::id() as i32).is_ok();
    let skiff = match ok {
        true => "kill, delete, hooks and events signal and wait through pidfds (no pid reuse)",
        false => "kill, hook timeouts and events need pidfd_open (Linux 5.3): they fail",
    };
    Item {
        key: "pidfd",
        state: yes_no(ok).into(),
        skiff: skiff.into(),
        facts: json!({"available": ok}),
    }
}

fn time_namespace() -> Item {
    let ok = Path::new("/proc/self/ns/time").exists();
    let skiff = match ok {
        true => "a \"time\" namespace and linux.timeOffsets are applied",
        false => "a config with a \"time\" namespace fails at create",
    };
    Item {
        key: "time_namespace",
        state: yes_no(ok).into(),
        skiff: skiff.into(),
        facts: json!({"available": ok}),
    }
}

/// The first line of `criu --version` ("Version: 3.17.1") → "3.17.1".
fn criu_version(out: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Version:"))
        .map(|v| v.trim().to_string())
}

fn criu(flag: Option<&Path>) -> Item {
    let path = match flag {
        Some(p) if p.components().count() > 1 => Some(p.to_path_buf()).filter(|p| p.is_file()),
        Some(p) => in_path(&p.to_string_lossy()),
        None => in_path("criu"),
    };
    let supported = crate::cli::SUBS.iter().any(|s| s.name == "checkpoint");
    let skiff = match supported {
        true => "checkpoint and restore run it",
        false => "skiff has no checkpoint/restore yet: not used",
    };
    let Some(path) = path else {
        let name = flag.map_or("criu".into(), |p| p.display().to_string());
        return Item {
            key: "criu",
            state: format!("not found ({name})"),
            skiff: skiff.into(),
            facts: json!({"path": null, "version": null, "check": null}),
        };
    };
    let run = |arg: &str| std::process::Command::new(&path).arg(arg).output().ok();
    let version = run("--version").and_then(|o| criu_version(&String::from_utf8_lossy(&o.stdout)));
    let check = run("check").map(|o| match o.status.success() {
        true => "ok".to_string(),
        false => {
            let err = String::from_utf8_lossy(&o.stderr);
            // criu's first error names the cause; the last only that it stopped.
            let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            format!("failed: {}", first.trim())
        }
    });
    Item {
        key: "criu",
        state: format!(
            "{} version {}; criu check: {}",
            path.display(),
            version.as_deref().unwrap_or("unknown"),
            check.as_deref().unwrap_or("could not run")
        ),
        skiff: match (supported, check.as_deref()) {
            (true, Some("ok")) => skiff.into(),
            (true, _) => "checkpoint and restore run it, and fail with criu's reason until `criu check` passes on this kernel".into(),
            _ => skiff.into(),
        },
        facts: json!({"path": path, "version": version, "check": check}),
    }
}

fn apparmor() -> Item {
    let on = read("/sys/module/apparmor/parameters/enabled").as_deref() == Some("Y");
    let skiff = match on {
        true => "process.apparmorProfile is applied at exec",
        false => "a config naming process.apparmorProfile fails at create",
    };
    Item {
        key: "apparmor",
        state: yes_no(on).into(),
        skiff: skiff.into(),
        facts: json!({"enabled": on}),
    }
}

fn selinux() -> Item {
    let enforce = read_num("/sys/fs/selinux/enforce");
    let on = crate::spec::process::selinux_enabled();
    let state = match (on, enforce) {
        (false, _) => "no".to_string(),
        (true, Some(1)) => "yes, enforcing".to_string(),
        (true, _) => "yes, permissive".to_string(),
    };
    let skiff = match on {
        true => "process.selinuxLabel is applied; linux.mountLabel is refused (not supported yet)",
        false => "process.selinuxLabel fails at create; linux.mountLabel is ignored",
    };
    Item {
        key: "selinux",
        state,
        skiff: skiff.into(),
        facts: json!({"enabled": on, "enforcing": enforce.map(|e| e == 1)}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_by_name_or_uid() {
        let t = "alice:100000:65536\n1000:200000:10\nbob:300000:5\nbad line\nalice:x:1\n";
        assert_eq!(
            sub_ranges(t, "alice", 1000),
            [(100000, 65536), (200000, 10)]
        );
        assert_eq!(sub_ranges(t, "carol", 7), []);
    }

    #[test]
    fn criu_version_line() {
        assert_eq!(
            criu_version("Version: 3.17.1\nGitID: v3.17\n").as_deref(),
            Some("3.17.1")
        );
        assert_eq!(criu_version("nonsense"), None);
    }

    #[test]
    fn json_keys_are_stable() {
        let items = [
            Item {
                key: "a",
                state: "s".into(),
                skiff: "k".into(),
                facts: json!({"x": 1}),
            },
            Item {
                key: "b",
                state: "t".into(),
                skiff: String::new(),
                facts: Value::Null,
            },
        ];
        assert_eq!(
            to_json(&items),
            json!({"a": {"x": 1, "state": "s", "skiff": "k"}, "b": {"state": "t", "skiff": ""}})
        );
        assert_eq!(
            to_text(&items),
            "a                s\n                 → k\nb                t\n"
        );
    }
}
