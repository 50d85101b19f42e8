//! clone3 with namespace flags (and CLONE_INTO_CGROUP), falling back to
//! clone(2) on kernels without clone3. Fork-like: no new stack, the child
//! continues on a copy of ours.

use crate::error::{last_errno, Error, Result};

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Returns 0 in the child, the child's pid in the parent.
///
/// # Safety-related contract
/// We are single-threaded, so the child may keep running ordinary code:
/// no other thread can hold a lock it would need.
pub fn clone3(flags: u64, cgroup_fd: Option<i32>) -> Result<i32> {
    // A CLONE_PARENT child signals our parent as we would: clone3 wants
    // no exit signal of its own then.
    let exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 {
        0
    } else {
        libc::SIGCHLD as u64
    };
    let mut args = CloneArgs {
        flags,
        exit_signal,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: args is a valid clone_args of the size we pass; with no stack
    // given the kernel duplicates ours copy-on-write, as fork does.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r >= 0 {
        return Ok(r as i32);
    }
    let e = last_errno();
    if e == libc::ENOSYS || (e == libc::E2BIG) || (e == libc::EINVAL && cgroup_fd.is_some()) {
        if cgroup_fd.is_some() && e != libc::ENOSYS {
            // Kernel knows clone3 but not CLONE_INTO_CGROUP: the caller
            // falls back to writing cgroup.procs.
            return Err(Error::errno("clone3 into cgroup", e));
        }
        // SAFETY: fork-like clone: null stack, no tid pointers.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags as libc::c_ulong) | libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if r >= 0 {
            return Ok(r as i32);
        }
        return Err(Error::last_os("clone"));
    }
    Err(Error::errno("clone3", e))
}

/// clone3 into `cgroup_fd` when there is one (pure v2), falling back to a
/// plain clone when the kernel refuses it. Returns (pid, landed in cgroup):
/// when false the caller must write cgroup.procs itself.
pub fn clone3_into(flags: u64, cgroup_fd: Option<&std::os::fd::OwnedFd>) -> Result<(i32, bool)> {
    use std::os::fd::AsRawFd;
    if let Some(fd) = cgroup_fd {
        if let Ok(pid) = clone3(flags, Some(fd.as_raw_fd())) {
            return Ok((pid, true));
        }
    }
    clone3(flags, None).map(|pid| (pid, false))
}
