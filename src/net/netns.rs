//! Network namespaces that outlive processes: made by a short-lived
//! child that unshares one and bind-mounts it onto a file (as `ip netns
//! add` does), so that a container's network survives its restarts and
//! can be set up before it starts.

use crate::error::{Context, Error, Result};
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Makes a new network namespace and pins it at `path` (a new file).
pub fn create(path: &Path) -> Result<()> {
    // The mount point: a plain empty file, made here so that the child
    // only makes syscalls. The dir may vanish under us (`remove` of the
    // last other one takes it): make it again.
    let mut tries = 0;
    loop {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).ctx(|| format!("create {}", d.display()))?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 10 => tries += 1,
            Err(e) => return Err(e).ctx(|| format!("create {}", path.display())),
        }
    }
    let target = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::msg("netns path with a NUL"))?;
    let r = pin(&target).map_err(|e| e.wrap(format!("network namespace {}", path.display())));
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

fn pin(target: &CString) -> Result<()> {
    // SAFETY: fork in a single-threaded caller; the child makes three
    // syscalls on memory prepared before the fork and leaves by _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os("fork"));
    }
    if pid == 0 {
        // SAFETY: raw syscalls on a NUL-terminated path; _exit never returns.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                libc::_exit(10);
            }
            if libc::mount(
                c"/proc/self/ns/net".as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) != 0
            {
                libc::_exit(11);
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waitpid on the child we just forked.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if crate::error::last_errno() != libc::EINTR {
            return Err(Error::last_os("wait for the netns child"));
        }
    }
    match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
        (true, 0) => Ok(()),
        (true, 10) => Err(Error::msg("unshare(CLONE_NEWNET) failed")),
        (true, 11) => Err(Error::msg("bind mount of /proc/self/ns/net failed")),
        _ => Err(Error::msg("the netns child died")),
    }
}

/// The namespace pinned at `path`, opened.
pub fn open(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::errno(format!("open {}", path.display()), e.raw_os_error()))
}

/// Whether `path` is a pinned namespace (an nsfs mount), not just the file.
pub fn is_pinned(path: &Path) -> bool {
    const NSFS_MAGIC: i64 = 0x6e736673;
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type == NSFS_MAGIC)
}

/// Unpins and removes `path`; the namespace goes with its last user.
/// Absent is fine.
pub fn remove(path: &Path) -> Result<()> {
    if is_pinned(path) {
        rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH)
            .map_err(|e| Error::errno(format!("unmount {}", path.display()), e.raw_os_error()))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).ctx(|| format!("remove {}", path.display())),
    }
    // The dir goes with its last entry: nothing of ours stays in a
    // runtime root that has no networked container.
    if let Some(d) = path.parent() {
        let _ = std::fs::remove_dir(d);
    }
    Ok(())
}
