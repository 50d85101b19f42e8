//! Kubernetes' view: containerd 1.6's CRI plugin, with a runtime handler
//! whose io.containerd.runc.v2 shim runs the runtime under test
//! (`BinaryName`), driven over the CRI gRPC API the way a kubelet does, by
//! tests/engines/cri_client.py (PyPI's container-runtime-interface-api and
//! grpcio, in a venv CI makes; no crictl).
//!
//! The test starts containerd with the CRI plugin, its own root, state,
//! socket and runtime root under the test's directory, and imports the
//! busybox image and a pause image (a static busybox sleeping) into the
//! k8s.io namespace. Pods use the node's network (the tier's own network
//! namespace, see netns.rs), so no CNI plugin is involved. Root here lacks
//! CAP_SYS_RESOURCE, hence `restrict_oom_score_adj`.

use super::{
    ctr_leftovers, ctr_remove_all, dir_leftovers, ensure, expect_ok, is_line_of, next_seq, poll,
    processes_in_cgroups, run, skip, stop_child, teardown, Check, Engine, Scenario, CTR_IMAGE,
    ENGINE_TIMEOUT, PAUSE_IMAGE,
};
use crate::common::{cgroup_dirs_named, Out};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// containerd's namespace for everything CRI does.
const NAMESPACE: &str = "k8s.io";

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/engines/cri_client.py");

/// The venv's python: $RUNWAY_CRI_PYTHON, or target/cri-venv/bin/python3.
/// None (after printing the skip) when it is missing or lacks the client.
pub fn python(test: &str) -> Option<PathBuf> {
    let python = match std::env::var_os("RUNWAY_CRI_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/cri-venv/bin/python3"
        )),
    };
    let hint = "python3 -m venv target/cri-venv && target/cri-venv/bin/pip install \
                container-runtime-interface-api grpcio, or set RUNWAY_CRI_PYTHON";
    if !python.is_file() {
        skip(
            test,
            &format!("no CRI client venv at {} ({hint})", python.display()),
        );
        return None;
    }
    let check = Command::new(&python)
        .args(["-c", "import grpc, cri_api.v1.api_pb2_grpc"])
        .stdin(Stdio::null())
        .output();
    match check {
        Ok(o) if o.status.success() => Some(python),
        Ok(o) => {
            skip(
                test,
                &format!(
                    "{} cannot import the CRI client ({hint}): {}",
                    python.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            );
            None
        }
        Err(e) => {
            skip(test, &format!("{}: {e}", python.display()));
            None
        }
    }
}

pub struct Cri {
    pub dir: PathBuf,
    /// The runtime handler's name ("runway", "runc").
    pub handler: String,
    python: PathBuf,
    sock: PathBuf,
    runtime_root: PathBuf,
    /// Absolute cgroup parent of every pod (cgroupfs driver).
    cgroup_parent: String,
    logs: PathBuf,
    scratch: PathBuf,
    daemon: Option<Child>,
}

impl Cri {
    /// Start containerd with the CRI plugin under `dir` and import the
    /// images.
    pub fn new(dir: &Path, runtime: &Path, python: &Path, test: &str) -> Result<Cri, String> {
        let handler = runtime
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut c = Cri {
            dir: dir.to_path_buf(),
            handler,
            python: python.to_path_buf(),
            sock: dir.join("containerd.sock"),
            runtime_root: dir.join("runtime-root"),
            cgroup_parent: format!("runway-{}-{}", test.replace('_', "-"), std::process::id()),
            logs: dir.join("pod-logs"),
            scratch: dir.join("scratch"),
            daemon: None,
        };
        for p in [&c.scratch, &c.logs] {
            fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        let (root, state) = (dir.join("root"), dir.join("state"));
        let cri = r#"plugins."io.containerd.grpc.v1.cri""#;
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "{handler}"

[{cri}.containerd.runtimes.{handler}]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.{handler}.options]
  BinaryName = "{runtime}"
  Root = "{runtime_root}"

[{cri}.cni]
  bin_dir = "{dir}/cni-bin"
  conf_dir = "{dir}/cni-conf"
"#,
            root = root.display(),
            state = state.display(),
            sock = c.sock.display(),
            handler = c.handler,
            runtime = runtime.display(),
            runtime_root = c.runtime_root.display(),
            dir = dir.display(),
        );
        let config_path = dir.join("config.toml");
        fs::write(&config_path, config).map_err(|e| format!("{e}"))?;
        let log = fs::File::create(dir.join("containerd.log")).map_err(|e| format!("{e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("{e}"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("spawn containerd: {e}"))?;
        c.daemon = Some(child);
        if !poll(Duration::from_secs(30), || {
            c.call("RuntimeService", "Version", json!({})).is_ok()
        }) {
            return Err(format!(
                "containerd's CRI did not answer on {}; its log:\n{}",
                c.sock.display(),
                fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
            ));
        }
        for archive in [
            &super::image().pause_oci_archive,
            &super::image().oci_archive,
        ] {
            let archive = archive.to_string_lossy().into_owned();
            expect_ok(&c.ctr(&["image", "import", &archive]))?;
        }
        // CRI learns of imported images from containerd's events.
        for image in [PAUSE_IMAGE, CTR_IMAGE] {
            let mut last = Err(String::new());
            let known = poll(Duration::from_secs(10), || {
                last = c.call(
                    "ImageService",
                    "ImageStatus",
                    json!({"image": {"image": image}}),
                );
                last.as_ref().is_ok_and(|v| !v["image"].is_null())
            });
            ensure(known, || format!("CRI does not know {image}: {last:?}"))?;
        }
        Ok(c)
    }

    /// `ctr --address SOCK --namespace k8s.io args...`
    fn ctr(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.sock)
            .arg("--namespace")
            .arg(NAMESPACE)
            .args(args);
        run(cmd, &self.scratch, ENGINE_TIMEOUT)
    }

    /// One CRI call; the response as JSON, or the error with the command.
    pub fn call(&self, service: &str, method: &str, request: Value) -> Result<Value, String> {
        let mut cmd = Command::new(&self.python);
        cmd.arg(CLIENT)
            .arg(&self.sock)
            .arg(service)
            .arg(method)
            .arg(request.to_string());
        let out = run(cmd, &self.scratch, ENGINE_TIMEOUT);
        expect_ok(&out)?;
        serde_json::from_str(&out.stdout).map_err(|e| format!("{e}: response of\n{out}"))
    }

    fn rt(&self, method: &str, request: Value) -> Result<Value, String> {
        self.call("RuntimeService", method, request)
    }

    /// A pod sandbox config: node network, its own PID and IPC namespaces,
    /// logs under the test's directory, cgroups under the test's parent.
    fn pod_config(&self, name: &str) -> Value {
        json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"), "namespace": "runway-test"},
            "log_directory": self.logs.join(name),
            "linux": {
                "cgroup_parent": format!("/{}", self.cgroup_parent),
                "security_context": {
                    "namespace_options": {"network": "NODE", "pid": "POD", "ipc": "POD"},
                },
            },
        })
    }

    /// RunPodSandbox with the handler; returns (pod id, its config).
    fn run_pod(&self, what: &str) -> Result<(String, Value), String> {
        let name = format!("{what}-{}", next_seq());
        let config = self.pod_config(&name);
        let v = self.rt(
            "RunPodSandbox",
            json!({"config": config, "runtime_handler": self.handler}),
        )?;
        let id = v["pod_sandbox_id"].as_str().unwrap_or_default().to_string();
        ensure(!id.is_empty(), || format!("RunPodSandbox returned {v}"))?;
        Ok((id, config))
    }

    /// CreateContainer in `pod`; returns the container id.
    fn create(
        &self,
        pod: &str,
        pod_config: &Value,
        name: &str,
        command: &[&str],
        resources: Value,
    ) -> Result<String, String> {
        let v = self.rt(
            "CreateContainer",
            json!({
                "pod_sandbox_id": pod,
                "config": {
                    "metadata": {"name": name},
                    "image": {"image": CTR_IMAGE},
                    "command": command,
                    "log_path": format!("{name}.log"),
                    "linux": {
                        "resources": resources,
                        "security_context": {
                            "namespace_options": {"network": "NODE", "pid": "CONTAINER", "ipc": "POD"},
                        },
                    },
                },
                "sandbox_config": pod_config,
            }),
        )?;
        let id = v["container_id"].as_str().unwrap_or_default().to_string();
        ensure(!id.is_empty(), || format!("CreateContainer returned {v}"))?;
        Ok(id)
    }

    fn status(&self, id: &str) -> Result<Value, String> {
        Ok(self.rt("ContainerStatus", json!({"container_id": id}))?["status"].clone())
    }

    /// Poll ContainerStatus until its state is `want`; returns the status.
    fn wait_state(&self, id: &str, want: &str) -> Result<Value, String> {
        let mut last = Ok(Value::Null);
        let ok = poll(Duration::from_secs(15), || {
            last = self.status(id);
            last.as_ref().is_ok_and(|s| s["state"] == want)
        });
        let last = last?;
        ensure(ok, || format!("container {id} not {want}: {last}"))?;
        Ok(last)
    }

    fn exec_sync(&self, id: &str, cmd: &[&str]) -> Result<Value, String> {
        self.rt(
            "ExecSync",
            json!({"container_id": id, "cmd": cmd, "timeout": 20}),
        )
    }

    /// A container's CRI log ("TIME STREAM TAG MESSAGE" lines) as
    /// "STREAM MESSAGE" (the tag is F for a full line).
    fn log_lines(&self, pod_config: &Value, name: &str) -> Vec<String> {
        let dir = pod_config["log_directory"].as_str().unwrap_or_default();
        fs::read_to_string(Path::new(dir).join(format!("{name}.log")))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(4, ' ').collect();
                match f.as_slice() {
                    [_, stream, "F", msg] => format!("{stream} {msg}"),
                    _ => format!("unexpected log line: {l}"),
                }
            })
            .collect()
    }

    fn remove_pod(&self, pod: &str) -> Check {
        self.rt("StopPodSandbox", json!({"pod_sandbox_id": pod}))?;
        self.rt("RemovePodSandbox", json!({"pod_sandbox_id": pod}))?;
        Ok(())
    }
}

impl Engine for Cri {
    /// Everything left: pods and containers CRI or containerd still list,
    /// plus what system_leftovers finds.
    fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (method, key) in [
            ("ListPodSandbox", "items"),
            ("ListContainers", "containers"),
        ] {
            match self.rt(method, json!({})) {
                Ok(v) if v[key].as_array().is_none_or(|a| a.is_empty()) => {}
                Ok(v) => found.push(format!("CRI {method} still lists: {v}")),
                Err(e) => found.push(format!("CRI {method}: {e}")),
            }
        }
        found.extend(ctr_leftovers(|a| self.ctr(a)));
        found.extend(self.system_leftovers());
        found
    }

    /// What outlives containerd: runtime state dirs, cgroups, processes
    /// (shims, pause, containers), mounts (rootfs, the sandbox's shm).
    fn system_leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        for e in fs::read_dir(self.runtime_root.join(NAMESPACE))
            .into_iter()
            .flatten()
            .flatten()
        {
            found.push(format!("runtime state left: {}", e.path().display()));
        }
        for d in cgroup_dirs_named(&[self.cgroup_parent.as_str()]) {
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    found.push(format!("cgroup left: {}", e.path().display()));
                }
            }
        }
        found.extend(processes_in_cgroups(&[self.cgroup_parent.as_str()]));
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

impl Drop for Cri {
    /// Force everything away even when a scenario failed half-way: pods
    /// through CRI first (which also unmounts their shm), then whatever
    /// containerd still has.
    fn drop(&mut self) {
        if self.daemon.is_some() {
            if let Ok(v) = self.rt("ListPodSandbox", json!({})) {
                for pod in v["items"].as_array().into_iter().flatten() {
                    if let Some(id) = pod["id"].as_str() {
                        let _ = self.remove_pod(id);
                    }
                }
            }
            ctr_remove_all(|a| self.ctr(a));
        }
        self.stop_daemon();
        // Shims outlive containerd; theirs name our socket.
        teardown(&self.dir, &self.cgroup_parent);
    }
}

// --------------------------------------------------------------- scenarios

pub const SCENARIOS: &[Scenario<Cri>] = &[
    (
        "pod + container: create, start, status, exec sync, logs, limits, stop, remove",
        pod_lifecycle,
    ),
    ("container exit code", exit_code),
];

/// Prints a line, then waits; says goodbye and exits 0 on SIGTERM.
const SLEEPER: &[&str] = &[
    "sh",
    "-c",
    "echo started; trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done",
];

fn pod_lifecycle(c: &Cri) -> Check {
    let (pod, pod_config) = c.run_pod("pod")?;
    let v = c.rt("PodSandboxStatus", json!({"pod_sandbox_id": pod}))?;
    ensure(
        v["status"]["state"] == "SANDBOX_READY" && v["status"]["runtime_handler"] == c.handler,
        || format!("pod status: {v}"),
    )?;
    // The pause container ran under the runtime under test.
    let state = c.runtime_root.join(NAMESPACE).join(&pod);
    ensure(state.is_dir(), || {
        format!("no runtime state for the sandbox at {}", state.display())
    })?;

    let id = c.create(
        &pod,
        &pod_config,
        "main",
        SLEEPER,
        json!({"memory_limit_in_bytes": 64 << 20, "cpu_period": 100000, "cpu_quota": 50000}),
    )?;
    ensure(c.status(&id)?["state"] == "CONTAINER_CREATED", || {
        format!("after create: {:?}", c.status(&id))
    })?;
    c.rt("StartContainer", json!({"container_id": id}))?;
    c.wait_state(&id, "CONTAINER_RUNNING")?;

    let v = c.exec_sync(&id, &["sh", "-c", "echo in-exec; echo err >&2; exit 5"])?;
    ensure(
        v["exit_code"] == 5 && v["stdout"] == "in-exec\n" && v["stderr"] == "err\n",
        || format!("exec sync: {v}"),
    )?;
    let v = c.exec_sync(
        &id,
        &[
            "sh",
            "-c",
            "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes cpu/cpu.cfs_quota_us \
             cpu/cpu.cfs_period_us",
        ],
    )?;
    ensure(v["stdout"] == "67108864\n50000\n100000\n", || {
        format!("limits seen inside: {v}")
    })?;

    let mut lines = Vec::new();
    poll(Duration::from_secs(5), || {
        lines = c.log_lines(&pod_config, "main");
        !lines.is_empty()
    });
    ensure(lines == ["stdout started"], || format!("log: {lines:?}"))?;

    c.rt("StopContainer", json!({"container_id": id, "timeout": 10}))?;
    let st = c.wait_state(&id, "CONTAINER_EXITED")?;
    ensure(st["exit_code"] == 0, || {
        format!("after stop (SIGTERM, trapped): {st}")
    })?;
    poll(Duration::from_secs(5), || {
        lines = c.log_lines(&pod_config, "main");
        lines.len() >= 2
    });
    ensure(lines == ["stdout started", "stdout got-term"], || {
        format!("log after stop: {lines:?}")
    })?;
    c.rt("RemoveContainer", json!({"container_id": id}))?;
    ensure(c.status(&id).is_err(), || {
        format!("{id} still has a status after RemoveContainer")
    })?;
    c.remove_pod(&pod)?;
    ensure(
        c.rt("PodSandboxStatus", json!({"pod_sandbox_id": pod}))
            .is_err(),
        || format!("pod {pod} still there after RemovePodSandbox"),
    )
}

fn exit_code(c: &Cri) -> Check {
    let (pod, pod_config) = c.run_pod("exit")?;
    let id = c.create(
        &pod,
        &pod_config,
        "exits",
        &["sh", "-c", "echo bye; exit 3"],
        json!({}),
    )?;
    c.rt("StartContainer", json!({"container_id": id}))?;
    let st = c.wait_state(&id, "CONTAINER_EXITED")?;
    ensure(st["exit_code"] == 3, || format!("status: {st}"))?;
    c.rt("RemoveContainer", json!({"container_id": id}))?;
    c.remove_pod(&pod)
}

/// The scenarios, the leftover checks and the cleanup for one runtime.
pub fn tier(test: &str, runtime: &Path, python: &Path) {
    let dir = super::test_dir(test);
    let cri =
        Cri::new(&dir, runtime, python, test).unwrap_or_else(|e| panic!("{test}: setup: {e}"));
    let failed = super::run_scenarios(test, &cri, SCENARIOS);
    super::conclude(test, cri, failed);
}
