//! image import: OCI layouts (dir or tar), docker-archives and plain rootfs tarballs into the store.
//!
//! A tar is read once to tell what it is (names only; a rootfs tarball
//! shows itself at its first entry that no archive has), then once more to
//! import it: an archive's files are streamed into staging files while
//! hashed, never held in memory, and then handled like a layout directory.
//! Every blob is verified (digest and size against its descriptor, layers
//! against their diff_ids); when anything fails, what this import added to
//! the store is removed again.

use super::decompress::{self, Compression};
use super::digest::{Digest, HashReader};
use super::reference::Reference;
use super::store::Store;
use super::types::{self, Descriptor, ImageConfig, Manifest, Platform, MAX_JSON_BLOB};
use super::unpack;
use crate::bail;
use crate::error::{Context, Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// One image the import stored.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The config digest (image ID).
    pub id: Digest,
    /// The names it was given (full ref names).
    pub names: Vec<String>,
    /// It came from a plain rootfs tarball.
    pub rootfs: bool,
}

/// Import `src` (a path) into `store`, naming the image `name` if given.
pub fn import(store: &Store, src: &Path, name: Option<&Reference>) -> Result<Vec<Imported>> {
    import_with(store, src, name, &[])
}

/// `import` with docker's `--change` instructions, which apply to a
/// rootfs tarball's new config (an archive brings its own config).
pub fn import_with(
    store: &Store,
    src: &Path,
    name: Option<&Reference>,
    changes: &[String],
) -> Result<Vec<Imported>> {
    let mut cfg = serde_json::json!({});
    for c in changes {
        apply_change(&mut cfg, c)?;
    }
    let w = store.writer()?;
    let mut txn = Txn::default();
    let res = import_any(store, src, name, &cfg, !changes.is_empty(), &mut txn);
    drop(w);
    if res.is_err() {
        // What this import stored is referenced by no image: a gc removes
        // it, unless another writer runs (whose data it might be too):
        // then the next rm or prune does.
        let _ = store.try_gc();
    }
    res
}

fn import_any(
    store: &Store,
    src: &Path,
    name: Option<&Reference>,
    changes: &serde_json::Value,
    changed: bool,
    txn: &mut Txn,
) -> Result<Vec<Imported>> {
    let refuse_changes = || {
        if changed {
            bail!("--change applies to a rootfs tarball only: an image archive has its own config");
        }
        Ok(())
    };
    let md = fs::metadata(src).ctx(|| format!("open {}", src.display()))?;
    if md.is_dir() {
        refuse_changes()?;
        let s = Source::Dir(src.to_path_buf());
        return import_archive(store, &s, name, txn);
    }
    let kind = classify(src)?;
    match kind {
        Kind::Rootfs => import_rootfs(store, src, name, changes, txn),
        Kind::Archive => {
            refuse_changes()?;
            let staged = stage(store, src)?;
            let r = import_archive(store, &staged, name, txn);
            drop(staged);
            r
        }
    }
}

/// What a tar file holds.
#[derive(Debug, PartialEq)]
enum Kind {
    Rootfs,
    Archive,
}

/// Compression of a file by its magic bytes.
fn file_compression(path: &Path) -> Result<Compression> {
    let mut f = File::open(path).ctx(|| format!("open {}", path.display()))?;
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        let k = f
            .read(&mut head[n..])
            .ctx(|| format!("read {}", path.display()))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(Compression::sniff(&head[..n]))
}

/// Whether a tar entry name could be part of an OCI layout or a docker-archive.
fn archive_like(name: &str) -> bool {
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        [""] | ["oci-layout"] | ["index.json"] | ["manifest.json"] | ["repositories"] => true,
        ["blobs"] | ["blobs", "sha256"] => true,
        ["blobs", _, h] => hex(h),
        // <hex>.json configs, <hex>.tar layers (skopeo's docker-archive).
        [f] if f.len() > 65 && f.as_bytes()[64] == b'.' => hex(&f[..64]),
        [h] => hex(h),
        [h, "VERSION" | "json" | "layer.tar"] => hex(h),
        _ => false,
    }
}

/// "./a//b/" -> "a/b"; None for a name with `..`.
fn clean(name: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

/// A tar reader over `path`, decompressed.
fn open_tar(path: &Path) -> Result<Box<dyn Read + Send>> {
    let comp = file_compression(path)?;
    let f = File::open(path).ctx(|| format!("open {}", path.display()))?;
    Ok(decompress::reader(comp, f))
}

/// A tar read error: the disk's in its errno words, else the data's fault.
fn bad_tar(e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(n) => Error::errno("read archive", n),
        None => Error::msg(format!("invalid tar archive: {}", unpack::tar_words(&e))),
    }
}

/// Rootfs tarball or image archive, by the names in it.
fn classify(path: &Path) -> Result<Kind> {
    let mut named = 0u64;
    let mut note = |name: &str| -> bool {
        let Some(n) = clean(name) else { return false };
        named += u64::from(!n.is_empty());
        archive_like(&n)
    };
    if file_compression(path)? == Compression::None {
        // Uncompressed: seek past file data instead of reading it.
        let f = File::open(path).ctx(|| format!("open {}", path.display()))?;
        let mut ar = tar::Archive::new(f);
        for e in ar.entries_with_seek().map_err(bad_tar)? {
            let e = e.map_err(bad_tar)?;
            let p = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            if !note(&p) {
                return Ok(Kind::Rootfs);
            }
        }
    } else {
        let mut ar = tar::Archive::new(open_tar(path)?);
        for e in ar.entries().map_err(bad_tar)? {
            let e = e.map_err(bad_tar)?;
            let p = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            if !note(&p) {
                return Ok(Kind::Rootfs);
            }
        }
    }
    // Only names an image archive has: one, complete or not (a missing
    // manifest.json or index.json is then its error, not a rootfs).
    if named == 0 {
        bail!("invalid archive: no files in it");
    }
    Ok(Kind::Archive)
}

/// Where an archive's files are: a directory, or staged from a tar.
enum Source {
    Dir(PathBuf),
    Staged(Staged),
}

/// A tar's regular files, each in a staging file with its digest.
struct Staged {
    dir: PathBuf,
    files: BTreeMap<String, (PathBuf, Digest, u64)>,
    links: BTreeMap<String, String>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Read the tar `src` once, streaming each regular file into a staging
/// file under the store's tmp/ while hashing it.
fn stage(store: &Store, src: &Path) -> Result<Source> {
    let dir = store.root().join("tmp").join(format!(
        "import.{}.{}",
        std::process::id(),
        crate::timefmt::now().1
    ));
    fs::create_dir(&dir).ctx(|| format!("create {}", dir.display()))?;
    let mut staged = Staged {
        dir,
        files: BTreeMap::new(),
        links: BTreeMap::new(),
    };
    let mut ar = tar::Archive::new(open_tar(src)?);
    for (i, e) in ar.entries().map_err(bad_tar)?.enumerate() {
        let e = e.map_err(bad_tar)?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let Some(name) = clean(&raw) else {
            bail!("invalid archive: entry {raw:?} leaves the archive");
        };
        match e.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let p = staged.dir.join(i.to_string());
                let mut out = File::create(&p).ctx(|| format!("create {}", p.display()))?;
                let mut hr = HashReader::new(e);
                io::copy(&mut hr, &mut out).map_err(|err| match err.raw_os_error() {
                    Some(n) => Error::errno(format!("stage {name}"), n),
                    None => Error::msg(format!(
                        "invalid tar archive: {name}: {}",
                        unpack::tar_words(&err)
                    )),
                })?;
                let (d, size) = hr.finish().map_err(bad_tar)?;
                staged.files.insert(name, (p, d, size));
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let base = if e.header().entry_type() == tar::EntryType::Link {
                    String::new()
                } else {
                    name.rsplit_once('/')
                        .map(|(d, _)| d.to_string())
                        .unwrap_or_default()
                };
                if let Some(t) = clean(&format!("{base}/{target}")) {
                    staged.links.insert(name, t);
                }
            }
            _ => {}
        }
    }
    Ok(Source::Staged(staged))
}

impl Source {
    /// The staged file for `name` (links followed), or its path in the dir.
    fn locate(&self, name: &str) -> Result<(PathBuf, Option<(Digest, u64)>)> {
        let Some(mut n) = clean(name) else {
            bail!("invalid archive: {name:?} leaves the archive");
        };
        match self {
            Source::Dir(d) => Ok((d.join(n), None)),
            Source::Staged(s) => {
                for _ in 0..16 {
                    if let Some((p, d, size)) = s.files.get(&n) {
                        return Ok((p.clone(), Some((d.clone(), *size))));
                    }
                    match s.links.get(&n) {
                        Some(t) => n = t.clone(),
                        None => break,
                    }
                }
                bail!("invalid archive: no file {name:?} in it")
            }
        }
    }

    fn exists(&self, name: &str) -> bool {
        match self {
            Source::Dir(d) => d.join(name).exists(),
            Source::Staged(_) => self.locate(name).is_ok(),
        }
    }

    /// A small (JSON) file.
    fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        let (p, _) = self.locate(name)?;
        let f = File::open(&p).ctx(|| format!("invalid archive: {name}"))?;
        let mut b = Vec::new();
        f.take(MAX_JSON_BLOB + 1)
            .read_to_end(&mut b)
            .ctx(|| format!("read {name}"))?;
        if b.len() as u64 > MAX_JSON_BLOB {
            bail!("invalid archive: {name} is larger than {MAX_JSON_BLOB} bytes");
        }
        Ok(b)
    }

    /// Store the file `name` as a blob, verified against `expect` (digest
    /// and size) when given; returns its digest and size.
    fn commit(
        &self,
        store: &Store,
        txn: &mut Txn,
        name: &str,
        expect: Option<(&Digest, Option<u64>)>,
    ) -> Result<(Digest, u64)> {
        let (path, known) = self.locate(name)?;
        let (d, size, staged) = match known {
            Some((d, size)) => (d, size, None),
            None => {
                // A directory's file: copied into tmp/ while hashed.
                let tmp = store.root().join("tmp").join(format!(
                    "import-blob.{}.{}",
                    std::process::id(),
                    txn.seq()
                ));
                let res = (|| {
                    let f = File::open(&path).ctx(|| format!("invalid layout: {name}"))?;
                    let mut out = File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
                    let mut hr = HashReader::new(f);
                    io::copy(&mut hr, &mut out).ctx(|| format!("copy {name}"))?;
                    let (d, size) = hr.finish().ctx(|| format!("read {name}"))?;
                    Ok((d, size))
                })();
                match res {
                    Ok((d, size)) => (d, size, Some(tmp)),
                    Err(e) => {
                        let _ = fs::remove_file(&tmp);
                        return Err(e);
                    }
                }
            }
        };
        let cleanup = |staged: &Option<PathBuf>| {
            if let Some(t) = staged {
                let _ = fs::remove_file(t);
            }
        };
        if let Some((want, want_size)) = expect {
            if &d != want {
                cleanup(&staged);
                bail!("blob {want}: digest mismatch (got {d})");
            }
            if let Some(ws) = want_size {
                if ws != size {
                    cleanup(&staged);
                    bail!("blob {want}: size mismatch (got {size} bytes, expected {ws})");
                }
            }
        }
        if store.has_blob(&d) {
            cleanup(&staged);
            return Ok((d, size));
        }
        // A staged tar file may be named by two entries (links): copy it
        // then, else move it.
        let file = match staged {
            Some(t) => t,
            None => {
                let t = store.root().join("tmp").join(format!(
                    "import-blob.{}.{}",
                    std::process::id(),
                    txn.seq()
                ));
                fs::hard_link(&path, &t)
                    .or_else(|_| fs::copy(&path, &t).map(|_| ()))
                    .ctx(|| format!("stage {name}"))?;
                t
            }
        };
        store.put_blob_file(&d, &file)?;
        Ok((d, size))
    }
}

/// One import's state: names for its temporary files.
#[derive(Default)]
struct Txn {
    n: usize,
}

impl Txn {
    fn seq(&mut self) -> usize {
        self.n += 1;
        self.n
    }
}

/// OCI layout or docker-archive, from a directory or a staged tar.
fn import_archive(
    store: &Store,
    src: &Source,
    name: Option<&Reference>,
    txn: &mut Txn,
) -> Result<Vec<Imported>> {
    if src.exists("oci-layout") && src.exists("index.json") {
        import_oci(store, src, name, txn)
    } else if src.exists("manifest.json") {
        import_docker(store, src, name, txn)
    } else {
        bail!("invalid archive: neither an OCI image layout (oci-layout, index.json) nor a docker-archive (manifest.json)")
    }
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// The name an OCI layout gives an image: containerd's full name, or a
/// ref name that is a whole reference (skopeo's `oci:dir:busybox:1`);
/// a bare tag ("latest") names nothing.
fn layout_name(d: &Descriptor) -> Option<Reference> {
    if let Some(n) = d.annotation("io.containerd.image.name") {
        if let Ok(r) = Reference::parse(n) {
            return Some(r);
        }
    }
    let n = d.annotation(types::ANNOTATION_REF_NAME)?;
    if !n.contains(':') && !n.contains('/') {
        return None;
    }
    Reference::parse(n).ok()
}

fn import_oci(
    store: &Store,
    src: &Source,
    name: Option<&Reference>,
    txn: &mut Txn,
) -> Result<Vec<Imported>> {
    let layout = src.read_small("oci-layout")?;
    let v: serde_json::Value = serde_json::from_slice(&layout)
        .map_err(|e| Error::msg(format!("invalid oci-layout: {e}")))?;
    if v.get("imageLayoutVersion")
        .and_then(|v| v.as_str())
        .is_none()
    {
        bail!("invalid oci-layout: no imageLayoutVersion");
    }
    let idx = match types::parse_manifest(&src.read_small("index.json")?, Some(types::OCI_INDEX))
        .ctx(|| "index.json")?
    {
        types::Parsed::Index(i) => i,
        types::Parsed::Manifest(_) => bail!("index.json: not an index"),
    };
    // (manifest descriptor, its name) per image, one per manifest+name.
    let mut wanted: Vec<(Descriptor, Option<Reference>)> = Vec::new();
    for e in &idx.manifests {
        let n = layout_name(e);
        let bytes = verified_small(src, e)?;
        let m = match types::parse_manifest(&bytes, Some(&e.media_type))
            .ctx(|| format!("manifest {}", e.digest))?
        {
            types::Parsed::Manifest(_) => e.clone(),
            types::Parsed::Index(i) => {
                let c =
                    types::select_platform(&i, &Platform::host(), &format!("index {}", e.digest))?;
                c.clone()
            }
        };
        if !wanted
            .iter()
            .any(|(d, nn)| d.digest == m.digest && nn == &n)
        {
            wanted.push((m, n));
        }
    }
    if wanted.is_empty() {
        bail!("invalid archive: index.json lists no image");
    }
    let distinct: std::collections::BTreeSet<&Digest> =
        wanted.iter().map(|w| &w.0.digest).collect();
    if name.is_some() && distinct.len() > 1 {
        bail!(
            "the layout holds {} images; import it without a name to keep theirs",
            distinct.len()
        );
    }
    let mut out: Vec<Imported> = Vec::new();
    for (d, n) in &wanted {
        let bytes = verified_small(src, d)?;
        let m = match types::parse_manifest(&bytes, Some(&d.media_type))
            .ctx(|| format!("manifest {}", d.digest))?
        {
            types::Parsed::Manifest(m) => *m,
            types::Parsed::Index(_) => bail!("manifest {}: an index inside an index", d.digest),
        };
        let id = import_manifest(store, src, txn, &m, &bytes, &d.media_type)?;
        let n = name.cloned().or_else(|| n.clone());
        let names = record(store, &id.0, n.as_ref())?;
        match out.iter_mut().find(|o| o.id == id.1) {
            Some(o) => o.names.extend(names),
            None => out.push(Imported {
                id: id.1,
                names,
                rootfs: false,
            }),
        }
    }
    Ok(out)
}

/// Read a small blob of the archive, verified against its descriptor.
fn verified_small(src: &Source, d: &Descriptor) -> Result<Vec<u8>> {
    if d.size > MAX_JSON_BLOB {
        bail!(
            "blob {}: {} bytes is too large for a manifest",
            d.digest,
            d.size
        );
    }
    let bytes = src.read_small(&blob_name(&d.digest))?;
    let got = Digest::of(&bytes);
    if got != d.digest {
        bail!("blob {}: digest mismatch (got {got})", d.digest);
    }
    if bytes.len() as u64 != d.size {
        bail!(
            "blob {}: size mismatch (got {} bytes, expected {})",
            d.digest,
            bytes.len(),
            d.size
        );
    }
    Ok(bytes)
}

/// Store one image's config and layers (verified, layers unpacked);
/// returns the index descriptor for its manifest and its ID.
fn import_manifest(
    store: &Store,
    src: &Source,
    txn: &mut Txn,
    m: &Manifest,
    bytes: &[u8],
    media_type: &str,
) -> Result<(Descriptor, Digest)> {
    let cfg_bytes = verified_small(src, &m.config)?;
    let id = m.config.digest.clone();
    let cfg = types::parse_config(&cfg_bytes).ctx(|| format!("config {id}"))?;
    let mut layers = Vec::new();
    for l in &m.layers {
        let Some(comp) = types::layer_compression(&l.media_type) else {
            bail!(
                "layer {}: unsupported media type {:?}",
                l.digest,
                l.media_type
            );
        };
        let (d, _) = src.commit(
            store,
            txn,
            &blob_name(&l.digest),
            Some((&l.digest, Some(l.size))),
        )?;
        layers.push((d, comp));
    }
    ingest_layers(store, &cfg, &layers)?;
    store.put_blob(Some(&id), &cfg_bytes)?;
    let digest = store.put_blob(None, bytes)?;
    let size = bytes.len() as u64;
    let mt = m
        .media_type
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| media_type.to_string());
    Ok((descriptor(&mt, &digest, size, &cfg), id))
}

/// The index descriptor of a manifest: platform from the config.
fn descriptor(media_type: &str, digest: &Digest, size: u64, cfg: &ImageConfig) -> Descriptor {
    Descriptor {
        media_type: if media_type.is_empty() {
            types::OCI_MANIFEST.to_string()
        } else {
            media_type.to_string()
        },
        digest: digest.clone(),
        size,
        urls: None,
        annotations: None,
        platform: Some(Platform {
            architecture: cfg.architecture.clone(),
            os: cfg.os.clone(),
            os_version: None,
            os_features: None,
            variant: cfg.variant.clone(),
        }),
        artifact_type: None,
    }
}

/// Unpack each stored layer blob, checking its diff_id (an error names
/// the layer); then one sync for all of it.
fn ingest_layers(store: &Store, cfg: &ImageConfig, layers: &[(Digest, Compression)]) -> Result<()> {
    if layers.len() != cfg.rootfs.diff_ids.len() {
        bail!(
            "invalid image: {} layers but {} diff_ids in its config",
            layers.len(),
            cfg.rootfs.diff_ids.len()
        );
    }
    let chains = types::chain_ids(&cfg.rootfs.diff_ids);
    for (i, (d, comp)) in layers.iter().enumerate() {
        let chain = &chains[i];
        if !store.has_layer(chain) {
            let mut f = File::open(store.blob_path(d)).ctx(|| format!("open blob {d}"))?;
            store.ingest_layer(&mut f, *comp, &cfg.rootfs.diff_ids[i], chain)?;
        }
    }
    store.sync()
}

/// Compression of a stored blob by its first bytes.
fn blob_compression(store: &Store, d: &Digest) -> Result<Compression> {
    file_compression(&store.blob_path(d))
}

/// Name the image in index.json (or record it nameless); returns the names.
fn record(store: &Store, desc: &Descriptor, name: Option<&Reference>) -> Result<Vec<String>> {
    store.add_image(desc, name, None)?;
    Ok(name.map(|n| vec![n.ref_name()]).unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

fn import_docker(
    store: &Store,
    src: &Source,
    name: Option<&Reference>,
    txn: &mut Txn,
) -> Result<Vec<Imported>> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(&src.read_small("manifest.json")?)
        .map_err(|e| Error::msg(format!("invalid manifest.json: {e}")))?;
    if entries.is_empty() {
        bail!("invalid archive: manifest.json lists no image");
    }
    if name.is_some() && entries.len() > 1 {
        bail!(
            "the archive holds {} images; import it without a name to keep theirs",
            entries.len()
        );
    }
    let mut out: Vec<Imported> = Vec::new();
    for e in &entries {
        let cfg_bytes = src.read_small(&e.config)?;
        let id = Digest::of(&cfg_bytes);
        if let Some(h) = legacy_hex(&e.config) {
            if h != id.hex() {
                bail!("blob sha256:{h}: digest mismatch (got {id})");
            }
        }
        let cfg = types::parse_config(&cfg_bytes).ctx(|| format!("config {id}"))?;
        // Layers named by their digest (blobs/sha256/<hex>) are verified by
        // it too; legacy <id>/layer.tar ones by their diff_id alone.
        let mut stored = Vec::new();
        for l in &e.layers {
            let want = clean(l)
                .filter(|n| n.starts_with("blobs/sha256/"))
                .and_then(|n| legacy_hex(&n))
                .and_then(|h| Digest::from_hex(&h).ok());
            let (d, size) = src.commit(store, txn, l, want.as_ref().map(|w| (w, None)))?;
            let comp = blob_compression(store, &d)?;
            stored.push((d, size, comp));
        }
        let layers: Vec<(Digest, Compression)> =
            stored.iter().map(|(d, _, c)| (d.clone(), *c)).collect();
        ingest_layers(store, &cfg, &layers)?;
        if !store.has_blob(&id) {
            store.put_blob(Some(&id), &cfg_bytes)?;
        }
        let m = Manifest {
            schema_version: 2,
            media_type: Some(types::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config: Descriptor {
                media_type: types::OCI_CONFIG.to_string(),
                digest: id.clone(),
                size: cfg_bytes.len() as u64,
                urls: None,
                annotations: None,
                platform: None,
                artifact_type: None,
            },
            layers: stored
                .iter()
                .map(|(d, size, comp)| Descriptor {
                    media_type: layer_media_type(*comp).to_string(),
                    digest: d.clone(),
                    size: *size,
                    urls: None,
                    annotations: None,
                    platform: None,
                    artifact_type: None,
                })
                .collect(),
            subject: None,
            annotations: None,
        };
        let mbytes =
            serde_json::to_vec(&m).map_err(|e| Error::msg(format!("encode manifest: {e}")))?;
        let md = Digest::of(&mbytes);
        if !store.has_blob(&md) {
            store.put_blob(Some(&md), &mbytes)?;
        }
        let desc = descriptor(types::OCI_MANIFEST, &md, mbytes.len() as u64, &cfg);
        let mut names = Vec::new();
        let tags: Vec<Reference> = match name {
            Some(n) => vec![n.clone()],
            None => e
                .repo_tags
                .iter()
                .flatten()
                .map(|t| Reference::parse(t).ctx(|| "manifest.json RepoTags"))
                .collect::<Result<_>>()?,
        };
        if tags.is_empty() {
            names.extend(record(store, &desc, None)?);
        }
        for t in &tags {
            names.extend(record(store, &desc, Some(t))?);
        }
        match out.iter_mut().find(|o| o.id == id) {
            Some(o) => o.names.extend(names),
            None => out.push(Imported {
                id,
                names,
                rootfs: false,
            }),
        }
    }
    Ok(out)
}

/// The hex of "blobs/sha256/<hex>" or "<hex>.json".
fn legacy_hex(path: &str) -> Option<String> {
    let n = clean(path)?;
    let h = n
        .strip_prefix("blobs/sha256/")
        .or_else(|| n.strip_suffix(".json"))?;
    (h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| h.to_string())
}

fn layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => types::OCI_LAYER,
        Compression::Gzip => types::OCI_LAYER_GZIP,
        Compression::Zstd => types::OCI_LAYER_ZSTD,
    }
}

/// A reader that copies what it reads into `out`. A write error is kept:
/// the decompressor and unpacker it passes through may reword it, and a
/// full disk must be reported in the kernel's words.
struct Tee<R, W> {
    inner: R,
    out: W,
    failed: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let again = io::Error::new(e.kind(), e.to_string());
            self.failed = Some(e);
            return Err(again);
        }
        Ok(n)
    }
}

/// A plain rootfs tarball as a one-layer image: the file is the layer
/// blob as it is; read once, into the blob and the unpacked layer at once.
fn import_rootfs(
    store: &Store,
    src: &Path,
    name: Option<&Reference>,
    changes: &serde_json::Value,
    txn: &mut Txn,
) -> Result<Vec<Imported>> {
    let comp = file_compression(src)?;
    let tmp =
        store
            .root()
            .join("tmp")
            .join(format!("import-blob.{}.{}", std::process::id(), txn.seq()));
    let res = (|| {
        let f = File::open(src).ctx(|| format!("open {}", src.display()))?;
        let out = File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        let mut tee = Tee {
            inner: HashReader::new(f),
            out,
            failed: None,
        };
        let (diff_id, _) = match store.ingest_base_layer(&mut tee, comp) {
            Ok(v) => v,
            Err(e) => match tee.failed.take() {
                Some(w) => return Err(w).ctx(|| format!("write {}", tmp.display())),
                None => return Err(e),
            },
        };
        // Bytes after the end of the compressed stream belong to the blob.
        io::copy(&mut tee, &mut io::sink()).ctx(|| format!("read {}", src.display()))?;
        let Tee { inner, out, .. } = tee;
        drop(out);
        let (d, size) = inner.finish().ctx(|| format!("read {}", src.display()))?;
        Ok((diff_id, d, size))
    })();
    let (diff_id, blob, size) = match res {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if !store.has_blob(&blob) {
        store.put_blob_file(&blob, &tmp)?;
    } else {
        let _ = fs::remove_file(&tmp);
    }
    let host = Platform::host();
    let now = crate::timefmt::rfc3339(crate::timefmt::now().0);
    let mut cfg = serde_json::json!({
        "created": now,
        "architecture": host.architecture,
        "os": host.os,
        "config": changes,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": now, "created_by": "runway image import"}],
    });
    if let Some(v) = &host.variant {
        cfg["variant"] = serde_json::Value::String(v.clone());
    }
    let cfg_bytes =
        serde_json::to_vec(&cfg).map_err(|e| Error::msg(format!("encode config: {e}")))?;
    let parsed = types::parse_config(&cfg_bytes)?;
    let id = Digest::of(&cfg_bytes);
    if !store.has_blob(&id) {
        store.put_blob(None, &cfg_bytes)?;
    }
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": types::OCI_MANIFEST,
        "config": {"mediaType": types::OCI_CONFIG, "digest": id, "size": cfg_bytes.len()},
        "layers": [{"mediaType": layer_media_type(comp), "digest": blob, "size": size}],
    });
    let mbytes = serde_json::to_vec(&m).map_err(|e| Error::msg(format!("encode manifest: {e}")))?;
    let md = Digest::of(&mbytes);
    if !store.has_blob(&md) {
        store.put_blob(None, &mbytes)?;
    }
    store.sync()?;
    let desc = descriptor(types::OCI_MANIFEST, &md, mbytes.len() as u64, &parsed);
    let names = record(store, &desc, name)?;
    Ok(vec![Imported {
        id,
        names,
        rootfs: true,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names() {
        let h = "a".repeat(64);
        for n in [
            "oci-layout",
            "index.json",
            "manifest.json",
            "repositories",
            "blobs",
            "blobs/sha256",
        ] {
            assert!(archive_like(n), "{n}");
        }
        assert!(archive_like(&format!("blobs/sha256/{h}")));
        assert!(archive_like(&format!("{h}.json")));
        assert!(archive_like(&format!("{h}/layer.tar")));
        for n in [
            "bin",
            "etc/passwd",
            "bin/sh",
            "blobs/sha256/x",
            "index.html",
        ] {
            assert!(!archive_like(n), "{n}");
        }
        assert_eq!(clean("./a//b/").as_deref(), Some("a/b"));
        assert_eq!(clean("a/../b"), None);
        assert_eq!(legacy_hex(&format!("{h}.json")), Some(h.clone()));
        assert_eq!(legacy_hex(&format!("{h}/layer.tar")), None);
    }
}

/// One docker `--change` instruction (Dockerfile syntax) applied to an
/// image config's `config` object: CMD, ENTRYPOINT (JSON or shell form),
/// ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL.
pub fn apply_change(cfg: &mut serde_json::Value, change: &str) -> Result<()> {
    use serde_json::{json, Value};
    let change = change.trim();
    let (word, rest) = change
        .split_once(char::is_whitespace)
        .map(|(w, r)| (w, r.trim()))
        .unwrap_or((change, ""));
    let bad = |why: &str| Error::msg(format!("--change {change:?}: {why}"));
    if rest.is_empty() {
        return Err(bad("needs an argument"));
    }
    let Some(obj) = cfg.as_object_mut() else {
        return Err(bad("config is not an object"));
    };
    // `["a","b"]` or a shell line, run by /bin/sh -c (Dockerfile rules).
    let words = |shell: bool| -> Result<Value> {
        if rest.starts_with('[') {
            let v: Vec<String> =
                serde_json::from_str(rest).map_err(|_| bad("not a JSON array of strings"))?;
            return Ok(json!(v));
        }
        if shell {
            Ok(json!(["/bin/sh", "-c", rest]))
        } else {
            Ok(json!(rest.split_whitespace().collect::<Vec<_>>()))
        }
    };
    // `K=V K2=V2` or the old `K V` form.
    let pairs = || -> Result<Vec<(String, String)>> {
        if !rest.contains('=') {
            let (k, v) = rest
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad("want KEY=VALUE"))?;
            return Ok(vec![(k.to_string(), v.trim().to_string())]);
        }
        rest.split_whitespace()
            .map(|kv| {
                let (k, v) = kv.split_once('=').ok_or_else(|| bad("want KEY=VALUE"))?;
                Ok((k.to_string(), v.trim_matches('"').to_string()))
            })
            .collect()
    };
    match word.to_ascii_uppercase().as_str() {
        "CMD" => {
            obj.insert("Cmd".into(), words(true)?);
        }
        "ENTRYPOINT" => {
            obj.insert("Entrypoint".into(), words(true)?);
        }
        "WORKDIR" => {
            obj.insert("WorkingDir".into(), json!(rest));
        }
        "USER" => {
            obj.insert("User".into(), json!(rest));
        }
        "STOPSIGNAL" => {
            obj.insert("StopSignal".into(), json!(rest));
        }
        "ENV" => {
            let mut env: Vec<String> = obj
                .get("Env")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            for (k, v) in pairs()? {
                env.retain(|e| e.split('=').next() != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
            obj.insert("Env".into(), json!(env));
        }
        "LABEL" => {
            let labels = obj.entry("Labels").or_insert_with(|| json!({}));
            for (k, v) in pairs()? {
                labels[k] = json!(v);
            }
        }
        "EXPOSE" => {
            let ports = obj.entry("ExposedPorts").or_insert_with(|| json!({}));
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                ports[p] = json!({});
            }
        }
        "VOLUME" => {
            let list = match words(false)? {
                Value::Array(a) => a,
                _ => Vec::new(),
            };
            let vols = obj.entry("Volumes").or_insert_with(|| json!({}));
            for v in list {
                if let Some(v) = v.as_str() {
                    vols[v] = json!({});
                }
            }
        }
        other => return Err(bad(&format!("{other} is not a supported instruction"))),
    }
    Ok(())
}

#[cfg(test)]
mod change_tests {
    use super::apply_change;

    #[test]
    fn changes_follow_dockerfile_rules() {
        let mut c = serde_json::json!({});
        apply_change(&mut c, r#"CMD ["sh"]"#).unwrap();
        apply_change(&mut c, "ENTRYPOINT echo hi").unwrap();
        apply_change(&mut c, "ENV A=1 B=2").unwrap();
        apply_change(&mut c, "ENV A 3").unwrap();
        apply_change(&mut c, "WORKDIR /srv").unwrap();
        apply_change(&mut c, "EXPOSE 80 53/udp").unwrap();
        apply_change(&mut c, "LABEL k=v").unwrap();
        apply_change(&mut c, "VOLUME /data").unwrap();
        assert_eq!(c["Cmd"], serde_json::json!(["sh"]));
        assert_eq!(
            c["Entrypoint"],
            serde_json::json!(["/bin/sh", "-c", "echo hi"])
        );
        assert_eq!(c["Env"], serde_json::json!(["B=2", "A=3"]));
        assert_eq!(c["WorkingDir"], "/srv");
        assert!(c["ExposedPorts"].get("80/tcp").is_some());
        assert!(c["ExposedPorts"].get("53/udp").is_some());
        assert_eq!(c["Labels"]["k"], "v");
        assert!(c["Volumes"].get("/data").is_some());
        assert!(apply_change(&mut c, "RUN make").is_err());
        assert!(apply_change(&mut c, "CMD").is_err());
        assert!(apply_change(&mut c, "CMD [1,2]").is_err());
    }
}
