//! `container wait`: blocks until each container stops; prints its exit
//! code.

use super::each;
use crate::cli::args;
use crate::cli::Global;
use crate::engine::{names, record};
use crate::error::Result;
use std::ffi::OsString;
use std::time::Duration;

const USAGE: &str = "usage: runway container wait CONTAINER [CONTAINER...]\n";

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, &[], None)?;
    if crate::cli::help_requested(&a, USAGE) {
        return Ok(0);
    }
    if a.positionals.is_empty() {
        crate::bail!("\"container wait\" requires at least 1 argument");
    }
    Ok(each(&a.positionals, |n| {
        let id = names::resolve(&g.data_root, n)?;
        let dir = record::dir(&g.data_root, &id);
        loop {
            if !dir.exists() {
                crate::bail!("No such container: {n}");
            }
            let s = record::effective_state(&dir);
            // A container its monitor will restart has not stopped
            // (docker's wait waits on through restarts too).
            let done = matches!(s.status, record::Status::Exited | record::Status::Dead)
                && !(record::monitor_alive(&dir) && restarts(&dir));
            if done {
                println!("{}", s.exit_code);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }))
}

/// The monitor may still restart it: not done while it lives and the
/// policy could apply.
fn restarts(dir: &std::path::Path) -> bool {
    let Ok(r) = record::load(dir) else {
        return false;
    };
    let s = record::load_state(dir);
    crate::engine::monitor::should_restart(&r.host_config.restart_policy, s.exit_code, &s)
}
