//! `runway image rm` (alias `runway rmi`): untag, delete, collect garbage.

use crate::cli::args::{self, flag, Flag};
use crate::cli::Global;
use crate::error::{Error, Result};
use crate::image::store::{familiar, Store};
use std::ffi::OsString;

const USAGE: &str = "usage: runway image rm [flags] IMAGE [IMAGE...]

Remove names from images; an image whose last name goes is deleted, with
the blobs and layers no other image uses.
";

pub const FLAGS: &[Flag] = &[
    flag(
        "force",
        Some('f'),
        "remove an image given by ID even if it has several names",
    ),
    flag(
        "no-prune",
        None,
        "accepted (untagged parents do not exist here)",
    ),
];

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if crate::cli::help_requested(&a, USAGE) {
        return Ok(0);
    }
    if a.positionals.is_empty() {
        crate::bail!("image rm needs at least one image");
    }
    let force = a.is_set("force");
    let store = Store::open(&g.data_root)?;
    let mut failed = false;
    let mut deleted_any = false;
    for p in &a.positionals {
        match rm_one(&store, p, force) {
            Ok(lines) => {
                deleted_any |= lines.iter().any(|l| l.starts_with("Deleted"));
                for l in lines {
                    println!("{l}");
                }
            }
            Err(e) => {
                crate::log::error(&e.to_string());
                failed = true;
            }
        }
    }
    if deleted_any {
        // Without waiting for a running pull or import: the data they may
        // count on stays until the next rm or prune finds no writer.
        if let Some(report) = store.try_gc()? {
            for (l, _) in &report.layers {
                println!("Deleted: {l}");
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn rm_one(store: &Store, s: &str, force: bool) -> Result<Vec<String>> {
    let (img, name) = store.lookup(s)?;
    // A container's image stays while the container does (docker refuses
    // unless forced; forced, the names go and the data stays held).
    let last_name = name.is_none() || img.names.len() + img.repo_digests.len() <= 1;
    if last_name && !force {
        if let Some((holder, _)) = store
            .holds()
            .into_iter()
            .find(|(_, d)| d == &img.manifest.digest)
        {
            let short = &holder[..holder.len().min(12)];
            return Err(Error::msg(match &name {
                Some(n) => format!(
                    "conflict: unable to remove repository reference \"{}\" (must force) - container {short} is using its referenced image {}",
                    familiar(n),
                    img.short_id()
                ),
                None => format!(
                    "conflict: unable to delete {} (must be forced) - image is being used by container {short}",
                    img.short_id()
                ),
            }));
        }
    }
    let removal = match name {
        Some(n) => store.remove_name(&n)?,
        None => {
            if img.names.len() > 1 && !force {
                return Err(Error::msg(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    img.short_id()
                )));
            }
            store.remove_image(&img.manifest.digest)?
        }
    };
    let mut lines: Vec<String> = removal
        .untagged
        .iter()
        .map(|n| format!("Untagged: {}", familiar(n)))
        .collect();
    if removal.deleted.is_some() {
        lines.push(format!("Deleted: {}", img.id));
    }
    Ok(lines)
}
