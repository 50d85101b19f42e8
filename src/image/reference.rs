//! Image references with docker's normalisation: `busybox` is
//! `docker.io/library/busybox:latest`; `host:port/ns/name:tag@sha256:…`.
//! Pure: no I/O, fuzzed.

use super::digest::Digest;
use crate::bail;
use crate::error::Result;
use std::fmt;

pub const DOCKER_HUB: &str = "docker.io";
/// Where docker.io's API really lives.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Reference {
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`, `[::1]:5000`.
    pub registry: String,
    /// `library/busybox`, `ns/sub/name`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parse and normalise as docker does. A reference with neither tag
    /// nor digest gets `latest`.
    pub fn parse(s: &str) -> Result<Reference> {
        if s.is_empty() {
            bail!("invalid reference format: empty image name");
        }
        if s.len() > 4096 {
            bail!("invalid reference format: too long");
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(Digest::parse(d).map_err(|e| e.wrap(format!("invalid reference {s:?}")))?),
            ),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/', so a
        // registry's port is not taken for one.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            check_tag(s, t)?;
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.starts_with('[') =>
            {
                check_registry(s, first)?;
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        check_path(s, &repository)?;
        if registry.len() + 1 + repository.len() > 255 {
            bail!(
                "invalid reference {s:?}: repository name must not be longer than 255 characters"
            );
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`: the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host the API is on (docker.io's is registry-1.docker.io).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// docker's short form for humans: `busybox`, `me/app`, `ghcr.io/x/y`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            match self.repository.strip_prefix("library/") {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The `org.opencontainers.image.ref.name` runway stores an image
    /// under: `name:tag`, or `name@digest` when pulled by digest alone.
    pub fn ref_name(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{}:{t}", self.name()),
            (None, Some(d)) => format!("{}@{d}", self.name()),
            (None, None) => self.name(),
        }
    }

    /// What to ask the registry for: the digest if there is one, else the tag.
    pub fn api_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn check_tag(s: &str, t: &str) -> Result<()> {
    let ok = !t.is_empty()
        && t.len() <= 128
        && t.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphanumeric() || b == b'_' || (i > 0 && (b == b'.' || b == b'-'))
        });
    if !ok {
        bail!("invalid reference {s:?}: bad tag {t:?}");
    }
    Ok(())
}

fn check_registry(s: &str, host: &str) -> Result<()> {
    let (h, port) = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        let Some((v6, after)) = rest.split_once(']') else {
            bail!("invalid reference {s:?}: bad registry {host:?}");
        };
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            bail!("invalid reference {s:?}: bad registry {host:?}");
        }
        (
            None,
            after
                .strip_prefix(':')
                .or(if after.is_empty() { None } else { Some("x") }),
        )
    } else {
        match host.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(h) = h {
        let ok = !h.is_empty()
            && h.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            bail!("invalid reference {s:?}: bad registry {host:?}");
        }
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |n| n == 0) {
            bail!("invalid reference {s:?}: bad registry port in {host:?}");
        }
    }
    Ok(())
}

/// Path components as distribution's grammar: lower-case alphanumerics
/// joined by `.`, `_`, `__` or runs of `-`.
fn check_path(s: &str, path: &str) -> Result<()> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        bail!("invalid reference {s:?}: repository name must be lowercase");
    }
    for comp in path.split('/') {
        let b = comp.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let mut ok = !b.is_empty() && alnum(b[0]) && alnum(b[b.len() - 1]);
        let mut i = 0;
        while ok && i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            ok = match &comp[start..i] {
                "." | "_" | "__" => true,
                sep => sep.bytes().all(|c| c == b'-'),
            };
        }
        if !ok {
            bail!("invalid reference {s:?}: bad repository name component {comp:?}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_normalisation() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("me/app"), "docker.io/me/app:latest");
        assert_eq!(
            norm("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(
            norm("127.0.0.1:5000/ns/name:v1"),
            "127.0.0.1:5000/ns/name:v1"
        );
        assert_eq!(norm("[::1]:5000/x"), "[::1]:5000/x:latest");
        assert_eq!(norm("ghcr.io/a/b/c"), "ghcr.io/a/b/c:latest");
        let d = format!("sha256:{}", "b".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.ref_name(), format!("docker.io/library/busybox@{d}"));
        assert_eq!(r.api_reference(), d);
        let r = Reference::parse(&format!("host:5000/x:t@{d}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert_eq!(r.api_reference(), d);
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar_name(),
            "busybox"
        );
        assert_eq!(Reference::parse("a/b").unwrap().familiar_name(), "a/b");
        assert_eq!(
            Reference::parse("busybox").unwrap().api_host(),
            DOCKER_HUB_API
        );
        assert_eq!(norm("a__b/c-d--e.f_g"), "docker.io/a__b/c-d--e.f_g:latest");
    }

    #[test]
    fn bad_references() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            ":tag",
            "a//b",
            "a/",
            "/a",
            "a..b",
            "a___b",
            "host:0/x",
            "host:99999/x",
            "bad_host.io:5000:x/y",
            "busybox@sha256:abc",
            "a/b:c:d",
            "-a",
            "a-",
            "x@",
            "[zz]:1/a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("x/{}", "a".repeat(300));
        assert!(Reference::parse(&long).is_err());
    }
}
