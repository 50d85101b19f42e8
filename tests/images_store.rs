//! The image store through the CLI: `image import` of layouts, tarballs
//! and what skopeo writes from them (all built by tests/common/oci.rs),
//! `image ls/inspect/tag/rm/prune` outputs and exit codes, a store that
//! skopeo and umoci read as an OCI layout, and no data left that no image
//! uses (after rm, prune, a bad archive, or concurrent imports).
#![cfg(feature = "full")]

mod common;

use common::oci::{self, Compress, Entry, Image, Layer, Layout};
use common::{note, run_program, runtime, skip, Out};
use runway::image::digest::Digest;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A temporary directory for one test: the data root and its inputs.
struct Dir {
    path: PathBuf,
}

impl Dir {
    fn new(name: &str) -> Dir {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("images_store")
            .join(format!(
                "{name}-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Dir { path }
    }

    fn root(&self) -> PathBuf {
        self.path.join("data")
    }

    fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    /// `runway --data-root <root> ARGS`.
    fn rw(&self, args: &[&str]) -> Out {
        let root = self.root();
        let mut all = vec!["--data-root", root.to_str().unwrap()];
        all.extend_from_slice(args);
        run_program(&runtime(), &all)
    }

    fn ok(&self, args: &[&str]) -> Out {
        let o = self.rw(args);
        o.assert_ok();
        o
    }

    fn blobs(&self) -> Vec<String> {
        names(&self.root().join("blobs/sha256"))
    }

    fn layers(&self) -> Vec<String> {
        names(&self.root().join("layers"))
    }

    /// tmp/ entries other than (empty, unlocked) lock files.
    fn tmp_litter(&self) -> Vec<String> {
        names(&self.root().join("tmp"))
            .into_iter()
            .filter(|n| !n.ends_with(".lock"))
            .collect()
    }

    fn index(&self) -> Value {
        serde_json::from_slice(&fs::read(self.root().join("index.json")).unwrap()).unwrap()
    }

    /// Every blob is reachable from index.json and every layer from a
    /// config; nothing unreachable is left.
    fn assert_consistent(&self) {
        let root = self.root();
        let mut blobs = Vec::new();
        let mut layers = Vec::new();
        for e in self.index()["manifests"].as_array().unwrap() {
            let md = e["digest"].as_str().unwrap();
            blobs.push(hex(md));
            let m: Value =
                serde_json::from_slice(&fs::read(root.join("blobs/sha256").join(hex(md))).unwrap())
                    .unwrap();
            let cd = m["config"]["digest"].as_str().unwrap();
            blobs.push(hex(cd));
            for l in m["layers"].as_array().unwrap() {
                blobs.push(hex(l["digest"].as_str().unwrap()));
            }
            let c: Value =
                serde_json::from_slice(&fs::read(root.join("blobs/sha256").join(hex(cd))).unwrap())
                    .unwrap();
            let diffs: Vec<Digest> = c["rootfs"]["diff_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| Digest::parse(d.as_str().unwrap()).unwrap())
                .collect();
            for ch in runway::image::types::chain_ids(&diffs) {
                layers.push(ch.hex().to_string());
            }
        }
        blobs.sort();
        blobs.dedup();
        layers.sort();
        layers.dedup();
        assert_eq!(self.blobs(), blobs, "blobs vs what index.json reaches");
        assert_eq!(self.layers(), layers, "layers vs the images' chain ids");
        for l in &layers {
            assert!(root.join("layers").join(l).join("info.json").is_file());
            assert!(root.join("layers").join(l).join("diff").is_dir());
        }
        assert_eq!(self.tmp_litter(), Vec::<String>::new(), "tmp/ litter");
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn hex(d: &str) -> String {
    d.strip_prefix("sha256:").unwrap().to_string()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}

/// The tools these tests build inputs with; None (after a skip line) if
/// one is missing.
fn tools(need: &[&str]) -> Option<()> {
    for t in need {
        if !have(t) {
            skip(&format!("{t} is not installed"));
            return None;
        }
    }
    if let Err(why) = oci::available() {
        skip(&why);
        return None;
    }
    if common::busybox().is_none() {
        skip("no static busybox (apt-get install busybox-static)");
        return None;
    }
    Some(())
}

fn host_arch() -> String {
    runway::image::types::Platform::host().architecture
}

/// An image for the host of `layers`, with a config that sets every field
/// `image inspect` shows.
fn image_of(layers: Vec<Layer>) -> Image {
    let mut img = Image::new(layers);
    img.arch = host_arch();
    let c = &mut img.config;
    c.env = vec!["PATH=/bin".into()];
    c.cmd = vec!["/bin/sh".into()];
    c.entrypoint = vec!["/bin/busybox".into()];
    c.working_dir = "/".into();
    c.user = "0:0".into();
    c.exposed_ports = vec!["80/tcp".into()];
    c.volumes = vec!["/data".into()];
    c.labels.insert("test".into(), "images_store".into());
    c.stop_signal = "SIGTERM".into();
    img
}

/// The top layer's entries: one file, etc/motd.
fn motd() -> Vec<Entry> {
    vec![
        Entry::dir("etc"),
        Entry::file("etc/motd", "hello from the top layer\n"),
    ]
}

/// busybox in one gzip layer.
fn one_layer() -> Image {
    image_of(vec![Layer::new(Compress::Gzip, oci::busybox_entries())])
}

/// busybox, then a layer that adds etc/motd (`top` compressed so).
fn two_layers(top: Compress) -> Image {
    image_of(vec![
        Layer::new(Compress::Gzip, oci::busybox_entries()),
        Layer::new(top, motd()),
    ])
}

/// The two-layer test image as an OCI layout (a gzip and an uncompressed
/// layer: skopeo's docker-archive refuses zstd). Returns the layout's
/// directory and the image ID.
fn test_layout(d: &Dir) -> (PathBuf, String) {
    let mut l = Layout::create(&d.join("layout"));
    let b = l.add_image("t", &two_layers(Compress::None));
    (l.dir, b.config.to_string())
}

fn skopeo(args: &[&str]) {
    let o = run_program(Path::new("skopeo"), args);
    assert!(o.ok(), "skopeo failed:\n{o}");
}

#[test]
fn import_docker_archive_and_oci_archive() {
    if tools(&["skopeo"]).is_none() {
        return;
    }
    let d = Dir::new("archives");
    let (l, id) = test_layout(&d);
    let da = d.join("d.tar");
    let oa = d.join("o.tar");
    let src = format!("oci:{}:t", l.display());
    skopeo(&[
        "copy",
        "-q",
        &src,
        &format!("docker-archive:{}:busybox:latest", da.display()),
    ]);
    skopeo(&[
        "copy",
        "-q",
        &src,
        &format!("oci-archive:{}:example.com/my/img:1", oa.display()),
    ]);

    let o = d.ok(&["image", "import", da.to_str().unwrap()]);
    assert_eq!(o.stdout, "Loaded image: busybox:latest\n");
    let o = d.ok(&["image", "import", oa.to_str().unwrap()]);
    assert_eq!(o.stdout, "Loaded image: example.com/my/img:1\n");
    // A layout directory with a bare tag as its name: untagged, unless named.
    let o = d.ok(&["image", "import", l.to_str().unwrap(), "localhost/dir:v2"]);
    assert_eq!(o.stdout, "Loaded image: localhost/dir:v2\n");
    d.assert_consistent();

    // The image ID is the config digest, whichever way it came.
    let o = d.ok(&["image", "ls", "--format", "json"]);
    let rows: Vec<Value> = o
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{o}");
    for r in &rows {
        assert_eq!(r["ID"].as_str().unwrap(), &hex(&id)[..12], "{r}");
    }
    // The layers are unpacked by chain id.
    let top_chain = d.layers();
    assert_eq!(top_chain.len(), 2);
    let found = top_chain.iter().any(|c| {
        d.root()
            .join("layers")
            .join(c)
            .join("diff/etc/motd")
            .is_file()
    });
    assert!(found, "no unpacked layer has etc/motd");

    // Other tools read the store as an OCI layout.
    let root = d.root();
    let o = run_program(
        Path::new("skopeo"),
        &[
            "inspect",
            &format!("oci:{}:docker.io/library/busybox:latest", root.display()),
        ],
    );
    assert!(o.ok(), "skopeo inspect of the store:\n{o}");
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["Env"], json!(["PATH=/bin"]));
    let cfg = run_program(
        Path::new("skopeo"),
        &[
            "inspect",
            "--config",
            &format!("oci:{}:example.com/my/img:1", root.display()),
        ],
    );
    assert!(cfg.ok(), "{cfg}");
    if have("umoci") {
        let o = run_program(
            Path::new("umoci"),
            &["ls", "--layout", root.to_str().unwrap()],
        );
        assert!(o.ok(), "umoci ls:\n{o}");
        let mut got: Vec<&str> = o.stdout.lines().collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                "docker.io/library/busybox:latest",
                "example.com/my/img:1",
                "localhost/dir:v2"
            ]
        );
    } else {
        note("umoci not installed: umoci ls not checked");
    }
}

#[test]
fn import_plain_tarballs_by_content() {
    if tools(&[]).is_none() {
        return;
    }
    let d = Dir::new("plain");
    // Names that say nothing: the content tells.
    let mut ids = Vec::new();
    for (file, comp) in [
        ("a.img", Compress::None),
        ("b.img", Compress::Gzip),
        ("c.img", Compress::Zstd),
    ] {
        let p = d.join(file);
        fs::write(&p, oci::rootfs_tarball(comp)).unwrap();
        let o = d.ok(&["image", "import", p.to_str().unwrap()]);
        let line = o.stdout.trim().to_string();
        assert!(
            line.starts_with("sha256:") && Digest::parse(&line).is_ok(),
            "a plain tarball without a name prints its ID: {o}"
        );
        ids.push(line);
    }
    // One layer, the same diff_id whatever the compression: unpacked once.
    assert_eq!(d.layers().len(), 1, "{:?}", d.layers());
    let o = d.ok(&[
        "image",
        "import",
        d.join("b.img").to_str().unwrap(),
        "rootfs:gz",
    ]);
    assert_eq!(o.stdout, "Loaded image: rootfs:gz\n");
    let o = d.ok(&["image", "inspect", "rootfs:gz"]);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    let i = &v[0];
    assert_eq!(i["RepoTags"], json!(["rootfs:gz"]));
    assert_eq!(i["Os"], "linux");
    assert_eq!(
        i["Architecture"],
        runway::image::types::Platform::host().architecture.as_str()
    );
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        i["Layers"][0]["MediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert!(d
        .root()
        .join("layers")
        .join(hex(i["RootFS"]["Layers"][0].as_str().unwrap()))
        .join("diff/bin/busybox")
        .is_file());
    d.assert_consistent();
}

#[test]
fn ls_inspect_tag_rm() {
    if tools(&[]).is_none() {
        return;
    }
    let d = Dir::new("cli");
    let (l, id) = test_layout(&d);
    let short = &hex(&id)[..12];
    d.ok(&["image", "import", l.to_str().unwrap(), "busybox"]);

    // Every spelling of the name, the ID, its prefix.
    for s in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        "library/busybox",
        &id,
        &hex(&id),
        short,
        &hex(&id)[..5],
    ] {
        let o = d.ok(&["image", "inspect", s]);
        let v: Value = serde_json::from_str(&o.stdout).unwrap();
        assert_eq!(v[0]["Id"], id.as_str(), "{s}");
    }
    let o = d.ok(&["image", "inspect", "busybox"]);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    let i = &v[0];
    assert_eq!(i["Config"]["Cmd"], json!(["/bin/sh"]));
    assert_eq!(i["Config"]["Labels"], json!({"test": "images_store"}));
    assert_eq!(i["Config"]["StopSignal"], "SIGTERM");
    assert_eq!(i["Created"], oci::CREATED);
    assert_eq!(i["Config"]["Entrypoint"], json!(["/bin/busybox"]));
    assert_eq!(i["Config"]["User"], "0:0");
    assert_eq!(i["Config"]["WorkingDir"], "/");
    assert_eq!(i["Config"]["ExposedPorts"], json!({"80/tcp": {}}));
    assert_eq!(i["Config"]["Volumes"], json!({"/data": {}}));
    assert_eq!(i["RepoTags"], json!(["busybox:latest"]));
    assert_eq!(i["RepoDigests"], json!([]));
    assert_eq!(i["Os"], "linux");
    assert_eq!(i["Layers"].as_array().unwrap().len(), 2);
    for lay in i["Layers"].as_array().unwrap() {
        for k in ["Digest", "DiffID", "ChainID", "Size", "MediaType"] {
            assert!(!lay[k].is_null(), "{k} in {lay}");
        }
    }
    assert!(i["Size"].as_u64().unwrap() > 100_000);

    // Unknown: docker's words, exit 1, the others still printed.
    let o = d.rw(&["image", "inspect", "busybox", "nope"]);
    assert_eq!(o.code, 1, "{o}");
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(o.stderr.trim(), "runway: No such image: nope");
    let line = d
        .rw(&["image", "inspect", "nope:1"])
        .assert_one_error_line();
    assert!(line.ends_with("No such image: nope:1"), "{line}");

    d.ok(&["image", "tag", "busybox", "me/app:v1"]);
    d.ok(&["image", "tag", short, "localhost:5000/x"]);
    let line = d.rw(&["image", "tag", "nope", "x"]).assert_one_error_line();
    assert!(line.contains("No such image: nope"), "{line}");

    let o = d.ok(&["images"]);
    let want_head = "REPOSITORY         TAG       IMAGE ID       CREATED       SIZE";
    let lines = o.stdout_lines();
    assert_eq!(lines[0], want_head, "{o}");
    assert_eq!(lines.len(), 4, "{o}");
    for (line, (repo, tag)) in lines[1..].iter().zip([
        ("busybox", "latest"),
        ("localhost:5000/x", "latest"),
        ("me/app", "v1"),
    ]) {
        let cols: Vec<&str> = line
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(cols[0], repo, "{line}");
        assert_eq!(cols[1], tag, "{line}");
        assert_eq!(cols[2], short, "{line}");
        assert!(cols[3].ends_with(" ago"), "{line}");
        assert!(cols[4].ends_with("MB"), "{line}");
    }
    let o = d.ok(&["image", "ls", "--digests"]);
    assert!(
        o.stdout_lines()[0].starts_with("REPOSITORY         TAG       DIGEST    IMAGE ID"),
        "{o}"
    );
    let o = d.ok(&["image", "ls", "-q"]);
    assert_eq!(o.stdout, format!("{short}\n{short}\n{short}\n"));
    let o = d.ok(&["image", "ls", "-a", "--format", "json"]);
    for l in o.stdout.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        for k in [
            "Repository",
            "Tag",
            "ID",
            "Digest",
            "CreatedAt",
            "CreatedSince",
            "Size",
        ] {
            assert!(v[k].is_string(), "{k} in {v}");
        }
    }
    for h in [
        vec!["image", "ls", "--help"],
        vec!["image", "inspect", "--help"],
        vec!["image", "tag", "--help"],
        vec!["image", "rm", "--help"],
        vec!["image", "prune", "--help"],
        vec!["image", "import", "--help"],
    ] {
        let o = d.ok(&h);
        assert!(o.stdout.starts_with("usage: runway image"), "{o}");
    }

    // By ID with several names: refused without -f.
    let line = d.rw(&["rmi", short]).assert_one_error_line();
    assert!(line.contains("must be forced"), "{line}");
    let o = d.ok(&["image", "rm", "me/app:v1"]);
    assert_eq!(o.stdout, "Untagged: me/app:v1\n");
    let o = d.ok(&["image", "rm", "busybox"]);
    assert_eq!(o.stdout, "Untagged: busybox:latest\n");
    let line = d.rw(&["image", "rm", "busybox"]).assert_one_error_line();
    assert!(line.ends_with("No such image: busybox"), "{line}");
    d.assert_consistent();
    // Its last name: the image, its blobs and layers go.
    d.ok(&["image", "tag", "localhost:5000/x", "again:1"]);
    let o = d.ok(&["image", "rm", "-f", short]);
    let lines = o.stdout_lines();
    assert!(lines.contains(&"Untagged: again:1"), "{o}");
    assert!(lines.contains(&"Untagged: localhost:5000/x:latest"), "{o}");
    assert!(lines.contains(&format!("Deleted: {id}").as_str()), "{o}");
    assert_eq!(d.blobs(), Vec::<String>::new());
    assert_eq!(d.layers(), Vec::<String>::new());
    d.assert_consistent();
    let o = d.ok(&["images"]);
    assert_eq!(o.stdout_lines().len(), 1, "{o}");
}

#[test]
fn rm_keeps_what_another_image_uses() {
    if tools(&[]).is_none() {
        return;
    }
    let d = Dir::new("shared");
    let l1 = d.join("l1");
    let l2 = d.join("l2");
    Layout::create(&l1).add_image("t", &one_layer());
    Layout::create(&l2).add_image("t", &two_layers(Compress::Zstd));
    d.ok(&["image", "import", l1.to_str().unwrap(), "one"]);
    d.ok(&["image", "import", l2.to_str().unwrap(), "two"]);
    assert_eq!(d.layers().len(), 2);
    // A pull's partial download: rm leaves it for the next pull to resume.
    let partial = d
        .root()
        .join("tmp")
        .join(format!("{}.partial", "1".repeat(64)));
    fs::write(&partial, b"half").unwrap();
    d.ok(&["rmi", "two"]);
    assert!(partial.exists(), "rm removed a partial download");
    fs::remove_file(&partial).unwrap();
    // The base layer (and blob) stay for `one`.
    assert_eq!(d.layers().len(), 1);
    d.assert_consistent();
    d.ok(&["image", "inspect", "one"]);
}

#[test]
fn prune_dangling_then_all() {
    if tools(&[]).is_none() {
        return;
    }
    let d = Dir::new("prune");
    let plain = d.join("plain.tar");
    fs::write(&plain, oci::tar(&motd())).unwrap();
    d.ok(&["image", "import", plain.to_str().unwrap()]);
    let l = d.join("layout");
    Layout::create(&l).add_image("t", &one_layer());
    d.ok(&["image", "import", l.to_str().unwrap(), "keep:1"]);
    // Litter a killed pull or import would leave.
    let tmp = d.root().join("tmp");
    fs::write(
        tmp.join(format!("{}.partial", "0".repeat(64))),
        vec![7u8; 5000],
    )
    .unwrap();
    fs::create_dir_all(tmp.join("dead.staging/diff/x")).unwrap();
    fs::write(
        d.root().join("blobs/sha256").join("f".repeat(64)),
        b"orphan",
    )
    .unwrap();

    let o = d.ok(&["image", "prune", "-f"]);
    assert!(
        o.stdout.starts_with("Deleted Images:\nuntagged")
            || o.stdout.starts_with("Deleted Images:\ndeleted: sha256:"),
        "{o}"
    );
    let last = o.stdout_lines().last().unwrap().to_string();
    assert!(last.starts_with("Total reclaimed space: "), "{o}");
    assert!(last.ends_with("kB") || last.ends_with("MB"), "{o}");
    assert!(o.stdout.contains("dead.staging"), "{o}");
    d.ok(&["image", "inspect", "keep:1"]);
    let o = d.ok(&["images", "-q"]);
    assert_eq!(o.stdout_lines().len(), 1, "{o}");
    d.assert_consistent();

    // Nothing more to prune.
    let o = d.ok(&["image", "prune", "-f"]);
    assert_eq!(o.stdout, "Total reclaimed space: 0B\n");
    // Without -f, a "no" keeps everything.
    let mut c = Command::new(runtime());
    c.args([
        "--data-root",
        d.root().to_str().unwrap(),
        "image",
        "prune",
        "-a",
    ]);
    c.stdin(std::process::Stdio::null());
    let out = c.output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Are you sure"));
    d.ok(&["image", "inspect", "keep:1"]);

    let o = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(o.stdout.contains("untagged: keep:1"), "{o}");
    assert_eq!(d.blobs(), Vec::<String>::new());
    assert_eq!(d.layers(), Vec::<String>::new());
    d.assert_consistent();
}

/// A failed import: one error line, exit 1, and the store as before.
fn assert_import_fails_cleanly(d: &Dir, src: &Path, words: &[&str]) {
    let before_blobs = d.blobs();
    let before_layers = d.layers();
    let before_index = d.index();
    let o = d.rw(&["image", "import", src.to_str().unwrap()]);
    let line = o.assert_one_error_line();
    for w in words {
        assert!(line.contains(w), "error should mention {w:?}: {line}");
    }
    assert_eq!(o.stdout, "", "{o}");
    assert_eq!(d.blobs(), before_blobs, "blobs after a failed import");
    assert_eq!(d.layers(), before_layers, "layers after a failed import");
    assert_eq!(d.index(), before_index, "index.json after a failed import");
    assert_eq!(d.tmp_litter(), Vec::<String>::new());
}

#[test]
fn bad_archives_leave_nothing() {
    if tools(&["skopeo"]).is_none() {
        return;
    }
    let d = Dir::new("bad");
    let (l, _) = test_layout(&d);
    // The store exists (and has one image) before the bad imports.
    let plain = d.join("plain.tar");
    fs::write(&plain, oci::tar(&motd())).unwrap();
    d.ok(&["image", "import", plain.to_str().unwrap(), "good"]);

    // The same image with one byte of a layer blob flipped: refused by
    // its digest.
    let mut bad = Layout::create(&d.join("bad-layout"));
    let layer = bad.add_image("t", &two_layers(Compress::None)).layers[1].clone();
    let p = bad.blob_path(&layer);
    let mut bytes = fs::read(&p).unwrap();
    let n = bytes.len() / 2;
    bytes[n] ^= 0xff;
    fs::write(&p, &bytes).unwrap();
    assert_import_fails_cleanly(&d, &bad.dir, &["digest mismatch", layer.hex()]);

    // A docker-archive cut in the middle.
    let da = d.join("d.tar");
    skopeo(&[
        "copy",
        "-q",
        &format!("oci:{}:t", l.display()),
        &format!("docker-archive:{}:busybox:latest", da.display()),
    ]);
    let full = fs::read(&da).unwrap();
    let cut = d.join("cut.tar");
    fs::write(&cut, &full[..full.len() / 2]).unwrap();
    assert_import_fails_cleanly(&d, &cut, &["import"]);

    // Not a tar at all.
    let junk = d.join("junk.bin");
    fs::write(&junk, vec![0x55u8; 4096]).unwrap();
    assert_import_fails_cleanly(&d, &junk, &["import"]);

    // A layer whose diff_id is wrong (the config lies): named in the error.
    let mut lie = Layout::create(&d.join("lie"));
    let b = lie.add_image("t", &one_layer());
    let mut c: Value = serde_json::from_slice(&b.config_bytes).unwrap();
    let wrong = Digest::of(b"not this layer").to_string();
    c["rootfs"]["diff_ids"] = json!([wrong]);
    // Re-link config and manifest so only the diff_id is wrong.
    let mut m: Value = serde_json::from_slice(&b.manifest_bytes).unwrap();
    m["config"] = lie.put_desc(oci::OCI_CONFIG, &serde_json::to_vec(&c).unwrap());
    let md = lie.put_desc(oci::OCI_MANIFEST, &serde_json::to_vec(&m).unwrap());
    lie.tag("t", md);
    assert_import_fails_cleanly(&d, &lie.dir, &["diff_id mismatch", &wrong]);

    // An archive that is neither layout nor docker-archive but has only
    // archive-like names: refused, not taken for a rootfs.
    let odd = d.join("odd.tar");
    fs::write(&odd, oci::tar(&[Entry::file("repositories", "x\n")])).unwrap();
    assert_import_fails_cleanly(&d, &odd, &["invalid archive"]);
    d.assert_consistent();
}

#[test]
fn concurrent_imports_of_one_archive() {
    if tools(&["skopeo"]).is_none() {
        return;
    }
    let d = Dir::new("concurrent");
    let (l, id) = test_layout(&d);
    let oa = d.join("o.tar");
    skopeo(&[
        "copy",
        "-q",
        &format!("oci:{}:t", l.display()),
        &format!("oci-archive:{}:same:1", oa.display()),
    ]);
    // Create the store first so all start from the same (empty) layout.
    d.ok(&["images"]);
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(runtime())
                .args([
                    "--data-root",
                    d.root().to_str().unwrap(),
                    "image",
                    "import",
                    oa.to_str().unwrap(),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a concurrent import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Loaded image: same:1\n"
        );
    }
    let o = d.ok(&["images", "--format", "json"]);
    assert_eq!(o.stdout_lines().len(), 1, "{o}");
    assert_eq!(d.index()["manifests"].as_array().unwrap().len(), 1);
    let v: Value = serde_json::from_str(o.stdout_lines()[0]).unwrap();
    assert_eq!(v["ID"].as_str().unwrap(), &hex(&id)[..12]);
    assert_eq!(d.layers().len(), 2);
    d.assert_consistent();
}

#[test]
fn full_disk_is_a_clear_error() {
    if tools(&["unshare"]).is_none() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip("mounting a small tmpfs needs root");
        return;
    }
    let d = Dir::new("enospc");
    let plain = d.join("rootfs.tar");
    fs::write(&plain, oci::rootfs_tarball(Compress::None)).unwrap();
    // A layout whose gzip blob fits but whose unpacked layer does not.
    let l = d.join("layout");
    let b = Layout::create(&l).add_image("t", &one_layer());
    let fits = b.layer_sizes[0] / 1024 + 256;
    for (src, kib) in [(plain, 1024), (l, fits)] {
        let root = d.join(&format!("data-{kib}"));
        fs::create_dir_all(&root).unwrap();
        // A small tmpfs in a mount namespace of its own: gone with the shell.
        let script = format!(
            "mount -t tmpfs -o size={kib}k tmpfs '{r}' || exit 99; \
             '{rt}' --data-root '{r}' image import '{p}' x:1; echo \"rc=$?\"; \
             ls '{r}/blobs/sha256' '{r}/layers' | grep -c '^[0-9a-f]\\{{64\\}}$' || true; \
             cat '{r}/index.json'; echo; ls '{r}/tmp'",
            r = root.display(),
            rt = runtime().display(),
            p = src.display()
        );
        let o = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        let stderr = String::from_utf8_lossy(&o.stderr);
        if o.status.code() == Some(99) {
            skip("cannot mount a tmpfs here");
            return;
        }
        assert!(stdout.contains("rc=1"), "{stdout}\n{stderr}");
        assert!(stderr.contains("no space left on device"), "{stderr}");
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("runway:"))
            .collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        let mut it = stdout.lines().skip_while(|l| !l.starts_with("rc="));
        it.next();
        assert_eq!(it.next(), Some("0"), "no blob or layer left: {stdout}");
        let index = it.next().unwrap_or("");
        assert!(index.contains("\"manifests\":[]"), "{stdout}");
        let rest: Vec<&str> = it
            .filter(|l| !l.is_empty() && !l.ends_with(".lock"))
            .collect();
        assert!(rest.is_empty(), "tmp litter: {rest:?}");
    }
}

#[test]
fn import_multi_arch_layout_picks_the_host() {
    if tools(&[]).is_none() {
        return;
    }
    let d = Dir::new("multiarch");
    let host = host_arch();
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    let l = d.join("multi");
    let mut lay = Layout::create(&l);
    let mut theirs = image_of(vec![Layer::file(Compress::Gzip, "other", "x\n")]);
    theirs.arch = other.into();
    let (_, built) = lay.add_index(
        "example.com/multi:1",
        &[theirs.clone(), two_layers(Compress::Zstd)],
    );
    let ch = json!({"digest": built[1].config.to_string()});
    let o = d.ok(&["image", "import", l.to_str().unwrap()]);
    assert_eq!(o.stdout, "Loaded image: example.com/multi:1\n");
    let o = d.ok(&["image", "inspect", "example.com/multi:1"]);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v[0]["Id"], ch["digest"]);
    assert_eq!(v[0]["Architecture"], host.as_str());
    // Only the host's image is stored: no blob of the other, nor the index.
    d.assert_consistent();

    // A layout with only a foreign image: the error lists what is there.
    let f = d.join("foreign");
    Layout::create(&f).add_index("t", &[theirs]);
    assert_import_fails_cleanly(&d, &f, &[&format!("linux/{other}")]);
}

#[test]
fn import_layout_with_every_compression_and_whiteouts() {
    if tools(&[]).is_none() {
        return;
    }
    let d = Dir::new("sample");
    let mut img = Image::sample();
    img.arch = host_arch();
    let l = d.join("layout");
    let b = Layout::create(&l).add_image("t", &img);
    let o = d.ok(&["image", "import", l.to_str().unwrap(), "sample:1"]);
    assert_eq!(o.stdout, "Loaded image: sample:1\n");
    let o = d.ok(&["image", "inspect", "sample:1"]);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    let types: Vec<&str> = v[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["MediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.v1.tar"
        ]
    );
    let diffs: Vec<String> = b.diff_ids.iter().map(|d| d.to_string()).collect();
    assert_eq!(v[0]["RootFS"]["Layers"], json!(diffs));
    // Layer 2's whiteout is an overlay whiteout in its chain's directory.
    let chains = runway::image::types::chain_ids(&b.diff_ids);
    let wh = d
        .root()
        .join("layers")
        .join(chains[1].hex())
        .join("diff/will-vanish");
    let md = fs::symlink_metadata(&wh).unwrap();
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert!(md.file_type().is_char_device(), "{}", wh.display());
    assert_eq!(md.rdev(), 0);
    d.assert_consistent();
}
