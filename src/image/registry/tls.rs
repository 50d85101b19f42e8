//! TLS trust for one registry: the host's CA bundle (or Mozilla's roots when
//! the host has none), plus docker's per-registry `certs.d/HOST:PORT/`
//! directories (extra CAs, a client certificate).

use std::fs;
use std::path::{Path, PathBuf};
use ureq::tls::{parse_pem, Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

/// Bundles tried when neither SSL_CERT_FILE nor SSL_CERT_DIR names one:
/// Debian/Ubuntu/Alpine, Fedora/RHEL, openSUSE.
const HOST_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The `certs.d` directories for `host` (`HOST:PORT` as the user wrote
/// it), most specific first: runway's own under the data root, then
/// docker's.
pub fn certs_dirs(data_root: &Path, host: &str) -> Vec<PathBuf> {
    vec![
        data_root.join("certs.d").join(host),
        Path::new("/etc/docker/certs.d").join(host),
    ]
}

/// What the TLS config for one registry is made of (kept apart from ureq's
/// types so the choice can be tested and reported).
pub struct Trust {
    /// The host's CAs; empty: use webpki-roots' Mozilla roots.
    pub host_roots: Vec<Certificate<'static>>,
    /// CAs from certs.d for this registry.
    pub registry_roots: Vec<Certificate<'static>>,
    pub client: Option<ClientCert>,
}

impl Trust {
    /// The host's roots plus the certs.d entries of every name in `names`
    /// (`HOST:PORT` as users write it; the first client certificate wins).
    pub fn load(data_root: &Path, names: &[&str]) -> Trust {
        let mut registry_roots = Vec::new();
        let mut client = None;
        for dir in names.iter().flat_map(|h| certs_dirs(data_root, h)) {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            names.sort();
            for p in &names {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.ends_with(".crt") {
                    registry_roots.extend(certs_in(p));
                } else if client.is_none() && name.ends_with(".cert") {
                    // docker: client.cert goes with client.key.
                    let key = p.with_extension("key");
                    client = client_cert(p, &key);
                }
            }
        }
        Trust {
            host_roots: host_roots(),
            registry_roots,
            client,
        }
    }

    /// ureq's TLS config; `verify` false only for --insecure-registry hosts.
    pub fn config(self, verify: bool) -> TlsConfig {
        let roots = if self.host_roots.is_empty() && self.registry_roots.is_empty() {
            RootCerts::WebPki
        } else if self.host_roots.is_empty() {
            // ureq takes either its Mozilla set or a list of certificates,
            // not both: a host without a bundle that trusts a private CA
            // for this registry gets that CA alone (redirects to public
            // storage would then fail; such hosts are rare).
            RootCerts::new_with_certs(&self.registry_roots)
        } else {
            let mut all = self.host_roots;
            all.extend(self.registry_roots);
            RootCerts::from(all)
        };
        TlsConfig::builder()
            .root_certs(roots)
            .client_cert(self.client)
            .disable_verification(!verify)
            .build()
    }
}

/// The host's CA certificates, as Go's crypto/x509 (and so docker) finds
/// them: SSL_CERT_FILE, SSL_CERT_DIR (colon-separated), else the
/// distribution's bundle. Empty when there is none (an initramfs).
pub fn host_roots() -> Vec<Certificate<'static>> {
    let mut out = Vec::new();
    let mut named = false;
    if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        named = true;
        out.extend(certs_in(Path::new(&f)));
    }
    if let Some(dirs) = std::env::var_os("SSL_CERT_DIR").filter(|v| !v.is_empty()) {
        named = true;
        for dir in std::env::split_paths(&dirs) {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_file() {
                    out.extend(certs_in(&p));
                }
            }
        }
    }
    if !named {
        for b in HOST_BUNDLES {
            let c = certs_in(Path::new(b));
            if !c.is_empty() {
                out = c;
                break;
            }
        }
    }
    out
}

/// Every certificate in a PEM file; unreadable files and other PEM items
/// are skipped (a bundle with one bad entry still trusts the rest).
fn certs_in(p: &Path) -> Vec<Certificate<'static>> {
    let Ok(bytes) = fs::read(p) else {
        return Vec::new();
    };
    parse_pem(&bytes)
        .filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect()
}

fn client_cert(cert: &Path, key: &Path) -> Option<ClientCert> {
    let chain = certs_in(cert);
    let kb = fs::read(key).ok()?;
    let k: PrivateKey<'static> = parse_pem(&kb).find_map(|i| match i {
        Ok(PemItem::PrivateKey(k)) => Some(k.to_owned()),
        _ => None,
    })?;
    if chain.is_empty() {
        return None;
    }
    Some(ClientCert::new_with_certs(&chain, k))
}
