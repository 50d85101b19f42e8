//! `container inspect` and `runway inspect` (containers, then images):
//! docker's JSON array.

use crate::cli::args::{self, val, Flag};
use crate::cli::Global;
use crate::engine::{names, record};
use crate::error::{Error, Result};
use serde_json::json;
use std::ffi::OsString;
use std::io::Write;

const FLAGS: &[Flag] = &[
    val("format", Some('f'), "FORMAT", "json (the default)"),
    val("type", None, "TYPE", "container or image"),
    flag_size(),
];

const fn flag_size() -> Flag {
    crate::cli::args::flag("size", Some('s'), "accepted")
}

const USAGE: &str = "usage: runway inspect [flags] NAME|ID [NAME|ID...]\n";

/// docker's inspect document of container `id`.
pub fn container_json(g: &Global, id: &str) -> Result<serde_json::Value> {
    let dir = record::dir(&g.data_root, id);
    let r = record::load(&dir)?;
    let s = record::effective_state(&dir);
    let zero = "0001-01-01T00:00:00Z";
    let t = |v: &str| {
        if v.is_empty() {
            zero.to_string()
        } else {
            v.to_string()
        }
    };
    Ok(json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": {
            "Status": s.status.as_str(),
            "Running": s.status == record::Status::Running,
            "Paused": false,
            "Restarting": s.status == record::Status::Restarting,
            "OOMKilled": false,
            "Dead": s.status == record::Status::Dead,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": t(&s.started_at),
            "FinishedAt": t(&s.finished_at),
        },
        "Image": r.image,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": r.log_path,
        "Name": format!("/{}", r.name),
        "RestartCount": s.restart_count,
        "Driver": if r.rootfs.is_some() { "" } else { "overlay" },
        "Platform": "linux",
        "HostConfig": r.host_config,
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "UpperDir": dir.join("overlay/upper"),
                "WorkDir": dir.join("overlay/work"),
                "MergedDir": dir.join("bundle/rootfs"),
            },
        },
        "Mounts": r.mounts,
        "Config": r.config,
        "NetworkSettings": network_settings(g, &r),
    }))
}

/// docker's NetworkSettings from the container's endpoints.
fn network_settings(g: &Global, r: &record::Record) -> serde_json::Value {
    let eps = crate::net::network::endpoints_of(&g.data_root, &r.id);
    let mut ports = serde_json::Map::new();
    for p in &r.ports {
        let key = format!("{}/{}", p.ctr_port, p.proto.name());
        let v = ports
            .entry(key)
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(a) = v {
            a.push(serde_json::json!({
                "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                "HostPort": p.host_port.to_string(),
            }));
        }
    }
    let mut nets = serde_json::Map::new();
    for e in &eps {
        let id = crate::net::network::get(&g.data_root, &e.network)
            .map(|n| n.id)
            .unwrap_or_default();
        nets.insert(
            e.network.clone(),
            serde_json::json!({
                "NetworkID": id,
                "EndpointID": e.veth,
                "Gateway": e.gateway.to_string(),
                "IPAddress": e.ip.to_string(),
                "IPPrefixLen": e.prefix,
                "MacAddress": e.mac,
                "Aliases": e.names,
            }),
        );
    }
    let first = eps.first();
    serde_json::json!({
        "SandboxKey": first.map(|_| crate::engine::network::netns_path(&g.root, &r.id)),
        "Ports": ports,
        "IPAddress": first.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": first.map(|e| e.prefix).unwrap_or(0),
        "Gateway": first.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "MacAddress": first.map(|e| e.mac.clone()).unwrap_or_default(),
        "Networks": nets,
    })
}

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, FLAGS, None)?;
    if crate::cli::help_requested(&a, USAGE) {
        return Ok(0);
    }
    if let Some(f) = a.get("format") {
        if f != "json" && f != "{{json .}}" {
            crate::bail!("unsupported --format {f:?}: json");
        }
    }
    if a.positionals.is_empty() {
        crate::bail!("\"inspect\" requires at least 1 argument");
    }
    let kind = a.get("type").unwrap_or("");
    let mut found = Vec::new();
    let mut failed = false;
    for p in &a.positionals {
        let c = if kind != "image" {
            names::resolve(&g.data_root, p).and_then(|id| container_json(g, &id))
        } else {
            Err(Error::msg(""))
        };
        let r = match c {
            Ok(v) => Ok(v),
            Err(_) if kind != "container" => crate::cli::image::inspect::image_json(g, p)
                .map_err(|_| Error::msg(format!("No such object: {p}"))),
            Err(_) => Err(Error::msg(format!("No such container: {p}"))),
        };
        match r {
            Ok(v) => found.push(v),
            Err(e) => {
                crate::log::error(&e.to_string());
                failed = true;
            }
        }
    }
    let compact = serde_json::to_vec(&found).map_err(|e| Error::msg(format!("encode: {e}")))?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&crate::jsonfmt::pretty(&compact, b"    "));
    let _ = out.write_all(b"\n");
    Ok(if failed { 1 } else { 0 })
}
