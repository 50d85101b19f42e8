//! A small DNS server for container names on one network: the wire codec
//! (queries in, answers out), the names table and its file, and a
//! single-process poll(2) loop over UDP and TCP that answers from the
//! table and relays everything else to the host's resolvers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Context, Error, Result};

pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
pub const CLASS_IN: u16 = 1;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_REFUSED: u8 = 5;

/// TTL of our answers: short, since containers come and go.
pub const TTL: u32 = 60;
/// The classic UDP limit for a client that sent no EDNS OPT record.
pub const UDP_PLAIN_LIMIT: usize = 512;
/// What we announce and honour at most over UDP with EDNS (the DNS flag
/// day's size that avoids IP fragmentation).
pub const UDP_EDNS_LIMIT: usize = 1232;

/// Most pointer jumps one name may take: a loop ends here, not in a hang.
const MAX_JUMPS: usize = 64;

/// A parsed query: its header's fields and its one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    pub opcode: u8,
    pub rd: bool,
    /// The question's labels as sent (case kept, for the echo).
    pub labels: Vec<Vec<u8>>,
    pub qtype: u16,
    pub qclass: u16,
    /// The client's EDNS UDP payload size, if it sent an OPT record.
    pub edns: Option<u16>,
}

impl Query {
    /// The name in dotted form, lower case; None if a label holds a dot or
    /// a byte that no name in our table has.
    pub fn name(&self) -> Option<String> {
        let mut s = String::new();
        for (i, l) in self.labels.iter().enumerate() {
            if i > 0 {
                s.push('.');
            }
            for &b in l {
                if b == b'.' || !(b.is_ascii_graphic()) {
                    return None;
                }
                s.push(b.to_ascii_lowercase() as char);
            }
        }
        Some(s)
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Read a (possibly compressed) name at `pos`: its labels and the offset
/// after it in the message. Pointers must point backwards, and at most
/// MAX_JUMPS of them: a loop is an error, never a hang.
pub fn read_name(msg: &[u8], mut pos: usize) -> Result<(Vec<Vec<u8>>, usize)> {
    let bad = |w: &str| Error::msg(format!("dns: bad name: {w}"));
    let mut labels = Vec::new();
    let mut total = 0usize;
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos).ok_or_else(|| bad("truncated"))? as usize;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    return Ok((labels, end.unwrap_or(pos + 1)));
                }
                let l = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or_else(|| bad("truncated label"))?;
                total += len + 1;
                if total > 254 {
                    return Err(bad("longer than 255 bytes"));
                }
                labels.push(l.to_vec());
                pos += 1 + len;
            }
            0xC0 => {
                let target =
                    (be16(msg, pos).ok_or_else(|| bad("truncated pointer"))? & 0x3FFF) as usize;
                if target >= pos {
                    return Err(bad("pointer does not point backwards"));
                }
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return Err(bad("too many pointers"));
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(bad("unknown label type")),
        }
    }
}

/// Skip one resource record at `pos`: (type, class, ttl, rdata range, next).
fn read_rr(msg: &[u8], pos: usize) -> Result<(u16, u16, std::ops::Range<usize>, usize)> {
    let (_, p) = read_name(msg, pos)?;
    let short = || Error::msg("dns: truncated record");
    let ty = be16(msg, p).ok_or_else(short)?;
    let class = be16(msg, p + 2).ok_or_else(short)?;
    let rdlen = be16(msg, p + 8).ok_or_else(short)? as usize;
    let start = p + 10;
    if msg.len() < start + rdlen {
        return Err(short());
    }
    Ok((ty, class, start..start + rdlen, start + rdlen))
}

/// Parse a query: a header with QR clear, exactly one question, any
/// records after it skipped except an OPT (EDNS), whose payload size is
/// kept.
pub fn parse_query(msg: &[u8]) -> Result<Query> {
    if msg.len() < 12 {
        return Err(Error::msg("dns: message shorter than its header"));
    }
    let id = be16(msg, 0).unwrap_or(0);
    let flags = be16(msg, 2).unwrap_or(0);
    if flags & 0x8000 != 0 {
        return Err(Error::msg("dns: a response, not a query"));
    }
    let counts: Vec<u16> = (0..4).map(|i| be16(msg, 4 + 2 * i).unwrap_or(0)).collect();
    if counts[0] != 1 {
        return Err(Error::msg("dns: a query must have exactly one question"));
    }
    let (labels, p) = read_name(msg, 12)?;
    let qtype = be16(msg, p).ok_or_else(|| Error::msg("dns: truncated question"))?;
    let qclass = be16(msg, p + 2).ok_or_else(|| Error::msg("dns: truncated question"))?;
    let mut pos = p + 4;
    let mut edns = None;
    let rrs = counts[1] as usize + counts[2] as usize + counts[3] as usize;
    for i in 0..rrs {
        let (ty, class, _, next) = read_rr(msg, pos)?;
        if ty == TYPE_OPT && i >= counts[1] as usize + counts[2] as usize {
            edns = Some(class);
        }
        pos = next;
    }
    Ok(Query {
        id,
        opcode: ((flags >> 11) & 0xF) as u8,
        rd: flags & 0x0100 != 0,
        labels,
        qtype,
        qclass,
        edns,
    })
}

/// The header of what `parse_query` refused, if it got that far: id and RD,
/// so a FORMERR can still be addressed to the query.
pub fn header_of(msg: &[u8]) -> Option<(u16, bool)> {
    let flags = be16(msg, 2)?;
    (flags & 0x8000 == 0).then_some((be16(msg, 0)?, flags & 0x0100 != 0))
}

/// One record of an answer: an address or a name (PTR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Addr(IpAddr),
    Ptr(String),
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    for l in name.split('.').filter(|l| !l.is_empty()) {
        let l = &l.as_bytes()[..l.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
}

/// The largest response a client takes over UDP.
pub fn udp_limit(q: &Query) -> usize {
    match q.edns {
        Some(n) => (n as usize).clamp(UDP_PLAIN_LIMIT, UDP_EDNS_LIMIT),
        None => UDP_PLAIN_LIMIT,
    }
}

/// A response to `q`: QR, AA (`authoritative`), RD copied, RA; the question
/// echoed; `answers` as records of its name (compressed to the question),
/// TTL TTL; an OPT record if the query had one. If it would exceed `limit`
/// bytes, the answers are dropped and TC set, so the client retries over
/// TCP.
pub fn respond(
    q: &Query,
    rcode: u8,
    authoritative: bool,
    answers: &[Record],
    limit: usize,
) -> Vec<u8> {
    let build = |answers: &[Record], tc: bool| {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&q.id.to_be_bytes());
        let mut flags: u16 =
            0x8000 | ((q.opcode as u16 & 0xF) << 11) | 0x0080 | (rcode as u16 & 0xF);
        if authoritative {
            flags |= 0x0400;
        }
        if tc {
            flags |= 0x0200;
        }
        if q.rd {
            flags |= 0x0100;
        }
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&(q.edns.is_some() as u16).to_be_bytes());
        for l in &q.labels {
            out.push(l.len() as u8);
            out.extend_from_slice(l);
        }
        out.push(0);
        out.extend_from_slice(&q.qtype.to_be_bytes());
        out.extend_from_slice(&q.qclass.to_be_bytes());
        for a in answers {
            out.extend_from_slice(&0xC00Cu16.to_be_bytes());
            let (ty, rdata) = match a {
                Record::Addr(IpAddr::V4(v)) => (TYPE_A, v.octets().to_vec()),
                Record::Addr(IpAddr::V6(v)) => (TYPE_AAAA, v.octets().to_vec()),
                Record::Ptr(n) => {
                    let mut r = Vec::new();
                    put_name(&mut r, n);
                    (TYPE_PTR, r)
                }
            };
            out.extend_from_slice(&ty.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&TTL.to_be_bytes());
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(&rdata);
        }
        if q.edns.is_some() {
            // Root name, OPT, our payload size, no extended rcode/flags.
            out.push(0);
            out.extend_from_slice(&TYPE_OPT.to_be_bytes());
            out.extend_from_slice(&(UDP_EDNS_LIMIT as u16).to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        }
        out
    };
    let full = build(answers, false);
    if full.len() <= limit {
        full
    } else {
        build(&[], true)
    }
}

/// Container names on one network and their addresses, plus per-client
/// views: extra names that only some clients see.
///
/// The file the porcelain writes (atomically: write + rename), one entry a
/// line, `#` starts a comment:
///
/// ```text
/// @network NETWORK
/// NAME ADDR [ADDR...]
/// @client ADDR [ADDR...]
/// NAME ADDR [ADDR...]
/// ```
///
/// `@network` (at most once, before any `@client`) names the network, so
/// that `NAME.NETWORK` resolves as well as `NAME`. Aliases are lines of
/// their own with the same addresses. A reverse (PTR) query for an address
/// answers the first name listed with it.
///
/// `@client` starts a view: the names after it (up to the next `@client`
/// or the end) are seen only by queries whose source address is one of
/// the listed ones. That is how a container on networks A and B, whose
/// first nameserver is A's, finds B's containers through A's server
/// without anyone else on A seeing them. View names are matched exactly
/// (`y` and `y.netb` are two lines); the client sees its views first,
/// then the global names. A view's PTR answer is the first dotted name
/// listed with the address (the `NAME.NETWORK` form), else its first name.
/// A client listed in several sections sees all of them, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub network: Option<String>,
    global: Names,
    views: Vec<Names>,
    /// Client address → the views it sees, in file order.
    clients: HashMap<IpAddr, Vec<usize>>,
}

/// One set of names: forward and reverse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Names {
    names: HashMap<String, Vec<IpAddr>>,
    reverse: HashMap<IpAddr, String>,
}

impl Names {
    /// Add `name` (normalized) → `addrs`. `prefer_dotted`: a later dotted
    /// name takes the reverse entry from an undotted one (views list both
    /// `y` and `y.netb`, in either order).
    fn add(&mut self, n: String, addrs: &[IpAddr], prefer_dotted: bool) {
        for a in addrs {
            match self.reverse.get_mut(a) {
                None => {
                    self.reverse.insert(*a, n.clone());
                }
                Some(old) if prefer_dotted && !old.contains('.') && n.contains('.') => {
                    *old = n.clone();
                }
                Some(_) => {}
            }
        }
        let e = self.names.entry(n).or_default();
        for a in addrs {
            if !e.contains(a) {
                e.push(*a);
            }
        }
    }
}

/// A name as the table keeps it: lower case, no trailing dot.
fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A client address as the table keys it: an IPv4 client that reached a
/// dual-stack socket shows up as `::ffff:a.b.c.d`.
fn canon(a: IpAddr) -> IpAddr {
    a.to_canonical()
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl Table {
    pub fn parse(text: &str) -> Result<Table> {
        let mut t = Table::default();
        // The view the name lines go to: None for the global names.
        let mut view: Option<usize> = None;
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(first) = words.next() else { continue };
            let bad = |w: &str| Error::msg(format!("names table line {}: {w}", i + 1));
            let addrs = |words: std::str::SplitWhitespace| -> Result<Vec<IpAddr>> {
                words
                    .map(|w| {
                        w.parse::<IpAddr>()
                            .map_err(|_| bad(&format!("invalid address {w:?}")))
                    })
                    .collect()
            };
            if first == "@network" {
                let n = words.next().ok_or_else(|| bad("@network without a name"))?;
                if t.network.is_some() || words.next().is_some() || !valid_name(n) {
                    return Err(bad("want one @network NAME"));
                }
                if view.is_some() {
                    return Err(bad("@network belongs before the first @client"));
                }
                t.network = Some(norm(n));
                continue;
            }
            if first == "@client" {
                let clients = addrs(words)?;
                if clients.is_empty() {
                    return Err(bad("@client without an address"));
                }
                let v = t.views.len();
                t.views.push(Names::default());
                for c in clients {
                    let seen = t.clients.entry(canon(c)).or_default();
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
                view = Some(v);
                continue;
            }
            if !valid_name(first) {
                return Err(bad(&format!("invalid name {first:?}")));
            }
            let addrs = addrs(words)?;
            if addrs.is_empty() {
                return Err(bad(&format!("{first} has no address")));
            }
            match view.and_then(|v| t.views.get_mut(v)) {
                Some(names) => names.add(norm(first), &addrs, true),
                None => t.add(first, &addrs),
            }
        }
        Ok(t)
    }

    /// Add a global name (seen by every client).
    pub fn add(&mut self, name: &str, addrs: &[IpAddr]) {
        self.global.add(norm(name), addrs, false);
    }

    /// The views `client` sees, in file order.
    fn views_of(&self, client: IpAddr) -> impl Iterator<Item = &Names> {
        self.clients
            .get(&canon(client))
            .into_iter()
            .flatten()
            .filter_map(|v| self.views.get(*v))
    }

    /// The name without `.NETWORK`, if it is ours (single label, or under
    /// the network's domain).
    fn local_part<'a>(&self, name: &'a str) -> Option<&'a str> {
        if !name.contains('.') {
            return Some(name);
        }
        let net = self.network.as_deref()?;
        let stem = name.strip_suffix(net)?.strip_suffix('.')?;
        (!stem.is_empty()).then_some(stem)
    }

    /// Addresses of global `name` (any case, `NAME` or `NAME.NETWORK`), or
    /// None if the name is not ours to answer (forward it).
    pub fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        let n = norm(name);
        // An alias may have dots of its own (`db.example`): as listed first.
        if let Some(v) = self.global.names.get(&n) {
            return Some(v.as_slice());
        }
        let local = self.local_part(&n)?;
        self.global.names.get(local).map(|v| v.as_slice())
    }

    /// Addresses of `name` as `client` sees it: its views (exact names),
    /// then the global names.
    pub fn lookup_for(&self, client: IpAddr, name: &str) -> Option<&[IpAddr]> {
        let n = norm(name);
        self.views_of(client)
            .find_map(|v| v.names.get(&n))
            .map(|v| v.as_slice())
            .or_else(|| self.lookup(&n))
    }

    /// Whether a name falls in our zone (single label or NAME.NETWORK):
    /// unknown ones there are NXDOMAIN, not forwarded.
    pub fn is_ours(&self, name: &str) -> bool {
        self.local_part(&norm(name)).is_some()
    }

    /// The PTR answer for `x.x.x.x.in-addr.arpa` / `…ip6.arpa` of a global
    /// address.
    pub fn reverse(&self, name: &str) -> Option<String> {
        let ip = reverse_addr(&norm(name))?;
        let n = self.global.reverse.get(&ip)?;
        Some(match &self.network {
            Some(net) => format!("{n}.{net}"),
            None => n.clone(),
        })
    }

    /// The PTR answer as `client` sees it: its views first (the name as
    /// listed), then the global names.
    pub fn reverse_for(&self, client: IpAddr, name: &str) -> Option<String> {
        let n = norm(name);
        let ip = reverse_addr(&n)?;
        self.views_of(client)
            .find_map(|v| v.reverse.get(&ip).cloned())
            .or_else(|| self.reverse(&n))
    }
}

/// The address a reverse name stands for.
pub fn reverse_addr(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let parts: Vec<&str> = rest.split('.').collect();
        if parts.len() != 4 {
            return None;
        }
        let mut o = [0u8; 4];
        for (i, p) in parts.iter().rev().enumerate() {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            o[i] = p.parse().ok()?;
        }
        return Some(IpAddr::from(o));
    }
    let rest = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<&str> = rest.split('.').collect();
    if nibbles.len() != 32 {
        return None;
    }
    let mut v: u128 = 0;
    for n in nibbles.iter().rev() {
        if n.len() != 1 {
            return None;
        }
        v = (v << 4) | u8::from_str_radix(n, 16).ok()? as u128;
    }
    Some(IpAddr::from(v.to_be_bytes()))
}

/// What to do with a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not ours: relay to the upstream resolvers.
    Forward,
}

/// Answer `msg` from `table` as client `from` sees it (its views, then the
/// global names), as it came over UDP (`udp`: the 512-byte or EDNS limit
/// applies) or TCP. A message we cannot parse gets FORMERR if its header
/// is readable, nothing otherwise.
pub fn answer(table: &Table, msg: &[u8], udp: bool, from: IpAddr) -> Option<Decision> {
    let q = match parse_query(msg) {
        Ok(q) => q,
        Err(_) => {
            let (id, rd) = header_of(msg)?;
            let q = Query {
                id,
                opcode: 0,
                rd,
                labels: Vec::new(),
                qtype: 0,
                qclass: 0,
                edns: None,
            };
            // No question to echo: a bare header.
            let mut r = respond(&q, RCODE_FORMERR, false, &[], usize::MAX);
            r.truncate(12);
            r[4..6].copy_from_slice(&[0, 0]);
            return Some(Decision::Reply(r));
        }
    };
    let limit = if udp { udp_limit(&q) } else { 65535 };
    let reply =
        |rcode, aa, recs: &[Record]| Some(Decision::Reply(respond(&q, rcode, aa, recs, limit)));
    if q.opcode != 0 || q.qclass != CLASS_IN {
        return reply(RCODE_REFUSED, false, &[]);
    }
    let Some(name) = q.name() else {
        return Some(Decision::Forward);
    };
    if name.is_empty() {
        return Some(Decision::Forward);
    }
    if let Some(p) = table.reverse_for(from, &name) {
        let recs = if q.qtype == TYPE_PTR {
            vec![Record::Ptr(p)]
        } else {
            vec![]
        };
        return reply(RCODE_NOERROR, true, &recs);
    }
    match table.lookup_for(from, &name) {
        None if !table.is_ours(&name) => Some(Decision::Forward),
        None => reply(RCODE_NXDOMAIN, true, &[]),
        Some(addrs) => {
            let recs: Vec<Record> = addrs
                .iter()
                .filter(|a| match q.qtype {
                    TYPE_A => a.is_ipv4(),
                    TYPE_AAAA => a.is_ipv6(),
                    _ => false,
                })
                .map(|a| Record::Addr(*a))
                .collect();
            reply(RCODE_NOERROR, true, &recs)
        }
    }
}

/// A SERVFAIL for a query we could not relay.
pub fn servfail(msg: &[u8], udp: bool) -> Option<Vec<u8>> {
    let q = parse_query(msg).ok()?;
    let limit = if udp { udp_limit(&q) } else { 65535 };
    Some(respond(&q, RCODE_SERVFAIL, false, &[], limit))
}

// ------------------------------------------------------------------ server

/// How long each upstream gets before the next one is asked.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// At most this many queries relayed at once, TCP connections open at once.
const MAX_PENDING: usize = 256;
const MAX_TCP: usize = 64;
/// An idle TCP client is closed after this long.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// How often the table file is looked at.
const RELOAD_EVERY: Duration = Duration::from_millis(200);

/// Where a relayed answer goes back to.
enum Client {
    Udp(SocketAddr),
    Tcp(u64),
}

struct Pending {
    sock: UdpSocket,
    query: Vec<u8>,
    client: Client,
    client_id: u16,
    upstream: usize,
    deadline: Instant,
    udp: bool,
}

struct Conn {
    key: u64,
    /// The client's address: which views it sees.
    peer: IpAddr,
    stream: std::net::TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    last: Instant,
}

fn file_stamp(p: &Path) -> Option<(u64, u64, i64, i64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    Some((m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
}

fn load_table(p: &Path) -> Result<Table> {
    let text = std::fs::read_to_string(p).ctx(|| format!("read {}", p.display()))?;
    Table::parse(&text).ctx(|| p.display().to_string())
}

/// The table as its file says: reloaded when the file is replaced (a bad
/// file keeps the old table).
struct LiveTable<'a> {
    path: &'a Path,
    table: Table,
    stamp: Option<(u64, u64, i64, i64, u64)>,
}

impl<'a> LiveTable<'a> {
    fn load(path: &'a Path) -> Result<LiveTable<'a>> {
        Ok(LiveTable {
            path,
            stamp: file_stamp(path),
            table: load_table(path)?,
        })
    }

    /// Reload if the file changed; whether it did.
    fn refresh(&mut self) -> bool {
        let s = file_stamp(self.path);
        if s == self.stamp {
            return false;
        }
        self.stamp = s;
        match load_table(self.path) {
            Ok(t) => self.table = t,
            Err(e) => eprintln!("runway dns: keeping the old table: {e}"),
        }
        true
    }

    /// `answer`, but a miss (NXDOMAIN or not ours) first looks at the file
    /// again: a container started right after another one asks for it
    /// within milliseconds, before the periodic reload, and a negative
    /// answer would stick in its resolver's cache. Hits cost no stat.
    fn answer(&mut self, msg: &[u8], udp: bool, from: IpAddr) -> Option<Decision> {
        let d = answer(&self.table, msg, udp, from);
        let miss = match &d {
            Some(Decision::Forward) => true,
            Some(Decision::Reply(r)) => r.get(3).is_some_and(|b| b & 0xF == RCODE_NXDOMAIN),
            None => false,
        };
        if miss && self.refresh() {
            return answer(&self.table, msg, udp, from);
        }
        d
    }
}

/// SIGTERM and SIGINT as a readable fd (signalfd), blocked for the
/// calling thread so that they end the loop instead of the process.
/// Serve DNS for the names in `table_file` on `bind:port`, UDP and TCP,
/// relaying other names to `upstreams` in turn (each gets
/// UPSTREAM_TIMEOUT; SERVFAIL when none answers). The table is reloaded
/// when the file is replaced (looked at every RELOAD_EVERY, and before
/// any miss is answered); a bad file keeps the old table. Returns
/// Ok on SIGTERM or SIGINT. One thread, one poll(2).
pub fn serve(bind: IpAddr, port: u16, table_file: &Path, upstreams: Vec<SocketAddr>) -> Result<()> {
    let addr = SocketAddr::new(bind, port);
    let udp = UdpSocket::bind(addr).ctx(|| format!("bind udp {addr}"))?;
    udp.set_nonblocking(true).ctx(|| "udp nonblocking")?;
    let tcp = std::net::TcpListener::bind(addr).ctx(|| format!("bind tcp {addr}"))?;
    tcp.set_nonblocking(true).ctx(|| "tcp nonblocking")?;
    let sig = crate::linux::signal::stop_signal_fd()?;
    let mut table = LiveTable::load(table_file)?;
    let mut checked = Instant::now();
    let mut pending: Vec<Pending> = Vec::new();
    let mut conns: Vec<Conn> = Vec::new();
    let mut next_key: u64 = 0;
    let mut buf = vec![0u8; 65535];
    let mut rng = seed();

    loop {
        // --- poll set: signal, udp, tcp listener, connections, upstreams.
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3 + conns.len() + pending.len());
        let pfd = |fd: i32, ev: i16| libc::pollfd {
            fd,
            events: ev,
            revents: 0,
        };
        fds.push(pfd(sig.as_raw_fd(), libc::POLLIN));
        fds.push(pfd(udp.as_raw_fd(), libc::POLLIN));
        fds.push(pfd(
            tcp.as_raw_fd(),
            if conns.len() < MAX_TCP {
                libc::POLLIN
            } else {
                0
            },
        ));
        for c in &conns {
            let ev = if c.out.is_empty() {
                libc::POLLIN
            } else {
                libc::POLLOUT
            };
            fds.push(pfd(c.stream.as_raw_fd(), ev));
        }
        for p in &pending {
            fds.push(pfd(p.sock.as_raw_fd(), libc::POLLIN));
        }
        // What the poll set covers: accepts and forwards below add more.
        let polled_conns = conns.len();
        let now = Instant::now();
        let mut wait = RELOAD_EVERY.saturating_sub(now.duration_since(checked));
        for p in &pending {
            wait = wait.min(p.deadline.saturating_duration_since(now));
        }
        // SAFETY: fds is a live array of pollfd of the given length.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                wait.as_millis() as i32 + 1,
            )
        };
        if n < 0 {
            let e = crate::error::last_errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(Error::errno("dns: poll", e));
        }
        if fds[0].revents != 0 {
            return Ok(());
        }

        // --- the table.
        if checked.elapsed() >= RELOAD_EVERY {
            checked = Instant::now();
            table.refresh();
        }

        // --- UDP queries.
        if fds[1].revents != 0 {
            // Bounded per wake-up so that TCP and upstreams get their turn.
            for _ in 0..64 {
                let Ok((len, from)) = udp.recv_from(&mut buf) else {
                    break;
                };
                let msg = &buf[..len];
                match table.answer(msg, true, from.ip()) {
                    Some(Decision::Reply(r)) => {
                        let _ = udp.send_to(&r, from);
                    }
                    Some(Decision::Forward) => {
                        let now = forward(
                            &mut pending,
                            &upstreams,
                            msg,
                            Client::Udp(from),
                            true,
                            &mut rng,
                        );
                        if let Some(r) = now {
                            let _ = udp.send_to(&r, from);
                        }
                    }
                    None => {}
                }
            }
        }

        // --- new TCP clients.
        if fds[2].revents != 0 {
            while conns.len() < MAX_TCP {
                let Ok((s, peer)) = tcp.accept() else { break };
                if s.set_nonblocking(true).is_err() {
                    continue;
                }
                next_key += 1;
                conns.push(Conn {
                    key: next_key,
                    peer: peer.ip(),
                    stream: s,
                    inbuf: Vec::new(),
                    out: Vec::new(),
                    last: Instant::now(),
                });
            }
        }

        // --- TCP connections.
        let conn_revents: Vec<i16> = fds
            .iter()
            .skip(3)
            .take(polled_conns)
            .map(|f| f.revents)
            .collect();
        let mut closed = vec![false; conns.len()];
        for (i, c) in conns.iter_mut().enumerate() {
            let rev = conn_revents.get(i).copied().unwrap_or(0);
            if rev & libc::POLLOUT != 0 && !c.out.is_empty() {
                use std::io::Write;
                match c.stream.write(&c.out) {
                    Ok(k) => {
                        c.out.drain(..k);
                        c.last = Instant::now();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => closed[i] = true,
                }
            } else if rev & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                use std::io::Read;
                match c.stream.read(&mut buf) {
                    Ok(0) => closed[i] = true,
                    Ok(k) => {
                        c.inbuf.extend_from_slice(&buf[..k]);
                        c.last = Instant::now();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => closed[i] = true,
                }
            }
            // Whole messages in: answer or relay each.
            while c.inbuf.len() >= 2 {
                let len = u16::from_be_bytes([c.inbuf[0], c.inbuf[1]]) as usize;
                if c.inbuf.len() < 2 + len {
                    break;
                }
                let msg: Vec<u8> = c.inbuf.drain(..2 + len).skip(2).collect();
                match table.answer(&msg, false, c.peer) {
                    Some(Decision::Reply(r)) => frame(&mut c.out, &r),
                    Some(Decision::Forward) => {
                        let now = forward(
                            &mut pending,
                            &upstreams,
                            &msg,
                            Client::Tcp(c.key),
                            false,
                            &mut rng,
                        );
                        if let Some(r) = now {
                            frame(&mut c.out, &r);
                        }
                    }
                    None => closed[i] = true,
                }
            }
            if c.last.elapsed() > TCP_IDLE {
                closed[i] = true;
            }
        }

        // --- upstream answers and timeouts.
        let up_revents: Vec<i16> = fds
            .iter()
            .skip(3 + polled_conns)
            .map(|f| f.revents)
            .collect();
        let mut done = vec![false; pending.len()];
        for (i, p) in pending.iter_mut().enumerate() {
            let got = if up_revents.get(i).is_some_and(|r| *r != 0) {
                match p.sock.recv(&mut buf) {
                    Ok(k) if k >= 12 => {
                        let mut r = buf[..k].to_vec();
                        r[..2].copy_from_slice(&p.client_id.to_be_bytes());
                        Some(r)
                    }
                    _ => None,
                }
            } else {
                None
            };
            let reply = match got {
                Some(r) => Some(r),
                None if Instant::now() >= p.deadline => {
                    // Next upstream, or SERVFAIL when all were asked.
                    p.upstream += 1;
                    if let Some(u) = upstreams.get(p.upstream) {
                        p.deadline = Instant::now() + UPSTREAM_TIMEOUT;
                        if let Ok(s) = upstream_socket(*u) {
                            let _ = s.send(&p.query);
                            p.sock = s;
                        }
                        None
                    } else {
                        let mut q = p.query.clone();
                        q[..2].copy_from_slice(&p.client_id.to_be_bytes());
                        Some(servfail(&q, p.udp).unwrap_or_default())
                    }
                }
                None => None,
            };
            if let Some(r) = reply {
                done[i] = true;
                if r.is_empty() {
                    continue;
                }
                match p.client {
                    Client::Udp(a) => {
                        let _ = udp.send_to(&r, a);
                    }
                    Client::Tcp(k) => {
                        if let Some(c) = conns.iter_mut().find(|c| c.key == k) {
                            frame(&mut c.out, &r);
                        }
                    }
                }
            }
        }
        let mut i = 0;
        pending.retain(|_| {
            i += 1;
            !done[i - 1]
        });
        let mut i = 0;
        conns.retain(|_| {
            i += 1;
            !closed[i - 1]
        });
    }
}

fn frame(out: &mut Vec<u8>, msg: &[u8]) {
    out.extend_from_slice(&(msg.len().min(65535) as u16).to_be_bytes());
    out.extend_from_slice(&msg[..msg.len().min(65535)]);
}

/// A connected, non-blocking UDP socket to one upstream (its answers only
/// come from there).
fn upstream_socket(u: SocketAddr) -> Result<UdpSocket> {
    let local: SocketAddr = if u.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|_| Error::msg("addr"))?
    } else {
        "[::]:0".parse().map_err(|_| Error::msg("addr"))?
    };
    let s = UdpSocket::bind(local).ctx(|| "upstream socket")?;
    s.connect(u).ctx(|| format!("connect {u}"))?;
    s.set_nonblocking(true).ctx(|| "upstream nonblocking")?;
    Ok(s)
}

/// Start relaying `msg` (fresh random id, the first upstream). When
/// there is no upstream or too much is in flight: the SERVFAIL to send
/// back at once.
fn forward(
    pending: &mut Vec<Pending>,
    upstreams: &[SocketAddr],
    msg: &[u8],
    client: Client,
    udp: bool,
    rng: &mut u64,
) -> Option<Vec<u8>> {
    let (client_id, _) = header_of(msg)?;
    let started = upstreams
        .first()
        .filter(|_| pending.len() < MAX_PENDING)
        .and_then(|u| {
            let s = upstream_socket(*u).ok()?;
            let mut q = msg.to_vec();
            q[..2].copy_from_slice(&(next_rand(rng) as u16).to_be_bytes());
            s.send(&q).ok()?;
            Some((s, q))
        });
    match started {
        Some((sock, query)) => {
            pending.push(Pending {
                sock,
                query,
                client,
                client_id,
                upstream: 0,
                deadline: Instant::now() + UPSTREAM_TIMEOUT,
                udp,
            });
            None
        }
        None => servfail(msg, udp),
    }
}

/// A seed for query ids: ids an off-path attacker cannot guess make
/// spoofed upstream answers harder to land.
fn seed() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom(2) into a local buffer of the given length.
    let _ = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    u64::from_ne_bytes(b) | 1
}

fn next_rand(s: &mut u64) -> u64 {
    // xorshift64: not cryptographic, seeded from the kernel's random bytes.
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` of `qtype`, id 0x1234, RD set.
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        put_name(&mut q, name);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    /// A client with no view of its own.
    const ANY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 89, 0, 99));

    fn table() -> Table {
        Table::parse(
            "# test\n@network mynet\nweb 10.89.0.2 fd00::2\nalias 10.89.0.2\ndb 10.89.0.3\n",
        )
        .unwrap()
    }

    #[test]
    fn a_answer_exact_bytes() {
        let q = query("WEB", TYPE_A);
        let Some(Decision::Reply(r)) = answer(&table(), &q, true, ANY) else {
            panic!()
        };
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            0x12, 0x34, // id
            0x85, 0x80, // QR AA RD RA, NOERROR
            0, 1, 0, 1, 0, 0, 0, 0,
            3, b'W', b'E', b'B', 0, 0, 1, 0, 1, // question, case kept
            0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 89, 0, 2,
        ];
        assert_eq!(r, want);
    }

    #[test]
    fn nxdomain_exact_bytes() {
        let q = query("nope.mynet", TYPE_A);
        let Some(Decision::Reply(r)) = answer(&table(), &q, true, ANY) else {
            panic!()
        };
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            0x12, 0x34, 0x85, 0x83, 0, 1, 0, 0, 0, 0, 0, 0,
            4, b'n', b'o', b'p', b'e', 5, b'm', b'y', b'n', b'e', b't', 0, 0, 1, 0, 1,
        ];
        assert_eq!(r, want);
    }

    #[test]
    fn names_aaaa_ptr_and_forwarding() {
        let t = table();
        let get = |name: &str, ty: u16| match answer(&t, &query(name, ty), true, ANY) {
            Some(Decision::Reply(r)) => parse_answers(&r),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            get("web.MyNet.", TYPE_AAAA),
            (0, vec!["fd00::2".to_string()])
        );
        assert_eq!(
            get("alias.mynet", TYPE_A),
            (0, vec!["10.89.0.2".to_string()])
        );
        assert_eq!(get("db", TYPE_AAAA), (0, vec![]));
        assert_eq!(
            get("2.0.89.10.in-addr.arpa", TYPE_PTR),
            (0, vec!["web.mynet".to_string()])
        );
        assert_eq!(
            answer(&t, &query("example.org", TYPE_A), true, ANY),
            Some(Decision::Forward)
        );
        assert_eq!(
            answer(&t, &query("9.9.9.9.in-addr.arpa", TYPE_PTR), true, ANY),
            Some(Decision::Forward)
        );
        assert_eq!(get("gone", TYPE_A).0, RCODE_NXDOMAIN);
    }

    /// (rcode, answers as text) of a response.
    fn parse_answers(r: &[u8]) -> (u8, Vec<String>) {
        let an = u16::from_be_bytes([r[6], r[7]]);
        let (_, mut p) = read_name(r, 12).unwrap();
        p += 4;
        let mut out = Vec::new();
        for _ in 0..an {
            let (ty, _, rd, next) = read_rr(r, p).unwrap();
            out.push(match ty {
                TYPE_A => IpAddr::from(<[u8; 4]>::try_from(&r[rd]).unwrap()).to_string(),
                TYPE_AAAA => IpAddr::from(<[u8; 16]>::try_from(&r[rd]).unwrap()).to_string(),
                _ => {
                    let (l, _) = read_name(r, rd.start).unwrap();
                    l.iter()
                        .map(|l| String::from_utf8_lossy(l))
                        .collect::<Vec<_>>()
                        .join(".")
                }
            });
            p = next;
        }
        (r[3] & 0xF, out)
    }

    #[test]
    fn compression_in_input_and_loops() {
        // The question's name is a pointer back into... itself: a loop.
        let mut q = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1];
        assert!(parse_query(&q).is_err());
        // A forward pointer, then a two-pointer cycle in an additional record.
        q[13] = 14;
        assert!(parse_query(&q).is_err());
        let mut m = query("web", TYPE_A);
        m[11] = 1; // one additional record whose name points at the question
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse_query(&m).unwrap().labels, vec![b"web".to_vec()]);
        let mut cyc = query("web", TYPE_A);
        cyc[11] = 1;
        let at = cyc.len();
        cyc.extend_from_slice(&[0xC0, (at + 2) as u8, 0xC0, at as u8]);
        assert!(parse_query(&cyc).is_err());
        // Garbage and FORMERR.
        assert_eq!(answer(&table(), &[1, 2, 3], true, ANY), None);
        let Some(Decision::Reply(r)) = answer(
            &table(),
            &[0xAB, 0xCD, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0],
            true,
            ANY,
        ) else {
            panic!()
        };
        assert_eq!(r, vec![0xAB, 0xCD, 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn edns_refused_and_truncation() {
        let mut t = Table::default();
        let many: Vec<IpAddr> = (0..40u8).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        t.add("big", &many);
        let q = query("big", TYPE_A);
        let Some(Decision::Reply(r)) = answer(&t, &q, true, ANY) else {
            panic!()
        };
        assert_eq!(r[2] & 0x02, 0x02, "TC over 512 bytes without EDNS");
        assert_eq!(r[6..8], [0, 0]);
        let Some(Decision::Reply(r)) = answer(&t, &q, false, ANY) else {
            panic!()
        };
        assert_eq!(r[2] & 0x02, 0, "TCP is never truncated");
        assert_eq!(parse_answers(&r).1.len(), 40);
        let mut e = q.clone();
        e[11] = 1;
        e.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse_query(&e).unwrap().edns, Some(4096));
        let Some(Decision::Reply(r)) = answer(&t, &e, true, ANY) else {
            panic!()
        };
        assert_eq!(r[2] & 0x02, 0, "EDNS raises the limit");
        assert_eq!(r[10..12], [0, 1], "an OPT record back");
        let mut chaos = query("big", TYPE_A);
        let n = chaos.len();
        chaos[n - 1] = 3;
        let Some(Decision::Reply(r)) = answer(&t, &chaos, true, ANY) else {
            panic!()
        };
        assert_eq!(r[3] & 0xF, RCODE_REFUSED);
        let s = servfail(&q, true).unwrap();
        assert_eq!(s[3] & 0xF, RCODE_SERVFAIL);
    }

    #[test]
    fn table_file_and_reverse_names() {
        assert!(Table::parse("web\n").is_err());
        assert!(Table::parse("web 10.0.0.300\n").is_err());
        assert!(Table::parse("we b.x 10.0.0.3\n").is_err());
        assert!(Table::parse("w/b 10.0.0.3\n").is_err());
        assert!(Table::parse("@network a\n@network b\n").is_err());
        assert_eq!(
            reverse_addr("4.3.2.1.in-addr.arpa"),
            Some(IpAddr::from([1, 2, 3, 4]))
        );
        assert_eq!(reverse_addr("4.3.2.in-addr.arpa"), None);
        let v6 = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(reverse_addr(v6), Some("fd00::2".parse().unwrap()));
        assert_eq!(table().reverse(v6), Some("web.mynet".to_string()));
        // A dotted alias answers as listed, with or without a network.
        let t = Table::parse("b-10.89.0.2 fd00::eb\n").unwrap();
        assert_eq!(
            t.lookup("B-10.89.0.2."),
            Some(&["fd00::eb".parse().unwrap()][..])
        );
    }

    /// A view table: `x` (on A and B) sees B's names through A's server;
    /// `z` (on A and C) sees C's; everyone else only A's.
    fn views() -> Table {
        Table::parse(
            "@network neta\n\
             x 10.89.0.2\n\
             z 10.89.0.4\n\
             @client 10.89.0.2 fd00::2\n\
             y 10.89.1.3\n\
             y.netb 10.89.1.3\n\
             x.netb 10.89.1.2\n\
             @client 10.89.0.4\n\
             y.netc 10.89.2.3 # a y on C: another container\n\
             y 10.89.2.3\n\
             x 10.89.2.9 # the view comes first\n",
        )
        .unwrap()
    }

    #[test]
    fn client_views_answer_only_their_clients() {
        let t = views();
        let x: IpAddr = "10.89.0.2".parse().unwrap();
        let x6: IpAddr = "fd00::2".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.89.0.2".parse().unwrap();
        let z: IpAddr = "10.89.0.4".parse().unwrap();
        let get = |from: IpAddr, name: &str, ty: u16| match answer(&t, &query(name, ty), true, from)
        {
            Some(Decision::Reply(r)) => parse_answers(&r),
            other => panic!("{name} from {from}: {other:?}"),
        };
        let a = |s: &str| (RCODE_NOERROR, vec![s.to_string()]);
        for from in [x, x6, mapped] {
            assert_eq!(get(from, "Y", TYPE_A), a("10.89.1.3"), "{from}");
            assert_eq!(get(from, "y.NetB.", TYPE_A), a("10.89.1.3"), "{from}");
            assert_eq!(get(from, "x", TYPE_A), a("10.89.0.2"), "global still seen");
            assert_eq!(get(from, "x.neta", TYPE_A), a("10.89.0.2"));
            assert_eq!(
                get(from, "3.1.89.10.in-addr.arpa", TYPE_PTR),
                a("y.netb"),
                "the dotted name, though y came first"
            );
        }
        // Another client of the same server: C's y, not B's; its view's x
        // shadows the global one.
        assert_eq!(get(z, "y", TYPE_A), a("10.89.2.3"));
        assert_eq!(get(z, "y.netc", TYPE_A), a("10.89.2.3"));
        assert_eq!(get(z, "x", TYPE_A), a("10.89.2.9"));
        assert_eq!(get(z, "3.2.89.10.in-addr.arpa", TYPE_PTR), a("y.netc"));
        assert_eq!(get(z, "2.0.89.10.in-addr.arpa", TYPE_PTR), a("x.neta"));
        // Everyone else: NXDOMAIN for the single label, the dotted names
        // of other networks are not ours (forwarded), as before.
        for from in [ANY, z] {
            assert_eq!(
                answer(&t, &query("y.netb", TYPE_A), true, from),
                Some(Decision::Forward)
            );
            assert_eq!(
                answer(&t, &query("3.1.89.10.in-addr.arpa", TYPE_PTR), true, from),
                Some(Decision::Forward)
            );
        }
        assert_eq!(get(ANY, "y", TYPE_A).0, RCODE_NXDOMAIN);
        assert_eq!(get(x, "nope", TYPE_A).0, RCODE_NXDOMAIN);
        assert_eq!(get(x, "nope.neta", TYPE_A).0, RCODE_NXDOMAIN);
        assert_eq!(
            answer(&t, &query("nope.netb", TYPE_A), true, x),
            Some(Decision::Forward)
        );
        assert_eq!(t.lookup("y"), None, "lookup is the global view");
        assert_eq!(
            t.lookup_for(x, "x.netb"),
            Some(&["10.89.1.2".parse().unwrap()][..])
        );
    }

    #[test]
    fn client_view_file_rules() {
        // @network only before the views; @client needs an address; a
        // client listed twice sees both sections, in order.
        assert!(Table::parse("@client 10.0.0.2\n@network n\n").is_err());
        assert!(Table::parse("@client\n").is_err());
        assert!(Table::parse("@client 10.0.0.300\n").is_err());
        assert!(Table::parse("@client 10.0.0.2\ny\n").is_err());
        assert!(Table::parse("@client 10.0.0.2\ny/z 10.0.0.3\n").is_err());
        let t = Table::parse(
            "@client 10.0.0.2\na 10.0.1.1\n@client 10.0.0.3 10.0.0.2\na 10.0.2.1\nb 10.0.2.2\n",
        )
        .unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        let three: IpAddr = "10.0.0.3".parse().unwrap();
        assert_eq!(
            t.lookup_for(two, "a"),
            Some(&["10.0.1.1".parse().unwrap()][..])
        );
        assert_eq!(
            t.lookup_for(two, "b"),
            Some(&["10.0.2.2".parse().unwrap()][..])
        );
        assert_eq!(
            t.lookup_for(three, "a"),
            Some(&["10.0.2.1".parse().unwrap()][..])
        );
        assert_eq!(t.lookup_for(ANY, "a"), None);
        // An empty view is fine (a container whose other network is gone).
        assert!(Table::parse("@client 10.0.0.2\n@client 10.0.0.3\n").is_ok());
    }
}
