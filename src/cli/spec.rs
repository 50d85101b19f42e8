use super::args::{self, flag, val, Flag};
use super::Global;
use crate::bail;
use crate::error::{Context, Result};
use std::ffi::OsString;
use std::path::PathBuf;

pub const FLAGS: &[Flag] = &[
    val(
        "bundle",
        Some('b'),
        "DIR",
        "where to write config.json (default: the current directory)",
    ),
    flag(
        "rootless",
        None,
        "a config for a rootless container (user namespace)",
    ),
];

pub fn main(_g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if super::help_requested(
        &a,
        "usage: runway spec [flags]\n\nWrite a default config.json.\n",
    ) {
        return Ok(0);
    }
    if !a.positionals.is_empty() {
        bail!("spec: unexpected argument {:?}", a.positionals[0]);
    }
    let dir = PathBuf::from(a.get("bundle").unwrap_or("."));
    let path = dir.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let spec = crate::spec::defaults::default_spec(a.is_set("rootless"), uid, gid);
    std::fs::write(&path, crate::spec::defaults::to_json(&spec))
        .ctx(|| format!("write {}", path.display()))?;
    Ok(0)
}
