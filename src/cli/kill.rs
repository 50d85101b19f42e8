use super::args::{self, flag, Flag};
use super::Global;
use crate::bail;
use crate::error::Result;
use std::ffi::OsString;

pub const FLAGS: &[Flag] = &[flag(
    "all",
    Some('a'),
    "signal every process of the container, not only init",
)];

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if super::help_requested(&a, "usage: runway kill [flags] <id> [SIGNAL]\n\nSend SIGNAL (default TERM; a name or number) to the container.\n") {
        return Ok(0);
    }
    let (id, sig) = match a.positionals.as_slice() {
        [id] => (id, "TERM"),
        [id, s] => (id, s.as_str()),
        [] => bail!("kill: container id is required"),
        _ => bail!("kill: too many arguments"),
    };
    // Signal 0 probes: it checks the container is there and running and
    // delivers nothing (runc accepts it; it is no signal name).
    let sig = if sig == "0" {
        0
    } else {
        crate::linux::signal::parse(sig)?
    };
    crate::container::kill(&g.root, id, sig, a.is_set("all"))?;
    Ok(0)
}
