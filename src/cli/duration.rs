//! Go's time.ParseDuration, as `events --interval` takes it: "5s",
//! "100ms", "1m30s", "1.5h", "300us".

use crate::bail;
use crate::error::Result;
use std::time::Duration;

pub fn parse(s: &str) -> Result<Duration> {
    // Go takes a leading '+'; runway's own parser (shared with `logs
    // --since`) does not, and a negative interval makes no sense here.
    let body = s.strip_prefix('+').unwrap_or(s);
    match crate::timefmt::parse_duration(body) {
        // Go's limit: an int64 of nanoseconds.
        Some(d) if d.as_secs() <= 9_223_372_036 => Ok(d),
        Some(_) => bail!("invalid duration {s:?}"),
        None if body.ends_with(|c: char| c.is_ascii_digit()) && body != "0" => {
            bail!("missing unit in duration {s:?}")
        }
        None => bail!("invalid duration {s:?}"),
    }
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
