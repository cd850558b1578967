//! `skiff events`: resource statistics every --interval, and an "oom"
//! event as soon as the kernel OOM-kills something in the container, as
//! runc's JSON lines. Ends when the container's init exits.
//! Runs in: the runtime process.
use crate::Globals;
use crate::cgroup::{Cgroup, Version};
use crate::cli::{Cmd, ID, Opt, string};
use crate::container::{Container, Status};
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

#[derive(Debug)]
pub struct Args {
    pub stats: bool,
    pub interval: Duration,
    pub id: String,
}

pub static CLI: Cmd<Args> = Cmd {
    init: || Args {
        stats: false,
        interval: Duration::from_secs(5),
        id: String::new(),
    },
    opts: &[
        Opt::flag(
            "stats",
            None,
            "Display the container's stats then exit",
            |a| a.stats = true,
        ),
        Opt::value(
            "interval",
            None,
            "INTERVAL",
            "Set the stats collection interval [default: 5s]",
            |a, v| parse_duration(&string(v)?).map(|d| a.interval = d),
        ),
    ],
    args: &[ID],
    set_args: |a, mut v| a.id = v.swap_remove(0),
};

/// Go's time.ParseDuration for the forms people type: "5s", "100ms", "1m30s".
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let v: f64 = rest[..n]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("invalid duration {s:?}: unknown unit")),
        };
        total += v * scale;
        rest = &rest[u..];
    }
    Ok(Duration::from_secs_f64(total))
}

fn emit(kind: &str, id: &str, data: Option<serde_json::Value>) {
    let mut v = json!({"type": kind, "id": id});
    if let Some(d) = data {
        v["data"] = d;
    }
    println!("{v}");
}

/// An fd that becomes readable when the memory controller reports an OOM:
/// v1 an eventfd registered through cgroup.event_control, v2 an inotify
/// watch on memory.events.
fn oom_fd(cg: &Cgroup) -> Result<OwnedFd> {
    let dir = cg.dir_for("memory").context("no memory cgroup")?;
    match cg.version {
        Version::V1 => {
            // SAFETY: eventfd(0, EFD_CLOEXEC) returns a new fd or -1.
            let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
            if efd < 0 {
                bail!("eventfd: {}", std::io::Error::last_os_error());
            }
            // SAFETY: the kernel just gave us this fd.
            let efd = unsafe { OwnedFd::from_raw_fd(efd) };
            let ctl = std::fs::File::open(dir.join("memory.oom_control"))
                .context("open memory.oom_control")?;
            let line = format!("{} {}", efd.as_raw_fd(), ctl.as_raw_fd());
            std::fs::write(dir.join("cgroup.event_control"), line)
                .context("cgroup.event_control")?;
            Ok(efd)
        }
        Version::V2 => {
            let ino = nix::sys::inotify::Inotify::init(nix::sys::inotify::InitFlags::IN_CLOEXEC)?;
            ino.add_watch(
                &dir.join("memory.events"),
                nix::sys::inotify::AddWatchFlags::IN_MODIFY,
            )?;
            Ok(OwnedFd::from(ino))
        }
    }
}

#[inline(never)]
pub fn run(args: Args, g: &Globals) -> Result<()> {
    // Only a copy of the state: a long-running reader must not hold the lock.
    let (state, status) = {
        let c = Container::load(&g.root, &args.id)?;
        let s = c.status();
        (c.state.clone(), s)
    };
    if status == Status::Stopped {
        bail!("container {} is not running", args.id);
    }
    let cg = &state.cgroup;
    if args.stats {
        emit("stats", &args.id, Some(cg.stats()));
        return Ok(());
    }
    let oom = oom_fd(cg)?;
    let init = crate::pidfd::open(state.pid.context("no init pid")?)?;
    let mut kills = cg.oom_kills();
    loop {
        let mut fds = [
            libc::pollfd {
                fd: oom.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: init.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ms = args.interval.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: two valid pollfds for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n == 0 {
            emit("stats", &args.id, Some(cg.stats()));
            continue;
        }
        let mut v1_oom = false;
        if fds[0].revents != 0 {
            let mut buf = [0u8; 4096];
            let _ = nix::unistd::read(&oom, &mut buf);
            // v1's eventfd fires for an OOM condition, before the kill
            // counts in memory.oom_control: it is the event itself (runc's
            // reading), unless the cgroup is gone (then it fires too).
            v1_oom = cg.version == Version::V1
                && cg
                    .dir_for("memory")
                    .is_some_and(|d| d.join("cgroup.event_control").exists());
        }
        // v2's inotify wake-ups are only hints (any memory.events change):
        // there the kernel's oom_kill count decides.
        let now = cg.oom_kills();
        if v1_oom || now > kills {
            emit("oom", &args.id, None);
        }
        // A kill the v1 event already reported is not reported again when
        // its count lands.
        kills = match v1_oom {
            true => now.max(kills + 1),
            false => now.max(kills),
        };
        if fds[1].revents != 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("").is_err());
    }
}
