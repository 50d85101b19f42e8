//! runway: an OCI container runtime with runc's command line.

pub mod error;
pub mod spec;
pub mod cgroups;
pub mod linux;
pub mod seccomp;
