//! Support for the engine tier (tests/engines.rs): finding the tools,
//! skipping or failing when they are missing, the images the engines
//! import, running engine commands with a timeout, terminals, and the
//! leftover checks.
//!
//! Nothing is installed at test time. The images are built offline from the
//! harness's busybox rootfs: one uncompressed tar layer that podman imports
//! as is; for containerd an OCI image layout written by hand (layer, config,
//! manifest, index, oci-layout) and packed with tar, so no image tool quirks
//! are in the way; for docker the same blobs with docker's manifest.json;
//! and for CRI a pause image, the static busybox alone, sleeping.

pub mod containerd;
pub mod cri;
pub mod docker;
pub mod netns;
pub mod podman;

use crate::common::{self, note, Out};
use serde_json::json;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Upper bound for one engine command; a hang fails the scenario.
pub const ENGINE_TIMEOUT: Duration = Duration::from_secs(60);

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub fn next_seq() -> usize {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// True when RUNWAY_ENGINES_REQUIRE is set: a missing tool fails the test
/// instead of skipping it (CI installs the engines on purpose).
pub fn required() -> bool {
    std::env::var_os("RUNWAY_ENGINES_REQUIRE").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Skip (print "skipped: TEST: WHY" and return false) or, when required,
/// fail.
pub fn skip(test: &str, why: &str) -> bool {
    if required() {
        panic!("{test}: required by RUNWAY_ENGINES_REQUIRE but cannot run: {why}");
    }
    note(&format!("skipped: {test}: {why}"));
    false
}

pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `test` can run: root, a static busybox, and every tool in
/// `tools` (names looked up on PATH, or absolute paths). Prints the skip.
pub fn ready(test: &str, tools: &[&str]) -> bool {
    if !is_root() {
        return skip(test, "engines need root; run the tests as root");
    }
    if let Some(why) = netns::unavailable() {
        return skip(test, &why);
    }
    if common::busybox().is_none() {
        return skip(test, "no static busybox (apt-get install busybox-static)");
    }
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            if t.starts_with('/') {
                !Path::new(t).is_file()
            } else {
                which(t).is_none()
            }
        })
        .collect();
    if !missing.is_empty() {
        return skip(
            test,
            &format!(
                "missing {} (apt-get install podman conmon netavark aardvark-dns iptables containerd runc docker.io)",
                missing.join(", ")
            ),
        );
    }
    true
}

/// The runway binary cargo built.
pub fn runway() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_runway"))
}

/// runway copied to a file named `runc` in `dir`: podman passes `--log
/// --log-format=json` only to runtimes whose file name it knows.
pub fn runway_named_runc(dir: &Path) -> PathBuf {
    let rt = dir.join("runtime-as-runc");
    fs::create_dir_all(&rt).unwrap_or_else(|e| panic!("{}: {e}", rt.display()));
    let dst = rt.join("runc");
    fs::copy(runway(), &dst).unwrap_or_else(|e| panic!("{}: {e}", dst.display()));
    dst
}

/// Removes a directory when dropped, also when the test panics.
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A fresh directory for one test. Under /tmp, not cargo's tmp dir: podman
/// refuses a runroot longer than 50 characters and unix socket paths (the
/// containerd socket) must stay under 108.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from("/tmp").join(format!("rwe-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

// ------------------------------------------------------------------ image

/// The busybox image, built once per test process.
pub struct Image {
    /// One uncompressed tar of the rootfs (podman import).
    pub layer: PathBuf,
    /// An OCI image layout as a tar archive (ctr image import).
    pub oci_archive: PathBuf,
    /// The same blobs with docker's manifest.json (docker load).
    pub docker_archive: PathBuf,
    /// The CRI sandbox ("pause") image as an OCI archive: only the static
    /// busybox, sleeping.
    pub pause_oci_archive: PathBuf,
}

/// Name under which containerd knows the image (from the index annotation).
pub const CTR_IMAGE: &str = "docker.io/library/runway-test-busybox:latest";
/// Name under which docker knows it (from manifest.json's RepoTags).
pub const DOCKER_IMAGE: &str = "runway-test-busybox:latest";
/// The pause image's name in containerd.
pub const PAUSE_IMAGE: &str = "docker.io/library/runway-test-pause:latest";

pub fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| build_image().unwrap_or_else(|e| panic!("building the image: {e}")))
}

fn sh(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Store `path` in the layout's blob store; returns (digest, size).
fn add_blob(layout: &Path, path: &Path) -> Result<(String, u64), String> {
    let sum = sh(Command::new("sha256sum").arg(path))?;
    let hex = sum
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    if hex.len() != 64 {
        return Err(format!("sha256sum {}: {sum:?}", path.display()));
    }
    let size = fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let dst = layout.join("blobs/sha256").join(&hex);
    fs::copy(path, &dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    Ok((format!("sha256:{hex}"), size))
}

/// Kept next to the rootfs template it is made from and reused, like it.
fn build_image() -> Result<Image, String> {
    let template = common::rootfs_template();
    let name = template
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let final_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("image-{name}"));
    let image = |dir: &Path| Image {
        layer: dir.join("layer.tar"),
        oci_archive: dir.join("busybox-oci.tar"),
        docker_archive: dir.join("busybox-docker.tar"),
        pause_oci_archive: dir.join("pause-oci.tar"),
    };
    let complete = |i: &Image| {
        [
            &i.layer,
            &i.oci_archive,
            &i.docker_archive,
            &i.pause_oci_archive,
        ]
        .iter()
        .all(|p| p.is_file())
    };
    if complete(&image(&final_dir)) {
        return Ok(image(&final_dir));
    }
    let dir = final_dir.with_extension(format!("tmp{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    build_image_in(&dir, template)?;
    // An older, incomplete image dir (from before an archive was added).
    let _ = fs::remove_dir_all(&final_dir);
    if fs::rename(&dir, &final_dir).is_err() {
        let _ = fs::remove_dir_all(&dir);
    }
    Ok(image(&final_dir))
}

fn build_image_in(dir: &Path, template: &Path) -> Result<(), String> {
    let layer = dir.join("layer.tar");
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    tar_dir(template, &layer)?;
    let layout = dir.join("oci");
    write_layout(
        &layout,
        &layer,
        json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "WorkingDir": "/"}),
        CTR_IMAGE,
        DOCKER_IMAGE,
    )?;
    pack(
        &layout,
        &["oci-layout", "index.json", "blobs"],
        &dir.join("busybox-oci.tar"),
    )?;
    pack(
        &layout,
        &["manifest.json", "blobs"],
        &dir.join("busybox-docker.tar"),
    )?;

    // The pause image: just the static busybox, sleeping until killed.
    let pause_root = dir.join("pause-rootfs");
    fs::create_dir_all(pause_root.join("bin")).map_err(|e| format!("{e}"))?;
    let bb = pause_root.join("bin/busybox");
    fs::copy(template.join("bin/busybox"), &bb).map_err(|e| format!("{}: {e}", bb.display()))?;
    let pause_layer = dir.join("pause-layer.tar");
    tar_dir(&pause_root, &pause_layer)?;
    let pause_layout = dir.join("pause-oci");
    write_layout(
        &pause_layout,
        &pause_layer,
        json!({"Entrypoint": ["/bin/busybox", "sleep", "2147483647"], "WorkingDir": "/"}),
        PAUSE_IMAGE,
        "runway-test-pause:latest",
    )?;
    pack(
        &pause_layout,
        &["oci-layout", "index.json", "blobs"],
        &dir.join("pause-oci.tar"),
    )?;
    Ok(())
}

/// One uncompressed tar layer of `root`, owned by root.
fn tar_dir(root: &Path, dst: &Path) -> Result<(), String> {
    sh(Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(root)
        .arg("-cf")
        .arg(dst)
        .arg("."))?;
    Ok(())
}

fn pack(layout: &Path, members: &[&str], dst: &Path) -> Result<(), String> {
    sh(Command::new("tar")
        .arg("-C")
        .arg(layout)
        .arg("-cf")
        .arg(dst)
        .args(members))?;
    Ok(())
}

/// An OCI image layout in `layout` with one layer and the given runtime
/// config, named `ctr_name` for containerd; plus docker's manifest.json
/// (pointing at the same blobs) naming it `docker_name`.
fn write_layout(
    layout: &Path,
    layer: &Path,
    runtime_config: serde_json::Value,
    ctr_name: &str,
    docker_name: &str,
) -> Result<(), String> {
    fs::create_dir_all(layout.join("blobs/sha256")).map_err(|e| format!("{e}"))?;
    let (layer_digest, layer_size) = add_blob(layout, layer)?;
    let dir = layout.parent().unwrap_or(layout);
    let stem = layout
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let write = |name: &str, v: serde_json::Value| -> Result<PathBuf, String> {
        let p = dir.join(format!("{stem}-{name}"));
        fs::write(&p, v.to_string()).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    };
    // An uncompressed layer's diff id is its own digest.
    let config = write(
        "config.json",
        json!({
            "architecture": "amd64",
            "os": "linux",
            "config": runtime_config,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }),
    )?;
    let (config_digest, config_size) = add_blob(layout, &config)?;
    let manifest = write(
        "manifest.json",
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest, "size": config_size,
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest, "size": layer_size,
            }],
        }),
    )?;
    let (manifest_digest, manifest_size) = add_blob(layout, &manifest)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {
                "io.containerd.image.name": ctr_name,
                "org.opencontainers.image.ref.name": "latest",
            },
        }],
    });
    fs::write(layout.join("index.json"), index.to_string()).map_err(|e| format!("{e}"))?;
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(|e| format!("{e}"))?;
    // docker load (20.10) reads only manifest.json; its paths may point
    // anywhere in the archive, so the OCI blobs serve both.
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let docker_manifest = json!([{
        "Config": blob(&config_digest),
        "RepoTags": [docker_name],
        "Layers": [blob(&layer_digest)],
    }]);
    fs::write(layout.join("manifest.json"), docker_manifest.to_string())
        .map_err(|e| format!("{e}"))?;
    Ok(())
}

// ---------------------------------------------------------------- running

/// Run `cmd` with stdin from /dev/null and output in files (a daemonized
/// conmon or shim may inherit them; a pipe would then never close). On
/// timeout the command is killed and the result has code -1.
pub fn run(mut cmd: Command, scratch: &Path, timeout: Duration) -> Out {
    let n = next_seq();
    let (out_path, err_path) = (
        scratch.join(format!(".out.{n}")),
        scratch.join(format!(".err.{n}")),
    );
    let args: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let failed = |why: String| Out {
        args: args.clone(),
        code: -1,
        stdout: String::new(),
        stderr: why,
    };
    let (Ok(out_f), Ok(err_f)) = (fs::File::create(&out_path), fs::File::create(&err_path)) else {
        return failed(format!(
            "cannot create output files in {}",
            scratch.display()
        ));
    };
    cmd.stdin(Stdio::null()).stdout(out_f).stderr(err_f);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("spawn: {e}")),
    };
    let code = wait_child(&mut child, timeout);
    let read = |p: &Path| {
        let s = fs::read(p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let _ = fs::remove_file(p);
        s
    };
    let (stdout, mut stderr) = (read(&out_path), read(&err_path));
    if code.is_none() {
        stderr.push_str(&format!("\n[timed out after {timeout:?}; killed]"));
    }
    Out {
        args,
        code: code.unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// Wait up to `timeout` (then kill); Some(code, 128+N on signal N).
fn wait_child(child: &mut std::process::Child, timeout: Duration) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)))
            }
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// What a scenario returns: Err says what went wrong, with the command.
pub type Check = Result<(), String>;

/// A named scenario run against engine `E`.
pub type Scenario<E> = (&'static str, fn(&E) -> Check);

/// Ok when the command exited with `code`.
pub fn expect_code(out: &Out, code: i32) -> Result<&Out, String> {
    if out.code == code {
        Ok(out)
    } else {
        Err(format!("expected exit {code}:\n{out}"))
    }
}

pub fn expect_ok(out: &Out) -> Result<&Out, String> {
    expect_code(out, 0)
}

pub fn ensure(cond: bool, what: impl FnOnce() -> String) -> Check {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

pub use crate::common::extra::poll;

// -------------------------------------------------------------- terminals

/// Run `cmd` on a new pseudo-terminal as its controlling tty (what a user
/// typing `podman run -it` has). Waits for `ready` in the output, types
/// `input`, reads until `until`, then waits for the exit. Returns the exit
/// code (-1 on timeout) and everything the terminal showed. Typed scripts
/// sleep a moment before exiting: the engine's copy of the terminal output
/// can lose what is still in flight when the process exits (seen with ctr
/// and runc in CI).
pub fn on_pty(mut cmd: Command, ready: &str, input: &str, until: &str) -> (i32, String) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master: OwnedFd = match openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY) {
        Ok(m) => m,
        Err(e) => return (-1, format!("openpt: {e}")),
    };
    let name = match grantpt(&master)
        .and_then(|_| unlockpt(&master))
        .and_then(|_| ptsname(&master, Vec::new()))
    {
        Ok(n) => PathBuf::from(n.to_string_lossy().into_owned()),
        Err(e) => return (-1, format!("pty slave: {e}")),
    };
    let open_slave = || fs::OpenOptions::new().read(true).write(true).open(&name);
    let (Ok(s0), Ok(s1), Ok(s2)) = (open_slave(), open_slave(), open_slave()) else {
        return (-1, format!("open {}", name.display()));
    };
    cmd.stdin(s0).stdout(s1).stderr(s2);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (-1, format!("spawn {cmd:?}: {e}")),
    };
    // Our copies of the slave must go, or the master never sees EOF.
    drop(cmd);
    let fd = master.as_raw_fd();
    let mut seen = crate::common::extra::read_until(fd, ready, Duration::from_secs(20));
    if seen.contains(ready) {
        crate::common::extra::write_fd(fd, input);
        seen.push_str(&crate::common::extra::read_until(
            fd,
            until,
            Duration::from_secs(20),
        ));
    }
    let code = wait_child(&mut child, Duration::from_secs(20)).unwrap_or(-1);
    (code, seen)
}

// --------------------------------------------------------------- leftovers

/// Live processes whose command line contains any of `needles`.
pub fn processes_mentioning(needles: &[&str]) -> Vec<String> {
    common::live_pids()
        .into_iter()
        .filter_map(|p| {
            let cmd = fs::read(format!("/proc/{p}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            needles
                .iter()
                .any(|n| !n.is_empty() && cmd.contains(n))
                .then(|| format!("pid {p}: {}", cmd.trim()))
        })
        .collect()
}

/// Live processes in a cgroup with a path component in `names`.
pub fn processes_in_cgroups(names: &[&str]) -> Vec<String> {
    common::live_pids()
        .into_iter()
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/cgroup")).is_ok_and(|t| {
                t.lines().any(|l| {
                    l.splitn(3, ':')
                        .nth(2)
                        .is_some_and(|path| path.split('/').any(|c| names.contains(&c)))
                })
            })
        })
        .map(|p| format!("pid {p} in a cgroup named one of {names:?}"))
        .collect()
}

/// Detach every mount under `dir`, deepest first (a failed test's engine
/// may have left its overlay and shm mounts).
pub fn unmount_under(dir: &Path) {
    let mut mounts = common::mount_points_under(dir);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        if let Ok(c) = std::ffi::CString::new(m) {
            // SAFETY: c is a valid NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// SIGKILL every process in the cgroup `rel` and below, in every
/// hierarchy, until none is left (up to a second): container processes a
/// failed test's killed shims left behind.
pub fn kill_cgroup_tree(rel: &str) {
    fn pids(dir: &Path, out: &mut Vec<i32>) {
        if let Ok(t) = fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                pids(&e.path(), out);
            }
        }
    }
    for _ in 0..20 {
        let mut found = Vec::new();
        for h in fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let d = h.path().join(rel);
            if d.is_dir() {
                pids(&d, &mut found);
            }
        }
        found.sort_unstable();
        found.dedup();
        if found.is_empty() {
            return;
        }
        for p in found {
            // SAFETY: kill(2) on a process in a cgroup only our test made.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Remove the directory `name` (and, first, its subdirectories) from every
/// cgroup hierarchy, where it is empty of processes; for the parents the
/// engines create and never remove.
pub fn remove_cgroup_tree(rel: &str) {
    fn rm(dir: &Path) {
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rm(&e.path());
                }
            }
        }
        let _ = fs::remove_dir(dir);
    }
    if let Ok(hier) = fs::read_dir("/sys/fs/cgroup") {
        for h in hier.flatten() {
            let d = h.path().join(rel);
            if d.is_dir() {
                rm(&d);
            }
        }
    }
}

/// Remove `dir` unless something is still mounted under it (never recurse
/// into a mount: it may be a bind of a host directory).
pub fn remove_test_dir(dir: &Path) {
    if std::env::var_os("RUNWAY_TEST_KEEP").is_some() {
        note(&format!("kept {}", dir.display()));
        return;
    }
    unmount_under(dir);
    if common::mount_points_under(dir).is_empty() {
        let _ = fs::remove_dir_all(dir);
    } else {
        note(&format!(
            "warning: mounts remain under {}; not removing it",
            dir.display()
        ));
    }
}

// ------------------------------------------------ daemons the tier starts

/// Stop a daemon the tier started (SIGTERM, then SIGKILL after `grace`)
/// and reap it. Returns whether there was one.
pub fn stop_child(slot: &mut Option<std::process::Child>, grace: Duration) -> bool {
    let Some(mut d) = slot.take() else {
        return false;
    };
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
    if !poll(grace, || matches!(d.try_wait(), Ok(Some(_)))) {
        let _ = d.kill();
    }
    let _ = d.wait();
    true
}

/// Whether a `processes_mentioning` line is `child`'s own.
pub fn is_line_of(child: Option<&std::process::Child>, line: &str) -> bool {
    child.is_some_and(|d| line.starts_with(&format!("pid {}:", d.id())))
}

/// What a test's private directory must not have once its containers are
/// gone: processes naming it (other than the daemon's, which
/// `is_daemon` picks out) and mounts under it (other than those `keep`
/// allows).
pub fn dir_leftovers(
    dir: &Path,
    is_daemon: impl Fn(&str) -> bool,
    keep: impl Fn(&str) -> bool,
) -> Vec<String> {
    // With the slash: one test dir name is a prefix of another's.
    let named = format!("{}/", dir.display());
    let mut found: Vec<String> = processes_mentioning(&[&named])
        .into_iter()
        .filter(|p| !is_daemon(p))
        .map(|p| format!("process left: {p}"))
        .collect();
    found.extend(
        common::mount_points_under(dir)
            .into_iter()
            .filter(|m| !keep(m))
            .map(|m| format!("mount left: {m}")),
    );
    found
}

/// What containerd (through `ctr`) still lists; empty when nothing.
pub fn ctr_leftovers(ctr: impl Fn(&[&str]) -> Out) -> Vec<String> {
    let mut found = Vec::new();
    for what in [["container", "ls", "-q"], ["task", "ls", "-q"]] {
        let out = ctr(&what);
        if !out.ok() || !out.stdout.trim().is_empty() {
            found.push(format!("containerd still lists:\n{out}"));
        }
    }
    found
}

/// Force away every container containerd still has, through `ctr`.
pub fn ctr_remove_all(ctr: impl Fn(&[&str]) -> Out) {
    let ids = ctr(&["container", "ls", "-q"]).stdout;
    for id in ids.split_whitespace() {
        let _ = ctr(&["task", "kill", "-a", "-s", "SIGKILL", id]);
        let _ = ctr(&["task", "delete", "-f", id]);
        let _ = ctr(&["container", "rm", id]);
    }
}

/// After the daemon is stopped: SIGKILL what still names `dir` (shims and
/// the containerd a killed dockerd started outlive it), then kill what is
/// left in the cgroup parent, unmount, and remove the cgroups and `dir`.
pub fn teardown(dir: &Path, cgroup_parent: &str) {
    let named = format!("{}/", dir.display());
    for _ in 0..40 {
        let ours: Vec<i32> = common::live_pids()
            .into_iter()
            .filter(|p| {
                fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&named))
            })
            .collect();
        if ours.is_empty() {
            break;
        }
        for p in ours {
            // SAFETY: kill(2) on a process naming our private directory.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_cgroup_tree(cgroup_parent);
    unmount_under(dir);
    remove_cgroup_tree(cgroup_parent);
    remove_test_dir(dir);
}

/// What the end of a tier needs of an engine.
pub trait Engine {
    /// Everything the engine and the runtime left (daemon still up).
    fn leftovers(&self) -> Vec<String>;
    /// Stop the daemon the tier started (if still running); false for an
    /// engine that starts none.
    fn stop_daemon(&mut self) -> bool {
        false
    }
    /// What must not outlive the daemon, once it is stopped.
    fn system_leftovers(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The end of every tier: leftovers with the daemon up, then (if there
/// were none) without it, then the engine's own cleanup (Drop), then one
/// failure listing everything that went wrong. After a failure the daemon
/// stays up for Drop to clean up through.
pub fn conclude<E: Engine>(test: &str, mut engine: E, mut failed: Vec<String>) {
    // Exiting containers, conmon and shims go asynchronously.
    let mut left = Vec::new();
    poll(Duration::from_secs(5), || {
        left = engine.leftovers();
        left.is_empty()
    });
    if left.is_empty() && engine.stop_daemon() {
        poll(Duration::from_secs(5), || {
            left = engine.system_leftovers();
            left.is_empty()
        });
    }
    if !left.is_empty() {
        failed.push(format!("leftovers:\n  {}", left.join("\n  ")));
    }
    drop(engine);
    assert!(
        failed.is_empty(),
        "{test}: {} failure(s):\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Run every scenario and report each; returns the failures.
pub fn run_scenarios<E>(label: &str, engine: &E, scenarios: &[Scenario<E>]) -> Vec<String> {
    let started = Instant::now();
    let mut failed = Vec::new();
    for (name, f) in scenarios {
        let t = Instant::now();
        match f(engine) {
            Ok(()) => note(&format!(
                "  {label}: {name}: ok ({:.1}s)",
                t.elapsed().as_secs_f64()
            )),
            Err(e) => {
                note(&format!("  {label}: {name}: FAILED\n{e}"));
                failed.push(format!("{name}: {e}"));
            }
        }
    }
    note(&format!(
        "{label}: {}/{} scenarios passed in {:.1}s",
        scenarios.len() - failed.len(),
        scenarios.len(),
        started.elapsed().as_secs_f64()
    ));
    failed
}
