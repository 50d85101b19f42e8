//! Docker-like containers from images: image -> OCI bundle (spec, overlay
//! rootfs), names and ids, logs, the per-container monitor and restart
//! policies, removal. A porcelain container is an ordinary OCI container
//! in the runtime root while it runs. Built only with the `full` feature.

pub mod create;
pub mod logs;
pub mod monitor;
pub mod names;
pub mod network;
pub mod overlay;
pub mod record;
pub mod remove;
pub mod spec;
pub mod tini;
pub mod volumes;
