//! `linux.intelRdt`: the container in a resctrl group. The spec requires
//! an error when no resctrl filesystem is mounted (this host's kernel has
//! none); where one is, the container's processes are in the group
//! (/proc/self/cpu_resctrl_groups) and a group made for it goes at delete.
use crate::{Bundle, Rt, is_skiff, require_root, skip};
use serde_json::json;

fn resctrl_mount() -> Option<String> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mi.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split(' ').next() == Some("resctrl"))
            .then(|| pre.split(' ').nth(4).unwrap().to_string())
    })
}

#[test]
fn intel_rdt_without_resctrl_is_refused_by_name() {
    require_root!();
    if resctrl_mount().is_some() {
        skip!("resctrl is mounted on this host: see intel_rdt_group_seen_inside");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["linux"]["intelRdt"] = json!({"closID": "skiff-test", "l3CacheSchema": "L3:0=f"}));
    b.args(&["true"]);
    let id = rt.id("rdt");
    let o = rt.create(&b, &id, &[]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(!rt.root.path().join(&id).exists(), "state dir left");
    if is_skiff() {
        // runc 1.1.5 names the feature differently.
        assert!(
            o.stderr
                .contains("linux.intelRdt: no resctrl filesystem is mounted"),
            "{o:?}"
        );
        assert_eq!(o.stderr.trim().lines().count(), 1, "{o:?}");
    }
    // A bare closID: runc 1.1.5 and crun 1.8 ignore it without resctrl,
    // against the spec's MUST (generate an error).
    if is_skiff() {
        b.edit(|c| c["linux"]["intelRdt"] = json!({"closID": "skiff-test"}));
        let id = rt.id("rdt");
        let o = rt.create(&b, &id, &[]);
        assert_eq!(o.code, Some(1), "{o:?}");
        assert!(o.stderr.contains("linux.intelRdt: "), "{o:?}");
        assert!(!rt.root.path().join(&id).exists(), "state dir left");
    }
}

#[test]
fn intel_rdt_group_seen_inside() {
    require_root!();
    let Some(root) = resctrl_mount() else {
        skip!("no resctrl filesystem mounted on this host (the kernel has no RDT support here)");
    };
    if !std::path::Path::new("/proc/self/cpu_resctrl_groups").exists() {
        skip!("this kernel does not show /proc/<pid>/cpu_resctrl_groups");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["linux"]["intelRdt"] = json!({}));
    let id = rt.sleeper(&b);
    let o = rt
        .out(&["exec", &id, "cat", "/proc/1/cpu_resctrl_groups"])
        .check("exec");
    assert!(o.stdout.contains(&format!("res:/{id}")), "{o:?}");
    // An exec'd process joins the group too.
    let o = rt
        .out(&["exec", &id, "cat", "/proc/self/cpu_resctrl_groups"])
        .check("exec");
    assert!(o.stdout.contains(&format!("res:/{id}")), "{o:?}");
    rt.out(&["delete", "--force", &id]).check("delete");
    assert!(
        !std::path::Path::new(&root).join(&id).exists(),
        "group left at delete"
    );
}
