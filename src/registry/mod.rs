//! The OCI Distribution server behind `runway registry serve` and `registry gc`.
//!
//! One thread waits in epoll on the listener, a signalfd (SIGTERM, SIGINT)
//! and idle keep-alive connections (one-shot); a bounded pool of workers
//! each takes one ready connection, serves one request with blocking I/O
//! (timeouts bound a stuck peer) and hands it back to epoll. So idle
//! clients cost a file descriptor, not a thread.

pub mod api;
pub mod auth;
pub mod route;
pub mod store;

use crate::error::{Context, Error, Result};
use crate::http::codec::{self, Body, Framing};
use rustix::event::epoll;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const WORKERS: usize = 16;
/// A peer silent this long in the middle of a request is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// An idle keep-alive connection is closed after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const LISTENER: u64 = u64::MAX;
const SIGNALS: u64 = u64::MAX - 1;

/// A spec error: status, code, message, detail; extra headers.
#[derive(Debug)]
pub struct ApiErr {
    pub status: u16,
    pub code: &'static str,
    pub msg: String,
    pub detail: Value,
    pub headers: Vec<(&'static str, String)>,
    /// The request body was not read to its end: the connection must go.
    pub close: bool,
}

impl ApiErr {
    pub fn new(status: u16, code: &'static str, msg: impl Into<String>) -> ApiErr {
        ApiErr {
            status,
            code,
            msg: msg.into(),
            detail: Value::Null,
            headers: Vec::new(),
            close: false,
        }
    }

    pub fn detail(mut self, d: Value) -> ApiErr {
        self.detail = d;
        self
    }

    pub fn close(mut self) -> ApiErr {
        self.close = true;
        self
    }

    fn into_resp(self) -> Resp {
        let mut r = Resp::json(
            self.status,
            &json!({"errors": [{"code": self.code, "message": self.msg, "detail": self.detail}]}),
        );
        if self.status == 401 {
            r = r.h("WWW-Authenticate", "Basic realm=\"runway\"".into());
        }
        r.headers.extend(self.headers);
        r.close = self.close;
        r
    }
}

pub enum RBody {
    Bytes(Vec<u8>),
    /// A file's range: (file, offset, length).
    File(File, u64, u64),
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: RBody,
    pub close: bool,
}

impl Resp {
    pub fn new(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: RBody::Bytes(Vec::new()),
            close: false,
        }
    }

    pub fn h(mut self, name: &'static str, value: String) -> Resp {
        self.headers.push((name, value));
        self
    }

    pub fn bytes(status: u16, media: &str, b: Vec<u8>) -> Resp {
        let mut r = Resp::new(status).h("Content-Type", media.to_string());
        r.body = RBody::Bytes(b);
        r
    }

    pub fn json(status: u16, v: &Value) -> Resp {
        Resp::bytes(status, "application/json", v.to_string().into_bytes())
    }

    pub fn file(mut self, f: File, at: u64, len: u64) -> Resp {
        self.body = RBody::File(f, at, len);
        self
    }

    pub fn link(self, link: Option<String>) -> Resp {
        match link {
            Some(l) => self.h("Link", l),
            None => self,
        }
    }
}

pub struct Server {
    pub store: store::Store,
    pub auth: Option<auth::Htpasswd>,
    pub read_only: bool,
}

pub struct Config {
    pub addr: String,
    pub root: PathBuf,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub htpasswd: Option<PathBuf>,
    pub read_only: bool,
    pub max_upload: u64,
}

type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

enum Sock {
    Plain(TcpStream),
    Tls(Box<Tls>),
}

impl Sock {
    fn tcp(&self) -> &TcpStream {
        match self {
            Sock::Plain(s) => s,
            Sock::Tls(t) => &t.sock,
        }
    }
}

impl Read for Sock {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Plain(s) => s.read(b),
            Sock::Tls(t) => t.read(b),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Plain(s) => s.write(b),
            Sock::Tls(t) => t.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sock::Plain(s) => s.flush(),
            Sock::Tls(t) => t.flush(),
        }
    }
}

struct Conn {
    r: BufReader<Sock>,
    idle_since: Instant,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        _ => "Error",
    }
}

/// Send `len` bytes of `f` from `at`: sendfile(2) on plain TCP, a copy
/// through a fixed buffer under TLS.
fn send_file(sock: &mut Sock, f: &File, mut at: u64, len: u64) -> io::Result<()> {
    let end = at + len;
    if let Sock::Plain(s) = sock {
        while at < end {
            let want = usize::try_from(end - at).unwrap_or(usize::MAX).min(1 << 30);
            let n = rustix::fs::sendfile(s.as_fd(), f, Some(&mut at), want)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        return Ok(());
    }
    let mut buf = vec![0u8; 64 << 10];
    while at < end {
        let want = buf
            .len()
            .min(usize::try_from(end - at).unwrap_or(usize::MAX));
        let n = std::os::unix::fs::FileExt::read_at(f, &mut buf[..want], at)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        sock.write_all(&buf[..n])?;
        at += n as u64;
    }
    sock.flush()
}

/// Serve one request on `c`: whether the connection may carry another.
fn serve_one(srv: &Server, c: &mut Conn) -> bool {
    // A TLS ClientHello (record type 22) on plain HTTP: answer in HTTP at
    // once, so that clients probing HTTPS first (skopeo, podman) fall back
    // now instead of after their handshake timeout.
    if matches!(c.r.get_ref(), Sock::Plain(_))
        && c.r.fill_buf().is_ok_and(|b| b.first() == Some(&22))
    {
        let _ =
            c.r.get_mut()
                .write_all(b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\n\r\n");
        return false;
    }
    let Ok(raw) = codec::read_head(&mut c.r) else {
        return false;
    };
    let t0 = Instant::now();
    let (req, framing) = match codec::parse_request_head(&raw)
        .and_then(|h| codec::request_framing(&h.headers).map(|f| (h, f)))
    {
        Ok(x) => x,
        Err(e) => {
            let resp = ApiErr::new(400, "UNSUPPORTED", e.ctx).close().into_resp();
            let _ = write_resp(c.r.get_mut(), "GET", resp);
            return false;
        }
    };
    if req
        .headers
        .get("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        && framing != Framing::Empty
    {
        let _ = c.r.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let mut body = Body::new(&mut c.r, framing);
    let resp = api::handle(srv, &req, &mut body).unwrap_or_else(ApiErr::into_resp);
    // What the handler left of the body is read away (a little of it) so
    // that the connection can be reused.
    let drained = resp.close
        || io::copy(&mut (&mut body).take(1 << 20), &mut io::sink()).is_err()
        || !body.done();
    let keep = !drained && codec::keep_alive(req.minor, &req.headers);
    let mut resp = resp;
    resp.close = !keep;
    let status = resp.status;
    let path = req.target.split('?').next().unwrap_or("");
    let res = write_resp(c.r.get_mut(), &req.method, resp);
    let sent = res.as_ref().map_or(0, |n| *n);
    eprintln!(
        "{} {} {} {} {}ms{}",
        req.method,
        path,
        status,
        sent,
        t0.elapsed().as_millis(),
        res.as_ref()
            .err()
            .map_or(String::new(), |e| format!(" ({e})"))
    );
    keep && res.is_ok()
}

/// Write a response; the body bytes sent.
fn write_resp(sock: &mut Sock, method: &str, resp: Resp) -> io::Result<u64> {
    let len = match &resp.body {
        RBody::Bytes(b) => b.len() as u64,
        RBody::File(_, _, n) => *n,
    };
    let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status)).into_bytes();
    let mut add = |n: &str, v: &str| {
        // Values we set come from validated names and digests; still, no
        // CR or LF reaches the wire.
        if !v.contains(['\r', '\n']) {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
    };
    add("Docker-Distribution-API-Version", "registry/2.0");
    for (n, v) in &resp.headers {
        add(n, v);
    }
    if resp.status != 204 && !resp.headers.iter().any(|(n, _)| *n == "Content-Length") {
        add("Content-Length", &len.to_string());
    }
    if resp.close {
        add("Connection", "close");
    }
    out.extend_from_slice(b"\r\n");
    let head = method == "HEAD" || resp.status == 204;
    match resp.body {
        RBody::Bytes(b) if !head => out.extend_from_slice(&b),
        RBody::File(f, at, n) if !head => {
            sock.write_all(&out)?;
            send_file(sock, &f, at, n)?;
            return Ok(n);
        }
        _ => {}
    }
    sock.write_all(&out)?;
    sock.flush()?;
    Ok(if head { 0 } else { len })
}

/// SIGTERM and SIGINT blocked (in this thread and every thread it starts)
/// and readable as a signalfd.
fn tls_config(cert: &PathBuf, key: &PathBuf) -> Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::msg(format!("tls: certificate {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::msg(format!("tls: key {}: {e}", key.display())))?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        crate::image::registry::tls::provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
    .map_err(|e| Error::msg(format!("tls: {e}")))?;
    Ok(Arc::new(cfg))
}

struct Shared {
    srv: Server,
    epoll: OwnedFd,
    idle: Mutex<HashMap<u64, Conn>>,
    stopping: AtomicBool,
}

impl Shared {
    /// Back to epoll to wait for its next request.
    fn park(&self, c: Conn) {
        let fd = c.r.get_ref().tcp().as_raw_fd() as u64;
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let flags = epoll::EventFlags::IN | epoll::EventFlags::RDHUP | epoll::EventFlags::ONESHOT;
        let res = epoll::modify(
            &self.epoll,
            c.r.get_ref().tcp(),
            epoll::EventData::new_u64(fd),
            flags,
        );
        if res.is_ok() {
            idle.insert(fd, c);
        }
    }
}

fn worker(sh: &Shared, rx: &Mutex<mpsc::Receiver<Conn>>) {
    loop {
        let next = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(mut c) = next else { return };
        loop {
            if !serve_one(&sh.srv, &mut c) || sh.stopping.load(Ordering::Relaxed) {
                break;
            }
            // A pipelined request already buffered is served at once.
            if c.r.buffer().is_empty() {
                c.idle_since = Instant::now();
                sh.park(c);
                break;
            }
        }
    }
}

/// Run the registry until SIGTERM or SIGINT; in-flight requests finish.
pub fn serve(cfg: Config) -> Result<()> {
    let sig = crate::linux::signal::stop_signal_fd()?;
    let mut st = store::Store::open(&cfg.root)?;
    st.max_upload = cfg.max_upload;
    let reaped = st.reap(store::UPLOAD_TTL);
    if reaped > 0 {
        crate::log::warn(&format!("registry: removed {reaped} stale uploads"));
    }
    let tls = match &cfg.tls {
        Some((c, k)) => Some(tls_config(c, k)?),
        None => None,
    };
    let auth = match &cfg.htpasswd {
        Some(p) => Some(auth::Htpasswd::load(p)?),
        None => None,
    };
    let listener = TcpListener::bind(&cfg.addr).ctx(|| format!("listen on {}", cfg.addr))?;
    let local: SocketAddr = listener.local_addr().ctx(|| "listener address")?;
    if auth.is_some() && tls.is_none() && !local.ip().is_loopback() {
        crate::log::warn("registry: --htpasswd without TLS sends passwords in the clear");
    }
    listener.set_nonblocking(true).ctx(|| "listener")?;
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).ctx(|| "epoll")?;
    let sh = Arc::new(Shared {
        srv: Server {
            store: st,
            auth,
            read_only: cfg.read_only,
        },
        epoll: ep,
        idle: Mutex::new(HashMap::new()),
        stopping: AtomicBool::new(false),
    });
    epoll::add(
        &sh.epoll,
        &listener,
        epoll::EventData::new_u64(LISTENER),
        epoll::EventFlags::IN,
    )
    .ctx(|| "epoll listener")?;
    epoll::add(
        &sh.epoll,
        &sig,
        epoll::EventData::new_u64(SIGNALS),
        epoll::EventFlags::IN,
    )
    .ctx(|| "epoll signalfd")?;
    let (tx, rx) = mpsc::sync_channel::<Conn>(256);
    let rx = Arc::new(Mutex::new(rx));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (sh, rx) = (sh.clone(), rx.clone());
        workers.push(std::thread::spawn(move || worker(&sh, &rx)));
    }
    println!("listening on {local}");
    let _ = io::stdout().flush();
    let mut events = Vec::with_capacity(64);
    let mut last_sweep = Instant::now();
    'outer: loop {
        events.clear();
        let timeout = rustix::event::Timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        match epoll::wait(&sh.epoll, spare(&mut events), Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::errno("epoll_wait", e.raw_os_error())),
        }
        for ev in events.iter() {
            match ev.data.u64() {
                SIGNALS => break 'outer,
                LISTENER => loop {
                    let s = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // EMFILE and friends: the listener stays readable,
                        // so pause rather than spin until an fd is free.
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(50));
                            break;
                        }
                    };
                    if s.set_nonblocking(false).is_err()
                        || s.set_read_timeout(Some(IO_TIMEOUT)).is_err()
                        || s.set_write_timeout(Some(IO_TIMEOUT)).is_err()
                    {
                        continue;
                    }
                    let _ = s.set_nodelay(true);
                    let fd = s.as_raw_fd() as u64;
                    let sock = match &tls {
                        Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
                            Ok(c) => Sock::Tls(Box::new(rustls::StreamOwned::new(c, s))),
                            Err(_) => continue,
                        },
                        None => Sock::Plain(s),
                    };
                    let c = Conn {
                        r: BufReader::with_capacity(64 << 10, sock),
                        idle_since: Instant::now(),
                    };
                    let flags = epoll::EventFlags::IN
                        | epoll::EventFlags::RDHUP
                        | epoll::EventFlags::ONESHOT;
                    if let Ok(mut idle) = sh.idle.lock() {
                        if epoll::add(
                            &sh.epoll,
                            c.r.get_ref().tcp(),
                            epoll::EventData::new_u64(fd),
                            flags,
                        )
                        .is_ok()
                        {
                            idle.insert(fd, c);
                        }
                    }
                },
                fd => {
                    let c = sh.idle.lock().ok().and_then(|mut m| m.remove(&fd));
                    if let Some(c) = c {
                        if tx.send(c).is_err() {
                            break 'outer;
                        }
                    }
                }
            }
        }
        if last_sweep.elapsed() > Duration::from_secs(10) {
            last_sweep = Instant::now();
            if let Ok(mut idle) = sh.idle.lock() {
                idle.retain(|_, c| c.idle_since.elapsed() < IDLE_TIMEOUT);
            }
            sh.srv.store.reap(store::UPLOAD_TTL);
        }
    }
    // Stop: no new connections, idle ones closed, busy ones finish their
    // request and are closed by their worker.
    sh.stopping.store(true, Ordering::Relaxed);
    drop(listener);
    if let Ok(mut idle) = sh.idle.lock() {
        idle.clear();
    }
    drop(tx);
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

/// rustix's epoll::wait fills spare capacity.
fn spare(v: &mut Vec<epoll::Event>) -> rustix::buffer::SpareCapacity<'_, epoll::Event> {
    rustix::buffer::spare_capacity(v)
}

/// `registry gc`: print each removed blob and the bytes freed.
pub fn gc(root: &std::path::Path, dry_run: bool) -> Result<()> {
    let st = store::Store::open(root)?;
    let gone = st.gc(dry_run)?;
    let mut total = 0;
    for (d, n) in &gone {
        println!(
            "{} {d} ({n} bytes)",
            if dry_run { "would remove" } else { "removed" }
        );
        total += n;
    }
    println!(
        "{} {} blobs, {total} bytes",
        if dry_run { "would free" } else { "freed" },
        gone.len()
    );
    Ok(())
}
