//! OCI seccomp profile -> classic BPF, compiled by us (no libseccomp).
//! STUB: interface used by container init; implementation lands from the
//! seccomp work.

use crate::error::Result;
use crate::spec::Seccomp;

/// A compiled filter, ready for the child to load with one syscall.
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub insns: Vec<libc::sock_filter>,
    /// SECCOMP_FILTER_FLAG_* bits.
    pub flags: u32,
    /// Some rule uses SCMP_ACT_NOTIFY: load returns a listener fd.
    pub notify: bool,
}

/// Parent side: all parsing, name lookup and code generation.
pub fn compile(_profile: &Seccomp) -> Result<Program> {
    Ok(Program::default())
}

/// Child side: load the filter. Returns the notify listener fd if any.
pub fn load(_prog: &Program) -> Result<Option<std::os::fd::OwnedFd>> {
    Ok(None)
}
