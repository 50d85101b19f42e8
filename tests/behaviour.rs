//! Behaviour engines and users see, checked on real containers and, where
//! runc's behaviour is the reference, against runc on the same bundle:
//! seccomp argument matching, capabilities the runtime cannot grant, what
//! hooks receive, ociVersion, the console's owner, error messages, --help.

mod common;

use common::extra::{self, console_server, rt_under};
use common::{Bundle, Out, TestEnv};
use serde_json::{json, Value};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn runc_or_skip(test: &str) -> Option<PathBuf> {
    let runc = common::runc();
    if runc.is_none() {
        common::note(&format!("skipped: {test}: runc not installed"));
    }
    runc
}

/// `runc run` of `b` under its own root in this env.
fn runc_run(env: &TestEnv, runc: &Path, b: &Bundle) -> Out {
    let id = env.id("runc");
    env.other(
        runc,
        "runc",
        &b.mark,
        &["run", "--bundle", &b.path_str(), &id],
    )
}

/// Run `script` in `b` with the runtime under test and with runc; both must
/// succeed with the same output, which is returned.
fn same_as_runc(env: &TestEnv, runc: &Path, b: &mut Bundle, script: &str) -> String {
    b.sh(script).write();
    let id = env.id("c");
    let ours = env.run(b, &id);
    ours.assert_ok();
    env.assert_nothing_left(&id, b);
    let theirs = runc_run(env, runc, b);
    theirs.assert_ok();
    assert_eq!(ours.stdout, theirs.stdout, "ours:\n{ours}\nrunc:\n{theirs}");
    ours.stdout
}

// ----------------------------------------------------------------- seccomp

#[test]
fn seccomp_tests_on_one_argument_are_or_as_runc() {
    let Some(env) = TestEnv::new("sc_or") else {
        return;
    };
    let Some(runc) = runc_or_skip("seccomp_tests_on_one_argument_are_or_as_runc") else {
        return;
    };
    let mut b = env.bundle();
    // kill(pid, 0) or kill(pid, SIGUSR1): EACCES. One rule, two tests on
    // argument 1: runc adds them as two rules, so either one matches.
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                             "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"},
                                      {"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}]}),
    );
    let out = same_as_runc(
        &env,
        &runc,
        &mut b,
        "trap 'echo got-usr1' USR1; trap 'echo got-usr2' USR2; \
         kill -0 $$ 2>/dev/null; echo k0=$?; kill -USR1 $$ 2>/dev/null; echo k10=$?; \
         kill -USR2 $$; echo k12=$?",
    );
    assert_eq!(out, "k0=1\nk10=1\ngot-usr2\nk12=0\n");
}

#[test]
fn seccomp_filters_the_native_abi_when_not_listed_as_runc() {
    let Some(env) = TestEnv::new("sc_native") else {
        return;
    };
    let Some(runc) = runc_or_skip("seccomp_filters_the_native_abi_when_not_listed_as_runc") else {
        return;
    };
    let mut b = env.bundle();
    b.readonly(false);
    // Only i386 listed: libseccomp (runc) adds the native x86_64 anyway.
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}),
    );
    let out = same_as_runc(&env, &runc, &mut b, "mkdir /d 2>/dev/null; echo rc=$?");
    assert_eq!(out, "rc=1\n");
}

// ------------------------------------------------------------ capabilities

/// `b` asking for CAP_SYS_TIME in bounding, effective and permitted.
fn with_sys_time(b: &mut Bundle) {
    b.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            if let Some(a) = c["process"]["capabilities"][set].as_array_mut() {
                a.push(json!("CAP_SYS_TIME"));
            }
        }
    });
}

#[test]
fn capability_the_runtime_lacks_fails_the_create_as_runc() {
    let Some(env) = TestEnv::new("cap_lack") else {
        return;
    };
    let Some(runc) = runc_or_skip("capability_the_runtime_lacks_fails_the_create_as_runc") else {
        return;
    };
    let setpriv = "/usr/bin/setpriv";
    if !Path::new(setpriv).exists() {
        common::note("skipped: capability_the_runtime_lacks_fails_the_create_as_runc: no setpriv");
        return;
    }
    let mut b = env.bundle();
    with_sys_time(&mut b);
    b.write();
    // With the cap at hand, both sides create it.
    let id = env.id("ok");
    env.create(&b, &id).assert_ok();
    env.delete(&id, true).assert_ok();

    // The runtime started without CAP_SYS_TIME (not even in its bounding
    // set, so root's exec does not get it back).
    let drop = [setpriv, "--bounding-set", "-sys_time"];
    let id = env.id("lack");
    let ours = rt_under(&env, &drop, &["create", "--bundle", &b.path_str(), &id]);
    assert!(!ours.ok(), "create must fail:\n{ours}");
    let line = ours.assert_one_error_line();
    assert!(
        line.contains("CAP_SYS_TIME") && line.contains("cannot be granted"),
        "{line}"
    );
    env.assert_nothing_left(&id, &b);

    let runc_root = env.root_for("runc").to_string_lossy().into_owned();
    let runc_s = runc.to_string_lossy().into_owned();
    let rid = env.id("runc");
    let bundle = b.path_str();
    let mut args: Vec<&str> = drop[1..].to_vec();
    args.extend([
        runc_s.as_str(),
        "--root",
        &runc_root,
        "create",
        "--bundle",
        &bundle,
        &rid,
    ]);
    let theirs = common::run_program(Path::new(setpriv), &args);
    assert!(!theirs.ok(), "runc fails too:\n{theirs}");
}

// ------------------------------------------------------------------- hooks

#[test]
fn hooks_get_created_status_rootfs_cwd_and_the_process_env() {
    let Some(env) = TestEnv::new("hooks") else {
        return;
    };
    let Some(bb) = common::busybox() else {
        common::note(
            "skipped: hooks_get_created_status_rootfs_cwd_and_the_process_env: no busybox",
        );
        return;
    };
    let bb = bb.to_string_lossy().into_owned();
    let out = env.dir.join("hook-out");
    std::fs::create_dir_all(&out).unwrap();
    let o = out.to_string_lossy().into_owned();
    let mut b = env.bundle();
    b.readonly(false);
    b.set(
        "/hooks",
        json!({
            "prestart": [{"path": bb, "args": ["sh", "-c", format!("cat > {o}/prestart")]}],
            "createRuntime": [{"path": bb, "args": ["sh", "-c", format!("cat > {o}/createRuntime")]}],
            "createContainer": [{"path": bb, "args": ["sh", "-c", format!("pwd > {o}/cwd")]}],
            // No env: it gets the container process's.
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "env > /hook-env"]}],
        }),
    );
    b.sh("true").write();
    let id = env.id("c");
    env.run(&b, &id).assert_ok();
    env.assert_nothing_left(&id, &b);

    let state = |f: &str| -> Value {
        let s = std::fs::read_to_string(out.join(f)).unwrap_or_default();
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("{f} hook state ({e}): {s:?}"))
    };
    assert_eq!(state("prestart")["status"], "created");
    assert_eq!(state("prestart")["id"], id.as_str());
    assert_eq!(state("createRuntime")["status"], "creating");
    let cwd = std::fs::read_to_string(out.join("cwd")).unwrap_or_default();
    let rootfs = std::fs::canonicalize(b.rootfs()).unwrap();
    assert_eq!(Path::new(cwd.trim()), rootfs, "createContainer cwd");
    let hook_env = std::fs::read_to_string(b.rootfs().join("hook-env")).unwrap_or_default();
    assert!(
        hook_env.contains(&format!("RUNWAY_TEST_MARK={}", b.mark)) && hook_env.contains("PATH=/"),
        "startContainer env: {hook_env:?}"
    );

    // A hook with its own env gets exactly that.
    let _ = std::fs::remove_file(b.rootfs().join("hook-env"));
    b.set(
        "/hooks/startContainer",
        json!([{"path": "/bin/sh", "args": ["sh", "-c", "env > /hook-env"], "env": ["ONLY=1"]}]),
    );
    b.write();
    let id = env.id("c2");
    env.run(&b, &id).assert_ok();
    let hook_env = std::fs::read_to_string(b.rootfs().join("hook-env")).unwrap_or_default();
    assert!(
        hook_env.contains("ONLY=1") && !hook_env.contains("RUNWAY_TEST_MARK"),
        "{hook_env:?}"
    );
    env.assert_nothing_left(&id, &b);
}

// -------------------------------------------------------------- ociVersion

#[test]
fn oci_version_must_be_semver_1x() {
    let Some(env) = TestEnv::new("ociver") else {
        return;
    };
    for (v, word) in [
        ("2.0.0", "not supported"),
        ("1.0", "not a semantic version"),
        ("", "required"),
    ] {
        let mut b = env.bundle();
        b.set("/ociVersion", json!(v)).write();
        let id = env.id("bad");
        let out = env.create(&b, &id);
        let line = out.assert_one_error_line();
        assert!(
            line.contains("ociVersion") && line.contains(word),
            "{v:?}: {line}"
        );
        env.assert_nothing_left(&id, &b);
    }
    let mut b = env.bundle();
    b.set("/ociVersion", json!("1.0.2-dev")).write();
    let id = env.id("ok");
    env.run(&b, &id).assert_ok();
}

// ------------------------------------------------------------------ console

/// Create `b` with a console socket through `create`, start it through
/// `start`, and ask the shell on the pty who owns its terminal.
fn tty_owner(
    env: &TestEnv,
    name: &str,
    create: impl Fn(&str) -> Out,
    start: impl Fn() -> Out,
) -> String {
    let sock = env.dir.join(format!("{name}.sock"));
    let server = console_server(&sock);
    create(&sock.to_string_lossy()).assert_ok();
    let master: OwnedFd = match server.join() {
        Ok(Ok(fd)) => fd,
        other => panic!("console socket: {other:?}"),
    };
    start().assert_ok();
    extra::write_fd(
        master.as_raw_fd(),
        "echo owner=$(stat -c %u:%g $(tty))-$((40+2)); exit\n",
    );
    let got = extra::read_until(master.as_raw_fd(), "-42", Duration::from_secs(10));
    got.lines()
        .find_map(|l| l.trim().strip_prefix("owner="))
        .unwrap_or_else(|| panic!("no owner line in {got:?}"))
        .to_string()
}

#[test]
fn console_belongs_to_the_process_user_as_runc() {
    let Some(env) = TestEnv::new("tty_owner") else {
        return;
    };
    let Some(runc) = runc_or_skip("console_belongs_to_the_process_user_as_runc") else {
        return;
    };
    let mut b = env.bundle();
    b.terminal(true).args(&["sh"]);
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    b.write();
    let id = env.id("c");
    let ours = tty_owner(
        &env,
        "ours",
        |s| {
            env.rt_for(
                &b,
                &[
                    "create",
                    "--bundle",
                    &b.path_str(),
                    "--console-socket",
                    s,
                    &id,
                ],
            )
        },
        || env.start(&id),
    );
    let rid = env.id("runc");
    let theirs = tty_owner(
        &env,
        "runc",
        |s| {
            env.other(
                &runc,
                "runc",
                &b.mark,
                &[
                    "create",
                    "--bundle",
                    &b.path_str(),
                    "--console-socket",
                    s,
                    &rid,
                ],
            )
        },
        || env.other(&runc, "runc", &b.mark, &["start", &rid]),
    );
    env.wait_for_status(&id, "stopped", common::STATE_TIMEOUT);
    env.delete(&id, false).assert_ok();
    env.other(&runc, "runc", &b.mark, &["delete", "--force", &rid]);
    assert!(ours.starts_with("1000:"), "ours: {ours}");
    assert_eq!(
        ours.split(':').next(),
        theirs.split(':').next(),
        "owner uid: ours {ours}, runc {theirs}"
    );
    env.assert_nothing_left(&id, &b);
}

// ----------------------------------------------------------------- messages

#[test]
fn errors_are_words_with_the_path() {
    let Some(env) = TestEnv::new("words") else {
        return;
    };
    if !common::is_runway() {
        common::note("skipped: errors_are_words_with_the_path: runway's wording only");
        return;
    }
    // A missing rootfs, in the text and in the JSON log alike.
    let mut b = env.bundle();
    b.set("/root/path", json!("/no/such/rootfs")).write();
    let id = env.id("c");
    let log = env.dir.join("log.json");
    let out = env.rt_for(
        &b,
        &[
            "--log",
            &log.to_string_lossy(),
            "--log-format",
            "json",
            "create",
            "--bundle",
            &b.path_str(),
            &id,
        ],
    );
    let line = out.assert_one_error_line();
    assert_eq!(
        line,
        "runway: rootfs /no/such/rootfs: no such file or directory"
    );
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let last: Value = serde_json::from_str(logged.lines().last().unwrap_or("")).unwrap();
    assert_eq!(last["level"], "error");
    assert_eq!(
        last["msg"],
        "rootfs /no/such/rootfs: no such file or directory"
    );
    env.assert_nothing_left(&id, &b);

    // No config.json.
    let b = env.bare_bundle();
    let id = env.id("c");
    let line = env.create(&b, &id).assert_one_error_line();
    assert_eq!(
        line,
        format!(
            "runway: no config.json in {} (make one with runway spec, or pass --bundle)",
            b.path_str()
        )
    );
    env.assert_nothing_left(&id, &b);

    // --root is a file.
    let file = env.dir.join("root-file");
    std::fs::write(&file, "").unwrap();
    let f = file.to_string_lossy().into_owned();
    let out = common::run_runtime(&["--root", &f, "list"]);
    assert_eq!(
        out.assert_one_error_line(),
        format!("runway: --root {f}: not a directory")
    );
}

// --------------------------------------------------------------------- help

/// runc's verbs this runtime implements.
const VERBS: &[&str] = &[
    "create", "start", "run", "state", "exec", "kill", "delete", "list", "pause", "resume", "ps",
    "events", "update", "spec", "features",
];

/// `--name`s of the flags a help text lists, one per line.
fn listed_flags(help: &str) -> Vec<String> {
    help.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = match l.strip_prefix('-') {
                Some(r) if !r.starts_with('-') => r.split_once(", ").map_or(l, |(_, r)| r),
                _ => l,
            };
            let name = l.strip_prefix("--")?;
            let end = name.find([' ', ',', '=']).unwrap_or(name.len());
            Some(name[..end].to_string())
        })
        .filter(|n| !n.is_empty() && n != "help")
        .collect()
}

#[test]
fn every_verbs_help_lists_each_of_its_flags() {
    let runc = common::runc();
    if runc.is_none() {
        common::note(
            "skipped: every_verbs_help_lists_each_of_its_flags (runc part): runc not installed",
        );
    }
    for verb in VERBS {
        let ours = common::run_runtime(&[verb, "--help"]);
        ours.assert_ok();
        assert!(ours.stdout.starts_with("usage: "), "{verb}: {ours}");
        let mine = listed_flags(&ours.stdout);
        // One line per flag, each with a description after the name.
        for l in ours
            .stdout
            .lines()
            .filter(|l| l.trim_start().starts_with('-'))
        {
            assert!(
                l.trim()
                    .split("  ")
                    .filter(|p| !p.trim().is_empty())
                    .count()
                    >= 2,
                "{verb}: flag line without a description: {l:?}"
            );
        }
        if let Some(runc) = &runc {
            let theirs = common::run_program(runc, &[verb, "--help"]);
            for f in listed_flags(&theirs.stdout) {
                assert!(
                    mine.contains(&f),
                    "{verb} --help does not list --{f} (runc does):\n{}",
                    ours.stdout
                );
            }
        }
    }
    // A flag table entry that --help would miss: run has create's and its own.
    let run = listed_flags(&common::run_runtime(&["run", "--help"]).stdout);
    for f in ["bundle", "detach", "keep", "preserve-fds"] {
        assert!(run.contains(&f.to_string()), "run --help: {run:?}");
    }
    // And the global ones.
    let top = listed_flags(&common::run_runtime(&["--help"]).stdout);
    for f in [
        "root",
        "log",
        "log-format",
        "debug",
        "systemd-cgroup",
        "rootless",
    ] {
        assert!(top.contains(&f.to_string()), "--help: {top:?}");
    }
}

#[test]
fn exec_tty_belongs_to_the_exec_user() {
    let Some(env) = TestEnv::new("tty_exec_owner") else {
        return;
    };
    let mut b = env.bundle();
    b.args(&["sleep", "100"]).write();
    let id = env.id("c");
    extra::start_running(&env, &b, &id);
    let sock = env.dir.join("exec.sock");
    let server = console_server(&sock);
    let s = sock.to_string_lossy().into_owned();
    let mut p = extra::spawn_rt(
        &env,
        &b.mark,
        &[
            "exec",
            "-t",
            "--console-socket",
            &s,
            "-u",
            "1234",
            &id,
            "sh",
        ],
        None,
        0,
    );
    let master: OwnedFd = match server.join() {
        Ok(Ok(fd)) => fd,
        other => panic!("console socket: {other:?}"),
    };
    extra::write_fd(
        master.as_raw_fd(),
        "echo owner=$(stat -c %u $(tty))-$((40+2)); exit\n",
    );
    let got = extra::read_until(master.as_raw_fd(), "-42", Duration::from_secs(10));
    assert!(got.contains("owner=1234-42"), "{got:?}");
    assert_eq!(
        p.wait_timeout(Duration::from_secs(10)),
        Some(0),
        "{}",
        p.describe()
    );
    env.kill(&id, Some("KILL")).assert_ok();
    env.wait_for_status(&id, "stopped", common::STATE_TIMEOUT);
    env.delete(&id, false).assert_ok();
    env.assert_nothing_left(&id, &b);
}
