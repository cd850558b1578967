//! runtime-spec conformance: unknown properties are ignored (and `skiff
//! validate` names them), defined ones are honoured or refused by name.
use crate::cgroup::cgroup_dirs_left;
use crate::{Bundle, Rt, is_skiff, logrus_text, mountinfo_at, require_root, skip};
use serde_json::json;
use std::fs;
use std::path::Path;

/// config.md "Extensibility": a runtime MUST NOT generate an error on an
/// unknown property and MUST ignore it. The known fields next to the
/// unknown ones are still honoured.
#[test]
fn unknown_fields_are_ignored() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.mount(
        json!({"destination": "/extra", "type": "tmpfs", "source": "tmpfs",
                   "options": ["size=64k"], "flavour": "x"}),
    );
    let n = b.config()["mounts"].as_array().unwrap().len() - 1;
    b.edit(|c| {
        c["linux"]["bogusField"] = json!({"deep": [1, 2]});
        c["process"]["bogus"] = json!(true);
        c["hostname"] = json!("conf-host");
        c["bogusTop"] = json!(null);
    });
    b.args(&["sh", "-c", "hostname; cat /proc/self/mountinfo"]);
    let log = rt.root.path().join("debug.log");
    let id = rt.id("unknown");
    let mut c = rt.cmd();
    c.arg("--debug").arg("--log").arg(&log);
    c.args(["run", "--bundle"]).arg(b.path()).arg(&id);
    let o = crate::output(c).check("run with unknown fields");
    assert!(o.stdout.starts_with("conf-host\n"), "{o:?}");
    let m = mountinfo_at(&o.stdout, "/extra");
    assert_eq!(m.len(), 1, "the tmpfs with an unknown field: {}", o.stdout);
    assert!(m[0].join(" ").contains("size=64k"), "{:?}", m[0]);
    assert!(!o.stderr.contains("unknown"), "{o:?}");
    if is_skiff() {
        // runc logs nothing about them; skiff names each in the debug log.
        let text = fs::read_to_string(&log).unwrap();
        for f in [
            "linux.bogusField".to_string(),
            format!("mounts[{n}].flavour"),
            "process.bogus".into(),
            "bogusTop".into(),
        ] {
            assert!(
                text.contains(&format!("unknown field \\\"{f}\\\"")),
                "debug log lacks {f}: {text}"
            );
        }
    }
}

/// `skiff validate`: unknown fields as warnings (exit 0), and the error
/// create would give (exit 1), without creating anything.
#[test]
fn validate_warns_on_unknown_fields_and_fails_like_create() {
    require_root!();
    if !is_skiff() {
        skip!("validate is a skiff command");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    let cg = format!("/{}-cg", rt.id("validate"));
    b.edit(|c| {
        c["linux"]["bogusField"] = json!(1);
        c["mounts"][2]["flavour"] = json!("x");
        c["linux"]["cgroupsPath"] = json!(cg);
        c["linux"]["resources"]["pids"] = json!({"limit": 10});
    });
    let bundle = b.path().to_str().unwrap();
    let o = rt.out(&["validate", "--bundle", bundle]);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(
        o.stderr,
        "warning: config.json: unknown field \"mounts[2].flavour\"\n\
         warning: config.json: unknown field \"linux.bogusField\"\n"
    );
    assert!(o.stdout.is_empty(), "{o:?}");
    assert!(cgroup_dirs_left(&cg).is_empty(), "validate made a cgroup");
    // A valid config without unknown fields: silent.
    let clean = Bundle::new();
    let o = rt.out(&["validate", "-b", clean.path().to_str().unwrap()]);
    assert_eq!((o.code, o.stderr.as_str()), (Some(0), ""), "{o:?}");

    // An error create gives before its first fork: the same message.
    b.edit(|c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
    });
    let v = rt.out(&["validate", "--bundle", bundle]);
    assert_eq!(v.code, Some(1), "{v:?}");
    let err = v.stderr.lines().last().unwrap_or_default().to_string();
    assert!(err.contains("linux.sysctl"), "{v:?}");
    let id = rt.id("validate-create");
    let c = rt.create(&b, &id, &[]);
    assert_eq!(c.code, Some(1), "{c:?}");
    // The same logged message (the time may have ticked in between).
    let msg = |s: &str| logrus_text(s.trim()).map(|l| l.1);
    assert!(msg(&err).is_some(), "not a logrus line: {v:?}");
    assert_eq!(msg(&c.stderr), msg(&err), "validate and create disagree");
    // Nothing made: no state, no cgroup.
    let left: Vec<_> = fs::read_dir(rt.root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| !n.to_string_lossy().starts_with("create-"))
        .collect();
    assert!(left.is_empty(), "state left: {left:?}");
    assert!(
        cgroup_dirs_left(&cg).is_empty(),
        "{:?}",
        cgroup_dirs_left(&cg)
    );

    // Unparsable: exit 1, nothing made.
    fs::write(b.path().join("config.json"), "{\"process\": ").unwrap();
    let o = rt.out(&["validate", "--bundle", bundle]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.contains("config.json"), "{o:?}");
}

/// hugepageLimits reach the kernel or fail create by name (runc and crun
/// refuse too): a page size the kernel lacks has no hugetlb.<size>.* file.
#[test]
fn hugepage_limits_apply_or_are_refused() {
    require_root!();
    let unified = Path::new("/sys/fs/cgroup/unified");
    let ctrls = fs::read_to_string(unified.join("cgroup.controllers")).unwrap_or_default();
    if !ctrls.split_whitespace().any(|c| c == "hugetlb")
        || !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
        || Path::new("/sys/kernel/mm/hugepages/hugepages-3072kB").exists()
    {
        skip!("needs hugetlb in a hybrid unified hierarchy, 2MB pages and no 3MB ones");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["sleep", "100"]);
    let id = rt.id("huge3");
    let cg = format!("/{id}-cg");
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(cg);
        c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "3MB", "limit": 6291456}]);
    });
    let o = rt.create(&b, &id, &[]);
    assert_eq!(o.code, Some(1), "{o:?}");
    if is_skiff() {
        // runc 1.1.5 also fails, on the v1 hugetlb mount it cannot find.
        let want = format!(
            "linux.resources.hugepageLimits: page size \"3MB\" is not supported by this kernel (it has: {})",
            kernel_sizes()
        );
        let logged = logrus_text(o.stderr.trim()).map(|l| (l.0, l.1));
        assert_eq!(logged, Some(("error".into(), want)), "{o:?}");
    }
    assert!(rt.state(&id).is_none(), "state after a failed create");
    assert!(
        cgroup_dirs_left(&cg).is_empty(),
        "{:?}",
        cgroup_dirs_left(&cg)
    );
    if !is_skiff() {
        skip!("runc 1.1.5 cannot set hugetlb on a hybrid host");
    }
    let id = rt.id("huge2");
    let cg = format!("/{id}-cg");
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(cg);
        c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 6291456}]);
    });
    rt.create(&b, &id, &[])
        .check("create with 2MB hugepageLimits");
    // The container's own cgroup2 path, as its init's /proc/<pid>/cgroup names it.
    let pid = rt.pid(&id);
    let own = crate::cgroup::cgroup_of(pid, "").unwrap();
    assert_eq!(own, cg);
    let max = unified
        .join(own.trim_start_matches('/'))
        .join("hugetlb.2MB.max");
    assert_eq!(fs::read_to_string(&max).unwrap().trim(), "6291456");
}

/// The kernel's page sizes as skiff names them, smallest first.
fn kernel_sizes() -> String {
    let mut kb: Vec<u64> = fs::read_dir("/sys/kernel/mm/hugepages")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()
        })
        .collect();
    kb.sort_unstable();
    let name = |k: u64| match k {
        k if k >= 1 << 20 => format!("{}GB", k >> 20),
        k if k >= 1 << 10 => format!("{}MB", k >> 10),
        k => format!("{k}KB"),
    };
    kb.into_iter().map(name).collect::<Vec<_>>().join(", ")
}

/// memory.kernelTCP reaches memory.kmem.tcp.limit_in_bytes where the kernel
/// has it (crun sets it too), as the container's own cgroup shows it.
#[test]
fn kernel_tcp_is_applied_where_the_kernel_has_it() {
    require_root!();
    let file = "memory.kmem.tcp.limit_in_bytes";
    let host = Path::new("/sys/fs/cgroup/memory").join(file);
    let rt = Rt::new();
    let b = Bundle::new();
    let limit = 8 * 1024 * 1024;
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20, "kernelTCP": limit}));
    b.args(&["cat", &format!("/sys/fs/cgroup/memory/{file}")]);
    let id = rt.id("ktcp");
    let o = rt.run(&b, &id, &[]);
    if !host.exists() {
        if is_skiff() {
            assert!(
                o.stderr
                    .contains("linux.resources.memory.kernelTCP: ignored"),
                "{o:?}"
            );
        }
        skip!("this kernel has no {file} (no cgroup v1 kmem accounting)");
    }
    let o = o.check("run with kernelTCP");
    if !is_skiff() {
        // runc 1.1.5 ignores kernelTCP ("Kernel memory settings are ignored
        // and will be removed"); skiff applies it, as crun does.
        assert!(o.stderr.contains("Kernel memory"), "{o:?}");
        return;
    }
    assert_eq!(o.stdout.trim(), limit.to_string(), "{o:?}");
    assert!(!o.stderr.contains("kernelTCP"), "{o:?}");
}

/// linux.mountLabel without SELinux: nothing to label, so the container
/// runs and its mounts carry no `context=` (crun does the same).
#[test]
fn mount_label_without_selinux_is_accepted_and_ignored() {
    require_root!();
    if Path::new("/sys/fs/selinux/enforce").exists() {
        skip!("SELinux is enabled here: skiff refuses linux.mountLabel");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2"));
    b.args(&["cat", "/proc/self/mountinfo"]);
    let id = rt.id("mountlabel");
    let o = rt.run(&b, &id, &[]);
    if !is_skiff() {
        // runc 1.1.5 adds context="…" to its tmpfs mounts even with SELinux
        // off, and the kernel refuses the option: create fails.
        assert!(!o.ok() && o.stderr.contains("context="), "{o:?}");
        return;
    }
    let o = o.check("run with linux.mountLabel");
    for dst in ["/dev", "/dev/shm", "/dev/mqueue"] {
        let m = mountinfo_at(&o.stdout, dst);
        assert_eq!(m.len(), 1, "{dst}: {}", o.stdout);
        assert!(!m[0].join(" ").contains("context="), "{:?}", m[0]);
    }
}
