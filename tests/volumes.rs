//! `runway volume create|ls|inspect|rm|prune` against a private
//! --data-root: docker's outputs and exit codes, refusal of a volume in
//! use, one clear line for a bad name, and 20 concurrent creates of one
//! name making one volume.
#![cfg(feature = "full")]

mod common;

use common::{run_program, Out};
use runway::engine::{names, volumes};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A data root of its own, removed on drop.
struct Root(PathBuf);

impl Root {
    fn new() -> Root {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "volumes-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Root(d)
    }

    fn runway(&self, args: &[&str]) -> Out {
        let root = self.0.to_str().unwrap();
        let mut all = vec!["--data-root", root, "volume"];
        all.extend_from_slice(args);
        run_program(Path::new(env!("CARGO_BIN_EXE_runway")), &all)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.runway(args);
        o.assert_ok();
        assert!(o.stderr.is_empty(), "{o}");
        o.stdout
    }

    /// A container dir, as the container record makes it.
    fn container(&self) -> String {
        let id = names::new_id().unwrap();
        std::fs::create_dir_all(names::containers_dir(&self.0).join(&id)).unwrap();
        id
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn create_ls_inspect_rm() {
    let r = Root::new();
    assert_eq!(
        r.ok(&["create", "data", "--label", "a=b", "-l", "c"]),
        "data\n"
    );
    // Idempotent, as docker.
    assert_eq!(r.ok(&["create", "--name", "data"]), "data\n");
    let anon = r.ok(&["create"]);
    let anon = anon.trim();
    assert!(names::is_full_id(anon), "{anon:?}");

    let mut want_rows = vec![anon, "data"];
    want_rows.sort();
    let table = r.ok(&["ls"]);
    let mut want = String::from("DRIVER    VOLUME NAME\n");
    for n in &want_rows {
        want.push_str(&format!("local     {n}\n"));
    }
    assert_eq!(table, want);
    assert_eq!(r.ok(&["ls", "-q"]), format!("{}\n", want_rows.join("\n")));

    let json = r.ok(&["ls", "--format", "json"]);
    let lines: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let data = lines.iter().find(|v| v["Name"] == "data").unwrap();
    assert_eq!(data["Driver"], "local");
    assert_eq!(data["Labels"], "a=b,c=");
    assert_eq!(
        data["Mountpoint"],
        r.0.join("volumes/data/_data").to_str().unwrap()
    );

    let out = r.ok(&["inspect", "data"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let obj = &v.as_array().unwrap()[0];
    assert_eq!(
        common::keys(obj),
        [
            "CreatedAt",
            "Driver",
            "Labels",
            "Mountpoint",
            "Name",
            "Options",
            "Scope"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    );
    assert!(common::looks_rfc3339(obj["CreatedAt"].as_str().unwrap()));
    assert_eq!(obj["Labels"], serde_json::json!({"a": "b", "c": ""}));
    assert_eq!(obj["Scope"], "local");
    assert!(Path::new(obj["Mountpoint"].as_str().unwrap()).is_dir());
    // Anonymous volumes carry docker's label.
    let v: Value = serde_json::from_str(&r.ok(&["inspect", anon])).unwrap();
    assert_eq!(
        v[0]["Labels"],
        serde_json::json!({"com.docker.volume.anonymous": ""})
    );

    // inspect of a missing one: the found ones, then its error, exit 1.
    let o = r.runway(&["inspect", "data", "nope"]);
    assert_eq!(o.code, 1, "{o}");
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(o.stderr, "runway: get nope: no such volume\n");

    assert_eq!(r.ok(&["rm", "data", anon]), format!("data\n{anon}\n"));
    assert_eq!(r.ok(&["ls", "-q"]), "");
    assert!(!r.0.join("volumes/data").exists());
    let o = r.runway(&["rm", "data"]);
    assert_eq!(
        o.assert_one_error_line(),
        "runway: get data: no such volume"
    );
    assert_eq!(r.ok(&["rm", "-f", "data"]), "data\n");
}

#[test]
fn a_volume_in_use_is_not_removed() {
    let r = Root::new();
    r.ok(&["create", "used"]);
    let c = r.container();
    volumes::add_ref(&r.0, "used", &c).unwrap();
    for args in [&["rm", "used"][..], &["rm", "-f", "used"]] {
        let o = r.runway(args);
        let line = o.assert_one_error_line();
        assert_eq!(
            line,
            format!("runway: remove used: volume is in use - [{c}]"),
            "{o}"
        );
    }
    // prune -a leaves it too.
    assert_eq!(r.ok(&["prune", "-a", "-f"]), "Total reclaimed space: 0B\n");
    // The container is gone (its dir removed): the ref no longer counts.
    std::fs::remove_dir(names::containers_dir(&r.0).join(&c)).unwrap();
    assert_eq!(r.ok(&["rm", "used"]), "used\n");
}

#[test]
fn prune_removes_unused_anonymous_volumes_and_with_all_named_ones() {
    let r = Root::new();
    r.ok(&["create", "named"]);
    let a1 = r.ok(&["create"]).trim().to_string();
    let a2 = r.ok(&["create"]).trim().to_string();
    std::fs::write(
        r.0.join("volumes").join(&a1).join("_data/f"),
        vec![0u8; 1500],
    )
    .unwrap();
    let c = r.container();
    volumes::add_ref(&r.0, &a2, &c).unwrap();

    // Without -f it asks; no answer means no.
    let o = r.runway(&["prune"]);
    o.assert_ok();
    assert!(o
        .stdout
        .contains("Are you sure you want to continue? [y/N]"));
    assert_eq!(r.ok(&["ls", "-q"]).lines().count(), 3);

    assert_eq!(
        r.ok(&["prune", "-f"]),
        format!("Deleted Volumes:\n{a1}\n\nTotal reclaimed space: 1.5kB\n")
    );
    assert_eq!(
        r.ok(&["prune", "--all", "--force"]),
        "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n"
    );
    assert_eq!(r.ok(&["ls", "-q"]), format!("{a2}\n"));
}

#[test]
fn bad_names_and_flags_are_one_clear_line() {
    let r = Root::new();
    for args in [
        &["create", "bad name"][..],
        &["create", "-x"],
        &["create", "a"],
        &["create", "../up"],
        &["create", "--driver", "nfs", "v1"],
        &["create", "v1", "v2"],
        &["ls", "--format", "yaml"],
        &["inspect"],
        &["rm"],
        &["frobnicate"],
    ] {
        let o = r.runway(args);
        let line = o.assert_one_error_line();
        if args[0] == "create" && args.len() == 2 && !args[1].starts_with('-') {
            assert!(
                line.contains("includes invalid characters for a local volume name"),
                "{o}"
            );
        }
    }
    assert_eq!(r.ok(&["ls", "-q"]), "");
    assert!(!r.0.join("up").exists());
}

#[test]
fn concurrent_creates_of_one_name_make_one_volume() {
    let r = Root::new();
    let children: Vec<_> = (0..20)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_runway"))
                .arg("--data-root")
                .arg(&r.0)
                .args(["volume", "create", "same"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.stdout, b"same\n");
    }
    assert_eq!(r.ok(&["ls", "-q"]), "same\n");
    let entries: Vec<String> = std::fs::read_dir(r.0.join("volumes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut entries = entries;
    entries.sort();
    assert_eq!(entries, [".lock", "same"]);
}
