//! Layer unpacking against umoci: OCI layouts built by tests/common/oci.rs, each layer unpacked by runway into its own overlay lowerdir, the merged tree compared with `umoci unpack` of the same image; tar-slip layers refused.

// The image client is feature "full"; the runtime-only build has no images.
#![cfg(feature = "full")]

mod common;

use common::{oci, skip};
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A scratch dir removed on drop (after its mounts are detached).
struct Scratch {
    dir: PathBuf,
    mounts: Vec<PathBuf>,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "images_unpack-{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        Scratch {
            dir,
            mounts: Vec::new(),
        }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for m in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg(m).status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `tool` on PATH, or a skip line.
fn have(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        skip(&format!("{tool} not installed"));
    }
    found
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn builder_ready() -> bool {
    match oci::available() {
        Ok(()) => true,
        Err(why) => {
            skip(&why);
            false
        }
    }
}

/// The layout builder makes images skopeo reads: config fields, layers,
/// the multi-arch index's platforms.
#[test]
fn layout_builder_is_read_by_skopeo() {
    if !builder_ready() || !have("skopeo") {
        return;
    }
    let s = Scratch::new("skopeo");
    let mut layout = oci::Layout::create(&s.path("layout"));
    let bb = layout.add_image("busybox", &oci::Image::busybox());
    let sample = layout.add_image("sample", &oci::Image::sample());
    let (index, multi) = layout.add_multiarch("multi");

    let v: serde_json::Value =
        serde_json::from_str(&run("skopeo", &["inspect", &layout.oci_ref("sample")])).unwrap();
    assert_eq!(v["Digest"], sample.manifest.as_str());
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Layers"].as_array().unwrap().len(), 3);
    assert!(v["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "GREETING=hello world"));
    assert_eq!(v["Labels"]["org.example.test"], "sample");
    let cfg: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", "--config", &layout.oci_ref("sample")],
    ))
    .unwrap();
    assert_eq!(cfg["config"]["WorkingDir"], "/srv");
    assert_eq!(cfg["config"]["Entrypoint"][0], "/bin/sh");
    assert!(cfg["config"]["ExposedPorts"]["80/tcp"].is_object());
    assert_eq!(cfg["rootfs"]["diff_ids"][1], sample.diff_ids[1].as_str());

    let v: serde_json::Value =
        serde_json::from_str(&run("skopeo", &["inspect", &layout.oci_ref("busybox")])).unwrap();
    assert_eq!(v["Digest"], bb.manifest.as_str());

    // The multi-arch index: skopeo picks the host's (amd64) manifest; the
    // raw index lists both platforms; arm64 shares the layer blob.
    let raw: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", "--raw", &layout.oci_ref("multi")],
    ))
    .unwrap();
    let archs: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    assert_eq!(multi[0].layers, multi[1].layers);
    assert_ne!(multi[0].config, multi[1].config);
    let arm: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &[
            "--override-arch",
            "arm64",
            "inspect",
            &layout.oci_ref("multi"),
        ],
    ))
    .unwrap();
    // skopeo names the index's digest, and the selected image's fields.
    assert_eq!(arm["Digest"], index.as_str());
    assert_eq!(arm["Architecture"], "arm64");
    assert_eq!(arm["Layers"][0], multi[1].layers[0].as_str());
}

/// umoci applies the sample image's layers as the builder means them:
/// whiteouts, opaque dirs, hard links, setuid, devices, xattrs, owners.
#[test]
fn layout_builder_is_unpacked_by_umoci() {
    if !builder_ready() || !have("umoci") {
        return;
    }
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let s = Scratch::new("umoci");
    let mut layout = oci::Layout::create(&s.path("layout"));
    // umoci 0.4 has no zstd.
    layout.add_image("sample", &oci::Image::sample().without_zstd());
    let bundle = s.path("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:sample", layout.dir.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let r = bundle.join("rootfs");
    let meta = |p: &str| fs::symlink_metadata(r.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert!(!r.join("will-vanish").exists());
    assert!(!r.join("gone/inside").exists());
    assert_eq!(
        fs::read_to_string(r.join("gone/new")).unwrap(),
        "recreated in layer 3\n"
    );
    assert!(!r.join("opq/x").exists() && r.join("opq/z").exists());
    assert!(!r.join("data/sub/c").exists());
    assert_eq!(
        fs::read_to_string(r.join("data/a")).unwrap(),
        "a from layer 2\n"
    );
    assert_eq!(meta("hl/one").ino(), meta("hl/two").ino());
    assert_eq!(meta("hl/one").nlink(), 3);
    assert_eq!(meta("hl/one").uid(), 7);
    assert_eq!(meta("bin/suid").mode() & 0o7777, 0o4755);
    assert_eq!(meta("shared").mode() & 0o7777, 0o2775);
    assert!(meta("dev/null-ish").file_type().is_char_device());
    assert_eq!(meta("dev/null-ish").rdev(), libc::makedev(1, 3));
    assert!(meta("dev/pipe").file_type().is_fifo());
    assert_eq!(meta("data").uid(), 2000);
    assert_eq!(meta("old-mtime").mtime(), 1);
    assert_eq!(fs::read_link(r.join("data/b")).unwrap(), PathBuf::from("a"));
    assert!(meta("to-be-dir").is_dir());
    assert!(meta("to-be-file").is_file());
    assert_eq!(
        xattr(&r.join("xattrs"), "user.runway.test").as_deref(),
        Some(&b"hello"[..])
    );
    let out = Command::new(r.join("bin/busybox"))
        .arg("true")
        .status()
        .unwrap();
    assert!(out.success());
}

/// An xattr of `path` (not following symlinks), None when absent.
fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 65536];
    // SAFETY: valid C strings and a buffer of the given length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return None;
    }
    buf.truncate(len as usize);
    Some(buf)
}

/// The builder's gzip and zstd blobs are what gzip(1) and zstd(1) read:
/// each layer blob decompresses to the tar its diff_id names.
#[test]
fn layout_builder_blobs_decompress_with_system_tools() {
    if !builder_ready() || !have("gzip") || !have("zstd") {
        return;
    }
    let s = Scratch::new("blobs");
    let layout = oci::Layout::create(&s.path("layout"));
    let img = oci::Image::sample();
    let built = layout.write_image(&img);
    for (i, l) in img.layers.iter().enumerate() {
        let blob = layout.blob_path(&built.layers[i]);
        let tar = match l.compress {
            oci::Compress::None => fs::read(&blob).unwrap(),
            oci::Compress::Gzip => decompress_with("gzip", &blob),
            oci::Compress::Zstd => decompress_with("zstd", &blob),
        };
        assert_eq!(
            runway::image::digest::Digest::of(&tar),
            built.diff_ids[i],
            "layer {i}"
        );
    }
}

/// The plain rootfs tarballs and noise helpers give what they promise.
#[test]
fn layout_builder_rootfs_tarballs_and_noise() {
    if !builder_ready() {
        return;
    }
    let plain = oci::rootfs_tarball(oci::Compress::None);
    for c in oci::Compress::ALL {
        let blob = oci::rootfs_tarball(c);
        assert_eq!(Compression::sniff(&blob), compression(c), "{c:?}");
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut decompress::reader(compression(c), &blob[..]), &mut out)
            .unwrap();
        assert_eq!(out, plain, "{c:?}");
    }
    let n = oci::noise(7, 100_000);
    assert_eq!(n.len(), 100_000);
    assert_eq!(n, oci::noise(7, 100_000));
    assert_ne!(n, oci::noise(8, 100_000));
    assert!(oci::gzip(&n).len() > 99_000, "noise must not compress");
}

fn decompress_with(tool: &str, blob: &std::path::Path) -> Vec<u8> {
    let out = Command::new(tool)
        .args(["-d", "-c"])
        .arg(blob)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

// ------------------------------------------------ runway's unpack vs umoci

use runway::image::decompress::{self, Compression};
use runway::image::digest::{Digest, HashReader};
use runway::image::unpack::{unpack, Stats};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let yes = unsafe { libc::geteuid() } == 0;
    if !yes {
        skip("needs root (owners, devices, trusted xattrs, mounts)");
    }
    yes
}

fn have_overlay() -> bool {
    let yes = fs::read_to_string("/proc/filesystems").is_ok_and(|s| s.contains("\toverlay\n"));
    if !yes {
        skip("no overlayfs in /proc/filesystems");
    }
    yes
}

fn compression(c: oci::Compress) -> Compression {
    match c {
        oci::Compress::None => Compression::None,
        oci::Compress::Gzip => Compression::Gzip,
        oci::Compress::Zstd => Compression::Zstd,
    }
}

/// Unpacks layer blob `blob` into `dest` the way the store does: streamed
/// through the decompressor, diff_id checked over the whole stream.
fn unpack_blob(blob: &std::path::Path, c: Compression, dest: &std::path::Path) -> (Stats, Digest) {
    fs::create_dir_all(dest).unwrap();
    let f = fs::File::open(blob).unwrap();
    let mut hr = HashReader::new(decompress::reader(c, f));
    let stats = unpack(&mut hr, dest).unwrap_or_else(|e| panic!("unpack {}: {e}", blob.display()));
    let (diff_id, _) = hr.finish().unwrap();
    (stats, diff_id)
}

/// One node of a tree as compared: everything but inode numbers and
/// directory mtimes (filling a dir changes them, in umoci too).
#[derive(Debug, PartialEq, Eq)]
struct Node {
    kind: &'static str,
    /// Octal, for readable differences.
    mode: String,
    uid: u32,
    gid: u32,
    content: Option<Digest>,
    target: Option<PathBuf>,
    rdev: Option<(u32, u32)>,
    mtime: Option<(i64, i64)>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

struct Tree {
    nodes: BTreeMap<String, Node>,
    /// Paths sharing an inode (hard links), each group sorted.
    links: Vec<Vec<String>>,
}

/// user.* xattrs of `p` (what images carry; overlay and umoci may add
/// others of their own).
fn user_xattrs(p: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut list = vec![0u8; 65536];
    // SAFETY: valid C string and buffer.
    let n = unsafe { libc::llistxattr(c.as_ptr(), list.as_mut_ptr().cast(), list.len()) };
    let mut out = BTreeMap::new();
    if n <= 0 {
        return out;
    }
    list.truncate(n as usize);
    for name in list.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name.starts_with("user.") {
            out.insert(name.clone(), xattr(p, &name).unwrap_or_default());
        }
    }
    out
}

fn snapshot(root: &std::path::Path) -> Tree {
    let mut nodes = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let p = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let m = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "other"
        };
        if ft.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                stack.push(if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                });
            }
        } else if m.nlink() > 1 {
            inodes
                .entry((m.dev(), m.ino()))
                .or_default()
                .push(rel.clone());
        }
        let dev = ft.is_char_device() || ft.is_block_device();
        nodes.insert(
            rel.clone(),
            Node {
                kind,
                // Symlinks' modes mean nothing (and differ by filesystem).
                mode: if ft.is_symlink() {
                    String::new()
                } else {
                    format!("{:04o}", m.mode() & 0o7777)
                },
                uid: m.uid(),
                gid: m.gid(),
                content: ft.is_file().then(|| Digest::of(&fs::read(&p).unwrap())),
                target: ft.is_symlink().then(|| fs::read_link(&p).unwrap()),
                rdev: dev.then(|| (libc::major(m.rdev()), libc::minor(m.rdev()))),
                mtime: (!ft.is_dir()).then(|| (m.mtime(), m.mtime_nsec())),
                xattrs: user_xattrs(&p),
            },
        );
    }
    let mut links: Vec<Vec<String>> = inodes
        .into_values()
        .filter(|g| g.len() > 1)
        .map(|mut g| {
            g.sort();
            g
        })
        .collect();
    links.sort();
    Tree { nodes, links }
}

/// Differences between two trees, one line each (empty: equal).
fn diff(ours: &Tree, theirs: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for (p, n) in &ours.nodes {
        match theirs.nodes.get(p) {
            None => out.push(format!("only in runway's: /{p} ({})", n.kind)),
            Some(t) if t != n => out.push(format!("/{p}:\n  runway: {n:?}\n  umoci:  {t:?}")),
            _ => {}
        }
    }
    for (p, t) in &theirs.nodes {
        if !ours.nodes.contains_key(p) {
            out.push(format!("only in umoci's: /{p} ({})", t.kind));
        }
    }
    if ours.links != theirs.links {
        out.push(format!(
            "hard-link groups:\n  runway: {:?}\n  umoci:  {:?}",
            ours.links, theirs.links
        ));
    }
    out
}

/// The issue's acceptance test: every layer of a three-layer image (gzip,
/// zstd, uncompressed; whiteouts, opaque dirs, hard links, symlinks,
/// devices, setuid, xattrs, owners, mtimes) unpacked by runway into its own
/// dir, the dirs stacked as overlayfs lowerdirs, and the merged tree equal
/// to `umoci unpack` of the same image.
#[test]
fn overlay_of_unpacked_layers_equals_umoci_unpack() {
    if !builder_ready() || !is_root() || !have("umoci") || !have_overlay() {
        return;
    }
    let mut s = Scratch::new("overlay");
    let mut layout = oci::Layout::create(&s.path("layout"));
    let img = oci::Image::sample();
    let built = layout.add_image("sample", &img);
    // umoci 0.4 has no zstd: the same tars gzipped, so the same rootfs.
    let gz = layout.add_image("sample-gz", &img.without_zstd());
    assert_eq!(gz.diff_ids, built.diff_ids);

    let mut lowers = Vec::new();
    for (i, layer) in img.layers.iter().enumerate() {
        let dest = s.path(&format!("layers/{i}"));
        let (stats, diff_id) = unpack_blob(
            &layout.blob_path(&built.layers[i]),
            compression(layer.compress),
            &dest,
        );
        assert_eq!(
            diff_id, built.diff_ids[i],
            "layer {i}: diff_id over the whole stream"
        );
        let files: u64 = layer
            .entries
            .iter()
            .map(|e| match &e.kind {
                oci::Kind::File(c) => c.len() as u64,
                _ => 0,
            })
            .sum();
        assert_eq!(
            stats.entries,
            layer.entries.len() as u64,
            "layer {i} entries"
        );
        assert_eq!(stats.bytes, files, "layer {i} bytes");
        lowers.push(dest);
    }
    // Whiteouts and the opaque marker as overlayfs reads them.
    let l2 = &lowers[1];
    let wh = fs::symlink_metadata(l2.join("will-vanish")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(
        xattr(&l2.join("opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );

    let merged = s.path("merged");
    fs::create_dir(&merged).unwrap();
    let lowerdir: Vec<String> = lowers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    run(
        "mount",
        &[
            "-t",
            "overlay",
            "overlay",
            "-o",
            &format!("ro,lowerdir={}", lowerdir.join(":")),
            merged.to_str().unwrap(),
        ],
    );
    s.mounts.push(merged.clone());

    let bundle = s.path("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:sample-gz", layout.dir.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let ours = snapshot(&merged);
    let theirs = snapshot(&bundle.join("rootfs"));
    let d = diff(&ours, &theirs);
    assert!(
        d.is_empty(),
        "merged overlay differs from umoci's rootfs:\n{}",
        d.join("\n")
    );
    // The comparison saw what it is meant to.
    assert!(ours
        .links
        .iter()
        .any(|g| g == &["hl/one", "hl/three", "hl/two"]));
    assert!(ours.links.iter().any(|g| g == &["hl2/f", "hl2/g"]));
    assert_eq!(ours.nodes["bin/suid"].mode, "4755");
    assert_eq!(ours.nodes["dev/loop-ish"].rdev, Some((7, 0)));
    assert!(!ours.nodes.contains_key("will-vanish") && !ours.nodes.contains_key("opq/x"));
    assert_eq!(ours.nodes["xattrs"].xattrs.len(), 2);
    // The merged rootfs runs.
    let st = Command::new(merged.join("bin/busybox"))
        .arg("true")
        .status()
        .unwrap();
    assert!(st.success());
}

/// Each compression alone: the busybox layer as gzip, zstd and plain tar
/// unpacks to the same tree.
#[test]
fn each_compression_unpacks_the_same_tree() {
    if !builder_ready() || !is_root() {
        return;
    }
    let s = Scratch::new("compressions");
    let layout = oci::Layout::create(&s.path("layout"));
    let mut trees = Vec::new();
    for c in oci::Compress::ALL {
        let img = oci::Image::new(vec![oci::Layer::new(c, oci::busybox_entries())]);
        let b = layout.write_image(&img);
        let dest = s.path(&format!("{c:?}"));
        let (_, diff_id) = unpack_blob(&layout.blob_path(&b.layers[0]), compression(c), &dest);
        assert_eq!(diff_id, b.diff_ids[0], "{c:?}");
        trees.push(snapshot(&dest));
    }
    for t in &trees[1..] {
        let d = diff(&trees[0], t);
        assert!(d.is_empty(), "{}", d.join("\n"));
    }
    assert!(trees[0].nodes.contains_key("bin/busybox"));
}

/// Hostile layers through the same API as pulls use (a gzip blob through
/// the decompressor): refused, the entry named, nothing written outside.
#[test]
fn tar_slip_layers_are_refused() {
    if !is_root() {
        return;
    }
    use oci::Entry as E;
    let cases: Vec<(&str, Vec<E>, &str)> = vec![
        (
            "dotdot",
            vec![E::file("../escaped", "x")],
            r#"layer entry "../escaped": escapes the layer"#,
        ),
        (
            "absolute",
            vec![E::file("/escaped", "x")],
            r#"layer entry "/escaped": absolute path: escapes the layer"#,
        ),
        (
            "symlink dir then a file beneath it",
            vec![E::symlink("up", ".."), E::file("up/escaped", "x")],
            r#"layer entry "up/escaped": parent "up" is a symlink: escapes the layer"#,
        ),
        (
            "symlink to an absolute dir then a file beneath it",
            vec![
                E::dir("a"),
                E::symlink("a/tmp", "/tmp"),
                E::file("a/tmp/escaped", "x"),
            ],
            r#"layer entry "a/tmp/escaped": parent "a/tmp" is a symlink: escapes the layer"#,
        ),
        (
            "hard link to ../outside",
            vec![E::hardlink("h", "../outside")],
            r#"layer entry "h": hard link target "../outside": escapes the layer"#,
        ),
        (
            "hard link through a symlink",
            vec![E::symlink("up", ".."), E::hardlink("h", "up/outside")],
            r#"layer entry "h": hard link target parent "up" is a symlink: escapes the layer"#,
        ),
    ];
    for (what, entries, want) in cases {
        let s = Scratch::new("slip");
        fs::write(s.path("outside"), "untouched").unwrap();
        let dest = s.path("dest");
        fs::create_dir(&dest).unwrap();
        let blob = oci::gzip(&oci::raw_tar(&entries));
        let err = unpack(decompress::reader(Compression::Gzip, &blob[..]), &dest)
            .expect_err(what)
            .to_string();
        assert_eq!(err, want, "{what}");
        let mut names: Vec<String> = fs::read_dir(&s.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["dest", "outside"], "{what}");
        assert_eq!(fs::read_to_string(s.path("outside")).unwrap(), "untouched");
        assert!(
            !std::path::Path::new("/escaped").exists()
                && !std::path::Path::new("/tmp/escaped").exists()
        );
    }
}
