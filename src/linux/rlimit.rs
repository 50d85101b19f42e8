//! process.rlimits: names -> resource numbers, validation, and prlimit in
//! the container's init.

use crate::bail;
use crate::error::{errno_text, Error, Result};

/// Indexed by resource number (asm-generic/resource.h, same on x86).
pub const NAMES: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

pub const RLIMIT_NOFILE: u32 = 7;

/// "RLIMIT_NOFILE" -> 7. Exact spelling, as runc.
pub fn rlimit_from_name(name: &str) -> Option<u32> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

pub fn rlimit_name(res: u32) -> Option<&'static str> {
    NAMES.get(res as usize).copied()
}

/// One validated limit, ready for prlimit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub resource: u32,
    pub name: &'static str,
    pub soft: u64,
    pub hard: u64,
}

pub fn show(v: u64) -> String {
    if v == u64::MAX {
        "unlimited".to_string()
    } else {
        v.to_string()
    }
}

/// Current (soft, hard) of the calling process.
pub fn current(resource: u32) -> Option<(u64, u64)> {
    let mut old = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: read-only prlimit64 on ourselves into a local struct.
    let r = unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            resource as libc::c_long,
            std::ptr::null::<libc::rlimit64>(),
            &mut old,
        )
    };
    (r == 0).then_some((old.rlim_cur, old.rlim_max))
}

fn nr_open() -> Option<u64> {
    crate::linux::file::read("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn eperm_message(l: &Limit, runtime_hard: Option<u64>) -> Error {
    let why = match runtime_hard {
        Some(h) => format!(" (hard limit of the runtime is {})", show(h)),
        None => String::new(),
    };
    Error::msg(format!(
        "setrlimit {} soft={} hard={}: {}{why}",
        l.name,
        show(l.soft),
        show(l.hard),
        errno_text(libc::EPERM)
    ))
}

/// Catch, before any process is cloned, limits the kernel would refuse:
/// raising a hard limit needs CAP_SYS_RESOURCE in the initial user
/// namespace (so a user namespace does not help), and RLIMIT_NOFILE can
/// never exceed fs.nr_open.
pub fn precheck(limits: &[Limit], have_sys_resource: bool) -> Result<()> {
    for l in limits {
        if l.resource == RLIMIT_NOFILE && l.hard != u64::MAX {
            if let Some(max) = nr_open() {
                if l.hard > max {
                    bail!(
                        "setrlimit {} soft={} hard={}: {} (fs.nr_open is {max})",
                        l.name,
                        show(l.soft),
                        show(l.hard),
                        errno_text(libc::EPERM)
                    );
                }
            }
        }
        if have_sys_resource {
            continue;
        }
        if let Some((_, hard)) = current(l.resource) {
            if l.hard > hard {
                return Err(eperm_message(l, Some(hard)));
            }
        }
    }
    Ok(())
}

/// In the child: install every limit on itself.
pub fn apply(limits: &[Limit]) -> Result<()> {
    apply_to(0, limits)
}

/// Install every limit on process `pid` (0: the caller).
pub fn apply_to(pid: i32, limits: &[Limit]) -> Result<()> {
    for l in limits {
        let new = libc::rlimit64 {
            rlim_cur: l.soft,
            rlim_max: l.hard,
        };
        // SAFETY: prlimit64 from a local struct, old value not read.
        let r = unsafe {
            libc::syscall(
                libc::SYS_prlimit64,
                pid as libc::c_long,
                l.resource as libc::c_long,
                &new,
                std::ptr::null_mut::<libc::rlimit64>(),
            )
        };
        if r != 0 {
            let e = crate::error::last_errno();
            if e == libc::EPERM {
                return Err(eperm_message(l, current(l.resource).map(|c| c.1)));
            }
            return Err(Error::errno(
                format!(
                    "setrlimit {} soft={} hard={}",
                    l.name,
                    show(l.soft),
                    show(l.hard)
                ),
                e,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nofile(soft: u64, hard: u64) -> Vec<Limit> {
        vec![Limit {
            resource: RLIMIT_NOFILE,
            name: "RLIMIT_NOFILE",
            soft,
            hard,
        }]
    }

    #[test]
    fn names_round_trip() {
        for (i, n) in NAMES.iter().enumerate() {
            assert_eq!(rlimit_from_name(n), Some(i as u32));
            assert_eq!(rlimit_name(i as u32), Some(*n));
        }
        assert_eq!(
            rlimit_from_name("RLIMIT_NOFILE"),
            Some(libc::RLIMIT_NOFILE as u32)
        );
        assert_eq!(
            rlimit_from_name("RLIMIT_RTTIME"),
            Some(libc::RLIMIT_RTTIME as u32)
        );
        assert_eq!(rlimit_from_name("RLIMIT_AS"), Some(libc::RLIMIT_AS as u32));
        for bad in ["", "NOFILE", "rlimit_nofile", "RLIMIT_", "RLIMIT_NOFILES"] {
            assert_eq!(rlimit_from_name(bad), None, "{bad}");
        }
        assert_eq!(rlimit_name(16), None);
    }

    #[test]
    fn precheck_refuses_raising_hard_without_cap() {
        let (_, hard) = current(RLIMIT_NOFILE).unwrap();
        if hard == u64::MAX {
            return;
        }
        let l = nofile(1, hard + 1);
        let e = precheck(&l, false).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "setrlimit RLIMIT_NOFILE soft=1 hard={}: operation not permitted (hard limit of the runtime is {hard})",
                hard + 1
            )
        );
        let l = nofile(1, hard);
        precheck(&l, false).unwrap();
    }

    #[test]
    fn precheck_refuses_nofile_above_nr_open() {
        let Some(max) = nr_open() else { return };
        let l = nofile(1, max + 1);
        let e = precheck(&l, true).unwrap_err().to_string();
        assert!(
            e.ends_with(&format!("operation not permitted (fs.nr_open is {max})")),
            "{e}"
        );
    }
}
