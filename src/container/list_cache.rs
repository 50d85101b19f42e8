//! What `list` last read from every state dir under a root, kept in one
//! file: listing a thousand containers is then one read, not a readlinkat
//! per container.
//!
//! It holds while the root directory is unchanged. Every create and delete
//! adds or removes an entry there, which moves the directory's mtime and
//! ctime; what `list` prints of a finished container never changes after
//! create (see `state::BRIEF_LINK`). A state dir not yet finished is kept
//! as pending and read again each time. `delete` drops the cache before it
//! removes anything, so a delete killed half-way is listed as a scan would.
//!
//! Timestamps have a granularity (a jiffy, when coarse): a change in the
//! tick the cache was taken in could leave the mtime as it was. So, as git
//! does for its index, the cache is only written when the root was last
//! changed strictly before a timestamp the same filesystem gave before the
//! root was read (the tmp file's): any change the scan missed is newer.
//! Only on local filesystems that keep directory timestamps themselves,
//! and only for roots of KEEP_FROM state dirs or more: in `.list~`.

use super::brief::{Brief, Seen};
use super::state::{read_fd, validate_id};
use rustix::fs::{AtFlags, Mode, OFlags};
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::os::fd::OwnedFd;

/// Not a valid container id, so no container can take its place.
const DIR: &CStr = c".list~";
const CACHE: &CStr = c".list~/cache";
const TMP: &CStr = c"cache.tmp";
const CACHE_NAME: &CStr = c"cache";
const MAGIC: &str = "runway-list-cache 1";
/// Below this many state dirs a scan costs no more than starting the
/// process did, and the root is left as runc would leave it.
const KEEP_FROM: usize = 64;

/// Whether the root at `rootfd` may have a cache (the caller asks once,
/// before `load`, `Writer::start` and `keep`): tmpfs, ext2/3/4, xfs and
/// btrfs move a directory's times themselves on every entry added or
/// removed (not so NFS or FUSE).
pub(super) fn trusted_fs(rootfd: &OwnedFd) -> bool {
    const KINDS: [i64; 4] = [0x0102_1994, 0xEF53, 0x5846_5342, 0x9123_683E];
    rustix::fs::fstatfs(rootfd).is_ok_and(|s| KINDS.contains(&s.f_type))
}

/// What identifies one version of the root directory: device, inode,
/// mtime, ctime, link count (one per subdir) and size.
#[derive(PartialEq, Eq)]
struct Key([i64; 8]);

impl Key {
    fn of(rootfd: &OwnedFd) -> Option<Key> {
        let s = rustix::fs::fstat(rootfd).ok()?;
        Some(Key([
            s.st_dev as i64,
            s.st_ino as i64,
            s.st_mtime as i64,
            s.st_mtime_nsec as i64,
            s.st_ctime as i64,
            s.st_ctime_nsec as i64,
            s.st_nlink as i64,
            s.st_size as i64,
        ]))
    }

    /// The later of the root's mtime and ctime.
    fn changed(&self) -> (i64, i64) {
        let [_, _, ms, mn, cs, cn, _, _] = self.0;
        (ms, mn).max((cs, cn))
    }

    fn header(&self, count: usize) -> String {
        let mut h = String::from(MAGIC);
        for n in self.0 {
            h.push(' ');
            h.push_str(&n.to_string());
        }
        h.push(' ');
        h.push_str(&count.to_string());
        h.push('\n');
        h
    }
}

/// The state dirs under the root, in id order, when the cache holds for
/// the root as it is now.
pub(super) fn load(rootfd: &OwnedFd) -> Option<Vec<Seen>> {
    let key = Key::of(rootfd)?;
    let fd = rustix::fs::openat(
        rootfd,
        CACHE,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .ok()?;
    // A stale cache is told by its first line alone.
    let mut head = [0u8; 256];
    let got = rustix::io::pread(&fd, &mut head[..], 0).ok()?;
    let got = head.get(..got)?;
    let nl = memchr::memchr(b'\n', got)?;
    header_count(got.get(..=nl)?, &key)?;
    let size = rustix::fs::fstat(&fd).ok()?.st_size;
    let mut data = Vec::with_capacity(usize::try_from(size).ok()?.saturating_add(4097));
    read_fd(&fd, &mut data).ok()?;
    decode(&data, &key)
}

fn decode(data: &[u8], key: &Key) -> Option<Vec<Seen>> {
    let nl = memchr::memchr(b'\n', data)?;
    let count = header_count(data.get(..=nl)?, key)?;
    let mut f = Fields(data.get(nl + 1..)?);
    // Each record takes at least 4 bytes: no count can make this huge.
    let mut out = Vec::with_capacity(count.min(data.len() / 4));
    for _ in 0..count {
        let kind = f.next()?;
        let id = f.next()?;
        validate_id(id).ok()?;
        out.push(match kind {
            "P" => Seen::Pending(id.to_owned()),
            "D" => {
                let (pid, start_time, owner) = (f.next()?, f.next()?, f.next()?);
                let (bundle, rootfs, created) = (f.next()?, f.next()?, f.next()?);
                let (freeze_file, annotations) = (f.next()?, f.next()?);
                Seen::Done(Brief {
                    id: id.to_owned(),
                    pid: pid.parse().ok()?,
                    start_time: start_time.parse().ok()?,
                    created_done: Some(true),
                    owner: match owner {
                        "" => None,
                        u => Some(u.parse().ok()?),
                    },
                    bundle: bundle.to_owned(),
                    rootfs: rootfs.to_owned(),
                    created: created.to_owned(),
                    freeze_file: (!freeze_file.is_empty()).then(|| freeze_file.to_owned()),
                    annotations: match annotations {
                        "" => BTreeMap::new(),
                        a => serde_json::from_str(a).ok()?,
                    },
                })
            }
            _ => return None,
        });
    }
    f.0.is_empty().then_some(out)
}

/// The record count a cache's first line gives, when that line is the
/// one `key` makes.
fn header_count(line: &[u8], key: &Key) -> Option<usize> {
    let line = std::str::from_utf8(line).ok()?;
    let count: usize = line.trim_end().rsplit(' ').next()?.parse().ok()?;
    (line == key.header(count)).then_some(count)
}

/// For the fuzzer: `data` as a cache for the key its own header names.
/// Whatever decodes must encode, and decode and encode again to the same
/// bytes.
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) {
    let Some(nl) = memchr::memchr(b'\n', data) else {
        return;
    };
    let line = String::from_utf8_lossy(data.get(..nl).unwrap_or_default()).into_owned();
    let mut nums = line
        .strip_prefix(MAGIC)
        .unwrap_or_default()
        .split(' ')
        .skip(1);
    let mut key = Key([0; 8]);
    for k in key.0.iter_mut() {
        match nums.next().map(str::parse) {
            Some(Ok(n)) => *k = n,
            _ => return,
        }
    }
    let Some(seen) = decode(data, &key) else {
        return;
    };
    let once = encode(&key, &seen).expect("a decoded cache encodes");
    let again = decode(&once, &key).expect("an encoded cache decodes");
    assert_eq!(encode(&key, &again).as_ref(), Some(&once));
}

/// NUL-terminated UTF-8 fields.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let end = memchr::memchr(0, self.0)?;
        let field = self.0.get(..end)?;
        self.0 = self.0.get(end + 1..)?;
        std::str::from_utf8(field).ok()
    }
}

/// `seen` as cache records after `key`'s header; None when a field holds
/// a NUL (no real path does) or the annotations don't encode.
fn encode(key: &Key, seen: &[Seen]) -> Option<Vec<u8>> {
    let mut out = key.header(seen.len()).into_bytes();
    let put = |out: &mut Vec<u8>, s: &str| {
        if memchr::memchr(0, s.as_bytes()).is_some() {
            return None;
        }
        out.extend_from_slice(s.as_bytes());
        out.push(0);
        Some(())
    };
    for s in seen {
        match s {
            Seen::Pending(id) => {
                put(&mut out, "P")?;
                put(&mut out, id)?;
            }
            Seen::Done(f) => {
                let annotations = if f.annotations.is_empty() {
                    String::new()
                } else {
                    serde_json::to_string(&f.annotations).ok()?
                };
                let owner = f.owner.map(|u| u.to_string()).unwrap_or_default();
                for field in [
                    "D",
                    &f.id,
                    &f.pid.to_string(),
                    &f.start_time.to_string(),
                    &owner,
                    &f.bundle,
                    &f.rootfs,
                    &f.created,
                    f.freeze_file.as_deref().unwrap_or(""),
                    &annotations,
                ] {
                    put(&mut out, field)?;
                }
            }
        }
    }
    Some(out)
}

/// A cache being rewritten by a scan. Taken before the scan reads the
/// root: the tmp file's timestamp is the scan's start by the filesystem's
/// own clock, and the root's key is read after it.
pub(super) struct Writer {
    dir: OwnedFd,
    tmp: OwnedFd,
    key: Key,
    stamp: (i64, i64),
}

impl Writer {
    /// None when the cache can't be written here (no cache dir yet, a
    /// read-only root, another `list` writing it now): list scans anyway.
    pub(super) fn start(rootfd: &OwnedFd) -> Option<Writer> {
        let dir = rustix::fs::openat(
            rootfd,
            DIR,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .ok()?;
        // Held until the Writer drops; a writer killed mid-way leaves at
        // most the tmp file, which the next one truncates.
        rustix::fs::flock(&dir, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
        let tmp = rustix::fs::openat(
            &dir,
            TMP,
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::RUSR | Mode::WUSR,
        )
        .ok()?;
        let now = rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_NOW,
        };
        let times = rustix::fs::Timestamps {
            last_access: now,
            last_modification: now,
        };
        rustix::fs::futimens(&tmp, &times).ok()?;
        let st = rustix::fs::fstat(&tmp).ok()?;
        let stamp = (st.st_mtime as i64, st.st_mtime_nsec as i64);
        let key = Key::of(rootfd)?;
        Some(Writer {
            dir,
            tmp,
            key,
            stamp,
        })
    }

    /// Replace the cache with `seen`, what the scan found; or, when the
    /// root changed in the scan's own tick, drop the tmp file.
    fn finish(self, seen: &[Seen]) {
        let data = (self.key.changed() < self.stamp)
            .then(|| encode(&self.key, seen))
            .flatten();
        let mut tmp = std::fs::File::from(self.tmp);
        if data.is_none_or(|d| std::io::Write::write_all(&mut tmp, &d).is_err()) {
            let _ = rustix::fs::unlinkat(&self.dir, TMP, AtFlags::empty());
            return;
        }
        // Unlinked first, so that the rename replaces nothing: ext4 writes
        // out a file renamed over another at once (auto_da_alloc), which
        // costs more than this whole scan saves. A `list` in between finds
        // no cache and scans.
        let _ = rustix::fs::unlinkat(&self.dir, CACHE_NAME, AtFlags::empty());
        if rustix::fs::renameat(&self.dir, TMP, &self.dir, CACHE_NAME).is_err() {
            let _ = rustix::fs::unlinkat(&self.dir, TMP, AtFlags::empty());
        }
    }
}

/// After a scan that found `seen`: keep the cache of a root holding at
/// least KEEP_FROM state dirs, else remove it. A root without a cache dir
/// gets one, and its next `list` writes the cache (the mkdir itself
/// changes the root).
pub(super) fn keep(rootfd: &OwnedFd, writer: Option<Writer>, seen: &[Seen]) {
    if seen.len() >= KEEP_FROM {
        match writer {
            Some(w) => w.finish(seen),
            None => {
                let _ = rustix::fs::mkdirat(rootfd, DIR, Mode::RWXU);
            }
        }
        return;
    }
    if let Some(w) = writer {
        let _ = rustix::fs::unlinkat(&w.dir, TMP, AtFlags::empty());
        let _ = rustix::fs::unlinkat(&w.dir, CACHE_NAME, AtFlags::empty());
        let _ = rustix::fs::unlinkat(rootfd, DIR, AtFlags::REMOVEDIR);
    }
}

/// Drop the list cache of `root`: delete does before it removes a state
/// dir's files, in case it is stopped half-way.
pub fn forget(root: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let path = root.join(std::ffi::OsStr::from_bytes(CACHE.to_bytes()));
    let _ = rustix::fs::unlink(path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::list::list;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    fn fresh_root(name: &str) -> PathBuf {
        let r = std::env::temp_dir().join(format!("runway-lc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&r);
        std::fs::create_dir_all(&r).unwrap();
        r
    }

    /// A finished container as create leaves it, as far as list reads it.
    fn add(root: &Path, id: &str, bundle: &str) {
        let d = root.join(id);
        let _ = std::fs::create_dir(&d);
        let b = serde_json::json!({
            "id": id, "pid": 4_194_399, "start_time": 1, "bundle": bundle,
            "rootfs": "/r", "created": "t", "created_done": true, "owner": 0,
            "annotations": if id.ends_with('7') { serde_json::json!({"k": id}) } else { serde_json::json!({}) },
        });
        let link = d.join("brief");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(b.to_string(), link).unwrap();
    }

    fn rows(root: &Path) -> Vec<String> {
        list(root)
            .unwrap()
            .iter()
            .map(|e| {
                let (id, st, b) = (&e.id, e.status.as_str(), &e.bundle);
                format!("{id} {} {st} {b} {:?} {}", e.pid, e.annotations, e.owner)
            })
            .collect()
    }

    /// Past the tick the root last changed in: the next scan may store.
    fn next_tick() {
        std::thread::sleep(Duration::from_millis(25));
    }

    fn trusted(root: &Path) -> bool {
        let fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        trusted_fs(&fd)
    }

    #[test]
    fn a_big_root_lists_from_the_cache_as_a_scan_would() {
        let r = fresh_root("big");
        let cache = r.join(".list~/cache");
        for i in 0..KEEP_FROM + 6 {
            add(&r, &format!("c{i:03}"), "/b");
        }
        std::fs::create_dir(r.join("c-pending")).unwrap();
        let scanned = rows(&r);
        assert_eq!(scanned.len(), KEEP_FROM + 6);
        if !trusted(&r) {
            assert!(!r.join(".list~").exists());
            std::fs::remove_dir_all(&r).unwrap();
            return;
        }
        // The first scan makes the dir, the next writes the cache.
        assert!(r.join(".list~").is_dir() && !cache.exists());
        next_tick();
        assert_eq!(rows(&r), scanned);
        assert!(cache.exists());
        assert_eq!(rows(&r), scanned);

        // Read from the cache: a brief changed behind list's back (create
        // never does) shows as it was...
        add(&r, "c001", "/changed");
        assert_eq!(rows(&r), scanned);
        add(&r, "c001", "/b");
        // ...but a pending dir is read each time.
        add(&r, "c-pending", "/p");
        let with_pending = rows(&r);
        assert_eq!(with_pending.len(), scanned.len() + 1);
        assert!(with_pending
            .iter()
            .any(|l| l.starts_with("c-pending 0 stopped /p ")));

        // Containers added or removed at once, in the tick the cache was
        // taken in, are seen.
        for round in 0..20 {
            next_tick();
            rows(&r);
            let id = format!("c-new{round}");
            add(&r, &id, "/b");
            assert!(rows(&r).iter().any(|l| l.starts_with(&format!("{id} "))));
            std::fs::remove_dir_all(r.join(&id)).unwrap();
            assert!(!rows(&r).iter().any(|l| l.starts_with(&format!("{id} "))));
        }

        // A cache that does not decode is scanned past, and rewritten.
        next_tick();
        let good = rows(&r);
        let text = std::fs::read(&cache).unwrap();
        for bad in [
            text[..text.len() - 3].to_vec(),
            [&text[..], b"x\0"].concat(),
            String::from_utf8_lossy(&text)
                .replacen("\0c002\0", "\0../x\0", 1)
                .into_bytes(),
            String::from_utf8_lossy(&text)
                .replacen("\u{0}4194399\u{0}", "\u{0}-\u{0}", 1)
                .into_bytes(),
        ] {
            std::fs::write(&cache, bad).unwrap();
            assert_eq!(rows(&r), good);
        }

        // delete drops it; a root that shrinks below KEEP_FROM loses the dir.
        forget(&r);
        assert!(!cache.exists());
        for i in 0..KEEP_FROM {
            std::fs::remove_dir_all(r.join(format!("c{i:03}"))).unwrap();
        }
        assert_eq!(rows(&r).len(), 7);
        assert!(!r.join(".list~").exists());
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn a_cache_decodes_to_what_was_encoded_for_its_key_only() {
        let key = Key([1, 2, 3, 4, 5, 6, 7, 8]);
        let done = Brief {
            id: "c1".into(),
            pid: 42,
            start_time: 7,
            created_done: Some(true),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "t".into(),
            annotations: [("k".to_string(), "v\u{0}".to_string())].into(),
            owner: Some(0),
            freeze_file: None,
        };
        let seen = vec![Seen::Pending("p".into()), Seen::Done(done)];
        let data = encode(&key, &seen).unwrap();
        let back = decode(&data, &key).unwrap();
        assert_eq!(encode(&key, &back).as_ref(), Some(&data));
        assert!(
            matches!(&back[1], Seen::Done(f) if f.annotations["k"] == "v\u{0}" && f.freeze_file.is_none())
        );
        fuzz_decode(&data);
        assert!(decode(&data, &Key([1, 2, 3, 4, 5, 6, 7, 9])).is_none());
        // A NUL inside a field cannot be framed: nothing is cached.
        let mut nul = back;
        if let Some(Seen::Done(f)) = nul.get_mut(1) {
            f.bundle = "/b\u{0}x".into();
        }
        assert!(encode(&key, &nul).is_none());
    }

    /// The git index rule: a root changed in the tick the scan began in
    /// is not cached, whatever the scan saw.
    #[test]
    fn a_root_changed_in_the_scans_tick_is_not_cached() {
        let r = fresh_root("racy");
        if !trusted(&r) {
            std::fs::remove_dir_all(&r).unwrap();
            return;
        }
        std::fs::create_dir(r.join(".list~")).unwrap();
        add(&r, "a", "/b");
        next_tick();
        let fd = rustix::fs::open(&r, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let mut w = Writer::start(&fd).unwrap();
        w.stamp = w.key.changed();
        w.finish(&[]);
        assert!(!r.join(".list~/cache").exists() && !r.join(".list~/cache.tmp").exists());
        let w = Writer::start(&fd).unwrap();
        // Held by one writer, refused to another.
        assert!(Writer::start(&fd).is_none());
        w.finish(&[]);
        assert!(r.join(".list~/cache").exists());
        assert_eq!(load(&fd).map(|s| s.len()), Some(0));
        std::fs::remove_dir_all(&r).unwrap();
    }
}
