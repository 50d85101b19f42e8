use super::args::{self, flag, Flag};
use super::Global;
use crate::error::Result;
use std::ffi::OsString;

pub const FLAGS: &[Flag] = &[flag(
    "force",
    Some('f'),
    "kill the container (SIGKILL) if it still runs",
)];

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if super::help_requested(&a, "usage: runway delete [flags] <id>\n\nDelete a stopped (or, with --force, any) container and all it used.\n") {
        return Ok(0);
    }
    let id = super::one_id(&a, "delete")?;
    crate::container::delete(&g.root, &id, a.is_set("force"))?;
    Ok(0)
}
