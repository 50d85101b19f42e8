//! `runway image login` / `logout`: credentials in docker's auth file format.

use crate::cli::Global;
use crate::error::Result;
use std::ffi::OsString;

pub fn login(_g: &Global, _argv: Vec<OsString>) -> Result<i32> {
    crate::bail!("image login: not implemented yet")
}

pub fn logout(_g: &Global, _argv: Vec<OsString>) -> Result<i32> {
    crate::bail!("image logout: not implemented yet")
}
