//! `tmpcopyup` (a crun and runc extension that engines set on tmpfs
//! mounts over image directories): the new tmpfs starts with a copy of the
//! directory it covers. The directory's fd, opened before the mount, still
//! reaches the covered content; the copy walks it with *at() calls only,
//! never following a symlink, so nothing outside the rootfs is read.
//! Runs in: init, right after the tmpfs is mounted (still writable).
use anyhow::{Context, Result};
use nix::dir::{Dir, Type};
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fchmodat, fstatat, mknodat};
use nix::unistd::{Gid, Uid, fchownat};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

const RD: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOFOLLOW);
const DIR: OFlag = RD.union(OFlag::O_DIRECTORY);

/// Copies the directory `from` (any fd of it, O_PATH included) into `to`.
pub fn copy_dir(from: BorrowedFd, to: BorrowedFd) -> Result<()> {
    let src = openat(from, ".", DIR, Mode::empty()).context("tmpcopyup: open the covered dir")?;
    let dst = openat(to, ".", DIR, Mode::empty()).context("tmpcopyup: open the new tmpfs")?;
    copy_entries(src, &dst)
}

fn copy_entries(src: OwnedFd, dst: &OwnedFd) -> Result<()> {
    let mut dir = Dir::from_fd(src).context("tmpcopyup: read dir")?;
    let names: Vec<(std::ffi::CString, Option<Type>)> = dir
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| (e.file_name().to_owned(), e.file_type()))
        .filter(|(n, _)| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    let src = dir.as_fd();
    for (name, _) in names {
        copy_one(src, dst.as_fd(), &name)
            .with_context(|| format!("tmpcopyup: {}", name.to_string_lossy()))?;
    }
    Ok(())
}

fn copy_one(src: BorrowedFd, dst: BorrowedFd, name: &std::ffi::CStr) -> Result<()> {
    let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    if kind == SFlag::S_IFDIR {
        nix::sys::stat::mkdirat(dst, name, Mode::S_IRWXU)?;
        let from = openat(src, name, DIR, Mode::empty())?;
        let to = openat(dst, name, DIR, Mode::empty())?;
        copy_entries(from, &to)?;
    } else if kind == SFlag::S_IFREG {
        let from = openat(src, name, RD, Mode::empty())?;
        let to = openat(
            dst,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )?;
        std::io::copy(&mut std::fs::File::from(from), &mut std::fs::File::from(to))?;
    } else if kind == SFlag::S_IFLNK {
        let target = nix::fcntl::readlinkat(src, name)?;
        nix::unistd::symlinkat(target.as_os_str(), dst, name)?;
    } else {
        // fifo, socket, device node: the same node (mknod may be refused in
        // a user namespace: then the error names it).
        mknodat(dst, name, kind, mode, st.st_rdev)?;
    }
    let ids = (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    );
    fchownat(dst, name, ids.0, ids.1, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if kind != SFlag::S_IFLNK {
        // After chown, which clears set-id bits.
        fchmodat(
            dst,
            name,
            mode,
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        )
        .or_else(|e| match e {
            // Linux has no lchmod: fall back to following, safe for a non-symlink.
            nix::errno::Errno::EOPNOTSUPP => fchmodat(
                dst,
                name,
                mode,
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            ),
            e => Err(e),
        })?;
    }
    Ok(())
}
