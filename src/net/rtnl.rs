//! rtnetlink operations on links, addresses and routes of the current
//! network namespace, in-process (no `ip` binary): each call is one
//! netlink request through [`Socket`], and its error names the operation
//! and the object (`create bridge runway0: file exists`).

use crate::error::{Context, Error, Result};
use crate::linux::sysctl;
use crate::net::netlink::{
    attrs, str_of, u32_of, Msg, Socket, NETLINK_ROUTE, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_EXCL, NLM_F_REQUEST,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;

const RT_TABLE_MAIN: u8 = 254;
/// What `ip route add` marks its routes with: configured by an admin tool.
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;

const IFF_UP: u32 = 1;
/// IFNAMSIZ less its NUL.
const IFNAME_MAX: usize = 15;

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

/// One link of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// IFLA_INFO_KIND ("bridge", "veth"…); None for lo and plain devices.
    pub kind: Option<String>,
    /// Index of the bridge (or bond) this link is enslaved to.
    pub master: Option<u32>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// The link-layer address when it is an Ethernet one (6 bytes).
    pub mac: Option<[u8; 6]>,
}

/// One address of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr {
    pub ip: IpAddr,
    pub prefix: u8,
}

/// One route of the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// 0.0.0.0 / :: for a default route.
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
}

/// Checks a link name as the kernel's dev_valid_name does, so that a bad
/// name is refused before any syscall with a line that says why.
pub fn check_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "empty"
    } else if name.len() > IFNAME_MAX {
        "longer than 15 bytes"
    } else if name == "." || name == ".." {
        "not a name"
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
    {
        "contains '/', ':', NUL or whitespace"
    } else {
        return Ok(());
    };
    Err(Error::msg(format!("invalid link name {name:?}: {why}")))
}

fn open() -> Result<Socket> {
    Socket::open(NETLINK_ROUTE)
}

/// struct ifinfomsg: family, pad, type, index, flags, change.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

const NEW: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
const SET: u16 = NLM_F_REQUEST | NLM_F_ACK;

/// The RTM_NEWLINK that creates a bridge.
pub fn bridge_msg(name: &str) -> Msg {
    let mut m = Msg::new(RTM_NEWLINK, NEW);
    m.header(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    let info = m.nest_start(IFLA_LINKINFO);
    m.attr_str(IFLA_INFO_KIND, "bridge");
    m.nest_end(info);
    m
}

/// Creates a bridge (down, no address).
pub fn create_bridge(name: &str) -> Result<()> {
    check_name(name)?;
    open()?.request(bridge_msg(name), &format!("create bridge {name}"))
}

/// Creates a veth pair; with `peer_netns_fd` the peer is born in that
/// network namespace (IFLA_NET_NS_FD in the peer's ifinfomsg), so it never
/// appears, even briefly, in ours.
pub fn create_veth(name: &str, peer_name: &str, peer_netns_fd: Option<BorrowedFd>) -> Result<()> {
    check_name(name)?;
    check_name(peer_name)?;
    let mut m = Msg::new(RTM_NEWLINK, NEW);
    m.header(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    let info = m.nest_start(IFLA_LINKINFO);
    m.attr_str(IFLA_INFO_KIND, "veth");
    let data = m.nest_start(IFLA_INFO_DATA);
    let peer = m.nest_start(VETH_INFO_PEER);
    // The peer's attributes follow its own ifinfomsg inside the nest.
    m.header(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, peer_name);
    if let Some(fd) = peer_netns_fd {
        m.attr_u32(IFLA_NET_NS_FD, fd.as_raw_fd() as u32);
    }
    m.nest_end(peer);
    m.nest_end(data);
    m.nest_end(info);
    open()?.request(m, &format!("create veth {name} peer {peer_name}"))
}

/// A change to an existing link named in IFLA_IFNAME (index 0: the kernel
/// looks the name up, so there is no lookup race on our side).
fn set_by_name(name: &str, flags: u32, change: u32) -> Result<Msg> {
    check_name(name)?;
    let mut m = Msg::new(RTM_NEWLINK, SET);
    m.header(&ifinfomsg(0, flags, change));
    m.attr_str(IFLA_IFNAME, name);
    Ok(m)
}

pub fn set_up(name: &str) -> Result<()> {
    let m = set_by_name(name, IFF_UP, IFF_UP)?;
    open()?.request(m, &format!("set link {name} up"))
}

pub fn set_down(name: &str) -> Result<()> {
    let m = set_by_name(name, 0, IFF_UP)?;
    open()?.request(m, &format!("set link {name} down"))
}

/// Enslaves `name` to the bridge `bridge`.
pub fn set_master(name: &str, bridge: &str) -> Result<()> {
    let what = format!("set link {name} master {bridge}");
    check_name(bridge)?;
    let mut m = set_by_name(name, 0, 0)?;
    let b = index_of(bridge)?.ok_or_else(|| Error::errno(what.clone(), libc::ENODEV))?;
    m.attr_u32(IFLA_MASTER, b);
    open()?.request(m, &what)
}

/// Takes `name` off its bridge.
pub fn set_nomaster(name: &str) -> Result<()> {
    let what = format!("set link {name} nomaster");
    let mut m = set_by_name(name, 0, 0)?;
    m.attr_u32(IFLA_MASTER, 0);
    open()?.request(m, &what)
}

pub fn set_mtu(name: &str, mtu: u32) -> Result<()> {
    let what = format!("set link {name} mtu {mtu}");
    let mut m = set_by_name(name, 0, 0)?;
    m.attr_u32(IFLA_MTU, mtu);
    open()?.request(m, &what)
}

pub fn set_mac(name: &str, mac: [u8; 6]) -> Result<()> {
    let what = format!("set link {name} address {}", fmt_mac(&mac));
    let mut m = set_by_name(name, 0, 0)?;
    m.attr(IFLA_ADDRESS, &mac);
    open()?.request(m, &what)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A change keyed by index, for the requests that carry a new name in
/// IFLA_IFNAME.
fn by_index(name: &str, what: &str) -> Result<Msg> {
    check_name(name)?;
    let index = index_of(name)?.ok_or_else(|| Error::errno(what.to_string(), libc::ENODEV))?;
    let mut m = Msg::new(RTM_NEWLINK, SET);
    m.header(&ifinfomsg(index, 0, 0));
    Ok(m)
}

/// Renames a link (the kernel wants it down).
pub fn rename(name: &str, new_name: &str) -> Result<()> {
    let what = format!("rename link {name} to {new_name}");
    check_name(new_name)?;
    let mut m = by_index(name, &what)?;
    m.attr_str(IFLA_IFNAME, new_name);
    open()?.request(m, &what)
}

/// Moves a link into the network namespace `netns_fd`, renaming it there
/// in the same request when `new_name` is given.
pub fn move_to_netns(name: &str, netns_fd: BorrowedFd, new_name: Option<&str>) -> Result<()> {
    let what = match new_name {
        Some(n) => format!("move link {name} to another network namespace as {n}"),
        None => format!("move link {name} to another network namespace"),
    };
    if let Some(n) = new_name {
        check_name(n)?;
    }
    let mut m = by_index(name, &what)?;
    m.attr_u32(IFLA_NET_NS_FD, netns_fd.as_raw_fd() as u32);
    if let Some(n) = new_name {
        m.attr_str(IFLA_IFNAME, n);
    }
    open()?.request(m, &what)
}

/// Deletes a link (a veth takes its peer with it). Ok(false) when there
/// was no such link.
pub fn delete(name: &str) -> Result<bool> {
    check_name(name)?;
    let mut m = Msg::new(RTM_DELLINK, SET);
    m.header(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    match open()?.request(m, &format!("delete link {name}")) {
        Ok(()) => Ok(true),
        Err(e) if e.errno == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The index of a link, None if there is none of that name.
pub fn index_of(name: &str) -> Result<Option<u32>> {
    check_name(name)?;
    let mut m = Msg::new(RTM_GETLINK, SET);
    m.header(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    match open()?.transact(&[m], &format!("look up link {name}")) {
        Ok(r) => Ok(r
            .iter()
            .filter(|(ty, _)| *ty == RTM_NEWLINK)
            .find_map(|(_, b)| parse_link(b))
            .map(|l| l.index)),
        Err(e) if e.errno == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every link of the namespace.
pub fn list() -> Result<Vec<Link>> {
    let mut m = Msg::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
    m.header(&ifinfomsg(0, 0, 0));
    let r = open()?.dump(m, "list links")?;
    Ok(r.iter()
        .filter(|(ty, _)| *ty == RTM_NEWLINK)
        .filter_map(|(_, b)| parse_link(b))
        .collect())
}

/// One RTM_NEWLINK body; None if malformed.
pub fn parse_link(b: &[u8]) -> Option<Link> {
    let index = u32_of(b.get(4..8)?)?;
    let flags = u32_of(b.get(8..12)?)?;
    let mut l = Link {
        index,
        name: String::new(),
        kind: None,
        master: None,
        up: flags & IFF_UP != 0,
        mac: None,
    };
    for (ty, p) in attrs(b.get(16..)?) {
        match ty {
            IFLA_IFNAME => l.name = str_of(p)?.to_string(),
            IFLA_MASTER => l.master = u32_of(p).filter(|m| *m != 0),
            IFLA_ADDRESS => l.mac = p.try_into().ok(),
            IFLA_LINKINFO => {
                l.kind = attrs(p)
                    .find(|(t, _)| *t == IFLA_INFO_KIND)
                    .and_then(|(_, k)| str_of(k))
                    .map(str::to_string)
            }
            _ => {}
        }
    }
    Some(l)
}

fn family_of(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn ip_of(family: u8, p: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(p).ok()?))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(p).ok()?))),
        _ => None,
    }
}

fn check_prefix(ip: &IpAddr, prefix: u8, what: &str) -> Result<()> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(Error::msg(format!(
            "{what}: prefix length {prefix} is longer than {max}"
        )));
    }
    Ok(())
}

/// The RTM_NEWADDR / RTM_DELADDR for `ip/prefix` on link `index`: IFA_LOCAL
/// and IFA_ADDRESS both carry the address, as for a link without a peer.
pub fn addr_msg(ty: u16, flags: u16, index: u32, ip: IpAddr, prefix: u8) -> Msg {
    let mut m = Msg::new(ty, flags);
    let mut h = [0u8; 8];
    h[0] = family_of(&ip);
    h[1] = prefix;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    m.header(&h);
    let a = ip_bytes(&ip);
    m.attr(IFA_LOCAL, &a);
    m.attr(IFA_ADDRESS, &a);
    m
}

fn addr_op(ty: u16, flags: u16, link: &str, ip: IpAddr, prefix: u8, what: &str) -> Result<()> {
    check_name(link)?;
    check_prefix(&ip, prefix, what)?;
    let index = index_of(link)?.ok_or_else(|| Error::errno(what.to_string(), libc::ENODEV))?;
    open()?.request(addr_msg(ty, flags, index, ip, prefix), what)
}

/// Adds an IPv4 or IPv6 address to a link.
pub fn add_addr(link: &str, ip: IpAddr, prefix_len: u8) -> Result<()> {
    let what = format!("add address {ip}/{prefix_len} to {link}");
    addr_op(RTM_NEWADDR, NEW, link, ip, prefix_len, &what)
}

pub fn del_addr(link: &str, ip: IpAddr, prefix_len: u8) -> Result<()> {
    let what = format!("delete address {ip}/{prefix_len} from {link}");
    addr_op(RTM_DELADDR, SET, link, ip, prefix_len, &what)
}

/// The addresses of a link, IPv4 and IPv6.
pub fn list_addrs(link: &str) -> Result<Vec<Addr>> {
    let what = format!("list addresses of {link}");
    check_name(link)?;
    let index = index_of(link)?.ok_or_else(|| Error::errno(what.clone(), libc::ENODEV))?;
    let mut m = Msg::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
    m.header(&[0u8; 8]);
    let r = open()?.dump(m, &what)?;
    Ok(r.iter()
        .filter(|(ty, _)| *ty == RTM_NEWADDR)
        .filter_map(|(_, b)| parse_addr(b))
        .filter(|(i, _)| *i == index)
        .map(|(_, a)| a)
        .collect())
}

/// One RTM_NEWADDR body: (link index, address).
fn parse_addr(b: &[u8]) -> Option<(u32, Addr)> {
    let family = *b.first()?;
    let prefix = *b.get(1)?;
    let index = u32_of(b.get(4..8)?)?;
    let (mut local, mut address) = (None, None);
    for (ty, p) in attrs(b.get(8..)?) {
        match ty {
            IFA_LOCAL => local = ip_of(family, p),
            IFA_ADDRESS => address = ip_of(family, p),
            _ => {}
        }
    }
    // On a point-to-point link IFA_ADDRESS is the peer's; IFA_LOCAL is ours.
    let ip = local.or(address)?;
    Some((index, Addr { ip, prefix }))
}

/// struct rtmsg for the main table.
fn rtmsg(family: u8, dst_len: u8, scope: u8) -> [u8; 12] {
    [
        family,
        dst_len,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        scope,
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ]
}

/// The route request: `dst/prefix` via `via` and/or out of `oif`. A route
/// with no gateway is on-link (scope link), as `ip route add … dev X` makes.
fn route_msg(
    ty: u16,
    flags: u16,
    dst: IpAddr,
    prefix: u8,
    via: Option<IpAddr>,
    oif: Option<u32>,
) -> Msg {
    let scope = if via.is_some() {
        RT_SCOPE_UNIVERSE
    } else {
        RT_SCOPE_LINK
    };
    let mut m = Msg::new(ty, flags);
    m.header(&rtmsg(family_of(&dst), prefix, scope));
    if prefix > 0 {
        m.attr(RTA_DST, &ip_bytes(&dst));
    }
    if let Some(g) = via {
        m.attr(RTA_GATEWAY, &ip_bytes(&g));
    }
    if let Some(i) = oif {
        m.attr_u32(RTA_OIF, i);
    }
    m
}

fn route_op(
    ty: u16,
    flags: u16,
    dst: IpAddr,
    prefix: u8,
    via: Option<IpAddr>,
    dev: Option<&str>,
    what: &str,
) -> Result<()> {
    check_prefix(&dst, prefix, what)?;
    if let Some(g) = via {
        if g.is_ipv4() != dst.is_ipv4() {
            return Err(Error::msg(format!(
                "{what}: gateway and destination are of different families"
            )));
        }
    }
    if via.is_none() && dev.is_none() {
        return Err(Error::msg(format!(
            "{what}: neither a gateway nor a device"
        )));
    }
    let oif = match dev {
        Some(d) => {
            check_name(d)?;
            Some(index_of(d)?.ok_or_else(|| Error::errno(what.to_string(), libc::ENODEV))?)
        }
        None => None,
    };
    open()?.request(route_msg(ty, flags, dst, prefix, via, oif), what)
}

fn route_what(
    verb: &str,
    dst: IpAddr,
    prefix: u8,
    via: Option<IpAddr>,
    dev: Option<&str>,
) -> String {
    let mut s = if prefix == 0 {
        format!("{verb} route default")
    } else {
        format!("{verb} route {dst}/{prefix}")
    };
    if let Some(g) = via {
        s.push_str(&format!(" via {g}"));
    }
    if let Some(d) = dev {
        s.push_str(&format!(" dev {d}"));
    }
    s
}

fn unspecified(like: &IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// The default route (of the gateway's family) via `gateway`, optionally
/// pinned to a link.
pub fn add_default_route(gateway: IpAddr, link: Option<&str>) -> Result<()> {
    let dst = unspecified(&gateway);
    let what = route_what("add", dst, 0, Some(gateway), link);
    route_op(RTM_NEWROUTE, NEW, dst, 0, Some(gateway), link, &what)
}

/// `dst/prefix` via a gateway and/or out of a device (at least one).
pub fn add_route(dst: IpAddr, prefix: u8, via: Option<IpAddr>, dev: Option<&str>) -> Result<()> {
    let what = route_what("add", dst, prefix, via, dev);
    route_op(RTM_NEWROUTE, NEW, dst, prefix, via, dev, &what)
}

pub fn del_route(dst: IpAddr, prefix: u8, via: Option<IpAddr>, dev: Option<&str>) -> Result<()> {
    let what = route_what("delete", dst, prefix, via, dev);
    route_op(RTM_DELROUTE, SET, dst, prefix, via, dev, &what)
}

/// The routes of the main table, IPv4 and IPv6.
pub fn list_routes() -> Result<Vec<Route>> {
    let mut m = Msg::new(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP);
    m.header(&[0u8; 12]);
    let r = open()?.dump(m, "list routes")?;
    Ok(r.iter()
        .filter(|(ty, _)| *ty == RTM_NEWROUTE)
        .filter_map(|(_, b)| parse_route(b))
        .collect())
}

/// One RTM_NEWROUTE body, if it is in the main table.
fn parse_route(b: &[u8]) -> Option<Route> {
    let family = *b.first()?;
    let prefix = *b.get(1)?;
    let mut table = u32::from(*b.get(4)?);
    let mut r = Route {
        dst: ip_of(family, &[0u8; 16][..if family == AF_INET { 4 } else { 16 }])?,
        prefix,
        gateway: None,
        oif: None,
    };
    for (ty, p) in attrs(b.get(12..)?) {
        match ty {
            RTA_DST => r.dst = ip_of(family, p)?,
            RTA_GATEWAY => r.gateway = ip_of(family, p),
            RTA_OIF => r.oif = u32_of(p),
            // Tables above 255 are only in RTA_TABLE.
            RTA_TABLE => table = u32_of(p)?,
            _ => {}
        }
    }
    (table == u32::from(RT_TABLE_MAIN)).then_some(r)
}

/// Runs `f` with the calling thread in the network namespace `ns_fd`, then
/// puts the thread back.
///
/// Chosen over forking a child: `f` keeps its ordinary return type (no
/// serializing a result through a pipe), errors keep their errno, and it
/// costs two setns(2) calls rather than a fork. setns(CLONE_NEWNET) moves
/// only the calling thread, so it is sound in a threaded process too (the
/// test harness), and sockets and /proc/sys/net opened inside `f` belong
/// to `ns_fd`'s namespace.
pub fn in_netns<T>(ns_fd: BorrowedFd, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let own = open_own_netns()?;
    setns_net(ns_fd.as_raw_fd()).ctx(|| "enter network namespace")?;
    let back = Restore(own);
    let r = f();
    drop(back);
    r
}

/// Returns the thread to its namespace even if `f` panicked.
struct Restore(OwnedFd);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Err(e) = setns_net(self.0.as_raw_fd()) {
            // Going on in the wrong namespace would make the next link or
            // route change land on the wrong network: stop here.
            eprintln!("runway: return to own network namespace: {e}");
            std::process::abort();
        }
    }
}

/// The calling thread's network namespace, as an fd.
pub fn open_own_netns() -> Result<OwnedFd> {
    // SAFETY: open(2) of a constant NUL-terminated path; the fd is ours.
    let fd = unsafe {
        libc::open(
            c"/proc/thread-self/ns/net".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::last_os("open /proc/thread-self/ns/net"));
    }
    // SAFETY: fd was just returned by open(2).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setns_net(fd: i32) -> Result<()> {
    // SAFETY: setns(2) on an fd we hold; no memory is passed.
    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
        return Err(Error::last_os("setns"));
    }
    Ok(())
}

fn write_sysctl(key: String, path: String, on: bool) -> Result<()> {
    let w = sysctl::Write {
        key,
        path: std::ffi::CString::new(path).map_err(|_| Error::msg("sysctl path with NUL"))?,
        value: if on { b"1".to_vec() } else { b"0".to_vec() },
    };
    sysctl::apply(&[w])
}

/// net.ipv4.ip_forward of the current network namespace.
pub fn set_ip_forward(on: bool) -> Result<()> {
    let key = "net.ipv4.ip_forward".to_string();
    let path = sysctl::proc_path(&key);
    write_sysctl(key, path, on)
}

/// net.ipv4.conf.LINK.route_localnet: lets 127.0.0.0/8 be routed (DNAT of
/// published ports reached on the host's loopback).
pub fn set_route_localnet(link: &str, on: bool) -> Result<()> {
    check_name(link)?;
    // Built by hand: a link name may hold a '.', which proc_path would
    // turn into a directory.
    write_sysctl(
        format!("net.ipv4.conf.{link}.route_localnet"),
        format!("/proc/sys/net/ipv4/conf/{link}/route_localnet"),
        on,
    )
}

/// net.ipv6.conf.LINK.disable_ipv6.
pub fn set_disable_ipv6(link: &str, on: bool) -> Result<()> {
    check_name(link)?;
    write_sysctl(
        format!("net.ipv6.conf.{link}.disable_ipv6"),
        format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6"),
        on,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ne16(v: u16) -> [u8; 2] {
        v.to_ne_bytes()
    }
    fn ne32(v: u32) -> [u8; 4] {
        v.to_ne_bytes()
    }

    #[test]
    fn rtm_newlink_for_a_bridge_byte_for_byte() {
        let got = bridge_msg("runway0").finish(7);
        let mut want = Vec::new();
        // nlmsghdr: len 16 + ifinfomsg 16 + IFNAME 12 + LINKINFO 16 = 60
        want.extend(ne32(60));
        want.extend(ne16(16)); // RTM_NEWLINK
        want.extend(ne16(0x1 | 0x4 | 0x400 | 0x200)); // REQUEST|ACK|CREATE|EXCL
        want.extend(ne32(7)); // seq
        want.extend(ne32(0)); // pid
        want.extend([0u8; 16]); // ifinfomsg, all zero
                                // IFLA_IFNAME: 4 + "runway0\0" (8) = 12
        want.extend(ne16(12));
        want.extend(ne16(3));
        want.extend(b"runway0\0");
        // IFLA_LINKINFO { IFLA_INFO_KIND "bridge\0" (4+7=11, padded to 12) }
        want.extend(ne16(16));
        want.extend(ne16(18));
        want.extend(ne16(11));
        want.extend(ne16(1));
        want.extend(b"bridge\0\0");
        assert_eq!(got, want);
    }

    #[test]
    fn rtm_newaddr_for_ipv4_byte_for_byte() {
        let ip: IpAddr = "10.99.0.1".parse().unwrap();
        let got = addr_msg(RTM_NEWADDR, NEW, 5, ip, 24).finish(3);
        let mut want = Vec::new();
        // 16 + ifaddrmsg 8 + IFA_LOCAL 8 + IFA_ADDRESS 8 = 40
        want.extend(ne32(40));
        want.extend(ne16(20)); // RTM_NEWADDR
        want.extend(ne16(0x605));
        want.extend(ne32(3));
        want.extend(ne32(0));
        want.extend([2u8, 24, 0, 0]); // AF_INET, /24, flags, scope universe
        want.extend(ne32(5)); // ifindex
        want.extend(ne16(8));
        want.extend(ne16(2)); // IFA_LOCAL
        want.extend([10, 99, 0, 1]);
        want.extend(ne16(8));
        want.extend(ne16(1)); // IFA_ADDRESS
        want.extend([10, 99, 0, 1]);
        assert_eq!(got, want);
    }

    #[test]
    fn rtm_newaddr_for_ipv6_carries_16_bytes() {
        let ip: IpAddr = "fd00::1".parse().unwrap();
        let got = addr_msg(RTM_NEWADDR, NEW, 1, ip, 64).finish(1);
        assert_eq!(got.len(), 16 + 8 + 20 + 20);
        assert_eq!(got[16..18], [10, 64]);
        assert_eq!(&got[24..28], &[ne16(20), ne16(2)].concat()[..]);
        assert_eq!(got[28..44], ip_bytes(&ip)[..]);
    }

    #[test]
    fn route_message_default_and_on_link() {
        let gw: IpAddr = "10.99.0.1".parse().unwrap();
        let m = route_msg(RTM_NEWROUTE, NEW, unspecified(&gw), 0, Some(gw), Some(4)).finish(1);
        // rtmsg: inet, /0, table main, proto boot, scope universe, unicast.
        assert_eq!(m[16..28], [2, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0]);
        let a: Vec<_> = attrs(&m[28..]).collect();
        assert_eq!(
            a,
            vec![(RTA_GATEWAY, &[10, 99, 0, 1][..]), (RTA_OIF, &ne32(4)[..])]
        );
        let dst: IpAddr = "10.1.0.0".parse().unwrap();
        let m = route_msg(RTM_NEWROUTE, NEW, dst, 16, None, Some(2)).finish(1);
        assert_eq!(m[16 + 6], RT_SCOPE_LINK);
        assert_eq!(parse_route(&m[16..]).unwrap().dst, dst);
    }

    #[test]
    fn names_are_checked_before_any_syscall() {
        for bad in ["", "a/b", "sixteen-chars-xx", "a b", "a:b", ".", ".."] {
            let e = check_name(bad).unwrap_err();
            assert!(e.errno.is_none(), "{bad:?}");
            assert!(e.to_string().starts_with("invalid link name"), "{e}");
        }
        check_name("fifteen-chars-x").unwrap();
        check_name("eth0.100").unwrap();
    }

    #[test]
    fn parsers_survive_garbage() {
        for n in 0..40 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let _ = parse_link(&junk);
            let _ = parse_addr(&junk);
            let _ = parse_route(&junk);
        }
        let mut b = ifinfomsg(9, IFF_UP, 0).to_vec();
        let mut m = Msg::new(0, 0);
        m.attr_str(IFLA_IFNAME, "br0");
        m.attr_u32(IFLA_MASTER, 0);
        m.attr(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]);
        b.extend_from_slice(&m.finish(0)[16..]);
        let l = parse_link(&b).unwrap();
        assert_eq!(
            (l.index, l.name.as_str(), l.up, l.master),
            (9, "br0", true, None)
        );
        assert_eq!(fmt_mac(&l.mac.unwrap()), "02:00:00:00:00:01");
    }
}
