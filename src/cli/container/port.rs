//! `container port`: a container's published ports, as docker lists them
//! (`80/tcp -> 0.0.0.0:8080`), or the host side of one (`port C 80/tcp`).

use crate::cli::args;
use crate::cli::Global;
use crate::engine::{names, record};
use crate::error::Result;
use std::ffi::OsString;

const USAGE: &str = "usage: runway container port CONTAINER [PORT[/PROTO]]\n";

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, &[], None)?;
    if crate::cli::help_requested(&a, USAGE) {
        return Ok(0);
    }
    let (c, want) = match a.positionals.as_slice() {
        [c] => (c, None),
        [c, p] => (c, Some(p.as_str())),
        _ => crate::bail!("\"container port\" requires 1 or 2 arguments: CONTAINER [PORT[/PROTO]]"),
    };
    let id = names::resolve(&g.data_root, c)?;
    let rec = record::load(&record::dir(&g.data_root, &id))?;
    let want = match want {
        Some(w) => {
            let (p, proto) = w.split_once('/').unwrap_or((w, "tcp"));
            let port: u16 = p
                .parse()
                .map_err(|_| crate::error::Error::msg(format!("invalid port {w:?}")))?;
            Some((port, proto.to_string()))
        }
        None => None,
    };
    let mut out = String::new();
    for p in &rec.ports {
        let host = format!(
            "{}:{}",
            p.host_ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            p.host_port
        );
        match &want {
            Some((port, proto)) if *port == p.ctr_port && proto == p.proto.name() => {
                out.push_str(&format!("{host}\n"))
            }
            Some(_) => {}
            None => out.push_str(&format!("{}/{} -> {host}\n", p.ctr_port, p.proto.name())),
        }
    }
    if let (Some((port, proto)), true) = (&want, out.is_empty()) {
        crate::bail!("no public port '{port}/{proto}' published for {c}");
    }
    print!("{out}");
    Ok(0)
}
