//! Pseudo-terminals for containers: made inside the container (its devpts
//! instance), the master handed to the engine over the console socket with
//! SCM_RIGHTS (runc's protocol, as containerd and conmon expect).

use crate::error::{Error, Result};
use rustix::pty::OpenptFlags;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub slave_path: String,
}

/// Open a pty through /dev/ptmx of the current mount namespace.
pub fn open(size: Option<(u16, u16)>) -> Result<Pty> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(|e| Error::errno("open /dev/ptmx", e.raw_os_error()))?;
    rustix::pty::unlockpt(&master).map_err(|e| Error::errno("unlockpt", e.raw_os_error()))?;
    let name = rustix::pty::ptsname(&master, Vec::new())
        .map_err(|e| Error::errno("ptsname", e.raw_os_error()))?;
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &master,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )
    .map_err(|e| Error::errno("open pty peer", e.raw_os_error()))?;
    if let Some((rows, cols)) = size {
        set_size(master.as_fd(), rows, cols)?;
    }
    Ok(Pty {
        master,
        slave,
        slave_path: name.to_string_lossy().into_owned(),
    })
}

pub fn set_size(fd: BorrowedFd, rows: u16, cols: u16) -> Result<()> {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(fd, ws)
        .map_err(|e| Error::errno("set terminal size", e.raw_os_error()))
}

/// Send the master to the engine. The payload is the master's name, as
/// runc sends it.
pub fn send_master(sock: BorrowedFd, master: BorrowedFd) -> Result<()> {
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    use std::io::IoSlice;
    use std::mem::MaybeUninit;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    let fds = [master];
    anc.push(SendAncillaryMessage::ScmRights(&fds));
    let name = b"/dev/ptmx";
    loop {
        match sendmsg(sock, &[IoSlice::new(name)], &mut anc, SendFlags::NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                return Err(Error::errno(
                    "send pty master to console socket",
                    e.raw_os_error(),
                ))
            }
        }
    }
}

/// Make `slave` our controlling terminal and stdio.
pub fn become_session_leader(slave: BorrowedFd) -> Result<()> {
    let _ = rustix::process::setsid();
    rustix::process::ioctl_tiocsctty(slave)
        .map_err(|e| Error::errno("set controlling terminal", e.raw_os_error()))?;
    for target in 0..3 {
        // SAFETY: dup2 onto stdio numbers.
        if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&slave), target) } < 0 {
            return Err(Error::last_os("dup2 pty onto stdio"));
        }
    }
    Ok(())
}

/// Connect to the engine's console socket (a host path) in the parent.
pub fn connect(path: &std::path::Path) -> Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        Error::errno(
            format!("connect console socket {}", path.display()),
            e.raw_os_error().unwrap_or(libc::EIO),
        )
    })?;
    Ok(OwnedFd::from(s))
}

/// Receive a pty master (for `run` proxying its own terminal).
pub fn recv_master(sock: BorrowedFd) -> Result<OwnedFd> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::io::IoSliceMut;
    use std::mem::MaybeUninit;
    let mut buf = [0u8; 256];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    loop {
        match recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut buf)],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::errno("receive pty master", e.raw_os_error())),
        }
    }
    for msg in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(Error::msg("console socket: no pty master received"))
}

/// The console socket for a process that wants a terminal: our own end
/// (`run`/`exec` proxying, duplicated so the child keeps it) or the
/// engine's socket path. None when no terminal is asked for.
pub fn console_for(
    terminal: bool,
    own_fd: Option<std::os::fd::RawFd>,
    path: Option<&std::path::Path>,
) -> Result<Option<OwnedFd>> {
    if !terminal {
        return Ok(None);
    }
    if let Some(fd) = own_fd {
        // SAFETY: the caller keeps its socket end open for the duration.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        return rustix::io::fcntl_dupfd_cloexec(fd, 3)
            .map(Some)
            .map_err(|e| Error::errno("dup console socket", e.raw_os_error()));
    }
    path.map(connect).transpose()
}
