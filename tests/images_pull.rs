//! `runway image pull` end to end against Debian's docker-registry on
//! 127.0.0.1: layers of every compression with whiteouts and hard links,
//! multi-arch indexes and --platform, pulls by digest, auth and TLS, and
//! the faults: a corrupted blob, a connection cut mid-blob (resumed with a
//! Range request), two pulls at once, SIGKILL mid-pull, a tar-slip layer.
#![cfg(feature = "full")]

mod common;

use common::oci::{self, Compress, Entry, Image, Layer};
use common::registry::{Fault, FaultProxy, Mode, Registry, TempDir};
use common::{runtime, skip};
use runway::image::digest::Digest;
use runway::image::types;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A data root plus the layout the test pushes from.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new(what: &str) -> Env {
        Env {
            dir: TempDir::new(what),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(runtime());
        c.arg("--data-root").arg(self.root()).args(args);
        // Nothing from the machine's or the user's auth files or proxies.
        c.env("HOME", self.dir.path())
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .env_remove("https_proxy")
            .env_remove("http_proxy")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run runway")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "runway {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Fails with exactly one line on stderr; returns it.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "runway {args:?} succeeded");
        assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
        err
    }

    fn layout(&self) -> oci::Layout {
        oci::Layout::create(&self.dir.path().join("layout"))
    }

    fn names(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.root().join(sub))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// tmp/ entries other than lock files.
    fn tmp_litter(&self) -> Vec<String> {
        self.names("tmp")
            .into_iter()
            .filter(|n| !n.ends_with(".lock"))
            .collect()
    }

    fn inspect(&self, name: &str) -> Value {
        let out = self.ok(&["image", "inspect", name]);
        let v: Value = serde_json::from_str(&out).expect("inspect JSON");
        v[0].clone()
    }
}

fn registry(mode: Mode) -> Option<Registry> {
    if let Err(why) = oci::available() {
        skip(&why);
        return None;
    }
    Registry::start(mode)
}

/// A layer of incompressible bytes, big enough to be cut or killed mid-way.
fn big_layer(len: usize) -> Layer {
    let data = common::oci::noise(7, len);
    Layer::new(Compress::Gzip, vec![Entry::file("big.bin", data)])
}

#[test]
fn pull_sample_image_equals_its_layout() {
    let Some(reg) = registry(Mode::Http) else {
        return;
    };
    let e = Env::new("pull-sample");
    let mut layout = e.layout();
    let built = layout.add_image("sample", &Image::sample());
    reg.push(&layout.dir, "sample", "lib/sample:v1", false);
    let name = format!("{}/lib/sample:v1", reg.host());
    let out = e.ok(&["image", "pull", &name]);
    assert!(out.trim_end().ends_with(&name), "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    // Every blob as pushed, every layer unpacked once, nothing in tmp.
    for d in built.layers.iter().chain([&built.config, &built.manifest]) {
        let got = fs::read(e.root().join("blobs/sha256").join(d.hex())).unwrap();
        assert_eq!(got, fs::read(layout.blob_path(d)).unwrap(), "blob {d}");
    }
    assert_eq!(e.names("layers").len(), built.layers.len());
    assert_eq!(e.tmp_litter(), Vec::<String>::new());
    let i = e.inspect(&name);
    assert_eq!(i["Id"], built.config.to_string());
    assert_eq!(i["Config"]["WorkingDir"], "/srv");
    assert_eq!(
        i["RepoDigests"][0],
        format!("{}/lib/sample@{}", reg.host(), built.manifest)
    );
    // skopeo reads runway's store as an OCI layout.
    let o = Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:{name}", e.root().display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, built.manifest_bytes);
    // Warm: no blob fetched again, "up to date".
    let out = e.ok(&["image", "pull", &name]);
    assert!(out.contains("Image is up to date"), "{out}");
}

#[test]
fn multi_arch_index_and_platform() {
    let Some(reg) = registry(Mode::Http) else {
        return;
    };
    let e = Env::new("pull-multi");
    let mut layout = e.layout();
    let (index, built) = layout.add_multiarch("multi");
    reg.push(&layout.dir, "multi", "lib/bb:multi", true);
    let name = format!("{}/lib/bb:multi", reg.host());
    // Not a platform the index has: one line listing what it has, nothing stored.
    let err = e.fails(&["image", "pull", "--platform", "linux/s390x", &name]);
    assert!(
        err.contains("linux/s390x") && err.contains("linux/amd64") && err.contains("linux/arm64"),
        "{err}"
    );
    assert_eq!(e.names("layers"), Vec::<String>::new());
    // The host's (amd64) by default; the index digest is the repo digest.
    e.ok(&["image", "pull", &name]);
    let i = e.inspect(&name);
    assert_eq!(i["Id"], built[0].config.to_string());
    assert_eq!(i["Architecture"], "amd64");
    assert_eq!(
        i["RepoDigests"][0],
        format!("{}/lib/bb@{index}", reg.host())
    );
    // arm64 on request.
    e.ok(&["image", "pull", "-q", "--platform", "linux/arm64", &name]);
    let i = e.inspect(&name);
    assert_eq!(i["Id"], built[1].config.to_string());
    assert_eq!(i["Architecture"], "arm64");
    // By digest: the amd64 manifest itself.
    let by_digest = format!("{}/lib/bb@{}", reg.host(), built[0].manifest);
    e.ok(&["image", "pull", &by_digest]);
    assert_eq!(e.inspect(&by_digest)["Id"], built[0].config.to_string());
}

#[test]
fn unknown_image_tag_and_registry_are_one_line() {
    let Some(reg) = registry(Mode::Http) else {
        return;
    };
    let e = Env::new("pull-unknown");
    let mut layout = e.layout();
    layout.add_image("latest", &Image::busybox());
    reg.push(&layout.dir, "latest", "lib/bb:latest", false);
    let err = e.fails(&["image", "pull", &format!("{}/nope/nope:latest", reg.host())]);
    assert!(err.contains("nope/nope"), "{err}");
    let err = e.fails(&["image", "pull", &format!("{}/lib/bb:nope", reg.host())]);
    assert!(
        err.contains("manifest unknown") && err.contains("lib/bb:nope"),
        "{err}"
    );
    let err = e.fails(&["image", "pull", "127.0.0.1:1/x:y"]);
    assert!(err.contains("127.0.0.1:1"), "{err}");
    let err = e.fails(&["image", "pull", "Bad/Name"]);
    assert!(err.contains("lowercase"), "{err}");
    assert_eq!(e.names("layers"), Vec::<String>::new());
    assert_eq!(e.tmp_litter(), Vec::<String>::new());
}

#[test]
fn auth_token_basic_and_https() {
    // Docker Hub's flow: anonymous bearer token for a pull.
    if let Some(reg) = registry(Mode::Token) {
        let e = Env::new("pull-token");
        let mut layout = e.layout();
        layout.add_image("latest", &Image::busybox());
        reg.push(&layout.dir, "latest", "lib/bb:latest", false);
        e.ok(&["image", "pull", &format!("{}/lib/bb:latest", reg.host())]);
    }
    // htpasswd: refused without credentials, pulled after login.
    if let Some(reg) = registry(Mode::Basic) {
        let e = Env::new("pull-basic");
        let mut layout = e.layout();
        layout.add_image("latest", &Image::busybox());
        reg.push(&layout.dir, "latest", "lib/bb:latest", false);
        let name = format!("{}/lib/bb:latest", reg.host());
        let err = e.fails(&["image", "pull", &name]);
        assert!(err.to_lowercase().contains("auth"), "{err}");
        let mut login = e.cmd(&[
            "image",
            "login",
            &reg.host(),
            "-u",
            common::registry::USER,
            "--password-stdin",
        ]);
        login
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = login.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(common::registry::PASSWORD.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        e.ok(&["image", "pull", &name]);
    }
    // HTTPS with the test's CA in certs.d; refused without it, naming the host.
    if let Some(reg) = registry(Mode::Https) {
        let e = Env::new("pull-https");
        let mut layout = e.layout();
        layout.add_image("latest", &Image::busybox());
        reg.push(&layout.dir, "latest", "lib/bb:latest", false);
        let host = format!("localhost:{}", reg.port);
        let name = format!("{host}/lib/bb:latest");
        let err = e.fails(&["image", "pull", &name]);
        assert!(err.contains(&host) || err.contains("localhost"), "{err}");
        let certs = e.root().join("certs.d").join(&host);
        fs::create_dir_all(&certs).unwrap();
        fs::copy(&reg.pki.as_ref().unwrap().ca_cert, certs.join("ca.crt")).unwrap();
        e.ok(&["image", "pull", &name]);
    }
}

#[test]
fn corrupted_blob_is_refused_and_nothing_kept() {
    let Some(reg) = registry(Mode::Http) else {
        return;
    };
    let e = Env::new("pull-corrupt");
    let mut layout = e.layout();
    let built = layout.add_image("latest", &Image::new(vec![big_layer(200_000)]));
    reg.push(&layout.dir, "latest", "lib/big:latest", false);
    let target = format!("127.0.0.1:{}", reg.port).parse().unwrap();
    let proxy = FaultProxy::start(
        target,
        Fault::Flip { offset: 150_000 },
        &format!("/blobs/{}", built.layers[0]),
    );
    let name = format!("{}/lib/big:latest", proxy.host());
    let err = e.fails(&["image", "pull", &name]);
    assert!(err.contains(built.layers[0].as_str()), "{err}");
    assert!(!e
        .root()
        .join("blobs/sha256")
        .join(built.layers[0].hex())
        .exists());
    assert_eq!(e.names("layers"), Vec::<String>::new());
    assert_eq!(
        e.tmp_litter(),
        Vec::<String>::new(),
        "a corrupt partial was kept"
    );
    let ls = e.ok(&["image", "ls", "-q"]);
    assert_eq!(ls.trim(), "");
}

#[test]
fn cut_connection_then_resume_with_range() {
    let Some(reg) = registry(Mode::Http) else {
        return;
    };
    let e = Env::new("pull-cut");
    let mut layout = e.layout();
    let built = layout.add_image("latest", &Image::new(vec![big_layer(600_000)]));
    reg.push(&layout.dir, "latest", "lib/big:latest", false);
    let target = format!("127.0.0.1:{}", reg.port).parse().unwrap();
    let proxy = FaultProxy::start(
        target,
        Fault::CutOnce { after: 300_000 },
        &format!("/blobs/{}", built.layers[0]),
    );
    let name = format!("{}/lib/big:latest", proxy.host());
    e.fails(&["image", "pull", &name]);
    assert_eq!(e.names("layers"), Vec::<String>::new());
    e.ok(&["image", "pull", &name]);
    let ranges: Vec<String> = proxy
        .requests()
        .iter()
        .filter(|s| s.target.contains(built.layers[0].as_str()))
        .filter_map(|s| s.header("range").map(str::to_string))
        .collect();
    assert_eq!(ranges.len(), 1, "want one Range request: {ranges:?}");
    let from: u64 = ranges[0]
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(from > 0 && from <= 300_000, "{ranges:?}");
    assert_eq!(e.tmp_litter(), Vec::<String>::new());
    assert_eq!(e.names("layers").len(), 1);
}

#[test]
fn a_whole_partial_is_verified_and_used_without_a_request() {
    let Some(reg) = registry(Mode::Http) else {
        return;
    };
    let e = Env::new("pull-whole-partial");
    let mut layout = e.layout();
    let built = layout.add_image("latest", &Image::new(vec![big_layer(200_000)]));
    reg.push(&layout.dir, "latest", "lib/big:latest", false);
    let target = format!("127.0.0.1:{}", reg.port).parse().unwrap();
    let proxy = FaultProxy::start(target, Fault::None, "/blobs/");
    let name = format!("{}/lib/big:latest", proxy.host());
    e.ok(&["image", "ls"]);
    let layer = &built.layers[0];
    let partial = e
        .root()
        .join("tmp")
        .join(format!("{}.partial", layer.hex()));
    let bytes = fs::read(layout.blob_path(layer)).unwrap();
    // Wrong bytes of the right size: refused as the blob they are not,
    // and dropped, so the next pull fetches it.
    fs::write(&partial, vec![0u8; bytes.len()]).unwrap();
    let err = e.fails(&["image", "pull", &name]);
    assert!(err.contains(layer.as_str()), "{err}");
    assert!(!partial.exists(), "a corrupt whole partial was kept");
    // The blob itself, as a pull killed just before its commit leaves it.
    fs::write(&partial, &bytes).unwrap();
    e.ok(&["image", "pull", &name]);
    let fetched = proxy
        .requests()
        .iter()
        .filter(|s| s.target.contains(layer.as_str()))
        .count();
    assert_eq!(fetched, 0, "the whole partial was fetched again");
    assert_eq!(e.tmp_litter(), Vec::<String>::new());
}

#[test]
fn two_concurrent_pulls_download_once() {
    let Some(reg) = registry(Mode::Http) else {
        return;
    };
    let e = Env::new("pull-concurrent");
    let mut layout = e.layout();
    let built = layout.add_image(
        "latest",
        &Image::new(vec![
            big_layer(2_000_000),
            Layer::new(Compress::Zstd, vec![Entry::file("x", "y")]),
        ]),
    );
    reg.push(&layout.dir, "latest", "lib/big:latest", false);
    let target = format!("127.0.0.1:{}", reg.port).parse().unwrap();
    let proxy = FaultProxy::start(target, Fault::None, "/blobs/");
    let name = format!("{}/lib/big:latest", proxy.host());
    let a = e
        .cmd(&["image", "pull", "-q", &name])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = e
        .cmd(&["image", "pull", "-q", &name])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for l in &built.layers {
        let gets = proxy
            .requests()
            .iter()
            .filter(|s| s.target.contains(l.as_str()))
            .count();
        assert_eq!(gets, 1, "layer {l} fetched {gets} times");
    }
    assert_eq!(e.names("layers").len(), 2);
    let ls = e.ok(&["image", "ls", "-q"]);
    assert_eq!(ls.trim(), built.config.short());
}

#[test]
fn sigkill_mid_pull_leaves_a_consistent_store() {
    let Some(reg) = registry(Mode::Http) else {
        return;
    };
    let e = Env::new("pull-kill");
    let mut layout = e.layout();
    let built = layout.add_image(
        "latest",
        &Image::new(vec![big_layer(8_000_000), big_layer(8_000_000)]),
    );
    reg.push(&layout.dir, "latest", "lib/big:latest", false);
    let name = format!("{}/lib/big:latest", reg.host());
    // Kill at a few moments; each time the store must read as consistent.
    for delay_ms in [5u64, 40, 120] {
        let mut c = e
            .cmd(&["image", "pull", "-q", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = c.kill();
        let _ = c.wait();
        let ls = e.run(&["image", "ls"]);
        assert!(
            ls.status.success(),
            "{}",
            String::from_utf8_lossy(&ls.stderr)
        );
        // Whatever is in layers/ is complete (has its info file).
        for l in e.names("layers") {
            assert!(
                e.root().join("layers").join(&l).join("info.json").exists(),
                "half layer {l}"
            );
        }
    }
    e.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(e.tmp_litter(), Vec::<String>::new());
    e.ok(&["image", "pull", "-q", &name]);
    assert_eq!(e.ok(&["image", "ls", "-q"]).trim(), built.config.short());
}

#[test]
fn tar_slip_layer_is_refused() {
    let Some(reg) = registry(Mode::Http) else {
        return;
    };
    let e = Env::new("pull-slip");
    let mut layout = e.layout();
    let outside = e.dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    // A raw layer whose second entry climbs out of the layer directory.
    let evil = oci::raw_tar(&[
        Entry::file("ok", "fine\n"),
        Entry::file("../../../../../../../../tmp/runway-slip-test", "escaped\n"),
    ]);
    add_with_raw_layer(&mut layout, "latest", &Image::busybox(), &evil);
    reg.push(&layout.dir, "latest", "lib/slip:latest", false);
    let err = e.fails(&["image", "pull", &format!("{}/lib/slip:latest", reg.host())]);
    assert!(err.contains("escapes") || err.contains(".."), "{err}");
    assert!(!Path::new("/tmp/runway-slip-test").exists());
    assert_eq!(e.names("layers").len(), 1, "only the busybox layer");
    assert_eq!(e.tmp_litter(), Vec::<String>::new());
}

/// `base` plus one more gzip layer made of `raw` tar bytes (which the
/// builder's own tar writer would refuse), tagged `tag`.
fn add_with_raw_layer(layout: &mut oci::Layout, tag: &str, base: &Image, raw: &[u8]) {
    let b = layout.write_image(base);
    let mut cfg: Value = serde_json::from_slice(&b.config_bytes).unwrap();
    cfg["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(Digest::of(raw)));
    let blob = oci::gzip(raw);
    let ld = layout.put_blob(&blob);
    let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
    let cd = layout.put_blob(&cfg_bytes);
    let mut man: Value = serde_json::from_slice(&b.manifest_bytes).unwrap();
    man["layers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"mediaType": Compress::Gzip.media_type(), "digest": ld, "size": blob.len()}));
    man["config"]["digest"] = json!(cd);
    man["config"]["size"] = json!(cfg_bytes.len());
    let man_bytes = serde_json::to_vec(&man).unwrap();
    let md = layout.put_blob(&man_bytes);
    layout.tag(
        tag,
        json!({"mediaType": types::OCI_MANIFEST, "digest": md, "size": man_bytes.len()}),
    );
}
