//! `runway image prune`: dangling (or all) images, then every blob, layer
//! and temporary file nothing refers to.

use crate::cli::args::{self, flag, Flag};
use crate::cli::image::ls::human_size;
use crate::cli::Global;
use crate::error::Result;
use crate::image::store::{familiar, Store};
use std::ffi::OsString;
use std::io::{BufRead, Write};

const USAGE: &str = "usage: runway image prune [flags]

Remove dangling images (with -a: all images), then the blobs, unpacked
layers and stale temporary files no image uses.
";

pub const FLAGS: &[Flag] = &[
    flag(
        "all",
        Some('a'),
        "remove all images, not only dangling ones",
    ),
    flag("force", Some('f'), "do not ask for confirmation"),
];

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if crate::cli::help_requested(&a, USAGE) {
        return Ok(0);
    }
    if let Some(x) = a.positionals.first() {
        crate::bail!("image prune takes no arguments, got {x:?}");
    }
    let all = a.is_set("all");
    if !a.is_set("force") {
        let what = if all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        print!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if !matches!(line.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(0);
        }
    }
    let store = Store::open(&g.data_root)?;
    let mut lines = Vec::new();
    for img in store.images()? {
        if !all && !img.names.is_empty() {
            continue;
        }
        let r = store.remove_image(&img.manifest.digest)?;
        for n in &r.untagged {
            lines.push(format!("untagged: {}", familiar(n)));
        }
        if r.deleted.is_some() {
            lines.push(format!("deleted: {}", img.id));
        }
    }
    let report = store.gc()?;
    for (l, _) in &report.layers {
        lines.push(format!("deleted: {l}"));
    }
    let mut out = String::new();
    if !lines.is_empty() {
        out.push_str("Deleted Images:\n");
        for l in &lines {
            out.push_str(l);
            out.push('\n');
        }
        out.push('\n');
    }
    if !report.blobs.is_empty() {
        out.push_str("Deleted Blobs:\n");
        for (b, _) in &report.blobs {
            out.push_str(&format!("{b}\n"));
        }
        out.push('\n');
    }
    if !report.tmp.is_empty() {
        out.push_str("Deleted Temporary Files:\n");
        for (t, _) in &report.tmp {
            out.push_str(&format!("{t}\n"));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(report.bytes())
    ));
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(0)
}
