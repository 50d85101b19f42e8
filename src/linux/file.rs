//! Small-file reads and writes for /proc, /sys and cgroup files in the
//! fewest syscalls: open(O_CLOEXEC), read or write, close. std's versions
//! add an fcntl (musl's O_CLOEXEC fallback) and an fstat (its size hint);
//! a `run` does dozens of these.

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, OwnedFd};

/// The whole file as text (lossy: kernel files are ASCII).
pub fn read_at<Fd: AsFd>(dir: Fd, path: &str) -> Result<String, Errno> {
    let fd = rustix::fs::openat(dir, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut buf = Vec::with_capacity(512);
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity());
        }
        let n = match rustix::io::read(&fd, buf.spare_capacity_mut()) {
            Ok((got, _)) => got.len(),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        // SAFETY: read initialised the n bytes after the old length.
        unsafe { buf.set_len(buf.len() + n) };
    }
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

pub fn read(path: &str) -> Result<String, Errno> {
    read_at(rustix::fs::CWD, path)
}

/// `value` in one write(2): the kernel parses each write of a control file
/// on its own.
pub fn write_at<Fd: AsFd>(dir: Fd, path: &str, value: &[u8]) -> Result<(), Errno> {
    write_once(&open_write_at(dir, path)?, value)
}

/// A control file opened for writing, for several `write_once` calls
/// (devices.allow takes one rule per write).
pub fn open_write_at<Fd: AsFd>(dir: Fd, path: &str) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(dir, path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
}

/// One write(2) of all of `value`; a short write is EIO.
pub fn write_once<Fd: AsFd>(fd: Fd, value: &[u8]) -> Result<(), Errno> {
    let n = rustix::io::retry_on_intr(|| rustix::io::write(&fd, value))?;
    if n != value.len() {
        return Err(Errno::IO);
    }
    Ok(())
}

pub fn write(path: &str, value: &[u8]) -> Result<(), Errno> {
    write_at(rustix::fs::CWD, path, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_whole_files() {
        let s = read("/proc/self/status").unwrap();
        assert!(s.starts_with("Name:") && s.contains("\nPid:"), "{s}");
        // Longer than the first buffer: the loop must keep going.
        let d = std::env::temp_dir().join(format!("runway-file-big-{}", std::process::id()));
        let big = "x".repeat(5000);
        std::fs::write(&d, &big).unwrap();
        assert_eq!(read(d.to_str().unwrap()).unwrap(), big);
        std::fs::remove_file(&d).unwrap();
        assert_eq!(read("/nonexistent/x").unwrap_err(), Errno::NOENT);
    }

    #[test]
    fn writes_in_one_call() {
        let d = std::env::temp_dir().join(format!("runway-file-{}", std::process::id()));
        std::fs::write(&d, "").unwrap();
        let p = d.to_str().unwrap();
        write(p, b"0-1\n").unwrap();
        assert_eq!(read(p).unwrap(), "0-1\n");
        std::fs::remove_file(&d).unwrap();
    }
}
