//! Reading and writing cgroup control files, with errors that name the file.

use crate::error::{Context, Error, Result};
use crate::linux::file;
use std::path::Path;

/// Write `value` to `dir/name` in one write(2), as the kernel parses each
/// write on its own.
pub fn write(dir: &str, name: &str, value: &str) -> Result<()> {
    let p = format!("{dir}/{name}");
    file::write(&p, value.as_bytes()).ctx(|| format!("write {value:?} to {p}"))
}

/// Several values to one control file: one open, then one write(2) per
/// value (devices.allow takes one rule per write).
pub fn write_each<S: AsRef<str>>(dir: &str, name: &str, values: &[S]) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    let p = format!("{dir}/{name}");
    let fd = file::open_write_at(rustix::fs::CWD, &p).ctx(|| format!("open {p}"))?;
    for v in values {
        let v = v.as_ref();
        file::write_once(&fd, v.as_bytes()).ctx(|| format!("write {v:?} to {p}"))?;
    }
    Ok(())
}

pub fn read(dir: &str, name: &str) -> Result<String> {
    let p = format!("{dir}/{name}");
    file::read(&p).ctx(|| format!("read {p}"))
}

pub fn read_trim(dir: &str, name: &str) -> Result<String> {
    Ok(read(dir, name)?.trim().to_string())
}

pub fn exists(dir: &str, name: &str) -> bool {
    Path::new(&format!("{dir}/{name}")).exists()
}

/// A counter file; "max" reads as u64::MAX, as runc reports unlimited.
pub fn read_u64(dir: &str, name: &str) -> Result<u64> {
    let s = read_trim(dir, name)?;
    parse_u64(&s).ok_or_else(|| Error::msg(format!("parse {dir}/{name}: {s:?}")))
}

pub fn parse_u64(s: &str) -> Option<u64> {
    if s == "max" {
        return Some(u64::MAX);
    }
    // v1 reports "unlimited" as a huge negative-looking value on some kernels.
    s.parse::<u64>()
        .ok()
        .or_else(|| s.parse::<i64>().ok().map(|v| v.max(0) as u64))
}

/// "key value" lines (memory.stat, cpu.stat, ...) as pairs.
pub fn flat_keyed(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = parse_u64(it.next()?)?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Pids listed in a cgroup.procs file.
pub fn parse_pids(text: &str) -> Vec<i32> {
    text.split_whitespace()
        .filter_map(|s| s.parse::<i32>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_helpers() {
        assert_eq!(parse_u64("max"), Some(u64::MAX));
        assert_eq!(parse_u64("12"), Some(12));
        assert_eq!(parse_u64("-1"), Some(0));
        assert_eq!(parse_u64("x"), None);
        assert_eq!(
            flat_keyed("a 1\nb max\nbad\n"),
            vec![("a".to_string(), 1), ("b".to_string(), u64::MAX)]
        );
        assert_eq!(parse_pids("1\n22\n\n"), vec![1, 22]);
    }
}
