//! skiff: a small, fast OCI container runtime with runc's command line.
//! Runs in: the runtime process (P) started by the user or an engine.
//!
//! The single-threaded rule: skiff never starts a thread. `fork` copies only
//! the calling thread and `unshare(CLONE_NEWUSER)` fails in a multi-threaded
//! process, so the whole runtime, and every child it forks, stays on one
//! thread. Children inherit the parsed spec and every fd; nothing is
//! serialised between our own processes except the small `sync::Msg`s.
#![no_main]

mod cgroup;
mod cmd;
mod container;
mod entry;
mod fork;
mod hooks;
mod idmap;
mod init;
mod launch;
mod log;
mod pidfd;
mod rootfs;
mod seal;
mod seccomp;
mod spec;
mod sync;
mod tty;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// `--version` prints "skiff version X" like runc: docker parses that form.
const VERSION: &str = concat!("version ", env!("CARGO_PKG_VERSION"), "\nspec: 1.3.0");

/// The command line, flag for flag runc's (containerd and podman parse it).
#[derive(Parser, Debug)]
#[command(
    name = "skiff",
    version = VERSION,
    long_version = VERSION,
    about = "Run OCI containers: a drop-in replacement for runc"
)]
pub struct Cli {
    /// Enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// Set the log file to write skiff logs to (default is stderr)
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Set the log format ('text' (default), or 'json')
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Root directory for storage of container state (this should be located in tmpfs)
    /// [default: /run/skiff, or $XDG_RUNTIME_DIR/skiff when not root]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Path to the criu binary used for checkpoint and restore (not supported)
    #[arg(long, global = true, value_name = "PATH")]
    pub criu: Option<PathBuf>,
    /// Enable systemd cgroup support (not supported yet: fails with an error)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Ignore cgroup permission errors ('true', 'false', or 'auto')
    /// (Only before the subcommand: `spec --rootless` is a different flag.)
    #[arg(long = "rootless", id = "global_rootless", value_name = "VALUE", default_value = "auto", value_parser = ["true", "false", "auto"])]
    pub rootless: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container
    Create(cmd::create::Args),
    /// Execute the user-defined process in a created container
    Start(cmd::start::Args),
    /// Create and run a container
    Run(cmd::run::Args),
    /// Output the state of a container
    State(cmd::state::Args),
    /// Send a signal to the container's init process
    Kill(cmd::kill::Args),
    /// Delete any resources held by the container
    Delete(cmd::delete::Args),
    /// List containers started by skiff with the given root
    List(cmd::list::Args),
    /// Create a new specification file
    Spec(cmd::spec::Args),
    /// Execute new process inside the container
    Exec(cmd::exec::Args),
    /// Suspend all processes inside the container
    Pause(cmd::pause::Args),
    /// Resume all processes that have been previously paused
    Resume(cmd::pause::Args),
    /// Display the processes running inside a container
    Ps(cmd::ps::Args),
    /// Update container resource constraints
    Update(cmd::update::Args),
    /// Display container events such as OOM notifications and cpu, memory, and IO usage statistics
    Events(cmd::events::Args),
}

/// Flags every subcommand sees.
pub struct Globals {
    pub root: PathBuf,
    pub debug: bool,
    /// Rootless cgroups: permission errors drop a hierarchy instead of
    /// failing, unless limits need it (cgroup/rootless.rs).
    pub rootless_cgroups: bool,
}

/// runc's default root: `$XDG_RUNTIME_DIR/<name>` for a non-root user
/// (who cannot write /run), else /run/<name>.
fn default_root(euid: u32, xdg: Option<std::ffi::OsString>) -> PathBuf {
    match xdg.filter(|x| euid != 0 && !x.is_empty()) {
        Some(x) => PathBuf::from(x).join("skiff"),
        None => PathBuf::from("/run/skiff"),
    }
}

/// `--rootless`: true or false as given; auto (runc's
/// shouldUseRootlessCgroupManager) means not root, or root only inside a
/// user namespace, where the host's cgroups are not ours either.
fn rootless_cgroups(flag: &str, euid: u32, in_userns: bool) -> bool {
    match flag {
        "true" => true,
        "false" => false,
        _ => euid != 0 || in_userns,
    }
}

/// Called by `entry::main`, the C entry point (see src/entry.rs).
fn main() {
    let t0 = std::time::Instant::now();
    // Before anything of ours can enter a container (CVE-2019-5736), and
    // before clap, whose work the re-exec would otherwise do twice. A
    // plain scan of argv: sealing for `state run` (an id named "run") too
    // costs time, never safety.
    let enters = std::env::args_os()
        .skip(1)
        .any(|a| a == "create" || a == "run" || a == "exec");
    if enters && let Err(e) = seal::ensure_sealed() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    let cli = Cli::parse();
    let trace = log::init_phases(cli.debug, t0);
    let logger = log::Logger::new(
        cli.log.as_deref(),
        cli.log_format == "json",
        cli.debug || trace,
    );
    log::set(logger);
    let euid = nix::unistd::geteuid().as_raw();
    let globals = Globals {
        root: (cli.root.clone())
            .unwrap_or_else(|| default_root(euid, std::env::var_os("XDG_RUNTIME_DIR"))),
        debug: cli.debug,
        rootless_cgroups: rootless_cgroups(&cli.rootless, euid, rootfs::in_user_namespace()),
    };
    let result = if cli.systemd_cgroup {
        Err(anyhow::anyhow!(
            "--systemd-cgroup is not supported by skiff yet"
        ))
    } else {
        dispatch(cli.command, &globals)
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            log::error(&format!("{e:#}"));
            std::process::exit(1);
        }
    }
}

/// Runs one subcommand; returns the process exit code.
fn dispatch(command: Command, g: &Globals) -> anyhow::Result<i32> {
    match command {
        Command::Create(a) => cmd::create::run(a, g).map(|_| 0),
        Command::Start(a) => cmd::start::run(a, g).map(|_| 0),
        Command::Run(a) => cmd::run::run(a, g),
        Command::State(a) => cmd::state::run(a, g).map(|_| 0),
        Command::Kill(a) => cmd::kill::run(a, g).map(|_| 0),
        Command::Delete(a) => cmd::delete::run(a, g).map(|_| 0),
        Command::List(a) => cmd::list::run(a, g).map(|_| 0),
        Command::Spec(a) => cmd::spec::run(a, g).map(|_| 0),
        // runc reports a failed exec as "exec failed: …" with status 255,
        // so 1 stays free for the process's own exit code.
        Command::Exec(a) => cmd::exec::run(a, g).or_else(|e| {
            log::error(&format!("exec failed: {e:#}"));
            Ok(255)
        }),
        Command::Pause(a) => cmd::pause::pause(a, g).map(|_| 0),
        Command::Resume(a) => cmd::pause::resume(a, g).map(|_| 0),
        Command::Ps(a) => cmd::ps::run(a, g).map(|_| 0),
        Command::Update(a) => cmd::update::run(a, g).map(|_| 0),
        Command::Events(a) => cmd::events::run(a, g).map(|_| 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn both_flag_forms_parse() {
        let a = Cli::try_parse_from(["skiff", "--log-format=json", "--root", "/x", "state", "c1"])
            .unwrap();
        assert_eq!(a.log_format, "json");
        assert_eq!(a.root, Some(PathBuf::from("/x")));
        let b = Cli::try_parse_from(["skiff", "kill", "c1", "9"]).unwrap();
        assert!(matches!(b.command, Command::Kill(_)));
    }

    #[test]
    fn root_and_rootless_defaults_follow_runc() {
        let xdg = || Some("/run/user/1000".into());
        assert_eq!(
            default_root(1000, xdg()),
            PathBuf::from("/run/user/1000/skiff")
        );
        assert_eq!(default_root(0, xdg()), PathBuf::from("/run/skiff"));
        assert_eq!(default_root(1000, None), PathBuf::from("/run/skiff"));
        assert!(rootless_cgroups("auto", 1000, false));
        assert!(rootless_cgroups("auto", 0, true));
        assert!(!rootless_cgroups("auto", 0, false));
        assert!(rootless_cgroups("true", 0, false));
        assert!(!rootless_cgroups("false", 1000, true));
    }
}
