//! Registries for the image tests on 127.0.0.1: Debian's docker-registry over HTTP, HTTPS (a CA the test makes), htpasswd basic auth and a bearer-token service; fault proxies (byte flips, cut connections).
//!
//! Everything here stops and cleans up on drop: registry processes are
//! killed and reaped, server threads joined, temporary directories removed.
//! A missing tool makes `Registry::start` return None after printing the
//! standard `skipped:` line.

#![cfg(feature = "full")]
#![allow(dead_code)]

use super::{note, skip};
use serde_json::json;
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const SKOPEO: &str = "/usr/bin/skopeo";
/// The user the basic-auth and token registries accept.
pub const USER: &str = "tester";
pub const PASSWORD: &str = "s3cret-pass";
pub const TOKEN_SERVICE: &str = "runway-test-registry";
pub const TOKEN_ISSUER: &str = "runway-test-issuer";

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under cargo's per-target tmp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{what}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn have(tool: &str) -> bool {
    Path::new(tool).exists()
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A free port on 127.0.0.1 (bound and released: the registry binds it
/// next; `Registry::start` retries if another process took it meanwhile).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ------------------------------------------------------------------- PKI

/// A CA and a server certificate for 127.0.0.1 / localhost, made with the
/// openssl CLI (EC P-256: fast to make).
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A client certificate from the same CA (docker's certs.d names:
    /// `client.cert`, `client.key`).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    pub fn make(dir: &Path) -> Pki {
        let p = |n: &str| dir.join(n);
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run(Command::new("openssl")
            .args(["req", "-x509", "-days", "2", "-subj", "/CN=runway test CA"])
            .args(ec)
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.crt")));
        run(Command::new("openssl")
            .args(["req", "-new", "-subj", "/CN=localhost"])
            .args(ec)
            .arg("-keyout")
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr")));
        fs::write(
            p("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.crt"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-extfile")
            .arg(p("ext.cnf"))
            .arg("-out")
            .arg(p("server.crt")));
        run(Command::new("openssl")
            .args(["req", "-new", "-subj", "/CN=runway test client"])
            .args(ec)
            .arg("-keyout")
            .arg(p("client.key"))
            .arg("-out")
            .arg(p("client.csr")));
        fs::write(
            p("client.cnf"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(p("client.csr"))
            .arg("-CA")
            .arg(p("ca.crt"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-extfile")
            .arg(p("client.cnf"))
            .arg("-out")
            .arg(p("client.cert")));
        Pki {
            dir: dir.to_path_buf(),
            ca_cert: p("ca.crt"),
            server_cert: p("server.crt"),
            server_key: p("server.key"),
            client_cert: p("client.cert"),
            client_key: p("client.key"),
        }
    }
}

// ------------------------------------------------------- a tiny HTTP server

/// One request as a test server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path with query.
    pub target: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
}

impl Seen {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .get(&k.to_ascii_lowercase())
            .map(String::as_str)
    }
    pub fn query(&self, k: &str) -> Vec<String> {
        let q = self.target.split_once('?').map(|x| x.1).unwrap_or("");
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(kk, _)| *kk == k)
            .map(|(_, v)| unescape(v))
            .collect()
    }
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a handler answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1 in a thread: one request per connection
/// (it answers `Connection: close`), every request recorded.
pub struct TinyServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TinyServer {
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TinyServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s2, st2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let Some(req) = read_head(&mut conn) else {
                    continue;
                };
                s2.lock().unwrap().push(req.clone());
                let r = handler(&req);
                let mut head = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    r.status,
                    r.body.len()
                );
                for (k, v) in &r.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = conn.write_all(head.as_bytes());
                if req.method != "HEAD" {
                    let _ = conn.write_all(&r.body);
                }
                let _ = conn.shutdown(Shutdown::Both);
            }
        });
        TinyServer {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for TinyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Read a request head (and discard a small body).
fn read_head(conn: &mut TcpStream) -> Option<Seen> {
    // A TLS ClientHello (a client trying HTTPS first): close at once, as
    // a plain HTTP server would answer it with an error.
    let mut first = [0u8; 1];
    if conn.peek(&mut first).ok()? == 1 && first[0] == 0x16 {
        return None;
    }
    let mut r = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    if let Some(n) = headers
        .get("content-length")
        .and_then(|l| l.parse::<usize>().ok())
    {
        let mut body = vec![0; n.min(1 << 20)];
        let _ = r.read_exact(&mut body);
    }
    Some(Seen {
        method,
        target,
        headers,
    })
}

// ------------------------------------------------------------ token service

fn b64(data: &[u8], url: bool) -> String {
    let s = runway::image::registry::creds::b64_encode(data);
    if url {
        s.trim_end_matches('=').replace('+', "-").replace('/', "_")
    } else {
        s
    }
}

/// Docker Hub's token flow on 127.0.0.1: GET /token?service=&scope= answers
/// a JWT (ES256, `x5c` = the signing certificate, which the registry
/// trusts through its rootcertbundle). Anonymous callers get pull, USER
/// with PASSWORD gets pull and push, wrong credentials get 401.
pub struct TokenService {
    pub server: TinyServer,
    pub cert: PathBuf,
    /// Token requests answered with a token.
    pub issued: Arc<AtomicUsize>,
}

impl TokenService {
    pub fn start(dir: &Path) -> TokenService {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-days",
                "2",
                "-subj",
                "/CN=runway token signer",
            ])
            .args([
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let der = run(Command::new("openssl")
            .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
            .arg(&key))
        .stdout;
        let cert_der = run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert))
        .stdout;
        let rng = ring::rand::SystemRandom::new();
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &der,
            &rng,
        )
        .expect("token signing key");
        let x5c = b64(&cert_der, false);
        let issued = Arc::new(AtomicUsize::new(0));
        let iss2 = issued.clone();
        let seq = AtomicUsize::new(0);
        let server = TinyServer::start(move |req| {
            if !req.target.starts_with("/token") {
                return Reply::new(404, "not found");
            }
            let user = match req.header("authorization") {
                None => None,
                Some(a) => {
                    let ok = a
                        .strip_prefix("Basic ")
                        .and_then(runway::image::registry::creds::b64_decode)
                        .map(|d| d == format!("{USER}:{PASSWORD}").into_bytes())
                        .unwrap_or(false);
                    if !ok {
                        return Reply::new(
                            401,
                            r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
                        )
                        .header("Content-Type", "application/json");
                    }
                    Some(USER)
                }
            };
            let mut access = Vec::new();
            for scope in req.query("scope") {
                // repository:NAME:actions (NAME may hold ':' for a port-less
                // name? not in these tests).
                let mut it = scope.splitn(3, ':');
                let (Some(typ), Some(name), Some(actions)) = (it.next(), it.next(), it.next())
                else {
                    continue;
                };
                // Repositories under private/ are for USER only (a 401
                // for anonymous pulls, as Docker Hub answers).
                let anonymous_ok = !name.starts_with("private/");
                let granted: Vec<&str> = actions
                    .split(',')
                    .filter(|a| user.is_some() || (*a == "pull" && anonymous_ok))
                    .collect();
                access.push(json!({"type": typ, "name": name, "actions": granted}));
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let header = json!({"alg": "ES256", "typ": "JWT", "x5c": [x5c]});
            let claims = json!({
                "iss": TOKEN_ISSUER,
                "sub": user.unwrap_or(""),
                "aud": req.query("service").first().cloned().unwrap_or_default(),
                "exp": now + 300,
                "nbf": now - 10,
                "iat": now,
                "jti": format!("t{}", seq.fetch_add(1, Ordering::SeqCst)),
                "access": access,
            });
            let signing_input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes(), true),
                b64(claims.to_string().as_bytes(), true)
            );
            let sig = pair
                .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
                .unwrap();
            let token = format!("{signing_input}.{}", b64(sig.as_ref(), true));
            iss2.fetch_add(1, Ordering::SeqCst);
            Reply::new(
                200,
                json!({"token": token, "access_token": token, "expires_in": 300}).to_string(),
            )
            .header("Content-Type", "application/json")
        });
        TokenService {
            server,
            cert,
            issued,
        }
    }

    pub fn realm(&self) -> String {
        format!("{}/token", self.server.url())
    }

    pub fn token_requests(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.target.starts_with("/token"))
            .count()
    }
}

// ---------------------------------------------------------------- registry

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Http,
    /// TLS with a certificate from a CA the test made (`Registry::pki`).
    Https,
    /// Https, and clients must present a certificate from that CA.
    MutualTls,
    /// htpasswd basic auth (plain HTTP on loopback).
    Basic,
    /// Bearer tokens from `Registry::token` (plain HTTP on loopback).
    Token,
}

/// A docker-registry (distribution 2.8) on 127.0.0.1.
pub struct Registry {
    pub mode: Mode,
    pub port: u16,
    pub dir: TempDir,
    pub pki: Option<Pki>,
    pub token: Option<TokenService>,
    child: Option<Child>,
}

impl Registry {
    /// Start one; None (after a `skipped:` line) when a tool is missing.
    pub fn start(mode: Mode) -> Option<Registry> {
        for tool in [REGISTRY_BIN, SKOPEO] {
            if !have(tool) {
                skip(&format!("{tool} not installed"));
                return None;
            }
        }
        if mode == Mode::Basic && Command::new("htpasswd").arg("-h").output().is_err() {
            skip("htpasswd (apache2-utils) not installed");
            return None;
        }
        let dir = TempDir::new("registry");
        let d = dir.path().to_path_buf();
        let pki = matches!(mode, Mode::Https | Mode::MutualTls).then(|| Pki::make(&d));
        let token = (mode == Mode::Token).then(|| TokenService::start(&d));
        let mut auth = String::new();
        match mode {
            Mode::Basic => {
                let out = run(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD])).stdout;
                fs::write(d.join("htpasswd"), out).unwrap();
                auth = format!(
                    "auth:\n  htpasswd:\n    realm: runway-test\n    path: {}\n",
                    d.join("htpasswd").display()
                );
            }
            Mode::Token => {
                let t = token.as_ref().unwrap();
                auth = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    t.realm(),
                    t.cert.display()
                );
            }
            _ => {}
        }
        let tls = match &pki {
            Some(p) => {
                let mut t = format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    p.server_cert.display(),
                    p.server_key.display()
                );
                if mode == Mode::MutualTls {
                    t.push_str(&format!(
                        "    clientcas:\n      - {}\n",
                        p.ca_cert.display()
                    ));
                }
                t
            }
            None => String::new(),
        };
        fs::create_dir_all(d.join("storage")).unwrap();
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: runway-test-secret\n{tls}{auth}",
                d.join("storage").display()
            );
            let cfg = d.join("config.yml");
            fs::write(&cfg, config).unwrap();
            let log = fs::File::create(d.join("registry.log")).unwrap();
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut up = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if up {
                return Some(Registry {
                    mode,
                    port,
                    dir,
                    pki,
                    token,
                    child: Some(child),
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = fs::read_to_string(d.join("registry.log")).unwrap_or_default();
        }
        panic!("docker-registry did not start:\n{last_log}");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// skopeo's --dest-creds when the registry wants them.
    fn creds_args(&self) -> Vec<String> {
        match self.mode {
            Mode::Basic | Mode::Token => vec!["--dest-creds".into(), format!("{USER}:{PASSWORD}")],
            _ => Vec::new(),
        }
    }

    /// Push `oci:LAYOUT:TAG` to `REPO:DEST_TAG` here; `all` copies every
    /// image of an index (`--all`).
    pub fn push(&self, layout: &Path, tag: &str, repo_tag: &str, all: bool) {
        let mut cmd = Command::new(SKOPEO);
        cmd.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ])
        .args(["--preserve-digests"])
        .args(self.creds_args());
        if let (Mode::MutualTls, Some(p)) = (self.mode, &self.pki) {
            let certs = self.dir.path().join("skopeo-certs");
            fs::create_dir_all(&certs).unwrap();
            fs::copy(&p.client_cert, certs.join("client.cert")).unwrap();
            fs::copy(&p.client_key, certs.join("client.key")).unwrap();
            cmd.arg("--dest-cert-dir").arg(&certs);
        }
        if all {
            cmd.arg("--all");
        }
        // skopeo must not pick up the tests' auth files or the user's.
        let scratch = self.dir.path().join("skopeo-home");
        fs::create_dir_all(&scratch).unwrap();
        cmd.env("HOME", &scratch)
            .env("XDG_RUNTIME_DIR", &scratch)
            .env_remove("REGISTRY_AUTH_FILE")
            .env("NO_PROXY", "*")
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo_tag}", self.host()));
        let out = cmd.output().expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy to {} failed: {}\nregistry log:\n{}",
            self.host(),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ------------------------------------------------------------ fault proxies

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Pass everything through unchanged.
    None,
    /// XOR byte `offset` of every matching response body with 0xff.
    Flip { offset: u64 },
    /// Close the connection after `after` bytes of the first matching
    /// response body (later ones pass).
    CutOnce { after: u64 },
}

/// A TCP proxy on 127.0.0.1 in front of `target`, one request per
/// connection (it asks the server for `Connection: close`), that applies
/// `fault` to the bodies of responses to requests whose path contains
/// `path_filter` (e.g. `/blobs/`). Records request heads.
pub struct FaultProxy {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    pub fn start(target: SocketAddr, fault: Fault, path_filter: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let cut_done = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (seen.clone(), stop.clone());
        let filter = path_filter.to_string();
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            for conn in listener.incoming() {
                if st2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let (s3, filter, cut_done) = (s2.clone(), filter.clone(), cut_done.clone());
                workers.push(std::thread::spawn(move || {
                    let _ = proxy_one(client, target, fault, &filter, &s3, &cut_done);
                }));
            }
            for w in workers {
                let _ = w.join();
            }
        });
        FaultProxy {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy_one(
    mut client: TcpStream,
    target: SocketAddr,
    fault: Fault,
    filter: &str,
    seen: &Mutex<Vec<Seen>>,
    cut_done: &AtomicBool,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    // The request head, byte by byte up to the blank line (small).
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut b)? == 0 {
            return Ok(());
        }
        head.push(b[0]);
        if head.len() > 64 << 10 {
            return Ok(());
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    let mut out = format!("{first}\r\n");
    for l in lines {
        if l.is_empty() {
            continue;
        }
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            headers.insert(k.clone(), v.trim().to_string());
            if k == "connection" {
                continue;
            }
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    seen.lock().unwrap().push(Seen {
        method: method.clone(),
        target: path.clone(),
        headers,
    });
    let mut server = TcpStream::connect_timeout(&target, Duration::from_secs(5))?;
    server.write_all(out.as_bytes())?;
    // Requests here have no bodies (GET/HEAD), except token POSTs, which
    // the tests do not send through a proxy.
    let matching = path.contains(filter) && method == "GET";
    let mut resp_head = Vec::new();
    let mut in_body = false;
    let mut body_pos = 0u64;
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = server.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = buf[..n].to_vec();
        let mut start = 0;
        if !in_body {
            // Find the end of the response head in what we have so far.
            let before = resp_head.len();
            resp_head.extend_from_slice(&chunk);
            if let Some(i) = find(&resp_head, b"\r\n\r\n") {
                in_body = true;
                start = i + 4 - before;
            } else {
                client.write_all(&chunk)?;
                continue;
            }
        }
        let body_len = (chunk.len() - start) as u64;
        if matching {
            match fault {
                Fault::Flip { offset } if offset >= body_pos && offset < body_pos + body_len => {
                    chunk[start + (offset - body_pos) as usize] ^= 0xff;
                }
                Fault::CutOnce { after }
                    if !cut_done.load(Ordering::SeqCst) && body_pos + body_len > after =>
                {
                    let keep = start + (after.saturating_sub(body_pos)) as usize;
                    client.write_all(&chunk[..keep])?;
                    cut_done.store(true, Ordering::SeqCst);
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = server.shutdown(Shutdown::Both);
                    return Ok(());
                }
                _ => {}
            }
        }
        body_pos += body_len;
        client.write_all(&chunk)?;
    }
    let _ = client.shutdown(Shutdown::Write);
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Note a registry's log on failure paths.
pub fn dump_log(r: &Registry) {
    note(&format!("registry {} log:\n{}", r.host(), r.log()));
}

// ------------------------------------------------------------ CONNECT proxy

/// An HTTP CONNECT proxy on 127.0.0.1 (what HTTPS_PROXY/HTTP_PROXY point
/// at): tunnels `CONNECT name:port` to the address `routes` maps it to,
/// answers 403 to anything else, and records every CONNECT target. Names
/// are never resolved, so tests can use names like `registry.invalid`.
pub struct ConnectProxy {
    pub addr: SocketAddr,
    pub targets: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ConnectProxy {
    pub fn start(routes: Vec<(String, SocketAddr)>) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (t2, st2) = (targets.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            for conn in listener.incoming() {
                if st2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut client) = conn else { continue };
                let Some(req) = read_head(&mut client) else {
                    continue;
                };
                t2.lock()
                    .unwrap()
                    .push(format!("{} {}", req.method, req.target));
                let route = routes.iter().find(|(n, _)| *n == req.target).map(|r| r.1);
                let (true, Some(to)) = (req.method == "CONNECT", route) else {
                    let _ = client.write_all(
                        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                };
                let Ok(server) = TcpStream::connect(to) else {
                    let _ =
                        client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                    continue;
                };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                workers.push(std::thread::spawn(move || pipe_both(client, server)));
            }
            for w in workers {
                let _ = w.join();
            }
        });
        ConnectProxy {
            addr,
            targets,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copy both ways until either side closes.
fn pipe_both(client: TcpStream, server: TcpStream) {
    let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let mut c = client;
        let mut s = server;
        let _ = std::io::copy(&mut c, &mut s);
        let _ = s.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut s2, &mut c2);
    let _ = c2.shutdown(Shutdown::Both);
    let _ = up.join();
}
