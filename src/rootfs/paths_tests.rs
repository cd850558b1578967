//! Unit tests of paths.rs.

use super::*;

#[test]
fn clean_clamps_dotdot_and_makes_absolute() {
    assert_eq!(clean(Path::new("/a/../../b/./c")), PathBuf::from("/b/c"));
    assert_eq!(clean(Path::new("rel/x")), PathBuf::from("/rel/x"));
    assert_eq!(clean(Path::new("/")), PathBuf::from("/"));
}

#[test]
fn masks_directories_with_tmpfs_and_files_with_null() {
    assert_eq!(classify_mask(libc::S_IFDIR | 0o755), Mask::Tmpfs);
    assert_eq!(classify_mask(libc::S_IFREG | 0o644), Mask::DevNull);
    assert_eq!(classify_mask(libc::S_IFCHR | 0o666), Mask::DevNull);
    assert_eq!(classify_mask(libc::S_IFLNK | 0o777), Mask::DevNull);
}

#[test]
fn mkdir_all_stays_inside_root() {
    let dir = std::env::temp_dir().join(format!("skiff-paths-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("r")).unwrap();
    // An absolute symlink must resolve inside the root, not on the host.
    std::fs::create_dir(dir.join("r/escape")).unwrap();
    std::os::unix::fs::symlink("/escape", dir.join("r/link")).unwrap();
    let root = open_root(&dir.join("r")).unwrap();
    mkdir_all(root.as_fd(), Path::new("/link/sub"), Leaf::Dir).unwrap();
    assert!(dir.join("r/escape/sub").is_dir());
    mkdir_all(root.as_fd(), Path::new("/../f/file"), Leaf::File).unwrap();
    assert!(dir.join("r/f/file").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mkdir_all_walks_once_and_follows_dangling_links_inside() {
    let dir = std::env::temp_dir().join(format!("skiff-walk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("r/a")).unwrap();
    std::os::unix::fs::symlink("/nowhere/x", dir.join("r/a/dl")).unwrap();
    std::os::unix::fs::symlink("a", dir.join("r/al")).unwrap();
    let root = open_root(&dir.join("r")).unwrap();
    let t = mkdir_all(root.as_fd(), Path::new("/a/dl/b/c"), Leaf::File).unwrap();
    assert!(dir.join("r/nowhere/x/b/c").is_file() && t.created);
    assert!(!Path::new("/nowhere/x/b").exists(), "created on the host");
    // An existing plain directory: not created, and reachable again
    // through its parent without a walk from the root.
    let t = mkdir_all(root.as_fd(), Path::new("/nowhere/x"), Leaf::Dir).unwrap();
    assert!(
        !t.created && t.at.is_some() && is_dir(t.reopen(root.as_fd()).unwrap().as_fd()).unwrap()
    );
    // A symlinked last component is resolved from the root again.
    let t = mkdir_all(root.as_fd(), Path::new("/al"), Leaf::Dir).unwrap();
    assert!(t.at.is_none() && is_dir(t.fd.as_fd()).unwrap());
    // PlainDir refuses a symlink, even a dangling one, and creates nothing.
    std::os::unix::fs::symlink("/gone", dir.join("r/proc")).unwrap();
    for p in ["/al", "/proc", "/nowhere/x/b/c"] {
        let e = mkdir_all(root.as_fd(), Path::new(p), Leaf::PlainDir).unwrap_err();
        assert!(e.downcast_ref::<NotPlainDir>().is_some(), "{p}: {e:#}");
    }
    assert!(!dir.join("r/gone").exists());
    let e = mkdir_all(root.as_fd(), Path::new("/nowhere/x/b/c/d"), Leaf::Dir).unwrap_err();
    assert!(format!("{e:#}").contains("not a directory"), "{e:#}");
    std::fs::remove_dir_all(&dir).unwrap();
}
