//! Which runtime the tests drive; shared by the `integration` and
//! `engines` targets (the latter includes this file with #[path]).
use std::path::PathBuf;

/// The runtime binary under test: `$RUNTIME` if set, else the `skiff` built
/// by cargo (`RUNTIME=/usr/sbin/runc` checks the tests themselves).
pub fn runtime() -> PathBuf {
    match std::env::var_os("RUNTIME") {
        Some(r) if !r.is_empty() => PathBuf::from(r),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_skiff")),
    }
}

/// True when testing skiff itself (not runc or crun). Used only to gate
/// assertions where skiff deliberately differs from runc 1.1.5.
pub fn is_skiff() -> bool {
    runtime()
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("skiff"))
}
