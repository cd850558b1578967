//! `skiff create`: set up a container and leave its init waiting for `start`.
//! Runs in: the runtime process.
use crate::Globals;
use std::path::PathBuf;

/// Options shared by `create` and `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct CreateOpts {
    /// Path to the root of the bundle directory, defaults to the current directory
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Specify the file to write the process id to
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: i32,
    /// The container id
    pub id: String,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub opts: CreateOpts,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<()> {
    crate::launch::create(&args.opts, g, false).map(|_| ())
}
