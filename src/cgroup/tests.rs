//! Runs in: unit tests. Fixture trees in a tempdir stand in for cgroupfs: the
//! tests create the files the kernel would, and delete them before `destroy`
//! (cgroupfs `rmdir` ignores control files, a normal filesystem does not).

use super::*;
use std::fs;

struct Tmp(PathBuf);
impl Tmp {
    fn new(name: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("skiff-cg-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const HYBRID_CTRLS: &[(&str, &str)] = &[
    ("cpu", "cpu"),
    ("cpuacct", "cpuacct"),
    ("cpuset", "cpuset"),
    ("memory", "memory"),
    ("devices", "devices"),
    ("freezer", "freezer"),
    ("blkio", "blkio"),
    ("pids", "pids"),
    ("systemd", "name=systemd"),
];

/// This host's layout (see /proc/self/mountinfo), rooted at `root`.
fn hybrid(root: &Path) -> (String, String) {
    let mut mi = format!(
        "31 23 0:28 / {} rw,relatime - tmpfs tmpfs rw,mode=755\n",
        root.display()
    );
    for (i, (dir, opt)) in HYBRID_CTRLS.iter().enumerate() {
        fs::create_dir_all(root.join(dir)).unwrap();
        mi += &format!(
            "{} 31 0:{} / {}/{dir} rw,relatime - cgroup cgroup rw,{opt}\n",
            32 + i,
            29 + i,
            root.display()
        );
    }
    fs::create_dir_all(root.join("unified")).unwrap();
    mi += &format!(
        "41 31 0:38 / {}/unified rw,relatime - cgroup2 cgroup2 rw\n",
        root.display()
    );
    let own = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n4:memory:/process_api/abc\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";
    (mi, own.to_string())
}

fn pure_v2(root: &Path) -> (String, String) {
    let mi = format!(
        "25 30 0:23 / /sys rw - sysfs sysfs rw\n29 25 0:26 / {} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        root.display()
    );
    (mi, "0::/user.slice/session-1.scope\n".to_string())
}

fn dir_of<'a>(cg: &'a Cgroup, ctrl: &str) -> &'a Path {
    &cg.hierarchies
        .iter()
        .find(|h| {
            h.controllers.iter().any(|c| c == ctrl) || (ctrl.is_empty() && h.version == Version::V2)
        })
        .unwrap()
        .dir
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

/// A /sys/kernel/mm/hugepages with 2MB and 1GB pages, under `root`.
fn hugepages(root: &Path) -> PathBuf {
    let dir = root.join("hugepages");
    for d in ["hugepages-2048kB", "hugepages-1048576kB"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    dir
}

#[test]
fn hugepage_sizes_are_named_as_the_kernel_names_its_files() {
    let t = Tmp::new("hugepage-sizes");
    let dir = hugepages(&t.0);
    fs::create_dir_all(dir.join("hugepages-64kB")).unwrap();
    fs::create_dir_all(dir.join("other")).unwrap();
    assert_eq!(resources::hugepage_sizes(&dir), ["64KB", "2MB", "1GB"]);
    assert!(resources::hugepage_sizes(&t.0.join("absent")).is_empty());
}

#[test]
fn hugepage_limits_are_refused_by_name_unless_applicable() {
    let t = Tmp::new("hugepage-refuse");
    let pages = hugepages(&t.0);
    let (mi, own) = hybrid(&t.0);
    let cg = Cgroup::resolve_with(&mi, &own, Some(Path::new("/c1")), "c1").unwrap();
    let limit = |size: &str| {
        res(&format!(
            r#"{{"hugepageLimits":[{{"pageSize":"{size}","limit":4194304}}]}}"#
        ))
    };
    fs::write(t.0.join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
    let ws = cg.plan_in(Some(&limit("2MB")), &pages).unwrap();
    assert_eq!(
        ws.iter()
            .filter(|w| *w.controller() == Controller::Hugetlb)
            .filter_map(Write::file)
            .collect::<Vec<_>>(),
        [("hugetlb.2MB.max", "4194304")]
    );
    // A page size this kernel lacks: no file to write, so an error naming it.
    let e = cg
        .plan_in(Some(&limit("3MB")), &pages)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "linux.resources.hugepageLimits: page size \"3MB\" is not supported by this kernel (it has: 2MB, 1GB)"
    );
    let e = cg
        .plan_in(Some(&limit("2MB")), &t.0.join("none"))
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("(it has: none)"), "{e}");
    // The unified root does not offer hugetlb.
    fs::write(t.0.join("unified/cgroup.controllers"), "memory pids\n").unwrap();
    let e = cg
        .plan_in(Some(&limit("2MB")), &pages)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "linux.resources.hugepageLimits: the hugetlb cgroup controller is not available"
        ),
        "{e}"
    );
    // v1 without a hugetlb hierarchy or a unified one: not mounted.
    let v1_only: String = mi
        .lines()
        .filter(|l| !l.contains("cgroup2"))
        .map(|l| format!("{l}\n"))
        .collect();
    let cg = Cgroup::resolve_with(&v1_only, &own, Some(Path::new("/c1")), "c1").unwrap();
    let e = cg
        .plan_in(Some(&limit("2MB")), &pages)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "linux.resources.hugepageLimits: the hugetlb cgroup controller is not mounted on this host"
    );
}

#[test]
fn resolve_hybrid_absolute_relative_default() {
    let t = Tmp::new("resolve-hybrid");
    let r = &t.0;
    let (mi, own) = hybrid(r);
    let cg = Cgroup::resolve_with(&mi, &own, Some(Path::new("/default/c1")), "c1").unwrap();
    assert_eq!(cg.version, Version::V1);
    assert_eq!(cg.hierarchies.len(), HYBRID_CTRLS.len() + 1);
    assert_eq!(dir_of(&cg, "memory"), r.join("memory/default/c1"));
    assert_eq!(dir_of(&cg, "name=systemd"), r.join("systemd/default/c1"));
    assert_eq!(dir_of(&cg, ""), r.join("unified/default/c1"));

    // relative: under the runtime's own cgroup in each hierarchy (runc 1.1)
    let cg = Cgroup::resolve_with(&mi, &own, Some(Path::new("rel/x")), "c1").unwrap();
    assert_eq!(
        dir_of(&cg, "memory"),
        r.join("memory/process_api/abc/rel/x")
    );
    assert_eq!(dir_of(&cg, "cpu"), r.join("cpu/rel/x"));

    // empty or absent: "<id>", relative, as `runc create` does on this host
    for p in [None, Some(Path::new(""))] {
        let cg = Cgroup::resolve_with(&mi, &own, p, "c1").unwrap();
        assert_eq!(dir_of(&cg, "memory"), r.join("memory/process_api/abc/c1"));
        assert_eq!(dir_of(&cg, ""), r.join("unified/c1"));
    }

    // ".." cannot climb out of the hierarchy
    let cg = Cgroup::resolve_with(&mi, &own, Some(Path::new("/a/../../../etc")), "c1").unwrap();
    assert_eq!(dir_of(&cg, "pids"), r.join("pids/etc"));
    assert!(Cgroup::resolve_with(&mi, &own, Some(Path::new("/..")), "c1").is_err());
    assert!(Cgroup::resolve_with(&mi, &own, None, "a/b").is_err());
}

#[test]
fn resolve_pure_v2() {
    let t = Tmp::new("resolve-v2");
    let (mi, own) = pure_v2(&t.0);
    let cg = Cgroup::resolve_with(&mi, &own, Some(Path::new("/default/c1")), "c1").unwrap();
    assert_eq!(cg.version, Version::V2);
    assert_eq!(cg.hierarchies.len(), 1);
    assert_eq!(cg.hierarchies[0].dir, t.0.join("default/c1"));
    // relative: under the *parent* of our own cgroup (runc fs2)
    let cg = Cgroup::resolve_with(&mi, &own, Some(Path::new("rel/x")), "c1").unwrap();
    assert_eq!(cg.hierarchies[0].dir, t.0.join("user.slice/rel/x"));
    let cg = Cgroup::resolve_with(&mi, &own, None, "c1").unwrap();
    assert_eq!(cg.hierarchies[0].dir, t.0.join("user.slice/c1"));
}

#[test]
fn plan_routes_and_rejects() {
    let t = Tmp::new("plan");
    let (mi, own) = hybrid(&t.0);
    let cg = Cgroup::resolve_with(&mi, &own, None, "c1").unwrap();
    // hugetlb is only in the unified hierarchy here
    let ws = cg
        .plan_in(
            Some(&res(
                r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#,
            )),
            &hugepages(&t.0),
        )
        .unwrap();
    let h = ws
        .iter()
        .find(|w| *w.controller() == Controller::Hugetlb)
        .unwrap();
    assert_eq!(h.file().unwrap(), ("hugetlb.2MB.max", "4194304"));
    assert_eq!(
        cg.target(&Controller::Hugetlb).unwrap().version,
        Version::V2
    );
    // net_cls is not mounted on this host
    let e = cg
        .plan(Some(&res(r#"{"network":{"classID":1}}"#)))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("linux.resources.network: the net_cls cgroup controller is not mounted"),
        "{e}"
    );
    let e = cg
        .plan(Some(&res(r#"{"unified":{"memory.high":"1"}}"#)))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("linux.resources.unified"), "{e}");
    // update: CRI's payload carries a deny-all device rule that must not be applied
    let cri = res(
        r#"{"devices":[{"allow":false,"access":"rwm"}],"memory":{"limit":104857600,"swap":104857600},"cpu":{"quota":50000,"period":100000}}"#,
    );
    let ws = cg.plan_update(&cri).unwrap();
    assert!(ws.iter().all(|w| *w.controller() != Controller::Devices));
    assert_eq!(ws.len(), 4);
    // no resources at all: runc's default device allow-list still applies
    assert_eq!(
        cg.plan(None).unwrap().len(),
        resources::DEFAULT_ALLOWED.len()
    );
}

/// Pretend to be the kernel: give every leaf the files the tests write.
fn populate(cg: &Cgroup, files: &[&str]) {
    for d in cg.dirs() {
        for f in files {
            fs::write(d.join(f), "").unwrap();
        }
    }
}

fn unpopulate(cg: &Cgroup) {
    for d in cg.dirs() {
        for e in fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                fs::remove_file(e.path()).unwrap();
            }
        }
    }
}

#[test]
fn v1_create_apply_destroy_keeps_foreign_dirs() {
    let t = Tmp::new("v1-lifecycle");
    let (mi, own) = hybrid(&t.0);
    fs::create_dir_all(t.0.join("memory/default")).unwrap(); // not ours
    let mut cg = Cgroup::resolve_with(&mi, &own, Some(Path::new("/default/c1")), "c1").unwrap();
    cg.create(&[]).unwrap();
    assert!(cg.created.contains(&t.0.join("cpu/default")));
    assert!(cg.created.contains(&t.0.join("memory/default/c1")));
    assert!(!cg.created.contains(&t.0.join("memory/default")));

    populate(
        &cg,
        &[
            "memory.limit_in_bytes",
            "pids.max",
            "cgroup.procs",
            "freezer.state",
        ],
    );
    let ws = cg
        .plan(Some(&res(
            r#"{"memory":{"limit":1048576},"pids":{"limit":10}}"#,
        )))
        .unwrap();
    let ws: Vec<Write> = ws
        .into_iter()
        .filter(|w| *w.controller() != Controller::Devices)
        .collect();
    cg.apply(&ws).unwrap();
    assert_eq!(
        fs::read_to_string(t.0.join("memory/default/c1/memory.limit_in_bytes")).unwrap(),
        "1048576"
    );
    assert_eq!(
        fs::read_to_string(t.0.join("pids/default/c1/pids.max")).unwrap(),
        "10"
    );

    cg.add_task(4242).unwrap();
    assert_eq!(
        fs::read_to_string(t.0.join("unified/default/c1/cgroup.procs")).unwrap(),
        "4242"
    );
    assert_eq!(
        fs::read_to_string(t.0.join("systemd/default/c1/cgroup.procs")).unwrap(),
        "4242"
    );
    assert_eq!(cg.pids().unwrap(), [4242]);

    cg.freeze(true).unwrap();
    assert!(cg.is_frozen());
    cg.freeze(false).unwrap();
    assert!(!cg.is_frozen());

    // A serde round-trip is how `delete` gets the cgroup back.
    let json = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cg);

    unpopulate(&cg);
    back.destroy().unwrap();
    assert!(!t.0.join("cpu/default").exists());
    assert!(!t.0.join("memory/default/c1").exists());
    assert!(
        t.0.join("memory/default").exists(),
        "destroy removed a directory it did not create"
    );
    back.destroy().unwrap(); // idempotent
}

#[test]
fn create_failure_undoes_everything() {
    let t = Tmp::new("v1-undo");
    let (mi, own) = hybrid(&t.0);
    let mut cg = Cgroup::resolve_with(&mi, &own, Some(Path::new("/a/b")), "c1").unwrap();
    // No memory.limit_in_bytes in a fixture dir: the write fails, like a bad file would.
    let ws = cg
        .plan(Some(&res(r#"{"memory":{"limit":1048576}}"#)))
        .unwrap();
    let e = format!("{:#}", cg.create(&ws).unwrap_err());
    assert!(e.contains("memory.limit_in_bytes"), "{e}");
    assert!(cg.created.is_empty());
    for (dir, _) in HYBRID_CTRLS {
        assert!(!t.0.join(dir).join("a").exists());
        assert!(t.0.join(dir).exists());
    }
}

#[test]
fn v1_cpuset_inherits_parent() {
    let t = Tmp::new("cpuset");
    let child = t.0.join("child");
    fs::create_dir(&child).unwrap();
    fs::write(t.0.join("cpuset.cpus"), "0-1\n").unwrap();
    fs::write(t.0.join("cpuset.mems"), "0\n").unwrap();
    fs::write(child.join("cpuset.cpus"), "\n").unwrap();
    fs::write(child.join("cpuset.mems"), "0\n").unwrap();
    v1::copy_cpuset(&t.0, &child).unwrap();
    assert_eq!(
        fs::read_to_string(child.join("cpuset.cpus")).unwrap(),
        "0-1"
    );
    assert_eq!(
        fs::read_to_string(child.join("cpuset.mems")).unwrap(),
        "0\n"
    );
}

#[test]
fn v1_blkio_weight_falls_back_to_bfq() {
    let t = Tmp::new("bfq");
    fs::write(t.0.join("blkio.bfq.weight"), "").unwrap();
    let ws = [Write::File {
        controller: Controller::Blkio,
        file: "blkio.weight".into(),
        value: "500".into(),
    }];
    v1::apply(&t.0, &ws).unwrap();
    assert_eq!(
        fs::read_to_string(t.0.join("blkio.bfq.weight")).unwrap(),
        "500"
    );
}

#[test]
fn v2_create_enables_controllers_and_freezes() {
    let t = Tmp::new("v2-lifecycle");
    let (mi, own) = pure_v2(&t.0);
    fs::write(t.0.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    fs::write(t.0.join("cgroup.subtree_control"), "cpu\n").unwrap();
    let mut cg = Cgroup::resolve_with(&mi, &own, Some(Path::new("/c1")), "c1").unwrap();
    cg.create(&[]).unwrap();
    // each "+ctrl" is its own write; the fixture file keeps the last one
    assert_eq!(
        fs::read_to_string(t.0.join("cgroup.subtree_control")).unwrap(),
        "+pids"
    );
    assert_eq!(cg.created, [t.0.join("c1")]);

    let dir = t.0.join("c1");
    populate(
        &cg,
        &[
            "memory.max",
            "memory.swap.max",
            "cpu.weight",
            "cgroup.freeze",
            "cgroup.procs",
            "cgroup.kill",
        ],
    );
    let ws = cg
        .plan(Some(&res(
            r#"{"memory":{"limit":1000,"swap":3000},"cpu":{"shares":1024}}"#,
        )))
        .unwrap();
    let ws: Vec<Write> = ws
        .into_iter()
        .filter(|w| *w.controller() != Controller::Devices)
        .collect();
    cg.apply(&ws).unwrap();
    assert_eq!(
        fs::read_to_string(dir.join("memory.swap.max")).unwrap(),
        "2000"
    );
    assert_eq!(fs::read_to_string(dir.join("cpu.weight")).unwrap(), "39");

    fs::write(dir.join("cgroup.events"), "populated 0\nfrozen 1\n").unwrap();
    cg.freeze(true).unwrap();
    assert!(cg.is_frozen());

    cg.destroy().unwrap_err(); // fixture files still there: rmdir fails, reported
    assert_eq!(fs::read_to_string(dir.join("cgroup.kill")).unwrap(), "1");
    unpopulate(&cg);
    cg.destroy().unwrap();
    assert!(!dir.exists());
    assert!(t.0.exists());
}

#[test]
fn hybrid_unified_enables_only_hugetlb() {
    let t = Tmp::new("hybrid-hugetlb");
    let (mi, own) = hybrid(&t.0);
    let mut cg = Cgroup::resolve_with(&mi, &own, Some(Path::new("/c1")), "c1").unwrap();
    let ws: Vec<Write> = cg
        .plan_in(
            Some(&res(
                r#"{"hugepageLimits":[{"pageSize":"2MB","limit":2097152}]}"#,
            )),
            &hugepages(&t.0),
        )
        .unwrap()
        .into_iter()
        .filter(|w| *w.controller() == Controller::Hugetlb)
        .collect();
    // The unified root does not offer hugetlb: a clear error, nothing left behind.
    let e = format!("{:#}", cg.create(&ws).unwrap_err());
    assert!(
        e.contains("hugetlb cgroup controller is not available"),
        "{e}"
    );
    assert!(!t.0.join("unified/c1").exists());

    fs::write(t.0.join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
    fs::write(t.0.join("unified/cgroup.subtree_control"), "").unwrap();
    cg.create_dirs(&ws).unwrap();
    assert_eq!(
        fs::read_to_string(t.0.join("unified/cgroup.subtree_control")).unwrap(),
        "+hugetlb"
    );
}

#[test]
fn kernel_tcp_is_written_only_where_the_kernel_has_the_file() {
    let t = Tmp::new("kernel-tcp");
    let (mi, own) = hybrid(&t.0);
    let cg = Cgroup::resolve_with(&mi, &own, Some(Path::new("/c1")), "c1").unwrap();
    let r = res(r#"{"memory":{"kernelTCP":8388608}}"#);
    let tcp = |ws: Vec<Write>| -> Vec<(String, String)> {
        ws.into_iter()
            .filter(|w| *w.controller() == Controller::Memory)
            .map(|w| {
                let (f, v) = w.file().unwrap();
                (f.to_string(), v.to_string())
            })
            .collect()
    };
    // No kmem accounting files: dropped (with a warning), not an error.
    assert!(tcp(cg.plan(Some(&r)).unwrap()).is_empty());
    fs::write(t.0.join("memory/memory.kmem.tcp.limit_in_bytes"), "").unwrap();
    assert_eq!(
        tcp(cg.plan(Some(&r)).unwrap()),
        [("memory.kmem.tcp.limit_in_bytes".into(), "8388608".into())]
    );
}

#[test]
fn v1_weight_device_goes_to_bfq_where_cfq_is_gone() {
    let t = Tmp::new("bfq");
    fs::write(t.0.join("blkio.bfq.weight_device"), "").unwrap();
    let ws = [Write::File {
        controller: Controller::Blkio,
        file: "blkio.weight_device".into(),
        value: "8:0 300".into(),
    }];
    v1::apply(&t.0, &ws).unwrap();
    assert_eq!(
        fs::read_to_string(t.0.join("blkio.bfq.weight_device")).unwrap(),
        "8:0 300"
    );
    assert!(!t.0.join("blkio.weight_device").exists());
    // Where the CFQ file exists, it is the one written.
    fs::write(t.0.join("blkio.weight_device"), "").unwrap();
    v1::apply(&t.0, &ws).unwrap();
    assert_eq!(
        fs::read_to_string(t.0.join("blkio.weight_device")).unwrap(),
        "8:0 300"
    );
}

#[path = "host_tests.rs"]
mod host;

/// A cgroup removed under a walk (systemd stopping the unit `delete` asked
/// it to stop) is an empty one, not an error: `delete` failed with "read
/// dir ...: No such file or directory" in the Debian VM's nested-slice check.
#[test]
fn a_cgroup_gone_mid_walk_has_no_subdirs() {
    let t = Tmp::new("gone");
    fs::create_dir_all(t.0.join("a/b")).unwrap();
    fs::write(t.0.join("a/cgroup.procs"), "").unwrap();
    assert_eq!(
        crate::cgroup::fs::subdirs(&t.0.join("a")).unwrap(),
        vec![t.0.join("a/b")]
    );
    assert!(
        crate::cgroup::fs::subdirs(&t.0.join("gone"))
            .unwrap()
            .is_empty()
    );
    let e = crate::cgroup::fs::subdirs(&t.0.join("a/cgroup.procs")).unwrap_err();
    assert!(format!("{e:#}").contains("read dir"), "{e:#}");
}

#[test]
fn a_cgroup_being_removed_counts_as_vanished() {
    // kernfs answers ENODEV for a node opened before its removal: seen on a
    // hybrid host as `read .../cgroup.procs: No such device` while systemd
    // stopped the scope a delete had asked it to stop.
    use crate::cgroup::fs::vanished;
    let e = std::io::Error::from_raw_os_error;
    assert!(vanished(&e(libc::ENODEV)));
    assert!(vanished(&e(libc::ENOENT)));
    assert!(!vanished(&e(libc::EACCES)));
    assert!(!vanished(&e(libc::EBUSY)));
}
