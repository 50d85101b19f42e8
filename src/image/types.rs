//! The OCI and Docker image types: descriptors, manifests, indexes (manifest
//! lists), image configs, platforms and chain ids. Pure: no I/O, fuzzed.
//! Manifests are parsed from the bytes as fetched and never re-serialised,
//! so their digests stay the registry's.

use super::digest::{Digest, Hasher};
use crate::bail;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// The `Accept` a pull sends: every manifest kind we read, best first.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Annotation keys runway reads and writes in index.json.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// Manifests, indexes and configs larger than this are refused: they are
/// read into memory, and real ones are a few KiB.
pub const MAX_JSON_BLOB: u64 = 4 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// What this binary runs on, in the OCI's words.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            other => (other, None),
        };
        Platform {
            architecture: arch.to_string(),
            os: "linux".to_string(),
            variant: variant.map(str::to_string),
            ..Platform::default()
        }
    }

    /// `os/arch[/variant]`, as `--platform` takes it.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.to_lowercase(),
                architecture: arch.to_lowercase(),
                ..Platform::default()
            }),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok(Platform {
                os: os.to_lowercase(),
                architecture: arch.to_lowercase(),
                variant: Some(variant.to_lowercase()),
                ..Platform::default()
            }),
            _ => Err(Error::msg(format!(
                "invalid platform {s:?}: want os/arch[/variant]"
            ))),
        }
    }

    /// Does an index entry's platform serve `self` (what the user asked)?
    /// arm64's variant defaults to v8, arm's to v7 (containerd's rule).
    pub fn serves(&self, want: &Platform) -> bool {
        let norm = |p: &Platform| -> Option<String> {
            match (p.architecture.as_str(), p.variant.as_deref()) {
                ("arm64", None) => Some("v8".into()),
                ("arm", None) => Some("v7".into()),
                (_, v) => v.map(str::to_string),
            }
        };
        self.os == want.os
            && self.architecture == want.architecture
            && (want.variant.is_none() || norm(self) == norm(want))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest (OCI, or Docker schema 2: same shape).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index (OCI), or a Docker manifest list: same shape.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// What a manifest endpoint returned.
#[derive(Clone, Debug)]
pub enum Parsed {
    Index(Index),
    Manifest(Box<Manifest>),
}

/// Which kind a document is: the Content-Type if it names one we know,
/// else its own `mediaType`, else its shape (an OCI layout's index.json
/// has no mediaType).
pub fn parse_manifest(bytes: &[u8], content_type: Option<&str>) -> Result<Parsed> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        config: Option<serde::de::IgnoredAny>,
    }
    let ct = content_type.map(|c| c.split(';').next().unwrap_or("").trim());
    if matches!(ct, Some(DOCKER_SCHEMA1) | Some(DOCKER_SCHEMA1_SIGNED)) {
        bail!("{}", SCHEMA1);
    }
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| Error::msg(format!("invalid manifest: {e}")))?;
    if probe.schema_version == Some(1) {
        bail!("{}", SCHEMA1);
    }
    let kind = match (ct, probe.media_type.as_deref()) {
        (Some(OCI_INDEX | DOCKER_LIST), _) | (_, Some(OCI_INDEX | DOCKER_LIST)) => true,
        (Some(OCI_MANIFEST | DOCKER_MANIFEST), _) | (_, Some(OCI_MANIFEST | DOCKER_MANIFEST)) => {
            false
        }
        (_, Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED)) => bail!("{}", SCHEMA1),
        _ if probe.manifests.is_some() => true,
        _ if probe.config.is_some() => false,
        (_, Some(other)) => bail!("unsupported manifest media type {other:?}"),
        _ => bail!("invalid manifest: neither an image manifest nor an index"),
    };
    if probe.schema_version != Some(2) {
        bail!("invalid manifest: schemaVersion must be 2");
    }
    if kind {
        let i: Index =
            serde_json::from_slice(bytes).map_err(|e| Error::msg(format!("invalid index: {e}")))?;
        Ok(Parsed::Index(i))
    } else {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::msg(format!("invalid manifest: {e}")))?;
        Ok(Parsed::Manifest(Box::new(m)))
    }
}

const SCHEMA1: &str = "unsupported manifest: Docker schema 1 (deprecated; push the image again with a current docker, podman or skopeo)";

/// Docker's attestation entries in an index carry platform unknown/unknown.
fn is_attestation(d: &Descriptor) -> bool {
    d.annotation("vnd.docker.reference.type") == Some("attestation-manifest")
}

/// The index entry for `want`, or an error that lists what is there.
pub fn select_platform<'a>(
    index: &'a Index,
    want: &Platform,
    what: &str,
) -> Result<&'a Descriptor> {
    let candidates = index.manifests.iter().filter(|d| {
        !is_attestation(d) && matches!(d.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST | "")
    });
    let mut found: Option<&Descriptor> = None;
    for d in candidates.clone() {
        let Some(p) = &d.platform else { continue };
        if p.serves(want) {
            // Prefer an exact variant match (arm/v7 over arm/v6 when v7 asked
            // is already exact; with no variant asked, the first wins).
            if found.is_none() || (want.variant.is_some() && p.variant == want.variant) {
                found = Some(d);
            }
        }
    }
    if let Some(d) = found {
        return Ok(d);
    }
    let avail: Vec<String> = candidates
        .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
        .collect();
    bail!(
        "no image for platform {want} in {what} (available: {})",
        if avail.is_empty() {
            "none".to_string()
        } else {
            avail.join(", ")
        }
    )
}

/// The image config: what `image inspect` shows and a container starts with.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<History>>,
}

/// The `config` member: docker's capitalised names, which OCI kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
}

pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig> {
    let c: ImageConfig = serde_json::from_slice(bytes)
        .map_err(|e| Error::msg(format!("invalid image config: {e}")))?;
    if c.rootfs.kind != "layers" {
        bail!(
            "invalid image config: rootfs.type is {:?}, not \"layers\"",
            c.rootfs.kind
        );
    }
    Ok(c)
}

/// Chain ids: the first layer's is its diff_id; each next one is
/// sha256("<parent chain id> <diff_id>"). A layer is unpacked once per
/// chain id.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => {
                let mut h = Hasher::new();
                h.update(parent.as_str().as_bytes());
                h.update(b" ");
                h.update(d.as_str().as_bytes());
                h.finish()
            }
        };
        out.push(next);
    }
    out
}

/// How a layer blob is compressed, from its media type; None for a media
/// type that is no layer we can unpack.
pub fn layer_compression(media_type: &str) -> Option<super::decompress::Compression> {
    use super::decompress::Compression as C;
    let mt = media_type.replace(".nondistributable", "");
    match mt.as_str() {
        OCI_LAYER | "application/vnd.docker.image.rootfs.diff.tar" => Some(C::None),
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP | DOCKER_FOREIGN_LAYER => Some(C::Gzip),
        OCI_LAYER_ZSTD | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Some(C::Zstd),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn manifest_and_index_by_type_and_shape() {
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":3}},"layers":[{{"mediaType":"{OCI_LAYER_GZIP}","digest":"{}","size":9}}]}}"#,
            d('a'),
            d('b')
        );
        assert!(matches!(
            parse_manifest(m.as_bytes(), None),
            Ok(Parsed::Manifest(_))
        ));
        assert!(matches!(
            parse_manifest(m.as_bytes(), Some(DOCKER_MANIFEST)),
            Ok(Parsed::Manifest(_))
        ));
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            d('a'),
            d('c')
        );
        let Ok(Parsed::Index(idx)) = parse_manifest(i.as_bytes(), Some(OCI_INDEX)) else {
            panic!("index")
        };
        let host = Platform::parse("linux/amd64").unwrap();
        assert_eq!(
            select_platform(&idx, &host, "x").unwrap().digest.as_str(),
            d('c')
        );
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(
            select_platform(&idx, &arm, "x").unwrap().digest.as_str(),
            d('a')
        );
        let arm8 = Platform::parse("linux/arm64/v8").unwrap();
        assert!(select_platform(&idx, &arm8, "x").is_ok());
        let e = select_platform(&idx, &Platform::parse("linux/s390x").unwrap(), "img").unwrap_err();
        assert_eq!(
            e.ctx,
            "no image for platform linux/s390x in img (available: linux/arm64/v8, linux/amd64)"
        );
    }

    #[test]
    fn schema1_and_junk_are_clear_errors() {
        let e = parse_manifest(br#"{"schemaVersion":1,"name":"x"}"#, None).unwrap_err();
        assert!(e.ctx.contains("schema 1"), "{e}");
        assert!(parse_manifest(b"{}", Some(DOCKER_SCHEMA1_SIGNED))
            .unwrap_err()
            .ctx
            .contains("schema 1"));
        assert!(parse_manifest(b"not json", None).is_err());
        assert!(parse_manifest(b"{\"schemaVersion\":2}", None).is_err());
        let bad_digest =
            r#"{"schemaVersion":2,"config":{"digest":"sha256:zz","size":1},"layers":[]}"#;
        assert!(parse_manifest(bad_digest.as_bytes(), None).is_err());
    }

    #[test]
    fn chain_ids_as_docker() {
        let a = Digest::parse(&d('a')).unwrap();
        let b = Digest::parse(&d('b')).unwrap();
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn config_fields() {
        let c = parse_config(br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Entrypoint":null,"ExposedPorts":{"80/tcp":{}},"StopSignal":"SIGQUIT"},"rootfs":{"type":"layers","diff_ids":[]}}"#).unwrap();
        let cc = c.config.unwrap();
        assert_eq!(cc.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(cc.entrypoint, None);
        assert_eq!(cc.stop_signal.as_deref(), Some("SIGQUIT"));
        assert!(parse_config(br#"{"rootfs":{"type":"nope"}}"#).is_err());
    }
}
