//! A qemu VM with a cgroup v2 kernel, booted once to run many runway checks.
//!
//! The dev host is cgroup v1-hybrid, so v2 behaviour is only observable in a
//! VM. The guest is a Debian 6.1 kernel plus an initramfs holding the static
//! runway under test, a static busybox, and one directory per check (a
//! `run.sh` and its bundles). `/init` (tests/vm/init.sh) runs the checks and
//! prints `RUNWAY-CHECK <name> PASS|FAIL <detail>` lines on the serial
//! console, which this module collects.
//!
//! Nothing is installed at test time: when qemu, cpio, a static busybox or
//! the kernel cannot be found (the kernel is fetched with apt-get download
//! when apt is usable), `Vm::find` says why and the caller skips.
//!
//! Adding a check: a script in tests/vm/checks/ printing its results with
//! `pass NAME detail` / `fail NAME detail` (see tests/vm/vmcheck.sh), a
//! `Check::new(..).bundle("b", config(..))` entry in tests/vm.rs, and its
//! result names in one of the #[test] groups there. Names are unique; a
//! script runs with its check directory (holding its bundles) as cwd.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One check: a shell script sourced by the VM's /init with the helpers of
/// tests/vm/vmcheck.sh, run in its own directory next to its bundles.
pub struct Check {
    pub name: String,
    pub script: String,
    /// (directory under the check dir, config.json)
    pub bundles: Vec<(String, Value)>,
    /// Run before switch_root, on the initramfs itself (no pivot_root).
    pub on_rootfs: bool,
    pub timeout_s: u32,
}

impl Check {
    pub fn new(name: &str, script: &str) -> Check {
        Check {
            name: name.to_string(),
            script: script.to_string(),
            bundles: Vec::new(),
            on_rootfs: false,
            timeout_s: 30,
        }
    }
    pub fn bundle(mut self, dir: &str, config: Value) -> Check {
        self.bundles.push((dir.to_string(), config));
        self
    }
    pub fn on_rootfs(mut self) -> Check {
        self.on_rootfs = true;
        self
    }
    pub fn timeout(mut self, secs: u32) -> Check {
        self.timeout_s = secs;
        self
    }
}

/// Where check number `index` (0-based, in the order given to `Vm::run`)
/// lives inside the guest; bundles can bind-mount it (e.g. as /check).
pub fn guest_dir(checks: &[Check], index: usize) -> String {
    let c = &checks[index];
    let top = if c.on_rootfs {
        "checks-rootfs"
    } else {
        "checks"
    };
    format!("/{top}/{:02}-{}", index + 1, c.name)
}

#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: String,
    pub pass: bool,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub results: Vec<CheckResult>,
    /// The guest printed RUNWAY-VM-BOOTED (the kernel ran our /init).
    pub booted: bool,
    /// The guest printed RUNWAY-VM-DONE: every check ran.
    pub done: bool,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// Why the VM could not run at all (build or spawn failure).
    pub error: Option<String>,
    /// Where the console of this run was kept.
    pub log_path: Option<PathBuf>,
    pub console: String,
}

impl Outcome {
    /// Every result line for `name` (a check may report a name twice).
    pub fn get(&self, name: &str) -> Vec<&CheckResult> {
        self.results.iter().filter(|r| r.name == name).collect()
    }

    /// One line per expected name that did not pass, and one per failed
    /// result of a check script itself (timeouts, crashes).
    pub fn failures(&self, names: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.error {
            out.push(format!("vm: {e}"));
        }
        for n in names {
            let rs = self.get(n);
            if rs.is_empty() {
                out.push(format!("{n}: MISSING (no result line)"));
            }
            for r in rs.iter().filter(|r| !r.pass) {
                out.push(format!("{n}: FAIL {}", r.detail));
            }
        }
        out
    }

    /// A readable summary of the run for a failing assertion.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "vm: booted={} done={} timed_out={} elapsed={:.1}s",
            self.booted,
            self.done,
            self.timed_out,
            self.elapsed.as_secs_f64()
        );
        for r in &self.results {
            let v = if r.pass { "PASS" } else { "FAIL" };
            let _ = writeln!(s, "  {} {v} {}", r.name, r.detail);
        }
        if !self.done {
            let tail: Vec<&str> = self.console.lines().rev().take(40).collect();
            let _ = writeln!(s, "console tail:");
            for l in tail.iter().rev() {
                let _ = writeln!(s, "  > {l}");
            }
        }
        s
    }

    /// Panic with every failure listed unless all `names` passed. The full
    /// table is printed once by whoever booted the VM, so keep this short.
    pub fn assert_pass(&self, group: &str, names: &[&str]) {
        let mut f = self.failures(names);
        if !self.done {
            f.push(format!(
                "vm: did not finish (booted={} timed_out={}); console in {}",
                self.booted,
                self.timed_out,
                self.log_path
                    .as_deref()
                    .map_or("(not kept)".into(), |p| p.display().to_string())
            ));
        }
        if !f.is_empty() {
            panic!(
                "VM checks of group {group}: {} failing\n{}",
                f.len(),
                f.join("\n")
            );
        }
    }
}

/// Everything needed to boot the guest, all found on the host.
pub struct Vm {
    pub qemu: PathBuf,
    pub kernel: PathBuf,
    pub busybox: PathBuf,
    pub runway: PathBuf,
    /// RUNWAY_VM_RUNTIME: a reference runtime (e.g. /usr/sbin/runc) run in
    /// runway's place, with its shared libraries, to check the checks.
    pub reference: Option<PathBuf>,
    scripts: PathBuf,
    work_root: PathBuf,
    timeout: Duration,
}

/// Print a line that `cargo test` shows even for passing tests (the test
/// harness only captures the print! macros).
pub fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// True when RUNWAY_VM_REQUIRE is set: a missing tool fails instead of
/// skipping (for CI, where the tools are installed on purpose).
pub fn required() -> bool {
    std::env::var_os("RUNWAY_VM_REQUIRE").is_some_and(|v| !v.is_empty() && v != "0")
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// An ELF without PT_INTERP needs no dynamic loader, so it runs in the bare
/// initramfs.
fn is_static_elf(path: &Path) -> Result<bool, String> {
    let b = fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return Err(format!(
            "{}: not a 64-bit little-endian ELF",
            path.display()
        ));
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > b.len() {
            return Err(format!("{}: truncated program headers", path.display()));
        }
        if u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) == 3 {
            return Ok(false);
        }
    }
    Ok(true)
}

fn target_tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// <target dir>/vm-cache unless RUNWAY_VM_CACHE, so fetch-kernel.sh's
/// default (target/vm-cache) and the test agree. CARGO_TARGET_TMPDIR is
/// <target>/<triple>/tmp when a build target is configured (ours is), else
/// <target>/tmp; both levels carry cargo's CACHEDIR.TAG, so take the
/// outermost of the two.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RUNWAY_VM_CACHE") {
        return PathBuf::from(d);
    }
    let tmp = target_tmp();
    let target = tmp
        .ancestors()
        .skip(1)
        .take(2)
        .filter(|d| d.join("CACHEDIR.TAG").is_file())
        .last()
        .or(tmp.parent())
        .unwrap_or(&tmp)
        .to_path_buf();
    target.join("vm-cache")
}

impl Vm {
    /// Find qemu, cpio, a static busybox, the kernel (fetching it into the
    /// cache with tests/vm/fetch-kernel.sh when apt can) and the runway
    /// binary under test. `Err` is the reason to skip.
    pub fn find(runway: &Path) -> Result<Vm, String> {
        if std::env::consts::ARCH != "x86_64" {
            return Err(format!(
                "host is {}, the VM is x86_64",
                std::env::consts::ARCH
            ));
        }
        let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vm");
        let qemu = match std::env::var_os("RUNWAY_VM_QEMU") {
            Some(q) if Path::new(&q).is_file() => PathBuf::from(q),
            Some(q) => return Err(format!("RUNWAY_VM_QEMU={} not found", q.to_string_lossy())),
            None => which("qemu-system-x86_64").ok_or(
                "qemu-system-x86_64 not found (apt-get install --no-install-recommends qemu-system-x86)",
            )?,
        };
        which("cpio").ok_or("cpio not found (apt-get install cpio)")?;
        let busybox = match std::env::var_os("RUNWAY_VM_BUSYBOX") {
            Some(b) => PathBuf::from(b),
            None => ["/bin/busybox", "/usr/bin/busybox"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
                .or_else(|| which("busybox"))
                .ok_or("busybox not found (apt-get install busybox-static)")?,
        };
        if !is_static_elf(&busybox)? {
            return Err(format!(
                "{} is dynamically linked (apt-get install busybox-static)",
                busybox.display()
            ));
        }
        if !runway.is_file() {
            return Err(format!("runway binary {} not found", runway.display()));
        }
        if !is_static_elf(runway)? {
            return Err(format!("{} is not static", runway.display()));
        }
        let kernel = match std::env::var_os("RUNWAY_VM_KERNEL") {
            Some(k) if Path::new(&k).is_file() => PathBuf::from(k),
            Some(k) => {
                return Err(format!(
                    "RUNWAY_VM_KERNEL={} not found",
                    k.to_string_lossy()
                ))
            }
            None => fetch_kernel(&scripts)?,
        };
        let reference = match std::env::var_os("RUNWAY_VM_RUNTIME") {
            Some(r) if Path::new(&r).is_file() => Some(PathBuf::from(r)),
            Some(r) => {
                return Err(format!(
                    "RUNWAY_VM_RUNTIME={} not found",
                    r.to_string_lossy()
                ))
            }
            None => None,
        };
        let timeout = std::env::var("RUNWAY_VM_TIMEOUT")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(120);
        Ok(Vm {
            qemu,
            kernel,
            busybox,
            runway: runway.to_path_buf(),
            reference,
            scripts,
            work_root: target_tmp(),
            timeout: Duration::from_secs(timeout),
        })
    }

    /// Build the initramfs with `checks`, boot once, collect the results.
    /// Temporary files are removed whatever happens; the console log is
    /// kept as target/tmp/vm-console.log for post-mortems.
    pub fn run(&self, checks: &[Check]) -> Outcome {
        remove_stale_work_dirs(&self.work_root);
        let start = Instant::now();
        let work = self.work_root.join(format!(
            "vm-{}-{}",
            std::process::id(),
            start.elapsed().as_nanos()
        ));
        let _guard = RemoveOnDrop(work.clone());
        let mut out = match self.run_in(&work, checks) {
            Ok(o) => o,
            Err(e) => Outcome {
                error: Some(e),
                ..Outcome::default()
            },
        };
        out.elapsed = start.elapsed();
        let log = self.work_root.join("vm-console.log");
        if fs::write(&log, &out.console).is_ok() {
            out.log_path = Some(log);
        }
        out
    }

    fn run_in(&self, work: &Path, checks: &[Check]) -> Result<Outcome, String> {
        let tree = work.join("tree");
        write_checks(&tree, checks)?;
        if let Some(r) = &self.reference {
            add_reference_runtime(&tree, r)?;
        }
        let initrd = work.join("initrd.cpio");
        let st = Command::new("sh")
            .arg(self.scripts.join("build-initramfs.sh"))
            .args([&initrd, &self.runway, &self.busybox, &tree])
            .env("TMPDIR", work)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run build-initramfs.sh: {e}"))?;
        if !st.status.success() {
            return Err(format!(
                "build-initramfs.sh: {}: {}",
                st.status,
                String::from_utf8_lossy(&st.stderr).trim()
            ));
        }
        self.boot(work, &initrd)
    }

    fn boot(&self, work: &Path, initrd: &Path) -> Result<Outcome, String> {
        let log = work.join("console.log");
        let log_f = fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err_f = log_f.try_clone().map_err(|e| format!("dup log: {e}"))?;
        // KVM hangs when nested here; TCG boots in seconds and is the same
        // everywhere. -smp 2 so a cpuset can pick a CPU other than 0.
        let mut cmd = Command::new(&self.qemu);
        // If the test process dies (Ctrl-C, a kill), take qemu with it.
        // SAFETY: prctl is async-signal-safe; nothing else runs after fork.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .args(["-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "512"])
            .args(["-nographic", "-no-reboot", "-nic", "none", "-kernel"])
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", "console=ttyS0 quiet panic=-1"])
            .stdin(Stdio::null())
            .stdout(log_f)
            .stderr(err_f)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.qemu.display()))?;
        let deadline = Instant::now() + self.timeout;
        let mut timed_out = false;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() >= deadline => {
                    timed_out = true;
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("wait for qemu: {e}"));
                }
            }
        }
        let raw = fs::read(&log).map_err(|e| format!("read {}: {e}", log.display()))?;
        let mut o = parse_console(&String::from_utf8_lossy(&raw));
        o.timed_out = timed_out;
        Ok(o)
    }
}

/// Lay out the checks as the guest expects: checks[-rootfs]/NN-name/ with
/// run.sh, timeout, and each bundle's config.json.
fn write_checks(tree: &Path, checks: &[Check]) -> Result<(), String> {
    let mut seen = BTreeMap::new();
    for (i, c) in checks.iter().enumerate() {
        if seen.insert(c.name.clone(), i).is_some() {
            return Err(format!("check name {} used twice", c.name));
        }
        let dir = tree.join(guest_dir(checks, i).trim_start_matches('/'));
        let w = |p: PathBuf, s: &str| -> Result<(), String> {
            if let Some(d) = p.parent() {
                fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
            }
            fs::write(&p, s).map_err(|e| format!("write {}: {e}", p.display()))
        };
        w(dir.join("run.sh"), &c.script)?;
        w(dir.join("timeout"), &format!("{}\n", c.timeout_s))?;
        for (b, cfg) in &c.bundles {
            let text = serde_json::to_string_pretty(cfg).map_err(|e| format!("encode {b}: {e}"))?;
            w(dir.join(b).join("config.json"), &text)?;
        }
    }
    Ok(())
}

/// Put `bin` and the shared libraries ldd names into the tree, and a
/// /bin/runway that execs it (the tree is laid over the image last).
fn add_reference_runtime(tree: &Path, bin: &Path) -> Result<(), String> {
    let ldd = Command::new("ldd")
        .arg(bin)
        .output()
        .map_err(|e| format!("ldd {}: {e}", bin.display()))?;
    let mut files = vec![(bin.to_path_buf(), tree.join("bin/reference-runtime"))];
    for l in String::from_utf8_lossy(&ldd.stdout).lines() {
        // "libx.so => /lib/.../libx.so (0x..)" or "/lib64/ld-linux... (0x..)"
        let path = l.split("=>").last().unwrap_or("").trim();
        let path = path.split(" (").next().unwrap_or("");
        if let Some(rel) = path.strip_prefix('/') {
            files.push((PathBuf::from(path), tree.join(rel)));
        }
    }
    for (from, to) in &files {
        if let Some(d) = to.parent() {
            fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        }
        fs::copy(from, to).map_err(|e| format!("copy {}: {e}", from.display()))?;
    }
    let w = tree.join("bin/runway");
    fs::write(&w, "#!/bin/sh\nexec /bin/reference-runtime \"$@\"\n")
        .map_err(|e| format!("write {}: {e}", w.display()))?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&w, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", w.display()))
}

/// Pull the result lines out of the serial console text.
pub fn parse_console(console: &str) -> Outcome {
    let mut o = Outcome {
        console: console.to_string(),
        ..Outcome::default()
    };
    for line in console.lines() {
        let line = line.trim_end_matches('\r');
        // The firmware's escape codes share a line with our first words;
        // results must start their line (context lines are indented).
        if line.contains("RUNWAY-VM-BOOTED") {
            o.booted = true;
        } else if line == "RUNWAY-VM-DONE" {
            o.done = true;
        } else if let Some(rest) = line.strip_prefix("RUNWAY-CHECK ") {
            let mut it = rest.splitn(3, ' ');
            let name = it.next().unwrap_or("").to_string();
            let verdict = it.next().unwrap_or("");
            let detail = it.next().unwrap_or("").to_string();
            o.results.push(CheckResult {
                name,
                pass: verdict == "PASS",
                detail,
            });
        }
    }
    o
}

fn fetch_kernel(scripts: &Path) -> Result<PathBuf, String> {
    let cache = cache_dir();
    let k = cache.join("vmlinuz");
    if k.is_file() {
        return Ok(k);
    }
    if which("apt-get").is_none() || which("dpkg-deb").is_none() {
        return Err(format!(
            "no kernel at {} and no apt-get/dpkg-deb to fetch one",
            k.display()
        ));
    }
    note(&format!(
        "vm: fetching a Debian kernel into {}",
        cache.display()
    ));
    let st = Command::new("sh")
        .arg(scripts.join("fetch-kernel.sh"))
        .arg(&cache)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run fetch-kernel.sh: {e}"))?;
    if !st.status.success() || !k.is_file() {
        return Err(format!(
            "fetch-kernel.sh failed ({}): {}",
            st.status,
            String::from_utf8_lossy(&st.stderr).trim()
        ));
    }
    Ok(k)
}

/// Work dirs of earlier runs that were killed before they could clean up:
/// vm-<pid>-* whose pid is gone.
fn remove_stale_work_dirs(root: &Path) {
    let Ok(rd) = fs::read_dir(root) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("vm-").and_then(|r| r.split('-').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if std::env::var_os("RUNWAY_VM_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A minimal config for a busybox container sharing the guest's /rootfs
/// read-only: runc's default mounts and namespaces, no terminal.
pub fn config(args: &[&str]) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "HOME=/root"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps
            },
            "noNewPrivileges": true
        },
        "root": {"path": "/rootfs", "readonly": true},
        "hostname": "vm",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=1777"]}
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "network"}
            ],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// Add a mount to a config.
pub fn with_mount(mut cfg: Value, m: Value) -> Value {
    if let Some(a) = cfg["mounts"].as_array_mut() {
        a.push(m);
    }
    cfg
}

/// Bind the check's guest directory at /check in the container.
pub fn with_check_dir(cfg: Value, guest_dir: &str, writable: bool) -> Value {
    let mut opts = vec!["rbind"];
    if !writable {
        opts.push("ro");
    }
    with_mount(
        cfg,
        json!({"destination": "/check", "type": "bind", "source": guest_dir, "options": opts}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_result_lines_through_console_noise() {
        let c = "\x1b[2J.RUNWAY-VM-BOOTED 6.1\r\n[ 1.0] kernel msg\nRUNWAY-CHECK a PASS x y\r\nRUNWAY-CHECK b FAIL want '1' got '2'\n  | RUNWAY-CHECK ignored\nRUNWAY-VM-DONE\r\n";
        let o = parse_console(c);
        assert!(o.booted && o.done);
        assert_eq!(o.results.len(), 2);
        assert!(o.results[0].pass);
        assert_eq!(o.results[0].detail, "x y");
        assert!(!o.results[1].pass);
        assert_eq!(o.failures(&["a", "b", "c"]).len(), 2);
    }

    #[test]
    fn lays_out_checks_in_run_order() {
        let dir = target_tmp().join(format!("vm-layout-{}", std::process::id()));
        let _g = RemoveOnDrop(dir.clone());
        let cs = vec![
            Check::new("x", "pass x ok\n").bundle("b", config(&["true"])),
            Check::new("y", "pass y ok\n").on_rootfs().timeout(5),
        ];
        write_checks(&dir, &cs).unwrap();
        assert_eq!(guest_dir(&cs, 0), "/checks/01-x");
        assert_eq!(guest_dir(&cs, 1), "/checks-rootfs/02-y");
        assert!(dir.join("checks/01-x/b/config.json").is_file());
        let t = fs::read_to_string(dir.join("checks-rootfs/02-y/timeout")).unwrap();
        assert_eq!(t.trim(), "5");
        let dup = vec![Check::new("x", ""), Check::new("x", "")];
        assert!(write_checks(&dir.join("dup"), &dup).is_err());
    }

    #[test]
    fn tells_static_from_dynamic_elf() {
        let exe = std::env::current_exe().unwrap();
        // Built like runway (static musl) unless someone overrides the
        // target: either way it parses, and agrees with the target env.
        let want = cfg!(target_env = "musl") && cfg!(target_feature = "crt-static");
        assert_eq!(is_static_elf(&exe), Ok(want));
        assert!(is_static_elf(Path::new("/proc/self/status")).is_err());
    }
}
