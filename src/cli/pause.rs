use super::args;
use super::Global;
use crate::bail;
use crate::container::state::Status;
use crate::error::Result;
use std::ffi::OsString;

pub fn pause(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, &[], None)?;
    if super::help_requested(
        &a,
        "usage: runway pause <id>\n\nFreeze every process of the container.\n",
    ) {
        return Ok(0);
    }
    let id = super::one_id(&a, "pause")?;
    let (dir, st, _lock) = crate::container::open(&g.root, &id)?;
    match st.status(&dir) {
        Status::Running | Status::Created => st.cgroup.freeze()?,
        Status::Paused => bail!("container {id} is already paused"),
        s => bail!("container {id} is not running: {}", s.as_str()),
    }
    Ok(0)
}

pub fn resume(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, &[], None)?;
    if super::help_requested(
        &a,
        "usage: runway resume <id>\n\nThaw a paused container.\n",
    ) {
        return Ok(0);
    }
    let id = super::one_id(&a, "resume")?;
    let (dir, st, _lock) = crate::container::open(&g.root, &id)?;
    match st.status(&dir) {
        Status::Paused => st.cgroup.thaw()?,
        // A paused container that was never started reads "created" (the
        // exec fifo is still there); it must thaw all the same.
        Status::Created if st.cgroup.is_frozen() => st.cgroup.thaw()?,
        s => bail!("container {id} is not paused: {}", s.as_str()),
    }
    Ok(0)
}
