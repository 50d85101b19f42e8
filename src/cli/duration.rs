//! Go's time.ParseDuration, as `events --interval` takes it: "5s",
//! "100ms", "1m30s", "1.5h", "300us".

use crate::bail;
use crate::error::Result;
use std::time::Duration;

pub fn parse(s: &str) -> Result<Duration> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        bail!("invalid duration {s:?}");
    }
    let s_in = s;
    let mut s = s.strip_prefix('+').unwrap_or(s);
    let mut total: f64 = 0.0;
    if s.is_empty() {
        bail!("invalid duration {s_in:?}");
    }
    while !s.is_empty() {
        let num_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let num = &s[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            bail!("invalid duration {s_in:?}");
        }
        let v: f64 = match num.parse() {
            Ok(v) => v,
            Err(_) => bail!("invalid duration {s_in:?}"),
        };
        s = &s[num_end..];
        let unit_end = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let mult = match &s[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => bail!("missing unit in duration {s_in:?}"),
            u => bail!("unknown unit {u:?} in duration {s_in:?}"),
        };
        s = &s[unit_end..];
        total += v * mult;
    }
    if !total.is_finite() || total > 9.2e9 {
        bail!("invalid duration {s_in:?}");
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        for bad in [
            "",
            "5",
            "-1s",
            "s",
            "1x",
            "1..2s",
            ".s",
            "99999999999h",
            "+",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
