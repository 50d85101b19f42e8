//! A container's networking: its network namespace pinned under
//! ROOT/netns/ID, its endpoints on named networks (eth0 on the first),
//! the /etc/hosts and /etc/resolv.conf that go with them, and their
//! teardown on removal.

use crate::error::{Error, Result};
use crate::net::network::{self, Attach, Endpoint};
use crate::net::{netns, ports};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What `--network`, `--ip`, `--network-alias`, `-p`, `-P`, `--dns` and
/// `--add-host` asked, parsed.
#[derive(Debug, Default, Clone)]
pub struct NetRequest {
    /// Named networks, first one first (eth0, default route, ports).
    pub networks: Vec<String>,
    pub ip: Option<IpAddr>,
    pub aliases: Vec<String>,
    pub publish: Vec<ports::Spec>,
    pub publish_all: bool,
    pub dns: Vec<IpAddr>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--add-host NAME:IP`.
    pub add_hosts: Vec<(String, String)>,
}

/// Names that mean the default network.
pub fn is_default_alias(n: &str) -> bool {
    matches!(n, "bridge" | "default" | network::DEFAULT)
}

pub fn netns_path(root: &Path, id: &str) -> PathBuf {
    root.join("netns").join(id)
}

/// `--add-host NAME:IP` (docker also takes `NAME=IP`; `host-gateway` is
/// the first network's gateway, filled in later).
pub fn parse_add_host(s: &str) -> Result<(String, String)> {
    let (h, ip) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .ok_or_else(|| Error::msg(format!("invalid --add-host {s:?}: want HOST:IP")))?;
    let ip = ip.trim_matches(['[', ']']);
    if h.is_empty() || h.chars().any(|c| c.is_whitespace()) {
        return Err(Error::msg(format!(
            "invalid --add-host {s:?}: bad host name"
        )));
    }
    if ip != "host-gateway" && ip.parse::<IpAddr>().is_err() {
        return Err(Error::msg(format!(
            "invalid --add-host {s:?}: {ip:?} is not an IP address"
        )));
    }
    Ok((h.to_string(), ip.to_string()))
}

/// Pins the namespace and joins every requested network; on failure
/// nothing is left. The endpoints, in order.
pub fn setup(
    root: &Path,
    data_root: &Path,
    id: &str,
    name: &str,
    req: &NetRequest,
) -> Result<Vec<Endpoint>> {
    // Checked before anything is made: an unknown network costs nothing.
    let mut nets = Vec::with_capacity(req.networks.len());
    for n in &req.networks {
        let net = if is_default_alias(n) {
            network::ensure_default(data_root)?
        } else {
            network::get(data_root, n)?
        };
        if nets.contains(&net.name) {
            return Err(Error::msg(format!("network {} named twice", net.name)));
        }
        nets.push(net.name);
    }
    let path = netns_path(root, id);
    netns::create(&path)?;
    let mut eps = Vec::with_capacity(nets.len());
    for (i, n) in nets.iter().enumerate() {
        let mut names = vec![name.to_string()];
        if i == 0 {
            names.extend(req.aliases.iter().cloned());
        }
        names.push(crate::engine::names::short_id(id).to_string());
        let r = network::attach(
            data_root,
            &Attach {
                network: n,
                owner: id,
                names,
                ip: if i == 0 { req.ip } else { None },
                ports: if i == 0 {
                    req.publish.clone()
                } else {
                    Vec::new()
                },
                netns: &path,
            },
        );
        match r {
            Ok(ep) => eps.push(ep),
            Err(e) => {
                if let Err(t) = teardown(root, data_root, id) {
                    crate::log::warn(&format!("cleanup of the network of {id}: {t}"));
                }
                return Err(e);
            }
        }
    }
    Ok(eps)
}

/// Before a start: the namespace and endpoints again if they are gone (a
/// reboot wipes /run and the host's links), with the same addresses,
/// names and ports, so that the container's /etc/hosts stays true.
pub fn revive(root: &Path, data_root: &Path, rec: &crate::engine::record::Record) -> Result<()> {
    let path = netns_path(root, &rec.id);
    if rec.networks.is_empty() || netns::is_pinned(&path) {
        return Ok(());
    }
    let old = network::endpoints_of(data_root, &rec.id);
    network::detach_all(data_root, &rec.id, true)?;
    netns::remove(&path)?;
    netns::create(&path)?;
    for (i, n) in rec.networks.iter().enumerate() {
        let prev = old.iter().find(|e| &e.network == n);
        let names = match prev {
            Some(e) => e.names.clone(),
            None => vec![
                rec.name.clone(),
                crate::engine::names::short_id(&rec.id).to_string(),
            ],
        };
        let ports = if i == 0 {
            rec.ports
                .iter()
                .map(|p| ports::Spec {
                    host_ip: p.host_ip,
                    host_port: Some(p.host_port),
                    ctr_port: p.ctr_port,
                    proto: p.proto,
                })
                .collect()
        } else {
            Vec::new()
        };
        let r = network::attach(
            data_root,
            &Attach {
                network: n,
                owner: &rec.id,
                names,
                ip: prev.map(|e| e.ip),
                ports,
                netns: &path,
            },
        );
        if let Err(e) = r {
            let _ = teardown(root, data_root, &rec.id);
            return Err(e.wrap(format!("network {n}")));
        }
    }
    Ok(())
}

/// Leaves every network and unpins the namespace; absent is fine.
pub fn teardown(root: &Path, data_root: &Path, id: &str) -> Result<()> {
    // The links go with the namespace, in the kernel's own time.
    let r = network::detach_all(data_root, id, false);
    netns::remove(&netns_path(root, id))?;
    r
}

/// `network connect`: joins a container that has a namespace of ours
/// (made with a network) to one more network.
pub fn connect(
    root: &Path,
    data_root: &Path,
    id: &str,
    net: &str,
    ip: Option<IpAddr>,
    aliases: &[String],
) -> Result<Endpoint> {
    let dir = crate::engine::record::dir(data_root, id);
    let _l = crate::engine::record::lock(&dir)?;
    let mut rec = crate::engine::record::load(&dir)?;
    let path = netns_path(root, id);
    if !netns::is_pinned(&path) {
        return Err(Error::msg(format!(
            "container {} has no network of its own to connect (--network {})",
            rec.name, rec.host_config.network_mode
        )));
    }
    let net = if is_default_alias(net) {
        network::ensure_default(data_root)?
    } else {
        network::get(data_root, net)?
    };
    let mut names = vec![rec.name.clone()];
    names.extend(aliases.iter().cloned());
    names.push(crate::engine::names::short_id(id).to_string());
    let ep = network::attach(
        data_root,
        &Attach {
            network: &net.name,
            owner: id,
            names,
            ip,
            ports: Vec::new(),
            netns: &path,
        },
    )?;
    rec.networks.push(net.name.clone());
    if let Err(e) = crate::engine::record::save(&dir, &rec) {
        let _ = network::detach(data_root, &net.name, id);
        return Err(e);
    }
    Ok(ep)
}

/// `network disconnect`.
pub fn disconnect(data_root: &Path, id: &str, net: &str) -> Result<()> {
    let dir = crate::engine::record::dir(data_root, id);
    let _l = crate::engine::record::lock(&dir)?;
    let mut rec = crate::engine::record::load(&dir)?;
    let net = network::get(data_root, net)?;
    network::detach(data_root, &net.name, id)?;
    if rec.networks.first() == Some(&net.name) {
        // Its ports were published on this one.
        rec.ports.clear();
    }
    rec.networks.retain(|n| *n != net.name);
    crate::engine::record::save(&dir, &rec)
}

/// /etc/hosts: docker's lines, the container's own address with its
/// hostname and name, then `--add-host`s.
pub fn hosts(hostname: &str, name: &str, eps: &[Endpoint], add: &[(String, String)]) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    match eps.first() {
        Some(e) if hostname != name => s.push_str(&format!("{}\t{hostname} {name}\n", e.ip)),
        Some(e) => s.push_str(&format!("{}\t{hostname}\n", e.ip)),
        None => s.push_str(&format!("127.0.1.1\t{hostname}\n")),
    }
    for (h, ip) in add {
        let ip = match (ip.as_str(), eps.first()) {
            ("host-gateway", Some(e)) => e.gateway.to_string(),
            ("host-gateway", None) => "127.0.0.1".to_string(),
            _ => ip.clone(),
        };
        s.push_str(&format!("{ip}\t{h}\n"));
    }
    s
}

/// /etc/resolv.conf: `--dns` if given, else the networks' DNS servers
/// (their gateways), else the host's resolvers minus loopback ones (a
/// private namespace cannot reach them); the host's search and options
/// lines unless overridden. `host` mode: the host's file as it is.
pub fn resolv_conf(host_mode: bool, eps: &[Endpoint], req: &NetRequest) -> Vec<u8> {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if host_mode && req.dns.is_empty() && req.dns_search.is_empty() && req.dns_options.is_empty() {
        return host.into_bytes();
    }
    let mut servers: Vec<String> = req.dns.iter().map(|d| d.to_string()).collect();
    if servers.is_empty() {
        for e in eps {
            let g = e.gateway.to_string();
            if !servers.contains(&g) {
                servers.push(g);
            }
        }
    }
    let mut out = String::new();
    let mut host_servers = Vec::new();
    for l in host.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.first() {
            Some(&"nameserver") => {
                if let Some(a) = w.get(1) {
                    if !a.starts_with("127.") && *a != "::1" {
                        host_servers.push(a.to_string());
                    }
                }
            }
            Some(&"search") | Some(&"domain") if !req.dns_search.is_empty() => {}
            Some(&"options") if !req.dns_options.is_empty() => {}
            _ => {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    if !req.dns_search.is_empty() {
        out.push_str(&format!("search {}\n", req.dns_search.join(" ")));
    }
    if !req.dns_options.is_empty() {
        out.push_str(&format!("options {}\n", req.dns_options.join(" ")));
    }
    if servers.is_empty() {
        servers = host_servers;
    }
    for s in servers.iter().take(3) {
        out.push_str(&format!("nameserver {s}\n"));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(ip: &str, gw: &str) -> Endpoint {
        Endpoint {
            owner: "o".into(),
            network: "n".into(),
            names: vec![],
            ip: ip.parse().unwrap(),
            prefix: 24,
            gateway: gw.parse().unwrap(),
            mac: String::new(),
            veth: String::new(),
            ifname: "eth0".into(),
            ports: vec![],
        }
    }

    #[test]
    fn hosts_name_the_container_at_its_address() {
        let h = hosts(
            "abc",
            "web",
            &[ep("10.89.0.2", "10.89.0.1")],
            &[
                ("db".into(), "1.2.3.4".into()),
                ("gw".into(), "host-gateway".into()),
            ],
        );
        assert!(h.contains("10.89.0.2\tabc web\n"), "{h}");
        assert!(h.contains("1.2.3.4\tdb\n"));
        assert!(h.contains("10.89.0.1\tgw\n"));
        assert!(hosts("abc", "abc", &[], &[]).contains("127.0.1.1\tabc\n"));
    }

    #[test]
    fn resolv_conf_points_at_the_networks_servers() {
        let req = NetRequest::default();
        let eps = [ep("10.89.0.2", "10.89.0.1"), ep("10.89.1.2", "10.89.1.1")];
        let s = String::from_utf8(resolv_conf(false, &eps, &req)).unwrap();
        let ns: Vec<&str> = s.lines().filter(|l| l.starts_with("nameserver")).collect();
        assert_eq!(ns, ["nameserver 10.89.0.1", "nameserver 10.89.1.1"]);
        let req = NetRequest {
            dns: vec!["9.9.9.9".parse().unwrap()],
            dns_search: vec!["example".into()],
            ..Default::default()
        };
        let s = String::from_utf8(resolv_conf(false, &eps, &req)).unwrap();
        assert!(s.contains("nameserver 9.9.9.9\n") && !s.contains("10.89.0.1"));
        assert!(s.contains("search example\n"));
        let s = String::from_utf8(resolv_conf(false, &[], &NetRequest::default())).unwrap();
        assert!(!s.contains("nameserver 127."));
    }

    #[test]
    fn add_host_forms() {
        assert_eq!(
            parse_add_host("db:1.2.3.4").unwrap(),
            ("db".to_string(), "1.2.3.4".to_string())
        );
        assert_eq!(parse_add_host("db=::1").unwrap().1, "::1");
        assert_eq!(parse_add_host("x:host-gateway").unwrap().1, "host-gateway");
        for bad in ["db", ":1.2.3.4", "db:nope"] {
            assert!(parse_add_host(bad).is_err(), "{bad}");
        }
    }
}
