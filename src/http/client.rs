//! A blocking HTTP/1.1 client on the codec: TCP with connect and read
//! timeouts, TLS (rustls, a config the caller builds), proxies by CONNECT
//! from the environment, redirects, and reuse of idle keep-alive
//! connections. Clone + Send + Sync: pull's download threads share one.

use super::codec::{self, Body, Framing, Headers};
use super::proxy::ProxyEnv;
use crate::error::Error;
use rustls::pki_types::ServerName;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Redirects followed per request.
pub const MAX_REDIRECTS: usize = 10;
/// Idle connections kept for reuse (all hosts together).
const MAX_IDLE: usize = 8;
/// A redirect's own body is read (to reuse its connection) up to this much.
const MAX_DRAIN: u64 = 64 << 10;

/// Why a request got no response.
#[derive(Debug)]
pub enum Failure {
    /// The URL cannot be requested (scheme, syntax).
    Url(String),
    /// The name does not resolve.
    NoHost,
    /// Connecting or waiting for the answer took too long.
    Timeout,
    /// The socket failed (refused, reset, closed, stalled).
    Io(io::Error),
    /// The TLS handshake failed (certificates, alerts, versions, or bytes
    /// that are not TLS: [`rustls::Error::InvalidMessage`]).
    Tls(rustls::Error),
    /// The proxy refused the tunnel or could not be used.
    Proxy(String),
    /// The peer's answer is not HTTP/1.1.
    Protocol(String),
    /// More than [`MAX_REDIRECTS`].
    Redirects,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Url(m) | Failure::Protocol(m) => f.write_str(m),
            Failure::NoHost => f.write_str("no such host"),
            Failure::Timeout => f.write_str("timeout"),
            Failure::Io(e) => f.write_str(&io_words(e)),
            Failure::Tls(e) => write!(f, "tls: {e}"),
            Failure::Proxy(m) => write!(f, "proxy: {m}"),
            Failure::Redirects => write!(f, "more than {MAX_REDIRECTS} redirects"),
        }
    }
}

impl Failure {
    /// One line for the crate's error type: `GET https://r/v2/: connection refused`.
    pub fn error(&self, method: &str, url: &str) -> Error {
        Error::msg(format!("{method} {url}: {self}"))
    }
}

/// An I/O error in the C library's words (`connection refused`), not
/// Rust's Debug form.
pub fn io_words(e: &io::Error) -> String {
    if let Some(n) = e.raw_os_error() {
        return crate::error::errno_text(n);
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        io::ErrorKind::UnexpectedEof => match e.get_ref() {
            Some(inner) => inner.to_string(),
            None => "connection closed".into(),
        },
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timeout".into(),
        _ => e.to_string(),
    }
}

/// An I/O error from a TLS stream may carry the rustls error inside.
fn classify(e: io::Error) -> Failure {
    if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(r) = inner.downcast::<rustls::Error>() {
                return Failure::Tls(*r);
            }
        }
        return Failure::Protocol("tls error".into());
    }
    if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        return Failure::Timeout;
    }
    Failure::Io(e)
}

/// A URL split for a request: `scheme://authority/target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// `host[:port]` as written (no userinfo): the Host header.
    pub authority: String,
    /// The host to connect to and to name in TLS (no brackets).
    pub host: String,
    pub port: u16,
    /// Path and query (`/` if empty); the fragment is dropped.
    pub target: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, Failure> {
        let bad = || Failure::Url(format!("invalid URL {url:?}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(Failure::Url(format!("unsupported URL scheme in {url:?}")));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let mut target = rest[end..].split('#').next().unwrap_or("").to_string();
        if !target.starts_with('/') {
            target.insert(0, '/');
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or_else(bad)?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if https => 443,
            None => 80,
        };
        if host.is_empty() || host.contains(|c: char| c.is_ascii_whitespace() || c.is_control()) {
            return Err(bad());
        }
        Ok(Url {
            https,
            authority: authority.to_string(),
            host: host.to_string(),
            port,
            target,
        })
    }

    fn origin(&self) -> String {
        format!(
            "{}://{}",
            if self.https { "https" } else { "http" },
            self.authority
        )
    }
}

/// `scheme://authority` of a URL (what Authorization is scoped to).
pub fn origin_of(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find(['/', '?', '#']) {
        Some(i) => &url[..after + i],
        None => url,
    }
}

/// A Location header resolved against the URL it came from.
pub fn resolve_url(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.to_string();
    }
    let origin = origin_of(base);
    if let Some(rest) = loc.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("https");
        return format!("{scheme}://{rest}");
    }
    if loc.starts_with('/') {
        return format!("{origin}{loc}");
    }
    let path = &base[origin.len()..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{origin}{dir}{loc}")
}

enum Stream {
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            // A peer that closes without close_notify: the end of a
            // read-to-close body as over plain TCP (a Content-Length or
            // chunked body still fails when cut short; blobs are hashed).
            Stream::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

type Conn = BufReader<Stream>;

/// What every request of one client shares.
pub struct Config {
    pub tls: Arc<rustls::ClientConfig>,
    pub proxies: ProxyEnv,
    pub connect_timeout: Duration,
    /// A read that gets nothing for this long fails (no total timeout).
    pub read_timeout: Duration,
    pub user_agent: String,
}

#[derive(Clone)]
pub struct Client(Arc<Shared>);

struct Shared {
    cfg: Config,
    /// Idle keep-alive connections by [`pool_key`].
    idle: Mutex<Vec<(String, Conn)>>,
}

/// One request.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    /// Sent with a Content-Length (POST, PUT) when not empty.
    pub body: &'a [u8],
    /// A body streamed from a file instead: (file, offset, length), read
    /// with positional reads, so that a resend (stale connection,
    /// redirect, auth retry) starts over without seeking.
    pub file: Option<(&'a File, u64, u64)>,
    /// Replaces the connect timeout and the wait for the response head
    /// (a probe that must not hang on a silent port).
    pub timeout: Option<Duration>,
}

impl<'a> Request<'a> {
    pub fn new(method: &'a str, url: &'a str) -> Request<'a> {
        Request {
            method,
            url,
            headers: &[],
            body: &[],
            file: None,
            timeout: None,
        }
    }
}

/// A response; read it for the body. Reading it to its end puts a
/// keep-alive connection back for the next request.
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    /// Where it came from (after redirects).
    pub url: String,
    body: Option<Body<Conn>>,
    /// Set when the connection may be reused: the pool and its key.
    reuse: Option<(Arc<Shared>, String)>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("url", &self.url)
            .finish()
    }
}

impl Response {
    /// A header's first value, trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(str::trim)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body whole, refused beyond `cap` bytes.
    pub fn read_capped(&mut self, cap: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.take(cap + 1).read_to_end(&mut out)?;
        if out.len() as u64 > cap {
            return Err(io::Error::other(format!(
                "larger than {cap} bytes: refused"
            )));
        }
        Ok(out)
    }

    /// Back to the pool when the body is complete and the peer keeps it.
    fn release(&mut self) {
        if self.body.as_ref().is_some_and(Body::done) {
            if let (Some(body), Some((shared, key))) = (self.body.take(), self.reuse.take()) {
                shared.put(key, body.into_inner());
            }
        }
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(body) = self.body.as_mut() else {
            return Ok(0);
        };
        let n = body.read(buf)?;
        if n == 0 || body.done() {
            self.release();
        }
        Ok(n)
    }
}

fn pool_key(u: &Url, proxy: Option<&str>) -> String {
    format!("{}|{}", u.origin(), proxy.unwrap_or(""))
}

impl Shared {
    fn take(&self, key: &str) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let i = idle.iter().rposition(|(k, _)| k == key)?;
        Some(idle.swap_remove(i).1)
    }

    fn put(&self, key: String, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() >= MAX_IDLE {
            idle.remove(0);
        }
        idle.push((key, conn));
    }
}

/// A stale keep-alive connection (the server closed it while idle): the
/// request is sent again on a new one.
fn stale(f: &Failure) -> bool {
    match f {
        Failure::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

impl Client {
    pub fn new(cfg: Config) -> Client {
        Client(Arc::new(Shared {
            cfg,
            idle: Mutex::new(Vec::new()),
        }))
    }

    /// One exchange, no redirects followed.
    pub fn send(&self, req: &Request<'_>) -> Result<Response, Failure> {
        let u = Url::parse(req.url)?;
        let proxy = self.0.cfg.proxies.for_url(req.url).map(str::to_string);
        let key = pool_key(&u, proxy.as_deref());
        if let Some(conn) = self.0.take(&key) {
            match self.exchange(conn, &u, req, &key) {
                Err(f) if stale(&f) => {}
                other => return other,
            }
        }
        let conn = self.connect(&u, proxy.as_deref(), req.timeout)?;
        self.exchange(conn, &u, req, &key)
    }

    /// Send, following redirects: `authorization` goes only to the origin
    /// of `req.url` (a 307 to blob storage must not carry a registry's
    /// token); the other headers go everywhere. 303 (and 301/302 to a
    /// POST) continue as GET without a body.
    pub fn follow(
        &self,
        req: &Request<'_>,
        authorization: Option<&str>,
    ) -> Result<Response, Failure> {
        let origin = origin_of(req.url).to_string();
        let mut url = req.url.to_string();
        let mut method = req.method.to_string();
        let (mut body, mut file) = (req.body, req.file);
        for _ in 0..=MAX_REDIRECTS {
            let mut headers: Vec<(&str, &str)> = req.headers.to_vec();
            if let Some(a) = authorization.filter(|_| origin_of(&url) == origin) {
                headers.push(("Authorization", a));
            }
            let r = Request {
                method: &method,
                url: &url,
                headers: &headers,
                body,
                file,
                timeout: req.timeout,
            };
            let mut resp = self.send(&r)?;
            let s = resp.status;
            if matches!(s, 301 | 302 | 303 | 307 | 308) {
                if let Some(loc) = resp.header("location").map(str::to_string) {
                    // Reuse the connection when the body is short.
                    let _ = io::copy(&mut (&mut resp).take(MAX_DRAIN), &mut io::sink());
                    url = resolve_url(&url, &loc);
                    if s == 303 && method != "HEAD" || matches!(s, 301 | 302) && method == "POST" {
                        method = "GET".into();
                        (body, file) = (&[], None);
                    }
                    continue;
                }
            }
            return Ok(resp);
        }
        Err(Failure::Redirects)
    }

    fn exchange(
        &self,
        mut conn: Conn,
        u: &Url,
        req: &Request<'_>,
        key: &str,
    ) -> Result<Response, Failure> {
        let cfg = &self.0.cfg;
        let wait = req.timeout.unwrap_or(cfg.read_timeout);
        let tcp = conn.get_ref().tcp();
        tcp.set_read_timeout(Some(wait)).map_err(Failure::Io)?;
        tcp.set_write_timeout(Some(cfg.read_timeout))
            .map_err(Failure::Io)?;
        let len = req.file.map_or(req.body.len() as u64, |f| f.2).to_string();
        let mut headers: Vec<(&str, &str)> =
            vec![("Host", &u.authority), ("User-Agent", &cfg.user_agent)];
        if len != "0" || matches!(req.method, "POST" | "PUT" | "PATCH") {
            headers.push(("Content-Length", &len));
        }
        headers.extend_from_slice(req.headers);
        let mut head = Vec::with_capacity(512);
        codec::write_request_head(&mut head, req.method, &u.target, &headers)
            .map_err(|e| Failure::Url(format!("{}: {e}", req.url)))?;
        head.extend_from_slice(req.body);
        let w = conn.get_mut();
        w.write_all(&head).map_err(classify)?;
        if let Some((f, mut off, mut left)) = req.file {
            let mut buf = vec![0u8; 64 << 10];
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = f.read_at(&mut buf[..want], off).map_err(|e| {
                    Failure::Protocol(format!("reading the request body: {}", io_words(&e)))
                })?;
                if n == 0 {
                    return Err(Failure::Protocol("request body file shrank".into()));
                }
                w.write_all(&buf[..n]).map_err(classify)?;
                (off, left) = (off + n as u64, left - n as u64);
            }
        }
        w.flush().map_err(classify)?;
        let parsed = loop {
            let raw = codec::read_head(&mut conn).map_err(classify)?;
            let h = codec::parse_response_head(&raw).map_err(|e| Failure::Protocol(e.ctx))?;
            // Interim answers (100 Continue, 103 Early Hints) precede the real one.
            if !(100..200).contains(&h.status) {
                break h;
            }
        };
        conn.get_ref()
            .tcp()
            .set_read_timeout(Some(cfg.read_timeout))
            .map_err(Failure::Io)?;
        let framing = codec::response_framing(req.method, parsed.status, &parsed.headers)
            .map_err(|e| Failure::Protocol(e.ctx))?;
        let keep = framing != Framing::Close && codec::keep_alive(parsed.minor, &parsed.headers);
        let mut resp = Response {
            status: parsed.status,
            reason: parsed.reason,
            headers: parsed.headers,
            url: req.url.to_string(),
            body: Some(Body::new(conn, framing)),
            reuse: keep.then(|| (self.0.clone(), key.to_string())),
        };
        resp.release();
        Ok(resp)
    }

    /// TCP (through the proxy's tunnel if any), then TLS for https.
    fn connect(
        &self,
        u: &Url,
        proxy: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Conn, Failure> {
        let cfg = &self.0.cfg;
        let connect_timeout = timeout.unwrap_or(cfg.connect_timeout);
        let tcp = match proxy {
            None => tcp_connect(&u.host, u.port, connect_timeout)?,
            Some(p) => self.tunnel(p, u, connect_timeout)?,
        };
        let _ = tcp.set_nodelay(true);
        tcp.set_read_timeout(Some(connect_timeout))
            .map_err(Failure::Io)?;
        tcp.set_write_timeout(Some(connect_timeout))
            .map_err(Failure::Io)?;
        let stream = if u.https {
            let name = ServerName::try_from(u.host.clone())
                .map_err(|_| Failure::Url(format!("invalid TLS server name {:?}", u.host)))?;
            let conn =
                rustls::ClientConnection::new(cfg.tls.clone(), name).map_err(Failure::Tls)?;
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            while tls.conn.is_handshaking() {
                tls.conn.complete_io(&mut tls.sock).map_err(classify)?;
            }
            Stream::Tls(Box::new(tls))
        } else {
            Stream::Tcp(tcp)
        };
        Ok(BufReader::with_capacity(64 << 10, stream))
    }

    /// `CONNECT host:port` through an `http://[user:pass@]proxy[:port]`.
    fn tunnel(&self, proxy: &str, u: &Url, timeout: Duration) -> Result<TcpStream, Failure> {
        let p = Url::parse(proxy)
            .map_err(|_| Failure::Proxy(format!("invalid proxy URL {proxy:?}")))?;
        if p.https {
            return Err(Failure::Proxy(format!(
                "{}: only http:// proxies are supported",
                p.authority
            )));
        }
        let mut tcp = tcp_connect(&p.host, p.port, timeout)
            .map_err(|f| Failure::Proxy(format!("{}: {f}", p.authority)))?;
        tcp.set_read_timeout(Some(timeout)).map_err(Failure::Io)?;
        tcp.set_write_timeout(Some(timeout)).map_err(Failure::Io)?;
        let target = if u.host.contains(':') {
            format!("[{}]:{}", u.host, u.port)
        } else {
            format!("{}:{}", u.host, u.port)
        };
        let mut headers = vec![("Host", target.clone())];
        if let Some((userinfo, _)) = proxy
            .split_once("://")
            .and_then(|(_, r)| r.split(['/', '?']).next())
            .and_then(|a| a.rsplit_once('@'))
        {
            let userinfo = percent_decode(userinfo);
            headers.push((
                "Proxy-Authorization",
                format!(
                    "Basic {}",
                    crate::image::registry::creds::b64_encode(userinfo.as_bytes())
                ),
            ));
        }
        let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        codec::write_request_head(&mut tcp, "CONNECT", &target, &h).map_err(classify)?;
        // Byte by byte: nothing after the proxy's head belongs to it.
        let mut one = BufReader::with_capacity(1, &tcp);
        let raw = codec::read_head(&mut one)
            .map_err(|e| Failure::Proxy(format!("{}: {}", p.authority, io_words(&e))))?;
        debug_assert!(one.buffer().is_empty());
        let h = codec::parse_response_head(&raw)
            .map_err(|e| Failure::Proxy(format!("{}: {}", p.authority, e.ctx)))?;
        if !(200..300).contains(&h.status) {
            return Err(Failure::Proxy(format!(
                "{} refused CONNECT {target}: {} {}",
                p.authority, h.status, h.reason
            )));
        }
        Ok(tcp)
    }
}

/// `%xx` escapes in a proxy URL's user and password.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tcp_connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, Failure> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|_| Failure::NoHost)?
        .collect();
    let mut last = Failure::NoHost;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = classify(e),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split() {
        let u = Url::parse("https://u:p@r.io:5000/v2/x?y=1#frag").unwrap();
        assert!(u.https);
        assert_eq!(u.authority, "r.io:5000");
        assert_eq!((u.host.as_str(), u.port), ("r.io", 5000));
        assert_eq!(u.target, "/v2/x?y=1");
        let u = Url::parse("http://[::1]/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 80));
        assert_eq!(u.authority, "[::1]");
        let u = Url::parse("https://h?q").unwrap();
        assert_eq!((u.port, u.target.as_str()), (443, "/?q"));
        assert!(Url::parse("ftp://h/").is_err());
        assert!(Url::parse("https://h:99999/").is_err());
        assert!(Url::parse("https:///x").is_err());
        assert!(Url::parse("nothing").is_err());
        assert_eq!(percent_decode("a%40b:p%3"), "a@b:p%3");
    }

    #[test]
    fn client_is_send_sync_clone() {
        fn f<T: Send + Sync + Clone>() {}
        f::<Client>();
        fn g<T: Send>() {}
        g::<Response>();
    }

    /// A server on loopback that answers each connection's requests from
    /// a script; returns how many connections it accepted.
    fn serve(answers: Vec<&'static [u8]>) -> (String, std::thread::JoinHandle<usize>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut conns = 0;
            let mut answers = answers.into_iter().peekable();
            'outer: while let Ok((s, _)) = l.accept() {
                conns += 1;
                let mut r = BufReader::new(s.try_clone().unwrap());
                while let Ok(raw) = codec::read_head(&mut r) {
                    let h = codec::parse_request_head(&raw).unwrap();
                    if let Ok(codec::Framing::Length(n)) = codec::request_framing(&h.headers) {
                        let mut b = vec![0; n as usize];
                        r.read_exact(&mut b).unwrap();
                    }
                    let Some(a) = answers.next() else {
                        break 'outer;
                    };
                    (&s).write_all(a).unwrap();
                    if answers.peek().is_none() {
                        break 'outer;
                    }
                    if a.ends_with(b"CLOSE") {
                        break;
                    }
                }
            }
            conns
        });
        (format!("http://{addr}"), t)
    }

    fn client() -> Client {
        let roots = rustls::RootCertStore::empty();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            crate::image::registry::tls::provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        Client::new(Config {
            tls: Arc::new(tls),
            proxies: ProxyEnv::default(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            user_agent: "test".into(),
        })
    }

    #[test]
    fn keep_alive_redirects_and_chunks() {
        let (base, t) = serve(vec![
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /b\r\nContent-Length: 3\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhey\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nokCLOSE",
            b"HTTP/1.1 200 OK\r\n\r\nto the endCLOSE",
        ]);
        let c = client();
        let url = format!("{base}/a");
        let mut r = c
            .follow(&Request::new("GET", &url), Some("Bearer x"))
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.url, format!("{base}/b"));
        assert_eq!(r.read_capped(100).unwrap(), b"hey");
        let mut r = c.send(&Request::new("GET", &url)).unwrap();
        assert_eq!(r.read_capped(100).unwrap(), b"ok");
        let mut r = c.send(&Request::new("GET", &url)).unwrap();
        assert_eq!(r.read_capped(100).unwrap(), b"to the endCLOSE");
        drop(c);
        // One connection for the first three, one for the last.
        assert_eq!(t.join().unwrap(), 2);
    }

    #[test]
    fn file_bodies_stream_a_range_and_survive_a_redirect() {
        let path = std::env::temp_dir().join(format!("runway-body-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let f = File::open(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut bodies = Vec::new();
            for answer in [
                &b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n"[..],
                b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            ] {
                let raw = codec::read_head(&mut r).unwrap();
                let h = codec::parse_request_head(&raw).unwrap();
                let Ok(codec::Framing::Length(n)) = codec::request_framing(&h.headers) else {
                    panic!("no length");
                };
                let mut b = vec![0; n as usize];
                r.read_exact(&mut b).unwrap();
                bodies.push(b);
                (&s).write_all(answer).unwrap();
            }
            bodies
        });
        let url = format!("{base}/a");
        let req = Request {
            file: Some((&f, 3, 4)),
            ..Request::new("PUT", &url)
        };
        let r = client().follow(&req, None).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(t.join().unwrap(), vec![b"3456".to_vec(), b"3456".to_vec()]);
    }

    #[test]
    fn stale_connection_is_replaced_and_errors_are_one_line() {
        let (base, t) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            // The server then closes the idle connection.
        ]);
        let c = client();
        let url = format!("{base}/");
        c.send(&Request::new("GET", &url)).unwrap();
        assert_eq!(t.join().unwrap(), 1);
        let e = c.send(&Request::new("GET", &url)).unwrap_err();
        let line = e.error("GET", &url).to_string();
        assert_eq!(line, format!("GET {url}: connection refused"));
    }
}
