//! Named bridge networks: their records under DATA_ROOT/networks, and the
//! endpoints that join an owner's network namespace to one (veth pair,
//! lease, route, published ports, DNS names). The host side — bridge,
//! firewall table, DNS process — exists only while a network has
//! endpoints, and is derived from the records, so a crash at any point
//! leaves only what `detach`/`prune` finish. An owner is an opaque id
//! (the engine's container id); this code knows links, addresses and
//! rules, not containers.

use crate::container::state::write_atomic;
use crate::engine::record::lock_file;
use crate::error::{Context, Error, Result};
use crate::net::ipam::{self, Subnet};
use crate::net::nft::{self, Net4, Rule, Verdict};
use crate::net::ports::{self, Port};
use crate::net::{netns, rtnl};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// The network a container joins when it names none.
pub const DEFAULT: &str = "runway";
const DEFAULT_BRIDGE: &str = "runway0";
/// Bridges of user networks are `runway1`, `runway2`…
const BRIDGE_PREFIX: &str = "runway";
/// Host ends of veth pairs: `rw` + 11 hex digits of (owner, network).
const VETH_PREFIX: &str = "rw";
const CONFIG: &str = "config.json";
const ENDPOINTS: &str = "endpoints";
/// The DNS server's names table (net::dns::Table's format).
pub const NAMES: &str = "names";
const DNS_LOCK: &str = "dns.lock";
const DNS_PID: &str = "dns.pid";

/// A network's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub subnet: String,
    pub gateway: IpAddr,
    pub bridge: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Network {
    pub fn subnet(&self) -> Result<Subnet> {
        Subnet::parse(&self.subnet)
    }
}

/// One owner on one network, as set up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub owner: String,
    pub network: String,
    /// Names the network's DNS answers for it (its name, aliases…).
    pub names: Vec<String>,
    pub ip: IpAddr,
    pub prefix: u8,
    pub gateway: IpAddr,
    pub mac: String,
    pub veth: String,
    pub ifname: String,
    #[serde(default)]
    pub ports: Vec<Port>,
}

/// What `create` is asked.
#[derive(Debug, Default)]
pub struct CreateOpts {
    pub name: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// What `attach` is asked.
pub struct Attach<'a> {
    pub network: &'a str,
    pub owner: &'a str,
    pub names: Vec<String>,
    pub ip: Option<IpAddr>,
    pub ports: Vec<ports::Spec>,
    /// The owner's pinned network namespace.
    pub netns: &'a Path,
}

pub fn networks_dir(data_root: &Path) -> PathBuf {
    data_root.join("networks")
}

fn net_dir(data_root: &Path, name: &str) -> PathBuf {
    networks_dir(data_root).join(name)
}

fn ep_path(data_root: &Path, net: &str, owner: &str) -> PathBuf {
    net_dir(data_root, net)
        .join(ENDPOINTS)
        .join(format!("{owner}.json"))
}

/// Every change to networks and endpoints is made under this one lock:
/// the firewall table and the DNS tables are rewritten whole from the
/// records, so two writers must not interleave.
fn lock(data_root: &Path) -> Result<std::os::fd::OwnedFd> {
    let d = networks_dir(data_root);
    std::fs::create_dir_all(&d).ctx(|| format!("create {}", d.display()))?;
    lock_file(&d.join(".lock"))
}

/// docker's network name rule.
fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !ok {
        return Err(Error::msg(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    if matches!(name, "none" | "host" | "bridge" | "default" | "private") {
        return Err(Error::msg(format!(
            "network name {name:?} is reserved: it names a network mode"
        )));
    }
    Ok(())
}

/// FNV-1a over `parts`: short, stable, well spread; not for secrets.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// A stable name for an (owner, network) pair, so that a detach after a
/// crash finds the link without a record.
fn veth_name(owner: &str, network: &str) -> String {
    let h = fnv1a(&[owner.as_bytes(), &[0], network.as_bytes()]);
    format!("{VETH_PREFIX}{:011x}", h >> 20)
}

fn load_json<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T> {
    let b = std::fs::read(p).ctx(|| format!("read {}", p.display()))?;
    serde_json::from_slice(&b).map_err(|e| Error::msg(format!("{}: {e}", p.display())))
}

fn save_json<T: Serialize>(p: &Path, v: &T) -> Result<()> {
    let b = crate::jsonfmt::to_vec_pretty(v).map_err(|e| Error::msg(format!("encode: {e}")))?;
    write_atomic(p, &b)
}

/// Every network, by name.
pub fn list(data_root: &Path) -> Result<Vec<Network>> {
    let d = networks_dir(data_root);
    let rd = match std::fs::read_dir(&d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx(|| format!("read {}", d.display())),
    };
    let mut v = Vec::new();
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('.') {
            continue;
        }
        if let Ok(net) = load_json::<Network>(&e.path().join(CONFIG)) {
            v.push(net);
        }
    }
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

/// A network by name, full id or unique id prefix.
pub fn get(data_root: &Path, key: &str) -> Result<Network> {
    if !key.is_empty() && !key.contains('/') && !key.starts_with('.') {
        if let Ok(n) = load_json::<Network>(&net_dir(data_root, key).join(CONFIG)) {
            return Ok(n);
        }
    }
    let all = list(data_root)?;
    let hits: Vec<&Network> = all
        .iter()
        .filter(|n| !key.is_empty() && n.id.starts_with(key))
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::errno(
            format!("network {key} not found"),
            libc::ENOENT,
        )),
        _ => Err(Error::msg(format!("network id prefix {key} is ambiguous"))),
    }
}

/// The endpoints of a network.
pub fn endpoints(data_root: &Path, net: &str) -> Vec<Endpoint> {
    let d = net_dir(data_root, net).join(ENDPOINTS);
    let Ok(rd) = std::fs::read_dir(&d) else {
        return Vec::new();
    };
    let mut v: Vec<Endpoint> = rd
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| load_json(&e.path()).ok())
        .collect();
    v.sort_by_key(|e| e.ip);
    v
}

/// An owner's endpoints, in the order they were made (eth0 first).
pub fn endpoints_of(data_root: &Path, owner: &str) -> Vec<Endpoint> {
    let Ok(nets) = list(data_root) else {
        return Vec::new();
    };
    let mut v: Vec<Endpoint> = nets
        .iter()
        .filter_map(|n| load_json(&ep_path(data_root, &n.name, owner)).ok())
        .collect();
    v.sort_by_key(|e: &Endpoint| ifname_index(&e.ifname));
    v
}

fn ifname_index(n: &str) -> u32 {
    n.strip_prefix("eth")
        .and_then(|i| i.parse().ok())
        .unwrap_or(u32::MAX)
}

/// The host's routes and the other networks' subnets: what a new
/// network's subnet must not overlap.
fn taken_subnets(nets: &[Network]) -> Vec<(Subnet, String)> {
    let mut v: Vec<(Subnet, String)> = nets
        .iter()
        .filter_map(|n| Some((n.subnet().ok()?, format!("network {}", n.name))))
        .collect();
    let bridges: Vec<u32> = nets
        .iter()
        .filter_map(|n| rtnl::index_of(&n.bridge).ok().flatten())
        .collect();
    for r in rtnl::list_routes().unwrap_or_default() {
        // The default route overlaps everything; our own bridges' routes
        // are the networks above.
        if r.prefix == 0 || r.oif.is_some_and(|i| bridges.contains(&i)) {
            continue;
        }
        if let Ok(s) = Subnet::new(r.dst, r.prefix) {
            v.push((s, format!("a route of this host ({s})")));
        }
    }
    v
}

/// Creates a network record (its bridge comes with its first endpoint).
pub fn create(data_root: &Path, o: &CreateOpts) -> Result<Network> {
    check_name(&o.name)?;
    let _l = lock(data_root)?;
    create_locked(data_root, o)
}

fn create_locked(data_root: &Path, o: &CreateOpts) -> Result<Network> {
    let nets = list(data_root)?;
    if nets.iter().any(|n| n.name == o.name) || net_dir(data_root, &o.name).exists() {
        return Err(Error::errno(
            format!("network with name {} already exists", o.name),
            libc::EEXIST,
        ));
    }
    let taken = taken_subnets(&nets);
    let subnet = match &o.subnet {
        Some(s) => {
            let s = Subnet::parse(s).map_err(|e| e.wrap("--subnet"))?;
            if !s.is_ipv4() {
                return Err(Error::msg(format!(
                    "--subnet {s}: only IPv4 networks are supported"
                )));
            }
            if s.prefix() > 30 {
                return Err(Error::msg(format!("--subnet {s}: too small (at most /30)")));
            }
            if let Some((t, what)) = taken.iter().find(|(t, _)| t.overlaps(&s)) {
                return Err(Error::msg(format!("--subnet {s} overlaps {t} of {what}")));
            }
            s
        }
        None => {
            if o.gateway.is_some() {
                return Err(Error::msg("--gateway needs --subnet"));
            }
            let t: Vec<Subnet> = taken.iter().map(|(s, _)| *s).collect();
            ipam::pick_free_subnet(&ipam::default_candidates(), &t)
                .ok_or_else(|| Error::msg("no free subnet left for a new network"))?
        }
    };
    let gateway = match &o.gateway {
        Some(g) => {
            let ip: IpAddr = g
                .parse()
                .map_err(|_| Error::msg(format!("--gateway {g:?}: not an IP address")))?;
            if !subnet.contains(ip) || subnet.host_index(ip).is_none() {
                return Err(Error::msg(format!(
                    "--gateway {ip} is not a host address of subnet {subnet}"
                )));
            }
            ip
        }
        None => subnet
            .gateway()
            .ok_or_else(|| Error::msg(format!("subnet {subnet} has no host address")))?,
    };
    let bridge = if o.name == DEFAULT {
        DEFAULT_BRIDGE.to_string()
    } else {
        (1..10000)
            .map(|i| format!("{BRIDGE_PREFIX}{i}"))
            .find(|b| {
                !nets.iter().any(|n| &n.bridge == b) && rtnl::index_of(b).ok().flatten().is_none()
            })
            .ok_or_else(|| Error::msg("no free bridge name"))?
    };
    let net = Network {
        name: o.name.clone(),
        id: crate::engine::names::new_id()?,
        created: crate::engine::record::now_rfc3339(),
        subnet: subnet.to_string(),
        gateway,
        bridge,
        internal: o.internal,
        labels: o.labels.clone(),
    };
    // Made aside and renamed in: a network is there whole or not at all.
    let tmp = networks_dir(data_root).join(format!(".{}.new", o.name));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join(ENDPOINTS)).ctx(|| format!("create {}", tmp.display()))?;
    let r = save_json(&tmp.join(CONFIG), &net).and_then(|_| {
        std::fs::rename(&tmp, net_dir(data_root, &o.name))
            .ctx(|| format!("create network {}", o.name))
    });
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    r.map(|_| net)
}

/// The default network, made on first use.
pub fn ensure_default(data_root: &Path) -> Result<Network> {
    if let Ok(n) = get(data_root, DEFAULT) {
        return Ok(n);
    }
    let _l = lock(data_root)?;
    if let Ok(n) = get(data_root, DEFAULT) {
        return Ok(n);
    }
    create_locked(
        data_root,
        &CreateOpts {
            name: DEFAULT.into(),
            ..Default::default()
        },
    )
}

/// Removes networks that have no endpoints; `in_use` names them otherwise.
pub fn remove(data_root: &Path, key: &str) -> Result<String> {
    let _l = lock(data_root)?;
    let net = get(data_root, key)?;
    let eps = endpoints(data_root, &net.name);
    if !eps.is_empty() {
        // The first DNS name is the owner's own (the container's name).
        let owners: Vec<&str> = eps
            .iter()
            .map(|e| match e.names.first() {
                Some(n) => n.as_str(),
                None => &e.owner[..e.owner.len().min(12)],
            })
            .collect();
        return Err(Error::errno(
            format!(
                "network {} is in use by container(s) {}",
                net.name,
                owners.join(", ")
            ),
            libc::EBUSY,
        ));
    }
    remove_locked(data_root, &net)?;
    sync_firewall(data_root, false)?;
    Ok(net.name)
}

fn remove_locked(data_root: &Path, net: &Network) -> Result<()> {
    let dir = net_dir(data_root, &net.name);
    stop_dns(&dir);
    teardown_bridge(net)?;
    let trash = networks_dir(data_root).join(format!(".{}.removing", net.name));
    std::fs::rename(&dir, &trash).ctx(|| format!("remove network {}", net.name))?;
    std::fs::remove_dir_all(&trash).ctx(|| format!("remove {}", trash.display()))
}

/// The bridge with its gateway address, up; forwarding on.
fn ensure_bridge(net: &Network, subnet: &Subnet) -> Result<()> {
    if rtnl::index_of(&net.bridge)?.is_none() {
        rtnl::create_bridge(&net.bridge)?;
    }
    let have = rtnl::list_addrs(&net.bridge)?;
    if !have.iter().any(|a| a.ip == net.gateway) {
        rtnl::add_addr(&net.bridge, net.gateway, subnet.prefix())?;
    }
    // Published ports reached on 127.0.0.1 are DNATed to the bridge: the
    // kernel drops 127/8 on the wire unless told otherwise.
    rtnl::set_route_localnet(&net.bridge, true)?;
    rtnl::set_up(&net.bridge)?;
    rtnl::set_ip_forward(true)
}

fn teardown_bridge(net: &Network) -> Result<()> {
    rtnl::delete(&net.bridge).map(drop)
}

/// Joins `a.owner`'s namespace to a network: the whole endpoint, or on
/// failure nothing of it.
pub fn attach(data_root: &Path, a: &Attach) -> Result<Endpoint> {
    let _l = lock(data_root)?;
    let net = get(data_root, a.network)?;
    // Refused before anything is made: the undo below would take the
    // endpoint that is there.
    if ep_path(data_root, &net.name, a.owner).exists() {
        return Err(Error::errno(
            format!("already connected to network {}", net.name),
            libc::EEXIST,
        ));
    }
    let r = attach_locked(data_root, &net, a).and_then(|ep| {
        refresh(data_root)?;
        let dir = net_dir(data_root, &net.name);
        if !running_dns(&dir) {
            spawn_dns(data_root, &net.name)?;
        }
        Ok(ep)
    });
    match r {
        Ok(ep) => Ok(ep),
        Err(e) => {
            let _ = detach_locked(data_root, &net, a.owner, true);
            let _ = refresh(data_root);
            Err(e)
        }
    }
}

fn attach_locked(data_root: &Path, net: &Network, a: &Attach) -> Result<Endpoint> {
    let subnet = net.subnet()?;
    let dir = net_dir(data_root, &net.name);
    if let Some(ip) = a.ip {
        if !subnet.contains(ip) {
            return Err(Error::msg(format!(
                "--ip {ip} is outside subnet {subnet} of network {}",
                net.name
            )));
        }
    }
    // Ports first: the cheapest refusal, before any link exists.
    let taken: Vec<Port> = list(data_root)?
        .iter()
        .flat_map(|n| endpoints(data_root, &n.name))
        .flat_map(|e| e.ports)
        .collect();
    let seed = a
        .owner
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let ports = ports::assign(&a.ports, &taken, seed)?;
    let ip = ipam::allocate(&dir, &subnet, net.gateway, a.owner, a.ip)?;
    ensure_bridge(net, &subnet)?;
    let others = endpoints_of(data_root, a.owner);
    let ifname = (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !others.iter().any(|e| &e.ifname == n))
        .unwrap_or_else(|| "eth0".into());
    let veth = veth_name(a.owner, &net.name);
    // A link of that name is a leftover of a killed attach of ours.
    rtnl::delete(&veth)?;
    let ns = netns::open(a.netns)?;
    rtnl::create_veth(&veth, &ifname, Some(ns.as_fd()))?;
    rtnl::set_master(&veth, &net.bridge)?;
    rtnl::set_up(&veth)?;
    let prefix = subnet.prefix();
    let mac = rtnl::in_netns(ns.as_fd(), || {
        rtnl::set_up("lo")?;
        rtnl::add_addr(&ifname, ip, prefix)?;
        rtnl::set_up(&ifname)?;
        let routes = rtnl::list_routes()?;
        if !routes.iter().any(|r| r.prefix == 0 && r.dst.is_ipv4()) {
            rtnl::add_default_route(net.gateway, Some(&ifname))?;
        }
        Ok(rtnl::list()?
            .into_iter()
            .find(|l| l.name == ifname)
            .and_then(|l| l.mac)
            .map(|m| rtnl::fmt_mac(&m))
            .unwrap_or_default())
    })?;
    let ep = Endpoint {
        owner: a.owner.to_string(),
        network: net.name.clone(),
        names: a.names.clone(),
        ip,
        prefix,
        gateway: net.gateway,
        mac,
        veth,
        ifname,
        ports,
    };
    let p = ep_path(data_root, &net.name, a.owner);
    std::fs::create_dir_all(dir.join(ENDPOINTS)).ctx(|| format!("create {}", dir.display()))?;
    save_json(&p, &ep)?;
    Ok(ep)
}

/// Takes `owner` off a network; absent is fine.
pub fn detach(data_root: &Path, network: &str, owner: &str) -> Result<()> {
    let _l = lock(data_root)?;
    let net = get(data_root, network)?;
    if !ep_path(data_root, &net.name, owner).exists() {
        return Err(Error::errno(
            format!("container is not connected to network {}", net.name),
            libc::ENOENT,
        ));
    }
    detach_locked(data_root, &net, owner, true)?;
    refresh(data_root)
}

/// Takes `owner` off every network (on container removal); what a crash
/// left of an attach goes too. `delete_links`: see [`detach_locked`]
/// (false when the owner's namespace is about to be unpinned).
pub fn detach_all(data_root: &Path, owner: &str, delete_links: bool) -> Result<()> {
    if !networks_dir(data_root).is_dir() {
        return Ok(());
    }
    let _l = lock(data_root)?;
    let mut first_err = None;
    for net in list(data_root)? {
        let dir = net_dir(data_root, &net.name);
        let leased = ipam::leases(&dir)
            .map(|l| l.values().any(|o| o == owner))
            .unwrap_or(false);
        if leased || ep_path(data_root, &net.name, owner).exists() {
            if let Err(e) = detach_locked(data_root, &net, owner, delete_links) {
                first_err.get_or_insert(e);
            }
        }
    }
    refresh(data_root)?;
    first_err.map_or(Ok(()), Err)
}

/// `delete_link`: delete the veth now (a live owner leaving a network).
/// Otherwise it goes with the owner's namespace when that is unpinned:
/// the kernel then destroys it in the background, where an explicit
/// delete waits out an RCU grace period (~20 ms) on our time.
fn detach_locked(data_root: &Path, net: &Network, owner: &str, delete_link: bool) -> Result<()> {
    if delete_link {
        // Deleting the host end takes the peer inside with it.
        rtnl::delete(&veth_name(owner, &net.name))?;
    }
    let dir = net_dir(data_root, &net.name);
    match std::fs::remove_file(ep_path(data_root, &net.name, owner)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).ctx(|| format!("remove endpoint of {owner}")),
    }
    ipam::release(&dir, owner)?;
    // The bridge stays while the network exists (as docker0 does):
    // deleting one costs ~30 ms of grace periods per last container.
    if endpoints(data_root, &net.name).is_empty() {
        stop_dns(&dir);
    }
    Ok(())
}

/// What `prune` removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub networks: Vec<String>,
    pub links: Vec<String>,
}

/// Finishes what crashes left and removes networks without endpoints
/// (the default one too: it is made again on first use). `is_live`
/// says whether an owner still exists.
pub fn prune(data_root: &Path, is_live: &dyn Fn(&str) -> bool) -> Result<Pruned> {
    let _l = lock(data_root)?;
    let mut out = Pruned::default();
    for net in list(data_root)? {
        for ep in endpoints(data_root, &net.name) {
            if !is_live(&ep.owner) {
                detach_locked(data_root, &net, &ep.owner, true)?;
            }
        }
        let dir = net_dir(data_root, &net.name);
        for (_, owner) in ipam::reclaim(&dir, is_live)? {
            let _ = rtnl::delete(&veth_name(&owner, &net.name));
        }
        if endpoints(data_root, &net.name).is_empty() {
            remove_locked(data_root, &net)?;
            out.networks.push(net.name);
        }
    }
    // Half-made or half-removed network dirs.
    if let Ok(rd) = std::fs::read_dir(networks_dir(data_root)) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with('.') && (n.ends_with(".new") || n.ends_with(".removing")) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    // Links of ours that no record explains: a veth of a killed attach,
    // a bridge of a network removed while killed.
    let nets = list(data_root)?;
    let veths: Vec<String> = nets
        .iter()
        .flat_map(|n| endpoints(data_root, &n.name))
        .map(|e| e.veth)
        .collect();
    for l in rtnl::list()? {
        let ours_veth = l.kind.as_deref() == Some("veth")
            && l.name.len() == VETH_PREFIX.len() + 11
            && l.name.starts_with(VETH_PREFIX)
            && l.name[VETH_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit());
        let ours_bridge = l.kind.as_deref() == Some("bridge")
            && l.name.starts_with(BRIDGE_PREFIX)
            && l.name[BRIDGE_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_digit());
        let explained = veths.contains(&l.name) || nets.iter().any(|n| n.bridge == l.name);
        if (ours_veth || ours_bridge) && !explained && rtnl::delete(&l.name)? {
            out.links.push(l.name);
        }
    }
    // Forced: repairs a table someone else flushed.
    sync_firewall(data_root, true)?;
    Ok(out)
}

/// Firewall and DNS tables from the records.
fn refresh(data_root: &Path) -> Result<()> {
    sync_firewall(data_root, false)?;
    write_names(data_root)
}

/// Rewrites table `inet runway` in one transaction from the network
/// records: a crash between two changes leaves the previous ruleset or
/// the next one, never a mix, and the next change repairs it. The chains
/// are flushed and refilled, not deleted (re-registering hooks waits out
/// grace periods); a ruleset equal to the last one applied in this boot
/// and namespace is not sent at all (most runs publish no port, so only
/// network create/rm and ports change it). `force`: send it anyway.
pub fn sync_firewall(data_root: &Path, force: bool) -> Result<()> {
    let all: Vec<(Network, Vec<Endpoint>)> = list(data_root)?
        .into_iter()
        .map(|n| {
            let e = endpoints(data_root, &n.name);
            (n, e)
        })
        .collect();
    let stamp_path = networks_dir(data_root).join(".firewall");
    let mut nft = nft::Nft::open()?;
    if all.is_empty() {
        let _ = std::fs::remove_file(&stamp_path);
        return nft.remove_table(nft::TABLE);
    }
    let mut b = nft::Batch::new();
    b.skeleton(nft::TABLE);
    for c in &nft::BASE_CHAINS {
        b.push(nft::flush_chain(nft::TABLE, c.name));
    }
    for (chain, rule) in rules(&all)? {
        b.push(nft::new_rule(nft::TABLE, chain, &rule));
    }
    let stamp = fingerprint(&b.encode(0));
    if !force && std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(());
    }
    nft.apply(&b)?;
    write_atomic(&stamp_path, stamp.as_bytes())
}

/// The ruleset's bytes with this boot and this network namespace: a
/// reboot (or another namespace) never matches an old stamp.
fn fingerprint(batch: &[u8]) -> String {
    let boot = std::fs::read("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let ns = std::fs::read_link("/proc/thread-self/ns/net")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let h = fnv1a(&[batch, &boot, ns.as_bytes()]);
    format!("{h:016x} {}\n", batch.len())
}

fn v4(ip: IpAddr) -> Result<Ipv4Addr> {
    match ip {
        IpAddr::V4(v) => Ok(v),
        IpAddr::V6(v) => Err(Error::msg(format!("{v}: IPv6 is not supported here"))),
    }
}

/// The ruleset, per base chain, in order.
fn rules(active: &[(Network, Vec<Endpoint>)]) -> Result<Vec<(&'static str, Rule)>> {
    let mut v: Vec<(&'static str, Rule)> = Vec::new();
    let loopback = Net4::new(Ipv4Addr::new(127, 0, 0, 0), 8);
    // forward: an internal network's walls first; then connections to
    // published ports (DNATed), which containers of other networks may
    // reach through the host's address as docker allows; then the walls
    // between networks; then what each network may do.
    for (n, _) in active.iter().filter(|(n, _)| n.internal) {
        // Nothing in or out but among its own members.
        v.push((
            "forward",
            Rule::new()
                .iifname(&n.bridge, true)
                .oifname(&n.bridge, false)
                .counter()
                .verdict(Verdict::Drop),
        ));
        v.push((
            "forward",
            Rule::new()
                .oifname(&n.bridge, true)
                .iifname(&n.bridge, false)
                .counter()
                .verdict(Verdict::Drop),
        ));
    }
    v.push((
        "forward",
        Rule::new().ct_dnat().counter().verdict(Verdict::Accept),
    ));
    for (a, _) in active {
        for (b, _) in active {
            if a.name != b.name {
                v.push(("forward", nft::isolate_rule(&a.bridge, &b.bridge)));
            }
        }
    }
    for (n, _) in active.iter().filter(|(n, _)| !n.internal) {
        v.push(("forward", nft::forward_from_rule(&n.bridge)));
        v.push(("forward", nft::forward_into_rule(&n.bridge)));
    }
    for (n, eps) in active {
        let s = n.subnet()?;
        let subnet = Net4::new(v4(s.network())?, s.prefix());
        if !n.internal {
            v.push(("postrouting", nft::masquerade_rule(subnet, &n.bridge)));
        }
        let mut published = false;
        for e in eps {
            let ip = v4(e.ip)?;
            for p in &e.ports {
                let proto = match p.proto {
                    ports::Proto::Tcp => nft::Proto::Tcp,
                    ports::Proto::Udp => nft::Proto::Udp,
                };
                let r = nft::dnat_rule(proto, p.host_port, p.host_ip, ip, p.ctr_port);
                v.push(("prerouting", r.clone()));
                v.push(("output", r));
                v.push((
                    "postrouting",
                    nft::hairpin_rule(subnet, proto, ip, p.ctr_port),
                ));
                published = true;
            }
        }
        if published {
            // 127.0.0.1:PORT DNATed to a container: answered to the
            // bridge's address, not to a loopback one it cannot reach.
            v.push((
                "postrouting",
                Rule::new()
                    .ipv4()
                    .saddr(loopback, true)
                    .oifname(&n.bridge, true)
                    .counter()
                    .masquerade(),
            ));
        }
    }
    Ok(v)
}

// --- Names. ---

/// The names table of one network for its DNS server: its endpoints'
/// names; and for each endpoint also on other networks, a view of those
/// networks' names that only it sees.
fn names_table(data_root: &Path, net: &Network, eps: &[Endpoint]) -> String {
    let mut s = format!("@network {}\n", net.name);
    let line = |s: &mut String, name: &str, ip: IpAddr| {
        if crate::net::dns::Table::parse(&format!("{name} {ip}")).is_ok() {
            s.push_str(&format!("{name} {ip}\n"));
        }
    };
    for e in eps {
        for n in &e.names {
            line(&mut s, n, e.ip);
        }
    }
    {
        for e in eps {
            let mut view = String::new();
            for other in endpoints_of(data_root, &e.owner) {
                if other.network == net.name {
                    continue;
                }
                for o in endpoints(data_root, &other.network) {
                    for n in &o.names {
                        line(&mut view, n, o.ip);
                        line(&mut view, &format!("{n}.{}", o.network), o.ip);
                    }
                }
            }
            if !view.is_empty() {
                s.push_str(&format!("@client {}\n{view}", e.ip));
            }
        }
    }
    s
}

fn write_names(data_root: &Path) -> Result<()> {
    for n in list(data_root)? {
        let eps = endpoints(data_root, &n.name);
        if eps.is_empty() {
            continue;
        }
        let t = names_table(data_root, &n, &eps);
        let p = net_dir(data_root, &n.name).join(NAMES);
        if std::fs::read_to_string(&p).ok().as_deref() != Some(t.as_str()) {
            write_atomic(&p, t.as_bytes())?;
        }
    }
    Ok(())
}

// --- The DNS process. ---

fn running_dns(dir: &Path) -> bool {
    crate::engine::record::lock_held(&dir.join(DNS_LOCK))
}

/// Starts `runway network dns NAME` in the background: its own session,
/// no fds of ours but /dev/null on stdio.
fn spawn_dns(data_root: &Path, name: &str) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().ctx(|| "find runway's own binary")?;
    let data_root = std::path::absolute(data_root).ctx(|| "data root")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--data-root")
        .arg(&data_root)
        .args(["network", "dns", name])
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            // Whatever our caller left open (a pipe a shell waits on)
            // must not live on in a long-running server.
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 4u32);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .ctx(|| format!("start the DNS server of {name}"))?;
    // It daemonizes by itself: reap the intermediate at once.
    child
        .wait()
        .ctx(|| format!("start the DNS server of {name}"))
        .and_then(|st| {
            if st.success() {
                Ok(())
            } else {
                Err(Error::msg(format!(
                    "the DNS server of network {name} did not start"
                )))
            }
        })
}

fn stop_dns(dir: &Path) {
    if !running_dns(dir) {
        return;
    }
    let Ok(pid) = std::fs::read_to_string(dir.join(DNS_PID)) else {
        return;
    };
    let Ok(pid) = pid.trim().parse::<i32>() else {
        return;
    };
    if pid <= 1 {
        return;
    }
    // SAFETY: kill(2) of the pid the server wrote while holding its lock.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    // Its address must be free before the bridge goes or comes again.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while running_dns(dir) && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    if running_dns(dir) {
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let _ = std::fs::remove_file(dir.join(DNS_PID));
}

/// `runway network dns NAME`: the network's DNS server. Forks once so
/// that the caller returns as soon as the server holds its lock and its
/// socket; exits quietly if another server holds the lock.
pub fn serve_dns(data_root: &Path, name: &str) -> Result<()> {
    let net = get(data_root, name)?;
    let dir = net_dir(data_root, &net.name);
    let p = dir.join(DNS_LOCK);
    let fd = rustix::fs::open(
        &p,
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CREATE | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .map_err(|e| Error::errno(format!("open {}", p.display()), e.raw_os_error()))?;
    match rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Ok(()),
        Err(e) => {
            return Err(Error::errno(
                format!("lock {}", p.display()),
                e.raw_os_error(),
            ))
        }
    }
    let upstreams = upstreams();
    // SAFETY: fork in a single-threaded process; the child goes on with
    // our code and the lock (flock locks follow the open file).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os("fork the DNS server"));
    }
    if pid > 0 {
        return wait_ready(pid, SocketAddr::new(net.gateway, 53));
    }
    let _keep = fd;
    let code = match std::fs::write(dir.join(DNS_PID), format!("{}\n", std::process::id()))
        .ctx(|| "write dns.pid")
        .and_then(|_| crate::net::dns::serve(net.gateway, 53, &dir.join(NAMES), upstreams))
    {
        Ok(()) => 0,
        Err(_) => 1,
    };
    // SAFETY: leave without the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

/// Until the server answers on TCP (bound after UDP), so that the first
/// query of a container started right after never goes unanswered.
fn wait_ready(pid: i32, addr: SocketAddr) -> Result<()> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(100))
            .is_ok()
        {
            return Ok(());
        }
        let mut st = 0;
        // SAFETY: waitpid(WNOHANG) on our own child.
        if unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) } == pid {
            return Err(Error::msg(format!(
                "the DNS server on {addr} exited at start"
            )));
        }
        if std::time::Instant::now() > until {
            return Err(Error::msg(format!(
                "the DNS server on {addr} did not come up"
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The host's resolvers (loopback ones too: the server runs in the
/// host's namespace).
fn upstreams() -> Vec<std::net::SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver"))
                .then(|| w.next()?.parse::<IpAddr>().ok())
                .flatten()
        })
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_are_stable_valid_and_distinct() {
        let a = veth_name("abc", "runway");
        assert_eq!(a, veth_name("abc", "runway"));
        assert_ne!(a, veth_name("abc", "other"));
        assert_ne!(a, veth_name("abd", "runway"));
        assert_eq!(a.len(), 13);
        rtnl::check_name(&a).unwrap();
    }

    #[test]
    fn network_names_follow_docker() {
        assert!(check_name("front-end_1.x").is_ok());
        for bad in ["", "-x", "a/b", "none", "host", "bridge", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rules_isolate_and_publish() {
        let net = |name: &str, br: &str, subnet: &str, internal: bool| Network {
            name: name.into(),
            id: String::new(),
            created: String::new(),
            subnet: subnet.into(),
            gateway: "10.0.0.1".parse().unwrap(),
            bridge: br.into(),
            internal,
            labels: BTreeMap::new(),
        };
        let ep = Endpoint {
            owner: "o".into(),
            network: "a".into(),
            names: vec!["web".into()],
            ip: "10.89.0.2".parse().unwrap(),
            prefix: 24,
            gateway: "10.89.0.1".parse().unwrap(),
            mac: String::new(),
            veth: "rw0".into(),
            ifname: "eth0".into(),
            ports: vec![Port {
                proto: ports::Proto::Tcp,
                host_ip: None,
                host_port: 8080,
                ctr_port: 80,
            }],
        };
        let active = vec![
            (net("a", "runway1", "10.89.0.0/24", false), vec![ep.clone()]),
            (net("b", "runway2", "10.89.1.0/24", true), vec![]),
        ];
        let r = rules(&active).unwrap();
        let count = |c: &str| r.iter().filter(|(ch, _)| *ch == c).count();
        // 2 drops of internal b, the published-port accept, 2
        // isolation drops, 2 accepts of a.
        assert_eq!(count("forward"), 7);
        // a's masquerade, hairpin, loopback; b is internal.
        assert_eq!(count("postrouting"), 3);
        assert_eq!((count("prerouting"), count("output")), (1, 1));
        let t = names_table(Path::new("/nonexistent"), &active[0].0, &[ep]);
        assert_eq!(t, "@network a\nweb 10.89.0.2\n");
    }
}
