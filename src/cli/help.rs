//! `--help` text in runc's (urfave/cli's) layout, written from the same
//! tables the parser uses (see cli.rs).

use super::{Cmd, GLOBAL, Kind, Opt, SUBS, Sub, TOP_ONLY, VERSION};

const ABOUT: &str = "Run OCI containers: a drop-in replacement for runc";
/// urfave/cli's indent for the lines of a help section.
const INDENT: &str = "   ";

/// An option's left column in help, as urfave/cli prints it:
/// `--bundle value, -b value`.
fn row<A>(o: &Opt<A>) -> (String, String) {
    let value = match o.kind {
        Kind::Flag(_) => "",
        Kind::Value(..) | Kind::Many(..) => " value",
    };
    let short = o
        .short
        .map(|c| format!(", -{c}{value}"))
        .unwrap_or_default();
    (format!("--{}{value}{short}", o.long), help_text(o.help))
}

/// An option's help as urfave/cli words it: `(default: X)` at the end; the
/// possible values are already in the text.
fn help_text(h: &str) -> String {
    let mut out = h.to_string();
    if let Some(i) = out.find(" [possible values: ") {
        out.truncate(i);
    }
    match out.find(" [default: ") {
        Some(i) if out.ends_with(']') => {
            let d = out[i + 11..out.len() - 1].to_string();
            out.truncate(i);
            format!("{out} (default: {d})")
        }
        _ => out,
    }
}

/// Two aligned columns, indented, as urfave/cli's tabwriter prints them.
fn columns(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let lines = rows
        .iter()
        .map(|(l, r)| format!("{INDENT}{l:<width$}  {r}\n"));
    lines.collect()
}

/// runc's `runc --help` layout (urfave/cli's AppHelpTemplate).
pub(super) fn top_help() -> String {
    let mut cmds: Vec<(String, String)> = SUBS
        .iter()
        .map(|s| (s.name.into(), s.about.into()))
        .collect();
    cmds.push((
        "help, h".into(),
        "Shows a list of commands or help for one command".into(),
    ));
    let mut opts: Vec<_> = GLOBAL.iter().chain(TOP_ONLY).map(row).collect();
    opts.push(("--help, -h".into(), "show help".into()));
    opts.push(("--version, -v".into(), "print the version".into()));
    let version = VERSION.trim_start_matches("skiff version ");
    format!(
        "NAME:\n{INDENT}skiff - {ABOUT}\n\n\
         USAGE:\n{INDENT}skiff [global options] command [command options] [arguments...]\n\n\
         VERSION:\n{INDENT}{version}\n\
         COMMANDS:\n{}\n\
         GLOBAL OPTIONS:\n{}",
        columns(&cmds),
        columns(&opts)
    )
}

/// A positional as runc's usage lines name it: `<container-id>`, `[signal]`.
fn arg_word(name: &str) -> String {
    match name {
        "<ID>" => "<container-id>".into(),
        "[COMMAND]..." => "<command>".into(),
        "[PS_ARGS]..." => "[ps options]".into(),
        n => n.to_lowercase(),
    }
}

/// A command's usage arguments, and runc's paragraph naming them
/// (`Where "<container-id>" is ...`).
fn args_usage<A>(sub: &Sub, cmd: &Cmd<A>) -> (String, String) {
    let words: Vec<String> = cmd.args.iter().map(|a| arg_word(a.name)).collect();
    let mut usage = words.join(" ");
    if sub.name == "exec" {
        usage.push_str(" [command options]  || -p process.json <container-id>");
    }
    let what: Vec<String> = (words.iter().zip(cmd.args))
        .map(|(w, a)| {
            let h = a.help.split(" [default: ").next().unwrap_or_default();
            let mut c = h.chars();
            let h = c
                .next()
                .map(|f| f.to_lowercase().chain(c).collect::<String>());
            format!("\"{w}\" is {}", h.unwrap_or_default())
        })
        .collect();
    let para = match what.is_empty() {
        true => String::new(),
        false => format!("Where {}.\n", what.join(" and ")),
    };
    (usage, para)
}

/// runc's `runc CMD --help` layout (urfave/cli's CommandHelpTemplate):
/// NAME, USAGE and the command's own OPTIONS. The global options, which
/// skiff also takes after the command, are in `skiff --help`.
pub(super) fn help<A>(sub: &Sub, cmd: &Cmd<A>) -> String {
    let name = format!("skiff {}", sub.name);
    let mut s = format!(
        "NAME:\n{INDENT}{name} - {}\n\nUSAGE:\n{INDENT}{name}",
        sub.about
    );
    if !cmd.opts.is_empty() {
        s.push_str(" [command options]");
    }
    let (args, para) = args_usage(sub, cmd);
    if !args.is_empty() || !cmd.opts.is_empty() {
        s = format!("{s} {args}");
    }
    s.push('\n');
    if !para.is_empty() {
        s = format!("{s}\n{para}");
    }
    if !cmd.opts.is_empty() {
        let opts: Vec<_> = cmd.opts.iter().map(row).collect();
        s = format!("{s}\nOPTIONS:\n{}{INDENT}\n", columns(&opts));
    }
    s
}
