//! The engine tier: podman, containerd (ctr and its Kubernetes CRI plugin)
//! and Docker, unmodified, drive runway through full container lifecycles
//! (see tests/engines/). Every scenario also runs with runc, to show the
//! harness itself is right.
//!
//! The whole tier runs in a network namespace of its own (entered before
//! main, see engines/netns.rs), with only `lo` up: podman's default network
//! makes its bridge and firewall rules there, never on the machine's.
//!
//! Nothing is installed here: without root, a static busybox, the engines
//! or runc a test prints "skipped: <test>: <why>" and passes, unless
//! RUNWAY_ENGINES_REQUIRE=1 (CI), which turns the skip into a failure.
//!
//! Each test runs its scenarios in order, reports each ("  <test>:
//! <scenario>: ok"), then checks that nothing is left: no container the
//! engine still lists, no runtime state directory, cgroup, mount or process
//! (conmon, shims), and for the daemons the test starts (containerd,
//! dockerd) that they stopped.

mod common;
#[path = "engines/mod.rs"]
mod engines;

use std::path::PathBuf;

const PODMAN_TOOLS: &[&str] = &[
    "podman",
    "conmon",
    "/usr/lib/podman/netavark",
    // netavark (1.4) runs it for the default network; without it every
    // podman scenario fails with "netavark: No such file or directory".
    "iptables",
    "tar",
    "sha256sum",
];
const CONTAINERD_TOOLS: &[&str] = &[
    "containerd",
    "ctr",
    "containerd-shim-runc-v2",
    "tar",
    "sha256sum",
];
const DOCKER_TOOLS: &[&str] = &[
    "dockerd",
    engines::docker::DOCKER_CLI,
    "containerd",
    "containerd-shim-runc-v2",
    "tar",
    "sha256sum",
];

fn runc(test: &str) -> Option<PathBuf> {
    match common::runc() {
        Some(r) => Some(r),
        None => {
            engines::skip(
                test,
                "no runc to check the harness with (apt-get install runc)",
            );
            None
        }
    }
}

/// The tier's processes (and so the engines' bridges, veths and firewall
/// rules) are in a network namespace of the test's own, with `lo` up.
#[test]
fn own_network_namespace() {
    let test = "own_network_namespace";
    if !engines::ready(test, &["ip"]) {
        return;
    }
    if let Err(e) = engines::netns::moved() {
        panic!("{test}: {e}");
    }
    // Other tests of the tier may have added their links meanwhile.
    let links = engines::netns::links();
    assert!(links.iter().any(|l| l == "lo"), "{test}: links {links:?}");
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show", "lo"])
        .output()
        .unwrap_or_else(|e| panic!("{test}: ip: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(",UP"), "{test}: lo is not up: {text}");
}

#[test]
fn podman_runway() {
    let test = "podman_runway";
    if engines::ready(test, PODMAN_TOOLS) {
        engines::podman::tier(test, &engines::runway());
    }
}

/// podman adds `--log FILE --log-format=json` (and reads errors from that
/// file) only for runtimes whose file name it knows, such as runc.
#[test]
fn podman_runway_named_runc() {
    let test = "podman_runway_named_runc";
    if engines::ready(test, PODMAN_TOOLS) {
        let dir = engines::RemoveOnDrop(engines::test_dir(&format!("{test}-bin")));
        let runtime = engines::runway_named_runc(&dir.0);
        engines::podman::tier(test, &runtime);
    }
}

#[test]
fn podman_runc() {
    let test = "podman_runc";
    if engines::ready(test, PODMAN_TOOLS) {
        if let Some(runc) = runc(test) {
            engines::podman::tier(test, &runc);
        }
    }
}

#[test]
fn containerd_runway() {
    let test = "containerd_runway";
    if engines::ready(test, CONTAINERD_TOOLS) {
        engines::containerd::tier(test, &engines::runway());
    }
}

#[test]
fn containerd_runc() {
    let test = "containerd_runc";
    if engines::ready(test, CONTAINERD_TOOLS) {
        if let Some(runc) = runc(test) {
            engines::containerd::tier(test, &runc);
        }
    }
}

#[test]
fn cri_runway() {
    let test = "cri_runway";
    if engines::ready(test, CONTAINERD_TOOLS) {
        if let Some(python) = engines::cri::python(test) {
            engines::cri::tier(test, &engines::runway(), &python);
        }
    }
}

#[test]
fn cri_runc() {
    let test = "cri_runc";
    if engines::ready(test, CONTAINERD_TOOLS) {
        if let (Some(runc), Some(python)) = (runc(test), engines::cri::python(test)) {
            engines::cri::tier(test, &runc, &python);
        }
    }
}

#[test]
fn docker_runway() {
    let test = "docker_runway";
    if engines::ready(test, DOCKER_TOOLS) {
        engines::docker::tier(test, &engines::runway());
    }
}

#[test]
fn docker_runc() {
    let test = "docker_runc";
    if engines::ready(test, DOCKER_TOOLS) {
        if let Some(runc) = runc(test) {
            engines::docker::tier(test, &runc);
        }
    }
}
