use super::args::{self, flag, val, Flag};
use super::Global;
use crate::bail;
use crate::container::list::{self as listing, Listed};
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::io::Write;

pub const FLAGS: &[Flag] = &[
    val(
        "format",
        Some('f'),
        "FORMAT",
        "table or json (default table)",
    ),
    flag("quiet", Some('q'), "print container ids only"),
];

const HEADER: [&str; 6] = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];

/// Go's text/tabwriter as runc configures it (minwidth 12, padding 3):
/// every column but the last is padded to max(12, widest + 3).
pub fn table(rows: &[Vec<String>]) -> String {
    String::from_utf8(tabwrite(rows)).unwrap_or_default()
}

/// `table` over borrowed cells, into one buffer: no String per cell, and
/// the whole table goes out in one write.
fn tabwrite<R: AsRef<[S]>, S: AsRef<str>>(rows: &[R]) -> Vec<u8> {
    let width = |s: &str| s.chars().count();
    let cols = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    let mut bytes = 0;
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r.as_ref()) {
            *w = (*w).max(width(c.as_ref()));
            bytes += c.as_ref().len();
        }
    }
    let pad: Vec<usize> = widths.iter().map(|w| (w + 3).max(12)).collect();
    let mut out = Vec::with_capacity(bytes + rows.len() * (pad.iter().sum::<usize>() + 1));
    for r in rows {
        let r = r.as_ref();
        for (i, (c, p)) in r.iter().zip(&pad).enumerate() {
            let c = c.as_ref();
            out.extend_from_slice(c.as_bytes());
            if i + 1 < r.len() {
                out.resize(out.len() + p - width(c), b' ');
            }
        }
        out.push(b'\n');
    }
    out
}

/// The `list` table: runc's columns; a stopped container's pid is 0.
fn list_table(items: &[Listed]) -> Vec<u8> {
    // Every pid in one String, sliced per row, instead of one String each.
    let mut pids = String::with_capacity(items.len() * 8);
    let mut ends = Vec::with_capacity(items.len());
    for e in items {
        use std::fmt::Write as _;
        let _ = write!(pids, "{}", e.pid);
        ends.push(pids.len());
    }
    let mut rows = Vec::with_capacity(items.len() + 1);
    rows.push(HEADER);
    let mut start = 0;
    for (e, &end) in items.iter().zip(&ends) {
        let pid = pids.get(start..end).unwrap_or("0");
        start = end;
        rows.push([
            &e.id,
            pid,
            e.status.as_str(),
            &e.bundle,
            &e.created,
            &e.owner,
        ]);
    }
    tabwrite(&rows)
}

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if super::help_requested(
        &a,
        "usage: runway list [flags]\n\nList the containers under --root.\n",
    ) {
        return Ok(0);
    }
    if let Some(extra) = a.positionals.first() {
        bail!("list takes no arguments, got {extra:?}");
    }
    let format = a.get("format").unwrap_or("table");
    if !a.is_set("quiet") && format != "table" && format != "json" {
        bail!("invalid format option {format:?}: table or json");
    }
    let items = listing::list(&g.root)?;
    let out = if a.is_set("quiet") {
        let mut out = Vec::new();
        for e in &items {
            out.extend_from_slice(e.id.as_bytes());
            out.push(b'\n');
        }
        out
    } else if format == "table" {
        list_table(&items)
    } else if items.is_empty() {
        b"null\n".to_vec()
    } else {
        let v: Vec<_> = items.iter().map(Listed::oci).collect();
        let mut s = serde_json::to_vec(&v).map_err(|e| Error::msg(format!("encode list: {e}")))?;
        s.push(b'\n');
        s
    };
    let _ = std::io::stdout().lock().write_all(&out);
    // The process ends here: freeing thousands of rows one by one would
    // only hand pages back to a kernel about to drop them all.
    std::mem::forget(items);
    std::mem::forget(out);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::state::Status;

    #[test]
    fn table_pads_like_tabwriter() {
        let e = Listed {
            id: "a-long-container-id".into(),
            pid: 42,
            status: Status::Running,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2024-01-01T00:00:00Z".into(),
            annotations: Default::default(),
            owner: "root".into(),
        };
        let t = String::from_utf8(list_table(&[e])).unwrap();
        assert_eq!(
            t,
            "ID                    PID         STATUS      BUNDLE      CREATED                OWNER\n\
             a-long-container-id   42          running     /b          2024-01-01T00:00:00Z   root\n"
        );
    }

    #[test]
    fn table_of_strings_matches() {
        let rows: Vec<Vec<String>> = vec![
            HEADER.iter().map(|c| c.to_string()).collect(),
            vec!["x".into(), "7".into()],
            vec!["é-long-cell-here".into(), "1".into(), "running".into()],
        ];
        assert_eq!(
            table(&rows),
            "ID                 PID         STATUS      BUNDLE      CREATED     OWNER\n\
             x                  7\n\
             é-long-cell-here   1           running\n"
        );
    }
}
