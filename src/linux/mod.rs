//! Thin syscall wrappers and the per-concern pieces of process setup.

pub mod clone;
pub mod mountopt;
pub mod rootfs;
pub mod security;
pub mod signal;
pub mod sync;
