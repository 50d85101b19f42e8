//! `runway image push`: an image from the store to a registry.

use crate::bail;
use crate::cli::Global;
use crate::error::Result;
use std::ffi::OsString;

pub fn main(_g: &Global, _argv: Vec<OsString>) -> Result<i32> {
    bail!("runway image push: not yet")
}
