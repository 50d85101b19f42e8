//! Control groups: where a container's processes live and what limits them.
//!
//! Three host kinds are handled: v1 (one hierarchy per controller group),
//! hybrid (v1 controllers plus a cgroup2 hierarchy, usually at
//! /sys/fs/cgroup/unified, that may own a few controllers), and pure v2.
//! `plan` decides the directories without touching the system; the result
//! is stored in state.json so later commands act on the same directories.
//!
//! Use: `plan` -> `create` -> `apply(resources)` -> start the init inside
//! it (clone3 with CLONE_INTO_CGROUP on `v2_dir_fd()` when that is Some,
//! else `add_pid` before it runs user code). `update` rewrites limits but
//! never the device policy. `destroy(true)` kills and removes; it is
//! idempotent and works on a half-created cgroup.
//!
//! cgroupsPath: absolute = below every hierarchy's root; relative = below
//! the runtime's own cgroup (from /proc/self/cgroup), as runc; absent =
//! "/runway/<id>", whose "/runway" is removed again once empty. With the
//! systemd driver, "slice:prefix:name" is laid out as systemd would
//! (/a.slice/a-b.slice/prefix-name.scope) but units are not registered
//! over D-Bus; without a running systemd, `plan` refuses.

mod devices;
mod files;
mod path;
mod stats;
mod v1;
mod v2;

pub use devices::{effective_rules, DeviceRules};
pub use path::clean as clean_path;
pub use v2::{cpu_max, shares_to_weight, swap_max, weight_v1_to_v2};

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::spec::Resources;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// What kind of cgroup host this is.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum Layout {
    V1,
    /// v1 controllers plus a cgroup2 hierarchy mounted beside them.
    Hybrid,
    V2,
    /// No cgroup file system mounted at all.
    #[default]
    None,
}

/// One hierarchy the container has a directory in.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Hierarchy {
    /// The container's directory.
    pub dir: String,
    /// Where the hierarchy is mounted; never removed, never climbed above.
    pub mount: String,
    /// v1: the controllers bound to it ("name=systemd" for named ones).
    /// cgroup2: the controllers we manage through it.
    pub controllers: Vec<String>,
    pub unified: bool,
}

/// A container's cgroup, as planned in the parent and stored in state.json
/// so later commands (delete, pause, ps, events, update) find it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cgroup {
    #[serde(default)]
    pub layout: Layout,
    #[serde(default)]
    pub hierarchies: Vec<Hierarchy>,
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The host's cgroup layout, from /proc/self/mountinfo and a statfs of
/// /sys/fs/cgroup.
pub fn layout() -> Layout {
    let mounts = path::read_mounts().unwrap_or_default();
    layout_of(&mounts, sys_fs_cgroup_is_v2())
}

// f_type's width differs between architectures.
#[allow(clippy::unnecessary_cast)]
fn sys_fs_cgroup_is_v2() -> bool {
    rustix::fs::statfs("/sys/fs/cgroup")
        .map(|s| s.f_type as i64 == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

fn layout_of(mounts: &[path::Mount], root_is_v2: bool) -> Layout {
    let v1 = mounts.iter().any(|m| !m.unified);
    let v2 = mounts.iter().any(|m| m.unified);
    if root_is_v2 || (v2 && !v1) {
        Layout::V2
    } else if v1 && v2 {
        Layout::Hybrid
    } else if v1 {
        Layout::V1
    } else {
        Layout::None
    }
}

/// The controllers `res` asks for, with the config field that asks, so a
/// missing one can be reported precisely.
fn needed_controllers(res: &Resources) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if let Some(m) = &res.memory {
        if m.limit.is_some()
            || m.reservation.is_some()
            || m.swap.is_some()
            || m.swappiness.is_some()
            || m.disable_oom_killer == Some(true)
        {
            out.push(("memory", "memory"));
        }
    }
    if let Some(c) = &res.cpu {
        if c.shares.is_some()
            || c.quota.is_some()
            || c.period.is_some()
            || c.burst.is_some()
            || c.realtime_runtime.is_some()
            || c.realtime_period.is_some()
            || c.idle.is_some()
        {
            out.push(("cpu", "cpu"));
        }
        if c.cpus.as_deref().is_some_and(|s| !s.is_empty())
            || c.mems.as_deref().is_some_and(|s| !s.is_empty())
        {
            out.push(("cpuset", "cpu.cpus/mems"));
        }
    }
    if res.pids.is_some() {
        out.push(("pids", "pids"));
    }
    if let Some(b) = &res.block_io {
        if b.weight.is_some()
            || b.leaf_weight.is_some()
            || !b.weight_device.is_empty()
            || !b.throttle_read_bps_device.is_empty()
            || !b.throttle_write_bps_device.is_empty()
            || !b.throttle_read_iops_device.is_empty()
            || !b.throttle_write_iops_device.is_empty()
        {
            out.push(("blkio", "blockIO"));
        }
    }
    if !res.hugepage_limits.is_empty() {
        out.push(("hugetlb", "hugepageLimits"));
    }
    if let Some(n) = &res.network {
        if n.class_id.is_some() {
            out.push(("net_cls", "network.classID"));
        }
        if !n.priorities.is_empty() {
            out.push(("net_prio", "network.priorities"));
        }
    }
    if res
        .rdma
        .as_ref()
        .is_some_and(|r| r.as_object().is_some_and(|o| !o.is_empty()))
    {
        out.push(("rdma", "rdma"));
    }
    out
}

/// rdma.max lines ("mlx5_1 hca_handle=3 hca_object=10000") from the
/// spec's map of device name to limits; the file format is the same on
/// v1 and v2.
pub fn rdma_lines(rdma: Option<&serde_json::Value>) -> Result<Vec<String>> {
    let Some(v) = rdma else {
        return Ok(Vec::new());
    };
    let Some(map) = v.as_object() else {
        bail!("linux.resources.rdma: expected an object");
    };
    let mut out = Vec::new();
    for (dev, lim) in map {
        if dev.is_empty() || dev.bytes().any(|b| b.is_ascii_whitespace() || b == b'/') {
            bail!("linux.resources.rdma: invalid device name {dev:?}");
        }
        let mut line = dev.clone();
        for (key, file_key) in [("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object")] {
            match lim.get(key) {
                None | Some(serde_json::Value::Null) => {}
                Some(n) => match n.as_u64().filter(|n| *n <= u64::from(u32::MAX)) {
                    Some(n) => line.push_str(&format!(" {file_key}={n}")),
                    None => bail!("linux.resources.rdma.{dev}.{key}: invalid value {n}"),
                },
            }
        }
        out.push(line);
    }
    Ok(out)
}

/// v2 spells two controllers differently.
fn v2_name(v1: &str) -> &str {
    match v1 {
        "blkio" => "io",
        other => other,
    }
}

/// Work out the cgroup directories for a container. No system changes.
pub fn plan(
    cgroups_path: Option<&str>,
    id: &str,
    systemd: bool,
    resources: Option<&Resources>,
) -> Result<Cgroup> {
    plan_and_view(cgroups_path, id, systemd, resources).map(|(cg, _)| cg)
}

/// `plan`, and what the container's /sys/fs/cgroup is to show.
pub fn plan_and_view(
    cgroups_path: Option<&str>,
    id: &str,
    systemd: bool,
    resources: Option<&Resources>,
) -> Result<(Cgroup, View)> {
    let inner = path::inner_path(cgroups_path, id, systemd)?;
    let mounts = path::read_mounts()?;
    let own = path::read_own()?;
    let layout = layout_of(&mounts, sys_fs_cgroup_is_v2());
    let unified_available = |m: &path::Mount| -> Vec<String> {
        files::read(&m.point, "cgroup.controllers")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let cg = plan_with(layout, &mounts, &own, &inner, resources, &unified_available)?;
    let view = view_of(&cg, &mounts, &own);
    Ok((cg, view))
}

/// What a `type: cgroup` mount shows the container, worked out in the
/// parent so the child mounts it without reading /proc.
#[derive(Debug, Clone, PartialEq)]
pub enum View {
    /// /sys/fs/cgroup is cgroup2: mount that.
    Unified,
    /// A tmpfs with one directory per hierarchy.
    Hierarchies(Vec<HierarchyView>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HierarchyView {
    /// Its directory under /sys/fs/cgroup ("memory", "cpu,cpuacct", "unified").
    pub name: String,
    pub unified: bool,
    /// Data for a fresh mount inside a cgroup namespace: the controllers.
    pub data: std::ffi::CString,
    /// Bind-mounted without a cgroup namespace: the container's cgroup, or
    /// ours in a hierarchy the container has no directory in.
    pub host: std::ffi::CString,
}

/// Every hierarchy mounted right under /sys/fs/cgroup, as the container
/// sees it once it lives in its cgroups.
fn view_of(cg: &Cgroup, mounts: &[path::Mount], own: &[path::Membership]) -> View {
    if cg.layout == Layout::V2 {
        return View::Unified;
    }
    let mut out = Vec::new();
    for m in mounts {
        let Some(name) = m.point.strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            continue;
        }
        let host = match cg.hierarchies.iter().find(|h| h.mount == m.point) {
            Some(h) => h.dir.clone(),
            None => match path::own_path(m, own) {
                Some(rel) => format!("{}/{}", m.point, rel.trim_start_matches('/')),
                None => continue,
            },
        };
        let (Ok(data), Ok(host)) = (
            std::ffi::CString::new(m.controllers.join(",")),
            std::ffi::CString::new(host),
        ) else {
            continue;
        };
        out.push(HierarchyView {
            name: name.to_string(),
            unified: m.unified,
            data,
            host,
        });
    }
    View::Hierarchies(out)
}

fn plan_with(
    layout: Layout,
    mounts: &[path::Mount],
    own: &[path::Membership],
    inner: &path::Inner,
    resources: Option<&Resources>,
    unified_available: &dyn Fn(&path::Mount) -> Vec<String>,
) -> Result<Cgroup> {
    let mut hs: Vec<Hierarchy> = Vec::new();
    match layout {
        Layout::None => bail!("cgroups: no cgroup file system is mounted"),
        Layout::V2 => {
            // Prefer the canonical mount when cgroup2 is mounted twice.
            let m = mounts
                .iter()
                .filter(|m| m.unified)
                .min_by_key(|m| m.point != "/sys/fs/cgroup")
                .ok_or_else(|| Error::msg("cgroups: no cgroup2 mount found"))?;
            if m.read_only {
                bail!("cgroups: {} is mounted read-only", m.point);
            }
            hs.push(Hierarchy {
                dir: path::leaf_dir(m, inner, own)?,
                mount: m.point.clone(),
                controllers: unified_available(m),
                unified: true,
            });
        }
        Layout::V1 | Layout::Hybrid => {
            for m in mounts.iter().filter(|m| !m.unified && !m.read_only) {
                hs.push(Hierarchy {
                    dir: path::leaf_dir(m, inner, own)?,
                    mount: m.point.clone(),
                    controllers: m.controllers.clone(),
                    unified: false,
                });
            }
            if layout == Layout::Hybrid {
                if let Some(m) = mounts.iter().find(|m| m.unified && !m.read_only) {
                    let taken: Vec<&str> = hs
                        .iter()
                        .flat_map(|h| h.controllers.iter().map(|c| v2_name(c)))
                        .collect();
                    // Only what the config uses: a controller enabled in a
                    // cgroup2 subtree can no longer be mounted as v1, so
                    // switching on more would change the host for others.
                    let needed: Vec<&str> = resources
                        .map(|r| {
                            needed_controllers(r)
                                .into_iter()
                                .map(|(c, _)| v2_name(c))
                                .collect()
                        })
                        .unwrap_or_default();
                    let controllers = unified_available(m)
                        .into_iter()
                        .filter(|c| !taken.contains(&c.as_str()) && needed.contains(&c.as_str()))
                        .collect();
                    hs.push(Hierarchy {
                        dir: path::leaf_dir(m, inner, own)?,
                        mount: m.point.clone(),
                        controllers,
                        unified: true,
                    });
                }
            }
        }
    }
    if let Some(res) = resources {
        for (ctrl, field) in needed_controllers(res) {
            let have = hs.iter().any(|h| {
                h.controllers
                    .iter()
                    .any(|c| c == ctrl || (h.unified && c == v2_name(ctrl)))
            });
            if !have {
                bail!(
                    "cgroups: linux.resources.{field} needs the {ctrl} controller, which this host does not provide"
                );
            }
        }
        // Device rules are a security boundary: never drop them silently.
        // (On pure v2 they are an eBPF program, always possible.)
        let devices_v1 = hs
            .iter()
            .any(|h| !h.unified && h.controllers.iter().any(|c| c == "devices"));
        if layout != Layout::V2 && !res.devices.is_empty() && !devices_v1 {
            bail!("cgroups: linux.resources.devices needs the devices controller, which this host does not provide");
        }
    }
    Ok(Cgroup {
        layout,
        hierarchies: hs,
    })
}

/// Whether a `freeze_file` says frozen ("FROZEN" in v1, "1" in cgroup2).
pub fn file_says_frozen(path: &str) -> bool {
    crate::linux::file::read(path).is_ok_and(|s| matches!(s.trim(), "FROZEN" | "1"))
}

/// rmdir, tolerating a directory that is already gone.
fn rmdir_missing_ok(dir: &str) -> Result<()> {
    match rustix::fs::rmdir(dir) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(Error::errno(
            format!("remove cgroup {dir}"),
            e.raw_os_error(),
        )),
    }
}

/// Remove `dir` and every cgroup below it (a container may have made its
/// own), deepest first. A busy cgroup is retried briefly: the kernel frees
/// a cgroup a moment after its last task is reaped.
fn remove_tree(dir: &str) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("list cgroup {dir}")),
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&format!("{dir}/{}", e.file_name().to_string_lossy()))?;
        }
    }
    let mut delay = Duration::from_millis(2);
    for _ in 0..12 {
        match rustix::fs::rmdir(dir) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(rustix::io::Errno::BUSY) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(200));
            }
            Err(e) => {
                return Err(Error::errno(
                    format!("remove cgroup {dir}"),
                    e.raw_os_error(),
                ))
            }
        }
    }
    rmdir_missing_ok(dir)
}

/// mkdir `dir` and its missing parents. Another runtime deleting an empty
/// shared parent (e.g. /runway) can race us, so ENOENT restarts the walk.
fn mkdir_all(mount: &str, dir: &str) -> Result<()> {
    let mode = rustix::fs::Mode::from_raw_mode(0o755);
    // The parent (/runway) is usually there already: one mkdir.
    match rustix::fs::mkdir(dir, mode) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => return Ok(()),
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => {
            return Err(Error::errno(
                format!("create cgroup {dir}"),
                e.raw_os_error(),
            ))
        }
    }
    for _ in 0..5 {
        let mut raced = false;
        for d in chain(mount, dir) {
            match rustix::fs::mkdir(d.as_str(), mode) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(rustix::io::Errno::NOENT) => {
                    raced = true;
                    break;
                }
                Err(e) => return Err(Error::errno(format!("create cgroup {d}"), e.raw_os_error())),
            }
        }
        if !raced {
            return Ok(());
        }
    }
    Err(Error::errno(format!("create cgroup {dir}"), libc::ENOENT))
}

/// The directories from just below `mount` down to `dir`, outermost first.
fn chain(mount: &str, dir: &str) -> Vec<String> {
    let Some(rest) = dir.strip_prefix(mount.trim_end_matches('/')) else {
        return vec![dir.to_string()];
    };
    let mut cur = mount.trim_end_matches('/').to_string();
    let mut out = Vec::new();
    for c in rest.split('/').filter(|c| !c.is_empty()) {
        cur.push('/');
        cur.push_str(c);
        out.push(cur.clone());
    }
    out
}

/// Every pid in `dir` and the cgroups below it.
fn procs_recursive(dir: &str, out: &mut Vec<i32>) {
    if let Ok(text) = files::read(dir, "cgroup.procs") {
        out.extend(files::parse_pids(&text));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                procs_recursive(&format!("{dir}/{}", e.file_name().to_string_lossy()), out);
            }
        }
    }
}

fn dir_exists(d: &str) -> bool {
    std::path::Path::new(d).is_dir()
}

impl Cgroup {
    fn v1(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| !h.unified && h.controllers.iter().any(|c| c == controller))
    }

    fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.unified)
    }

    /// mkdir every directory (parents too).
    pub fn create(&self) -> Result<()> {
        for h in &self.hierarchies {
            if h.unified {
                // Controllers must be switched on in every ancestor before
                // the leaf gets their files.
                let dirs = chain(&h.mount, &h.dir);
                let mut parent = h.mount.clone();
                for d in &dirs {
                    v2::enable_controllers(&parent, &h.controllers);
                    if !dir_exists(d) {
                        mkdir_all(&h.mount, d)?;
                    }
                    parent = d.clone();
                }
            } else {
                mkdir_all(&h.mount, &h.dir)?;
                if h.controllers.iter().any(|c| c == "cpuset") {
                    v1::fill_cpusets(&h.mount, &h.dir)?;
                }
            }
        }
        Ok(())
    }

    /// Write the limits of `linux.resources`, device rules included: the
    /// device policy becomes exactly `res.devices` plus runc's defaults.
    pub fn apply(&self, res: &Resources) -> Result<()> {
        self.write_limits(res, true)
    }

    /// `runway update`: write the limits in `res` but leave the device
    /// policy alone, since an update carries no device rules (runc's
    /// `update` cannot change them either). Values of 0 / absent mean
    /// "unchanged", as in the spec.
    pub fn update(&self, res: &Resources) -> Result<()> {
        self.write_limits(res, false)
    }

    fn write_limits(&self, res: &Resources, devices: bool) -> Result<()> {
        for hp in &res.hugepage_limits {
            let ok =
                !hp.page_size.is_empty() && hp.page_size.bytes().all(|b| b.is_ascii_alphanumeric());
            if !ok {
                bail!(
                    "linux.resources.hugepageLimits: invalid pageSize {:?}",
                    hp.page_size
                );
            }
        }
        if self.layout != Layout::V2 && !res.unified.is_empty() && self.unified().is_none() {
            bail!(
                "cgroups: linux.resources.unified needs cgroup v2, which this host does not have"
            );
        }
        for h in &self.hierarchies {
            if h.unified {
                v2::apply(h, res, devices && self.layout == Layout::V2)?;
            } else {
                v1::apply(h, res, devices)?;
            }
        }
        Ok(())
    }

    /// Move `pid` into every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for h in &self.hierarchies {
            files::write(&h.dir, "cgroup.procs", &pid.to_string())
                .ctx(|| format!("join cgroup {}", h.dir))?;
        }
        Ok(())
    }

    /// Move the calling process, which must be single-threaded, into every
    /// v1 hierarchy by writing "0" (the caller) to `tasks`. Writing another
    /// pid to cgroup.procs takes the kernel's global threadgroup rwsem for
    /// writing, and the first such write after a quiet spell waits for an
    /// RCU grace period (5-60 ms on a busy 2-core host, most of a create);
    /// a thread moving itself skips that lock.
    pub fn join_self_v1(&self) -> Result<()> {
        for h in self.hierarchies.iter().filter(|h| !h.unified) {
            files::write(&h.dir, "tasks", "0").ctx(|| format!("join cgroup {}", h.dir))?;
        }
        Ok(())
    }

    /// Move the calling, single-threaded process into every hierarchy: v1
    /// as `join_self_v1`, the unified one by writing "0" to cgroup.procs.
    pub fn join_self(&self) -> Result<()> {
        self.join_self_v1()?;
        if let Some(h) = self.unified() {
            files::write(&h.dir, "cgroup.procs", "0").ctx(|| format!("join cgroup {}", h.dir))?;
        }
        Ok(())
    }

    /// Write `pid` to the unified hierarchy's cgroup.procs only (the v1
    /// part done by `join_self_v1`).
    pub fn add_pid_unified(&self, pid: i32) -> Result<()> {
        if let Some(h) = self.unified() {
            files::write(&h.dir, "cgroup.procs", &pid.to_string())
                .ctx(|| format!("join cgroup {}", h.dir))?;
        }
        Ok(())
    }

    /// An O_DIRECTORY fd of the unified dir, pure v2 or hybrid, for
    /// clone3(CLONE_INTO_CGROUP) of a process that joins the v1
    /// hierarchies itself.
    pub fn unified_dir_fd(&self) -> Option<std::os::fd::OwnedFd> {
        let h = self.unified()?;
        rustix::fs::open(
            h.dir.as_str(),
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()
    }

    /// An O_DIRECTORY fd of the v2 dir for clone3(CLONE_INTO_CGROUP), if
    /// the host is pure v2.
    pub fn v2_dir_fd(&self) -> Option<std::os::fd::OwnedFd> {
        if self.layout != Layout::V2 {
            return None;
        }
        self.unified_dir_fd()
    }

    /// SIGKILL everything in the container's cgroup. v2's cgroup.kill does
    /// it atomically; otherwise the cgroup is frozen first so nothing forks
    /// behind our back, and thawed so the kills are delivered.
    pub fn kill_all(&self) -> Result<()> {
        // Only on pure v2 does the unified directory hold every process for
        // sure; on hybrid one may have moved within a v1 hierarchy alone.
        if self.layout == Layout::V2 {
            if let Some(h) = self.unified() {
                if files::exists(&h.dir, "cgroup.kill")
                    && files::write(&h.dir, "cgroup.kill", "1").is_ok()
                {
                    return Ok(());
                }
            }
        }
        let frozen = self.freeze().is_ok();
        for pid in self.pids()? {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                // Gone already is fine.
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        if frozen {
            self.thaw()?;
        }
        Ok(())
    }

    /// Remove every directory; waits for processes to leave (kill them when
    /// `force`). Safe on a half-created or already removed cgroup.
    pub fn destroy(&self, force: bool) -> Result<()> {
        // Usually the container is gone and its cgroups are empty: rmdir
        // alone removes them (the kernel refuses one that holds processes
        // or children), sparing a freeze and three scans of every
        // hierarchy. Anything refused takes the full path below.
        let empty = self.hierarchies.iter().all(|h| {
            matches!(
                rustix::fs::rmdir(h.dir.as_str()),
                Ok(()) | Err(rustix::io::Errno::NOENT)
            )
        });
        if empty {
            return Ok(());
        }
        if force {
            self.kill_all()?;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut delay = Duration::from_millis(1);
        loop {
            let left = self.pids()?;
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "remove cgroup {}: {} process(es) still inside",
                    self.hierarchies.first().map_or("?", |h| h.dir.as_str()),
                    left.len()
                );
            }
            if force {
                // Late forks that slipped past the first round.
                self.kill_all()?;
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(50));
        }
        for h in &self.hierarchies {
            remove_tree(&h.dir)?;
        }
        Ok(())
    }

    pub fn freeze(&self) -> Result<()> {
        if let Some(h) = self.v1("freezer") {
            return v1::freeze(&h.dir);
        }
        if let Some(h) = self.unified() {
            return v2::freeze(&h.dir);
        }
        bail!("pause: no freezer cgroup for this container")
    }

    pub fn thaw(&self) -> Result<()> {
        if let Some(h) = self.v1("freezer") {
            return v1::thaw(&h.dir);
        }
        if let Some(h) = self.unified() {
            return v2::thaw(&h.dir);
        }
        bail!("resume: no freezer cgroup for this container")
    }

    pub fn is_frozen(&self) -> bool {
        self.freeze_file().is_some_and(|f| file_says_frozen(&f))
    }

    /// Whether a process placed in the cgroup now would stop: frozen, or
    /// on the way there, by this cgroup's own setting or an ancestor's
    /// (v1 freezer.state shows both; cgroup2's own cgroup.freeze does not,
    /// its cgroup.events does). A create waiting for such an init would
    /// wait forever.
    pub fn frozen_or_freezing(&self) -> bool {
        if let Some(h) = self.v1("freezer") {
            return files::read_trim(&h.dir, "freezer.state")
                .is_ok_and(|s| s == "FROZEN" || s == "FREEZING");
        }
        if let Some(h) = self.unified() {
            let own = files::read_trim(&h.dir, "cgroup.freeze").is_ok_and(|s| s == "1");
            let effective = files::read(&h.dir, "cgroup.events")
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "frozen 1"));
            return own || effective;
        }
        false
    }

    /// The file that says whether the container is frozen: v1
    /// freezer.state, else cgroup2's cgroup.freeze.
    pub fn freeze_file(&self) -> Option<String> {
        if let Some(h) = self.v1("freezer") {
            return Some(format!("{}/freezer.state", h.dir));
        }
        self.unified().map(|h| format!("{}/cgroup.freeze", h.dir))
    }
    /// Host pids of every process in the container's cgroup, sub-cgroups
    /// included. Every hierarchy is read: a process may have moved itself
    /// into a nested cgroup of just one of them.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        for h in &self.hierarchies {
            procs_recursive(&h.dir, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// OOM kills so far (memory.oom_control / memory.events), for
    /// `events`' "oom" notifications; 0 when unknown.
    pub fn oom_kills(&self) -> u64 {
        let Some(h) = self
            .hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == "memory"))
        else {
            return 0;
        };
        let file = if h.unified {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        files::read(&h.dir, file)
            .map(|t| {
                files::flat_keyed(&t)
                    .into_iter()
                    .find(|(k, _)| k == "oom_kill")
                    .map_or(0, |(_, v)| v)
            })
            .unwrap_or(0)
    }

    /// runc's `events --stats` "data" object.
    pub fn stats(&self) -> Result<serde_json::Value> {
        stats::collect(self)
    }
}

#[cfg(test)]
mod tests;
