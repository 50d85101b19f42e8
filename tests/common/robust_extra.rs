//! Extras for the robustness tests: runtime invocations that carry extra
//! environment (the fault knob), can be killed mid-flight or run from
//! worker threads, and checks that report problems instead of panicking so
//! table tests can list every failing case at once.

use super::{cgroup_dirs_named, runtime, Bundle, Out, TestEnv, CMD_TIMEOUT, LEFTOVER_GRACE};
use serde_json::Value;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const MARK_VAR: &str = "RUNWAY_TEST_MARK";
/// The runtime's fault-injection knob (src/container/fault.rs).
pub const FAULT_VAR: &str = "RUNWAY_TEST_FAULT";

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Everything needed to invoke the runtime for one env and bundle; plain
/// data, so worker threads can own a copy (TestEnv itself is not Sync).
#[derive(Clone, Debug)]
pub struct Rt {
    pub root: PathBuf,
    pub mark: String,
    scratch: PathBuf,
    env: Vec<(String, String)>,
}

impl Rt {
    pub fn new(env: &TestEnv, bundle: &Bundle) -> Rt {
        Rt {
            root: env.root.clone(),
            mark: bundle.mark.clone(),
            scratch: env.dir.clone(),
            env: Vec::new(),
        }
    }

    /// Same env and bundle, another --root.
    pub fn with_root(&self, root: &Path) -> Rt {
        Rt {
            root: root.to_path_buf(),
            ..self.clone()
        }
    }

    /// Same, with `key=value` added to the runtime's environment.
    pub fn with_env(&self, key: &str, value: &str) -> Rt {
        let mut rt = self.clone();
        rt.env.push((key.into(), value.into()));
        rt
    }

    /// Same, armed to SIGKILL itself at `step`.
    pub fn with_fault(&self, step: &str) -> Rt {
        self.with_env(FAULT_VAR, step)
    }

    fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(runtime());
        cmd.arg("--root")
            .arg(&self.root)
            .args(args)
            .env(MARK_VAR, &self.mark)
            .env_remove(FAULT_VAR);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Start `<runtime> --root ROOT args...` without waiting.
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<Proc, String> {
        Proc::spawn(self.command(args), &self.scratch)
    }

    /// Run to completion within `timeout` (the runtime is killed and an
    /// error returned on timeout).
    pub fn run_for<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: &[S],
        timeout: Duration,
    ) -> Result<Out, String> {
        self.spawn(args)?.finish(timeout)
    }

    /// Run to completion; panics on timeout (CMD_TIMEOUT).
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Out {
        self.run_for(args, CMD_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A runtime process in flight. Its stdout/stderr go to files: a container
/// inherits them and, with pipes, would keep the reader waiting.
pub struct Proc {
    child: Child,
    args: Vec<String>,
    out_path: PathBuf,
    err_path: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, scratch: &Path) -> Result<Proc, String> {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let out_path = scratch.join(format!("rx-stdout.{n}"));
        let err_path = scratch.join(format!("rx-stderr.{n}"));
        let args: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let out_f =
            fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
        let err_f =
            fs::File::create(&err_path).map_err(|e| format!("{}: {e}", err_path.display()))?;
        cmd.stdin(Stdio::null()).stdout(out_f).stderr(err_f);
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", args.join(" ")))?;
        Ok(Proc {
            child,
            args,
            out_path,
            err_path,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL the runtime process itself (not the container).
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
    }

    pub fn finish(mut self, timeout: Duration) -> Result<Out, String> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if start.elapsed() > timeout => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => return Err(format!("wait {}: {e}", self.args.join(" "))),
            }
        };
        let read = |p: &Path| {
            fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let (stdout, stderr) = (read(&self.out_path), read(&self.err_path));
        let _ = fs::remove_file(&self.out_path);
        let _ = fs::remove_file(&self.err_path);
        let args = std::mem::take(&mut self.args);
        match status {
            Some(status) => {
                use std::os::unix::process::ExitStatusExt;
                let code = status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                Ok(Out {
                    args,
                    code,
                    stdout,
                    stderr,
                })
            }
            None => Err(format!(
                "timed out after {timeout:?} (hang): {}\n  stdout so far: {stdout:?}\n  stderr so far: {stderr:?}",
                args.join(" ")
            )),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A runtime left running by a failed test must not outlive it.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The verdict on a failing invocation: exit status from the runtime itself
/// (not a signal, not Rust's panic code 101), exactly one non-empty line on
/// stderr starting with "runway: ". Returns that line.
pub fn clean_error(out: &Out) -> Result<String, String> {
    if out.code == 0 {
        return Err(format!("expected failure, got success:\n{out}"));
    }
    if out.code == 101 {
        return Err(format!("exit 101 (Rust panic):\n{out}"));
    }
    // 255 is exec's own failure (runc's status for it), not a signal.
    if out.code >= 128 && out.code != 255 {
        return Err(format!(
            "died by signal {} (abort/crash?):\n{out}",
            out.code - 128
        ));
    }
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.len() != 1 {
        return Err(format!(
            "expected exactly one stderr line, got {}:\n{out}",
            lines.len()
        ));
    }
    let line = lines[0];
    if !line.starts_with("runway: ") || line.len() < "runway: ".len() + 4 {
        return Err(format!(
            "error line must start with \"runway: \" and say something:\n{out}"
        ));
    }
    if line.to_lowercase().contains("panicked") {
        return Err(format!("error line is a panic message:\n{out}"));
    }
    Ok(line.to_string())
}

/// Statuses `state` may report.
pub const STATUSES: &[&str] = &["creating", "created", "running", "paused", "stopped"];

/// `state ID` after a fault: either a clean one-line error or a JSON object
/// for `id` with a known status. Returns the status when there was one.
pub fn sane_state(out: &Out, id: &str) -> Result<Option<String>, String> {
    if out.code != 0 {
        return clean_error(out).map(|_| None);
    }
    let v: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| format!("state output is not JSON ({e}):\n{out}"))?;
    if v["id"] != id {
        return Err(format!("state is for another id:\n{out}"));
    }
    let status = v["status"].as_str().unwrap_or_default();
    if !STATUSES.contains(&status) {
        return Err(format!("unknown status {status:?}:\n{out}"));
    }
    Ok(Some(status.to_string()))
}

/// `env.leftovers` polled for the usual grace period: exiting processes
/// and their cgroups go away asynchronously.
pub fn leftovers_after_grace(env: &TestEnv, id: &str, bundle: &Bundle) -> Vec<String> {
    let start = Instant::now();
    loop {
        let found = env.leftovers(id, bundle);
        if found.is_empty() || start.elapsed() > LEFTOVER_GRACE {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Cgroup directories of container `id` in any hierarchy.
pub fn cgroups_of(id: &str) -> Vec<PathBuf> {
    cgroup_dirs_named(&[id])
}

/// Entries of a --root directory (none if it is missing).
pub fn root_entries(root: &Path) -> Vec<String> {
    fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A filesystem mounted by a test, detached on drop even if the test fails.
pub struct MountGuard {
    pub path: PathBuf,
}

impl MountGuard {
    /// `mount -t tmpfs -o OPTS tmpfs PATH` (PATH is created).
    pub fn tmpfs(path: &Path, opts: &str) -> Result<MountGuard, String> {
        fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount tmpfs at {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(MountGuard {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Ok(c) = std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes()) {
            // SAFETY: c is a valid NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// An argument that is not valid UTF-8.
pub fn non_utf8_arg() -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(vec![b'i', b'd', 0xff, 0xfe])
}
