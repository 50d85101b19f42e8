//! Child side of the container's filesystem: mount tree, /dev, pivot_root,
//! masked and read-only paths. Every mount target inside the rootfs is
//! resolved with openat2(RESOLVE_IN_ROOT) and mounted on through its
//! /proc/self/fd path, so a symlink in the image cannot send a mount
//! outside the rootfs.

use crate::bail;
use crate::cgroups::{HierarchyView, View};
use crate::container::plan::{default_devices, DevicePlan, MountKind, MountPlan, Plan};
use crate::error::{last_errno, Error, Result};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

pub fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> std::result::Result<(), i32> {
    let p = |c: Option<&CStr>| c.map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: all pointers are NUL-terminated strings or null.
    let r = unsafe {
        libc::mount(
            p(src),
            target.as_ptr(),
            p(fstype),
            flags,
            p(data) as *const libc::c_void,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}

fn c(s: &str) -> CString {
    // Paths here come from validated config strings without NUL.
    CString::new(s).unwrap_or_default()
}

fn fd_path(fd: BorrowedFd) -> CString {
    c(&format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

fn open_in_root(root: BorrowedFd, rel: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let rel = if rel.is_empty() { "." } else { rel };
    if cfg!(feature = "weaken-mount-symlink") {
        // Symlinks followed as the host sees them (CVE-2021-30465 class).
        return rustix::fs::openat(root, rel, flags | OFlags::CLOEXEC, Mode::empty());
    }
    rustix::fs::openat2(root, rel, flags | OFlags::CLOEXEC, Mode::empty(), RESOLVE)
}

/// Open (creating directories, or an empty file when `file`) `dest` inside
/// the rootfs, as an O_PATH fd. Only the missing tail is walked: usually
/// just the leaf, made in its parent and opened one step beneath it.
pub fn resolve_create(root: BorrowedFd, dest: &str, file: bool) -> Result<OwnedFd> {
    let rel = dest.trim_start_matches('/');
    let resolve_err =
        |e: rustix::io::Errno| Error::errno(format!("resolve {dest} in rootfs"), e.raw_os_error());
    match open_in_root(root, rel, OFlags::PATH) {
        Ok(fd) => return Ok(fd),
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(resolve_err(e)),
    }
    let comps: Vec<&str> = rel
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if comps.is_empty() {
        bail!("mount destination {dest:?} is the rootfs itself");
    }
    // The deepest ancestor that exists.
    let mut have = comps.len() - 1;
    let mut parent: Option<OwnedFd> = None;
    while have > 0 {
        match open_in_root(root, &comps[..have].join("/"), OFlags::PATH) {
            Ok(fd) => {
                parent = Some(fd);
                break;
            }
            Err(rustix::io::Errno::NOENT) => have -= 1,
            Err(e) => return Err(resolve_err(e)),
        }
    }
    for (i, comp) in comps.iter().enumerate().skip(have) {
        let pfd = parent.as_ref().map_or(root, |p| p.as_fd());
        // O_PATH directory fds serve as dirfd for creation too.
        let r = if i + 1 == comps.len() && file {
            rustix::fs::openat(
                pfd,
                *comp,
                OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o644),
            )
            .map(drop)
        } else {
            rustix::fs::mkdirat(pfd, *comp, Mode::from_raw_mode(0o755))
        };
        match r {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(Error::errno(
                    format!("create {dest} in rootfs"),
                    e.raw_os_error(),
                ))
            }
        }
        let next = match rustix::fs::openat2(
            pfd,
            *comp,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            // A symlink (or "..") that was there already, or appeared:
            // resolve it inside the rootfs like any path.
            Err(rustix::io::Errno::LOOP) | Err(rustix::io::Errno::XDEV) => {
                open_in_root(root, &comps[..=i].join("/"), OFlags::PATH).map_err(resolve_err)?
            }
            Err(e) => return Err(resolve_err(e)),
        };
        parent = Some(next);
    }
    parent.ok_or_else(|| Error::msg(format!("mount destination {dest:?} is the rootfs itself")))
}

/// Flags a bind remount must keep from the underlying mount (the kernel
/// refuses to clear locked ones in a user namespace; we never loosen them).
fn locked_flags(target: &CStr) -> libc::c_ulong {
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out-pointer.
    if unsafe { libc::statvfs(target.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let mut f = 0;
    let m = st.f_flag;
    if m & libc::ST_NOSUID != 0 {
        f |= libc::MS_NOSUID;
    }
    if m & libc::ST_NODEV != 0 {
        f |= libc::MS_NODEV;
    }
    if m & libc::ST_NOEXEC != 0 {
        f |= libc::MS_NOEXEC;
    }
    f
}

const REMOUNT_MASK: libc::c_ulong = libc::MS_RDONLY
    | libc::MS_NOSUID
    | libc::MS_NODEV
    | libc::MS_NOEXEC
    | libc::MS_NOATIME
    | libc::MS_NODIRATIME
    | libc::MS_RELATIME
    | libc::MS_STRICTATIME
    | libc::MS_SYNCHRONOUS
    | libc::MS_DIRSYNC
    | libc::MS_MANDLOCK
    | libc::MS_LAZYTIME
    | crate::linux::mountopt::MS_NOSYMFOLLOW;

fn merr(what: &str, dest: &str, e: i32) -> Error {
    Error::errno(format!("{what} {dest}"), e)
}

fn set_propagation(root: BorrowedFd, m: &MountPlan) -> Result<()> {
    if m.opts.propagation == 0 && m.opts.rec_set == 0 && m.opts.rec_clear == 0 {
        return Ok(());
    }
    let fd = open_in_root(root, m.dest.trim_start_matches('/'), OFlags::PATH)
        .map_err(|e| merr("reopen mount", &m.dest, e.raw_os_error()))?;
    if m.opts.propagation != 0 {
        mount(None, &fd_path(fd.as_fd()), None, m.opts.propagation, None)
            .map_err(|e| merr("set propagation of", &m.dest, e))?;
    }
    if m.opts.rec_set != 0 || m.opts.rec_clear != 0 {
        mount_setattr_recursive(fd.as_fd(), m.opts.rec_set, m.opts.rec_clear)
            .map_err(|e| merr("set recursive mount attributes on", &m.dest, e))?;
    }
    Ok(())
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn mount_setattr_recursive(fd: BorrowedFd, set: u64, clear: u64) -> std::result::Result<(), i32> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = c"";
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH, attr of the given size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}

fn mount_one(root: BorrowedFd, m: &MountPlan, cgroupns: bool, view: &View) -> Result<()> {
    match &m.kind {
        MountKind::Bind => {
            let target = resolve_create(root, &m.dest, m.source_is_file)?;
            match &m.tree {
                Some(tree) => rustix::mount::move_mount(
                    tree,
                    "",
                    &target,
                    "",
                    rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
                        | rustix::mount::MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
                )
                .map_err(|e| merr("attach bind mount", &m.dest, e.raw_os_error()))?,
                None => {
                    let src = m.source.as_deref();
                    let flags = libc::MS_BIND | (m.opts.flags & libc::MS_REC);
                    mount(src, &fd_path(target.as_fd()), None, flags, None)
                        .map_err(|e| merr("bind mount", &m.dest, e))?;
                }
            }
            drop(target);
            let want = m.opts.flags & REMOUNT_MASK;
            if want != 0 {
                let fd = open_in_root(root, m.dest.trim_start_matches('/'), OFlags::PATH)
                    .map_err(|e| merr("reopen mount", &m.dest, e.raw_os_error()))?;
                let p = fd_path(fd.as_fd());
                let locked = locked_flags(&p);
                mount(
                    None,
                    &p,
                    None,
                    libc::MS_BIND | libc::MS_REMOUNT | want | locked,
                    None,
                )
                .map_err(|e| merr("remount", &m.dest, e))?;
            }
            set_propagation(root, m)
        }
        MountKind::Fs { fstype } => {
            let tmpfs = fstype.as_bytes() == b"tmpfs";
            let target = resolve_create(root, &m.dest, false)?;
            // A tmpfs without mode= takes the mode of the directory it
            // covers, made 0755 if missing (runc does).
            let covered_mode = if tmpfs && !has_mode_option(m.data.as_deref()) {
                rustix::fs::fstat(&target)
                    .ok()
                    .map(|st| st.st_mode & 0o7777)
            } else {
                None
            };
            let copy_from = if m.opts.tmpcopyup {
                rustix::fs::openat(
                    &target,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ok()
            } else {
                None
            };
            let flags = m.opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
            // Read-only later: a tmpfs is filled (copyup, chmod) and /dev
            // gets nodes and mount points first.
            let ro_later = flags & libc::MS_RDONLY != 0 && (tmpfs || is_dev(&m.dest));
            let src = m.source.as_deref().unwrap_or(fstype);
            mount(
                Some(src),
                &fd_path(target.as_fd()),
                Some(fstype),
                if ro_later {
                    flags & !libc::MS_RDONLY
                } else {
                    flags
                },
                m.data.as_deref(),
            )
            .map_err(|e| {
                merr(
                    &format!("mount {} at", fstype.to_string_lossy()),
                    &m.dest,
                    e,
                )
            })?;
            if copy_from.is_some() || covered_mode.is_some() {
                let to = open_in_root(
                    root,
                    m.dest.trim_start_matches('/'),
                    OFlags::RDONLY | OFlags::DIRECTORY,
                )
                .map_err(|e| merr("reopen mount", &m.dest, e.raw_os_error()))?;
                if let Some(from) = copy_from {
                    copy_tree(from.as_fd(), to.as_fd(), 0)
                        .map_err(|e| e.wrap(format!("tmpcopyup {}", m.dest)))?;
                }
                if let Some(mode) = covered_mode {
                    rustix::fs::fchmod(&to, Mode::from_raw_mode(mode))
                        .map_err(|e| merr("chmod", &m.dest, e.raw_os_error()))?;
                }
            }
            if ro_later && !is_dev(&m.dest) {
                remount_bind(root, &m.dest, flags)?;
            }
            set_propagation(root, m)
        }
        MountKind::Cgroup => mount_cgroup(root, m, cgroupns, view),
    }
}

fn has_mode_option(data: Option<&CStr>) -> bool {
    data.is_some_and(|d| {
        d.to_bytes()
            .split(|b| *b == b',')
            .any(|o| o.starts_with(b"mode="))
    })
}

fn is_dev(dest: &str) -> bool {
    dest.trim_end_matches('/') == "/dev"
}

/// A read-only /dev mount was mounted writable so its nodes, mount points
/// and the console could be made: make it read-only now, at the end.
pub fn seal_dev(plan: &Plan) -> Result<()> {
    for m in &plan.mounts {
        if matches!(m.kind, MountKind::Fs { .. })
            && is_dev(&m.dest)
            && m.opts.flags & libc::MS_RDONLY != 0
        {
            let locked = locked_flags(c"/dev");
            mount(
                None,
                c"/dev",
                None,
                libc::MS_BIND | libc::MS_REMOUNT | (m.opts.flags & REMOUNT_MASK) | locked,
                None,
            )
            .map_err(|e| Error::errno("remount /dev read-only", e))?;
        }
    }
    Ok(())
}

/// tmpcopyup: copy the image's directory content into the fresh tmpfs.
fn copy_tree(from: BorrowedFd, to: BorrowedFd, depth: u32) -> Result<()> {
    use rustix::fs::FileType;
    if depth > 64 {
        bail!("directory tree too deep");
    }
    let dir =
        rustix::fs::Dir::read_from(from).map_err(|e| Error::errno("read dir", e.raw_os_error()))?;
    let root_st = rustix::fs::fstat(from).map_err(|e| Error::errno("stat", e.raw_os_error()))?;
    if depth == 0 {
        let _ = rustix::fs::fchmod(to, Mode::from_raw_mode(root_st.st_mode & 0o7777));
        let _ = rustix::fs::fchown(
            to,
            Some(rustix::fs::Uid::from_raw(root_st.st_uid)),
            Some(rustix::fs::Gid::from_raw(root_st.st_gid)),
        );
    }
    for ent in dir {
        let ent = ent.map_err(|e| Error::errno("read dir", e.raw_os_error()))?;
        let name = ent.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = rustix::fs::statat(from, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::errno("stat", e.raw_os_error()))?;
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        let owner = (
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
        );
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let _ = rustix::fs::mkdirat(to, name, mode);
                let sf = rustix::fs::openat(
                    from,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::errno("open", e.raw_os_error()))?;
                let df = rustix::fs::openat(
                    to,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::errno("open", e.raw_os_error()))?;
                let _ = rustix::fs::fchmod(&df, mode);
                let _ = rustix::fs::fchown(&df, owner.0, owner.1);
                copy_tree(sf.as_fd(), df.as_fd(), depth + 1)?;
            }
            FileType::RegularFile => {
                let sf = rustix::fs::openat(
                    from,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::errno("open", e.raw_os_error()))?;
                let df = rustix::fs::openat(
                    to,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    mode,
                )
                .map_err(|e| Error::errno("create", e.raw_os_error()))?;
                let mut sfile = std::fs::File::from(sf);
                let mut dfile = std::fs::File::from(df);
                std::io::copy(&mut sfile, &mut dfile)
                    .map_err(|e| Error::errno("copy", e.raw_os_error().unwrap_or(libc::EIO)))?;
                let _ = rustix::fs::fchown(&dfile, owner.0, owner.1);
            }
            FileType::Symlink => {
                if let Ok(t) = rustix::fs::readlinkat(from, name, Vec::new()) {
                    let _ = rustix::fs::symlinkat(t.as_c_str(), to, name);
                    let _ = rustix::fs::chownat(
                        to,
                        name,
                        owner.0,
                        owner.1,
                        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                    );
                }
            }
            _ => {
                let _ = rustix::fs::mknodat(
                    to,
                    name,
                    FileType::from_raw_mode(st.st_mode),
                    mode,
                    st.st_rdev,
                );
            }
        }
    }
    Ok(())
}

/// The container's /sys/fs/cgroup: cgroup2 on a unified host; a tmpfs with
/// one mount per hierarchy otherwise. With a cgroup namespace each
/// hierarchy is mounted afresh (rooted at the container's cgroup); without
/// one the container's own cgroup directory is bind-mounted. Which ones and
/// from where the parent worked out (`cgroups::View`).
fn mount_cgroup(root: BorrowedFd, m: &MountPlan, cgroupns: bool, view: &View) -> Result<()> {
    let flags = m.opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
    let target = resolve_create(root, &m.dest, false)?;
    let tp = fd_path(target.as_fd());
    let hierarchies = match view {
        View::Hierarchies(h) => h,
        View::Unified => match mount(Some(c"cgroup2"), &tp, Some(c"cgroup2"), flags, None) {
            Ok(()) => return Ok(()),
            Err(libc::EPERM) | Err(libc::EBUSY) => {
                mount(
                    Some(c"/sys/fs/cgroup"),
                    &tp,
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )
                .map_err(|e| merr("bind cgroup2 at", &m.dest, e))?;
                drop(target);
                return remount_bind(root, &m.dest, flags);
            }
            Err(e) => return Err(merr("mount cgroup2 at", &m.dest, e)),
        },
    };
    mount(
        Some(c"tmpfs"),
        &tp,
        Some(c"tmpfs"),
        flags & !libc::MS_RDONLY,
        Some(c"mode=755"),
    )
    .map_err(|e| merr("mount tmpfs at", &m.dest, e))?;
    drop(target);
    // The tmpfs just mounted is seen by this mount namespace alone, with
    // no process in the container yet: names in it need no race-proof walk.
    let dir = open_in_root(
        root,
        m.dest.trim_start_matches('/'),
        OFlags::PATH | OFlags::DIRECTORY,
    )
    .map_err(|e| merr("reopen", &m.dest, e.raw_os_error()))?;
    let dest = |h: &HierarchyView| format!("{}/{}", m.dest.trim_end_matches('/'), h.name);
    for h in hierarchies {
        rustix::fs::mkdirat(&dir, h.name.as_str(), Mode::from_raw_mode(0o755))
            .map_err(|e| merr("mkdir", &dest(h), e.raw_os_error()))?;
        let sub = rustix::fs::openat(
            &dir,
            h.name.as_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| merr("open", &dest(h), e.raw_os_error()))?;
        let sp = fd_path(sub.as_fd());
        if cgroupns {
            let (ty, data) = if h.unified {
                (c"cgroup2", None)
            } else {
                (c"cgroup", Some(h.data.as_c_str()))
            };
            mount(Some(ty), &sp, Some(ty), flags, data)
                .map_err(|e| merr("mount cgroup at", &dest(h), e))?;
        } else {
            mount(Some(&h.host), &sp, None, libc::MS_BIND | libc::MS_REC, None)
                .map_err(|e| merr("bind cgroup at", &dest(h), e))?;
        }
        // "cpu,cpuacct" hierarchies are also reachable by each name.
        if h.name.contains(',') {
            for part in h.name.split(',') {
                let _ = rustix::fs::symlinkat(h.name.as_str(), &dir, part);
            }
        }
    }
    // One call for the tmpfs and every hierarchy below it.
    let (set, clear) = crate::linux::mountopt::setattr_of(flags);
    if set == 0 && clear == 0 {
        return Ok(());
    }
    match mount_setattr_recursive(dir.as_fd(), set, clear) {
        Ok(()) => Ok(()),
        // Before Linux 5.12: a remount each.
        Err(libc::ENOSYS) => {
            if !cgroupns {
                for h in hierarchies {
                    remount_bind(root, &dest(h), flags)?;
                }
            }
            mount(
                None,
                &fd_path(dir.as_fd()),
                None,
                libc::MS_REMOUNT | (flags & REMOUNT_MASK),
                Some(c"mode=755"),
            )
            .map_err(|e| merr("remount", &m.dest, e))
        }
        Err(e) => Err(merr("set mount attributes on", &m.dest, e)),
    }
}

/// Give the bind mount at `dest` the flags of `flags` it can take,
/// keeping the ones the kernel locked.
fn remount_bind(root: BorrowedFd, dest: &str, flags: libc::c_ulong) -> Result<()> {
    let fd = open_in_root(root, dest.trim_start_matches('/'), OFlags::PATH)
        .map_err(|e| merr("reopen", dest, e.raw_os_error()))?;
    let p = fd_path(fd.as_fd());
    mount(
        None,
        &p,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | (flags & REMOUNT_MASK) | locked_flags(&p),
        None,
    )
    .map_err(|e| merr("remount", dest, e))
}

fn make_device(root: BorrowedFd, d: &DevicePlan, userns: bool) -> Result<()> {
    let (parent, name) = match d.path.rsplit_once('/') {
        Some((p, n)) if !n.is_empty() => (if p.is_empty() { "/" } else { p }, n),
        _ => bail!("device path {:?}", d.path),
    };
    if !userns {
        let dir = resolve_create(root, parent, false)?;
        let dev = rustix::fs::makedev(d.major, d.minor);
        let ft = rustix::fs::FileType::from_raw_mode(d.kind);
        match rustix::fs::mknodat(&dir, name, ft, Mode::from_raw_mode(d.mode), dev) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => {
                // An image may ship its own node; replace it with ours.
                let _ = rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty());
                rustix::fs::mknodat(&dir, name, ft, Mode::from_raw_mode(d.mode), dev)
                    .map_err(|e| Error::errno(format!("mknod {}", d.path), e.raw_os_error()))?;
            }
            Err(e) => return Err(Error::errno(format!("mknod {}", d.path), e.raw_os_error())),
        }
        rustix::fs::chownat(
            &dir,
            name,
            Some(rustix::fs::Uid::from_raw(d.uid)),
            Some(rustix::fs::Gid::from_raw(d.gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::errno(format!("chown {}", d.path), e.raw_os_error()))?;
        return Ok(());
    }
    // In a user namespace mknod is refused: bind the host's node instead.
    let target = resolve_create(root, &d.path, true)?;
    mount(
        Some(&c(&d.path)),
        &fd_path(target.as_fd()),
        None,
        libc::MS_BIND,
        None,
    )
    .map_err(|e| Error::errno(format!("bind device {}", d.path), e))?;
    Ok(())
}

fn setup_dev(root: BorrowedFd, plan: &Plan) -> Result<()> {
    let userns = plan.ns_types.contains(&"user");
    for d in default_devices().iter().chain(plan.devices.iter()) {
        make_device(root, d, userns)?;
    }
    let dev = open_in_root(root, "dev", OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(|e| Error::errno("open /dev in rootfs", e.raw_os_error()))?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        match rustix::fs::symlinkat(target, &dev, name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(Error::errno(
                    format!("symlink /dev/{name}"),
                    e.raw_os_error(),
                ))
            }
        }
    }
    // /dev/ptmx must be the container's devpts instance, whatever the image had.
    let _ = rustix::fs::unlinkat(&dev, "ptmx", rustix::fs::AtFlags::empty());
    rustix::fs::symlinkat("pts/ptmx", &dev, "ptmx")
        .map_err(|e| Error::errno("symlink /dev/ptmx", e.raw_os_error()))?;
    Ok(())
}

/// The mount `path` lives on, as an O_PATH fd on that mount's root: walk
/// up until ".." is on another mount (or is the directory itself, at /).
fn mount_root_of(path: &CStr) -> Result<OwnedFd> {
    let open_err = |e: rustix::io::Errno| Error::errno("find the rootfs's mount", e.raw_os_error());
    let mnt_id = |fd: BorrowedFd| -> Result<(u64, u64, u64)> {
        let st = rustix::fs::statx(
            fd,
            "",
            rustix::fs::AtFlags::EMPTY_PATH,
            rustix::fs::StatxFlags::MNT_ID | rustix::fs::StatxFlags::INO,
        )
        .map_err(open_err)?;
        let dev = (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor);
        Ok((st.stx_mnt_id, dev, st.stx_ino))
    };
    let mut cur = rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(open_err)?;
    for _ in 0..4096 {
        let here = mnt_id(cur.as_fd())?;
        let up = rustix::fs::openat(
            &cur,
            "..",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(open_err)?;
        let there = mnt_id(up.as_fd())?;
        if there.0 != here.0 || there == here {
            return Ok(cur);
        }
        cur = up;
    }
    bail!("rootfs path too deep")
}

/// Mount everything under the rootfs. With a mount namespace: / gets the
/// configured propagation (rslave by default), then the mount holding the
/// rootfs is made private so neither the rootfs bind nor anything mounted
/// below it propagates to the caller's namespace (and pivot_root(2), which
/// refuses a shared parent, works). Without one, nothing outside the
/// rootfs is touched: the mounts go into the runtime's namespace on a
/// bind of the rootfs that `delete` detaches. `bound` gets the rootfs
/// bind as soon as it exists. Does not pivot.
pub fn prepare_mounts(plan: &Plan, bound: impl FnOnce(BorrowedFd)) -> Result<()> {
    if plan.mount_ns {
        mount(None, c"/", None, plan.root_propagation, None)
            .map_err(|e| Error::errno("set propagation of /", e))?;
        let parent = mount_root_of(&plan.rootfs_c)?;
        mount(None, &fd_path(parent.as_fd()), None, libc::MS_PRIVATE, None)
            .map_err(|e| Error::errno("make the rootfs's parent mount private", e))?;
    }
    mount(
        Some(&plan.rootfs_c),
        &plan.rootfs_c,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(|e| Error::errno(format!("bind rootfs {}", plan.rootfs.display()), e))?;
    let root = rustix::fs::open(
        &plan.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Error::errno(
            format!("open rootfs {}", plan.rootfs.display()),
            e.raw_os_error(),
        )
    })?;
    bound(root.as_fd());
    for m in &plan.mounts {
        mount_one(
            root.as_fd(),
            m,
            plan.ns_types.contains(&"cgroup"),
            &plan.cgroup_view,
        )?;
    }
    if plan.setup_dev {
        setup_dev(root.as_fd(), plan)?;
    }
    Ok(())
}

/// Unique id of the mount at `path` (STATX_MNT_ID_UNIQUE where the kernel
/// has it, since 6.8; the reusable id before).
pub fn mount_id(path: &std::path::Path) -> Option<u64> {
    const STATX_MNT_ID_UNIQUE: u32 = 0x4000;
    let want = rustix::fs::StatxFlags::MNT_ID
        | rustix::fs::StatxFlags::from_bits_retain(STATX_MNT_ID_UNIQUE);
    rustix::fs::statx(rustix::fs::CWD, path, rustix::fs::AtFlags::empty(), want)
        .ok()
        .filter(|st| st.stx_mask & (STATX_MNT_ID_UNIQUE | libc::STATX_MNT_ID) != 0)
        .map(|st| st.stx_mnt_id)
}

/// The mount tree a container without mount namespace made at `rootfs`
/// in the runtime's namespace (the rootfs bind, id `id`, with everything
/// on it): detached, if it is still there.
pub fn detach_host_rootfs(rootfs: &str, id: u64) -> Result<()> {
    let path = std::path::Path::new(rootfs);
    if id == 0 || mount_id(path) != Some(id) {
        return Ok(());
    }
    rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH)
        .map_err(|e| Error::errno(format!("unmount {rootfs}"), e.raw_os_error()))
}

/// Make the container's rootfs its root. With a mount namespace:
/// pivot_root, or (--no-pivot, or an initramfs root where pivot_root is
/// impossible) MS_MOVE + chroot after detaching the host's proc and sysfs.
/// Without one: a plain chroot, the mounts staying where the runtime's
/// namespace has them.
pub fn pivot(plan: &Plan) -> Result<()> {
    if !plan.mount_ns {
        rustix::process::chdir(&plan.rootfs)
            .map_err(|e| Error::errno("chdir rootfs", e.raw_os_error()))?;
        rustix::process::chroot(".").map_err(|e| Error::errno("chroot", e.raw_os_error()))?;
        rustix::process::chdir("/").map_err(|e| Error::errno("chdir /", e.raw_os_error()))?;
        return Ok(());
    }
    if plan.no_pivot || plan.initramfs_root {
        move_root(plan)?;
    } else {
        pivot_root(plan)?;
    }
    Ok(())
}

/// MS_MOVE the rootfs onto / and chroot. The old root stays in the mount
/// namespace under the new one; a full procfs or sysfs there would let a
/// process of the container mount a new, unmasked instance in a user
/// namespace of its own (the kernel allows it when one is already fully
/// visible), so those are detached first.
fn move_root(plan: &Plan) -> Result<()> {
    for p in &plan.host_pseudo_mounts {
        // Keep the unmount from propagating to the caller's namespace.
        match mount(None, p, None, libc::MS_SLAVE | libc::MS_REC, None) {
            Ok(()) => {}
            // Already gone with a parent detached before it.
            Err(libc::ENOENT) | Err(libc::EINVAL) => continue,
            Err(e) => {
                return Err(Error::errno(
                    format!("make {} slave", p.to_string_lossy()),
                    e,
                ))
            }
        }
        match rustix::mount::unmount(p.as_c_str(), rustix::mount::UnmountFlags::DETACH) {
            Ok(()) => {}
            // Locked in a user namespace: cover it instead.
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::PERM) => {
                mount(Some(c"tmpfs"), p, Some(c"tmpfs"), 0, None)
                    .map_err(|e| Error::errno(format!("cover {}", p.to_string_lossy()), e))?
            }
            Err(e) => {
                return Err(Error::errno(
                    format!("unmount {}", p.to_string_lossy()),
                    e.raw_os_error(),
                ))
            }
        }
    }
    rustix::process::chdir(&plan.rootfs)
        .map_err(|e| Error::errno("chdir rootfs", e.raw_os_error()))?;
    mount(Some(&plan.rootfs_c), c"/", None, libc::MS_MOVE, None)
        .map_err(|e| Error::errno("move rootfs to /", e))?;
    rustix::process::chroot(".").map_err(|e| Error::errno("chroot", e.raw_os_error()))?;
    rustix::process::chdir("/").map_err(|e| Error::errno("chdir /", e.raw_os_error()))?;
    Ok(())
}

fn pivot_root(plan: &Plan) -> Result<()> {
    let old = rustix::fs::open(
        "/",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::errno("open /", e.raw_os_error()))?;
    let new = rustix::fs::open(
        &plan.rootfs,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::errno("open rootfs", e.raw_os_error()))?;
    rustix::process::fchdir(&new).map_err(|e| Error::errno("chdir rootfs", e.raw_os_error()))?;
    rustix::process::pivot_root(".", ".")
        .map_err(|e| Error::errno("pivot_root", e.raw_os_error()))?;
    rustix::process::fchdir(&old).map_err(|e| Error::errno("chdir old root", e.raw_os_error()))?;
    // Keep the unmount of the old root from propagating to the host.
    mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None)
        .map_err(|e| Error::errno("make old root slave", e))?;
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
        .map_err(|e| Error::errno("unmount old root", e.raw_os_error()))?;
    rustix::process::chdir("/").map_err(|e| Error::errno("chdir /", e.raw_os_error()))?;
    Ok(())
}

/// After pivot: masked paths, read-only paths, read-only root, then the
/// configured propagation of /.
pub fn finish(plan: &Plan) -> Result<()> {
    for p in &plan.readonly_paths {
        match mount(Some(p), p, None, libc::MS_BIND | libc::MS_REC, None) {
            Ok(()) => {}
            Err(libc::ENOENT) => continue,
            Err(e) => {
                return Err(Error::errno(
                    format!("bind readonly path {}", p.to_string_lossy()),
                    e,
                ))
            }
        }
        let locked = locked_flags(p);
        mount(
            None,
            p,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC | locked,
            None,
        )
        .map_err(|e| Error::errno(format!("remount readonly path {}", p.to_string_lossy()), e))?;
    }
    for p in &plan.masked {
        let st = match rustix::fs::stat(p.as_c_str()) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => {
                return Err(Error::errno(
                    format!("stat masked path {}", p.to_string_lossy()),
                    e.raw_os_error(),
                ))
            }
        };
        let r =
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
                mount(Some(c"tmpfs"), p, Some(c"tmpfs"), libc::MS_RDONLY, None)
            } else {
                mount(Some(c"/dev/null"), p, None, libc::MS_BIND, None)
            };
        r.map_err(|e| Error::errno(format!("mask {}", p.to_string_lossy()), e))?;
    }
    if plan.readonly_root {
        // A missing cwd is created as on a writable root (runc does), so
        // before / turns read-only; enter_cwd reports what still fails.
        let cwd = plan.process.cwd.trim_start_matches('/');
        if !cwd.is_empty() {
            if let Ok(root) = rustix::fs::open(
                "/",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                let _ = resolve_create(root.as_fd(), cwd, false);
            }
        }
        let locked = locked_flags(c"/");
        mount(
            None,
            c"/",
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked,
            None,
        )
        .map_err(|e| Error::errno("remount root read-only", e))?;
    }
    // Last: an unbindable tree would refuse the read-only path binds.
    if plan.mount_ns && plan.root_propagation_after != 0 {
        mount(None, c"/", None, plan.root_propagation_after, None)
            .map_err(|e| Error::errno("set rootfsPropagation of /", e))?;
    }
    Ok(())
}

/// chdir to the process cwd, created if missing, resolved inside the new
/// root with magic links refused: a cwd like /proc/self/fd/N must not land
/// on a host directory (CVE-2024-21626).
pub fn enter_cwd(cwd: &str) -> Result<()> {
    if cfg!(feature = "weaken-cve-2024-21626") {
        return rustix::process::chdir(cwd)
            .map_err(|e| Error::errno(format!("chdir {cwd}"), e.raw_os_error()));
    }
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::errno("open /", e.raw_os_error()))?;
    let fd = match open_in_root(
        root.as_fd(),
        cwd.trim_start_matches('/'),
        OFlags::RDONLY | OFlags::DIRECTORY,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => {
            let _ = resolve_create(root.as_fd(), cwd, false)?;
            open_in_root(
                root.as_fd(),
                cwd.trim_start_matches('/'),
                OFlags::RDONLY | OFlags::DIRECTORY,
            )
            .map_err(|e| Error::errno(format!("cwd {cwd}"), e.raw_os_error()))?
        }
        Err(e) => return Err(Error::errno(format!("cwd {cwd}"), e.raw_os_error())),
    };
    rustix::process::fchdir(&fd).map_err(|e| Error::errno(format!("chdir {cwd}"), e.raw_os_error()))
}
