//! argv -> parsed command line, never the command itself (that would
//! create, kill or delete containers, or write files named by the input).
//!
//! Two passes per input: every flag table (global and each command's) on
//! the whole argv with each positional limit; then the path `cli::main`
//! takes up to dispatch: global flags up to the command, the command's
//! table, and the pure checks each command does before touching anything.
//! The global/command split mirrors `cli::main` (not callable parse-only).
#![no_main]

use libfuzzer_sys::fuzz_target;
use runway::cli::args::{self, Args, Flag};
use runway::cli::{self, create, delete, kill, list, run, spec, Global};
use std::ffi::OsString;
use std::path::PathBuf;

fn run_table() -> Vec<Flag> {
    let mut t = create::FLAGS.to_vec();
    t.extend_from_slice(run::FLAGS);
    t
}

fn table(cmd: &str) -> Option<Vec<Flag>> {
    Some(match cmd {
        "create" => create::FLAGS.to_vec(),
        "run" => run_table(),
        "start" | "state" => Vec::new(),
        "kill" => kill::FLAGS.to_vec(),
        "delete" => delete::FLAGS.to_vec(),
        "list" | "ps-list" => list::FLAGS.to_vec(),
        "spec" => spec::FLAGS.to_vec(),
        _ => return None,
    })
}

/// Index of the command name, as `cli::main` finds it.
fn split_global(argv: &[OsString]) -> usize {
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].to_string_lossy();
        if !a.starts_with('-') || a == "-" {
            return i;
        }
        if a == "--" {
            return i + 1;
        }
        let name = a.trim_start_matches('-').split('=').next().unwrap_or("");
        let takes = cli::GLOBAL.iter().any(|f| f.long == name && f.takes_value);
        i += if takes && !a.contains('=') { 2 } else { 1 };
    }
    argv.len()
}

fn global_of(g: &Args) -> Option<Global> {
    let log_format = match g.get("log-format").unwrap_or("text") {
        "text" => runway::log::Format::Text,
        "json" => runway::log::Format::Json,
        _ => return None,
    };
    Some(Global {
        root: PathBuf::from(g.get("root").unwrap_or("/run/runway")),
        log: g.get("log").map(str::to_string),
        log_format,
        debug: g.is_set("debug"),
        systemd_cgroup: g.is_set("systemd-cgroup"),
        rootless: match g.get("rootless") {
            None | Some("auto") => None,
            Some(v) => Some(matches!(v, "true" | "1")),
        },
        data_root: PathBuf::from(g.get("data-root").unwrap_or("/var/lib/runway")),
        insecure_registries: g.all("insecure-registry").iter().map(|s| s.to_string()).collect(),
    })
}

fn command(global: &Global, cmd: &str, rest: Vec<OsString>) {
    let Some(t) = table(cmd) else { return };
    let Ok(a) = args::parse(rest, &t, None) else {
        return;
    };
    if a.help {
        return;
    }
    let _ = a.get_num::<u32>("preserve-fds");
    match cmd {
        "create" | "run" => {
            if let Ok(id) = cli::one_id(&a, cmd) {
                let _ = runway::container::state::validate_id(&id);
                let _ = create::opts(global, &a, &id, cmd == "run");
            }
        }
        "kill" => {
            if let [_, s] = a.positionals.as_slice() {
                let _ = runway::linux::signal::parse(s);
            }
        }
        _ => {
            if let Ok(id) = cli::one_id(&a, cmd) {
                let _ = runway::container::state::validate_id(&id);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let argv = runway_fuzz::split_args(data);
    if argv.len() > 64 {
        return;
    }

    let mut tables: Vec<Vec<Flag>> = vec![cli::GLOBAL.to_vec(), run_table()];
    for c in ["create", "start", "kill", "delete", "list", "spec"] {
        tables.extend(table(c));
    }
    for t in &tables {
        // Positional limits as exec-like commands use them; which one
        // varies with the input so both paths stay cheap to reach.
        for max in [None, Some(argv.len() % 3)] {
            if let Ok(a) = args::parse(argv.clone(), t, max) {
                for f in t {
                    let _ = a.get(f.long);
                    let _ = a.all(f.long);
                    let _ = a.is_set(f.long);
                    let _ = a.get_num::<i64>(f.long);
                }
            }
        }
    }

    let mut head = argv;
    let split = split_global(&head).min(head.len());
    let tail = head.split_off(split);
    let Ok(g) = args::parse(head, cli::GLOBAL, None) else {
        return;
    };
    if g.help || g.is_set("version") {
        return;
    }
    let Some(global) = global_of(&g) else { return };
    let mut tail = tail.into_iter();
    let Some(cmd) = tail.next() else { return };
    command(&global, &cmd.to_string_lossy(), tail.collect());
});
