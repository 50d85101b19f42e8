//! Mounts: what a container leaves in its caller's mount namespace (for
//! every rootfsPropagation, without a mount namespace, with a joined one,
//! with --no-pivot) and runc's mount behaviours.
//!
//! "The caller" is a fresh mount namespace made with `unshare -m` for the
//! test (shared, as / is on a systemd host), so nothing here depends on or
//! changes the propagation of the machine's own mounts.

mod common;

use common::extra::poll;
use common::*;
use serde_json::json;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// mountinfo lines of the caller's namespace, before and after.
struct CallerRun {
    out: String,
    before: String,
    mid: String,
    after: String,
}

/// In a new mount namespace with `propagation` ("shared", "private"):
/// record mountinfo, run `script` (sh, with $RT, $ROOT, $B, $ID set),
/// delete the container, record mountinfo again.
fn in_caller_ns(env: &TestEnv, b: &Bundle, id: &str, propagation: &str, script: &str) -> CallerRun {
    let d = env.dir.join(format!("{id}.mi"));
    fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    let full = format!(
        "cat /proc/self/mountinfo >\"$D/before\"\n{script}\n\
         cat /proc/self/mountinfo >\"$D/mid\"\n\
         \"$RT\" --root \"$ROOT\" delete -f \"$ID\" >/dev/null 2>&1\n\
         cat /proc/self/mountinfo >\"$D/after\"\n"
    );
    let out = Command::new("timeout")
        .args([
            "60",
            "unshare",
            "-m",
            "--propagation",
            propagation,
            "sh",
            "-c",
        ])
        .arg(&full)
        .env("RT", runtime())
        .env("ROOT", &env.root)
        .env("B", &b.dir)
        .env("ID", id)
        .env("D", &d)
        .env("RUNWAY_TEST_MARK", &b.mark)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("unshare: {e}"));
    let read = |n: &str| fs::read_to_string(d.join(n)).unwrap_or_default();
    CallerRun {
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        before: relevant(env, &read("before")),
        mid: relevant(env, &read("mid")),
        after: relevant(env, &read("after")),
    }
}

/// Lines of mountinfo minus mounts other tests make while we run that
/// propagate into a shared namespace: their envs' mounts, and network
/// namespaces pinned under /run/netns (shared on hosts with `ip netns`).
fn relevant(env: &TestEnv, mountinfo: &str) -> String {
    let envs = env.dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let envs = envs.to_string_lossy().into_owned();
    let ours = env.dir.to_string_lossy().into_owned();
    mountinfo
        .lines()
        .filter(|l| {
            let point = l.split(' ').nth(4).unwrap_or("");
            (!point.starts_with(&envs) || point.starts_with(&ours))
                && !point.starts_with("/run/netns/")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

fn assert_same_mounts(what: &str, r: &CallerRun) {
    if r.before != r.after {
        let b: Vec<&str> = r.before.lines().collect();
        let added: Vec<&str> = r.after.lines().filter(|l| !b.contains(l)).collect();
        let a: Vec<&str> = r.after.lines().collect();
        let gone: Vec<&str> = r.before.lines().filter(|l| !a.contains(l)).collect();
        panic!(
            "{what}: the caller's mount namespace changed\n  added: {added:#?}\n  gone: {gone:#?}\n  output: {}",
            r.out
        );
    }
}

#[test]
fn rootfs_propagation_leaves_caller_mounts_alone() {
    let Some(env) = TestEnv::new("rootfs_propagation_leaves_caller_mounts_alone") else {
        return;
    };
    for p in [
        "shared",
        "rshared",
        "slave",
        "rslave",
        "private",
        "rprivate",
        "unbindable",
        "runbindable",
    ] {
        let mut b = env.bundle();
        b.set("/linux/rootfsPropagation", json!(p))
            .sh("echo ran; awk '$5 == \"/\" { print \"root: \" $0 }' /proc/self/mountinfo")
            .write();
        let id = env.id(p);
        let r = in_caller_ns(
            &env,
            &b,
            &id,
            "shared",
            "\"$RT\" --root \"$ROOT\" run --bundle \"$B\" \"$ID\"; echo \"rc=$?\"",
        );
        assert!(
            r.out.contains("ran\n") && r.out.contains("rc=0"),
            "rootfsPropagation {p}: the container did not run:\n{}",
            r.out
        );
        // The requested type is the container root's own (a slave of a
        // private mount stays private, as under runc).
        let want = match p.trim_start_matches('r') {
            "shared" => "shared:",
            "unbindable" => "unbindable",
            _ => "",
        };
        let root_line = r
            .out
            .lines()
            .find(|l| l.starts_with("root: "))
            .unwrap_or("");
        assert!(
            root_line.contains(want),
            "rootfsPropagation {p}: container root is {root_line:?}"
        );
        assert_same_mounts(&format!("rootfsPropagation {p}"), &r);
        env.assert_nothing_left(&id, &b);
    }
    // The MS_MOVE + chroot path (--no-pivot, initramfs roots) too.
    for p in ["rshared", "runbindable"] {
        let mut b = env.bundle();
        b.set("/linux/rootfsPropagation", json!(p))
            .sh("echo ran")
            .write();
        let id = env.id(&format!("{p}-nopivot"));
        let r = in_caller_ns(
            &env,
            &b,
            &id,
            "shared",
            "\"$RT\" --root \"$ROOT\" run --no-pivot --bundle \"$B\" \"$ID\"; echo \"rc=$?\"",
        );
        assert!(
            r.out.contains("ran\n") && r.out.contains("rc=0"),
            "rootfsPropagation {p}, --no-pivot: the container did not run:\n{}",
            r.out
        );
        assert_same_mounts(&format!("rootfsPropagation {p}, --no-pivot"), &r);
        env.assert_nothing_left(&id, &b);
    }
}

#[test]
fn no_mount_namespace_runs_and_delete_leaves_nothing() {
    let Some(env) = TestEnv::new("no_mount_namespace_runs_and_delete_leaves_nothing") else {
        return;
    };
    let mut b = env.bundle();
    b.remove_namespace("mount")
        .sh("test -x /bin/busybox && echo in-rootfs")
        .write();
    let id = env.id("nomnt");
    // create + start, not run: the mounts must still be there while the
    // container exists, and only delete takes them away.
    // A shared caller (a systemd host's /): the rootfs bind must not make
    // the container's mounts propagate where delete cannot take them back.
    let r = in_caller_ns(
        &env,
        &b,
        &id,
        "shared",
        "\"$RT\" --root \"$ROOT\" create --bundle \"$B\" \"$ID\" >\"$D/out\" 2>&1; echo \"create=$?\"\n\
         \"$RT\" --root \"$ROOT\" start \"$ID\"; echo \"start=$?\"\n\
         sleep 0.3; cat \"$D/out\"",
    );
    assert!(
        r.out.contains("create=0") && r.out.contains("start=0") && r.out.contains("in-rootfs"),
        "a config without mount namespace must run (runc and crun run it):\n{}",
        r.out
    );
    assert_ne!(
        r.before, r.mid,
        "without mount namespace the container's mounts are the caller's"
    );
    assert_same_mounts("no mount namespace, after delete", &r);
    env.assert_nothing_left(&id, &b);

    // A create that fails half-way takes its mounts back by itself.
    let mut bad = env.bundle();
    bad.remove_namespace("mount")
        .add_mount(json!({"destination": "/bad", "type": "no-such-fs", "source": "x"}))
        .write();
    let id = env.id("nomnt-bad");
    let r = in_caller_ns(
        &env,
        &bad,
        &id,
        "shared",
        "\"$RT\" --root \"$ROOT\" create --bundle \"$B\" \"$ID\"; echo \"create=$?\"",
    );
    assert!(!r.out.contains("create=0"), "{}", r.out);
    assert_eq!(
        r.before, r.mid,
        "a failed create without mount namespace left mounts:\n{}",
        r.out
    );
    env.assert_nothing_left(&id, &bad);
}

/// A process holding a fresh mount namespace; killed on drop.
struct NsHolder(Child);

impl Drop for NsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn joined_mount_namespace_gets_the_rootfs() {
    let Some(env) = TestEnv::new("joined_mount_namespace_gets_the_rootfs") else {
        return;
    };
    let holder = NsHolder(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sleep", "60"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("unshare: {e}")),
    );
    let pid = holder.0.id();
    let ns = format!("/proc/{pid}/ns/mnt");
    let mine = fs::read_link("/proc/self/ns/mnt").ok();
    assert!(
        poll(std::time::Duration::from_secs(5), || fs::read_link(&ns)
            .ok()
            != mine),
        "unshare made no mount namespace"
    );
    let mut b = env.bundle();
    fs::write(b.rootfs().join("in-rootfs"), "yes\n").unwrap_or_else(|e| panic!("{e}"));
    b.remove_namespace("mount")
        .add_namespace("mount", Some(&ns))
        .sh("cat /in-rootfs; test -d /proc/self && echo proc")
        .write();
    let id = env.id("joined");
    let out = env.run(&b, &id);
    assert!(
        out.ok() && out.stdout == "yes\nproc\n",
        "with a joined mount namespace the process must run in the prepared rootfs:\n{out}"
    );
    drop(holder);
    env.assert_nothing_left(&id, &b);
}

#[test]
fn no_pivot_keeps_host_proc_out_of_reach() {
    let Some(env) = TestEnv::new("no_pivot_keeps_host_proc_out_of_reach") else {
        return;
    };
    // CAP_SETFCAP lets the container map its root in a user namespace of
    // its own; there a procfs mount is allowed only if a full, unmasked
    // one is already in the mount namespace: the host's, under the moved
    // root, unless the runtime took it away.
    let bundle = |env: &TestEnv| {
        let mut b = env.bundle();
        fs::create_dir_all(b.rootfs().join("x")).unwrap_or_else(|e| panic!("{e}"));
        let caps = json!([
            "CAP_AUDIT_WRITE",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_SETFCAP"
        ]);
        b.readonly(false)
            .set("/process/capabilities/bounding", caps.clone())
            .set("/process/capabilities/effective", caps.clone())
            .set("/process/capabilities/permitted", caps)
            .sh("unshare -mrpf mount -t proc proc /x 2>/dev/null; echo mount=$?")
            .write();
        b
    };
    let b = bundle(&env);
    let id = env.id("nopivot");
    let out = env.rt_for(&b, &["run", "--no-pivot", "--bundle", &b.path_str(), &id]);
    assert!(
        out.ok() && out.stdout.starts_with("mount=") && out.stdout != "mount=0\n",
        "under --no-pivot a fresh procfs must not be mountable:\n{out}"
    );
    env.assert_nothing_left(&id, &b);
    match runc() {
        Some(runc) => {
            let rb = bundle(&env);
            let rid = env.id("nopivot-runc");
            let r = env.other(
                &runc,
                "runc",
                &rb.mark,
                &["run", "--no-pivot", "--bundle", &rb.path_str(), &rid],
            );
            assert_eq!(r.stdout, out.stdout, "runc:\n{r}\nrunway:\n{out}");
        }
        None => note("skipped: no_pivot_keeps_host_proc_out_of_reach: runc comparison: no runc"),
    }
}

/// Run `b` under runway, and under runc if there is one; returns runway's
/// output and runc's, if any.
fn with_runc(env: &TestEnv, b: &Bundle, what: &str) -> (Out, Option<Out>) {
    let id = env.id(what);
    let out = env.run(b, &id);
    env.assert_nothing_left(&id, b);
    let theirs = runc().map(|runc| {
        let rid = env.id(&format!("{what}-runc"));
        env.other(
            &runc,
            "runc",
            &b.mark,
            &["run", "--bundle", &b.path_str(), &rid],
        )
    });
    if theirs.is_none() {
        note(&format!("skipped: {what}: runc comparison: no runc"));
    }
    (out, theirs)
}

#[test]
fn tmpfs_without_mode_takes_the_covered_directory_mode() {
    let Some(env) = TestEnv::new("tmpfs_without_mode_takes_the_covered_directory_mode") else {
        return;
    };
    let mut b = env.bundle();
    let d700 = b.rootfs().join("d700");
    fs::create_dir(&d700).unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(&d700, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .unwrap_or_else(|e| panic!("{e}"));
    for (dest, opts) in [
        ("/tmp", json!(["nosuid"])),
        ("/d700", json!(["nosuid"])),
        ("/d700m", json!(["mode=750"])),
        ("/fresh", json!([])),
    ] {
        b.add_mount(
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                           "options": opts}),
        );
    }
    b.sh("stat -c '%n %a' /tmp /d700 /d700m /fresh").write();
    let (out, runc) = with_runc(&env, &b, "tmpfsmode");
    assert!(out.ok(), "{out}");
    assert!(
        out.stdout.contains("/tmp 1777\n") && out.stdout.contains("/d700 700\n"),
        "a tmpfs without mode= must take the covered directory's mode:\n{out}"
    );
    // An explicit mode= is kept (runc 1.1 overrides it with the mount
    // point's mode; later runc keeps it).
    assert!(
        out.stdout.contains("/d700m 750\n"),
        "mode= must be kept:\n{out}"
    );
    if let Some(r) = runc {
        let without_mode = |s: &str| {
            s.lines()
                .filter(|l| !l.starts_with("/d700m "))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            without_mode(&out.stdout),
            without_mode(&r.stdout),
            "runc:\n{r}\nrunway:\n{out}"
        );
    }
}

#[test]
fn readonly_dev_mount_gets_its_nodes_and_ends_read_only() {
    let Some(env) = TestEnv::new("readonly_dev_mount_gets_its_nodes_and_ends_read_only") else {
        return;
    };
    let mut b = env.bundle();
    b.edit(|c| {
        if let Some(ms) = c["mounts"].as_array_mut() {
            for m in ms.iter_mut().filter(|m| m["destination"] == "/dev") {
                if let Some(o) = m["options"].as_array_mut() {
                    o.push(json!("ro"));
                }
            }
        }
    })
    .sh(
        "test -c /dev/null && test -d /dev/pts && test -d /dev/shm && test -d /dev/mqueue \
         && echo nodes; touch /dev/x 2>/dev/null || echo dev-read-only; \
         echo > /dev/null && echo null-writable",
    )
    .write();
    let (out, runc) = with_runc(&env, &b, "devro");
    assert!(
        out.ok() && out.stdout == "nodes\ndev-read-only\nnull-writable\n",
        "a read-only /dev must get its nodes and mounts, then be read-only:\n{out}"
    );
    if let Some(r) = runc {
        assert_eq!(out.stdout, r.stdout, "runc:\n{r}\nrunway:\n{out}");
    }
}

#[test]
fn missing_cwd_is_created_on_a_readonly_root() {
    let Some(env) = TestEnv::new("missing_cwd_is_created_on_a_readonly_root") else {
        return;
    };
    let mut b = env.bundle();
    b.readonly(true)
        .set("/process/cwd", json!("/work/dir"))
        .sh("pwd; touch x 2>/dev/null || echo read-only")
        .write();
    let (out, runc) = with_runc(&env, &b, "rocwd");
    assert!(
        out.ok() && out.stdout == "/work/dir\nread-only\n",
        "process.cwd must be created even on a read-only root:\n{out}"
    );
    if let Some(r) = runc {
        assert_eq!(out.stdout, r.stdout, "runc:\n{r}\nrunway:\n{out}");
    }
}

#[test]
fn recursive_atime_options_apply() {
    let Some(env) = TestEnv::new("recursive_atime_options_apply") else {
        return;
    };
    let mut b = env.bundle();
    for (dest, opt) in [
        ("/m-noatime", "rnoatime"),
        ("/m-strict", "rstrictatime"),
        ("/m-relatime", "rrelatime"),
    ] {
        b.add_mount(
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                           "options": ["noatime", opt]}),
        );
    }
    b.sh("awk '$5 ~ /^\\/m-/ { print $5, $6 }' /proc/self/mountinfo")
        .write();
    let id = env.id("ratime");
    let out = env.run(&b, &id);
    env.assert_nothing_left(&id, &b);
    assert!(out.ok(), "recursive atime options must apply:\n{out}");
    let opts = |p: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{p} ")))
            .unwrap_or("")
            .to_string()
    };
    let (na, st, rel) = (opts("/m-noatime"), opts("/m-strict"), opts("/m-relatime"));
    assert!(na.contains("noatime"), "rnoatime: {na}\n{out}");
    assert!(
        !st.contains("noatime") && !st.contains("relatime"),
        "rstrictatime: {st}\n{out}"
    );
    assert!(
        rel.contains("relatime") && !rel.contains("noatime"),
        "rrelatime: {rel}\n{out}"
    );
}

#[test]
fn user_namespace_binds_sources_its_root_cannot_reach() {
    let Some(env) = TestEnv::new("user_namespace_binds_sources_its_root_cannot_reach") else {
        return;
    };
    // Host root's 0700 directory: the mapped root (uid 100000) cannot
    // even look up what is inside.
    let locked = env.dir.join("locked");
    fs::create_dir_all(locked.join("data")).unwrap_or_else(|e| panic!("{e}"));
    fs::write(locked.join("data/f"), "hello\n").unwrap_or_else(|e| panic!("{e}"));
    fs::write(locked.join("file"), "file\n").unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut b = env.bundle();
    // The mount points exist: the mapped root cannot create them in a
    // rootfs owned by the host's root.
    fs::create_dir(b.rootfs().join("data")).unwrap_or_else(|e| panic!("{e}"));
    fs::write(b.rootfs().join("file"), "").unwrap_or_else(|e| panic!("{e}"));
    b.add_namespace("user", None)
        .set(
            "/linux/uidMappings",
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        )
        .set(
            "/linux/gidMappings",
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        )
        .edit(|c| {
            if let Some(ms) = c["mounts"].as_array_mut() {
                ms.retain(|m| m["destination"] != "/sys/fs/cgroup");
            }
        })
        .add_mount(json!({"destination": "/data", "type": "bind",
                          "source": locked.join("data"), "options": ["rbind", "ro"]}))
        .add_mount(json!({"destination": "/file", "type": "bind",
                          "source": locked.join("file"), "options": ["bind"]}))
        .sh("cat /data/f /file; touch /data/x 2>/dev/null || echo ro")
        .write();
    let (out, runc) = with_runc(&env, &b, "usernsbind");
    assert!(
        out.ok() && out.stdout == "hello\nfile\nro\n",
        "bind sources are opened before the user namespace is entered:\n{out}"
    );
    if let Some(r) = runc {
        assert_eq!(out.stdout, r.stdout, "runc:\n{r}\nrunway:\n{out}");
    }
}
