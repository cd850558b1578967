//! Runs in: any process. The one /proc/self/mountinfo parser (proc(5)),
//! shared by the cgroup layout detector and the rootfs code.

use std::path::PathBuf;

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub root: String,
    pub mount_point: PathBuf,
    /// Optional fields such as "shared:1" or "master:2".
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    pub super_opts: String,
}

/// This process's mount table.
pub fn read() -> anyhow::Result<Vec<MountInfo>> {
    Ok(parse(&read_text()?))
}

fn read_text() -> anyhow::Result<String> {
    use anyhow::Context;
    crate::procfs::read_text("/proc/self/mountinfo").context("read /proc/self/mountinfo")
}

/// The runtime's mount table as this process first read it, for where the
/// cgroup hierarchies are mounted: the rootfs plan (a `cgroup` mount) and
/// the cgroup resolve both need it, and no skiff process mounts or
/// unmounts a hierarchy on the host. Not for anything that runs after
/// mounts of its own (init reads `read()` afresh).
pub fn host_text() -> anyhow::Result<&'static str> {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(t) = TEXT.get() {
        return Ok(t);
    }
    let text = read_text()?;
    Ok(TEXT.get_or_init(|| text))
}

/// Pure: parses mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let (pre, post) = line.split_once(" - ")?;
    // ID, parent ID, major:minor, root, mount point, options, optional...
    let mut pre = pre.split(' ').skip(3);
    let (root, point, _options) = (pre.next()?, pre.next()?, pre.next()?);
    // filesystem type, source, super options
    let mut post = post.split(' ');
    let (fstype, source, super_opts) = (post.next()?, post.next()?, post.next()?);
    Some(MountInfo {
        root: unescape(root),
        mount_point: PathBuf::from(unescape(point)),
        optional: pre.map(String::from).collect(),
        fstype: fstype.to_string(),
        source: unescape(source),
        super_opts: super_opts.to_string(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as \ooo (three octal
/// digits, at most \377); anything else is kept as it is.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = match b.get(i + 1..i + 4) {
            Some(&[d0 @ b'0'..=b'3', d1 @ b'0'..=b'7', d2 @ b'0'..=b'7']) => {
                Some((d0 - b'0') * 64 + (d1 - b'0') * 8 + (d2 - b'0'))
            }
            _ => None,
        };
        match (b[i], oct) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_escapes() {
        let m = parse(
            "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
             50 27 0:40 /sub /mnt/with\\040space\\134 rw master:3 shared:4 - ext4 /dev/x rw\n\
             51 27 0:41 / /a\\777\\+12\\04 rw - tmpfs tmpfs rw\n\
             short line - x\n",
        );
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].optional, vec!["shared:1"]);
        assert_eq!(m[1].mount_point, PathBuf::from("/mnt/with space\\"));
        assert_eq!((m[1].root.as_str(), m[1].optional.len()), ("/sub", 2));
        assert_eq!(
            (m[1].fstype.as_str(), m[1].source.as_str()),
            ("ext4", "/dev/x")
        );
        // Not an escape: kept verbatim (no overflow, no sign).
        assert_eq!(m[2].mount_point, PathBuf::from("/a\\777\\+12\\04"));
    }
}
