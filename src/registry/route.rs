//! The request router: method, path and query of a request target to a
//! [`Route`], with repository names, tags and digests validated by the
//! distribution spec's grammar. Pure (no I/O), so it is fuzzed
//! (fuzz/fuzz_targets/registry.rs) and unit-tested.

use crate::image::digest::Digest;

/// A manifest reference: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ref {
    Tag(String),
    Digest(Digest),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Base,
    Catalog,
    Tags(String),
    /// GET or HEAD (the head flag of [`Routed`]).
    GetManifest(String, Ref),
    PutManifest(String, Ref),
    DeleteManifest(String, Ref),
    GetBlob(String, Digest),
    DeleteBlob(String, Digest),
    StartUpload(String),
    UploadStatus(String, String),
    PatchUpload(String, String),
    PutUpload(String, String),
    CancelUpload(String, String),
    Referrers(String, Digest),
}

impl Route {
    /// Whether the route changes the store (refused by --read-only).
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Route::Base
                | Route::Catalog
                | Route::Tags(_)
                | Route::GetManifest(..)
                | Route::GetBlob(..)
                | Route::UploadStatus(..)
                | Route::Referrers(..)
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routed {
    pub route: Route,
    pub head: bool,
    pub query: Vec<(String, String)>,
}

impl Routed {
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request has no route: each maps to one spec error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    NotFound,
    Method,
    NameInvalid,
    DigestInvalid,
    TagInvalid,
}

/// `%XX` decoded; None for a bad escape or a result that is not UTF-8.
pub fn percent_decode(s: &str, plus_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
                continue;
            }
            b'+' if plus_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        match &c[sep..i] {
            "." | "_" | "__" => {}
            s if s.bytes().all(|x| x == b'-') => {}
            _ => return false,
        }
    }
}

/// A repository name by the spec's grammar (at most 255 bytes, as
/// docker's registry limits it).
pub fn valid_name(n: &str) -> bool {
    n.len() <= 255 && n.split('/').all(valid_component)
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

fn reference(s: &str) -> Result<Ref, Miss> {
    if s.contains(':') {
        Digest::parse(s)
            .map(Ref::Digest)
            .map_err(|_| Miss::DigestInvalid)
    } else if valid_tag(s) {
        Ok(Ref::Tag(s.to_string()))
    } else {
        Err(Miss::TagInvalid)
    }
}

/// Route one request. `target` is the origin-form request target.
pub fn route(method: &str, target: &str) -> Result<Routed, Miss> {
    let (path, qs) = target.split_once('?').unwrap_or((target, ""));
    let mut query = Vec::new();
    for kv in qs.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match (percent_decode(k, true), percent_decode(v, true)) {
            (Some(k), Some(v)) => query.push((k, v)),
            _ => return Err(Miss::NotFound),
        }
    }
    let head = method == "HEAD";
    let get = method == "GET" || head;
    let rest = path.strip_prefix("/v2").ok_or(Miss::NotFound)?;
    let one = |route: Route, ok: bool| {
        if ok {
            Ok(Routed {
                route,
                head,
                query: query.clone(),
            })
        } else {
            Err(Miss::Method)
        }
    };
    if rest.is_empty() || rest == "/" {
        return one(Route::Base, get);
    }
    if rest == "/_catalog" {
        return one(Route::Catalog, get);
    }
    let rest = rest.strip_prefix('/').ok_or(Miss::NotFound)?;
    let mut segs = Vec::new();
    for s in rest.split('/') {
        segs.push(percent_decode(s, false).ok_or(Miss::NotFound)?);
    }
    let n = segs.len();
    let seg = |i: usize| segs.get(n.wrapping_sub(i)).map(String::as_str);
    // (segments the resource takes at the end, the resource's kind)
    let (take, kind) = match (seg(3), seg(2), seg(1)) {
        (Some("blobs"), Some("uploads"), Some(_)) => (3, "upload"),
        (_, Some("blobs"), Some("uploads")) if method == "POST" => (2, "start"),
        (_, Some("blobs"), Some(_)) => (2, "blob"),
        (_, Some("manifests"), Some(_)) => (2, "manifest"),
        (_, Some("tags"), Some("list")) => (2, "tags"),
        (_, Some("referrers"), Some(_)) => (2, "referrers"),
        _ => return Err(Miss::NotFound),
    };
    if n <= take {
        return Err(Miss::NotFound);
    }
    let name = segs[..n - take].join("/");
    if !valid_name(&name) {
        return Err(Miss::NameInvalid);
    }
    let last = segs[n - 1].clone();
    let digest = |s: &str| Digest::parse(s).map_err(|_| Miss::DigestInvalid);
    match kind {
        "upload" if last.is_empty() && method == "POST" => one(Route::StartUpload(name), true),
        "upload" => {
            if last.is_empty()
                || last.len() > 64
                || !last.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(Miss::NotFound);
            }
            let r = match method {
                "GET" => Route::UploadStatus(name, last),
                "PATCH" => Route::PatchUpload(name, last),
                "PUT" => Route::PutUpload(name, last),
                "DELETE" => Route::CancelUpload(name, last),
                _ => return Err(Miss::Method),
            };
            one(r, true)
        }
        "start" => one(Route::StartUpload(name), true),
        "blob" => {
            let d = digest(&last)?;
            match method {
                "DELETE" => one(Route::DeleteBlob(name, d), true),
                _ => one(Route::GetBlob(name, d), get),
            }
        }
        "manifest" => {
            let r = reference(&last)?;
            match method {
                "PUT" => one(Route::PutManifest(name, r), true),
                "DELETE" => one(Route::DeleteManifest(name, r), true),
                _ => one(Route::GetManifest(name, r), get),
            }
        }
        "tags" => one(Route::Tags(name), get),
        _ => one(Route::Referrers(name, digest(&last)?), get),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn names() {
        for ok in ["a", "library/busybox", "a.b_c__d---e/f0", "x/y/z", "0"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a..b", "a___b", "-a", "a-", "a_.b", "a b",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_tag("v1.0_rc-1") && valid_tag("_x") && !valid_tag(".x") && !valid_tag(""));
        assert!(!valid_tag(&"a".repeat(129)) && valid_tag(&"a".repeat(128)));
    }

    #[test]
    fn routes() {
        let r = |m: &str, t: &str| route(m, t).map(|r| r.route);
        assert_eq!(r("GET", "/v2/"), Ok(Route::Base));
        assert_eq!(r("GET", "/v2"), Ok(Route::Base));
        assert_eq!(r("POST", "/v2/"), Err(Miss::Method));
        assert_eq!(r("GET", "/v2/_catalog?n=1"), Ok(Route::Catalog));
        assert_eq!(r("GET", "/v2/a/b/tags/list"), Ok(Route::Tags("a/b".into())));
        assert_eq!(
            r("HEAD", "/v2/a/manifests/latest"),
            Ok(Route::GetManifest("a".into(), Ref::Tag("latest".into())))
        );
        let d = Digest::parse(D).unwrap();
        assert_eq!(
            r("PUT", &format!("/v2/a/manifests/{}", D.replace(':', "%3A"))),
            Ok(Route::PutManifest("a".into(), Ref::Digest(d.clone())))
        );
        assert_eq!(
            r("GET", &format!("/v2/m/blobs/{D}")),
            Ok(Route::GetBlob("m".into(), d.clone()))
        );
        assert_eq!(
            r("DELETE", &format!("/v2/m/blobs/{D}")),
            Ok(Route::DeleteBlob("m".into(), d.clone()))
        );
        assert_eq!(
            r("POST", "/v2/a/blobs/uploads/"),
            Ok(Route::StartUpload("a".into()))
        );
        assert_eq!(
            r("POST", "/v2/a/blobs/uploads"),
            Ok(Route::StartUpload("a".into()))
        );
        assert_eq!(
            r("PATCH", "/v2/a/blobs/uploads/ab-12"),
            Ok(Route::PatchUpload("a".into(), "ab-12".into()))
        );
        assert_eq!(
            r("PUT", "/v2/a/blobs/uploads/u?digest=x"),
            Ok(Route::PutUpload("a".into(), "u".into()))
        );
        assert_eq!(
            r("GET", &format!("/v2/a/referrers/{D}")),
            Ok(Route::Referrers("a".into(), d))
        );
        // A repository may be called "blobs" or "manifests".
        assert_eq!(
            r("GET", "/v2/manifests/manifests/x"),
            Ok(Route::GetManifest("manifests".into(), Ref::Tag("x".into())))
        );
        assert_eq!(r("GET", "/v2/Bad/tags/list"), Err(Miss::NameInvalid));
        assert_eq!(
            r("GET", "/v2/a%2Fb/tags/list"),
            Ok(Route::Tags("a/b".into()))
        );
        assert_eq!(r("GET", "/v2/a/blobs/sha256:12"), Err(Miss::DigestInvalid));
        assert_eq!(r("PUT", "/v2/a/manifests/.bad"), Err(Miss::TagInvalid));
        assert_eq!(r("GET", "/v2/tags/list"), Err(Miss::NotFound));
        assert_eq!(r("GET", "/x"), Err(Miss::NotFound));
        assert_eq!(r("GET", "/v2/a/blobs/uploads/u%zz"), Err(Miss::NotFound));
        let q = route("POST", "/v2/a/blobs/uploads/?mount=sha256%3Aab&from=b%2Fc").unwrap();
        assert_eq!(
            (q.q("mount"), q.q("from")),
            (Some("sha256:ab"), Some("b/c"))
        );
        assert!(route("HEAD", "/v2/").unwrap().head);
    }

    /// The fuzz target's invariants on pseudo-random targets built from
    /// the router's own vocabulary (cargo fuzz runs them far longer).
    #[test]
    fn random_targets_keep_invariants() {
        let words = [
            "/v2",
            "/",
            "a",
            "B",
            "..",
            "-",
            "_",
            "__",
            "%2F",
            "%zz",
            "%3A",
            "blobs",
            "uploads",
            "manifests",
            "tags",
            "list",
            "referrers",
            "_catalog",
            "?",
            "&",
            "=",
            "digest",
            D,
            "sha256:",
            "x.y",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut t = String::new();
            for _ in 0..(seed % 9) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                t.push_str(words[(seed % words.len() as u64) as usize]);
            }
            for m in ["GET", "PUT", "POST", "PATCH", "DELETE"] {
                if let Ok(r) = route(m, &t) {
                    let name = match &r.route {
                        Route::Tags(n)
                        | Route::StartUpload(n)
                        | Route::GetManifest(n, _)
                        | Route::GetBlob(n, _) => Some(n),
                        _ => None,
                    };
                    assert!(name.is_none_or(|n| valid_name(n)), "{m} {t}");
                    assert_eq!(route(m, &t), Ok(r));
                }
            }
        }
    }
}
