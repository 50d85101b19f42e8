//! The containers tests' harness: one `Rw` per test (its own `--root` and
//! `--data-root` under /tmp, images imported from OCI layouts built by
//! tests/common/oci.rs, every container removed and every trace checked on
//! drop) and one `Pm` (a private podman storage loaded with the same
//! layouts, runc as its runtime, `--network none`).

use crate::common::extra::pids_with_cmdline;
use crate::common::oci::{Image, Layout};
use crate::common::{cgroup_dirs_named, mounts_under, note, runtime, Out};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Upper bound for one command; a hang fails the test instead of the suite.
pub const TIMEOUT: Duration = Duration::from_secs(40);

/// Poll `f` every 20 ms until true or `timeout`.
pub fn poll(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Runs `cmd` with stdin from /dev/null and stdout/stderr into files under
/// `scratch` (files, not pipes: a monitor forked by `run -d` inherits them
/// and would hold a pipe open); kills it after `timeout`.
pub fn run_cmd(mut cmd: Command, scratch: &Path, timeout: Duration) -> Out {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let (op, ep) = (
        scratch.join(format!("out.{n}")),
        scratch.join(format!("err.{n}")),
    );
    let args: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&op).unwrap())
        .stderr(fs::File::create(&ep).unwrap());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {args:?}: {e}"));
    let code = wait_child(&mut child, timeout);
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    let out = Out {
        args,
        code: code.unwrap_or(-1),
        stdout: read(&op),
        stderr: read(&ep),
    };
    let _ = fs::remove_file(&op);
    let _ = fs::remove_file(&ep);
    assert!(code.is_some(), "timed out after {timeout:?}:\n{out}");
    out
}

/// Waits up to `timeout` for `child`; kills it on timeout (None).
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(exit_code(st)),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return None,
        }
    }
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The entries of `dir`, sorted (none when it does not exist).
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Detaches every mount at or below `dir`, deepest first.
pub fn unmount_all_under(dir: &Path) {
    for _ in 0..3 {
        let mut points: Vec<String> = crate::common::mount_points_under(dir);
        if points.is_empty() {
            return;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = rustix::mount::unmount(p.as_str(), rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// Live processes in a cgroup whose path mentions one of `ids`.
fn processes_in(ids: &BTreeSet<String>) -> Vec<i32> {
    crate::common::live_pids()
        .into_iter()
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/cgroup"))
                .map(|c| ids.iter().any(|id| c.contains(id.as_str())))
                .unwrap_or(false)
        })
        .collect()
}

/// A network namespace of the test's own, held by a sleeping child, with
/// loopback up: every runway command of an `Rw` runs in it, so that the
/// default network's bridge, firewall table and DNS server never touch the
/// machine's own network.
pub struct NetnsHolder {
    child: Child,
    pub path: String,
}

impl NetnsHolder {
    pub fn new() -> NetnsHolder {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new("sleep");
        c.arg("100000").stdin(Stdio::null());
        // SAFETY: only raw syscalls between fork and exec.
        unsafe {
            c.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                lo_up()
            });
        }
        let child = c.spawn().expect("spawn the netns holder");
        let path = format!("/proc/{}/ns/net", child.id());
        NetnsHolder { child, path }
    }
}

/// `ip link set lo up` by ioctl: async-signal-safe, no tool needed.
fn lo_up() -> std::io::Result<()> {
    // SAFETY: a socket and two ioctls on a zeroed ifreq we own.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as libc::c_char;
        ifr.ifr_name[1] = b'o' as libc::c_char;
        let ok = libc::ioctl(s, libc::SIOCGIFFLAGS as _, &mut ifr) == 0 && {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(s, libc::SIOCSIFFLAGS as _, &ifr) == 0
        };
        libc::close(s);
        if ok {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

impl Drop for NetnsHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Puts `c` into the namespace at `ns` (a /proc/PID/ns/net) before exec.
pub fn in_netns(c: &mut Command, ns: &str) {
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let fd: OwnedFd = fs::File::open(ns).expect("open the test's netns").into();
    // SAFETY: setns(2) on an fd the closure owns; nothing else runs.
    unsafe {
        c.pre_exec(move || {
            if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// One test's runway: its own `--root` and `--data-root`, in a network
/// namespace of its own.
pub struct Rw {
    pub base: PathBuf,
    pub root: PathBuf,
    pub data: PathBuf,
    pub netns: NetnsHolder,
    scratch: PathBuf,
    /// Every container id ever seen, for the cgroup and process checks.
    seen: RefCell<BTreeSet<String>>,
}

impl Rw {
    pub fn new(name: &str) -> Rw {
        // Short paths: the overlay's lowerdir option has a page to fit in.
        let base = PathBuf::from(format!(
            "/tmp/rwc-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            &name[..name.len().min(12)]
        ));
        let _ = fs::remove_dir_all(&base);
        let rw = Rw {
            root: base.join("root"),
            data: base.join("data"),
            netns: NetnsHolder::new(),
            scratch: base.join("scratch"),
            base,
            seen: RefCell::new(BTreeSet::new()),
        };
        fs::create_dir_all(&rw.scratch).unwrap();
        rw
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.base.join(p)
    }

    /// `runway --root R --data-root D` + `args`, as a Command.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(runtime());
        c.arg("--root")
            .arg(&self.root)
            .arg("--data-root")
            .arg(&self.data)
            .args(args);
        in_netns(&mut c, &self.netns.path);
        c
    }

    pub fn rw(&self, args: &[&str]) -> Out {
        let o = run_cmd(self.command(args), &self.scratch, TIMEOUT);
        self.note_ids();
        o
    }

    pub fn ok(&self, args: &[&str]) -> Out {
        let o = self.rw(args);
        assert!(o.code == 0, "expected success:\n{o}");
        o
    }

    /// Expects exit `code` and returns the output.
    pub fn code(&self, code: i32, args: &[&str]) -> Out {
        let o = self.rw(args);
        assert!(o.code == code, "expected exit {code}:\n{o}");
        o
    }

    /// Records the container ids now on disk.
    pub fn note_ids(&self) {
        let mut s = self.seen.borrow_mut();
        for n in names_in(&self.data.join("containers"))
            .into_iter()
            .chain(names_in(&self.root))
        {
            if is_id(&n) {
                s.insert(n);
            }
        }
    }

    /// Builds a layout of `img` and imports it as `name`; returns the
    /// layout's directory (for podman).
    pub fn import(&self, img: &Image, name: &str) -> PathBuf {
        let dir = self.path(&format!("layout-{}", name.replace([':', '/'], "-")));
        let mut l = Layout::create(&dir);
        l.add_image("latest", img);
        self.ok(&["image", "import", dir.to_str().unwrap(), name]);
        dir
    }

    /// Container ids under the data root.
    pub fn ids(&self) -> Vec<String> {
        self.note_ids();
        names_in(&self.data.join("containers"))
    }

    /// `container inspect C`'s one object.
    pub fn inspect(&self, c: &str) -> Value {
        let o = self.ok(&["container", "inspect", c]);
        let v: Value =
            serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("inspect JSON: {e}\n{o}"));
        match v {
            Value::Array(mut a) if a.len() == 1 => a.remove(0),
            other => panic!("inspect {c}: not one object: {other}"),
        }
    }

    /// `State.Status` by inspect (None when inspect fails).
    pub fn status(&self, c: &str) -> Option<String> {
        let o = self.rw(&["container", "inspect", c]);
        if o.code != 0 {
            return None;
        }
        let v: Value = serde_json::from_str(&o.stdout).ok()?;
        v[0]["State"]["Status"].as_str().map(str::to_string)
    }

    pub fn wait_status(&self, c: &str, want: &str, timeout: Duration) {
        let mut last = None;
        let ok = poll(timeout, || {
            last = self.status(c);
            last.as_deref() == Some(want)
        });
        assert!(
            ok,
            "{c}: status {last:?}, wanted {want:?} within {timeout:?}"
        );
    }

    /// The container's `state.json` (its monitor's record).
    pub fn state_json(&self, id: &str) -> Value {
        let p = self.data.join("containers").join(id).join("state.json");
        serde_json::from_slice(&fs::read(&p).unwrap_or_default()).unwrap_or(Value::Null)
    }

    /// `logs C`: stdout and stderr together.
    pub fn logs(&self, c: &str) -> String {
        let o = self.ok(&["logs", c]);
        format!("{}{}", o.stdout, o.stderr)
    }

    /// Every trace of a container: dirs, names, OCI state, mounts, cgroups,
    /// processes (monitors carry the base path in their command line).
    pub fn leftovers(&self) -> Vec<String> {
        self.note_ids();
        let mut left = Vec::new();
        for n in names_in(&self.data.join("containers")) {
            left.push(format!("container dir {n}"));
        }
        for n in names_in(&self.data.join("names")) {
            if n != ".lock" {
                left.push(format!("name {n}"));
            }
        }
        for n in names_in(&self.root) {
            left.push(format!("OCI state {}", self.root.join(n).display()));
        }
        // podman's own storage (its overlay dir's private mount) is Pm's.
        let podman = self.base.join("podman");
        for m in mounts_under(&self.base) {
            if !m.starts_with(podman.to_str().unwrap()) {
                left.push(format!("mount {m}"));
            }
        }
        let seen = self.seen.borrow().clone();
        let ids: Vec<&str> = seen.iter().map(String::as_str).collect();
        for c in cgroup_dirs_named(&ids) {
            left.push(format!("cgroup {}", c.display()));
        }
        for p in pids_with_cmdline(self.base.to_str().unwrap()) {
            left.push(format!("process {p} (runway of this test)"));
        }
        for p in processes_in(&seen) {
            left.push(format!("process {p} in a container's cgroup"));
        }
        left
    }

    /// Nothing left within a few seconds (processes and cgroups vanish
    /// asynchronously).
    pub fn assert_clean(&self) {
        let mut left = Vec::new();
        poll(Duration::from_secs(5), || {
            left = self.leftovers();
            left.is_empty()
        });
        assert!(left.is_empty(), "leftovers: {left:#?}");
    }

    /// rm -f every container, then check.
    pub fn rm_all_and_check(&self) {
        for id in self.ids() {
            self.ok(&["rm", "-f", &id]);
        }
        self.assert_clean();
    }
}

impl Drop for Rw {
    fn drop(&mut self) {
        for id in self.ids() {
            let _ = run_cmd(
                self.command(&["rm", "-f", &id]),
                &self.scratch,
                Duration::from_secs(20),
            );
        }
        // What a failed test may have left: processes, mounts, cgroups.
        let seen = self.seen.borrow().clone();
        for p in pids_with_cmdline(self.base.to_str().unwrap())
            .into_iter()
            .chain(processes_in(&seen))
        {
            // SAFETY: kill(2) of a process this test started.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
        unmount_all_under(&self.base);
        let ids: Vec<&str> = seen.iter().map(String::as_str).collect();
        poll(Duration::from_secs(3), || {
            let dirs = cgroup_dirs_named(&ids);
            for d in &dirs {
                let _ = fs::remove_dir(d);
            }
            dirs.is_empty()
        });
        if std::thread::panicking() && std::env::var_os("RUNWAY_TEST_KEEP").is_some() {
            note(&format!("kept for inspection: {}", self.base.display()));
            return;
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// podman in a private storage under the test's dir, runc as the runtime,
/// images from the same layouts.
pub struct Pm {
    dir: PathBuf,
    conf: PathBuf,
    scratch: PathBuf,
}

impl Pm {
    /// None (and a `skipped:` line) when podman is missing or unusable.
    pub fn new(rw: &Rw) -> Option<Pm> {
        let why = Self::try_new(rw);
        match why {
            Ok(p) => Some(p),
            Err(e) => {
                crate::common::skip(&format!("podman half: {e}"));
                None
            }
        }
    }

    fn try_new(rw: &Rw) -> Result<Pm, String> {
        if std::env::var_os("RUNWAY_TEST_NO_PODMAN").is_some() {
            return Err("RUNWAY_TEST_NO_PODMAN is set".into());
        }
        for tool in ["podman", "skopeo"] {
            if !Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                return Err(format!("{tool} not installed"));
            }
        }
        let runc = crate::common::runc().ok_or("no runc for podman")?;
        let dir = rw.path("podman");
        fs::create_dir_all(dir.join("tmp")).map_err(|e| e.to_string())?;
        let conf = dir.join("containers.conf");
        // podman's default ulimits are above this host's hard limit.
        let text = format!(
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\ntmp_dir = \"{d}/tmp\"\n\
             runtime = \"{runc}\"\n",
            d = dir.display(),
            runc = runc.display()
        );
        fs::write(&conf, text).map_err(|e| e.to_string())?;
        let scratch = dir.join("scratch");
        fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
        Ok(Pm { dir, conf, scratch })
    }

    fn graph(&self) -> PathBuf {
        self.dir.join("graph")
    }

    fn runroot(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &self.conf)
            .arg("--root")
            .arg(self.graph())
            .arg("--runroot")
            .arg(self.runroot())
            .arg("--storage-driver")
            .arg("overlay")
            .arg("--cgroup-manager")
            .arg("cgroupfs")
            .arg("--events-backend")
            .arg("file")
            .args(args);
        c
    }

    pub fn pm(&self, args: &[&str]) -> Out {
        run_cmd(self.command(args), &self.scratch, TIMEOUT)
    }

    /// Copies the layout's `latest` into this storage as `localhost/NAME`.
    pub fn load(&self, layout: &Path, name: &str) -> Result<(), String> {
        let dst = format!(
            "containers-storage:[overlay@{}+{}]localhost/{name}:latest",
            self.graph().display(),
            self.runroot().display()
        );
        let mut c = Command::new("skopeo");
        c.args(["copy", "-q"])
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(dst);
        let o = run_cmd(c, &self.scratch, TIMEOUT);
        if o.code != 0 {
            return Err(format!("skopeo copy failed:\n{o}"));
        }
        Ok(())
    }

    /// `podman run --network none ARGS` where ARGS name `localhost/IMAGE`.
    pub fn run(&self, flags: &[&str], image: &str, cmd: &[&str]) -> Out {
        let img = format!("localhost/{image}");
        let mut all = vec!["run", "--network", "none"];
        all.extend_from_slice(flags);
        all.push(&img);
        all.extend_from_slice(cmd);
        self.pm(&all)
    }
}

impl Drop for Pm {
    fn drop(&mut self) {
        let _ = run_cmd(
            self.command(&["rm", "-af", "-t", "0"]),
            &self.scratch,
            Duration::from_secs(30),
        );
        // conmon and podman's cleanup processes carry our dir in their
        // command lines.
        for p in pids_with_cmdline(self.dir.to_str().unwrap()) {
            // SAFETY: kill(2) of a process of this test's podman.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
        unmount_all_under(&self.dir);
        // podman's parent cgroups, which it never removes; rmdir fails
        // while another podman (another test) still uses them.
        remove_cgroup_tree("libpod_parent/conmon");
        remove_cgroup_tree("libpod_parent");
    }
}

/// Removes the empty cgroup `rel` (children first) from every hierarchy.
fn remove_cgroup_tree(rel: &str) {
    fn rm(dir: &Path) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                rm(&e.path());
            }
        }
        let _ = fs::remove_dir(dir);
    }
    for h in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let d = h.path().join(rel);
        if d.is_dir() {
            rm(&d);
        }
    }
}

/// Loads `layouts` (layout dir, name) into a new podman, or None (skipped).
pub fn podman_with(rw: &Rw, layouts: &[(&Path, &str)]) -> Option<Pm> {
    let pm = Pm::new(rw)?;
    for (dir, name) in layouts {
        if let Err(e) = pm.load(dir, name) {
            crate::common::skip(&format!("podman half: {e}"));
            return None;
        }
    }
    Some(pm)
}
