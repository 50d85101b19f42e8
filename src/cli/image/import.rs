//! `runway image import`.

use crate::cli::Global;
use crate::error::Result;
use std::ffi::OsString;

pub fn main(_g: &Global, _argv: Vec<OsString>) -> Result<i32> {
    crate::bail!("image import: not implemented yet")
}
