//! Container networks end to end (issue 17's "Must show"): runway's
//! bridge networks, NAT, published ports, isolation and name resolution,
//! and the same reachability matrix with podman + netavark + aardvark-dns
//! beside it (runway must do at least what podman does).
//!
//! Every test builds its own world (tests/networks/world.rs): a "host"
//! network namespace and an "outside" one, each held by a process the test
//! starts, joined by a veth pair (192.0.2.1 host side, 192.0.2.2 outside,
//! no other route). Every runway and podman command runs inside the host
//! namespace (nsenter); the outside runs the test's own TCP server. The
//! test process itself moves into a namespace of its own before main
//! (tests/engines/netns.rs), so nothing, even by mistake, reaches the
//! machine's network. On drop: every container removed, every network
//! pruned, every process left in the two namespaces killed.
#![cfg(feature = "full")]

mod common;
#[path = "containers/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "engines/netns.rs"]
#[allow(dead_code)]
mod netns;
#[path = "networks/world.rs"]
mod world;

use common::oci::{busybox_entries, Compress, Entry, Image, Layer};
use common::{note, Out};
use harness::{podman_with, poll, run_cmd, Pm, Rw, TIMEOUT};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use world::{http_get, in_ns, udp_ask, World, HOST_IP, OUTSIDE_IP, OUTSIDE_PORT};

const IMAGE: &str = "nettest";
/// A client that stays up.
const SLEEP: &[&str] = &["sleep", "1000"];

/// busybox plus the network applets and /www for httpd; Cmd ["sh"].
fn image() -> Image {
    let mut extra = vec![Entry::dir("www")];
    for a in ["httpd", "ping", "nslookup", "timeout"] {
        extra.push(Entry::symlink(&format!("bin/{a}"), "busybox"));
    }
    Image::new(vec![
        Layer::new(Compress::Gzip, busybox_entries()),
        Layer::new(Compress::Gzip, extra),
    ])
}

/// An httpd on port 80 whose page is `name`.
fn httpd(name: &str) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("echo {name} >/www/index.html && exec httpd -f -p 80 -h /www"),
    ]
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Runway,
    Podman,
}

/// One engine in one world. Fields drop in order: podman's storage first,
/// then the world (its namespaces), then runway's dirs.
struct Side {
    kind: Kind,
    pm: Option<Pm>,
    w: World,
    rw: Rw,
    scratch: PathBuf,
    /// podman's network namespace files (/run/netns/…), checked on drop.
    sandboxes: Vec<String>,
}

impl Side {
    /// None (after a `skipped:` line) when the world or podman is unusable.
    fn new(kind: Kind, test: &str) -> Option<Side> {
        if let Some(why) = netns::unavailable() {
            common::skip(&why);
            return None;
        }
        let w = match World::new() {
            Ok(w) => w,
            Err(e) => {
                common::skip(&format!("no test network world: {e}"));
                return None;
            }
        };
        let rw = Rw::new(test);
        let layout = rw.import(&image(), IMAGE);
        let pm = match kind {
            Kind::Runway => None,
            Kind::Podman => {
                if !std::path::Path::new("/usr/lib/podman/netavark").exists() {
                    common::skip("podman half: no netavark in /usr/lib/podman");
                    return None;
                }
                let pm = podman_with(&rw, &[(&layout, IMAGE)])?;
                // netavark (not CNI), its network configs in this test's
                // dir; aardvark-dns is found in helper_binaries_dir's
                // default (/usr/lib/podman).
                let conf = rw.path("podman/containers.conf");
                let mut text = fs::read_to_string(&conf).unwrap();
                text.push_str(&format!(
                    "[network]\nnetwork_backend = \"netavark\"\nnetwork_config_dir = \"{}\"\n",
                    rw.path("podman/networks").display()
                ));
                fs::create_dir_all(rw.path("podman/networks")).unwrap();
                fs::write(&conf, text).unwrap();
                Some(pm)
            }
        };
        let scratch = rw.path("scratch");
        Some(Side {
            kind,
            pm,
            w,
            rw,
            scratch,
            sandboxes: Vec::new(),
        })
    }

    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Runway => "runway",
            Kind::Podman => "podman",
        }
    }

    /// The engine's command line `args`, in the host namespace.
    fn cli(&self, args: &[&str]) -> Out {
        let cmd = match &self.pm {
            Some(pm) => pm.command(args),
            None => self.rw.command(args),
        };
        let o = run_cmd(self.w.wrap(cmd), &self.scratch, TIMEOUT);
        if self.kind == Kind::Runway {
            self.rw.note_ids();
        }
        o
    }

    fn ok(&self, args: &[&str]) -> Out {
        let o = self.cli(args);
        assert!(o.code == 0, "{}: expected success:\n{o}", self.name());
        o
    }

    /// A container verb: `container VERB` (runway) or `VERB` (podman).
    fn verb(&self, verb: &'static str) -> Vec<&'static str> {
        match self.kind {
            Kind::Runway => vec!["container", verb],
            Kind::Podman => vec![verb],
        }
    }

    fn image(&self) -> &'static str {
        match self.kind {
            Kind::Runway => IMAGE,
            Kind::Podman => "localhost/nettest",
        }
    }

    /// `run -d --name NAME FLAGS IMAGE CMD`.
    fn run_d(&self, name: &str, flags: &[&str], cmd: &[String]) -> Out {
        let mut a = self.verb("run");
        a.extend(["-d", "--name", name]);
        a.extend_from_slice(flags);
        a.push(self.image());
        a.extend(cmd.iter().map(String::as_str));
        self.cli(&a)
    }

    fn exec(&self, name: &str, script: &str) -> Out {
        let mut a = self.verb("exec");
        a.extend([name, "sh", "-c", script]);
        self.cli(&a)
    }

    fn inspect(&self, name: &str) -> Value {
        let mut a = self.verb("inspect");
        a.push(name);
        let o = self.ok(&a);
        let v: Value =
            serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("inspect JSON: {e}\n{o}"));
        v[0].clone()
    }

    fn ip_of(&self, name: &str, net: &str) -> String {
        let v = self.inspect(name);
        let ip = v["NetworkSettings"]["Networks"][net]["IPAddress"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            ip.parse::<std::net::Ipv4Addr>().is_ok(),
            "{}: {name} has no address on {net}: {}",
            self.name(),
            v["NetworkSettings"]
        );
        ip
    }

    /// The container's network namespace, by its init's pid.
    fn netns_of(&mut self, name: &str) -> String {
        let v = self.inspect(name);
        if let Some(k) = v["NetworkSettings"]["SandboxKey"].as_str() {
            if self.kind == Kind::Podman && k.starts_with('/') {
                self.sandboxes.push(k.to_string());
            }
        }
        let pid = v["State"]["Pid"].as_i64().unwrap_or(0);
        assert!(pid > 0, "{}: {name}: no pid: {}", self.name(), v["State"]);
        format!("/proc/{pid}/ns/net")
    }

    /// Removes every container and network of this side.
    fn remove_all(&self) {
        match self.kind {
            Kind::Runway => {
                for id in self.rw.ids() {
                    let _ = self.cli(&["rm", "-f", &id]);
                }
            }
            Kind::Podman => {
                let _ = self.cli(&["rm", "-af", "-t", "0"]);
            }
        }
        let _ = self.cli(&["network", "prune", "-f"]);
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        self.remove_all();
        for s in &self.sandboxes {
            if std::path::Path::new(s).exists() {
                note(&format!("podman left its network namespace {s}"));
                let _ = rustix::mount::unmount(s.as_str(), rustix::mount::UnmountFlags::DETACH);
                let _ = fs::remove_file(s);
            }
        }
        self.w.kill_all();
    }
}

// ------------------------------------------------------------- probes

type Res = Result<(), String>;

/// Retries `f` until Ok or `secs` (servers and DNS start asynchronously).
fn eventually(secs: u64, mut f: impl FnMut() -> Res) -> Res {
    let start = Instant::now();
    loop {
        let r = f();
        if r.is_ok() || start.elapsed() > Duration::from_secs(secs) {
            return r;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `wget URL` inside `from`; Ok when the body contains `want`.
fn wget_has(s: &Side, from: &str, url: &str, want: &str) -> Res {
    let o = s.exec(from, &format!("timeout 3 wget -q -O- {url}"));
    if o.code == 0 && o.stdout.contains(want) {
        Ok(())
    } else {
        Err(format!(
            "{from}: wget {url}: exit {}: {:?} {:?}",
            o.code, o.stdout, o.stderr
        ))
    }
}

/// `wget URL` inside `from` must fail (blocked).
fn wget_blocked(s: &Side, from: &str, url: &str) -> Res {
    let o = s.exec(from, &format!("timeout 3 wget -q -O- {url}"));
    if o.code != 0 && o.stdout.is_empty() {
        Ok(())
    } else {
        Err(format!("{from}: wget {url} got through: {:?}", o.stdout))
    }
}

fn sock(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

/// A GET from the outside (or host) namespace; Ok when the body has `want`.
fn get_has(ns: &fs::File, addr: SocketAddr, want: &str) -> Res {
    let body = http_get(ns, addr, Duration::from_secs(2))?;
    if body.contains(want) {
        Ok(())
    } else {
        Err(format!("{addr}: body {body:?}, wanted {want:?}"))
    }
}

/// The host port `container port NAME` shows for 80/tcp.
fn host_port_80(s: &Side, name: &str) -> Result<u16, String> {
    let mut a = s.verb("port");
    a.push(name);
    let o = s.cli(&a);
    if o.code != 0 {
        return Err(format!("port {name}:\n{o}"));
    }
    o.stdout
        .lines()
        .filter(|l| l.starts_with("80/tcp -> "))
        .find_map(|l| l.rsplit(':').next()?.trim().parse().ok())
        .ok_or_else(|| format!("port {name}: no 80/tcp line:\n{o}"))
}

// ------------------------------------------------------------ the matrix

/// The reachability checks, in order, each Ok when the engine behaves as
/// docker's model says. Both engines get the same world and containers:
/// net1 (alpha: httpd, published 8080; bravo, delta: clients), net2
/// (charlie: httpd, `-p 80`,
/// 5353/udp), `--internal` neti (india), delta connected to net2 as
/// well, foxtrot run on both. The labels say a, b, c, d, i, f.
fn matrix(s: &mut Side) -> Vec<(&'static str, Res)> {
    let img_ok = |o: Out| assert!(o.code == 0, "setup:\n{o}");
    img_ok(s.cli(&["network", "create", "--subnet", "10.91.1.0/24", "net1"]));
    img_ok(s.cli(&["network", "create", "--subnet", "10.91.2.0/24", "net2"]));
    img_ok(s.cli(&[
        "network",
        "create",
        "--subnet",
        "10.91.3.0/24",
        "--internal",
        "neti",
    ]));
    let sleep: Vec<String> = SLEEP.iter().map(|x| x.to_string()).collect();
    img_ok(s.run_d(
        "alpha",
        &["--network", "net1", "-p", "8080:80"],
        &httpd("alpha"),
    ));
    img_ok(s.run_d("bravo", &["--network", "net1"], &sleep));
    img_ok(s.run_d(
        "charlie",
        &["--network", "net2", "-p", "80", "-p", "5353:5353/udp"],
        &httpd("charlie"),
    ));
    img_ok(s.run_d("delta", &["--network", "net1"], &sleep));
    img_ok(s.cli(&["network", "connect", "net2", "delta"]));
    img_ok(s.run_d("india", &["--network", "neti"], &sleep));
    img_ok(s.run_d(
        "foxtrot",
        &["--network", "net1", "--network", "net2"],
        &sleep,
    ));
    let a_ip = s.ip_of("alpha", "net1");
    let c_ip = s.ip_of("charlie", "net2");
    let c_ns = s.netns_of("charlie");
    s.w.udp_echo_in(&c_ns, 5353, "udp-charlie").unwrap();

    let mut r: Vec<(&'static str, Res)> = Vec::new();
    let host = s.w.host_ns().try_clone().unwrap();
    let out = s.w.outside_ns().try_clone().unwrap();
    // Waits for a's httpd (from the host, over the bridge) so that the
    // checks below measure the network, not the start-up.
    let _ = eventually(10, || get_has(&host, sock(&a_ip, 80), "alpha"));
    let _ = eventually(10, || get_has(&host, sock(&c_ip, 80), "charlie"));

    r.push((
        "b reaches a by name",
        eventually(10, || wget_has(s, "bravo", "http://alpha/", "alpha")),
    ));
    r.push((
        "b reaches a by NAME.NETWORK (a.net1)",
        eventually(5, || wget_has(s, "bravo", "http://alpha.net1/", "alpha")),
    ));
    let outside_url = format!("http://{OUTSIDE_IP}:{OUTSIDE_PORT}/");
    r.push((
        "b reaches the outside via NAT (source 192.0.2.1)",
        eventually(5, || {
            wget_has(s, "bravo", &outside_url, &format!("peer={HOST_IP}\n"))
        }),
    ));
    r.push((
        "outside reaches 192.0.2.1:8080 (a)",
        eventually(5, || get_has(&out, sock(HOST_IP, 8080), "alpha")),
    ));
    r.push((
        "host ns reaches 192.0.2.1:8080",
        eventually(5, || get_has(&host, sock(HOST_IP, 8080), "alpha")),
    ));
    r.push((
        "host ns reaches 127.0.0.1:8080",
        eventually(5, || get_has(&host, sock("127.0.0.1", 8080), "alpha")),
    ));
    r.push((
        "b reaches 192.0.2.1:8080 (hairpin)",
        eventually(5, || {
            wget_has(s, "bravo", &format!("http://{HOST_IP}:8080/"), "alpha")
        }),
    ));
    let p = host_port_80(s, "charlie");
    r.push((
        "-p 80 gets a host port in 30000-32767",
        match &p {
            Ok(p) if (30000..=32767).contains(p) => Ok(()),
            Ok(p) => Err(format!("host port {p}")),
            Err(e) => Err(e.clone()),
        },
    ));
    r.push((
        "outside reaches c's -p 80 port",
        match p {
            Ok(p) => eventually(5, || get_has(&out, sock(HOST_IP, p), "charlie")),
            Err(e) => Err(e),
        },
    ));
    r.push((
        "outside reaches 192.0.2.1:5353/udp (c)",
        eventually(5, || {
            let got = udp_ask(&out, sock(HOST_IP, 5353), "ping", Duration::from_secs(1))?;
            if got.starts_with("udp-charlie ") && got.ends_with("got=ping") {
                Ok(())
            } else {
                Err(format!("answer {got:?}"))
            }
        }),
    ));
    r.push(("--internal i cannot get out", {
        // Only meaningful if i has its address at all.
        let o = s.exec("india", "ip -4 -o addr show");
        if !o.stdout.contains("10.91.3.") {
            Err(format!("i has no address on neti:\n{o}"))
        } else {
            wget_blocked(s, "india", &outside_url)
        }
    }));
    r.push((
        "net1 and net2 cannot reach each other",
        wget_blocked(s, "bravo", &format!("http://{c_ip}/"))
            .and_then(|_| wget_blocked(s, "charlie", &format!("http://{a_ip}/"))),
    ));
    r.push((
        "c (net2) reaches a's published 192.0.2.1:8080",
        eventually(5, || {
            wget_has(s, "charlie", &format!("http://{HOST_IP}:8080/"), "alpha")
        }),
    ));
    r.push((
        "d on both reaches both by address",
        eventually(5, || {
            wget_has(s, "delta", &format!("http://{a_ip}/"), "alpha")?;
            wget_has(s, "delta", &format!("http://{c_ip}/"), "charlie")
        }),
    ));
    // With the container's resolv.conf in the message when it fails.
    let both_names = |who: &str| {
        eventually(5, || {
            wget_has(s, who, "http://alpha/", "alpha")?;
            wget_has(s, who, "http://charlie/", "charlie")
        })
        .map_err(|e| {
            // Each of its nameservers asked directly, for the report.
            let o = s.exec(
                who,
                "cat /etc/resolv.conf; for ns in $(awk '/^nameserver/{print $2}' /etc/resolv.conf); \
                 do echo \"== $ns\"; timeout 5 nslookup charlie $ns 2>&1 | tail -n +3; done",
            );
            format!("{e}; resolv.conf and answers: {:?}", o.stdout)
        })
    };
    r.push((
        "d on both (connect) resolves names on both",
        both_names("delta"),
    ));
    r.push((
        "f on both (two --network) reaches both by address",
        eventually(5, || {
            wget_has(s, "foxtrot", &format!("http://{a_ip}/"), "alpha")?;
            wget_has(s, "foxtrot", &format!("http://{c_ip}/"), "charlie")
        }),
    ));
    r.push((
        "f on both (two --network) resolves names on both",
        both_names("foxtrot"),
    ));
    let rm = s.cli(&["rm", "-f", "alpha"]);
    r.push((
        "a's name stops resolving after rm",
        if rm.code != 0 {
            Err(format!("rm -f alpha:\n{rm}"))
        } else {
            // busybox ping prints "PING NAME (ADDR)" once the name
            // resolved. A name that is not local goes to the upstream
            // resolvers, which this world cannot reach: podman's aardvark
            // then answers only after its own timeouts, so each lookup is
            // bounded and a timeout counts as "does not resolve".
            eventually(5, || {
                let o = s.exec(
                    "bravo",
                    "for n in alpha.net1 alpha; do timeout 5 ping -c1 -W1 $n; done; echo checked",
                );
                if o.stdout.contains("checked") && !o.stdout.contains("PING ") {
                    Ok(())
                } else {
                    Err(format!("after rm:\n{o}"))
                }
            })
        },
    ));
    r
}

fn table(rows: &[(&str, Vec<(&'static str, Res)>)]) -> String {
    let mut t = String::new();
    let names: Vec<&str> = rows[0].1.iter().map(|(n, _)| *n).collect();
    t.push_str(&format!("{:<52}", "check"));
    for (side, _) in rows {
        t.push_str(&format!(" {side:<8}"));
    }
    t.push('\n');
    for (i, n) in names.iter().enumerate() {
        t.push_str(&format!("{n:<52}"));
        for (_, res) in rows {
            let mark = match res.get(i) {
                Some((_, Ok(()))) => "yes",
                Some((_, Err(_))) => "NO",
                None => "-",
            };
            t.push_str(&format!(" {mark:<8}"));
        }
        t.push('\n');
    }
    t
}

fn failures(side: &str, res: &[(&'static str, Res)]) -> String {
    res.iter()
        .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("  {side}: {n}: {e}\n")))
        .collect()
}

/// The reachability matrix: podman + netavark first (in its own world),
/// then runway; every check must pass for runway, and runway must pass
/// every check podman passes (runway may do more: NAME.NETWORK, 127.0.0.1,
/// the 30000-32767 range).
#[test]
fn reachability_matrix_runway_covers_podman() {
    let mut rows: Vec<(&str, Vec<(&'static str, Res)>)> = Vec::new();
    if std::env::var_os("RUNWAY_NET_ONLY_RUNWAY").is_none() {
        if let Some(mut pm) = Side::new(Kind::Podman, "matrix-pm") {
            let res = matrix(&mut pm);
            drop(pm);
            rows.push(("podman", res));
        }
    }
    if std::env::var_os("RUNWAY_NET_ONLY_PODMAN").is_none() {
        let Some(mut rw) = Side::new(Kind::Runway, "matrix-rw") else {
            return;
        };
        let res = matrix(&mut rw);
        rw.remove_all();
        final_checks(&rw);
        drop(rw);
        rows.push(("runway", res));
    }
    if rows.is_empty() {
        return;
    }
    let mut report = table(&rows);
    for (side, res) in &rows {
        report.push_str(&failures(side, res));
    }
    note(&format!("reachability matrix:\n{report}"));
    let by: BTreeMap<&str, &Vec<(&'static str, Res)>> = rows.iter().map(|(s, r)| (*s, r)).collect();
    if let Some(rw) = by.get("runway") {
        let failed: Vec<&str> = rw
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(n, _)| *n)
            .collect();
        if let Some(pm) = by.get("podman") {
            let pm_ok: BTreeSet<&str> = pm
                .iter()
                .filter(|(_, r)| r.is_ok())
                .map(|(n, _)| *n)
                .collect();
            let missing: Vec<&&str> = failed.iter().filter(|n| pm_ok.contains(**n)).collect();
            assert!(
                missing.is_empty(),
                "podman does but runway does not: {missing:?}\n{report}"
            );
        }
        assert!(failed.is_empty(), "runway fails: {failed:?}\n{report}");
    }
}

// --------------------------------------------------- leftovers and errors

/// What the host namespace and the data root hold that a failed command
/// must not change.
fn snapshot(s: &Side) -> String {
    let links = s.w.host_tool("ip", &["-o", "link"]).unwrap_or_else(|e| e);
    let mut links: Vec<String> = links
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
        .collect();
    links.sort();
    let nft =
        s.w.host_tool("nft", &["list", "ruleset"])
            .unwrap_or_else(|e| e);
    let mut leases = String::new();
    for n in fs::read_dir(s.rw.data.join("networks"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if !n.path().is_dir() {
            continue;
        }
        let l = runway::net::ipam::leases(&n.path()).map(|l| format!("{l:?}"));
        leases.push_str(&format!("{:?}: {l:?}\n", n.file_name()));
    }
    let mut procs: Vec<String> = s.w.processes().into_iter().map(|(_, c)| c).collect();
    procs.sort();
    let nets = s.cli(&["network", "ls"]).stdout;
    let netns: Vec<_> = fs::read_dir(s.rw.root.join("netns"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    format!(
        "links {links:?}\nnft:\n{nft}\nleases:\n{leases}\nprocesses {procs:#?}\nnetworks:\n{nets}\nnetns {netns:?}\ncontainers {:?}\n",
        s.rw.ids()
    )
}

/// After every container and network is gone: no veth or runway bridge,
/// no rule (at most an empty `table inet runway`), empty leases, no
/// process (DNS, monitor) in the host namespace, nothing under ROOT/netns,
/// and the harness's own checks (dirs, mounts, cgroups).
fn final_checks(s: &Side) {
    let mut why = Vec::new();
    let ok = poll(Duration::from_secs(5), || {
        why.clear();
        let links =
            s.w.host_tool("ip", &["-d", "-o", "link"])
                .unwrap_or_else(|e| e);
        for l in links.lines() {
            let name = l.split(':').nth(1).unwrap_or("").trim();
            let name = name.split('@').next().unwrap_or(name);
            if name != "lo" && name != "wh0" {
                why.push(format!("link left: {l}"));
            }
        }
        let nft =
            s.w.host_tool("nft", &["list", "ruleset"])
                .unwrap_or_else(|e| e);
        let mut table = "";
        for l in nft.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if l.starts_with("table ") {
                table = l;
                if l != "table inet runway {" {
                    why.push(format!("nft: {l}"));
                }
            } else if !(l == "}" || l.starts_with("chain ") || l.starts_with("type ")) {
                why.push(format!("nft rule left in {table}: {l}"));
            }
        }
        for n in fs::read_dir(s.rw.data.join("networks"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if !n.path().is_dir() {
                continue;
            }
            match runway::net::ipam::leases(&n.path()) {
                Ok(l) if l.is_empty() => {}
                other => why.push(format!("leases of {:?}: {other:?}", n.file_name())),
            }
        }
        for (p, c) in s.w.processes() {
            why.push(format!("process {p} in the host namespace: {c}"));
        }
        for e in fs::read_dir(s.rw.root.join("netns"))
            .into_iter()
            .flatten()
            .flatten()
        {
            why.push(format!("netns left: {:?}", e.path()));
        }
        why.is_empty()
    });
    assert!(
        ok,
        "{}: left after removing everything:\n{}",
        s.name(),
        why.join("\n")
    );
    s.rw.assert_clean();
}

/// One failed command: nonzero, exactly one error line, nothing changed.
fn refused(s: &Side, before: &str, args: &[&str], code: Option<i32>, mention: &[&str]) {
    let o = s.cli(args);
    assert!(o.code != 0, "expected failure:\n{o}");
    if let Some(c) = code {
        assert_eq!(o.code, c, "exit code:\n{o}");
    }
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one error line:\n{o}");
    assert!(
        mention.iter().any(|m| lines[0].contains(m)),
        "error line should mention one of {mention:?}:\n{o}"
    );
    let mut after = String::new();
    let same = poll(Duration::from_secs(3), || {
        after = snapshot(s);
        after == before
    });
    assert!(
        same,
        "{args:?} changed things:\nbefore:\n{before}\nafter:\n{after}"
    );
}

/// Bad inputs each fail with one line and leave nothing: no link, rule,
/// lease, network, container, process.
#[test]
fn bad_inputs_leave_nothing() {
    let Some(s) = Side::new(Kind::Runway, "bad-inputs") else {
        return;
    };
    s.ok(&["network", "create", "--subnet", "10.91.1.0/24", "n1"]);
    let sleep: Vec<String> = SLEEP.iter().map(|x| x.to_string()).collect();
    let o = s.run_d("cx", &["--network", "n1", "--ip", "10.91.1.10"], &sleep);
    assert!(o.code == 0, "{o}");
    assert_eq!(s.ip_of("cx", "n1"), "10.91.1.10");
    // A listener the test holds on the host namespace's port 18080.
    let _held = in_ns(s.w.host_ns(), || TcpListener::bind("0.0.0.0:18080")).unwrap();
    let before = snapshot(&s);
    let img = s.image();
    let run = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut a = vec!["container", "run", "-d"];
        a.extend_from_slice(extra);
        a.extend([img, "sleep", "1000"]);
        a
    };
    refused(
        &s,
        &before,
        &["network", "create", "--subnet", "10.91.1.128/25", "n2"],
        Some(1),
        &["10.91.1"],
    );
    refused(
        &s,
        &before,
        &["network", "create", "--subnet", "192.0.2.0/24", "n3"],
        Some(1),
        &["192.0.2.0/24"],
    );
    refused(
        &s,
        &before,
        &[
            "network",
            "create",
            "--subnet",
            "10.91.2.0/24",
            "--gateway",
            "10.91.3.1",
            "n4",
        ],
        Some(1),
        &["10.91.3.1"],
    );
    refused(
        &s,
        &before,
        &["network", "create", "--subnet", "10.91.5.0/24", "n1"],
        Some(1),
        &["n1"],
    );
    refused(
        &s,
        &before,
        &run(&["--name", "y1", "--network", "n1", "--ip", "10.91.9.5"]),
        None,
        &["10.91.9.5"],
    );
    refused(
        &s,
        &before,
        &run(&["--name", "y2", "--network", "n1", "--ip", "10.91.1.10"]),
        None,
        &["10.91.1.10"],
    );
    refused(
        &s,
        &before,
        &run(&["--name", "y3", "--network", "n1", "-p", "18080:80"]),
        None,
        &["18080"],
    );
    refused(
        &s,
        &before,
        &run(&["--name", "y4", "--network", "nope"]),
        None,
        &["nope"],
    );
    // Connecting it again to a network it is on changes nothing (its
    // endpoint, lease and link stay).
    refused(
        &s,
        &before,
        &["network", "connect", "n1", "cx"],
        Some(1),
        &["already"],
    );
    // The containers named by name or short id.
    let short = s.inspect("cx")["Id"].as_str().unwrap_or_default()[..12].to_string();
    refused(
        &s,
        &before,
        &["network", "rm", "n1"],
        Some(1),
        &["cx", &short],
    );
    s.ok(&["rm", "-f", "cx"]);
    s.ok(&["network", "rm", "n1"]);
    final_checks(&s);
}

/// 50 concurrent `run -d` on one network: 50 distinct addresses, each
/// reachable from one more container; after rm of all and `network rm`,
/// nothing left.
#[test]
fn fifty_concurrent_runs_on_one_network() {
    const N: usize = 50;
    let Some(s) = Side::new(Kind::Runway, "fifty") else {
        return;
    };
    s.ok(&["network", "create", "--subnet", "10.91.50.0/24", "n50"]);
    // Commands built here (Rw is not Sync); run from N threads at once.
    let cmds: Vec<std::process::Command> = (0..N)
        .map(|i| {
            let name = format!("c{i}");
            let args = [
                "container",
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "n50",
                s.image(),
                "sleep",
                "1000",
            ];
            s.w.wrap(s.rw.command(&args))
        })
        .collect();
    let scratch = s.scratch.clone();
    let t0 = Instant::now();
    let outs: Vec<Out> = std::thread::scope(|sc| {
        let hs: Vec<_> = cmds
            .into_iter()
            .map(|cmd| {
                let scratch = &scratch;
                sc.spawn(move || run_cmd(cmd, scratch, Duration::from_secs(120)))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let t_run = t0.elapsed();
    s.rw.note_ids();
    let failed: Vec<&Out> = outs.iter().filter(|o| o.code != 0).collect();
    assert!(
        failed.is_empty(),
        "{} of {N} runs failed, first:\n{}",
        failed.len(),
        failed[0]
    );
    let ips: Vec<String> = (0..N).map(|i| s.ip_of(&format!("c{i}"), "n50")).collect();
    let distinct: BTreeSet<&String> = ips.iter().collect();
    assert_eq!(distinct.len(), N, "addresses: {ips:?}");
    let leases = runway::net::ipam::leases(&s.rw.data.join("networks/n50")).unwrap();
    assert_eq!(leases.len(), N, "leases: {leases:?}");
    // What the final checks look for is there now: one veth per
    // container, the DNS process, rules in table runway.
    let links = s.w.host_tool("ip", &["-d", "-o", "link"]).unwrap();
    let veths = links
        .lines()
        .filter(|l| l.contains(": rw") && l.contains("veth"))
        .count();
    assert_eq!(veths, N, "host-side veths:\n{links}");
    let procs = s.w.processes();
    assert!(
        procs.iter().any(|(_, c)| c.contains("network dns")),
        "no DNS process in the host namespace: {procs:?}"
    );
    let nft = s.w.host_tool("nft", &["list", "ruleset"]).unwrap();
    assert!(
        nft.contains("table inet runway") && nft.contains("10.91.50.0/24"),
        "{nft}"
    );
    // One more container pings every one of them.
    let script = format!(
        "for ip in {}; do ping -c1 -W2 $ip >/dev/null || echo unreachable $ip; done; echo done",
        ips.join(" ")
    );
    let mut a = vec![
        "container",
        "run",
        "--rm",
        "--network",
        "n50",
        s.image(),
        "sh",
        "-c",
    ];
    a.push(&script);
    let o = s.ok(&a);
    assert_eq!(o.stdout, "done\n", "{o}");
    // Remove all, concurrently too.
    let ids = s.rw.ids();
    let cmds: Vec<std::process::Command> = ids
        .chunks(13)
        .map(|chunk| {
            let mut a = vec!["rm", "-f"];
            a.extend(chunk.iter().map(String::as_str));
            s.w.wrap(s.rw.command(&a))
        })
        .collect();
    std::thread::scope(|sc| {
        for cmd in cmds {
            let scratch = &scratch;
            sc.spawn(move || {
                let o = run_cmd(cmd, scratch, Duration::from_secs(120));
                assert!(o.code == 0, "{o}");
            });
        }
    });
    s.rw.note_ids();
    let leases = runway::net::ipam::leases(&s.rw.data.join("networks/n50")).unwrap();
    assert!(leases.is_empty(), "leases after rm: {leases:?}");
    s.ok(&["network", "rm", "n50"]);
    final_checks(&s);
    note(&format!(
        "fifty_concurrent_runs_on_one_network: {N} concurrent run -d in {t_run:?}, all of it in {:?}",
        t0.elapsed()
    ));
}

/// SIGKILL of `container run` at points all along its network setup (the
/// namespace pinned, a lease taken, the veth made, the endpoint written,
/// the firewall and the DNS server): `rm -f` of whatever container came
/// to exist, then `network prune`, leave nothing — no link, rule, lease,
/// namespace, DNS process. The delays land anywhere from before the
/// record to after the start; each run also publishes a port (rules).
#[test]
fn killed_runs_leave_only_what_rm_f_and_prune_clean() {
    let Some(s) = Side::new(Kind::Runway, "killed") else {
        return;
    };
    s.ok(&["network", "create", "--subnet", "10.91.60.0/24", "nk"]);
    let delays_us: Vec<u64> = (0..24).map(|i| 500 + i * 1500).collect();
    for (i, d) in delays_us.iter().enumerate() {
        let name = format!("k{i}");
        let args = [
            "container",
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "nk",
            "-p",
            "80",
            s.image(),
            "sleep",
            "1000",
        ];
        let mut cmd = s.w.wrap(s.rw.command(&args));
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().expect("spawn run");
        std::thread::sleep(Duration::from_micros(*d));
        let _ = child.kill();
        let _ = child.wait();
        // The container may or may not have come to exist.
        let _ = s.cli(&["rm", "-f", &name]);
    }
    s.rw.note_ids();
    s.remove_all();
    let o = s.cli(&["network", "prune", "-f"]);
    assert_eq!(o.code, 0, "{o}");
    final_checks(&s);
}
