//! `runway image push`: an image from the store to a registry, with docker's output.

use crate::cli::args::{self, flag, val, Flag};
use crate::cli::Global;
use crate::error::{Context, Result};
use crate::image::push::{push, PushOpts};
use crate::image::reference::Reference;
use std::ffi::OsString;

const USAGE: &str = "usage: runway image push [flags] SOURCE [DESTINATION]

Send the stored image SOURCE (a name or ID) to a registry as DESTINATION
(default: SOURCE's name). Credentials: 'runway image login'.
";

const FLAGS: &[Flag] = &[
    val(
        "chunk-size",
        None,
        "SIZE",
        "upload blobs in chunks of SIZE (e.g. 5m; default 0: one request each)",
    ),
    val(
        "digestfile",
        None,
        "FILE",
        "write the pushed manifest's digest to FILE",
    ),
    flag("quiet", Some('q'), "print only the pushed name"),
];

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if crate::cli::help_requested(&a, USAGE) {
        return Ok(0);
    }
    let (src, dst) = match a.positionals.as_slice() {
        [s] => (s, None),
        [s, d] => (s, Some(Reference::parse(d)?)),
        _ => crate::bail!("image push: want SOURCE [DESTINATION] (see --help)"),
    };
    let opts = PushOpts {
        data_root: g.data_root.clone(),
        insecure_registries: g.insecure_registries.clone(),
        chunk: match a.get("chunk-size") {
            Some(s) => crate::engine::logs::parse_size(s)?,
            None => 0,
        },
        quiet: a.is_set("quiet"),
    };
    let p = push(src, dst, &opts)?;
    if let Some(f) = a.get("digestfile") {
        std::fs::write(f, p.digest.as_str()).ctx(|| format!("write {f}"))?;
    }
    if opts.quiet {
        println!("{}", p.dst);
    } else {
        println!(
            "{}: digest: {} size: {}",
            p.dst.api_reference(),
            p.digest,
            p.size
        );
    }
    Ok(0)
}
