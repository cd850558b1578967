//! The completion scripts `skiff completion bash|zsh` writes, loaded into
//! the real shells: bash runs `_skiff` with COMP_WORDS/COMP_CWORD set as
//! its completion would, zsh completes a line typed into an interactive
//! shell in a pty (fixtures/complete.zsh). The expectations come from
//! `--help` and from a live container, not from the tables the scripts
//! are written from. Always the skiff binary: runc has no such command.
use crate::{Bundle, Rt, TempDir, is_skiff, output, require_root, skip};
use std::path::Path;
use std::process::Command;

fn skiff() -> &'static str {
    env!("CARGO_BIN_EXE_skiff")
}

fn script(shell: &str) -> String {
    let mut c = Command::new(skiff());
    c.args(["completion", shell]);
    let o = output(c).check("skiff completion");
    assert!(o.stdout.len() > 1000, "{o:?}");
    o.stdout
}

/// What bash's `_skiff` puts in COMPREPLY for `words` (the last one is
/// the word at the cursor); `words[0]` is the skiff binary.
fn bash(dir: &Path, words: &[&str]) -> Vec<String> {
    let file = dir.join("skiff.bash");
    if !file.exists() {
        std::fs::write(&file, script("bash")).unwrap();
    }
    let mut c = Command::new("bash");
    c.arg("--norc").arg("-c").arg(
        r#"source "$0" || exit 9
           complete -p skiff >/dev/null || exit 8
           COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
           _skiff; printf '%s\n' "${COMPREPLY[@]}""#,
    );
    c.arg(&file).arg(skiff()).args(words);
    let o = output(c).check(&format!("bash completion of {words:?}"));
    let mut v: Vec<String> = o.stdout.lines().map(String::from).collect();
    v.retain(|w| !w.is_empty());
    v.sort();
    v
}

/// The long options and commands a help text lists.
fn listed(help: &str, section: &str) -> Vec<String> {
    let body = help.split(section).nth(1).unwrap_or_default();
    body.lines()
        .take_while(|l| l.starts_with("   ") && !l.trim().is_empty())
        .flat_map(|l| l.split("  ").find(|s| !s.is_empty()).map(str::trim))
        .flat_map(|c| c.split(", "))
        .map(|w| w.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

fn help(args: &[&str]) -> String {
    let mut c = Command::new(skiff());
    c.args(args).arg("--help");
    output(c).check("--help").stdout
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

#[test]
fn bash_completes_commands_flags_and_values() {
    let dir = TempDir::new("bash-completion");
    let d = dir.path();
    // Every command in `skiff --help` (and `help`), and only those.
    let top = help(&[]);
    // `h` is help's alias: completion offers `help` only.
    let mut cmds = sorted(listed(&top, "\nCOMMANDS:\n"));
    cmds.retain(|c| c != "h");
    assert!(cmds.contains(&"completion".to_string()), "{top}");
    assert_eq!(bash(d, &[""]), cmds);
    assert_eq!(bash(d, &["cr"]), ["create"]);
    assert_eq!(bash(d, &["help", "del"]), ["delete"]);
    // create's flags, short and long, are its --help's and the globals
    // that go after a command (all of `skiff --help`'s but --rootless and
    // --version).
    let mut want = listed(&help(&["create"]), "\nOPTIONS:\n");
    want.extend(
        listed(&top, "\nGLOBAL OPTIONS:\n")
            .into_iter()
            .filter(|f| !["--rootless", "--version", "-v"].contains(&f.as_str())),
    );
    assert_eq!(bash(d, &["create", "-"]), sorted(want));
    assert_eq!(
        bash(d, &["create", "--p"]),
        ["--pid-file", "--preserve-fds"]
    );
    assert_eq!(bash(d, &["--debug", "create", "--b"]), ["--bundle"]);
    // Values: the possible ones, in both `--opt v` and `--opt=v` forms
    // (bash splits the word at `=`); directories for --bundle, files for
    // --pid-file.
    assert_eq!(bash(d, &["--log-format", ""]), ["json", "text"]);
    assert_eq!(bash(d, &["--log-format", "=", "j"]), ["json"]);
    assert_eq!(bash(d, &["list", "--format", "="]), ["json", "table"]);
    assert_eq!(bash(d, &["completion", ""]), ["bash", "zsh"]);
    std::fs::create_dir(d.join("bundle-dir")).unwrap();
    std::fs::write(d.join("bundle-file"), "").unwrap();
    let prefix = d.join("bundle-").display().to_string();
    let at = |n: &str| d.join(n).display().to_string();
    assert_eq!(bash(d, &["run", "--bundle", &prefix]), [at("bundle-dir")]);
    assert_eq!(
        bash(d, &["create", "--pid-file", &prefix]),
        [at("bundle-dir"), at("bundle-file")]
    );
    // exec's command is the container's: nothing, not exec's flags.
    assert_eq!(bash(d, &["exec", "x", "sh", "-"]), Vec::<String>::new());
    assert_eq!(bash(d, &["exec", "x", "-t"]), ["-t"]);
}

#[test]
fn bash_completes_live_container_ids_and_signals() {
    require_root!();
    if !is_skiff() {
        skip!("the completion scripts list containers with skiff's own `list -q`");
    }
    let (rt, b) = (Rt::new(), Bundle::new());
    let id = rt.sleeper(&b);
    let dir = TempDir::new("bash-ids");
    let d = dir.path();
    let root = rt.root.path().display().to_string();
    let prefix = &id[..id.len() - 2];
    // The ids under the --root on the line, in every spelling of it.
    assert_eq!(bash(d, &["--root", &root, "kill", prefix]), [id.as_str()]);
    assert_eq!(bash(d, &["--root", "=", &root, "state", ""]), [id.as_str()]);
    assert_eq!(bash(d, &["exec", "--root", &root, ""]), [id.as_str()]);
    // Another root has other containers; create names a new one.
    assert!(!bash(d, &["kill", prefix]).contains(&id));
    assert!(bash(d, &["--root", &root, "create", ""]).is_empty());
    // Signals after the id: names as kill takes them.
    let sigs = bash(d, &["--root", &root, "kill", &id, ""]);
    for s in ["KILL", "SIGKILL", "TERM", "SIGTERM", "HUP", "USR1"] {
        assert!(sigs.contains(&s.to_string()), "{s} not in {sigs:?}");
    }
    assert_eq!(
        bash(d, &["--root", &root, "kill", "-a", &id, "SIGU"]),
        ["SIGURG", "SIGUSR1", "SIGUSR2"]
    );
}

/// Where zsh is: the scripts install it (scripts/test.sh).
fn zsh_or_skip() -> Option<&'static str> {
    let found = ["/usr/bin/zsh", "/bin/zsh"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if found.is_none() && std::env::var("REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
        panic!("zsh is missing: scripts/test.sh installs it (apt_need zsh zsh)");
    }
    found
}

/// What zsh offers for `line` typed after `skiff ` (fixtures/complete.zsh),
/// with `_skiff` autoloaded from $fpath as `make install` puts it.
fn zsh(zsh: &str, dir: &Path, line: &str) -> Vec<String> {
    let fp = dir.join("fpath");
    if !fp.exists() {
        std::fs::create_dir(&fp).unwrap();
        std::fs::write(fp.join("_skiff"), script("zsh")).unwrap();
    }
    let bin = Path::new(skiff()).parent().unwrap();
    let mut c = Command::new(zsh);
    c.arg("-f")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/integration/fixtures/complete.zsh"
        ))
        .args([&fp, bin, dir])
        .arg(format!("skiff {line}"));
    let o = output(c).check(&format!("zsh completion of {line:?}"));
    sorted(o.stdout.lines().map(String::from).collect())
}

#[test]
fn zsh_completes_commands_flags_and_values() {
    let Some(z) = zsh_or_skip() else {
        skip!("zsh is not installed");
    };
    let dir = TempDir::new("zsh-completion");
    let d = dir.path();
    let top = help(&[]);
    let mut cmds = sorted(listed(&top, "\nCOMMANDS:\n"));
    cmds.retain(|c| c != "h");
    assert_eq!(zsh(z, d, ""), cmds);
    assert_eq!(zsh(z, d, "cr"), ["create"]);
    let mut want = listed(&help(&["update"]), "\nOPTIONS:\n");
    want.extend(
        listed(&top, "\nGLOBAL OPTIONS:\n")
            .into_iter()
            .filter(|f| !["--rootless", "--version", "-v"].contains(&f.as_str())),
    );
    assert_eq!(zsh(z, d, "update x -"), sorted(want));
    assert_eq!(zsh(z, d, "create --b"), ["--bundle"]);
    assert_eq!(zsh(z, d, "--log-format "), ["json", "text"]);
    assert_eq!(zsh(z, d, "list --format="), ["json", "table"]);
    assert_eq!(zsh(z, d, "completion "), ["bash", "zsh"]);
    assert_eq!(zsh(z, d, "kill x SIGU"), ["SIGURG", "SIGUSR1", "SIGUSR2"]);
    std::fs::create_dir(d.join("bundle-dir")).unwrap();
    std::fs::write(d.join("bundle-file"), "").unwrap();
    let prefix = d.join("bundle-").display().to_string();
    assert_eq!(zsh(z, d, &format!("run --bundle {prefix}")), ["bundle-dir"]);
}

#[test]
fn zsh_completes_live_container_ids() {
    require_root!();
    if !is_skiff() {
        skip!("the completion scripts list containers with skiff's own `list -q`");
    }
    let Some(z) = zsh_or_skip() else {
        skip!("zsh is not installed");
    };
    let (rt, b) = (Rt::new(), Bundle::new());
    let id = rt.sleeper(&b);
    let dir = TempDir::new("zsh-ids");
    let d = dir.path();
    let root = rt.root.path().display();
    let prefix = &id[..id.len() - 2];
    assert_eq!(
        zsh(z, d, &format!("--root {root} kill {prefix}")),
        [id.as_str()]
    );
    assert_eq!(
        zsh(z, d, &format!("pause --root={root} {prefix}")),
        [id.as_str()]
    );
    assert!(!zsh(z, d, &format!("kill {prefix}")).contains(&id));
}
