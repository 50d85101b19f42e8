//! TLS trust for one registry: the host's CA bundle (or Mozilla's roots when
//! the host has none), plus docker's per-registry `certs.d/HOST:PORT/`
//! directories (extra CAs, a client certificate).

use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Certificate<'a> = CertificateDer<'a>;
/// A client certificate chain and its key.
pub type ClientCert = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

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

/// What the TLS config for one registry is made of (kept apart from the
/// rustls config so the choice can be tested and reported).
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

    /// The rustls config; `verify` false only for --insecure-registry
    /// hosts. TLS 1.2 stays on: registries behind older terminators.
    pub fn config(self, verify: bool) -> Result<Arc<ClientConfig>> {
        let provider = Arc::new(provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::msg(format!("tls: {e}")))?;
        let builder = if verify {
            let mut roots = RootCertStore::empty();
            if self.host_roots.is_empty() {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            } else {
                roots.add_parsable_certificates(self.host_roots);
            }
            roots.add_parsable_certificates(self.registry_roots);
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(
                    provider.signature_verification_algorithms,
                )))
        };
        let config = match self.client {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::msg(format!("tls: client certificate: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// ring's provider with the AES-GCM suites only. Every TLS 1.2 and 1.3
/// server offers AES-GCM (1.3 requires AES-128-GCM); ChaCha20-Poly1305's
/// assembly is ~50 KB of the shipped binary, and listing the suites here
/// (instead of trimming `default_provider()`'s list at run time) is what
/// lets the linker drop it. ring has no post-quantum key exchange (rustls
/// deprecates its provider for that); aws-lc-rs would cost far more than
/// it brings. Key exchange is ECDHE on P-256 (and P-384), not X25519:
/// TLS 1.3 makes secp256r1 mandatory for every server, TLS 1.2 servers
/// with ECDHE all offer it, and ring's X25519 needs its own 24 KB
/// base-point table besides the P-256 one that certificate checks need
/// anyway.
pub fn provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::ring::{cipher_suite as cs, kx_group};
    rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
        kx_groups: vec![kx_group::SECP256R1, kx_group::SECP384R1],
        signature_verification_algorithms: SIG_ALGS,
        secure_random: &OsRandom,
        key_provider: &RingKeys,
    }
}

/// What certificates and handshakes may be signed with: webpki's ring
/// algorithms (ECDSA P-256/P-384, RSA PKCS#1 and PSS), each TLS signature
/// scheme mapped to the ones that verify it (for TLS 1.2 the curve is not
/// fixed by the scheme). Ed25519 is left out: no public or registry CA
/// issues it, and its code is ~15 KB.
static SIG_ALGS: WebPkiSupportedAlgorithms = {
    use webpki::ring as a;
    WebPkiSupportedAlgorithms {
        all: &[
            a::ECDSA_P256_SHA256,
            a::ECDSA_P256_SHA384,
            a::ECDSA_P384_SHA256,
            a::ECDSA_P384_SHA384,
            a::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            a::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
            a::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
            a::RSA_PKCS1_2048_8192_SHA256,
            a::RSA_PKCS1_2048_8192_SHA384,
            a::RSA_PKCS1_2048_8192_SHA512,
            a::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
            a::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
            a::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
        ],
        mapping: &[
            (
                SignatureScheme::ECDSA_NISTP384_SHA384,
                &[a::ECDSA_P384_SHA384, a::ECDSA_P256_SHA384],
            ),
            (
                SignatureScheme::ECDSA_NISTP256_SHA256,
                &[a::ECDSA_P256_SHA256, a::ECDSA_P384_SHA256],
            ),
            (
                SignatureScheme::RSA_PSS_SHA512,
                &[a::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
            ),
            (
                SignatureScheme::RSA_PSS_SHA384,
                &[a::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
            ),
            (
                SignatureScheme::RSA_PSS_SHA256,
                &[a::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
            ),
            (
                SignatureScheme::RSA_PKCS1_SHA512,
                &[a::RSA_PKCS1_2048_8192_SHA512],
            ),
            (
                SignatureScheme::RSA_PKCS1_SHA384,
                &[a::RSA_PKCS1_2048_8192_SHA384],
            ),
            (
                SignatureScheme::RSA_PKCS1_SHA256,
                &[a::RSA_PKCS1_2048_8192_SHA256],
            ),
        ],
    }
};

/// The kernel's randomness (getrandom(2)), as ring's own provider uses.
#[derive(Debug)]
struct OsRandom;

impl rustls::crypto::SecureRandom for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> std::result::Result<(), rustls::crypto::GetRandomFailed> {
        let mut got = 0;
        while got < buf.len() {
            // SAFETY: getrandom(2) into the unfilled tail of `buf`.
            let r = unsafe { libc::getrandom(buf[got..].as_mut_ptr().cast(), buf.len() - got, 0) };
            if r < 0 {
                if crate::error::last_errno() == libc::EINTR {
                    continue;
                }
                return Err(rustls::crypto::GetRandomFailed);
            }
            got += r as usize;
        }
        Ok(())
    }
}

/// Client certificate keys (certs.d's client.key), loaded by ring.
#[derive(Debug)]
struct RingKeys;

impl rustls::crypto::KeyProvider for RingKeys {
    fn load_private_key(
        &self,
        key: PrivateKeyDer<'static>,
    ) -> std::result::Result<Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
        // RSA or ECDSA, as SIG_ALGS; not Ed25519, whose signing code would
        // bring ring's 24 KB Ed25519 table back.
        use rustls::crypto::ring::sign;
        match sign::RsaSigningKey::new(&key) {
            Ok(k) => Ok(Arc::new(k)),
            Err(_) => sign::any_ecdsa_type(&key),
        }
    }
}

/// --insecure-registry: any certificate is accepted, but the handshake's
/// signatures are still checked (the peer holds the key it presents).
#[derive(Debug)]
struct NoVerify(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
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
    CertificateDer::pem_slice_iter(&bytes)
        .filter_map(|c| c.ok())
        .collect()
}

fn client_cert(cert: &Path, key: &Path) -> Option<ClientCert> {
    let chain = certs_in(cert);
    let kb = fs::read(key).ok()?;
    let k = PrivateKeyDer::from_pem_slice(&kb).ok()?;
    if chain.is_empty() {
        return None;
    }
    Some((chain, k))
}
