//! `skiff checkpoint`: dump a running container to disk with CRIU, flag for
//! flag runc's. Without --leave-running (or --pre-dump) the container is
//! then gone, as runc leaves it (its state is destroyed, poststop hooks
//! run), so that `restore` can bring it back under the same id.
//! Runs in: the runtime process.
use crate::Globals;
use crate::cli::{Cmd, ID, Opt, number, path, string};
use crate::container::{Container, Status};
use crate::criu::rpc::{CriuOpts, CriuPageServerInfo, CriuReq, CriuReqType};
use crate::criu::{Notify, Swrk, describe};
use anyhow::{Context, Result, bail};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The image dir of CRIU's files, and its log, kept with the container.
pub const WORK_DIR: &str = "criu.work";

/// What `checkpoint` and `restore` share.
#[derive(Debug, Default)]
pub struct Common {
    pub image_path: Option<PathBuf>,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<String>,
    pub empty_ns: Vec<String>,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
}

/// One of the options `checkpoint` and `restore` share (both keep
/// `Common` in `.c`), by field name: one text for both tables, each
/// table keeping its own (runc's) order.
macro_rules! criu_opt {
    (tcp_established) => {
        $crate::cli::Opt::flag("tcp-established", None, "Allow open tcp connections", |a| {
            a.c.tcp_established = true
        })
    };
    (ext_unix_sk) => {
        $crate::cli::Opt::flag("ext-unix-sk", None, "Allow external unix sockets", |a| {
            a.c.ext_unix_sk = true
        })
    };
    (shell_job) => {
        $crate::cli::Opt::flag("shell-job", None, "Allow shell jobs", |a| {
            a.c.shell_job = true
        })
    };
    (file_locks) => {
        $crate::cli::Opt::flag("file-locks", None, "Handle file locks, for safety", |a| {
            a.c.file_locks = true
        })
    };
    (lazy_pages) => {
        $crate::cli::Opt::flag(
            "lazy-pages",
            None,
            "Use userfaultfd to lazily restore memory pages",
            |a| a.c.lazy_pages = true,
        )
    };
    (manage_cgroups_mode) => {
        $crate::cli::Opt::value(
            "manage-cgroups-mode",
            None,
            "MODE",
            "Cgroups mode: soft|full|strict|ignore (default: soft)",
            |a, v| $crate::cli::string(v).map(|s| a.c.manage_cgroups_mode = Some(s)),
        )
    };
    (empty_ns) => {
        $crate::cli::Opt::many(
            "empty-ns",
            None,
            "NS",
            "Create a namespace, but don't restore its properties (only \"network\")",
            |a, v| $crate::cli::string(v).map(|s| a.c.empty_ns.push(s)),
        )
    };
    (auto_dedup) => {
        $crate::cli::Opt::flag(
            "auto-dedup",
            None,
            "Enable auto deduplication of memory images",
            |a| a.c.auto_dedup = true,
        )
    };
}
pub(crate) use criu_opt;

#[derive(Debug, Default)]
pub struct Args {
    pub c: Common,
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub status_fd: Option<i32>,
    pub page_server: Option<String>,
    pub pre_dump: bool,
    pub id: String,
}

pub static CLI: Cmd<Args> = Cmd {
    init: Args::default,
    opts: &[
        Opt::value(
            "image-path",
            None,
            "DIR",
            "Path for saving criu image files [default: ./checkpoint]",
            |a, v| path(v).map(|p| a.c.image_path = Some(p)),
        ),
        Opt::value(
            "work-path",
            None,
            "DIR",
            "Path for saving work files and logs [default: criu.work in the container's state directory]",
            |a, v| path(v).map(|p| a.c.work_path = Some(p)),
        ),
        Opt::value(
            "parent-path",
            None,
            "DIR",
            "Path for previous criu image files in pre-dump (relative to --image-path)",
            |a, v| path(v).map(|p| a.parent_path = Some(p)),
        ),
        Opt::flag(
            "leave-running",
            None,
            "Leave the process running after checkpointing",
            |a| a.leave_running = true,
        ),
        criu_opt!(tcp_established),
        criu_opt!(ext_unix_sk),
        criu_opt!(shell_job),
        criu_opt!(lazy_pages),
        Opt::value(
            "status-fd",
            None,
            "FD",
            "Criu writes \\0 to this FD once lazy-pages is ready",
            |a, v| number(v).map(|n| a.status_fd = Some(n)),
        ),
        Opt::value(
            "page-server",
            None,
            "ADDRESS:PORT",
            "ADDRESS:PORT of the page server",
            |a, v| string(v).map(|s| a.page_server = Some(s)),
        ),
        criu_opt!(file_locks),
        Opt::flag(
            "pre-dump",
            None,
            "Dump container's memory information only, leave the container running after this",
            |a| a.pre_dump = true,
        ),
        criu_opt!(manage_cgroups_mode),
        criu_opt!(empty_ns),
        criu_opt!(auto_dedup),
    ],
    args: &[ID],
    set_args: |a, mut v| a.id = v.swap_remove(0),
};

/// A directory made by this command, removed again if it fails.
struct Made(Option<PathBuf>);

impl Drop for Made {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

#[inline(never)]
pub fn run(args: Args, g: &Globals) -> Result<()> {
    let c = Container::load(&g.root, &args.id)?;
    match c.status() {
        Status::Running | Status::Paused => {}
        s => bail!("Container cannot be checkpointed in {} state", s.as_str()),
    }
    let page_server = args.page_server.as_deref().map(page_server).transpose()?;
    let mode = (args.c.manage_cgroups_mode.as_deref())
        .map(describe::cg_mode)
        .transpose()?;
    let empty_ns = describe::empty_ns_mask(&args.c.empty_ns)?;
    let status_fd = status_fd(args.status_fd, args.c.lazy_pages)?;
    let spec = crate::spec::load(&c.state.bundle)
        .context("checkpoint reads the container's config.json from its bundle")?;
    let plan = crate::spec::plan(&args.id, &c.state.bundle, spec, false, false, 0)?;
    let v = crate::criu::version(&g.criu)?;
    crate::criu::require(
        &v,
        describe::min_version(&plan),
        "checkpoint of this container",
    )?;
    let pid = c.state.pid.context("container has no init pid")?;
    let (images, made) = image_dir(args.c.image_path.as_deref(), args.parent_path.as_deref())?;
    let work = match &args.c.work_path {
        Some(w) => w.clone(),
        None => c.dir.join(WORK_DIR),
    };
    let work_fd = open_dir(&work, true)?;
    let images_fd = open_dir(&images, false)?;
    let log = work.join("dump.log");
    let stdio = if args.pre_dump {
        Vec::new()
    } else {
        external_stdio(pid)?
    };
    let mut external = describe::dump_externals(&plan)?;
    for (_, key) in &stdio {
        if !external.contains(key) {
            external.push(key.clone());
        }
    }
    let opts = CriuOpts {
        images_dir_fd: images_fd.as_raw_fd(),
        work_dir_fd: Some(work_fd.as_raw_fd()),
        log_level: Some(4),
        log_file: Some("dump.log".into()),
        root: Some(plan.rootfs.to_string_lossy().into_owned()),
        manage_cgroups: Some(true),
        manage_cgroups_mode: mode.map(|m| m as i32),
        notify_scripts: Some(true),
        pid: Some(pid),
        shell_job: Some(args.c.shell_job),
        leave_running: Some(args.leave_running),
        tcp_established: Some(args.c.tcp_established),
        ext_unix_sk: Some(args.c.ext_unix_sk),
        file_locks: Some(args.c.file_locks),
        empty_ns: Some(empty_ns),
        orphan_pts_master: Some(true),
        auto_dedup: Some(args.c.auto_dedup),
        lazy_pages: Some(args.c.lazy_pages),
        external,
        freeze_cgroup: describe::freeze_dir(&c.state.cgroup)
            .map(|d| d.to_string_lossy().into_owned()),
        ps: page_server,
        parent_img: (args.parent_path.as_ref()).map(|p| p.to_string_lossy().into_owned()),
        track_mem: args.parent_path.as_ref().map(|_| true),
        ext_mnt: if args.pre_dump {
            Vec::new()
        } else {
            describe::dump_mounts(&plan, pid)
        },
        ..Default::default()
    };
    if !args.pre_dump {
        write_descriptors(&images, pid)?;
        let path = images.join(EXTERNAL_STDIO);
        std::fs::write(&path, serde_json::to_vec(&stdio)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    let kind = if args.pre_dump {
        CriuReqType::PreDump
    } else {
        CriuReqType::Dump
    };
    let req = CriuReq {
        r#type: kind as i32,
        opts: Some(opts),
        ..Default::default()
    };
    let was_frozen = c.state.cgroup.is_frozen();
    let dumped = dump(&g.criu, &req, &log, status_fd, args.pre_dump);
    if let Err(e) = dumped {
        // CRIU killed midway leaves the freezer frozen: the container must
        // be left as it was.
        if !was_frozen && c.state.cgroup.is_frozen() {
            let _ = c.state.cgroup.freeze(false);
        }
        return Err(e);
    }
    drop(made.disarm());
    if !(args.leave_running || args.pre_dump) {
        // runc destroys the container (poststop hooks, cgroup, state).
        super::delete::delete(c, true)?;
    }
    Ok(())
}

/// Runs the dump (or pre-dump) to its end.
fn dump(
    criu: &Path,
    req: &CriuReq,
    log: &Path,
    status_fd: Option<OwnedFd>,
    pre_dump: bool,
) -> Result<()> {
    let mut status_fd = status_fd;
    let mut w = Swrk::spawn(criu, &[], false)?;
    let mut on_notify = |n: Notify| -> Result<()> {
        if n.script == "status-ready"
            && let Some(fd) = status_fd.take()
        {
            // Lazy pages: tell whoever waits that the page server is up.
            if let Err(e) = nix::unistd::write(&fd, &[0u8]) {
                crate::log::warn(&format!("--status-fd: write: {e}"));
            }
        }
        Ok(())
    };
    w.call(req, &mut on_notify, Some(log))?;
    w.finish(pre_dump)
}

impl Made {
    /// Keeps the directory: the command succeeded.
    fn disarm(mut self) -> Option<PathBuf> {
        self.0.take()
    }
}

/// `--image-path` (default ./checkpoint, as runc), made if missing, and
/// `--parent-path` checked as runc checks it (relative, a directory).
fn image_dir(image: Option<&Path>, parent: Option<&Path>) -> Result<(PathBuf, Made)> {
    let dir = match image {
        Some(p) => std::path::absolute(p)?,
        None => std::env::current_dir()?.join("checkpoint"),
    };
    let made = if dir.exists() {
        Made(None)
    } else {
        std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        Made(Some(dir.clone()))
    };
    if let Some(p) = parent {
        if p.is_absolute() {
            bail!("--parent-path must be relative");
        }
        let real = dir.join(p);
        if !real.is_dir() {
            bail!(
                "invalid --parent-path: {} is not a directory",
                real.display()
            );
        }
    }
    Ok((dir, made))
}

/// Opens a directory for CRIU (it reopens it through /proc/<our pid>/fd).
pub fn open_dir(dir: &Path, create: bool) -> Result<OwnedFd> {
    if create {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(e).with_context(|| format!("mkdir {}", dir.display()));
            }
            _ => {}
        }
    }
    let f = std::fs::File::open(dir).with_context(|| format!("open {}", dir.display()))?;
    Ok(OwnedFd::from(f))
}

/// runc's descriptors.json: where init's stdio pointed at dump time
/// (`pipe:[N]`, a path, ...), so that a restore can hand CRIU the new
/// pipes in their place.
fn write_descriptors(images: &Path, pid: i32) -> Result<()> {
    let fds: Vec<String> = (0..3)
        .map(|i| {
            std::fs::read_link(format!("/proc/{pid}/fd/{i}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let path = images.join(DESCRIPTORS);
    std::fs::write(&path, serde_json::to_vec(&fds)?)
        .with_context(|| format!("write {}", path.display()))
}

pub const DESCRIPTORS: &str = "descriptors.json";

/// skiff's addition to runc's descriptors.json: init's stdio fds that are
/// files outside the container's mounts, with their CRIU external keys.
pub const EXTERNAL_STDIO: &str = "skiff-stdio.json";

/// Init's stdio that CRIU cannot reach from the container's mounts: a
/// file or device its caller opened on the host (the /dev/null or log
/// file of `run -d </dev/null 2>log`; runc reopens a host /dev/null from
/// the container's /dev at create, skiff leaves stdio as given). They are
/// dumped as external files ("file[MNT_ID:INODE]") and handed back at
/// restore as the restorer's own stdio, as pipes are. Pipes and sockets
/// are left to CRIU (pipes: descriptors.json).
fn external_stdio(pid: i32) -> Result<Vec<(i32, String)>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .with_context(|| format!("read /proc/{pid}/mountinfo"))?;
    let inside: Vec<&str> = (mountinfo.lines())
        .filter_map(|l| l.split(' ').next())
        .collect();
    let mut out = Vec::new();
    for fd in 0..3 {
        let Ok(md) = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")) else {
            continue;
        };
        let t = md.file_type();
        if t.is_fifo() || t.is_socket() {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
        let Some(mnt) = fdinfo_mnt_id(&info) else {
            continue;
        };
        if !inside.contains(&mnt.to_string().as_str()) {
            out.push((fd, format!("file[{mnt:x}:{:x}]", md.ino())));
        }
    }
    Ok(out)
}

/// The `mnt_id:` field of a /proc/PID/fdinfo/FD text.
fn fdinfo_mnt_id(info: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// `--page-server ADDRESS:PORT`.
fn page_server(s: &str) -> Result<CriuPageServerInfo> {
    let bad = || anyhow::anyhow!("Use --page-server ADDRESS:PORT to specify page server");
    let (addr, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if addr.is_empty() || port.is_empty() {
        return Err(bad());
    }
    let port: i32 = port
        .parse()
        .ok()
        .filter(|p| (1..=65535).contains(p))
        .context("--page-server: invalid port number")?;
    Ok(CriuPageServerInfo {
        address: Some(addr.into()),
        port: Some(port),
        ..Default::default()
    })
}

/// `--status-fd`: used only with --lazy-pages (refused without, rather
/// than ignored), and it must be an open, writable fd.
fn status_fd(fd: Option<i32>, lazy: bool) -> Result<Option<OwnedFd>> {
    let Some(fd) = fd else { return Ok(None) };
    if !lazy {
        bail!("--status-fd is only used with --lazy-pages");
    }
    // SAFETY: only inspected here; owned below once known to be open.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let flags = nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_GETFL)
        .with_context(|| format!("invalid --status-fd argument {fd}"))?;
    if flags & (libc::O_WRONLY | libc::O_RDWR) == 0 {
        bail!("invalid --status-fd argument {fd}: not writable");
    }
    // SAFETY: an open fd given to us by our caller, for us to write and close.
    Ok(Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_gives_the_mount_id() {
        let info = "pos:\t0\nflags:\t0100000\nmnt_id:\t23\nino:\t4\n";
        assert_eq!(fdinfo_mnt_id(info), Some(23));
        assert_eq!(fdinfo_mnt_id("pos:\t0\n"), None);
    }

    #[test]
    fn page_server_takes_address_and_port() {
        let p = page_server("10.0.0.1:27").unwrap();
        assert_eq!(p.address.as_deref(), Some("10.0.0.1"));
        assert_eq!(p.port, Some(27));
        assert_eq!(
            page_server("[::1]:80").unwrap().address.as_deref(),
            Some("::1")
        );
        for bad in ["x", ":80", "h:", "h:0", "h:x"] {
            assert!(page_server(bad).is_err(), "{bad}");
        }
    }
}
