//! Images: references, the OCI/Docker image types, the content-addressed
//! store under the data root, layer unpacking, and the registry client.
//! Built only with the `full` feature: the runtime alone needs none of it.

pub mod decompress;
pub mod digest;
pub mod import;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod store;
pub mod types;
pub mod unpack;
