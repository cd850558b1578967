//! The CLI surface: state JSON, list, spec, global flag forms, --version.
use crate::{Bundle, Rt, TempDir, output, require_root, runtime};
use serde_json::{Value, json};
use std::process::Command;

/// RFC 3339: `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
    {
        return false;
    }
    if !(b[10] == b'T' || b[10] == b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &s[i..] {
        "Z" | "z" => true,
        tz => {
            tz.len() == 6
                && (tz.starts_with('+') || tz.starts_with('-'))
                && tz.as_bytes()[3] == b':'
        }
    }
}

#[test]
fn rfc3339_checker() {
    assert!(is_rfc3339("2024-01-02T03:04:05.123456789Z"));
    assert!(is_rfc3339("2024-01-02T03:04:05+01:00"));
    assert!(!is_rfc3339("2024-01-02 03:04:05"));
    assert!(!is_rfc3339("yesterday"));
}

#[test]
fn state_json_fields() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["sleep", "1000"]);
    b.edit(|c| c["annotations"] = json!({"org.skiff.test": "yes", "other": "2"}));
    let id = rt.id("fields");
    rt.create(&b, &id, &[]).check("create");
    let st = rt.state(&id).unwrap();
    assert!(
        st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "{st}"
    );
    assert_eq!(st["id"], id.as_str());
    assert!(st["pid"].as_i64().unwrap() > 0);
    assert_eq!(st["status"], "created");
    let bundle = st["bundle"].as_str().unwrap();
    assert!(bundle.starts_with('/'), "bundle must be absolute: {bundle}");
    assert_eq!(
        std::fs::canonicalize(bundle).unwrap(),
        std::fs::canonicalize(b.path()).unwrap()
    );
    let rootfs = st["rootfs"].as_str().unwrap();
    assert_eq!(
        std::fs::canonicalize(rootfs).unwrap(),
        std::fs::canonicalize(b.rootfs()).unwrap()
    );
    let created = st["created"].as_str().unwrap();
    assert!(is_rfc3339(created), "created is not RFC 3339: {created}");
    assert!(st["owner"].is_string(), "owner missing: {st}");
    assert_eq!(st["annotations"]["org.skiff.test"], "yes", "{st}");
    assert_eq!(st["annotations"]["other"], "2", "{st}");
}

#[test]
fn list_formats() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let empty = rt
        .out(&["list", "--format", "json"])
        .check("list json (empty)");
    let v: Value = serde_json::from_str(&empty.stdout).unwrap_or(Value::Null);
    assert!(
        v.is_null() || v.as_array().is_some_and(|a| a.is_empty()),
        "empty list: {}",
        empty.stdout
    );

    let id = rt.sleeper(&b);
    let pid = rt.pid(&id);
    let table = rt.out(&["list"]).check("list");
    let mut lines = table.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let row: Vec<&str> = lines.next().expect("a row").split_whitespace().collect();
    assert_eq!(row[0], id);
    assert_eq!(row[1], pid.to_string());
    assert_eq!(row[2], "running");
    assert_eq!(row[3], b.path().to_str().unwrap());

    let js = rt
        .out(&["list", "--format", "json"])
        .check("list --format json");
    let v: Value = serde_json::from_str(&js.stdout).unwrap();
    let arr = v.as_array().expect("json array");
    assert_eq!(arr.len(), 1);
    let c = &arr[0];
    assert_eq!(c["id"], id.as_str());
    assert_eq!(c["pid"], pid);
    assert_eq!(c["status"], "running");
    assert_eq!(c["bundle"], b.path().to_str().unwrap());
    assert!(c["created"].as_str().is_some_and(is_rfc3339), "{c}");
    assert!(c["owner"].is_string());

    let q = rt.out(&["list", "-q"]).check("list -q");
    assert_eq!(q.stdout, format!("{id}\n"));
    let q = rt.out(&["list", "--quiet"]).check("list --quiet");
    assert_eq!(q.stdout.trim(), id);
}

/// `list` reads each state.json its own way (borrowed, for speed at a
/// thousand containers): every status, the pid of a stopped container,
/// annotations, and a state file bigger than one 4 KiB read come out as
/// `state` says them.
#[test]
fn list_agrees_with_state_in_every_status() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let running = rt.sleeper(&b);
    let paused = rt.sleeper(&b);
    rt.out(&["pause", &paused]).check("pause");
    b.args(&["true"]);
    let stopped = rt.id("stopped");
    rt.run_detached(&b, &stopped, &[])
        .check("run --detach true");
    rt.wait_status(&stopped, "stopped");
    let big = "x".repeat(5000);
    b.edit(|c| c["annotations"] = json!({"org.skiff.big": big, "two": "2"}));
    b.args(&["sleep", "1000"]);
    let created = rt.id("created");
    rt.create(&b, &created, &[]).check("create");

    let js = rt.out(&["list", "--format", "json"]).check("list json");
    let listed: Value = serde_json::from_str(&js.stdout).unwrap();
    let listed = listed.as_array().expect("json array");
    assert_eq!(listed.len(), 4, "{listed:?}");
    let table = rt.out(&["list"]).check("list");
    for (id, status) in [
        (&running, "running"),
        (&paused, "paused"),
        (&stopped, "stopped"),
        (&created, "created"),
    ] {
        let mut st = rt.state(id).expect("state");
        assert_eq!(st["status"], status, "{st}");
        let l = listed.iter().find(|l| l["id"] == id.as_str()).expect(id);
        assert!(l["owner"].is_string(), "{l}");
        st["owner"] = l["owner"].clone();
        assert_eq!(l, &st, "list and state differ for the {status} container");
        let row = table.stdout.lines().find(|r| r.starts_with(id.as_str()));
        let row: Vec<&str> = row.expect(id).split_whitespace().collect();
        assert_eq!(row[1], st["pid"].to_string(), "{row:?}");
        assert_eq!(row[2], status, "{row:?}");
    }
    let c = listed.iter().find(|l| l["id"] == created.as_str()).unwrap();
    assert_eq!(
        c["annotations"]["org.skiff.big"].as_str().map(str::len),
        Some(5000)
    );
    let s = listed.iter().find(|l| l["id"] == stopped.as_str()).unwrap();
    assert_eq!(s["pid"], 0, "a stopped container's pid is 0: {s}");
    rt.out(&["resume", &paused]).check("resume");
}

fn spec_in(dir: &std::path::Path, extra: &[&str]) -> crate::Out {
    let mut c = Command::new(runtime());
    c.arg("spec").args(extra).arg("--bundle").arg(dir);
    output(c)
}

#[test]
fn spec_writes_config_once() {
    let d = TempDir::new("spec");
    spec_in(d.path(), &[]).check("spec");
    let v: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap();
    assert!(
        v["ociVersion"]
            .as_str()
            .is_some_and(|s| s.starts_with("1.")),
        "{v}"
    );
    assert_eq!(v["root"]["path"], "rootfs");
    assert_eq!(v["process"]["args"][0], "sh");
    assert_eq!(v["process"]["terminal"], true);
    assert!(
        v["process"]["capabilities"]["inheritable"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "default spec must not grant inheritable caps"
    );
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for want in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(&want), "default namespaces {ns:?} lack {want}");
    }
    assert!(!ns.contains(&"user"));
    let before = std::fs::read(d.path().join("config.json")).unwrap();
    let again = spec_in(d.path(), &[]);
    assert!(
        !again.ok(),
        "spec must refuse to overwrite config.json: {again:?}"
    );
    assert!(!again.stderr.trim().is_empty());
    assert_eq!(
        std::fs::read(d.path().join("config.json")).unwrap(),
        before,
        "config.json was changed"
    );
}

#[test]
fn spec_in_cwd() {
    let d = TempDir::new("speccwd");
    let mut c = Command::new(runtime());
    c.arg("spec").current_dir(d.path());
    output(c).check("spec in cwd");
    assert!(d.path().join("config.json").exists());
}

#[test]
fn spec_rootless_has_user_namespace() {
    let d = TempDir::new("rootless");
    spec_in(d.path(), &["--rootless"]).check("spec --rootless");
    let v: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap();
    let ns = v["linux"]["namespaces"].as_array().unwrap();
    assert!(
        ns.iter().any(|n| n["type"] == "user"),
        "no user namespace: {v}"
    );
    assert!(
        !ns.iter().any(|n| n["type"] == "network"),
        "rootless spec cannot create a network namespace usefully: {v}"
    );
    let uid = nix::unistd::geteuid().as_raw() as u64;
    assert_eq!(v["linux"]["uidMappings"][0]["hostID"], uid, "{v}");
    assert_eq!(v["linux"]["uidMappings"][0]["containerID"], 0);
    assert!(v["linux"]["gidMappings"][0]["size"].as_u64().is_some());
}

#[test]
fn global_root_flag_forms() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = rt.id("eqform");
    let root = format!("--root={}", rt.root.path().display());
    let mut c = Command::new(runtime());
    c.arg(&root)
        .arg("create")
        .arg(format!("--bundle={}", b.path().display()))
        .arg(&id);
    rt.detached(c, "eq")
        .check("create with --root=DIR --bundle=DIR");
    // `--root DIR` (the Rt's form) sees the container `--root=DIR` made.
    assert_eq!(rt.status(&id).as_deref(), Some("created"));
    let mut c = Command::new(runtime());
    c.arg(&root).arg("--log-format=json").args(["state", &id]);
    output(c).check("state with --root=DIR");
    // Global flags are accepted after the subcommand too (runc/urfave allow
    // `--root` only before it; skiff takes both, as clap did): not tested.
}

#[test]
fn version_flag() {
    let mut c = Command::new(runtime());
    c.arg("--version");
    let o = output(c).check("--version");
    let first = o.stdout.lines().next().unwrap_or("");
    assert!(first.contains("version"), "{o:?}");
    assert!(
        first.chars().any(|c| c.is_ascii_digit()),
        "no version number: {o:?}"
    );
}

#[test]
fn unknown_subcommand_fails() {
    let mut c = Command::new(runtime());
    c.arg("no-such-subcommand");
    let o = output(c);
    assert!(!o.ok(), "{o:?}");
}

/// Exit codes of bad usage and bad values are runc's (and the man pages'):
/// 1 for a usage error or a bad value, 3 for an unknown subcommand, 255 for
/// an exec that fails; a one-line message on stderr each time.
#[test]
fn usage_and_value_error_exit_codes() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.sleeper(&b);
    let id = id.as_str();
    let cases: &[(&[&str], i32)] = &[
        (&["update", "--memory", "notanumber", id], 1),
        (&["update", "--memory", "-5", id], 1),
        (&["update", "--pids-limit", "x", id], 1),
        (&["update", "--bogus", id], 1),
        (&["update"], 1),
        (&["update", id, "extra"], 1),
        (&["kill"], 1),
        (&["kill", "--bogus", id], 1),
        (&["kill", id, "BOGUS"], 1),
        (&["kill", id, "9", "extra"], 1),
        (&["kill", id, "-1"], 1),
        (&["exec"], 1),
        (&["exec", "--bogus", id, "true"], 1),
        (&["exec", "--preserve-fds", "x", id, "true"], 1),
        (&["exec", "--cwd", "rel", id, "true"], 255),
        (&["exec", id], 255),
        (&["exec", id, "/nonexistent"], 255),
        (&["list", "extra"], 1),
        (&["state"], 1),
        (&["--bogus", "list"], 1),
        (&["bogus"], 3),
    ];
    for (args, want) in cases {
        let o = rt.out(args);
        assert_eq!(o.code, Some(*want), "{args:?}: {o:?}");
        assert!(!o.stderr.trim().is_empty(), "{args:?}: no message: {o:?}");
    }
    assert_eq!(rt.status(id).as_deref(), Some("running"));
}

/// `skiff list | head -1`: a command that only prints dies of SIGPIPE when
/// its reader has gone, silently, as runc (Go) does on stdout; it used to
/// panic on EPIPE ("failed printing to stdout") and abort. The reader is
/// closed before the runtime starts, so the write always meets EPIPE.
#[test]
fn printing_commands_die_quietly_of_sigpipe() {
    use std::os::unix::process::ExitStatusExt;
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.sleeper(&b);
    for args in [
        vec!["list"],
        vec!["list", "--format", "json"],
        vec!["state", id.as_str()],
        vec!["--help"],
    ] {
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let mut c = rt.cmd();
        c.args(&args).stdout(std::process::Stdio::from(w));
        let o = c.output().expect("spawn runtime");
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?}, stderr {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
