//! `linux.netDevices` (runtime-spec 1.3): a host network device moved into
//! the container's network namespace, renamed, with its permanent global
//! addresses, up; gone from the host while the container lives, and (a
//! virtual device) destroyed by the kernel with the namespace. The devices
//! are veth pairs made by the test (this host's kernel has no dummy
//! driver). runc 1.1.5 predates the field and ignores it: its runs are
//! only checked to work, the effects are asserted for skiff.
use crate::{Bundle, Rt, is_skiff, poll, require_root, skip};
use serde_json::json;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A veth pair on the host, deleted on drop if still there.
struct Veth {
    name: String,
    peer: String,
}

fn ip(args: &[&str]) -> std::process::Output {
    Command::new("ip").args(args).output().expect("run ip")
}

fn exists(dev: &str) -> bool {
    ip(&["link", "show", "dev", dev]).status.success()
}

impl Veth {
    fn new() -> Veth {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}{n}", std::process::id() % 100000);
        let v = Veth {
            name: format!("skA{tag}"),
            peer: format!("skB{tag}"),
        };
        let o = ip(&[
            "link", "add", &v.name, "type", "veth", "peer", "name", &v.peer,
        ]);
        assert!(o.status.success(), "ip link add: {o:?}");
        v
    }
    fn addr(&self, a: &str, extra: &[&str]) {
        let mut args = vec!["addr", "add", a, "dev", &self.name];
        args.extend(extra);
        let o = ip(&args);
        assert!(o.status.success(), "ip addr add {a}: {o:?}");
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        if exists(&self.name) {
            let _ = ip(&["link", "del", &self.name]);
        }
    }
}

fn require_ip() -> bool {
    Command::new("ip").arg("-V").output().is_ok()
}

#[test]
fn net_device_moved_renamed_with_addresses_and_up() {
    require_root!();
    if !require_ip() {
        skip!("needs iproute2's ip on the host");
    }
    let v = Veth::new();
    v.addr("10.213.7.1/24", &[]);
    v.addr("fd00:213:7::1/64", &["nodad"]);
    // A link-scope address is not carried over (only global scope).
    v.addr("169.254.7.1/16", &["scope", "link"]);
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["linux"]["netDevices"] = json!({ &v.name: {"name": "ceth0"} }));
    let id = rt.sleeper(&b);
    if !is_skiff() {
        // runc 1.1.5 ignores linux.netDevices: the container just runs.
        rt.out(&["exec", &id, "ip", "addr", "show"]).check("exec");
        return;
    }
    let script = "ip addr show; cat /sys/class/net/ceth0/flags";
    let o = rt.out(&["exec", &id, "sh", "-c", script]).check("exec");
    // Gone from the host while the container has it.
    assert!(!exists(&v.name), "{} still on the host", v.name);
    let out = o.stdout;
    assert!(out.contains(": ceth0@"), "{out}");
    assert!(out.contains("inet 10.213.7.1/24 "), "{out}");
    assert!(out.contains("inet6 fd00:213:7::1/64 "), "{out}");
    assert!(!out.contains("169.254.7.1"), "{out}");
    // IFF_UP (0x1) in the device flags.
    let flags = out.lines().last().unwrap().trim();
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "{out}");
    // At delete the namespace dies and the kernel destroys the virtual
    // device (and so its peer); skiff does not move it back.
    rt.out(&["delete", "--force", &id]).check("delete");
    assert!(
        poll(10, || !exists(&v.name) && !exists(&v.peer)),
        "veth pair not destroyed with the container's network namespace"
    );
}

#[test]
fn net_device_name_template() {
    require_root!();
    if !is_skiff() {
        skip!("runc 1.1.5 ignores linux.netDevices");
    }
    let v = Veth::new();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["linux"]["netDevices"] = json!({ &v.name: {"name": "net%d"} }));
    let o = rt.sh(&b, "ls /sys/class/net").check("run");
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["lo", "net0"]
    );
    // Without a name: the host's.
    let v = Veth::new();
    b.edit(|c| c["linux"]["netDevices"] = json!({ &v.name: {} }));
    let o = rt.sh(&b, "ls /sys/class/net").check("run");
    assert!(o.stdout.split_whitespace().any(|n| n == v.name), "{o:?}");
}

#[test]
fn bad_net_devices_fail_create() {
    require_root!();
    if !is_skiff() {
        skip!("runc 1.1.5 ignores linux.netDevices");
    }
    let v = Veth::new();
    let host_net = format!("/proc/{}/ns/net", std::process::id());
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let name = v.name.clone();
    let n2 = name.clone();
    let n3 = name.clone();
    let n4 = name.clone();
    let cases: Vec<(&str, Edit)> = vec![
        // The target name is taken inside (by lo): the spec's MUST error.
        (
            "already exists in the container's network namespace",
            Box::new(move |c| c["linux"]["netDevices"] = json!({ &name: {"name": "lo"} })),
        ),
        (
            "no network device",
            Box::new(|c| c["linux"]["netDevices"] = json!({"skNoSuchDev": {}})),
        ),
        (
            "no network namespace of its own",
            Box::new(move |c| {
                c["linux"]["netDevices"] = json!({ &n2: {} });
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "network");
            }),
        ),
        (
            "the network namespace joined is the host's own",
            Box::new(move |c| {
                c["linux"]["netDevices"] = json!({ &n3: {} });
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "network");
                ns.push(json!({"type": "network", "path": host_net}));
            }),
        ),
        (
            "invalid network device name",
            Box::new(move |c| c["linux"]["netDevices"] = json!({ &n4: {"name": "a/b"} })),
        ),
    ];
    let rt = Rt::new();
    for (want, edit) in cases {
        let b = Bundle::new();
        b.edit(edit);
        b.args(&["sleep", "1000"]);
        let id = rt.id("badnet");
        let o = rt.create(&b, &id, &[]);
        assert_eq!(o.code, Some(1), "{want}: {o:?}");
        assert!(o.stderr.contains("linux.netDevices"), "{want}: {o:?}");
        assert!(o.stderr.contains(want), "{want}: {o:?}");
        assert_eq!(o.stderr.trim().lines().count(), 1, "{want}: {o:?}");
        assert!(!rt.root.path().join(&id).exists(), "{want}: state dir left");
        // Refused before the move: the device stays on the host.
        assert!(exists(&v.name), "{want}: device left the host");
    }
}
