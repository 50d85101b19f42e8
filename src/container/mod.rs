//! Container lifecycle operations on the state dir: create (parent and
//! child), start, kill, delete, and listing.

pub mod brief;
pub mod create;
pub mod exec;
pub mod fault;
pub mod hooks;
pub mod init;
pub mod limits;
pub mod list;
pub mod list_cache;
pub mod plan;
pub mod process;
pub mod rootfs;
pub mod security;
pub mod state;

use crate::bail;
use crate::error::{Context, Error, Result};
use state::{Dir, State, Status};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// Load a container with its lock held.
pub fn open(root: &Path, id: &str) -> Result<(Dir, State, OwnedFd)> {
    state::validate_id(id)?;
    let dir = Dir::new(root, id);
    if !dir.exists() {
        bail!("container {id} does not exist");
    }
    let lock = dir.lock()?;
    let st = dir.load(id)?;
    Ok((dir, st, lock))
}

pub fn start(root: &Path, id: &str) -> Result<()> {
    let (dir, st, lock) = open(root, id)?;
    match st.status(&dir) {
        Status::Created => {}
        Status::Creating => bail!("container {id} is still being created"),
        Status::Running | Status::Paused => bail!("cannot start an already running container"),
        Status::Stopped => bail!("cannot start a container that has stopped"),
    }
    // A frozen init can't take the go (runc's words and refusal).
    if st.cgroup.frozen_or_freezing() {
        bail!("cannot start a container in the paused state");
    }
    let fifo_path = dir.file(state::FIFO);
    let fifo = rustix::fs::open(
        &fifo_path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| format!("open {}", fifo_path.display()))?;
    // The wait below is on the init (startContainer hooks run first): no
    // lock across it, so kill, delete or resume of the container never
    // wait for us. SIGINT/SIGTERM end it; nothing is changed before the
    // byte arrives.
    drop(lock);
    // The init opens the write side as soon as we hold the read side; a
    // dead init never will, so poll with a liveness check.
    let mut buf = [0u8; 1];
    loop {
        match rustix::io::read(&fifo, &mut buf) {
            Ok(1) => break,
            // No writer: the init has not opened its end yet, or it has
            // exec'd because a concurrent start took the byte (then the
            // fifo is gone).
            Ok(_) if !fifo_path.exists() => {
                bail!("cannot start an already running container")
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::errno("read exec fifo", e.raw_os_error())),
        }
        if !st.init_alive() {
            let _ = std::fs::remove_file(&fifo_path);
            bail!("cannot start a container that has stopped");
        }
        let mut pfd = [rustix::event::PollFd::new(
            &fifo,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let _ = rustix::event::poll(&mut pfd, Some(&timeout));
    }
    match std::fs::remove_file(&fifo_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).ctx(|| format!("remove {}", fifo_path.display())),
    }
    hooks::run_all_warn("poststart", &st.poststart, &st.hook_state(Status::Running));
    Ok(())
}

fn pidfd(pid: i32) -> Option<OwnedFd> {
    let p = rustix::process::Pid::from_raw(pid)?;
    rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
}

/// Signal the init through a pidfd taken after checking its start time, so
/// a recycled pid is never signalled.
fn signal_init(st: &State, sig: i32) -> Result<()> {
    let Some(fd) = pidfd(st.pid) else {
        bail!("container not running");
    };
    if !st.init_alive() {
        bail!("container not running");
    }
    // SAFETY: pidfd_send_signal with a valid pidfd and no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if r != 0 {
        return Err(Error::last_os(format!(
            "signal {sig} to container init {}",
            st.pid
        )));
    }
    Ok(())
}

pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    let (dir, st, _lock) = open(root, id)?;
    let status = st.status(&dir);
    if all {
        let pids = st.cgroup.pids().unwrap_or_default();
        if pids.is_empty() {
            if status == Status::Stopped {
                return Ok(());
            }
            return signal_init(&st, sig);
        }
        let frozen = status == Status::Paused;
        for p in pids {
            if let Some(pid) = rustix::process::Pid::from_raw(p) {
                // SAFETY: plain kill(2).
                let _ = unsafe { libc::kill(pid.as_raw_nonzero().get(), sig) };
            }
        }
        if frozen && sig == libc::SIGKILL {
            // Frozen tasks only die once thawed.
            let _ = st.cgroup.thaw();
        }
        return Ok(());
    }
    if status == Status::Stopped {
        bail!("container not running");
    }
    signal_init(&st, sig)
}

/// Wait until the init is gone (pidfd polls readable at exit).
fn wait_gone(st: &State, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let Some(fd) = pidfd(st.pid) else { return true };
    while st.init_alive() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = left.as_millis().min(100) as i64;
        let mut pfd = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: ms * 1_000_000,
        };
        let _ = rustix::event::poll(&mut pfd, Some(&ts));
    }
    true
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    state::validate_id(id)?;
    let dir = Dir::new(root, id);
    if !dir.exists() {
        if force {
            return Ok(());
        }
        bail!("container {id} does not exist");
    }
    let lock = dir.lock()?;
    let st = match dir.load(id) {
        Ok(st) => st,
        Err(e) => {
            // No usable state: an interrupted create or a corrupt file.
            // With --force, remove what we can find by convention.
            if !force {
                return Err(e);
            }
            let cg = crate::cgroups::plan(None, id, false, None).unwrap_or_default();
            let _ = cg.destroy(true);
            list_cache::forget(root);
            std::fs::remove_dir_all(&dir.path).ctx(|| format!("remove {}", dir.path.display()))?;
            drop(lock);
            return Ok(());
        }
    };
    let status = st.status(&dir);
    match status {
        Status::Stopped => {}
        Status::Creating if !force => {
            bail!("container {id} is still being created (use --force)")
        }
        Status::Created | Status::Creating => {
            let _ = signal_init(&st, libc::SIGKILL);
            let _ = wait_gone(&st, Duration::from_secs(10));
        }
        Status::Running | Status::Paused => {
            if !force {
                bail!(
                    "cannot delete container {id} that is not stopped: {}",
                    status.as_str()
                );
            }
            let _ = signal_init(&st, libc::SIGKILL);
            if status == Status::Paused {
                let _ = st.cgroup.thaw();
            }
            if !wait_gone(&st, Duration::from_secs(10)) {
                bail!("container {id}: init {} did not exit after SIGKILL", st.pid);
            }
        }
    }
    if let Some(m) = st.rootfs_mount {
        crate::container::rootfs::detach_host_rootfs(&st.rootfs, m)?;
    }
    st.cgroup.destroy(true)?;
    hooks::run_all_warn("poststop", &st.poststop, &st.hook_state(Status::Stopped));
    list_cache::forget(root);
    std::fs::remove_dir_all(&dir.path).ctx(|| format!("remove {}", dir.path.display()))?;
    drop(lock);
    Ok(())
}
