//! runway: an OCI container runtime with runc's command line.

pub mod cgroups;
pub mod error;
pub mod linux;
pub mod seccomp;
pub mod spec;
