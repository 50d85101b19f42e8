use super::args::{self, flag, val, Flag};
use super::Global;
use crate::container::create::{create, CreateOpts};
use crate::error::Result;
use std::ffi::OsString;
use std::path::Path;

pub const FLAGS: &[Flag] = &[
    val("bundle", Some('b')),
    val("pid-file", None),
    val("console-socket", None),
    flag("no-pivot", None),
    flag("no-new-keyring", None),
    val("preserve-fds", None),
];

const HELP: &str = "usage: runway create [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring] [--preserve-fds N] <id>\n";

pub fn opts<'a>(
    g: &'a Global,
    a: &'a args::Args,
    id: &'a str,
    no_fifo: bool,
) -> Result<CreateOpts<'a>> {
    Ok(CreateOpts {
        root: &g.root,
        id,
        bundle: Path::new(a.get("bundle").unwrap_or(".")),
        pid_file: a.get("pid-file").map(Path::new),
        console_socket: a.get("console-socket").map(Path::new),
        no_pivot: a.is_set("no-pivot"),
        no_new_keyring: a.is_set("no-new-keyring"),
        preserve_fds: a.get_num::<u32>("preserve-fds")?.unwrap_or(0),
        systemd_cgroup: g.systemd_cgroup,
        rootless: g.rootless.unwrap_or(false),
        no_fifo,
        console_fd: None,
    })
}

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if super::help_requested(&a, HELP) {
        return Ok(0);
    }
    let id = super::one_id(&a, "create")?;
    create(&opts(g, &a, &id, false)?)?;
    Ok(0)
}
