//! runway's own HTTP/1.1: a pure codec (heads, body framing) that the image
//! client, the registry server and the reverse proxy share, and a small
//! blocking client (TCP, TLS, proxies, redirects, keep-alive) on top of it.

pub mod client;
pub mod codec;
pub mod proxy;
