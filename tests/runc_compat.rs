//! Where runc's behaviour is the specification (engines parse it), compare
//! the runtime under test with runc on the same input. Skipped when runc is
//! not installed.

mod common;

use common::{keys, Bundle, Out, TestEnv};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn runc_or_skip(test: &str) -> Option<PathBuf> {
    let runc = common::runc();
    if runc.is_none() {
        common::note(&format!("skipped: {test}: runc not installed"));
    }
    runc
}

/// Create `id` from `bundle` with runc under its own root, take `state` and
/// `list --format json`, force-delete. Returns (state, list entry).
fn runc_observe(env: &TestEnv, runc: &Path, bundle: &Bundle, id: &str) -> (Value, Value) {
    let create = env.other(
        runc,
        "runc",
        &bundle.mark,
        &["create", "--bundle", &bundle.path_str(), id],
    );
    create.assert_ok();
    let state = env.other(runc, "runc", &bundle.mark, &["state", id]);
    let list = env.other(runc, "runc", &bundle.mark, &["list", "--format", "json"]);
    env.other(runc, "runc", &bundle.mark, &["delete", "--force", id])
        .assert_ok();
    state.assert_ok();
    list.assert_ok();
    let state: Value = serde_json::from_str(&state.stdout)
        .unwrap_or_else(|e| panic!("runc state ({e}):\n{state}"));
    let list: Value =
        serde_json::from_str(&list.stdout).unwrap_or_else(|e| panic!("runc list ({e}):\n{list}"));
    (state, list[0].clone())
}

/// The same with the runtime under test.
fn ours_observe(env: &TestEnv, bundle: &Bundle, id: &str) -> (Value, Value) {
    env.create_ok(bundle, id);
    let state = env.state_json(id);
    let list = env.list(&["--format", "json"]);
    env.delete(id, true).assert_ok();
    list.assert_ok();
    let list: Value =
        serde_json::from_str(&list.stdout).unwrap_or_else(|e| panic!("list ({e}):\n{list}"));
    (state, list[0].clone())
}

#[test]
fn state_and_list_keys_match_runc() {
    let Some(env) = TestEnv::new("keys") else {
        return;
    };
    let Some(runc) = runc_or_skip("state_and_list_keys_match_runc") else {
        return;
    };
    let mut b = env.bundle();
    // With annotations runc includes the key; the full OCI state then.
    b.args(&["sleep", "1000"])
        .annotation("org.example.test", "yes")
        .write();

    let id = env.id("c");
    let (runc_state, runc_item) = runc_observe(&env, &runc, &b, &id);
    env.assert_nothing_left(&id, &b);
    let (state, item) = ours_observe(&env, &b, &id);
    env.assert_nothing_left(&id, &b);

    assert_eq!(
        keys(&state),
        keys(&runc_state),
        "state keys\n ours: {state}\n runc: {runc_state}"
    );
    assert_eq!(
        keys(&item),
        keys(&runc_item),
        "list json keys\n ours: {item}\n runc: {runc_item}"
    );
    // (runc's `state` says owner "" while `list` says "root"; not compared.)
    for field in ["id", "status", "bundle", "rootfs", "annotations"] {
        assert_eq!(
            state[field], runc_state[field],
            "state.{field}\n ours: {state}\n runc: {runc_state}"
        );
        assert_eq!(
            item[field], runc_item[field],
            "list.{field}\n ours: {item}\n runc: {runc_item}"
        );
    }
    for v in [&state, &item] {
        assert!(
            v["created"].as_str().is_some_and(common::looks_rfc3339),
            "{v}"
        );
        assert!(v["pid"].as_i64().is_some_and(|p| p > 0), "{v}");
    }
}

#[test]
fn state_keys_without_annotations_match_runc() {
    let Some(env) = TestEnv::new("keys_plain") else {
        return;
    };
    let Some(runc) = runc_or_skip("state_keys_without_annotations_match_runc") else {
        return;
    };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]).write();
    let id = env.id("c");
    let (runc_state, runc_item) = runc_observe(&env, &runc, &b, &id);
    let (state, item) = ours_observe(&env, &b, &id);
    env.assert_nothing_left(&id, &b);
    // runc omits empty annotations; printing them empty ({}) is allowed.
    let optional: BTreeSet<String> = ["annotations".to_string()].into();
    for (what, ours, theirs) in [("state", &state, &runc_state), ("list", &item, &runc_item)] {
        let (k, rk) = (keys(ours), keys(theirs));
        assert!(
            rk.is_subset(&k),
            "{what}: runc has keys we lack\n ours: {ours}\n runc: {theirs}"
        );
        assert!(
            k.difference(&rk).all(|x| optional.contains(x)),
            "{what}: extra keys\n ours: {ours}\n runc: {theirs}"
        );
    }
}

/// stdout of `list ARGS` with an empty, never-used root, for both runtimes.
fn empty_list(env: &TestEnv, runc: &Path, args: &[&str]) -> (Out, Out) {
    let mut all = vec!["list"];
    all.extend_from_slice(args);
    let ours = env.rt(&all);
    let theirs = env.other(runc, "runc", "none", &all);
    ours.assert_ok();
    theirs.assert_ok();
    (ours, theirs)
}

#[test]
fn empty_list_json_matches_runc() {
    let Some(env) = TestEnv::new("list_json_empty") else {
        return;
    };
    let Some(runc) = runc_or_skip("empty_list_json_matches_runc") else {
        return;
    };
    let (ours, theirs) = empty_list(&env, &runc, &["--format", "json"]);
    assert_eq!(
        ours.stdout, theirs.stdout,
        "runc prints `null` for no containers\n ours:\n{ours}\n runc:\n{theirs}"
    );
}

#[test]
fn empty_list_table_and_quiet_match_runc() {
    let Some(env) = TestEnv::new("list_table_empty") else {
        return;
    };
    let Some(runc) = runc_or_skip("empty_list_table_and_quiet_match_runc") else {
        return;
    };
    let (ours, theirs) = empty_list(&env, &runc, &[]);
    assert_eq!(
        ours.stdout, theirs.stdout,
        "table header\n ours:\n{ours}\n runc:\n{theirs}"
    );
    let (ours, theirs) = empty_list(&env, &runc, &["--format", "table"]);
    assert_eq!(
        ours.stdout, theirs.stdout,
        "--format table\n ours:\n{ours}\n runc:\n{theirs}"
    );
    let (ours, theirs) = empty_list(&env, &runc, &["-q"]);
    assert_eq!(
        ours.stdout, theirs.stdout,
        "-q\n ours:\n{ours}\n runc:\n{theirs}"
    );
}

#[test]
fn list_table_row_matches_runc() {
    let Some(env) = TestEnv::new("list_table") else {
        return;
    };
    let Some(runc) = runc_or_skip("list_table_row_matches_runc") else {
        return;
    };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]).write();
    let id = env.id("c");

    let create = env.other(
        &runc,
        "runc",
        &b.mark,
        &["create", "--bundle", &b.path_str(), &id],
    );
    create.assert_ok();
    let theirs = env.other(&runc, "runc", &b.mark, &["list"]);
    env.other(&runc, "runc", &b.mark, &["delete", "--force", &id])
        .assert_ok();
    env.create_ok(&b, &id);
    let ours = env.list(&[]);
    env.delete(&id, true).assert_ok();
    env.assert_nothing_left(&id, &b);

    let (ol, tl) = (ours.stdout_lines(), theirs.stdout_lines());
    assert_eq!(ol.len(), 2, "{ours}");
    assert_eq!(tl.len(), 2, "{theirs}");
    // pid and creation time differ in width, so compare words, not columns.
    let words = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        words(ol[0]),
        words(tl[0]),
        "header\n ours:\n{ours}\n runc:\n{theirs}"
    );
    let (ow, tw) = (words(ol[1]), words(tl[1]));
    assert_eq!(ow.len(), tw.len(), "row\n ours:\n{ours}\n runc:\n{theirs}");
    for i in [0, 2, 3, 5] {
        assert_eq!(ow[i], tw[i], "column {i}\n ours:\n{ours}\n runc:\n{theirs}");
    }
    // Columns are padded like Go's tabwriter (min width 12, padding 3), so
    // header columns up to CREATED start at the same places (CREATED's own
    // width varies with the timestamp's trailing zeros).
    let starts = |l: &str| {
        let mut s = vec![0];
        let b = l.as_bytes();
        for i in 1..b.len() {
            if b[i] != b' ' && b[i - 1] == b' ' {
                s.push(i);
            }
        }
        s
    };
    assert_eq!(
        starts(ol[0])[..5],
        starts(tl[0])[..5],
        "header alignment\n ours:\n{ours}\n runc:\n{theirs}"
    );
}

#[test]
fn default_spec_matches_runc() {
    let Some(env) = TestEnv::new("spec_vs_runc") else {
        return;
    };
    let Some(runc) = runc_or_skip("default_spec_matches_runc") else {
        return;
    };
    let read = |dir: &PathBuf, out: &Out| -> Value {
        out.assert_ok();
        let text = std::fs::read_to_string(dir.join("config.json"))
            .unwrap_or_else(|e| panic!("{e}:\n{out}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
    };
    let (ours_dir, runc_dir) = (env.dir.join("spec-ours"), env.dir.join("spec-runc"));
    for d in [&ours_dir, &runc_dir] {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut ours = read(
        &ours_dir,
        &env.rt(&["spec", "--bundle", &ours_dir.to_string_lossy()]),
    );
    let mut theirs = read(
        &runc_dir,
        &common::run_program(&runc, &["spec", "--bundle", &runc_dir.to_string_lossy()]),
    );
    // The spec version is each runtime's own; the hostname names the runtime.
    for v in [&mut ours, &mut theirs] {
        let o = v
            .as_object_mut()
            .unwrap_or_else(|| panic!("spec is not an object"));
        assert!(o
            .remove("ociVersion")
            .is_some_and(|s| s.as_str().is_some_and(|s| !s.is_empty())));
        assert!(o.remove("hostname").is_some());
    }
    assert_eq!(ours, theirs, "default spec differs from runc's");

    let (ours_dir, runc_dir) = (env.dir.join("rl-ours"), env.dir.join("rl-runc"));
    for d in [&ours_dir, &runc_dir] {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut ours = read(
        &ours_dir,
        &env.rt(&[
            "spec",
            "--rootless",
            "--bundle",
            &ours_dir.to_string_lossy(),
        ]),
    );
    let mut theirs = read(
        &runc_dir,
        &common::run_program(
            &runc,
            &[
                "spec",
                "--rootless",
                "--bundle",
                &runc_dir.to_string_lossy(),
            ],
        ),
    );
    for v in [&mut ours, &mut theirs] {
        if let Some(o) = v.as_object_mut() {
            o.remove("ociVersion");
            o.remove("hostname");
        }
    }
    assert_eq!(ours, theirs, "--rootless spec differs from runc's");
}

#[test]
fn version_has_runc_shape() {
    let out = common::run_runtime(&["--version"]);
    out.assert_ok();
    let lines = out.stdout_lines();
    let name = common::runtime_name();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with(&format!("{name} version "))),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.strip_prefix("commit: ").is_some_and(|c| !c.is_empty())),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.strip_prefix("spec: ").is_some_and(|c| !c.is_empty())),
        "{out}"
    );
    if common::is_runway() {
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(
            lines[0],
            format!("runway version {}", env!("CARGO_PKG_VERSION")),
            "{out}"
        );
        assert!(lines[1].starts_with("commit: "), "{out}");
        assert!(lines[2].starts_with("spec: 1."), "{out}");
        let short = common::run_runtime(&["-v"]);
        assert_eq!(short.stdout, out.stdout, "-v is --version");
    }
}

#[test]
fn cli_accepts_runc_parsing_habits() {
    // Engines call runtimes in all of these spellings.
    let Some(env) = TestEnv::new("cli_habits") else {
        return;
    };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]).write();
    let root = env.root.to_string_lossy().into_owned();
    let bundle = b.path_str();

    // --flag=value for a global flag, flags after the id.
    let id = env.id("a");
    let pid_file = env.pid_file(&id);
    let mut cmd = vec!["--root=".to_string() + &root, "create".into(), id.clone()];
    cmd.extend([
        "--bundle".into(),
        bundle.clone(),
        "--pid-file".into(),
        pid_file.to_string_lossy().into_owned(),
    ]);
    let out = common::run_program(
        &common::runtime(),
        &cmd.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    out.assert_ok();
    assert_eq!(env.status(&id), "created");
    assert_eq!(
        env.state_json(&id)["pid"].as_i64(),
        Some(env.read_pid_file(&id) as i64)
    );
    env.rt(&["delete", "--force=true", &id]).assert_ok();
    env.assert_nothing_left(&id, &b);

    // Single-dash long flags and --flag=value on a command.
    let id = env.id("b");
    env.rt_for(
        &b,
        &[
            "create",
            "-bundle",
            &bundle,
            &format!("--pid-file={}", env.pid_file(&id).display()),
            &id,
        ],
    )
    .assert_ok();
    assert_eq!(env.status(&id), "created");
    env.rt(&["kill", "--all=false", &id, "KILL"]).assert_ok();
    env.wait_for_status(&id, "stopped", common::STATE_TIMEOUT);
    env.rt(&["delete", &id]).assert_ok();
    env.assert_nothing_left(&id, &b);

    // -b short flag, run -d.
    let id = env.id("c");
    env.rt_for(&b, &["run", "-d", "-b", &bundle, &id])
        .assert_ok();
    assert_eq!(env.status(&id), "running");
    env.rt(&["delete", "-f", &id]).assert_ok();
    env.assert_nothing_left(&id, &b);
}

#[test]
fn delete_of_created_container_without_force_matches_runc() {
    let Some(env) = TestEnv::new("del_created_nf") else {
        return;
    };
    let Some(runc) = runc_or_skip("delete_of_created_container_without_force_matches_runc") else {
        return;
    };
    let mut b = env.bundle();
    b.args(&["sleep", "1000"]).write();
    let id = env.id("c");
    env.other(
        &runc,
        "runc",
        &b.mark,
        &["create", "--bundle", &b.path_str(), &id],
    )
    .assert_ok();
    let theirs = env.other(&runc, "runc", &b.mark, &["delete", &id]);
    env.other(&runc, "runc", &b.mark, &["delete", "--force", &id]);
    env.assert_nothing_left(&id, &b);
    env.create_ok(&b, &id);
    let ours = env.delete(&id, false);
    assert_eq!(
        ours.ok(),
        theirs.ok(),
        "delete of a created container\n ours:\n{ours}\n runc:\n{theirs}"
    );
    env.delete(&id, true);
    env.assert_nothing_left(&id, &b);
}
