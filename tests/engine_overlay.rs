//! engine::overlay on a real overlayfs (root): the merged view of fake
//! layer dirs, whiteouts, writes landing in the upper dir, 40 layers with
//! long paths through both mount paths, an image with no layers, and
//! unmount + remove leaving no mount and no dir.
#![cfg(feature = "full")]

mod common;

use common::skip;
use runway::engine::overlay::{self, Method, Unmounted};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A scratch data root with layer dirs and one container dir; on drop the
/// overlay is detached (if a failed assertion left it) and all removed.
struct Scratch {
    base: PathBuf,
    cdir: PathBuf,
    target: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let base = std::env::temp_dir().join(format!(
            "runway-overlay-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&base);
        let cdir = base.join("containers").join("c".repeat(64));
        let target = cdir.join("bundle").join("rootfs");
        std::fs::create_dir_all(&cdir).unwrap();
        Scratch { base, cdir, target }
    }

    /// A layer dir with a store-like long path (~110 bytes each).
    fn layer(&self, n: usize) -> PathBuf {
        let p = self
            .base
            .join("image/layers/sha256")
            .join(format!("{n:02}{}", "f".repeat(62)));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn mounted(&self) -> bool {
        mounted_at(&self.target)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.mounted() {
            let _ = rustix::mount::unmount(&self.target, rustix::mount::UnmountFlags::DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn mounted_at(target: &Path) -> bool {
    mountinfo_line(target).is_some()
}

fn mountinfo_line(target: &Path) -> Option<String> {
    let t = target.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(t))
        .map(str::to_string)
}

/// The mount really went the way asked: the kernel shows the lower dirs as
/// they were given (short relative links, or absolute paths).
fn check_method(s: &Scratch, method: Method) {
    let line = mountinfo_line(&s.target).unwrap();
    eprintln!("{method:?}: {line}");
    let links = line.contains("lowerdir=l/") || line.contains("lowerdir=empty");
    match method {
        Method::Links => assert!(links, "{line}"),
        Method::LowerdirPlus => assert!(!links, "{line}"),
        Method::Auto => {}
    }
}

fn root_or_skip() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    skip("needs root for overlayfs mounts");
    false
}

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// An overlayfs whiteout: a 0/0 character device.
fn whiteout(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: mknod on a valid C string.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) };
    assert_eq!(r, 0, "mknod {}", p.display());
}

/// Unmount, remove, and check that nothing is left.
fn teardown(s: &Scratch) {
    assert_eq!(overlay::unmount(&s.target).unwrap(), Unmounted::Clean);
    assert!(!s.mounted());
    assert_eq!(overlay::unmount(&s.target).unwrap(), Unmounted::NotMounted);
    overlay::remove(&s.cdir).unwrap();
    assert!(!s.cdir.join("overlay").exists());
    overlay::remove(&s.cdir).unwrap(); // again: nothing to do
}

fn three_layers(method: Method) {
    let s = Scratch::new();
    let l: Vec<PathBuf> = (0..3).map(|n| s.layer(n)).collect();
    write(&l[0].join("a.txt"), "a0");
    write(&l[0].join("shared"), "0");
    write(&l[0].join("gone.txt"), "lower");
    write(&l[0].join("dir/x"), "x");
    write(&l[1].join("b.txt"), "b1");
    write(&l[1].join("shared"), "1");
    whiteout(&l[1].join("gone.txt"));
    write(&l[2].join("c.txt"), "c2");
    write(&l[2].join("shared"), "2");
    write(&l[2].join("dir/y"), "y");

    overlay::mount_with(&s.cdir, &l, &s.target, method).unwrap();
    check_method(&s, method);
    let m = &s.target;
    assert_eq!(read(&m.join("a.txt")), "a0");
    assert_eq!(read(&m.join("b.txt")), "b1");
    assert_eq!(read(&m.join("c.txt")), "c2");
    assert_eq!(read(&m.join("shared")), "2", "the last layer is the top");
    assert!(!m.join("gone.txt").exists(), "whiteout in layer 1 hides it");
    assert_eq!(read(&m.join("dir/x")), "x");
    assert_eq!(read(&m.join("dir/y")), "y");

    // Writes land in the upper dir; the layers stay as they were.
    write(&m.join("new.txt"), "new");
    write(&m.join("a.txt"), "changed");
    std::fs::remove_file(m.join("b.txt")).unwrap();
    let upper = s.cdir.join("overlay/upper");
    assert_eq!(read(&upper.join("new.txt")), "new");
    assert_eq!(read(&upper.join("a.txt")), "changed");
    assert_eq!(read(&l[0].join("a.txt")), "a0");
    assert_eq!(read(&l[1].join("b.txt")), "b1");
    assert!(!l[0].join("new.txt").exists());

    teardown(&s);
    // The layers survive the container.
    assert_eq!(read(&l[0].join("a.txt")), "a0");
}

#[test]
fn three_layers_lowerdir_plus() {
    if !root_or_skip() {
        return;
    }
    if !has_lowerdir_plus() {
        skip("kernel lacks overlayfs lowerdir+ (< 6.8)");
        return;
    }
    three_layers(Method::LowerdirPlus);
}

#[test]
fn three_layers_links() {
    if root_or_skip() {
        three_layers(Method::Links);
    }
}

#[test]
fn three_layers_auto() {
    if root_or_skip() {
        three_layers(Method::Auto);
    }
}

/// Probe: mount a one-layer overlay with lowerdir+ and see if it works.
fn has_lowerdir_plus() -> bool {
    let s = Scratch::new();
    let l = vec![s.layer(0)];
    match overlay::mount_with(&s.cdir, &l, &s.target, Method::LowerdirPlus) {
        Ok(()) => {
            overlay::unmount(&s.target).unwrap();
            true
        }
        Err(_) => false,
    }
}

fn forty_layers(method: Method) {
    let s = Scratch::new();
    let l: Vec<PathBuf> = (0..40).map(|n| s.layer(n)).collect();
    for (n, d) in l.iter().enumerate() {
        write(&d.join(format!("f{n}")), &n.to_string());
        write(&d.join("top"), &n.to_string());
    }
    // The case is real: the plain absolute lowerdir list overflows a page.
    let plain: usize = l.iter().map(|p| p.as_os_str().len() + 1).sum();
    assert!(plain > 4096, "{plain}");

    overlay::mount_with(&s.cdir, &l, &s.target, method).unwrap();
    check_method(&s, method);
    for n in 0..40 {
        assert_eq!(read(&s.target.join(format!("f{n}"))), n.to_string());
    }
    assert_eq!(read(&s.target.join("top")), "39");
    teardown(&s);
}

#[test]
fn forty_long_layers_lowerdir_plus() {
    if !root_or_skip() {
        return;
    }
    if !has_lowerdir_plus() {
        skip("kernel lacks overlayfs lowerdir+ (< 6.8)");
        return;
    }
    forty_layers(Method::LowerdirPlus);
}

#[test]
fn forty_long_layers_links() {
    if root_or_skip() {
        forty_layers(Method::Links);
    }
}

#[test]
fn forty_long_layers_auto() {
    if root_or_skip() {
        forty_layers(Method::Auto);
    }
}

fn no_layers(method: Method) {
    let s = Scratch::new();
    overlay::mount_with(&s.cdir, &[], &s.target, method).unwrap();
    check_method(&s, method);
    assert_eq!(std::fs::read_dir(&s.target).unwrap().count(), 0);
    write(&s.target.join("hello"), "hi");
    assert_eq!(read(&s.cdir.join("overlay/upper/hello")), "hi");
    teardown(&s);
}

#[test]
fn empty_image_mounts() {
    if !root_or_skip() {
        return;
    }
    no_layers(Method::Links);
    no_layers(Method::Auto);
}

#[test]
fn remount_keeps_the_upper_dir() {
    if !root_or_skip() {
        return;
    }
    let s = Scratch::new();
    let l = vec![s.layer(0)];
    overlay::mount(&s.cdir, &l, &s.target).unwrap();
    write(&s.target.join("kept"), "yes");
    assert_eq!(overlay::unmount(&s.target).unwrap(), Unmounted::Clean);
    overlay::mount_with(&s.cdir, &l, &s.target, Method::Links).unwrap();
    assert_eq!(read(&s.target.join("kept")), "yes");
    teardown(&s);
}

#[test]
fn busy_unmount_detaches() {
    if !root_or_skip() {
        return;
    }
    let s = Scratch::new();
    let l = vec![s.layer(0)];
    write(&l[0].join("f"), "x");
    overlay::mount(&s.cdir, &l, &s.target).unwrap();
    // A cwd inside the mount keeps it busy (an open file does not).
    let child = std::process::Command::new("sleep")
        .arg("30")
        .current_dir(&s.target)
        .spawn();
    let Ok(mut child) = child else {
        skip("no sleep binary");
        return;
    };
    // Refused while mounted.
    assert!(overlay::remove(&s.cdir).is_err());
    assert!(s.cdir.join("overlay/upper").exists());
    assert_eq!(overlay::unmount(&s.target).unwrap(), Unmounted::Detached);
    assert!(!s.mounted());
    child.kill().unwrap();
    child.wait().unwrap();
    overlay::remove(&s.cdir).unwrap();
    assert!(!s.cdir.join("overlay").exists());
}

#[test]
fn missing_layer_is_one_line_naming_it() {
    if !root_or_skip() {
        return;
    }
    let s = Scratch::new();
    let l = vec![s.layer(0), s.base.join("no-such-layer")];
    let e = overlay::mount(&s.cdir, &l, &s.target)
        .unwrap_err()
        .to_string();
    eprintln!("{e}");
    assert!(!e.contains('\n'), "{e}");
    assert!(e.starts_with("overlay mount on "), "{e}");
    assert!(e.contains("no-such-layer"), "{e}");
    assert!(e.ends_with("no such file or directory"), "{e}");
    assert!(!s.mounted());
}

#[test]
fn kernel_refusal_is_one_line_naming_the_target() {
    if !root_or_skip() {
        return;
    }
    for method in [Method::Links, Method::Auto] {
        let s = Scratch::new();
        let l = vec![s.layer(0)];
        overlay::prepare(&s.cdir, &l).unwrap();
        // A work dir on another file system than the upper dir: the
        // kernel says no (EINVAL).
        std::fs::remove_dir(s.cdir.join("overlay/work")).unwrap();
        std::os::unix::fs::symlink("/proc", s.cdir.join("overlay/work")).unwrap();
        let e = overlay::mount_with(&s.cdir, &l, &s.target, method)
            .unwrap_err()
            .to_string();
        eprintln!("{method:?}: {e}");
        assert!(!e.contains('\n'), "{e}");
        assert!(
            e.starts_with(&format!("overlay mount on {}", s.target.display())),
            "{e}"
        );
        assert!(!s.mounted());
    }
}

/// The child side of `env_knob_forces_links`: runs only when spawned by it
/// (an env var set in the parent would leak into the parallel tests).
#[test]
fn env_knob_child() {
    if std::env::var("RUNWAY_TEST_OVERLAY_CHILD").is_err() || !root_or_skip() {
        return;
    }
    let s = Scratch::new();
    let l = vec![s.layer(0), s.layer(1)];
    overlay::mount(&s.cdir, &l, &s.target).unwrap();
    let line = mountinfo_line(&s.target).unwrap();
    assert!(line.contains("lowerdir=l/1:l/0,"), "{line}");
    teardown(&s);
}

#[test]
fn env_knob_forces_links() {
    if !root_or_skip() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "env_knob_child", "--test-threads=1"])
        .env("RUNWAY_TEST_OVERLAY_CHILD", "1")
        .env(overlay::METHOD_ENV, "links")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

/// The real thing: an image imported into the store (its whiteouts and
/// opaque dirs unpacked the store's way), its layer dirs from
/// `image_layer_dirs`, mounted.
#[test]
fn imported_image_mounts_with_whiteouts() {
    use common::oci::{Compress, Entry, Image, Layer, Layout};
    if !root_or_skip() {
        return;
    }
    let s = Scratch::new();
    let mut layout = Layout::create(&s.base.join("layout"));
    let img = Image::new(vec![
        Layer::new(
            Compress::Gzip,
            vec![
                Entry::file("etc/a", "a0"),
                Entry::file("etc/gone", "lower"),
                Entry::file("opq/old", "old"),
            ],
        ),
        Layer::new(
            Compress::None,
            vec![
                Entry::whiteout("etc/gone"),
                Entry::opaque("opq"),
                Entry::file("opq/new", "new"),
            ],
        ),
        Layer::file(Compress::Gzip, "etc/a", "a2"),
    ]);
    layout.add_image("t", &img);
    let store = runway::image::store::Store::open(&s.base.join("store")).unwrap();
    let imported = runway::image::import::import(&store, &layout.dir, None).unwrap();
    let rec = store
        .images()
        .unwrap()
        .into_iter()
        .find(|r| r.id == imported[0].id)
        .unwrap();
    let cfg = store.config(&rec).unwrap();
    let layers = overlay::image_layer_dirs(&store, &cfg).unwrap();
    assert_eq!(layers.len(), 3);

    overlay::mount(&s.cdir, &layers, &s.target).unwrap();
    let m = &s.target;
    assert_eq!(read(&m.join("etc/a")), "a2");
    assert!(!m.join("etc/gone").exists());
    assert!(
        !m.join("opq/old").exists(),
        "opaque dir hides the lower one"
    );
    assert_eq!(read(&m.join("opq/new")), "new");
    teardown(&s);
}
