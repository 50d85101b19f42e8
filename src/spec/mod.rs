//! config.json: types, the default `spec`, loading and validation.

pub mod types;
pub use types::*;

pub mod defaults;
pub mod validate;

use crate::bail;
use crate::error::{Context, Error, Result};
use std::path::Path;

/// The OCI runtime-spec version this runtime implements.
pub const OCI_VERSION: &str = "1.1.0";

/// Read and parse `<bundle>/config.json`. Errors name the file and, for JSON
/// errors, the line and column.
pub fn load(bundle: &Path) -> Result<Spec> {
    match std::fs::metadata(bundle) {
        Ok(m) if !m.is_dir() => {
            return Err(Error::errno(
                format!("bundle {}", bundle.display()),
                libc::ENOTDIR,
            ))
        }
        Ok(_) => {}
        Err(e) => return Err(e).ctx(|| format!("bundle {}", bundle.display())),
    }
    let path = bundle.join("config.json");
    let bytes = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no config.json in {} (make one with runway spec, or pass --bundle)",
            std::path::absolute(bundle)
                .unwrap_or_else(|_| bundle.to_path_buf())
                .display()
        ),
        r => r.ctx(|| format!("read {}", path.display()))?,
    };
    parse(&bytes).map_err(|e| e.wrap(path.display()))
}

pub fn parse(bytes: &[u8]) -> Result<Spec> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Error::msg(format!("invalid JSON: {e}")))?;
    check_shape(&v)?;
    // Typed parse from the bytes, not the Value: it also refuses duplicate
    // keys, which a Value silently merges.
    serde_json::from_slice::<Spec>(bytes).map_err(|e| Error::msg(format!("invalid config: {e}")))
}

/// serde accepts a JSON array where a struct is expected (as a tuple);
/// runc (Go) does not, and neither do we: every object in the spec must be
/// an object.
fn check_shape(v: &serde_json::Value) -> Result<()> {
    use serde_json::Value;
    const OBJECTS: &[&str] = &[
        "",
        "/process",
        "/process/user",
        "/process/capabilities",
        "/process/consoleSize",
        "/process/scheduler",
        "/process/ioPriority",
        "/process/execCPUAffinity",
        "/root",
        "/hooks",
        "/annotations",
        "/linux",
        "/linux/resources",
        "/linux/resources/memory",
        "/linux/resources/cpu",
        "/linux/resources/pids",
        "/linux/resources/blockIO",
        "/linux/resources/network",
        "/linux/resources/unified",
        "/linux/seccomp",
        "/linux/personality",
        "/linux/sysctl",
        "/linux/timeOffsets",
    ];
    const OBJECT_LISTS: &[&str] = &[
        "/mounts",
        "/process/rlimits",
        "/hooks/prestart",
        "/hooks/createRuntime",
        "/hooks/createContainer",
        "/hooks/startContainer",
        "/hooks/poststart",
        "/hooks/poststop",
        "/linux/namespaces",
        "/linux/devices",
        "/linux/uidMappings",
        "/linux/gidMappings",
        "/linux/resources/devices",
        "/linux/resources/hugepageLimits",
        "/linux/seccomp/syscalls",
        "/linux/resources/blockIO/weightDevice",
        "/linux/resources/blockIO/throttleReadBpsDevice",
        "/linux/resources/blockIO/throttleWriteBpsDevice",
        "/linux/resources/blockIO/throttleReadIOPSDevice",
        "/linux/resources/blockIO/throttleWriteIOPSDevice",
        "/linux/resources/network/priorities",
    ];
    let null_or = |p: &str, ok: fn(&Value) -> bool| -> bool {
        v.pointer(p).is_none_or(|x| x.is_null() || ok(x))
    };
    for p in OBJECTS {
        if !null_or(p, Value::is_object) {
            let at = if p.is_empty() { "the top level" } else { p };
            bail!("invalid config: {at} must be a JSON object");
        }
    }
    for p in OBJECT_LISTS {
        if let Some(Value::Array(items)) = v.pointer(p) {
            if items.iter().any(|i| !i.is_object()) {
                bail!("invalid config: every entry of {p} must be a JSON object");
            }
        }
    }
    if let Some(Value::Array(calls)) = v.pointer("/linux/seccomp/syscalls") {
        for c in calls {
            if let Some(Value::Array(args)) = c.get("args") {
                if args.iter().any(|a| !a.is_object()) {
                    bail!("invalid config: every entry of /linux/seccomp/syscalls/*/args must be a JSON object");
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_for_objects_are_refused() {
        let good = br#"{"ociVersion":"1.0.0","process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"},"root":{"path":"r"}}"#;
        assert!(parse(good).is_ok());
        for bad in [
            &br#"{"process":{"user":[0,0]}}"#[..],
            br#"{"process":{"capabilities":[]}}"#,
            br#"{"linux":{"resources":[]}}"#,
            br#"{"hooks":[]}"#,
            br#"{"mounts":[["/x"]]}"#,
            br#"[]"#,
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
