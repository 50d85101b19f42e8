//! One test's network world: a "host" network namespace and an "outside"
//! one, each held by an `unshare --net sleep infinity` the test starts,
//! joined by a veth pair the test makes (192.0.2.1/24 on the host side,
//! 192.0.2.2/24 outside; no other route anywhere). Every engine command
//! runs in the host namespace through `nsenter --net=/proc/HOLDER/ns/net`;
//! the test's own sockets get there from a thread that setns(2)es (a
//! socket stays in the namespace it was made in). On drop every process
//! in either namespace (engine monitors, DNS servers, conmon, aardvark-dns)
//! and the holders are killed: the namespaces, their links and firewall
//! rules die with them. The machine's own network is never touched.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const HOST_IP: &str = "192.0.2.1";
pub const OUTSIDE_IP: &str = "192.0.2.2";
/// The outside's TCP server (HTTP/1.0: "outside peer=IP").
pub const OUTSIDE_PORT: u16 = 8081;

/// Inode of a network namespace file (or 0).
pub fn ns_ino(path: &str) -> u64 {
    std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0)
}

/// A process holding a network namespace of its own.
pub struct Holder {
    child: Child,
    pub pid: i32,
    pub ino: u64,
    ns: File,
}

impl Holder {
    fn new() -> Result<Holder, String> {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "infinity"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let pid = child.id() as i32;
        let mut h = Holder {
            child,
            pid,
            ino: 0,
            ns: File::open("/dev/null").map_err(|e| e.to_string())?,
        };
        // unshare execs sleep only after unshare(2): once the child is
        // `sleep`, its namespace is the new one.
        let start = Instant::now();
        loop {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "sleep" {
                break;
            }
            if start.elapsed() > Duration::from_secs(5) {
                return Err("unshare --net did not start sleep".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        h.ino = ns_ino(&format!("/proc/{pid}/ns/net"));
        // Never go on in the machine's namespace or the test process's.
        for other in ["/proc/1/ns/net", "/proc/self/ns/net"] {
            if h.ino == 0 || h.ino == ns_ino(other) {
                return Err(format!("unshare --net made no new namespace (vs {other})"));
            }
        }
        h.ns = File::open(format!("/proc/{pid}/ns/net")).map_err(|e| e.to_string())?;
        Ok(h)
    }

    pub fn ns_path(&self) -> String {
        format!("/proc/{}/ns/net", self.pid)
    }
}

/// Runs `f` on a thread that first joins the network namespace `ns`.
pub fn in_ns<T: Send + 'static>(ns: &File, f: impl FnOnce() -> T + Send + 'static) -> T {
    let fd = ns.try_clone().expect("dup namespace fd");
    let h = std::thread::spawn(move || {
        // SAFETY: setns(2) of this thread only, on a namespace fd we hold.
        let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    });
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// `in_ns` for a namespace named by path (e.g. a container's /proc/PID/ns/net).
pub fn in_ns_path<T: Send + 'static>(
    path: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let f2 = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(in_ns(&f2, f))
}

/// Sends an HTTP/1.0 GET to `addr` from a socket made in `ns`; the body.
pub fn http_get(ns: &File, addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    in_ns(ns, move || -> Result<String, String> {
        let mut s =
            TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
        s.set_read_timeout(Some(timeout)).ok();
        s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            .map_err(|e| format!("{addr}: write: {e}"))?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)
            .map_err(|e| format!("{addr}: read: {e}"))?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        match text.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
                Ok(body.to_string())
            }
            _ => Err(format!("{addr}: not a 200 response: {text:?}")),
        }
    })
}

/// One UDP datagram to `addr` from a socket made in `ns`; the reply.
pub fn udp_ask(
    ns: &File,
    addr: SocketAddr,
    msg: &str,
    timeout: Duration,
) -> Result<String, String> {
    let msg = msg.to_string();
    in_ns(ns, move || -> Result<String, String> {
        let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(timeout)).ok();
        s.send_to(msg.as_bytes(), addr)
            .map_err(|e| format!("{addr}: send: {e}"))?;
        let mut buf = [0u8; 512];
        let (n, _) = s
            .recv_from(&mut buf)
            .map_err(|e| format!("{addr}: recv: {e}"))?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
}

/// A server loop on a thread until `stop`: nonblocking accept/recv.
fn tcp_server(l: TcpListener, stop: Arc<AtomicBool>, tag: String) -> JoinHandle<()> {
    l.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut s, peer)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    // The request head (one read is enough for a GET).
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf);
                    let body = format!("{tag} peer={}\n", peer.ip());
                    let _ = write!(
                        s,
                        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    })
}

/// Echo server: answers each datagram with "TAG peer=IP got=DATA".
fn udp_server(s: UdpSocket, stop: Arc<AtomicBool>, tag: String) -> JoinHandle<()> {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, peer)) = s.recv_from(&mut buf) {
                let reply = format!(
                    "{tag} peer={} got={}",
                    peer.ip(),
                    String::from_utf8_lossy(&buf[..n])
                );
                let _ = s.send_to(reply.as_bytes(), peer);
            }
        }
    })
}

pub struct World {
    pub host: Holder,
    pub outside: Holder,
    stop: Arc<AtomicBool>,
    servers: Vec<JoinHandle<()>>,
}

fn sh_ok(cmd: &mut Command) -> Result<String, String> {
    let o = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "{cmd:?}: {}\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

impl World {
    /// The two namespaces, the veth between them, the outside's TCP server
    /// on 192.0.2.2:8081. Err: the tools or privileges are missing.
    pub fn new() -> Result<World, String> {
        // SAFETY: geteuid(2) has no side effects.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".into());
        }
        for tool in ["unshare", "nsenter", "ip"] {
            if Command::new(tool)
                .arg("-V")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
            {
                return Err(format!("{tool} not installed"));
            }
        }
        let mut w = World {
            host: Holder::new()?,
            outside: Holder::new()?,
            stop: Arc::new(AtomicBool::new(false)),
            servers: Vec::new(),
        };
        let (h, o) = (w.host.pid, w.outside.pid);
        // Short, fixed names: each world has its own namespaces.
        let steps: Vec<(bool, Vec<String>)> = vec![
            (true, sv(&["link", "set", "lo", "up"])),
            (false, sv(&["link", "set", "lo", "up"])),
            (
                true,
                sv(&[
                    "link",
                    "add",
                    "wh0",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "wo0",
                    "netns",
                    &o.to_string(),
                ]),
            ),
            (
                true,
                sv(&["addr", "add", &format!("{HOST_IP}/24"), "dev", "wh0"]),
            ),
            (true, sv(&["link", "set", "wh0", "up"])),
            (
                false,
                sv(&["addr", "add", &format!("{OUTSIDE_IP}/24"), "dev", "wo0"]),
            ),
            (false, sv(&["link", "set", "wo0", "up"])),
        ];
        for (in_host, args) in steps {
            let pid = if in_host { h } else { o };
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/proc/{pid}/ns/net"))
                .arg("--")
                .arg("ip")
                .args(&args);
            sh_ok(&mut c)?;
        }
        let addr: SocketAddr = format!("{OUTSIDE_IP}:{OUTSIDE_PORT}").parse().unwrap();
        let l = in_ns(&w.outside.ns, move || TcpListener::bind(addr))
            .map_err(|e| format!("outside server: {e}"))?;
        w.servers
            .push(tcp_server(l, w.stop.clone(), "outside".into()));
        // The veth's carrier and the addresses (DAD is IPv6 only) are up at
        // once; one round trip proves the world works before any engine.
        let mut last = String::new();
        let ok = crate::harness::poll(Duration::from_secs(5), || {
            match http_get(&w.host.ns, addr, Duration::from_secs(1)) {
                Ok(b) => b.contains(&format!("peer={HOST_IP}")),
                Err(e) => {
                    last = e;
                    false
                }
            }
        });
        if !ok {
            return Err(format!("host ns cannot reach the outside server: {last}"));
        }
        Ok(w)
    }

    pub fn host_ns(&self) -> &File {
        &self.host.ns
    }

    pub fn outside_ns(&self) -> &File {
        &self.outside.ns
    }

    /// `cmd` run in the host namespace instead (program, args, env kept).
    pub fn wrap(&self, cmd: Command) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.host.ns_path()))
            .arg("--")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    /// A tool (ip, nft) in the host namespace; stdout, or the error.
    pub fn host_tool(&self, prog: &str, args: &[&str]) -> Result<String, String> {
        let mut c = Command::new(prog);
        c.args(args);
        sh_ok(&mut self.wrap(c))
    }

    /// Serves UDP echo on a socket bound in the namespace at `ns_path`
    /// (a container's): lives until the world drops.
    pub fn udp_echo_in(&mut self, ns_path: &str, port: u16, tag: &str) -> Result<(), String> {
        let s = in_ns_path(ns_path, move || UdpSocket::bind(("0.0.0.0", port)))?
            .map_err(|e| format!("udp bind in {ns_path}: {e}"))?;
        self.servers
            .push(udp_server(s, self.stop.clone(), tag.to_string()));
        Ok(())
    }

    /// Processes (not ours, not the holders) in the host or outside
    /// namespace.
    pub fn processes(&self) -> Vec<(i32, String)> {
        let me = std::process::id() as i32;
        crate::common::live_pids()
            .into_iter()
            .filter(|&p| p != me && p != self.host.pid && p != self.outside.pid)
            .filter(|p| {
                let i = ns_ino(&format!("/proc/{p}/ns/net"));
                i == self.host.ino || i == self.outside.ino
            })
            .map(|p| {
                let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
                    .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                    .unwrap_or_default();
                (p, cmd)
            })
            .collect()
    }

    /// Kills every process in the two namespaces (not the holders).
    pub fn kill_all(&self) {
        for _ in 0..5 {
            let ps = self.processes();
            if ps.is_empty() {
                return;
            }
            for (p, _) in ps {
                // SAFETY: kill(2) of a process in a namespace this test made.
                unsafe {
                    libc::kill(p, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn sv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.servers.drain(..) {
            let _ = s.join();
        }
        self.kill_all();
        for h in [&mut self.host, &mut self.outside] {
            let _ = h.child.kill();
            let _ = h.child.wait();
        }
    }
}
