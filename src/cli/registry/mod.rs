//! `runway registry …`: serve an OCI Distribution registry, collect its garbage.

use super::Global;
use crate::bail;
use crate::error::Result;
use std::ffi::OsString;

pub fn main(_g: &Global, _argv: Vec<OsString>) -> Result<i32> {
    bail!("runway registry: not yet")
}
