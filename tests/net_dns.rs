//! net::dns's server for real: on 127.0.0.1 inside a network namespace
//! this test makes (nothing leaves it), over UDP and TCP, answering names
//! from its table file, relaying others to a fake upstream the test runs
//! in the same namespace, SERVFAIL when the upstream stays silent,
//! reloading a rewritten table (a name added a moment ago answered at
//! once), NXDOMAIN for unknown names, exiting on SIGTERM, and per-client
//! views (queries from 127.0.0.1 and 127.0.0.2 see different names).
#![cfg(feature = "full")]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use runway::net::dns::{self, Record};

const CHILD: &str = "RUNWAY_DNS_NETNS_CHILD";
/// What the fake upstream answers for every name it does answer.
const UPSTREAM_ANSWER: [u8; 4] = [192, 0, 2, 7];

fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
    q
}

/// (id, rcode, addresses answered) of a response.
fn parse(r: &[u8]) -> (u16, u8, Vec<IpAddr>) {
    let id = u16::from_be_bytes([r[0], r[1]]);
    assert!(r[2] & 0x80 != 0, "QR set");
    let an = u16::from_be_bytes([r[6], r[7]]);
    let (_, mut p) = dns::read_name(r, 12).unwrap();
    p += 4;
    let mut addrs = Vec::new();
    for _ in 0..an {
        let (_, q) = dns::read_name(r, p).unwrap();
        let len = u16::from_be_bytes([r[q + 8], r[q + 9]]) as usize;
        let rd = &r[q + 10..q + 10 + len];
        match len {
            4 => addrs.push(IpAddr::from(<[u8; 4]>::try_from(rd).unwrap())),
            16 => addrs.push(IpAddr::from(<[u8; 16]>::try_from(rd).unwrap())),
            _ => {}
        }
        p = q + 10 + len;
    }
    (id, r[3] & 0xF, addrs)
}

fn udp(server: SocketAddr, name: &str, qtype: u16) -> Option<(u16, u8, Vec<IpAddr>)> {
    udp_within(server, name, qtype, Duration::from_secs(5))
}

fn udp_within(
    server: SocketAddr,
    name: &str,
    qtype: u16,
    wait: Duration,
) -> Option<(u16, u8, Vec<IpAddr>)> {
    udp_from(v4([127, 0, 0, 1]), server, name, qtype, wait)
}

/// A UDP query sent from `src` (the server's per-client views key on it).
fn udp_from(
    src: IpAddr,
    server: SocketAddr,
    name: &str,
    qtype: u16,
    wait: Duration,
) -> Option<(u16, u8, Vec<IpAddr>)> {
    let s = UdpSocket::bind(SocketAddr::new(src, 0)).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.send_to(&query(0x4242, name, qtype), server).unwrap();
    let mut b = [0u8; 1500];
    let n = s.recv(&mut b).ok()?;
    Some(parse(&b[..n]))
}

fn tcp(server: SocketAddr, name: &str, qtype: u16) -> (u16, u8, Vec<IpAddr>) {
    tcp_from(v4([127, 0, 0, 1]), server, name, qtype)
}

/// A TCP connection from `src` (bound before connect, which std's
/// TcpStream cannot do).
fn connect_from(src: IpAddr, server: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (src, server.ip()) else {
        panic!("IPv4 only")
    };
    let sin = |a: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(a).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, bound and connected with sockaddr_in values
    // that live across the calls; the fd goes straight into a TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let s = TcpStream::from_raw_fd(fd);
        let a = sin(src, 0);
        assert_eq!(
            libc::bind(fd, (&a as *const libc::sockaddr_in).cast(), len),
            0
        );
        let b = sin(dst, server.port());
        assert_eq!(
            libc::connect(fd, (&b as *const libc::sockaddr_in).cast(), len),
            0,
            "{}",
            std::io::Error::last_os_error()
        );
        s
    }
}

fn tcp_from(src: IpAddr, server: SocketAddr, name: &str, qtype: u16) -> (u16, u8, Vec<IpAddr>) {
    let mut s = connect_from(src, server);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Two queries in one write: the server must frame them apart.
    let mut out = Vec::new();
    for id in [7u16, 8] {
        let q = query(id, name, qtype);
        out.extend_from_slice(&(q.len() as u16).to_be_bytes());
        out.extend_from_slice(&q);
    }
    s.write_all(&out).unwrap();
    let mut last = None;
    for id in [7u16, 8] {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut m).unwrap();
        let r = parse(&m);
        assert_eq!(r.0, id);
        last = Some(r);
    }
    last.unwrap()
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

/// Bring `lo` up in this (new) namespace.
fn lo_up() {
    // SAFETY: a plain socket and the SIOC[GS]IFFLAGS ioctls on a zeroed ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        assert_eq!(libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut ifr), 0);
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        assert_eq!(libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &ifr), 0);
        libc::close(fd);
    }
}

/// The fake upstream: answers every A query with UPSTREAM_ANSWER, except
/// names starting with "silent", which it ignores.
fn fake_upstream(sock: UdpSocket) {
    std::thread::spawn(move || {
        let mut b = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut b) {
            let Ok(q) = dns::parse_query(&b[..n]) else {
                continue;
            };
            if q.labels.first().is_some_and(|l| l.starts_with(b"silent")) {
                continue;
            }
            let r = dns::respond(&q, 0, false, &[Record::Addr(v4(UPSTREAM_ANSWER))], 512);
            let _ = sock.send_to(&r, from);
        }
    });
}

/// Kills the server if the test ends early.
struct Server(libc::pid_t);
impl Drop for Server {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: our own child; reaped right after.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }
}

fn write_table(p: &Path, text: &str) {
    runway::container::state::write_atomic(p, text.as_bytes()).unwrap();
}

/// The body, run only in the re-executed binary inside the new namespace.
#[test]
fn dns_netns_body() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    lo_up();
    let dir = std::env::temp_dir().join(format!("runway-dns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = dir.join("names");
    write_table(
        &table,
        "@network mynet\nweb 10.89.0.2 fd00::2\nwebalias 10.89.0.2\n",
    );
    // An ephemeral port: free in a namespace where nothing else runs.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let up = UdpSocket::bind("127.0.0.2:0").unwrap();
    let upstream = up.local_addr().unwrap();

    // SAFETY: the child only runs the server and _exits; it touches no lock
    // another thread could hold (no other thread exists yet but libtest's).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: the usual death signal, then the server, then _exit.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        let rc = match dns::serve(server.ip(), port, &table, vec![upstream]) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("serve: {e}");
                1
            }
        };
        unsafe { libc::_exit(rc) };
    }
    let mut guard = Server(pid);
    fake_upstream(up);

    // Ready when it answers.
    let t0 = Instant::now();
    let first = loop {
        if let Some(r) = udp_within(server, "web", 1, Duration::from_millis(100)) {
            break r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "server never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(first, (0x4242, 0, vec![v4([10, 89, 0, 2])]));
    assert_eq!(
        udp(server, "WEB.MyNet", 1).unwrap().2,
        vec![v4([10, 89, 0, 2])]
    );
    assert_eq!(
        udp(server, "webalias.mynet", 1).unwrap().2,
        vec![v4([10, 89, 0, 2])]
    );
    assert_eq!(
        udp(server, "web", 28).unwrap().2,
        vec!["fd00::2".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(udp(server, "nope", 1).unwrap().1, 3, "NXDOMAIN");
    assert_eq!(udp(server, "nope.mynet", 1).unwrap().1, 3, "NXDOMAIN");
    assert_eq!(
        tcp(server, "web.mynet", 1),
        (8, 0, vec![v4([10, 89, 0, 2])])
    );
    assert_eq!(tcp(server, "nope", 1).1, 3);

    // Relayed: the upstream's answer, with the client's id.
    assert_eq!(
        udp(server, "example.org", 1).unwrap(),
        (0x4242, 0, vec![v4(UPSTREAM_ANSWER)])
    );
    assert_eq!(
        tcp(server, "example.org", 1),
        (8, 0, vec![v4(UPSTREAM_ANSWER)])
    );
    let t = Instant::now();
    assert_eq!(
        udp(server, "silent.example.org", 1).unwrap().1,
        2,
        "SERVFAIL"
    );
    assert!(t.elapsed() >= dns::UPSTREAM_TIMEOUT);

    // A rewritten table is served within a moment.
    write_table(&table, "@network mynet\nnewbie 10.89.0.9\n");
    let t = Instant::now();
    while udp(server, "newbie", 1).unwrap().2.is_empty() {
        assert!(t.elapsed() < Duration::from_secs(5), "table never reloaded");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        udp(server, "newbie.mynet", 1).unwrap().2,
        vec![v4([10, 89, 0, 9])]
    );
    assert_eq!(udp(server, "web", 1).unwrap().1, 3, "gone after the reload");

    // A name asked for right after the file names it: answered at once,
    // not after the next periodic reload (a container started just after
    // another asks for it within milliseconds). Three times, so that a
    // periodic reload landing in between cannot pass it by luck.
    for i in 0..3u8 {
        let name = format!("fresh{i}");
        write_table(
            &table,
            &format!(
                "@network mynet\nnewbie 10.89.0.9\n{name} 10.89.0.{}\n",
                20 + i
            ),
        );
        assert_eq!(
            udp(server, &name, 1).unwrap(),
            (0x4242, 0, vec![v4([10, 89, 0, 20 + i])]),
            "{name} right after the write"
        );
    }

    dig_and_nslookup(server);
    client_views(server, &table);

    // SIGTERM: a clean exit.
    let mut status = 0;
    // SAFETY: our own child.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
    }
    guard.0 = 0;
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status:#x}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Per-client views: a name in an `@client 127.0.0.2` section answers a
/// query from 127.0.0.2 only; 127.0.0.1 sees the global names (NXDOMAIN
/// for the single label, the dotted name relayed upstream). Over UDP and
/// TCP, PTR too.
fn client_views(server: SocketAddr, table: &Path) {
    let one = v4([127, 0, 0, 1]);
    let two = v4([127, 0, 0, 2]);
    write_table(
        table,
        "@network neta\nx 10.89.0.2\nshared 10.89.0.5\n\
         @client 127.0.0.2 10.89.0.2\ny 10.89.1.3\ny.netb 10.89.1.3\nshared 10.89.1.5\n",
    );
    let t = Instant::now();
    let wait = Duration::from_secs(5);
    while udp_from(two, server, "y", 1, wait).unwrap().2.is_empty() {
        assert!(t.elapsed() < Duration::from_secs(5), "table never reloaded");
        std::thread::sleep(Duration::from_millis(50));
    }
    let y = vec![v4([10, 89, 1, 3])];
    assert_eq!(udp_from(two, server, "y", 1, wait).unwrap().2, y);
    assert_eq!(udp_from(two, server, "Y.netb", 1, wait).unwrap().2, y);
    assert_eq!(tcp_from(two, server, "y.netb", 1), (8, 0, y.clone()));
    assert_eq!(
        udp_from(two, server, "shared", 1, wait).unwrap().2,
        vec![v4([10, 89, 1, 5])],
        "the view before the global names"
    );
    assert_eq!(
        udp_from(two, server, "x.neta", 1, wait).unwrap().2,
        vec![v4([10, 89, 0, 2])],
        "global names still seen"
    );
    // The other client: none of it.
    assert_eq!(
        udp_from(one, server, "y", 1, wait).unwrap().1,
        3,
        "NXDOMAIN"
    );
    assert_eq!(tcp_from(one, server, "y", 1).1, 3, "NXDOMAIN");
    assert_eq!(
        udp_from(one, server, "y.netb", 1, wait).unwrap(),
        (0x4242, 0, vec![v4(UPSTREAM_ANSWER)]),
        "not ours for this client: relayed"
    );
    assert_eq!(
        udp_from(one, server, "shared", 1, wait).unwrap().2,
        vec![v4([10, 89, 0, 5])]
    );
    // PTR: the view's dotted name for its client, relayed for the other
    // (the fake upstream answers A records only, whatever the type).
    let ptr = |src| {
        let s = UdpSocket::bind(SocketAddr::new(src, 0)).unwrap();
        s.set_read_timeout(Some(wait)).unwrap();
        s.send_to(&query(9, "3.1.89.10.in-addr.arpa", 12), server)
            .unwrap();
        let mut b = [0u8; 1500];
        let n = s.recv(&mut b).unwrap();
        let r = b[..n].to_vec();
        let (_, mut p) = dns::read_name(&r, 12).unwrap();
        p += 4;
        let (_, q) = dns::read_name(&r, p).unwrap();
        let ty = u16::from_be_bytes([r[q], r[q + 1]]);
        if ty != 12 {
            return format!("type {ty}");
        }
        let (labels, _) = dns::read_name(&r, q + 10).unwrap();
        labels
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
            .join(".")
    };
    assert_eq!(ptr(two), "y.netb");
    assert_eq!(ptr(one), "type 1", "relayed to the fake upstream");
}

/// Debian's dig and nslookup, if installed, against our server (loopback
/// in this namespace only).
fn dig_and_nslookup(server: SocketAddr) {
    let port = server.port().to_string();
    match Command::new("dig")
        .args([
            "+short",
            "+tries=1",
            "+time=3",
            "-p",
            &port,
            "@127.0.0.1",
            "newbie.mynet",
        ])
        .output()
    {
        Ok(o) => assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "10.89.0.9"),
        Err(_) => common::note("skipped: dns_in_a_namespace: dig: not installed"),
    }
    if let Ok(o) = Command::new("dig")
        .args([
            "+tcp",
            "+short",
            "+tries=1",
            "+time=3",
            "-p",
            &port,
            "@127.0.0.1",
            "newbie",
        ])
        .output()
    {
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "10.89.0.9");
    }
    match Command::new("nslookup")
        .args([&format!("-port={port}"), "newbie", "127.0.0.1"])
        .output()
    {
        Ok(o) => assert!(String::from_utf8_lossy(&o.stdout).contains("10.89.0.9")),
        Err(_) => common::note("skipped: dns_in_a_namespace: nslookup: not installed"),
    }
}

#[test]
fn dns_in_a_namespace() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "dns_netns_body",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, "1");
    // SAFETY: unshare(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            common::skip(&format!("cannot make a network namespace: {e}"));
            return;
        }
    };
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "namespace body failed:\n{out}\n{err}");
    assert!(out.contains("test dns_netns_body ... ok"), "{out}");
    for l in err.lines().filter(|l| l.starts_with("skipped:")) {
        common::note(l);
    }
}
