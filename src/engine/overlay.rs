//! A container's rootfs as overlayfs: the image's unpacked layers as lower
//! dirs, the container's own upper and work dirs, mounted on bundle/rootfs.
//!
//! Layout under the container dir (see notes/containers.md):
//! `overlay/upper`, `overlay/work`, `overlay/l/<n>` (short links to the
//! layer dirs, n = the layer's index in the image, 0 = lowest) and
//! `overlay/empty` (the lower dir of an image with no layers: overlayfs
//! needs at least one).
//!
//! Two ways to mount, because the legacy mount(2) data is one page: 30-odd
//! store paths (each ~110 bytes) overflow it.
//! - New mount API (fsopen + one `lowerdir+` fsconfig call per layer,
//!   Linux >= 6.8): no length limit, absolute paths, no cwd games.
//! - Otherwise mount(2) with `lowerdir=l/N:l/M:…` relative to `overlay/`,
//!   done by a forked child that chdirs there first (cwd is per process; a
//!   chdir in the caller would race any other thread's relative paths).
//!   Overlayfs resolves the links at mount time, so the links only have to
//!   exist while mounting; they stay for a remount.

use crate::error::{Context, Error, Result};
use std::ffi::CString;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Set to `links` to force the mount(2) + short links path even where the
/// kernel has `lowerdir+` (tests, and a way out if the new API misbehaves).
pub const METHOD_ENV: &str = "RUNWAY_OVERLAY_METHOD";

/// How to pass the lower dirs to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `lowerdir+` when the kernel has it, else links; `METHOD_ENV=links`
    /// forces links.
    Auto,
    /// fsopen/fsconfig `lowerdir+`; fails where the kernel lacks it.
    LowerdirPlus,
    /// mount(2) with short relative links.
    Links,
}

/// What `unmount` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmounted {
    /// Unmounted at once.
    Clean,
    /// The mount was busy (a process still has files open in it): it was
    /// detached (MNT_DETACH) and goes away when the last user does.
    Detached,
    /// Nothing was mounted there.
    NotMounted,
}

/// The unpacked layer dirs of an image, lowest first (the order `mount`
/// takes): the store's dir for each chain id of the config's diff_ids.
/// A layer not (or no longer) unpacked is an error naming it.
pub fn image_layer_dirs(
    store: &crate::image::store::Store,
    cfg: &crate::image::types::ImageConfig,
) -> Result<Vec<PathBuf>> {
    crate::image::types::chain_ids(&cfg.rootfs.diff_ids)
        .iter()
        .map(|chain| {
            if store.has_layer(chain) {
                Ok(store.layer_dir(chain))
            } else {
                Err(Error::errno(
                    format!(
                        "overlay: layer {} of the image is not unpacked",
                        chain.as_str()
                    ),
                    libc::ENOENT,
                ))
            }
        })
        .collect()
}

/// `container_dir/overlay`.
pub fn overlay_dir(container_dir: &Path) -> PathBuf {
    container_dir.join("overlay")
}

/// Creates `overlay/{upper,work,l}`, the short links `l/<n>` -> layer n
/// (image order, lowest first) and, for an image with no layers,
/// `overlay/empty`. Idempotent: existing dirs are kept (a restart reuses
/// the upper dir), links are re-pointed.
pub fn prepare(container_dir: &Path, layer_dirs: &[PathBuf]) -> Result<()> {
    let ov = overlay_dir(container_dir);
    for sub in ["upper", "work", "l"] {
        let p = ov.join(sub);
        std::fs::create_dir_all(&p).ctx(|| format!("overlay: create {}", p.display()))?;
    }
    if layer_dirs.is_empty() {
        let p = ov.join("empty");
        std::fs::create_dir_all(&p).ctx(|| format!("overlay: create {}", p.display()))?;
    }
    let cwd = std::env::current_dir().ctx(|| "overlay: getcwd")?;
    for (n, dir) in layer_dirs.iter().enumerate() {
        // A link's relative target would be read relative to l/.
        let dir = &cwd.join(dir);
        let link = ov.join("l").join(n.to_string());
        match std::fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).ctx(|| format!("overlay: remove {}", link.display())),
        }
        std::os::unix::fs::symlink(dir, &link)
            .ctx(|| format!("overlay: link {} -> {}", link.display(), dir.display()))?;
    }
    Ok(())
}

/// Prepares (see `prepare`) and mounts the overlay on `target` (created if
/// missing). `layer_dirs` in image order, lowest first: the last one is the
/// top of the stack.
pub fn mount(container_dir: &Path, layer_dirs: &[PathBuf], target: &Path) -> Result<()> {
    mount_with(container_dir, layer_dirs, target, Method::Auto)
}

/// `mount` with the method chosen by the caller.
pub fn mount_with(
    container_dir: &Path,
    layer_dirs: &[PathBuf],
    target: &Path,
    method: Method,
) -> Result<()> {
    for d in layer_dirs {
        if !d.is_dir() {
            return Err(Error::errno(
                format!(
                    "overlay mount on {}: layer {}",
                    target.display(),
                    d.display()
                ),
                libc::ENOENT,
            ));
        }
    }
    prepare(container_dir, layer_dirs)?;
    std::fs::create_dir_all(target).ctx(|| format!("overlay: create {}", target.display()))?;
    let ov = overlay_dir(container_dir);
    let forced_links = std::env::var(METHOD_ENV).is_ok_and(|v| v == "links");
    match method {
        Method::Links => mount_links(&ov, layer_dirs.len(), target),
        Method::LowerdirPlus => match mount_new_api(&ov, layer_dirs, target)? {
            NewApi::Mounted => Ok(()),
            NewApi::Unsupported(e) => Err(Error::errno(
                format!(
                    "overlay mount on {}: kernel lacks lowerdir+",
                    target.display()
                ),
                e,
            )),
        },
        Method::Auto if forced_links => mount_links(&ov, layer_dirs.len(), target),
        // Before 6.8 fsopen may exist but hand overlay a legacy one-page
        // buffer (before 6.5) or lack `lowerdir+`: go by the version.
        Method::Auto if !kernel_at_least(6, 8) => mount_links(&ov, layer_dirs.len(), target),
        Method::Auto => match mount_new_api(&ov, layer_dirs, target)? {
            NewApi::Mounted => Ok(()),
            NewApi::Unsupported(_) => mount_links(&ov, layer_dirs.len(), target),
        },
    }
}

/// Whether uname's release is at least major.minor.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let u = rustix::system::uname();
    let rel = u.release().to_string_lossy();
    let mut it = rel
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

enum NewApi {
    Mounted,
    /// fsopen or `lowerdir+` unknown to this kernel (errno): fall back.
    Unsupported(i32),
}

/// The lower dirs for the kernel: top layer first.
fn lower_stack(ov: &Path, layer_dirs: &[PathBuf]) -> Vec<PathBuf> {
    if layer_dirs.is_empty() {
        vec![ov.join("empty")]
    } else {
        layer_dirs.iter().rev().cloned().collect()
    }
}

fn mount_new_api(ov: &Path, layer_dirs: &[PathBuf], target: &Path) -> Result<NewApi> {
    use rustix::mount::{
        fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount, FsMountFlags,
        FsOpenFlags, MountAttrFlags, MoveMountFlags,
    };
    let what = || format!("overlay mount on {}", target.display());
    let fs = match fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) if e == rustix::io::Errno::NOSYS => {
            return Ok(NewApi::Unsupported(e.raw_os_error()))
        }
        Err(e) => {
            return Err(Error::errno(
                format!("{}: fsopen", what()),
                e.raw_os_error(),
            ))
        }
    };
    // The kernel explains a refused parameter in the fs context's log
    // ("e overlayfs: …"); its words beat a bare EINVAL.
    let fail = |fs: &rustix::fd::OwnedFd, step: String, e: rustix::io::Errno| {
        let log = fs_log(fs);
        let detail = if log.is_empty() {
            step
        } else {
            format!("{step}; {log}")
        };
        Error::errno(format!("{} ({detail})", what()), e.raw_os_error())
    };
    fsconfig_set_string(&fs, "source", "overlay").map_err(|e| fail(&fs, "source".into(), e))?;
    for (i, dir) in lower_stack(ov, layer_dirs).iter().enumerate() {
        if let Err(e) = fsconfig_set_string(&fs, "lowerdir+", dir.as_os_str()) {
            // Before 6.8 overlayfs does not know the key: EINVAL on the
            // very first one. Later failures are real (a bad layer dir).
            if i == 0 && e == rustix::io::Errno::INVAL {
                return Ok(NewApi::Unsupported(e.raw_os_error()));
            }
            return Err(fail(&fs, format!("lowerdir+ {}", dir.display()), e));
        }
    }
    let upper = ov.join("upper");
    let work = ov.join("work");
    fsconfig_set_string(&fs, "upperdir", upper.as_os_str())
        .map_err(|e| fail(&fs, format!("upperdir {}", upper.display()), e))?;
    fsconfig_set_string(&fs, "workdir", work.as_os_str())
        .map_err(|e| fail(&fs, format!("workdir {}", work.display()), e))?;
    fsconfig_create(&fs).map_err(|e| fail(&fs, "create".into(), e))?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| fail(&fs, "fsmount".into(), e))?;
    move_mount(
        mnt.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| Error::errno(format!("{} (move_mount)", what()), e.raw_os_error()))?;
    Ok(NewApi::Mounted)
}

/// The fs context's pending messages, one line ("e overlayfs: …; …").
fn fs_log(fs: &rustix::fd::OwnedFd) -> String {
    let mut out = Vec::new();
    let mut f = std::fs::File::from(match fs.try_clone() {
        Ok(fd) => fd,
        Err(_) => return String::new(),
    });
    let mut buf = [0u8; 1024];
    // Each read returns one message; ENODATA when none is left.
    for _ in 0..16 {
        match f.read(&mut buf) {
            Ok(n) if n > 0 => out.push(String::from_utf8_lossy(&buf[..n]).trim().to_string()),
            _ => break,
        }
    }
    out.join("; ")
}

/// mount(2) with `lowerdir=l/N:…,upperdir=upper,workdir=work`, relative to
/// `ov`, in a forked child that chdirs to `ov` first.
fn mount_links(ov: &Path, n_layers: usize, target: &Path) -> Result<()> {
    let lower = if n_layers == 0 {
        "empty".to_string()
    } else {
        (0..n_layers)
            .rev()
            .map(|n| format!("l/{n}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let data = format!("lowerdir={lower},upperdir=upper,workdir=work");
    let what = || {
        let shown = if lower.len() > 40 {
            format!("{}…", &lower[..40])
        } else {
            lower.clone()
        };
        format!("overlay mount on {} (lowerdir {shown})", target.display())
    };
    // The kernel copies at most one page of mount data.
    if data.len() >= 4096 {
        return Err(Error::errno(
            format!("{}: {n_layers} layers", what()),
            libc::E2BIG,
        ));
    }
    let cstr = |b: &[u8], name: &str| {
        CString::new(b).map_err(|_| Error::msg(format!("overlay: NUL byte in {name}")))
    };
    let c_ov = cstr(ov.as_os_str().as_bytes(), "overlay dir")?;
    // Absolute: the child's cwd is `ov`.
    let abs_target = if target.is_absolute() {
        target.to_path_buf()
    } else {
        std::env::current_dir()
            .ctx(|| "overlay: getcwd")?
            .join(target)
    };
    let c_target = cstr(abs_target.as_os_str().as_bytes(), "target")?;
    let c_data = cstr(data.as_bytes(), "mount data")?;
    let c_fs = c"overlay";
    // SAFETY: the child makes only raw syscalls (chdir, mount, _exit) on
    // memory prepared before the fork, so fork from a threaded process is
    // sound; the parent reaps it below.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os(format!("{}: fork", what())));
    }
    if pid == 0 {
        // SAFETY: async-signal-safe calls only, see above.
        unsafe {
            if libc::chdir(c_ov.as_ptr()) != 0 {
                libc::_exit(200);
            }
            if libc::mount(
                c_fs.as_ptr(),
                c_target.as_ptr(),
                c_fs.as_ptr(),
                0,
                c_data.as_ptr().cast(),
            ) != 0
            {
                let e = *libc::__errno_location();
                libc::_exit(if (1..200).contains(&e) { e } else { 199 });
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: plain waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && crate::error::last_errno() != libc::EINTR {
            return Err(Error::last_os(format!("{}: waitpid", what())));
        }
    }
    if !libc::WIFEXITED(status) {
        return Err(Error::msg(format!("{}: mount helper died", what())));
    }
    match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        200 => Err(Error::msg(format!(
            "overlay mount on {}: chdir {}: failed",
            target.display(),
            ov.display()
        ))),
        e => Err(Error::errno(what(), e)),
    }
}

/// Unmounts the overlay at `target`. A busy mount is detached (lazy) and
/// reported as `Detached`; nothing mounted is `NotMounted`, not an error,
/// so cleanup paths can call it unconditionally.
pub fn unmount(target: &Path) -> Result<Unmounted> {
    use rustix::mount::{unmount as umount2, UnmountFlags};
    // EINVAL (not a mount point) and ENOENT answer "is it mounted?"
    // without a racy check first.
    match umount2(target, UnmountFlags::NOFOLLOW) {
        Ok(()) => Ok(Unmounted::Clean),
        Err(e) if e == rustix::io::Errno::BUSY => {
            umount2(target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW)
                .ctx(|| format!("overlay unmount {} (detach)", target.display()))?;
            Ok(Unmounted::Detached)
        }
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOENT => {
            Ok(Unmounted::NotMounted)
        }
        Err(e) => Err(Error::errno(
            format!("overlay unmount {}", target.display()),
            e.raw_os_error(),
        )),
    }
}

/// Whether `p` is a mount point: its mount id differs from its parent's
/// (statx STATX_MNT_ID; also right for bind mounts of the same fs).
pub fn is_mountpoint(p: &Path) -> bool {
    use rustix::fs::{statx, AtFlags, StatxFlags, CWD};
    let Some(parent) = p.parent() else {
        return true;
    };
    // Before 5.8 there is no mount id: the device number then tells an
    // overlay (own anonymous device) from the dir under it.
    let id = |q: &Path| {
        statx(CWD, q, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::MNT_ID)
            .ok()
            .map(|s| {
                if s.stx_mask & StatxFlags::MNT_ID.bits() != 0 {
                    (0, s.stx_mnt_id)
                } else {
                    (
                        1,
                        (u64::from(s.stx_dev_major) << 32) | u64::from(s.stx_dev_minor),
                    )
                }
            })
    };
    match (id(p), id(parent)) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// Removes `container_dir/overlay` (upper, work, links). Refuses while the
/// overlay is still mounted at `container_dir/bundle/rootfs`, the place the
/// data layout puts it (removing an upper dir under a live mount corrupts
/// it); the rootfs mount point dir itself belongs to the bundle.
pub fn remove(container_dir: &Path) -> Result<()> {
    let rootfs = container_dir.join("bundle").join("rootfs");
    if is_mountpoint(&rootfs) {
        return Err(Error::errno(
            format!("overlay remove: {} still mounted", rootfs.display()),
            libc::EBUSY,
        ));
    }
    let ov = overlay_dir(container_dir);
    match std::fs::remove_dir_all(&ov) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx(|| format!("overlay remove {}", ov.display())),
    }
}
