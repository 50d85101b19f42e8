//! Docker (Debian's docker.io, dockerd 20.10) with the runtime under test
//! registered in its daemon.json `runtimes` and chosen per container with
//! `docker run --runtime=NAME`.
//!
//! The test starts its own dockerd with data-root, exec-root, pidfile,
//! socket and cgroup parent under the test's directory, and keeps it off
//! the network: no bridge, no iptables, containers on `--network none`
//! (and the whole tier is in a network namespace of its own anyway). The
//! client is /usr/bin/docker (docker.io's) with DOCKER_HOST on that socket.

use super::{
    dir_leftovers, ensure, expect_code, expect_ok, is_line_of, on_pty, poll, processes_in_cgroups,
    run, stop_child, teardown, Check, Engine, Scenario, DOCKER_IMAGE as IMAGE, ENGINE_TIMEOUT,
};
use crate::common::{cgroup_dirs_named, mount_points_under, Out};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// docker.io's client; /usr/local/bin/docker may be another one.
pub const DOCKER_CLI: &str = "/usr/bin/docker";

/// Prints a line, then waits; says goodbye and exits 0 on SIGTERM.
const SLEEPER: &[&str] = &[
    "sh",
    "-c",
    "echo started; trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done",
];

pub struct Docker {
    pub dir: PathBuf,
    /// The name the runtime has in daemon.json.
    pub runtime_name: String,
    sock: PathBuf,
    exec_root: PathBuf,
    client_config: PathBuf,
    /// Relative cgroup directory all containers go under.
    cgroup_parent: String,
    scratch: PathBuf,
    daemon: Option<Child>,
    /// Counted in PLUGIN_DIR (so Drop leaves it).
    counted: bool,
}

/// dockerd 20.10 makes /run/docker/plugins (a fixed path, whatever its
/// exec-root); the test removes it again if it was not there before, once
/// the last dockerd of this process has stopped.
struct PluginDir {
    users: usize,
    /// The directories the test's dockerds created, deepest first.
    created: Vec<&'static str>,
}

static PLUGIN_DIR: std::sync::Mutex<PluginDir> = std::sync::Mutex::new(PluginDir {
    users: 0,
    created: Vec::new(),
});

impl PluginDir {
    fn enter() {
        let mut p = PLUGIN_DIR.lock().unwrap_or_else(|e| e.into_inner());
        if p.users == 0 {
            p.created = ["/run/docker/plugins", "/run/docker"]
                .into_iter()
                .filter(|d| !Path::new(d).exists())
                .collect();
        }
        p.users += 1;
    }

    fn leave() {
        let mut p = PLUGIN_DIR.lock().unwrap_or_else(|e| e.into_inner());
        p.users = p.users.saturating_sub(1);
        if p.users == 0 {
            for d in std::mem::take(&mut p.created) {
                // Only if empty: anything else in it is not ours.
                let _ = fs::remove_dir(d);
            }
        }
    }
}

impl Docker {
    /// Start dockerd under `dir` with `runtime` registered, and load the
    /// image.
    pub fn new(dir: &Path, runtime: &Path, test: &str) -> Result<Docker, String> {
        // "runc" is docker's built-in runtime and may not be redefined.
        let runtime_name = match runtime.file_name().and_then(|n| n.to_str()) {
            Some("runc") | None => "runc-under-test".to_string(),
            Some(n) => n.to_string(),
        };
        let mut d = Docker {
            dir: dir.to_path_buf(),
            runtime_name,
            sock: dir.join("docker.sock"),
            exec_root: dir.join("exec"),
            client_config: dir.join("client"),
            cgroup_parent: format!("runway-{}-{}", test.replace('_', "-"), std::process::id()),
            scratch: dir.join("scratch"),
            daemon: None,
            counted: false,
        };
        for p in [&d.scratch, &d.client_config] {
            fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        PluginDir::enter();
        d.counted = true;
        // The trust key would otherwise go to /etc/docker/key.json.
        let config = json!({
            "runtimes": {d.runtime_name.as_str(): {"path": runtime}},
            "deprecated-key-path": dir.join("key.json"),
        });
        let config_path = dir.join("daemon.json");
        fs::write(&config_path, config.to_string()).map_err(|e| format!("{e}"))?;
        let log = fs::File::create(dir.join("dockerd.log")).map_err(|e| format!("{e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("{e}"))?;
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(&config_path)
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(&d.exec_root)
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", d.sock.display()))
            .arg("--cgroup-parent")
            .arg(format!("/{}", d.cgroup_parent))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--storage-driver=overlay2",
                "--exec-opt=native.cgroupdriver=cgroupfs",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("spawn dockerd: {e}"))?;
        d.daemon = Some(child);
        if !poll(Duration::from_secs(60), || d.docker(&["version"]).ok()) {
            return Err(format!(
                "dockerd did not answer on {}; its log:\n{}",
                d.sock.display(),
                fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
            ));
        }
        let archive = super::image().docker_archive.to_string_lossy().into_owned();
        expect_ok(&d.docker(&["load", "-i", &archive]))?;
        Ok(d)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOCKER_CLI);
        cmd.env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", &self.client_config)
            .args(args);
        cmd
    }

    /// `docker args...` against the test's daemon.
    pub fn docker(&self, args: &[&str]) -> Out {
        run(self.command(args), &self.scratch, ENGINE_TIMEOUT)
    }

    /// `docker run --runtime NAME --network none OPTS IMAGE CMD...`
    fn run_args(&self, opts: &[&str], cmd: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--runtime".into(),
            self.runtime_name.clone(),
            "--network".into(),
            "none".into(),
        ];
        args.extend(opts.iter().map(|s| s.to_string()));
        args.push(IMAGE.into());
        args.extend(cmd.iter().map(|s| s.to_string()));
        args
    }

    fn run_container(&self, opts: &[&str], cmd: &[&str]) -> Out {
        let args = self.run_args(opts, cmd);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.docker(&args)
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.docker(&["inspect", "--format", format, name])
            .stdout
            .trim()
            .to_string()
    }

    /// dockerd itself, and the containerd it manages, while running.
    fn is_daemon_line(&self, line: &str) -> bool {
        is_line_of(self.daemon.as_ref(), line)
            || (self.daemon.is_some()
                && line.contains("containerd --config")
                && !line.contains("containerd-shim"))
    }
}

impl Engine for Docker {
    /// Everything left: containers docker still lists, runtime state,
    /// cgroups, mounts, processes.
    fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let ps = self.docker(&["ps", "-a", "-q"]);
        if !ps.ok() || !ps.stdout.trim().is_empty() {
            found.push(format!("docker still lists containers:\n{ps}"));
        }
        found.extend(self.system_leftovers());
        found
    }

    /// What must not outlive the containers (and, after stop_daemon, the
    /// daemon): the runtime's state dirs (exec-root/runtime-*/moby/ID),
    /// cgroups, container processes and shims, mounts.
    fn system_leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        if let Ok(roots) = fs::read_dir(&self.exec_root) {
            for r in roots.flatten() {
                let name = r.file_name().to_string_lossy().into_owned();
                if !name.starts_with("runtime-") {
                    continue;
                }
                for e in fs::read_dir(r.path().join("moby"))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    found.push(format!("runtime state left: {}", e.path().display()));
                }
            }
        }
        // Container cgroups are <parent>/<id>: any directory below the
        // parent is a container's.
        for d in cgroup_dirs_named(&[self.cgroup_parent.as_str()]) {
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    found.push(format!("cgroup left: {}", e.path().display()));
                }
            }
        }
        found.extend(processes_in_cgroups(&[self.cgroup_parent.as_str()]));
        // While dockerd runs, its data-root is bind-mounted onto itself.
        let data = self.dir.join("data").to_string_lossy().into_owned();
        found.extend(dir_leftovers(
            &self.dir,
            |p| self.is_daemon_line(p),
            |m| self.daemon.is_some() && m == data,
        ));
        found
    }

    /// Stop dockerd (SIGTERM, then SIGKILL after 20 s) and reap it; it
    /// stops the containerd it started. dockerd bind-mounts its data-root
    /// onto itself (to make it a shared mount) and leaves that behind; that
    /// one mount is dockerd's, not a container's, so it goes here.
    fn stop_daemon(&mut self) -> bool {
        if !stop_child(&mut self.daemon, Duration::from_secs(20)) {
            return true;
        }
        let data = self.dir.join("data");
        let data_str = data.to_string_lossy().into_owned();
        if let Ok(c) = std::ffi::CString::new(data_str.clone()) {
            // Possibly stacked: once per mount on that very point.
            for _ in 0..5 {
                if !mount_points_under(&data).contains(&data_str) {
                    break;
                }
                // SAFETY: c is a valid NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        true
    }
}

impl Drop for Docker {
    /// Force everything away even when a scenario failed half-way.
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let ids = self.docker(&["ps", "-a", "-q"]).stdout;
            for id in ids.split_whitespace() {
                let _ = self.docker(&["rm", "-f", id]);
            }
        }
        self.stop_daemon();
        // containerd and shims outlive a killed dockerd; they name our dir.
        teardown(&self.dir, &self.cgroup_parent);
        if self.counted {
            PluginDir::leave();
        }
    }
}

// --------------------------------------------------------------- scenarios

pub const SCENARIOS: &[Scenario<Docker>] = &[
    ("run --rm with output", run_rm_output),
    ("exit codes", exit_codes),
    (
        "run -d + exec + exec -it + logs + stop + rm",
        detached_lifecycle,
    ),
    ("run -it", run_it),
    ("run --memory --pids-limit --cpus", limits),
];

fn run_rm_output(d: &Docker) -> Check {
    let out = d.run_container(&["--rm"], &["sh", "-c", "echo hello-$((6*7)); id -u"]);
    expect_ok(&out)?;
    ensure(out.stdout == "hello-42\n0\n", || {
        format!("unexpected output:\n{out}")
    })
}

fn exit_codes(d: &Docker) -> Check {
    expect_code(&d.run_container(&["--rm"], &["sh", "-c", "exit 42"]), 42)?;
    // docker maps "executable not found" from the runtime to 127.
    let out = d.run_container(&["--rm"], &["/no/such/binary"]);
    expect_code(&out, 127)?;
    ensure(out.stderr.contains("/no/such/binary"), || {
        format!("error does not name the missing binary:\n{out}")
    })
}

fn detached_lifecycle(d: &Docker) -> Check {
    let name = format!("rw-life-{}", super::next_seq());
    let out = d.run_container(&["-d", "--name", &name], SLEEPER);
    expect_ok(&out)?;
    let id = out.stdout.trim().to_string();
    ensure(
        d.inspect(&name, "{{.HostConfig.Runtime}}") == d.runtime_name,
        || format!("{name} does not use runtime {}", d.runtime_name),
    )?;
    // The shim ran the runtime under test with its state under exec-root.
    let state = d.exec_root.join("runtime-runc/moby").join(&id);
    ensure(state.is_dir(), || {
        format!("no runtime state dir {}", state.display())
    })?;
    ensure(d.inspect(&name, "{{.State.Status}}") == "running", || {
        format!("{name} not running")
    })?;

    let out = d.docker(&["exec", &name, "sh", "-c", "echo in-exec; exit 5"]);
    expect_code(&out, 5)?;
    ensure(out.stdout == "in-exec\n", || format!("exec output:\n{out}"))?;

    let (code, seen) = on_pty(
        d.command(&["exec", "-it", &name, "sh"]),
        "# ",
        "tty; echo $((40+2))x; sleep 0.3; exit 3\r",
        "42x",
    );
    ensure(
        code == 3 && seen.contains("42x") && seen.contains("/dev/pts/"),
        || format!("exec -it: exit {code}, terminal showed {seen:?}"),
    )?;

    let mut out = d.docker(&["logs", &name]);
    poll(Duration::from_secs(5), || {
        out = d.docker(&["logs", &name]);
        out.stdout.contains("started")
    });
    ensure(out.stdout == "started\n", || format!("logs:\n{out}"))?;

    expect_ok(&d.docker(&["stop", &name]))?;
    let state = d.inspect(&name, "{{.State.Status}} {{.State.ExitCode}}");
    ensure(state == "exited 0", || {
        format!("after stop (SIGTERM, trapped): {state:?}")
    })?;
    let out = d.docker(&["logs", &name]);
    ensure(out.stdout == "started\ngot-term\n", || {
        format!("logs after stop:\n{out}")
    })?;
    expect_ok(&d.docker(&["rm", &name]))?;
    expect_code(&d.docker(&["inspect", &name]), 1)?;
    Ok(())
}

fn run_it(d: &Docker) -> Check {
    let args = d.run_args(&["-it", "--rm"], &["sh"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, seen) = on_pty(
        d.command(&args),
        "# ",
        "tty; echo $((40+2))x; sleep 0.3; exit 3\r",
        "42x",
    );
    ensure(
        code == 3 && seen.contains("42x") && seen.contains("/dev/pts/0"),
        || format!("run -it: exit {code}, terminal showed {seen:?}"),
    )
}

fn limits(d: &Docker) -> Check {
    let out = d.run_container(
        &[
            "--rm",
            "--memory",
            "64m",
            "--pids-limit",
            "20",
            "--cpus",
            "0.5",
        ],
        &[
            "sh",
            "-c",
            "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes pids/pids.max \
             cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us",
        ],
    );
    expect_ok(&out)?;
    ensure(out.stdout == "67108864\n20\n50000\n100000\n", || {
        format!("limits seen inside:\n{out}")
    })
}

/// The scenarios, the leftover checks and the cleanup for one runtime.
pub fn tier(test: &str, runtime: &Path) {
    let dir = super::test_dir(test);
    let docker = Docker::new(&dir, runtime, test).unwrap_or_else(|e| panic!("{test}: setup: {e}"));
    let failed = super::run_scenarios(test, &docker, SCENARIOS);
    super::conclude(test, docker, failed);
}
