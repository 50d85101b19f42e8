//! Docker-like containers from images: image -> OCI bundle (spec, overlay
//! rootfs), names and ids, logs; the monitor and restart policies come on
//! top. A porcelain container is an ordinary OCI container in the runtime
//! root. Built only with the `full` feature.

pub mod logs;
pub mod names;
pub mod overlay;
pub mod spec;
pub mod tini;
pub mod volumes;
