//! `container rm` (alias `runway rm`) and `container prune`: a running
//! container only with -f (stopped with KILL first), a dead monitor's
//! leftovers too; every trace goes.

use super::each;
use crate::cli::args::{self, flag, Flag};
use crate::cli::Global;
use crate::engine::{names, record};
use crate::error::Result;
use std::ffi::OsString;
use std::time::Duration;

const FLAGS: &[Flag] = &[
    flag("force", Some('f'), "kill a running container first"),
    flag("volumes", Some('v'), "also remove its anonymous volumes"),
];

const USAGE: &str = "usage: runway container rm [flags] CONTAINER [CONTAINER...]\n";

/// Removes `id`; a running one only with `force`.
pub fn remove(g: &Global, id: &str, shown: &str, force: bool, volumes: bool) -> Result<()> {
    let dir = record::dir(&g.data_root, id);
    let s = record::effective_state(&dir);
    let running = matches!(
        s.status,
        record::Status::Running | record::Status::Restarting
    );
    if running && !force {
        crate::bail!(
            "cannot remove container \"{shown}\": container is running: stop the container before removing or force remove"
        );
    }
    if running || record::monitor_alive(&dir) {
        super::stop::stop(g, id, Some(0), Some("KILL"))?;
    }
    if !super::stop::wait_monitor(&dir, Duration::from_secs(5)) {
        // A monitor that does not go: it is ours to end.
        let st = record::load_state(&dir);
        if st.monitor_pid > 1 {
            // SAFETY: plain kill(2).
            unsafe {
                libc::kill(st.monitor_pid, libc::SIGKILL);
            }
            super::stop::wait_monitor(&dir, Duration::from_secs(5));
        }
    }
    crate::engine::remove::remove(&g.root, &g.data_root, id, volumes)
}

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, FLAGS, None)?;
    if crate::cli::help_requested(&a, USAGE) {
        return Ok(0);
    }
    if a.positionals.is_empty() {
        crate::bail!("\"container rm\" requires at least 1 argument");
    }
    let force = a.is_set("force");
    // What a killed `run`/`create` left before it had a name or a record.
    crate::engine::remove::sweep(&g.root, &g.data_root);
    Ok(each(&a.positionals, |n| {
        let id = match names::resolve(&g.data_root, n) {
            Ok(id) => id,
            // docker rm -f of nothing is quiet success.
            Err(_) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        remove(g, &id, n, force, a.is_set("volumes"))?;
        println!("{n}");
        Ok(())
    }))
}

const PRUNE_FLAGS: &[Flag] = &[flag("force", Some('f'), "do not ask (runway never asks)")];
const PRUNE_USAGE: &str =
    "usage: runway container prune [flags]\n\nRemove every stopped container.\n";

pub fn prune_main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, PRUNE_FLAGS, None)?;
    if crate::cli::help_requested(&a, PRUNE_USAGE) {
        return Ok(0);
    }
    crate::engine::remove::sweep(&g.root, &g.data_root);
    let mut deleted = Vec::new();
    let mut bytes = 0u64;
    for id in record::list_ids(&g.data_root) {
        let dir = record::dir(&g.data_root, &id);
        let s = record::effective_state(&dir);
        if matches!(
            s.status,
            record::Status::Running | record::Status::Restarting
        ) || record::monitor_alive(&dir)
        {
            continue;
        }
        let size = crate::image::store::tree_size(&dir.join("overlay/upper"));
        match remove(g, &id, &id, false, false) {
            Ok(()) => {
                deleted.push(id);
                bytes += size;
            }
            Err(e) => crate::log::warn(&e.to_string()),
        }
    }
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", crate::image::human_size(bytes));
    Ok(0)
}
