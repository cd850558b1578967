//! `skiff completion bash|zsh`: print a completion script for the shell.
//! runc ships a hand-written bash script (contrib/completions/bash/runc);
//! skiff writes its scripts from the very tables that parse the command
//! line and write `--help` (cli/shape.rs walks them), so a flag cannot be
//! parsed but not completed. `make install` installs them; nothing
//! generated is checked in, so nothing drifts.
//!
//! What each value completes to is read from the tables too: a value named
//! FILE or PATH is a file, DIR a directory, an option or positional whose
//! help lists `[possible values: a, b]` completes to those words; `<ID>`
//! completes to the ids `skiff [--root R] list -q` prints (R as given on
//! the line being completed, as runc's script does), `[SIGNAL]` to the
//! signal names `kill` accepts.
//! Runs in: the runtime process.
use crate::Globals;
use crate::cli::shape::{OptShape, Tables, tables};
use crate::cli::{Cmd, NEW_ID, Pos};
use anyhow::{Result, bail};
use std::fmt::Write;

#[derive(Debug, Default)]
pub struct Args {
    pub shell: String,
}

pub static CLI: Cmd<Args> = Cmd {
    init: Args::default,
    opts: &[],
    args: &[Pos {
        name: "<SHELL>",
        help: "The shell to write the script for [possible values: bash, zsh]",
    }],
    set_args: |a, mut v| a.shell = v.swap_remove(0),
};

#[inline(never)]
pub fn run(args: Args, _: &Globals) -> Result<()> {
    let script = match args.shell.as_str() {
        "bash" => bash(&tables()),
        "zsh" => zsh(&tables()),
        s => bail!("no completion for shell {s:?}: bash or zsh"),
    };
    print!("{script}");
    Ok(())
}

/// What a value or positional completes to.
#[derive(Debug, PartialEq)]
enum Hint {
    /// Anything: nothing to offer.
    Any,
    Files,
    Dirs,
    Words(Vec<&'static str>),
    /// Container ids, from `skiff list -q`.
    Ids,
    Signals,
}

/// `[possible values: a, b]` at the end of a help text.
fn possible_values(help: &'static str) -> Option<Vec<&'static str>> {
    let (_, rest) = help.split_once("[possible values: ")?;
    let list = rest.split(']').next()?;
    Some(list.split(", ").map(str::trim).collect())
}

fn value_hint(o: &OptShape) -> Hint {
    if let Some(words) = possible_values(o.help) {
        return Hint::Words(words);
    }
    match (o.long, o.value) {
        // exec's working directory is a path in the container, not here.
        ("cwd", _) => Hint::Any,
        (_, Some("FILE" | "PATH")) => Hint::Files,
        (_, Some("DIR")) => Hint::Dirs,
        _ => Hint::Any,
    }
}

fn arg_hint((name, help): (&'static str, &'static str)) -> Hint {
    match name {
        // A new container's id: nothing to offer.
        _ if (name, help) == (NEW_ID.name, NEW_ID.help) => Hint::Any,
        "<ID>" => Hint::Ids,
        "[SIGNAL]" => Hint::Signals,
        _ => possible_values(help).map_or(Hint::Any, Hint::Words),
    }
}

/// The signal names `kill` takes, bare and with SIG (docker's and runc's
/// scripts offer both).
fn signals() -> Vec<String> {
    let names: Vec<&str> = nix::sys::signal::Signal::iterator()
        .map(|s| s.as_str())
        .collect();
    let bare = names
        .iter()
        .map(|n| n.trim_start_matches("SIG").to_string());
    bare.chain(names.iter().map(|n| n.to_string())).collect()
}

/// The names `skiff help` takes: every subcommand, and help itself.
fn topics(t: &Tables) -> Vec<&'static str> {
    let mut v: Vec<&str> = t.subs.iter().map(|s| s.name).collect();
    v.push("help");
    v
}

/// The positionals, with `help`'s topic (help is not in the tables:
/// cli.rs handles it before them).
fn positionals(t: &Tables) -> Vec<(&'static str, Vec<Hint>, bool)> {
    let mut v: Vec<_> = (t.subs.iter())
        .map(|s| {
            let trailing = s.shape.args.last().is_some_and(|a| a.0.ends_with("..."));
            let hints = s.shape.args.iter().map(|&a| arg_hint(a)).collect();
            (s.name, hints, trailing)
        })
        .collect();
    v.push(("help", vec![Hint::Words(topics(t))], false));
    v
}

/// The help words of a table's options: `--long`, `-s`.
fn spellings(opts: &[OptShape]) -> Vec<String> {
    let each = opts.iter().map(|o| {
        let short = o.short.map(|c| format!("-{c}"));
        std::iter::once(format!("--{}", o.long)).chain(short)
    });
    each.flatten().collect()
}

// ---- bash ----

fn bash_hint(h: &Hint) -> String {
    match h {
        Hint::Any => "any".into(),
        Hint::Files => "files".into(),
        Hint::Dirs => "dirs".into(),
        Hint::Ids => "ids".into(),
        Hint::Signals => "signals".into(),
        Hint::Words(w) => format!("'words {}'", w.join(" ")),
    }
}

/// `case` patterns for an option: `create:--bundle|create:-b`.
fn bash_patterns(sub: &str, o: &OptShape) -> String {
    let mut p = format!("{sub}:--{}", o.long);
    if let Some(c) = o.short {
        let _ = write!(p, "|{sub}:-{c}");
    }
    p
}

const BASH_HEAD: &str = r#"# bash completion for skiff
# Written by `skiff completion bash` from skiff's option tables (the ones
# that parse the command line and write --help): regenerate, don't edit.
# Use: source <(skiff completion bash), or install it as
# $PREFIX/share/bash-completion/completions/skiff (`make install` does).

# _skiff_reply HINT: COMPREPLY for $cur (after the `--opt=` prefix $pre).
_skiff_reply() {
    case $1 in
    files) compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
    dirs) compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
    ids) mapfile -t COMPREPLY < <(compgen -W "$(_skiff_ids)" -- "$cur") ;;
    signals) mapfile -t COMPREPLY < <(compgen -W "$_skiff_signals" -- "${cur^^}") ;;
    words\ *) mapfile -t COMPREPLY < <(compgen -W "${1#words }" -- "$cur") ;;
    *) COMPREPLY=() ;;
    esac
    if [[ -n $pre ]]; then
        COMPREPLY=("${COMPREPLY[@]/#/$pre}")
    fi
}

# The ids of the containers under the --root given on the line, as
# runc's script does with `runc list -q`.
_skiff_ids() {
    local r=${root/#\~/$HOME}
    "${COMP_WORDS[0]}" ${r:+--root "$r"} list -q 2>/dev/null
}

_skiff() {
    local cur=${COMP_WORDS[COMP_CWORD]} sub= root= pre= hint= opts= n=
    local valopt= dd= rest= w i=1 npos=0
    # The words before the cursor: the subcommand, the positionals so
    # far, --root, and whether the cursor is an option's value.
    while ((i < COMP_CWORD)); do
        w=${COMP_WORDS[i]}
        if [[ -n $rest ]]; then
            :
        elif [[ -z $dd && $w == -- ]]; then
            dd=1
        elif [[ -z $dd && $w == -?* ]]; then
            if [[ ${COMP_WORDS[i + 1]} == = ]]; then
                # --opt=value, which bash splits at the `=`.
                ((i + 1 == COMP_CWORD)) && valopt=$w cur=
                ((i + 2 == COMP_CWORD)) && valopt=$w
                [[ $w == --root ]] && root=${COMP_WORDS[i + 2]}
                i=$((i + 2))
            elif [[ $w == --root=* ]]; then
                root=${w#--root=}
            elif _skiff_hint "$sub" "$w"; then
                ((i + 1 == COMP_CWORD)) && valopt=$w
                [[ $w == --root ]] && root=${COMP_WORDS[i + 1]}
                i=$((i + 1))
            fi
        elif [[ -z $sub ]]; then
            sub=$w
        else
            npos=$((npos + 1))
            # The trailing positional (exec's command) takes the rest.
            if _skiff_trailing "$sub" && ((npos > n)); then
                rest=1
            fi
        fi
        i=$((i + 1))
    done
    if [[ -n $rest ]]; then
        COMPREPLY=()
    elif [[ -n $valopt ]]; then
        _skiff_hint "$sub" "$valopt"
        _skiff_reply "$hint"
    elif [[ -z $dd && $cur == --*=* ]]; then
        # --opt=value when `=` is not in COMP_WORDBREAKS.
        pre=${cur%%=*}=
        _skiff_hint "$sub" "${cur%%=*}" || hint=any
        cur=${cur#*=}
        _skiff_reply "$hint"
    elif [[ -z $dd && $cur == -* ]]; then
        _skiff_opts "$sub"
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
    elif [[ -z $sub ]]; then
        _skiff_reply "words $_skiff_subs"
    elif _skiff_pos "$sub" "$npos"; then
        _skiff_reply "$hint"
    else
        COMPREPLY=()
    fi
}
"#;

/// The bash script: the fixed driver above, and the tables as `case`s.
fn bash(t: &Tables) -> String {
    let mut s = String::from(BASH_HEAD);
    let _ = writeln!(s, "\n_skiff_subs='{}'", topics(t).join(" "));
    let _ = writeln!(s, "_skiff_signals='{}'", signals().join(" "));

    s.push_str("\n# _skiff_hint SUB OPT: sets hint to what OPT's value completes to;\n");
    s.push_str("# fails if OPT takes no value. A command's own options first, as\n");
    s.push_str("# the parser looks them up.\n_skiff_hint() {\n    case $1:$2 in\n");
    let mut arm = |pat: String, what: String| {
        let _ = writeln!(s, "    {pat}) {what} ;;");
    };
    for sub in &t.subs {
        for o in &sub.shape.opts {
            let what = match o.value {
                Some(_) => format!("hint={}", bash_hint(&value_hint(o))),
                None => "return 1".into(),
            };
            arm(bash_patterns(sub.name, o), what);
        }
    }
    for (pre, opts) in [("", &t.top_only), ("*", &t.global)] {
        for o in opts.iter().filter(|o| o.value.is_some()) {
            arm(
                bash_patterns(pre, o),
                format!("hint={}", bash_hint(&value_hint(o))),
            );
        }
    }
    s.push_str("    *) return 1 ;;\n    esac\n}\n");

    s.push_str("\n# _skiff_opts SUB: sets opts to the options SUB takes ('': before it).\n");
    s.push_str("_skiff_opts() {\n    case $1 in\n");
    let global = spellings(&t.global).join(" ");
    let top = spellings(&t.top_only).join(" ");
    let _ = writeln!(s, "    '') opts='{global} {top} --help -h --version -v' ;;");
    for sub in &t.subs {
        let own = spellings(&sub.shape.opts).join(" ");
        let _ = writeln!(s, "    {}) opts='{own} {global} --help -h' ;;", sub.name);
    }
    s.push_str("    esac\n}\n");

    s.push_str("\n# _skiff_pos SUB N: sets hint for SUB's positional N (from 0).\n");
    s.push_str("_skiff_pos() {\n    case $1:$2 in\n");
    let mut trailing = String::new();
    for (name, hints, trail) in positionals(t) {
        for (i, h) in hints.iter().enumerate() {
            let _ = writeln!(s, "    {name}:{i}) hint={} ;;", bash_hint(h));
        }
        if trail {
            let _ = writeln!(trailing, "    {name}) n={} ;;", hints.len() - 1);
        }
    }
    s.push_str("    *) return 1 ;;\n    esac\n}\n");
    s.push_str("\n# _skiff_trailing SUB: sets n to the index of SUB's trailing positional.\n");
    s.push_str("_skiff_trailing() {\n    case $1 in\n");
    s.push_str(&trailing);
    s.push_str("    *) return 1 ;;\n    esac\n}\n\ncomplete -F _skiff skiff\n");
    s
}

// ---- zsh ----

/// Text for inside `'…'` in the script.
fn sq(s: &str) -> String {
    s.replace('\'', r"'\''")
}

/// Text for an `_arguments` field: `[`, `]` and `:` escaped.
fn field(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if matches!(c, '[' | ']' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    sq(&out)
}

/// A help text without its `[default: …]` and `[possible values: …]`.
fn plain_help(h: &str) -> &str {
    h.split(" [default: ")
        .next()
        .and_then(|h| h.split(" [possible values: ").next())
        .unwrap_or(h)
}

fn zsh_action(h: &Hint) -> String {
    match h {
        Hint::Any => String::new(),
        Hint::Files => "_files".into(),
        Hint::Dirs => "_files -/".into(),
        Hint::Ids => "_skiff_ids".into(),
        Hint::Signals => "_skiff_signals".into(),
        Hint::Words(w) => format!("({})", w.join(" ")),
    }
}

/// One option's `_arguments` spec:
/// `'(-b --bundle)'{-b+,--bundle=}'[help]:DIR:_files -/'`.
fn zsh_opt(o: &OptShape) -> String {
    let desc = field(plain_help(o.help));
    let action = match o.value {
        Some(v) => format!(":{}:{}", field(v), sq(&zsh_action(&value_hint(o)))),
        None => String::new(),
    };
    let (long, short) = match o.value {
        Some(_) => ("=", "+"),
        None => ("", ""),
    };
    match (o.short, o.many) {
        (Some(c), many) => {
            let excl = if many {
                "*".into()
            } else {
                format!("(-{c} --{})", o.long)
            };
            format!(
                "'{excl}'{{-{c}{short},--{}{long}}}'[{desc}]{action}'",
                o.long
            )
        }
        (None, many) => {
            let star = if many { "*" } else { "" };
            format!("'{star}--{}{long}[{desc}]{action}'", o.long)
        }
    }
}

/// A positional's `_arguments` spec: `:container id:_skiff_ids`, `::` when
/// optional, `*::` for the trailing rest.
fn zsh_pos((name, help): (&'static str, &'static str)) -> String {
    let bare = name.trim_matches(|c| matches!(c, '<' | '>' | '[' | ']' | '.'));
    let what = match bare {
        "ID" => "container id".to_string(),
        b => b.to_lowercase().replace('_', " "),
    };
    let colons = match name {
        n if n.ends_with("...") => "*::",
        n if n.starts_with('[') => "::",
        _ => ":",
    };
    let action = zsh_action(&arg_hint((name, help)));
    format!("'{colons}{}:{}'", field(&what), sq(&action))
}

const ZSH_HEAD: &str = r#"#compdef skiff
# zsh completion for skiff
# Written by `skiff completion zsh` from skiff's option tables (the ones
# that parse the command line and write --help): regenerate, don't edit.
# Use: source <(skiff completion zsh) after compinit, or install it as
# _skiff in a directory of $fpath, e.g. $PREFIX/share/zsh/site-functions
# (`make install` does).

# The ids of the containers under the --root given on the line, as
# runc's bash script does with `runc list -q`.
_skiff_ids() {
    local root=${(Q)${opt_args[--root]:-$_skiff_root}} bin=${_skiff_bin/#\~/$HOME}
    local -a ids expl
    ids=(${(f)"$("$bin" ${root:+--root} ${root:+"$root"} list -q 2>/dev/null)"})
    _wanted container-ids expl 'container id' compadd -a ids
}

_skiff_signals() {
    local -a expl
    _wanted signals expl signal compadd -a _skiff_signal_names
}
"#;

/// The `_arguments` lines of a command: its options, the global ones, help.
fn zsh_opts(opts: &[OptShape], global: &[OptShape]) -> Vec<String> {
    let mut v: Vec<String> = opts.iter().chain(global).map(zsh_opt).collect();
    v.push("'(- *)'{-h,--help}'[show help]'".into());
    v
}

fn zsh_function(s: &mut String, name: &str, specs: &[String]) {
    let _ = writeln!(s, "\n_skiff_{name}() {{\n    _arguments -s -S \\");
    for spec in specs {
        let _ = writeln!(s, "        {spec} \\");
    }
    // No dangling backslash after the last spec.
    s.truncate(s.len() - 3);
    s.push_str("\n}\n");
}

/// The zsh script: `_arguments` specs written from the tables.
fn zsh(t: &Tables) -> String {
    let mut s = String::from(ZSH_HEAD);
    let _ = writeln!(s, "\n_skiff_signal_names=({})", signals().join(" "));

    s.push_str("\n_skiff_commands() {\n    local -a cmds=(\n");
    for sub in &t.subs {
        let _ = writeln!(
            s,
            "        '{}:{}'",
            sub.name,
            sq(&sub.about.replace(':', r"\:"))
        );
    }
    s.push_str("        'help:Shows a list of commands or help for one command'\n    )\n");
    s.push_str("    _describe -t commands 'skiff command' cmds\n}\n");

    for sub in &t.subs {
        let mut specs = zsh_opts(&sub.shape.opts, &t.global);
        specs.extend(sub.shape.args.iter().map(|&a| zsh_pos(a)));
        zsh_function(&mut s, sub.name, &specs);
    }
    zsh_function(&mut s, "help", &["':command:_skiff_commands'".into()]);

    let mut top = zsh_opts(&t.global, &t.top_only);
    top.push("'(- *)'{-v,--version}'[print the version]'".into());
    top.push("'1:command:_skiff_commands'".into());
    top.push("'*::argument:->argument'".into());
    s.push_str("\n_skiff() {\n    local curcontext=$curcontext state state_descr line ret=1\n");
    s.push_str("    local _skiff_bin=$words[1] _skiff_root\n    typeset -A opt_args\n");
    // -A: the options after the command are the command's (its own
    // _arguments parses them, global ones included).
    s.push_str("    _arguments -C -s -S -A '-*' \\\n");
    for spec in &top {
        let _ = writeln!(s, "        {spec} \\");
    }
    s.truncate(s.len() - 3);
    s.push_str(" && ret=0\n    if [[ $state == argument ]]; then\n");
    s.push_str("        _skiff_root=${opt_args[--root]}\n");
    s.push_str("        curcontext=${curcontext%:*:*}:skiff-$words[1]:\n");
    s.push_str("        case $words[1] in\n");
    for name in topics(t) {
        let _ = writeln!(s, "        {name}) _skiff_{name} && ret=0 ;;");
    }
    s.push_str("        esac\n    fi\n    return ret\n}\n\n");
    // Autoloaded from $fpath the file is _skiff's body; sourced, it defines
    // the functions and registers them.
    s.push_str("if [[ $funcstack[1] == _skiff ]]; then\n    _skiff \"$@\"\nelse\n");
    s.push_str("    compdef _skiff skiff\nfi\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_option(t: &Tables) -> Vec<(&'static str, &OptShape)> {
        let subs = t
            .subs
            .iter()
            .flat_map(|s| s.shape.opts.iter().map(|o| (s.name, o)));
        let globals = t.global.iter().chain(&t.top_only).map(|o| ("", o));
        subs.chain(globals).collect()
    }

    /// Every option of every table, long and short, is in both scripts,
    /// and in the part of the script that belongs to its command.
    #[test]
    fn every_table_option_is_in_both_scripts() {
        let t = tables();
        let (b, z) = (bash(&t), zsh(&t));
        let opts = every_option(&t);
        assert!(
            opts.len() > 50,
            "{} options: the walk missed tables",
            opts.len()
        );
        for (sub, o) in opts {
            let bash_line = b
                .lines()
                .find(|l| match sub {
                    "" => l.starts_with("    '') opts='"),
                    s => l.starts_with(&format!("    {s}) opts='")),
                })
                .unwrap_or_else(|| panic!("bash: no option list for {sub:?}"));
            let zsh_fn = match sub {
                "" => z.split("\n_skiff() {").nth(1),
                s => z.split(&format!("\n_skiff_{s}() {{")).nth(1),
            }
            .and_then(|f| f.split("\n}\n").next())
            .unwrap_or_else(|| panic!("zsh: no function for {sub:?}"));
            assert!(
                zsh_fn.contains(&zsh_opt(o)),
                "zsh: {sub} lacks --{}",
                o.long
            );
            let mut words = vec![format!("--{}", o.long)];
            words.extend(o.short.map(|c| format!("-{c}")));
            for w in &words {
                let listed = bash_line.split(['\'', ' ']).any(|x| x == w);
                assert!(listed, "bash: {sub} lacks {w}: {bash_line}");
            }
            if o.value.is_some() {
                let pat = bash_patterns(if sub.is_empty() { "*" } else { sub }, o);
                let top = format!("    :--{})", o.long);
                assert!(
                    b.contains(&format!("    {pat}) hint=")) || b.contains(&top),
                    "bash: {sub} --{} takes a value, not in _skiff_hint",
                    o.long
                );
            }
        }
    }

    #[test]
    fn every_subcommand_is_in_both_scripts() {
        let t = tables();
        let (b, z) = (bash(&t), zsh(&t));
        let subs = b.lines().find(|l| l.starts_with("_skiff_subs=")).unwrap();
        for s in &t.subs {
            assert!(subs.split(['\'', ' ']).any(|w| w == s.name), "{subs}");
            assert!(
                z.contains(&format!("        '{}:", s.name)),
                "zsh lacks {}",
                s.name
            );
            assert!(z.contains(&format!("        {0}) _skiff_{0} && ret=0 ;;", s.name)));
        }
    }

    /// The walk sees each command as its `--help` does.
    #[test]
    fn shapes_match_the_help() {
        let t = tables();
        assert!(t.subs.iter().any(|s| s.name == "completion"));
        for s in &t.subs {
            let help = match crate::cli::parse([s.name, "--help"].map(Into::into)) {
                Err(crate::cli::Stop::Print(h)) => h,
                other => panic!("{}: {other:?}", s.name),
            };
            for o in &s.shape.opts {
                assert!(
                    help.contains(&format!("--{}", o.long)),
                    "{}: {}",
                    s.name,
                    o.long
                );
            }
            let listed = help.split("\nOPTIONS:\n").nth(1).map_or(0, |o| {
                o.lines().take_while(|l| !l.trim().is_empty()).count()
            });
            assert_eq!(listed, s.shape.opts.len(), "{}: {help}", s.name);
        }
    }

    #[test]
    fn hints_follow_the_tables() {
        let t = tables();
        let opt = |sub: &str, long: &str| {
            let s = t.subs.iter().find(|s| s.name == sub).unwrap();
            value_hint(s.shape.opts.iter().find(|o| o.long == long).unwrap())
        };
        let global = |long: &str| value_hint(t.global.iter().find(|o| o.long == long).unwrap());
        assert_eq!(opt("create", "bundle"), Hint::Dirs);
        assert_eq!(opt("create", "pid-file"), Hint::Files);
        assert_eq!(opt("create", "console-socket"), Hint::Files);
        assert_eq!(opt("exec", "process"), Hint::Files);
        assert_eq!(opt("exec", "cwd"), Hint::Any);
        assert_eq!(opt("exec", "cgroup"), Hint::Any);
        assert_eq!(opt("list", "format"), Hint::Words(vec!["table", "json"]));
        assert_eq!(global("log"), Hint::Files);
        assert_eq!(global("root"), Hint::Dirs);
        assert_eq!(global("log-format"), Hint::Words(vec!["text", "json"]));
        let kill = &t.subs.iter().find(|s| s.name == "kill").unwrap().shape;
        let hints: Vec<Hint> = kill.args.iter().map(|&a| arg_hint(a)).collect();
        assert_eq!(hints, [Hint::Ids, Hint::Signals]);
        let create = &t.subs.iter().find(|s| s.name == "create").unwrap().shape;
        assert_eq!(arg_hint(create.args[0]), Hint::Any, "create names a new id");
        // Every name offered is one `kill` takes.
        for s in signals() {
            crate::cmd::kill::parse_signal(&s).unwrap();
        }
        assert!(signals().iter().any(|s| s == "KILL"));
        assert!(signals().iter().any(|s| s == "SIGUSR1"));
    }

    #[test]
    fn zsh_fields_are_escaped() {
        assert_eq!(field("a [b]: c"), r"a \[b\]\: c");
        assert_eq!(field("it's"), r"it'\''s");
        let o = OptShape {
            long: "cgroup",
            short: None,
            help: "x [y] [default: 1]",
            value: Some("[C:]PATH"),
            many: true,
        };
        assert_eq!(zsh_opt(&o), r"'*--cgroup=[x \[y\]]:\[C\:\]PATH:'");
    }

    #[test]
    fn unknown_shell_is_an_error() {
        let g = Globals {
            root: "/nonexistent".into(),
            debug: false,
            rootless_cgroups: false,
            criu: "criu".into(),
            systemd_cgroup: false,
        };
        let e = run(
            Args {
                shell: "fish".into(),
            },
            &g,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no completion for shell \"fish\": bash or zsh"
        );
    }
}
