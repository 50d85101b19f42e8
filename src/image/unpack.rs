//! Unpack one layer tarball into a directory ready to be an overlayfs lowerdir.
//!
//! The tar crate only parses (headers, PAX records, GNU long names); every
//! file is made here with *at system calls relative to a descriptor of the
//! destination, each parent opened component by component with O_NOFOLLOW,
//! so no entry of a hostile layer can reach outside it: `..`, absolute
//! paths, parents that are symlinks and hard links out of the layer are
//! refused with an error naming the entry.
//!
//! OCI whiteouts become overlayfs whiteouts (`.wh.NAME`: a 0/0 character
//! device NAME; `.wh..wh..opq`: `trusted.overlay.opaque=y` on the dir), so
//! each layer's directory is a lowerdir as it is.
//!
//! Directories are made 0700 and get their mode and mtimes at the end:
//! filling a directory changes its mtime, and a read-only mode would stop
//! us filling it.

use crate::error::{Error, Result};
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timestamps, XattrFlags, CWD};
use rustix::io::Errno;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::rc::Rc;

/// What an unpack wrote.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Entries written (files, dirs, links, devices, whiteouts).
    pub entries: u64,
    /// Bytes of regular file content.
    pub bytes: u64,
}

/// Longest entry path (Linux's PATH_MAX): a longer one could not be used in
/// a rootfs anyway, and bounds the depth of what a layer can make.
const MAX_PATH: usize = 4096;
/// File content is copied through this buffer.
const COPY_BUF: usize = 256 << 10;
const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
const OVERLAY_OPAQUE: &str = "trusted.overlay.opaque";

/// Unpack the (uncompressed) tar stream `tar` into `dest`, an empty
/// directory: OCI whiteouts become overlay whiteouts; nothing may land
/// outside `dest`. Reads `tar` only up to the end-of-archive marker; the
/// caller drains the rest (the digest covers the padding too).
pub fn unpack(tar: impl Read, dest: &Path) -> Result<Stats> {
    let root = rfs::openat(
        CWD,
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Error::errno(
            format!("layer destination {}", dest.display()),
            e.raw_os_error(),
        )
    })?;
    let slot = Rc::new(RefCell::new(None));
    let mut archive = tar::Archive::new(Tracked {
        inner: tar,
        slot: Rc::clone(&slot),
    });
    let mut u = Unpacker {
        root: Rc::new(root),
        cache: None,
        dirs: BTreeMap::new(),
        stats: Stats::default(),
        buf: vec![0; COPY_BUF],
        slot,
    };
    let entries = archive.entries().map_err(|e| u.read_error(e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| u.read_error(e))?;
        u.entry(&mut entry)?;
    }
    u.finish()?;
    Ok(u.stats)
}

/// The layer stream, keeping its own errors: the tar crate rewords some
/// read errors, and the source's (invalid gzip data, a cut connection, an
/// errno) is the one the user needs.
struct Tracked<R> {
    inner: R,
    slot: Rc<RefCell<Option<io::Error>>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let copy = match e.raw_os_error() {
                Some(n) => io::Error::from_raw_os_error(n),
                None => io::Error::new(e.kind(), e.to_string()),
            };
            *self.slot.borrow_mut() = Some(e);
            copy
        })
    }
}

/// A directory's metadata, applied at the end.
struct DirMeta {
    mode: u32,
    mtime: Timestamps,
}

struct Unpacker {
    /// The destination, opened for reading (xattrs, metadata of `./`).
    root: Rc<OwnedFd>,
    /// The last parent resolved (O_PATH), by path: entries come grouped by
    /// directory, so most need no walk.
    cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
    /// Directories made or updated, by path ("" = the root).
    dirs: BTreeMap<Vec<u8>, DirMeta>,
    stats: Stats,
    buf: Vec<u8>,
    slot: Rc<RefCell<Option<io::Error>>>,
}

/// What an entry makes.
enum Kind {
    File,
    Dir,
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
    Device(FileType, u32, u32),
    Fifo,
}

/// An entry's metadata, PAX records applied.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timestamps,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn entry_error(shown: &str, what: impl std::fmt::Display) -> Error {
    Error::msg(format!("layer entry {shown:?}: {what}"))
}

fn errno_error(shown: &str, op: &str, e: Errno) -> Error {
    Error::errno(format!("layer entry {shown:?}: {op}"), e.raw_os_error())
}

/// The path's components; `.` and empty ones dropped. Refuses what could
/// leave the layer.
fn components(path: &[u8]) -> std::result::Result<Vec<&[u8]>, &'static str> {
    if path.first() == Some(&b'/') {
        return Err("absolute path: escapes the layer");
    }
    if path.len() > MAX_PATH {
        return Err("path too long");
    }
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("escapes the layer"),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn join(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

fn timestamps(secs: i64, nanos: i64) -> Timestamps {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nanos as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// PAX time: "1700000000" or "1700000000.123456789" (maybe negative).
fn pax_time(v: &str) -> Option<Timestamps> {
    let (secs, frac) = match v.split_once('.') {
        Some((s, f)) => (s, f),
        None => (v, ""),
    };
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i64 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.as_bytes().get(i).map_or(0, |d| i64::from(d - b'0'));
    }
    // "-1.5" is 1.5 s before the epoch.
    if v.starts_with('-') && nanos > 0 {
        Some(timestamps(secs - 1, 1_000_000_000 - nanos))
    } else {
        Some(timestamps(secs, nanos))
    }
}

fn is_dir(st: &rfs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

/// `/proc/self/fd/<dir>/<name>`: a path to `name` in `dir` for the calls
/// that have no *at form (lsetxattr), for nodes we cannot open (symlinks,
/// devices, fifos). The final component is not followed.
fn proc_path(dir: &OwnedFd, name: &[u8]) -> Vec<u8> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    p
}

/// Removes `name` in `dir` and all below it (a directory replaced by a
/// non-directory entry), never following symlinks.
fn remove_all(dir: &OwnedFd, name: &[u8]) -> std::result::Result<(), Errno> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut children = Vec::new();
    for e in rfs::Dir::read_from(&fd)? {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            let dir_like = match e.file_type() {
                // Filesystems without d_type: ask.
                FileType::Unknown => {
                    rfs::statat(&fd, n, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| is_dir(&st))
                }
                t => t == FileType::Directory,
            };
            children.push((n.to_vec(), dir_like));
        }
    }
    for (n, dir_like) in children {
        if dir_like {
            remove_all(&fd, &n)?;
        } else {
            rfs::unlinkat(&fd, n.as_slice(), AtFlags::empty())?;
        }
    }
    rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// The tar crate's words for bad data, unless they quote the bad bytes
/// (its header errors print whole fields, newlines and all): one short
/// line either way.
pub fn tar_words(e: &io::Error) -> String {
    let s = e.to_string();
    if s.len() <= 100 && !s.chars().any(char::is_control) {
        return s;
    }
    let head = s.split(':').next().unwrap_or("").trim();
    if head.is_empty() || head.len() > 60 || head.chars().any(char::is_control) {
        "malformed header".to_string()
    } else {
        format!("{head} (malformed header)")
    }
}

impl Unpacker {
    /// Our error for a failed read of the layer stream.
    fn read_error(&self, e: io::Error) -> Error {
        match self.slot.borrow_mut().take() {
            Some(src) => super::decompress::error("layer", src),
            None => Error::msg(format!("layer: invalid tar data: {}", tar_words(&e))),
        }
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let path = e.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&path).into_owned();
        let comps = components(&path).map_err(|why| entry_error(&shown, why))?;
        let ty = e.header().entry_type();
        let kind = match ty {
            tar::EntryType::Regular if path.ends_with(b"/") => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                Kind::File
            }
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                if ty == tar::EntryType::Symlink {
                    Kind::Symlink(target)
                } else {
                    Kind::Hardlink(target)
                }
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let h = e.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let ft = if ty == tar::EntryType::Char {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                Kind::Device(ft, major, minor)
            }
            tar::EntryType::Fifo => Kind::Fifo,
            // A pax global header (git archive writes one): nothing to make.
            tar::EntryType::XGlobalHeader => return Ok(()),
            other => {
                return Err(entry_error(
                    &shown,
                    format!("unsupported entry type {:?}", other.as_byte() as char),
                ))
            }
        };
        let meta = self.meta(e, &shown)?;

        let Some((&name, dirs)) = comps.split_last() else {
            // "./": the layer's root directory itself.
            return match kind {
                Kind::Dir => self.root_dir(meta, &shown),
                _ => Err(entry_error(&shown, "the layer's root must be a directory")),
            };
        };

        if name == OPAQUE {
            return self.opaque(dirs, &shown);
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            if hidden.starts_with(WHITEOUT) {
                // Other `.wh..wh.` names are AUFS bookkeeping (hard-link
                // dirs, plinks): nothing an overlay needs.
                crate::log::debug(&format!("layer entry {shown:?}: AUFS metadata skipped"));
                return Ok(());
            }
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(entry_error(&shown, "invalid whiteout"));
            }
            return self.whiteout(dirs, hidden, &shown);
        }

        if let Kind::Hardlink(t) = &kind {
            if components(t).is_ok_and(|t| t == comps) {
                return Err(entry_error(&shown, "hard link to itself"));
            }
        }
        let parent = self.walk(dirs, true, "", &shown)?;
        let existing_dir = self.clear(&parent, dirs, name, matches!(kind, Kind::Dir), &shown)?;
        match kind {
            Kind::File => self.file(e, &parent, name, &meta, &shown)?,
            Kind::Dir => {
                if !existing_dir {
                    rfs::mkdirat(&*parent, name, Mode::from_raw_mode(0o700))
                        .map_err(|e| errno_error(&shown, "mkdir", e))?;
                }
                rfs::chownat(
                    &*parent,
                    name,
                    uid(meta.uid),
                    gid(meta.gid),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| errno_error(&shown, "chown", e))?;
                if !meta.xattrs.is_empty() {
                    let fd = rfs::openat(
                        &*parent,
                        name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| errno_error(&shown, "open", e))?;
                    for (k, v) in &meta.xattrs {
                        xattr_result(
                            rfs::fsetxattr(&fd, k.as_str(), v, XattrFlags::empty()),
                            k,
                            &shown,
                        )?;
                    }
                }
                self.dirs.insert(
                    join(&comps),
                    DirMeta {
                        mode: meta.mode,
                        mtime: meta.mtime,
                    },
                );
            }
            Kind::Symlink(target) => {
                rfs::symlinkat(target.as_slice(), &*parent, name)
                    .map_err(|e| errno_error(&shown, "symlink", e))?;
                self.node_meta(&parent, name, &meta, false, &shown)?;
            }
            Kind::Hardlink(target) => self.hardlink(&parent, name, &target, &shown)?,
            Kind::Device(ft, major, minor) => {
                rfs::mknodat(
                    &*parent,
                    name,
                    ft,
                    Mode::from_raw_mode(0o600),
                    rfs::makedev(major, minor),
                )
                .map_err(|e| errno_error(&shown, "mknod", e))?;
                self.node_meta(&parent, name, &meta, true, &shown)?;
            }
            Kind::Fifo => {
                rfs::mknodat(
                    &*parent,
                    name,
                    FileType::Fifo,
                    Mode::from_raw_mode(0o600),
                    0,
                )
                .map_err(|e| errno_error(&shown, "mkfifo", e))?;
                self.node_meta(&parent, name, &meta, true, &shown)?;
            }
        }
        self.stats.entries += 1;
        Ok(())
    }

    /// Mode, owner, mtime and xattrs: the header's, with PAX overrides.
    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>, shown: &str) -> Result<Meta> {
        let h = e.header();
        // An empty numeric field is 0, as Go's archive/tar reads it (some
        // writers leave uid/gid blank); anything else unparsable is an error.
        let field = |parsed: io::Result<u64>, raw: &[u8], what: &str| match parsed {
            Ok(v) => Ok(v),
            Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
            Err(_) => Err(entry_error(shown, format!("invalid {what} in header"))),
        };
        let old = h.as_old();
        let mode = field(h.mode().map(u64::from), &old.mode, "mode")? as u32 & 0o7777;
        let mut uid = field(h.uid(), &old.uid, "uid")?;
        let mut gid = field(h.gid(), &old.gid, "gid")?;
        let secs = field(h.mtime(), &old.mtime, "mtime")?;
        let mut mtime = timestamps(i64::try_from(secs).unwrap_or(i64::MAX), 0);
        let mut xattrs = Vec::new();
        if let Some(pax) = e
            .pax_extensions()
            .map_err(|err| entry_error(shown, format!("invalid pax header: {err}")))?
        {
            for rec in pax {
                let rec =
                    rec.map_err(|err| entry_error(shown, format!("invalid pax record: {err}")))?;
                let Ok(key) = rec.key() else { continue };
                let value = rec.value_bytes();
                let num = || -> Result<u64> {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .ok_or_else(|| entry_error(shown, format!("invalid pax {key}")))
                };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    if name.starts_with("trusted.overlay.") {
                        // Ours to set (whiteouts); an image's would change
                        // what the overlay shows.
                        crate::log::debug(&format!("layer entry {shown:?}: xattr {name} dropped"));
                        continue;
                    }
                    xattrs.push((name.to_string(), value.to_vec()));
                } else if key == "uid" {
                    uid = num()?;
                } else if key == "gid" {
                    gid = num()?;
                } else if key == "mtime" {
                    mtime = std::str::from_utf8(value)
                        .ok()
                        .and_then(pax_time)
                        .ok_or_else(|| entry_error(shown, "invalid pax mtime"))?;
                }
            }
        }
        let id = |v: u64, what: &str| {
            u32::try_from(v)
                .ok()
                .filter(|&v| v != u32::MAX)
                .ok_or_else(|| entry_error(shown, format!("{what} {v} out of range")))
        };
        Ok(Meta {
            mode,
            uid: id(uid, "uid")?,
            gid: id(gid, "gid")?,
            mtime,
            xattrs,
        })
    }

    /// Opens the directory `dirs` (O_PATH), component by component, never
    /// following a symlink; missing ones are made 0755 when `create`.
    /// `role` says whose parent it is in errors ("" or "hard link target ").
    fn walk(
        &mut self,
        dirs: &[&[u8]],
        create: bool,
        role: &str,
        shown: &str,
    ) -> Result<Rc<OwnedFd>> {
        if dirs.is_empty() {
            return Ok(Rc::clone(&self.root));
        }
        let key = join(dirs);
        let mut start = 0;
        let mut cur = Rc::clone(&self.root);
        if let Some((k, fd)) = &self.cache {
            if *k == key {
                return Ok(Rc::clone(fd));
            }
            // Descending below the cached dir: start there.
            if key.starts_with(k) && key.get(k.len()) == Some(&b'/') {
                start = k.split(|&b| b == b'/').count();
                cur = Rc::clone(fd);
            }
        }
        for (i, &c) in dirs.iter().enumerate().skip(start) {
            let open = |at: &OwnedFd| {
                rfs::openat(
                    at,
                    c,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            };
            let next = match open(&cur) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    rfs::mkdirat(&*cur, c, Mode::from_raw_mode(0o755))
                        .map_err(|e| errno_error(shown, "mkdir parent", e))?;
                    // Whatever the umask.
                    rfs::chmodat(&*cur, c, Mode::from_raw_mode(0o755), AtFlags::empty())
                        .map_err(|e| errno_error(shown, "chmod parent", e))?;
                    open(&cur).map_err(|e| errno_error(shown, "open parent", e))?
                }
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    let prefix = String::from_utf8_lossy(&join(&dirs[..=i])).into_owned();
                    let symlink = rfs::statat(&*cur, c, AtFlags::SYMLINK_NOFOLLOW)
                        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
                    return Err(if symlink {
                        entry_error(
                            shown,
                            format!("{role}parent {prefix:?} is a symlink: escapes the layer"),
                        )
                    } else {
                        entry_error(shown, format!("{role}parent {prefix:?} is not a directory"))
                    });
                }
                Err(e) => return Err(errno_error(shown, &format!("open {role}parent"), e)),
            };
            cur = Rc::new(next);
        }
        self.cache = Some((key, Rc::clone(&cur)));
        Ok(cur)
    }

    /// Makes room for `name` in `parent`: a later entry replaces an earlier
    /// one, except that a directory over a directory is kept (true) and
    /// only gets the new metadata.
    fn clear(
        &mut self,
        parent: &OwnedFd,
        dirs: &[&[u8]],
        name: &[u8],
        new_is_dir: bool,
        shown: &str,
    ) -> Result<bool> {
        match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(errno_error(shown, "stat", e)),
            Ok(st) if is_dir(&st) => {
                if new_is_dir {
                    return Ok(true);
                }
                remove_all(parent, name).map_err(|e| errno_error(shown, "remove", e))?;
                // Forget what was below it.
                self.cache = None;
                let mut gone = join(dirs);
                if !gone.is_empty() {
                    gone.push(b'/');
                }
                gone.extend_from_slice(name);
                self.dirs.retain(|k, _| {
                    !(k.starts_with(&gone) && matches!(k.get(gone.len()), None | Some(b'/')))
                });
                Ok(false)
            }
            Ok(_) => {
                rfs::unlinkat(parent, name, AtFlags::empty())
                    .map_err(|e| errno_error(shown, "remove", e))?;
                Ok(false)
            }
        }
    }

    fn file<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        parent: &OwnedFd,
        name: &[u8],
        meta: &Meta,
        shown: &str,
    ) -> Result<()> {
        let fd = rfs::openat(
            parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| errno_error(shown, "create", e))?;
        let mut file = std::fs::File::from(fd);
        let want = e.size();
        let mut got = 0u64;
        loop {
            let n = match e.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(self.read_error(err)),
            };
            let chunk = self.buf.get(..n).unwrap_or_default();
            file.write_all(chunk)
                .map_err(|err| match err.raw_os_error() {
                    Some(n) => Error::errno(format!("layer entry {shown:?}: write"), n),
                    None => entry_error(shown, format!("write: {err}")),
                })?;
            got += n as u64;
        }
        if got != want {
            // The tar crate ends an entry quietly at the end of the stream.
            if let Some(src) = self.slot.borrow_mut().take() {
                return Err(super::decompress::error("layer", src));
            }
            return Err(Error::msg(format!(
                "layer: invalid tar data: entry {shown:?} truncated ({got} of {want} bytes)"
            )));
        }
        self.stats.bytes += got;
        // chown clears setuid/setgid: chmod after it.
        rfs::fchown(&file, uid(meta.uid), gid(meta.gid))
            .map_err(|e| errno_error(shown, "chown", e))?;
        rfs::fchmod(&file, Mode::from_raw_mode(meta.mode))
            .map_err(|e| errno_error(shown, "chmod", e))?;
        for (k, v) in &meta.xattrs {
            xattr_result(
                rfs::fsetxattr(&file, k.as_str(), v, XattrFlags::empty()),
                k,
                shown,
            )?;
        }
        rfs::futimens(&file, &meta.mtime).map_err(|e| errno_error(shown, "utimes", e))?;
        Ok(())
    }

    /// Owner, mode (not for symlinks: they have none), xattrs, mtime of a
    /// node we made and cannot open (symlink, device, fifo).
    fn node_meta(
        &self,
        parent: &OwnedFd,
        name: &[u8],
        meta: &Meta,
        chmod: bool,
        shown: &str,
    ) -> Result<()> {
        rfs::chownat(
            parent,
            name,
            uid(meta.uid),
            gid(meta.gid),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| errno_error(shown, "chown", e))?;
        if chmod {
            // We just made it: not a symlink, so following is moot.
            rfs::chmodat(
                parent,
                name,
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )
            .map_err(|e| errno_error(shown, "chmod", e))?;
        }
        if !meta.xattrs.is_empty() {
            let p = proc_path(parent, name);
            for (k, v) in &meta.xattrs {
                xattr_result(
                    rfs::lsetxattr(p.as_slice(), k.as_str(), v, XattrFlags::empty()),
                    k,
                    shown,
                )?;
            }
        }
        rfs::utimensat(parent, name, &meta.mtime, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| errno_error(shown, "utimes", e))?;
        Ok(())
    }

    /// A hard link to an entry already unpacked, found the same safe way.
    fn hardlink(
        &mut self,
        parent: &Rc<OwnedFd>,
        name: &[u8],
        target: &[u8],
        shown: &str,
    ) -> Result<()> {
        let tshown = String::from_utf8_lossy(target).into_owned();
        let tcomps = components(target)
            .map_err(|why| entry_error(shown, format!("hard link target {tshown:?}: {why}")))?;
        let Some((&tname, tdirs)) = tcomps.split_last() else {
            return Err(entry_error(shown, "hard link to the layer's root"));
        };
        // Keep the link's own parent: walking to the target's may replace
        // the cached one, and `parent` is what we link into.
        let tparent = self.walk(tdirs, false, "hard link target ", shown)?;
        let st = rfs::statat(&*tparent, tname, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| errno_error(shown, &format!("hard link target {tshown:?}"), e))?;
        if is_dir(&st) {
            return Err(entry_error(
                shown,
                format!("hard link target {tshown:?} is a directory"),
            ));
        }
        rfs::linkat(&*tparent, tname, &**parent, name, AtFlags::empty())
            .map_err(|e| errno_error(shown, "link", e))
    }

    /// `.wh.NAME`: a 0/0 character device NAME hides NAME of the layers
    /// below.
    fn whiteout(&mut self, dirs: &[&[u8]], hidden: &[u8], shown: &str) -> Result<()> {
        let parent = self.walk(dirs, true, "", shown)?;
        self.clear(&parent, dirs, hidden, false, shown)?;
        rfs::mknodat(
            &*parent,
            hidden,
            FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        )
        .map_err(|e| errno_error(shown, "mknod whiteout", e))?;
        self.stats.entries += 1;
        Ok(())
    }

    /// `.wh..wh..opq`: the directory hides everything of the layers below.
    fn opaque(&mut self, dirs: &[&[u8]], shown: &str) -> Result<()> {
        let set = match dirs.split_last() {
            None => rfs::fsetxattr(&*self.root, OVERLAY_OPAQUE, b"y", XattrFlags::empty()),
            Some((&name, up)) => {
                // Make the directory if the marker comes first.
                self.walk(dirs, true, "", shown)?;
                let parent = self.walk(up, false, "", shown)?;
                rfs::lsetxattr(
                    proc_path(&parent, name).as_slice(),
                    OVERLAY_OPAQUE,
                    b"y",
                    XattrFlags::empty(),
                )
            }
        };
        set.map_err(|e| errno_error(shown, "set opaque xattr", e))?;
        self.stats.entries += 1;
        Ok(())
    }

    fn root_dir(&mut self, meta: Meta, shown: &str) -> Result<()> {
        rfs::fchown(&*self.root, uid(meta.uid), gid(meta.gid))
            .map_err(|e| errno_error(shown, "chown", e))?;
        for (k, v) in &meta.xattrs {
            xattr_result(
                rfs::fsetxattr(&*self.root, k.as_str(), v, XattrFlags::empty()),
                k,
                shown,
            )?;
        }
        self.dirs.insert(
            Vec::new(),
            DirMeta {
                mode: meta.mode,
                mtime: meta.mtime,
            },
        );
        self.stats.entries += 1;
        Ok(())
    }

    /// Directories' modes and mtimes, now that nothing more goes into them.
    fn finish(&mut self) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        for (path, m) in dirs {
            let shown = String::from_utf8_lossy(&path).into_owned();
            let comps: Vec<&[u8]> = path
                .split(|&b| b == b'/')
                .filter(|c| !c.is_empty())
                .collect();
            let Some((&name, up)) = comps.split_last() else {
                rfs::fchmod(&*self.root, Mode::from_raw_mode(m.mode))
                    .map_err(|e| errno_error(&shown, "chmod", e))?;
                rfs::futimens(&*self.root, &m.mtime)
                    .map_err(|e| errno_error(&shown, "utimes", e))?;
                continue;
            };
            // A later entry may have replaced it or a parent: skip then.
            let Ok(parent) = self.walk(up, false, "", &shown) else {
                continue;
            };
            match rfs::statat(&*parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if is_dir(&st) => {}
                _ => continue,
            }
            rfs::chmodat(
                &*parent,
                name,
                Mode::from_raw_mode(m.mode),
                AtFlags::empty(),
            )
            .map_err(|e| errno_error(&shown, "chmod", e))?;
            rfs::utimensat(&*parent, name, &m.mtime, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| errno_error(&shown, "utimes", e))?;
        }
        Ok(())
    }
}

fn uid(v: u32) -> Option<rustix::fs::Uid> {
    Some(rustix::fs::Uid::from_raw(v))
}

fn gid(v: u32) -> Option<rustix::fs::Gid> {
    Some(rustix::fs::Gid::from_raw(v))
}

/// Filesystems without (some) xattrs, and user.* xattrs on symlinks and
/// devices (which Linux refuses), are skipped as docker skips them; any
/// other failure fails the layer.
fn xattr_result(r: std::result::Result<(), Errno>, name: &str, shown: &str) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e @ (Errno::NOTSUP | Errno::PERM)) => {
            crate::log::debug(&format!(
                "layer entry {shown:?}: xattr {name} not set: {}",
                crate::error::errno_text(e.raw_os_error())
            ));
            Ok(())
        }
        Err(e) => Err(errno_error(shown, &format!("xattr {name}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tar::{Builder, EntryType, Header};

    static SEQ: AtomicUsize = AtomicUsize::new(0);

    /// A hostile-input case: name, what the layer holds, the error wanted.
    type Case = (&'static str, fn(&mut T), &'static str);

    /// `outer/` holds `dest/` (where layers go) and `outside`, a file a
    /// hostile layer would like to overwrite. Removed on drop.
    struct Tmp {
        outer: PathBuf,
    }

    impl Tmp {
        fn new() -> Tmp {
            let outer = std::env::temp_dir().join(format!(
                "runway-unpack-test-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&outer);
            fs::create_dir_all(outer.join("dest")).unwrap();
            fs::write(outer.join("outside"), "untouched").unwrap();
            Tmp { outer }
        }
        fn dest(&self) -> PathBuf {
            self.outer.join("dest")
        }
        fn p(&self, rel: &str) -> PathBuf {
            self.dest().join(rel)
        }
        fn meta(&self, rel: &str) -> fs::Metadata {
            fs::symlink_metadata(self.p(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
        }
        /// Nothing but dest/ and the untouched `outside` next to it.
        fn assert_outside_untouched(&self) {
            let mut names: Vec<String> = fs::read_dir(&self.outer)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert_eq!(names, ["dest", "outside"]);
            assert_eq!(
                fs::read_to_string(self.outer.join("outside")).unwrap(),
                "untouched"
            );
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.outer);
        }
    }

    fn root() -> bool {
        let yes = rustix::process::geteuid().is_root();
        if !yes {
            eprintln!(
                "skipped: {}: needs root",
                std::thread::current().name().unwrap_or("?")
            );
        }
        yes
    }

    fn header(ty: EntryType, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(ty);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        h
    }

    /// A tar builder with helpers for each kind.
    struct T(Builder<Vec<u8>>);

    impl T {
        fn new() -> T {
            T(Builder::new(Vec::new()))
        }
        fn file(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
            let mut h = header(EntryType::Regular, mode);
            h.set_size(data.len() as u64);
            self.0.append_data(&mut h, path, data).unwrap();
            self
        }
        fn with(&mut self, path: &str, mut h: Header, data: &[u8]) -> &mut Self {
            h.set_size(data.len() as u64);
            self.0.append_data(&mut h, path, data).unwrap();
            self
        }
        fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
            let mut h = header(EntryType::Directory, mode);
            self.0.append_data(&mut h, path, &[][..]).unwrap();
            self
        }
        fn link(&mut self, ty: EntryType, path: &str, target: &str) -> &mut Self {
            let mut h = header(ty, 0o777);
            self.0.append_link(&mut h, path, target).unwrap();
            self
        }
        fn dev(&mut self, ty: EntryType, path: &str, major: u32, minor: u32) -> &mut Self {
            let mut h = header(ty, 0o640);
            h.set_device_major(major).unwrap();
            h.set_device_minor(minor).unwrap();
            self.0.append_data(&mut h, path, &[][..]).unwrap();
            self
        }
        fn pax(&mut self, recs: &[(&str, &[u8])]) -> &mut Self {
            self.0.append_pax_extensions(recs.iter().copied()).unwrap();
            self
        }
        /// An entry with its name (and link name) written byte for byte:
        /// the tar crate's builder refuses `..` and absolute paths.
        fn raw(&mut self, ty: EntryType, name: &str, link: &str, data: &[u8]) -> &mut Self {
            let mut h = header(ty, 0o644);
            h.set_size(data.len() as u64);
            let old = h.as_old_mut();
            old.name = [0; 100];
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_cksum();
            self.0.append(&h, data).unwrap();
            self
        }
        fn bytes(&mut self) -> Vec<u8> {
            self.0.finish().unwrap();
            self.0.get_ref().clone()
        }
    }

    fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        let n = rfs::lgetxattr(path, name, &mut buf[..]).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    #[test]
    fn tar_words_never_quote_a_header() {
        let e = io::Error::other(
            "numeric field was not a number: login\nsy when getting cksum for root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1",
        );
        assert_eq!(
            tar_words(&e),
            "numeric field was not a number (malformed header)"
        );
        assert_eq!(
            tar_words(&io::Error::other("unexpected EOF")),
            "unexpected EOF"
        );
        assert_eq!(
            tar_words(&io::Error::other("\n".repeat(200))),
            "malformed header"
        );
    }

    #[test]
    fn every_kind_with_its_metadata() {
        if !root() {
            return;
        }
        let t = Tmp::new();
        let mut h = header(EntryType::Regular, 0o640);
        h.set_uid(1000);
        h.set_gid(1001);
        h.set_mtime(1_234_567_890);
        let tar = T::new()
            .dir("d", 0o750)
            .with("d/f", h, b"hello")
            .link(EntryType::Symlink, "d/sym", "../nowhere/at/all")
            .link(EntryType::Link, "d/hard", "d/f")
            .dev(EntryType::Char, "c", 1, 3)
            .dev(EntryType::Block, "b", 7, 1)
            .with("fifo", header(EntryType::Fifo, 0o600), b"")
            .pax(&[("SCHILY.xattr.user.k", b"v\0bin")])
            .file("x", b"", 0o644)
            .bytes();
        let stats = unpack(&tar[..], &t.dest()).unwrap();
        assert_eq!(stats.entries, 8);
        assert_eq!(stats.bytes, 5);

        let f = t.meta("d/f");
        assert_eq!(fs::read(t.p("d/f")).unwrap(), b"hello");
        assert_eq!(
            (f.mode() & 0o7777, f.uid(), f.gid(), f.mtime()),
            (0o640, 1000, 1001, 1_234_567_890)
        );
        assert_eq!(f.nlink(), 2);
        assert_eq!(t.meta("d/hard").ino(), f.ino());
        assert_eq!(
            fs::read_link(t.p("d/sym")).unwrap(),
            PathBuf::from("../nowhere/at/all")
        );
        assert_eq!(t.meta("d/sym").mtime(), 1_600_000_000);
        let d = t.meta("d");
        assert!(d.is_dir());
        assert_eq!((d.mode() & 0o7777, d.mtime()), (0o750, 1_600_000_000));
        let c = t.meta("c");
        assert!(c.file_type().is_char_device());
        assert_eq!((c.rdev(), c.mode() & 0o7777), (rfs::makedev(1, 3), 0o640));
        assert!(t.meta("b").file_type().is_block_device());
        assert_eq!(t.meta("b").rdev(), rfs::makedev(7, 1));
        assert!(t.meta("fifo").file_type().is_fifo());
        assert_eq!(xattr(&t.p("x"), "user.k").as_deref(), Some(&b"v\0bin"[..]));
        t.assert_outside_untouched();
    }

    #[test]
    fn setuid_setgid_sticky_survive_chown() {
        if !root() {
            return;
        }
        let t = Tmp::new();
        let mut h = header(EntryType::Regular, 0o4755);
        h.set_uid(1000);
        h.set_gid(1000);
        let mut g = header(EntryType::Directory, 0o2775);
        g.set_gid(50);
        let tar = T::new()
            .with("suid", h, b"#!/bin/sh\n")
            .with("sgid-dir", g, b"")
            .dir("sticky", 0o1777)
            .file("sgid-dir/inside", b"", 0o2711)
            .bytes();
        unpack(&tar[..], &t.dest()).unwrap();
        assert_eq!(t.meta("suid").mode() & 0o7777, 0o4755);
        assert_eq!(t.meta("suid").uid(), 1000);
        assert_eq!(t.meta("sgid-dir").mode() & 0o7777, 0o2775);
        assert_eq!(t.meta("sticky").mode() & 0o7777, 0o1777);
        assert_eq!(t.meta("sgid-dir/inside").mode() & 0o7777, 0o2711);
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        if !root() {
            return;
        }
        let t = Tmp::new();
        let tar = T::new()
            .file(".wh.gone", b"", 0o644)
            .file("deep/er/.wh.file", b"", 0o644)
            .dir("opq", 0o755)
            .file("opq/.wh..wh..opq", b"", 0o644)
            .file("opq/new", b"n", 0o644)
            // The marker before its dir: the dir is made for it.
            .file("later/.wh..wh..opq", b"", 0o644)
            .file(".wh..wh.plnk", b"", 0o644)
            .file(".wh..wh.aufs", b"", 0o644)
            .pax(&[
                ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
                ("SCHILY.xattr.user.kept", b"1"),
            ])
            .dir("not-opaque", 0o755)
            .bytes();
        let stats = unpack(&tar[..], &t.dest()).unwrap();
        assert_eq!(stats.entries, 7);
        for w in ["gone", "deep/er/file"] {
            let m = t.meta(w);
            assert!(m.file_type().is_char_device(), "{w}");
            assert_eq!(m.rdev(), 0, "{w}");
        }
        assert_eq!(t.meta("deep").mode() & 0o7777, 0o755);
        assert_eq!(
            xattr(&t.p("opq"), "trusted.overlay.opaque").as_deref(),
            Some(&b"y"[..])
        );
        assert_eq!(
            xattr(&t.p("later"), "trusted.overlay.opaque").as_deref(),
            Some(&b"y"[..])
        );
        assert!(t.meta("later").is_dir());
        assert!(t.p("opq/new").exists());
        assert!(!t.p(".wh..wh.plnk").exists() && !t.p("opq/.wh..wh..opq").exists());
        // An image's own trusted.overlay.* xattrs are dropped, others kept.
        assert_eq!(xattr(&t.p("not-opaque"), "trusted.overlay.opaque"), None);
        assert_eq!(
            xattr(&t.p("not-opaque"), "user.kept").as_deref(),
            Some(&b"1"[..])
        );
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        if !root() {
            return;
        }
        let t = Tmp::new();
        let mut d2 = header(EntryType::Directory, 0o711);
        d2.set_uid(5);
        let tar = T::new()
            .file("f", b"one", 0o644)
            .link(EntryType::Symlink, "f", "elsewhere")
            .dir("d", 0o755)
            .file("d/a", b"a", 0o644)
            .dir("d/sub", 0o755)
            .file("d/sub/b", b"b", 0o644)
            .file("d", b"now a file", 0o600)
            .link(EntryType::Symlink, "s", "f")
            .dir("s", 0o700)
            .dir("keep", 0o755)
            .file("keep/x", b"x", 0o644)
            .with("keep", d2, b"")
            .file("h1", b"first", 0o644)
            .link(EntryType::Link, "h2", "h1")
            .file("h1", b"second", 0o644)
            .bytes();
        unpack(&tar[..], &t.dest()).unwrap();
        assert_eq!(fs::read_link(t.p("f")).unwrap(), PathBuf::from("elsewhere"));
        assert_eq!(fs::read(t.p("d")).unwrap(), b"now a file");
        assert!(t.meta("s").is_dir());
        let k = t.meta("keep");
        assert_eq!((k.mode() & 0o7777, k.uid()), (0o711, 5));
        assert!(t.p("keep/x").exists());
        // h2 keeps the first inode; h1 is a new file.
        assert_eq!(fs::read(t.p("h2")).unwrap(), b"first");
        assert_eq!(fs::read(t.p("h1")).unwrap(), b"second");
        assert_eq!(t.meta("h2").nlink(), 1);
    }

    #[test]
    fn dot_slash_names_parents_and_the_root_entry() {
        if !root() {
            return;
        }
        let t = Tmp::new();
        let tar = T::new()
            .raw(EntryType::Directory, "./", "", b"")
            .raw(EntryType::Regular, "./a/b/c", "", b"abc")
            .raw(EntryType::Regular, "a//./d", "", b"d")
            .raw(EntryType::Regular, "old-style-dir/", "", b"")
            .bytes();
        // The root entry asks 0644 (header()): a dir with that mode is
        // still ours to fill, as the modes come at the end.
        unpack(&tar[..], &t.dest()).unwrap();
        assert_eq!(t.meta("").mode() & 0o7777, 0o644);
        assert_eq!(fs::read(t.p("a/b/c")).unwrap(), b"abc");
        assert_eq!(fs::read(t.p("a/d")).unwrap(), b"d");
        assert_eq!(t.meta("a/b").mode() & 0o7777, 0o755);
        assert!(t.meta("old-style-dir").is_dir());
    }

    #[test]
    fn pax_overrides_owner_and_mtime() {
        if !root() {
            return;
        }
        let t = Tmp::new();
        let long = format!("{}/{}", "p".repeat(200), "q".repeat(200));
        let tar = T::new()
            .pax(&[
                ("uid", b"3000000"),
                ("gid", b"3000001"),
                ("mtime", b"1700000000.25"),
            ])
            .file("big-ids", b"", 0o644)
            .pax(&[("path", long.as_bytes())])
            .file("short", b"long name", 0o644)
            .bytes();
        unpack(&tar[..], &t.dest()).unwrap();
        let m = t.meta("big-ids");
        assert_eq!((m.uid(), m.gid()), (3_000_000, 3_000_001));
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_700_000_000, 250_000_000));
        assert_eq!(fs::read(t.p(&long)).unwrap(), b"long name");
    }

    /// Every way out of the layer, each refused with the entry named, and
    /// nothing written outside.
    #[test]
    fn tar_slip_refused() {
        if !root() {
            return;
        }
        let cases: &[Case] = &[
            (
                "dotdot",
                |t| {
                    t.raw(EntryType::Regular, "../outside", "", b"pwned");
                },
                r#"layer entry "../outside": escapes the layer"#,
            ),
            (
                "inner dotdot",
                |t| {
                    t.raw(EntryType::Regular, "a/../../outside", "", b"pwned");
                },
                r#"layer entry "a/../../outside": escapes the layer"#,
            ),
            (
                "absolute",
                |t| {
                    t.raw(EntryType::Regular, "/tmp/pwned", "", b"pwned");
                },
                r#"layer entry "/tmp/pwned": absolute path: escapes the layer"#,
            ),
            (
                "symlinked parent",
                |t| {
                    t.raw(EntryType::Symlink, "up", "..", b"");
                    t.raw(EntryType::Regular, "up/outside", "", b"pwned");
                },
                r#"layer entry "up/outside": parent "up" is a symlink: escapes the layer"#,
            ),
            (
                "symlinked deeper parent",
                |t| {
                    t.raw(EntryType::Directory, "a/", "", b"");
                    t.raw(EntryType::Symlink, "a/b", "/", b"");
                    t.raw(EntryType::Regular, "a/b/c/pwned", "", b"pwned");
                },
                r#"layer entry "a/b/c/pwned": parent "a/b" is a symlink: escapes the layer"#,
            ),
            (
                "hard link out",
                |t| {
                    t.raw(EntryType::Link, "h", "../outside", b"");
                },
                r#"layer entry "h": hard link target "../outside": escapes the layer"#,
            ),
            (
                "hard link absolute",
                |t| {
                    t.raw(EntryType::Link, "h", "/etc/passwd", b"");
                },
                r#"layer entry "h": hard link target "/etc/passwd": absolute path: escapes the layer"#,
            ),
            (
                "hard link through symlink",
                |t| {
                    t.raw(EntryType::Symlink, "up", "..", b"");
                    t.raw(EntryType::Link, "h", "up/outside", b"");
                },
                r#"layer entry "h": hard link target parent "up" is a symlink: escapes the layer"#,
            ),
            (
                "whiteout dotdot",
                |t| {
                    t.raw(EntryType::Regular, ".wh...", "", b"");
                },
                r#"layer entry ".wh...": invalid whiteout"#,
            ),
            (
                "whiteout through symlink",
                |t| {
                    t.raw(EntryType::Symlink, "up", "..", b"");
                    t.raw(EntryType::Regular, "up/.wh.outside", "", b"");
                },
                r#"layer entry "up/.wh.outside": parent "up" is a symlink: escapes the layer"#,
            ),
            (
                "opaque through symlink",
                |t| {
                    t.raw(EntryType::Symlink, "up", "..", b"");
                    t.raw(EntryType::Regular, "up/.wh..wh..opq", "", b"");
                },
                r#"layer entry "up/.wh..wh..opq": parent "up" is a symlink: escapes the layer"#,
            ),
            (
                "file under a file",
                |t| {
                    t.raw(EntryType::Regular, "f", "", b"");
                    t.raw(EntryType::Regular, "f/x", "", b"");
                },
                r#"layer entry "f/x": parent "f" is not a directory"#,
            ),
        ];
        for (what, build, want) in cases {
            let t = Tmp::new();
            let mut b = T::new();
            build(&mut b);
            let err = unpack(&b.bytes()[..], &t.dest()).expect_err(what);
            assert_eq!(err.to_string(), *want, "{what}");
            t.assert_outside_untouched();
        }
    }

    #[test]
    fn bad_hard_links_and_types_are_errors() {
        if !root() {
            return;
        }
        let cases: &[Case] = &[
            (
                "missing target",
                |t| {
                    t.raw(EntryType::Link, "h", "nope", b"");
                },
                r#"layer entry "h": hard link target "nope": no such file or directory"#,
            ),
            (
                "missing target dir",
                |t| {
                    t.raw(EntryType::Link, "h", "no/pe", b"");
                },
                r#"layer entry "h": open hard link target parent: no such file or directory"#,
            ),
            (
                "to a dir",
                |t| {
                    t.raw(EntryType::Directory, "d/", "", b"");
                    t.raw(EntryType::Link, "h", "d", b"");
                },
                r#"layer entry "h": hard link target "d" is a directory"#,
            ),
            (
                "to itself",
                |t| {
                    t.raw(EntryType::Regular, "f", "", b"");
                    t.raw(EntryType::Link, "./f", "f", b"");
                },
                r#"layer entry "./f": hard link to itself"#,
            ),
            (
                "root as a file",
                |t| {
                    t.raw(EntryType::Symlink, ".", "/", b"");
                },
                r#"layer entry ".": the layer's root must be a directory"#,
            ),
            (
                "unknown type",
                |t| {
                    t.raw(EntryType::new(b'V'), "label", "", b"");
                },
                r#"layer entry "label": unsupported entry type 'V'"#,
            ),
        ];
        for (what, build, want) in cases {
            let t = Tmp::new();
            let mut b = T::new();
            build(&mut b);
            let err = unpack(&b.bytes()[..], &t.dest()).expect_err(what);
            assert_eq!(err.to_string(), *want, "{what}");
            t.assert_outside_untouched();
        }
    }

    /// A symlink to outside stays a symlink; entries replacing it do not
    /// follow it.
    #[test]
    fn symlinks_are_never_followed() {
        if !root() {
            return;
        }
        let t = Tmp::new();
        let tar = T::new()
            .raw(EntryType::Symlink, "out", "../outside", b"")
            .raw(EntryType::Regular, "out", "", b"replaced")
            .raw(EntryType::Symlink, "out2", "../outside", b"")
            .raw(EntryType::Directory, "out2/", "", b"")
            .raw(EntryType::Symlink, "out3", "../outside", b"")
            .raw(EntryType::Regular, ".wh.out3", "", b"")
            .raw(EntryType::Symlink, "out4", "../outside", b"")
            .raw(EntryType::Link, "h", "out4", b"")
            .bytes();
        unpack(&tar[..], &t.dest()).unwrap();
        assert_eq!(fs::read(t.p("out")).unwrap(), b"replaced");
        assert!(t.meta("out2").is_dir());
        assert!(t.meta("out3").file_type().is_char_device());
        assert!(t.meta("h").file_type().is_symlink());
        t.assert_outside_untouched();
    }

    #[test]
    fn broken_input_is_an_error_not_a_panic() {
        let t = Tmp::new();
        let good = T::new()
            .file("a", &[7u8; 3000], 0o644)
            .dir("d", 0o755)
            .file("d/b", b"b", 0o644)
            .bytes();
        // Empty input: an empty layer.
        assert_eq!(unpack(&b""[..], &t.dest()).unwrap().entries, 0);
        // Truncated inside a file's data.
        let err = unpack(&good[..1500], &t.dest()).unwrap_err().to_string();
        assert!(
            err.contains("truncated") || err.contains("invalid tar data"),
            "{err}"
        );
        // A corrupt header checksum.
        let mut bad = good.clone();
        bad[148] ^= 1;
        let err = unpack(&bad[..], &t.dest()).unwrap_err().to_string();
        assert!(err.starts_with("layer: invalid tar data"), "{err}");
        // Byte flips in the three headers (at 0, 3584, 4096): errors or
        // not, no panic and nothing outside.
        for i in [0, 3584, 4096]
            .into_iter()
            .flat_map(|h| (h..h + 300).step_by(3))
        {
            let t = Tmp::new();
            let mut m = good.clone();
            m[i] ^= 0x5a;
            let _ = unpack(&m[..], &t.dest());
            t.assert_outside_untouched();
        }
    }

    #[test]
    fn source_errors_name_the_fault() {
        let t = Tmp::new();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&T::new().file("a", &[1u8; 100_000], 0o644).bytes())
            .unwrap();
        let mut blob = gz.finish().unwrap();
        blob.truncate(blob.len() / 2);
        let r = super::super::decompress::reader(
            super::super::decompress::Compression::Gzip,
            &blob[..],
        );
        let err = unpack(r, &t.dest()).unwrap_err().to_string();
        assert!(err.starts_with("layer: invalid gzip data: "), "{err}");
    }

    #[test]
    fn pax_time_parses() {
        let t = |s: &str| {
            pax_time(s).map(|t| (t.last_modification.tv_sec, t.last_modification.tv_nsec))
        };
        assert_eq!(t("12"), Some((12, 0)));
        assert_eq!(t("12.5"), Some((12, 500_000_000)));
        assert_eq!(t("12.1234567891"), Some((12, 123_456_789)));
        assert_eq!(t("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(t("x"), None);
        assert_eq!(t("1.x"), None);
    }

    #[test]
    fn dest_must_exist() {
        let err = unpack(&b""[..], Path::new("/nonexistent/runway/x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer destination /nonexistent/runway/x: no such file or directory"
        );
    }
}
