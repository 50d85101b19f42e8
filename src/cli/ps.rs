use super::args::{self, val, Flag};
use super::Global;
use crate::bail;
use crate::error::{Context, Error, Result};
use std::ffi::OsString;
use std::io::Write;

const FLAGS: &[Flag] = &[val(
    "format",
    Some('f'),
    "FORMAT",
    "table or json (default table)",
)];

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, Some(1))?;
    if super::help_requested(
        &a,
        "usage: runway ps [flags] <id> [ps options]\n\nList the container's processes (with ps options: through ps).\n",
    ) {
        return Ok(0);
    }
    let Some(id) = a.positionals.first() else {
        bail!("ps: container id is required");
    };
    let (_dir, st, _lock) = crate::container::open(&g.root, id)?;
    let pids = st.cgroup.pids()?;
    let mut out = std::io::stdout().lock();
    match a.get("format").unwrap_or("table") {
        "json" => {
            let s = serde_json::to_string(&pids).map_err(|e| Error::msg(format!("encode: {e}")))?;
            let _ = writeln!(out, "{s}");
        }
        "table" => {
            // Like runc: the host's ps, filtered to the container's pids.
            let ps_args: Vec<String> = if a.rest.is_empty() {
                vec!["-ef".into()]
            } else {
                a.rest.clone()
            };
            let o = std::process::Command::new("ps")
                .args(&ps_args)
                .output()
                .ctx(|| "run ps")?;
            if !o.status.success() {
                bail!(
                    "ps {}: {}",
                    ps_args.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&o.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
                bail!("ps output has no PID column");
            };
            let _ = writeln!(out, "{header}");
            for l in lines {
                let pid = l
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    let _ = writeln!(out, "{l}");
                }
            }
        }
        f => bail!("invalid format {f:?}: table or json"),
    }
    Ok(0)
}
