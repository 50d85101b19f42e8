//! The parent<->child channel during create: a SOCK_SEQPACKET socketpair
//! carrying tiny tagged messages (one message = one packet), plus fd
//! passing with SCM_RIGHTS, and a receive that signals can interrupt.

use crate::error::{Error, Result};
use rustix::net::{
    recvmsg, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage,
    RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

pub const GO: u8 = 1;
pub const READY: u8 = 2;
pub const ERROR: u8 = 3;
pub const IDMAP: u8 = 4;
pub const FD: u8 = 5;
pub const HOOKS: u8 = 6;
/// Test-only: ask the parent to hit a fault point.
pub const FAULT: u8 = 7;
/// The init's pid (4 bytes LE), from the helper that cloned it.
pub const CHILD_PID: u8 = 8;

pub fn pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| Error::errno("socketpair", e.raw_os_error()))
}

pub fn send(sock: BorrowedFd, tag: u8, payload: &[u8]) -> Result<()> {
    send_fd(sock, tag, payload, None)
}

pub fn send_fd(sock: BorrowedFd, tag: u8, payload: &[u8], fd: Option<BorrowedFd>) -> Result<()> {
    let mut buf = Vec::with_capacity(payload.len() + 1);
    buf.push(tag);
    buf.extend_from_slice(payload);
    let fds;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    if let Some(fd) = fd {
        fds = [fd];
        anc.push(SendAncillaryMessage::ScmRights(&fds));
    }
    loop {
        match sendmsg(sock, &[IoSlice::new(&buf)], &mut anc, SendFlags::NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::errno("sync: send", e.raw_os_error())),
        }
    }
}

/// Receive one message: (tag, payload, fd). Tag 0 means the peer closed.
pub fn recv(sock: BorrowedFd) -> Result<(u8, Vec<u8>, Option<OwnedFd>)> {
    let mut buf = vec![0u8; 4096];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let n = loop {
        match recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut buf)],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(r) => break r.bytes,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::errno("sync: receive", e.raw_os_error())),
        }
    };
    let mut fd = None;
    for msg in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            fd = fds.next();
        }
    }
    if n == 0 {
        return Ok((0, Vec::new(), fd));
    }
    buf.truncate(n);
    let tag = buf.remove(0);
    Ok((tag, buf, fd))
}

/// An error crossing from child to parent: errno (4 bytes LE) + text.
pub fn encode_error(e: &Error) -> Vec<u8> {
    let mut v = e.errno.unwrap_or(0).to_le_bytes().to_vec();
    let ctx = e.ctx.as_bytes();
    v.extend_from_slice(&ctx[..ctx.len().min(3000)]);
    v
}

pub fn decode_error(p: &[u8]) -> Error {
    if p.len() < 4 {
        return Error::msg("container init failed");
    }
    let errno = i32::from_le_bytes([p[0], p[1], p[2], p[3]]);
    let ctx = String::from_utf8_lossy(&p[4..]).into_owned();
    if errno == 0 {
        Error::msg(ctx)
    } else {
        Error::errno(ctx, errno)
    }
}

/// The signals that end a wait on a child: the user's ^C, a supervisor's
/// TERM, a closed terminal. While one of these exists they are blocked and
/// read through a signalfd, so the waiter can clean up instead of dying
/// with the child half set up; dropping it restores the signal mask.
pub struct Interrupts {
    fd: OwnedFd,
    old: libc::sigset_t,
}

const INTERRUPTS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

impl Interrupts {
    pub fn new() -> Result<Self> {
        // SAFETY: sigset manipulation on locals, then sigprocmask and
        // signalfd with valid pointers; the new fd is ours.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in INTERRUPTS {
                libc::sigaddset(&mut set, s);
            }
            let mut old: libc::sigset_t = std::mem::zeroed();
            if libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old) != 0 {
                return Err(Error::last_os("block signals"));
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                let e = Error::last_os("signalfd");
                libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                return Err(e);
            }
            Ok(Interrupts {
                fd: <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd),
                old,
            })
        }
    }

    /// Run `f` (work of our own that may take long, e.g. hooks) with the
    /// interrupts acting as they would without us: a ^C then ends the
    /// process at once instead of waiting for `f`.
    pub fn unblocked<T>(&self, f: impl FnOnce() -> T) -> T {
        let mut blocked: libc::sigset_t;
        // SAFETY: sigprocmask with valid pointers; the old mask is saved
        // and put back after `f`.
        unsafe {
            blocked = std::mem::zeroed();
            libc::sigprocmask(libc::SIG_SETMASK, &self.old, &mut blocked);
        }
        let r = f();
        // SAFETY: as above.
        unsafe {
            libc::sigprocmask(libc::SIG_SETMASK, &blocked, std::ptr::null_mut());
        }
        r
    }

    /// The interrupting signal, if one came (consumes it).
    fn take(&self) -> Option<i32> {
        let mut info = [0u8; 128];
        match rustix::io::read(&self.fd, &mut info) {
            Ok(128) => Some(i32::from_ne_bytes([info[0], info[1], info[2], info[3]])),
            _ => None,
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        // Signals that came in and were not read stay pending: unblocked
        // here they act as they would have (the caller's mask may keep
        // them blocked, as `run` does to forward them).
        // SAFETY: restoring the mask saved in new().
        unsafe {
            libc::sigprocmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

/// `recv`, but ended by an interrupt (an error saying which signal) and
/// calling `tick` every `every` while nothing comes, so the caller can
/// give up on a child that can't answer (e.g. a frozen cgroup).
pub fn recv_or_interrupt(
    sock: BorrowedFd,
    intr: &Interrupts,
    every: std::time::Duration,
    mut tick: impl FnMut() -> Result<()>,
) -> Result<(u8, Vec<u8>, Option<OwnedFd>)> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let timeout = Timespec {
        tv_sec: every.as_secs() as i64,
        tv_nsec: every.subsec_nanos() as i64,
    };
    loop {
        let mut fds = [
            PollFd::new(&sock, PollFlags::IN),
            PollFd::new(&intr.fd, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::errno("poll", e.raw_os_error())),
        }
        let (sock_ready, sig_ready) = (!fds[0].revents().is_empty(), !fds[1].revents().is_empty());
        if sig_ready {
            if let Some(sig) = intr.take() {
                return Err(Error::msg(format!(
                    "interrupted by {} while waiting for the container process",
                    match sig {
                        libc::SIGINT => "SIGINT",
                        libc::SIGTERM => "SIGTERM",
                        _ => "SIGHUP",
                    }
                )));
            }
        }
        if sock_ready {
            return recv(sock);
        }
        tick()?;
    }
}
