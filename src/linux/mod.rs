//! Thin syscall wrappers and the per-concern pieces of process setup.

pub mod caps;
pub mod clone;
pub mod file;
pub mod lsm;
pub mod mountopt;
pub mod pty;
pub mod rlimit;
pub mod rootfs;
pub mod sched;
pub mod security;
pub mod signal;
pub mod sync;
pub mod sysctl;
