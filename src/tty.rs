//! Foreground `run`/`exec` with `terminal: true` and no --console-socket:
//! the runtime makes its own console socket, receives the pty master, puts
//! the caller's terminal in raw mode and copies bytes both ways until the
//! process exits, passing on window-size changes and signals (runc does
//! the same).
//! Runs in: the runtime process.
use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::Pid;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// The console socket the child sends its pty master to: a connection to
/// `--console-socket`, or, for a terminal without one (callers allow that
/// only in the foreground), a socketpair whose other end (returned second)
/// the runtime keeps to receive the master and proxy it.
pub fn console_socket(
    path: Option<&std::path::Path>,
    terminal: bool,
) -> Result<(Option<OwnedFd>, Option<UnixStream>)> {
    match path {
        Some(p) => {
            let s = UnixStream::connect(p)
                .with_context(|| format!("connect to --console-socket {}", p.display()))?;
            Ok((Some(OwnedFd::from(s)), None))
        }
        None if terminal => {
            let (ours, theirs) = UnixStream::pair().context("console socketpair")?;
            Ok((Some(OwnedFd::from(theirs)), Some(ours)))
        }
        None => Ok((None, None)),
    }
}

/// Receives the pty master that init sent with SCM_RIGHTS.
pub fn recv_master(sock: &UnixStream) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receive pty master")?;
    for c in msg.cmsgs().context("receive pty master")? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel just installed this fd for us.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    anyhow::bail!("console socket: no pty master received")
}

/// Restores the caller's terminal settings when dropped.
struct RawMode(Option<Termios>);

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

fn copy_winsize(master: BorrowedFd) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize; TIOCSWINSZ reads one.
    unsafe {
        if get_winsize(0, &mut ws).is_ok() {
            let _ = set_winsize(master.as_raw_fd(), &ws);
        }
    }
}

/// Writes all of `buf` to `fd`; false if the other side is gone.
fn write_all(fd: BorrowedFd, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Copies stdin → master and master → stdout until `init` exits; `set`
/// (already blocked) arrives through a signalfd. Returns the exit code.
pub fn proxy(master: OwnedFd, init: Pid, set: &SigSet) -> Result<i32> {
    let _raw = RawMode::enter();
    copy_winsize(master.as_fd());
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC).context("signalfd")?;
    let mut stdin_open = true;
    let mut master_open = true;
    let mut buf = [0u8; 8192];
    loop {
        if let Some(code) = crate::reap::reap(init)? {
            drain(master.as_fd(), &mut buf);
            return Ok(code);
        }
        let mut fds = [
            libc::pollfd {
                fd: sfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if master_open { master.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if stdin_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: three valid pollfds for the duration of the call.
        if unsafe { libc::poll(fds.as_mut_ptr(), 3, -1) } < 0 {
            continue;
        }
        if fds[0].revents != 0
            && let Ok(Some(si)) = sfd.read_signal()
        {
            match Signal::try_from(si.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {}
                Ok(Signal::SIGWINCH) => copy_winsize(master.as_fd()),
                Ok(sig) => {
                    let _ = nix::sys::signal::kill(init, sig);
                }
                Err(_) => {}
            }
        }
        if fds[1].revents != 0 {
            match nix::unistd::read(&master, &mut buf) {
                Ok(n) if n > 0 => {
                    write_all(std::io::stdout().as_fd(), &buf[..n]);
                }
                // EIO: every slave fd is closed; wait for SIGCHLD only.
                _ => master_open = false,
            }
        }
        if fds[2].revents != 0 {
            match nix::unistd::read(std::io::stdin(), &mut buf) {
                Ok(n) if n > 0 => stdin_open = write_all(master.as_fd(), &buf[..n]),
                _ => stdin_open = false,
            }
        }
    }
}

/// After exit, copies what the process wrote but we have not read yet.
fn drain(master: BorrowedFd, buf: &mut [u8]) {
    let _ = nix::fcntl::fcntl(
        master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while let Ok(n) = nix::unistd::read(master, buf) {
        if n == 0 || !write_all(std::io::stdout().as_fd(), &buf[..n]) {
            break;
        }
    }
}
