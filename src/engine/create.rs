//! `container create`: from an image name (or `--rootfs DIR`) to a
//! container on disk: an id and name, the image held, the overlay
//! mounted, hostname/hosts/resolv.conf, volumes, bundle/config.json, the
//! record. On any failure every trace is removed.

use crate::engine::network as netw;
use crate::engine::record::{self, Record};
use crate::engine::spec::{self, NetworkMode, RunOpts};
use crate::engine::volumes::{self, VolumeSpec};
use crate::engine::{names, overlay};
use crate::error::{Context, Error, Result};
use crate::image::store::Store;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    #[default]
    Missing,
    Always,
    Never,
}

impl PullPolicy {
    pub fn parse(s: &str) -> Result<PullPolicy> {
        match s {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            _ => Err(Error::msg(format!(
                "invalid pull policy {s:?}: missing, always or never"
            ))),
        }
    }
}

/// Where things live.
pub struct Ctx<'a> {
    pub root: &'a Path,
    pub data_root: &'a Path,
    pub insecure_registries: &'a [String],
}

/// What `create`/`run` were asked, parsed.
#[derive(Default)]
pub struct Request {
    pub image: Option<String>,
    pub rootfs: Option<PathBuf>,
    pub name: Option<String>,
    pub run: RunOpts,
    /// `-v` as given.
    pub volumes: Vec<String>,
    pub restart: record::RestartPolicy,
    pub auto_remove: bool,
    /// `--log-opt K=V` as given.
    pub log_opts: Vec<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u32>,
    pub pull: PullPolicy,
    pub platform: Option<String>,
    pub interactive: bool,
    pub init: bool,
    pub security_opts: Vec<String>,
    /// `--network` as given first (`none`, `host`, `container:X`, a
    /// network's name…), for the record.
    pub network: String,
    /// Named networks, ports, DNS: set up when `net.networks` is not
    /// empty.
    pub net: crate::engine::network::NetRequest,
}

/// `--restart` as docker takes it.
pub fn parse_restart(s: &str) -> Result<record::RestartPolicy> {
    let (name, count) = s.split_once(':').unwrap_or((s, ""));
    let bad = || Error::msg(format!("invalid restart policy {s:?}"));
    let maximum_retry_count = if count.is_empty() {
        0
    } else {
        if name != "on-failure" {
            return Err(Error::msg(format!(
                "invalid restart policy {s:?}: maximum retry count can only be used with 'on-failure'"
            )));
        }
        count.parse::<u32>().map_err(|_| bad())?
    };
    match name {
        "no" | "" | "always" | "unless-stopped" | "on-failure" => Ok(record::RestartPolicy {
            name: if name.is_empty() { "no" } else { name }.to_string(),
            maximum_retry_count,
        }),
        _ => Err(bad()),
    }
}

/// The image's record and config, pulled first if the policy says so.
fn find_image(
    ctx: &Ctx,
    store: &Store,
    name: &str,
    policy: PullPolicy,
    platform: Option<&str>,
) -> Result<(
    crate::image::store::ImageRecord,
    crate::image::types::ImageConfig,
)> {
    let have = store.lookup(name);
    let need = match (&have, policy) {
        (_, PullPolicy::Always) => true,
        (Ok(_), _) => false,
        (Err(_), PullPolicy::Missing) => true,
        (Err(e), PullPolicy::Never) => {
            return Err(Error::msg(format!(
                "{name}: image not known and --pull never: {e}"
            )))
        }
    };
    if need {
        let r = crate::image::reference::Reference::parse(name)?;
        if policy == PullPolicy::Missing {
            crate::log::warn(&format!("Unable to find image '{r}' locally"));
        }
        let plat = match platform {
            Some(p) => crate::image::types::Platform::parse(p)?,
            None => crate::image::types::Platform::host(),
        };
        crate::image::pull::pull(
            &r,
            &crate::image::pull::PullOpts {
                data_root: ctx.data_root.to_path_buf(),
                platform: plat,
                platform_explicit: platform.is_some(),
                insecure_registries: ctx.insecure_registries.to_vec(),
                quiet: true,
            },
        )?;
        let (img, _) = store.lookup(&r.to_string())?;
        let cfg = store.config(&img)?;
        return Ok((img, cfg));
    }
    let (img, _) = have?;
    let cfg = store.config(&img)?;
    Ok((img, cfg))
}

/// Removes a half-made container on drop unless disarmed.
struct Undo<'a> {
    ctx: &'a Ctx<'a>,
    id: String,
    armed: bool,
    /// Volumes this create referenced (name, made by it: anonymous).
    volumes: Vec<(String, bool)>,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.armed {
            for (v, anonymous) in &self.volumes {
                let _ = volumes::remove_ref(self.ctx.data_root, v, &self.id);
                if *anonymous {
                    let _ = volumes::remove(self.ctx.data_root, v);
                }
            }
            if let Err(e) =
                crate::engine::remove::remove(self.ctx.root, self.ctx.data_root, &self.id, true)
            {
                crate::log::warn(&format!("cleanup of container {}: {e}", self.id));
            }
        }
    }
}

/// Creates the container; returns its id.
pub fn create(ctx: &Ctx, mut req: Request) -> Result<String> {
    // Opened once: each open checks the store's layout on disk.
    let store = Store::open(ctx.data_root)?;
    let image = match (&req.image, &req.rootfs) {
        (Some(name), None) => Some(find_image(
            ctx,
            &store,
            name,
            req.pull,
            req.platform.as_deref(),
        )?),
        (None, Some(_)) => None,
        _ => return Err(Error::msg("want an image or --rootfs DIR")),
    };
    let restart = &req.restart;
    if req.auto_remove && restart.name != "no" {
        return Err(Error::msg(
            "conflicting options: cannot specify both --restart and --rm",
        ));
    }
    // Checked here so that a bad --log-opt fails the create, not the monitor.
    crate::engine::logs::parse_log_opts(&req.log_opts)?;
    if let Some(n) = &req.name {
        names::validate(n)?;
    }

    let id = names::new_id()?;
    let dir = record::dir(ctx.data_root, &id);
    std::fs::create_dir_all(names::containers_dir(ctx.data_root))
        .ctx(|| format!("create {}", names::containers_dir(ctx.data_root).display()))?;
    std::fs::create_dir(&dir).ctx(|| format!("create {}", dir.display()))?;
    let mut undo = Undo {
        ctx,
        id: id.clone(),
        armed: true,
        volumes: Vec::new(),
    };
    // Held until the record is written: sweep and prune wait for it.
    let _lock = record::lock(&dir)?;
    let name = req.name.clone().unwrap_or_else(|| names::default_name(&id));
    names::reserve(ctx.data_root, &name, &id)?;

    let bundle = dir.join("bundle");
    let rootfs_mnt = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs_mnt).ctx(|| format!("create {}", rootfs_mnt.display()))?;
    let mut layers: Vec<String> = Vec::new();
    let (rootfs, image_id, manifest, cfg) = match &image {
        Some((img, cfg)) => {
            // The hold goes in under the writer lock, which a gc waits
            // for: the layers found below are not collected under us.
            let _w = store.writer()?;
            store.hold(&id, &img.manifest.digest)?;
            let dirs = overlay::image_layer_dirs(&store, cfg)?;
            layers = crate::image::types::chain_ids(&cfg.rootfs.diff_ids)
                .iter()
                .map(|d| d.as_str().to_string())
                .collect();
            overlay::mount(&dir, &dirs, &rootfs_mnt)?;
            (
                rootfs_mnt.clone(),
                img.id.as_str().to_string(),
                img.manifest.digest.as_str().to_string(),
                cfg.config.clone(),
            )
        }
        None => {
            let r = req.rootfs.clone().unwrap_or_default();
            let abs = std::fs::canonicalize(&r).ctx(|| format!("--rootfs {}", r.display()))?;
            if !abs.is_dir() {
                return Err(Error::errno(
                    format!("--rootfs {}", r.display()),
                    libc::ENOTDIR,
                ));
            }
            (abs, String::new(), String::new(), None)
        }
    };

    // The files docker bind-mounts over the image's.
    let hostname = match &req.run.hostname {
        Some(h) if !h.is_empty() => h.clone(),
        _ => names::short_id(&id).to_string(),
    };
    write_file(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    if req.run.network == NetworkMode::Host && !req.net.publish.is_empty() {
        crate::log::warn("Published ports are discarded when using host network mode");
        req.net.publish.clear();
    }
    if req.net.publish_all {
        if let Some(eps) = cfg.as_ref().and_then(|c| c.exposed_ports.as_ref()) {
            for k in eps.keys() {
                let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
                req.net
                    .publish
                    .push(crate::net::ports::Spec::parse(&format!("{port}/{proto}"))?);
            }
        }
    }
    if !req.net.publish.is_empty() && req.net.networks.is_empty() {
        return Err(Error::msg(format!(
            "published ports need a network: not --network {}",
            req.network
        )));
    }
    if let Some(other) = req.network.strip_prefix("container:") {
        req.run.network = NetworkMode::Path(shared_netns(ctx, other)?);
    }
    let mut endpoints = Vec::new();
    if !req.net.networks.is_empty() {
        endpoints = netw::setup(ctx.root, ctx.data_root, &id, &name, &req.net)?;
        req.run.network = NetworkMode::Path(
            netw::netns_path(ctx.root, &id)
                .to_string_lossy()
                .into_owned(),
        );
    }
    let host_mode = req.run.network == NetworkMode::Host;
    write_file(
        &dir.join("hosts"),
        netw::hosts(&hostname, &name, &endpoints, &req.net.add_hosts).as_bytes(),
    )?;
    write_file(
        &dir.join("resolv.conf"),
        &netw::resolv_conf(host_mode, &endpoints, &req.net),
    )?;
    if let Some(other) = req.network.strip_prefix("container:") {
        // Its network, so its names and resolvers too (docker's way).
        let odir = record::dir(ctx.data_root, &names::resolve(ctx.data_root, other)?);
        for f in ["hosts", "resolv.conf"] {
            if let Ok(b) = std::fs::read(odir.join(f)) {
                write_file(&dir.join(f), &b)?;
            }
        }
    }

    if req.init {
        req.run.init = Some(crate::engine::tini::init_binary(ctx.data_root)?);
    }
    // -v, then the image's Volumes that no -v covers (anonymous ones).
    let mut specs: Vec<VolumeSpec> = req
        .volumes
        .iter()
        .map(|v| volumes::parse_spec(v))
        .collect::<Result<_>>()?;
    if let Some(vs) = cfg.as_ref().and_then(|c| c.volumes.as_ref()) {
        for dest in vs.keys() {
            let dest = dest.trim_end_matches('/');
            if dest.is_empty()
                || specs
                    .iter()
                    .any(|s| s.destination().trim_end_matches('/') == dest)
            {
                continue;
            }
            specs.push(VolumeSpec::Anonymous {
                destination: dest.to_string(),
            });
        }
    }
    let mut mounts: Vec<record::MountPoint> = Vec::new();
    for spec in specs {
        let (kind, name, source, destination, readonly) = match spec {
            VolumeSpec::Bind {
                source,
                destination,
                readonly,
            } => {
                volumes::ensure_bind_source(Path::new(&source))?;
                ("bind", String::new(), source, destination, readonly)
            }
            VolumeSpec::Named {
                name,
                destination,
                readonly,
            } => {
                let v = volumes::create(ctx.data_root, Some(&name), &BTreeMap::new())?;
                volumes::add_ref(ctx.data_root, v.name(), &id)?;
                undo.volumes.push((v.name().to_string(), false));
                volumes::populate(&v.mountpoint(), &rootfs, &destination)?;
                let src = v.mountpoint().to_string_lossy().into_owned();
                ("volume", name, src, destination, readonly)
            }
            VolumeSpec::Anonymous { destination } => {
                let v = volumes::create(ctx.data_root, None, &BTreeMap::new())?;
                undo.volumes.push((v.name().to_string(), true));
                volumes::add_ref(ctx.data_root, v.name(), &id)?;
                volumes::populate(&v.mountpoint(), &rootfs, &destination)?;
                let src = v.mountpoint().to_string_lossy().into_owned();
                ("volume", v.name().to_string(), src, destination, false)
            }
        };
        mounts.push(record::MountPoint {
            kind: kind.into(),
            name,
            source: source.clone(),
            destination: destination.clone(),
            mode: if readonly { "ro".into() } else { String::new() },
            rw: !readonly,
        });
        req.run.binds.push(spec::BindMount {
            source,
            destination,
            readonly,
        });
    }
    let volumes: Vec<String> = undo.volumes.iter().map(|(n, _)| n.clone()).collect();

    let env: BTreeMap<String, String> = std::env::vars().collect();
    let host = spec::Host {
        id: &id,
        rootfs: &rootfs,
        env: &env,
        hostname_file: &dir.join("hostname"),
        hosts_file: &dir.join("hosts"),
        resolv_conf: &dir.join("resolv.conf"),
        cgroup_v2: crate::cgroups::layout() == crate::cgroups::Layout::V2,
    };
    let mut oci = spec::build(cfg.as_ref(), &req.run, &host)?;
    if req.rootfs.is_some() {
        if let Some(r) = oci.root.as_mut() {
            r.path = rootfs.to_string_lossy().into_owned();
        }
    }
    let process = oci.process.clone().unwrap_or_default();
    let bytes = crate::jsonfmt::to_vec_pretty(&oci)
        .map_err(|e| Error::msg(format!("encode config.json: {e}")))?;
    crate::container::state::write_atomic(&bundle.join("config.json"), &bytes)?;

    let args = process.args.clone();
    let image_cfg = cfg.clone().unwrap_or_default();
    let rec = Record {
        id: id.clone(),
        name: name.clone(),
        created: record::now_rfc3339(),
        image: image_id,
        image_manifest: manifest,
        layers,
        rootfs: req
            .rootfs
            .as_ref()
            .map(|_| rootfs.to_string_lossy().into_owned()),
        path: args.first().cloned().unwrap_or_default(),
        args: args.iter().skip(1).cloned().collect(),
        config: record::Config {
            hostname,
            user: req
                .run
                .user
                .clone()
                .or(image_cfg.user.clone())
                .unwrap_or_default(),
            env: process.env.clone(),
            cmd: if req.run.args.is_empty() {
                image_cfg.cmd.clone().unwrap_or_default()
            } else {
                req.run.args.clone()
            },
            entrypoint: match &req.run.entrypoint {
                Some(e) if e.is_empty() => None,
                Some(e) => Some(vec![e.clone()]),
                None => image_cfg.entrypoint.clone(),
            },
            working_dir: process.cwd.clone(),
            labels: {
                let mut l = image_cfg.labels.clone().unwrap_or_default();
                l.extend(req.run.labels.clone());
                l
            },
            stop_signal: req
                .stop_signal
                .clone()
                .or(image_cfg.stop_signal.clone())
                .unwrap_or_else(|| "SIGTERM".into()),
            stop_timeout: req.stop_timeout,
            tty: req.run.tty,
            open_stdin: req.interactive,
            image: req.image.clone().unwrap_or_default(),
        },
        host_config: record::HostConfig {
            binds: req.volumes.clone(),
            network_mode: req.network.clone(),
            restart_policy: req.restart.clone(),
            auto_remove: req.auto_remove,
            cap_add: req.run.cap_add.clone(),
            cap_drop: req.run.cap_drop.clone(),
            privileged: req.run.privileged,
            readonly_rootfs: req.run.read_only,
            tmpfs: req
                .run
                .tmpfs
                .iter()
                .map(|t| {
                    let (p, o) = t.split_once(':').unwrap_or((t, ""));
                    (p.to_string(), o.to_string())
                })
                .collect(),
            memory: req.run.memory.unwrap_or(0),
            nano_cpus: req.run.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            pids_limit: req.run.pids_limit.unwrap_or(0),
            init: req.init,
            security_opt: req.security_opts.clone(),
            log_config: record::LogConfig {
                kind: "json-file".into(),
                config: req
                    .log_opts
                    .iter()
                    .filter_map(|o| o.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        },
        mounts,
        volumes,
        networks: endpoints.iter().map(|e| e.network.clone()).collect(),
        ports: endpoints
            .first()
            .map(|e| e.ports.clone())
            .unwrap_or_default(),
        log_path: dir.join(record::LOG).to_string_lossy().into_owned(),
    };
    record::save_state(
        &dir,
        &record::State {
            brief: record::brief_of(&rec),
            ..Default::default()
        },
    )?;
    record::save(&dir, &rec)?;
    undo.armed = false;
    Ok(id)
}

fn write_file(p: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(p, data).ctx(|| format!("write {}", p.display()))
}

/// `--network container:OTHER`: OTHER's pinned namespace, or that of
/// its running process.
fn shared_netns(ctx: &Ctx, other: &str) -> Result<String> {
    let oid = names::resolve(ctx.data_root, other)?;
    let pinned = netw::netns_path(ctx.root, &oid);
    if crate::net::netns::is_pinned(&pinned) {
        return Ok(pinned.to_string_lossy().into_owned());
    }
    let st = record::effective_state(&record::dir(ctx.data_root, &oid));
    if st.pid > 0 {
        return Ok(format!("/proc/{}/ns/net", st.pid));
    }
    Err(Error::msg(format!(
        "--network container:{other}: it has no network namespace to share (not running)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_as_docker() {
        assert_eq!(parse_restart("no").unwrap().name, "no");
        let p = parse_restart("on-failure:3").unwrap();
        assert_eq!((p.name.as_str(), p.maximum_retry_count), ("on-failure", 3));
        assert!(parse_restart("always:3").is_err());
        assert!(parse_restart("sometimes").is_err());
        assert!(parse_restart("on-failure:x").is_err());
    }
}
