use super::args::{self, val, Flag};
use super::Global;
use crate::bail;
use crate::error::{Context, Error, Result};
use crate::spec::Resources;
use std::ffi::OsString;

const FLAGS: &[Flag] = &[
    val(
        "resources",
        Some('r'),
        "FILE",
        "JSON resources to apply (- for stdin); other flags then ignored",
    ),
    val("memory", None, "BYTES", "memory limit"),
    val(
        "memory-swap",
        None,
        "BYTES",
        "memory plus swap limit (-1: unlimited swap)",
    ),
    val("memory-reservation", None, "BYTES", "memory soft limit"),
    val(
        "kernel-memory",
        None,
        "BYTES",
        "kernel memory limit (cgroup v1 only; ignored)",
    ),
    val(
        "kernel-memory-tcp",
        None,
        "BYTES",
        "kernel TCP buffer limit (cgroup v1 only; ignored)",
    ),
    val(
        "cpu-period",
        None,
        "USECS",
        "CFS period for --cpu-quota (0: system default)",
    ),
    val("cpu-quota", None, "USECS", "CPU time allowed per period"),
    val(
        "cpu-share",
        None,
        "N",
        "CPU weight relative to other containers",
    ),
    val("cpu-rt-period", None, "USECS", "realtime scheduling period"),
    val(
        "cpu-rt-runtime",
        None,
        "USECS",
        "realtime CPU time per period",
    ),
    val("cpuset-cpus", None, "LIST", "CPUs to run on (e.g. 0-2,4)"),
    val("cpuset-mems", None, "LIST", "memory nodes to use"),
    val("pids-limit", None, "N", "maximum number of processes"),
    val("blkio-weight", None, "N", "block IO weight, 10 to 1000"),
    val(
        "l3-cache-schema",
        None,
        "SCHEMA",
        "Intel RDT L3 cache schema",
    ),
    val(
        "mem-bw-schema",
        None,
        "SCHEMA",
        "Intel RDT memory bandwidth schema",
    ),
];

/// Sizes as runc takes them: bytes, or with k/m/g (binary) suffixes; -1
/// means unlimited.
pub fn parse_size(s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n = crate::num::parse_decimal(num.trim())
        .ok_or_else(|| Error::msg(format!("invalid size {s:?}")))?;
    if !(0.0..=9.0e18).contains(&n) {
        bail!("invalid size {s:?}");
    }
    Ok((n * mult as f64) as i64)
}

fn num<T: std::str::FromStr>(a: &args::Args, k: &str) -> Result<Option<T>> {
    a.get_num::<T>(k)
}

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if super::help_requested(
        &a,
        "usage: runway update [flags] <id>\n\nChange the resource limits of a container.\n",
    ) {
        return Ok(0);
    }
    let id = super::one_id(&a, "update")?;
    let mut res: Resources = match a.get("resources") {
        Some(f) => {
            let bytes = if f == "-" {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
                    .ctx(|| "read resources from stdin")?;
                v
            } else {
                std::fs::read(f).ctx(|| format!("read {f}"))?
            };
            serde_json::from_slice(&bytes)
                .map_err(|e| Error::msg(format!("resources: invalid JSON: {e}")))?
        }
        None => Resources::default(),
    };
    let size = |k: &str| -> Result<Option<i64>> { a.get(k).map(parse_size).transpose() };
    if let Some(v) = size("memory")? {
        res.memory.get_or_insert_with(Default::default).limit = Some(v);
    }
    if let Some(v) = size("memory-swap")? {
        res.memory.get_or_insert_with(Default::default).swap = Some(v);
    }
    if let Some(v) = size("memory-reservation")? {
        res.memory.get_or_insert_with(Default::default).reservation = Some(v);
    }
    if let Some(v) = num::<u64>(&a, "cpu-period")? {
        res.cpu.get_or_insert_with(Default::default).period = Some(v);
    }
    if let Some(v) = num::<i64>(&a, "cpu-quota")? {
        res.cpu.get_or_insert_with(Default::default).quota = Some(v);
    }
    if let Some(v) = num::<u64>(&a, "cpu-share")? {
        res.cpu.get_or_insert_with(Default::default).shares = Some(v);
    }
    if let Some(v) = num::<u64>(&a, "cpu-rt-period")? {
        res.cpu.get_or_insert_with(Default::default).realtime_period = Some(v);
    }
    if let Some(v) = num::<i64>(&a, "cpu-rt-runtime")? {
        res.cpu
            .get_or_insert_with(Default::default)
            .realtime_runtime = Some(v);
    }
    if let Some(v) = a.get("cpuset-cpus") {
        res.cpu.get_or_insert_with(Default::default).cpus = Some(v.to_string());
    }
    if let Some(v) = a.get("cpuset-mems") {
        res.cpu.get_or_insert_with(Default::default).mems = Some(v.to_string());
    }
    if let Some(v) = num::<i64>(&a, "pids-limit")? {
        res.pids = Some(crate::spec::Pids { limit: v });
    }
    if let Some(v) = num::<u16>(&a, "blkio-weight")? {
        res.block_io.get_or_insert_with(Default::default).weight = Some(v);
    }
    let (dir, st, _lock) = crate::container::open(&g.root, &id)?;
    if st.status(&dir) == crate::container::state::Status::Stopped {
        bail!("container {id} is not running");
    }
    st.cgroup.update(&res)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("-1").unwrap(), -1);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-5").is_err());
    }
}
