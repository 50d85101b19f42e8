//! Volumes: named and anonymous volumes under DATA_ROOT/volumes, the
//! containers that use them, `-v` parsing, and the first-use copy of the
//! image's content into a new volume (docker's default, no "nocopy").
//!
//! Layout, one directory per volume:
//! ```text
//! DATA_ROOT/volumes/.lock              held by every change (create, rm, refs)
//! DATA_ROOT/volumes/<name>/_data/      the content (what gets bind-mounted)
//! DATA_ROOT/volumes/<name>/refs/<id>   container <id> uses the volume
//! DATA_ROOT/volumes/<name>/meta.json   written last: a volume exists once it has one
//! ```
//! A directory without meta.json is a create that crashed; nothing ever
//! used it, so the next create of the name (or a prune) removes it.
//!
//! Contract with the caller (so that a crash never pins a volume): create
//! `DATA_ROOT/containers/<id>/` first, then `add_ref`; a ref whose
//! container dir is gone is stale and dropped by the next look at it.

use crate::bail;
use crate::cgroups::clean_path as clean;
use crate::engine::names;
use crate::error::{Context, Error, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The only driver there is (docker's name for a directory on the host).
pub const DRIVER: &str = "local";
/// The label docker (≥ 23) puts on anonymous volumes; shown by `inspect`.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

const META: &str = "meta.json";
const DATA: &str = "_data";
const REFS: &str = "refs";

/// meta.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeMeta {
    pub name: String,
    /// RFC 3339, UTC.
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Made for a container's `-v /path` or an image's `Volumes`, not by name.
    #[serde(default)]
    pub anonymous: bool,
}

/// A volume that exists (has its meta.json).
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub meta: VolumeMeta,
    /// DATA_ROOT/volumes/<name>
    pub dir: PathBuf,
}

impl Volume {
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// The content directory: what gets bind-mounted (docker's Mountpoint).
    pub fn mountpoint(&self) -> PathBuf {
        self.dir.join(DATA)
    }
}

/// `DATA_ROOT/volumes`.
pub fn volumes_dir(data_root: &Path) -> PathBuf {
    data_root.join("volumes")
}

/// Checks a volume name by docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`,
/// with docker's words (a relative path given as `-v` source lands here).
pub fn validate_name(name: &str) -> Result<()> {
    if crate::engine::names::docker_name_ok(name) {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )))
    }
}

fn no_such(name: &str) -> Error {
    Error::msg(format!("get {name}: no such volume"))
}

/// Held while anything changes under DATA_ROOT/volumes: creates of one name
/// then make one volume, and a remove cannot interleave with an add_ref.
struct Lock(#[allow(dead_code)] std::os::fd::OwnedFd);

fn lock(data_root: &Path) -> Result<Lock> {
    let dir = volumes_dir(data_root);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o701)
        .create(&dir)
        .ctx(|| format!("create {}", dir.display()))?;
    Ok(Lock(crate::engine::record::lock_file(&dir.join(".lock"))?))
}

/// The volume in `dir`, None when it has no (readable) meta.json.
fn load(dir: &Path) -> Result<Option<Volume>> {
    let p = dir.join(META);
    let text = match std::fs::read(&p) {
        Ok(t) => t,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(None)
        }
        Err(e) => return Err(e).ctx(|| format!("read {}", p.display())),
    };
    let meta: VolumeMeta =
        serde_json::from_slice(&text).map_err(|e| Error::msg(format!("{}: {e}", p.display())))?;
    Ok(Some(Volume {
        meta,
        dir: dir.to_path_buf(),
    }))
}

/// The volume named `name`; docker's "no such volume" error if none.
pub fn get(data_root: &Path, name: &str) -> Result<Volume> {
    validate_name(name).map_err(|_| no_such(name))?;
    load(&volumes_dir(data_root).join(name))?.ok_or_else(|| no_such(name))
}

/// Every volume, by name.
pub fn list(data_root: &Path) -> Result<Vec<Volume>> {
    let dir = volumes_dir(data_root);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).ctx(|| format!("read {}", dir.display())),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.ctx(|| format!("read {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if validate_name(&name).is_err() {
            continue; // .lock, removals in flight
        }
        if let Some(v) = load(&e.path())? {
            out.push(v);
        }
    }
    out.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
    Ok(out)
}

fn write_meta(dir: &Path, meta: &VolumeMeta) -> Result<()> {
    let tmp = dir.join(".meta.json.tmp");
    let bytes = serde_json::to_vec(meta).map_err(|e| Error::msg(format!("encode: {e}")))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .ctx(|| format!("create {}", tmp.display()))?;
    f.write_all(&bytes)
        .ctx(|| format!("write {}", tmp.display()))?;
    f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
    let p = dir.join(META);
    std::fs::rename(&tmp, &p).ctx(|| format!("rename to {}", p.display()))?;
    let d = std::fs::File::open(dir).ctx(|| format!("open {}", dir.display()))?;
    d.sync_all().ctx(|| format!("fsync {}", dir.display()))
}

/// Creates the volume `name` (None: an anonymous one with a 64-hex name).
/// An existing volume of that name is returned as it is (docker: `volume
/// create` is idempotent, and any number of concurrent creates make one).
pub fn create(
    data_root: &Path,
    name: Option<&str>,
    labels: &BTreeMap<String, String>,
) -> Result<Volume> {
    let (name, anonymous) = match name {
        Some(n) => {
            validate_name(n)?;
            (n.to_string(), false)
        }
        None => (names::new_id()?, true),
    };
    let _lock = lock(data_root)?;
    let dir = volumes_dir(data_root).join(&name);
    if let Some(v) = load(&dir)? {
        return Ok(v);
    }
    // A create that crashed before its meta.json: nobody used it.
    match std::fs::symlink_metadata(&dir) {
        Ok(_) => std::fs::remove_dir_all(&dir).ctx(|| format!("remove {}", dir.display()))?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).ctx(|| format!("stat {}", dir.display())),
    }
    let made = (|| -> Result<Volume> {
        let mut b = std::fs::DirBuilder::new();
        b.mode(0o701);
        b.create(&dir).ctx(|| format!("create {}", dir.display()))?;
        for (sub, mode) in [(DATA, 0o755), (REFS, 0o700)] {
            let p = dir.join(sub);
            b.mode(mode)
                .create(&p)
                .ctx(|| format!("create {}", p.display()))?;
            // The umask may have taken bits off.
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                .ctx(|| format!("chmod {}", p.display()))?;
        }
        let meta = VolumeMeta {
            name: name.clone(),
            created: crate::timefmt::rfc3339(crate::timefmt::now().0),
            labels: labels.clone(),
            anonymous,
        };
        write_meta(&dir, &meta)?;
        Ok(Volume {
            meta,
            dir: dir.clone(),
        })
    })();
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    made
}

fn check_id(container_id: &str) -> Result<()> {
    if !names::is_full_id(container_id) {
        bail!("invalid container id {container_id:?}: want 64 lower-case hex digits");
    }
    Ok(())
}

/// Records that container `container_id` uses volume `name`. Fails when
/// the volume does not exist (a concurrent rm won), so a ref never points
/// at a removed volume.
pub fn add_ref(data_root: &Path, name: &str, container_id: &str) -> Result<()> {
    check_id(container_id)?;
    let _lock = lock(data_root)?;
    let v = get(data_root, name)?;
    let p = v.dir.join(REFS).join(container_id);
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&p)
        .ctx(|| format!("create {}", p.display()))?;
    Ok(())
}

/// Forgets that container `container_id` uses volume `name`; a missing
/// volume or ref is no error (the container's removal must not fail on it).
pub fn remove_ref(data_root: &Path, name: &str, container_id: &str) -> Result<()> {
    check_id(container_id)?;
    if validate_name(name).is_err() {
        return Ok(());
    }
    let p = volumes_dir(data_root)
        .join(name)
        .join(REFS)
        .join(container_id);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(()),
        Err(e) => Err(e).ctx(|| format!("remove {}", p.display())),
    }
}

/// The containers using the volume (sorted ids), with the lock held;
/// refs of containers whose dir is gone are dropped.
fn in_use_locked(data_root: &Path, v: &Volume) -> Result<Vec<String>> {
    let refs = v.dir.join(REFS);
    let entries = match std::fs::read_dir(&refs) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).ctx(|| format!("read {}", refs.display())),
    };
    let mut ids = Vec::new();
    for e in entries {
        let e = e.ctx(|| format!("read {}", refs.display()))?;
        let id = e.file_name().to_string_lossy().into_owned();
        if names::is_full_id(&id) && names::containers_dir(data_root).join(&id).is_dir() {
            ids.push(id);
        } else {
            let _ = std::fs::remove_file(e.path());
        }
    }
    ids.sort();
    Ok(ids)
}

/// The ids of the containers that use volume `name` (their dir exists).
pub fn in_use(data_root: &Path, name: &str) -> Result<Vec<String>> {
    let _lock = lock(data_root)?;
    let v = get(data_root, name)?;
    in_use_locked(data_root, &v)
}

/// Moves the volume's dir out of the namespace (atomic: it is gone for
/// everyone at once) and deletes it. Lock held by the caller.
fn delete_locked(v: &Volume) -> Result<()> {
    let parent = v.dir.parent().unwrap_or(Path::new("/"));
    let id = names::new_id()?;
    let trash = parent.join(format!(".rm-{}", &id[..16]));
    std::fs::rename(&v.dir, &trash).ctx(|| format!("remove {}", v.dir.display()))?;
    std::fs::remove_dir_all(&trash).ctx(|| format!("remove {}", trash.display()))
}

/// Removes volume `name`; refused while a container uses it, with docker's
/// words naming the containers.
pub fn remove(data_root: &Path, name: &str) -> Result<()> {
    let _lock = lock(data_root)?;
    let v = get(data_root, name)?;
    let users = in_use_locked(data_root, &v)?;
    if !users.is_empty() {
        bail!("remove {name}: volume is in use - [{}]", users.join(", "));
    }
    delete_locked(&v)
}

/// docker's `volume prune`: the unused anonymous volumes (`all`: every
/// unused volume), plus leftovers of crashed creates and removes. Returns
/// (name, bytes) of each removed volume.
pub fn prune(data_root: &Path, all: bool) -> Result<Vec<(String, u64)>> {
    let _lock = lock(data_root)?;
    let dir = volumes_dir(data_root);
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir).ctx(|| format!("read {}", dir.display()))?;
    for e in entries {
        let e = e.ctx(|| format!("read {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name.starts_with(".rm-") {
            let _ = std::fs::remove_dir_all(&path);
            continue;
        }
        if validate_name(&name).is_err() {
            continue;
        }
        let Some(v) = load(&path)? else {
            // No meta.json: a create that crashed (the lock rules out
            // one in flight).
            let _ = std::fs::remove_dir_all(&path);
            continue;
        };
        if !all && !v.meta.anonymous {
            continue;
        }
        if !in_use_locked(data_root, &v)?.is_empty() {
            continue;
        }
        let size = disk_usage(&v.mountpoint());
        delete_locked(&v)?;
        out.push((name, size));
    }
    out.sort();
    Ok(out)
}

/// Bytes in the regular files (and link targets) under `path`, each
/// hard-linked file once, without following symlinks (docker's DirSize).
pub fn disk_usage(path: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut BTreeSet<(u64, u64)>) -> u64 {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        if m.is_dir() {
            let Ok(rd) = std::fs::read_dir(p) else {
                return 0;
            };
            return rd.flatten().map(|e| walk(&e.path(), seen)).sum();
        }
        if m.nlink() > 1 && !seen.insert((m.dev(), m.ino())) {
            return 0;
        }
        m.len()
    }
    walk(path, &mut BTreeSet::new())
}

// ------------------------------------------------------------------ -v

/// One `-v` / `--volume`, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum VolumeSpec {
    /// `/host/path:/ctr[:opts]`
    Bind {
        source: String,
        destination: String,
        readonly: bool,
    },
    /// `name:/ctr[:opts]`
    Named {
        name: String,
        destination: String,
        readonly: bool,
    },
    /// `/ctr`: a new anonymous volume.
    Anonymous { destination: String },
}

impl VolumeSpec {
    pub fn destination(&self) -> &str {
        match self {
            VolumeSpec::Bind { destination, .. }
            | VolumeSpec::Named { destination, .. }
            | VolumeSpec::Anonymous { destination } => destination,
        }
    }
}

const OPTIONS: [&str; 4] = ["ro", "rw", "z", "Z"];

fn is_mode(s: &str) -> bool {
    !s.is_empty() && s.split(',').all(|o| OPTIONS.contains(&o))
}

/// Parses `-v` as docker does on Linux: `/ctr`, `/ctr:opts`, `SRC:/ctr`,
/// `SRC:/ctr:opts`; SRC is an absolute host path (bind) or a volume name.
/// Options: `ro`, `rw`, and SELinux's `z`/`Z` (accepted, no effect here).
/// Paths come back cleaned.
pub fn parse_spec(s: &str) -> Result<VolumeSpec> {
    let bad = |why: String| Error::msg(format!("invalid volume specification {s:?}: {why}"));
    let parts: Vec<&str> = s.split(':').collect();
    let (source, dest, opts) = match parts.as_slice() {
        [d] => (None, *d, None),
        [d, o] if is_mode(o) => (None, *d, Some(*o)),
        [src, d] => (Some(*src), *d, None),
        [src, d, o] => (Some(*src), *d, Some(*o)),
        _ => return Err(bad("too many colons".into())),
    };
    let mut readonly = false;
    if let Some(opts) = opts {
        let mut rw = false;
        for o in opts.split(',') {
            match o {
                "ro" => readonly = true,
                "rw" => rw = true,
                "z" | "Z" => {}
                "" => return Err(bad("empty option".into())),
                other => return Err(bad(format!("unknown option {other:?}"))),
            }
        }
        if readonly && rw {
            return Err(bad("both ro and rw".into()));
        }
    }
    if dest.is_empty() {
        return Err(bad("no destination".into()));
    }
    if !dest.starts_with('/') {
        return Err(bad(format!(
            "destination {dest:?} must be an absolute path"
        )));
    }
    let destination = clean(dest);
    if destination == "/" {
        return Err(bad("destination can't be '/'".into()));
    }
    match source {
        None => {
            if readonly {
                return Err(bad("an anonymous volume cannot be read-only".into()));
            }
            Ok(VolumeSpec::Anonymous { destination })
        }
        Some("") => Err(bad("empty source".into())),
        Some(src) if src.starts_with('/') => Ok(VolumeSpec::Bind {
            source: clean(src),
            destination,
            readonly,
        }),
        Some(name) => {
            validate_name(name)?;
            Ok(VolumeSpec::Named {
                name: name.to_string(),
                destination,
                readonly,
            })
        }
    }
}

/// docker's `-v /host:/ctr`: a missing host directory is created (0755,
/// with its parents); anything that exists is left as it is.
pub fn ensure_bind_source(source: &Path) -> Result<()> {
    match std::fs::metadata(source) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(source)
            .ctx(|| format!("create bind source {}", source.display())),
        Err(e) => Err(e).ctx(|| format!("bind source {}", source.display())),
    }
}

// ------------------------------------------------------------- populate

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

fn is_empty_dir(fd: BorrowedFd) -> Result<bool> {
    let dir = rustix::fs::Dir::read_from(fd).ctx(|| "read volume dir")?;
    for e in dir {
        let e = e.ctx(|| "read volume dir")?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Copies what the image has at `destination` (resolved inside `rootfs`,
/// symlinks and all, as the mount will be) into a new volume's
/// `volume_data`, keeping modes, owners, symlinks (as links) and times.
/// A volume that already holds anything is left alone (it is not new), as
/// is one whose destination the image lacks or has as a non-directory.
/// Nothing outside `rootfs` is ever read: the destination is opened with
/// RESOLVE_IN_ROOT and the walk opens each entry relative to its parent
/// with O_NOFOLLOW.
pub fn populate(volume_data: &Path, rootfs: &Path, destination: &str) -> Result<()> {
    let dst = rustix::fs::open(
        volume_data,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", volume_data.display()))?;
    if !is_empty_dir(dst.as_fd())? {
        return Ok(());
    }
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", rootfs.display()))?;
    let cleaned = clean(destination);
    let rel = cleaned.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let src = match rustix::fs::openat2(
        &root,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        RESOLVE,
    ) {
        Ok(fd) => fd,
        Err(e) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::NOTDIR => return Ok(()),
        Err(e) => {
            return Err(Error::errno(
                format!("open {destination} in the image"),
                e.raw_os_error(),
            ))
        }
    };
    let ctx = |what: &str| format!("copy {destination} into the volume: {what}");
    copy_tree(src.as_fd(), dst.as_fd(), &ctx)?;
    let st = rustix::fs::fstat(&src).ctx(|| ctx("stat"))?;
    set_meta_fd(dst.as_fd(), &st).ctx(|| ctx("."))
}

fn times(st: &rustix::fs::Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

fn owner(st: &rustix::fs::Stat) -> (Option<rustix::fs::Uid>, Option<rustix::fs::Gid>) {
    (
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
    )
}

/// Owner, then mode (chown clears set-id bits), then times, of an open
/// directory or regular file.
fn set_meta_fd(fd: BorrowedFd, st: &rustix::fs::Stat) -> Result<()> {
    let (u, g) = owner(st);
    rustix::fs::fchown(fd, u, g).ctx(|| "chown")?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(st.st_mode & 0o7777)).ctx(|| "chmod")?;
    rustix::fs::futimens(fd, &times(st)).ctx(|| "set times")
}

fn copy_tree(src: BorrowedFd, dst: BorrowedFd, ctx: &dyn Fn(&str) -> String) -> Result<()> {
    let dir = rustix::fs::Dir::read_from(src).ctx(|| ctx("read dir"))?;
    for e in dir {
        let e = e.ctx(|| ctx("read dir"))?;
        let name = e.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let shown = name.to_string_lossy().into_owned();
        let st = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW).ctx(|| ctx(&shown))?;
        let nofollow = OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700)).ctx(|| ctx(&shown))?;
                let s: OwnedFd = rustix::fs::openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | nofollow,
                    Mode::empty(),
                )
                .ctx(|| ctx(&shown))?;
                let d: OwnedFd = rustix::fs::openat(
                    dst,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | nofollow,
                    Mode::empty(),
                )
                .ctx(|| ctx(&shown))?;
                copy_tree(s.as_fd(), d.as_fd(), ctx)?;
                set_meta_fd(d.as_fd(), &st).ctx(|| ctx(&shown))?;
            }
            FileType::RegularFile => {
                let s = rustix::fs::openat(src, name, OFlags::RDONLY | nofollow, Mode::empty())
                    .ctx(|| ctx(&shown))?;
                let d = rustix::fs::openat(
                    dst,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | nofollow,
                    Mode::from_raw_mode(0o600),
                )
                .ctx(|| ctx(&shown))?;
                let mut sf = std::fs::File::from(s);
                let mut df = std::fs::File::from(d);
                std::io::copy(&mut sf, &mut df).ctx(|| ctx(&shown))?;
                set_meta_fd(df.as_fd(), &st).ctx(|| ctx(&shown))?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, name, Vec::new()).ctx(|| ctx(&shown))?;
                rustix::fs::symlinkat(target.as_c_str(), dst, name).ctx(|| ctx(&shown))?;
                let (u, g) = owner(&st);
                rustix::fs::chownat(dst, name, u, g, AtFlags::SYMLINK_NOFOLLOW)
                    .ctx(|| ctx(&shown))?;
                rustix::fs::utimensat(dst, name, &times(&st), AtFlags::SYMLINK_NOFOLLOW)
                    .ctx(|| ctx(&shown))?;
            }
            t @ (FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice) => {
                rustix::fs::mknodat(dst, name, t, Mode::from_raw_mode(0o600), st.st_rdev as _)
                    .ctx(|| ctx(&shown))?;
                let (u, g) = owner(&st);
                rustix::fs::chownat(dst, name, u, g, AtFlags::SYMLINK_NOFOLLOW)
                    .ctx(|| ctx(&shown))?;
                // Just made by us, no symlink: chmodat cannot be misled.
                rustix::fs::chmodat(
                    dst,
                    name,
                    Mode::from_raw_mode(st.st_mode & 0o7777),
                    AtFlags::empty(),
                )
                .ctx(|| ctx(&shown))?;
                rustix::fs::utimensat(dst, name, &times(&st), AtFlags::SYMLINK_NOFOLLOW)
                    .ctx(|| ctx(&shown))?;
            }
            // Sockets belong to a process that is not there any more.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let d =
                std::env::temp_dir().join(format!("runway-volumes-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Scratch(d)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn bind(s: &str, d: &str, ro: bool) -> VolumeSpec {
        VolumeSpec::Bind {
            source: s.into(),
            destination: d.into(),
            readonly: ro,
        }
    }

    fn named(n: &str, d: &str, ro: bool) -> VolumeSpec {
        VolumeSpec::Named {
            name: n.into(),
            destination: d.into(),
            readonly: ro,
        }
    }

    #[test]
    fn specs_parse_like_docker() {
        let ok = |s: &str| parse_spec(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(
            ok("/data"),
            VolumeSpec::Anonymous {
                destination: "/data".into()
            }
        );
        assert_eq!(
            ok("/data/:rw"),
            VolumeSpec::Anonymous {
                destination: "/data".into()
            }
        );
        assert_eq!(ok("/h:/c"), bind("/h", "/c", false));
        assert_eq!(ok("/h/../x/:/c/./d:ro"), bind("/x", "/c/d", true));
        assert_eq!(ok("/h:/c:rw,Z"), bind("/h", "/c", false));
        assert_eq!(ok("/h:/c:z,ro"), bind("/h", "/c", true));
        assert_eq!(ok("vol:/c"), named("vol", "/c", false));
        assert_eq!(ok("my_vol.1-x:/c:ro"), named("my_vol.1-x", "/c", true));
        assert_eq!(ok("vol:/c").destination(), "/c");
    }

    #[test]
    fn bad_specs_name_the_problem() {
        for (s, want) in [
            ("", "no destination"),
            ("/h:/c:rx", "unknown option \"rx\""),
            ("/h:/c:ro,nocopy", "unknown option \"nocopy\""),
            ("/h:/c:ro,rw", "both ro and rw"),
            ("/h:/c:", "empty option"),
            ("/h:c", "must be an absolute path"),
            ("vol:rel/c", "must be an absolute path"),
            ("data:ro", "must be an absolute path"),
            ("/h:/", "can't be '/'"),
            ("/h:/..", "can't be '/'"),
            ("/", "can't be '/'"),
            ("/a:/b:ro:x", "too many colons"),
            (":/c", "empty source"),
            ("/c:ro", "cannot be read-only"),
            ("./rel:/c", "invalid characters"),
            ("a:/c", "invalid characters"),
            ("bad name:/c", "invalid characters"),
        ] {
            let e = parse_spec(s).expect_err(s).to_string();
            assert!(e.contains(want), "{s:?}: {e}");
            assert!(!e.contains('\n'), "{s:?}: {e}");
        }
    }

    #[test]
    fn names_follow_dockers_rule() {
        for n in ["ab", "a1", "A.b_c-d", "0vol", &"x".repeat(255)] {
            assert!(validate_name(n).is_ok(), "{n}");
        }
        for n in [
            "",
            "a",
            ".a",
            "_a",
            "-a",
            "a/b",
            "..",
            "a b",
            "é1",
            &"x".repeat(256),
        ] {
            let e = validate_name(n).expect_err(n).to_string();
            assert!(e.contains("[a-zA-Z0-9][a-zA-Z0-9_.-]"), "{e}");
        }
    }

    #[test]
    fn create_is_idempotent_and_crash_safe() {
        let s = Scratch::new("create");
        let labels: BTreeMap<String, String> = [("k".to_string(), "v".to_string())].into();
        let v = create(&s.0, Some("vol"), &labels).unwrap();
        assert_eq!(v.name(), "vol");
        assert!(v.mountpoint().is_dir());
        assert_eq!(v.meta.labels, labels);
        assert!(!v.meta.anonymous);
        assert!(crate::timefmt::parse_rfc3339(&v.meta.created).is_some());
        // Again: the same volume, content kept.
        std::fs::write(v.mountpoint().join("f"), "x").unwrap();
        let again = create(&s.0, Some("vol"), &BTreeMap::new()).unwrap();
        assert_eq!(again, v);
        assert!(again.mountpoint().join("f").exists());
        // A crashed create (no meta.json) is not a volume, and is redone.
        let half = volumes_dir(&s.0).join("half");
        std::fs::create_dir_all(half.join("_data/junk")).unwrap();
        assert!(get(&s.0, "half").is_err());
        assert_eq!(
            list(&s.0)
                .unwrap()
                .iter()
                .map(|v| v.name())
                .collect::<Vec<_>>(),
            ["vol"]
        );
        let h = create(&s.0, Some("half"), &BTreeMap::new()).unwrap();
        assert!(!h.mountpoint().join("junk").exists());
        // Anonymous: 64 hex, flagged.
        let a = create(&s.0, None, &BTreeMap::new()).unwrap();
        assert!(names::is_full_id(a.name()) && a.meta.anonymous);
        assert!(create(&s.0, Some("no/pe"), &BTreeMap::new()).is_err());
        assert_eq!(
            get(&s.0, "../x").unwrap_err().to_string(),
            "get ../x: no such volume"
        );
    }

    #[test]
    fn concurrent_creates_make_one_volume() {
        let s = Scratch::new("race");
        let hs: Vec<_> = (0..20)
            .map(|_| {
                let d = s.0.clone();
                std::thread::spawn(move || create(&d, Some("same"), &BTreeMap::new()).unwrap())
            })
            .collect();
        let vs: Vec<Volume> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(vs.iter().all(|v| v.meta == vs[0].meta));
        assert_eq!(list(&s.0).unwrap().len(), 1);
    }

    fn container(root: &Path) -> String {
        let id = names::new_id().unwrap();
        std::fs::create_dir_all(names::containers_dir(root).join(&id)).unwrap();
        id
    }

    #[test]
    fn refs_pin_a_volume_until_the_container_goes() {
        let s = Scratch::new("refs");
        create(&s.0, Some("vol"), &BTreeMap::new()).unwrap();
        let (c1, c2) = (container(&s.0), container(&s.0));
        add_ref(&s.0, "vol", &c1).unwrap();
        add_ref(&s.0, "vol", &c2).unwrap();
        add_ref(&s.0, "vol", &c2).unwrap();
        let mut both = vec![c1.clone(), c2.clone()];
        both.sort();
        assert_eq!(in_use(&s.0, "vol").unwrap(), both);
        let e = remove(&s.0, "vol").unwrap_err().to_string();
        assert!(
            e.contains("volume is in use") && e.contains(&c1) && e.contains(&c2),
            "{e}"
        );
        remove_ref(&s.0, "vol", &c1).unwrap();
        remove_ref(&s.0, "vol", &c1).unwrap();
        assert_eq!(in_use(&s.0, "vol").unwrap(), vec![c2.clone()]);
        // The container's dir is gone: its ref is stale and dropped.
        std::fs::remove_dir(names::containers_dir(&s.0).join(&c2)).unwrap();
        assert!(in_use(&s.0, "vol").unwrap().is_empty());
        assert!(!volumes_dir(&s.0).join("vol/refs").join(&c2).exists());
        remove(&s.0, "vol").unwrap();
        assert!(get(&s.0, "vol").is_err());
        assert!(add_ref(&s.0, "vol", &c1).is_err());
        assert!(add_ref(&s.0, "vol", "../../x").is_err());
        remove_ref(&s.0, "vol", &c1).unwrap();
        assert_eq!(
            remove(&s.0, "vol").unwrap_err().to_string(),
            "get vol: no such volume"
        );
    }

    #[test]
    fn remove_and_add_ref_never_leave_a_ref_to_a_removed_volume() {
        let s = Scratch::new("rmref");
        let c = container(&s.0);
        for round in 0..20 {
            let name = format!("v{round}");
            create(&s.0, Some(&name), &BTreeMap::new()).unwrap();
            let (d1, d2, n1, n2, c1) = (
                s.0.clone(),
                s.0.clone(),
                name.clone(),
                name.clone(),
                c.clone(),
            );
            let rm = std::thread::spawn(move || remove(&d1, &n1).is_ok());
            let add = std::thread::spawn(move || add_ref(&d2, &n2, &c1).is_ok());
            let (removed, added) = (rm.join().unwrap(), add.join().unwrap());
            let exists = get(&s.0, &name).is_ok();
            // Exactly one order happened: rm first (add fails) or add first
            // (rm refused, the volume and its ref stay).
            assert!(
                removed != added,
                "round {round}: removed {removed}, added {added}"
            );
            assert_eq!(exists, added);
            if added {
                assert_eq!(in_use(&s.0, &name).unwrap(), vec![c.clone()]);
            }
        }
    }

    #[test]
    fn prune_takes_unused_anonymous_volumes_or_all_unused() {
        let s = Scratch::new("prune");
        let none = BTreeMap::new();
        create(&s.0, Some("named"), &none).unwrap();
        let a1 = create(&s.0, None, &none).unwrap();
        let a2 = create(&s.0, None, &none).unwrap();
        std::fs::write(a1.mountpoint().join("f"), vec![0u8; 1000]).unwrap();
        let c = container(&s.0);
        add_ref(&s.0, a2.name(), &c).unwrap();
        std::fs::create_dir_all(volumes_dir(&s.0).join(".rm-0123")).unwrap();
        let got = prune(&s.0, false).unwrap();
        assert_eq!(got, vec![(a1.name().to_string(), 1000)]);
        assert!(!volumes_dir(&s.0).join(".rm-0123").exists());
        let got = prune(&s.0, true).unwrap();
        assert_eq!(got, vec![("named".to_string(), 0)]);
        assert_eq!(list(&s.0).unwrap(), vec![a2]);
    }

    #[test]
    fn bind_sources_are_created() {
        let s = Scratch::new("bind");
        let p = s.0.join("a/b");
        ensure_bind_source(&p).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert!(m.is_dir());
        std::fs::write(s.0.join("file"), "x").unwrap();
        ensure_bind_source(&s.0.join("file")).unwrap();
        assert!(std::fs::metadata(s.0.join("file")).unwrap().is_file());
    }

    #[test]
    fn populate_copies_the_image_content_without_leaving_the_rootfs() {
        let s = Scratch::new("populate");
        let rootfs = s.0.join("rootfs");
        let data = rootfs.join("var/data");
        std::fs::create_dir_all(data.join("sub/deeper")).unwrap();
        std::fs::write(data.join("file"), "content").unwrap();
        std::fs::write(data.join("sub/deeper/f2"), "two").unwrap();
        std::fs::set_permissions(data.join("sub"), std::fs::Permissions::from_mode(0o710)).unwrap();
        // A file outside the rootfs, and links in the image pointing at it.
        let outside = s.0.join("host-secret");
        std::fs::write(&outside, "secret").unwrap();
        symlink(&outside, data.join("abs-link")).unwrap();
        symlink("../../../host-secret", data.join("rel-link")).unwrap();
        symlink(s.0.to_str().unwrap(), data.join("dir-link")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            data.join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o640),
            0,
        )
        .unwrap();
        if is_root() {
            std::os::unix::fs::lchown(data.join("file"), Some(1000), Some(1001)).unwrap();
            std::os::unix::fs::lchown(data.join("rel-link"), Some(7), Some(8)).unwrap();
            std::os::unix::fs::chown(&data, Some(999), Some(999)).unwrap();
        }
        // After the chown, which clears set-id bits.
        std::fs::set_permissions(data.join("file"), std::fs::Permissions::from_mode(0o4751))
            .unwrap();
        let old = std::fs::FileTimes::new()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000));
        std::fs::File::options()
            .write(true)
            .open(data.join("sub/deeper/f2"))
            .unwrap()
            .set_times(old)
            .unwrap();
        // An image path that is a link leaving the rootfs resolves inside it.
        symlink("/var/data", rootfs.join("via-link")).unwrap();
        symlink(s.0.to_str().unwrap(), rootfs.join("escape")).unwrap();

        let vol = s.0.join("vol");
        std::fs::create_dir(&vol).unwrap();
        populate(&vol, &rootfs, "/via-link").unwrap();

        let rd = |p: &str| std::fs::read_to_string(vol.join(p)).unwrap();
        assert_eq!(rd("file"), "content");
        assert_eq!(rd("sub/deeper/f2"), "two");
        let meta = |p: &str| std::fs::symlink_metadata(vol.join(p)).unwrap();
        assert_eq!(meta("sub").permissions().mode() & 0o7777, 0o710);
        assert_eq!(meta("sub/deeper/f2").mtime(), 1_000_000);
        assert!(meta("fifo").file_type().is_fifo_like());
        assert_eq!(meta("fifo").permissions().mode() & 0o7777, 0o640);
        // Links copied as links, never followed.
        for (l, t) in [
            ("abs-link", outside.to_str().unwrap()),
            ("rel-link", "../../../host-secret"),
            ("dir-link", s.0.to_str().unwrap()),
        ] {
            assert!(meta(l).file_type().is_symlink(), "{l}");
            assert_eq!(std::fs::read_link(vol.join(l)).unwrap(), Path::new(t));
        }
        if is_root() {
            assert_eq!(meta("file").permissions().mode() & 0o7777, 0o4751);
            assert_eq!((meta("file").uid(), meta("file").gid()), (1000, 1001));
            assert_eq!((meta("rel-link").uid(), meta("rel-link").gid()), (7, 8));
            let top = std::fs::metadata(&vol).unwrap();
            assert_eq!((top.uid(), top.gid()), (999, 999));
        }

        // Not new any more: a second populate changes nothing.
        std::fs::remove_file(vol.join("file")).unwrap();
        populate(&vol, &rootfs, "/var/data").unwrap();
        assert!(!vol.join("file").exists());

        // A destination that is a link out of the rootfs is resolved in
        // it (and is absent there): nothing from the host is copied.
        let vol2 = s.0.join("vol2");
        std::fs::create_dir(&vol2).unwrap();
        populate(&vol2, &rootfs, "/escape").unwrap();
        populate(&vol2, &rootfs, "/nope/x").unwrap();
        populate(&vol2, &rootfs, "/var/data/file").unwrap();
        assert_eq!(std::fs::read_dir(&vol2).unwrap().count(), 0);
    }

    trait FifoLike {
        fn is_fifo_like(&self) -> bool;
    }
    impl FifoLike for std::fs::FileType {
        fn is_fifo_like(&self) -> bool {
            std::os::unix::fs::FileTypeExt::is_fifo(self)
        }
    }
}
