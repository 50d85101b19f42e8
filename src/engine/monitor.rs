//! The per-container monitor: a process forked by the CLI (no exec, no
//! threads) that outlives it. It creates the OCI container from the
//! bundle with the container's stdio on pipes (or a pty), writes the log,
//! records exit status and times, applies the restart policy with
//! backoff, and removes the container for `--rm`. A foreground caller
//! gets its stdio tee'd and its stdin fed, and hears on a socket when
//! the container started, failed to, or exited.

use crate::engine::logs::{self, LogWriter, Stream};
use crate::engine::record::{self, Status};
use crate::error::{Context, Error, Result};
use crate::linux::sync;
use rustix::event::{PollFd, PollFlags};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Message tags on the monitor's socket to its caller.
const STARTED: u8 = b'S';
const FAILED: u8 = b'F';
const EXITED: u8 = b'E';

/// docker's restart backoff: 100 ms doubling to a minute, back to the
/// start once a run lasted 10 s.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const BACKOFF_RESET: Duration = Duration::from_secs(10);

pub struct Launch<'a> {
    /// The runtime root (`--root`): the OCI container lives there.
    pub root: &'a Path,
    pub data_root: &'a Path,
    pub id: &'a str,
    /// Foreground: tee the caller's stdout/stderr and feed its stdin.
    pub attach: bool,
}

/// What the caller hears.
pub enum Msg {
    /// The container's init runs (host pid); with a terminal and attach,
    /// the pty master comes along for resizing.
    Started { pid: i32, master: Option<OwnedFd> },
    /// It could not be started: docker's exit code (125/126/127) and why.
    Failed { code: i32, msg: String },
    /// The first run ended with this code.
    Exited { code: i32 },
}

pub struct Handle {
    sock: OwnedFd,
    pub monitor_pid: i32,
}

impl Handle {
    /// Readable when a message (or the monitor's end) is there.
    pub fn sock(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// The next message; a monitor that dies without a word is a failure.
    pub fn recv(&self) -> Msg {
        match sync::recv(self.sock.as_fd()) {
            Ok((STARTED, p, fd)) => Msg::Started {
                pid: parse_i32(&p),
                master: fd,
            },
            Ok((FAILED, p, _)) => {
                let s = String::from_utf8_lossy(&p).into_owned();
                let (code, msg) = s.split_once(' ').unwrap_or(("125", &s));
                Msg::Failed {
                    code: code.parse().unwrap_or(125),
                    msg: msg.to_string(),
                }
            }
            Ok((EXITED, p, _)) => Msg::Exited {
                code: parse_i32(&p),
            },
            _ => Msg::Failed {
                code: 125,
                msg: "the container's monitor exited unexpectedly".into(),
            },
        }
    }
}

fn parse_i32(p: &[u8]) -> i32 {
    std::str::from_utf8(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(-1)
}

/// The exit code docker gives a container that could not be started.
pub fn start_failure_code(e: &Error) -> i32 {
    let s = e.to_string();
    if s.contains("executable file not found") {
        return 127;
    }
    if s.contains("exec ") {
        return match e.errno {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => 127,
            _ => 126,
        };
    }
    125
}

/// Forks the monitor. The caller must be single-threaded (a pull's
/// threads are joined by then).
pub fn spawn(l: &Launch) -> Result<Handle> {
    let (ours, theirs) = sync::pair()?;
    let dir = record::dir(l.data_root, l.id);
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: fork in a single-threaded process; the child only runs our
    // code and leaves through _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os("fork the container's monitor"));
    }
    if pid == 0 {
        drop(ours);
        let code = child(l, &dir, theirs);
        // SAFETY: leave without running the caller's atexit/destructors.
        unsafe { libc::_exit(code) }
    }
    drop(theirs);
    Ok(Handle {
        sock: ours,
        monitor_pid: pid,
    })
}

/// The caller's stdio, kept by an attached monitor.
struct Caller {
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

fn dup_high(fd: BorrowedFd) -> Option<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(fd, 3).ok()
}

fn null_stdio() {
    if let Ok(null) = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        for t in 0..3 {
            // SAFETY: dup2 onto the stdio numbers.
            unsafe {
                libc::dup2(null.as_raw_fd(), t);
            }
        }
    }
}

/// Closes the fds the caller inherited from its own parent (runway opens
/// everything close-on-exec; the monitor never execs, so those would stay
/// open for the container's whole life: a pipe some shell waits on).
fn close_inherited() {
    let Ok(rd) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_GETFD/close on fd numbers we read from /proc; an fd
        // that is gone meanwhile (read_dir's own) just fails.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::close(fd);
            }
        }
    }
}

/// The monitor takes no signal from a terminal (it has none) and none
/// blocked by the caller; TERM and KILL end it (`ps` shows that and
/// `rm -f` cleans up).
fn calm_signals() {
    // SAFETY: sigprocmask/signal with valid arguments.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        for sig in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGPIPE,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGWINCH,
            libc::SIGUSR1,
            libc::SIGUSR2,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
}

fn child(l: &Launch, dir: &Path, sock: OwnedFd) -> i32 {
    // Its own session: the caller's terminal hanging up or ^C must not
    // reach the monitor.
    let _ = rustix::process::setsid();
    close_inherited();
    calm_signals();
    // Paths made absolute before leaving the caller's cwd, which the
    // monitor must not pin (it may be a mount someone wants to unmount).
    let (Ok(root), Ok(data_root), Ok(dir)) = (
        std::path::absolute(l.root),
        std::path::absolute(l.data_root),
        std::path::absolute(dir),
    ) else {
        return 1;
    };
    let _ = std::env::set_current_dir("/");
    let l = &Launch {
        root: &root,
        data_root: &data_root,
        id: l.id,
        attach: l.attach,
    };
    let dir = dir.as_path();
    let caller = l.attach.then(|| Caller {
        stdin: dup_high(rustix::stdio::stdin()),
        stdout: dup_high(rustix::stdio::stdout()),
        stderr: dup_high(rustix::stdio::stderr()),
    });
    null_stdio();
    let mut m = Monitor {
        root: l.root.to_path_buf(),
        data_root: l.data_root.to_path_buf(),
        id: l.id.to_string(),
        dir: dir.to_path_buf(),
        sock: Some(sock),
        caller,
    };
    match m.run() {
        Ok(()) => 0,
        Err(e) => {
            m.fail(125, &e.to_string());
            1
        }
    }
}

struct Monitor {
    root: PathBuf,
    data_root: PathBuf,
    id: String,
    dir: PathBuf,
    /// To the caller, until the first run's end.
    sock: Option<OwnedFd>,
    caller: Option<Caller>,
}

/// One run of the container.
struct Running {
    pid: i32,
    pidfd: OwnedFd,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    master: Option<OwnedFd>,
}

impl Monitor {
    fn send(&self, tag: u8, payload: &[u8], fd: Option<BorrowedFd>) {
        if let Some(s) = &self.sock {
            let _ = sync::send_fd(s.as_fd(), tag, payload, fd);
        }
    }

    /// Records a failure to start and tells the caller.
    fn fail(&mut self, code: i32, msg: &str) {
        let _ = self.update(|s| {
            s.status = Status::Exited;
            s.pid = 0;
            s.exit_code = code;
            s.error = msg.to_string();
            s.finished_at = record::now_rfc3339();
        });
        self.send(FAILED, format!("{code} {msg}").as_bytes(), None);
        self.sock = None;
    }

    /// Read-modify-write of state.json under the container's lock.
    fn update(&self, f: impl FnOnce(&mut record::State)) -> Result<record::State> {
        let _l = record::lock(&self.dir)?;
        let mut s = record::load_state(&self.dir);
        f(&mut s);
        record::save_state(&self.dir, &s)?;
        Ok(s)
    }

    fn run(&mut self) -> Result<()> {
        let Some(_alive) = record::take_monitor_lock(&self.dir)? else {
            self.fail(125, "the container is already running");
            return Ok(());
        };
        let rec = record::load(&self.dir)?;
        let opts: Vec<String> = rec
            .host_config
            .log_config
            .config
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut log = LogWriter::open(&self.dir.join(record::LOG), logs::parse_log_opts(&opts)?)?;
        let me = rustix::process::getpid().as_raw_nonzero().get();
        let mut delay = BACKOFF_START;
        loop {
            let began = Instant::now();
            let run = match self.start_once(&rec) {
                Ok(r) => r,
                Err(e) => {
                    let _ = crate::container::delete(&self.root, &self.id, true);
                    self.fail(start_failure_code(&e), &e.to_string());
                    break;
                }
            };
            let pid = run.pid;
            self.update(|s| {
                s.status = Status::Running;
                s.pid = pid;
                s.monitor_pid = me;
                s.error.clear();
                s.started_at = record::now_rfc3339();
                s.finished_at.clear();
            })?;
            let master = run
                .master
                .as_ref()
                .filter(|_| self.caller.is_some())
                .map(|m| m.as_fd());
            self.send(STARTED, pid.to_string().as_bytes(), master);
            let code = self.pump(run, &mut log, rec.config.open_stdin);
            let _ = log.flush();
            let _ = crate::container::delete(&self.root, &self.id, true);
            let st = self.update(|s| {
                s.status = Status::Exited;
                s.pid = 0;
                s.exit_code = code;
                s.finished_at = record::now_rfc3339();
            })?;
            if self.sock.is_some() {
                self.send(EXITED, code.to_string().as_bytes(), None);
                self.sock = None;
            }
            // The foreground ends with the first run, as docker's attach.
            self.caller = None;
            if !should_restart(&rec.host_config.restart_policy, code, &st) {
                break;
            }
            if began.elapsed() >= BACKOFF_RESET {
                delay = BACKOFF_START;
            }
            self.update(|s| {
                s.status = Status::Restarting;
                s.restart_count += 1;
            })?;
            if !self.sleep_unless_stopped(delay) {
                self.update(|s| s.status = Status::Exited)?;
                break;
            }
            delay = (delay * 2).min(BACKOFF_MAX);
        }
        let _ = log.close(SystemTime::now());
        if rec.rootfs.is_none() {
            let _ = crate::engine::overlay::unmount(&self.dir.join("bundle/rootfs"));
        }
        if rec.host_config.auto_remove {
            drop(_alive);
            let _ = crate::engine::remove::remove(&self.root, &self.data_root, &self.id, true);
        }
        Ok(())
    }

    /// Sleeps `d` in small steps; false as soon as the user stopped the
    /// container (or removed it).
    fn sleep_unless_stopped(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            let s = record::load_state(&self.dir);
            if s.stopped_by_user || !self.dir.join(record::CONFIG).exists() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }

    /// Mounts the rootfs if needed and creates the OCI container with its
    /// stdio on fresh pipes (or a pty); the init execs at once.
    fn start_once(&self, rec: &record::Record) -> Result<Running> {
        let bundle = self.dir.join("bundle");
        if rec.rootfs.is_none() {
            let target = bundle.join("rootfs");
            if !crate::engine::overlay::is_mountpoint(&target) {
                let store = crate::image::store::Store::open(&self.data_root)?;
                let mut dirs = Vec::new();
                for c in &rec.layers {
                    dirs.push(store.layer_dir(&crate::image::digest::Digest::parse(c)?));
                }
                crate::engine::overlay::mount(&self.dir, &dirs, &target)?;
            }
        }
        crate::engine::network::revive(&self.root, &self.data_root, rec)?;
        // A run whose monitor was killed may have left its OCI state.
        let _ = crate::container::delete(&self.root, &self.id, true);
        let tty = rec.config.tty;
        let pipe = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| Error::errno("pipe", e.raw_os_error()))
        };
        let null = || {
            rustix::fs::open(
                "/dev/null",
                rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ctx(|| "open /dev/null")
        };
        // (ours, the container's) for each of stdin, stdout, stderr.
        let (stdin_w, stdin_r) = if rec.config.open_stdin && !tty {
            let (r, w) = pipe()?;
            (Some(w), r)
        } else {
            (None, null()?)
        };
        let (out_r, out_w, err_r, err_w) = if tty {
            (None, null()?, None, null()?)
        } else {
            let (or, ow) = pipe()?;
            let (er, ew) = pipe()?;
            (Some(or), ow, Some(er), ew)
        };
        let console = if tty { Some(sync::pair()?) } else { None };
        for (fd, t) in [(&stdin_r, 0), (&out_w, 1), (&err_w, 2)] {
            // SAFETY: dup2 onto the stdio numbers; the init inherits them.
            unsafe {
                libc::dup2(fd.as_raw_fd(), t);
            }
        }
        let created = crate::container::create::create(&crate::container::create::CreateOpts {
            root: &self.root,
            id: &self.id,
            bundle: &bundle,
            pid_file: None,
            console_socket: None,
            no_pivot: false,
            no_new_keyring: false,
            preserve_fds: 0,
            systemd_cgroup: false,
            rootless: false,
            no_fifo: true,
            console_fd: console.as_ref().map(|(_, t)| t.as_raw_fd()),
        });
        null_stdio();
        drop((stdin_r, out_w, err_w));
        let created = created?;
        let pid = created.pid;
        drop(created);
        let master = match &console {
            Some((ours, _)) => Some(crate::linux::pty::recv_master(ours.as_fd())?),
            None => None,
        };
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).ok_or_else(|| Error::msg("bad init pid"))?,
            rustix::process::PidfdFlags::empty(),
        )
        .ctx(|| format!("pidfd_open {pid}"))?;
        Ok(Running {
            pid,
            pidfd,
            stdout: out_r,
            stderr: err_r,
            stdin: stdin_w,
            master,
        })
    }

    /// Copies output to the log (and the caller) and the caller's input
    /// to the container until the init exits and its output is drained;
    /// returns the exit code (128+N for a signal).
    fn pump(&mut self, mut r: Running, log: &mut LogWriter, open_stdin: bool) -> i32 {
        let mut code: Option<i32> = None;
        let mut deadline: Option<Instant> = None;
        let mut caller_in = if open_stdin {
            self.caller.as_mut().and_then(|c| c.stdin.take())
        } else {
            None
        };
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            if code.is_some() && r.stdout.is_none() && r.stderr.is_none() && r.master.is_none() {
                break;
            }
            if let Some(d) = deadline {
                if Instant::now() >= d {
                    break;
                }
            }
            // Slots: 0 pidfd, 1 stdout, 2 stderr, 3 master, 4 caller's stdin.
            let mut which: Vec<u8> = Vec::with_capacity(5);
            let mut fds: Vec<PollFd> = Vec::with_capacity(5);
            if code.is_none() {
                fds.push(PollFd::new(&r.pidfd, PollFlags::IN));
                which.push(0);
            }
            for (slot, f) in [(1u8, &r.stdout), (2, &r.stderr), (3, &r.master)] {
                if let Some(f) = f {
                    fds.push(PollFd::new(f, PollFlags::IN));
                    which.push(slot);
                }
            }
            if let Some(f) = &caller_in {
                fds.push(PollFd::new(f, PollFlags::IN));
                which.push(4);
            }
            let timeout = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            };
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
            let ready: Vec<(u8, bool)> = which
                .iter()
                .zip(fds.iter())
                .map(|(w, f)| (*w, !f.revents().is_empty()))
                .collect();
            drop(fds);
            for (slot, is_ready) in ready {
                if !is_ready {
                    continue;
                }
                match slot {
                    0 => {
                        code = Some(reap(r.pid));
                        // The pid namespace dies with its init, so the
                        // pipes close soon; a holder outside it (a
                        // shared namespace) gets a second.
                        deadline = Some(Instant::now() + Duration::from_secs(1));
                    }
                    1..=3 => {
                        let (src, stream) = match slot {
                            1 => (&mut r.stdout, Stream::Stdout),
                            2 => (&mut r.stderr, Stream::Stderr),
                            _ => (&mut r.master, Stream::Stdout),
                        };
                        let n = match src.as_ref().map(|f| rustix::io::read(f, &mut buf[..])) {
                            Some(Ok(n)) if n > 0 => n,
                            Some(Err(rustix::io::Errno::INTR))
                            | Some(Err(rustix::io::Errno::AGAIN)) => continue,
                            _ => {
                                *src = None;
                                continue;
                            }
                        };
                        let _ = log.write(stream, &buf[..n], SystemTime::now());
                        self.tee(stream, &buf[..n]);
                    }
                    _ => {
                        let n = match caller_in
                            .as_ref()
                            .map(|f| rustix::io::read(f, &mut buf[..]))
                        {
                            Some(Ok(n)) if n > 0 => n,
                            Some(Err(rustix::io::Errno::INTR)) => continue,
                            _ => {
                                // The caller's input ended: so does the
                                // container's (a pty keeps its own).
                                caller_in = None;
                                r.stdin = None;
                                continue;
                            }
                        };
                        let to = r.master.as_ref().or(r.stdin.as_ref());
                        if let Some(to) = to {
                            if write_all(to.as_fd(), &buf[..n]).is_err() {
                                caller_in = None;
                            }
                        }
                    }
                }
            }
        }
        code.unwrap_or_else(|| reap(r.pid))
    }

    fn tee(&mut self, stream: Stream, bytes: &[u8]) {
        let Some(c) = self.caller.as_mut() else {
            return;
        };
        let slot = match stream {
            Stream::Stdout => &mut c.stdout,
            Stream::Stderr => &mut c.stderr,
        };
        if let Some(fd) = slot {
            if write_all(fd.as_fd(), bytes).is_err() {
                // The caller is gone: the log still gets everything.
                *slot = None;
            }
        }
    }
}

fn write_all(fd: BorrowedFd, mut b: &[u8]) -> std::result::Result<(), rustix::io::Errno> {
    while !b.is_empty() {
        match rustix::io::write(fd, b) {
            Ok(0) => return Err(rustix::io::Errno::PIPE),
            Ok(n) => b = &b[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Waits for `pid` (our child): its exit code, 128+N for signal N.
fn reap(pid: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return libc::WEXITSTATUS(status);
            }
            if libc::WIFSIGNALED(status) {
                return 128 + libc::WTERMSIG(status);
            }
            continue;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return 255;
    }
}

/// docker's rules: `no` never; `on-failure[:N]` on a non-zero code, at
/// most N restarts when N > 0; `always` and `unless-stopped` unless the
/// user stopped it.
pub fn should_restart(p: &record::RestartPolicy, code: i32, s: &record::State) -> bool {
    if s.stopped_by_user {
        return false;
    }
    match p.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            code != 0 && (p.maximum_retry_count == 0 || s.restart_count < p.maximum_retry_count)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use record::{RestartPolicy, State};

    fn pol(name: &str, n: u32) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: n,
        }
    }

    #[test]
    fn restart_policies_follow_docker() {
        let s = |count, by_user| State {
            restart_count: count,
            stopped_by_user: by_user,
            ..Default::default()
        };
        assert!(!should_restart(&pol("no", 0), 1, &s(0, false)));
        assert!(!should_restart(&pol("", 0), 1, &s(0, false)));
        assert!(should_restart(&pol("on-failure", 3), 1, &s(2, false)));
        assert!(!should_restart(&pol("on-failure", 3), 1, &s(3, false)));
        assert!(!should_restart(&pol("on-failure", 3), 0, &s(0, false)));
        assert!(should_restart(&pol("on-failure", 0), 1, &s(99, false)));
        assert!(should_restart(&pol("always", 0), 0, &s(5, false)));
        assert!(!should_restart(&pol("always", 0), 0, &s(5, true)));
        assert!(should_restart(&pol("unless-stopped", 0), 1, &s(0, false)));
    }

    #[test]
    fn start_failures_map_to_docker_codes() {
        let nf = Error::msg("exec foo: executable file not found in $PATH");
        assert_eq!(start_failure_code(&nf), 127);
        assert_eq!(
            start_failure_code(&Error::errno("exec /x", libc::ENOENT)),
            127
        );
        assert_eq!(
            start_failure_code(&Error::errno("exec /x", libc::EACCES)),
            126
        );
        assert_eq!(start_failure_code(&Error::msg("rootfs: bad")), 125);
    }
}
