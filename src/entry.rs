//! The process entry point: C `main`, called by glibc, instead of std's.
//! Runs in: the runtime process, first.
//!
//! std's runtime start-up does three things skiff does not want:
//! - it sets SIGPIPE to SIG_IGN, and an ignored signal survives execve: every
//!   container process would start with SIGPIPE ignored (runc's do not). We
//!   ignore it too, but put it back before the container's execve
//!   (`sigpipe::ignore_sigpipe`);
//! - it reads /proc/self/maps through pthread_getattr_np (sscanf and all) to
//!   place a stack-overflow guard: syscalls and executed code (pages of
//!   RSS, README.md, Benchmark) at every start, for a message on stack overflow;
//! - it makes sure fds 0-2 are open, which we do keep, below.
//!
//! std still works without its start-up: on glibc, `std::env::args` comes
//! from an `.init_array` hook, and `std::process::exit` flushes stdout.
use std::ffi::{c_char, c_int};

// SAFETY: `main` is the symbol glibc's start-up calls; nothing else in the
// program defines it (the crate is `#![no_main]`).
#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    open_std_fds();
    crate::sigpipe::ignore_sigpipe();
    crate::main();
    std::process::exit(0)
}

/// If the caller closed any of fds 0-2, points it at /dev/null: otherwise
/// the next file we open would take its place and reach the container as
/// its stdin, stdout or stderr.
fn open_std_fds() {
    use nix::fcntl::{OFlag, open};
    use std::os::fd::IntoRawFd;
    // One poll for the three, as std does: POLLNVAL marks a closed fd.
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll reads and writes the three pollfds of `fds`; timeout 0.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } < 0 {
        std::process::abort();
    }
    let closed = fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0);
    for _ in closed {
        // The lowest free fd is the closed one itself (lower ones are open
        // or were just reopened): keep it open for good.
        match open("/dev/null", OFlag::O_RDWR, nix::sys::stat::Mode::empty()) {
            Ok(null) => _ = null.into_raw_fd(),
            Err(_) => std::process::abort(),
        }
    }
}
