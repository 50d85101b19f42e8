//! Shared harness pieces for the fuzz targets: the scratch bundle the
//! config target prepares plans against, and argv splitting.

use runway::spec::Spec;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `<tmp>/runway-fuzz-bundle` with an empty `rootfs/`: `plan::prepare`
/// canonicalizes both, so configs with `root.path: "rootfs"` reach the
/// whole plan. One fixed path so parallel or repeated runs leave no debris
/// beyond it; run-all.sh removes it.
pub fn bundle() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join("runway-fuzz-bundle");
        let _ = std::fs::create_dir_all(dir.join("rootfs"));
        dir
    })
}

/// Namespace paths are opened by `prepare`; an input naming a device
/// (/dev/watchdog...) would have side effects on the host. Point every path
/// at our own namespace of that type instead: same code path, harmless
/// open. Unknown types keep a path that cannot exist.
pub fn defuse_namespace_paths(spec: &mut Spec) {
    let Some(linux) = spec.linux.as_mut() else {
        return;
    };
    for ns in &mut linux.namespaces {
        if let Some(p) = ns.path.as_mut() {
            if p.is_empty() {
                continue;
            }
            let proc_name = match ns.typ.as_str() {
                "network" => "net",
                "mount" => "mnt",
                "pid" | "ipc" | "uts" | "user" | "cgroup" | "time" => ns.typ.as_str(),
                _ => "",
            };
            *p = if proc_name.is_empty() {
                "/nonexistent/runway-fuzz".to_string()
            } else {
                format!("/proc/self/ns/{proc_name}")
            };
        }
    }
}

/// NUL-separated arguments, bytes as given (not necessarily UTF-8).
pub fn split_args(data: &[u8]) -> Vec<OsString> {
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|b| *b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect()
}
