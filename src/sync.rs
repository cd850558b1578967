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
//!        ◀─────────────────────────────────────────────── Done ── wait on exec.fifo
//! ```
//! Any failure in S or I sends `Failed(msg)` and exits 1. EOF before `Done`
//! means the child died during setup. P then kills what it started and
//! removes what it made.
use anyhow::{Context, Result, bail};
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, send, socketpair};
use std::os::fd::{AsRawFd, OwnedFd};

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
            t => bail!("sync: unknown message tag {t}"),
        })
    }
}

/// One end of the socketpair.
pub struct SyncSocket(pub OwnedFd);

/// Failure messages are capped so one datagram always carries them.
const MAX_MSG: usize = 8192;

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
        let mut b = m.encode();
        b.truncate(MAX_MSG);
        send(self.0.as_raw_fd(), &b, MsgFlags::MSG_NOSIGNAL).context("sync: send")?;
        Ok(())
    }

    /// Ok(None) on EOF: the other side has exited.
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = [0u8; MAX_MSG];
        loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => return Msg::decode(&buf[..n]).map(Some),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("sync: recv"),
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
}
