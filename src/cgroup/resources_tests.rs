//! Runs in: unit tests for resources.rs (pure: no filesystem).
use super::*;

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn files(ws: &[Write]) -> Vec<(String, String)> {
    ws.iter()
        .filter(|w| *w.controller() != Controller::Devices)
        .map(|w| {
            let (f, v) = w.file().unwrap();
            (f.to_string(), v.to_string())
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn memory_per_version() {
    let r = res(
        r#"{"memory":{"limit":104857600,"swap":209715200,"reservation":1000,"swappiness":10,"disableOOMKiller":true,"kernel":5,"kernelTCP":4096}}"#,
    );
    assert_eq!(
        files(&writes(&r, Version::V1).unwrap()),
        pairs(&[
            ("memory.kmem.tcp.limit_in_bytes", "4096"),
            ("memory.limit_in_bytes", "104857600"),
            ("memory.memsw.limit_in_bytes", "209715200"),
            ("memory.soft_limit_in_bytes", "1000"),
            ("memory.swappiness", "10"),
            ("memory.oom_control", "1"),
        ])
    );
    assert_eq!(
        files(&writes(&r, Version::V2).unwrap()),
        pairs(&[
            ("memory.max", "104857600"),
            ("memory.swap.max", "104857600"),
            ("memory.low", "1000")
        ])
    );
    let unlimited = res(r#"{"memory":{"limit":-1,"swap":-1}}"#);
    assert_eq!(
        files(&writes(&unlimited, Version::V2).unwrap()),
        pairs(&[("memory.max", "max"), ("memory.swap.max", "max")])
    );
    // docker update's zeros mean "unchanged"
    let zeros = res(
        r#"{"memory":{"limit":0,"reservation":0,"swap":0,"kernel":0,"kernelTCP":0},"cpu":{"shares":0,"quota":0,"period":0},"blockIO":{"weight":0}}"#,
    );
    assert!(files(&writes(&zeros, Version::V1).unwrap()).is_empty());
}

#[test]
fn memory_errors_name_the_field() {
    let r = res(r#"{"memory":{"limit":200,"swap":100}}"#);
    let e = writes(&r, Version::V1).unwrap_err().to_string();
    assert!(
        e.starts_with("linux.resources.memory.swap: must be >= memory.limit"),
        "{e}"
    );
    let r = res(r#"{"memory":{"swap":100}}"#);
    assert!(
        writes(&r, Version::V2)
            .unwrap_err()
            .to_string()
            .contains("memory.swap")
    );
    let r = res(r#"{"memory":{"swappiness":101}}"#);
    assert!(
        writes(&r, Version::V1)
            .unwrap_err()
            .to_string()
            .contains("swappiness")
    );
}

#[test]
fn shares_weight_conversion() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262144), 10000);
    assert_eq!(blkio_to_io_weight(10), 1);
    assert_eq!(blkio_to_io_weight(500), 4950);
    assert_eq!(blkio_to_io_weight(1000), 10000);
}

#[test]
fn cpu_per_version() {
    let r = res(
        r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"realtimeRuntime":950,"realtimePeriod":1000,"cpus":"0-1","mems":"0","idle":1,"burst":10}}"#,
    );
    assert_eq!(
        files(&writes(&r, Version::V1).unwrap()),
        pairs(&[
            ("cpu.shares", "1024"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "50000"),
            ("cpu.cfs_burst_us", "10"),
            ("cpu.rt_period_us", "1000"),
            ("cpu.rt_runtime_us", "950"),
            ("cpu.idle", "1"),
            ("cpuset.cpus", "0-1"),
            ("cpuset.mems", "0"),
        ])
    );
    let e = writes(&r, Version::V2).unwrap_err().to_string();
    assert!(e.contains("linux.resources.cpu.realtime"), "{e}");
    let r = res(r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"burst":10}}"#);
    assert_eq!(
        files(&writes(&r, Version::V2).unwrap()),
        pairs(&[
            ("cpu.weight", "39"),
            ("cpu.max", "50000 100000"),
            ("cpu.max.burst", "10")
        ])
    );
    let r = res(r#"{"cpu":{"quota":-1}}"#);
    assert_eq!(
        files(&writes(&r, Version::V2).unwrap()),
        pairs(&[("cpu.max", "max")])
    );
}

#[test]
fn pids_limit() {
    for (limit, want) in [("100", "100"), ("0", "max"), ("-1", "max")] {
        let r = res(&format!(r#"{{"pids":{{"limit":{limit}}}}}"#));
        for v in [Version::V1, Version::V2] {
            assert_eq!(files(&writes(&r, v).unwrap()), pairs(&[("pids.max", want)]));
        }
    }
}

#[test]
fn block_io_per_version() {
    let r = res(
        r#"{"blockIO":{"weight":500,"leafWeight":300,"weightDevice":[{"major":8,"minor":0,"weight":100,"leafWeight":50}],
        "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1000}],"throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":7}]}}"#,
    );
    assert_eq!(
        files(&writes(&r, Version::V1).unwrap()),
        pairs(&[
            ("blkio.weight", "500"),
            ("blkio.leaf_weight", "300"),
            ("blkio.weight_device", "8:0 100"),
            ("blkio.leaf_weight_device", "8:0 50"),
            ("blkio.throttle.read_bps_device", "8:0 1000"),
            ("blkio.throttle.write_iops_device", "8:16 7"),
        ])
    );
    assert_eq!(
        files(&writes(&r, Version::V2).unwrap()),
        pairs(&[
            ("io.weight", "4950"),
            ("io.weight", "8:0 910"),
            ("io.max", "8:0 rbps=1000"),
            ("io.max", "8:16 wiops=7")
        ])
    );
}

#[test]
fn hugetlb_network_rdma_unified() {
    let r = res(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#);
    assert_eq!(
        files(&writes(&r, Version::V1).unwrap()),
        pairs(&[("hugetlb.2MB.limit_in_bytes", "4194304")])
    );
    assert_eq!(
        files(&writes(&r, Version::V2).unwrap()),
        pairs(&[("hugetlb.2MB.max", "4194304")])
    );
    let bad = res(r#"{"hugepageLimits":[{"pageSize":"../x","limit":1}]}"#);
    assert!(
        writes(&bad, Version::V1)
            .unwrap_err()
            .to_string()
            .contains("hugepageLimits")
    );

    let r = res(r#"{"network":{"classID":1048577,"priorities":[{"name":"eth0","priority":5}]}}"#);
    assert_eq!(
        files(&writes(&r, Version::V1).unwrap()),
        pairs(&[
            ("net_cls.classid", "1048577"),
            ("net_prio.ifpriomap", "eth0 5")
        ])
    );
    assert!(
        writes(&r, Version::V2)
            .unwrap_err()
            .to_string()
            .starts_with("linux.resources.network")
    );

    let r = res(r#"{"rdma":{"mlx5_1":{"hcaHandles":3,"hcaObjects":10000}}}"#);
    assert_eq!(
        files(&writes(&r, Version::V2).unwrap()),
        pairs(&[("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000")])
    );

    let r = res(r#"{"unified":{"memory.high":"1000","pids.max":"7"}}"#);
    let ws = writes(&r, Version::V2).unwrap();
    assert_eq!(
        files(&ws),
        pairs(&[("memory.high", "1000"), ("pids.max", "7")])
    );
    assert_eq!(*ws[0].controller(), Controller::Memory);
    assert!(
        writes(&r, Version::V1)
            .unwrap_err()
            .to_string()
            .starts_with("linux.resources.unified")
    );
    let r = res(r#"{"unified":{"../x":"1"}}"#);
    assert!(writes(&r, Version::V2).is_err());
}

fn device_lines(ws: &[Write]) -> Vec<String> {
    ws.iter()
        .filter(|w| *w.controller() == Controller::Devices)
        .map(|w| {
            let (f, v) = w.file().unwrap();
            format!("{f} {v}")
        })
        .collect()
}

#[test]
fn devices_v1_runc_default_spec() {
    let r = res(
        r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"mrw"},{"allow":true,"type":"b","major":8,"access":"r"}]}"#,
    );
    let lines = device_lines(&writes(&r, Version::V1).unwrap());
    assert_eq!(lines[0], "devices.deny a");
    assert_eq!(lines[1], "devices.allow c 1:3 rwm");
    assert_eq!(lines[2], "devices.allow b 8:* r");
    assert_eq!(lines[3], "devices.allow c *:* m");
    assert!(lines.contains(&"devices.allow c 1:3 rwm".to_string()));
    assert!(lines.contains(&"devices.allow c 136:* rwm".to_string()));
    assert_eq!(lines.len(), 3 + DEFAULT_ALLOWED.len());
    // no config rules: runc still appends its defaults
    assert_eq!(
        device_lines(&writes(&res("{}"), Version::V1).unwrap()).len(),
        DEFAULT_ALLOWED.len()
    );
}

#[test]
fn device_access_in_any_order_with_repeats() {
    for (given, want) in [
        ("rwa", "rw"),
        ("mrrw", "rwm"),
        ("wm", "wm"),
        ("mmr", "rm"),
        ("wwr", "rw"),
    ] {
        let r = res(&format!(
            r#"{{"devices":[{{"allow":true,"type":"c","major":1,"minor":11,"access":"{given}"}}]}}"#
        ));
        let lines = device_lines(&writes(&r, Version::V1).unwrap());
        assert_eq!(lines[0], format!("devices.allow c 1:11 {want}"), "{given}");
    }
}

#[test]
fn devices_validation_and_v2() {
    for bad in [
        r#"{"allow":true,"access":""}"#,
        r#"{"allow":true,"access":"xa"}"#,
        r#"{"allow":true,"type":"p","access":"r"}"#,
    ] {
        let r = res(&format!(r#"{{"devices":[{bad}]}}"#));
        let e = writes(&r, Version::V1).unwrap_err().to_string();
        assert!(e.starts_with("linux.resources.devices[0]"), "{e}");
    }
    let r = res(
        r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","major":8,"minor":0,"access":"r"}]}"#,
    );
    let ws = writes(&r, Version::V2).unwrap();
    let f = ws
        .iter()
        .find(|w| *w.controller() == Controller::Devices)
        .unwrap();
    let Write::DeviceFilter { rules } = f else {
        panic!("not a device filter: {f:?}")
    };
    let lines: Vec<String> = rules
        .iter()
        .map(|r| format!("{} {r}", if r.allow { "allow" } else { "deny" }))
        .collect();
    assert_eq!(
        &lines[..3],
        ["deny a *:* rwm", "allow b 8:0 r", "allow c *:* m"]
    );
    assert_eq!(lines.len(), 2 + DEFAULT_ALLOWED.len());
}
