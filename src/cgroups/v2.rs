//! Limits on the unified (cgroup2) hierarchy: the whole job on a pure v2
//! host, the leftover controllers (often hugetlb) on a hybrid one. Values
//! are converted from the spec's v1 units as runc converts them; the
//! conversions are pure functions so they can be tested off-host.

use super::{devices, files, Hierarchy};
use crate::bail;
use crate::error::{Context, Error, Result};
use crate::spec::{BlockIo, Cpu, Memory, Resources, ThrottleDevice};
use std::time::{Duration, Instant};

/// cpu.shares (2..=262144, default 1024) to cpu.weight (1..=10000,
/// default 100); 0 means unset.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// blkio.weight (10..=1000) to io.weight (1..=10000); 0 means unset.
pub fn weight_v1_to_v2(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    let w = u64::from(w.clamp(10, 1000));
    1 + ((w - 10) * 9999) / 990
}

/// The cpu.max line for quota/period, or None when neither is set. A
/// quota of 0 or less is "max"; without a period the kernel keeps its own.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let q = quota.unwrap_or(0);
    let p = period.unwrap_or(0);
    if q == 0 && p == 0 {
        return None;
    }
    let mut s = if q > 0 {
        q.to_string()
    } else {
        "max".to_string()
    };
    if p != 0 {
        s.push(' ');
        s.push_str(&p.to_string());
    }
    Some(s)
}

/// memory.swap.max from the spec's v1-style memory+swap total: swap alone
/// is total - limit. None: leave it alone. -1 maps to "max".
pub fn swap_max(limit: Option<i64>, swap: Option<i64>) -> Result<Option<String>> {
    let limit = limit.unwrap_or(0);
    let swap = swap.unwrap_or(0);
    // Unlimited memory with swap unset means both unlimited, as on v1.
    if limit == -1 && swap == 0 {
        return Ok(Some("max".to_string()));
    }
    match swap {
        0 => return Ok(None),
        -1 => return Ok(Some("max".to_string())),
        s if s < -1 => bail!("linux.resources.memory.swap: invalid value {s}"),
        _ => {}
    }
    if limit == 0 || limit == -1 {
        bail!("linux.resources.memory.swap: a swap limit needs a memory limit");
    }
    if limit < 0 {
        bail!("linux.resources.memory.limit: invalid value {limit}");
    }
    if swap < limit {
        bail!(
            "linux.resources.memory.swap: memory+swap ({swap}) is below the memory limit ({limit})"
        );
    }
    Ok(Some((swap - limit).to_string()))
}

/// A spec byte value for memory.max/low: -1 is "max", 0 is unset.
fn mem_value(v: Option<i64>, field: &str) -> Result<Option<String>> {
    match v.unwrap_or(0) {
        0 => Ok(None),
        -1 => Ok(Some("max".to_string())),
        n if n < 0 => bail!("linux.resources.memory.{field}: invalid value {n}"),
        n => Ok(Some(n.to_string())),
    }
}

/// The io.max lines for the throttle lists: one per device, keys merged.
pub fn io_max_lines(b: &BlockIo) -> Vec<String> {
    let mut out: Vec<(i64, i64, String)> = Vec::new();
    let lists: [(&str, &Vec<ThrottleDevice>); 4] = [
        ("rbps", &b.throttle_read_bps_device),
        ("wbps", &b.throttle_write_bps_device),
        ("riops", &b.throttle_read_iops_device),
        ("wiops", &b.throttle_write_iops_device),
    ];
    for (key, list) in lists {
        for t in list {
            // 0 lifts the limit in v1; "max" does in v2.
            let v = if t.rate == 0 {
                "max".to_string()
            } else {
                t.rate.to_string()
            };
            match out
                .iter_mut()
                .find(|(ma, mi, _)| *ma == t.major && *mi == t.minor)
            {
                Some(e) => e.2.push_str(&format!(" {key}={v}")),
                None => out.push((t.major, t.minor, format!("{key}={v}"))),
            }
        }
    }
    out.into_iter()
        .map(|(ma, mi, s)| format!("{ma}:{mi} {s}"))
        .collect()
}

/// A `unified` key must name a file directly in the container's cgroup.
pub fn check_unified_key(key: &str) -> Result<()> {
    if key.is_empty() || key.contains('/') || key == "." || key == ".." {
        bail!("linux.resources.unified: invalid key {key:?}");
    }
    Ok(())
}

/// Switch on, in `parent`, the controllers in `wanted` that it offers and
/// has not enabled yet. Best effort: a refusal (a controller some parent
/// lacks, a threaded subtree) surfaces later as a missing file, and only
/// if the config actually uses that controller.
pub fn enable_controllers(parent: &str, wanted: &[String]) {
    let offered = files::read(parent, "cgroup.controllers").unwrap_or_default();
    let enabled = files::read(parent, "cgroup.subtree_control").unwrap_or_default();
    for c in wanted {
        if offered.split_whitespace().any(|x| x == c) && !enabled.split_whitespace().any(|x| x == c)
        {
            let _ = files::write(parent, "cgroup.subtree_control", &format!("+{c}"));
        }
    }
}

struct Leaf<'a> {
    h: &'a Hierarchy,
}

impl Leaf<'_> {
    fn manages(&self, ctrl: &str) -> bool {
        self.h.controllers.iter().any(|c| c == ctrl)
    }

    fn write(&self, ctrl: &str, file: &str, value: &str) -> Result<()> {
        if !files::exists(&self.h.dir, file) {
            bail!(
                "cgroups: {}/{file} is missing: the {ctrl} controller is not enabled for this cgroup",
                self.h.dir
            );
        }
        files::write(&self.h.dir, file, value)
    }
}

/// Write every limit of `res` for the controllers `h` manages. `devices`
/// is true on a v2-only host (where the device policy is ours) unless this
/// is an update.
pub fn apply(h: &Hierarchy, res: &Resources, devices: bool) -> Result<()> {
    let l = Leaf { h };
    if l.manages("memory") {
        if let Some(m) = &res.memory {
            memory(&l, m)?;
        }
    }
    if l.manages("cpu") {
        if let Some(c) = &res.cpu {
            cpu(&l, c)?;
        }
    }
    if l.manages("cpuset") {
        if let Some(c) = &res.cpu {
            if let Some(s) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
                l.write("cpuset", "cpuset.cpus", s)?;
            }
            if let Some(s) = c.mems.as_deref().filter(|s| !s.is_empty()) {
                l.write("cpuset", "cpuset.mems", s)?;
            }
        }
    }
    if l.manages("pids") {
        if let Some(p) = &res.pids {
            l.write("pids", "pids.max", &super::v1::pids_max(p.limit))?;
        }
    }
    if l.manages("io") {
        if let Some(b) = &res.block_io {
            io(&l, b)?;
        }
    }
    if l.manages("rdma") {
        for line in super::rdma_lines(res.rdma.as_ref())? {
            l.write("rdma", "rdma.max", &line)?;
        }
    }
    if l.manages("hugetlb") {
        for hp in &res.hugepage_limits {
            l.write(
                "hugetlb",
                &format!("hugetlb.{}.max", hp.page_size),
                &hp.limit.to_string(),
            )?;
            let rsvd = format!("hugetlb.{}.rsvd.max", hp.page_size);
            if files::exists(&h.dir, &rsvd) {
                files::write(&h.dir, &rsvd, &hp.limit.to_string())?;
            }
        }
    }
    if devices {
        let rules = devices::effective_rules(&res.devices)?;
        devices::apply_v2(&h.dir, &rules)?;
    }
    // Last, so an explicit unified value wins over a converted one.
    for (k, v) in &res.unified {
        check_unified_key(k)?;
        if !files::exists(&h.dir, k) {
            let ctrl = k.split('.').next().unwrap_or(k);
            bail!("linux.resources.unified: {k}: no such file (is the {ctrl} controller available and enabled?)");
        }
        files::write(&h.dir, k, v).ctx(|| format!("linux.resources.unified.{k}"))?;
    }
    Ok(())
}

fn memory(l: &Leaf, m: &Memory) -> Result<()> {
    let max = mem_value(m.limit, "limit")?;
    let swap = swap_max(m.limit, m.swap)?;
    // swap.max is independent of memory.max on v2, so order is free; it is
    // absent without swap accounting, where only "max" is harmless.
    if let Some(s) = &swap {
        if files::exists(&l.h.dir, "memory.swap.max") {
            l.write("memory", "memory.swap.max", s)?;
        } else if s != "max" {
            bail!("linux.resources.memory.swap: swap accounting is not enabled on this host");
        }
    }
    if let Some(v) = max {
        l.write("memory", "memory.max", &v)?;
    }
    if let Some(v) = mem_value(m.reservation, "reservation")? {
        l.write("memory", "memory.low", &v)?;
    }
    // swappiness, kernel, kernelTCP and disableOOMKiller have no v2 file;
    // runc ignores them there too.
    Ok(())
}

fn cpu(l: &Leaf, c: &Cpu) -> Result<()> {
    if c.realtime_runtime.unwrap_or(0) != 0 || c.realtime_period.unwrap_or(0) != 0 {
        bail!("linux.resources.cpu.realtime*: not supported on cgroup v2");
    }
    let w = shares_to_weight(c.shares.unwrap_or(0));
    if w != 0 {
        l.write("cpu", "cpu.weight", &w.to_string())?;
    }
    if let Some(s) = cpu_max(c.quota, c.period) {
        l.write("cpu", "cpu.max", &s)?;
    }
    if let Some(b) = c.burst {
        l.write("cpu", "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle {
        l.write("cpu", "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

fn io(l: &Leaf, b: &BlockIo) -> Result<()> {
    // With BFQ the weight file keeps v1's range; io.weight is 1..=10000.
    let bfq = files::exists(&l.h.dir, "io.bfq.weight");
    if let Some(w) = b.weight.filter(|w| *w != 0) {
        if bfq {
            l.write("io", "io.bfq.weight", &w.to_string())?;
        } else {
            l.write(
                "io",
                "io.weight",
                &format!("default {}", weight_v1_to_v2(w)),
            )?;
        }
    }
    for wd in &b.weight_device {
        if let Some(w) = wd.weight.filter(|w| *w != 0) {
            if bfq {
                l.write(
                    "io",
                    "io.bfq.weight",
                    &format!("{}:{} {w}", wd.major, wd.minor),
                )?;
            } else {
                l.write(
                    "io",
                    "io.weight",
                    &format!("{}:{} {}", wd.major, wd.minor, weight_v1_to_v2(w)),
                )?;
            }
        }
    }
    for line in io_max_lines(b) {
        l.write("io", "io.max", &line)?;
    }
    Ok(())
}

/// Freeze and wait for cgroup.events to report it done.
pub fn freeze(dir: &str) -> Result<()> {
    files::write(dir, "cgroup.freeze", "1").ctx(|| "pause")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut delay = Duration::from_micros(500);
    loop {
        let ev = files::read(dir, "cgroup.events").ctx(|| "pause")?;
        if ev.lines().any(|l| l.trim() == "frozen 1") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = files::write(dir, "cgroup.freeze", "0");
            return Err(Error::msg(format!("pause: {dir} did not freeze in 5 s")));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}

pub fn thaw(dir: &str) -> Result<()> {
    files::write(dir, "cgroup.freeze", "0").ctx(|| "resume")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(weight_v1_to_v2(0), 0);
        assert_eq!(weight_v1_to_v2(10), 1);
        assert_eq!(weight_v1_to_v2(500), 4950);
        assert_eq!(weight_v1_to_v2(1000), 10_000);
    }

    #[test]
    fn cpu_max_lines() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(cpu_max(Some(50_000), None).as_deref(), Some("50000"));
        assert_eq!(
            cpu_max(Some(50_000), Some(100_000)).as_deref(),
            Some("50000 100000")
        );
        assert_eq!(
            cpu_max(Some(-1), Some(20_000)).as_deref(),
            Some("max 20000")
        );
        assert_eq!(cpu_max(Some(-1), None).as_deref(), Some("max"));
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(
            swap_max(Some(100), Some(300)).unwrap().as_deref(),
            Some("200")
        );
        assert_eq!(
            swap_max(Some(100), Some(100)).unwrap().as_deref(),
            Some("0")
        );
        assert_eq!(swap_max(Some(-1), None).unwrap().as_deref(), Some("max"));
        assert_eq!(
            swap_max(Some(100), Some(-1)).unwrap().as_deref(),
            Some("max")
        );
        assert_eq!(swap_max(Some(100), None).unwrap(), None);
        assert!(swap_max(None, Some(100)).is_err());
        assert!(swap_max(Some(200), Some(100)).is_err());
    }

    #[test]
    fn io_max() {
        let t = |major, minor, rate| ThrottleDevice { major, minor, rate };
        let b = BlockIo {
            throttle_read_bps_device: vec![t(8, 0, 1000)],
            throttle_write_iops_device: vec![t(8, 0, 0), t(8, 16, 5)],
            ..Default::default()
        };
        assert_eq!(
            io_max_lines(&b),
            vec!["8:0 rbps=1000 wiops=max", "8:16 wiops=5"]
        );
    }

    #[test]
    fn unified_keys() {
        assert!(check_unified_key("memory.high").is_ok());
        assert!(check_unified_key("../x").is_err());
        assert!(check_unified_key("..").is_err());
        assert!(check_unified_key("").is_err());
    }

    #[test]
    fn mem_values() {
        assert_eq!(
            mem_value(Some(-1), "limit").unwrap().as_deref(),
            Some("max")
        );
        assert_eq!(mem_value(Some(0), "limit").unwrap(), None);
        assert!(mem_value(Some(-7), "limit").is_err());
    }
}
