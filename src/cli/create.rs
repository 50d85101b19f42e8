use super::args::{self, flag, val, Flag};
use super::Global;
use crate::container::create::{create, CreateOpts};
use crate::error::Result;
use std::ffi::OsString;
use std::path::Path;

pub const FLAGS: &[Flag] = &[
    val(
        "bundle",
        Some('b'),
        "DIR",
        "bundle directory holding config.json (default: the current directory)",
    ),
    val(
        "pid-file",
        None,
        "FILE",
        "write the container process's pid to FILE",
    ),
    val(
        "console-socket",
        None,
        "PATH",
        "AF_UNIX socket that receives the pty master (process.terminal)",
    ),
    flag(
        "no-pivot",
        None,
        "move the rootfs to / instead of pivot_root (rootfs on a ramdisk)",
    ),
    flag(
        "no-new-keyring",
        None,
        "keep the caller's session keyring instead of a new one",
    ),
    val(
        "preserve-fds",
        None,
        "N",
        "pass N more fds (from 3, after $LISTEN_FDS) to the container",
    ),
];

const HELP: &str = "usage: runway create [flags] <id>\n\nCreate a container from a bundle; its process waits for `runway start <id>`.\n";

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
