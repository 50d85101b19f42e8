//! OCI lifecycle hooks: each runs with the container state JSON on stdin,
//! its own env, and an optional timeout after which it is killed.

use crate::bail;
use crate::error::{Context, Result};
use crate::spec::Hook;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// State as hooks receive it (runtime spec "state").
pub fn state_json(
    id: &str,
    status: &str,
    pid: i32,
    bundle: &str,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Vec<u8> {
    let v = serde_json::json!({
        "ociVersion": crate::spec::OCI_VERSION,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
        "annotations": annotations,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

pub fn run_all(kind: &str, hooks: &[Hook], state: &[u8]) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state).ctx(|| format!("{kind} hook #{i} ({})", h.path))?;
    }
    Ok(())
}

/// For poststart/poststop: failures are warnings, the rest still run.
pub fn run_all_warn(kind: &str, hooks: &[Hook], state: &[u8]) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state) {
            crate::log::warn(&format!("{kind} hook #{i} ({}): {e}", h.path));
        }
    }
}

fn run_one(h: &Hook, state: &[u8]) -> Result<()> {
    let mut cmd = Command::new(&h.path);
    if let Some((arg0, rest)) = h.args.split_first() {
        cmd.arg0(arg0);
        cmd.args(rest);
    }
    cmd.env_clear();
    for e in &h.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().ctx(|| "start")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that doesn't read its stdin is fine.
        let _ = stdin.write_all(state);
    }
    let deadline = h
        .timeout
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        if let Some(status) = child.try_wait().ctx(|| "wait")? {
            if status.success() {
                return Ok(());
            }
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            let err = err.trim();
            let how = match status.code() {
                Some(c) => format!("exit status {c}"),
                None => "killed by a signal".to_string(),
            };
            if err.is_empty() {
                bail!("{how}");
            }
            bail!("{how}: {}", err.lines().last().unwrap_or(""));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {} s", h.timeout.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
