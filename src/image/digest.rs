//! Content digests (`sha256:<64 hex>`) and streaming SHA-256: ring's,
//! which uses the CPU's SHA instructions, so verifying a layer costs less
//! than reading it.

use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::io::{self, Read};

/// A validated `sha256:` digest in canonical form (lower-case hex). Other
/// algorithms are refused when parsed, so every digest in the store names
/// a file we can verify.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Digest> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(Error::msg(format!(
                "invalid digest {s:?}: want sha256:<hex>"
            )));
        };
        match algo {
            "sha256" => {}
            "sha384" | "sha512" => {
                return Err(Error::msg(format!(
                    "unsupported digest algorithm {algo:?} in {s:?}: only sha256"
                )))
            }
            _ => {
                return Err(Error::msg(format!(
                    "invalid digest {s:?}: unknown algorithm"
                )))
            }
        }
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::msg(format!(
                "invalid digest {s:?}: want 64 lower-case hex digits"
            )));
        }
        Ok(Digest(s.to_string()))
    }

    /// From 64 hex digits (a blob's file name, an image id).
    pub fn from_hex(hex: &str) -> Result<Digest> {
        Digest::parse(&format!("sha256:{hex}"))
    }

    pub fn of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(bytes);
        h.finish()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits: a blob's file name under blobs/sha256/.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// The first 12 hex digits: docker's short image id.
    pub fn short(&self) -> &str {
        &self.0[7..19]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(|e| serde::de::Error::custom(e.ctx))
    }
}

/// Streaming SHA-256.
pub struct Hasher(ring::digest::Context);

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher(ring::digest::Context::new(&ring::digest::SHA256))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Digest {
        let d = self.0.finish();
        let mut s = String::with_capacity(71);
        s.push_str("sha256:");
        for b in d.as_ref() {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        Digest(s)
    }
}

/// A reader that hashes and counts what passes through it: verifies a blob
/// (or a layer's uncompressed diff_id) while it streams.
pub struct HashReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Hasher::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Read to the end (a tar stream may stop before its padding), then
    /// the digest and size of everything read.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.hasher.finish(), self.count))
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_and_abc() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let d = Digest::of(b"abc");
        assert_eq!(
            d.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.short(), "ba7816bf8f01");
        let (d2, n) = HashReader::new(&b"abc"[..]).finish().unwrap();
        assert_eq!((d2, n), (d, 3));
    }

    #[test]
    fn parse_refuses_what_we_cannot_verify() {
        let hex = "a".repeat(64);
        assert!(Digest::parse(&format!("sha256:{hex}")).is_ok());
        for bad in [
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha512:{}", "a".repeat(128)),
            format!("md5:{hex}"),
            hex.clone(),
            "sha256:../../etc/passwd".to_string(),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad}");
        }
    }
}
