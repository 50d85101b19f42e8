//! podman (4.3, Debian 12) driving an OCI runtime, configured for a host
//! without systemd and with every piece of podman state under the test's
//! directory.
//!
//! Two settings matter beyond the obvious ones: `--root`/`--runroot` go on
//! every command line, because podman derives its database location from
//! them and the `podman container cleanup` that conmon runs at container
//! exit only gets the flags (CONTAINERS_STORAGE_CONF does not reach it);
//! without them the cleanup finds no container and every `run`/`wait`
//! stalls for podman's 20 s conmon timeout. And `default_ulimits` is
//! lowered: podman's defaults (nofile 1048576) are above the host's hard
//! limit and root here lacks CAP_SYS_RESOURCE to raise it.

use super::{
    ensure, expect_code, expect_ok, next_seq, on_pty, poll, processes_in_cgroups,
    processes_mentioning, remove_cgroup_tree, remove_test_dir, run, unmount_under, Check, Engine,
    Scenario, ENGINE_TIMEOUT,
};
use crate::common::{cgroup_dirs_named, mount_points_under, Out};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

const IMAGE: &str = "localhost/runway-test-busybox:latest";

/// A container that stops at once on SIGTERM (an init without a handler
/// ignores it and podman would wait its 10 s stop timeout).
const SLEEPER: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; while :; do sleep 0.1; done",
];

/// Where the runtimes keep container state when the engine passes no
/// `--root` (podman does not): runway's and runc's defaults.
const RUNTIME_ROOTS: &[&str] = &["/run/runway", "/run/runc"];

/// One network config dir for every podman of this test process: netavark
/// serializes on the lock file there, and the tests' podmans share the
/// host's bridge, iptables chains and address database, so separate locks
/// let one test's teardown remove a chain another's setup is appending to.
/// Counted so the last podman removes it.
static NETWORK_DIR_USERS: Mutex<usize> = Mutex::new(0);

fn network_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/rwe-{}-podman-networks", std::process::id()))
}

pub struct Podman {
    pub dir: PathBuf,
    pub runtime: PathBuf,
    graph: PathBuf,
    runroot: PathBuf,
    conf: PathBuf,
    storage_conf: PathBuf,
    events: PathBuf,
    scratch: PathBuf,
}

impl Podman {
    /// Configure podman under `dir` for `runtime` and import the image.
    pub fn new(dir: &Path, runtime: &Path) -> Result<Podman, String> {
        let p = |s: &str| dir.join(s);
        let podman = Podman {
            dir: dir.to_path_buf(),
            runtime: runtime.to_path_buf(),
            graph: p("graph"),
            runroot: p("run"),
            conf: p("containers.conf"),
            storage_conf: p("storage.conf"),
            events: p("events.log"),
            scratch: p("scratch"),
        };
        fs::create_dir_all(&podman.scratch).map_err(|e| format!("{e}"))?;
        {
            let mut users = NETWORK_DIR_USERS.lock().unwrap_or_else(|e| e.into_inner());
            fs::create_dir_all(network_dir()).map_err(|e| format!("{e}"))?;
            *users += 1;
        }
        let d = |s: &str| p(s).to_string_lossy().into_owned();
        let conf = format!(
            r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
network_backend = "netavark"
tmp_dir = "{tmp}"
volume_path = "{volumes}"

[network]
network_config_dir = "{net}"
"#,
            events = podman.events.display(),
            tmp = d("tmp"),
            volumes = d("volumes"),
            net = network_dir().display(),
        );
        fs::write(&podman.conf, conf).map_err(|e| format!("{e}"))?;
        let storage = format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            podman.graph.display(),
            podman.runroot.display()
        );
        fs::write(&podman.storage_conf, storage).map_err(|e| format!("{e}"))?;
        let layer = super::image().layer.to_string_lossy().into_owned();
        expect_ok(&podman.run(&["import", "--change", "CMD=/bin/sh", &layer, IMAGE]))?;
        Ok(podman)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", &self.conf)
            .env("CONTAINERS_STORAGE_CONF", &self.storage_conf)
            .arg("--root")
            .arg(&self.graph)
            .arg("--runroot")
            .arg(&self.runroot)
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args);
        cmd
    }

    /// `podman --root .. --runroot .. --runtime RT args...`
    pub fn run(&self, args: &[&str]) -> Out {
        run(self.command(args), &self.scratch, ENGINE_TIMEOUT)
    }

    /// `run(args)` on a terminal, typing `input` once the shell prompts.
    fn run_on_pty(&self, args: &[&str], input: &str, until: &str) -> (i32, String) {
        on_pty(self.command(args), "# ", input, until)
    }

    fn name(&self, what: &str) -> String {
        format!("rw-{what}-{}", next_seq())
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.run(&["inspect", "--format", format, name])
            .stdout
            .trim()
            .to_string()
    }

    /// `run -d` of the sleeper; returns the full container id.
    fn start_sleeper(&self, name: &str, extra: &[&str]) -> Result<String, String> {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.extend_from_slice(SLEEPER);
        let out = self.run(&args);
        expect_ok(&out)?;
        Ok(out.stdout.trim().to_string())
    }

    /// Ids of every container this podman ever created (from its event log).
    pub fn container_ids(&self) -> Vec<String> {
        let text = fs::read_to_string(&self.events).unwrap_or_default();
        let mut ids: Vec<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["Type"] == "container")
            .filter_map(|v| v["ID"].as_str().map(String::from))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

impl Engine for Podman {
    /// What this podman's containers left behind: containers podman still
    /// knows, runtime state dirs, container cgroups, mounts, processes.
    fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let ps = self.run(&["ps", "-a", "-q"]);
        if !ps.stdout.trim().is_empty() || !ps.ok() {
            found.push(format!("podman still lists containers:\n{ps}"));
        }
        let ids = self.container_ids();
        if ids.is_empty() {
            found.push(format!("no container events in {}", self.events.display()));
        }
        for id in &ids {
            for root in RUNTIME_ROOTS {
                let state = Path::new(root).join(id);
                if state.exists() {
                    found.push(format!("runtime state left: {}", state.display()));
                }
            }
        }
        let cgroups: Vec<String> = ids.iter().map(|i| format!("libpod-{i}")).collect();
        let cgroup_names: Vec<&str> = cgroups.iter().map(String::as_str).collect();
        found.extend(
            cgroup_dirs_named(&cgroup_names)
                .into_iter()
                .map(|d| format!("cgroup left: {}", d.display())),
        );
        found.extend(processes_in_cgroups(&cgroup_names));
        let mut needles: Vec<&str> = ids.iter().map(String::as_str).collect();
        // With the slash: one test dir name is a prefix of another's.
        let dir = format!("{}/", self.dir.display());
        needles.push(&dir);
        found.extend(
            processes_mentioning(&needles)
                .into_iter()
                .map(|p| format!("process left: {p}")),
        );
        found.extend(
            mount_points_under(&self.dir)
                .into_iter()
                .map(|m| format!("mount left: {m}")),
        );
        found
    }
}

impl Drop for Podman {
    /// Force everything away even when a scenario failed half-way.
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-a", "-f", "-t", "0"]);
        let dir = format!("{}/", self.dir.display());
        for _ in 0..20 {
            let conmons: Vec<i32> = crate::common::live_pids()
                .into_iter()
                .filter(|p| {
                    fs::read(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&dir))
                })
                .collect();
            if conmons.is_empty() {
                break;
            }
            for p in conmons {
                // SAFETY: kill(2) on a process whose command line names our
                // private directory (conmon, podman cleanup).
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for id in self.container_ids() {
            remove_cgroup_tree(&format!("libpod_parent/libpod-{id}"));
        }
        unmount_under(&self.dir);
        // podman's parent cgroups; other podman tests may still use them,
        // then the rmdir fails and the last one to finish removes them.
        remove_cgroup_tree("libpod_parent/conmon");
        remove_cgroup_tree("libpod_parent");
        remove_test_dir(&self.dir);
        let mut users = NETWORK_DIR_USERS.lock().unwrap_or_else(|e| e.into_inner());
        *users = users.saturating_sub(1);
        if *users == 0 {
            let _ = fs::remove_dir_all(network_dir());
        }
    }
}

// --------------------------------------------------------------- scenarios

pub const SCENARIOS: &[Scenario<Podman>] = &[
    ("run --rm with output", run_rm_output),
    ("exit codes", exit_codes),
    (
        "run -d + exec + exec -it + ps + top + stats + pause/unpause + update --memory + stop + rm",
        detached_lifecycle,
    ),
    ("run -it", run_it),
    ("run --memory --pids-limit --cpus", limits),
    ("kill", kill),
    ("rm -f", rm_force),
    ("exec -d + restart", exec_detached_restart),
    ("run --preserve-fds", preserve_fds),
    ("run --uidmap/--gidmap (user namespace)", uidmap),
    ("run --read-only + --tmpfs + -v", mounts),
    ("--network none", network_none),
    (
        "default network (netavark; its bridge in the tier's netns)",
        network_default,
    ),
];

fn run_rm_output(p: &Podman) -> Check {
    let out = p.run(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo hello-$((6*7)); id -u",
    ]);
    expect_ok(&out)?;
    ensure(out.stdout == "hello-42\n0\n", || {
        format!("unexpected output:\n{out}")
    })
}

fn exit_codes(p: &Podman) -> Check {
    expect_code(&p.run(&["run", "--rm", IMAGE, "sh", "-c", "exit 42"]), 42)?;
    // podman maps "command not found" from the runtime to 127.
    let out = p.run(&["run", "--rm", IMAGE, "/no/such/binary"]);
    expect_code(&out, 127)?;
    ensure(out.stderr.contains("/no/such/binary"), || {
        format!("error does not name the missing binary:\n{out}")
    })
}

fn detached_lifecycle(p: &Podman) -> Check {
    let name = p.name("life");
    let id = p.start_sleeper(&name, &[])?;
    let out = p.run(&["exec", &name, "sh", "-c", "echo in-exec; exit 5"]);
    expect_code(&out, 5)?;
    ensure(out.stdout == "in-exec\n", || format!("exec output:\n{out}"))?;
    expect_code(&p.run(&["exec", &name, "/no/such/binary"]), 127)?;

    let (code, seen) = p.run_on_pty(
        &["exec", "-it", &name, "sh"],
        "tty; echo $((40+2))x; sleep 0.3; exit 3\r",
        "42x",
    );
    ensure(
        code == 3 && seen.contains("42x") && seen.contains("/dev/pts/"),
        || format!("exec -it: exit {code}, terminal showed {seen:?}"),
    )?;

    let out = p.run(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    expect_ok(&out)?;
    ensure(out.stdout.contains(&format!("{name} Up")), || {
        format!("ps does not show {name} up:\n{out}")
    })?;
    let out = p.run(&["top", &name]);
    expect_ok(&out)?;
    ensure(out.stdout.contains("sh -c trap"), || {
        format!("top does not show the init:\n{out}")
    })?;
    let out = p.run(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        &name,
    ]);
    expect_ok(&out)?;
    ensure(out.stdout.starts_with(&format!("{name} ")), || {
        format!("stats:\n{out}")
    })?;

    let freezer = format!("/sys/fs/cgroup/freezer/libpod_parent/libpod-{id}/freezer.state");
    let frozen = || fs::read_to_string(&freezer).unwrap_or_default();
    expect_ok(&p.run(&["pause", &name]))?;
    ensure(p.inspect(&name, "{{.State.Status}}") == "paused", || {
        "not paused after pause".into()
    })?;
    ensure(frozen().trim() == "FROZEN", || {
        format!("{freezer} says {:?} after pause", frozen())
    })?;
    expect_ok(&p.run(&["unpause", &name]))?;
    ensure(p.inspect(&name, "{{.State.Status}}") == "running", || {
        "not running after unpause".into()
    })?;
    ensure(frozen().trim() == "THAWED", || {
        format!("{freezer} says {:?} after unpause", frozen())
    })?;

    expect_ok(&p.run(&["update", "--memory", "100m", &name]))?;
    let out = p.run(&[
        "exec",
        &name,
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    expect_ok(&out)?;
    ensure(out.stdout.trim() == "104857600", || {
        format!("memory limit after update --memory 100m:\n{out}")
    })?;

    expect_ok(&p.run(&["stop", &name]))?;
    let state = p.inspect(&name, "{{.State.Status}} {{.State.ExitCode}}");
    ensure(state == "exited 0", || {
        format!("after stop (SIGTERM, trapped): {state:?}")
    })?;
    expect_ok(&p.run(&["rm", &name]))?;
    Ok(())
}

fn run_it(p: &Podman) -> Check {
    let (code, seen) = p.run_on_pty(
        &["run", "-it", "--rm", IMAGE, "sh"],
        "tty; echo $((40+2))x; sleep 0.3; exit 3\r",
        "42x",
    );
    ensure(
        code == 3 && seen.contains("42x") && seen.contains("/dev/pts/0"),
        || format!("run -it: exit {code}, terminal showed {seen:?}"),
    )
}

fn limits(p: &Podman) -> Check {
    let out = p.run(&[
        "run",
        "--rm",
        "--memory",
        "64m",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        IMAGE,
        "sh",
        "-c",
        "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes pids/pids.max \
         cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us",
    ]);
    expect_ok(&out)?;
    ensure(out.stdout == "67108864\n20\n50000\n100000\n", || {
        format!("limits seen inside:\n{out}")
    })
}

fn kill(p: &Podman) -> Check {
    let name = p.name("kill");
    p.start_sleeper(&name, &[])?;
    expect_ok(&p.run(&["kill", &name]))?;
    let out = p.run(&["wait", &name]);
    expect_ok(&out)?;
    ensure(out.stdout.trim() == "137", || {
        format!("exit code after SIGKILL:\n{out}")
    })?;
    expect_ok(&p.run(&["rm", &name]))?;
    Ok(())
}

fn rm_force(p: &Podman) -> Check {
    let name = p.name("rmf");
    p.start_sleeper(&name, &[])?;
    expect_ok(&p.run(&["rm", "-f", &name]))?;
    expect_code(&p.run(&["container", "exists", &name]), 1)?;
    Ok(())
}

fn exec_detached_restart(p: &Podman) -> Check {
    let name = p.name("execd");
    p.start_sleeper(&name, &[])?;
    expect_ok(&p.run(&["exec", "-d", &name, "sh", "-c", "echo detached > /tmp/d"]))?;
    let mut out = p.run(&["exec", &name, "cat", "/tmp/d"]);
    poll(Duration::from_secs(5), || {
        out = p.run(&["exec", &name, "cat", "/tmp/d"]);
        out.stdout == "detached\n"
    });
    ensure(out.stdout == "detached\n", || {
        format!("exec -d did not run:\n{out}")
    })?;
    expect_ok(&p.run(&["restart", &name]))?;
    let out = p.run(&["exec", &name, "sh", "-c", "cat /tmp/d 2>&1; echo restarted"]);
    expect_ok(&out)?;
    ensure(out.stdout.ends_with("restarted\n"), || {
        format!("exec after restart:\n{out}")
    })?;
    expect_ok(&p.run(&["rm", "-f", &name]))?;
    Ok(())
}

fn preserve_fds(p: &Podman) -> Check {
    let file = p.dir.join("fd3");
    fs::write(&file, "through-fd-3\n").map_err(|e| format!("{e}"))?;
    let f = fs::File::open(&file).map_err(|e| format!("{e}"))?;
    let mut cmd = p.command(&[
        "run",
        "--rm",
        "--preserve-fds",
        "1",
        IMAGE,
        "sh",
        "-c",
        "cat <&3",
    ]);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    // SAFETY: dup2 is async-signal-safe; fd stays open in the parent until
    // the child has exec'd.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            // dup2 onto itself would keep close-on-exec.
            let rc = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run(cmd, &p.scratch, ENGINE_TIMEOUT);
    drop(f);
    expect_ok(&out)?;
    ensure(out.stdout == "through-fd-3\n", || {
        format!("fd 3 not passed on:\n{out}")
    })
}

fn uidmap(p: &Podman) -> Check {
    let out = p.run(&[
        "run",
        "--rm",
        "--uidmap",
        "0:100000:65536",
        "--gidmap",
        "0:100000:65536",
        IMAGE,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    expect_ok(&out)?;
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    ensure(words == ["0", "0", "100000", "65536"], || {
        format!("user namespace:\n{out}")
    })
}

fn mounts(p: &Podman) -> Check {
    let vol = p.dir.join("vol");
    fs::create_dir_all(&vol).map_err(|e| format!("{e}"))?;
    fs::write(vol.join("f"), "from-host\n").map_err(|e| format!("{e}"))?;
    let bind = format!("{}:/v:ro", vol.display());
    let out = p.run(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch:size=1m",
        "-v",
        &bind,
        IMAGE,
        "sh",
        "-c",
        "cat /v/f; touch /scratch/x && echo tmpfs-rw; touch /x /v/g 2>/dev/null || echo ro",
    ]);
    expect_ok(&out)?;
    ensure(
        out.stdout == "from-host\ntmpfs-rw\nro\n" && !vol.join("g").exists(),
        || format!("mounts:\n{out}"),
    )
}

fn network_none(p: &Podman) -> Check {
    let out = p.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "ls",
        "/sys/class/net",
    ]);
    expect_ok(&out)?;
    ensure(out.stdout == "lo\n", || format!("interfaces:\n{out}"))
}

fn network_default(p: &Podman) -> Check {
    use super::netns;
    // netavark works in the tier's own network namespace, not the machine's.
    netns::moved()?;
    let name = p.name("net");
    p.start_sleeper(&name, &[])?;
    let links = netns::links();
    let bridge_here = links.iter().any(|l| l == "podman0");
    // The container's network namespace, bind-mounted under /run/netns.
    let sandbox = p.inspect(&name, "{{.NetworkSettings.SandboxKey}}");
    // The container joins the netns netavark set up (by path) and reaches
    // the bridge's gateway.
    let out = p.run(&[
        "exec",
        &name,
        "sh",
        "-c",
        "ip -4 -o addr show eth0 && gw=$(ip route | awk '/default/{print $3}') && \
         ping -c 1 -W 5 $gw",
    ]);
    expect_ok(&p.run(&["rm", "-f", "-t", "0", &name]))?;
    ensure(sandbox.starts_with('/'), || {
        format!("no network namespace path for {name}: {sandbox:?}")
    })?;
    ensure(!Path::new(&sandbox).exists(), || {
        format!("network namespace {sandbox} left after rm")
    })?;
    ensure(bridge_here, || {
        format!("no podman0 bridge in the tier's namespace; links: {links:?}")
    })?;
    expect_ok(&out)?;
    ensure(
        out.stdout.contains("inet ") && out.stdout.contains("1 packets received"),
        || format!("network:\n{out}"),
    )
}

/// The scenarios, the leftover checks and the cleanup for one runtime.
pub fn tier(test: &str, runtime: &Path) {
    let dir = super::test_dir(test);
    let podman = Podman::new(&dir, runtime).unwrap_or_else(|e| panic!("{test}: setup: {e}"));
    let failed = super::run_scenarios(test, &podman, SCENARIOS);
    super::conclude(test, podman, failed);
}
