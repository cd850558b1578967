//! Failures: exit status 1, one line on stderr, and nothing left behind.
use crate::cgroup::{cgroup_dirs_left, unique_cgroup};
use crate::{Bundle, Out, Rt, is_skiff, require_root, skip};
use serde_json::{Value, json};
use std::fs;

/// Pids whose cgroup mentions `cg` or whose root is under `bundle`.
fn leftover_processes(cg: &str, bundle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let in_cg = fs::read_to_string(e.path().join("cgroup"))
            .is_ok_and(|t| t.lines().any(|l| l.ends_with(cg)));
        let in_bundle = fs::read_link(e.path().join("root"))
            .is_ok_and(|r| r.to_string_lossy().contains(bundle));
        if in_cg || in_bundle {
            let cmd = fs::read_to_string(e.path().join("cmdline")).unwrap_or_default();
            found.push(format!("{name}: {}", cmd.replace('\0', " ")));
        }
    }
    found
}

/// A create that must fail cleanly; returns its output for more checks.
pub(crate) fn failed_create(rt: &Rt, b: &Bundle, tag: &str) -> Out {
    let id = rt.id(tag);
    let cg = unique_cgroup(&id);
    // Best effort: a config that does not parse cannot take a cgroupsPath.
    if fs::read(b.path().join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_slice::<Value>(&t).ok())
        .is_some()
    {
        b.edit(|c| c["linux"]["cgroupsPath"] = json!(cg));
    }
    let o = rt.create(b, &id, &[]);
    assert_eq!(o.code, Some(1), "{tag}: create must exit 1: {o:?}");
    let err = o.stderr.trim();
    assert!(!err.is_empty(), "{tag}: no error message");
    assert_eq!(
        err.lines().count(),
        1,
        "{tag}: error must be one line: {err}"
    );
    assert!(o.stdout.is_empty(), "{tag}: unexpected stdout: {o:?}");
    assert!(!rt.root.path().join(&id).exists(), "{tag}: state dir left");
    assert!(
        rt.state(&id).is_none(),
        "{tag}: state works after a failed create"
    );
    assert!(
        cgroup_dirs_left(&cg).is_empty(),
        "{tag}: cgroup left: {:?}",
        cgroup_dirs_left(&cg)
    );
    let bundle = b.path().to_str().unwrap();
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(bundle), "{tag}: mount left on the host: {mi}");
    let procs = leftover_processes(&cg, bundle);
    assert!(procs.is_empty(), "{tag}: processes left: {procs:?}");
    o
}

#[test]
fn invalid_json() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    fs::write(
        b.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": ",
    )
    .unwrap();
    failed_create(&rt, &b, "badjson");
}

#[test]
fn missing_config() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    fs::remove_file(b.path().join("config.json")).unwrap();
    let o = failed_create(&rt, &b, "noconfig");
    assert!(o.stderr.contains("config.json"), "{o:?}");
}

#[test]
fn missing_rootfs() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    fs::remove_dir_all(b.rootfs()).unwrap();
    let o = failed_create(&rt, &b, "norootfs");
    assert!(
        o.stderr.contains("rootfs"),
        "the error must name the rootfs: {o:?}"
    );
}

#[test]
fn nonexistent_executable() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["/nope"]);
    let o = failed_create(&rt, &b, "nope");
    assert!(
        o.stderr.contains("/nope"),
        "the error must name the path: {o:?}"
    );
    b.args(&["no-such-command-in-path"]);
    let o = failed_create(&rt, &b, "nopath");
    assert!(o.stderr.contains("no-such-command-in-path"), "{o:?}");
}

#[test]
fn bad_mount_source() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.mount(json!({"destination": "/data", "type": "bind", "source": "/nonexistent-skiff-src", "options": ["rbind"]}));
    b.mount(json!({"destination": "/late", "type": "tmpfs", "source": "tmpfs"}));
    let o = failed_create(&rt, &b, "badmount");
    assert!(
        o.stderr.contains("/nonexistent-skiff-src") || o.stderr.contains("/data"),
        "{o:?}"
    );
}

#[test]
fn bad_mount_type() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.mount(json!({"destination": "/x", "type": "no-such-fs", "source": "none"}));
    failed_create(&rt, &b, "badfstype");
}

#[test]
fn bad_cwd_is_a_file() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| c["process"]["cwd"] = json!("/bin/busybox"));
    failed_create(&rt, &b, "badcwd");
}

#[test]
fn bad_namespace_path() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.namespace(json!({"type": "network", "path": "/proc/self/ns/nonexistent"}));
    failed_create(&rt, &b, "badns");
}

#[test]
fn log_json_error_line() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["/nope"]);
    let log = rt.root.path().join("log.json");
    let id = rt.id("logjson");
    let mut c = rt.cmd();
    c.arg("--log").arg(&log).arg("--log-format").arg("json");
    c.arg("create").arg("--bundle").arg(b.path()).arg(&id);
    let o = rt.detached(c, "logjson");
    assert_eq!(o.code, Some(1), "{o:?}");
    let text = fs::read_to_string(&log).expect("--log file was not written");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect();
    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "error").collect();
    assert!(!errors.is_empty(), "no error line in {text}");
    let e = errors.last().unwrap();
    assert!(
        e["msg"].as_str().is_some_and(|m| m.contains("/nope")),
        "{e}"
    );
    assert!(e["time"].as_str().is_some_and(|t| !t.is_empty()), "{e}");
    assert!(!rt.root.path().join(&id).exists());
}

#[test]
fn log_text_and_flag_equals_form() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["/nope"]);
    let log = rt.root.path().join("log.txt");
    let id = rt.id("logtext");
    let mut c = rt.cmd();
    c.arg(format!("--log={}", log.display()))
        .arg("--log-format=text");
    c.arg("create").arg("--bundle").arg(b.path()).arg(&id);
    let o = rt.detached(c, "logtext");
    assert_eq!(o.code, Some(1), "{o:?}");
    let text = fs::read_to_string(&log).expect("--log file was not written");
    assert!(text.contains("level=error"), "{text}");
    assert!(text.contains("/nope"), "{text}");
}

/// An LSM label for an LSM the host does not run cannot be honoured: create
/// fails (runc too) and names it. Skipped where the LSM is really enabled.
#[test]
fn lsm_labels_without_the_lsm_fail() {
    require_root!();
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    if apparmor || selinux {
        skip!("this host runs AppArmor or SELinux: the failure path does not apply");
    }
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["true"]);
    b.edit(|c| c["process"]["apparmorProfile"] = json!("docker-default"));
    let o = failed_create(&rt, &b, "aa");
    assert!(o.stderr.to_lowercase().contains("apparmor"), "{o:?}");
    b.edit(|c| {
        c["process"]
            .as_object_mut()
            .unwrap()
            .remove("apparmorProfile");
        c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    });
    let o = failed_create(&rt, &b, "se");
    assert!(o.stderr.to_lowercase().contains("selinux"), "{o:?}");
    // exec --apparmor on a running container: runc's exec failure status.
    b.edit(|c| {
        c["process"].as_object_mut().unwrap().remove("selinuxLabel");
    });
    let id = rt.sleeper(&b);
    let o = rt.out(&["exec", "--apparmor", "docker-default", &id, "true"]);
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(o.stderr.to_lowercase().contains("apparmor"), "{o:?}");
}

/// A memory limit below what init needs to start fails create with an error
/// that names the memory limit (runc: the write of the limit is refused,
/// "unable to set memory limit to 1 (current usage …)"; skiff writes it
/// before init joins, and init is then OOM-killed: it said only "container
/// init exited during setup").
#[test]
fn memory_limit_below_need_is_named() {
    require_root!();
    let rt = Rt::new();
    for limit in [1, 4096] {
        let b = Bundle::new();
        b.args(&["true"]);
        b.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": limit}));
        let o = failed_create(&rt, &b, "memlow");
        assert!(o.stderr.contains("memory limit"), "{limit}: {o:?}");
        if is_skiff() {
            assert!(
                o.stderr.contains("OOM killer")
                    && o.stderr
                        .contains(&format!("of {limit} bytes (linux.resources.memory.limit)"))
                    && o.stderr.contains("oom_kill: "),
                "{limit}: {o:?}"
            );
        }
    }
}

/// `update --memory` below the container's usage: the kernel refuses the
/// write (EBUSY); the error says so with the usage, as runc's.
#[test]
fn update_memory_below_usage_is_explained() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.sleeper(&b);
    let o = rt.out(&["update", "--memory", "4096", &id]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(
        o.stderr
            .contains("unable to set memory limit to 4096 (current usage: "),
        "{o:?}"
    );
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
}

/// A mount destination that is a symlink to "/" in the image (/mnt -> /)
/// would cover the whole rootfs: create fails naming the mount and where
/// its destination resolves (it said "open /dev/null: ENOENT").
#[test]
fn mount_on_symlink_to_root_is_named() {
    require_root!();
    let rt = Rt::new();
    for m in [
        json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"}),
        json!({"destination": "/mnt", "type": "bind", "source": "/tmp", "options": ["rbind"]}),
    ] {
        let b = Bundle::new();
        std::os::unix::fs::symlink("/", b.rootfs().join("mnt")).unwrap();
        b.args(&["true"]);
        b.mount(m.clone());
        let o = failed_create(&rt, &b, "mntroot");
        // runc: error mounting "tmpfs" to rootfs at "/mnt": ...
        assert!(o.stderr.contains("/mnt"), "{m}: {o:?}");
        if is_skiff() {
            assert!(
                o.err().contains("mounts[")
                    && o.err().contains("destination \"/mnt\" resolves to \"/\""),
                "{m}: {o:?}"
            );
        }
    }
}

/// Fields of other platforms (the only ones skiff refuses): create fails
/// naming the field and why, and leaves nothing behind. runc 1.1.5 ignores
/// them (it predates vm/zos and never checks solaris/windows).
#[test]
fn other_platform_fields_are_refused_by_name() {
    require_root!();
    if !crate::is_skiff() {
        skip!("runc 1.1.5 ignores other platforms' fields");
    }
    let rt = Rt::new();
    for (field, edit) in [
        ("windows", json!({"windows": {"layerFolders": ["C:\\l"]}})),
        ("solaris", json!({"solaris": {"milestone": "x"}})),
        (
            "process.commandLine",
            json!({"process": {"commandLine": "cmd"}}),
        ),
    ] {
        let b = Bundle::new();
        b.edit(|c| {
            for (k, v) in edit.as_object().unwrap() {
                match v.as_object() {
                    Some(o) if k == "process" => {
                        for (k2, v2) in o {
                            c[k][k2] = v2.clone();
                        }
                    }
                    _ => c[k] = v.clone(),
                }
            }
        });
        let id = rt.id("platform");
        let o = rt.create(&b, &id, &[]);
        assert_eq!(o.code, Some(1), "{field}: {o:?}");
        assert!(
            o.stderr.contains(&format!("{field}: only for ")),
            "{field}: {o:?}"
        );
        assert!(
            !rt.root.path().join(&id).exists(),
            "{field}: state dir left"
        );
    }
}
