//! RFC 3339 timestamps without a date crate: state.json's "created" (Go's
//! RFC3339Nano, trailing zeros trimmed) and log lines (RFC3339), and the
//! parser for the times images, container logs and `--since` carry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn parts(secs: i64) -> (i64, u32, u32, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3600, (rem % 3600) / 60, rem % 60)
}

pub fn now() -> (i64, u32) {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(_) => (0, 0),
    }
}

/// "2006-01-02T15:04:05Z"
pub fn rfc3339(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// "2006-01-02T15:04:05.999999999Z" with trailing zeros trimmed, like Go.
pub fn rfc3339_nano(secs: i64, nanos: u32) -> String {
    let (y, mo, d, h, mi, s) = parts(secs);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// RFC 3339 and its shorter forms docker's `--since` takes:
/// `2006-01-02`, `2006-01-02T15:04`, `2006-01-02T15:04:05[.frac]`, each
/// with an optional `Z` or `±hh:mm`. No zone means UTC (docker uses the
/// client's local zone; runway has no zone database). Returns Unix
/// seconds and nanoseconds.
pub fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let mut i = 0;
    let num = |i: &mut usize, n: usize| -> Option<i64> {
        let digits = b.get(*i..*i + n)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *i += n;
        Some(digits.iter().fold(0i64, |a, &d| a * 10 + (d - b'0') as i64))
    };
    let lit = |i: &mut usize, c: &[u8]| -> bool {
        match b.get(*i) {
            Some(x) if c.contains(x) => {
                *i += 1;
                true
            }
            _ => false,
        }
    };
    let y = num(&mut i, 4)?;
    if !lit(&mut i, b"-") {
        return None;
    }
    let mo = num(&mut i, 2)? as u32;
    if !lit(&mut i, b"-") {
        return None;
    }
    let d = num(&mut i, 2)? as u32;
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    let (mut h, mut mi, mut sec, mut nanos) = (0i64, 0i64, 0i64, 0u32);
    let mut offset = 0i64;
    if i < b.len() {
        if !lit(&mut i, b"Tt ") {
            return None;
        }
        h = num(&mut i, 2)?;
        if !lit(&mut i, b":") {
            return None;
        }
        mi = num(&mut i, 2)?;
        if lit(&mut i, b":") {
            sec = num(&mut i, 2)?;
            if lit(&mut i, b".,") {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    if i - start < 9 {
                        nanos = nanos * 10 + (b[i] - b'0') as u32;
                    }
                    i += 1;
                }
                let n = i - start;
                if n == 0 {
                    return None;
                }
                for _ in n..9 {
                    nanos *= 10;
                }
            }
        }
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        if lit(&mut i, b"Zz") {
        } else if i < b.len() {
            let sign = match b[i] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            i += 1;
            let oh = num(&mut i, 2)?;
            lit(&mut i, b":");
            let om = num(&mut i, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            offset = sign * (oh * 3600 + om * 60);
        }
        if i != b.len() {
            return None;
        }
    }
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset, nanos))
}

/// Go's time.ParseDuration syntax (`events --interval`, `logs --since 10m`): numbers (with an
/// optional fraction) each followed by a unit: ns, us (µs), ms, s, m, h.
pub fn parse_duration(s: &str) -> Option<Duration> {
    const UNITS: [(&str, u128); 8] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let (unit, after) = UNITS
            .iter()
            .filter(|(u, _)| after.starts_with(u))
            .max_by_key(|(u, _)| u.len())
            .map(|&(u, m)| (m, &after[u.len()..]))?;
        let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let mut part = int.checked_mul(unit)?;
        let mut scale = unit;
        for d in frac.bytes().take(18) {
            scale /= 10;
            part = part.checked_add((d - b'0') as u128 * scale)?;
        }
        total = total.checked_add(part)?;
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_700_000_000, 120_000_000),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(rfc3339_nano(1_700_000_000, 0), "2023-11-14T22:13:20Z");
    }
}
