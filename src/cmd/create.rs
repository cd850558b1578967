//! `skiff create`: set up a container and leave its init waiting for `start`.
//! Runs in: the runtime process.
use crate::Globals;
use crate::cli::{Cmd, NEW_ID};
pub use crate::launch::CreateOpts;

/// The option table of `create` and `run` (both keep `CreateOpts` in
/// `.opts`): the `$extra` options, then the shared ones.
macro_rules! create_opts {
    ($($extra:expr),* $(,)?) => {
        &[
            $($extra,)*
            $crate::cli::Opt::value("bundle", Some('b'), "DIR",
                "Path to the root of the bundle directory, defaults to the current directory [default: .]",
                |a, v| $crate::cli::path(v).map(|p| a.opts.bundle = p)),
            $crate::cli::Opt::value("console-socket", None, "PATH",
                "Path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal",
                |a, v| $crate::cli::path(v).map(|p| a.opts.console_socket = Some(p))),
            $crate::cli::Opt::value("pid-file", None, "FILE",
                "Specify the file to write the process id to",
                |a, v| $crate::cli::path(v).map(|p| a.opts.pid_file = Some(p))),
            $crate::cli::Opt::flag("no-pivot", None,
                "Do not use pivot root to jail process inside rootfs",
                |a| a.opts.no_pivot = true),
            $crate::cli::Opt::flag("no-new-keyring", None,
                "Do not create a new session keyring for the container",
                |a| a.opts.no_new_keyring = true),
            $crate::cli::Opt::value("preserve-fds", None, "N",
                "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) [default: 0]",
                |a, v| $crate::cli::number(v).map(|n| a.opts.preserve_fds = n)),
        ]
    };
}
pub(crate) use create_opts;

#[derive(Debug, Default)]
pub struct Args {
    pub opts: CreateOpts,
}

pub static CLI: Cmd<Args> = Cmd {
    init: Args::default,
    opts: create_opts!(),
    args: &[NEW_ID],
    set_args: |a, mut v| a.opts.id = v.swap_remove(0),
};

#[inline(never)]
pub fn run(args: Args, g: &Globals) -> anyhow::Result<()> {
    crate::launch::create(&args.opts, g, false).map(|_| ())
}
