//! The distribution API's handlers: one request (routed by route.rs) to
//! one response, against the store.

use super::route::{self, route, Miss, Route};
use super::store::{self, Store};
use super::{ApiErr, Resp, Server};
use crate::http::codec::RequestHead;
use crate::image::digest::Digest;
use serde_json::{json, Value};
use std::fs::File;
use std::io::Read;

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn miss(m: Miss) -> ApiErr {
    match m {
        Miss::NotFound => ApiErr::new(404, "NOT_FOUND", "no such endpoint"),
        Miss::Method => ApiErr::new(405, "UNSUPPORTED", "method not allowed here"),
        Miss::NameInvalid => ApiErr::new(400, "NAME_INVALID", "invalid repository name"),
        Miss::DigestInvalid => ApiErr::new(400, "DIGEST_INVALID", "invalid digest"),
        Miss::TagInvalid => ApiErr::new(400, "TAG_INVALID", "invalid tag"),
    }
}

/// `?n=&last=` on a sorted list: the page, and the Link to the next one.
fn paginate(
    all: Vec<String>,
    n: Option<&str>,
    last: Option<&str>,
    path: &str,
) -> Result<(Vec<String>, Option<String>), ApiErr> {
    let n: Option<usize> = match n {
        Some(s) => Some(
            s.parse()
                .map_err(|_| ApiErr::new(400, "PAGINATION_NUMBER_INVALID", "invalid n"))?,
        ),
        None => None,
    };
    let mut page: Vec<String> = all
        .into_iter()
        .filter(|t| last.is_none_or(|l| t.as_str() > l))
        .collect();
    let mut link = None;
    if let Some(n) = n {
        if page.len() > n {
            page.truncate(n);
            if let Some(l) = page.last() {
                link = Some(format!("<{path}?n={n}&last={l}>; rel=\"next\""));
            }
        }
    }
    Ok((page, link))
}

/// A Range header against a blob of `size`: Ok(None) for the whole blob,
/// Ok(Some((start, len))) for one satisfiable range, Err for 416.
fn parse_range(h: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    let Some((a, b)) = spec.split_once('-').filter(|_| !spec.contains(',')) else {
        return Ok(None);
    };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => match num(b) {
            Some(0) => return Err(()),
            Some(n) => (size.saturating_sub(n), size.saturating_sub(1)),
            None => return Ok(None),
        },
        (false, _) => match (
            num(a),
            if b.trim().is_empty() {
                Some(u64::MAX)
            } else {
                num(b)
            },
        ) {
            (Some(a), Some(b)) if a <= b => (a, b.min(size.saturating_sub(1))),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    if start >= size {
        return Err(());
    }
    Ok(Some((start, end - start + 1)))
}

fn upload_resp(status: u16, name: &str, id: &str, len: u64) -> Resp {
    Resp::new(status)
        .h("Location", format!("/v2/{name}/blobs/uploads/{id}"))
        .h("Range", format!("0-{}", len.saturating_sub(1)))
        .h("Docker-Upload-UUID", id.to_string())
}

fn blob_created(name: &str, d: &Digest) -> Resp {
    Resp::new(201)
        .h("Location", format!("/v2/{name}/blobs/{d}"))
        .h("Docker-Content-Digest", d.to_string())
}

/// A PATCH or PUT's Content-Range (`a-b`) must start where the upload is.
fn check_offset(req: &RequestHead, name: &str, id: &str, len: u64) -> Result<(), ApiErr> {
    let Some(cr) = req.headers.get("content-range") else {
        return Ok(());
    };
    let cr = cr
        .trim_start_matches("bytes")
        .trim_start_matches([' ', '=']);
    let start = cr
        .split(['-', '/'])
        .next()
        .and_then(|s| s.trim().parse::<u64>().ok());
    if start == Some(len) {
        return Ok(());
    }
    let mut e = ApiErr::new(
        416,
        "BLOB_UPLOAD_INVALID",
        format!("upload is at {len}, not at {cr}"),
    );
    e.headers = upload_resp(416, name, id, len).headers;
    Err(e)
}

pub fn handle(srv: &Server, req: &RequestHead, body: &mut dyn Read) -> Result<Resp, ApiErr> {
    if let Some(a) = &srv.auth {
        if !a.check(req.headers.get("authorization")) {
            return Err(ApiErr::new(401, "UNAUTHORIZED", "authentication required"));
        }
    }
    let r = route(&req.method, &req.target).map_err(miss)?;
    if srv.read_only && r.route.writes() {
        return Err(ApiErr::new(
            405,
            "UNSUPPORTED",
            "this registry is read-only",
        ));
    }
    let s: &Store = &srv.store;
    match r.route.clone() {
        Route::Base => Ok(Resp::json(200, &json!({}))),
        Route::Catalog => {
            let (page, link) = paginate(s.catalog(), r.q("n"), r.q("last"), "/v2/_catalog")?;
            Ok(Resp::json(200, &json!({ "repositories": page })).link(link))
        }
        Route::Tags(name) => {
            let all = s
                .tags(&name)
                .ok_or_else(|| ApiErr::new(404, "NAME_UNKNOWN", format!("no repository {name}")))?;
            let (page, link) =
                paginate(all, r.q("n"), r.q("last"), &format!("/v2/{name}/tags/list"))?;
            Ok(Resp::json(200, &json!({ "name": name, "tags": page })).link(link))
        }
        Route::GetManifest(name, rf) => {
            let (d, media, bytes) = s
                .manifest(&name, &rf)
                .ok_or_else(|| ApiErr::new(404, "MANIFEST_UNKNOWN", "manifest unknown"))?;
            Ok(Resp::bytes(200, &media, bytes).h("Docker-Content-Digest", d.to_string()))
        }
        Route::PutManifest(name, rf) => {
            let mut bytes = Vec::new();
            body.take(store::MAX_MANIFEST + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| {
                    ApiErr::new(
                        400,
                        "MANIFEST_INVALID",
                        format!("reading the manifest: {e}"),
                    )
                    .close()
                })?;
            if bytes.len() as u64 > store::MAX_MANIFEST {
                return Err(ApiErr::new(413, "SIZE_INVALID", "manifest larger than 4 MiB").close());
            }
            let m: Value = serde_json::from_slice(&bytes)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    ApiErr::new(400, "MANIFEST_INVALID", "manifest is not a JSON object")
                })?;
            let ct = req
                .headers
                .get("content-type")
                .map(|c| c.split(';').next().unwrap_or("").trim());
            let media = m
                .get("mediaType")
                .and_then(Value::as_str)
                .or(ct.filter(|c| !c.is_empty()))
                .ok_or_else(|| {
                    ApiErr::new(400, "MANIFEST_INVALID", "manifest without a media type")
                })?
                .to_string();
            let (d, subject) = s.put_manifest(&name, &rf, &bytes, &media, &m)?;
            let mut resp = Resp::new(201)
                .h("Location", format!("/v2/{name}/manifests/{d}"))
                .h("Docker-Content-Digest", d.to_string());
            if let Some(sub) = subject {
                resp = resp.h("OCI-Subject", sub.to_string());
            }
            Ok(resp)
        }
        Route::DeleteManifest(name, rf) => match s.delete_manifest(&name, &rf) {
            true => Ok(Resp::new(202)),
            false => Err(ApiErr::new(404, "MANIFEST_UNKNOWN", "manifest unknown")),
        },
        Route::GetBlob(name, d) => {
            let unknown =
                || ApiErr::new(404, "BLOB_UNKNOWN", "blob unknown").detail(json!({ "digest": d }));
            let size = s.blob_size(&name, &d).ok_or_else(unknown)?;
            let f = File::open(s.blob_path(&d)).map_err(|_| unknown())?;
            let resp = |status| {
                Resp::new(status)
                    .h("Content-Type", "application/octet-stream".into())
                    .h("Docker-Content-Digest", d.to_string())
                    .h("Accept-Ranges", "bytes".into())
            };
            match parse_range(req.headers.get("range"), size) {
                Ok(None) => Ok(resp(200).file(f, 0, size)),
                Ok(Some((at, len))) => Ok(resp(206)
                    .h(
                        "Content-Range",
                        format!("bytes {at}-{}/{size}", at + len - 1),
                    )
                    .file(f, at, len)),
                Err(()) => {
                    let mut e = ApiErr::new(416, "BLOB_UNKNOWN", "range not satisfiable");
                    e.headers.push(("Content-Range", format!("bytes */{size}")));
                    Err(e)
                }
            }
        }
        Route::DeleteBlob(name, d) => match s.delete_blob(&name, &d) {
            true => Ok(Resp::new(202)),
            false => Err(ApiErr::new(404, "BLOB_UNKNOWN", "blob unknown")),
        },
        Route::StartUpload(name) => {
            if let (Some(m), Some(from)) = (r.q("mount"), r.q("from")) {
                if let Ok(d) = Digest::parse(m) {
                    if route::valid_name(from) && s.mount(&name, from, &d) {
                        return Ok(blob_created(&name, &d));
                    }
                }
            }
            let want = match r.q("digest") {
                Some(d) => {
                    Some(Digest::parse(d).map_err(|e| ApiErr::new(400, "DIGEST_INVALID", e.ctx))?)
                }
                None => None,
            };
            let id = s.upload_new(&name)?;
            let Some(d) = want else {
                return Ok(upload_resp(202, &name, &id, 0).h("Content-Length", "0".into()));
            };
            let done = s
                .upload_append(&id, 0, body)
                .and_then(|n| s.upload_commit(&name, &id, n, &d));
            if done.is_err() {
                s.upload_cancel(&id);
            }
            done.map(|_| blob_created(&name, &d))
        }
        Route::UploadStatus(name, id)
        | Route::PatchUpload(name, id)
        | Route::PutUpload(name, id)
        | Route::CancelUpload(name, id) => {
            let len = s
                .upload_len(&name, &id)
                .ok_or_else(|| ApiErr::new(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown"))?;
            match req.method.as_str() {
                "GET" => Ok(upload_resp(204, &name, &id, len)),
                "DELETE" => {
                    s.upload_cancel(&id);
                    Ok(Resp::new(204))
                }
                "PATCH" => {
                    check_offset(req, &name, &id, len)?;
                    let n = s.upload_append(&id, len, body)?;
                    Ok(upload_resp(202, &name, &id, n))
                }
                _ => {
                    let d = r
                        .q("digest")
                        .and_then(|d| Digest::parse(d).ok())
                        .ok_or_else(|| {
                            ApiErr::new(400, "DIGEST_INVALID", "PUT without a valid ?digest=")
                        })?;
                    check_offset(req, &name, &id, len)?;
                    let n = s.upload_append(&id, len, body)?;
                    s.upload_commit(&name, &id, n, &d)?;
                    Ok(blob_created(&name, &d))
                }
            }
        }
        Route::Referrers(name, d) => {
            let at = r.q("artifactType");
            let list = s.referrers(&name, &d, at);
            let doc = json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": list });
            let resp = Resp::bytes(200, INDEX, doc.to_string().into_bytes());
            Ok(match at {
                Some(_) => resp.h("OCI-Filters-Applied", "artifactType".into()),
                None => resp,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=2-4"), 10), Ok(Some((2, 3))));
        assert_eq!(parse_range(Some("bytes=2-"), 10), Ok(Some((2, 8))));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some((7, 3))));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), Ok(Some((5, 5))));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=-0"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=4-2"), 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), Ok(None));
    }

    #[test]
    fn pages() {
        let all: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let (p, l) = paginate(all.clone(), Some("2"), None, "/v2/x/tags/list").unwrap();
        assert_eq!(p, ["a", "b"]);
        assert_eq!(l.unwrap(), "</v2/x/tags/list?n=2&last=b>; rel=\"next\"");
        let (p, l) = paginate(all, Some("2"), Some("b"), "/").unwrap();
        assert_eq!((p, l), (vec!["c".to_string()], None));
    }
}
