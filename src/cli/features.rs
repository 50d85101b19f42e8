use super::args;
use super::Global;
use crate::error::{Error, Result};
use std::ffi::OsString;

/// `features`: what this build supports (fixed at compile time, not probed
/// from the host), in runc's JSON shape (engines
/// probe it before using newer config fields).
pub fn main(_g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, &[], None)?;
    if super::help_requested(
        &a,
        "usage: runway features\n\nPrint what this runtime supports, as JSON.\n",
    ) {
        return Ok(0);
    }
    if let Some(extra) = a.positionals.first() {
        crate::bail!("features takes no arguments, got {extra:?}");
    }
    let caps: Vec<&str> = (0..=crate::linux::caps::LAST_KNOWN)
        .filter_map(crate::linux::caps::cap_name)
        .collect();
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::linux::mountopt::known(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.github.runway.static": "true"
        }
    });
    let mut s =
        crate::jsonfmt::to_vec_pretty(&v).map_err(|e| Error::msg(format!("encode: {e}")))?;
    s.push(b'\n');
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &s);
    Ok(0)
}
