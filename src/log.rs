//! Diagnostics: one line per message on stderr (errors, warnings) and, with
//! `--log`, in the log file as text or as JSON lines engines parse
//! (`{"level":"error","msg":"...","time":"..."}`; containerd and podman read
//! the last error from there).

use std::io::Write;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug)]
struct Config {
    file: Option<std::fs::File>,
    format: Format,
    debug: bool,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// Set once from the global flags. A log file that cannot be opened is
/// reported and otherwise ignored, as the message itself still reaches stderr.
pub fn init(path: Option<&str>, format: Format, debug: bool) -> Result<(), crate::error::Error> {
    let file = match path {
        Some(p) if !p.is_empty() => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| {
                    crate::error::Error::errno(
                        format!("open log file {p}"),
                        e.raw_os_error().unwrap_or(libc::EIO),
                    )
                })?,
        ),
        _ => None,
    };
    let _ = CONFIG.set(Config {
        file,
        format,
        debug,
    });
    Ok(())
}

pub fn debug_enabled() -> bool {
    CONFIG.get().is_some_and(|c| c.debug)
}

fn json_escape(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn write(level: &str, msg: &str) {
    let Some(cfg) = CONFIG.get() else { return };
    let Some(mut f) = cfg.file.as_ref() else {
        return;
    };
    let time = crate::timefmt::rfc3339(crate::timefmt::now().0);
    let line = match cfg.format {
        Format::Json => format!(
            "{{\"level\":\"{level}\",\"msg\":{},\"time\":\"{time}\"}}\n",
            json_escape(msg)
        ),
        Format::Text => format!("time=\"{time}\" level={level} msg={}\n", json_escape(msg)),
    };
    // One write(2) per line so concurrent writers don't interleave.
    let _ = f.write_all(line.as_bytes());
}

/// One line, printable: control characters from user input (NUL, newline,
/// escapes) are shown escaped.
fn printable(msg: &str) -> std::borrow::Cow<'_, str> {
    if !msg.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(msg);
    }
    let mut s = String::with_capacity(msg.len() + 8);
    for c in msg.chars() {
        if c.is_control() {
            s.extend(c.escape_default());
        } else {
            s.push(c);
        }
    }
    std::borrow::Cow::Owned(s)
}

pub fn error(msg: &str) {
    let msg = printable(msg);
    write("error", &msg);
    let _ = writeln!(std::io::stderr(), "runway: {msg}");
}

pub fn warn(msg: &str) {
    let msg = &*printable(msg);
    write("warning", msg);
    let _ = writeln!(std::io::stderr(), "runway: warning: {msg}");
}

pub fn debug(msg: &str) {
    if !debug_enabled() {
        return;
    }
    write("debug", msg);
    if CONFIG.get().is_some_and(|c| c.file.is_none()) {
        let _ = writeln!(std::io::stderr(), "runway: debug: {msg}");
    }
}

/// Flags an engine may set for us to log to; a no-op when not set.
pub fn has_file() -> bool {
    CONFIG.get().is_some_and(|c| c.file.is_some())
}
