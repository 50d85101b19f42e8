//! `runway image import` (alias `image load`): archives and rootfs tarballs into the store.

use crate::bail;
use crate::cli::args::{self, flag, val, Flag};
use crate::cli::Global;
use crate::error::{Context, Result};
use crate::image::import;
use crate::image::reference::Reference;
use crate::image::store::{familiar, Store};
use std::ffi::OsString;
use std::path::Path;

const USAGE: &str = "usage: runway image import [flags] SOURCE [REPOSITORY[:TAG]]

Import an OCI image layout (a directory or its tar, as `skopeo copy ...
oci-archive:` writes), a docker-archive (`docker save`), or a plain rootfs
tarball (.tar, .tar.gz, .tar.zst; told by content, not name) as a one-layer
image. REPOSITORY[:TAG] names it; without one, an archive's own names are
used and a rootfs tarball stays untagged.
";

pub const FLAGS: &[Flag] = &[
    flag("quiet", Some('q'), "print the image ID only"),
    val(
        "change",
        Some('c'),
        "INSTR",
        "a Dockerfile instruction for a rootfs tarball's config: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL (repeatable)",
    ),
];

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if crate::cli::help_requested(&a, USAGE) {
        return Ok(0);
    }
    let (src, name) = match a.positionals.as_slice() {
        [s] => (s, None),
        [s, n] => (s, Some(n)),
        _ => bail!("image import needs SOURCE and at most one name"),
    };
    let name = name.map(|n| Reference::parse(n)).transpose()?;
    if name.as_ref().is_some_and(|n| n.digest.is_some()) {
        bail!("image import: a name cannot have a digest");
    }
    let store = Store::open(&g.data_root)?;
    let changes: Vec<String> = a.all("change").iter().map(|s| s.to_string()).collect();
    let done = import::import_with(&store, Path::new(src), name.as_ref(), &changes)
        .ctx(|| format!("import {src}"))?;
    for img in &done {
        if a.is_set("quiet") || (img.names.is_empty() && img.rootfs) {
            println!("{}", img.id);
        } else if img.names.is_empty() {
            println!("Loaded image ID: {}", img.id);
        } else {
            for n in &img.names {
                println!("Loaded image: {}", familiar(n));
            }
        }
    }
    Ok(0)
}
