//! The container lifecycle on real busybox containers: run, create, start,
//! state, kill, delete, list, spec.

mod common;

use common::{Bundle, TestEnv, STATE_TIMEOUT};
use serde_json::Value;
use std::fs;

/// A container that runs until killed.
fn sleeper(env: &TestEnv) -> Bundle {
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]).write();
    b
}

#[test]
fn run_prints_from_pid1_with_hostname_and_returns_exit_status() {
    let Some(env) = TestEnv::new("run_pid1") else {
        return;
    };
    let mut b = env.bundle();
    b.hostname("rw-host")
        .sh("echo $$; hostname; exit 3")
        .write();
    let id = env.id("c");
    let out = env.run(&b, &id);
    assert_eq!(
        out.code, 3,
        "run returns the container's exit status:\n{out}"
    );
    assert_eq!(
        out.stdout_lines(),
        ["1", "rw-host"],
        "pid 1 and the configured hostname:\n{out}"
    );
    // Without --keep, run deletes the container once it exits.
    assert!(
        !env.state(&id).ok(),
        "state of a finished `run` container should fail"
    );
    env.assert_nothing_left(&id, &b);
}

#[test]
fn run_returns_zero_and_passes_stdout() {
    let Some(env) = TestEnv::new("run_zero") else {
        return;
    };
    let mut b = env.bundle();
    b.sh("echo out; echo err >&2").write();
    let id = env.id("c");
    let out = env.run(&b, &id);
    out.assert_ok();
    assert_eq!(out.stdout, "out\n", "{out}");
    assert!(
        out.stderr.contains("err"),
        "container stderr reaches the caller:\n{out}"
    );
    env.assert_nothing_left(&id, &b);
}

#[test]
fn readonly_root_is_readonly() {
    let Some(env) = TestEnv::new("ro_root") else {
        return;
    };
    let mut b = env.bundle();
    b.readonly(true)
        .sh("touch /x && echo wrote; echo done")
        .write();
    let id = env.id("c");
    let out = env.run(&b, &id);
    out.assert_ok();
    assert_eq!(
        out.stdout, "done\n",
        "touch /x must fail on a readonly root:\n{out}"
    );
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(!b.rootfs().join("x").exists());
    env.assert_nothing_left(&id, &b);
}

#[test]
fn writable_root_is_writable() {
    // The converse of readonly_root_is_readonly, so that test proves readonly
    // does something.
    let Some(env) = TestEnv::new("rw_root") else {
        return;
    };
    let mut b = env.bundle();
    b.readonly(false).sh("touch /x && echo wrote").write();
    let id = env.id("c");
    let out = env.run(&b, &id);
    out.assert_ok();
    assert_eq!(out.stdout, "wrote\n", "{out}");
    assert!(
        b.rootfs().join("x").exists(),
        "the file lands in the bundle's rootfs"
    );
    env.assert_nothing_left(&id, &b);
}

#[test]
fn create_start_kill_delete_leaves_nothing() {
    let Some(env) = TestEnv::new("lifecycle") else {
        return;
    };
    let b = sleeper(&env);
    let id = env.id("c");

    let pid = env.create_ok(&b, &id);
    assert!(pid > 0);
    let st = env.state_json(&id);
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], id.as_str(), "{st}");
    assert_eq!(
        st["pid"].as_i64(),
        Some(pid as i64),
        "state pid = pid file:\n{st}"
    );
    assert_eq!(st["bundle"], b.path_str().as_str(), "{st}");
    assert!(
        st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "{st}"
    );
    assert!(
        st["created"].as_str().is_some_and(common::looks_rfc3339),
        "{st}"
    );
    assert!(
        common::process_alive(pid),
        "the init of a created container exists"
    );
    assert!(
        env.state_dir(&id).is_dir(),
        "created container has a state dir"
    );

    env.start(&id).assert_ok();
    env.wait_for_status(&id, "running", STATE_TIMEOUT);
    assert_eq!(
        env.state_json(&id)["pid"].as_i64(),
        Some(pid as i64),
        "start keeps the init pid"
    );

    env.start(&id).assert_one_error_line();
    assert_eq!(
        env.status(&id),
        "running",
        "a failed second start changes nothing"
    );

    env.delete(&id, false).assert_one_error_line();
    assert_eq!(
        env.status(&id),
        "running",
        "delete without --force leaves a running container"
    );

    env.kill(&id, Some("KILL")).assert_ok();
    env.wait_for_status(&id, "stopped", STATE_TIMEOUT);
    assert!(
        !common::process_alive(pid),
        "stopped means the init is gone"
    );

    env.delete(&id, false).assert_ok();
    assert!(!env.state(&id).ok(), "state after delete must fail");
    env.assert_nothing_left(&id, &b);
}

#[test]
fn kill_default_signal_is_term() {
    let Some(env) = TestEnv::new("kill_term") else {
        return;
    };
    let mut b = env.bundle();
    // pid 1 ignores signals it has no handler for, so TERM needs a trap.
    b.sh("trap 'exit 0' TERM; while :; do sleep 0.05; done")
        .write();
    let id = env.id("c");
    env.create_ok(&b, &id);
    env.start(&id).assert_ok();
    env.wait_for_status(&id, "running", STATE_TIMEOUT);
    env.kill(&id, None).assert_ok();
    env.wait_for_status(&id, "stopped", STATE_TIMEOUT);
    env.delete(&id, false).assert_ok();
    env.assert_nothing_left(&id, &b);
}

/// The container's processes ignore no signal, whatever the runtime
/// ignored: its own SIGPIPE, or SIGINT and SIGQUIT from a caller that ran
/// it as `cmd &` (runc's start with none ignored too).
#[test]
fn container_processes_start_with_no_signal_ignored() {
    let Some(env) = TestEnv::new("sig_dfl") else {
        return;
    };
    const IGNORED: &[i32] = &[libc::SIGINT, libc::SIGQUIT, libc::SIGPIPE, libc::SIGUSR1];
    let mut b = env.bundle();
    b.sh("grep SigIgn /proc/self/status; exec sleep 1000")
        .write();
    let id = env.id("c");
    let out = env.rt_for_ignoring(
        &b,
        IGNORED,
        &["run", "--detach", "--bundle", &b.path_str(), &id],
    );
    out.assert_ok();
    env.wait_for_status(&id, "running", STATE_TIMEOUT);
    let pid = env.state_json(&id)["pid"].as_i64().unwrap();
    // Of the ones it ignored (bit N-1 = signal N in /proc's masks).
    let ignored = |status: &str| -> u64 {
        let mask = common::extra::status_field(status, "SigIgn").unwrap_or_default();
        let mask = u64::from_str_radix(&mask, 16).unwrap();
        IGNORED
            .iter()
            .map(|s| 1u64 << (s - 1))
            .filter(|bit| mask & bit != 0)
            .sum()
    };
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(ignored(&status), 0, "init: {status}");
    let ex = env.rt_for_ignoring(
        &b,
        IGNORED,
        &["exec", &id, "grep", "SigIgn", "/proc/self/status"],
    );
    ex.assert_ok();
    assert_eq!(ignored(&ex.stdout), 0, "exec: {:?}", ex.stdout);
    env.kill(&id, Some("KILL")).assert_ok();
    env.wait_for_status(&id, "stopped", STATE_TIMEOUT);
    env.delete(&id, false).assert_ok();
    env.assert_nothing_left(&id, &b);
}

#[test]
fn kill_accepts_signal_names_and_numbers() {
    let Some(env) = TestEnv::new("kill_forms") else {
        return;
    };
    let mut b = env.bundle();
    // Each handled signal leaves a mark in a file; KILL (9) ends it.
    b.readonly(false)
        .sh("trap 'echo usr1 >> /sigs' USR1; trap 'echo hup >> /sigs' HUP; trap 'echo int >> /sigs' INT; \
             while :; do sleep 0.05; done")
        .write();
    let id = env.id("c");
    env.create_ok(&b, &id);
    env.start(&id).assert_ok();
    env.wait_for_status(&id, "running", STATE_TIMEOUT);
    let sigs = b.rootfs().join("sigs");
    for (sig, want) in [("USR1", "usr1"), ("SIGHUP", "hup"), ("2", "int")] {
        env.kill(&id, Some(sig)).assert_ok();
        let start = std::time::Instant::now();
        while !fs::read_to_string(&sigs).unwrap_or_default().contains(want) {
            assert!(
                start.elapsed() < STATE_TIMEOUT,
                "signal {sig} never arrived"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    env.kill(&id, Some("9")).assert_ok();
    env.wait_for_status(&id, "stopped", STATE_TIMEOUT);
    env.delete(&id, false).assert_ok();
    env.assert_nothing_left(&id, &b);
}

#[test]
fn delete_force_of_created_container() {
    let Some(env) = TestEnv::new("del_created") else {
        return;
    };
    let b = sleeper(&env);
    let id = env.id("c");
    let pid = env.create_ok(&b, &id);
    assert_eq!(env.status(&id), "created");
    env.delete(&id, true).assert_ok();
    assert!(!env.state(&id).ok());
    assert!(
        !common::process_alive(pid),
        "delete --force kills the waiting init"
    );
    env.assert_nothing_left(&id, &b);
}

#[test]
fn delete_force_of_running_container() {
    let Some(env) = TestEnv::new("del_running") else {
        return;
    };
    let b = sleeper(&env);
    let id = env.id("c");
    let pid = env.create_ok(&b, &id);
    env.start(&id).assert_ok();
    env.wait_for_status(&id, "running", STATE_TIMEOUT);
    env.delete(&id, true).assert_ok();
    assert!(!env.state(&id).ok());
    assert!(
        !common::process_alive(pid),
        "delete --force kills the running init"
    );
    env.assert_nothing_left(&id, &b);
}

#[test]
fn start_of_stopped_container_fails() {
    let Some(env) = TestEnv::new("start_stopped") else {
        return;
    };
    let mut b = env.bundle();
    b.sh("exit 0").write();
    let id = env.id("c");
    env.create_ok(&b, &id);
    env.start(&id).assert_ok();
    env.wait_for_status(&id, "stopped", STATE_TIMEOUT);
    env.start(&id).assert_one_error_line();
    env.delete(&id, false).assert_ok();
    env.assert_nothing_left(&id, &b);
}

#[test]
fn run_detached_then_delete_force() {
    let Some(env) = TestEnv::new("run_detach") else {
        return;
    };
    let b = sleeper(&env);
    let id = env.id("c");
    env.rt_for(&b, &["run", "--detach", "--bundle", &b.path_str(), &id])
        .assert_ok();
    assert_eq!(env.status(&id), "running");
    env.delete(&id, true).assert_ok();
    env.assert_nothing_left(&id, &b);

    // A mount leaked into our namespace under the bundle is seen too.
    let target = b.rootfs().join("tmp");
    let c = std::ffi::CString::new(target.to_string_lossy().as_bytes()).unwrap_or_default();
    // SAFETY: NUL-terminated strings; a tmpfs on our own scratch directory.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            c.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "mount tmpfs on {}", target.display());
    let found = env.leftovers(&id, &b);
    // SAFETY: as above.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    assert!(
        found.iter().any(|f| f.starts_with("mount left")),
        "checker misses a mount: {found:?}"
    );
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    let Some(env) = TestEnv::new("run_keep") else {
        return;
    };
    let mut b = env.bundle();
    b.sh("exit 0").write();
    let id = env.id("c");
    env.rt_for(&b, &["run", "--keep", "--bundle", &b.path_str(), &id])
        .assert_ok();
    assert_eq!(
        env.status(&id),
        "stopped",
        "--keep keeps the container after it exits"
    );
    env.delete(&id, false).assert_ok();
    env.assert_nothing_left(&id, &b);
}

/// `list --format json`: the output, and its array.
fn list_json(env: &TestEnv) -> (common::Out, Vec<Value>) {
    let json = env.list(&["--format", "json"]);
    json.assert_ok();
    let v: Value =
        serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("list json ({e}):\n{json}"));
    let items = v
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("list --format json is an array:\n{json}"));
    (json, items)
}

#[test]
fn list_quiet_json_and_table() {
    let Some(env) = TestEnv::new("list") else {
        return;
    };
    let b1 = sleeper(&env);
    let b2 = sleeper(&env);
    let (created, running) = (env.id("created"), env.id("running"));
    env.create_ok(&b1, &created);
    env.create_ok(&b2, &running);
    env.start(&running).assert_ok();
    env.wait_for_status(&running, "running", STATE_TIMEOUT);

    let quiet = env.list(&["-q"]);
    quiet.assert_ok();
    let mut ids: Vec<&str> = quiet.stdout_lines();
    ids.sort();
    let mut want = vec![created.as_str(), running.as_str()];
    want.sort();
    assert_eq!(ids, want, "list -q prints one id a line:\n{quiet}");

    let (json, items) = list_json(&env);
    assert_eq!(items.len(), 2, "{json}");
    for (id, status, bundle) in [(&created, "created", &b1), (&running, "running", &b2)] {
        let item = items
            .iter()
            .find(|i| i["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} missing:\n{json}"));
        assert_eq!(item["status"], status, "{json}");
        assert_eq!(item["bundle"], bundle.path_str().as_str(), "{json}");
        assert_eq!(
            item["pid"].as_i64(),
            Some(env.read_pid_file(id) as i64),
            "{json}"
        );
        assert!(
            item["created"].as_str().is_some_and(common::looks_rfc3339),
            "{json}"
        );
    }

    let table = env.list(&[]);
    table.assert_ok();
    let lines = table.stdout_lines();
    assert_eq!(lines.len(), 3, "header + one row per container:\n{table}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{table}"
    );
    for (id, status, bundle) in [(&created, "created", &b1), (&running, "running", &b2)] {
        let row = lines
            .iter()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{id}:\n{table}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols.len(), 6, "{table}");
        assert_eq!(cols[1], env.read_pid_file(id).to_string(), "{table}");
        assert_eq!(cols[2], status, "{table}");
        assert_eq!(cols[3], bundle.path_str(), "{table}");
        assert!(common::looks_rfc3339(cols[4]), "{table}");
        assert_eq!(cols[5], "root", "{table}");
    }

    env.delete(&created, true).assert_ok();
    env.delete(&running, true).assert_ok();
    assert_eq!(env.list(&["-q"]).stdout, "", "no containers after delete");
    env.assert_nothing_left(&created, &b1);
    env.assert_nothing_left(&running, &b2);
}

#[test]
fn spec_writes_a_config_that_runs() {
    let Some(env) = TestEnv::new("spec_runs") else {
        return;
    };
    // A bundle whose config.json comes straight from `spec`, then only the
    // two edits every non-interactive use needs: no terminal, other args.
    let mut b = env.bare_bundle();
    let out = env.rt(&["spec", "--bundle", &b.path_str()]);
    out.assert_ok();
    let text = fs::read_to_string(b.config_path())
        .unwrap_or_else(|e| panic!("spec wrote no config.json ({e}):\n{out}"));
    let mut config: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("spec wrote bad JSON ({e}):\n{text}"));
    assert_eq!(
        config["process"]["terminal"], true,
        "runc's default spec asks for a terminal"
    );
    assert_eq!(config["root"]["path"], "rootfs");
    assert_eq!(config["root"]["readonly"], true);
    config["process"]["terminal"] = Value::Bool(false);
    config["process"]["args"] = serde_json::json!(["sh", "-c", "echo spec-ok; hostname"]);
    b.config = config;
    b.write();
    let id = env.id("c");
    let out = env.run(&b, &id);
    out.assert_ok();
    // runc's default hostname is "runc"; runway's is "runway".
    let want_host = common::runtime_name();
    assert_eq!(out.stdout_lines(), ["spec-ok", want_host.as_str()], "{out}");
    env.assert_nothing_left(&id, &b);

    // Like runc, spec does not overwrite an existing config.json.
    let before = fs::read(b.config_path()).unwrap_or_default();
    env.rt(&["spec", "--bundle", &b.path_str()])
        .assert_one_error_line();
    assert_eq!(
        fs::read(b.config_path()).unwrap_or_default(),
        before,
        "spec must not touch an existing config.json"
    );
}

#[test]
fn runway_binary_is_static() {
    // Checks the binary cargo built, whatever runtime the other tests use.
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_runway"));
    assert!(
        common::elf_is_static(bin),
        "{} has a program interpreter: not static",
        bin.display()
    );
}

#[test]
fn nothing_left_checker_sees_a_live_container() {
    // The "nothing left" assertions above prove something only if the
    // checker notices a container that is still there.
    let Some(env) = TestEnv::new("checker") else {
        return;
    };
    let b = sleeper(&env);
    let id = env.id("c");
    env.create_ok(&b, &id);
    env.start(&id).assert_ok();
    env.wait_for_status(&id, "running", STATE_TIMEOUT);
    let found = env.leftovers(&id, &b);
    let has = |what: &str| found.iter().any(|f| f.starts_with(what));
    assert!(has("state dir"), "checker misses the state dir: {found:?}");
    assert!(
        has("process left"),
        "checker misses the container process: {found:?}"
    );
    // A runtime may run without cgroups (e.g. rootless); only require the
    // check to find one when the process sits in a cgroup named after the id.
    let pid = env.read_pid_file(&id);
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    if cgroup.contains(&id) {
        assert!(
            has("cgroup left"),
            "checker misses the cgroup: {found:?}\n{cgroup}"
        );
    }
    env.delete(&id, true).assert_ok();
    env.assert_nothing_left(&id, &b);

    // A mount leaked into our namespace under the bundle is seen too.
    let target = b.rootfs().join("tmp");
    let c = std::ffi::CString::new(target.to_string_lossy().as_bytes()).unwrap_or_default();
    // SAFETY: NUL-terminated strings; a tmpfs on our own scratch directory.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            c.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "mount tmpfs on {}", target.display());
    let found = env.leftovers(&id, &b);
    // SAFETY: as above.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    assert!(
        found.iter().any(|f| f.starts_with("mount left")),
        "checker misses a mount: {found:?}"
    );
}

#[test]
fn foreground_run_killed_returns_128_plus_signal() {
    // `kill` from another process while `run` waits in the foreground: run
    // returns like a shell would (128 + signal), as runc does.
    let Some(env) = TestEnv::new("run_killed") else {
        return;
    };
    let b = sleeper(&env);
    let id = env.id("c");
    let mut run = env.spawn(&b, &["run", "--bundle", &b.path_str(), &id]);
    env.wait_for_status(&id, "running", STATE_TIMEOUT);
    env.kill(&id, Some("KILL")).assert_ok();
    let start = std::time::Instant::now();
    while run.is_running() {
        assert!(
            start.elapsed() < STATE_TIMEOUT,
            "run did not return after its container was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = run.wait();
    assert_eq!(out.code, 128 + 9, "{out}");
    env.assert_nothing_left(&id, &b);
}

#[test]
fn detached_create_keeps_the_callers_stdio() {
    // Engines hand `create` the fds the container should write to; the init
    // keeps them across `create` returning and writes after `start`.
    let Some(env) = TestEnv::new("create_stdio") else {
        return;
    };
    let mut b = env.bundle();
    b.sh("echo to-stdout; echo to-stderr >&2").write();
    let id = env.id("c");
    let out_file = env.dir.join("container.out");
    let err_file = env.dir.join("container.err");
    let mut cmd = std::process::Command::new(common::runtime());
    cmd.arg("--root")
        .arg(&env.root)
        .args(["create", "--bundle", &b.path_str(), &id])
        .env("RUNWAY_TEST_MARK", &b.mark)
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(&out_file).unwrap_or_else(|e| panic!("{e}")))
        .stderr(fs::File::create(&err_file).unwrap_or_else(|e| panic!("{e}")));
    let status = cmd.status().unwrap_or_else(|e| panic!("spawn create: {e}"));
    assert!(
        status.success(),
        "create failed: {}",
        fs::read_to_string(&err_file).unwrap_or_default()
    );
    assert_eq!(
        fs::read_to_string(&out_file).unwrap_or_default(),
        "",
        "nothing runs before start"
    );
    env.start(&id).assert_ok();
    env.wait_for_status(&id, "stopped", STATE_TIMEOUT);
    assert_eq!(
        fs::read_to_string(&out_file).unwrap_or_default(),
        "to-stdout\n"
    );
    assert!(fs::read_to_string(&err_file)
        .unwrap_or_default()
        .contains("to-stderr"));
    env.delete(&id, false).assert_ok();
    env.assert_nothing_left(&id, &b);
}

#[test]
fn run_with_no_pivot() {
    let Some(env) = TestEnv::new("no_pivot") else {
        return;
    };
    let mut b = env.bundle();
    b.sh("echo $$; ls /bin/busybox").write();
    let id = env.id("c");
    let out = env.rt_for(&b, &["run", "--no-pivot", "--bundle", &b.path_str(), &id]);
    out.assert_ok();
    assert_eq!(out.stdout_lines(), ["1", "/bin/busybox"], "{out}");
    env.assert_nothing_left(&id, &b);
}

#[test]
fn mounts_bind_and_tmpfs() {
    let Some(env) = TestEnv::new("mounts") else {
        return;
    };
    let host_dir = env.dir.join("shared");
    fs::create_dir_all(&host_dir).unwrap_or_else(|e| panic!("{e}"));
    fs::write(host_dir.join("hello.txt"), "from host\n").unwrap_or_else(|e| panic!("{e}"));
    let host_file = env.dir.join("single.txt");
    fs::write(&host_file, "one file\n").unwrap_or_else(|e| panic!("{e}"));
    let mut b = env.bundle();
    b.add_mount(serde_json::json!({"destination": "/data", "type": "bind",
            "source": host_dir.to_string_lossy(), "options": ["rbind", "ro"]}))
        .add_mount(
            serde_json::json!({"destination": "/etc/single.txt", "type": "bind",
            "source": host_file.to_string_lossy(), "options": ["bind"]}),
        )
        .add_mount(
            serde_json::json!({"destination": "/scratch", "type": "tmpfs",
            "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", "size=1m"]}),
        )
        .sh("cat /data/hello.txt /etc/single.txt; \
             touch /data/x 2>/dev/null && echo data-writable; \
             touch /scratch/x && echo scratch-ok; \
             grep -q ' /scratch tmpfs ' /proc/mounts && echo scratch-tmpfs")
        .write();
    let id = env.id("c");
    let out = env.run(&b, &id);
    out.assert_ok();
    assert_eq!(
        out.stdout_lines(),
        ["from host", "one file", "scratch-ok", "scratch-tmpfs"],
        "{out}"
    );
    assert!(
        !host_dir.join("x").exists(),
        "ro bind must not write through"
    );
    env.assert_nothing_left(&id, &b);
}

#[test]
fn namespaces_are_new_and_joinable_by_path() {
    let Some(env) = TestEnv::new("ns_join") else {
        return;
    };
    let first = sleeper(&env);
    let a = env.id("a");
    let pid = env.create_ok(&first, &a);
    env.start(&a).assert_ok();
    env.wait_for_status(&a, "running", STATE_TIMEOUT);
    let ns = |p: &str, kind: &str| {
        fs::read_link(format!("/proc/{p}/ns/{kind}")).map(|l| l.to_string_lossy().into_owned())
    };
    for kind in ["pid", "net", "ipc", "uts", "mnt"] {
        assert_ne!(
            ns(&pid.to_string(), kind).ok(),
            ns("self", kind).ok(),
            "{kind} namespace is new"
        );
    }
    let mut b = env.bundle();
    let net_path = format!("/proc/{pid}/ns/net");
    b.remove_namespace("network")
        .add_namespace("network", Some(&net_path))
        .sh("readlink /proc/self/ns/net")
        .write();
    let id = env.id("b");
    let out = env.run(&b, &id);
    out.assert_ok();
    assert_eq!(
        Some(out.stdout.trim().to_string()),
        ns(&pid.to_string(), "net").ok(),
        "joined a's netns:\n{out}"
    );
    env.assert_nothing_left(&id, &b);
    env.delete(&a, true).assert_ok();
    env.assert_nothing_left(&a, &first);
}

#[test]
fn readme_example_bundle_runs() {
    // The README's first-run path: examples/busybox-bundle.sh, then `run`.
    let Some(env) = TestEnv::new("example") else {
        return;
    };
    if !common::elf_is_static(std::path::Path::new("/bin/busybox")) {
        // The script would try to apt-get install busybox-static.
        common::note("skipped: readme_example_bundle_runs: /bin/busybox is not busybox-static");
        return;
    }
    let dir = env.dir.join("example.bundle");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/busybox-bundle.sh");
    let mut cmd = std::process::Command::new("sh");
    cmd.arg(script).arg(&dir).env("RUNWAY", common::runtime());
    let made = cmd.output().unwrap_or_else(|e| panic!("{script}: {e}"));
    assert!(
        made.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let b = env.bundle_at(&dir);
    let id = env.id("demo");
    let out = env.run(&b, &id);
    out.assert_ok();
    let host = common::runtime_name();
    assert_eq!(
        out.stdout_lines(),
        [
            format!("hello from {host}").as_str(),
            "uid=0(root) gid=0(root)"
        ],
        "{out}"
    );
    env.assert_nothing_left(&id, &b);
}

#[test]
fn failed_exec_says_what_engines_match() {
    // podman and Docker turn a failed exec into exit 127 or 126 by matching
    // the C library's words in the runtime's error ("no such file or
    // directory", "permission denied"); an errno name alone made podman
    // report 126 for a missing binary.
    let Some(env) = TestEnv::new("exec_words") else {
        return;
    };
    for (arg0, words) in [
        ("/no/such/binary", "no such file or directory"),
        ("/etc/passwd", "permission denied"),
    ] {
        let mut b = env.bundle();
        b.args(&[arg0]).write();
        let id = env.id("c");
        let line = env.create(&b, &id).assert_one_error_line();
        assert!(
            line.contains(arg0) && line.to_lowercase().contains(words),
            "create of {arg0}: {line:?} lacks {words:?}"
        );
        env.assert_nothing_left(&id, &b);
    }
    let b = sleeper(&env);
    let id = env.id("c");
    env.create_ok(&b, &id);
    env.start(&id).assert_ok();
    let line = env
        .rt(&["exec", &id, "/no/such/binary"])
        .assert_one_error_line();
    assert!(line.contains("no such file or directory"), "exec: {line:?}");
    env.delete(&id, true).assert_ok();
    env.assert_nothing_left(&id, &b);
    env.assert_root_empty();
}

/// Stopped, created, running and paused containers side by side: each
/// status and pid right (state::list has its own test for the /proc path
/// it takes past 64 containers).
#[test]
fn list_statuses_with_many_containers() {
    let Some(env) = TestEnv::new("listmany") else {
        return;
    };
    let mut done = env.bundle();
    done.args(&["true"]).write();
    let stopped: Vec<String> = (0..17).map(|i| env.id(&format!("s{i}"))).collect();
    // create+start of /bin/true leaves a stopped container behind.
    for id in &stopped {
        env.create_ok(&done, id);
        env.start(id).assert_ok();
        env.wait_for_status(id, "stopped", STATE_TIMEOUT);
    }
    let b = sleeper(&env);
    let (created, running, paused) = (env.id("created"), env.id("running"), env.id("paused"));
    env.create_ok(&b, &created);
    for id in [&running, &paused] {
        common::extra::start_running(&env, &b, id);
    }
    env.rt(&["pause", &paused]).assert_ok();

    let (json, items) = list_json(&env);
    assert_eq!(items.len(), 20, "{json}");
    let find = |id: &str| {
        items
            .iter()
            .find(|i| i["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing:\n{json}"))
    };
    for id in &stopped {
        assert_eq!(find(id)["status"], "stopped", "{json}");
        assert_eq!(find(id)["pid"], 0, "{json}");
    }
    for (id, status) in [
        (&created, "created"),
        (&running, "running"),
        (&paused, "paused"),
    ] {
        assert_eq!(find(id)["status"], status, "{json}");
        assert_eq!(
            find(id)["pid"].as_i64(),
            Some(env.read_pid_file(id) as i64),
            "{json}"
        );
    }
    env.rt(&["resume", &paused]).assert_ok();
    for id in stopped.iter().chain([&created, &running, &paused]) {
        env.delete(id, true).assert_ok();
    }
    env.assert_root_empty();
}
