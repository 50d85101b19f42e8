//! `runway image pull`.

use crate::cli::Global;
use crate::error::Result;
use std::ffi::OsString;

pub fn main(_g: &Global, _argv: Vec<OsString>) -> Result<i32> {
    crate::bail!("image pull: not implemented yet")
}
