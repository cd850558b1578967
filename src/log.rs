//! Runtime logging: stderr by default, or `--log FILE` as text or runc-style
//! JSON lines (`{"level":"error","msg":"…","time":"…"}`), which is the only
//! place containerd and podman look for our errors.
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

/// Marks reaching `name`: logs the µs since startup when tracing, and
/// dies here when the fault injection names this phase. Children inherit
/// the start instant (monotonic clock), so their marks line up with ours.
pub fn phase(name: &str) {
    let Some(p) = PHASES.get() else { return };
    if let Some(t0) = p.t0 {
        let us = t0.elapsed().as_micros();
        write(
            "debug",
            &format!("phase {name}: {us} us (pid {})", std::process::id()),
        );
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

fn write(level: &str, msg: &str) {
    let Some(l) = LOGGER.get() else {
        eprintln!("{level}: {msg}");
        return;
    };
    match &l.file {
        Some(f) => {
            let mut f: &File = f;
            let line = if l.json {
                json_line(level, msg, &now_rfc3339())
            } else {
                format!("time=\"{}\" level={} msg={:?}\n", now_rfc3339(), level, msg)
            };
            let _ = f.write_all(line.as_bytes());
            // runc also prints the final error on stderr; engines that do not
            // read the log (podman without runtime_supports_json) rely on it.
            if level == "error" {
                eprintln!("{level}: {msg}");
            }
        }
        None if l.json => {
            let _ = std::io::stderr().write_all(json_line(level, msg, &now_rfc3339()).as_bytes());
        }
        None => eprintln!("{level}: {msg}"),
    }
}

/// One logrus-style JSON line.
pub fn json_line(level: &str, msg: &str, time: &str) -> String {
    let v = serde_json::json!({"level": level, "msg": msg, "time": time});
    format!("{v}\n")
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
    fn json_line_is_logrus_shaped() {
        let l = json_line("error", "bad \"x\"", "T");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "bad \"x\"");
        assert_eq!(v["time"], "T");
        assert!(l.ends_with('\n'));
    }
}
