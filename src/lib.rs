//! runway: an OCI container runtime with runc's command line.

pub mod arena;
pub mod cgroups;
pub mod cli;
pub mod container;
#[cfg(feature = "full")]
pub mod engine;
pub mod error;
#[cfg(feature = "full")]
pub mod http;
#[cfg(feature = "full")]
pub mod image;
pub mod jsonfmt;
pub mod linux;
pub mod log;
#[cfg(feature = "full")]
pub mod net;
pub mod num;
#[cfg(feature = "full")]
pub mod registry;
pub mod seccomp;
pub mod spec;
pub mod timefmt;
