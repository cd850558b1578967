//! `linux.netDevices` (runtime-spec 1.3, "Network Devices"): each host
//! network device named by an entry's key is moved into the container's
//! network namespace, renamed to the entry's `name` if given, with its
//! permanent global-scope addresses (any family) carried over, and set up.
//! Nothing is done at delete: the spec forbids moving a device back; when
//! the namespace dies the kernel returns physical devices to the host and
//! destroys virtual ones.
//!
//! A hand-rolled minimal rtnetlink client (RTM_GETLINK, RTM_NEWLINK with
//! IFLA_NET_NS_FD/IFLA_IFNAME, RTM_GETADDR, RTM_NEWADDR): the crates that
//! do this are either tokio-based (rtnetlink) or model every attribute of
//! every family (netlink-packet-route), which costs start-up time and
//! binary size for four messages.
//! Runs in: the runtime process (`check`, `plan_check`, `move_all`) and
//! init (`loopback_up`).
use anyhow::{Context, Result, bail};
use nix::sched::CloneFlags;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

/// One device to move: the host's name and the name inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub host: String,
    pub name: String,
}

/// Pure: the moves of `linux.netDevices`, in a stable order, with the
/// names checked as the kernel's dev_valid_name would; the container
/// needs a network namespace of its own (new, or joined by path:
/// `has_net`, from `Namespaces::has_net`).
pub fn plan(
    devs: Option<&HashMap<String, oci_spec::runtime::LinuxNetDevice>>,
    has_net: bool,
) -> Result<Vec<Move>> {
    let Some(devs) = devs.filter(|d| !d.is_empty()) else {
        return Ok(Vec::new());
    };
    if !has_net {
        bail!(
            "linux.netDevices: the container has no network namespace of its own to move devices into"
        );
    }
    let mut moves = Vec::new();
    for (host, d) in devs {
        check_name(host, false).with_context(|| format!("linux.netDevices: {host:?}"))?;
        let name = d.name().clone().filter(|n| !n.is_empty());
        let name = name.unwrap_or_else(|| host.clone());
        check_name(&name, true).with_context(|| format!("linux.netDevices.{host}.name"))?;
        moves.push(Move {
            host: host.clone(),
            name,
        });
    }
    moves.sort_by(|a, b| a.host.cmp(&b.host));
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for m in &moves {
        if m.name.contains("%d") {
            continue;
        }
        if let Some(other) = seen.insert(&m.name, &m.host) {
            bail!(
                "linux.netDevices: {other:?} and {:?} would both be named {:?}",
                m.host,
                m.name
            );
        }
    }
    Ok(moves)
}

/// The kernel's dev_valid_name: 1 to 15 bytes, not "." or "..", no '/',
/// ':' or whitespace. A new name may be a template with one `%d`.
fn check_name(n: &str, template: bool) -> Result<()> {
    if n.is_empty() || n.len() >= libc::IFNAMSIZ {
        bail!("invalid network device name {n:?}: must be 1 to 15 bytes");
    }
    if n == "." || n == ".." || n.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        bail!("invalid network device name {n:?}");
    }
    if n.contains('%') && !(template && n.matches('%').count() == 1 && n.contains("%d")) {
        bail!("invalid network device name {n:?}: '%' only as one \"%d\" template");
    }
    Ok(())
}

/// Before any process exists: each device is on the host, and a joined
/// network namespace is not the host's own.
/// `joins` are the namespaces to join (`Namespaces::join`).
pub fn check(moves: &[Move], joins: &[(CloneFlags, PathBuf)]) -> Result<()> {
    if moves.is_empty() {
        return Ok(());
    }
    let ours = std::fs::metadata("/proc/self/ns/net").context("stat /proc/self/ns/net")?;
    for (f, path) in joins {
        if *f != CloneFlags::CLONE_NEWNET {
            continue;
        }
        let m = std::fs::metadata(path)
            .with_context(|| format!("linux.namespaces: network {}", path.display()))?;
        use std::os::unix::fs::MetadataExt;
        if (m.dev(), m.ino()) == (ours.dev(), ours.ino()) {
            bail!("linux.netDevices: the network namespace joined is the host's own");
        }
    }
    let sock = Netlink::open()?;
    for m in moves {
        if sock.link_index(&m.host)?.is_none() {
            bail!(
                "linux.netDevices: no network device {:?} on the host",
                m.host
            );
        }
    }
    Ok(())
}

/// Moves every device into the network namespace of `pid` (the init,
/// already in it), renamed, with its addresses, and sets it up.
/// A new network namespace starts with `lo` down; runc and crun bring it
/// up, and programs count on 127.0.0.1 working. Called by init in that
/// namespace. Through SIOCGIFFLAGS/SIOCSIFFLAGS on a datagram socket, not
/// netlink: the same dev_change_flags in the kernel without a netlink
/// socket, rtnl_newlink's attribute parsing and the ack (it is on every
/// container's start path).
pub fn loopback_up() -> Result<()> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("bring lo up: socket")?;
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    ifr.ifr_name[0] = b'l' as libc::c_char;
    ifr.ifr_name[1] = b'o' as libc::c_char;
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name from and writes the
    // flags into the ifreq, which outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut ifr) } < 0 {
        return Err(std::io::Error::last_os_error()).context("bring lo up: SIOCGIFFLAGS");
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the name and flags from the ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &ifr) } < 0 {
        return Err(std::io::Error::last_os_error()).context("bring lo up: SIOCSIFFLAGS");
    }
    Ok(())
}

pub fn move_all(moves: &[Move], pid: i32) -> Result<()> {
    if moves.is_empty() {
        return Ok(());
    }
    let target = nix::fcntl::open(
        format!("/proc/{pid}/ns/net").as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("linux.netDevices: open the container's network namespace")?;
    let host = Netlink::open()?;
    let inside = Netlink::open_in(&target)?;
    for m in moves {
        let what = || format!("linux.netDevices: {:?}", m.host);
        let index = host
            .link_index(&m.host)?
            .with_context(|| format!("{}: no such device on the host", what()))?;
        if !m.name.contains("%d") && inside.link_index(&m.name)?.is_some() {
            bail!(
                "{}: a device named {:?} already exists in the container's network namespace",
                what(),
                m.name
            );
        }
        let addrs = host.permanent_global_addrs(index).with_context(what)?;
        host.move_link(index, &target, &m.name)
            .with_context(|| format!("{}: move into the container as {:?}", what(), m.name))?;
        // The kernel picks the final name for a template, and maybe another index.
        let (index, name) = match inside.link_index(&m.name)? {
            Some(i) => (i, m.name.clone()),
            None => inside
                .link_by_template(&m.name)?
                .with_context(|| format!("{}: moved, but not found inside", what()))?,
        };
        for a in &addrs {
            inside
                .add_addr(index, a)
                .with_context(|| format!("{}: restore address on {name:?}", what()))?;
        }
        inside
            .set_up(index)
            .with_context(|| format!("{}: set {name:?} up", what()))?;
        crate::log::debug(&format!(
            "linux.netDevices: moved {:?} in as {name:?} with {} address(es)",
            m.host,
            addrs.len()
        ));
    }
    Ok(())
}

// rtnetlink (include/uapi/linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h).
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
const RT_SCOPE_UNIVERSE: u8 = 0;
const IFF_UP: u32 = 1;

/// An address to carry over: ifaddrmsg's fields and the attributes that
/// make it (not IFA_LABEL, which names the old device).
#[derive(Debug, Clone)]
struct Addr {
    family: u8,
    prefixlen: u8,
    flags: u32,
    scope: u8,
    attrs: Vec<(u16, Vec<u8>)>,
}

struct Netlink {
    fd: OwnedFd,
    seq: std::cell::Cell<u32>,
}

/// A message under construction: header, fixed part, attributes.
struct Msg(Vec<u8>);

impl Msg {
    fn new(ty: u16, flags: u16, fixed: &[u8]) -> Msg {
        let mut b = vec![0u8; NLMSG_HDRLEN];
        b[4..6].copy_from_slice(&ty.to_ne_bytes());
        b[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        b.extend_from_slice(fixed);
        Msg(b)
    }
    fn attr(mut self, ty: u16, data: &[u8]) -> Msg {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }
}

/// ifinfomsg: family, pad, type, index, flags, change.
fn ifinfo(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Pure: the (type, payload) attributes of `data`.
fn attrs(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & 0x3fff;
        if len < 4 || len > data.len() {
            break;
        }
        out.push((ty, &data[4..len]));
        data = &data[len.next_multiple_of(4).min(data.len())..];
    }
    out
}

impl Netlink {
    fn open() -> Result<Netlink> {
        use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .context("linux.netDevices: netlink socket")?;
        Ok(Netlink {
            fd,
            seq: std::cell::Cell::new(0),
        })
    }

    /// A socket in the network namespace `ns`: made there (a netlink
    /// socket stays in the namespace it was made in), then back to ours.
    fn open_in(ns: &OwnedFd) -> Result<Netlink> {
        let ours = nix::fcntl::open(
            "/proc/self/ns/net",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .context("open /proc/self/ns/net")?;
        nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
            .context("linux.netDevices: enter the container's network namespace")?;
        let sock = Netlink::open();
        nix::sched::setns(ours.as_fd(), CloneFlags::CLONE_NEWNET)
            .context("linux.netDevices: return to the host's network namespace")?;
        sock
    }

    /// Sends `m` and collects the replies' (type, payload) until the ack,
    /// the end of a dump, or an error (returned as the kernel's errno).
    fn request(&self, mut m: Msg) -> Result<Vec<(u16, Vec<u8>)>> {
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        let len = m.0.len() as u32;
        m.0[0..4].copy_from_slice(&len.to_ne_bytes());
        m.0[8..12].copy_from_slice(&seq.to_ne_bytes());
        let flags = u16::from_ne_bytes([m.0[6], m.0[7]]);
        if flags & NLM_F_DUMP != NLM_F_DUMP {
            // The ack ends the replies to anything but a dump.
            m.0[6..8].copy_from_slice(&(flags | NLM_F_ACK).to_ne_bytes());
        }
        nix::sys::socket::send(
            self.fd.as_raw_fd(),
            &m.0,
            nix::sys::socket::MsgFlags::empty(),
        )
        .context("netlink send")?;
        let mut out = Vec::new();
        // Room for any reply (iproute2 uses 32 KiB), but not zeroed: the
        // kernel writes what it sends, and only those pages get touched
        // (a zeroed 64 KiB was 16 page faults in init, for `lo`'s 36-byte ack).
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            // SAFETY: recv writes at most `capacity` bytes into the Vec's
            // allocation and returns how many (or -1, checked below).
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.capacity(),
                    0,
                )
            };
            if n < 0 {
                return Err(std::io::Error::last_os_error()).context("netlink recv");
            }
            // SAFETY: the kernel initialised the first n bytes (n <= capacity).
            unsafe { buf.set_len(n as usize) };
            let mut data = &buf[..];
            while data.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(data[0..4].try_into().unwrap()) as usize;
                let ty = u16::from_ne_bytes([data[4], data[5]]);
                let rseq = u32::from_ne_bytes(data[8..12].try_into().unwrap());
                if len < NLMSG_HDRLEN || len > data.len() {
                    bail!("netlink: truncated reply");
                }
                let payload = &data[NLMSG_HDRLEN..len];
                data = &data[len.next_multiple_of(4).min(data.len())..];
                if rseq != seq {
                    continue;
                }
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let errno = payload
                            .get(0..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
                            .unwrap_or(-libc::EIO);
                        if errno == 0 {
                            return Ok(out);
                        }
                        return Err(std::io::Error::from_raw_os_error(-errno).into());
                    }
                    _ => out.push((ty, payload.to_vec())),
                }
            }
        }
    }

    /// The index of the device named `name`, None when there is none.
    fn link_index(&self, name: &str) -> Result<Option<i32>> {
        let m = Msg::new(RTM_GETLINK, 0, &ifinfo(0, 0, 0)).attr(IFLA_IFNAME, &cstr(name));
        match self.request(m) {
            Ok(r) => Ok(r
                .iter()
                .find(|(ty, p)| *ty == RTM_NEWLINK && p.len() >= 16)
                .map(|(_, p)| i32::from_ne_bytes(p[4..8].try_into().unwrap()))),
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .and_then(|e| e.raw_os_error())
                    == Some(libc::ENODEV) =>
            {
                Ok(None)
            }
            Err(e) => Err(e).with_context(|| format!("netlink: look up device {name:?}")),
        }
    }

    /// For a `%d` template: the device whose name the kernel made from it
    /// (the highest index matching, the one just moved in).
    fn link_by_template(&self, template: &str) -> Result<Option<(i32, String)>> {
        let (pre, post) = template.split_once("%d").unwrap_or((template, ""));
        let dump = self.request(Msg::new(RTM_GETLINK, NLM_F_DUMP, &ifinfo(0, 0, 0)))?;
        let mut best: Option<(i32, String)> = None;
        for (ty, p) in &dump {
            if *ty != RTM_NEWLINK || p.len() < 16 {
                continue;
            }
            let index = i32::from_ne_bytes(p[4..8].try_into().unwrap());
            for (aty, v) in attrs(&p[16..]) {
                if aty != IFLA_IFNAME {
                    continue;
                }
                let n = String::from_utf8_lossy(v.split(|&b| b == 0).next().unwrap_or(&[]))
                    .into_owned();
                let mid = n.strip_prefix(pre).and_then(|r| r.strip_suffix(post));
                if mid.is_some_and(|m| !m.is_empty() && m.bytes().all(|c| c.is_ascii_digit()))
                    && best.as_ref().is_none_or(|(i, _)| index > *i)
                {
                    best = Some((index, n));
                }
            }
        }
        Ok(best)
    }

    /// RTM_NEWLINK on `index` with IFLA_NET_NS_FD and IFLA_IFNAME.
    fn move_link(&self, index: i32, ns: &OwnedFd, name: &str) -> Result<()> {
        let fd = ns.as_raw_fd() as u32;
        let m = Msg::new(RTM_NEWLINK, NLM_F_ACK, &ifinfo(index, 0, 0))
            .attr(IFLA_NET_NS_FD, &fd.to_ne_bytes())
            .attr(IFLA_IFNAME, &cstr(name));
        self.request(m).map(drop)
    }

    fn set_up(&self, index: i32) -> Result<()> {
        let m = Msg::new(RTM_NEWLINK, NLM_F_ACK, &ifinfo(index, IFF_UP, IFF_UP));
        self.request(m).map(drop)
    }

    /// The device's permanent (not DHCP- or SLAAC-made) addresses of
    /// global scope, the ones the spec says to carry over.
    fn permanent_global_addrs(&self, index: i32) -> Result<Vec<Addr>> {
        let dump = self
            .request(Msg::new(RTM_GETADDR, NLM_F_DUMP, &[0u8; 8]))
            .context("netlink: list addresses")?;
        let mut out = Vec::new();
        for (ty, p) in &dump {
            if *ty != RTM_NEWADDR || p.len() < 8 {
                continue;
            }
            let (family, prefixlen, flags8, scope) = (p[0], p[1], p[2], p[3]);
            let idx = u32::from_ne_bytes(p[4..8].try_into().unwrap()) as i32;
            let mut flags = flags8 as u32;
            let mut keep = Vec::new();
            for (aty, v) in attrs(&p[8..]) {
                match aty {
                    IFA_FLAGS if v.len() >= 4 => {
                        flags = u32::from_ne_bytes(v[..4].try_into().unwrap())
                    }
                    IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST => keep.push((aty, v.to_vec())),
                    _ => {}
                }
            }
            if idx == index && flags & IFA_F_PERMANENT != 0 && scope == RT_SCOPE_UNIVERSE {
                out.push(Addr {
                    family,
                    prefixlen,
                    flags,
                    scope,
                    attrs: keep,
                });
            }
        }
        Ok(out)
    }

    fn add_addr(&self, index: i32, a: &Addr) -> Result<()> {
        let mut fixed = [0u8; 8];
        fixed[0] = a.family;
        fixed[1] = a.prefixlen;
        fixed[2] = (a.flags & 0xff) as u8;
        fixed[3] = a.scope;
        fixed[4..8].copy_from_slice(&(index as u32).to_ne_bytes());
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &fixed);
        for (ty, v) in &a.attrs {
            m = m.attr(*ty, v);
        }
        m = m.attr(IFA_FLAGS, &a.flags.to_ne_bytes());
        self.request(m).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(v: serde_json::Value) -> bool {
        let l: oci_spec::runtime::Linux = serde_json::from_value(v).unwrap();
        crate::spec::namespaces::plan(&l).unwrap().has_net()
    }

    fn devs(v: serde_json::Value) -> HashMap<String, oci_spec::runtime::LinuxNetDevice> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn plans_moves_and_checks_names() {
        let net = ns(serde_json::json!({"namespaces": [{"type": "network"}]}));
        let d = devs(serde_json::json!({"b0": {}, "a0": {"name": "eth%d"}}));
        let m = plan(Some(&d), net).unwrap();
        assert_eq!(
            m,
            [
                Move {
                    host: "a0".into(),
                    name: "eth%d".into()
                },
                Move {
                    host: "b0".into(),
                    name: "b0".into()
                },
            ]
        );
        let host = ns(serde_json::json!({"namespaces": [{"type": "mount"}]}));
        let e = plan(Some(&d), host).unwrap_err().to_string();
        assert!(e.starts_with("linux.netDevices: "), "{e}");
        for bad in [
            serde_json::json!({"a/b": {}}),
            serde_json::json!({"0123456789abcdef": {}}),
            serde_json::json!({"a0": {"name": "x y"}}),
            serde_json::json!({"a0": {"name": "e%s"}}),
            serde_json::json!({"a0": {"name": "e"}, "b0": {}, "c0": {"name": "e"}}),
            serde_json::json!({"a0": {}, "b0": {"name": "a0"}}),
        ] {
            let e = format!("{:#}", plan(Some(&devs(bad.clone())), net).unwrap_err());
            assert!(e.starts_with("linux.netDevices"), "{bad}: {e}");
        }
        assert!(plan(None, host).unwrap().is_empty());
    }

    #[test]
    fn attributes_parse_and_pad() {
        let m = Msg::new(RTM_GETLINK, 0, &[])
            .attr(IFLA_IFNAME, b"lo\0")
            .attr(7, &[1, 2, 3, 4]);
        let a = attrs(&m.0[NLMSG_HDRLEN..]);
        assert_eq!(a, [(IFLA_IFNAME, &b"lo\0"[..]), (7, &[1u8, 2, 3, 4][..])]);
    }
}
