//! The userspace resolver on a temp tree: the cases that matter for
//! containment, then a table compared with the kernel's openat2.
use super::*;
use crate::rootfs::paths::{self, FORCE_FALLBACK, Leaf, mkdir_all, open_root, sys_openat2};
use std::os::unix::fs::symlink;

/// A temp dir holding `r/` (the root) and `out/` (a host dir beside it).
struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str) -> Tree {
        // Test names make the tags unique within one test binary.
        let dir = std::env::temp_dir().join(format!("skiff-resolve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("r/dir/sub")).unwrap();
        std::fs::create_dir_all(dir.join("out/dir/sub")).unwrap();
        std::fs::write(dir.join("r/dir/sub/file"), "in").unwrap();
        std::fs::write(dir.join("out/dir/sub/file"), "out").unwrap();
        Tree(dir)
    }
    fn root(&self) -> PathBuf {
        self.0.join("r")
    }
    /// Creates the symlink `r/<at>` -> `target`.
    fn link(&self, target: &str, at: &str) {
        symlink(target, self.root().join(at)).unwrap();
    }
    fn open(&self) -> OwnedFd {
        open_root(&self.root()).unwrap()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// (st_dev, st_ino) of what `fd` refers to, a symlink itself included.
fn id_of(fd: BorrowedFd) -> (u64, u64) {
    let st = fstat(fd).unwrap();
    (st.st_dev, st.st_ino)
}

/// (st_dev, st_ino) of a host path, not following a final symlink.
fn id_at(p: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.dev(), m.ino())
}

fn fallback(root: &OwnedFd, path: &str, flags: OFlag) -> nix::Result<(u64, u64)> {
    open_in_root(root.as_fd(), Path::new(path), flags).map(|fd| id_of(fd.as_fd()))
}

#[test]
fn absolute_symlink_is_clamped_to_root() {
    let t = Tree::new("abs");
    let out = t.0.join("out");
    t.link(out.to_str().unwrap(), "host");
    t.link("/dir", "abs");
    let root = t.open();
    let got = fallback(&root, "abs/sub/file", OFlag::O_PATH);
    assert_eq!(got, Ok(id_at(&t.root().join("dir/sub/file"))));
    // The host path the link names does not exist under the root.
    assert_eq!(
        fallback(&root, "host/dir", OFlag::O_PATH),
        Err(Errno::ENOENT)
    );
    let o = t.0.strip_prefix("/").unwrap().join("out/dir");
    std::fs::create_dir_all(t.root().join(&o)).unwrap();
    let got = fallback(&root, "host/dir", OFlag::O_PATH);
    assert_eq!(got, Ok(id_at(&t.root().join(&o))));
}

#[test]
fn dotdot_is_clamped_at_root() {
    let t = Tree::new("dotdot");
    t.link("../../../../out", "dir/up");
    let root = t.open();
    let want = Ok(id_at(&t.root().join("dir")));
    assert_eq!(fallback(&root, "../../../dir", OFlag::O_PATH), want);
    assert_eq!(
        fallback(&root, "dir/sub/../../../../dir", OFlag::O_PATH),
        want
    );
    assert_eq!(fallback(&root, "..", OFlag::O_PATH), Ok(id_at(&t.root())));
    // Relative link climbing out: lands on r/out, which does not exist.
    assert_eq!(fallback(&root, "dir/up", OFlag::O_PATH), Err(Errno::ENOENT));
}

#[test]
fn symlink_loops_and_long_chains_fail_with_eloop() {
    let t = Tree::new("loop");
    t.link("loop2", "loop1");
    t.link("loop1", "loop2");
    t.link("dir", "l0");
    for i in 1..=40 {
        t.link(&format!("l{}", i - 1), &format!("l{i}"));
    }
    let root = t.open();
    assert_eq!(fallback(&root, "loop1", OFlag::O_PATH), Err(Errno::ELOOP));
    assert_eq!(fallback(&root, "loop1/x", OFlag::O_PATH), Err(Errno::ELOOP));
    // 40 links are allowed (l39 -> ... -> l0 -> dir), the 41st is not.
    let dir = Ok(id_at(&t.root().join("dir")));
    assert_eq!(fallback(&root, "l39", OFlag::O_PATH), dir);
    assert_eq!(fallback(&root, "l40", OFlag::O_PATH), Err(Errno::ELOOP));
}

#[test]
fn nested_relative_symlink_chains() {
    let t = Tree::new("chain");
    t.link("dir/c2", "c1");
    t.link("../c3/", "dir/c2");
    t.link("./dir/sub/.", "c3");
    t.link("sub/file", "dir/f");
    let root = t.open();
    let sub = Ok(id_at(&t.root().join("dir/sub")));
    assert_eq!(fallback(&root, "c1", OFlag::O_PATH), sub);
    assert_eq!(
        fallback(&root, "c1/..", OFlag::O_PATH),
        Ok(id_at(&t.root().join("dir")))
    );
    let file = Ok(id_at(&t.root().join("dir/sub/file")));
    assert_eq!(fallback(&root, "c1/file", OFlag::O_RDONLY), file);
    assert_eq!(fallback(&root, "dir/f", OFlag::O_RDONLY), file);
    assert_eq!(
        fallback(&root, "dir/f/", OFlag::O_PATH),
        Err(Errno::ENOTDIR)
    );
}

#[test]
fn final_symlink_with_nofollow_is_the_link_itself() {
    let t = Tree::new("nofollow");
    t.link("/dir", "abs");
    let root = t.open();
    let nofollow = OFlag::O_PATH | OFlag::O_NOFOLLOW;
    let link = Ok(id_at(&t.root().join("abs")));
    assert_eq!(fallback(&root, "abs", nofollow), link);
    // Only the last component: earlier ones are followed, and so is "abs/".
    let dir = Ok(id_at(&t.root().join("dir")));
    assert_eq!(fallback(&root, "abs/", nofollow), dir);
    assert_eq!(fallback(&root, "abs/sub/..", nofollow), dir);
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW;
    assert_eq!(fallback(&root, "abs", flags), Err(Errno::ELOOP));
    assert_eq!(
        fallback(&root, "abs", nofollow | OFlag::O_DIRECTORY),
        Err(Errno::ENOTDIR)
    );
}

#[test]
fn dangling_final_symlink_is_enoent_and_mkdir_all_follows_it_inside() {
    let t = Tree::new("dangling");
    let out = t.0.join("out/made");
    t.link(out.to_str().unwrap(), "dl");
    t.link("../../../rel/made", "dir/dl");
    let root = t.open();
    assert_eq!(fallback(&root, "dl", OFlag::O_PATH), Err(Errno::ENOENT));
    let link = Ok(id_at(&t.root().join("dl")));
    assert_eq!(
        fallback(&root, "dl", OFlag::O_PATH | OFlag::O_NOFOLLOW),
        link
    );
    // mkdir_all, with openat2 forced off on this thread, creates the
    // targets under the root (runc's securejoin.MkdirAll semantics).
    FORCE_FALLBACK.set(true);
    let abs = mkdir_all(root.as_fd(), Path::new("/dl/sub"), Leaf::Dir);
    let rel = mkdir_all(root.as_fd(), Path::new("/dir/dl/f"), Leaf::File);
    FORCE_FALLBACK.set(false);
    let inside = t.root().join(out.strip_prefix("/").unwrap());
    assert_eq!(id_of(abs.unwrap().as_fd()), id_at(&inside.join("sub")));
    assert_eq!(
        id_of(rel.unwrap().as_fd()),
        id_at(&t.root().join("rel/made/f"))
    );
    assert!(!out.exists(), "created on the host");
}

#[test]
fn refuses_create_and_empty_paths() {
    let t = Tree::new("flags");
    let root = t.open();
    let creat = OFlag::O_CREAT | OFlag::O_WRONLY;
    assert_eq!(fallback(&root, "new", creat), Err(Errno::EINVAL));
    assert_eq!(fallback(&root, "", OFlag::O_PATH), Err(Errno::ENOENT));
}

#[test]
fn a_result_outside_the_root_is_exdev() {
    let t = Tree::new("verify");
    let root = t.open();
    let inside = open_root(&t.root().join("dir")).unwrap();
    let outside = open_root(&t.0.join("out")).unwrap();
    assert_eq!(verify_under_root(root.as_fd(), inside.as_fd()), Ok(()));
    let got = verify_under_root(root.as_fd(), outside.as_fd());
    assert_eq!(got, Err(Errno::EXDEV));
    // "r" is a prefix of "r2" as a string, but not as a path.
    std::fs::create_dir(t.0.join("r2")).unwrap();
    let sibling = open_root(&t.0.join("r2")).unwrap();
    let got = verify_under_root(root.as_fd(), sibling.as_fd());
    assert_eq!(got, Err(Errno::EXDEV));
}

/// What the kernel says, if this kernel (and any filter) has openat2.
fn kernel(root: &OwnedFd, path: &str, flags: OFlag) -> nix::Result<(u64, u64)> {
    sys_openat2(root.as_fd(), Path::new(path), flags).map(|fd| id_of(fd.as_fd()))
}

const FLAGS: [OFlag; 6] = [
    OFlag::O_PATH,
    OFlag::O_PATH.union(OFlag::O_NOFOLLOW),
    OFlag::O_PATH.union(OFlag::O_DIRECTORY),
    OFlag::O_PATH
        .union(OFlag::O_DIRECTORY)
        .union(OFlag::O_NOFOLLOW),
    OFlag::O_RDONLY,
    OFlag::O_RDONLY.union(OFlag::O_NOFOLLOW),
];

/// Every path with every flag set: same inode, or same errno, as openat2.
fn compare(root: &OwnedFd, paths: &[&str]) {
    if kernel(root, ".", OFlag::O_PATH).is_err() {
        eprintln!("SKIP: no openat2 here to compare with");
        return;
    }
    for p in paths {
        for f in FLAGS {
            let want = kernel(root, p, f);
            let got = fallback(root, p, f);
            assert_eq!(got, want, "{p:?} with {f:?}");
        }
    }
}

/// (target, link) pairs under the root of `agrees_with_openat2_on_a_hostile_tree`.
const HOSTILE_LINKS: &[(&str, &str)] = &[
    ("/dir", "abs"),
    ("/../../..", "escape"),
    ("../../../../..", "dir/up"),
    ("loop2", "loop1"),
    ("loop1", "loop2"),
    ("dir/c2", "c1"),
    ("../c3/", "dir/c2"),
    ("./dir/sub/.", "c3"),
    ("nowhere/x", "dangling"),
    ("dir/sub/file", "filelink"),
    (".", "self"),
    ("sub/", "dir/trail"),
    ("/proc/self/root", "procroot"),
    ("dir", "l0"),
];

/// Looked up in that tree with every flag set of `FLAGS`.
const HOSTILE_PATHS: &[&str] = &[
    ".",
    "/",
    "..",
    "../../..",
    "dir",
    "dir/",
    "//dir//sub///file",
    "./dir/./sub",
    "dir/sub/file",
    "dir/sub/file/",
    "dir/sub/file/..",
    "abs",
    "abs/",
    "abs/sub",
    "abs/sub/../..",
    "escape",
    "escape/dir",
    "dir/up",
    "dir/up/dir/sub",
    "host",
    "host/dir",
    "loop1",
    "loop1/x",
    "c1",
    "c1/",
    "c1/file",
    "c1/..",
    "dangling",
    "dangling/",
    "filelink",
    "filelink/",
    "self/self/dir",
    "dir/trail",
    "dir/trail/file",
    "procroot",
    "procroot/etc",
    "l39",
    "l39/sub",
    "l40",
    "missing",
    "missing/x",
    "dir/sub/../../abs/sub/../..",
];

#[test]
fn agrees_with_openat2_on_a_hostile_tree() {
    let t = Tree::new("table");
    let out = t.0.join("out");
    t.link(out.to_str().unwrap(), "host");
    for (target, at) in HOSTILE_LINKS {
        t.link(target, at);
    }
    // l40 -> l39 -> ... -> l0 -> dir: 41 links, one more than allowed.
    for i in 1..=40 {
        t.link(&format!("l{}", i - 1), &format!("l{i}"));
    }
    compare(&t.open(), HOSTILE_PATHS);
}

#[test]
fn agrees_with_openat2_on_procfs_magic_links() {
    let root = open_root(Path::new("/")).unwrap();
    let fd = format!("proc/self/fd/{}", root.as_raw_fd());
    compare(
        &root,
        &[
            "proc/self",
            "proc/self/status",
            "proc/mounts",
            "proc/thread-self/status",
            "proc/self/exe",
            "proc/self/cwd",
            "proc/self/cwd/..",
            "proc/self/root/etc",
            "proc/self/ns/mnt",
            &fd,
            "proc/thread-self/fd",
            "/proc/self/fd/../exe",
        ],
    );
}

#[test]
fn openat2_dispatch_uses_the_fallback_when_forced() {
    let t = Tree::new("dispatch");
    t.link("/dir", "abs");
    let root = t.open();
    FORCE_FALLBACK.set(true);
    let got = paths::openat2(root.as_fd(), Path::new("abs/sub"), OFlag::O_PATH);
    FORCE_FALLBACK.set(false);
    assert_eq!(
        id_of(got.unwrap().as_fd()),
        id_at(&t.root().join("dir/sub"))
    );
}
