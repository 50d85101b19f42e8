//! Process plumbing on real containers (issue 5): exec, terminals over a
//! console socket, signal forwarding by `run`, hooks, logs, features.

mod common;

use common::extra::{self, exec_in, start_running, Proc};
use common::{Bundle, TestEnv, STATE_TIMEOUT};
use serde_json::{json, Value};
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn sleeper(env: &TestEnv) -> Bundle {
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]).write();
    b
}

fn done(env: &TestEnv, id: &str, b: &Bundle) {
    env.delete(id, true).assert_ok();
    env.assert_nothing_left(id, b);
}

// -------------------------------------------------------------------- exec

#[test]
fn exec_joins_namespaces_and_cgroup() {
    let Some(env) = TestEnv::new("exec_ns") else {
        return;
    };
    let b = sleeper(&env);
    let id = env.id("c");
    let pid = start_running(&env, &b, &id);
    let kinds = ["pid", "mnt", "net", "uts", "ipc"];
    let script = kinds
        .map(|k| format!("readlink /proc/self/ns/{k}"))
        .join("; ");
    let out = exec_in(&env, &[], &id, &["sh", "-c", &script]);
    out.assert_ok();
    let host: Vec<String> = kinds
        .iter()
        .map(|k| {
            fs::read_link(format!("/proc/{pid}/ns/{k}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(out.stdout_lines(), host, "{out}");
    let out = exec_in(&env, &[], &id, &["cat", "/proc/self/cgroup"]);
    out.assert_ok();
    let host_cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    assert_eq!(out.stdout, host_cg, "exec lands in the container's cgroups");
    done(&env, &id, &b);
}

#[test]
fn exec_env_user_cwd_and_exit_status() {
    let Some(env) = TestEnv::new("exec_flags") else {
        return;
    };
    let b = sleeper(&env);
    let id = env.id("c");
    start_running(&env, &b, &id);
    let out = exec_in(
        &env,
        &[
            "-e",
            "FOO=bar",
            "--env",
            "BAZ=qux",
            "-u",
            "1000:1001",
            "--cwd",
            "/tmp",
        ],
        &id,
        &["sh", "-c", "echo $FOO $BAZ; id -u; id -g; pwd; exit 7"],
    );
    assert_eq!(out.code, 7, "exit status propagates:\n{out}");
    assert_eq!(out.stdout, "bar qux\n1000\n1001\n/tmp\n", "{out}");
    let out = exec_in(&env, &[], &id, &["sh", "-c", "kill -9 $$"]);
    assert_eq!(out.code, 137, "signal death as 128+N:\n{out}");
    done(&env, &id, &b);
}

#[test]
fn exec_detached_writes_pid_file() {
    let Some(env) = TestEnv::new("exec_detach") else {
        return;
    };
    let b = sleeper(&env);
    let id = env.id("c");
    let init = start_running(&env, &b, &id);
    let pf = env.dir.join("exec.pid");
    let t = std::time::Instant::now();
    let out = exec_in(
        &env,
        &["-d", "--pid-file", &pf.to_string_lossy()],
        &id,
        &["sleep", "999"],
    );
    out.assert_ok();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "detached exec returns at once"
    );
    let pid: i32 = fs::read_to_string(&pf)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("pid file"));
    assert!(common::process_alive(pid));
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default(),
        fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap_or_default()
    );
    let ps = env.rt(&["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap_or_default();
    assert!(pids.contains(&pid), "{ps}");
    done(&env, &id, &b);
    assert!(
        !common::process_alive(pid),
        "delete -f kills exec'd processes"
    );
}

#[test]
fn exec_process_json_as_podman_sends_it() {
    let Some(env) = TestEnv::new("exec_process") else {
        return;
    };
    let b = sleeper(&env);
    let id = env.id("c");
    start_running(&env, &b, &id);
    let mut p: Value =
        serde_json::from_str(include_str!("fixtures/podman-exec-process.json")).unwrap();
    p["terminal"] = json!(false);
    p["args"] = json!([
        "sh",
        "-c",
        "echo exec-ok; id -u; echo $container; ulimit -n; pwd"
    ]);
    p["cwd"] = json!("/tmp");
    let f = env.dir.join("process.json");
    fs::write(&f, p.to_string()).unwrap();
    let out = env.rt(&["exec", "--process", &f.to_string_lossy(), &id]);
    out.assert_ok();
    assert_eq!(out.stdout, "exec-ok\n0\npodman\n20000\n/tmp\n", "{out}");
    fs::write(&f, "{\"args\": [\"sh\"").unwrap();
    env.rt(&["exec", "--process", &f.to_string_lossy(), &id])
        .assert_one_error_line();
    env.rt(&[
        "exec",
        "--process",
        &env.dir.join("missing.json").to_string_lossy(),
        &id,
    ])
    .assert_one_error_line();
    assert_eq!(env.status(&id), "running");
    done(&env, &id, &b);
}

#[test]
fn exec_into_missing_stopped_or_paused_fails_clearly() {
    let Some(env) = TestEnv::new("exec_bad") else {
        return;
    };
    exec_in(&env, &[], "no-such-container", &["true"]).assert_one_error_line();
    let mut b = env.bundle();
    b.sh("exit 0").write();
    let id = env.id("c");
    env.create_ok(&b, &id);
    env.start(&id).assert_ok();
    env.wait_for_status(&id, "stopped", STATE_TIMEOUT);
    exec_in(&env, &[], &id, &["true"]).assert_one_error_line();
    env.delete(&id, false).assert_ok();
    env.assert_nothing_left(&id, &b);
    let b = sleeper(&env);
    let id = env.id("p");
    start_running(&env, &b, &id);
    env.rt(&["pause", &id]).assert_ok();
    exec_in(&env, &[], &id, &["true"]).assert_one_error_line();
    env.rt(&["resume", &id]).assert_ok();
    done(&env, &id, &b);
}

// --------------------------------------------------------------- terminals

fn join_fd(h: std::thread::JoinHandle<Result<OwnedFd, String>>) -> OwnedFd {
    match h.join() {
        Ok(Ok(fd)) => fd,
        Ok(Err(e)) => panic!("console socket: {e}"),
        Err(_) => panic!("console thread panicked"),
    }
}

#[test]
fn create_with_terminal_sends_pty_master() {
    let Some(env) = TestEnv::new("tty_create") else {
        return;
    };
    let mut b = env.bundle();
    b.terminal(true).args(&["sh"]).write();
    let sock = env.dir.join("console.sock");
    let server = extra::console_server(&sock);
    let id = env.id("c");
    let pf = env.pid_file(&id);
    let out = env.rt_for(
        &b,
        &[
            "create",
            "--bundle",
            &b.path_str(),
            "--console-socket",
            &sock.to_string_lossy(),
            "--pid-file",
            &pf.to_string_lossy(),
            &id,
        ],
    );
    out.assert_ok();
    let master = join_fd(server);
    env.start(&id).assert_ok();
    extra::write_fd(master.as_raw_fd(), "tty; echo $((40+2))x\n");
    let got = extra::read_until(master.as_raw_fd(), "42x", Duration::from_secs(10));
    assert!(got.contains("42x"), "pty output: {got:?}");
    assert!(
        got.contains("/dev/pts/0") || got.contains("/dev/console"),
        "tty: {got:?}"
    );
    done(&env, &id, &b);
}

#[test]
fn exec_tty_sends_pty_master() {
    let Some(env) = TestEnv::new("tty_exec") else {
        return;
    };
    let b = sleeper(&env);
    let id = env.id("c");
    start_running(&env, &b, &id);
    let sock = env.dir.join("exec-console.sock");
    let server = extra::console_server(&sock);
    let mut p: Proc = extra::spawn_rt(
        &env,
        &b.mark,
        &[
            "exec",
            "-t",
            "--console-socket",
            &sock.to_string_lossy(),
            &id,
            "sh",
        ],
        None,
        0,
    );
    let master = join_fd(server);
    extra::write_fd(master.as_raw_fd(), "tty; echo $((40+2))x; exit 3\n");
    let got = extra::read_until(master.as_raw_fd(), "42x", Duration::from_secs(10));
    assert!(
        got.contains("42x") && got.contains("/dev/pts/"),
        "pty output: {got:?}"
    );
    let code = p.wait_timeout(Duration::from_secs(10));
    assert_eq!(
        code,
        Some(3),
        "exec -t returns the status: {}",
        p.describe()
    );
    done(&env, &id, &b);
}

#[test]
fn terminal_without_console_socket_and_missing_socket_fail_clearly() {
    let Some(env) = TestEnv::new("tty_bad") else {
        return;
    };
    let mut b = env.bundle();
    b.terminal(true).args(&["sh"]).write();
    let id = env.id("c");
    env.create(&b, &id).assert_one_error_line();
    env.assert_nothing_left(&id, &b);
    let id = env.id("c");
    let missing = env.dir.join("nope.sock");
    env.rt_for(
        &b,
        &[
            "create",
            "--bundle",
            &b.path_str(),
            "--console-socket",
            &missing.to_string_lossy(),
            &id,
        ],
    )
    .assert_one_error_line();
    env.assert_nothing_left(&id, &b);
    env.assert_root_empty();
}

// ----------------------------------------------------------------- signals

#[test]
fn run_forwards_signals_and_returns_status() {
    let Some(env) = TestEnv::new("run_signals") else {
        return;
    };
    let mut b = env.bundle();
    b.sh("trap 'echo usr1' USR1; trap 'echo term; exit 0' TERM; echo ready; while :; do sleep 0.05; done").write();
    let id = env.id("c");
    let bs = b.path_str();
    let mut p = extra::spawn_rt(&env, &b.mark, &["run", "--bundle", &bs, &id], None, 0);
    assert!(
        p.wait_stdout("ready", Duration::from_secs(10)),
        "{}",
        p.describe()
    );
    p.signal(libc::SIGUSR1);
    assert!(
        p.wait_stdout("usr1", Duration::from_secs(5)),
        "USR1 forwarded: {}",
        p.describe()
    );
    p.signal(libc::SIGTERM);
    assert_eq!(
        p.wait_timeout(Duration::from_secs(10)),
        Some(0),
        "{}",
        p.describe()
    );
    assert_eq!(p.stdout(), "ready\nusr1\nterm\n");
    drop(p);
    env.assert_nothing_left(&id, &b);
}

#[test]
fn run_returns_128_plus_signal_when_container_dies_by_it() {
    let Some(env) = TestEnv::new("run_sigdeath") else {
        return;
    };
    let mut b = env.bundle();
    // pid 1 of a pid namespace ignores TERM without a handler; share the
    // host's so the default action applies.
    b.remove_namespace("pid");
    b.sh("echo ready; exec sleep 1000").write();
    let id = env.id("c");
    let bs = b.path_str();
    let mut p = extra::spawn_rt(&env, &b.mark, &["run", "--bundle", &bs, &id], None, 0);
    assert!(
        p.wait_stdout("ready", Duration::from_secs(10)),
        "{}",
        p.describe()
    );
    std::thread::sleep(Duration::from_millis(100));
    p.signal(libc::SIGTERM);
    assert_eq!(
        p.wait_timeout(Duration::from_secs(10)),
        Some(143),
        "{}",
        p.describe()
    );
    drop(p);
    env.assert_nothing_left(&id, &b);
    for code in [0, 7] {
        let mut b = env.bundle();
        b.sh(&format!("exit {code}")).write();
        let id = env.id("x");
        assert_eq!(env.run(&b, &id).code, code);
        env.assert_nothing_left(&id, &b);
    }
}

// ------------------------------------------------------------------- hooks

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A bundle whose hooks record their stdin, env and args in `dir`, a host
/// directory also bind-mounted at the same path inside the container (the
/// container-namespace hooks see it there).
fn hooked_bundle(env: &TestEnv, dir: &Path) -> Bundle {
    fs::create_dir_all(dir).unwrap();
    let d = dir.to_string_lossy().into_owned();
    let mut b = env.bundle();
    b.readonly(false);
    b.add_mount(json!({"destination": d, "type": "bind", "source": d, "options": ["rbind", "rw"]}));
    for k in KINDS {
        b.set(&format!("/hooks/{k}"), json!([{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {d}/{k}.json; echo \"$HOOKVAR $1\" > {d}/{k}.env; echo {k} >> {d}/order"), "hook", format!("arg-{k}")],
            "env": [format!("HOOKVAR=val-{k}"), "PATH=/bin:/usr/bin"],
            "timeout": 10,
        }]));
    }
    b.args(&["sleep", "1000"]).write();
    b
}

fn hook_ran(dir: &Path, k: &str) -> bool {
    dir.join(format!("{k}.env")).exists()
}

#[test]
fn each_hook_runs_once_with_state_env_and_args() {
    let Some(env) = TestEnv::new("hooks") else {
        return;
    };
    let dir = env.dir.join("hooklog");
    let b = hooked_bundle(&env, &dir);
    let id = env.id("c");
    let pid = env.create_ok(&b, &id);
    for k in ["prestart", "createRuntime", "createContainer"] {
        assert!(hook_ran(&dir, k), "{k} ran by the end of create");
    }
    for k in ["startContainer", "poststart", "poststop"] {
        assert!(!hook_ran(&dir, k), "{k} must not run at create");
    }
    env.start(&id).assert_ok();
    assert!(extra::poll(Duration::from_secs(5), || hook_ran(
        &dir,
        "poststart"
    )));
    assert!(hook_ran(&dir, "startContainer"));
    assert!(!hook_ran(&dir, "poststop"));
    env.kill(&id, Some("KILL")).assert_ok();
    env.wait_for_status(&id, "stopped", STATE_TIMEOUT);
    env.delete(&id, false).assert_ok();
    assert!(hook_ran(&dir, "poststop"), "poststop runs at delete");
    let order = fs::read_to_string(dir.join("order")).unwrap_or_default();
    let order: Vec<&str> = order.lines().collect();
    let pos = |k: &str| order.iter().position(|o| *o == k).unwrap_or(99);
    assert_eq!(order.len(), 6, "each hook once: {order:?}");
    assert!(
        pos("prestart") < pos("createContainer") && pos("createRuntime") < pos("createContainer"),
        "{order:?}"
    );
    // startContainer vs poststart is checked in poststart_runs_after_start_container.
    assert!(
        pos("createContainer") < pos("startContainer") && pos("poststart") < pos("poststop"),
        "{order:?}"
    );
    assert!(
        pos("createContainer") < pos("poststart") && pos("startContainer") < pos("poststop"),
        "{order:?}"
    );
    for k in KINDS {
        let envline = fs::read_to_string(dir.join(format!("{k}.env"))).unwrap_or_default();
        assert_eq!(envline, format!("val-{k} arg-{k}\n"), "{k}: env and args");
        let text = fs::read_to_string(dir.join(format!("{k}.json"))).unwrap_or_default();
        let st: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{k} state on stdin ({e}): {text:?}"));
        assert_eq!(st["id"], id.as_str(), "{k}: {st}");
        assert_eq!(st["bundle"], b.path_str().as_str(), "{k}: {st}");
        let status = st["status"].as_str().unwrap_or_default();
        let allowed: &[&str] = match k {
            "prestart" | "createRuntime" | "createContainer" => &["creating", "created"],
            // "created" strictly; see poststart_runs_after_start_container.
            "startContainer" => &["creating", "created", "running"],
            "poststart" => &["running"],
            _ => &["stopped"],
        };
        assert!(allowed.contains(&status), "{k}: status {status}: {st}");
        if k != "poststop" {
            assert_eq!(st["pid"].as_i64(), Some(pid as i64), "{k}: {st}");
        }
    }
    env.assert_nothing_left(&id, &b);
}

#[test]
fn poststart_runs_after_start_container() {
    let Some(env) = TestEnv::new("hooks_order") else {
        return;
    };
    for _ in 0..3 {
        let dir = env.dir.join(format!("hooklog{}", env.id("d")));
        let b = hooked_bundle(&env, &dir);
        let id = env.id("c");
        env.create_ok(&b, &id);
        env.start(&id).assert_ok();
        assert!(
            hook_ran(&dir, "poststart"),
            "poststart ran before start returned"
        );
        assert!(
            hook_ran(&dir, "startContainer"),
            "startContainer ran before poststart/start returned"
        );
        let order = fs::read_to_string(dir.join("order")).unwrap_or_default();
        let order: Vec<&str> = order.lines().collect();
        let pos = |k: &str| order.iter().position(|o| *o == k).unwrap_or(99);
        assert!(pos("startContainer") < pos("poststart"), "{order:?}");
        let st: Value = serde_json::from_str(
            &fs::read_to_string(dir.join("startContainer.json")).unwrap_or_default(),
        )
        .unwrap_or_default();
        assert_eq!(
            st["status"], "created",
            "startContainer sees the state of start (runc: created): {st}"
        );
        env.delete(&id, true).assert_ok();
        env.assert_nothing_left(&id, &b);
    }
}

fn one_hook(env: &TestEnv, kind: &str, hook: Value) -> Bundle {
    let mut b = env.bundle();
    b.set(&format!("/hooks/{kind}"), json!([hook]));
    b.args(&["sleep", "1000"]).write();
    b
}

#[test]
fn failing_create_hooks_abort_create_and_leave_nothing() {
    let Some(env) = TestEnv::new("hook_fail") else {
        return;
    };
    for kind in ["createRuntime", "createContainer", "prestart"] {
        let b = one_hook(
            &env,
            kind,
            json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}),
        );
        let id = env.id("c");
        env.create(&b, &id).assert_one_error_line();
        env.assert_nothing_left(&id, &b);
    }
    let b = one_hook(&env, "createRuntime", json!({"path": "/nonexistent/hook"}));
    let id = env.id("c");
    let line = env.create(&b, &id).assert_one_error_line();
    assert!(line.contains("/nonexistent/hook"), "{line}");
    env.assert_nothing_left(&id, &b);
    env.assert_root_empty();
}

#[test]
fn failing_poststart_and_poststop_only_warn() {
    let Some(env) = TestEnv::new("hook_warn") else {
        return;
    };
    let mut b = env.bundle();
    b.set(
        "/hooks/poststart",
        json!([{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]),
    );
    b.set(
        "/hooks/poststop",
        json!([{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}]),
    );
    b.args(&["sleep", "1000"]).write();
    let id = env.id("c");
    env.create_ok(&b, &id);
    let out = env.start(&id);
    out.assert_ok();
    assert_eq!(env.status(&id), "running", "{out}");
    env.kill(&id, Some("KILL")).assert_ok();
    env.wait_for_status(&id, "stopped", STATE_TIMEOUT);
    env.delete(&id, false).assert_ok();
    env.assert_nothing_left(&id, &b);
}

#[test]
fn hook_timeout_kills_the_hook() {
    let Some(env) = TestEnv::new("hook_timeout") else {
        return;
    };
    let tag = format!("{}", 900000 + std::process::id() % 90000);
    let b = one_hook(
        &env,
        "createRuntime",
        json!({"path": "/bin/sleep", "args": ["sleep", tag], "timeout": 1}),
    );
    let id = env.id("c");
    let t = std::time::Instant::now();
    let out = env.create(&b, &id);
    out.assert_one_error_line();
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "timeout honoured: {:?}",
        t.elapsed()
    );
    assert!(
        extra::poll(Duration::from_secs(3), || extra::pids_with_cmdline(
            &format!("sleep {tag}")
        )
        .is_empty()),
        "the hook outlived its timeout"
    );
    env.assert_nothing_left(&id, &b);
}

// ------------------------------------------------ logs, version, features

fn log_lines(path: &PathBuf) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"))
        })
        .collect()
}

#[test]
fn log_json_has_errors_and_debug_lines() {
    let Some(env) = TestEnv::new("logs") else {
        return;
    };
    let log = env.dir.join("log.json");
    let ls = log.to_string_lossy().into_owned();
    let mut b = env.bundle();
    b.set("/process/capabilities/bounding", json!(["CAP_NOPE"]))
        .write();
    let id = env.id("c");
    let out = env.rt_for(
        &b,
        &[
            "--log",
            &ls,
            "--log-format",
            "json",
            "create",
            "--bundle",
            &b.path_str(),
            &id,
        ],
    );
    out.assert_one_error_line();
    let lines = log_lines(&log);
    let last = lines.last().unwrap_or_else(|| panic!("empty log"));
    assert_eq!(last["level"], "error", "{last}");
    assert!(
        last["msg"].as_str().is_some_and(|m| m.contains("CAP_NOPE")),
        "{last}"
    );
    assert!(
        last["time"].as_str().is_some_and(common::looks_rfc3339),
        "{last}"
    );
    env.assert_nothing_left(&id, &b);

    let dlog = env.dir.join("debug.json");
    let ds = dlog.to_string_lossy().into_owned();
    let mut b = env.bundle();
    b.sh("true").write();
    let id = env.id("d");
    env.rt_for(
        &b,
        &[
            "--debug",
            "--log",
            &ds,
            "--log-format",
            "json",
            "run",
            "--bundle",
            &b.path_str(),
            &id,
        ],
    )
    .assert_ok();
    let lines = log_lines(&dlog);
    assert!(
        lines.iter().any(|l| l["level"] == "debug"),
        "--debug adds debug lines: {lines:?}"
    );
    for l in &lines {
        assert!(
            l["msg"].is_string() && l["time"].as_str().is_some_and(common::looks_rfc3339),
            "{l}"
        );
    }
    env.assert_nothing_left(&id, &b);
}

#[test]
fn features_lists_hooks_namespaces_and_seccomp() {
    let out = common::run_runtime(&["features"]);
    out.assert_ok();
    let f: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    assert!(
        f["ociVersionMin"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{f}"
    );
    assert!(
        f["ociVersionMax"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{f}"
    );
    let has = |ptr: &str, items: &[&str]| {
        let arr: Vec<&str> = f
            .pointer(ptr)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for i in items {
            assert!(arr.contains(i), "{ptr} lacks {i}: {arr:?}");
        }
    };
    has("/hooks", &KINDS);
    has("/mountOptions", &["ro", "rbind", "nosuid"]);
    has(
        "/linux/namespaces",
        &[
            "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
        ],
    );
    has("/linux/capabilities", &["CAP_SYS_ADMIN", "CAP_KILL"]);
    has(
        "/linux/seccomp/actions",
        &[
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_NOTIFY",
            "SCMP_ACT_LOG",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP",
        ],
    );
    has(
        "/linux/seccomp/operators",
        &["SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
    );
    has(
        "/linux/seccomp/archs",
        &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    );
    assert_eq!(f["linux"]["seccomp"]["enabled"], true, "{f}");
    assert_eq!(f["linux"]["cgroup"]["v1"], true, "{f}");
    assert_eq!(f["linux"]["cgroup"]["v2"], true, "{f}");
}

#[test]
fn version_format() {
    if !common::is_runway() {
        common::note("skipped: version_format: runway-specific");
        return;
    }
    let out = common::run_runtime(&["--version"]);
    out.assert_ok();
    let l = out.stdout_lines();
    assert!(
        l[0].starts_with("runway version ")
            && l[0]
                .split(' ')
                .nth(2)
                .is_some_and(|v| v.split('.').count() == 3),
        "{out}"
    );
    assert!(l.iter().any(|x| x.starts_with("spec: 1.")), "{out}");
}
