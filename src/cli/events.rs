use super::args::{self, flag, val, Flag};
use super::Global;
use crate::container::state::Status;
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::io::Write;

const FLAGS: &[Flag] = &[
    flag("stats", None, "print the stats once and exit"),
    val(
        "interval",
        None,
        "DURATION",
        "time between stats (default 5s)",
    ),
];

fn json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::msg(format!("encode: {e}")))
}

/// One event line. Written by hand: serde_json's maps sort their keys,
/// and readers of runc's output expect its order (type, id, data).
fn emit(kind: &str, id: &str, data: Option<serde_json::Value>) -> Result<()> {
    let mut s = format!("{{\"type\":{},\"id\":{}", json(kind)?, json(id)?);
    if let Some(d) = data {
        s.push_str(",\"data\":");
        s.push_str(&json(&d)?);
    }
    s.push('}');
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}")
        .map_err(|e| Error::errno("write stdout", e.raw_os_error().unwrap_or(libc::EIO)))?;
    let _ = out.flush();
    Ok(())
}

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if super::help_requested(
        &a,
        "usage: runway events [flags] <id>\n\nPrint resource stats and OOM events as JSON lines.\n",
    ) {
        return Ok(0);
    }
    let id = super::one_id(&a, "events")?;
    let interval = super::duration::parse(a.get("interval").unwrap_or("5s"))?;
    if interval.is_zero() {
        crate::bail!("events: --interval must be positive");
    }
    let (dir, st, lock) = crate::container::open(&g.root, &id)?;
    drop(lock);
    if a.is_set("stats") {
        emit("stats", &id, Some(st.cgroup.stats()?))?;
        return Ok(0);
    }
    // OOM counters are polled often (an OOM kill of the init ends the
    // container at once); stats go out every `interval`.
    let tick = interval.min(std::time::Duration::from_millis(100));
    let mut ooms = st.cgroup.oom_kills();
    let mut next_stats = std::time::Instant::now();
    loop {
        let stopped = st.status(&dir) == Status::Stopped;
        let now = st.cgroup.oom_kills();
        if now > ooms {
            emit("oom", &id, None)?;
            ooms = now;
        }
        if stopped {
            return Ok(0);
        }
        if std::time::Instant::now() >= next_stats {
            match st.cgroup.stats() {
                Ok(s) => emit("stats", &id, Some(s))?,
                Err(e) => crate::log::warn(&format!("events: {e}")),
            }
            next_stats += interval;
        }
        std::thread::sleep(tick);
    }
}
