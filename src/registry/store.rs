//! The registry's disk layout, content-addressed and crash-safe:
//!
//! ```text
//! ROOT/blobs/sha256/HEX                        every blob and manifest, once
//! ROOT/repositories/NAME/_layers/sha256/HEX    link: the blob is in NAME
//! ROOT/repositories/NAME/_manifests/sha256/HEX link: holds the media type
//! ROOT/repositories/NAME/_tags/TAG             holds the digest
//! ROOT/repositories/NAME/_referrers/SUBJ/HEX   HEX's subject is SUBJ
//! ROOT/_uploads/UUID/{data,name}               staging of one upload
//! ROOT/_lock                                   gc: exclusive, commits: shared
//! ```
//!
//! A blob becomes visible only by rename(2) once its digest is verified,
//! so a crash or a vanished client leaves nothing half-written in blobs/.
//! Small files (tags, links) are written to a temporary name and renamed.

use super::ApiErr;
use crate::image::digest::{Digest, Hasher};
use crate::registry::route::Ref;
use rustix::fs::{flock, FlockOperation};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Manifests larger than this are refused (as docker's registry does).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Uploads untouched this long are removed. Uploads survive a restart
/// (they can be resumed), so only age reaps them.
pub const UPLOAD_TTL: Duration = Duration::from_secs(3600);
const BUF: usize = 256 << 10;

pub struct Store {
    pub root: PathBuf,
    lock: File,
    /// A live upload's length and running SHA-256, so that its commit
    /// need not read it back. Missing (after a restart, or a request that
    /// failed midway): the data file is hashed again.
    hashers: Mutex<HashMap<String, (u64, Hasher)>>,
    pub max_upload: u64,
}

fn io500(e: io::Error) -> ApiErr {
    ApiErr::new(500, "UNKNOWN", format!("storage: {e}"))
}

/// Write `data` to `path` by a temporary file and a rename.
fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid()));
    let r = fs::write(&tmp, data).and_then(|_| fs::rename(&tmp, path));
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

/// A random 32-hex-digit id.
pub fn uuid() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // Uniqueness is what matters; the clock and a counter give it too.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        b[..8].copy_from_slice(&t.to_le_bytes());
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b[8..].copy_from_slice(&n.to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The digests a manifest or index points at (config, layers, blobs,
/// child manifests), foreign layers (with `urls`) left out; and whether
/// each is a manifest.
pub fn references(m: &Value) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    if let Some(d) = m.pointer("/config/digest").and_then(Value::as_str) {
        out.push((d.to_string(), false));
    }
    for (key, manifest) in [("layers", false), ("blobs", false), ("manifests", true)] {
        for l in m.get(key).and_then(Value::as_array).into_iter().flatten() {
            if l.get("urls")
                .is_some_and(|u| u.as_array().is_some_and(|a| !a.is_empty()))
            {
                continue;
            }
            if let Some(d) = l.get("digest").and_then(Value::as_str) {
                out.push((d.to_string(), manifest));
            }
        }
    }
    out
}

/// Shared (commits) or exclusive (gc) hold of ROOT/_lock until dropped.
pub struct Held<'a>(&'a File);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let _ = flock(self.0, FlockOperation::Unlock);
    }
}

impl Store {
    pub fn open(root: &Path) -> crate::error::Result<Store> {
        use crate::error::Context;
        for d in ["blobs/sha256", "repositories", "_uploads"] {
            fs::create_dir_all(root.join(d))
                .ctx(|| format!("create {}", root.join(d).display()))?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("_lock"))
            .ctx(|| format!("open {}/_lock", root.display()))?;
        Ok(Store {
            root: root.to_path_buf(),
            lock,
            hashers: Mutex::new(HashMap::new()),
            max_upload: u64::MAX,
        })
    }

    pub fn hold(&self, exclusive: bool) -> io::Result<Held<'_>> {
        let op = if exclusive {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::LockShared
        };
        flock(&self.lock, op)?;
        Ok(Held(&self.lock))
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    fn repo(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    fn link(&self, name: &str, kind: &str, d: &Digest) -> PathBuf {
        self.repo(name).join(kind).join("sha256").join(d.hex())
    }

    pub fn repo_exists(&self, name: &str) -> bool {
        self.repo(name).join("_manifests").is_dir() || self.repo(name).join("_layers").is_dir()
    }

    /// The blob's size when NAME has it (by link) and it is on disk.
    pub fn blob_size(&self, name: &str, d: &Digest) -> Option<u64> {
        if !self.link(name, "_layers", d).exists() && !self.link(name, "_manifests", d).exists() {
            return None;
        }
        fs::metadata(self.blob_path(d)).ok().map(|m| m.len())
    }

    /// A manifest of NAME: (digest, media type, bytes).
    pub fn manifest(&self, name: &str, r: &Ref) -> Option<(Digest, String, Vec<u8>)> {
        let d = match r {
            Ref::Digest(d) => d.clone(),
            Ref::Tag(t) => {
                let s = fs::read_to_string(self.repo(name).join("_tags").join(t)).ok()?;
                Digest::parse(s.trim()).ok()?
            }
        };
        let media = fs::read_to_string(self.link(name, "_manifests", &d)).ok()?;
        let body = fs::read(self.blob_path(&d)).ok()?;
        Some((d, media, body))
    }

    /// Store a manifest (already checked to be JSON of `media` type):
    /// its blobs must be in NAME. Returns its digest and subject.
    pub fn put_manifest(
        &self,
        name: &str,
        r: &Ref,
        body: &[u8],
        media: &str,
        m: &Value,
    ) -> Result<(Digest, Option<Digest>), ApiErr> {
        let d = Digest::of(body);
        if let Ref::Digest(want) = r {
            if *want != d {
                return Err(ApiErr::new(
                    400,
                    "DIGEST_INVALID",
                    format!("manifest digest is {d}, not {want}"),
                ));
            }
        }
        let _held = self.hold(false).map_err(io500)?;
        for (dig, is_manifest) in references(m) {
            let known = Digest::parse(&dig).ok().is_some_and(|x| {
                if is_manifest {
                    self.link(name, "_manifests", &x).exists()
                } else {
                    self.blob_size(name, &x).is_some()
                }
            });
            if !known {
                return Err(ApiErr::new(
                    400,
                    "MANIFEST_BLOB_UNKNOWN",
                    format!("{dig} is not in {name}"),
                ))
                .map_err(|e| e.detail(json!({ "digest": dig })));
            }
        }
        let subject = m
            .pointer("/subject/digest")
            .and_then(Value::as_str)
            .map(Digest::parse)
            .transpose()
            .map_err(|e| ApiErr::new(400, "MANIFEST_INVALID", format!("subject: {e}")))?;
        let path = self.blob_path(&d);
        if !path.exists() {
            write_atomic(&path, body).map_err(io500)?;
        }
        write_atomic(&self.link(name, "_manifests", &d), media.as_bytes()).map_err(io500)?;
        if let Some(s) = &subject {
            let dir = self.repo(name).join("_referrers").join(s.hex());
            fs::create_dir_all(&dir).map_err(io500)?;
            File::create(dir.join(d.hex())).map_err(io500)?;
        }
        if let Ref::Tag(t) = r {
            write_atomic(
                &self.repo(name).join("_tags").join(t),
                d.as_str().as_bytes(),
            )
            .map_err(io500)?;
        }
        Ok((d, subject))
    }

    /// Delete a tag, or a manifest by digest with every tag naming it.
    pub fn delete_manifest(&self, name: &str, r: &Ref) -> bool {
        let tags = self.repo(name).join("_tags");
        let d = match r {
            Ref::Tag(t) => return fs::remove_file(tags.join(t)).is_ok(),
            Ref::Digest(d) => d,
        };
        if fs::remove_file(self.link(name, "_manifests", d)).is_err() {
            return false;
        }
        for t in self.tags(name).unwrap_or_default() {
            if fs::read_to_string(tags.join(&t)).is_ok_and(|s| s.trim() == d.as_str()) {
                let _ = fs::remove_file(tags.join(&t));
            }
        }
        if let Some(s) = fs::read(self.blob_path(d))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|m| m.pointer("/subject/digest")?.as_str().map(str::to_string))
            .and_then(|s| Digest::parse(&s).ok())
        {
            let _ = fs::remove_file(
                self.repo(name)
                    .join("_referrers")
                    .join(s.hex())
                    .join(d.hex()),
            );
        }
        true
    }

    pub fn delete_blob(&self, name: &str, d: &Digest) -> bool {
        fs::remove_file(self.link(name, "_layers", d)).is_ok()
    }

    fn add_layer_link(&self, name: &str, d: &Digest) -> io::Result<()> {
        let p = self.link(name, "_layers", d);
        fs::create_dir_all(p.parent().unwrap_or(Path::new(".")))?;
        File::create(p).map(drop)
    }

    /// Cross-repository mount: link FROM's blob into NAME.
    pub fn mount(&self, name: &str, from: &str, d: &Digest) -> bool {
        let Ok(_held) = self.hold(false) else {
            return false;
        };
        self.blob_size(from, d).is_some() && self.add_layer_link(name, d).is_ok()
    }

    /// Sorted tags of NAME; None when NAME does not exist.
    pub fn tags(&self, name: &str) -> Option<Vec<String>> {
        if !self.repo_exists(name) {
            return None;
        }
        let mut v: Vec<String> = fs::read_dir(self.repo(name).join("_tags"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|t| !t.starts_with('.'))
            .collect();
        v.sort();
        Some(v)
    }

    /// Every repository name, sorted.
    pub fn catalog(&self) -> Vec<String> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                let Ok(n) = e.file_name().into_string() else {
                    continue;
                };
                if n.starts_with('_') || n.starts_with('.') || !e.path().is_dir() {
                    continue;
                }
                let full = if prefix.is_empty() {
                    n
                } else {
                    format!("{prefix}/{n}")
                };
                if e.path().join("_manifests").is_dir() || e.path().join("_layers").is_dir() {
                    out.push(full.clone());
                }
                walk(&e.path(), &full, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.root.join("repositories"), "", &mut out);
        out.sort();
        out
    }

    /// Descriptors of NAME's manifests whose subject is `subject`.
    pub fn referrers(
        &self,
        name: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Vec<Value> {
        let dir = self.repo(name).join("_referrers").join(subject.hex());
        let mut out = Vec::new();
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|h| Digest::from_hex(h).ok())
            else {
                continue;
            };
            let Some((d, media, body)) = self.manifest(name, &Ref::Digest(d)) else {
                continue;
            };
            let Ok(m) = serde_json::from_slice::<Value>(&body) else {
                continue;
            };
            let at = m
                .get("artifactType")
                .or_else(|| m.pointer("/config/mediaType"))
                .cloned()
                .unwrap_or(Value::Null);
            if artifact_type.is_some_and(|want| at.as_str() != Some(want)) {
                continue;
            }
            let mut desc =
                json!({"mediaType": media, "digest": d, "size": body.len(), "artifactType": at});
            if let Some(a) = m.get("annotations") {
                desc["annotations"] = a.clone();
            }
            out.push(desc);
        }
        out.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
        out
    }

    fn upload_dir(&self, uuid: &str) -> PathBuf {
        self.root.join("_uploads").join(uuid)
    }

    pub fn upload_new(&self, name: &str) -> Result<String, ApiErr> {
        let id = uuid();
        let dir = self.upload_dir(&id);
        fs::create_dir_all(&dir).map_err(io500)?;
        File::create(dir.join("data")).map_err(io500)?;
        fs::write(dir.join("name"), name).map_err(io500)?;
        Ok(id)
    }

    /// The upload's current length, if it exists and belongs to NAME.
    pub fn upload_len(&self, name: &str, uuid: &str) -> Option<u64> {
        let dir = self.upload_dir(uuid);
        if fs::read_to_string(dir.join("name")).ok()? != name {
            return None;
        }
        fs::metadata(dir.join("data")).ok().map(|m| m.len())
    }

    /// The running hash of the upload's `len` bytes, from memory or by
    /// reading them again.
    fn hasher(&self, uuid: &str, len: u64) -> io::Result<Hasher> {
        let kept = self.hashers.lock().ok().and_then(|mut m| m.remove(uuid));
        if let Some((n, h)) = kept {
            if n == len {
                return Ok(h);
            }
        }
        let mut h = Hasher::new();
        let mut f = File::open(self.upload_dir(uuid).join("data"))?.take(len);
        let mut buf = vec![0u8; BUF];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(h);
            }
            h.update(&buf[..n]);
        }
    }

    /// Append `body` to an upload that is `len` long; the new length.
    pub fn upload_append(&self, uuid: &str, len: u64, body: &mut dyn Read) -> Result<u64, ApiErr> {
        let mut h = self.hasher(uuid, len).map_err(io500)?;
        let mut f = OpenOptions::new()
            .append(true)
            .open(self.upload_dir(uuid).join("data"))
            .map_err(io500)?;
        let mut buf = vec![0u8; BUF];
        let mut total = len;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ApiErr::new(
                        400,
                        "BLOB_UPLOAD_INVALID",
                        format!("reading the body: {e}"),
                    )
                    .close())
                }
            };
            total += n as u64;
            if total > self.max_upload {
                return Err(ApiErr::new(
                    413,
                    "SIZE_INVALID",
                    format!("blob larger than {} bytes", self.max_upload),
                )
                .close());
            }
            f.write_all(&buf[..n]).map_err(io500)?;
            h.update(&buf[..n]);
        }
        if let Ok(mut m) = self.hashers.lock() {
            m.insert(uuid.to_string(), (total, h));
        }
        Ok(total)
    }

    /// Verify the upload's digest, then move it into blobs/ and link it
    /// into NAME. A mismatch removes the upload.
    pub fn upload_commit(
        &self,
        name: &str,
        uuid: &str,
        len: u64,
        want: &Digest,
    ) -> Result<(), ApiErr> {
        let h = self.hasher(uuid, len).map_err(io500)?;
        let got = h.finish();
        let dir = self.upload_dir(uuid);
        if got != *want {
            let _ = fs::remove_dir_all(&dir);
            return Err(ApiErr::new(
                400,
                "DIGEST_INVALID",
                format!("upload digest is {got}, not {want}"),
            ));
        }
        let data = dir.join("data");
        File::open(&data)
            .and_then(|f| f.sync_data())
            .map_err(io500)?;
        let held = self.hold(false).map_err(io500)?;
        // Over an existing blob: same bytes, the rename is harmless.
        fs::rename(&data, self.blob_path(want)).map_err(io500)?;
        self.add_layer_link(name, want).map_err(io500)?;
        drop(held);
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    pub fn upload_cancel(&self, uuid: &str) {
        if let Ok(mut m) = self.hashers.lock() {
            m.remove(uuid);
        }
        let _ = fs::remove_dir_all(self.upload_dir(uuid));
    }

    /// Remove uploads untouched for `ttl`; how many.
    pub fn reap(&self, ttl: Duration) -> usize {
        let mut n = 0;
        for e in fs::read_dir(self.root.join("_uploads"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let touched = fs::metadata(e.path().join("data"))
                .or_else(|_| e.metadata())
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if touched.is_none_or(|age| age > ttl) {
                let id = e.file_name().to_string_lossy().into_owned();
                self.upload_cancel(&id);
                n += 1;
            }
        }
        n
    }

    /// Remove every blob no manifest of any repository references (nor
    /// is a manifest itself); returns what was (or, dry, would be)
    /// removed. Untagged manifests are kept. Blobs pushed but not yet
    /// referenced by a manifest are removed too, as by docker's registry:
    /// run gc when no push is half-way.
    pub fn gc(&self, dry_run: bool) -> crate::error::Result<Vec<(String, u64)>> {
        use crate::error::Context;
        let _held = self.hold(true).ctx(|| "gc: lock")?;
        let mut keep = HashSet::new();
        for repo in self.catalog() {
            let dir = self.repo(&repo).join("_manifests/sha256");
            for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                let hex = e.file_name().to_string_lossy().into_owned();
                let Ok(d) = Digest::from_hex(&hex) else {
                    continue;
                };
                if let Ok(m) =
                    fs::read(self.blob_path(&d)).map(|b| serde_json::from_slice::<Value>(&b))
                {
                    for (r, _) in references(&m.unwrap_or_default()) {
                        keep.insert(r.trim_start_matches("sha256:").to_string());
                    }
                }
                keep.insert(hex);
            }
        }
        let mut gone = Vec::new();
        let blobs = self.root.join("blobs/sha256");
        for e in fs::read_dir(&blobs)
            .ctx(|| format!("gc: read {}", blobs.display()))?
            .flatten()
        {
            let hex = e.file_name().to_string_lossy().into_owned();
            if keep.contains(&hex) {
                continue;
            }
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            if !dry_run {
                fs::remove_file(e.path()).ctx(|| format!("gc: remove {}", e.path().display()))?;
            }
            gone.push((format!("sha256:{hex}"), size));
        }
        // Links to removed blobs go too, so that HEAD says 404 at once.
        if !dry_run {
            for repo in self.catalog() {
                let dir = self.repo(&repo).join("_layers/sha256");
                for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                    if !blobs.join(e.file_name()).exists() {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
        gone.sort();
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("runway-regstore-{}", uuid()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn upload_commit_manifest_gc() {
        let root = tmp();
        let s = Store::open(&root).unwrap();
        let blob = b"hello blob".to_vec();
        let d = Digest::of(&blob);
        let id = s.upload_new("a/b").unwrap();
        assert_eq!(s.upload_len("other", &id), None);
        let n = s.upload_append(&id, 0, &mut &blob[..5]).unwrap();
        // A restart loses the running hash: it is rebuilt from the file.
        s.hashers.lock().unwrap().clear();
        let n = s.upload_append(&id, n, &mut &blob[5..]).unwrap();
        assert_eq!(s.upload_len("a/b", &id), Some(10));
        let bad = Digest::of(b"x");
        let id2 = s.upload_new("a/b").unwrap();
        s.upload_append(&id2, 0, &mut &blob[..]).unwrap();
        assert_eq!(
            s.upload_commit("a/b", &id2, 10, &bad).unwrap_err().code,
            "DIGEST_INVALID"
        );
        assert!(!root.join("_uploads").join(&id2).exists());
        s.upload_commit("a/b", &id, n, &d).unwrap();
        assert_eq!(s.blob_size("a/b", &d), Some(10));
        assert_eq!(s.blob_size("c", &d), None);
        assert!(s.mount("c", "a/b", &d));
        assert_eq!(s.blob_size("c", &d), Some(10));

        let m = json!({"schemaVersion": 2, "config": {"digest": d}, "layers": []});
        let body = serde_json::to_vec(&m).unwrap();
        let missing = json!({"layers": [{"digest": bad}]});
        let e = s
            .put_manifest("a/b", &Ref::Tag("t".into()), b"{}", "x", &missing)
            .unwrap_err();
        assert_eq!(e.code, "MANIFEST_BLOB_UNKNOWN");
        let (md, _) = s
            .put_manifest("a/b", &Ref::Tag("t".into()), &body, "application/x", &m)
            .unwrap();
        assert_eq!(s.manifest("a/b", &Ref::Tag("t".into())).unwrap().0, md);
        assert_eq!(s.tags("a/b").unwrap(), vec!["t"]);
        assert_eq!(s.catalog(), vec!["a/b", "c"]);

        // An orphan blob goes; the manifest and its config stay.
        let id3 = s.upload_new("c").unwrap();
        s.upload_append(&id3, 0, &mut &b"x"[..]).unwrap();
        s.upload_commit("c", &id3, 1, &bad).unwrap();
        let gone = s.gc(false).unwrap();
        assert_eq!(gone, vec![(bad.to_string(), 1)]);
        assert!(s.blob_path(&d).exists() && s.blob_path(&md).exists());
        assert!(s.delete_manifest("a/b", &Ref::Digest(md.clone())));
        assert!(s.tags("a/b").unwrap().is_empty());
        assert_eq!(s.gc(false).unwrap().len(), 2);
        fs::remove_dir_all(root).unwrap();
    }
}
