//! `runway container …`: docker's container commands, one file per
//! concern; the top-level aliases (`rm`, `logs`, `inspect`, `ps` without
//! an id) land here too.

pub mod inspect;
pub mod logs;
pub mod port;
pub mod ps;
pub mod rm;
pub mod run;
pub mod stop;
pub mod wait;

use super::Global;
use crate::bail;
use crate::error::Result;
use std::ffi::OsString;

const USAGE: &str = "usage: runway container COMMAND [flags] [args]

Commands:
  run      create and start a container from an image
  create   create a container from an image
  start    start created or stopped containers
  stop     stop running containers (stop signal, then KILL)
  restart  stop and start containers
  kill     send a signal to containers
  rm       remove containers (alias: runway rm)
  ps       list containers (alias: runway ps with no id)
  logs     a container's output (alias: runway logs)
  exec     run a command in a running container
  inspect  the JSON of containers (alias: runway inspect)
  wait     wait for containers to stop; print their exit codes
  top      the processes of a container
  port     a container's published ports
  prune    remove every stopped container

Every command takes --help.
";

/// Exit code for runway's own failures in run/create/start (docker's).
pub const FAILED: i32 = 125;

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let mut argv = argv.into_iter();
    let Some(cmd) = argv.next() else {
        print!("{USAGE}");
        return Ok(0);
    };
    let rest: Vec<OsString> = argv.collect();
    match cmd.to_string_lossy().as_ref() {
        "run" => run::run_main(g, rest),
        "port" => port::main(g, rest),
        "create" => run::create_main(g, rest),
        "start" => run::start_main(g, rest),
        "stop" => stop::stop_main(g, rest),
        "restart" => stop::restart_main(g, rest),
        "kill" => stop::kill_main(g, rest),
        "rm" | "remove" => rm::main(g, rest),
        "prune" => rm::prune_main(g, rest),
        "ps" | "ls" | "list" => ps::main(g, rest),
        "logs" => logs::main(g, rest),
        "exec" => run::exec_main(g, rest),
        "inspect" => inspect::main(g, rest),
        "wait" => wait::main(g, rest),
        "top" => stop::top_main(g, rest),
        "--help" | "-h" | "help" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => bail!("unknown command \"container {other}\" (see runway container --help)"),
    }
}

/// The engine's view of where things live.
pub fn ctx(g: &Global) -> crate::engine::create::Ctx<'_> {
    crate::engine::create::Ctx {
        root: &g.root,
        data_root: &g.data_root,
        insecure_registries: &g.insecure_registries,
    }
}

/// Runs `f` on every named container, printing errors; exit 1 if any
/// failed (docker's multi-container commands).
pub fn each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> i32 {
    let mut code = 0;
    for n in names {
        if let Err(e) = f(n) {
            crate::log::error(&e.to_string());
            code = 1;
        }
    }
    code
}
