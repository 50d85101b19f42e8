use super::args::{self, flag, Flag};
use super::Global;
use crate::error::Result;
use std::ffi::OsString;

/// run's own flags, on top of create's.
pub const FLAGS: &[Flag] = &[
    flag("detach", Some('d')),
    flag("keep", None),
    flag("no-subreaper", None),
];

const HELP: &str = "usage: runway run [--bundle DIR] [--pid-file F] [-d|--detach] [--keep] [--no-pivot] [--no-new-keyring] [--preserve-fds N] <id>\n";

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let mut table: Vec<Flag> = super::create::FLAGS.to_vec();
    table.extend_from_slice(FLAGS);
    let a = args::parse(argv, &table, None)?;
    if super::help_requested(&a, HELP) {
        return Ok(0);
    }
    let id = super::one_id(&a, "run")?;
    let detach = a.is_set("detach");
    let opts = super::create::opts(g, &a, &id, true)?;
    if !detach && !a.is_set("no-subreaper") {
        // Grandchildren orphaned in the container get reaped by us.
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    }
    // Block forwardable signals before the init exists so none is lost;
    // the init unblocks them before exec.
    let set = forward_set();
    if !detach {
        block(&set);
    }
    let created = crate::container::create::create(&opts)?;
    if detach {
        return Ok(0);
    }
    let code = wait_forwarding(created.pid, &set);
    drop(created.lock);
    if !a.is_set("keep") {
        if let Err(e) = crate::container::delete(&g.root, &id, true) {
            crate::log::warn(&format!("delete after run: {e}"));
        }
    }
    Ok(code)
}

fn forward_set() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut s);
        for sig in [
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGFPE,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGTSTP,
        ] {
            libc::sigdelset(&mut s, sig);
        }
        s
    }
}

fn block(set: &libc::sigset_t) {
    // SAFETY: valid sigset pointer.
    unsafe {
        libc::sigprocmask(libc::SIG_BLOCK, set, std::ptr::null_mut());
    }
}

/// Wait for the init, forwarding every signal we receive to it; returns
/// the exit code (128+N for a signal death, as runc).
fn wait_forwarding(pid: i32, set: &libc::sigset_t) -> i32 {
    loop {
        let mut status = 0;
        // Reap anything; return when our init is gone.
        loop {
            // SAFETY: plain waitpid.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if r == pid {
                return if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else if libc::WIFSIGNALED(status) {
                    128 + libc::WTERMSIG(status)
                } else {
                    1
                };
            }
            if r <= 0 {
                break;
            }
        }
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid set and out-pointer.
        let sig = unsafe { libc::sigwaitinfo(set, &mut info) };
        if sig <= 0 || sig == libc::SIGCHLD {
            continue;
        }
        // SAFETY: plain kill(2).
        unsafe {
            libc::kill(pid, sig);
        }
    }
}
