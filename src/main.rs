//! skiff: a small, fast OCI container runtime with runc's command line.
//! Runs in: the runtime process (P) started by the user or an engine.
//!
//! The single-threaded rule: skiff never starts a thread. `fork` copies only
//! the calling thread and `unshare(CLONE_NEWUSER)` fails in a multi-threaded
//! process, so the whole runtime, and every child it forks, stays on one
//! thread. Children inherit the parsed spec and every fd; nothing is
//! serialised between our own processes except the small `sync::Msg`s.
#![cfg_attr(not(test), no_main)]

mod capnames;
mod cgroup;
mod cli;
mod cmd;
mod container;
mod criu;
#[cfg(not(test))]
mod entry;
// On musl, dlmalloc instead of musl's malloc (Cargo.toml says why).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

// The arguments: ours from `main` (entry.rs says why), std's in unit tests.
#[cfg(not(test))]
use entry::args_os;
#[cfg(test)]
use std::env::args_os;
mod every;
mod fork;
mod hooks;
mod init;
mod launch;
mod log;
mod mountinfo;
mod netdev;
mod pidfd;
mod plan_exec;
mod procfs;
mod rdt;
mod reap;
mod rootfs;
mod seal;
mod seccomp;
mod sigpipe;
mod spec;
mod sync;
mod tty;
mod uidmap;

use cli::{Command, Stop};
use std::path::PathBuf;

/// Flags every subcommand sees.
pub struct Globals {
    pub root: PathBuf,
    pub debug: bool,
    /// Rootless cgroups: permission errors drop a hierarchy instead of
    /// failing, unless limits need it (cgroup/rootless.rs).
    pub rootless_cgroups: bool,
    /// `--criu`: the criu binary for checkpoint and restore.
    pub criu: PathBuf,
    /// `--systemd-cgroup`: `create` puts the container in a systemd unit
    /// (cgroup/systemd.rs); later commands find that in state.json.
    pub systemd_cgroup: bool,
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
    // before parsing the arguments, which the re-exec would do twice. A
    // plain scan of argv: sealing for `state run` (an id named "run") too
    // costs time, never safety.
    let enters = args_os()
        .skip(1)
        .any(|a| a == "create" || a == "run" || a == "exec");
    if enters && let Err(e) = seal::ensure_sealed() {
        log::error(&format!("{e:#}"));
        std::process::exit(1);
    }
    let cli = match cli::parse(args_os().skip(1)) {
        Ok(cli) => cli,
        Err(Stop::NoTopic(msg)) => {
            log::error(&msg);
            std::process::exit(3);
        }
        Err(stop) => {
            match &stop {
                Stop::Print(text) => {
                    sigpipe::restore_sigpipe();
                    print!("{text}")
                }
                Stop::Usage(text) | Stop::NoTopic(text) => eprint!("{text}"),
            }
            std::process::exit(stop.exit_code());
        }
    };
    let flags = cli.flags;
    let mut command = cli.command;
    // `check` reports on the CRIU binary the global --criu names.
    if let Command::Check(a) = &mut command {
        a.criu = flags.criu.clone();
    }
    let trace = log::init_phases(flags.debug, t0);
    let logger = log::Logger::new(
        flags.log.as_deref(),
        flags.log_format == "json",
        flags.debug || trace,
    );
    log::set(logger);
    let euid = nix::unistd::geteuid().as_raw();
    let globals = Globals {
        root: (flags.root)
            .unwrap_or_else(|| default_root(euid, std::env::var_os("XDG_RUNTIME_DIR"))),
        debug: flags.debug,
        rootless_cgroups: rootless_cgroups(&flags.rootless, euid, rootfs::in_user_namespace()),
        criu: flags.criu.unwrap_or_else(|| PathBuf::from("criu")),
        systemd_cgroup: flags.systemd_cgroup,
    };
    // A command that only reads and prints dies of SIGPIPE when its reader
    // goes away (`skiff list | head -1`), as runc (Go) does on stdout,
    // instead of panicking on EPIPE; the others keep it ignored (sigpipe.rs).
    if command.only_prints() {
        sigpipe::restore_sigpipe();
    }
    let result = dispatch(command, &globals);
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            log::error(&format!("{e:#}"));
            std::process::exit(1);
        }
    }
}

/// Runs one subcommand; returns the process exit code.
/// Each command's entry is `#[inline(never)]`: inlined, all of them made
/// this one function of about 70 KB, whose pages a `run` touched in full
/// (RSS; see build.rs and link/hot.order).
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
        Command::Validate(a) => cmd::validate::run(a, g),
        Command::Features(a) => cmd::features::run(a, g).map(|_| 0),
        Command::Check(a) => cmd::check::run(a, g).map(|_| 0),
        Command::Completion(a) => cmd::completion::run(a, g).map(|_| 0),
        Command::Checkpoint(a) => cmd::checkpoint::run(a, g).map(|_| 0),
        Command::Restore(a) => cmd::restore::run(a, g),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
