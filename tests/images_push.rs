//! `runway image push` against a real docker-registry on 127.0.0.1: what
//! it pushes is what skopeo and a pull read back (same digests), a second
//! push sends nothing, another repository of the same registry mounts,
//! chunked uploads, Docker media types, basic and bearer auth, and a
//! connection cut mid-upload.

#![cfg(feature = "full")]

mod common;
#[path = "common/push.rs"]
mod push_relay;

use common::oci::{self, noise, Built, Compress, Image, Layer, Layout};
use common::registry::{Mode, Registry, TempDir, PASSWORD, USER};
use common::{runtime, skip};
use push_relay::Relay;
use serde_json::Value;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A data root, an auth file, and the layout the test imports from.
struct Env {
    dir: TempDir,
    layout: Layout,
    image: Built,
}

impl Env {
    /// busybox plus a layer of noise (so that chunks are many), in a
    /// layout tagged `v1`.
    fn new(what: &str) -> Option<Env> {
        if let Err(why) = oci::available() {
            skip(&why);
            return None;
        }
        let dir = TempDir::new(what);
        let mut layout = Layout::create(&dir.path().join("layout"));
        let image = layout.add_image(
            "v1",
            &Image::new(vec![
                Layer::new(Compress::Gzip, oci::busybox_entries()),
                Layer::file(Compress::Gzip, "data.bin", noise(7, 200 << 10)),
            ]),
        );
        Some(Env { dir, layout, image })
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cmd_in(&self, root: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(runtime());
        c.arg("--data-root").arg(root).args(args);
        // Nothing from the machine's or the user's auth files or proxies.
        c.env("HOME", self.dir.path())
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env("REGISTRY_AUTH_FILE", self.dir.path().join("auth.json"))
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .env_remove("https_proxy")
            .env_remove("http_proxy")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd_in(&self.root(), args)
            .output()
            .expect("run runway")
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(self.run(args), args)
    }

    /// Fails with exactly one line on stderr, status 1 (as pull); returns it.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "runway {args:?} succeeded");
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
        err
    }

    /// Import the layout as `name`.
    fn import(&self, name: &str) {
        let l = self.layout.dir.to_str().unwrap().to_string();
        self.ok(&["image", "import", &l, name]);
    }

    /// `push` succeeded with docker's last line for this image.
    fn push(&self, args: &[&str], tag: &str) -> String {
        let mut all = vec!["image", "push"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        let last = out.lines().last().unwrap_or("");
        assert_eq!(
            last,
            format!(
                "{tag}: digest: {} size: {}",
                self.image.manifest, self.image.manifest_size
            ),
            "{out}"
        );
        out
    }
}

fn ok(o: Output, args: &[&str]) -> String {
    assert!(
        o.status.success(),
        "{args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// skopeo with a scratch home (no auth files but `creds`).
fn skopeo(reg: &Registry, args: &[&str]) -> String {
    let home = reg.dir.path().join("skopeo-home");
    fs::create_dir_all(&home).unwrap();
    let o = Command::new("skopeo")
        .args(args)
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &home)
        .env_remove("REGISTRY_AUTH_FILE")
        .env("NO_PROXY", "*")
        .output()
        .expect("run skopeo");
    ok(o, args)
}

/// The manifest digest and media type the registry serves for `repo_tag`.
fn remote(reg: &Registry, repo_tag: &str) -> (String, String) {
    let url = format!("docker://{}/{repo_tag}", reg.host());
    let creds = format!("{USER}:{PASSWORD}");
    let mut args = vec!["inspect", "--tls-verify=false"];
    if matches!(reg.mode, Mode::Basic | Mode::Token) {
        args.extend(["--creds", &creds]);
    }
    let v: Value = serde_json::from_str(&skopeo(reg, &[&args[..], &[&url]].concat())).unwrap();
    args.push("--raw");
    let raw: Value = serde_json::from_str(&skopeo(reg, &[&args[..], &[&url]].concat())).unwrap();
    (
        v["Digest"].as_str().unwrap().to_string(),
        raw["mediaType"].as_str().unwrap_or("").to_string(),
    )
}

fn addr(reg: &Registry) -> SocketAddr {
    reg.host().parse().unwrap()
}

/// Requests that sent blob bytes or started uploads.
fn uploads(reqs: &[String]) -> Vec<&String> {
    reqs.iter()
        .filter(|r| r.starts_with("PATCH ") || r.starts_with("PUT ") && r.contains("/blobs/"))
        .collect()
}

#[test]
fn push_reads_back_the_same_and_sends_nothing_twice() {
    let Some(reg) = Registry::start(Mode::Http) else {
        return;
    };
    let Some(env) = Env::new("push") else {
        return;
    };
    // Through a relay that counts what is sent.
    let relay = Relay::start(addr(&reg), None);
    let h = relay.host();
    let name = format!("{h}/test/bb:v1");
    env.import(&name);
    let out = env.push(&[&name], "v1");
    assert!(out.starts_with(&format!("The push refers to repository [{h}/test/bb]\n")));
    assert_eq!(out.matches(": Pushed\n").count(), 2, "{out}");
    // config + 2 layers, each one monolithic PUT.
    let reqs = relay.requests();
    assert_eq!(uploads(&reqs).len(), 3, "{reqs:#?}");
    // Read back by skopeo: the manifest the store has, unchanged.
    let (digest, mt) = remote(&reg, "test/bb:v1");
    assert_eq!(digest, env.image.manifest.to_string());
    assert_eq!(mt, "application/vnd.oci.image.manifest.v1+json");
    let copy = env.dir.path().join("copy");
    skopeo(
        &reg,
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--preserve-digests",
            &format!("docker://{}/test/bb:v1", reg.host()),
            &format!("oci:{}:v1", copy.display()),
        ],
    );
    let idx: Value = serde_json::from_slice(&fs::read(copy.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        idx["manifests"][0]["digest"],
        env.image.manifest.to_string()
    );
    // A pull into a fresh store: the same image id.
    let fresh = env.dir.path().join("fresh");
    ok(
        env.cmd_in(
            &fresh,
            &["pull", "-q", &format!("{}/test/bb:v1", reg.host())],
        )
        .output()
        .unwrap(),
        &["pull"],
    );
    let insp = ok(
        env.cmd_in(
            &fresh,
            &["image", "inspect", &format!("{}/test/bb:v1", reg.host())],
        )
        .output()
        .unwrap(),
        &["inspect"],
    );
    let v: Value = serde_json::from_str(&insp).unwrap();
    assert_eq!(v[0]["Id"], env.image.config.to_string());

    // Again: everything is there already; nothing is uploaded.
    relay.clear();
    let out = env.ok(&["image", "push", "-q", &name]);
    assert_eq!(out, format!("{name}\n"));
    let out = env.push(&[&name], "v1");
    assert_eq!(out.matches(": Layer already exists\n").count(), 2, "{out}");
    let reqs = relay.requests();
    assert!(uploads(&reqs).is_empty(), "{reqs:#?}");
    assert!(!reqs.iter().any(|r| r.contains("/uploads/")), "{reqs:#?}");

    // Another repository of the registry: mounted from the first (the
    // store recorded where the image went), nothing uploaded; by image ID
    // with an explicit destination.
    relay.clear();
    let digestfile = env.dir.path().join("digest");
    let out = env.push(
        &[
            "--digestfile",
            digestfile.to_str().unwrap(),
            env.image.config.hex(),
            &format!("{h}/other/img:v2"),
        ],
        "v2",
    );
    assert_eq!(out.matches(": Mounted from test/bb\n").count(), 2, "{out}");
    let reqs = relay.requests();
    assert!(uploads(&reqs).is_empty(), "{reqs:#?}");
    assert_eq!(
        reqs.iter().filter(|r| r.contains("?mount=")).count(),
        3,
        "{reqs:#?}"
    );
    assert_eq!(
        fs::read_to_string(&digestfile).unwrap(),
        env.image.manifest.to_string()
    );
    assert_eq!(
        remote(&reg, "other/img:v2").0,
        env.image.manifest.to_string()
    );
    // An image ID alone names no destination.
    let e = env.fails(&["image", "push", env.image.config.hex()]);
    assert!(e.contains("name a DESTINATION"), "{e}");
}

#[test]
fn chunked_push_over_https_gives_the_same_digests() {
    let Some(reg) = Registry::start(Mode::Https) else {
        return;
    };
    let Some(env) = Env::new("push-chunked") else {
        return;
    };
    // The test CA, where runway looks for a registry's CAs.
    let certs = env.root().join("certs.d").join(reg.host());
    fs::create_dir_all(&certs).unwrap();
    fs::copy(&reg.pki.as_ref().unwrap().ca_cert, certs.join("ca.crt")).unwrap();
    let name = format!("{}/chunk/bb:v1", reg.host());
    env.import(&name);
    env.push(&["--chunk-size", "16k", &name], "v1");
    assert_eq!(
        remote(&reg, "chunk/bb:v1").0,
        env.image.manifest.to_string()
    );
    // Every blob arrived whole: skopeo copies it all (it verifies digests).
    let copy = env.dir.path().join("copy");
    skopeo(
        &reg,
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &format!("oci:{}:v1", copy.display()),
        ],
    );
    for (d, size) in env.image.layers.iter().zip(&env.image.layer_sizes) {
        let got = fs::metadata(copy.join("blobs/sha256").join(d.hex())).unwrap();
        assert_eq!(got.len(), *size);
    }
}

#[test]
fn chunks_through_relay_have_content_ranges() {
    let Some(reg) = Registry::start(Mode::Http) else {
        return;
    };
    let Some(env) = Env::new("push-chunks") else {
        return;
    };
    let relay = Relay::start(addr(&reg), None);
    let name = format!("{}/chunk/bb:v1", relay.host());
    env.import(&name);
    env.push(&["--chunk-size", "64k", &name], "v1");
    let reqs = relay.requests();
    let total: u64 =
        env.image.layer_sizes.iter().sum::<u64>() + env.image.config_bytes.len() as u64;
    let patches = reqs.iter().filter(|r| r.starts_with("PATCH ")).count() as u64;
    assert!(
        patches >= total / (64 << 10),
        "{patches} PATCHes for {total} bytes"
    );
    assert_eq!(
        reqs.iter()
            .filter(|r| r.starts_with("PUT ") && r.contains("digest="))
            .count(),
        3
    );
    assert_eq!(
        remote(&reg, "chunk/bb:v1").0,
        env.image.manifest.to_string()
    );
}

#[test]
fn docker_media_types_push_back_unchanged() {
    let Some(reg) = Registry::start(Mode::Http) else {
        return;
    };
    let Some(other) = Registry::start(Mode::Http) else {
        return;
    };
    let Some(env) = Env::new("push-docker") else {
        return;
    };
    // A Docker v2 schema 2 image on the registry, pulled by runway.
    skopeo(
        &reg,
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--format",
            "v2s2",
            &env.layout.oci_ref("v1"),
            &format!("docker://{}/d/src:v1", reg.host()),
        ],
    );
    let (src_digest, mt) = remote(&reg, "d/src:v1");
    assert_eq!(mt, "application/vnd.docker.distribution.manifest.v2+json");
    let src = format!("{}/d/src:v1", reg.host());
    env.ok(&["pull", "-q", &src]);
    // Same registry: mounted; another registry: uploaded. Both serve
    // the same manifest, media type and digest.
    for (r, repo) in [(&reg, "d/dst"), (&other, "d/copy")] {
        let dst = format!("{}/{repo}:v1", r.host());
        let out = env.ok(&["image", "push", &src, &dst]);
        let status = if repo == "d/dst" {
            "Mounted from d/src"
        } else {
            "Pushed"
        };
        assert_eq!(out.matches(&format!(": {status}\n")).count(), 2, "{out}");
        let last = out.lines().last().unwrap();
        assert!(
            last.starts_with(&format!("v1: digest: {src_digest} size: ")),
            "{out}"
        );
        let (d, m) = remote(r, &format!("{repo}:v1"));
        assert_eq!((d.as_str(), m.as_str()), (src_digest.as_str(), mt.as_str()));
    }
}

#[test]
fn basic_auth_needs_login() {
    let Some(reg) = Registry::start(Mode::Basic) else {
        return;
    };
    let Some(env) = Env::new("push-basic") else {
        return;
    };
    let name = format!("{}/auth/bb:v1", reg.host());
    env.import(&name);
    let e = env.fails(&["image", "push", &name]);
    assert!(
        e.starts_with(&format!(
            "runway: push {name}: unauthorized: authentication required"
        )),
        "{e}"
    );
    env.ok(&["image", "login", &reg.host(), "-u", USER, "-p", PASSWORD]);
    env.push(&[&name], "v1");
    assert_eq!(remote(&reg, "auth/bb:v1").0, env.image.manifest.to_string());
}

#[test]
fn bearer_tokens_carry_push_scopes() {
    let Some(reg) = Registry::start(Mode::Token) else {
        return;
    };
    let Some(env) = Env::new("push-token") else {
        return;
    };
    let tokens = reg.token.as_ref().unwrap();
    let name = format!("{}/tok/bb:v1", reg.host());
    env.import(&name);
    // Anonymous: the token service grants pull only; the upload is refused.
    let e = env.fails(&["image", "push", &name]);
    assert_eq!(
        e,
        format!(
            "runway: push {name}: unauthorized: authentication required ({})\n",
            reg.host()
        )
    );
    env.ok(&["image", "login", &reg.host(), "-u", USER, "-p", PASSWORD]);
    env.push(&[&name], "v1");
    assert_eq!(remote(&reg, "tok/bb:v1").0, env.image.manifest.to_string());
    // The mount's token: both scopes in one request.
    let before = tokens.server.requests().len();
    let out = env.push(&[&name, &format!("{}/tok/two:v1", reg.host())], "v1");
    assert!(out.contains(": Mounted from tok/bb"), "{out}");
    let reqs = tokens.server.requests();
    let scopes: Vec<Vec<String>> = reqs[before..].iter().map(|r| r.query("scope")).collect();
    assert!(
        scopes.contains(&vec![
            "repository:tok/two:pull,push".to_string(),
            "repository:tok/bb:pull".to_string()
        ]),
        "{scopes:?}"
    );
    let all: Vec<String> = reqs.iter().flat_map(|r| r.query("scope")).collect();
    assert!(
        all.contains(&"repository:tok/bb:pull,push".to_string()),
        "{all:?}"
    );
}

#[test]
fn cut_upload_fails_in_one_line_and_a_retry_succeeds() {
    let Some(reg) = Registry::start(Mode::Http) else {
        return;
    };
    let Some(env) = Env::new("push-cut") else {
        return;
    };
    // The connection drops 100 KiB into the first body longer than that.
    let relay = Relay::start(addr(&reg), Some(100 << 10));
    let name = format!("{}/cut/bb:v1", relay.host());
    env.import(&name);
    // The request is sent again once on a fresh connection (as for a
    // stale keep-alive one). The registry usually refuses that for an
    // upload that got part of a body, but may take it, depending on how
    // far the cut body got before the resend: a failure is one line; a
    // success (the resend recovered) is fine too.
    let o = env.run(&["image", "push", &name]);
    if !o.status.success() {
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert_eq!(e.trim_end().lines().count(), 1, "not one line: {e}");
        assert!(
            e.starts_with(&format!("runway: push {name}: blob upload invalid"))
                || e.starts_with(&format!("runway: push {name}: registry {}", relay.host())),
            "{e}"
        );
    }
    env.push(&[&name], "v1");
    assert_eq!(remote(&reg, "cut/bb:v1").0, env.image.manifest.to_string());
}

#[test]
fn unknown_image_and_unreachable_registry() {
    let Some(env) = Env::new("push-errors") else {
        return;
    };
    let e = env.fails(&["image", "push", "nope:v1"]);
    assert_eq!(e, "runway: No such image: nope:v1\n");
    let port = common::registry::free_port();
    let name = format!("127.0.0.1:{port}/x/bb:v1");
    env.import(&name);
    let e = env.fails(&["image", "push", &name]);
    assert_eq!(
        e,
        format!("runway: push {name}: registry 127.0.0.1:{port} unreachable: connection refused\n")
    );
    // A blob missing from the store: said before anything is sent.
    let Some(reg) = Registry::start(Mode::Http) else {
        return;
    };
    let name = format!("{}/x/bb:v1", reg.host());
    env.import(&name);
    let layer = &env.image.layers[1];
    fs::remove_file(env.root().join("blobs/sha256").join(layer.hex())).unwrap();
    let e = env.fails(&["image", "push", &name]);
    assert!(
        e.starts_with(&format!(
            "runway: push {name}: blob {layer}: not in the store"
        )),
        "{e}"
    );
}
