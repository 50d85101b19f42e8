//! The registry server's router on untrusted request lines: method and
//! target (path, percent escapes, query) to a route. Nothing may panic;
//! every routed repository name obeys the spec's grammar and every tag
//! its pattern; parsing the target a second time gives the same route.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runway::registry::route::{self, Ref, Route};

const METHODS: [&str; 6] = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"];

fn name_of(r: &Route) -> Option<&str> {
    match r {
        Route::Base | Route::Catalog => None,
        Route::Tags(n) | Route::StartUpload(n) => Some(n),
        Route::GetManifest(n, _) | Route::PutManifest(n, _) | Route::DeleteManifest(n, _) => Some(n),
        Route::GetBlob(n, _) | Route::DeleteBlob(n, _) | Route::Referrers(n, _) => Some(n),
        Route::UploadStatus(n, _) | Route::PatchUpload(n, _) => Some(n),
        Route::PutUpload(n, _) | Route::CancelUpload(n, _) => Some(n),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(target) = std::str::from_utf8(rest) else {
        return;
    };
    let method = METHODS[usize::from(sel) % METHODS.len()];
    let _ = route::percent_decode(target, sel & 0x80 != 0);
    let Ok(r) = route::route(method, target) else {
        return;
    };
    if let Some(n) = name_of(&r.route) {
        assert!(route::valid_name(n), "{n:?}");
    }
    if let Route::GetManifest(_, Ref::Tag(t)) | Route::PutManifest(_, Ref::Tag(t)) = &r.route {
        assert!(route::valid_tag(t));
    }
    assert_eq!(route::route(method, target), Ok(r));
});
