//! The command line: runc's global flags and subcommands, one file each.

pub mod args;
#[cfg(feature = "full")]
pub mod container;
pub mod create;
pub mod delete;
pub mod duration;
pub mod events;
pub mod exec;
pub mod features;
#[cfg(feature = "full")]
pub mod image;
pub mod kill;
pub mod list;
#[cfg(feature = "full")]
pub mod network;
pub mod pause;
pub mod ps;
#[cfg(feature = "full")]
pub mod registry;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;
#[cfg(feature = "full")]
pub mod volume;

use crate::bail;
use crate::error::Result;
use args::{flag, val, Flag};
use std::ffi::OsString;
use std::path::PathBuf;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
    pub log: Option<String>,
    pub log_format: crate::log::Format,
    pub debug: bool,
    pub systemd_cgroup: bool,
    pub rootless: Option<bool>,
    /// Images, layers, containers' data, volumes (`--data-root`,
    /// $RUNWAY_DATA_ROOT, /var/lib/runway).
    pub data_root: PathBuf,
    /// Registries spoken to over plain HTTP (docker's
    /// --insecure-registry); loopback ones always may be.
    pub insecure_registries: Vec<String>,
}

pub const GLOBAL: &[Flag] = &[
    val("root", None, "DIR", "state directory (default /run/runway)"),
    val("log", None, "FILE", "also write messages to FILE"),
    val(
        "log-format",
        None,
        "FORMAT",
        "format of the log file: text or json",
    ),
    flag("debug", None, "debug messages"),
    flag("systemd-cgroup", None, "use the systemd cgroup driver"),
    val(
        "rootless",
        None,
        "B",
        "true, false or auto: rootless cgroup handling",
    ),
    val(
        "criu",
        None,
        "PATH",
        "accepted for runc compatibility; checkpoints are not supported",
    ),
    val(
        "data-root",
        None,
        "DIR",
        "images and containers' data (default /var/lib/runway, or $RUNWAY_DATA_ROOT)",
    ),
    val(
        "insecure-registry",
        None,
        "HOST",
        "a registry to reach over plain HTTP (repeatable)",
    ),
    flag("version", Some('v'), "print the version"),
];

pub const USAGE: &str = "usage: runway [global flags] <command> [flags] <container-id>

runway is a small, static OCI container runtime with runc's command line.

Commands:
  create   create a container (init waits for start)
  start    start a created container
  run      create and start a container
  state    print the state of a container (JSON)
  exec     run a new process inside a running container
  kill     send a signal to the container's init (or all processes)
  delete   delete a container and everything it used
  list     list containers
  pause    freeze every process of a container
  resume   thaw a paused container
  ps       processes of a container
  events   resource stats and OOM events
  update   change resource limits
  spec     write a default config.json
  features what this runtime supports (JSON)

  image    pull, push, import, list, inspect, tag, remove and prune images
           (aliases: pull, images, rmi)
  container run containers from images: run, create, start, stop, rm,
           ps, logs, exec, inspect, wait, top, prune
           (aliases: rm, logs, inspect, and ps without an id)
  volume   create, list, inspect, remove and prune volumes
  network  create, list, inspect, remove, prune, connect and disconnect
           bridge networks
  registry serve an OCI Distribution registry; collect its garbage

Every command takes --help.
";

/// The top-level help: commands, then the global flags from `GLOBAL`.
pub fn usage() -> String {
    args::help_text(USAGE, GLOBAL).replacen("\nFlags:\n", "\nGlobal flags:\n", 1)
}

pub fn version_text() -> String {
    format!(
        "runway version {VERSION}\ncommit: {}\nspec: {}\n",
        env!("RUNWAY_COMMIT"),
        crate::spec::OCI_VERSION
    )
}

/// Parse global flags up to the command name; returns the rest.
pub fn main(argv: Vec<OsString>) -> Result<i32> {
    // Global flags end at the first positional: that's the command.
    let mut split = argv.len();
    {
        let mut i = 0;
        while i < argv.len() {
            let a = argv[i].to_string_lossy();
            if !a.starts_with('-') || a == "-" {
                split = i;
                break;
            }
            if a == "--" {
                split = i + 1;
                break;
            }
            let name = a.trim_start_matches('-').split('=').next().unwrap_or("");
            let takes = GLOBAL.iter().any(|f| f.long == name && f.takes_value);
            i += if takes && !a.contains('=') { 2 } else { 1 };
        }
    }
    let mut rest = argv;
    let tail = rest.split_off(split.min(rest.len()));
    let g = args::parse(rest, GLOBAL, None)?;
    if g.help {
        print!("{}", usage());
        return Ok(0);
    }
    if g.is_set("version") {
        print!("{}", version_text());
        return Ok(0);
    }
    let log_format = match g.get("log-format").unwrap_or("text") {
        "text" => crate::log::Format::Text,
        "json" => crate::log::Format::Json,
        other => bail!("invalid log format {other:?}: text or json"),
    };
    crate::log::init(g.get("log"), log_format, g.is_set("debug"))?;
    let rootless = match g.get("rootless") {
        None | Some("auto") => None,
        Some(v) => Some(matches!(v, "true" | "1")),
    };
    let global = Global {
        root: PathBuf::from(g.get("root").unwrap_or("/run/runway")),
        log: g.get("log").map(str::to_string),
        log_format,
        debug: g.is_set("debug"),
        systemd_cgroup: g.is_set("systemd-cgroup"),
        rootless,
        data_root: match (g.get("data-root"), std::env::var_os("RUNWAY_DATA_ROOT")) {
            (Some(d), _) => PathBuf::from(d),
            (None, Some(d)) if !d.is_empty() => PathBuf::from(d),
            _ => PathBuf::from("/var/lib/runway"),
        },
        insecure_registries: g
            .all("insecure-registry")
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let mut tail = tail.into_iter();
    let Some(cmd) = tail.next() else {
        print!("{}", usage());
        return Ok(0);
    };
    let cmd = cmd.to_string_lossy().into_owned();
    let rest: Vec<OsString> = tail.collect();
    if !matches!(cmd.as_str(), "spec" | "features" | "help") {
        check_root(&global.root)?;
    }
    match cmd.as_str() {
        "create" => create::main(&global, rest),
        "start" => start::main(&global, rest),
        "run" => run::main(&global, rest),
        "state" => state::main(&global, rest),
        "kill" => kill::main(&global, rest),
        "delete" => delete::main(&global, rest),
        "exec" => exec::main(&global, rest),
        "pause" => pause::pause(&global, rest),
        "resume" => pause::resume(&global, rest),
        // runc's `ps ID`; docker's `ps` lists containers.
        #[cfg(feature = "full")]
        "ps" if !has_operand(&rest, &["format", "f", "filter", "n", "last"]) => {
            container::ps::main(&global, rest)
        }
        "ps" => ps::main(&global, rest),
        "events" => events::main(&global, rest),
        "update" => update::main(&global, rest),
        "features" => features::main(&global, rest),
        "list" | "ps-list" => list::main(&global, rest),
        "spec" => spec::main(&global, rest),
        #[cfg(feature = "full")]
        "image" => image::main(&global, rest),
        #[cfg(feature = "full")]
        "volume" => volume::main(&global, rest),
        #[cfg(feature = "full")]
        "network" => network::main(&global, rest),
        #[cfg(feature = "full")]
        "registry" => registry::main(&global, rest),
        // docker's top-level aliases, where runc has no such verb.
        #[cfg(feature = "full")]
        "pull" => image::pull::main(&global, rest),
        #[cfg(feature = "full")]
        "images" => image::ls::main(&global, rest),
        #[cfg(feature = "full")]
        "rmi" => image::rm::main(&global, rest),
        #[cfg(feature = "full")]
        "container" => container::main(&global, rest),
        #[cfg(feature = "full")]
        "rm" => container::rm::main(&global, rest),
        #[cfg(feature = "full")]
        "logs" => container::logs::main(&global, rest),
        #[cfg(feature = "full")]
        "inspect" => container::inspect::main(&global, rest),
        "help" => {
            print!("{}", usage());
            Ok(0)
        }
        other => bail!("unknown command {other:?} (see runway --help)"),
    }
}

/// Whether `args` has a word that is no flag and no flag's value
/// (`takes`: the flags that take one): `runway ps ID` is runc's, `runway
/// ps --format json` docker's.
pub fn has_operand(args: &[OsString], takes: &[&str]) -> bool {
    let mut skip = false;
    for a in args {
        let a = a.to_string_lossy();
        if std::mem::take(&mut skip) {
            continue;
        }
        if a == "--" {
            return true;
        }
        match a.strip_prefix("--").or_else(|| a.strip_prefix('-')) {
            Some(name) if !a.starts_with("---") && a != "-" => {
                skip = !name.contains('=') && takes.contains(&name);
            }
            _ => return true,
        }
    }
    false
}

/// A `--root` that exists but is no directory would otherwise surface as
/// an error about some file below it (state.json, a lock).
fn check_root(root: &std::path::Path) -> Result<()> {
    match std::fs::metadata(root) {
        Ok(m) if !m.is_dir() => Err(crate::error::Error::errno(
            format!("--root {}", root.display()),
            libc::ENOTDIR,
        )),
        _ => Ok(()),
    }
}

/// Exactly one container id, as every single-container command wants.
pub fn one_id(a: &args::Args, cmd: &str) -> Result<String> {
    match a.positionals.as_slice() {
        [id] => Ok(id.clone()),
        [] => bail!("{cmd}: container id is required"),
        _ => bail!(
            "{cmd}: expected exactly one container id, got {}",
            a.positionals.len()
        ),
    }
}

/// With --help: print `usage` (the command's synopsis) and one line per
/// flag the command parsed against; true if so.
pub fn help_requested(a: &args::Args, usage: &str) -> bool {
    if a.help {
        print!("{}", args::help_text(usage, &a.table));
    }
    a.help
}

#[cfg(test)]
mod tests {
    use super::has_operand;
    use std::ffi::OsString;

    fn a(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn ps_routing_skips_flag_values() {
        let takes = &["format", "f"];
        assert!(!has_operand(&a(&[]), takes));
        assert!(!has_operand(&a(&["-a", "--format", "json"]), takes));
        assert!(!has_operand(&a(&["-a", "--format=json", "-q"]), takes));
        assert!(has_operand(&a(&["-f", "json", "ID"]), takes));
        assert!(has_operand(&a(&["ID"]), takes));
        assert!(has_operand(&a(&["--", "ID"]), takes));
    }
}
