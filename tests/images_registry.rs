//! The registry client against a real docker-registry on 127.0.0.1 in each
//! mode (HTTP, HTTPS with a test CA, htpasswd basic auth, bearer tokens),
//! plus scripted servers for what distribution does not do (redirects to
//! storage, foreign layers, schema 1) and `runway image login/logout`.

#![cfg(feature = "full")]

mod common;

use common::oci::{self, noise, Built, Compress, Image, Layer, Layout};
use common::registry::{
    ConnectProxy, Fault, FaultProxy, Mode, Registry, Reply, TempDir, TinyServer, PASSWORD, USER,
};
use common::{note, runtime};
use runway::image::digest::Digest;
use runway::image::registry::{creds, Client, ClientOptions, Credentials};
use runway::image::types::{self, Parsed};
use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Options that read no auth file and trust only what the test says.
fn opts(host: &str, data_root: &Path) -> ClientOptions {
    let mut o = ClientOptions::new(host, data_root, &[]);
    o.auth_files = Vec::new();
    o
}

fn client(host: &str, data_root: &Path, creds: Option<Credentials>) -> Client {
    let mut o = opts(host, data_root);
    o.credentials = creds;
    Client::new(o).unwrap()
}

fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

/// A layout with one two-layer image tagged `v1` and an amd64+arm64
/// index tagged `multi`.
struct Fixture {
    _dir: TempDir,
    layout: Layout,
    image: Built,
    /// The index's digest.
    index: Digest,
    /// The first layer's blob (300 KiB of noise, gzip'd: ~300 KiB).
    layer: Vec<u8>,
}

fn fixture() -> Fixture {
    let dir = TempDir::new("layout");
    let mut layout = Layout::create(&dir.path().join("oci"));
    let amd = Image::new(vec![
        Layer::file(Compress::Gzip, "data.bin", noise(1, 300 << 10)),
        Layer::file(Compress::Gzip, "etc/hostname", "runway\n"),
    ]);
    let image = layout.add_image("v1", &amd);
    let mut arm = Image::new(vec![Layer::file(Compress::Gzip, "arm.txt", "arm64\n")]);
    arm.arch = "arm64".into();
    let (index, _) = layout.add_index("multi", &[amd, arm]);
    let layer = fs::read(layout.blob_path(&image.layers[0])).unwrap();
    Fixture {
        _dir: dir,
        layout,
        image,
        index,
        layer,
    }
}

/// Start a registry in `mode` with the fixture pushed as `test/img:v1` and
/// `test/img:multi`.
fn registry_with_images(mode: Mode) -> Option<(Registry, Fixture)> {
    let reg = Registry::start(mode)?;
    let fx = fixture();
    reg.push(&fx.layout.dir, "v1", "test/img:v1", false);
    reg.push(&fx.layout.dir, "multi", "test/img:multi", true);
    Some((reg, fx))
}

fn check_manifests_and_blobs(c: &Client, fx: &Fixture) {
    let md = fx.image.manifest.clone();
    let want = fs::read(fx.layout.blob_path(&md)).unwrap();
    // By tag: bytes as pushed, digest computed.
    let m = c.get_manifest("test/img", "v1").unwrap();
    assert_eq!(m.digest, md);
    assert_eq!(m.bytes, want);
    assert_eq!(m.media_type, types::OCI_MANIFEST);
    // By digest: verified.
    let m2 = c.get_manifest("test/img", md.as_str()).unwrap();
    assert_eq!(m2.bytes, want);
    // HEAD: the digest only.
    let h = c.head_manifest("test/img", "v1").unwrap();
    assert_eq!(h.digest, md);
    assert_eq!(h.size, Some(want.len() as u64));
    // The config, small and verified.
    let Parsed::Manifest(man) = types::parse_manifest(&m.bytes, Some(&m.media_type)).unwrap()
    else {
        panic!("v1 is not an image manifest");
    };
    let cfg = c.get_small_blob("test/img", &man.config.digest).unwrap();
    assert_eq!(Digest::of(&cfg), man.config.digest);
    // A layer whole, then resumed at an offset (206, the rest exactly).
    let ld = &man.layers[0].digest;
    let body = c.get_blob("test/img", ld, 0).unwrap();
    assert_eq!((body.start, body.total), (0, Some(fx.layer.len() as u64)));
    assert_eq!(read_all(body), fx.layer);
    let off = 100_000u64;
    let body = c.get_blob("test/img", ld, off).unwrap();
    assert!(body.resumed(), "{body:?}");
    assert_eq!(body.start, off);
    assert_eq!(body.total, Some(fx.layer.len() as u64));
    assert_eq!(body.length, Some(fx.layer.len() as u64 - off));
    assert_eq!(read_all(body), &fx.layer[off as usize..]);
}

#[test]
fn http_manifests_blobs_and_range() {
    let Some((reg, fx)) = registry_with_images(Mode::Http) else {
        return;
    };
    let root = TempDir::new("root");
    let c = client(&reg.host(), root.path(), None);
    check_manifests_and_blobs(&c, &fx);
    // Loopback without TLS: HTTPS tried first, then plain HTTP.
    assert_eq!(c.base_url().unwrap(), format!("http://{}", reg.host()));
}

#[test]
fn index_versus_manifest() {
    let Some((reg, fx)) = registry_with_images(Mode::Http) else {
        return;
    };
    let root = TempDir::new("root");
    let c = client(&reg.host(), root.path(), None);
    let m = c.get_manifest("test/img", "multi").unwrap();
    assert_eq!(m.media_type, types::OCI_INDEX);
    assert_eq!(m.digest, fx.index);
    let Parsed::Index(idx) = types::parse_manifest(&m.bytes, Some(&m.media_type)).unwrap() else {
        panic!("multi is not an index");
    };
    let archs: Vec<String> = idx
        .manifests
        .iter()
        .map(|d| d.platform.as_ref().unwrap().architecture.clone())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    for d in &idx.manifests {
        let child = c.get_manifest("test/img", d.digest.as_str()).unwrap();
        assert_eq!(child.media_type, types::OCI_MANIFEST);
        assert_eq!(child.digest, d.digest);
    }
}

#[test]
fn unknown_tag_repo_and_digest() {
    let Some((reg, _fx)) = registry_with_images(Mode::Http) else {
        return;
    };
    let root = TempDir::new("root");
    let c = client(&reg.host(), root.path(), None);
    let h = reg.host();
    let e = c.get_manifest("test/img", "nope").unwrap_err().to_string();
    assert_eq!(e, format!("manifest unknown: {h}/test/img:nope"));
    let e = c.head_manifest("test/img", "nope").unwrap_err().to_string();
    assert_eq!(e, format!("manifest unknown: {h}/test/img:nope"));
    let e = c
        .get_manifest("test/none", "latest")
        .unwrap_err()
        .to_string();
    // distribution 2.8 says MANIFEST_UNKNOWN here (others NAME_UNKNOWN,
    // which gives "… (no such repository)").
    assert_eq!(e, format!("manifest unknown: {h}/test/none:latest"));
    let d = Digest::of(b"nothing");
    let e = c
        .get_manifest("test/img", d.as_str())
        .unwrap_err()
        .to_string();
    assert_eq!(e, format!("manifest unknown: {h}/test/img@{d}"));
    let e = c.get_blob("test/img", &d, 0).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("blob {d} in {h}/test/img: blob unknown")),
        "{e}"
    );
    assert!(!e.contains('\n'));
}

#[test]
fn unreachable_registry_is_one_line() {
    let port = common::registry::free_port();
    let root = TempDir::new("root");
    let c = client(&format!("127.0.0.1:{port}"), root.path(), None);
    let e = c.get_manifest("x/y", "latest").unwrap_err().to_string();
    assert_eq!(
        e,
        format!("registry 127.0.0.1:{port} unreachable: connection refused")
    );
}

#[test]
fn token_flow_anonymous_is_cached_per_scope() {
    let Some((reg, fx)) = registry_with_images(Mode::Token) else {
        return;
    };
    let tok = reg.token.as_ref().unwrap();
    let root = TempDir::new("root");
    let c = client(&reg.host(), root.path(), None);
    let before = tok.token_requests();
    check_manifests_and_blobs(&c, &fx);
    // Many requests, one scope: one token.
    assert_eq!(tok.token_requests() - before, 1);
    let reqs = tok.server.requests();
    let last = reqs.last().unwrap();
    assert_eq!(
        last.header("authorization"),
        None,
        "anonymous token request"
    );
    assert_eq!(last.query("scope"), ["repository:test/img:pull"]);
    assert_eq!(last.query("service"), [common::registry::TOKEN_SERVICE]);
    // Clones share the cache; threads at once still ask once.
    std::thread::scope(|s| {
        for _ in 0..4 {
            let c = c.clone();
            s.spawn(move || c.head_manifest("test/img", "v1").unwrap());
        }
    });
    assert_eq!(tok.token_requests() - before, 1);
    // Another repository is another scope.
    let e = c.get_manifest("test/other", "v1").unwrap_err().to_string();
    assert!(e.contains("unknown"), "{e}");
    assert_eq!(tok.token_requests() - before, 2);
}

#[test]
fn token_flow_with_credentials() {
    let Some((reg, fx)) = registry_with_images(Mode::Token) else {
        return;
    };
    let tok = reg.token.as_ref().unwrap();
    let root = TempDir::new("root");
    let c = client(
        &reg.host(),
        root.path(),
        Some(Credentials::new(USER, PASSWORD)),
    );
    c.check_login().unwrap();
    check_manifests_and_blobs(&c, &fx);
    let reqs = tok.server.requests();
    let basic = Credentials::new(USER, PASSWORD).basic();
    assert!(
        reqs.iter()
            .filter(|r| r.target.starts_with("/token"))
            .count()
            >= 2
    );
    let last = reqs.last().unwrap();
    assert_eq!(last.header("authorization"), Some(basic.as_str()));
    // A repository anonymous users may not pull: docker's hint.
    reg.push(&fx.layout.dir, "v1", "private/img:v1", false);
    c.get_manifest("private/img", "v1").unwrap();
    let anon = client(&reg.host(), root.path(), None);
    let e = anon
        .get_manifest("private/img", "v1")
        .unwrap_err()
        .to_string();
    let h = reg.host();
    assert_eq!(
        e,
        format!("manifest unknown: {h}/private/img:v1: repository does not exist or needs 'runway image login' (unauthorized: authentication required ({h}))")
    );
    // Wrong password: the token service says no, in one line.
    let bad = client(
        &reg.host(),
        root.path(),
        Some(Credentials::new(USER, "wrong")),
    );
    let e = bad.get_manifest("test/img", "v1").unwrap_err().to_string();
    assert_eq!(e, format!("unauthorized: bad credentials ({})", reg.host()));
    let e = bad.check_login().unwrap_err().to_string();
    assert!(e.starts_with("unauthorized:"), "{e}");
    // Credentials from an auth file.
    let f = root.path().join("auth.json");
    creds::store(&f, &reg.host(), &Credentials::new(USER, PASSWORD)).unwrap();
    let mut o = opts(&reg.host(), root.path());
    o.auth_files = vec![root.path().join("missing.json"), f];
    let n = tok.token_requests();
    Client::new(o)
        .unwrap()
        .get_manifest("test/img", "v1")
        .unwrap();
    assert_eq!(tok.token_requests(), n + 1);
    let last = tok.server.requests().last().unwrap().clone();
    assert_eq!(last.header("authorization"), Some(basic.as_str()));
}

#[test]
fn basic_auth_right_and_wrong() {
    let Some((reg, fx)) = registry_with_images(Mode::Basic) else {
        return;
    };
    let root = TempDir::new("root");
    let h = reg.host();
    let c = client(&h, root.path(), Some(Credentials::new(USER, PASSWORD)));
    c.check_login().unwrap();
    check_manifests_and_blobs(&c, &fx);
    for creds in [None, Some(Credentials::new(USER, "wrong"))] {
        let c = client(&h, root.path(), creds.clone());
        let e = c.get_manifest("test/img", "v1").unwrap_err().to_string();
        assert_eq!(
            e,
            format!("unauthorized: authentication required ({h})"),
            "{creds:?}"
        );
        if creds.is_some() {
            let e = c.check_login().unwrap_err().to_string();
            assert!(e.contains("unauthorized: authentication required"), "{e}");
        }
    }
}

#[test]
fn https_with_certs_d_and_tls_failure_without() {
    let Some((reg, fx)) = registry_with_images(Mode::Https) else {
        return;
    };
    let pki = reg.pki.as_ref().unwrap();
    let h = reg.host();
    // No CA: a TLS error naming the host, and no silent fallback to HTTP.
    let bare = TempDir::new("root");
    let e = client(&h, bare.path(), None)
        .get_manifest("test/img", "v1")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("tls: {h}: invalid peer certificate")),
        "{e}"
    );
    assert!(e.contains("UnknownIssuer"), "{e}");
    // DATA_ROOT/certs.d/HOST:PORT/ca.crt, for the IP and for localhost.
    let root = TempDir::new("root");
    for name in [h.clone(), format!("localhost:{}", reg.port)] {
        let d = root.path().join("certs.d").join(&name);
        fs::create_dir_all(&d).unwrap();
        fs::copy(&pki.ca_cert, d.join("ca.crt")).unwrap();
    }
    let c = client(&h, root.path(), None);
    check_manifests_and_blobs(&c, &fx);
    assert_eq!(c.base_url().unwrap(), format!("https://{h}"));
    // --insecure-registry: HTTPS without verification (docker's meaning).
    let mut o = opts(&h, bare.path());
    o.insecure_registries = vec![h.clone()];
    let c = Client::new(o).unwrap();
    assert_eq!(
        c.head_manifest("test/img", "v1").unwrap().digest,
        fx.image.manifest
    );
    assert_eq!(c.base_url().unwrap(), format!("https://{h}"));
    let local = format!("localhost:{}", reg.port);
    let c = client(&local, root.path(), None);
    assert_eq!(
        c.head_manifest("test/img", "v1").unwrap().digest,
        fx.image.manifest
    );
    assert_eq!(c.base_url().unwrap(), format!("https://{local}"));
}

/// A registry that wants client certificates: certs.d's client.cert and
/// client.key are presented; without them the handshake fails, naming the
/// host.
#[test]
fn https_client_certificate_from_certs_d() {
    let Some((reg, fx)) = registry_with_images(Mode::MutualTls) else {
        return;
    };
    let pki = reg.pki.as_ref().unwrap();
    let h = reg.host();
    let root = TempDir::new("root");
    let d = root.path().join("certs.d").join(&h);
    fs::create_dir_all(&d).unwrap();
    fs::copy(&pki.ca_cert, d.join("ca.crt")).unwrap();
    let e = client(&h, root.path(), None)
        .head_manifest("test/img", "v1")
        .unwrap_err()
        .to_string();
    // Not "HTTP 400" from a fallback to plain HTTP: the peer speaks TLS.
    assert!(e.starts_with(&format!("tls: {h}: ")), "{e}");
    assert!(!e.contains('\n'), "{e}");
    fs::copy(&pki.client_cert, d.join("client.cert")).unwrap();
    fs::copy(&pki.client_key, d.join("client.key")).unwrap();
    let c = client(&h, root.path(), None);
    check_manifests_and_blobs(&c, &fx);
}

/// `runway image login` against the HTTPS registry: SSL_CERT_FILE makes
/// its CA trusted (the process env, hence through the binary).
#[test]
fn https_with_ssl_cert_file_via_login() {
    let Some(reg) = Registry::start(Mode::Https) else {
        return;
    };
    let pki = reg.pki.as_ref().unwrap();
    let dir = TempDir::new("login");
    let auth = dir.path().join("auth.json");
    let run = |ca: Option<&Path>| {
        let mut cmd = Command::new(runtime());
        cmd.args(["--data-root"])
            .arg(dir.path().join("root"))
            .args(["image", "login", &reg.host(), "-u", "x", "-p", "y"])
            .env("REGISTRY_AUTH_FILE", &auth)
            .env_remove("SSL_CERT_DIR")
            .stdin(Stdio::null());
        match ca {
            Some(p) => cmd.env("SSL_CERT_FILE", p),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        cmd.output().unwrap()
    };
    let out = run(None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("tls: {}: invalid peer certificate", reg.host())),
        "{err}"
    );
    let lines: Vec<_> = err.lines().filter(|l| !l.starts_with("WARNING!")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    let out = run(Some(&pki.ca_cert));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Login Succeeded\n");
}

#[test]
fn login_and_logout_write_docker_format() {
    let Some(reg) = Registry::start(Mode::Basic) else {
        return;
    };
    let dir = TempDir::new("login");
    let auth = dir.path().join("cfg/config.json");
    fs::create_dir_all(auth.parent().unwrap()).unwrap();
    fs::write(
        &auth,
        r#"{"auths":{"other.example":{"auth":"eDp5"}},"detachKeys":"ctrl-x"}"#,
    )
    .unwrap();
    let h = reg.host();
    let rw = |args: &[&str], stdin: &str| {
        let mut child = Command::new(runtime())
            .arg("--data-root")
            .arg(dir.path().join("root"))
            .args(args)
            .env("REGISTRY_AUTH_FILE", &auth)
            .env("HOME", dir.path())
            .env_remove("XDG_RUNTIME_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    // Wrong password: refused by the registry, file untouched.
    let before = fs::read(&auth).unwrap();
    let out = rw(
        &["image", "login", &h, "-u", USER, "--password-stdin"],
        "nope\n",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unauthorized"), "{err}");
    assert_eq!(fs::read(&auth).unwrap(), before);
    // Right password.
    let out = rw(
        &["image", "login", &h, "-u", USER, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Login Succeeded\n");
    let mode = fs::metadata(&auth).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let v: Value = serde_json::from_slice(&fs::read(&auth).unwrap()).unwrap();
    assert_eq!(v["detachKeys"], "ctrl-x");
    assert_eq!(v["auths"]["other.example"]["auth"], "eDp5");
    assert_eq!(
        v["auths"][&h]["auth"],
        creds::b64_encode(format!("{USER}:{PASSWORD}").as_bytes())
    );
    // What login wrote, the client reads.
    let root = TempDir::new("root");
    let mut o = opts(&h, root.path());
    o.auth_files = vec![auth.clone()];
    Client::new(o).unwrap().check_login().unwrap();
    // Logout removes only that entry.
    let out = rw(&["image", "logout", &h], "");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Removing login credentials for {h}\n")
    );
    let v: Value = serde_json::from_slice(&fs::read(&auth).unwrap()).unwrap();
    assert!(v["auths"].get(&h).is_none());
    assert_eq!(v["auths"]["other.example"]["auth"], "eDp5");
    let out = rw(&["image", "logout", &h], "");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Not logged in to {h}\n")
    );
    // No leftovers next to the file (temp files of the atomic write).
    let names: Vec<_> = fs::read_dir(auth.parent().unwrap())
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

/// A registry that redirects blobs to storage on another origin: the
/// storage must not get the registry's Authorization; a blob the registry
/// lacks comes from the descriptor's foreign URL.
#[test]
fn redirects_drop_authorization_and_foreign_urls() {
    let blob = noise(7, 5000);
    let d = Digest::of(&blob);
    let b2 = blob.clone();
    let storage = TinyServer::start(move |req| {
        if req.method != "GET" {
            return Reply::new(400, "");
        }
        match req.header("range") {
            Some(r) => {
                let off: usize = r
                    .trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse()
                    .unwrap();
                Reply::new(206, b2[off..].to_vec()).header(
                    "Content-Range",
                    &format!("bytes {off}-{}/{}", b2.len() - 1, b2.len()),
                )
            }
            None => Reply::new(200, b2.clone()),
        }
    });
    let storage_url = format!("http://localhost:{}/store/blob", storage.addr.port());
    let (loc, dd) = (storage_url.clone(), d.clone());
    let registry = TinyServer::start(move |req| {
        let authed = req.header("authorization").is_some();
        if req.target == "/v2/" || !authed {
            return Reply::new(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
            .header("WWW-Authenticate", r#"Basic realm="test""#);
        }
        if req.target == format!("/v2/r/blobs/{dd}") {
            return Reply::new(307, "").header("Location", &loc);
        }
        Reply::new(
            404,
            r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
        )
    });
    let root = TempDir::new("root");
    let c = client(
        &registry.addr.to_string(),
        root.path(),
        Some(Credentials::new("u", "p")),
    );
    assert_eq!(read_all(c.get_blob("r", &d, 0).unwrap()), blob);
    let body = c.get_blob("r", &d, 4000).unwrap();
    assert_eq!(body.start, 4000);
    assert_eq!(read_all(body), &blob[4000..]);
    let reg_blob_reqs: Vec<_> = registry
        .requests()
        .into_iter()
        .filter(|r| r.target.contains("/blobs/"))
        .collect();
    assert!(reg_blob_reqs
        .iter()
        .all(|r| r.header("authorization").is_some()));
    let st = storage.requests();
    assert_eq!(st.len(), 2, "{st:?}");
    assert!(
        st.iter().all(|r| r.header("authorization").is_none()),
        "{st:?}"
    );
    assert_eq!(st[1].header("range"), Some("bytes=4000-"));
    // Foreign layer: the registry does not have it, its URL does.
    let other = noise(9, 100);
    let od = Digest::of(&other);
    let desc: types::Descriptor = serde_json::from_value(serde_json::json!({
        "mediaType": types::DOCKER_FOREIGN_LAYER, "digest": od.to_string(), "size": 5000,
        "urls": ["ftp://ignored", storage_url],
    }))
    .unwrap();
    let body = c.get_layer("r", &desc, 0).unwrap();
    assert_eq!(body.url, storage_url);
    assert_eq!(read_all(body), blob);
    // Without URLs the registry's error stands.
    let mut desc = desc;
    desc.urls = None;
    let e = c.get_layer("r", &desc, 0).unwrap_err().to_string();
    assert!(e.contains("blob unknown: blob unknown to registry"), "{e}");
}

/// Schema 1 is served (some old registries) but refused by the parser with
/// a clear error; the client hands the media type on unchanged.
#[test]
fn schema1_manifest_is_refused_clearly() {
    let body = br#"{"schemaVersion":1,"name":"x/y","tag":"old","fsLayers":[],"history":[]}"#;
    let server = TinyServer::start(move |req| {
        if req.target == "/v2/" {
            return Reply::new(200, "{}");
        }
        Reply::new(200, body.to_vec()).header(
            "Content-Type",
            &format!("{}; charset=utf-8", types::DOCKER_SCHEMA1_SIGNED),
        )
    });
    let root = TempDir::new("root");
    let c = client(&server.addr.to_string(), root.path(), None);
    let m = c.get_manifest("x/y", "old").unwrap();
    assert_eq!(m.media_type, types::DOCKER_SCHEMA1_SIGNED);
    let Err(e) = types::parse_manifest(&m.bytes, Some(&m.media_type)) else {
        panic!("schema 1 must be refused");
    };
    let e = e.to_string();
    assert!(e.to_lowercase().contains("schema 1"), "{e}");
    // The manifest request asked for every supported type.
    let reqs = server.requests();
    let r = reqs
        .iter()
        .find(|r| r.target == "/v2/x/y/manifests/old")
        .unwrap();
    assert_eq!(r.header("accept"), Some(types::ACCEPT_MANIFESTS));
}

/// A tag whose bytes do not match Docker-Content-Digest is refused.
#[test]
fn manifest_digest_cross_check() {
    let body = br#"{"schemaVersion":2}"#;
    let server = TinyServer::start(move |req| {
        if req.target == "/v2/" {
            return Reply::new(200, "{}");
        }
        Reply::new(200, body.to_vec())
            .header("Content-Type", types::OCI_MANIFEST)
            .header("Docker-Content-Digest", Digest::of(b"other").as_str())
    });
    let root = TempDir::new("root");
    let c = client(&server.addr.to_string(), root.path(), None);
    let e = c.get_manifest("x/y", "t").unwrap_err().to_string();
    assert!(e.starts_with("digest mismatch for manifest"), "{e}");
    let e = c
        .get_manifest("x/y", Digest::of(b"x").as_str())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("digest mismatch for manifest"), "{e}");
}

/// The fault proxies the pull tests use: a flipped byte arrives flipped; a
/// cut connection leaves a prefix, and a Range request gets the rest.
#[test]
fn fault_proxies_flip_and_cut() {
    let Some((reg, fx)) = registry_with_images(Mode::Http) else {
        return;
    };
    let target = ([127, 0, 0, 1], reg.port).into();
    let root = TempDir::new("root");
    let ld = {
        let c = client(&reg.host(), root.path(), None);
        let m = c.get_manifest("test/img", "v1").unwrap();
        let Parsed::Manifest(man) = types::parse_manifest(&m.bytes, None).unwrap() else {
            panic!()
        };
        man.layers[0].digest.clone()
    };
    let flip = FaultProxy::start(target, Fault::Flip { offset: 1234 }, "/blobs/");
    let c = client(&flip.host(), root.path(), None);
    let got = read_all(c.get_blob("test/img", &ld, 0).unwrap());
    assert_eq!(got.len(), fx.layer.len());
    let diff: Vec<usize> = (0..got.len()).filter(|&i| got[i] != fx.layer[i]).collect();
    assert_eq!(diff, [1234]);
    // Manifests pass unharmed.
    c.get_manifest("test/img", "v1").unwrap();
    drop(flip);

    let cut = FaultProxy::start(target, Fault::CutOnce { after: 70_000 }, "/blobs/");
    let c = client(&cut.host(), root.path(), None);
    let mut got = Vec::new();
    let e = c
        .get_blob("test/img", &ld, 0)
        .unwrap()
        .read_to_end(&mut got);
    assert!(e.is_err(), "a cut body must fail, not end early");
    assert_eq!(got.len(), 70_000);
    let body = c.get_blob("test/img", &ld, got.len() as u64).unwrap();
    assert!(body.resumed());
    got.extend(read_all(body));
    assert_eq!(got, fx.layer);
    let ranges: Vec<_> = cut
        .requests()
        .into_iter()
        .filter_map(|r| r.header("range").map(str::to_string))
        .collect();
    assert_eq!(ranges, ["bytes=70000-"]);
    note(&format!("fault proxies ok on {}", reg.host()));
}

/// A token the registry refuses (revoked, expired early) is replaced once;
/// an identity token (docker's `identitytoken`) is exchanged by POST.
#[test]
fn bearer_token_refreshed_on_401_and_oauth_refresh_flow() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, OnceLock};
    let base: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let n = Arc::new(AtomicUsize::new(0));
    let (b2, n2) = (base.clone(), n.clone());
    let body = br#"{"schemaVersion":2}"#;
    let server = TinyServer::start(move |req| {
        let challenge = format!(
            r#"Bearer realm="{}/token",service="svc""#,
            b2.get().unwrap()
        );
        if req.target.starts_with("/token") {
            let i = n2.fetch_add(1, Ordering::SeqCst);
            return Reply::new(200, format!(r#"{{"token":"tok{i}","expires_in":300}}"#));
        }
        let ok = req
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer tok") && a != "Bearer tok0");
        if req.target == "/v2/" || !ok {
            return Reply::new(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
            .header("WWW-Authenticate", &challenge);
        }
        Reply::new(200, body.to_vec()).header("Content-Type", types::OCI_MANIFEST)
    });
    base.set(server.url()).unwrap();
    let root = TempDir::new("root");
    let c = client(&server.addr.to_string(), root.path(), None);
    c.get_manifest("r", "t").unwrap();
    let tokens: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.target.starts_with("/token"))
        .collect();
    assert_eq!(tokens.len(), 2, "the refused token is replaced once");
    assert!(tokens.iter().all(|r| r.method == "GET"));
    // Cached now: no more token requests.
    c.get_manifest("r", "t").unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 2);
    // OAuth2 refresh token: POSTed to the realm.
    let mut creds = Credentials::new("", "");
    creds.identity_token = Some("refresh-me".into());
    let c = client(&server.addr.to_string(), root.path(), Some(creds));
    c.get_manifest("r", "t").unwrap();
    let last_token = server
        .requests()
        .into_iter()
        .rfind(|r| r.target.starts_with("/token"))
        .unwrap();
    assert_eq!(last_token.method, "POST");
    assert_eq!(
        last_token.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

/// HTTPS_PROXY/HTTP_PROXY through the binary (the process environment):
/// a registry that is not loopback is reached through the proxy, HTTPS
/// first (CONNECT :443, refused here), then plain HTTP since it is an
/// --insecure-registry (ureq tunnels that with CONNECT :80 too). Nothing
/// resolves the fake name: the proxy maps it to the real registry.
#[test]
fn proxies_from_the_environment() {
    let Some(reg) = Registry::start(Mode::Basic) else {
        return;
    };
    let upstream: std::net::SocketAddr = ([127, 0, 0, 1], reg.port).into();
    let proxy = ConnectProxy::start(vec![("registry.invalid:80".into(), upstream)]);
    let dir = TempDir::new("proxy");
    let mut child = Command::new(runtime())
        .arg("--data-root")
        .arg(dir.path().join("root"))
        .args(["--insecure-registry", "registry.invalid"])
        .args([
            "image",
            "login",
            "registry.invalid",
            "-u",
            USER,
            "--password-stdin",
        ])
        .env("REGISTRY_AUTH_FILE", dir.path().join("auth.json"))
        .env("HTTPS_PROXY", proxy.url())
        .env("HTTP_PROXY", proxy.url())
        .env("NO_PROXY", "127.0.0.1,localhost,other.example")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = proxy.seen();
    assert_eq!(seen[0], "CONNECT registry.invalid:443");
    assert!(
        seen[1..].iter().all(|s| s == "CONNECT registry.invalid:80"),
        "{seen:?}"
    );
    assert!(seen.len() >= 2);
    // A loopback registry never goes through the proxy.
    let n = proxy.seen().len();
    let mut o = opts(&reg.host(), dir.path());
    o.credentials = Some(Credentials::new(USER, PASSWORD));
    Client::new(o).unwrap().check_login().unwrap();
    assert_eq!(proxy.seen().len(), n);
}

/// The layout builder's images (busybox-static; gzip, zstd and
/// uncompressed layers; a multi-arch index) pushed with skopeo through the
/// token flow, then read back blob by blob, bytes as built.
#[test]
fn built_images_round_trip_through_token_registry() {
    if let Err(why) = oci::available() {
        common::skip(&why);
        return;
    }
    let Some(reg) = Registry::start(Mode::Token) else {
        return;
    };
    let dir = TempDir::new("built");
    let mut layout = Layout::create(&dir.path().join("oci"));
    let sample = layout.add_image("sample", &Image::sample());
    let (index, multi) = layout.add_multiarch("multi");
    reg.push(&layout.dir, "sample", "lib/sample:1", false);
    reg.push(&layout.dir, "multi", "lib/busybox:latest", true);
    let root = TempDir::new("root");
    let c = client(&reg.host(), root.path(), None);
    let check = |repo: &str, reference: &str, built: &Built| {
        let m = c.get_manifest(repo, reference).unwrap();
        assert_eq!(m.bytes, built.manifest_bytes);
        assert_eq!(m.digest, built.manifest);
        assert_eq!(
            c.get_small_blob(repo, &built.config).unwrap(),
            built.config_bytes
        );
        for (d, size) in built.layers.iter().zip(&built.layer_sizes) {
            let body = c.get_blob(repo, d, 0).unwrap();
            assert_eq!(body.length, Some(*size));
            let bytes = read_all(body);
            assert_eq!(Digest::of(&bytes), *d);
        }
    };
    check("lib/sample", "1", &sample);
    let Parsed::Manifest(man) = types::parse_manifest(&sample.manifest_bytes, None).unwrap() else {
        panic!()
    };
    let kinds: Vec<_> = man
        .layers
        .iter()
        .map(|l| types::layer_compression(&l.media_type))
        .collect();
    assert!(
        kinds.len() == 3 && kinds.iter().all(Option::is_some),
        "{kinds:?}"
    );
    let m = c.get_manifest("lib/busybox", "latest").unwrap();
    assert_eq!(m.digest, index);
    assert_eq!(m.media_type, types::OCI_INDEX);
    for b in &multi {
        check("lib/busybox", b.manifest.as_str(), b);
    }
    // One anonymous token for each repository, however many requests.
    let tokens = reg.token.as_ref().unwrap();
    let anon = tokens
        .server
        .requests()
        .into_iter()
        .filter(|r| r.target.starts_with("/token") && r.header("authorization").is_none())
        .count();
    assert_eq!(anon, 2);
}

/// A token is used until shortly before `expires_in`, then a new one is
/// fetched before the registry has to refuse it.
#[test]
fn bearer_token_renewed_before_expiry() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, OnceLock};
    let base: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let n = Arc::new(AtomicUsize::new(0));
    let (b2, n2) = (base.clone(), n.clone());
    let server = TinyServer::start(move |req| {
        if req.target.starts_with("/token") {
            let i = n2.fetch_add(1, Ordering::SeqCst);
            return Reply::new(200, format!(r#"{{"token":"tok{i}","expires_in":4}}"#));
        }
        if req.target == "/v2/" || req.header("authorization").is_none() {
            let challenge = format!(
                r#"Bearer realm="{}/token",service="svc""#,
                b2.get().unwrap()
            );
            return Reply::new(401, "").header("WWW-Authenticate", &challenge);
        }
        Reply::new(200, br#"{"schemaVersion":2}"#.to_vec())
            .header("Content-Type", types::OCI_MANIFEST)
    });
    base.set(server.url()).unwrap();
    let root = TempDir::new("root");
    let c = client(&server.addr.to_string(), root.path(), None);
    c.get_manifest("r", "t").unwrap();
    c.get_manifest("r", "t").unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 1, "cached while valid");
    std::thread::sleep(std::time::Duration::from_millis(3200));
    c.get_manifest("r", "t").unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 2, "renewed near expiry");
    let auths: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.target == "/v2/r/manifests/t")
        .map(|r| r.header("authorization").unwrap_or("").to_string())
        .collect();
    assert_eq!(auths, ["Bearer tok0", "Bearer tok0", "Bearer tok1"]);
}
