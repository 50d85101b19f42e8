//! The store: an OCI image layout under the data root, plus unpacked layers by chain id.
//!
//! Everything that becomes visible does so by one rename of a complete,
//! fsynced file or directory, so a crash at any point leaves either the old
//! state or the new one, plus stale entries under tmp/ that `prune` removes.
//! Locks (flock, released by the kernel when a process dies):
//! - `.lock`, exclusive, only around a read-modify-write of index.json;
//! - `.gc.lock`, shared by every writer (pull, import, tag) for its whole run
//!   and exclusive for garbage collection, so gc never removes a blob a
//!   running writer already counted on;
//! - `tmp/<hex>.lock` per blob download and `tmp/<chainhex>.layer.lock` per
//!   layer unpack, so two pulls of one image do the work once and both succeed.

use super::decompress::{self, Compression};
use super::digest::{Digest, HashReader};
use super::reference::Reference;
use super::types::{self, Descriptor, Index, Manifest, ANNOTATION_REF_NAME, MAX_JSON_BLOB};
use super::unpack;
use crate::bail;
use crate::error::{Context, Error, Result};
use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where a pull records the digest the registry served for a name.
pub const ANNOTATION_REPO_DIGEST: &str = "io.runway.repo-digest";

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A name no other process or thread uses for its temporary file.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct Store {
    root: PathBuf,
}

/// `.gc.lock` held shared: no gc runs while it lives.
pub struct WriterGuard {
    _lock: File,
}

/// An flock'd file; the lock goes with the descriptor.
struct Locked {
    _file: File,
}

fn lock_file(path: &Path, op: FlockOperation) -> Result<Locked> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .ctx(|| format!("open lock {}", path.display()))?;
    loop {
        match rustix::fs::flock(&file, op) {
            Ok(()) => return Ok(Locked { _file: file }),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                return Err(Error::errno(
                    format!("lock {}", path.display()),
                    e.raw_os_error(),
                ))
            }
        }
    }
}

/// Try `op | nonblocking`: Ok(None) when someone else holds it.
fn try_lock(path: &Path, op: FlockOperation) -> Result<Option<Locked>> {
    match lock_file(path, op) {
        Ok(l) => Ok(Some(l)),
        Err(e) if e.errno == Some(libc::EWOULDBLOCK) => Ok(None),
        Err(e) => Err(e),
    }
}

fn fsync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).ctx(|| format!("open {}", dir.display()))?;
    d.sync_all().ctx(|| format!("fsync {}", dir.display()))
}

/// Write `bytes` to `tmp`, fsync, rename onto `dest`, fsync its directory.
/// On failure `tmp` is removed and `dest` untouched.
fn write_atomic(tmp: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(tmp)
            .ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(bytes)
            .ctx(|| format!("write {}", tmp.display()))?;
        f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
        fs::rename(tmp, dest).ctx(|| format!("rename to {}", dest.display()))
    })();
    if res.is_err() {
        let _ = fs::remove_file(tmp);
        return res;
    }
    fsync_dir(dest.parent().unwrap_or(Path::new(".")))
}

/// Bytes a directory tree takes (file sizes, not blocks).
pub fn tree_size(p: &Path) -> u64 {
    let Ok(md) = fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    let mut total = 0;
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            total += tree_size(&e.path());
        }
    }
    total
}

/// Remove a file or directory tree; absent is fine.
fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(md) if md.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
    }
}

/// `layers/<chainhex>/info.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerInfo {
    pub diff_id: Digest,
    pub chain_id: Digest,
    pub size: u64,
}

/// One image as index.json and its manifest describe it.
#[derive(Clone, Debug)]
pub struct ImageRecord {
    /// The config digest: docker's image ID.
    pub id: Digest,
    /// The manifest's descriptor (annotations of one of its entries).
    pub manifest: Descriptor,
    /// Full ref names ("docker.io/library/busybox:latest"), sorted; empty
    /// for a dangling image.
    pub names: Vec<String>,
    /// "docker.io/library/busybox@sha256:…", sorted.
    pub repo_digests: Vec<String>,
    /// The parsed manifest.
    pub parsed: Manifest,
}

impl ImageRecord {
    /// The 12 hex digits `image ls` shows.
    pub fn short_id(&self) -> &str {
        self.id.short()
    }
}

/// What a garbage collection removed.
#[derive(Debug, Default)]
pub struct GcReport {
    pub blobs: Vec<(Digest, u64)>,
    pub layers: Vec<(Digest, u64)>,
    /// Stale temporary entries and their bytes.
    pub tmp: Vec<(String, u64)>,
}

impl GcReport {
    pub fn bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.1).sum::<u64>()
            + self.layers.iter().map(|l| l.1).sum::<u64>()
            + self.tmp.iter().map(|t| t.1).sum::<u64>()
    }
}

/// What `remove_name`/`remove_image` did to index.json.
#[derive(Debug, Default)]
pub struct Removal {
    /// Names (full ref names) and repo digests no longer in the index.
    pub untagged: Vec<String>,
    /// The image is gone from the index altogether.
    pub deleted: Option<Digest>,
}

impl Store {
    /// Open the store at `root`, creating the layout if missing (0700 dirs).
    pub fn open(root: &Path) -> Result<Store> {
        let mut b = fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        for sub in ["blobs/sha256", "layers", "tmp"] {
            let p = root.join(sub);
            if !p.is_dir() {
                b.create(&p).ctx(|| format!("create {}", p.display()))?;
            }
        }
        let s = Store {
            root: root.to_path_buf(),
        };
        if !root.join("index.json").is_file() || !root.join("oci-layout").is_file() {
            let _l = s.index_lock()?;
            let layout = root.join("oci-layout");
            if !layout.is_file() {
                write_atomic(
                    &root.join(unique("oci-layout.tmp")),
                    &layout,
                    b"{\"imageLayoutVersion\":\"1.0.0\"}",
                )?;
            }
            if !root.join("index.json").is_file() {
                s.write_index(&Index {
                    schema_version: 2,
                    media_type: Some(types::OCI_INDEX.to_string()),
                    ..Default::default()
                })?;
            }
        }
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn index_lock(&self) -> Result<Locked> {
        lock_file(&self.root.join(".lock"), FlockOperation::LockExclusive)
    }

    /// Held by pull/import for their whole run: no gc meanwhile.
    pub fn writer(&self) -> Result<WriterGuard> {
        let l = lock_file(&self.root.join(".gc.lock"), FlockOperation::LockShared)?;
        Ok(WriterGuard { _lock: l._file })
    }

    /// For gc: waits until no writer runs.
    fn gc_lock(&self) -> Result<Locked> {
        lock_file(&self.root.join(".gc.lock"), FlockOperation::LockExclusive)
    }

    /// For gc that must not wait (rm): None while a writer runs.
    fn try_gc_lock(&self) -> Result<Option<Locked>> {
        try_lock(
            &self.root.join(".gc.lock"),
            FlockOperation::NonBlockingLockExclusive,
        )
    }

    // ------------------------------------------------------------ blobs

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// A small (JSON) blob, its digest checked again: a blob changed on
    /// disk is refused, not trusted.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let f = File::open(&p).ctx(|| format!("blob {d}"))?;
        let mut bytes = Vec::new();
        f.take(MAX_JSON_BLOB + 1)
            .read_to_end(&mut bytes)
            .ctx(|| format!("read blob {d}"))?;
        if bytes.len() as u64 > MAX_JSON_BLOB {
            bail!("blob {d}: larger than {MAX_JSON_BLOB} bytes");
        }
        let got = Digest::of(&bytes);
        if &got != d {
            bail!("blob {d}: digest mismatch on disk (got {got})");
        }
        Ok(bytes)
    }

    /// Store `bytes` as a blob (verified against `expect` if given).
    pub fn put_blob(&self, expect: Option<&Digest>, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        if let Some(e) = expect {
            if e != &d {
                bail!("blob {e}: digest mismatch (got {d})");
            }
        }
        if !self.has_blob(&d) {
            let tmp = self.tmp().join(unique(&format!("{}.put", d.hex())));
            write_atomic(&tmp, &self.blob_path(&d), bytes).ctx(|| format!("store blob {d}"))?;
        }
        Ok(d)
    }

    /// Commit a complete, already verified file (in tmp/, same filesystem)
    /// as the blob `d`: fsync, rename, fsync the directory. The file is
    /// consumed either way.
    pub fn put_blob_file(&self, d: &Digest, file: &Path) -> Result<()> {
        if self.has_blob(d) {
            let _ = fs::remove_file(file);
            return Ok(());
        }
        let res = (|| {
            File::open(file)
                .and_then(|f| f.sync_all())
                .ctx(|| format!("fsync {}", file.display()))?;
            fs::rename(file, self.blob_path(d)).ctx(|| format!("store blob {d}"))?;
            fsync_dir(&self.root.join("blobs/sha256"))
        })();
        if res.is_err() {
            let _ = fs::remove_file(file);
        }
        res
    }

    /// A resumable download of blob `d` (see `Download`).
    pub fn download(&self, d: &Digest) -> Result<Download> {
        let lock = lock_file(
            &self.tmp().join(format!("{}.lock", d.hex())),
            FlockOperation::LockExclusive,
        )?;
        let path = self.tmp().join(format!("{}.partial", d.hex()));
        let done = self.has_blob(d);
        let file = if done {
            File::open(self.blob_path(d)).ctx(|| format!("open blob {d}"))?
        } else {
            OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .mode(0o644)
                .open(&path)
                .ctx(|| format!("open {}", path.display()))?
        };
        let offset = if done {
            0
        } else {
            file.metadata()
                .ctx(|| format!("stat {}", path.display()))?
                .len()
        };
        Ok(Download {
            file,
            path,
            final_path: self.blob_path(d),
            blobs_dir: self.root.join("blobs/sha256"),
            digest: d.clone(),
            done,
            offset,
            _lock: lock,
        })
    }

    // ------------------------------------------------------------ layers

    pub fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.root.join("layers").join(chain.hex()).join("diff")
    }

    /// A layer is there when its info.json reads: it is written last.
    pub fn has_layer(&self, chain: &Digest) -> bool {
        self.layer_info(chain).is_some()
    }

    /// The layer's info.json, if it is there.
    pub fn layer_info(&self, chain: &Digest) -> Option<LayerInfo> {
        let p = self.root.join("layers").join(chain.hex()).join("info.json");
        let bytes = fs::read(p).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn layer_lock(&self, chain: &Digest) -> Result<Locked> {
        lock_file(
            &self.tmp().join(format!("{}.layer.lock", chain.hex())),
            FlockOperation::LockExclusive,
        )
    }

    /// Decompress `blob`, verify its diff_id, unpack into a staging dir and
    /// rename it to layers/<chain>. Under a per-chain lock; if the layer
    /// appeared meanwhile, drains and returns. On any error nothing is left.
    /// The tree is synced (syncfs) before the rename.
    pub fn ingest_layer(
        &self,
        blob: &mut (dyn Read + Send),
        comp: Compression,
        diff_id: &Digest,
        chain: &Digest,
    ) -> Result<u64> {
        let _l = self.layer_lock(chain)?;
        if let Some(info) = self.layer_info(chain) {
            io::copy(blob, &mut io::sink())
                .map_err(|e| decompress::error(&format!("layer {diff_id}"), e))?;
            return Ok(info.size);
        }
        let staging = self.tmp().join(format!("{}.staging", chain.hex()));
        // A staging dir left by a process that died holding this lock.
        let _ = remove_any(&staging);
        let res = self
            .unpack_into(&staging, blob, comp)
            .and_then(|(got, size)| {
                if &got != diff_id {
                    bail!("layer {diff_id}: diff_id mismatch (got {got})");
                }
                self.commit_layer(&staging, diff_id, chain, size)?;
                Ok(size)
            });
        if res.is_err() {
            let _ = remove_any(&staging);
        }
        res
    }

    /// Ingest a base layer whose diff_id is not known beforehand (a plain
    /// rootfs tarball): its chain id is its diff_id. Returns (diff_id, size).
    pub fn ingest_base_layer(
        &self,
        blob: &mut (dyn Read + Send),
        comp: Compression,
    ) -> Result<(Digest, u64)> {
        let staging = self.tmp().join(unique("base.staging"));
        let res = (|| {
            let (diff_id, size) = self.unpack_into(&staging, blob, comp)?;
            let _l = self.layer_lock(&diff_id)?;
            if let Some(info) = self.layer_info(&diff_id) {
                remove_any(&staging).ctx(|| format!("remove {}", staging.display()))?;
                return Ok((diff_id, info.size));
            }
            self.commit_layer(&staging, &diff_id, &diff_id, size)?;
            Ok((diff_id, size))
        })();
        if res.is_err() {
            let _ = remove_any(&staging);
        }
        res
    }

    /// Unpack into `staging/diff`; returns the diff_id and unpacked bytes.
    fn unpack_into(
        &self,
        staging: &Path,
        blob: &mut (dyn Read + Send),
        comp: Compression,
    ) -> Result<(Digest, u64)> {
        let diff = staging.join("diff");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&diff)
            .ctx(|| format!("create {}", diff.display()))?;
        let mut hr = HashReader::new(decompress::reader(comp, blob));
        let stats = unpack::unpack(&mut hr, &diff)?;
        let (got, _) = hr.finish().map_err(|e| decompress::error("layer", e))?;
        Ok((got, stats.bytes))
    }

    fn commit_layer(
        &self,
        staging: &Path,
        diff_id: &Digest,
        chain: &Digest,
        size: u64,
    ) -> Result<()> {
        let info = LayerInfo {
            diff_id: diff_id.clone(),
            chain_id: chain.clone(),
            size,
        };
        let json =
            serde_json::to_vec(&info).map_err(|e| Error::msg(format!("encode info: {e}")))?;
        // The tree reaches the disk before the name that makes it a layer:
        // after a power cut a layer is whole or absent, never a directory
        // of empty files that the next pull would take as done.
        let d = File::open(staging).ctx(|| format!("open {}", staging.display()))?;
        rustix::fs::syncfs(&d).ctx(|| format!("syncfs {}", staging.display()))?;
        let p = staging.join("info.json");
        fs::write(&p, json).ctx(|| format!("write {}", p.display()))?;
        let dest = self.root.join("layers").join(chain.hex());
        // One left without a readable info.json (a power cut) is no layer.
        if dest.exists() {
            self.remove_layer(chain)?;
        }
        fs::rename(staging, &dest).ctx(|| format!("store layer {chain}"))
    }

    /// Remove an unpacked layer (out of sight by one rename first).
    pub fn remove_layer(&self, chain: &Digest) -> Result<()> {
        let dir = self.root.join("layers").join(chain.hex());
        let doomed = self.tmp().join(unique(&format!("{}.deleted", chain.hex())));
        match fs::rename(&dir, &doomed) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            r => r.ctx(|| format!("remove layer {chain}"))?,
        }
        remove_any(&doomed).ctx(|| format!("remove {}", doomed.display()))
    }

    /// syncfs on the data root: one flush for everything unpacked.
    pub fn sync(&self) -> Result<()> {
        let d = File::open(&self.root).ctx(|| format!("open {}", self.root.display()))?;
        rustix::fs::syncfs(&d).ctx(|| format!("syncfs {}", self.root.display()))
    }

    // ------------------------------------------------------------ index

    fn read_index(&self) -> Result<Index> {
        let p = self.root.join("index.json");
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Index {
                    schema_version: 2,
                    media_type: Some(types::OCI_INDEX.to_string()),
                    ..Default::default()
                })
            }
            Err(e) => return Err(e).ctx(|| format!("read {}", p.display())),
        };
        parse_index(&bytes).ctx(|| p.display().to_string())
    }

    /// Call with `.lock` held.
    fn write_index(&self, idx: &Index) -> Result<()> {
        let json = serde_json::to_vec(idx).map_err(|e| Error::msg(format!("encode index: {e}")))?;
        write_atomic(
            &self.root.join("index.json.tmp"),
            &self.root.join("index.json"),
            &json,
        )
    }

    /// Read-modify-write index.json under `.lock`.
    fn update_index<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _l = self.index_lock()?;
        let mut idx = self.read_index()?;
        let before = serde_json::to_vec(&idx).unwrap_or_default();
        let out = f(&mut idx)?;
        if serde_json::to_vec(&idx).unwrap_or_default() != before {
            self.write_index(&idx)?;
        }
        Ok(out)
    }

    /// The images in index.json, one record per manifest; entries whose
    /// manifest is not an image manifest in the store are skipped.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let idx = self.read_index()?;
        let mut out: Vec<ImageRecord> = Vec::new();
        for e in &idx.manifests {
            if let Some(r) = out.iter_mut().find(|r| r.manifest.digest == e.digest) {
                merge_entry(r, e);
                continue;
            }
            let Ok(bytes) = self.read_blob(&e.digest) else {
                continue;
            };
            let Ok(types::Parsed::Manifest(m)) = types::parse_manifest(&bytes, None) else {
                continue;
            };
            let mut r = ImageRecord {
                id: m.config.digest.clone(),
                manifest: e.clone(),
                names: Vec::new(),
                repo_digests: Vec::new(),
                parsed: *m,
            };
            merge_entry(&mut r, e);
            out.push(r);
        }
        for r in &mut out {
            r.names.sort();
            r.names.dedup();
            r.repo_digests.sort();
            r.repo_digests.dedup();
        }
        Ok(out)
    }

    /// Record an image (its manifest and blobs already stored) under `name`.
    /// An entry with the same ref name is replaced; the image it named keeps
    /// an entry without a name if nothing else names it (dangling).
    pub fn add_image(
        &self,
        manifest: &Descriptor,
        name: Option<&Reference>,
        repo_digest: Option<&str>,
    ) -> Result<()> {
        let name = name.map(Reference::ref_name);
        self.update_index(|idx| {
            add_entry(idx, manifest, name.as_deref(), repo_digest);
            Ok(())
        })
    }

    /// Find an image: name[:tag], name@digest (a repo digest), sha256:ID,
    /// ID, or a unique ID prefix.
    pub fn resolve(&self, s: &str) -> Result<ImageRecord> {
        Ok(self.lookup(s)?.0)
    }

    /// `resolve`, also telling the full ref name when `s` was a name.
    pub fn lookup(&self, s: &str) -> Result<(ImageRecord, Option<String>)> {
        let images = self.images()?;
        lookup_in(&images, s)
    }

    /// Remove the name `name` (a full ref name or repo digest, as `lookup`
    /// reported); the image goes when that was its last name.
    pub fn remove_name(&self, name: &str) -> Result<Removal> {
        self.update_index(|idx| Ok(remove_name_in(idx, name)))
    }

    /// Remove every entry of the image whose manifest is `manifest`.
    pub fn remove_image(&self, manifest: &Digest) -> Result<Removal> {
        self.update_index(|idx| {
            let mut r = Removal::default();
            let mut found = false;
            idx.manifests.retain(|e| {
                if &e.digest != manifest {
                    return true;
                }
                found = true;
                if let Some(n) = e.annotation(ANNOTATION_REF_NAME) {
                    r.untagged.push(n.to_string());
                }
                if let Some(d) = e.annotation(ANNOTATION_REPO_DIGEST) {
                    r.untagged.push(d.to_string());
                }
                false
            });
            if found {
                r.deleted = Some(manifest.clone());
            }
            r.untagged.sort();
            r.untagged.dedup();
            Ok(r)
        })
    }

    /// `holds/<holder>`: a container's claim on the image it was created
    /// from, so that gc keeps the image's blobs and layers even after its
    /// last name is removed. Written under the writer lock (see `writer`),
    /// which gc's exclusive lock waits for.
    pub fn hold(&self, holder: &str, manifest: &Digest) -> Result<()> {
        let d = self.root.join("holds");
        fs::create_dir_all(&d).ctx(|| format!("create {}", d.display()))?;
        crate::container::state::write_atomic(&d.join(holder), manifest.as_str().as_bytes())
    }

    /// Drops `holder`'s claim; absent is fine.
    pub fn release(&self, holder: &str) -> Result<()> {
        let p = self.root.join("holds").join(holder);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx(|| format!("remove {}", p.display())),
        }
    }

    /// Every (holder, manifest digest) claim.
    pub fn holds(&self) -> Vec<(String, Digest)> {
        let Ok(rd) = fs::read_dir(self.root.join("holds")) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                if name.starts_with('.') {
                    return None;
                }
                let d = fs::read_to_string(e.path()).ok()?;
                Some((name, Digest::parse(d.trim()).ok()?))
            })
            .collect()
    }

    /// Garbage collection for `prune`, waiting for running writers to
    /// finish; partial downloads go too.
    pub fn gc(&self) -> Result<GcReport> {
        let _g = self.gc_lock()?;
        self.gc_locked(true)
    }

    /// Garbage collection unless a writer runs (then None: the next gc
    /// or prune collects). Partial downloads stay for the next pull to
    /// resume.
    pub fn try_gc(&self) -> Result<Option<GcReport>> {
        match self.try_gc_lock()? {
            Some(_g) => self.gc_locked(false).map(Some),
            None => Ok(None),
        }
    }

    /// Delete blobs and layers no index entry reaches, and every stale
    /// temporary entry. Called with `.gc.lock` held exclusively.
    fn gc_locked(&self, partials: bool) -> Result<GcReport> {
        let idx = {
            let _l = self.index_lock()?;
            self.read_index()?
        };
        let mut blobs: BTreeSet<String> = BTreeSet::new();
        let mut layers: BTreeSet<String> = BTreeSet::new();
        for e in &idx.manifests {
            self.mark(e, &mut blobs, &mut layers, 0);
        }
        for (_, d) in self.holds() {
            let held = Descriptor {
                media_type: String::new(),
                digest: d,
                size: 0,
                urls: None,
                annotations: None,
                platform: None,
                artifact_type: None,
            };
            self.mark(&held, &mut blobs, &mut layers, 0);
        }
        let mut report = GcReport::default();
        let bdir = self.root.join("blobs/sha256");
        for e in fs::read_dir(&bdir)
            .ctx(|| format!("read {}", bdir.display()))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if blobs.contains(&name) {
                continue;
            }
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(e.path()).ctx(|| format!("remove {}", e.path().display()))?;
            if let Ok(d) = Digest::from_hex(&name) {
                report.blobs.push((d, size));
            } else {
                report.tmp.push((format!("blobs/sha256/{name}"), size));
            }
        }
        let ldir = self.root.join("layers");
        for e in fs::read_dir(&ldir)
            .ctx(|| format!("read {}", ldir.display()))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if layers.contains(&name) {
                continue;
            }
            let size = match Digest::from_hex(&name)
                .ok()
                .and_then(|d| self.layer_info(&d))
            {
                Some(i) => i.size,
                None => tree_size(&e.path()),
            };
            // Out of sight first, so a half-deleted layer is never visible.
            let doomed = self.tmp().join(unique(&format!("{name}.deleted")));
            fs::rename(e.path(), &doomed).ctx(|| format!("remove layer {name}"))?;
            remove_any(&doomed).ctx(|| format!("remove {}", doomed.display()))?;
            match Digest::from_hex(&name) {
                Ok(d) => report.layers.push((d, size)),
                Err(_) => report.tmp.push((format!("layers/{name}"), size)),
            }
        }
        let tdir = self.tmp();
        for e in fs::read_dir(&tdir)
            .ctx(|| format!("read {}", tdir.display()))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let p = e.path();
            // A lock file someone holds (a reader outside the writer
            // protocol) stays; with .gc.lock exclusive nobody should.
            if name.ends_with(".lock") {
                match try_lock(&p, FlockOperation::NonBlockingLockExclusive)? {
                    Some(_l) => {
                        let _ = fs::remove_file(&p);
                    }
                    None => continue,
                }
                continue;
            }
            if !partials && name.ends_with(".partial") {
                continue;
            }
            let size = tree_size(&p);
            remove_any(&p).ctx(|| format!("remove {}", p.display()))?;
            report.tmp.push((format!("tmp/{name}"), size));
        }
        // Left by a writer that died between write and rename; taken under
        // .lock so that a live writer's is never touched.
        {
            let _l = self.index_lock()?;
            let _ = fs::remove_file(self.root.join("index.json.tmp"));
        }
        Ok(report)
    }

    /// Mark what `d` reaches: a manifest's config, layers and unpacked
    /// layers; an index's children.
    fn mark(
        &self,
        d: &Descriptor,
        blobs: &mut BTreeSet<String>,
        layers: &mut BTreeSet<String>,
        depth: u32,
    ) {
        blobs.insert(d.digest.hex().to_string());
        if depth > 8 {
            return;
        }
        let Ok(bytes) = self.read_blob(&d.digest) else {
            return;
        };
        match types::parse_manifest(&bytes, None) {
            Ok(types::Parsed::Index(i)) => {
                for c in &i.manifests {
                    self.mark(c, blobs, layers, depth + 1);
                }
            }
            Ok(types::Parsed::Manifest(m)) => {
                blobs.insert(m.config.digest.hex().to_string());
                for l in &m.layers {
                    blobs.insert(l.digest.hex().to_string());
                }
                if let Ok(cfg) = self.read_blob(&m.config.digest) {
                    if let Ok(c) = types::parse_config(&cfg) {
                        for chain in types::chain_ids(&c.rootfs.diff_ids) {
                            layers.insert(chain.hex().to_string());
                        }
                    }
                }
            }
            Err(_) => {}
        }
    }

    /// The image's config.
    pub fn config(&self, r: &ImageRecord) -> Result<types::ImageConfig> {
        types::parse_config(&self.read_blob(&r.id)?).ctx(|| format!("image {}", r.id))
    }

    /// Bytes the image takes unpacked (its layers' sizes; a layer not
    /// unpacked counts with its blob size).
    pub fn image_size(&self, r: &ImageRecord, cfg: &types::ImageConfig) -> u64 {
        let chains = types::chain_ids(&cfg.rootfs.diff_ids);
        let mut total = 0;
        for (i, c) in chains.iter().enumerate() {
            total += match self.layer_info(c) {
                Some(info) => info.size,
                None => r.parsed.layers.get(i).map_or(0, |l| l.size),
            };
        }
        total
    }
}

fn parse_index(bytes: &[u8]) -> Result<Index> {
    let idx: Index =
        serde_json::from_slice(bytes).map_err(|e| Error::msg(format!("invalid index: {e}")))?;
    if idx.schema_version != 2 {
        bail!("invalid index: schemaVersion must be 2");
    }
    Ok(idx)
}

fn merge_entry(r: &mut ImageRecord, e: &Descriptor) {
    if let Some(n) = e.annotation(ANNOTATION_REF_NAME) {
        r.names.push(n.to_string());
    }
    if let Some(d) = e.annotation(ANNOTATION_REPO_DIGEST) {
        r.repo_digests.push(d.to_string());
    }
}

/// The descriptor as an index entry: platform kept, annotations ours.
fn entry(manifest: &Descriptor, name: Option<&str>, repo_digest: Option<&str>) -> Descriptor {
    let mut e = manifest.clone();
    let mut ann = BTreeMap::new();
    if let Some(n) = name {
        ann.insert(ANNOTATION_REF_NAME.to_string(), n.to_string());
    }
    if let Some(d) = repo_digest {
        ann.insert(ANNOTATION_REPO_DIGEST.to_string(), d.to_string());
    }
    e.annotations = (!ann.is_empty()).then_some(ann);
    e
}

fn add_entry(
    idx: &mut Index,
    manifest: &Descriptor,
    name: Option<&str>,
    repo_digest: Option<&str>,
) {
    let same = |e: &Descriptor| e.digest == manifest.digest;
    let Some(name) = name else {
        // No name: a dangling entry, unless the image is there already;
        // a repo digest none of its entries carries gets an entry of its own.
        let known = idx.manifests.iter().any(same);
        let digest_known = repo_digest.is_none_or(|rd| {
            idx.manifests
                .iter()
                .any(|e| same(e) && e.annotation(ANNOTATION_REPO_DIGEST) == Some(rd))
        });
        if !known || !digest_known {
            idx.manifests.push(entry(manifest, None, repo_digest));
        }
        return;
    };
    // The image that had this name loses it.
    if let Some(pos) = idx
        .manifests
        .iter()
        .position(|e| e.annotation(ANNOTATION_REF_NAME) == Some(name))
    {
        let old = idx.manifests.remove(pos);
        if old.digest != manifest.digest {
            let still_there = idx.manifests.iter().any(|e| e.digest == old.digest);
            if !still_there {
                let rd = old.annotation(ANNOTATION_REPO_DIGEST).map(str::to_string);
                idx.manifests.push(entry(&old, None, rd.as_deref()));
            }
        }
    }
    // Its nameless entries carry nothing a named one won't: drop them,
    // keeping their repo digests on the new entry when it has none.
    let mut kept_rd: Option<String> = None;
    idx.manifests.retain(|e| {
        if same(e) && e.annotation(ANNOTATION_REF_NAME).is_none() {
            if kept_rd.is_none() {
                kept_rd = e.annotation(ANNOTATION_REPO_DIGEST).map(str::to_string);
            }
            false
        } else {
            true
        }
    });
    let rd = repo_digest.map(str::to_string).or(kept_rd);
    idx.manifests
        .push(entry(manifest, Some(name), rd.as_deref()));
}

fn remove_name_in(idx: &mut Index, name: &str) -> Removal {
    let mut r = Removal::default();
    let Some(pos) = idx.manifests.iter().position(|e| {
        e.annotation(ANNOTATION_REF_NAME) == Some(name)
            || e.annotation(ANNOTATION_REPO_DIGEST) == Some(name)
    }) else {
        return r;
    };
    let digest = idx.manifests[pos].digest.clone();
    let others_named = idx.manifests.iter().enumerate().any(|(i, e)| {
        i != pos && e.digest == digest && e.annotation(ANNOTATION_REF_NAME).is_some()
    });
    let by_name = idx.manifests[pos].annotation(ANNOTATION_REF_NAME) == Some(name);
    if others_named && by_name {
        let e = idx.manifests.remove(pos);
        r.untagged.push(name.to_string());
        if let Some(d) = e.annotation(ANNOTATION_REPO_DIGEST) {
            let other_has = idx
                .manifests
                .iter()
                .any(|o| o.annotation(ANNOTATION_REPO_DIGEST) == Some(d));
            if !other_has {
                r.untagged.push(d.to_string());
            }
        }
        return r;
    }
    // Its last name: the image goes.
    idx.manifests.retain(|e| {
        if e.digest != digest {
            return true;
        }
        if let Some(n) = e.annotation(ANNOTATION_REF_NAME) {
            r.untagged.push(n.to_string());
        }
        if let Some(d) = e.annotation(ANNOTATION_REPO_DIGEST) {
            r.untagged.push(d.to_string());
        }
        false
    });
    r.untagged.sort();
    r.untagged.dedup();
    r.deleted = Some(digest);
    r
}

/// The short form docker prints for a ref name: "busybox:latest",
/// "ghcr.io/a/b:1", "busybox@sha256:…".
pub fn familiar(ref_name: &str) -> String {
    match Reference::parse(ref_name) {
        Ok(r) => match (&r.tag, &r.digest) {
            (Some(t), _) => format!("{}:{t}", r.familiar_name()),
            (None, Some(d)) => format!("{}@{d}", r.familiar_name()),
            (None, None) => r.familiar_name(),
        },
        Err(_) => ref_name.to_string(),
    }
}

/// `Store::lookup` over a list of images.
pub fn lookup_in(images: &[ImageRecord], s: &str) -> Result<(ImageRecord, Option<String>)> {
    let s = s.trim();
    if s.is_empty() {
        bail!("No such image: {s}");
    }
    // sha256:ID (the full ID only, as docker).
    if let Some(hex) = s.strip_prefix("sha256:") {
        if let Ok(d) = Digest::from_hex(hex) {
            if let Some(r) = images.iter().find(|r| r.id == d) {
                return Ok((r.clone(), None));
            }
        }
        bail!("No such image: {s}");
    }
    if let Ok(rf) = Reference::parse(s) {
        if let Some(dg) = &rf.digest {
            let want = format!("{}@{dg}", rf.name());
            for r in images {
                if r.repo_digests.contains(&want) || r.names.contains(&want) {
                    return Ok((r.clone(), Some(want)));
                }
            }
        } else {
            let want = rf.ref_name();
            for r in images {
                if r.names.contains(&want) {
                    return Ok((r.clone(), Some(want)));
                }
            }
        }
    }
    if s.len() <= 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        let hits: Vec<&ImageRecord> = images
            .iter()
            .filter(|r| r.id.hex().starts_with(s))
            .collect();
        match hits.len() {
            0 => {}
            1 => return Ok((hits[0].clone(), None)),
            n => bail!("ambiguous image ID prefix {s:?}: {n} images match"),
        }
    }
    bail!("No such image: {s}")
}

/// A blob being downloaded: `tmp/<hex>.partial` under `tmp/<hex>.lock`.
pub struct Download {
    file: File,
    path: PathBuf,
    final_path: PathBuf,
    blobs_dir: PathBuf,
    digest: Digest,
    done: bool,
    offset: u64,
    _lock: Locked,
}

impl Download {
    /// The blob was committed meanwhile (by another pull): nothing to do.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Bytes already in the partial file (resume with `Range: bytes=N-`).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The partial bytes from 0 (to re-hash them on resume).
    pub fn partial(&self) -> Result<File> {
        File::open(&self.path).ctx(|| format!("open {}", self.path.display()))
    }

    /// Write new bytes here.
    pub fn append(&mut self) -> &mut File {
        &mut self.file
    }

    /// Commit the partial as the blob, if `computed` is the digest asked
    /// for; else the partial is removed and the error names the blob.
    pub fn commit(self, computed: &Digest, size: u64) -> Result<()> {
        if self.done {
            return Ok(());
        }
        if computed != &self.digest {
            let _ = fs::remove_file(&self.path);
            bail!("blob {}: digest mismatch (got {computed})", self.digest);
        }
        let res = (|| {
            let len = self
                .file
                .metadata()
                .ctx(|| format!("stat {}", self.path.display()))?
                .len();
            if len != size {
                bail!(
                    "blob {}: size mismatch (have {len} bytes, expected {size})",
                    self.digest
                );
            }
            self.file
                .sync_all()
                .ctx(|| format!("fsync {}", self.path.display()))?;
            fs::rename(&self.path, &self.final_path)
                .ctx(|| format!("store blob {}", self.digest))?;
            fsync_dir(&self.blobs_dir)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&self.path);
        }
        res
    }

    /// Remove the partial (corrupt data); keeping it is the default on drop.
    pub fn discard(self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(n: u8) -> Descriptor {
        Descriptor {
            media_type: types::OCI_MANIFEST.into(),
            digest: Digest::of(&[n]),
            size: 1,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
        }
    }

    fn names(idx: &Index) -> Vec<(Digest, Option<String>)> {
        idx.manifests
            .iter()
            .map(|e| {
                (
                    e.digest.clone(),
                    e.annotation(ANNOTATION_REF_NAME).map(str::to_string),
                )
            })
            .collect()
    }

    #[test]
    fn retag_leaves_old_image_dangling() {
        let mut idx = Index::default();
        add_entry(&mut idx, &desc(1), Some("docker.io/library/a:latest"), None);
        add_entry(&mut idx, &desc(2), Some("docker.io/library/a:latest"), None);
        assert_eq!(
            names(&idx),
            vec![
                (desc(1).digest, None),
                (desc(2).digest, Some("docker.io/library/a:latest".into()))
            ]
        );
        // Naming the dangling image again replaces its nameless entry.
        add_entry(&mut idx, &desc(1), Some("docker.io/library/b:1"), None);
        assert_eq!(idx.manifests.len(), 2);
        // The same name twice: one entry.
        add_entry(&mut idx, &desc(1), Some("docker.io/library/b:1"), None);
        assert_eq!(idx.manifests.len(), 2);
        // A nameless add of a known image changes nothing.
        add_entry(&mut idx, &desc(1), None, None);
        assert_eq!(idx.manifests.len(), 2);
    }

    #[test]
    fn retag_keeps_image_named_elsewhere() {
        let mut idx = Index::default();
        add_entry(&mut idx, &desc(1), Some("x/a:1"), None);
        add_entry(&mut idx, &desc(1), Some("x/a:2"), None);
        add_entry(&mut idx, &desc(2), Some("x/a:1"), None);
        assert_eq!(
            names(&idx),
            vec![
                (desc(1).digest, Some("x/a:2".into())),
                (desc(2).digest, Some("x/a:1".into()))
            ]
        );
    }

    #[test]
    fn remove_names() {
        let mut idx = Index::default();
        add_entry(&mut idx, &desc(1), Some("x/a:1"), Some("x/a@sha256:00"));
        add_entry(&mut idx, &desc(1), Some("x/a:2"), None);
        let r = remove_name_in(&mut idx, "x/a:1");
        assert_eq!(
            r.untagged,
            vec!["x/a:1".to_string(), "x/a@sha256:00".to_string()]
        );
        assert!(r.deleted.is_none());
        let r = remove_name_in(&mut idx, "x/a:2");
        assert_eq!(r.deleted, Some(desc(1).digest));
        assert!(idx.manifests.is_empty());
        assert!(remove_name_in(&mut idx, "x/a:2").deleted.is_none());
    }

    fn rec(id: u8, names: &[&str]) -> ImageRecord {
        ImageRecord {
            id: Digest::of(&[id, id]),
            manifest: desc(id),
            names: names.iter().map(|s| s.to_string()).collect(),
            repo_digests: vec![format!("docker.io/library/busybox@{}", Digest::of(&[id]))],
            parsed: Manifest {
                schema_version: 2,
                media_type: None,
                artifact_type: None,
                config: desc(id),
                layers: vec![],
                subject: None,
                annotations: None,
            },
        }
    }

    #[test]
    fn resolve_forms() {
        let imgs = vec![
            rec(1, &["docker.io/library/busybox:latest"]),
            rec(2, &["127.0.0.1:5000/x/y:v1"]),
        ];
        let id1 = imgs[0].id.clone();
        for s in [
            "busybox",
            "busybox:latest",
            "docker.io/library/busybox:latest",
            "library/busybox",
        ] {
            let (r, n) = lookup_in(&imgs, s).unwrap();
            assert_eq!(r.id, id1, "{s}");
            assert_eq!(n.as_deref(), Some("docker.io/library/busybox:latest"));
        }
        assert_eq!(lookup_in(&imgs, id1.as_str()).unwrap().0.id, id1);
        assert_eq!(lookup_in(&imgs, id1.hex()).unwrap().0.id, id1);
        assert_eq!(lookup_in(&imgs, &id1.hex()[..5]).unwrap().0.id, id1);
        assert_eq!(
            lookup_in(&imgs, "127.0.0.1:5000/x/y:v1").unwrap().0.id,
            imgs[1].id
        );
        let rd = format!("busybox@{}", Digest::of(&[1]));
        assert_eq!(lookup_in(&imgs, &rd).unwrap().0.id, id1);
        assert_eq!(
            lookup_in(&imgs, "nope").unwrap_err().to_string(),
            "No such image: nope"
        );
        assert!(lookup_in(&imgs, "busybox:1").is_err());
        assert!(lookup_in(&imgs, "sha256:abc").is_err());
        // An ambiguous prefix: "" never matches, and a one-digit prefix
        // shared by both is refused.
        let a = imgs[0].id.hex().as_bytes()[0];
        let mut two = imgs.clone();
        let mut other = rec(3, &[]);
        let mut hex = other.id.hex().to_string();
        hex.replace_range(0..1, &(a as char).to_string());
        other.id = Digest::from_hex(&hex).unwrap();
        two.push(other);
        let p = (a as char).to_string();
        let e = lookup_in(&two, &p).unwrap_err().to_string();
        assert!(e.contains("ambiguous"), "{e}");
    }

    #[test]
    fn index_roundtrip_on_disk() {
        let dir = std::env::temp_dir().join(unique("runway-store-test"));
        let s = Store::open(&dir).unwrap();
        assert!(dir.join("oci-layout").is_file());
        assert!(s.images().unwrap().is_empty());
        let cfg =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let cd = s.put_blob(None, cfg).unwrap();
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{cd}","size":{}}},"layers":[]}}"#,
            types::OCI_MANIFEST,
            types::OCI_CONFIG,
            cfg.len()
        );
        let md = s.put_blob(None, m.as_bytes()).unwrap();
        assert!(s.put_blob(Some(&cd), b"x").is_err());
        let d = Descriptor {
            digest: md.clone(),
            size: m.len() as u64,
            ..desc(0)
        };
        s.add_image(&d, Some(&Reference::parse("busybox").unwrap()), None)
            .unwrap();
        let imgs = s.images().unwrap();
        assert_eq!(imgs.len(), 1);
        assert_eq!(imgs[0].id, cd);
        assert_eq!(s.resolve("busybox").unwrap().id, cd);
        // Re-opening keeps index.json.
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.images().unwrap().len(), 1);
        let r = s.remove_name("docker.io/library/busybox:latest").unwrap();
        assert_eq!(r.deleted, Some(md));
        let g = s.gc().unwrap();
        assert_eq!(g.blobs.len(), 2);
        assert_eq!(fs::read_dir(dir.join("blobs/sha256")).unwrap().count(), 0);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn download_commit_and_mismatch() {
        let dir = std::env::temp_dir().join(unique("runway-store-dl"));
        let s = Store::open(&dir).unwrap();
        let d = Digest::of(b"hello");
        let mut dl = s.download(&d).unwrap();
        assert!(!dl.done());
        dl.append().write_all(b"hel").unwrap();
        drop(dl);
        let mut dl = s.download(&d).unwrap();
        assert_eq!(dl.offset(), 3);
        dl.append().write_all(b"lo").unwrap();
        dl.commit(&d, 5).unwrap();
        assert!(s.has_blob(&d));
        assert!(s.download(&d).unwrap().done());
        let d2 = Digest::of(b"other");
        let mut dl = s.download(&d2).unwrap();
        dl.append().write_all(b"wrong").unwrap();
        let e = dl.commit(&Digest::of(b"wrong"), 5).unwrap_err().to_string();
        assert!(e.contains(d2.as_str()) && e.contains("mismatch"), "{e}");
        assert!(!s.has_blob(&d2));
        assert!(!dir
            .join("tmp")
            .join(format!("{}.partial", d2.hex()))
            .exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
