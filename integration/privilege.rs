//! No silent privilege: ids out of range, non-canonical capability names
//! and a readable state root (issue "Security and bad input, round 2").
use crate::failures::failed_create;
use crate::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

/// (uid_t)-1 means "leave unchanged" to setresuid: the process would stay
/// root. Every id field is range-checked; the error names the field.
#[test]
fn ids_above_2147483647_are_refused() {
    require_root!();
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 4] = [
        ("uid", |c| {
            c["process"]["user"]["uid"] = json!(4294967295u32)
        }),
        ("gid", |c| {
            c["process"]["user"]["gid"] = json!(4294967295u32)
        }),
        ("gid2", |c| {
            c["process"]["user"]["gid"] = json!(2147483648u32)
        }),
        ("additionalGids", |c| {
            c["process"]["user"]["additionalGids"] = json!([1, 4294967295u32])
        }),
    ];
    for (tag, edit) in cases {
        let rt = Rt::new();
        let b = Bundle::new();
        b.args(&["id"]);
        b.edit(edit);
        let o = failed_create(&rt, &b, tag);
        assert!(o.stderr.contains("2147483647"), "{tag}: {o:?}");
        if is_skiff() {
            assert!(
                o.stderr.contains("process.user."),
                "{tag}: names no field: {o:?}"
            );
        }
    }
}

#[test]
fn id_mappings_must_not_reach_uid_minus_one() {
    require_root!();
    if !is_skiff() {
        skip!("runc 1.1.5 leaves the check to the kernel's uid_map write");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.namespace(json!({"type": "user"}));
    b.edit(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 4294967295u32, "size": 1}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 0}]);
    });
    let o = failed_create(&rt, &b, "idmap");
    assert!(o.stderr.contains("linux.uidMappings[0]"), "{o:?}");
}

#[test]
fn exec_user_above_2147483647_is_refused() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.sleeper(&b);
    for u in ["4294967295:4294967295", "0:4294967295", "2147483648"] {
        let o = rt.out(&["exec", "-u", u, &id, "id"]);
        // exec's own failures exit 255, as runc's do.
        assert_eq!(o.code, Some(255), "exec -u {u}: {o:?}");
        assert!(o.stderr.contains("2147483647"), "{u}: {o:?}");
        assert!(!o.stdout.contains("uid="), "{u}: the process ran: {o:?}");
    }
    let p = TempDir::new("proc");
    let f = p.path().join("process.json");
    let proc = json!({"args": ["id"], "cwd": "/", "user": {"uid": 0, "gid": 0,
        "additionalGids": [4294967295u32]}});
    fs::write(&f, proc.to_string()).unwrap();
    let o = rt.out(&["exec", "--process", f.to_str().unwrap(), &id]);
    assert_eq!(o.code, Some(255), "exec --process: {o:?}");
    assert!(o.stderr.contains("2147483647"), "{o:?}");
}

fn cap_eff(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap_or_else(|| panic!("no CapEff in {out}"))
        .trim()
        .to_string()
}

/// Only canonical `CAP_*` names are granted: `SYS_ADMIN` and `cap_chown`
/// are skipped (with a warning), as is a canonical name no kernel has
/// (a newer engine's default set must still run on an older kernel).
#[test]
fn only_canonical_capability_names_are_granted() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let names = json!(["CAP_KILL", "SYS_ADMIN", "cap_chown", "CAP_NEWTHING"]);
    b.capabilities(&["bounding", "effective", "permitted"], names);
    let o = rt
        .sh(&b, "grep -E '^Cap(Eff|Bnd)' /proc/self/status")
        .check("run");
    // CAP_KILL is bit 5: nothing else.
    assert_eq!(cap_eff(&o.stdout), "0000000000000020", "{o:?}");
    assert!(o.stdout.contains("CapBnd:\t0000000000000020"), "{o:?}");
    for n in ["SYS_ADMIN", "cap_chown", "CAP_NEWTHING"] {
        assert!(o.stderr.contains(n), "no warning for {n}: {o:?}");
    }
    // exec --cap and --process take the same rule.
    let id = rt.sleeper(&b);
    let o = rt
        .out(&[
            "exec",
            "--cap",
            "sys_admin",
            "--cap",
            "CAP_NEWTHING",
            &id,
            "grep",
            "CapEff",
            "/proc/self/status",
        ])
        .check("exec --cap");
    assert_eq!(cap_eff(&o.stdout), "0000000000000020", "{o:?}");
}

#[test]
fn state_is_private() {
    require_root!();
    let rt = Rt::new();
    // An existing root that others can read is made private at create.
    fs::set_permissions(rt.root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let b = Bundle::new();
    let id = rt.id("private");
    b.args(&["sleep", "1000"]);
    b.edit(|c| c["annotations"] = json!({"secret": "s3cr3t"}));
    rt.create(&b, &id, &[]).check("create");
    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    if is_skiff() {
        // runc 1.1.5 leaves an existing root as it found it.
        assert_eq!(mode(rt.root.path()), 0o700, "state root");
    }
    let dir = rt.root.path().join(&id);
    if is_skiff() {
        assert_eq!(mode(&dir), 0o700, "container dir");
    }
    // runc 1.1.5 makes exec.fifo 0622.
    for e in fs::read_dir(&dir).unwrap().flatten().filter(|_| is_skiff()) {
        let m = fs::symlink_metadata(e.path()).unwrap();
        if m.is_file() || m.file_type().is_fifo() {
            assert_eq!(
                m.mode() & 0o077,
                0,
                "{} is readable by others",
                e.path().display()
            );
        }
    }
    // A fresh root is made 0700 (runc too).
    let fresh = rt.root.path().join("fresh");
    let id2 = rt.id("private2");
    let mut c = Command::new(runtime());
    c.arg("--root")
        .arg(&fresh)
        .args(["create", "--bundle"])
        .arg(b.path())
        .arg(&id2);
    rt.detached(c, "fresh").check("create in a fresh root");
    assert_eq!(mode(&fresh), 0o700, "fresh state root");
    let _ = output({
        let mut d = Command::new(runtime());
        d.arg("--root")
            .arg(&fresh)
            .args(["delete", "--force", &id2]);
        d
    });
    // Another user cannot list it: permission denied, not an empty table.
    let ids = [id.as_str(), id2.as_str()];
    for args in [&["list", "-q"][..], &["list"], &["state", &id2]] {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(runtime())
            .arg("--root")
            .arg(&fresh)
            .args(args)
            .stdin(Stdio::null());
        let o = output(c);
        assert_ne!(o.code, Some(0), "{args:?} as nobody succeeded: {o:?}");
        assert!(
            o.stderr.to_lowercase().contains("permission denied"),
            "{args:?}: {o:?}"
        );
        assert!(
            !ids.iter().any(|i| o.stdout.contains(i)),
            "{args:?} leaked an id: {o:?}"
        );
    }
}

/// A capability the runtime itself lacks cannot be granted: the spec says
/// a runtime SHOULD NOT fail on it but warn (a host that withholds
/// CAP_SYS_RESOURCE from root is such a case). skiff runs here under
/// `setpriv --bounding-set -net_raw`; the container asks for CAP_NET_RAW
/// and CAP_KILL in every set and gets CAP_KILL alone, with a warning.
#[test]
fn a_capability_the_runtime_lacks_is_skipped_with_a_warning() {
    require_root!();
    if !is_skiff() {
        skip!("skiff's rule (the spec's SHOULD NOT fail); runc 1.1.5 fails with EPERM");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.capabilities(&ALL_CAP_SETS, json!(["CAP_KILL", "CAP_NET_RAW"]));
    b.args(&["grep", "-E", "^Cap(Eff|Bnd|Amb)", "/proc/self/status"]);
    let mut c = Command::new("setpriv");
    c.args(["--bounding-set", "-net_raw"])
        .arg(runtime())
        .arg("--root")
        .arg(rt.root.path())
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(rt.id("nocap"))
        .stdin(Stdio::null());
    let o = output(c).check("run under setpriv");
    // CAP_KILL is bit 5; CAP_NET_RAW (bit 13) is in no set.
    for set in ["CapEff", "CapBnd", "CapAmb"] {
        assert!(
            o.stdout.contains(&format!("{set}:\t0000000000000020")),
            "{set}: {o:?}"
        );
    }
    assert!(
        o.stderr.contains("CAP_NET_RAW") && o.stderr.contains("bounding set"),
        "no warning naming CAP_NET_RAW: {o:?}"
    );
    // Without the wrapper the same config grants both (bits 5 and 13).
    let o = rt.run(&b, &rt.id("cap"), &[]).check("run");
    assert!(o.stdout.contains("CapEff:\t0000000000002020"), "{o:?}");
}
