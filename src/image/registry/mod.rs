//! The Distribution API v2 client: manifests and blobs over HTTP(S), with
//! docker's auth, credentials and TLS rules. Blocking ([`crate::http`]), no async.
//!
//! # Using it (pull.rs)
//!
//! ```ignore
//! let r = Reference::parse("busybox")?;
//! // `r.registry` (docker.io), not api_host(): the options map docker.io to
//! // registry-1.docker.io themselves and keep the name for messages,
//! // credentials and certs.d.
//! let opts = ClientOptions::new(&r.registry, &g.data_root, &g.insecure_registries);
//! let client = Client::new(opts)?;          // no network yet; Clone + Send + Sync
//! // Warm pull: the digest only (HEAD; GET if the registry sends no digest).
//! let head: ManifestHead = client.head_manifest(&r.repository, &r.api_reference())?;
//! // The manifest or index; a digest reference is verified, a tag's digest
//! // computed (and cross-checked with Docker-Content-Digest).
//! let m: FetchedManifest = client.get_manifest(&r.repository, &r.api_reference())?;
//! let parsed = types::parse_manifest(&m.bytes, Some(&m.media_type))?; // Index or Manifest
//! // A platform's manifest from an index: get_manifest(repo, desc.digest.as_str()).
//! // A config: read whole, verified, capped at MAX_JSON_BLOB.
//! let cfg: Vec<u8> = client.get_small_blob(&r.repository, &desc.digest)?;
//! // A layer, streamed (registry, then the descriptor's foreign `urls`);
//! // `Range: bytes=offset-` when offset > 0.
//! let mut body: BlobBody = client.get_layer(&r.repository, &layer_desc, offset)?;
//! if body.start != offset { /* 200: the server sent it all, restart from 0 */ }
//! std::io::copy(&mut body, &mut file)?;     // unverified bytes: the caller hashes
//! ```
//!
//! The calls, all `&self`:
//! - [`Client::new`]`(ClientOptions) -> Result<Client>`
//! - [`Client::get_manifest`]`(repo, reference) -> Result<FetchedManifest { bytes, media_type, digest }>`
//! - [`Client::head_manifest`]`(repo, reference) -> Result<ManifestHead { digest, media_type, size }>`
//! - [`Client::get_blob`]`(repo, &Digest, offset) -> Result<BlobBody>` (`Read + Send`;
//!   `start`, `length`, `total`, `url`)
//! - [`Client::get_layer`]`(repo, &Descriptor, offset) -> Result<BlobBody>` (+ foreign URLs)
//! - [`Client::get_url`]`(url, offset) -> Result<BlobBody>` (no registry auth sent)
//! - [`Client::get_small_blob`]`(repo, &Digest) -> Result<Vec<u8>>`
//! - [`Client::check_login`]`() -> Result<()>` (login's check), [`Client::base_url`].
//! - [`Client::push_call`]`(&Request, scope, want) -> Result<Response>`:
//!   push.rs's requests (HEAD blob, POST upload or mount, PATCH/PUT with a
//!   body streamed from a blob file, PUT manifest) with a token for
//!   [`auth::push_scope`]; [`upload_location`] resolves an upload's URL.
//!
//! Several threads may use one client (or its clones) at once: one `/v2/`
//! probe, one token request per scope (the others wait for it), a shared
//! connection pool. Blob bodies have no total timeout; a read that gets
//! nothing for [`READ_TIMEOUT`] fails (a stall); connecting may take
//! [`CONNECT_TIMEOUT`]. A 416 to a Range (the partial is complete or
//! longer than the blob) is an error: restart from 0.
//!
//! Errors are one line each: `manifest unknown: docker.io/library/nope:latest`
//! (an unknown tag; `… (no such repository)` when the registry says
//! NAME_UNKNOWN), `unauthorized: authentication required (HOST)`, `registry
//! 127.0.0.1:5999 unreachable: connection refused`, `tls: HOST: invalid
//! peer certificate: UnknownIssuer`, `digest mismatch for manifest …`, the
//! registry's JSON errors as docker shows them (`blob unknown: blob
//! unknown to registry`). An anonymous pull that a token registry answers
//! with 401 (Docker Hub's answer for a repository that does not exist)
//! reads `manifest unknown: REF: repository does not exist or needs
//! 'runway image login' (unauthorized: …)`.
//!
//! Scheme (docker's rule, see [`plan`]): HTTPS first, always. A loopback
//! registry (localhost, 127.0.0.0/8, ::1) falls back to plain HTTP when its
//! port does not speak TLS, but not when it does and the handshake fails
//! (untrusted certificate, missing client certificate): that error is
//! reported. A registry named in `--insecure-registry` may use HTTP, and
//! its HTTPS certificate is not verified (docker's meaning of the flag).
//!
//! Auth: the `/v2/` challenge decides. Bearer: a token per
//! `repository:REPO:pull` scope (a push's: `REPO:pull,push`, plus
//! `FROM:pull` to mount from FROM, in one request) from the realm (anonymous, basic
//! credentials, or docker's `identitytoken` as an OAuth2 refresh token
//! POSTed), cached until shortly before `expires_in`, replaced once when
//! the registry answers 401. Basic: credentials on every request.
//! Credentials: [`creds`] (docker's auth file format; `credsStore` and
//! credential helpers are not supported).
//!
//! Redirects are followed by [`crate::http::client`]: `Authorization` is sent only
//! to the origin it was meant for (a 307 to blob storage never carries the
//! registry's token); Range and Accept are kept.
//!
//! TLS roots: [`tls`] (the host's bundle or Mozilla's, plus
//! `DATA_ROOT/certs.d/HOST/` and `/etc/docker/certs.d/HOST/`: `*.crt` CAs,
//! `client.cert` + `client.key`). Proxies: [`proxy`] (HTTPS_PROXY for https,
//! HTTP_PROXY for http, NO_PROXY, never for loopback). Even plain-HTTP
//! targets are reached through a proxy with CONNECT, which some proxies
//! refuse for ports other than 443 (only insecure registries behind a
//! proxy are affected).

pub mod auth;
pub mod creds;
pub mod tls;

pub use crate::http::proxy;

use crate::error::{Error, Result};
use crate::http::client::{self as http, origin_of, Failure, Request, Response};
use crate::image::digest::Digest;
use crate::image::types::{self, Descriptor};
use auth::{Challenge, TokenCache};
pub use creds::Credentials;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Connecting (TCP + TLS) may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A body that delivers nothing for this long is stalled: the read fails.
/// There is no total timeout: a big layer on a slow link takes what it takes.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The HTTPS attempt at a registry that may fall back to HTTP: a plain
/// HTTP server may sit on a TLS ClientHello without answering (it waits
/// for a line end), so do not wait the full connect timeout for it.
pub const PROBE_TLS_TIMEOUT: Duration = Duration::from_secs(3);
/// Error bodies are read up to this much, for their JSON error codes.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// What a client needs to know about its registry.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The registry as users name it (`docker.io`, `127.0.0.1:5000`): for
    /// messages, credentials and `certs.d`.
    pub registry: String,
    /// Where its API is (`registry-1.docker.io` for docker.io).
    pub host: String,
    /// For `DATA_ROOT/certs.d/HOST/`.
    pub data_root: PathBuf,
    /// `--insecure-registry` names (`host` or `host:port`).
    pub insecure_registries: Vec<String>,
    /// None: looked up in `auth_files`.
    pub credentials: Option<Credentials>,
    /// Where to look credentials up, first match wins; defaults to
    /// [`creds::search_path`] (`$REGISTRY_AUTH_FILE`, podman's, docker's).
    pub auth_files: Vec<PathBuf>,
}

impl ClientOptions {
    /// For `registry` as in [`crate::image::reference::Reference::registry`].
    pub fn new(registry: &str, data_root: &Path, insecure: &[String]) -> ClientOptions {
        let host = if registry == crate::image::reference::DOCKER_HUB {
            crate::image::reference::DOCKER_HUB_API.to_string()
        } else {
            registry.to_string()
        };
        ClientOptions {
            registry: registry.to_string(),
            host,
            data_root: data_root.to_path_buf(),
            insecure_registries: insecure.to_vec(),
            credentials: None,
            auth_files: creds::search_path(),
        }
    }
}

/// How to reach a host: which schemes, whether its certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Verify the HTTPS certificate (false only for --insecure-registry).
    pub verify: bool,
    /// Try plain HTTP when HTTPS does not work.
    pub http_fallback: bool,
}

/// docker's rule: plain HTTP only for loopback registries and those named
/// with --insecure-registry (which also skip certificate checks). Loopback
/// ones keep certificate checks: a registry that does speak TLS must
/// present a certificate we trust.
pub fn plan(host: &str, insecure: &[String]) -> Plan {
    let bare = strip_port(host);
    let listed = insecure.iter().any(|i| {
        let i = i
            .trim()
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        i.eq_ignore_ascii_case(host) || (!i.contains(':') && i.eq_ignore_ascii_case(bare))
    });
    Plan {
        verify: !listed,
        http_fallback: listed || is_loopback(host),
    }
}

/// `host` without `:port`; `[::1]:5000` gives `::1`.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// localhost, 127.0.0.0/8, ::1 (with or without a port).
pub fn is_loopback(host: &str) -> bool {
    let bare = strip_port(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A manifest or index as the registry served it.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    /// Content-Type without parameters; empty if the registry sent none.
    pub media_type: String,
    /// Verified: the digest asked for, or computed from `bytes`.
    pub digest: Digest,
}

/// What a HEAD of a manifest says.
#[derive(Clone, Debug)]
pub struct ManifestHead {
    pub digest: Digest,
    pub media_type: String,
    pub size: Option<u64>,
}

/// A blob being downloaded. Read it to the end; the caller hashes what it
/// reads (nothing here is verified).
pub struct BlobBody {
    reader: Box<dyn Read + Send>,
    /// Where in the blob the body starts: the offset asked for when the
    /// server honoured the Range (206), else 0 (200: the whole blob).
    pub start: u64,
    /// Bytes this body will deliver (Content-Length), if known.
    pub length: Option<u64>,
    /// The whole blob's size, if known (Content-Range's total, or the
    /// length of a 200 answer).
    pub total: Option<u64>,
    /// The URL the bytes came from after redirects (for messages).
    pub url: String,
}

impl BlobBody {
    /// True when the server resumed at the offset asked for.
    pub fn resumed(&self) -> bool {
        self.start > 0
    }
}

impl Read for BlobBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

impl std::fmt::Debug for BlobBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobBody")
            .field("start", &self.start)
            .field("length", &self.length)
            .field("total", &self.total)
            .field("url", &self.url)
            .finish()
    }
}

/// A client for one registry. Cheap to clone (shared state); Send + Sync.
#[derive(Clone)]
pub struct Client(Arc<Inner>);

struct Inner {
    registry: String,
    host: String,
    http: http::Client,
    plan: Plan,
    creds: Option<Credentials>,
    /// Set by the first request: the base URL and the auth challenge.
    endpoint: Mutex<Option<Endpoint>>,
    tokens: Mutex<TokenCache>,
}

#[derive(Clone, Debug)]
struct Endpoint {
    /// `https://host[:port]` or `http://…`.
    base: String,
    challenge: Challenge,
}

/// A failed connection, classified for the HTTPS -> HTTP fallback.
struct NetError {
    /// The peer speaks TLS (the handshake failed on certificates, alerts,
    /// versions…): report it, never fall back to plain HTTP.
    tls_peer: bool,
    err: Error,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps inconsistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Client {
    /// A client for `opts.host`. Loads TLS roots and credentials; does no
    /// network I/O (the first request probes `/v2/`).
    pub fn new(opts: ClientOptions) -> Result<Client> {
        if opts.host.is_empty() || opts.host.contains(['/', ' ', '@', '?', '#']) {
            return Err(Error::msg(format!("invalid registry host {:?}", opts.host)));
        }
        let plan = plan(&opts.host, &opts.insecure_registries);
        // certs.d by the name users know and, for docker.io, by API host.
        let mut names = vec![opts.registry.as_str()];
        if opts.host != opts.registry {
            names.push(&opts.host);
        }
        let trust = tls::Trust::load(&opts.data_root, &names);
        // The proxy is chosen per request (by scheme and host, see proxy.rs).
        let http = http::Client::new(http::Config {
            tls: trust.config(plan.verify)?,
            proxies: proxy::ProxyEnv::from_env(),
            connect_timeout: CONNECT_TIMEOUT,
            read_timeout: READ_TIMEOUT,
            user_agent: concat!("runway/", env!("CARGO_PKG_VERSION")).to_string(),
        });
        let creds = match opts.credentials {
            Some(c) => Some(c),
            None => creds::lookup(&opts.auth_files, &opts.registry)
                .or_else(|| creds::lookup(&opts.auth_files, &opts.host)),
        };
        Ok(Client(Arc::new(Inner {
            registry: opts.registry,
            host: opts.host,
            http,
            plan,
            creds,
            endpoint: Mutex::new(None),
            tokens: Mutex::new(TokenCache::default()),
        })))
    }

    /// The registry's name as given in the options.
    pub fn registry(&self) -> &str {
        &self.0.registry
    }

    /// `https://host` or `http://host` once the first request decided.
    pub fn base_url(&self) -> Result<String> {
        Ok(self.endpoint()?.base)
    }

    /// `login`'s check: the credentials are accepted (the token service
    /// grants a token with them, or `/v2/` answers 200 with basic auth).
    pub fn check_login(&self) -> Result<()> {
        let ep = self.endpoint()?;
        let Some(creds) = &self.0.creds else {
            return Err(Error::msg("login: no credentials given"));
        };
        match &ep.challenge {
            Challenge::None => Ok(()),
            Challenge::Basic => {
                let url = format!("{}/v2/", ep.base);
                let mut resp = self.follow("GET", &url, &[], Some(&creds.basic()))?;
                if resp.is_success() {
                    Ok(())
                } else {
                    Err(self.status_error(&mut resp, "login"))
                }
            }
            Challenge::Bearer { .. } => self.fetch_token(&ep.challenge, "", true).map(|_| ()),
        }
    }

    /// GET a manifest or index by tag or digest (`reference`), with
    /// [`types::ACCEPT_MANIFESTS`]. A digest reference is verified; a tag's
    /// digest is computed from the bytes and checked against
    /// Docker-Content-Digest when the registry sends one.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<FetchedManifest> {
        let want = reference_digest(reference);
        let path = format!("/v2/{repo}/manifests/{reference}");
        let mut resp = self.request(
            "GET",
            &path,
            &[("Accept", types::ACCEPT_MANIFESTS)],
            Some(repo),
        )?;
        if !resp.is_success() {
            return Err(self.manifest_error(&mut resp, repo, reference));
        }
        let media_type = content_type(&resp);
        let header_digest = header(&resp, "docker-content-digest");
        let bytes = read_capped(&mut resp, types::MAX_JSON_BLOB)
            .map_err(|e| e.wrap(format!("manifest {}", self.display_ref(repo, reference))))?;
        let digest = Digest::of(&bytes);
        if let Some(w) = want {
            if w != digest {
                return Err(Error::msg(format!(
                    "digest mismatch for manifest {}: got {digest}",
                    self.display_ref(repo, reference)
                )));
            }
        } else if let Some(h) = header_digest.as_deref().and_then(|h| Digest::parse(h).ok()) {
            if h != digest {
                return Err(Error::msg(format!(
                    "digest mismatch for manifest {}: registry says {h}, content is {digest}",
                    self.display_ref(repo, reference)
                )));
            }
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// HEAD a manifest: its digest without its body (a warm pull's only
    /// request). Falls back to GET when the registry sends no digest.
    pub fn head_manifest(&self, repo: &str, reference: &str) -> Result<ManifestHead> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let mut resp = self.request(
            "HEAD",
            &path,
            &[("Accept", types::ACCEPT_MANIFESTS)],
            Some(repo),
        )?;
        if !resp.is_success() {
            return Err(self.manifest_error(&mut resp, repo, reference));
        }
        let media_type = content_type(&resp);
        let size = header(&resp, "content-length").and_then(|l| l.parse().ok());
        match header(&resp, "docker-content-digest").and_then(|h| Digest::parse(&h).ok()) {
            Some(digest) => {
                if let Some(w) = reference_digest(reference) {
                    if w != digest {
                        return Err(Error::msg(format!(
                            "digest mismatch for manifest {}: registry says {digest}",
                            self.display_ref(repo, reference)
                        )));
                    }
                }
                Ok(ManifestHead {
                    digest,
                    media_type,
                    size,
                })
            }
            None => {
                let m = self.get_manifest(repo, reference)?;
                Ok(ManifestHead {
                    digest: m.digest,
                    media_type: m.media_type,
                    size: Some(m.bytes.len() as u64),
                })
            }
        }
    }

    /// A blob from the registry, from `offset` on (`Range: bytes=offset-`
    /// when offset > 0; see [`BlobBody::start`] for what was honoured).
    pub fn get_blob(&self, repo: &str, digest: &Digest, offset: u64) -> Result<BlobBody> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let range = format!("bytes={offset}-");
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if offset > 0 {
            headers.push(("Range", &range));
        }
        let (resp, url) = self.request_url("GET", &path, &headers, Some(repo))?;
        self.blob_body(resp, url, offset, || {
            format!("blob {} in {}/{repo}", digest, self.0.registry)
        })
    }

    /// A layer: from the registry, or when it does not have the blob, from
    /// the descriptor's `urls` (foreign layers), in order.
    pub fn get_layer(&self, repo: &str, desc: &Descriptor, offset: u64) -> Result<BlobBody> {
        let first = match self.get_blob(repo, &desc.digest, offset) {
            Ok(b) => return Ok(b),
            Err(e) => e,
        };
        let urls = desc.urls.as_deref().unwrap_or(&[]);
        let mut last = first;
        for u in urls {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                continue;
            }
            match self.get_url(u, offset) {
                Ok(b) => return Ok(b),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A blob from a foreign URL: no registry auth is sent there.
    pub fn get_url(&self, url: &str, offset: u64) -> Result<BlobBody> {
        let range = format!("bytes={offset}-");
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if offset > 0 {
            headers.push(("Range", &range));
        }
        let (resp, url) = self.follow_url("GET", url, &headers, None)?;
        self.blob_body(resp, url.clone(), offset, || format!("foreign layer {url}"))
    }

    /// A small blob (an image config), read whole, verified, capped at
    /// [`types::MAX_JSON_BLOB`].
    pub fn get_small_blob(&self, repo: &str, digest: &Digest) -> Result<Vec<u8>> {
        let mut body = self.get_blob(repo, digest, 0)?;
        let what = || format!("blob {digest}");
        if body.length.is_some_and(|l| l > types::MAX_JSON_BLOB) {
            return Err(Error::msg(format!(
                "{}: larger than {} bytes",
                what(),
                types::MAX_JSON_BLOB
            )));
        }
        let mut bytes = Vec::new();
        (&mut body)
            .take(types::MAX_JSON_BLOB + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::msg(format!("{}: {e}", what())))?;
        if bytes.len() as u64 > types::MAX_JSON_BLOB {
            return Err(Error::msg(format!(
                "{}: larger than {} bytes",
                what(),
                types::MAX_JSON_BLOB
            )));
        }
        let got = Digest::of(&bytes);
        if &got != digest {
            return Err(Error::msg(format!(
                "digest mismatch for {}: got {got}",
                what()
            )));
        }
        Ok(bytes)
    }

    // ------------------------------------------------------------ push

    /// A push's request (push.rs builds them): `req.url` a path or an
    /// upload's URL, sent with a token for `scope` ([`auth::push_scope`]);
    /// an answer not in `want` is the registry's error.
    pub fn push_call(&self, req: &Request<'_>, scope: &str, want: &[u16]) -> Result<Response> {
        let mut resp = self.call(req, scope)?;
        if !want.contains(&resp.status) {
            return Err(self.status_error(&mut resp, ""));
        }
        Ok(resp)
    }

    // ------------------------------------------------------------ internals

    fn blob_body(
        &self,
        mut resp: Response,
        url: String,
        offset: u64,
        what: impl Fn() -> String,
    ) -> Result<BlobBody> {
        let status = resp.status;
        let length = header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok());
        let (start, total) = match status {
            200 => (0, length),
            206 => {
                let cr = header(&resp, "content-range").unwrap_or_default();
                match parse_content_range(&cr) {
                    Some((s, t)) if s == offset => (s, t),
                    // A range we did not ask for: unusable.
                    _ => {
                        return Err(Error::msg(format!(
                            "{}: server answered Range bytes={offset}- with {cr:?}",
                            what()
                        )))
                    }
                }
            }
            // Asked past the end (the partial is already complete or
            // corrupt): the caller restarts from 0.
            416 => {
                return Err(Error::msg(format!(
                    "{}: range not satisfiable at offset {offset}",
                    what()
                )))
            }
            _ => {
                let e = self.status_error(&mut resp, "");
                return Err(e.wrap(what()));
            }
        };
        Ok(BlobBody {
            reader: Box::new(resp),
            start,
            length,
            total,
            url,
        })
    }

    fn display_ref(&self, repo: &str, reference: &str) -> String {
        if reference_digest(reference).is_some() {
            format!("{}/{repo}@{reference}", self.0.registry)
        } else {
            format!("{}/{repo}:{reference}", self.0.registry)
        }
    }

    fn manifest_error(&self, resp: &mut Response, repo: &str, reference: &str) -> Error {
        let status = resp.status;
        let errors = read_errors(resp);
        let name = self.display_ref(repo, reference);
        let code = errors.first().map(|(c, _)| c.as_str()).unwrap_or("");
        match (status, code) {
            (_, "MANIFEST_UNKNOWN") | (404, "") => Error::msg(format!("manifest unknown: {name}")),
            // An unknown image, not just an unknown tag.
            (_, "NAME_UNKNOWN") => {
                Error::msg(format!("manifest unknown: {name} (no such repository)"))
            }
            // Docker Hub answers an anonymous pull of a repository that
            // does not exist with 401, not 404: say both, as docker does.
            (401, _)
                if self.0.creds.is_none()
                    && matches!(self.current_challenge(), Some(Challenge::Bearer { .. })) =>
            {
                Error::msg(format!(
                    "manifest unknown: {name}: repository does not exist or needs 'runway image login' ({})",
                    self.error_from(status, &errors, "")
                ))
            }
            (_, "MANIFEST_INVALID") | (_, "MANIFEST_UNVERIFIED")
                if errors.iter().any(|(_, m)| m.contains("schema")) =>
            {
                Error::msg(format!("{name}: {}", render_errors(&errors)))
            }
            _ => self.error_from(status, &errors, &name),
        }
    }

    fn status_error(&self, resp: &mut Response, what: &str) -> Error {
        let status = resp.status;
        let errors = read_errors(resp);
        self.error_from(status, &errors, what)
    }

    /// `CODE: message` from the registry's JSON errors (docker's words:
    /// lower case, `_` as space), or the HTTP status.
    fn error_from(&self, status: u16, errors: &[(String, String)], what: &str) -> Error {
        let host = &self.0.registry;
        if status == 401 {
            let msg = if errors.is_empty() {
                "unauthorized: authentication required".to_string()
            } else {
                render_errors(errors)
            };
            return Error::msg(format!("{msg} ({host})"));
        }
        let body = if errors.is_empty() {
            format!("HTTP {} {}", status, reason(status))
                .trim_end()
                .to_string()
        } else {
            render_errors(errors)
        };
        if what.is_empty() {
            Error::msg(format!("{body} ({host})"))
        } else {
            Error::msg(format!("{what}: {body}"))
        }
    }

    fn current_challenge(&self) -> Option<Challenge> {
        lock(&self.0.endpoint).as_ref().map(|e| e.challenge.clone())
    }

    fn endpoint(&self) -> Result<Endpoint> {
        let mut g = lock(&self.0.endpoint);
        if let Some(e) = g.as_ref() {
            return Ok(e.clone());
        }
        let e = self.probe()?;
        *g = Some(e.clone());
        Ok(e)
    }

    fn probe(&self) -> Result<Endpoint> {
        let https = format!("https://{}", self.0.host);
        let https_err = match self.probe_at(&https) {
            Ok(Ok(challenge)) => {
                return Ok(Endpoint {
                    base: https,
                    challenge,
                })
            }
            Ok(Err((_, e))) => return Err(e),
            Err(e) => e,
        };
        if !self.0.plan.http_fallback || https_err.tls_peer {
            return Err(https_err.err);
        }
        let http = format!("http://{}", self.0.host);
        match self.probe_at(&http) {
            Ok(Ok(challenge)) => Ok(Endpoint {
                base: http,
                challenge,
            }),
            // 400 to plain HTTP: a TLS port after all ("Client sent an HTTP
            // request to an HTTPS server"); the HTTPS failure is the news.
            Ok(Err((400, _))) => Err(https_err.err),
            Ok(Err((_, e))) => Err(e),
            Err(e) => Err(e.err),
        }
    }

    /// Outer Err: could not talk to it; inner Err: it answered, badly
    /// (with that HTTP status).
    #[allow(clippy::type_complexity)]
    fn probe_at(
        &self,
        base: &str,
    ) -> std::result::Result<std::result::Result<Challenge, (u16, Error)>, NetError> {
        let url = format!("{base}/v2/");
        let short = base.starts_with("https://") && self.0.plan.http_fallback;
        let mut resp = self.raw_timeout("GET", &url, &[], None, short)?;
        let status = resp.status;
        if (200..300).contains(&status) {
            return Ok(Ok(Challenge::None));
        }
        if status == 401 {
            return Ok(match challenge_of(&resp) {
                Some(c) => Ok(c),
                None => Err((
                    401,
                    Error::msg(format!(
                        "registry {}: unsupported authentication challenge {:?}",
                        self.0.host,
                        header(&resp, "www-authenticate").unwrap_or_default()
                    )),
                )),
            });
        }
        if status == 404 {
            return Ok(Err((
                404,
                Error::msg(format!(
                    "registry {}: {url} not found: not a registry (Distribution API v2)",
                    self.0.host
                )),
            )));
        }
        let what = format!("registry {}", self.0.host);
        Ok(Err((status, self.status_error(&mut resp, &what))))
    }

    /// The Authorization header for requests in `scope` (a token's scopes,
    /// space-separated; "" for none); `force` fetches a new token even if
    /// one is cached.
    fn authorization(&self, ch: &Challenge, scope: &str, force: bool) -> Result<Option<String>> {
        match ch {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(self.0.creds.as_ref().map(Credentials::basic)),
            Challenge::Bearer { .. } => {
                let t = self.token(ch, scope, force)?;
                Ok(Some(format!("Bearer {t}")))
            }
        }
    }

    /// A token for `scope`, from the cache or the token service. The cache
    /// lock is held while fetching so that parallel downloads of one
    /// image cause one token request, not one each.
    fn token(&self, ch: &Challenge, scope: &str, force: bool) -> Result<String> {
        let mut cache = lock(&self.0.tokens);
        let now = Instant::now();
        if !force {
            if let Some(t) = cache.get(scope, now) {
                return Ok(t.value.clone());
            }
        }
        let t = self.fetch_token(ch, scope, self.0.creds.is_some())?;
        let v = t.value.clone();
        cache.put(scope, t);
        Ok(v)
    }

    fn fetch_token(&self, ch: &Challenge, scope: &str, with_creds: bool) -> Result<auth::Token> {
        let Challenge::Bearer { realm, service } = ch else {
            return Err(Error::msg("internal: token without a bearer challenge"));
        };
        let creds = if with_creds {
            self.0.creds.as_ref()
        } else {
            None
        };
        let what = format!("token service {}", host_of(realm));
        let mut resp = match creds.and_then(|c| auth::refresh_form(c, service.as_deref(), scope)) {
            Some(form) => {
                let req = Request {
                    headers: &[("Content-Type", "application/x-www-form-urlencoded")],
                    body: form.as_bytes(),
                    ..Request::new("POST", realm)
                };
                self.0
                    .http
                    .send(&req)
                    .map_err(|f| self.net_error(realm, f).err)?
            }
            None => {
                let url = auth::token_url(realm, service.as_deref(), scope);
                let basic = creds.map(Credentials::basic);
                self.follow_url("GET", &url, &[], basic.as_deref())?.0
            }
        };
        let status = resp.status;
        if !(200..300).contains(&status) {
            let errors = read_errors(&mut resp);
            return Err(if status == 401 || status == 403 {
                let detail = if errors.is_empty() {
                    "authentication required".to_string()
                } else {
                    errors
                        .iter()
                        .map(|(_, m)| m.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                Error::msg(format!("unauthorized: {detail} ({})", self.0.registry))
            } else {
                self.error_from(status, &errors, &what)
            });
        }
        let body = read_capped(&mut resp, 1 << 20).map_err(|e| e.wrap(&what))?;
        auth::parse_token_response(&body, Instant::now()).map_err(|e| e.wrap(&what))
    }

    /// A registry request for `path` (`/v2/…`), authenticated, redirects
    /// followed; on 401 a new token is fetched once and the request retried.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        repo: Option<&str>,
    ) -> Result<Response> {
        self.request_url(method, path, headers, repo).map(|r| r.0)
    }

    fn request_url(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        repo: Option<&str>,
    ) -> Result<(Response, String)> {
        let req = Request {
            headers,
            ..Request::new(method, path)
        };
        let resp = self.call(&req, &repo.map(auth::pull_scope).unwrap_or_default())?;
        let url = resp.url.clone();
        Ok((resp, url))
    }

    /// A registry request: `req.url` is a path (`/v2/…`) or an absolute
    /// URL (an upload's Location), authenticated for `scope` when it is
    /// the registry's own, redirects followed; on 401 a new token is
    /// fetched once and the request sent again.
    fn call(&self, req: &Request<'_>, scope: &str) -> Result<Response> {
        let mut ep = self.endpoint()?;
        let url = if req.url.starts_with('/') {
            format!("{}{}", ep.base, req.url)
        } else {
            req.url.to_string()
        };
        // Never hand the registry's credentials to another host.
        let ours = origin_of(&url).eq_ignore_ascii_case(&ep.base);
        let mut authz = match ours {
            true => self.authorization(&ep.challenge, scope, false)?,
            false => None,
        };
        let mut retried = false;
        loop {
            let r = Request { url: &url, ..*req };
            let resp = self
                .0
                .http
                .follow(&r, authz.as_deref())
                .map_err(|f| self.net_error(&url, f).err)?;
            if resp.status != 401 || retried || !ours {
                return Ok(resp);
            }
            retried = true;
            // The token expired or was revoked, or this repository asks for
            // auth although /v2/ did not: take the challenge it sends.
            if let Some(c) = challenge_of(&resp) {
                if c != ep.challenge {
                    ep.challenge = c;
                    *lock(&self.0.endpoint) = Some(ep.clone());
                }
            }
            if let Some(tok) = authz.as_deref().and_then(|a| a.strip_prefix("Bearer ")) {
                lock(&self.0.tokens).drop_value(scope, tok);
            }
            let fresh = self.authorization(&ep.challenge, scope, true)?;
            if fresh.is_none() || fresh == authz {
                return Ok(resp);
            }
            authz = fresh;
        }
    }

    fn follow(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        authz: Option<&str>,
    ) -> Result<Response> {
        self.follow_url(method, url, headers, authz).map(|r| r.0)
    }

    /// Send, following redirects (see [`http::Client::follow`]).
    fn follow_url(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        authz: Option<&str>,
    ) -> Result<(Response, String)> {
        let req = Request {
            headers,
            ..Request::new(method, url)
        };
        let resp = self
            .0
            .http
            .follow(&req, authz)
            .map_err(|f| self.net_error(url, f).err)?;
        let url = resp.url.clone();
        Ok((resp, url))
    }

    /// One HTTP exchange, errors classified; `short`: the probe's short
    /// connect and answer timeouts.
    fn raw_timeout(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        authz: Option<&str>,
        short: bool,
    ) -> std::result::Result<Response, NetError> {
        let mut all = headers.to_vec();
        if let Some(a) = authz {
            all.push(("Authorization", a));
        }
        let req = Request {
            headers: &all,
            timeout: short.then_some(PROBE_TLS_TIMEOUT),
            ..Request::new(method, url)
        };
        self.0.http.send(&req).map_err(|f| self.net_error(url, f))
    }

    /// One line naming the host: `registry H unreachable: connection
    /// refused`, `tls: H: invalid peer certificate: UnknownIssuer`.
    fn net_error(&self, url: &str, f: Failure) -> NetError {
        let host = host_of(url);
        let who = if host == self.0.host {
            format!("registry {host}")
        } else {
            host.to_string()
        };
        let plain = |msg: String| NetError {
            tls_peer: false,
            err: Error::msg(msg),
        };
        match f {
            Failure::Tls(r) => NetError {
                // Bytes that are not TLS (an HTTP answer to our ClientHello)
                // are the one TLS failure that means "try plain HTTP".
                tls_peer: !matches!(r, rustls::Error::InvalidMessage(_)),
                err: Error::msg(format!("tls: {host}: {r}")),
            },
            Failure::Io(io) => plain(format!("{who} unreachable: {}", http::io_words(&io))),
            Failure::NoHost => plain(format!("{who} unreachable: no such host")),
            Failure::Timeout => plain(format!("{who} unreachable: timeout")),
            Failure::Proxy(m) => plain(format!("{who}: proxy: {m}")),
            Failure::Redirects => plain(format!("{host}: {f}")),
            Failure::Url(m) => plain(m),
            Failure::Protocol(m) => plain(format!("{who}: {m}")),
        }
    }
}

/// `Some(digest)` when the reference is one.
fn reference_digest(reference: &str) -> Option<Digest> {
    if reference.contains(':') {
        Digest::parse(reference).ok()
    } else {
        None
    }
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.header(name).map(str::to_string)
}

fn content_type(resp: &Response) -> String {
    header(resp, "content-type")
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default()
}

/// The first challenge we can answer: Bearer preferred over Basic.
fn challenge_of(resp: &Response) -> Option<Challenge> {
    let all: Vec<Challenge> = resp
        .headers
        .get_all("www-authenticate")
        .filter_map(auth::parse_challenge)
        .collect();
    all.iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or(all.first())
        .cloned()
}

fn read_capped(resp: &mut Response, cap: u64) -> Result<Vec<u8>> {
    resp.read_capped(cap).map_err(|e| {
        if e.kind() == std::io::ErrorKind::Other {
            Error::msg(e.to_string())
        } else {
            Error::msg(format!("reading the answer: {}", http::io_words(&e)))
        }
    })
}

/// The registry's JSON errors: `{"errors":[{"code":…,"message":…}]}`.
fn read_errors(resp: &mut Response) -> Vec<(String, String)> {
    let Ok(body) = resp.read_capped(MAX_ERROR_BODY) else {
        return Vec::new();
    };
    parse_errors(&body)
}

/// The reason phrases docker's messages show for the statuses a registry
/// sends (the peer's own phrase is not trusted to be meaningful).
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

pub fn parse_errors(body: &[u8]) -> Vec<(String, String)> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let Some(errs) = v.get("errors").and_then(|e| e.as_array()) else {
        return Vec::new();
    };
    errs.iter()
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            (s("code"), s("message"))
        })
        .filter(|(c, m)| !c.is_empty() || !m.is_empty())
        .collect()
}

/// docker's rendering: `manifest unknown: manifest unknown`,
/// `unauthorized: authentication required`; several joined with "; ".
pub fn render_errors(errors: &[(String, String)]) -> String {
    errors
        .iter()
        .map(|(c, m)| {
            let c = c.to_ascii_lowercase().replace('_', " ");
            match (c.is_empty(), m.is_empty()) {
                (true, _) => m.clone(),
                (_, true) => c,
                _ => format!("{c}: {m}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `bytes START-END/TOTAL` -> (START, Some(TOTAL)) (`*` total: None).
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let r = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = r.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let total = total.trim().parse().ok();
    Some((start, total))
}

/// An upload's Location, resolved against the URL it answered (its query,
/// the upload's state, kept).
pub fn upload_location(resp: &Response) -> Result<String> {
    match resp.header("location") {
        Some(l) if !l.is_empty() => Ok(http::resolve_url(&resp.url, l)),
        _ => Err(Error::msg("blob upload: the registry sent no Location")),
    }
}

/// The authority (`host:port`) of a URL.
fn host_of(url: &str) -> &str {
    let o = origin_of(url);
    let h = o.find("://").map_or(o, |i| &o[i + 3..]);
    h.rsplit('@').next().unwrap_or(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client::resolve_url;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn scheme_decision_follows_docker() {
        let none: Vec<String> = Vec::new();
        let https_only = Plan {
            verify: true,
            http_fallback: false,
        };
        let loopback = Plan {
            verify: true,
            http_fallback: true,
        };
        let insecure = Plan {
            verify: false,
            http_fallback: true,
        };
        assert_eq!(plan("registry-1.docker.io", &none), https_only);
        assert_eq!(plan("10.0.0.5:5000", &none), https_only);
        assert_eq!(plan("myregistry.local:5000", &none), https_only);
        assert_eq!(plan("127.0.0.1:5000", &none), loopback);
        assert_eq!(plan("127.1.2.3", &none), loopback);
        assert_eq!(plan("localhost:5000", &none), loopback);
        assert_eq!(plan("LOCALHOST", &none), loopback);
        assert_eq!(plan("[::1]:5000", &none), loopback);
        assert_eq!(plan("10.0.0.5:5000", &s(&["10.0.0.5:5000"])), insecure);
        assert_eq!(plan("10.0.0.5:5000", &s(&["10.0.0.5"])), insecure);
        assert_eq!(
            plan("10.0.0.5:5000", &s(&["http://10.0.0.5:5000/"])),
            insecure
        );
        assert_eq!(plan("10.0.0.5:5001", &s(&["10.0.0.5:5000"])), https_only);
        assert_eq!(plan("reg.example", &s(&["other.example"])), https_only);
        // A name that only looks local is not loopback.
        assert_eq!(plan("localhost.example.com", &none), https_only);
        assert_eq!(plan("128.0.0.1", &none), https_only);
    }

    #[test]
    fn urls() {
        assert_eq!(origin_of("https://a:5000/v2/x?y"), "https://a:5000");
        assert_eq!(origin_of("http://a"), "http://a");
        assert_eq!(host_of("https://u:p@a:5000/v2/"), "a:5000");
        assert_eq!(host_of("http://[::1]:5000/v2/"), "[::1]:5000");
        assert_eq!(
            resolve_url("https://r/v2/x/blobs/s", "https://s3/b?sig=1"),
            "https://s3/b?sig=1"
        );
        assert_eq!(
            resolve_url("https://r/v2/x/blobs/s", "/other"),
            "https://r/other"
        );
        assert_eq!(
            resolve_url("https://r/v2/x/blobs/s", "//cdn/p"),
            "https://cdn/p"
        );
        assert_eq!(
            resolve_url("https://r/v2/x/blobs/s?q", "t"),
            "https://r/v2/x/blobs/t"
        );
    }

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
        assert_eq!(parse_content_range(""), None);
    }

    #[test]
    fn registry_errors_render_like_docker() {
        let e = parse_errors(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
        );
        assert_eq!(render_errors(&e), "manifest unknown: manifest unknown");
        let e = parse_errors(br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"},{"code":"DENIED","message":""}]}"#);
        assert_eq!(
            render_errors(&e),
            "unauthorized: authentication required; denied"
        );
        assert!(parse_errors(b"<html>").is_empty());
        assert!(parse_errors(br#"{"errors":"x"}"#).is_empty());
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("[::1]"));
        assert!(!is_loopback("[::2]:5000"));
        assert!(!is_loopback("example.com:5000"));
        assert_eq!(strip_port("a:5000"), "a");
        assert_eq!(strip_port("::1"), "::1");
    }

    #[test]
    fn client_is_send_sync_clone() {
        fn f<T: Send + Sync + Clone>() {}
        f::<Client>();
        fn g<T: Send>() {}
        g::<BlobBody>();
    }
}
