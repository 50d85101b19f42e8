//! `runway image tag`: another name for an image.

use crate::bail;
use crate::cli::args::{self, Flag};
use crate::cli::Global;
use crate::error::Result;
use crate::image::reference::Reference;
use crate::image::store::Store;
use std::ffi::OsString;

const USAGE: &str = "usage: runway image tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]

Give the image SOURCE another name, TARGET (moved from any image that had it).
";

pub const FLAGS: &[Flag] = &[];

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if crate::cli::help_requested(&a, USAGE) {
        return Ok(0);
    }
    let [src, dst] = a.positionals.as_slice() else {
        bail!("image tag needs exactly 2 arguments: SOURCE TARGET");
    };
    let target = Reference::parse(dst)?;
    if target.digest.is_some() {
        bail!("refusing to create a tag with a digest reference: {dst}");
    }
    let store = Store::open(&g.data_root)?;
    let _w = store.writer()?;
    let img = store.resolve(src)?;
    store.add_image(&img.manifest, Some(&target), None)?;
    Ok(0)
}
