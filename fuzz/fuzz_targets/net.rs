//! The network building blocks' parsers, one input each: the first byte
//! picks. 0-1 a DNS message from a client (UDP, TCP) → `dns::answer`
//! against a fixed names table: never a panic, a reply is a response to
//! that id within the transport's size, and a parsed query's response
//! parses back to the same question; 2 the names table file (every name
//! it lists must resolve); 3 subnets (print → parse round-trip, `nth` ↔
//! `host_index`, overlap symmetry, `pick_free_subnet`); 4 reverse names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runway::net::dns::{self, Decision, Table};
use runway::net::ipam::{self, Subnet};

fn table() -> Table {
    Table::parse("@network mynet\nweb 10.89.0.2 fd00::2\nalias 10.89.0.2\ndb 10.89.0.3\n")
        .expect("fixed table")
}

fn message(data: &[u8], udp: bool) {
    let t = table();
    let Some(d) = dns::answer(&t, data, udp) else {
        return;
    };
    if let Decision::Reply(r) = d {
        assert!(r.len() >= 12);
        assert_eq!(r[..2], data[..2], "the query's id");
        assert!(r[2] & 0x80 != 0, "QR");
        if let Ok(q) = dns::parse_query(data) {
            if udp {
                assert!(r.len() <= dns::udp_limit(&q), "{} bytes over UDP", r.len());
            }
            // The echoed question is the one asked.
            let mut back = r.clone();
            back[2] &= 0x7F;
            back[6..10].copy_from_slice(&[0, 0, 0, 0]);
            back[10..12].copy_from_slice(&[0, 0]);
            let (labels, _) = dns::read_name(&back, 12).expect("echoed name");
            assert_eq!(labels, q.labels);
        }
    }
    let _ = dns::servfail(data, udp);
}

fn table_file(s: &str) {
    if let Ok(t) = Table::parse(s) {
        for line in s.lines() {
            let line = line.split('#').next().unwrap_or("");
            let Some(name) = line.split_whitespace().next() else { continue };
            if name == "@network" {
                continue;
            }
            assert!(t.lookup(name).is_some_and(|a| !a.is_empty()), "{name:?} listed but not found");
        }
    }
}

fn subnet(s: &str, n: u128) {
    let Ok(a) = Subnet::parse(s) else { return };
    let again = Subnet::parse(&a.to_string()).expect("printed subnet parses");
    assert_eq!(a, again);
    if let Some(ip) = a.nth(n % a.host_count().max(1)) {
        assert!(a.contains(ip));
        assert_eq!(a.host_index(ip), Some(n % a.host_count().max(1)));
    }
    if let Some(g) = a.gateway() {
        assert!(a.contains(g));
    }
    let b = Subnet::parse("10.89.0.0/16").expect("fixed");
    assert_eq!(a.overlaps(&b), b.overlaps(&a));
    if let Some(p) = ipam::pick_free_subnet(&ipam::default_candidates(), &[a]) {
        assert!(!p.overlaps(&a));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match sel % 5 {
        0 => message(rest, true),
        1 => message(rest, false),
        2 => table_file(&text),
        3 => {
            let n = rest.iter().take(16).fold(0u128, |v, b| (v << 8) | *b as u128);
            subnet(&text, n);
            if let Some(i) = text.find(' ') {
                subnet(&text[i + 1..], n);
            }
        }
        _ => {
            if let Some(ip) = dns::reverse_addr(&text) {
                let _ = ip;
            }
        }
    }
});
