//! Helpers for the security, resources and plumbing tests: processes the
//! test controls itself (signals, stdin, extra fds), fd passing over unix
//! sockets, and polling.

use super::{runtime, Bundle, Out, TestEnv, CMD_TIMEOUT, STATE_TIMEOUT};
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A runtime process the test owns (can signal, feed stdin, read output
/// while it runs). Killed on drop.
pub struct Proc {
    pub child: Child,
    pub out: PathBuf,
    pub err: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Wait up to `timeout`; Some(code, 128+N on signal) or None on timeout.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                use std::os::unix::process::ExitStatusExt;
                return Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)));
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Poll until stdout contains `what`.
    pub fn wait_stdout(&self, what: &str, timeout: Duration) -> bool {
        poll(timeout, || self.stdout().contains(what))
    }

    pub fn describe(&self) -> String {
        format!("stdout: {:?}\nstderr: {:?}", self.stdout(), self.stderr())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `<runtime> --root ROOT args` with the bundle's marker, stdout and
/// stderr in files, stdin from `stdin` (None: /dev/null), and `extra_fds`
/// open files placed at fds 3, 4, ... in the runtime.
pub fn spawn_rt(
    env: &TestEnv,
    mark: &str,
    args: &[&str],
    stdin: Option<Stdio>,
    extra_fds: usize,
) -> Proc {
    use std::os::unix::process::CommandExt;
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = env.dir.join(format!("xout.{n}"));
    let err = env.dir.join(format!("xerr.{n}"));
    let mut cmd = Command::new(runtime());
    cmd.arg("--root")
        .arg(&env.root)
        .args(args)
        .env("RUNWAY_TEST_MARK", mark)
        .stdin(stdin.unwrap_or(Stdio::null()))
        .stdout(fs::File::create(&out).unwrap_or_else(|e| panic!("{e}")))
        .stderr(fs::File::create(&err).unwrap_or_else(|e| panic!("{e}")));
    if extra_fds > 0 {
        let files: Vec<fs::File> = (0..extra_fds)
            .map(|i| {
                let p = env.dir.join(format!("xfd.{n}.{i}"));
                fs::write(&p, format!("fd{i}\n")).unwrap_or_else(|e| panic!("{e}"));
                fs::File::open(&p).unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        let raw: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
        // SAFETY: only async-signal-safe dup/dup2/fcntl between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Move them out of the way first so dup2 cannot clobber one.
                let high: Vec<RawFd> = raw
                    .iter()
                    .map(|&f| libc::fcntl(f, libc::F_DUPFD, 100))
                    .collect();
                for (i, &h) in high.iter().enumerate() {
                    if h < 0 || libc::dup2(h, 3 + i as RawFd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(h);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn: {e}"));
        drop(files);
        return Proc { child, out, err };
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn: {e}"));
    Proc { child, out, err }
}

/// Run `<runtime> --root ROOT args` with `input` on stdin; waits.
pub fn rt_stdin(env: &TestEnv, args: &[&str], input: &str) -> Out {
    let mut p = spawn_rt(env, "stdin", args, Some(Stdio::piped()), 0);
    if let Some(mut w) = p.child.stdin.take() {
        use std::io::Write;
        let _ = w.write_all(input.as_bytes());
    }
    let code = p
        .wait_timeout(CMD_TIMEOUT)
        .unwrap_or_else(|| panic!("timed out: {args:?}\n{}", p.describe()));
    let mut all = vec![runtime().to_string_lossy().into_owned()];
    all.extend(args.iter().map(|s| s.to_string()));
    Out {
        args: all,
        code,
        stdout: p.stdout(),
        stderr: p.stderr(),
    }
}

/// Poll `f` every 20ms until true or `timeout`.
pub fn poll(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// create + start; waits for "running"; returns the init pid.
pub fn start_running(env: &TestEnv, b: &Bundle, id: &str) -> i32 {
    let pid = env.create_ok(b, id);
    env.start(id).assert_ok();
    env.wait_for_status(id, "running", STATE_TIMEOUT);
    pid
}

/// `exec ID -- args` (extra flags before the id).
pub fn exec_in(env: &TestEnv, flags: &[&str], id: &str, args: &[&str]) -> Out {
    let mut all = vec!["exec"];
    all.extend_from_slice(flags);
    all.push(id);
    all.push("--");
    all.extend_from_slice(args);
    env.rt(&all)
}

/// One line of /proc/PID/status ("CapEff") -> its value, trimmed.
pub fn status_field(status: &str, key: &str) -> Option<String> {
    status.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    })
}

/// Receive one message with at most one fd (SCM_RIGHTS) from `sock`.
/// Returns the data and the fd, if any.
pub fn recv_with_fd(sock: &UnixStream) -> std::io::Result<(Vec<u8>, Option<OwnedFd>)> {
    let mut buf = vec![0u8; 8192];
    let mut cmsg = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; zeroed is a valid start.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1 as _;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg) as _;
    // SAFETY: msg points at live buffers of the given sizes.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    let mut fd = None;
    // SAFETY: walking the control buffer the kernel filled, with its macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const RawFd;
                let got = data.read_unaligned();
                if fd.is_none() {
                    fd = Some(OwnedFd::from_raw_fd(got));
                } else {
                    libc::close(got);
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    // A stream socket may deliver the rest of the payload separately.
    if fd.is_some() {
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut more = Vec::new();
        let mut s = sock;
        let _ = s.read_to_end(&mut more);
        buf.extend(more);
    }
    Ok((buf, fd))
}

/// poll(2) one fd for input, `ms` milliseconds.
pub fn readable(fd: RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// Read from `fd` until `what` shows up, EOF/error, or timeout; all read.
pub fn read_until(fd: RawFd, what: &str, timeout: Duration) -> String {
    let start = Instant::now();
    let mut got = Vec::new();
    while start.elapsed() < timeout {
        if !readable(fd, 100) {
            continue;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        got.extend_from_slice(&buf[..n as usize]);
        if String::from_utf8_lossy(&got).contains(what) {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

pub fn write_fd(fd: RawFd, data: &str) {
    // SAFETY: data is valid for its length.
    unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
}

/// Hex mask of capability numbers, as /proc/PID/status prints it.
pub fn cap_mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | (1u64 << c)))
}

/// SHA-less fingerprint of a file: its full bytes (compared before/after).
pub fn file_bytes(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Processes whose command line contains `needle`.
pub fn pids_with_cmdline(needle: &str) -> Vec<i32> {
    super::live_pids()
        .into_iter()
        .filter(|p| {
            fs::read(format!("/proc/{p}/cmdline"))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// A console-socket receiver at `path`: accepts one connection and returns
/// the pty master sent over it.
pub fn console_server(path: &Path) -> std::thread::JoinHandle<Result<OwnedFd, String>> {
    let l = std::os::unix::net::UnixListener::bind(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::thread::spawn(move || {
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let conn = loop {
            match l.accept() {
                Ok((c, _)) => break c,
                Err(_) if start.elapsed() < Duration::from_secs(20) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(format!("no connection: {e}")),
            }
        };
        conn.set_nonblocking(false).map_err(|e| e.to_string())?;
        let (_, fd) = recv_with_fd(&conn).map_err(|e| e.to_string())?;
        fd.ok_or_else(|| "no fd".to_string())
    })
}

/// `prefix... <runtime> --root ROOT args...` (e.g. under setpriv), waits.
pub fn rt_under(env: &TestEnv, prefix: &[&str], args: &[&str]) -> Out {
    let rt = runtime();
    let root = env.root.to_string_lossy().into_owned();
    let mut all: Vec<&str> = prefix[1..].to_vec();
    let rt_s = rt.to_string_lossy().into_owned();
    all.push(&rt_s);
    all.push("--root");
    all.push(&root);
    all.extend_from_slice(args);
    super::run_program(Path::new(prefix[0]), &all)
}
