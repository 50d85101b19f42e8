use super::args::{self, flag, Flag};
use super::Global;
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// run's own flags, on top of create's.
pub const FLAGS: &[Flag] = &[
    flag(
        "detach",
        Some('d'),
        "do not wait for the container's process",
    ),
    flag(
        "keep",
        None,
        "keep the container after its process exits (no delete)",
    ),
    flag(
        "no-subreaper",
        None,
        "do not become the subreaper of orphaned processes",
    ),
];

const HELP: &str = "usage: runway run [flags] <id>\n\nCreate and start a container; without --detach wait for it and exit with its status.\n";

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let mut table: Vec<Flag> = super::create::FLAGS.to_vec();
    table.extend_from_slice(FLAGS);
    let a = args::parse(argv, &table, None)?;
    if super::help_requested(&a, HELP) {
        return Ok(0);
    }
    let id = super::one_id(&a, "run")?;
    // From here a failure is runway's own, not the container process's:
    // 255, so it can't be taken for the process's exit status (0-254).
    // runc 1.1 exits 1 here; its exec already uses 255.
    match run(g, &a, &id) {
        Ok(code) => Ok(code),
        Err(e) => {
            crate::log::error(&e.to_string());
            Ok(super::exec::EXEC_FAILED)
        }
    }
}

fn run(g: &Global, a: &args::Args, id: &str) -> Result<i32> {
    if a.get("bundle").is_none() && !std::path::Path::new("config.json").exists() {
        // `runway run busybox` is docker's habit; runc's run wants a bundle.
        let hint = if cfg!(feature = "full") {
            " (to run an image: runway container run IMAGE)"
        } else {
            ""
        };
        return Err(Error::errno(
            format!("run: no bundle: ./config.json{hint}"),
            libc::ENOENT,
        ));
    }
    let detach = a.is_set("detach");
    let mut opts = super::create::opts(g, a, id, true)?;
    // Foreground with a terminal and no engine: we are the console.
    let own_console = if !detach && opts.console_socket.is_none() {
        let (ours, theirs) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::errno("socketpair", e.raw_os_error()))?;
        opts.console_fd = Some(theirs.as_raw_fd());
        Some((ours, theirs))
    } else {
        None
    };
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
    // Other commands (kill, state, exec) must work while we wait.
    let created = crate::container::create::Created {
        lock: drop_lock(created.lock),
        ..created
    };
    let st = &created.state;
    crate::container::hooks::run_all_warn(
        "poststart",
        &st.poststart,
        &st.hook_state(crate::container::state::Status::Running),
    );
    if detach {
        return Ok(0);
    }
    let master = match (&own_console, created.terminal) {
        (Some((ours, _)), true) => Some(crate::linux::pty::recv_master(ours.as_fd())?),
        _ => None,
    };
    drop(own_console);
    let code = wait_forwarding(created.pid, &set, master);
    if !a.is_set("keep") {
        if let Err(e) = crate::container::delete(&g.root, id, true) {
            crate::log::warn(&format!("delete after run: {e}"));
        }
    }
    Ok(code)
}

pub fn forward_set() -> libc::sigset_t {
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

pub fn block(set: &libc::sigset_t) {
    // SAFETY: valid sigset pointer.
    unsafe {
        libc::sigprocmask(libc::SIG_BLOCK, set, std::ptr::null_mut());
    }
}

/// Puts the caller's terminal in raw mode; restores it on drop.
pub struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    /// Raw from now until the value is dropped.
    pub fn enter() -> Self {
        let stdin = rustix::stdio::stdin();
        let saved = rustix::termios::tcgetattr(stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                rustix::stdio::stdin(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

fn copy_some(from: BorrowedFd, to: BorrowedFd) -> bool {
    let mut buf = [0u8; 8192];
    match rustix::io::read(from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match rustix::io::write(to, &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(_) => return false,
                }
            }
            true
        }
    }
}

fn sync_size(master: BorrowedFd) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(rustix::stdio::stdout()) {
        let _ = crate::linux::pty::set_size(master, ws.ws_row, ws.ws_col);
    }
}

fn reap(pid: i32) -> Option<i32> {
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r == pid {
            return Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                1
            });
        }
        if r <= 0 {
            return None;
        }
    }
}

/// Wait for the init, forwarding every signal we receive to it (and
/// proxying the terminal when we own it); returns the exit code, 128+N
/// for a signal death, as runc.
pub fn wait_forwarding(pid: i32, set: &libc::sigset_t, master: Option<OwnedFd>) -> i32 {
    // SAFETY: signalfd on a valid set; -1 creates a new fd.
    let sfd = unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC) };
    if sfd < 0 {
        return 1;
    }
    // SAFETY: we own the fd just created.
    let sfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(sfd) };
    let _raw = master.as_ref().map(|_| RawMode::enter());
    if let Some(m) = &master {
        sync_size(m.as_fd());
    }
    let mut stdin_open = master.is_some();
    loop {
        if let Some(code) = reap(pid) {
            if let Some(m) = &master {
                // Drain what the container wrote before it exited.
                let _ = rustix::fs::fcntl_setfl(m, rustix::fs::OFlags::NONBLOCK);
                while copy_some(m.as_fd(), rustix::stdio::stdout()) {}
            }
            return code;
        }
        use rustix::event::{PollFd, PollFlags};
        let stdin = rustix::stdio::stdin();
        let mut fds = vec![PollFd::new(&sfd, PollFlags::IN)];
        if let Some(m) = &master {
            fds.push(PollFd::new(m, PollFlags::IN));
            if stdin_open {
                fds.push(PollFd::new(&stdin, PollFlags::IN));
            }
        }
        if rustix::event::poll(&mut fds, None).is_err() {
            continue;
        }
        let sig_ready = fds[0].revents().contains(PollFlags::IN);
        let m_ready = fds
            .get(1)
            .map(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        let in_ready = fds
            .get(2)
            .map(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        drop(fds);
        if sig_ready {
            let mut info = [0u8; 128];
            if let Ok(128) = rustix::io::read(&sfd, &mut info) {
                let sig = i32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
                if sig == libc::SIGWINCH {
                    if let Some(m) = &master {
                        sync_size(m.as_fd());
                    }
                } else if sig != libc::SIGCHLD {
                    // SAFETY: plain kill(2).
                    unsafe {
                        libc::kill(pid, sig);
                    }
                }
            }
        }
        if let Some(m) = &master {
            if !m_ready.is_empty() && !copy_some(m.as_fd(), rustix::stdio::stdout()) {
                // Slave closed: the container is exiting; keep waiting.
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if !in_ready.is_empty() && !copy_some(stdin, m.as_fd()) {
                stdin_open = false;
            }
        }
    }
}

fn drop_lock(lock: std::os::fd::OwnedFd) -> std::os::fd::OwnedFd {
    // Unlock but keep an fd so the struct stays whole.
    let _ = rustix::fs::flock(&lock, rustix::fs::FlockOperation::Unlock);
    lock
}
