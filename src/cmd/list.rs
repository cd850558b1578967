//! `skiff list`: the containers under --root.
//! Runs in: the runtime process.
use crate::Globals;
use crate::cli::{Cmd, Opt, one_of};
use crate::container::{STATE_FILE, peek_state, status_of};
use anyhow::{Context, Result};
use std::os::fd::{AsFd, BorrowedFd};

#[derive(Debug)]
pub struct Args {
    pub format: String,
    pub quiet: bool,
}

pub static CLI: Cmd<Args> = Cmd {
    init: || Args {
        format: "table".into(),
        quiet: false,
    },
    opts: &[
        Opt::value(
            "format",
            Some('f'),
            "FORMAT",
            "Select one of: table or json [default: table] [possible values: table, json]",
            |a, v| one_of(v, &["table", "json"]).map(|f| a.format = f),
        ),
        Opt::flag("quiet", Some('q'), "Display only container IDs", |a| {
            a.quiet = true
        }),
    ],
    args: &[],
    set_args: |_, _| {},
};

#[inline(never)]
pub fn run(args: Args, g: &Globals) -> Result<()> {
    let dirs = entries(&g.root)?;
    if args.quiet {
        let ids = dirs
            .iter()
            .filter(|id| g.root.join(id).join(STATE_FILE).exists());
        ids.for_each(|id| println!("{id}"));
        return Ok(());
    }
    let mut owners = Owners::default();
    let mut states: Vec<serde_json::Value> = Vec::new();
    // Opened only if there is a container (a missing root lists none).
    let root = dirs
        .first()
        .map(|_| std::fs::File::open(&g.root))
        .transpose();
    let root = root.with_context(|| format!("open {}", g.root.display()))?;
    for id in &dirs {
        let Some(root_fd) = root.as_ref().map(|f| f.as_fd()) else {
            break;
        };
        match peek_state(&g.root, root_fd, id) {
            Ok(Some(st)) => {
                let dir = g.root.join(id);
                let mut s = st.oci_state(status_of(&st, &dir));
                // runc's list (not its state) names the state dir's owner.
                s["owner"] = owners.of(root_fd, id).into();
                states.push(s);
            }
            // Deleted between listing and reading, or not saved yet: skipped.
            Ok(None) => {}
            // A corrupt state.json: say so, as runc does, instead of hiding it.
            Err(e) => crate::log::warn(&format!("load container {id}: {e:#}")),
        }
    }
    if args.format == "json" {
        // runc (Go) marshals an empty list as null; scripts compare output.
        match states.is_empty() {
            true => println!("null"),
            false => println!("{}", serde_json::to_string(&states)?),
        }
        return Ok(());
    }
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let rows: Vec<Vec<String>> = states
        .iter()
        .map(|s| {
            ["id", "pid", "status", "bundle", "created", "owner"]
                .iter()
                .map(|k| match &s[*k] {
                    serde_json::Value::String(v) => v.clone(),
                    v => v.to_string(),
                })
                .collect()
        })
        .collect();
    print!("{}", table(&header, &rows));
    Ok(())
}

/// The directories under `root`, sorted: from the directory entries' types,
/// without a stat each (`list` reads each one's state.json next anyway).
fn entries(root: &std::path::Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("read {}", root.display())),
    };
    let mut ids: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    Ok(ids)
}

/// Owner names of state dirs: the user name of their uid (from
/// /etc/passwd, read once per listing), or `#<uid>` as runc prints an
/// owner without a name.
#[derive(Default)]
struct Owners {
    passwd: Option<String>,
    names: std::collections::HashMap<u32, String>,
}

impl Owners {
    /// The owner of the directory `id` under the open root.
    fn of(&mut self, root: BorrowedFd, id: &str) -> String {
        let at = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        let Ok(uid) = nix::sys::stat::fstatat(root, id, at).map(|s| s.st_uid) else {
            return String::new();
        };
        let passwd = self
            .passwd
            .get_or_insert_with(|| std::fs::read_to_string("/etc/passwd").unwrap_or_default());
        let name = self
            .names
            .entry(uid)
            .or_insert_with(|| user_name(passwd, uid).unwrap_or_else(|| format!("#{uid}")));
        name.clone()
    }
}

/// The name of `uid` in /etc/passwd text (the first matching line).
pub fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
    })
}

/// Aligns columns like Go's tabwriter(minwidth 12, padding 3), as runc prints.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let n = cells.len();
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == n {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}", width = (w + 3).max(12)));
            }
        }
        s + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_names_from_passwd() {
        let p = "root:x:0:0:root:/root:/bin/bash\n#c\n\nbob:x:1000:1000::/home/bob:/bin/sh\n";
        assert_eq!(super::user_name(p, 0).as_deref(), Some("root"));
        assert_eq!(super::user_name(p, 1000).as_deref(), Some("bob"));
        assert_eq!(super::user_name(p, 7), None);
    }

    #[test]
    fn table_pads_columns() {
        let t = super::table(&["ID", "PID"], &[vec!["a-very-long-id".into(), "1".into()]]);
        assert_eq!(t, "ID               PID\na-very-long-id   1\n");
    }
}
