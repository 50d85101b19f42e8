//! `runway image …`: docker's image management commands, one file each.

pub mod import;
pub mod inspect;
pub mod login;
pub mod ls;
pub mod prune;
pub mod pull;
pub mod push;
pub mod rm;
pub mod tag;

use super::Global;
use crate::bail;
use crate::error::Result;
use std::ffi::OsString;

const USAGE: &str = "usage: runway image COMMAND [flags] [args]

Commands:
  pull     fetch an image from a registry (alias: runway pull)
  push     send an image to a registry
  import   an OCI layout, docker-archive or rootfs tarball into the store
  ls       list images (alias: runway images)
  inspect  the JSON of one or more images
  rm       remove images (alias: runway rmi)
  tag      give an image another name
  prune    remove dangling images (-a: unused ones) and unreferenced data
  login    save credentials for a registry
  logout   forget them

Every command takes --help.
";

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let mut argv = argv.into_iter();
    let Some(cmd) = argv.next() else {
        print!("{USAGE}");
        return Ok(0);
    };
    let rest: Vec<OsString> = argv.collect();
    match cmd.to_string_lossy().as_ref() {
        "pull" => pull::main(g, rest),
        "push" => push::main(g, rest),
        "import" | "load" => import::main(g, rest),
        "ls" | "list" => ls::main(g, rest),
        "inspect" => inspect::main(g, rest),
        "rm" | "remove" => rm::main(g, rest),
        "tag" => tag::main(g, rest),
        "prune" => prune::main(g, rest),
        "login" => login::login(g, rest),
        "logout" => login::logout(g, rest),
        "--help" | "-h" | "help" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => bail!("unknown command \"image {other}\" (see runway image --help)"),
    }
}
