//! SIGPIPE: ignored by the runtime at start-up (src/entry.rs), put back
//! as the caller had it by the children just before execve (init/).
//! Runs in: the runtime process, init and exec's process.

/// Whether SIGPIPE was ignored when the runtime started (see `ignore_sigpipe`).
static SIGPIPE_WAS_IGNORED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The runtime ignores SIGPIPE, so that a hook or a reader that goes away
/// gives us EPIPE rather than killing us half-way through create. An
/// ignored signal survives execve, so init and exec's process put back
/// what the caller gave us (`restore_sigpipe`) before their execve.
/// Called once, first thing (src/entry.rs).
#[cfg_attr(test, allow(dead_code))] // called by src/entry.rs, not built for tests
pub fn ignore_sigpipe() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: installs SIG_IGN, no handler code; single-threaded at start-up.
    if let Ok(old) = unsafe { sigaction(Signal::SIGPIPE, &ign) } {
        let was = matches!(old.handler(), SigHandler::SigIgn);
        SIGPIPE_WAS_IGNORED.store(was, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Puts SIGPIPE back as the caller of the runtime had it.
pub fn restore_sigpipe() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    if SIGPIPE_WAS_IGNORED.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installs SIG_DFL, no handler code.
    _ = unsafe { sigaction(Signal::SIGPIPE, &dfl) };
}
