//! The parent ⇄ child protocol: one SOCK_SEQPACKET socketpair, one datagram
//! per message (`[tag: u8][payload]`), strictly alternating, so at any time
//! exactly one side speaks and the other is blocked in `recv`.
//! Runs in: the runtime (P), stage-1 (S) and init (I).
//!
//! ```text
//!  P (runtime)                       S (stage-1)                 I (init, pid 1)
//!  fork S ─────────────────────────▶ join cgroup, rlimits, setns
//!                                    [new userns] unshare(USER)
//!        ◀──────────────── MapIds ── (only with a new user namespace)
//!  write /proc/S/{uid,gid}_map
//!        ── IdsMapped ─────────────▶ setresuid(0)
//!                                    unshare(pid,mnt,uts,ipc,net,cgroup,time)
//!                                    fork I ──────────────────▶ (blocked in recv)
//!        ◀──────────── InitPid(n) ── _exit(0)
//!  waitpid(S); state.json, pid-file
//!        ── Proceed ───────────────────────────────────────────▶ mounts, /dev
//!        ◀─────────────────────────────────────────── RunHooks ── (only if hooks)
//!  prestart, createRuntime hooks
//!        ── HooksDone ─────────────────────────────────────────▶ createContainer,
//!                                                                 pivot, console,
//!                                                                 user, caps, …
//!                                                                 [seccomp: install]
//!        ◀──────────────────────────── SeccompFd + SCM_RIGHTS ── (only with NOTIFY rules)
//!  send fd + state to listenerPath
//!        ── SeccompFdDone ─────────────────────────────────────▶ close the listener
//!        ◀─────────────────────────────────────────────── Done ── wait on exec.fifo
//! ```
//! Without a user namespace, a namespace to join or a time namespace, there
//! is no S (`init::direct_clone`): P clones I straight into its namespaces
//! (and v2 cgroup), knows its pid from the clone, and I joins the v1 cgroups,
//! sets rlimits and unshares the cgroup namespace itself after `Proceed`.
//!
//! `exec` (`plan_exec.rs` plans, `launch::exec` and `init/attach.rs` run)
//! uses the same socket, with InitPid → SeccompFd → EOF:
//!
//! ```text
//!  P (runtime)                       S (exec stage-1)            E (the new process)
//!  plan: open init's namespaces
//!  (and root), compile policy
//!  fork S ─────────────────────────▶ seal fds, join cgroup,
//!                                    resctrl, rlimits, setns,
//!                                    [chroot]
//!                                    fork E ──────────────────▶ setsid, console, cwd,
//!        ◀──────────── InitPid(n) ── _exit(0)                   policy, …
//!  waitpid(S)                                                    [seccomp: install]
//!        ◀──────────────────────────── SeccompFd + SCM_RIGHTS ── (only with NOTIFY rules)
//!  send fd + state to listenerPath
//!        ── SeccompFdDone ─────────────────────────────────────▶ lsm, user, caps, nnp
//!        ◀──────────────────────────────────────────────── EOF ── execve (socket is CLOEXEC)
//!  exec-done: pid-file, wait or detach
//! ```
//! Without a user or time namespace to join there is no S
//! (`attach::direct_exec`): P joins the init's pid namespace for its
//! children, clones E (non-dumpable, into the v2 cgroup), returns to its own
//! pid namespace and knows E's pid from the clone; E does S's steps itself
//! (but the pid namespace), and there is no `InitPid`.
//!
//! With `--ignore-paused` on a frozen container, S does not join the
//! cgroup, and E sends `Done` just before execve instead of the EOF; P
//! moves it into the cgroup (it freezes there), answers `Proceed("")` and
//! does not wait for the EOF.
//!
//! `SeccompFd` is the one message that carries a file descriptor: the
//! seccomp notify listener, which only init can create (it belongs to its
//! filter). The runtime, not init, talks to the agent, so init never blocks
//! on an agent that may be waiting on a call the filter intercepts.
//! Any failure in S or I sends `Failed(msg)` and exits 1. EOF before `Done`
//! means the child died during setup. P then kills what it started and
//! removes what it made.
use anyhow::{Context, Result, bail};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    send, sendmsg, socketpair,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    MapIds,
    IdsMapped,
    InitPid(i32),
    /// Carries the OCI state JSON that init passes to its own hooks.
    Proceed(String),
    RunHooks,
    HooksDone,
    Done,
    Failed(String),
    /// Sent with the notify listener fd attached (SCM_RIGHTS).
    SeccompFd,
    SeccompFdDone,
}

impl Msg {
    pub fn encode(&self) -> Vec<u8> {
        let (tag, payload): (u8, Vec<u8>) = match self {
            Msg::MapIds => (1, vec![]),
            Msg::IdsMapped => (2, vec![]),
            Msg::InitPid(p) => (3, p.to_le_bytes().to_vec()),
            Msg::Proceed(s) => (4, s.as_bytes().to_vec()),
            Msg::RunHooks => (5, vec![]),
            Msg::HooksDone => (6, vec![]),
            Msg::Done => (7, vec![]),
            Msg::Failed(s) => (8, s.as_bytes().to_vec()),
            Msg::SeccompFd => (9, vec![]),
            Msg::SeccompFdDone => (10, vec![]),
        };
        let mut out = Vec::with_capacity(1 + payload.len());
        out.push(tag);
        out.extend_from_slice(&payload);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Msg> {
        let (&tag, rest) = b.split_first().context("sync: empty message")?;
        Ok(match tag {
            1 => Msg::MapIds,
            2 => Msg::IdsMapped,
            3 => Msg::InitPid(i32::from_le_bytes(
                rest.try_into().context("sync: bad InitPid payload")?,
            )),
            4 => Msg::Proceed(String::from_utf8_lossy(rest).into_owned()),
            5 => Msg::RunHooks,
            6 => Msg::HooksDone,
            7 => Msg::Done,
            8 => Msg::Failed(String::from_utf8_lossy(rest).into_owned()),
            9 => Msg::SeccompFd,
            10 => Msg::SeccompFdDone,
            t => bail!("sync: unknown message tag {t}"),
        })
    }
}

/// One end of the socketpair.
pub struct SyncSocket(pub OwnedFd);

/// The largest datagram: a longer message (the state JSON with large
/// annotations, say) goes as fragments `[FRAGMENT][up to MAX_MSG-1 bytes]`
/// and ends with a bare `[FRAGMENT]`; the receiver joins them and decodes
/// the whole. Short messages, the usual case, stay one datagram.
const MAX_MSG: usize = 8192;
/// The tag of a fragment (no message has tag 0).
const FRAGMENT: u8 = 0;

impl SyncSocket {
    pub fn pair() -> Result<(SyncSocket, SyncSocket)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None::<nix::sys::socket::SockProtocol>,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("socketpair")?;
        Ok((SyncSocket(a), SyncSocket(b)))
    }

    pub fn send(&self, m: &Msg) -> Result<()> {
        let b = m.encode();
        if b.len() <= MAX_MSG {
            return self.send_datagram(&b);
        }
        let mut frag = Vec::with_capacity(MAX_MSG);
        for chunk in b.chunks(MAX_MSG - 1) {
            frag.clear();
            frag.push(FRAGMENT);
            frag.extend_from_slice(chunk);
            self.send_datagram(&frag)?;
        }
        self.send_datagram(&[FRAGMENT])
    }

    fn send_datagram(&self, b: &[u8]) -> Result<()> {
        send(self.0.as_raw_fd(), b, MsgFlags::MSG_NOSIGNAL).context("sync: send")?;
        Ok(())
    }

    /// Sends `m` under a seccomp filter (init's last message): write(2),
    /// the call a profile that lets the program print anything allows, or
    /// send(2) or sendmsg(2) if the filter refuses it (EPERM, ENOSYS).
    pub fn send_plain(&self, m: &Msg) -> Result<()> {
        let mut b = m.encode();
        b.truncate(MAX_MSG);
        write_filtered(&self.0, &b).context("sync: write")?;
        Ok(())
    }

    /// Waits for a message-less `Proceed` under a seccomp filter (see
    /// `send_plain` and `read_filtered`).
    pub fn expect_go_plain(&self) -> Result<()> {
        let mut b = [0u8; 16];
        match read_filtered(&self.0, &mut b).context("sync: read")? {
            0 => bail!("sync: the runtime exited"),
            n => match Msg::decode(&b[..n])? {
                Msg::Proceed(s) if s.is_empty() => Ok(()),
                m => bail!("sync: expected Proceed, got {m:?}"),
            },
        }
    }

    /// Sends `m` with `fd` attached (SCM_RIGHTS).
    pub fn send_fd(&self, m: &Msg, fd: &OwnedFd) -> Result<()> {
        let b = m.encode();
        let fds = [fd.as_raw_fd()];
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(&b)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .context("sync: send fd")?;
        Ok(())
    }

    /// Ok(None) on EOF: the other side has exited. A passed fd is dropped.
    pub fn recv(&self) -> Result<Option<Msg>> {
        Ok(self.recv_fd()?.map(|(m, _)| m))
    }

    /// Like `recv`, also returning the fd a message carried, if any.
    pub fn recv_fd(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        let mut buf = [0u8; MAX_MSG];
        // The fragments of a long message, joined.
        let mut long: Option<Vec<u8>> = None;
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let r = recvmsg::<()>(
                self.0.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            );
            let r = match r {
                Err(nix::errno::Errno::EINTR) => continue,
                // The peer died with our last message unread (e.g. init
                // OOM-killed after `Proceed`): gone, as at EOF, so the
                // caller says why it died instead of "connection reset".
                Err(nix::errno::Errno::ECONNRESET) => return Ok(None),
                r => r.context("sync: recv")?,
            };
            let mut fd = None;
            for c in r.cmsgs().context("sync: recv")? {
                if let ControlMessageOwned::ScmRights(v) = c {
                    // SAFETY: SCM_RIGHTS installed these fds in our table; we own them now.
                    fd = v.first().map(|&f| unsafe { OwnedFd::from_raw_fd(f) });
                }
            }
            let n = r.bytes;
            if n == 0 {
                return Ok(None);
            }
            if r.flags.contains(MsgFlags::MSG_TRUNC) {
                bail!("sync: datagram longer than {MAX_MSG} bytes");
            }
            let got = &buf[..n];
            match (got, &mut long) {
                ([FRAGMENT], Some(whole)) => return Msg::decode(whole).map(|m| Some((m, fd))),
                ([FRAGMENT], None) => bail!("sync: end of a message that never began"),
                ([FRAGMENT, data @ ..], whole) => {
                    whole.get_or_insert_with(Vec::new).extend_from_slice(data);
                    continue;
                }
                (_, Some(_)) => bail!("sync: message interleaved with a fragmented one"),
                (_, None) => return Msg::decode(got).map(|m| Some((m, fd))),
            }
        }
    }

    /// Waits for one specific message; `Failed(m)` becomes an error carrying m.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Failed(e)) => bail!("{e}"),
            Some(m) => bail!("sync: expected {want:?}, got {m:?}"),
            None => bail!("sync: peer exited while waiting for {want:?}"),
        }
    }
}

/// A seccomp filter's "not allowed" (EPERM is the default errno, ENOSYS
/// runc's stub for calls newer than the profile): try the next call.
fn refused(e: nix::errno::Errno) -> bool {
    matches!(e, nix::errno::Errno::EPERM | nix::errno::Errno::ENOSYS)
}

/// One datagram of `b` with whichever of write, send and sendmsg the
/// seccomp filter allows. Retries EINTR.
pub fn write_filtered(fd: &OwnedFd, b: &[u8]) -> nix::Result<usize> {
    let mut r = Err(nix::errno::Errno::ENOSYS);
    for how in 0..3 {
        r = retry_eintr(|| match how {
            0 => nix::unistd::write(fd, b),
            1 => send(fd.as_raw_fd(), b, MsgFlags::MSG_NOSIGNAL),
            _ => sendmsg::<()>(
                fd.as_raw_fd(),
                &[IoSlice::new(b)],
                &[],
                MsgFlags::MSG_NOSIGNAL,
                None,
            ),
        });
        if !matches!(r, Err(e) if refused(e)) {
            break;
        }
    }
    r
}

/// read(2), or readv(2) (or recv for a socket) if the seccomp filter
/// refuses it. Retries EINTR.
pub fn read_filtered(fd: &OwnedFd, b: &mut [u8]) -> nix::Result<usize> {
    let mut r = Err(nix::errno::Errno::ENOSYS);
    for how in 0..3 {
        r = retry_eintr(|| match how {
            0 => nix::unistd::read(fd, b),
            1 => nix::sys::uio::readv(fd, &mut [IoSliceMut::new(b)]),
            _ => nix::sys::socket::recv(fd.as_raw_fd(), b, MsgFlags::empty()),
        });
        if !matches!(r, Err(e) if refused(e)) {
            break;
        }
    }
    r
}

fn retry_eintr(mut f: impl FnMut() -> nix::Result<usize>) -> nix::Result<usize> {
    loop {
        match f() {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for m in [
            Msg::MapIds,
            Msg::IdsMapped,
            Msg::InitPid(12345),
            Msg::Proceed("{}".into()),
            Msg::RunHooks,
            Msg::HooksDone,
            Msg::Done,
            Msg::Failed("mount /x: no such file".into()),
            Msg::SeccompFd,
            Msg::SeccompFdDone,
        ] {
            assert_eq!(Msg::decode(&m.encode()).unwrap(), m);
        }
        assert!(Msg::decode(&[]).is_err());
        assert!(Msg::decode(&[99]).is_err());
        assert!(Msg::decode(&[3, 1]).is_err());
    }

    #[test]
    fn socketpair_carries_messages_and_eof() {
        let (a, b) = SyncSocket::pair().unwrap();
        a.send(&Msg::InitPid(7)).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::InitPid(7)));
        a.send(&Msg::Failed("boom".into())).unwrap();
        assert_eq!(b.expect(Msg::Done).unwrap_err().to_string(), "boom");
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn messages_of_any_size_arrive_whole() {
        let (a, b) = SyncSocket::pair().unwrap();
        for len in [
            0,
            MAX_MSG - 2,
            MAX_MSG - 1,
            MAX_MSG,
            9 * 1024,
            3 * MAX_MSG,
            1 << 20,
        ] {
            let s: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            // The writer blocks once the socket buffer is full: write from a thread.
            let a2 = SyncSocket(a.0.try_clone().unwrap());
            let sent = Msg::Proceed(s.clone());
            let t = std::thread::spawn(move || a2.send(&sent).unwrap());
            assert_eq!(b.recv().unwrap(), Some(Msg::Proceed(s)), "length {len}");
            t.join().unwrap();
        }
        a.send(&Msg::Done).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::Done));
    }

    #[test]
    fn a_message_carries_an_fd() {
        let (a, b) = SyncSocket::pair().unwrap();
        let f = OwnedFd::from(std::fs::File::open("/proc/self/status").unwrap());
        a.send_fd(&Msg::SeccompFd, &f).unwrap();
        let (m, fd) = b.recv_fd().unwrap().unwrap();
        assert_eq!(m, Msg::SeccompFd);
        let fd = fd.unwrap();
        let got = std::fs::read_to_string(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        assert!(got.unwrap().contains("Name:"));
    }
}
