use super::args::{self, flag, val, Flag};
use super::Global;
use crate::bail;
use crate::container::state::{self, Listed};
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::io::Write;

pub const FLAGS: &[Flag] = &[val("format", Some('f')), flag("quiet", Some('q'))];

const HEADER: [&str; 6] = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];

/// Go's text/tabwriter as runc configures it (minwidth 12, padding 3):
/// every column but the last is padded to max(12, widest + 3). Built in
/// one buffer so the whole table is one write.
pub fn table(items: &[Listed]) -> Vec<u8> {
    let mut pid = [0u8; 11];
    let cells = |e: &Listed, pid: &mut [u8; 11]| -> [usize; 5] {
        [
            width(&e.id),
            decimal(e.pid, pid).len(),
            e.status.as_str().len(),
            width(&e.bundle),
            width(&e.created),
        ]
    };
    let mut widths = [2, 3, 6, 6, 7];
    let mut total = 0;
    for e in items {
        for (w, c) in widths.iter_mut().zip(cells(e, &mut pid)) {
            *w = (*w).max(c);
        }
        total += e.id.len() + e.bundle.len() + e.created.len() + e.owner.len();
    }
    let pad = widths.map(|w| (w + 3).max(12));
    let mut out = Vec::with_capacity(total + (items.len() + 1) * (pad.iter().sum::<usize>() + 6));
    let mut row = |cs: [&[u8]; 6], ws: [usize; 5]| {
        for ((c, w), p) in cs.iter().zip(ws).zip(pad) {
            out.extend_from_slice(c);
            out.resize(out.len() + p - w, b' ');
        }
        out.extend_from_slice(cs[5]);
        out.push(b'\n');
    };
    row(HEADER.map(str::as_bytes), [2, 3, 6, 6, 7]);
    for e in items {
        let ws = cells(e, &mut pid);
        let mut buf = [0u8; 11];
        let p = decimal(e.pid, &mut buf);
        row(
            [
                e.id.as_bytes(),
                p,
                e.status.as_str().as_bytes(),
                e.bundle.as_bytes(),
                e.created.as_bytes(),
                e.owner.as_bytes(),
            ],
            ws,
        );
    }
    out
}

/// Display width as tabwriter counts it: in characters.
fn width(s: &str) -> usize {
    s.chars().count()
}

/// A pid in decimal without a heap String per row.
fn decimal(n: i32, buf: &mut [u8; 11]) -> &[u8] {
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if super::help_requested(&a, "usage: runway list [--format table|json] [--quiet]\n") {
        return Ok(0);
    }
    if let Some(extra) = a.positionals.first() {
        bail!("list takes no arguments, got {extra:?}");
    }
    let format = a.get("format").unwrap_or("table");
    if !a.is_set("quiet") && format != "table" && format != "json" {
        bail!("invalid format option {format:?}: table or json");
    }
    let items = state::list(&g.root)?;
    let out = if a.is_set("quiet") {
        let mut out = Vec::new();
        for e in &items {
            out.extend_from_slice(e.id.as_bytes());
            out.push(b'\n');
        }
        out
    } else if format == "table" {
        table(&items)
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
        let t = String::from_utf8(table(&[e])).unwrap();
        assert_eq!(
            t,
            "ID                    PID         STATUS      BUNDLE      CREATED                OWNER\n\
             a-long-container-id   42          running     /b          2024-01-01T00:00:00Z   root\n"
        );
    }
}
