//! The network building blocks' parsers, one input each: the first byte
//! picks (mod 5; its quotient by 5 picks the DNS client). 0-1 a DNS
//! message from a client (UDP, TCP) → `dns::answer` against a fixed names
//! table with a per-client view, from a client without a view (first
//! byte < 5) or with one: never a panic, a reply is a response to that id
//! within the transport's size, and a parsed query's response parses back
//! to the same question; 2 the names table file (every name it lists must
//! resolve, a view's names for each of its clients; a client with no view
//! sees exactly the global names); 3 subnets (print → parse round-trip,
//! `nth` ↔ `host_index`, overlap symmetry, `pick_free_subnet`); 4 reverse
//! names.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use runway::net::dns::{self, Decision, Table};
use runway::net::ipam::{self, Subnet};

fn table() -> Table {
    Table::parse(
        "@network mynet\nweb 10.89.0.2 fd00::2\nalias 10.89.0.2\ndb 10.89.0.3\n\
         @client 10.89.0.2\ny 10.89.1.3\ny.netb 10.89.1.3\n",
    )
    .expect("fixed table")
}

fn message(data: &[u8], udp: bool, from: IpAddr) {
    let t = table();
    let Some(d) = dns::answer(&t, data, udp, from) else {
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
    let Ok(t) = Table::parse(s) else { return };
    // The clients of the section a line is in (empty: the global names),
    // and every client named anywhere.
    let mut section: Vec<IpAddr> = Vec::new();
    let mut listed: Vec<IpAddr> = Vec::new();
    let mut names = Vec::new();
    for line in s.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        match name {
            "@network" => continue,
            "@client" => {
                section = words
                    .map(|w| w.parse::<IpAddr>().expect("parsed table").to_canonical())
                    .collect();
                listed.extend(&section);
                continue;
            }
            _ => {}
        }
        names.push(name);
        if section.is_empty() {
            assert!(
                t.lookup(name).is_some_and(|a| !a.is_empty()),
                "{name:?} listed but not found"
            );
        }
        for c in &section {
            assert!(
                t.lookup_for(*c, name).is_some_and(|a| !a.is_empty()),
                "{name:?} listed for {c} but not found"
            );
        }
    }
    // Someone with no view sees the global names, nothing more.
    let stranger = ["192.0.2.1", "192.0.2.2", "2001:db8::1"]
        .iter()
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .find(|a| !listed.contains(a));
    if let Some(st) = stranger {
        for n in names {
            assert_eq!(
                t.lookup_for(st, n),
                t.lookup(n),
                "{n:?} for a client with no view"
            );
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
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    // The client: the fixed table's view holder or anyone else.
    let from: IpAddr = if (sel / 5) % 2 == 1 {
        [10, 89, 0, 2]
    } else {
        [10, 89, 0, 7]
    }
    .into();
    match sel % 5 {
        0 => message(rest, true, from),
        1 => message(rest, false, from),
        2 => table_file(&text),
        3 => {
            let n = rest
                .iter()
                .take(16)
                .fold(0u128, |v, b| (v << 8) | *b as u128);
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
