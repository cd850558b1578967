//! The man pages cover skiff's real CLI: a page per subcommand, and every
//! long flag of `skiff <cmd> --help` (and the global flags) in its page.
//! Always checks the skiff binary, whatever `$RUNTIME` is.
use std::path::Path;
use std::process::Command;

fn help(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(o.status.success(), "skiff {args:?} --help failed");
    String::from_utf8(o.stdout).unwrap()
}

/// The `--long` flags in a help text.
fn long_flags(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '[' || c == ']')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The subcommands listed under "COMMANDS:" in `skiff --help`.
fn subcommands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("COMMANDS:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help,")
        .collect()
}

fn page(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("man").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_subcommand_and_flag_is_documented() {
    let top = help(&[]);
    let main = page("skiff.8");
    let globals = long_flags(&top);
    for f in &globals {
        assert!(main.contains(&f.replace('-', "\\-")), "skiff.8 lacks {f}");
    }
    let cmds = subcommands(&top);
    assert!(cmds.len() >= 8, "could not parse the subcommands: {top}");
    for cmd in cmds {
        let text = page(&format!("skiff-{cmd}.8"));
        assert!(
            text.contains(".SH NAME") && text.contains(".SH SYNOPSIS"),
            "skiff-{cmd}.8 is not a man page"
        );
        assert!(
            main.contains(&format!("\\fB{cmd}\\fR")),
            "skiff.8 does not list {cmd}"
        );
        // The global flags (which the commands take too) are documented
        // once, in skiff.8.
        for f in long_flags(&help(&[&cmd]))
            .into_iter()
            .filter(|f| f == "--help" || !globals.contains(f))
        {
            assert!(
                text.contains(&f.replace('-', "\\-")),
                "skiff-{cmd}.8 lacks {f}"
            );
        }
    }
}
