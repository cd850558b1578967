//! The parser's rules, checked against what clap (which it replaced) did.
use super::*;

fn parse_line(line: &str) -> Result<Cli, Stop> {
    parse(line.split_whitespace().map(OsString::from))
}

fn ok(line: &str) -> Cli {
    parse_line(line).unwrap_or_else(|e| panic!("{line:?}: {e:?}"))
}

fn stop(line: &str) -> Stop {
    match parse_line(line) {
        Err(s) => s,
        Ok(c) => panic!("{line:?} must stop: {c:?}"),
    }
}

/// The usage error's one line.
fn err(line: &str) -> String {
    match parse_line(line) {
        Err(Stop::Usage(m)) => m,
        other => panic!("{line:?} must fail: {other:?}"),
    }
}

macro_rules! parsed {
    ($line:expr, $variant:ident) => {
        match ok($line).command {
            Command::$variant(a) => a,
            c => panic!("{}: {c:?}", $line),
        }
    };
}

fn help_of(cmd: &str) -> String {
    match parse_line(&format!("{cmd} --help")) {
        Err(Stop::Print(h)) => h,
        other => panic!("{cmd} --help: {other:?}"),
    }
}

/// A valid value for an option, by its value name in the table.
fn sample(value_name: &str) -> &'static str {
    match value_name {
        "FORMAT" | "LOG_FORMAT" => "json",
        "MEMORY" | "MEMORY_RESERVATION" | "MEMORY_SWAP" => "1m",
        "INTERVAL" => "1s",
        "DIR" | "FILE" | "PATH" | "PROFILE" | "LABEL" | "NAME=VALUE" | "CAP" | "UID[:GID]" => "x",
        "CPUSET_CPUS" | "CPUSET_MEMS" => "0-1",
        _ => "3",
    }
}

/// The options a command's help lists, urfave/cli's way
/// (`--bundle value, -b value  help`): (short, long, takes a value).
fn listed(help: &str) -> Vec<(Option<char>, String, bool)> {
    let opts = help.split("\nOPTIONS:\n").nth(1).unwrap_or_default();
    opts.lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let left = l.trim_start().split("  ").next().unwrap();
            let mut forms = left.split(", ");
            let first: Vec<&str> = forms.next().unwrap().split(' ').collect();
            let long = first[0].strip_prefix("--").unwrap().to_string();
            let short = forms.next().and_then(|f| f.chars().nth(1));
            (short, long, first.get(1) == Some(&"value"))
        })
        .collect()
}

/// The value name the table gives each option of command `name`.
fn value_name(name: &str, long: &str) -> &'static str {
    fn of<A>(c: &Cmd<A>, long: &str) -> Option<&'static str> {
        c.opts
            .iter()
            .find(|o| o.long == long)
            .and_then(|o| match o.kind {
                Kind::Flag(_) => None,
                Kind::Value(n, _) | Kind::Many(n, _) => Some(n),
            })
    }
    match name {
        "create" => of(&cmd::create::CLI, long),
        "start" => of(&cmd::start::CLI, long),
        "run" => of(&cmd::run::CLI, long),
        "state" => of(&cmd::state::CLI, long),
        "kill" => of(&cmd::kill::CLI, long),
        "delete" => of(&cmd::delete::CLI, long),
        "list" => of(&cmd::list::CLI, long),
        "spec" => of(&cmd::spec::CLI, long),
        "exec" => of(&cmd::exec::CLI, long),
        "pause" | "resume" => of(&cmd::pause::CLI, long),
        "ps" => of(&cmd::ps::CLI, long),
        "update" => of(&cmd::update::CLI, long),
        "events" => of(&cmd::events::CLI, long),
        "validate" => of(&cmd::validate::CLI, long),
        "features" => of(&cmd::features::CLI, long),
        "check" => of(&cmd::check::CLI, long),
        "checkpoint" => of(&cmd::checkpoint::CLI, long),
        "restore" => of(&cmd::restore::CLI, long),
        _ => None,
    }
    .unwrap_or_else(|| panic!("{name} --{long}: no value name"))
}

/// Every option of every command's help parses, in every form it has,
/// to the same result, and changes that result.
#[test]
fn every_listed_option_parses_in_all_its_forms() {
    assert_eq!(listed(&help_of("exec")).len(), cmd::exec::CLI.opts.len());
    assert_eq!(listed(&help_of("kill")), [(Some('a'), "all".into(), false)]);
    for sub in SUBS {
        let name = sub.name;
        let args = if matches!(name, "list" | "spec" | "validate" | "features" | "check") {
            ""
        } else {
            "c1"
        };
        let plain = format!("{:?}", ok(&format!("{name} {args}")));
        for (short, long, value) in listed(&help_of(name)) {
            let forms: Vec<String> = match value {
                false => [format!("--{long}")]
                    .into_iter()
                    .chain(short.map(|s| format!("-{s}")))
                    .collect(),
                true => {
                    let v = sample(value_name(name, &long));
                    let mut f = vec![format!("--{long} {v}"), format!("--{long}={v}")];
                    if let Some(s) = short {
                        f.extend([format!("-{s} {v}"), format!("-{s}{v}"), format!("-{s}={v}")]);
                    }
                    f
                }
            };
            let results: Vec<String> = (forms.iter())
                .map(|f| format!("{:?}", ok(&format!("{name} {f} {args}"))))
                .collect();
            assert!(results.iter().all(|r| *r == results[0]), "{name} {forms:?}");
            assert_ne!(results[0], plain, "{name} --{long} had no effect");
        }
    }
}

fn man_page(name: &str) -> String {
    let p = format!("{}/man/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn table<A>(name: &'static str, c: &Cmd<A>) -> (&'static str, Vec<&'static str>) {
    (name, c.opts.iter().map(|o| o.long).collect())
}

/// Each table's flags are in its command's help and man page, and the
/// global ones in the top-level help and skiff.8.
#[test]
fn every_table_flag_is_in_help_and_man_page() {
    let tables = [
        table("create", &cmd::create::CLI),
        table("start", &cmd::start::CLI),
        table("run", &cmd::run::CLI),
        table("state", &cmd::state::CLI),
        table("kill", &cmd::kill::CLI),
        table("delete", &cmd::delete::CLI),
        table("list", &cmd::list::CLI),
        table("spec", &cmd::spec::CLI),
        table("exec", &cmd::exec::CLI),
        table("pause", &cmd::pause::CLI),
        table("resume", &cmd::pause::CLI),
        table("ps", &cmd::ps::CLI),
        table("update", &cmd::update::CLI),
        table("events", &cmd::events::CLI),
        table("validate", &cmd::validate::CLI),
        table("features", &cmd::features::CLI),
        table("check", &cmd::check::CLI),
        table("completion", &cmd::completion::CLI),
        table("checkpoint", &cmd::checkpoint::CLI),
        table("restore", &cmd::restore::CLI),
    ];
    let names: Vec<&str> = tables.iter().map(|t| t.0).collect();
    assert_eq!(names, SUBS.iter().map(|s| s.name).collect::<Vec<_>>());
    let mentions = |text: &str, long: &str| {
        text.split(|c: char| c.is_whitespace() || c == ',')
            .any(|w| w == format!("--{long}"))
    };
    for (name, longs) in tables {
        let (help, man) = (help_of(name), man_page(&format!("skiff-{name}.8")));
        assert!(longs.len() < 64, "{name}: the seen-mask has 64 bits");
        for long in longs {
            assert!(mentions(&help, long), "{name} --help lacks --{long}");
            let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(man.contains(&roff), "skiff-{name}.8 lacks --{long}");
        }
        assert!(man_page("skiff.8").contains(&format!("\\fB{name}\\fR")));
    }
    let (top, man) = (help_of(""), man_page("skiff.8"));
    for o in GLOBAL.iter().chain(TOP_ONLY) {
        assert!(mentions(&top, o.long), "skiff --help lacks --{}", o.long);
        // As in runc, a command's help lists only its own options.
        assert!(!mentions(&help_of("create"), o.long), "--{}", o.long);
        let roff = format!("\\-\\-{}", o.long.replace('-', "\\-"));
        assert!(man.contains(&roff), "skiff.8 lacks --{}", o.long);
    }
}

#[test]
fn help_and_version() {
    let top = help_of("");
    assert!(top.starts_with("NAME:\n   skiff - "), "{top}");
    assert!(top.contains(
        "\nUSAGE:\n   skiff [global options] command [command options] [arguments...]\n"
    ));
    // The column is as wide as the longest command's name.
    let first = top
        .split("\nCOMMANDS:\n")
        .nth(1)
        .and_then(|c| c.lines().next());
    let first = first.unwrap_or_default();
    assert!(first.starts_with("   create  ") && first.ends_with(" Create a container"));
    assert!(top.contains("\n   --version, -v       print the version\n"));
    assert_eq!(stop("-h"), Stop::Print(top.clone()));
    assert_eq!(stop("help"), Stop::Print(top.clone()));
    assert_eq!(stop("h"), Stop::Print(top.clone()));
    assert_eq!(stop("help run"), Stop::Print(help_of("run")));
    assert_eq!(stop("h run"), Stop::Print(help_of("run")));
    assert_eq!(stop("run -h"), Stop::Print(help_of("run")));
    assert_eq!(stop("kill c1 --help"), Stop::Print(help_of("kill")));
    let version = Stop::Print("skiff version 0.1.0\nspec: 1.3.0\n".into());
    assert_eq!(stop("--version"), version);
    assert_eq!(stop("-v"), version);
    assert_eq!(stop("-V"), version);
    // No subcommand: the help, as runc prints it.
    assert_eq!(stop(""), Stop::Print(top));
    let nope = Stop::NoTopic("No help topic for 'nope'".into());
    assert_eq!(stop("help nope"), nope);
    assert_eq!(stop("nope c1"), nope);
    let ps = help_of("ps");
    assert_eq!(
        ps.split("\n\nWhere").next().unwrap(),
        "NAME:\n   skiff ps - Display the processes running inside a container\n\n\
         USAGE:\n   skiff ps [command options] <container-id> [ps options]"
    );
    assert!(ps.ends_with(
        "\n\nOPTIONS:\n   --format value, -f value  Select one of: table or json (default: table)\n   \n"
    ));
    let exec = help_of("exec");
    assert!(exec.contains("\n   skiff exec [command options] <container-id> <command> "));
    assert!(exec.contains("\n   --env value, -e value              Set environment"));
    assert!(exec.contains("\n   --cwd value                        Current working"));
    // No options: no OPTIONS section and no "[command options]".
    let state = help_of("state");
    assert!(
        state.contains("\n   skiff state <container-id>\n"),
        "{state}"
    );
    assert!(!state.contains("OPTIONS"), "{state}");
}

#[test]
fn globals_before_and_after_the_subcommand() {
    let c = ok("--log-format=json --root /x --debug state c1");
    assert_eq!(c.flags.log_format, "json");
    assert_eq!(c.flags.root, Some(PathBuf::from("/x")));
    assert!(c.flags.debug);
    let c = ok("state --log l --log-format json --criu c --systemd-cgroup c1");
    assert_eq!(c.flags.log, Some(PathBuf::from("l")));
    assert_eq!(c.flags.criu, Some(PathBuf::from("c")));
    assert!(c.flags.systemd_cgroup && c.flags.log_format == "json");
    // Once before and once after is allowed (the later wins); twice on one side is not.
    assert_eq!(
        ok("--root /a state --root /b c1").flags.root,
        Some("/b".into())
    );
    assert!(err("--debug --debug state c1").contains("cannot be used multiple times"));
    // Globals after the id, even in exec before its command.
    assert_eq!(ok("exec c1 --root /x ls").flags.root, Some("/x".into()));
    let c = ok("state c1");
    assert_eq!(
        (c.flags.log_format.as_str(), c.flags.rootless.as_str()),
        ("text", "auto")
    );
    // --rootless: only before the subcommand; spec has its own.
    assert_eq!(ok("--rootless true state c1").flags.rootless, "true");
    assert!(err("state --rootless true c1").contains("unexpected argument '--rootless'"));
    let c = ok("--rootless=false spec --rootless");
    assert_eq!(c.flags.rootless, "false");
    assert!(matches!(
        c.command,
        Command::Spec(cmd::spec::Args { rootless: true, .. })
    ));
}

#[test]
fn create_and_run() {
    let a = parsed!("create c1", Create).opts;
    assert_eq!(
        (a.bundle, a.preserve_fds, a.id),
        (".".into(), 0, "c1".to_string())
    );
    for line in [
        "create c1 --bundle b",
        "create -b=b c1",
        "create -bb c1",
        "create -b b -- c1",
    ] {
        assert_eq!(
            parsed!(line, Create).opts.bundle,
            PathBuf::from("b"),
            "{line}"
        );
    }
    let a = parsed!(
        "create --bundle=b --pid-file=p --no-pivot --no-new-keyring --preserve-fds 2 --console-socket=s c1",
        Create
    )
    .opts;
    assert_eq!(a.pid_file, Some("p".into()));
    assert_eq!(a.console_socket, Some("s".into()));
    assert!(a.no_pivot && a.no_new_keyring && a.preserve_fds == 2);
    assert_eq!(parsed!("create -- -id", Create).opts.id, "-id");
    assert_eq!(
        parsed!("create --preserve-fds=-1 c1", Create)
            .opts
            .preserve_fds,
        -1
    );
    let r = parsed!("run -d --keep --no-subreaper -b b c1", Run);
    assert!(r.detach && r.keep && r.no_subreaper);
    assert_eq!((r.opts.bundle, r.opts.id), ("b".into(), "c1".to_string()));
    assert!(parsed!("run c1 -d", Run).detach);
    assert!(err("create -id").contains("unexpected argument '-i'"));
    assert!(err("create --bundle a --bundle b c1").contains("'--bundle <DIR>' cannot be used"));
    assert!(err("run --detach=yes c1").contains("unexpected value 'yes' for '--detach'"));
}

#[test]
fn exec_command_starts_after_the_id() {
    let cases: &[(&str, &[&str], bool)] = &[
        ("exec c1 ls -la", &["ls", "-la"], false),
        ("exec c1 -t ls", &["ls"], true),
        ("exec c1 --tty ls", &["ls"], true),
        ("exec c1 ls -t", &["ls", "-t"], false),
        ("exec -t c1 -- ls -la", &["ls", "-la"], true),
        ("exec c1 -- ls -la", &["ls", "-la"], false),
        ("exec -- c1 ls", &["ls"], false),
        ("exec c1", &[], false),
        ("exec c1 --", &[], false),
        ("exec c1 -- --", &["--"], false),
        ("exec c1 ls -- x", &["ls", "--", "x"], false),
        ("exec c1 sh -h", &["sh", "-h"], false),
        ("exec c1 --bogus sh", &["--bogus", "sh"], false),
        ("exec c1 -x sh", &["-x", "sh"], false),
        ("exec c1 - x", &["-", "x"], false),
        ("exec -- c1 -t x", &["-t", "x"], false),
    ];
    for (line, command, tty) in cases {
        let a = parsed!(line, Exec);
        assert_eq!((a.id.as_str(), a.tty), ("c1", *tty), "{line}");
        assert_eq!(a.command, *command, "{line}");
    }
}

#[test]
fn exec_flags_repeated_and_clustered() {
    let a = parsed!("exec -e A=1 --env=B=2 -eC=3 -e=D=4 c1 -e E=5 sh -e F", Exec);
    assert_eq!(a.env, ["A=1", "B=2", "C=3", "D=4", "E=5"]);
    assert_eq!(a.command, ["sh", "-e", "F"]);
    let a = parsed!(
        "exec --cap CAP_SYS_ADMIN -c net_raw -g 1 -g2 --additional-gids=3 c1 sh",
        Exec
    );
    assert_eq!(
        (a.cap, a.additional_gids),
        (
            vec!["CAP_SYS_ADMIN".into(), "net_raw".into()],
            vec![1, 2, 3]
        )
    );
    let a = parsed!("exec -tde A=1 c1 sh", Exec);
    assert!(a.tty && a.detach && a.env == ["A=1"]);
    let a = parsed!(
        "exec --preserve-fds=3 -u 1:2 -p f --cwd /d --pid-file p --process-label l --apparmor a --no-new-privs --ignore-paused --console-socket s c1 x",
        Exec
    );
    assert_eq!(
        (a.preserve_fds, a.user.as_deref(), a.cwd),
        (3, Some("1:2"), Some("/d".into()))
    );
    assert_eq!(
        (a.process, a.pid_file),
        (Some("f".into()), Some("p".into()))
    );
    assert_eq!(
        (a.process_label.as_deref(), a.apparmor.as_deref()),
        (Some("l"), Some("a"))
    );
    assert!(a.no_new_privs && a.ignore_paused && a.console_socket == Some("s".into()));
    let a = parsed!("exec --cgroup memory,pids:sub --cgroup=cpu:/x c1 sh", Exec);
    assert_eq!(a.cgroup, ["memory,pids:sub", "cpu:/x"]);
    assert!(err("exec --bogus c1 sh").contains("unexpected argument '--bogus'"));
    assert!(err("exec -u 1 -u 2 c1 sh").contains("'--user <UID[:GID]>' cannot be used"));
    assert!(err("exec --additional-gids=-3 c1 sh").contains("invalid value '-3'"));
    assert!(err("exec").contains("not provided: <ID>"));
}

#[test]
fn kill_delete_state_pause() {
    let a = parsed!("kill c1", Kill);
    assert_eq!(
        (a.id.as_str(), a.signal.as_str(), a.all),
        ("c1", "SIGTERM", false)
    );
    assert_eq!(parsed!("kill c1 9", Kill).signal, "9");
    for line in [
        "kill -a c1 KILL",
        "kill c1 -a KILL",
        "kill --all c1 KILL",
        "kill c1 KILL --all",
    ] {
        let a = parsed!(line, Kill);
        assert!(a.all && a.signal == "KILL", "{line}");
    }
    assert_eq!(parsed!("kill c1 -- -9", Kill).signal, "-9");
    assert!(err("kill c1 -9").contains("unexpected argument '-9'"));
    assert!(err("kill c1 KILL extra").contains("unexpected argument 'extra'"));
    assert!(err("kill").contains("not provided: <ID>"));
    assert!(parsed!("delete -f c1", Delete).force);
    assert!(parsed!("delete c1 --force", Delete).force);
    assert_eq!(parsed!("state -- --x", State).id, "--x");
    assert_eq!(parsed!("state -", State).id, "-");
    assert_eq!(parsed!("pause c1", Pause).id, "c1");
    assert_eq!(parsed!("resume c1", Resume).id, "c1");
    assert_eq!(parsed!("start c1", Start).id, "c1");
    assert!(err("state c1 c2").contains("unexpected argument 'c2' found"));
    assert!(err("state").contains("not provided: <ID>"));
}

#[test]
fn list_ps_spec() {
    let a = parsed!("list", List);
    assert_eq!((a.format.as_str(), a.quiet), ("table", false));
    for line in [
        "list -f json -q",
        "list --format=json --quiet",
        "list -qf json",
        "list -qfjson",
    ] {
        let a = parsed!(line, List);
        assert!(a.format == "json" && a.quiet, "{line}");
    }
    assert!(err("list --format xml").contains("invalid value 'xml' for '--format <FORMAT>'"));
    assert!(err("list extra").contains("unexpected argument 'extra'"));
    let cases: &[(&str, &str, &[&str])] = &[
        ("ps c1", "table", &[]),
        ("ps -f json c1", "json", &[]),
        ("ps c1 -ef", "table", &["-ef"]),
        ("ps c1 aux", "table", &["aux"]),
        ("ps c1 -- -ef", "table", &["-ef"]),
        ("ps c1 -e -f", "table", &["-e", "-f"]),
        ("ps c1 -f json", "json", &[]),
        ("ps c1 --format json", "json", &[]),
        ("ps c1 -- --format json", "table", &["--format", "json"]),
        ("ps --format json c1 -o pid", "json", &["-o", "pid"]),
    ];
    for (line, format, ps_args) in cases {
        let a = parsed!(line, Ps);
        assert_eq!(a.format, *format, "{line}");
        assert_eq!(a.ps_args, *ps_args, "{line}");
    }
    let a = parsed!("spec", Spec);
    assert_eq!((a.bundle, a.rootless), (".".into(), false));
    let a = parsed!("spec --rootless -b x", Spec);
    assert_eq!((a.bundle, a.rootless), ("x".into(), true));
    assert!(err("spec --rootless=true").contains("unexpected value 'true' for '--rootless'"));
}

#[test]
fn update_and_events() {
    let a = parsed!(
        "update --blkio-weight 10 --cpu-period 1 --cpu-quota=-2 --cpu-share 3 --cpu-rt-period 4 --cpu-rt-runtime 5 --cpuset-cpus 0-1 --cpuset-mems 0 -m 1m --memory-reservation 2k --memory-swap -1 --pids-limit -1 c1",
        Update
    );
    assert_eq!(
        (a.blkio_weight, a.cpu_period, a.cpu_quota),
        (Some(10), Some(1), Some(-2))
    );
    assert_eq!(
        (a.cpu_share, a.cpu_rt_period, a.cpu_rt_runtime),
        (Some(3), Some(4), Some(5))
    );
    assert_eq!(
        (a.cpuset_cpus.as_deref(), a.cpuset_mems.as_deref()),
        (Some("0-1"), Some("0"))
    );
    assert_eq!(
        (a.memory, a.memory_reservation),
        (Some(1 << 20), Some(2048))
    );
    assert_eq!(
        (a.memory_swap, a.pids_limit, a.id.as_str()),
        (Some(-1), Some(-1), "c1")
    );
    assert_eq!(
        parsed!("update -r - c1", Update).resources,
        Some("-".into())
    );
    assert_eq!(
        parsed!("update --resources=f.json c1", Update).resources,
        Some("f.json".into())
    );
    assert_eq!(parsed!("update -m -1 c1", Update).memory, Some(-1));
    assert!(err("update --memory 5q c1").contains("invalid value '5q' for '--memory <MEMORY>'"));
    assert!(err("update --cpu-period x c1").contains("invalid digit"));
    let a = parsed!("events c1", Events);
    assert_eq!(
        (a.stats, a.interval),
        (false, std::time::Duration::from_secs(5))
    );
    let a = parsed!("events --stats --interval 1s c1", Events);
    assert_eq!(
        (a.stats, a.interval),
        (true, std::time::Duration::from_secs(1))
    );
    let a = parsed!("events --interval=100ms c1", Events);
    assert_eq!(a.interval, std::time::Duration::from_millis(100));
    assert!(
        err("events --interval 5 c1").contains("invalid value '5' for '--interval <INTERVAL>'")
    );
    assert!(err("events --stats --stats c1").contains("'--stats' cannot be used multiple times"));
}

#[test]
fn usage_exit_codes_are_runcs() {
    assert_eq!(parse_line("bogus").unwrap_err().exit_code(), 3);
    assert_eq!(parse_line("help bogus").unwrap_err().exit_code(), 3);
    assert_eq!(
        parse_line("update --memory x c1").unwrap_err().exit_code(),
        1
    );
    assert_eq!(parse_line("kill").unwrap_err().exit_code(), 1);
    assert_eq!(parse_line("").unwrap_err().exit_code(), 0);
    assert_eq!(parse_line("--version").unwrap_err().exit_code(), 0);
}

#[test]
fn usage_errors_are_one_line() {
    let cases = [
        ("--bogus state c1", "unexpected argument '--bogus' found"),
        ("state --bogus c1", "unexpected argument '--bogus' found"),
        ("run --version", "unexpected argument '--version' found"),
        (
            "state --root",
            "a value is required for '--root <DIR>' but none was supplied",
        ),
        (
            "--log-format xml state c1",
            "invalid value 'xml' for '--log-format <LOG_FORMAT>'",
        ),
        (
            "--rootless maybe state c1",
            "invalid value 'maybe' for '--rootless <VALUE>'",
        ),
        (
            "--debug=true state c1",
            "unexpected value 'true' for '--debug' found",
        ),
        ("--root= state c1", "invalid value '' for '--root <DIR>'"),
        (
            "create --preserve-fds abc c1",
            "invalid value 'abc' for '--preserve-fds <N>'",
        ),
        (
            "create --preserve-fds 99999999999 c1",
            "invalid value '99999999999'",
        ),
    ];
    for (line, want) in cases {
        let e = err(line);
        assert!(e.starts_with("error: ") && e.contains(want), "{line}: {e}");
        assert_eq!(e.lines().count(), 1, "{line}: {e}");
    }
}
