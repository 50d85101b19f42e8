//! Published ports: docker's `-p` syntax parsed, and host ports picked
//! (given, or free ones from 30000–32767) and checked against what this
//! host already has bound. Pure but for the bind probe.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Where `-p CTRPORT` takes its host port from (podman's and Kubernetes'
/// NodePort range: out of the way of ephemeral ports and well-known ones).
pub const RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

/// One `-p` as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub host_ip: Option<Ipv4Addr>,
    /// None: pick one from [`RANGE`].
    pub host_port: Option<u16>,
    pub ctr_port: u16,
    pub proto: Proto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A published port as set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub proto: Proto,
    /// None: every address of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub ctr_port: u16,
}

impl Port {
    /// docker's `0.0.0.0:8080->80/tcp`.
    pub fn display(&self) -> String {
        format!(
            "{}:{}->{}/{}",
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port,
            self.ctr_port,
            self.proto.name()
        )
    }
}

fn port(s: &str, what: &str, whole: &str) -> Result<u16> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Error::msg(format!(
            "invalid port {whole:?}: {what} {s:?} is not a port number (1-65535){}",
            if s.contains('-') {
                "; port ranges are not supported"
            } else {
                ""
            }
        ))),
    }
}

impl Spec {
    /// `[HOSTIP:][HOSTPORT:]CTRPORT[/tcp|udp]`; an empty HOSTPORT
    /// (`127.0.0.1::80`) picks one as no HOSTPORT does.
    pub fn parse(s: &str) -> Result<Spec> {
        let (body, proto) = match s.rsplit_once('/') {
            Some((b, "tcp")) => (b, Proto::Tcp),
            Some((b, "udp")) => (b, Proto::Udp),
            Some((_, p)) => {
                return Err(Error::msg(format!(
                    "invalid port {s:?}: protocol {p:?} (tcp or udp)"
                )))
            }
            None => (s, Proto::Tcp),
        };
        let parts: Vec<&str> = body.split(':').collect();
        let (ip, hp, cp) = match parts.as_slice() {
            [c] => (None, None, *c),
            [h, c] => (None, Some(*h), *c),
            [i, h, c] => (Some(*i), Some(*h), *c),
            _ => {
                return Err(Error::msg(format!(
                    "invalid port {s:?}: want [HOSTIP:][HOSTPORT:]CTRPORT[/tcp|udp]"
                )))
            }
        };
        let host_ip = match ip {
            None | Some("") => None,
            Some(i) => {
                let a: IpAddr = i.trim_matches(['[', ']']).parse().map_err(|_| {
                    Error::msg(format!("invalid port {s:?}: {i:?} is not an IP address"))
                })?;
                match a {
                    IpAddr::V4(v) if v.is_unspecified() => None,
                    IpAddr::V4(v) => Some(v),
                    IpAddr::V6(_) => {
                        return Err(Error::msg(format!(
                            "invalid port {s:?}: IPv6 host addresses are not supported"
                        )))
                    }
                }
            }
        };
        let host_port = match hp {
            None | Some("") => None,
            Some(h) => Some(port(h, "host port", s)?),
        };
        Ok(Spec {
            host_ip,
            host_port,
            ctr_port: port(cp, "container port", s)?,
            proto,
        })
    }
}

/// Whether two published ports would take the same host socket.
pub fn clash(a: &Port, b: &Port) -> bool {
    a.proto == b.proto
        && a.host_port == b.host_port
        && (a.host_ip.is_none() || b.host_ip.is_none() || a.host_ip == b.host_ip)
}

/// Whether something on this host (in our network namespace) holds the
/// port: a bind that fails with EADDRINUSE. A published port would
/// silently steal that listener's connections otherwise.
pub fn host_bound(p: &Port) -> bool {
    let addr = SocketAddr::new(
        IpAddr::V4(p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)),
        p.host_port,
    );
    let r = match p.proto {
        Proto::Tcp => std::net::TcpListener::bind(addr).map(drop),
        Proto::Udp => std::net::UdpSocket::bind(addr).map(drop),
    };
    matches!(r, Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
}

/// Host ports for `specs`, none clashing with `taken` (the other
/// containers' ports) nor with each other nor with a socket bound on this
/// host. `seed` spreads the first pick of [`RANGE`].
pub fn assign(specs: &[Spec], taken: &[Port], seed: u64) -> Result<Vec<Port>> {
    let mut out: Vec<Port> = Vec::with_capacity(specs.len());
    let busy = |p: &Port, out: &[Port]| taken.iter().chain(out).any(|t| clash(t, p));
    for s in specs.iter().filter(|s| s.host_port.is_some()) {
        let p = Port {
            proto: s.proto,
            host_ip: s.host_ip,
            host_port: s.host_port.unwrap_or(0),
            ctr_port: s.ctr_port,
        };
        if busy(&p, &out) || host_bound(&p) {
            return Err(Error::errno(
                format!(
                    "publish {}: host port {}/{} is already in use",
                    p.display(),
                    p.host_port,
                    p.proto.name()
                ),
                libc::EADDRINUSE,
            ));
        }
        out.push(p);
    }
    let span = (*RANGE.end() - *RANGE.start()) as u64 + 1;
    for s in specs.iter().filter(|s| s.host_port.is_none()) {
        let mut found = None;
        for k in 0..span {
            let hp = *RANGE.start() + ((seed.wrapping_add(k)) % span) as u16;
            let p = Port {
                proto: s.proto,
                host_ip: s.host_ip,
                host_port: hp,
                ctr_port: s.ctr_port,
            };
            if !busy(&p, &out) && !host_bound(&p) {
                found = Some(p);
                break;
            }
        }
        out.push(found.ok_or_else(|| {
            Error::errno(
                format!(
                    "publish {}/{}: no free host port",
                    s.ctr_port,
                    s.proto.name()
                ),
                libc::EADDRINUSE,
            )
        })?);
    }
    // In the order given, as `container port` lists them.
    let mut ordered = Vec::with_capacity(out.len());
    for s in specs {
        if let Some(i) = out.iter().position(|p| {
            p.ctr_port == s.ctr_port
                && p.proto == s.proto
                && p.host_ip == s.host_ip
                && s.host_port.is_none_or(|h| h == p.host_port)
        }) {
            ordered.push(out.remove(i));
        }
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_port_forms_parse() {
        let p = Spec::parse("8080:80").unwrap();
        assert_eq!(
            (p.host_port, p.ctr_port, p.proto),
            (Some(8080), 80, Proto::Tcp)
        );
        let p = Spec::parse("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(p.proto, Proto::Udp);
        let p = Spec::parse("80").unwrap();
        assert_eq!((p.host_port, p.ctr_port), (None, 80));
        let p = Spec::parse("127.0.0.1::53/udp").unwrap();
        assert_eq!((p.host_port, p.ctr_port), (None, 53));
        assert_eq!(Spec::parse("0.0.0.0:81:80").unwrap().host_ip, None);
        for bad in [
            "",
            "x",
            "0",
            "65536",
            "80/sctp",
            "1:2:3:4",
            "a:80",
            "8000-8001:80",
            "::1:80:80",
            "1.2.3:80:80",
            "[::1]:80:80",
        ] {
            assert!(Spec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn assign_picks_from_the_range_and_refuses_clashes() {
        let specs = [Spec::parse("80").unwrap(), Spec::parse("81").unwrap()];
        let got = assign(&specs, &[], 7).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|p| RANGE.contains(&p.host_port)));
        assert_ne!(got[0].host_port, got[1].host_port);
        assert_eq!((got[0].ctr_port, got[1].ctr_port), (80, 81));
        let taken = vec![Port {
            proto: Proto::Tcp,
            host_ip: None,
            host_port: 40123,
            ctr_port: 1,
        }];
        assert!(assign(&[Spec::parse("40123:80").unwrap()], &taken, 0).is_err());
        // Another protocol or a distinct address is no clash.
        assert!(assign(&[Spec::parse("40123:80/udp").unwrap()], &taken, 0).is_ok());
        assert!(assign(
            &[
                Spec::parse("40124:80").unwrap(),
                Spec::parse("40124:81").unwrap()
            ],
            &[],
            0
        )
        .is_err());
        assert_eq!(got[0].display().split("->").nth(1), Some("80/tcp"));
    }
}
