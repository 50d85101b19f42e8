//! net::rtnl against the kernel: bridge, veth with its peer born in a
//! second namespace, addresses, routes, a TCP connection across them, and
//! the error lines. Everything happens inside network namespaces the test
//! makes (unshare in a throwaway thread, kept alive by an fd only): the
//! machine's own links and routes are never touched, and the namespaces
//! die with their fds. Debian's `ip` only cross-checks what runway did.
#![cfg(feature = "full")]

mod common;

use runway::net::rtnl::{self, Link};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

/// A new, empty network namespace held by an fd. The thread that made it
/// exits at once, so no thread of the test ever lives in it by accident;
/// callers enter it with rtnl::in_netns.
fn fresh_netns() -> Option<OwnedFd> {
    std::thread::spawn(|| {
        // SAFETY: unshare(2) of this (throwaway) thread only.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return None;
        }
        let fd = rtnl::open_own_netns().ok()?;
        // Never go on unless this really is a namespace other than the
        // process's own (the machine's, for this test binary).
        let ours = std::fs::metadata("/proc/self/ns/net").ok()?.ino();
        let new = std::fs::metadata("/proc/thread-self/ns/net").ok()?.ino();
        (ours != new).then_some(fd)
    })
    .join()
    .ok()
    .flatten()
}

fn two_namespaces() -> Option<(OwnedFd, OwnedFd)> {
    match (fresh_netns(), fresh_netns()) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => {
            common::skip("cannot make network namespaces (needs root)");
            None
        }
    }
}

/// Inside a namespace the test made: the link list must be lo alone
/// before the test changes anything (proves where we are).
fn assert_pristine() {
    let names: Vec<String> = rtnl::list().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names, vec!["lo".to_string()]);
}

fn find<'a>(links: &'a [Link], name: &str) -> &'a Link {
    links
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no link {name} in {links:?}"))
}

/// `ip -d -j link show` of the current thread's namespace (the child
/// inherits it), as JSON.
fn ip_links() -> Option<serde_json::Value> {
    let out = Command::new("ip")
        .args(["-d", "-j", "link", "show"])
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn bridge_veth_addresses_routes_and_a_tcp_connection_across_namespaces() {
    let Some((host, peer)) = two_namespaces() else {
        return;
    };
    rtnl::in_netns(host.as_fd(), || {
        assert_pristine();
        rtnl::in_netns(peer.as_fd(), || {
            assert_pristine();
            Ok(())
        })?;

        rtnl::create_bridge("rwbr0")?;
        rtnl::set_up("rwbr0")?;
        rtnl::add_addr("rwbr0", ip("10.99.0.1"), 24)?;
        rtnl::add_addr("rwbr0", ip("fd99::1"), 64)?;
        rtnl::set_mtu("rwbr0", 1400)?;
        rtnl::create_veth("rwh0", "rwp0", Some(peer.as_fd()))?;
        assert_eq!(rtnl::index_of("rwp0")?, None, "the peer was born elsewhere");
        rtnl::set_master("rwh0", "rwbr0")?;
        rtnl::set_mac("rwh0", [0x02, 0x52, 0x57, 0, 0, 1])?;
        rtnl::set_up("rwh0")?;
        rtnl::set_ip_forward(true)?;
        rtnl::set_route_localnet("rwbr0", true)?;
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/conf/rwbr0/route_localnet").unwrap(),
            "1\n"
        );
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
            "1\n"
        );

        let links = rtnl::list()?;
        let br = find(&links, "rwbr0");
        let veth = find(&links, "rwh0");
        assert_eq!(br.kind.as_deref(), Some("bridge"));
        assert!(br.up);
        assert_eq!(veth.kind.as_deref(), Some("veth"));
        assert_eq!(veth.master, Some(br.index));
        assert_eq!(veth.mac, Some([0x02, 0x52, 0x57, 0, 0, 1]));
        assert_eq!(find(&links, "lo").kind, None);

        let addrs = rtnl::list_addrs("rwbr0")?;
        assert!(
            addrs.contains(&rtnl::Addr {
                ip: ip("10.99.0.1"),
                prefix: 24
            }),
            "{addrs:?}"
        );
        assert!(
            addrs.contains(&rtnl::Addr {
                ip: ip("fd99::1"),
                prefix: 64
            }),
            "{addrs:?}"
        );
        // The kernel's own route for the subnet, the one an overlap
        // check looks for.
        let routes = rtnl::list_routes()?;
        assert!(
            routes
                .iter()
                .any(|r| r.dst == ip("10.99.0.0") && r.prefix == 24 && r.oif == Some(br.index)),
            "{routes:?}"
        );

        // What `ip` sees agrees.
        match ip_links() {
            Some(j) => {
                let get = |n: &str| {
                    j.as_array()
                        .unwrap()
                        .iter()
                        .find(|l| l["ifname"] == n)
                        .cloned()
                        .unwrap_or_else(|| panic!("ip: no {n}: {j}"))
                };
                assert_eq!(get("rwbr0")["linkinfo"]["info_kind"], "bridge");
                assert_eq!(get("rwbr0")["mtu"], 1400);
                assert_eq!(get("rwh0")["linkinfo"]["info_kind"], "veth");
                assert_eq!(get("rwh0")["master"], "rwbr0");
                assert_eq!(get("rwh0")["address"], "02:52:57:00:00:01");
            }
            None => common::note("note: no `ip` to cross-check with"),
        }

        // The container side, in the second namespace.
        rtnl::in_netns(peer.as_fd(), || {
            rtnl::rename("rwp0", "eth0")?;
            rtnl::add_addr("eth0", ip("10.99.0.2"), 24)?;
            rtnl::set_up("lo")?;
            rtnl::set_up("eth0")?;
            rtnl::add_default_route(ip("10.99.0.1"), None)?;
            let eth0 = rtnl::index_of("eth0")?.unwrap();
            let links = rtnl::list()?;
            assert_eq!(find(&links, "eth0").kind.as_deref(), Some("veth"));
            assert!(find(&links, "eth0").up && find(&links, "lo").up);
            let routes = rtnl::list_routes()?;
            assert!(
                routes.contains(&rtnl::Route {
                    dst: ip("0.0.0.0"),
                    prefix: 0,
                    gateway: Some(ip("10.99.0.1")),
                    oif: Some(eth0),
                }),
                "{routes:?}"
            );
            // IPv6 too: an address and a default route via the bridge's.
            rtnl::add_addr("eth0", ip("fd99::2"), 64)?;
            rtnl::add_default_route(ip("fd99::1"), Some("eth0"))?;
            assert!(
                rtnl::list_routes()?.iter().any(|r| r.dst == ip("::")
                    && r.prefix == 0
                    && r.gateway == Some(ip("fd99::1"))
                    && r.oif == Some(eth0)),
                "{:?}",
                rtnl::list_routes()
            );
            // An explicit route and its removal.
            rtnl::add_route(ip("10.98.0.0"), 16, Some(ip("10.99.0.1")), Some("eth0"))?;
            assert!(rtnl::list_routes()?
                .iter()
                .any(|r| r.dst == ip("10.98.0.0")));
            rtnl::del_route(ip("10.98.0.0"), 16, Some(ip("10.99.0.1")), Some("eth0"))?;
            assert!(!rtnl::list_routes()?
                .iter()
                .any(|r| r.dst == ip("10.98.0.0")));
            Ok(())
        })?;

        // Reachability without ping: a TCP listener on the bridge address,
        // a connection from the container side to it and to beyond it
        // through the default route (the listener's other address).
        rtnl::add_addr("lo", ip("10.97.0.1"), 32)?;
        rtnl::set_up("lo")?;
        for target in ["10.99.0.1", "10.97.0.1"] {
            let l = TcpListener::bind((ip(target), 0)).unwrap();
            let port = l.local_addr().unwrap().port();
            rtnl::in_netns(peer.as_fd(), || {
                let mut s = TcpStream::connect_timeout(
                    &SocketAddr::new(ip(target), port),
                    Duration::from_secs(5),
                )
                .unwrap_or_else(|e| panic!("connect to {target}: {e}"));
                s.write_all(b"hello").unwrap();
                Ok(())
            })?;
            let (mut c, from) = l.accept().unwrap();
            assert_eq!(from.ip(), ip("10.99.0.2"));
            let mut got = String::new();
            c.read_to_string(&mut got).unwrap();
            assert_eq!(got, "hello");
        }

        // Addresses go.
        rtnl::del_addr("rwbr0", ip("fd99::1"), 64)?;
        assert!(!rtnl::list_addrs("rwbr0")?
            .iter()
            .any(|a| a.ip == ip("fd99::1")));

        // Teardown: the veth takes its peer with it.
        assert!(rtnl::delete("rwh0")?);
        assert!(rtnl::delete("rwbr0")?);
        assert!(!rtnl::delete("rwbr0")?, "absent link");
        assert_pristine();
        rtnl::in_netns(peer.as_fd(), || {
            assert_pristine();
            Ok(())
        })
    })
    .unwrap();
}

#[test]
fn move_to_netns_renames_there_and_mtu_and_down_stick() {
    let Some((host, other)) = two_namespaces() else {
        return;
    };
    rtnl::in_netns(host.as_fd(), || {
        rtnl::create_veth("rwa0", "rwb0", None)?;
        rtnl::set_up("rwb0")?;
        rtnl::set_down("rwb0")?;
        assert!(!find(&rtnl::list()?, "rwb0").up);
        rtnl::move_to_netns("rwb0", other.as_fd(), Some("eth1"))?;
        assert_eq!(rtnl::index_of("rwb0")?, None);
        rtnl::in_netns(other.as_fd(), || {
            let l = rtnl::list()?;
            assert_eq!(find(&l, "eth1").kind.as_deref(), Some("veth"));
            rtnl::set_mtu("eth1", 1280)?;
            rtnl::set_disable_ipv6("eth1", true)?;
            assert_eq!(
                std::fs::read_to_string("/proc/sys/net/ipv6/conf/eth1/disable_ipv6").unwrap(),
                "1\n"
            );
            rtnl::move_to_netns("eth1", host.as_fd(), None)?;
            assert_pristine();
            Ok(())
        })?;
        assert!(rtnl::index_of("eth1")?.is_some());
        assert!(rtnl::delete("rwa0")?);
        assert_pristine();
        Ok(())
    })
    .unwrap();
}

#[test]
fn errors_name_the_operation_and_the_object_in_words() {
    let Some((host, _other)) = two_namespaces() else {
        return;
    };
    rtnl::in_netns(host.as_fd(), || {
        rtnl::create_bridge("rwdup0")?;
        let e = rtnl::create_bridge("rwdup0").unwrap_err();
        assert_eq!(e.errno, Some(libc::EEXIST));
        assert_eq!(e.to_string(), "create bridge rwdup0: file exists");
        assert!(!rtnl::delete("rwnone0")?, "absent link");
        assert_eq!(rtnl::index_of("rwnone0")?, None);
        let e = rtnl::set_up("rwnone0").unwrap_err();
        assert_eq!(e.to_string(), "set link rwnone0 up: no such device");
        let e = rtnl::set_master("rwdup0", "rwnone0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "set link rwdup0 master rwnone0: no such device"
        );
        let e = rtnl::add_addr("rwdup0", ip("10.99.0.1"), 33).unwrap_err();
        assert!(e.to_string().contains("prefix length 33"), "{e}");
        rtnl::add_addr("rwdup0", ip("10.99.0.1"), 24)?;
        let e = rtnl::add_addr("rwdup0", ip("10.99.0.1"), 24).unwrap_err();
        assert_eq!(
            e.to_string(),
            "add address 10.99.0.1/24 to rwdup0: file exists"
        );
        // Bad names fail before any syscall (no errno, our own words).
        for bad in ["waytoolongname16", "a/b"] {
            let e = rtnl::create_bridge(bad).unwrap_err();
            assert_eq!(e.errno, None, "{e}");
            assert!(e.to_string().starts_with("invalid link name"), "{e}");
        }
        assert!(rtnl::delete("rwdup0")?);
        assert_pristine();
        Ok(())
    })
    .unwrap();
}
