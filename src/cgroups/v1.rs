//! Limits on cgroup v1: one hierarchy per controller group, one file per
//! knob, values in the units the OCI spec already uses.

use super::{devices, files, Hierarchy};
use crate::bail;
use crate::error::{Context, Result};
use crate::spec::{BlockIo, Cpu, Memory, Resources};
use std::time::{Duration, Instant};

/// Write every limit of `res` that belongs to a controller of `h`; the
/// device policy only when `devices`.
pub fn apply(h: &Hierarchy, res: &Resources, devices: bool) -> Result<()> {
    for c in &h.controllers {
        let d = h.dir.as_str();
        match c.as_str() {
            "memory" => {
                if let Some(m) = &res.memory {
                    memory(d, m)?;
                }
            }
            "cpu" => {
                if let Some(c) = &res.cpu {
                    cpu(d, c)?;
                }
            }
            "cpuset" => {
                if let Some(c) = &res.cpu {
                    cpuset(d, c)?;
                }
            }
            "pids" => {
                if let Some(p) = &res.pids {
                    files::write(d, "pids.max", &pids_max(p.limit))?;
                }
            }
            "blkio" => {
                if let Some(b) = &res.block_io {
                    blkio(d, b)?;
                }
            }
            "hugetlb" => {
                for l in &res.hugepage_limits {
                    files::write(
                        d,
                        &format!("hugetlb.{}.limit_in_bytes", l.page_size),
                        &l.limit.to_string(),
                    )?;
                    let rsvd = format!("hugetlb.{}.rsvd.limit_in_bytes", l.page_size);
                    if files::exists(d, &rsvd) {
                        files::write(d, &rsvd, &l.limit.to_string())?;
                    }
                }
            }
            "net_cls" => {
                if let Some(id) = res.network.as_ref().and_then(|n| n.class_id) {
                    files::write(d, "net_cls.classid", &id.to_string())?;
                }
            }
            "rdma" => {
                for line in super::rdma_lines(res.rdma.as_ref())? {
                    files::write(d, "rdma.max", &line)?;
                }
            }
            "net_prio" => {
                if let Some(n) = &res.network {
                    for p in &n.priorities {
                        if p.name.is_empty() || p.name.bytes().any(|b| b.is_ascii_whitespace()) {
                            bail!(
                                "linux.resources.network.priorities: invalid interface name {:?}",
                                p.name
                            );
                        }
                        files::write(
                            d,
                            "net_prio.ifpriomap",
                            &format!("{} {}", p.name, p.priority),
                        )?;
                    }
                }
            }
            "devices" if devices => {
                let rules = devices::effective_rules(&res.devices)?;
                devices::apply_v1(d, &rules).ctx(|| "device cgroup")?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// pids.max: the spec uses 0 or -1 for "no limit".
pub fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

fn memory(d: &str, m: &Memory) -> Result<()> {
    let limit = m.limit.unwrap_or(0);
    let mut swap = m.swap.unwrap_or(0);
    let has_memsw = files::exists(d, "memory.memsw.limit_in_bytes");
    // Unlimited memory with no swap given means unlimited memory+swap too,
    // or the old memsw limit would still cap the container.
    if limit == -1 && swap == 0 && has_memsw {
        swap = -1;
    }
    if swap != 0 && !has_memsw && swap != -1 {
        bail!("linux.resources.memory.swap: swap accounting is not enabled on this host (no memory.memsw.limit_in_bytes)");
    }
    let set_limit = |d: &str| -> Result<()> {
        if limit != 0 {
            files::write(d, "memory.limit_in_bytes", &limit.to_string())?;
        }
        Ok(())
    };
    let set_swap = |d: &str| -> Result<()> {
        if swap != 0 && has_memsw {
            files::write(d, "memory.memsw.limit_in_bytes", &swap.to_string())?;
        }
        Ok(())
    };
    // The kernel insists memory <= memory+swap at every step, so the order
    // depends on whether the limits grow or shrink.
    let cur = files::read_u64(d, "memory.limit_in_bytes").unwrap_or(0);
    if limit != 0 && swap != 0 && (swap == -1 || cur < swap as u64) {
        set_swap(d)?;
        set_limit(d)?;
    } else {
        set_limit(d)?;
        set_swap(d)?;
    }
    if let Some(r) = m.reservation {
        if r != 0 {
            files::write(d, "memory.soft_limit_in_bytes", &r.to_string())?;
        }
    }
    // Kernel memory limits are deprecated (5.4) and refused since 6.x;
    // runc ignores them too, so a failure here is not the container's.
    if let Some(k) = m.kernel {
        if k != 0 && files::exists(d, "memory.kmem.limit_in_bytes") {
            let _ = files::write(d, "memory.kmem.limit_in_bytes", &k.to_string());
        }
    }
    if let Some(k) = m.kernel_tcp {
        if k != 0 && files::exists(d, "memory.kmem.tcp.limit_in_bytes") {
            let _ = files::write(d, "memory.kmem.tcp.limit_in_bytes", &k.to_string());
        }
    }
    if let Some(s) = m.swappiness {
        if s > 100 {
            bail!("linux.resources.memory.swappiness: {s} is not in 0..=100");
        }
        files::write(d, "memory.swappiness", &s.to_string())?;
    }
    if m.disable_oom_killer == Some(true) {
        files::write(d, "memory.oom_control", "1")?;
    }
    Ok(())
}

fn cpu(d: &str, c: &Cpu) -> Result<()> {
    if let Some(s) = c.shares {
        if s != 0 {
            files::write(d, "cpu.shares", &s.to_string())?;
            // The kernel clamps silently; say so instead of running with a
            // value nobody asked for.
            let got = files::read_u64(d, "cpu.shares")?;
            if got != s {
                bail!("linux.resources.cpu.shares: {s} is out of range (the kernel set {got})");
            }
        }
    }
    let period = c.period.unwrap_or(0);
    let quota = c.quota.unwrap_or(0);
    if period != 0 {
        // A new period may be refused until the quota fits it; retry after.
        if files::write(d, "cpu.cfs_period_us", &period.to_string()).is_err() {
            if quota != 0 {
                files::write(d, "cpu.cfs_quota_us", &quota.to_string())?;
            }
            files::write(d, "cpu.cfs_period_us", &period.to_string())?;
        }
    }
    if quota != 0 {
        files::write(d, "cpu.cfs_quota_us", &quota.to_string())?;
    }
    if let Some(b) = c.burst {
        if files::exists(d, "cpu.cfs_burst_us") {
            files::write(d, "cpu.cfs_burst_us", &b.to_string())?;
        } else if b != 0 {
            bail!("linux.resources.cpu.burst: not supported by this kernel");
        }
    }
    if let Some(p) = c.realtime_period {
        if p != 0 {
            files::write(d, "cpu.rt_period_us", &p.to_string())?;
        }
    }
    if let Some(r) = c.realtime_runtime {
        if r != 0 {
            files::write(d, "cpu.rt_runtime_us", &r.to_string())?;
        }
    }
    if let Some(i) = c.idle {
        if files::exists(d, "cpu.idle") {
            files::write(d, "cpu.idle", &i.to_string())?;
        } else if i != 0 {
            bail!("linux.resources.cpu.idle: not supported by this kernel");
        }
    }
    Ok(())
}

fn cpuset(d: &str, c: &Cpu) -> Result<()> {
    if let Some(s) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
        files::write(d, "cpuset.cpus", s)?;
    }
    if let Some(s) = c.mems.as_deref().filter(|s| !s.is_empty()) {
        files::write(d, "cpuset.mems", s)?;
    }
    Ok(())
}

fn blkio(d: &str, b: &BlockIo) -> Result<()> {
    // Kernels with only BFQ expose blkio.bfq.weight instead.
    let (weight_file, weight_dev_file) = if files::exists(d, "blkio.weight") {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if let Some(w) = b.weight {
        if w != 0 {
            files::write(d, weight_file, &w.to_string())?;
        }
    }
    if let Some(w) = b.leaf_weight {
        if w != 0 && files::exists(d, "blkio.leaf_weight") {
            files::write(d, "blkio.leaf_weight", &w.to_string())?;
        }
    }
    for wd in &b.weight_device {
        if let Some(w) = wd.weight {
            files::write(
                d,
                weight_dev_file,
                &format!("{}:{} {w}", wd.major, wd.minor),
            )?;
        }
        if let Some(w) = wd.leaf_weight {
            if files::exists(d, "blkio.leaf_weight_device") {
                files::write(
                    d,
                    "blkio.leaf_weight_device",
                    &format!("{}:{} {w}", wd.major, wd.minor),
                )?;
            }
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            &b.throttle_read_bps_device,
        ),
        (
            "blkio.throttle.write_bps_device",
            &b.throttle_write_bps_device,
        ),
        (
            "blkio.throttle.read_iops_device",
            &b.throttle_read_iops_device,
        ),
        (
            "blkio.throttle.write_iops_device",
            &b.throttle_write_iops_device,
        ),
    ];
    for (file, list) in throttles {
        for t in list {
            files::write(d, file, &format!("{}:{} {}", t.major, t.minor, t.rate))?;
        }
    }
    Ok(())
}

/// A new cpuset cgroup starts with no cpus or mems, and a task cannot
/// join it (ENOSPC); give every empty level its parent's, from the leaf up
/// only as far as needed (usually: read the leaf, read /runway, write).
pub fn fill_cpusets(mount: &str, dir: &str) -> Result<()> {
    for f in ["cpuset.cpus", "cpuset.mems"] {
        fill_cpuset(mount.trim_end_matches('/'), dir, f)?;
    }
    Ok(())
}

/// The value `dir/f` has once filled.
fn fill_cpuset(mount: &str, dir: &str, f: &str) -> Result<String> {
    let v = files::read_trim(dir, f)?;
    if !v.is_empty() || dir.len() <= mount.len() {
        return Ok(v);
    }
    let parent = dir.rsplit_once('/').map_or(mount, |(p, _)| p);
    let v = fill_cpuset(mount, parent, f)?;
    files::write(dir, f, &v)?;
    // Our own default parent copies its cpus and mems into each new child
    // from now on (cgroup.clone_children), sparing the next create this.
    if parent.strip_prefix(mount) == Some("/runway") {
        let _ = files::write(parent, "cgroup.clone_children", "1");
    }
    Ok(v)
}

/// Freeze and wait until every task is stopped. FREEZING can stick while a
/// task is in an uninterruptible sleep; writing FROZEN again retries it.
pub fn freeze(dir: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut delay = Duration::from_micros(500);
    loop {
        files::write(dir, "freezer.state", "FROZEN").ctx(|| "pause")?;
        let st = files::read_trim(dir, "freezer.state").ctx(|| "pause")?;
        if st == "FROZEN" {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = files::write(dir, "freezer.state", "THAWED");
            bail!("pause: {dir} did not freeze in 5 s (state {st})");
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}

pub fn thaw(dir: &str) -> Result<()> {
    files::write(dir, "freezer.state", "THAWED").ctx(|| "resume")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_values() {
        assert_eq!(pids_max(0), "max");
        assert_eq!(pids_max(-1), "max");
        assert_eq!(pids_max(32), "32");
    }
}
