//! The command line's tables without their setters: every subcommand with
//! its options and positionals, walked from `SUBS` itself, for what is
//! written from the tables other than the parser and `--help` (the shell
//! completion scripts, cmd/completion.rs). A subcommand added to `SUBS`
//! is in here with no further step.

use super::{Cmd, Flags, GLOBAL, Kind, Opt, Pos, SUBS, TOP_ONLY};
use std::cell::RefCell;

/// One option: how it is spelled and whether it takes a value.
#[derive(Debug, Clone, PartialEq)]
pub struct OptShape {
    pub long: &'static str,
    pub short: Option<char>,
    pub help: &'static str,
    /// The value's name (`DIR`, `FILE`), or None for a boolean flag.
    pub value: Option<&'static str>,
    /// Whether it may be given many times.
    pub many: bool,
}

/// One table: its options and its positionals (`Pos::name`, `Pos::help`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Shape {
    pub opts: Vec<OptShape>,
    pub args: Vec<(&'static str, &'static str)>,
}

/// A subcommand as the completion scripts see it.
#[derive(Debug)]
pub struct SubShape {
    pub name: &'static str,
    pub about: &'static str,
    pub shape: Shape,
}

/// The whole command line: the global options (before and after the
/// subcommand), those only before it, and every subcommand.
#[derive(Debug)]
pub struct Tables {
    pub global: Vec<OptShape>,
    pub top_only: Vec<OptShape>,
    pub subs: Vec<SubShape>,
}

fn opt<A>(o: &Opt<A>) -> OptShape {
    let (value, many) = match o.kind {
        Kind::Flag(_) => (None, false),
        Kind::Value(n, _) => (Some(n), false),
        Kind::Many(n, _) => (Some(n), true),
    };
    OptShape {
        long: o.long,
        short: o.short,
        help: o.help,
        value,
        many,
    }
}

fn args(p: &[Pos]) -> Vec<(&'static str, &'static str)> {
    p.iter().map(|a| (a.name, a.help)).collect()
}

thread_local! {
    /// The shape `command` hands back when `Flags::describe` is set.
    static ANSWER: RefCell<Option<Shape>> = const { RefCell::new(None) };
}

/// Called by `command` instead of parsing when `Flags::describe` is set.
pub(super) fn answer<A>(cmd: &Cmd<A>) {
    let shape = Shape {
        opts: cmd.opts.iter().map(opt).collect(),
        args: args(cmd.args),
    };
    ANSWER.with(|a| *a.borrow_mut() = Some(shape));
}

/// A subcommand's shape, asked of its own parser: `Sub::parse` knows the
/// table's type, so `command` answers `Flags::describe` instead of parsing.
fn sub_shape(sub: &super::Sub) -> Shape {
    let mut flags = Flags {
        describe: true,
        ..Flags::default()
    };
    let mut none = lexopt::Parser::from_args(Vec::<String>::new());
    let _ = (sub.parse)(&mut none, &mut flags, sub);
    // A parser other than `command` answers nothing: the command is then
    // completed by name only (cmd/completion.rs's tests catch that).
    ANSWER.with(|a| a.borrow_mut().take()).unwrap_or_default()
}

/// Every table of the command line, in `SUBS` order.
pub fn tables() -> Tables {
    Tables {
        global: GLOBAL.iter().map(opt).collect(),
        top_only: TOP_ONLY.iter().map(opt).collect(),
        subs: SUBS
            .iter()
            .map(|s| SubShape {
                name: s.name,
                about: s.about,
                shape: sub_shape(s),
            })
            .collect(),
    }
}
