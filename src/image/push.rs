//! Push: an image from the store to a registry (blobs the registry lacks, then the manifest).
//!
//! Blobs go as the store keeps them (compressed, as pulled or imported)
//! and the manifest with its bytes and media type unchanged, so the
//! registry serves the digest the store knows. Each blob: HEAD (there:
//! skipped), else a cross-repository mount when the image came from
//! another repository of the same registry (its repo digest says so),
//! else an upload streamed from the blob file (one PUT, or PATCHes of
//! `chunk` bytes and a closing PUT). Sequential: a push is bounded by
//! the uplink, not by round trips, and one connection keeps it simple.

use super::digest::Digest;
use super::reference::Reference;
use super::registry::{auth, Client, ClientOptions};
use super::store::Store;
use crate::bail;
use crate::error::{Context, Error, Result};
use std::fs::File;
use std::path::PathBuf;

pub struct PushOpts {
    pub data_root: PathBuf,
    pub insecure_registries: Vec<String>,
    /// 0: each blob in one PUT; else PATCHes of this many bytes.
    pub chunk: u64,
    pub quiet: bool,
}

/// What a push did.
pub struct Pushed {
    pub dst: Reference,
    pub digest: Digest,
    pub size: u64,
}

/// Push the stored image `src` as `dst` (default: the name `src` is).
pub fn push(src: &str, dst: Option<Reference>, opts: &PushOpts) -> Result<Pushed> {
    let store = Store::open(&opts.data_root)?;
    // Held for the whole push: no gc removes a blob being sent.
    let _writer = store.writer()?;
    let (img, name) = store.lookup(src)?;
    let dst = match (dst, name) {
        (Some(d), _) => d,
        (None, Some(n)) => Reference::parse(&n)?,
        (None, None) => bail!("push {src}: an image ID: name a DESTINATION"),
    };
    if dst.digest.is_some() {
        bail!("push {dst}: cannot push to a digest reference; give a tag");
    }
    let what = format!("push {}", dst.ref_name());
    let manifest = store.read_blob(&img.manifest.digest)?;
    let media_type = match img.manifest.media_type.as_str() {
        "" => super::types::OCI_MANIFEST,
        m => m,
    };
    let client = Client::new(ClientOptions::new(
        &dst.registry,
        &opts.data_root,
        &opts.insecure_registries,
    ))
    .map_err(|e| e.wrap(&what))?;
    let repo = &dst.repository;
    // Another repository of this registry the image came from: its blobs
    // can be mounted rather than sent again.
    let from = img.repo_digests.iter().find_map(|rd| {
        let r = Reference::parse(rd).ok()?;
        (r.registry == dst.registry && &r.repository != repo).then_some(r.repository)
    });
    let scope = auth::push_scope(repo, from.as_deref());
    if !opts.quiet {
        println!("The push refers to repository [{}]", dst.name());
    }
    let m = &img.parsed;
    // The config first (docker's order does not matter to registries),
    // then the layers, bottom up; docker lists layers only.
    for (i, desc) in std::iter::once(&m.config).chain(&m.layers).enumerate() {
        let d = &desc.digest;
        let status = push_blob(
            &store,
            &client,
            repo,
            d,
            desc.size,
            from.as_deref(),
            &scope,
            opts,
        )
        .map_err(|e| e.wrap(&what))?;
        if i > 0 && !opts.quiet {
            println!("{}: {status}", d.short());
        }
    }
    let reference = dst.api_reference();
    let digest = client
        .put_manifest(repo, &reference, &manifest, media_type, &scope)
        .map_err(|e| e.wrap(&what))?;
    // Where the image now is, as a pull records it: `image ls --digests`
    // shows it and a later push to another repository mounts from it.
    let _ = store.add_image(
        &img.manifest,
        None,
        Some(&format!("{}@{digest}", dst.name())),
    );
    Ok(Pushed {
        dst,
        digest,
        size: manifest.len() as u64,
    })
}

/// One blob; what docker prints for it.
#[allow(clippy::too_many_arguments)]
fn push_blob(
    store: &Store,
    client: &Client,
    repo: &str,
    d: &Digest,
    size: u64,
    from: Option<&str>,
    scope: &str,
    opts: &PushOpts,
) -> Result<String> {
    if client.has_blob(repo, d, scope)? {
        return Ok("Layer already exists".into());
    }
    // Open before the upload starts: a blob the store lacks is the error.
    let path = store.blob_path(d);
    let file = File::open(&path).map_err(|e| {
        Error::msg(format!(
            "blob {d}: not in the store ({}); pull or import the image again",
            crate::http::client::io_words(&e)
        ))
    })?;
    let len = file.metadata().ctx(|| format!("blob {d}"))?.len();
    if len != size {
        bail!("blob {d}: {len} bytes in the store, the manifest says {size}");
    }
    let mut url = match client.start_upload(repo, from.map(|f| (d, f)), scope)? {
        None => return Ok(format!("Mounted from {}", from.unwrap_or(""))),
        Some(u) => u,
    };
    if opts.chunk == 0 {
        client.upload(&url, Some((&file, 0, len)), Some(d), scope)?;
    } else {
        let mut off = 0;
        while off < len {
            let n = opts.chunk.min(len - off);
            url = client.upload(&url, Some((&file, off, n)), None, scope)?;
            off += n;
        }
        client.upload(&url, None, Some(d), scope)?;
    }
    Ok("Pushed".into())
}
