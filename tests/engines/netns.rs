//! The engine tier's own network namespace: the test process moves into a
//! fresh one before main, so podman's bridge and firewall rules (netavark),
//! dockerd and containerd never touch the machine's network; everything
//! they made there goes away with the last process in it.
//!
//! It happens in an ELF constructor because unshare(CLONE_NEWNET) moves only
//! the calling thread, and cargo's harness starts its threads in main: here
//! the process is still single-threaded, so every later thread and child is
//! in the new namespace, and the harness's output and exit status are the
//! test's own (no re-exec to forward them through).

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// NOT_TRIED (not root), 0 (in a new namespace with `lo` up) or the errno
/// of the step that failed.
static STATE: AtomicI32 = AtomicI32::new(NOT_TRIED);
const NOT_TRIED: i32 = -1;
/// Which step failed, for the message.
static FAILED_STEP: AtomicI32 = AtomicI32::new(0);
/// Inode of the network namespace the process started in (0: unknown).
static ORIGINAL: AtomicU64 = AtomicU64::new(0);

#[used]
#[link_section = ".init_array"]
static ENTER: extern "C" fn() = enter;

/// struct ifreq with the flags member of its union.
#[repr(C)]
struct IfreqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

extern "C" fn enter() {
    // SAFETY: plain syscalls on values we own; runs before main, with one
    // thread, touching nothing but these two atomics.
    unsafe {
        if libc::geteuid() != 0 {
            return;
        }
        let mut st: libc::stat = std::mem::zeroed();
        if libc::stat(c"/proc/self/ns/net".as_ptr(), &mut st) == 0 {
            ORIGINAL.store(st.st_ino, Ordering::Relaxed);
        }
        let fail = |step: i32| {
            FAILED_STEP.store(step, Ordering::Relaxed);
            STATE.store(*libc::__errno_location(), Ordering::Relaxed);
        };
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            return fail(0);
        }
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return fail(1);
        }
        let mut req = IfreqFlags {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        };
        req.name[..2].copy_from_slice(b"lo");
        let ok = libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req) == 0 && {
            req.flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req) == 0
        };
        if !ok {
            fail(2);
        } else {
            STATE.store(0, Ordering::Relaxed);
        }
        libc::close(fd);
    }
}

/// Why the tier cannot run in its own network namespace, if it cannot
/// (never for a non-root process: those skip for being non-root).
pub fn unavailable() -> Option<String> {
    match STATE.load(Ordering::Relaxed) {
        0 | NOT_TRIED => None,
        errno => {
            let step = match FAILED_STEP.load(Ordering::Relaxed) {
                0 => "unshare(CLONE_NEWNET)",
                1 => "socket(AF_INET)",
                _ => "setting lo up",
            };
            Some(format!(
                "cannot run in a network namespace of its own: {step}: {}",
                std::io::Error::from_raw_os_error(errno)
            ))
        }
    }
}

/// Ok when the process is no longer in the network namespace it started
/// in (the machine's, or whichever the test was run in).
pub fn moved() -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let now = std::fs::metadata("/proc/self/ns/net")
        .map(|m| m.ino())
        .map_err(|e| format!("/proc/self/ns/net: {e}"))?;
    match ORIGINAL.load(Ordering::Relaxed) {
        0 => Err("the network namespace at start is unknown".into()),
        orig if orig == now => Err(format!(
            "still in the network namespace the test started in (inode {now})"
        )),
        _ => Ok(()),
    }
}

/// Interfaces in the caller's network namespace (from /proc/self/net/dev,
/// which, unlike /sys/class/net, follows the reader's namespace).
pub fn links() -> Vec<String> {
    std::fs::read_to_string("/proc/self/net/dev")
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|n| n.trim().to_string()))
        .collect()
}
