//! image pull: manifest -> config -> layers, a few at a time, each streamed
//! from the network through its digest check, decompression, diff_id check
//! and unpacking at once; resumable from a partial download.

use super::decompress::Compression;
use super::digest::{Digest, HashReader};
use super::reference::Reference;
use super::registry::{Client, ClientOptions};
use super::store::Store;
use super::types::{self, Descriptor, Parsed, Platform};
use crate::bail;
use crate::error::{Context, Error, Result};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Layers downloaded at once: enough to fill a link while one layer is
/// being unpacked, few enough not to thrash a small disk or a registry.
const PARALLEL: usize = 3;

pub struct PullOpts {
    pub data_root: PathBuf,
    pub platform: Platform,
    /// `--platform` given: a single-platform image for another platform is
    /// an error rather than a warning.
    pub platform_explicit: bool,
    pub insecure_registries: Vec<String>,
    pub quiet: bool,
}

pub struct Pulled {
    /// The image id: its config's digest.
    pub id: Digest,
    /// `name@digest` of what the registry served for the reference.
    pub repo_digest: String,
    /// Nothing had to be fetched.
    pub up_to_date: bool,
}

/// One layer to fetch or unpack.
struct Job {
    desc: Descriptor,
    comp: Compression,
    diff_id: Digest,
    chain: Digest,
    /// Progress: bytes read of this blob, and whether it is done.
    read: AtomicU64,
    done: AtomicBool,
}

pub fn pull(r: &Reference, opts: &PullOpts) -> Result<Pulled> {
    let store = Store::open(&opts.data_root)?;
    let _writer = store.writer()?;
    let client = Client::new(ClientOptions::new(
        &r.registry,
        &opts.data_root,
        &opts.insecure_registries,
    ))?;
    let what = r.to_string();
    let top = client.get_manifest(&r.repository, &r.api_reference())?;
    let repo_digest = format!("{}@{}", r.name(), top.digest);

    // The image manifest for our platform, and its descriptor as the
    // store's index.json will list it.
    let (manifest_bytes, mut desc) = match types::parse_manifest(
        &top.bytes,
        Some(top.media_type.as_str()).filter(|m| !m.is_empty()),
    )
    .map_err(|e| e.wrap(&what))?
    {
        Parsed::Index(index) => {
            let d = types::select_platform(&index, &opts.platform, &what)?.clone();
            let bytes = if store.has_blob(&d.digest) {
                store.read_blob(&d.digest)?
            } else {
                let m = client.get_manifest(&r.repository, d.digest.as_str())?;
                if m.digest != d.digest {
                    bail!(
                        "{what}: manifest {}: digest mismatch (got {})",
                        d.digest,
                        m.digest
                    );
                }
                m.bytes
            };
            (bytes, d)
        }
        Parsed::Manifest(_) => {
            let media_type = match top.media_type.as_str() {
                m @ (types::OCI_MANIFEST | types::DOCKER_MANIFEST) => m.to_string(),
                _ => types::OCI_MANIFEST.to_string(),
            };
            let d = Descriptor {
                media_type,
                digest: top.digest.clone(),
                size: top.bytes.len() as u64,
                urls: None,
                annotations: None,
                platform: None,
                artifact_type: None,
            };
            (top.bytes, d)
        }
    };
    let manifest = match types::parse_manifest(&manifest_bytes, Some(&desc.media_type))
        .map_err(|e| e.wrap(&what))?
    {
        Parsed::Manifest(m) => m,
        Parsed::Index(_) => bail!("{what}: an index entry names another index; not supported"),
    };
    if !matches!(
        manifest.config.media_type.as_str(),
        types::OCI_CONFIG | types::DOCKER_CONFIG | ""
    ) {
        bail!(
            "{what}: not a container image (config media type {:?})",
            manifest.config.media_type
        );
    }

    // The config, verified like every blob.
    let config_digest = manifest.config.digest.clone();
    let config_bytes = if store.has_blob(&config_digest) {
        store.read_blob(&config_digest)?
    } else {
        if manifest.config.size > types::MAX_JSON_BLOB {
            bail!(
                "{what}: config {config_digest}: too large ({} bytes)",
                manifest.config.size
            );
        }
        let bytes = client.get_small_blob(&r.repository, &config_digest)?;
        store.put_blob(Some(&config_digest), &bytes)?;
        bytes
    };
    let config = types::parse_config(&config_bytes).map_err(|e| e.wrap(&what))?;
    let got = Platform {
        architecture: config.architecture.clone(),
        os: config.os.clone(),
        variant: config.variant.clone(),
        ..Platform::default()
    };
    if desc.platform.is_none() && !config.os.is_empty() {
        if !got.serves(&opts.platform) {
            if opts.platform_explicit {
                bail!(
                    "no image for platform {} in {what} (available: {got})",
                    opts.platform
                );
            }
            crate::log::warn(&format!(
                "{what}: the image's platform ({got}) does not match this host's ({})",
                opts.platform
            ));
        }
        desc.platform = Some(got);
    }
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        bail!(
            "{what}: the manifest has {} layers but the config {} diff_ids",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        );
    }
    let chains = types::chain_ids(&config.rootfs.diff_ids);
    let mut jobs = Vec::new();
    for ((layer, diff_id), chain) in manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .zip(&chains)
    {
        let Some(comp) = types::layer_compression(&layer.media_type) else {
            bail!(
                "{what}: layer {}: unsupported media type {:?}",
                layer.digest,
                layer.media_type
            );
        };
        if store.has_layer(chain) && store.has_blob(&layer.digest) {
            continue;
        }
        jobs.push(Job {
            desc: layer.clone(),
            comp,
            diff_id: diff_id.clone(),
            chain: chain.clone(),
            read: AtomicU64::new(0),
            done: AtomicBool::new(false),
        });
    }

    let up_to_date = jobs.is_empty() && store.has_blob(&desc.digest);
    if !up_to_date {
        run_jobs(&store, &client, &r.repository, &jobs, opts.quiet)?;
        if !store.has_blob(&desc.digest) {
            store.put_blob(Some(&desc.digest), &manifest_bytes)?;
        }
    }
    // Blobs are fsync'd and layers syncfs'd as each lands, so the name
    // below never points at data a power cut could still lose.
    store.add_image(&desc, Some(r), Some(&repo_digest))?;
    Ok(Pulled {
        id: config_digest,
        repo_digest,
        up_to_date,
    })
}

/// Fetch and unpack every job, `PARALLEL` at a time; the first error wins
/// and stops the others from starting new layers.
fn run_jobs(store: &Store, client: &Client, repo: &str, jobs: &[Job], quiet: bool) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let workers = PARALLEL.min(jobs.len());
    let tty = !quiet && rustix::termios::isatty(rustix::stdio::stdout());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { return };
                match fetch_layer(store, client, repo, job) {
                    Ok(()) => {
                        job.done.store(true, Ordering::Relaxed);
                        if !quiet && !tty {
                            println!("{}: Pull complete", job.desc.digest.short());
                        }
                    }
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        if let Ok(mut f) = failed.lock() {
                            f.get_or_insert(e);
                        }
                        return;
                    }
                }
            });
        }
        if tty {
            progress(jobs, &stop);
        }
    });
    match failed.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        Err(_) => Err(Error::msg("pull: a download thread failed")),
    }
}

/// A line per layer, redrawn in place while the workers run.
fn progress(jobs: &[Job], stop: &AtomicBool) {
    let mut out = io::stdout();
    let mut drawn = false;
    loop {
        let all = jobs.iter().all(|j| j.done.load(Ordering::Relaxed));
        if drawn {
            let _ = write!(out, "\x1b[{}A", jobs.len());
        }
        for j in jobs {
            let state = if j.done.load(Ordering::Relaxed) {
                "Pull complete".to_string()
            } else {
                format!(
                    "Downloading {}/{}",
                    super::human_size(j.read.load(Ordering::Relaxed)),
                    super::human_size(j.desc.size)
                )
            };
            let _ = writeln!(out, "\x1b[2K{}: {state}", j.desc.digest.short());
        }
        let _ = out.flush();
        drawn = true;
        if all || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// One layer: wait for (or take) its download lock; stream the partial
/// bytes we already have and then the network's through the blob digest,
/// decompression, diff_id check and unpack.
fn fetch_layer(store: &Store, client: &Client, repo: &str, job: &Job) -> Result<()> {
    let what = format!("layer {}", job.desc.digest);
    let mut dl = store.download(&job.desc.digest)?;
    if dl.done() {
        // Another pull fetched the blob while we waited for its lock.
        if !store.has_layer(&job.chain) {
            let mut f =
                std::fs::File::open(store.blob_path(&job.desc.digest)).ctx(|| what.clone())?;
            store.ingest_layer(&mut f, job.comp, &job.diff_id, &job.chain)?;
        }
        return Ok(());
    }
    let mut offset = dl.offset();
    if offset > job.desc.size {
        dl.discard();
        dl = store.download(&job.desc.digest)?;
        offset = 0;
    }
    // A partial that is already whole (a pull killed between its last
    // byte and the commit) needs no request: a Range from its end would be
    // refused (416). It is verified below like any other.
    let body: Box<dyn Read + Send> = if offset == job.desc.size {
        Box::new(io::empty())
    } else {
        let body = match client.get_layer(repo, &job.desc, offset) {
            Ok(b) => b,
            // The registry refused the Range: start over from 0.
            Err(_) if offset > 0 => {
                dl.discard();
                dl = store.download(&job.desc.digest)?;
                client.get_layer(repo, &job.desc, 0)?
            }
            Err(e) => return Err(e),
        };
        if dl.offset() > 0 && !body.resumed() {
            // The server ignored our Range: start over with what it sends.
            dl.discard();
            dl = store.download(&job.desc.digest)?;
        }
        Box::new(body)
    };
    let partial = if dl.offset() > 0 {
        Some(dl.partial()?)
    } else {
        None
    };
    let net_failed = AtomicBool::new(false);
    let result = {
        let source = Source {
            partial,
            body,
            file: dl.append(),
            net_failed: &net_failed,
            read: &job.read,
            left: job.desc.size,
        };
        let mut hashed = HashReader::new(source);
        let r = if store.has_layer(&job.chain) {
            Ok(())
        } else {
            store
                .ingest_layer(&mut hashed, job.comp, &job.diff_id, &job.chain)
                .map(|_| ())
        };
        match r {
            Ok(()) => hashed.finish().ctx(|| what.clone()),
            Err(e) if net_failed.load(Ordering::Relaxed) => Err(e),
            // Bad content. If the bytes are not the blob the manifest
            // names, that is the cause (a corrupt transfer or registry),
            // not the gzip or tar error it led to: read the rest to know.
            Err(e) => match hashed.finish() {
                Ok((got, _)) if got != job.desc.digest => Err(Error::msg(format!(
                    "{what}: digest mismatch (got {got}): the registry sent corrupt data"
                ))),
                _ if e.ctx.contains(job.desc.digest.as_str()) => Err(e),
                _ => Err(e.wrap(&what)),
            },
        }
    };
    match result {
        Ok((digest, size)) => {
            if size != job.desc.size {
                dl.discard();
                bail!(
                    "{what}: size mismatch: the manifest says {} bytes, got {size}",
                    job.desc.size
                );
            }
            dl.commit(&digest, size)
        }
        Err(e) => {
            // A cut connection keeps what arrived, for the next pull to
            // resume; bad content (digest, gzip, diff_id, tar) must not.
            if !net_failed.load(Ordering::Relaxed) {
                dl.discard();
            }
            Err(e)
        }
    }
}

/// The blob's bytes in order: first those already in the partial file,
/// then the network's, each new byte appended to the partial file as it
/// passes. Stops at the manifest's size, so a server sending more cannot
/// make us write more.
struct Source<'a, B: Read> {
    partial: Option<std::fs::File>,
    body: B,
    file: &'a mut std::fs::File,
    net_failed: &'a AtomicBool,
    read: &'a AtomicU64,
    left: u64,
}

impl<B: Read> Read for Source<'_, B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if let Some(p) = &mut self.partial {
            let n = p.read(&mut buf[..want])?;
            if n > 0 {
                self.left -= n as u64;
                self.read.fetch_add(n as u64, Ordering::Relaxed);
                return Ok(n);
            }
            self.partial = None;
        }
        let n = match self.body.read(&mut buf[..want]) {
            Ok(0) => {
                self.net_failed.store(true, Ordering::Relaxed);
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed with {} bytes to go", self.left),
                ));
            }
            Ok(n) => n,
            Err(e) => {
                self.net_failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        };
        self.file.write_all(&buf[..n])?;
        self.left -= n as u64;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
