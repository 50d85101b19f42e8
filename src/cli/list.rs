use super::args::{self, flag, val, Flag};
use super::Global;
use crate::bail;
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::io::Write;

pub const FLAGS: &[Flag] = &[val("format", Some('f')), flag("quiet", Some('q'))];

/// Go's text/tabwriter as runc configures it (minwidth 12, padding 3):
/// every column but the last is padded to max(12, widest + 3).
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                let w = (widths[i] + 3).max(12);
                out.extend(std::iter::repeat_n(' ', w - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if super::help_requested(&a, "usage: runway list [--format table|json] [--quiet]\n") {
        return Ok(0);
    }
    if let Some(extra) = a.positionals.first() {
        bail!("list takes no arguments, got {extra:?}");
    }
    let items = crate::container::list(&g.root)?;
    let mut out = std::io::stdout().lock();
    if a.is_set("quiet") {
        for (st, _, _) in &items {
            let _ = writeln!(out, "{}", st.id);
        }
        return Ok(0);
    }
    match a.get("format").unwrap_or("table") {
        "table" => {
            let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec()];
            for (st, status, owner) in &items {
                let pid = if *status == crate::container::state::Status::Stopped {
                    0
                } else {
                    st.pid
                };
                rows.push(vec![
                    st.id.clone(),
                    pid.to_string(),
                    status.as_str().to_string(),
                    st.bundle.clone(),
                    st.created.clone(),
                    owner.clone(),
                ]);
            }
            let _ = out.write_all(table(&rows).as_bytes());
        }
        "json" => {
            if items.is_empty() {
                let _ = writeln!(out, "null");
                return Ok(0);
            }
            let v: Vec<_> = items
                .iter()
                .map(|(st, status, owner)| st.oci(*status, owner))
                .collect();
            let s =
                serde_json::to_string(&v).map_err(|e| Error::msg(format!("encode list: {e}")))?;
            let _ = writeln!(out, "{s}");
        }
        other => bail!("invalid format option {other:?}: table or json"),
    }
    Ok(0)
}
