//! `skiff list`: the containers under --root.
//! Runs in: the runtime process.
use crate::Globals;
use crate::cgroup::Version;
use crate::cli::{Cmd, Opt, one_of};
use crate::container::{FIFO, OCI_VERSION, STATE_FILE, Status, live_status, validate_id};
use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

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
    // Opened only if there is a container (a missing root lists none).
    let root = match dirs.is_empty() {
        true => None,
        false => Some(File::open(&g.root).with_context(|| format!("open {}", g.root.display()))?),
    };
    let mut rows: Vec<Listed> = Vec::with_capacity(dirs.len());
    if let Some(root_fd) = root.as_ref().map(|f| f.as_fd()) {
        // One buffer for every state file's text, which a row copies only
        // the few strings it shows from.
        let (mut text, mut owners) = (Vec::new(), Owners::default());
        for id in &dirs {
            match read_state(&g.root, root_fd, id, &mut text) {
                Ok(true) => {}
                // Deleted between listing and reading, or not saved yet: skipped.
                Ok(false) => continue,
                Err(e) => {
                    crate::log::warn(&format!("load container {id}: {e:#}"));
                    continue;
                }
            }
            match serde_json::from_slice(&text) {
                Ok(st) => rows.push(Listed::of(st, root_fd, id, &mut owners)),
                // A corrupt state.json: say so, as runc does, instead of hiding it.
                Err(e) => {
                    let path = g.root.join(id).join(STATE_FILE);
                    crate::log::warn(&format!(
                        "load container {id}: parse {}: {e}",
                        path.display()
                    ));
                }
            }
        }
    }
    if args.format == "json" {
        // runc (Go) marshals an empty list as null; scripts compare output.
        match rows.is_empty() {
            true => println!("null"),
            false => println!("{}", serde_json::to_string(&rows)?),
        }
        return Ok(());
    }
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let pid = r.pid.to_string();
            let cells = [
                &*r.id,
                &pid,
                r.status.as_str(),
                &r.bundle,
                &r.created,
                &r.owner,
            ];
            cells.iter().map(|c| c.to_string()).collect()
        })
        .collect();
    print!("{}", table(&header, &rows));
    Ok(())
}

/// What `list` needs of a state.json (container::State's field names),
/// borrowing the file's text: parsing the whole State allocates some
/// sixty times per container (the cgroup's hierarchies and directories),
/// which counts with a thousand containers.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    bundle: Cow<'a, str>,
    #[serde(borrow)]
    rootfs: Cow<'a, str>,
    pid: Option<i32>,
    pid_start: Option<u64>,
    #[serde(borrow)]
    created: Cow<'a, str>,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(borrow)]
    cgroup: PeekCgroup<'a>,
}

/// Of the state's cgroup, what tells a paused container.
#[derive(Deserialize)]
struct PeekCgroup<'a> {
    version: Version,
    #[serde(borrow)]
    hierarchies: Vec<PeekHierarchy<'a>>,
}

#[derive(Deserialize)]
struct PeekHierarchy<'a> {
    version: Version,
    controllers: HasFreezer,
    #[serde(borrow)]
    dir: Cow<'a, str>,
}

impl Peek<'_> {
    /// Cgroup::is_frozen, on the same choice of directory: v1's freezer
    /// hierarchy, v2's first.
    fn frozen(&self) -> bool {
        let cg = &self.cgroup;
        let h = match cg.version {
            Version::V1 => cg
                .hierarchies
                .iter()
                .find(|h| h.version == Version::V1 && h.controllers.0),
            Version::V2 => cg.hierarchies.first(),
        };
        h.is_some_and(|h| crate::cgroup::frozen_at(cg.version, Path::new(&*h.dir)))
    }
}

/// A hierarchy's controller list, read as whether it holds the freezer
/// (no vector kept).
struct HasFreezer(bool);

impl<'de> Deserialize<'de> for HasFreezer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> serde::de::Visitor<'de> for Names {
            type Value = HasFreezer;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of controller names")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<HasFreezer, A::Error> {
                let mut found = false;
                while let Some(name) = seq.next_element::<Cow<'de, str>>()? {
                    found |= name == "freezer";
                }
                Ok(HasFreezer(found))
            }
        }
        d.deserialize_seq(Names)
    }
}

/// A row of `list`: the container's state as `skiff state` prints it,
/// the owner being the state directory's (runc's list, not its state).
struct Listed {
    id: String,
    pid: i32,
    status: Status,
    bundle: String,
    rootfs: String,
    created: String,
    owner: String,
    annotations: HashMap<String, String>,
}

impl Listed {
    fn of(st: Peek, root_fd: BorrowedFd, id: &str, owners: &mut Owners) -> Listed {
        let fifo = format!("{id}/{FIFO}");
        let status = live_status(
            st.pid,
            st.pid_start,
            || st.frozen(),
            || exists_at(root_fd, &fifo),
        );
        Listed {
            pid: status.shown_pid(st.pid),
            status,
            owner: owners.of(root_fd, id),
            id: st.id.into_owned(),
            bundle: st.bundle.into_owned(),
            rootfs: st.rootfs.into_owned(),
            created: st.created.into_owned(),
            annotations: st.annotations,
        }
    }
}

/// State::oci_state's fields, in its order, and the owner.
impl Serialize for Listed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("ociVersion", OCI_VERSION)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("pid", &self.pid)?;
        m.serialize_entry("status", self.status.as_str())?;
        m.serialize_entry("bundle", &self.bundle)?;
        m.serialize_entry("rootfs", &self.rootfs)?;
        m.serialize_entry("created", &self.created)?;
        m.serialize_entry("owner", &self.owner)?;
        if !self.annotations.is_empty() {
            m.serialize_entry("annotations", &self.annotations)?;
        }
        m.end()
    }
}

/// `<root>/<id>/state.json`, read without taking the container's lock: the
/// file is replaced whole by a rename (Container::save), so a reader sees a
/// whole old or new state, never one being written, and a listing never
/// waits behind a `create` or `delete` in progress (runc's list takes no
/// lock either). Being a regular file written once, its first short read
/// is its end. The text goes to `text`; false when the directory holds no
/// state (yet, or any more).
fn read_state(root: &Path, root_fd: BorrowedFd, id: &str, text: &mut Vec<u8>) -> Result<bool> {
    validate_id(id)?;
    let rel = format!("{id}/{STATE_FILE}");
    let path = || root.join(&rel);
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let fd = match nix::fcntl::openat(root_fd, rel.as_str(), flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("open {}", path().display())),
    };
    let (mut f, mut n) = (File::from(fd), 0);
    text.resize(text.len().max(4096), 0);
    loop {
        let asked = text.len() - n;
        let k = f
            .read(&mut text[n..])
            .with_context(|| format!("read {}", path().display()))?;
        n += k;
        if k < asked {
            break;
        }
        text.resize(2 * n, 0);
    }
    text.truncate(n);
    Ok(true)
}

/// Whether `rel` exists under the directory `dir` (not following a last
/// symlink); a path relative to the open root is a shorter walk.
fn exists_at(dir: BorrowedFd, rel: &str) -> bool {
    let at = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
    nix::sys::stat::fstatat(dir, rel, at).is_ok()
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
