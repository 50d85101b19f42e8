//! The image parsers, one input each: the first byte picks the parser,
//! the rest is its input. References must round-trip through their
//! printed form; manifests, indexes and configs must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runway::image::digest::Digest;
use runway::image::reference::Reference;
use runway::image::types::{self, Platform};

fn reference(s: &str) {
    if let Ok(r) = Reference::parse(s) {
        let again = Reference::parse(&r.to_string()).expect("a printed reference parses");
        assert_eq!(again, r, "{s:?} does not round-trip");
        let named = Reference::parse(&r.ref_name()).expect("a ref name parses");
        assert_eq!(named.name(), r.name());
        let _ = (r.familiar_name(), r.api_host(), r.api_reference());
    }
}

fn manifest(data: &[u8]) {
    let cts = [
        None,
        Some(types::OCI_INDEX),
        Some(types::OCI_MANIFEST),
        Some(types::DOCKER_LIST),
        Some(types::DOCKER_MANIFEST),
        Some(types::DOCKER_SCHEMA1_SIGNED),
    ];
    let ct = cts[data.first().map_or(0, |b| usize::from(*b) % cts.len())];
    if let Ok(types::Parsed::Index(i)) = types::parse_manifest(data.get(1..).unwrap_or(&[]), ct) {
        let _ = types::select_platform(&i, &Platform::host(), "fuzz");
        if let Ok(p) = Platform::parse("linux/arm64/v8") {
            let _ = types::select_platform(&i, &p, "fuzz");
        }
    }
}

fn config(data: &[u8]) {
    if let Ok(c) = types::parse_config(data) {
        let ids = types::chain_ids(&c.rootfs.diff_ids);
        assert_eq!(ids.len(), c.rootfs.diff_ids.len());
    }
}

fn platform(s: &str) {
    if let Ok(p) = Platform::parse(s) {
        assert_eq!(Platform::parse(&p.to_string()).ok(), Some(p));
    }
}

fn digest(s: &str) {
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(Digest::from_hex(d.hex()).ok(), Some(d.clone()));
        assert_eq!(d.short().len(), 12);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let s = String::from_utf8_lossy(rest);
    match which % 5 {
        0 => reference(&s),
        1 => manifest(rest),
        2 => config(rest),
        3 => platform(&s),
        _ => digest(&s),
    }
});
