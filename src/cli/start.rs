use super::args;
use super::Global;
use crate::error::Result;
use std::ffi::OsString;

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, &[], None)?;
    if super::help_requested(
        &a,
        "usage: runway start <id>\n\nStart a created container's process.\n",
    ) {
        return Ok(0);
    }
    let id = super::one_id(&a, "start")?;
    crate::container::start(&g.root, &id)?;
    Ok(0)
}
