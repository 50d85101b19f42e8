//! Signals: names as `kill` accepts them ("KILL", "SIGKILL", "kill", "9",
//! "RTMIN+3"), and a servers' stop signals as a file descriptor.

use crate::bail;
use crate::error::Result;

pub const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

pub fn parse(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=SIGRTMAX).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal {s:?}");
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some((_, n)) = SIGNALS.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    let rt = |base: i32, rest: &str, sign: i32| -> Option<i32> {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.parse().ok()?
        };
        let n = base.checked_add(sign.checked_mul(off)?)?;
        (SIGRTMIN..=SIGRTMAX).contains(&n).then_some(n)
    };
    let r = if let Some(rest) = name.strip_prefix("RTMIN") {
        rest.strip_prefix('+').map_or_else(
            || {
                if rest.is_empty() {
                    Some(SIGRTMIN)
                } else {
                    None
                }
            },
            |r| rt(SIGRTMIN, r, 1),
        )
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rest.strip_prefix('-').map_or_else(
            || {
                if rest.is_empty() {
                    Some(SIGRTMAX)
                } else {
                    None
                }
            },
            |r| rt(SIGRTMAX, r, -1),
        )
    } else {
        None
    };
    match r {
        Some(n) => Ok(n),
        None => bail!("invalid signal {s:?}"),
    }
}

/// SIGTERM and SIGINT blocked in the calling thread (and in threads it
/// starts later) and delivered to the returned signalfd instead: a
/// server's poll loop reads them as events and stops in order.
pub fn stop_signal_fd() -> Result<std::os::fd::OwnedFd> {
    // SAFETY: sigset ops on a local set; sigprocmask and signalfd take it
    // by pointer and return an fd we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(crate::error::Error::last_os("block SIGTERM"));
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(crate::error::Error::last_os("signalfd"));
        }
        Ok(<std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGTERM").unwrap(), 15);
        assert_eq!(parse("term").unwrap(), 15);
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("RTMIN+2").unwrap(), 36);
        assert_eq!(parse("SIGRTMAX-1").unwrap(), 63);
        for bad in [
            "",
            "0",
            "65",
            "NOPE",
            "SIG",
            "RTMIN+99",
            "-1",
            "RTMIN+2147483647",
            "RTMAX-2147483647",
            "RTMAX--2147483648",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
