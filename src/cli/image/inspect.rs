//! `runway image inspect`: a JSON array shaped like docker's.

use crate::cli::args::{self, val, Flag};
use crate::cli::Global;
use crate::error::{Error, Result};
use crate::image::store::{familiar, ImageRecord, Store};
use crate::image::types::{self, ContainerConfig};
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;

const USAGE: &str = "usage: runway image inspect [flags] IMAGE [IMAGE...]

Print a JSON array describing the images (docker's fields).
";

pub const FLAGS: &[Flag] = &[val("format", Some('f'), "FORMAT", "json (the default)")];

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Config {
    user: String,
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    env: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    volumes: Option<BTreeMap<String, serde_json::Value>>,
    working_dir: String,
    labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_signal: Option<String>,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Layer {
    digest: String,
    #[serde(rename = "DiffID")]
    diff_id: String,
    #[serde(rename = "ChainID")]
    chain_id: String,
    size: u64,
    unpacked_size: Option<u64>,
    media_type: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    id: String,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    parent: String,
    comment: String,
    created: String,
    author: String,
    config: Config,
    architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    os: String,
    size: u64,
    #[serde(rename = "RootFS")]
    root_fs: RootFs,
    layers: Vec<Layer>,
    manifest: ManifestRef,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestRef {
    digest: String,
    media_type: String,
    size: u64,
}

fn describe(store: &Store, r: &ImageRecord) -> Result<Inspect> {
    let cfg = store.config(r)?;
    let c = cfg.config.clone().unwrap_or_default();
    let ContainerConfig {
        user,
        exposed_ports,
        env,
        entrypoint,
        cmd,
        volumes,
        working_dir,
        labels,
        stop_signal,
        ..
    } = c;
    let chains = types::chain_ids(&cfg.rootfs.diff_ids);
    let layers = r
        .parsed
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let chain = chains.get(i);
            Layer {
                digest: l.digest.to_string(),
                diff_id: cfg
                    .rootfs
                    .diff_ids
                    .get(i)
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                chain_id: chain.map(|d| d.to_string()).unwrap_or_default(),
                size: l.size,
                unpacked_size: chain.and_then(|c| store.layer_info(c)).map(|i| i.size),
                media_type: l.media_type.clone(),
            }
        })
        .collect();
    Ok(Inspect {
        id: r.id.to_string(),
        repo_tags: r
            .names
            .iter()
            .filter(|n| !n.contains('@'))
            .map(|n| familiar(n))
            .collect(),
        repo_digests: r.repo_digests.iter().map(|n| familiar(n)).collect(),
        parent: String::new(),
        comment: String::new(),
        created: cfg.created.clone().unwrap_or_default(),
        author: cfg.author.clone().unwrap_or_default(),
        config: Config {
            user: user.unwrap_or_default(),
            exposed_ports,
            env,
            entrypoint,
            cmd,
            volumes,
            working_dir: working_dir.unwrap_or_default(),
            labels,
            stop_signal,
        },
        architecture: cfg.architecture.clone(),
        variant: cfg.variant.clone(),
        os: cfg.os.clone(),
        size: store.image_size(r, &cfg),
        root_fs: RootFs {
            kind: cfg.rootfs.kind.clone(),
            layers: cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect(),
        },
        layers,
        manifest: ManifestRef {
            digest: r.manifest.digest.to_string(),
            media_type: r.manifest.media_type.clone(),
            size: r.manifest.size,
        },
    })
}

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if crate::cli::help_requested(&a, USAGE) {
        return Ok(0);
    }
    if let Some(f) = a.get("format") {
        if f != "json" {
            crate::bail!("invalid format {f:?}: only json");
        }
    }
    if a.positionals.is_empty() {
        crate::bail!("image inspect needs at least one image");
    }
    let store = Store::open(&g.data_root)?;
    let images = store.images()?;
    let mut found = Vec::new();
    let mut failed = Vec::new();
    for p in &a.positionals {
        match crate::image::store::lookup_in(&images, p).and_then(|(r, _)| describe(&store, &r)) {
            Ok(i) => found.push(i),
            Err(e) => failed.push(e),
        }
    }
    // As docker: the images found are printed, then an error per name not.
    let compact = serde_json::to_vec(&found).map_err(|e| Error::msg(format!("encode: {e}")))?;
    let json = crate::jsonfmt::pretty(&compact, b"    ");
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&json);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    for e in &failed {
        crate::log::error(&e.to_string());
    }
    Ok(if failed.is_empty() { 0 } else { 1 })
}

/// One image's inspect JSON (for `runway inspect`, which takes containers
/// and images alike).
pub fn image_json(g: &Global, name: &str) -> Result<serde_json::Value> {
    let store = Store::open(&g.data_root)?;
    let (r, _) = store.lookup(name)?;
    let i = describe(&store, &r)?;
    serde_json::to_value(&i).map_err(|e| Error::msg(format!("encode: {e}")))
}
