//! Harness for integration tests on real containers.
//!
//! Every test gets a `TestEnv`: its own `--root`, its own bundles, unique
//! container ids and a marker (`RUNWAY_TEST_MARK`) in the environment of the
//! runtime and of the container process, so leftovers can be attributed to
//! exactly one test even when tests run in parallel. Dropping the env
//! force-deletes its containers, kills what carries its marker, detaches its
//! mounts, removes its cgroups and its directory, even when the test failed.
//!
//! The runtime under test is `$RUNWAY_TEST_RUNTIME` if set (so the tests can
//! be checked against runc: `RUNWAY_TEST_RUNTIME=/usr/sbin/runc`), else the
//! runway binary cargo built.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

pub mod extra;
pub mod oci;
pub mod registry;
pub mod robust_extra;

use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Upper bound for one runtime invocation; a hung runtime fails the test
/// instead of hanging the suite.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a state change (e.g. running -> stopped after SIGKILL) may take.
pub const STATE_TIMEOUT: Duration = Duration::from_secs(10);
/// Exiting processes and their cgroups vanish asynchronously; leftovers must
/// be gone within this grace period.
pub const LEFTOVER_GRACE: Duration = Duration::from_secs(3);

const MARK_VAR: &str = "RUNWAY_TEST_MARK";

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn next_seq() -> usize {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// Messages that must reach the terminal although cargo captures test output:
/// writing to the stderr handle directly bypasses the capture.
pub fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// The running test's name: libtest names each test's thread after it
/// (`module::test`); `fallback` when run otherwise.
pub fn test_name(fallback: &str) -> String {
    match std::thread::current().name() {
        Some(n) if n != "main" => n.rsplit("::").next().unwrap_or(n).to_string(),
        _ => fallback.to_string(),
    }
}

/// Print `skipped: <test>: <why>` for the running test.
pub fn skip(why: &str) {
    note(&format!("skipped: {}: {why}", test_name("?")));
}

// ---------------------------------------------------------------- runtimes

/// The runtime under test.
pub fn runtime() -> PathBuf {
    match std::env::var_os("RUNWAY_TEST_RUNTIME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_runway")),
    }
}

/// File name of the runtime under test ("runway", "runc", "crun").
pub fn runtime_name() -> String {
    runtime()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runway-specific expectations (error prefix, version line) apply only when
/// the runtime under test is runway.
pub fn is_runway() -> bool {
    runtime_name() == "runway"
}

/// runc, for the comparison tests: `$RUNWAY_TEST_RUNC` or the usual places.
pub fn runc() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RUNWAY_TEST_RUNC") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    [
        "/usr/sbin/runc",
        "/usr/bin/runc",
        "/usr/local/sbin/runc",
        "/usr/local/bin/runc",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// The expected error-line prefix of the runtime under test, if we know it.
pub fn error_prefix() -> Option<&'static str> {
    is_runway().then_some("runway: ")
}

// ----------------------------------------------------------------- running

/// What one runtime invocation did.
#[derive(Debug, Clone)]
pub struct Out {
    pub args: Vec<String>,
    /// Exit code; 128+N when killed by signal N.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// Panics with the full invocation unless it succeeded.
    pub fn assert_ok(&self) -> &Self {
        assert!(self.ok(), "expected success:\n{self}");
        self
    }

    /// Panics unless it failed with exactly one non-empty error line (with
    /// runway's "runway: " prefix when runway runs). Returns that line.
    pub fn assert_one_error_line(&self) -> String {
        assert!(!self.ok(), "expected failure:\n{self}");
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one error line on stderr:\n{self}"
        );
        let line = lines[0].to_string();
        if let Some(prefix) = error_prefix() {
            assert!(
                line.starts_with(prefix),
                "error line must start with {prefix:?}:\n{self}"
            );
            assert!(
                line.len() > prefix.len() + 3,
                "error line says nothing:\n{self}"
            );
            // run's and exec's own failures exit 255 (runc's exec does;
            // its run exits 1), so they can't be taken for the process's.
            let want = if self.args.iter().any(|a| a == "exec" || a == "run") {
                255
            } else {
                1
            };
            assert_eq!(self.code, want, "runway errors exit {want}:\n{self}");
        }
        line
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  command: {}\n  exit: {}\n  stdout: {:?}\n  stderr: {:?}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// A runtime invocation in flight (see `TestEnv::spawn`).
pub struct Running {
    child: std::process::Child,
    args: Vec<String>,
    out_path: PathBuf,
    err_path: PathBuf,
}

impl Running {
    /// Start `cmd` with stdin from /dev/null and stdout/stderr going to files
    /// under `scratch`. Files, not pipes: a created container inherits the
    /// runtime's stdio and would hold a pipe open until it dies.
    fn spawn(mut cmd: Command, scratch: &Path) -> Result<Running, String> {
        let n = next_seq();
        let out_path = scratch.join(format!("stdout.{n}"));
        let err_path = scratch.join(format!("stderr.{n}"));
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
        Ok(Running {
            child,
            args,
            out_path,
            err_path,
        })
    }

    /// Wait up to `timeout`; on timeout the runtime is killed and an error
    /// returned. Never panics, so Drop can use it.
    fn finish(mut self, timeout: Duration) -> Result<Out, String> {
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
            Some(status) => Ok(Out { args, code: exit_code(status), stdout, stderr }),
            None => Err(format!(
                "timed out after {timeout:?}: {}\n  stdout so far: {stdout:?}\n  stderr so far: {stderr:?}",
                args.join(" ")
            )),
        }
    }

    /// Wait for the invocation (at most CMD_TIMEOUT); panics on timeout.
    pub fn wait(self) -> Out {
        self.finish(CMD_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Whether the runtime process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Run `cmd` to completion (see `Running`).
fn exec(cmd: Command, scratch: &Path, timeout: Duration) -> Result<Out, String> {
    Running::spawn(cmd, scratch)?.finish(timeout)
}

/// Scratch space for invocations that belong to no TestEnv (--version, spec).
fn scratch_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scratch");
    let _ = fs::create_dir_all(&dir);
    dir
}

/// Run `program args` outside any TestEnv (no --root added). Panics on timeout.
pub fn run_program(program: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new(program);
    cmd.args(args);
    exec(cmd, &scratch_dir(), CMD_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// Run the runtime under test without --root (e.g. `--version`).
pub fn run_runtime(args: &[&str]) -> Out {
    run_program(&runtime(), args)
}

// ------------------------------------------------------------- environment

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `path` is an ELF executable without a program interpreter, i.e.
/// runs with no libc from the host (what a container rootfs and runway need).
pub fn elf_is_static(path: &Path) -> bool {
    let Ok(data) = fs::read(path) else {
        return false;
    };
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        match data.get(o..o + 4) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != PT_INTERP,
            None => false,
        }
    })
}

/// A static busybox: `$RUNWAY_TEST_BUSYBOX` or Debian's busybox-static.
pub fn busybox() -> Option<PathBuf> {
    let mut cands: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("RUNWAY_TEST_BUSYBOX") {
        cands.push(PathBuf::from(p));
    }
    cands.extend(["/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"].map(PathBuf::from));
    cands.into_iter().find(|p| elf_is_static(p))
}

/// Why tests on real containers cannot run here, if they cannot.
fn unready_reason() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON
        .get_or_init(|| {
            if !is_root() {
                return Some("containers need root; run the tests as root".into());
            }
            if busybox().is_none() {
                return Some("no static busybox (apt-get install busybox-static)".into());
            }
            None
        })
        .clone()
}

/// The busybox rootfs, built once and shared (read-only by convention) as
/// the source every bundle's rootfs is hard-linked from.
pub fn rootfs_template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| build_template().unwrap_or_else(|e| panic!("building busybox rootfs: {e}")))
}

fn build_template() -> Result<PathBuf, String> {
    let bb = busybox().ok_or("no static busybox")?;
    let meta = fs::metadata(&bb).map_err(|e| format!("{}: {e}", bb.display()))?;
    // Keyed by the binary so an upgraded busybox gets a fresh template.
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let name = format!("busybox-rootfs-{}-{}", meta.size(), meta.mtime());
    let final_dir = base.join(&name);
    if final_dir.join("bin/busybox").is_file() {
        return Ok(final_dir);
    }
    // Build under a private name, then rename: test binaries may race here.
    let tmp = base.join(format!("{name}.tmp{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let e = |p: &Path, err: std::io::Error| format!("{}: {err}", p.display());
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
        fs::create_dir_all(tmp.join(d)).map_err(|err| e(&tmp.join(d), err))?;
    }
    fs::set_permissions(tmp.join("tmp"), fs::Permissions::from_mode(0o1777))
        .map_err(|err| e(&tmp, err))?;
    let dst = tmp.join("bin/busybox");
    fs::copy(&bb, &dst).map_err(|err| e(&dst, err))?;
    let list = Command::new(&dst)
        .arg("--list")
        .output()
        .map_err(|err| e(&dst, err))?;
    if !list.status.success() {
        return Err(format!("{} --list failed", dst.display()));
    }
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" && !applet.contains('/') {
            let link = tmp.join("bin").join(applet);
            symlink("busybox", &link).map_err(|err| e(&link, err))?;
        }
    }
    fs::write(
        tmp.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .map_err(|err| e(&tmp, err))?;
    fs::write(tmp.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")
        .map_err(|err| e(&tmp, err))?;
    if fs::rename(&tmp, &final_dir).is_err() {
        // Another test binary won the race; its template is as good.
        let _ = fs::remove_dir_all(&tmp);
        if !final_dir.join("bin/busybox").is_file() {
            return Err(format!("{}: not created", final_dir.display()));
        }
    }
    Ok(final_dir)
}

/// Recreate `src` at `dst`: directories and symlinks copied, files hard-linked
/// (copied across filesystems).
fn replicate(src: &Path, dst: &Path) -> Result<(), String> {
    let e = |p: &Path, err: std::io::Error| format!("{}: {err}", p.display());
    fs::create_dir_all(dst).map_err(|err| e(dst, err))?;
    let mode = fs::metadata(src).map_err(|err| e(src, err))?.permissions();
    fs::set_permissions(dst, mode).map_err(|err| e(dst, err))?;
    for entry in fs::read_dir(src).map_err(|err| e(src, err))? {
        let entry = entry.map_err(|err| e(src, err))?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let ft = entry.file_type().map_err(|err| e(&from, err))?;
        if ft.is_dir() {
            replicate(&from, &to)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&from).map_err(|err| e(&from, err))?;
            symlink(target, &to).map_err(|err| e(&to, err))?;
        } else if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to).map_err(|err| e(&to, err))?;
        }
    }
    Ok(())
}

/// The runtime's default config.json (`<runtime> spec`), made once.
fn default_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let dir = scratch_dir().join(format!("spec-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let out = run_runtime(&["spec", "--bundle", &dir.to_string_lossy()]);
        assert!(
            out.ok(),
            "`spec` failed; every bundle starts from it:\n{out}"
        );
        let text = fs::read_to_string(dir.join("config.json"))
            .unwrap_or_else(|e| panic!("`spec` wrote no config.json ({e}):\n{out}"));
        let _ = fs::remove_dir_all(&dir);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("`spec` wrote invalid JSON: {e}\n{text}"))
    })
}

// ------------------------------------------------------------------ bundle

/// An OCI bundle: a directory with a busybox rootfs and a config.json that
/// starts as the runtime's default spec. Edit `config` (or use the helpers),
/// then `write()`.
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
    /// Value of RUNWAY_TEST_MARK for this bundle's runtime and container.
    pub mark: String,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    pub fn path_str(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    /// Set the value at a JSON pointer ("/process/args"), creating objects
    /// on the way.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        let mut cur = &mut self.config;
        for key in pointer.split('/').skip(1) {
            if !cur.is_object() {
                *cur = json!({});
            }
            cur = cur
                .as_object_mut()
                .map(|o| o.entry(key.to_string()).or_insert(Value::Null))
                .unwrap_or_else(|| unreachable!());
        }
        *cur = value;
        self
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    /// `sh -c SCRIPT`
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn hostname(&mut self, name: &str) -> &mut Self {
        self.set("/hostname", json!(name))
    }

    pub fn readonly(&mut self, ro: bool) -> &mut Self {
        self.set("/root/readonly", json!(ro))
    }

    pub fn terminal(&mut self, on: bool) -> &mut Self {
        self.set("/process/terminal", json!(on))
    }

    pub fn annotation(&mut self, key: &str, value: &str) -> &mut Self {
        self.set(&format!("/annotations/{key}"), json!(value))
    }

    /// Append `{"type": typ}` (plus "path" if given) to linux.namespaces.
    pub fn add_namespace(&mut self, typ: &str, path: Option<&str>) -> &mut Self {
        let mut ns = json!({ "type": typ });
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        self.array_mut("/linux/namespaces").push(ns);
        self
    }

    pub fn remove_namespace(&mut self, typ: &str) -> &mut Self {
        self.array_mut("/linux/namespaces")
            .retain(|n| n["type"] != typ);
        self
    }

    pub fn add_mount(&mut self, mount: Value) -> &mut Self {
        self.array_mut("/mounts").push(mount);
        self
    }

    /// Arbitrary edit of the config.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self
    }

    fn array_mut(&mut self, pointer: &str) -> &mut Vec<Value> {
        if !self.config.pointer(pointer).is_some_and(Value::is_array) {
            self.set(pointer, json!([]));
        }
        match self.config.pointer_mut(pointer) {
            Some(Value::Array(a)) => a,
            _ => unreachable!("just made it an array"),
        }
    }

    /// Write config.json.
    pub fn write(&mut self) -> &mut Self {
        let text = serde_json::to_string_pretty(&self.config)
            .unwrap_or_else(|e| panic!("serialize config: {e}"));
        fs::write(self.config_path(), text)
            .unwrap_or_else(|e| panic!("{}: {e}", self.config_path().display()));
        self
    }
}

// ---------------------------------------------------------------- TestEnv

/// One test's world: a --root, bundles, container ids; cleaned up on drop.
pub struct TestEnv {
    pub name: String,
    /// Everything of this test lives under here.
    pub dir: PathBuf,
    /// The runtime's --root.
    pub root: PathBuf,
    token: String,
    ids: RefCell<BTreeSet<String>>,
    /// (id, pid, start time) of every container init this test saw.
    pids: RefCell<Vec<(String, i32, u64)>>,
}

impl TestEnv {
    /// A fresh env, or None (after printing "skipped: ...") when containers
    /// cannot run here (not root, no static busybox).
    pub fn new(name: &str) -> Option<TestEnv> {
        if let Some(why) = unready_reason() {
            note(&format!("skipped: {}: {why}", test_name(name)));
            return None;
        }
        let token = format!("{name}-{}-{}", std::process::id(), next_seq());
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("envs")
            .join(&token);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let root = dir.join("root");
        Some(TestEnv {
            name: name.into(),
            dir,
            root,
            token,
            ids: RefCell::default(),
            pids: RefCell::default(),
        })
    }

    /// A unique container id, force-deleted when the env drops.
    pub fn id(&self, what: &str) -> String {
        let id = format!("{}-{what}-{}", self.token, next_seq());
        self.ids.borrow_mut().insert(id.clone());
        id
    }

    /// Register an id (e.g. a deliberately odd one) for cleanup.
    pub fn adopt_id(&self, id: &str) {
        self.ids.borrow_mut().insert(id.to_string());
    }

    /// A new bundle: busybox rootfs + the runtime's default spec, adjusted to
    /// run without a terminal, with a marker in the container environment.
    /// Not yet written: call `write()` after editing.
    pub fn bundle(&self) -> Bundle {
        let n = next_seq();
        // ".bundle" ends the name so no bundle path is a prefix of another.
        let dir = self.dir.join(format!("b{n}.bundle"));
        replicate(rootfs_template(), &dir.join("rootfs"))
            .unwrap_or_else(|e| panic!("bundle rootfs: {e}"));
        let mark = format!("{}:b{n}", self.token);
        let mut config = default_spec().clone();
        let env = config
            .pointer_mut("/process/env")
            .and_then(Value::as_array_mut);
        match env {
            Some(env) => env.push(json!(format!("{MARK_VAR}={mark}"))),
            None => config["process"]["env"] = json!([format!("{MARK_VAR}={mark}")]),
        }
        let mut b = Bundle { dir, config, mark };
        b.terminal(false).sh("true");
        b
    }

    /// A Bundle for a directory made elsewhere (e.g. by the example script),
    /// for the leftover checks; its config.json is not ours.
    pub fn bundle_at(&self, dir: &Path) -> Bundle {
        let mark = format!("{}:x{}", self.token, next_seq());
        Bundle {
            dir: dir.to_path_buf(),
            config: Value::Null,
            mark,
        }
    }

    /// A bundle directory with only a rootfs and no config.json at all.
    pub fn bare_bundle(&self) -> Bundle {
        let b = self.bundle();
        let _ = fs::remove_file(b.config_path());
        b
    }

    fn command(&self, mark: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(runtime());
        cmd.arg("--root")
            .arg(&self.root)
            .args(args)
            .env(MARK_VAR, mark);
        cmd
    }

    /// `<runtime> --root ROOT args...`
    pub fn rt(&self, args: &[&str]) -> Out {
        exec(self.command(&self.token, args), &self.dir, CMD_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like `rt`, but the runtime process carries the bundle's marker (for
    /// commands that start container processes from `bundle`).
    pub fn rt_for(&self, bundle: &Bundle, args: &[&str]) -> Out {
        exec(self.command(&bundle.mark, args), &self.dir, CMD_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like `rt_for`, with `ignored` signals set to SIG_IGN in the runtime
    /// (as a shell's `cmd &` leaves SIGINT and SIGQUIT).
    pub fn rt_for_ignoring(&self, bundle: &Bundle, ignored: &'static [i32], args: &[&str]) -> Out {
        use std::os::unix::process::CommandExt;
        let mut cmd = self.command(&bundle.mark, args);
        // SAFETY: only signal(2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                for s in ignored {
                    libc::signal(*s, libc::SIG_IGN);
                }
                Ok(())
            })
        };
        exec(cmd, &self.dir, CMD_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Start `<runtime> --root ROOT args...` for `bundle` without waiting
    /// (a foreground `run`, concurrent creates).
    pub fn spawn(&self, bundle: &Bundle, args: &[&str]) -> Running {
        Running::spawn(self.command(&bundle.mark, args), &self.dir)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Any other runtime (runc for comparisons) with this env's root + `suffix`.
    pub fn other(&self, program: &Path, root_suffix: &str, mark: &str, args: &[&str]) -> Out {
        let mut cmd = Command::new(program);
        cmd.arg("--root")
            .arg(self.root_for(root_suffix))
            .args(args)
            .env(MARK_VAR, mark);
        exec(cmd, &self.dir, CMD_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A second --root inside this env (cleaned up with it).
    pub fn root_for(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("root-{suffix}"))
    }

    /// Where the runtime keeps the container's state.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn pid_file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.pid"))
    }

    /// `create --bundle B --pid-file P ID`
    pub fn create(&self, bundle: &Bundle, id: &str) -> Out {
        let pid_file = self.pid_file(id);
        let out = self.rt_for(
            bundle,
            &[
                "create",
                "--bundle",
                &bundle.path_str(),
                "--pid-file",
                &pid_file.to_string_lossy(),
                id,
            ],
        );
        if out.ok() {
            self.remember_pid_file(id);
        }
        out
    }

    /// `create`, asserting success; returns the init pid from the pid file.
    pub fn create_ok(&self, bundle: &Bundle, id: &str) -> i32 {
        self.create(bundle, id).assert_ok();
        self.read_pid_file(id)
    }

    pub fn read_pid_file(&self, id: &str) -> i32 {
        let path = self.pid_file(id);
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("pid file {}: {e}", path.display()));
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("pid file {} holds {text:?}: {e}", path.display()))
    }

    fn remember_pid_file(&self, id: &str) {
        if let Ok(text) = fs::read_to_string(self.pid_file(id)) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                self.remember_pid(id, pid);
            }
        }
    }

    fn remember_pid(&self, id: &str, pid: i32) {
        if pid > 0 {
            if let Some(start) = proc_start_time(pid) {
                let entry = (id.to_string(), pid, start);
                let mut pids = self.pids.borrow_mut();
                if !pids.contains(&entry) {
                    pids.push(entry);
                }
            }
        }
    }

    /// Whether `p` is a container init this test saw for `id` (any id if None).
    fn is_seen_init(&self, p: i32, id: Option<&str>) -> bool {
        self.pids.borrow().iter().any(|(i, pid, start)| {
            *pid == p && id.is_none_or(|id| id == i) && proc_start_time(p) == Some(*start)
        })
    }

    pub fn start(&self, id: &str) -> Out {
        self.rt(&["start", id])
    }

    /// `run --bundle B ID` (foreground: waits for the container).
    pub fn run(&self, bundle: &Bundle, id: &str) -> Out {
        self.rt_for(bundle, &["run", "--bundle", &bundle.path_str(), id])
    }

    pub fn state(&self, id: &str) -> Out {
        self.rt(&["state", id])
    }

    /// `state ID` parsed; panics unless it succeeded with a JSON object.
    pub fn state_json(&self, id: &str) -> Value {
        let out = self.state(id);
        out.assert_ok();
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state is not JSON ({e}):\n{out}"));
        assert!(v.is_object(), "state is not a JSON object:\n{out}");
        if let Some(pid) = v["pid"].as_i64() {
            self.remember_pid(id, pid as i32);
        }
        v
    }

    pub fn status(&self, id: &str) -> String {
        self.state_json(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn kill(&self, id: &str, signal: Option<&str>) -> Out {
        match signal {
            Some(sig) => self.rt(&["kill", id, sig]),
            None => self.rt(&["kill", id]),
        }
    }

    pub fn delete(&self, id: &str, force: bool) -> Out {
        if force {
            self.rt(&["delete", "--force", id])
        } else {
            self.rt(&["delete", id])
        }
    }

    pub fn list(&self, args: &[&str]) -> Out {
        let mut all = vec!["list"];
        all.extend_from_slice(args);
        self.rt(&all)
    }

    /// Poll `state` until status is `want`; panics with the last state after
    /// `timeout`.
    pub fn wait_for_status(&self, id: &str, want: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            let out = self.state(id);
            let status = serde_json::from_str::<Value>(&out.stdout)
                .ok()
                .and_then(|v| v["status"].as_str().map(String::from));
            if status.as_deref() == Some(want) {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "container {id} not {want} after {timeout:?}; last state:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything this container could have left behind; empty when clean.
    pub fn leftovers(&self, id: &str, bundle: &Bundle) -> Vec<String> {
        let mut found = Vec::new();
        if is_simple_id(id) {
            let state_dir = self.root.join(id);
            if state_dir.symlink_metadata().is_ok() {
                found.push(format!("state dir {} still exists", state_dir.display()));
            }
        }
        found.extend(
            mounts_under(&bundle.dir)
                .into_iter()
                .map(|m| format!("mount left: {m}")),
        );
        let names: Vec<&str> = id.split('/').filter(|c| is_simple_id(c)).collect();
        found.extend(
            cgroup_dirs_named(&names)
                .into_iter()
                .map(|d| format!("cgroup left: {}", d.display())),
        );
        let bundle_path = bundle.path_str();
        for p in live_pids() {
            let why = if environ_has(p, &bundle.mark) {
                Some(format!("{MARK_VAR}={}", bundle.mark))
            } else if cgroup_mentions(p, &names) {
                Some(format!("in a cgroup named {id}"))
            } else if cmdline(p).contains(&bundle_path) {
                // Bundle paths end in ".bundle", so this matches only this bundle.
                Some(format!("cmdline mentions {bundle_path}"))
            } else if self.is_seen_init(p, Some(id)) {
                Some("container init seen by this test".into())
            } else {
                None
            };
            if let Some(why) = why {
                found.push(format!(
                    "process left: pid {p} ({}): {why}",
                    cmdline(p).trim()
                ));
            }
        }
        found
    }

    /// Panics listing every leftover of the container `id` from `bundle`
    /// (state dir, mounts, cgroups, processes) that remains after a short
    /// grace period for asynchronous exit.
    pub fn assert_nothing_left(&self, id: &str, bundle: &Bundle) {
        let start = Instant::now();
        loop {
            let found = self.leftovers(id, bundle);
            if found.is_empty() {
                return;
            }
            if start.elapsed() > LEFTOVER_GRACE {
                panic!("container {id:?} left traces:\n  {}", found.join("\n  "));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The --root holds no container state (missing or empty is fine).
    pub fn assert_root_empty(&self) {
        if let Ok(entries) = fs::read_dir(&self.root) {
            let names: Vec<String> = entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            assert!(
                names.is_empty(),
                "{} should hold no state, holds {names:?}",
                self.root.display()
            );
        }
    }

    /// Processes carrying this env's marker (any bundle) or in a cgroup of
    /// one of its ids: things only this test started.
    fn own_processes(&self) -> Vec<i32> {
        let ids: Vec<String> = self.ids.borrow().iter().cloned().collect();
        let names: Vec<&str> = ids
            .iter()
            .flat_map(|i| i.split('/'))
            .filter(|c| is_simple_id(c))
            .collect();
        live_pids()
            .into_iter()
            .filter(|&p| {
                environ_value(p)
                    .is_some_and(|v| v == self.token || v.starts_with(&format!("{}:", self.token)))
                    || cgroup_mentions(p, &names)
                    || self.is_seen_init(p, None)
            })
            .collect()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let ids: Vec<String> = self.ids.borrow().iter().cloned().collect();
        let mut roots = vec![self.root.clone()];
        if let Ok(entries) = fs::read_dir(&self.dir) {
            roots.extend(entries.flatten().map(|e| e.path()).filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("root-"))
            }));
        }
        // The runtime cleans up best; runc may have been used for some roots.
        for id in ids.iter().filter(|i| is_simple_id(i)) {
            for root in &roots {
                if root.join(id).exists() {
                    for program in [Some(runtime()), runc()].into_iter().flatten() {
                        let mut cmd = Command::new(&program);
                        cmd.arg("--root").arg(root).args(["delete", "--force", id]);
                        let _ = exec(cmd, &self.dir, Duration::from_secs(10));
                        if !root.join(id).exists() {
                            break;
                        }
                    }
                }
            }
        }
        // Whatever the runtime left: ours by marker or cgroup, so safe to kill.
        for _ in 0..50 {
            let pids = self.own_processes();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                // SAFETY: kill(2) with a pid we identified as ours.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut mounts = mount_points_under(&self.dir);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in &mounts {
            if let Ok(c) = std::ffi::CString::new(m.as_str()) {
                // SAFETY: c is a valid NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        let names: Vec<&str> = ids
            .iter()
            .flat_map(|i| i.split('/'))
            .filter(|c| is_simple_id(c))
            .collect();
        let mut cgroups = cgroup_dirs_named(&names);
        cgroups.sort_by_key(|d| std::cmp::Reverse(d.as_os_str().len()));
        for d in cgroups {
            let _ = fs::remove_dir(d);
        }
        if std::env::var_os("RUNWAY_TEST_KEEP").is_some() {
            note(&format!("kept {}", self.dir.display()));
            return;
        }
        // Never recurse into a mount that is still there: it may be a bind of
        // a host directory.
        if mount_points_under(&self.dir).is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            note(&format!(
                "warning: mounts remain under {}; not removing it",
                self.dir.display()
            ));
        }
    }
}

// ------------------------------------------------------- system inspection

/// A plain path component: not empty, ".", "..", and no '/'.
pub fn is_simple_id(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains('/')
}

/// (root within its filesystem, mount point) of every mount in our namespace.
fn mountinfo() -> Vec<(String, String)> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            Some((
                unescape_mountinfo(fields.get(3)?),
                unescape_mountinfo(fields.get(4)?),
            ))
        })
        .collect()
}

fn is_under(p: &str, dir: &Path) -> bool {
    let dir = dir.to_string_lossy();
    p == dir
        || p.strip_prefix(dir.as_ref())
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Mount points at or below `dir` in our mount namespace.
pub fn mount_points_under(dir: &Path) -> Vec<String> {
    mountinfo()
        .into_iter()
        .filter(|(_, point)| is_under(point, dir))
        .map(|(_, point)| point)
        .collect()
}

/// Mounts whose mount point or source root is at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    mountinfo()
        .into_iter()
        .filter(|(root, point)| is_under(point, dir) || is_under(root, dir))
        .map(|(root, point)| format!("{point} (root {root})"))
        .collect()
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Directories named one of `names` in any cgroup hierarchy.
pub fn cgroup_dirs_named(names: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, names: &[&str], depth: usize, found: &mut Vec<PathBuf>) {
        if depth > 12 {
            return;
        }
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            // cpu,cpuacct style links point into hierarchies we walk anyway.
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if names.iter().any(|n| e.file_name() == **n) {
                found.push(p.clone());
            }
            walk(&p, names, depth + 1, found);
        }
    }
    let mut found = Vec::new();
    if !names.is_empty() {
        walk(Path::new("/sys/fs/cgroup"), names, 0, &mut found);
    }
    found
}

/// Pids of processes that exist and are not zombies, except ourselves.
pub fn live_pids() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| p != me && proc_state(p).is_some_and(|s| s != 'Z' && s != 'X'))
        .collect()
}

/// /proc/PID/stat: (state, start time). The comm field may hold spaces and
/// parentheses, so fields are counted after the last ')'.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After comm: state is field 3 of stat(5), starttime field 22.
    Some((
        fields.first()?.chars().next()?,
        fields.get(19)?.parse().ok()?,
    ))
}

fn proc_state(pid: i32) -> Option<char> {
    proc_stat(pid).map(|s| s.0)
}

/// Start time of a live (non-zombie) process, to tell a pid from its reuse.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    proc_stat(pid)
        .filter(|s| s.0 != 'Z' && s.0 != 'X')
        .map(|s| s.1)
}

/// Whether a live, non-zombie process has this pid and start time.
pub fn process_alive(pid: i32) -> bool {
    proc_start_time(pid).is_some()
}

fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn environ_value(pid: i32) -> Option<String> {
    let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{MARK_VAR}=");
    env.split(|&b| b == 0).find_map(|kv| {
        kv.strip_prefix(prefix.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

fn environ_has(pid: i32, mark: &str) -> bool {
    environ_value(pid).is_some_and(|v| v == mark)
}

/// Whether the process sits in a cgroup with a path component in `names`.
fn cgroup_mentions(pid: i32, names: &[&str]) -> bool {
    if names.is_empty() {
        return false;
    }
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    text.lines().any(|l| {
        l.splitn(3, ':')
            .nth(2)
            .is_some_and(|path| path.split('/').any(|c| names.contains(&c)))
    })
}

/// Exactly the keys of a JSON object.
pub fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// "2006-01-02T15:04:05Z" or with fractional seconds / offset: RFC 3339.
pub fn looks_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    rest == "Z"
        || (rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':')
}
