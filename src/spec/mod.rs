//! config.json: types, the default `spec`, loading and validation.

pub mod types;
pub use types::*;

pub mod defaults;
pub mod validate;

use crate::error::{Context, Error, Result};
use std::path::Path;

/// The OCI runtime-spec version this runtime implements.
pub const OCI_VERSION: &str = "1.1.0";

/// Read and parse `<bundle>/config.json`. Errors name the file and, for JSON
/// errors, the line and column.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).ctx(|| format!("read {}", path.display()))?;
    parse(&bytes).map_err(|e| e.wrap(path.display()))
}

pub fn parse(bytes: &[u8]) -> Result<Spec> {
    serde_json::from_slice::<Spec>(bytes).map_err(|e| Error::msg(format!("invalid JSON: {e}")))
}
