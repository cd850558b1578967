//! The container's terminal: a pty from the container's own devpts, the
//! slave bound onto /dev/console and made the controlling tty on stdio, the
//! master sent to `--console-socket` with SCM_RIGHTS (as runc does).
//! Runs in: init, after pivot_root, after setsid.
use anyhow::{Context, Result};
use nix::fcntl::{OFlag, open};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use nix::sys::stat::Mode;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

nix::ioctl_write_ptr_bad!(set_lock, libc::TIOCSPTLCK, libc::c_int);
nix::ioctl_read_bad!(get_ptn, libc::TIOCGPTN, libc::c_uint);
nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// Opens the pty pair from the container's /dev/ptmx. The slave is opened
/// through TIOCGPTPEER, never by path, so a hostile /dev/pts cannot swap it.
fn open_pty() -> Result<(OwnedFd, OwnedFd, String)> {
    let master = open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open /dev/ptmx")?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from a valid pointer.
    unsafe { set_lock(master.as_raw_fd(), &unlock) }.context("unlock pty")?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one uint to a valid pointer.
    unsafe { get_ptn(master.as_raw_fd(), &mut n) }.context("get pty number")?;
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd or -1.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("open pty peer");
    }
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    let slave = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok((master, slave, format!("/dev/pts/{n}")))
}

/// The slave belongs to the process's uid; its gid stays what devpts gave
/// it (the `gid=` mount option). runc's fixStdioPermissions does the same,
/// and likewise skips the error when the owner or uid is not mapped in this
/// user namespace (EINVAL, EPERM): the terminal is then only less usable.
fn give_to(slave: &OwnedFd, uid: u32) -> Result<()> {
    let st = nix::sys::stat::fstat(slave.as_fd()).context("fstat pty slave")?;
    if st.st_uid == uid {
        return Ok(());
    }
    match nix::unistd::fchown(slave.as_fd(), Some(nix::unistd::Uid::from_raw(uid)), None) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("process.user.uid: chown pty slave to {uid}")),
    }
}

/// `bind_console`: init binds the slave onto /dev/console; exec'd processes do not.
/// `uid` (process.user.uid) gets the slave, so a non-root user can use it.
pub fn setup(
    socket: &OwnedFd,
    size: Option<(u64, u64)>,
    bind_console: bool,
    uid: u32,
) -> Result<()> {
    let (master, slave, name) = open_pty()?;
    give_to(&slave, uid)?;
    if bind_console {
        crate::rootfs::mount_console(slave.as_fd())?;
    }
    if let Some((h, w)) = size {
        let ws = libc::winsize {
            ws_row: h as u16,
            ws_col: w as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a valid winsize struct.
        unsafe { set_winsize(master.as_raw_fd(), &ws) }.context("process.consoleSize")?;
    }
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name.as_bytes())],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .context("send pty master to --console-socket")?;
    drop(master);
    for target in 0..=2 {
        // SAFETY: dup2 onto 0-2 replaces our stdio, which nothing else in init holds as an OwnedFd.
        let fd = unsafe { nix::unistd::dup2_raw(&slave, target) }.context("dup pty onto stdio")?;
        // Stdio stays open: dropping the OwnedFd would close it again.
        let _ = fd.into_raw_fd();
    }
    // SAFETY: TIOCSCTTY with argument 0 on our stdin, after setsid made us a session leader.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(std::io::Error::last_os_error()).context("set controlling terminal");
    }
    Ok(())
}
