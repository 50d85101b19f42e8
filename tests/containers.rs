//! `runway container …` from images (issue 16's "Must show"): the same
//! scenarios with runway and, where podman is usable, with podman on the
//! same OCI layout (built by tests/common/oci.rs), outputs compared where
//! deterministic; and the crash cases (killed monitor, killed `run`, 20
//! concurrent `--name same`), each ending with nothing left: no container
//! dir, name, OCI state, mount, cgroup or process.
//!
//! Every test has its own `--root` and `--data-root` (tests/containers/
//! harness.rs); podman gets a private storage, runc as its runtime and
//! `--network none`. Without podman its half prints `skipped: …` and the
//! runway half still runs.
#![cfg(feature = "full")]

mod common;
#[path = "containers/harness.rs"]
mod harness;

use common::oci::{busybox_entries, Compress, Entry, Image, Layer};
use harness::{podman_with, poll, unmount_all_under, wait_child, Rw};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// busybox plus a second layer: /srv, a non-executable /bin/noexec, and
/// an Env beyond PATH; Cmd ["sh"].
fn base_image() -> Image {
    let mut img = Image::new(vec![
        Layer::new(Compress::Gzip, busybox_entries()),
        Layer::new(
            Compress::Gzip,
            vec![
                Entry::dir("srv"),
                Entry::file("bin/noexec", "#!/bin/sh\necho never\n").mode(0o644),
            ],
        ),
    ]);
    img.config.env.push("GREETING=from-image".into());
    img.config.env.push("SHARED=image".into());
    img
}

/// The base image with a WorkingDir that does not exist in the layers and
/// a User.
fn wd_user_image() -> Image {
    let mut img = base_image();
    img.config.working_dir = "/srv/app".into();
    img.config.user = "nobody".into();
    img
}

/// The base image with Entrypoint ["echo", "ep:"] and Cmd ["default"].
fn entrypoint_image() -> Image {
    let mut img = base_image();
    img.config.entrypoint = vec!["echo".into(), "ep:".into()];
    img.config.cmd = vec!["default".into()];
    img
}

/// A shell loop that prints `msg` on `sig` and exits `code`.
fn trap_loop(sig: &str, msg: &str, code: i32) -> String {
    format!("trap 'echo {msg}; exit {code}' {sig}; echo ready; while :; do sleep 0.1; done")
}

/// Env lines podman adds that docker semantics do not define here.
/// `sorted`: podman prints the environment in no fixed order.
fn normalize(s: &str, sorted: bool) -> String {
    let mut lines: Vec<&str> = s
        .lines()
        .filter(|l| {
            !l.starts_with("container=") && !l.starts_with("TERM=") && !l.starts_with("HOSTNAME=")
        })
        .collect();
    if sorted {
        lines.sort();
    }
    lines.join("\n")
}

// ------------------------------------------------------------ 1. run basics

/// One foreground run: flags, image, command; expected exit code and
/// stdout (None: only the code is compared).
struct Case {
    flags: Vec<String>,
    image: &'static str,
    cmd: Vec<&'static str>,
    code: i32,
    stdout: Option<&'static str>,
    /// Whether podman 4.3 follows docker here (it refuses a missing or
    /// relative `-w` with 126, where docker creates it / says 125).
    podman_too: bool,
}

fn case(
    flags: &[&str],
    image: &'static str,
    cmd: &[&'static str],
    code: i32,
    out: Option<&'static str>,
) -> Case {
    Case {
        flags: flags.iter().map(|s| s.to_string()).collect(),
        image,
        cmd: cmd.to_vec(),
        code,
        stdout: out,
        podman_too: true,
    }
}

/// A case only docker's semantics (runway's) define; podman differs.
fn docker_only(mut c: Case) -> Case {
    c.podman_too = false;
    c
}

#[test]
fn run_output_overrides_env_user_and_exit_codes() {
    let rw = Rw::new("basics");
    let l_bb = rw.import(&base_image(), "bb");
    let l_wd = rw.import(&wd_user_image(), "wd");
    let l_ep = rw.import(&entrypoint_image(), "ep");
    let env_file = rw.path("env.list");
    fs::write(&env_file, "# a comment\nFROM_FILE=yes\n\nSHARED=file\n").unwrap();
    let ef = format!("--env-file={}", env_file.display());
    let pm = podman_with(&rw, &[(&l_bb, "bb"), (&l_wd, "wd"), (&l_ep, "ep")]);

    let cases = vec![
        case(
            &[],
            "bb",
            &["echo", "hello", "world"],
            0,
            Some("hello world\n"),
        ),
        case(&[], "bb", &["sh", "-c", "exit 42"], 42, Some("")),
        case(&[], "bb", &["true"], 0, Some("")),
        // Entrypoint + Cmd, and their overrides.
        case(&[], "ep", &[], 0, Some("ep: default\n")),
        case(&[], "ep", &["a", "b"], 0, Some("ep: a b\n")),
        case(
            &["--entrypoint", "sh"],
            "ep",
            &["-c", "echo over"],
            0,
            Some("over\n"),
        ),
        case(
            &["--entrypoint", ""],
            "ep",
            &["echo", "plain"],
            0,
            Some("plain\n"),
        ),
        case(&["--entrypoint", "pwd"], "ep", &[], 0, Some("/\n")),
        // Env: the image's, -e, --env-file (later wins), -e KEY from ours.
        case(
            &[],
            "bb",
            &["sh", "-c", "echo $GREETING $SHARED"],
            0,
            Some("from-image image\n"),
        ),
        case(
            &["-e", "GREETING=flag", "-e", "NEW=1"],
            "bb",
            &["sh", "-c", "echo $GREETING $SHARED $NEW"],
            0,
            Some("flag image 1\n"),
        ),
        case(
            &[&ef],
            "bb",
            &["sh", "-c", "echo $FROM_FILE $SHARED"],
            0,
            Some("yes file\n"),
        ),
        case(
            &[&ef, "-e", "SHARED=flag"],
            "bb",
            &["sh", "-c", "echo $SHARED"],
            0,
            Some("flag\n"),
        ),
        case(&[], "bb", &["env"], 0, None),
        // Workdir and user: the image's, then flags.
        case(
            &[],
            "wd",
            &["sh", "-c", "pwd; id -u; id -g"],
            0,
            Some("/srv/app\n65534\n65534\n"),
        ),
        case(
            &["-w", "/tmp", "-u", "root"],
            "wd",
            &["sh", "-c", "pwd; id -u"],
            0,
            Some("/tmp\n0\n"),
        ),
        docker_only(case(
            &["-w", "/new/dir"],
            "bb",
            &["pwd"],
            0,
            Some("/new/dir\n"),
        )),
        case(
            &["-u", "nobody"],
            "bb",
            &["sh", "-c", "id -un; id -u; id -g"],
            0,
            Some("nobody\n65534\n65534\n"),
        ),
        case(
            &["-u", "1234:5678"],
            "bb",
            &["sh", "-c", "id -u; id -g"],
            0,
            Some("1234\n5678\n"),
        ),
        case(&["-u", "0"], "bb", &["id", "-u"], 0, Some("0\n")),
        // Failures: runway's own (125), not executable (126), not found (127).
        case(&["--no-such-flag"], "bb", &["true"], 125, Some("")),
        case(
            &["--pull", "never"],
            "nosuchimage",
            &["true"],
            125,
            Some(""),
        ),
        case(&[], "bb", &["/bin/noexec"], 126, Some("")),
        case(&[], "bb", &["/etc"], 126, Some("")),
        case(&[], "bb", &["nosuchcmd"], 127, Some("")),
        case(&[], "bb", &["/no/such/path"], 127, Some("")),
        docker_only(case(&["-w", "relative"], "bb", &["true"], 125, Some(""))),
    ];
    let mut diffs = Vec::new();
    for c in &cases {
        let mut args = vec!["container", "run", "--rm"];
        args.extend(c.flags.iter().map(String::as_str));
        args.push(c.image);
        args.extend_from_slice(&c.cmd);
        let o = rw.rw(&args);
        assert_eq!(o.code, c.code, "runway exit code:\n{o}");
        if let Some(want) = c.stdout {
            assert_eq!(o.stdout, want, "runway stdout:\n{o}");
        }
        if o.code == 125 || o.code == 126 || o.code == 127 {
            // One clear line naming what went wrong.
            let lines: Vec<&str> = o.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "one error line:\n{o}");
            assert!(lines[0].starts_with("runway: "), "error prefix:\n{o}");
        }
        if c.image == "nosuchimage" {
            assert!(o.stderr.contains("nosuchimage"), "names the image:\n{o}");
        }
        if let Some(pm) = pm.as_ref().filter(|_| c.podman_too) {
            let mut flags = vec!["--rm"];
            flags.extend(c.flags.iter().map(String::as_str));
            let p = pm.run(&flags, c.image, &c.cmd);
            let sorted = c.cmd == ["env"];
            if p.code != o.code || normalize(&p.stdout, sorted) != normalize(&o.stdout, sorted) {
                diffs.push(format!("runway:\n{o}\npodman:\n{p}"));
            }
        }
        assert!(rw.ids().is_empty(), "--rm left a container after {args:?}");
    }
    assert!(
        diffs.is_empty(),
        "runway vs podman:\n{}",
        diffs.join("\n\n")
    );
    // Names and hostname: the short id.
    let o = rw.ok(&[
        "container",
        "run",
        "--name",
        "named",
        "bb",
        "sh",
        "-c",
        "hostname; cat /etc/hostname",
    ]);
    let id = rw.inspect("named")["Id"].as_str().unwrap().to_string();
    assert_eq!(o.stdout, format!("{0}\n{0}\n", &id[..12]));
    rw.ok(&["rm", "named"]);
    rw.assert_clean();
}

// --------------------------------------------- 2. -d, logs, stop, start, ps

/// `ps`'s rows (after the header) whose NAMES column is `name`.
fn ps_row(rw: &Rw, flags: &[&str], name: &str) -> Option<String> {
    let mut args = vec!["ps"];
    args.extend_from_slice(flags);
    let o = rw.ok(&args);
    o.stdout
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().last() == Some(name))
        .map(str::to_string)
}

/// `ps --format json` (one object a line) by name.
fn ps_json(rw: &Rw, name: &str) -> Option<Value> {
    let o = rw.ok(&["container", "ps", "-a", "--format", "json"]);
    o.stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .find(|v| v["Names"] == name || v["Names"][0] == name)
}

#[test]
fn detached_logs_follow_stop_start_rm() {
    let rw = Rw::new("detached");
    rw.import(&base_image(), "bb");
    let script =
        "trap 'echo bye; exit 3' TERM; i=0; while :; do echo line$i; i=$((i+1)); sleep 0.1; done";
    let id = rw
        .ok(&[
            "container",
            "run",
            "-d",
            "--name",
            "web",
            "bb",
            "sh",
            "-c",
            script,
        ])
        .stdout
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "run -d prints the id");
    rw.wait_status("web", "running", SECS(10));
    assert!(poll(SECS(10), || rw.logs("web").contains("line2")));

    // ps, ps -q, ps --format json: running.
    let row = ps_row(&rw, &[], "web").expect("ps lists the running container");
    assert!(row.starts_with(&id[..12]), "{row}");
    assert!(row.contains("Up "), "STATUS Up: {row}");
    assert!(rw.ok(&["ps", "-q"]).stdout.lines().any(|l| l == &id[..12]));
    let j = ps_json(&rw, "web").expect("ps --format json");
    assert_eq!(j["State"], "running", "{j}");
    let v = rw.inspect("web");
    assert_eq!(v["Name"], "/web");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["State"]["Status"], "running");
    assert_eq!(v["State"]["Running"], true);
    assert!(v["State"]["Pid"].as_i64().unwrap() > 0);
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh", "-c", script]));

    // logs -f: sees new lines, ends when the container stops.
    let follow_out = rw.path("follow.out");
    let mut follow = rw
        .command(&["logs", "-f", "web"])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&follow_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen_now = rw.logs("web").lines().count();
    let later = format!("line{}", seen_now + 3);
    assert!(
        poll(SECS(10), || fs::read_to_string(&follow_out)
            .unwrap_or_default()
            .contains(&later)),
        "logs -f did not show {later}"
    );
    let t = Instant::now();
    rw.ok(&["container", "stop", "web"]);
    assert!(
        t.elapsed() < SECS(5),
        "stop waited for a timeout: the trap should have run"
    );
    let code = wait_child(&mut follow, SECS(10));
    assert_eq!(code, Some(0), "logs -f ends when the container stops");
    let followed = fs::read_to_string(&follow_out).unwrap();
    assert!(
        followed.ends_with("bye\n"),
        "logs -f saw the end: {followed:?}"
    );
    let v = rw.inspect("web");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 3);
    assert_eq!(v["State"]["Running"], false);
    assert!(
        ps_row(&rw, &[], "web").is_none(),
        "ps without -a hides exited"
    );
    let row = ps_row(&rw, &["-a"], "web").expect("ps -a lists it");
    assert!(row.contains("Exited (3)"), "{row}");
    assert!(!rw.ok(&["ps", "-q"]).stdout.contains(&id[..12]));
    assert!(rw.ok(&["ps", "-aq"]).stdout.contains(&id[..12]));
    assert_eq!(ps_json(&rw, "web").unwrap()["State"], "exited");
    assert_eq!(rw.ok(&["container", "wait", "web"]).stdout.trim(), "3");

    // start again: runs anew, the log goes on.
    let lines_before = rw.logs("web").matches("bye").count();
    rw.ok(&["container", "start", "web"]);
    rw.wait_status("web", "running", SECS(10));
    assert!(ps_row(&rw, &[], "web").unwrap().contains("Up "));
    assert!(
        poll(SECS(10), || rw.logs("web").matches("line1\n").count() == 2),
        "the second run's lines: {}",
        rw.logs("web")
    );
    // logs --tail
    let tail = rw.ok(&["logs", "--tail", "2", "web"]).stdout;
    assert_eq!(tail.lines().count(), 2, "{tail:?}");
    // rm of a running container is refused without -f.
    let o = rw.rw(&["rm", "web"]);
    assert_ne!(o.code, 0, "rm of a running container:\n{o}");
    rw.ok(&["container", "stop", "web"]);
    assert_eq!(rw.logs("web").matches("bye").count(), lines_before + 1);
    rw.ok(&["rm", "web"]);
    assert!(rw.rw(&["container", "inspect", "web"]).code != 0);
    rw.assert_clean();
}

/// One command line run by an engine.
type Runner<'a> = Box<dyn Fn(&[&str]) -> common::Out + 'a>;

/// docker's verbs on one engine: runway's `container …` or podman's.
struct Eng<'a> {
    label: &'static str,
    cmd: Runner<'a>,
    /// Image names: "" for runway, "localhost/" for podman.
    prefix: &'static str,
}

impl Eng<'_> {
    fn runway(rw: &Rw) -> Eng<'_> {
        Eng {
            label: "runway",
            cmd: Box::new(move |a: &[&str]| {
                let mut all = vec!["container"];
                all.extend_from_slice(a);
                rw.rw(&all)
            }),
            prefix: "",
        }
    }

    fn podman(pm: &harness::Pm) -> Eng<'_> {
        Eng {
            label: "podman",
            cmd: Box::new(move |a: &[&str]| {
                let mut all = a.to_vec();
                if all.first() == Some(&"run") {
                    all.splice(1..1, ["--network", "none"]);
                }
                pm.pm(&all)
            }),
            prefix: "localhost/",
        }
    }

    fn ok(&self, args: &[&str]) -> common::Out {
        let o = (self.cmd)(args);
        assert_eq!(o.code, 0, "{}:\n{o}", self.label);
        o
    }

    fn img(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn logs(&self, c: &str) -> String {
        let o = self.ok(&["logs", c]);
        format!("{}{}", o.stdout, o.stderr)
    }

    fn inspect(&self, c: &str) -> Value {
        let o = self.ok(&["inspect", c]);
        let v: Value = serde_json::from_str(&o.stdout).unwrap();
        v[0].clone()
    }

    fn state(&self, c: &str) -> Value {
        let o = self.ok(&["inspect", c]);
        let v: Value = serde_json::from_str(&o.stdout).unwrap();
        v[0]["State"].clone()
    }
}

/// Stop signal from the image and from `--stop-signal`, KILL after `-t`,
/// `start` again and `kill -s`: what each container printed and its exit
/// code, on one engine.
fn stop_scenario(e: &Eng) -> Vec<String> {
    let (bb, usr1) = (e.img("bb"), e.img("usr1"));
    let l = e.label;
    e.ok(&[
        "run",
        "-d",
        "--name",
        "sa",
        &usr1,
        "sh",
        "-c",
        &trap_loop("USR1", "got-usr1", 0),
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "sb",
        "--stop-signal",
        "SIGHUP",
        &bb,
        "sh",
        "-c",
        &trap_loop("HUP", "got-hup", 4),
    ]);
    // TERM ignored: KILL after the timeout.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "sc",
        &bb,
        "sh",
        "-c",
        "trap '' TERM; echo ready; while :; do sleep 0.1; done",
    ]);
    for n in ["sa", "sb", "sc"] {
        assert!(
            poll(SECS(10), || e.logs(n).contains("ready")),
            "{l}: {n} never ready"
        );
    }
    let mut seen = Vec::new();
    e.ok(&["stop", "sa"]);
    seen.push(format!(
        "sa: {:?} exit {}",
        e.logs("sa"),
        e.state("sa")["ExitCode"]
    ));
    e.ok(&["stop", "sb"]);
    seen.push(format!(
        "sb: {:?} exit {}",
        e.logs("sb"),
        e.state("sb")["ExitCode"]
    ));
    let t = Instant::now();
    e.ok(&["stop", "-t", "1", "sc"]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < SECS(6),
        "{l}: stop -t 1 took {took:?}"
    );
    let st = e.state("sc");
    seen.push(format!(
        "sc: {:?} {} exit {}",
        e.logs("sc"),
        st["Status"],
        st["ExitCode"]
    ));
    // start again, then kill -s.
    e.ok(&["start", "sb"]);
    assert!(
        poll(SECS(10), || e.logs("sb").matches("ready").count() == 2),
        "{l}: sb restarted"
    );
    e.ok(&["kill", "-s", "HUP", "sb"]);
    assert!(
        poll(SECS(10), || e.state("sb")["Status"] == "exited"),
        "{l}: sb after kill -s HUP"
    );
    seen.push(format!(
        "sb: {:?} exit {}",
        e.logs("sb"),
        e.state("sb")["ExitCode"]
    ));
    seen
}

#[test]
fn stop_signal_from_image_flag_and_kill_after_timeout() {
    let rw = Rw::new("stopsig");
    let l_bb = rw.import(&base_image(), "bb");
    let mut usr1 = base_image();
    usr1.config.stop_signal = "SIGUSR1".into();
    let l_usr1 = rw.import(&usr1, "usr1");
    let seen = stop_scenario(&Eng::runway(&rw));
    assert_eq!(
        seen,
        vec![
            "sa: \"ready\\ngot-usr1\\n\" exit 0".to_string(),
            "sb: \"ready\\ngot-hup\\n\" exit 4".to_string(),
            "sc: \"ready\\n\" \"exited\" exit 137".to_string(),
            "sb: \"ready\\ngot-hup\\nready\\ngot-hup\\n\" exit 4".to_string(),
        ]
    );
    rw.rm_all_and_check();
    if let Some(pm) = podman_with(&rw, &[(&l_bb, "bb"), (&l_usr1, "usr1")]) {
        let theirs = stop_scenario(&Eng::podman(&pm));
        assert_eq!(seen, theirs, "runway vs podman");
    }
}

#[test]
fn ps_alias_with_a_format_value_lists_containers() {
    let rw = Rw::new("psalias");
    rw.import(&base_image(), "bb");
    rw.ok(&["container", "create", "--name", "listed", "bb"]);
    // Without a value-taking flag the alias already works.
    assert!(rw.ok(&["ps", "-a"]).stdout.contains("listed"));
    let o = rw.rw(&["ps", "-a", "--format", "json"]);
    assert_eq!(o.code, 0, "runway ps -a --format json:\n{o}");
    assert!(o.stdout.contains("\"listed\""), "{o}");
    rw.rm_all_and_check();
}

// ------------------------------------------------------------------ 3. --rm

#[test]
fn auto_remove_leaves_nothing() {
    let rw = Rw::new("autorm");
    rw.import(&base_image(), "bb");
    assert_eq!(
        rw.ok(&["container", "run", "--rm", "bb", "echo", "hi"])
            .stdout,
        "hi\n"
    );
    rw.assert_clean();
    rw.code(
        3,
        &[
            "container",
            "run",
            "--rm",
            "--name",
            "xx",
            "bb",
            "sh",
            "-c",
            "exit 3",
        ],
    );
    rw.assert_clean();
    rw.code(
        127,
        &[
            "container",
            "run",
            "--rm",
            "--name",
            "xx",
            "bb",
            "nosuchcmd",
        ],
    );
    rw.assert_clean();
    rw.code(126, &["container", "run", "--rm", "bb", "/bin/noexec"]);
    rw.assert_clean();
    // Detached: gone once it exits; stopped: gone too.
    rw.ok(&[
        "container",
        "run",
        "-d",
        "--rm",
        "--name",
        "det",
        "bb",
        "sh",
        "-c",
        "exit 0",
    ]);
    assert!(
        poll(SECS(10), || rw.ids().is_empty()),
        "run -d --rm left {:?}",
        rw.ids()
    );
    rw.assert_clean();
    rw.ok(&[
        "container",
        "run",
        "-d",
        "--rm",
        "--name",
        "killed",
        "bb",
        "sleep",
        "300",
    ]);
    rw.wait_status("killed", "running", SECS(10));
    rw.ok(&["container", "kill", "killed"]);
    assert!(
        poll(SECS(10), || rw.ids().is_empty()),
        "kill of a --rm container left {:?}",
        rw.ids()
    );
    rw.assert_clean();
    // The name is free again.
    rw.ok(&["container", "run", "--rm", "--name", "killed", "bb", "true"]);
    rw.assert_clean();
}

/// `stop` of a `--rm` container: the monitor removes it while stop waits;
/// stop succeeds (docker prints the name, exit 0) and nothing is left.
#[test]
fn stop_of_an_auto_remove_container_succeeds() {
    let rw = Rw::new("stoprm");
    rw.import(&base_image(), "bb");
    rw.ok(&[
        "container",
        "run",
        "-d",
        "--rm",
        "--name",
        "stp",
        "bb",
        "sh",
        "-c",
        &trap_loop("TERM", "bye", 0),
    ]);
    rw.wait_status("stp", "running", SECS(10));
    let o = rw.rw(&["container", "stop", "stp"]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "stp\n"),
        "stop of a --rm container:\n{o}"
    );
    assert!(
        poll(SECS(10), || rw.ids().is_empty()),
        "stop of a --rm container left {:?}",
        rw.ids()
    );
    rw.assert_clean();
}

// ------------------------------------------------------------------ 4. -it

/// A pty pair: master, and the slave's path.
fn open_pty(rows: u16, cols: u16) -> (OwnedFd, PathBuf) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let m = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&m).unwrap();
    unlockpt(&m).unwrap();
    let name = ptsname(&m, Vec::new()).unwrap();
    set_winsize(&m, rows, cols);
    (m, PathBuf::from(name.to_string_lossy().into_owned()))
}

fn set_winsize(fd: &OwnedFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize.
    unsafe {
        libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws);
    }
}

/// Reads the master until `what` shows after `*pos` (or 20 s); moves
/// `*pos` past it.
fn expect_on(m: &OwnedFd, what: &str, seen: &mut String, pos: &mut usize) -> bool {
    let deadline = Instant::now() + SECS(20);
    loop {
        if let Some(i) = seen[*pos..].find(what) {
            *pos += i + what.len();
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        let got = common::extra::read_until(m.as_raw_fd(), what, Duration::from_millis(200));
        seen.push_str(&got);
    }
}

fn interactive(mut cmd: Command, label: &str) -> (i32, String) {
    use std::os::unix::process::CommandExt;
    let (m, slave) = open_pty(24, 80);
    let open = || {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&slave)
            .unwrap()
    };
    cmd.stdin(open()).stdout(open()).stderr(open());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let mut seen = String::new();
    let mut pos = 0;
    assert!(
        expect_on(&m, "# ", &mut seen, &mut pos),
        "{label}: no prompt: {seen:?}"
    );
    common::extra::write_fd(m.as_raw_fd(), "busybox stty size; tty\n");
    assert!(
        expect_on(&m, "\n24 80", &mut seen, &mut pos),
        "{label}: stty size: {seen:?}"
    );
    assert!(
        expect_on(&m, "\n/dev/pts/", &mut seen, &mut pos),
        "{label}: tty: {seen:?}"
    );
    // Resize: the kernel signals our foreground group; say it again.
    set_winsize(&m, 33, 101);
    // SAFETY: kill(2) of our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGWINCH);
    }
    let mut resized = false;
    for _ in 0..20 {
        common::extra::write_fd(m.as_raw_fd(), "busybox stty size\n");
        let got = common::extra::read_until(m.as_raw_fd(), "33 101", Duration::from_millis(500));
        seen.push_str(&got);
        if got.contains("33 101") {
            resized = true;
            break;
        }
    }
    assert!(resized, "{label}: resize not seen inside: {seen:?}");
    common::extra::write_fd(m.as_raw_fd(), "exit 5\n");
    let code = wait_child(&mut child, SECS(20)).unwrap_or(-1);
    // Drain what is left so the test output shows it on failure.
    seen.push_str(&common::extra::read_until(
        m.as_raw_fd(),
        "\u{0}",
        Duration::from_millis(200),
    ));
    (code, seen)
}

#[test]
fn interactive_tty_prompt_size_resize_exit_code() {
    let rw = Rw::new("tty");
    let layout = rw.import(&base_image(), "bb");
    let (code, seen) = interactive(
        rw.command(&["container", "run", "-it", "--rm", "bb", "sh"]),
        "runway",
    );
    assert_eq!(code, 5, "runway -it exit code; terminal: {seen:?}");
    rw.assert_clean();
    if let Some(pm) = podman_with(&rw, &[(&layout, "bb")]) {
        let (code, seen) = interactive(
            pm.command(&[
                "run",
                "-it",
                "--rm",
                "--network",
                "none",
                "localhost/bb",
                "sh",
            ]),
            "podman",
        );
        assert_eq!(code, 5, "podman -it exit code; terminal: {seen:?}");
    }
}

// -------------------------------------------------------------- 5. restart

/// on-failure:3 (4 runs, RestartCount 3, the last exit code), no restart
/// of a clean exit, always until `stop`; what each showed, on one engine.
fn restart_scenario(e: &Eng, always: bool) -> Vec<String> {
    let bb = e.img("bb");
    let l = e.label;
    let mut seen = Vec::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:3",
        &bb,
        "sh",
        "-c",
        "echo attempt; exit 7",
    ]);
    let done = poll(SECS(20), || {
        let v = e.inspect("flaky");
        v["State"]["Status"] == "exited" && v["RestartCount"] == 3
    });
    assert!(
        done,
        "{l}: on-failure:3 did not end with 3 restarts: {}",
        e.inspect("flaky")
    );
    // Settled: no fifth run.
    std::thread::sleep(Duration::from_millis(500));
    let v = e.inspect("flaky");
    seen.push(format!(
        "flaky: {} runs, RestartCount {}, exit {}, policy {}",
        e.logs("flaky").matches("attempt").count(),
        v["RestartCount"],
        v["State"]["ExitCode"],
        v["HostConfig"]["RestartPolicy"]["Name"]
    ));
    // on-failure does not restart a clean exit.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "clean",
        "--restart",
        "on-failure:3",
        &bb,
        "sh",
        "-c",
        "echo once",
    ]);
    assert!(poll(SECS(10), || e.state("clean")["Status"] == "exited"));
    std::thread::sleep(Duration::from_millis(300));
    seen.push(format!(
        "clean: {:?}, RestartCount {}",
        e.logs("clean"),
        e.inspect("clean")["RestartCount"]
    ));
    if !always {
        return seen;
    }
    // always: restarts until stopped, then no more.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        &bb,
        "sh",
        "-c",
        "echo run; exit 0",
    ]);
    assert!(
        poll(SECS(20), || e.logs("always").matches("run").count() >= 3),
        "{l}: always did not restart"
    );
    e.ok(&["stop", "always"]);
    assert!(
        poll(SECS(10), || e.state("always")["Status"] == "exited"),
        "{l}: always after stop: {}",
        e.inspect("always")
    );
    let n = e.logs("always").matches("run").count();
    std::thread::sleep(SECS(2));
    assert_eq!(
        e.logs("always").matches("run").count(),
        n,
        "{l}: restarted after stop"
    );
    seen.push(format!(
        "always after stop: {}",
        e.state("always")["Status"]
    ));
    seen
}

#[test]
fn restart_on_failure_counts_and_always_stops() {
    let rw = Rw::new("restart");
    let layout = rw.import(&base_image(), "bb");
    let seen = restart_scenario(&Eng::runway(&rw), true);
    assert_eq!(
        seen,
        vec![
            "flaky: 4 runs, RestartCount 3, exit 7, policy \"on-failure\"".to_string(),
            "clean: \"once\\n\", RestartCount 0".to_string(),
            "always after stop: \"exited\"".to_string(),
        ]
    );
    rw.rm_all_and_check();
    if let Some(pm) = podman_with(&rw, &[(&layout, "bb")]) {
        // Not `always` + stop: podman 4.3's cleanup process restarts the
        // container under the stop now and then (no backoff), on a busy host.
        assert_eq!(
            seen[..2],
            restart_scenario(&Eng::podman(&pm), false),
            "runway vs podman"
        );
    }
}

// ----------------------------------------------------- 6. read-only, volumes

#[test]
fn read_only_tmpfs_and_bind_volumes() {
    let rw = Rw::new("volumes");
    let layout = rw.import(&base_image(), "bb");
    let pm = podman_with(&rw, &[(&layout, "bb")]);
    let script = "touch /x 2>/dev/null && echo root-writable || echo root-ro; \
                  echo t > /tmp/t && cat /tmp/t; grep ' /tmp ' /proc/mounts | cut -d' ' -f3";
    let flags = ["--rm", "--read-only", "--tmpfs", "/tmp"];
    let mut args = vec!["container", "run"];
    args.extend_from_slice(&flags);
    args.extend_from_slice(&["bb", "sh", "-c", script]);
    let o = rw.ok(&args);
    assert_eq!(o.stdout, "root-ro\nt\ntmpfs\n");
    if let Some(pm) = &pm {
        let p = pm.run(&flags, "bb", &["sh", "-c", script]);
        assert_eq!(
            (p.code, p.stdout.as_str()),
            (0, o.stdout.as_str()),
            "podman:\n{p}"
        );
    }
    // Without --read-only the root is writable (into the upper dir).
    let o = rw.ok(&["container", "run", "--rm", "bb", "sh", "-c", script]);
    assert!(o.stdout.starts_with("root-writable\n"), "{o}");

    // A bind volume persists across containers; :ro refuses writes.
    let host = rw.path("hostdir");
    fs::create_dir_all(&host).unwrap();
    let v = format!("{}:/data", host.display());
    let vro = format!("{}:/data:ro", host.display());
    rw.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        &v,
        "bb",
        "sh",
        "-c",
        "echo first > /data/f",
    ]);
    assert_eq!(fs::read_to_string(host.join("f")).unwrap(), "first\n");
    let o = rw.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        &v,
        "bb",
        "sh",
        "-c",
        "cat /data/f; echo second >> /data/f",
    ]);
    assert_eq!(o.stdout, "first\n");
    let o = rw.rw(&[
        "container",
        "run",
        "--rm",
        "-v",
        &vro,
        "bb",
        "sh",
        "-c",
        "cat /data/f; echo third >> /data/f",
    ]);
    assert_ne!(o.code, 0, "write to a :ro volume:\n{o}");
    assert_eq!(o.stdout, "first\nsecond\n");
    assert_eq!(
        fs::read_to_string(host.join("f")).unwrap(),
        "first\nsecond\n"
    );
    if let Some(pm) = &pm {
        let p = pm.run(
            &["--rm", "-v", &vro],
            "bb",
            &["sh", "-c", "cat /data/f; echo third >> /data/f"],
        );
        assert_eq!(
            (p.code, p.stdout.as_str()),
            (o.code, o.stdout.as_str()),
            "podman:\n{p}"
        );
    }
    // inspect shows the bind.
    rw.ok(&["container", "create", "--name", "mnt", "-v", &vro, "bb"]);
    let mounts = rw.inspect("mnt")["Mounts"].clone();
    let bind = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/data")
        .unwrap_or_else(|| panic!("no /data in {mounts}"));
    assert_eq!(bind["Type"], "bind");
    assert_eq!(bind["RW"], false);
    rw.rm_all_and_check();
    assert_eq!(
        fs::read_to_string(host.join("f")).unwrap(),
        "first\nsecond\n",
        "rm kept the host dir"
    );
}

// --------------------------------------------------------------- 7. limits

#[test]
fn limits_seen_inside() {
    let rw = Rw::new("limits");
    let layout = rw.import(&base_image(), "bb");
    let pm = podman_with(&rw, &[(&layout, "bb")]);
    let script = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
                  cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; \
                  cat /sys/fs/cgroup/cpu.max 2>/dev/null || \
                  echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)";
    let flags = [
        "--rm",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
    ];
    let mut args = vec!["container", "run"];
    args.extend_from_slice(&flags);
    args.extend_from_slice(&["bb", "sh", "-c", script]);
    let o = rw.ok(&args);
    assert_eq!(o.stdout, "67108864\n50\n50000 100000\n", "{o}");
    if let Some(pm) = &pm {
        let p = pm.run(&flags, "bb", &["sh", "-c", script]);
        assert_eq!(
            (p.code, p.stdout.as_str()),
            (0, o.stdout.as_str()),
            "podman:\n{p}"
        );
    }
    // The memory limit bites: 100 MB into a tmpfs (charged to the
    // container) under 32m: the OOM killer ends it, or the write fails.
    let o = rw.rw(&[
        "container",
        "run",
        "--rm",
        "--memory",
        "32m",
        "--tmpfs",
        "/big",
        "bb",
        "sh",
        "-c",
        "head -c 100000000 /dev/zero > /big/f; echo rc=$?",
    ]);
    assert!(
        o.code == 137 || (o.code == 0 && !o.stdout.contains("rc=0")),
        "no memory limit:\n{o}"
    );
    rw.assert_clean();
}

// ----------------------------------------------------------------- 8. exec

#[test]
fn exec_runs_inside_with_flags_and_codes() {
    let rw = Rw::new("exec");
    rw.import(&base_image(), "bb");
    let id = rw
        .ok(&[
            "container",
            "run",
            "-d",
            "--name",
            "box",
            "-e",
            "FROM_RUN=1",
            "bb",
            "sh",
            "-c",
            "echo inside > /tmp/mark; exec sleep 300",
        ])
        .stdout
        .trim()
        .to_string();
    rw.wait_status("box", "running", SECS(10));
    let mut last = None;
    let ready = poll(SECS(5), || {
        let o = rw.rw(&["container", "exec", "box", "test", "-f", "/tmp/mark"]);
        let done = o.code == 0;
        last = Some(o);
        done
    });
    assert!(ready, "the container's first write:\n{}", last.unwrap());
    let ex = |args: &[&str]| {
        let mut all = vec!["container", "exec"];
        all.extend_from_slice(args);
        rw.rw(&all)
    };
    let o = ex(&["box", "cat", "/tmp/mark"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "inside\n"), "{o}");
    let o = ex(&["box", "hostname"]);
    assert_eq!(o.stdout.trim(), &id[..12]);
    let o = ex(&["box", "sh", "-c", "echo $FROM_RUN $GREETING"]);
    assert_eq!(o.stdout, "1 from-image\n", "the container's env");
    let o = ex(&[
        "-e",
        "X=y",
        "-e",
        "GREETING=exec",
        "box",
        "sh",
        "-c",
        "echo $X $GREETING",
    ]);
    assert_eq!(o.stdout, "y exec\n");
    let o = ex(&["-u", "nobody", "box", "id", "-u"]);
    assert_eq!(o.stdout, "65534\n");
    let o = ex(&["-u", "1000:1000", "box", "sh", "-c", "id -u; id -g"]);
    assert_eq!(o.stdout, "1000\n1000\n");
    let o = ex(&["-w", "/tmp", "box", "pwd"]);
    assert_eq!(o.stdout, "/tmp\n");
    // By id prefix too; the exec sees the container's pid namespace.
    let o = ex(&[&id[..8], "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"]);
    assert_eq!(o.stdout, "sleep 300 ");
    assert_eq!(ex(&["box", "sh", "-c", "exit 9"]).code, 9);
    assert_eq!(ex(&["box", "nosuchcmd"]).code, 127);
    assert_eq!(ex(&["box", "/bin/noexec"]).code, 126);
    let o = ex(&["nosuchbox", "true"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("nosuchbox"), "{o}");
    // stdin is not connected without -i.
    assert_eq!(ex(&["box", "cat"]).code, 0);
    rw.ok(&["container", "kill", "box"]);
    rw.wait_status("box", "exited", SECS(10));
    let o = ex(&["box", "true"]);
    assert_ne!(o.code, 0, "exec into a stopped container:\n{o}");
    assert!(o.stderr.contains("not running"), "{o}");
    rw.rm_all_and_check();
}

/// exec's flags and exit codes on one engine: (exit code, stdout) each,
/// then whether exec into the stopped container failed.
fn exec_scenario(e: &Eng) -> Vec<String> {
    let l = e.label;
    e.ok(&[
        "run",
        "-d",
        "--name",
        "ebox",
        "-e",
        "FROM_RUN=1",
        &e.img("bb"),
        "sh",
        "-c",
        "echo inside > /tmp/mark; exec sleep 300",
    ]);
    assert!(
        poll(SECS(10), || (e.cmd)(&[
            "exec",
            "ebox",
            "test",
            "-f",
            "/tmp/mark"
        ])
        .code
            == 0),
        "{l}: ebox never ready"
    );
    let cases: &[&[&str]] = &[
        &["ebox", "cat", "/tmp/mark"],
        &["ebox", "sh", "-c", "echo $FROM_RUN $GREETING"],
        &[
            "-e",
            "X=y",
            "-e",
            "GREETING=exec",
            "ebox",
            "sh",
            "-c",
            "echo $X $GREETING",
        ],
        &["-u", "nobody", "ebox", "sh", "-c", "id -u; id -g"],
        &["-u", "1000:1000", "ebox", "sh", "-c", "id -u; id -g"],
        &["-w", "/tmp", "ebox", "pwd"],
        &["ebox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"],
        &["ebox", "sh", "-c", "echo out; echo err >&2; exit 9"],
        &["ebox", "nosuchcmd"],
        &["ebox", "/bin/noexec"],
        &["ebox", "cat"],
    ];
    let mut seen = Vec::new();
    for c in cases {
        let mut all = vec!["exec"];
        all.extend_from_slice(c);
        let o = (e.cmd)(&all);
        seen.push(format!("{c:?}: {} {:?}", o.code, o.stdout));
    }
    e.ok(&["kill", "ebox"]);
    assert!(poll(SECS(10), || e.state("ebox")["Status"] == "exited"));
    let o = (e.cmd)(&["exec", "ebox", "true"]);
    seen.push(format!(
        "exec into the stopped container fails: {}",
        o.code != 0
    ));
    e.ok(&["rm", "-f", "ebox"]);
    seen
}

#[test]
fn exec_runway_vs_podman() {
    let rw = Rw::new("execpm");
    let layout = rw.import(&base_image(), "bb");
    let seen = exec_scenario(&Eng::runway(&rw));
    rw.assert_clean();
    assert!(
        seen.iter().any(|l| l.contains("0 \"sleep 300 \"")),
        "{seen:#?}"
    );
    if let Some(pm) = podman_with(&rw, &[(&layout, "bb")]) {
        assert_eq!(seen, exec_scenario(&Eng::podman(&pm)), "runway vs podman");
    }
}

/// Zombies in container `c`, counted from inside by exec.
fn zombies(rw: &Rw, c: &str) -> Option<usize> {
    let o = rw.rw(&[
        "container",
        "exec",
        c,
        "sh",
        "-c",
        "for s in /proc/[0-9]*/stat; do cut -d' ' -f3 $s 2>/dev/null; done | grep -c Z",
    ]);
    o.stdout.trim().parse().ok()
}

/// `--init`: runway's tiny init is PID 1 and reaps an orphan the command
/// leaves; without it the command is PID 1 and the orphan stays a zombie
/// (which shows the check sees zombies). podman's --init needs catatonit,
/// not installed here: runway only.
#[test]
fn init_reaps_zombies() {
    let rw = Rw::new("init");
    rw.import(&base_image(), "bb");
    let script = "(sleep 0.1 &); exec sleep 300";
    rw.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "noinit",
        "bb",
        "sh",
        "-c",
        script,
    ]);
    rw.ok(&[
        "container",
        "run",
        "-d",
        "--init",
        "--name",
        "withinit",
        "bb",
        "sh",
        "-c",
        script,
    ]);
    assert!(
        poll(SECS(10), || zombies(&rw, "noinit") == Some(1)),
        "no zombie without --init: {:?}",
        zombies(&rw, "noinit")
    );
    let o = rw.ok(&["container", "exec", "withinit", "cat", "/proc/1/comm"]);
    assert_ne!(o.stdout.trim(), "sleep", "--init: the command is PID 1");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(zombies(&rw, "withinit"), Some(0), "--init left a zombie");
    assert_eq!(rw.inspect("withinit")["HostConfig"]["Init"], true);
    rw.rm_all_and_check();
}

/// A foreground run on one engine with stdin from `input`; SIGTERM to
/// the engine's process once the container printed "ready" (when `term`).
/// Returns (exit code, stdout).
fn foreground(mut cmd: Command, dir: &std::path::Path, input: &str, term: bool) -> (i32, String) {
    let inp = dir.join("stdin.txt");
    let out = dir.join("stdout.txt");
    fs::write(&inp, input).unwrap();
    let mut child = cmd
        .stdin(fs::File::open(&inp).unwrap())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if term {
        assert!(
            poll(SECS(15), || fs::read_to_string(&out)
                .unwrap_or_default()
                .contains("ready")),
            "never ready: {cmd:?}"
        );
        // SAFETY: kill(2) of our own child.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
    }
    let code = wait_child(&mut child, SECS(20)).unwrap_or(-1);
    (code, fs::read_to_string(&out).unwrap())
}

/// `-i` passes stdin; without it the command reads nothing; a SIGTERM to
/// the foreground `run` reaches the container (a trap prints and exits
/// with its code) — runway vs podman.
#[test]
fn foreground_stdin_and_forwarded_signals() {
    let rw = Rw::new("fg");
    let layout = rw.import(&base_image(), "bb");
    let pm = podman_with(&rw, &[(&layout, "bb")]);
    let trap = trap_loop("TERM", "got-term", 6);
    let cases: Vec<(Vec<&str>, Vec<&str>, &str, bool)> = vec![
        (
            vec!["-i"],
            vec!["sh", "-c", "wc -l; echo done"],
            "a\nb\nc\n",
            false,
        ),
        (
            vec![],
            vec!["sh", "-c", "wc -l; echo done"],
            "a\nb\nc\n",
            false,
        ),
        (vec!["-i"], vec!["cat"], "passed through\n", false),
        (vec![], vec!["sh", "-c", &trap], "", true),
    ];
    for (flags, cmd, input, term) in &cases {
        let mut args = vec!["container", "run", "--rm"];
        args.extend_from_slice(flags);
        args.push("bb");
        args.extend_from_slice(cmd);
        let ours = foreground(rw.command(&args), &rw.base, input, *term);
        rw.assert_clean();
        if let Some(pm) = &pm {
            let mut args = vec!["run", "--rm", "--network", "none"];
            args.extend_from_slice(flags);
            args.push("localhost/bb");
            args.extend_from_slice(cmd);
            let theirs = foreground(pm.command(&args), &rw.base, input, *term);
            assert_eq!(ours, theirs, "runway vs podman: {flags:?} {cmd:?}");
        }
        match (flags.is_empty(), *term) {
            (_, true) => assert_eq!(ours, (6, "ready\ngot-term\n".to_string())),
            (false, _) if cmd[0] == "cat" => assert_eq!(ours, (0, "passed through\n".to_string())),
            (false, _) => assert_eq!(ours, (0, "3\ndone\n".to_string())),
            (true, _) => assert_eq!(ours, (0, "0\ndone\n".to_string())),
        }
    }
}

/// `run --rm` whose CLI is SIGKILLed: the monitor still removes the
/// container when its command ends.
#[test]
fn auto_remove_after_the_cli_is_killed() {
    let rw = Rw::new("rmkill");
    rw.import(&base_image(), "bb");
    let mut run = rw
        .command(&[
            "container",
            "run",
            "--rm",
            "--name",
            "orphan",
            "bb",
            "sh",
            "-c",
            "sleep 1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        poll(SECS(10), || rw
            .ids()
            .first()
            .is_some_and(|id| rw.state_json(id)["Status"] == "running")),
        "never running"
    );
    sigkill(run.id() as i32);
    let _ = run.wait();
    assert!(
        poll(SECS(15), || rw.ids().is_empty()),
        "--rm container left after its CLI died: {:?}",
        rw.ids()
    );
    rw.assert_clean();
}

/// runway's own failures before the command runs: exit 125, one line
/// naming the problem, nothing left (no dir, name, mount, cgroup).
#[test]
fn failures_are_125_one_line_and_leave_nothing() {
    let rw = Rw::new("fail125");
    rw.import(&base_image(), "bb");
    let mut nocmd = base_image();
    nocmd.config.cmd.clear();
    rw.import(&nocmd, "nocmd");
    let cases: &[(&[&str], &str)] = &[
        (&["--name", "ok1", "nocmd"], "command"),
        (&["--name", "ok2", "-v", "/tmp:/x:zz", "bb", "true"], "zz"),
        (
            &["--name", "ok3", "-v", "/tmp:relative", "bb", "true"],
            "relative",
        ),
        (&["--name", "ok4", "--memory", "lots", "bb", "true"], "lots"),
        (
            &["--name", "ok5", "--restart", "sometimes", "bb", "true"],
            "sometimes",
        ),
        (
            &["--name", "ok6", "--stop-signal", "SIGNOPE", "bb", "true"],
            "SIGNOPE",
        ),
        (
            &["--name", "ok7", "--pull", "never", "nosuch:tag", "true"],
            "nosuch",
        ),
        (
            &["--name", "ok8", "--network", "mynet", "bb", "true"],
            "mynet",
        ),
        (
            &["--name", "ok9", "-u", "nosuchuser", "bb", "true"],
            "nosuchuser",
        ),
        (
            &["--name", "ok10", "--env-file", "/no/such/env", "bb", "true"],
            "/no/such/env",
        ),
        (
            &["--name", "ok11", "--cap-add", "CAP_NOPE", "bb", "true"],
            "NOPE",
        ),
    ];
    for (args, names) in cases {
        for verb in ["run", "create"] {
            let mut all = vec!["container", verb];
            all.extend_from_slice(args);
            let o = rw.code(125, &all);
            assert_eq!(o.stderr.lines().count(), 1, "one line:\n{o}");
            assert!(o.stderr.contains(names), "names {names:?}:\n{o}");
            let left = rw.leftovers();
            assert!(left.is_empty(), "after {all:?}: {left:#?}");
        }
    }
    rw.assert_clean();
}

/// `--log-opt max-size/max-file`: the log rotates, at most max-file
/// files stay, `logs` shows the newest lines, and a `logs -f` started
/// early sees every line in order across the rotations; `-t` stamps.
#[test]
fn log_rotation_and_follow_across_it() {
    let rw = Rw::new("logrot");
    rw.import(&base_image(), "bb");
    let id = rw
        .ok(&[
            "container",
            "create",
            "--name",
            "rot",
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=5",
            "bb",
            "sh",
            "-c",
            "i=0; while [ $i -lt 100 ]; do echo line$i; i=$((i+1)); sleep 0.01; done",
        ])
        .stdout
        .trim()
        .to_string();
    // Started before the first rotation (a follow of a container that is
    // not running ends at once, as docker's).
    rw.ok(&["container", "start", "rot"]);
    let follow_out = rw.path("follow.out");
    let mut follow = rw
        .command(&["logs", "-f", "rot"])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&follow_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    rw.wait_status("rot", "exited", SECS(20));
    assert_eq!(
        wait_child(&mut follow, SECS(10)),
        Some(0),
        "logs -f did not end"
    );
    let want: String = (0..100).map(|i| format!("line{i}\n")).collect();
    assert_eq!(
        fs::read_to_string(&follow_out).unwrap(),
        want,
        "logs -f across rotation"
    );
    let logs = rw.ok(&["logs", "rot"]).stdout;
    assert!(logs.ends_with("line99\n"), "{logs:?}");
    assert!(
        logs.lines().count() < 100,
        "rotation dropped nothing: {} lines",
        logs.lines().count()
    );
    assert!(
        want.ends_with(&logs),
        "logs is not the newest lines in order: {logs:?}"
    );
    let dir = rw.data.join("containers").join(&id);
    let files = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("container.log"))
        .count();
    assert!((2..=5).contains(&files), "{files} log files");
    let stamped = rw.ok(&["logs", "-t", "--tail", "1", "rot"]).stdout;
    let (ts, line) = stamped.trim_end().split_once(' ').unwrap();
    assert_eq!(line, "line99");
    assert!(common::looks_rfc3339(ts), "{stamped:?}");
    rw.rm_all_and_check();
}

/// `restart` runs the command anew (same id, same upper dir: a file the
/// first run wrote is still there); `prune -f` removes every stopped
/// container and keeps the running one; `rm -v`/`rm -f` of a created one.
#[test]
fn restart_and_prune() {
    let rw = Rw::new("prune");
    rw.import(&base_image(), "bb");
    let script = "date +%s%N >> /runs; echo ready; trap 'exit 0' TERM; while :; do sleep 0.1; done";
    let id = rw
        .ok(&[
            "container",
            "run",
            "-d",
            "--name",
            "keep",
            "bb",
            "sh",
            "-c",
            script,
        ])
        .stdout
        .trim()
        .to_string();
    assert!(poll(SECS(10), || rw.logs("keep").contains("ready")));
    let pid1 = rw.inspect("keep")["State"]["Pid"].as_i64().unwrap();
    rw.ok(&["container", "restart", "keep"]);
    rw.wait_status("keep", "running", SECS(10));
    assert!(poll(SECS(10), || rw.logs("keep").matches("ready").count() == 2));
    let v = rw.inspect("keep");
    assert_eq!(v["Id"], id.as_str());
    assert_ne!(
        v["State"]["Pid"].as_i64().unwrap(),
        pid1,
        "restart kept the old process"
    );
    let o = rw.ok(&["container", "exec", "keep", "wc", "-l", "/runs"]);
    assert_eq!(
        o.stdout.split_whitespace().next(),
        Some("2"),
        "the upper dir survives a restart: {o}"
    );
    // Stopped ones: exited and created.
    rw.ok(&["container", "run", "--name", "done1", "bb", "true"]);
    rw.code(
        3,
        &[
            "container",
            "run",
            "--name",
            "done2",
            "bb",
            "sh",
            "-c",
            "exit 3",
        ],
    );
    rw.ok(&["container", "create", "--name", "fresh", "bb"]);
    let o = rw.ok(&["container", "prune", "-f"]);
    assert!(o.stdout.contains("Deleted Containers:"), "{o}");
    assert_eq!(o.stdout.lines().filter(|l| l.len() == 64).count(), 3, "{o}");
    assert_eq!(
        rw.ids(),
        vec![id.clone()],
        "prune kept only the running container"
    );
    assert_eq!(rw.inspect("keep")["State"]["Status"], "running");
    rw.ok(&["container", "create", "--name", "fresh2", "bb"]);
    rw.ok(&["rm", "-v", "fresh2"]);
    rw.rm_all_and_check();
}

// ------------------------------------------------------------ 9. 30 layers

#[test]
fn thirty_layer_image_runs_and_sees_the_right_files() {
    let rw = Rw::new("layers30");
    let mut layers = vec![Layer::new(Compress::Gzip, busybox_entries())];
    let mut want = BTreeSet::new();
    for i in 1..30usize {
        let mut e = vec![
            Entry::dir("layers"),
            Entry::file(&format!("layers/f{i:02}"), format!("{i}\n")),
        ];
        want.insert(i);
        // Each layer also deletes an earlier file (some already deleted).
        if i >= 2 {
            let gone = i / 2;
            e.push(Entry::whiteout(&format!("layers/f{gone:02}")));
            want.remove(&gone);
        }
        layers.push(Layer::new(
            if i % 2 == 0 {
                Compress::Gzip
            } else {
                Compress::None
            },
            e,
        ));
    }
    assert_eq!(layers.len(), 30);
    let img = Image::new(layers);
    let layout = rw.import(&img, "many");
    let script = "cd /layers && for f in *; do echo $f:$(cat $f); done";
    let o = rw.ok(&["container", "run", "--rm", "many", "sh", "-c", script]);
    let expect: String = want.iter().map(|i| format!("f{i:02}:{i}\n")).collect();
    assert_eq!(o.stdout, expect);
    if let Some(pm) = podman_with(&rw, &[(&layout, "many")]) {
        let p = pm.run(&["--rm"], "many", &["sh", "-c", script]);
        assert_eq!(
            (p.code, p.stdout.as_str()),
            (0, expect.as_str()),
            "podman:\n{p}"
        );
    }
    rw.assert_clean();
}

// ----------------------------------------------------------------- 10. names

#[test]
fn names_conflict_and_addressing() {
    let rw = Rw::new("names");
    rw.import(&base_image(), "bb");
    let id = rw
        .ok(&["container", "create", "--name", "holder", "bb"])
        .stdout
        .trim()
        .to_string();
    let o = rw.code(125, &["container", "run", "--name", "holder", "bb", "true"]);
    assert!(
        o.stderr.contains("holder") && o.stderr.contains(&id[..12]),
        "names the holder:\n{o}"
    );
    assert_eq!(o.stderr.lines().count(), 1, "{o}");
    let o = rw.code(125, &["container", "create", "--name", "holder", "bb"]);
    assert!(o.stderr.contains(&id[..12]), "{o}");
    assert_eq!(
        rw.ids(),
        vec![id.clone()],
        "a failed create left a container"
    );
    // Invalid names.
    rw.code(125, &["container", "create", "--name", "bad name!", "bb"]);
    // By name, full id, unique prefix.
    let other = rw
        .ok(&["container", "create", "bb"])
        .stdout
        .trim()
        .to_string();
    let handles: [&str; 4] = ["holder", id.as_str(), &id[..12], &id[..6]];
    for handle in handles {
        assert_eq!(rw.inspect(handle)["Id"], id.as_str(), "by {handle}");
    }
    assert_eq!(rw.inspect(&other[..12])["Id"], other.as_str());
    // The default name is docker-like and addresses it too.
    let dname = rw.inspect(&other)["Name"]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    assert!(!dname.is_empty());
    assert_eq!(rw.inspect(&dname)["Id"], other.as_str());
    // start -a by prefix; rm by name.
    let o = rw.ok(&["container", "start", "-a", &id[..10]]);
    assert_eq!(o.code, 0);
    let o = rw.rw(&["container", "inspect", "nosuch"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("nosuch"), "{o}");
    rw.ok(&["rm", "holder", &other[..12]]);
    // The name is free again.
    rw.ok(&["container", "create", "--name", "holder", "bb"]);
    rw.rm_all_and_check();
}

// ------------------------------------------------------------- 11. crashes

fn sigkill(pid: i32) {
    // SAFETY: kill(2) of a process this test started (directly or via runway).
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

#[test]
fn killed_monitor_then_rm_f_leaves_nothing() {
    let rw = Rw::new("killmon");
    rw.import(&base_image(), "bb");
    let id = rw
        .ok(&[
            "container",
            "run",
            "-d",
            "--name",
            "victim",
            "bb",
            "sleep",
            "300",
        ])
        .stdout
        .trim()
        .to_string();
    rw.wait_status("victim", "running", SECS(10));
    let st = rw.state_json(&id);
    let mon = st["MonitorPid"].as_i64().unwrap_or(0) as i32;
    let init = st["Pid"].as_i64().unwrap_or(0) as i32;
    assert!(mon > 0 && init > 0, "state.json: {st}");
    assert!(common::process_alive(mon));
    sigkill(mon);
    assert!(poll(SECS(5), || !common::process_alive(mon)));
    // ps -a still lists it, inspect still answers.
    let o = rw.ok(&["ps", "-a"]);
    assert!(
        o.stdout.contains(&id[..12]),
        "ps -a after the monitor died:\n{o}"
    );
    let s = rw.status("victim");
    assert!(s.is_some(), "inspect after the monitor died");
    rw.ok(&["rm", "-f", "victim"]);
    assert!(
        poll(SECS(5), || !common::process_alive(init)),
        "the container survived rm -f"
    );
    rw.assert_clean();
}

#[test]
fn killed_foreground_run_then_rm_f_leaves_nothing() {
    let rw = Rw::new("killrun");
    rw.import(&base_image(), "bb");
    let mut run = rw
        .command(&["container", "run", "--name", "fg", "bb", "sleep", "300"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        poll(SECS(10), || rw
            .ids()
            .first()
            .is_some_and(|id| rw.state_json(id)["Status"] == "running")),
        "the foreground run never got running"
    );
    sigkill(run.id() as i32);
    let _ = run.wait();
    rw.ok(&["rm", "-f", "fg"]);
    rw.assert_clean();
    // And killed while still creating: whatever it left, rm -f of all
    // (or prune) cleans it.
    for delay_ms in [5u64, 30, 80] {
        let mut run = rw
            .command(&["container", "run", "bb", "sleep", "300"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        sigkill(run.id() as i32);
        let _ = run.wait();
        // Monitors forked before the kill still go on; let them settle.
        std::thread::sleep(Duration::from_millis(300));
        for id in rw.ids() {
            rw.ok(&["rm", "-f", &id]);
        }
        rw.assert_clean();
    }
}

#[test]
fn twenty_concurrent_runs_of_one_name_one_wins() {
    let rw = Rw::new("race");
    rw.import(&base_image(), "bb");
    let children: Vec<_> = (0..20)
        .map(|i| {
            let out = rw.path(&format!("race-{i}.x"));
            let child = rw
                .command(&[
                    "container",
                    "run",
                    "-d",
                    "--name",
                    "same",
                    "bb",
                    "sleep",
                    "5",
                ])
                .stdin(Stdio::null())
                .stdout(fs::File::create(out.with_extension("out")).unwrap())
                .stderr(fs::File::create(out.with_extension("err")).unwrap())
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    let mut wins = Vec::new();
    let mut losses = Vec::new();
    for (mut child, out) in children {
        let code = wait_child(&mut child, SECS(60)).expect("a concurrent run hung");
        let stdout = fs::read_to_string(out.with_extension("out")).unwrap();
        let stderr = fs::read_to_string(out.with_extension("err")).unwrap();
        if code == 0 {
            wins.push(stdout.trim().to_string());
        } else {
            losses.push((code, stderr));
        }
    }
    rw.note_ids();
    assert_eq!(wins.len(), 1, "winners: {wins:?}; losers: {losses:?}");
    let winner = &wins[0];
    for (code, err) in &losses {
        assert_eq!(*code, 125, "{err}");
        assert!(
            err.contains("same") && err.contains(&winner[..12]),
            "names the holder: {err}"
        );
    }
    assert_eq!(rw.ids(), vec![winner.clone()], "losers left containers");
    assert_eq!(rw.inspect("same")["Id"], winner.as_str());
    rw.ok(&["rm", "-f", "same"]);
    rw.assert_clean();
}

// ------------------------------------------------------- 12. image in use

#[test]
fn image_in_use_is_protected() {
    let rw = Rw::new("protect");
    rw.import(&base_image(), "bb");
    let id = rw
        .ok(&[
            "container",
            "create",
            "--name",
            "user",
            "bb",
            "echo",
            "still here",
        ])
        .stdout
        .trim()
        .to_string();
    let o = rw.rw(&["rmi", "bb"]);
    assert_ne!(o.code, 0, "rmi of an image in use:\n{o}");
    assert!(
        o.stderr.contains(&id[..12]) || o.stderr.contains("user"),
        "names the container:\n{o}"
    );
    let o = rw.rw(&["image", "rm", "bb"]);
    assert_ne!(o.code, 0, "{o}");
    rw.ok(&["image", "prune", "-a"]);
    let o = rw.ok(&["container", "start", "-a", "user"]);
    assert_eq!(o.stdout, "still here\n");
    assert!(
        rw.ok(&["image", "ls"]).stdout.contains("bb"),
        "image ls after prune -a"
    );
    rw.ok(&["rm", "user"]);
    rw.ok(&["rmi", "bb"]);
    rw.ok(&["image", "prune", "-a"]);
    assert!(!rw.ok(&["image", "ls"]).stdout.contains("bb"));
    rw.code(
        125,
        &["container", "run", "--rm", "--pull", "never", "bb", "true"],
    );
    rw.assert_clean();
}

// ------------------------------------------------------- 13. runc's `run`

#[test]
fn runc_run_without_bundle_points_to_container_run() {
    let rw = Rw::new("runcrun");
    rw.import(&base_image(), "bb");
    let empty = rw.path("empty");
    fs::create_dir_all(&empty).unwrap();
    let mut c = rw.command(&["run", "bb"]);
    c.current_dir(&empty);
    let o = harness::run_cmd(c, &empty, SECS(20));
    assert_ne!(o.code, 0, "{o}");
    assert!(o.stderr.contains("runway container run"), "{o}");
    assert_eq!(o.stderr.lines().count(), 1, "{o}");
    rw.assert_clean();
}

/// A reboot, as far as runway can tell: every process gone (monitor and
/// container SIGKILLed), the runtime root (a tmpfs) empty, the overlay
/// unmounted. `start --all-restartable` brings back `always` and
/// `unless-stopped` containers, but not one the user stopped, nor `no`.
#[test]
fn start_all_restartable_after_a_simulated_reboot() {
    let rw = Rw::new("reboot");
    rw.import(&base_image(), "bb");
    for (name, policy) in [
        ("alw", "always"),
        ("unl", "unless-stopped"),
        ("stp", "unless-stopped"),
        ("non", "no"),
    ] {
        rw.ok(&[
            "container",
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "bb",
            "sleep",
            "300",
        ]);
        rw.wait_status(name, "running", SECS(10));
    }
    rw.ok(&["container", "stop", "-t", "0", "stp"]);
    rw.wait_status("stp", "exited", SECS(10));
    for name in ["alw", "unl", "non"] {
        let id = rw.inspect(name)["Id"].as_str().unwrap_or("").to_string();
        let st = rw.state_json(&id);
        for key in ["MonitorPid", "Pid"] {
            let pid = st[key].as_i64().unwrap_or(0) as i32;
            assert!(pid > 0, "{name}: state.json {st}");
            sigkill(pid);
            assert!(poll(SECS(5), || !common::process_alive(pid)));
        }
    }
    // What a reboot wipes: /run (the OCI state and cgroups) and mounts.
    for id in rw.ids() {
        let _ = rw.rw(&["delete", "--force", &id]);
    }
    unmount_all_under(&rw.data);
    // …and the pinned network namespaces under the runtime root.
    unmount_all_under(&rw.root);
    let _ = fs::remove_dir_all(rw.root.join("netns"));
    let ip_of = |n: &str| {
        rw.inspect(n)["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let alw_ip = ip_of("alw");
    assert!(alw_ip.starts_with("10."), "alw has an address: {alw_ip:?}");
    let o = rw.ok(&["container", "start", "--all-restartable"]);
    let started: Vec<&str> = o.stdout.lines().collect();
    assert!(
        started.contains(&"alw") && started.contains(&"unl"),
        "started: {o}"
    );
    assert!(
        !started.contains(&"stp") && !started.contains(&"non"),
        "started: {o}"
    );
    rw.wait_status("alw", "running", SECS(10));
    rw.wait_status("unl", "running", SECS(10));
    assert_eq!(rw.status("stp").as_deref(), Some("exited"));
    assert_ne!(rw.status("non").as_deref(), Some("running"));
    // Its network came back with it, at the same address.
    let o = rw.ok(&[
        "container",
        "exec",
        "alw",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(
        o.stdout.contains(&format!("{alw_ip}/")),
        "after the reboot: {o}"
    );
    assert_eq!(ip_of("alw"), alw_ip);
    rw.rm_all_and_check();
}

/// Named volumes persist across containers (runway beside podman); a new
/// one is filled from the image at its mount point (docker's copy-up); an
/// anonymous one (`-v /path`) goes with `--rm`; a volume in use cannot be
/// removed until its container is.
#[test]
fn named_and_anonymous_volumes() {
    let rw = Rw::new("namedvol");
    let layout = rw.import(&base_image(), "bb");
    let pm = podman_with(&rw, &[(&layout, "bb")]);
    let steps: [(&[&str], &str); 3] = [
        (
            &["--rm", "-v", "vol:/data"],
            "echo one > /data/f; cat /data/f",
        ),
        (
            &["--rm", "-v", "vol:/data:ro"],
            "cat /data/f; echo two > /data/f 2>/dev/null || echo ro",
        ),
        // Copy-up: a new volume on /etc starts with the image's /etc.
        (&["--rm", "-v", "etc:/etc"], "grep -c '^root:' /etc/passwd"),
    ];
    let want = ["one\n", "one\nro\n", "1\n"];
    for ((flags, script), want) in steps.iter().zip(want) {
        let mut args = vec!["container", "run"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bb", "sh", "-c", script]);
        let o = rw.ok(&args);
        assert_eq!(o.stdout, want, "{o}");
        if let Some(pm) = &pm {
            let p = pm.run(flags, "bb", &["sh", "-c", script]);
            assert_eq!((p.code, p.stdout.as_str()), (0, want), "podman:\n{p}");
        }
    }
    let vols = rw.ok(&["volume", "ls", "-q"]).stdout;
    assert_eq!(vols, "etc\nvol\n", "named volumes stay");

    // Anonymous: made for the container, gone with --rm.
    let o = rw.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        "/scratch",
        "bb",
        "sh",
        "-c",
        "touch /scratch/x && echo ok",
    ]);
    assert_eq!(o.stdout, "ok\n");
    assert_eq!(
        rw.ok(&["volume", "ls", "-q"]).stdout,
        vols,
        "the anonymous volume stayed"
    );

    // In use: refused, naming the container; free again after rm.
    let id = rw
        .ok(&[
            "container",
            "run",
            "-d",
            "-v",
            "vol:/data",
            "bb",
            "sleep",
            "300",
        ])
        .stdout
        .trim()
        .to_string();
    let o = rw.rw(&["volume", "rm", "vol"]);
    assert!(
        o.code != 0 && o.stderr.contains(&id[..12]),
        "volume rm of a volume in use:\n{o}"
    );
    rw.ok(&["rm", "-f", &id]);
    rw.ok(&["volume", "rm", "vol", "etc"]);
    assert_eq!(rw.ok(&["volume", "ls", "-q"]).stdout, "");
    rw.rm_all_and_check();
}
