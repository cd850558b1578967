//! runc parity of the command line (issue "runc parity"): defaults of a
//! `exec --process` file, terminal ownership, `kill -a` and `ps` on a
//! stopped container, help and version output, text logs. Each test also
//! passes against runc 1.1.5, except where gated on `is_skiff()`.
use crate::*;
use std::process::Command;

/// The `Name:\tv1\tv2...` line of a /proc/PID/status text, as fields.
fn status_field<'a>(status: &'a str, name: &str) -> Vec<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
        .split_whitespace()
        .collect()
}

/// A process file without `user` runs as 0:0 (runc's zero value), not as
/// the container's user; without `capabilities` it gets the container's
/// (config.json) capabilities, nothing more.
#[test]
fn exec_process_file_defaults_user_and_caps() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        let set = json!(["CAP_CHOWN", "CAP_KILL"]);
        c["process"]["capabilities"] = json!({
            "bounding": set, "effective": set, "permitted": set
        });
    });
    let id = rt.sleeper(&b);
    let pf = rt.root.path().join("process.json");
    fs::write(
        &pf,
        json!({"args": ["cat", "/proc/self/status"], "cwd": "/",
               "env": ["PATH=/bin"]})
        .to_string(),
    )
    .unwrap();
    let o = rt
        .out(&["exec", "--process", pf.to_str().unwrap(), &id])
        .check("exec --process without user");
    assert_eq!(status_field(&o.stdout, "Uid"), ["0"; 4], "{o:?}");
    assert_eq!(status_field(&o.stdout, "Gid"), ["0"; 4], "{o:?}");
    // CAP_CHOWN (0) and CAP_KILL (5): the container's sets, no ambient.
    assert_eq!(
        status_field(&o.stdout, "CapEff"),
        ["0000000000000021"],
        "{o:?}"
    );
    assert_eq!(
        status_field(&o.stdout, "CapBnd"),
        ["0000000000000021"],
        "{o:?}"
    );
    assert_eq!(
        status_field(&o.stdout, "CapInh"),
        ["0000000000000000"],
        "{o:?}"
    );
    assert_eq!(
        status_field(&o.stdout, "CapAmb"),
        ["0000000000000000"],
        "{o:?}"
    );
}

/// `cwd` is required in a process file, and absolute: runc refuses both,
/// naming the field, and runs nothing.
#[test]
fn exec_process_file_requires_absolute_cwd() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    let id = rt.sleeper(&b);
    let marker = "/tmp/ran";
    for (tag, p) in [
        (
            "no-cwd",
            json!({"args": ["touch", marker], "env": ["PATH=/bin"]}),
        ),
        (
            "relative",
            json!({"args": ["touch", marker], "env": ["PATH=/bin"], "cwd": "tmp"}),
        ),
    ] {
        let pf = rt.root.path().join(format!("{tag}.json"));
        fs::write(&pf, p.to_string()).unwrap();
        let o = rt.out(&["exec", "--process", pf.to_str().unwrap(), &id]);
        assert!(!o.ok(), "{tag}: {o:?}");
        assert!(o.stderr.to_lowercase().contains("cwd"), "{tag}: {o:?}");
        assert!(!b.rootfs().join("tmp/ran").exists(), "{tag}: it ran");
    }
}

/// The pty slave of a process that runs as uid 1000 belongs to uid 1000,
/// so the user can use their terminal (runc's fixStdioPermissions chowns
/// the uid and keeps the devpts gid, 5 from the `gid=5` mount option).
#[test]
fn terminal_is_owned_by_the_process_user() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    let probe = "stat -L -c %u:%g /proc/self/fd/0 /proc/self/fd/2; sleep 1000";
    b.args(&["sh", "-c", probe]);
    let console = crate::fds_tty::ConsoleSocket::new("ttyown");
    let id = rt.id("ttyown");
    rt.run_detached(&b, &id, &["--console-socket", console.arg()])
        .check("run -d --console-socket as uid 1000");
    // exec -t as uid 1000 too, with its own pty.
    let exec_console = crate::fds_tty::ConsoleSocket::new("ttyown-exec");
    let mut c = rt.cmd();
    c.args(["exec", "-t", "-d", "--user", "1000:1000"])
        .args(["--console-socket", exec_console.arg(), &id])
        .args([
            "stat",
            "-L",
            "-c",
            "%u:%g",
            "/proc/self/fd/0",
            "/proc/self/fd/1",
        ]);
    rt.detached(c, "ttyown-exec")
        .check("exec -t -d as uid 1000");
    let text = exec_console.output();
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines, ["1000:5", "1000:5"], "exec -t: {text:?}");
    rt.out(&["kill", &id, "KILL"]).check("kill");
    let text = console.output();
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines, ["1000:5", "1000:5"], "run: {text:?}");
}

/// The host pids `ps --format json` lists (runc prints `null` for none).
fn ps_json(rt: &Rt, id: &str) -> Vec<i64> {
    let o = rt.out(&["ps", "--format", "json", id]).check("ps -f json");
    let v: Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {o:?}"));
    match v {
        Value::Null => Vec::new(),
        v => v
            .as_array()
            .unwrap_or_else(|| panic!("{o:?}"))
            .iter()
            .map(|p| p.as_i64().unwrap())
            .collect(),
    }
}

/// After init exits, a container without a pid namespace can leave
/// processes in its cgroup. As in runc, `ps` still lists them (header and
/// exit 0 once there are none) and `kill -a` still reaches them (and
/// succeeds when there are none); plain `kill` says the container is not
/// running.
#[test]
fn ps_and_kill_all_on_a_stopped_container() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
        c["root"]["readonly"] = json!(false);
    });
    b.args(&["sh", "-c", "sleep 1000 & echo $! > /tmp/left; exit 0"]);
    let id = rt.id("leftover");
    rt.run_detached(&b, &id, &[]).check("run -d");
    rt.wait_status(&id, "stopped");
    let left = b.rootfs().join("tmp/left");
    // No pid namespace: the pid init wrote is the host's.
    let mut sleep: Option<i64> = None;
    assert!(poll(10, || {
        sleep = fs::read_to_string(&left)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        sleep.is_some()
    }));
    assert_eq!(ps_json(&rt, &id), [sleep.unwrap()], "the leftover sleep");
    let o = rt.out(&["kill", &id, "KILL"]);
    assert_eq!(o.code, Some(1), "plain kill of a stopped container: {o:?}");
    assert!(o.stderr.contains("not running"), "{o:?}");
    rt.out(&["kill", "--all", &id, "KILL"])
        .check("kill --all on a stopped container");
    assert!(
        poll(10, || ps_json(&rt, &id).is_empty()),
        "kill --all did not reach the leftover process"
    );
    rt.out(&["kill", "-a", &id, "KILL"])
        .check("kill -a on an empty stopped container");
    let o = rt.out(&["ps", &id]).check("ps on a stopped container");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the header: {o:?}");
    assert!(lines[0].split_whitespace().any(|h| h == "PID"), "{o:?}");
    let o = rt.out(&["ps", "-f", "json", &id]).check("ps -f json");
    assert_eq!(o.stdout.trim(), "null", "runc's empty list: {o:?}");
}

/// `<runtime> args...` with no --root (help and version need none).
fn bare(args: &[&str]) -> Out {
    let mut c = Command::new(runtime());
    c.args(args);
    output(c)
}

/// The runtime's name as its help prints it: runc, skiff.
fn prog() -> String {
    let p = runtime();
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// `-v` is `--version`: "NAME version X" first, the spec version after.
#[test]
fn short_v_prints_the_version() {
    let v = bare(&["-v"]).check("-v");
    assert_eq!(v.stdout, bare(&["--version"]).stdout, "{v:?}");
    let first = v.stdout.lines().next().unwrap_or_default();
    let want = format!("{} version ", prog());
    assert!(first.starts_with(&want), "{v:?}");
    assert!(v.stdout.lines().any(|l| l.starts_with("spec: 1.")), "{v:?}");
}

/// `help CMD`, `CMD -h` and `CMD --help` print urfave/cli's layout, as
/// runc: NAME, USAGE (with "[command options]" only when the command has
/// options), OPTIONS as `--long value, -s value  help`.
#[test]
fn command_help_has_runcs_layout() {
    let p = prog();
    let create = bare(&["help", "create"]).check("help create");
    assert_eq!(create.stdout, bare(&["create", "-h"]).stdout);
    assert_eq!(create.stdout, bare(&["create", "--help"]).stdout);
    let t = &create.stdout;
    assert!(t.starts_with(&format!("NAME:\n   {p} create - ")), "{t}");
    let usage = format!("\n\nUSAGE:\n   {p} create [command options] <container-id>\n");
    assert!(t.contains(&usage), "{t}");
    assert!(
        t.contains("\n\nOPTIONS:\n   --bundle value, -b value  "),
        "{t}"
    );
    assert!(t.contains("\n   --no-pivot                "), "{t}");
    let kill = bare(&["help", "kill"]).check("help kill").stdout;
    let usage = format!("\n\nUSAGE:\n   {p} kill [command options] <container-id> [signal]\n");
    assert!(kill.contains(&usage), "{kill}");
    assert!(kill.contains("\nOPTIONS:\n   --all, -a  "), "{kill}");
    // No options: neither "[command options]" nor an OPTIONS section.
    let state = bare(&["state", "--help"]).check("state --help").stdout;
    assert!(
        state.contains(&format!("\n   {p} state <container-id>\n")),
        "{state}"
    );
    assert!(!state.contains("OPTIONS"), "{state}");
    let top = bare(&["help"]).check("help").stdout;
    assert!(top.starts_with(&format!("NAME:\n   {p} - ")), "{top}");
    assert!(top.contains("\nCOMMANDS:\n"), "{top}");
    assert!(top.contains("\n   --version, -v "), "{top}");
}

/// `help foo` and `foo`: runc's "No help topic for 'foo'", exit status 3.
#[test]
fn help_for_an_unknown_command() {
    for args in [&["help", "foo"][..], &["foo"]] {
        let o = bare(args);
        assert_eq!(o.code, Some(3), "{args:?}: {o:?}");
        assert!(o.stderr.contains("No help topic for 'foo'"), "{o:?}");
        assert!(o.stdout.is_empty(), "{o:?}");
    }
}

/// Errors without --log go to stderr as logrus text lines; with --log FILE
/// the line goes to the file and stderr gets the bare message (runc's
/// `fatal`); with --log-format json, JSON lines (unchanged).
#[test]
fn errors_are_logged_as_runc_logs_them() {
    require_root!();
    let rt = Rt::new();
    let o = rt.out(&["delete", "no-such-container"]);
    assert_eq!(o.code, Some(1), "{o:?}");
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{o:?}");
    let (level, msg, _) = logrus_text(lines[0]).unwrap_or_else(|| panic!("not logrus: {o:?}"));
    assert_eq!(level, "error");
    assert!(msg.contains("does not exist"), "{o:?}");

    let log = rt.root.path().join("text.log");
    let o = rt.out(&[
        "--log",
        log.to_str().unwrap(),
        "delete",
        "no-such-container",
    ]);
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.trim().ends_with("does not exist"), "{o:?}");
    assert!(!o.stderr.contains("level="), "bare on stderr: {o:?}");
    let text = fs::read_to_string(&log).unwrap();
    let (level, msg, _) = logrus_text(text.trim()).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        (level.as_str(), msg),
        ("error", o.stderr.trim().to_string())
    );

    let o = rt.out(&["--log-format", "json", "delete", "no-such-container"]);
    let v: Value = serde_json::from_str(o.stderr.trim()).unwrap_or_else(|e| panic!("{e}: {o:?}"));
    assert_eq!(v["level"], "error", "{o:?}");
    assert!(v["msg"].as_str().unwrap().contains("does not exist"));
}

/// `--debug --log FILE`: every line is a logrus text line (or a JSON line
/// with --log-format json), with debug lines at the stages runc logs them:
/// "child process in init()" in the container's init, "process exited"
/// with pid and status when a foreground process ends.
#[test]
fn debug_log_lines_at_runcs_stages() {
    require_root!();
    let rt = Rt::new();
    let b = Bundle::new();
    b.args(&["true"]);
    let log = rt.root.path().join("debug.log");
    let id = rt.id("debuglog");
    let mut c = rt.cmd();
    c.args(["--debug", "--log", log.to_str().unwrap(), "run", "--bundle"])
        .arg(b.path())
        .arg(&id);
    output(c).check("run --debug");
    let text = fs::read_to_string(&log).unwrap();
    let parsed: Vec<_> = text
        .lines()
        .map(|l| logrus_text(l).unwrap_or_else(|| panic!("not a logrus line: {l:?}")))
        .collect();
    assert!(parsed.iter().all(|p| p.0 == "debug"), "{text}");
    let has = |m: &str| parsed.iter().find(|p| p.1 == m);
    assert!(has("child process in init()").is_some(), "{text}");
    let exited = has("process exited").unwrap_or_else(|| panic!("{text}"));
    assert!(exited.2.contains(" status=0"), "{text}");
    assert!(exited.2.contains(" pid="), "{text}");

    let id = rt.sleeper(&b);
    let log = rt.root.path().join("debug.json");
    let mut c = rt.cmd();
    c.args([
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
    ])
    .args(["exec", &id, "true"]);
    output(c).check("exec --debug");
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(lines.len() > 1, "{text}");
    assert!(
        lines
            .iter()
            .all(|v| v["level"] == "debug" && v["time"].is_string()),
        "{text}"
    );
    let exited = lines.iter().find(|v| v["msg"] == "process exited");
    assert_eq!(
        exited.map(|v| v["status"].clone()),
        Some(json!(0)),
        "{text}"
    );
}
