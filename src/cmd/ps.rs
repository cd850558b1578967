//! `skiff ps`: the processes of a container, as host pids.
//! Runs in: the runtime process.
use crate::Globals;
use crate::cli::{Cmd, ID, Opt, Pos, one_of};
use crate::container::Container;
use anyhow::{Context, Result, bail};

#[derive(Debug)]
pub struct Args {
    pub format: String,
    pub id: String,
    pub ps_args: Vec<String>,
}

pub static CLI: Cmd<Args> = Cmd {
    init: || Args {
        format: "table".into(),
        id: String::new(),
        ps_args: Vec::new(),
    },
    opts: &[Opt::value(
        "format",
        Some('f'),
        "FORMAT",
        "Select one of: table or json [default: table] [possible values: table, json]",
        |a, v| one_of(v, &["table", "json"]).map(|f| a.format = f),
    )],
    args: &[
        ID,
        Pos {
            name: "[PS_ARGS]...",
            help: "Options passed to ps(1) for the table format (default -ef)",
        },
    ],
    set_args: |a, mut v| {
        a.id = v.remove(0);
        a.ps_args = v;
    },
};

#[inline(never)]
pub fn run(args: Args, g: &Globals) -> Result<()> {
    let c = Container::load(&g.root, &args.id)?;
    // As runc, whatever the status: a stopped container's cgroup may still
    // hold processes (no pid namespace), and is otherwise empty.
    let mut pids = c.state.cgroup.pids()?;
    pids.sort_unstable();
    if args.format == "json" {
        // runc prints Go's nil slice, `null`, for no processes.
        match pids.is_empty() {
            true => println!("null"),
            false => println!("{}", serde_json::to_string(&pids)?),
        }
        return Ok(());
    }
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args
    };
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    print!(
        "{}",
        filter_ps(&String::from_utf8_lossy(&out.stdout), &pids)?
    );
    Ok(())
}

/// Keeps ps's header and the rows whose PID column is one of `pids`.
fn filter_ps(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    let mut out = format!("{header}\n");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_rows_by_pid_column() {
        let ps = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 43 1 other\n";
        let got = super::filter_ps(ps, &[42]).unwrap();
        assert_eq!(got, "UID PID PPID CMD\nroot 42 1 sleep\n");
        assert!(super::filter_ps("NOPE\n", &[1]).is_err());
    }
}
