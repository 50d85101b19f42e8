//! Images: references, the OCI/Docker image types, the content-addressed
//! store under the data root, layer unpacking, and the registry client.
//! Built only with the `full` feature: the runtime alone needs none of it.

pub mod decompress;
pub mod digest;
pub mod import;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod store;
pub mod types;
pub mod unpack;

/// docker's units.HumanSizeWithPrecision(size, 3): decimal units, three
/// significant digits, Go's %g ("4.26MB", "12.3kB", "512B").
pub fn human_size(size: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = size as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", fmt_g3(v), UNITS[i])
}

/// Go's %.3g for 0 <= v < 1000 (what human_size makes), rounded as Go
/// and Rust's formatter round: the exact binary value, ties to even. By
/// hand on the bits: core's float formatting is 10 KB of the binary.
fn fmt_g3(v: f64) -> String {
    if v < 1.0 {
        return "0".into();
    }
    let decimals: u32 = if v < 10.0 {
        2
    } else if v < 100.0 {
        1
    } else {
        0
    };
    // v = mant * 2^-shift exactly; v < 1000 keeps shift in 43..=52.
    let bits = v.to_bits();
    let shift = 1075 - ((bits >> 52) & 0x7ff) as u32;
    let mant = (bits & ((1 << 52) - 1)) | (1 << 52);
    let x = mant * 10u64.pow(decimals);
    let (mut q, r, half) = (x >> shift, x & ((1 << shift) - 1), 1u64 << (shift - 1));
    if r > half || r == half && q % 2 == 1 {
        q += 1;
    }
    let scale = 10u64.pow(decimals);
    let (int, frac) = (q / scale, q % scale);
    // Rounding up may reach 1000: Go prints "1e+03".
    if int == 1000 {
        return "1e+03".into();
    }
    if frac == 0 {
        return int.to_string();
    }
    let f = format!("{frac:0w$}", w = decimals as usize);
    format!("{int}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What fmt_g3 replaced: core's formatter, then Go's trimming.
    fn reference(v: f64) -> String {
        if v == 0.0 {
            return "0".into();
        }
        let decimals = (2 - v.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        // (The old code missed "1000" itself, from 999.5 <= v < 1000.)
        if s == "1000" || s.starts_with("1000.") {
            return "1e+03".into();
        }
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }

    #[test]
    fn g3_matches_the_float_formatter() {
        let mut sizes: Vec<u64> = (0..200_000).collect();
        sizes.extend((0..200_000u64).map(|i| i * 7919 + 1_000_000));
        sizes.extend([
            1125,
            1135,
            2_500_000,
            999_500,
            999_499,
            999_999_999,
            u64::MAX,
        ]);
        let mut x = 1u64;
        for _ in 0..100_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            sizes.push(x >> (x % 60));
        }
        for s in sizes {
            let mut v = s as f64;
            while v >= 1000.0 {
                v /= 1000.0;
            }
            assert_eq!(fmt_g3(v), reference(v), "size {s}");
        }
        assert_eq!(human_size(1125), "1.12kB");
        assert_eq!(human_size(999_999), "1e+03kB");
    }
}
