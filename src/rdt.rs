//! `linux.intelRdt`: the container's processes in a resctrl group (Intel
//! RDT / AMD PQoS cache and memory-bandwidth allocation), per the
//! runtime-spec's rules: the group is `closID`, or the container id; a
//! missing group is made (and removed at delete), an existing one must
//! already hold the schemata asked for; a `closID` without schemata must
//! exist. Without a mounted resctrl filesystem the spec requires an error,
//! which names the field. Monitoring (`enableMonitoring`, or the older
//! `enableCMT`/`enableMBM`) puts the container in a monitoring group of its
//! own, `mon_groups/<id>`, under that group.
//! Runs in: the runtime process (`plan`, `apply`, `remove`).
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdt {
    /// The resctrl group: `<mount>/<closID or id>`.
    pub dir: PathBuf,
    /// Set by `closID`: then the group may be shared and must exist when
    /// no schemata are given.
    pub clos_id: Option<String>,
    /// The schemata lines to write (or to find in an existing group).
    pub schemata: Vec<String>,
    /// `mon_groups/<id>` under `dir`, for monitoring.
    pub mon: Option<PathBuf>,
}

impl Rdt {
    /// The groups the container's processes are in: the control group,
    /// then the monitoring group if any.
    pub fn groups(&self) -> Vec<PathBuf> {
        std::iter::once(self.dir.clone())
            .chain(self.mon.clone())
            .collect()
    }
}

/// Puts the calling process in `groups` (an `exec`'d process joins the
/// container's, as runc's do); its children inherit them.
pub fn join_self(groups: &[PathBuf]) -> Result<()> {
    let pid = std::process::id().to_string();
    for g in groups {
        let tasks = g.join("tasks");
        std::fs::write(&tasks, &pid)
            .with_context(|| format!("linux.intelRdt: join {}", tasks.display()))?;
    }
    Ok(())
}

/// Where resctrl is mounted, from mountinfo text (the filesystem type
/// follows the " - " separator).
pub fn mount_point(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split(' ').next() != Some("resctrl") {
            return None;
        }
        pre.split(' ')
            .nth(4)
            .map(|p| PathBuf::from(p.replace("\\040", " ")))
    })
}

/// The host's resctrl mount, if any.
pub fn host_mount() -> Option<PathBuf> {
    let text = crate::procfs::read_text("/proc/self/mountinfo").ok()?;
    mount_point(&text)
}

fn check_group_name(n: &str, field: &str) -> Result<()> {
    if n.is_empty()
        || n == "."
        || n == ".."
        || n.contains('/')
        || n.contains('\n')
        || ["info", "mon_groups", "mon_data"].contains(&n)
    {
        bail!("{field}: {n:?} cannot name a resctrl group");
    }
    Ok(())
}

/// Pure but for `resctrl` (the mount point, None without one): the group
/// and what goes in it, checked.
pub fn plan(
    rdt: Option<&oci_spec::runtime::LinuxIntelRdt>,
    id: &str,
    resctrl: Option<&Path>,
) -> Result<Option<Rdt>> {
    let Some(r) = rdt else { return Ok(None) };
    let Some(root) = resctrl else {
        bail!(
            "linux.intelRdt: no resctrl filesystem is mounted on this host (Intel RDT needs one)"
        );
    };
    let clos_id = r.clos_id().clone();
    if let Some(c) = &clos_id {
        check_group_name(c, "linux.intelRdt.closID")?;
    }
    let group = clos_id.clone().unwrap_or_else(|| id.to_string());
    check_group_name(&group, "linux.intelRdt (the container id)")?;
    let mut schemata: Vec<String> = Vec::new();
    match r.schemata().as_ref().filter(|s| !s.is_empty()) {
        // runtime-spec 1.3: the complete schemata, as is.
        Some(all) => {
            for l in all {
                if l.contains('\n') {
                    bail!("linux.intelRdt.schemata: {l:?}: one line per entry");
                }
                schemata.push(l.trim().to_string());
            }
        }
        None => {
            let mb = r.mem_bw_schema().as_deref().map(str::trim);
            if let Some(mb) = mb
                && (!mb.starts_with("MB:") || mb.contains('\n'))
            {
                bail!(
                    "linux.intelRdt.memBwSchema: must be one line starting with \"MB:\", got {mb:?}"
                );
            }
            if let Some(l3) = r.l3_cache_schema().as_deref() {
                // A MB: line in l3CacheSchema gives way to memBwSchema.
                schemata.extend(
                    l3.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .filter(|l| mb.is_none() || !l.starts_with("MB:"))
                        .map(String::from),
                );
            }
            schemata.extend(mb.map(String::from));
        }
    }
    for l in &schemata {
        parse_line(l).with_context(|| format!("linux.intelRdt: bad schemata line {l:?}"))?;
    }
    #[allow(deprecated)]
    let monitor = r.enable_monitoring().unwrap_or(false)
        || r.enable_cmt().unwrap_or(false)
        || r.enable_mbm().unwrap_or(false);
    let dir = root.join(&group);
    Ok(Some(Rdt {
        mon: monitor.then(|| dir.join("mon_groups").join(id)),
        dir,
        clos_id,
        schemata,
    }))
}

/// Pure: "L3:0=7f0;1=1f" as (resource, [(domain, value)]); values in hex
/// but for MB (a percentage or MBps, decimal), compared as numbers.
fn parse_line(l: &str) -> Result<(String, Vec<(String, u64)>)> {
    let (res, rest) = l.split_once(':').context("no \"RESOURCE:\" prefix")?;
    let res = res.trim().to_ascii_uppercase();
    let radix = if res == "MB" { 10 } else { 16 };
    let mut out = Vec::new();
    for part in rest.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (dom, val) = part.split_once('=').context("no \"<domain>=<value>\"")?;
        let v = u64::from_str_radix(val.trim(), radix)
            .with_context(|| format!("{val:?} is not a value"))?;
        out.push((dom.trim().to_string(), v));
    }
    Ok((res, out))
}

/// Pure: each line of `want` has its values in `have` (a schemata file).
fn matches(want: &[String], have: &str) -> Result<(), String> {
    let have: Vec<_> = have.lines().filter_map(|l| parse_line(l).ok()).collect();
    for w in want {
        let Ok((res, vals)) = parse_line(w) else {
            return Err(w.clone());
        };
        let Some((_, hv)) = have.iter().find(|(r, _)| *r == res) else {
            return Err(w.clone());
        };
        if !vals.iter().all(|v| hv.contains(v)) {
            return Err(w.clone());
        }
    }
    Ok(())
}

/// Puts `pid` in the group, making it (and the monitoring group) as
/// needed. Returns the directories made, for `remove`, innermost last;
/// whatever it made is pushed to `made` even when it fails later.
pub fn apply(r: &Rdt, pid: i32, made: &mut Vec<PathBuf>) -> Result<()> {
    let field = "linux.intelRdt";
    if !r.dir.is_dir() {
        if let Some(c) = r.clos_id.as_ref().filter(|_| r.schemata.is_empty()) {
            bail!("linux.intelRdt.closID: no resctrl group {c:?} on this host");
        }
        std::fs::create_dir(&r.dir)
            .with_context(|| format!("{field}: create {}", r.dir.display()))?;
        made.push(r.dir.clone());
        write_schemata(r)?;
    } else if !r.schemata.is_empty() {
        if r.clos_id.is_some() {
            let path = r.dir.join("schemata");
            let have = std::fs::read_to_string(&path)
                .with_context(|| format!("{field}: read {}", path.display()))?;
            if let Err(line) = matches(&r.schemata, &have) {
                bail!(
                    "{field}: the existing group {} does not have {line:?} in its schemata",
                    r.dir.display()
                );
            }
        } else {
            write_schemata(r)?;
        }
    }
    let tasks = r.dir.join("tasks");
    std::fs::write(&tasks, pid.to_string())
        .with_context(|| format!("{field}: add the container to {}", tasks.display()))?;
    if let Some(mon) = &r.mon {
        std::fs::create_dir(mon)
            .with_context(|| format!("{field}.enableMonitoring: create {}", mon.display()))?;
        made.push(mon.clone());
        let tasks = mon.join("tasks");
        std::fs::write(&tasks, pid.to_string()).with_context(|| {
            format!(
                "{field}.enableMonitoring: add the container to {}",
                tasks.display()
            )
        })?;
    }
    Ok(())
}

fn write_schemata(r: &Rdt) -> Result<()> {
    if r.schemata.is_empty() {
        return Ok(());
    }
    let path = r.dir.join("schemata");
    let text = r.schemata.join("\n") + "\n";
    std::fs::write(&path, text).with_context(|| {
        // The kernel explains a refused line in info/last_cmd_status.
        let why = r
            .dir
            .parent()
            .map(|root| root.join("info/last_cmd_status"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|s| format!(" ({})", s.trim()))
            .unwrap_or_default();
        format!("linux.intelRdt: write {}{why}", path.display())
    })
}

/// Removes the groups `apply` made, innermost first (rmdir: the kernel
/// moves any task left back to the parent group).
pub fn remove(made: &[PathBuf]) -> Result<()> {
    for d in made.iter().rev() {
        match std::fs::remove_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("remove {}", d.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rdt(v: serde_json::Value) -> oci_spec::runtime::LinuxIntelRdt {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn finds_the_mount() {
        let mi = "22 1 0:20 / /sys rw - sysfs sysfs rw\n\
                  40 22 0:35 / /sys/fs/resctrl rw,relatime - resctrl resctrl rw\n";
        assert_eq!(mount_point(mi), Some(PathBuf::from("/sys/fs/resctrl")));
        assert_eq!(mount_point("22 1 0:20 / /sys rw - sysfs sysfs rw\n"), None);
    }

    #[test]
    fn refused_without_resctrl_naming_the_field() {
        let e = plan(Some(&rdt(json!({"closID": "x"}))), "c", None).unwrap_err();
        assert!(
            e.to_string().starts_with("linux.intelRdt: no resctrl"),
            "{e}"
        );
        assert_eq!(plan(None, "c", None).unwrap(), None);
    }

    #[test]
    fn schemata_rules() {
        let root = Path::new("/r");
        let p = plan(
            Some(&rdt(
                json!({"l3CacheSchema": "L3:0=7f0;1=1f\nMB:0=10", "memBwSchema": "MB:0=20"}),
            )),
            "c1",
            Some(root),
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.dir, Path::new("/r/c1"));
        assert_eq!(p.schemata, ["L3:0=7f0;1=1f", "MB:0=20"]);
        assert_eq!(p.mon, None);
        let p = plan(
            Some(&rdt(
                json!({"closID": "g", "schemata": ["L3:0=ff"], "l3CacheSchema": "L3:0=1",
                             "enableMonitoring": true}),
            )),
            "c1",
            Some(root),
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.schemata, ["L3:0=ff"]);
        assert_eq!(p.mon, Some(PathBuf::from("/r/g/mon_groups/c1")));
        for (bad, field) in [
            (json!({"closID": "a/b"}), "linux.intelRdt.closID: "),
            (json!({"closID": "info"}), "linux.intelRdt.closID: "),
            (
                json!({"memBwSchema": "L3:0=1"}),
                "linux.intelRdt.memBwSchema: ",
            ),
            (json!({"l3CacheSchema": "L3:0=zz"}), "linux.intelRdt: "),
        ] {
            let e = plan(Some(&rdt(bad.clone())), "c", Some(root))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(field), "{bad}: {e}");
        }
    }

    #[test]
    fn compares_schemata_as_numbers() {
        let have = "    L3:0=007f0;1=01f\n    MB:0= 20;1=100\n";
        let want = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(matches(&want(&["L3:0=7f0;1=1f", "MB:0=20"]), have).is_ok());
        assert_eq!(
            matches(&want(&["L3:0=7f0;1=3f"]), have),
            Err("L3:0=7f0;1=3f".to_string())
        );
        assert!(matches(&want(&["L2:0=1"]), have).is_err());
    }

    /// `apply` and `remove` against a directory standing in for resctrl
    /// (the kernel's files are plain files here).
    #[test]
    fn apply_makes_joins_and_removes() {
        let root = std::env::temp_dir().join(format!("skiff-rdt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let r = plan(
            Some(&rdt(
                json!({"l3CacheSchema": "L3:0=f", "enableMonitoring": true}),
            )),
            "c1",
            Some(&root),
        )
        .unwrap()
        .unwrap();
        let mut made = Vec::new();
        // The kernel makes mon_groups in a new group; a plain directory
        // has none, so the monitoring step fails after the rest is done.
        let e = apply(&r, 42, &mut made).unwrap_err().to_string();
        assert!(e.starts_with("linux.intelRdt.enableMonitoring: "), "{e}");
        assert_eq!(made, [root.join("c1")]);
        assert_eq!(
            std::fs::read_to_string(root.join("c1/schemata")).unwrap(),
            "L3:0=f\n"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("c1/tasks")).unwrap(),
            "42"
        );
        std::fs::remove_file(root.join("c1/schemata")).unwrap();
        std::fs::remove_file(root.join("c1/tasks")).unwrap();
        remove(&made).unwrap();
        assert!(!root.join("c1").exists());
        // A closID without schemata must exist.
        let r = plan(Some(&rdt(json!({"closID": "g"}))), "c1", Some(&root))
            .unwrap()
            .unwrap();
        let e = apply(&r, 42, &mut Vec::new()).unwrap_err().to_string();
        assert!(
            e.starts_with("linux.intelRdt.closID: no resctrl group"),
            "{e}"
        );
        // An existing closID group whose schemata differ.
        std::fs::create_dir(root.join("g")).unwrap();
        std::fs::write(root.join("g/schemata"), "L3:0=ff\n").unwrap();
        let r = plan(
            Some(&rdt(json!({"closID": "g", "l3CacheSchema": "L3:0=f"}))),
            "c1",
            Some(&root),
        )
        .unwrap()
        .unwrap();
        let e = apply(&r, 42, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("does not have \"L3:0=f\""), "{e}");
        let r = plan(
            Some(&rdt(json!({"closID": "g", "l3CacheSchema": "L3:0=0ff"}))),
            "c1",
            Some(&root),
        )
        .unwrap()
        .unwrap();
        let mut made = Vec::new();
        apply(&r, 7, &mut made).unwrap();
        assert!(made.is_empty(), "a shared group is not ours to remove");
        assert_eq!(std::fs::read_to_string(root.join("g/tasks")).unwrap(), "7");
        assert_eq!(r.groups(), [root.join("g")]);
        join_self(&r.groups()).unwrap();
        let me = std::process::id().to_string();
        assert_eq!(std::fs::read_to_string(root.join("g/tasks")).unwrap(), me);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
