//! What init and exec share at the end: finding the executable inside the
//! container, the terminal, and execve.

use crate::container::plan::ProcessPlan;
use crate::error::{Error, Result};
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};

pub enum Never {}

pub fn find_exe(plan: &ProcessPlan) -> Result<CString> {
    let Some(arg0) = plan.args.first() else {
        return Err(Error::msg("process.args is empty"));
    };
    let a = arg0.to_string_lossy();
    let ok = |p: &str| -> bool {
        rustix::fs::access(p, rustix::fs::Access::EXEC_OK).is_ok()
            && rustix::fs::stat(p)
                .map(|s| {
                    rustix::fs::FileType::from_raw_mode(s.st_mode)
                        != rustix::fs::FileType::Directory
                })
                .unwrap_or(false)
    };
    if a.contains('/') {
        if ok(&a) {
            return Ok(arg0.clone());
        }
        let e = rustix::fs::access(&*a, rustix::fs::Access::EXEC_OK)
            .err()
            .map(|e| e.raw_os_error())
            .unwrap_or(libc::EACCES);
        return Err(exec_error(&a, e));
    }
    for dir in &plan.path {
        let cand = format!("{}/{}", dir.trim_end_matches('/'), a);
        if ok(&cand) {
            return CString::new(cand).map_err(|_| Error::msg("path contains NUL"));
        }
    }
    Err(Error::msg(format!(
        "exec {a}: executable file not found in $PATH"
    )))
}

/// Default dispositions for every signal: execve resets handlers, but an
/// ignored signal stays ignored, and the container must not inherit what
/// we ignore (SIGPIPE) or what our caller did (a shell's `cmd &` ignores
/// SIGINT and SIGQUIT). runc's container processes start with none
/// ignored too.
pub fn reset_signal_dispositions() {
    /// The kernel's struct sigaction (x86_64), not libc's.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // The raw call: libc refuses the signals it reserves for itself,
        // which an inherited SIG_IGN would reach all the same.
        // SAFETY: the kernel's layout, an 8-byte sigset, no old action.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
}

pub fn exec(exe: &CString, plan: &ProcessPlan) -> Result<Never> {
    reset_signal_dispositions();
    let mut argv: Vec<*const libc::c_char> = plan.args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = plan.env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: NULL-terminated arrays of NUL-terminated strings that live
    // until execve, which only returns on failure.
    unsafe { libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Err(exec_error(
        &exe.to_string_lossy(),
        crate::error::last_errno(),
    ))
}

/// "exec PATH: no such file or directory". Engines turn a failed exec into
/// the shell's exit codes by matching the C library's words (podman and
/// Docker: "no such file or directory" 127, "permission denied" 126), which
/// is how every errno is shown (`error::errno_text`).
fn exec_error(path: &str, errno: i32) -> Error {
    Error::errno(format!("exec {path}"), errno)
}

/// Make a pty in the container, show its slave as /dev/console (init
/// only), hand the master to the engine, and take the slave as our
/// controlling terminal and stdio.
pub fn setup_terminal(
    console: BorrowedFd,
    size: Option<(u16, u16)>,
    dev_console: bool,
) -> Result<()> {
    let pty = crate::linux::pty::open(size)?;
    if dev_console {
        let root = rustix::fs::open(
            "/",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| Error::errno("open /", e.raw_os_error()))?;
        let target = crate::container::rootfs::resolve_create(root.as_fd(), "/dev/console", true)?;
        let src = CString::new(pty.slave_path.clone()).map_err(|_| Error::msg("pty name"))?;
        let tp = CString::new(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&target)
        ))
        .map_err(|_| Error::msg("path"))?;
        crate::container::rootfs::mount(Some(&src), &tp, None, libc::MS_BIND, None)
            .map_err(|e| Error::errno("bind pty on /dev/console", e))?;
    }
    crate::linux::pty::send_master(console, pty.master.as_fd())?;
    drop(pty.master);
    crate::linux::pty::become_session_leader(pty.slave.as_fd())?;
    Ok(())
}
