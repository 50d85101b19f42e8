//! Thin syscall wrappers and the per-concern pieces of process setup.

pub mod caps;
pub mod lsm;
pub mod rlimit;
pub mod sched;
pub mod security;
pub mod sysctl;
