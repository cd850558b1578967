//! Runtime logging, as runc's logrus: lines of text
//! (`time="2026-12-02T05:44:23Z" level=error msg="…"`) or JSON
//! (`{"level":"error","msg":"…","time":"…"}`, the only place containerd and
//! podman look for our errors), on stderr or in the `--log FILE`. With a
//! log file the final error is also printed on stderr, as a bare message.
//! Runs in: the runtime process; the fd is inherited by stage-1 and init.
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

pub struct Logger {
    file: Option<File>,
    json: bool,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

impl Logger {
    /// Opens the log file (append, CLOEXEC). An unopenable log file is not
    /// fatal: runc falls back to stderr as well.
    pub fn new(path: Option<&Path>, json: bool, debug: bool) -> Logger {
        let file = path.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .custom_flags(libc::O_CLOEXEC)
                .open(p)
                .ok()
        });
        Logger { file, json, debug }
    }
}

pub fn set(logger: Logger) {
    let _ = LOGGER.set(logger);
}

/// Phase marks: a timing trace (`--debug` or `SKIFF_TRACE=1`) and a fault
/// injection hook for tests (`SKIFF_TEST_DIE_AT=<phase>`: SIGKILL ourselves
/// on reaching that phase). Both are decided once in `init_phases`; with
/// neither, `phase` is one load and two `None` checks.
struct Phases {
    t0: Option<Instant>,
    die_at: Option<String>,
}

static PHASES: OnceLock<Phases> = OnceLock::new();

/// Reads the two switches once, at startup, before any fork.
pub fn init_phases(debug: bool, t0: Instant) -> bool {
    let trace = debug || std::env::var_os("SKIFF_TRACE").is_some_and(|v| v == "1");
    let die_at = std::env::var("SKIFF_TEST_DIE_AT").ok();
    let t0 = trace.then_some(t0);
    let _ = PHASES.set(Phases { t0, die_at });
    trace
}

/// What each phase mark means, for the debug log: runc's message where
/// runc logs one at the same stage.
fn phase_msg(name: &str) -> &'static str {
    match name {
        "plan" => "config.json loaded and checked",
        "statedir" => "state directory created",
        "cgroup" => "cgroup created",
        "fifo" => "exec fifo created",
        "fork" => "spawn stage-1",
        "stage1" => "~> stage-1",
        "stage1-unshare" => "unshare remaining namespaces",
        "stage1-msgs" => "-> stage-1 synchronisation loop",
        "pid-saved" => "init pid saved to the state",
        "init" => "child process in init()",
        "init-mounts" => "rootfs mounts prepared",
        "init-pivot" => "pivot_root done",
        "init-ready" => "init: closing the pipe to signal completion",
        "init-setup" => "init setup complete",
        "done" => "container created, waiting for start",
        "delete-killed" => "container processes killed",
        "delete-cgroup" => "cgroup removed",
        "exec-fork" => "spawn stage-1 for exec",
        "exec-pid" => "exec process pid received",
        "exec-done" => "exec process started",
        _ => "phase reached",
    }
}

/// Marks reaching `name`: logs it at debug level when tracing (with the
/// µs since startup and the pid), and dies here when the fault injection
/// names this phase. Children inherit the start instant (monotonic
/// clock), so their marks line up with ours.
pub fn phase(name: &str) {
    let Some(p) = PHASES.get() else { return };
    if let Some(t0) = p.t0 {
        let us = t0.elapsed().as_micros().to_string();
        let pid = std::process::id().to_string();
        let fields = [("phase", name), ("pid", &pid), ("us", &us)];
        write_fields("debug", phase_msg(name), &fields);
    }
    if p.die_at.as_deref() == Some(name) {
        // kill(getpid()), not raise(3): after a raw clone3 glibc's cached
        // thread id is the parent's.
        // The container's init is pid 1 of its pid namespace, which ignores
        // even its own SIGKILL: it dies the next most abrupt way.
        // SAFETY: kill(2), getpid(2) and _exit(2) have no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
            libc::_exit(128 + libc::SIGKILL)
        }
    }
}

pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.debug)
}

pub fn error(msg: &str) {
    write("error", msg);
}

pub fn warn(msg: &str) {
    write("warning", msg);
}

pub fn debug(msg: &str) {
    if debug_enabled() {
        write("debug", msg);
    }
}

/// A debug line with logrus fields after the message (`pid=42 status=0`).
pub fn debug_fields(msg: &str, fields: &[(&str, &str)]) {
    if debug_enabled() {
        write_fields("debug", msg, fields);
    }
}

fn write(level: &str, msg: &str) {
    write_fields(level, msg, &[]);
}

fn write_fields(level: &str, msg: &str, fields: &[(&str, &str)]) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let Some(l) = LOGGER.get() else {
        // Before the flags are parsed: runc's default, text on stderr.
        let _ = std::io::stderr().write_all(text_line(level, msg, fields, now).as_bytes());
        return;
    };
    let line = match l.json {
        true => json_line_with(
            level,
            msg,
            fields,
            &rfc3339(now.as_secs() as i64, now.subsec_nanos()),
        ),
        false => text_line(level, msg, fields, now),
    };
    match &l.file {
        Some(f) => {
            let mut f: &File = f;
            let _ = f.write_all(line.as_bytes());
            // runc also prints the final error on stderr, bare; engines that
            // do not read the log (podman without runtime_supports_json) rely on it.
            if level == "error" {
                eprintln!("{msg}");
            }
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// A logrus JSON line with extra fields (keys sorted, as logrus has them).
fn json_line_with(level: &str, msg: &str, fields: &[(&str, &str)], time: &str) -> String {
    let mut v = serde_json::json!({"level": level, "msg": msg, "time": time});
    for (k, val) in fields {
        // Numbers as numbers, as logrus encodes an int field.
        let val = match val.parse::<i64>() {
            Ok(n) => serde_json::json!(n),
            Err(_) => serde_json::json!(val),
        };
        v[*k] = val;
    }
    format!("{v}\n")
}

/// One line of logrus's TextFormatter (full timestamps, no colours):
/// `time="2026-12-02T05:44:23Z" level=debug msg="…" key=value`, the time
/// in whole seconds (RFC 3339, as logrus's default), fields after msg.
fn text_line(level: &str, msg: &str, fields: &[(&str, &str)], now: std::time::Duration) -> String {
    let time = rfc3339_secs(now.as_secs() as i64);
    let mut line = format!("time={} level={level} msg={}", quote(&time), quote(msg));
    for (k, v) in fields {
        line = format!("{line} {k}={}", quote(v));
    }
    line.push('\n');
    line
}

/// logrus's quoting: bare when every character is a letter, digit or one
/// of `-._/@^+`; otherwise a Go-quoted string (`"…"` with `\"`, `\\`,
/// `\n`, `\t`, `\r` and `\u00XX` for other control characters).
fn quote(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if bare {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// RFC 3339 UTC in whole seconds, e.g. 2026-12-02T05:44:23Z (logrus's text time).
fn rfc3339_secs(secs: i64) -> String {
    let full = rfc3339(secs, 0);
    format!("{}Z", &full[..19])
}

/// UTC time as RFC 3339 with nanoseconds, e.g. 2026-11-23T12:00:00.123456789Z.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Formats seconds since the epoch as RFC 3339 UTC (civil-from-days, Howard Hinnant).
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_700_000_000, 5), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn text_line_is_logrus_shaped() {
        let t = std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(
            text_line("error", "container \"x\" not\trunning", &[], t),
            "time=\"2023-11-14T22:13:20Z\" level=error msg=\"container \\\"x\\\" not\\trunning\"\n"
        );
        assert_eq!(
            text_line(
                "debug",
                "process exited",
                &[("pid", "42"), ("status", "0")],
                t
            ),
            "time=\"2023-11-14T22:13:20Z\" level=debug msg=\"process exited\" pid=42 status=0\n"
        );
        assert_eq!(quote("a-b.c/d@e^f+g_9"), "a-b.c/d@e^f+g_9");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("x\u{1}"), "\"x\\u0001\"");
        assert_eq!(quote("é"), "\"é\"");
    }

    #[test]
    fn json_fields_are_typed() {
        let l = json_line_with("debug", "m", &[("pid", "7"), ("phase", "init")], "T");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(
            (v["pid"].clone(), v["phase"].clone()),
            (7.into(), "init".into())
        );
    }

    #[test]
    fn json_line_is_logrus_shaped() {
        let l = json_line_with("error", "bad \"x\"", &[], "T");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "bad \"x\"");
        assert_eq!(v["time"], "T");
        assert!(l.ends_with('\n'));
    }
}
