//! The command line, flag for flag runc's (containerd and podman parse it):
//! lexopt splits the arguments, and one static table per subcommand
//! (`cmd::*::CLI`, the globals here) both parses them and writes `--help`,
//! so the help lists exactly the flags the parser accepts.
//! Runs in: the runtime process, before anything else but the seal check.
//!
//! Rules (as clap's, which this replaced to save RSS and startup time):
//! options may come before, between or after the positionals; the global
//! flags also after the subcommand (`--rootless` only before it); an option
//! given twice is an error unless it is repeatable; `--` ends the options;
//! once only a trailing positional (exec's command, ps's ps arguments) is
//! left, anything that is not one of the command's options starts it, and
//! everything after it is taken as is. Usage errors exit with status 1, an
//! unknown subcommand with 3 (runc's, urfave/cli's, codes).
use crate::cmd;
use help::{help, top_help};
use lexopt::{Arg, Parser};
use std::ffi::OsString;
use std::path::PathBuf;
pub use values::{number, one_of, path, string};

/// `--version` prints "skiff version X" like runc: docker parses that form.
pub const VERSION: &str = concat!(
    "skiff version ",
    env!("CARGO_PKG_VERSION"),
    "\nspec: 1.3.0\n"
);

/// Converts an option's value and stores it; an error says why the value is bad.
pub type Setter<A> = fn(&mut A, OsString) -> Result<(), String>;

/// What an option takes.
pub enum Kind<A> {
    /// A boolean: given or not.
    Flag(fn(&mut A)),
    /// One value, shown in help as `<NAME>`.
    Value(&'static str, Setter<A>),
    /// A value that may be given many times (`-e A=1 -e B=2`).
    Many(&'static str, Setter<A>),
}

/// One option of a command: both its parser and its line in `--help`.
pub struct Opt<A> {
    pub long: &'static str,
    pub short: Option<char>,
    pub help: &'static str,
    pub kind: Kind<A>,
}

impl<A> Opt<A> {
    pub const fn flag(l: &'static str, s: Option<char>, h: &'static str, f: fn(&mut A)) -> Self {
        Opt {
            long: l,
            short: s,
            help: h,
            kind: Kind::Flag(f),
        }
    }
    pub const fn value(
        l: &'static str,
        s: Option<char>,
        name: &'static str,
        h: &'static str,
        f: Setter<A>,
    ) -> Self {
        Opt {
            long: l,
            short: s,
            help: h,
            kind: Kind::Value(name, f),
        }
    }
    pub const fn many(
        l: &'static str,
        s: Option<char>,
        name: &'static str,
        h: &'static str,
        f: Setter<A>,
    ) -> Self {
        Opt {
            long: l,
            short: s,
            help: h,
            kind: Kind::Many(name, f),
        }
    }
}

/// A positional argument, named as in the usage line: `<ID>` is required,
/// `[SIGNAL]` optional, and `[COMMAND]...` (last only) takes the rest.
pub struct Pos {
    pub name: &'static str,
    pub help: &'static str,
}

pub const ID: Pos = Pos {
    name: "<ID>",
    help: "The container id",
};

/// The id `create` and `run` give a new container (completion offers no
/// existing id for it).
pub const NEW_ID: Pos = Pos {
    name: "<ID>",
    help: "Your name for the new container, unique under --root",
};

/// The arguments of a command that takes only a container id.
#[derive(Debug, Default)]
pub struct IdArgs {
    pub id: String,
}

/// `start`, `state`, `pause` and `resume`: an id and no options.
pub static ID_ONLY: Cmd<IdArgs> = Cmd {
    init: IdArgs::default,
    opts: &[],
    args: &[ID],
    set_args: |a, mut v| a.id = v.swap_remove(0),
};

/// A subcommand's table: its options, positionals and defaults.
pub struct Cmd<A: 'static> {
    /// The arguments before any flag is seen (the defaults).
    pub init: fn() -> A,
    pub opts: &'static [Opt<A>],
    pub args: &'static [Pos],
    /// Stores the positionals, already checked against `args`.
    pub set_args: fn(&mut A, Vec<String>),
}

/// The global flags, runc's.
#[derive(Debug)]
pub struct Flags {
    pub debug: bool,
    pub log: Option<PathBuf>,
    pub log_format: String,
    pub root: Option<PathBuf>,
    pub criu: Option<PathBuf>,
    pub systemd_cgroup: bool,
    /// Only before the subcommand: `spec --rootless` is a different flag.
    pub rootless: String,
    /// Set by `shape::tables` only (never by parsing): the subcommand's
    /// parser hands its table to `shape::answer` and stops, parsing
    /// nothing. A bool, so the parse path gains no drop code.
    describe: bool,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            debug: false,
            log: None,
            log_format: "text".into(),
            root: None,
            criu: None,
            systemd_cgroup: false,
            rootless: "auto".into(),
            describe: false,
        }
    }
}

/// Accepted before and after the subcommand.
static GLOBAL: &[Opt<Flags>] = &[
    Opt::flag("debug", None, "Enable debug logging", |f| f.debug = true),
    Opt::value(
        "log",
        None,
        "FILE",
        "Set the log file to write skiff logs to (default is stderr)",
        |f, v| path(v).map(|p| f.log = Some(p)),
    ),
    Opt::value(
        "log-format",
        None,
        "LOG_FORMAT",
        "Set the log format ('text' (default), or 'json') [default: text] [possible values: text, json]",
        |f, v| one_of(v, &["text", "json"]).map(|s| f.log_format = s),
    ),
    Opt::value(
        "root",
        None,
        "DIR",
        "Root directory for storage of container state (this should be located in tmpfs) [default: /run/skiff, or $XDG_RUNTIME_DIR/skiff when not root]",
        |f, v| path(v).map(|p| f.root = Some(p)),
    ),
    Opt::value(
        "criu",
        None,
        "PATH",
        "Path to the criu binary used for checkpoint and restore [default: criu]",
        |f, v| path(v).map(|p| f.criu = Some(p)),
    ),
    Opt::flag(
        "systemd-cgroup",
        None,
        "Enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\" for e.g. \"system.slice:runc:434234\"",
        |f| f.systemd_cgroup = true,
    ),
];

/// Accepted only before the subcommand.
static TOP_ONLY: &[Opt<Flags>] = &[Opt::value(
    "rootless",
    None,
    "VALUE",
    "Ignore cgroup permission errors ('true', 'false', or 'auto') (Only before the subcommand: `spec --rootless` is a different flag.) [default: auto] [possible values: true, false, auto]",
    |f, v| one_of(v, &["true", "false", "auto"]).map(|s| f.rootless = s),
)];

/// A parsed command line.
#[derive(Debug)]
pub struct Cli {
    pub flags: Flags,
    pub command: Command,
}

#[derive(Debug)]
pub enum Command {
    Create(cmd::create::Args),
    Start(cmd::start::Args),
    Run(cmd::run::Args),
    State(cmd::state::Args),
    Kill(cmd::kill::Args),
    Delete(cmd::delete::Args),
    List(cmd::list::Args),
    Spec(cmd::spec::Args),
    Exec(cmd::exec::Args),
    Pause(cmd::pause::Args),
    Resume(cmd::pause::Args),
    Ps(cmd::ps::Args),
    Update(cmd::update::Args),
    Events(cmd::events::Args),
    Validate(cmd::validate::Args),
    Features(cmd::features::Args),
    Check(cmd::check::Args),
    Completion(cmd::completion::Args),
    Checkpoint(cmd::checkpoint::Args),
    Restore(cmd::restore::Args),
}

impl Command {
    /// Commands that only read and print (and start no container process):
    /// they may die of SIGPIPE like runc's instead of ignoring it.
    pub fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::State(_)
                | Command::List(_)
                | Command::Ps(_)
                | Command::Events(_)
                | Command::Validate(_)
                | Command::Features(_)
                | Command::Check(_)
                | Command::Completion(_)
        )
    }
}

type SubParse = fn(&mut Parser, &mut Flags, &Sub) -> Result<Command, Stop>;

/// A subcommand: its name, its line in the top-level help, its parser.
pub struct Sub {
    pub name: &'static str,
    pub about: &'static str,
    parse: SubParse,
}

pub static SUBS: &[Sub] = &[
    Sub {
        name: "create",
        about: "Create a container",
        parse: |p, f, s| command(p, f, s, &cmd::create::CLI).map(Command::Create),
    },
    Sub {
        name: "start",
        about: "Execute the user-defined process in a created container",
        parse: |p, f, s| command(p, f, s, &cmd::start::CLI).map(Command::Start),
    },
    Sub {
        name: "run",
        about: "Create and run a container",
        parse: |p, f, s| command(p, f, s, &cmd::run::CLI).map(Command::Run),
    },
    Sub {
        name: "state",
        about: "Output the state of a container",
        parse: |p, f, s| command(p, f, s, &cmd::state::CLI).map(Command::State),
    },
    Sub {
        name: "kill",
        about: "Send a signal to the container's init process",
        parse: |p, f, s| command(p, f, s, &cmd::kill::CLI).map(Command::Kill),
    },
    Sub {
        name: "delete",
        about: "Delete any resources held by the container",
        parse: |p, f, s| command(p, f, s, &cmd::delete::CLI).map(Command::Delete),
    },
    Sub {
        name: "list",
        about: "List containers started by skiff with the given root",
        parse: |p, f, s| command(p, f, s, &cmd::list::CLI).map(Command::List),
    },
    Sub {
        name: "spec",
        about: "Create a new specification file",
        parse: |p, f, s| command(p, f, s, &cmd::spec::CLI).map(Command::Spec),
    },
    Sub {
        name: "exec",
        about: "Execute new process inside the container",
        parse: |p, f, s| command(p, f, s, &cmd::exec::CLI).map(Command::Exec),
    },
    Sub {
        name: "pause",
        about: "Suspend all processes inside the container",
        parse: |p, f, s| command(p, f, s, &cmd::pause::CLI).map(Command::Pause),
    },
    Sub {
        name: "resume",
        about: "Resume all processes that have been previously paused",
        parse: |p, f, s| command(p, f, s, &cmd::pause::CLI).map(Command::Resume),
    },
    Sub {
        name: "ps",
        about: "Display the processes running inside a container",
        parse: |p, f, s| command(p, f, s, &cmd::ps::CLI).map(Command::Ps),
    },
    Sub {
        name: "update",
        about: "Update container resource constraints",
        parse: |p, f, s| command(p, f, s, &cmd::update::CLI).map(Command::Update),
    },
    Sub {
        name: "events",
        about: "Display container events such as OOM notifications and cpu, memory, and IO usage statistics",
        parse: |p, f, s| command(p, f, s, &cmd::events::CLI).map(Command::Events),
    },
    Sub {
        name: "validate",
        about: "Check a bundle's config.json as create would, without creating anything",
        parse: |p, f, s| command(p, f, s, &cmd::validate::CLI).map(Command::Validate),
    },
    Sub {
        name: "features",
        about: "Show the enabled features (the runtime-spec features document, JSON)",
        parse: |p, f, s| command(p, f, s, &cmd::features::CLI).map(Command::Features),
    },
    Sub {
        name: "check",
        about: "Report what this host gives a container runtime and what skiff does about it",
        parse: |p, f, s| command(p, f, s, &cmd::check::CLI).map(Command::Check),
    },
    Sub {
        name: "completion",
        about: "Print a bash or zsh completion script for skiff",
        parse: |p, f, s| command(p, f, s, &cmd::completion::CLI).map(Command::Completion),
    },
    Sub {
        name: "checkpoint",
        about: "Checkpoint a running container (with CRIU)",
        parse: |p, f, s| command(p, f, s, &cmd::checkpoint::CLI).map(Command::Checkpoint),
    },
    Sub {
        name: "restore",
        about: "Restore a container from a previous checkpoint (with CRIU)",
        parse: |p, f, s| command(p, f, s, &cmd::restore::CLI).map(Command::Restore),
    },
];

/// Why parsing stopped without a command to run.
#[derive(Debug, PartialEq)]
pub enum Stop {
    /// `--help`, `--version`: print this on stdout, exit 0.
    Print(String),
    /// A usage error: print this on stderr, exit 1 (3 for an unknown
    /// subcommand: see `Stop::exit_code`).
    Usage(String),
    /// `help foo`, or `foo`, naming no command: runc's "No help topic for
    /// 'foo'", logged as an error, exit 3.
    NoTopic(String),
}

/// How an unknown subcommand's usage error starts.
const UNKNOWN_COMMAND: &str = "unrecognized subcommand";

impl Stop {
    /// runc's exit codes: 0 for help and version, 3 for an unknown
    /// subcommand ("No help topic"), 1 for any other usage error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Stop::Print(_) => 0,
            Stop::Usage(t) if t.starts_with(&format!("error: {UNKNOWN_COMMAND}")) => 3,
            Stop::Usage(_) => 1,
            Stop::NoTopic(_) => 3,
        }
    }
}

fn usage(msg: impl std::fmt::Display) -> Stop {
    Stop::Usage(format!("error: {msg}\n"))
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, Stop> {
    let mut p = Parser::from_args(args);
    let mut flags = Flags::default();
    let (mut seen, mut seen_top) = (0u64, 0u64);
    while let Some(arg) = p.next().map_err(lex_error)? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => return Err(Stop::Print(top_help())),
            // runc's is -v; -V is what skiff took first (clap's).
            Arg::Short('v' | 'V') | Arg::Long("version") => {
                return Err(Stop::Print(VERSION.into()));
            }
            Arg::Value(name) => return subcommand(&mut p, flags, &name.to_string_lossy()),
            arg => match (find(GLOBAL, &arg), find(TOP_ONLY, &arg)) {
                (Some(i), _) => set(&mut p, GLOBAL, i, &mut flags, &mut seen)?,
                (None, Some(i)) => set(&mut p, TOP_ONLY, i, &mut flags, &mut seen_top)?,
                (None, None) => return Err(unexpected(&arg)),
            },
        }
    }
    // No subcommand: runc prints the help and succeeds.
    Err(Stop::Print(top_help()))
}

fn subcommand(p: &mut Parser, mut flags: Flags, name: &str) -> Result<Cli, Stop> {
    if name == "help" || name == "h" {
        return Err(help_command(p));
    }
    let sub = find_sub(name)?;
    let command = (sub.parse)(p, &mut flags, sub)?;
    Ok(Cli { flags, command })
}

/// An unknown command is runc's "No help topic" too (urfave/cli shows the
/// help of the command it was given, and there is none).
fn find_sub(name: &str) -> Result<&'static Sub, Stop> {
    (SUBS.iter().find(|s| s.name == name))
        .ok_or_else(|| Stop::NoTopic(format!("No help topic for '{name}'")))
}

/// `skiff help [CMD]`: the same text as `skiff [CMD] --help`.
fn help_command(p: &mut Parser) -> Stop {
    let name = match p.next() {
        Ok(Some(Arg::Value(v))) => v.to_string_lossy().into_owned(),
        Ok(None) => return Stop::Print(top_help()),
        Ok(Some(arg)) => return usage(format_args!("{UNKNOWN_COMMAND} '{}'", show(&arg))),
        Err(e) => return lex_error(e),
    };
    if name == "help" || name == "h" {
        return Stop::Print(top_help());
    }
    let sub = match find_sub(&name) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut help = Parser::from_args(["--help"]);
    match (sub.parse)(&mut help, &mut Flags::default(), sub) {
        Err(stop) => stop,
        Ok(_) => unreachable!("--help always stops"),
    }
}

/// Parses one subcommand's options and positionals into its `Args`.
fn command<A>(p: &mut Parser, flags: &mut Flags, sub: &Sub, cmd: &Cmd<A>) -> Result<A, Stop> {
    if flags.describe {
        shape::answer(cmd);
        return Err(Stop::Print(String::new()));
    }
    let mut a = (cmd.init)();
    let mut pos: Vec<String> = Vec::new();
    let (mut seen, mut seen_global) = (0u64, 0u64);
    let trailing = cmd.args.last().is_some_and(|x| x.name.ends_with("..."));
    loop {
        if trailing && pos.len() + 1 == cmd.args.len() && starts_trailing(p, cmd) {
            pos.extend(rest(p)?);
            break;
        }
        let Some(arg) = p.next().map_err(lex_error)? else {
            break;
        };
        match arg {
            Arg::Value(v) => {
                pos.push(utf8(v)?);
                if trailing && pos.len() == cmd.args.len() {
                    pos.extend(rest(p)?);
                    break;
                }
            }
            Arg::Short('h') | Arg::Long("help") => return Err(Stop::Print(help(sub, cmd))),
            arg => match (find(cmd.opts, &arg), find(GLOBAL, &arg)) {
                (Some(i), _) => set(p, cmd.opts, i, &mut a, &mut seen)?,
                (None, Some(i)) => set(p, GLOBAL, i, flags, &mut seen_global)?,
                (None, None) => return Err(unexpected(&arg)),
            },
        }
    }
    check_positionals(cmd.args, &pos)?;
    (cmd.set_args)(&mut a, pos);
    Ok(a)
}

/// Whether the next argument starts the trailing positional: anything but
/// `--` and the command's own options (clap's `allow_hyphen_values`: a
/// short cluster counts as options only if all its letters are ours).
fn starts_trailing<A>(p: &mut Parser, cmd: &Cmd<A>) -> bool {
    let Some(raw) = p.try_raw_args() else {
        return false;
    };
    let Some(next) = raw.peek().map(|s| s.to_string_lossy()) else {
        return false;
    };
    if let Some(long) = next.strip_prefix("--") {
        let name = long.split('=').next().unwrap_or_default();
        return !long.is_empty()
            && name != "help"
            && !has_long(cmd.opts, name)
            && !has_long(GLOBAL, name);
    }
    match next.strip_prefix('-') {
        Some(shorts) if !shorts.is_empty() => !shorts
            .chars()
            .all(|c| c == 'h' || cmd.opts.iter().any(|o| o.short == Some(c))),
        _ => false,
    }
}

/// Everything left, as is.
fn rest(p: &mut Parser) -> Result<Vec<String>, Stop> {
    p.raw_args().map_err(lex_error)?.map(utf8).collect()
}

fn check_positionals(args: &[Pos], got: &[String]) -> Result<(), Stop> {
    let required = args.iter().take_while(|a| a.name.starts_with('<')).count();
    if got.len() < required {
        let missing: Vec<&str> = args[got.len()..required].iter().map(|a| a.name).collect();
        return Err(usage(format_args!(
            "the following required arguments were not provided: {}",
            missing.join(" ")
        )));
    }
    let trailing = args.last().is_some_and(|x| x.name.ends_with("..."));
    match got.get(args.len()) {
        Some(extra) if !trailing => Err(usage(format_args!("unexpected argument '{extra}' found"))),
        _ => Ok(()),
    }
}

fn has_long<A>(opts: &[Opt<A>], name: &str) -> bool {
    opts.iter().any(|o| o.long == name)
}

fn find<A>(opts: &[Opt<A>], arg: &Arg) -> Option<usize> {
    opts.iter().position(|o| match arg {
        Arg::Long(l) => o.long == *l,
        Arg::Short(c) => o.short == Some(*c),
        Arg::Value(_) => false,
    })
}

/// Applies `opts[i]`: sets a flag, or takes and converts its value.
fn set<A>(
    p: &mut Parser,
    opts: &[Opt<A>],
    i: usize,
    a: &mut A,
    seen: &mut u64,
) -> Result<(), Stop> {
    let o = &opts[i];
    let repeat = matches!(o.kind, Kind::Many(..));
    if *seen & (1 << i) != 0 && !repeat {
        return Err(usage(format_args!(
            "the argument '{}' cannot be used multiple times",
            display(o)
        )));
    }
    *seen |= 1 << i;
    let f = match o.kind {
        Kind::Flag(f) => {
            f(a);
            return Ok(());
        }
        Kind::Value(_, f) | Kind::Many(_, f) => f,
    };
    let v = p.value().map_err(|_| {
        usage(format_args!(
            "a value is required for '{}' but none was supplied",
            display(o)
        ))
    })?;
    let shown = v.to_string_lossy().into_owned();
    f(a, v).map_err(|e| {
        usage(format_args!(
            "invalid value '{shown}' for '{}': {e}",
            display(o)
        ))
    })
}

fn unexpected(arg: &Arg) -> Stop {
    usage(format_args!("unexpected argument '{}' found", show(arg)))
}

fn show(arg: &Arg) -> String {
    match arg {
        Arg::Long(l) => format!("--{l}"),
        Arg::Short(c) => format!("-{c}"),
        Arg::Value(v) => v.to_string_lossy().into_owned(),
    }
}

fn lex_error(e: lexopt::Error) -> Stop {
    match e {
        lexopt::Error::UnexpectedValue { option, value } => usage(format_args!(
            "unexpected value '{}' for '{option}' found; no more were expected",
            value.to_string_lossy()
        )),
        e => usage(e),
    }
}

fn utf8(v: OsString) -> Result<String, Stop> {
    v.into_string()
        .map_err(|v| usage(format_args!("invalid UTF-8 in argument {v:?}")))
}

/// `--bundle <DIR>` as clap shows an option in messages.
fn display<A>(o: &Opt<A>) -> String {
    match o.kind {
        Kind::Flag(_) => format!("--{}", o.long),
        Kind::Value(n, _) | Kind::Many(n, _) => format!("--{} <{n}>", o.long),
    }
}

mod help;
pub mod shape;
#[cfg(test)]
mod tests;
mod values;
