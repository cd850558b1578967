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
//! std still works without its start-up (`std::process::exit` flushes
//! stdout), but for the arguments: `args_os` below, on glibc and musl alike.
use std::ffi::{CStr, OsStr, OsString, c_char, c_int};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicIsize, AtomicPtr, Ordering};

// SAFETY: `main` is the symbol glibc's start-up calls; nothing else in the
// program defines it (the crate is `#![no_main]`).
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    ARGV.store(argv.cast_mut(), Ordering::Relaxed);
    ARGC.store(argc as isize, Ordering::Relaxed);
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

/// argv and argc as the C library passed them to `main`, for `args_os`.
static ARGV: AtomicPtr<*const c_char> = AtomicPtr::new(std::ptr::null_mut());
static ARGC: AtomicIsize = AtomicIsize::new(0);

/// The process's arguments. Not `std::env::args_os`: with our own `main`,
/// std learns them only on glibc (which also passes argc and argv to
/// `.init_array` functions); on musl it would see none.
pub fn args_os() -> impl Iterator<Item = OsString> {
    let argv = ARGV.load(Ordering::Relaxed);
    let argc = if argv.is_null() {
        0
    } else {
        ARGC.load(Ordering::Relaxed).max(0) as usize
    };
    (0..argc).map(move |i| {
        // SAFETY: the C library's argv holds argc valid C strings, which
        // live (unchanged by us) as long as the process.
        let c = unsafe { CStr::from_ptr(*argv.add(i)) };
        OsStr::from_bytes(c.to_bytes()).to_os_string()
    })
}
