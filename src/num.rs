//! Decimal numbers as flags take them ("1.5"), without core's float parser:
//! its tables and code are 12 KB of the static binary.

/// `DIGITS[.DIGITS]` (either side may be empty, not both) as an f64; None
/// for anything else (signs, exponents, "inf"). Exact for what sizes and
/// CPU counts are written with; otherwise within a rounding of the value.
pub fn parse_decimal(s: &str) -> Option<f64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut v = 0f64;
    for b in int.bytes() {
        v = v * 10.0 + f64::from(b - b'0');
    }
    let mut scale = 1f64;
    for b in frac.bytes() {
        scale /= 10.0;
        v += f64::from(b - b'0') * scale;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::parse_decimal;

    #[test]
    fn decimals() {
        for (s, v) in [
            ("0", 0.0),
            ("12", 12.0),
            ("1.5", 1.5),
            ("2.", 2.0),
            (".25", 0.25),
        ] {
            assert_eq!(parse_decimal(s), Some(v), "{s}");
        }
        assert!((parse_decimal("0.1").unwrap() - 0.1).abs() < 1e-15);
        for bad in [
            "", ".", "-1", "+1", "1e3", "inf", "NaN", "1.2.3", " 1", "0x10",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
    }
}
