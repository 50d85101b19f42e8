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

/// Go's %.3g for 0 <= v < 1000.
fn fmt_g3(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = v.abs().log10().floor() as i32;
    let decimals = (2 - digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    // Rounding up may reach 1000: Go prints "1e+03".
    if s.trim_end_matches('0').trim_end_matches('.') == "1000" {
        return "1e+03".into();
    }
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}
