//! The HTTP/1.1 codec on untrusted bytes, as the registry server and the
//! reverse proxy will see them: the first byte picks request or response
//! head and the body framing, the rest is the wire. Nothing may panic; a
//! parsed head must survive being written and parsed again; a body reader
//! must never read past its message nor return more than its length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runway::http::codec::{self, Body, Framing};
use std::io::{BufReader, Read};

fn body(rest: &[u8], framing: Framing, cap: usize) {
    // A tiny buffer makes every boundary cross a fill.
    let r = BufReader::with_capacity(cap, rest);
    let mut b = Body::new(r, framing);
    let mut out = Vec::new();
    let ok = b.read_to_end(&mut out).is_ok();
    if let Framing::Length(n) = framing {
        assert!(out.len() as u64 <= n);
        if ok {
            assert_eq!(out.len() as u64, n);
        }
    }
    if framing == Framing::Chunked {
        assert!(out.len() <= rest.len());
    }
    assert!(!ok || b.done() || framing == Framing::Close);
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, wire)) = data.split_first() else {
        return;
    };
    let cap = 1 + usize::from(sel >> 4);
    let mut r = BufReader::with_capacity(cap, wire);
    let Ok(head) = codec::read_head(&mut r) else {
        return;
    };
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    if sel & 1 == 0 {
        let Ok(h) = codec::parse_request_head(&head) else {
            return;
        };
        let fields: Vec<(&str, &str)> = h.headers.iter().collect();
        let mut again = Vec::new();
        if codec::write_request_head(&mut again, &h.method, &h.target, &fields).is_ok() {
            let h2 = codec::parse_request_head(&again).expect("a written head parses");
            assert_eq!((h2.method.as_str(), h2.target.as_str()), (h.method.as_str(), h.target.as_str()));
            assert_eq!(h2.headers.len(), h.headers.len());
        }
        let _ = codec::keep_alive(h.minor, &h.headers);
        if let Ok(f) = codec::request_framing(&h.headers) {
            body(&rest, f, cap);
        }
    } else {
        let Ok(h) = codec::parse_response_head(&head) else {
            return;
        };
        let method = if sel & 2 == 0 { "GET" } else { "HEAD" };
        let _ = codec::keep_alive(h.minor, &h.headers);
        if let Ok(f) = codec::response_framing(method, h.status, &h.headers) {
            body(&rest, f, cap);
        }
    }
});
