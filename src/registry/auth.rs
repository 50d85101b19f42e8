//! `--htpasswd`: HTTP basic auth against an Apache htpasswd file of bcrypt
//! hashes (`$2y$`, `$2b$`, `$2a$`, as `htpasswd -B` writes them).

use crate::error::{Context, Result};
use crate::image::digest::Digest;
use crate::image::registry::creds::b64_decode;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

pub struct Htpasswd {
    users: HashMap<String, String>,
    /// SHA-256 of "user:password" pairs already verified: bcrypt is slow
    /// by design, and clients send the header on every request.
    ok: Mutex<HashSet<Digest>>,
}

/// bcrypt's own base64 alphabet, no padding.
fn bcrypt_b64(s: &str) -> Option<Vec<u8>> {
    const A: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        acc = (acc << 6) | A.iter().position(|&a| a == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Whether `pass` matches a `$2y$CC$<22 salt><31 hash>` string.
pub fn bcrypt_verify(pass: &str, hash: &str) -> bool {
    let mut p = hash.split('$');
    let (Some(""), Some("2a" | "2b" | "2y"), Some(cost), Some(rest), None) =
        (p.next(), p.next(), p.next(), p.next(), p.next())
    else {
        return false;
    };
    let Ok(cost) = cost.parse::<u32>() else {
        return false;
    };
    if !(4..=31).contains(&cost) || rest.len() != 53 || !rest.is_ascii() {
        return false;
    }
    let (Some(salt), Some(want)) = (bcrypt_b64(&rest[..22]), bcrypt_b64(&rest[22..])) else {
        return false;
    };
    let Ok(salt) = <[u8; 16]>::try_from(salt) else {
        return false;
    };
    // The key is the password with its NUL, at most 72 bytes (never empty,
    // which the raw function asserts).
    let mut key = pass.as_bytes().to_vec();
    key.push(0);
    key.truncate(72);
    let got = bcrypt::bcrypt(cost, salt, &key);
    // Constant time: every byte compared.
    want.len() == 23
        && got[..23]
            .iter()
            .zip(&want)
            .fold(0, |acc, (a, b)| acc | (a ^ b))
            == 0
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Htpasswd> {
        let text = std::fs::read_to_string(path).ctx(|| format!("htpasswd {}", path.display()))?;
        let mut users = HashMap::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let Some((u, h)) = line.split_once(':') else {
                continue;
            };
            if !h.starts_with("$2") {
                crate::log::warn(&format!("htpasswd: {u}: not a bcrypt hash, ignored"));
                continue;
            }
            users.insert(u.to_string(), h.to_string());
        }
        Ok(Htpasswd {
            users,
            ok: Mutex::new(HashSet::new()),
        })
    }

    /// Whether an Authorization header value names a known user with
    /// the right password.
    pub fn check(&self, authorization: Option<&str>) -> bool {
        let Some(b64) = authorization.and_then(|a| {
            let (scheme, v) = a.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(v.trim())
        }) else {
            return false;
        };
        let Some(pair) = b64_decode(b64).and_then(|b| String::from_utf8(b).ok()) else {
            return false;
        };
        let key = Digest::of(pair.as_bytes());
        if self.ok.lock().is_ok_and(|s| s.contains(&key)) {
            return true;
        }
        let Some((u, p)) = pair.split_once(':') else {
            return false;
        };
        let good = self.users.get(u).is_some_and(|h| bcrypt_verify(p, h));
        if good {
            if let Ok(mut s) = self.ok.lock() {
                if s.len() > 256 {
                    s.clear();
                }
                s.insert(key);
            }
        }
        good
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bcrypt_known_hash() {
        // htpasswd -nbB -C 4 user secret
        let h = "$2y$04$TerqW2iopVxERpWj8Agmz.bUu61.idJUxv7t9wRkw3cwTZWghasyy";
        assert!(super::bcrypt_verify("secret", h));
        assert!(!super::bcrypt_verify("secreT", h));
        assert!(!super::bcrypt_verify("secret", "$2y$99$x"));
        assert!(!super::bcrypt_verify("", "$1$abc"));
    }
}
