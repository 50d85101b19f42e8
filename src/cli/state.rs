use super::args;
use super::Global;
use crate::container::state;
use crate::error::{Error, Result};
use std::ffi::OsString;

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, &[], None)?;
    if super::help_requested(
        &a,
        "usage: runway state <id>\n\nPrint the state of a container as JSON.\n",
    ) {
        return Ok(0);
    }
    let id = super::one_id(&a, "state")?;
    state::validate_id(&id)?;
    let dir = state::Dir::new(&g.root, &id);
    let st = dir.load(&id)?;
    let status = st.status(&dir);
    let owner = state::owner_of(&dir.path);
    let mut out = crate::jsonfmt::to_vec_pretty(&st.oci(status, &owner))
        .map_err(|e| Error::msg(format!("encode state: {e}")))?;
    out.push(b'\n');
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &out);
    Ok(0)
}
