//! OCI seccomp profile -> classic BPF, compiled by us (no libseccomp).
//!
//! Semantics (runc + libseccomp compatible where it is observable; every
//! choice below is also what `reference_verdict` implements):
//!
//! * Architectures: the native ABI is always filtered (libseccomp adds it);
//!   `SCMP_ARCH_X86_64`, `X86`, `X32`, `AARCH64` get syscall tables. Other
//!   libseccomp architectures are accepted and reported in
//!   `Program::ignored` (their syscalls cannot reach an x86_64 filter); an
//!   unknown name is an error. A syscall from an ABI not filtered gets
//!   `SECCOMP_RET_KILL_PROCESS` (libseccomp's bad-arch default kills only the
//!   thread; we kill the process so nothing half-dead is left).
//! * x32 is AUDIT_ARCH_X86_64 with `nr >= 0x40000000` (__X32_SYSCALL_BIT,
//!   the same split libseccomp makes): such numbers never match x86_64
//!   rules; they are filtered by the x32 table when X32 is listed and are
//!   bad-arch otherwise.
//! * i386 `socket`, `ipc` & co. resolve to their direct syscalls only;
//!   libseccomp also matches them inside `socketcall`/`ipc`, we do not
//!   demultiplex those (a profile allowing `socketcall` allows all of it).
//! * Names resolve per ABI; a name missing on one ABI is skipped there, a
//!   name missing on all filtered ABIs is listed in `Program::ignored`.
//! * A rule whose action equals the default action (errno included) is
//!   dropped, as runc does.
//! * Several rules for one syscall: an unconditional rule (no `args`) wins,
//!   the first one if several (libseccomp keeps the first and discards
//!   argument trees once a syscall is unconditional). Otherwise, among the
//!   rules whose argument tests all hold (AND; but when two tests of one
//!   rule look at the same argument, runc adds each test as a rule of its
//!   own, so there ANY test holding is enough), the strongest action wins in
//!   the kernel's order KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > NOTIFY >
//!   TRACE > LOG > ALLOW; on a tie the earlier rule wins. No match: default.
//!   This differs from libseccomp only for overlapping conditional rules
//!   with different actions, which real profiles avoid. There libseccomp
//!   2.5.4 (checked through runc 1.1.5) ignores both profile order and
//!   action: it tests higher argument indexes first, on one index EQ before
//!   GE and larger values first, and the first hit wins (ALLOW if a1==1
//!   beats ERRNO if a0==5); identical or nested argument lists with
//!   different actions make runc fail with EEXIST. We pick the restrictive
//!   verdict instead of reproducing its tree order.
//! * Arguments compare as unsigned 64-bit values; on x86 and x32 only the low
//!   32 bits of the argument exist (as libseccomp), so e.g. `EQ 1<<32` never
//!   holds there.
//! * ENOSYS (runc's stub): unless the default action is ALLOW, LOG, TRACE,
//!   NOTIFY or already ERRNO(ENOSYS), a syscall numbered above the highest
//!   number any profile name has on that ABI (names of dropped rules count,
//!   as in runc) returns ERRNO(ENOSYS), so a libc newer than the profile
//!   falls back (e.g. clone3 -> clone). Unnamed holes below it get the
//!   default action.
//! * errnoRet defaults to EPERM for ERRNO and TRACE, and must fit 16 bits.
//! * Flags: the four OCI names; unknown is an error. With a NOTIFY action the
//!   filter is loaded with NEW_LISTENER (plus TSYNC_ESRCH if TSYNC is asked,
//!   which the kernel requires) and `listenerPath` is required.
//!   WAIT_KILLABLE_RECV is dropped when nothing notifies (kernel: EINVAL).
//!   (runc 1.1.5 refuses every flag; crun and newer runc accept these.)
//!
//! Use: `compile` in the runtime before forking; `load` in the container
//! process as late as possible (right before execve when no_new_privs is
//! set, otherwise while it still has CAP_SYS_ADMIN, as runc). The listener
//! fd `load` returns is O_CLOEXEC; hand it to the runtime, which passes it to
//! the agent with `send_listener` (see notify.rs for why not the child).

mod codegen;
pub mod interp;
pub mod model;
mod notify;
mod reference;
mod tables;

#[cfg(test)]
mod tests;

pub use notify::{build_process_state, send_listener};
pub use reference::{reference_verdict, reference_verdict_parsed, Reference};

use crate::error::{Error, Result};
use crate::spec::Seccomp;
use std::os::fd::{FromRawFd, OwnedFd};

/// A compiled filter, ready for the child to load with one syscall.
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub insns: Vec<libc::sock_filter>,
    /// SECCOMP_FILTER_FLAG_* bits, NEW_LISTENER included when `notify`.
    pub flags: u32,
    /// Some rule uses SCMP_ACT_NOTIFY: load returns a listener fd.
    pub notify: bool,
    /// Syscall names no filtered ABI knows, and architectures accepted but
    /// not filtered; the caller logs them at debug level.
    pub ignored: Vec<String>,
}

/// Parent side: all parsing, name lookup and code generation.
pub fn compile(profile: &Seccomp) -> Result<Program> {
    let p = model::Profile::parse(profile)?;
    let insns = codegen::generate(&p);
    if insns.len() > interp::MAX_INSNS {
        crate::bail!(
            "seccomp: filter has {} instructions, the kernel takes at most {}",
            insns.len(),
            interp::MAX_INSNS
        );
    }
    Ok(Program {
        insns,
        flags: p.flags,
        notify: p.notify,
        ignored: p.ignored,
    })
}

const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;

/// Child side: load the filter (needs no_new_privs or CAP_SYS_ADMIN).
/// Returns the notify listener fd if any. Only a syscall: safe between fork
/// and exec.
pub fn load(prog: &Program) -> Result<Option<OwnedFd>> {
    if prog.insns.is_empty() {
        return Ok(None);
    }
    let Ok(len) = u16::try_from(prog.insns.len()) else {
        return Err(Error::msg("seccomp: filter too long"));
    };
    let fprog = libc::sock_fprog {
        len,
        filter: prog.insns.as_ptr() as *mut libc::sock_filter,
    };
    let mut flags = prog.flags;
    if prog.notify {
        flags |= model::FLAG_NEW_LISTENER;
    }
    // SAFETY: fprog points at prog.insns, alive for the call; the kernel
    // copies the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &fprog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(Error::last_os("seccomp(SECCOMP_SET_MODE_FILTER)"));
    }
    if flags & model::FLAG_NEW_LISTENER == 0 && r > 0 {
        // TSYNC reports the thread it could not synchronise.
        return Err(Error::msg("seccomp: TSYNC failed for another thread"));
    }
    if flags & model::FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the kernel returns a new fd we now own.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(r as i32) }));
    }
    Ok(None)
}
