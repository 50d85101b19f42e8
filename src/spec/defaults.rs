//! The config.json that `runway spec` writes: the one runc writes, so users
//! and scripts that edit it find what they expect.

use super::{IdMapping, Mount, Namespace, Spec, OCI_VERSION};

const DEFAULT_SPEC: &str = r#"{
  "ociVersion": "",
  "process": {
    "terminal": true,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "runway",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "resources": {"devices": [{"allow": false, "access": "rwm"}]},
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
      "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}"#;

/// The default spec; `rootless` adapts it as `runc spec --rootless` does.
pub fn default_spec(rootless: bool, uid: u32, gid: u32) -> Spec {
    // The literal is a compile-time constant covered by a unit test. Bytes,
    // not str: config.json is parsed from bytes, and one reader type means
    // one copy of the spec's deserializer in the binary.
    let mut spec: Spec = serde_json::from_slice(DEFAULT_SPEC.as_bytes()).unwrap_or_default();
    spec.oci_version = OCI_VERSION.to_string();
    if rootless {
        if let Some(linux) = spec.linux.as_mut() {
            linux.resources = None;
            linux.namespaces.retain(|n| n.typ != "network");
            linux.namespaces.push(Namespace {
                typ: "user".into(),
                path: None,
            });
            linux.uid_mappings = vec![IdMapping {
                container_id: 0,
                host_id: uid,
                size: 1,
            }];
            linux.gid_mappings = vec![IdMapping {
                container_id: 0,
                host_id: gid,
                size: 1,
            }];
        }
        for m in spec.mounts.iter_mut() {
            if m.destination == "/dev/pts" {
                if let Some(o) = m.options.as_mut() {
                    o.retain(|o| o != "gid=5");
                }
            }
            if m.destination == "/sys" {
                *m = Mount {
                    destination: "/sys".into(),
                    typ: Some("none".into()),
                    source: Some("/sys".into()),
                    options: Some(
                        ["rbind", "nosuid", "noexec", "nodev", "ro"]
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                    ),
                    ..Default::default()
                };
            }
        }
    }
    spec
}

/// Serialized the way runc does (tab-indented) so diffs against runc's
/// output are about content only.
pub fn to_json(spec: &Spec) -> String {
    // Serializing plain data into a Vec cannot fail.
    let compact = serde_json::to_vec(spec).unwrap_or_default();
    String::from_utf8(crate::jsonfmt::pretty(&compact, b"\t")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parses() {
        let s: Spec = serde_json::from_str(DEFAULT_SPEC).unwrap();
        assert_eq!(s.mounts.len(), 7);
        let r = default_spec(true, 1000, 1000);
        let l = r.linux.unwrap();
        assert!(l.namespaces.iter().any(|n| n.typ == "user"));
        assert_eq!(l.uid_mappings[0].host_id, 1000);
    }
}
