//! containerd (1.6, Debian 12) started by the test with its own config,
//! root, state and socket under the test's directory, driven with `ctr`;
//! `ctr run --runc-binary RT --runc-root DIR` makes the io.containerd.runc.v2
//! shim call the runtime under test. Each test uses its own containerd
//! namespace, so its cgroups are /<namespace>/<container id>.

use super::{
    ctr_leftovers, ctr_remove_all, dir_leftovers, ensure, expect_code, expect_ok, is_line_of,
    next_seq, on_pty, poll, processes_in_cgroups, run, stop_child, teardown, Check, Engine,
    Scenario, ENGINE_TIMEOUT,
};
use crate::common::{cgroup_dirs_named, Out};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::CTR_IMAGE as IMAGE;

/// An init that exits 0 at once on SIGTERM.
const SLEEPER: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; while :; do sleep 0.1; done",
];

pub struct Containerd {
    pub dir: PathBuf,
    pub runtime: PathBuf,
    pub namespace: String,
    sock: PathBuf,
    runc_root: PathBuf,
    scratch: PathBuf,
    daemon: Option<Child>,
    /// Container ids this test created.
    ids: std::cell::RefCell<Vec<String>>,
}

impl Containerd {
    /// Start containerd under `dir` and import the image.
    pub fn new(dir: &Path, runtime: &Path, namespace: &str) -> Result<Containerd, String> {
        let mut c = Containerd {
            dir: dir.to_path_buf(),
            runtime: runtime.to_path_buf(),
            namespace: namespace.to_string(),
            sock: dir.join("containerd.sock"),
            runc_root: dir.join("runc-root"),
            scratch: dir.join("scratch"),
            daemon: None,
            ids: Default::default(),
        };
        fs::create_dir_all(&c.scratch).map_err(|e| format!("{e}"))?;
        let (root, state) = (dir.join("root"), dir.join("state"));
        // The CRI plugin is not needed by ctr and only slows the start.
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"
"#,
            root = root.display(),
            state = state.display(),
            sock = c.sock.display(),
        );
        let config_path = dir.join("config.toml");
        fs::write(&config_path, config).map_err(|e| format!("{e}"))?;
        let log = fs::File::create(dir.join("containerd.log")).map_err(|e| format!("{e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("{e}"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config_path)
            .arg("--address")
            .arg(&c.sock)
            .arg("--root")
            .arg(&root)
            .arg("--state")
            .arg(&state)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("spawn containerd: {e}"))?;
        c.daemon = Some(child);
        if !poll(Duration::from_secs(30), || c.ctr(&["version"]).ok()) {
            return Err(format!(
                "containerd did not answer on {}; its log:\n{}",
                c.sock.display(),
                fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
            ));
        }
        let archive = super::image().oci_archive.to_string_lossy().into_owned();
        expect_ok(&c.ctr(&["image", "import", &archive]))?;
        Ok(c)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.sock)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args);
        cmd
    }

    /// `ctr --address SOCK --namespace NS args...`
    pub fn ctr(&self, args: &[&str]) -> Out {
        run(self.command(args), &self.scratch, ENGINE_TIMEOUT)
    }

    /// The runtime flags every `ctr run` gets.
    fn runtime_flags(&self) -> Vec<String> {
        vec![
            "--runc-binary".into(),
            self.runtime.to_string_lossy().into_owned(),
            "--runc-root".into(),
            self.runc_root.to_string_lossy().into_owned(),
        ]
    }

    fn id(&self, what: &str) -> String {
        let id = format!("{what}-{}", next_seq());
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// `ctr run OPTS <runtime flags> IMAGE ID CMD...`
    fn ctr_run_args(&self, opts: &[&str], id: &str, cmd: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec!["run".into()];
        args.extend(opts.iter().map(|s| s.to_string()));
        args.extend(self.runtime_flags());
        args.push(IMAGE.into());
        args.push(id.into());
        args.extend(cmd.iter().map(|s| s.to_string()));
        args
    }

    fn run_container(&self, opts: &[&str], id: &str, cmd: &[&str]) -> Out {
        let args = self.ctr_run_args(opts, id, cmd);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ctr(&args)
    }

    /// The task's status in `ctr task ls` ("RUNNING", "PAUSED", ...).
    fn task_status(&self, id: &str) -> String {
        let out = self.ctr(&["task", "ls"]);
        out.stdout
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&id)).then(|| f.last().unwrap_or(&"").to_string())
            })
            .unwrap_or_default()
    }

    fn wait_status(&self, id: &str, want: &str) -> Check {
        let mut last = String::new();
        let ok = poll(Duration::from_secs(10), || {
            last = self.task_status(id);
            last == want
        });
        ensure(ok, || format!("task {id} not {want}; last status {last:?}"))
    }

    /// Cgroup v1 freezer state of the container.
    fn freezer(&self, id: &str) -> String {
        fs::read_to_string(format!(
            "/sys/fs/cgroup/freezer/{}/{id}/freezer.state",
            self.namespace
        ))
        .unwrap_or_default()
        .trim()
        .to_string()
    }
}

impl Engine for Containerd {
    /// Everything left: containers containerd still knows, runtime state,
    /// cgroups, mounts, processes.
    fn leftovers(&self) -> Vec<String> {
        let mut found = ctr_leftovers(|a| self.ctr(a));
        found.extend(self.system_leftovers());
        found
    }

    /// What outlives containerd itself: runtime state dirs, cgroups, mounts,
    /// processes (shims, container processes, the daemon).
    fn system_leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let ns_root = self.runc_root.join(&self.namespace);
        if let Ok(entries) = fs::read_dir(&ns_root) {
            for e in entries.flatten() {
                found.push(format!("runtime state left: {}", e.path().display()));
            }
        }
        let ids = self.ids.borrow();
        let names: Vec<&str> = ids.iter().map(String::as_str).collect();
        found.extend(
            cgroup_dirs_named(&names)
                .into_iter()
                .filter(|d| d.to_string_lossy().contains(&self.namespace))
                .map(|d| format!("cgroup left: {}", d.display())),
        );
        found.extend(processes_in_cgroups(&[self.namespace.as_str()]));
        found.extend(dir_leftovers(
            &self.dir,
            |p| is_line_of(self.daemon.as_ref(), p),
            |_| false,
        ));
        found
    }

    /// Stop containerd (SIGTERM, then SIGKILL after 10 s) and reap it.
    fn stop_daemon(&mut self) -> bool {
        stop_child(&mut self.daemon, Duration::from_secs(10));
        true
    }
}

impl Drop for Containerd {
    /// Force everything away even when a scenario failed half-way.
    fn drop(&mut self) {
        if self.daemon.is_some() {
            ctr_remove_all(|a| self.ctr(a));
        }
        self.stop_daemon();
        // Shims outlive containerd; theirs name our socket.
        teardown(&self.dir, &self.namespace);
    }
}

// --------------------------------------------------------------- scenarios

pub const SCENARIOS: &[Scenario<Containerd>] = &[
    ("run --rm with output", run_rm_output),
    ("exit status", exit_status),
    (
        "run -d + task exec + exec -t + task ps + pause/resume + kill + delete",
        detached_lifecycle,
    ),
    ("kill -a", kill_all),
    ("run -t", run_tty),
    ("--seccomp", seccomp),
    ("--read-only", read_only),
    ("--mount", mount),
];

fn run_rm_output(c: &Containerd) -> Check {
    let id = c.id("out");
    let out = c.run_container(&["--rm"], &id, &["sh", "-c", "echo hello-$((6*7)); id -u"]);
    expect_ok(&out)?;
    ensure(out.stdout == "hello-42\n0\n", || {
        format!("unexpected output:\n{out}")
    })
}

fn exit_status(c: &Containerd) -> Check {
    let id = c.id("exit");
    expect_code(
        &c.run_container(&["--rm"], &id, &["sh", "-c", "exit 42"]),
        42,
    )?;
    Ok(())
}

fn detached_lifecycle(c: &Containerd) -> Check {
    let id = c.id("life");
    expect_ok(&c.run_container(&["-d"], &id, SLEEPER))?;
    c.wait_status(&id, "RUNNING")?;

    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &id,
        "sh",
        "-c",
        "echo in-exec; exit 5",
    ]);
    expect_code(&out, 5)?;
    ensure(out.stdout == "in-exec\n", || format!("exec output:\n{out}"))?;

    let (code, seen) = on_pty(
        c.command(&["task", "exec", "-t", "--exec-id", "e2", &id, "sh"]),
        "# ",
        "tty; echo $((40+2))x; sleep 0.3; exit 3\r",
        "42x",
    );
    ensure(
        code == 3 && seen.contains("42x") && seen.contains("/dev/pts/"),
        || format!("task exec -t: exit {code}, terminal showed {seen:?}"),
    )?;

    let out = c.ctr(&["task", "ps", &id]);
    expect_ok(&out)?;
    let pids = out
        .stdout
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    ensure(pids >= 1, || format!("task ps lists no process:\n{out}"))?;

    expect_ok(&c.ctr(&["task", "pause", &id]))?;
    c.wait_status(&id, "PAUSED")?;
    ensure(c.freezer(&id) == "FROZEN", || {
        format!("freezer says {:?} after pause", c.freezer(&id))
    })?;
    expect_ok(&c.ctr(&["task", "resume", &id]))?;
    c.wait_status(&id, "RUNNING")?;
    ensure(c.freezer(&id) == "THAWED", || {
        format!("freezer says {:?} after resume", c.freezer(&id))
    })?;

    // SIGTERM (ctr's default), trapped: exit status 0.
    expect_ok(&c.ctr(&["task", "kill", &id]))?;
    c.wait_status(&id, "STOPPED")?;
    let out = c.ctr(&["task", "delete", &id]);
    expect_ok(&out)?;
    ensure(!out.stderr.contains("non-zero exit code"), || {
        format!("trapped SIGTERM should exit 0:\n{out}")
    })?;
    expect_ok(&c.ctr(&["container", "rm", &id]))?;
    Ok(())
}

fn kill_all(c: &Containerd) -> Check {
    let id = c.id("killall");
    expect_ok(&c.run_container(&["-d"], &id, &["sh", "-c", "sleep 1000 & sleep 1000"]))?;
    let mut procs = 0;
    poll(Duration::from_secs(10), || {
        procs = c.ctr(&["task", "ps", &id]).stdout.lines().skip(1).count();
        procs >= 2
    });
    ensure(procs >= 2, || {
        format!("task ps shows {procs} processes, want >= 2")
    })?;
    expect_ok(&c.ctr(&["task", "kill", "-a", "-s", "SIGKILL", &id]))?;
    c.wait_status(&id, "STOPPED")?;
    let out = c.ctr(&["task", "delete", &id]);
    expect_ok(&out)?;
    ensure(out.stderr.contains("137"), || {
        format!("SIGKILLed init should report 137:\n{out}")
    })?;
    expect_ok(&c.ctr(&["container", "rm", &id]))?;
    let ns_id = format!("{}/{id}", c.namespace);
    let left = processes_in_cgroups(&[id.as_str()]);
    ensure(left.is_empty(), || {
        format!("processes of {ns_id} survive kill -a: {left:?}")
    })
}

fn run_tty(c: &Containerd) -> Check {
    let id = c.id("tty");
    let args = c.ctr_run_args(&["-t", "--rm"], &id, &["sh"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, seen) = on_pty(
        c.command(&args),
        "# ",
        "tty; echo $((40+2))x; sleep 0.3; exit 3\r",
        "42x",
    );
    ensure(
        code == 3 && seen.contains("42x") && seen.contains("/dev/pts/0"),
        || format!("run -t: exit {code}, terminal showed {seen:?}"),
    )
}

fn seccomp(c: &Containerd) -> Check {
    let id = c.id("seccomp");
    let out = c.run_container(
        &["--rm", "--seccomp"],
        &id,
        &["sh", "-c", "grep '^Seccomp:' /proc/self/status"],
    );
    expect_ok(&out)?;
    ensure(out.stdout.split_whitespace().last() == Some("2"), || {
        format!("not in seccomp filter mode:\n{out}")
    })
}

fn read_only(c: &Containerd) -> Check {
    let id = c.id("ro");
    let out = c.run_container(
        &["--rm", "--read-only"],
        &id,
        &["sh", "-c", "touch /x; echo code=$?"],
    );
    expect_ok(&out)?;
    ensure(
        out.stdout.contains("code=1") && out.stderr.contains("Read-only file system"),
        || format!("rootfs writable under --read-only:\n{out}"),
    )
}

fn mount(c: &Containerd) -> Check {
    let src = c.dir.join("bind-src");
    fs::create_dir_all(&src).map_err(|e| format!("{e}"))?;
    fs::write(src.join("f"), "from-host\n").map_err(|e| format!("{e}"))?;
    let spec = format!("type=bind,src={},dst=/m,options=rbind:ro", src.display());
    let id = c.id("mount");
    let out = c.run_container(
        &["--rm", "--mount", &spec],
        &id,
        &["sh", "-c", "cat /m/f; touch /m/g; echo code=$?"],
    );
    expect_ok(&out)?;
    ensure(
        out.stdout == "from-host\ncode=1\n" && !src.join("g").exists(),
        || format!("bind mount not there or not read-only:\n{out}"),
    )
}

/// The scenarios, the leftover checks and the cleanup for one runtime.
pub fn tier(test: &str, runtime: &Path) {
    let dir = super::test_dir(test);
    let namespace = format!("runway-{}-{}", test.replace('_', "-"), std::process::id());
    let ctd =
        Containerd::new(&dir, runtime, &namespace).unwrap_or_else(|e| panic!("{test}: setup: {e}"));
    let failed = super::run_scenarios(test, &ctd, SCENARIOS);
    super::conclude(test, ctd, failed);
}
