//! The engine configuration of README.md ("Use it with an engine"), read
//! by the tests that use it, so the README cannot drift from what works.
//!
//! A block is a fenced code block whose info string carries a marker,
//! `` ```toml skiff-test:containerd ``. The README writes the install path
//! `/usr/local/sbin/skiff`; `snippet` returns the block with that path
//! replaced by the binary under test.

use crate::runtime;
use std::path::Path;

/// Where the README says skiff is installed.
pub const INSTALL_PATH: &str = "/usr/local/sbin/skiff";

/// The README's block marked `skiff-test:<tag>`, with the install path
/// replaced by the runtime under test. Panics when there is not exactly
/// one such block.
pub fn snippet(tag: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let blocks = find(&text, tag);
    assert_eq!(
        blocks.len(),
        1,
        "README.md must have one block marked skiff-test:{tag}"
    );
    blocks[0].replace(INSTALL_PATH, &runtime().display().to_string())
}

/// The bodies of the fenced blocks whose info string has the word
/// `skiff-test:<tag>`.
fn find(text: &str, tag: &str) -> Vec<String> {
    let marker = format!("skiff-test:{tag}");
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        match (&mut cur, line.strip_prefix("```")) {
            (Some(body), Some("")) => {
                out.push(std::mem::take(body));
                cur = None;
            }
            (Some(body), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, Some(info)) if info.split_whitespace().any(|w| w == marker) => {
                cur = Some(String::new());
            }
            (None, _) => {}
        }
    }
    out
}

/// The one line of the block `tag` that starts with `prog `, split into
/// words (the README's command lines have no quoting), without `prog`.
pub fn command(tag: &str, prog: &str) -> Vec<String> {
    let s = snippet(tag);
    let line = s
        .lines()
        .find(|l| l.starts_with(&format!("{prog} ")))
        .unwrap_or_else(|| panic!("no `{prog}` line in skiff-test:{tag}: {s}"));
    line.split_whitespace().skip(1).map(String::from).collect()
}

/// `conf` with `lines` added right after its `[table]` header (a test's
/// own keys of a table the README's block opens: TOML has no reopening).
pub fn add_to_table(conf: &str, table: &str, lines: &str) -> String {
    let header = format!("{table}\n");
    assert!(conf.contains(&header), "no {table} in {conf}");
    conf.replacen(&header, &format!("{header}{lines}"), 1)
}

/// The containers.conf of podman and buildah: the README's block plus
/// the test's own `[engine]` keys and tables.
pub fn containers_conf(engine: &str, tables: &str) -> String {
    let conf = add_to_table(&snippet("containers-conf"), "[engine]", engine);
    format!("{tables}\n{conf}")
}

/// The markers the tests read; a block the tests do not use fails
/// `readme_blocks_all_used`.
const TAGS: [&str; 7] = [
    "containerd",
    "runtimeclass",
    "ctr",
    "dockerd",
    "containers-conf",
    "podman",
    "buildah",
];

pub fn tests() -> Vec<(&'static str, crate::TestFn)> {
    vec![("readme_blocks_all_used", all_used)]
}

/// Every `skiff-test:` block of the README is one a test reads, and each
/// of those is there once.
fn all_used(_: &mut crate::Ctx) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut seen: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("```"))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|w| w.strip_prefix("skiff-test:"))
        .collect();
    seen.sort();
    let mut want = TAGS.to_vec();
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(
        find("a\n```sh skiff-test:x\nb\n```\n```\nc\n```\n", "x"),
        ["b\n"]
    );
}
