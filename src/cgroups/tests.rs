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
    let cg = plan_with(Layout::V2, &mounts, &own, &inner, Some(&res), &avail).unwrap();
    assert_eq!(cg.hierarchies[0].dir, "/sys/fs/cgroup/user.slice/x/c1");
    assert!(cg.hierarchies[0].unified);
    let mut res2 = limits();
    res2.hugepage_limits.push(HugepageLimit {
        page_size: "2MB".into(),
        limit: 1 << 21,
    });
    let e = plan_with(Layout::V2, &mounts, &own, &inner, Some(&res2), &avail).unwrap_err();
    assert!(e.to_string().contains("hugetlb"), "{e}");
    // A serialized plan round-trips (it lives in state.json).
    let j = serde_json::to_string(&cg).unwrap();
    assert_eq!(serde_json::from_str::<Cgroup>(&j).unwrap(), cg);
    // A state from before hierarchies still parses (its plan is empty).
    let old: Cgroup = serde_json::from_str(r#"{"dirs":["/x"]}"#).unwrap();
    assert!(old.hierarchies.is_empty());
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
    let cg = plan_with(Layout::Hybrid, &mounts, &own, &inner, None, &avail).unwrap();
    assert_eq!(cg.hierarchies.len(), 3);
    // Joined, but no controller switched on that the config does not use.
    assert!(cg.hierarchies[2].controllers.is_empty());
    let res = Resources {
        hugepage_limits: vec![HugepageLimit {
            page_size: "2MB".into(),
            limit: 1 << 21,
        }],
        ..Default::default()
    };
    let cg = plan_with(Layout::Hybrid, &mounts, &own, &inner, Some(&res), &avail).unwrap();
    assert_eq!(cg.hierarchies[2].controllers, vec!["hugetlb"]);
    assert_eq!(cg.hierarchies[2].dir, "/c/unified/runway/x");
}

#[test]
fn view_lists_what_the_container_sees_under_sys_fs_cgroup() {
    // Nested runtime (cpu,cpuacct mounted from a sub-path), a read-only
    // hierarchy the plan skips, one mounted elsewhere, cgroup2 beside them.
    let mounts = path::parse_mountinfo(
        "1 2 0:1 /outer /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
         1 2 0:2 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n\
         1 2 0:3 / /sys/fs/cgroup/pids ro - cgroup cgroup rw,pids\n\
         1 2 0:4 / /elsewhere/memory rw - cgroup cgroup rw,memory\n\
         1 2 0:5 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
    );
    let own = path::parse_proc_cgroup(
        "1:cpu,cpuacct:/outer/me\n2:name=systemd:/s\n3:pids:/p\n4:memory:/\n0::/u\n",
    );
    let inner = path::Inner::Absolute("/runway/x".into());
    let cg = plan_with(Layout::Hybrid, &mounts, &own, &inner, None, &|_| Vec::new()).unwrap();
    let View::Hierarchies(v) = view_of(&cg, &mounts, &own) else {
        panic!("not a v1 view")
    };
    let got: Vec<(&str, bool, &str, &str)> = v
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                h.unified,
                h.data.to_str().unwrap(),
                h.host.to_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "cpu,cpuacct",
                false,
                "cpu,cpuacct",
                "/sys/fs/cgroup/cpu,cpuacct/runway/x"
            ),
            (
                "systemd",
                false,
                "name=systemd",
                "/sys/fs/cgroup/systemd/runway/x"
            ),
            // Not joined (read-only): the runtime's own cgroup shows.
            ("pids", false, "pids", "/sys/fs/cgroup/pids/p"),
            ("unified", true, "", "/sys/fs/cgroup/unified/runway/x"),
        ]
    );
    let cg2 = plan_with(Layout::V2, &mounts, &own, &inner, None, &|_| Vec::new()).unwrap();
    assert_eq!(view_of(&cg2, &mounts, &own), View::Unified);
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
        .hierarchies
        .iter()
        .all(|h| h.dir.ends_with(&format!("/runway/{id}"))));
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

    assert_eq!(cg.oom_kills(), 0);
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
    for d in cg.hierarchies.iter().map(|h| &h.dir) {
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
    for d in cg.hierarchies.iter().map(|h| &h.dir) {
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
    for d in cg.hierarchies.iter().map(|h| &h.dir) {
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
    let Ok(cg) = plan(Some(&format!("/{}", name("huge"))), "x", false, Some(&res)) else {
        return; // no hugetlb controller on this host
    };
    // Put the host back as it was: create() may switch hugetlb on in the
    // root of the unified hierarchy.
    let root_ctl = cg.unified().map(|u| {
        (
            u.mount.clone(),
            files::read(&u.mount, "cgroup.subtree_control").unwrap_or_default(),
        )
    });
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
    if let Some((mount, before)) = root_ctl {
        if !before.split_whitespace().any(|c| c == "hugetlb") {
            let _ = files::write(&mount, "cgroup.subtree_control", "-hugetlb");
        }
    }
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

/// A directory of empty regular files standing in for a cgroup, so the
/// file contents a v2 (or v1) apply produces can be checked on any host.
fn fake_cgroup(t: &str, names: &[&str]) -> String {
    let d = format!("/tmp/rwt-fake-{}-{t}", std::process::id());
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    for n in names {
        std::fs::write(format!("{d}/{n}"), "").unwrap();
    }
    d
}

fn full_resources() -> Resources {
    use crate::spec::{BlockIo, ThrottleDevice};
    let mut unified = std::collections::BTreeMap::new();
    unified.insert("memory.high".to_string(), "1000000".to_string());
    Resources {
        memory: Some(Memory {
            limit: Some(100 << 20),
            swap: Some(300 << 20),
            reservation: Some(50 << 20),
            swappiness: Some(10),
            disable_oom_killer: Some(true),
            ..Default::default()
        }),
        cpu: Some(Cpu {
            shares: Some(1024),
            quota: Some(50_000),
            period: Some(100_000),
            burst: Some(1000),
            cpus: Some("0".into()),
            mems: Some("0".into()),
            ..Default::default()
        }),
        pids: Some(Pids { limit: 10 }),
        block_io: Some(BlockIo {
            weight: Some(500),
            throttle_read_bps_device: vec![ThrottleDevice {
                major: 8,
                minor: 0,
                rate: 1000,
            }],
            ..Default::default()
        }),
        hugepage_limits: vec![HugepageLimit {
            page_size: "2MB".into(),
            limit: 1 << 21,
        }],
        network: Some(Network {
            class_id: Some(0x10001),
            priorities: vec![crate::spec::InterfacePriority {
                name: "eth0".into(),
                priority: 5,
            }],
        }),
        unified,
        ..Default::default()
    }
}

#[test]
fn v2_apply_file_contents() {
    let names = [
        "memory.max",
        "memory.swap.max",
        "memory.low",
        "memory.high",
        "cpu.weight",
        "cpu.max",
        "cpu.max.burst",
        "cpuset.cpus",
        "cpuset.mems",
        "pids.max",
        "io.weight",
        "io.max",
        "hugetlb.2MB.max",
    ];
    let d = fake_cgroup("v2", &names);
    let h = Hierarchy {
        dir: d.clone(),
        mount: "/tmp".into(),
        controllers: ["memory", "cpu", "cpuset", "pids", "io", "hugetlb"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        unified: true,
    };
    let res = full_resources();
    v2::apply(&h, &res, false).unwrap();
    let got = |n: &str| std::fs::read_to_string(format!("{d}/{n}")).unwrap();
    assert_eq!(got("memory.max"), (100u64 << 20).to_string());
    assert_eq!(got("memory.swap.max"), (200u64 << 20).to_string());
    assert_eq!(got("memory.low"), (50u64 << 20).to_string());
    assert_eq!(got("memory.high"), "1000000");
    assert_eq!(got("cpu.weight"), "39");
    assert_eq!(got("cpu.max"), "50000 100000");
    assert_eq!(got("cpu.max.burst"), "1000");
    assert_eq!(got("cpuset.cpus"), "0");
    assert_eq!(got("pids.max"), "10");
    assert_eq!(got("io.weight"), "default 4950");
    assert_eq!(got("io.max"), "8:0 rbps=1000");
    assert_eq!(got("hugetlb.2MB.max"), "2097152");

    // Bad or unknown unified keys are refused before anything is written.
    let mut bad = Resources::default();
    bad.unified.insert("../memory.max".into(), "1".into());
    assert!(v2::apply(&h, &bad, false).is_err());
    let mut bad = Resources::default();
    bad.unified.insert("memory.nonesuch".into(), "1".into());
    let e = v2::apply(&h, &bad, false).unwrap_err();
    assert!(e.to_string().contains("memory.nonesuch"), "{e}");
    // A controller we do not manage is left alone, even if asked.
    let h2 = Hierarchy {
        controllers: vec![],
        ..h.clone()
    };
    std::fs::write(format!("{d}/pids.max"), "").unwrap();
    v2::apply(
        &h2,
        &Resources {
            pids: Some(Pids { limit: 3 }),
            ..Default::default()
        },
        false,
    )
    .unwrap();
    assert_eq!(got("pids.max"), "");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn v1_apply_file_contents() {
    let names = [
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.soft_limit_in_bytes",
        "memory.swappiness",
        "memory.oom_control",
        "cpu.shares",
        "cpu.cfs_period_us",
        "cpu.cfs_quota_us",
        "cpu.cfs_burst_us",
        "cpuset.cpus",
        "cpuset.mems",
        "pids.max",
        "blkio.weight",
        "blkio.throttle.read_bps_device",
        "hugetlb.2MB.limit_in_bytes",
        "net_cls.classid",
        "net_prio.ifpriomap",
    ];
    let d = fake_cgroup("v1", &names);
    let h = Hierarchy {
        dir: d.clone(),
        mount: "/tmp".into(),
        controllers: [
            "memory", "cpu", "cpuset", "pids", "blkio", "hugetlb", "net_cls", "net_prio",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        unified: false,
    };
    let mut res = full_resources();
    res.unified.clear();
    v1::apply(&h, &res, false).unwrap();
    let got = |n: &str| std::fs::read_to_string(format!("{d}/{n}")).unwrap();
    assert_eq!(got("memory.limit_in_bytes"), (100u64 << 20).to_string());
    assert_eq!(
        got("memory.memsw.limit_in_bytes"),
        (300u64 << 20).to_string()
    );
    assert_eq!(got("memory.soft_limit_in_bytes"), (50u64 << 20).to_string());
    assert_eq!(got("memory.swappiness"), "10");
    assert_eq!(got("memory.oom_control"), "1");
    assert_eq!(got("cpu.shares"), "1024");
    assert_eq!(got("cpu.cfs_period_us"), "100000");
    assert_eq!(got("cpu.cfs_quota_us"), "50000");
    assert_eq!(got("cpu.cfs_burst_us"), "1000");
    assert_eq!(got("cpuset.cpus"), "0");
    assert_eq!(got("pids.max"), "10");
    assert_eq!(got("blkio.weight"), "500");
    assert_eq!(got("blkio.throttle.read_bps_device"), "8:0 1000");
    assert_eq!(got("hugetlb.2MB.limit_in_bytes"), "2097152");
    assert_eq!(got("net_cls.classid"), "65537");
    assert_eq!(got("net_prio.ifpriomap"), "eth0 5");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn hugepage_size_cannot_escape_the_cgroup() {
    let cg = Cgroup::default();
    let res = Resources {
        hugepage_limits: vec![HugepageLimit {
            page_size: "../../x".into(),
            limit: 1,
        }],
        ..Default::default()
    };
    assert!(cg.apply(&res).is_err());
}

#[test]
fn v2_freeze_and_kill_on_unified_dir() {
    if !root_with_cgroups() {
        return;
    }
    let cg = plan(None, &name("v2fz"), false, None).unwrap();
    let Some(h) = cg.unified().cloned() else {
        return;
    };
    cg.create().unwrap();
    let _guard = Guard(cg.clone());
    let mut child = sleeper();
    cg.add_pid(child.id() as i32).unwrap();
    v2::freeze(&h.dir).unwrap();
    assert!(files::read(&h.dir, "cgroup.events")
        .unwrap()
        .contains("frozen 1"));
    v2::thaw(&h.dir).unwrap();
    // A pure-v2 view of the same directories: cgroup.kill does the job.
    let as_v2 = Cgroup {
        layout: Layout::V2,
        hierarchies: vec![h.clone()],
    };
    if files::exists(&h.dir, "cgroup.kill") {
        as_v2.kill_all().unwrap();
        let st = child.wait().unwrap();
        assert!(!st.success());
    } else {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(as_v2.v2_dir_fd().is_some());
    assert!(cg.v2_dir_fd().is_none());
    cg.destroy(true).unwrap();
}

#[test]
fn rdma_limit_lines() {
    let v = serde_json::json!({"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "b": {"hcaObjects": 1}});
    assert_eq!(
        rdma_lines(Some(&v)).unwrap(),
        vec!["b hca_object=1", "mlx5_1 hca_handle=3 hca_object=10000"]
    );
    assert!(rdma_lines(Some(&serde_json::json!({"a b": {}}))).is_err());
    assert!(rdma_lines(Some(&serde_json::json!({"a": {"hcaHandles": -1}}))).is_err());
    assert!(rdma_lines(None).unwrap().is_empty());
}

#[test]
fn memory_limit_triggers_oom_kill() {
    if !root_with_cgroups() {
        return;
    }
    let has_memsw = path::read_mounts()
        .unwrap()
        .iter()
        .find(|m| m.controllers.iter().any(|c| c == "memory"))
        .is_some_and(|m| files::exists(&m.point, "memory.memsw.limit_in_bytes"));
    let res = Resources {
        memory: Some(Memory {
            limit: Some(16 << 20),
            swap: has_memsw.then_some(16 << 20),
            ..Default::default()
        }),
        ..Default::default()
    };
    let cg = plan(None, &name("oom"), false, Some(&res)).unwrap();
    cg.create().unwrap();
    let _guard = Guard(cg.clone());
    cg.apply(&res).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("sleep 0.2; exec dd if=/dev/zero of=/dev/null bs=64M count=1")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cg.add_pid(child.id() as i32).unwrap();
    let st = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert!(cg.oom_kills() >= 1);
    let stats = cg.stats().unwrap();
    assert_eq!(stats["memory"]["usage"]["max"], 16u64 << 20, "{stats}");
    cg.destroy(false).unwrap();
}

/// The whole pure-v2 flow (create, eBPF device policy, join, freeze, stats,
/// cgroup.kill, destroy) run against the cgroup2 hierarchy of a hybrid
/// host, which has the core files though no resource controllers.
#[test]
fn pure_v2_flow_on_the_unified_hierarchy() {
    if !root_with_cgroups() || !std::path::Path::new("/dev/kmsg").exists() {
        return;
    }
    let mounts: Vec<path::Mount> = path::read_mounts()
        .unwrap()
        .into_iter()
        .filter(|m| m.unified)
        .collect();
    if mounts.is_empty() {
        return;
    }
    let own = path::read_own().unwrap();
    let inner = path::inner_path(None, &name("purev2"), false).unwrap();
    let none = |_: &path::Mount| Vec::new();
    let cg = plan_with(Layout::V2, &mounts, &own, &inner, None, &none).unwrap();
    cg.create().unwrap();
    let _guard = Guard(cg.clone());
    let res = Resources {
        devices: vec![DeviceCgroup {
            allow: false,
            access: Some("rwm".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    cg.apply(&res).unwrap();
    cg.update(&Resources::default()).unwrap();
    let probe = Command::new("sh")
        .arg("-c")
        .arg("sleep 0.3; : </dev/null && echo null-ok; : </dev/kmsg && echo kmsg-ok")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cg.add_pid(probe.id() as i32).unwrap();
    let out = probe.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "null-ok");

    let mut child = sleeper();
    cg.add_pid(child.id() as i32).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![child.id() as i32]);
    cg.freeze().unwrap();
    assert!(cg.is_frozen());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen());
    let st = cg.stats().unwrap();
    assert!(st["cpu"]["usage"]["user"].is_u64(), "{st}");
    cg.freeze().unwrap();
    cg.destroy(true).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(!std::path::Path::new(&cg.hierarchies[0].dir).exists());
}

/// The fd from v2_dir_fd works for clone3(CLONE_INTO_CGROUP).
#[test]
fn v2_dir_fd_places_a_clone3_child() {
    if !root_with_cgroups() {
        return;
    }
    let mounts: Vec<path::Mount> = path::read_mounts()
        .unwrap()
        .into_iter()
        .filter(|m| m.unified)
        .collect();
    if mounts.is_empty() {
        return;
    }
    let own = path::read_own().unwrap();
    let inner = path::Inner::Absolute(format!("/{}", name("clone3")));
    let none = |_: &path::Mount| Vec::new();
    let cg = plan_with(Layout::V2, &mounts, &own, &inner, None, &none).unwrap();
    cg.create().unwrap();
    let _guard = Guard(cg.clone());
    let fd = cg.v2_dir_fd().unwrap();
    use std::os::fd::AsRawFd;
    // The runtime's own clone3 wrapper, asked for CLONE_INTO_CGROUP.
    let pid = crate::linux::clone::clone3(0, Some(fd.as_raw_fd())).unwrap();
    if pid == 0 {
        unsafe {
            libc::pause();
            libc::_exit(0);
        }
    }
    let inside = cg.pids().unwrap();
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    assert_eq!(inside, vec![pid]);
    cg.destroy(true).unwrap();
}
