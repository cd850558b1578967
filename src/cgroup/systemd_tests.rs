//! Runs in: unit tests. The systemd driver's pure rules against runc 1.1's.
use super::*;
use crate::cgroup::resources::{self, Version};
use crate::cgroup::{Cgroup, bus};
use oci_spec::runtime::LinuxResources;

fn unit(path: Option<&str>) -> Result<Unit> {
    parse_path(path, "c1")
}

fn err(path: &str) -> String {
    format!("{:#}", unit(Some(path)).unwrap_err())
}

#[test]
fn cgroups_path_is_slice_prefix_name() {
    let u = unit(Some("system.slice:docker:abc")).unwrap();
    assert_eq!(
        (u.name.as_str(), u.slice.as_str()),
        ("docker-abc.scope", "system.slice")
    );
    assert_eq!(u.description, "libcontainer container abc");
    let u = unit(Some("machine.slice:libpod:0123")).unwrap();
    assert_eq!(u.name, "libpod-0123.scope");
    let u = unit(Some("kubepods-burstable-pod1.slice:cri-containerd:x")).unwrap();
    assert_eq!(u.slice, "kubepods-burstable-pod1.slice");
    // runc's default: no (or an empty) cgroupsPath, and an empty slice field.
    for u in [unit(None).unwrap(), unit(Some("")).unwrap()] {
        assert_eq!(
            (u.name.as_str(), u.slice.as_str()),
            ("runc-c1.scope", "system.slice")
        );
    }
    assert_eq!(unit(Some(":skiff:c1")).unwrap().slice, "system.slice");
}

#[test]
fn malformed_cgroups_paths_fail_as_in_runc() {
    let fmt = "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got";
    for p in ["a", "system.slice:x", "a:b:c:d", "/sys/fs/cgroup/x"] {
        assert!(err(p).contains(fmt), "{p}: {}", err(p));
    }
    assert!(err("system:skiff:c1").contains("invalid slice name: system"));
    assert!(err("a--b.slice:skiff:c1").contains("invalid slice name"));
    assert!(err("system.slice:skiff:a/b").contains("invalid systemd unit name"));
    assert!(err("system.slice:skiff:x y").contains("invalid systemd unit name"));
    assert!(err("system.slice:skiff:x.slice").contains("must be a scope"));
    let long = format!("system.slice:skiff:{}", "x".repeat(250));
    assert!(err(&long).contains("at most 255"));
}

#[test]
fn slices_expand_as_runc_expand_slice() {
    assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
    assert_eq!(
        expand_slice("a-b-c.slice").unwrap(),
        "/a.slice/a-b.slice/a-b-c.slice"
    );
    assert_eq!(
        expand_slice("kubepods-burstable.slice").unwrap(),
        "/kubepods.slice/kubepods-burstable.slice"
    );
    assert_eq!(expand_slice("-.slice").unwrap(), "/");
    for bad in [
        "",
        ".slice",
        "slice",
        "a",
        "a/b.slice",
        "-a.slice",
        "a-.slice",
        "a--b.slice",
    ] {
        let e = expand_slice(bad).unwrap_err().to_string();
        assert_eq!(e, format!("invalid slice name: {bad}"));
    }
}

#[test]
fn unit_cgroup_is_under_the_expanded_slice_in_every_hierarchy() {
    let mi = "\
31 23 0:28 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
33 31 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
34 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset
36 31 0:33 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
    let u = unit(Some("a-b.slice:skiff:c1")).unwrap();
    let cg = Cgroup::resolve_systemd_with(mi, u).unwrap();
    assert_eq!(cg.version, Version::V1);
    let dirs: Vec<String> = cg
        .hierarchies
        .iter()
        .map(|h| h.dir.display().to_string())
        .collect();
    assert_eq!(
        dirs,
        [
            "/sys/fs/cgroup/systemd/a.slice/a-b.slice/skiff-c1.scope",
            "/sys/fs/cgroup/cpu,cpuacct/a.slice/a-b.slice/skiff-c1.scope",
            "/sys/fs/cgroup/cpuset/a.slice/a-b.slice/skiff-c1.scope",
            "/sys/fs/cgroup/memory/a.slice/a-b.slice/skiff-c1.scope",
            "/sys/fs/cgroup/unified/a.slice/a-b.slice/skiff-c1.scope",
        ]
    );
    let v2 = "29 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    let cg = Cgroup::resolve_systemd_with(v2, unit(None).unwrap()).unwrap();
    assert_eq!(cg.version, Version::V2);
    assert_eq!(
        cg.hierarchies[0].dir,
        std::path::Path::new("/sys/fs/cgroup/system.slice/runc-c1.scope")
    );
    // Recorded, so later commands know the driver without the flag.
    let json = serde_json::to_value(&cg).unwrap();
    assert_eq!(json["systemd"]["name"], "runc-c1.scope");
    let back: Cgroup = serde_json::from_value(json).unwrap();
    assert_eq!(back.systemd.unwrap().slice, "system.slice");
}

#[test]
fn base_properties_follow_runc_apply() {
    let u = unit(Some("system.slice:skiff:c1")).unwrap();
    let p = base_props(&u, 42, Version::V2);
    let get = |n: &str| p.iter().find(|p| p.name == n).map(|p| p.value.clone());
    assert_eq!(get("PIDs"), Some(Value::U32s(vec![42])));
    assert_eq!(get("Slice"), Some(Value::Str("system.slice".into())));
    assert_eq!(get("Delegate"), Some(Value::Bool(true)));
    assert_eq!(get("DefaultDependencies"), Some(Value::Bool(false)));
    assert_eq!(get("IOAccounting"), Some(Value::Bool(true)));
    let v1 = base_props(&u, 42, Version::V1);
    assert!(v1.iter().any(|p| p.name == "BlockIOAccounting"));
}

fn props(json: &str, v: Version) -> Vec<(String, Value)> {
    let res: LinuxResources = serde_json::from_str(json).unwrap();
    let writes = resources::writes(&res, v).unwrap();
    props_from_writes(&writes, v)
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.value))
        .collect()
}

fn u64p(name: &str, n: u64) -> (String, Value) {
    (name.to_string(), Value::U64(n))
}

#[test]
fn v2_properties_agree_with_the_files() {
    let p = props(
        r#"{"memory":{"limit":104857600,"swap":209715200,"reservation":52428800},
            "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1","mems":"0"},
            "pids":{"limit":10},"blockIO":{"weight":500}}"#,
        Version::V2,
    );
    assert_eq!(
        p,
        [
            u64p("MemoryMax", 104857600),
            // OCI swap is memory+swap, systemd's (and the file's) is swap only.
            u64p("MemorySwapMax", 104857600),
            u64p("MemoryLow", 52428800),
            // shares → weight as runc: 1 + (1024 - 2) * 9999 / 262142.
            u64p("CPUWeight", 39),
            ("AllowedCPUs".into(), Value::Bytes(vec![0b11])),
            ("AllowedMemoryNodes".into(), Value::Bytes(vec![0b1])),
            u64p("TasksMax", 10),
            u64p("IOWeight", resources::blkio_to_io_weight(500)),
            u64p("CPUQuotaPeriodUSec", 100000),
            u64p("CPUQuotaPerSecUSec", 500000),
        ]
    );
    let unlimited = props(
        r#"{"memory":{"limit":-1},"pids":{"limit":-1},"cpu":{"quota":-1}}"#,
        Version::V2,
    );
    assert_eq!(
        unlimited,
        [
            u64p("MemoryMax", u64::MAX),
            u64p("TasksMax", u64::MAX),
            u64p("CPUQuotaPerSecUSec", u64::MAX),
        ]
    );
    let unified = props(
        r#"{"unified":{"memory.high":"1000000","memory.min":"4096","io.max":"8:0 rbps=1"}}"#,
        Version::V2,
    );
    assert_eq!(
        unified,
        [u64p("MemoryHigh", 1000000), u64p("MemoryMin", 4096)]
    );
}

#[test]
fn v1_properties_agree_with_the_files() {
    let p = props(
        r#"{"memory":{"limit":104857600,"swappiness":10},"cpu":{"shares":512,"quota":20000},
            "pids":{"limit":5},"blockIO":{"weight":300},
            "hugepageLimits":[{"pageSize":"2MB","limit":0}]}"#,
        Version::V1,
    );
    assert_eq!(
        p,
        [
            u64p("MemoryLimit", 104857600),
            u64p("CPUShares", 512),
            u64p("TasksMax", 5),
            u64p("BlockIOWeight", 300),
            u64p("CPUQuotaPerSecUSec", 200000),
        ]
    );
}

#[test]
fn cpu_quota_per_second_rounds_up_to_whole_percents() {
    assert_eq!(quota_per_sec(50000, Some(100000)), 500000);
    assert_eq!(quota_per_sec(50000, None), 500000);
    // 123450us/s is 12.345% of a CPU: systemd keeps 13%.
    assert_eq!(quota_per_sec(12345, None), 130000);
    assert_eq!(quota_per_sec(1000, Some(1000000)), 10000);
    assert_eq!(quota_per_sec(100, Some(1000000)), 10000);
    assert_eq!(quota_per_sec(-1, Some(100000)), u64::MAX);
    assert_eq!(quota_per_sec(0, None), u64::MAX);
}

#[test]
fn cpusets_become_systemd_bitmasks() {
    assert_eq!(cpuset_bits("0").unwrap(), [0b1]);
    assert_eq!(cpuset_bits("0-3").unwrap(), [0x0f]);
    assert_eq!(cpuset_bits("8").unwrap(), [0, 1]);
    assert_eq!(cpuset_bits("0-3, 8-9").unwrap(), [0x0f, 0x03]);
    assert_eq!(cpuset_bits("1,1,7").unwrap(), [0x82]);
    for bad in ["", ",", "3-1", "x", "0-", "-1", "100000"] {
        assert!(cpuset_bits(bad).is_err(), "{bad}");
    }
}

const PROC_DEVICES: &str = "Character devices:
  1 mem
  4 /dev/vc/0
  4 tty
136 pts
180 usb

Block devices:
  7 loop
  8 sd
";

fn devices(json: &str) -> Vec<Prop> {
    let res: LinuxResources = serde_json::from_str(json).unwrap();
    device_props(&resources::device_rules(&res).unwrap(), PROC_DEVICES)
}

fn pairs(p: &[Prop]) -> Vec<(String, String)> {
    match &p.last().unwrap().value {
        Value::Pairs(l) => l.clone(),
        v => panic!("{v:?}"),
    }
}

#[test]
fn device_rules_become_a_strict_allow_list() {
    // docker/podman: deny all, a few allows, then runc's defaults.
    let p = devices(
        r#"{"devices":[{"allow":false,"access":"rwm"},
                       {"allow":true,"type":"c","major":180,"access":"rw"},
                       {"allow":true,"type":"b","major":8,"minor":0,"access":"r"}]}"#,
    );
    assert_eq!(p[0].value, Value::Str("strict".into()));
    assert_eq!(p[1].value, Value::Pairs(Vec::new()));
    let l = pairs(&p);
    let has = |path: &str, a: &str| l.contains(&(path.to_string(), a.to_string()));
    assert!(has("char-usb", "rw"), "{l:?}");
    assert!(has("/dev/block/8:0", "r"), "{l:?}");
    assert!(has("char-*", "m") && has("block-*", "m"), "{l:?}");
    assert!(
        has("/dev/char/1:3", "rwm") && has("char-pts", "rwm"),
        "{l:?}"
    );
    // No group for major 10 in this /proc/devices, but 10:200 is exact.
    assert!(has("/dev/char/10:200", "rwm"), "{l:?}");
}

#[test]
fn allow_all_and_blacklists() {
    let p = devices(r#"{"devices":[{"allow":true,"access":"rwm"}]}"#);
    assert_eq!(p[0].value, Value::Str("auto".into()));
    assert_eq!(pairs(&p), []);
    // systemd has no deny list: deny-all now, the files carry the rules.
    let p = devices(
        r#"{"devices":[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","major":4,"minor":1,"access":"w"}]}"#,
    );
    assert_eq!(p[0].value, Value::Str("strict".into()));
    assert_eq!(pairs(&p), []);
    // runc's defaults come last: re-allowing /dev/null undoes its deny.
    let p = devices(
        r#"{"devices":[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]}"#,
    );
    assert_eq!(p[0].value, Value::Str("auto".into()));
    // A later deny takes access away from an allowed device.
    let p = devices(
        r#"{"devices":[{"allow":false,"access":"rwm"},
                       {"allow":true,"type":"c","major":4,"minor":1,"access":"rwm"},
                       {"allow":false,"type":"c","major":4,"minor":1,"access":"wm"}]}"#,
    );
    assert!(pairs(&p).contains(&("/dev/char/4:1".into(), "r".into())));
}

fn annotations(list: &[(&str, &str)]) -> Result<Vec<Prop>> {
    let map: std::collections::HashMap<String, String> = list
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    annotation_props(&map)
}

#[test]
fn systemd_property_annotations() {
    let p = annotations(&[
        ("org.systemd.property.TimeoutStopUSec", "uint64 123456789"),
        ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
        ("org.systemd.property.RuntimeMaxSec", "5"),
        (
            "org.systemd.property.Wants",
            "['a.service', \"b,c.service\"]",
        ),
        ("org.systemd.property.CPUWeight", "@t 50"),
        ("io.kubernetes.other", "ignored"),
    ])
    .unwrap();
    let got: Vec<(&str, &Value)> = p.iter().map(|p| (p.name.as_str(), &p.value)).collect();
    assert_eq!(
        got,
        [
            ("CPUWeight", &Value::U64(50)),
            ("CollectMode", &Value::Str("inactive-or-failed".into())),
            // Sec → USec, seconds → microseconds, as runc.
            ("RuntimeMaxUSec", &Value::U64(5_000_000)),
            ("TimeoutStopUSec", &Value::U64(123456789)),
            (
                "Wants",
                &Value::Strs(vec!["a.service".into(), "b,c.service".into()])
            ),
        ]
    );
    let e = format!(
        "{:#}",
        annotations(&[("org.systemd.property.X1y", "1")]).unwrap_err()
    );
    assert!(e.contains("org.systemd.property.X1y name incorrect"), "{e}");
    let e = format!(
        "{:#}",
        annotations(&[("org.systemd.property.Foo", "(1, 'a')")]).unwrap_err()
    );
    assert!(
        e.contains("value parse error") && e.contains("unsupported"),
        "{e}"
    );
    assert!(annotations(&[("org.systemd.property.Foo", "'open")]).is_err());
    assert!(annotations(&[("org.systemd.property.TimeoutSec", "'x'")]).is_err());
    assert_eq!(parse_gvariant("true").unwrap(), Value::Bool(true));
    assert_eq!(parse_gvariant("-7").unwrap(), Value::I32(-7));
    assert_eq!(parse_gvariant("uint32 7").unwrap(), Value::U32(7));
    assert_eq!(parse_gvariant("[]").unwrap(), Value::Strs(vec![]));
}

#[test]
fn systemd_versions_gate_newer_properties() {
    assert_eq!(bus::parse_version("252.38-1~deb12u1"), 252);
    assert_eq!(bus::parse_version("\"v245.4-1.fc32\""), 245);
    assert_eq!(bus::parse_version("junk"), 0);
    let p = vec![
        Prop {
            name: "CPUQuotaPeriodUSec".into(),
            value: Value::U64(1),
        },
        Prop {
            name: "AllowedCPUs".into(),
            value: Value::Bytes(vec![1]),
        },
        Prop {
            name: "MemoryMax".into(),
            value: Value::U64(1),
        },
    ];
    let names = |v| {
        bus::for_version(&p, v)
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(241), ["MemoryMax"]);
    assert_eq!(names(243), ["CPUQuotaPeriodUSec", "MemoryMax"]);
    assert_eq!(names(252).len(), 3);
}

#[test]
fn pending_dirs_are_only_those_systemd_does_not_make() {
    let root = std::env::temp_dir().join(format!("skiff-sd-pending-{}", std::process::id()));
    let mut mi = String::new();
    for (i, (dir, opts)) in [
        ("memory", "memory"),
        ("cpuset", "cpuset"),
        ("systemd", "xattr,name=systemd"),
    ]
    .iter()
    .enumerate()
    {
        std::fs::create_dir_all(root.join(dir)).unwrap();
        mi += &format!(
            "{} 1 0:{} / {}/{dir} rw - cgroup cgroup rw,{opts}\n",
            40 + i,
            60 + i,
            root.display()
        );
    }
    std::fs::create_dir_all(root.join("unified")).unwrap();
    mi += &format!(
        "50 1 0:70 / {}/unified rw - cgroup2 cgroup2 rw\n",
        root.display()
    );
    let cg = Cgroup::resolve_systemd_with(&mi, unit(Some("a-b.slice:skiff:c1")).unwrap()).unwrap();
    let pending = cg.pending();
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!(
        pending,
        [
            root.join("cpuset/a.slice"),
            root.join("cpuset/a.slice/a-b.slice"),
            root.join("cpuset/a.slice/a-b.slice/skiff-c1.scope"),
        ]
    );
    assert!(manages(Version::V2, &[]));
    assert!(manages(Version::V1, &["cpu".into(), "cpuacct".into()]));
    assert!(!manages(
        Version::V1,
        &["net_cls".into(), "net_prio".into()]
    ));
}
