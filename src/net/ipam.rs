//! Address management for a network: subnets (parse, print, contain,
//! overlap, host range) and the lease file that hands each owner a
//! distinct address, safely across threads and processes.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::container::state::write_atomic;
use crate::engine::record::lock_file;
use crate::error::{Context, Error, Result};

/// The lease file in the directory the caller gives (one per network).
pub const LEASES: &str = "leases.json";
/// Held (flock) while the lease file is read, changed and replaced.
pub const LEASES_LOCK: &str = "leases.lock";

/// An IPv4 or IPv6 subnet; host bits of the address are always zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    net: IpAddr,
    prefix: u8,
}

fn bits_of(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u32::from(a) as u128, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn ip_of(v: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

/// The mask of the top `prefix` bits of a `width`-bit number.
fn mask(prefix: u8, width: u8) -> u128 {
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    let host = width - prefix.min(width);
    if host >= 128 {
        0
    } else {
        all & !((1u128 << host).wrapping_sub(1))
    }
}

impl Subnet {
    /// The subnet of `addr/prefix`; host bits are cleared (10.89.0.7/24
    /// is 10.89.0.0/24), as docker and podman accept it.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Subnet> {
        let (v, width) = bits_of(addr);
        if prefix > width {
            return Err(Error::msg(format!(
                "subnet {addr}/{prefix}: prefix longer than {width} bits"
            )));
        }
        Ok(Subnet {
            net: ip_of(v & mask(prefix, width), width == 32),
            prefix,
        })
    }

    /// `ADDR/PREFIX`, e.g. `10.89.0.0/24` or `fd00:89::/64`.
    pub fn parse(s: &str) -> Result<Subnet> {
        let bad = || Error::msg(format!("invalid subnet {s:?}: want ADDRESS/PREFIX"));
        let (a, p) = s.trim().split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        Subnet::new(addr, prefix)
    }

    pub fn network(&self) -> IpAddr {
        self.net
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_ipv4(&self) -> bool {
        self.net.is_ipv4()
    }

    fn width(&self) -> u8 {
        if self.is_ipv4() {
            32
        } else {
            128
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        if ip.is_ipv4() != self.is_ipv4() {
            return false;
        }
        let (v, w) = bits_of(ip);
        v & mask(self.prefix, w) == bits_of(self.net).0
    }

    /// Whether any address is in both (one contains the other's network).
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.net) || other.contains(self.net)
    }

    /// First and last usable host, as numbers. IPv4 skips the network and
    /// broadcast addresses (except /31 and /32, RFC 3021); IPv6 skips the
    /// subnet-router anycast address (the network's own).
    fn host_range(&self) -> (u128, u128) {
        let base = bits_of(self.net).0;
        let host_bits = self.width() - self.prefix;
        let span = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let last = base + span;
        match (self.is_ipv4(), host_bits) {
            (_, 0) => (base, base),
            (true, 1) => (base, last),
            (true, _) => (base + 1, last - 1),
            (false, _) => (base + 1, last),
        }
    }

    /// How many host addresses `nth` can give.
    pub fn host_count(&self) -> u128 {
        let (a, b) = self.host_range();
        (b - a).saturating_add(1)
    }

    /// The `n`th host address (0 is the first host), if the subnet has it.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        let (first, last) = self.host_range();
        let v = first.checked_add(n)?;
        (v <= last).then(|| ip_of(v, self.is_ipv4()))
    }

    /// The index `nth` would give `ip` for, if `ip` is a host address here.
    pub fn host_index(&self, ip: IpAddr) -> Option<u128> {
        if !self.contains(ip) {
            return None;
        }
        let (first, last) = self.host_range();
        let v = bits_of(ip).0;
        (first..=last).contains(&v).then(|| v - first)
    }

    /// The default gateway: the first host.
    pub fn gateway(&self) -> Option<IpAddr> {
        self.nth(0)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Subnet> {
        Subnet::parse(s)
    }
}

/// Podman's and docker's default networks: a default network on either
/// would clash with theirs on a host that runs them too.
pub const ENGINE_DEFAULTS: [&str; 2] = ["10.88.0.0/16", "172.17.0.0/16"];

/// The default network's candidates, in order: 10.89.0.0/24 upward to
/// 10.89.255.0/24, then 172.30.0.0/24 upward to 172.30.255.0/24.
pub fn default_candidates() -> Vec<Subnet> {
    let mut v = Vec::with_capacity(512);
    for (a, b) in [(10u8, 89u8), (172, 30)] {
        for c in 0..=255u8 {
            v.push(Subnet {
                net: IpAddr::V4(Ipv4Addr::new(a, b, c, 0)),
                prefix: 24,
            });
        }
    }
    v
}

/// The first candidate that overlaps neither podman's nor docker's default
/// network nor anything in `taken` (the host's routes, other networks).
pub fn pick_free_subnet(candidates: &[Subnet], taken: &[Subnet]) -> Option<Subnet> {
    let engines: Vec<Subnet> = ENGINE_DEFAULTS
        .iter()
        .filter_map(|s| Subnet::parse(s).ok())
        .collect();
    candidates
        .iter()
        .find(|c| !engines.iter().chain(taken).any(|t| t.overlaps(c)))
        .copied()
}

/// The lease file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LeaseFile {
    /// The last address handed out: the next search starts after it, so
    /// that a released address is not reused at once (a stale DNS answer
    /// or ARP entry would point at the new owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<IpAddr>,
    /// Address → owner.
    #[serde(default)]
    leases: BTreeMap<IpAddr, String>,
}

fn load(dir: &Path) -> Result<LeaseFile> {
    let p = dir.join(LEASES);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::msg(format!("lease file {}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LeaseFile::default()),
        Err(e) => Err(e).ctx(|| format!("read {}", p.display())),
    }
}

fn save(dir: &Path, f: &LeaseFile) -> Result<()> {
    let p = dir.join(LEASES);
    let data = crate::jsonfmt::to_vec_pretty(f)
        .map_err(|e| Error::msg(format!("encode {}: {e}", p.display())))?;
    write_atomic(&p, &data)
}

/// Run `f` on the lease file under the network's lock; saved if `f` says
/// it changed something.
fn with_leases<T>(dir: &Path, f: impl FnOnce(&mut LeaseFile) -> Result<(T, bool)>) -> Result<T> {
    std::fs::create_dir_all(dir).ctx(|| format!("mkdir {}", dir.display()))?;
    let _lock = lock_file(&dir.join(LEASES_LOCK))?;
    let mut file = load(dir)?;
    let (v, changed) = f(&mut file)?;
    if changed {
        save(dir, &file)?;
    }
    Ok(v)
}

/// Lease an address of `subnet` to `owner`: `wanted` if given (it must be a
/// free host address of the subnet, not the gateway), else the next free
/// one after the last handed out, wrapping. An owner that already holds a
/// lease here gets it again (a retried run must not leak one).
pub fn allocate(
    dir: &Path,
    subnet: &Subnet,
    gateway: IpAddr,
    owner: &str,
    wanted: Option<IpAddr>,
) -> Result<IpAddr> {
    if owner.is_empty() {
        return Err(Error::msg("lease: empty owner"));
    }
    with_leases(dir, |file| {
        if let Some((&have, _)) = file.leases.iter().find(|(_, o)| *o == owner) {
            return match wanted {
                Some(w) if w != have => Err(Error::msg(format!(
                    "{owner} already has address {have} on subnet {subnet}, not {w}"
                ))),
                _ => Ok((have, false)),
            };
        }
        let ip = match wanted {
            Some(w) => {
                if !subnet.contains(w) {
                    return Err(Error::msg(format!(
                        "address {w} is outside subnet {subnet}"
                    )));
                }
                if w == gateway {
                    return Err(Error::msg(format!(
                        "address {w} is in use: it is the gateway of subnet {subnet}"
                    )));
                }
                if subnet.host_index(w).is_none() {
                    return Err(Error::msg(format!(
                        "address {w} is not a host address of subnet {subnet}"
                    )));
                }
                if let Some(o) = file.leases.get(&w) {
                    return Err(Error::msg(format!("address {w} is in use by {o}")));
                }
                w
            }
            None => next_free(file, subnet, gateway)
                .ok_or_else(|| Error::msg(format!("subnet {subnet} is full: no free address")))?,
        };
        file.leases.insert(ip, owner.to_string());
        file.last = Some(ip);
        Ok((ip, true))
    })
}

/// The first free host after `last`, wrapping. Every step past a free one
/// skips a lease or the gateway, so it looks at most leases+2 addresses:
/// an IPv6 /64 costs no more than an IPv4 /24.
fn next_free(file: &LeaseFile, subnet: &Subnet, gateway: IpAddr) -> Option<IpAddr> {
    let count = subnet.host_count();
    let start = match file.last.and_then(|l| subnet.host_index(l)) {
        Some(i) => (i + 1) % count.max(1),
        None => 0,
    };
    let steps = count.min(file.leases.len() as u128 + 2);
    (0..steps)
        .filter_map(|k| {
            let i = if count == u128::MAX {
                start.wrapping_add(k)
            } else {
                (start + k) % count
            };
            subnet.nth(i)
        })
        .find(|ip| *ip != gateway && !file.leases.contains_key(ip))
}

/// Drop every lease of `owner`; the addresses it held.
pub fn release(dir: &Path, owner: &str) -> Result<Vec<IpAddr>> {
    with_leases(dir, |file| {
        let gone: Vec<IpAddr> = file
            .leases
            .iter()
            .filter(|(_, o)| *o == owner)
            .map(|(a, _)| *a)
            .collect();
        for a in &gone {
            file.leases.remove(a);
        }
        let changed = !gone.is_empty();
        Ok((gone, changed))
    })
}

/// Drop the leases whose owner `is_live` says is gone (a container removed
/// while runway was killed); what was dropped.
pub fn reclaim(dir: &Path, is_live: impl Fn(&str) -> bool) -> Result<Vec<(IpAddr, String)>> {
    with_leases(dir, |file| {
        let gone: Vec<(IpAddr, String)> = file
            .leases
            .iter()
            .filter(|(_, o)| !is_live(o))
            .map(|(a, o)| (*a, o.clone()))
            .collect();
        for (a, _) in &gone {
            file.leases.remove(a);
        }
        let changed = !gone.is_empty();
        Ok((gone, changed))
    })
}

/// The current leases, address → owner. No lock needed: the file is
/// only ever replaced whole (rename).
pub fn leases(dir: &Path) -> Result<BTreeMap<IpAddr, String>> {
    Ok(load(dir)?.leases)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Subnet {
        Subnet::parse(x).unwrap()
    }
    fn ip(x: &str) -> IpAddr {
        x.parse().unwrap()
    }

    #[test]
    fn parse_and_print() {
        assert_eq!(s("10.89.0.7/24").to_string(), "10.89.0.0/24");
        assert_eq!(s("fd00:89::1/64").to_string(), "fd00:89::/64");
        assert_eq!(s("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(s("::/0").to_string(), "::/0");
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/",
            "x/8",
            "10.0.0.0/+8",
            "::/129",
            "10.0.0.0/0008",
        ] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contains_overlaps_hosts() {
        let n = s("10.89.0.0/24");
        assert!(n.contains(ip("10.89.0.255")));
        assert!(!n.contains(ip("10.89.1.0")));
        assert!(!n.contains(ip("::1")));
        assert!(n.overlaps(&s("10.0.0.0/8")));
        assert!(s("10.0.0.0/8").overlaps(&n));
        assert!(!n.overlaps(&s("10.89.1.0/24")));
        assert_eq!(n.gateway(), Some(ip("10.89.0.1")));
        assert_eq!(n.nth(253), Some(ip("10.89.0.254")));
        assert_eq!(n.nth(254), None);
        assert_eq!(n.host_count(), 254);
        assert_eq!(n.host_index(ip("10.89.0.0")), None);
        assert_eq!(n.host_index(ip("10.89.0.255")), None);
        assert_eq!(s("10.0.0.0/31").host_count(), 2);
        assert_eq!(s("10.0.0.5/32").nth(0), Some(ip("10.0.0.5")));
        let v6 = s("fd00::/64");
        assert_eq!(v6.gateway(), Some(ip("fd00::1")));
        assert_eq!(
            v6.nth(u64::MAX as u128 - 1),
            Some(ip("fd00::ffff:ffff:ffff:ffff"))
        );
        assert_eq!(s("::/0").host_count(), u128::MAX);
        assert_eq!(s("0.0.0.0/0").nth(0), Some(ip("0.0.0.1")));
    }

    #[test]
    fn picks_a_free_subnet() {
        let c = default_candidates();
        assert_eq!(pick_free_subnet(&c, &[]), Some(s("10.89.0.0/24")));
        // A host route over 10.89.0.0/16 pushes it to 172.30.
        assert_eq!(
            pick_free_subnet(&c, &[s("10.89.0.0/16")]),
            Some(s("172.30.0.0/24"))
        );
        assert_eq!(
            pick_free_subnet(&c, &[s("10.89.0.0/24"), s("10.89.1.0/24")]),
            Some(s("10.89.2.0/24"))
        );
        // The engines' defaults are never picked, given or not.
        let odd = [s("10.88.3.0/24"), s("172.17.0.0/24"), s("192.168.7.0/24")];
        assert_eq!(pick_free_subnet(&odd, &[]), Some(s("192.168.7.0/24")));
        assert_eq!(pick_free_subnet(&c, &[s("0.0.0.0/0")]), None);
    }

    #[test]
    fn lease_cycle() {
        let d = std::env::temp_dir().join(format!("runway-ipam-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let n = s("10.89.0.0/29"); // hosts .1-.6, gateway .1
        let gw = n.gateway().unwrap();
        let a = allocate(&d, &n, gw, "a", None).unwrap();
        assert_eq!(a, ip("10.89.0.2"));
        assert_eq!(allocate(&d, &n, gw, "a", None).unwrap(), a);
        assert_eq!(allocate(&d, &n, gw, "b", None).unwrap(), ip("10.89.0.3"));
        let e = allocate(&d, &n, gw, "c", Some(ip("10.89.0.3"))).unwrap_err();
        assert_eq!(e.to_string(), "address 10.89.0.3 is in use by b");
        let e = allocate(&d, &n, gw, "c", Some(ip("10.89.1.3"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "address 10.89.1.3 is outside subnet 10.89.0.0/29"
        );
        assert!(allocate(&d, &n, gw, "c", Some(gw)).is_err());
        assert!(allocate(&d, &n, gw, "c", Some(ip("10.89.0.7"))).is_err());
        assert_eq!(
            allocate(&d, &n, gw, "c", Some(ip("10.89.0.6"))).unwrap(),
            ip("10.89.0.6")
        );
        // Next after the last given (.6) wraps past the gateway to .4.
        assert_eq!(allocate(&d, &n, gw, "d", None).unwrap(), ip("10.89.0.4"));
        assert_eq!(allocate(&d, &n, gw, "e", None).unwrap(), ip("10.89.0.5"));
        let e = allocate(&d, &n, gw, "f", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "subnet 10.89.0.0/29 is full: no free address"
        );
        assert_eq!(release(&d, "b").unwrap(), vec![ip("10.89.0.3")]);
        assert_eq!(allocate(&d, &n, gw, "f", None).unwrap(), ip("10.89.0.3"));
        let gone = reclaim(&d, |o| o != "a" && o != "d").unwrap();
        assert_eq!(gone.len(), 2);
        let l = leases(&d).unwrap();
        assert_eq!(
            l.values().cloned().collect::<Vec<_>>(),
            vec!["f".to_string(), "e".to_string(), "c".to_string()]
        );
        std::fs::write(d.join(LEASES), b"{not json").unwrap();
        assert!(allocate(&d, &n, gw, "g", None)
            .unwrap_err()
            .to_string()
            .starts_with("lease file "));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
