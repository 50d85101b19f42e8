//! `runway image pull` (alias `runway pull`): docker's output and flags.

use crate::cli::args::{self, flag, val, Flag};
use crate::cli::Global;
use crate::error::Result;
use crate::image::pull::{pull, PullOpts};
use crate::image::reference::Reference;
use crate::image::types::Platform;
use std::ffi::OsString;

const USAGE: &str = "usage: runway image pull [flags] NAME[:TAG|@DIGEST]

Fetch an image from a registry into the store (--data-root).
";

const FLAGS: &[Flag] = &[
    val(
        "platform",
        None,
        "OS/ARCH[/VARIANT]",
        "the platform to pull from a multi-platform image (default: this host's)",
    ),
    flag("quiet", Some('q'), "print only the image's name"),
    flag("all-tags", Some('a'), "not supported"),
];

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if a.help {
        print!("{}", args::help_text(USAGE, &a.table));
        return Ok(0);
    }
    if a.is_set("all-tags") {
        crate::bail!("image pull: --all-tags is not supported");
    }
    let [name] = a.positionals.as_slice() else {
        crate::bail!("image pull: want exactly one image name (see --help)");
    };
    let r = Reference::parse(name)?;
    let platform = match a.get("platform") {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let quiet = a.is_set("quiet");
    let opts = PullOpts {
        data_root: g.data_root.clone(),
        platform,
        platform_explicit: a.get("platform").is_some(),
        insecure_registries: g.insecure_registries.clone(),
        quiet,
    };
    if !quiet {
        println!(
            "{}: Pulling from {}",
            r.tag
                .as_deref()
                .unwrap_or_else(|| r.digest.as_ref().map_or("latest", |d| d.as_str())),
            r.familiar_name()
        );
    }
    let p = pull(&r, &opts)?;
    if !quiet {
        let short = match (&r.tag, &r.digest) {
            (Some(t), _) => format!("{}:{t}", r.familiar_name()),
            (None, Some(d)) => format!("{}@{d}", r.familiar_name()),
            _ => r.familiar_name(),
        };
        println!(
            "Digest: {}",
            p.repo_digest.rsplit('@').next().unwrap_or(&p.repo_digest)
        );
        if p.up_to_date {
            println!("Status: Image is up to date for {short}");
        } else {
            println!("Status: Downloaded newer image for {short}");
        }
    }
    println!("{r}");
    Ok(0)
}
