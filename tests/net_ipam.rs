//! net::ipam's lease file under contention: 50 allocations at once, from
//! threads and from processes, never share an address; a full subnet is
//! one clear error. No network is touched: leases are files.
#![cfg(feature = "full")]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use runway::net::ipam::{self, Subnet};

const CHILD_DIR: &str = "RUNWAY_IPAM_CHILD_DIR";
const CHILD_TAG: &str = "RUNWAY_IPAM_CHILD_TAG";

fn scratch(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("runway-ipam-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn subnet() -> Subnet {
    Subnet::parse("10.89.0.0/24").unwrap()
}

/// `n` threads allocating at once for owners `TAG-i`; their addresses.
fn allocate_in_threads(dir: &Path, tag: &str, n: usize) -> Vec<IpAddr> {
    let s = subnet();
    let gw = s.gateway().unwrap();
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let b = &barrier;
                sc.spawn(move || {
                    b.wait();
                    ipam::allocate(dir, &s, gw, &format!("{tag}-{i}"), None).unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The body of a child process (re-executed test binary): 5 threads.
#[test]
fn ipam_child_process() {
    let (Some(dir), Some(tag)) = (std::env::var_os(CHILD_DIR), std::env::var(CHILD_TAG).ok())
    else {
        return; // only meaningful as a child of fifty_from_processes_and_threads
    };
    for ip in allocate_in_threads(Path::new(&dir), &tag, 5) {
        println!("ADDR {ip}");
    }
}

#[test]
fn fifty_threads_fifty_addresses() {
    let d = scratch("threads");
    let got = allocate_in_threads(&d, "t", 50);
    let set: BTreeSet<_> = got.iter().collect();
    assert_eq!(set.len(), 50, "{got:?}");
    let s = subnet();
    assert!(got
        .iter()
        .all(|a| s.contains(*a) && Some(*a) != s.gateway()));
    assert_eq!(ipam::leases(&d).unwrap().len(), 50);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn fifty_from_processes_and_threads() {
    let d = scratch("procs");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..10)
        .map(|p| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "ipam_child_process",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_DIR, &d)
                .env(CHILD_TAG, format!("p{p}"))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut got = Vec::new();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        // The harness's "test ipam_child_process ... " may precede the first.
        for a in out.split("ADDR ").skip(1) {
            got.push(
                a.split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<IpAddr>()
                    .unwrap(),
            );
        }
    }
    assert_eq!(got.len(), 50, "every child reports its five");
    let set: BTreeSet<_> = got.iter().collect();
    assert_eq!(set.len(), 50, "shared addresses: {got:?}");
    let leases = ipam::leases(&d).unwrap();
    assert_eq!(leases.len(), 50);
    // Release one, reclaim the children of process 3 as gone.
    assert_eq!(ipam::release(&d, "p0-0").unwrap().len(), 1);
    let gone = ipam::reclaim(&d, |o| !o.starts_with("p3-")).unwrap();
    assert_eq!(gone.len(), 5);
    assert_eq!(ipam::leases(&d).unwrap().len(), 44);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn full_subnet_and_bad_wanted_are_one_clear_error() {
    let d = scratch("full");
    let s = Subnet::parse("192.168.77.0/28").unwrap(); // 14 hosts, 13 after the gateway
    let gw = s.gateway().unwrap();
    for i in 0..13 {
        ipam::allocate(&d, &s, gw, &format!("c{i}"), None).unwrap();
    }
    let e = ipam::allocate(&d, &s, gw, "late", None)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "subnet 192.168.77.0/28 is full: no free address");
    let e = ipam::allocate(&d, &s, gw, "late", Some("192.168.77.2".parse().unwrap()))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "address 192.168.77.2 is in use by c0");
    let e = ipam::allocate(&d, &s, gw, "late", Some("10.0.0.1".parse().unwrap()))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "address 10.0.0.1 is outside subnet 192.168.77.0/28");
    // A failed allocation leaves the file as it was.
    assert_eq!(ipam::leases(&d).unwrap().len(), 13);
    assert!(!ipam::leases(&d).unwrap().values().any(|o| o == "late"));
    std::fs::remove_dir_all(&d).unwrap();
}
