//! A porcelain container on disk: its record (`config.v1.json`, what
//! `run` was asked, written once) and its state (`state.json`, what the
//! monitor last saw), each written atomically; the per-container lock and
//! the monitor's liveness lock.

use crate::error::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub const CONFIG: &str = "config.v1.json";
pub const STATE: &str = "state.json";
/// Taken for every state change (start, stop, rm, the monitor's exit).
pub const LOCK: &str = "lock";
/// Held exclusively by the live monitor: free means no monitor.
pub const MONITOR_LOCK: &str = "monitor.lock";
pub const LOG: &str = "container.log";

/// `config.v1.json`: docker's inspect shape where it has one.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Record {
    pub id: String,
    pub name: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// The image id (`sha256:…`), empty for `--rootfs`.
    pub image: String,
    /// The manifest digest that holds the image's data in the store.
    pub image_manifest: String,
    /// The chain ids of the image's layers, lowest first.
    pub layers: Vec<String>,
    /// `--rootfs DIR`: no image, no overlay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<String>,
    pub path: String,
    pub args: Vec<String>,
    pub config: Config,
    pub host_config: HostConfig,
    pub mounts: Vec<MountPoint>,
    /// Named and anonymous volumes this container uses.
    pub volumes: Vec<String>,
    /// The networks it joined, eth0's first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
    /// Its published ports (on the first network).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<crate::net::ports::Port>,
    pub log_path: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    pub hostname: String,
    pub user: String,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u32>,
    pub tty: bool,
    pub open_stdin: bool,
    /// The image as the user named it.
    pub image: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// "no", "on-failure", "always", "unless-stopped".
    pub name: String,
    pub maximum_retry_count: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Vec<String>,
    pub network_mode: String,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub tmpfs: BTreeMap<String, String>,
    pub memory: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
    pub init: bool,
    pub security_opt: Vec<String>,
    pub log_config: LogConfig,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    /// "bind", "volume" or "tmpfs".
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
}

/// The part of `config.v1.json` that `ps` shows, also kept in
/// `state.json`: `ps -a` over a thousand containers then opens one small
/// file each.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Brief {
    pub name: String,
    pub created: String,
    pub rootfs: Option<String>,
    pub path: String,
    pub args: Vec<String>,
    pub config: BriefConfig,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<crate::net::ports::Port>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct BriefConfig {
    pub image: String,
    pub labels: BTreeMap<String, String>,
}

/// The record's [`Brief`].
pub fn brief_of(r: &Record) -> Brief {
    Brief {
        name: r.name.clone(),
        created: r.created.clone(),
        rootfs: r.rootfs.clone(),
        path: r.path.clone(),
        args: r.args.clone(),
        config: BriefConfig {
            image: r.config.image.clone(),
            labels: r.config.labels.clone(),
        },
        ports: r.ports.clone(),
    }
}

/// Reads `dir`'s record as a [`Brief`], into `buf` (reused across calls).
pub fn load_brief(dir: &Path, buf: &mut Vec<u8>) -> Option<Brief> {
    buf.clear();
    crate::container::state::read_small(&dir.join(CONFIG), buf).ok()?;
    serde_json::from_slice(buf).ok()
}

/// What the container is doing, as docker names it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Restarting,
    Exited,
    /// Being removed, or its monitor died and left it unknown.
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// `state.json`.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct State {
    pub status: Status,
    /// The container's init (host pid), 0 when not running.
    pub pid: i32,
    pub monitor_pid: i32,
    pub exit_code: i32,
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    pub error: String,
    /// `stop`/`kill` by the user: no restart (docker's "manually stopped").
    pub stopped_by_user: bool,
    /// What `ps` shows (a copy from the record, written at create).
    pub brief: Brief,
}

/// `DATA_ROOT/containers/<id>`.
pub fn dir(data_root: &Path, id: &str) -> PathBuf {
    crate::engine::names::containers_dir(data_root).join(id)
}

pub fn load(dir: &Path) -> Result<Record> {
    let p = dir.join(CONFIG);
    let bytes = std::fs::read(&p).ctx(|| format!("read {}", p.display()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| crate::error::Error::msg(format!("{}: {e}", p.display())))
}

pub fn save(dir: &Path, r: &Record) -> Result<()> {
    let bytes = serde_json::to_vec(r)
        .map_err(|e| crate::error::Error::msg(format!("encode container record: {e}")))?;
    crate::container::state::write_atomic(&dir.join(CONFIG), &bytes)
}

/// The state; a container whose state file is missing (created and killed
/// before the first write) is `created`.
pub fn load_state(dir: &Path) -> State {
    std::fs::read(dir.join(STATE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn save_state(dir: &Path, s: &State) -> Result<()> {
    let bytes = serde_json::to_vec(s)
        .map_err(|e| crate::error::Error::msg(format!("encode container state: {e}")))?;
    crate::container::state::write_atomic(&dir.join(STATE), &bytes)
}

fn open_lock_file(p: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        p,
        rustix::fs::OFlags::CREATE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .ctx(|| format!("open {}", p.display()))
}

/// The container's lock, held until the fd is dropped.
pub fn lock(dir: &Path) -> Result<OwnedFd> {
    lock_file(&dir.join(LOCK))
}

/// An exclusive flock on `p` (created 0600 if missing), held until the
/// fd is dropped: the one way the engine's lock files are taken.
pub fn lock_file(p: &Path) -> Result<OwnedFd> {
    let fd = open_lock_file(p)?;
    rustix::fs::flock(&fd, rustix::fs::FlockOperation::LockExclusive)
        .ctx(|| format!("lock {}", p.display()))?;
    Ok(fd)
}

/// Taken by the monitor for its lifetime; None if another monitor holds it.
pub fn take_monitor_lock(dir: &Path) -> Result<Option<OwnedFd>> {
    let p = dir.join(MONITOR_LOCK);
    let fd = open_lock_file(&p)?;
    match rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(fd)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e).ctx(|| format!("lock {}", p.display())),
    }
}

/// Whether a monitor lives for this container (its lock is held).
pub fn monitor_alive(dir: &Path) -> bool {
    lock_held(&dir.join(MONITOR_LOCK))
}

/// Whether some process holds the flock on `p` (a missing file: no).
pub fn lock_held(p: &Path) -> bool {
    let Ok(fd) = rustix::fs::open(
        p,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) else {
        return false;
    };
    matches!(
        rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockShared),
        Err(rustix::io::Errno::WOULDBLOCK)
    )
}

/// The state as `ps` and `inspect` should show it: a running or restarting
/// container whose monitor is gone is reported with what the OCI runtime
/// still knows (its init may live on, unsupervised).
pub fn effective_state(dir: &Path) -> State {
    effective(dir, load_state(dir))
}

/// `effective_state` reading through `buf` (reused by `ps`).
pub fn effective_state_with(dir: &Path, buf: &mut Vec<u8>) -> State {
    buf.clear();
    let s = crate::container::state::read_small(&dir.join(STATE), buf)
        .ok()
        .and_then(|()| serde_json::from_slice(buf).ok())
        .unwrap_or_default();
    effective(dir, s)
}

fn effective(dir: &Path, mut s: State) -> State {
    if matches!(s.status, Status::Running | Status::Restarting) && !monitor_alive(dir) {
        let alive = pid_alive(s.pid);
        if alive {
            // Still running, but nobody reads its output or records its
            // exit: `stop`/`rm -f` end it.
            s.error = "monitor died".into();
        } else {
            s.status = Status::Exited;
            if s.error.is_empty() {
                s.error = "monitor died".into();
            }
            if s.exit_code == 0 {
                s.exit_code = 255;
            }
        }
    }
    s
}

/// Whether `pid` is a live process: a zombie is not (an init whose
/// monitor died is reaped by whoever inherited it, maybe never).
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the command's closing paren.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z') | Some('X') | Some('x'))
}

/// Every container dir's id (64 hex), unsorted.
pub fn list_ids(data_root: &Path) -> Vec<String> {
    let d = crate::engine::names::containers_dir(data_root);
    let Ok(rd) = std::fs::read_dir(&d) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| crate::engine::names::is_full_id(n))
        .collect()
}

/// "now" as the record stores it.
pub fn now_rfc3339() -> String {
    let (s, n) = crate::timefmt::now();
    crate::timefmt::rfc3339_nano(s, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_and_state_round_trip_and_default_when_missing() {
        let d = std::env::temp_dir().join(format!("runway-record-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(load_state(&d).status, Status::Created);
        let r = Record {
            id: "a".repeat(64),
            name: "web".into(),
            ..Default::default()
        };
        save(&d, &r).unwrap();
        assert_eq!(load(&d).unwrap().name, "web");
        let s = State {
            status: Status::Running,
            pid: 1,
            ..Default::default()
        };
        save_state(&d, &s).unwrap();
        assert_eq!(load_state(&d).status, Status::Running);
        assert!(!monitor_alive(&d));
        let held = take_monitor_lock(&d).unwrap();
        assert!(held.is_some());
        assert!(monitor_alive(&d));
        drop(held);
        assert!(!monitor_alive(&d));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
