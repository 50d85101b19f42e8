//! Tests against the real hierarchies of the build host (run as root).
//! Each test uses its own cgroup name and removes everything it made.

use super::*;
use crate::spec::{Cpu, DeviceCgroup, HugepageLimit, Memory, Network, Pids};
use std::process::{Child, Command, Stdio};

fn name(t: &str) -> String {
    format!("rwt-{}-{t}", std::process::id())
}

fn root_with_cgroups() -> bool {
    rustix::process::geteuid().is_root() && matches!(layout(), Layout::V1 | Layout::Hybrid)
}

/// Destroys the cgroup (killing what is inside) even when an assertion
/// fails, so a failed run leaves nothing behind.
struct Guard(Cgroup);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.destroy(true);
    }
}

fn sleeper() -> Child {
    Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

fn dir_of<'a>(cg: &'a Cgroup, ctrl: &str) -> Option<&'a str> {
    cg.v1(ctrl).map(|h| h.dir.as_str())
}

fn limits() -> Resources {
    Resources {
        memory: Some(Memory {
            limit: Some(64 << 20),
            reservation: Some(32 << 20),
            ..Default::default()
        }),
        cpu: Some(Cpu {
            shares: Some(512),
            quota: Some(50_000),
            period: Some(100_000),
            ..Default::default()
        }),
        pids: Some(Pids { limit: 20 }),
        devices: vec![DeviceCgroup {
            allow: false,
            access: Some("rwm".into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn layout_of_kinds() {
    let v1 = path::parse_mountinfo("1 2 0:1 / /c/cpu rw - cgroup cgroup rw,cpu\n");
    let v2 = path::parse_mountinfo("1 2 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
    let mut hy = v1.clone();
    hy.extend(path::parse_mountinfo(
        "1 2 0:1 / /c/unified rw - cgroup2 cgroup2 rw\n",
    ));
    assert_eq!(layout_of(&v1, false), Layout::V1);
    assert_eq!(layout_of(&v2, true), Layout::V2);
    assert_eq!(layout_of(&v2, false), Layout::V2);
    assert_eq!(layout_of(&hy, false), Layout::Hybrid);
    assert_eq!(layout_of(&[], false), Layout::None);
}

#[test]
fn plan_pure_v2_and_missing_controllers() {
    let mounts = path::parse_mountinfo("1 2 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
    let own = path::parse_proc_cgroup("0::/user.slice/x\n");
    let avail = |_: &path::Mount| vec!["cpu".to_string(), "memory".to_string(), "pids".to_string()];
    let inner = path::Inner::Relative("/c1".into());
    let res = limits();
    let cg = plan_with(Layout::V2, &mounts, &own, &inner, 0, Some(&res), &avail).unwrap();
    assert_eq!(cg.dirs, vec!["/sys/fs/cgroup/user.slice/x/c1"]);
    assert!(cg.hierarchies[0].unified);
    let mut res2 = limits();
    res2.hugepage_limits.push(HugepageLimit {
        page_size: "2MB".into(),
        limit: 1 << 21,
    });
    let e = plan_with(Layout::V2, &mounts, &own, &inner, 0, Some(&res2), &avail).unwrap_err();
    assert!(e.to_string().contains("hugetlb"), "{e}");
    // A serialized plan round-trips (it lives in state.json).
    let j = serde_json::to_string(&cg).unwrap();
    assert_eq!(serde_json::from_str::<Cgroup>(&j).unwrap(), cg);
    // An old state without the newer fields still loads.
    let old: Cgroup = serde_json::from_str(r#"{"dirs":["/x"]}"#).unwrap();
    assert_eq!(old.dirs, vec!["/x"]);
}

#[test]
fn plan_hybrid_gives_unified_the_leftovers() {
    let mounts = path::parse_mountinfo(
        "1 2 0:1 / /c/cpu rw - cgroup cgroup rw,cpu\n\
         1 2 0:2 / /c/blkio rw - cgroup cgroup rw,blkio\n\
         1 2 0:3 / /c/unified rw - cgroup2 cgroup2 rw\n",
    );
    let own = path::parse_proc_cgroup("1:cpu:/\n2:blkio:/\n0::/\n");
    let avail = |_: &path::Mount| vec!["io".to_string(), "hugetlb".to_string()];
    let inner = path::Inner::Absolute("/runway/x".into());
    let cg = plan_with(Layout::Hybrid, &mounts, &own, &inner, 1, None, &avail).unwrap();
    assert_eq!(cg.hierarchies.len(), 3);
    assert_eq!(cg.hierarchies[2].controllers, vec!["hugetlb"]);
    assert_eq!(cg.dirs[2], "/c/unified/runway/x");
}

#[test]
fn chain_dirs() {
    assert_eq!(
        chain("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu/a/b"),
        vec!["/sys/fs/cgroup/cpu/a", "/sys/fs/cgroup/cpu/a/b"]
    );
}

#[test]
fn missing_controller_is_a_clear_error() {
    if !root_with_cgroups() {
        return;
    }
    let res = Resources {
        network: Some(Network {
            class_id: Some(7),
            priorities: vec![],
        }),
        ..Default::default()
    };
    let mounts = path::read_mounts().unwrap();
    if mounts
        .iter()
        .any(|m| m.controllers.iter().any(|c| c == "net_cls"))
    {
        return;
    }
    let e = plan(None, &name("nc"), false, Some(&res)).unwrap_err();
    assert!(e.to_string().contains("net_cls"), "{e}");
}

#[test]
fn destroy_of_never_created_is_fine() {
    if !root_with_cgroups() {
        return;
    }
    let cg = plan(None, &name("never"), false, None).unwrap();
    cg.destroy(true).unwrap();
    cg.destroy(false).unwrap();
    assert!(cg.pids().unwrap().is_empty());
}

#[test]
fn lifecycle_on_this_host() {
    if !root_with_cgroups() {
        return;
    }
    let id = name("life");
    let res = limits();
    let cg = plan(None, &id, false, Some(&res)).unwrap();
    assert!(cg
        .dirs
        .iter()
        .all(|d| d.ends_with(&format!("/runway/{id}"))));
    cg.create().unwrap();
    let _guard = Guard(cg.clone());
    cg.apply(&res).unwrap();
    let mem = dir_of(&cg, "memory").unwrap();
    assert_eq!(
        files::read_trim(mem, "memory.limit_in_bytes").unwrap(),
        "67108864"
    );
    assert_eq!(
        files::read_trim(mem, "memory.soft_limit_in_bytes").unwrap(),
        "33554432"
    );
    let cpu = dir_of(&cg, "cpu").unwrap();
    assert_eq!(files::read_trim(cpu, "cpu.shares").unwrap(), "512");
    assert_eq!(files::read_trim(cpu, "cpu.cfs_quota_us").unwrap(), "50000");
    let pids = dir_of(&cg, "pids").unwrap();
    assert_eq!(files::read_trim(pids, "pids.max").unwrap(), "20");
    if let Some(dev) = dir_of(&cg, "devices") {
        let list = files::read(dev, "devices.list").unwrap();
        assert!(
            list.contains("c 1:3 rwm") && list.contains("c 136:* rwm"),
            "{list}"
        );
        assert!(!list.contains("a *:*"), "{list}");
    }
    // Re-applying (update) is fine and changes values.
    let upd = Resources {
        pids: Some(Pids { limit: -1 }),
        ..Default::default()
    };
    cg.apply(&upd).unwrap();
    assert_eq!(files::read_trim(pids, "pids.max").unwrap(), "max");

    let mut child = sleeper();
    let pid = child.id() as i32;
    cg.add_pid(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.contains(&format!("memory:/runway/{id}")), "{own}");

    cg.freeze().unwrap();
    assert!(cg.is_frozen());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen());

    let st = cg.stats().unwrap();
    assert_eq!(st["pids"]["current"], 1);
    assert_eq!(st["memory"]["usage"]["limit"], 64u64 << 20);
    assert!(st["cpu"]["usage"]["kernel"].is_u64(), "{st}");
    assert!(st["memory"]["raw"].is_object(), "{st}");

    // Frozen at the time of the kill: destroy must still get it out.
    cg.freeze().unwrap();
    cg.destroy(true).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    for d in &cg.dirs {
        assert!(!std::path::Path::new(d).exists(), "{d} left behind");
    }
    cg.destroy(true).unwrap();
}

#[test]
fn destroy_without_force_refuses_live_processes() {
    if !root_with_cgroups() {
        return;
    }
    let cg = plan(Some(&format!("/{}", name("busy"))), "x", false, None).unwrap();
    assert_eq!(cg.owned_parents, 0);
    cg.create().unwrap();
    let _guard = Guard(cg.clone());
    let mut child = sleeper();
    cg.add_pid(child.id() as i32).unwrap();
    // Shorten the test: kill it ourselves but leave it unreaped; a zombie
    // must not keep the cgroup busy.
    child.kill().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let r = cg.destroy(false);
    child.wait().unwrap();
    r.unwrap();
    for d in &cg.dirs {
        assert!(!std::path::Path::new(d).exists(), "{d} left behind");
    }
}

#[test]
fn relative_path_lands_under_own_cgroup() {
    if !root_with_cgroups() {
        return;
    }
    let rel = name("rel");
    let cg = plan(Some(&rel), "x", false, None).unwrap();
    let own = path::read_own().unwrap();
    let mounts = path::read_mounts().unwrap();
    for h in &cg.hierarchies {
        let m = mounts.iter().find(|m| m.point == h.mount).unwrap();
        let base = path::own_path(m, &own).unwrap();
        let want = path::clean(&format!("{}{}/{rel}", h.mount, base));
        assert_eq!(h.dir, want);
    }
    cg.create().unwrap();
    let _guard = Guard(cg.clone());
    let mut child = sleeper();
    cg.add_pid(child.id() as i32).unwrap();
    cg.destroy(true).unwrap();
    child.wait().unwrap();
    for d in &cg.dirs {
        assert!(!std::path::Path::new(d).exists(), "{d} left behind");
    }
}

#[test]
fn nested_cgroups_are_removed_and_counted() {
    if !root_with_cgroups() {
        return;
    }
    let cg = plan(None, &name("nest"), false, None).unwrap();
    cg.create().unwrap();
    let _guard = Guard(cg.clone());
    let pidsdir = dir_of(&cg, "pids").unwrap().to_string();
    let sub = format!("{pidsdir}/inner");
    std::fs::create_dir(&sub).unwrap();
    let mut child = sleeper();
    files::write(&sub, "cgroup.procs", &child.id().to_string()).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![child.id() as i32]);
    cg.destroy(true).unwrap();
    child.wait().unwrap();
    assert!(!std::path::Path::new(&pidsdir).exists());
}

#[test]
fn hugetlb_on_unified_in_hybrid() {
    if !root_with_cgroups() {
        return;
    }
    let res = Resources {
        hugepage_limits: vec![HugepageLimit {
            page_size: "2MB".into(),
            limit: 4 << 21,
        }],
        ..Default::default()
    };
    let Ok(cg) = plan(None, &name("huge"), false, Some(&res)) else {
        return; // no hugetlb controller on this host
    };
    cg.create().unwrap();
    let _guard = Guard(cg.clone());
    let r = cg.apply(&res);
    let h = cg
        .hierarchies
        .iter()
        .find(|h| h.controllers.iter().any(|c| c == "hugetlb"))
        .unwrap();
    let file = if h.unified {
        "hugetlb.2MB.max"
    } else {
        "hugetlb.2MB.limit_in_bytes"
    };
    let got = files::read_trim(&h.dir, file);
    cg.destroy(true).unwrap();
    r.unwrap();
    assert_eq!(got.unwrap(), (4u64 << 21).to_string());
}

#[test]
fn device_program_on_unified() {
    if !root_with_cgroups() || !std::path::Path::new("/dev/kmsg").exists() {
        return;
    }
    let cg = plan(None, &name("bpf"), false, None).unwrap();
    let Some(h) = cg.unified().cloned() else {
        return;
    };
    cg.create().unwrap();
    let _guard = Guard(cg.clone());
    // Deny everything but the defaults: /dev/null stays, /dev/kmsg goes.
    let rules = devices::effective_rules(&[DeviceCgroup {
        allow: false,
        access: Some("rwm".into()),
        ..Default::default()
    }])
    .unwrap();
    let attached = devices::apply_v2(&h.dir, &rules);
    // Twice: the second replaces the first.
    let again = devices::apply_v2(&h.dir, &rules);
    let child = Command::new("sh")
        .arg("-c")
        .arg("sleep 0.3; : </dev/null && echo null-ok; : </dev/kmsg && echo kmsg-ok")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    files::write(&h.dir, "cgroup.procs", &child.id().to_string()).unwrap();
    let out = child.wait_with_output().unwrap();
    cg.destroy(true).unwrap();
    attached.unwrap();
    again.unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.trim(), "null-ok");
}
