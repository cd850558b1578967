//! Checked writes to /proc files, for the runtime (a child's id maps,
//! `uidmap.rs`) and for init (its own attr, oom and sysctl files).
//! Runs in: the runtime process, stage-1 and init.
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// Writes a file under /proc after checking that the open fd really is on
/// procfs, so a container-controlled mount over /proc cannot redirect the
/// write (CVE-2025-52881 class).
pub fn proc_write(rel: &str, value: &str) -> Result<()> {
    let path = format!("/proc/{rel}");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .with_context(|| format!("open {path}"))?;
    let st = nix::sys::statfs::fstatfs(&f).with_context(|| format!("statfs {path}"))?;
    if st.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        bail!("{path} is not on procfs");
    }
    (&f).write_all(value.as_bytes())
        .with_context(|| format!("write {path}"))
}

/// Reads a small file whole, for /proc and cgroupfs files.
/// std's `read_to_string` sizes its buffer from fstat, which says 0 for
/// these, and so reads 32 bytes, then 32, 64, 128...: a /proc file's
/// seq_file renders its text again for every read, and mountinfo took 9
/// reads. Here: one open (the system call itself: musl's `open` adds an
/// fcntl for O_CLOEXEC), reads of at least 4 KiB, and no fstat.
pub fn read_text(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let mut f = open_read(path.as_ref())?;
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    loop {
        if n == buf.len() {
            buf.resize(n * 2, 0);
        }
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    String::from_utf8(buf).map_err(|e| Error::new(ErrorKind::InvalidData, e))
}

/// The one line of a one-line kernel file (a cgroup's freezer.state or
/// cgroup.freeze), trimmed. Reading stops at the newline: a seq file
/// returns such a file whole in the first read, so no second read is
/// spent on seeing its end (`list` reads one per live container).
pub fn read_line(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::{ErrorKind, Read};
    let mut f = open_read(path)?;
    let (mut text, mut buf) = (Vec::new(), [0u8; 64]);
    while !text.ends_with(b"\n") {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => text.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let text = String::from_utf8_lossy(&text);
    Ok(text.trim().to_string())
}

/// Opens `path` read-only and close-on-exec with the one system call
/// (musl's `open`, under std's `File::open`, adds an fcntl for O_CLOEXEC).
pub fn open_read(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::io::{Error, ErrorKind};
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::from(ErrorKind::InvalidInput))?;
    // SAFETY: openat reads a NUL-terminated path; returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us alone.
    Ok(unsafe { std::fs::File::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod read_tests {
    use super::read_text;

    #[test]
    fn reads_files_larger_than_the_first_buffer_and_proc_files() {
        let dir = std::env::temp_dir().join(format!("skiff-read-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("big");
        let text: String = (0..3000).map(|i| format!("{i}\n")).collect();
        std::fs::write(&p, &text).unwrap();
        assert_eq!(read_text(&p).unwrap(), text);
        std::fs::write(&p, "").unwrap();
        assert_eq!(read_text(&p).unwrap(), "");
        assert_eq!(
            read_text(dir.join("none")).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let v = read_text("/proc/version").unwrap();
        assert!(v.starts_with("Linux version "), "{v:?}");
        assert_eq!(v, std::fs::read_to_string("/proc/version").unwrap());
    }
}
