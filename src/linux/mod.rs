//! Thin syscall wrappers and the per-concern pieces of process setup.
//! Nothing here knows the container plan or cgroups (the child's mount
//! executor and the process security plan live in container/).

pub mod caps;
pub mod clone;
pub mod file;
pub mod lsm;
pub mod mountinfo;
pub mod mountopt;
pub mod pty;
pub mod rlimit;
pub mod sched;
pub mod signal;
pub mod sync;
pub mod sysctl;
