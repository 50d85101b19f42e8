//! runway on cgroup v2, in a qemu VM (the dev host is v1-hybrid).
//!
//! The VM boots once for the whole file (first test to ask boots it, the
//! others wait) and runs every check; each #[test] asserts one group of
//! result lines. Without qemu/cpio/busybox-static/a kernel, every test
//! prints "skipped: <test>: <why>" and passes, unless RUNWAY_VM_REQUIRE=1.
//!
//! Knobs: RUNWAY_VM_TIMEOUT (s, default 120), RUNWAY_VM_BIN, RUNWAY_VM_KERNEL,
//! RUNWAY_VM_QEMU, RUNWAY_VM_BUSYBOX, RUNWAY_VM_CACHE (default
//! target/vm-cache), RUNWAY_VM_KEEP (keep the initramfs work dir),
//! RUNWAY_VM_RUNTIME=/usr/sbin/runc (run the checks against a reference
//! runtime instead, to tell a runway bug from a wrong check: runc 1.1.5
//! passes all but `version`, `lifecycle-default-cgroup-path` (it names
//! cgroups /<id>) and `clone-into-cgroup-strict` (it has no
//! CLONE_INTO_CGROUP; crun 1.8.1 passes that one), RUNWAY_VM_PENDING=group,group|* (report those
//! groups' failures without failing), RUNWAY_VM_ONLY=check,check (boot
//! with those checks alone). The console of the last boot is kept
//! as vm-console.log in CARGO_TARGET_TMPDIR.

mod vm_common;

use serde_json::json;
use std::path::PathBuf;
use std::sync::OnceLock;
use vm_common::{config, guest_dir, note, with_check_dir, with_mount, Check, Outcome, Vm};

macro_rules! script {
    ($name:literal) => {
        include_str!(concat!("vm/checks/", $name, ".sh"))
    };
}

/// The checks, in the order the guest runs them.
fn checks() -> Vec<Check> {
    let mut cs = vec![
        Check::new("initramfs", script!("initramfs"))
            .on_rootfs()
            .bundle("b", config(&["echo", "hello from the initramfs"]))
            .bundle("lim", {
                let mut c = with_mount(
                    config(&[
                        "sh",
                        "-c",
                        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; \
                         echo hello from the initramfs",
                    ]),
                    json!({"destination": "/sys/fs/cgroup", "type": "cgroup",
                           "source": "cgroup",
                           "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
                );
                if let Some(ns) = c["linux"]["namespaces"].as_array_mut() {
                    ns.push(json!({"type": "cgroup"}));
                }
                c["linux"]["cgroupsPath"] = json!("/vmtest/initramfs");
                c["linux"]["resources"] =
                    json!({"memory": {"limit": 67108864}, "pids": {"limit": 20}});
                c
            }),
        Check::new("version", script!("version")),
        Check::new("run", script!("run")).bundle(
            "b",
            config(&[
                "sh",
                "-c",
                "echo hello from a container; sed -n 's/^0:://p' /proc/self/cgroup; exit 3",
            ]),
        ),
        Check::new("lifecycle", script!("lifecycle")).bundle("b", config(&["sleep", "1000"])),
        Check::new("resources", script!("resources")).bundle("b", {
            let mut c = config(&["sleep", "1000"]);
            c["linux"]["cgroupsPath"] = json!("/vmtest/resources");
            c["linux"]["resources"] = json!({
                "memory": {"limit": 67108864, "reservation": 33554432, "swap": 100663296},
                "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "1", "mems": "0"},
                "pids": {"limit": 100},
                "unified": {"memory.high": "50331648"}
            });
            c
        }),
        Check::new("cgroupns", script!("cgroupns")).bundle("b", {
            let mut c = with_mount(
                config(&[
                    "sh",
                    "-c",
                    "sed -n 's/^0:://p' /proc/self/cgroup; \
                     grep ' /sys/fs/cgroup ' /proc/self/mounts | cut -d' ' -f3; \
                     cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max",
                ]),
                json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
            );
            if let Some(ns) = c["linux"]["namespaces"].as_array_mut() {
                ns.push(json!({"type": "cgroup"}));
            }
            c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}});
            c
        }),
        Check::new("pids", script!("pids")).bundle("b", {
            let mut c = config(&[
                "sh",
                "-c",
                "i=0; while [ $i -lt 10 ]; do sleep 30 & i=$((i+1)); echo started $i; done; echo all started",
            ]);
            c["linux"]["resources"] = json!({"pids": {"limit": 5}});
            c
        }),
        Check::new("commands", script!("commands")).bundle("b", {
            let mut c = config(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
            c["linux"]["cgroupsPath"] = json!("/vmtest/cmds");
            c["linux"]["resources"] =
                json!({"memory": {"limit": 67108864}, "pids": {"limit": 100}});
            c
        }),
        Check::new("oom", script!("oom")).bundle("b", {
            // The string doubles past the 16 MiB limit (no swap), which
            // kills it; capped so a runtime without limits cannot make the
            // whole guest thrash.
            let mut c = config(&[
                "awk",
                "BEGIN { s = \"x\"; while (length(s) < 33554432) s = s s; print \"survived\" }",
            ]);
            c["linux"]["cgroupsPath"] = json!("/vmtest/oom");
            c["linux"]["resources"] =
                json!({"memory": {"limit": 16777216, "swap": 16777216}});
            c
        }),
        Check::new("devices", script!("devices")),
        Check::new("freeze", script!("freeze")),
        Check::new("clone-into-cgroup", script!("clone_into_cgroup"))
            .bundle("b", {
                let mut c = config(&["sleep", "1000"]);
                c["linux"]["cgroupsPath"] = json!("/vmtest/cic");
                c
            })
            .bundle("b2", {
                let mut c = config(&["sleep", "1000"]);
                c["linux"]["cgroupsPath"] = json!("/vmtest/cic2");
                c
            }),
    ];
    // Bundles that bind their own check dir need its guest path.
    let at = |cs: &[Check], name: &str| {
        let i = cs.iter().position(|c| c.name == name).unwrap_or(0);
        guest_dir(cs, i)
    };
    let dev_dir = at(&cs, "devices");
    let frz_dir = at(&cs, "freeze");
    for c in cs.iter_mut() {
        if c.name == "devices" {
            let caps = json!(["CAP_KILL", "CAP_MKNOD", "CAP_SYS_RAWIO"]);
            let mut cfg = with_mount(
                with_check_dir(config(&["sh", "/check/inside.sh"]), &dev_dir, false),
                json!({"destination": "/dev/hostmem", "type": "bind", "source": "/dev/mem",
                       "options": ["bind"]}),
            );
            cfg["process"]["capabilities"] =
                json!({"bounding": caps, "effective": caps, "permitted": caps});
            cfg["linux"]["resources"] = json!({"devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
            ]});
            c.bundles.push(("b".into(), cfg));
        } else if c.name == "freeze" {
            let cfg = with_check_dir(
                config(&[
                    "sh",
                    "-c",
                    "while :; do echo t >>/check/tick; sleep 0.1; done",
                ]),
                &frz_dir,
                true,
            );
            c.bundles.push(("b".into(), cfg));
        }
    }
    // RUNWAY_VM_ONLY=check,check: boot with those checks alone (a VM run
    // is slow; groups of other checks then fail as missing).
    if let Ok(only) = std::env::var("RUNWAY_VM_ONLY") {
        let want: Vec<&str> = only.split(',').map(str::trim).collect();
        cs.retain(|c| want.contains(&c.name.as_str()));
    }
    cs
}

static OUTCOME: OnceLock<Result<Outcome, String>> = OnceLock::new();

/// The VM's results, booting it on first use; None when skipped.
fn vm() -> Option<&'static Outcome> {
    let r = OUTCOME.get_or_init(|| {
        // RUNWAY_VM_BIN: try another static runway (e.g. a release build).
        let bin = std::env::var_os("RUNWAY_VM_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_runway")));
        let vm = Vm::find(&bin)?;
        let o = vm.run(&checks());
        note(&o.summary());
        Ok(o)
    });
    match r {
        Ok(o) => Some(o),
        Err(why) if vm_common::required() => panic!("VM test required but cannot run: {why}"),
        Err(why) => {
            // Every test that needed the VM says so under its own name
            // (libtest names each test's thread after it).
            let thread = std::thread::current();
            let test = thread.name().and_then(|n| n.rsplit("::").next());
            note(&format!("skipped: {}: {why}", test.unwrap_or("vm")));
            None
        }
    }
}

/// RUNWAY_VM_PENDING=group,group (or `*`): groups whose failures are
/// printed but not fatal, so the harness can land before the feature.
fn pending(name: &str) -> bool {
    std::env::var("RUNWAY_VM_PENDING")
        .map(|v| v.split(',').any(|g| g.trim() == name || g.trim() == "*"))
        .unwrap_or(false)
}

fn group(name: &str, checks: &[&str]) {
    let Some(o) = vm() else { return };
    if pending(name) {
        let f = o.failures(checks);
        if !f.is_empty() {
            note(&format!("pending: group {name}: {}", f.join("; ")));
        }
        return;
    }
    o.assert_pass(name, checks);
}

#[test]
fn vm_boots_and_runway_runs() {
    group("boot", &["version"]);
}

#[test]
fn initramfs_no_pivot() {
    group("initramfs", &["initramfs-no-pivot"]);
}

/// No flag on the initramfs: runway falls back to MS_MOVE + chroot itself,
/// with cgroup v2 limits, and leaves the initramfs's mounts as they were.
#[test]
fn initramfs_root_without_flag() {
    group(
        "initramfs-fallback",
        &["initramfs-pivot-fallback", "initramfs-mounts-unchanged"],
    );
}

#[test]
fn run_output_and_exit_code() {
    group("run", &["run-output", "run-exit-code", "run-deleted"]);
}

#[test]
fn v2_run_cgroup_made_and_removed() {
    group("run-cgroup", &["run-in-cgroup", "run-cgroup-removed"]);
}

#[test]
fn v2_lifecycle() {
    group(
        "lifecycle",
        &[
            "lifecycle-create",
            "lifecycle-cgroup-at-create",
            "lifecycle-default-cgroup-path",
            "lifecycle-start",
            "lifecycle-kill",
            "lifecycle-delete",
            "lifecycle-delete-cgroup-gone",
            "lifecycle-delete-force",
        ],
    );
}

#[test]
fn v2_resources() {
    group(
        "resources",
        &[
            "res-memory-max",
            "res-memory-low",
            "res-memory-swap-max",
            "res-unified-memory-high",
            "res-pids-max",
            "res-cpu-max",
            "res-cpu-weight",
            "res-cpuset-cpus",
            "res-cpuset-mems",
            "res-cgroups-path",
            "res-init-cpus-allowed",
            "res-delete-cgroup-gone",
        ],
    );
}

#[test]
fn v2_cgroup_namespace_view() {
    group(
        "cgroupns",
        &[
            "cgroupns-run",
            "cgroupns-self",
            "cgroupns-mount-type",
            "cgroupns-memory-max",
            "cgroupns-pids-max",
        ],
    );
}

#[test]
fn v2_pids_limit() {
    group("pids", &["pids-limit-enforced"]);
}

#[test]
fn v2_device_filter() {
    group(
        "devices",
        &[
            "devices-host-control",
            "devices-deny-open",
            "devices-deny-mknod-open",
            "devices-allow-listed",
            "devices-allow-default",
        ],
    );
}

#[test]
fn v2_freeze() {
    group(
        "freeze",
        &[
            "freeze-pause-state",
            "freeze-events-frozen",
            "freeze-processes-stopped",
            "freeze-resume-state",
            "freeze-events-thawed",
            "freeze-processes-resumed",
        ],
    );
}

#[test]
fn v2_clone_into_cgroup() {
    group(
        "clone-into-cgroup",
        &[
            "clone-into-cgroup",
            "clone-into-cgroup-strict",
            "clone-into-cgroup-cleanup",
        ],
    );
}

#[test]
fn v2_update_events_ps_kill_all() {
    group(
        "commands",
        &[
            "update-resources-memory",
            "update-pids-limit",
            "events-stats-pids",
            "events-stats-memory",
            "ps-json",
            "ps-json-count",
            "kill-all",
        ],
    );
}

#[test]
fn v2_oom() {
    group("oom", &["oom-killed", "oom-event"]);
}

/// Any RUNWAY-CHECK line no group asserts (e.g. `<check>-script FAIL`
/// after a crash or timeout) still fails the run.
#[test]
fn no_unexpected_failures() {
    let Some(o) = vm() else { return };
    let bad: Vec<String> = o
        .results
        .iter()
        .filter(|r| !r.pass && r.name.ends_with("-script"))
        .map(|r| format!("{} FAIL {}", r.name, r.detail))
        .collect();
    assert!(
        bad.is_empty() && o.error.is_none(),
        "check scripts failed:\n{}\n{}",
        bad.join("\n"),
        o.summary()
    );
}
