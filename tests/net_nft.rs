#![cfg(feature = "full")]
//! net::nft against the kernel, each test inside a network namespace it
//! makes (a thread that unshares CLONE_NEWNET: the namespace dies with the
//! thread). Debian's `nft` reads the ruleset back to check; runway itself
//! never needs it.

use runway::net::nft::{self, Batch, Net4, Nft, Proto, TABLE};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::Command;

fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Runs `f` in a fresh network namespace on its own thread; a panic
/// there fails the test.
fn in_netns<F: FnOnce() + Send + 'static>(f: F) {
    let h = std::thread::spawn(move || {
        // SAFETY: unshare(2) of this thread's network namespace only.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        f()
    });
    if let Err(e) = h.join() {
        std::panic::resume_unwind(e);
    }
}

fn have_nft() -> bool {
    Command::new("nft")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn nft_cmd(args: &[&str]) -> String {
    let o = Command::new("nft").args(args).output().expect("nft");
    assert!(
        o.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn subnet() -> Net4 {
    Net4::new(Ipv4Addr::new(10, 99, 0, 0), 24)
}

/// The rules of the brief, in their chains.
fn full_batch() -> Batch {
    let ctr = Ipv4Addr::new(10, 99, 0, 2);
    let mut b = Batch::new();
    b.skeleton(TABLE);
    b.push(nft::new_chain(TABLE, "net-rw0"));
    b.push(nft::new_chain(TABLE, "ports-abc"));
    b.push(nft::new_rule(
        TABLE,
        "postrouting",
        &nft::masquerade_rule(subnet(), "rw0"),
    ));
    b.push(nft::new_rule(
        TABLE,
        "postrouting",
        &nft::hairpin_rule(subnet(), Proto::Tcp, ctr, 80),
    ));
    b.push(nft::new_rule(TABLE, "forward", &nft::jump_rule("net-rw0")));
    b.push(nft::new_rule(
        TABLE,
        "net-rw0",
        &nft::isolate_rule("rw0", "rw1"),
    ));
    b.push(nft::new_rule(
        TABLE,
        "net-rw0",
        &nft::forward_to_rule("rw0"),
    ));
    b.push(nft::new_rule(
        TABLE,
        "net-rw0",
        &nft::forward_from_rule("rw0"),
    ));
    b.push(nft::new_rule(
        TABLE,
        "prerouting",
        &nft::jump_rule("ports-abc"),
    ));
    b.push(nft::new_rule(
        TABLE,
        "ports-abc",
        &nft::dnat_rule(Proto::Tcp, 8080, None, ctr, 80),
    ));
    b.push(nft::new_rule(
        TABLE,
        "ports-abc",
        &nft::dnat_rule(Proto::Udp, 5353, Some(Ipv4Addr::new(192, 0, 2, 1)), ctr, 53),
    ));
    b.push(nft::new_rule(
        TABLE,
        "output",
        &nft::dnat_rule(Proto::Tcp, 8080, None, ctr, 80),
    ));
    b
}

#[test]
fn rules_apply_read_back_and_go_leaving_other_tables() {
    in_netns(|| {
        let nft_bin = have_nft();
        if nft_bin {
            nft_cmd(&["add", "table", "ip", "other"]);
            nft_cmd(&["add", "chain", "ip", "other", "c"]);
        } else {
            note("skipped: rules_apply_read_back_and_go_leaving_other_tables: nft absent, checking through our own dump only");
        }
        let mut n = Nft::open().unwrap();
        let added = n.apply(&full_batch()).unwrap();
        assert_eq!(added.len(), 10, "{added:?}");
        assert!(added.iter().all(|r| r.handle > 0 && r.table == TABLE));
        let post = n.list_rules(TABLE, "postrouting").unwrap();
        assert_eq!(post, added[..2].to_vec());
        assert_eq!(n.list_rules(TABLE, "ports-abc").unwrap().len(), 2);

        // Applying the skeleton again is harmless (create, not exclusive).
        let mut again = Batch::new();
        again.skeleton(TABLE);
        n.apply(&again).unwrap();
        assert_eq!(n.list_rules(TABLE, "postrouting").unwrap().len(), 2);

        if nft_bin {
            let text = nft_cmd(&["list", "table", "inet", TABLE]);
            for want in [
                "type nat hook prerouting priority dstnat; policy accept;",
                "type nat hook output priority -100; policy accept;",
                "type nat hook postrouting priority srcnat; policy accept;",
                "type filter hook forward priority filter; policy accept;",
                "ip saddr 10.99.0.0/24 ip daddr != 10.99.0.0/24 oifname != \"rw0\"",
                "masquerade",
                "ip saddr 10.99.0.0/24 ip daddr 10.99.0.2 tcp dport 80",
                "jump net-rw0",
                "iifname \"rw0\" oifname \"rw1\"",
                "oifname \"rw0\" ct state established,related",
                "iifname \"rw0\"",
                "tcp dport 8080",
                "dnat ip to 10.99.0.2:80",
                "udp dport 5353 ip daddr 192.0.2.1",
                "dnat ip to 10.99.0.2:53",
                "fib daddr type local tcp dport 8080",
            ] {
                assert!(text.contains(want), "missing {want:?} in\n{text}");
            }
            let json: serde_json::Value =
                serde_json::from_str(&nft_cmd(&["-j", "list", "ruleset"])).unwrap();
            let items = json["nftables"].as_array().unwrap();
            let chains: Vec<_> = items
                .iter()
                .filter_map(|i| i.get("chain"))
                .filter(|c| c["table"] == TABLE)
                .collect();
            assert_eq!(chains.len(), 6, "{chains:?}");
            let pre = chains.iter().find(|c| c["name"] == "prerouting").unwrap();
            assert_eq!(pre["family"], "inet");
            assert_eq!(pre["type"], "nat");
            assert_eq!(pre["hook"], "prerouting");
            assert_eq!(pre["prio"], -100);
            let rules: Vec<_> = items
                .iter()
                .filter_map(|i| i.get("rule"))
                .filter(|r| r["table"] == TABLE)
                .collect();
            assert_eq!(rules.len(), 10);
            // Handles agree with the echoes.
            for a in &added {
                assert!(
                    rules
                        .iter()
                        .any(|r| r["chain"] == a.chain.as_str() && r["handle"] == a.handle),
                    "{a:?} not in {rules:?}"
                );
            }
            let masq = rules
                .iter()
                .find(|r| r["handle"] == added[0].handle)
                .unwrap();
            let s = masq["expr"].to_string();
            assert!(s.contains("\"masquerade\""), "{s}");
            assert!(
                s.contains("\"prefix\":{\"addr\":\"10.99.0.0\",\"len\":24}"),
                "{s}"
            );
        }

        // Delete one rule by its handle.
        let mut d = Batch::new();
        d.push(nft::del_rule(TABLE, "postrouting", added[0].handle));
        n.apply(&d).unwrap();
        assert_eq!(
            n.list_rules(TABLE, "postrouting").unwrap(),
            added[1..2].to_vec()
        );
        // Flush a chain.
        let mut f = Batch::new();
        f.push(nft::flush_chain(TABLE, "ports-abc"));
        n.apply(&f).unwrap();
        assert!(n.list_rules(TABLE, "ports-abc").unwrap().is_empty());
        // A chain still jumped to cannot go; with its jump gone, it can.
        let mut dc = Batch::new();
        dc.push(nft::del_chain(TABLE, "ports-abc"));
        let e = n.apply(&dc).unwrap_err().to_string();
        assert_eq!(e, "delete chain runway/ports-abc: device or resource busy");
        let mut dc = Batch::new();
        assert_eq!(added[6].chain, "prerouting");
        dc.push(nft::del_rule(TABLE, "prerouting", added[6].handle));
        dc.push(nft::del_chain(TABLE, "ports-abc"));
        n.apply(&dc).unwrap();

        // The table goes with everything in it; others stay.
        n.remove_table(TABLE).unwrap();
        n.remove_table(TABLE).unwrap(); // absent is fine
        assert!(!n.list_tables().unwrap().iter().any(|t| t == TABLE));
        if nft_bin {
            let rs = nft_cmd(&["list", "ruleset"]);
            assert!(!rs.contains(TABLE), "{rs}");
            assert!(rs.contains("table ip other"), "{rs}");
            assert!(rs.contains("chain c"), "{rs}");
        }
    });
}

#[test]
fn a_failed_batch_applies_nothing_and_names_the_object() {
    in_netns(|| {
        let mut n = Nft::open().unwrap();
        let mut b = Batch::new();
        b.skeleton(TABLE);
        b.push(nft::new_rule(
            TABLE,
            "postrouting",
            &nft::masquerade_rule(subnet(), "rw0"),
        ));
        b.push(nft::new_rule(TABLE, "nosuch", &nft::jump_rule("x")));
        let e = n.apply(&b).unwrap_err().to_string();
        assert_eq!(e, "add rule to runway/nosuch: no such file or directory");
        // All or nothing: not even the table was made.
        assert!(n.list_tables().unwrap().is_empty());

        let mut t = Batch::new();
        t.skeleton(TABLE);
        n.apply(&t).unwrap();
        let mut d = Batch::new();
        d.push(nft::del_rule(TABLE, "postrouting", 4242));
        let e = n.apply(&d).unwrap_err().to_string();
        assert_eq!(
            e,
            "delete rule from runway/postrouting: no such file or directory"
        );
        // A dump filters: an unknown chain has no rules.
        assert!(n.list_rules(TABLE, "nochain").unwrap().is_empty());
        n.remove_table(TABLE).unwrap();
    });
}

/// A process holding a network namespace of its own (`unshare -n sleep`),
/// killed and reaped on drop.
struct Ns(std::process::Child);

impl Ns {
    fn new() -> Ns {
        let me = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        let c = Command::new("unshare")
            .args(["-n", "sleep", "60"])
            .spawn()
            .expect("unshare");
        let ns = Ns(c);
        for _ in 0..200 {
            if let Ok(l) = std::fs::read_link(format!("/proc/{}/ns/net", ns.pid())) {
                if l != me {
                    return ns;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("unshare -n did not make a namespace");
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn ip(&self, args: &str) {
        let pid = self.pid().to_string();
        let mut a = vec!["-t", &pid, "-n", "ip"];
        a.extend(args.split_whitespace());
        run("nsenter", &a);
    }

    /// Runs `f` on a thread that joined this namespace.
    fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/proc/{}/ns/net", self.pid());
        std::thread::spawn(move || {
            let fd = std::fs::File::open(path).unwrap();
            // SAFETY: setns(2) of this thread only, on a namespace fd.
            let rc =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&fd), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let o = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Accepts one connection on `addr` and answers with the peer's address.
fn serve_peer(addr: &str) -> std::net::TcpListener {
    std::net::TcpListener::bind(addr).unwrap()
}

fn answer_one(l: std::net::TcpListener) {
    // Bounded: a connection that never comes must not leave the thread.
    l.set_nonblocking(true).unwrap();
    for _ in 0..600 {
        match l.accept() {
            Ok((mut s, peer)) => {
                s.set_nonblocking(false).unwrap();
                let _ = s.write_all(peer.ip().to_string().as_bytes());
                return;
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

fn ask(to: &str) -> String {
    use std::io::Read;
    let addr: std::net::SocketAddr = to.parse().unwrap();
    let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {to}: {e}"));
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn dnat_and_masquerade_carry_traffic() {
    if Command::new("ip").arg("-V").output().is_err()
        || Command::new("nsenter").arg("-V").output().is_err()
    {
        note("skipped: dnat_and_masquerade_carry_traffic: ip or nsenter absent");
        return;
    }
    in_netns(|| {
        // This thread is the router R; C plays a container on the bridge
        // side (10.99.0.2), O the outside world (192.0.2.2).
        let links = String::from_utf8(
            Command::new("ip")
                .args(["-o", "link"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert_eq!(links.lines().count(), 1, "not a fresh namespace: {links}");
        let c = Ns::new();
        let o = Ns::new();
        let cp = c.pid().to_string();
        let op = o.pid().to_string();
        run(
            "ip",
            &[
                "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", &cp,
            ],
        );
        run(
            "ip",
            &[
                "link", "add", "o0", "type", "veth", "peer", "name", "o1", "netns", &op,
            ],
        );
        run("ip", &["addr", "add", "10.99.0.1/24", "dev", "v0"]);
        run("ip", &["addr", "add", "192.0.2.1/24", "dev", "o0"]);
        for l in ["lo", "v0", "o0"] {
            run("ip", &["link", "set", l, "up"]);
        }
        // The router's own forwarding switch (a child process: this
        // thread's namespace, never the machine's).
        run("sh", &["-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
        c.ip("addr add 10.99.0.2/24 dev v1");
        c.ip("link set v1 up");
        c.ip("link set lo up");
        c.ip("route add default via 10.99.0.1");
        o.ip("addr add 192.0.2.2/24 dev o1");
        o.ip("link set o1 up");
        o.ip("link set lo up");
        // O has no route to 10.99.0.0/24: only a masquerade gets replies back.

        let mut n = Nft::open().unwrap();
        let mut b = Batch::new();
        b.skeleton(TABLE);
        b.push(nft::new_rule(
            TABLE,
            "postrouting",
            &nft::masquerade_rule(subnet(), "v0"),
        ));
        b.push(nft::new_rule(
            TABLE,
            "prerouting",
            &nft::dnat_rule(Proto::Tcp, 8080, None, Ipv4Addr::new(10, 99, 0, 2), 80),
        ));
        b.push(nft::new_rule(
            TABLE,
            "output",
            &nft::dnat_rule(Proto::Tcp, 8080, None, Ipv4Addr::new(10, 99, 0, 2), 80),
        ));
        b.push(nft::new_rule(
            TABLE,
            "postrouting",
            &nft::hairpin_rule(subnet(), Proto::Tcp, Ipv4Addr::new(10, 99, 0, 2), 80),
        ));
        b.push(nft::new_rule(TABLE, "forward", &nft::forward_to_rule("v0")));
        b.push(nft::new_rule(
            TABLE,
            "forward",
            &nft::forward_into_rule("v0"),
        ));
        b.push(nft::new_rule(
            TABLE,
            "forward",
            &nft::forward_from_rule("v0"),
        ));
        n.apply(&b).unwrap();

        // Outside → R:8080 → DNAT → C:80; C sees the outside's address.
        let srv = c.spawn(|| answer_one(serve_peer("10.99.0.2:80")));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let seen = o.spawn(|| ask("192.0.2.1:8080")).join().unwrap();
        srv.join().unwrap();
        assert_eq!(seen, "192.0.2.2");

        // C → outside: masqueraded to the router's address.
        let srv = o.spawn(|| answer_one(serve_peer("192.0.2.2:80")));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let seen = c.spawn(|| ask("192.0.2.2:80")).join().unwrap();
        srv.join().unwrap();
        assert_eq!(seen, "192.0.2.1");

        // The router itself → its own address:8080 (output DNAT).
        let srv = c.spawn(|| answer_one(serve_peer("10.99.0.2:80")));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let seen = ask("192.0.2.1:8080");
        srv.join().unwrap();
        assert_eq!(seen, "192.0.2.1");

        // Hairpin: C → the host's address:8080 → back to C, answered
        // through the router.
        let srv = c.spawn(|| answer_one(serve_peer("10.99.0.2:80")));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let seen = c.spawn(|| ask("192.0.2.1:8080")).join().unwrap();
        srv.join().unwrap();
        assert_eq!(seen, "10.99.0.1");

        // A connection to port 8080 elsewhere is not captured.
        let srv = o.spawn(|| answer_one(serve_peer("192.0.2.2:8080")));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let seen = c.spawn(|| ask("192.0.2.2:8080")).join().unwrap();
        srv.join().unwrap();
        assert_eq!(seen, "192.0.2.1");
        n.remove_table(TABLE).unwrap();
    });
}
