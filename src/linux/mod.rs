//! Thin syscall wrappers and the per-concern pieces of process setup.

pub mod security;
