//! OCI lifecycle hooks: each runs with the container state JSON on stdin,
//! its own env, and an optional timeout after which it is killed.

use crate::bail;
use crate::container::plan::Plan;
use crate::error::{Context, Result};
use crate::spec::Hook;
use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
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

/// Where a hook runs and what it gets when its config says nothing.
#[derive(Debug, Clone, Copy, Default)]
struct Setting<'a> {
    /// Working directory (createContainer: the rootfs, as runc).
    cwd: Option<&'a Path>,
    /// The environment of a hook without `env` (startContainer: the
    /// container process's, as it runs in the container).
    env: Option<&'a [CString]>,
}

pub fn run_all(kind: &str, hooks: &[Hook], state: &[u8]) -> Result<()> {
    run_all_in(kind, hooks, state, Setting::default())
}

/// createContainer hooks: in the container's namespaces before pivot_root,
/// in the rootfs as working directory (runc chdirs there first; hooks use
/// relative paths into the container's files).
pub fn run_create_container(plan: &Plan, state: &[u8]) -> Result<()> {
    let at = Setting {
        cwd: Some(&plan.rootfs),
        env: None,
    };
    run_all_in("createContainer", &plan.hooks.create_container, state, at)
}

/// startContainer hooks: in the container, right before its process; a
/// hook without `env` gets the process's environment (runc), as a program
/// started in the container expects PATH and the like.
pub fn run_start_container(plan: &Plan, state: &[u8]) -> Result<()> {
    let at = Setting {
        cwd: None,
        env: Some(&plan.process.env),
    };
    run_all_in("startContainer", &plan.hooks.start_container, state, at)
}

/// As `run_all`, with a working directory and a default environment.
fn run_all_in(kind: &str, hooks: &[Hook], state: &[u8], at: Setting) -> Result<()> {
    // prestart hooks run after the container is set up, right before it is
    // reported created: they see "created" (the caller's state says
    // "creating", which createRuntime hooks keep).
    let created;
    let state = if kind == "prestart" {
        created = with_status(state, "created");
        &created
    } else {
        state
    };
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state, at).ctx(|| format!("{kind} hook #{i} ({})", h.path))?;
    }
    Ok(())
}

/// The state JSON with another `status`.
fn with_status(state: &[u8], status: &str) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(state) {
        Ok(mut v) => {
            v["status"] = serde_json::Value::from(status);
            serde_json::to_vec(&v).unwrap_or_else(|_| state.to_vec())
        }
        Err(_) => state.to_vec(),
    }
}

/// For poststart/poststop: failures are warnings, the rest still run.
pub fn run_all_warn(kind: &str, hooks: &[Hook], state: &[u8]) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state, Setting::default()) {
            crate::log::warn(&format!("{kind} hook #{i} ({}): {e}", h.path));
        }
    }
}

fn run_one(h: &Hook, state: &[u8], at: Setting) -> Result<()> {
    let mut cmd = Command::new(&h.path);
    if let Some((arg0, rest)) = h.args.split_first() {
        cmd.arg0(arg0);
        cmd.args(rest);
    }
    cmd.env_clear();
    let set = |cmd: &mut Command, e: &[u8]| {
        if let Some(i) = e.iter().position(|b| *b == b'=') {
            cmd.env(OsStr::from_bytes(&e[..i]), OsStr::from_bytes(&e[i + 1..]));
        }
    };
    match at.env {
        // An absent and an empty `env` read the same: both get the default.
        Some(default) if h.env.is_empty() => {
            default.iter().for_each(|e| set(&mut cmd, e.as_bytes()))
        }
        _ => h.env.iter().for_each(|e| set(&mut cmd, e.as_bytes())),
    }
    if let Some(dir) = at.cwd {
        cmd.current_dir(dir);
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
