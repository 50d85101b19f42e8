//! `runway network …`: docker's network commands (create, ls, inspect,
//! rm, prune, connect, disconnect) on net::network, and the hidden `dns`
//! that runs a network's DNS server.

use super::args::{self, flag, val, Flag};
use super::Global;
use crate::bail;
use crate::cli::image::ls::table;
use crate::engine::{names, network as netw};
use crate::error::{Error, Result};
use crate::net::network::{self, CreateOpts};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, Write};

const USAGE: &str = "usage: runway network COMMAND [flags] [args]

Commands:
  create      make a bridge network (prints its id)
  ls          list networks
  inspect     the JSON of one or more networks
  rm          remove networks no container uses
  prune       remove every network no container uses, and what crashes left
  connect     join a container to a network
  disconnect  take a container off a network

The default network is \"runway\" (bridge runway0), made on first use.
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
        "connect" => connect(g, rest),
        "disconnect" => disconnect(g, rest),
        "dns" => dns(g, rest),
        "--help" | "-h" | "help" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => bail!("unknown command \"network {other}\" (see runway network --help)"),
    }
}

fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

const CREATE_USAGE: &str = "usage: runway network create [flags] NAME

Create a bridge network and print its id. Without --subnet it takes the
first free /24 of 10.89.0.0/16 (then 172.30.0.0/16) that no route of this
host and no other network overlaps.
";

const CREATE_FLAGS: &[Flag] = &[
    val("subnet", None, "CIDR", "the network's IPv4 subnet"),
    val(
        "gateway",
        None,
        "IP",
        "the bridge's address (default: the first)",
    ),
    flag("internal", None, "no way out: no NAT, no forwarding"),
    val("label", None, "KEY=VALUE", "set a label (repeatable)"),
    val("driver", Some('d'), "NAME", "only \"bridge\""),
    val("opt", Some('o'), "K=V", "accepted, ignored"),
];

fn create(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, CREATE_FLAGS, None)?;
    if crate::cli::help_requested(&a, CREATE_USAGE) {
        return Ok(0);
    }
    if let Some(d) = a.get("driver") {
        if d != "bridge" {
            bail!("network driver {d:?} is not supported: only \"bridge\"");
        }
    }
    let name = match a.positionals.as_slice() {
        [n] => n.clone(),
        [] => bail!("\"network create\" requires exactly 1 argument: NAME"),
        _ => bail!(
            "\"network create\" requires exactly 1 argument, got {}",
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
    let n = network::create(
        &g.data_root,
        &CreateOpts {
            name,
            subnet: a.get("subnet").map(str::to_string),
            gateway: a.get("gateway").map(str::to_string),
            internal: a.is_set("internal"),
            labels,
        },
    )?;
    out(&format!("{}\n", n.id));
    Ok(0)
}

const LS_USAGE: &str = "usage: runway network ls [flags]

List the networks.
";

const LS_FLAGS: &[Flag] = &[
    flag("quiet", Some('q'), "print network names only"),
    flag("no-trunc", None, "full ids"),
    val(
        "format",
        None,
        "FORMAT",
        "table or json (one object per line)",
    ),
];

fn ls(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, LS_FLAGS, None)?;
    if crate::cli::help_requested(&a, LS_USAGE) {
        return Ok(0);
    }
    if let Some(x) = a.positionals.first() {
        bail!("network ls takes no arguments, got {x:?}");
    }
    let format = a.get("format").unwrap_or("table");
    if format != "table" && format != "json" {
        bail!("invalid format {format:?}: table or json");
    }
    let nets = network::list(&g.data_root)?;
    let id = |n: &network::Network| {
        if a.is_set("no-trunc") {
            n.id.clone()
        } else {
            n.id[..n.id.len().min(12)].to_string()
        }
    };
    let mut s = String::new();
    if a.is_set("quiet") {
        for n in &nets {
            s.push_str(&format!("{}\n", n.name));
        }
    } else if format == "json" {
        for n in &nets {
            let j = serde_json::json!({
                "ID": id(n), "Name": n.name, "Driver": "bridge", "Scope": "local",
                "Internal": n.internal.to_string(), "CreatedAt": n.created,
            });
            s.push_str(&j.to_string());
            s.push('\n');
        }
    } else {
        let mut t = vec![vec![
            "NETWORK ID".to_string(),
            "NAME".into(),
            "DRIVER".into(),
            "SCOPE".into(),
        ]];
        for n in &nets {
            t.push(vec![id(n), n.name.clone(), "bridge".into(), "local".into()]);
        }
        s = table(&t);
    }
    out(&s);
    Ok(0)
}

fn network_json(g: &Global, n: &network::Network) -> serde_json::Value {
    let mut containers = serde_json::Map::new();
    for e in network::endpoints(&g.data_root, &n.name) {
        let name = names::name_of(&g.data_root, &e.owner)
            .ok()
            .flatten()
            .unwrap_or_default();
        containers.insert(
            e.owner.clone(),
            serde_json::json!({
                "Name": name,
                "EndpointID": e.veth,
                "MacAddress": e.mac,
                "IPv4Address": format!("{}/{}", e.ip, e.prefix),
                "IPv6Address": "",
            }),
        );
    }
    let mut opts = serde_json::Map::new();
    opts.insert(
        "com.docker.network.bridge.name".into(),
        serde_json::Value::String(n.bridge.clone()),
    );
    serde_json::json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{"Subnet": n.subnet, "Gateway": n.gateway.to_string()}],
        },
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "Containers": containers,
        "Options": opts,
        "Labels": n.labels,
    })
}

const INSPECT_USAGE: &str = "usage: runway network inspect NETWORK [NETWORK...]

Print the networks' details as a JSON array (docker's fields).
";

const INSPECT_FLAGS: &[Flag] = &[val("format", Some('f'), "FORMAT", "only json")];

fn inspect(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, INSPECT_FLAGS, None)?;
    if crate::cli::help_requested(&a, INSPECT_USAGE) {
        return Ok(0);
    }
    if let Some(f) = a.get("format") {
        if f != "json" {
            bail!("invalid format {f:?}: only json");
        }
    }
    if a.positionals.is_empty() {
        bail!("\"network inspect\" requires at least 1 argument");
    }
    let mut found = Vec::new();
    let mut failed = Vec::new();
    for p in &a.positionals {
        match network::get(&g.data_root, p) {
            Ok(n) => found.push(network_json(g, &n)),
            Err(e) => failed.push(e),
        }
    }
    let compact = serde_json::to_vec(&found).map_err(|e| Error::msg(format!("encode: {e}")))?;
    let mut json = crate::jsonfmt::pretty(&compact, b"    ");
    json.push(b'\n');
    out(&String::from_utf8_lossy(&json));
    for e in &failed {
        crate::log::error(&e.to_string());
    }
    Ok(if failed.is_empty() { 0 } else { 1 })
}

const RM_USAGE: &str = "usage: runway network rm [flags] NETWORK [NETWORK...]

Remove networks. A network a container uses is not removed.
";

const RM_FLAGS: &[Flag] = &[flag(
    "force",
    Some('f'),
    "no error for networks that do not exist",
)];

fn rm(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, RM_FLAGS, None)?;
    if crate::cli::help_requested(&a, RM_USAGE) {
        return Ok(0);
    }
    if a.positionals.is_empty() {
        bail!("\"network rm\" requires at least 1 argument");
    }
    let mut failed = false;
    for p in &a.positionals {
        match network::remove(&g.data_root, p) {
            Ok(n) => out(&format!("{n}\n")),
            Err(e) if a.is_set("force") && e.errno == Some(libc::ENOENT) => {}
            Err(e) => {
                crate::log::error(&e.to_string());
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

const PRUNE_USAGE: &str = "usage: runway network prune [flags]

Remove every network no container uses (the default one too: it is made
again on first use), and what a crash left: endpoints and leases of
containers that are gone, stray veth and bridge links of runway's, the
firewall rules of networks that are gone, namespaces of gone containers.
";

const PRUNE_FLAGS: &[Flag] = &[flag("force", Some('f'), "do not ask for confirmation")];

fn prune(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, PRUNE_FLAGS, None)?;
    if crate::cli::help_requested(&a, PRUNE_USAGE) {
        return Ok(0);
    }
    if let Some(x) = a.positionals.first() {
        bail!("network prune takes no arguments, got {x:?}");
    }
    if !a.is_set("force") {
        out("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if !matches!(line.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(0);
        }
    }
    crate::engine::remove::sweep(&g.root, &g.data_root);
    let data_root = g.data_root.clone();
    let live = move |id: &str| crate::engine::record::dir(&data_root, id).is_dir();
    // Namespaces of containers that are gone (a create killed midway).
    if let Ok(rd) = std::fs::read_dir(g.root.join("netns")) {
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if !live(&id) {
                crate::net::netns::remove(&e.path())?;
            }
        }
    }
    let p = network::prune(&g.data_root, &live)?;
    if !p.networks.is_empty() {
        let mut s = String::from("Deleted Networks:\n");
        for n in &p.networks {
            s.push_str(n);
            s.push('\n');
        }
        out(&s);
    }
    Ok(0)
}

const CONNECT_USAGE: &str = "usage: runway network connect [flags] NETWORK CONTAINER

Join a container to one more network (the next ethN inside).
";

const CONNECT_FLAGS: &[Flag] = &[
    val("ip", None, "IP", "its address on the network"),
    val(
        "alias",
        None,
        "NAME",
        "another name on the network (repeatable)",
    ),
];

fn two(a: &args::Args, what: &str) -> Result<(String, String)> {
    match a.positionals.as_slice() {
        [n, c] => Ok((n.clone(), c.clone())),
        _ => bail!("\"network {what}\" requires exactly 2 arguments: NETWORK CONTAINER"),
    }
}

fn connect(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, CONNECT_FLAGS, None)?;
    if crate::cli::help_requested(&a, CONNECT_USAGE) {
        return Ok(0);
    }
    let (net, ctr) = two(&a, "connect")?;
    let ip = match a.get("ip") {
        Some(s) => Some(
            s.parse()
                .map_err(|_| Error::msg(format!("invalid --ip {s:?}: not an IP address")))?,
        ),
        None => None,
    };
    let aliases: Vec<String> = a.all("alias").iter().map(|s| s.to_string()).collect();
    let id = names::resolve(&g.data_root, &ctr)?;
    netw::connect(&g.root, &g.data_root, &id, &net, ip, &aliases)?;
    Ok(0)
}

const DISCONNECT_USAGE: &str = "usage: runway network disconnect [flags] NETWORK CONTAINER

Take a container off a network.
";

const DISCONNECT_FLAGS: &[Flag] = &[flag("force", Some('f'), "accepted")];

fn disconnect(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, DISCONNECT_FLAGS, None)?;
    if crate::cli::help_requested(&a, DISCONNECT_USAGE) {
        return Ok(0);
    }
    let (net, ctr) = two(&a, "disconnect")?;
    let id = names::resolve(&g.data_root, &ctr)?;
    netw::disconnect(&g.data_root, &id, &net)?;
    Ok(0)
}

/// Hidden: the DNS server of one network, started by the first endpoint.
fn dns(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, &[], None)?;
    let [name] = a.positionals.as_slice() else {
        bail!("network dns NAME");
    };
    network::serve_dns(&g.data_root, name)?;
    Ok(0)
}
