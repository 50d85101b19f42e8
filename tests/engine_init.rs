//! `--init` on real busybox containers: the runway binary, copied by
//! engine::tini::install and bind-mounted read-only at /sbin/runway-init,
//! is PID 1 (`runway-init -- CMD…`): exit statuses pass through (128+N for
//! a signal), orphans are reaped, a signal to PID 1 reaches the command,
//! and a command that cannot run gives docker's 127/126.
#![cfg(feature = "full")]

mod common;

use common::extra::{self, console_server};
use common::{Bundle, TestEnv};
use runway::engine::tini;
use serde_json::json;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// A bundle whose process is `/sbin/runway-init -- sh -c SCRIPT`, with a
/// copy of the runway under test mounted read-only where engine::spec puts
/// it.
fn init_bundle(env: &TestEnv, cmd: &[&str]) -> Bundle {
    let bin = tini::install(
        Path::new(env!("CARGO_BIN_EXE_runway")),
        &env.dir.join("bin"),
    )
    .expect("install the init copy");
    let mut b = env.bundle();
    let mut args = vec![tini::CONTAINER_PATH, "--"];
    args.extend_from_slice(cmd);
    b.args(&args);
    b.add_mount(json!({
        "destination": tini::CONTAINER_PATH,
        "type": "bind",
        "source": bin.to_string_lossy(),
        "options": ["bind", "ro"],
    }));
    b
}

fn run_init(env: &TestEnv, cmd: &[&str]) -> (common::Out, Bundle, String) {
    let mut b = init_bundle(env, cmd);
    b.write();
    let id = env.id("init");
    let out = env.run(&b, &id);
    (out, b, id)
}

#[test]
fn init_passes_exit_status_through() {
    let Some(env) = TestEnv::new("init_status") else {
        return;
    };
    for (script, want) in [("exit 0", 0), ("exit 42", 42), ("kill -9 $$", 128 + 9)] {
        let (out, b, id) = run_init(&env, &["sh", "-c", script]);
        assert_eq!(out.code, want, "{script}:\n{out}");
        env.assert_nothing_left(&id, &b);
    }
}

#[test]
fn init_is_pid_1_and_runs_the_command_by_path() {
    let Some(env) = TestEnv::new("init_pid1") else {
        return;
    };
    // `sh` found on PATH as execvp does; its parent is the init, PID 1.
    let (out, b, id) = run_init(
        &env,
        &[
            "sh",
            "-c",
            "echo ppid=$PPID; tr '\\0' ' ' < /proc/1/cmdline; echo",
        ],
    );
    out.assert_ok();
    assert!(out.stdout.contains("ppid=1\n"), "{out}");
    assert!(
        out.stdout
            .contains(&format!("{} -- sh -c", tini::CONTAINER_PATH)),
        "{out}"
    );
    env.assert_nothing_left(&id, &b);
}

#[test]
fn init_reaps_orphaned_zombies() {
    let Some(env) = TestEnv::new("init_reap") else {
        return;
    };
    // The inner shell leaves `sleep` behind and exits: the orphan goes to
    // PID 1, and when it exits only PID 1 can reap it.
    let script = r#"
        for i in 1 2 3; do sh -c 'sleep 0.2 &'; done
        sleep 1.5
        z=0
        for s in /proc/[0-9]*/stat; do
            read l < $s 2>/dev/null || continue
            case "${l##*) }" in Z*) z=$((z+1)); echo "zombie: $l";; esac
        done
        echo zombies=$z
    "#;
    let (out, b, id) = run_init(&env, &["sh", "-c", script]);
    out.assert_ok();
    assert!(out.stdout.contains("zombies=0\n"), "{out}");
    env.assert_nothing_left(&id, &b);
}

#[test]
fn init_forwards_signals_to_the_command() {
    let Some(env) = TestEnv::new("init_signals") else {
        return;
    };
    // SIGTERM (docker stop) and the others a user or a terminal sends,
    // each to PID 1 with `runway kill`: the command's trap must see it.
    for (sig, code) in [
        ("TERM", 7),
        ("INT", 8),
        ("HUP", 9),
        ("QUIT", 10),
        ("USR1", 11),
        ("USR2", 12),
        ("WINCH", 13),
    ] {
        let script =
            format!("trap 'exit {code}' {sig}; touch /tmp/ready; while :; do sleep 0.1; done");
        let mut b = init_bundle(&env, &["sh", "-c", &script]);
        b.readonly(false).write();
        let id = env.id("sig");
        let running = env.spawn(&b, &["run", "--bundle", &b.path_str(), &id]);
        let ready = b.rootfs().join("tmp/ready");
        let start = Instant::now();
        while !ready.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the command never became ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        env.kill(&id, Some(sig)).assert_ok();
        let out = running.wait();
        assert_eq!(
            out.code, code,
            "SIG{sig} to PID 1 must reach the trap:\n{out}"
        );
        env.assert_nothing_left(&id, &b);
    }
}

#[test]
fn init_exec_failures_are_127_and_126() {
    let Some(env) = TestEnv::new("init_exec") else {
        return;
    };
    let (out, b, id) = run_init(&env, &["no-such-command"]);
    assert_eq!(out.code, 127, "{out}");
    assert!(
        out.stderr
            .contains("exec \"no-such-command\": no such file or directory"),
        "{out}"
    );
    env.assert_nothing_left(&id, &b);

    let mut b = init_bundle(&env, &["/not-executable"]);
    std::fs::write(b.rootfs().join("not-executable"), "#!/bin/sh\necho hi\n").unwrap();
    b.write();
    let id = env.id("noexec");
    let out = env.run(&b, &id);
    assert_eq!(out.code, 126, "{out}");
    assert!(out.stderr.contains("permission denied"), "{out}");
    env.assert_nothing_left(&id, &b);
}

#[test]
fn init_binary_is_read_only_inside() {
    let Some(env) = TestEnv::new("init_ro") else {
        return;
    };
    // Even root in the container cannot write the init it runs (the
    // CVE-2019-5736 class): the copy is mounted read-only.
    let (out, b, id) = run_init(
        &env,
        &[
            "sh",
            "-c",
            "echo x >> /proc/1/exe && echo WROTE; echo x >> /sbin/runway-init && echo WROTE; true",
        ],
    );
    out.assert_ok();
    assert!(!out.stdout.contains("WROTE"), "{out}");
    env.assert_nothing_left(&id, &b);
}

#[test]
fn init_gives_the_terminal_to_the_command() {
    let Some(env) = TestEnv::new("init_tty") else {
        return;
    };
    // An interactive shell on a terminal waits (SIGTTIN) until its group
    // is the terminal's foreground group: the init must hand it over.
    let mut b = init_bundle(&env, &["sh"]);
    b.terminal(true).write();
    let id = env.id("tty");
    let sock = env.dir.join("tty.sock");
    let server = console_server(&sock);
    env.rt_for(
        &b,
        &[
            "create",
            "--bundle",
            &b.path_str(),
            "--console-socket",
            &sock.to_string_lossy(),
            &id,
        ],
    )
    .assert_ok();
    let master: OwnedFd = match server.join() {
        Ok(Ok(fd)) => fd,
        other => panic!("console socket: {other:?}"),
    };
    env.start(&id).assert_ok();
    extra::write_fd(
        master.as_raw_fd(),
        "s=$(cat /proc/$$/stat); set -- $s; echo fg=$(( $5 == $8 && $5 != 1 ))-$((40+2)); exit\n",
    );
    let got = extra::read_until(master.as_raw_fd(), "-42", Duration::from_secs(10));
    assert!(got.contains("fg=1-42"), "{got:?}");
    env.wait_for_status(&id, "stopped", common::STATE_TIMEOUT);
    env.delete(&id, false).assert_ok();
    env.assert_nothing_left(&id, &b);
}
