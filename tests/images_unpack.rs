//! Layer unpacking against umoci: OCI layouts built by tests/common/oci.rs, each layer unpacked by runway into its own overlay lowerdir, the merged tree compared with `umoci unpack` of the same image; tar-slip layers refused.

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
