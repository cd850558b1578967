//! `skiff exec`: run a new process inside a running container: its
//! namespaces, its cgroup, and the process settings of config.json (or of
//! a `--process` file), with runc's overrides from the flags.
//! Runs in: the runtime process.
use crate::Globals;
use crate::cli::{Cmd, ID, Opt, Pos, number, path, string};
use crate::container::{Container, Status};
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{Capabilities, Capability, Process};
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, Default)]
pub struct Args {
    pub console_socket: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub tty: bool,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub process: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub process_label: Option<String>,
    pub apparmor: Option<String>,
    pub no_new_privs: bool,
    pub cap: Vec<String>,
    pub preserve_fds: i32,
    pub ignore_paused: bool,
    pub cgroup: Vec<String>,
    pub id: String,
    pub command: Vec<String>,
}

pub static CLI: Cmd<Args> = Cmd {
    init: Args::default,
    opts: &[
        Opt::value(
            "console-socket",
            None,
            "PATH",
            "Path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal",
            |a, v| path(v).map(|p| a.console_socket = Some(p)),
        ),
        Opt::value(
            "cwd",
            None,
            "DIR",
            "Current working directory in the container",
            |a, v| path(v).map(|p| a.cwd = Some(p)),
        ),
        Opt::many(
            "env",
            Some('e'),
            "NAME=VALUE",
            "Set environment variables (NAME=value), repeatable",
            |a, v| string(v).map(|s| a.env.push(s)),
        ),
        Opt::flag("tty", Some('t'), "Allocate a pseudo-TTY", |a| a.tty = true),
        Opt::value(
            "user",
            Some('u'),
            "UID[:GID]",
            "UID (format: <uid>[:<gid>])",
            |a, v| string(v).map(|s| a.user = Some(s)),
        ),
        Opt::many(
            "additional-gids",
            Some('g'),
            "GID",
            "Additional gids, repeatable",
            |a, v| number(v).map(|n| a.additional_gids.push(n)),
        ),
        Opt::value(
            "process",
            Some('p'),
            "FILE",
            "Path to the process.json",
            |a, v| path(v).map(|p| a.process = Some(p)),
        ),
        Opt::flag(
            "detach",
            Some('d'),
            "Detach from the container's process",
            |a| a.detach = true,
        ),
        Opt::value(
            "pid-file",
            None,
            "FILE",
            "Specify the file to write the process id to",
            |a, v| path(v).map(|p| a.pid_file = Some(p)),
        ),
        Opt::value(
            "process-label",
            None,
            "LABEL",
            "Set the asm process label for the process commonly used with selinux",
            |a, v| string(v).map(|s| a.process_label = Some(s)),
        ),
        Opt::value(
            "apparmor",
            None,
            "PROFILE",
            "Set the apparmor profile for the process",
            |a, v| string(v).map(|s| a.apparmor = Some(s)),
        ),
        Opt::flag(
            "no-new-privs",
            None,
            "Set the no new privileges value for the process",
            |a| a.no_new_privs = true,
        ),
        Opt::many(
            "cap",
            Some('c'),
            "CAP",
            "Add a capability to the bounding set for the process, repeatable",
            |a, v| string(v).map(|s| a.cap.push(s)),
        ),
        Opt::value(
            "preserve-fds",
            None,
            "N",
            "Pass N additional file descriptors to the process [default: 0]",
            |a, v| number(v).map(|n| a.preserve_fds = n),
        ),
        Opt::many(
            "cgroup",
            None,
            "[CONTROLLER[,CONTROLLER]:]PATH",
            "Run the process in an (existing) sub-cgroup of the container's cgroup, repeatable with a CONTROLLER: prefix (cgroup v1)",
            |a, v| string(v).map(|s| a.cgroup.push(s)),
        ),
        Opt::flag(
            "ignore-paused",
            None,
            "Allow exec in a paused container",
            |a| a.ignore_paused = true,
        ),
    ],
    args: &[
        ID,
        Pos {
            name: "[COMMAND]...",
            help: "The command and its arguments",
        },
    ],
    set_args: |a, mut v| {
        a.id = v.remove(0);
        a.command = v;
    },
};

/// runc's getProcess: a --process file as is, or config.json's process
/// with the command, env, cwd, user, caps, tty and NNP flags applied.
fn build_process(a: &Args, spec_process: Option<Process>) -> Result<Process> {
    if let Some(f) = &a.process {
        let text = std::fs::read(f).with_context(|| format!("read --process {}", f.display()))?;
        let mut p = parse_process_file(&crate::capnames::screen(&text, false), spec_process)
            .with_context(|| format!("--process {}", f.display()))?;
        if a.tty {
            p.set_terminal(Some(true));
        }
        dedup_env(&mut p);
        return Ok(p);
    }
    let mut p = spec_process.context("config.json has no process")?;
    if a.command.is_empty() {
        bail!("exec: no command given");
    }
    p.set_args(Some(a.command.clone()));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    dedup_env(&mut p);
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, ""));
        p.user_mut().set_uid(
            uid.parse()
                .with_context(|| format!("--user: bad uid {uid:?}"))?,
        );
        if !gid.is_empty() {
            p.user_mut().set_gid(
                gid.parse()
                    .with_context(|| format!("--user: bad gid {gid:?}"))?,
            );
        }
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    add_caps(&mut p, &a.cap)?;
    p.set_terminal(Some(a.tty));
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

/// A --process file as runc reads it: `user` may be left out (uid 0, gid 0,
/// Go's zero value), and so may `capabilities` (the container's, from
/// config.json, as runc's init falls back to); `cwd` and `args` are
/// required, with runc's errors.
fn parse_process_file(text: &[u8], spec_process: Option<Process>) -> Result<Process> {
    let mut v: serde_json::Value = serde_json::from_slice(text).context("parse")?;
    crate::spec::policy::respell_sched_flags(&mut v);
    let obj = v.as_object_mut().context("parse: not a JSON object")?;
    obj.entry("user")
        .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    match obj.get("cwd").and_then(|c| c.as_str()) {
        None | Some("") => bail!("cwd: must not be empty"),
        Some(c) if !c.starts_with('/') => bail!("cwd: must be an absolute path, not {c:?}"),
        Some(_) => {}
    }
    let (mut p, unknown): (Process, _) = match crate::spec::deserialize_checked(v.clone()) {
        Ok(r) => r,
        Err(e) => {
            // A bad enumeration or CPU list: serde names the value, not the field.
            crate::spec::policy::check_raw(&serde_json::json!({ "process": v }))?;
            return Err(e).context("parse");
        }
    };
    crate::spec::log_unknown("--process", &unknown);
    if p.capabilities().is_none() {
        p.set_capabilities(spec_process.and_then(|s| s.capabilities().clone()));
    }
    Ok(p)
}

/// `spec::dedup_env` on the process's env: `--env NAME=x` replaces NAME.
fn dedup_env(p: &mut Process) {
    if let Some(env) = p.env().as_ref() {
        p.set_env(Some(crate::spec::dedup_env(env)));
    }
}

/// --cap adds to bounding, effective and permitted (and ambient when the
/// spec has inheritable caps, since ambient needs them), as in runc.
fn add_caps(p: &mut Process, caps: &[String]) -> Result<()> {
    if caps.is_empty() {
        return Ok(());
    }
    // runc's rule: only canonical names of capabilities this kernel has;
    // anything else is skipped with a warning (src/capnames.rs).
    let (mut last, mut held) = (None, crate::capnames::Held::default());
    let parsed: Vec<Capability> = caps
        .iter()
        .filter(
            |c| match crate::capnames::grant_refusal(c, &mut last, &mut held) {
                None => true,
                Some(why) => {
                    crate::log::warn(&format!("--cap: ignoring {c:?}: {why}"));
                    false
                }
            },
        )
        .map(|c| {
            Capability::from_str(c.strip_prefix("CAP_").unwrap_or(c))
                .with_context(|| format!("--cap: unknown capability {c:?}"))
        })
        .collect::<Result<_>>()?;
    let mut c = p
        .capabilities()
        .clone()
        .unwrap_or_else(crate::init::user::no_caps);
    let add = |s: &Option<Capabilities>| -> Option<Capabilities> {
        let mut s = s.clone().unwrap_or_default();
        s.extend(parsed.iter().copied());
        Some(s)
    };
    c.set_bounding(add(c.bounding()));
    c.set_effective(add(c.effective()));
    c.set_permitted(add(c.permitted()));
    if c.inheritable().as_ref().is_some_and(|i| !i.is_empty()) {
        c.set_ambient(add(c.ambient()));
    }
    p.set_capabilities(Some(c));
    Ok(())
}

#[inline(never)]
pub fn run(a: Args, g: &Globals) -> Result<i32> {
    let c = Container::load(&g.root, &a.id)?;
    let status = c.status();
    match status {
        Status::Running | Status::Created => {}
        Status::Paused if a.ignore_paused => {}
        Status::Paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        s => bail!("cannot exec in a {} container", s.as_str()),
    }
    let spec = crate::spec::load(&c.state.bundle)?;
    let mut process = build_process(&a, spec.process().clone())?;
    if let Some(l) = &a.apparmor {
        process.set_apparmor_profile(Some(l.clone()));
    }
    if let Some(l) = &a.process_label {
        process.set_selinux_label(Some(l.clone()));
    }
    let plan = crate::plan_exec::plan_exec(
        &c,
        status,
        &spec,
        process,
        &crate::plan_exec::ExecOpts {
            process_file: a.process.is_some(),
            console_socket: a.console_socket.is_some(),
            detach: a.detach,
            cgroup: &a.cgroup,
            preserve_fds: a.preserve_fds,
        },
    )?;
    let terminal = plan.process.terminal().unwrap_or(false);
    // A foreground exec with a terminal is its own console socket.
    let (console, own_console) = crate::tty::console_socket(a.console_socket.as_deref(), terminal)?;
    if !a.detach {
        nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    }
    let state = c.oci_state(status);
    let child = crate::launch::exec(&plan, console, c.lock_fd(), &state)?;
    crate::log::phase("exec-done");
    if let Some(p) = &a.pid_file {
        crate::launch::write_pid_file_at(p, child)?;
    }
    drop(c);
    if a.detach {
        return Ok(0);
    }
    let master = own_console
        .as_ref()
        .map(crate::tty::recv_master)
        .transpose()?;
    let set = super::run::block_signals()?;
    let child = nix::unistd::Pid::from_raw(child);
    match master {
        Some(m) => crate::tty::proxy(m, child, &set),
        None => super::run::wait_forwarding(child, &set),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_flags_replace_the_specs_entries() {
        let mut p = Process::default();
        let env = ["PATH=/bin", "A=1", "MY_VAR=spec", "B=2", "MY_VAR=spec2"];
        p.set_env(Some(env.iter().map(|s| s.to_string()).collect()));
        let a = Args {
            command: vec!["env".into()],
            env: ["MY_VAR=cli", "C=3", "A=cliA", "C=4"]
                .map(String::from)
                .to_vec(),
            ..Args::default()
        };
        let p = build_process(&a, Some(p)).unwrap();
        // runc 1.1.5's order: first position, last value.
        assert_eq!(
            p.env().as_deref().unwrap(),
            ["PATH=/bin", "A=cliA", "MY_VAR=cli", "B=2", "C=4"]
        );
    }
}
