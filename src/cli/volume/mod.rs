//! `runway volume …`: docker's volume commands (create, ls, inspect, rm,
//! prune) on engine::volumes.

use super::args::{self, flag, val, Flag};
use super::Global;
use crate::bail;
use crate::cli::image::ls::table;
use crate::engine::volumes::{self, Volume, ANONYMOUS_LABEL, DRIVER};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, Write};

const USAGE: &str = "usage: runway volume COMMAND [flags] [args]

Commands:
  create   make a volume (prints its name)
  ls       list volumes
  inspect  the JSON of one or more volumes
  rm       remove volumes no container uses
  prune    remove unused anonymous volumes (-a: all unused volumes)

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
        "create" => create(g, rest),
        "ls" | "list" => ls(g, rest),
        "inspect" => inspect(g, rest),
        "rm" | "remove" => rm(g, rest),
        "prune" => prune(g, rest),
        "--help" | "-h" | "help" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => bail!("unknown command \"volume {other}\" (see runway volume --help)"),
    }
}

fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

const CREATE_USAGE: &str = "usage: runway volume create [flags] [NAME]

Create a volume under the data root (a random name if none is given) and
print its name. Creating a volume that exists returns it unchanged.
";

const CREATE_FLAGS: &[Flag] = &[
    val("label", Some('l'), "KEY=VALUE", "set a label (repeatable)"),
    val(
        "name",
        None,
        "NAME",
        "the volume's name (instead of the argument)",
    ),
    val("driver", Some('d'), "NAME", "the driver: only \"local\""),
];

fn create(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, CREATE_FLAGS, None)?;
    if crate::cli::help_requested(&a, CREATE_USAGE) {
        return Ok(0);
    }
    if let Some(d) = a.get("driver") {
        if d != DRIVER {
            bail!("create: volume driver {d:?} is not supported: only \"local\"");
        }
    }
    let name = match (a.positionals.as_slice(), a.get("name")) {
        ([], n) => n.map(str::to_string),
        ([p], None) => Some(p.clone()),
        ([p], Some(n)) if p == n => Some(p.clone()),
        ([p], Some(n)) => bail!("conflicting options: either specify --name {n} or provide positional arg {p}, not both"),
        _ => bail!(
            "volume create takes at most one argument, got {}",
            a.positionals.len()
        ),
    };
    let mut labels = BTreeMap::new();
    for l in a.all("label") {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            bail!("invalid label {l:?}: empty key");
        }
        labels.insert(k.to_string(), v.to_string());
    }
    let v = volumes::create(&g.data_root, name.as_deref(), &labels)?;
    out(&format!("{}\n", v.name()));
    Ok(0)
}

const LS_USAGE: &str = "usage: runway volume ls [flags]

List the volumes under the data root.
";

const LS_FLAGS: &[Flag] = &[
    flag("quiet", Some('q'), "print volume names only"),
    val(
        "format",
        None,
        "FORMAT",
        "table or json (one JSON object per line)",
    ),
];

/// docker's `Labels` column: "k=v,k2=v2".
fn labels_text(v: &Volume) -> String {
    labels(v)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The labels as docker shows them: anonymous volumes carry docker's mark.
fn labels(v: &Volume) -> BTreeMap<String, String> {
    let mut l = v.meta.labels.clone();
    if v.meta.anonymous {
        l.insert(ANONYMOUS_LABEL.to_string(), String::new());
    }
    l
}

fn ls(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, LS_FLAGS, None)?;
    if crate::cli::help_requested(&a, LS_USAGE) {
        return Ok(0);
    }
    if let Some(x) = a.positionals.first() {
        bail!("volume ls takes no arguments, got {x:?}");
    }
    let format = a.get("format").unwrap_or("table");
    if format != "table" && format != "json" {
        bail!("invalid format {format:?}: table or json");
    }
    let vols = volumes::list(&g.data_root)?;
    let mut s = String::new();
    if a.is_set("quiet") {
        for v in &vols {
            s.push_str(v.name());
            s.push('\n');
        }
    } else if format == "json" {
        for v in &vols {
            let j = serde_json::json!({
                "Availability": "N/A",
                "Driver": DRIVER,
                "Group": "N/A",
                "Labels": labels_text(v),
                "Links": "N/A",
                "Mountpoint": v.mountpoint().to_string_lossy(),
                "Name": v.name(),
                "Scope": "local",
                "Size": "N/A",
                "Status": "N/A",
            });
            let line = serde_json::to_string(&j).map_err(|e| Error::msg(format!("encode: {e}")))?;
            s.push_str(&line);
            s.push('\n');
        }
    } else {
        let mut t = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
        t.extend(
            vols.iter()
                .map(|v| vec![DRIVER.to_string(), v.name().to_string()]),
        );
        s = table(&t);
    }
    out(&s);
    Ok(0)
}

const INSPECT_USAGE: &str = "usage: runway volume inspect [flags] VOLUME [VOLUME...]

Print the volumes' details as a JSON array (docker's fields).
";

const INSPECT_FLAGS: &[Flag] = &[val("format", Some('f'), "FORMAT", "only json")];

fn inspect(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, INSPECT_FLAGS, None)?;
    if crate::cli::help_requested(&a, INSPECT_USAGE) {
        return Ok(0);
    }
    if let Some(f) = a.get("format") {
        if f != "json" {
            bail!("invalid format {f:?}: only json");
        }
    }
    if a.positionals.is_empty() {
        bail!("volume inspect needs at least one volume");
    }
    let mut found = Vec::new();
    let mut failed = Vec::new();
    for p in &a.positionals {
        match volumes::get(&g.data_root, p) {
            Ok(v) => found.push(serde_json::json!({
                "CreatedAt": v.meta.created,
                "Driver": DRIVER,
                "Labels": labels(&v),
                "Mountpoint": v.mountpoint().to_string_lossy(),
                "Name": v.name(),
                "Options": {},
                "Scope": "local",
            })),
            Err(e) => failed.push(e),
        }
    }
    // As docker: what was found is printed, then an error per name not.
    let compact = serde_json::to_vec(&found).map_err(|e| Error::msg(format!("encode: {e}")))?;
    let mut json = crate::jsonfmt::pretty(&compact, b"    ");
    json.push(b'\n');
    out(&String::from_utf8_lossy(&json));
    for e in &failed {
        crate::log::error(&e.to_string());
    }
    Ok(if failed.is_empty() { 0 } else { 1 })
}

const RM_USAGE: &str = "usage: runway volume rm [flags] VOLUME [VOLUME...]

Remove volumes. A volume a container uses is not removed (remove the
container first).
";

const RM_FLAGS: &[Flag] = &[flag(
    "force",
    Some('f'),
    "no error for volumes that do not exist",
)];

fn rm(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, RM_FLAGS, None)?;
    if crate::cli::help_requested(&a, RM_USAGE) {
        return Ok(0);
    }
    if a.positionals.is_empty() {
        bail!("volume rm needs at least one volume");
    }
    let force = a.is_set("force");
    let mut failed = false;
    for p in &a.positionals {
        let missing = volumes::get(&g.data_root, p).is_err();
        match volumes::remove(&g.data_root, p) {
            Ok(()) => out(&format!("{p}\n")),
            // docker -f: a volume that is not there is as good as removed.
            Err(_) if force && missing => out(&format!("{p}\n")),
            Err(e) => {
                crate::log::error(&e.to_string());
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

const PRUNE_USAGE: &str = "usage: runway volume prune [flags]

Remove the anonymous volumes no container uses (with -a: every volume no
container uses).
";

const PRUNE_FLAGS: &[Flag] = &[
    flag(
        "all",
        Some('a'),
        "remove named volumes too, not only anonymous ones",
    ),
    flag("force", Some('f'), "do not ask for confirmation"),
];

fn prune(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, PRUNE_FLAGS, None)?;
    if crate::cli::help_requested(&a, PRUNE_USAGE) {
        return Ok(0);
    }
    if let Some(x) = a.positionals.first() {
        bail!("volume prune takes no arguments, got {x:?}");
    }
    let all = a.is_set("all");
    if !a.is_set("force") {
        let what = if all { "all" } else { "anonymous" };
        out(&format!(
            "WARNING! This will remove {what} local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
        ));
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if !matches!(line.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(0);
        }
    }
    let removed = volumes::prune(&g.data_root, all)?;
    let mut s = String::new();
    if !removed.is_empty() {
        s.push_str("Deleted Volumes:\n");
        for (n, _) in &removed {
            s.push_str(n);
            s.push('\n');
        }
        s.push('\n');
    }
    let total: u64 = removed.iter().map(|(_, b)| b).sum();
    s.push_str(&format!(
        "Total reclaimed space: {}\n",
        crate::image::human_size(total)
    ));
    out(&s);
    Ok(0)
}
