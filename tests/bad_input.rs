//! Bad input: each case fails with one clear error line on stderr, a
//! non-zero exit, and leaves no state dir, mount, cgroup or process behind.

mod common;

use common::{Bundle, Out, TestEnv, STATE_TIMEOUT};
use std::fs;

/// `create` (and `run`) of `bundle` must fail cleanly: one error line, and
/// nothing left anywhere. Returns the error line.
fn assert_create_fails_cleanly(env: &TestEnv, bundle: &Bundle) -> String {
    let id = env.id("c");
    let line = env.create(bundle, &id).assert_one_error_line();
    env.assert_nothing_left(&id, bundle);
    env.assert_root_empty();

    let id = env.id("r");
    env.run(bundle, &id).assert_one_error_line();
    env.assert_nothing_left(&id, bundle);
    env.assert_root_empty();
    line
}

fn assert_mentions(line: &str, words: &[&str]) {
    let lower = line.to_lowercase();
    assert!(
        words.iter().any(|w| lower.contains(&w.to_lowercase())),
        "error line should mention one of {words:?}: {line}"
    );
}

#[test]
fn missing_config_json() {
    let Some(env) = TestEnv::new("no_config") else {
        return;
    };
    let b = env.bare_bundle();
    let line = assert_create_fails_cleanly(&env, &b);
    assert_mentions(&line, &["config.json"]);
}

#[test]
fn truncated_config_json() {
    let Some(env) = TestEnv::new("trunc_config") else {
        return;
    };
    let mut b = env.bundle();
    b.write();
    let text = fs::read(b.config_path()).unwrap_or_default();
    fs::write(b.config_path(), &text[..text.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
    assert_create_fails_cleanly(&env, &b);
}

#[test]
fn invalid_json_config() {
    let Some(env) = TestEnv::new("bad_json") else {
        return;
    };
    let b = env.bare_bundle();
    fs::write(b.config_path(), "not json {").unwrap_or_else(|e| panic!("{e}"));
    assert_create_fails_cleanly(&env, &b);
}

#[test]
fn empty_config_json() {
    let Some(env) = TestEnv::new("empty_config") else {
        return;
    };
    let b = env.bare_bundle();
    fs::write(b.config_path(), "").unwrap_or_else(|e| panic!("{e}"));
    assert_create_fails_cleanly(&env, &b);
}

#[test]
fn missing_rootfs() {
    let Some(env) = TestEnv::new("no_rootfs") else {
        return;
    };
    let mut b = env.bundle();
    b.write();
    fs::remove_dir_all(b.rootfs()).unwrap_or_else(|e| panic!("{e}"));
    let line = assert_create_fails_cleanly(&env, &b);
    assert_mentions(&line, &["rootfs", "root"]);
}

#[test]
fn unknown_namespace_type() {
    let Some(env) = TestEnv::new("bad_ns") else {
        return;
    };
    let mut b = env.bundle();
    b.add_namespace("bogus", None).write();
    let line = assert_create_fails_cleanly(&env, &b);
    assert_mentions(&line, &["bogus"]);
}

#[test]
fn namespace_path_that_does_not_exist() {
    let Some(env) = TestEnv::new("bad_ns_path") else {
        return;
    };
    let mut b = env.bundle();
    let missing = env.dir.join("no-such-netns");
    b.remove_namespace("network")
        .add_namespace("network", Some(&missing.to_string_lossy()))
        .write();
    assert_create_fails_cleanly(&env, &b);
}

#[test]
fn process_args_missing_binary() {
    // The error comes from inside the container (exec), after namespaces and
    // mounts exist: the hardest case to clean up.
    let Some(env) = TestEnv::new("no_binary") else {
        return;
    };
    let mut b = env.bundle();
    b.args(&["/no/such/binary"]).write();
    let line = assert_create_fails_cleanly(&env, &b);
    assert_mentions(
        &line,
        &["/no/such/binary", "no such file", "not found", "ENOENT"],
    );
}

#[test]
fn bad_signal_to_kill() {
    let Some(env) = TestEnv::new("bad_signal") else {
        return;
    };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]).write();
    let id = env.id("c");
    let pid = env.create_ok(&b, &id);
    // The RT offsets are fuzz finds (fuzz/regressions/argv-1.bin): they
    // overflowed i32 in the signal arithmetic.
    for sig in [
        "BOGUS",
        "SIGBOGUS",
        "99",
        "-1",
        "RTMIN+2147483647",
        "SIGRTMAX--2147483648",
    ] {
        let out = env.kill(&id, Some(sig));
        let line = out.assert_one_error_line();
        if sig.contains("BOGUS") {
            assert_mentions(&line, &[sig]);
        }
        assert_eq!(
            env.status(&id),
            "created",
            "a rejected kill {sig:?} changes nothing"
        );
        assert!(common::process_alive(pid));
    }
    env.delete(&id, true).assert_ok();
    env.assert_nothing_left(&id, &b);
    env.assert_root_empty();
}

#[test]
fn bad_container_ids() {
    let Some(env) = TestEnv::new("bad_ids") else {
        return;
    };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]).write();
    // Unique parts, so a leaked directory or cgroup is attributable.
    let uniq = env.id("u");
    let bad = [
        format!("{uniq}/x"),
        format!("../{uniq}"),
        "..".to_string(),
        ".".to_string(),
        String::new(),
        format!("{uniq}\nx"),
        "x".repeat(1024),
    ];
    for id in &bad {
        env.adopt_id(id);
        env.create(&b, id).assert_one_error_line();
        env.assert_nothing_left(id, &b);
        env.assert_root_empty();
        assert!(
            !env.dir.join(&uniq).exists(),
            "an id escaped --root: {id:?}"
        );
        assert!(
            !env.root.join(&uniq).exists(),
            "an id made a nested dir: {id:?}"
        );
    }
    for id in bad.iter().filter(|i| !i.is_empty()) {
        env.state(id).assert_one_error_line();
        // delete --force of an absent container succeeds in runc; an id that
        // could name a path outside --root must still be refused.
        if id.contains('/') || id.starts_with('.') || id.contains('\n') {
            env.delete(id, true).assert_one_error_line();
        }
    }
}

#[test]
fn duplicate_id() {
    let Some(env) = TestEnv::new("dup_id") else {
        return;
    };
    let mut first = env.bundle();
    first.args(&["sleep", "1000"]).write();
    let mut second = env.bundle();
    second.args(&["sleep", "1000"]).write();
    let id = env.id("c");
    let pid = env.create_ok(&first, &id);

    let out = env.rt_for(&second, &["create", "--bundle", &second.path_str(), &id]);
    out.assert_one_error_line();
    // The loser left nothing of its own ...
    let leftover: Vec<String> = env
        .leftovers(&id, &second)
        .into_iter()
        .filter(|f| {
            !f.starts_with("state dir")
                && !f.starts_with("cgroup")
                && !f.contains(&format!("pid {pid} "))
        })
        .collect();
    assert!(leftover.is_empty(), "second create left: {leftover:?}");
    // ... and did not disturb the winner.
    let st = env.state_json(&id);
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(pid as i64), "{st}");
    assert_eq!(st["bundle"], first.path_str().as_str(), "{st}");
    env.start(&id).assert_ok();
    env.wait_for_status(&id, "running", STATE_TIMEOUT);
    env.kill(&id, Some("KILL")).assert_ok();
    env.wait_for_status(&id, "stopped", STATE_TIMEOUT);
    env.delete(&id, false).assert_ok();
    env.assert_nothing_left(&id, &first);
    env.assert_nothing_left(&id, &second);
    env.assert_root_empty();
}

#[test]
fn commands_on_missing_container() {
    let Some(env) = TestEnv::new("missing_ctr") else {
        return;
    };
    let id = env.id("ghost");
    for out in [
        env.state(&id),
        env.start(&id),
        env.kill(&id, Some("KILL")),
        env.delete(&id, false),
    ] {
        out.assert_one_error_line();
    }
    env.assert_root_empty();
}

#[test]
fn create_without_id_fails() {
    let Some(env) = TestEnv::new("no_id") else {
        return;
    };
    let mut b = env.bundle();
    b.write();
    env.rt(&["create", "--bundle", &b.path_str()])
        .assert_one_error_line();
    env.assert_root_empty();
}

#[test]
fn unknown_command_and_flag() {
    let Some(env) = TestEnv::new("bad_cli") else {
        return;
    };
    let out: Out = env.rt(&["frobnicate"]);
    assert!(!out.ok(), "{out}");
    let out = env.rt(&["state", "--no-such-flag", "x"]);
    assert!(!out.ok(), "{out}");
    env.assert_root_empty();
}

#[test]
fn log_file_gets_json_error_line() {
    let Some(env) = TestEnv::new("log_json") else {
        return;
    };
    let log = env.dir.join("runtime.log");
    let id = env.id("ghost");
    let out = env.rt(&[
        "--log",
        &log.to_string_lossy(),
        "--log-format",
        "json",
        "state",
        &id,
    ]);
    assert!(!out.ok(), "{out}");
    let text = fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("no log file {} ({e}):\n{out}", log.display()));
    let entries: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect();
    let err = entries
        .iter()
        .rev()
        .find(|e| e["level"] == "error")
        .unwrap_or_else(|| panic!("no level=error entry in log:\n{text}"));
    assert!(err["msg"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
    assert!(
        err["time"].as_str().is_some_and(common::looks_rfc3339),
        "time is RFC 3339: {err}"
    );
    // The message engines show users is the one the runtime printed.
    if common::is_runway() {
        let line = out.assert_one_error_line();
        let msg = err["msg"].as_str().unwrap_or_default();
        assert!(
            line.contains(msg),
            "log msg {msg:?} differs from stderr {line:?}"
        );
    }
}

#[test]
fn concurrent_creates_of_one_id_one_wins() {
    let Some(env) = TestEnv::new("create_race") else {
        return;
    };
    if !common::is_runway() {
        // runc has no per-container lock: a losing create's cleanup can
        // remove the winner's state dir, so runc fails this test.
        common::note(
            "skipped: concurrent_creates_of_one_id_one_wins: runway only (runc races here)",
        );
        return;
    }
    for round in 0..3 {
        let bundles: Vec<Bundle> = (0..4)
            .map(|_| {
                let mut b = env.bundle();
                b.args(&["sleep", "1000"]).write();
                b
            })
            .collect();
        let id = env.id(&format!("r{round}"));
        let running: Vec<_> = bundles
            .iter()
            .map(|b| {
                let pid_file = b.dir.join("pid").to_string_lossy().into_owned();
                env.spawn(
                    b,
                    &[
                        "create",
                        "--bundle",
                        &b.path_str(),
                        "--pid-file",
                        &pid_file,
                        &id,
                    ],
                )
            })
            .collect();
        let outs: Vec<Out> = running.into_iter().map(|r| r.wait()).collect();
        let winners: Vec<usize> = (0..outs.len()).filter(|&i| outs[i].ok()).collect();
        let all = || {
            outs.iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            winners.len(),
            1,
            "exactly one create of {id} must win:\n{}",
            all()
        );
        let w = winners[0];
        for (i, out) in outs.iter().enumerate() {
            if i != w {
                out.assert_one_error_line();
            }
        }
        let st = env.state_json(&id);
        assert_eq!(st["status"], "created", "{st}");
        assert_eq!(
            st["bundle"],
            bundles[w].path_str().as_str(),
            "state belongs to the winner: {st}"
        );
        let pid = fs::read_to_string(bundles[w].dir.join("pid")).unwrap_or_default();
        assert_eq!(
            st["pid"].as_i64().map(|p| p.to_string()),
            Some(pid.trim().to_string()),
            "{st}"
        );
        env.delete(&id, true).assert_ok();
        for b in &bundles {
            env.assert_nothing_left(&id, b);
        }
        env.assert_root_empty();
    }
}
