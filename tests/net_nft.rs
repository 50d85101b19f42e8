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
        &nft::dnat_rule(Proto::Tcp, 8080, None, ctr, 80, false),
    ));
    b.push(nft::new_rule(
        TABLE,
        "ports-abc",
        &nft::dnat_rule(
            Proto::Udp,
            5353,
            Some(Ipv4Addr::new(192, 0, 2, 1)),
            ctr,
            53,
            false,
        ),
    ));
    b.push(nft::new_rule(
        TABLE,
        "output",
        &nft::dnat_rule(Proto::Tcp, 8080, None, ctr, 80, true),
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
