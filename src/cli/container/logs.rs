//! `container logs` (alias `runway logs`): the json-file log, with
//! docker's -f, --tail, -t, --since and --until.

use crate::cli::args::{self, flag, val, Flag};
use crate::cli::Global;
use crate::engine::logs::{self, ReadOpts};
use crate::engine::{names, record};
use crate::error::Result;
use std::ffi::OsString;
use std::time::SystemTime;

const FLAGS: &[Flag] = &[
    flag("follow", Some('f'), "keep printing new output"),
    val("tail", Some('n'), "N", "only the last N lines (all)"),
    flag("timestamps", Some('t'), "prefix each line with its time"),
    val(
        "since",
        None,
        "TIME",
        "only after TIME (RFC 3339, Unix seconds or 10m)",
    ),
    val("until", None, "TIME", "only before TIME"),
    flag("details", None, "accepted"),
];

const USAGE: &str = "usage: runway container logs [flags] CONTAINER\n";

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, FLAGS, None)?;
    if crate::cli::help_requested(&a, USAGE) {
        return Ok(0);
    }
    let [n] = a.positionals.as_slice() else {
        crate::bail!("\"container logs\" requires exactly 1 argument");
    };
    let id = names::resolve(&g.data_root, n)?;
    let dir = record::dir(&g.data_root, &id);
    let now = SystemTime::now();
    let opts = ReadOpts {
        tail: match a.get("tail") {
            Some(t) => logs::parse_tail(t)?,
            None => None,
        },
        since: a
            .get("since")
            .map(|s| logs::parse_time_arg(s, now))
            .transpose()?,
        until: a
            .get("until")
            .map(|s| logs::parse_time_arg(s, now))
            .transpose()?,
        timestamps: a.is_set("timestamps"),
        stdout: true,
        stderr: true,
    };
    let path = dir.join(record::LOG);
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    if a.is_set("follow") {
        let mut alive = || record::monitor_alive(&dir);
        logs::follow(&path, &opts, &mut out, &mut err, &mut alive)?;
    } else {
        logs::read(&path, &opts, &mut out, &mut err)?;
    }
    Ok(0)
}
