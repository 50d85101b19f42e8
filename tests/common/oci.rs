//! OCI image layouts for the image tests, built from busybox-static: layers from entry lists (whiteouts, opaque dirs, hard links, devices, xattrs), gzip/zstd/uncompressed, multi-arch indexes.
//!
//! Everything is deterministic (fixed mtimes, gzip headers without a time),
//! so one `Image` always yields the same digests: tests can build a layout
//! twice and expect shared blobs to be stored once.
//!
//! ```ignore
//! let mut layout = oci::Layout::create(&dir);
//! let built = layout.add_image("latest", &oci::Image::busybox());
//! let sample = layout.add_image("sample", &oci::Image::sample());
//! let index = layout.add_multiarch("multi");
//! ```
//!
//! `raw_tar` writes entries with their names verbatim (`../x`, `/abs`), for
//! the tar-slip tests; `tar` refuses such names (the tar crate checks them).

// Only the image client's builds have the crates (tar, flate2, ruzstd) and
// runway::image; the runtime-only build compiles the tests without it.
#![cfg(feature = "full")]

use runway::image::digest::Digest;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The static busybox every image is built from (Debian's busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets the base layer links to busybox (relative symlinks in bin/).
pub const APPLETS: &[&str] = &[
    "sh",
    "ash",
    "ls",
    "cat",
    "echo",
    "true",
    "false",
    "sleep",
    "id",
    "env",
    "mkdir",
    "rm",
    "rmdir",
    "touch",
    "ps",
    "grep",
    "sed",
    "test",
    "wc",
    "head",
    "tail",
    "stat",
    "readlink",
    "ln",
    "mv",
    "cp",
    "chmod",
    "chown",
    "find",
    "uname",
    "hostname",
    "mount",
    "umount",
    "kill",
    "printf",
    "pwd",
    "which",
    "xargs",
    "sort",
    "uniq",
    "date",
    "du",
    "df",
    "md5sum",
    "sha256sum",
    "nc",
    "wget",
    "ip",
    "tar",
    "vi",
    "whoami",
    "seq",
    "cut",
    "tr",
    "awk",
];

/// Default mtime of every entry (2023-11-14T22:13:20Z).
pub const MTIME: u64 = 1_700_000_000;
/// The images' `created` time.
pub const CREATED: &str = "2023-11-14T22:13:20Z";

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compress {
    None,
    Gzip,
    Zstd,
}

impl Compress {
    pub const ALL: [Compress; 3] = [Compress::None, Compress::Gzip, Compress::Zstd];

    pub fn media_type(self) -> &'static str {
        match self {
            Compress::None => "application/vnd.oci.image.layer.v1.tar",
            Compress::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compress::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// `tar` compressed this way.
    pub fn apply(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Compress::None => tar.to_vec(),
            Compress::Gzip => gzip(tar),
            Compress::Zstd => zstd(tar),
        }
    }
}

/// gzip without a time in its header (deterministic).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
}

/// What a layer entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    /// Target as stored in the tar (relative or absolute).
    Symlink(String),
    /// Path of an earlier entry of the same layer.
    Hardlink(String),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

/// One tar entry. Paths are relative to the rootfs, without a leading
/// `./` or `/` (as docker writes them); a trailing `/` is not needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (07777).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Written as PAX `SCHILY.xattr.<name>` records.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Entry {
    pub fn new(path: &str, kind: Kind, mode: u32) -> Entry {
        Entry {
            path: path.to_string(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: MTIME,
            xattrs: Vec::new(),
        }
    }
    /// A regular file, 0644 root.
    pub fn file(path: &str, content: impl AsRef<[u8]>) -> Entry {
        Entry::new(path, Kind::File(content.as_ref().to_vec()), 0o644)
    }
    /// A directory, 0755 root.
    pub fn dir(path: &str) -> Entry {
        Entry::new(path, Kind::Dir, 0o755)
    }
    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::new(path, Kind::Symlink(target.to_string()), 0o777)
    }
    /// A hard link to `target`, an earlier entry's path in the same layer.
    pub fn hardlink(path: &str, target: &str) -> Entry {
        Entry::new(path, Kind::Hardlink(target.to_string()), 0o644)
    }
    pub fn char_dev(path: &str, major: u32, minor: u32) -> Entry {
        Entry::new(path, Kind::Char(major, minor), 0o666)
    }
    pub fn block_dev(path: &str, major: u32, minor: u32) -> Entry {
        Entry::new(path, Kind::Block(major, minor), 0o660)
    }
    pub fn fifo(path: &str) -> Entry {
        Entry::new(path, Kind::Fifo, 0o644)
    }
    /// The OCI whiteout deleting `path` from the layers below: `.wh.<name>`.
    pub fn whiteout(path: &str) -> Entry {
        let (parent, name) = split(path);
        Entry::file(&join(parent, &format!(".wh.{name}")), b"")
    }
    /// The OCI opaque marker for `dir`: `dir/.wh..wh..opq`.
    pub fn opaque(dir: &str) -> Entry {
        Entry::file(&join(dir.trim_end_matches('/'), ".wh..wh..opq"), b"")
    }
    pub fn mode(mut self, mode: u32) -> Entry {
        self.mode = mode;
        self
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn mtime(mut self, mtime: u64) -> Entry {
        self.mtime = mtime;
        self
    }
    pub fn xattr(mut self, name: &str, value: impl AsRef<[u8]>) -> Entry {
        self.xattrs
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }
}

fn split(path: &str) -> (&str, &str) {
    let path = path.trim_end_matches('/');
    match path.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", path),
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// A header with `e`'s metadata; name and link name are set by the caller.
fn header(e: &Entry) -> tar::Header {
    use tar::EntryType as T;
    let mut h = tar::Header::new_gnu();
    h.set_mode(e.mode);
    h.set_uid(e.uid);
    h.set_gid(e.gid);
    h.set_mtime(e.mtime);
    h.set_size(0);
    let ty = match &e.kind {
        Kind::File(c) => {
            h.set_size(c.len() as u64);
            T::Regular
        }
        Kind::Dir => T::Directory,
        Kind::Symlink(_) => T::Symlink,
        Kind::Hardlink(_) => T::Link,
        Kind::Char(..) => T::Char,
        Kind::Block(..) => T::Block,
        Kind::Fifo => T::Fifo,
    };
    h.set_entry_type(ty);
    if let Kind::Char(ma, mi) | Kind::Block(ma, mi) = e.kind {
        h.set_device_major(ma).expect("device major");
        h.set_device_minor(mi).expect("device minor");
    }
    h
}

fn pax_xattrs<W: Write>(b: &mut tar::Builder<W>, e: &Entry) {
    if e.xattrs.is_empty() {
        return;
    }
    let keys: Vec<String> = e
        .xattrs
        .iter()
        .map(|(k, _)| format!("SCHILY.xattr.{k}"))
        .collect();
    let recs = keys
        .iter()
        .zip(&e.xattrs)
        .map(|(k, (_, v))| (k.as_str(), v.as_slice()));
    b.append_pax_extensions(recs).expect("pax xattrs");
}

fn content(e: &Entry) -> &[u8] {
    match &e.kind {
        Kind::File(c) => c,
        _ => &[],
    }
}

/// An uncompressed layer tar of `entries`, in order. Names go through the
/// tar crate (GNU long names when needed), which refuses `..` and absolute
/// paths: hostile layers are `raw_tar`'s job.
pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        pax_xattrs(&mut b, e);
        let mut h = header(e);
        let path = match e.kind {
            Kind::Dir => format!("{}/", e.path.trim_end_matches('/')),
            _ => e.path.clone(),
        };
        match &e.kind {
            Kind::Symlink(t) | Kind::Hardlink(t) => b.append_link(&mut h, &path, t),
            _ => b.append_data(&mut h, &path, content(e)),
        }
        .unwrap_or_else(|err| panic!("tar entry {:?}: {err}", e.path));
    }
    b.into_inner().expect("tar")
}

/// A tar whose names and link names are written byte for byte, unchecked:
/// `../x`, `/etc/x`, `a/../../x`, links to `../outside`. Names and link
/// names must fit the header's 100 bytes.
pub fn raw_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        pax_xattrs(&mut b, e);
        let mut h = header(e);
        let old = h.as_old_mut();
        let name = e.path.as_bytes();
        assert!(name.len() <= 100, "raw_tar: name too long: {:?}", e.path);
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name);
        if let Kind::Symlink(t) | Kind::Hardlink(t) = &e.kind {
            let t = t.as_bytes();
            assert!(t.len() <= 100, "raw_tar: link name too long");
            old.linkname = [0; 100];
            old.linkname[..t.len()].copy_from_slice(t);
        }
        h.set_cksum();
        b.append(&h, content(e)).expect("raw tar entry");
    }
    b.into_inner().expect("raw tar")
}

/// The base layer: busybox, applet symlinks, /etc/passwd and /etc/group,
/// and the usual top-level dirs (so a container can run from it).
pub fn busybox_entries() -> Vec<Entry> {
    let busybox = fs::read(BUSYBOX).unwrap_or_else(|e| panic!("{BUSYBOX}: {e}"));
    let mut v = vec![
        Entry::dir("bin"),
        Entry::file("bin/busybox", busybox).mode(0o755),
    ];
    for a in APPLETS {
        v.push(Entry::symlink(&format!("bin/{a}"), "busybox"));
    }
    v.extend([
        Entry::dir("dev"),
        Entry::dir("etc"),
        Entry::file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        Entry::file("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        Entry::dir("proc"),
        Entry::dir("root").mode(0o700),
        Entry::dir("sys"),
        Entry::dir("tmp").mode(0o1777),
        Entry::dir("usr"),
        Entry::dir("var"),
    ]);
    v
}

/// A plain rootfs tarball (busybox), as `image import` takes them:
/// `.tar`, `.tar.gz`, `.tar.zst` by `compress`.
pub fn rootfs_tarball(compress: Compress) -> Vec<u8> {
    compress.apply(&tar(&busybox_entries()))
}

/// `len` deterministic, incompressible bytes (xorshift from `seed`): file
/// content for big images whose blobs must not shrink.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Whether the host has what the builder needs (busybox-static).
pub fn available() -> Result<(), String> {
    if Path::new(BUSYBOX).is_file() {
        Ok(())
    } else {
        Err(format!("{BUSYBOX} missing (apt install busybox-static)"))
    }
}

/// One layer: its entries and how its blob is compressed.
#[derive(Clone, Debug)]
pub struct Layer {
    pub entries: Vec<Entry>,
    pub compress: Compress,
    /// The history line (`created_by`).
    pub created_by: String,
}

impl Layer {
    pub fn new(compress: Compress, entries: Vec<Entry>) -> Layer {
        Layer {
            entries,
            compress,
            created_by: "runway tests".to_string(),
        }
    }
    /// A layer of one regular file, `path` with `content` (0644 root).
    pub fn file(compress: Compress, path: &str, content: impl AsRef<[u8]>) -> Layer {
        Layer::new(compress, vec![Entry::file(path, content)])
    }
    /// The uncompressed tar (its digest is the diff_id).
    pub fn tar(&self) -> Vec<u8> {
        tar(&self.entries)
    }
}

/// The image config's `config` part (docker's container config).
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
    pub user: String,
    /// "80/tcp", "53/udp".
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
}

#[derive(Clone, Debug)]
pub struct Image {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
    pub created: String,
    pub config: Config,
    pub layers: Vec<Layer>,
}

impl Image {
    /// An amd64 linux image of `layers`, with PATH and `sh` as its command.
    pub fn new(layers: Vec<Layer>) -> Image {
        Image {
            os: "linux".into(),
            arch: "amd64".into(),
            variant: None,
            created: CREATED.into(),
            config: Config {
                env: vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                ],
                cmd: vec!["sh".into()],
                ..Config::default()
            },
            layers,
        }
    }

    /// busybox in one gzip layer.
    pub fn busybox() -> Image {
        Image::new(vec![Layer::new(Compress::Gzip, busybox_entries())])
    }

    /// The same busybox bytes labelled arm64/v8 (never run, only selected).
    pub fn busybox_arm64() -> Image {
        let mut img = Image::busybox();
        img.arch = "arm64".into();
        img.variant = Some("v8".into());
        img
    }

    /// Three layers (gzip, zstd, none) exercising what an unpacker must
    /// keep: see `sample_layers`. Config with every field set.
    pub fn sample() -> Image {
        let mut img = Image::new(sample_layers());
        let c = &mut img.config;
        c.env.push("GREETING=hello world".into());
        c.entrypoint = vec!["/bin/sh".into(), "-c".into()];
        c.cmd = vec!["echo $GREETING".into()];
        c.working_dir = "/srv".into();
        c.user = "0:0".into();
        c.exposed_ports = vec!["80/tcp".into(), "53/udp".into()];
        c.volumes = vec!["/data".into()];
        c.labels.insert("org.example.test".into(), "sample".into());
        c.labels.insert("maintainer".into(), "runway tests".into());
        c.stop_signal = "SIGTERM".into();
        img
    }

    /// The same image with zstd layers gzipped: same tars, same diff_ids
    /// (so the same rootfs), for tools without zstd (umoci 0.4).
    pub fn without_zstd(&self) -> Image {
        let mut img = self.clone();
        for l in &mut img.layers {
            if l.compress == Compress::Zstd {
                l.compress = Compress::Gzip;
            }
        }
        img
    }

    /// The config blob's JSON.
    pub fn config_json(&self, diff_ids: &[Digest]) -> Value {
        let c = &self.config;
        let mut cfg = Map::new();
        let strs = |v: &[String]| Value::from(v.to_vec());
        if !c.user.is_empty() {
            cfg.insert("User".into(), c.user.clone().into());
        }
        if !c.exposed_ports.is_empty() {
            let m: Map<String, Value> = c
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            cfg.insert("ExposedPorts".into(), m.into());
        }
        if !c.env.is_empty() {
            cfg.insert("Env".into(), strs(&c.env));
        }
        if !c.entrypoint.is_empty() {
            cfg.insert("Entrypoint".into(), strs(&c.entrypoint));
        }
        if !c.cmd.is_empty() {
            cfg.insert("Cmd".into(), strs(&c.cmd));
        }
        if !c.volumes.is_empty() {
            let m: Map<String, Value> = c.volumes.iter().map(|p| (p.clone(), json!({}))).collect();
            cfg.insert("Volumes".into(), m.into());
        }
        if !c.working_dir.is_empty() {
            cfg.insert("WorkingDir".into(), c.working_dir.clone().into());
        }
        if !c.labels.is_empty() {
            cfg.insert("Labels".into(), json!(c.labels));
        }
        if !c.stop_signal.is_empty() {
            cfg.insert("StopSignal".into(), c.stop_signal.clone().into());
        }
        let history: Vec<Value> = self
            .layers
            .iter()
            .map(|l| json!({"created": self.created, "created_by": l.created_by}))
            .collect();
        let mut v = json!({
            "created": self.created,
            "architecture": self.arch,
            "os": self.os,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        if let Some(var) = &self.variant {
            v["variant"] = var.clone().into();
        }
        v
    }

    pub fn platform(&self) -> Value {
        let mut p = json!({"architecture": self.arch, "os": self.os});
        if let Some(var) = &self.variant {
            p["variant"] = var.clone().into();
        }
        p
    }
}

/// The sample image's layers:
/// 1 (gzip): busybox base plus files to be deleted, replaced, hidden;
///   a hard-link group, setuid/setgid/sticky, owners, devices, a fifo,
///   xattrs, odd mtimes, symlinks (relative, absolute, dangling, to a dir).
/// 2 (zstd): whiteouts of a file and a dir, an opaque dir with a new file,
///   a changed file, a second hard-link group, a file over a symlink.
/// 3 (none): the whited-out dir recreated, a dir's metadata changed,
///   a file replaced by a symlink, a symlink replaced by a dir.
pub fn sample_layers() -> Vec<Layer> {
    let mut l1 = busybox_entries();
    l1.extend([
        Entry::dir("srv"),
        Entry::dir("data").mode(0o750).owner(1000, 1000),
        Entry::file("data/owned", "owned by 1000\n").owner(1000, 1001).mode(0o640),
        Entry::file("data/a", "a from layer 1\n"),
        Entry::file("data/b", "b from layer 1\n"),
        Entry::dir("data/sub"),
        Entry::file("data/sub/c", "c\n").mtime(1_000_000_000),
        Entry::file("will-vanish", "gone in layer 2\n"),
        Entry::dir("gone"),
        Entry::file("gone/inside", "hidden by layer 2\n"),
        Entry::dir("gone/deeper"),
        Entry::file("gone/deeper/f", "x\n"),
        Entry::dir("opq").mode(0o775),
        Entry::file("opq/x", "x from layer 1\n"),
        Entry::file("opq/y", "y from layer 1\n"),
        Entry::dir("hl"),
        Entry::file("hl/one", "shared inode\n").mode(0o600).owner(7, 8),
        Entry::hardlink("hl/two", "hl/one"),
        Entry::hardlink("hl/three", "hl/one"),
        Entry::file("bin/suid", "#!/bin/sh\necho suid\n").mode(0o4755),
        Entry::file("bin/sgid", "#!/bin/sh\necho sgid\n").mode(0o2755).owner(0, 50),
        Entry::dir("shared").mode(0o2775).owner(0, 100),
        Entry::dir("sticky").mode(0o1777),
        Entry::char_dev("dev/null-ish", 1, 3),
        Entry::char_dev("dev/tty-ish", 5, 0).mode(0o620).owner(0, 5),
        Entry::block_dev("dev/loop-ish", 7, 0),
        Entry::fifo("dev/pipe").mode(0o600),
        Entry::file("xattrs", "has xattrs\n")
            .xattr("user.runway.test", "hello")
            .xattr("user.runway.bin", [0u8, 1, 2, 255]),
        Entry::dir("xdir").xattr("user.runway.dir", "on a dir"),
        Entry::symlink("link-rel", "data/a"),
        Entry::symlink("link-abs", "/etc/passwd"),
        Entry::symlink("link-dangling", "no/such/file"),
        Entry::symlink("link-dir", "data/sub"),
        Entry::symlink("to-be-file", "data/a"),
        Entry::symlink("to-be-dir", "data"),
        Entry::file("empty", ""),
        Entry::file("old-mtime", "1970\n").mtime(1),
        Entry::file(
            "deep/er/than/a/hundred/bytes/so/the/name/needs/a/gnu/long/name/record/or/pax/path/record/ok/file",
            "long name\n",
        ),
    ]);
    let l2 = vec![
        Entry::whiteout("will-vanish"),
        Entry::whiteout("gone"),
        Entry::dir("opq").mode(0o755),
        Entry::opaque("opq"),
        Entry::file("opq/z", "z from layer 2\n"),
        Entry::dir("data").mode(0o750).owner(1000, 1000),
        Entry::file("data/a", "a from layer 2\n").mode(0o664),
        Entry::whiteout("data/sub/c"),
        Entry::dir("hl2"),
        Entry::file("hl2/f", "second group\n").mode(0o4711),
        Entry::hardlink("hl2/g", "hl2/f"),
        Entry::file("to-be-file", "was a symlink\n"),
        Entry::file("zstd-file", vec![b'z'; 70_000]),
    ];
    let l3 = vec![
        Entry::dir("gone").mode(0o700),
        Entry::file("gone/new", "recreated in layer 3\n"),
        Entry::dir("data")
            .mode(0o755)
            .owner(2000, 2000)
            .mtime(1_600_000_000),
        Entry::symlink("data/b", "a"),
        Entry::dir("to-be-dir").mode(0o711),
        Entry::file("to-be-dir/inside", "a dir now\n"),
        Entry::file("plain-layer", "uncompressed\n").xattr("user.runway.l3", "3"),
    ];
    vec![
        Layer::new(Compress::Gzip, l1),
        Layer::new(Compress::Zstd, l2),
        Layer::new(Compress::None, l3),
    ]
}

/// A descriptor's `digest`.
pub fn digest_of(desc: &Value) -> Digest {
    let d = desc["digest"]
        .as_str()
        .expect("descriptor without a digest");
    Digest::parse(d).expect("descriptor digest")
}

/// What `Layout::write_image` stored for one image.
#[derive(Clone, Debug)]
pub struct Built {
    pub manifest: Digest,
    pub manifest_size: u64,
    pub manifest_bytes: Vec<u8>,
    pub config: Digest,
    pub config_bytes: Vec<u8>,
    /// Layer blob digests (compressed), in order.
    pub layers: Vec<Digest>,
    /// Layer blob sizes.
    pub layer_sizes: Vec<u64>,
    /// Digests of the uncompressed tars, in order.
    pub diff_ids: Vec<Digest>,
    /// The descriptor an index points at this image with (with platform).
    pub descriptor: Value,
}

/// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/`).
#[derive(Debug)]
pub struct Layout {
    pub dir: PathBuf,
    index: Vec<Value>,
}

impl Layout {
    /// Creates (or empties the index of) a layout at `dir`.
    pub fn create(dir: &Path) -> Layout {
        fs::create_dir_all(dir.join("blobs/sha256")).expect("layout blobs dir");
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
        let l = Layout {
            dir: dir.to_path_buf(),
            index: Vec::new(),
        };
        l.write_index();
        l
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(d.hex())
    }

    /// Stores `bytes` as a blob; returns its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Digest {
        let d = Digest::of(bytes);
        fs::write(self.blob_path(&d), bytes).expect("write blob");
        d
    }

    /// Stores `bytes` as a blob; returns its descriptor (`mediaType`,
    /// `digest`, `size`), for hand-made manifests, configs and indexes.
    pub fn put_desc(&self, media_type: &str, bytes: &[u8]) -> Value {
        let d = self.put_blob(bytes);
        json!({"mediaType": media_type, "digest": d, "size": bytes.len()})
    }

    /// Stores an image's layer blobs, config and manifest; no index entry.
    pub fn write_image(&self, img: &Image) -> Built {
        let mut layers = Vec::new();
        let mut sizes = Vec::new();
        let mut diff_ids = Vec::new();
        let mut descs = Vec::new();
        for l in &img.layers {
            let tar = l.tar();
            diff_ids.push(Digest::of(&tar));
            let blob = l.compress.apply(&tar);
            let desc = self.put_desc(l.compress.media_type(), &blob);
            layers.push(digest_of(&desc));
            sizes.push(blob.len() as u64);
            descs.push(desc);
        }
        let config_bytes = serde_json::to_vec(&img.config_json(&diff_ids)).expect("config json");
        let config = self.put_desc(OCI_CONFIG, &config_bytes);
        let manifest_json = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": descs,
        });
        let manifest_bytes = serde_json::to_vec(&manifest_json).expect("manifest json");
        let mut descriptor = self.put_desc(OCI_MANIFEST, &manifest_bytes);
        descriptor["platform"] = img.platform();
        Built {
            manifest: digest_of(&descriptor),
            manifest_size: manifest_bytes.len() as u64,
            manifest_bytes,
            config: digest_of(&config),
            config_bytes,
            layers,
            layer_sizes: sizes,
            diff_ids,
            descriptor,
        }
    }

    /// Stores `img` and names it `tag` in index.json (replacing an entry
    /// with that name).
    pub fn add_image(&mut self, tag: &str, img: &Image) -> Built {
        let b = self.write_image(img);
        self.tag(tag, b.descriptor.clone());
        b
    }

    /// Stores an index blob over `imgs` (one manifest per platform) and
    /// names it `tag`. Returns the index's digest and the images.
    pub fn add_index(&mut self, tag: &str, imgs: &[Image]) -> (Digest, Vec<Built>) {
        let built: Vec<Built> = imgs.iter().map(|i| self.write_image(i)).collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": built.iter().map(|b| b.descriptor.clone()).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec(&index).expect("index json");
        let desc = self.put_desc(OCI_INDEX, &bytes);
        let d = digest_of(&desc);
        self.tag(tag, desc);
        (d, built)
    }

    /// busybox for linux/amd64 and linux/arm64/v8 under one index.
    pub fn add_multiarch(&mut self, tag: &str) -> (Digest, Vec<Built>) {
        self.add_index(tag, &[Image::busybox(), Image::busybox_arm64()])
    }

    /// Points `tag` at `descriptor` in index.json.
    pub fn tag(&mut self, tag: &str, mut descriptor: Value) {
        self.index
            .retain(|d| d["annotations"][REF_NAME].as_str() != Some(tag));
        descriptor["annotations"] = json!({ REF_NAME: tag });
        self.index.push(descriptor);
        self.write_index();
    }

    fn write_index(&self) {
        let v = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.index});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&v).expect("index.json"),
        )
        .expect("write index.json");
    }

    /// `oci:DIR:TAG`, skopeo's and umoci's name for an image here.
    pub fn oci_ref(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }
}
