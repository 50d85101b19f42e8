//! Push: an image from the store to a registry (blobs the registry lacks, then the manifest).
//!
//! Blobs go as the store keeps them (compressed, as pulled or imported)
//! and the manifest with its bytes and media type unchanged, so the
//! registry serves the digest the store knows. Each blob: HEAD (there:
//! skipped), else a cross-repository mount when the image came from
//! another repository of the same registry (its repo digest says so),
//! else an upload streamed from the blob file (one PUT, or PATCHes of
//! `chunk` bytes and a closing PUT). Sequential: a push is bounded by
//! the uplink, not by round trips. A blob missing from the store is an
//! error (imports and pulls keep every blob; nothing is rebuilt).

use super::digest::Digest;
use super::reference::Reference;
use super::registry::{auth, upload_location, Client, ClientOptions};
use super::store::Store;
use crate::bail;
use crate::error::{Error, Result};
use crate::http::client::Request;
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
    let what = format!("push {}", dst.ref_name());
    let manifest = store.read_blob(&img.manifest.digest)?;
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
    let digest = (|| {
        let client = Client::new(ClientOptions::new(
            &dst.registry,
            &opts.data_root,
            &opts.insecure_registries,
        ))?;
        let m = &img.parsed;
        // The config, then the layers bottom up; docker lists layers only.
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
                opts.chunk,
            )?;
            if i > 0 && !opts.quiet {
                match status {
                    "Mounted from " => {
                        println!("{}: {status}{}", d.short(), from.as_deref().unwrap_or(""))
                    }
                    _ => println!("{}: {status}", d.short()),
                }
            }
        }
        let media_type = match img.manifest.media_type.as_str() {
            "" => super::types::OCI_MANIFEST,
            m => m,
        };
        let path = format!("/v2/{repo}/manifests/{}", dst.api_reference());
        let req = Request {
            headers: &[("Content-Type", media_type)],
            body: &manifest,
            ..Request::new("PUT", &path)
        };
        let resp = client.push_call(&req, &scope, &[200, 201])?;
        let d = Digest::of(&manifest);
        match resp.header("docker-content-digest") {
            Some(h) if h != d.as_str() => Err(Error::msg(format!(
                "manifest {d}: the registry says its digest is {h}"
            ))),
            _ => Ok(d),
        }
    })()
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
    chunk: u64,
) -> Result<&'static str> {
    let blob = format!("/v2/{repo}/blobs/{d}");
    if client
        .push_call(&Request::new("HEAD", &blob), scope, &[200, 404])?
        .status
        == 200
    {
        return Ok("Layer already exists");
    }
    // Opened before the upload starts: a blob the store lacks is the error.
    let file = File::open(store.blob_path(d)).map_err(|_| {
        Error::msg(format!(
            "blob {d}: not in the store; pull or import the image again"
        ))
    })?;
    let len = file.metadata().map_or(0, |m| m.len());
    if len != size {
        bail!("blob {d}: {len} bytes in the store, the manifest says {size}");
    }
    let mut path = format!("/v2/{repo}/blobs/uploads/");
    if let Some(f) = from {
        path += &format!("?mount={d}&from={f}");
    }
    let resp = client.push_call(&Request::new("POST", &path), scope, &[201, 202])?;
    if resp.status == 201 {
        return Ok("Mounted from ");
    }
    let mut url = upload_location(&resp)?;
    let octet = ("Content-Type", "application/octet-stream");
    let mut off = 0;
    while chunk > 0 && off < len {
        let n = chunk.min(len - off);
        let range = content_range(off, n);
        let req = Request {
            headers: &[octet, ("Content-Range", &range)],
            file: Some((&file, off, n)),
            ..Request::new("PATCH", &url)
        };
        url = upload_location(&client.push_call(&req, scope, &[202])?)?;
        off += n;
    }
    // What is left (all of it when not chunked) with the closing PUT.
    let put = with_digest(&url, d);
    let req = Request {
        headers: &[octet],
        file: Some((&file, off, len - off)),
        ..Request::new("PUT", &put)
    };
    client.push_call(&req, scope, &[201])?;
    Ok("Pushed")
}

/// The closing PUT's URL: the upload's (its query, the upload's state,
/// kept) plus `digest=`.
fn with_digest(url: &str, d: &Digest) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}digest={d}")
}

/// A PATCH's Content-Range (the distribution spec's form: inclusive, no
/// unit): `0-1023` for 1024 bytes from 0.
fn content_range(offset: u64, len: u64) -> String {
    format!("{offset}-{}", (offset + len).saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_urls_and_ranges() {
        assert_eq!(content_range(0, 1024), "0-1023");
        assert_eq!(content_range(1024, 1), "1024-1024");
        let d = Digest::of(b"");
        assert_eq!(
            with_digest("http://r/v2/a/blobs/uploads/u?_state=x", &d),
            format!("http://r/v2/a/blobs/uploads/u?_state=x&digest={d}")
        );
        assert_eq!(
            with_digest("https://r/u", &d),
            format!("https://r/u?digest={d}")
        );
    }
}
