//! `runway registry serve` and `registry gc` against real clients (skopeo,
//! podman, runway's own pull) and a raw HTTP client for the protocol's
//! corners, faults (disconnects, wrong digests, SIGKILL mid-upload), load
//! (50 parallel pulls, 10 parallel pushes) and garbage collection. The
//! client scenarios also run against Debian's docker-registry, to check
//! the tests themselves. Every server is on 127.0.0.1 with its own root.
#![cfg(feature = "full")]

mod common;
#[allow(dead_code)]
#[path = "containers/harness.rs"]
mod harness;
#[path = "common/registry_server.rs"]
mod rs;

use common::oci::{noise, Compress, Image, Layer, Layout};
use common::registry::{Mode, Pki, Registry, TempDir, PASSWORD, USER};
use common::skip;
use harness::{Pm, Rw};
use rs::{chunked, have, read_resp, req, skopeo, Srv};
use runway::image::digest::Digest;
use runway::image::registry::creds::b64_encode;
use serde_json::{json, Value};
use std::fs;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY: &[u8] = b"{}";

fn tools(names: &[&str]) -> bool {
    for t in names {
        if !have(t) {
            if std::env::var_os("RUNWAY_ENGINES_REQUIRE").is_some() {
                panic!("{t} is required (RUNWAY_ENGINES_REQUIRE=1)");
            }
            skip(&format!("{t} not installed"));
            return false;
        }
    }
    true
}

fn ok(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The manifest digest index.json names `tag` with.
fn layout_digest(dir: &Path, tag: &str) -> String {
    let v: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {v}"))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Scenario 1: skopeo push and pull, OCI and Docker v2s2, digests kept.
fn skopeo_round_trip(host: &str, scratch: &Path) {
    let mut l = Layout::create(&scratch.join("src"));
    let b = l.add_image("v1", &Image::busybox());
    let sk = scratch.join("skopeo");
    let dest = format!("docker://{host}/rt/busybox:v1");
    let src = l.oci_ref("v1");
    ok(
        skopeo(&sk, &["copy", "-q", "--dest-tls-verify=false", &src, &dest]),
        "skopeo push",
    );
    let back = scratch.join("back");
    let back_ref = format!("oci:{}:v1", back.display());
    ok(
        skopeo(
            &sk,
            &["copy", "-q", "--src-tls-verify=false", &dest, &back_ref],
        ),
        "skopeo pull",
    );
    assert_eq!(layout_digest(&back, "v1"), b.manifest.to_string());
    for d in b.layers.iter().chain([&b.config]) {
        assert!(
            back.join("blobs/sha256").join(d.hex()).exists(),
            "{d} not pulled"
        );
    }
    // Docker media types: the manifest is stored and served as pushed.
    let v2 = format!("docker://{host}/rt/busybox2:v2");
    ok(
        skopeo(
            &sk,
            &[
                "copy",
                "-q",
                "--format",
                "v2s2",
                "--dest-tls-verify=false",
                &src,
                &v2,
            ],
        ),
        "skopeo push v2s2",
    );
    let raw = ok(
        skopeo(&sk, &["inspect", "--raw", "--tls-verify=false", &v2]),
        "skopeo inspect",
    );
    let m: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let dir = scratch.join("v2dir");
    let dir_ref = format!("dir:{}", dir.display());
    ok(
        skopeo(
            &sk,
            &["copy", "-q", "--src-tls-verify=false", &v2, &dir_ref],
        ),
        "skopeo pull v2s2",
    );
    let info = ok(
        skopeo(&sk, &["inspect", "--tls-verify=false", &v2]),
        "skopeo inspect",
    );
    let digest = serde_json::from_str::<Value>(&info).unwrap()["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        Digest::of(&fs::read(dir.join("manifest.json")).unwrap()).to_string(),
        digest
    );
    assert_eq!(raw.as_bytes(), fs::read(dir.join("manifest.json")).unwrap());
}

/// Scenario 3: runway pulls what skopeo pushed and runs it.
fn runway_pull_and_run(host: &str, scratch: &Path) {
    let mut l = Layout::create(&scratch.join("run-src"));
    l.add_image("v1", &Image::busybox());
    let image = format!("{host}/run/busybox:v1");
    let dest = format!("docker://{image}");
    ok(
        skopeo(
            &scratch.join("sk"),
            &[
                "copy",
                "-q",
                "--dest-tls-verify=false",
                &l.oci_ref("v1"),
                &dest,
            ],
        ),
        "skopeo push",
    );
    let rw = Rw::new("regpull");
    // The pull runs in the host's network namespace (the server's); the
    // container in the test's own.
    let out = Command::new(common::runtime())
        .arg("--root")
        .arg(&rw.root)
        .arg("--data-root")
        .arg(&rw.data)
        .args(["pull", &image])
        .output()
        .unwrap();
    ok(out, "runway pull");
    let o = rw.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "echo",
        "hi",
    ]);
    assert_eq!(o.stdout.trim(), "hi", "{o}");
}

#[test]
fn skopeo_push_pull_runway() {
    if !tools(&["skopeo"]) {
        return;
    }
    let s = Srv::start(&[]);
    skopeo_round_trip(&s.host(), &s.dir.path().join("t"));
}

#[test]
fn skopeo_push_pull_docker_registry() {
    let Some(r) = Registry::start(Mode::Http) else {
        return;
    };
    let t = TempDir::new("rwreg-dr");
    skopeo_round_trip(&r.host(), t.path());
}

#[test]
fn runway_pull_run_runway() {
    if !tools(&["skopeo"]) {
        return;
    }
    let s = Srv::start(&[]);
    runway_pull_and_run(&s.host(), &s.dir.path().join("t"));
}

/// runway's own client against runway's server: a push, the manifest the
/// server then serves (read by skopeo), a pull into a fresh store (the
/// same image), and a second push that sends nothing.
#[test]
fn runway_push_pull_round_trip_runway() {
    if !tools(&["skopeo"]) {
        return;
    }
    let s = Srv::start(&[]);
    let rw = Rw::new("regpush");
    let remote = format!("{}/rt/busybox:v1", s.host());
    rw.import(&Image::busybox(), &remote);
    // Push and pull in the host's network namespace (the server's).
    let host_cmd = |data: &Path, args: &[&str]| {
        Command::new(common::runtime())
            .arg("--root")
            .arg(&rw.root)
            .arg("--data-root")
            .arg(data)
            .args(args)
            .output()
            .unwrap()
    };
    let out = ok(
        host_cmd(&rw.data, &["image", "push", &remote]),
        "runway push",
    );
    let digest = out
        .split("v1: digest: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest line:\n{out}"))
        .to_string();
    let raw = skopeo(
        &s.dir.path().join("sk"),
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{remote}"),
        ],
    );
    assert!(raw.status.success(), "skopeo inspect: {raw:?}");
    assert_eq!(Digest::of(&raw.stdout).to_string(), digest);
    let fresh = s.dir.path().join("fresh");
    ok(host_cmd(&fresh, &["pull", "-q", &remote]), "runway pull");
    let id = |data: &Path| {
        let v: Value = serde_json::from_str(&ok(
            host_cmd(data, &["image", "inspect", &remote]),
            "inspect",
        ))
        .unwrap();
        v[0]["Id"].clone()
    };
    assert_eq!(id(&fresh), id(&rw.data));
    let again = ok(
        host_cmd(&rw.data, &["image", "push", &remote]),
        "second push",
    );
    assert!(
        again.contains("Layer already exists") && !again.contains("Pushed"),
        "{again}"
    );
}

#[test]
fn runway_pull_run_docker_registry() {
    let Some(r) = Registry::start(Mode::Http) else {
        return;
    };
    let t = TempDir::new("rwreg-dr");
    runway_pull_and_run(&r.host(), t.path());
}

#[test]
fn podman_push_pull() {
    if !tools(&["skopeo", "podman"]) {
        return;
    }
    let s = Srv::start(&[]);
    let rw = Rw::new("regpodman");
    let Some(pm) = Pm::new(&rw) else { return };
    let layout = rw.import(&Image::busybox(), "pmbb");
    pm.load(&layout, "pmbb").unwrap();
    let remote = format!("{}/pm/busybox:latest", s.host());
    let o = pm.pm(&[
        "push",
        "--tls-verify=false",
        "localhost/pmbb:latest",
        &remote,
    ]);
    assert_eq!(o.code, 0, "{o}\n{}", s.log());
    let o = pm.pm(&["rmi", "-f", "localhost/pmbb:latest"]);
    assert_eq!(o.code, 0, "{o}");
    let o = pm.pm(&["pull", "--tls-verify=false", &remote]);
    assert_eq!(o.code, 0, "{o}\n{}", s.log());
    let o = pm.pm(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(o.stdout.contains("pm/busybox:latest"), "{o}");
    let _ = pm.pm(&["rmi", "-af"]);
}

// ------------------------------------------------------------------ faults

#[test]
fn disconnect_mid_upload_is_resumable_and_invisible() {
    let s = Srv::start(&[]);
    let blob = noise(7, 1 << 20);
    let d = Digest::of(&blob);
    let r = s.req("POST", "/v2/f/blobs/uploads/", &[], b"");
    assert_eq!(r.status, 202, "{r:?}");
    let loc = r.header("location").unwrap().to_string();
    {
        let mut c = TcpStream::connect(s.host()).unwrap();
        let head = format!(
            "PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            blob.len()
        );
        c.write_all(head.as_bytes()).unwrap();
        c.write_all(&blob[..300_000]).unwrap();
    } // dropped: the client is gone mid-body
      // Wait for the server to notice (its request line is logged).
    assert!(harness::poll(std::time::Duration::from_secs(20), || s
        .log()
        .contains("PATCH ")));
    assert!(s.blob_files().is_empty());
    assert_eq!(
        s.req("HEAD", &format!("/v2/f/blobs/{d}"), &[], b"").status,
        404
    );
    let st = s.req("GET", &loc, &[], b"");
    assert_eq!(st.status, 204);
    let have: usize = st
        .header("range")
        .unwrap()
        .split('-')
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        + 1;
    assert_eq!(have, 300_000);
    let cr = format!("{have}-{}", blob.len() - 1);
    let r = s.req("PATCH", &loc, &[("Content-Range", &cr)], &blob[have..]);
    assert_eq!(r.status, 202, "{r:?}");
    let r = s.req("PUT", &format!("{loc}?digest={d}"), &[], b"");
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(s.blob_files(), vec![d.hex().to_string()]);
    assert_eq!(
        s.req("GET", &format!("/v2/f/blobs/{d}"), &[], b"").body,
        blob
    );
}

#[test]
fn wrong_digest_leaves_nothing() {
    let s = Srv::start(&[]);
    let wrong = Digest::of(b"other");
    let r = s.req(
        "POST",
        &format!("/v2/f/blobs/uploads/?digest={wrong}"),
        &[],
        b"content",
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "DIGEST_INVALID"),
        "{r:?}"
    );
    // The same through POST + PUT.
    let r = s.req("POST", "/v2/f/blobs/uploads/", &[], b"");
    let loc = r.header("location").unwrap().to_string();
    let r = s.req("PUT", &format!("{loc}?digest={wrong}"), &[], b"content");
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "DIGEST_INVALID"),
        "{r:?}"
    );
    assert!(s.blob_files().is_empty());
    assert_eq!(fs::read_dir(s.root.join("_uploads")).unwrap().count(), 0);
    assert_eq!(s.req("GET", &loc, &[], b"").code(), "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn manifest_with_missing_blob_is_refused() {
    let s = Srv::start(&[]);
    let cfg = s.push_blob("m", EMPTY);
    let missing = Digest::of(b"not pushed");
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": missing, "size": 10}]});
    let r = s.put_manifest("m", "t", OCI_MANIFEST, m.to_string().as_bytes());
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN"),
        "{r:?}"
    );
    // A blob of another repository does not count either.
    let other = s.push_blob("other", b"layer");
    let m2 = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": other, "size": 5}]});
    let r = s.put_manifest("m", "t", OCI_MANIFEST, m2.to_string().as_bytes());
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(s.req("GET", "/v2/m/manifests/t", &[], b"").status, 404);
    // Not JSON; a digest reference that is not the body's.
    assert_eq!(
        s.put_manifest("m", "t", OCI_MANIFEST, b"{nope").code(),
        "MANIFEST_INVALID"
    );
    let empty = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg, "size": 2}, "layers": []});
    let r = s.put_manifest(
        "m",
        &missing.to_string(),
        OCI_MANIFEST,
        empty.to_string().as_bytes(),
    );
    assert_eq!(r.code(), "DIGEST_INVALID");
}

#[test]
fn sigkill_during_uploads_then_restart() {
    let mut s = Srv::start(&[]);
    let host = s.host();
    let blobs: Vec<Vec<u8>> = (0..10u8)
        .map(|i| {
            let mut b = noise(100, 2 << 20);
            b[0] = i;
            b
        })
        .collect();
    let half = Arc::new(Barrier::new(11));
    let killed = Arc::new(Barrier::new(11));
    let mut threads = Vec::new();
    for b in blobs.clone() {
        let (host, half, killed) = (host.clone(), half.clone(), killed.clone());
        threads.push(std::thread::spawn(move || {
            let d = Digest::of(&b);
            let mut c = TcpStream::connect(&host).unwrap();
            let head = format!(
                "POST /v2/k/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                b.len()
            );
            c.write_all(head.as_bytes()).unwrap();
            c.write_all(&b[..b.len() / 2]).unwrap();
            half.wait();
            killed.wait();
            let _ = c.write_all(&b[b.len() / 2..]);
        }));
    }
    half.wait();
    // Every server worker is reading a body: kill it now.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let st = s.signal(libc::SIGKILL);
    assert!(!st.success());
    killed.wait();
    for t in threads {
        t.join().unwrap();
    }
    assert!(s.blob_files().is_empty(), "a partial blob is visible");
    s.spawn("127.0.0.1:0");
    let host = s.host();
    let mut threads = Vec::new();
    for b in blobs.clone() {
        let host = host.clone();
        threads.push(std::thread::spawn(move || {
            let d = Digest::of(&b);
            assert_eq!(
                req(&host, "HEAD", &format!("/v2/k/blobs/{d}"), &[], b"").status,
                404
            );
            let r = req(
                &host,
                "POST",
                &format!("/v2/k/blobs/uploads/?digest={d}"),
                &[],
                &b,
            );
            assert_eq!(r.status, 201, "{r:?}");
        }));
    }
    for t in threads {
        if t.join().is_err() {
            panic!("a redone upload failed; server log:\n{}", s.log());
        }
    }
    let mut want: Vec<String> = blobs
        .iter()
        .map(|b| Digest::of(b).hex().to_string())
        .collect();
    want.sort();
    assert_eq!(s.blob_files(), want);
    for h in want {
        let bytes = fs::read(s.root.join("blobs/sha256").join(&h)).unwrap();
        assert_eq!(Digest::of(&bytes).hex(), h);
    }
}

/// Push a small image (config + `layers`) as REPO:TAG; its manifest digest.
fn push_image(s: &Srv, repo: &str, tag: &str, layers: &[&[u8]]) -> (Digest, Vec<Digest>) {
    let cfg_bytes =
        format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"tag\":\"{repo}:{tag}\"}}");
    let cfg = s.push_blob(repo, cfg_bytes.as_bytes());
    let mut ds = vec![cfg.clone()];
    let mut descs = Vec::new();
    for l in layers {
        let d = s.push_blob(repo, l);
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": l.len()}));
        ds.push(d);
    }
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": cfg_bytes.len()},
        "layers": descs});
    let body = m.to_string();
    let r = s.put_manifest(repo, tag, OCI_MANIFEST, body.as_bytes());
    assert_eq!(r.status, 201, "{r:?}");
    (Digest::of(body.as_bytes()), ds)
}

#[test]
fn delete_then_gc_frees_only_unreferenced() {
    let s = Srv::start(&[]);
    let shared = noise(1, 5000);
    let (m1, b1) = push_image(&s, "g/a", "one", &[&shared, b"only one"]);
    let (m2, b2) = push_image(&s, "g/a", "two", &[&shared, b"only two"]);
    let orphan = s.push_blob("g/b", b"never referenced");
    let r = s.req("DELETE", &format!("/v2/g/a/manifests/{m2}"), &[], b"");
    assert_eq!(r.status, 202);
    assert_eq!(s.req("GET", "/v2/g/a/manifests/two", &[], b"").status, 404);
    let gc = |dry: bool| {
        let mut c = Command::new(common::runtime());
        c.args(["registry", "gc", "--root"]).arg(&s.root);
        if dry {
            c.arg("--dry-run");
        }
        ok(c.output().unwrap(), "registry gc")
    };
    let before = s.blob_files();
    let dry = gc(true);
    assert_eq!(s.blob_files(), before, "--dry-run removed something");
    let out = gc(false);
    assert_eq!(
        dry.replace("would remove", "removed")
            .replace("would free", "freed"),
        out
    );
    // Gone: two's manifest, config and own layer, and the orphan.
    let gone = [&m2, &b2[0], &b2[2], &orphan];
    for d in gone {
        assert!(out.contains(d.as_str()), "{d} not collected:\n{out}");
        assert!(!s.root.join("blobs/sha256").join(d.hex()).exists());
    }
    let freed: u64 = out
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!(freed > 0, "{out}");
    for d in b1.iter().chain([&m1]) {
        assert!(
            s.root.join("blobs/sha256").join(d.hex()).exists(),
            "{d} was collected"
        );
    }
    let r = s.req("GET", "/v2/g/a/manifests/one", &[], b"");
    assert_eq!(r.status, 200);
    for d in &b1 {
        assert_eq!(
            s.req("GET", &format!("/v2/g/a/blobs/{d}"), &[], b"").status,
            200
        );
    }
    assert_eq!(
        s.req("HEAD", &format!("/v2/g/b/blobs/{orphan}"), &[], b"")
            .status,
        404
    );
    assert_eq!(s.blob_files().len(), 4);
}

// -------------------------------------------------------------------- load

#[test]
fn load_50_pulls_10_pushes() {
    let s = Srv::start(&[]);
    let big = noise(9, 8 << 20);
    let (m, blobs) = push_image(&s, "load/base", "v1", &[&big, b"small"]);
    let host = s.host();
    let mut threads = Vec::new();
    for _ in 0..50 {
        let (host, blobs) = (host.clone(), blobs.clone());
        threads.push(std::thread::spawn(move || {
            // One keep-alive connection per client, as real clients do.
            let mut c = BufReader::new(TcpStream::connect(&host).unwrap());
            let mut get = |path: &str| {
                let h = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
                c.get_mut().write_all(h.as_bytes()).unwrap();
                read_resp(&mut c, false)
            };
            let r = get("/v2/load/base/manifests/v1");
            assert_eq!(r.status, 200);
            for d in &blobs {
                let r = get(&format!("/v2/load/base/blobs/{d}"));
                assert_eq!(r.status, 200);
                assert_eq!(&Digest::of(&r.body), d);
            }
        }));
    }
    let shared = noise(10, 4 << 20);
    let pushers: Vec<_> = (0..10)
        .map(|i| {
            let (host, shared) = (host.clone(), shared.clone());
            std::thread::spawn(move || {
                for (n, bytes) in [shared.clone(), format!("own layer {i}").into_bytes()]
                    .iter()
                    .enumerate()
                {
                    let d = Digest::of(bytes);
                    // Half of them stream with chunked PATCHes, as docker does.
                    let r = req(
                        &host,
                        "POST",
                        &format!("/v2/load/p{i}/blobs/uploads/"),
                        &[],
                        b"",
                    );
                    assert_eq!(r.status, 202);
                    let loc = r.header("location").unwrap().to_string();
                    let body = chunked(bytes, 100_000);
                    let r = req(
                        &host,
                        "PATCH",
                        &loc,
                        &[("Transfer-Encoding", "chunked")],
                        &body,
                    );
                    assert_eq!(r.status, 202, "{r:?}");
                    let r = req(&host, "PUT", &format!("{loc}?digest={d}"), &[], b"");
                    assert_eq!(r.status, 201, "{n}: {r:?}");
                }
            })
        })
        .collect();
    for t in threads.into_iter().chain(pushers) {
        t.join().unwrap();
    }
    // Exactly one file per digest: 4 of the base image, shared + 10 own.
    let files = s.blob_files();
    assert_eq!(files.len(), 4 + 1 + 10, "{files:?}");
    for h in &files {
        assert_eq!(
            Digest::of(&fs::read(s.root.join("blobs/sha256").join(h)).unwrap()).hex(),
            h
        );
    }
    assert!(
        files.contains(&Digest::of(&shared).hex().to_string())
            && files.contains(&m.hex().to_string())
    );
    assert_eq!(fs::read_dir(s.root.join("_uploads")).unwrap().count(), 0);
    let hwm = s.vm_hwm_kib();
    assert!(hwm < 32 << 10, "peak RSS {hwm} KiB is over 32 MiB");
    common::note(&format!("registry peak RSS after the load: {hwm} KiB"));
}

// --------------------------------------------------------------- protocol

#[test]
fn base_errors_and_names() {
    let s = Srv::start(&[]);
    let r = s.req("GET", "/v2/", &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert_eq!(
        s.req("GET", "/v2/Bad/tags/list", &[], b"").code(),
        "NAME_INVALID"
    );
    assert_eq!(
        s.req("GET", "/v2/a..b/manifests/x", &[], b"").code(),
        "NAME_INVALID"
    );
    assert_eq!(
        s.req("GET", "/v2/nope/tags/list", &[], b"").code(),
        "NAME_UNKNOWN"
    );
    assert_eq!(
        s.req("GET", "/v2/nope/manifests/x", &[], b"").code(),
        "MANIFEST_UNKNOWN"
    );
    let d = Digest::of(b"x");
    let r = s.req("GET", &format!("/v2/nope/blobs/{d}"), &[], b"");
    assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UNKNOWN"));
    assert_eq!(
        s.req("GET", "/v2/a/blobs/sha256:00", &[], b"").code(),
        "DIGEST_INVALID"
    );
    assert_eq!(
        s.req("GET", "/v2/a/blobs/uploads/0123", &[], b"").code(),
        "BLOB_UPLOAD_UNKNOWN"
    );
    assert_eq!(s.req("POST", "/v2/a/manifests/x", &[], b"").status, 405);
}

#[test]
fn ranges_and_chunked_patches() {
    let s = Srv::start(&[]);
    let blob = noise(3, 1000);
    let r = s.req("POST", "/v2/r/blobs/uploads/", &[], b"");
    assert_eq!(r.header("range"), Some("0-0"));
    assert!(r.header("docker-upload-uuid").is_some());
    let loc = r.header("location").unwrap().to_string();
    let r = s.req(
        "PATCH",
        &loc,
        &[("Content-Range", "0-499"), ("Transfer-Encoding", "chunked")],
        &chunked(&blob[..500], 77),
    );
    assert_eq!((r.status, r.header("range")), (202, Some("0-499")), "{r:?}");
    // Out of order: 416 with where the upload is.
    let r = s.req(
        "PATCH",
        &loc,
        &[("Content-Range", "600-699")],
        &blob[600..700],
    );
    assert_eq!((r.status, r.header("range")), (416, Some("0-499")), "{r:?}");
    let r = s.req(
        "PATCH",
        &loc,
        &[("Content-Range", "500-899")],
        &blob[500..900],
    );
    assert_eq!(r.status, 202);
    let d = Digest::of(&blob);
    // The last chunk rides on the PUT.
    let r = s.req(
        "PUT",
        &format!("{loc}?digest={d}"),
        &[("Content-Range", "900-999")],
        &blob[900..],
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/r/blobs/{d}").as_str())
    );
    let path = format!("/v2/r/blobs/{d}");
    let h = s.req("HEAD", &path, &[], b"");
    assert_eq!((h.status, h.header("content-length")), (200, Some("1000")));
    let g = |range: &str| s.req("GET", &path, &[("Range", range)], b"");
    let r = g("bytes=10-19");
    assert_eq!(
        (r.status, r.header("content-range")),
        (206, Some("bytes 10-19/1000"))
    );
    assert_eq!(r.body, &blob[10..20]);
    assert_eq!(g("bytes=990-").body, &blob[990..]);
    assert_eq!(g("bytes=-5").body, &blob[995..]);
    let r = g("bytes=1000-");
    assert_eq!(
        (r.status, r.header("content-range")),
        (416, Some("bytes */1000"))
    );
    // Upload gone after its PUT.
    assert_eq!(s.req("GET", &loc, &[], b"").status, 404);
    // Cancelled upload.
    let loc = s
        .req("POST", "/v2/r/blobs/uploads/", &[], b"")
        .header("location")
        .unwrap()
        .to_string();
    assert_eq!(s.req("DELETE", &loc, &[], b"").status, 204);
    assert_eq!(s.req("GET", &loc, &[], b"").code(), "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn tags_catalog_pagination() {
    let s = Srv::start(&[]);
    for t in ["e", "a", "c", "b", "d"] {
        push_image(&s, "p/q", t, &[]);
    }
    push_image(&s, "p/r", "x", &[]);
    push_image(&s, "a", "x", &[]);
    let mut got = Vec::new();
    let mut next = Some("/v2/p/q/tags/list?n=2".to_string());
    while let Some(path) = next.take() {
        let r = s.req("GET", &path, &[], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["name"], "p/q");
        let tags = r.json()["tags"].as_array().unwrap().clone();
        assert!(tags.len() <= 2);
        got.extend(tags.iter().map(|t| t.as_str().unwrap().to_string()));
        next = r.header("link").map(|l| {
            l.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_string()
        });
    }
    assert_eq!(got, ["a", "b", "c", "d", "e"]);
    let r = s.req("GET", "/v2/_catalog", &[], b"");
    assert_eq!(r.json()["repositories"], json!(["a", "p/q", "p/r"]));
    let r = s.req("GET", "/v2/_catalog?n=1&last=a", &[], b"");
    assert_eq!(r.json()["repositories"], json!(["p/q"]));
    assert_eq!(
        r.header("link"),
        Some("</v2/_catalog?n=1&last=p/q>; rel=\"next\"")
    );
}

#[test]
fn referrers_mount_delete() {
    let s = Srv::start(&[]);
    let (subject, blobs) = push_image(&s, "ref", "v1", &[b"layer"]);
    let empty = s.push_blob("ref", EMPTY);
    let art = |at: &str, note: &str| {
        let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": at,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
            "annotations": {"note": note}});
        let body = m.to_string();
        let d = Digest::of(body.as_bytes());
        let r = s.put_manifest("ref", &d.to_string(), OCI_MANIFEST, body.as_bytes());
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(r.header("oci-subject"), Some(subject.as_str()));
        d
    };
    let sig = art("application/x.sig", "signed");
    let sbom = art("application/x.sbom", "bom");
    let r = s.req("GET", &format!("/v2/ref/referrers/{subject}"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    let list = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert!(list.iter().any(|m| m["digest"] == sig.as_str()
        && m["annotations"]["note"] == "signed"
        && m["artifactType"] == "application/x.sig"));
    let r = s.req(
        "GET",
        &format!("/v2/ref/referrers/{subject}?artifactType=application/x.sbom"),
        &[],
        b"",
    );
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    let list = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(
        (list.len(), list[0]["digest"].as_str()),
        (1, Some(sbom.as_str()))
    );

    // Mount from a repository that has the blob: 201, no upload.
    let layer = &blobs[1];
    let r = s.req(
        "POST",
        &format!("/v2/other/blobs/uploads/?mount={layer}&from=ref"),
        &[],
        b"",
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        s.req("HEAD", &format!("/v2/other/blobs/{layer}"), &[], b"")
            .status,
        200
    );
    // From one that has not: a normal upload starts.
    let r = s.req(
        "POST",
        &format!("/v2/third/blobs/uploads/?mount={layer}&from=nothere"),
        &[],
        b"",
    );
    assert_eq!(r.status, 202);

    // DELETE: by tag drops the tag only, by digest the manifest.
    assert_eq!(
        s.req("DELETE", "/v2/ref/manifests/v1", &[], b"").status,
        202
    );
    assert_eq!(s.req("GET", "/v2/ref/manifests/v1", &[], b"").status, 404);
    assert_eq!(
        s.req("GET", &format!("/v2/ref/manifests/{subject}"), &[], b"")
            .status,
        200
    );
    assert_eq!(
        s.req("DELETE", &format!("/v2/ref/manifests/{sig}"), &[], b"")
            .status,
        202
    );
    let r = s.req("GET", &format!("/v2/ref/manifests/{sig}"), &[], b"");
    assert_eq!((r.status, r.code().as_str()), (404, "MANIFEST_UNKNOWN"));
    let r = s.req("GET", &format!("/v2/ref/referrers/{subject}"), &[], b"");
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        s.req("DELETE", &format!("/v2/other/blobs/{layer}"), &[], b"")
            .status,
        202
    );
    assert_eq!(
        s.req("HEAD", &format!("/v2/other/blobs/{layer}"), &[], b"")
            .status,
        404
    );
    assert_eq!(
        s.req("HEAD", &format!("/v2/ref/blobs/{layer}"), &[], b"")
            .status,
        200
    );
}

#[test]
fn read_only_refuses_writes() {
    let mut s = Srv::start(&[]);
    let (m, _) = push_image(&s, "ro", "v1", &[b"x"]);
    let _ = s.signal(libc::SIGTERM);
    let mut ro = Srv::start(&["--read-only"]);
    ro.root = s.root.clone();
    let _ = ro.signal(libc::SIGTERM);
    ro.spawn("127.0.0.1:0");
    assert_eq!(
        ro.req("GET", &format!("/v2/ro/manifests/{m}"), &[], b"")
            .status,
        200
    );
    for (method, path) in [
        ("POST", "/v2/ro/blobs/uploads/"),
        ("PUT", "/v2/ro/manifests/v2"),
        ("DELETE", "/v2/ro/manifests/v1"),
    ] {
        let r = ro.req(method, path, &[], b"{}");
        assert_eq!(
            (r.status, r.code().as_str()),
            (405, "UNSUPPORTED"),
            "{method} {path}"
        );
    }
}

#[test]
fn max_upload_is_enforced() {
    let s = Srv::start(&["--max-upload", "1k"]);
    let big = noise(5, 2048);
    let d = Digest::of(&big);
    let r = s.req(
        "POST",
        &format!("/v2/m/blobs/uploads/?digest={d}"),
        &[],
        &big,
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (413, "SIZE_INVALID"),
        "{r:?}"
    );
    assert!(s.blob_files().is_empty());
    assert_eq!(fs::read_dir(s.root.join("_uploads")).unwrap().count(), 0);
    s.push_blob("m", &big[..1024]);
}

#[test]
fn htpasswd_basic_auth() {
    if !tools(&["htpasswd", "skopeo"]) {
        return;
    }
    let t = TempDir::new("rwreg-auth");
    let out = Command::new("htpasswd")
        .args(["-Bbn", USER, PASSWORD])
        .output()
        .unwrap();
    fs::write(t.path().join("htpasswd"), ok(out, "htpasswd")).unwrap();
    let file = t.path().join("htpasswd").to_string_lossy().into_owned();
    let s = Srv::start(&["--htpasswd", &file]);
    let r = s.req("GET", "/v2/", &[], b"");
    assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"));
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"runway\""));
    let good = format!(
        "Basic {}",
        b64_encode(format!("{USER}:{PASSWORD}").as_bytes())
    );
    let bad = format!("Basic {}", b64_encode(format!("{USER}:wrong").as_bytes()));
    assert_eq!(
        s.req("GET", "/v2/", &[("Authorization", &good)], b"")
            .status,
        200
    );
    assert_eq!(
        s.req("GET", "/v2/", &[("Authorization", &bad)], b"").status,
        401
    );
    let mut l = Layout::create(&t.path().join("src"));
    l.add_image(
        "v1",
        &Image::new(vec![Layer::file(Compress::Gzip, "f", "x")]),
    );
    let dest = format!("docker://{}/auth/x:v1", s.host());
    let creds = format!("{USER}:{PASSWORD}");
    let sk = t.path().join("sk");
    let o = skopeo(
        &sk,
        &[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &l.oci_ref("v1"),
            &dest,
        ],
    );
    assert!(!o.status.success(), "pushed without credentials");
    ok(
        skopeo(
            &sk,
            &[
                "copy",
                "-q",
                "--dest-tls-verify=false",
                "--dest-creds",
                &creds,
                &l.oci_ref("v1"),
                &dest,
            ],
        ),
        "skopeo push with credentials",
    );
}

#[test]
fn tls_with_a_test_ca() {
    if !tools(&["openssl", "skopeo", "curl"]) {
        return;
    }
    let t = TempDir::new("rwreg-tls");
    let pki = Pki::make(t.path());
    let (c, k) = (
        pki.server_cert.to_string_lossy().into_owned(),
        pki.server_key.to_string_lossy().into_owned(),
    );
    let s = Srv::start(&["--tls-cert", &c, "--tls-key", &k]);
    let out = Command::new("curl")
        .args(["-sS", "--noproxy", "*", "--cacert"])
        .arg(&pki.ca_cert)
        .arg(format!("https://{}/v2/", s.host()))
        .output()
        .unwrap();
    assert_eq!(ok(out, "curl over TLS"), "{}");
    // Verified by the CA (no --tls-verify=false).
    let certs = t.path().join("certs");
    fs::create_dir_all(&certs).unwrap();
    fs::copy(&pki.ca_cert, certs.join("ca.crt")).unwrap();
    let mut l = Layout::create(&t.path().join("src"));
    let b = l.add_image(
        "v1",
        &Image::new(vec![Layer::file(Compress::Gzip, "f", "tls")]),
    );
    let dest = format!("docker://{}/tls/x:v1", s.host());
    let cd = certs.to_string_lossy().into_owned();
    let sk = t.path().join("sk");
    ok(
        skopeo(
            &sk,
            &[
                "copy",
                "-q",
                "--dest-cert-dir",
                &cd,
                &l.oci_ref("v1"),
                &dest,
            ],
        ),
        "skopeo push over TLS",
    );
    let back = t.path().join("back");
    let back_ref = format!("oci:{}:v1", back.display());
    ok(
        skopeo(
            &sk,
            &["copy", "-q", "--src-cert-dir", &cd, &dest, &back_ref],
        ),
        "skopeo pull over TLS",
    );
    assert_eq!(layout_digest(&back, "v1"), b.manifest.to_string());
    // Plain HTTP to a TLS port is not served.
    let mut c = TcpStream::connect(s.host()).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = c.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 16];
    let n = std::io::Read::read(&mut c, &mut buf).unwrap_or(0);
    assert!(!buf[..n].starts_with(b"HTTP/1.1 200"));
}

#[test]
fn sigterm_stops_cleanly() {
    let mut s = Srv::start(&[]);
    // An idle keep-alive connection does not hold the stop up.
    let mut idle = BufReader::new(TcpStream::connect(s.host()).unwrap());
    idle.get_mut()
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_resp(&mut idle, false).status, 200);
    let st = s.signal(libc::SIGTERM);
    assert_eq!(st.code(), Some(0), "{}", s.log());
}
